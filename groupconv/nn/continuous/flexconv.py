"""FlexConv (Romero et al., ICLR 2022) and CCNN's SeparableFlexConv (Knigge et al., ICLR 2023).

FlexConv is a :class:`~groupconv.nn.continuous.ckconv.CKConv` whose kernel is multiplied by a learnable
Gaussian mask ``w(x) = prod_d exp(-1/2 (x_d - mu_d)^2 / sigma_d^2)``
(:class:`groupconv.kernels.masks.GaussianMask`), so the effective kernel size is learned.

**Dynamic cropping.** Before the kernel net runs, the position grid is cropped to the box where
the mask exceeds ``mask_threshold`` (centred crops stay odd and centred, causal crops keep the
current step), so the kernel-net evaluation and the convolution scale with the learned size.
Choosing the crop needs one host sync per forward (the crop size is a tensor shape); it does not
depend on the data, and the eval-mode cache skips it. Gradients reach the mask through the mask
values at the kept positions.

**Under torch.compile** the crop cannot be a host-synced shape, so the kernel is sampled on a
*bucket*: the crop size of the last eager forward at that input size rounded up to ``2^m + 1``
taps (centred) or ``2^m`` taps (causal), or the full grid before any eager forward. Taps of
the bucket outside the crop that eager mode would choose are multiplied by zero (a 0/1
indicator computed from the mask parameters on the device, no host sync), so compiled and eager
outputs agree, and the whole forward traces as one graph (``fullgraph=True``). Should the mask
grow beyond the bucket while compiled (training), a device-side assertion fails loudly
(``torch._assert_async``) instead of dropping taps; an eager forward (or a fresh compile)
re-buckets.

The irregular-sampling path (``forward(x, positions)``) multiplies by the mask but does not crop,
so it matches the regular path exactly with ``dynamic_cropping=False`` and up to the below-threshold
tails otherwise.

**Initialisation.** With a MAGNet/GaborNet kernel net given by name, the window centres are tied
to the mask: ``mu ~ 1.667 sigma_mask,init U(-1, 1)`` (``+-0.125`` for the default width; causal:
``1 - 1.667 sigma U(0, 1)``), capped at 1, as in the references, so the windows start inside the
crop (``kernel_net_kwargs={"mu_scale": ...}`` overrides). The output scaling is the energy rule of
:mod:`groupconv.nn.continuous.ckconv`, measured on the masked, cropped kernel.

Mask parameters live in the submodule ``mask`` (``mask.mean``, ``mask.log_sigma``); the
references train them at ``0.1x`` the learning rate (CCNN's ratio silently did nothing because of
a parameter-name mismatch). Use the names to build a parameter group.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch
from torch import Tensor

from .ckconv import _EPS, CKConv, SeparableCKConv, _ContinuousConvNd

__all__ = ["FlexConv", "SeparableFlexConv"]

#: window-centre spread per unit of initial mask width (FlexConv/CCNN ``init_spatial_value``)
_MU_PER_SIGMA = 1.667


class _FlexMixin(_ContinuousConvNd):
    """Adds the Gaussian mask and the dynamic crop to a continuous conv."""

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        data_dim: int = 1,
        kernel_net: Any = "magnet",
        kernel_size: str | int = "same",
        *,
        mask_init_sigma: float | Sequence[float] = 0.075,
        mask_init_mean: float | Sequence[float] | None = None,
        mask_threshold: float = 0.1,
        mask_kwargs: dict[str, Any] | None = None,
        dynamic_cropping: bool = True,
        **kwargs: Any,
    ) -> None:
        if isinstance(kernel_net, str) and kernel_net.lower() in ("magnet", "gabor"):
            # tie the window centres to the mask (the references' init_spatial_value):
            # mu ~ 1.667 sigma_mask U(-1, 1) (causal: 1 - 1.667 sigma_mask U(0, 1)), at most 1
            sig = [float(mask_init_sigma)] if isinstance(mask_init_sigma, (int, float)) \
                else [float(v) for v in mask_init_sigma]
            knk = dict(kwargs.get("kernel_net_kwargs") or {})
            knk.setdefault("mu_scale", min(1.0, _MU_PER_SIGMA * max(sig)))
            kwargs["kernel_net_kwargs"] = knk
        super().__init__(in_channels, out_channels, data_dim, kernel_net, kernel_size, **kwargs)
        self._init_mask(mask_init_sigma, mask_init_mean, mask_threshold, mask_kwargs,
                        dynamic_cropping, kwargs.get("device"), kwargs.get("dtype"))
        self.clear_cache()

    def _init_mask(
        self,
        mask_init_sigma: float | Sequence[float],
        mask_init_mean: float | Sequence[float] | None,
        mask_threshold: float,
        mask_kwargs: dict[str, Any] | None,
        dynamic_cropping: bool,
        device: Any,
        dtype: Any,
    ) -> None:
        from ...kernels.masks import GaussianMask

        if mask_init_mean is None:
            mask_init_mean = 1.0 if self.causal else 0.0
        self.mask = GaussianMask(self.data_dim, init_mean=mask_init_mean, init_sigma=mask_init_sigma,
                                 threshold=mask_threshold, device=device, dtype=dtype,
                                 **(mask_kwargs or {}))
        self.dynamic_cropping = bool(dynamic_cropping)

    def _crop_axes(self, axes: list[Tensor]) -> list[Tensor]:
        if not self.dynamic_cropping:
            return axes
        out = self._eager_crop(axes)
        # the bucket a compiled forward samples at this input size (see the module docstring)
        if not hasattr(self, "_crop_buckets"):
            self._crop_buckets: dict[tuple[int, ...], tuple[int, ...]] = {}
        key = tuple(int(c.shape[0]) for c in axes)
        self._crop_buckets[key] = tuple(_bucket(int(o.shape[0]), k, self.causal)
                                        for o, k in zip(out, key))
        return out

    def _eager_crop(self, axes: list[Tensor]) -> list[Tensor]:
        with torch.no_grad():
            ext = self.mask.crop_extent().detach()
            bounds = torch.cat([ext.reshape(-1), self.mask.mean.detach().reshape(-1)])
            vals = bounds.to(torch.float64).tolist()  # the one host sync of the crop
        out = []
        for d, c in enumerate(axes):
            lo, hi, mean = vals[2 * d], vals[2 * d + 1], vals[2 * self.data_dim + d]
            k = c.shape[0]
            kept = ((c >= lo - _EPS) & (c <= hi + _EPS)).nonzero().flatten().tolist()  # CPU
            if kept:
                i_lo, i_hi = kept[0], kept[-1]
            else:  # threshold box between two samples: keep the nearest one
                i_lo = i_hi = int((c - mean).abs().argmin())
            if self.causal:
                out.append(c[i_lo:])
            else:
                n = min(i_lo, k - 1 - i_hi)
                out.append(c[n:k - n])
        return out

    def _kernel_values(self, grid: Tensor) -> Tensor:
        return self.kernel_net(grid) * self.kernel_gain * self.mask(grid).unsqueeze(-1)

    def _sample(self, size: tuple[int, ...], device: torch.device) -> Tensor:
        if not (self.dynamic_cropping and torch.compiler.is_compiling()):
            return super()._sample(size, device)
        # traced: sample a bucket, zero the taps outside the eager crop (no host sync)
        full = self.axis_coordinates(size)
        key = tuple(int(c.shape[0]) for c in full)
        bucket = getattr(self, "_crop_buckets", {}).get(key, key)
        dtype = self._param_dtype()
        axes, keeps = [], []
        ext = self.mask.crop_extent()
        for d, (c, b) in enumerate(zip(full, bucket)):
            k = int(c.shape[0])
            cb = c[k - b:] if self.causal else c[(k - b) // 2:(k - b) // 2 + b]
            cf, cb = c.to(device=device, dtype=dtype), cb.to(device=device, dtype=dtype)
            lo, hi, mean = ext[d, 0], ext[d, 1], self.mask.mean.reshape(-1)[d]
            inside = (cf >= lo - _EPS) & (cf <= hi + _EPS)
            nearest = (cf - mean).abs() == (cf - mean).abs().min()
            inside = inside | (~inside.any() & nearest)
            if self.causal:  # eager keeps every tap from the oldest inside one to the present
                first = torch.where(inside, cf, torch.full_like(cf, 2.0)).min()
                torch._assert_async(first >= cb[0] - _EPS,
                                    "FlexConv: the mask outgrew the compiled crop bucket")
                keeps.append((cb >= first - _EPS).to(dtype))
            else:  # eager keeps the symmetric range covering every inside tap
                reach = torch.where(inside, cf.abs(), torch.zeros_like(cf)).max()
                torch._assert_async(reach <= cb[-1].abs() + _EPS,
                                    "FlexConv: the mask outgrew the compiled crop bucket")
                keeps.append((cb.abs() <= reach + _EPS).to(dtype))
            axes.append(cb)
        grid = torch.stack(torch.meshgrid(*axes, indexing="ij"), dim=-1)
        keep = keeps[0]
        for kd in keeps[1:]:
            keep = keep.unsqueeze(-1) * kd
        ks = tuple(grid.shape[:-1])
        self._maybe_chang(grid, keep)
        values = self._kernel_values(grid) * keep.unsqueeze(-1)
        values = values.movedim(-1, 0) * self.amplitude_scale(size)
        if self.separable:
            return values.reshape(self.in_channels, 1, *ks)
        return values.reshape(self.out_channels, self.in_channels, *ks)

    def crop_size(self, size: int | Sequence[int]) -> tuple[int, ...]:
        """Kernel size actually sampled for inputs of spatial ``size`` (after the crop)."""
        size = self._check_size(size, "size")
        return tuple(c.shape[0] for c in self._crop_axes(self.axis_coordinates(size)))


def _bucket(crop: int, full: int, causal: bool) -> int:
    """Round a crop of ``crop`` taps up to ``2^m`` (causal) or ``2^m + 1`` (centred), at most ``full``.

    Example:
        >>> _bucket(5, 101, False), _bucket(17, 101, False), _bucket(5, 100, True), _bucket(90, 101, False)
        (5, 17, 8, 101)
    """
    if causal:
        b = 1 << max(crop - 1, 0).bit_length()
    else:
        b = (1 << max(crop - 2, 0).bit_length()) + 1 if crop > 1 else 1
    return min(b, full)


class FlexConv(_FlexMixin, CKConv):
    """CKConv with a learnable Gaussian mask and dynamic cropping (see the module docstring).

    Takes every argument of :class:`~groupconv.nn.continuous.ckconv.CKConv` (default ``kernel_net="magnet"``)
    plus:

    Args:
        mask_init_sigma: initial mask width(s) on ``[-1, 1]`` (FlexConv/CCNN: 0.075).
        mask_init_mean: initial mean; default ``0`` (centred) or ``+1`` (causal: current step).
        mask_threshold: crop threshold ``tau`` (0.1).
        mask_kwargs: extra :class:`~groupconv.kernels.masks.GaussianMask` arguments.
        dynamic_cropping: crop the grid to the mask's support (default ``True``).

    Example:
        >>> layer = FlexConv(2, 3, data_dim=2, kernel_size=33, mask_init_sigma=0.2)
        >>> layer(torch.randn(1, 2, 32, 32)).shape, layer.crop_size(32)
        (torch.Size([1, 3, 32, 32]), (13, 13))
    """


class SeparableFlexConv(_FlexMixin, SeparableCKConv):
    """CCNN's layer: depthwise FlexConv (kernel net outputs ``C_in``) then a 1x1 channel mixer.

    Arguments as :class:`FlexConv`; two biases (depthwise ``bias`` ``(C_in,)`` and
    ``channel_mixer.bias``). The Chang scaling uses ``fan_in = kernel_numel``.

    Example:
        >>> layer = SeparableFlexConv(4, 6, data_dim=1, causal=True, mask_init_sigma=0.5)
        >>> layer(torch.randn(2, 4, 100)).shape
        torch.Size([2, 6, 100])
    """
