"""Scale discretisations for dilation groups (R+ and other one-parameter scale groups).

Elements are produced from the scale ``s`` through the group's own parameterisation: a group
whose elements *are* scales (``Scaling``: ``exp(t) = e^t``) gets ``s`` itself, bit-exact
(``2^k`` is exactly representable); a group storing log-scales gets ``log s``; any other
one-parameter group gets ``exp(log s)``. The grids are uniform in ``log s``, the coordinate in
which the Haar measure ``ds / s`` of R+ is uniform, so their quadrature weights are ``1/n``.

Example:
    >>> from groupconv.sampling import DyadicScaleSampler
    >>> DyadicScaleSampler(4).scales().tolist()
    [1.0, 2.0, 4.0, 8.0]
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch

from .._validation import check_positive_float, check_positive_int, resolve_dtype
from ..groups.base import Group, as_group
from .samplers import Sampler, _check_per, _draw_device, _to

__all__ = ["DyadicScaleSampler", "LogUniformScaleSampler", "scale_parameterisation"]


def scale_parameterisation(group: Group) -> str:
    """How ``group`` stores a dilation: ``"scale"``, ``"log"`` or ``"exp"`` (anything else).

    Probed on the CPU in float64 with ``exp(log 2)``; raises ``ValueError`` if the group is not
    a one-parameter (``algebra_dim == 1``), non-compact, continuous group.

    Example:
        >>> from groupconv.groups import SO2
        >>> from groupconv.groups.euclidean import Scaling
        >>> scale_parameterisation(Scaling())
        'scale'
        >>> scale_parameterisation(SO2())  # doctest: +ELLIPSIS
        Traceback (most recent call last):
        ...
        ValueError: scale samplers need a one-parameter non-compact group (R+ dilations), got SO2 ...
    """
    group = as_group(group)
    if group.is_compact or group.is_finite or group.algebra_dim != 1 or group.dimension != 1:
        raise ValueError(
            "scale samplers need a one-parameter non-compact group (R+ dilations), got "
            f"{group.name} (compact={group.is_compact}, finite={group.is_finite}, "
            f"algebra_dim={group.algebra_dim})"
        )
    if tuple(group.element_shape) != (1,):
        return "exp"
    e = group.exp(torch.tensor([[math.log(2.0)]], dtype=torch.float64)).reshape(-1)
    if abs(float(e[0]) - 2.0) < 1e-9:
        return "scale"
    if abs(float(e[0]) - math.log(2.0)) < 1e-9:
        return "log"
    return "exp"


def _elements_from_log_scales(
    group: Group, exponent: torch.Tensor, log_base: float, base_pow: torch.Tensor | None
) -> torch.Tensor:
    """Elements for log-scales ``exponent * log_base`` (``base_pow``: the exact scales if known)."""
    kind = scale_parameterisation(group)
    if kind == "scale" and base_pow is not None:
        return base_pow.unsqueeze(-1)
    log_s = (exponent * log_base).unsqueeze(-1)
    if kind == "scale":
        return torch.exp(log_s)
    if kind == "log":
        return log_s
    return group.exp(log_s)


@dataclass(frozen=True)
class DyadicScaleSampler(Sampler):
    """The dyadic scale grid ``s_j = base^(start + j)``, ``j = 0 .. num_scales - 1``.

    Deterministic; the first scale is ``base^start`` (the identity for ``start = 0``). ``n``
    defaults to ``num_scales`` and must equal it when given. With ``base=2`` the scales are
    exactly ``2^j`` in every float dtype (the scale-translation wavelet networks use 1 .. 256).

    Example:
        >>> s = DyadicScaleSampler(3, base=2.0, start=-1)
        >>> s.scales().tolist()
        [0.5, 1.0, 2.0]
    """

    num_scales: int = 1
    base: float = 2.0
    start: int = 0

    def __post_init__(self) -> None:
        object.__setattr__(self, "num_scales", check_positive_int(self.num_scales, "num_scales"))
        base = check_positive_float(self.base, "base")
        if base == 1.0:
            raise ValueError("base must be a positive number other than 1, got 1.0")
        object.__setattr__(self, "base", base)
        if isinstance(self.start, bool) or not isinstance(self.start, int):
            raise TypeError(f"start must be an int, got {type(self.start).__name__} {self.start!r}")

    @property
    def is_deterministic(self) -> bool:
        return True

    def num_elements(self, group: Group, n: int | None = None) -> int:
        if n is None:
            return self.num_scales
        n = check_positive_int(n, "n")
        if n != self.num_scales:
            raise ValueError(f"n must equal num_scales={self.num_scales} for DyadicScaleSampler, got n={n}")
        return n

    def scales(
        self, device: torch.device | str | None = None, dtype: torch.dtype | None = None
    ) -> torch.Tensor:
        """The scales ``(num_scales,)`` (computed in float64, then cast: exact for powers of 2)."""
        j = torch.arange(self.start, self.start + self.num_scales, dtype=torch.float64)
        return torch.pow(torch.tensor(self.base, dtype=torch.float64), j).to(
            device=device, dtype=resolve_dtype(dtype)
        )

    def _sample(self, group, n, batch, generator, device, dtype):
        dtype = resolve_dtype(dtype)
        j = torch.arange(self.start, self.start + n, device=device, dtype=dtype)
        return _elements_from_log_scales(group, j, math.log(self.base), self.scales(device, dtype))


@dataclass(frozen=True)
class LogUniformScaleSampler(Sampler):
    """Scales uniform in ``log s`` between ``min_scale`` and ``max_scale``.

    ``random=False`` (default): the deterministic grid
    ``log s_k = log min + k (log max - log min) / (n - 1)`` (both ends included; ``n = 1`` gives
    ``min_scale``). ``random=True``: ``n`` independent log-uniform draws per call
    (``per="call"``) or per batch element (``per="batch"``).

    Example:
        >>> s = LogUniformScaleSampler(1.0, 4.0)
        >>> [round(v, 4) for v in s.scales(3).tolist()]
        [1.0, 2.0, 4.0]
    """

    min_scale: float = 1.0
    max_scale: float = 2.0
    random: bool = False
    per: str = "call"

    def __post_init__(self) -> None:
        lo = check_positive_float(self.min_scale, "min_scale")
        hi = check_positive_float(self.max_scale, "max_scale")
        if not hi > lo:
            raise ValueError(f"max_scale must be > min_scale={lo}, got max_scale={hi}")
        object.__setattr__(self, "min_scale", lo)
        object.__setattr__(self, "max_scale", hi)
        if not isinstance(self.random, bool):
            raise TypeError(f"random must be a bool, got {type(self.random).__name__} {self.random!r}")
        _check_per(self.per, "LogUniformScaleSampler")

    @property
    def is_deterministic(self) -> bool:
        return not self.random

    @property
    def per_batch_element(self) -> bool:
        return self.random and self.per == "batch"

    def scales(
        self, n: int, device: torch.device | str | None = None, dtype: torch.dtype | None = None
    ) -> torch.Tensor:
        """The deterministic grid of scales ``(n,)``."""
        n = check_positive_int(n, "n")
        lo, hi = math.log(self.min_scale), math.log(self.max_scale)
        t = torch.linspace(0.0, 1.0, n, dtype=torch.float64) if n > 1 else torch.zeros(1, dtype=torch.float64)
        return torch.exp(lo + t * (hi - lo)).to(device=device, dtype=resolve_dtype(dtype))

    def _sample(self, group, n, batch, generator, device, dtype):
        dtype = resolve_dtype(dtype)
        lo, hi = math.log(self.min_scale), math.log(self.max_scale)
        if not self.random:
            scales = self.scales(n, device, dtype)
            return _elements_from_log_scales(group, torch.log(scales), 1.0, scales)
        shape = (batch, n) if batch is not None else (n,)
        u = torch.rand(shape, generator=generator, device=_draw_device(generator, device), dtype=dtype)
        log_s = _to(lo + u * (hi - lo), device)
        return _elements_from_log_scales(group, log_s, 1.0, None)
