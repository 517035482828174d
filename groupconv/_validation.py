"""Small argument checks shared by every layer of the package.

Errors name the argument, the expected value and the actual value. Checks on *shapes*,
*dtypes* and *devices* are free (host metadata); checks on *values* (NaN, membership) need
a device sync and are only done where the docstring says so.
"""

from __future__ import annotations

import difflib
import math
import warnings
from collections.abc import Iterable, Mapping, Sequence

import torch

__all__ = [
    "check_positive_int",
    "check_positive_float",
    "check_choice",
    "check_dropout",
    "check_tensor",
    "check_trailing_shape",
    "check_finite",
    "check_same_device_dtype",
    "resolve_dtype",
    "check_conv_geometry",
    "check_kernel_fits",
    "check_input_dtype",
    "check_rotated_kernel",
    "check_strict_kwargs",
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


def check_positive_float(value: object, name: str) -> float:
    """Return ``value`` as a ``float`` after checking it is a finite real number ``> 0``.

    ``TypeError`` for a non-number (``bool`` included), ``ValueError`` for NaN, inf or ``<= 0``.

    Example:
        >>> check_positive_float(2, "extent")
        2.0
        >>> check_positive_float(-1.0, "extent")
        Traceback (most recent call last):
        ...
        ValueError: extent must be a finite number > 0, got -1.0
    """
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise TypeError(f"{name} must be a positive float, got {type(value).__name__} {value!r}")
    value = float(value)
    if not math.isfinite(value) or value <= 0:
        raise ValueError(f"{name} must be a finite number > 0, got {value}")
    return value


def check_choice(value: object, name: str, choices: Sequence[str]) -> str:
    """Return ``value`` after checking it is one of the strings ``choices``.

    Example:
        >>> check_choice("max", "spatial_pool", ("max", "mean"))
        'max'
        >>> check_choice("sum", "spatial_pool", ("max", "mean"))
        Traceback (most recent call last):
        ...
        ValueError: spatial_pool must be one of ('max', 'mean'), got 'sum'
    """
    if not isinstance(value, str) or value not in choices:
        raise ValueError(f"{name} must be one of {tuple(choices)}, got {value!r}")
    return value


def check_dropout(p: object, name: str = "dropout") -> float:
    """Return a dropout probability as a ``float`` after checking it lies in ``[0, 1)``.

    Example:
        >>> check_dropout(0.1)
        0.1
        >>> check_dropout(1.0)
        Traceback (most recent call last):
        ...
        ValueError: dropout must be a float in [0, 1), got 1.0
    """
    if isinstance(p, bool) or not isinstance(p, (int, float)) or not 0.0 <= p < 1.0:
        raise ValueError(f"{name} must be a float in [0, 1), got {p!r}")
    return float(p)


def check_tensor(x: object, name: str) -> torch.Tensor:
    """Check that ``x`` is a tensor and return it."""
    if not isinstance(x, torch.Tensor):
        raise TypeError(f"{name} must be a torch.Tensor, got {type(x).__name__}")
    return x


def check_float_tensor(x: object, name: str) -> torch.Tensor:
    """Check that ``x`` is a floating-point tensor and return it."""
    x = check_tensor(x, name)
    if not x.is_floating_point():
        raise TypeError(f"{name} must be a floating-point tensor, got dtype {x.dtype}")
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


# -- convolution layers ------------------------------------------------------------------------
def check_conv_geometry(
    kernel_size: Sequence[int],
    stride: Sequence[int],
    padding: Sequence[int] | str,
    dilation: Sequence[int],
    owner: str,
) -> None:
    """Check the integer tuples of a convolution: ``kernel_size, stride, dilation >= 1``, ``padding >= 0``.

    Example:
        >>> check_conv_geometry((3, 3), (1, 1), (1, 1), (1, 1), "LiftingConv")
        >>> check_conv_geometry((3, 3), (0, 1), (1, 1), (1, 1), "LiftingConv")
        Traceback (most recent call last):
        ...
        ValueError: LiftingConv: stride must be >= 1 in every dimension, got (0, 1)
    """
    for name, value, low in (("kernel_size", kernel_size, 1), ("stride", stride, 1),
                             ("dilation", dilation, 1), ("padding", padding, 0)):
        if isinstance(value, str):
            continue
        if any(int(v) < low for v in value):
            raise ValueError(f"{owner}: {name} must be >= {low} in every dimension, got {tuple(value)}")


def check_kernel_fits(
    size: Sequence[int],
    kernel_size: Sequence[int],
    padding: Sequence[int] | str,
    dilation: Sequence[int],
    owner: str,
    name: str = "x",
) -> None:
    """Raise ``ValueError`` when the dilated kernel is larger than the padded input (host shapes only).

    Example:
        >>> check_kernel_fits((3, 3), (5, 5), (0, 0), (1, 1), "LiftingConv")  # doctest: +ELLIPSIS
        Traceback (most recent call last):
        ...
        ValueError: LiftingConv: x has spatial size (3, 3), padded (3, 3), smaller than the dilated ...
    """
    if isinstance(padding, str):
        if padding == "same":
            return
        padding = (0,) * len(kernel_size)
    padded = tuple(int(n) + 2 * int(p) for n, p in zip(size, padding))
    extent = tuple(int(dl) * (int(k) - 1) + 1 for k, dl in zip(kernel_size, dilation))
    if any(p < e for p, e in zip(padded, extent)):
        raise ValueError(
            f"{owner}: {name} has spatial size {tuple(int(n) for n in size)}, padded {padded}, smaller than "
            f"the dilated kernel {extent}; use a larger input, padding or a smaller kernel_size"
        )


def check_input_dtype(x: torch.Tensor, reference: torch.Tensor | None, owner: str, name: str = "x") -> None:
    """Raise ``TypeError`` when a floating ``x`` has another dtype than the layer's parameters.

    Skipped under ``torch.autocast`` (which casts on purpose) and when ``reference`` is ``None``.

    Example:
        >>> x = torch.zeros(2, dtype=torch.float16)
        >>> check_input_dtype(x, torch.zeros(2), "LiftingConv")  # doctest: +ELLIPSIS
        Traceback (most recent call last):
        ...
        TypeError: LiftingConv: x has dtype torch.float16 but the layer's parameters are torch.float32; ...
    """
    if reference is None or not x.is_floating_point() or x.dtype == reference.dtype:
        return
    if torch.is_autocast_enabled(x.device.type):
        return
    raise TypeError(
        f"{owner}: {name} has dtype {x.dtype} but the layer's parameters are {reference.dtype}; convert "
        f"one of them ({name}.to({reference.dtype}) or layer.to({x.dtype}))"
    )


def check_rotated_kernel(
    kernel_size: Sequence[int],
    padding: Sequence[int] | str,
    group_name: str,
    owner: str,
    stride: Sequence[int] = (),
    dilation: Sequence[int] = (),
) -> None:
    """For groups whose elements rotate the kernel (swap axes): the same kernel size in every
    dimension (an error), and a warning when padding, stride or dilation differ between
    dimensions (the output grid is then not rotation symmetric: inexact, but sometimes wanted).

    Example:
        >>> check_rotated_kernel((3, 5), "same", "C4", "LiftingConv")  # doctest: +ELLIPSIS
        Traceback (most recent call last):
        ...
        ValueError: LiftingConv: kernel_size must be the same in every dimension for C4, ..., got (3, 5)
    """
    if len(set(kernel_size)) > 1:
        raise ValueError(
            f"{owner}: kernel_size must be the same in every dimension for {group_name}, whose "
            f"elements rotate the kernel, got {tuple(kernel_size)}"
        )
    pad = () if isinstance(padding, str) else padding
    for name, value in (("padding", pad), ("stride", stride), ("dilation", dilation)):
        if len(set(value)) > 1:
            warnings.warn(
                f"{owner}: {name} {tuple(value)} differs between dimensions, so the layer is not "
                f"exactly equivariant to the rotations of {group_name}; use the same {name} everywhere",
                stacklevel=4,
            )


def check_strict_kwargs(owner: str, kwargs: Mapping[str, object], allowed: Iterable[str]) -> None:
    """Raise ``TypeError`` naming ``owner`` for keyword arguments it does not take (typos).

    Example:
        >>> check_strict_kwargs("LiftingConv", {"paddng": 1}, ["padding", "stride"])
        Traceback (most recent call last):
        ...
        TypeError: LiftingConv() got an unexpected keyword argument 'paddng' (did you mean 'padding'?)
    """
    allowed = list(allowed)
    for key in kwargs:
        if key not in allowed:
            close = difflib.get_close_matches(key, allowed, n=1)
            hint = f" (did you mean {close[0]!r}?)" if close else ""
            raise TypeError(f"{owner}() got an unexpected keyword argument {key!r}{hint}")
