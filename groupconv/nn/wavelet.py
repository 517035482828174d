"""Scale-translation (wavelet) layers on raw 1-D signals: R x| R+ on a dyadic scale grid.

The group is ``G = R x| R+``, ``(t, s)(t', s') = (t + s t', s s')``
(:class:`~groupconv.groups.named.ScaleTranslation`), sampled on the dyadic scales
``s_j = 2^(start + j)``. Feature maps on the group grid are ``(B, C, N, L)``.

* :class:`ScaleLiftingConv1d`: ``(B, C_in, L) -> (B, C_out, N, L)``,
  ``(f * psi)(t, s) = int f(tau) s^-1 psi(s^-1 (tau - t)) dtau`` -- a continuous wavelet
  transform with a learned mother wavelet ``psi``.
* :class:`ScaleGroupConv1d`: ``(B, C_in, N_in, L) -> (B, C_out, N_out, L)``, with a kernel of
  local support ``S`` along log-scale: output scale ``j`` reads input scales ``j .. j+S-1``.
* :class:`ScaleMaxPool`, :class:`ScaleTimeMaxPool`, :class:`ScaleInvariantReadout`: pooling and
  the invariant readout; :func:`wavelet_admissibility_loss`: the zero-mean (admissibility) loss.

**Discretisation (integer dilation + B-spline blur).** The learned kernel ``w`` has ``k`` (odd)
taps on the integer grid and ``psi(x) = sum_m w_m B(x - m)`` is its cardinal B-spline
interpolant of degree ``blur_order``. Then
``int f(tau) s^-1 psi((tau - t)/s) dtau = sum_m w_m (f * b_s)(t + s m)`` with the blur
``b_s[n] = s^-1 B(n / s)``: **blur the input at scale s, then a conv1d with dilation s**. The
Haar factor ``1/s`` is the ``s^-1`` of ``b_s``; because B-splines are a partition of unity,
``sum_n B(n/s) = s`` exactly for integer ``s``, so ``b_s`` has unit mass (the response to a
constant does not depend on the scale) and the blur preserves the zero mean of wavelets. No
kernel of size ``~ s k`` is materialised: the blur is depthwise (FFT for long blurs, by
:func:`groupconv.functional.fftconv.conv`) and the dilated conv has ``k`` taps. The blur is
applied to whichever side of the dilated conv has fewer channels (identical result: both are
linear shift-invariant operators on the same padded window). ``blur_order=None`` disables it
(pure dilated conv: faster, aliased).

**Group conv.** ``out(t, s_j) = sum_{c, i < S} sum_m w[o, c, i, m] (F_c(., s_{j+i}) * b_{s_j})
(t + s_j m)``: the spatial kernel is dilated by ``s_j`` and indexed by the relative scale
``s_j^-1 s_{j+i} = 2^i``. Output scales whose window ``j .. j+S-1`` leaves the grid are dropped
(``crop=True``: ``N_out = N_in - S + 1``) or see zeros beyond the largest scale
(``crop=False``: ``N_out = N_in``; the top ``S - 1`` output scales are then a truncation).

**Equivariance.** Translations: exact for integer shifts with ``padding_mode="circular"``
(``torch.roll``); with zero padding up to the borders. Dilations: subsampling the input,
``x[..., ::2]`` (the element ``(0, 1/2)``), shifts the scale axis by one:
``layer(x[..., ::2])[:, :, j] ~ layer(x)[:, :, j + 1, ::2]``. It is not bit-exact (the
subsampled blur is a Riemann sum of the full-rate one, worst at the smallest scale), small for
band-limited signals, and the largest scale(s) have no partner (the grid is truncated).
Dilations stay integer factors of ``2^j`` whatever the time unit of the map, so the relation
also holds after time pooling (approximately, within the pooling window).

Example:
    >>> import torch
    >>> lift = ScaleLiftingConv1d(1, 4, 9, num_scales=3)
    >>> gconv = ScaleGroupConv1d(4, 5, 3, num_scales=3, scale_support=2, crop=True)
    >>> y = gconv(lift(torch.randn(2, 1, 100)))
    >>> y.shape, ScaleInvariantReadout()(y).shape
    (torch.Size([2, 5, 2, 100]), torch.Size([2, 5]))
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from .._validation import check_float_tensor, check_positive_int, check_tensor
from ..functional.fftconv import conv as _conv
from ..groups.named import ScaleTranslation
from ..kernels.regularizers import wavelet_zero_mean_loss
from ..spaces import GroupGridField, SequenceField, TrivialField

__all__ = [
    "bspline",
    "bspline_blur_kernel",
    "dyadic_exponents",
    "ScaleLiftingConv1d",
    "ScaleGroupConv1d",
    "ScaleMaxPool",
    "ScaleTimeMaxPool",
    "ScaleInvariantReadout",
    "wavelet_admissibility_loss",
]

_PADDING_MODES = ("zeros", "circular")


# -- B-splines and blur kernels ---------------------------------------------------------------
def bspline(x: Tensor, degree: int) -> Tensor:
    """The centred cardinal B-spline of ``degree`` (support ``[-(p+1)/2, (p+1)/2]``, unit mass).

    ``B_p(x) = 1/p! sum_{k=0}^{p+1} (-1)^k C(p+1, k) (x + (p+1)/2 - k)_+^p`` (degree >= 1).

    Example:
        >>> bspline(torch.tensor([0.0, 1.0, 1.5]), 2).tolist()
        [0.75, 0.125, 0.0]
    """
    x = check_tensor(x, "x")
    if isinstance(degree, bool) or not isinstance(degree, int) or not 1 <= degree <= 5:
        raise ValueError(f"degree must be an int in 1..5, got {degree!r}")
    p = degree
    half = (p + 1) / 2
    out = torch.zeros_like(x)
    for k in range(p + 2):
        out = out + (-1) ** k * math.comb(p + 1, k) * torch.clamp(x + half - k, min=0) ** p
    out = out / math.factorial(p)
    return torch.where(x.abs() < half, out, torch.zeros_like(out))


def bspline_blur_kernel(scale: int, degree: int | None, dtype: torch.dtype = torch.float64) -> Tensor:
    """The blur ``b_s[n] = B(n / s) / s`` for ``n = -h .. h`` (odd length, unit sum).

    ``degree=None`` gives the identity ``[1.0]``. The sum is exactly 1 for integer ``s``
    (partition of unity); it is renormalised against rounding.

    Example:
        >>> bspline_blur_kernel(2, 2).tolist()
        [0.0625, 0.25, 0.375, 0.25, 0.0625]
    """
    s = check_positive_int(scale, "scale")
    if degree is None:
        return torch.ones(1, dtype=dtype)
    h = math.ceil((degree + 1) * s / 2) - 1
    n = torch.arange(-h, h + 1, dtype=torch.float64)
    b = bspline(n / s, degree) / s
    return (b / b.sum()).to(dtype)


def dyadic_exponents(
    num_scales: int | None = None, scales: object = None, name: str = "scales"
) -> tuple[int, ...]:
    """Exponents ``(e_0, e_0 + 1, ...)`` of a dyadic grid ``2^e`` with ``e_0 >= 0``.

    ``scales`` may be a sequence or tensor of scales (``(N,)`` or ``(N, 1)``) or a
    :class:`~groupconv.sampling.DyadicScaleSampler` with ``base=2`` and ``start >= 0``;
    otherwise ``num_scales`` gives ``1, 2, ..., 2^(N-1)``. Integer dilations need consecutive
    powers of two ``>= 1``: anything else is a ``ValueError``.

    Example:
        >>> dyadic_exponents(3), dyadic_exponents(scales=[2.0, 4.0])
        ((0, 1, 2), (1, 2))
    """
    if scales is None:
        if num_scales is None:
            raise ValueError(f"give num_scales or {name}, got neither")
        return tuple(range(check_positive_int(num_scales, "num_scales")))
    if hasattr(scales, "scales") and hasattr(scales, "base") and callable(scales.scales):
        if float(scales.base) != 2.0:
            raise ValueError(f"{name} must be a dyadic grid (base 2), got a sampler with base={scales.base}")
        scales = scales.scales(dtype=torch.float64)
    t = torch.as_tensor(scales, dtype=torch.float64).detach().cpu()
    if t.dim() == 2 and t.shape[1] == 1:
        t = t[:, 0]
    if t.dim() != 1 or t.numel() == 0:
        raise ValueError(
            f"{name} must be a non-empty 1-D list of scales (or (N, 1)), got shape {tuple(t.shape)}"
        )
    if not bool(torch.isfinite(t).all()) or bool((t <= 0).any()):
        raise ValueError(f"{name} must be positive and finite, got {t.tolist()}")
    e = torch.log2(t)
    er = torch.round(e)
    bad = (e - er).abs() > 1e-9
    if bool(bad.any()) or bool((er < 0).any()):
        raise ValueError(
            f"{name} must be dyadic powers of two 2^j with j >= 0 (integer dilations), got {t.tolist()}"
        )
    ex = tuple(int(v) for v in er.tolist())
    if any(b - a != 1 for a, b in zip(ex, ex[1:])):
        raise ValueError(f"{name} must be consecutive powers of two (ascending, ratio 2), got {t.tolist()}")
    if num_scales is not None and len(ex) != check_positive_int(num_scales, "num_scales"):
        raise ValueError(f"num_scales={num_scales} disagrees with {name} of length {len(ex)}")
    return ex


def _check_kernel_size(kernel_size: object) -> int:
    k = check_positive_int(kernel_size, "kernel_size")
    if k % 2 == 0:
        raise ValueError(f"kernel_size must be odd (a centred kernel keeps the scale origin), got {k}")
    return k


def _group(exps: Sequence[int]) -> ScaleTranslation:
    lo = exps[0] * math.log(2.0)
    hi = exps[-1] * math.log(2.0) if len(exps) > 1 else lo + math.log(2.0)
    return ScaleTranslation(log_range=(lo, hi))


# -- the layers ---------------------------------------------------------------------------------
class _ScaleConvBase(nn.Module):
    """Shared machinery: dyadic grid, blur buffers, padding and the per-scale blurred dilated conv."""

    weight: nn.Parameter  # set by the subclasses

    def _setup(self, exps: tuple[int, ...], kernel_size: object, dilation: object,
               padding_mode: str, blur_order: int | None) -> None:
        self.kernel_size = _check_kernel_size(kernel_size)
        self.dilation = check_positive_int(dilation, "dilation")
        if padding_mode not in _PADDING_MODES:
            raise ValueError(f"padding_mode must be one of {_PADDING_MODES}, got {padding_mode!r}")
        if blur_order is not None and (isinstance(blur_order, bool) or blur_order not in (1, 2, 3)):
            raise ValueError(f"blur_order must be 1, 2, 3 or None, got {blur_order!r}")
        self.padding_mode = padding_mode
        self.blur_order = blur_order
        self.scale_exponents = exps
        for e in sorted(set(exps)):  # fixed blur kernels: non-persistent (not in state_dict)
            b = bspline_blur_kernel(2**e, blur_order, torch.get_default_dtype())
            self.register_buffer(f"_blur{e}", b.reshape(1, 1, -1), persistent=False)

    @property
    def scales(self) -> Tensor:
        """The input scale grid ``(N_in,)`` (float64)."""
        return torch.tensor([2.0**e for e in self.scale_exponents], dtype=torch.float64)

    def _pad(self, x: Tensor, r: int) -> Tensor:
        if r == 0:
            return x
        if self.padding_mode == "zeros":
            return F.pad(x, (r, r))
        L = x.shape[-1]
        idx = torch.remainder(torch.arange(-r, L + r, device=x.device), L)
        return x.index_select(-1, idx)

    def _scale_conv(self, x: Tensor, w: Tensor, e: int) -> Tensor:
        """Blurred dilated 'same' conv of ``x (B, C, L)`` with ``w (O, C, k)`` at scale ``2^e``."""
        d = self.dilation * 2**e
        blur = getattr(self, f"_blur{e}").to(dtype=x.dtype)
        h = blur.shape[-1] // 2
        r = h + d * (self.kernel_size - 1) // 2
        xp = self._pad(x, r)
        c_in, c_out = x.shape[1], w.shape[0]
        if h == 0:
            return F.conv1d(xp, w, dilation=d)
        if c_in <= c_out:
            xb = _conv(xp, blur.expand(c_in, 1, -1), groups=c_in, method="auto")
            return F.conv1d(xb, w, dilation=d)
        y = F.conv1d(xp, w, dilation=d)
        return _conv(y, blur.expand(c_out, 1, -1), groups=c_out, method="auto")

    def _init(self, fan_in: int) -> None:
        # the reference wavelet networks' "He" scale: U(+-sqrt(2 / fan_in)), twice torch's
        # default variance (bias: torch's default bound)
        bound = math.sqrt(2.0 / fan_in)
        with torch.no_grad():
            self.weight.uniform_(-bound, bound)
            if self.bias is not None:
                self.bias.uniform_(-1.0 / math.sqrt(fan_in), 1.0 / math.sqrt(fan_in))

    def wavelet_kernels(self) -> list[Tensor]:
        """The learned kernels whose last axis is time (for :func:`wavelet_admissibility_loss`)."""
        return [self.weight]


class ScaleLiftingConv1d(_ScaleConvBase):
    """Lifting ``(B, C_in, L) -> (B, C_out, N, L)`` onto R x| R+ at dyadic scales (see module doc).

    Args:
        in_channels, out_channels: channels.
        kernel_size: odd number of taps ``k`` of the base wavelet (at scale 1).
        num_scales: ``N``; the scales are ``1, 2, ..., 2^(N-1)`` unless ``scales`` is given.
        scales: explicit dyadic grid (consecutive powers of two >= 1, or a DyadicScaleSampler).
        bias: one bias per output channel, shared by every scale.
        padding_mode: ``"zeros"`` or ``"circular"`` ('same' output length in both).
        blur_order: B-spline degree of the anti-aliasing blur (1, 2, 3) or ``None``.
        dilation: extra integer dilation ``d``: scale ``s`` uses dilation ``d s``.

    Example:
        >>> lift = ScaleLiftingConv1d(1, 8, 15, num_scales=4, padding_mode="circular")
        >>> lift(torch.randn(2, 1, 256)).shape
        torch.Size([2, 8, 4, 256])
    """

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int, num_scales: int | None = None,
                 *, scales: object = None, bias: bool = True, padding_mode: str = "zeros",
                 blur_order: int | None = 2, dilation: int = 1) -> None:
        super().__init__()
        self.in_channels = check_positive_int(in_channels, "in_channels")
        self.out_channels = check_positive_int(out_channels, "out_channels")
        self._setup(dyadic_exponents(num_scales, scales), kernel_size, dilation, padding_mode, blur_order)
        self.num_scales = len(self.scale_exponents)
        self.weight = nn.Parameter(torch.empty(self.out_channels, self.in_channels, self.kernel_size))
        self.bias = nn.Parameter(torch.empty(self.out_channels)) if bias else None
        self._init(self.in_channels * self.kernel_size)

    @property
    def in_field(self) -> SequenceField:
        return SequenceField(_group(self.scale_exponents))

    @property
    def out_field(self) -> GroupGridField:
        return GroupGridField(_group(self.scale_exponents), self.scales.unsqueeze(-1), spatial_dims=1)

    def forward(self, x: Tensor) -> Tensor:
        x = check_tensor(x, "x")
        if x.dim() != 3 or x.shape[1] != self.in_channels:
            raise ValueError(
                f"x must be a signal (B, {self.in_channels}, L), got shape {tuple(x.shape)}"
            )
        w = self.weight.to(x.dtype)
        y = torch.stack([self._scale_conv(x, w, e) for e in self.scale_exponents], dim=2)
        if self.bias is not None:
            y = y + self.bias.to(x.dtype).view(1, -1, 1, 1)
        return y

    def extra_repr(self) -> str:
        return (f"{self.in_channels}, {self.out_channels}, kernel_size={self.kernel_size}, "
                f"scales=2^{list(self.scale_exponents)}, padding_mode={self.padding_mode!r}, "
                f"blur_order={self.blur_order}, bias={self.bias is not None}")


class ScaleGroupConv1d(_ScaleConvBase):
    """Group conv ``(B, C_in, N_in, L) -> (B, C_out, N_out, L)`` on R x| R+ with local scale support.

    Output scale ``j`` sums over input scales ``j .. j + S - 1`` (``S = scale_support``), the
    spatial kernel dilated by ``s_j`` (times ``dilation``) after a blur at ``s_j``.

    Args:
        in_channels, out_channels: channels.
        kernel_size: odd spatial taps ``k``.
        num_scales: ``N_in`` (scales ``1 .. 2^(N_in - 1)``) unless ``scales`` is given.
        scale_support: ``S``, the number of neighbouring (larger) scales a kernel spans.
        scales: explicit dyadic input grid.
        crop: ``True`` drops output scales whose window leaves the grid (``N_out = N_in - S + 1``);
            ``False`` keeps ``N_out = N_in`` and treats scales beyond the grid as zeros.
        bias, padding_mode, blur_order, dilation: as in :class:`ScaleLiftingConv1d`.

    Example:
        >>> conv = ScaleGroupConv1d(4, 6, 3, num_scales=5, scale_support=3, crop=True)
        >>> conv(torch.randn(2, 4, 5, 64)).shape
        torch.Size([2, 6, 3, 64])
    """

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int, num_scales: int | None = None,
                 scale_support: int = 3, *, scales: object = None, crop: bool = False, bias: bool = True,
                 padding_mode: str = "zeros", blur_order: int | None = 2, dilation: int = 1) -> None:
        super().__init__()
        self.in_channels = check_positive_int(in_channels, "in_channels")
        self.out_channels = check_positive_int(out_channels, "out_channels")
        exps = dyadic_exponents(num_scales, scales)
        self.scale_support = check_positive_int(scale_support, "scale_support")
        self.crop = bool(crop)
        self.num_scales = len(exps)
        if self.crop and self.scale_support > self.num_scales:
            raise ValueError(
                f"scale_support={self.scale_support} must be <= num_scales={self.num_scales} with crop=True"
            )
        self.num_out_scales = self.num_scales - self.scale_support + 1 if self.crop else self.num_scales
        self._setup(exps, kernel_size, dilation, padding_mode, blur_order)
        S = self.scale_support
        self.weight = nn.Parameter(torch.empty(self.out_channels, self.in_channels, S, self.kernel_size))
        self.bias = nn.Parameter(torch.empty(self.out_channels)) if bias else None
        self._init(self.in_channels * S * self.kernel_size)

    @property
    def out_scales(self) -> Tensor:
        """The output scale grid ``(N_out,)`` (the first ``N_out`` input scales)."""
        return self.scales[: self.num_out_scales]

    @property
    def in_field(self) -> GroupGridField:
        return GroupGridField(_group(self.scale_exponents), self.scales.unsqueeze(-1), spatial_dims=1)

    @property
    def out_field(self) -> GroupGridField:
        return GroupGridField(_group(self.scale_exponents), self.out_scales.unsqueeze(-1), spatial_dims=1)

    def forward(self, x: Tensor) -> Tensor:
        x = check_tensor(x, "x")
        if x.dim() != 4 or x.shape[1] != self.in_channels or x.shape[2] != self.num_scales:
            raise ValueError(
                f"x must be a map on the scale grid (B, {self.in_channels}, {self.num_scales}, L) "
                f"(scale axis of length {self.num_scales}), got shape {tuple(x.shape)}"
            )
        B, C, N, L = x.shape
        w = self.weight.to(x.dtype)
        outs = []
        for j in range(self.num_out_scales):
            n = min(self.scale_support, N - j)  # scales beyond the grid read zeros: drop them
            xj = x[:, :, j : j + n].reshape(B, C * n, L)
            wj = w[:, :, :n].reshape(self.out_channels, C * n, self.kernel_size)
            outs.append(self._scale_conv(xj, wj, self.scale_exponents[j]))
        y = torch.stack(outs, dim=2)
        if self.bias is not None:
            y = y + self.bias.to(x.dtype).view(1, -1, 1, 1)
        return y

    def extra_repr(self) -> str:
        return (f"{self.in_channels}, {self.out_channels}, kernel_size={self.kernel_size}, "
                f"scales=2^{list(self.scale_exponents)}, scale_support={self.scale_support}, "
                f"crop={self.crop}, padding_mode={self.padding_mode!r}, blur_order={self.blur_order}, "
                f"bias={self.bias is not None}")


# -- pooling and readout ------------------------------------------------------------------------
def _check_scale_map(x: object, name: str = "x") -> Tensor:
    x = check_tensor(x, name)
    if x.dim() != 4:
        raise ValueError(f"{name} must be a scale-translation map (B, C, N, L), got shape {tuple(x.shape)}")
    return x


class ScaleMaxPool(nn.Module):
    """Max over the scale axis ``(B, C, N, L) -> (B, C, L)`` (invariant to scale-axis shifts
    that stay on the grid).

    Example:
        >>> ScaleMaxPool()(torch.randn(2, 3, 4, 10)).shape
        torch.Size([2, 3, 10])
    """

    def forward(self, x: Tensor) -> Tensor:
        return _check_scale_map(x).amax(dim=2)


class ScaleTimeMaxPool(nn.Module):
    """Max pooling along time of ``(B, C, N, L)`` maps, every scale alike (window = stride).

    Example:
        >>> ScaleTimeMaxPool(4)(torch.randn(2, 3, 4, 10)).shape
        torch.Size([2, 3, 4, 2])
    """

    def __init__(self, kernel_size: int) -> None:
        super().__init__()
        self.kernel_size = check_positive_int(kernel_size, "kernel_size")

    def forward(self, x: Tensor) -> Tensor:
        x = check_float_tensor(_check_scale_map(x), "x")
        B, C, N, L = x.shape
        if L < self.kernel_size:
            raise ValueError(f"x must have length L >= kernel_size={self.kernel_size}, got L={L}")
        y = F.max_pool1d(x.reshape(B, C * N, L), self.kernel_size)
        return y.reshape(B, C, N, y.shape[-1])

    def extra_repr(self) -> str:
        return f"kernel_size={self.kernel_size}"


class ScaleInvariantReadout(nn.Module):
    """Invariant readout ``(B, C, N, L) -> (B, C)``: global mean over time, then max over scales
    (``order="time_first"``, the Wavelet Networks' readout) or max over scales first
    (``"scale_first"``). Invariant to translations (circular) and, up to the truncated ends of
    the scale grid, to dilations.

    Example:
        >>> x = torch.randn(2, 3, 4, 10)
        >>> torch.equal(ScaleInvariantReadout()(x), x.mean(-1).amax(-1))
        True
    """

    def __init__(self, order: str = "time_first") -> None:
        super().__init__()
        if order not in ("time_first", "scale_first"):
            raise ValueError(f"order must be 'time_first' or 'scale_first', got {order!r}")
        self.order = order

    def forward(self, x: Tensor) -> Tensor:
        x = check_float_tensor(_check_scale_map(x), "x")
        if self.order == "time_first":
            return x.mean(dim=-1).amax(dim=-1)
        return x.amax(dim=2).mean(dim=-1)

    @property
    def out_field(self) -> TrivialField:
        return TrivialField()

    def extra_repr(self) -> str:
        return f"order={self.order!r}"


def wavelet_admissibility_loss(
    source: nn.Module | Tensor | Iterable[Tensor], weight: float = 10.0
) -> Tensor:
    """``weight * mean_filters((sum_t psi(t))^2)``: pushes learned wavelets towards zero mean.

    ``source`` is a module (every wavelet layer inside contributes its kernels; by default only
    lifting layers count, as in Wavelet Networks -- pass ``[layer.weight, ...]`` for others),
    a kernel tensor (time last) or an iterable of them. ``weight = 10`` is the paper's value.

    Example:
        >>> lift = ScaleLiftingConv1d(1, 4, 5, num_scales=2)
        >>> bool(wavelet_admissibility_loss(lift) >= 0)
        True
    """
    kernels: Tensor | Iterable[Tensor]
    if isinstance(source, nn.Module):
        lifts = [m for m in source.modules() if isinstance(m, ScaleLiftingConv1d)]
        kernels = [k for m in lifts for k in m.wavelet_kernels()]
        if not kernels:
            raise ValueError(f"source holds no ScaleLiftingConv1d layer: {type(source).__name__}")
    else:
        kernels = source
    return float(weight) * wavelet_zero_mean_loss(kernels, spatial_dims=1)
