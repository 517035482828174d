"""Group pooling, invariant readout and group-shared normalisation."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from groupconv.nn.group.pooling import (
    GlobalInvariantPool,
    GroupBatchNorm,
    GroupLayerNorm,
    GroupMaxPool,
    GroupMeanPool,
    SpatialAvgPool,
    SpatialMaxPool,
)


def act(x: torch.Tensor, k: int) -> torch.Tensor:
    """C4 action on (B, C, 4, H, W): rotate space, roll the group axis."""
    return torch.roll(torch.rot90(x, k, dims=(-2, -1)), k, dims=2)


def test_group_pools(device, float_dtype):
    x = torch.randn(2, 3, 4, 5, 6, device=device, dtype=float_dtype)
    assert torch.equal(GroupMaxPool(spatial_dims=2)(x), x.max(dim=2).values)
    assert torch.allclose(GroupMeanPool()(x), x.sum(dim=2) / 4)
    assert torch.equal(GroupMaxPool()(torch.roll(x, 1, dims=2)), GroupMaxPool()(x))
    with pytest.raises(ValueError, match="x must have shape"):
        GroupMaxPool(spatial_dims=3)(x)
    with pytest.raises(ValueError, match="x must have shape"):
        GroupMeanPool()(torch.randn(2, 3, 4))


@pytest.mark.parametrize("cls,ref", [(SpatialMaxPool, nn.MaxPool2d), (SpatialAvgPool, nn.AvgPool2d)])
def test_spatial_pools(cls, ref, device):
    torch.manual_seed(0)
    x = torch.randn(2, 3, 4, 8, 8, device=device)
    y = cls(2)(x)
    assert y.shape == (2, 3, 4, 4, 4)
    assert torch.allclose(y[:, :, 1], ref(2)(x[:, :, 1]), atol=1e-6)
    assert torch.allclose(cls(2)(act(x, 1)), act(y, 1), atol=1e-6)  # even size, stride 2: exact
    assert cls(2)(x[:, :, 0]).shape == (2, 3, 4, 4)  # plain maps too
    assert cls(3, stride=1, padding=1, spatial_dims=1)(torch.randn(1, 2, 3, 7)).shape == (1, 2, 3, 7)
    with pytest.raises(ValueError, match="x must have shape"):
        cls(2)(torch.randn(2, 3, 4, 8, 8, 8))


def test_global_invariant_pool(float_dtype):
    torch.manual_seed(1)
    x = torch.randn(2, 3, 4, 7, 7, dtype=float_dtype)
    for g in ("max", "mean"):
        for s in ("max", "mean"):
            pool = GlobalInvariantPool(g, s)
            y = pool(x)
            assert y.shape == (2, 3)
            for k in (1, 2, 3):
                assert torch.allclose(pool(act(x, k)), y, atol=1e-6)
    assert torch.allclose(GlobalInvariantPool("mean", "mean")(x), x.mean(dim=(2, 3, 4)))
    with pytest.raises(ValueError, match="group_reduce"):
        GlobalInvariantPool("sum")
    assert GlobalInvariantPool(spatial_dims=3)(torch.randn(1, 2, 3, 4, 4, 4)).shape == (1, 2)


def test_group_batch_norm(device, float_dtype):
    torch.manual_seed(0)
    fk = {"device": device, "dtype": float_dtype}
    bn = GroupBatchNorm(3, **fk)
    ref = nn.BatchNorm3d(3, **fk)
    assert bn.state_dict().keys() == ref.state_dict().keys()
    x = torch.randn(4, 3, 4, 5, 5, **fk) * 3 + 1
    y = bn(x)
    assert torch.allclose(y, ref(x), atol=1e-5)
    assert torch.allclose(y.mean(dim=(0, 2, 3, 4)), torch.zeros(3, **fk), atol=1e-5)
    assert torch.allclose(bn(act(x, 1)), act(y, 1), atol=1e-5)
    bn.eval()
    assert torch.allclose(bn(act(x, 3)), act(bn(x), 3), atol=1e-5)
    one_d = GroupBatchNorm(2, spatial_dims=1, **fk)
    assert one_d(torch.randn(3, 2, 4, 6, **fk)).shape == (3, 2, 4, 6)
    with pytest.raises(ValueError, match="x must have shape"):
        bn(torch.randn(4, 3, 5, 5, **fk))
    with pytest.raises(ValueError, match="num_features=3"):
        bn(torch.randn(4, 2, 4, 5, 5, **fk))


@pytest.mark.parametrize("spatial", [False, True])
def test_group_layer_norm(spatial, float_dtype):
    torch.manual_seed(2)
    ln = GroupLayerNorm(3, spatial=spatial, dtype=float_dtype)
    with torch.no_grad():
        ln.weight.copy_(torch.tensor([1.0, 2.0, 3.0]))
    x = torch.randn(2, 3, 4, 5, 5, dtype=float_dtype) * 2 + 5
    y = ln(x)
    dims = (1, 2, 3, 4) if spatial else (1, 2)
    z = (y - ln.bias.view(1, -1, 1, 1, 1)) / ln.weight.view(1, -1, 1, 1, 1)
    assert torch.allclose(z.mean(dim=dims), torch.zeros(()).to(float_dtype), atol=1e-5)
    assert torch.allclose(ln(act(x, 1)), act(y, 1), atol=1e-5)
    with pytest.raises(ValueError, match="num_channels=3"):
        ln(torch.randn(2, 4, 4, 5, 5, dtype=float_dtype))
