"""Building blocks of the attentive group convolutions (:mod:`groupconv.nn.attention.attentive`).

Every attention map here is built from group convolutions, pooling over invariant axes (space,
channels) and pointwise nonlinearities, so it satisfies the invariance condition
``alpha(h g, h g~, c; L_h f) = alpha(g, g~, c; f)`` of an attentive G-conv.

* :class:`GroupChannelAttention`: CBAM's shared channel MLP as two 1x1 group convs on spatial
  statistics, ``(B, C, N, *s) -> (B, C, N)``.
* :class:`GroupSpatialAttention`: a sigmoid of a group conv on the ``[mean, max]`` over
  channels, ``(B, C, N, *s) -> (B, 1, N, *s)``.
* :class:`FeatureAttention`: both, applied to a layer's input (the fA form).
* :func:`attention_memory_elements`: element counts of the full attentive G-conv.

Example:
    >>> import torch
    >>> from groupconv.groups import CyclicGroup
    >>> att = FeatureAttention(3, CyclicGroup(4), spatial_kernel_size=3)
    >>> x = torch.randn(2, 3, 4, 6, 6)
    >>> y, maps = att(x)
    >>> r = torch.roll(torch.rot90(x, 1, dims=(-2, -1)), 1, dims=2)
    >>> torch.allclose(att(r)[0], torch.roll(torch.rot90(y, 1, dims=(-2, -1)), 1, dims=2), atol=1e-5)
    True
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ..._validation import check_float_tensor, check_input_dtype, check_positive_int
from ...groups.base import Group
from ..group.gconv import GroupConv, LiftingConv

__all__ = [
    "GroupChannelAttention",
    "GroupSpatialAttention",
    "FeatureAttention",
    "attention_memory_elements",
]

_CONV = {1: F.conv1d, 2: F.conv2d, 3: F.conv3d}
_GRID_KEYS = ("num_elements", "sampler", "kernel_net", "kernel_net_kwargs", "mask", "mask_radius")
_STATS = ("mean", "max")


def _check_statistics(statistics: Sequence[str]) -> tuple[str, ...]:
    stats = tuple(statistics) if not isinstance(statistics, str) else (statistics,)
    if not stats or any(s not in _STATS for s in stats) or len(set(stats)) != len(stats):
        raise ValueError(f"statistics must be a non-empty subset of {_STATS}, got {statistics!r}")
    return stats


def _gate(alpha: Tensor, complement: bool) -> Tensor:
    return 1.0 - alpha if complement else alpha


def _sub_kwargs(kwargs: dict[str, Any], **over: Any) -> dict[str, Any]:
    """Grid/kernel options of the attention's own convs, taken from the layer's options."""
    out = {k: kwargs[k] for k in _GRID_KEYS if k in kwargs}
    out.update({k: v for k, v in over.items() if v is not None})
    return out


class GroupChannelAttention(nn.Module):
    """Equivariant channel attention (CBAM's shared MLP as two 1x1 group convs), then sigmoid.

    ``(B, C, N, *s) -> alpha (B, C, N)``: spatial statistics (mean and/or max, invariant to the
    spatial action) -> 1x1 ``GroupConv(C, C // reduction)`` -> ReLU -> 1x1
    ``GroupConv(C // reduction, C)``; the MLP outputs of the statistics are summed, then a
    sigmoid. With ``group=None`` the input is a plain map ``(B, C, *s)`` and the MLP is two
    linear maps (``alpha (B, C)``, invariant).

    Example:
        >>> import torch
        >>> from groupconv.groups import CyclicGroup
        >>> GroupChannelAttention(6, CyclicGroup(4))(torch.randn(2, 6, 4, 5, 5)).shape
        torch.Size([2, 6, 4])
    """

    def __init__(self, channels: int, group: Group | None, *, reduction: int = 2,
                 statistics: Sequence[str] = _STATS, num_elements: int | None = None,
                 spatial_dims: int | None = None, **conv_kwargs: Any) -> None:
        super().__init__()
        self.channels = check_positive_int(channels, "channels")
        self.reduction = check_positive_int(reduction, "reduction")
        self.statistics = _check_statistics(statistics)
        self.group = group
        hidden = max(1, self.channels // self.reduction)
        if group is None:
            self.spatial_dims = check_positive_int(spatial_dims or 2, "spatial_dims")
            self.fc1: nn.Module = nn.Linear(self.channels, hidden)
            self.fc2: nn.Module = nn.Linear(hidden, self.channels)
            self.num_elements = None
        else:
            self.spatial_dims = group.space_dim
            kw = {k: v for k, v in conv_kwargs.items() if k in ("sampler", "device", "dtype")}
            self.fc1 = GroupConv(self.channels, hidden, group, 1, num_elements=num_elements, **kw)
            self.fc2 = GroupConv(hidden, self.channels, group, 1, num_elements=num_elements, **kw)
            self.num_elements = self.fc1.num_elements

    def statistic(self, x: Tensor, name: str) -> Tensor:
        """A spatially invariant statistic of ``x`` (override to experiment)."""
        flat = x.flatten(x.dim() - self.spatial_dims)
        # sum / count and max with indices: their backward never divides or compares the input
        return flat.sum(dim=-1) / flat.shape[-1] if name == "mean" else flat.max(dim=-1).values

    def forward(self, x: Tensor) -> Tensor:
        x = check_float_tensor(x, "x")
        lead = 2 if self.group is None else 3
        if x.dim() != lead + self.spatial_dims or x.shape[1] != self.channels or (
            self.group is not None and x.shape[2] != self.num_elements
        ):
            axis = "" if self.group is None else f", N={self.num_elements}"
            raise ValueError(f"x must have shape (B, channels={self.channels}{axis}, "
                             f"*{self.spatial_dims} spatial dims), got shape {tuple(x.shape)}")
        if self.group is None:
            w1, b1, w2, b2 = self.fc1.weight, self.fc1.bias, self.fc2.weight, self.fc2.bias
        else:  # the 1x1 group convs as dense matrices on (C N) vectors (one matmul each)
            w1, w2 = self.fc1.expanded_weight().flatten(1), self.fc2.expanded_weight().flatten(1)
            n = self.num_elements
            b1, b2 = self.fc1.bias.repeat_interleave(n), self.fc2.bias.repeat_interleave(n)
        check_input_dtype(x, w1, type(self).__name__)
        logits = 0
        for name in self.statistics:
            s = self.statistic(x, name).flatten(1)
            logits = logits + F.linear(torch.relu(F.linear(s, w1, b1)), w2, b2)
        return torch.sigmoid(logits.view(x.shape[: 2 if self.group is None else 3]))


class GroupSpatialAttention(nn.Module):
    """Equivariant spatial attention: sigmoid of a group conv on the [mean, max] over channels.

    ``(B, C, N, *s) -> alpha (B, 1, N, *s)`` with ``GroupConv(2, 1, group, kernel_size)``.
    ``lifting=True``: ``(B, C, *s) -> (B, 1, *s)``, the max (``pool="max"``, the reference's
    choice, default) or mean (``pool="mean"``) over H of a ``LiftingConv(2, 1)`` (either is a
    scalar field on R^d that rotates with the input). Grid options (``num_elements``,
    ``kernel_net``...) are passed to the conv.

    Example:
        >>> import torch
        >>> from groupconv.groups import CyclicGroup
        >>> GroupSpatialAttention(CyclicGroup(4), 3)(torch.randn(2, 5, 4, 6, 6)).shape
        torch.Size([2, 1, 4, 6, 6])
    """

    def __init__(self, group: Group, kernel_size: int = 7, *, lifting: bool = False,
                 pool: str = "max", **conv_kwargs: Any) -> None:
        super().__init__()
        if pool not in ("max", "mean"):
            raise ValueError(f"pool must be 'max' or 'mean', got {pool!r}")
        self.pool = pool
        cls = LiftingConv if lifting else GroupConv
        self.lifting = bool(lifting)
        self.conv = cls(2, 1, group, kernel_size, padding="same", **conv_kwargs)
        self.group = group
        self.spatial_dims = group.space_dim

    def statistics(self, x: Tensor) -> Tensor:
        """``[mean, max]`` over channels, ``(B, 2, ...)`` (override to experiment)."""
        # sum / count and max with indices: their backward never divides or compares the input
        return torch.cat([x.sum(dim=1, keepdim=True) / x.shape[1],
                          x.max(dim=1, keepdim=True).values], dim=1)

    def forward(self, x: Tensor) -> Tensor:
        want = 2 + self.spatial_dims + (0 if self.lifting else 1)
        if x.dim() != want or (not self.lifting and x.shape[2] != self.conv.num_elements):
            axis = "" if self.lifting else f", N={self.conv.num_elements}"
            raise ValueError(f"x must have shape (B, C{axis}, *{self.spatial_dims} spatial dims), "
                             f"got shape {tuple(x.shape)}")
        s = self.statistics(x)
        if self.spatial_dims == 2:  # oneDNN's kernels for 2-8 channels are far faster in NHWC
            s = s.flatten(1, -3).contiguous(memory_format=torch.channels_last).view(s.shape)
        if self.lifting:
            c = self.conv
            if self.pool == "mean":  # mean over H of the lifting conv = one conv, H-mean kernel
                w = c.expanded_weight().mean(dim=0, keepdim=True)
                a = _CONV[self.spatial_dims](s, w, c.bias, c.stride, c.padding, c.dilation)
            else:  # max over H (the reference): the N rotated responses, then their max
                a = c(s).amax(dim=2)
        else:
            a = self.conv(s)
        return torch.sigmoid(a.contiguous())


class FeatureAttention(nn.Module):
    """fA attention on a layer input: ``x -> (alpha^X * alpha^C * x, maps)`` (CBAM order).

    ``alpha^C = channel(x)`` and ``alpha^X = spatial(alpha^C x)``; the maps are returned as
    computed. ``complement=True`` applies the complement of the *combined* map, as the reference
    (``out - out * alpha``): ``x (1 - alpha^C alpha^X(alpha^C x))``.

    ``lifting=False``: ``x (B, C, N, *s)`` with maps ``channel (B, C, N)`` and ``spatial
    (B, 1, N, *s)``; ``lifting=True``: ``x (B, C, *s)``, maps ``(B, C)`` and ``(B, 1, *s)``.

    Example:
        >>> import torch
        >>> from groupconv.groups import CyclicGroup
        >>> att = FeatureAttention(3, CyclicGroup(4), spatial_kernel_size=3)
        >>> y, maps = att(torch.randn(2, 3, 4, 6, 6))
        >>> y.shape, maps["channel"].shape
        (torch.Size([2, 3, 4, 6, 6]), torch.Size([2, 3, 4]))
    """

    def __init__(self, channels: int, group: Group, *, lifting: bool = False, channel: bool = True,
                 spatial: bool = True, reduction: int = 2, statistics: Sequence[str] = _STATS,
                 spatial_kernel_size: int = 7, complement: bool = False, **conv_kwargs: Any) -> None:
        super().__init__()
        if not (channel or spatial):
            raise ValueError("FeatureAttention needs channel=True or spatial=True, got both False")
        self.group = group
        self.lifting = bool(lifting)
        self.complement = bool(complement)
        ne = conv_kwargs.get("num_elements")
        dd = {k: conv_kwargs[k] for k in ("device", "dtype") if k in conv_kwargs}
        self.channel_attention = (
            GroupChannelAttention(channels, None if lifting else group, reduction=reduction,
                                  statistics=statistics, num_elements=ne, spatial_dims=group.space_dim,
                                  **({} if lifting else dd))
            if channel else None
        )
        if lifting and channel:
            self.channel_attention.to(**dd)
        self.spatial_attention = (
            GroupSpatialAttention(group, spatial_kernel_size, lifting=lifting, **conv_kwargs)
            if spatial else None
        )

    def forward(self, x: Tensor) -> tuple[Tensor, dict[str, Tensor]]:
        maps: dict[str, Tensor] = {}
        xa = x
        if self.channel_attention is not None:
            a = self.channel_attention(x)
            maps["channel"] = a
            xa = xa * a.reshape(*a.shape, *(1,) * (x.dim() - a.dim()))
        if self.spatial_attention is not None:
            a = self.spatial_attention(xa)
            maps["spatial"] = a
            xa = xa * a
        if self.complement:  # the reference's out - out * alpha on the combined map
            return x - xa, maps
        return xa, maps


def attention_memory_elements(batch: int, c_in: int, n_in: int, c_out: int, n: int,
                              in_size: Sequence[int], out_size: Sequence[int], kernel: Sequence[int],
                              chunk_elements: int | None = None, max_statistic: bool = False,
                              spatial_attention: bool = True) -> dict[str, int]:
    """Element counts of the full attentive G-conv: the naive tensor vs this implementation.

    With ``P = C_out N``, ``Q = C_in N_in``, ``K = prod(kernel)``, ``X'`` the output's spatial
    size and ``chunk`` the memory budget (``chunk_elements``, default twice the output's
    size): ``naive``: ``B P Q X'`` (the reference's per-channel responses); ``output``:
    ``B P X'``; ``input``: ``B Q prod(in_size)``; ``extra``: what :class:`AttentiveGroupConv`
    holds on top of a plain G-conv during forward + backward: ``min(B P Q K, max(P Q K,
    chunk))`` (the per-sample kernels, or one chunk of them) ``+ 2 B P Q + B Q K``
    (attention, statistic, window means) ``+ B P X' + 5 B N X'`` with ``spatial_attention``
    (the output before the spatial map, the ``[mean, max]`` statistics and their NHWC copy,
    the map), ``+ B Q prod(in_size) + chunk + B P Q (K + 1)`` with ``max_statistic`` (the
    padded input, a chunk of responses, the gathered values and the statistic; pass the
    padded size as ``in_size``).

    Example:
        >>> m = attention_memory_elements(128, 96, 4, 96, 4, (32, 32), (32, 32), (3, 3))
        >>> round(m["naive"] * 4 / 2**30, 1)  # GB in float32, one CIFAR-10 layer
        72.0
        >>> round(m["extra"] / m["output"], 1)  # the naive form: 384 output-sized tensors
        3.8
    """
    xo, xi, K = math.prod(out_size), math.prod(in_size), math.prod(kernel)
    P, Q = c_out * n, c_in * n_in
    out = batch * P * xo
    chunk = 2 * out if chunk_elements is None else int(chunk_elements)
    extra = min(batch * P * Q * K, max(P * Q * K, chunk)) + 2 * batch * P * Q + batch * Q * K
    if spatial_attention:
        extra += out + 5 * batch * n * xo
    if max_statistic:
        extra += batch * Q * xi + chunk + batch * P * Q * (K + 1)
    return {"naive": batch * P * Q * xo, "output": out, "input": batch * Q * xi, "extra": extra}
