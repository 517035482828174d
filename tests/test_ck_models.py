"""Continuous-kernel models: CKCNN, CCNN, FlexNet and the plain baselines (TCN, ConvNet).

Shapes, causality (checked by perturbing the future), readouts against an independent
computation, save/load round trips (bit for bit), float64, clear errors, and one
``torch.compile`` agreement test.
"""

from __future__ import annotations

import io

import pytest
import torch
from torch import nn

from groupconv.models.baselines import (
    TCN,
    CausalConv1d,
    ChannelLayerNorm,
    ConvNet,
    SequenceReadout,
    count_parameters,
    make_norm,
)
from groupconv.models.ccnn import CCNN, CCNNBlock
from groupconv.models.ckcnn import (
    CKCNN,
    continuous_convs,
    make_continuous_conv,
    nyquist_terms,
    sampled_kernels,
)
from groupconv.models.flexnet import FlexNet
from groupconv.nn import CKConv, FlexConv, SeparableFlexConv


def _small_ckcnn(**kw) -> CKCNN:
    kw.setdefault("hidden_channels", 6)
    return CKCNN(2, 3, **kw)


# ------------------------------------------------------------------------------------- shapes
@pytest.mark.parametrize("readout, shape", [("last", (4, 3)), ("mean", (4, 3)), ("sequence", (4, 3, 21))])
def test_ckcnn_readout_shapes(device, readout, shape):
    net = _small_ckcnn(readout=readout).to(device)
    y = net(torch.randn(4, 2, 21, device=device))
    assert y.shape == shape and y.device.type == device.type
    assert torch.isfinite(y).all()


@pytest.mark.parametrize("conv, kernel_net", [("ck", "mlp"), ("flex", "magnet"), ("separable-ck", "siren"),
                                              ("separable-flex", "gabor")])
def test_ckcnn_conv_types(conv, kernel_net):
    net = _small_ckcnn(conv=conv, kernel_net=kernel_net, num_blocks=1)
    assert net(torch.randn(2, 2, 30)).shape == (2, 3)
    layers = continuous_convs(net)
    assert len(layers) == 2 and all(isinstance(m, type(layers[0])) for m in layers)
    assert ("flex" in conv) == all(hasattr(m, "mask") for m in layers)


@pytest.mark.parametrize("data_dim, size", [(1, (25,)), (2, (11, 11)), (3, (5, 6, 7))])
@pytest.mark.parametrize("head", ["classification", "sequence"])
def test_ccnn_shapes(device, data_dim, size, head):
    net = CCNN(2, 4, data_dim=data_dim, hidden_channels=4, num_blocks=1, head=head, kernel_size=5
               if data_dim > 1 else "same", conv_kwargs={"mask_init_sigma": 0.5}).to(device)
    y = net(torch.randn(3, 2, *size, device=device))
    assert y.shape == ((3, 4) if head == "classification" else (3, 4, *size))


def test_ccnn_default_image_horizon():
    net = CCNN(1, 2, data_dim=2, hidden_channels=4, num_blocks=1)
    assert all(m.kernel_size == 33 for m in continuous_convs(net))
    assert all(isinstance(m, SeparableFlexConv) for m in continuous_convs(net))
    assert net(torch.randn(1, 1, 20, 20)).shape == (1, 2)


@pytest.mark.parametrize("prenorm", [True, False])
def test_ccnn_block_formula(prenorm):
    """The block against a hand-written pre-/post-norm residual formula."""
    torch.manual_seed(0)
    block = CCNNBlock(3, lambda i, o: nn.Conv1d(i, o, 3, padding=1), norm="layer", prenorm=prenorm).eval()
    x = torch.randn(2, 3, 9)
    f = lambda h: nn.functional.gelu(block.linear(nn.functional.gelu(block.conv(h))))  # noqa: E731
    want = x + f(block.norm(x)) if prenorm else block.norm(x + f(x))
    torch.testing.assert_close(block(x), want)


def test_flexnet_shapes_and_pooling(device):
    net = FlexNet(3, 5, hidden_channels=4, num_blocks=2, kernel_size=9, width_factors=[1, 2],
                  pool_after=[0]).to(device)
    assert net(torch.randn(2, 3, 16, 16, device=device)).shape == (2, 5)
    assert isinstance(net.blocks[1], nn.MaxPool2d)
    assert net.head.in_features == 8
    assert all(isinstance(m, FlexConv) for m in continuous_convs(net))
    seq = FlexNet(1, 2, hidden_channels=3, num_blocks=1, data_dim=1, kernel_size="same")
    assert seq(torch.randn(2, 1, 30)).shape == (2, 2)


def test_baseline_shapes():
    assert TCN(2, 1, hidden_channels=4)(torch.randn(3, 2, 30)).shape == (3, 1)
    assert TCN(2, 5, hidden_channels=4, readout="sequence")(torch.randn(3, 2, 30)).shape == (3, 5, 30)
    assert ConvNet(1, 10)(torch.randn(4, 1, 40)).shape == (4, 10)
    assert ConvNet(3, 2, data_dim=2, norm="batch")(torch.randn(4, 3, 12, 12)).shape == (4, 2)


def test_ckcnn_float64(float_dtype):
    net = _small_ckcnn(conv="flex", kernel_net="magnet").to(float_dtype)
    y = net(torch.randn(2, 2, 17, dtype=float_dtype))
    assert y.dtype == float_dtype


# ------------------------------------------------------------------------------------- causality
def _future_perturbation_gap(net: nn.Module, L: int, t: int, in_channels: int = 2) -> tuple[float, float]:
    """Max change of outputs <= t and > t when inputs after t are replaced by noise."""
    torch.manual_seed(1)
    x = torch.randn(2, in_channels, L, dtype=torch.float64)
    x2 = x.clone()
    x2[..., t + 1:] = torch.randn_like(x2[..., t + 1:]) * 5
    with torch.no_grad():
        y, y2 = net(x), net(x2)
    past = (y[..., :t + 1] - y2[..., :t + 1]).abs().max().item()
    future = (y[..., t + 1:] - y2[..., t + 1:]).abs().max().item() if t + 1 < L else 0.0
    return past, future


@pytest.mark.parametrize("conv, kernel_net",
                         [("ck", "siren"), ("flex", "magnet"), ("separable-flex", "magnet")])
def test_ckcnn_is_causal(conv, kernel_net):
    net = _small_ckcnn(readout="sequence", conv=conv, kernel_net=kernel_net,
                       conv_kwargs={"mask_init_sigma": 2.0} if "flex" in conv else None).double().eval()
    for t in (0, 13, 28):
        past, future = _future_perturbation_gap(net, 30, t)
        assert past == 0.0
        if t < 29:
            assert future > 1e-6  # the perturbation does reach later outputs


def test_ckcnn_last_readout_sees_the_whole_sequence():
    """With the last-step readout the first input still matters (global memory horizon)."""
    net = _small_ckcnn().double().eval()
    x = torch.randn(2, 2, 60, dtype=torch.float64)
    x2 = x.clone()
    x2[..., 0] += 1.0
    with torch.no_grad():
        assert (net(x) - net(x2)).abs().max() > 1e-8


def test_ccnn_causal_with_layer_norm():
    net = CCNN(2, 3, hidden_channels=4, num_blocks=2, head="sequence", causal=True, norm="layer",
               conv_kwargs={"mask_init_sigma": 1.0}).double().eval()
    past, future = _future_perturbation_gap(net, 25, 10)
    assert past == 0.0 and future > 0


def test_tcn_receptive_field_is_nine():
    """Same-depth k=3 TCN without dilation: output T-1 sees exactly inputs T-9 .. T-1."""
    net = TCN(2, 1, hidden_channels=4).double().eval()
    assert net.receptive_field == 9
    x = torch.randn(1, 2, 40, dtype=torch.float64)
    with torch.no_grad():
        base = net(x)
        for lag, sees in ((8, True), (9, False), (20, False)):
            x2 = x.clone()
            x2[..., 39 - lag] += 3.0
            assert bool((net(x2) - base).abs().max() > 1e-9) == sees, lag
    past, _ = _future_perturbation_gap(TCN(2, 1, 4, readout="sequence").double().eval(), 20, 7)
    assert past == 0.0


# ------------------------------------------------------------------------------------- readouts
def test_readouts_against_sequence_outputs():
    """'last' and 'mean' equal the per-step ('sequence') outputs at t=-1 and averaged over t."""
    torch.manual_seed(0)
    seq = _small_ckcnn(readout="sequence").double().eval()
    last, mean = _small_ckcnn(readout="last").double(), _small_ckcnn(readout="mean").double()
    x = torch.randn(3, 2, 19, dtype=torch.float64)
    with torch.no_grad():
        y = seq(x)
    for net, want in ((last, y[..., -1]), (mean, y.mean(-1))):
        net.load_state_dict(seq.state_dict())
        net.eval()
        with torch.no_grad():
            torch.testing.assert_close(net(x), want)


def test_sequence_readout_and_norms():
    h = torch.randn(2, 4, 7)
    r = SequenceReadout(4, 3, "last")
    torch.testing.assert_close(r(h), h[..., -1] @ r.linear.weight[..., 0].T + r.linear.bias)
    y = ChannelLayerNorm(4)(h)
    torch.testing.assert_close(y, nn.functional.layer_norm(h.transpose(1, 2), (4,)).transpose(1, 2))
    assert isinstance(make_norm("none", 3), nn.Identity)
    out = CausalConv1d(1, 1, 3, dilation=2)(torch.randn(1, 1, 10))
    assert out.shape == (1, 1, 10)


# ------------------------------------------------------------------------------------- save / load
def _round_trip(make, x: torch.Tensor) -> None:
    torch.manual_seed(0)
    a = make()
    a(x)  # lazy state: reference sizes, Chang scaling
    a.eval()
    with torch.no_grad():
        want = a(x)
    buf = io.BytesIO()
    torch.save(a.state_dict(), buf)
    buf.seek(0)
    torch.manual_seed(123)  # a different initialisation that the load must fully overwrite
    b = make()
    b.load_state_dict(torch.load(buf, weights_only=True))
    b.eval()
    with torch.no_grad():
        got = b(x)
    assert torch.equal(got, want)
    # the lazy one-shot initialisation must not be applied a second time after loading
    with torch.no_grad():
        assert torch.equal(b(x), want)


@pytest.mark.parametrize("name", ["ckcnn", "flextcn", "ccnn1d", "ccnn2d", "flexnet", "tcn"])
def test_save_load_round_trip_is_bit_exact(name):
    makers = {
        "ckcnn": (lambda: _small_ckcnn(), (2, 2, 30)),
        "flextcn": (lambda: _small_ckcnn(conv="flex", kernel_net="magnet"), (2, 2, 30)),
        "ccnn1d": (lambda: CCNN(2, 3, hidden_channels=4, num_blocks=2, conv_kwargs={"mask_init_sigma": 0.4}),
                   (2, 2, 30)),
        "ccnn2d": (lambda: CCNN(2, 3, data_dim=2, hidden_channels=4, num_blocks=1, kernel_size=7),
                   (2, 2, 9, 9)),
        "flexnet": (lambda: FlexNet(2, 3, hidden_channels=4, num_blocks=1, kernel_size=7), (2, 2, 9, 9)),
        "tcn": (lambda: TCN(2, 3, hidden_channels=4), (2, 2, 30)),
    }
    make, shape = makers[name]
    _round_trip(make, torch.randn(*shape))


def test_state_dict_same_in_train_and_eval():
    net = CCNN(1, 2, hidden_channels=4, num_blocks=1)
    net(torch.randn(2, 1, 20))
    keys_train = set(net.state_dict())
    net.eval()
    net(torch.randn(2, 1, 20))
    assert set(net.state_dict()) == keys_train


# ------------------------------------------------------------------------------------- helpers
def test_parameter_counts():
    # the reference CKCNN (2 blocks x 30 channels, 32-unit kernel nets) has ~100k parameters
    assert 80_000 < count_parameters(CKCNN(2, 1)) < 120_000
    assert count_parameters(TCN(2, 1)) < 10_000
    small = count_parameters(CCNN(1, 10, hidden_channels=8, num_blocks=1))
    assert small < count_parameters(CCNN(1, 10, hidden_channels=16, num_blocks=1))


def test_regulariser_helpers():
    net = CKCNN(1, 1, hidden_channels=2, num_blocks=1, kernel_net="magnet", conv="flex")
    assert sampled_kernels(net) == [] and nyquist_terms(net) == []  # nothing seen yet
    net(torch.randn(1, 1, 40))
    ks = sampled_kernels(net)
    assert [k.shape[0] for k in ks] == [2, 2] and all(k.requires_grad for k in ks)
    terms = nyquist_terms(net, with_mask=True)
    assert [t[1] for t in terms] == [[40], [40]] and all(t[2] is not None for t in terms)
    horizon = make_continuous_conv("ck", 1, 1, kernel_net="magnet", kernel_size=9)
    horizon(torch.randn(1, 1, 20))
    assert nyquist_terms(horizon)[0][1] == [9]


def test_kernel_net_kwargs_reach_the_layers():
    net = _small_ckcnn(kernel_net_kwargs={"omega_0": 7.0, "hidden_features": 5})
    for m in continuous_convs(net):
        assert isinstance(m, CKConv)
        assert float(m.kernel_net.omega_0) == 7.0 and m.kernel_net.hidden_features == 5
    ccnn = CCNN(1, 2, hidden_channels=3, num_blocks=1, conv_kwargs={"mask_init_sigma": 0.3})
    sig = [float(m.mask.effective_sigma().detach().mean()) for m in continuous_convs(ccnn)]
    assert all(abs(s - 0.3) < 1e-5 for s in sig)


# ------------------------------------------------------------------------------------- errors
@pytest.mark.parametrize("make, match", [
    (lambda: CKCNN(2, 1, readout="max"), "readout"),
    (lambda: CKCNN(2, 1, conv="dense"), "conv must be one of"),
    (lambda: CKCNN(2, 1, dropout=1.5), "dropout"),
    (lambda: CKCNN(0, 1), "in_channels"),
    (lambda: CKCNN(2, 1, conv_kwargs={"mask_init_sigma": 0.1}), "has no mask"),
    (lambda: CCNN(1, 2, data_dim=4), "data_dim"),
    (lambda: CCNN(1, 2, head="dense"), "head"),
    (lambda: CCNN(1, 2, data_dim=2, causal=True), "causal"),
    (lambda: CCNN(1, 2, stem="pool"), "stem"),
    (lambda: CCNN(1, 2, norm="group"), "norm"),
    (lambda: FlexNet(1, 2, num_blocks=2, width_factors=[1.0]), "width_factors"),
    (lambda: FlexNet(1, 2, num_blocks=2, pool_after=[5]), "pool_after"),
])
def test_constructor_errors(make, match):
    with pytest.raises((ValueError, TypeError), match=match):
        make()


def test_input_shape_errors():
    with pytest.raises(ValueError, match=r"in_channels=2"):
        _small_ckcnn()(torch.randn(2, 3, 10))
    with pytest.raises(ValueError, match=r"\(B, C, H, W\)"):
        CCNN(1, 2, data_dim=2, hidden_channels=4, num_blocks=1)(torch.randn(2, 1, 10))
    with pytest.raises(ValueError, match="in_channels=1"):
        FlexNet(1, 2, hidden_channels=4, num_blocks=1)(torch.randn(2, 2, 10, 10))
    with pytest.raises(TypeError, match="torch.Tensor"):
        TCN(1, 1)([1.0, 2.0])


# ------------------------------------------------------------------------------------- compile
@pytest.mark.slow
def test_torch_compile_matches_eager():
    torch.manual_seed(0)
    net = _small_ckcnn(conv="flex", kernel_net="magnet", num_blocks=1).eval()
    x = torch.randn(2, 2, 24)
    with torch.no_grad():
        want = net(x)
        got = torch.compile(net)(x)
    torch.testing.assert_close(got, want, rtol=1e-5, atol=1e-5)
