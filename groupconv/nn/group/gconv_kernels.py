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
* :class:`DiscretePlan`: both combined, per output channel (tables of ``N_out C_in N_in K``
  entries, broadcast over ``C_out``): one column gather of the weight for grid-preserving
  transforms, or one matmul with the stacked interpolation matrices followed by one gather of
  ``K``-rows otherwise. Backward passes are gathers too (no scatter); the plan is built with a
  few vectorised ops whatever the channel counts.
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

import numpy as np
import torch
from torch import Tensor

from ..._validation import check_positive_int
from ...groups.base import Group
from ...sampling.samplers import Sampler

__all__ = [
    "as_tuple",
    "resolve_grid",
    "kernel_positions",
    "kernel_radius",
    "circular_mask",
    "group_elements_dtype",
    "spatial_sampling",
    "mask_sampling",
    "relative_index",
    "DiscretePlan",
    "build_discrete_plan",
    "expand_discrete",
    "continuous_coordinates",
    "batched_continuous_weight",
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
    group: Group, num_elements: int | None, sampler: Sampler | None, name: str, *, per_batch: bool = False
) -> tuple[Tensor, bool]:
    """The layer's deterministic grid (float64 where floating) and whether ``sampler`` is random.

    Finite groups: all elements (or ``group.grid(num_elements)``, a subgroup); continuous groups
    need ``num_elements``; a random sampler's deterministic (eval) grid is ``group.grid(n)``.
    Samplers with ``per="batch"`` are refused unless ``per_batch`` (the layer draws one grid
    per batch element).
    """
    dt = group_elements_dtype(group)
    if sampler is not None:
        if not callable(sampler) or not hasattr(sampler, "num_elements"):
            raise TypeError(f"sampler must be a groupconv.sampling.Sampler, got {type(sampler).__name__}")
        batched = bool(getattr(sampler, "per_batch_element", False))
        if batched and not per_batch:
            raise ValueError(
                f"sampler with per='batch' is not supported by {name}: use per='call' (got {sampler!r})"
            )
        n = sampler.num_elements(group, num_elements)
        if not sampler.is_deterministic:
            return group.grid(n, dtype=dt), True
        if batched:
            return sampler(group, n, batch_size=1, dtype=dt)[0], False
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
    index = torch.where(inside, flat, K)
    if mask_radius is not None:
        index, weight = mask_sampling(index, weight, kernel_size, mask_radius)
    weight = torch.where(index == K, 0.0, weight)
    return index, weight, exact


def mask_sampling(
    index: Tensor, weight: Tensor, kernel_size: Sequence[int], mask_radius: float
) -> tuple[Tensor, Tensor]:
    """Restrict a :func:`spatial_sampling` result to the ball of radius ``mask_radius``.

    ``spatial_sampling(G, grid, k, r)`` equals ``mask_sampling(*spatial_sampling(G, grid, k)[:2],
    k, r)``: positions outside the ball are zeroed in the base kernel (as sources) and in the
    transformed one (as targets).
    """
    K = index.shape[-1]
    r = kernel_radius(kernel_size)
    keep = circular_mask(kernel_positions(kernel_size) / r, "hard", mask_radius).bool()  # (K,)
    keep_src = torch.cat([keep, keep.new_zeros(1)])
    index = torch.where(keep_src[index], index, K)
    weight = torch.where(index == K, 0.0, weight * keep.to(weight.dtype))
    return index, weight


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
        ne = len(group.element_shape)
        both = torch.cat([rel.reshape(-1, *rel.shape[rel.dim() - ne :]), in_grid])
        try:
            all_ids = group.index(both)  # one membership check for both
        except ValueError:
            return None
        ids, grid_ids = all_ids[: -n_in].view(rel.shape[: rel.dim() - ne]), all_ids[-n_in:]
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

    The expansion is ONE gather of columns of a small per-output-channel source ``src
    (C_out, L)``: its index tables broadcast over ``C_out`` (``N_out C_in N_in K`` entries,
    whatever ``C_out``), and its backward is a gather and a sum too (no scatter; deterministic).

    ``mode == "gather"`` (every transform exact, uniform scale): ``src`` is
    ``scale * weight.view(C_out, C_in N_in K)`` and ``flat_index`` ``(N_out C_in N_in K,)``
    lists, for the expanded row in the order ``(i, c, j, q)``, the source column
    ``(c, h_i^{-1} h_j, h_i^{-1} y_q)``.

    ``mode == "interp"``: the d-linear interpolation matrices ``M_i`` (``|det h_i|^{-1} / N_in``
    and the mask folded in) are factored as ``M_i = Pi_i M_r(i)`` over a few representatives
    ``r`` (``Pi_i`` a permutation of the kernel grid: rotating by a grid symmetry after
    interpolating, e.g. C_8 = 2 representatives times the 90-degree rotations);
    ``spatial_matrix (K, R K)`` holds ``M_r^T`` side by side, ``src = weight.view(-1, K) @
    spatial_matrix`` (columns ``(c, j', r, q')``) and ``group_index`` is the column gather
    (the row ``q`` of ``M_i`` is the row ``Pi_i(q)`` of ``M_r(i)``).

    Both: index ``L`` is a zero column appended when ``zero_slot`` (masked pairs and positions);
    ``backward_index`` ``(P L,)`` gives, for ``P`` blocks of output elements that read each
    source entry at most once, the expanded column reading each source column, or the zero slot
    ``N_out C_in N_in K`` of the gradient (appended when ``backward_zero_slot``); the source
    gradient is that gather summed over the ``P`` blocks.
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
    backward_zero_slot: bool = False


def _gather_tables(src: Tensor, block: Tensor, src_len: int) -> tuple[Tensor, Tensor, bool, bool]:
    """Forward and backward gather tables from ``src (N_out, A)`` (source column of each
    expanded column ``(i, a)``, ``-1``: zero) and ``block (N_out,)`` (the backward block of each
    ``h_i``; within a block every source column is read at most once)."""
    n_out, A = src.shape
    E = n_out * A  # expanded columns = the gradient's zero slot
    dead = src < 0
    col = torch.where(dead, src_len, src)
    blocks = int(block.max()) + 1
    inv = torch.full((blocks * (src_len + 1),), E, dtype=torch.long)
    # dead entries all land in the dropped column src_len of their block
    inv.scatter_(0, (col + block.view(-1, 1) * (src_len + 1)).reshape(-1), torch.arange(E))
    inv = inv.view(blocks, src_len + 1)[:, :src_len]
    return col.reshape(-1), inv.reshape(-1), bool(dead.any()), bool((inv == E).any())


def _factor_interpolation(M: Tensor, tol: float = 1e-12) -> tuple[list[int], Tensor, Tensor]:
    """``M (N, K, S)`` as ``M_i = M_r(i)[perm_i]`` (row permutations) over few representatives.

    Returns ``(reps, rep_of (N,), perm (N, K))``; ``M_i[q] == M_{reps[rep_of[i]]}[perm[i, q]]``
    up to ``tol`` (relative). Rows are matched by sorting a generic projection and the match is
    verified, so a failed match only costs a representative, never correctness.
    """
    m = M.detach().cpu().double().numpy()
    n, K, S = m.shape
    atol = tol * max(1.0, float(np.abs(m).max()))
    v = np.sqrt(np.arange(2.0, S + 2.0))  # a generic projection: equal rows <=> equal keys
    keys = m @ v  # (N, K)
    order = np.argsort(keys, axis=1, kind="stable")
    sk = np.take_along_axis(keys, order, axis=1)
    reps: list[int] = []
    rep_of = np.zeros(n, dtype=np.int64)
    perm = np.zeros((n, K), dtype=np.int64)
    for i in range(n):
        for t, r in enumerate(reps):
            if np.abs(sk[i] - sk[r]).max() > atol * K:
                continue
            p = np.empty(K, dtype=np.int64)
            p[order[i]] = order[r]
            if np.abs(m[i] - m[r][p]).max() <= atol:
                rep_of[i], perm[i] = t, p
                break
        else:
            rep_of[i], perm[i] = len(reps), np.arange(K)
            reps.append(i)
    return reps, torch.from_numpy(rep_of), torch.from_numpy(perm)


def build_discrete_plan(
    out_channels: int,
    in_channels: int,
    spatial_index: Tensor,
    spatial_weight: Tensor,
    exact: bool,
    group_index: Tensor,
    scale: Tensor,
    pair_mask: Tensor | None = None,
    spatial_matrices: Tensor | None = None,
) -> DiscretePlan:
    """Combine the spatial sampling ``(P, N_out, K)``, the group-axis index ``(N_out, N_in)``,
    per-element scales ``(N_out,)`` (``|det h_i|^{-1} / N_in``) and an optional ``(N_out, N_in)``
    locality mask into a :class:`DiscretePlan` (cost independent of ``out_channels``).

    ``spatial_matrices (N_out, K, S)`` replaces the sampling by dense per-element matrices from
    ``S`` weight entries to the ``K`` kernel positions (a steerable basis evaluated at the
    transformed positions, :mod:`groupconv.nn.group.gconv_basis`); the plan is then ``"interp"``
    with ``spatial_matrix (S, R K)`` and a weight of ``S`` entries per kernel."""
    P, n_out, K = spatial_index.shape
    n_in = group_index.shape[1]
    C = in_channels
    gidx = group_index if pair_mask is None else torch.where(pair_mask, group_index, n_in)
    g = gidx.view(n_out, 1, n_in, 1)
    c = torch.arange(C).view(1, C, 1, 1)
    uniform = bool(torch.allclose(scale, scale[:1].expand_as(scale), rtol=1e-12, atol=0))
    if exact and uniform and spatial_matrices is None:
        sp = spatial_index[0].view(n_out, 1, 1, K)
        src = (c * n_in + g) * K + sp  # (N_out, C, N_in, K)
        src = torch.where((g == n_in) | (sp == K), -1, src).reshape(n_out, -1)
        index, back, zs, bzs = _gather_tables(src, torch.arange(n_out), C * n_in * K)
        return DiscretePlan(
            "gather", n_out, n_in, flat_index=index, backward_index=back, zero_slot=zs,
            scale=float(scale[0]), backward_zero_slot=bzs,
        )
    if spatial_matrices is not None:
        M = spatial_matrices.to(torch.float64) * scale.view(-1, 1, 1).to(torch.float64)
    else:
        w = spatial_weight * scale.view(1, -1, 1)  # (P, N_out, K)
        M = torch.zeros(n_out, K, K + 1, dtype=w.dtype)
        for p in range(P):
            M.scatter_add_(2, spatial_index[p].unsqueeze(-1), w[p].unsqueeze(-1))
        M = M[:, :, :K]  # M[i, q, s]: transformed position q <- base position s
    S = M.shape[2]
    reps, rep_of, perm = _factor_interpolation(M)
    R = len(reps)
    Mt = M[reps].permute(2, 0, 1).reshape(S, R * K).contiguous()  # [s, (r, q')]
    # expanded (i, c, j, q) <- src column (c, g_ij, r(i), perm_i(q)) of weight @ Mt
    r = rep_of.view(n_out, 1, 1, 1)
    src = ((c * n_in + g) * R + r) * K + perm.view(n_out, 1, 1, K)
    src = torch.where(g == n_in, -1, src).reshape(n_out, -1)
    block = torch.zeros(n_out, dtype=torch.long)  # rank of h_i among those sharing r(i)
    for t in range(R):
        members = (rep_of == t).nonzero().view(-1)
        block[members] = torch.arange(members.numel())
    index, back, zs, bzs = _gather_tables(src, block, C * n_in * R * K)
    return DiscretePlan(
        "interp", n_out, n_in, group_index=index, spatial_matrix=Mt, backward_index=back,
        zero_slot=zs, backward_zero_slot=bzs,
    )


class _ColumnGather(torch.autograd.Function):
    """``src.index_select(1, index)`` for ``src (R, L)``, with an optional zero column ``L``.

    ``backward_index`` ``(P L,)`` lists, for each of ``P`` blocks and each source column, the
    output column that reads it (or the output zero slot): valid because within a block every
    source column is read at most once (a bijection of the kernel grid and a permutation of
    the group axis), so the backward is a gather and a sum over the ``P`` blocks.
    """

    @staticmethod
    def forward(ctx, src: Tensor, index: Tensor, backward_index: Tensor, zero_slot: bool,
                backward_zero_slot: bool) -> Tensor:
        ctx.save_for_backward(backward_index)
        ctx.backward_zero_slot = backward_zero_slot
        ctx.src_len = src.shape[1]
        if zero_slot:
            src = torch.cat([src, src.new_zeros(src.shape[0], 1)], dim=1)
        return src.index_select(1, index)

    @staticmethod
    def backward(ctx, grad: Tensor):
        (backward_index,) = ctx.saved_tensors
        if ctx.backward_zero_slot:
            grad = torch.cat([grad, grad.new_zeros(grad.shape[0], 1)], dim=1)
        g = grad.index_select(1, backward_index)
        if g.shape[1] != ctx.src_len:
            g = g.view(g.shape[0], -1, ctx.src_len).sum(1)
        return g, None, None, None, None


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
    backward_zero_slot: bool = True,
) -> Tensor:
    """Expanded weight ``(C_out N_out, C_in N_in, *k)`` from ``weight (C_out, C_in, N_in, *k)``.

    ``"gather"`` is a single gather of the weight's columns (and a gather in the backward);
    ``"interp"`` one small matmul with the representative interpolation matrices (cost
    ``C_out C_in N_in R K^2``, independent of batch and image size) and one such gather. The
    arguments are the fields of :class:`DiscretePlan` (``backward_zero_slot=True`` is always
    valid, ``False`` skips a copy when every source entry is read).
    """
    C_out, C_in, n_in = weight.shape[:3]
    assert backward_index is not None
    if mode == "gather":
        src = weight.reshape(C_out, -1)
        if scale != 1.0:
            src = src * scale
        index = flat_index
    else:
        assert group_index is not None and spatial_matrix is not None
        K = spatial_matrix.shape[0]
        src = (weight.reshape(-1, K) @ spatial_matrix.to(weight.dtype)).view(C_out, -1)
        index = group_index
    out = _ColumnGather.apply(src, index, backward_index, zero_slot, backward_zero_slot)
    return out.view(C_out * num_out, C_in * n_in, *kernel_size)


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


def batched_continuous_weight(
    kernel_net: Any,
    coords: Tensor,
    mask_scale: Tensor,
    out_channels: int,
    in_channels: int,
    kernel_size: Sequence[int],
) -> Tensor:
    """Expanded kernels of ``B`` grids stacked for one grouped conv (``groups=B``).

    ``coords (B, N_out, N_in, K, F)`` and ``mask_scale (B, N_out, N_in, K)`` (mask times
    ``|det h_i|^{-1} / N_in``) -> ``(B C_out N_out, C_in N_in, *k)``: block ``b`` is the
    expanded kernel of grid ``b`` (one batched kernel-net call for all grids).
    """
    B, n_out, n_in, K = mask_scale.shape
    psi = kernel_net(coords) * mask_scale.unsqueeze(-1)  # (B, N_out, N_in, K, C_out C_in)
    psi = psi.view(B, n_out, n_in, K, out_channels, in_channels).permute(0, 4, 1, 5, 2, 3)
    return psi.reshape(B * out_channels * n_out, in_channels * n_in, *kernel_size)
