"""Planar rotation groups: SO(2) and its finite subgroups C_n.

Elements are angles, tensors ``(*batch, 1)`` in the canonical interval ``[-pi, pi)``.
The matrix of ``theta`` is ``[[cos, -sin], [sin, cos]]`` acting on ``(row, col)`` points, so
``theta = pi/2`` rotates an image like ``torch.rot90(x, 1, dims=(-2, -1))``.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import torch

from .._validation import check_positive_int
from .base import Group, wrap_angle

__all__ = ["SO2", "CyclicGroup", "rotation_matrix_2d"]


def rotation_matrix_2d(theta: torch.Tensor) -> torch.Tensor:
    """``[[cos, -sin], [sin, cos]]`` for angles ``(*batch,)`` -> ``(*batch, 2, 2)``."""
    c, s = torch.cos(theta), torch.sin(theta)
    return torch.stack([torch.stack([c, -s], -1), torch.stack([s, c], -1)], -2)


class _AngleGroup(Group):
    """Shared maths of groups whose elements are angles."""

    @property
    def element_shape(self) -> tuple[int, ...]:
        return (1,)

    @property
    def is_compact(self) -> bool:
        return True

    @property
    def space_dim(self) -> int:
        return 2

    @property
    def algebra_dim(self) -> int:
        return 1

    @property
    def embedding_dim(self) -> int:
        return 2

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
        >>> G.matrix(torch.tensor([torch.pi / 2])).round().tolist()
        [[0.0, -1.0], [1.0, 0.0]]
        >>> G.grid(4).squeeze(-1).tolist()  # doctest: +ELLIPSIS
        [0.0, 1.57..., -3.14..., -1.57...]
    """

    name = "SO2"

    @property
    def dimension(self) -> int:
        return 1

    @property
    def is_finite(self) -> bool:
        return False

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

    @property
    def dimension(self) -> int:
        return 0

    @property
    def is_finite(self) -> bool:
        return True

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
