"""Product groups: direct products ``G_1 x ... x G_k`` and semidirect products ``R^d ⋊ H``.

* :class:`DirectProduct` concatenates the flattened factor elements and works factor-wise.
* :class:`SemidirectProduct` is the affine group ``R^d ⋊ H`` of a group ``H`` acting linearly
  on R^d through ``H.matrix``; elements are ``concat(t, flatten(h))`` and act on points by
  ``x -> A(h) x + t``.
* Named groups: :class:`SE2` (R^2 ⋊ SO2), :class:`E2` (R^2 ⋊ O2), :class:`Sim2`
  (R^2 ⋊ (SO2 x R+)), :class:`SE3` (R^3 ⋊ SO3), :class:`ScaleTranslation` (R ⋊ R+, the
  wavelet group) live in :mod:`groupconv.groups.named` and are re-exported here.

Every class is a frozen dataclass compared, hashed and pickled by value.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Sequence
from dataclasses import dataclass

import torch

from ._lie_helpers import _phi1, _so2_left_jacobian, representation_generators
from .base import Group, as_group
from .matrix import balanced_counts
from .rotations import SO2

__all__ = [
    "DirectProduct",
    "SemidirectProduct",
    "representation_generators",
]


@functools.lru_cache(maxsize=512)
def _size(G: Group) -> int:
    """Number of entries of one element (cached: groups are hashable frozen values)."""
    return math.prod(G.element_shape)


def _counts(n: int | Sequence[int], k: int, check) -> tuple[int, ...]:
    if isinstance(n, (tuple, list)):
        if len(n) != k:
            raise ValueError(f"n must be an int or a tuple of {k} per-factor counts, got {n!r}")
        return tuple(check(m, "n") for m in n)
    return balanced_counts(check(n, "n"), k)


def _cartesian(parts: list[torch.Tensor]) -> list[torch.Tensor]:
    """Rows of every combination of the rows of ``parts`` (first part slowest)."""
    idx = torch.meshgrid(*[torch.arange(p.shape[0], device=p.device) for p in parts], indexing="ij")
    return [p[i.reshape(-1)] for p, i in zip(parts, idx)]


# ----------------------------------------------------------------------------------------------
@dataclass(frozen=True, init=False)
class DirectProduct(Group):
    """The direct product ``G_1 x ... x G_k``; an element is ``concat(flatten(g_1), ...)``.

    Product, inverse, exp (coordinates concatenated), log, sample, normalized_log and embedding
    work factor-wise; compact/finite iff every factor is. Two actions:

    * ``action="block"`` (default): on the concatenation of the factor spaces;
      ``matrix`` is block-diagonal and ``act`` applies each factor's ``act`` to its block.
    * ``action="commuting"``: every factor acts on the same R^d and the factor actions
      commute (e.g. rotations and dilations); ``matrix = M_1 @ ... @ M_k`` and ``act`` applies
      the factors in turn. Commutation is the caller's promise (not checked).

    ``grid(n)``: with a tuple, one count per factor; with an int, ``n`` is split into per-factor
    counts whose product is ``n`` (:func:`~groupconv.groups.matrix.balanced_counts`). The grid
    is the Cartesian product, first factor slowest (identity first when each factor's is).
    Finite products list ``elements()`` in the same order and ``index`` is mixed-radix.
    Factors must share one element dtype kind (all float, or all long e.g. permutations).

    Example:
        >>> import torch
        >>> from groupconv.groups import SO2, CyclicGroup
        >>> G = DirectProduct(SO2(), CyclicGroup(4))
        >>> g = G.combine(torch.tensor([0.5]), torch.tensor([torch.pi / 2]))
        >>> [p.tolist() for p in G.split(G.product(g, g))]  # doctest: +ELLIPSIS
        [[1.0], [-3.14...]]
        >>> G.matrix(g).shape
        torch.Size([4, 4])
    """

    factors: tuple[Group, ...]
    action: str = "block"

    def __init__(self, *factors: Group, action: str = "block") -> None:
        if len(factors) == 1 and isinstance(factors[0], (tuple, list)):
            factors = tuple(factors[0])
        if not factors:
            raise ValueError("factors must hold at least one group, got none")
        factors = tuple(as_group(f, f"factors[{i}]") for i, f in enumerate(factors))
        kinds = {f.element_dtype_kind for f in factors}
        if len(kinds) > 1:
            raise TypeError(
                "factors must share one element dtype kind (all float or all long), got "
                + ", ".join(f"{f.name}: {f.element_dtype_kind}" for f in factors)
            )
        if action not in ("block", "commuting"):
            raise ValueError(f"action must be 'block' or 'commuting', got {action!r}")
        if action == "commuting" and len({f.space_dim for f in factors}) > 1:
            raise ValueError(
                "action='commuting' needs factors acting on the same R^d, got space dims "
                f"{[f.space_dim for f in factors]}"
            )
        object.__setattr__(self, "factors", tuple(factors))
        object.__setattr__(self, "action", action)
        self._set_attributes(
            dimension=sum(f.dimension for f in factors),
            element_shape=(sum(_size(f) for f in factors),),
            is_compact=all(f.is_compact for f in factors),
            is_finite=all(f.is_finite for f in factors),
            space_dim=factors[0].space_dim if action == "commuting" else sum(f.space_dim for f in factors),
        )

    # -- attributes -------------------------------------------------------------------------
    @property
    def name(self) -> str:  # type: ignore[override]
        return "x".join(f.name for f in self.factors)

    @property
    def element_dtype_kind(self) -> str:  # type: ignore[override]
        return self.factors[0].element_dtype_kind

    @property
    def algebra_dim(self) -> int:
        return sum(f.algebra_dim for f in self.factors)

    @property
    def embedding_dim(self) -> int:
        return sum(f.embedding_dim for f in self.factors)


    # -- split / combine --------------------------------------------------------------------
    def split(self, g: torch.Tensor) -> tuple[torch.Tensor, ...]:
        """Factor elements ``(*batch, *G_i.element_shape)`` of ``g``."""
        g = self.check_element(g)
        parts, i = [], 0
        for f in self.factors:
            s = _size(f)
            parts.append(g[..., i : i + s].reshape(*g.shape[:-1], *f.element_shape))
            i += s
        return tuple(parts)

    def combine(self, *parts: torch.Tensor) -> torch.Tensor:
        """Inverse of :meth:`split` (batch dimensions broadcast)."""
        if len(parts) != len(self.factors):
            raise ValueError(f"combine needs {len(self.factors)} factor elements, got {len(parts)}")
        flat = []
        for j, (f, p) in enumerate(zip(self.factors, parts)):
            p = f.check_element(p, f"parts[{j}]")
            flat.append(p.reshape(*p.shape[: p.dim() - len(f.element_shape)], _size(f)))
        shapes = [p.shape[:-1] for p in flat]
        if all(sh == shapes[0] for sh in shapes):  # the common case; torch.broadcast_shapes is slow
            return torch.cat(flat, dim=-1)
        batch = torch.broadcast_shapes(*shapes)
        return torch.cat([p.expand(*batch, p.shape[-1]) for p in flat], dim=-1)

    def _split_vec(self, x: torch.Tensor, sizes: list[int]) -> list[torch.Tensor]:
        return list(torch.split(x, sizes, dim=-1))

    # -- algebra ------------------------------------------------------------------------------
    def identity(
        self,
        batch_shape: Sequence[int] = (),
        device: torch.device | str | None = None,
        dtype: torch.dtype | None = None,
    ) -> torch.Tensor:
        return self.combine(*[f.identity(batch_shape, device, dtype) for f in self.factors])

    def product(self, g: torch.Tensor, h: torch.Tensor) -> torch.Tensor:
        gs, hs = self.split(self.check_element(g, "g")), self.split(self.check_element(h, "h"))
        return self.combine(*[f.product(a, b) for f, a, b in zip(self.factors, gs, hs)])

    def inverse(self, g: torch.Tensor) -> torch.Tensor:
        return self.combine(*[f.inverse(a) for f, a in zip(self.factors, self.split(g))])

    def exp(self, X: torch.Tensor) -> torch.Tensor:
        X = self._check_algebra(X)
        Xs = self._split_vec(X, [f.algebra_dim for f in self.factors])
        return self.combine(*[f.exp(x) for f, x in zip(self.factors, Xs)])

    def log(self, g: torch.Tensor) -> torch.Tensor:
        return torch.cat([f.log(a) for f, a in zip(self.factors, self.split(g))], dim=-1)

    def normalized_log(self, g: torch.Tensor) -> torch.Tensor:
        return torch.cat([f.normalized_log(a) for f, a in zip(self.factors, self.split(g))], dim=-1)

    def embedding(self, g: torch.Tensor) -> torch.Tensor:
        return torch.cat([f.embedding(a) for f, a in zip(self.factors, self.split(g))], dim=-1)

    def distance(self, g: torch.Tensor, h: torch.Tensor) -> torch.Tensor:
        """Root sum of squares of the factor distances."""
        ds = [f.distance(a, b) for f, a, b in zip(self.factors, self.split(g), self.split(h))]
        return torch.sqrt(sum(d**2 for d in ds))

    def matrix(self, g: torch.Tensor) -> torch.Tensor:
        mats = [f.matrix(a) for f, a in zip(self.factors, self.split(g))]
        if self.action == "commuting":
            out = mats[0]
            for m in mats[1:]:
                out = out @ m.to(out.dtype)
            return out
        batch = torch.broadcast_shapes(*[m.shape[:-2] for m in mats])
        d = self.space_dim
        dtype = mats[0].dtype if mats[0].is_floating_point() else torch.get_default_dtype()
        out = torch.zeros(*batch, d, d, dtype=dtype, device=mats[0].device)
        i = 0
        for m in mats:
            k = m.shape[-1]
            out[..., i : i + k, i : i + k] = m
            i += k
        return out

    def representation_generators(
        self, device: torch.device | str | None = None, dtype: torch.dtype | None = None
    ) -> torch.Tensor:
        """Generators of :meth:`matrix`'s Lie algebra representation ``(algebra_dim, d, d)``."""
        gens = [representation_generators(f, device, dtype) for f in self.factors]
        if self.action == "commuting":
            return torch.cat(gens, dim=0)
        d, out, i = self.space_dim, [], 0
        for L in gens:
            k = L.shape[-1]
            full = L.new_zeros(L.shape[0], d, d)
            full[:, i : i + k, i : i + k] = L
            out.append(full)
            i += k
        return torch.cat(out, dim=0)

    def act(self, g: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        parts = self.split(g)
        if self.action == "commuting":
            for f, a in reversed(list(zip(self.factors, parts))):
                x = f.act(a, x)
            return x
        xs = self._split_vec(x, [f.space_dim for f in self.factors])
        return torch.cat([f.act(a, y) for f, a, y in zip(self.factors, parts, xs)], dim=-1)

    def det(self, g: torch.Tensor) -> torch.Tensor:
        dets = [f.det(a) for f, a in zip(self.factors, self.split(g))]
        return functools.reduce(lambda p, d: p * d, dets)

    def _check_membership(self, g: torch.Tensor, name: str) -> None:
        for j, (f, a) in enumerate(zip(self.factors, self.split(g))):
            f.validate(a, f"{name} (factor {j}, {f.name})")

    # -- discretisation ---------------------------------------------------------------------
    def sample(
        self,
        n: int,
        generator: torch.Generator | None = None,
        device: torch.device | str | None = None,
        dtype: torch.dtype | None = None,
    ) -> torch.Tensor:
        """Independent samples of every factor (the product measure; Haar if all are compact)."""
        n = self._check_n(n)
        return self.combine(*[f.sample(n, generator, device, dtype) for f in self.factors])

    def grid(
        self,
        n: int | Sequence[int],
        device: torch.device | str | None = None,
        dtype: torch.dtype | None = None,
    ) -> torch.Tensor:
        counts = _counts(n, len(self.factors), self._check_n)
        parts = [f.grid(m, device, dtype) for f, m in zip(self.factors, counts)]
        return self.combine(*_cartesian(parts))

    @property
    def order(self) -> int:
        if not self.is_finite:
            return super().order
        return math.prod(f.order for f in self.factors)

    def elements(
        self, device: torch.device | str | None = None, dtype: torch.dtype | None = None
    ) -> torch.Tensor:
        if not self.is_finite:
            return super().elements(device, dtype)
        return self.combine(*_cartesian([f.elements(device, dtype) for f in self.factors]))

    def index(self, g: torch.Tensor) -> torch.Tensor:
        if not self.is_finite:
            return super().index(g)
        (f0, *rest), (a0, *rest_a) = self.factors, self.split(g)
        out = f0.index(a0)
        for f, a in zip(rest, rest_a):  # mixed radix, the first factor most significant
            out = out * f.order + f.index(a)
        return out

    def __repr__(self) -> str:
        inner = ", ".join(repr(f) for f in self.factors)
        return f"DirectProduct({inner}{'' if self.action == 'block' else ', action=' + repr(self.action)})"


# ----------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class SemidirectProduct(Group):
    """The affine group ``R^d ⋊ H`` of a group ``H`` acting linearly on R^d via ``H.matrix``.

    An element is ``concat(t, flatten(h))`` (``t`` a translation ``(d,)``), standing for the
    map ``x -> A(h) x + t`` with ``A = H.matrix``:

    * product ``(t1, h1)(t2, h2) = (t1 + A(h1) t2, h1 h2)``; inverse ``(-A(h)^{-1} t, h^{-1})``;
    * ``act(g, x) = A(h) x + t``; ``matrix(g) = A(h)`` (the linear part, as for every group);
      :meth:`affine_matrix` is the ``(d+1, d+1)`` homogeneous matrix; ``det = det A(h)``.
    * ``exp``/``log`` are the true exponential of the semidirect product: algebra coordinates
      ``(v, omega)`` (``v`` in R^d, ``omega`` those of H) map to ``(V(omega) v, exp_H(omega))``
      with ``V = sum_k a^k/(k+1)!``, ``a = sum_i omega_i L_i`` (:func:`representation_generators`).
      SO2/O2 use the closed form ``V = [[sin t/t, -(1-cos t)/t], [(1-cos t)/t, sin t/t]]``;
      other H use ``matrix_exp`` of ``[[a, I], [0, 0]]`` (guarded by construction near 0).
      ``log`` inverts it (``v = V^{-1} t``, ``omega = log_H h``), so ``exp(log g) = g`` where
      ``H``'s own ``exp(log h) = h`` (O2 drops the mirror bit, as O2.log does). A finite H
      (e.g. C4, giving p4) has no exponential: ``exp``/``log`` raise ``TypeError``.
    * ``sample``: translations from ``translations.sample`` (uniform on its box) times
      ``H.sample`` (Haar for compact H), independently (not compact: a documented measure).
    * ``grid(n)``: an int gives ``H.grid(n)`` at zero translation (the stabiliser grid used by
      lifting convolutions; identity first); a pair ``(n_t, n_h)`` gives the product of
      ``translations.grid(n_t)`` and ``H.grid(n_h)``, translation slowest.
    * ``normalized_log``/``embedding``: those of ``t`` (translations) and of ``h`` (H)
      concatenated: continuous coordinates for kernel networks (not the exponential
      coordinates).

    Example:
        >>> import torch
        >>> from groupconv.groups import SO2, Translations
        >>> G = SemidirectProduct(Translations(2), SO2())
        >>> g = G.combine(torch.tensor([1.0, 0.0]), torch.tensor([torch.pi / 2]))
        >>> G.act(g, torch.tensor([1.0, 0.0])).round().tolist()
        [1.0, 1.0]
    """

    translations: Group
    H: Group

    def __post_init__(self) -> None:
        T, H = self.translations, self.H
        if not isinstance(T, Group) or not isinstance(H, Group):
            raise TypeError(
                f"translations and H must be Groups, got {type(T).__name__} and {type(H).__name__}"
            )
        d = T.space_dim
        if T.element_shape != (d,) or T.dimension != d or T.is_compact or T.is_finite:
            raise ValueError(
                f"translations must be a translation group R^d (e.g. Translations(d)), got {T!r}"
            )
        if H.space_dim != d:
            raise ValueError(
                f"H must act on R^{d} (H.space_dim == {d}), got H.space_dim={H.space_dim} ({H!r})"
            )
        if H.element_dtype_kind != "float":
            raise TypeError(f"H must have float elements, got {H.element_dtype_kind} elements ({H!r})")
        self._set_attributes(dimension=d + H.dimension, element_shape=(d + _size(H),), space_dim=d)

    # -- attributes -------------------------------------------------------------------------
    @property
    def name(self) -> str:  # type: ignore[override]
        return f"R{self.d}⋊{self.H.name}"

    @property
    def d(self) -> int:
        """Dimension of the translation part."""
        return self.translations.space_dim

    @property
    def algebra_dim(self) -> int:
        return self.d + self.H.algebra_dim

    @property
    def embedding_dim(self) -> int:
        return self.translations.embedding_dim + self.H.embedding_dim

    is_compact = False
    is_finite = False

    # -- split / combine --------------------------------------------------------------------
    def split(self, g: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """``(t, h)``: the translation ``(*batch, d)`` and the H element."""
        g = self.check_element(g)
        h = g[..., self.d :].reshape(*g.shape[:-1], *self.H.element_shape)
        return g[..., : self.d], h

    def combine(self, t: torch.Tensor, h: torch.Tensor) -> torch.Tensor:
        """The element ``(t, h)`` (batch dimensions broadcast)."""
        t = self.translations.check_element(t, "t")
        h = self.H.check_element(h, "h")
        hf = h.reshape(*h.shape[: h.dim() - len(self.H.element_shape)], _size(self.H))
        if t.shape[:-1] == hf.shape[:-1]:  # the common case; torch.broadcast_shapes is slow
            return torch.cat([t, hf.to(t.dtype)], dim=-1)
        batch = torch.broadcast_shapes(t.shape[:-1], hf.shape[:-1])
        return torch.cat([t.expand(*batch, self.d), hf.to(t.dtype).expand(*batch, hf.shape[-1])], dim=-1)

    def _A(self, h: torch.Tensor, dtype: torch.dtype) -> torch.Tensor:
        return self.H.matrix(h).to(dtype)

    # -- algebra ------------------------------------------------------------------------------
    def identity(
        self,
        batch_shape: Sequence[int] = (),
        device: torch.device | str | None = None,
        dtype: torch.dtype | None = None,
    ) -> torch.Tensor:
        t = self.translations.identity(batch_shape, device, dtype)
        return self.combine(t, self.H.identity(batch_shape, device, dtype))

    def product(self, g: torch.Tensor, h: torch.Tensor) -> torch.Tensor:
        (t1, h1), (t2, h2) = self.split(self.check_element(g, "g")), self.split(self.check_element(h, "h"))
        t = t1 + (self._A(h1, t1.dtype) @ t2.unsqueeze(-1)).squeeze(-1)
        return self.combine(t, self.H.product(h1, h2))

    def inverse(self, g: torch.Tensor) -> torch.Tensor:
        t, h = self.split(g)
        hi = self.H.inverse(h)
        return self.combine(-(self._A(hi, t.dtype) @ t.unsqueeze(-1)).squeeze(-1), hi)

    def matrix(self, g: torch.Tensor) -> torch.Tensor:
        """The linear part ``A(h)`` ``(*batch, d, d)``."""
        return self.H.matrix(self.split(g)[1])

    def affine_matrix(self, g: torch.Tensor) -> torch.Tensor:
        """The homogeneous matrix ``[[A(h), t], [0, 1]]`` ``(*batch, d+1, d+1)``."""
        t, h = self.split(g)
        A = self._A(h, t.dtype)
        top = torch.cat([A, t.unsqueeze(-1)], dim=-1)
        bottom = torch.zeros_like(top[..., :1, :])
        bottom[..., 0, -1] = 1
        return torch.cat([top, bottom], dim=-2)

    def act(self, g: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        t, h = self.split(g)
        x = self.translations.check_element(x, "x")
        return (self._A(h, x.dtype) @ x.unsqueeze(-1)).squeeze(-1) + t.to(x.dtype)

    def det(self, g: torch.Tensor) -> torch.Tensor:
        return self.H.det(self.split(g)[1])

    def _V(self, omega: torch.Tensor) -> torch.Tensor:
        if self.H.is_finite:
            raise TypeError(
                f"{self.name} has a finite H ({self.H.name}): exp/log are undefined; use "
                "split/combine and H's elements instead"
            )
        from .rotations import O2

        if isinstance(self.H, (SO2, O2)):
            return _so2_left_jacobian(omega[..., 0])
        L = representation_generators(self.H, omega.device, omega.dtype)
        return _phi1(torch.einsum("...k,kij->...ij", omega, L))

    def exp(self, X: torch.Tensor) -> torch.Tensor:
        X = self._check_algebra(X)
        v, omega = X[..., : self.d], X[..., self.d :]
        V = self._V(omega)
        return self.combine((V @ v.unsqueeze(-1)).squeeze(-1), self.H.exp(omega))

    def log(self, g: torch.Tensor) -> torch.Tensor:
        t, h = self.split(g)
        if self.H.is_finite:
            self._V(t)  # raises the TypeError
        omega = self.H.log(h).to(t.dtype)
        v = torch.linalg.solve(self._V(omega), t.unsqueeze(-1)).squeeze(-1)
        return torch.cat([v, omega], dim=-1)

    def normalized_log(self, g: torch.Tensor) -> torch.Tensor:
        t, h = self.split(g)
        return torch.cat([self.translations.normalized_log(t), self.H.normalized_log(h).to(t.dtype)], -1)

    def embedding(self, g: torch.Tensor) -> torch.Tensor:
        t, h = self.split(g)
        return torch.cat([self.translations.embedding(t), self.H.embedding(h).to(t.dtype)], -1)

    def distance(self, g: torch.Tensor, h: torch.Tensor) -> torch.Tensor:
        """Left-invariant: ``sqrt(|t|^2 + d_H(e, k)^2)`` for ``(t, k) = g^{-1} h``."""
        t, k = self.split(self.product(self.inverse(g), h))
        e = self.H.identity(k.shape[: k.dim() - len(self.H.element_shape)], k.device, k.dtype)
        dh = self.H.distance(e, k)
        return torch.sqrt((t**2).sum(-1) + dh.to(t.dtype) ** 2)

    def _check_membership(self, g: torch.Tensor, name: str) -> None:
        self.H.validate(self.split(g)[1], f"{name} (H part)")

    # -- discretisation ---------------------------------------------------------------------
    def sample(
        self,
        n: int,
        generator: torch.Generator | None = None,
        device: torch.device | str | None = None,
        dtype: torch.dtype | None = None,
    ) -> torch.Tensor:
        n = self._check_n(n)
        t = self.translations.sample(n, generator, device, dtype)
        return self.combine(t, self.H.sample(n, generator, device, dtype))

    def grid(
        self,
        n: int | Sequence[int],
        device: torch.device | str | None = None,
        dtype: torch.dtype | None = None,
    ) -> torch.Tensor:
        if isinstance(n, (tuple, list)):
            n_t, n_h = _counts(n, 2, self._check_n)
            t, h = _cartesian([self.translations.grid(n_t, device, dtype), self.H.grid(n_h, device, dtype)])
            return self.combine(t, h.reshape(-1, *self.H.element_shape))
        h = self.H.grid(self._check_n(n), device, dtype)
        return self.combine(self.translations.identity((h.shape[0],), device, dtype), h)

    def __repr__(self) -> str:
        return f"SemidirectProduct({self.translations!r}, {self.H!r})"


