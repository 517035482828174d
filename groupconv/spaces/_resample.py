"""Low-level resampling of signals on regular grids under affine maps (internal).

Conventions shared by :mod:`groupconv.spaces.fields_grid`:

* A signal ``x`` has shape ``(B, K, *sizes)`` with ``d = len(sizes)`` spatial axes. Sample
  ``i = (i_1, ..., i_d)`` sits at the point ``u = i - c`` of R^d, where ``c`` is the *origin*:
  ``c_k = (N_k - 1) / 2`` (``"center"``, the centre of the grid, odd or even sizes) or ``c_k = 0``
  (``"start"``, the first sample).
* An affine element acts as ``u -> A u + t``; the transformed signal is
  ``y(u) = x(A^{-1} (u - t))``. The linear part is applied first (``L_A``), then the
  translation (``T_t``): ``y = T_t L_A x``.
* ``L_A`` is an exact gather when every sampling point ``A^{-1} u + c`` is an integer index
  (points outside the grid read zero); a signed permutation that maps the grid onto itself
  (rot90, flips, transposes about the centre) is a permutation of the spatial axes (a view)
  plus :func:`torch.flip` (one copy) instead of a general gather; otherwise it interpolates with
  :func:`torch.nn.functional.grid_sample` (``align_corners=True`` relative to the sample
  centres, zero padding).
* ``T_t`` is circular (a torus): integer ``t`` is :func:`torch.roll`; a fractional ``t`` is
  interpolated along each axis with the same circular boundary (1-D kernels of the chosen order).
"""

from __future__ import annotations

import functools
import math
from collections.abc import Sequence

import torch
import torch.nn.functional as F

__all__ = [
    "EXACT_TOL",
    "origin_vector",
    "source_points",
    "exact_source_index",
    "is_signed_permutation",
    "axis_permutation",
    "apply_linear",
    "apply_translation",
    "apply_affine",
    "linear_is_exact",
    "output_sizes",
    "translation_is_integer",
    "disc_mask",
]

#: Tolerance under which a float is taken as an integer (matrix entries, indices, shifts).
EXACT_TOL = 1e-6

_MODES = {0: "nearest", 1: "bilinear", 3: "bicubic"}


def origin_vector(sizes: Sequence[int], origin: str) -> torch.Tensor:
    """The index ``c`` of the point 0 of R^d (float64 CPU tensor ``(d,)``)."""
    if origin == "center":
        return torch.tensor([(n - 1) / 2 for n in sizes], dtype=torch.float64)
    return torch.zeros(len(sizes), dtype=torch.float64)


def _output_points(sizes: Sequence[int], c: torch.Tensor) -> torch.Tensor:
    """Points ``u = i - c`` of every output sample, float64 ``(prod(sizes), d)`` (C order)."""
    axes = [torch.arange(n, dtype=torch.float64) for n in sizes]
    mesh = torch.meshgrid(*axes, indexing="ij")
    return torch.stack([m.reshape(-1) for m in mesh], dim=-1) - c


def source_points(A: torch.Tensor, sizes: Sequence[int], origin: str) -> torch.Tensor:
    """Fractional source indices ``A^{-1} (i - c) + c`` of every output sample ``(P, d)``."""
    c = origin_vector(sizes, origin)
    u = _output_points(sizes, c)
    Ainv = torch.linalg.inv(A)
    return u @ Ainv.T + c


def exact_source_index(
    A: torch.Tensor, sizes: Sequence[int], origin: str
) -> tuple[torch.Tensor, torch.Tensor] | None:
    """Flat source indices and an in-range mask when ``L_A`` is an exact gather, else ``None``."""
    src = source_points(A, sizes, origin)
    rounded = torch.round(src)
    if src.numel() and float((src - rounded).abs().max()) > EXACT_TOL:
        return None
    idx = rounded.long()
    size_t = torch.tensor(list(sizes), dtype=torch.long)
    valid = ((idx >= 0) & (idx < size_t)).all(dim=-1)
    idx = torch.where(valid.unsqueeze(-1), idx, torch.zeros_like(idx))
    strides = [math.prod(sizes[k + 1 :]) for k in range(len(sizes))]
    flat = (idx * torch.tensor(strides, dtype=torch.long)).sum(-1)
    return flat, valid


def is_signed_permutation(A: torch.Tensor) -> bool:
    """Whether ``A`` is (within :data:`EXACT_TOL`) a signed permutation matrix."""
    R = torch.round(A)
    if float((A - R).abs().max()) > EXACT_TOL:
        return False
    return bool(((R.abs().sum(0) == 1) & (R.abs().sum(1) == 1)).all()) and bool((R.abs() <= 1).all())


def _is_identity(A: torch.Tensor) -> bool:
    return float((A - torch.eye(A.shape[-1], dtype=A.dtype)).abs().max()) <= EXACT_TOL


def _check_order(order: int, d: int) -> str:
    if order not in _MODES:
        raise ValueError(f"order must be 0 (nearest), 1 (linear) or 3 (cubic), got {order!r}")
    if order == 3 and d == 3:
        raise ValueError("order=3 (cubic) is not available for 3-D volumes; use order 0 or 1")
    return _MODES[order]


def axis_permutation(
    A: torch.Tensor, sizes: Sequence[int], origin: str
) -> tuple[list[int], list[int]] | None:
    """``(perm, flips)`` such that ``L_A x = x.permute(perm).flip(flips)`` on the spatial axes
    (``perm[j]`` is the source axis of output axis ``j``, ``flips`` the reversed output axes),
    when ``A`` is a signed permutation (with ``origin="start"``: one mapping the grid onto
    itself); else ``None``. With ``origin="center"`` output axis ``j`` has the size of source
    axis ``perm[j]``: a 90-degree rotation of an ``H x W`` grid is a ``W x H`` grid (the
    rectangle rotated about its centre), so the transform stays exact and invertible on
    non-square grids.

    Output axis ``j`` reads source axis ``k`` where ``A^{-1}[k, j] = s != 0``: index ``i_j``
    reads ``s (i_j - c_j) + c_k``, i.e. ``i_j`` (``s = 1``) or ``N - 1 - i_j`` (``s = -1``,
    centre origin; the output axis takes the size ``N_k``).
    """
    if not is_signed_permutation(A):
        return None
    Ainv = torch.round(A).T  # a signed permutation is orthogonal
    perm, flips = [], []
    for j in range(len(sizes)):
        k = int(Ainv[:, j].abs().argmax())
        if sizes[k] != sizes[j] and origin != "center":
            return None
        if float(Ainv[k, j]) < 0:
            if origin != "center":
                return None
            flips.append(j)
        perm.append(k)
    return perm, flips


def apply_linear(
    x: torch.Tensor, A: torch.Tensor, origin: str, order: int, contiguous: bool = True
) -> torch.Tensor:
    """``y(u) = x(A^{-1} u)`` on the spatial axes of ``x`` ``(B, K, *sizes)``; zeros outside.

    With ``contiguous=False`` the axis-permutation path may return a non-contiguous tensor
    (for callers that copy the result anyway)."""
    sizes = tuple(x.shape[2:])
    d = len(sizes)
    if _is_identity(A):
        return x
    pf = axis_permutation(A, sizes, origin)
    if pf is not None:
        perm, flips = pf
        y = x.permute(0, 1, *[2 + k for k in perm])
        if flips:
            y = y.flip([2 + j for j in flips])
        return y.contiguous() if contiguous else y
    ex = exact_source_index(A, sizes, origin)
    if ex is not None:
        flat, valid = ex
        flat, valid = flat.to(x.device), valid.to(x.device)
        xf = x.reshape(*x.shape[:2], -1)
        y = xf.index_select(-1, flat)
        if not bool(valid.all()):
            y = y * valid.to(y.dtype)
        return y.reshape(x.shape)
    mode = _check_order(order, d)
    src = source_points(A, sizes, origin)
    # align_corners=True: index 0 -> -1, index N-1 -> +1; a length-1 axis maps index 0 -> 0.
    scale = torch.tensor([2.0 / (n - 1) if n > 1 else 1.0 for n in sizes], dtype=torch.float64)
    norm = src * scale - torch.tensor([1.0 if n > 1 else 0.0 for n in sizes], dtype=torch.float64)
    for k, n in enumerate(sizes):  # a length-1 axis: anything off the single sample reads zero
        if n == 1:
            norm[:, k] = torch.where(src[:, k].abs() <= EXACT_TOL, 0.0, 4.0)
    grid = norm.flip(-1)  # grid_sample wants (x=last axis, y, z)
    B, K = x.shape[:2]
    if d == 1:
        grid = torch.cat([grid, torch.zeros_like(grid)], dim=-1).reshape(1, 1, sizes[0], 2)
        inp = x.unsqueeze(2)
    else:
        grid = grid.reshape(1, *sizes, d)
        inp = x
    grid = grid.to(device=x.device, dtype=x.dtype).expand(B, *grid.shape[1:])
    y = F.grid_sample(inp, grid, mode=mode, padding_mode="zeros", align_corners=True)
    return y.reshape(x.shape)


def _cubic_weight(s: float, a: float = -0.75) -> float:
    """Keys' cubic convolution kernel (``a = -0.75``, as ``grid_sample``'s bicubic mode)."""
    s = abs(s)
    if s <= 1:
        return (a + 2) * s**3 - (a + 3) * s**2 + 1
    if s < 2:
        return a * s**3 - 5 * a * s**2 + 8 * a * s - 4 * a
    return 0.0


def apply_translation(x: torch.Tensor, t: Sequence[float], order: int) -> torch.Tensor:
    """Circular shift ``y[i] = x[i - t]`` along the spatial axes (exact for integer ``t``)."""
    d = len(t)
    dims = tuple(range(x.dim() - d, x.dim()))
    ints = [round(v) for v in t]
    if all(abs(v - r) <= EXACT_TOL for v, r in zip(t, ints)):
        if any(ints):
            return torch.roll(x, shifts=tuple(ints), dims=dims)
        return x
    _check_order(order, 1)
    y = x
    for k, v in enumerate(t):
        if abs(v - round(v)) <= EXACT_TOL:
            if round(v):
                y = torch.roll(y, shifts=round(v), dims=dims[k])
            continue
        if order == 0:
            y = torch.roll(y, shifts=round(v), dims=dims[k])
            continue
        n = math.floor(v)
        a = v - n
        if order == 1:
            taps = [(0, 1 - a), (1, a)]
        else:
            taps = [(m, _cubic_weight(m - a)) for m in (-1, 0, 1, 2)]
        terms = [w * torch.roll(y, shifts=n + m, dims=dims[k]) for m, w in taps]
        y = functools.reduce(lambda s, t: s + t, terms)  # = sum(terms), typed as a Tensor
    return y


def apply_affine(
    x: torch.Tensor, A: torch.Tensor, t: Sequence[float], origin: str, order: int, contiguous: bool = True
) -> torch.Tensor:
    """``y = T_t L_A x``: the signal ``u -> x(A^{-1}(u - t))`` (see the module docstring)."""
    return apply_translation(apply_linear(x, A, origin, order, contiguous), t, order)


def linear_is_exact(A: torch.Tensor, sizes: Sequence[int] | None, origin: str) -> bool:
    """Whether ``L_A`` is an exact gather on ``sizes`` (square/cubic grid assumed when ``None``)."""
    if sizes is None:
        if origin == "center":
            return is_signed_permutation(A)
        # origin "start": x(A^{-1} u) reads integer indices iff A^{-1} is an integer matrix
        Ainv = torch.linalg.inv(A)
        return float((Ainv - torch.round(Ainv)).abs().max()) <= EXACT_TOL
    if _is_identity(A) or axis_permutation(A, sizes, origin) is not None:
        return True
    return exact_source_index(A, sizes, origin) is not None


def output_sizes(A: torch.Tensor, sizes: Sequence[int], origin: str) -> tuple[int, ...]:
    """Spatial sizes of ``L_A x`` for input sizes ``sizes`` (permuted by an axis permutation)."""
    pf = None if _is_identity(A) else axis_permutation(A, sizes, origin)
    return tuple(sizes) if pf is None else tuple(sizes[k] for k in pf[0])


def translation_is_integer(t: Sequence[float]) -> bool:
    return all(abs(v - round(v)) <= EXACT_TOL for v in t)


def disc_mask(sizes: Sequence[int], margin: float) -> torch.Tensor:
    """Float mask ``(*sizes)``: 1 inside the centred ball of radius ``(min(sizes)-1)/2 - margin``."""
    if len(sizes) == 1:
        n = sizes[0]
        i = torch.arange(n, dtype=torch.float64)
        return ((i >= margin - EXACT_TOL) & (i <= n - 1 - margin + EXACT_TOL)).to(torch.float64)
    c = origin_vector(sizes, "center")
    u = _output_points(sizes, c)
    r = (min(sizes) - 1) / 2 - margin
    inside = torch.linalg.vector_norm(u, dim=-1) <= r + EXACT_TOL
    return inside.to(torch.float64).reshape(tuple(sizes))
