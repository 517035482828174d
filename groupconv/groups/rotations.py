"""Planar rotation and reflection groups: SO(2), C_n, O(2) and D_n.

SO(2) and C_n elements are angles, tensors ``(*batch, 1)`` in the canonical interval
``[-pi, pi)``. The matrix of ``theta`` is ``[[cos, -sin], [sin, cos]]`` acting on ``(row, col)``
points, so ``theta = pi/2`` rotates an image like ``torch.rot90(x, 1, dims=(-2, -1))``.

O(2) and D_n elements are pairs ``(theta, m)``, tensors ``(*batch, 2)`` with ``m`` in
``{+1., -1.}`` stored as a float. ``(theta, m)`` is ``R(theta) @ diag(1, m)`` (mirror first,
then rotate), so ``(0, -1)`` acts on an image like ``torch.flip(x, dims=(-1,))``, and
``(t1, m1)(t2, m2) = (t1 + m1 t2, m1 m2)``.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import torch

from .._validation import check_positive_int
from .base import Group, wrap_angle

__all__ = ["SO2", "CyclicGroup", "O2", "DihedralGroup", "rotation_matrix_2d"]


def rotation_matrix_2d(theta: torch.Tensor) -> torch.Tensor:
    """``[[cos, -sin], [sin, cos]]`` for angles ``(*batch,)`` -> ``(*batch, 2, 2)``."""
    c, s = torch.cos(theta), torch.sin(theta)
    return torch.stack([torch.stack([c, -s], -1), torch.stack([s, c], -1)], -2)


class _AngleGroup(Group):
    """Shared maths of groups whose elements are angles."""

    element_shape = (1,)
    is_compact = True
    space_dim = 2
    algebra_dim = 1
    embedding_dim = 2

    def identity(
        self,
        batch_shape: Sequence[int] = (),
        device: torch.device | str | None = None,
        dtype: torch.dtype | None = None,
    ) -> torch.Tensor:
        return torch.zeros(*tuple(batch_shape), 1, **self._factory_kwargs(device, dtype))

    def product(self, g: torch.Tensor, h: torch.Tensor) -> torch.Tensor:
        g, h = self.check_element(g, "g"), self.check_element(h, "h")
        return wrap_angle(g + h)

    def inverse(self, g: torch.Tensor) -> torch.Tensor:
        return wrap_angle(-self.check_element(g))

    def log(self, g: torch.Tensor) -> torch.Tensor:
        return wrap_angle(self.check_element(g))

    def matrix(self, g: torch.Tensor) -> torch.Tensor:
        return rotation_matrix_2d(self.check_element(g)[..., 0])

    def det(self, g: torch.Tensor) -> torch.Tensor:
        g = self.check_element(g)
        return torch.ones_like(g[..., 0])

    def normalized_log(self, g: torch.Tensor) -> torch.Tensor:
        return self.log(g) / math.pi

    def embedding(self, g: torch.Tensor) -> torch.Tensor:
        g = self.check_element(g)
        return torch.cat([torch.cos(g), torch.sin(g)], dim=-1)

    def distance(self, g: torch.Tensor, h: torch.Tensor) -> torch.Tensor:
        return wrap_angle(self.check_element(h, "h") - self.check_element(g, "g"))[..., 0].abs()


@dataclass(frozen=True)
class SO2(_AngleGroup):
    """The rotation group SO(2), parameterised by the angle ``theta in [-pi, pi)``.

    ``sample`` is Haar (uniform angle); ``grid(n)`` is ``2 pi k / n``, identity first.

    Example:
        >>> import torch
        >>> G = SO2()
        >>> (G.matrix(torch.tensor([torch.pi / 2])).round() + 0.0).tolist()  # + 0.0: no -0.0
        [[0.0, -1.0], [1.0, 0.0]]
        >>> G.grid(4).squeeze(-1).tolist()  # doctest: +ELLIPSIS
        [0.0, 1.57..., -3.14..., -1.57...]
    """

    name = "SO2"

    dimension = 1
    is_finite = False

    def exp(self, X: torch.Tensor) -> torch.Tensor:
        return wrap_angle(self._check_algebra(X))

    def sample(
        self,
        n: int,
        generator: torch.Generator | None = None,
        device: torch.device | str | None = None,
        dtype: torch.dtype | None = None,
    ) -> torch.Tensor:
        n = self._check_n(n)
        u = torch.rand(n, 1, generator=generator, **self._factory_kwargs(device, dtype))
        return wrap_angle(2 * math.pi * u - math.pi)

    def grid(
        self,
        n: int,
        device: torch.device | str | None = None,
        dtype: torch.dtype | None = None,
    ) -> torch.Tensor:
        n = self._check_n(n)
        k = torch.arange(n, **self._factory_kwargs(device, dtype))
        return wrap_angle(2 * math.pi * k / n).unsqueeze(-1)


@dataclass(frozen=True)
class CyclicGroup(_AngleGroup):
    """The cyclic group C_n of rotations by multiples of ``2 pi / n`` (a subgroup of SO(2)).

    Elements are angles like SO(2)'s, so C_n elements can be used wherever SO(2) elements
    are; ``elements()[k]`` is the rotation by ``2 pi k / n`` and ``index`` inverts that.
    ``log`` returns so(2) coordinates (the angle); ``exp`` accepts only multiples of
    ``2 pi / n``.

    Example:
        >>> import torch
        >>> C4 = CyclicGroup(4)
        >>> C4.index(C4.product(C4.elements()[1], C4.elements()[3])).item()
        0
    """

    n: int = 4
    name = "CyclicGroup"

    def __post_init__(self) -> None:
        object.__setattr__(self, "n", check_positive_int(self.n, "n"))

    dimension = 0
    is_finite = True

    @property
    def order(self) -> int:
        return self.n

    def _lattice(self, theta: torch.Tensor) -> torch.Tensor:
        """Real-valued lattice coordinate ``theta n / (2 pi)``."""
        return theta * (self.n / (2 * math.pi))

    def _check_membership(self, g: torch.Tensor, name: str) -> None:
        k = self._lattice(g)
        tol = 1e-3 if g.dtype in (torch.float16, torch.bfloat16) else 1e-4
        off = (k - torch.round(k)).abs()
        if bool((off > tol).any()):
            worst = float(off.max()) * 2 * math.pi / self.n
            raise ValueError(
                f"{name} must hold multiples of 2*pi/{self.n} (elements of C{self.n}), "
                f"got an angle {worst:.3g} rad away from the lattice"
            )

    def exp(self, X: torch.Tensor) -> torch.Tensor:
        X = self._check_algebra(X)
        self.validate(wrap_angle(X), "X")
        return wrap_angle(X)

    def elements(
        self, device: torch.device | str | None = None, dtype: torch.dtype | None = None
    ) -> torch.Tensor:
        k = torch.arange(self.n, **self._factory_kwargs(device, dtype))
        return wrap_angle(2 * math.pi * k / self.n).unsqueeze(-1)

    def index(self, g: torch.Tensor) -> torch.Tensor:
        g = self.validate(g)
        return torch.remainder(torch.round(self._lattice(g[..., 0])).long(), self.n)

    def sample(
        self,
        n: int,
        generator: torch.Generator | None = None,
        device: torch.device | str | None = None,
        dtype: torch.dtype | None = None,
    ) -> torch.Tensor:
        n = self._check_n(n)
        k = torch.randint(self.n, (n,), generator=generator, device=device)
        return self.elements(device=device, dtype=dtype)[k]

    def grid(
        self,
        n: int,
        device: torch.device | str | None = None,
        dtype: torch.dtype | None = None,
    ) -> torch.Tensor:
        """The subgroup C_n' for ``n`` dividing the order (``grid(order)`` = ``elements()``)."""
        n = self._check_n(n)
        if self.n % n != 0:
            raise ValueError(f"n must divide the order {self.n} of C{self.n}, got n={n}")
        return self.elements(device=device, dtype=dtype)[:: self.n // n]

    def __repr__(self) -> str:
        return f"CyclicGroup({self.n})"


def _mirror_tol(dtype: torch.dtype) -> float:
    return 1e-3 if dtype in (torch.float16, torch.bfloat16) else 1e-4


class _MirrorGroup(Group):
    """Shared maths of groups whose elements are ``(theta, m)`` pairs (O(2) and D_n)."""

    element_shape = (2,)
    is_compact = True
    space_dim = 2
    algebra_dim = 1
    embedding_dim = 3

    def identity(
        self,
        batch_shape: Sequence[int] = (),
        device: torch.device | str | None = None,
        dtype: torch.dtype | None = None,
    ) -> torch.Tensor:
        e = torch.tensor([0.0, 1.0], **self._factory_kwargs(device, dtype))
        return e.expand(*tuple(batch_shape), 2).clone()

    def product(self, g: torch.Tensor, h: torch.Tensor) -> torch.Tensor:
        g, h = self.check_element(g, "g"), self.check_element(h, "h")
        t1, m1 = g[..., 0], g[..., 1]
        t2, m2 = h[..., 0], h[..., 1]
        return torch.stack([wrap_angle(t1 + m1 * t2), m1 * m2], dim=-1)

    def inverse(self, g: torch.Tensor) -> torch.Tensor:
        g = self.check_element(g)
        t, m = g[..., 0], g[..., 1]
        return torch.stack([wrap_angle(-m * t), m], dim=-1)

    def log(self, g: torch.Tensor) -> torch.Tensor:
        """The so(2) coordinate (angle) of the rotation part; the mirror bit is dropped.

        The mirror bit labels the discrete component of the group and has no Lie-algebra
        coordinate; :meth:`embedding` keeps it.
        """
        return wrap_angle(self.check_element(g)[..., :1])

    def matrix(self, g: torch.Tensor) -> torch.Tensor:
        g = self.check_element(g)
        c, s, m = torch.cos(g[..., 0]), torch.sin(g[..., 0]), g[..., 1]
        return torch.stack([torch.stack([c, -s * m], -1), torch.stack([s, c * m], -1)], -2)

    def det(self, g: torch.Tensor) -> torch.Tensor:
        return self.check_element(g)[..., 1].clone()

    def normalized_log(self, g: torch.Tensor) -> torch.Tensor:
        """``theta / pi`` of the rotation part (length ``algebra_dim`` = 1); see :meth:`embedding`."""
        return self.log(g) / math.pi

    def embedding(self, g: torch.Tensor) -> torch.Tensor:
        """``(cos theta, sin theta, m)``: continuous on each component and separates them."""
        g = self.check_element(g)
        return torch.stack([torch.cos(g[..., 0]), torch.sin(g[..., 0]), g[..., 1]], dim=-1)

    def distance(self, g: torch.Tensor, h: torch.Tensor) -> torch.Tensor:
        """Left-invariant metric ``|angle(g^-1 h)| + pi * [g, h in different components]``."""
        d = self.product(self.inverse(g), h)
        return d[..., 0].abs() + (math.pi / 2) * (1 - d[..., 1])

    def _check_mirror(self, g: torch.Tensor, name: str) -> None:
        m = g[..., 1]
        tol = _mirror_tol(g.dtype)
        bad = ((m - 1).abs() > tol) & ((m + 1).abs() > tol)
        if bool(bad.any()):
            worst = m[bad].flatten()[0].item()
            raise ValueError(
                f"{name}[..., 1] (the mirror bit m) must be +1 or -1 for a {self.name} element, "
                f"got {worst:.4g}"
            )

    def _mirror_grid(self, n_rot: int, device, dtype) -> torch.Tensor:
        """``n_rot`` rotations (m=+1), then the same ``n_rot`` rotations with m=-1."""
        kw = self._factory_kwargs(device, dtype)
        k = torch.arange(n_rot, **kw)
        theta = wrap_angle(2 * math.pi * k / n_rot).repeat(2)
        m = torch.cat([torch.ones(n_rot, **kw), -torch.ones(n_rot, **kw)])
        return torch.stack([theta, m], dim=-1)


@dataclass(frozen=True)
class O2(_MirrorGroup):
    """The orthogonal group O(2): rotations and reflections of the plane.

    An element is ``(theta, m)`` (shape ``(*batch, 2)``, ``m`` in ``{+1., -1.}``) standing for
    ``R(theta) @ diag(1, m)``. ``exp``/``log`` use the so(2) coordinate of the rotation part
    (``dimension`` = 1): ``exp`` maps into the identity component (``m = +1``) and ``log`` drops
    the mirror bit, which labels the discrete component. ``embedding`` is
    ``(cos theta, sin theta, m)``. ``sample`` is Haar (uniform angle, fair coin for ``m``);
    ``grid(n)`` (``n`` even, or 1) holds ``n/2`` rotations ``2 pi k / (n/2)`` with ``m=+1``
    followed by the same rotations with ``m=-1`` (the elements of ``D_{n/2}``, identity first).

    Example:
        >>> import torch
        >>> G = O2()
        >>> G.matrix(torch.tensor([0.0, -1.0])).tolist()
        [[1.0, 0.0], [0.0, -1.0]]
        >>> G.product(torch.tensor([1.0, -1.0]), torch.tensor([0.5, 1.0])).tolist()
        [0.5, -1.0]
    """

    name = "O2"

    dimension = 1
    is_finite = False

    def _check_membership(self, g: torch.Tensor, name: str) -> None:
        self._check_mirror(g, name)

    def exp(self, X: torch.Tensor) -> torch.Tensor:
        X = self._check_algebra(X)
        return torch.stack([wrap_angle(X[..., 0]), torch.ones_like(X[..., 0])], dim=-1)

    def sample(
        self,
        n: int,
        generator: torch.Generator | None = None,
        device: torch.device | str | None = None,
        dtype: torch.dtype | None = None,
    ) -> torch.Tensor:
        n = self._check_n(n)
        kw = self._factory_kwargs(device, dtype)
        u = torch.rand(n, generator=generator, **kw)
        coin = torch.randint(2, (n,), generator=generator, device=device).to(kw["dtype"])
        return torch.stack([wrap_angle(2 * math.pi * u - math.pi), 1 - 2 * coin], dim=-1)

    def grid(
        self,
        n: int,
        device: torch.device | str | None = None,
        dtype: torch.dtype | None = None,
    ) -> torch.Tensor:
        """``n/2`` rotations then their mirrored copies (``n`` even); ``grid(1)`` is the identity."""
        n = self._check_n(n)
        if n == 1:
            return self.identity((1,), device=device, dtype=dtype)
        if n % 2:
            raise ValueError(f"n must be even (n/2 rotations x 2 mirrors) or 1 for O2.grid, got n={n}")
        return self._mirror_grid(n // 2, device, dtype)


@dataclass(frozen=True)
class DihedralGroup(_MirrorGroup):
    """The dihedral group D_n (order ``2n``): the symmetries of a regular n-gon, inside O(2).

    Elements are O(2) elements ``(theta, m)`` with ``theta`` a multiple of ``2 pi / n``.
    ``elements()`` lists the n rotations ``(2 pi k / n, +1)``, ``k = 0..n-1``, then the n
    mirrored ones ``(2 pi k / n, -1)``; ``index`` inverts that (``k + n * [m = -1]``).
    ``log`` returns the so(2) coordinate of the rotation part; ``exp`` accepts only multiples of
    ``2 pi / n`` and returns rotations. ``D_4`` acts exactly on square images: ``(pi/2, +1)``
    is ``torch.rot90`` and ``(0, -1)`` is ``torch.flip(x, dims=(-1,))``.

    Example:
        >>> import torch
        >>> D4 = DihedralGroup(4)
        >>> D4.order, D4.elements()[5].tolist()
        (8, [1.5707963705062866, -1.0])
        >>> D4.index(D4.product(D4.elements()[5], D4.elements()[5])).item()
        0
    """

    n: int = 4
    name = "DihedralGroup"

    def __post_init__(self) -> None:
        object.__setattr__(self, "n", check_positive_int(self.n, "n"))

    dimension = 0
    is_finite = True

    @property
    def order(self) -> int:
        return 2 * self.n

    def _lattice(self, theta: torch.Tensor) -> torch.Tensor:
        return theta * (self.n / (2 * math.pi))

    def _check_membership(self, g: torch.Tensor, name: str) -> None:
        self._check_mirror(g, name)
        k = self._lattice(g[..., 0])
        off = (k - torch.round(k)).abs()
        if bool((off > _mirror_tol(g.dtype)).any()):
            worst = float(off.max()) * 2 * math.pi / self.n
            raise ValueError(
                f"{name}[..., 0] must hold multiples of 2*pi/{self.n} (elements of D{self.n}), "
                f"got an angle {worst:.3g} rad away from the lattice"
            )

    def exp(self, X: torch.Tensor) -> torch.Tensor:
        X = self._check_algebra(X)
        g = torch.stack([wrap_angle(X[..., 0]), torch.ones_like(X[..., 0])], dim=-1)
        return self.validate(g, "X")

    def elements(
        self, device: torch.device | str | None = None, dtype: torch.dtype | None = None
    ) -> torch.Tensor:
        return self._mirror_grid(self.n, device, dtype)

    def index(self, g: torch.Tensor) -> torch.Tensor:
        g = self.validate(g)
        k = torch.remainder(torch.round(self._lattice(g[..., 0])).long(), self.n)
        return k + self.n * (g[..., 1] < 0).long()

    def sample(
        self,
        n: int,
        generator: torch.Generator | None = None,
        device: torch.device | str | None = None,
        dtype: torch.dtype | None = None,
    ) -> torch.Tensor:
        n = self._check_n(n)
        k = torch.randint(self.order, (n,), generator=generator, device=device)
        return self.elements(device=device, dtype=dtype)[k]

    def grid(
        self,
        n: int,
        device: torch.device | str | None = None,
        dtype: torch.dtype | None = None,
    ) -> torch.Tensor:
        """The subgroup D_{n/2} (``n`` even, ``n/2`` dividing the rotation order), or the identity
        for ``n = 1``; ``grid(order)`` is ``elements()``."""
        n = self._check_n(n)
        if n == 1:
            return self.identity((1,), device=device, dtype=dtype)
        if n % 2 or self.n % (n // 2):
            raise ValueError(
                f"n must be 1 or twice a divisor of {self.n} (a subgroup of D{self.n}), got n={n}"
            )
        return self._mirror_grid(n // 2, device, dtype)

    def __repr__(self) -> str:
        return f"DihedralGroup({self.n})"
