"""Modules: continuous-kernel convolutions on R^d (CKConv, FlexConv, CCNN's separable layers).

Group convolutions, attention and wavelet layers are exported here as they are added.
"""

from .ckconv import KERNEL_NETS, CKConv, SeparableCKConv, build_kernel_net
from .flexconv import FlexConv, SeparableFlexConv

__all__ = [
    "CKConv",
    "SeparableCKConv",
    "FlexConv",
    "SeparableFlexConv",
    "KERNEL_NETS",
    "build_kernel_net",
]
