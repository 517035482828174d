"""Hypothesis strategies for groups, algebra vectors, points, signals, dtypes and devices.

Every strategy builds tensors from a few Hypothesis-drawn numbers (directions, magnitudes,
indices, seeds), so examples shrink to readable counter-examples: an algebra vector shrinks
towards a coordinate axis and a small magnitude, a finite-group element towards the identity,
a random signal towards seed 0 and the smallest shape.

They work for any :class:`~groupconv.groups.Group`, built-in or user-defined, through its
public protocol only (``exp``, ``elements``, ``sample``, ``algebra_dim``...).

Example:
    >>> import torch
    >>> from hypothesis import given, settings
    >>> from groupconv.groups import SO2
    >>> from groupconv.testing import strategies as gst
    >>> G = SO2()
    >>> @settings(max_examples=5, database=None)
    ... @given(gst.elements(G), gst.elements(G))
    ... def test_inverse_of_product(g, h):
    ...     lhs = G.inverse(G.product(g, h))
    ...     rhs = G.product(G.inverse(h), G.inverse(g))
    ...     assert float(G.distance(lhs, rhs)) < 1e-9
    >>> test_inverse_of_product()
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
from hypothesis import strategies as st

from ..groups import Group

__all__ = [
    "DEFAULT_MAGNITUDES",
    "algebra_vectors",
    "available_devices",
    "devices",
    "dtypes",
    "elements",
    "has_exp",
    "points",
    "signal_shapes",
    "signals",
]

#: Magnitudes of algebra vectors probed by the round-trip checks: tiny (Taylor guards),
#: moderate, large, and just inside the cut locus ``pi`` of compact factors.
DEFAULT_MAGNITUDES: tuple[float, ...] = (1e-7, 1e-4, 1e-2, 0.3, 1.0, 2.0, 3.0, math.pi - 1e-3)

_NA_ERRORS = (TypeError, NotImplementedError)


def available_devices() -> list[str]:
    """``["cpu"]`` plus ``"cuda"`` when torch sees a CUDA device."""
    return ["cpu"] + (["cuda"] if torch.cuda.is_available() else [])


def dtypes(include_half: bool = False) -> st.SearchStrategy[torch.dtype]:
    """``torch.float32`` / ``torch.float64`` (and ``bfloat16``/``float16`` if asked)."""
    choices = [torch.float64, torch.float32]
    if include_half:
        choices += [torch.bfloat16, torch.float16]
    return st.sampled_from(choices)


def devices() -> st.SearchStrategy[torch.device]:
    """Every available device (CPU first, so failures shrink to the CPU)."""
    return st.sampled_from([torch.device(d) for d in available_devices()])


def has_exp(G: Group, total: bool = True) -> bool:
    """Whether ``G.exp`` is available (it raises ``TypeError``/``NotImplementedError`` if not).

    With ``total=True`` also require ``exp`` to accept a generic algebra vector (finite factors
    such as C_n accept only lattice points and raise ``ValueError``).
    """
    if G.algebra_dim <= 0:
        return False
    try:
        G.exp(torch.zeros(G.algebra_dim, dtype=torch.float64))
        if total:
            G.exp(torch.full((G.algebra_dim,), 0.3, dtype=torch.float64))
    except (*_NA_ERRORS, ValueError):
        return False
    return True


def _element_dtype(G: Group, dtype: torch.dtype | None) -> torch.dtype | None:
    """The dtype to ask a group's factories for (``None`` for integer-valued elements)."""
    return None if G.element_dtype_kind == "long" else dtype


def _unit(direction: Sequence[float], dim: int) -> torch.Tensor:
    v = torch.tensor(list(direction), dtype=torch.float64)
    n = torch.linalg.vector_norm(v)
    if float(n) == 0.0:
        v = torch.zeros(dim, dtype=torch.float64)
        v[0] = 1.0
        return v
    return v / n


def algebra_vectors(
    G: Group,
    *,
    max_norm: float = math.pi - 1e-3,
    magnitudes: Sequence[float] | None = None,
    dtype: torch.dtype = torch.float64,
    device: torch.device | str = "cpu",
) -> st.SearchStrategy[torch.Tensor]:
    """Lie-algebra coordinate vectors ``(algebra_dim,)`` of ``G``.

    A vector is ``magnitude * direction``: the direction is a normalised draw in
    ``[-1, 1]^algebra_dim`` (shrinking to the first axis), the magnitude is drawn from
    ``magnitudes`` when given (shrinking to its first entry) or from ``[0, max_norm]``.
    The default ``max_norm`` stays inside the injectivity radius ``pi`` of compact factors.

    Example:
        >>> from groupconv.groups import SO2
        >>> X = algebra_vectors(SO2(), magnitudes=[0.5]).example()
        >>> X.shape, round(float(X.abs()), 6)
        (torch.Size([1]), 0.5)
    """
    d = int(G.algebra_dim)
    if d <= 0:
        raise ValueError(f"G must have a Lie algebra (algebra_dim >= 1), got {G!r} with algebra_dim={d}")
    direction = st.lists(st.floats(-1.0, 1.0, allow_nan=False, allow_infinity=False), min_size=d, max_size=d)
    if magnitudes is not None:
        if len(magnitudes) == 0:
            raise ValueError("magnitudes must hold at least one value, got an empty sequence")
        norm = st.sampled_from([float(m) for m in magnitudes])
    else:
        norm = st.floats(0.0, float(max_norm), allow_nan=False, allow_infinity=False)
    return st.builds(
        lambda u, r: (r * _unit(u, d)).to(device=device, dtype=dtype), direction, norm
    )


def elements(
    G: Group,
    *,
    dtype: torch.dtype = torch.float64,
    device: torch.device | str = "cpu",
    batch_shape: Sequence[int] = (),
    max_norm: float = math.pi - 1e-3,
) -> st.SearchStrategy[torch.Tensor]:
    """Elements of ``G``, tensors ``(*batch_shape, *element_shape)``.

    * finite groups: drawn from ``G.elements()`` (shrinking to the identity);
    * groups with an ``exp``: ``G.exp`` of :func:`algebra_vectors` (norm up to ``max_norm``),
      or one of the group's own ``G.sample`` draws (seeded, reproducible);
    * other groups: ``G.sample`` draws only.

    Integer-valued groups (``element_dtype_kind == "long"``) ignore ``dtype``.
    """
    batch_shape = tuple(int(b) for b in batch_shape)
    n = math.prod(batch_shape)
    edtype = _element_dtype(G, dtype)

    if G.is_finite:
        table = G.elements(device=device, dtype=edtype)
        single = st.integers(0, int(table.shape[0]) - 1).map(lambda i: table[i])
    else:
        def sampled(seed: int) -> torch.Tensor:
            gen = torch.Generator(device=device).manual_seed(seed)
            return G.sample(1, generator=gen, device=device, dtype=edtype)[0]

        from_sample = st.integers(0, 2**31 - 1).map(sampled)
        if has_exp(G):
            from_exp = algebra_vectors(G, max_norm=max_norm, dtype=dtype, device=device).map(G.exp)
            single = st.one_of(from_exp, from_sample)
        else:
            single = from_sample
    if batch_shape == ():
        return single
    return st.lists(single, min_size=n, max_size=n).map(
        lambda gs: torch.stack(gs).reshape(*batch_shape, *G.element_shape)
    )


def points(
    dim: int,
    *,
    max_norm: float = 10.0,
    dtype: torch.dtype = torch.float64,
    device: torch.device | str = "cpu",
) -> st.SearchStrategy[torch.Tensor]:
    """Points of R^dim, tensors ``(dim,)`` with coordinates in ``[-max_norm, max_norm]``."""
    coord = st.floats(-float(max_norm), float(max_norm), allow_nan=False, allow_infinity=False)
    return st.lists(coord, min_size=dim, max_size=dim).map(
        lambda c: torch.tensor(c, dtype=torch.float64).to(device=device, dtype=dtype)
    )


def signal_shapes(
    *,
    spatial_dims: int = 2,
    batch: tuple[int, int] = (1, 3),
    channels: tuple[int, int] = (1, 4),
    side: tuple[int, int] = (1, 12),
    group_axis: int | None = None,
    square: bool = True,
) -> st.SearchStrategy[tuple[int, ...]]:
    """Signal shapes ``(B, C, *spatial)`` or, with ``group_axis=|H|``, ``(B, C, |H|, *spatial)``.

    ``square=True`` gives equal spatial sides (what rotations by 90 degrees need). Bounds are
    inclusive ``(min, max)`` pairs.

    Example:
        >>> shape = signal_shapes(spatial_dims=2, group_axis=4).example()
        >>> len(shape), shape[2]
        (5, 4)
    """
    if spatial_dims < 1:
        raise ValueError(f"spatial_dims must be >= 1, got {spatial_dims}")
    b = st.integers(*batch)
    c = st.integers(*channels)
    if square:
        sp = st.integers(*side).map(lambda s: (s,) * spatial_dims)
    else:
        sp = st.tuples(*([st.integers(*side)] * spatial_dims))
    head = st.tuples(b, c) if group_axis is None else st.tuples(b, c, st.just(int(group_axis)))
    return st.tuples(head, sp).map(lambda hs: (*hs[0], *hs[1]))


def signals(
    shapes: st.SearchStrategy[tuple[int, ...]] | Sequence[int],
    *,
    dtype: torch.dtype = torch.float32,
    device: torch.device | str = "cpu",
) -> st.SearchStrategy[torch.Tensor]:
    """Standard-normal tensors of the drawn shape, generated from a drawn seed (fast to draw).

    Example:
        >>> signals((2, 3, 8, 8)).example().shape
        torch.Size([2, 3, 8, 8])
    """
    shape_st = st.just(tuple(shapes)) if not isinstance(shapes, st.SearchStrategy) else shapes

    def make(shape: tuple[int, ...], seed: int) -> torch.Tensor:
        gen = torch.Generator().manual_seed(seed)
        return torch.randn(shape, generator=gen, dtype=torch.float64).to(device=device, dtype=dtype)

    return st.builds(make, shape_st, st.integers(0, 2**31 - 1))
