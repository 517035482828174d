"""The input checks that closed the fuzzer's known gaps (issue 12, item 6): their boundaries.

``tests/test_fuzz_layers.py`` only asks that bad input raises *some* named ValueError /
TypeError. These tests pin where each check draws the line, so that a check that is too strict
(refusing input torch handles) or off by one fails here.
"""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from groupconv.models import TCN, Z2CNN
from groupconv.nn import ChannelLayerNorm, SetSelfAttention, SpatialMaxPool
from groupconv.nn.group.pooling import GroupBatchNorm, GroupMeanPool


def _gen() -> torch.Generator:
    return torch.Generator().manual_seed(0)


@pytest.mark.parametrize("layer", [GroupBatchNorm(2), ChannelLayerNorm(2)], ids=["bn", "ln"])
def test_norms_keep_half_input_with_float32_parameters(layer):
    # torch's batch_norm / layer_norm take half x with float32 statistics: still allowed
    x = torch.randn(2, 2, 4, 3, 3, generator=_gen())
    y16 = layer(x.half())
    assert y16.dtype == torch.float16 and torch.isfinite(y16).all()
    torch.testing.assert_close(y16.float(), layer(x), atol=2e-2, rtol=2e-2)
    with pytest.raises(TypeError, match=r"x has dtype torch\.float64 .* torch\.float32"):
        layer(x.double())
    layer.double()  # and a float64 layer takes float64 input
    assert layer(x.double()).dtype == torch.float64


def test_integer_input_is_refused_by_name():
    with pytest.raises(TypeError, match="x must be a floating-point tensor, got dtype torch.int64"):
        GroupMeanPool()(torch.ones(1, 2, 4, 3, 3, dtype=torch.int64))
    with pytest.raises(TypeError, match="x must be a floating-point tensor"):
        TCN(2, 3, hidden_channels=4)(torch.ones(1, 2, 8, dtype=torch.int64))


def test_channel_layer_norm_names_channels():
    with pytest.raises(ValueError, match=r"channels=2.*got shape \(2, 3, 5\)"):
        ChannelLayerNorm(2)(torch.randn(2, 3, 5))


def test_set_attention_names_both_dtypes():
    layer = SetSelfAttention(4, heads=2)
    with pytest.raises(TypeError, match=r"SetSelfAttention: x has dtype torch\.float64 .* torch\.float32"):
        layer(torch.randn(2, 5, 4, dtype=torch.float64))


@pytest.mark.parametrize("size, kernel, padding", [(1, 2, 0), (1, 2, 1), (2, 2, 0), (3, 3, 1), (2, 3, 0)])
def test_spatial_pool_boundary_matches_torch(size, kernel, padding):
    # torch's own rule (computed here, not by the layer): output size >= 1 iff size + 2 p >= k
    pool = SpatialMaxPool(kernel, padding=padding)
    x = torch.randn(1, 2, 4, size, size, generator=_gen())
    if size + 2 * padding >= kernel:
        ref = F.max_pool2d(x.flatten(1, 2), kernel, kernel, padding).unflatten(1, (2, 4))
        assert torch.equal(pool(x), ref)
    else:
        with pytest.raises(ValueError, match="SpatialMaxPool: x has spatial size"):
            pool(x)


@pytest.mark.parametrize("size", [1, 2, 3, 4, 5])
def test_z2cnn_pool_size_boundary(size):
    # two 2x2 max pools after odd 'same' convs: the input needs >= 2 ** 2 pixels per side
    model = Z2CNN(2, 3, channels=(3, 3), pool_after=(0, 1)).eval()
    x = torch.randn(1, 2, size, size, generator=_gen())
    if size >= 4:
        assert model(x).shape == (1, 3)
    else:
        with pytest.raises(ValueError, match="too small for the 2x2 max pool"):
            model(x)
