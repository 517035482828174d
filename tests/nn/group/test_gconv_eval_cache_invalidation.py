"""Correctness of the regular G-convs' eval kernel cache (issue 14, item 2).

The cache is checked by stored version counters and pointers and dropped on assignment,
``_apply`` and ``train()`` (:mod:`groupconv.nn.group.gconv_cache`): every way of changing a
parameter must reach the eval output. The reference is independent of the cache: a deep copy in
training mode (training never caches) run under ``torch.no_grad``. Each test first proves the
cache is in use (the second forward expands no kernel), so a pass is not a cache never taken.
"""

from __future__ import annotations

import copy
import pickle

import pytest
import torch
from torch import nn

from groupconv.groups import SO2, CyclicGroup, DihedralGroup
from groupconv.nn import GroupConv, LiftingConv
from groupconv.nn.group.partial import PartialGroupConv


def _tol(dtype: torch.dtype) -> dict[str, float]:
    return {"atol": 1e-5, "rtol": 1e-5} if dtype == torch.float32 else {"atol": 1e-11, "rtol": 1e-11}


def _reference(layer: nn.Module, x: torch.Tensor) -> torch.Tensor:
    """The layer's output recomputed without any cache: a training-mode deep copy, no_grad."""
    ref = copy.deepcopy(layer).train()
    ref.__dict__.pop("_compute_weight", None)  # the copy of a counting wrapper calls the original
    with torch.no_grad():
        return ref(x)


def _counting(layer):
    """Count kernel expansions (``_compute_weight`` calls) of ``layer``."""
    calls = []
    orig = layer._compute_weight
    layer._compute_weight = lambda *a: calls.append(1) or orig(*a)
    return calls


def _cases():
    return [
        ("gconv-C8", lambda: GroupConv(3, 4, CyclicGroup(8), 5, padding=2), (1, 3, 8, 8, 8)),
        ("lift-D4", lambda: LiftingConv(3, 4, DihedralGroup(4), 3, padding=1), (1, 3, 8, 8)),
        ("gconv-SO2-siren", lambda: GroupConv(2, 3, SO2(), 3, padding=1, num_elements=6,
                                                kernel_net="siren"), (1, 2, 6, 8, 8)),
    ]


def _cached_layer(make, shape, seed=0):
    """An eval layer whose cache and fast path are filled, its input, and the expansion count."""
    torch.manual_seed(seed)
    layer = make().eval()
    x = torch.randn(shape)
    calls = _counting(layer)
    with torch.no_grad():
        y = layer(x)
        assert calls == [1]
        assert torch.equal(layer(x), y) and calls == [1], "the cache was not used"
        assert layer._eval_state is not None
    return layer, x, y, calls


CASES = _cases()
IDS = [c[0] for c in CASES]


@pytest.mark.parametrize("name,make,shape", CASES, ids=IDS)
def test_inplace_edit_under_no_grad(name, make, shape):
    layer, x, y0, calls = _cached_layer(make, shape)
    for p in layer.parameters():
        with torch.no_grad():
            p.add_(0.5)
        with torch.no_grad():
            y = layer(x)
        assert (y - y0).abs().max() > 1e-3
        torch.testing.assert_close(y, _reference(layer, x), **_tol(x.dtype))
        y0 = y
    assert len(calls) == 1 + len(list(layer.parameters()))


@pytest.mark.parametrize("assign", [False, True], ids=["copy", "assign"])
@pytest.mark.parametrize("name,make,shape", CASES, ids=IDS)
def test_load_state_dict(name, make, shape, assign):
    layer, x, y0, _ = _cached_layer(make, shape)
    torch.manual_seed(123)
    other = make()
    layer.load_state_dict(other.state_dict(), assign=assign)
    with torch.no_grad():
        y = layer(x)
        expected = other.eval()(x)
    assert (y - y0).abs().max() > 1e-3
    torch.testing.assert_close(y, expected, **_tol(x.dtype))


@pytest.mark.parametrize("name,make,shape", CASES, ids=IDS)
def test_dtype_round_trip(name, make, shape):
    # float32 -> bfloat16 -> float32 rounds the parameters and may hand them back their old
    # storage pointers with unchanged version counters: _apply must drop the cache
    layer, x, y0, _ = _cached_layer(make, shape)
    layer.to(torch.bfloat16).to(torch.float32)
    with torch.no_grad():
        y = layer(x)
    assert (y - y0).abs().max() > 1e-6
    torch.testing.assert_close(y, _reference(layer, x), **_tol(x.dtype))
    layer.double()
    with torch.no_grad():
        yd = layer(x.double())
    assert yd.dtype == torch.float64
    torch.testing.assert_close(yd, _reference(layer, x.double()), **_tol(torch.float64))
    with pytest.raises(TypeError, match="dtype"):  # the old float32 signature is not trusted
        with torch.no_grad():
            layer(x)


@pytest.mark.parametrize("name,make,shape", CASES, ids=IDS)
def test_optimizer_step_in_eval_and_after_train(name, make, shape):
    layer, x, y0, _ = _cached_layer(make, shape)
    opt = torch.optim.SGD(layer.parameters(), lr=0.5)
    # eval mode with gradients: the cache is bypassed, the step changes the parameters in place
    layer(x).square().sum().backward()
    assert all(p.grad is not None for p in layer.parameters())
    opt.step()
    with torch.no_grad():
        y1 = layer(x)
    assert (y1 - y0).abs().max() > 1e-3
    torch.testing.assert_close(y1, _reference(layer, x), **_tol(x.dtype))
    # a training step, back to eval
    layer.train()
    assert layer._kernel_cache is None and layer._eval_state is None
    opt.zero_grad()
    layer(x).square().sum().backward()
    opt.step()
    layer.eval()
    with torch.no_grad():
        y2 = layer(x)
    assert (y2 - y1).abs().max() > 1e-3
    torch.testing.assert_close(y2, _reference(layer, x), **_tol(x.dtype))


@pytest.mark.parametrize("name,make,shape", CASES, ids=IDS)
def test_train_eval_switch_and_training_gradients(name, make, shape):
    torch.manual_seed(3)
    fresh = make()
    layer = copy.deepcopy(fresh).eval()
    x = torch.randn(shape)
    with torch.no_grad():  # fill and use the cache, then train
        layer(x), layer(x)
    layer.train()
    assert layer._kernel_cache is None and layer._eval_state is None
    calls = _counting(layer)
    xs = [x.clone().requires_grad_(True) for _ in range(2)]
    outs = [m(xi) for m, xi in zip((layer, fresh), xs)]
    assert calls == [1]  # training re-expands
    g = torch.randn_like(outs[0])
    grads = [torch.autograd.grad(o, [xi, *m.parameters()], g)
             for o, xi, m in zip(outs, xs, (layer, fresh))]
    # the same computation repeated on equal parameters: bit-identical gradients
    assert torch.equal(outs[0], outs[1])
    for a, b in zip(*grads):
        assert torch.equal(a, b)
    # eval with trainable parameters and gradients on: no cache, same output and gradients
    layer.eval()
    y = layer(xs[0])
    assert y.requires_grad and layer._kernel_cache is None
    ge = torch.autograd.grad(y, [xs[0], *layer.parameters()], g)
    for a, b in zip(ge, grads[1]):
        torch.testing.assert_close(a, b, **_tol(x.dtype))


@pytest.mark.parametrize("which", ["first", "last"])
@pytest.mark.parametrize("name,make,shape", CASES, ids=IDS)
def test_parameter_assignment_data_swap_and_clear_cache(name, make, shape, which):
    # "first": a parameter of the layer itself; "last": for a kernel net, one of a submodule's
    layer, x, y0, _ = _cached_layer(make, shape)
    named = list(layer.named_parameters())
    p_name, p = named[0] if which == "first" else named[-1]
    owner = layer.get_submodule(p_name.rpartition(".")[0]) if "." in p_name else layer
    attr = p_name.rpartition(".")[2]
    # a new Parameter object
    setattr(owner, attr, nn.Parameter(p.detach() + 0.5))
    with torch.no_grad():
        y1 = layer(x)
    assert (y1 - y0).abs().max() > 1e-3
    torch.testing.assert_close(y1, _reference(layer, x), **_tol(x.dtype))
    # p.data = ...: same object and version, new storage
    q = getattr(owner, attr)
    q.data = q.detach() - 1.0
    with torch.no_grad():
        y2 = layer(x)
    assert (y2 - y1).abs().max() > 1e-3
    torch.testing.assert_close(y2, _reference(layer, x), **_tol(x.dtype))
    # p.data.add_() bypasses torch's version counter: clear_cache() is the documented remedy
    q.data.add_(0.25)
    layer.clear_cache()
    with torch.no_grad():
        y3 = layer(x)
    assert (y3 - y2).abs().max() > 1e-3
    torch.testing.assert_close(y3, _reference(layer, x), **_tol(x.dtype))


def test_kernel_net_submodule_replacement():
    layer, x, y0, _ = _cached_layer(*CASES[2][1:])
    name, sub = [(n, m) for n, m in layer.kernel_net.named_modules() if isinstance(m, nn.Linear)][-1]
    parent = layer.kernel_net.get_submodule(name.rpartition(".")[0]) if "." in name else layer.kernel_net
    torch.manual_seed(5)
    setattr(parent, name.rpartition(".")[2], nn.Linear(sub.in_features, sub.out_features))
    with torch.no_grad():
        y1 = layer(x)
    assert (y1 - y0).abs().max() > 1e-3
    torch.testing.assert_close(y1, _reference(layer, x), **_tol(x.dtype))


def test_buffer_edit_and_attribute_assignment():
    layer, x, y0, _ = _cached_layer(*CASES[0][1:])
    # an in-place edit of a buffer the kernel is built from (the group-axis gather index)
    with torch.no_grad():
        layer._group_index.copy_(layer._group_index.roll(1, 0))
        y1 = layer(x)
    assert (y1 - y0).abs().max() > 1e-3
    torch.testing.assert_close(y1, _reference(layer, x), **_tol(x.dtype))
    # any attribute assignment drops the fast path: the geometry is read again
    layer.padding = (0, 0)
    with torch.no_grad():
        y2 = layer(x)
    assert y2.shape[-2:] == (4, 4)
    torch.testing.assert_close(y2, _reference(layer, x), **_tol(x.dtype))


def test_frozen_parameters_inference_mode_and_input_gradients():
    layer, x, _, calls = _cached_layer(*CASES[0][1:])
    for p in layer.parameters():
        p.requires_grad_(False)
    xr = x.clone().requires_grad_(True)
    y = layer(xr)  # grad on, frozen parameters: the cache serves, the input gets gradients
    assert calls == [1] and y.requires_grad
    (gx,) = torch.autograd.grad(y.square().sum(), xr)
    xr2 = x.clone().requires_grad_(True)
    ref = copy.deepcopy(layer).train()
    ref.__dict__.pop("_compute_weight")
    (gref,) = torch.autograd.grad(ref(xr2).square().sum(), xr2)
    torch.testing.assert_close(gx, gref, **_tol(x.dtype))
    # a kernel filled under inference_mode is an inference tensor: not reused where autograd
    # records it (frozen parameters, input with gradients), reused under no_grad
    layer.clear_cache()
    with torch.inference_mode():
        yi = layer(x)
    n = len(calls)
    with torch.no_grad():
        torch.testing.assert_close(layer(x), yi, **_tol(x.dtype))
    assert len(calls) == n
    xr3 = x.clone().requires_grad_(True)
    (gx3,) = torch.autograd.grad(layer(xr3).square().sum(), xr3)
    torch.testing.assert_close(gx3, gref, **_tol(x.dtype))
    # unfreezing: gradients reach the parameters again (no cache)
    for p in layer.parameters():
        p.requires_grad_(True)
    layer(x).sum().backward()
    assert all(p.grad is not None for p in layer.parameters())


def test_copies_start_without_the_cache_and_stay_independent():
    layer, x, y0, _ = _cached_layer(*CASES[0][1:])
    layer.__dict__.pop("_compute_weight")  # the counting wrapper (a lambda) does not pickle
    assert layer._eval_state is not None
    for clone in (copy.deepcopy(layer), pickle.loads(pickle.dumps(layer))):
        assert clone._kernel_cache is None and clone._eval_state is None and clone._cache_key is None
        with torch.no_grad():
            torch.testing.assert_close(clone(x), y0, **_tol(x.dtype))
            clone.weight.add_(1.0)
            assert (clone(x) - y0).abs().max() > 1e-3
            assert torch.equal(layer(x), y0)


def test_fast_path_entry_points_and_subclasses():
    layer, x, y0, calls = _cached_layer(*CASES[0][1:])
    with torch.no_grad():
        y, grid, mask = layer.forward_with_grid_mask(x)
        assert torch.equal(y, y0) and grid is None and mask is None
        yg, g = layer.forward_with_grid(x)
        assert torch.equal(yg, y0) and g is layer.out_grid
    assert calls == [1]
    assert GroupConv._fast_forward and LiftingConv._fast_forward
    assert not PartialGroupConv._fast_forward  # its element mask is not skipped
