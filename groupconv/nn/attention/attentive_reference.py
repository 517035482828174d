"""The reference's full attentive group convolution (Romero et al., ICML 2020), bounded memory.

``form="reference"`` of :class:`~groupconv.nn.AttentiveLiftingConv` /
:class:`~groupconv.nn.AttentiveGroupConv`. It is a *different operator* from ``form="full"``:

==========================  =========================================  ==============================
                            ``form="full"`` (ours)                     ``form="reference"``
==========================  =========================================  ==============================
channel attention           one MLP shared by all output channels,     one MLP **per output channel**
                            mixing over all input channels *and*       ``o``, mixing over the input
                            input elements (a 1x1 group conv), with    channels ``c`` at each input
                            biases; statistic: spatial mean            element ``j`` separately, its
                                                                       weights indexed by
                                                                       ``h_i^-1 h_j``; no biases;
                                                                       statistics: mean and max
spatial attention           one map ``(B, 1, N, x)`` on the summed     one map per ``(o, i, j)``
                            output (CBAM order)                        on the per-element responses
parameters, 10 -> 10 C4     415                                        4,000 (+ the spatial kernels)
==========================  =========================================  ==============================

With the per-(output, input)-channel responses
``r[b, o, i, c, j, x] = sum_u f[b, c, j, x + u] psi_oc(h_i^-1 u, h_i^-1 h_j)`` (the terms of the
group convolution before the sum over ``c, j``; the Haar factor ``1 / N_in`` included):

* ``alpha^C[b, o, i, c, j] = sigmoid(sum_s W2_o[rel] relu(W1_o[rel] s_b,o,i,:,j))`` with ``s``
  the spatial mean and max of ``r`` and ``rel = h_i^-1 h_j`` (the reference's rolled weights);
* ``alpha^X[b, o, i, j, x] = sigmoid(sum_s conv(S_s[b, o, i, j], k^X_{o s}(h_i^-1 ., h_i^-1 h_j)))``
  with ``S`` the mean and max over ``c`` of ``alpha^C r``: the kernel of a ``GroupConv(2, C_out)``
  (``LiftingConv`` for the lifting layer) *without* its sum over ``j``;
* ``y[b, o, i, x] = sum_{c, j} a r`` with ``a = alpha^C alpha^X``, or ``1 - alpha^C alpha^X``
  with ``complement=True`` (the reference's ``out - out * alpha``).

Both maps are invariant under the joint action (spatial statistics, weights indexed by
``h_i^-1 h_j``, group-conv kernels), so the layer is exactly equivariant on closed grids.

**Memory.** ``r`` has ``B C_out N C_in N_in X'`` elements (about 72 GB for one CIFAR-10 layer,
which is why the reference offers fA). Here it is built for a chunk of (batch, output channel)
pairs at a time, at most ``chunk_elements`` elements (default twice the output's size; at least
one sample and one output channel), and recomputed in backward (activation checkpointing), so
peak extra memory is a few chunks, at ``C_in N_in`` times the plain G-conv's multiply-adds.
"""

from __future__ import annotations

import math
from typing import Any

import torch
from torch import Tensor, nn
from torch.utils.checkpoint import checkpoint

from ..._validation import check_positive_int
from ..group.gconv import GroupConv, LiftingConv
from .attentive_blocks import _CONV

# ReferenceFullAttention is built by the attentive layers (``layer.reference``), not on its own
__all__ = ["reference_memory_elements"]


class ReferenceFullAttention(nn.Module):
    """Parameters and forward of ``form="reference"`` for one attentive conv (module docstring).

    Built by the attentive layers; ``forward(layer, xf, weight, bias)`` takes the layer's flat
    input ``(B, C_in N_in, *s)`` and expanded weight ``(C_out N, C_in N_in, *k)``.

    Example:
        >>> import torch
        >>> from groupconv.groups import CyclicGroup
        >>> from groupconv.nn import AttentiveGroupConv
        >>> layer = AttentiveGroupConv(10, 10, CyclicGroup(4), 3, padding=1, form="reference",
        ...                            spatial_kernel_size=3)
        >>> layer.reference.channel_parameters()
        4000
        >>> layer(torch.randn(2, 10, 4, 6, 6)).shape
        torch.Size([2, 10, 4, 6, 6])
    """

    def __init__(self, layer: nn.Module, *, channel: bool, spatial: bool, reduction: int,
                 spatial_kernel_size: int, rel: Tensor, sub_kwargs: dict[str, Any]) -> None:
        super().__init__()
        O, C = layer.out_channels, layer.in_channels
        self.lifting = bool(layer._lifting)
        self.n_in = 1 if self.lifting else layer.in_num_elements
        self.register_buffer("rel", rel, persistent=False)  # (N, N_in) into the relative table
        n_rel = 1 if self.lifting else layer.in_num_elements
        fk = {k: sub_kwargs[k] for k in ("device", "dtype") if k in sub_kwargs}
        hidden = max(1, C // check_positive_int(reduction, "reduction"))
        if channel:
            # U(+-1/sqrt(fan_in)) with the fan-in of each sum (over c, then over the hidden units)
            self.w1 = nn.Parameter(torch.empty(O, hidden, C, n_rel, **fk).uniform_(-1, 1) / math.sqrt(C))
            self.w2 = nn.Parameter(torch.empty(O, C, hidden, n_rel, **fk).uniform_(-1, 1) / math.sqrt(hidden))
        else:
            self.register_parameter("w1", None)
            self.register_parameter("w2", None)
        if spatial:
            k = check_positive_int(spatial_kernel_size, "spatial_kernel_size")
            if k % 2 == 0:
                raise ValueError(f"spatial_kernel_size must be odd, got {k}")
            kw = {kk: v for kk, v in sub_kwargs.items() if kk != "num_elements"}
            if self.lifting:
                self.spatial_conv: nn.Module | None = LiftingConv(
                    2, O, layer.group, k, num_elements=layer.num_elements, bias=False, **kw)
            else:
                self.spatial_conv = GroupConv(2, O, layer.group, k, num_elements=layer.num_elements,
                                              in_num_elements=layer.in_num_elements, bias=False, **kw)
            self.spatial_padding = k // 2
        else:
            self.spatial_conv = None

    def channel_parameters(self) -> int:
        """Number of parameters of the per-output-channel attention MLPs."""
        return sum(p.numel() for p in (self.w1, self.w2) if p is not None)

    # ------------------------------------------------------------------------------------
    def _chunk(self, layer: nn.Module, xf: Tensor, w: Tensor, wx: Tensor | None, o0: int, o1: int,
               complement: bool, keep: bool) -> tuple[Tensor, Tensor, Tensor]:
        """Output ``(b, oc, N, *x')`` of output channels ``o0:o1`` (and their maps if ``keep``)."""
        d = layer.spatial_dims
        B, Q = xf.shape[:2]
        N, n_in, oc = layer.num_elements, self.n_in, o1 - o0
        C = Q // n_in
        wc = w[o0 * N:o1 * N]  # (oc N, Q, *k)
        # every (p, q) response, unsummed: depthwise over q with oc N filters per input channel
        r = _CONV[d](xf, wc.transpose(0, 1).reshape(Q * oc * N, 1, *wc.shape[2:]), None,
                     layer.stride, layer.padding, layer.dilation, Q)
        xs = r.shape[2:]
        r = r.view(B, C, n_in, oc, N, *xs).permute(0, 3, 4, 1, 2, *range(5, 5 + d))  # (B,oc,N,C,Nin,x)
        empty = r.new_zeros(0)
        a_c, a_x = empty, empty
        att = r
        if self.w1 is not None:
            w1 = self.w1[o0:o1][..., self.rel]  # (oc, D, C, N, N_in)
            w2 = self.w2[o0:o1][..., self.rel]  # (oc, C, D, N, N_in)
            flat = r.flatten(5)
            logits = 0
            for s in (flat.mean(-1), flat.amax(-1)):  # (B, oc, N, C, N_in)
                h = torch.relu(torch.einsum("boicj,odcij->boidj", s, w1))
                logits = logits + torch.einsum("boidj,ocdij->boicj", h, w2)
            a_c = torch.sigmoid(logits)
            att = r * a_c.view(*a_c.shape, *(1,) * d)
        if wx is not None:
            stats = torch.stack([att.mean(3), att.amax(3)], dim=4)  # (B, oc, N, N_in, 2, x)
            kx = wx[o0 * N:o1 * N].view(oc, N, 2, n_in, *wx.shape[2:]).transpose(2, 3)
            g = oc * N * n_in
            logit = _CONV[d](stats.reshape(B, g * 2, *xs), kx.reshape(g, 2, *wx.shape[2:]), None,
                             1, self.spatial_padding, 1, g)
            a_x = torch.sigmoid(logit.view(B, oc, N, n_in, *xs))
            att = att * a_x.unsqueeze(3)
        out = (r - att) if complement else att
        y = out.sum(dim=(3, 4))
        return y, (a_c if keep else empty), (a_x if keep else empty)

    def forward(self, layer: nn.Module, xf: Tensor, weight: Tensor, bias: Tensor | None,
                complement: bool, keep_maps: bool = False) -> tuple[Tensor, dict[str, Tensor]]:
        """``y (B, C_out, N, *x')`` and, with ``keep_maps``, ``channel (B, C_out, N, C_in, N_in)``
        and ``spatial (B, C_out, N, N_in, *x')``."""
        B, Q = xf.shape[:2]
        O, N = layer.out_channels, layer.num_elements
        out_size = layer._out_size(xf.shape[2:])
        budget = layer._budget(B, out_size)
        unit = N * Q * math.prod(out_size)  # responses of one sample and one output channel
        units = max(1, budget // max(1, unit))
        bc = B if units >= B else units
        oc = max(1, min(O, units // bc))
        wx = self.spatial_conv.expanded_weight() if self.spatial_conv is not None else None
        many = bc < B or oc < O
        ys, acs, axs = [], [], []
        for b0 in range(0, B, bc):
            row_y, row_c, row_x = [], [], []
            for o0 in range(0, O, oc):
                args = (layer, xf[b0:b0 + bc], weight, wx, o0, min(O, o0 + oc), complement, keep_maps)
                if many and torch.is_grad_enabled() and not keep_maps:
                    y, a_c, a_x = checkpoint(self._chunk, *args, use_reentrant=False)
                else:
                    y, a_c, a_x = self._chunk(*args)
                row_y.append(y)
                row_c.append(a_c)
                row_x.append(a_x)
            ys.append(torch.cat(row_y, dim=1))
            if keep_maps:
                acs.append(torch.cat(row_c, dim=1) if row_c[0].numel() else row_c[0])
                axs.append(torch.cat(row_x, dim=1) if row_x[0].numel() else row_x[0])
        y = torch.cat(ys, dim=0)
        if bias is not None:
            y = y + bias.view(1, O, N, *(1,) * layer.spatial_dims)
        maps: dict[str, Tensor] = {}
        if keep_maps:
            if self.w1 is not None:
                maps["channel"] = torch.cat(acs, dim=0)
            if self.spatial_conv is not None:
                maps["spatial"] = torch.cat(axs, dim=0)
        return y, maps


def reference_memory_elements(batch: int, c_in: int, n_in: int, c_out: int, n: int,
                              out_size: tuple[int, ...], chunk_elements: int | None = None) -> dict[str, int]:
    """Elements of the reference form's response tensor: whole (``naive``) vs one chunk here.

    Example:
        >>> m = reference_memory_elements(128, 96, 4, 96, 4, (32, 32))
        >>> m["naive"] // m["chunk"] >= 96
        True
    """
    xo = math.prod(out_size)
    naive = batch * c_out * n * c_in * n_in * xo
    budget = 2 * batch * c_out * n * xo if chunk_elements is None else int(chunk_elements)
    unit = n * c_in * n_in * xo
    units = max(1, budget // unit)
    bc = batch if units >= batch else units
    oc = max(1, min(c_out, units // bc))
    return {"naive": naive, "chunk": bc * oc * unit}


