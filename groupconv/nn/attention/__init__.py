"""Attention on groups (part III): attentive group convolutions, group equivariant
self-attention, relative positional encodings and the group transformer.
"""

from .attentive import (
    AttentiveGroupConv,
    AttentiveLiftingConv,
    CoAttentiveGroupConv,
    FeatureAttention,
    GroupChannelAttention,
    GroupSpatialAttention,
    attention_memory_elements,
)
from .point_attention import LiftingPointSelfAttention, PointSelfAttention
from .positional import GroupRelativeEncoder, RelativePositionEncoder, TokenShiftField
from .self_attention import GroupSelfAttention, LiftingSelfAttention, SetSelfAttention
from .transformer import ChannelLayerNorm, GroupTransformer, TransformerBlock

__all__ = [
    "GroupSelfAttention",
    "LiftingSelfAttention",
    "SetSelfAttention",
    "LiftingPointSelfAttention",
    "PointSelfAttention",
    "AttentiveGroupConv",
    "AttentiveLiftingConv",
    "CoAttentiveGroupConv",
    "FeatureAttention",
    "GroupChannelAttention",
    "GroupSpatialAttention",
    "attention_memory_elements",
    "GroupRelativeEncoder",
    "RelativePositionEncoder",
    "TokenShiftField",
    "ChannelLayerNorm",
    "GroupTransformer",
    "TransformerBlock",
]
