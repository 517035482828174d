"""The grid a layer samples a group on: :func:`resolve_grid` (``num_elements`` / ``sampler``).

Every layer with a group axis (the regular lifting and group convolutions and everything built
on them) turns its ``num_elements=`` and ``sampler=`` arguments into one deterministic grid and
a flag saying whether a random sampler draws a new grid at each training forward:

* ``sampler`` given: ``sampler.num_elements(group, num_elements)`` elements; a deterministic
  sampler's own grid, a random sampler's eval grid ``group.grid(n)`` (flag ``True``);
* finite group: all elements, or ``group.grid(num_elements)`` (a subgroup grid);
* continuous group: ``group.grid(num_elements)``; ``num_elements`` is then required.

Floating elements come in float64 (:func:`group_elements_dtype`): layers build their plans in
double and cast once.

Example:
    >>> from groupconv.groups import SO2, CyclicGroup
    >>> grid, random = resolve_grid(SO2(), 8, None, "GroupConv")
    >>> tuple(grid.shape), grid.dtype, random
    ((8, 1), torch.float64, False)
    >>> resolve_grid(CyclicGroup(16), 8, None, "GroupConv")[0].shape[0]
    8
"""

from __future__ import annotations

import torch
from torch import Tensor

from .._validation import check_positive_int
from ..groups.base import Group
from .samplers import Sampler

__all__ = ["resolve_grid", "group_elements_dtype"]


def group_elements_dtype(group: Group) -> torch.dtype | None:
    """float64 for groups with floating elements (plans are built in double), else None."""
    return torch.float64 if getattr(group, "element_dtype_kind", "float") == "float" else None


def _grid(group: Group, num_elements: int, dt: torch.dtype | None) -> Tensor:
    n = check_positive_int(num_elements, "num_elements")
    try:
        return group.grid(n, dtype=dt)
    except ValueError as err:
        raise ValueError(f"num_elements={n} is not a grid size of {group!r}: {err}") from err


def resolve_grid(
    group: Group, num_elements: int | None, sampler: Sampler | None, name: str, *, per_batch: bool = False
) -> tuple[Tensor, bool]:
    """The layer's deterministic grid (float64 where floating) and whether ``sampler`` is random.

    Finite groups: all elements (or ``group.grid(num_elements)``, a subgroup); continuous groups
    need ``num_elements``; a random sampler's deterministic (eval) grid is ``group.grid(n)``.
    Samplers with ``per="batch"`` are refused unless ``per_batch`` (the layer draws one grid
    per batch element). ``name`` (the layer's class name) is quoted in errors.

    Example:
        >>> from groupconv.groups import CyclicGroup
        >>> from groupconv.sampling import HaarSampler
        >>> grid, random = resolve_grid(CyclicGroup(4), None, None, "LiftingConv")
        >>> grid.shape[0], random
        (4, False)
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
        return _grid(group, num_elements, dt), False
    if num_elements is None:
        raise ValueError(
            f"num_elements must be a positive int for the continuous group {group.name} "
            f"(or pass sampler=), got None"
        )
    return _grid(group, num_elements, dt), False
