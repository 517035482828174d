"""The group protocol: groups are small frozen value objects acting on batched tensors.

Every group of the catalogue (and every user-defined group) subclasses :class:`Group`.
Group *elements* are tensors shaped ``(*batch, *element_shape)``; every method broadcasts
over the batch dimensions, follows the device and dtype of its inputs and is
differentiable where that is meaningful. No per-element Python objects exist.

Conventions pinned here and used by the whole package:

* Points of R^d are tensors ``(*batch, d)`` whose coordinates follow the *tensor axis order*
  of the signals they index: for an image ``(B, C, H, W)`` a point is ``(row, col)``.
  ``matrix(g)`` is the ordinary matrix acting on such column vectors, so the SO(2) element
  ``pi/2`` (matrix ``[[0, -1], [1, 0]]``) acts on an image exactly as
  ``torch.rot90(x, 1, dims=(-2, -1))``.
* A group acts on a signal by ``(g . f)(x) = f(g^{-1} x)``.
* ``exp``/``log`` map between Lie-algebra coordinates ``(*batch, dimension)`` and elements.
  Finite subgroups of a Lie group (C_n, D_n) keep the coordinates of the ambient algebra.
"""

from __future__ import annotations

import abc
import math
from collections.abc import Sequence
from typing import ClassVar

import torch

from .._validation import check_finite, check_positive_int, check_trailing_shape, resolve_dtype

__all__ = ["Group", "as_group", "wrap_angle"]


def wrap_angle(theta: torch.Tensor) -> torch.Tensor:
    """Wrap angles to the canonical interval ``[-pi, pi)`` (differentiable almost everywhere).

    Example:
        >>> import torch
        >>> wrap_angle(torch.tensor([3 * torch.pi / 2])).tolist()  # doctest: +ELLIPSIS
        [-1.57...]
    """
    two_pi = 2 * math.pi
    return theta - two_pi * torch.floor((theta + math.pi) / two_pi)


def as_group(group: object, name: str = "group") -> Group:
    """Return ``group`` after checking it is a :class:`Group` (the check of every layer and model
    that takes a group).

    Example:
        >>> from groupconv.groups import CyclicGroup
        >>> as_group(CyclicGroup(4))
        CyclicGroup(4)
        >>> as_group("C4")
        Traceback (most recent call last):
        ...
        TypeError: group must be a groupconv.groups.Group, got str
    """
    if not isinstance(group, Group):
        raise TypeError(f"{name} must be a groupconv.groups.Group, got {type(group).__name__}")
    return group


class Group(abc.ABC):
    """Abstract base of every group in groupconv.

    Subclasses are frozen dataclasses (compared, hashed, pickled and deep-copied by value) and
    set the class or instance attributes below, then implement the abstract methods.

    Attributes:
        name: human-readable name, e.g. ``"SO2"``.
        dimension: dimension of the Lie algebra (0 for a finite group that is not a subgroup of
            a Lie group with its own coordinates; C_n and D_n report 0 but ``log`` returns
            coordinates of so(2)).
        element_shape: trailing shape of one element, e.g. ``(1,)`` for an SO(2) angle.
        is_compact: whether the group is compact (then ``sample`` is Haar).
        is_finite: whether the group is finite (then ``elements``/``index``/``order`` exist).
        space_dim: the d of the space R^d the group acts on through ``matrix``/``act``.
        algebra_dim: length of the coordinates ``log`` returns (``dimension`` for Lie groups;
            finite subgroups of Lie groups use the ambient algebra's).

    Example:
        >>> import torch
        >>> from groupconv.groups import SO2
        >>> G = SO2()
        >>> g = G.exp(torch.tensor([[0.5], [1.0]]))
        >>> G.log(G.product(g, G.inverse(g))).abs().max() < 1e-6
        tensor(True)
    """

    name: ClassVar[str] = "Group"
    element_dtype_kind: ClassVar[str] = "float"  # "float" or "long"

    # -- attributes every subclass provides ----------------------------------------------------
    # Plain attributes, not properties: a class attribute where the value is the same for every
    # instance (``SO2.space_dim = 2``), or set in ``__init__``/``__post_init__`` with
    # :meth:`_set_attributes` where it depends on the constructor's arguments
    # (``Translations(d).space_dim == d``). A subclass may still define them as properties.
    dimension: int
    element_shape: tuple[int, ...]
    is_compact: bool
    is_finite: bool
    space_dim: int

    def _set_attributes(self, **values: object) -> None:
        """Set instance attributes of a frozen (dataclass) group from its ``__init__`` or
        ``__post_init__``: the protocol attributes that depend on the constructor's arguments.
        They are not dataclass fields, so equality, hashing and ``repr`` still use the fields
        only; pickling and copying keep them (the instance ``__dict__``)."""
        for key, value in values.items():
            object.__setattr__(self, key, value)

    # derived attributes: properties with a default, overridden by a class attribute where constant
    @property
    def algebra_dim(self) -> int:
        """Length of the coordinate vectors returned by ``log`` and taken by ``exp``."""
        return self.dimension

    @property
    def embedding_dim(self) -> int:
        """Length of the vectors returned by :meth:`embedding`."""
        return self.algebra_dim

    # -- core algebra -----------------------------------------------------------------------
    @abc.abstractmethod
    def identity(
        self,
        batch_shape: Sequence[int] = (),
        device: torch.device | str | None = None,
        dtype: torch.dtype | None = None,
    ) -> torch.Tensor:
        """The identity element, repeated to ``(*batch_shape, *element_shape)``."""

    @abc.abstractmethod
    def product(self, g: torch.Tensor, h: torch.Tensor) -> torch.Tensor:
        """The group product ``g h`` (batch dimensions broadcast)."""

    @abc.abstractmethod
    def inverse(self, g: torch.Tensor) -> torch.Tensor:
        """The inverse ``g^{-1}``."""

    @abc.abstractmethod
    def exp(self, X: torch.Tensor) -> torch.Tensor:
        """Exponential map from algebra coordinates ``(*batch, algebra_dim)`` to elements."""

    @abc.abstractmethod
    def log(self, g: torch.Tensor) -> torch.Tensor:
        """Logarithm from elements to algebra coordinates ``(*batch, algebra_dim)``."""

    @abc.abstractmethod
    def matrix(self, g: torch.Tensor) -> torch.Tensor:
        """The standard representation ``(*batch, space_dim, space_dim)`` (linear part)."""

    def act(self, g: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        """Act on points ``x`` of shape ``(*batch, space_dim)``: ``matrix(g) @ x`` by default.

        Affine groups (semidirect products with translations) override this.
        """
        g = self.check_element(g)
        x = check_trailing_shape(x, (self.space_dim,), "x", f"points (*batch, {self.space_dim})")
        return (self.matrix(g).to(x.dtype) @ x.unsqueeze(-1)).squeeze(-1)

    def det(self, g: torch.Tensor) -> torch.Tensor:
        """Determinant of the linear part of the action, shape ``(*batch,)`` (for 1/|det| factors)."""
        return torch.linalg.det(self.matrix(g))

    # -- discretisation ---------------------------------------------------------------------
    @abc.abstractmethod
    def sample(
        self,
        n: int,
        generator: torch.Generator | None = None,
        device: torch.device | str | None = None,
        dtype: torch.dtype | None = None,
    ) -> torch.Tensor:
        """``n`` random elements ``(n, *element_shape)``: Haar-distributed for compact groups,
        the documented measure otherwise."""

    @abc.abstractmethod
    def grid(
        self,
        n: int,
        device: torch.device | str | None = None,
        dtype: torch.dtype | None = None,
    ) -> torch.Tensor:
        """A deterministic uniform discretisation ``(n, *element_shape)``; the first element is
        the identity whenever the group's grid contains it."""

    # -- finite groups ------------------------------------------------------------------------
    @property
    def order(self) -> int:
        """Number of elements of a finite group."""
        raise TypeError(f"{self.name} is not a finite group; it has no order")

    def elements(
        self, device: torch.device | str | None = None, dtype: torch.dtype | None = None
    ) -> torch.Tensor:
        """All elements of a finite group ``(order, *element_shape)``, identity first."""
        raise TypeError(f"{self.name} is not a finite group; use grid(n) or sample(n)")

    def index(self, g: torch.Tensor) -> torch.Tensor:
        """Positions of the elements ``g`` in :meth:`elements` (long tensor ``(*batch,)``)."""
        raise TypeError(f"{self.name} is not a finite group; it has no element index")

    # -- coordinates for kernel networks ------------------------------------------------------
    def normalized_log(self, g: torch.Tensor) -> torch.Tensor:
        """Algebra coordinates scaled to ``[-1, 1]`` (compact factors: ``theta / pi``).

        Discontinuous across the cut locus of compact factors; prefer :meth:`embedding`.
        """
        return self.log(g)

    def embedding(self, g: torch.Tensor) -> torch.Tensor:
        """A continuous embedding of elements for kernel networks, ``(*batch, embedding_dim)``.

        Compact periodic factors use ``(cos, sin)``; non-compact ones their normalised log.
        """
        return self.normalized_log(g)

    # -- comparison ---------------------------------------------------------------------------
    def distance(self, g: torch.Tensor, h: torch.Tensor) -> torch.Tensor:
        """A distance between elements, ``(*batch,)``: ``|log(g^{-1} h)|`` by default."""
        return torch.linalg.vector_norm(self.log(self.product(self.inverse(g), h)), dim=-1)

    # -- validation -------------------------------------------------------------------------
    def check_element(self, g: object, name: str = "g") -> torch.Tensor:
        """Check the *shape* (free) of an element tensor and return it."""
        shape_txt = ", ".join(str(s) for s in self.element_shape)
        return check_trailing_shape(
            g, self.element_shape, name, f"{self.name} element (*batch, {shape_txt})"
        )

    def validate(self, g: torch.Tensor, name: str = "g") -> torch.Tensor:
        """Full check of an element tensor: shape, finiteness and membership (a device sync).

        Subclasses extend :meth:`_check_membership`. Raises ``ValueError`` naming ``name``.
        """
        g = self.check_element(g, name)
        check_finite(g, name)
        self._check_membership(g, name)
        return g

    def _check_membership(self, g: torch.Tensor, name: str) -> None:  # noqa: B027 - optional hook
        """Raise ``ValueError`` when ``g`` is not an element of the group (override)."""

    def _check_algebra(self, X: object, name: str = "X") -> torch.Tensor:
        return check_trailing_shape(
            X, (self.algebra_dim,), name, f"{self.name} algebra coordinates (*batch, {self.algebra_dim})"
        )

    @staticmethod
    def _check_n(n: object, name: str = "n") -> int:
        return check_positive_int(n, name)

    @staticmethod
    def _factory_kwargs(
        device: torch.device | str | None, dtype: torch.dtype | None
    ) -> dict[str, object]:
        return {"device": device, "dtype": resolve_dtype(dtype)}

    def __repr__(self) -> str:  # dataclasses override this with their field list
        return f"{type(self).__name__}()"
