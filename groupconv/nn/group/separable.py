"""Separable and pointwise group convolutions (Knigge, Romero & Bekkers, ICML 2022).

A regular group convolution ``(B, C_in, N_in, *s) -> (B, C_out, N_out, *s)`` has the kernel
``k_oc(x, h)`` evaluated at ``(h_i^{-1} y, h_i^{-1} h_j)`` for output element ``h_i`` and input
element ``h_j``: a dense conv with ``C_out N_out x C_in N_in x K`` weights. The separable
variants factorise ``k`` so that the forward is a cheap sequence of 1x1, grouped and depthwise
convolutions (``o``: output channel, ``c``: input channel):

===================  =========================================  ==================================
``variant``          kernel                                     computed as
===================  =========================================  ==================================
``"separable"``      ``k^H_oc(h) k^R_o(x)``                     1x1 conv over ``(C_in N_in) ->
                                                                (C_out N_out)``, then a depthwise
                                                                spatial conv (groups ``C_out N``)
``"gseparable"``     ``k^H_oc(h) k^R_oc(x)``                    grouped 1x1 conv (groups
                                                                ``C_in``), then a grouped spatial
                                                                conv (groups ``C_out N``)
``"dseparable"``     ``k_oc k_o(x, h)``                         1x1 channel mixing, then a
                                                                depthwise group conv
``"dgseparable"``    ``k_oc k^H(h) k_o(x)``                     channel mixing, one shared group
                                                                mixing, depthwise spatial conv
``"sim2"``           ``k_oc(theta) k_o(s) k_o(x)``              H = SO(2) x R+ grid (the Sim(2)
                                                                "+2d" factorisation)
===================  =========================================  ==================================

Every spatial factor is transformed by ``h_i`` exactly as in :class:`~groupconv.nn.group.gconv.
LiftingConv` (index permutation for C4/D4, interpolation or a continuous kernel otherwise,
``|det h_i|^{-1}``) and every group factor is indexed by ``h_i^{-1} h_j`` with the Haar mean
``1 / N_in`` as in :class:`~groupconv.nn.group.gconv.GroupConv`, so each variant is exactly as
equivariant as the full layer. Costs (multiply-adds per output pixel and batch element) drop from
``C_out N_out C_in N_in K`` to, e.g., ``C_out N_out C_in N_in + C_out N_out K`` (separable); see
:meth:`SeparableGroupConv.flops` and :func:`group_conv_flops`.

:class:`PointwiseGroupConv` is the 1x1 group convolution
``y[o, i] = (1 / N_in) sum_{c, j} k_oc(h_i^{-1} h_j) f[c, j]`` between two grids of H (e.g. C8
features to a C4 layer, or the random grid of one layer to that of another: residual shortcuts).

Example:
    >>> import torch
    >>> from groupconv.groups import CyclicGroup
    >>> conv = SeparableGroupConv(4, 6, CyclicGroup(4), 3, padding=1)
    >>> x = torch.randn(2, 4, 4, 9, 9)
    >>> y = conv(torch.roll(torch.rot90(x, 1, dims=(-2, -1)), 1, dims=2))
    >>> torch.allclose(y, torch.roll(torch.rot90(conv(x), 1, dims=(-2, -1)), 1, dims=2), atol=1e-5)
    True
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ..._validation import check_input_dtype, check_kernel_fits, check_positive_int, check_tensor
from ...groups.base import Group, as_group
from ...groups.products import DirectProduct
from ...groups.rotations import SO2
from ...sampling.samplers import Sampler
from ...spaces import GroupGridField
from .gconv import GroupConv, LiftingConv, _RegularGroupConv

__all__ = ["SeparableGroupConv", "PointwiseGroupConv", "group_conv_flops", "VARIANTS"]

#: Factorisations accepted by :class:`SeparableGroupConv`.
VARIANTS = ("separable", "gseparable", "dseparable", "dgseparable", "sim2")
_CONV = {1: F.conv1d, 2: F.conv2d, 3: F.conv3d}


def _out_size(size: Sequence[int], kernel: Sequence[int], stride, padding, dilation) -> list[int]:
    if padding == "same":
        return list(size)
    pad = (0,) * len(size) if padding == "valid" else padding
    return [
        (n + 2 * p - dl * (k - 1) - 1) // s + 1
        for n, k, s, p, dl in zip(size, kernel, stride, pad, dilation, strict=True)
    ]


def _check_shape(input_shape: Sequence[int], d: int, name: str = "input_shape") -> tuple[int, ...]:
    shape = tuple(int(s) for s in input_shape)
    if len(shape) != 3 + d:
        raise ValueError(f"{name} must be (B, C, N, *{d} spatial sizes), got {shape}")
    return shape


def group_conv_flops(layer: _RegularGroupConv, input_shape: Sequence[int]) -> int:
    """Forward FLOPs (2 x multiply-adds) of the dense conv of a ``LiftingConv``/``GroupConv``.

    Counts the convolution only (the kernel expansion does not depend on the batch or the
    image size) plus the bias.

    Example:
        >>> from groupconv.groups import CyclicGroup
        >>> group_conv_flops(GroupConv(2, 3, CyclicGroup(4), 3), (1, 2, 4, 5, 5))
        15660
    """
    d = layer.spatial_dims
    if layer._lifting:
        shape = tuple(int(s) for s in input_shape)
        if len(shape) != 2 + d:
            raise ValueError(f"input_shape must be (B, C, *{d} spatial sizes), got {shape}")
        c_in = layer.in_channels
    else:
        shape = _check_shape(input_shape, d)
        c_in = layer.in_channels * layer.in_num_elements
    out = math.prod(_out_size(shape[-d:], layer.kernel_size, layer.stride, layer.padding, layer.dilation))
    c_out = layer.out_channels * layer.num_elements
    macs = shape[0] * out * c_out * c_in * math.prod(layer.kernel_size)
    return 2 * macs + (shape[0] * out * c_out if layer.bias is not None else 0)


@dataclass(frozen=True)
class _ProductGridSampler(Sampler):
    """Deterministic Cartesian grid of a direct product with one count per factor."""

    counts: tuple[int, ...] = ()

    @property
    def is_deterministic(self) -> bool:
        return True

    def num_elements(self, group: Group, n: int | None = None) -> int:
        return math.prod(self.counts)

    def _sample(self, group, n, batch, generator, device, dtype):
        return group.grid(self.counts, device=device, dtype=dtype)


class _GroupAxisKernel(GroupConv):
    """The group factor ``k(h_i^{-1} h_j) / N_in`` of a separable conv: a 1x1 group conv whose
    kernel net sees only the group embedding and without the ``|det h_i|^{-1}`` factor (which
    the spatial factor carries)."""

    _per_batch_grids = False  # its kernel sees the group coordinates only

    def _element_scale(self, out_grid: Tensor) -> Tensor:
        return torch.full(out_grid.shape[:1], 1.0 / self.in_num_elements, dtype=torch.float64)

    def _make_kernel_net(self, kernel_net, coords, spatial_mask, kwargs, factory) -> nn.Module:
        return super()._make_kernel_net(kernel_net, coords[..., self.spatial_dims :], spatial_mask,
                                        kwargs, factory)

    def _continuous_weight(self, coords: Tensor, mask_scale: Tensor) -> Tensor:
        return super()._continuous_weight(coords[..., self.spatial_dims :], mask_scale)


class PointwiseGroupConv(_GroupAxisKernel):
    """1x1 group convolution between two grids of H: ``(B, C_in, N_in, *s) -> (B, C_out, N, *s)``.

    ``y[b, o, i, x] = (1 / N_in) sum_{c, j} |det h_i|^{-1} k_oc(h_i^{-1} h_j) f[b, c, j, x] + bias[o]``.
    The kernel is discrete (one weight per element of the input grid; needs ``h_i^{-1} h_j`` in
    the input grid, e.g. C8 -> C4) or a kernel net on ``group.embedding(h_i^{-1} h_j)`` (any
    grids, random ones included). :meth:`forward_with_grid` takes the input grid and, for
    residual shortcuts, the target ``out_grid`` (the grid of the main path's output).

    Args:
        in_channels, out_channels, group: as :class:`~groupconv.nn.group.gconv.GroupConv`.
        num_elements, in_num_elements, sampler, kernel_net, kernel_net_kwargs, bias, stride,
        group_support, spatial_dims, device, dtype: as ``GroupConv`` (kernel size 1).

    Example:
        >>> import torch
        >>> from groupconv.groups import CyclicGroup
        >>> pw = PointwiseGroupConv(3, 2, CyclicGroup(8), num_elements=4, in_num_elements=8)
        >>> pw(torch.randn(1, 3, 8, 5, 5)).shape
        torch.Size([1, 2, 4, 5, 5])
    """

    def __init__(self, in_channels: int, out_channels: int, group: Group, **kwargs: Any) -> None:
        for bad in ("kernel_size", "padding", "dilation", "mask", "mask_radius", "mask_temperature"):
            if bad in kwargs:
                raise TypeError(f"PointwiseGroupConv is a 1x1 group conv: {bad} is not an option")
        super().__init__(in_channels, out_channels, group, 1, **kwargs)

    def _element_scale(self, out_grid: Tensor) -> Tensor:
        return _RegularGroupConv._element_scale(self, out_grid)

    def forward_with_grid(  # type: ignore[override]
        self,
        x: Tensor,
        in_grid: Tensor | None = None,
        generator: torch.Generator | None = None,
        out_grid: Tensor | None = None,
    ) -> tuple[Tensor, Tensor]:
        """``(y, out_grid)``; ``out_grid`` (continuous kernels) resamples onto a given grid."""
        if out_grid is None:
            return super().forward_with_grid(x, in_grid, generator)
        if not self.continuous:
            raise ValueError("out_grid is only supported with continuous kernels (kernel_net=)")
        x = self._check_input(x)
        grid = self.group.check_element(out_grid, "out_grid")
        if grid.dim() != 1 + len(self.group.element_shape) or grid.shape[0] != self.num_elements:
            raise ValueError(
                f"out_grid must hold num_elements={self.num_elements} elements of {self.group.name}, "
                f"got shape {tuple(grid.shape)}"
            )
        _, grid_in, _ = self._grids_for_forward(in_grid, generator)
        w = self._compute_weight(grid, grid_in, True)
        bias = None if self.bias is None else self.bias.repeat_interleave(self.num_elements)
        y = _CONV[self.spatial_dims](x.flatten(1, 2), w, bias, self.stride, self.padding, self.dilation)
        return y.view(x.shape[0], self.out_channels, self.num_elements, *y.shape[2:]), grid

    def forward(  # type: ignore[override]
        self,
        x: Tensor,
        in_grid: Tensor | None = None,
        generator: torch.Generator | None = None,
        out_grid: Tensor | None = None,
    ) -> Tensor:
        return self.forward_with_grid(x, in_grid, generator, out_grid)[0]


class SeparableGroupConv(nn.Module):
    """Separable group convolution ``(B, C_in, N_in, *s) -> (B, C_out, N, *s)``.

    Args:
        in_channels, out_channels: channels (fields) of the input and output.
        group: the linear part H; for ``variant="sim2"`` a ``DirectProduct(SO2(), Scaling(2),
            action="commuting")`` (``Sim2().H``).
        kernel_size: odd int or tuple of ``d`` ints.
        variant: one of :data:`VARIANTS` (see the module docstring for the factorisations).
        stride, padding, dilation, bias: as ``torch.nn.Conv{d}d``.
        num_elements: grid size of H (finite groups default to the order); for ``"sim2"`` a
            pair ``(n_rotations, n_scales)``.
        in_num_elements: size of the input grid (default ``num_elements``; not for ``"sim2"``).
        sampler: a :mod:`groupconv.sampling` sampler (random grids need continuous kernels).
        kernel_net: ``None`` (discrete factors) or a name of :data:`groupconv.kernels.KERNEL_NETS`, used for
            every factor unless ``spatial_kernel_net`` / ``group_kernel_net`` override it.
        kernel_net_kwargs: options of named kernel nets.
        mask, mask_radius, mask_temperature, group_support, spatial_dims, device, dtype: as
            :class:`~groupconv.nn.group.gconv.GroupConv`.
        init_gain: output variance for white unit-variance input at initialisation (default 2,
            He): the last factor is rescaled once by a probe forward at construction (the
            product of the factors' own initialisations is far below 1); ``None`` keeps them.

    Example:
        >>> import torch
        >>> from groupconv.groups import SO2
        >>> conv = SeparableGroupConv(3, 4, SO2(), 5, num_elements=8, padding=2, kernel_net="siren")
        >>> conv(torch.randn(1, 3, 8, 9, 9)).shape
        torch.Size([1, 4, 8, 9, 9])
    """

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        group: Group,
        kernel_size: int | Sequence[int],
        *,
        variant: str = "separable",
        stride: int | Sequence[int] = 1,
        padding: int | Sequence[int] | str = 0,
        dilation: int | Sequence[int] = 1,
        bias: bool = True,
        num_elements: int | tuple[int, int] | None = None,
        in_num_elements: int | None = None,
        sampler: Sampler | None = None,
        kernel_net: str | None = None,
        spatial_kernel_net: str | nn.Module | None = None,
        group_kernel_net: str | nn.Module | None = None,
        kernel_net_kwargs: dict[str, Any] | None = None,
        mask: str | bool | None = None,
        mask_radius: float = 1.0,
        mask_temperature: float = 10.0,
        group_support: float | None = None,
        spatial_dims: int | None = None,
        init_gain: float | None = 2.0,
        device: torch.device | str | None = None,
        dtype: torch.dtype | None = None,
    ) -> None:
        super().__init__()
        if variant not in VARIANTS:
            raise ValueError(f"variant must be one of {VARIANTS}, got {variant!r}")
        group = as_group(group)
        self.variant = variant
        self.in_channels = check_positive_int(in_channels, "in_channels")
        self.out_channels = check_positive_int(out_channels, "out_channels")
        self.group = group
        if getattr(sampler, "per_batch_element", False):
            raise ValueError(
                "sampler: SeparableGroupConv shares one group grid across the batch; got a "
                f"per-batch-element sampler {sampler!r} (use per='call', or LiftingConv/GroupConv "
                "with continuous kernels for per-sample grids)"
            )
        self.sampler = sampler
        sk = kernel_net if spatial_kernel_net is None else spatial_kernel_net
        gk = kernel_net if group_kernel_net is None else group_kernel_net
        fk = {"device": device, "dtype": dtype}
        common = {"kernel_net_kwargs": kernel_net_kwargs, **fk}
        spatial_kw = {
            "stride": stride, "padding": padding, "dilation": dilation, "mask": mask,
            "mask_radius": mask_radius, "mask_temperature": mask_temperature,
            "spatial_dims": spatial_dims, "bias": False, "kernel_net": sk, **common,
        }
        C_in, C_out = self.in_channels, self.out_channels
        if variant == "sim2":
            self._init_sim2(group, num_elements, in_num_elements, sampler, gk, kernel_size,
                            spatial_kw, common, group_support)
        else:
            if isinstance(num_elements, tuple):
                raise ValueError(f"num_elements must be an int for variant={variant!r}, got {num_elements}")
            grid_kw = {"num_elements": num_elements, "sampler": sampler}
            h_kw = {"in_num_elements": in_num_elements, "group_support": group_support,
                    "kernel_net": gk, "bias": False, "spatial_dims": spatial_dims, **grid_kw, **common}
            if variant == "separable":
                self.group_kernel = _GroupAxisKernel(C_in, C_out, group, 1, **h_kw)
                self.spatial_kernel = LiftingConv(1, C_out, group, kernel_size, **grid_kw, **spatial_kw)
            elif variant == "gseparable":
                self.group_kernel = _GroupAxisKernel(C_in, C_out, group, 1, **h_kw)
                self.spatial_kernel = LiftingConv(C_in, C_out, group, kernel_size, **grid_kw, **spatial_kw)
            elif variant == "dseparable":
                kw = {**spatial_kw, "kernel_net": gk if sk is None else sk}
                self.group_kernel = GroupConv(1, C_out, group, kernel_size, in_num_elements=in_num_elements,
                                              group_support=group_support, **grid_kw, **kw)
                self.spatial_kernel = None
            else:  # dgseparable
                self.group_kernel = _GroupAxisKernel(1, 1, group, 1, **h_kw)
                self.spatial_kernel = LiftingConv(1, C_out, group, kernel_size, **grid_kw, **spatial_kw)
            ref = self.spatial_kernel if self.spatial_kernel is not None else self.group_kernel
            if variant in ("dseparable", "dgseparable"):
                self.channel_weight = nn.Parameter(torch.empty(C_out, C_in, **fk))
                nn.init.uniform_(self.channel_weight, -1 / math.sqrt(C_in), 1 / math.sqrt(C_in))
            else:
                self.register_parameter("channel_weight", None)
            self.num_elements = ref.num_elements
            self.in_num_elements = self.group_kernel.in_num_elements
            self._stochastic = ref._stochastic
            self.register_buffer("out_grid", ref.out_grid.clone(), persistent=False)
            self.register_buffer("in_grid", self.group_kernel.in_grid.clone(), persistent=False)
        ref = self.spatial_kernel if self.spatial_kernel is not None else self.group_kernel
        self.spatial_dims = ref.spatial_dims
        self.kernel_size = ref.kernel_size
        self.stride, self.padding, self.dilation = ref.stride, ref.padding, ref.dilation
        self.continuous = all(m.continuous for m in self._factors())
        self.channels_last_cpu = True
        if bias:
            self.bias = nn.Parameter(torch.empty(C_out, **fk))
            bound = 1 / math.sqrt(C_in * self.in_num_elements * math.prod(self.kernel_size))
            nn.init.uniform_(self.bias, -bound, bound)
        else:
            self.register_parameter("bias", None)
        if init_gain is not None:
            self._calibrate_init_(init_gain)

    @torch.no_grad()
    def _calibrate_init_(self, gain: float) -> None:
        """Scale the last factor so that white unit-variance input gives output variance ``gain``.

        Each factor's own initialisation targets unit gain for a *single* layer, and a product of
        two or three factors (no nonlinearity between them) multiplies their gains (the
        discrete defaults give ``1/3`` each: output std 0.31; SIREN factors 0.49). The
        reference networks start near std 1.2. One probe forward at construction (a fixed
        generator, so the global RNG is untouched) measures the product and rescales the
        spatial factor (the group factor for ``"dseparable"``): ``He`` gain 2 by default.
        """
        if not (isinstance(gain, (int, float)) and gain > 0):
            raise ValueError(f"init_gain must be a positive float or None, got {gain!r}")
        p = next(self.parameters())
        if p.device.type == "meta":
            return
        gen = torch.Generator(device=p.device).manual_seed(0)
        size = [max(2 * k + 1, 9) for k in self.kernel_size]
        x = torch.randn(2, self.in_channels, self.in_num_elements, *size, generator=gen,
                        device=p.device, dtype=p.dtype)
        y = self.forward_with_grid(x, generator=gen)[0]
        if self.bias is not None:
            y = y - self.bias.view(1, -1, *(1,) * (y.dim() - 2))
        factor = (gain / y.square().mean().clamp_min(torch.finfo(y.dtype).tiny)).sqrt()
        last = self.spatial_kernel if self.spatial_kernel is not None else self.group_kernel
        net = getattr(last, "kernel_net", None)
        if net is not None and hasattr(net, "output_linear"):
            from ...kernels.base import scale_linear_weight_

            scale_linear_weight_(net.output_linear, factor)
        else:
            last.weight.mul_(factor)
        for m in self._factors():
            if hasattr(m, "clear_cache"):
                m.clear_cache()

    def _init_sim2(self, group, num_elements, in_num_elements, sampler, gk, kernel_size,
                   spatial_kw, common, group_support) -> None:
        if not (isinstance(group, DirectProduct) and len(group.factors) == 2
                and isinstance(group.factors[0], SO2) and group.factors[1].dimension == 1):
            raise ValueError(
                "variant='sim2' needs group = DirectProduct(SO2(), Scaling(2), action='commuting') "
                f"(Sim2().H), got {group!r}"
            )
        if not (isinstance(num_elements, tuple) and len(num_elements) == 2):
            raise ValueError(
                "num_elements must be a pair (n_rotations, n_scales) for variant='sim2', "
                f"got {num_elements!r}"
            )
        if sampler is not None or in_num_elements is not None:
            raise ValueError("variant='sim2' uses the deterministic product grid: sampler and "
                             "in_num_elements are not options")
        n_rot = check_positive_int(num_elements[0], "num_elements[0]")
        n_scale = check_positive_int(num_elements[1], "num_elements[1]")
        self.sim2_counts = (n_rot, n_scale)
        rot, scale = group.factors
        h_kw = {"kernel_net": gk, "bias": False, **common}
        self.group_kernel = _GroupAxisKernel(self.in_channels, self.out_channels, rot, 1,
                                             num_elements=n_rot, **h_kw)
        self.scale_kernel = _GroupAxisKernel(1, self.out_channels, scale, 1, num_elements=n_scale,
                                             group_support=group_support, **h_kw)
        self.spatial_kernel = LiftingConv(1, self.out_channels, group, kernel_size,
                                          sampler=_ProductGridSampler((n_rot, n_scale)), **spatial_kw)
        self.register_parameter("channel_weight", None)
        self.num_elements = self.in_num_elements = n_rot * n_scale
        self._stochastic = False
        self.register_buffer("out_grid", self.spatial_kernel.out_grid.clone(), persistent=False)
        self.register_buffer("in_grid", self.out_grid.clone(), persistent=False)

    def _factors(self) -> list[_RegularGroupConv]:
        mods = [self.group_kernel, getattr(self, "scale_kernel", None), self.spatial_kernel]
        return [m for m in mods if m is not None]

    # -- factor kernels ----------------------------------------------------------------------
    def _factor_weights(self, in_grid: Tensor | None, generator) -> tuple[list[Tensor], Tensor]:
        fresh = self.training and self._stochastic
        if not fresh and in_grid is None:
            return [m.expanded_weight() for m in self._factors()], self.out_grid
        if not self.continuous:
            raise ValueError("in_grid is only supported with continuous kernels (kernel_net=)")
        out_grid = self.out_grid
        if fresh:
            out_grid = self.sampler(self.group, self.num_elements, generator=generator,
                                    device=self.out_grid.device, dtype=self.out_grid.dtype)
        grid_in = self.in_grid
        if in_grid is not None:
            grid_in = self.group.check_element(in_grid, "in_grid")
            if grid_in.dim() != 1 + len(self.group.element_shape) or grid_in.shape[0] != self.in_num_elements:
                raise ValueError(
                    f"in_grid must hold in_num_elements={self.in_num_elements} elements, "
                    f"got shape {tuple(grid_in.shape)}"
                )
        ws = [self.group_kernel._compute_weight(out_grid, grid_in, True)]
        if self.spatial_kernel is not None:
            ws.append(self.spatial_kernel._compute_weight(out_grid, None, True))
        return ws, out_grid

    def expanded_weight(self, in_grid: Tensor | None = None,
                        generator: torch.Generator | None = None) -> Tensor:
        """The equivalent dense kernel ``(C_out N, C_in N_in, *k)`` (what a full GroupConv with
        the factorised kernel would use); for tests and export, not used by ``forward``."""
        ws, _ = self._factor_weights(in_grid, generator)
        C_out, C_in, n, n_in = self.out_channels, self.in_channels, self.num_elements, self.in_num_elements
        k = self.kernel_size
        if self.variant == "separable":
            A, S = ws
            return A.view(C_out * n, C_in * n_in, *([1] * len(k))) * S.view(C_out * n, 1, *k)
        if self.variant == "gseparable":
            A, S = ws
            return (A.view(C_out * n, C_in, n_in, 1) * S.view(C_out * n, C_in, 1, -1)).view(
                C_out * n, C_in * n_in, *k)
        if self.variant == "dseparable":
            (Wg,) = ws
            W = Wg.view(C_out, n, 1, n_in, -1) * self.channel_weight.view(C_out, 1, C_in, 1, 1)
            return W.reshape(C_out * n, C_in * n_in, *k)
        if self.variant == "dgseparable":
            a, S = ws
            W = (self.channel_weight.view(C_out, 1, C_in, 1, 1) * a.view(1, n, 1, n_in, 1)
                 * S.view(C_out, n, 1, 1, -1))
            return W.reshape(C_out * n, C_in * n_in, *k)
        A, Sc, S = ws  # sim2
        nr, ns = self.sim2_counts
        A = A.view(C_out, nr, 1, C_in, nr, 1)
        Sc = Sc.view(C_out, 1, ns, 1, 1, ns)
        W = (A * Sc).reshape(C_out * n, C_in * n, 1) * S.view(C_out * n, 1, -1)
        return W.view(C_out * n, C_in * n, *k)

    # -- forward -------------------------------------------------------------------------------
    def _check_input(self, x: object) -> Tensor:
        x = check_tensor(x, "x")
        d = self.spatial_dims
        if x.dim() != 3 + d or x.shape[1] != self.in_channels or x.shape[2] != self.in_num_elements:
            raise ValueError(
                f"x must have shape (B, in_channels={self.in_channels}, group axis "
                f"N_in={self.in_num_elements}, *{d} spatial dims), got shape {tuple(x.shape)}"
            )
        if not x.is_floating_point():
            raise TypeError(f"x must be a floating-point tensor, got dtype {x.dtype}")
        check_input_dtype(x, next(self.parameters(), None), "SeparableGroupConv")
        check_kernel_fits(x.shape[-d:], self.kernel_size, self.padding, self.dilation, "SeparableGroupConv")
        return x

    def _spatial(self, u: Tensor, S: Tensor, groups: int) -> Tensor:
        if self.spatial_dims == 2 and u.device.type == "cpu" and self.channels_last_cpu:
            # oneDNN's depthwise kernels are several times faster in channels-last layout
            u = u.contiguous(memory_format=torch.channels_last)
        return _CONV[self.spatial_dims](u, S, None, self.stride, self.padding, self.dilation, groups)

    def forward_with_grid(
        self, x: Tensor, in_grid: Tensor | None = None, generator: torch.Generator | None = None
    ) -> tuple[Tensor, Tensor]:
        """``(y, out_grid)``: the output and the grid of H it lives on (see ``GroupConv``)."""
        x = self._check_input(x)
        ws, out_grid = self._factor_weights(in_grid, generator)
        B, d = x.shape[0], self.spatial_dims
        C_out, C_in, n, n_in = self.out_channels, self.in_channels, self.num_elements, self.in_num_elements
        sp = x.shape[-d:]
        one = (1,) * d
        if self.variant == "separable":
            A, S = ws  # the group/channel mixing is one GEMM per batch element
            u = torch.matmul(A.view(C_out * n, C_in * n_in), x.reshape(B, C_in * n_in, -1))
            y = self._spatial(u.view(B, C_out * n, *sp), S, C_out * n)
        elif self.variant == "gseparable":
            A, S = ws  # A[(o, i), (c, j)] -> grouped 1x1 conv over c with outputs (c, o, i)
            A = A.view(C_out * n, C_in, n_in).transpose(0, 1).reshape(C_in * C_out * n, n_in, *one)
            u = _CONV[d](x.flatten(1, 2), A, groups=C_in)  # (B, C_in * C_out * n, *s)
            u = u.view(B, C_in, C_out * n, *sp).transpose(1, 2).reshape(B, C_out * n * C_in, *sp)
            y = self._spatial(u, S, C_out * n)
        elif self.variant == "dseparable":
            (Wg,) = ws
            u = torch.einsum("oc,bcj...->boj...", self.channel_weight, x)
            y = self._spatial(u.reshape(B, C_out * n_in, *sp), Wg, C_out)
        elif self.variant == "dgseparable":
            a, S = ws
            u = torch.einsum("oc,bcj...->boj...", self.channel_weight, x).reshape(B, C_out, n_in, -1)
            v = torch.matmul(a.view(n, n_in), u)  # (B, C_out, n, prod(s))
            y = self._spatial(v.view(B, C_out * n, *sp), S, C_out * n)
        else:  # sim2: rotations (with channel mixing), then scales, then space
            A, Sc, S = ws
            nr, ns = self.sim2_counts
            xr = x.view(B, C_in * nr, ns, *sp)
            u = _CONV[d + 1](xr, A.view(C_out * nr, C_in * nr, 1, *one))  # (B, C_out nr, ns, *s)
            u = u.view(B, C_out, nr, ns, -1)
            v = torch.einsum("ots,zoasx->zoatx", Sc.view(C_out, ns, ns), u)
            y = self._spatial(v.reshape(B, C_out * n, *sp), S, C_out * n)
        if self.bias is not None:
            y = y + self.bias.repeat_interleave(n).view(1, -1, *one)
        return y.view(B, C_out, n, *y.shape[2:]), out_grid

    def forward_with_grid_mask(
        self, x: Tensor, in_grid: Tensor | None = None, generator: torch.Generator | None = None
    ) -> tuple[Tensor, Tensor | None, None]:
        """``(y, grid, None)``: as :meth:`~groupconv.nn.group.gconv.GroupConv.forward_with_grid_mask`
        (``grid`` is ``None`` on the deterministic grid; a separable layer drops no element)."""
        y, grid = self.forward_with_grid(x, in_grid, generator)
        return y, (None if grid is self.out_grid else grid), None

    def forward(
        self, x: Tensor, in_grid: Tensor | None = None, generator: torch.Generator | None = None
    ) -> Tensor:
        return self.forward_with_grid(x, in_grid, generator)[0]

    # -- cost model ---------------------------------------------------------------------------
    def flops(self, input_shape: Sequence[int]) -> int:
        """Forward FLOPs (2 x multiply-adds, plus the bias) of this layer on ``input_shape``.

        Kernel expansion is excluded (independent of the batch and the image size).

        Example:
            >>> from groupconv.groups import CyclicGroup
            >>> conv = SeparableGroupConv(8, 8, CyclicGroup(8), 5, padding=2)
            >>> conv.dense_flops((1, 8, 8, 16, 16)) / conv.flops((1, 8, 8, 16, 16)) > 10
            True
        """
        d = self.spatial_dims
        shape = _check_shape(input_shape, d)
        B, P_in = shape[0], math.prod(shape[-d:])
        P = math.prod(_out_size(shape[-d:], self.kernel_size, self.stride, self.padding, self.dilation))
        C_out, C_in, n, n_in = self.out_channels, self.in_channels, self.num_elements, self.in_num_elements
        K = math.prod(self.kernel_size)
        if self.variant == "separable":
            macs = P_in * C_out * n * C_in * n_in + P * C_out * n * K
        elif self.variant == "gseparable":
            macs = P_in * C_in * C_out * n * n_in + P * C_out * n * C_in * K
        elif self.variant == "dseparable":
            macs = P_in * C_out * C_in * n_in + P * C_out * n * n_in * K
        elif self.variant == "dgseparable":
            macs = P_in * C_out * C_in * n_in + P_in * C_out * n * n_in + P * C_out * n * K
        else:
            nr, ns = self.sim2_counts
            macs = P_in * (C_out * nr * C_in * nr * ns + C_out * nr * ns * ns) + P * C_out * n * K
        return 2 * B * macs + (B * P * C_out * n if self.bias is not None else 0)

    def dense_flops(self, input_shape: Sequence[int]) -> int:
        """FLOPs of the full (non-separable) ``GroupConv`` with the same shapes (see
        :func:`group_conv_flops`)."""
        d = self.spatial_dims
        shape = _check_shape(input_shape, d)
        P = math.prod(_out_size(shape[-d:], self.kernel_size, self.stride, self.padding, self.dilation))
        macs = shape[0] * P * self.out_channels * self.num_elements * self.in_channels * \
            self.in_num_elements * math.prod(self.kernel_size)
        bias = shape[0] * P * self.out_channels * self.num_elements if self.bias is not None else 0
        return 2 * macs + bias

    # -- fields -------------------------------------------------------------------------------
    @property
    def in_field(self) -> GroupGridField:
        """How the group acts on the input: a ``GroupGridField`` on the input grid."""
        return GroupGridField(self.group, self.in_grid, self.spatial_dims)

    @property
    def out_field(self) -> GroupGridField:
        """How the group acts on the output: a ``GroupGridField`` on the deterministic grid."""
        return GroupGridField(self.group, self.out_grid, self.spatial_dims)

    def extra_repr(self) -> str:
        s = (f"{self.in_channels}, {self.out_channels}, group={self.group!r}, variant={self.variant!r}, "
             f"kernel_size={self.kernel_size}, N={self.num_elements}, N_in={self.in_num_elements}")
        return s + ("" if self.bias is not None else ", bias=False")
