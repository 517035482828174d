"""Whole-model export of G-CNNs to plain torch modules (``GCNN.export``, ``groupconv.nn.group.export``).

The exported network is compared with the source model's eval-mode output (a different code path:
tolerance, not bit equality) and checked for invariance with ``torch.rot90``/``torch.flip``
applied independently of the library.
"""

from __future__ import annotations

import pytest
import torch
from _helpers import rel_norm
from torch import nn

from groupconv.groups import SO2, CyclicGroup, DihedralGroup
from groupconv.models import GCNN
from groupconv.nn import BlurPool, GroupBatchNorm, GroupConv, GroupMeanPool, SpatialAvgPool
from groupconv.nn.group.export import FlatGroupLayerNorm, FlatGroupPool, export_module, export_stack


def _trained(net: nn.Module, seed: int = 0, steps: int = 3) -> nn.Module:
    """A few SGD steps in training mode so running statistics and affine terms are non-trivial."""
    gen = torch.Generator().manual_seed(seed)
    opt = torch.optim.SGD(net.parameters(), lr=0.05)
    net.train()
    for _ in range(steps):
        x = torch.randn(8, net.in_channels, 16, 16, generator=gen, dtype=next(net.parameters()).dtype)
        opt.zero_grad()
        net(x).square().mean().backward()
        opt.step()
    return net.eval()


def _plain(module: nn.Module) -> bool:
    ok = (FlatGroupPool, FlatGroupLayerNorm, BlurPool)  # BlurPool: stateless torch ops, kept
    return all(isinstance(m, ok) or type(m).__module__.startswith("torch.nn") for m in module.modules())


@pytest.mark.parametrize("group,kw", [
    (CyclicGroup(4), {}),
    (DihedralGroup(4), {}),
    (CyclicGroup(4), {"norm": "layer", "group_pool": "mean", "spatial_pool": "max"}),
    (DihedralGroup(4), {"norm": "none", "dropout": 0.3}),
    (SO2(), {"num_elements": 8, "kernel_net": "siren"}),
])
def test_gcnn_export_matches_model(group, kw):
    torch.manual_seed(0)
    net = _trained(GCNN(1, 5, group, channels=(4, 6, 4), pool_after=(0, 1), **kw))
    flat = net.export()
    assert isinstance(flat, nn.Sequential) and not flat.training and _plain(flat)
    assert sum(isinstance(m, nn.Conv2d) for m in flat) == 3
    assert not any(isinstance(m, nn.Dropout) for m in flat.modules())
    x = torch.randn(6, 1, 16, 16, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        y, yf = net(x), flat(x)
    assert yf.shape == y.shape == (6, 5)
    assert rel_norm(yf, y) < 1e-5
    assert net.training is False


@pytest.mark.parametrize("group", [CyclicGroup(4), DihedralGroup(4)])
def test_exported_network_is_invariant_and_independent(group):
    torch.manual_seed(0)
    net = _trained(GCNN(1, 5, group, channels=(4, 4), pool_after=(0,)))
    flat = net.export()
    x = torch.randn(4, 1, 16, 16, generator=torch.Generator().manual_seed(2))
    with torch.no_grad():
        y = flat(x)
        actions = [torch.rot90(x, k, dims=(-2, -1)) for k in (1, 2, 3)]
        if isinstance(group, DihedralGroup):
            actions += [torch.flip(x, dims=(-1,)), torch.flip(torch.rot90(x, 1, dims=(-2, -1)), dims=(-2,))]
        for gx in actions:
            assert rel_norm(flat(gx), y) < 1e-5
        # the export holds copies: changing the source model does not change it
        for p in net.parameters():
            p.add_(1.0)
        assert torch.equal(flat(x), y)


def test_export_follows_dtype_and_device(device, float_dtype):
    torch.manual_seed(0)
    net = GCNN(1, 3, CyclicGroup(4), channels=(3, 3), pool_after=(0,)).to(device, float_dtype)
    net = _trained(net)
    flat = net.export()
    x = torch.randn(2, 1, 8, 8, dtype=float_dtype, device=device)
    with torch.no_grad():
        yf, y = flat(x), net(x)
    assert yf.dtype == float_dtype and yf.device == x.device
    assert rel_norm(yf, y) < (1e-5 if float_dtype == torch.float32 else 1e-12)


def test_export_module_pieces_and_errors():
    G = CyclicGroup(4)
    conv = GroupConv(2, 3, G, 3, padding=1)
    x = torch.randn(2, 2, 4, 6, 6)
    pools = export_stack([conv, SpatialAvgPool(2), GroupMeanPool()], num_elements=4)
    with torch.no_grad():
        ref = conv(x)
        ref = torch.nn.functional.avg_pool2d(ref.flatten(1, 2), 2).unflatten(1, (3, 4)).mean(2)
        assert rel_norm(pools(x.flatten(1, 2)), ref) < 1e-6
    with pytest.raises(ValueError, match="num_elements must be given"):
        export_module(GroupBatchNorm(3))
    with pytest.raises(ValueError, match="track_running_stats=True"):
        export_module(GroupBatchNorm(3, track_running_stats=False), num_elements=4)
    with pytest.raises(TypeError, match="module must be a groupconv layer"):
        export_module(GCNN(1, 2, G, channels=(2,), pool_after=()))
    with pytest.raises(ValueError, match="x must have shape"):
        FlatGroupPool(4)(torch.randn(1, 6, 3, 3))
