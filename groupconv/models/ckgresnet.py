"""CKGResNet: a residual G-CNN with continuous kernels on a sampled Lie group (Romero's
Partial/Separable G-CNN experiments use this shape).

``LiftingConv -> norm -> ReLU -> [CKGResBlock] * num_blocks -> invariant pooling -> Linear``,
where a block is ``GroupConv -> norm -> ReLU -> dropout -> GroupConv -> norm`` plus a shortcut,
then ReLU. Every conv has a continuous kernel (a SIREN by default) evaluated on the rotated
kernel coordinates and the group-axis embedding, on a deterministic grid of ``num_elements``
elements of ``group`` (default ``SO2()`` with 8). The shortcut is the identity, or a 1x1x1
channel mix (``nn.Conv3d`` with kernel 1, shared by every group element and position, hence
equivariant) when the width changes. Optional 2x2 spatial max pools after the blocks listed in
``pool_after`` (even map sizes keep exactness).

The readout is a max over the group axis and a max (or mean) over space, so the logits are
invariant to the exact actions of the grid on the input (90-degree rotations for an SO(2) grid
of 8 or 4, mirrors for O(2)/D_n grids).

Not (yet) here: learned partial equivariance (random per-layer grids) and separable kernels;
``sampler=`` accepts deterministic samplers only, so a block's residual adds maps sampled on
the same grid.

Example:
    >>> import torch
    >>> net = CKGResNet(1, 10, hidden_channels=4, num_blocks=1, kernel_size=3).eval()
    >>> x = torch.randn(2, 1, 8, 8)
    >>> torch.allclose(net(x), net(torch.rot90(x, 1, dims=(-2, -1))), atol=1e-5)
    True
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch
from torch import Tensor, nn

from .._validation import check_positive_int, check_tensor
from ..groups.base import Group
from ..nn.gconv import GroupConv, LiftingConv
from ..nn.pooling import GlobalInvariantPool, GroupBatchNorm, GroupLayerNorm, SpatialMaxPool
from .gcnn import _check_choice, _check_dropout, _check_pool_after

__all__ = ["CKGResNet", "CKGResBlock"]


def _norm(kind: str, channels: int) -> nn.Module:
    if kind == "batch":
        return GroupBatchNorm(channels, spatial_dims=2)
    if kind == "layer":
        return GroupLayerNorm(channels)
    return nn.Identity()


class CKGResBlock(nn.Module):
    """``relu(norm(conv2(drop(relu(norm(conv1(x)))))) + shortcut(x))`` on group maps.

    ``conv_kwargs`` are passed to both :class:`~groupconv.nn.GroupConv` layers (group grid,
    kernel net, mask...).

    Example:
        >>> import torch
        >>> from groupconv.groups import SO2
        >>> kw = {"num_elements": 4, "kernel_net": "siren"}
        >>> CKGResBlock(2, 3, SO2(), 3, conv_kwargs=kw)(torch.randn(1, 2, 4, 6, 6)).shape
        torch.Size([1, 3, 4, 6, 6])
    """

    def __init__(self, in_channels: int, out_channels: int, group: Group, kernel_size: int, *,
                 norm: str = "batch", dropout: float = 0.0,
                 conv_kwargs: dict[str, Any] | None = None) -> None:
        super().__init__()
        kw = dict(conv_kwargs or {})
        bias = norm == "none"
        self.conv1 = GroupConv(in_channels, out_channels, group, kernel_size, padding=kernel_size // 2,
                               bias=bias, **kw)
        self.norm1 = _norm(norm, out_channels)
        self.conv2 = GroupConv(out_channels, out_channels, group, kernel_size, padding=kernel_size // 2,
                               bias=bias, **kw)
        self.norm2 = _norm(norm, out_channels)
        self.dropout = nn.Dropout(_check_dropout(dropout))
        self.shortcut = (nn.Identity() if in_channels == out_channels
                         else nn.Conv3d(in_channels, out_channels, 1))

    def forward(self, x: Tensor) -> Tensor:  # noqa: D102
        y = self.dropout(torch.relu(self.norm1(self.conv1(x))))
        return torch.relu(self.norm2(self.conv2(y)) + self.shortcut(x))


class CKGResNet(nn.Module):
    """Continuous-kernel residual G-CNN on images, invariant logits.

    Args:
        in_channels, num_classes: input channels and logits.
        group: the group H acting on R^2 (default ``SO2()``; any group with a grid works).
        num_elements: size of its deterministic grid (default 8; finite groups: the order).
        hidden_channels: fields per layer (int, or one per block).
        num_blocks: residual blocks (ignored when ``hidden_channels`` is a sequence).
        kernel_size: odd kernel size of every conv (continuous kernels: any odd size costs the
            same number of parameters).
        kernel_net, kernel_net_kwargs: the kernel network (``"siren"``, ``"mlp"``, ``"rff"``).
        mask, mask_radius: the spatial kernel mask (see :class:`~groupconv.nn.GroupConv`).
        sampler: a deterministic :mod:`groupconv.sampling` sampler replacing the default grid.
        norm: ``"batch"``, ``"layer"`` or ``"none"``; ``dropout`` inside the blocks.
        pool_after: block indices followed by a 2x2 spatial max pool.
        spatial_pool: ``"max"`` (default, as the reference) or ``"mean"`` over space.

    Example:
        >>> import torch
        >>> CKGResNet(3, 5, hidden_channels=(4, 6), kernel_size=3)(torch.randn(2, 3, 8, 8)).shape
        torch.Size([2, 5])
    """

    def __init__(
        self,
        in_channels: int = 1,
        num_classes: int = 10,
        group: Group | None = None,
        num_elements: int | None = 8,
        hidden_channels: int | Sequence[int] = 16,
        num_blocks: int = 2,
        kernel_size: int = 5,
        *,
        kernel_net: str = "siren",
        kernel_net_kwargs: dict[str, Any] | None = None,
        mask: str | bool | None = None,
        mask_radius: float = 1.0,
        sampler: Any = None,
        norm: str = "batch",
        dropout: float = 0.0,
        pool_after: Sequence[int] = (),
        spatial_pool: str = "max",
    ) -> None:
        super().__init__()
        if group is None:
            from ..groups import SO2

            group = SO2()
        if not isinstance(group, Group):
            raise TypeError(f"group must be a groupconv.groups.Group, got {type(group).__name__}")
        if group.space_dim != 2:
            raise ValueError(
                f"group must act on R^2 (images), got {group.name} acting on R^{group.space_dim}")
        if sampler is not None and not getattr(sampler, "is_deterministic", False):
            raise ValueError(
                f"sampler must be deterministic (random per-layer grids, i.e. partial "
                f"equivariance, are not supported by CKGResNet yet), got {sampler!r}"
            )
        if group.is_finite and num_elements == 8 and getattr(group, "order", 8) != 8:
            num_elements = None  # the default 8 is meant for continuous groups
        self.in_channels = check_positive_int(in_channels, "in_channels")
        self.num_classes = check_positive_int(num_classes, "num_classes")
        self.group = group
        if isinstance(hidden_channels, int):
            chans = (check_positive_int(hidden_channels, "hidden_channels"),) * check_positive_int(
                num_blocks, "num_blocks")
        else:
            chans = tuple(check_positive_int(c, "hidden_channels[i]") for c in hidden_channels)
            if not chans:
                raise ValueError("hidden_channels must be an int or a non-empty sequence, got ()")
        k = check_positive_int(kernel_size, "kernel_size")
        self.norm = _check_choice(norm, "norm", ("batch", "layer", "none"))
        self.pool_after = _check_pool_after(pool_after, len(chans))
        conv_kw: dict[str, Any] = {"num_elements": num_elements, "sampler": sampler,
                                   "kernel_net": kernel_net, "mask": mask, "mask_radius": float(mask_radius)}
        if kernel_net_kwargs:
            conv_kw["kernel_net_kwargs"] = dict(kernel_net_kwargs)
        self.lift = LiftingConv(self.in_channels, chans[0], group, k, padding=k // 2,
                                bias=self.norm == "none", **conv_kw)
        self.lift_norm = _norm(self.norm, chans[0])
        self.num_elements = self.lift.num_elements
        self.blocks = nn.ModuleList(
            CKGResBlock(chans[max(i - 1, 0)], c, group, k, norm=self.norm, dropout=dropout,
                        conv_kwargs=conv_kw)
            for i, c in enumerate(chans)
        )
        self.pool = SpatialMaxPool(2)
        spatial = _check_choice(spatial_pool, "spatial_pool", ("max", "mean"))
        self.readout = GlobalInvariantPool("max", spatial)
        self.head = nn.Linear(chans[-1], self.num_classes)

    @property
    def in_field(self):
        """How the group acts on the input: an ``ImageField`` of the group."""
        from ..spaces import ImageField

        return ImageField(self.group)

    @property
    def out_field(self):
        """The logits are invariant: a ``TrivialField``."""
        from ..spaces import TrivialField

        return TrivialField(self.group)

    def features(self, x: Tensor) -> Tensor:
        """The last group feature map ``(B, C, N, h, w)`` before the readout."""
        x = check_tensor(x, "x")
        if x.dim() != 4 or x.shape[1] != self.in_channels:
            raise ValueError(
                f"x must have shape (B, in_channels={self.in_channels}, H, W), got shape {tuple(x.shape)}"
            )
        y = torch.relu(self.lift_norm(self.lift(x)))
        for i, block in enumerate(self.blocks):
            y = block(y)
            if i in self.pool_after:
                if y.shape[-1] % 2 or y.shape[-2] % 2:
                    raise ValueError(
                        f"the map before the pool after block {i} is {y.shape[-2]}x{y.shape[-1]}: "
                        "pooled sizes must be even for exact equivariance"
                    )
                y = self.pool(y)
        return y

    def forward(self, x: Tensor) -> Tensor:
        """``(B, in_channels, H, W)`` -> invariant logits ``(B, num_classes)``."""
        return self.head(self.readout(self.features(x)))
