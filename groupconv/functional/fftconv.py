"""FFT convolution that computes exactly what ``torch.nn.functional.conv{1,2,3}d`` computes.

PyTorch's ``conv`` is a *cross-correlation*: ``y[o, t] = sum_{c, s} x[c, t + s] w[o, c, s]`` over
the (padded) input. For a kernel of ``K`` taps the direct cost per output is ``O(C_in K)``; the FFT
route costs ``O(C_in log N)`` per output after transforming once, so it wins for long kernels
(continuous-kernel layers sample kernels as long as the input).

Implementation (:func:`fftconv`):

1. pad ``x`` explicitly (zeros, asymmetric allowed; ``"same"`` pads ``(K-1)//2`` on the left and
   the rest on the right, as torch does; ``causal=True`` pads ``K-1`` on the left);
2. real FFT of the padded input ``x_p`` (length ``N`` per axis) and of the kernel, both zero-padded
   to a fast length ``n >= N`` (5-smooth, :func:`next_fast_len`). The *valid* outputs
   ``t = 0..N-K`` of the circular correlation never wrap since ``t + s <= N - 1 < n``, so padding
   to ``N`` (not ``N + K - 1``) is enough;
3. multiply ``X * conj(W)`` (conjugation turns convolution into correlation), contract channels
   per frequency, inverse FFT and crop the valid part.

Half-precision inputs are transformed in float32 and cast back. :func:`conv` dispatches between
the FFT route and the direct ``torch`` convolution (``method="auto"`` uses :func:`use_fft`).

Measured crossover (this project's shared 2-core CPU, torch 2.13, float32, ``C_in = C_out = 32``,
``"same"`` padding, interleaved medians; the machine was heavily shared, so treat these as rough):

* 1-D, ``B = 8``, ``L = 4096``: direct/FFT time ratio 0.54 at ``K = 63``, 0.91 at 95, 1.43 at 127,
  2.2 at 255 (crossover ~100 taps). At ``B = 1`` the kernel transform (``C_out C_in`` FFTs of the
  padded length) is not amortised and the direct route stays faster up to ``K = 255``; with a
  full-length kernel (``K = L = 16384``, ``B = 1``) the FFT is ~35x faster (0.78 s vs 27 s).
* 2-D, ``B = 8``, 32x32 and 64x64: crossover between 15x15 and 21x21 (ratio 0.7 at 15, 1.2-3.1 at
  21, 2.1-7.1 at 33).
* 3-D, ``B = 2``, 16^3: the direct route wins up to 11^3.

``use_fft`` therefore picks the FFT for 1-D kernels of ``>= FFT_MIN_TAPS_1D = 128`` taps and for
2-D/3-D kernels whose every side is ``>= FFT_MIN_SIDE_ND = 17``.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Literal

import torch
import torch.nn.functional as F
from torch import Tensor

from .._validation import check_tensor

__all__ = [
    "fftconv",
    "conv",
    "use_fft",
    "next_fast_len",
    "resolve_padding",
    "FFT_MIN_TAPS_1D",
    "FFT_MIN_SIDE_ND",
]

#: 1-D kernels with at least this many taps go through the FFT when ``method="auto"``.
FFT_MIN_TAPS_1D = 128
#: 2-D/3-D kernels whose every side has at least this many taps use the FFT.
FFT_MIN_SIDE_ND = 17

_CONV = {1: F.conv1d, 2: F.conv2d, 3: F.conv3d}

Padding = int | Sequence[int] | Sequence[tuple[int, int]] | str


def next_fast_len(n: int) -> int:
    """Smallest ``m >= n`` whose prime factors are 2, 3 and 5 (fast FFT sizes).

    Example:
        >>> next_fast_len(97), next_fast_len(128), next_fast_len(1)
        (100, 128, 1)
    """
    n = int(n)
    if n <= 1:
        return 1
    best = 1 << (n - 1).bit_length()  # a power of two always works
    p5 = 1
    while p5 < best:
        p35 = p5
        while p35 < best:
            # smallest power of two with p35 * 2^k >= n
            q = -(-n // p35)
            cand = p35 * (1 << (q - 1).bit_length())
            if cand < best:
                best = cand
            p35 *= 3
        p5 *= 5
    return best


def resolve_padding(
    padding: Padding, kernel_size: Sequence[int], causal: bool = False
) -> list[tuple[int, int]]:
    """Per-axis ``(left, right)`` zero padding for ``padding`` and ``kernel_size``.

    ``padding`` is an int, one int per axis, one ``(left, right)`` pair per axis, ``"valid"``
    or ``"same"`` (torch's rule: total ``K - 1``, ``(K - 1) // 2`` on the left). With
    ``causal=True`` every axis is padded ``(K - 1, 0)`` and ``padding`` must be ``0``/``"valid"``
    or ``"causal"``.

    Example:
        >>> resolve_padding("same", (4, 3))
        [(1, 2), (1, 1)]
        >>> resolve_padding(0, (5,), causal=True)
        [(4, 0)]
    """
    ks = [int(k) for k in kernel_size]
    d = len(ks)
    if causal or padding == "causal":
        if padding not in (0, "valid", "causal", None):
            raise ValueError(f"padding must be 0/'valid' when causal=True, got {padding!r}")
        return [(k - 1, 0) for k in ks]
    if isinstance(padding, str):
        if padding == "valid":
            return [(0, 0)] * d
        if padding == "same":
            return [((k - 1) // 2, k - 1 - (k - 1) // 2) for k in ks]
        raise ValueError(f"padding must be an int, a sequence, 'same', 'valid' or 'causal', got {padding!r}")
    if isinstance(padding, int) and not isinstance(padding, bool):
        pads: list = [padding] * d
    elif isinstance(padding, Sequence) and len(padding) == d:
        pads = list(padding)
    else:
        raise ValueError(f"padding must be an int or have one entry per spatial axis ({d}), got {padding!r}")
    out = []
    for p in pads:
        if isinstance(p, Sequence) and len(p) == 2:
            left, right = int(p[0]), int(p[1])
        elif isinstance(p, int) and not isinstance(p, bool):
            left = right = int(p)
        else:
            raise ValueError(f"padding entries must be ints or (left, right) pairs, got {p!r}")
        if left < 0 or right < 0:
            raise ValueError(f"padding must be non-negative, got {padding!r}")
        out.append((left, right))
    return out


def _check_conv_args(x: Tensor, kernel: Tensor, bias: Tensor | None, groups: int) -> int:
    x = check_tensor(x, "x")
    kernel = check_tensor(kernel, "kernel")
    d = kernel.dim() - 2
    if d not in (1, 2, 3):
        raise ValueError(
            "kernel must have shape (C_out, C_in/groups, *k) with 1-3 spatial dims, "
            f"got shape {tuple(kernel.shape)}"
        )
    if x.dim() != d + 2:
        raise ValueError(
            f"x must have shape (B, C_in, *spatial) with {d} spatial dims to match kernel "
            f"{tuple(kernel.shape)}, got shape {tuple(x.shape)}"
        )
    if isinstance(groups, bool) or not isinstance(groups, int) or groups < 1:
        raise ValueError(f"groups must be a positive int, got {groups!r}")
    c_in, c_out = x.shape[1], kernel.shape[0]
    if c_in % groups or c_out % groups:
        raise ValueError(f"groups={groups} must divide C_in={c_in} and C_out={c_out}")
    if kernel.shape[1] * groups != c_in:
        raise ValueError(
            f"kernel must have C_in/groups = {c_in // groups} input channels (x has C_in={c_in}, "
            f"groups={groups}), got kernel shape {tuple(kernel.shape)}"
        )
    if bias is not None and (bias.dim() != 1 or bias.shape[0] != c_out):
        raise ValueError(f"bias must have shape ({c_out},), got {tuple(bias.shape)}")
    return d


def _pad(x: Tensor, pads: list[tuple[int, int]], mode: str) -> Tensor:
    if all(p == (0, 0) for p in pads):
        return x
    flat: list[int] = []
    for left, right in reversed(pads):  # F.pad starts from the last axis
        flat += [left, right]
    return F.pad(x, flat, mode=mode)


def fftconv(
    x: Tensor,
    kernel: Tensor,
    bias: Tensor | None = None,
    *,
    padding: Padding = 0,
    groups: int = 1,
    causal: bool = False,
    padding_mode: Literal["zeros", "circular", "reflect", "replicate"] = "zeros",
) -> Tensor:
    """Cross-correlation of ``x (B, C_in, *spatial)`` with ``kernel (C_out, C_in/groups, *k)`` by FFT.

    Equals ``torch.nn.functional.conv{d}d(x, kernel, bias, padding=padding, groups=groups)``
    (stride 1, dilation 1) up to float rounding (relative error ~1e-6 in float32), for 1-3
    spatial dims, any ``groups`` (depthwise: ``groups = C_in``), odd or even kernels.

    Args:
        x: input ``(B, C_in, *spatial)``.
        kernel: weights ``(C_out, C_in // groups, *k)``.
        bias: optional ``(C_out,)``.
        padding: see :func:`resolve_padding` (``"same"``, ``"valid"``, ints or pairs).
        groups: channel groups, as in torch.
        causal: pad ``K - 1`` on the left of every axis (output ``t`` sees inputs ``<= t``).
        padding_mode: how the padded values are filled (``F.pad`` modes; ``"zeros"`` default).

    Example:
        >>> x, w = torch.randn(2, 3, 50), torch.randn(4, 3, 31)
        >>> y = fftconv(x, w, padding="same")
        >>> torch.allclose(y, torch.nn.functional.conv1d(x, w, padding="same"), atol=1e-4)
        True
    """
    d = _check_conv_args(x, kernel, bias, groups)
    ks = list(kernel.shape[2:])
    pads = resolve_padding(padding, ks, causal)
    xp = _pad(x, pads, "constant" if padding_mode == "zeros" else padding_mode)
    n_in = list(xp.shape[2:])
    out_size = [n - k + 1 for n, k in zip(n_in, ks)]
    if any(o <= 0 for o in out_size):
        raise ValueError(
            f"padded input size {tuple(n_in)} is smaller than the kernel size {tuple(ks)}"
        )
    out_dtype = torch.promote_types(x.dtype, kernel.dtype)
    work = out_dtype if out_dtype in (torch.float32, torch.float64) else torch.float32
    xp, kw = xp.to(work), kernel.to(work)
    fast = [next_fast_len(n) for n in n_in]
    dims = tuple(range(2, 2 + d))
    xf = torch.fft.rfftn(xp, s=fast, dim=dims)  # (B, C_in, *F)
    kf = torch.fft.rfftn(kw, s=fast, dim=dims)  # (C_out, C_in/g, *F), conjugated below
    b, c_in = xf.shape[:2]
    c_out = kf.shape[0]
    fshape = xf.shape[2:]
    nf = math.prod(fshape)
    ci, co = c_in // groups, c_out // groups
    if ci == 1 and co == 1 and groups > 1:  # depthwise, one output per channel: elementwise
        yf = xf * kf.squeeze(1).conj().unsqueeze(0)
    else:
        # frequency-major batched complex matmul: (F, g, B, ci) @ (F, g, ci, co)
        # (contiguous copies: batched matmul over a stride-1 batch axis is ~20x slower)
        xm = xf.reshape(b, groups, ci, nf).permute(3, 1, 0, 2).contiguous()
        km = torch.conj_physical(kf.reshape(groups, co, ci, nf).permute(3, 0, 2, 1)).contiguous()
        yf = torch.matmul(xm, km).permute(2, 1, 3, 0).reshape(b, c_out, *fshape)
    y = torch.fft.irfftn(yf, s=fast, dim=dims)
    y = y[(Ellipsis, *[slice(0, o) for o in out_size])]
    if bias is not None:
        y = y + bias.to(work).reshape(1, -1, *([1] * d))
    return y.to(out_dtype).contiguous()


def use_fft(kernel_size: Sequence[int]) -> bool:
    """The ``method="auto"`` rule: ``True`` when the FFT route is expected to be faster.

    1-D: ``K >= FFT_MIN_TAPS_1D``; 2-D/3-D: every side ``>= FFT_MIN_SIDE_ND`` (see the module
    docstring for the measurements behind the thresholds).

    Example:
        >>> use_fft((33,)), use_fft((129,)), use_fft((33, 33)), use_fft((3, 129))
        (False, True, True, False)
    """
    ks = [int(k) for k in kernel_size]
    if len(ks) == 1:
        return ks[0] >= FFT_MIN_TAPS_1D
    return min(ks) >= FFT_MIN_SIDE_ND


def conv(
    x: Tensor,
    kernel: Tensor,
    bias: Tensor | None = None,
    *,
    padding: Padding = 0,
    groups: int = 1,
    causal: bool = False,
    padding_mode: Literal["zeros", "circular", "reflect", "replicate"] = "zeros",
    method: Literal["auto", "direct", "fft"] = "auto",
) -> Tensor:
    """Stride-1 cross-correlation by the direct ``torch`` kernel or by :func:`fftconv`.

    Both routes compute ``torch.nn.functional.conv{d}d`` semantics; ``method="auto"`` picks the
    FFT for large kernels (:func:`use_fft`). Asymmetric, causal and non-zero padding modes are
    handled by an explicit ``F.pad`` first.

    Example:
        >>> x, w = torch.randn(1, 2, 40), torch.randn(2, 2, 7)
        >>> a = conv(x, w, causal=True, method="direct")
        >>> b = conv(x, w, causal=True, method="fft")
        >>> a.shape, bool((a - b).abs().max() < 1e-4)
        (torch.Size([1, 2, 40]), True)
    """
    if method not in ("auto", "direct", "fft"):
        raise ValueError(f"method must be 'auto', 'direct' or 'fft', got {method!r}")
    d = _check_conv_args(x, kernel, bias, groups)
    ks = list(kernel.shape[2:])
    if method == "fft" or (method == "auto" and use_fft(ks)):
        return fftconv(x, kernel, bias, padding=padding, groups=groups, causal=causal,
                       padding_mode=padding_mode)
    pads = resolve_padding(padding, ks, causal)
    xp = _pad(x, pads, "constant" if padding_mode == "zeros" else padding_mode)
    return _CONV[d](xp, kernel, bias, groups=groups)
