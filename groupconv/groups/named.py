"""The named product groups: SE(2), E(2), Sim(2), SE(3) and the scale-translation group.

Each is a :class:`~groupconv.groups.products.SemidirectProduct` ``R^d ⋊ H`` with a fixed ``H``:

* :class:`SE2` = R^2 ⋊ SO2, :class:`E2` = R^2 ⋊ O2, :class:`Sim2` = R^2 ⋊ (SO2 x R+),
* :class:`SE3` = R^3 ⋊ SO3, :class:`ScaleTranslation` = R ⋊ R+ (the wavelet group).

They are also importable from :mod:`groupconv.groups.products` and :mod:`groupconv.groups`.
Every class is a frozen dataclass compared, hashed and pickled by value.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from .base import Group
from .products import DirectProduct, SemidirectProduct
from .rotations import SO2

__all__ = ["SE2", "E2", "Sim2", "SE3", "ScaleTranslation"]


def _set(obj: object, translations: Group, H: Group) -> None:
    object.__setattr__(obj, "translations", translations)
    object.__setattr__(obj, "H", H)
    SemidirectProduct.__post_init__(obj)  # type: ignore[arg-type]


@dataclass(frozen=True, init=False, repr=False)
class SE2(SemidirectProduct):
    """The special Euclidean group SE(2) = R^2 ⋊ SO(2): elements ``(t_row, t_col, theta)``.

    Example:
        >>> import torch
        >>> G = SE2()
        >>> G.affine_matrix(torch.tensor([1.0, 2.0, 0.0])).abs().tolist()
        [[1.0, 0.0, 1.0], [0.0, 1.0, 2.0], [0.0, 0.0, 1.0]]
    """

    name = "SE2"  # type: ignore[assignment]

    def __init__(self, extent: float = 1.0) -> None:
        from .euclidean import Translations

        _set(self, Translations(2, extent=extent), SO2())

    def __repr__(self) -> str:
        return "SE2()" if self.translations.extent == 1.0 else f"SE2(extent={self.translations.extent})"


@dataclass(frozen=True, init=False, repr=False)
class E2(SemidirectProduct):
    """The Euclidean group E(2) = R^2 ⋊ O(2): elements ``(t_row, t_col, theta, m)``.

    Example:
        >>> import torch
        >>> E2().det(torch.tensor([0.0, 0.0, 0.3, -1.0])).item()
        -1.0
    """

    name = "E2"  # type: ignore[assignment]

    def __init__(self, extent: float = 1.0) -> None:
        from .euclidean import Translations
        from .rotations import O2

        _set(self, Translations(2, extent=extent), O2())

    def __repr__(self) -> str:
        return "E2()" if self.translations.extent == 1.0 else f"E2(extent={self.translations.extent})"


@dataclass(frozen=True, init=False, repr=False)
class Sim2(SemidirectProduct):
    """The similarity group Sim(2) = R^2 ⋊ (SO(2) x R+): elements ``(t_row, t_col, theta, s)``.

    H is ``DirectProduct(SO2(), Scaling(2), action="commuting")`` whose matrix is
    ``s R(theta)``; ``det = s**2``.

    Example:
        >>> import torch
        >>> g = torch.tensor([0.0, 0.0, torch.pi / 2, 2.0])  # rotate by 90 degrees, scale by 2
        >>> Sim2().act(g, torch.tensor([1.0, 0.0])).round().abs().tolist()
        [0.0, 2.0]
    """

    name = "Sim2"  # type: ignore[assignment]

    def __init__(self, extent: float = 1.0, log_range: tuple[float, float] = (0.0, math.log(8.0))) -> None:
        from .euclidean import Scaling, Translations

        H = DirectProduct(SO2(), Scaling(2, log_range=log_range), action="commuting")
        _set(self, Translations(2, extent=extent), H)

    def __repr__(self) -> str:
        return f"Sim2(extent={self.translations.extent}, log_range={self.H.factors[1].log_range})"


@dataclass(frozen=True, init=False, repr=False)
class SE3(SemidirectProduct):
    """The special Euclidean group SE(3) = R^3 ⋊ SO(3): elements ``concat(t (3,), R.flatten() (9,))``.

    Example:
        >>> import torch
        >>> G = SE3()
        >>> G.element_shape, G.dimension
        ((12,), 6)
    """

    name = "SE3"  # type: ignore[assignment]

    def __init__(self, extent: float = 1.0) -> None:
        from .euclidean import Translations
        from .so3 import SO3

        _set(self, Translations(3, extent=extent), SO3())

    def __repr__(self) -> str:
        return "SE3()" if self.translations.extent == 1.0 else f"SE3(extent={self.translations.extent})"


@dataclass(frozen=True, init=False, repr=False)
class ScaleTranslation(SemidirectProduct):
    """The 1-D scale-translation (wavelet) group R ⋊ R+: elements ``(t, s)``.

    ``(t, s)(t', s') = (t + s t', s s')``, acting on the line by ``x -> s x + t``, ``det = s``.

    Example:
        >>> import torch
        >>> G = ScaleTranslation()
        >>> G.product(torch.tensor([1.0, 2.0]), torch.tensor([3.0, 4.0])).tolist()
        [7.0, 8.0]
    """

    name = "ScaleTranslation"  # type: ignore[assignment]

    def __init__(self, extent: float = 1.0, log_range: tuple[float, float] = (0.0, math.log(8.0))) -> None:
        from .euclidean import Scaling, Translations

        _set(self, Translations(1, extent=extent), Scaling(1, log_range=log_range))

    def __repr__(self) -> str:
        return f"ScaleTranslation(extent={self.translations.extent}, log_range={self.H.log_range})"
