"""Group transformers: :class:`TransformerBlock` and :class:`GroupTransformer` (GSA-Nets).

* :class:`TransformerBlock` on ``(B, C, N, H, W)``:
  ``y = x + Drop(Act(Norm(GSA(Act(Norm(x))))))`` then ``out = y + MLP(y)`` with a pointwise
  MLP ``C -> hidden -> C`` (``hidden = C * mlp_ratio``, default ``C / 2`` as GSA-Nets).
* :class:`GroupTransformer`: pointwise input embedding -> lifting self-attention -> Norm -> Act
  -> stages of blocks (2x2 spatial max pooling between stages) -> pointwise linear to classes
  -> **mean (or sum, as GSA-Nets) over space, max over the group axis**: logits
  ``(B, num_classes)`` invariant to the group.

Why the embedding and the mean: with one input channel, the lifting layer's values are an
affine function of one pixel, so every location's features lie on a line and the per-location
norm flattens them; a pointwise MLP ``in_channels -> channels`` (equivariant: it acts on each
pixel alone) gives the attention nonlinear, ``channels``-dimensional values. Summing per-pixel
logits over space makes them scale with the image area (first-epoch losses ~40 on 16x16
digits); the mean does not.

Every piece is equivariant: attention layers (see :mod:`groupconv.nn.attention.self_attention`), pointwise
maps and :class:`ChannelLayerNorm` (statistics over the channels of one ``(h, x)`` location),
``BatchNorm3d`` (per-channel statistics pooled over group, space and batch), 2x2 pooling on
even sizes (the blocks are permuted by rotations and flips about the centre).

Example:
    >>> import torch
    >>> from groupconv.groups import CyclicGroup
    >>> model = GroupTransformer(1, 10, CyclicGroup(4), channels=8, blocks=(1, 1), heads=2,
    ...                          patch_size=3).eval()
    >>> x = torch.randn(2, 1, 8, 8)
    >>> torch.allclose(model(torch.rot90(x, 1, dims=(-2, -1))), model(x), atol=1e-5)
    True
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ..._validation import check_float_tensor, check_input_dtype, check_positive_int
from ...groups.base import Group
from ...spaces import GridField, GroupGridField, TrivialField
from .self_attention import GroupSelfAttention, LiftingSelfAttention

__all__ = ["ChannelLayerNorm", "TransformerBlock", "GroupTransformer"]

_ACTIVATIONS = {"silu": nn.SiLU, "swish": nn.SiLU, "gelu": nn.GELU, "relu": nn.ReLU}


def _activation(name: str) -> nn.Module:
    if name not in _ACTIVATIONS:
        raise ValueError(f"activation must be one of {sorted(_ACTIVATIONS)}, got {name!r}")
    return _ACTIVATIONS[name]()


class ChannelLayerNorm(nn.Module):
    """LayerNorm over the channel axis 1 of ``(B, C, ...)`` (pointwise, so equivariant).

    Example:
        >>> import torch
        >>> ChannelLayerNorm(3)(torch.randn(2, 3, 4, 5, 5)).mean(dim=1).abs().max() < 1e-5
        tensor(True)
    """

    def __init__(self, channels: int, eps: float = 1e-5, device=None, dtype=None) -> None:
        super().__init__()
        self.norm = nn.LayerNorm(check_positive_int(channels, "channels"), eps=eps, device=device,
                                 dtype=dtype)

    def forward(self, x: Tensor) -> Tensor:
        x = check_float_tensor(x, "x")
        c = self.norm.normalized_shape[0]
        if x.dim() < 2 or x.shape[1] != c:
            raise ValueError(f"x must have shape (B, channels={c}, ...), got shape {tuple(x.shape)}")
        w = self.norm.weight
        if not (x.dtype in (torch.float16, torch.bfloat16) and w is not None and w.dtype == torch.float32):
            check_input_dtype(x, w, "ChannelLayerNorm")  # torch's layer_norm takes half x, float affine
        return self.norm(x.movedim(1, -1)).movedim(-1, 1)


_EMBEDDINGS = ("mlp", "linear", "none")


class _WarmStartBatchNorm3d(nn.BatchNorm3d):
    """``BatchNorm3d`` whose running statistics start at the first training batch's statistics.

    torch starts the running mean at 0 and the running variance at 1 and moves them by
    ``momentum`` (0.1) per step, so after ``t`` steps the start still weighs ``0.9**t`` (0.03
    after 34 steps). The lifted features of a :class:`GroupTransformer` on mostly-blank images
    have per-channel variances of 1e-6-1e-3, so in eval mode they were divided by ~1 instead of
    their standard deviation for hundreds of steps: eval accuracy near chance while training
    accuracy rose (attention-digits, docs/results.md). Here the first training batch after
    construction (or :meth:`reset_running_stats`) replaces the start (momentum 1 for that one
    step); a loaded ``state_dict`` counts as started. A Python flag, so no host sync.
    """

    def reset_running_stats(self) -> None:
        super().reset_running_stats()
        self._fresh = True

    def forward(self, x: Tensor) -> Tensor:
        if self.training and self.track_running_stats and getattr(self, "_fresh", False):
            self._fresh = False
            momentum, self.momentum = self.momentum, 1.0
            try:
                return super().forward(x)
            finally:
                self.momentum = momentum
        return super().forward(x)

    def _load_from_state_dict(self, *args, **kwargs) -> None:
        self._fresh = False
        super()._load_from_state_dict(*args, **kwargs)


class _InstanceNorm(nn.Module):
    """Per sample and channel over all other axes (group and space), with a per-channel affine.

    The same operator as ``GroupNorm(C, C)``, computed in two passes (mean, then the variance of
    the centred values): the lifted features of a :class:`GroupTransformer` vary by ~1e-3 around
    offsets of ~0.1, and ``GroupNorm``'s float32 statistics then differ between a map and its
    rotated copy by enough to break exact C4 invariance at the 1e-3 level.
    """

    def __init__(self, channels: int, eps: float = 1e-5, device=None, dtype=None) -> None:
        super().__init__()
        self.num_features = channels
        self.eps = float(eps)
        self.weight = nn.Parameter(torch.ones(channels, device=device, dtype=dtype))
        self.bias = nn.Parameter(torch.zeros(channels, device=device, dtype=dtype))

    def forward(self, x: Tensor) -> Tensor:
        dims = tuple(range(2, x.dim()))
        c = x - x.mean(dim=dims, keepdim=True)
        y = c * torch.rsqrt(c.square().mean(dim=dims, keepdim=True) + self.eps)
        shape = (1, -1) + (1,) * len(dims)
        return y * self.weight.reshape(shape) + self.bias.reshape(shape)


def _norm(kind: str, channels: int, fk: dict) -> nn.Module:
    if kind == "layer":
        return ChannelLayerNorm(channels, **fk)
    if kind == "batch":
        return _WarmStartBatchNorm3d(channels, **fk)
    if kind == "instance":  # per sample and channel, over group and space: no running statistics
        return _InstanceNorm(channels, **fk)
    raise ValueError(f"norm must be 'layer', 'batch' or 'instance', got {kind!r}")


class TransformerBlock(nn.Module):
    """Pre-norm residual block of group self-attention and a pointwise MLP on ``(B, C, N, H, W)``.

    Args:
        channels: C (in = out).
        group: H; ``attention`` (optional) is a ready :class:`GroupSelfAttention` whose group,
            grid and channels must match (``ValueError`` otherwise).
        heads, head_channels, patch_size, num_elements, positional, group_encoding: of the
            attention layer (``head_channels``: see :class:`LiftingSelfAttention`).
        mlp_ratio: hidden width of the MLP as a fraction of C (default 0.5).
        dropout: dropout after the attention branch and inside the MLP.
        norm: ``"layer"`` (:class:`ChannelLayerNorm`) or ``"batch"`` (``BatchNorm3d`` whose
            running statistics start at the first training batch's, not at 0 / 1).
        activation: ``"silu"`` (Swish, as GSA-Nets), ``"gelu"`` or ``"relu"``.

    Example:
        >>> import torch
        >>> from groupconv.groups import CyclicGroup
        >>> block = TransformerBlock(4, CyclicGroup(4), heads=2, patch_size=3)
        >>> block(torch.randn(1, 4, 4, 6, 6)).shape
        torch.Size([1, 4, 4, 6, 6])
    """

    def __init__(
        self,
        channels: int,
        group: Group,
        *,
        heads: int = 1,
        head_channels: int | None = None,
        patch_size: int | None = 5,
        num_elements: int | None = None,
        positional: str = "rowcol",
        group_encoding: str = "table",
        mlp_ratio: float = 0.5,
        dropout: float = 0.0,
        norm: str = "layer",
        activation: str = "silu",
        attention: GroupSelfAttention | None = None,
        device: torch.device | str | None = None,
        dtype: torch.dtype | None = None,
    ) -> None:
        super().__init__()
        self.channels = check_positive_int(channels, "channels")
        fk = {"device": device, "dtype": dtype}
        if attention is None:
            attention = GroupSelfAttention(
                channels, channels, group, heads=heads, head_channels=head_channels,
                patch_size=patch_size, num_elements=num_elements, positional=positional,
                group_encoding=group_encoding, **fk,
            )
        else:
            if not isinstance(attention, GroupSelfAttention):
                raise TypeError(f"attention must be a GroupSelfAttention, got {type(attention).__name__}")
            if attention.group != group:
                raise ValueError(
                    f"attention works on {attention.group!r} but the block on {group!r} (group mismatch)"
                )
            if (attention.in_channels, attention.out_channels) != (channels, channels):
                raise ValueError(
                    f"attention must map channels={channels} to {channels}, got "
                    f"{attention.in_channels} -> {attention.out_channels}"
                )
        self.group = group
        self.attention = attention
        self.num_elements = attention.num_elements
        hidden = max(1, int(round(channels * float(mlp_ratio))))
        self.norm1 = _norm(norm, channels, fk)
        self.norm2 = _norm(norm, channels, fk)
        self.norm3 = _norm(norm, channels, fk)
        self.act = _activation(activation)
        self.dropout = nn.Dropout(dropout)
        self.mlp = nn.Sequential(
            nn.Linear(channels, hidden, **fk), _activation(activation), nn.Dropout(dropout),
            nn.Linear(hidden, channels, **fk),
        )

    @property
    def in_field(self) -> GroupGridField:
        return self.attention.in_field

    @property
    def out_field(self) -> GroupGridField:
        return self.attention.out_field

    def forward(self, x: Tensor, return_attention: bool = False):
        """``(B, C, N, H, W) -> (B, C, N, H, W)`` (and the attention maps on request)."""
        h = self.attention(self.act(self.norm1(x)), return_attention=return_attention)
        h, attn = h if return_attention else (h, None)
        y = x + self.dropout(self.act(self.norm2(h)))
        out = y + self.mlp(self.norm3(y).movedim(1, -1)).movedim(-1, 1)
        return (out, attn) if return_attention else out


class GroupTransformer(nn.Module):
    """An invariant classifier: lifting SA -> blocks -> sum over space, max over the group.

    Args:
        in_channels: channels of the input images ``(B, in_channels, H, W)``.
        num_classes: number of logits.
        group: H (C_n, D_n, or SO2 with ``num_elements``).
        channels: width of every layer (divisible by ``heads`` unless ``head_channels`` is given).
        blocks: number of :class:`TransformerBlock` per stage; 2x2 max pooling between stages
            (exact for even spatial sizes; a warning otherwise).
        heads, head_channels, patch_size, num_elements, positional, group_encoding, mlp_ratio,
        dropout, norm, activation: passed to the layers (``head_channels=channels // 2`` with
        9 heads is GSA-Nets' layout; ``None`` splits ``channels`` over the heads;
        ``patch_size=None``: global attention, quadratic).
        input_dropout: dropout on the input image (GSA-Nets use 0.2 on CIFAR-10).
        embedding: pointwise input embedding before the lifting layer: ``"mlp"`` (default,
            ``Linear(in, C) -> Act -> Linear(C, C)``), ``"linear"`` (``Linear -> Act``) or
            ``"none"`` (the lifting layer sees the raw channels, as GSA-Nets).
        spatial_pool: ``"mean"`` (default) or ``"sum"`` (GSA-Nets) of the per-pixel logits.
        lift_norm: the norm after the lifting layer (default: ``norm``); ``"instance"``
            normalises each sample's channel over group and space (as ``GroupNorm(C, C)``), so it
            has no running statistics to drift when the lifted features of nearly blank
            images have tiny per-channel variances (see docs/results.md, attention-digits).

    Example:
        >>> import torch
        >>> from groupconv.groups import DihedralGroup
        >>> model = GroupTransformer(3, 10, DihedralGroup(4), channels=8, blocks=(1,), heads=2,
        ...                          patch_size=3)
        >>> model(torch.randn(2, 3, 6, 6)).shape
        torch.Size([2, 10])
    """

    def __init__(
        self,
        in_channels: int,
        num_classes: int,
        group: Group,
        *,
        channels: int = 20,
        blocks: Sequence[int] = (2, 3),
        heads: int = 4,
        head_channels: int | None = None,
        patch_size: int | None = 5,
        num_elements: int | None = None,
        positional: str = "rowcol",
        group_encoding: str = "table",
        mlp_ratio: float = 0.5,
        dropout: float = 0.0,
        input_dropout: float = 0.0,
        norm: str = "layer",
        activation: str = "silu",
        embedding: str = "mlp",
        spatial_pool: str = "mean",
        lift_norm: str | None = None,
        device: torch.device | str | None = None,
        dtype: torch.dtype | None = None,
    ) -> None:
        super().__init__()
        fk = {"device": device, "dtype": dtype}
        blocks = tuple(blocks)
        if lift_norm is not None and lift_norm not in ("layer", "batch", "instance"):
            raise ValueError(f"lift_norm must be 'layer', 'batch', 'instance' or None, got {lift_norm!r}")
        if embedding not in _EMBEDDINGS:
            raise ValueError(f"embedding must be one of {_EMBEDDINGS}, got {embedding!r}")
        if spatial_pool not in ("mean", "sum"):
            raise ValueError(f"spatial_pool must be 'mean' or 'sum', got {spatial_pool!r}")
        self.spatial_pool = spatial_pool
        self.embedding = embedding
        if not blocks or any(isinstance(b, bool) or not isinstance(b, int) or b < 0 for b in blocks):
            raise ValueError(f"blocks must be a non-empty sequence of ints >= 0, got {blocks!r}")
        self.group = group
        self.num_classes = check_positive_int(num_classes, "num_classes")
        self.in_channels = check_positive_int(in_channels, "in_channels")
        self.input_dropout = nn.Dropout(input_dropout)
        in_channels = check_positive_int(in_channels, "in_channels")
        channels = check_positive_int(channels, "channels")
        if embedding == "none":
            self.embed: nn.Module = nn.Identity()
            lift_in = in_channels
        else:
            layers: list[nn.Module] = [nn.Linear(in_channels, channels, **fk), _activation(activation)]
            if embedding == "mlp":
                layers.append(nn.Linear(channels, channels, **fk))
            self.embed = nn.Sequential(*layers)
            lift_in = channels
        self.lift = LiftingSelfAttention(
            lift_in, channels, group, heads=heads, head_channels=head_channels, patch_size=patch_size,
            num_elements=num_elements, positional=positional, **fk,
        )
        self.num_elements = self.lift.num_elements
        self.lift_norm = _norm(norm if lift_norm is None else lift_norm, channels, fk)
        self.act = _activation(activation)
        self.stages = nn.ModuleList(
            nn.Sequential(*[
                TransformerBlock(
                    channels, group, heads=heads, head_channels=head_channels, patch_size=patch_size,
                    num_elements=num_elements,
                    positional=positional, group_encoding=group_encoding, mlp_ratio=mlp_ratio,
                    dropout=dropout, norm=norm, activation=activation, **fk,
                )
                for _ in range(n)
            ])
            for n in blocks
        )
        for stage in self.stages:
            for blk in stage:
                if not bool((blk.attention.grid == self.lift.grid).all()):
                    raise ValueError("every block must use the lifting layer's grid (group mismatch)")
        self.head = nn.Linear(channels, self.num_classes, **fk)
        self._warned_pool = False

    @property
    def in_field(self) -> GridField:
        return self.lift.in_field

    @property
    def out_field(self) -> TrivialField:
        return TrivialField(self.group)

    def _pool(self, x: Tensor) -> Tensor:
        H, W = x.shape[-2:]
        if (H % 2 or W % 2) and not self._warned_pool:
            warnings.warn(
                f"GroupTransformer: 2x2 pooling of a {H}x{W} map drops a row/column, which breaks "
                "exact rotation equivariance; use spatial sizes divisible by 2**(len(blocks) - 1)",
                stacklevel=3,
            )
            self._warned_pool = True
        return F.max_pool3d(x, (1, 2, 2))

    def features(self, x: Tensor) -> Tensor:
        """The equivariant feature map ``(B, num_classes, N, H', W')`` before the readout."""
        x = check_float_tensor(x, "x")
        if x.dim() != 4 or x.shape[1] != self.in_channels:
            raise ValueError(
                f"x must be images (B, in_channels={self.in_channels}, H, W), got shape "
                f"{tuple(x.shape)}"
            )
        check_input_dtype(x, next(self.parameters(), None), "GroupTransformer")
        x = self.input_dropout(x)
        if self.embedding != "none":
            x = self.embed(x.movedim(1, -1)).movedim(-1, 1)
        h = self.act(self.lift_norm(self.lift(x)))
        for i, stage in enumerate(self.stages):
            if i > 0:
                h = self._pool(h)
            h = stage(h)
        return self.head(h.movedim(1, -1)).movedim(-1, 1)

    def forward(self, x: Tensor) -> Tensor:
        """Images ``(B, in_channels, H, W)`` -> invariant logits ``(B, num_classes)``."""
        f = self.features(x)
        f = f.mean(dim=(-2, -1)) if self.spatial_pool == "mean" else f.sum(dim=(-2, -1))
        return f.amax(dim=-1)
