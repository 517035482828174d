"""Kernel expansion for regular group convolutions on R^d x| H (the machinery of ``gconv``).

A regular lifting or group convolution is ONE dense ``conv{1,2,3}d`` whose weight is the base
kernel transformed by every element ``h_i`` of the output grid of H:

* lifting:  ``W_i(y)        = |det h_i|^{-1} psi(h_i^{-1} y)``            -> ``(C_out N, C_in, *k)``
* group:    ``W_i(y, h_j)   = |det h_i|^{-1} psi(h_i^{-1} y, h_i^{-1} h_j) / N_in``
  -> ``(C_out N, C_in N_in, *k)``

where ``y`` runs over the centred kernel grid (pixel units, tensor axis order) and ``h_j`` over
the input grid. The ``1 / N_in`` is the Haar normalisation: the sum over the input grid is a
*mean*, a quadrature of the normalised Haar integral, so activations do not scale with ``|H|``.

Everything that does not depend on the weights is precomputed once here (no dependence on the
batch or the image size):

* :func:`spatial_sampling`: for each ``h_i``, where ``h_i^{-1} y`` falls on the base kernel grid.
  When every point lands on a grid point (signed-permutation matrices of C_4, D_4, the cube
  group on a centred grid) it is an exact integer index; otherwise a d-linear interpolation
  (``2^d`` corners with weights).
* :func:`relative_index`: the group-axis permutation ``j -> index of h_i^{-1} h_j`` in the input
  grid (``Group.index`` for finite groups, nearest by ``Group.distance`` otherwise, a match is
  required).
* :class:`DiscretePlan`: both combined into a single flat gather index for exact finite groups
  (``weight.flatten()[index]``) or a structured gather + interpolation otherwise.
* :func:`continuous_coordinates`: kernel-net inputs ``[h_i^{-1} y / r, embedding(h_i^{-1} h_j)]``
  and the spatial mask, for continuous kernels.

Example:
    >>> import torch
    >>> from groupconv.groups import CyclicGroup
    >>> G = CyclicGroup(4)
    >>> idx, w, exact = spatial_sampling(G, G.elements(dtype=torch.float64), (3, 3))
    >>> exact, tuple(idx.shape)
    (True, (1, 4, 9))
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import torch
from torch import Tensor

from .._validation import check_positive_int
from ..groups.base import Group

__all__ = [
    "as_tuple",
    "resolve_grid",
    "kernel_positions",
    "kernel_radius",
    "circular_mask",
    "group_elements_dtype",
    "spatial_sampling",
    "relative_index",
    "DiscretePlan",
    "build_discrete_plan",
    "expand_discrete",
    "continuous_coordinates",
]

_SNAP_TOL = 1e-6


def as_tuple(value: object, d: int, name: str) -> tuple[int, ...]:
    """``value`` as a tuple of ``d`` ints (an int is repeated); ValueError naming ``name``."""
    if isinstance(value, int) and not isinstance(value, bool):
        return (value,) * d
    if isinstance(value, Sequence) and len(value) == d and all(
        isinstance(v, int) and not isinstance(v, bool) for v in value
    ):
        return tuple(value)
    raise ValueError(f"{name} must be an int or a tuple of {d} ints, got {value!r}")


def resolve_grid(
    group: Group, num_elements: int | None, sampler: Any, name: str
) -> tuple[Tensor, bool]:
    """The layer's deterministic grid (float64 where floating) and whether ``sampler`` is random.

    Finite groups: all elements (or ``group.grid(num_elements)``, a subgroup); continuous groups
    need ``num_elements``; a random sampler's deterministic (eval) grid is ``group.grid(n)``.
    """
    dt = group_elements_dtype(group)
    if sampler is not None:
        if not callable(sampler) or not hasattr(sampler, "num_elements"):
            raise TypeError(f"sampler must be a groupconv.sampling.Sampler, got {type(sampler).__name__}")
        if getattr(sampler, "per_batch_element", False):
            raise ValueError(
                f"sampler with per='batch' is not supported by {name}: use per='call' (got {sampler!r})"
            )
        n = sampler.num_elements(group, num_elements)
        if not sampler.is_deterministic:
            return group.grid(n, dtype=dt), True
        return sampler(group, n, dtype=dt), False
    if group.is_finite:
        if num_elements is None or num_elements == group.order:
            return group.elements(dtype=dt), False
        return group.grid(check_positive_int(num_elements, "num_elements"), dtype=dt), False
    if num_elements is None:
        raise ValueError(
            f"num_elements must be a positive int for the continuous group {group.name} "
            f"(or pass sampler=), got None"
        )
    return group.grid(check_positive_int(num_elements, "num_elements"), dtype=dt), False


def kernel_positions(kernel_size: Sequence[int], dtype: torch.dtype = torch.float64) -> Tensor:
    """Centred kernel grid in pixel units, ``(K, d)`` in tensor axis order, row-major.

    Example:
        >>> kernel_positions((3,)).squeeze(-1).tolist()
        [-1.0, 0.0, 1.0]
    """
    axes = [torch.arange(k, dtype=dtype) - (k - 1) / 2 for k in kernel_size]
    mesh = torch.meshgrid(*axes, indexing="ij")
    return torch.stack(mesh, dim=-1).reshape(-1, len(kernel_size))


def kernel_radius(kernel_size: Sequence[int], dtype: torch.dtype = torch.float64) -> Tensor:
    """Half-widths ``(k - 1) / 2`` per axis (1 for ``k = 1``) used to normalise to ``[-1, 1]``."""
    return torch.tensor([(k - 1) / 2 if k > 1 else 1.0 for k in kernel_size], dtype=dtype)


def circular_mask(
    coords: Tensor, kind: str = "hard", radius: float = 1.0, temperature: float = 10.0
) -> Tensor:
    """Spatial mask of normalised coordinates ``(..., d)`` -> ``(...,)``.

    ``"hard"``: 1 inside the ball ``|z| <= radius`` (grid corners that would not rotate into the
    kernel are dropped); ``"smooth"``: ``sigmoid(temperature (radius - |z|))``; ``"none"``: ones.

    Example:
        >>> circular_mask(torch.tensor([[0.0, 1.0], [1.0, 1.0]])).tolist()
        [1.0, 0.0]
    """
    norm = torch.linalg.vector_norm(coords, dim=-1)
    if kind == "hard":
        return (norm <= radius + 1e-6).to(coords.dtype)
    if kind == "smooth":
        return torch.sigmoid(temperature * (radius - norm))
    if kind == "none":
        return torch.ones_like(norm)
    raise ValueError(f"mask must be 'hard', 'smooth', 'none', True, False or None, got {kind!r}")


def group_elements_dtype(group: Group) -> torch.dtype | None:
    """float64 for groups with floating elements (plans are built in double), else None."""
    return torch.float64 if getattr(group, "element_dtype_kind", "float") == "float" else None


def spatial_sampling(
    group: Group,
    out_grid: Tensor,
    kernel_size: Sequence[int],
    mask_radius: float | None = None,
) -> tuple[Tensor, Tensor, bool]:
    """Where ``h_i^{-1} y`` falls on the base kernel grid, for every output element ``h_i``.

    Returns ``(index, weight, exact)``: ``index (P, N, K)`` long in ``[0, K]`` (``K`` is a zero
    slot for points outside the kernel or the mask), ``weight (P, N, K)`` float64 and
    ``exact`` (all points landed on grid points; then ``P = 1`` and the weights are ones). The
    transformed kernel is ``W_i[q] = sum_p weight[p, i, q] * W[index[p, i, q]]``.
    With ``mask_radius``, positions outside the ball of that radius (normalised coordinates) are
    zeroed both in the base kernel and in the transformed one.
    """
    d = len(kernel_size)
    y = kernel_positions(kernel_size)
    K = y.shape[0]
    M = group.matrix(group.inverse(out_grid)).to(torch.float64)
    if M.shape[-2:] != (d, d):
        raise ValueError(
            f"group {group.name} acts on R^{M.shape[-1]} but the layer has {d} spatial dims"
        )
    centre = torch.tensor([(k - 1) / 2 for k in kernel_size], dtype=torch.float64)
    u = torch.einsum("nab,kb->nka", M, y) + centre  # index coordinates of h^-1 y
    rounded = torch.round(u)
    near = (u - rounded).abs() < _SNAP_TOL
    u = torch.where(near, rounded, u)
    exact = bool(near.all())
    size = torch.tensor(list(kernel_size), dtype=torch.float64)
    strides = torch.tensor([math.prod(kernel_size[a + 1 :]) for a in range(d)], dtype=torch.long)
    if exact:
        corners = [rounded.unsqueeze(0)]
        weights = [torch.ones(1, *u.shape[:2], dtype=torch.float64)]
    else:
        base = torch.floor(u)
        frac = u - base
        corners, weights = [], []
        for bits in itertools.product((0, 1), repeat=d):
            b = torch.tensor(bits, dtype=torch.float64)
            corners.append((base + b).unsqueeze(0))
            weights.append(torch.where(b.bool(), frac, 1 - frac).prod(-1).unsqueeze(0))
    pos = torch.cat(corners)  # (P, N, K, d)
    weight = torch.cat(weights)  # (P, N, K)
    inside = ((pos >= 0) & (pos <= size - 1)).all(-1)
    flat = (pos.clamp(min=0).long().minimum((size - 1).long()) * strides).sum(-1)
    index = torch.where(inside, flat, torch.full_like(flat, K))
    if mask_radius is not None:
        r = kernel_radius(kernel_size)
        keep = circular_mask(y / r, "hard", mask_radius).bool()  # (K,)
        keep_src = torch.cat([keep, keep.new_zeros(1)])
        index = torch.where(keep_src[index], index, torch.full_like(index, K))
        weight = weight * keep.to(weight.dtype)
    weight = torch.where(index == K, torch.zeros_like(weight), weight)
    return index, weight, exact


def relative_index(
    group: Group, out_grid: Tensor, in_grid: Tensor, tol: float = 1e-5
) -> Tensor | None:
    """``a[i, j]`` = position of ``h_i^{-1} h_j`` in ``in_grid``, ``(N_out, N_in)`` long.

    Finite groups use ``Group.index``; others the nearest grid element by ``Group.distance``.
    Returns None when some product is not in the grid (a grid not closed under the product,
    e.g. a random one): discrete kernels on the group axis are then undefined.
    """
    rel = group.product(group.inverse(out_grid).unsqueeze(1), in_grid.unsqueeze(0))
    n_in = in_grid.shape[0]
    if group.is_finite:
        try:
            ids = group.index(rel)
            grid_ids = group.index(in_grid)
        except ValueError:
            return None
        lookup = torch.full((group.order,), -1, dtype=torch.long)
        lookup[grid_ids] = torch.arange(n_in)
        a = lookup[ids]
        return None if bool((a < 0).any()) else a
    dist = group.distance(rel.unsqueeze(2), in_grid.reshape(1, 1, *in_grid.shape))
    best, a = dist.min(dim=-1)
    return a if bool((best < tol).all()) else None


@dataclass
class DiscretePlan:
    """Precomputed expansion of a discrete weight ``(C_out, C_in, N_in, K)``.

    ``mode == "gather"`` (every transform exact, uniform scale): ``flat_index`` (the expanded
    weight's numel) indexes ``weight.flatten()`` plus one zero slot (used when ``zero_slot``);
    ``backward_index`` ``(N_out * weight.numel(),)`` is its inverse per output element (the
    expanded position that reads each weight entry, or the zero slot), so the backward pass is a
    gather and a sum too (deterministic, no scatter); ``scale`` is a float.
    ``mode == "interp"``: ``group_index (N_out N_in,)`` into the group axis of the weight padded
    with one zero slab (index ``N_in``: masked pair) and ``spatial_matrix (N_out, K, K)``, the
    d-linear interpolation matrices with ``|det h_i|^{-1} / N_in`` and the mask folded in.
    """

    mode: str
    num_out: int
    num_in: int
    flat_index: Tensor | None = None
    backward_index: Tensor | None = None
    zero_slot: bool = False
    scale: float = 1.0
    group_index: Tensor | None = None
    spatial_matrix: Tensor | None = None


def build_discrete_plan(
    out_channels: int,
    in_channels: int,
    spatial_index: Tensor,
    spatial_weight: Tensor,
    exact: bool,
    group_index: Tensor,
    scale: Tensor,
    pair_mask: Tensor | None = None,
) -> DiscretePlan:
    """Combine the spatial sampling ``(P, N_out, K)``, the group-axis index ``(N_out, N_in)``,
    per-element scales ``(N_out,)`` (``|det h_i|^{-1} / N_in``) and an optional ``(N_out, N_in)``
    locality mask into a :class:`DiscretePlan`."""
    P, n_out, K = spatial_index.shape
    n_in = group_index.shape[1]
    gidx = group_index if pair_mask is None else torch.where(pair_mask, group_index, n_in)
    uniform = bool(torch.allclose(scale, scale[:1].expand_as(scale), rtol=1e-12, atol=0))
    if exact and uniform:
        S = n_in * K
        T = out_channels * in_channels * S  # numel of the weight = the zero slot
        s = gidx[:, :, None] * K + spatial_index[0, :, None, :]  # (N_out, N_in, K)
        dead = (spatial_index[0, :, None, :] == K) | (gidx[:, :, None] == n_in)
        o = torch.arange(out_channels).view(-1, 1, 1, 1, 1)
        c = torch.arange(in_channels).view(1, 1, -1, 1, 1)
        flat = (o * in_channels + c) * S + s.view(1, n_out, 1, n_in, K)
        flat = torch.where(dead.view(1, n_out, 1, n_in, K), T, flat).reshape(-1)
        E = flat.numel()
        i_of_e = torch.arange(n_out).view(1, n_out, 1, 1, 1).expand(
            out_channels, n_out, in_channels, n_in, K
        ).reshape(-1)
        live = flat < T
        inv = torch.full((n_out, T), E, dtype=torch.long)
        inv[i_of_e[live], flat[live]] = torch.arange(E)[live]
        return DiscretePlan(
            "gather", n_out, n_in, flat_index=flat, backward_index=inv.reshape(-1),
            zero_slot=bool((~live).any()), scale=float(scale[0]),
        )
    w = spatial_weight * scale.view(1, -1, 1)  # (P, N_out, K)
    M = torch.zeros(n_out, K, K + 1, dtype=w.dtype)
    for p in range(P):
        M.scatter_add_(2, spatial_index[p].unsqueeze(-1), w[p].unsqueeze(-1))
    return DiscretePlan(
        "interp", n_out, n_in, group_index=gidx.reshape(-1), spatial_matrix=M[:, :, :K].contiguous()
    )


class _PermutationExpand(torch.autograd.Function):
    """``flat[index]`` whose backward is the gather ``sum_i grad[backward_index_i]``.

    Valid because each output element's transform reads every weight entry at most once (a
    linear bijection of the kernel grid and a permutation of the group axis).
    """

    @staticmethod
    def forward(
        ctx, flat: Tensor, index: Tensor, backward_index: Tensor, num_out: int, zero_slot: bool
    ) -> Tensor:
        ctx.save_for_backward(backward_index)
        ctx.num_out = num_out
        if zero_slot:
            flat = torch.cat([flat, flat.new_zeros(1)])
        return flat.index_select(0, index)

    @staticmethod
    def backward(ctx, grad: Tensor):
        (backward_index,) = ctx.saved_tensors
        g = torch.cat([grad.reshape(-1), grad.new_zeros(1)])
        return g.index_select(0, backward_index).view(ctx.num_out, -1).sum(0), None, None, None, None


def expand_discrete(
    weight: Tensor,
    mode: str,
    num_out: int,
    kernel_size: Sequence[int],
    flat_index: Tensor | None = None,
    backward_index: Tensor | None = None,
    zero_slot: bool = False,
    scale: float = 1.0,
    group_index: Tensor | None = None,
    spatial_matrix: Tensor | None = None,
) -> Tensor:
    """Expanded weight ``(C_out N_out, C_in N_in, *k)`` from ``weight (C_out, C_in, N_in, *k)``.

    ``"gather"`` is a single gather of ``weight.flatten()`` (and a gather in the backward);
    ``"interp"`` a gather of the group axis and one batched matmul with the interpolation
    matrices (cost ``C_out C_in N_out N_in K^2``, independent of batch and image size).
    """
    C_out, C_in, n_in = weight.shape[:3]
    if mode == "gather":
        out = _PermutationExpand.apply(weight.reshape(-1), flat_index, backward_index, num_out, zero_slot)
        if scale != 1.0:
            out = out * scale
        return out.view(C_out * num_out, C_in * n_in, *kernel_size)
    assert group_index is not None and spatial_matrix is not None
    K = spatial_matrix.shape[-1]
    w = torch.nn.functional.pad(weight.reshape(C_out, C_in, n_in, K), (0, 0, 0, 1))
    g = w.index_select(2, group_index).view(C_out, C_in, num_out, n_in, K)
    out = torch.einsum("ocijs,iqs->oicjq", g, spatial_matrix.to(weight.dtype))
    return out.reshape(C_out * num_out, C_in * n_in, *kernel_size)


def continuous_coordinates(
    group: Group,
    out_grid: Tensor,
    in_grid: Tensor | None,
    kernel_size: Sequence[int],
    mask: str = "hard",
    mask_radius: float = 1.0,
    mask_temperature: float = 10.0,
) -> tuple[Tensor, Tensor]:
    """Kernel-net inputs and spatial mask for continuous kernels.

    Returns ``coords (N_out, N_in, K, d + e)`` (lifting: ``N_in = 1``, ``e = 0``) holding
    ``[h_i^{-1} y / r, group.embedding(h_i^{-1} h_j)]`` with ``y / r`` in ``[-1, 1]`` and the
    mask ``(N_out, N_in, K)`` evaluated on the transformed positions ``h_i^{-1} y / r`` (for
    scale groups the support therefore scales with ``h_i``). Grids may be batched
    ``(B, N, *e)``; the leading batch dimension is then kept.
    """
    dtype = out_grid.dtype if out_grid.is_floating_point() else torch.float64
    y = kernel_positions(kernel_size, dtype).to(out_grid.device)
    r = kernel_radius(kernel_size, dtype).to(out_grid.device)
    inv = group.inverse(out_grid)
    M = group.matrix(inv).to(dtype)  # (..., N_out, d, d)
    z = torch.einsum("...nab,kb->...nka", M, y) / r  # (..., N_out, K, d)
    m = circular_mask(z, mask, mask_radius, mask_temperature)  # (..., N_out, K)
    if in_grid is None:
        return z.unsqueeze(-3), m.unsqueeze(-2)
    ne = len(group.element_shape)
    rel = group.product(inv.unsqueeze(-ne - 1), in_grid.unsqueeze(-ne - 2))  # (..., N_out, N_in, *e)
    emb = group.embedding(rel).to(dtype)  # (..., N_out, N_in, E)
    n_in = emb.shape[-2]
    zz = z.unsqueeze(-3).expand(*z.shape[:-2], n_in, *z.shape[-2:])
    ee = emb.unsqueeze(-2).expand(*emb.shape[:-1], z.shape[-2], emb.shape[-1])
    coords = torch.cat([zz, ee], dim=-1)
    return coords, m.unsqueeze(-2).expand(*m.shape[:-1], n_in, m.shape[-1])
