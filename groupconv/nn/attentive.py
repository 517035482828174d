"""Attentive group convolutions (Romero et al., ICML 2020) and co-attentive group convolutions
(Romero & Hoogendoorn, ICLR 2020).

An attentive group convolution weighs every term of the group convolution by an attention
value computed from the input ``f``::

    [f *^alpha psi](g) = sum_c int_G alpha(g, g~, c; f) f_c(g~) psi_c(g^-1 g~) dmu(g~)

It is G-equivariant when ``alpha`` is invariant under the joint left action,
``alpha(h g, h g~, c; L_h f) = alpha(g, g~, c; f)``: here every attention map is built from
group convolutions, pooling over invariant axes (space, channels) and pointwise nonlinearities.

Forms (``form=`` of :class:`AttentiveLiftingConv` / :class:`AttentiveGroupConv`):

* ``"full"``: ``alpha(o; g, g~, c) = alpha^X(o?, g) * alpha^C(o, h, h~, c)`` with ``g = (x, h)``,
  ``g~ = (x~, h~)``. The channel attention ``alpha^C[b, o, i, c, j]`` is CBAM's shared MLP on
  the spatial mean and max of the per-input-channel responses
  ``r[b, o, i, c, j, x] = sum_u f[b, c, j, x + u] psi_{oc}(h_i^-1 u, h_i^-1 h_j)``, its weights
  indexed by ``h_i^-1 h_j`` (the MLP "rolled along the group axis", a 1x1 group conv), then a
  sigmoid. The spatial attention ``alpha^X[b, 0, i, x]`` is a sigmoid of a group conv on the
  ``[mean, max]`` over output channels of the channel-attended output (CBAM order).

  **Memory.** The reference keeps ``r`` whole: ``B C_out N C_in N_in X Y`` numbers (about
  72 GB on CIFAR-10). Here nothing of that size exists. Because ``alpha^C`` does not depend on
  position, ``sum_c,j alpha^C r = conv(f, alpha^C * psi)``: one grouped convolution with a
  per-sample kernel (``B C_out N C_in N_in K`` numbers, ``K = prod(kernel_size)``, built for
  as many samples at a time as ``chunk_elements`` allows and recomputed in backward). The mean
  statistic is exact in closed form, ``mean_x r = sum_u psi[u] m[u]`` with ``m[u]`` the mean
  of ``f`` over the output window shifted by ``u`` (``B C_in N_in K`` numbers); it is the
  default statistic. CBAM's max statistic (``statistics=("mean", "max")``, opt-in) has no
  closed form: every response must be evaluated once (``C_in N_in`` times the memory traffic
  of the plain conv, as depthwise convs), so it is computed without gradient in chunks of
  output channels (at most ``chunk_elements`` numbers at a time, default the output's size
  ``B C_out N X' Y'``) to find
  the arg-max position, then re-evaluated differentiably by gathering the ``K`` input values
  there (``B C_out N C_in N_in K`` numbers). Extra peak memory over a plain G-conv, in
  elements: ``min(B C_out N C_in N_in K, chunk) + 2 B C_out N C_in N_in + B C_in N_in P +
  B N X' Y'`` (``P``: padded input size), plus ``chunk_elements + B C_out N C_in N_in (K + 1)``
  with the max statistic (:func:`attention_memory_elements`).

* ``"feature"`` (fA): attention on the input, then an ordinary G-conv:
  ``f' = alpha^X_in(g~) * alpha^C_in(c, h~) * f``; ``alpha^C_in`` is CBAM's MLP on the spatial
  [mean, max] of ``f`` as two 1x1 group convs, ``alpha^X_in`` a sigmoid of a group conv on the
  [mean, max] over channels. For the lifting layer the input lives on R^d: the channel MLP is
  a plain MLP (an invariant statistic) and the spatial map is the mean over H of a lifting
  conv (an invariant scalar field).

:class:`CoAttentiveGroupConv` is the co-attentive layer: fA with a 1x1 group conv, no pooled
statistics and a softmax over H per head, ``f' = N_in * softmax_H(GConv_1x1(f)) * f``.

Attention maps are returned by ``forward(x, return_attention=True) -> (y, maps)``.
``complement=True`` applies ``1 - alpha`` instead of ``alpha`` (the reference's
``out - out * alpha`` convention). All layers need a deterministic grid closed under the
product (finite groups, ``SO2()`` with ``num_elements=N``, user-defined groups alike).

Example:
    >>> import torch
    >>> from groupconv.groups import CyclicGroup
    >>> layer = AttentiveGroupConv(3, 4, CyclicGroup(4), 3, padding=1)
    >>> x = torch.randn(2, 3, 4, 8, 8)
    >>> y, maps = layer(x, return_attention=True)
    >>> y.shape, maps["channel"].shape, maps["spatial"].shape
    (torch.Size([2, 4, 4, 8, 8]), torch.Size([2, 4, 4, 3, 4]), torch.Size([2, 1, 4, 8, 8]))
    >>> r = torch.roll(torch.rot90(x, 1, dims=(-2, -1)), 1, dims=2)
    >>> torch.allclose(layer(r), torch.roll(torch.rot90(layer(x), 1, dims=(-2, -1)), 1, dims=2), atol=1e-5)
    True
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Sequence
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch.utils.checkpoint import checkpoint

from .._validation import check_positive_int
from ..groups.base import Group
from .gconv import GroupConv, LiftingConv
from .gconv_kernels import relative_index

__all__ = [
    "GroupChannelAttention",
    "GroupSpatialAttention",
    "FeatureAttention",
    "AttentiveLiftingConv",
    "AttentiveGroupConv",
    "CoAttentiveGroupConv",
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


def _small_conv(conv: nn.Module, x: Tensor) -> Tensor:
    """``conv(x)`` for a stride-1 'same' conv with few channels: on 2-D maps as unfold + matmul
    (the oneDNN kernels are slow for 2-8 channels and 7x7 kernels), else the conv itself."""
    if conv.spatial_dims != 2 or any(s != 1 for s in conv.stride) or any(k % 2 == 0 for k in
                                                                         conv.kernel_size):
        return conv(x)
    w = conv.expanded_weight()
    B = x.shape[0]
    xf = x if conv._lifting else x.flatten(1, 2)
    H, W = xf.shape[-2:]
    pad = [dl * (k - 1) // 2 for dl, k in zip(conv.dilation, conv.kernel_size, strict=True)]
    cols = F.unfold(xf, conv.kernel_size, dilation=conv.dilation, padding=pad)  # (B, Q K, L)
    y = torch.matmul(w.flatten(1), cols)
    if conv.bias is not None:
        y = y + conv.bias.repeat_interleave(conv.num_elements).unsqueeze(-1)
    return y.view(B, conv.out_channels, conv.num_elements, H, W)


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
        dims = tuple(range(x.dim() - self.spatial_dims, x.dim()))
        return x.mean(dim=dims) if name == "mean" else x.amax(dim=dims)

    def forward(self, x: Tensor) -> Tensor:
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
        logits = 0
        for name in self.statistics:
            s = self.statistic(x, name).flatten(1)
            logits = logits + F.linear(torch.relu(F.linear(s, w1, b1)), w2, b2)
        return torch.sigmoid(logits.view(x.shape[: 2 if self.group is None else 3]))


class GroupSpatialAttention(nn.Module):
    """Equivariant spatial attention: sigmoid of a group conv on the [mean, max] over channels.

    ``(B, C, N, *s) -> alpha (B, 1, N, *s)`` with ``GroupConv(2, 1, group, kernel_size)``.
    ``lifting=True``: ``(B, C, *s) -> (B, 1, *s)``, the mean over H of a ``LiftingConv(2, 1)``
    (a scalar field on R^d that rotates with the input). Grid options (``num_elements``,
    ``kernel_net``...) are passed to the conv.

    Example:
        >>> import torch
        >>> from groupconv.groups import CyclicGroup
        >>> GroupSpatialAttention(CyclicGroup(4), 3)(torch.randn(2, 5, 4, 6, 6)).shape
        torch.Size([2, 1, 4, 6, 6])
    """

    def __init__(self, group: Group, kernel_size: int = 7, *, lifting: bool = False,
                 **conv_kwargs: Any) -> None:
        super().__init__()
        cls = LiftingConv if lifting else GroupConv
        self.lifting = bool(lifting)
        self.conv = cls(2, 1, group, kernel_size, padding="same", **conv_kwargs)
        self.group = group
        self.spatial_dims = group.space_dim

    def statistics(self, x: Tensor) -> Tensor:
        """``[mean, max]`` over channels, ``(B, 2, ...)`` (override to experiment)."""
        return torch.cat([x.mean(dim=1, keepdim=True), x.amax(dim=1, keepdim=True)], dim=1)

    def forward(self, x: Tensor) -> Tensor:
        want = 2 + self.spatial_dims + (0 if self.lifting else 1)
        if x.dim() != want or (not self.lifting and x.shape[2] != self.conv.num_elements):
            axis = "" if self.lifting else f", N={self.conv.num_elements}"
            raise ValueError(f"x must have shape (B, C{axis}, *{self.spatial_dims} spatial dims), "
                             f"got shape {tuple(x.shape)}")
        a = _small_conv(self.conv, self.statistics(x))
        if self.lifting:
            a = a.mean(dim=2)
        return torch.sigmoid(a)


class FeatureAttention(nn.Module):
    """fA attention on a layer input: ``x -> (alpha^X * alpha^C * x, maps)`` (CBAM order).

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
        if self.channel_attention is not None:
            a = _gate(self.channel_attention(x), self.complement)
            maps["channel"] = a
            x = x * a.reshape(*a.shape, *(1,) * (x.dim() - a.dim()))
        if self.spatial_attention is not None:
            a = _gate(self.spatial_attention(x), self.complement)
            maps["spatial"] = a
            x = x * a
        return x, maps


def attention_memory_elements(batch: int, c_in: int, n_in: int, c_out: int, n: int,
                              in_size: Sequence[int], out_size: Sequence[int], kernel: Sequence[int],
                              chunk_elements: int | None = None,
                              max_statistic: bool = False) -> dict[str, int]:
    """Element counts of the full attentive G-conv: the naive tensor vs this implementation.

    ``naive``: ``B C_out N C_in N_in X' Y'`` (the reference's per-channel responses);
    ``output``: ``B C_out N X' Y'``; ``extra``: what :class:`AttentiveGroupConv` holds on top
    of a plain G-conv (see the module docstring): ``min(B C_out N C_in N_in K, chunk)``
    (per-sample kernels) ``+ 2 B C_out N C_in N_in`` (attention, statistics) ``+ B C_in N_in P``
    (padded input) ``+ B N X' Y'`` (spatial map), plus ``chunk + B C_out N C_in N_in (K + 1)``
    with ``max_statistic`` (``chunk``: ``chunk_elements``, default the output's size).

    Example:
        >>> m = attention_memory_elements(128, 96, 4, 96, 4, (32, 32), (32, 32), (3, 3))
        >>> round(m["naive"] * 4 / 2**30, 1)  # GB in float32, one CIFAR-10 layer
        72.0
    """
    xo, xi, K = math.prod(out_size), math.prod(in_size), math.prod(kernel)
    P, Q = c_out * n, c_in * n_in
    out = batch * P * xo
    chunk = out if chunk_elements is None else int(chunk_elements)
    extra = min(batch * P * Q * K, max(P * Q * K, chunk)) + 2 * batch * P * Q
    extra += batch * Q * xi + batch * n * xo
    if max_statistic:
        extra += chunk + batch * P * Q * (K + 1)
    return {"naive": batch * P * Q * xo, "output": out, "input": batch * Q * xi, "extra": extra}


class _AttentiveMixin:
    """Full and fA attentive forward on top of a ``LiftingConv``/``GroupConv`` subclass."""

    def _init_attention(self, form: str, channel_attention: bool, spatial_attention: bool,
                        reduction: int, statistics: Sequence[str] | None, spatial_kernel_size: int,
                        complement: bool, chunk_elements: int | None, kwargs: dict[str, Any]) -> None:
        if form not in ("full", "feature"):
            raise ValueError(f"form must be 'full' or 'feature', got {form!r}")
        if not (channel_attention or spatial_attention):
            raise ValueError("an attentive layer needs channel_attention or spatial_attention")
        if self._stochastic:
            raise ValueError(
                f"{type(self).__name__} needs a deterministic grid: the random sampler "
                f"{self.sampler!r} draws a new grid per call; pass num_elements= instead")
        if chunk_elements is not None:
            chunk_elements = check_positive_int(chunk_elements, "chunk_elements")
        self.form = form
        self.complement = bool(complement)
        self.chunk_elements = chunk_elements
        if statistics is None:
            statistics = ("mean",) if form == "full" else _STATS
        self.statistics = _check_statistics(statistics)
        self.reduction = check_positive_int(reduction, "reduction")
        dd = {k: kwargs[k] for k in ("device", "dtype") if k in kwargs}
        if form == "feature":
            sub = _sub_kwargs(kwargs, num_elements=None if self._lifting else self.in_num_elements, **dd)
            self.attention = FeatureAttention(
                self.in_channels, self.group, lifting=self._lifting, channel=channel_attention,
                spatial=spatial_attention, reduction=reduction, statistics=statistics,
                spatial_kernel_size=spatial_kernel_size, complement=complement, **sub)
            self.channel_mlp = None
            self.spatial_attention = None
            return
        self.attention = None
        if channel_attention:
            rel = (torch.zeros(self.num_elements, 1, dtype=torch.long) if self._lifting else
                   relative_index(self.group, self.out_grid.cpu(), self.in_grid.cpu()))
            if rel is None:
                raise ValueError(f"the full form needs h_i^-1 h_j in the input grid of {self.group.name} "
                                 "(a grid closed under the product)")
            self.register_buffer("_rel", rel.to(self.out_grid.device), persistent=False)
            hidden = max(1, self.in_channels // self.reduction)
            n_rel = 1 if self._lifting else self.in_num_elements
            fk = {"device": dd.get("device"), "dtype": dd.get("dtype")}
            self.channel_mlp = nn.ParameterDict({
                "w1": nn.Parameter(torch.empty(hidden, self.in_channels, n_rel, **fk)),
                "b1": nn.Parameter(torch.zeros(hidden, **fk)),
                "w2": nn.Parameter(torch.empty(self.in_channels, hidden, n_rel, **fk)),
                "b2": nn.Parameter(torch.zeros(self.in_channels, **fk)),
            })
            for name, fan in (("w1", self.in_channels * n_rel), ("w2", hidden)):
                nn.init.uniform_(self.channel_mlp[name], -1 / math.sqrt(fan), 1 / math.sqrt(fan))
        else:
            self.channel_mlp = None
        self.spatial_attention = (
            GroupSpatialAttention(self.group, spatial_kernel_size,
                                  **_sub_kwargs(kwargs, num_elements=self.num_elements, **dd))
            if spatial_attention else None
        )

    # -- full form pieces ---------------------------------------------------------------------
    def _pads(self, size: Sequence[int]) -> list[tuple[int, int]]:
        if self.padding == "valid":
            return [(0, 0)] * self.spatial_dims
        if self.padding == "same":
            tot = [dl * (k - 1) for dl, k in zip(self.dilation, self.kernel_size, strict=True)]
            return [(t // 2, t - t // 2) for t in tot]
        return [(p, p) for p in self.padding]

    def response_statistics(self, xf: Tensor, weight: Tensor) -> dict[str, Tensor]:
        """Spatial mean/max of the per-input-channel responses ``r``, each ``(B, P, Q)``.

        ``xf``: the input with the group axis folded ``(B, Q, *s)``; ``weight``: the expanded
        kernel ``(P, Q, *k)``. ``r`` itself is never held (see the module docstring).
        """
        return self._response_statistics(self._pad(xf), weight)

    def _pad(self, xf: Tensor) -> Tensor:
        return F.pad(xf, [p for pr in reversed(self._pads(xf.shape[2:])) for p in pr])

    def _response_statistics(self, fp: Tensor, weight: Tensor) -> dict[str, Tensor]:
        d = self.spatial_dims
        ins = fp.shape[2:]
        outs = self._out_size(ins)
        B, Q = fp.shape[:2]
        P = weight.shape[0]
        W = weight.flatten(2)  # (P, Q, K)
        offsets = list(itertools.product(*[range(k) for k in self.kernel_size]))
        out: dict[str, Tensor] = {}
        if "mean" in self.statistics:
            ms = []
            for u in offsets:
                sl = tuple(slice(ui * dl, ui * dl + s * (o - 1) + 1, s) for ui, dl, s, o in
                           zip(u, self.dilation, self.stride, outs, strict=True))
                ms.append(fp[(Ellipsis, *sl)].mean(dim=tuple(range(2, 2 + d))))
            m = torch.stack(ms, dim=-1)  # (B, Q, K)
            out["mean"] = torch.einsum("bqk,pqk->bpq", m, W)
        if "max" in self.statistics:
            L = math.prod(outs)
            budget = self.chunk_elements or B * P * L
            pc = max(1, min(P, budget // max(1, B * Q * L)))
            arg = torch.empty(B, Q, P, dtype=torch.long, device=fp.device)
            with torch.no_grad():
                wd = weight.detach()
                for p0 in range(0, P, pc):
                    p1 = min(P, p0 + pc)
                    wc = wd[p0:p1].transpose(0, 1).reshape(Q * (p1 - p0), 1, *self.kernel_size)
                    r = _CONV[d](fp.detach(), wc, None, self.stride, 0, self.dilation, Q)
                    arg[:, :, p0:p1] = r.view(B, Q, p1 - p0, L).argmax(dim=-1)
            # flat index in fp of the window start at the arg-max output position, plus offsets
            strides_fp = [math.prod(ins[i + 1:]) for i in range(d)]
            base = torch.zeros_like(arg)
            rem = arg
            for i in range(d):
                step = math.prod(outs[i + 1:])
                base = base + torch.div(rem, step, rounding_mode="floor") * (self.stride[i] * strides_fp[i])
                rem = torch.remainder(rem, step)
            off = [sum(ui * dl * st for ui, dl, st in zip(u, self.dilation, strides_fp, strict=True))
                   for u in offsets]
            off = torch.tensor(off, device=fp.device, dtype=torch.long)
            idx = (base.unsqueeze(-1) + off).reshape(B, Q, P * len(offsets))
            vals = torch.gather(fp.flatten(2), 2, idx).view(B, Q, P, len(offsets))
            out["max"] = torch.einsum("bqpk,pqk->bpq", vals, W)
        return out

    def _out_size(self, ins: Sequence[int]) -> list[int]:
        return [(n - dl * (k - 1) - 1) // s + 1 for n, dl, k, s in
                zip(ins, self.dilation, self.kernel_size, self.stride, strict=True)]

    def _modulated_conv(self, a: Tensor, weight: Tensor, fp: Tensor) -> Tensor:
        """``sum_q a[b, p, q] (fp[b, q] * weight[p, q])``: one grouped conv, per-sample kernels."""
        B, P, Q = a.shape[0], weight.shape[0], weight.shape[1]
        d = self.spatial_dims
        wb = (a.reshape(B, P, Q, *(1,) * d) * weight).reshape(B * P, Q, *self.kernel_size)
        y = _CONV[d](fp.reshape(1, B * Q, *fp.shape[2:]), wb, None, self.stride, 0, self.dilation, B)
        return y.view(B, P, *y.shape[2:])

    def _channel_attention_full(self, stats: dict[str, Tensor]) -> Tensor:
        """The rolled MLP: weights indexed by ``h_i^-1 h_j`` for every output element ``i``."""
        mlp, rel = self.channel_mlp, self._rel
        n, n_in = rel.shape
        w1 = mlp["w1"][:, :, rel]  # (D, C, N, N_in)
        w2 = mlp["w2"][:, :, rel]  # (C, D, N, N_in)
        logits = 0
        for s in stats.values():
            B = s.shape[0]
            s = s.view(B, self.out_channels, n, self.in_channels, n_in)
            h = torch.relu(torch.einsum("boicj,dcij->boid", s, w1) + mlp["b1"])
            logits = logits + torch.einsum("boid,cdij->boicj", h, w2) + mlp["b2"].view(-1, 1)
        return torch.sigmoid(logits)

    def _attentive_forward(self, x: Tensor) -> tuple[Tensor, dict[str, Tensor]]:
        x = self._check_input(x)
        if self.form == "feature":
            xa, maps = self.attention(x)
            y = super().forward_with_grid(xa)[0]
            return y, maps
        weight, _ = self._expanded(None, None)
        B, d = x.shape[0], self.spatial_dims
        xf = x if self._lifting else x.flatten(1, 2)
        maps: dict[str, Tensor] = {}
        bias = None if self.bias is None else self.bias.repeat_interleave(self.num_elements)
        if self.channel_mlp is not None:
            fp = self._pad(xf)
            a = _gate(self._channel_attention_full(self._response_statistics(fp, weight)), self.complement)
            maps["channel"] = a if not self._lifting else a.squeeze(-1)
            P, Q = weight.shape[:2]
            L = math.prod(self._out_size(fp.shape[2:]))
            budget = self.chunk_elements or B * P * L
            bc = max(1, budget // (P * Q * math.prod(self.kernel_size)))
            if bc >= B or not torch.is_grad_enabled():
                y = self._modulated_conv(a, weight, fp)
            else:  # per-sample kernels of bc samples at a time, recomputed in backward
                y = torch.cat([checkpoint(self._modulated_conv, a[s:s + bc], weight, fp[s:s + bc],
                                          use_reentrant=False) for s in range(0, B, bc)])
            if bias is not None:
                y = y + bias.view(1, -1, *(1,) * d)
        else:
            y = _CONV[d](xf, weight, bias, self.stride, self.padding, self.dilation)
        y = y.view(B, self.out_channels, self.num_elements, *y.shape[2:])
        if self.spatial_attention is not None:
            a = _gate(self.spatial_attention(y), self.complement)
            maps["spatial"] = a
            y = y * a
        return y, maps

    def forward_with_grid(self, x: Tensor, in_grid: Tensor | None = None,
                          generator: torch.Generator | None = None) -> tuple[Tensor, Tensor]:
        if in_grid is not None:
            raise ValueError(f"{type(self).__name__} uses its deterministic grids: in_grid must be None")
        return self._attentive_forward(x)[0], self.out_grid

    def forward(self, x: Tensor, in_grid: Tensor | None = None, generator: torch.Generator | None = None,
                *, return_attention: bool = False) -> Tensor | tuple[Tensor, dict[str, Tensor]]:
        """``y``, or ``(y, maps)`` with ``return_attention=True`` (maps documented per form)."""
        if in_grid is not None:
            raise ValueError(f"{type(self).__name__} uses its deterministic grids: in_grid must be None")
        y, maps = self._attentive_forward(x)
        return (y, maps) if return_attention else y


_ATT_DOC = """
    Attention args (keyword only): ``form`` (``"full"`` or ``"feature"``, see the module
    docstring), ``channel_attention`` / ``spatial_attention`` (bool), ``reduction`` (MLP ratio,
    default 2), ``statistics`` (spatial statistics of the channel MLP: default ``("mean",)`` in
    the full form, ``("mean", "max")`` in the feature form), ``spatial_kernel_size`` (default 7),
    ``complement`` (apply ``1 - alpha``), ``chunk_elements`` (full form: the largest chunk of
    responses held while finding the max statistic; default the output's size). Other
    arguments as the base convolution; the attention's own convs share its grid and kernel
    options. ``forward(x, return_attention=True)`` returns ``(y, maps)``: full form
    ``maps["channel"] (B, C_out, N, C_in[, N_in])`` and ``maps["spatial"] (B, 1, N, *s')``;
    feature form ``maps["channel"] (B, C_in[, N_in])``, ``maps["spatial"] (B, 1[, N_in], *s)``.
"""


def _attention_kwargs(kwargs: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    names = ("form", "channel_attention", "spatial_attention", "reduction", "statistics",
             "spatial_kernel_size", "complement", "chunk_elements")
    defaults = {"form": "full", "channel_attention": True, "spatial_attention": True, "reduction": 2,
                "statistics": None, "spatial_kernel_size": 7, "complement": False,
                "chunk_elements": None}
    att = {k: kwargs.pop(k, defaults[k]) for k in names}
    return att, kwargs


class AttentiveLiftingConv(_AttentiveMixin, LiftingConv):
    __doc__ = """Attentive lifting convolution ``(B, C_in, *s) -> (B, C_out, N, *s)``.
    """ + _ATT_DOC + """
    Example:
        >>> import torch
        >>> from groupconv.groups import CyclicGroup
        >>> layer = AttentiveLiftingConv(1, 3, CyclicGroup(4), 3, padding=1, spatial_kernel_size=3)
        >>> x = torch.randn(2, 1, 6, 6)
        >>> y = torch.roll(torch.rot90(layer(x), 1, dims=(-2, -1)), 1, dims=2)
        >>> torch.allclose(layer(torch.rot90(x, 1, dims=(-2, -1))), y, atol=1e-5)
        True
    """

    def __init__(self, in_channels: int, out_channels: int, group: Group,
                 kernel_size: int | Sequence[int], **kwargs: Any) -> None:
        att, kwargs = _attention_kwargs(dict(kwargs))
        super().__init__(in_channels, out_channels, group, kernel_size, **kwargs)
        self._init_attention(**att, kwargs=kwargs)


class AttentiveGroupConv(_AttentiveMixin, GroupConv):
    __doc__ = """Attentive group convolution ``(B, C_in, N_in, *s) -> (B, C_out, N, *s)``.
    """ + _ATT_DOC + """
    Example:
        >>> import torch
        >>> from groupconv.groups import DihedralGroup
        >>> layer = AttentiveGroupConv(2, 3, DihedralGroup(4), 3, padding=1, form="feature")
        >>> layer(torch.randn(1, 2, 8, 5, 5)).shape
        torch.Size([1, 3, 8, 5, 5])
    """

    def __init__(self, in_channels: int, out_channels: int, group: Group,
                 kernel_size: int | Sequence[int], **kwargs: Any) -> None:
        att, kwargs = _attention_kwargs(dict(kwargs))
        super().__init__(in_channels, out_channels, group, kernel_size, **kwargs)
        self._init_attention(**att, kwargs=kwargs)


class CoAttentiveGroupConv(GroupConv):
    """Co-attentive group convolution: attention over H on the input, then a G-conv.

    ``a = normalize_H(GroupConv_1x1(C_in -> heads)(f))`` of shape ``(B, heads, N_in, *s)``
    (``normalization="softmax"`` over the group axis, the paper; or ``"sigmoid"``, the
    reference's comparison code), ``f' = N_in * a * f`` (softmax; ``a * f`` for sigmoid) with
    head ``k`` acting on channels ``[k C_in/heads, (k+1) C_in/heads)``, then the G-conv.
    ``heads`` must divide ``in_channels``. ``forward(x, return_attention=True)`` returns
    ``(y, {"group": a})``.

    Example:
        >>> import torch
        >>> from groupconv.groups import CyclicGroup
        >>> layer = CoAttentiveGroupConv(4, 2, CyclicGroup(4), 3, padding=1, heads=2)
        >>> y, maps = layer(torch.randn(1, 4, 4, 5, 5), return_attention=True)
        >>> maps["group"].shape, torch.allclose(maps["group"].sum(2), torch.ones(1, 2, 5, 5))
        (torch.Size([1, 2, 4, 5, 5]), True)
    """

    def __init__(self, in_channels: int, out_channels: int, group: Group,
                 kernel_size: int | Sequence[int], *, heads: int = 1, normalization: str = "softmax",
                 **kwargs: Any) -> None:
        super().__init__(in_channels, out_channels, group, kernel_size, **kwargs)
        self.heads = check_positive_int(heads, "heads")
        if self.in_channels % self.heads:
            raise ValueError(f"heads must divide in_channels={self.in_channels}, got heads={self.heads}")
        if normalization not in ("softmax", "sigmoid"):
            raise ValueError(f"normalization must be 'softmax' or 'sigmoid', got {normalization!r}")
        if self._stochastic:
            raise ValueError("CoAttentiveGroupConv needs a deterministic grid (num_elements=), "
                             f"got the random sampler {self.sampler!r}")
        self.normalization = normalization
        dd = {k: kwargs[k] for k in ("device", "dtype") if k in kwargs}
        self.attention_conv = GroupConv(self.in_channels, self.heads, group, 1,
                                        num_elements=self.in_num_elements, **dd)

    def _attend(self, x: Tensor) -> tuple[Tensor, Tensor]:
        logits = self.attention_conv(x)
        if self.normalization == "softmax":
            a = torch.softmax(logits, dim=2)
            scale = float(self.in_num_elements)
        else:
            a, scale = torch.sigmoid(logits), 1.0
        rep = a.repeat_interleave(self.in_channels // self.heads, dim=1)
        return x * rep * scale, a

    def forward_with_grid(self, x: Tensor, in_grid: Tensor | None = None,
                          generator: torch.Generator | None = None) -> tuple[Tensor, Tensor]:
        if in_grid is not None:
            raise ValueError("CoAttentiveGroupConv uses its deterministic grids: in_grid must be None")
        xa, _ = self._attend(self._check_input(x))
        return super().forward_with_grid(xa)

    def forward(self, x: Tensor, in_grid: Tensor | None = None, generator: torch.Generator | None = None,
                *, return_attention: bool = False) -> Tensor | tuple[Tensor, dict[str, Tensor]]:
        if in_grid is not None:
            raise ValueError("CoAttentiveGroupConv uses its deterministic grids: in_grid must be None")
        xa, a = self._attend(self._check_input(x))
        y = super().forward_with_grid(xa)[0]
        return (y, {"group": a}) if return_attention else y

    def extra_repr(self) -> str:
        return super().extra_repr() + f", heads={self.heads}, normalization={self.normalization!r}"
