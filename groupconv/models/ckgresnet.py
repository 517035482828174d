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

Options:

* ``separable=True`` (or a variant name of :data:`groupconv.nn.group.separable.VARIANTS`, e.g.
  ``"gseparable"``): the block convs are :class:`~groupconv.nn.group.separable.SeparableGroupConv` on the same
  grid (Knigge, Romero & Bekkers 2022); the lifting conv stays a full ``LiftingConv``.
* ``partial=True``: the block convs are :class:`~groupconv.nn.group.partial.PartialGroupConv` (Romero & Lohit
  2022), ``"extent"`` mode for SO(2)/O(2) (a learned rotation extent ``u`` per layer, plus a
  mirror probability for O(2)) and ``"mask"`` mode for finite groups (learned keep
  probabilities). Each layer's sampled grid is passed to the next layer as ``in_grid`` (as in
  :class:`~groupconv.nn.group.partial.GroupSequential`); where a block's output grid differs from its input
  grid (extent mode) the shortcut is a continuous :class:`~groupconv.nn.group.separable.PointwiseGroupConv`
  that resamples the input onto the output grid. Dropped elements (mask mode, the O(2)
  mirror) are zeroed after the block's activation, so the next layer's Haar mean skips them.
  :meth:`CKGResNet.extents` reports the learned supports and
  :meth:`CKGResNet.set_fully_equivariant` switches every layer back to the fully equivariant
  one (same parameters, exactly invariant logits).

The readout is a max over the group axis and a max (or mean) over space, so the logits are
invariant to the exact actions of the grid on the input (90-degree rotations for an SO(2) grid
of 8 or 4, mirrors for O(2)/D_n grids); partial models only once switched to fully equivariant.

``sampler=`` accepts deterministic samplers only (random per-layer grids would need the same
grid threading as ``partial=True``).

Example:
    >>> import torch
    >>> net = CKGResNet(1, 10, hidden_channels=4, num_blocks=1, kernel_size=3).eval()
    >>> x = torch.randn(2, 1, 8, 8)
    >>> torch.allclose(net(x), net(torch.rot90(x, 1, dims=(-2, -1))), atol=1e-5)
    True
    >>> pnet = CKGResNet(1, 2, hidden_channels=4, num_blocks=1, kernel_size=3, partial=True)
    >>> sorted(pnet.extents())
    ['blocks.0.conv1', 'blocks.0.conv2']
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch
from torch import Tensor, nn

from .._validation import check_choice, check_dropout, check_positive_int
from ..groups import SO2, Group
from ..nn.group.gconv import GroupConv, LiftingConv, apply_element_mask
from ..nn.group.partial import (
    PartialGroupConv,
    PartialLiftingConv,
    extents,
    monotonic_decay_loss,
    partial_param_groups,
)
from ..nn.group.pooling import BlurPool, GlobalInvariantPool, SpatialMaxPool
from ..nn.group.separable import VARIANTS, PointwiseGroupConv, SeparableGroupConv
from ..sampling import Sampler
from ._common import InvariantImageClassifier, check_pool_after, group_norm, image_group, off_grid_rotations

__all__ = ["CKGResNet", "CKGResBlock"]

_PARTIAL_KEYS = ("mode", "init_extent", "init_keep", "temperature")


def _check_separable(separable: object) -> str | None:
    if separable is False or separable is None:
        return None
    if separable is True:
        return "separable"
    allowed = tuple(v for v in VARIANTS if v != "sim2")
    if not isinstance(separable, str) or separable not in allowed:
        raise ValueError(f"separable must be a bool or one of {allowed}, got {separable!r}")
    return separable


class CKGResBlock(nn.Module):
    """``relu(norm(conv2(drop(relu(norm(conv1(x)))))) + shortcut(x))`` on group maps.

    ``conv_kwargs`` are passed to both convs (group grid, kernel net, mask...). ``separable``
    (a variant name) makes them :class:`~groupconv.nn.group.separable.SeparableGroupConv`; ``partial`` (a dict
    of :class:`~groupconv.nn.group.partial.PartialGroupConv` options, ``{}`` for the defaults) makes them
    partial layers, with a :class:`~groupconv.nn.group.separable.PointwiseGroupConv` shortcut when the output
    grid can differ from the input one (``pointwise_shortcut``; extent mode).

    Example:
        >>> import torch
        >>> from groupconv.groups import SO2
        >>> kw = {"num_elements": 4, "kernel_net": "siren"}
        >>> CKGResBlock(2, 3, SO2(), 3, conv_kwargs=kw)(torch.randn(1, 2, 4, 6, 6)).shape
        torch.Size([1, 3, 4, 6, 6])
        >>> block = CKGResBlock(2, 2, SO2(), 3, conv_kwargs=kw, partial={})
        >>> y, grid = block.forward_with_grid(torch.randn(1, 2, 4, 6, 6))
        >>> y.shape, tuple(grid.shape)
        (torch.Size([1, 2, 4, 6, 6]), (4, 1))
    """

    def __init__(self, in_channels: int, out_channels: int, group: Group, kernel_size: int, *,
                 norm: str = "batch", dropout: float = 0.0,
                 conv_kwargs: dict[str, Any] | None = None, separable: str | None = None,
                 partial: dict[str, Any] | None = None,
                 pointwise_shortcut: bool | None = None) -> None:
        super().__init__()
        kw = dict(conv_kwargs or {})
        bias = norm == "none"
        common = {"padding": kernel_size // 2, "bias": bias}
        if separable is not None and partial is not None:
            raise ValueError("separable and partial cannot be combined: SeparableGroupConv has no "
                             f"partial mode (got separable={separable!r}, partial={partial!r})")
        if separable is not None:
            def make(c_in: int, c_out: int) -> nn.Module:
                return SeparableGroupConv(c_in, c_out, group, kernel_size, variant=separable,
                                          **common, **kw)
        elif partial is not None:
            bad = set(partial) - set(_PARTIAL_KEYS)
            if bad:
                raise ValueError(f"partial options must be among {_PARTIAL_KEYS}, got {sorted(bad)}")

            def make(c_in: int, c_out: int) -> nn.Module:
                return PartialGroupConv(c_in, c_out, group, kernel_size, **common, **kw, **partial)
        else:
            def make(c_in: int, c_out: int) -> nn.Module:
                return GroupConv(c_in, c_out, group, kernel_size, **common, **kw)
        self.conv1 = make(in_channels, out_channels)
        self.norm1 = group_norm(norm, out_channels)
        self.conv2 = make(out_channels, out_channels)
        self.norm2 = group_norm(norm, out_channels)
        self.dropout = nn.Dropout(check_dropout(dropout))
        if pointwise_shortcut is None:
            pointwise_shortcut = partial is not None and self.conv2.partial_mode == "extent"
        self.pointwise_shortcut = bool(pointwise_shortcut)
        if self.pointwise_shortcut:
            pw = {k: kw[k] for k in ("num_elements", "sampler", "kernel_net", "kernel_net_kwargs") if k in kw}
            self.shortcut: nn.Module = PointwiseGroupConv(in_channels, out_channels, group, bias=bias, **pw)
        else:
            self.shortcut = (nn.Identity() if in_channels == out_channels
                             else nn.Conv3d(in_channels, out_channels, 1))

    def forward_with_grid(self, x: Tensor, in_grid: Tensor | None = None,
                          generator: torch.Generator | None = None) -> tuple[Tensor, Tensor | None]:
        """``(y, out_grid)``: ``in_grid`` is the grid of ``x`` when it is not the layers'
        deterministic grid (``None`` otherwise; likewise for the returned grid)."""
        # partial convs return their element masks: dropped elements are zeroed after the norm
        # and the activation, so the next layer's Haar mean skips them
        h, grid1, m1 = self.conv1.forward_with_grid_mask(x, in_grid, generator)
        h = self.dropout(apply_element_mask(torch.relu(self.norm1(h)), m1))
        h, grid2, m2 = self.conv2.forward_with_grid_mask(h, grid1, generator)
        if self.pointwise_shortcut:
            s = self.shortcut.forward_with_grid(x, in_grid, generator, out_grid=grid2)[0]
        else:
            s = self.shortcut(x)
        return apply_element_mask(torch.relu(self.norm2(h) + s), m2), grid2

    def forward(self, x: Tensor, in_grid: Tensor | None = None,
                generator: torch.Generator | None = None) -> Tensor:  # noqa: D102
        return self.forward_with_grid(x, in_grid, generator)[0]


class CKGResNet(InvariantImageClassifier, nn.Module):
    """Continuous-kernel residual G-CNN on images, invariant logits.

    Args:
        in_channels, num_classes: input channels and logits.
        group: the group H acting on R^2 (default ``SO2()``; any group with a grid works).
        num_elements: size of its deterministic grid; ``None`` (default): 8 for a continuous
            group, the order for a finite one. An explicit value is used as given (a finite
            group's subgroup grid, e.g. 8 of ``CyclicGroup(16)``) or refused by the group.
        hidden_channels: fields per layer (int, or one per block).
        num_blocks: residual blocks (ignored when ``hidden_channels`` is a sequence).
        kernel_size: odd kernel size of every conv (continuous kernels: any odd size costs the
            same number of parameters).
        kernel_net, kernel_net_kwargs: the kernel network of every conv (a name of
            :data:`groupconv.kernels.KERNEL_NETS`; each conv builds its own).
        mask, mask_radius: the spatial kernel mask (see :class:`~groupconv.nn.group.gconv.GroupConv`).
        sampler: a deterministic :mod:`groupconv.sampling` sampler replacing the default grid.
        norm: ``"batch"``, ``"layer"`` or ``"none"``; ``dropout`` inside the blocks.
        pool_after: block indices followed by a 2x2 spatial max pool.
        spatial_pool: ``"max"`` (default, as the reference) or ``"mean"`` over space.
        separable: ``False``, ``True`` (``"separable"``) or a variant among ``"separable"``,
            ``"gseparable"``, ``"dseparable"``, ``"dgseparable"``: separable block convs.
        partial: learn partial equivariance in the block convs (not with ``separable``).
        partial_mode: ``"extent"``, ``"mask"`` or ``None`` (extent for SO2/O2, mask otherwise).
        partial_lifting: make the lifting conv partial too (the reference keeps it full).
        fully_equivariant: build a partial model switched to fully equivariant (the control).
        antialias: ``None`` (auto: on when the grid has rotations that do not permute pixels,
            e.g. the default SO(2) grid of 8), ``True``/``False``: anti-aliased pooling
            (:class:`~groupconv.nn.group.pooling.BlurPool`, odd maps allowed) and a readout over the
            disc inscribed in the last map (see :class:`~groupconv.models.GCNN`).
        init_extent, init_keep, temperature: initial extent ``u``, keep/mirror probability and
            relaxed-Bernoulli temperature of the partial layers (:mod:`groupconv.nn.group.partial`).

    ``forward(x, generator=None)``: ``generator`` drives the partial layers' grid and mask
    samples in training.

    Example:
        >>> import torch
        >>> CKGResNet(3, 5, hidden_channels=(4, 6), kernel_size=3)(torch.randn(2, 3, 8, 8)).shape
        torch.Size([2, 5])
        >>> sep = CKGResNet(1, 5, hidden_channels=4, num_blocks=1, kernel_size=3,
        ...                 separable="gseparable").eval()
        >>> x = torch.randn(2, 1, 8, 8)
        >>> torch.allclose(sep(x), sep(torch.rot90(x, 1, dims=(-2, -1))), atol=1e-5)
        True
    """

    def __init__(
        self,
        in_channels: int = 1,
        num_classes: int = 10,
        group: Group | None = None,
        num_elements: int | None = None,
        hidden_channels: int | Sequence[int] = 16,
        num_blocks: int = 2,
        kernel_size: int = 5,
        *,
        kernel_net: str = "siren",
        kernel_net_kwargs: dict[str, Any] | None = None,
        mask: str | bool | None = None,
        mask_radius: float = 1.0,
        sampler: Sampler | None = None,
        norm: str = "batch",
        dropout: float = 0.0,
        pool_after: Sequence[int] = (),
        spatial_pool: str = "max",
        separable: bool | str = False,
        partial: bool = False,
        partial_mode: str | None = None,
        partial_lifting: bool = False,
        fully_equivariant: bool = False,
        init_extent: float = 0.95,
        init_keep: float = 0.88,
        temperature: float = 0.5,
        antialias: bool | None = None,
    ) -> None:
        super().__init__()
        group = image_group(group, SO2)
        if sampler is not None and not getattr(sampler, "is_deterministic", False):
            raise ValueError(
                f"sampler must be deterministic (random per-layer grids are not supported by "
                f"CKGResNet; use partial=True for learned grids), got {sampler!r}"
            )
        for name, flag in (("partial", partial), ("partial_lifting", partial_lifting),
                           ("fully_equivariant", fully_equivariant)):
            if not isinstance(flag, bool):
                raise TypeError(f"{name} must be a bool, got {flag!r}")
        self.separable = _check_separable(separable)
        if self.separable is not None and partial:
            raise ValueError(f"separable and partial cannot be combined (got separable={separable!r}, "
                             "partial=True): SeparableGroupConv has no partial mode")
        if (partial_lifting or fully_equivariant) and not partial:
            raise ValueError("partial_lifting and fully_equivariant need partial=True, got "
                             f"partial_lifting={partial_lifting}, fully_equivariant={fully_equivariant}")
        if num_elements is None and not group.is_finite:
            num_elements = 8  # the default grid of a continuous group (finite ones: the order)
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
        self.norm = check_choice(norm, "norm", ("batch", "layer", "none"))
        self.pool_after = check_pool_after(pool_after, len(chans))
        conv_kw: dict[str, Any] = {"num_elements": num_elements, "sampler": sampler,
                                   "kernel_net": kernel_net, "mask": mask, "mask_radius": float(mask_radius)}
        if kernel_net_kwargs:
            conv_kw["kernel_net_kwargs"] = dict(kernel_net_kwargs)
        partial_kw = ({"mode": partial_mode, "init_extent": init_extent, "init_keep": init_keep,
                       "temperature": temperature} if partial else None)
        lift_kw = {"padding": k // 2, "bias": self.norm == "none", **conv_kw}
        if partial_lifting:
            self.lift: nn.Module = PartialLiftingConv(self.in_channels, chans[0], group, k,
                                                      **partial_kw, **lift_kw)
        else:
            self.lift = LiftingConv(self.in_channels, chans[0], group, k, **lift_kw)
        self.lift_norm = group_norm(self.norm, chans[0])
        self.num_elements = self.lift.num_elements
        self.blocks = nn.ModuleList(
            CKGResBlock(chans[max(i - 1, 0)], c, group, k, norm=self.norm, dropout=dropout,
                        conv_kwargs=conv_kw, separable=self.separable, partial=partial_kw)
            for i, c in enumerate(chans)
        )
        if antialias is not None and not isinstance(antialias, bool):
            raise TypeError(f"antialias must be None or a bool, got {type(antialias).__name__}")
        if antialias is None:
            antialias = off_grid_rotations(group, self.lift.out_grid)
        self.antialias = antialias
        self.pool = BlurPool() if antialias else SpatialMaxPool(2)
        spatial = check_choice(spatial_pool, "spatial_pool", ("max", "mean"))
        self.readout = GlobalInvariantPool("max", spatial, disc=antialias)
        self.head = nn.Linear(chans[-1], self.num_classes)
        self.partial = partial
        self._partial_flags = [m.partial for m in self._partial_convs()]
        if fully_equivariant:
            self.set_fully_equivariant(True)

    # -- partial equivariance -------------------------------------------------------------------
    def _partial_convs(self) -> list[nn.Module]:
        if not self.partial:
            return []
        lift = [self.lift] if isinstance(self.lift, PartialLiftingConv) else []
        return lift + [c for b in self.blocks for c in (b.conv1, b.conv2)]

    @property
    def fully_equivariant(self) -> bool:
        """Whether every layer currently behaves as the fully equivariant one."""
        return all(not c.partial for c in self._partial_convs())

    def set_fully_equivariant(self, flag: bool = True) -> None:
        """``True``: every partial layer becomes the fully equivariant one (exactly invariant
        logits); ``False``: restore the layers built partial. Needs ``partial=True``."""
        if not self.partial:
            raise ValueError("set_fully_equivariant needs a model built with partial=True "
                             "(this one is always fully equivariant)")
        for conv, was_partial in zip(self._partial_convs(), self._partial_flags, strict=True):
            conv.set_fully_equivariant(True if flag else not was_partial)

    def extents(self) -> dict[str, dict[str, Any]]:
        """Learned supports per partial layer, ``{"blocks.0.conv1": {...}, ...}`` (see
        :func:`groupconv.nn.group.partial.extents`; ``"lift"`` too with ``partial_lifting``;
        ``measure`` is 1 for a fully equivariant layer); ``{}`` without ``partial``."""
        return extents(self)

    def regularizer(self, weight: float = 1e-3) -> Tensor:
        """The monotonic-decay penalty ``weight * sum_l ReLU(m_{l+1} - m_l)`` (0 without partial)."""
        return monotonic_decay_loss(self, weight)

    def param_groups(self, lr: float, lr_partial: float, **options: Any) -> list[dict[str, Any]]:
        """Optimiser groups: the partial parameters at ``lr_partial`` without weight decay."""
        return partial_param_groups(self, lr, lr_partial, **options)

    # -- forward --------------------------------------------------------------------------------
    def features(self, x: Tensor, generator: torch.Generator | None = None) -> Tensor:
        """The last group feature map ``(B, C, N, h, w)`` before the readout."""
        x = self._check_image(x)
        y, grid, m = self.lift.forward_with_grid_mask(x, None, generator)
        y = apply_element_mask(torch.relu(self.lift_norm(y)), m)
        for i, block in enumerate(self.blocks):
            y, grid = block.forward_with_grid(y, grid, generator)
            if i in self.pool_after:
                if (y.shape[-1] % 2 or y.shape[-2] % 2) and not self.antialias:
                    raise ValueError(
                        f"the map before the pool after block {i} is {y.shape[-2]}x{y.shape[-1]}: "
                        "pooled sizes must be even for exact equivariance"
                    )
                y = self.pool(y)
        return y

    def forward(self, x: Tensor, generator: torch.Generator | None = None) -> Tensor:
        """``(B, in_channels, H, W)`` -> logits ``(B, num_classes)``."""
        return self.head(self.readout(self.features(x, generator)))

    def extra_repr(self) -> str:
        s = f"group={self.group!r}, N={self.num_elements}"
        if self.separable is not None:
            s += f", separable={self.separable!r}"
        if self.partial:
            s += f", partial, fully_equivariant={self.fully_equivariant}"
        return s
