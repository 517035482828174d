"""Pieces shared by the image G-CNN models (GCNN, PartialGCNN, CKGResNet).

Example:
    >>> check_channels((8, 16))
    (8, 16)
    >>> type(group_norm("layer", 8)).__name__
    'GroupLayerNorm'
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

from torch import Tensor, nn

from .._validation import check_choice, check_positive_int, check_tensor
from ..groups import Group, as_group
from ..nn.group.pooling import GroupBatchNorm, GroupLayerNorm
from ..spaces import ImageField, TrivialField

__all__ = [
    "check_channels",
    "check_pool_after",
    "image_group",
    "group_norm",
    "off_grid_rotations",
    "InvariantImageClassifier",
]


def image_group(group: object, default: Callable[[], Group]) -> Group:
    """``group`` (``default()`` when ``None``) after checking it is a :class:`Group` acting on
    R^2, the plane of the models' images.

    Example:
        >>> from groupconv.groups import SO2, SO3
        >>> image_group(None, SO2)
        SO2()
        >>> image_group(SO3(), SO2)
        Traceback (most recent call last):
        ...
        ValueError: group must act on R^2 (images), got SO3 acting on R^3
    """
    group = as_group(default() if group is None else group)
    if group.space_dim != 2:
        raise ValueError(f"group must act on R^2 (images), got {group.name} acting on R^{group.space_dim}")
    return group


def group_norm(kind: str, channels: int) -> nn.Module:
    """The norm after a group convolution of the image models, by name: ``"batch"``
    (:class:`~groupconv.nn.GroupBatchNorm`, statistics shared over the group axis), ``"layer"``
    (:class:`~groupconv.nn.GroupLayerNorm`) or ``"none"`` (``nn.Identity``)."""
    kind = check_choice(kind, "norm", ("batch", "layer", "none"))
    if kind == "batch":
        return GroupBatchNorm(channels, spatial_dims=2)
    if kind == "layer":
        return GroupLayerNorm(channels)
    return nn.Identity()


def check_channels(channels: object) -> tuple[int, ...]:
    """A non-empty sequence of positive ints (per-layer widths)."""
    if isinstance(channels, (int, str)) or not isinstance(channels, Sequence) or len(channels) == 0:
        raise ValueError(f"channels must be a non-empty sequence of positive ints, got {channels!r}")
    return tuple(check_positive_int(c, "channels[i]") for c in channels)


def check_pool_after(pool_after: object, n: int) -> tuple[int, ...]:
    """Sorted unique layer indices in ``[0, n)`` after which a spatial pool runs."""
    if not isinstance(pool_after, Sequence) or isinstance(pool_after, str):
        raise ValueError(f"pool_after must be a sequence of layer indices, got {pool_after!r}")
    for i in pool_after:
        if isinstance(i, bool) or not isinstance(i, int) or not 0 <= i < n:
            raise ValueError(f"pool_after must hold layer indices in [0, {n}), got {tuple(pool_after)!r}")
    return tuple(sorted(set(pool_after)))


def off_grid_rotations(group: Group, grid: Tensor) -> bool:
    """Whether ``grid`` holds planar transforms that do not permute a centred 3x3 pixel grid
    (SO(2) with 8 elements, C8...): then networks switch on anti-aliased pooling and the disc
    readout by default.

    Example:
        >>> import torch
        >>> from groupconv.groups import SO2, CyclicGroup
        >>> G = CyclicGroup(4)
        >>> off_grid_rotations(G, G.elements()), off_grid_rotations(SO2(), SO2().grid(8))
        (False, True)
    """
    from ..nn.group.gconv_kernels import group_elements_dtype, spatial_sampling

    g = grid.to(group_elements_dtype(group)) if grid.is_floating_point() else grid
    return not spatial_sampling(group, g.cpu(), (3, 3))[2]


class InvariantImageClassifier:
    """Mixin for ``nn.Module`` classifiers ``(B, in_channels, H, W) -> (B, K)`` of a ``group``.

    Declares the fields the verification kit reads (an ``ImageField`` in, invariant logits out;
    partial models are invariant once switched to fully equivariant) and the input check.
    Subclasses set ``self.group`` and ``self.in_channels``.
    """

    group: Group
    in_channels: int

    @property
    def in_field(self) -> ImageField:
        """How the group acts on the input: an ``ImageField`` of the group."""
        return ImageField(self.group)

    @property
    def out_field(self) -> TrivialField:
        """The logits are invariant: a ``TrivialField``."""
        return TrivialField(self.group)

    def _check_image(self, x: object) -> Tensor:
        x = check_tensor(x, "x")
        if x.dim() != 4 or x.shape[1] != self.in_channels:
            raise ValueError(
                f"x must have shape (B, in_channels={self.in_channels}, H, W), got shape {tuple(x.shape)}"
            )
        return x
