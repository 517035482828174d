"""Group equivariant stand-alone self-attention (GSA-Nets, Romero & Cordonnier, ICLR 2021).

* :class:`LiftingSelfAttention` ``(B, C_in, H, W) -> (B, C_out, N, H, W)`` (R^2 -> H x R^2):
  ``m(x_i, h) = W_out sum_j softmax_j(q_i . (k_j + rho(h^{-1}(x_j - x_i))) / sqrt(d)) v_j``,
  one attention map per grid element ``h`` (the offsets are acted on by ``h^{-1}``).
* :class:`GroupSelfAttention` ``(B, C, N, H, W) -> (B, C_out, N, H, W)`` (G -> G):
  ``m(x_i, h) = W_out sum_{j, h~} softmax_{(j, h~)}(q_{i,h} . (k_{j,h~}
  + rho(h^{-1}(x_j - x_i)) + rho_H(h^{-1} h~)) / sqrt(d)) v_{j,h~}``.
* :class:`SetSelfAttention` tokens ``(B, N, C) -> (B, N, C)``: the set-function view --
  permutation equivariant without positions, translation (circular shift) equivariant with a
  relative encoding, neither with an absolute one.

Why this is equivariant: the positional term depends on the pair only through
``h^{-1}(x_j - x_i)`` and ``h^{-1} h~``, which are invariant under the joint left action
``(h, x_i, x_j, h~) -> (g h, g x_i, g x_j, g h~)``; content scores are inner products of
pointwise features. So the attention operator is invariant under the joint action (the
condition of attentive G-convs) and ``L_g f -> L_g m`` with
``(L_g m)(x, h) = m(g^{-1} x, g^{-1} h)`` (for C_n a roll of the group axis by +k). The grid
of offsets must be closed under the action (centred square neighbourhoods, square images for
exact rotations), and the encoder is evaluated on the acted offsets snapped to a dyadic
lattice so equal points give equal inputs (see :mod:`groupconv.nn.attention.positional`).

Cost. ``patch_size=k`` (local, default 5): each query attends to its ``k x k`` neighbourhood
(and, G -> G, every group element there), gathered with :func:`torch.nn.functional.unfold`;
positions outside the image get ``-inf``. Memory and time are ``O(H W N^2 k^2 d)``: linear in
the number of pixels. ``patch_size=None`` (global) attends to every pixel: the score tensor
is ``(B, heads, N H W, N H W)``, QUADRATIC in pixels -- only for small maps. Both call
:func:`torch.nn.functional.scaled_dot_product_attention` with an additive bias (the
positional term and the mask); ``return_attention=True`` computes the same softmax
explicitly and returns the maps.

Differences from the reference code: scores are scaled by ``1/sqrt(head_dim)`` (SDPA's
default; GSA-Nets divide by ``sqrt(C_in)``), and the group encoding is added to the spatial
one rather than concatenated to a channel third (same invariance, no channel split).

Example:
    >>> import torch
    >>> from groupconv.groups import CyclicGroup
    >>> lift = LiftingSelfAttention(3, 8, CyclicGroup(4), heads=2, patch_size=3)
    >>> gsa = GroupSelfAttention(8, 8, CyclicGroup(4), heads=2, patch_size=3)
    >>> x = torch.randn(1, 3, 6, 6)
    >>> y = gsa(lift(x))
    >>> y.shape
    torch.Size([1, 8, 4, 6, 6])
    >>> y1 = gsa(lift(torch.rot90(x, 1, dims=(-2, -1))))
    >>> torch.allclose(y1, torch.roll(torch.rot90(y, 1, dims=(-2, -1)), 1, dims=2), atol=1e-5)
    True
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ..._validation import check_float_tensor, check_input_dtype, check_positive_int, check_tensor
from ...groups.base import Group, as_group
from ...spaces import GridField, GroupGridField, TokenField
from .positional import (
    GroupRelativeEncoder,
    RelativePositionEncoder,
    TokenShiftField,
    acted_offsets,
    square_offsets,
)

__all__ = ["LiftingSelfAttention", "GroupSelfAttention", "SetSelfAttention"]


def _resolve_grid(group: Group, num_elements: int | None) -> Tensor:
    """The grid of H (float64 for floating elements): all elements or ``group.grid(N)``."""
    dt = torch.float64 if getattr(group, "element_dtype_kind", "float") == "float" else None
    if group.is_finite and (num_elements is None or num_elements == group.order):
        return group.elements(dtype=dt)
    if num_elements is None:
        raise ValueError(
            f"num_elements must be a positive int for the continuous group {group.name}, got None"
        )
    return group.grid(check_positive_int(num_elements, "num_elements"), dtype=dt)


def _heads(out_channels: int, heads: int) -> int:
    heads = check_positive_int(heads, "heads")
    if out_channels % heads != 0:
        raise ValueError(
            f"heads must divide out_channels: out_channels={out_channels} is not divisible by "
            f"heads={heads}"
        )
    return heads


def _attend(q: Tensor, k: Tensor, v: Tensor, bias: Tensor | None, p: float, need_weights: bool):
    """``softmax(q k^T / sqrt(d) + bias) v`` via SDPA, or explicitly with the weights."""
    if not need_weights:
        return F.scaled_dot_product_attention(q, k, v, attn_mask=bias, dropout_p=p), None
    scores = q @ k.transpose(-2, -1) / math.sqrt(q.shape[-1])
    if bias is not None:
        scores = scores + bias
    attn = torch.softmax(scores, dim=-1)
    out = F.dropout(attn, p) @ v if p > 0 else attn @ v
    return out, attn


class _GroupAttention(nn.Module):
    """Shared machinery of :class:`LiftingSelfAttention` and :class:`GroupSelfAttention`."""

    _lifting = True

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        group: Group,
        *,
        heads: int = 1,
        head_channels: int | None = None,
        patch_size: int | None = 5,
        num_elements: int | None = None,
        positional: str = "rowcol",
        hidden_features: int = 16,
        group_encoding: str = "table",
        attn_dropout: float = 0.0,
        bias: bool = True,
        device: torch.device | str | None = None,
        dtype: torch.dtype | None = None,
    ) -> None:
        super().__init__()
        group = as_group(group)
        if group.space_dim != 2:
            raise ValueError(
                f"group must act on R^2 (images), got {group.name} acting on R^{group.space_dim}"
            )
        self.group = group
        self.in_channels = check_positive_int(in_channels, "in_channels")
        self.out_channels = check_positive_int(out_channels, "out_channels")
        if head_channels is None:
            self.heads = _heads(self.out_channels, heads)
            self.head_dim = self.out_channels // self.heads
        else:  # GSA-Nets' layout: every head has its own ``head_channels`` wide q, k and v
            self.heads = check_positive_int(heads, "heads")
            self.head_dim = check_positive_int(head_channels, "head_channels")
        if patch_size is not None:
            patch_size = check_positive_int(patch_size, "patch_size")
            if patch_size % 2 == 0:
                raise ValueError(
                    f"patch_size must be odd (a centred square, closed under rotations), got {patch_size}"
                )
        self.patch_size = patch_size
        if not 0.0 <= float(attn_dropout) < 1.0:
            raise ValueError(f"attn_dropout must be in [0, 1), got {attn_dropout}")
        self.attn_dropout = float(attn_dropout)
        fk = {"device": device, "dtype": dtype}
        grid = _resolve_grid(group, num_elements)
        self.num_elements = int(grid.shape[0])
        inv = group.matrix(group.inverse(grid)).to(torch.float64)
        self.register_buffer("grid", grid.to(device), persistent=False)
        self.register_buffer("_inv_matrices", inv.to(device), persistent=False)
        if patch_size is not None:
            r = patch_size // 2
            coords = acted_offsets(inv, square_offsets(r), max(r, 1))
            self.register_buffer("_local_coords", coords.to(device), persistent=False)
        inner = self.heads * self.head_dim
        self.query = nn.Linear(self.in_channels, inner, bias=bias, **fk)
        self.key_value = nn.Linear(self.in_channels, 2 * inner, bias=bias, **fk)
        self.out_proj = nn.Linear(inner, self.out_channels, bias=bias, **fk)
        self.pos_encoder = RelativePositionEncoder(inner, positional, hidden_features, 2, **fk,
                                                   heads=self.heads)
        self.positional = positional
        if self._lifting:
            self.group_encoder = None
        else:
            self.group_encoder = GroupRelativeEncoder(
                group, grid, inner, group_encoding, hidden_features, **fk
            )

    # -- fields ---------------------------------------------------------------------------
    @property
    def out_field(self) -> GroupGridField:
        """Signals on the grid of H: ``(g.m)(h_i, x) = m(g^{-1} h_i, g^{-1} x)``."""
        return GroupGridField(self.group, self.grid, 2)

    # -- pieces -------------------------------------------------------------------------------
    def _spatial_table(self, coords: Tensor, dtype: torch.dtype) -> Tensor:
        """``rho(h^{-1} o)`` as ``(heads, N, O, head_dim)``."""
        t = self.pos_encoder(coords.to(dtype))
        return t.view(*t.shape[:2], self.heads, self.head_dim).permute(2, 0, 1, 3)

    def _group_table(self, dtype: torch.dtype) -> Tensor:
        t = self.group_encoder().to(dtype)  # (N, N, inner)
        return t.view(*t.shape[:2], self.heads, self.head_dim).permute(2, 0, 1, 3)

    def _check_input(self, x: object) -> Tensor:
        x = check_tensor(x, "x")
        if self._lifting:
            if x.dim() != 4 or x.shape[1] != self.in_channels:
                raise ValueError(
                    f"x must be an image (B, in_channels={self.in_channels}, H, W), got shape "
                    f"{tuple(x.shape)}"
                )
        else:
            if x.dim() != 5 or x.shape[1] != self.in_channels:
                raise ValueError(
                    f"x must be a signal on the group grid (B, in_channels={self.in_channels}, "
                    f"N={self.num_elements}, H, W), got shape {tuple(x.shape)}"
                )
            if x.shape[2] != self.num_elements:
                raise ValueError(
                    f"x has {x.shape[2]} elements on its group axis, but this layer works on a grid "
                    f"of N={self.num_elements} elements of {self.group!r} (group mismatch: the "
                    "previous layer must use the same group and grid)"
                )
        if not x.is_floating_point():
            raise TypeError(f"x must be a floating-point tensor, got dtype {x.dtype}")
        check_input_dtype(x, self.query.weight, type(self).__name__)
        H, W = x.shape[-2:]
        if self.patch_size is not None and self.patch_size > min(H, W):
            raise ValueError(
                f"patch_size={self.patch_size} is larger than the image ({H}, {W}): use a "
                f"patch_size <= {min(H, W)} or patch_size=None (global attention)"
            )
        return x

    # -- forward --------------------------------------------------------------------------------
    def forward(self, x: Tensor, return_attention: bool = False):
        """Output ``(B, C_out, N, H, W)``; with ``return_attention=True`` also the maps:
        local ``(B, heads, N, H, W, [N_in,] k, k)``, global ``(B, heads, N, H, W, [N_in,] H, W)``
        (``[N_in]`` for :class:`GroupSelfAttention`); each map sums to 1."""
        x = self._check_input(x)
        B = x.shape[0]
        H, W = x.shape[-2:]
        P, N, e, d = H * W, self.num_elements, self.heads, self.head_dim
        n_in = 1 if self._lifting else N
        xt = x.permute(0, 2, 3, 1) if self._lifting else x.permute(0, 2, 3, 4, 1)
        q = self.query(xt).reshape(B, n_in, P, e, d)  # lifting: one query per pixel
        kv = self.key_value(xt).reshape(B, n_in, H, W, 2, e, d)
        if self._lifting:
            q = q.expand(B, N, P, e, d)
        q = q.permute(0, 3, 1, 2, 4)  # (B, e, N, P, d)
        p = self.attn_dropout if self.training else 0.0
        scale = 1.0 / math.sqrt(d)
        if self.patch_size is None:
            out, attn = self._global(q, kv, H, W, scale, p, return_attention)
        else:
            out, attn = self._local(q, kv, H, W, scale, p, return_attention)
        y = self.out_proj(out.reshape(B, N, H, W, e * d)).permute(0, 4, 1, 2, 3)
        return (y, attn) if return_attention else y

    def _local(self, q, kv, H, W, scale, p, need):
        B, e, N, P, d = q.shape
        n_in = kv.shape[1]
        k = self.patch_size
        r = k // 2
        K2 = k * k
        # gather the k x k neighbourhoods of keys and values: (B, 2, e, d, n_in, K2, P)
        flat = kv.permute(0, 4, 5, 6, 1, 2, 3).reshape(B, 2 * e * d * n_in, H, W)
        nb = F.unfold(flat, k, padding=r).view(B, 2, e, d, n_in, K2, P)
        nb = nb.permute(1, 0, 2, 6, 4, 5, 3).reshape(2, B, e, P, n_in * K2, d)
        qp = q.transpose(2, 3)  # (B, e, P, N, d)
        TX = self._spatial_table(self._local_coords, q.dtype)  # (e, N, K2, d)
        bias = torch.einsum("bepid,eind->bepin", qp, TX)  # (B, e, P, N, K2)
        ones = torch.ones(1, 1, H, W, device=q.device, dtype=q.dtype)
        inside = F.unfold(ones, k, padding=r)[0].transpose(0, 1)  # (P, K2)
        mask = torch.zeros_like(inside).masked_fill(inside < 0.5, float("-inf"))
        if self._lifting:
            bias = bias * scale + mask[:, None, :]
        else:
            TH = self._group_table(q.dtype)  # (e, N, n_in, d)
            bh = torch.einsum("bepid,eijd->bepij", qp, TH)
            bias = (bh.unsqueeze(-1) + bias.unsqueeze(-2)) * scale + mask[:, None, None, :]
            bias = bias.reshape(B, e, P, N, n_in * K2)
        out, attn = _attend(qp, nb[0], nb[1], bias, p, need)  # (B, e, P, N, d)
        out = out.permute(0, 2, 3, 1, 4)  # (B, P, N, e, d)
        out = out.transpose(1, 2)  # (B, N, P, e, d)
        if attn is not None:
            shape = (B, e, H, W, N) + (() if self._lifting else (n_in,)) + (k, k)
            attn = attn.reshape(shape).movedim(4, 2)
        return out, attn

    def _global(self, q, kv, H, W, scale, p, need):
        B, e, N, P, d = q.shape
        n_in = kv.shape[1]
        R = max(H, W) - 1
        kvf = kv.permute(4, 0, 5, 1, 2, 3, 6).reshape(2, B, e, n_in * P, d)
        offsets = square_offsets(R, device=q.device)
        coords = acted_offsets(self._inv_matrices, offsets, max(R, 1))
        TX = self._spatial_table(coords, q.dtype)  # (e, N, O, d)
        qTX = torch.einsum("benpd,enod->benpo", q, TX)  # (B, e, N, P, O)
        idx = torch.arange(P, device=q.device)
        rows, cols = idx // W, idx % W
        rel = (rows[None, :] - rows[:, None] + R) * (2 * R + 1) + (cols[None, :] - cols[:, None] + R)
        bias = torch.gather(qTX, -1, rel.expand(B, e, N, P, P))  # (B, e, N, P, P): quadratic
        if not self._lifting:
            TH = self._group_table(q.dtype)
            bh = torch.einsum("benpd,enjd->benpj", q, TH)  # (B, e, N, P, n_in)
            bias = bh.unsqueeze(-1) + bias.unsqueeze(-2)
        bias = (bias * scale).reshape(B, e, N * P, n_in * P)
        out, attn = _attend(q.reshape(B, e, N * P, d), kvf[0], kvf[1], bias, p, need)
        out = out.view(B, e, N, P, d).permute(0, 2, 3, 1, 4)  # (B, N, P, e, d)
        if attn is not None:
            attn = attn.reshape((B, e, N, H, W) + (() if self._lifting else (n_in,)) + (H, W))
        return out, attn

    def extra_repr(self) -> str:
        s = f"{self.in_channels}, {self.out_channels}, group={self.group!r}, N={self.num_elements}"
        s += f", heads={self.heads}, "
        if self.heads * self.head_dim != self.out_channels:
            s += f"head_channels={self.head_dim}, "
        s += "global" if self.patch_size is None else f"patch_size={self.patch_size}"
        return s + f", positional={self.positional!r}"


class LiftingSelfAttention(_GroupAttention):
    """Lifting self-attention ``(B, C_in, H, W) -> (B, C_out, N, H, W)`` (R^2 -> H x R^2).

    Args:
        in_channels, out_channels: channels of input and output.
        group: H acting on R^2 (C_n, D_n, SO2 with ``num_elements``...).
        heads: number of attention heads.
        head_channels: width of every head's query, key and value. ``None`` (default): the
            heads split ``out_channels`` (``heads`` must divide it; head width
            ``out_channels // heads``, the usual multi-head layout). An int gives every head its
            own ``head_channels`` (inner width ``heads * head_channels``, projected back to
            ``out_channels``): GSA-Nets' layout, where each head is ``out_channels // 2`` wide.
        patch_size: odd ``k`` (local ``k x k`` neighbourhoods, linear cost) or ``None``
            (global attention, quadratic in pixels).
        num_elements: grid size for continuous groups (``group.grid(N)``).
        positional: ``"rowcol"`` (row and column encoders, GSA-Nets) or ``"joint"``.
        hidden_features: width of the positional encoders.
        attn_dropout: dropout on the attention weights (training only).

    Example:
        >>> import torch
        >>> from groupconv.groups import DihedralGroup
        >>> layer = LiftingSelfAttention(1, 4, DihedralGroup(4), heads=2, patch_size=3)
        >>> x = torch.randn(2, 1, 5, 5)
        >>> y, attn = layer(x, return_attention=True)
        >>> y.shape, attn.shape
        (torch.Size([2, 4, 8, 5, 5]), torch.Size([2, 2, 8, 5, 5, 3, 3]))
    """

    _lifting = True

    def __init__(self, in_channels: int, out_channels: int, group: Group, **kwargs) -> None:
        if "group_encoding" in kwargs:
            raise TypeError(
                "LiftingSelfAttention has no group axis on its input: group_encoding is not an option"
            )
        super().__init__(in_channels, out_channels, group, **kwargs)

    @property
    def in_field(self) -> GridField:
        """Images ``(B, C, H, W)`` under ``group``."""
        return GridField(self.group, 2)


class GroupSelfAttention(_GroupAttention):
    """Group self-attention ``(B, C_in, N, H, W) -> (B, C_out, N, H, W)`` (H x R^2 -> H x R^2).

    Takes the arguments of :class:`LiftingSelfAttention` plus ``group_encoding``: ``"table"``
    (a learned vector per relative element ``h_i^{-1} h_j``; the grid must be closed under the
    product) or ``"mlp"`` (an MLP on ``group.embedding(h_i^{-1} h_j)``). Softmax runs jointly
    over the neighbourhood and the group axis.

    Example:
        >>> import torch
        >>> from groupconv.groups import SO2
        >>> layer = GroupSelfAttention(4, 4, SO2(), num_elements=8, heads=2, patch_size=3)
        >>> layer(torch.randn(1, 4, 8, 5, 5)).shape
        torch.Size([1, 4, 8, 5, 5])
    """

    _lifting = False

    @property
    def in_field(self) -> GroupGridField:
        """Signals on the layer's grid of H."""
        return GroupGridField(self.group, self.grid, 2)


class SetSelfAttention(nn.Module):
    """Multi-head self-attention on tokens ``(B, N, C) -> (B, N, C)``: the set-function view.

    ``positional``:

    * ``None``: plain attention, permutation equivariant (``in_field`` =
      ``TokenField(Permutations(num_tokens))``);
    * ``"relative"``: score ``q_i . (k_j + rho((j - i) mod N))``, the offset fed to an MLP as
      ``(cos, sin)(2 pi (j - i) / N)``: equivariant to circular shifts (``in_field`` =
      :class:`~groupconv.nn.attention.positional.TokenShiftField`, ``Translations(1)``), not to
      general permutations;
    * ``"absolute"``: score ``q_i . (k_j + rho(j))`` with ``(cos, sin)(2 pi j / N)``: breaks
      both symmetries (no field is declared: ``in_field`` is ``None``).

    ``num_tokens`` (optional) fixes ``N``: the fields need it and inputs are checked against it.

    Example:
        >>> import torch
        >>> attn = SetSelfAttention(8, heads=2, num_tokens=5)
        >>> x = torch.randn(3, 5, 8)
        >>> perm = torch.tensor([4, 0, 3, 1, 2])
        >>> torch.allclose(attn(x[:, perm]), attn(x)[:, perm], atol=1e-6)
        True
    """

    def __init__(
        self,
        channels: int,
        heads: int = 1,
        *,
        positional: str | None = None,
        num_tokens: int | None = None,
        hidden_features: int = 16,
        attn_dropout: float = 0.0,
        bias: bool = True,
        device: torch.device | str | None = None,
        dtype: torch.dtype | None = None,
    ) -> None:
        super().__init__()
        self.channels = check_positive_int(channels, "channels")
        self.heads = _heads(self.channels, heads)
        self.head_dim = self.channels // self.heads
        if positional not in (None, "relative", "absolute"):
            raise ValueError(f"positional must be None, 'relative' or 'absolute', got {positional!r}")
        self.positional = positional
        self.num_tokens = None if num_tokens is None else check_positive_int(num_tokens, "num_tokens")
        if not 0.0 <= float(attn_dropout) < 1.0:
            raise ValueError(f"attn_dropout must be in [0, 1), got {attn_dropout}")
        self.attn_dropout = float(attn_dropout)
        fk = {"device": device, "dtype": dtype}
        self.qkv = nn.Linear(self.channels, 3 * self.channels, bias=bias, **fk)
        self.out_proj = nn.Linear(self.channels, self.channels, bias=bias, **fk)
        self.pos_encoder = (
            None if positional is None
            else RelativePositionEncoder(self.channels, "joint", hidden_features, 2, **fk)
        )

    @property
    def in_field(self):
        """The declared symmetry of the input (``None`` when ``num_tokens`` is unknown or the
        encoding is absolute)."""
        if self.num_tokens is None or self.positional == "absolute":
            return None
        if self.positional is None:
            from ...groups import Permutations

            return TokenField(Permutations(self.num_tokens))
        return TokenShiftField(self.num_tokens)

    @property
    def out_field(self):
        return self.in_field

    def forward(self, x: Tensor, return_attention: bool = False):
        """``(B, N, C) -> (B, N, C)``; with ``return_attention=True`` also ``(B, heads, N, N)``."""
        x = check_float_tensor(x, "x")
        check_input_dtype(x, self.qkv.weight, "SetSelfAttention")
        if x.dim() != 3 or x.shape[-1] != self.channels:
            raise ValueError(
                f"x must be tokens (B, N, channels={self.channels}), got shape {tuple(x.shape)}"
            )
        B, L, _ = x.shape
        if self.num_tokens is not None and L != self.num_tokens:
            raise ValueError(f"x must hold num_tokens={self.num_tokens} tokens, got {L}")
        e, d = self.heads, self.head_dim
        q, k, v = self.qkv(x).view(B, L, 3, e, d).permute(2, 0, 3, 1, 4)  # (B, e, L, d) each
        bias = None
        if self.pos_encoder is not None:
            pos = torch.arange(L, device=x.device)
            ang = (2 * math.pi / L) * pos.to(torch.float64)
            feats = torch.stack([torch.cos(ang), torch.sin(ang)], dim=-1).to(x.dtype)
            table = self.pos_encoder(feats).view(L, e, d).transpose(0, 1)  # (e, L, d)
            qt = torch.einsum("beid,eod->beio", q, table)  # (B, e, L, L): q_i . rho(o)
            if self.positional == "relative":
                rel = torch.remainder(pos[None, :] - pos[:, None], L)  # (j - i) mod L
                qt = torch.gather(qt, -1, rel.expand(B, e, L, L))
            bias = qt / math.sqrt(d)
        p = self.attn_dropout if self.training else 0.0
        out, attn = _attend(q, k, v, bias, p, return_attention)
        y = self.out_proj(out.transpose(1, 2).reshape(B, L, e * d))
        return (y, attn) if return_attention else y

    def extra_repr(self) -> str:
        return f"{self.channels}, heads={self.heads}, positional={self.positional!r}"
