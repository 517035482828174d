"""Small argument checks shared by every layer of the package.

Errors name the argument, the expected value and the actual value. Checks on *shapes*,
*dtypes* and *devices* are free (host metadata); checks on *values* (NaN, membership) need
a device sync and are only done where the docstring says so.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch

__all__ = [
    "check_positive_int",
    "check_tensor",
    "check_trailing_shape",
    "check_finite",
    "check_same_device_dtype",
    "resolve_dtype",
]


def check_positive_int(value: object, name: str) -> int:
    """Return ``value`` as an ``int`` after checking it is an integer ``>= 1``."""
    if isinstance(value, bool) or not isinstance(value, (int,)) and not (
        isinstance(value, torch.Tensor) and value.numel() == 1 and not value.is_floating_point()
    ):
        raise TypeError(f"{name} must be a positive int, got {type(value).__name__} {value!r}")
    value = int(value)
    if value <= 0:
        raise ValueError(f"{name} must be a positive int (>= 1), got {value}")
    return value


def check_tensor(x: object, name: str) -> torch.Tensor:
    """Check that ``x`` is a tensor and return it."""
    if not isinstance(x, torch.Tensor):
        raise TypeError(f"{name} must be a torch.Tensor, got {type(x).__name__}")
    return x


def check_trailing_shape(x: object, shape: Sequence[int], name: str, what: str = "") -> torch.Tensor:
    """Check that the trailing dimensions of ``x`` equal ``shape``.

    ``what`` describes the expected layout in the error, e.g. ``"SO2 element (*batch, 1)"``.
    """
    x = check_tensor(x, name)
    shape = tuple(int(s) for s in shape)
    k = len(shape)
    if x.dim() < k or tuple(x.shape[x.dim() - k :]) != shape:
        layout = what or f"(*batch, {', '.join(map(str, shape))})"
        raise ValueError(
            f"{name} must have shape {layout} (trailing dims {shape}), got shape {tuple(x.shape)}"
        )
    return x


def check_finite(x: torch.Tensor, name: str) -> torch.Tensor:
    """Raise ``ValueError`` if ``x`` holds NaN or infinite values (a device sync)."""
    if x.is_floating_point() and not bool(torch.isfinite(x).all()):
        bad = (~torch.isfinite(x)).nonzero()[:3].tolist()
        raise ValueError(f"{name} must be finite, got NaN/inf at indices {bad} (shape {tuple(x.shape)})")
    return x


def check_same_device_dtype(a: torch.Tensor, b: torch.Tensor, name_a: str, name_b: str) -> None:
    """Raise if two tensors live on different devices or have different dtypes."""
    if a.device != b.device:
        raise ValueError(f"{name_a} and {name_b} must be on the same device, got {a.device} and {b.device}")
    if a.dtype != b.dtype:
        raise ValueError(f"{name_a} and {name_b} must have the same dtype, got {a.dtype} and {b.dtype}")


def resolve_dtype(dtype: torch.dtype | None) -> torch.dtype:
    """``dtype`` or torch's default floating dtype."""
    return torch.get_default_dtype() if dtype is None else dtype
