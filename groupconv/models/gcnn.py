"""P4CNN-style G-CNNs (Cohen & Welling, 2016) for any finite or sampled group, and the matching
plain CNN (Z2CNN) baseline.

:class:`GCNN` is ``LiftingConv -> [GroupConv]* -> invariant pooling -> Linear``, every conv
followed by a norm that shares its statistics across the group axis (``GroupBatchNorm``) and a
ReLU, with 2x2 spatial max pools after the layers listed in ``pool_after``. It works for any
:class:`~groupconv.groups.Group` acting on the plane:

* finite groups (``CyclicGroup(4)``: the P4CNN; ``DihedralGroup(4)``: P4M) with discrete
  kernels transformed exactly by index permutation;
* continuous groups sampled on a grid (``SO2()`` with ``num_elements=8``) with discrete
  (interpolated) or continuous kernels (``kernel_net="siren"``: a SIREN evaluated on the
  rotated kernel coordinates and the group-axis embedding).

The readout reduces the group axis (max) and space (mean or max), so the logits are invariant to
every exact action of the group grid on the input (rotations by 90 degrees for C4 and for an
SO(2) grid of 8, the mirrors for D4). Exactness needs every pooled map size to be divisible by 2
(odd-sized maps make strided pooling break the symmetry): a 16x16 input pooled twice
(16 -> 8 -> 4) is exact; the constructor cannot know the input size, so :meth:`GCNN.forward`
raises on an odd map before a pool.

:class:`Z2CNN` is the same network with ``nn.Conv2d`` and ``BatchNorm2d`` (translation
equivariance only), for comparisons at a similar parameter count (a C4 G-CNN with ``c`` fields
per layer has about as many parameters as a Z2CNN with ``2c`` channels).

Example:
    >>> import torch
    >>> from groupconv.groups import CyclicGroup
    >>> net = GCNN(1, 10, CyclicGroup(4), channels=(4, 4), pool_after=(0,)).eval()
    >>> x = torch.randn(2, 1, 8, 8)
    >>> torch.allclose(net(x), net(torch.rot90(x, 1, dims=(-2, -1))), atol=1e-5)
    True
"""

from __future__ import annotations

import copy
import math
from collections.abc import Sequence
from typing import Any, Literal

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from .._validation import (
    check_choice,
    check_dropout,
    check_float_tensor,
    check_input_dtype,
    check_positive_int,
)
from ..groups import CyclicGroup, Group
from ..nn.group.gconv import GroupConv, LiftingConv
from ..nn.group.pooling import BlurPool, GlobalInvariantPool, OversampledActivation, SpatialMaxPool
from ._common import (
    InvariantImageClassifier,
    check_channels,
    check_pool_after,
    group_norm,
    image_group,
    off_grid_rotations,
)

__all__ = ["GCNN", "Z2CNN", "count_parameters"]

NormName = Literal["batch", "layer", "none"]


def count_parameters(model: nn.Module, trainable_only: bool = True) -> int:
    """Number of (trainable) scalar parameters of ``model``.

    Example:
        >>> count_parameters(Z2CNN(1, 10, channels=(4,), pool_after=()))
        94
    """
    return sum(p.numel() for p in model.parameters() if p.requires_grad or not trainable_only)


_ACTIVATIONS = {"relu": (torch.relu, nn.ReLU), "gelu": (F.gelu, nn.GELU), "elu": (F.elu, nn.ELU)}


def _gaussian_taps(sigma: float) -> Tensor:
    """Normalised 1D Gaussian taps of standard deviation ``sigma`` (radius ``ceil(3 sigma)``)."""
    if sigma <= 0:
        return torch.ones(1)
    r = max(1, math.ceil(3 * sigma))
    t = torch.arange(-r, r + 1, dtype=torch.float64)
    g = torch.exp(-t * t / (2 * sigma * sigma))
    return (g / g.sum()).to(torch.get_default_dtype())


def _separable_blur(x: Tensor, taps: Tensor) -> Tensor:
    """``(B, C, H, W)`` blurred per channel by ``taps`` along both axes (zero padding, same size)."""
    c, r = x.shape[1], taps.numel() // 2
    kh = taps.view(1, 1, -1, 1).expand(c, 1, -1, 1)
    kw = taps.view(1, 1, 1, -1).expand(c, 1, 1, -1)
    return F.conv2d(F.conv2d(x, kh, padding=(r, 0), groups=c), kw, padding=(0, r), groups=c)


def _blur_convs(taps: Tensor, channels: int) -> list[nn.Module]:
    """The input blur as two depthwise ``nn.Conv2d`` (for :meth:`GCNN.export`)."""
    r = taps.numel() // 2
    convs: list[nn.Module] = []
    for shape, pad in (((taps.numel(), 1), (r, 0)), ((1, taps.numel()), (0, r))):
        conv = nn.Conv2d(channels, channels, shape, padding=pad, groups=channels, bias=False,
                         dtype=taps.dtype, device=taps.device)
        with torch.no_grad():
            conv.weight.copy_(taps.view(1, 1, *shape).expand(channels, 1, *shape))
        convs.append(conv.requires_grad_(False))
    return convs


class GCNN(InvariantImageClassifier, nn.Module):
    """P4CNN-style G-CNN: lifting conv, group convs, invariant pooling, linear classifier.

    Args:
        in_channels: input image channels.
        num_classes: number of logits.
        group: the rotation/reflection group H acting on R^2 (default ``CyclicGroup(4)``).
        channels: fields (channels per group element) of each conv layer; the first layer is
            the lifting conv. Default ``(10,) * 6`` (Cohen & Welling's P4CNN has 10 per layer).
        kernel_size: odd kernel size of every layer (``first_kernel_size`` for the lifting).
        first_kernel_size: kernel size of the lifting layer (default ``kernel_size``).
        pool_after: indices of layers followed by a 2x2 stride-2 spatial max pool.
        num_elements: size of the group grid (finite groups: the order; continuous: needed).
        kernel_net: ``None`` (discrete kernels) or a kernel net name (``"siren"``, ``"mlp"``,
            ``"rff"``) for continuous kernels (see :class:`~groupconv.nn.GroupConv`).
        kernel_net_kwargs: options of the kernel nets.
        mask, mask_radius: the spatial kernel mask of every layer (see
            :class:`~groupconv.nn.GroupConv`; continuous kernels default to a hard disc of
            radius 1 in units of the kernel half-width, which drops the corners of a 3x3
            kernel: ``mask_radius=1.5`` keeps them).
        norm: ``"batch"`` (:class:`~groupconv.nn.GroupBatchNorm`), ``"layer"``
            (:class:`~groupconv.nn.GroupLayerNorm`) or ``"none"``.
        dropout: dropout probability after every block (whole feature maps are never dropped
            differently per group element: ``nn.Dropout`` on ``(B, C, N, H, W)``; use it in
            training only).
        group_pool, spatial_pool: reductions of the invariant readout (``"max"``/``"mean"``).
        antialias: ``None`` (auto: on when the group grid has rotations that do not permute
            pixels, e.g. SO(2) with 8 elements or C8; off for C4/D4), ``True`` or ``False``.
            On: :class:`~groupconv.nn.group.pooling.BlurPool` instead of the 2x2 max pools (odd map
            sizes allowed, still exact for 90-degree rotations) and a readout over the disc
            inscribed in the last map (``GlobalInvariantPool(disc=True)``), so that the
            network keeps the near-equivariance of its layers between the grid's angles.
        max_frequency: frequency cap of the steerable kernel basis of every layer (see
            :class:`~groupconv.nn.GroupConv`; ``None``: the default cut-off).
        activation: ``"relu"`` (default), ``"gelu"`` or ``"elu"``. A smooth nonlinearity
            creates fewer harmonics above what the pixel grid holds than ReLU's kink, so its
            maps alias less under rotations between the pixel-exact angles.
        input_blur: standard deviation (pixels) of an isotropic Gaussian low-pass applied to
            the input before the first layer (default 0: none). It removes the frequencies
            above what the pixel grid holds at every angle (a rendered or interpolated image
            aliases differently at each angle), which deeper layers amplify; the taps are
            symmetric, so exact elements stay exact.
        blurpool_max: with ``antialias`` on, whether :class:`~groupconv.nn.group.pooling.BlurPool`
            takes a 3x3 max before its low-pass (``True``, default) or is a linear low-pass and
            subsample (``False``: no square max window, as escnn's antialiased average pool; on
            the 24x24 rotated digits the trained SO(2)-8 model's any-angle logit change is
            0.118 +- 0.026 with it vs 0.128 +- 0.013 without, seeds 0-2, for 1.8 points of
            accuracy, docs/results.md).
        activation_oversample: 1 (default: the activation on the pixel grid) or 2: the
            activation evaluated on a 2x finer spatial grid and low-passed back
            (:class:`~groupconv.nn.group.pooling.OversampledActivation`), so the harmonics a
            ReLU creates do not alias. On the rotated digits it lowers the SO(2) model's
            any-angle logit change by about a third (docs/off_grid.md); 90-degree rotations
            stay exact; the forward pass costs about 3x on CPU.

    Input ``(B, in_channels, H, W)``, output ``(B, num_classes)``.

    Example:
        >>> import torch
        >>> from groupconv.groups import SO2
        >>> net = GCNN(1, 10, SO2(), channels=(4, 4), num_elements=8, kernel_net="siren")
        >>> net(torch.randn(2, 1, 8, 8)).shape
        torch.Size([2, 10])
    """

    def __init__(
        self,
        in_channels: int = 1,
        num_classes: int = 10,
        group: Group | None = None,
        channels: Sequence[int] = (10, 10, 10, 10, 10, 10),
        kernel_size: int = 3,
        *,
        first_kernel_size: int | None = None,
        pool_after: Sequence[int] = (1,),
        num_elements: int | None = None,
        kernel_net: str | None = None,
        kernel_net_kwargs: dict[str, Any] | None = None,
        mask: str | bool | None = None,
        mask_radius: float = 1.0,
        norm: NormName = "batch",
        dropout: float = 0.0,
        group_pool: str = "max",
        spatial_pool: str = "mean",
        antialias: bool | None = None,
        max_frequency: int | None = None,
        input_blur: float = 0.0,
        activation: str = "relu",
        activation_oversample: int = 1,
        blurpool_max: bool = True,
    ) -> None:
        super().__init__()
        self.activation = check_choice(activation, "activation", tuple(_ACTIVATIONS))
        if (isinstance(input_blur, bool) or not isinstance(input_blur, (int, float))
                or not 0 <= input_blur <= 8):
            raise ValueError(f"input_blur must be a float in [0, 8] (pixels), got {input_blur!r}")
        self.input_blur = float(input_blur)
        if isinstance(activation_oversample, bool) or activation_oversample not in (1, 2):
            raise ValueError(f"activation_oversample must be 1 or 2, got {activation_oversample!r}")
        self.activation_oversample = int(activation_oversample)
        act_module = _ACTIVATIONS[self.activation][1]()
        self.act: nn.Module = (OversampledActivation(act_module) if self.activation_oversample == 2
                               else act_module)
        self.register_buffer("_blur_taps", _gaussian_taps(self.input_blur), persistent=False)
        if antialias is not None and not isinstance(antialias, bool):
            raise TypeError(f"antialias must be None or a bool, got {type(antialias).__name__}")
        group = image_group(group, lambda: CyclicGroup(4))
        self.in_channels = check_positive_int(in_channels, "in_channels")
        self.num_classes = check_positive_int(num_classes, "num_classes")
        self.group = group
        chans = check_channels(channels)
        k = check_positive_int(kernel_size, "kernel_size")
        k0 = k if first_kernel_size is None else check_positive_int(first_kernel_size, "first_kernel_size")
        self.pool_after = check_pool_after(pool_after, len(chans))
        self.norm = check_choice(norm, "norm", ("batch", "layer", "none"))
        p = check_dropout(dropout)
        conv_kw: dict[str, Any] = {"num_elements": num_elements, "kernel_net": kernel_net,
                                   "mask": mask, "mask_radius": float(mask_radius)}
        if max_frequency is not None:
            conv_kw["max_frequency"] = max_frequency
        if kernel_net_kwargs:
            conv_kw["kernel_net_kwargs"] = dict(kernel_net_kwargs)
        self.convs = nn.ModuleList()
        self.norms = nn.ModuleList()
        for i, c in enumerate(chans):
            if i == 0:
                conv: nn.Module = LiftingConv(self.in_channels, c, group, k0, padding=k0 // 2,
                                              bias=self.norm == "none", **conv_kw)
            else:
                conv = GroupConv(chans[i - 1], c, group, k, padding=k // 2,
                                 bias=self.norm == "none", **conv_kw)
            self.convs.append(conv)
            self.norms.append(group_norm(self.norm, c))
        self.num_elements = self.convs[0].num_elements
        self.dropout = nn.Dropout(p)
        if antialias is None:
            antialias = off_grid_rotations(group, self.convs[0].out_grid)
        self.antialias = antialias
        if not isinstance(blurpool_max, bool):
            raise TypeError(f"blurpool_max must be a bool, got {type(blurpool_max).__name__}")
        self.pool = BlurPool(max_first=blurpool_max) if antialias else SpatialMaxPool(2)
        self.readout = GlobalInvariantPool(check_choice(group_pool, "group_pool", ("max", "mean")),
                                           check_choice(spatial_pool, "spatial_pool", ("max", "mean")),
                                           disc=antialias)
        self.head = nn.Linear(chans[-1], self.num_classes)

    def features(self, x: Tensor) -> Tensor:
        """The last group feature map ``(B, channels[-1], N, h, w)`` (before the readout)."""
        x = self._check_image(x)
        if self.input_blur > 0:
            x = _separable_blur(x, self._blur_taps.to(x.dtype))
        for i, (conv, norm) in enumerate(zip(self.convs, self.norms, strict=True)):
            x = self.dropout(self.act(norm(conv(x))))
            if i in self.pool_after:
                h, w = x.shape[-2:]
                if (h % 2 or w % 2) and not self.antialias:
                    raise ValueError(
                        f"the map before the pool after layer {i} is {h}x{w}: pooled sizes must be "
                        "even for exact equivariance (a 2x2 stride-2 pool on an odd map breaks the "
                        "rotation symmetry); use an input size divisible by "
                        f"{2 ** len(self.pool_after)}"
                    )
                x = self.pool(x)
        return x

    def forward(self, x: Tensor) -> Tensor:
        """``(B, in_channels, H, W)`` -> logits ``(B, num_classes)``, invariant to the group grid."""
        return self.head(self.readout(self.features(x)))

    def export(self) -> nn.Sequential:
        """Plain torch modules (Conv2d, BatchNorm2d, MaxPool2d, a reshape-and-max readout,
        Linear) computing this network's eval-mode logits; see :mod:`groupconv.nn.group.export`.

        Example:
            >>> import torch
            >>> net = GCNN(1, 10, channels=(4, 4), pool_after=(0,)).eval()
            >>> x = torch.randn(2, 1, 8, 8)
            >>> torch.allclose(net.export()(x), net(x), atol=1e-5)
            True
        """
        from ..nn.group.export import export_stack

        layers = _blur_convs(self._blur_taps, self.in_channels) if self.input_blur > 0 else []
        for i, (conv, norm) in enumerate(zip(self.convs, self.norms, strict=True)):
            act = copy.deepcopy(self.act)
            layers += [conv, norm, act] + ([self.pool] if i in self.pool_after else [])
        return export_stack([*layers, self.readout, self.head])

    def lifting_kernels(self) -> Tensor:
        """The lifting layer's expanded kernels ``(C, N, in_channels, k, k)`` (for plots)."""
        lift = self.convs[0]
        with torch.no_grad():
            w = lift.expanded_weight().detach()
        c = lift.out_channels
        return w.view(c, lift.num_elements, lift.in_channels, *w.shape[-2:])

    def extra_repr(self) -> str:
        return (f"group={self.group!r}, N={self.num_elements}, pool_after={self.pool_after}, "
                f"norm={self.norm!r}, antialias={self.antialias}"
                + (f", input_blur={self.input_blur:g}" if self.input_blur else ""))


class Z2CNN(nn.Module):
    """Plain CNN with the layout of :class:`GCNN`: ``[Conv2d -> BatchNorm2d -> ReLU]`` per layer,
    2x2 max pools after ``pool_after``, a global spatial pool and a linear classifier.

    Translation equivariant only; the baseline of the G-CNN comparisons (Cohen & Welling's Z2CNN).
    Arguments as :class:`GCNN` (no group); ``norm`` is ``"batch"`` or ``"none"``.

    Example:
        >>> import torch
        >>> Z2CNN(1, 10, channels=(8, 8), pool_after=(0,))(torch.randn(2, 1, 16, 16)).shape
        torch.Size([2, 10])
    """

    def __init__(
        self,
        in_channels: int = 1,
        num_classes: int = 10,
        channels: Sequence[int] = (20, 20, 20, 20, 20, 20),
        kernel_size: int = 3,
        *,
        first_kernel_size: int | None = None,
        pool_after: Sequence[int] = (1,),
        norm: NormName = "batch",
        dropout: float = 0.0,
        spatial_pool: str = "mean",
    ) -> None:
        super().__init__()
        self.in_channels = check_positive_int(in_channels, "in_channels")
        self.num_classes = check_positive_int(num_classes, "num_classes")
        chans = check_channels(channels)
        k = check_positive_int(kernel_size, "kernel_size")
        k0 = k if first_kernel_size is None else check_positive_int(first_kernel_size, "first_kernel_size")
        self.pool_after = check_pool_after(pool_after, len(chans))
        self.norm = check_choice(norm, "norm", ("batch", "none"))
        self.spatial_pool = check_choice(spatial_pool, "spatial_pool", ("max", "mean"))
        self.convs = nn.ModuleList()
        self.norms = nn.ModuleList()
        for i, c in enumerate(chans):
            ks = k0 if i == 0 else k
            cin = self.in_channels if i == 0 else chans[i - 1]
            self.convs.append(nn.Conv2d(cin, c, ks, padding=ks // 2, bias=self.norm == "none"))
            self.norms.append(nn.BatchNorm2d(c) if self.norm == "batch" else nn.Identity())
        self.dropout = nn.Dropout(check_dropout(dropout))
        self.pool = nn.MaxPool2d(2)
        self.head = nn.Linear(chans[-1], self.num_classes)

    def features(self, x: Tensor) -> Tensor:
        """The last feature map ``(B, channels[-1], h, w)``."""
        x = check_float_tensor(x, "x")
        if x.dim() != 4 or x.shape[1] != self.in_channels:
            raise ValueError(
                f"x must have shape (B, in_channels={self.in_channels}, H, W), got shape {tuple(x.shape)}"
            )
        check_input_dtype(x, self.convs[0].weight, "Z2CNN")
        size = min(x.shape[-2:])  # host shape arithmetic: every 2x2 max pool needs >= 2 pixels
        for i, conv in enumerate(self.convs):
            size += 2 * int(conv.padding[0]) - int(conv.kernel_size[0]) + 1
            if i in self.pool_after:
                if size < 2:
                    raise ValueError(f"Z2CNN: x of spatial size {tuple(x.shape[-2:])} is too small for "
                                     f"the 2x2 max pool after layer {i}; use a larger input")
                size //= 2
        for i, (conv, norm) in enumerate(zip(self.convs, self.norms, strict=True)):
            x = self.dropout(torch.relu(norm(conv(x))))
            if i in self.pool_after:
                x = self.pool(x)
        return x

    def forward(self, x: Tensor) -> Tensor:
        """``(B, in_channels, H, W)`` -> logits ``(B, num_classes)``."""
        h = self.features(x)
        h = h.amax(dim=(-2, -1)) if self.spatial_pool == "max" else h.mean(dim=(-2, -1))
        return self.head(h)

    def lifting_kernels(self) -> Tensor:
        """The first layer's kernels as ``(C, 1, in_channels, k, k)`` (same layout as GCNN's)."""
        return self.convs[0].weight.detach().unsqueeze(1)
