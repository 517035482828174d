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

  **Memory and time.** The reference keeps ``r`` whole: ``B C_out N C_in N_in X Y`` numbers
  (about 72 GB on CIFAR-10). Here nothing of that size exists. Because ``alpha^C`` does not
  depend on position, ``sum_c,j alpha^C r = conv(f, alpha^C * psi)``: one grouped convolution
  (``groups=B``) with a per-sample kernel (``B C_out N C_in N_in K`` numbers, ``K =
  prod(kernel_size)``), the same multiply-adds as the plain G-conv. The kernels are built for
  all samples at once when they fit the memory budget ``chunk_elements`` (default twice the
  output's size ``B C_out N X' Y'``), else for as many samples at a time as fit, recomputed in
  backward. The mean statistic is exact in closed form, ``mean_x r = sum_u psi[u] m[u]`` with
  ``m[u]`` the mean of ``f`` over the output window shifted by ``u`` (``B C_in N_in K``
  numbers, two small matmuls with 0/1 window matrices on the unpadded input); it is the
  default statistic. CBAM's max statistic (``statistics=("mean", "max")``, opt-in) has no
  closed form: every response must be evaluated once (``C_in N_in`` times the memory traffic
  of the plain conv, as depthwise convs), so it is computed without gradient in chunks of
  output channels (at most ``chunk_elements`` numbers at a time) to find the arg-max
  position, then re-evaluated differentiably by gathering the ``K`` input values there
  (``B C_out N C_in N_in K`` numbers). Extra peak memory over a plain G-conv, in elements:
  :func:`attention_memory_elements`.

* ``"reference"``: the reference implementation's operator (one attention MLP per output
  channel over the input channels at each input element, a spatial map per ``(o, i, j)``),
  with bounded memory: :mod:`groupconv.nn.attention.attentive_reference` (its docstring compares the
  two full forms). ``"full"`` above is *not* that operator: it shares one MLP across output
  channels and applies one spatial map to the summed output.

* ``"feature"`` (fA): attention on the input, then an ordinary G-conv:
  ``f' = alpha^X_in(g~) * alpha^C_in(c, h~) * f``; ``alpha^C_in`` is CBAM's MLP on the spatial
  [mean, max] of ``f`` as two 1x1 group convs, ``alpha^X_in`` a sigmoid of a group conv on the
  [mean, max] over channels. For the lifting layer the input lives on R^d: the channel MLP is
  a plain MLP (an invariant statistic) and the spatial map is the max over H of a lifting
  conv (an invariant scalar field; the reference's pooling, ``pool="mean"`` in
  :class:`GroupSpatialAttention` for the mean). ``complement=True`` applies the complement of
  the combined map, ``x (1 - alpha^C alpha^X(alpha^C x))``, as the reference.

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

from ..._validation import check_positive_int
from ...groups.base import Group
from ..group.gconv import GroupConv, LiftingConv
from ..group.gconv_kernels import relative_index
from .attentive_blocks import (
    _CONV,
    _STATS,
    FeatureAttention,
    GroupChannelAttention,
    GroupSpatialAttention,
    _check_statistics,
    _gate,
    _sub_kwargs,
    attention_memory_elements,
)

__all__ = [
    "GroupChannelAttention",
    "GroupSpatialAttention",
    "FeatureAttention",
    "AttentiveLiftingConv",
    "AttentiveGroupConv",
    "CoAttentiveGroupConv",
    "attention_memory_elements",
]


class _AttentiveMixin:
    """Full and fA attentive forward on top of a ``LiftingConv``/``GroupConv`` subclass."""

    _per_batch_grids = False  # attention needs the deterministic grid

    def _init_attention(self, form: str, channel_attention: bool, spatial_attention: bool,
                        reduction: int, statistics: Sequence[str] | None, spatial_kernel_size: int,
                        complement: bool, chunk_elements: int | None, kwargs: dict[str, Any]) -> None:
        if form not in ("full", "feature", "reference"):
            raise ValueError(f"form must be 'full', 'feature' or 'reference', got {form!r}")
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
        self.reference = None
        if channel_attention or form == "reference":
            rel = (torch.zeros(self.num_elements, 1, dtype=torch.long) if self._lifting else
                   relative_index(self.group, self.out_grid.cpu(), self.in_grid.cpu()))
            if rel is None:
                raise ValueError(f"the full form needs h_i^-1 h_j in the input grid of {self.group.name} "
                                 "(a grid closed under the product)")
            self.register_buffer("_rel", rel.to(self.out_grid.device), persistent=False)
        if form == "reference":
            from .attentive_reference import ReferenceFullAttention

            self.reference = ReferenceFullAttention(
                self, channel=channel_attention, spatial=spatial_attention, reduction=reduction,
                spatial_kernel_size=spatial_kernel_size, rel=self._rel,
                sub_kwargs=_sub_kwargs(kwargs, **dd))
            self.channel_mlp = None
            self.spatial_attention = None
            return
        if channel_attention:
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
    def _pads(self) -> list[tuple[int, int]]:
        if self.padding == "valid":
            return [(0, 0)] * self.spatial_dims
        if self.padding == "same":
            tot = [dl * (k - 1) for dl, k in zip(self.dilation, self.kernel_size, strict=True)]
            return [(t // 2, t - t // 2) for t in tot]
        return [(p, p) for p in self.padding]

    def _out_size(self, ins: Sequence[int]) -> list[int]:
        """Output size on an (unpadded) input of spatial size ``ins``."""
        return [(n + lo + hi - dl * (k - 1) - 1) // s + 1 for n, (lo, hi), dl, k, s in
                zip(ins, self._pads(), self.dilation, self.kernel_size, self.stride, strict=True)]

    def _budget(self, batch: int, out_size: Sequence[int]) -> int:
        """The memory budget of the full form's temporaries, in elements."""
        if self.chunk_elements is not None:
            return self.chunk_elements
        return 2 * batch * self.out_channels * self.num_elements * math.prod(out_size)

    def _window_matrices(self, ins: Sequence[int], like: Tensor) -> list[Tensor]:
        """Per spatial dim, ``A[r, u] = 1`` iff input index ``r`` lies in the output window
        shifted by kernel offset ``u`` (``(n, k)``, zero padding dropped)."""
        out = []
        for n, o, (lo, _), dl, k, s in zip(ins, self._out_size(ins), self._pads(), self.dilation,
                                           self.kernel_size, self.stride, strict=True):
            r = torch.arange(n, device=like.device).view(n, 1, 1)
            pos = (torch.arange(k, device=like.device) * dl - lo).view(1, k, 1)
            pos = pos + s * torch.arange(o, device=like.device).view(1, 1, o)
            out.append((r == pos).any(dim=-1).to(like.dtype))
        return out

    def response_statistics(self, xf: Tensor, weight: Tensor) -> dict[str, Tensor]:
        """Spatial mean/max of the per-input-channel responses ``r``, each ``(B, P, Q)``.

        ``xf``: the input with the group axis folded ``(B, Q, *s)``; ``weight``: the expanded
        kernel ``(P, Q, *k)``. ``r`` itself is never held (see the module docstring).
        """
        ins = xf.shape[2:]
        W = weight.flatten(2)  # (P, Q, K)
        out: dict[str, Tensor] = {}
        if "mean" in self.statistics:  # exact: window sums of f through 0/1 matrices, then psi
            m = xf
            for A in self._window_matrices(ins, xf):  # contracts the leading spatial dim each time
                m = torch.matmul(torch.movedim(m, 2, -1), A)
            m = m.flatten(2) / math.prod(self._out_size(ins))  # (B, Q, K)
            out["mean"] = torch.einsum("bqk,pqk->bpq", m, W)
        if "max" in self.statistics:
            fp = F.pad(xf, [p for pr in reversed(self._pads()) for p in pr])
            out["max"] = self._max_statistic(fp, weight, W, self._out_size(ins))
        return out

    def _max_statistic(self, fp: Tensor, weight: Tensor, W: Tensor, outs: Sequence[int]) -> Tensor:
        """CBAM's max statistic from the padded input ``fp``: arg-max found without gradient in
        chunks of output channels, then the ``K`` input values there gathered differentiably."""
        d = self.spatial_dims
        ins = fp.shape[2:]
        B, Q = fp.shape[:2]
        P = weight.shape[0]
        L = math.prod(outs)
        pc = max(1, min(P, self._budget(B, outs) // max(1, B * Q * L)))
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
        offsets = itertools.product(*[range(k) for k in self.kernel_size])
        off = [sum(ui * dl * st for ui, dl, st in zip(u, self.dilation, strides_fp, strict=True))
               for u in offsets]
        off = torch.tensor(off, device=fp.device, dtype=torch.long)
        idx = (base.unsqueeze(-1) + off).reshape(B, Q, P * len(off))
        vals = torch.gather(fp.flatten(2), 2, idx).view(B, Q, P, len(off))
        return torch.einsum("bqpk,pqk->bpq", vals, W)

    def _modulated_conv(self, a: Tensor, weight: Tensor, xf: Tensor) -> Tensor:
        """``sum_q a[b, p, q] (xf[b, q] * weight[p, q])``: one grouped conv, per-sample kernels."""
        B, P, Q = a.shape[0], weight.shape[0], weight.shape[1]
        d = self.spatial_dims
        wb = (a.reshape(B, P, Q, *(1,) * d) * weight).reshape(B * P, Q, *self.kernel_size)
        y = _CONV[d](xf.reshape(1, B * Q, *xf.shape[2:]), wb, None, self.stride, self.padding,
                     self.dilation, B)
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

    def _attentive_forward(self, x: Tensor, keep_maps: bool = True) -> tuple[Tensor, dict[str, Tensor]]:
        x = self._check_input(x)
        if self.form == "feature":
            xa, maps = self.attention(x)
            y = super()._conv_forward(xa, None, None)[0]
            return y, maps
        weight, _ = self._expanded(None, None)
        B, d = x.shape[0], self.spatial_dims
        xf = x if self._lifting else x.flatten(1, 2)
        maps: dict[str, Tensor] = {}
        bias = None if self.bias is None else self.bias.repeat_interleave(self.num_elements)
        if self.form == "reference":
            return self.reference(self, xf, weight, bias, self.complement, keep_maps)
        if self.channel_mlp is not None:
            a = _gate(self._channel_attention_full(self.response_statistics(xf, weight)), self.complement)
            maps["channel"] = a if not self._lifting else a.squeeze(-1)
            P, Q = weight.shape[:2]
            budget = self._budget(B, self._out_size(xf.shape[2:]))
            bc = max(1, budget // (P * Q * math.prod(self.kernel_size)))
            a = a.reshape(B, P, Q)
            if bc >= B:  # every per-sample kernel at once: no recomputation
                y = self._modulated_conv(a, weight, xf)
            elif not torch.is_grad_enabled():
                y = torch.cat([self._modulated_conv(a[s:s + bc], weight, xf[s:s + bc])
                               for s in range(0, B, bc)])
            else:  # kernels of bc samples at a time, recomputed in backward
                y = torch.cat([checkpoint(self._modulated_conv, a[s:s + bc], weight, xf[s:s + bc],
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

    def _conv_forward(self, x: Tensor, in_grid: Tensor | None,
                      generator: torch.Generator | None) -> tuple[Tensor, Tensor]:
        if in_grid is not None:
            raise ValueError(f"{type(self).__name__} uses its deterministic grids: in_grid must be None")
        return self._attentive_forward(x, keep_maps=False)[0], self.out_grid

    def forward(self, x: Tensor, in_grid: Tensor | None = None, generator: torch.Generator | None = None,
                *, return_attention: bool = False) -> Tensor | tuple[Tensor, dict[str, Tensor]]:
        """``y``, or ``(y, maps)`` with ``return_attention=True`` (maps documented per form)."""
        if in_grid is not None:
            raise ValueError(f"{type(self).__name__} uses its deterministic grids: in_grid must be None")
        y, maps = self._attentive_forward(x, keep_maps=return_attention)
        return (y, maps) if return_attention else y


_ATT_DOC = """
    Attention args (keyword only): ``form`` (``"full"``, ``"reference"`` or ``"feature"``, see the module
    docstring), ``channel_attention`` / ``spatial_attention`` (bool), ``reduction`` (MLP ratio,
    default 2), ``statistics`` (spatial statistics of the channel MLP: default ``("mean",)`` in
    the full form, ``("mean", "max")`` in the feature form), ``spatial_kernel_size`` (default 7),
    ``complement`` (apply ``1 - alpha``), ``chunk_elements`` (full form: memory budget in elements
    for the per-sample kernels, recomputed in backward in batch chunks only above it, and for
    the response chunks of the max statistic; default twice the output's size). Other
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

    _per_batch_grids = False  # attention needs the deterministic grid

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

    def _conv_forward(self, x: Tensor, in_grid: Tensor | None,
                      generator: torch.Generator | None) -> tuple[Tensor, Tensor]:
        if in_grid is not None:
            raise ValueError("CoAttentiveGroupConv uses its deterministic grids: in_grid must be None")
        xa, _ = self._attend(self._check_input(x))
        return super()._conv_forward(xa, None, None)

    def forward(self, x: Tensor, in_grid: Tensor | None = None, generator: torch.Generator | None = None,
                *, return_attention: bool = False) -> Tensor | tuple[Tensor, dict[str, Tensor]]:
        if in_grid is not None:
            raise ValueError("CoAttentiveGroupConv uses its deterministic grids: in_grid must be None")
        xa, a = self._attend(self._check_input(x))
        y = super()._conv_forward(xa, None, None)[0]
        return (y, {"group": a}) if return_attention else y

    def extra_repr(self) -> str:
        return super().extra_repr() + f", heads={self.heads}, normalization={self.normalization!r}"
