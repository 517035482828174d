"""Kernel masks: the learnable Gaussian mask of FlexConv (with dynamic cropping) and a circular mask.

A mask maps positions ``(..., D)`` in ``[-1, 1]^D`` to weights ``(...)`` that multiply the sampled
kernel: ``psi(x) = mask(x) * net(x)``.

**Gaussian mask** ``w(x) = prod_d exp(-1/2 (x_d - mu_d)^2 / (sigma_d^2 + eps))`` with learnable mean
and width. The width is parameterised stably: ``"log"`` (``sigma = exp(log_sigma)``, default)
or ``"variance"`` (a raw ``sigma`` with the ``sigma^2 + eps`` denominator that fixed CCNN's
``sigma -> 0`` instability). Defaults follow FlexConv/CCNN: ``sigma = 0.075``, ``threshold = 0.1``,
mean 0 (centred 2-D kernels) or ``+1`` for causal 1-D kernels (position ``+1`` multiplies the
current time step).

**Dynamic cropping.** ``w = tau`` has roots ``mu_d +- sigma_d sqrt(-2 ln tau)``; the layer samples
the kernel net only on grid positions inside that box (:meth:`GaussianMask.crop_slices`), so the
compute scales with the learned size. The crop *size* becomes a tensor shape, so choosing it
needs one host sync per call; it is computed from the mask parameters alone (it does not depend
on the data), under ``no_grad``, and is outside the gradient path: the mask's gradient flows
through the mask values at the kept positions.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Literal

import torch
from torch import Tensor, nn

from .._validation import check_positive_int, check_tensor, resolve_dtype

__all__ = ["GaussianMask", "CircularMask"]


def _per_dim(value: float | Sequence[float], data_dim: int, name: str) -> list[float]:
    if isinstance(value, (int, float)):
        return [float(value)] * data_dim
    vals = [float(v) for v in value]
    if len(vals) != data_dim:
        raise ValueError(f"{name} must be a float or {data_dim} floats (data_dim), got {len(vals)}")
    return vals


def _check_positions(positions: Tensor, data_dim: int) -> Tensor:
    positions = check_tensor(positions, "positions")
    if positions.dim() < 1 or positions.shape[-1] != data_dim:
        raise ValueError(
            f"positions must have shape (..., data_dim={data_dim}), got {tuple(positions.shape)}"
        )
    return positions


class GaussianMask(nn.Module):
    """Learnable separable Gaussian mask with dynamic cropping (FlexConv).

    Args:
        data_dim: dimension ``D`` of the positions.
        init_mean: initial mean, a float or ``D`` floats (``1.0`` for causal 1-D kernels).
        init_sigma: initial width(s) on ``[-1, 1]`` (FlexConv/CCNN: 0.075).
        threshold: ``tau`` in ``(0, 1)``; positions with mask below it are cropped.
        parameterization: ``"log"`` or ``"variance"`` (see the module docstring).
        eps: added to ``sigma^2`` in the exponent.
        learn_mean, learn_sigma: make the mean / width parameters (else buffers).

    Parameters are named ``mean`` and ``log_sigma`` (or ``sigma``) and are tagged for the
    ``"mask"`` optimiser group of :func:`groupconv.kernels.param_groups`.

    Example:
        >>> mask = GaussianMask(1, init_mean=0.0, init_sigma=0.2)
        >>> grid = torch.linspace(-1, 1, 21)[:, None]
        >>> (sl,) = mask.crop_slices([21])
        >>> sl, bool((mask(grid[sl]) > 0.1).all())
        (slice(6, 15, None), True)
    """

    _param_group_tags = {"mean": "mask", "log_sigma": "mask", "sigma": "mask"}

    def __init__(
        self,
        data_dim: int,
        init_mean: float | Sequence[float] = 0.0,
        init_sigma: float | Sequence[float] = 0.075,
        threshold: float = 0.1,
        *,
        parameterization: Literal["log", "variance"] = "log",
        eps: float = 1e-8,
        learn_mean: bool = True,
        learn_sigma: bool = True,
        device: torch.device | str | None = None,
        dtype: torch.dtype | None = None,
    ) -> None:
        super().__init__()
        self.data_dim = check_positive_int(data_dim, "data_dim")
        if not (isinstance(threshold, (int, float)) and 0.0 < threshold < 1.0):
            raise ValueError(f"threshold must be a float in (0, 1), got {threshold!r}")
        if parameterization not in ("log", "variance"):
            raise ValueError(f"parameterization must be 'log' or 'variance', got {parameterization!r}")
        if not (isinstance(eps, (int, float)) and eps >= 0):
            raise ValueError(f"eps must be a float >= 0, got {eps!r}")
        sig = _per_dim(init_sigma, self.data_dim, "init_sigma")
        if min(sig) <= 0:
            raise ValueError(f"init_sigma must be positive, got {init_sigma!r}")
        mean = _per_dim(init_mean, self.data_dim, "init_mean")
        self.threshold = float(threshold)
        self.parameterization = parameterization
        self.eps = float(eps)
        fk = {"device": device, "dtype": resolve_dtype(dtype)}
        mean_t = torch.tensor(mean, **fk)
        if parameterization == "log":
            width_name, width_t = "log_sigma", torch.tensor(sig, **fk).log()
        else:
            width_name, width_t = "sigma", torch.tensor(sig, **fk)
        self._width_name = width_name
        for name, value, learn in (("mean", mean_t, learn_mean), (width_name, width_t, learn_sigma)):
            if learn:
                self.register_parameter(name, nn.Parameter(value))
            else:
                self.register_buffer(name, value)

    # --------------------------------------------------------------------------- values
    def variance(self) -> Tensor:
        """``sigma^2 + eps`` per axis ``(D,)`` (the denominator of the exponent)."""
        if self.parameterization == "log":
            return torch.exp(2.0 * self.log_sigma) + self.eps
        return self.sigma.square() + self.eps

    def effective_sigma(self) -> Tensor:
        """Width per axis ``(D,)``: ``sqrt(sigma^2 + eps)``."""
        return self.variance().sqrt()

    def mask(self, positions: Tensor) -> Tensor:
        """Mask values ``(...)`` at ``positions`` ``(..., D)``."""
        x = _check_positions(positions, self.data_dim)
        z = (x - self.mean).square() / self.variance()
        return torch.exp(-0.5 * z.sum(-1))

    def forward(self, positions: Tensor) -> Tensor:
        """Same as :meth:`mask`."""
        return self.mask(positions)

    def frequency_bounds(self, stddevs: float = 2.0) -> Tensor:
        """Spectral spread ``(D,)`` of the mask in cycles per unit: ``stddevs / (2 pi sigma_d)``.

        The Fourier transform of ``exp(-x^2 / 2 sigma^2)`` is a Gaussian with standard deviation
        ``1 / (2 pi sigma)`` cycles per unit; multiplying a kernel by the mask widens its spectrum
        by about ``stddevs`` of those (used by the ``"gabor+mask"`` Nyquist target).
        """
        return float(stddevs) / (2 * math.pi * self.effective_sigma())

    # ------------------------------------------------------------------------- cropping
    def half_width(self) -> Tensor:
        """Distance ``sigma sqrt(-2 ln tau)`` ``(D,)`` from the mean to the threshold level."""
        return self.effective_sigma() * math.sqrt(-2.0 * math.log(self.threshold))

    def crop_extent(self) -> Tensor:
        """Bounding box ``(D, 2)`` (``[low, high]``) of ``{mask > threshold}`` within ``[-1, 1]``."""
        hw = self.half_width()
        lo = (self.mean - hw).clamp(-1.0, 1.0)
        hi = (self.mean + hw).clamp(-1.0, 1.0)
        return torch.stack([lo, hi], dim=-1)

    @torch.no_grad()
    def crop_slices(
        self,
        kernel_size: Sequence[int],
        mode: Literal["centered", "causal", "tight"] = "centered",
    ) -> tuple[slice, ...]:
        """Index slices of a ``linspace(-1, 1, K_d)`` grid that keep the above-threshold region.

        Args:
            kernel_size: the number of samples ``K_d`` along each axis over ``[-1, 1]``.
            mode: ``"centered"`` drops the same number of samples from both ends, so a centred
                kernel stays centred (odd stays odd); ``"causal"`` keeps the last sample
                (position ``+1``, the current time step) and crops only the start; ``"tight"``
                keeps exactly the samples in the box. At least one sample is always kept.

        One host sync (the slice bounds are Python ints); no gradient flows through it.
        """
        if isinstance(kernel_size, int):
            kernel_size = [kernel_size]
        ks = [check_positive_int(k, "kernel_size") for k in kernel_size]
        if len(ks) != self.data_dim:
            raise ValueError(f"kernel_size must have data_dim={self.data_dim} entries, got {ks}")
        if mode not in ("centered", "causal", "tight"):
            raise ValueError(f"mode must be 'centered', 'causal' or 'tight', got {mode!r}")
        ext = self.crop_extent().detach().to(torch.float64)
        mean = self.mean.detach().to(torch.float64)
        K = torch.tensor(ks, dtype=torch.float64, device=ext.device)
        steps = (K - 1).clamp_min(1.0) / 2.0  # index units per coordinate unit
        last = K - 1
        k_lo = torch.ceil((ext[:, 0] + 1.0) * steps - 1e-6).clamp(0, None)
        k_hi = torch.floor((ext[:, 1] + 1.0) * steps + 1e-6)
        k_hi = torch.minimum(k_hi, last)
        nearest = torch.minimum(torch.round((mean + 1.0) * steps).clamp(0, None), last)
        empty = k_lo > k_hi
        k_lo = torch.where(empty, nearest, k_lo)
        k_hi = torch.where(empty, nearest, k_hi)
        bounds = torch.stack([k_lo, k_hi]).to(torch.int64).tolist()  # the one host sync
        out = []
        for d, K_d in enumerate(ks):
            lo, hi = bounds[0][d], bounds[1][d]
            if mode == "tight":
                out.append(slice(lo, hi + 1))
            elif mode == "causal":
                out.append(slice(lo, K_d))
            else:
                n = min(lo, K_d - 1 - hi)
                out.append(slice(n, K_d - n))
        return tuple(out)

    def crop(
        self, grid: Tensor, mode: Literal["centered", "causal", "tight"] = "centered"
    ) -> tuple[Tensor, tuple[slice, ...]]:
        """Crop a position grid ``(K_1, ..., K_D, D)`` to the above-threshold region.

        Returns the cropped grid and the slices (apply them to anything laid out on the grid).
        """
        grid = check_tensor(grid, "grid")
        if grid.dim() != self.data_dim + 1 or grid.shape[-1] != self.data_dim:
            raise ValueError(
                f"grid must have shape (K_1, ..., K_{self.data_dim}, {self.data_dim}), "
                f"got {tuple(grid.shape)}"
            )
        slices = self.crop_slices(list(grid.shape[:-1]), mode)
        return grid[slices], slices

    def extra_repr(self) -> str:  # noqa: D102
        return (f"data_dim={self.data_dim}, threshold={self.threshold}, "
                f"parameterization={self.parameterization!r}")


class CircularMask(nn.Module):
    """Fixed radial mask for rotated kernels: 1 inside ``|x| <= radius``, 0 (or a soft tail) outside.

    With ``smoothing > 0`` the outside falls off as ``exp(-1/2 (|x| - radius)^2 / smoothing^2)``,
    which keeps the mask continuous under non-grid rotations. ``radius = 1`` is the disc
    inscribed in ``[-1, 1]^D``.

    Example:
        >>> m = CircularMask(2)
        >>> m(torch.tensor([[0.0, 0.0], [1.0, 1.0]]))
        tensor([1., 0.])
    """

    def __init__(self, data_dim: int = 2, radius: float = 1.0, smoothing: float = 0.0) -> None:
        super().__init__()
        self.data_dim = check_positive_int(data_dim, "data_dim")
        if not (isinstance(radius, (int, float)) and radius > 0):
            raise ValueError(f"radius must be a positive float, got {radius!r}")
        if not (isinstance(smoothing, (int, float)) and smoothing >= 0):
            raise ValueError(f"smoothing must be a float >= 0, got {smoothing!r}")
        self.radius = float(radius)
        self.smoothing = float(smoothing)

    def forward(self, positions: Tensor) -> Tensor:
        """Mask values ``(...)`` at ``positions`` ``(..., D)``."""
        x = _check_positions(positions, self.data_dim)
        r2 = x.square().sum(-1)
        if self.smoothing == 0.0:
            return (r2 <= self.radius**2 * (1 + 1e-6)).to(x.dtype)
        excess = torch.relu(r2.sqrt() - self.radius)
        return torch.exp(-0.5 * (excess / self.smoothing).square())

    def extra_repr(self) -> str:  # noqa: D102
        return f"data_dim={self.data_dim}, radius={self.radius}, smoothing={self.smoothing}"
