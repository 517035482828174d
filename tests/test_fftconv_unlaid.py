"""fftconv's uncached small-batch route (issue 14, item 3): the kernel spectrum is mixed in its
natural (C_out, C_in, F) layout by accumulation over input channels. It must compute what
torch's direct convolution computes, in 1-3 dims, and be used exactly when intended."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from groupconv.functional import fftconv
from groupconv.functional.fftconv import _mix_unlaid

_CONV = {1: F.conv1d, 2: F.conv2d, 3: F.conv3d}


def _tol(dtype):
    return {"atol": 1e-4, "rtol": 1e-4} if dtype == torch.float32 else {"atol": 1e-10, "rtol": 1e-10}


@pytest.mark.filterwarnings("ignore:Using padding='same' with even kernel")
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("d,size,k", [(1, (37,), (9,)), (2, (11, 9), (5, 3)), (3, (6, 7, 5), (3, 3, 2))])
@pytest.mark.parametrize("batch", [1, 2])
def test_unlaid_route_matches_direct_conv(dtype, d, size, k, batch):
    g = torch.Generator().manual_seed(d * 10 + batch)
    x = torch.randn(batch, 3, *size, generator=g, dtype=dtype)
    w = torch.randn(4, 3, *k, generator=g, dtype=dtype)
    b = torch.randn(4, generator=g, dtype=dtype)
    assert _mix_unlaid(x, w, 1)
    for padding in ("same", 0):
        y = fftconv(x, w, b, padding=padding)
        torch.testing.assert_close(y, _CONV[d](x, w, b, padding=padding), **_tol(dtype))
    yc = fftconv(x, w, causal=True)  # left padding k - 1 on every axis
    xp = F.pad(x, [p for kk in reversed(k) for p in (kk - 1, 0)])
    torch.testing.assert_close(yc, _CONV[d](xp, w), **_tol(dtype))


def test_unlaid_route_equals_the_matmul_route():
    """The same call through both mixings (batch 2 vs the matmul route forced by batch 3 on the
    first two elements) agrees; a broken conjugation would flip the kernel and fail here."""
    g = torch.Generator().manual_seed(0)
    x = torch.randn(3, 4, 64, generator=g, dtype=torch.float64)
    w = torch.randn(5, 4, 17, generator=g, dtype=torch.float64)  # asymmetric kernel
    assert _mix_unlaid(x[:2], w, 1) and not _mix_unlaid(x, w, 1)
    torch.testing.assert_close(fftconv(x[:2], w, causal=True), fftconv(x, w, causal=True)[:2],
                               atol=1e-11, rtol=1e-11)


def test_unlaid_route_half_input_and_dispatch():
    x = torch.randn(1, 3, 40).to(torch.bfloat16)
    w = torch.randn(2, 3, 7).to(torch.bfloat16)
    y = fftconv(x, w, padding="same")
    assert y.dtype == torch.bfloat16
    ref = F.conv1d(x.float(), w.float(), padding="same")
    torch.testing.assert_close(y.float(), ref, atol=5e-2, rtol=5e-2)
    # not taken: grouped or depthwise kernels, a single input channel, autograd recording
    xr = torch.randn(1, 4, 20)
    assert not _mix_unlaid(xr, torch.randn(4, 2, 3), 2)
    assert not _mix_unlaid(xr, torch.randn(4, 1, 3), 4)
    assert not _mix_unlaid(torch.randn(1, 1, 20), torch.randn(4, 1, 3), 1)
    wg = torch.randn(4, 4, 3, requires_grad=True)
    assert not _mix_unlaid(xr, wg, 1)
    with torch.no_grad():
        assert _mix_unlaid(xr, wg, 1)
    # with autograd the result and its gradient still match the direct conv
    y = fftconv(xr, wg, padding="same")
    y.square().sum().backward()
    w2 = wg.detach().clone().requires_grad_(True)
    F.conv1d(xr, w2, padding="same").square().sum().backward()
    torch.testing.assert_close(wg.grad, w2.grad, atol=1e-4, rtol=1e-4)


@pytest.mark.parametrize("batch", [1, 3])  # the natural-layout route and the matmul route
@pytest.mark.parametrize("d,size,k,pads", [
    (1, (3,), (12,), [(10, 0)]),             # left pad >= output size: the output is all wrapped
    (1, (20,), (5,), [(7, 1)]),              # left pad larger than the kernel
    (2, (6, 9), (4, 3), [(3, 0), (0, 2)]),   # causal on one axis, right-only on the other
    (3, (4, 5, 3), (3, 2, 3), [(2, 2), (1, 0), (0, 0)]),
])
def test_left_padding_by_circular_shift_and_bias_at_dc(batch, d, size, k, pads):
    """Zero padding is never materialised: left zeros become a circular shift of the output
    and the bias enters through the zero-frequency bin. Reference: F.pad + torch's conv."""
    g = torch.Generator().manual_seed(batch + 7 * d)
    x = torch.randn(batch, 2, *size, generator=g, dtype=torch.float64)
    w = torch.randn(3, 2, *k, generator=g, dtype=torch.float64)
    b = torch.randn(3, generator=g, dtype=torch.float64)
    flat = [p for lo_hi in reversed(pads) for p in lo_hi]
    ref = _CONV[d](F.pad(x, flat), w, b)
    y = fftconv(x, w, b, padding=pads)
    assert y.shape == ref.shape and y.is_contiguous()
    torch.testing.assert_close(y, ref, atol=1e-10, rtol=1e-10)
    # the same with gradients (the matmul route, bias through the DC bin)
    xr, wr, br = (t.clone().requires_grad_(True) for t in (x, w, b))
    fftconv(xr, wr, br, padding=pads).square().sum().backward()
    x2, w2, b2 = (t.clone().requires_grad_(True) for t in (x, w, b))
    _CONV[d](F.pad(x2, flat), w2, b2).square().sum().backward()
    for got, want in ((xr.grad, x2.grad), (wr.grad, w2.grad), (br.grad, b2.grad)):
        torch.testing.assert_close(got, want, atol=1e-9, rtol=1e-9)
