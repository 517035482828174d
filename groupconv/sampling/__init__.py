"""Discretisations of groups for layers: grids, Haar samples, stratified grids, scale grids.

A sampler is a frozen value object called as
``sampler(group, n, batch_size=None, generator=None, device=None, dtype=None)``; it returns
``(n, *element_shape)`` or, for ``per="batch"`` samplers, ``(batch_size, n, *element_shape)``.
:meth:`Sampler.weights` gives the quadrature weights (summing to 1) that keep activations
independent of ``n``.

Example:
    >>> import torch
    >>> from groupconv.groups import SO2
    >>> from groupconv.sampling import make_sampler
    >>> s = make_sampler("stratified", per="batch")
    >>> s(SO2(), 8, batch_size=2, generator=torch.Generator().manual_seed(0)).shape
    torch.Size([2, 8, 1])
"""

from __future__ import annotations

from typing import Any

from .grids import group_elements_dtype, resolve_grid
from .samplers import (
    GridSampler,
    HaarSampler,
    LieAlgebraSampler,
    PerturbedGridSampler,
    Sampler,
    StratifiedSampler,
    one_parameter_cell,
)
from .scales import DyadicScaleSampler, LogUniformScaleSampler, scale_parameterisation

__all__ = [
    "Sampler",
    "GridSampler",
    "HaarSampler",
    "StratifiedSampler",
    "PerturbedGridSampler",
    "LieAlgebraSampler",
    "DyadicScaleSampler",
    "LogUniformScaleSampler",
    "SAMPLERS",
    "make_sampler",
    "one_parameter_cell",
    "scale_parameterisation",
    "resolve_grid",
    "group_elements_dtype",
]

#: Names accepted by :func:`make_sampler` (e.g. in layer or experiment configs).
SAMPLERS: dict[str, type[Sampler]] = {
    "grid": GridSampler,
    "haar": HaarSampler,
    "stratified": StratifiedSampler,
    "perturbed": PerturbedGridSampler,
    "lie_algebra": LieAlgebraSampler,
    "dyadic": DyadicScaleSampler,
    "log_uniform": LogUniformScaleSampler,
}


def make_sampler(spec: str | Sampler, **kwargs: Any) -> Sampler:
    """A sampler from a name in :data:`SAMPLERS` (with constructor ``kwargs``) or a sampler itself.

    Example:
        >>> make_sampler("haar", per="batch")
        HaarSampler(per='batch')
        >>> make_sampler(GridSampler())
        GridSampler()
    """
    if isinstance(spec, Sampler):
        if kwargs:
            raise TypeError(f"make_sampler: keyword arguments {sorted(kwargs)} given with a Sampler instance")
        return spec
    if not isinstance(spec, str):
        raise TypeError(f"spec must be a sampler name or a Sampler, got {type(spec).__name__} {spec!r}")
    try:
        cls = SAMPLERS[spec]
    except KeyError:
        raise ValueError(f"unknown sampler {spec!r}; known samplers: {', '.join(SAMPLERS)}") from None
    return cls(**kwargs)
