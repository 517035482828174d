"""The symmetric group S_n of permutations of ``n`` items (sets, tokens, point clouds).

Elements are index permutations, ``torch.long`` tensors ``(*batch, n)`` with ``g[i]`` the image
of ``i``. The product is composition, ``(g h)[i] = g[h[i]]``. The group acts on vectors of R^n
(one value per item) by moving the value at position ``i`` to position ``g[i]``:
``act(g, x)[g[i]] = x[i]``, i.e. ``act(g, x) = x[..., g^-1]``, so that
``act(g h, x) = act(g, act(h, x))``; ``matrix(g)`` is the matching permutation matrix
``P[g[i], i] = 1``.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Sequence
from dataclasses import dataclass

import torch

from .._validation import check_positive_int, check_trailing_shape, resolve_dtype
from .base import Group

__all__ = ["Permutations"]

_MAX_ELEMENTS_N = 8  # 8! = 40320 elements
_MAX_INDEX_N = 20  # 20! < 2**63


@dataclass(frozen=True)
class Permutations(Group):
    """The symmetric group S_n; elements are index permutations (``torch.long``, ``(*batch, n)``).

    Finite (order ``n!``) with no Lie algebra: ``dimension`` is 0, and ``exp``/``log``/
    ``normalized_log`` raise ``TypeError``; :meth:`embedding` is the flattened permutation
    matrix. ``elements()`` (``n <= 8``) is in lexicographic order, identity first, and
    ``index`` is the Lehmer-code rank in that order (``n <= 20``). ``sample`` is uniform.
    ``grid(k)`` is ``elements()`` for ``k = n!`` and, for ``k`` dividing ``n``, the cyclic
    subgroup of the shifts ``i -> i + j n/k (mod n)``, identity first.
    ``distance`` is 0 for equal and 1 for different permutations.

    Elements are always ``torch.long``: the ``dtype`` argument of ``identity``, ``sample``,
    ``grid`` and ``elements`` exists for protocol compatibility and is ignored; ``matrix`` and
    ``embedding`` use torch's default float dtype.

    Example:
        >>> import torch
        >>> S3 = Permutations(3)
        >>> g, h = torch.tensor([1, 2, 0]), torch.tensor([0, 2, 1])
        >>> S3.product(g, h).tolist()
        [1, 0, 2]
        >>> S3.act(g, torch.tensor([10.0, 20.0, 30.0])).tolist()
        [30.0, 10.0, 20.0]
        >>> S3.index(S3.elements()).tolist()
        [0, 1, 2, 3, 4, 5]
    """

    n: int = 3
    name = "Permutations"
    element_dtype_kind = "long"

    def __post_init__(self) -> None:
        object.__setattr__(self, "n", check_positive_int(self.n, "n"))
        self._set_attributes(element_shape=(self.n,), space_dim=self.n)

    dimension = 0
    is_compact = True
    is_finite = True
    algebra_dim = 0

    @property
    def embedding_dim(self) -> int:
        return self.n * self.n

    @property
    def order(self) -> int:
        return math.factorial(self.n)

    def check_element(self, g: object, name: str = "g") -> torch.Tensor:
        g = super().check_element(g, name)
        if g.dtype != torch.long:
            raise TypeError(
                f"{name} must be a torch.long tensor of indices ({self.name} element), got {g.dtype}"
            )
        return g

    def _check_membership(self, g: torch.Tensor, name: str) -> None:
        ref = torch.arange(self.n, device=g.device)
        if not bool((torch.sort(g, dim=-1).values == ref).all()):
            raise ValueError(f"{name} must hold permutations of 0..{self.n - 1} along its last dimension")

    def identity(
        self,
        batch_shape: Sequence[int] = (),
        device: torch.device | str | None = None,
        dtype: torch.dtype | None = None,
    ) -> torch.Tensor:
        """The identity ``arange(n)`` (``dtype`` ignored: elements are ``torch.long``)."""
        return torch.arange(self.n, device=device).expand(*tuple(batch_shape), self.n).clone()

    def product(self, g: torch.Tensor, h: torch.Tensor) -> torch.Tensor:
        """Composition ``(g h)[i] = g[h[i]]``."""
        g, h = self.check_element(g, "g"), self.check_element(h, "h")
        g, h = torch.broadcast_tensors(g, h)
        return torch.gather(g, -1, h)

    def inverse(self, g: torch.Tensor) -> torch.Tensor:
        g = self.check_element(g)
        src = torch.arange(self.n, device=g.device).expand_as(g)
        return torch.empty_like(g).scatter_(-1, g, src)

    def exp(self, X: torch.Tensor) -> torch.Tensor:
        raise TypeError(f"{self.name} is a finite group with no Lie algebra: exp is undefined")

    def log(self, g: torch.Tensor) -> torch.Tensor:
        raise TypeError(f"{self.name} is a finite group with no Lie algebra: log is undefined")

    def normalized_log(self, g: torch.Tensor) -> torch.Tensor:
        raise TypeError(
            f"{self.name} is a finite group with no Lie algebra: normalized_log is undefined; "
            "use embedding (the flattened permutation matrix)"
        )

    def matrix(self, g: torch.Tensor) -> torch.Tensor:
        """Permutation matrices ``P[g[i], i] = 1`` ``(*batch, n, n)`` (default float dtype)."""
        g = self.check_element(g)
        P = torch.zeros(*g.shape, self.n, device=g.device, dtype=resolve_dtype(None))
        return P.scatter_(-2, g.unsqueeze(-2), 1.0)

    def act(self, g: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        """``x[..., g^-1]``: the value at position ``i`` moves to position ``g[i]`` (exact)."""
        g = self.check_element(g)
        x = check_trailing_shape(x, (self.n,), "x", f"points (*batch, {self.n})")
        gi = self.inverse(g)
        gi, x = torch.broadcast_tensors(gi, x)
        return torch.gather(x, -1, gi.contiguous())

    def det(self, g: torch.Tensor) -> torch.Tensor:
        """The sign of the permutation, ``(*batch,)`` in the default float dtype."""
        g = self.check_element(g)
        inv = (g[..., :, None] > g[..., None, :]).triu(1).sum((-1, -2))
        return (1 - 2 * (inv % 2)).to(resolve_dtype(None))

    def embedding(self, g: torch.Tensor) -> torch.Tensor:
        return self.matrix(g).flatten(-2)

    def distance(self, g: torch.Tensor, h: torch.Tensor) -> torch.Tensor:
        g, h = self.check_element(g, "g"), self.check_element(h, "h")
        return (g != h).any(-1).to(resolve_dtype(None))

    def elements(
        self, device: torch.device | str | None = None, dtype: torch.dtype | None = None
    ) -> torch.Tensor:
        if self.n > _MAX_ELEMENTS_N:
            raise ValueError(
                f"Permutations(n).elements() lists n! elements and supports n <= {_MAX_ELEMENTS_N}, "
                f"got n={self.n} ({self.order} elements); use sample() instead"
            )
        return torch.tensor(list(itertools.permutations(range(self.n))), dtype=torch.long, device=device)

    def index(self, g: torch.Tensor) -> torch.Tensor:
        """Lexicographic rank (Lehmer code) of each permutation, long ``(*batch,)``."""
        if self.n > _MAX_INDEX_N:
            raise ValueError(
                f"Permutations(n).index supports n <= {_MAX_INDEX_N} (n! < 2**63), got n={self.n}"
            )
        g = self.validate(g)
        later_smaller = (g[..., None, :] < g[..., :, None]).triu(1).sum(-1)  # (*batch, n)
        weights = torch.tensor(
            [math.factorial(self.n - 1 - i) for i in range(self.n)], dtype=torch.long, device=g.device
        )
        return (later_smaller * weights).sum(-1)

    def sample(
        self,
        n: int,
        generator: torch.Generator | None = None,
        device: torch.device | str | None = None,
        dtype: torch.dtype | None = None,
    ) -> torch.Tensor:
        """``n`` uniform random permutations (``argsort`` of i.i.d. uniforms)."""
        n = self._check_n(n)
        u = torch.rand(n, self.n, generator=generator, device=device, dtype=torch.float64)
        return torch.argsort(u, dim=-1)

    def grid(
        self,
        n: int,
        device: torch.device | str | None = None,
        dtype: torch.dtype | None = None,
    ) -> torch.Tensor:
        n = self._check_n(n)
        if n <= self.n and self.n % n == 0:
            shift = torch.arange(n, device=device)[:, None] * (self.n // n)
            return torch.remainder(torch.arange(self.n, device=device) + shift, self.n)
        if n == self.order:
            return self.elements(device=device)
        raise ValueError(
            f"n must divide {self.n} (cyclic shifts) or equal n! = {self.order} for "
            f"Permutations({self.n}).grid, got n={n}"
        )

    def __repr__(self) -> str:
        return f"Permutations({self.n})"
