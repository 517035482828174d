"""GCNN's off-grid options (issue 11): the input blur and smooth activations keep the exact
elements exact, export to plain torch, and the blur is the Gaussian it claims to be."""

from __future__ import annotations

import math

import pytest
import torch

from groupconv.groups import SO2, CyclicGroup
from groupconv.models import GCNN
from groupconv.models.gcnn import _gaussian_taps


@pytest.mark.parametrize("size", [15, 16])
@pytest.mark.parametrize("activation", ["relu", "gelu", "elu"])
def test_input_blur_and_activation_keep_rot90_and_flip_exact(size, activation):
    torch.manual_seed(0)
    net = GCNN(1, 5, SO2(), channels=(3, 3), num_elements=8, pool_after=(0,), input_blur=0.8,
               activation=activation).eval()
    x = torch.randn(2, 1, size, size, dtype=torch.float64)
    net = net.double()
    y = net(x)
    for k in (1, 2, 3):
        assert torch.allclose(net(torch.rot90(x, k, (-2, -1))), y, atol=1e-10)
    # control: the check can fail (SO(2) has no mirrors, a transpose changes the logits)
    assert not torch.allclose(net(x.transpose(-1, -2)), y, atol=1e-3)


def test_input_blur_is_a_normalised_gaussian_of_the_given_width():
    for sigma in (0.8, 1.5):  # (a sampled sigma = 0.5 Gaussian is narrower than its sigma)
        t = _gaussian_taps(sigma).double()
        r = torch.arange(t.numel(), dtype=torch.float64) - t.numel() // 2
        assert math.isclose(float(t.sum()), 1.0, rel_tol=1e-6)
        assert torch.allclose(t, t.flip(0))
        assert math.isclose(float((t * r * r).sum()), sigma ** 2, rel_tol=0.05)
    torch.manual_seed(0)
    net = GCNN(1, 3, SO2(), channels=(2,), num_elements=8, pool_after=(), input_blur=1.0)
    plain = GCNN(1, 3, SO2(), channels=(2,), num_elements=8, pool_after=())
    plain.load_state_dict(net.state_dict())
    x = torch.zeros(1, 1, 15, 15)
    x[..., 7, 7] = 1.0
    # the blur acts before the lifting layer: features of the blurred delta = features of the
    # blurred image computed independently (outer product of the taps)
    t = _gaussian_taps(1.0)
    r = t.numel() // 2
    img = torch.zeros(1, 1, 15, 15)
    img[..., 7 - r:8 + r, 7 - r:8 + r] = torch.outer(t, t)
    net.eval()
    plain.eval()
    assert torch.allclose(net(x), plain(img), atol=1e-6)


@pytest.mark.parametrize("opts", [{"input_blur": 0.8}, {"activation": "gelu"},
                                  {"input_blur": 1.0, "activation": "elu"}])
def test_export_matches_with_the_options(opts):
    torch.manual_seed(0)
    net = GCNN(1, 4, SO2(), channels=(3, 3), num_elements=8, pool_after=(0,), **opts).eval()
    x = torch.randn(3, 1, 12, 12)
    assert torch.allclose(net.export()(x), net(x), atol=1e-5)


def test_option_errors_name_the_argument():
    with pytest.raises(ValueError, match="input_blur"):
        GCNN(1, 4, CyclicGroup(4), channels=(2,), input_blur=-1.0)
    with pytest.raises(ValueError, match="input_blur"):
        GCNN(1, 4, CyclicGroup(4), channels=(2,), input_blur=True)
    with pytest.raises(ValueError, match="activation"):
        GCNN(1, 4, CyclicGroup(4), channels=(2,), activation="tanh")
