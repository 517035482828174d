"""Continuous kernel networks, kernel masks and kernel regularisers (Part I of Romero's thesis).

Kernel networks map relative positions ``(..., D)`` in ``[-1, 1]^D`` to kernel values
``(..., O)``; every one has ``in_features``, ``out_features``, ``frequency_bounds()`` (cycles per
unit, per axis) and the persistent one-shot Chang output scaling (``chang_initialize_``):

* :class:`MLP` (ReLU/LeakyReLU/Swish/GELU, CKConv knot init), :class:`SIREN`, :class:`RFF`;
* :class:`FourierNet`, :class:`GaborNet`, :class:`MAGNet` (multiplicative filter networks).

Masks: :class:`GaussianMask` (learnable, dynamic cropping), :class:`CircularMask`.
Regularisers: :func:`ln_kernel_norm`, :func:`nyquist_penalty`, :func:`mask_size_penalty`,
:func:`wavelet_zero_mean_loss` (and module wrappers). Optimiser groups: :func:`param_groups`.
Fitting: :func:`fit_kernel`. The registry of the names every layer's ``kernel_net=`` accepts:
:data:`KERNEL_NETS`, :func:`build_kernel_net` (per-layer defaults in :data:`KERNEL_NET_DEFAULTS`).

Example:
    >>> import torch
    >>> from groupconv.kernels import MAGNet, GaussianMask, linspace_grid
    >>> net, mask = MAGNet(2, 8), GaussianMask(2, init_sigma=0.3)
    >>> grid = linspace_grid([33, 33])
    >>> cropped, slices = mask.crop(grid)
    >>> kernel = net(cropped) * mask(cropped)[..., None]
    >>> kernel.shape[-1], kernel.shape[0] < 33
    (8, True)
"""

from .base import KernelNet, apply_chang_scaling, scale_linear_weight_
from .fitting import TARGET_FUNCTIONS, FitResult, fit_kernel, linspace_grid, random_kernel
from .masks import CircularMask, GaussianMask
from .mfn import FourierNet, GaborNet, MAGNet, sample_gamma
from .nets import MLP, RFF, SIREN
from .param_groups import DEFAULT_LR_FACTORS, check_param_groups, param_groups, tag_parameters
from .registry import KERNEL_NET_DEFAULTS, KERNEL_NETS, build_kernel_net, kernel_net_class
from .regularizers import (
    LnKernelLoss,
    MaskSizePenalty,
    NyquistRegularizer,
    WaveletLoss,
    ln_kernel_norm,
    mask_size_penalty,
    nyquist_frequency,
    nyquist_penalty,
    wavelet_zero_mean_loss,
)

__all__ = [
    "KernelNet",
    "apply_chang_scaling",
    "scale_linear_weight_",
    "MLP",
    "SIREN",
    "RFF",
    "FourierNet",
    "GaborNet",
    "MAGNet",
    "sample_gamma",
    "GaussianMask",
    "CircularMask",
    "ln_kernel_norm",
    "LnKernelLoss",
    "nyquist_frequency",
    "nyquist_penalty",
    "NyquistRegularizer",
    "mask_size_penalty",
    "MaskSizePenalty",
    "wavelet_zero_mean_loss",
    "WaveletLoss",
    "DEFAULT_LR_FACTORS",
    "param_groups",
    "tag_parameters",
    "check_param_groups",
    "linspace_grid",
    "TARGET_FUNCTIONS",
    "random_kernel",
    "FitResult",
    "fit_kernel",
    "KERNEL_NETS",
    "KERNEL_NET_DEFAULTS",
    "build_kernel_net",
    "kernel_net_class",
]
