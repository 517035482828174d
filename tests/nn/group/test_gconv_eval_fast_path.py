"""The eval fast path of the regular G-convs (issue 14, item 2): a cached forward serves the
stored expanded kernel and bias without re-validating an input signature it has seen, and must
give what the full path gives, notice every parameter change and never skip a check on a new
input. The reference is a plain conv with the expanded kernel recomputed from scratch."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from groupconv.groups import SO2, CyclicGroup, DihedralGroup
from groupconv.nn import GroupConv, LiftingConv


def _tol(dtype: torch.dtype) -> dict[str, float]:
    return {"atol": 1e-5, "rtol": 1e-5} if dtype == torch.float32 else {"atol": 1e-11, "rtol": 1e-11}


def _reference(layer, x: torch.Tensor) -> torch.Tensor:
    """Independent of the cache: the expanded kernel recomputed from the current parameters
    (``_compute_weight`` neither reads nor writes the cache) and a plain conv2d."""
    cache, key = layer._kernel_cache, layer._cache_key
    with torch.no_grad():
        w = layer._compute_weight(layer.out_grid, layer.in_grid, False)
    assert layer._kernel_cache is cache and layer._cache_key == key
    b = None if layer.bias is None else layer.bias.detach().repeat_interleave(layer.num_elements)
    inp = x if isinstance(layer, LiftingConv) else x.flatten(1, 2)
    y = F.conv2d(inp, w, b, layer.stride, layer.padding, layer.dilation)
    return y.view(x.shape[0], layer.out_channels, layer.num_elements, *y.shape[2:])


def _cases():
    return [
        ("lift-C8", lambda: LiftingConv(3, 4, CyclicGroup(8), 5, padding=2), (1, 3, 8, 8)),
        ("gconv-D4", lambda: GroupConv(3, 4, DihedralGroup(4), 3, padding=1), (1, 3, 8, 8, 8)),
        ("gconv-SO2-siren", lambda: GroupConv(2, 3, SO2(), 3, padding=1, num_elements=6,
                                                kernel_net="siren"), (2, 2, 6, 8, 8)),
    ]


@pytest.mark.parametrize("name,make,shape", _cases(), ids=[c[0] for c in _cases()])
def test_cached_forward_matches_and_tracks_parameters(name, make, shape):
    torch.manual_seed(0)
    layer = make().eval()
    x = torch.randn(shape)
    calls = []
    orig = layer._check_input
    layer._check_input = lambda t: calls.append(1) or orig(t)
    with torch.no_grad():
        y0 = layer(x)  # fills the cache through the full path
        assert layer._kernel_cache is not None and calls == [1]
        y1 = layer(x)  # served by the fast path: no re-validation
        assert calls == [1], "the fast path re-validated an input signature it had seen"
        torch.testing.assert_close(y1, y0, **_tol(x.dtype))
        torch.testing.assert_close(y1, _reference(layer, x), **_tol(x.dtype))
        # an in-place parameter change (an optimizer step, load_state_dict) must be seen
        for p in layer.parameters():
            p.add_(0.1 * torch.randn_like(p))
        y2 = layer(x)
        assert (y2 - y1).abs().max() > 1e-3
        torch.testing.assert_close(y2, _reference(layer, x), **_tol(x.dtype))
        if layer.bias is not None:  # the bias alone
            layer.bias.add_(1.0)
            y3 = layer(x)
            torch.testing.assert_close(y3, y2 + 1.0, **_tol(x.dtype))
        # a new input shape goes through the checks again
        x2 = torch.randn(shape[0] + 1, *shape[1:])
        n = len(calls)
        torch.testing.assert_close(layer(x2), _reference(layer, x2), **_tol(x.dtype))
        assert len(calls) == n + 1


def test_new_signature_is_validated_after_a_cached_forward():
    layer = GroupConv(3, 4, CyclicGroup(4), 3, padding=1).eval()
    with torch.no_grad():
        layer(torch.randn(1, 3, 4, 8, 8))
        layer(torch.randn(1, 3, 4, 8, 8))
        with pytest.raises(ValueError, match="N_in=4"):
            layer(torch.randn(1, 3, 5, 8, 8))
        with pytest.raises(TypeError, match="dtype"):
            layer(torch.randn(1, 3, 4, 8, 8, dtype=torch.float64))
    big = GroupConv(3, 4, CyclicGroup(4), 5).eval()
    with torch.no_grad():
        big(torch.randn(1, 3, 4, 8, 8))
        with pytest.raises(ValueError, match="smaller than"):
            big(torch.randn(1, 3, 4, 3, 3))


def test_dtype_change_and_grad_mode():
    torch.manual_seed(1)
    layer = GroupConv(2, 3, CyclicGroup(4), 3, padding=1).eval()
    x = torch.randn(1, 2, 4, 6, 6)
    with torch.no_grad():
        layer(x), layer(x)
    layer.double()
    xd = x.double()
    with torch.no_grad():
        y = layer(xd)
        assert y.dtype == torch.float64
        torch.testing.assert_close(y, _reference(layer, xd), **_tol(torch.float64))
    # grad enabled with trainable parameters: the cache is bypassed and gradients flow
    layer(xd).square().sum().backward()
    assert layer.weight.grad is not None and layer.weight.grad.abs().sum() > 0
    # train() drops the cache and the fast path (training forward re-expands)
    layer.train()
    assert layer._kernel_cache is None and getattr(layer, "_eval_bias", None) is None
