"""FFT convolution agrees with torch's direct convolution (the reference semantics)."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from _helpers import rel_norm
from hypothesis import given
from hypothesis import strategies as st

from groupconv.functional import conv, fftconv, get_cost_model, next_fast_len, resolve_padding, use_fft

_TORCH_CONV = {1: F.conv1d, 2: F.conv2d, 3: F.conv3d}


def _reference(x, w, b, pads, groups, mode="constant"):
    flat = []
    for left, right in reversed(pads):
        flat += [left, right]
    return _TORCH_CONV[w.dim() - 2](F.pad(x, flat, mode=mode), w, b, groups=groups)


@st.composite
def conv_case(draw):
    d = draw(st.sampled_from([1, 1, 2, 2, 3]))
    max_n = {1: 70, 2: 14, 3: 7}[d]
    sizes = [draw(st.integers(1, max_n)) for _ in range(d)]
    ks = [draw(st.integers(1, n + 2)) for n in sizes]
    groups_kind = draw(st.sampled_from(["dense", "depthwise", "grouped"]))
    c_in = draw(st.integers(1, 4))
    if groups_kind == "dense":
        groups, c_out = 1, draw(st.integers(1, 4))
    elif groups_kind == "depthwise":
        groups, c_out = c_in, c_in * draw(st.integers(1, 2))
    else:
        c_in, groups = 2 * c_in, 2
        c_out = 2 * draw(st.integers(1, 2))
    padding = draw(st.sampled_from(["same", "valid", "int", "pairs", "causal"]))
    bias = draw(st.booleans())
    return d, sizes, ks, c_in, c_out, groups, padding, bias


def _pads_for(padding, ks, sizes):
    if padding == "int":
        return 1, [(1, 1)] * len(ks)
    if padding == "pairs":
        pairs = [(k - 1, (k - 1) // 2) for k in ks]
        return pairs, pairs
    if padding == "causal":
        return "causal", [(k - 1, 0) for k in ks]
    return padding, resolve_padding(padding, ks)


@given(conv_case(), st.sampled_from([torch.float32, torch.float64]))
def test_fftconv_matches_torch_conv(case, dtype):
    d, sizes, ks, c_in, c_out, groups, padding, bias = case
    arg, pads = _pads_for(padding, ks, sizes)
    if any(n + left + right < k for n, k, (left, right) in zip(sizes, ks, pads)):
        return  # no valid output; covered by the error test
    gen = torch.Generator().manual_seed(0)
    x = torch.randn(2, c_in, *sizes, generator=gen, dtype=dtype)
    w = torch.randn(c_out, c_in // groups, *ks, generator=gen, dtype=dtype)
    b = torch.randn(c_out, generator=gen, dtype=dtype) if bias else None
    ref = _reference(x, w, b, pads, groups)
    if arg == "causal":
        out = fftconv(x, w, b, causal=True, groups=groups)
    else:
        out = fftconv(x, w, b, padding=arg, groups=groups)
    assert out.shape == ref.shape and out.dtype == dtype
    tol = 1e-5 if dtype == torch.float32 else 1e-12
    assert rel_norm(out, ref) <= tol


@pytest.mark.parametrize("d,n,k", [(1, 257, 129), (1, 1000, 1000), (1, 64, 64), (2, 33, 33), (2, 20, 8),
                                   (3, 9, 9)])
@pytest.mark.parametrize("causal", [False, True])
def test_fftconv_long_kernels_float32(d, n, k, causal):
    """Full-length kernels, odd and even, centred and causal, at 1e-5 relative in float32."""
    gen = torch.Generator().manual_seed(1)
    x = torch.randn(2, 3, *([n] * d), generator=gen)
    w = torch.randn(4, 3, *([k] * d), generator=gen)
    pads = [(k - 1, 0)] * d if causal else resolve_padding("same", [k] * d)
    ref = _reference(x.double(), w.double(), None, pads, 1).float()
    out = conv(x, w, causal=causal, padding=0 if causal else "same", method="fft")
    assert rel_norm(out, ref) <= 1e-5
    direct = conv(x, w, causal=causal, padding=0 if causal else "same", method="direct")
    assert rel_norm(direct, ref) <= 1e-5


@pytest.mark.parametrize("d", [1, 2])
def test_depthwise_and_circular(d):
    gen = torch.Generator().manual_seed(2)
    x = torch.randn(2, 4, *([11] * d), generator=gen, dtype=torch.float64)
    w = torch.randn(4, 1, *([7] * d), generator=gen, dtype=torch.float64)
    b = torch.randn(4, generator=gen, dtype=torch.float64)
    pads = [(3, 3)] * d
    ref = _reference(x, w, b, pads, 4, mode="circular")
    out = fftconv(x, w, b, padding=3, groups=4, padding_mode="circular")
    assert rel_norm(out, ref) <= 1e-12
    # circular padding -> exact equivariance under integer circular shifts (torch.roll)
    shift = (2, -3)[:d]
    dims = tuple(range(2, 2 + d))
    rolled = fftconv(torch.roll(x, shift, dims), w, b, padding=3, groups=4, padding_mode="circular")
    assert torch.allclose(rolled, torch.roll(out, shift, dims), atol=1e-12)


def test_gradients_match_direct():
    gen = torch.Generator().manual_seed(3)
    x = torch.randn(2, 4, 30, generator=gen, dtype=torch.float64, requires_grad=True)
    w = torch.randn(6, 2, 9, generator=gen, dtype=torch.float64, requires_grad=True)
    b = torch.randn(6, generator=gen, dtype=torch.float64, requires_grad=True)
    g = torch.randn(2, 6, 30, generator=gen, dtype=torch.float64)
    grads_fft = torch.autograd.grad((fftconv(x, w, b, padding="same", groups=2) * g).sum(), (x, w, b))
    grads_ref = torch.autograd.grad((F.conv1d(x, w, b, padding="same", groups=2) * g).sum(), (x, w, b))
    for a, r in zip(grads_fft, grads_ref):
        assert rel_norm(a, r) <= 1e-12


def test_half_precision_computes_in_float32():
    gen = torch.Generator().manual_seed(4)
    x = torch.randn(1, 2, 40, generator=gen)
    w = torch.randn(2, 2, 15, generator=gen)
    out = fftconv(x.bfloat16(), w.bfloat16(), padding="same")
    assert out.dtype == torch.bfloat16
    ref = F.conv1d(x.bfloat16().float(), w.bfloat16().float(), padding="same")
    assert rel_norm(out.float(), ref) < 1e-2


def test_device(device):
    gen = torch.Generator().manual_seed(5)
    x = torch.randn(2, 3, 50, generator=gen).to(device)
    w = torch.randn(3, 3, 31, generator=gen).to(device)
    out = fftconv(x, w, padding="same")
    assert out.device == x.device
    assert rel_norm(out, F.conv1d(x, w, padding="same")) <= 1e-5


def test_next_fast_len_is_smallest_5_smooth():
    def smooth(m):
        for p in (2, 3, 5):
            while m % p == 0:
                m //= p
        return m == 1

    for n in range(1, 400):
        m = next_fast_len(n)
        assert m >= n and smooth(m)
        assert not any(smooth(j) for j in range(n, m))


def test_use_fft_cost_model_and_auto_dispatch():
    # the measured cost model (not a size threshold) decides; clear-cut cases either way
    assert use_fft((1, 32, 8192), (32, 32, 8192), causal=True)
    assert use_fft((8, 32, 4096), (32, 32, 255), padding="same")
    assert use_fft((8, 16, 64, 64), (16, 16, 33, 33), padding="same")
    assert not use_fft((8, 16, 32, 32), (16, 16, 3, 3), padding="same")
    assert not use_fft((2, 8, 16, 16, 16), (8, 8, 3, 3, 3), padding="same")
    assert not use_fft((8, 16, 64), (16, 16, 7), padding="same")
    # a cached spectrum removes the kernel transform: at batch 1 it flips a close call
    shape = ((1, 32, 4096), (32, 32, 255))
    assert use_fft(*shape, padding="same", spectrum_cached=True)
    m = get_cost_model()
    assert m.fft_seconds(*shape, spectrum_cached=True) < m.fft_seconds(*shape)
    x, w = torch.randn(1, 2, 300), torch.randn(2, 2, 257)
    assert rel_norm(conv(x, w, padding="same"), F.conv1d(x, w, padding="same")) <= 1e-5


def test_padding_resolution():
    assert resolve_padding("same", [4, 5]) == [(1, 2), (2, 2)]
    assert resolve_padding("valid", [3]) == [(0, 0)]
    assert resolve_padding([(1, 2), 3], [3, 3]) == [(1, 2), (3, 3)]
    assert resolve_padding(0, [6], causal=True) == [(5, 0)]


def test_errors_name_the_argument():
    x, w = torch.randn(1, 3, 10), torch.randn(2, 3, 3)
    with pytest.raises(ValueError, match="kernel must have C_in/groups"):
        fftconv(torch.randn(1, 4, 10), w)
    with pytest.raises(ValueError, match="x must have shape"):
        fftconv(torch.randn(1, 3, 10, 10), w)
    with pytest.raises(ValueError, match="kernel must have shape"):
        fftconv(x, torch.randn(2, 3))
    with pytest.raises(ValueError, match="groups"):
        fftconv(x, w, groups=2)
    with pytest.raises(ValueError, match="bias"):
        fftconv(x, w, torch.randn(3))
    with pytest.raises(ValueError, match="padding"):
        fftconv(x, w, padding="circular")
    with pytest.raises(ValueError, match="padding"):
        fftconv(x, w, padding=(1, 2))
    with pytest.raises(ValueError, match="padding must be 0"):
        fftconv(x, w, padding=1, causal=True)
    with pytest.raises(ValueError, match="smaller than the kernel"):
        fftconv(x, torch.randn(2, 3, 12))
    with pytest.raises(ValueError, match="method"):
        conv(x, w, method="winograd")
    with pytest.raises(TypeError, match="x must be a torch.Tensor"):
        fftconv([1.0], w)


def test_cost_models_per_thread_count():
    from groupconv.functional import DEFAULT_COST_MODEL, CostModel, get_cost_model, set_cost_model

    assert DEFAULT_COST_MODEL.threads == 1
    one = CostModel(a_direct=(1.0, 1.0, 1.0), threads=1)
    two = CostModel(a_direct=(2.0, 2.0, 2.0), threads=2)
    anyn = CostModel(a_direct=(3.0, 3.0, 3.0))
    try:
        assert set_cost_model(two) is DEFAULT_COST_MODEL  # installed for 2 threads only
        assert get_cost_model(2) is two and get_cost_model(1) is DEFAULT_COST_MODEL
        set_cost_model(anyn)  # every other count
        assert get_cost_model(1) is anyn and get_cost_model(3) is anyn and get_cost_model(2) is two
        assert set_cost_model(one) is anyn
        assert get_cost_model(1) is one
        prev = torch.get_num_threads()
        torch.set_num_threads(2)
        try:  # the current thread count picks the model, and method="auto" follows it
            assert get_cost_model() is two
            assert not use_fft((1, 32, 8192), (32, 32, 8192), causal=True, cost_model=CostModel(
                a_direct=(0.0, 0.0, 0.0)))
        finally:
            torch.set_num_threads(prev)
        with pytest.raises(ValueError, match="threads must be"):
            get_cost_model(0)
    finally:
        for n in (1, 2, None):
            set_cost_model(None, threads=n)
    assert get_cost_model(1) is DEFAULT_COST_MODEL and get_cost_model(2) is DEFAULT_COST_MODEL
