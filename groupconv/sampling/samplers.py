"""Discretisations of groups: deterministic grids, Haar samples, stratified and perturbed grids.

A :class:`Sampler` is a small frozen value object (picklable, compared by value, no
``nn.Module``) that turns a :class:`~groupconv.groups.Group` into a finite set of elements a
layer integrates over. Every sampler is called the same way::

    sampler(group, n, batch_size=None, generator=None, device=None, dtype=None)

and returns ``(n, *element_shape)``, or ``(batch_size, n, *element_shape)`` when the sampler
draws one discretisation per batch element (``per="batch"``). Samplers that draw once per call
(``per="call"``) ignore ``batch_size``: their grid is shared by the whole batch.

Normalisation: a sum over the sampled elements approximates the Haar integral
``int_H f(h) dmu(h)`` with the quadrature weights returned by :meth:`Sampler.weights`. All
built-in samplers use equal weights ``1/n`` (they sum to 1), so layers compute a *mean* over
the group axis and activations do not scale with ``n`` (the research notes warn that peer
code mixes ``2 pi / N`` factors and no factor at all).

Randomness always comes from the ``generator`` argument. Random numbers are drawn on the
generator's device and moved to ``device``, so a CPU generator gives the same elements on every
device.

Example:
    >>> import torch
    >>> from groupconv.groups import SO2
    >>> from groupconv.sampling import GridSampler, StratifiedSampler
    >>> GridSampler()(SO2(), 4).squeeze(-1).tolist()  # doctest: +ELLIPSIS
    [0.0, 1.57..., -3.14..., -1.57...]
    >>> g = StratifiedSampler()(SO2(), 8, generator=torch.Generator().manual_seed(0))
    >>> g.shape
    torch.Size([8, 1])
"""

from __future__ import annotations

import abc
import math
from dataclasses import dataclass

import torch

from .._validation import check_positive_float, check_positive_int, resolve_dtype
from ..groups.base import Group, as_group

__all__ = [
    "Sampler",
    "GridSampler",
    "HaarSampler",
    "StratifiedSampler",
    "PerturbedGridSampler",
    "LieAlgebraSampler",
]

_PER = ("call", "batch")
_DeviceLike = torch.device | str | None


# -- small helpers ------------------------------------------------------------------------------
def _check_generator(generator: object) -> torch.Generator | None:
    if generator is not None and not isinstance(generator, torch.Generator):
        raise TypeError(f"generator must be a torch.Generator or None, got {type(generator).__name__}")
    return generator


def _check_per(per: object, owner: str) -> str:
    if per not in _PER:
        raise ValueError(f"{owner}: per must be one of {_PER}, got {per!r}")
    return str(per)


def _float_or_tuple(value: object, name: str) -> float | tuple[float, ...]:
    if isinstance(value, (tuple, list)):
        if len(value) == 0:
            raise ValueError(f"{name} must be a number or a non-empty tuple of numbers, got {value!r}")
        return tuple(check_positive_float(v, f"{name}[{i}]") for i, v in enumerate(value))
    return check_positive_float(value, name)


def _draw_device(generator: torch.Generator | None, device: _DeviceLike) -> _DeviceLike:
    """Random numbers are drawn where the generator lives (then moved to ``device``)."""
    return generator.device if generator is not None else device


def _to(x: torch.Tensor, device: _DeviceLike) -> torch.Tensor:
    return x if device is None else x.to(device)


def _element_dtype(group: Group, dtype: torch.dtype | None) -> torch.dtype | None:
    """Integer-valued groups (permutations) choose their own dtype."""
    return dtype if group.element_dtype_kind == "float" else None


def _rand(
    shape: tuple[int, ...],
    generator: torch.Generator | None,
    device: _DeviceLike,
    dtype: torch.dtype | None,
) -> torch.Tensor:
    u = torch.rand(shape, generator=generator, device=_draw_device(generator, device),
                   dtype=resolve_dtype(dtype))
    return _to(u, device)


def _haar(
    group: Group, num: int, generator: torch.Generator | None, device: _DeviceLike, dtype: torch.dtype | None
) -> torch.Tensor:
    g = group.sample(num, generator=generator, device=_draw_device(generator, device),
                     dtype=_element_dtype(group, dtype))
    return _to(g, device)


def _grid(group: Group, n: int, device: _DeviceLike, dtype: torch.dtype | None) -> torch.Tensor:
    dtype = _element_dtype(group, dtype)
    if group.is_finite and n == group.order:
        return group.elements(device=device, dtype=dtype)
    return group.grid(n, device=device, dtype=dtype)


def one_parameter_cell(group: Group, n: int) -> float | None:
    """The signed algebra step ``c`` with ``grid(n)[k] = grid(n)[0] exp(k c)``, or ``None``.

    Defined for one-dimensional Lie groups whose uniform grid is a one-parameter progression
    (SO(2), R+, R). For compact groups and ``n == 1`` the step is the full period, measured on
    ``grid(2)``. Computed on the CPU in float64 (no device sync). ``None`` when the group is not
    one-dimensional or its grid is not such a progression (e.g. O(2): rotations and mirrors).

    Example:
        >>> from groupconv.groups import SO2
        >>> round(one_parameter_cell(SO2(), 4), 6) == round(math.pi / 2, 6)
        True
    """
    if group.is_finite or group.dimension != 1 or group.algebra_dim != 1:
        return None
    m = n if n >= 2 else 2
    if n == 1 and not group.is_compact:
        return None
    try:
        g = group.grid(m, device="cpu", dtype=torch.float64)
        step = group.log(group.product(group.inverse(g[:1]), g[1:2]))
        c = float(step.reshape(-1)[0])
        if not math.isfinite(c) or c == 0.0:
            return None
        k = torch.arange(m, dtype=torch.float64).unsqueeze(-1)
        expected = group.product(g[:1], group.exp(k * c))
        err = float(group.distance(expected, g).max())
    except (TypeError, ValueError, NotImplementedError, RuntimeError, IndexError):
        return None
    if not err < 1e-6 * max(1.0, abs(c) * m):
        return None
    if n == 1:  # compact: the single cell is the whole circle
        return abs(c) * 2
    return abs(c) if group.is_compact else c


# -- the base class ----------------------------------------------------------------------------
@dataclass(frozen=True)
class Sampler(abc.ABC):
    """Base class of group discretisations (a frozen, picklable value object).

    Subclasses implement :meth:`_sample` (and may override :meth:`num_elements`,
    :meth:`weights`, :attr:`is_deterministic`). Calling a sampler validates the arguments and
    returns ``(n, *element_shape)``, or ``(batch_size, n, *element_shape)`` for samplers with
    ``per="batch"``.

    Example:
        >>> from groupconv.groups import CyclicGroup
        >>> from groupconv.sampling import GridSampler
        >>> GridSampler()(CyclicGroup(4)).shape
        torch.Size([4, 1])
    """

    @property
    def is_deterministic(self) -> bool:
        """Whether two calls return the same elements (no generator is used)."""
        return False

    @property
    def per_batch_element(self) -> bool:
        """Whether one discretisation is drawn per batch element (output ``(B, n, ...)``)."""
        return getattr(self, "per", "call") == "batch"

    def num_elements(self, group: Group, n: int | None = None) -> int:
        """The number of elements a call with this ``n`` returns (validates ``n``)."""
        if n is None:
            raise ValueError(
                f"{type(self).__name__} needs the number of elements n (a positive int), got None"
            )
        return check_positive_int(n, "n")

    def weights(
        self,
        group: Group,
        n: int | None = None,
        *,
        device: _DeviceLike = None,
        dtype: torch.dtype | None = None,
    ) -> torch.Tensor:
        """Quadrature weights ``(n,)`` summing to 1: ``sum_i w_i f(h_i) ~ int f dmu``.

        Equal weights ``1/n`` for every built-in sampler: uniform grids and Haar samples
        approximate the normalised Haar measure of a compact group; log-uniform scale grids
        approximate the Haar measure ``ds/s`` of R+ restricted to their range.
        """
        group = as_group(group)
        n = self.num_elements(group, n)
        return torch.full((n,), 1.0 / n, device=device, dtype=resolve_dtype(dtype))

    def __call__(
        self,
        group: Group,
        n: int | None = None,
        *,
        batch_size: int | None = None,
        generator: torch.Generator | None = None,
        device: _DeviceLike = None,
        dtype: torch.dtype | None = None,
    ) -> torch.Tensor:
        group = as_group(group)
        n = self.num_elements(group, n)
        _check_generator(generator)
        if batch_size is not None:
            batch_size = check_positive_int(batch_size, "batch_size")
        if self.per_batch_element and batch_size is None:
            raise ValueError(
                f"{type(self).__name__}(per='batch') draws one discretisation per batch element "
                "and needs batch_size (a positive int), got None"
            )
        if dtype is not None and not isinstance(dtype, torch.dtype):
            raise TypeError(f"dtype must be a torch.dtype or None, got {type(dtype).__name__}")
        batch = batch_size if self.per_batch_element else None
        return self._sample(group, n, batch, generator, device, dtype)

    @abc.abstractmethod
    def _sample(
        self,
        group: Group,
        n: int,
        batch: int | None,
        generator: torch.Generator | None,
        device: _DeviceLike,
        dtype: torch.dtype | None,
    ) -> torch.Tensor:
        """Return ``(n, *element_shape)`` (``batch`` is None) or ``(batch, n, *element_shape)``."""


# -- deterministic grid ------------------------------------------------------------------------
@dataclass(frozen=True)
class GridSampler(Sampler):
    """The group's deterministic uniform grid: ``group.grid(n)``, identity first.

    For a finite group ``n`` defaults to the order and gives ``group.elements()``; a smaller
    ``n`` must divide the order (the grid is then a subgroup, e.g. C_2 inside C_4). Continuous
    groups need ``n``.

    Example:
        >>> from groupconv.groups import SO2, CyclicGroup
        >>> GridSampler()(SO2(), 2).squeeze(-1).tolist()  # doctest: +ELLIPSIS
        [0.0, -3.14...]
        >>> GridSampler()(CyclicGroup(6), 3).shape
        torch.Size([3, 1])
    """

    @property
    def is_deterministic(self) -> bool:
        return True

    def num_elements(self, group: Group, n: int | None = None) -> int:
        group = as_group(group)
        if group.is_finite:
            if n is None:
                return group.order
            n = check_positive_int(n, "n")
            if group.order % n != 0:
                raise ValueError(
                    f"n must divide the order {group.order} of the finite group {group.name} "
                    f"(GridSampler returns a subgroup grid), got n={n}"
                )
            return n
        if n is None:
            raise ValueError(
                f"GridSampler needs n (a positive int) for the continuous group {group.name}, got None"
            )
        return check_positive_int(n, "n")

    def _sample(self, group, n, batch, generator, device, dtype):
        return _grid(group, n, device, dtype)


# -- Haar -------------------------------------------------------------------------------------
@dataclass(frozen=True)
class HaarSampler(Sampler):
    """``n`` independent draws of ``group.sample`` (Haar for compact groups).

    Non-compact groups have no normalised Haar measure: their ``sample`` follows the measure
    each group documents. ``per="batch"`` draws an independent set per batch element.

    Example:
        >>> import torch
        >>> from groupconv.groups import SO2
        >>> g = HaarSampler(per="batch")(SO2(), 5, batch_size=3,
        ...                              generator=torch.Generator().manual_seed(0))
        >>> g.shape
        torch.Size([3, 5, 1])
    """

    per: str = "call"

    def __post_init__(self) -> None:
        _check_per(self.per, "HaarSampler")

    def _sample(self, group, n, batch, generator, device, dtype):
        m = n * (batch or 1)
        g = _haar(group, m, generator, device, dtype)
        return g if batch is None else g.reshape(batch, n, *g.shape[1:])


# -- random offsets of the grid ----------------------------------------------------------------
def _compose(grid: torch.Tensor, group: Group, offset: torch.Tensor, batch: int | None) -> torch.Tensor:
    """``grid_i u``: right-multiply the grid by one offset (per call) or one per batch element."""
    if batch is None:
        return group.product(grid, offset)  # offset (1, *e) broadcasts over the n grid points
    return group.product(grid.unsqueeze(0), offset.unsqueeze(1))  # (B, n, *e)


@dataclass(frozen=True)
class StratifiedSampler(Sampler):
    """A random stratified grid: the uniform grid right-multiplied by one random element.

    The result is ``{g_i u}`` with ``g_i = group.grid(n)`` and one random ``u`` per call
    (``per="call"``: a new draw at every call, i.e. in every layer) or per batch element
    (``per="batch"``). The spacing of the grid is preserved and a uniformly chosen point of
    the grid is Haar-distributed, so the mean over the grid is an unbiased estimate of the Haar
    integral with the (lower) variance of a stratified estimator. How ``u`` is drawn:

    * one-parameter groups (SO(2), R+, R): ``u = exp(delta c)`` with ``delta ~ U(0, 1)`` and
      ``c`` one grid step (for SO(2): an offset uniform in ``[0, 2 pi / n)``), so element ``i``
      stays in cell ``[g_i, g_{i+1})`` (uniform there) and the order of the grid is kept;
    * other compact groups (SO(3), O(2), finite groups): ``u`` is Haar-random. When the grid is
      a subgroup (C_n in SO(2), finite groups) ``{g_i u}`` is a uniformly random coset, i.e.
      exactly one point in each cell of a fundamental domain, though not listed cell by cell;
      here every single ``g_i u`` is Haar-distributed.
      For a finite group with ``n`` equal to its order this only permutes the elements;
    * non-compact groups of dimension > 1 have no canonical cell: use
      :class:`PerturbedGridSampler` with an explicit ``max_offset`` instead.

    Example:
        >>> import torch, math
        >>> from groupconv.groups import SO2
        >>> s = StratifiedSampler()
        >>> g = s(SO2(), 4, generator=torch.Generator().manual_seed(1))
        >>> delta = g[0, 0].item()          # the offset, one cell wide at most
        >>> 0.0 <= delta < math.pi / 2
        True
    """

    per: str = "call"

    def __post_init__(self) -> None:
        _check_per(self.per, "StratifiedSampler")

    def _sample(self, group, n, batch, generator, device, dtype):
        num = batch or 1
        if not group.is_finite:
            cell = one_parameter_cell(group, n)
            if cell is not None:
                grid = _grid(group, n, device, dtype)
                delta = _rand((num, 1), generator, device, dtype or grid.dtype) * cell
                return _compose(grid, group, group.exp(delta.to(grid.dtype)), batch)
            if not group.is_compact:
                raise ValueError(
                    f"StratifiedSampler has no grid cell for the non-compact group {group.name} "
                    f"(dimension {group.dimension}) with n={n}; use PerturbedGridSampler(max_offset=...) "
                    "or LieAlgebraSampler"
                )
        grid = _grid(group, n, device, dtype)
        u = _haar(group, num, generator, device, dtype)
        return _compose(grid, group, u, batch)


@dataclass(frozen=True)
class PerturbedGridSampler(Sampler):
    """The uniform grid right-multiplied by ``exp(eps)``, ``eps_j ~ U(0, max_offset)`` per coordinate.

    One perturbation per call (``per="call"``) or per batch element (``per="batch"``).
    ``max_offset`` is in Lie-algebra coordinates; by default (one-parameter groups only) it is
    ``(n - 1) / n`` of a grid step, i.e. ``2 pi (n - 1) / n^2`` for SO(2), the whole-grid
    perturbation of the CKG-CNN code. Finite groups cannot be perturbed continuously.

    Example:
        >>> import torch, math
        >>> from groupconv.groups import SO2
        >>> g = PerturbedGridSampler()(SO2(), 4, generator=torch.Generator().manual_seed(0))
        >>> 0.0 <= g[0, 0].item() < 2 * math.pi * 3 / 16
        True
    """

    max_offset: float | None = None
    per: str = "call"

    def __post_init__(self) -> None:
        _check_per(self.per, "PerturbedGridSampler")
        if self.max_offset is not None:
            object.__setattr__(self, "max_offset", check_positive_float(self.max_offset, "max_offset"))

    def _sample(self, group, n, batch, generator, device, dtype):
        if group.is_finite or group.dimension == 0:
            raise ValueError(
                f"PerturbedGridSampler needs a Lie group of dimension >= 1, got the finite group "
                f"{group.name}; use StratifiedSampler or HaarSampler"
            )
        max_offset = self.max_offset
        if max_offset is None:
            cell = one_parameter_cell(group, n)
            if cell is None:
                raise ValueError(
                    f"PerturbedGridSampler needs max_offset (a positive float) for {group.name}: "
                    "the default (n-1)/n of a grid step exists only for one-parameter groups, got None"
                )
            max_offset = abs(cell) * (n - 1) / n if n > 1 else abs(cell)
        grid = _grid(group, n, device, dtype)
        eps = _rand((batch or 1, group.algebra_dim), generator, device, dtype or grid.dtype) * max_offset
        return _compose(grid, group, group.exp(eps.to(grid.dtype)), batch)


# -- Lie-algebra samplers ------------------------------------------------------------------------
_DISTRIBUTIONS = ("normal", "uniform")


@dataclass(frozen=True)
class LieAlgebraSampler(Sampler):
    """Push a distribution on Lie-algebra coordinates through ``group.exp``.

    ``distribution="normal"``: ``X ~ N(0, diag(scale^2))``; ``"uniform"``: ``X ~ U([-box, box])``
    per coordinate. ``scale`` and ``box`` are a float or one float per algebra coordinate. The
    resulting measure is the push-forward, *not* Haar (e.g. concentrated near the identity for a
    small ``scale``); :meth:`weights` are the Monte-Carlo weights ``1/n`` of that measure.

    Example:
        >>> import torch
        >>> from groupconv.groups import SO2
        >>> s = LieAlgebraSampler("uniform", box=0.1)
        >>> bool(s(SO2(), 100, generator=torch.Generator().manual_seed(0)).abs().max() <= 0.1)
        True
    """

    distribution: str = "normal"
    scale: float | tuple[float, ...] = 1.0
    box: float | tuple[float, ...] = 1.0
    per: str = "call"

    def __post_init__(self) -> None:
        _check_per(self.per, "LieAlgebraSampler")
        if self.distribution not in _DISTRIBUTIONS:
            raise ValueError(
                f"LieAlgebraSampler: distribution must be one of {_DISTRIBUTIONS}, got {self.distribution!r}"
            )
        object.__setattr__(self, "scale", _float_or_tuple(self.scale, "scale"))
        object.__setattr__(self, "box", _float_or_tuple(self.box, "box"))

    def _widths(self, group: Group, device: _DeviceLike, dtype: torch.dtype) -> torch.Tensor:
        name = "scale" if self.distribution == "normal" else "box"
        value = getattr(self, name)
        d = group.algebra_dim
        if isinstance(value, tuple) and len(value) != d:
            raise ValueError(
                f"{name} must have one entry per algebra coordinate of {group.name} ({d}), "
                f"got {len(value)}: {value}"
            )
        return torch.as_tensor(value, device=device, dtype=dtype).expand(d)

    def _sample(self, group, n, batch, generator, device, dtype):
        if group.is_finite or group.dimension == 0:
            raise ValueError(
                f"LieAlgebraSampler needs a Lie group of dimension >= 1, got the finite group {group.name}"
            )
        dtype = resolve_dtype(dtype)
        shape = (batch or 1) * n, group.algebra_dim
        dev = _draw_device(generator, device)
        if self.distribution == "normal":
            z = torch.randn(shape, generator=generator, device=dev, dtype=dtype)
        else:
            z = 2 * torch.rand(shape, generator=generator, device=dev, dtype=dtype) - 1
        X = _to(z, device) * self._widths(group, z.device if device is None else device, dtype)
        g = group.exp(X)
        return g if batch is None else g.reshape(batch, n, *g.shape[1:])
