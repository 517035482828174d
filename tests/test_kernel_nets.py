"""Kernel networks: shapes/dtypes/devices, inits, frequency bounds vs measured spectra,
Chang scaling (once, persistent), Gamma initialisation statistics and kernel fitting."""

from __future__ import annotations

import copy
import io
import math

import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st
from scipy import stats

from groupconv.kernels import (
    MLP,
    RFF,
    SIREN,
    FourierNet,
    GaborNet,
    KernelNet,
    MAGNet,
    apply_chang_scaling,
    fit_kernel,
    linspace_grid,
    sample_gamma,
)

NETS = [MLP, SIREN, RFF, FourierNet, GaborNet, MAGNet]


def gen(seed: int = 0) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


# --------------------------------------------------------------------------------- interface
@pytest.mark.parametrize("cls", NETS, ids=lambda c: c.__name__)
@pytest.mark.parametrize("in_features", [1, 2, 3])
def test_shapes_dtypes_devices(cls, in_features, device, float_dtype):
    net = cls(in_features, 5, hidden_features=8, num_layers=2, generator=gen(), device=device,
              dtype=float_dtype)
    assert isinstance(net, KernelNet)
    assert (net.in_features, net.out_features) == (in_features, 5)
    x = (torch.rand(2, 3, in_features, device=device, dtype=float_dtype) * 2 - 1)
    y = net(x)
    assert y.shape == (2, 3, 5) and y.dtype == float_dtype and y.device.type == device.type
    y.square().sum().backward()
    grads = [p.grad for p in net.parameters()]
    assert all(g is not None and torch.isfinite(g).all() for g in grads)
    fb = net.frequency_bounds()
    assert fb.shape == (in_features,) and fb.dtype == float_dtype and fb.device.type == device.type
    assert (fb > 0).all()
    assert net.layer_frequency_bounds().shape[-1] == in_features


@pytest.mark.parametrize("cls", NETS, ids=lambda c: c.__name__)
def test_bad_inputs(cls):
    net = cls(2, 3, hidden_features=4, num_layers=2)
    with pytest.raises(ValueError, match="coords"):
        net(torch.zeros(4, 3))
    with pytest.raises(TypeError, match="coords"):
        net(torch.zeros(4, 2, dtype=torch.long))
    with pytest.raises(TypeError, match="coords"):
        net([[0.0, 0.0]])
    with pytest.raises(ValueError, match="out_features"):
        cls(2, 0)
    with pytest.raises((ValueError, TypeError), match="num_layers"):
        cls(2, 3, num_layers=0)


def test_bad_options():
    with pytest.raises(ValueError, match="activation"):
        MLP(1, 1, activation="tanh")
    with pytest.raises(ValueError, match="norm"):
        MLP(1, 1, norm="group")
    with pytest.raises(ValueError, match="omega_0"):
        SIREN(1, 1, omega_0=-1.0)
    with pytest.raises(ValueError, match="init"):
        MAGNet(1, 1, init="bogus")
    with pytest.raises(ValueError, match="steerable"):
        MAGNet(1, 1, steerable=True)
    with pytest.raises(ValueError, match="steerable"):
        GaborNet(2, 1, steerable=True)


@given(batch=st.lists(st.integers(1, 3), min_size=0, max_size=3), d=st.integers(1, 3))
def test_any_leading_shape(batch, d):
    net = MAGNet(d, 2, hidden_features=4, num_layers=1, steerable=False, generator=gen())
    x = torch.rand(*batch, d, generator=gen(1)) * 2 - 1
    y = net(x)
    assert y.shape == (*batch, 2)
    # pointwise: evaluating a flattened copy gives the same values
    torch.testing.assert_close(net(x.reshape(-1, d)).reshape(*batch, 2), y)


# ------------------------------------------------------------------------------------- MLP
@pytest.mark.parametrize("activation", ["relu", "leaky_relu", "swish", "gelu"])
@pytest.mark.parametrize("norm", [None, "layer", "batch"])
def test_mlp_options(activation, norm):
    net = MLP(2, 3, 8, 3, activation=activation, norm=norm, generator=gen())
    assert net(torch.rand(4, 4, 2)).shape == (4, 4, 3)
    assert not net.band_limited and torch.isinf(net.frequency_bounds()).all()


def test_mlp_knot_init_spreads_relu_knots():
    net = MLP(1, 2, hidden_features=9, num_layers=3, generator=gen())
    w, b = net.hidden[0].weight[:, 0], net.hidden[0].bias
    knots = -b / w  # zero of w x + b
    torch.testing.assert_close(knots, torch.linspace(-1, 1, 9))
    assert net.hidden[0].weight.std() < 0.05  # N(0, 0.01)
    kai = MLP(1, 2, 9, 3, init="kaiming", generator=gen())
    assert (kai.hidden[0].bias == 0).all()


@pytest.mark.parametrize("cls", [MLP, SIREN])
def test_weight_norm_variant(cls):
    plain = cls(2, 3, 8, 3, generator=gen(3))
    wn = cls(2, 3, 8, 3, weight_norm=True, generator=gen(3))
    names = [n for n, _ in wn.named_parameters()]
    assert any("parametrizations.weight.original0" in n for n in names)
    x = torch.rand(5, 2) * 2 - 1
    torch.testing.assert_close(wn(x), plain(x))  # same function at init


# ----------------------------------------------------------------------------------- SIREN
def test_siren_inits_and_learnable_omega():
    s = SIREN(2, 1, 16, 3, omega_0=10.0, init="siren", generator=gen())
    assert s.hidden[0].weight.abs().max() <= 1 / 2
    assert s.hidden[1].weight.abs().max() <= math.sqrt(6 / 16) / 10
    c = SIREN(2, 1, 16, 3, omega_0=10.0, init="ckconv", generator=gen())
    assert c.hidden[0].weight.abs().max() > 1 / 2
    assert "omega_0" not in dict(s.named_parameters())
    learn = SIREN(1, 1, 8, 2, learn_omega_0=True)
    assert isinstance(learn.omega_0, torch.nn.Parameter)
    learn.frequency_bounds().sum().backward()
    assert learn.omega_0.grad is not None and learn.omega_0.grad > 0


def test_rff_embedding_statistics_and_bounds():
    net = RFF(1, 1, num_frequencies=4000, omega_0=3.0, num_layers=1, generator=gen())
    cycles = net.frequencies / (2 * math.pi)
    assert abs(cycles.std().item() - 3.0) < 0.15
    assert net.band_limited
    torch.testing.assert_close(net.frequency_bounds(), cycles.abs().amax(0))
    assert not RFF(1, 1).band_limited


# ------------------------------------------------------------------------ frequency bounds
def _spectrum_excess(net: KernelNet, bound: float, margin: float, n: int = 4097) -> float:
    """Fraction of spectral energy above ``bound + margin`` (1-D, Hann window, dense grid)."""
    x = torch.linspace(-1, 1, n, dtype=torch.float64)[:, None]
    with torch.no_grad():
        y = net(x)[:, 0]
    y = (y - y.mean()) * torch.hann_window(n, periodic=False, dtype=torch.float64)
    power = torch.fft.rfft(y).abs().square()
    freqs = torch.fft.rfftfreq(n, d=2.0 / (n - 1), dtype=torch.float64)  # cycles per unit
    return float(power[freqs > bound + margin].sum() / power.sum())


@pytest.mark.parametrize(
    "make, tol",
    [
        (lambda g: FourierNet(1, 1, 16, 3, input_scale=40.0, generator=g, dtype=torch.float64), 1e-6),
        (lambda g: MAGNet(1, 1, 16, 3, init="ccnn", omega_0=2.0, generator=g, dtype=torch.float64),
         1e-3),
        (lambda g: GaborNet(1, 1, 16, 2, generator=g, dtype=torch.float64), 1e-3),
        (lambda g: SIREN(1, 1, 16, 3, omega_0=10.0, generator=g, dtype=torch.float64), 1e-3),
    ],
    ids=["fourier", "magnet", "gabor", "siren"],
)
@pytest.mark.parametrize("seed", [0, 1])
def test_frequency_bound_dominates_measured_spectrum(make, tol, seed):
    net = make(gen(seed))
    bound = float(net.frequency_bounds().detach()[0])
    assert 0 < bound < 500  # measurable on the dense grid (Nyquist 1024)
    assert _spectrum_excess(net, bound, margin=2.0) < tol


def test_fourier_bound_is_attained():
    # one unit per filter: frequencies f0 and f1 combine into f0 + f1 (the bound is tight)
    net = FourierNet(1, 1, hidden_features=1, num_layers=1, dtype=torch.float64)
    with torch.no_grad():
        net.filter_weight.copy_(torch.tensor([[[2 * math.pi * 5.0]], [[2 * math.pi * 7.0]]]))
        net.hidden_weight.fill_(1.0)
        net.hidden_bias.zero_()
    assert float(net.frequency_bounds().detach()[0]) == pytest.approx(12.0)
    n = 4097
    x = torch.linspace(-1, 1, n, dtype=torch.float64)[:, None]
    with torch.no_grad():
        y = net(x)[:, 0] * torch.hann_window(n, periodic=False, dtype=torch.float64)
    power = torch.fft.rfft(y).abs()
    freqs = torch.fft.rfftfreq(n, d=2.0 / (n - 1))
    peaks = freqs[power > 0.3 * power.max()]
    assert peaks.max() == pytest.approx(12.0, abs=1.0)


def test_steerable_bound_matches_rotated_window():
    net = MAGNet(2, 1, 4, 1, steerable=True, generator=gen())
    with torch.no_grad():
        net.theta.fill_(0.25)  # 90 degrees: the axes of each window swap
    std = net.window_spectral_std()
    torch.testing.assert_close(std, net.gamma.abs().flip(-1), atol=1e-5, rtol=1e-5)


# ------------------------------------------------------------------------------- Gamma init
@pytest.mark.parametrize("alpha, beta", [(6.0, 1.0), (1.5, 2.0), (0.5, 1.0)])
def test_sample_gamma_statistics(alpha, beta):
    x = sample_gamma(alpha, beta, (20000,), generator=gen(7), dtype=torch.float64)
    assert (x > 0).all()
    se = math.sqrt(alpha / beta**2 / x.numel())  # standard error of the mean
    assert abs(x.mean().item() - alpha / beta) < 4 * se
    assert x.var().item() == pytest.approx(alpha / beta**2, rel=0.1)
    ks = stats.kstest(x.numpy(), stats.gamma(a=alpha, scale=1 / beta).cdf)
    assert ks.pvalue > 1e-3
    torch.testing.assert_close(x, sample_gamma(alpha, beta, (20000,), generator=gen(7),
                                               dtype=torch.float64))
    with pytest.raises(ValueError, match="concentration"):
        sample_gamma(0.0)


def test_magnet_gamma_init_is_layer_dependent():
    net = MAGNet(2, 1, hidden_features=512, num_layers=3, generator=gen(11))
    means = net.gamma.mean(dim=(1, 2))
    expected = torch.tensor([6.0 / (l + 1) for l in range(4)])
    torch.testing.assert_close(means, expected, rtol=0.1, atol=0.0)
    gabor = GaborNet(2, 1, hidden_features=512, num_layers=3, generator=gen(11))
    assert gabor.gamma.shape == (4, 512, 1)
    assert gabor.gamma.mean().item() == pytest.approx(6.0 / 4, rel=0.1)


def test_magnet_published_initialisations():
    L, H, D = 3, 64, 2
    flex = MAGNet(D, 1, H, L, input_scale=25.6, generator=gen())
    ratio = (flex.filter_weight / flex.gamma).abs()
    assert ratio.max() <= 25.6 / math.sqrt(L + 1) / math.sqrt(D) * (1 + 1e-5)
    assert flex.filter_bias.abs().max() <= math.pi and flex.filter_bias.std() > 1.0
    assert flex.hidden_weight.abs().max() <= math.sqrt(1.0 / H)
    ccnn = MAGNet(D, 1, H, L, init="ccnn", omega_0=3.0, generator=gen())
    ratio = (ccnn.filter_weight / ccnn.gamma).abs()
    assert ratio.max() <= 2 * math.pi * 3.0 / math.sqrt(D) * (1 + 1e-5)
    assert (ccnn.filter_bias == 0).all() and (ccnn.hidden_bias == 1).all()
    causal = MAGNet(1, 1, H, L, causal=True, mu_scale=0.5, generator=gen())
    assert causal.mu.min() >= 0.5 and causal.mu.max() <= 1.0


# ---------------------------------------------------------------------------- Chang scaling
@pytest.mark.parametrize("cls", NETS, ids=lambda c: c.__name__)
def test_chang_scaling_once_and_persistent(cls):
    net = cls(2, 3, 8, 2, generator=gen(), weight_norm=True) if cls in (MLP, SIREN) else \
        cls(2, 3, 8, 2, generator=gen())
    x = torch.rand(6, 2, generator=gen(1)) * 2 - 1
    w0 = net.output_linear.weight.detach().clone()
    fan_in = 4 * 9
    assert not net.is_chang_initialized
    assert apply_chang_scaling(net, fan_in) is True
    torch.testing.assert_close(net.output_linear.weight, w0 * math.sqrt(1 / fan_in))
    assert net.chang_initialize_(fan_in) is False  # exactly once
    torch.testing.assert_close(net.output_linear.weight, w0 * math.sqrt(1 / fan_in))
    assert float(net.chang_scale) == pytest.approx(math.sqrt(1 / fan_in))
    out = net(x)
    sd = net.state_dict()
    assert "chang_initialized" in sd and "chang_scale" in sd
    buf = io.BytesIO()
    torch.save(sd, buf)
    buf.seek(0)
    fresh = cls(2, 3, 8, 2, generator=gen(99), **({"weight_norm": True} if cls in (MLP, SIREN) else {}))
    fresh.load_state_dict(torch.load(buf))  # loaded before any forward
    assert fresh.is_chang_initialized
    assert fresh.chang_initialize_(fan_in) is False
    assert torch.equal(fresh(x), out)  # bit-for-bit
    assert copy.deepcopy(fresh).is_chang_initialized
    # loading an un-scaled state resets the flag
    again = cls(2, 3, 8, 2, **({"weight_norm": True} if cls in (MLP, SIREN) else {}))
    fresh.load_state_dict(again.state_dict())
    assert not fresh.is_chang_initialized


def test_chang_measured_mode_matches_target_std():
    net = MAGNet(2, 6, 16, 2, generator=gen())
    grid = linspace_grid([9, 9])
    fan_in = 6 * 81
    net.chang_initialize_(fan_in, gain=2.0, coords=grid)
    std = net(grid).std().item()
    assert std == pytest.approx(math.sqrt(2.0 / fan_in), rel=1e-4)
    with pytest.raises(ValueError, match="fan_in"):
        MAGNet(1, 1).chang_initialize_(0)


# ---------------------------------------------------------------------------------- fitting
@pytest.mark.parametrize(
    "make",
    [lambda: SIREN(1, 1, 32, 3, omega_0=10.0, generator=gen()),
     lambda: MAGNet(1, 1, 16, 1, generator=gen())],
    ids=["siren", "magnet"],
)
def test_fit_sine(make):
    torch.manual_seed(0)
    res = fit_kernel(make(), lambda x: torch.sin(3 * math.pi * x), grid_size=65, steps=100, lr=1e-2)
    assert res.final_mse < 1e-2, res.final_mse
    assert res.losses[0] > 10 * res.final_mse
    assert res.prediction.shape == (65, 1)


def test_fit_kernel_errors():
    with pytest.raises(ValueError, match="target"):
        fit_kernel(SIREN(1, 1), "nope", steps=1)
    with pytest.raises(ValueError, match="target values"):
        fit_kernel(SIREN(1, 2), torch.zeros(3, 3), coords=torch.zeros(5, 1), steps=1)
