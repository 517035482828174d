"""CKConv, SeparableCKConv, FlexConv, SeparableFlexConv: geometry, causality, equivariance,
resolution changes, irregular sampling, caching, serialisation and errors."""

from __future__ import annotations

import copy
import io

import pytest
import torch
import torch.nn.functional as F
from _helpers import rel_norm
from torch import nn

from groupconv.nn import CKConv, FlexConv, SeparableCKConv, SeparableFlexConv

LAYERS = [CKConv, SeparableCKConv, FlexConv, SeparableFlexConv]


class _SmoothNet(nn.Module):
    """Test-only smooth kernel net: ``psi_o(x) = a_o exp(-|x - m_o|^2 / s^2) cos(f_o . x)``."""

    def __init__(self, in_features: int, out_features: int, seed: int = 0) -> None:
        super().__init__()
        gen = torch.Generator().manual_seed(seed)
        self.in_features, self.out_features = in_features, out_features
        self.a = nn.Parameter(torch.randn(out_features, generator=gen))
        self.m = nn.Parameter(0.3 * torch.randn(out_features, in_features, generator=gen))
        self.f = nn.Parameter(2.0 * torch.randn(out_features, in_features, generator=gen))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x.unsqueeze(-2)  # (..., 1, D)
        env = torch.exp(-((x - self.m) ** 2).sum(-1) / 0.5)
        return self.a * env * torch.cos((self.f * x).sum(-1))


def _layer(cls, c_in=2, c_out=3, seed=0, **kw):
    torch.manual_seed(seed)
    kw.setdefault("kernel_net", "siren")
    if cls in (FlexConv, SeparableFlexConv):
        kw.setdefault("mask_init_sigma", 0.6)
    return cls(c_in, c_out, **kw)


def _x(*shape, seed=0, dtype=torch.float32):
    return torch.randn(*shape, generator=torch.Generator().manual_seed(seed), dtype=dtype)


# ------------------------------------------------------------------------------ geometry
@pytest.mark.parametrize("kernel_size,causal,L,taps", [
    ("same", True, 12, 12), ("full", True, 12, 12), ("same", False, 13, 13), ("same", False, 12, 11),
    ("full", False, 12, 23), (7, False, 12, 7), (4, True, 12, 4), (1, False, 5, 1),
])
def test_kernel_taps_and_coordinates(kernel_size, causal, L, taps):
    layer = CKConv(2, 3, kernel_size=kernel_size, causal=causal)
    (c,) = layer.axis_coordinates([L])
    assert c.shape == (taps,)
    assert bool((c[1:] > c[:-1]).all()) and float(c.abs().max()) <= 1.0
    if causal:
        assert float(c[-1]) == 1.0  # the current step is at +1
    else:
        assert torch.allclose(c, -c.flip(0))  # centred
    y = layer(_x(2, 2, L))
    assert y.shape == (2, 3, L)
    assert layer.sample_kernel(L).shape == (3, 2, taps)


@pytest.mark.parametrize("cls", LAYERS)
@pytest.mark.parametrize("data_dim", [1, 2, 3])
def test_shapes_all_layers(cls, data_dim):
    n = {1: 20, 2: 9, 3: 5}[data_dim]
    layer = _layer(cls, data_dim=data_dim, kernel_size=5 if data_dim > 1 else "same")
    y = layer(_x(2, 2, *([n] * data_dim)))
    assert y.shape == (2, 3, *([n] * data_dim))
    assert torch.isfinite(y).all()
    assert layer.in_field is not None and layer.out_field is not None


@pytest.mark.parametrize("cls", LAYERS)
def test_fft_and_direct_paths_agree(cls):
    a = _layer(cls, kernel_size="full", conv_method="fft")
    b = _layer(cls, kernel_size="full", conv_method="direct")
    b.load_state_dict(a.state_dict())
    x = _x(2, 2, 40)
    ya, yb = a(x), b(x)
    assert rel_norm(ya, yb) < 1e-5


# ------------------------------------------------------------------------------ causality
@pytest.mark.parametrize("cls", LAYERS)
@pytest.mark.parametrize("method", ["direct", "fft"])
def test_causal_output_ignores_the_future(cls, method):
    layer = _layer(cls, causal=True, conv_method=method)
    x = _x(2, 2, 30)
    y = layer(x)
    t = 17
    x2 = x.clone()
    x2[..., t + 1:] = _x(2, 2, 30 - t - 1, seed=5)
    y2 = layer(x2)
    assert torch.equal(y[..., : t + 1], y2[..., : t + 1]) or torch.allclose(
        y[..., : t + 1], y2[..., : t + 1], atol=1e-6
    )
    assert not torch.allclose(y[..., t + 1:], y2[..., t + 1:])


# ------------------------------------------------------------------------ equivariance
@pytest.mark.parametrize("cls", LAYERS)
@pytest.mark.parametrize("data_dim,shift", [(1, (5,)), (2, (2, -3))])
def test_translation_equivariance_circular(cls, data_dim, shift):
    layer = _layer(cls, data_dim=data_dim, kernel_size=5 if data_dim == 2 else "same",
                   padding_mode="circular").double()
    x = _x(2, 2, *([11] * data_dim), dtype=torch.float64)
    dims = tuple(range(2, 2 + data_dim))
    y = layer(x)
    assert torch.allclose(layer(torch.roll(x, shift, dims)), torch.roll(y, shift, dims), atol=1e-10)
    g = torch.tensor(shift, dtype=torch.float64)  # the declared fields act by the same shift
    assert torch.allclose(layer.in_field.transform(x, g), torch.roll(x, shift, dims))


def test_translation_equivariance_zero_padding_interior():
    layer = _layer(CKConv, kernel_size=7).double()
    x = _x(1, 2, 40, dtype=torch.float64)
    x[..., :8] = 0
    x[..., -8:] = 0  # support + kernel radius + shift stays inside: no wrap-around
    y, ys = layer(x), layer(torch.roll(x, 4, -1))
    assert torch.allclose(ys, torch.roll(y, 4, -1), atol=1e-10)


# -------------------------------------------------------------------------- resolution
@pytest.mark.parametrize("kernel_size,causal", [("same", True), ("full", False), (9, False)])
def test_resolution_change_preserves_smooth_response(kernel_size, causal):
    """Same continuous signal at L and 2L - 1 samples: outputs agree on the shared points."""
    layer = CKConv(1, 1, kernel_net=_SmoothNet(1, 1), kernel_size=kernel_size, causal=causal).double()
    signal = lambda t: torch.sin(torch.pi * t) + 0.5 * torch.cos(2 * t)
    L = 33
    t1 = torch.linspace(-1, 1, L, dtype=torch.float64)
    t2 = torch.linspace(-1, 1, 2 * L - 1, dtype=torch.float64)
    y1 = layer(signal(t1).view(1, 1, -1))
    assert layer.reference_size.tolist() == [L]
    y2 = layer(signal(t2).view(1, 1, -1))[..., ::2]
    assert layer.sample_kernel(2 * L - 1).shape[-1] > layer.sample_kernel(L).shape[-1]
    err = rel_norm(y2, y1)
    assert err < 0.08, err


def test_reference_size_argument_and_horizon_resampling():
    layer = CKConv(1, 1, kernel_size=9, reference_size=17)
    assert layer.sample_kernel(17).shape[-1] == 9
    assert layer.sample_kernel(33).shape[-1] == 17  # twice the rate, twice the taps
    k17, k33 = layer.sample_kernel(17), layer.sample_kernel(33)
    # shared kernel positions are sampled identically, scaled by the rate ratio 1/2
    assert torch.allclose(k33[..., ::2], 0.5 * k17, atol=1e-6)


# ------------------------------------------------------------------------- irregular
@pytest.mark.parametrize("cls", LAYERS)
@pytest.mark.parametrize("kernel_size,causal", [("same", True), ("same", False), ("full", False), (7, False)])
def test_irregular_positions_on_regular_grid_match(cls, kernel_size, causal):
    kw = {"dynamic_cropping": False} if cls in (FlexConv, SeparableFlexConv) else {}
    layer = _layer(cls, kernel_size=kernel_size, causal=causal, **kw).double()
    L = 16
    x = _x(3, 2, L, dtype=torch.float64)
    y = layer(x)
    pos = torch.linspace(-1, 1, L, dtype=torch.float64)
    assert torch.allclose(layer(x, positions=pos), y, atol=1e-10)
    assert torch.allclose(layer(x, positions=pos.expand(3, L)), y, atol=1e-10)


def test_irregular_positions_causal_and_permutation():
    layer = _layer(CKConv, causal=True).double()
    layer(_x(1, 2, 20, dtype=torch.float64))  # fixes the reference size
    gen = torch.Generator().manual_seed(3)
    pos = torch.rand(2, 20, generator=gen, dtype=torch.float64) * 2 - 1
    x = _x(2, 2, 20, dtype=torch.float64)
    y = layer(x, positions=pos)
    # permuting the samples permutes the outputs (the sum does not depend on the order)
    perm = torch.randperm(20, generator=gen)
    assert torch.allclose(layer(x[..., perm], positions=pos[:, perm]), y[..., perm], atol=1e-10)
    # causality: changing the sample with the latest position changes only its own output
    last = pos.argmax(-1)
    x2 = x.clone()
    x2[torch.arange(2), :, last] += 1.0
    y2 = layer(x2, positions=pos)
    keep = torch.ones_like(pos, dtype=torch.bool)
    keep[torch.arange(2), last] = False
    assert torch.allclose(y.transpose(1, 2)[keep], y2.transpose(1, 2)[keep], atol=1e-12)


# -------------------------------------------------------------------------- caching
@pytest.mark.parametrize("cls", [CKConv, FlexConv])
def test_eval_cache_and_invalidation(cls):
    layer = _layer(cls)
    x = _x(2, 2, 24)
    opt = torch.optim.SGD(layer.parameters(), lr=0.1)
    layer(x).square().mean().backward()
    opt.step()
    layer.eval()
    with torch.no_grad():
        k1 = layer.sample_kernel(24)
        assert layer.sample_kernel(24) is k1  # cache hit
        y1 = layer(x)
    # an optimiser step while in eval mode bumps the parameter versions: cache invalidated
    opt.zero_grad()
    with torch.enable_grad():
        layer(x).square().mean().backward()
    opt.step()
    with torch.no_grad():
        k2 = layer.sample_kernel(24)
        assert k2 is not k1 and not torch.allclose(k1, k2)
        assert not torch.allclose(layer(x), y1)
        layer.train()
        fresh = layer.sample_kernel(24)
    assert torch.allclose(fresh, k2)
    assert layer._cached_kernel is None


@pytest.mark.parametrize("cls", LAYERS)
def test_state_dict_train_eval_and_save_load(cls):
    layer = _layer(cls)
    x = _x(2, 2, 24)
    y = layer(x)  # lazy state: reference size, Chang scaling
    sd_train = {k: v.clone() for k, v in layer.state_dict().items()}
    layer.eval()
    with torch.no_grad():
        layer(x)  # populate the cache
    sd_eval = layer.state_dict()
    assert sd_train.keys() == sd_eval.keys()
    assert all(torch.equal(sd_train[k], sd_eval[k]) for k in sd_train)
    assert not any("cache" in k for k in sd_eval)
    buf = io.BytesIO()
    torch.save(layer.state_dict(), buf)
    buf.seek(0)
    other = _layer(cls, seed=7)  # different init, no forward yet
    other.load_state_dict(torch.load(buf))
    other.train()
    assert other._ref == (24,)
    assert torch.equal(other(x), y)  # bit-for-bit, and no second Chang scaling
    assert torch.equal(copy.deepcopy(other)(x), y)


# ------------------------------------------------------------------------------ FlexConv
def test_flexconv_crop_shrinks_with_the_mask():
    layer = FlexConv(2, 3, data_dim=2, kernel_size=33, kernel_net="magnet", mask_init_sigma=0.1)
    layer.sample_kernel(32)  # the one-shot init evaluates the kernel once more: do it first
    seen = []
    layer.kernel_net.register_forward_hook(lambda m, inp, out: seen.append(inp[0].shape[:-1].numel()))
    sizes = []
    for sigma in (0.05, 0.1, 0.3, 2.0):
        with torch.no_grad():
            layer.mask.log_sigma.fill_(torch.log(torch.tensor(sigma)))
        layer(_x(1, 2, 32, 32))
        sizes.append(layer.crop_size(32))
    assert [s[0] for s in sizes] == sorted(s[0] for s in sizes)
    assert sizes[0][0] < 9 and sizes[-1] == (33, 33)
    assert all(k % 2 == 1 for s in sizes for k in s)  # centred crops stay odd
    assert seen == [s[0] * s[1] for s in sizes]  # the kernel net ran only on the crop


def test_flexconv_crop_close_to_uncropped_and_causal_keeps_present():
    a = FlexConv(2, 2, causal=True, kernel_net="siren", mask_init_sigma=0.2)
    b = FlexConv(2, 2, causal=True, kernel_net="siren", mask_init_sigma=0.2, dynamic_cropping=False)
    x = _x(1, 2, 64)
    ya = a(x)
    b.load_state_dict(a.state_dict())  # includes the Chang scaling flag and reference size
    yb = b(x)
    assert a.crop_size(64)[0] < 64
    (c,) = a.kernel_positions([64])[..., 0].unsqueeze(0)
    assert float(c[-1]) == 1.0
    assert rel_norm(ya, yb) < 0.1


def test_gradients_reach_kernel_net_and_mask():
    layer = _layer(SeparableFlexConv, causal=True)
    layer(_x(2, 2, 30)).square().sum().backward()
    for name, p in layer.named_parameters():
        assert p.grad is not None and torch.isfinite(p.grad).all(), name
    assert layer.mask.mean.grad is not None


# --------------------------------------------------------------------------- errors
def test_errors_name_the_argument():
    with pytest.raises(ValueError, match="kernel_size must be odd"):
        CKConv(2, 3, kernel_size=4)
    with pytest.raises(ValueError, match="kernel_size must be"):
        CKConv(2, 3, kernel_size="valid")
    with pytest.raises(ValueError, match="data_dim"):
        CKConv(2, 3, data_dim=4)
    with pytest.raises(ValueError, match="causal=True needs data_dim=1"):
        CKConv(2, 3, data_dim=2, causal=True)
    with pytest.raises(ValueError, match="kernel_net must be"):
        CKConv(2, 3, kernel_net="wavelet")
    with pytest.raises(ValueError, match="kernel_net.out_features"):
        CKConv(2, 3, kernel_net=_SmoothNet(1, 5))
    with pytest.raises(ValueError, match="in_channels"):
        CKConv(0, 3)
    with pytest.raises(ValueError, match="kernel_size=41 is larger than allowed"):
        CKConv(2, 3, kernel_size=41, reference_size=16)
    layer = CKConv(2, 3, kernel_size=41)
    with pytest.raises(ValueError, match="kernel_size=41 is larger than allowed"):
        layer(_x(1, 2, 16))
    layer = CKConv(2, 3)
    with pytest.raises(ValueError, match="in_channels=2"):
        layer(_x(1, 3, 16))
    with pytest.raises(ValueError, match=r"x must have shape \(B, C, L\)"):
        layer(_x(1, 2, 4, 4))
    with pytest.raises(TypeError, match="dtype"):
        layer(_x(1, 2, 16, dtype=torch.float64))
    with pytest.raises(RuntimeError, match="reference size"):
        layer(_x(1, 2, 16), positions=torch.linspace(-1, 1, 16))
    layer(_x(1, 2, 16))
    with pytest.raises(ValueError, match="positions must have shape"):
        layer(_x(1, 2, 16), positions=torch.linspace(-1, 1, 15))
    with pytest.raises(ValueError, match="x must be point features"):  # 2-D positions: (B, C, N) points
        CKConv(2, 3, data_dim=2, kernel_size=3)(_x(1, 2, 5, 5), positions=torch.zeros(25, 2))


# ------------------------------------------------------------------------ devices/dtypes
@pytest.mark.parametrize("cls", [CKConv, SeparableFlexConv])
def test_devices_and_dtypes(cls, device, float_dtype):
    layer = _layer(cls, causal=True).to(device=device, dtype=float_dtype)
    x = _x(2, 2, 40).to(device=device, dtype=float_dtype)
    y = layer(x)
    assert y.device == x.device and y.dtype == float_dtype
    ref = layer.sample_kernel(40, device=device)
    assert ref.device == x.device
    direct = F.conv1d(F.pad(x, [ref.shape[-1] - 1, 0]), ref, layer.bias,
                      groups=2 if layer.separable else 1)
    if layer.separable:
        direct = layer.channel_mixer(direct)
    tol = 1e-5 if float_dtype == torch.float32 else 1e-10
    assert rel_norm(y, direct) < tol
