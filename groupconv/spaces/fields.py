"""Fields: how a group element transforms a sampled signal.

Every equivariant module declares an ``in_field`` and an ``out_field``; the verification kit
(:mod:`groupconv.testing`) uses them to transform inputs and outputs. A :class:`Field` knows

* ``group`` -- the group whose elements :meth:`Field.transform` accepts;
* ``transform(x, g, order=None)`` -- ``g . x`` for ONE element ``g`` (``group.element_shape``)
  and a batched tensor ``x``;
* ``is_exact(g)`` -- whether that transform is an exact permutation/reindexing;
* ``exact_elements()`` -- elements known to act exactly and invertibly (identity first);
* ``valid_mask(x_shape)`` -- where approximate transforms are trustworthy (``None``: everywhere);
* ``check(x, name)`` -- layout validation with a clear error.

This module holds the protocol and the fields that need no resampling: :class:`TrivialField`
(invariant outputs), :class:`PointCloudField` (point coordinates, transformed by
``group.act``), :class:`TokenField` (features of tokens permuted by
:class:`~groupconv.groups.permutations.Permutations`) and :class:`TupleField` (tuples).
Signals on grids live in :mod:`groupconv.spaces.fields_grid`.
"""

from __future__ import annotations

import abc
from collections.abc import Sequence

import torch

from .._validation import check_tensor
from ..groups.base import Group

__all__ = [
    "Field",
    "TrivialField",
    "PointCloudField",
    "TokenField",
    "TupleField",
    "check_single_element",
    "sample_elements",
]


def check_single_element(group: Group, g: object, name: str = "g") -> torch.Tensor:
    """Check that ``g`` is ONE element of ``group`` (shape exactly ``group.element_shape``)."""
    g = check_tensor(g, name)
    shape = tuple(group.element_shape)
    if tuple(g.shape) != shape:
        raise ValueError(
            f"{name} must be one {group.name} element of shape {shape}, got shape {tuple(g.shape)}"
            + (" (a batch of elements: transform one at a time)" if g.shape[1:] == shape else "")
        )
    return g


def _dtype_for(group: Group, dtype: torch.dtype | None) -> torch.dtype | None:
    if getattr(group, "element_dtype_kind", "float") == "long":
        return None
    return dtype


def sample_elements(
    group: Group,
    k: int = 3,
    device: torch.device | str | None = None,
    dtype: torch.dtype | None = None,
    seed: int = 0,
) -> torch.Tensor:
    """The identity followed by a few deterministic elements of ``group`` ``(1 + m, *shape)``.

    Finite groups with at most 64 elements give all their elements; otherwise ``k`` elements
    drawn with ``group.sample`` from a generator seeded with ``seed``.
    """
    e = group.identity((1,), device=device, dtype=_dtype_for(group, dtype))
    if group.is_finite and group.order <= 64:
        return group.elements(device=device, dtype=_dtype_for(group, dtype))
    gen = torch.Generator(device="cpu").manual_seed(seed)
    s = group.sample(k, generator=gen, dtype=_dtype_for(group, dtype)).to(device)
    return torch.cat([e, s.to(e.dtype)], dim=0)


class Field(abc.ABC):
    """How elements of ``group`` act on a batched tensor (a sampled signal, points, tokens).

    Subclasses implement :meth:`transform`, :meth:`check` and may refine :meth:`is_exact`,
    :meth:`exact_elements` and :meth:`valid_mask`.
    """

    group: Group | None

    @abc.abstractmethod
    def transform(self, x: torch.Tensor, g: torch.Tensor, *, order: int | None = None) -> torch.Tensor:
        """Return ``g . x`` for ONE group element ``g`` (shape ``group.element_shape``).

        Exact index permutations whenever ``g`` acts exactly; interpolation otherwise
        (``order`` = interpolation order: 0 nearest, 1 (bi/tri)linear, 3 bicubic (2-D)).
        """

    def is_exact(self, g: torch.Tensor) -> bool:
        """Whether ``transform(x, g)`` is an exact permutation/reindexing (default: True)."""
        return True

    def exact_elements(
        self, device: torch.device | str | None = None, dtype: torch.dtype | None = None
    ) -> torch.Tensor:
        """Elements ``(k, *element_shape)`` known to act exactly and invertibly, identity first."""
        if self.group is None:
            raise TypeError(f"{type(self).__name__} has no group; it has no elements")
        return sample_elements(self.group, device=device, dtype=dtype)

    def valid_mask(
        self,
        x_shape: Sequence[int],
        device: torch.device | str | None = None,
        dtype: torch.dtype | None = None,
    ) -> torch.Tensor | None:
        """Float mask broadcastable to ``x`` where approximate transforms are trustworthy;
        ``None`` when every position is valid (the default)."""
        return None

    @abc.abstractmethod
    def check(self, x: torch.Tensor, name: str = "x") -> torch.Tensor:
        """Validate the layout of ``x`` and return it; ``ValueError`` naming ``name`` otherwise."""

    def _element(self, g: object, name: str = "g") -> torch.Tensor:
        if self.group is None:
            return check_tensor(g, name)
        return check_single_element(self.group, g, name)

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.group!r})"


class TrivialField(Field):
    """The trivial action: ``g . x = x`` (invariant features, logits, scalars).

    ``group`` is optional; when given, ``transform`` checks the shape of ``g`` against it.

    Example:
        >>> import torch
        >>> from groupconv.groups import SO2
        >>> f = TrivialField(SO2())
        >>> x = torch.randn(2, 5)
        >>> bool((f.transform(x, torch.tensor([0.3])) == x).all()), f.is_exact(torch.tensor([0.3]))
        (True, True)
    """

    def __init__(self, group: Group | None = None) -> None:
        self.group = group

    def transform(self, x: torch.Tensor, g: torch.Tensor, *, order: int | None = None) -> torch.Tensor:
        x = self.check(x)
        self._element(g)
        return x

    def check(self, x: torch.Tensor, name: str = "x") -> torch.Tensor:
        return check_tensor(x, name)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, TrivialField) and other.group == self.group

    __hash__ = None  # type: ignore[assignment]


class PointCloudField(Field):
    """Point sets ``(B, N, d + features)``: every point moves by ``group.act(g, .)``.

    The first ``d`` columns are coordinates; the trailing ``features`` columns (default 0) are
    invariant per-point values carried along unchanged (scalar features, a 0/1 padding mask),
    so a point cloud with features is ONE tensor the kit can transform. Permutations of the
    point order are :class:`TokenField` on the same tensor.

    Works for any group acting on R^d (``group.space_dim == d``): rotations, reflections,
    translations, semidirect products (rigid motions, similarities). Every element acts
    exactly (up to floating-point rounding of the matrix product), so :meth:`is_exact` is
    always ``True``.

    Example:
        >>> import torch
        >>> from groupconv.groups import SO2
        >>> f = PointCloudField(SO2())
        >>> y = f.transform(torch.tensor([[[1.0, 0.0]]]), torch.tensor([torch.pi / 2]))
        >>> (y.round() + 0.0).tolist()
        [[[0.0, 1.0]]]
    """

    def __init__(self, group: Group, features: int = 0) -> None:
        if isinstance(features, bool) or not isinstance(features, int) or features < 0:
            raise ValueError(f"features must be an int >= 0, got {features!r}")
        self.group = group
        self.features = features

    def transform(self, x: torch.Tensor, g: torch.Tensor, *, order: int | None = None) -> torch.Tensor:
        x = self.check(x)
        g = self._element(g)
        d = self.group.space_dim
        moved = self.group.act(g.to(x.device), x[..., :d])
        return torch.cat([moved, x[..., d:]], dim=-1) if self.features else moved

    def check(self, x: torch.Tensor, name: str = "x") -> torch.Tensor:
        x = check_tensor(x, name)
        d = self.group.space_dim
        if x.dim() != 3 or x.shape[-1] != d + self.features:
            raise ValueError(
                f"{name} must be a point cloud (B, N, {d} + {self.features}) for {self.group.name} "
                f"(coordinates, then features), got shape {tuple(x.shape)}"
            )
        return x

    def __eq__(self, other: object) -> bool:
        same = isinstance(other, PointCloudField)
        return same and (other.group, other.features) == (self.group, self.features)

    def __repr__(self) -> str:
        return f"PointCloudField({self.group!r}{f', features={self.features}' if self.features else ''})"

    __hash__ = None  # type: ignore[assignment]


class TokenField(Field):
    """Token features ``(B, N, C)`` permuted along the token axis by ``Permutations(N)``.

    The element ``g`` (a long tensor ``(N,)``, ``g[i]`` the image of ``i``) moves token ``i`` to
    position ``g[i]``: ``(g . x)[:, g[i]] = x[:, i]``, i.e. ``g . x = x[:, g^{-1}]``, matching
    ``Permutations.act`` so that ``transform(transform(x, h), g) == transform(x, g h)`` with
    ``(g h)[i] = g[h[i]]``. ``dim`` selects the token axis (default 1). Always exact.

    Example:
        >>> import torch
        >>> from groupconv.groups.permutations import Permutations
        >>> f = TokenField(Permutations(3))
        >>> x = torch.tensor([[[10.0], [11.0], [12.0]]])
        >>> f.transform(x, torch.tensor([1, 2, 0]))[0, :, 0].tolist()
        [12.0, 10.0, 11.0]
    """

    def __init__(self, group: Group, dim: int = 1) -> None:
        if len(tuple(group.element_shape)) != 1:
            raise ValueError(
                f"group must be a permutation group with elements (n,), got {group.name} with "
                f"element_shape {tuple(group.element_shape)}"
            )
        self.group = group
        self.dim = int(dim)

    @property
    def n(self) -> int:
        return int(self.group.element_shape[0])

    def transform(self, x: torch.Tensor, g: torch.Tensor, *, order: int | None = None) -> torch.Tensor:
        x = self.check(x)
        g = self._element(g)
        if g.is_floating_point():
            raise ValueError(f"g must be a long index permutation, got dtype {g.dtype}")
        inv = torch.argsort(g.to(x.device))
        return x.index_select(self.dim, inv)

    def exact_elements(
        self, device: torch.device | str | None = None, dtype: torch.dtype | None = None
    ) -> torch.Tensor:
        """Identity, a transposition ``(0 1)``, the cyclic shift ``i -> i+1`` and its inverse."""
        n = self.n
        e = torch.arange(n, device=device)
        out = [e]
        if n >= 2:
            swap = e.clone()
            swap[0], swap[1] = 1, 0
            out += [swap, torch.roll(e, -1), torch.roll(e, 1)]
        uniq = {tuple(p.tolist()): p for p in out}
        return torch.stack(list(uniq.values()))

    def check(self, x: torch.Tensor, name: str = "x") -> torch.Tensor:
        x = check_tensor(x, name)
        if x.dim() != 3:
            raise ValueError(f"{name} must be tokens (B, N, C) with N = {self.n}, got shape {tuple(x.shape)}")
        if x.shape[self.dim] != self.n:
            raise ValueError(
                f"{name} must have {self.n} tokens on axis {self.dim} for {self.group!r}, "
                f"got shape {tuple(x.shape)}"
            )
        return x

    def __eq__(self, other: object) -> bool:
        return isinstance(other, TokenField) and (other.group, other.dim) == (self.group, self.dim)

    __hash__ = None  # type: ignore[assignment]


class TupleField(Field):
    """A tuple of tensors transformed field by field by the same element (e.g. points + features).

    Example:
        >>> import torch
        >>> from groupconv.groups import SO2
        >>> f = TupleField(PointCloudField(SO2()), TrivialField(SO2()))
        >>> p, s = f.transform((torch.ones(1, 4, 2), torch.ones(1, 3)), torch.tensor([0.5]))
        >>> tuple(p.shape), tuple(s.shape)
        ((1, 4, 2), (1, 3))
    """

    def __init__(self, *fields: Field) -> None:
        if not fields or not all(isinstance(f, Field) for f in fields):
            raise TypeError("TupleField takes one or more Field objects")
        groups = [f.group for f in fields if f.group is not None]
        if any(gr != groups[0] for gr in groups[1:]):
            raise ValueError(f"all fields of a TupleField must share one group, got {groups}")
        self.fields = tuple(fields)
        self.group = groups[0] if groups else None

    def transform(self, x, g: torch.Tensor, *, order: int | None = None):  # type: ignore[override]
        x = self.check(x)
        return tuple(f.transform(xi, g, order=order) for f, xi in zip(self.fields, x))

    def is_exact(self, g: torch.Tensor) -> bool:
        return all(f.is_exact(g) for f in self.fields)

    def exact_elements(
        self, device: torch.device | str | None = None, dtype: torch.dtype | None = None
    ) -> torch.Tensor:
        """The exact elements of the first field that every other field also treats exactly."""
        cand = self.fields[0].exact_elements(device=device, dtype=dtype)
        keep = [c for c in cand if self.is_exact(c)]
        return torch.stack(keep)

    def valid_mask(self, x_shape, device=None, dtype=None):  # type: ignore[override]
        """A tuple of the member masks (``x_shape`` is a tuple of shapes)."""
        return tuple(f.valid_mask(s, device, dtype) for f, s in zip(self.fields, x_shape))

    def check(self, x, name: str = "x"):  # type: ignore[override]
        if not isinstance(x, (tuple, list)) or len(x) != len(self.fields):
            got = type(x).__name__
            if isinstance(x, (tuple, list)):
                got += f" of length {len(x)}"
            raise ValueError(f"{name} must be a tuple of {len(self.fields)} tensors, got {got}")
        return tuple(f.check(xi, f"{name}[{i}]") for i, (f, xi) in enumerate(zip(self.fields, x)))

    def __repr__(self) -> str:
        return f"TupleField({', '.join(map(repr, self.fields))})"

