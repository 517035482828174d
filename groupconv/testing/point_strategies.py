"""Hypothesis strategies for padded point clouds and permutations of the point order.

A drawn cloud is ONE packed tensor ``(B, N, d + features + 1)``: coordinates, invariant
features, then a 0/1 mask column (``1`` = a real point, padding at the end of each cloud), the
layout :class:`~groupconv.spaces.PointCloudField` ``(G, features=features + 1)`` transforms.
Examples are built from drawn seeds and sizes, so they shrink towards few points, little
padding and seed 0.

Example:
    >>> from hypothesis import given, settings
    >>> @settings(max_examples=3, database=None)
    ... @given(point_clouds(3, features=2, max_points=8))
    ... def test_layout(x):
    ...     assert x.shape[-1] == 3 + 2 + 1 and bool((x[..., -1].sum(1) >= 4).all())
    >>> test_layout()
"""

from __future__ import annotations

import torch
from hypothesis import strategies as st

__all__ = ["point_clouds", "point_permutations"]


@st.composite
def point_clouds(
    draw: st.DrawFn,
    d: int,
    *,
    features: int = 0,
    batch_size: int = 2,
    min_points: int = 4,
    max_points: int = 16,
    masked: bool = True,
    dtype: torch.dtype = torch.float64,
) -> torch.Tensor:
    """Packed point clouds ``(batch_size, N, d + features + 1)`` (``+ 1``: the mask column).

    ``N`` is drawn in ``[min_points, max_points]``; with ``masked`` every cloud but the first
    keeps a drawn number (at least ``min_points``) of real points and pads the rest. Coordinates
    are standard normal times a drawn scale in ``[0.1, 10]``; padding coordinates are drawn too
    (layers must ignore them).
    """
    if not 1 <= min_points <= max_points:
        raise ValueError(f"need 1 <= min_points <= max_points, got {min_points}, {max_points}")
    n = draw(st.integers(min_points, max_points))
    seed = draw(st.integers(0, 2**31 - 1))
    scale = draw(st.sampled_from([1.0, 0.1, 10.0]))
    gen = torch.Generator().manual_seed(seed)
    x = torch.randn(batch_size, n, d, generator=gen, dtype=torch.float64) * scale
    f = torch.randn(batch_size, n, features, generator=gen, dtype=torch.float64)
    m = torch.ones(batch_size, n, 1, dtype=torch.float64)
    if masked:
        for b in range(1, batch_size):
            m[b, draw(st.integers(min_points, n)) :] = 0.0
    return torch.cat([x, f, m], -1).to(dtype)


@st.composite
def point_permutations(draw: st.DrawFn, n: int) -> torch.Tensor:
    """A permutation ``(n,)`` of the point order (long), shrinking towards the identity."""
    if draw(st.booleans()):
        return torch.arange(n)
    seed = draw(st.integers(0, 2**31 - 1))
    return torch.randperm(n, generator=torch.Generator().manual_seed(seed))
