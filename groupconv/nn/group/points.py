"""Group convolutions on point clouds (LieConv-style, Finzi et al. 2020).

A point cloud ``(B, N, d)`` is lifted to group elements ``u`` ``(B, N, S, *element_shape)`` by
:func:`~groupconv.functional.points.lift_points`; :class:`PointGroupConv` then computes::

    y(u) = 1/|nbhd(u)| * sum_{v in nbhd(u)} k(log(u^-1 v), q_u, q_v) f(v)

with a continuous kernel net ``k`` from :mod:`groupconv.kernels` on coordinates of ``u^-1 v``
(its continuous embedding by default, or its Lie-algebra coordinates ``log(u^-1 v)``), plus
optional orbit identifiers ``q`` (invariant per-point values
such as atom types). Neighbourhoods are the ``K`` nearest points (or those within a radius) on
the quotient ``R^d``, each with its whole fibre of ``S`` elements; the sum is normalised by the
number of valid neighbour elements (Monte-Carlo normalisation). Because ``u^-1 v`` is invariant
under ``u, v -> g u, g v``, the layer is exactly equivariant for every ``g`` (up to rounding).

Memory is ``O(B * M * S * K * S * kernel_channels)`` (linear in points x neighbours): the kernel
net outputs ``kernel_channels`` values per pair, contracted with the features first and mixed
by one linear map after (the PointConv/LieConv factorisation), never a ``C_out x C_in`` matrix
per pair.

Example:
    >>> import torch
    >>> from groupconv.groups import SE2
    >>> from groupconv.functional.points import lift_points
    >>> x = torch.randn(2, 12, 2, generator=torch.Generator().manual_seed(0))
    >>> u = lift_points(SE2(), x, num_frames=2)
    >>> conv = PointGroupConv(SE2(), 3, 8, num_neighbors=4, num_samples=6)
    >>> out = conv(u, torch.ones(2, 12, 3))
    >>> out.elements.shape, out.features.shape, out.mask.shape
    (torch.Size([2, 6, 2, 3]), torch.Size([2, 6, 2, 8]), torch.Size([2, 6]))
"""

from __future__ import annotations

import math
from typing import NamedTuple

import torch
from torch import nn

from ..._validation import check_positive_int, check_tensor
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
from ...kernels.base import KernelNet
from ...kernels.nets import MLP

__all__ = ["LiftedPoints", "PointGroupConv", "COORDINATES"]

#: Kernel-net inputs :class:`PointGroupConv` accepts: ``log(u^-1 v)`` or ``embedding(u^-1 v)``.
COORDINATES = ("log", "embedding")


class LiftedPoints(NamedTuple):
    """Features on lifted points: ``elements`` ``(B, M, S, *element_shape)``, ``features``
    ``(B, M, S, C)``, ``mask`` ``(B, M)`` (bool, ``True`` = real point)."""

    elements: torch.Tensor
    features: torch.Tensor
    mask: torch.Tensor


class PointGroupConv(nn.Module):
    """Continuous group convolution on lifted point clouds (see the module docstring).

    Args:
        group: ``Translations(d)``, a semidirect product ``R^d ⋊ H`` (SE2, SE3, E2, Sim2, ...)
            or a rotation group fixing the origin (``SO2``, ``SO3``): then ``orbit_dim >= 1`` and
            the first orbit column is ``|x|`` (:func:`~groupconv.functional.points.orbit_invariants`).
        in_channels, out_channels: feature channels.
        num_neighbors: ``K``, the neighbours (points, each with its fibre) per query point.
        radius: if given, neighbours farther than ``radius`` are dropped (up to ``K`` kept).
        num_samples: if given, the output lives on that many points chosen by farthest-point
            sampling (downsampling); otherwise on every input point.
        kernel_channels: outputs of the kernel net per pair (mixed with the features).
        kernel_hidden, kernel_layers: size of the default MLP kernel net (Swish activations).
        kernel_net: a :class:`~groupconv.kernels.KernelNet` to use instead (``in_features`` must
            be the coordinate length plus ``2 * orbit_dim``, ``out_features == kernel_channels``).
        orbit_dim: length of the per-point orbit identifiers ``q`` passed to ``forward``. With
            ``num_samples``, gather them for the next layer with :meth:`sample_indices`.
        coordinates: ``"embedding"`` (default: ``group.embedding(u^-1 v)``, the translation part
            of ``u^-1 v`` and cos/sin (SO2) or the matrix (SO3) of its rotation, continuous
            everywhere) or ``"log"`` (exponential coordinates ``group.log(u^-1 v)``). ``log`` has
            a cut at rotation angle pi, which neighbour frames hit structurally (two mutual
            nearest neighbours have frames exactly pi apart), so rounding can flip a
            coordinate there: use it with sampled frames only.
        coordinate_scale: divides the coordinates before the kernel net (e.g. the point spacing).
        bias: add a learnable bias.
        chang_init, chang_gain: at the first forward, rescale the kernel net's output layer once
            (its persistent Chang flag, as the continuous convolutions' ``"energy"`` rule) so that
            unit-variance white features give output variance ``chang_gain`` on that batch's
            neighbourhoods: the effective kernel ``K_oi(v) = sum_h W_{o,hi} k_h(v) / n`` gets
            ``mean_o sum_{i,v} K_oi(v)^2 = chang_gain``. Without it the output std is ~0.1.

    Example:
        >>> import torch
        >>> from groupconv.groups import Translations
        >>> conv = PointGroupConv(Translations(3), 1, 4, num_neighbors=5)
        >>> x = torch.randn(1, 9, 3)
        >>> conv(x.unsqueeze(2), torch.ones(1, 9, 1)).features.shape
        torch.Size([1, 9, 1, 4])
    """

    def __init__(
        self,
        group: Group,
        in_channels: int,
        out_channels: int,
        *,
        num_neighbors: int = 16,
        radius: float | None = None,
        num_samples: int | None = None,
        kernel_channels: int = 16,
        kernel_hidden: int = 32,
        kernel_layers: int = 3,
        kernel_net: KernelNet | None = None,
        orbit_dim: int = 0,
        coordinates: str = "embedding",
        coordinate_scale: float = 1.0,
        bias: bool = True,
        chang_init: bool = True,
        chang_gain: float = 1.0,
        device: torch.device | str | None = None,
        dtype: torch.dtype | None = None,
    ) -> None:
        super().__init__()
        self.chang_init = bool(chang_init)
        if not (math.isfinite(float(chang_gain)) and float(chang_gain) > 0):
            raise ValueError(f"chang_gain must be a positive finite float, got {chang_gain}")
        self.chang_gain = float(chang_gain)
        self.group = group
        self.d = point_dim(group)
        self.in_channels = check_positive_int(in_channels, "in_channels")
        self.out_channels = check_positive_int(out_channels, "out_channels")
        self.num_neighbors = check_positive_int(num_neighbors, "num_neighbors")
        if radius is not None and not float(radius) > 0:
            raise ValueError(f"radius must be positive or None, got {radius}")
        self.radius = None if radius is None else float(radius)
        self.num_samples = None if num_samples is None else check_positive_int(num_samples, "num_samples")
        if coordinates not in COORDINATES:
            raise ValueError(f"coordinates must be one of {COORDINATES}, got {coordinates!r}")
        self.coordinates = coordinates
        if not (math.isfinite(float(coordinate_scale)) and float(coordinate_scale) > 0):
            raise ValueError(f"coordinate_scale must be a positive finite float, got {coordinate_scale}")
        self.coordinate_scale = float(coordinate_scale)
        self.orbit_dim = int(orbit_dim)
        if self.orbit_dim < 0:
            raise ValueError(f"orbit_dim must be >= 0, got {orbit_dim}")
        self._rotation = isinstance(group, (SO2, SO3))
        if self.orbit_dim < 1 and self._rotation:
            raise ValueError(f"orbit_dim must be >= 1 for the rotation group {group!r} (|x| identifies the "
                             f"orbit of a point; see orbit_invariants), got {orbit_dim}")
        self.kernel_channels = check_positive_int(kernel_channels, "kernel_channels")
        coord_dim = group.algebra_dim if coordinates == "log" else group.embedding_dim
        n_in = coord_dim + 2 * self.orbit_dim
        if kernel_net is None:
            kernel_net = MLP(n_in, self.kernel_channels, kernel_hidden, kernel_layers, activation="swish",
                             init="kaiming", device=device, dtype=dtype)
        elif kernel_net.in_features != n_in or kernel_net.out_features != self.kernel_channels:
            raise ValueError(
                f"kernel_net must map {n_in} coordinates to kernel_channels={self.kernel_channels}, "
                f"got in_features={kernel_net.in_features}, out_features={kernel_net.out_features}"
            )
        self.kernel_net = kernel_net
        self.linear = nn.Linear(self.kernel_channels * self.in_channels, self.out_channels, bias=bias,
                                device=device, dtype=dtype)

    def sample_indices(
        self, elements: torch.Tensor, mask: torch.Tensor | None = None, orbits: torch.Tensor | None = None
    ) -> torch.Tensor | None:
        """Indices ``(B, num_samples)`` of the points ``forward`` keeps (``None`` without
        ``num_samples``): gather per-point data (orbits, positions) for the next layer with
        :func:`~groupconv.functional.points.gather_points`.

        Example:
            >>> import torch
            >>> from groupconv.groups import SE2
            >>> from groupconv.functional.points import lift_points
            >>> conv = PointGroupConv(SE2(), 1, 2, num_neighbors=3, num_samples=4)
            >>> conv.sample_indices(lift_points(SE2(), torch.randn(1, 9, 2))).shape
            torch.Size([1, 4])
        """
        if self.num_samples is None:
            return None
        B, N = elements.shape[:2]
        mask = torch.ones(B, N, dtype=torch.bool, device=elements.device) if mask is None else mask.bool()
        return farthest_point_sampling(self._positions(elements, orbits), self.num_samples, mask)[0]

    def _positions(self, elements: torch.Tensor, orbits: torch.Tensor | None) -> torch.Tensor:
        if self._rotation:
            return lifted_positions(self.group, elements, orbits)
        B, N, S = elements.shape[:3]
        return elements.reshape(B, N, S, -1)[:, :, 0, : self.d]

    def _chang_pending(self) -> bool:
        net = self.kernel_net
        return self.chang_init and hasattr(net, "chang_initialize_") and not getattr(
            net, "is_chang_initialized", True)

    def _chang(self, coords: torch.Tensor, w: torch.Tensor, count: torch.Tensor,
               q_valid: torch.Tensor) -> None:
        """One-shot energy rule (see ``chang_init``): runs once, at the first forward."""
        with torch.no_grad():
            k = self.kernel_net(coords) * (w / count[..., None])[:, :, None, :, None, None]
            k = k.flatten(3, 4)  # (B, M, S, K*S, h)
            gram = torch.einsum("bmsvh,bmsvg->bmshg", k, k)  # sum_v k_h k_g / n^2 per query
            wq = q_valid.to(k.dtype)[:, :, None, None, None]
            gram = (gram * wq).sum((0, 1, 2)) / (wq.sum() * k.shape[2]).clamp_min(1.0)
            W = self.linear.weight.reshape(self.out_channels, self.kernel_channels, self.in_channels)
            energy = torch.einsum("ohi,hg,ogi->", W, gram.to(W.dtype), W) / self.out_channels
            factor = (self.chang_gain / energy.clamp_min(torch.finfo(W.dtype).tiny)).sqrt()
            self.kernel_net.chang_initialize_(self.kernel_channels * self.in_channels, self.chang_gain,
                                              factor=factor)

    def extra_repr(self) -> str:
        return (f"{self.group!r}, {self.in_channels}, {self.out_channels}, "
                f"num_neighbors={self.num_neighbors}, "
                f"radius={self.radius}, num_samples={self.num_samples}, coordinates={self.coordinates!r}")

    def _check(self, elements: torch.Tensor, features: torch.Tensor, mask, orbits):
        elements = check_lifted_elements(elements, self.group)
        B, N, S = elements.shape[:3]
        features = check_tensor(features, "features")
        if features.dim() == 3:
            features = features.unsqueeze(2).expand(B, N, S, features.shape[-1])
        if features.dim() != 4 or tuple(features.shape) != (B, N, S, self.in_channels):
            raise ValueError(f"features must have shape (B, N, S, C) or (B, N, C) = "
                             f"{(B, N, S, self.in_channels)}"
                             f", got {tuple(features.shape)}")
        if mask is None:
            mask = torch.ones(B, N, dtype=torch.bool, device=elements.device)
        elif tuple(mask.shape) != (B, N):
            raise ValueError(f"mask must have shape (B, N) = {(B, N)}, got {tuple(mask.shape)}")
        if self.orbit_dim and (orbits is None or tuple(orbits.shape) != (B, N, self.orbit_dim)):
            got = None if orbits is None else tuple(orbits.shape)
            raise ValueError(
                f"orbits must have shape (B, N, orbit_dim) = {(B, N, self.orbit_dim)}, got {got}"
            )
        if not self.orbit_dim and orbits is not None:
            raise ValueError(f"orbits given but orbit_dim=0; got shape {tuple(orbits.shape)}")
        return elements, features, mask.to(torch.bool)

    def forward(
        self,
        elements: torch.Tensor,
        features: torch.Tensor,
        mask: torch.Tensor | None = None,
        orbits: torch.Tensor | None = None,
    ) -> LiftedPoints:
        """Convolve; returns :class:`LiftedPoints` on the (possibly subsampled) query points.

        ``elements`` ``(B, N, S, *element_shape)`` (from ``lift_points``), ``features``
        ``(B, N, S, C_in)`` or per point ``(B, N, C_in)``, ``mask`` ``(B, N)`` bool, ``orbits``
        ``(B, N, orbit_dim)``. Outputs at padding points are zero.
        """
        elements, features, mask = self._check(elements, features, mask, orbits)
        G = self.group
        B, N, S = elements.shape[:3]
        pts = self._positions(elements, orbits)
        q_idx, q_valid, idx, valid = point_neighborhoods(pts, mask, self.num_neighbors, self.radius,
                                                         self.num_samples)
        u = elements if q_idx is None else gather_points(elements, q_idx)
        v = gather_points(elements, idx)  # (B, M, K, S, *shape)
        fv = gather_points(features, idx)  # (B, M, K, S, C)
        u_inv = G.inverse(u)
        u_b = u_inv.reshape(*u_inv.shape[:3], 1, 1, *u_inv.shape[3:])
        rel = G.product(u_b, v.unsqueeze(2))  # (B, M, S, K, S, *shape)
        coords = G.log(rel) if self.coordinates == "log" else G.embedding(rel)
        coords = coords / self.coordinate_scale
        if self.orbit_dim:
            q_u = orbits if q_idx is None else gather_points(orbits, q_idx)
            q_v = gather_points(orbits, idx)
            shp = coords.shape[:-1]
            coords = torch.cat([coords, q_u[:, :, None, None, None].expand(*shp, -1),
                                q_v[:, :, None, :, None].expand(*shp, -1)], -1)
        coords = coords.to(self.linear.weight.dtype)
        w = valid.to(coords.dtype)
        count = (w.sum(-1) * S).clamp_min(1.0)  # Monte-Carlo normalisation: valid neighbour elements
        if self._chang_pending():
            self._chang(coords, w, count, q_valid)
        kern = self.kernel_net(coords)  # (B, M, S, K, S, h)
        kern = kern * w[:, :, None, :, None, None]
        z = torch.einsum("bmskth,bmkti->bmshi", kern, fv.to(kern.dtype)) / count[:, :, None, None, None]
        y = self.linear(z.flatten(-2)) * q_valid[:, :, None, None].to(kern.dtype)
        return LiftedPoints(u, y, q_valid)
