"""OversampledActivation (issue 11, the network level): a ReLU on a 2x finer grid, low-passed back.

Checked against an independent computation (``F.interpolate`` + ReLU + a strided ``conv2d``
with the binomial taps), for exact 90-degree rotations and flips of odd and even maps, and in
:class:`~groupconv.models.gcnn.GCNN` (exact at the grid's 90-degree elements, export).
"""

import pytest
import torch
import torch.nn.functional as F

from groupconv.groups import SO2, CyclicGroup
from groupconv.models.gcnn import GCNN
from groupconv.nn.group.pooling import OversampledActivation


def _reference(x: torch.Tensor) -> torch.Tensor:
    """Bilinear 2x upsampling (align_corners=False), ReLU, replicate pad 1, [1,3,3,1]/8 stride 2."""
    lead, (h, w) = x.shape[:-2], x.shape[-2:]
    y = F.interpolate(x.reshape(1, -1, h, w), scale_factor=2, mode="bilinear", align_corners=False)
    y = F.pad(torch.relu(y), (1, 1, 1, 1), mode="replicate")
    t = torch.tensor([1.0, 3.0, 3.0, 1.0], dtype=x.dtype) / 8
    k = torch.outer(t, t).expand(y.shape[1], 1, 4, 4)
    return F.conv2d(y, k, stride=2, groups=y.shape[1]).reshape(*lead, h, w)


@pytest.mark.parametrize("size", [(7, 7), (8, 8), (6, 9)])
def test_matches_an_independent_computation(size):
    torch.manual_seed(0)
    x = torch.randn(2, 3, 4, *size, dtype=torch.float64)
    y = OversampledActivation()(x)
    assert y.shape == x.shape
    assert torch.allclose(y, _reference(x), atol=1e-12)
    # not the plain ReLU (the check can tell the two apart)
    assert not torch.allclose(y, torch.relu(x), atol=1e-2)


@pytest.mark.parametrize("n", [7, 8])
def test_rot90_and_flips_commute_exactly(n):
    torch.manual_seed(1)
    x = torch.randn(2, 3, 8, n, n, dtype=torch.float64)
    act = OversampledActivation()
    y = act(x)
    for k in (1, 2, 3):
        assert torch.allclose(act(torch.rot90(x, k, (-2, -1))), torch.rot90(y, k, (-2, -1)), atol=1e-12)
    assert torch.allclose(act(x.flip(-1)), y.flip(-1), atol=1e-12)
    # control: a shift by one pixel is not an exact symmetry of the 2x grid's edges
    assert not torch.allclose(act(x.roll(1, -1)), y.roll(1, -1), atol=1e-6)


def test_constants_and_smooth_maps_pass_nearly_unchanged():
    c = torch.full((1, 2, 9, 9), 0.7, dtype=torch.float64)
    assert torch.allclose(OversampledActivation()(c), c, atol=1e-12)
    # a positive smooth ramp: ReLU is the identity there; only the low-pass remains
    yy, xx = torch.meshgrid(torch.arange(16.0), torch.arange(16.0), indexing="ij")
    ramp = (1 + 0.05 * yy + 0.03 * xx).double()[None, None]
    assert torch.allclose(OversampledActivation(torch.nn.Identity())(ramp)[..., 1:-1, 1:-1],
                          ramp[..., 1:-1, 1:-1], atol=1e-12)


def test_errors_name_the_argument():
    with pytest.raises(TypeError, match="act"):
        OversampledActivation("relu")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="activation_oversample"):
        GCNN(1, 4, CyclicGroup(4), channels=(2,), activation_oversample=3)
    with pytest.raises(ValueError, match="activation_oversample"):
        GCNN(1, 4, CyclicGroup(4), channels=(2,), activation_oversample=True)


@pytest.mark.parametrize("size", [15, 16])
def test_gcnn_with_oversampled_relu_stays_exact_at_90_degrees_and_exports(size):
    torch.manual_seed(0)
    net = GCNN(1, 5, SO2(), channels=(3, 3), num_elements=8, pool_after=(0,),
               activation_oversample=2).eval().double()
    x = torch.randn(2, 1, size, size, dtype=torch.float64)
    with torch.no_grad():
        y = net(x)
        for k in (1, 2, 3):
            assert torch.allclose(net(torch.rot90(x, k, (-2, -1))), y, atol=1e-10)
        assert not torch.allclose(net(x.transpose(-1, -2)), y, atol=1e-3)  # SO(2): no mirrors
        assert torch.allclose(net.export()(x), y, atol=1e-10)
        plain = GCNN(1, 5, SO2(), channels=(3, 3), num_elements=8, pool_after=(0,)).eval().double()
        plain.load_state_dict(net.state_dict())
        assert not torch.allclose(plain(x), y, atol=1e-4)  # the option changes the network
