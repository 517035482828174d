"""Pooling, invariant readout and normalisation for signals on a group grid ``(B, C, N, *spatial)``.

* :class:`GroupMaxPool`, :class:`GroupMeanPool`: reduce the group axis,
  ``(B, C, N, *s) -> (B, C, *s)``; invariant to any permutation of the axis, hence to the
  action of H on it (the spatial part still transforms: the output is a signal on R^d).
* :class:`SpatialMaxPool`, :class:`SpatialAvgPool`: spatial pooling of group maps (the group
  axis is folded into the channels), also for plain ``(B, C, *s)`` maps.
* :class:`GlobalInvariantPool`: reduce space and group, ``(B, C, N, *s) -> (B, C)``.
* :class:`GroupBatchNorm`: batch norm whose statistics and affine parameters are shared across
  the group axis (``BatchNorm3d``-style over ``(B, N, *s)`` per channel), so it commutes with the
  action of H.
* :class:`GroupLayerNorm`: per-sample normalisation over channels and the group axis (per
  position), or over channels, group and space (``spatial=True``); affine per channel.

Example:
    >>> import torch
    >>> x = torch.randn(2, 3, 4, 5, 5)
    >>> GroupMaxPool()(x).shape, GlobalInvariantPool()(x).shape
    (torch.Size([2, 3, 5, 5]), torch.Size([2, 3]))
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from .._validation import check_positive_int, check_tensor

__all__ = [
    "GroupMaxPool",
    "GroupMeanPool",
    "SpatialMaxPool",
    "SpatialAvgPool",
    "GlobalInvariantPool",
    "GroupBatchNorm",
    "GroupLayerNorm",
]

_REDUCE = ("max", "mean")


def _check_group_map(x: object, spatial_dims: int | None, name: str = "x") -> Tensor:
    x = check_tensor(x, name)
    if spatial_dims is None:
        if x.dim() < 4:
            raise ValueError(f"{name} must have shape (B, C, N, *spatial), got shape {tuple(x.shape)}")
    elif x.dim() != 3 + spatial_dims:
        raise ValueError(
            f"{name} must have shape (B, C, N, *{spatial_dims} spatial dims), got shape {tuple(x.shape)}"
        )
    return x


def _check_spatial_dims(spatial_dims: int | None) -> int | None:
    if spatial_dims is None:
        return None
    d = check_positive_int(spatial_dims, "spatial_dims")
    if d > 3:
        raise ValueError(f"spatial_dims must be 1, 2 or 3, got {d}")
    return d


class GroupMaxPool(nn.Module):
    """Max over the group axis: ``(B, C, N, *s) -> (B, C, *s)``.

    Args:
        spatial_dims: number of spatial dims to check (``None``: any, at least one).

    Example:
        >>> import torch
        >>> GroupMaxPool()(torch.arange(4.0).view(1, 1, 4, 1, 1)).flatten().tolist()
        [3.0]
    """

    def __init__(self, spatial_dims: int | None = None) -> None:
        super().__init__()
        self.spatial_dims = _check_spatial_dims(spatial_dims)

    def forward(self, x: Tensor) -> Tensor:
        return _check_group_map(x, self.spatial_dims).amax(dim=2)


class GroupMeanPool(GroupMaxPool):
    """Mean over the group axis: ``(B, C, N, *s) -> (B, C, *s)``.

    Example:
        >>> import torch
        >>> GroupMeanPool()(torch.arange(4.0).view(1, 1, 4, 1, 1)).flatten().tolist()
        [1.5]
    """

    def forward(self, x: Tensor) -> Tensor:
        return _check_group_map(x, self.spatial_dims).mean(dim=2)


class _SpatialPool(nn.Module):
    _fn: dict = {}

    def __init__(
        self,
        kernel_size: int | Sequence[int],
        stride: int | Sequence[int] | None = None,
        padding: int | Sequence[int] = 0,
        spatial_dims: int = 2,
    ) -> None:
        super().__init__()
        self.spatial_dims = _check_spatial_dims(spatial_dims)
        self.kernel_size = kernel_size
        self.stride = kernel_size if stride is None else stride
        self.padding = padding

    def forward(self, x: Tensor) -> Tensor:
        x = check_tensor(x, "x")
        d = self.spatial_dims
        if x.dim() not in (2 + d, 3 + d):
            raise ValueError(
                f"x must have shape (B, C, *{d} spatial) or (B, C, N, *{d} spatial), "
                f"got shape {tuple(x.shape)}"
            )
        lead = x.shape[: x.dim() - d]
        y = self._fn[d](x.reshape(lead[0], -1, *x.shape[-d:]), self.kernel_size, self.stride, self.padding)
        return y.view(*lead, *y.shape[-d:])

    def extra_repr(self) -> str:
        return (
            f"kernel_size={self.kernel_size}, stride={self.stride}, padding={self.padding}, "
            f"spatial_dims={self.spatial_dims}"
        )


class SpatialMaxPool(_SpatialPool):
    """Spatial max pooling of ``(B, C, [N,] *s)`` maps (the group axis rides along the channels).

    Exactly equivariant to rotations/mirrors when the windows tile the map symmetrically
    (``(size + 2 padding - kernel_size)`` divisible by the stride).

    Example:
        >>> import torch
        >>> SpatialMaxPool(2)(torch.randn(2, 3, 4, 8, 8)).shape
        torch.Size([2, 3, 4, 4, 4])
    """

    _fn = {1: F.max_pool1d, 2: F.max_pool2d, 3: F.max_pool3d}


class SpatialAvgPool(_SpatialPool):
    """Spatial average pooling of ``(B, C, [N,] *s)`` maps.

    Example:
        >>> import torch
        >>> SpatialAvgPool(2)(torch.randn(2, 3, 4, 8, 8)).shape
        torch.Size([2, 3, 4, 4, 4])
    """

    _fn = {1: F.avg_pool1d, 2: F.avg_pool2d, 3: F.avg_pool3d}


class GlobalInvariantPool(nn.Module):
    """Invariant readout ``(B, C, N, *s) -> (B, C)``: reduce the group axis, then space.

    Args:
        group_reduce: ``"max"`` (default) or ``"mean"`` over the group axis.
        spatial_reduce: ``"max"`` or ``"mean"`` (default) over space.
        spatial_dims: number of spatial dims to check (``None``: 2 or 3; 4-D maps
            ``(B, C, N, L)`` need ``spatial_dims=1``, so that an image without a group axis fails).

    Invariant to any exact action (pixel permutations and group-axis permutations).

    Example:
        >>> import torch
        >>> x = torch.randn(2, 3, 4, 5, 5)
        >>> y = GlobalInvariantPool()(x)
        >>> torch.allclose(y, GlobalInvariantPool()(torch.roll(torch.rot90(x, 1, (-2, -1)), 1, 2)))
        True
    """

    def __init__(self, group_reduce: str = "max", spatial_reduce: str = "mean",
                 spatial_dims: int | None = None) -> None:
        super().__init__()
        for name, value in (("group_reduce", group_reduce), ("spatial_reduce", spatial_reduce)):
            if value not in _REDUCE:
                raise ValueError(f"{name} must be 'max' or 'mean', got {value!r}")
        self.group_reduce = group_reduce
        self.spatial_reduce = spatial_reduce
        self.spatial_dims = _check_spatial_dims(spatial_dims)

    def forward(self, x: Tensor) -> Tensor:
        x = _check_group_map(x, self.spatial_dims)
        if self.spatial_dims is None and x.dim() == 4:  # (B, C, H, W) has no group axis
            raise ValueError(
                f"GlobalInvariantPool: x must have shape (B, C, N, H, W) (a group axis N), got shape "
                f"{tuple(x.shape)}; for 1-D group maps (B, C, N, L) pass spatial_dims=1")
        x = x.amax(dim=2) if self.group_reduce == "max" else x.mean(dim=2)
        dims = tuple(range(2, x.dim()))
        return x.amax(dim=dims) if self.spatial_reduce == "max" else x.mean(dim=dims)

    def extra_repr(self) -> str:
        return f"group_reduce={self.group_reduce!r}, spatial_reduce={self.spatial_reduce!r}"


class GroupBatchNorm(nn.BatchNorm3d):
    """Batch norm of group maps ``(B, C, N, *s)``: one mean/variance/affine per channel,
    shared across the group axis and space, so it commutes with the action of H.

    Same arguments, parameters and ``state_dict`` keys as ``torch.nn.BatchNorm3d`` plus
    ``spatial_dims`` (1, 2 or 3; the input has ``3 + spatial_dims`` dimensions).

    Example:
        >>> import torch
        >>> bn = GroupBatchNorm(3, spatial_dims=2)
        >>> bn(torch.randn(4, 3, 8, 5, 5)).shape
        torch.Size([4, 3, 8, 5, 5])
    """

    def __init__(self, num_features: int, spatial_dims: int = 2, eps: float = 1e-5,
                 momentum: float | None = 0.1, affine: bool = True,
                 track_running_stats: bool = True, device=None, dtype=None) -> None:
        super().__init__(num_features, eps, momentum, affine, track_running_stats, device, dtype)
        self.spatial_dims = _check_spatial_dims(spatial_dims)

    def _check_input_dim(self, input: Tensor) -> None:
        if input.dim() != 3 + self.spatial_dims:
            raise ValueError(
                f"x must have shape (B, C, N, *{self.spatial_dims} spatial dims), "
                f"got shape {tuple(input.shape)}"
            )
        if input.shape[1] != self.num_features:
            raise ValueError(
                f"x must have num_features={self.num_features} channels (dim 1), "
                f"got shape {tuple(input.shape)}"
            )


class GroupLayerNorm(nn.Module):
    """Layer norm of group maps ``(B, C, N, *s)`` with affine parameters per channel.

    ``spatial=False`` (default): statistics over ``(C, N)`` at every position and sample;
    ``spatial=True``: over ``(C, N, *s)`` per sample (like ``GroupNorm(1, C)``). Both commute
    with exact actions of H (permutations of the group axis and of the pixels).

    Example:
        >>> import torch
        >>> ln = GroupLayerNorm(3)
        >>> y = ln(torch.randn(2, 3, 4, 5, 5))
        >>> bool(y.mean(dim=(1, 2)).abs().max() < 1e-5)
        True
    """

    def __init__(self, num_channels: int, spatial: bool = False, eps: float = 1e-5,
                 affine: bool = True, device=None, dtype=None) -> None:
        super().__init__()
        self.num_channels = check_positive_int(num_channels, "num_channels")
        self.spatial = bool(spatial)
        self.eps = float(eps)
        if affine:
            self.weight = nn.Parameter(torch.ones(num_channels, device=device, dtype=dtype))
            self.bias = nn.Parameter(torch.zeros(num_channels, device=device, dtype=dtype))
        else:
            self.register_parameter("weight", None)
            self.register_parameter("bias", None)

    def forward(self, x: Tensor) -> Tensor:
        x = _check_group_map(x, None)
        if x.shape[1] != self.num_channels:
            raise ValueError(
                f"x must have num_channels={self.num_channels} channels (dim 1), got shape {tuple(x.shape)}"
            )
        dims = tuple(range(1, x.dim())) if self.spatial else (1, 2)
        var, mean = torch.var_mean(x, dim=dims, keepdim=True, correction=0)
        y = (x - mean) * torch.rsqrt(var + self.eps)
        if self.weight is not None:
            shape = (1, -1) + (1,) * (x.dim() - 2)
            y = y * self.weight.view(shape) + self.bias.view(shape)
        return y

    def extra_repr(self) -> str:
        affine = self.weight is not None
        return f"{self.num_channels}, spatial={self.spatial}, eps={self.eps}, affine={affine}"
