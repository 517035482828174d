"""Regular lifting and group convolutions on R^d x| H (Part II of Romero's dissertation).

* :class:`LiftingConv`: ``(B, C_in, *spatial) -> (B, C_out, N, *spatial)``
* :class:`GroupConv`:   ``(B, C_in, N_in, *spatial) -> (B, C_out, N, *spatial)``

for ``d = 1, 2, 3`` spatial dimensions and ANY :class:`~groupconv.groups.Group` acting on R^d
(the linear part H; translations are the convolution itself). Each forward is one dense
``conv{1,2,3}d`` after a kernel expansion (``groupconv.nn.group.gconv_kernels``) whose cost does not
depend on the batch or the image size.

Group grids. A finite group uses all its elements (``num_elements`` may select a subgroup
grid); a continuous one needs ``num_elements=N`` (the deterministic uniform ``group.grid(N)``)
or an explicit ``sampler=`` from :mod:`groupconv.sampling`. A random sampler (stratified,
Haar...) draws a new output grid at every training forward (equivariance in expectation) and
uses ``group.grid(N)`` in eval mode; pass the previous layer's grid as ``in_grid`` (see
``forward_with_grid``) when stacking random-grid layers. A sampler with ``per="batch"`` draws
one grid per batch element (returned as ``(B, N, *element_shape)``; a following ``GroupConv``
takes it as ``in_grid``): the ``B`` expanded kernels come from one batched kernel-net call and
the layer runs ONE grouped conv (``groups=B``). Continuous kernels only.

Kernels.

* discrete (default): a weight ``(C_out, C_in, [N_in,] *k)`` transformed by each ``h_i``:
  exactly by index permutation when ``matrix(h_i)`` maps the centred kernel grid onto itself
  (C4, D4, the cube group) and by d-linear interpolation otherwise (with a circular mask).
  On the group axis the kernel is indexed by ``h_i^{-1} h_j``, which must lie in the input grid
  (grids closed under the product; random grids need a continuous kernel).
* continuous (``kernel_net="siren" | "mlp" | "rff" | nn.Module``): a kernel network evaluated on
  ``[h_i^{-1} y / r, group.embedding(h_i^{-1} h_j)]`` (``y / r`` in ``[-1, 1]``; the embedding
  is periodic ``(cos, sin)`` for compact factors), times a circular or smooth spatial mask.

Normalisation: the kernel of ``h_i`` is multiplied by ``|det h_i|^{-1}`` (scale groups) and the
group-conv sum over the input grid by ``1 / N_in`` (Haar normalisation: a mean over the grid,
so activations do not scale with ``|H|``; discrete weights are initialised to compensate, so
at initialisation they match ``torch.nn.Conv2d`` statistics with fan-in ``C_in N_in k^d``).
``group_support`` restricts the group axis to ``distance(h_i, h_j) <= group_support`` (the
locality along the scale axis of scale-translation networks).

Exactness: rotations and mirrors need odd kernel sizes; ``padding`` follows ``torch.nn.Conv2d``
(int, tuple, ``"same"``, ``"valid"``). ``stride > 1`` commutes with rotations only when
``(size + 2 padding - dilation (k - 1) - 1)`` is divisible by the stride: a warning is issued
once per layer otherwise.

In eval mode the expanded kernel is cached (a non-persistent buffer: ``state_dict`` is the same
in train and eval mode) whenever no gradient to the parameters is needed (``torch.no_grad``,
``inference_mode`` or frozen parameters), and recomputed when a parameter changes (in-place
version counters, e.g. an optimizer step or ``load_state_dict``) or on ``train()``.
:meth:`export` turns a layer with a deterministic grid into a plain
``torch.nn.Conv{1,2,3}d`` acting on ``x.flatten(1, 2)``.

Example:
    >>> import torch
    >>> from groupconv.groups import CyclicGroup
    >>> lift = LiftingConv(3, 4, CyclicGroup(4), 3, padding="same")
    >>> gconv = GroupConv(4, 5, CyclicGroup(4), 3, padding="same")
    >>> gconv(lift(torch.randn(2, 3, 9, 9))).shape
    torch.Size([2, 5, 4, 9, 9])
"""

from __future__ import annotations

import inspect
import math
import warnings
from collections.abc import Sequence
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ..._validation import (
    check_conv_geometry,
    check_input_dtype,
    check_kernel_fits,
    check_positive_int,
    check_rotated_kernel,
    check_strict_kwargs,
    check_tensor,
)
from ...groups.base import Group
from ...spaces import GridField, GroupGridField
from .gconv_basis import (
    capped_max_frequency,
    default_max_frequency,
    steerable_continuous_coordinates,
    steerable_group_coordinates,
    steerable_matrices,
    supports_steerable,
)
from .gconv_batched import PerBatchGridMixin
from .gconv_kernels import (
    as_tuple,
    build_discrete_plan,
    continuous_coordinates,
    expand_discrete,
    mask_sampling,
    relative_index,
    resolve_grid,
    spatial_sampling,
)

__all__ = ["LiftingConv", "GroupConv"]

_CONV = {1: F.conv1d, 2: F.conv2d, 3: F.conv3d}
_CONV_MODULE = {1: nn.Conv1d, 2: nn.Conv2d, 3: nn.Conv3d}
_KERNEL_NET_DEFAULTS: dict[str, dict[str, Any]] = {
    "siren": {"hidden_features": 32, "num_layers": 3, "omega_0": 10.0},
    "mlp": {"hidden_features": 32, "num_layers": 3, "activation": "gelu", "init": "kaiming"},
    "rff": {},
}


class _RegularGroupConv(PerBatchGridMixin, nn.Module):
    """Shared machinery of :class:`LiftingConv` and :class:`GroupConv`."""

    _lifting: bool = False

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        group: Group,
        kernel_size: int | Sequence[int],
        *,
        stride: int | Sequence[int] = 1,
        padding: int | Sequence[int] | str = 0,
        dilation: int | Sequence[int] = 1,
        bias: bool = True,
        num_elements: int | None = None,
        sampler: Any = None,
        in_num_elements: int | None = None,
        kernel_net: str | nn.Module | None = None,
        kernel_net_kwargs: dict[str, Any] | None = None,
        mask: str | bool | None = None,
        mask_radius: float = 1.0,
        mask_temperature: float = 10.0,
        group_support: float | None = None,
        basis: str | None = None,
        max_frequency: int | None = None,
        spatial_dims: int | None = None,
        device: torch.device | str | None = None,
        dtype: torch.dtype | None = None,
    ) -> None:
        super().__init__()
        if not isinstance(group, Group):
            raise TypeError(f"group must be a groupconv.groups.Group, got {type(group).__name__}")
        self.in_channels = check_positive_int(in_channels, "in_channels")
        self.out_channels = check_positive_int(out_channels, "out_channels")
        self.group = group
        d = group.space_dim if spatial_dims is None else check_positive_int(spatial_dims, "spatial_dims")
        if d not in (1, 2, 3) or d != group.space_dim:
            raise ValueError(
                f"spatial_dims must be 1, 2 or 3 and equal group.space_dim={group.space_dim} "
                f"({group.name} acts on R^{group.space_dim}), got {d}"
            )
        self.spatial_dims = d
        self.kernel_size = as_tuple(kernel_size, d, "kernel_size")
        if any(k < 1 for k in self.kernel_size):
            raise ValueError(f"kernel_size must be positive, got {self.kernel_size}")
        self.stride = as_tuple(stride, d, "stride")
        self.dilation = as_tuple(dilation, d, "dilation")
        if isinstance(padding, str):
            if padding not in ("same", "valid"):
                raise ValueError(f"padding must be an int, a tuple, 'same' or 'valid', got {padding!r}")
            if padding == "same" and any(s != 1 for s in self.stride):
                raise ValueError(f"padding='same' needs stride=1 (as torch.nn.Conv2d), got {self.stride}")
            self.padding: tuple[int, ...] | str = padding
        else:
            self.padding = as_tuple(padding, d, "padding")
        check_conv_geometry(self.kernel_size, self.stride, self.padding, self.dilation, type(self).__name__)
        self.sampler = sampler
        self.group_support = group_support
        out_grid, self._stochastic = resolve_grid(
            group, num_elements, sampler, type(self).__name__,
            per_batch=self._supports_per_batch_grids(),
        )
        # one random grid per batch element in training (continuous kernels; checked below)
        self._per_batch = self._stochastic and bool(getattr(sampler, "per_batch_element", False))
        self.num_elements = int(out_grid.shape[0])
        if self._lifting:
            in_grid = None
            self.in_num_elements = 1
        elif in_num_elements is None or in_num_elements == self.num_elements:
            in_grid = out_grid
            self.in_num_elements = self.num_elements
        else:
            in_grid, _ = resolve_grid(group, in_num_elements, None, type(self).__name__)
            self.in_num_elements = int(in_grid.shape[0])
        self._check_kernel_size(out_grid)
        self.register_buffer("out_grid", out_grid.to(device), persistent=False)
        self.register_buffer("in_grid", None if in_grid is None else in_grid.to(device), persistent=False)
        K = math.prod(self.kernel_size)
        fk = {"device": device, "dtype": dtype}

        # -- kernels ------------------------------------------------------------------------
        self.continuous = kernel_net is not None
        self.basis: str | None = None
        self._max_frequency = (default_max_frequency if max_frequency is None
                               else capped_max_frequency(max_frequency))
        if mask is None:
            mask = "hard" if self.continuous else None
        elif mask is True:
            mask = "hard"
        elif mask is False:
            mask = "none"
        if mask not in (None, "hard", "smooth", "none"):
            raise ValueError(f"mask must be None, True, False, 'hard', 'smooth' or 'none', got {mask!r}")
        self.mask = mask
        self.mask_radius = float(mask_radius)
        self.mask_temperature = float(mask_temperature)
        scale = self._element_scale(out_grid)  # (N_out,) = |det h_i|^-1 / N_in
        pair = self._pair_mask(out_grid, in_grid)
        if self.continuous:
            if self.mask is None:
                self.mask = "hard"
            coords, m = continuous_coordinates(
                group, out_grid, in_grid, self.kernel_size, self.mask, self.mask_radius,
                self.mask_temperature,
            )
            self.basis = self._continuous_basis(basis, out_grid)
            if self.basis == "steerable":  # read the net on a fine grid, project, rotate the basis
                sc, ms = self._steerable_coords(out_grid, in_grid, scale, None)
                # A * scale, before any pair mask: a forward with an explicit in_grid reuses it
                self.register_buffer("_steer_basis", ms[:, :1].to(device=device, dtype=dtype
                                                                 or torch.get_default_dtype()),
                                     persistent=False)
                if pair is not None:
                    ms = ms * pair.view(*pair.shape, 1, 1).to(ms)
            else:
                sc, ms = coords, m * scale.view(-1, 1, 1).to(m.dtype)
                if pair is not None:
                    ms = ms * pair.unsqueeze(-1).to(ms.dtype)
            pdt = dtype or torch.get_default_dtype()
            self.register_buffer("_coords", sc.to(device=device, dtype=pdt), persistent=False)
            self.register_buffer("_mask_scale", ms.to(device=device, dtype=pdt), persistent=False)
            self.kernel_net = self._make_kernel_net(kernel_net, coords, m, kernel_net_kwargs, fk)
            if self.basis == "steerable":  # keep the initial kernel energy of the pixel read-out
                with torch.no_grad():
                    pix = self.kernel_net(coords.to(device=device, dtype=pdt)) * m.to(
                        device=device, dtype=pdt).unsqueeze(-1)
                    ste = self._continuous_weight(self._coords, self._mask_scale)
                    gain = pix.norm() * scale.mean().item() / ste.norm().clamp_min(1e-12)
                # persistent: a loaded state_dict brings the gain its kernel net was trained with
                self.register_buffer("_steer_gain", gain.reshape(()).to(device=device, dtype=pdt))
            self.weight = None
            self.mode = "continuous"
            self.exact = False
        else:
            if kernel_net_kwargs:
                raise ValueError("kernel_net_kwargs needs kernel_net= (a continuous kernel)")
            if self._stochastic:
                raise ValueError(
                    f"discrete kernels are not defined on the random grid of sampler={sampler!r}: "
                    "pass kernel_net= (a continuous kernel) or a deterministic sampler"
                )
            if self.mask == "smooth":
                raise ValueError("mask='smooth' needs a continuous kernel (kernel_net=); discrete "
                                 "kernels take mask=None, True/'hard' or False")
            self._build_discrete(group, out_grid, in_grid, scale, pair, device, dtype, basis)
            shape = (self.out_channels, self.in_channels)
            shape += () if self._lifting else (self.in_num_elements,)
            if self.basis == "steerable":  # one coefficient per basis function
                shape += (self._spatial_matrix.shape[0],)
            else:
                shape += self.kernel_size
            self.weight = nn.Parameter(torch.empty(*shape, **fk))
            fan_in = self.in_channels * self.in_num_elements * K
            bound = self.in_num_elements / math.sqrt(fan_in)  # the 1/N_in Haar factor compensated
            if self.basis == "steerable":  # same expected kernel energy from S unit-norm functions
                bound *= math.sqrt(K / shape[-1])
            nn.init.uniform_(self.weight, -bound, bound)
            self.kernel_net = None
        if bias:
            self.bias = nn.Parameter(torch.empty(self.out_channels, **fk))
            fan_in = self.in_channels * self.in_num_elements * K
            nn.init.uniform_(self.bias, -1 / math.sqrt(fan_in), 1 / math.sqrt(fan_in))
        else:
            self.register_parameter("bias", None)
        self.register_buffer("_kernel_cache", None, persistent=False)
        self._cache_key: tuple | None = None
        self._warned_stride = False

    # -- construction helpers ----------------------------------------------------------------
    @classmethod
    def _supports_per_batch_grids(cls) -> bool:
        """Per-batch grids bypass the shared-grid hooks: only for classes that keep them."""
        hooks = ("forward_with_grid", "_grids_for_forward", "_compute_weight", "_continuous_weight",
                 "_element_scale", "_expanded", "_make_kernel_net")
        return all(getattr(cls, h) is getattr(_RegularGroupConv, h) for h in hooks)

    def _check_kernel_size(self, out_grid: Tensor) -> None:
        M = self.group.matrix(out_grid).to(torch.float64)
        eye = torch.eye(self.spatial_dims, dtype=torch.float64)
        moves = bool(((M - eye).abs() > 1e-9).any())
        if moves and any(k % 2 == 0 for k in self.kernel_size):
            raise ValueError(
                f"kernel_size must be odd for {self.group.name}, whose elements rotate, mirror or "
                f"scale the kernel about its centre (exact equivariance), got {self.kernel_size}"
            )
        if bool(((M - M.diagonal(dim1=-2, dim2=-1).diag_embed()).abs() > 1e-9).any()):  # rotates
            check_rotated_kernel(self.kernel_size, self.padding, repr(self.group), type(self).__name__,
                                 self.stride, self.dilation)

    def _element_scale(self, out_grid: Tensor) -> Tensor:
        det = self.group.det(out_grid).to(torch.float64).abs()
        return det.reciprocal() / self.in_num_elements

    def _pair_mask(self, out_grid: Tensor, in_grid: Tensor | None) -> Tensor | None:
        if self.group_support is None or in_grid is None:
            return None
        ne = len(self.group.element_shape)
        dist = self.group.distance(out_grid.unsqueeze(-ne - 1), in_grid.unsqueeze(-ne - 2))
        return dist <= float(self.group_support) + 1e-9

    def _continuous_basis(self, basis: str | None, out_grid: Tensor) -> str:
        """``"steerable"`` (band-limited projection) or ``"pixel"`` (the net read at pixels)."""
        if basis not in (None, "pixel", "steerable"):
            raise ValueError(f"basis must be None, 'pixel' or 'steerable', got {basis!r}")
        # grids drawn or learned at forward time (samplers, subclasses overriding the grid hook,
        # e.g. partial equivariance) keep the net read at the pixels of their fresh grid
        own_grids = type(self)._grids_for_forward is _RegularGroupConv._grids_for_forward
        ok = supports_steerable(self.group, out_grid, self.kernel_size) and not self._stochastic
        ok = ok and own_grids
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

    def _steerable_coords(self, out_grid, in_grid, scale, pair) -> tuple[Tensor, Tensor]:
        coords, A = steerable_continuous_coordinates(
            self.group, out_grid, in_grid, self.kernel_size, max_frequency=self._max_frequency,
            **self._steerable_window(),
        )
        n_in = 1 if in_grid is None else in_grid.shape[0]
        ms = A.unsqueeze(1) * scale.view(-1, 1, 1, 1).to(A)  # (N_out, 1, K, F)
        ms = ms.expand(-1, n_in, -1, -1)
        if pair is not None:
            ms = ms * pair.view(*pair.shape, 1, 1).to(ms)
        return coords, ms.contiguous()

    def _build_discrete(self, group, out_grid, in_grid, scale, pair, device, dtype, basis=None) -> None:
        index, weight, exact = spatial_sampling(group, out_grid, self.kernel_size, None)
        if basis not in (None, "pixel", "steerable"):
            raise ValueError(f"basis must be None, 'pixel' or 'steerable', got {basis!r}")
        if basis is None:  # auto: band-limited steerable basis where pixels do not rotate exactly
            basis = "steerable" if not exact and supports_steerable(
                group, out_grid, self.kernel_size) else "pixel"
        elif basis == "steerable" and not supports_steerable(group, out_grid, self.kernel_size):
            raise ValueError(
                f"basis='steerable' needs a 2D group of rotations/mirrors and a square odd kernel, "
                f"got {group.name} with kernel_size={self.kernel_size}"
            )
        self.basis = basis
        matrices = None
        if basis == "steerable":
            matrices = steerable_matrices(group, out_grid, self.kernel_size,
                                          max_frequency=self._max_frequency, **self._steerable_window())
            exact = False
        else:
            if not exact and self.mask is None:
                self.mask = "hard"
            if self.mask in ("hard", "smooth"):
                index, weight = mask_sampling(index, weight, self.kernel_size, self.mask_radius)
        if in_grid is None:
            gidx = torch.zeros(out_grid.shape[0], 1, dtype=torch.long)
        else:
            gidx = relative_index(group, out_grid, in_grid)
            if gidx is None:
                raise ValueError(
                    f"discrete kernels need h_i^-1 h_j in the input grid of {group.name} "
                    f"(a grid closed under the product), which num_elements={self.num_elements} / "
                    f"in_num_elements={self.in_num_elements} does not give: pass kernel_net="
                )
        plan = build_discrete_plan(
            self.out_channels, self.in_channels, index, weight, exact, gidx, scale, pair, matrices
        )
        self.mode = plan.mode
        self._zero_slot = plan.zero_slot
        self._backward_zero_slot = plan.backward_zero_slot
        self._scale = plan.scale
        self.exact = exact

        def dev(t: Tensor | None, floating: bool = False) -> Tensor | None:
            if t is None:
                return None
            return t.to(device, dtype or torch.get_default_dtype()) if floating else t.to(device)

        self.register_buffer("_flat_index", dev(plan.flat_index), persistent=False)
        self.register_buffer("_backward_index", dev(plan.backward_index), persistent=False)
        self.register_buffer("_group_index", dev(plan.group_index), persistent=False)
        self.register_buffer("_spatial_matrix", dev(plan.spatial_matrix, True), persistent=False)

    def _make_kernel_net(self, kernel_net, coords, m, kwargs, fk) -> nn.Module:
        in_features = coords.shape[-1]
        out_features = self.out_channels * self.in_channels
        if isinstance(kernel_net, nn.Module):
            if kwargs:
                raise ValueError("kernel_net_kwargs only applies to kernel_net given by name")
            n_in = getattr(kernel_net, "in_features", in_features)
            n_out = getattr(kernel_net, "out_features", out_features)
            if (n_in, n_out) != (in_features, out_features):
                raise ValueError(
                    f"kernel_net must map {in_features} coordinates to out_channels*in_channels="
                    f"{out_features} values, got in_features={n_in}, out_features={n_out}"
                )
            return kernel_net
        if not isinstance(kernel_net, str) or kernel_net.lower() not in _KERNEL_NET_DEFAULTS:
            raise ValueError(
                f"kernel_net must be 'siren', 'mlp', 'rff' or an nn.Module, got {kernel_net!r}"
            )
        from ... import kernels as _kernels

        name = kernel_net.lower()
        try:
            cls = getattr(_kernels, name.upper())
        except AttributeError:  # package __init__ not there: the module itself
            from ...kernels import nets as _nets

            cls = getattr(_nets, name.upper())
        options = {**_KERNEL_NET_DEFAULTS[name], **(kwargs or {})}
        net = cls(in_features, out_features, **options, **fk)
        if hasattr(net, "chang_initialize_"):
            # Chang scaling, measured on the coordinates: Var(psi) = 1 / (C_in K_eff). The
            # kernel is smooth along H, so its Haar mean (the 1/N_in sum) is an O(1)
            # integral and activations keep unit scale whatever N_in.
            keep = m.reshape(-1) > 0.5
            pdt = fk["dtype"] or torch.get_default_dtype()
            pts = coords.reshape(-1, in_features)[keep].to(device=fk["device"], dtype=pdt)
            k_eff = max(1, int(round(float(m[0, 0].sum()))))
            net.chang_initialize_(self.in_channels * k_eff, gain=1.0, coords=pts)
        return net

    # -- kernel expansion --------------------------------------------------------------------
    def _grids_for_forward(self, in_grid: Tensor | None, generator) -> tuple[Tensor, Tensor | None, bool]:
        if self.training and getattr(self, "_per_batch", False):
            raise ValueError(
                f"sampler={self.sampler!r} draws one grid per batch element: there is no single "
                "expanded kernel in training mode (use forward / forward_with_grid, or eval())"
            )
        fresh = self.training and self._stochastic
        out_grid = self.out_grid
        if fresh:
            out_grid = self.sampler(
                self.group, self.num_elements, generator=generator,
                device=self.out_grid.device, dtype=self.out_grid.dtype,
            )
        grid_in = self.in_grid
        if in_grid is not None and not self._lifting:
            if not self.continuous:
                raise ValueError("in_grid is only supported with continuous kernels (kernel_net=)")
            grid_in = self.group.check_element(in_grid, "in_grid")
            if grid_in.dim() != 1 + len(self.group.element_shape) or grid_in.shape[0] != self.in_num_elements:
                raise ValueError(
                    f"in_grid must hold in_num_elements={self.in_num_elements} elements, "
                    f"got shape {tuple(grid_in.shape)}"
                )
            fresh = True
        return out_grid, grid_in, fresh

    def _continuous_weight(self, coords: Tensor, mask_scale: Tensor) -> Tensor:
        n_out, n_in, K = mask_scale.shape[:3]
        if mask_scale.dim() == 4:  # steerable: (N_out, N_in, K, F) projection + rotated basis
            psi = mask_scale @ self.kernel_net(coords)  # (N_out, N_in, K, C_out C_in)
            gain = getattr(self, "_steer_gain", None)
            if gain is not None:
                psi = psi * gain
        else:
            psi = self.kernel_net(coords) * mask_scale.unsqueeze(-1)  # (N_out, N_in, K, C_out C_in)
        psi = psi.view(n_out, n_in, K, self.out_channels, self.in_channels).permute(3, 0, 4, 1, 2)
        return psi.reshape(self.out_channels * n_out, self.in_channels * n_in, *self.kernel_size)

    def _compute_weight(self, out_grid: Tensor, in_grid: Tensor | None, fresh: bool) -> Tensor:
        if not self.continuous:
            w = self.weight if not self._lifting else self.weight.unsqueeze(2)
            return expand_discrete(
                w, self.mode, self.num_elements, self.kernel_size, self._flat_index,
                self._backward_index, self._zero_slot, self._scale, self._group_index,
                self._spatial_matrix, self._backward_zero_slot,
            )
        if not fresh:
            return self._continuous_weight(self._coords, self._mask_scale)
        if self.basis == "steerable":  # deterministic out grid, explicit in_grid: on device
            sc = steerable_group_coordinates(self.group, out_grid, in_grid, self._coords[0, 0, :, :2])
            ms = self._steer_basis.expand(-1, in_grid.shape[0], -1, -1)
            pair = self._pair_mask(out_grid, in_grid)
            if pair is not None:
                ms = ms * pair.view(*pair.shape, 1, 1).to(ms)
            return self._continuous_weight(sc, ms)
        coords, m = continuous_coordinates(
            self.group, out_grid, in_grid, self.kernel_size, self.mask, self.mask_radius,
            self.mask_temperature,
        )
        scale = self._element_scale(out_grid).to(m.dtype)
        ms = m * scale.view(-1, 1, 1)
        pair = self._pair_mask(out_grid, in_grid)
        if pair is not None:
            ms = ms * pair.unsqueeze(-1).to(ms.dtype)
        dt = self._coords.dtype
        return self._continuous_weight(coords.to(dt), ms.to(dt))

    def _param_key(self) -> tuple:
        key = []
        for t in list(self.parameters()) + [b for n, b in self.named_buffers() if n != "_kernel_cache"]:
            key.append((t._version, t.data_ptr(), t.dtype, t.device))
        return (torch.is_inference_mode_enabled(), *key)

    def expanded_weight(
        self, in_grid: Tensor | None = None, generator: torch.Generator | None = None
    ) -> Tensor:
        """The dense kernel ``(C_out N, C_in N_in, *k)`` of the current grid (cached in eval)."""
        return self._expanded(in_grid, generator)[0]

    def _expanded(self, in_grid, generator) -> tuple[Tensor, Tensor]:
        out_grid, grid_in, fresh = self._grids_for_forward(in_grid, generator)
        # no cache under torch.compile: the key reads version counters and the inference-mode
        # flag, which dynamo cannot trace (the compiled graph re-expands the kernel anyway)
        cacheable = (
            not self.training
            and not fresh
            and not torch.compiler.is_compiling()
            and (not torch.is_grad_enabled() or not any(p.requires_grad for p in self.parameters()))
        )
        if cacheable:
            key = self._param_key()
            if self._kernel_cache is not None and self._cache_key == key:
                return self._kernel_cache, out_grid
            with torch.no_grad():
                w = self._compute_weight(out_grid, grid_in, fresh)
            self._kernel_cache = w
            self._cache_key = key
            return w, out_grid
        return self._compute_weight(out_grid, grid_in, fresh), out_grid

    def train(self, mode: bool = True) -> _RegularGroupConv:
        self._kernel_cache = None
        self._cache_key = None
        return super().train(mode)

    # -- forward -----------------------------------------------------------------------------
    def _check_input(self, x: object) -> Tensor:
        x = check_tensor(x, "x")
        d = self.spatial_dims
        if self._lifting:
            if x.dim() != 2 + d or x.shape[1] != self.in_channels:
                raise ValueError(
                    f"x must have shape (B, in_channels={self.in_channels}, *{d} spatial dims), "
                    f"got shape {tuple(x.shape)}"
                )
        elif x.dim() != 3 + d or x.shape[1] != self.in_channels or x.shape[2] != self.in_num_elements:
            raise ValueError(
                f"x must have shape (B, in_channels={self.in_channels}, group axis "
                f"N_in={self.in_num_elements}, *{d} spatial dims), got shape {tuple(x.shape)}"
            )
        if not x.is_floating_point():
            raise TypeError(f"x must be a floating-point tensor, got dtype {x.dtype}")
        name = type(self).__name__
        check_input_dtype(x, self.weight if self.weight is not None else self._mask_scale, name)
        check_kernel_fits(x.shape[-d:], self.kernel_size, self.padding, self.dilation, name)
        if not self._warned_stride and any(s > 1 for s in self.stride):
            self._warn_stride(x.shape[-d:])
        return x

    def _warn_stride(self, size: Sequence[int]) -> None:
        pad = (0,) * self.spatial_dims if isinstance(self.padding, str) else self.padding
        for n, p, k, s, dl in zip(size, pad, self.kernel_size, self.stride, self.dilation, strict=True):
            if (n + 2 * p - dl * (k - 1) - 1) % s != 0:
                warnings.warn(
                    f"{type(self).__name__}: stride {self.stride} on spatial size {tuple(size)} "
                    f"(padding {self.padding}) does not tile the map symmetrically, so the layer is "
                    "not exactly equivariant to rotations/mirrors; choose sizes with "
                    "(size + 2 padding - dilation (k - 1) - 1) divisible by the stride",
                    stacklevel=3,
                )
                self._warned_stride = True
                return

    def forward_with_grid(
        self, x: Tensor, in_grid: Tensor | None = None, generator: torch.Generator | None = None
    ) -> tuple[Tensor, Tensor]:
        """``(y, out_grid)``: the output and the grid of H it is sampled on.

        ``in_grid`` (group conv, continuous kernels only) is the grid of the input's group axis
        when it differs from the layer's deterministic one (stacked random-grid layers): shared
        ``(N_in, *element_shape)`` or one per batch element ``(B, N_in, *element_shape)``. With
        a ``per="batch"`` sampler (training) or a batched ``in_grid``, ``out_grid`` is
        ``(B, N, *element_shape)`` and the layer runs one grouped conv over the batch.
        """
        x = self._check_input(x)
        if self._per_batch_call(in_grid):
            return self._forward_per_batch(x, in_grid, generator)
        weight, out_grid = self._expanded(in_grid, generator)
        B = x.shape[0]
        inp = x if self._lifting else x.flatten(1, 2)
        bias = self.bias
        if bias is not None:  # = bias.repeat_interleave(N), without its index bookkeeping
            bias = bias.unsqueeze(1).expand(-1, self.num_elements).reshape(-1)
        y = _CONV[self.spatial_dims](inp, weight, bias, self.stride, self.padding, self.dilation)
        return y.view(B, self.out_channels, self.num_elements, *y.shape[2:]), out_grid

    def forward(
        self, x: Tensor, in_grid: Tensor | None = None, generator: torch.Generator | None = None
    ) -> Tensor:
        return self.forward_with_grid(x, in_grid, generator)[0]

    # -- export / fields ---------------------------------------------------------------------
    @torch.no_grad()
    def export(self) -> nn.Module:
        """A plain ``torch.nn.Conv{d}d`` (eval mode) computing this layer on flattened channels.

        ``y = layer(x)`` equals ``conv(x.flatten(1, 2)).unflatten(1, (C_out, N))`` (lifting:
        ``conv(x)``), with the expanded weight of the deterministic grid.
        """
        was = self.training
        self.eval()
        try:
            w = self.expanded_weight().clone()
        finally:
            self.train(was)
        conv = _CONV_MODULE[self.spatial_dims](
            w.shape[1], w.shape[0], self.kernel_size, stride=self.stride, padding=self.padding,
            dilation=self.dilation, bias=self.bias is not None, device=w.device, dtype=w.dtype,
        )
        conv.weight.copy_(w)
        if self.bias is not None:
            conv.bias.copy_(self.bias.repeat_interleave(self.num_elements))
        return conv.eval()

    def _grid_field(self, grid: Tensor) -> GroupGridField:
        return GroupGridField(self.group, grid, self.spatial_dims)

    @property
    def out_field(self) -> GroupGridField:
        """How the group acts on the output: a ``GroupGridField`` on the deterministic grid."""
        return self._grid_field(self.out_grid)

    def extra_repr(self) -> str:
        s = (
            f"{self.in_channels}, {self.out_channels}, group={self.group!r}, "
            f"kernel_size={self.kernel_size}, N={self.num_elements}"
        )
        if not self._lifting:
            s += f", N_in={self.in_num_elements}"
        s += f", stride={self.stride}, padding={self.padding}, kernel={self.mode}"
        if getattr(self, "basis", "pixel") == "steerable":
            s += ", basis=steerable"
        if self.mask:
            s += f", mask={self.mask}"
        if self.bias is None:
            s += ", bias=False"
        return s


class LiftingConv(_RegularGroupConv):
    """Lifting convolution ``(B, C_in, *spatial) -> (B, C_out, N, *spatial)`` on R^d x| H.

    ``y[b, o, i, x] = sum_{c, y} f[b, c, x + y] |det h_i|^{-1} psi_{o c}(h_i^{-1} y) + bias[o]``
    (a correlation, like ``torch.nn.Conv2d``), so rotating the input by ``g`` rotates the
    output maps and moves the group axis to ``g^{-1} h_i`` (C_n: ``torch.roll`` by +k).

    Args:
        in_channels, out_channels: channels of the input and output (fields).
        group: the linear part H (any :class:`~groupconv.groups.Group` acting on R^d).
        kernel_size: int or tuple of d ints (odd when H rotates, mirrors or scales).
        stride, padding, dilation, bias: as ``torch.nn.Conv{d}d``.
        num_elements: size N of the grid of H (finite groups: defaults to the order).
        sampler: a ``groupconv.sampling`` sampler (random samplers need ``kernel_net``).
        kernel_net: ``None`` (discrete weights), ``"siren"``, ``"mlp"``, ``"rff"`` or a module
            mapping ``(..., d + e)`` coordinates to ``(..., C_out * C_in)``.
        kernel_net_kwargs: options of the named kernel net.
        mask: ``None`` (auto: on for interpolated and continuous kernels), ``True``/``"hard"``,
            ``"smooth"``, ``False``/``"none"``; ``mask_radius``/``mask_temperature`` shape it
            (radius in units of the kernel half-width; on the steerable basis in units of its
            disc ``(k - 1) / 2 + 1/2``, see
            :func:`~groupconv.nn.group.gconv_basis.steerable_window`).
        basis: ``None`` (auto): ``"steerable"`` for deterministic 2D rotation/mirror grids that
            do not permute pixels (C_N with N > 4, SO(2) sampled): a band-limited basis of
            rings x circular harmonics evaluated at the rotated positions
            (:mod:`groupconv.nn.group.gconv_basis`; a discrete ``weight`` holds one coefficient per
            basis function; a kernel net is read on a fine base-frame grid and projected on
            the basis, the mask is then the basis's disc), ``"pixel"`` otherwise (exact
            gathers for C4/D4, interpolation or the net read at the pixels else).
        max_frequency: steerable basis only: ``None`` (the default per-ring cut-off of
            :func:`~groupconv.nn.group.gconv_basis.default_max_frequency`) or an int ``M``:
            ``m <= min(M, floor(2 r))`` on every ring (more expressive, aliases more).
        spatial_dims: d (default ``group.space_dim``).

    Example:
        >>> import torch
        >>> from groupconv.groups import CyclicGroup
        >>> layer = LiftingConv(1, 2, CyclicGroup(4), 3)
        >>> x = torch.randn(1, 1, 7, 7)
        >>> y1 = layer(torch.rot90(x, 1, dims=(-2, -1)))
        >>> y2 = torch.roll(torch.rot90(layer(x), 1, dims=(-2, -1)), 1, dims=2)
        >>> torch.allclose(y1, y2, atol=1e-6)
        True
    """

    _lifting = True

    def __init__(self, in_channels: int, out_channels: int, group: Group,
                 kernel_size: int | Sequence[int], **kwargs: Any) -> None:
        if "in_num_elements" in kwargs:
            raise TypeError("LiftingConv has no group axis on its input: in_num_elements is not an option")
        check_strict_kwargs("LiftingConv", kwargs, _LIFTING_KWARGS)
        super().__init__(in_channels, out_channels, group, kernel_size, **kwargs)

    @property
    def in_field(self) -> GridField:
        """How the group acts on the input: a ``GridField`` (signals on R^d)."""
        return GridField(self.group, self.spatial_dims)


# LiftingConv's real signature (help(), inspect, Sphinx): the shared one without in_num_elements
_base_sig = inspect.signature(_RegularGroupConv.__init__)
_LIFTING_KWARGS = tuple(n for n, p in _base_sig.parameters.items()
                        if p.kind is p.KEYWORD_ONLY and n != "in_num_elements")
LiftingConv.__init__.__signature__ = _base_sig.replace(  # type: ignore[attr-defined]
    parameters=[p for n, p in _base_sig.parameters.items() if n != "in_num_elements"])


class GroupConv(_RegularGroupConv):
    """Group convolution ``(B, C_in, N_in, *spatial) -> (B, C_out, N, *spatial)`` on R^d x| H.

    ``y[b, o, i, x] = (1 / N_in) sum_{c, j, y} f[b, c, j, x + y]
    |det h_i|^{-1} psi_{o c}(h_i^{-1} y, h_i^{-1} h_j) + bias[o]``.

    Takes the arguments of :class:`LiftingConv` plus ``in_num_elements`` (the input grid size,
    default ``num_elements``; e.g. C8 features into a C4 layer) and ``group_support`` (keep only
    ``distance(h_i, h_j) <= group_support``).

    Example:
        >>> import torch
        >>> from groupconv.groups import CyclicGroup
        >>> layer = GroupConv(2, 3, CyclicGroup(4), 3, padding=1)
        >>> x = torch.randn(1, 2, 4, 6, 6)
        >>> y1 = layer(torch.roll(torch.rot90(x, 1, dims=(-2, -1)), 1, dims=2))
        >>> y2 = torch.roll(torch.rot90(layer(x), 1, dims=(-2, -1)), 1, dims=2)
        >>> torch.allclose(y1, y2, atol=1e-6)
        True
    """

    @property
    def in_field(self) -> GroupGridField:
        """How the group acts on the input: a ``GroupGridField`` on the input grid."""
        return self._grid_field(self.in_grid)
