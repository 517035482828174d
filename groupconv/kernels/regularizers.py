"""Kernel regularisers: each is a plain function returning a scalar tensor, plus a module wrapper.

* :func:`ln_kernel_norm` -- the *unsquared* ``L_n`` norm of the **sampled** kernels (CKConv,
  FlexConv and CCNN call this "weight decay"; it is not a penalty on the kernel-net weights).
* :func:`nyquist_penalty` -- FlexConv's anti-aliasing regulariser: the frequency bound of a
  kernel net must stay below the Nyquist frequency of the grid it is sampled on.
* :func:`mask_size_penalty` -- ``L_n`` norm of the Gaussian masks' half-widths (FlexConv's
  ``LimitLnLoss``), to favour small kernels.
* :func:`wavelet_zero_mean_loss` -- the admissibility (zero-mean) loss of Wavelet Networks.

All of them are differentiable w.r.t. the parameters that produced their inputs and follow the
device and dtype of those inputs.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Literal

import torch
from torch import Tensor, nn

from .._validation import check_positive_int, check_tensor
from .masks import GaussianMask
from .mfn import _MFN

__all__ = [
    "ln_kernel_norm",
    "LnKernelLoss",
    "nyquist_frequency",
    "nyquist_penalty",
    "NyquistRegularizer",
    "mask_size_penalty",
    "MaskSizePenalty",
    "wavelet_zero_mean_loss",
    "WaveletLoss",
]


def _as_list(tensors: Tensor | Iterable[Tensor], name: str) -> list[Tensor]:
    items = [tensors] if isinstance(tensors, Tensor) else list(tensors)
    if not items:
        raise ValueError(f"{name} must hold at least one tensor, got none")
    for i, t in enumerate(items):
        check_tensor(t, f"{name}[{i}]")
    return items


def _check_p(p: float) -> float:
    if not (isinstance(p, (int, float)) and p > 0):
        raise ValueError(f"p must be a positive float, got {p!r}")
    return float(p)


def ln_kernel_norm(kernels: Tensor | Iterable[Tensor], p: float = 2.0) -> Tensor:
    """Sum over kernels of ``||k||_p`` (unsquared), a scalar.

    Example:
        >>> ln_kernel_norm([torch.ones(2, 2), torch.ones(3)], p=2)
        tensor(3.7321)
    """
    p = _check_p(p)
    items = _as_list(kernels, "kernels")
    return torch.stack([torch.linalg.vector_norm(k, ord=p) for k in items]).sum()


class LnKernelLoss(nn.Module):
    """``weight * ln_kernel_norm(kernels, p)`` as a module (``forward(kernels)``)."""

    def __init__(self, weight: float = 1.0, p: float = 2.0) -> None:
        super().__init__()
        self.weight = float(weight)
        self.p = _check_p(p)

    def forward(self, kernels: Tensor | Iterable[Tensor]) -> Tensor:  # noqa: D102
        return self.weight * ln_kernel_norm(kernels, self.p)


def nyquist_frequency(
    num_samples: int | Sequence[int], *, device: torch.device | str | None = None,
    dtype: torch.dtype | None = None,
) -> Tensor:
    """Nyquist frequency ``(K - 1) / 4`` (cycles per unit) of ``K`` samples spanning ``[-1, 1]``.

    The spacing is ``2 / (K - 1)``, the sampling rate ``(K - 1) / 2`` and Nyquist half of it.

    Example:
        >>> nyquist_frequency([33, 9])
        tensor([8., 2.])
    """
    ks = [num_samples] if isinstance(num_samples, int) else list(num_samples)
    ks = [check_positive_int(k, "num_samples") for k in ks]
    return (torch.tensor(ks, device=device, dtype=dtype or torch.get_default_dtype()) - 1) / 4.0


def _layer_bounds(net: nn.Module, stddevs: float) -> Tensor:
    if not getattr(net, "band_limited", True):
        raise ValueError(
            f"net {type(net).__name__} is not band-limited (frequency_bounds is inf); the Nyquist "
            "penalty needs SIREN, FourierNet, GaborNet, MAGNet or an RFF with num_layers=1"
        )
    if isinstance(net, _MFN):
        return net.layer_frequency_bounds(stddevs)
    if hasattr(net, "layer_frequency_bounds"):
        return net.layer_frequency_bounds()
    if hasattr(net, "frequency_bounds"):
        return net.frequency_bounds().unsqueeze(0)
    raise TypeError(f"net must report frequency_bounds(), got {type(net).__name__}")


def nyquist_penalty(
    net: nn.Module,
    kernel_size: int | Sequence[int],
    *,
    mask: GaussianMask | None = None,
    method: Literal["together", "summed"] = "together",
    target: Literal["gabor", "gabor+mask"] = "gabor",
    stddevs: float = 2.0,
) -> Tensor:
    """Anti-aliasing penalty ``sum ReLU(f - f_target)^2`` of one kernel net (FlexConv).

    Args:
        net: a band-limited kernel net (reports ``layer_frequency_bounds`` ``(F, D)``).
        kernel_size: samples ``K_d`` of the (uncropped) grid spanning ``[-1, 1]`` per axis,
            an int for all axes; the Nyquist frequency is ``(K_d - 1) / 4``.
        mask: the Gaussian mask multiplying the kernel (needed for ``target="gabor+mask"``).
        method: ``"summed"``: ``sum_d ReLU(sum_l f_ld + m_d - nyq_d)^2`` (products of
            sinusoids add frequencies); ``"together"`` (FlexConv experiments): each of the ``F``
            filters gets an equal share, ``sum_{l,d} ReLU(f_ld + m_d / F - nyq_d / F)^2``.
        target: ``"gabor"`` (``m = 0``) or ``"gabor+mask"`` (``m_d = stddevs / (2 pi sigma_d)``,
            the spectral spread of the mask).
        stddevs: Gaussian standard deviations counted as bandwidth (FlexConv: 2).

    Example:
        >>> from groupconv.kernels import MAGNet
        >>> net = MAGNet(2, 1, generator=torch.Generator().manual_seed(0))
        >>> pen = nyquist_penalty(net, 9)
        >>> pen.dim(), bool(pen > 0)
        (0, True)
    """
    if method not in ("together", "summed"):
        raise ValueError(f"method must be 'together' or 'summed', got {method!r}")
    if target not in ("gabor", "gabor+mask"):
        raise ValueError(f"target must be 'gabor' or 'gabor+mask', got {target!r}")
    bounds = _layer_bounds(net, stddevs)  # (F, D)
    F, D = bounds.shape
    ks = [kernel_size] * D if isinstance(kernel_size, int) else list(kernel_size)
    if len(ks) != D:
        raise ValueError(f"kernel_size must be an int or {D} ints (one per axis), got {ks}")
    nyq = nyquist_frequency(ks, device=bounds.device, dtype=bounds.dtype)
    if target == "gabor+mask":
        if mask is None:
            raise ValueError("target='gabor+mask' needs the kernel's mask, got mask=None")
        extra = mask.frequency_bounds(stddevs).to(bounds.dtype)
        if extra.shape[-1] != D:
            raise ValueError(f"mask has data_dim={extra.shape[-1]}, the net has in_features={D}")
    else:
        extra = torch.zeros_like(nyq)
    if method == "summed":
        excess = bounds.sum(0) + extra - nyq
    else:
        excess = bounds + (extra - nyq) / F
    return torch.relu(excess).square().sum()


class NyquistRegularizer(nn.Module):
    """``factor * sum`` of :func:`nyquist_penalty` over ``(net, kernel_size[, mask])`` terms.

    FlexConv's cross-resolution runs use ``factor = 0.1``, ``method="together"``.

    Example:
        >>> from groupconv.kernels import FourierNet
        >>> reg = NyquistRegularizer(0.1)
        >>> reg([(FourierNet(1, 1), 33)]).dim()
        0
    """

    def __init__(
        self,
        factor: float = 0.1,
        method: Literal["together", "summed"] = "together",
        target: Literal["gabor", "gabor+mask"] = "gabor",
        stddevs: float = 2.0,
    ) -> None:
        super().__init__()
        self.factor = float(factor)
        self.method = method
        self.target = target
        self.stddevs = float(stddevs)

    def forward(self, terms: Iterable[tuple]) -> Tensor:  # noqa: D102
        total = None
        for i, term in enumerate(terms):
            if not isinstance(term, tuple) or len(term) not in (2, 3):
                raise ValueError(f"terms[{i}] must be (net, kernel_size) or (net, kernel_size, mask)")
            net, ks = term[0], term[1]
            mask = term[2] if len(term) == 3 else None
            pen = nyquist_penalty(net, ks, mask=mask, method=self.method, target=self.target,
                                  stddevs=self.stddevs)
            total = pen if total is None else total + pen
        if total is None:
            raise ValueError("terms must hold at least one (net, kernel_size[, mask]) entry")
        return self.factor * total


def mask_size_penalty(masks: GaussianMask | Iterable[GaussianMask], p: float = 2.0) -> Tensor:
    """Sum over masks of ``||half_width||_p``, the ``L_p`` size of the above-threshold box.

    Example:
        >>> import math
        >>> from groupconv.kernels import GaussianMask
        >>> round(mask_size_penalty(GaussianMask(1, init_sigma=0.5, threshold=math.exp(-0.5))).item(), 6)
        0.5
    """
    p = _check_p(p)
    items = [masks] if isinstance(masks, nn.Module) else list(masks)
    if not items:
        raise ValueError("masks must hold at least one GaussianMask, got none")
    for i, m in enumerate(items):
        if not isinstance(m, GaussianMask):
            raise TypeError(f"masks[{i}] must be a GaussianMask, got {type(m).__name__}")
    return torch.stack([torch.linalg.vector_norm(m.half_width(), ord=p) for m in items]).sum()


class MaskSizePenalty(nn.Module):
    """``weight * mask_size_penalty(masks, p)``; ``forward(model_or_masks)`` finds the masks."""

    def __init__(self, weight: float = 1.0, p: float = 2.0) -> None:
        super().__init__()
        self.weight = float(weight)
        self.p = _check_p(p)

    def forward(self, masks: nn.Module | Iterable[GaussianMask]) -> Tensor:  # noqa: D102
        if isinstance(masks, nn.Module) and not isinstance(masks, GaussianMask):
            masks = [m for m in masks.modules() if isinstance(m, GaussianMask)]
        return self.weight * mask_size_penalty(masks, self.p)


def wavelet_zero_mean_loss(kernels: Tensor | Iterable[Tensor], spatial_dims: int = 1) -> Tensor:
    """Mean over filters of ``(sum_t psi(t))^2``: pushes every filter to zero mean (admissibility).

    Each kernel's trailing ``spatial_dims`` axes are summed; the squares are averaged over all
    remaining axes (filters) and over the kernels.

    Example:
        >>> wavelet_zero_mean_loss(torch.tensor([[1.0, -1.0], [1.0, 1.0]]))
        tensor(2.)
    """
    spatial_dims = check_positive_int(spatial_dims, "spatial_dims")
    items = _as_list(kernels, "kernels")
    terms = []
    for i, k in enumerate(items):
        if k.dim() < spatial_dims:
            raise ValueError(
                f"kernels[{i}] must have at least spatial_dims={spatial_dims} axes, got shape "
                f"{tuple(k.shape)}"
            )
        sums = k.sum(dim=tuple(range(k.dim() - spatial_dims, k.dim())))
        terms.append(sums.square().mean())
    return torch.stack(terms).mean()


class WaveletLoss(nn.Module):
    """``weight * wavelet_zero_mean_loss`` (Wavelet Networks use ``weight = 10``)."""

    def __init__(self, weight: float = 10.0, spatial_dims: int = 1) -> None:
        super().__init__()
        self.weight = float(weight)
        self.spatial_dims = check_positive_int(spatial_dims, "spatial_dims")

    def forward(self, kernels: Tensor | Iterable[Tensor]) -> Tensor:  # noqa: D102
        return self.weight * wavelet_zero_mean_loss(kernels, self.spatial_dims)

