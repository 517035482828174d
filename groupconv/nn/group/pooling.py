"""Pooling, invariant readout and normalisation for signals on a group grid ``(B, C, N, *spatial)``.

* :class:`GroupMaxPool`, :class:`GroupMeanPool`: reduce the group axis,
  ``(B, C, N, *s) -> (B, C, *s)``; invariant to any permutation of the axis, hence to the
  action of H on it (the spatial part still transforms: the output is a signal on R^d).
* :class:`SpatialMaxPool`, :class:`SpatialAvgPool`: spatial pooling of group maps (the group
  axis is folded into the channels), also for plain ``(B, C, *s)`` maps.
* :class:`BlurPool`: anti-aliased stride-2 pooling of 2D maps (a 3x3 stride-1 max, then a
  binomial blur sampled every 2 pixels), symmetric about the map centre for odd AND even sizes
  (exact under 90-degree rotations and flips) and low-passed so that off-grid rotations
  (45 degrees) survive it better than a 2x2 max pool.
* :class:`GlobalInvariantPool`: reduce space and group, ``(B, C, N, *s) -> (B, C)``; optionally
  over the disc inscribed in the map (:func:`disc_mask`), which every rotation keeps.
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

from ..._validation import (
    check_float_tensor,
    check_input_dtype,
    check_kernel_fits,
    check_positive_int,
    check_tensor,
)

__all__ = [
    "GroupMaxPool",
    "GroupMeanPool",
    "SpatialMaxPool",
    "SpatialAvgPool",
    "BlurPool",
    "OversampledActivation",
    "disc_mask",
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


def _ntuple(value: int | Sequence[int], d: int) -> tuple[int, ...]:
    return (int(value),) * d if isinstance(value, int) else tuple(int(v) for v in value)


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
        return check_float_tensor(_check_group_map(x, self.spatial_dims), "x").mean(dim=2)


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
        check_kernel_fits(x.shape[-d:], _ntuple(self.kernel_size, d), _ntuple(self.padding, d), (1,) * d,
                          type(self).__name__)
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


_BINOMIAL = {3: (1.0, 2.0, 1.0), 4: (1.0, 3.0, 3.0, 1.0)}


class BlurPool(nn.Module):
    """Anti-aliased stride-2 pooling of 2D maps ``(B, C, [N,] H, W)`` (the group axis rides along).

    ``max_first`` (default): a 3x3 stride-1 max (padding 1), then per axis a binomial low-pass
    sampled every 2 pixels: ``[1, 2, 1] / 4`` on an odd axis (output ``(n + 1) / 2``),
    ``[1, 3, 3, 1] / 8`` on an even one (output ``n / 2``), zero padding 1. Every step is
    symmetric about the map centre, so 90-degree rotations and flips commute with it EXACTLY for
    odd and even sizes; the blur removes the frequencies that a stride-2 max pool aliases, which
    is what rotations between the pixel-exact angles need (Zhang 2019, "Making convolutional
    networks shift-invariant again", applied to rotations).

    Example:
        >>> import torch
        >>> x = torch.randn(2, 3, 4, 9, 8)
        >>> BlurPool()(x).shape
        torch.Size([2, 3, 4, 5, 4])
        >>> y = BlurPool()(torch.rot90(x[..., :8, :], 1, dims=(-2, -1)))
        >>> torch.allclose(y, torch.rot90(BlurPool()(x[..., :8, :]), 1, dims=(-2, -1)), atol=1e-6)
        True
    """

    def __init__(self, max_first: bool = True) -> None:
        super().__init__()
        if not isinstance(max_first, bool):
            raise TypeError(f"max_first must be a bool, got {type(max_first).__name__}")
        self.max_first = max_first

    def forward(self, x: Tensor) -> Tensor:
        x = check_float_tensor(x, "x")
        if x.dim() not in (4, 5):
            raise ValueError(f"x must have shape (B, C, H, W) or (B, C, N, H, W), got shape {tuple(x.shape)}")
        lead = x.shape[:-2]
        y = x.reshape(1, -1, *x.shape[-2:])
        if self.max_first:
            y = F.max_pool2d(y, 3, stride=1, padding=1)
        for axis in (-2, -1):
            taps = _BINOMIAL[3 if y.shape[axis] % 2 else 4]
            k = torch.tensor(taps, dtype=y.dtype, device=y.device) / sum(taps)
            shape = (1, 1, len(taps), 1) if axis == -2 else (1, 1, 1, len(taps))
            stride, pad = ((2, 1), (1, 0)) if axis == -2 else ((1, 2), (0, 1))
            c = y.shape[1]
            y = F.conv2d(y, k.view(shape).expand(c, 1, *shape[2:]), stride=stride, padding=pad, groups=c)
        return y.view(*lead, *y.shape[-2:])

    def extra_repr(self) -> str:
        return f"max_first={self.max_first}"


def _upsample2_last(x: Tensor) -> Tensor:
    """Bilinear 2x upsampling of the last axis (``align_corners=False``, edges clamped)."""
    prev = torch.cat([x[..., :1], x[..., :-1]], -1)
    nxt = torch.cat([x[..., 1:], x[..., -1:]], -1)
    return torch.stack([0.25 * prev + 0.75 * x, 0.75 * x + 0.25 * nxt], -1).flatten(-2)


def _downsample2_last(u: Tensor) -> Tensor:
    """``[1, 3, 3, 1] / 8`` low-pass of the (even) last axis sampled every 2 (edges clamped)."""
    eo = u.unflatten(-1, (u.shape[-1] // 2, 2))
    e, o = eo[..., 0], eo[..., 1]
    before = torch.cat([e[..., :1], o[..., :-1]], -1)
    after = torch.cat([e[..., 1:], o[..., -1:]], -1)
    return (before + after + 3 * (e + o)) * 0.125


class OversampledActivation(nn.Module):
    """A pointwise nonlinearity evaluated on a 2x finer spatial grid, then low-passed back.

    ``(..., H, W) -> (..., H, W)``: bilinear 2x upsampling of the last two axes, ``act``, then
    per axis a ``[1, 3, 3, 1] / 8`` binomial low-pass sampled every 2 pixels (edges clamped).
    A ReLU creates harmonics above the map's Nyquist frequency; applied on the pixel grid they
    fold back (alias) and, the square grid being furthest from its rotated copy at 45 degrees,
    break rotations between the pixel-exact angles. On the finer grid most of them land between
    the old and new Nyquist frequencies and the low-pass removes them (the oversampled
    nonlinearity of alias-free networks, e.g. Karras et al. 2021). Every step is symmetric about
    the map centre and the same on both axes, so 90-degree rotations and flips commute with it
    exactly, for odd and even sizes. Leading axes (batch, channels, group axis) ride along.
    About 20-30 elementwise passes over a 4x larger map: cheap next to a group conv on CPU only
    for small maps.

    Example:
        >>> import torch
        >>> act = OversampledActivation(torch.nn.ReLU())
        >>> x = torch.randn(2, 3, 8, 7, 7)
        >>> y = act(x)
        >>> y.shape
        torch.Size([2, 3, 8, 7, 7])
        >>> torch.allclose(act(torch.rot90(x, 1, (-2, -1))), torch.rot90(y, 1, (-2, -1)), atol=1e-6)
        True
        >>> torch.allclose(act(torch.ones(1, 5, 5)), torch.ones(1, 5, 5))  # constants pass
        True
    """

    def __init__(self, act: nn.Module | None = None) -> None:
        super().__init__()
        if act is not None and not isinstance(act, nn.Module):
            raise TypeError(f"act must be an nn.Module or None (ReLU), got {type(act).__name__}")
        self.act = nn.ReLU() if act is None else act

    def forward(self, x: Tensor) -> Tensor:
        x = check_float_tensor(x, "x")
        if x.dim() < 2:
            raise ValueError(f"x must have at least 2 dims (..., H, W), got shape {tuple(x.shape)}")
        y = _upsample2_last(_upsample2_last(x).transpose(-1, -2)).transpose(-1, -2)
        y = self.act(y)
        return _downsample2_last(_downsample2_last(y).transpose(-1, -2)).transpose(-1, -2)


def disc_mask(size: Sequence[int], device: torch.device | str | None = None,
              dtype: torch.dtype = torch.float32) -> Tensor:
    """``(H, W)`` 0/1 mask of the pixels whose centres lie in the disc inscribed in the map
    (radius ``min(H, W) / 2`` about the map centre): the region every rotation keeps.

    Example:
        >>> disc_mask((4, 4)).int().tolist()
        [[0, 1, 1, 0], [1, 1, 1, 1], [1, 1, 1, 1], [0, 1, 1, 0]]
    """
    h, w = (int(v) for v in size)
    r = torch.arange(h, device=device, dtype=torch.float64) - (h - 1) / 2
    c = torch.arange(w, device=device, dtype=torch.float64) - (w - 1) / 2
    d2 = r.view(-1, 1) ** 2 + c.view(1, -1) ** 2
    return (d2 <= (min(h, w) / 2) ** 2 + 1e-9).to(dtype)


def reduce_space(x: Tensor, reduce: str, disc: bool = False) -> Tensor:
    """``(B, C, *s) -> (B, C)``: max or mean over space, over the inscribed disc only
    (:func:`disc_mask` of the last two dims) when ``disc``. Shared by the invariant readouts."""
    dims = tuple(range(2, x.dim()))
    if disc:
        m = disc_mask(x.shape[-2:], x.device, x.dtype)
        if reduce == "max":
            return x.masked_fill(m == 0, float("-inf")).amax(dim=dims)
        return (x * m).sum(dim=dims) / m.sum()
    return x.amax(dim=dims) if reduce == "max" else x.mean(dim=dims)


class GlobalInvariantPool(nn.Module):
    """Invariant readout ``(B, C, N, *s) -> (B, C)``: reduce the group axis, then space.

    Args:
        group_reduce: ``"max"`` (default) or ``"mean"`` over the group axis.
        spatial_reduce: ``"max"`` or ``"mean"`` (default) over space.
        spatial_dims: number of spatial dims to check (``None``: 2 or 3; 4-D maps
            ``(B, C, N, L)`` need ``spatial_dims=1``, so that an image without a group axis fails).
        disc: reduce space over the inscribed disc only (:func:`disc_mask`, 2D maps): the
            corners, which rotations between the pixel-exact angles move out of the map, are
            left out.

    Invariant to any exact action (pixel permutations and group-axis permutations).

    Example:
        >>> import torch
        >>> x = torch.randn(2, 3, 4, 5, 5)
        >>> y = GlobalInvariantPool()(x)
        >>> torch.allclose(y, GlobalInvariantPool()(torch.roll(torch.rot90(x, 1, (-2, -1)), 1, 2)))
        True
    """

    def __init__(self, group_reduce: str = "max", spatial_reduce: str = "mean",
                 spatial_dims: int | None = None, disc: bool = False) -> None:
        super().__init__()
        if not isinstance(disc, bool):
            raise TypeError(f"disc must be a bool, got {type(disc).__name__}")
        self.disc = disc
        for name, value in (("group_reduce", group_reduce), ("spatial_reduce", spatial_reduce)):
            if value not in _REDUCE:
                raise ValueError(f"{name} must be 'max' or 'mean', got {value!r}")
        self.group_reduce = group_reduce
        self.spatial_reduce = spatial_reduce
        self.spatial_dims = _check_spatial_dims(spatial_dims)

    def forward(self, x: Tensor) -> Tensor:
        x = check_float_tensor(_check_group_map(x, self.spatial_dims), "x")
        if self.spatial_dims is None and x.dim() == 4:  # (B, C, H, W) has no group axis
            raise ValueError(
                f"GlobalInvariantPool: x must have shape (B, C, N, H, W) (a group axis N), got shape "
                f"{tuple(x.shape)}; for 1-D group maps (B, C, N, L) pass spatial_dims=1")
        x = x.amax(dim=2) if self.group_reduce == "max" else x.mean(dim=2)
        if self.disc and x.dim() != 4:
            raise ValueError(f"disc=True needs 2D maps (B, C, N, H, W), got shape {tuple(x.shape)}")
        return reduce_space(x, self.spatial_reduce, self.disc)

    def extra_repr(self) -> str:
        s = f"group_reduce={self.group_reduce!r}, spatial_reduce={self.spatial_reduce!r}"
        return s + (", disc=True" if self.disc else "")


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
        check_float_tensor(input, "x")
        ref = self.weight if self.weight is not None else self.running_mean
        # torch's batch_norm accepts half/bfloat16 x with float32 statistics: only refuse the rest
        if not (input.dtype in (torch.float16, torch.bfloat16) and ref is not None
                and ref.dtype == torch.float32):
            check_input_dtype(input, ref, "GroupBatchNorm")
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
        x = check_float_tensor(_check_group_map(x, None), "x")
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
