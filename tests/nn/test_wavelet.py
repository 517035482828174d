"""Scale-translation (wavelet) layers and WaveletNet: R x| R+ on dyadic scale grids.

Equivariance is checked against transformations computed independently of the layers
(``torch.roll``, ``x[..., ::2]``) and through the fields of :mod:`groupconv.spaces`.

Documented tolerances for the dyadic dilation (subsampling by 2 shifts the scale axis by one):

* without blur (``blur_order=None``) the relation is exact (a-trous identity): float64 1e-12;
* with the degree-2 B-spline blur it is a Riemann-sum approximation; on band-limited periodic
  signals (frequencies <= 0.1 cycles/sample after subsampling) the measured relative L2 errors
  are <= 4e-3 (lifting) and <= 2.5e-2 (lifting -> ReLU -> group conv); the budgets are 1e-2 and
  5e-2.
"""

from __future__ import annotations

import copy
import io
import math
import pickle
import time

import pytest
import torch
from _helpers import rel_norm

from groupconv.groups import ScaleTranslation
from groupconv.models.wavelet import WaveletNet
from groupconv.nn.wavelet import (
    ScaleGroupConv1d,
    ScaleInvariantReadout,
    ScaleLiftingConv1d,
    ScaleMaxPool,
    ScaleTimeMaxPool,
    bspline,
    bspline_blur_kernel,
    dyadic_exponents,
    wavelet_admissibility_loss,
)
from groupconv.sampling import DyadicScaleSampler
from groupconv.spaces import GroupGridField, SequenceField
from groupconv.testing import assert_equivariant

LIFT_BUDGET, CHAIN_BUDGET = 1e-2, 5e-2


def bandlimited(B: int, C: int, L: int, fmax: float, seed: int = 0, dtype=torch.float64) -> torch.Tensor:
    """A periodic signal of length L with integer frequencies up to fmax * L (cycles/sample)."""
    g = torch.Generator().manual_seed(seed)
    t = torch.arange(L, dtype=torch.float64)
    x = torch.zeros(B, C, L, dtype=torch.float64)
    for f in range(1, int(fmax * L) + 1):
        a = torch.randn(B, C, 1, generator=g, dtype=torch.float64)
        ph = torch.rand(B, C, 1, generator=g, dtype=torch.float64) * 2 * math.pi
        x += a * torch.cos(2 * math.pi * f * t / L + ph)
    return x.to(dtype)


# -- building blocks ---------------------------------------------------------------------------
def test_bspline_and_blur_kernel():
    x = torch.linspace(-2, 2, 81, dtype=torch.float64)
    ref = torch.where(x.abs() < 0.5, 0.75 - x**2, torch.where(x.abs() < 1.5, 0.5 * (1.5 - x.abs()) ** 2, 0.0))
    assert torch.allclose(bspline(x, 2), ref, atol=1e-14)
    assert torch.allclose(bspline(x, 1), torch.clamp(1 - x.abs(), min=0), atol=1e-14)
    for s in (1, 2, 8, 64):
        for p in (1, 2, 3):
            b = bspline_blur_kernel(s, p)
            assert b.numel() % 2 == 1 and torch.equal(b, b.flip(0))
            assert abs(float(b.sum()) - 1) < 1e-14
            assert b.numel() <= (p + 1) * s + 1
    assert bspline_blur_kernel(4, None).tolist() == [1.0]
    with pytest.raises(ValueError, match="degree"):
        bspline(x, 0)


def test_dyadic_grids_and_errors():
    assert dyadic_exponents(4) == (0, 1, 2, 3)
    assert dyadic_exponents(scales=torch.tensor([[2.0], [4.0], [8.0]])) == (1, 2, 3)
    assert dyadic_exponents(scales=DyadicScaleSampler(3, base=2.0, start=1)) == (1, 2, 3)
    for bad, msg in (([1.0, 3.0, 9.0], "powers of two"), ([1.0, 4.0], "consecutive"), ([0.5, 1.0], "j >= 0"),
                     ([4.0, 2.0], "consecutive"), ([], "non-empty")):
        with pytest.raises(ValueError, match=msg):
            dyadic_exponents(scales=bad)
    with pytest.raises(ValueError, match="base 2"):
        dyadic_exponents(scales=DyadicScaleSampler(3, base=3.0))
    with pytest.raises(ValueError, match="disagrees"):
        dyadic_exponents(2, [1.0, 2.0, 4.0])
    with pytest.raises(ValueError, match="num_scales or scales"):
        ScaleLiftingConv1d(1, 2, 3)
    with pytest.raises(ValueError, match="powers of two"):
        ScaleGroupConv1d(2, 2, 3, scales=[1.0, 1.5, 2.25])


def test_bad_arguments_and_inputs():
    with pytest.raises(ValueError, match="kernel_size must be odd"):
        ScaleLiftingConv1d(1, 2, 4, 3)
    with pytest.raises(ValueError, match="kernel_size must be odd"):
        ScaleGroupConv1d(2, 2, 2, 3)
    with pytest.raises(ValueError, match="padding_mode"):
        ScaleLiftingConv1d(1, 2, 3, 3, padding_mode="reflect")
    with pytest.raises(ValueError, match="blur_order"):
        ScaleLiftingConv1d(1, 2, 3, 3, blur_order=7)
    with pytest.raises(ValueError, match="scale_support=4 must be <= num_scales=3"):
        ScaleGroupConv1d(2, 2, 3, 3, scale_support=4, crop=True)
    lift = ScaleLiftingConv1d(2, 3, 5, 3)
    with pytest.raises(ValueError, match=r"\(B, 2, L\)"):
        lift(torch.randn(1, 3, 20))
    gc = ScaleGroupConv1d(3, 2, 3, 4)
    with pytest.raises(ValueError, match="scale axis of length 4"):
        gc(torch.randn(1, 3, 3, 20))
    with pytest.raises(ValueError, match=r"\(B, 3, 4, L\)"):
        gc(torch.randn(1, 3, 20))
    with pytest.raises(TypeError, match="x must be a torch.Tensor"):
        gc([1.0])


@pytest.mark.parametrize("crop", [False, True])
def test_shapes_dtype_device(crop, device, float_dtype):
    lift = ScaleLiftingConv1d(2, 4, 9, num_scales=4).to(device=device, dtype=float_dtype)
    gc = ScaleGroupConv1d(4, 3, 3, num_scales=4, scale_support=3, crop=crop)
    gc = gc.to(device=device, dtype=float_dtype)
    x = torch.randn(2, 2, 50, device=device, dtype=float_dtype)
    y = lift(x)
    assert y.shape == (2, 4, 4, 50) and y.dtype == float_dtype and y.device.type == device.type
    z = gc(y)
    assert z.shape == (2, 3, 2 if crop else 4, 50)
    assert gc.out_scales.tolist() == ([1.0, 2.0] if crop else [1.0, 2.0, 4.0, 8.0])


def test_lifting_matches_explicit_wavelet_transform():
    """Blur + dilated conv == correlation with the explicit s^-1 psi(x / s) (psi: spline interpolant)."""
    torch.manual_seed(0)
    lift = ScaleLiftingConv1d(1, 2, 5, num_scales=3, bias=False, padding_mode="circular").double()
    x = torch.randn(1, 1, 64, dtype=torch.float64)
    y = lift(x)
    w = lift.weight.detach()
    for j in range(3):
        s = 2**j
        taps = torch.arange(-4 * s - 2 * s, 4 * s + 2 * s + 1, dtype=torch.float64)
        m = torch.arange(-2, 3, dtype=torch.float64)
        psi = (w[:, :, :, None] * bspline(taps[None, :] / s - m[:, None], 2)).sum(2) / s  # (O, 1, T)
        R = taps.numel() // 2
        xp = torch.cat([x[..., -R:], x, x[..., :R]], dim=-1)
        ref = torch.nn.functional.conv1d(xp, psi)
        assert torch.allclose(y[:, :, j], ref, atol=1e-12)


# -- translations ------------------------------------------------------------------------------
@pytest.mark.parametrize("shift", [1, 5, -7])
def test_translation_equivariance_exact_circular(shift, device, float_dtype):
    torch.manual_seed(1)
    lift = ScaleLiftingConv1d(1, 3, 7, 4, padding_mode="circular").to(device, float_dtype)
    gc = ScaleGroupConv1d(3, 2, 3, 4, scale_support=2, padding_mode="circular").to(device, float_dtype)
    x = torch.randn(2, 1, 48, device=device, dtype=float_dtype)
    f = lambda t: gc(torch.relu(lift(t)))  # noqa: E731
    tol = 1e-4 if float_dtype == torch.float32 else 1e-11
    assert torch.allclose(f(torch.roll(x, shift, -1)), torch.roll(f(x), shift, -1), atol=tol, rtol=tol)


def test_translation_equivariance_with_fields():
    lift = ScaleLiftingConv1d(1, 3, 5, 3, padding_mode="circular").double()
    gc = ScaleGroupConv1d(3, 2, 3, 3, scale_support=2, crop=True, padding_mode="circular").double()
    gs = torch.tensor([[0.0, 1.0], [3.0, 1.0], [-5.0, 1.0]], dtype=torch.float64)
    x = torch.randn(2, 1, 40, dtype=torch.float64)
    assert assert_equivariant(lift, x, gs).passed
    assert assert_equivariant(gc, lift(x).detach(), gs).passed


# -- dyadic dilations ---------------------------------------------------------------------------
@pytest.mark.parametrize("padding_mode", ["zeros", "circular"])
def test_dilation_exact_without_blur(padding_mode):
    """a-trous identity: without blur, subsampling by 2 shifts the scale axis by one exactly."""
    torch.manual_seed(2)
    lift = ScaleLiftingConv1d(2, 3, 5, 5, blur_order=None, padding_mode=padding_mode).double()
    gc = ScaleGroupConv1d(3, 2, 3, 5, scale_support=2, blur_order=None, padding_mode=padding_mode).double()
    x = torch.randn(1, 2, 128, dtype=torch.float64)  # any signal: no band limit needed
    y, y2 = lift(x), lift(x[..., ::2])
    assert torch.allclose(y2[:, :, :4], y[:, :, 1:, ::2], atol=1e-12)
    z, z2 = gc(torch.relu(y)), gc(torch.relu(y2))
    assert torch.allclose(z2[:, :, :3], z[:, :, 1:4, ::2], atol=1e-12)  # top scale: truncated grid


@pytest.mark.parametrize("crop", [False, True])
def test_dilation_equivariance_bandlimited(crop):
    """Independent check with the blur: layer(x[..., ::2])[:, :, j] ~ layer(x)[:, :, j + 1, ::2]."""
    torch.manual_seed(3)
    N = 5
    lift = ScaleLiftingConv1d(1, 4, 9, N, padding_mode="circular").double()
    gc = ScaleGroupConv1d(4, 3, 3, N, scale_support=2, crop=crop, padding_mode="circular").double()
    x = bandlimited(2, 1, 512, fmax=0.05)  # <= 0.1 cycles/sample after subsampling
    y, y2 = lift(x), lift(x[..., ::2])
    for j in range(N - 1):
        assert rel_norm(y2[:, :, j], y[:, :, j + 1, ::2]) < LIFT_BUDGET
    z, z2 = gc(torch.relu(y)), gc(torch.relu(y2))
    for j in range(N - 2):  # scale N-2 of z2 would need input scale N (beyond the grid)
        assert rel_norm(z2[:, :, j], z[:, :, j + 1, ::2]) < CHAIN_BUDGET
    # and the relation is a real constraint: a wrong scale pairing fails it
    assert rel_norm(y2[:, :, 1], y[:, :, 1, ::2]) > 10 * LIFT_BUDGET


def test_dilation_equivariance_with_fields():
    """Through groupconv.spaces: g = (0, 1/2) subsamples space (origin at the first sample, zeros
    after L/2) and shifts the scale axis (zero fill at the largest scale, masked out)."""
    torch.manual_seed(4)
    N, L = 4, 512
    G = ScaleTranslation()
    lift = ScaleLiftingConv1d(1, 3, 7, N).double()
    gc = ScaleGroupConv1d(3, 2, 3, N, scale_support=2).double()
    assert lift.in_field == SequenceField(G)
    assert isinstance(lift.out_field, GroupGridField) and lift.out_field.n == N
    t = torch.arange(L, dtype=torch.float64)
    taper = torch.exp(-(((t - L / 4) / (L / 12)) ** 2))  # smooth, ~0 at both ends and beyond L/2
    x = bandlimited(2, 1, L, fmax=0.04) * taper
    g = torch.tensor([0.0, 0.5], dtype=torch.float64)
    keep = torch.ones(1, 1, N, L, dtype=torch.float64)
    keep[:, :, N - 1] = 0  # no partner for the largest scale
    keep[..., L // 2 :] = 0  # the field zero-fills beyond the dilated window; the layer adds its bias
    rep = assert_equivariant(lift, x, [g], mode="approximate", rtol=LIFT_BUDGET, mask=keep)
    assert rep.passed and rep.rows[0].rel_error < LIFT_BUDGET
    h = torch.relu(lift(x)).detach()
    keep2 = keep.clone()
    keep2[:, :, N - 2] = 0  # its window reaches the zero-filled scale
    rep = assert_equivariant(gc, h, [g], mode="approximate", rtol=CHAIN_BUDGET, mask=keep2)
    assert rep.passed


# -- module protocol ------------------------------------------------------------------------------
def _layers():
    return [ScaleLiftingConv1d(2, 3, 5, 3), ScaleGroupConv1d(3, 2, 3, 3, scale_support=2, crop=True),
            WaveletNet(1, 4, channels=(3, 4), num_scales=3, pool=2).eval()]


def _inputs():
    torch.manual_seed(5)
    return [torch.randn(2, 2, 40), torch.randn(2, 3, 3, 40), torch.randn(2, 1, 64)]


def test_pickle_deepcopy_state_dict_roundtrip():
    for layer, x in zip(_layers(), _inputs()):
        y = layer(x)
        for clone in (copy.deepcopy(layer), pickle.loads(pickle.dumps(layer))):
            assert torch.equal(clone(x), y)
        fresh = copy.deepcopy(layer)
        with torch.no_grad():
            for p in fresh.parameters():
                p.add_(1.0)
        buf = io.BytesIO()
        torch.save(layer.state_dict(), buf)
        buf.seek(0)
        fresh.load_state_dict(torch.load(buf))
        assert torch.equal(fresh(x), y)


def test_eval_mode_state_dict_and_outputs_identical():
    for layer, x in zip(_layers()[:2], _inputs()[:2]):
        sd_train = layer.train().state_dict()
        y_train = layer(x)
        sd_eval = layer.eval().state_dict()
        assert list(sd_train) == list(sd_eval) == ["weight", "bias"]  # blur kernels: non-persistent
        assert all(torch.equal(sd_train[k], sd_eval[k]) for k in sd_train)
        assert torch.equal(layer(x), y_train)
        with torch.no_grad():
            layer.weight.mul_(2.0)  # parameters used directly: no stale cache possible
        assert not torch.equal(layer(x), y_train)


@pytest.mark.slow  # inductor compilation takes ~1-2 min on the 2-core CPU
def test_torch_compile_same_outputs():
    torch._dynamo.reset()
    lift = ScaleLiftingConv1d(1, 3, 5, 3, padding_mode="circular")
    gc = ScaleGroupConv1d(3, 2, 3, 3, scale_support=2)
    model = torch.nn.Sequential(lift, torch.nn.ReLU(), gc, ScaleInvariantReadout())
    x = torch.randn(2, 1, 32)
    compiled = torch.compile(model, fullgraph=True)
    assert torch.allclose(compiled(x), model(x), atol=1e-5, rtol=1e-5)


# -- pooling, readout, loss --------------------------------------------------------------------------
def test_pooling_and_readout():
    x = torch.randn(2, 3, 4, 12)
    assert torch.equal(ScaleMaxPool()(x), x.max(dim=2).values)
    assert torch.equal(ScaleTimeMaxPool(3)(x), torch.nn.functional.max_pool2d(x, (1, 3)))
    for order in ("time_first", "scale_first"):
        r = ScaleInvariantReadout(order)
        y = r(x)
        assert y.shape == (2, 3)
        # invariant to circular time shifts and to permutations of the scale axis
        assert torch.allclose(r(torch.roll(torch.roll(x, 5, -1), 1, 2)), y, atol=1e-6)
    with pytest.raises(ValueError, match="order"):
        ScaleInvariantReadout("both")
    with pytest.raises(ValueError, match=r"\(B, C, N, L\)"):
        ScaleMaxPool()(torch.randn(2, 3, 4))
    with pytest.raises(ValueError, match="L >= kernel_size"):
        ScaleTimeMaxPool(8)(torch.randn(1, 1, 2, 4))


def test_wavelet_admissibility_loss():
    lift = ScaleLiftingConv1d(1, 4, 5, 3)
    w = lift.weight.detach()
    ref = 10.0 * w.sum(-1).square().mean()
    assert torch.allclose(wavelet_admissibility_loss(lift), ref)
    with torch.no_grad():
        lift.weight.sub_(lift.weight.mean(-1, keepdim=True))
    assert float(wavelet_admissibility_loss(lift).detach()) < 1e-10
    # the blur keeps zero mean: a zero-mean wavelet gives a zero response to a constant, at every scale
    y = lift(torch.ones(1, 1, 200)) - lift.bias.view(1, -1, 1, 1)
    assert y[..., 80:120].abs().max() < 1e-5
    net = WaveletNet(1, 3, channels=(4, 4), num_scales=3)
    loss = net.wavelet_loss()
    loss.backward()
    assert net.lift.weight.grad is not None and net.convs[0].weight.grad is None
    with pytest.raises(ValueError, match="no ScaleLiftingConv1d"):
        wavelet_admissibility_loss(torch.nn.Linear(2, 2))


# -- the model ----------------------------------------------------------------------------------------
def test_wavelet_net_shapes_and_errors():
    net = WaveletNet(2, 5, channels=(4, 6, 8), num_scales=4, scale_support=2, crop=True, pool=2)
    assert net.num_scales_out == 2
    out = net(torch.randn(3, 2, 128))
    assert out.shape == (3, 5)
    out.sum().backward()
    assert all(p.grad is not None for p in net.parameters())
    with pytest.raises(ValueError, match="crop=True removes"):
        WaveletNet(1, 2, channels=(4, 4, 4, 4), num_scales=3, scale_support=2, crop=True)
    with pytest.raises(ValueError, match="at least pool"):
        net(torch.randn(1, 2, 4))
    with pytest.raises(ValueError, match=r"\(B, 2, L\)"):
        net(torch.randn(1, 1, 128))


def test_long_signal_forward_backward():
    """10^5 samples, small channels: forward + backward of a WaveletNet (time printed, not asserted)."""
    torch.manual_seed(6)
    net = WaveletNet(1, 4, channels=(4, 8), num_scales=6, lift_kernel_size=15, pool=4)
    x = torch.randn(1, 1, 100_000)
    t0 = time.perf_counter()
    out = net(x)
    out.sum().backward()
    dt = time.perf_counter() - t0
    print(f"WaveletNet 1x1x100000, 6 scales, channels (4, 8): forward+backward {dt:.2f} s")
    assert out.shape == (1, 4) and torch.isfinite(out).all()
    assert torch.isfinite(net.lift.weight.grad).all()
