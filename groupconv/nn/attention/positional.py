"""Relative positional encodings of group self-attention (GSA-Nets, Romero & Cordonnier 2021).

Self-attention on a set is permutation equivariant; a *relative* positional term
``q_i . rho(x_j - x_i)`` makes it translation equivariant, and acting on the offsets with the
lifted group element, ``q_{i,h} . rho(h^{-1}(x_j - x_i))``, makes it equivariant to a group H
of rotations/mirrors too (the attention operator is then invariant under the joint left
action, the condition of attentive G-convs). This module holds the pieces:

* :class:`RelativePositionEncoder` -- a small network ``rho`` evaluated on (acted) offsets,
  either *joint* (one MLP on the 2-D offset) or *row/column* (two MLPs on each coordinate,
  concatenated, as GSA-Nets);
* :class:`GroupRelativeEncoder` -- ``rho_H(h_i^{-1} h_j)`` on the group axis, a table over the
  relative indices of a grid closed under the product (``"table"``) or an MLP on
  ``group.embedding(h_i^{-1} h_j)`` (``"mlp"``, any grid);
* :func:`square_offsets`, :func:`acted_offsets` -- the centred square offset grid (closed under
  90-degree rotations and flips) and ``h^{-1} o`` computed in float64 and snapped to a dyadic
  lattice, so that mathematically equal points give bit-identical network inputs;
* :class:`TokenShiftField` -- tokens ``(B, N, C)`` under circular shifts by ``Translations(1)``
  (the field of 1-D relative attention).

Example:
    >>> import torch
    >>> enc = RelativePositionEncoder(8, mode="rowcol")
    >>> enc(torch.zeros(3, 5, 2)).shape
    torch.Size([3, 5, 8])
"""

from __future__ import annotations

import math

import torch
from torch import Tensor, nn

from ..._validation import check_float_tensor, check_input_dtype, check_positive_int, check_tensor
from ...groups.base import Group
from ...spaces import Field, check_single_element

__all__ = [
    "RelativePositionEncoder",
    "GroupRelativeEncoder",
    "TokenShiftField",
    "acted_offsets",
    "square_offsets",
]

_SNAP = 2.0**-30  # lattice the acted coordinates are rounded to (removes ulp noise)


def square_offsets(radius: int, device: torch.device | str | None = None) -> Tensor:
    """Integer offsets ``(o_row, o_col)`` of the centred ``(2r+1) x (2r+1)`` square, row-major
    (the order of :func:`torch.nn.functional.unfold`), float64 ``((2r+1)**2, 2)``.

    Example:
        >>> square_offsets(1)[:3].tolist()
        [[-1.0, -1.0], [-1.0, 0.0], [-1.0, 1.0]]
    """
    a = torch.arange(-radius, radius + 1, dtype=torch.float64, device=device)
    rr, cc = torch.meshgrid(a, a, indexing="ij")
    return torch.stack([rr, cc], dim=-1).reshape(-1, 2)


def acted_offsets(inv_matrices: Tensor, offsets: Tensor, scale: float) -> Tensor:
    """``h_i^{-1} o / scale`` for every grid element and offset, ``(N, O, 2)`` float64.

    ``inv_matrices`` is ``matrix(h_i^{-1})`` ``(N, 2, 2)`` (float64). The result is rounded to a
    ``2^-30`` lattice so that ``h^{-1} (g o)`` and ``(g^{-1} h)^{-1} o`` -- equal in exact
    arithmetic -- are the same floats, and the encoder sees identical inputs (exact
    equivariance, not merely up to rounding).
    """
    pts = torch.einsum("nij,oj->noi", inv_matrices.to(torch.float64), offsets.to(torch.float64))
    pts = pts / float(scale)
    return torch.round(pts / _SNAP) * _SNAP


def _mlp(in_features: int, hidden: int, out_features: int, fk: dict) -> nn.Sequential:
    # Linear -> LayerNorm -> SiLU -> Linear: the tiny encoder of GSA-Nets (as 1x1 convs there).
    return nn.Sequential(
        nn.Linear(in_features, hidden, **fk),
        nn.LayerNorm(hidden, **fk),
        nn.SiLU(),
        nn.Linear(hidden, out_features, **fk),
    )


class RelativePositionEncoder(nn.Module):
    """A small network ``rho: R^d -> R^out_features`` on (acted, normalised) offsets.

    Args:
        out_features: output size (``heads * head_dim`` in the attention layers).
        mode: ``"joint"`` (one MLP on the d-vector) or ``"rowcol"`` (one MLP per coordinate on
            ``d = 2`` offsets, outputs concatenated: the row/column encoding of GSA-Nets).
        hidden_features: width of the hidden layer (16 as GSA-Nets).
        in_features: d (2 for images; any d for ``"joint"``).
        heads: number of attention heads the output is split into (head-major, ``heads``
            blocks of ``out_features // heads``). With ``"rowcol"`` every head's block is
            ``[row half | column half]``, so every head sees both axes (GSA-Nets).

    Example:
        >>> import torch
        >>> RelativePositionEncoder(6, mode="joint")(torch.randn(4, 2)).shape
        torch.Size([4, 6])
    """

    def __init__(
        self,
        out_features: int,
        mode: str = "rowcol",
        hidden_features: int = 16,
        in_features: int = 2,
        device: torch.device | str | None = None,
        dtype: torch.dtype | None = None,
        heads: int = 1,
    ) -> None:
        super().__init__()
        self.out_features = check_positive_int(out_features, "out_features")
        self.in_features = check_positive_int(in_features, "in_features")
        self.heads = check_positive_int(heads, "heads")
        if self.out_features % self.heads != 0:
            raise ValueError(f"heads must divide out_features: out_features={self.out_features}, "
                             f"heads={self.heads}")
        hidden = check_positive_int(hidden_features, "hidden_features")
        fk = {"device": device, "dtype": dtype}
        if mode not in ("joint", "rowcol"):
            raise ValueError(f"mode must be 'joint' or 'rowcol', got {mode!r}")
        if mode == "rowcol" and (self.in_features != 2 or self.out_features < 2 * self.heads):
            raise ValueError(
                "mode='rowcol' needs in_features=2 and out_features >= 2 * heads, got "
                f"in_features={self.in_features}, out_features={self.out_features}, heads={self.heads}"
            )
        self.mode = mode
        if mode == "joint":
            self.net = _mlp(self.in_features, hidden, self.out_features, fk)
        else:
            hd = self.out_features // self.heads
            self._half = hd // 2
            self.row = _mlp(1, hidden, self.heads * self._half, fk)
            self.col = _mlp(1, hidden, self.heads * (hd - self._half), fk)

    def forward(self, coords: Tensor) -> Tensor:
        """``(..., in_features) -> (..., out_features)``."""
        coords = check_float_tensor(coords, "coords")
        check_input_dtype(coords, next(self.parameters(), None), "RelativePositionEncoder", "coords")
        if coords.shape[-1] != self.in_features:
            raise ValueError(
                f"coords must have shape (..., {self.in_features}), got {tuple(coords.shape)}"
            )
        if self.mode == "joint":
            return self.net(coords)
        r = self.row(coords[..., :1]).unflatten(-1, (self.heads, -1))
        c = self.col(coords[..., 1:]).unflatten(-1, (self.heads, -1))
        return torch.cat([r, c], dim=-1).flatten(-2)  # head h: [row_h | col_h]

    def extra_repr(self) -> str:
        return f"out_features={self.out_features}, mode={self.mode!r}, heads={self.heads}"


class GroupRelativeEncoder(nn.Module):
    """``rho_H(h_i^{-1} h_j)`` for a grid of ``N`` elements of ``group``: ``(N, N, out_features)``.

    ``mode="table"`` (default, as GSA-Nets' group embedding): one learned vector per relative
    element, indexed by the position of ``h_i^{-1} h_j`` in the grid (the grid must be closed
    under the product: C_n, D_n, ``SO2().grid(n)``; ``ValueError`` otherwise).
    ``mode="mlp"``: a small MLP on ``group.embedding(h_i^{-1} h_j)`` (any grid).

    Example:
        >>> import torch
        >>> from groupconv.groups import CyclicGroup
        >>> G = CyclicGroup(4)
        >>> GroupRelativeEncoder(G, G.elements(), 5)().shape
        torch.Size([4, 4, 5])
    """

    def __init__(
        self,
        group: Group,
        grid: Tensor,
        out_features: int,
        mode: str = "table",
        hidden_features: int = 16,
        device: torch.device | str | None = None,
        dtype: torch.dtype | None = None,
    ) -> None:
        super().__init__()
        self.out_features = check_positive_int(out_features, "out_features")
        fk = {"device": device, "dtype": dtype}
        n = int(grid.shape[0])
        self.num_elements = n
        if mode == "table":
            from ..group.gconv_kernels import relative_index

            rel = relative_index(group, grid, grid)
            if rel is None:
                raise ValueError(
                    f"group_encoding='table' needs a grid of {group.name} closed under the product "
                    f"(h_i^-1 h_j in the grid for all i, j), which this grid of {n} elements is not: "
                    "use group_encoding='mlp'"
                )
            self.register_buffer("rel_index", rel.to(device), persistent=False)
            self.table = nn.Parameter(torch.randn(n, self.out_features, **fk) / math.sqrt(self.out_features))
        elif mode == "mlp":
            rel = group.product(group.inverse(grid).unsqueeze(1), grid.unsqueeze(0))
            emb = group.embedding(rel).to(torch.float64)
            emb = torch.round(emb / _SNAP) * _SNAP
            self.register_buffer("rel_embedding", emb.to(device), persistent=False)
            self.net = _mlp(emb.shape[-1], check_positive_int(hidden_features, "hidden_features"),
                            self.out_features, fk)
        else:
            raise ValueError(f"group_encoding must be 'table' or 'mlp', got {mode!r}")
        self.mode = mode

    def forward(self) -> Tensor:
        """The table ``(N, N, out_features)``; entry ``[i, j]`` encodes ``h_i^{-1} h_j``."""
        if self.mode == "table":
            return self.table[self.rel_index]
        p = next(self.net.parameters())
        return self.net(self.rel_embedding.to(p.dtype))

    def extra_repr(self) -> str:
        return f"N={self.num_elements}, out_features={self.out_features}, mode={self.mode!r}"


class TokenShiftField(Field):
    """Tokens ``(B, N, C)`` under circular shifts: ``Translations(1)`` element ``t`` (an integer)
    acts as ``torch.roll(x, t, dims=1)`` (token ``i`` moves to ``i + t mod N``).

    Integer shifts are exact; non-integer ones are rejected (tokens have no in-between).

    Example:
        >>> import torch
        >>> f = TokenShiftField(4)
        >>> x = torch.arange(4.0).reshape(1, 4, 1)
        >>> f.transform(x, torch.tensor([1.0]))[0, :, 0].tolist()
        [3.0, 0.0, 1.0, 2.0]
    """

    def __init__(self, num_tokens: int) -> None:
        from ...groups import Translations

        self.num_tokens = check_positive_int(num_tokens, "num_tokens")
        self.group = Translations(1)

    def _shift(self, g: Tensor) -> int:
        g = check_single_element(self.group, g, "g")
        t = float(g.reshape(-1)[0])
        if t != round(t):
            raise ValueError(f"g must be an integer shift for tokens, got {t}")
        return int(round(t))

    def transform(self, x: Tensor, g: Tensor, *, order: int | None = None) -> Tensor:
        return torch.roll(self.check(x), self._shift(g), dims=1)

    def exact_elements(
        self, device: torch.device | str | None = None, dtype: torch.dtype | None = None
    ) -> Tensor:
        """Shifts ``0, 1, -1, 2`` (identity first, distinct modulo N)."""
        shifts: list[int] = []
        for s in (0, 1, -1, 2):
            if s % self.num_tokens not in [t % self.num_tokens for t in shifts]:
                shifts.append(s)
        return torch.tensor(shifts, device=device, dtype=dtype or torch.get_default_dtype()).unsqueeze(-1)

    def check(self, x: Tensor, name: str = "x") -> Tensor:
        x = check_tensor(x, name)
        if x.dim() != 3 or x.shape[1] != self.num_tokens:
            raise ValueError(
                f"{name} must be tokens (B, N={self.num_tokens}, C), got shape {tuple(x.shape)}"
            )
        return x

    def __eq__(self, other: object) -> bool:
        return isinstance(other, TokenShiftField) and other.num_tokens == self.num_tokens

    __hash__ = None  # type: ignore[assignment]

    def __repr__(self) -> str:
        return f"TokenShiftField(num_tokens={self.num_tokens})"
