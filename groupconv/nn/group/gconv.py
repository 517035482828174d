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
uses ``group.grid(N)`` in eval mode; when stacking random-grid layers pass the grid returned
by ``forward_with_grid_mask`` (``(y, grid, mask)``, every group layer's one signature) as the
next layer's ``in_grid``. A sampler with ``per="batch"`` draws
one grid per batch element (returned as ``(B, N, *element_shape)``; a following ``GroupConv``
takes it as ``in_grid``): the ``B`` expanded kernels come from one batched kernel-net call and
the layer runs ONE grouped conv (``groups=B``). Continuous kernels only.

Kernels.

* discrete (default): a weight ``(C_out, C_in, [N_in,] *k)`` transformed by each ``h_i``:
  exactly by index permutation when ``matrix(h_i)`` maps the centred kernel grid onto itself
  (C4, D4, the cube group) and by d-linear interpolation otherwise (with a circular mask).
  On the group axis the kernel is indexed by ``h_i^{-1} h_j``, which must lie in the input grid
  (grids closed under the product; random grids need a continuous kernel).
* continuous (``kernel_net=`` a name of :data:`groupconv.kernels.KERNEL_NETS` or an
  ``nn.Module``; defaults of the ``"group"`` family): a kernel network evaluated on
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
from typing import Any, ClassVar

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
from ...groups.base import Group, as_group
from ...sampling.grids import resolve_grid
from ...sampling.samplers import Sampler
from ...spaces import GridField, GroupGridField
from .gconv_basis import capped_max_frequency, default_max_frequency
from .gconv_batched import PerBatchGridMixin
from .gconv_cache import EvalKernelCacheMixin
from .gconv_kernels import as_tuple
from .gconv_weights import ContinuousKernelMixin, DiscreteKernelMixin, resolve_mask

__all__ = ["LiftingConv", "GroupConv", "apply_element_mask"]

_CONV = {1: F.conv1d, 2: F.conv2d, 3: F.conv3d}
_CONV_MODULE = {1: nn.Conv1d, 2: nn.Conv2d, 3: nn.Conv3d}


def apply_element_mask(y: Tensor, mask: Tensor | None) -> Tensor:
    """Zero the dropped group elements of a group map ``y`` ``(B, C, N, *spatial)``.

    ``mask`` is the ``(N,)`` 0/1 element mask returned by ``forward_with_grid_mask`` of the
    group layers (partial layers drop elements); ``None`` returns ``y`` itself.

    Example:
        >>> import torch
        >>> apply_element_mask(torch.ones(1, 1, 3, 2), torch.tensor([1.0, 0.0, 1.0]))[0, 0, :, 0]
        tensor([1., 0., 1.])
    """
    if mask is None:
        return y
    return y * mask.to(y.dtype).view(1, 1, -1, *([1] * (y.dim() - 3)))


class _RegularGroupConv(EvalKernelCacheMixin, ContinuousKernelMixin, DiscreteKernelMixin, PerBatchGridMixin,
                        nn.Module):
    """Shared machinery of :class:`LiftingConv` and :class:`GroupConv`.

    Subclasses change the convolution through ``_conv_forward`` (the unmasked output and its
    grid), the output grid through ``_grids_for_forward`` and the element mask through
    ``_output_mask``; the two class attributes below declare what such a subclass changes.
    """

    _lifting: bool = False
    #: Whether the per-batch-grid path (:mod:`~groupconv.nn.group.gconv_batched`: one grid per
    #: batch element, one grouped conv) computes this class's kernel. It evaluates the shared
    #: coordinates, element scale and masks itself, so a subclass that changes the kernel, the
    #: grids or the forward sets ``False``: per-batch samplers and batched ``in_grid`` are refused.
    _per_batch_grids: ClassVar[bool] = True
    #: Whether the output grid can move at forward time (partial layers): the steerable basis,
    #: built for the layer's own grid, is then not chosen automatically.
    _grid_moves_in_forward: ClassVar[bool] = False
    #: Whether :meth:`forward` may serve an eval call straight from the cached kernel: set per
    #: class, ``False`` when a subclass changes a piece of the forward the fast path skips.
    _fast_forward: ClassVar[bool] = True
    _FORWARD_PIECES: ClassVar[tuple[str, ...]] = (
        "forward_with_grid", "forward_with_grid_mask", "_conv_forward", "_output_mask", "_conv",
        "_check_input", "_cached_forward")

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        cls._fast_forward = not cls._grid_moves_in_forward and all(
            getattr(cls, n) is getattr(_RegularGroupConv, n) for n in _RegularGroupConv._FORWARD_PIECES)

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
        sampler: Sampler | None = None,
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
        self._init_geometry(in_channels, out_channels, group, kernel_size, stride, padding, dilation,
                            spatial_dims)
        out_grid, in_grid = self._init_grids(num_elements, sampler, in_num_elements, group_support, device)
        # kernel options: continuous (a kernel net) or discrete weights, mask, basis
        self.continuous = kernel_net is not None
        self.basis: str | None = None
        self._max_frequency = (default_max_frequency if max_frequency is None
                               else capped_max_frequency(max_frequency))
        self.mask = resolve_mask(mask, self.continuous)
        self.mask_radius = float(mask_radius)
        self.mask_temperature = float(mask_temperature)
        element_scale = self._element_scale(out_grid)  # (N_out,) = |det h_i|^-1 / N_in
        pair_mask = self._pair_mask(out_grid, in_grid)  # group_support, (N_out, N_in) or None
        factory = {"device": device, "dtype": dtype}
        if self.continuous:
            self._init_continuous_kernel(kernel_net, kernel_net_kwargs, basis, out_grid, in_grid,
                                         element_scale, pair_mask, factory)
        else:
            self._init_discrete_kernel(kernel_net_kwargs, basis, out_grid, in_grid, element_scale,
                                       pair_mask, factory)
        self._init_bias(bias, factory)
        self._warned_stride = False

    # -- construction steps ------------------------------------------------------------------
    def _init_geometry(self, in_channels: int, out_channels: int, group: Group,
                       kernel_size: int | Sequence[int], stride: int | Sequence[int],
                       padding: int | Sequence[int] | str, dilation: int | Sequence[int],
                       spatial_dims: int | None) -> None:
        """Channels, group, spatial dimension and the ``torch.nn.Conv{d}d`` geometry."""
        group = as_group(group)
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

    def _init_grids(self, num_elements: int | None, sampler: Any, in_num_elements: int | None,
                    group_support: float | None, device: torch.device | str | None,
                    ) -> tuple[Tensor, Tensor | None]:
        """The output and input grids of H (float64 plans; registered as non-persistent buffers)."""
        name = type(self).__name__
        self.sampler = sampler
        self.group_support = group_support
        out_grid, self._stochastic = resolve_grid(self.group, num_elements, sampler, name,
                                                  per_batch=self._per_batch_grids)
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
            in_grid, _ = resolve_grid(self.group, in_num_elements, None, name)
            self.in_num_elements = int(in_grid.shape[0])
        self._check_kernel_size(out_grid)
        self.register_buffer("out_grid", out_grid.to(device), persistent=False)
        self.register_buffer("in_grid", None if in_grid is None else in_grid.to(device), persistent=False)
        return out_grid, in_grid

    def _init_bias(self, bias: bool, factory: dict[str, Any]) -> None:
        if not bias:
            self.register_parameter("bias", None)
            return
        self.bias = nn.Parameter(torch.empty(self.out_channels, **factory))
        fan_in = self.in_channels * self.in_num_elements * math.prod(self.kernel_size)
        nn.init.uniform_(self.bias, -1 / math.sqrt(fan_in), 1 / math.sqrt(fan_in))

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

    def _compute_weight(self, out_grid: Tensor, in_grid: Tensor | None, fresh: bool) -> Tensor:
        if not self.continuous:
            return self._discrete_weight()
        if not fresh:
            return self._continuous_weight(self._coords, self._mask_scale)
        return self._fresh_continuous_weight(out_grid, in_grid)

    def expanded_weight(
        self, in_grid: Tensor | None = None, generator: torch.Generator | None = None
    ) -> Tensor:
        """The dense kernel ``(C_out N, C_in N_in, *k)`` of the current grid (cached in eval)."""
        return self._expanded(in_grid, generator)[0]

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

    def _conv_forward(
        self, x: Tensor, in_grid: Tensor | None, generator: torch.Generator | None
    ) -> tuple[Tensor, Tensor]:
        """The convolution: ``(y, out_grid)`` before any element mask.

        ``in_grid`` (group conv, continuous kernels only) is the grid of the input's group axis
        when it differs from the layer's deterministic one (stacked random-grid layers): shared
        ``(N_in, *element_shape)`` or one per batch element ``(B, N_in, *element_shape)``. With
        a ``per="batch"`` sampler (training) or a batched ``in_grid``, ``out_grid`` is
        ``(B, N, *element_shape)`` and the layer runs one grouped conv over the batch.
        """
        if in_grid is None and not self.training and not self._grid_moves_in_forward:
            y = self._cached_forward(x)
            if y is not None:
                return y, self.out_grid
        x = self._check_input(x)
        if self._per_batch_call(in_grid):
            return self._forward_per_batch(x, in_grid, generator)
        weight, out_grid = self._expanded(in_grid, generator)
        if weight is self._kernel_cache:  # eval: the cached kernel and its expanded bias
            y = self._conv(x, weight, self._eval_bias)
            if in_grid is None and not self._grid_moves_in_forward:
                self._remember_input(x, weight, y)
            return y, out_grid
        bias = None if self.bias is None else self._expanded_bias()
        return self._conv(x, weight, bias), out_grid

    def _expanded_bias(self) -> Tensor:
        # = bias.repeat_interleave(N), without its index bookkeeping
        return self.bias.unsqueeze(1).expand(-1, self.num_elements).reshape(-1)

    def _conv(self, x: Tensor, weight: Tensor, bias: Tensor | None) -> Tensor:
        inp = x if self._lifting else x.flatten(1, 2)
        y = _CONV[self.spatial_dims](inp, weight, bias, self.stride, self.padding, self.dilation)
        return y.view(x.shape[0], self.out_channels, self.num_elements, *y.shape[2:])

    def _output_mask(self, generator: torch.Generator | None) -> Tensor | None:
        """The ``(N,)`` 0/1 mask of the kept output elements; ``None``: every element is kept."""
        return None

    def forward_with_grid_mask(
        self, x: Tensor, in_grid: Tensor | None = None, generator: torch.Generator | None = None
    ) -> tuple[Tensor, Tensor | None, Tensor | None]:
        """``(y, grid, mask)``: everything a stack of layers threads from one layer to the next.

        * ``y``: the output ``(B, C_out, N, *spatial)`` *before* the element mask;
        * ``grid``: the grid of H that ``y`` lives on, ``None`` when it is the layer's own
          deterministic ``out_grid`` (pass it on as the next layer's ``in_grid``);
        * ``mask``: the ``(N,)`` 0/1 mask of the kept output elements (partial layers), ``None``
          when every element is kept. Apply it where the model wants, e.g. after the norm and
          activation (:func:`apply_element_mask`), so the next layer's Haar mean skips them.

        ``in_grid`` (group conv, continuous kernels only) is the grid of the input's group axis
        when it differs from the layer's deterministic one (stacked random-grid layers): shared
        ``(N_in, *element_shape)`` or one per batch element ``(B, N_in, *element_shape)``. With
        a ``per="batch"`` sampler (training) or a batched ``in_grid``, the grid is
        ``(B, N, *element_shape)`` and the layer runs one grouped conv over the batch.
        ``generator`` drives every random draw (grids, masks).

        Example:
            >>> import torch
            >>> from groupconv.groups import CyclicGroup
            >>> y, grid, mask = LiftingConv(1, 2, CyclicGroup(4), 3).forward_with_grid_mask(
            ...     torch.randn(1, 1, 5, 5))
            >>> tuple(y.shape), grid, mask
            ((1, 2, 4, 3, 3), None, None)
        """
        y, grid = self._conv_forward(x, in_grid, generator)
        mask = self._output_mask(generator)
        return y, (None if grid is self.out_grid else grid), mask

    def forward_with_grid(
        self, x: Tensor, in_grid: Tensor | None = None, generator: torch.Generator | None = None
    ) -> tuple[Tensor, Tensor]:
        """``(y, out_grid)``: the output (dropped elements zeroed) and the grid of H it is
        sampled on (the ``out_grid`` buffer itself when deterministic); see
        :meth:`forward_with_grid_mask` for ``in_grid`` and ``generator``."""
        y, grid, mask = self.forward_with_grid_mask(x, in_grid, generator)
        return apply_element_mask(y, mask), (self.out_grid if grid is None else grid)

    def forward(
        self, x: Tensor, in_grid: Tensor | None = None, generator: torch.Generator | None = None
    ) -> Tensor:
        # eval fast path (batch-1 / small maps): straight to the cached kernel's conv when the
        # class keeps the base forward pieces (no element mask, no grid that moves)
        if in_grid is None and self._eval_state is not None and self._fast_forward:
            y = self._cached_forward(x)
            if y is not None:
                return y
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
        kernel_net: ``None`` (discrete weights), a name of :data:`groupconv.kernels.KERNEL_NETS`
            (``"siren"``, ``"mlp"``, ``"rff"``, ``"fourier"``, ``"gabor"``, ``"magnet"``) or a module
            mapping ``(..., d + e)`` coordinates to ``(..., C_out * C_in)``.
        kernel_net_kwargs: options of the named kernel net.
        mask: the spatial mask of the kernel, a disc of radius ``mask_radius`` (in units of the
            kernel half-width ``(k - 1) / 2``; 1 drops the corners of a 3x3 kernel):

            * ``None`` (default, auto): continuous kernels get ``"hard"``; discrete kernels get
              ``"hard"`` where pixels are interpolated (rotations that do not permute the kernel
              grid) and no mask where they are permuted exactly (C4, D4); on the steerable
              basis the same rules shape the basis's window, with the radius in units of its
              disc ``(k - 1) / 2 + 1/2`` (:func:`~groupconv.nn.group.gconv_basis.steerable_window`);
            * ``True`` or ``"hard"``: the 0/1 disc, also on exactly permuted discrete kernels;
            * ``"smooth"`` (continuous kernels only): ``sigmoid(mask_temperature (mask_radius
              - |z|))`` with ``z = y / ((k - 1) / 2)``, a soft disc;
            * ``False`` or ``"none"``: no mask (interpolated corners then leave the disc the
              rotations keep in place, so equivariance off the exact angles degrades).

            The resolved rule is ``layer.mask`` (``"hard"``, ``"smooth"``, ``"none"`` or ``None``).
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
