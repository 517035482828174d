"""Continuous kernel convolutions on R^d (part I of the dissertation): CKConv, FlexConv and the
separable FlexConv of CCNN.
"""

from .ckconv import (
    KERNEL_NETS,
    CKConv,
    SeparableCKConv,
    build_kernel_net,
)
from .flexconv import FlexConv, SeparableFlexConv

__all__ = [
    "KERNEL_NETS",
    "CKConv",
    "SeparableCKConv",
    "build_kernel_net",
    "FlexConv",
    "SeparableFlexConv",
]
