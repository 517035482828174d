"""Group self-attention on point sets (GSA-Nets' set-function view, on lifted point clouds).

Self-attention is a function of a *set*; made local and given a positional term that depends on
a pair only through a quantity invariant under the joint left action, it is equivariant to the
group (Romero & Cordonnier, ICLR 2021). On points lifted to ``G`` by
:func:`~groupconv.functional.points.lift_points` that quantity is ``u^-1 v``:

* :class:`LiftingPointSelfAttention` (points -> G): for each lifted query ``u = (x_i, h_s)``,
  ``m(u) = W_out sum_j softmax_j(q_i . (k_j + rho(u^-1 x_j, q_u, q_j)) / sqrt(d)) v_j`` over
  the neighbour *points* ``x_j``; ``u^-1 x_j`` (``h_s^-1 (x_j - x_i)`` for ``R^d ⋊ H``) is the
  neighbour seen from the query's frame;
* :class:`PointSelfAttention` (G -> G): ``m(u) = W_out sum_{v} softmax_v(q_u . (k_v +
  rho(c(u^-1 v), q_u, q_v)) / sqrt(d)) v_v`` over every element ``v`` of the neighbour points'
  fibres, with ``c = group.embedding`` (default) or ``group.log`` (exponential coordinates).

``rho`` is :class:`~groupconv.nn.attention.positional.RelativePositionEncoder` (``"joint"``, one
block per head) on those coordinates, concatenated with the per-point orbit identifiers
(``orbits``; for rotation groups fixing the origin ``|x|`` first, see
:func:`~groupconv.functional.points.orbit_invariants`). The softmax runs through
:func:`torch.nn.functional.scaled_dot_product_attention` (the shared ``_attend`` of
:mod:`groupconv.nn.attention.self_attention`) with the positional term added to the keys.

Because ``(g u)^-1 (g v) = u^-1 v`` and neighbourhoods are by distance on ``R^d``, both layers
are exactly equivariant for every ``g`` (up to rounding) and equivariant to permutations of the
point order. ``positional="absolute"`` (``rho`` of the neighbour's own coordinates) breaks that:
the control of the tests. ``positional=None`` is content-only attention over the
neighbourhood (equivariant, blind to geometry).

Cost: each query attends to ``K`` neighbour points (``K * S`` elements for the G -> G layer),
so memory is ``O(B M S K S heads head_dim)``: linear in points x neighbours, never ``N x N``.
Queries, masks and farthest-point subsampling follow :class:`~groupconv.nn.PointGroupConv`
(padding points get zero outputs; ``num_samples`` downsamples).

Example:
    >>> import torch
    >>> from groupconv.groups import SE2
    >>> from groupconv.functional.points import lift_points
    >>> x = torch.randn(2, 12, 2)
    >>> u = lift_points(SE2(), x, num_frames=2)
    >>> lift = LiftingPointSelfAttention(SE2(), 3, 8, heads=2, num_neighbors=5)
    >>> gsa = PointSelfAttention(SE2(), 8, 8, heads=2, num_neighbors=5)
    >>> h = lift(u, torch.randn(2, 12, 3))
    >>> gsa(h.elements, h.features, h.mask).features.shape
    torch.Size([2, 12, 2, 8])
"""

from __future__ import annotations

import math

import torch
from torch import Tensor, nn

from ..._validation import check_input_dtype, check_positive_int, check_tensor
from ...functional.points import (
    check_lifted_elements,
    farthest_point_sampling,
    gather_points,
    lifted_positions,
    point_dim,
    point_neighborhoods,
)
from ...groups.base import Group
from ...groups.rotations import SO2
from ...groups.so3 import SO3
from ..group.points import LiftedPoints
from .positional import RelativePositionEncoder
from .self_attention import _attend, _heads

__all__ = ["LiftingPointSelfAttention", "PointSelfAttention", "POSITIONAL_MODES"]

#: ``positional=`` values: relative (equivariant), absolute (the breaking control), none.
POSITIONAL_MODES = ("relative", "absolute", None)


class _PointAttention(nn.Module):
    """Shared machinery of the point self-attention layers."""

    _lifting = True

    def __init__(
        self,
        group: Group,
        in_channels: int,
        out_channels: int,
        *,
        heads: int = 1,
        num_neighbors: int = 16,
        radius: float | None = None,
        num_samples: int | None = None,
        orbit_dim: int = 0,
        positional: str | None = "relative",
        coordinates: str = "embedding",
        coordinate_scale: float = 1.0,
        hidden_features: int = 16,
        attn_dropout: float = 0.0,
        bias: bool = True,
        device: torch.device | str | None = None,
        dtype: torch.dtype | None = None,
    ) -> None:
        super().__init__()
        if not isinstance(group, Group):
            raise TypeError(f"group must be a groupconv.groups.Group, got {type(group).__name__}")
        self.group = group
        self.d = point_dim(group)
        self._rotation = isinstance(group, (SO2, SO3))
        self.in_channels = check_positive_int(in_channels, "in_channels")
        self.out_channels = check_positive_int(out_channels, "out_channels")
        self.heads = _heads(self.out_channels, heads)
        self.head_dim = self.out_channels // self.heads
        self.num_neighbors = check_positive_int(num_neighbors, "num_neighbors")
        if radius is not None and not float(radius) > 0:
            raise ValueError(f"radius must be positive or None, got {radius}")
        self.radius = None if radius is None else float(radius)
        self.num_samples = None if num_samples is None else check_positive_int(num_samples, "num_samples")
        self.orbit_dim = int(orbit_dim)
        if self.orbit_dim < 0:
            raise ValueError(f"orbit_dim must be >= 0, got {orbit_dim}")
        if self.orbit_dim < 1 and self._rotation:
            raise ValueError(f"orbit_dim must be >= 1 for the rotation group {group!r} (|x| identifies the "
                             f"orbit of a point; see orbit_invariants), got {orbit_dim}")
        if positional not in POSITIONAL_MODES:
            raise ValueError(f"positional must be one of {POSITIONAL_MODES}, got {positional!r}")
        self.positional = positional
        if coordinates not in ("log", "embedding"):
            raise ValueError(f"coordinates must be 'log' or 'embedding', got {coordinates!r}")
        self.coordinates = coordinates
        if not (math.isfinite(float(coordinate_scale)) and float(coordinate_scale) > 0):
            raise ValueError(f"coordinate_scale must be a positive finite float, got {coordinate_scale}")
        self.coordinate_scale = float(coordinate_scale)
        if not 0.0 <= float(attn_dropout) < 1.0:
            raise ValueError(f"attn_dropout must be in [0, 1), got {attn_dropout}")
        self.attn_dropout = float(attn_dropout)
        fk = {"device": device, "dtype": dtype}
        inner = self.out_channels
        self.query = nn.Linear(self.in_channels, inner, bias=bias, **fk)
        self.key_value = nn.Linear(self.in_channels, 2 * inner, bias=bias, **fk)
        self.out_proj = nn.Linear(inner, self.out_channels, bias=bias, **fk)
        self.pos_encoder = None
        if positional is not None:
            n_in = self._coord_dim() + 2 * self.orbit_dim
            self.pos_encoder = RelativePositionEncoder(inner, "joint", hidden_features, n_in,
                                                       heads=self.heads, **fk)

    def _coord_dim(self) -> int:
        G = self.group
        if self._lifting:
            return self.d
        if self.positional == "absolute":
            return G.embedding_dim
        return G.algebra_dim if self.coordinates == "log" else G.embedding_dim

    def extra_repr(self) -> str:
        return (f"{self.group!r}, {self.in_channels}, {self.out_channels}, heads={self.heads}, "
                f"num_neighbors={self.num_neighbors}, radius={self.radius}, "
                f"num_samples={self.num_samples}, positional={self.positional!r}")

    # ---------------------------------------------------------------------------- checks
    def _check(self, elements, features, mask, orbits):
        elements = check_lifted_elements(elements, self.group)
        B, N, S = elements.shape[:3]
        features = check_tensor(features, "features")
        want = (B, N, self.in_channels) if self._lifting else (B, N, S, self.in_channels)
        if not self._lifting and features.dim() == 3:
            features = features.unsqueeze(2).expand(B, N, S, features.shape[-1])
        if tuple(features.shape) != want:
            raise ValueError(f"features must have shape {want} (B, N{'' if self._lifting else ', S'}, C_in), "
                             f"got {tuple(features.shape)}")
        if not features.is_floating_point():
            raise TypeError(f"features must be a floating-point tensor, got dtype {features.dtype}")
        check_input_dtype(features, self.query.weight, type(self).__name__, "features")
        if mask is None:
            mask = torch.ones(B, N, dtype=torch.bool, device=elements.device)
        else:
            mask = check_tensor(mask, "mask")
            if tuple(mask.shape) != (B, N):
                raise ValueError(f"mask must have shape (B, N) = {(B, N)}, got {tuple(mask.shape)}")
        if self.orbit_dim and (orbits is None or tuple(orbits.shape) != (B, N, self.orbit_dim)):
            got = None if orbits is None else tuple(orbits.shape)
            raise ValueError(f"orbits must have shape (B, N, orbit_dim) = {(B, N, self.orbit_dim)}, "
                             f"got {got}")
        if not self.orbit_dim and orbits is not None:
            raise ValueError(f"orbits given but orbit_dim=0; got shape {tuple(orbits.shape)}")
        return elements, features, mask.to(torch.bool)

    def _positions(self, elements: Tensor, orbits: Tensor | None) -> Tensor:
        if self._rotation:
            return lifted_positions(self.group, elements, orbits)
        B, N, S = elements.shape[:3]
        return elements.reshape(B, N, S, -1)[:, :, 0, : self.d]

    def sample_indices(self, elements: Tensor, mask: Tensor | None = None,
                       orbits: Tensor | None = None) -> Tensor | None:
        """Indices ``(B, num_samples)`` of the points ``forward`` keeps (``None`` without
        ``num_samples``), as :meth:`groupconv.nn.PointGroupConv.sample_indices`."""
        if self.num_samples is None:
            return None
        B, N = elements.shape[:2]
        mask = torch.ones(B, N, dtype=torch.bool, device=elements.device) if mask is None else mask.bool()
        return farthest_point_sampling(self._positions(elements, orbits), self.num_samples, mask)[0]

    # ---------------------------------------------------------------------------- forward
    def _relative(self, u: Tensor, elements: Tensor, pts: Tensor, idx: Tensor) -> Tensor:
        """Coordinates of the neighbours seen from each query ``(B, M, S, K[, S], c)``."""
        G = self.group
        u_inv = G.inverse(u)
        if self._lifting:
            xj = gather_points(pts, idx)  # (B, M, K, d)
            if self.positional == "absolute":
                return xj.unsqueeze(2).expand(*u.shape[:3], *xj.shape[2:])
            g = u_inv.reshape(*u_inv.shape[:3], 1, *u_inv.shape[3:])
            return G.act(g, xj.unsqueeze(2))  # u^-1 x_j: (B, M, S, K, d)
        v = gather_points(elements, idx)  # (B, M, K, S, *shape)
        if self.positional == "absolute":
            e = G.embedding(v)
            return e.unsqueeze(2).expand(*u.shape[:3], *e.shape[2:])
        g = u_inv.reshape(*u_inv.shape[:3], 1, 1, *u_inv.shape[3:])
        rel = G.product(g, v.unsqueeze(2))  # (B, M, S, K, S, *shape)
        return G.log(rel) if self.coordinates == "log" else G.embedding(rel)

    def forward(
        self,
        elements: Tensor,
        features: Tensor,
        mask: Tensor | None = None,
        orbits: Tensor | None = None,
        return_attention: bool = False,
    ):
        """Attend; returns :class:`~groupconv.nn.LiftedPoints` on the (possibly subsampled) queries.

        ``elements`` ``(B, N, S, *element_shape)``; ``features`` ``(B, N, C_in)`` (lifting) or
        ``(B, N, S, C_in)`` (``(B, N, C_in)`` is broadcast over the fibre); ``mask`` ``(B, N)``;
        ``orbits`` ``(B, N, orbit_dim)``. With ``return_attention=True`` also the maps
        ``(B, M, S, heads, K[*S])`` (each sums to 1 over the valid neighbours).
        """
        elements, features, mask = self._check(elements, features, mask, orbits)
        B, N, S = elements.shape[:3]
        e, dh = self.heads, self.head_dim
        pts = self._positions(elements, orbits)
        q_idx, q_valid, idx, valid = point_neighborhoods(pts, mask, self.num_neighbors, self.radius,
                                                         self.num_samples)
        K = idx.shape[-1]
        u = elements if q_idx is None else gather_points(elements, q_idx)
        M = u.shape[1]
        # queries: per point (lifting, shared by the fibre) or per element
        f_q = features if q_idx is None else gather_points(features, q_idx)
        q = self.query(f_q)
        q = q.unsqueeze(2).expand(B, M, S, -1) if self._lifting else q  # (B, M, S, inner)
        kv = gather_points(self.key_value(features), idx)  # (B, M, K[, S], 2 inner)
        n_keys = K if self._lifting else K * S
        kv = kv.reshape(B, M, 1, n_keys, 2, e, dh).expand(B, M, S, n_keys, 2, e, dh)
        k, v = kv[..., 0, :, :], kv[..., 1, :, :]  # (B, M, S, n_keys, e, dh)
        if self.pos_encoder is not None:
            coords = self._relative(u, elements, pts, idx) / self.coordinate_scale
            if self.orbit_dim:  # coords: (B, M, S, K, c) lifting, (B, M, S, K, S, c) G -> G
                shp = coords.shape[:-1]
                q_u = orbits if q_idx is None else gather_points(orbits, q_idx)  # (B, M, q)
                q_u = q_u.reshape(B, M, *([1] * (len(shp) - 2)), self.orbit_dim)
                q_v = gather_points(orbits, idx).unsqueeze(2)  # (B, M, 1, K, q)
                if not self._lifting:
                    q_v = q_v.unsqueeze(4)  # the whole fibre of a neighbour shares its orbit
                coords = torch.cat([coords, q_u.expand(*shp, -1), q_v.expand(*shp, -1)], -1)
            r = self.pos_encoder(coords.to(q.dtype)).reshape(B, M, S, n_keys, e, dh)
            k = k + r
        keep = valid if self._lifting else valid.unsqueeze(-1).expand(B, M, K, S)
        keep = keep.reshape(B, M, 1, 1, 1, n_keys)
        first = torch.zeros_like(keep)
        first[..., 0] = True  # padded queries: attend to something finite, zeroed below
        keep = keep | (first & ~q_valid[:, :, None, None, None, None])
        bias = torch.zeros(keep.shape, dtype=q.dtype, device=q.device).masked_fill(~keep, float("-inf"))
        p = self.attn_dropout if self.training else 0.0
        qh = q.reshape(B, M, S, e, 1, dh)
        out, attn = _attend(qh, k.transpose(3, 4), v.transpose(3, 4), bias.expand(B, M, S, e, 1, n_keys),
                            p, return_attention)
        y = self.out_proj(out.reshape(B, M, S, e * dh)) * q_valid[:, :, None, None].to(q.dtype)
        result = LiftedPoints(u, y, q_valid)
        if return_attention:
            return result, attn.squeeze(-2) * q_valid[:, :, None, None, None].to(attn.dtype)
        return result


class LiftingPointSelfAttention(_PointAttention):
    """Lifting self-attention from a point cloud to lifted elements (see the module docstring).

    Args:
        group: ``Translations(d)``, ``R^d ⋊ H`` (SE2, SE3, Sim2, ...) or ``SO2``/``SO3`` (then
            ``orbit_dim >= 1`` with ``|x|`` first).
        in_channels, out_channels: channels (``heads`` must divide ``out_channels``).
        heads: attention heads.
        num_neighbors, radius, num_samples: neighbourhoods and downsampling, as
            :class:`~groupconv.nn.PointGroupConv`.
        orbit_dim: length of the per-point orbit identifiers fed to the positional encoder.
        positional: ``"relative"`` (``rho(u^-1 x_j)``, equivariant), ``"absolute"``
            (``rho(x_j)``: not equivariant, a control) or ``None`` (content only).
        coordinates, coordinate_scale: as :class:`PointSelfAttention` (the lifting layer
            always encodes the d-vector ``u^-1 x_j``, divided by ``coordinate_scale``).
        hidden_features: width of the positional MLP.
        attn_dropout, bias: dropout on the attention maps (training); biases of the projections.

    ``forward(elements, features, mask, orbits)``: ``elements`` from ``lift_points``
    ``(B, N, S, *element_shape)``, ``features`` per point ``(B, N, C_in)``.

    Example:
        >>> import torch
        >>> from groupconv.groups import SE3
        >>> from groupconv.functional.points import lift_points
        >>> layer = LiftingPointSelfAttention(SE3(), 4, 8, heads=2, num_neighbors=6)
        >>> x = torch.randn(1, 10, 3)
        >>> layer(lift_points(SE3(), x, num_frames=2), torch.randn(1, 10, 4)).features.shape
        torch.Size([1, 10, 2, 8])
    """

    _lifting = True


class PointSelfAttention(_PointAttention):
    """Group self-attention between lifted elements (G -> G; see the module docstring).

    Same arguments as :class:`LiftingPointSelfAttention`; ``coordinates`` chooses the
    encoder's input, ``"embedding"`` (default, ``group.embedding(u^-1 v)``: continuous) or
    ``"log"`` (``group.log(u^-1 v)``; it has a cut at rotation angle pi, which neighbour frames
    hit structurally, so use it with sampled frames). ``features`` ``(B, N, S, C_in)``.

    Example:
        >>> import torch
        >>> from groupconv.groups import SE2
        >>> from groupconv.functional.points import lift_points
        >>> layer = PointSelfAttention(SE2(), 4, 4, heads=2, num_neighbors=3, num_samples=5)
        >>> u = lift_points(SE2(), torch.randn(2, 9, 2), num_frames=2)
        >>> out = layer(u, torch.randn(2, 9, 2, 4))
        >>> out.elements.shape, out.features.shape
        (torch.Size([2, 5, 2, 3]), torch.Size([2, 5, 2, 4]))
    """

    _lifting = False
