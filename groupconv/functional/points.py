"""Point-cloud primitives: neighbourhoods, farthest-point subsampling and lifting to a group.

All functions are batched over padded point clouds ``(B, N, d)`` with an optional boolean
``mask`` ``(B, N)`` (``True`` = a real point), follow the device and dtype of their inputs and
never synchronise with the host.

* :func:`knn_neighbors` / :func:`radius_neighbors` -- neighbour indices ``(B, M, K)`` and their
  validity, computed in query chunks so memory stays ``O(chunk * N)`` (never ``N x N`` at once
  unless ``N`` is small);
* :func:`farthest_point_sampling` -- ``m`` well-spread points, started at the point farthest
  from the centroid (so the choice commutes with rigid motions, similarities and permutations
  of the point order, barring exact ties);
* :func:`lift_points` -- each point ``x`` becomes ``S`` group elements ``u = (x, h)`` of
  ``R^d ⋊ H`` (a fibre of the quotient ``G -> G/H = R^d``), or ``x`` itself for ``T(d)``, or,
  for a rotation group that fixes the origin (``SO2``, ``SO3`` acting on R^d), rotations ``u``
  with ``u e_0 = x / |x|``; the orbit of ``x`` (a sphere) is identified by
  :func:`orbit_invariants` (``|x|``), and :func:`lifted_positions` recovers ``x`` from both;
* :func:`point_neighborhoods` -- query points (all, or farthest-point samples) and their
  neighbours, shared by the point layers.

Neighbourhoods are taken on the quotient ``R^d`` (the distance between the points' translation
parts ``|x_u - x_v|``): it is invariant under every isometry, k-nearest orderings are invariant
under similarities too, and the whole fibre of a neighbour is kept, so no tie between the
``S`` elements of one point can split a fibre.

Example:
    >>> import torch
    >>> from groupconv.groups import SE2
    >>> x = torch.randn(2, 10, 2, generator=torch.Generator().manual_seed(0))
    >>> idx, valid = knn_neighbors(x, 4)
    >>> idx.shape, bool(valid.all())
    (torch.Size([2, 10, 4]), True)
    >>> lift_points(SE2(), x, num_frames=3).shape
    torch.Size([2, 10, 3, 3])
"""

from __future__ import annotations

import torch

from .._validation import check_positive_int, check_tensor
from ..groups.base import Group
from ..groups.euclidean import Translations
from ..groups.products import SemidirectProduct
from ..groups.rotations import SO2
from ..groups.so3 import SO3

__all__ = [
    "FRAME_MODES",
    "check_points",
    "check_lifted_elements",
    "knn_neighbors",
    "radius_neighbors",
    "farthest_point_sampling",
    "gather_points",
    "lift_points",
    "lifted_positions",
    "orbit_invariants",
    "point_dim",
    "point_neighborhoods",
    "translation_dim",
]

#: Ways :func:`lift_points` chooses the stabiliser elements of each point.
FRAME_MODES = ("neighbors", "sample", "grid")

_CHUNK_ELEMENTS = 1 << 22  # pairwise distances held at once (per chunk of query points)


def check_lifted_elements(elements: object, group: Group) -> torch.Tensor:
    """``elements`` checked as lifted points ``(B, N, S, *group.element_shape)`` of ``group``.

    Example:
        >>> from groupconv.groups import SE2
        >>> check_lifted_elements(lift_points(SE2(), torch.randn(2, 5, 2)), SE2()).shape[:3]
        torch.Size([2, 5, 1])
    """
    elements = check_tensor(elements, "elements")
    shape = tuple(group.element_shape)
    if elements.dim() != 3 + len(shape) or tuple(elements.shape[3:]) != shape:
        raise ValueError(f"elements must be lifted points (B, N, S, {', '.join(map(str, shape))}) of "
                         f"{group!r}, got shape {tuple(elements.shape)}")
    return elements


def check_points(
    points: object, mask: object = None, name: str = "points"
) -> tuple[torch.Tensor, torch.Tensor]:
    """Validate ``points`` ``(B, N, d)`` and ``mask`` ``(B, N)``; return them (mask all-True if None)."""
    points = check_tensor(points, name)
    if points.dim() != 3 or not points.is_floating_point():
        raise ValueError(f"{name} must be a float point cloud (B, N, d), got shape {tuple(points.shape)} "
                         f"and dtype {points.dtype}")
    B, N, _ = points.shape
    if mask is None:
        return points, torch.ones(B, N, dtype=torch.bool, device=points.device)
    mask = check_tensor(mask, "mask")
    if tuple(mask.shape) != (B, N):
        raise ValueError(f"mask must have shape (B, N) = {(B, N)}, got {tuple(mask.shape)}")
    return points, mask.to(device=points.device, dtype=torch.bool)


def gather_points(x: torch.Tensor, idx: torch.Tensor) -> torch.Tensor:
    """``x[b, idx[b, ...]]`` for ``x`` ``(B, N, *rest)`` and long ``idx`` ``(B, *shape)``."""
    B = x.shape[0]
    flat = idx.reshape(B, -1)
    rest = x.shape[2:]
    out = torch.gather(x.reshape(B, x.shape[1], -1), 1,
                       flat.unsqueeze(-1).expand(-1, -1, x[0, 0].numel() if x.shape[1] else 1))
    return out.reshape(*idx.shape, *rest)


def knn_neighbors(
    points: torch.Tensor,
    k: int,
    mask: torch.Tensor | None = None,
    queries: torch.Tensor | None = None,
    query_mask: torch.Tensor | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """The ``k`` nearest (Euclidean) points of each query, itself included when it is a point.

    Returns ``idx`` ``(B, M, k)`` (long) and ``valid`` ``(B, M, k)``: a neighbour is invalid when
    it is padding (fewer than ``k`` real points) or the query itself is padding. ``queries``
    defaults to ``points``.

    Example:
        >>> import torch
        >>> pts = torch.tensor([[[0.0], [1.0], [3.0]]])
        >>> knn_neighbors(pts, 2)[0][0].tolist()
        [[0, 1], [1, 0], [2, 1]]
    """
    points, mask = check_points(points, mask)
    k = check_positive_int(k, "k")
    if queries is None:
        queries, query_mask = points, mask if query_mask is None else query_mask
    queries, query_mask = check_points(queries, query_mask, "queries")
    B, N, _ = points.shape
    M = queries.shape[1]
    kk = min(k, N)
    chunk = max(1, _CHUNK_ELEMENTS // max(1, B * N))
    idx_parts, d_parts = [], []
    big = torch.finfo(points.dtype).max
    for s in range(0, M, chunk):
        q = queries[:, s : s + chunk]
        d2 = (q.unsqueeze(2) - points.unsqueeze(1)).pow(2).sum(-1)  # (B, m, N), no cdist rounding tricks
        d2 = d2.masked_fill(~mask.unsqueeze(1), big)
        dist, idx = torch.topk(d2, kk, dim=-1, largest=False, sorted=True)
        idx_parts.append(idx)
        d_parts.append(dist)
    idx, dist = torch.cat(idx_parts, 1), torch.cat(d_parts, 1)
    valid = (dist < big) & query_mask.unsqueeze(-1)
    if kk < k:  # fewer points than k: pad with invalid copies of the first neighbour
        pad = k - kk
        idx = torch.cat([idx, idx[..., :1].expand(-1, -1, pad)], -1)
        valid = torch.cat([valid, torch.zeros_like(valid[..., :1]).expand(-1, -1, pad)], -1)
    return idx, valid


def radius_neighbors(
    points: torch.Tensor,
    radius: float,
    max_neighbors: int,
    mask: torch.Tensor | None = None,
    queries: torch.Tensor | None = None,
    query_mask: torch.Tensor | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Up to ``max_neighbors`` nearest points within distance ``radius`` of each query.

    Same outputs as :func:`knn_neighbors`; neighbours farther than ``radius`` are invalid. A
    ball is invariant under isometries (not under scaling: use k nearest for Sim(2)).

    Example:
        >>> import torch
        >>> pts = torch.tensor([[[0.0], [1.0], [3.0]]])
        >>> radius_neighbors(pts, 1.5, 3)[1][0].tolist()
        [[True, True, False], [True, True, False], [True, False, False]]
    """
    if not float(radius) > 0:
        raise ValueError(f"radius must be positive, got {radius}")
    idx, valid = knn_neighbors(points, max_neighbors, mask, queries, query_mask)
    q = points if queries is None else queries
    d2 = (gather_points(points, idx) - q.unsqueeze(2)).pow(2).sum(-1)
    return idx, valid & (d2 <= float(radius) ** 2)


def farthest_point_sampling(
    points: torch.Tensor, m: int, mask: torch.Tensor | None = None
) -> tuple[torch.Tensor, torch.Tensor]:
    """Indices ``(B, m)`` of ``m`` points chosen greedily farthest from those already chosen.

    The first point is the real point farthest from the centroid of the real points, so the
    selection (as a set of points) commutes with isometries, uniform scalings and permutations
    of the point order (up to exact distance ties). Returns ``idx`` and ``valid`` ``(B, m)``
    (``False`` where a cloud has fewer than ``m`` real points; those slots repeat a chosen one).

    Example:
        >>> import torch
        >>> pts = torch.tensor([[[0.0], [1.0], [2.0], [10.0]]])
        >>> farthest_point_sampling(pts, 2)[0].tolist()
        [[3, 0]]
    """
    points, mask = check_points(points, mask)
    m = check_positive_int(m, "m")
    B, N, _ = points.shape
    w = mask.to(points.dtype)
    centroid = (points * w.unsqueeze(-1)).sum(1, keepdim=True) / w.sum(1).clamp_min(1)[:, None, None]
    score = (points - centroid).pow(2).sum(-1).masked_fill(~mask, -1.0)
    cur = score.argmax(1)  # (B,)
    mind = torch.full((B, N), float("inf"), dtype=points.dtype, device=points.device).masked_fill(~mask, -1.0)
    out = []
    ar = torch.arange(B, device=points.device)
    for _ in range(m):
        out.append(cur)
        d = (points - points[ar, cur].unsqueeze(1)).pow(2).sum(-1)
        mind = torch.minimum(mind, d).masked_fill(~mask, -1.0)
        cur = mind.argmax(1)
    idx = torch.stack(out, 1)
    valid = torch.arange(m, device=points.device).unsqueeze(0) < mask.sum(1, keepdim=True)
    idx = torch.where(valid, idx, idx[:, :1])
    return idx, valid


def translation_dim(group: Group) -> int:
    """``d`` of a group usable on point clouds of R^d (``Translations(d)`` or ``R^d ⋊ H``)."""
    if isinstance(group, Translations):
        return group.d
    if isinstance(group, SemidirectProduct):
        return group.d
    raise TypeError(
        f"group must be Translations(d) or a SemidirectProduct R^d ⋊ H (SE2, SE3, E2, Sim2, ...), "
        f"got {group!r}"
    )


def _is_rotation(group: Group) -> bool:
    return isinstance(group, (SO2, SO3))


def point_dim(group: Group) -> int:
    """``d`` of a group usable on point clouds of R^d: ``Translations(d)``, ``R^d ⋊ H`` or a
    rotation group fixing the origin (``SO2``: 2, ``SO3``: 3).

    Example:
        >>> from groupconv.groups import SO3, SE2
        >>> point_dim(SO3()), point_dim(SE2())
        (3, 2)
    """
    if _is_rotation(group):
        return group.space_dim
    if isinstance(group, (Translations, SemidirectProduct)):
        return translation_dim(group)
    raise TypeError(
        f"group must be Translations(d), a SemidirectProduct R^d ⋊ H (SE2, SE3, E2, Sim2, ...) or a "
        f"rotation group fixing the origin (SO2, SO3), got {group!r}"
    )


def orbit_invariants(group: Group, points: torch.Tensor) -> torch.Tensor:
    """Identifiers of the orbits of ``group`` through ``points`` ``(B, N, d)``: ``(B, N, q)``.

    ``|x|`` (``q = 1``) for a rotation group fixing the origin (its orbits are spheres); empty
    (``q = 0``) for groups with translations (one orbit, R^d). Pass it as ``orbits`` (first
    columns) to the point layers; for rotation groups it is required there.

    Example:
        >>> import torch
        >>> from groupconv.groups import SO2
        >>> orbit_invariants(SO2(), torch.tensor([[[3.0, 4.0]]])).tolist()
        [[[5.0]]]
    """
    points = check_tensor(points, "points")
    point_dim(group)
    if _is_rotation(group):
        return torch.linalg.vector_norm(points, dim=-1, keepdim=True)
    return points[..., :0]


def lifted_positions(
    group: Group, elements: torch.Tensor, orbits: torch.Tensor | None = None
) -> torch.Tensor:
    """The points ``(B, N, d)`` of lifted elements ``(B, N, S, *element_shape)`` (fibre 0).

    The translation part for ``T(d)`` / ``R^d ⋊ H``; ``|x| u e_0`` for a rotation group, with
    ``|x|`` the first column of ``orbits`` (:func:`orbit_invariants`).

    Example:
        >>> import torch
        >>> from groupconv.groups import SO2
        >>> x = torch.tensor([[[0.0, 2.0]]])
        >>> u = lift_points(SO2(), x)
        >>> torch.allclose(lifted_positions(SO2(), u, orbit_invariants(SO2(), x)), x, atol=1e-6)
        True
    """
    d = point_dim(group)
    B, N = elements.shape[:2]
    if not _is_rotation(group):
        return elements.reshape(B, N, elements.shape[2], -1)[:, :, 0, :d]
    if orbits is None or orbits.dim() != 3 or tuple(orbits.shape[:2]) != (B, N) or orbits.shape[-1] < 1:
        got = None if orbits is None else tuple(orbits.shape)
        raise ValueError(f"orbits must be (B, N, q >= 1) = ({B}, {N}, >= 1) with |x| first for the rotation "
                         f"group {group!r} (see orbit_invariants), got {got}")
    direction = group.matrix(elements[:, :, 0])[..., :, 0]  # u e_0
    return orbits[..., :1].to(direction.dtype) * direction


def point_neighborhoods(
    points: torch.Tensor,
    mask: torch.Tensor,
    num_neighbors: int,
    radius: float | None = None,
    num_samples: int | None = None,
) -> tuple[torch.Tensor | None, torch.Tensor, torch.Tensor, torch.Tensor]:
    """Queries and neighbourhoods of a (padded) cloud: ``(q_idx, q_valid, idx, valid)``.

    ``q_idx`` ``(B, M)``: farthest-point samples when ``num_samples`` is given, else ``None``
    (every point is a query, ``M = N``); ``q_valid`` ``(B, M)``; ``idx``/``valid``
    ``(B, M, K)``: the ``num_neighbors`` nearest points of each query (within ``radius`` if
    given), as :func:`knn_neighbors` / :func:`radius_neighbors`.

    Example:
        >>> import torch
        >>> pts = torch.randn(2, 10, 3)
        >>> q_idx, q_valid, idx, valid = point_neighborhoods(pts, torch.ones(2, 10, dtype=torch.bool), 4,
        ...                                                  num_samples=5)
        >>> q_idx.shape, idx.shape
        (torch.Size([2, 5]), torch.Size([2, 5, 4]))
    """
    if num_samples is not None:
        q_idx, q_valid = farthest_point_sampling(points, num_samples, mask)
        q_valid = q_valid & torch.gather(mask, 1, q_idx)
        q_pts = gather_points(points, q_idx)
    else:
        q_idx, q_valid, q_pts = None, mask, points
    if radius is None:
        idx, valid = knn_neighbors(points, num_neighbors, mask, q_pts, q_valid)
    else:
        idx, valid = radius_neighbors(points, radius, num_neighbors, mask, q_pts, q_valid)
    return q_idx, q_valid, idx, valid


def _rotation_frames(
    group: Group, points: torch.Tensor, mask: torch.Tensor, S: int, frames: str,
    generator: torch.Generator | None,
) -> torch.Tensor:
    """SO2/SO3 elements ``(B, N, S, *shape)`` with ``u e_0 = x / |x|`` (origin-fixing lift)."""
    tiny = torch.finfo(points.dtype).tiny
    if isinstance(group, SO2):
        if S != 1:
            raise ValueError(f"num_frames must be 1 for {group!r} on R^2 (the stabiliser of x != 0 is "
                             f"trivial), got {S}")
        return torch.atan2(points[..., 1], points[..., 0])[..., None, None]
    B, N, _ = points.shape
    e1 = points / torch.linalg.vector_norm(points, dim=-1, keepdim=True).clamp_min(tiny)
    e1 = e1.unsqueeze(2).expand(B, N, S, 3)
    if frames == "neighbors":  # directions to the S nearest other points, orthogonal to x
        idx, _ = knn_neighbors(points, S + 1, mask)
        ref = gather_points(points, idx[..., 1:])
    elif frames == "sample":
        ref = torch.randn(B, N, S, 3, generator=generator, dtype=points.dtype).to(points.device)
    else:  # the same S angles about x for every point, from the axis least aligned with x
        axis = torch.eye(3, dtype=points.dtype, device=points.device)[e1[..., 0, :].abs().argmin(-1)]
        t = torch.arange(S, dtype=points.dtype, device=points.device) * (2 * torch.pi / S)
        a = axis - (axis * e1[..., 0, :]).sum(-1, keepdim=True) * e1[..., 0, :]
        a = a / torch.linalg.vector_norm(a, dim=-1, keepdim=True).clamp_min(tiny)
        b = torch.linalg.cross(e1[..., 0, :], a, dim=-1)
        ref = torch.cos(t)[:, None] * a.unsqueeze(2) + torch.sin(t)[:, None] * b.unsqueeze(2)
    e2 = ref - (ref * e1).sum(-1, keepdim=True) * e1
    e2 = e2 / torch.linalg.vector_norm(e2, dim=-1, keepdim=True).clamp_min(tiny)
    e3 = torch.linalg.cross(e1, e2, dim=-1)
    return torch.stack([e1, e2, e3], dim=-1)


def _neighbor_frames(
    group: SemidirectProduct, points: torch.Tensor, mask: torch.Tensor, S: int
) -> torch.Tensor:
    """H elements ``(B, N, S, *H.element_shape)`` built from directions to nearest neighbours."""
    H = group.H
    need = S + 1 if isinstance(H, SO2) else S + 2
    idx, valid = knn_neighbors(points, need, mask)
    nb = gather_points(points, idx[..., 1:])  # (B, N, need-1, d), self excluded
    diff = nb - points.unsqueeze(2)
    if isinstance(H, SO2):
        # the rotation taking e_0 to the direction of the j-th neighbour (points are (row, col))
        theta = torch.atan2(diff[..., 1], diff[..., 0])
        return theta[..., :S].unsqueeze(-1)
    e1 = diff[..., :S, :]
    e2 = diff[..., 1 : S + 1, :]
    e1 = e1 / torch.linalg.vector_norm(e1, dim=-1, keepdim=True).clamp_min(torch.finfo(e1.dtype).tiny)
    e2 = e2 - (e2 * e1).sum(-1, keepdim=True) * e1
    e2 = e2 / torch.linalg.vector_norm(e2, dim=-1, keepdim=True).clamp_min(torch.finfo(e2.dtype).tiny)
    e3 = torch.linalg.cross(e1, e2, dim=-1)
    return torch.stack([e1, e2, e3], dim=-1)  # columns: R e_i = e_i-th frame vector


def lift_points(
    group: Group,
    points: torch.Tensor,
    mask: torch.Tensor | None = None,
    *,
    num_frames: int = 1,
    frames: str = "neighbors",
    generator: torch.Generator | None = None,
) -> torch.Tensor:
    """Lift points ``(B, N, d)`` to group elements ``(B, N, S, *group.element_shape)``.

    * ``Translations(d)``: the points themselves (``S = 1``).
    * ``R^d ⋊ H``: ``u = (x, h_s)`` for ``S = num_frames`` stabiliser elements ``h_s`` per point:

      - ``frames="neighbors"`` (H = SO2 or SO3): ``h_s`` is the frame pointing at the point's
        ``s``-th nearest neighbour (SO3: Gram-Schmidt of the ``s``-th and ``s+1``-th). The lift
        commutes exactly with rigid motions, ``lift(g x) = g lift(x)``, so layers on the lift
        are exactly equivariant end to end (needs ``S + 1`` (SO2) / ``S + 2`` (SO3) real points);
      - ``frames="sample"``: ``h_s`` drawn independently per point by ``H.sample`` (Haar for
        compact H): LieConv's Monte-Carlo lift, equivariant in distribution;
      - ``frames="grid"``: the same ``H.grid(S)`` for every point (identity first).

    * ``SO2`` / ``SO3`` (rotations fixing the origin): ``u`` with ``u e_0 = x / |x|`` (SO2: the
      angle of ``x``, ``S = 1``; SO3: ``S`` elements of the stabiliser circle, the second axis
      pointing at the ``s``-th nearest neighbour's component orthogonal to ``x``
      (``"neighbors"``, exact: ``lift(R x) = R lift(x)``), a random direction (``"sample"``) or
      ``S`` equally spaced angles (``"grid"``)). Pass :func:`orbit_invariants` (``|x|``) to the
      layers as ``orbits``.

    Padding points (``mask`` False) get lifted too; layers ignore them.

    Example:
        >>> import torch
        >>> from groupconv.groups import SE3
        >>> x = torch.randn(1, 6, 3, generator=torch.Generator().manual_seed(0))
        >>> u = lift_points(SE3(), x, num_frames=2)
        >>> u.shape, bool(torch.allclose(u[..., :3], x[:, :, None].expand(-1, -1, 2, -1)))
        (torch.Size([1, 6, 2, 12]), True)
    """
    points, mask = check_points(points, mask)
    d = point_dim(group)
    if points.shape[-1] != d:
        raise ValueError(
            f"points must have d = {d} coordinates for {group!r}, got shape {tuple(points.shape)}"
        )
    S = check_positive_int(num_frames, "num_frames")
    B, N, _ = points.shape
    if frames not in FRAME_MODES:
        raise ValueError(f"frames must be one of {FRAME_MODES}, got {frames!r}")
    if _is_rotation(group):
        return _rotation_frames(group, points, mask, S, frames, generator)
    if isinstance(group, Translations):
        if S != 1:
            raise ValueError(f"num_frames must be 1 for {group!r} (trivial stabiliser), got {S}")
        return points.unsqueeze(2)
    H = group.H
    if frames == "neighbors":
        if not isinstance(H, (SO2, SO3)):
            raise ValueError(f"frames='neighbors' needs H = SO2 or SO3, got {H!r}; use frames='sample'")
        h = _neighbor_frames(group, points, mask, S)
    elif frames == "sample":
        h = H.sample(B * N * S, generator=generator, dtype=points.dtype).to(points.device)
        h = h.reshape(B, N, S, *H.element_shape)
    else:
        h = H.grid(S, device=points.device, dtype=points.dtype).expand(B, N, S, *H.element_shape)
    t = points.unsqueeze(2).expand(B, N, S, d)
    return group.combine(t, h.to(points.dtype))
