"""Continuous kernel convolutions on R^d (part I of the dissertation): CKConv, FlexConv and the
separable FlexConv of CCNN.
"""

from ...kernels.registry import KERNEL_NETS, build_kernel_net  # the registry, re-exported
from .ckconv import CKConv, SeparableCKConv
from .flexconv import FlexConv, SeparableFlexConv

__all__ = [
    "KERNEL_NETS",
    "CKConv",
    "SeparableCKConv",
    "build_kernel_net",
    "FlexConv",
    "SeparableFlexConv",
]
