"""Separable and pointwise group convolutions: exact equivariance against independent transforms
(torch.rot90 / torch.flip / torch.roll and integer matrices), the factorisation against the
equivalent dense kernel, the cost model, serialisation and errors."""

from __future__ import annotations

import copy
import io
import pickle

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from _helpers import EXACT_TOL as TOL
from _helpers import rel_err, rot, rot_map

from groupconv.groups import O2, SO2, CyclicGroup, DihedralGroup, Sim2
from groupconv.nn.group.gconv import GroupConv
from groupconv.nn.group.separable import VARIANTS, PointwiseGroupConv, SeparableGroupConv, group_conv_flops

FLAT = [v for v in VARIANTS if v != "sim2"]


R90 = np.array([[0, -1], [1, 0]])
D4_LIST = [(k, 1) for k in range(4)] + [(k, -1) for k in range(4)]


def d4_matrix(k: int, m: int) -> np.ndarray:
    return np.linalg.matrix_power(R90, k) @ np.diag([1, m])


def d4_map(y: torch.Tensor, k: int, m: int) -> torch.Tensor:
    """(g.f)(h_i, x) = f(g^-1 h_i, g^-1 x) on the D4 grid, from integer matrices only."""
    g_inv = np.round(np.linalg.inv(d4_matrix(k, m))).astype(int)
    mats = [d4_matrix(*e) for e in D4_LIST]
    perm = [next(j for j, mj in enumerate(mats) if (mj == g_inv @ mi).all()) for mi in mats]
    z = y[:, :, perm]
    return rot(torch.flip(z, dims=(-1,)) if m == -1 else z, k)


# -- equivariance ----------------------------------------------------------------------------------
@pytest.mark.parametrize("variant", FLAT)
@pytest.mark.parametrize(
    "group,kw,n", [(CyclicGroup(4), {}, 4), (SO2(), {"num_elements": 8, "kernel_net": "siren"}, 8)],
    ids=["C4", "SO2-8-siren"],
)
def test_rotation_equivariance_exact(variant, group, kw, n, device, float_dtype):
    torch.manual_seed(0)
    fk = {"device": device, "dtype": float_dtype}
    conv = SeparableGroupConv(3, 4, group, 5, variant=variant, padding=2, **kw, **fk)
    x = torch.randn(2, 3, n, 7, 7, **fk)
    y = conv(x)
    assert y.shape == (2, 4, n, 7, 7)
    for k in (1, 2, 3):
        assert rel_err(conv(rot_map(x, k, n)), rot_map(y, k, n)) <= TOL[float_dtype]


@pytest.mark.parametrize("variant", ["separable", "dgseparable"])
@pytest.mark.parametrize(
    "group,kw",
    [(DihedralGroup(4), {}), (O2(), {"num_elements": 8, "kernel_net": "mlp"})],
    ids=["D4", "O2-8-mlp"],
)
def test_mirror_equivariance_exact(variant, group, kw, device, float_dtype):
    torch.manual_seed(1)
    fk = {"device": device, "dtype": float_dtype}
    conv = SeparableGroupConv(2, 3, group, 3, variant=variant, **kw, **fk)
    x = torch.randn(2, 2, 8, 6, 6, **fk)
    y = conv(x)
    for k, m in D4_LIST[1:]:
        assert rel_err(conv(d4_map(x, k, m)), d4_map(y, k, m)) <= TOL[float_dtype]


def test_sim2_rotation_equivariance_and_dense(float_dtype):
    torch.manual_seed(2)
    conv = SeparableGroupConv(2, 3, Sim2().H, 5, variant="sim2", num_elements=(4, 3), padding=2,
                              kernel_net="mlp", dtype=float_dtype)
    x = torch.randn(2, 2, 12, 7, 7, dtype=float_dtype)
    y = conv(x)

    def rmap(t, k):  # rotations are the slow factor of the (rotation, scale) grid
        z = rot(t, k).unflatten(2, (4, 3))
        return torch.roll(z, k, dims=2).flatten(2, 3)

    assert rel_err(conv(rmap(x, 1)), rmap(y, 1)) <= TOL[float_dtype]
    dense = F.conv2d(x.flatten(1, 2), conv.expanded_weight(), conv.bias.repeat_interleave(12), padding=2)
    assert rel_err(dense.view_as(y), y) <= 10 * TOL[float_dtype]


def test_broken_factor_is_detected(monkeypatch):
    import groupconv.nn.group.gconv_weights as gconv_mod

    real = gconv_mod.spatial_sampling

    def skip_rotation(group, grid, kernel_size, radius=None):
        return real(group, group.identity((grid.shape[0],), dtype=grid.dtype), kernel_size, radius)

    monkeypatch.setattr(gconv_mod, "spatial_sampling", skip_rotation)
    torch.manual_seed(3)
    conv = SeparableGroupConv(2, 2, CyclicGroup(4), 3, padding=1)
    x = torch.randn(1, 2, 4, 7, 7)
    assert rel_err(conv(rot_map(x, 1, 4)), rot_map(conv(x), 1, 4)) > 1e-2


# -- the factorisation and its cost ----------------------------------------------------------------
@pytest.mark.parametrize("variant", FLAT)
def test_matches_dense_equivalent(variant):
    torch.manual_seed(4)
    conv = SeparableGroupConv(3, 2, SO2(), 3, variant=variant, num_elements=4, in_num_elements=8,
                              kernel_net="siren", padding=1, dtype=torch.float64)
    x = torch.randn(2, 3, 8, 6, 6, dtype=torch.float64)
    W = conv.expanded_weight()
    assert W.shape == (2 * 4, 3 * 8, 3, 3)
    ref = F.conv2d(x.flatten(1, 2), W, conv.bias.repeat_interleave(4), padding=1)
    assert rel_err(conv(x), ref.view(2, 2, 4, 6, 6)) <= 1e-12


def test_flops_model():
    G = CyclicGroup(8)
    shape = (4, 8, 8, 32, 32)  # C8, 5x5, 64 channels (8 fields x 8 elements)
    full = GroupConv(8, 8, G, 5, padding=2)
    sep = SeparableGroupConv(8, 8, G, 5, padding=2)
    assert sep.dense_flops(shape) == group_conv_flops(full, shape)
    macs_full = 4 * 32 * 32 * 64 * 64 * 25
    assert group_conv_flops(full, shape) == 2 * macs_full + 4 * 32 * 32 * 64
    assert sep.flops(shape) == 2 * 4 * 32 * 32 * (64 * 64 + 64 * 25) + 4 * 32 * 32 * 64
    assert group_conv_flops(full, shape) >= 3 * sep.flops(shape)
    for v in FLAT:
        s = SeparableGroupConv(8, 8, G, 5, variant=v, padding=2)
        assert s.flops(shape) < s.dense_flops(shape)
    with pytest.raises(ValueError, match="input_shape"):
        sep.flops((4, 8, 32, 32))


# -- grids: random, pointwise resampling ---------------------------------------------------------
def test_random_grid_separable_with_in_grid():
    from groupconv.sampling import StratifiedSampler

    torch.manual_seed(5)
    conv = SeparableGroupConv(2, 2, SO2(), 3, num_elements=8, sampler=StratifiedSampler(),
                              kernel_net="mlp", padding=1)
    x = torch.randn(1, 2, 8, 6, 6)
    gen = torch.Generator().manual_seed(0)
    grid_in = StratifiedSampler()(SO2(), 8, generator=gen, dtype=torch.float64)
    y, grid = conv.forward_with_grid(x, grid_in, generator=torch.Generator().manual_seed(1))
    y2, grid2 = conv.forward_with_grid(x, grid_in, generator=torch.Generator().manual_seed(1))
    assert torch.equal(y, y2) and torch.equal(grid, grid2)
    assert not torch.allclose(grid, conv.out_grid)
    conv.eval()
    assert conv.forward_with_grid(x)[1] is conv.out_grid


def test_pointwise_c8_to_c4_equivariant(device, float_dtype):
    torch.manual_seed(6)
    fk = {"device": device, "dtype": float_dtype}
    pw = PointwiseGroupConv(3, 2, CyclicGroup(8), num_elements=4, in_num_elements=8, **fk)
    x = torch.randn(2, 3, 8, 5, 5, **fk)
    y = pw(x)
    assert y.shape == (2, 2, 4, 5, 5)
    # 90 degrees: roll the C8 axis by 2, the C4 axis by 1
    assert rel_err(pw(rot_map(x, 1, 8)), rot_map(y, 1, 4)) <= TOL[float_dtype]


def test_pointwise_continuous_out_grid():
    torch.manual_seed(7)
    pw = PointwiseGroupConv(2, 3, SO2(), num_elements=8, in_num_elements=4, kernel_net="mlp")
    assert pw.kernel_net.in_features == SO2().embedding_dim  # the net sees the group only
    x = torch.randn(1, 2, 4, 5, 5)
    y = pw(x)
    assert rel_err(pw(rot_map(x, 1, 4)), rot_map(y, 1, 8)) <= 1e-5
    target = SO2().grid(8, dtype=torch.float64)
    y2, grid = pw.forward_with_grid(x, out_grid=target)
    assert grid is target and rel_err(y2, y) <= 1e-5
    shifted = SO2().product(target, torch.tensor([0.3], dtype=torch.float64))
    assert not torch.allclose(pw(x, out_grid=shifted), y)
    with pytest.raises(ValueError, match="out_grid must hold"):
        pw(x, out_grid=target[:3])
    with pytest.raises(ValueError, match="continuous"):
        PointwiseGroupConv(1, 1, CyclicGroup(4))(torch.randn(1, 1, 4, 3, 3), out_grid=target)


# -- serialisation, compile, errors -----------------------------------------------------------------
@pytest.mark.parametrize("variant,kw", [("separable", {}), ("gseparable", {"kernel_net": "siren"}),
                                        ("dseparable", {}), ("dgseparable", {"kernel_net": "mlp"})])
def test_pickle_deepcopy_state_dict(variant, kw):
    torch.manual_seed(8)
    G = CyclicGroup(4) if not kw else SO2()
    conv = SeparableGroupConv(2, 3, G, 3, variant=variant, num_elements=4, **kw)
    x = torch.randn(1, 2, 4, 5, 5)
    y = conv(x)
    for other in (copy.deepcopy(conv), pickle.loads(pickle.dumps(conv))):
        assert torch.equal(other(x), y)
    fresh = SeparableGroupConv(2, 3, G, 3, variant=variant, num_elements=4, **kw)
    buf = io.BytesIO()
    torch.save(conv.state_dict(), buf)
    buf.seek(0)
    fresh.load_state_dict(torch.load(buf))
    assert torch.equal(fresh(x), y)
    conv.eval()
    with torch.no_grad():
        cached = conv(x)
        # the eval cache is a different computation from the training path: a dtype-aware
        # tolerance (they differ by ~2e-7 on some CPUs); repeating the cached call is bitwise
        torch.testing.assert_close(cached, y)
        assert torch.equal(conv(x), cached)


def test_gradients_reach_every_factor():
    for variant in VARIANTS:
        kw = {"num_elements": (2, 2)} if variant == "sim2" else {}
        G = Sim2().H if variant == "sim2" else CyclicGroup(4)
        conv = SeparableGroupConv(2, 2, G, 3, variant=variant, kernel_net="mlp" if kw else None, **kw)
        n = conv.num_elements
        conv(torch.randn(1, 2, n, 5, 5)).sum().backward()
        for name, p in conv.named_parameters():
            assert p.grad is not None and bool(p.grad.abs().sum() > 0), (variant, name)


def test_bad_inputs():
    G = CyclicGroup(4)
    conv = SeparableGroupConv(2, 3, G, 3)
    with pytest.raises(ValueError, match=r"x must have shape .*N_in=4"):
        conv(torch.randn(1, 2, 8, 5, 5))
    with pytest.raises(ValueError, match=r"in_channels=2"):
        conv(torch.randn(1, 3, 4, 5, 5))
    with pytest.raises(TypeError, match="x must be a torch.Tensor"):
        conv([1.0])
    with pytest.raises(TypeError, match="floating-point"):
        conv(torch.ones(1, 2, 4, 5, 5, dtype=torch.long))
    with pytest.raises(ValueError, match="variant"):
        SeparableGroupConv(2, 3, G, 3, variant="fancy")
    with pytest.raises(ValueError, match="kernel_size must be odd"):
        SeparableGroupConv(2, 3, G, 4)
    with pytest.raises(TypeError, match="group"):
        SeparableGroupConv(2, 3, "C4", 3)
    with pytest.raises(ValueError, match="sim2"):
        SeparableGroupConv(2, 3, G, 3, variant="sim2", num_elements=(4, 2))
    with pytest.raises(ValueError, match="pair"):
        SeparableGroupConv(2, 3, Sim2().H, 3, variant="sim2", num_elements=8, kernel_net="mlp")
    with pytest.raises(ValueError, match="continuous"):
        conv(torch.randn(1, 2, 4, 5, 5), in_grid=G.elements())
    with pytest.raises(TypeError, match="kernel_size"):
        PointwiseGroupConv(1, 1, G, kernel_size=3)
    with pytest.raises(ValueError, match="kernel_net"):
        PointwiseGroupConv(1, 1, SO2(), num_elements=8, in_num_elements=4)


def test_per_batch_element_sampler_is_refused():
    from groupconv.groups import SO2
    from groupconv.sampling import StratifiedSampler

    for variant in ("separable", "dseparable"):
        with pytest.raises(ValueError, match="per-batch-element"):
            SeparableGroupConv(2, 2, SO2(), 3, variant=variant, num_elements=4, kernel_net="siren",
                               sampler=StratifiedSampler(per="batch"))
