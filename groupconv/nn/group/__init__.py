"""Lifting and group convolutions with continuous kernels on Lie groups (part II): regular and
steerable kernels, per-batch grids, separable and partial-equivariance variants, point-cloud
group convolutions, pooling and normalisation on group feature maps, and whole-model export.
"""

from .gconv import GroupConv, LiftingConv, apply_element_mask
from .partial import (
    GroupSequential,
    PartialGroupConv,
    PartialLiftingConv,
    TemperatureSchedule,
    extents,
    monotonic_decay_loss,
    partial_layers,
    partial_param_groups,
    relaxed_bernoulli,
    set_fully_equivariant,
)
from .points import COORDINATES, LiftedPoints, PointGroupConv
from .pooling import (
    BlurPool,
    GlobalInvariantPool,
    GroupBatchNorm,
    GroupLayerNorm,
    GroupMaxPool,
    GroupMeanPool,
    SpatialAvgPool,
    SpatialMaxPool,
    disc_mask,
)
from .separable import (
    VARIANTS,
    PointwiseGroupConv,
    SeparableGroupConv,
    group_conv_flops,
)

__all__ = [
    "GroupConv",
    "LiftingConv",
    "apply_element_mask",
    "GroupSequential",
    "PartialGroupConv",
    "PartialLiftingConv",
    "TemperatureSchedule",
    "extents",
    "monotonic_decay_loss",
    "partial_layers",
    "partial_param_groups",
    "relaxed_bernoulli",
    "set_fully_equivariant",
    "COORDINATES",
    "LiftedPoints",
    "PointGroupConv",
    "BlurPool",
    "GlobalInvariantPool",
    "GroupBatchNorm",
    "GroupLayerNorm",
    "GroupMaxPool",
    "GroupMeanPool",
    "SpatialAvgPool",
    "SpatialMaxPool",
    "disc_mask",
    "VARIANTS",
    "PointwiseGroupConv",
    "SeparableGroupConv",
    "group_conv_flops",
]
