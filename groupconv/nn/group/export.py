"""Export group-equivariant layers and whole G-CNNs to plain ``torch.nn`` modules.

A regular group feature map ``(B, C, N, *s)`` is, in memory, the ordinary feature map
``(B, C N, *s)`` whose channel ``c N + i`` holds field ``c`` at group element ``h_i``. In eval
mode every layer of a G-CNN is then a plain torch layer on the flattened channels:

* :class:`~groupconv.nn.LiftingConv` / :class:`~groupconv.nn.GroupConv` -> ``nn.Conv{d}d`` with
  the expanded weight of the deterministic grid (:meth:`GroupConv.export`);
* :class:`~groupconv.nn.GroupBatchNorm` -> ``nn.BatchNorm{d}d(C N)`` with each channel's
  running statistics and affine parameters repeated ``N`` times (eval mode: a per-channel affine
  map, identical arithmetic);
* :class:`~groupconv.nn.GroupLayerNorm` -> :class:`FlatGroupLayerNorm` (reshape, ``var_mean``);
* :class:`~groupconv.nn.SpatialMaxPool` / ``SpatialAvgPool`` -> ``nn.MaxPool{d}d`` /
  ``nn.AvgPool{d}d``;
* :class:`~groupconv.nn.GlobalInvariantPool`, :class:`~groupconv.nn.GroupMaxPool`,
  ``GroupMeanPool`` -> :class:`FlatGroupPool` (a reshape and a max/mean, over the inscribed
  disc for ``disc=True``);
* :class:`~groupconv.nn.BlurPool` (anti-aliased pooling of off-grid rotation models) is kept: it
  is stateless max/conv ops that already treat the group axis as channels, and so is
  :class:`~groupconv.nn.group.pooling.OversampledActivation`;
* ``nn.Dropout`` -> ``nn.Identity`` (eval); ``nn.ReLU``, ``nn.Linear`` and other plain modules
  are copied.

The exported modules hold copies of the weights (no reference to the source model), live on the
source's device and dtype, and are in eval mode. Outputs equal the source model's eval-mode
outputs within float rounding (the same kernels run on the same numbers).

Example:
    >>> import torch
    >>> from groupconv.groups import CyclicGroup
    >>> from groupconv.nn import GroupBatchNorm, GroupConv, LiftingConv
    >>> G = CyclicGroup(4)
    >>> lift, conv = LiftingConv(1, 3, G, 3, padding=1), GroupConv(3, 2, G, 3, padding=1)
    >>> bn = GroupBatchNorm(3).eval()
    >>> flat = export_stack([lift, bn, torch.nn.ReLU(), conv], num_elements=4)
    >>> x = torch.randn(2, 1, 8, 8)
    >>> y = conv(torch.relu(bn(lift(x))))
    >>> torch.allclose(flat(x).view_as(y), y, atol=1e-6)
    True
"""

from __future__ import annotations

import copy
from collections.abc import Iterable

import torch
from torch import Tensor, nn

from ..._validation import check_float_tensor
from .gconv import _RegularGroupConv
from .pooling import (
    BlurPool,
    GlobalInvariantPool,
    GroupBatchNorm,
    GroupLayerNorm,
    GroupMaxPool,
    GroupMeanPool,
    OversampledActivation,
    SpatialAvgPool,
    SpatialMaxPool,
    reduce_space,
)

__all__ = ["FlatGroupPool", "FlatGroupLayerNorm", "export_module", "export_stack"]

_BN = {1: nn.BatchNorm1d, 2: nn.BatchNorm2d, 3: nn.BatchNorm3d}
_MAXPOOL = {1: nn.MaxPool1d, 2: nn.MaxPool2d, 3: nn.MaxPool3d}
_AVGPOOL = {1: nn.AvgPool1d, 2: nn.AvgPool2d, 3: nn.AvgPool3d}


class FlatGroupPool(nn.Module):
    """Reduce the group axis of a flattened map ``(B, C N, *s)``, then (optionally) space.

    ``spatial_reduce=None`` returns ``(B, C, *s)`` (a group pool); ``"max"``/``"mean"`` return
    ``(B, C)`` (the invariant readout).

    Example:
        >>> x = torch.arange(8.0).view(1, 4, 1, 2)  # C = 2 fields, N = 2 elements
        >>> FlatGroupPool(2, "max", "mean")(x).tolist()
        [[2.5, 6.5]]
    """

    def __init__(self, num_elements: int, group_reduce: str = "max",
                 spatial_reduce: str | None = "mean", disc: bool = False) -> None:
        super().__init__()
        if isinstance(num_elements, bool) or not isinstance(num_elements, int) or num_elements < 1:
            raise ValueError(f"num_elements must be a positive int, got {num_elements!r}")
        if group_reduce not in ("max", "mean"):
            raise ValueError(f"group_reduce must be 'max' or 'mean', got {group_reduce!r}")
        if spatial_reduce not in (None, "max", "mean"):
            raise ValueError(f"spatial_reduce must be None, 'max' or 'mean', got {spatial_reduce!r}")
        self.num_elements = num_elements
        self.group_reduce = group_reduce
        self.spatial_reduce = spatial_reduce
        self.disc = bool(disc)

    def forward(self, x: Tensor) -> Tensor:
        x = check_float_tensor(x, "x")
        if x.dim() < 3 or x.shape[1] % self.num_elements:
            raise ValueError(f"x must have shape (B, C*{self.num_elements}, *spatial), "
                             f"got shape {tuple(x.shape)}")
        x = x.unflatten(1, (-1, self.num_elements))
        x = x.amax(dim=2) if self.group_reduce == "max" else x.mean(dim=2)
        if self.spatial_reduce is None:
            return x
        return reduce_space(x, self.spatial_reduce, self.disc)  # as GlobalInvariantPool's readout

    def extra_repr(self) -> str:  # noqa: D102
        return (f"num_elements={self.num_elements}, group_reduce={self.group_reduce!r}, "
                f"spatial_reduce={self.spatial_reduce!r}, disc={self.disc}")


class FlatGroupLayerNorm(nn.Module):
    """:class:`~groupconv.nn.GroupLayerNorm` on a flattened map ``(B, C N, *s)``.

    Example:
        >>> ln = FlatGroupLayerNorm(3, 4)
        >>> ln(torch.randn(2, 12, 5, 5)).shape
        torch.Size([2, 12, 5, 5])
    """

    def __init__(self, num_channels: int, num_elements: int, spatial: bool = False,
                 eps: float = 1e-5, affine: bool = True) -> None:
        super().__init__()
        self.num_channels, self.num_elements = int(num_channels), int(num_elements)
        self.spatial, self.eps = bool(spatial), float(eps)
        if affine:
            self.weight = nn.Parameter(torch.ones(num_channels))
            self.bias = nn.Parameter(torch.zeros(num_channels))
        else:
            self.register_parameter("weight", None)
            self.register_parameter("bias", None)

    def forward(self, x: Tensor) -> Tensor:
        x = check_float_tensor(x, "x")
        if x.dim() < 2 or x.shape[1] != self.num_channels * self.num_elements:
            raise ValueError(f"x must have shape (B, C N = {self.num_channels}*{self.num_elements}, "
                             f"*spatial), got shape {tuple(x.shape)}")
        g = x.unflatten(1, (self.num_channels, self.num_elements))
        dims = tuple(range(1, g.dim())) if self.spatial else (1, 2)
        var, mean = torch.var_mean(g, dim=dims, keepdim=True, correction=0)
        y = (g - mean) * torch.rsqrt(var + self.eps)
        if self.weight is not None:
            shape = (1, -1) + (1,) * (g.dim() - 2)
            y = y * self.weight.view(shape) + self.bias.view(shape)
        return y.flatten(1, 2)


def _export_batchnorm(bn: GroupBatchNorm, n: int) -> nn.Module:
    if not bn.track_running_stats or bn.running_mean is None:
        raise ValueError("a GroupBatchNorm without running statistics normalises with batch "
                         "statistics in eval mode, which a flattened BatchNorm cannot reproduce: "
                         "build it with track_running_stats=True")
    ref = bn.running_mean
    flat = _BN[bn.spatial_dims](bn.num_features * n, eps=bn.eps, momentum=bn.momentum,
                                affine=bn.affine, device=ref.device, dtype=ref.dtype)
    with torch.no_grad():
        flat.running_mean.copy_(bn.running_mean.repeat_interleave(n))
        flat.running_var.copy_(bn.running_var.repeat_interleave(n))
        flat.num_batches_tracked.copy_(bn.num_batches_tracked)
        if bn.affine:
            flat.weight.copy_(bn.weight.repeat_interleave(n))
            flat.bias.copy_(bn.bias.repeat_interleave(n))
    return flat


def _export_layernorm(ln: GroupLayerNorm, n: int) -> nn.Module:
    flat = FlatGroupLayerNorm(ln.num_channels, n, ln.spatial, ln.eps, ln.weight is not None)
    if ln.weight is not None:
        flat = flat.to(device=ln.weight.device, dtype=ln.weight.dtype)
        with torch.no_grad():
            flat.weight.copy_(ln.weight)
            flat.bias.copy_(ln.bias)
    return flat


def export_module(module: nn.Module, num_elements: int | None = None) -> nn.Module:
    """The plain-torch (eval-mode) equivalent of one layer on flattened ``(B, C N, *s)`` maps.

    ``num_elements`` (the group grid size ``N`` of the incoming map) is needed for norms and
    group pools; convolutions know their own.

    Example:
        >>> from groupconv.nn import SpatialMaxPool
        >>> export_module(SpatialMaxPool(2))
        MaxPool2d(kernel_size=2, stride=2, padding=0, dilation=1, ceil_mode=False)
    """
    def need_n() -> int:
        if num_elements is None:
            raise ValueError(f"num_elements must be given to export {type(module).__name__}, got None")
        return int(num_elements)

    if isinstance(module, _RegularGroupConv):
        out = module.export()
    elif isinstance(module, GroupBatchNorm):
        out = _export_batchnorm(module, need_n())
    elif isinstance(module, GroupLayerNorm):
        out = _export_layernorm(module, need_n())
    elif isinstance(module, (SpatialMaxPool, SpatialAvgPool)):
        table = _MAXPOOL if isinstance(module, SpatialMaxPool) else _AVGPOOL
        out = table[module.spatial_dims](module.kernel_size, module.stride, module.padding)
    elif isinstance(module, GlobalInvariantPool):
        out = FlatGroupPool(need_n(), module.group_reduce, module.spatial_reduce, module.disc)
    elif isinstance(module, GroupMeanPool):
        out = FlatGroupPool(need_n(), "mean", None)
    elif isinstance(module, GroupMaxPool):
        out = FlatGroupPool(need_n(), "max", None)
    elif isinstance(module, (BlurPool, OversampledActivation)):  # stateless, group axis rides along
        out = copy.deepcopy(module)
    elif isinstance(module, (nn.Dropout, nn.Identity)):
        out = nn.Identity()
    elif type(module).__module__.startswith("torch.nn"):
        out = copy.deepcopy(module)
    else:
        raise TypeError(f"module must be a groupconv layer with a plain-torch form or a torch.nn "
                        f"module, got {type(module).__name__}")
    return out.eval()


def export_stack(modules: Iterable[nn.Module], num_elements: int | None = None) -> nn.Sequential:
    """Export a chain of layers applied in order (as ``nn.Sequential`` would) to plain torch.

    ``num_elements`` is the grid size of the chain's input (``None`` for an image input: it
    is then taken from the first lifting conv). Each conv updates it for the layers after it.

    Example:
        >>> from groupconv.groups import DihedralGroup
        >>> from groupconv.nn import GlobalInvariantPool, LiftingConv
        >>> net = export_stack([LiftingConv(1, 2, DihedralGroup(4), 3), GlobalInvariantPool()])
        >>> net(torch.randn(3, 1, 9, 9)).shape
        torch.Size([3, 2])
    """
    n = num_elements
    out = []
    for m in modules:
        out.append(export_module(m, n))
        if isinstance(m, _RegularGroupConv):
            n = m.num_elements
        elif isinstance(m, (GlobalInvariantPool, GroupMaxPool)):
            n = None
    return nn.Sequential(*out).eval()
