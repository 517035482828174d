"""Equivariance error as a function of the rotation angle (the approximate case).

Exact checks (:func:`~groupconv.testing.equivariance_error` on 90-degree rotations, flips,
grid shifts) say whether a model is equivariant where the grid allows it; a model on a sampled
rotation group (SO(2) with N elements, C_N with N > 4) is only *nearly* equivariant between
those angles. :func:`equivariance_profile` measures that curve: for each angle ``a`` the
relative change ``|f(R_a x) - R_a f(x)| / |R_a f(x)|`` (per sample, averaged over the batch),
with ``R_a x`` computed by the input field's own transform (interpolation of order ``order``
off the pixel grid). An invariant output (logits: ``out_field=None``) compares ``f(R_a x)``
with ``f(x)``. It is the curve of the demo's ``output_under_rotation.png`` and of the docs'
off-grid page; zeros of the curve at multiples of 90 degrees are the exact elements, dips at
45 degrees are what an 8-element rotation group buys.

Example:
    >>> import math, torch
    >>> from groupconv.groups import SO2
    >>> from groupconv.spaces import GridField
    >>> blur = torch.nn.AvgPool2d(3, 1, 1)  # rotation-equivariant up to the square window
    >>> x = torch.randn(2, 1, 9, 9)
    >>> field = GridField(SO2(), 2)
    >>> prof = equivariance_profile(blur, x, field, [0.0, math.pi / 2], out_field=field)
    >>> [round(e, 6) for e in prof.errors.tolist()]
    [0.0, 0.0]
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import torch
from torch import Tensor

from ..spaces import Field

__all__ = ["EquivarianceProfile", "equivariance_profile", "rotation_element"]


@dataclass
class EquivarianceProfile:
    """Relative errors ``errors (A,)`` (float64) at ``angles (A,)`` (radians)."""

    angles: Tensor
    errors: Tensor

    def mean(self, exclude_exact: bool = False) -> float:
        """Mean error over the angles (``exclude_exact``: skip multiples of 90 degrees)."""
        e = self.errors
        if exclude_exact:
            q = self.angles / (math.pi / 2)
            e = e[(q - q.round()).abs() > 1e-9]
        return float(e.mean()) if e.numel() else 0.0

    def at(self, angle: float) -> float:
        """The error at the measured angle nearest to ``angle`` (radians)."""
        d = torch.remainder(self.angles - angle + math.pi, 2 * math.pi) - math.pi
        return float(self.errors[d.abs().argmin()])


def rotation_element(field: Field, angle: float, dtype: torch.dtype = torch.float64) -> Tensor:
    """The element of ``field.group`` rotating by ``angle`` radians (no mirror).

    Groups whose elements are an angle ``(1,)`` (SO(2)) or ``(angle, mirror)`` ``(2,)`` (O(2))
    are supported; anything else raises ValueError naming the field.

    Example:
        >>> from groupconv.groups import SO2
        >>> from groupconv.spaces import GridField
        >>> rotation_element(GridField(SO2(), 2), 0.5).tolist()
        [0.5]
    """
    group = getattr(field, "group", None)
    shape = tuple(getattr(group, "element_shape", ()))
    if group is None or group.is_finite or shape not in ((1,), (2,)):
        raise ValueError(
            "field must act by a continuous rotation group with elements (angle,) or "
            f"(angle, mirror) (e.g. GridField(SO2(), 2)), got {field!r}"
        )
    return torch.tensor([angle] if shape == (1,) else [angle, 1.0], dtype=dtype)


@torch.no_grad()
def equivariance_profile(
    model: Callable[[Tensor], Tensor],
    x: Tensor,
    field: Field,
    angles: Sequence[float] | Tensor,
    out_field: Field | None = None,
    *,
    order: int = 3,
    mask: Tensor | None = None,
) -> EquivarianceProfile:
    """Relative equivariance (or invariance) error of ``model`` at ``x`` for each angle.

    Args:
        model: maps ``x`` to outputs; called as is (put it in eval mode first).
        x: a batch ``(B, ...)``; errors are per sample, then averaged over ``B``.
        field: how rotations act on ``x`` (e.g. ``GridField(SO2(), 2)``; the angle is turned
            into an element by :func:`rotation_element`).
        angles: rotation angles in radians.
        out_field: how rotations act on the output (e.g. a ``GroupGridField`` of SO(2) on the
            layer's grid); ``None``: the output is invariant (logits).
        order: interpolation order of the transforms off the pixel grid (3: bicubic).
        mask: optional weights broadcast against the output (e.g. a central disc), applied to
            the difference and to the reference.

    Returns:
        :class:`EquivarianceProfile` with ``angles`` and ``errors`` (float64, same length).

    Example:
        >>> import math, torch
        >>> from groupconv.groups import SO2
        >>> from groupconv.spaces import GridField
        >>> net = lambda t: t.mean(dim=(-2, -1))  # invariant readout
        >>> prof = equivariance_profile(net, torch.rand(3, 1, 7, 7), GridField(SO2(), 2), [math.pi])
        >>> prof.errors.shape
        torch.Size([1])
    """
    if not isinstance(x, Tensor) or x.dim() < 1:
        raise ValueError(f"x must be a batched tensor (B, ...), got {type(x).__name__}")
    a = torch.as_tensor(angles, dtype=torch.float64).reshape(-1)
    if a.numel() == 0:
        raise ValueError("angles must hold at least one angle, got none")
    y = model(x)
    errors = []
    for angle in a.tolist():
        g = rotation_element(field, angle)
        yr = model(field.transform(x, g.to(x.dtype) if x.is_floating_point() else g, order=order))
        target = y if out_field is None else out_field.transform(y, g.to(y.dtype), order=order)
        diff = (yr - target).double()
        ref = target.double()
        if mask is not None:
            m = mask.to(device=diff.device, dtype=diff.dtype)
            diff, ref = diff * m, ref * m
        num = diff.flatten(1).norm(dim=1)
        den = ref.flatten(1).norm(dim=1).clamp_min(torch.finfo(torch.float64).tiny)
        errors.append((num / den).mean())
    return EquivarianceProfile(a, torch.stack(errors).cpu())
