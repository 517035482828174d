"""Band-limited steerable kernel basis for discrete kernels on sampled rotation groups.

A discrete kernel on a grid of rotations that are not pixel permutations (C_N with N > 4,
SO(2) sampled at N points, D_N / O(2) likewise) cannot be rotated exactly by moving pixels:
bilinear interpolation of a 3x3 or 5x5 pixel kernel blurs it and loses its corners. Here the
base kernel is instead a function on R^2 in a band-limited basis,

    psi(y) = sum_b w_b B_b(y),    B_{j,m,c}(rho, theta) = G(rho - r_j) * [cos | sin](m theta),

Gaussian rings ``G(t) = exp(-t^2 / (2 sigma^2))`` at radii ``r_j = 0, 1, ..., (k - 1) / 2`` times
circular harmonics of frequency ``m <= max_frequency(r_j, (k - 1) / 2)`` (``m = 0`` has only the cosine),
cut off per ring so that each ring is sampled above its Nyquist rate. Every transformed kernel
is the basis EVALUATED at the transformed positions, ``W_i(y_q) = psi(h_i^{-1} y_q)``: the
rotation of the function is exact, the only error left is the sampling of a band-limited
function on the pixel grid. A radial window (pixels with ``|y| > (k - 1) / 2 + 1/2`` are not
sampled in ANY rotation; a property of the positions, not of the parameters) keeps the support
inside the disc the square grid can hold at every angle. The weight holds one coefficient per
basis function: every entry trains, nothing is masked.

Example:
    >>> import torch
    >>> from groupconv.groups import CyclicGroup
    >>> G = CyclicGroup(8)
    >>> M = steerable_matrices(G, G.elements(dtype=torch.float64), (5, 5))
    >>> tuple(M.shape)  # (N, K pixels, S basis functions)
    (8, 25, 7)
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence

import torch
from torch import Tensor

from ...groups.base import Group

__all__ = [
    "default_max_frequency",
    "basis_frequencies",
    "steerable_matrices",
    "supports_steerable",
    "capped_max_frequency",
    "projection_points",
    "projection_matrix",
    "steerable_continuous_coordinates",
    "steerable_group_coordinates",
    "steerable_window",
]

SIGMA = 0.7  # ring width (pixels); measured against 0.6 and 0.8 on the probes


def default_max_frequency(radius: float, max_radius: float) -> int:
    """Frequency cut-off of the ring of radius ``radius`` (pixels) in a kernel whose outermost
    ring has radius ``max_radius``: ``0`` at the centre, ``1`` on the outermost ring (it is cut
    by the square grid at most angles) and ``min(floor(radius), 2)`` in between (a ring of
    circumference ``2 pi r`` sampled with at least ~3 pixels per half period of ``cos(m theta)``).
    Measured on the group-axis probe of ``tests/nn/group/test_off_grid.py`` against higher cut-offs
    (``m <= r``, ``m <= 2 r``), which alias more on the 45-degree grid.

    Example:
        >>> [default_max_frequency(r, 3.0) for r in (0, 1, 2, 3)]
        [0, 1, 2, 1]
    """
    if radius <= 0:
        return 0
    if radius >= max_radius:
        return 1
    return min(int(math.floor(radius)), 2)


def capped_max_frequency(cap: int) -> Callable[[float, float], int]:
    """A cut-off rule ``m <= min(cap, floor(2 r))`` on every ring ``r > 0`` (0 at the centre):
    more expressive small kernels (a 3x3 kernel with ``cap=2`` has 6 functions instead of 4)
    at the price of more aliasing at off-grid angles (see ``tests/nn/group/test_off_grid.py``).

    Example:
        >>> rule = capped_max_frequency(2)
        >>> [rule(r, 1.0) for r in (0.0, 1.0)]
        [0, 2]
    """
    if isinstance(cap, bool) or not isinstance(cap, int) or cap < 0:
        raise ValueError(f"max_frequency must be a non-negative int or None, got {cap!r}")

    def rule(radius: float, max_radius: float) -> int:
        return 0 if radius <= 0 else min(cap, int(math.floor(2 * radius)))

    return rule


def basis_frequencies(
    kernel_size: Sequence[int], max_frequency: Callable[[float, float], int] = default_max_frequency,
    mask: str = "hard", mask_radius: float = 1.0,
) -> list[tuple[float, int, int]]:
    """The basis as ``(ring radius, frequency m, 0 = cos / 1 = sin)`` triples, ring by ring.

    With a ``"hard"`` or ``"smooth"`` window of ``mask_radius`` < 1 (see :func:`steerable_window`)
    the rings outside it are left out (ring ``r`` is kept when ``r + 1/2`` fits in the window;
    the centre ring always is).

    Example:
        >>> basis_frequencies((3, 3))
        [(0.0, 0, 0), (1.0, 0, 0), (1.0, 1, 0), (1.0, 1, 1)]
        >>> [r for r, _, _ in basis_frequencies((5, 5), mask_radius=0.6)]
        [0.0, 1.0, 1.0, 1.0]
    """
    R = (kernel_size[0] - 1) / 2
    rings = int(math.floor(R))
    if mask != "none":
        rings = min(rings, max(0, int(math.floor(mask_radius * (R + 0.5) - 0.5 + 1e-9))))
    out: list[tuple[float, int, int]] = []
    for j in range(rings + 1):
        r = float(j)
        for m in range(max_frequency(r, R) + 1):
            out.append((r, m, 0))
            if m > 0:
                out.append((r, m, 1))
    return out


def supports_steerable(group: Group, out_grid: Tensor, kernel_size: Sequence[int]) -> bool:
    """True when the steerable basis applies: 2D, a square odd kernel and orthogonal matrices."""
    if len(kernel_size) != 2 or kernel_size[0] != kernel_size[1] or kernel_size[0] % 2 == 0:
        return False
    if group.space_dim != 2:
        return False
    M = group.matrix(out_grid).to(torch.float64)
    eye = torch.eye(2, dtype=torch.float64)
    return bool(((M.transpose(-1, -2) @ M - eye).abs() < 1e-9).all())


def _evaluate(points: Tensor, funcs: list[tuple[float, int, int]], sigma: float) -> Tensor:
    """``B_b(points)`` for ``points (..., 2)`` in (row, col) = (y, x) order -> ``(..., S)``."""
    # tensor axis order (row, col); the x axis is col and y points down the rows: theta is
    # measured in the (col, row) plane; any fixed convention works since each h_i is applied
    # to the positions before evaluation.
    row, col = points[..., 0], points[..., 1]
    rho = torch.sqrt(row * row + col * col)
    theta = torch.atan2(row, col)
    cols = []
    for r, m, sin in funcs:
        radial = torch.exp(-((rho - r) ** 2) / (2 * sigma * sigma))
        ang = torch.sin(m * theta) if sin else torch.cos(m * theta)
        cols.append(radial * ang)
    return torch.stack(cols, dim=-1)


def _norms(kernel_size: Sequence[int], funcs: list[tuple[float, int, int]], sigma: float,
           window: Tensor | None = None) -> Tensor:
    """One factor per (ring, frequency) pair: unit mean squared norm on the windowed grid."""
    from .gconv_kernels import kernel_positions

    y = kernel_positions(kernel_size)
    win = _window(y, kernel_size) if window is None else window
    base = _evaluate(y, funcs, sigma) * win.view(-1, 1)
    sq = base.pow(2).sum(0)
    norms = torch.empty(len(funcs), dtype=torch.float64)
    for b, (r, m, _) in enumerate(funcs):
        pair = [c for c, (r2, m2, _) in enumerate(funcs) if r2 == r and m2 == m]
        norms[b] = torch.sqrt(sq[pair].mean())
    return norms


def _window(points: Tensor, kernel_size: Sequence[int]) -> Tensor:
    """1 inside the disc of radius ``(k - 1) / 2 + 1/2`` (pixel units), else 0."""
    R = (kernel_size[0] - 1) / 2
    return (torch.linalg.vector_norm(points, dim=-1) <= R + 0.5 + 1e-9).to(points.dtype)


def steerable_window(kernel_size: Sequence[int], mask: str = "hard", mask_radius: float = 1.0,
                     mask_temperature: float = 10.0) -> Tensor:
    """``(K,)`` weights of the kernel pixels (row-major) that the steerable basis is sampled on.

    The radius is in units of the basis's disc ``(k - 1) / 2 + 1/2`` (pixel units), so the
    default, ``"hard"`` with ``mask_radius=1``, is the disc every rotation of the square grid
    keeps. ``"hard"``: 1 inside ``mask_radius`` times that disc; ``"smooth"``:
    ``sigmoid(mask_temperature (mask_radius - |y| / ((k - 1) / 2 + 1/2)))``; ``"none"``: every
    pixel of the square (corners included: rotations between the pixel-exact angles then move
    support out of the kernel).

    Example:
        >>> steerable_window((3, 3)).tolist()
        [1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0]
        >>> steerable_window((5, 5))[0].item(), steerable_window((5, 5), "none")[0].item()
        (0.0, 1.0)
    """
    from .gconv_kernels import kernel_positions

    if mask not in ("hard", "smooth", "none"):
        raise ValueError(f"mask must be 'hard', 'smooth' or 'none' on the steerable basis, got {mask!r}")
    if not mask_radius > 0:
        raise ValueError(f"mask_radius must be positive, got {mask_radius!r}")
    y = kernel_positions(kernel_size)
    u = torch.linalg.vector_norm(y, dim=-1) / ((kernel_size[0] - 1) / 2 + 0.5)
    if mask == "hard":
        return (u <= mask_radius + 1e-9).to(y.dtype)
    if mask == "smooth":
        return torch.sigmoid(mask_temperature * (mask_radius - u))
    return torch.ones_like(u)


def steerable_matrices(
    group: Group,
    out_grid: Tensor,
    kernel_size: Sequence[int],
    *,
    max_frequency: Callable[[float, float], int] = default_max_frequency,
    sigma: float = SIGMA,
    mask: str = "hard",
    mask_radius: float = 1.0,
    mask_temperature: float = 10.0,
) -> Tensor:
    """``M (N, K, S)``: ``M[i, q, b] = w_q B_b(h_i^{-1} y_q) / n_b``, the transformed basis sampled.

    ``y_q`` runs over the centred kernel grid (pixel units, row-major), ``w_q`` is the window
    of :func:`steerable_window` (by default pixels outside the disc of radius
    ``(k - 1) / 2 + 1/2`` are zero rows, for every ``h_i``), and ``n_b`` normalises each
    (ring, frequency) pair to unit mean squared norm on the untransformed windowed grid (one
    factor for the cosine and the sine, so the pair still rotates into itself).
    """
    from .gconv_kernels import kernel_positions

    funcs = basis_frequencies(kernel_size, max_frequency, mask, mask_radius)
    y = kernel_positions(kernel_size)  # (K, 2)
    win = steerable_window(kernel_size, mask, mask_radius, mask_temperature)
    Minv = group.matrix(group.inverse(out_grid)).to(torch.float64)  # (N, 2, 2)
    pts = torch.einsum("nab,kb->nka", Minv, y)
    B = _evaluate(pts, funcs, sigma) * win.view(1, -1, 1)  # (N, K, S)
    return B / _norms(kernel_size, funcs, sigma, win)


def projection_points(kernel_size: Sequence[int], oversample: int = 3) -> Tensor:
    """``(F, 2)`` points (pixel units, base frame) on an ``oversample``-times finer grid inside
    the disc of radius ``(k - 1) / 2 + 1/2``: where a continuous kernel is read before its
    projection onto the steerable basis.

    Example:
        >>> tuple(projection_points((3, 3), 2).shape)
        (32, 2)
    """
    from .gconv_kernels import kernel_positions

    k = kernel_size[0]
    fine = kernel_positions((k * oversample, k * oversample)) / oversample
    return fine[_window(fine, kernel_size) > 0]


def projection_matrix(
    kernel_size: Sequence[int],
    points: Tensor,
    *,
    max_frequency: Callable[[float, float], int] = default_max_frequency,
    sigma: float = SIGMA,
    mask: str = "hard",
    mask_radius: float = 1.0,
    mask_temperature: float = 10.0,
) -> Tensor:
    """``P (S, F)``: least-squares coefficients in the basis of :func:`steerable_matrices` (same
    window arguments) of a function sampled at ``points (F, 2)`` (its band-limited projection
    on the disc)."""
    funcs = basis_frequencies(kernel_size, max_frequency, mask, mask_radius)
    win = steerable_window(kernel_size, mask, mask_radius, mask_temperature)
    B = _evaluate(points.to(torch.float64), funcs, sigma) / _norms(kernel_size, funcs, sigma, win)
    return torch.linalg.pinv(B)


def steerable_continuous_coordinates(
    group: Group,
    out_grid: Tensor,
    in_grid: Tensor | None,
    kernel_size: Sequence[int],
    oversample: int = 3,
    max_frequency: Callable[[float, float], int] = default_max_frequency,
    mask: str = "hard",
    mask_radius: float = 1.0,
    mask_temperature: float = 10.0,
) -> tuple[Tensor, Tensor]:
    """Band-limited continuous kernels: where to read the kernel net, and how to rotate it.

    Returns ``coords (N_out | 1, N_in, F, 2 + e)`` and ``A (N_out, K, F)``. The kernel net
    ``psi`` is read at fixed base-frame points ``u_f`` (:func:`projection_points`, normalised by
    the kernel radius like the pixel coordinates) and the group-axis embedding of
    ``h_i^{-1} h_j``; its least-squares projection on the steerable basis, evaluated at
    ``h_i^{-1} y_q`` (and windowed by :func:`steerable_window` with the ``mask`` arguments), is
    the sampled kernel: ``W_i(y_q, h_j) = sum_f A[i, q, f] psi(u_f, h_i^{-1} h_j)``. The
    rotation is exact on a band-limited function, so its sampling on the pixel grid aliases as
    little as the discrete steerable kernels. Lifting (``in_grid`` None): ``coords`` is shared
    by every ``h_i`` (leading 1). Built once, at construction (``A`` on the host, float64).
    """
    from .gconv_kernels import kernel_radius

    dev = out_grid.device
    dtype = out_grid.dtype if out_grid.is_floating_point() else torch.float64
    pts = projection_points(kernel_size, oversample)  # (F, 2) pixel units
    win = {"mask": mask, "mask_radius": mask_radius, "mask_temperature": mask_temperature}
    A = steerable_matrices(group, out_grid.cpu(), kernel_size, max_frequency=max_frequency, **win)
    A = A @ projection_matrix(kernel_size, pts, max_frequency=max_frequency, **win)
    z = (pts / kernel_radius(kernel_size)).to(device=dev, dtype=dtype)
    return steerable_group_coordinates(group, out_grid, in_grid, z), A.to(device=dev, dtype=dtype)


def steerable_group_coordinates(group: Group, out_grid: Tensor, in_grid: Tensor | None,
                                points: Tensor) -> Tensor:
    """``(N_out | 1, N_in, F, 2 + e)``: the kernel net's input for the projection ``points (F, 2)``
    (normalised base-frame positions) and the embedding of ``h_i^{-1} h_j``, on ``points``'s
    device and dtype. Tensor ops only (no host round trip): what a forward with an explicit
    ``in_grid`` recomputes, the basis matrix ``A`` depends on ``out_grid`` alone.

    Example:
        >>> import torch
        >>> from groupconv.groups import SO2
        >>> grid = torch.arange(8.0)[:, None] * (6.283185307179586 / 8)
        >>> steerable_group_coordinates(SO2(), grid, grid, torch.zeros(5, 2)).shape
        torch.Size([8, 8, 5, 4])
    """
    F_ = points.shape[0]
    if in_grid is None:
        return points.view(1, 1, F_, 2)
    ne = len(group.element_shape)
    rel = group.product(group.inverse(out_grid).unsqueeze(-ne - 1), in_grid.unsqueeze(-ne - 2))
    emb = group.embedding(rel).to(device=points.device, dtype=points.dtype)  # (N_out, N_in, E)
    n_out, n_in = emb.shape[:2]
    return torch.cat(
        [points.expand(n_out, n_in, F_, 2), emb.unsqueeze(-2).expand(n_out, n_in, F_, emb.shape[-1])], -1
    )
