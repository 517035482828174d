"""The two kernel parameterisations of the regular group convolutions (mixins of their base).

* :class:`DiscreteKernelMixin`: a weight ``(C_out, C_in, [N_in,] *k)`` (or one coefficient per
  steerable basis function) expanded by the precomputed plan of
  :func:`~groupconv.nn.group.gconv_kernels.build_discrete_plan`;
* :class:`ContinuousKernelMixin`: a kernel net (:mod:`groupconv.kernels.registry`) read on the
  coordinates ``[h_i^{-1} y / r, embedding(h_i^{-1} h_j)]`` at the pixels, or on a fine
  base-frame grid projected on the steerable basis.

Both rely on the attributes set by ``_RegularGroupConv.__init__`` (channels, group, geometry,
grids, mask options) and on its ``_element_scale`` / ``_pair_mask``.
"""

from __future__ import annotations

import math
from typing import Any

import torch
from torch import Tensor, nn

from ...kernels.registry import build_kernel_net
from .gconv_basis import (
    steerable_continuous_coordinates,
    steerable_group_coordinates,
    steerable_matrices,
    supports_steerable,
)
from .gconv_kernels import (
    build_discrete_plan,
    continuous_coordinates,
    expand_discrete,
    mask_sampling,
    relative_index,
    spatial_sampling,
)

__all__ = ["DiscreteKernelMixin", "ContinuousKernelMixin", "resolve_mask", "pixel_mask_scale"]

_BASES = (None, "pixel", "steerable")


def resolve_mask(mask: str | bool | None, continuous: bool) -> str | None:
    """The layer's mask rule from its ``mask`` argument (see ``LiftingConv``'s docstring).

    Continuous kernels: ``None``/``True`` -> ``"hard"``, ``False`` -> ``"none"``; discrete ones:
    ``None`` stays ``None`` (auto: a hard disc for interpolated pixels, none for exact pixel
    permutations or the steerable basis), ``True`` -> ``"hard"``, ``False`` -> ``"none"``.
    Strings ``"hard"``, ``"smooth"`` (continuous only, checked by the discrete branch) and
    ``"none"`` are kept.

    Example:
        >>> resolve_mask(None, continuous=True), resolve_mask(None, continuous=False)
        ('hard', None)
    """
    if mask is None:
        return "hard" if continuous else None
    if mask is True:
        return "hard"
    if mask is False:
        return "none"
    if mask not in ("hard", "smooth", "none"):
        raise ValueError(f"mask must be None, True, False, 'hard', 'smooth' or 'none', got {mask!r}")
    return mask


def pixel_mask_scale(spatial_mask: Tensor, element_scale: Tensor, pair_mask: Tensor | None) -> Tensor:
    """``(..., N_out, N_in, K)`` factors of a pixel read-out: the spatial mask times the element
    scale ``|det h_i|^{-1} / N_in`` (``(..., N_out)``) times the group-support mask."""
    mask_scale = spatial_mask * element_scale.to(spatial_mask.dtype)[..., None, None]
    if pair_mask is not None:
        mask_scale = mask_scale * pair_mask.unsqueeze(-1).to(mask_scale.dtype)
    return mask_scale


class DiscreteKernelMixin:
    """Discrete weights transformed by index permutation, interpolation or a steerable basis."""

    mask: str | None  # set by the host layer (resolve_mask) before the kernel is built

    def _init_discrete_kernel(self, kernel_net_kwargs: dict[str, Any] | None, basis: str | None,
                              out_grid: Tensor, in_grid: Tensor | None, element_scale: Tensor,
                              pair_mask: Tensor | None, factory: dict[str, Any]) -> None:
        if kernel_net_kwargs:
            raise ValueError("kernel_net_kwargs needs kernel_net= (a continuous kernel)")
        if self._stochastic:
            raise ValueError(
                f"discrete kernels are not defined on the random grid of sampler={self.sampler!r}: "
                "pass kernel_net= (a continuous kernel) or a deterministic sampler"
            )
        if self.mask == "smooth":
            raise ValueError("mask='smooth' needs a continuous kernel (kernel_net=); discrete "
                             "kernels take mask=None, True/'hard' or False/'none'")
        self._build_discrete(out_grid, in_grid, element_scale, pair_mask, factory, basis)
        shape: tuple[int, ...] = (self.out_channels, self.in_channels)
        shape += () if self._lifting else (self.in_num_elements,)
        if self.basis == "steerable":  # one coefficient per basis function
            shape += (self._spatial_matrix.shape[0],)
        else:
            shape += self.kernel_size
        self.weight = nn.Parameter(torch.empty(*shape, **factory))
        taps = math.prod(self.kernel_size)
        fan_in = self.in_channels * self.in_num_elements * taps
        bound = self.in_num_elements / math.sqrt(fan_in)  # the 1/N_in Haar factor compensated
        if self.basis == "steerable":  # same expected kernel energy from S unit-norm functions
            bound *= math.sqrt(taps / shape[-1])
        nn.init.uniform_(self.weight, -bound, bound)
        self.kernel_net = None

    def _discrete_basis(self, basis: str | None, out_grid: Tensor, exact: bool) -> str:
        if basis not in _BASES:
            raise ValueError(f"basis must be None, 'pixel' or 'steerable', got {basis!r}")
        steerable_ok = supports_steerable(self.group, out_grid, self.kernel_size)
        if basis is None:  # auto: band-limited steerable basis where pixels do not rotate exactly
            return "steerable" if not exact and steerable_ok else "pixel"
        if basis == "steerable" and not steerable_ok:
            raise ValueError(
                f"basis='steerable' needs a 2D group of rotations/mirrors and a square odd kernel, "
                f"got {self.group.name} with kernel_size={self.kernel_size}"
            )
        return basis

    def _build_discrete(self, out_grid: Tensor, in_grid: Tensor | None, element_scale: Tensor,
                        pair_mask: Tensor | None, factory: dict[str, Any], basis: str | None) -> None:
        group = self.group
        index, weight, exact = spatial_sampling(group, out_grid, self.kernel_size, None)
        self.basis = self._discrete_basis(basis, out_grid, exact)
        matrices = None
        if self.basis == "steerable":
            matrices = steerable_matrices(group, out_grid, self.kernel_size,
                                          max_frequency=self._max_frequency, **self._steerable_window())
            exact = False
        else:
            if not exact and self.mask is None:
                self.mask = "hard"
            if self.mask == "hard":
                index, weight = mask_sampling(index, weight, self.kernel_size, self.mask_radius)
        if in_grid is None:  # lifting: one input "element"
            relative: Tensor | None = torch.zeros(out_grid.shape[0], 1, dtype=torch.long)
        else:  # index of h_i^-1 h_j in the input grid
            relative = relative_index(group, out_grid, in_grid)
            if relative is None:
                raise ValueError(
                    f"discrete kernels need h_i^-1 h_j in the input grid of {group.name} "
                    f"(a grid closed under the product), which num_elements={self.num_elements} / "
                    f"in_num_elements={self.in_num_elements} does not give: pass kernel_net="
                )
        plan = build_discrete_plan(self.out_channels, self.in_channels, index, weight, exact,
                                   relative, element_scale, pair_mask, matrices)
        self.mode = plan.mode
        self._zero_slot = plan.zero_slot
        self._backward_zero_slot = plan.backward_zero_slot
        self._scale = plan.scale
        self.exact = exact
        device, float_dtype = factory["device"], factory["dtype"] or torch.get_default_dtype()
        for name, table in (("_flat_index", plan.flat_index), ("_backward_index", plan.backward_index),
                            ("_group_index", plan.group_index)):
            self.register_buffer(name, None if table is None else table.to(device), persistent=False)
        matrix = plan.spatial_matrix
        self.register_buffer("_spatial_matrix", None if matrix is None else matrix.to(device, float_dtype),
                             persistent=False)

    def _discrete_weight(self) -> Tensor:
        weight = self.weight if not self._lifting else self.weight.unsqueeze(2)
        return expand_discrete(
            weight, self.mode, self.num_elements, self.kernel_size, self._flat_index,
            self._backward_index, self._zero_slot, self._scale, self._group_index,
            self._spatial_matrix, self._backward_zero_slot,
        )


class ContinuousKernelMixin:
    """A kernel net read at the transformed pixel coordinates, or projected on a steerable basis."""

    def _init_continuous_kernel(self, kernel_net: str | nn.Module, kernel_net_kwargs: dict[str, Any] | None,
                                basis: str | None, out_grid: Tensor, in_grid: Tensor | None,
                                element_scale: Tensor, pair_mask: Tensor | None,
                                factory: dict[str, Any]) -> None:
        coords, spatial_mask = continuous_coordinates(
            self.group, out_grid, in_grid, self.kernel_size, self.mask, self.mask_radius,
            self.mask_temperature,
        )
        self.basis = self._continuous_basis(basis, out_grid)
        device, param_dtype = factory["device"], factory["dtype"] or torch.get_default_dtype()
        if self.basis == "steerable":  # read the net on a fine grid, project, rotate the basis
            read_coords, mask_scale = self._steerable_coords(out_grid, in_grid, element_scale, None)
            # projection * element scale, before any pair mask: a forward with an explicit
            # in_grid reuses it on the input's device (no basis rebuilt, no host round trip)
            self.register_buffer("_steer_basis", mask_scale[:, :1].to(device=device, dtype=param_dtype),
                                 persistent=False)
            if pair_mask is not None:
                mask_scale = mask_scale * pair_mask.view(*pair_mask.shape, 1, 1).to(mask_scale)
        else:
            read_coords, mask_scale = coords, pixel_mask_scale(spatial_mask, element_scale, pair_mask)
        self.register_buffer("_coords", read_coords.to(device=device, dtype=param_dtype), persistent=False)
        self.register_buffer("_mask_scale", mask_scale.to(device=device, dtype=param_dtype), persistent=False)
        self.kernel_net = self._make_kernel_net(kernel_net, coords, spatial_mask, kernel_net_kwargs, factory)
        if self.basis == "steerable":  # keep the initial kernel energy of the pixel read-out
            with torch.no_grad():
                pixels = self.kernel_net(coords.to(device=device, dtype=param_dtype)) * spatial_mask.to(
                    device=device, dtype=param_dtype).unsqueeze(-1)
                projected = self._continuous_weight(self._coords, self._mask_scale)
                gain = pixels.norm() * element_scale.mean().item() / projected.norm().clamp_min(1e-12)
            # persistent: a loaded state_dict brings the gain its kernel net was trained with
            self.register_buffer("_steer_gain", gain.reshape(()).to(device=device, dtype=param_dtype))
        self.weight = None
        self.mode = "continuous"
        self.exact = False

    def _continuous_basis(self, basis: str | None, out_grid: Tensor) -> str:
        """``"steerable"`` (band-limited projection) or ``"pixel"`` (the net read at pixels)."""
        if basis not in _BASES:
            raise ValueError(f"basis must be None, 'pixel' or 'steerable', got {basis!r}")
        # grids drawn or learned at forward time (samplers, partial equivariance) keep the net
        # read at the pixels of their fresh grid
        ok = supports_steerable(self.group, out_grid, self.kernel_size) and not self._stochastic
        ok = ok and not self._grid_moves_in_forward
        if basis == "steerable" and not ok:
            raise ValueError(
                f"basis='steerable' needs a deterministic grid of a 2D group of rotations/mirrors "
                f"and a square odd kernel, got {self.group.name} with kernel_size={self.kernel_size}"
            )
        if basis is None:  # auto: where pixels do not rotate exactly
            exact = spatial_sampling(self.group, out_grid, self.kernel_size, None)[2]
            basis = "steerable" if ok and not exact else "pixel"
        return basis

    def _steerable_window(self) -> dict[str, Any]:
        """The steerable basis's window from the mask arguments (``None``/``True``: hard)."""
        return {"mask": "hard" if self.mask is None else self.mask, "mask_radius": self.mask_radius,
                "mask_temperature": self.mask_temperature}

    def _steerable_coords(self, out_grid: Tensor, in_grid: Tensor | None, element_scale: Tensor,
                          pair_mask: Tensor | None) -> tuple[Tensor, Tensor]:
        coords, projection = steerable_continuous_coordinates(
            self.group, out_grid, in_grid, self.kernel_size, max_frequency=self._max_frequency,
            **self._steerable_window(),
        )
        n_in = 1 if in_grid is None else in_grid.shape[0]
        mask_scale = projection.unsqueeze(1) * element_scale.view(-1, 1, 1, 1).to(projection)  # (N, 1, K, F)
        mask_scale = mask_scale.expand(-1, n_in, -1, -1)
        if pair_mask is not None:
            mask_scale = mask_scale * pair_mask.view(*pair_mask.shape, 1, 1).to(mask_scale)
        return coords, mask_scale.contiguous()

    def _make_kernel_net(self, kernel_net: str | nn.Module, coords: Tensor, spatial_mask: Tensor,
                         kwargs: dict[str, Any] | None, factory: dict[str, Any]) -> nn.Module:
        in_features = coords.shape[-1]
        net = build_kernel_net(kernel_net, in_features, self.out_channels * self.in_channels, kwargs,
                               defaults="group", **factory)
        if isinstance(kernel_net, str) and hasattr(net, "chang_initialize_"):
            # Chang scaling, measured on the coordinates: Var(psi) = 1 / (C_in K_eff). The
            # kernel is smooth along H, so its Haar mean (the 1/N_in sum) is an O(1)
            # integral and activations keep unit scale whatever N_in.
            keep = spatial_mask.reshape(-1) > 0.5
            param_dtype = factory["dtype"] or torch.get_default_dtype()
            points = coords.reshape(-1, in_features)[keep].to(device=factory["device"], dtype=param_dtype)
            taps_kept = max(1, int(round(float(spatial_mask[0, 0].sum()))))
            net.chang_initialize_(self.in_channels * taps_kept, gain=1.0, coords=points)
        return net

    def _continuous_weight(self, coords: Tensor, mask_scale: Tensor) -> Tensor:
        n_out, n_in, taps = mask_scale.shape[:3]
        if mask_scale.dim() == 4:  # steerable: (N_out, N_in, K, F) projection + rotated basis
            psi = mask_scale @ self.kernel_net(coords)  # (N_out, N_in, K, C_out C_in)
            gain = getattr(self, "_steer_gain", None)
            if gain is not None:
                psi = psi * gain
        else:
            psi = self.kernel_net(coords) * mask_scale.unsqueeze(-1)  # (N_out, N_in, K, C_out C_in)
        psi = psi.view(n_out, n_in, taps, self.out_channels, self.in_channels).permute(3, 0, 4, 1, 2)
        return psi.reshape(self.out_channels * n_out, self.in_channels * n_in, *self.kernel_size)

    def _fresh_continuous_weight(self, out_grid: Tensor, in_grid: Tensor | None) -> Tensor:
        """The expanded kernel on grids other than the precomputed ones (random or given)."""
        element_scale = self._element_scale(out_grid)
        pair_mask = self._pair_mask(out_grid, in_grid)
        dt = self._coords.dtype
        if self.basis == "steerable":  # deterministic out grid, explicit in_grid: on device
            coords = steerable_group_coordinates(self.group, out_grid, in_grid, self._coords[0, 0, :, :2])
            mask_scale = self._steer_basis.expand(-1, in_grid.shape[0], -1, -1)
            if pair_mask is not None:
                mask_scale = mask_scale * pair_mask.view(*pair_mask.shape, 1, 1).to(mask_scale)
        else:
            coords, spatial_mask = continuous_coordinates(
                self.group, out_grid, in_grid, self.kernel_size, self.mask, self.mask_radius,
                self.mask_temperature,
            )
            mask_scale = pixel_mask_scale(spatial_mask, element_scale, pair_mask)
        return self._continuous_weight(coords.to(dt), mask_scale.to(dt))
