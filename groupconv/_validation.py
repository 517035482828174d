"""Small argument checks shared by every layer of the package.

Errors name the argument, the expected value and the actual value. Checks on *shapes*,
*dtypes* and *devices* are free (host metadata); checks on *values* (NaN, membership) need
a device sync and are only done where the docstring says so.
"""

from __future__ import annotations

import difflib
import warnings
from collections.abc import Iterable, Mapping, Sequence

import torch

__all__ = [
    "check_positive_int",
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
