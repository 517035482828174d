"""FFT convolution that computes exactly what ``torch.nn.functional.conv{1,2,3}d`` computes.

PyTorch's ``conv`` is a *cross-correlation*: ``y[o, t] = sum_{c, s} x[c, t + s] w[o, c, s]`` over
the (padded) input. For a kernel of ``K`` taps the direct cost per output is ``O(C_in K)``; the FFT
route costs ``O(C_in log N)`` per output after transforming once, so it wins for long kernels
(continuous-kernel layers sample kernels as long as the input).

Implementation (:func:`fftconv`):

1. resolve the padding (asymmetric allowed; ``"same"`` pads ``(K-1)//2`` on the left and the
   rest on the right, as torch does; ``causal=True`` pads ``K-1`` on the left). Zero padding is
   not materialised: the transform zero-pads on the right and the left zeros become a circular
   shift of the output (step 3); other padding modes pad ``x`` explicitly;
2. real FFT of the padded input ``x_p`` (length ``N`` per axis) and of the kernel, both zero-padded
   to a fast length ``n >= N`` (5-smooth, :func:`next_fast_len`). The *valid* outputs
   ``t = 0..N-K`` of the circular correlation never wrap since ``t + s <= N - 1 < n``, so padding
   to ``N`` (not ``N + K - 1``) is enough;
3. multiply ``X * conj(W)`` (conjugation turns convolution into correlation), contract channels
   per frequency, add the bias at frequency 0, inverse FFT and take the valid part (output ``t``
   at index ``(t - left padding) mod n``).

Half-precision inputs are transformed in float32 and cast back. :func:`conv` dispatches between
the FFT route and the direct ``torch`` convolution (``method="auto"`` uses :func:`use_fft`).

``method="auto"`` asks a measured cost model (:mod:`groupconv.functional.cost`) which route is
faster for the actual shapes (batch, channels, input and kernel sizes, and whether the kernel's
spectrum is already known), instead of a fixed kernel-size threshold.

**Cached spectra.** A layer whose kernel does not change between calls (continuous-kernel layers
in eval) transforms it once with :func:`kernel_spectrum` and passes the result as
``spectrum=``; a call then costs ``rfft(x)`` + the complex channel mixing + ``irfft``. The
spectrum is tied to the transform size, i.e. to the padded input size: :func:`fftconv` checks it.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

import torch
import torch.nn.functional as F
from torch import Tensor

from .._validation import check_tensor
from .cost import CostModel, get_cost_model

__all__ = [
    "fftconv",
    "conv",
    "use_fft",
    "next_fast_len",
    "resolve_padding",
    "KernelSpectrum",
    "kernel_spectrum",
]

_CONV = {1: F.conv1d, 2: F.conv2d, 3: F.conv3d}

Padding = int | Sequence[int] | Sequence[tuple[int, int]] | str


def next_fast_len(n: int) -> int:
    """Smallest ``m >= n`` whose prime factors are 2, 3 and 5 (fast FFT sizes).

    Example:
        >>> next_fast_len(97), next_fast_len(128), next_fast_len(1)
        (100, 128, 1)
    """
    if torch.compiler.is_compiling():  # traced once per shape; no cache wrapper in the graph
        return _fast_len(int(n))
    return _fast_len_cached(int(n))


def _fast_len(n: int) -> int:
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


_fast_len_cached = functools.lru_cache(maxsize=1024)(_fast_len)


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


@dataclass(frozen=True, eq=False)
class KernelSpectrum:
    """A kernel's FFT laid out for :func:`fftconv` (build it with :func:`kernel_spectrum`).

    Attributes:
        weight: depthwise kernels: ``conj(rfftn(kernel))`` ``(C_out, *F)``; otherwise the
            frequency-major matrix ``(prod F, groups, C_in/g, C_out/g)`` (conjugated, contiguous).
        kernel_shape: the kernel's shape ``(C_out, C_in/g, *k)``.
        fft_size: transform size per spatial axis (5-smooth, ``>=`` the padded input size).
        groups: channel groups.
        depthwise: one input and one output channel per group.
    """

    weight: Tensor
    kernel_shape: tuple[int, ...]
    fft_size: tuple[int, ...]
    groups: int
    depthwise: bool


def kernel_spectrum(kernel: Tensor, padded_size: Sequence[int], groups: int = 1) -> KernelSpectrum:
    """Transform ``kernel`` once for every :func:`fftconv` call on inputs of ``padded_size``.

    ``padded_size`` is the spatial size *after* padding (input size plus the left and right
    padding of :func:`resolve_padding`). Gradients flow through the spectrum to the kernel.
    Half-precision kernels are transformed in float32.

    Example:
        >>> x, w = torch.randn(2, 3, 50), torch.randn(4, 3, 31)
        >>> spec = kernel_spectrum(w, [50 + 30], groups=1)  # "same" pads 15 + 15
        >>> y = fftconv(x, w, padding="same", spectrum=spec)
        >>> torch.allclose(y, fftconv(x, w, padding="same"), atol=1e-5)
        True
    """
    kernel = check_tensor(kernel, "kernel")
    d = kernel.dim() - 2
    if d not in (1, 2, 3):
        raise ValueError(f"kernel must have shape (C_out, C_in/groups, *k) with 1-3 spatial dims, "
                         f"got shape {tuple(kernel.shape)}")
    size = [int(n) for n in padded_size]
    if len(size) != d or any(n < k for n, k in zip(size, kernel.shape[2:])):
        raise ValueError(f"padded_size must have {d} entries >= the kernel size "
                         f"{tuple(kernel.shape[2:])}, got {tuple(size)}")
    if isinstance(groups, bool) or not isinstance(groups, int) or groups < 1 or kernel.shape[0] % groups:
        raise ValueError(f"groups must be a positive int dividing C_out={kernel.shape[0]}, got {groups!r}")
    work = kernel.dtype if kernel.dtype in (torch.float32, torch.float64) else torch.float32
    fast = [next_fast_len(n) for n in size]
    kf = torch.fft.rfftn(kernel.to(work), s=fast, dim=tuple(range(2, 2 + d)))
    c_out, ci = kernel.shape[0], kernel.shape[1]
    co = c_out // groups
    depthwise = ci == 1 and co == 1 and groups > 1
    if depthwise:
        weight = torch.conj_physical(kf.squeeze(1))
    else:
        nf = math.prod(kf.shape[2:])
        weight = torch.conj_physical(kf.reshape(groups, co, ci, nf).permute(3, 0, 2, 1)).contiguous()
    return KernelSpectrum(weight, tuple(kernel.shape), tuple(fast), groups, depthwise)


def _add_bias_dc(yf: Tensor, bias: Tensor | None, fast: Sequence[int]) -> None:
    """Add ``bias`` to every output sample through the zero-frequency bin, in place.

    ``irfftn`` divides by ``prod(fast)``, so ``bias * prod(fast)`` at frequency 0 adds ``bias``
    everywhere: one tiny write instead of a pass over the output.
    """
    if bias is None:
        return
    dc = (slice(None), slice(None), *([0] * len(fast)))
    yf[dc] += bias.to(yf.real.dtype) * math.prod(fast)


def _crop(z: Tensor, lefts: Sequence[int], out_size: Sequence[int], fast: Sequence[int]) -> Tensor:
    """The valid outputs of a circular correlation of the *unpadded* input.

    With ``p`` zeros meant on the left of an axis, output ``t`` sits at ``(t - p) mod n``: the
    input's own trailing zeros (``n >=`` the padded size) stand in for the left padding, so the
    wrapped part is the tail of ``z`` followed by its head (one ``cat`` instead of a padded copy
    of the input).
    """
    for ax, (p, o, n) in enumerate(zip(lefts, out_size, fast)):
        dim = 2 + ax
        if p == 0:
            z = z.narrow(dim, 0, o)
        elif o <= p:
            z = z.narrow(dim, n - p, o)
        else:
            z = torch.cat([z.narrow(dim, n - p, p), z.narrow(dim, 0, o - p)], dim)
    return z


#: largest batch for which an uncached kernel is mixed in its natural layout (above it the
#: frequency-major copy pays for itself through one batched matmul).
_UNLAID_MAX_BATCH = 2


def _mix_unlaid(x: Tensor, kernel: Tensor, groups: int) -> bool:
    """Whether :func:`fftconv` mixes an uncached kernel spectrum without re-laying it out:
    dense channels, a small batch, several input channels, and nothing for autograd to record
    (the in-place accumulation is for inference and benchmarks; training keeps the matmul)."""
    if groups != 1 or x.shape[0] > _UNLAID_MAX_BATCH or kernel.shape[1] < 2:
        return False
    if torch.is_grad_enabled() and (x.requires_grad or kernel.requires_grad):
        return False
    return not torch.compiler.is_compiling()


def fftconv(
    x: Tensor,
    kernel: Tensor,
    bias: Tensor | None = None,
    *,
    padding: Padding = 0,
    groups: int = 1,
    causal: bool = False,
    padding_mode: Literal["zeros", "circular", "reflect", "replicate"] = "zeros",
    spectrum: KernelSpectrum | None = None,
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
        spectrum: ``kernel``'s :func:`kernel_spectrum` for this padded size (skips the kernel
            transform); it must match ``kernel``'s shape, ``groups`` and the transform size.

    Example:
        >>> x, w = torch.randn(2, 3, 50), torch.randn(4, 3, 31)
        >>> y = fftconv(x, w, padding="same")
        >>> torch.allclose(y, torch.nn.functional.conv1d(x, w, padding="same"), atol=1e-4)
        True
    """
    d = _check_conv_args(x, kernel, bias, groups)
    ks = list(kernel.shape[2:])
    pads = resolve_padding(padding, ks, causal)
    if padding_mode == "zeros":
        # no padded copy: the transform zero-pads on the right, and the left zeros become a
        # circular shift of the output (see _crop)
        xp, lefts = x, [lo for lo, _ in pads]
        n_in = [int(n) + lo + hi for n, (lo, hi) in zip(x.shape[2:], pads)]
    else:
        xp, lefts = _pad(x, pads, padding_mode), [0] * d
        n_in = list(xp.shape[2:])
    out_size = [n - k + 1 for n, k in zip(n_in, ks)]
    if any(o <= 0 for o in out_size):
        raise ValueError(
            f"padded input size {tuple(n_in)} is smaller than the kernel size {tuple(ks)}"
        )
    out_dtype = torch.promote_types(x.dtype, kernel.dtype)
    work = out_dtype if out_dtype in (torch.float32, torch.float64) else torch.float32
    fast = [next_fast_len(n) for n in n_in]
    dims = tuple(range(2, 2 + d))
    if spectrum is None and _mix_unlaid(x, kernel, groups):
        # uncached kernel, small batch, no autograd: accumulate over input channels on the
        # kernel's natural (C_out, C_in, F) layout instead of building the frequency-major,
        # conjugated copy of kernel_spectrum (two passes over C_out C_in F complex values that
        # cost more than the kernel's FFT at L = 16384, C = 32); conj moves to the input side
        kf = torch.fft.rfftn(kernel.to(work), s=fast, dim=dims)  # (C_out, C_in, *F)
        xc = torch.fft.rfftn(xp.to(work), s=fast, dim=dims).conj()  # (B, C_in, *F)
        yc = torch.zeros(x.shape[0], kernel.shape[0], *xc.shape[2:], dtype=xc.dtype, device=xc.device)
        for xi, ki in zip(xc.unbind(1), kf.unbind(1)):  # one pass over the kernel spectrum
            yc.addcmul_(ki.unsqueeze(0), xi.unsqueeze(1))
        _add_bias_dc(yc, bias, fast)  # real: the same on conj(Y)
        y = _crop(torch.fft.irfftn(yc.conj(), s=fast, dim=dims), lefts, out_size, fast)
        return y.to(out_dtype).contiguous()
    if spectrum is None:
        spectrum = kernel_spectrum(kernel.to(work), n_in, groups)
    elif not isinstance(spectrum, KernelSpectrum):
        raise TypeError(f"spectrum must be a KernelSpectrum or None, got {type(spectrum).__name__}")
    elif (spectrum.kernel_shape != tuple(kernel.shape) or spectrum.groups != groups
          or list(spectrum.fft_size) != fast):
        raise ValueError(
            f"spectrum must match kernel shape {tuple(kernel.shape)}, groups={groups} and "
            f"transform size {tuple(fast)}, got kernel shape {spectrum.kernel_shape}, "
            f"groups={spectrum.groups}, transform size {spectrum.fft_size}"
        )
    xf = torch.fft.rfftn(xp.to(work), s=fast, dim=dims)  # (B, C_in, *F)
    b, c_in = xf.shape[:2]
    c_out = kernel.shape[0]
    fshape = xf.shape[2:]
    kw = spectrum.weight
    if kw.dtype != xf.dtype:
        kw = kw.to(xf.dtype)
    if spectrum.depthwise:  # one output per channel: elementwise
        yf = xf * kw.unsqueeze(0)
    else:
        # frequency-major batched complex matmul: (F, g, B, ci) @ (F, g, ci, co)
        # (contiguous copies: batched matmul over a stride-1 batch axis is ~20x slower)
        nf = math.prod(fshape)
        ci = c_in // groups
        xm = xf.reshape(b, groups, ci, nf).permute(3, 1, 0, 2).contiguous()
        yf = torch.matmul(xm, kw).permute(2, 1, 3, 0).reshape(b, c_out, *fshape)
    yf = yf.contiguous()  # irfftn of the permuted view is several times slower with 2 threads
    _add_bias_dc(yf, bias, fast)
    y = _crop(torch.fft.irfftn(yf, s=fast, dim=dims), lefts, out_size, fast)
    return y.to(out_dtype).contiguous()


def use_fft(
    x_shape: Sequence[int],
    kernel_shape: Sequence[int],
    *,
    padding: Padding = 0,
    causal: bool = False,
    groups: int = 1,
    spectrum_cached: bool = False,
    cost_model: CostModel | None = None,
) -> bool:
    """The ``method="auto"`` rule: ``True`` when the FFT route is predicted to be faster.

    Asks the measured cost model (:mod:`groupconv.functional.cost`; default
    :func:`~groupconv.functional.cost.get_cost_model`) for the shapes at hand: the padded input
    size, batch, channels, groups and whether the kernel's spectrum is cached. Shapes only (no
    tensor is touched, no host sync).

    Example:
        >>> use_fft((1, 32, 8192), (32, 32, 8192), causal=True)
        True
        >>> use_fft((8, 16, 64, 64), (16, 16, 5, 5), padding="same")
        False
    """
    ks = [int(k) for k in kernel_shape[2:]]
    pads = resolve_padding(padding, ks, causal)
    padded = [int(n) + lo + hi for n, (lo, hi) in zip(x_shape[2:], pads)]
    model = cost_model if cost_model is not None else get_cost_model()
    return model.prefer_fft(x_shape, kernel_shape, groups, padded, spectrum_cached)


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
    spectrum: KernelSpectrum | None = None,
) -> Tensor:
    """Stride-1 cross-correlation by the direct ``torch`` kernel or by :func:`fftconv`.

    Both routes compute ``torch.nn.functional.conv{d}d`` semantics; ``method="auto"`` asks the
    cost model (:func:`use_fft`, which knows whether ``spectrum`` is given). Asymmetric, causal
    and non-zero padding modes are handled by an explicit ``F.pad`` first.

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
    if method == "fft" or (method == "auto" and use_fft(
            x.shape, kernel.shape, padding=padding, causal=causal, groups=groups,
            spectrum_cached=spectrum is not None)):
        return fftconv(x, kernel, bias, padding=padding, groups=groups, causal=causal,
                       padding_mode=padding_mode, spectrum=spectrum)
    pads = resolve_padding(padding, ks, causal)
    xp = _pad(x, pads, "constant" if padding_mode == "zeros" else padding_mode)
    return _CONV[d](xp, kernel, bias, groups=groups)
