"""CKConv/FlexConv at irregular 2-D/3-D positions (issue 15, item 4).

* on the full reference grid the point path equals the regular (gridded, zero-padded) conv;
* padding points change nothing and get zero outputs;
* translation equivariance (every translation acts exactly on points: kit, exact tolerance)
  and permutation equivariance, with a failing control that feeds absolute coordinates.
"""

from __future__ import annotations

import pytest
import torch
from hypothesis import given, settings

from groupconv.groups import Permutations, Translations
from groupconv.nn import CKConv, FlexConv, SeparableCKConv, SeparableFlexConv
from groupconv.spaces import PointCloudField, TokenField
from groupconv.testing import EquivarianceError, assert_equivariant
from groupconv.testing import point_strategies as pst


def _grid(size, dtype):
    axes = [torch.linspace(-1, 1, n, dtype=dtype) for n in size]
    return torch.stack(torch.meshgrid(*axes, indexing="ij"), -1).reshape(-1, len(size))


LAYERS = {
    "CKConv-2d": lambda **k: CKConv(3, 4, data_dim=2, kernel_size=5, **k),
    "CKConv-2d-same-mlp": lambda **k: CKConv(3, 4, data_dim=2, kernel_net="mlp", **k),
    "FlexConv-2d": lambda **k: FlexConv(3, 4, data_dim=2, kernel_size=7, dynamic_cropping=False, **k),
    "SeparableCKConv-2d": lambda **k: SeparableCKConv(3, 4, data_dim=2, kernel_size=5, **k),
    "SeparableFlexConv-3d": lambda **k: SeparableFlexConv(2, 3, data_dim=3, kernel_size=5,
                                                          dynamic_cropping=False, **k),
    "CKConv-3d": lambda **k: CKConv(2, 3, data_dim=3, kernel_size=3, **k),
}


@pytest.mark.parametrize("name", list(LAYERS))
def test_full_grid_positions_equal_the_gridded_conv(name, float_dtype):
    torch.manual_seed(0)
    layer = LAYERS[name](dtype=float_dtype)
    D = layer.data_dim
    size = (9, 8) if D == 2 else (5, 6, 5)
    layer._set_reference(size)
    x = torch.randn(2, layer.in_channels, *size, dtype=float_dtype)
    with torch.no_grad():
        want = layer(x).flatten(2)
        pos = _grid(size, float_dtype)
        got = layer(x.flatten(2), pos)
        got_batched = layer(x.flatten(2), pos.expand(2, -1, -1))
    tol = 1e-4 if float_dtype == torch.float32 else 1e-9
    scale = float(want.abs().max())
    assert scale > 1e-3  # not a vacuous comparison
    torch.testing.assert_close(got, want, atol=tol * scale, rtol=tol)
    torch.testing.assert_close(got_batched, want, atol=tol * scale, rtol=tol)
    # a wrong normalisation (half the points) is visible at this tolerance
    mask = torch.ones(2, pos.shape[0], dtype=torch.bool)
    mask[:, ::2] = False
    with torch.no_grad():
        thinned = layer(x.flatten(2), pos, mask)
    assert not torch.allclose(thinned[:, :, 1::2], want[:, :, 1::2], atol=tol * scale, rtol=tol)


@pytest.mark.parametrize("name", ["CKConv-2d", "SeparableFlexConv-3d"])
def test_padding_points_are_ignored(name, device, float_dtype):
    torch.manual_seed(1)
    layer = LAYERS[name](dtype=float_dtype, reference_size=5).to(device)
    D, C = layer.data_dim, layer.in_channels
    g = torch.Generator().manual_seed(2)
    pos = (torch.rand(2, 12, D, generator=g, dtype=float_dtype) * 2 - 1).to(device)
    x = torch.randn(2, C, 12, generator=g, dtype=float_dtype).to(device)
    junk_pos = (torch.rand(2, 5, D, generator=g, dtype=float_dtype) * 0.2).to(device)  # near the points
    junk = torch.randn(2, C, 5, generator=g, dtype=float_dtype).to(device) * 100
    mask = torch.ones(2, 17, dtype=torch.bool, device=device)
    mask[:, 12:] = False
    with torch.no_grad():
        ref = layer(x, pos)
        padded = layer(torch.cat([x, junk], -1), torch.cat([pos, junk_pos], 1), mask)
    tol = 1e-5 if float_dtype == torch.float32 else 1e-12
    torch.testing.assert_close(padded[..., :12], ref, atol=tol * float(ref.abs().max()), rtol=tol)
    assert bool((padded[..., 12:] == 0).all())


def _point_net(layer, absolute=False):
    D = layer.data_dim

    def net(cloud):  # (B, N, D + C) -> (B, N, D + C_out)
        pos, feats = cloud[..., :D], cloud[..., D:]
        if absolute:  # control: features modulated by an absolute coordinate
            feats = feats * pos[..., :1]
        y = layer(feats.transpose(1, 2), pos)
        return torch.cat([pos, y.transpose(1, 2)], -1)

    return net


@pytest.mark.parametrize("name", ["CKConv-2d", "FlexConv-2d", "CKConv-3d", "SeparableFlexConv-3d"])
def test_translation_and_permutation_equivariance(name, device, float_dtype):
    torch.manual_seed(3)
    layer = LAYERS[name](dtype=float_dtype, reference_size=7).to(device)
    D, C = layer.data_dim, layer.in_channels
    g = torch.Generator().manual_seed(4)
    cloud = torch.cat([torch.rand(2, 15, D, generator=g, dtype=float_dtype) * 1.6 - 0.8,
                       torch.randn(2, 15, C, generator=g, dtype=float_dtype)], -1).to(device)
    T = Translations(D)
    shifts = torch.tensor([[0.0] * D, [0.3] * D, [-0.71, 0.45, 0.2][:D], [5.0, -3.0, 1.5][:D]],
                          dtype=float_dtype, device=device)
    fin, fout = PointCloudField(T, features=C), PointCloudField(T, features=layer.out_channels)
    net = _point_net(layer)
    with torch.no_grad():
        assert_equivariant(net, cloud, shifts, in_field=fin, out_field=fout)
        perms = TokenField(Permutations(15))
        assert_equivariant(net, cloud, perms.exact_elements(), in_field=perms, out_field=perms)
        with pytest.raises(EquivarianceError):  # breaking control
            assert_equivariant(_point_net(layer, absolute=True), cloud, shifts, in_field=fin, out_field=fout)


def test_errors_name_the_argument():
    layer = CKConv(2, 2, data_dim=2, kernel_size=3)
    with pytest.raises(RuntimeError, match="reference size"):
        layer(torch.randn(1, 2, 5), torch.rand(5, 2))
    layer = CKConv(2, 2, data_dim=2, kernel_size=3, reference_size=5)
    with pytest.raises(ValueError, match="positions must have shape"):
        layer(torch.randn(1, 2, 5), torch.rand(5, 3))
    with pytest.raises(ValueError, match="mask must have shape"):
        layer(torch.randn(1, 2, 5), torch.rand(5, 2), torch.ones(1, 4, dtype=torch.bool))
    with pytest.raises(ValueError, match="x must be point features"):
        layer(torch.randn(1, 2, 5, 5), torch.rand(25, 2))
    one_d = CKConv(2, 2, data_dim=1, reference_size=5)
    with pytest.raises(ValueError, match="mask="):
        one_d(torch.randn(1, 2, 5), torch.linspace(-1, 1, 5), torch.ones(1, 5, dtype=torch.bool))


@settings(max_examples=10, deadline=None)
@given(cloud=pst.point_clouds(2, features=2, min_points=4, max_points=12))
def test_padded_drawn_clouds_are_translation_equivariant(cloud):
    """Drawn padded clouds (mask column last): every translation commutes with the layer."""
    torch.manual_seed(0)
    layer = CKConv(2, 3, data_dim=2, kernel_size=5, reference_size=7, dtype=torch.float64)
    T = Translations(2)

    def net(c):
        pos, feats, mask = c[..., :2] / 10, c[..., 2:4], c[..., 4] > 0.5
        y = layer(feats.transpose(1, 2), pos, mask).transpose(1, 2)
        return torch.cat([c[..., :2], y, c[..., 4:]], -1)

    shifts = torch.tensor([[0.0, 0.0], [3.0, -2.0], [-0.37, 0.81]], dtype=torch.float64)
    with torch.no_grad():
        assert_equivariant(net, cloud, shifts, in_field=PointCloudField(T, features=3),
                           out_field=PointCloudField(T, features=4))
