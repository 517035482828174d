"""FlexConv under ``torch.compile(fullgraph=True)``: the bucketed crop traces as one graph and
matches eager mode (eval and training gradients); a mask that outgrows the bucket fails loudly."""

from __future__ import annotations

import copy

import pytest
import torch

from groupconv.nn import FlexConv, SeparableFlexConv
from groupconv.nn.continuous.flexconv import _bucket

_CASES = [
    (FlexConv, dict(data_dim=1, causal=True, mask_init_sigma=0.3), (2, 2, 64)),
    (FlexConv, dict(data_dim=2, kernel_size=15, mask_init_sigma=0.25), (2, 2, 16, 16)),
    (SeparableFlexConv, dict(data_dim=1, mask_init_sigma=0.2), (2, 2, 50)),
]


def _layer(cls, kw):
    torch.manual_seed(0)
    return cls(2, 3, dtype=torch.float64, **kw)


def _x(shape, seed=0):
    return torch.randn(*shape, generator=torch.Generator().manual_seed(seed), dtype=torch.float64)


def test_bucket_sizes():
    assert [_bucket(c, 101, False) for c in (1, 3, 5, 7, 17, 19, 99)] == [1, 3, 5, 9, 17, 33, 101]
    assert [_bucket(c, 100, True) for c in (1, 2, 3, 9, 64, 65)] == [1, 2, 4, 16, 64, 100]


@pytest.mark.slow
@pytest.mark.parametrize("cls,kw,shape", _CASES)
def test_fullgraph_eval_matches_eager(cls, kw, shape):
    layer = _layer(cls, kw)
    x = _x(shape)
    layer(x)  # eager forward: records the crop bucket for this size
    full = tuple(c.shape[0] for c in layer.axis_coordinates(shape[2:]))
    crop = layer.crop_size(shape[2:])
    assert crop != full  # the crop is active, so the bucket path is exercised
    layer.eval()
    torch._dynamo.reset()
    compiled = torch.compile(layer, fullgraph=True, backend="eager")
    with torch.no_grad():
        ref = layer(x)
        got = compiled(x)
    torch.testing.assert_close(got, ref, rtol=1e-12, atol=1e-12)
    # before any eager forward the bucket is the full grid: still equal
    fresh = _layer(cls, {**kw, "reference_size": shape[2:]}).eval()
    torch._dynamo.reset()
    with torch.no_grad():
        torch.testing.assert_close(torch.compile(fresh, fullgraph=True, backend="eager")(x), fresh(x),
                                   rtol=1e-12, atol=1e-12)
    torch._dynamo.reset()


@pytest.mark.slow
@pytest.mark.parametrize("cls,kw,shape", _CASES[:2])
def test_fullgraph_training_gradients_match_eager(cls, kw, shape):
    layer = _layer(cls, kw)
    x = _x(shape)
    layer(x)
    other = copy.deepcopy(layer)
    torch._dynamo.reset()
    compiled = torch.compile(other, fullgraph=True, backend="aot_eager")
    layer(x).square().mean().backward()
    compiled(x).square().mean().backward()
    for (name, p), q in zip(layer.named_parameters(), other.parameters()):
        assert p.grad is not None and q.grad is not None, name
        torch.testing.assert_close(q.grad, p.grad, rtol=1e-9, atol=1e-12)
    torch._dynamo.reset()


@pytest.mark.slow
def test_mask_outgrowing_the_bucket_fails_loudly():
    layer = _layer(FlexConv, dict(data_dim=1, causal=True, mask_init_sigma=0.1))
    x = _x((1, 2, 64))
    layer(x)
    layer.eval()
    torch._dynamo.reset()
    compiled = torch.compile(layer, fullgraph=True, backend="eager")
    with torch.no_grad():
        compiled(x)
        layer.mask.log_sigma.add_(2.0)  # the mask widens far beyond the recorded bucket
        with pytest.raises(RuntimeError, match="outgrew the compiled crop bucket"):
            compiled(x)
    torch._dynamo.reset()
