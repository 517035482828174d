"""Worked examples of the three routes to a custom group (see docs/custom_groups.md).

``groupconv check custom`` runs the verification kit over these, next to the built-in catalogue:

* ``generators`` -- :func:`rotations_from_generators`: SO(2) as a :class:`MatrixLieGroup` from its
  Lie-algebra generator, ``period=2*pi``;
* ``sympy`` -- :func:`rotations_from_sympy`: the same group from the sympy parameterisation
  ``R(theta)`` (needs sympy);
* ``finite`` -- :class:`QuarterTurns`: a hand-written finite :class:`Group` subclass, the four
  rotations by multiples of 90 degrees as integer 2 x 2 matrices.

Example:
    >>> import torch
    >>> G = QuarterTurns()
    >>> G.elements()[1].tolist(), G.index(G.elements()).tolist()
    ([[0.0, -1.0], [1.0, 0.0]], [0, 1, 2, 3])
    >>> sorted(custom_catalogue())[:2]
    ['custom:finite', 'custom:generators']
"""

from __future__ import annotations

import importlib.util
import math
from collections.abc import Sequence
from dataclasses import dataclass

import torch

from .base import Group
from .matrix import MatrixLieGroup

__all__ = ["QuarterTurns", "custom_catalogue", "rotations_from_generators", "rotations_from_sympy"]

_J = ((0.0, -1.0), (1.0, 0.0))


def rotations_from_generators() -> MatrixLieGroup:
    """SO(2) from its generator ``[[0, -1], [1, 0]]`` with ``period=2*pi`` (route 1).

    Example:
        >>> rotations_from_generators().grid(4).shape
        torch.Size([4, 2, 2])
    """
    return MatrixLieGroup(torch.tensor([_J]), period=2 * math.pi, name="Rot(generators)")


def rotations_from_sympy() -> MatrixLieGroup:
    """SO(2) from the sympy parameterisation ``R(theta)`` (route 2; needs sympy).

    Example:
        >>> rotations_from_sympy().generator_tensor().tolist()
        [[[0.0, -1.0], [1.0, 0.0]]]
    """
    import sympy as sp

    from .symbolic import lie_group_from_sympy

    t = sp.Symbol("theta")
    R = sp.Matrix([[sp.cos(t), -sp.sin(t)], [sp.sin(t), sp.cos(t)]])
    return lie_group_from_sympy([t], R, period=2 * math.pi, name="Rot(sympy)")


@dataclass(frozen=True)
class QuarterTurns(Group):
    """The four rotations by multiples of 90 degrees as 2 x 2 matrices, written by hand (route 3).

    Elements are ``(*batch, 2, 2)`` matrices with entries in ``{-1, 0, 1}``; ``log`` returns the
    so(2) angle (``algebra_dim = 1``) and ``embedding`` its ``(cos, sin)``, so kernel networks work.

    Example:
        >>> import torch
        >>> G = QuarterTurns()
        >>> g = G.elements()[1]
        >>> G.product(g, g).tolist(), G.log(g).tolist()  # doctest: +ELLIPSIS
        ([[-1.0, 0.0], [0.0, -1.0]], [1.5707...])
    """

    name = "QuarterTurns"

    dimension = 0
    algebra_dim = 1
    embedding_dim = 2
    element_shape = (2, 2)
    is_compact = True
    is_finite = True
    space_dim = 2

    @property
    def order(self) -> int:
        return 4

    def identity(
        self,
        batch_shape: Sequence[int] = (),
        device: torch.device | str | None = None,
        dtype: torch.dtype | None = None,
    ) -> torch.Tensor:
        eye = torch.eye(2, **self._factory_kwargs(device, dtype))
        return eye.expand(*tuple(batch_shape), 2, 2).clone()

    def product(self, g: torch.Tensor, h: torch.Tensor) -> torch.Tensor:
        return self.check_element(g, "g") @ self.check_element(h, "h")

    def inverse(self, g: torch.Tensor) -> torch.Tensor:
        return self.check_element(g).transpose(-1, -2).clone()

    @staticmethod
    def _angle(g: torch.Tensor) -> torch.Tensor:
        return torch.atan2(g[..., 1, 0], g[..., 0, 0])

    def exp(self, X: torch.Tensor) -> torch.Tensor:
        X = self._check_algebra(X)
        k = torch.round(X[..., 0] / (math.pi / 2))
        if bool(((X[..., 0] - k * math.pi / 2).abs() > 1e-4).any()):
            raise ValueError("X must hold multiples of pi/2 (angles of QuarterTurns)")
        c = torch.round(torch.cos(k * math.pi / 2)) + 0.0  # + 0.0: no negative zeros
        s = torch.round(torch.sin(k * math.pi / 2)) + 0.0
        return torch.stack([torch.stack([c, -s], -1), torch.stack([s, c], -1)], -2)

    def log(self, g: torch.Tensor) -> torch.Tensor:
        t = self._angle(self.check_element(g))
        return (t - 2 * math.pi * torch.floor((t + math.pi) / (2 * math.pi))).unsqueeze(-1)

    def matrix(self, g: torch.Tensor) -> torch.Tensor:
        return self.check_element(g)

    def elements(
        self, device: torch.device | str | None = None, dtype: torch.dtype | None = None
    ) -> torch.Tensor:
        kw = self._factory_kwargs(device, dtype)
        return self.exp((torch.arange(4, **kw) * (math.pi / 2))[:, None])

    def index(self, g: torch.Tensor) -> torch.Tensor:
        k = torch.round(self._angle(self.check_element(g)) / (math.pi / 2)).long()
        return torch.remainder(k, 4)

    def _check_membership(self, g: torch.Tensor, name: str) -> None:
        eye = torch.eye(2, dtype=g.dtype, device=g.device)
        ok = (g - torch.round(g)).abs().amax((-2, -1)) < 1e-5
        ok = ok & ((g @ g.transpose(-1, -2) - eye).abs().amax((-2, -1)) < 1e-5)
        ok = ok & (torch.linalg.det(g) > 0)
        if not bool(ok.all()):
            raise ValueError(f"{name} must hold 90-degree rotation matrices (QuarterTurns elements)")

    def sample(
        self,
        n: int,
        generator: torch.Generator | None = None,
        device: torch.device | str | None = None,
        dtype: torch.dtype | None = None,
    ) -> torch.Tensor:
        k = torch.randint(4, (self._check_n(n),), generator=generator, device=generator.device
                          if generator is not None else None)
        return self.elements(device, dtype)[k.to(device)]

    def grid(
        self,
        n: int,
        device: torch.device | str | None = None,
        dtype: torch.dtype | None = None,
    ) -> torch.Tensor:
        n = self._check_n(n)
        if n not in (1, 4):
            raise ValueError(f"n must be 4 (all elements) or 1 (identity) for QuarterTurns.grid, got {n}")
        return self.elements(device, dtype)[:n]

    def distance(self, g: torch.Tensor, h: torch.Tensor) -> torch.Tensor:
        return torch.linalg.matrix_norm(self.check_element(g) - self.check_element(h))

    def embedding(self, g: torch.Tensor) -> torch.Tensor:
        t = self._angle(self.check_element(g))
        return torch.stack([torch.cos(t), torch.sin(t)], -1)


def custom_catalogue() -> dict[str, Group]:
    """The custom-group routes keyed ``custom:<route>`` (the sympy route only with sympy)."""
    out: dict[str, Group] = {"custom:generators": rotations_from_generators()}
    if importlib.util.find_spec("sympy") is not None:
        out["custom:sympy"] = rotations_from_sympy()
    out["custom:finite"] = QuarterTurns()
    return out
