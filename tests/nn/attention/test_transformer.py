"""Group transformer (nn/attention/transformer.py): blocks and the model built from GSA layers.

Invariance with the verification kit, the block's equivariance and gradients, the embedding and
readout against formulas written here, and option errors.
"""

from __future__ import annotations

import pytest
import torch
from _gsa import GROUPS

from groupconv.groups import CyclicGroup, DihedralGroup
from groupconv.nn.attention.transformer import GroupTransformer, TransformerBlock
from groupconv.testing import assert_equivariant, assert_invariant


# -- blocks and model -----------------------------------------------------------------------------------
@pytest.mark.parametrize("gname,dtype", [("C4", torch.float32), ("D4", torch.float64),
                                         ("SO2grid8", torch.float64)])
def test_group_transformer_invariant(gname, dtype, device):
    group, n = GROUPS[gname]
    torch.manual_seed(0)
    model = GroupTransformer(2, 3, group, channels=4, blocks=(1, 1), heads=2, patch_size=3,
                             num_elements=n, device=device, dtype=dtype).eval()
    x = torch.randn(2, 2, 8, 8, dtype=dtype, device=device)
    report = assert_invariant(model, x, mode="exact")
    assert len(report.rows) == (8 if gname == "D4" else 4)
    assert model(x).shape == (2, 3)
    assert isinstance(model.out_field.transform(model(x), group.identity()), torch.Tensor)


def test_group_transformer_head_channels(device):
    """GSA-Nets' layout (3 heads of channels // 2 each) reaches every layer and stays invariant."""
    torch.manual_seed(0)
    model = GroupTransformer(1, 3, CyclicGroup(4), channels=4, blocks=(1, 1), heads=3, head_channels=2,
                             patch_size=3, device=device, dtype=torch.float64).eval()
    layers = [model.lift] + [blk.attention for stage in model.stages for blk in stage]
    assert [(a.heads, a.head_dim, a.query.weight.shape[0]) for a in layers] == [(3, 2, 6)] * 3
    x = torch.randn(2, 1, 8, 8, dtype=torch.float64, device=device)
    assert len(assert_invariant(model, x, mode="exact").rows) == 4


def test_transformer_block_equivariant_and_trains(device):
    torch.manual_seed(0)
    block = TransformerBlock(4, DihedralGroup(4), heads=2, patch_size=3, device=device,
                             dtype=torch.float64).eval()
    x = torch.randn(1, 4, 8, 5, 5, dtype=torch.float64, device=device)
    assert_equivariant(block, x, mode="exact")
    y, attn = block(x, return_attention=True)
    assert attn.shape == (1, 2, 8, 5, 5, 8, 3, 3)
    block.train()
    model = GroupTransformer(1, 2, CyclicGroup(4), channels=4, blocks=(1,), heads=2, patch_size=3,
                             device=device)
    model(torch.randn(2, 1, 6, 6, device=device)).sum().backward()
    grads = [p.grad for p in model.parameters() if p.requires_grad]
    assert all(g is not None and bool(torch.isfinite(g).all()) for g in grads)


@pytest.mark.parametrize("embedding", ["mlp", "linear", "none"])
def test_transformer_embedding_and_readout(embedding, device):
    torch.manual_seed(0)
    kw = dict(channels=4, blocks=(0, 1), heads=2, patch_size=3, embedding=embedding, device=device,
              dtype=torch.float64)
    mean = GroupTransformer(1, 3, CyclicGroup(4), **kw).eval()
    assert mean.lift.in_channels == (1 if embedding == "none" else 4)
    assert len(list(mean.embed.parameters())) == {"mlp": 4, "linear": 2, "none": 0}[embedding]
    x = torch.randn(2, 1, 8, 8, dtype=torch.float64, device=device)
    # the readout: mean over space of the per-pixel logits, then max over the group axis
    f = mean.features(x)
    assert f.shape == (2, 3, 4, 4, 4)
    torch.testing.assert_close(mean(x), f.mean(dim=(-2, -1)).amax(-1))
    summed = GroupTransformer(1, 3, CyclicGroup(4), spatial_pool="sum", **kw).eval()
    summed.load_state_dict(mean.state_dict())
    torch.testing.assert_close(summed(x), 16 * mean(x))
    assert_invariant(mean, x, mode="exact")
    # the embedding is pointwise: it only sees one pixel's channels
    if embedding != "none":
        e = mean.embed(x.movedim(1, -1)).movedim(-1, 1)
        e2 = mean.embed(x[:, :, :1, :1].movedim(1, -1)).movedim(-1, 1)
        torch.testing.assert_close(e[:, :, :1, :1], e2)


def test_transformer_option_errors():
    G = CyclicGroup(4)
    with pytest.raises(ValueError, match="embedding must be one of.*got 'conv'"):
        GroupTransformer(1, 2, G, channels=4, blocks=(1,), heads=2, embedding="conv")
    with pytest.raises(ValueError, match="spatial_pool must be 'mean' or 'sum', got 'max'"):
        GroupTransformer(1, 2, G, channels=4, blocks=(1,), heads=2, spatial_pool="max")
    model = GroupTransformer(2, 2, G, channels=4, blocks=(1,), heads=2, patch_size=3)
    with pytest.raises(ValueError, match=r"in_channels=2.*\(1, 1, 6, 6\)"):
        model(torch.randn(1, 1, 6, 6))


def test_odd_pooling_warns():
    model = GroupTransformer(1, 2, CyclicGroup(4), channels=4, blocks=(1, 1), heads=2, patch_size=3)
    with pytest.warns(UserWarning, match="drops a row"):
        model(torch.randn(1, 1, 7, 7))
