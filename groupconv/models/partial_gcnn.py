"""A small partial G-CNN (Romero & Lohit, NeurIPS 2022) built from :mod:`groupconv.nn.group.partial`.

:class:`PartialGCNN` is ``lifting conv -> [partial group conv]* -> invariant pool -> Linear``,
each conv followed by :class:`~groupconv.nn.group.pooling.GroupBatchNorm` and a ReLU, with 2x2
spatial max pools after the layers in ``pool_after``. Every group conv after the lifting layer
learns its own support on H (the lifting layer stays fully equivariant, as in the reference,
unless ``partial_lifting=True``):

* ``SO2()`` / ``O2()`` with a continuous kernel (``kernel_net="siren"``, the default): the
  ``"extent"`` mode, a learned rotation extent ``u`` per layer (support ``[-pi u, pi u)``) and,
  for O(2), a learned mirror probability;
* finite groups (``CyclicGroup(n)``, ``DihedralGroup(n)``) or ``mode="mask"``: learned
  keep-probabilities of the grid elements (relaxed Bernoulli, straight-through).

``fully_equivariant=True`` (or :meth:`PartialGCNN.set_fully_equivariant`) turns every partial
layer into the ordinary fully equivariant one: the same parameters, and a network exactly
invariant to the group grid (for SO(2) with 8 elements: the rotations by multiples of 90
degrees, for O(2) also the mirrors), given even map sizes before every pool (a 16x16 input with
two pools).

Example:
    >>> import torch
    >>> from groupconv.groups import SO2
    >>> net = PartialGCNN(1, 2, SO2(), channels=(4, 4), pool_after=(0,))
    >>> net(torch.randn(3, 1, 16, 16)).shape
    torch.Size([3, 2])
    >>> [(name, info["partial"]) for name, info in net.extents().items()]
    [('conv0', False), ('conv1', True)]
    >>> ctrl = PartialGCNN(1, 2, SO2(), channels=(4, 4), pool_after=(0,), fully_equivariant=True).eval()
    >>> x = torch.randn(2, 1, 16, 16)
    >>> torch.allclose(ctrl(x), ctrl(torch.rot90(x, 2, dims=(-2, -1))), atol=1e-5)
    True
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch
from torch import Tensor, nn

from .._validation import check_positive_int
from ..groups import SO2, Group
from ..nn.group.partial import (
    GroupSequential,
    PartialGroupConv,
    PartialLiftingConv,
    extents,
    monotonic_decay_loss,
    partial_param_groups,
)
from ..nn.group.pooling import GlobalInvariantPool, GroupBatchNorm, SpatialMaxPool
from ._common import InvariantImageClassifier, check_channels, check_pool_after, image_group

__all__ = ["PartialGCNN"]


class PartialGCNN(InvariantImageClassifier, nn.Module):
    """Partial G-CNN classifier for images ``(B, in_channels, H, W) -> (B, num_classes)``.

    Args:
        in_channels: input image channels.
        num_classes: number of logits.
        group: the rotation/reflection group acting on R^2 (default ``SO2()``).
        channels: fields per layer; the first layer is the lifting conv (default ``(8, 8, 8)``).
        kernel_size: odd kernel size of the group convs; ``first_kernel_size`` of the lifting.
        pool_after: indices of layers followed by a 2x2 stride-2 spatial max pool.
        num_elements: grid size of H; ``None`` (default): 8 for a continuous group, the order
            for a finite one; an explicit value is used as given or refused by the group.
        kernel_net: continuous kernel net (a name of :data:`groupconv.kernels.KERNEL_NETS`) or ``None`` for
            discrete kernels (finite groups, ``mode="mask"``).
        kernel_net_kwargs: options of the kernel nets.
        mask_radius: radius of the circular kernel mask (1.5 keeps the corners of a 3x3).
        mode: ``"extent"``, ``"mask"`` or ``None`` (extent for SO2/O2 with continuous kernels).
        partial_lifting: make the lifting layer partial too (the reference keeps it full).
        fully_equivariant: build the fully equivariant control (switchable later).
        init_extent, init_keep, temperature: initial extent ``u``, keep/mirror probability and
            relaxed-Bernoulli temperature of the partial layers (:mod:`groupconv.nn.group.partial`).
        group_pool, spatial_pool: reductions of the readout (``"max"`` / ``"mean"``).

    The body is a :class:`~groupconv.nn.group.partial.GroupSequential` (``self.body``), which threads
    each layer's sampled grid into the next; ``forward(x, generator=...)`` takes an optional
    ``torch.Generator`` for the grid and mask samples.
    """

    def __init__(
        self,
        in_channels: int = 1,
        num_classes: int = 2,
        group: Group | None = None,
        channels: Sequence[int] = (8, 8, 8),
        kernel_size: int = 3,
        *,
        first_kernel_size: int = 5,
        pool_after: Sequence[int] = (0, 1),
        num_elements: int | None = None,
        kernel_net: str | nn.Module | None = "siren",
        kernel_net_kwargs: dict[str, Any] | None = None,
        mask_radius: float = 1.5,
        mode: str | None = None,
        partial_lifting: bool = False,
        fully_equivariant: bool = False,
        init_extent: float = 0.95,
        init_keep: float = 0.88,
        temperature: float = 0.5,
        group_pool: str = "max",
        spatial_pool: str = "mean",
    ) -> None:
        super().__init__()
        group = image_group(group, SO2)
        self.in_channels = check_positive_int(in_channels, "in_channels")
        self.num_classes = check_positive_int(num_classes, "num_classes")
        self.group = group
        chans = check_channels(channels)
        if num_elements is None and not group.is_finite:
            num_elements = 8  # the default grid of a continuous group (finite ones: the order)
        k = check_positive_int(kernel_size, "kernel_size")
        k0 = check_positive_int(first_kernel_size, "first_kernel_size")
        self.pool_after = check_pool_after(pool_after, len(chans))
        conv_kw: dict[str, Any] = {
            "num_elements": num_elements, "kernel_net": kernel_net, "bias": False, "mode": mode,
            "init_extent": init_extent, "init_keep": init_keep, "temperature": temperature,
        }
        if kernel_net is not None:
            conv_kw["mask_radius"] = float(mask_radius)
            if kernel_net_kwargs:
                conv_kw["kernel_net_kwargs"] = dict(kernel_net_kwargs)
        layers: list[nn.Module] = []
        self._conv_index: list[int] = []
        for i, c in enumerate(chans):
            if i == 0:
                conv: nn.Module = PartialLiftingConv(self.in_channels, c, group, k0, padding=k0 // 2,
                                                     partial=bool(partial_lifting), **conv_kw)
            else:
                conv = PartialGroupConv(chans[i - 1], c, group, k, padding=k // 2, **conv_kw)
            self._conv_index.append(len(layers))
            layers += [conv, GroupBatchNorm(c, spatial_dims=2), nn.ReLU()]
            if i in self.pool_after:
                layers.append(SpatialMaxPool(2))
        layers.append(GlobalInvariantPool(group_pool, spatial_pool))
        self.body = GroupSequential(*layers)
        self.head = nn.Linear(chans[-1], self.num_classes)
        self.num_elements = self.convs[0].num_elements
        self._partial_flags = [c.partial for c in self.convs]
        if fully_equivariant:
            self.set_fully_equivariant(True)

    # -- structure ------------------------------------------------------------------------------
    @property
    def convs(self) -> list[nn.Module]:
        """The lifting conv and the group convs, in order."""
        return [self.body[i] for i in self._conv_index]

    @property
    def fully_equivariant(self) -> bool:
        """Whether every layer currently behaves as the fully equivariant one."""
        return all(not c.partial for c in self.convs)

    def set_fully_equivariant(self, flag: bool = True) -> None:
        """``True``: every layer fully equivariant (the control); ``False``: restore the layers
        that were built partial (the lifting stays full unless ``partial_lifting``)."""
        for conv, was_partial in zip(self.convs, self._partial_flags, strict=True):
            conv.set_fully_equivariant(True if flag else not was_partial)

    # -- forward ------------------------------------------------------------------------------
    def features(self, x: Tensor, generator: torch.Generator | None = None) -> Tensor:
        """The pooled invariant features ``(B, channels[-1])`` before the linear head."""
        return self.body(self._check_image(x), generator=generator)

    def forward(self, x: Tensor, generator: torch.Generator | None = None) -> Tensor:
        """``(B, in_channels, H, W)`` -> logits ``(B, num_classes)``."""
        return self.head(self.features(x, generator))

    # -- partial-equivariance helpers ---------------------------------------------------------
    def extents(self) -> dict[str, dict[str, Any]]:
        """Learned supports per conv layer, ``{"conv0": {...}, "conv1": ...}`` (see
        :func:`groupconv.nn.group.partial.extents`; ``measure`` is 1 for a fully equivariant layer)."""
        raw = extents(self.body)
        return {f"conv{j}": raw[str(i)] for j, i in enumerate(self._conv_index)}

    def regularizer(self, weight: float = 1e-3) -> Tensor:
        """The monotonic-decay penalty ``weight * sum_l ReLU(m_{l+1} - m_l)``."""
        return monotonic_decay_loss(self, weight)

    def param_groups(self, lr: float, lr_partial: float, **options: Any) -> list[dict[str, Any]]:
        """Optimiser groups: the partial parameters at ``lr_partial`` without weight decay."""
        return partial_param_groups(self, lr, lr_partial, **options)

    def extra_repr(self) -> str:
        return (f"group={self.group!r}, N={self.num_elements}, pool_after={self.pool_after}, "
                f"fully_equivariant={self.fully_equivariant}")
