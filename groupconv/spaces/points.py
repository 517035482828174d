"""Fields of lifted point clouds: features on group elements ``u`` that move by ``g u``.

A lifted point cloud (elements ``(B, N, S, *element_shape)`` with features ``(B, N, S, C)``)
is packed into ONE tensor ``(B, N, S * (size + C))`` so the verification kit can transform it:
:func:`pack_lifted` / :func:`unpack_lifted`. :class:`LiftedPointField` moves every element by
the left product ``g u`` and keeps the features; permutations of the point order are
:class:`~groupconv.spaces.TokenField` on the same packed tensor.

Example:
    >>> import torch
    >>> from groupconv.groups import SE2
    >>> u = SE2().sample(6).reshape(1, 3, 2, 3)
    >>> x = pack_lifted(u, torch.ones(1, 3, 2, 4))
    >>> f = LiftedPointField(SE2(), num_frames=2, features=4)
    >>> e, feat = unpack_lifted(f.transform(x, SE2().sample(1)[0]), SE2(), 2)
    >>> e.shape, bool((feat == 1).all())
    (torch.Size([1, 3, 2, 3]), True)
"""

from __future__ import annotations

import math

import torch

from .._validation import check_tensor
from ..groups.base import Group
from .fields import Field

__all__ = ["LiftedPointField", "pack_lifted", "unpack_lifted"]


def pack_lifted(elements: torch.Tensor, features: torch.Tensor) -> torch.Tensor:
    """``(B, N, S, *shape)`` elements and ``(B, N, S, C)`` features -> ``(B, N, S * (size + C))``."""
    B, N, S = elements.shape[:3]
    e = elements.reshape(B, N, S, -1)
    return torch.cat([e, features.to(e.dtype)], dim=-1).reshape(B, N, -1)


def unpack_lifted(x: torch.Tensor, group: Group, num_frames: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Inverse of :func:`pack_lifted`: ``(elements, features)``."""
    B, N = x.shape[:2]
    size = math.prod(group.element_shape)
    y = x.reshape(B, N, num_frames, -1)
    return y[..., :size].reshape(B, N, num_frames, *group.element_shape), y[..., size:]


class LiftedPointField(Field):
    """Packed lifted point clouds ``(B, N, S * (size + features))``; ``g`` acts by ``u -> g u``.

    Every element acts exactly (a group product, no resampling): :meth:`is_exact` is True.
    ``exact_elements`` are the identity and a few sampled elements.
    """

    def __init__(self, group: Group, num_frames: int, features: int) -> None:
        if int(num_frames) < 1 or int(features) < 0:
            raise ValueError(f"num_frames must be >= 1 and features >= 0, got {num_frames}, {features}")
        self.group = group
        self.num_frames = int(num_frames)
        self.features = int(features)

    def transform(self, x: torch.Tensor, g: torch.Tensor, *, order: int | None = None) -> torch.Tensor:
        x = self.check(x)
        g = self._element(g).to(device=x.device, dtype=x.dtype)
        e, f = unpack_lifted(x, self.group, self.num_frames)
        return pack_lifted(self.group.product(g, e), f)

    def check(self, x: torch.Tensor, name: str = "x") -> torch.Tensor:
        x = check_tensor(x, name)
        width = self.num_frames * (math.prod(self.group.element_shape) + self.features)
        if x.dim() != 3 or x.shape[-1] != width:
            raise ValueError(
                f"{name} must be a packed lifted point cloud (B, N, {width}) = (B, N, S * (size + C)) with "
                f"S={self.num_frames}, C={self.features} for {self.group.name}, got shape {tuple(x.shape)}"
            )
        return x

    def __eq__(self, other: object) -> bool:
        return isinstance(other, LiftedPointField) and (other.group, other.num_frames, other.features) == (
            self.group, self.num_frames, self.features)

    __hash__ = None  # type: ignore[assignment]

    def __repr__(self) -> str:
        return f"LiftedPointField({self.group!r}, num_frames={self.num_frames}, features={self.features})"
