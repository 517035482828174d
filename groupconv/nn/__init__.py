"""Modules: continuous-kernel convolutions on R^d, lifting and group convolutions, pooling and
normalisation on group feature maps, and scale-translation (wavelet) layers.
"""

from .attention import GroupSelfAttention, LiftingSelfAttention, SetSelfAttention
from .attentive import (
    AttentiveGroupConv,
    AttentiveLiftingConv,
    CoAttentiveGroupConv,
    FeatureAttention,
    GroupChannelAttention,
    GroupSpatialAttention,
    attention_memory_elements,
)
from .ckconv import KERNEL_NETS, CKConv, SeparableCKConv, build_kernel_net
from .flexconv import FlexConv, SeparableFlexConv
from .gconv import GroupConv, LiftingConv
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
from .positional import GroupRelativeEncoder, RelativePositionEncoder, TokenShiftField
from .separable import VARIANTS, PointwiseGroupConv, SeparableGroupConv, group_conv_flops
from .transformer import ChannelLayerNorm, GroupTransformer, TransformerBlock
from .wavelet import (
    ScaleGroupConv1d,
    ScaleInvariantReadout,
    ScaleLiftingConv1d,
    ScaleMaxPool,
    ScaleTimeMaxPool,
    wavelet_admissibility_loss,
)

__all__ = [
    "PointGroupConv",
    "LiftedPoints",
    "COORDINATES",
    "CKConv",
    "SeparableCKConv",
    "FlexConv",
    "SeparableFlexConv",
    "KERNEL_NETS",
    "build_kernel_net",
    "LiftingConv",
    "GroupConv",
    "GroupMaxPool",
    "GroupMeanPool",
    "SpatialMaxPool",
    "SpatialAvgPool",
    "BlurPool",
    "GlobalInvariantPool",
    "GroupBatchNorm",
    "GroupLayerNorm",
    "ScaleLiftingConv1d",
    "ScaleGroupConv1d",
    "ScaleMaxPool",
    "ScaleTimeMaxPool",
    "ScaleInvariantReadout",
    "wavelet_admissibility_loss",
    "LiftingSelfAttention",
    "GroupSelfAttention",
    "SetSelfAttention",
    "RelativePositionEncoder",
    "GroupRelativeEncoder",
    "TokenShiftField",
    "TransformerBlock",
    "GroupTransformer",
    "ChannelLayerNorm",
    "SeparableGroupConv",
    "PointwiseGroupConv",
    "group_conv_flops",
    "VARIANTS",
    "PartialLiftingConv",
    "PartialGroupConv",
    "GroupSequential",
    "TemperatureSchedule",
    "relaxed_bernoulli",
    "monotonic_decay_loss",
    "extents",
    "set_fully_equivariant",
    "partial_layers",
    "partial_param_groups",
    "AttentiveLiftingConv",
    "AttentiveGroupConv",
    "CoAttentiveGroupConv",
    "GroupChannelAttention",
    "GroupSpatialAttention",
    "FeatureAttention",
    "attention_memory_elements",
    "disc_mask",
]
