"""Non-compact abelian groups acting on R^d: translations ``R^d`` and dilations ``R^+``.

Neither group is compact, so neither has a Haar *probability* measure: ``sample`` draws from a
documented box (uniform translations in ``[-extent, extent]^d``, log-uniform scales on
``log_range``), and ``normalized_log`` maps that box to ``[-1, 1]``.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import torch

from .._validation import check_positive_float, check_positive_int, check_trailing_shape
from .base import Group

__all__ = ["Translations", "Scaling"]


@dataclass(frozen=True)
class Translations(Group):
    """The translation group R^d; elements are vectors ``(*batch, d)``.

    The product is the sum, ``exp``/``log`` are the identity, ``matrix`` is the identity (the
    linear part) and ``act(g, x) = x + g``. Not compact: ``sample`` is uniform on the box
    ``[-extent, extent]^d`` and ``normalized_log(g) = g / extent``.

    ``grid(n)`` needs ``n = m**d`` and returns the product grid of ``m`` points per axis,
    flattened in C order (last coordinate fastest). Along each axis the points are ``j * h``,
    ``h = extent / max(m // 2, 1)``, with ``j`` in FFT order ``0, 1, ..., -1`` (as
    ``torch.fft.fftfreq``), so the grid lies in the box and its first element is the identity.

    Example:
        >>> import torch
        >>> T = Translations(2)
        >>> T.act(torch.tensor([1.0, 2.0]), torch.tensor([0.5, 0.5])).tolist()
        [1.5, 2.5]
        >>> Translations(1, extent=2.0).grid(4).squeeze(-1).tolist()
        [0.0, 1.0, -2.0, -1.0]
    """

    d: int = 2
    extent: float = 1.0
    name = "Translations"

    def __post_init__(self) -> None:
        object.__setattr__(self, "d", check_positive_int(self.d, "d"))
        object.__setattr__(self, "extent", check_positive_float(self.extent, "extent"))
        self._set_attributes(dimension=self.d, element_shape=(self.d,), space_dim=self.d)

    is_compact = False
    is_finite = False

    def identity(
        self,
        batch_shape: Sequence[int] = (),
        device: torch.device | str | None = None,
        dtype: torch.dtype | None = None,
    ) -> torch.Tensor:
        return torch.zeros(*tuple(batch_shape), self.d, **self._factory_kwargs(device, dtype))

    def product(self, g: torch.Tensor, h: torch.Tensor) -> torch.Tensor:
        return self.check_element(g, "g") + self.check_element(h, "h")

    def inverse(self, g: torch.Tensor) -> torch.Tensor:
        return -self.check_element(g)

    def exp(self, X: torch.Tensor) -> torch.Tensor:
        return self._check_algebra(X).clone()

    def log(self, g: torch.Tensor) -> torch.Tensor:
        return self.check_element(g).clone()

    def matrix(self, g: torch.Tensor) -> torch.Tensor:
        """The linear part of a translation: the identity ``(*batch, d, d)``."""
        g = self.check_element(g)
        eye = torch.eye(self.d, device=g.device, dtype=g.dtype)
        return eye.expand(*g.shape[:-1], self.d, self.d).clone()

    def act(self, g: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        """``x + g`` (batch dimensions broadcast)."""
        g = self.check_element(g)
        x = check_trailing_shape(x, (self.d,), "x", f"points (*batch, {self.d})")
        return x + g.to(x.dtype)

    def det(self, g: torch.Tensor) -> torch.Tensor:
        g = self.check_element(g)
        return torch.ones_like(g[..., 0])

    def sample(
        self,
        n: int,
        generator: torch.Generator | None = None,
        device: torch.device | str | None = None,
        dtype: torch.dtype | None = None,
    ) -> torch.Tensor:
        """Uniform on the box ``[-extent, extent]^d`` (R^d has no Haar probability measure)."""
        n = self._check_n(n)
        u = torch.rand(n, self.d, generator=generator, **self._factory_kwargs(device, dtype))
        return self.extent * (2 * u - 1)

    def grid(
        self,
        n: int,
        device: torch.device | str | None = None,
        dtype: torch.dtype | None = None,
    ) -> torch.Tensor:
        n = self._check_n(n)
        m = round(n ** (1.0 / self.d))
        m = next((k for k in (m - 1, m, m + 1) if k >= 1 and k**self.d == n), None)
        if m is None:
            raise ValueError(
                f"n must be a perfect d-th power m**{self.d} (m points per axis) for "
                f"Translations({self.d}).grid, got n={n}"
            )
        kw = self._factory_kwargs(device, dtype)
        j = torch.fft.fftfreq(m, d=1.0 / m, **kw)  # 0, 1, ..., -1
        axis = j * (self.extent / max(m // 2, 1))
        mesh = torch.meshgrid(*([axis] * self.d), indexing="ij")
        return torch.stack(mesh, dim=-1).reshape(n, self.d)

    def normalized_log(self, g: torch.Tensor) -> torch.Tensor:
        """``g / extent``: the sampling box mapped to ``[-1, 1]^d``."""
        return self.check_element(g) / self.extent

    def __repr__(self) -> str:
        return f"Translations(d={self.d}, extent={self.extent})"


@dataclass(frozen=True)
class Scaling(Group):
    """The dilation group R^+ acting on R^d by ``x -> s x``; elements are scales ``(*batch, 1)``.

    Product ``s1 s2``, inverse ``1/s``, ``exp``/``log`` the scalar exponential and logarithm
    (Lie-algebra coordinate ``log s``), ``matrix = s I_d``, ``det = s**d``. Not compact:
    ``sample`` is log-uniform on ``log_range = (lo, hi)`` (uniform ``log s`` in ``[lo, hi]``,
    the Haar measure ``ds/s`` restricted to that range) and ``normalized_log`` maps
    ``[lo, hi]`` to ``[-1, 1]``. ``grid(n)`` is ``exp(linspace(lo, hi, n))``, ascending, so its
    first element is the identity when ``lo = 0`` (the default range ``(0, log 8)``; with
    ``n = 4`` it is the dyadic grid 1, 2, 4, 8).

    Example:
        >>> import torch
        >>> S = Scaling(d=2)
        >>> S.grid(4).squeeze(-1).tolist()  # doctest: +ELLIPSIS
        [1.0, 2.0..., 4.0..., 8.0...]
        >>> S.det(torch.tensor([3.0])).item()
        9.0
    """

    d: int = 2
    log_range: tuple[float, float] = (0.0, math.log(8.0))
    name = "Scaling"

    def __post_init__(self) -> None:
        object.__setattr__(self, "d", check_positive_int(self.d, "d"))
        lr = self.log_range
        ok = isinstance(lr, (tuple, list)) and len(lr) == 2
        ok = ok and all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in lr)
        if not ok:
            raise TypeError(f"log_range must be a pair of floats (lo, hi), got {lr!r}")
        lo, hi = float(lr[0]), float(lr[1])
        if not (math.isfinite(lo) and math.isfinite(hi) and lo < hi):
            raise ValueError(f"log_range must be finite with lo < hi, got ({lo}, {hi})")
        object.__setattr__(self, "log_range", (lo, hi))
        self._set_attributes(space_dim=self.d)

    dimension = 1
    element_shape = (1,)
    is_compact = False
    is_finite = False

    def identity(
        self,
        batch_shape: Sequence[int] = (),
        device: torch.device | str | None = None,
        dtype: torch.dtype | None = None,
    ) -> torch.Tensor:
        return torch.ones(*tuple(batch_shape), 1, **self._factory_kwargs(device, dtype))

    def product(self, g: torch.Tensor, h: torch.Tensor) -> torch.Tensor:
        return self.check_element(g, "g") * self.check_element(h, "h")

    def inverse(self, g: torch.Tensor) -> torch.Tensor:
        return 1.0 / self.check_element(g)

    def exp(self, X: torch.Tensor) -> torch.Tensor:
        return torch.exp(self._check_algebra(X))

    def log(self, g: torch.Tensor) -> torch.Tensor:
        return torch.log(self.check_element(g))

    def matrix(self, g: torch.Tensor) -> torch.Tensor:
        g = self.check_element(g)
        eye = torch.eye(self.d, device=g.device, dtype=g.dtype)
        return g[..., None] * eye

    def act(self, g: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        """``s x`` (batch dimensions broadcast)."""
        g = self.check_element(g)
        x = check_trailing_shape(x, (self.d,), "x", f"points (*batch, {self.d})")
        return g.to(x.dtype) * x

    def det(self, g: torch.Tensor) -> torch.Tensor:
        return self.check_element(g)[..., 0] ** self.d

    def _check_membership(self, g: torch.Tensor, name: str) -> None:
        if bool((g <= 0).any()):
            raise ValueError(f"{name} must hold positive scales s > 0, got {float(g.min()):.4g}")

    def sample(
        self,
        n: int,
        generator: torch.Generator | None = None,
        device: torch.device | str | None = None,
        dtype: torch.dtype | None = None,
    ) -> torch.Tensor:
        """Log-uniform scales: ``log s`` uniform on ``log_range``."""
        n = self._check_n(n)
        lo, hi = self.log_range
        u = torch.rand(n, 1, generator=generator, **self._factory_kwargs(device, dtype))
        return torch.exp(lo + (hi - lo) * u)

    def grid(
        self,
        n: int,
        device: torch.device | str | None = None,
        dtype: torch.dtype | None = None,
    ) -> torch.Tensor:
        """``exp(linspace(lo, hi, n))``, ascending (``grid(1)`` is ``exp(lo)``)."""
        n = self._check_n(n)
        lo, hi = self.log_range
        t = torch.linspace(lo, hi, n, device=device, dtype=torch.float64)
        return torch.exp(t).to(self._factory_kwargs(device, dtype)["dtype"]).unsqueeze(-1)

    def normalized_log(self, g: torch.Tensor) -> torch.Tensor:
        """``(2 log s - lo - hi) / (hi - lo)``: ``log_range`` mapped to ``[-1, 1]``."""
        lo, hi = self.log_range
        return (2 * self.log(g) - (lo + hi)) / (hi - lo)

    def __repr__(self) -> str:
        return f"Scaling(d={self.d}, log_range={self.log_range})"
