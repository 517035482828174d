"""Homogeneous spaces: where group elements act on points.

A :class:`HomogeneousSpace` names a set of points (coordinates ``(*batch, dim)``), how a group
acts on them and how to draw random points. Spaces are frozen dataclasses (value objects).

* :class:`EuclideanSpace` ``(d)`` -- R^d, acted on by ``group.act`` (linear or affine groups).
* :class:`Circle` -- S^1 as unit 2-vectors, acted on by the 2x2 ``matrix`` (SO2, C_n, O2, D_n).
* :class:`Sphere2` -- S^2 as unit 3-vectors, acted on by the 3x3 ``matrix`` (SO3, octahedral).
* :class:`GroupAsSpace` ``(G)`` -- G acting on itself by left multiplication (points are
  elements, ``dim = prod(element_shape)``).

Example:
    >>> import torch
    >>> from groupconv.groups import SO2
    >>> S = Circle()
    >>> (S.act(SO2(), torch.tensor([torch.pi / 2]), torch.tensor([1.0, 0.0])).round() + 0.0).tolist()
    [0.0, 1.0]
"""

from __future__ import annotations

import abc
import math
from dataclasses import dataclass

import torch

from .._validation import check_positive_int, check_tensor, check_trailing_shape, resolve_dtype
from ..groups.base import Group

__all__ = ["HomogeneousSpace", "EuclideanSpace", "Circle", "Sphere2", "GroupAsSpace"]


class HomogeneousSpace(abc.ABC):
    """Points ``(*batch, dim)`` acted on by a group."""

    name = "Space"

    @property
    @abc.abstractmethod
    def dim(self) -> int:
        """Length of a point's coordinate vector."""

    @abc.abstractmethod
    def act(self, group: Group, g: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        """``g . x`` for elements ``g`` ``(*batch, *element_shape)`` and points ``x`` (broadcast)."""

    @abc.abstractmethod
    def random_points(
        self,
        n: int,
        generator: torch.Generator | None = None,
        device: torch.device | str | None = None,
        dtype: torch.dtype | None = None,
    ) -> torch.Tensor:
        """``n`` random points ``(n, dim)``."""

    def contains(self, x: torch.Tensor, atol: float = 1e-5) -> torch.Tensor:
        """Boolean ``(*batch,)``: whether each point lies in the space (finite coordinates)."""
        x = self.check(x)
        return torch.isfinite(x).all(dim=-1)

    def check(self, x: object, name: str = "x") -> torch.Tensor:
        """Check the trailing shape of a point tensor (free) and return it."""
        return check_trailing_shape(x, (self.dim,), name, f"points of {self.name} (*batch, {self.dim})")

    def validate(self, x: object, name: str = "x", atol: float = 1e-5) -> torch.Tensor:
        """Shape check plus membership (a device sync); ``ValueError`` naming ``name``."""
        x = self.check(x, name)
        ok = self.contains(x, atol)
        if not bool(ok.all()):
            bad = (~ok).nonzero()[:3].tolist()
            raise ValueError(f"{name} must hold points of {self.name}, got points off it at {bad}")
        return x

    @staticmethod
    def _check_space_dim(group: Group, d: int, what: str) -> None:
        if group.space_dim != d:
            raise ValueError(f"{group.name} acts on R^{group.space_dim}, not on {what} (needs R^{d})")


@dataclass(frozen=True)
class EuclideanSpace(HomogeneousSpace):
    """R^d; a group acts by ``group.act`` (``group.space_dim == d``). Random points: N(0, I).

    Example:
        >>> import torch
        >>> from groupconv.groups.euclidean import Translations
        >>> EuclideanSpace(2).act(Translations(2), torch.tensor([1.0, 0.0]), torch.zeros(2)).tolist()
        [1.0, 0.0]
    """

    d: int = 2
    name = "EuclideanSpace"

    def __post_init__(self) -> None:
        object.__setattr__(self, "d", check_positive_int(self.d, "d"))

    @property
    def dim(self) -> int:
        return self.d

    def act(self, group: Group, g: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        self._check_space_dim(group, self.d, f"R^{self.d}")
        return group.act(g, self.check(x))

    def random_points(self, n, generator=None, device=None, dtype=None) -> torch.Tensor:
        n = check_positive_int(n, "n")
        return torch.randn(n, self.d, generator=generator, device=device, dtype=resolve_dtype(dtype))


class _UnitSphere(HomogeneousSpace):
    """Unit vectors of R^dim, acted on by the ``(dim, dim)`` orthogonal ``matrix``."""

    def act(self, group: Group, g: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        self._check_space_dim(group, self.dim, self.name)
        x = self.check(x)
        M = group.matrix(g).to(x.dtype)
        return (M @ x.unsqueeze(-1)).squeeze(-1)

    def random_points(self, n, generator=None, device=None, dtype=None) -> torch.Tensor:
        """Uniform on the sphere (normalised Gaussians)."""
        n = check_positive_int(n, "n")
        v = torch.randn(n, self.dim, generator=generator, device=device, dtype=resolve_dtype(dtype))
        return v / torch.linalg.vector_norm(v, dim=-1, keepdim=True).clamp_min(1e-12)

    def contains(self, x: torch.Tensor, atol: float = 1e-5) -> torch.Tensor:
        x = self.check(x)
        return (torch.linalg.vector_norm(x, dim=-1) - 1).abs() <= atol

    def project(self, x: torch.Tensor) -> torch.Tensor:
        """Normalise points back onto the sphere (after rounding drift)."""
        x = self.check(x)
        return x / torch.linalg.vector_norm(x, dim=-1, keepdim=True).clamp_min(1e-12)

    def angle(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        """Geodesic distance ``(*batch,)`` between unit vectors."""
        x, y = self.check(x, "x"), self.check(y, "y")
        c = (x * y).sum(-1)
        s = torch.linalg.vector_norm(torch.linalg.cross(x, y) if self.dim == 3 else
                                     (x[..., :1] * y[..., 1:] - x[..., 1:] * y[..., :1]), dim=-1)
        return torch.atan2(s, c)


@dataclass(frozen=True)
class Circle(_UnitSphere):
    """S^1 as unit 2-vectors ``(*batch, 2)`` in ``(row, col)`` order; SO2/C_n/O2/D_n act by matrix.

    :meth:`from_angle` / :meth:`to_angle` convert to the angle convention of SO2
    (``[cos, sin]``, so that the SO2 element ``a`` maps angle ``b`` to ``a + b``).

    Example:
        >>> import torch
        >>> from groupconv.groups import SO2
        >>> S = Circle()
        >>> y = S.act(SO2(), torch.tensor([0.5]), S.from_angle(torch.tensor(0.25)))
        >>> round(float(S.to_angle(y)), 6)
        0.75
    """

    name = "Circle"

    @property
    def dim(self) -> int:
        return 2

    @staticmethod
    def from_angle(theta: torch.Tensor) -> torch.Tensor:
        theta = check_tensor(theta, "theta")
        return torch.stack([torch.cos(theta), torch.sin(theta)], dim=-1)

    def to_angle(self, x: torch.Tensor) -> torch.Tensor:
        x = self.check(x)
        return torch.atan2(x[..., 1], x[..., 0])


@dataclass(frozen=True)
class Sphere2(_UnitSphere):
    """S^2 as unit 3-vectors ``(*batch, 3)``; SO3 and its finite subgroups act by matrix.

    Example:
        >>> import torch
        >>> S = Sphere2()
        >>> p = S.random_points(5, torch.Generator().manual_seed(0))
        >>> bool(S.contains(p).all())
        True
    """

    name = "Sphere2"

    @property
    def dim(self) -> int:
        return 3


@dataclass(frozen=True)
class GroupAsSpace(HomogeneousSpace):
    """A group acting on itself by left multiplication: points are elements, flattened to
    ``(*batch, dim)`` with ``dim = prod(element_shape)`` (e.g. SO3 matrices become 9-vectors).

    ``act(group, g, x) = product(g, x)``; ``group`` must equal the space's own group ``G``.
    ``random_points`` is ``G.sample``; ``contains`` runs ``G.validate`` per point.

    Example:
        >>> import torch
        >>> from groupconv.groups import SO2
        >>> X = GroupAsSpace(SO2())
        >>> X.act(SO2(), torch.tensor([0.5]), torch.tensor([[0.25]])).tolist()
        [[0.75]]
    """

    G: Group
    name = "GroupAsSpace"

    @property
    def dim(self) -> int:
        return math.prod(self.G.element_shape)

    def _unflatten(self, x: torch.Tensor) -> torch.Tensor:
        return x.reshape(*x.shape[:-1], *self.G.element_shape)

    def _flatten(self, g: torch.Tensor) -> torch.Tensor:
        k = len(self.G.element_shape)
        return g.reshape(*g.shape[: g.dim() - k], self.dim)

    def act(self, group: Group, g: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        if group != self.G:
            raise ValueError(f"group must be the space's group {self.G!r}, got {group!r}")
        x = self.check(x)
        return self._flatten(self.G.product(self.G.check_element(g), self._unflatten(x)))

    def random_points(self, n, generator=None, device=None, dtype=None) -> torch.Tensor:
        return self._flatten(self.G.sample(n, generator=generator, device=device, dtype=dtype))

    def contains(self, x: torch.Tensor, atol: float = 1e-5) -> torch.Tensor:
        x = self.check(x)
        flat = x.reshape(-1, self.dim)
        ok = []
        for p in flat:
            try:
                self.G.validate(self._unflatten(p))
                ok.append(True)
            except ValueError:
                ok.append(False)
        return torch.tensor(ok, dtype=torch.bool, device=x.device).reshape(x.shape[:-1])
