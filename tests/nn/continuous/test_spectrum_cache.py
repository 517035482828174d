"""Cached kernel spectra: ``kernel_spectrum`` + ``fftconv(spectrum=)`` and the eval-mode spectrum
cache of the continuous-kernel layers (CKConv, FlexConv, separable forms; 1-D/2-D/3-D).

References are computed independently of the FFT code: ``torch.nn.functional.conv{1,2,3}d`` on
the explicitly padded input with the layer's sampled kernel.
"""

from __future__ import annotations

import copy

import pytest
import torch
import torch.nn.functional as F
from _helpers import rel_norm

import groupconv.nn.continuous.ckconv as ckmod
from groupconv.functional import conv, fftconv, kernel_spectrum, resolve_padding
from groupconv.nn import CKConv, FlexConv, SeparableCKConv, SeparableFlexConv

_CONV = {1: F.conv1d, 2: F.conv2d, 3: F.conv3d}


def _tol(dtype):
    return 1e-5 if dtype == torch.float32 else 1e-11


def _x(*shape, seed=0, dtype=torch.float64):
    return torch.randn(*shape, generator=torch.Generator().manual_seed(seed), dtype=dtype)


def _padded(x_shape, k_shape, padding, causal=False):
    pads = resolve_padding(padding, k_shape[2:], causal)
    return [n + lo + hi for n, (lo, hi) in zip(x_shape[2:], pads)]


# ---------------------------------------------------------------------------- functional
@pytest.mark.parametrize("x_shape,k_shape,groups,padding", [
    ((2, 4, 37), (6, 4, 9), 1, "same"),
    ((2, 4, 37), (4, 1, 12), 4, "same"),          # depthwise, even kernel
    ((1, 4, 20, 18), (6, 2, 5, 7), 2, [(1, 3), (0, 6)]),
    ((1, 2, 9, 8, 7), (3, 2, 3, 4, 5), 1, "valid"),
])
def test_spectrum_equals_uncached_and_direct(x_shape, k_shape, groups, padding, float_dtype):
    x, w = _x(*x_shape, dtype=float_dtype), _x(*k_shape, seed=1, dtype=float_dtype)
    b = _x(k_shape[0], seed=2, dtype=float_dtype)
    spec = kernel_spectrum(w, _padded(x_shape, k_shape, padding), groups)
    y_cached = fftconv(x, w, b, padding=padding, groups=groups, spectrum=spec)
    y_plain = fftconv(x, w, b, padding=padding, groups=groups)
    pads = resolve_padding(padding, k_shape[2:])
    flat = [p for lo_hi in reversed(pads) for p in lo_hi]
    ref = _CONV[len(k_shape) - 2](F.pad(x, flat), w, b, groups=groups)
    assert y_cached.shape == ref.shape and y_cached.dtype == float_dtype
    assert rel_norm(y_cached, y_plain) < _tol(float_dtype)
    assert rel_norm(y_cached, ref) < _tol(float_dtype)
    # the dispatcher forwards the spectrum on the FFT route
    y_conv = conv(x, w, b, padding=padding, groups=groups, method="fft", spectrum=spec)
    assert rel_norm(y_conv, ref) < _tol(float_dtype)


def test_spectrum_gradients_are_exact():
    x = _x(2, 3, 40).requires_grad_()
    w = _x(4, 3, 15, seed=1).requires_grad_()
    spec = kernel_spectrum(w, [40 + 14])
    y = fftconv(x, w, padding="same", spectrum=spec)
    g = _x(*y.shape, seed=3)
    gx, gw = torch.autograd.grad(y, (x, w), g)
    x2, w2 = x.detach().clone().requires_grad_(), w.detach().clone().requires_grad_()
    gx2, gw2 = torch.autograd.grad(F.conv1d(x2, w2, padding=7), (x2, w2), g)
    assert rel_norm(gx, gx2) < 1e-11 and rel_norm(gw, gw2) < 1e-11


def test_spectrum_mismatch_is_an_error():
    x, w = _x(1, 3, 30), _x(2, 3, 5, seed=1)
    good = kernel_spectrum(w, [34])
    with pytest.raises(ValueError, match="spectrum must match .* transform size"):
        fftconv(x, w, padding="valid", spectrum=good)  # padded size 30, not 34
    with pytest.raises(ValueError, match="spectrum must match kernel shape"):
        fftconv(x, _x(2, 3, 4, seed=1), padding=2, spectrum=good)
    with pytest.raises(TypeError, match="spectrum must be a KernelSpectrum"):
        fftconv(x, w, padding=2, spectrum=good.weight)
    with pytest.raises(ValueError, match="padded_size must have 1 entries"):
        kernel_spectrum(w, [3])


# ---------------------------------------------------------------------------- layers
_CASES = [
    (CKConv, dict(data_dim=1, causal=True), (2, 3, 64)),
    (CKConv, dict(data_dim=1, kernel_size="full"), (2, 3, 33)),
    (SeparableCKConv, dict(data_dim=1), (2, 3, 41)),
    (FlexConv, dict(data_dim=1, mask_init_sigma=0.3), (2, 3, 64)),
    (SeparableFlexConv, dict(data_dim=1, causal=True, mask_init_sigma=0.4), (2, 3, 50)),
    (CKConv, dict(data_dim=2, kernel_size=9), (1, 3, 20, 18)),
    (FlexConv, dict(data_dim=2, kernel_size=15, mask_init_sigma=0.4), (1, 3, 16, 16)),
    (CKConv, dict(data_dim=3, kernel_size=5), (1, 3, 8, 9, 7)),
]


def _make(cls, kw, seed=0):
    torch.manual_seed(seed)
    return cls(3, 4, kernel_net="siren", conv_method="fft", dtype=torch.float64, **kw)


def _reference(layer, x):
    """Sampled kernel + F.conv on the explicitly padded input (no FFT code involved)."""
    k = layer.sample_kernel(tuple(x.shape[2:]))
    ks = k.shape[2:]
    pads = [(n - 1, 0) for n in ks] if layer.causal else [((n - 1) // 2, (n - 1) // 2) for n in ks]
    flat = [p for lo_hi in reversed(pads) for p in lo_hi]
    y = _CONV[k.dim() - 2](F.pad(x, flat), k, layer.bias, groups=3 if layer.separable else 1)
    return layer.channel_mixer(y) if layer.separable else y


def _counting(monkeypatch):
    calls = []
    real = ckmod.kernel_spectrum

    def counted(*args, **kwargs):
        calls.append(1)
        return real(*args, **kwargs)

    monkeypatch.setattr(ckmod, "kernel_spectrum", counted)
    return calls


@pytest.mark.parametrize("cls,kw,shape", _CASES)
def test_layer_eval_spectrum_cache(cls, kw, shape, monkeypatch):
    layer = _make(cls, kw)
    x = _x(*shape)
    layer(x)  # training-mode forward: lazy state (reference size, Chang scaling)
    layer.eval()
    calls = _counting(monkeypatch)
    with torch.no_grad():
        ref = _reference(layer, x)
        y1 = layer(x)
        spec = layer._cached_spectrum
        assert spec is not None and len(calls) == 1
        y2 = layer(x)
        assert layer._cached_spectrum is spec and len(calls) == 1  # no second kernel transform
        assert torch.equal(y1, y2)  # same computation repeated
        assert rel_norm(y1, ref) < 1e-11
        # uncached path (training mode, nothing cached) gives the same output
        uncached = copy.deepcopy(layer).train()
        assert rel_norm(uncached(x), y1) < 1e-11
        # another input size: another spectrum, still right
        other = _x(*shape[:2], *[n + 3 for n in shape[2:]], seed=5)
        assert rel_norm(layer(other), _reference(layer, other)) < 1e-11
        assert layer._cached_spectrum is not spec


@pytest.mark.parametrize("cls,kw,shape", _CASES[:1] + _CASES[3:4] + _CASES[5:6])
def test_layer_spectrum_invalidated_on_parameter_change(cls, kw, shape):
    layer = _make(cls, kw)
    x = _x(*shape)
    layer(x)
    layer.eval()
    with torch.no_grad():
        y1 = layer(x)
        spec = layer._cached_spectrum
        next(layer.kernel_net.parameters()).mul_(1.5)  # in-place change bumps the version
        y2 = layer(x)
        assert layer._cached_spectrum is not spec
        assert not torch.allclose(y1, y2)
        assert rel_norm(y2, _reference(layer, x)) < 1e-11
        # load_state_dict (another model's weights) invalidates too
        donor = _make(cls, kw, seed=3)
        donor(x)
        layer.load_state_dict(donor.state_dict())
        assert layer._cached_spectrum is None
        y3 = layer(x)
        assert rel_norm(y3, _reference(layer, x)) < 1e-11
        assert rel_norm(y3, donor.eval()(x)) < 1e-11
    layer.train()
    assert layer._cached_spectrum is None and layer._cached_kernel is None


@pytest.mark.parametrize("cls,kw,shape", _CASES[:1] + _CASES[4:6])
def test_training_recomputes_spectrum_with_exact_gradients(cls, kw, shape):
    fft_layer = _make(cls, kw)
    direct_layer = copy.deepcopy(fft_layer)
    direct_layer.conv_method = "direct"
    x = _x(*shape)
    opt = torch.optim.SGD(fft_layer.parameters(), lr=0.05)
    opt_d = torch.optim.SGD(direct_layer.parameters(), lr=0.05)
    for _ in range(2):  # the kernel changes between steps: the spectrum must follow it
        for layer, o in ((fft_layer, opt), (direct_layer, opt_d)):
            o.zero_grad()
            layer(x).square().mean().backward()
        assert fft_layer._cached_spectrum is None  # nothing cached in training
        for (n, p), q in zip(fft_layer.named_parameters(), direct_layer.parameters()):
            assert p.grad is not None and rel_norm(p.grad, q.grad) < 1e-9, n
        opt.step()
        opt_d.step()
    # eval with autograd on trainable parameters: no cache either, gradients flow
    fft_layer.eval()
    y = fft_layer(x)
    assert fft_layer._cached_spectrum is None and y.requires_grad


def test_spectrum_follows_dtype_and_auto_method():
    layer = CKConv(3, 4, causal=True, kernel_net="siren")  # conv_method="auto"
    x = _x(1, 3, 2048, dtype=torch.float32)
    layer(x)
    layer.eval()
    with torch.no_grad():
        y32 = layer(x)
        assert layer._cached_spectrum is not None  # 2048-tap kernel, cached: the model picks FFT
        assert layer._cached_spectrum.weight.dtype == torch.complex64
        layer.double()
        y64 = layer(x.double())
        assert layer._cached_spectrum.weight.dtype == torch.complex128
    assert rel_norm(y32.double(), y64) < 1e-5
    short = CKConv(3, 4, kernel_size=3, kernel_net="siren").eval()
    with torch.no_grad():
        short(_x(8, 3, 64, dtype=torch.float32))
    assert short._cached_kernel is not None and short._cached_spectrum is None  # direct route


def test_auto_dispatch_follows_the_installed_cost_model(monkeypatch):
    import sys

    from groupconv.functional import CostModel, get_cost_model, set_cost_model

    mod = sys.modules["groupconv.functional.fftconv"]
    calls = []
    real = mod.fftconv
    monkeypatch.setattr(mod, "fftconv", lambda *a, **k: calls.append(1) or real(*a, **k))
    x, w = _x(2, 4, 16, 16, dtype=torch.float32), _x(4, 4, 3, 3, seed=1, dtype=torch.float32)
    ref = F.conv2d(x, w, padding=1)
    assert rel_norm(conv(x, w, padding=1), ref) < 1e-6 and not calls  # 3x3: direct
    old = set_cost_model(CostModel(a_direct=(1.0, 1.0, 1.0)))  # direct made absurdly expensive
    try:
        assert get_cost_model().a_direct == (1.0, 1.0, 1.0)
        assert rel_norm(conv(x, w, padding=1), ref) < 1e-5 and calls == [1]
    finally:
        set_cost_model(old)
    assert get_cost_model() is old
    with pytest.raises(TypeError, match="model must be a CostModel"):
        set_cost_model("fast")
