"""Wavelet networks: scale-translation equivariant classifiers of raw 1-D signals.

:class:`WaveletNet` follows the Wavelet Networks recipe (Romero et al., TMLR 2024):
raw signal ``(B, C_in, L)`` -> :class:`~groupconv.nn.wavelet.ScaleLiftingConv1d` onto a dyadic
scale grid -> blocks of [:class:`~groupconv.nn.wavelet.ScaleGroupConv1d` -> batch norm shared
over scales -> ReLU -> max pooling along time] -> invariant readout (mean over time, max over
scales) -> linear classifier. The normalisation is ``BatchNorm2d`` on ``(B, C, N, L)``: one
mean/variance/affine per channel, shared by every scale and time step, so it commutes with
the scale-axis shift and with translations. Time pooling and the receptive-field borders make
the network approximately (not exactly) invariant to dyadic dilations; translations are exact
with ``padding_mode="circular"`` and ``pool=1`` (pooling windows break integer shifts that are
not multiples of the pooling factor).

Built for long signals (10^4 - 10^5 samples): every layer is a blurred dilated ``conv1d`` per
scale (no dilated kernel is materialised) and the time axis is pooled by ``pool`` after each
layer.

Example:
    >>> import torch
    >>> net = WaveletNet(1, 10)
    >>> net(torch.randn(2, 1, 4000)).shape
    torch.Size([2, 10])
"""

from __future__ import annotations

from collections.abc import Sequence

from torch import Tensor, nn

from .._validation import check_float_tensor, check_input_dtype, check_positive_int
from ..nn.wavelet import (
    ScaleGroupConv1d,
    ScaleInvariantReadout,
    ScaleLiftingConv1d,
    ScaleTimeMaxPool,
    wavelet_admissibility_loss,
)
from ..spaces import SequenceField, TrivialField

__all__ = ["WaveletNet"]


class WaveletNet(nn.Module):
    """A scale-translation equivariant CNN on raw signals with an invariant classifier head.

    Args:
        in_channels: channels of the raw signal (1 for mono audio).
        num_classes: outputs of the linear head.
        channels: output channels of the lifting layer, then of each group-conv block.
        num_scales: dyadic scales ``1 .. 2^(num_scales - 1)`` of the lifting layer.
        lift_kernel_size: odd taps of the learned mother wavelet (at scale 1).
        kernel_size: odd spatial taps of the group convolutions.
        scale_support: local support ``S`` of the group-conv kernels along log-scale.
        crop: drop the output scales whose support leaves the grid (the scale axis shrinks by
            ``S - 1`` per block) instead of padding it with zeros.
        pool: time max-pooling factor after every layer (1 disables it).
        padding_mode: ``"zeros"`` or ``"circular"``.
        blur_order: B-spline degree of the anti-aliasing blur (``None``: none).
        dropout: dropout before the linear head.

    Example:
        >>> import torch
        >>> net = WaveletNet(1, 3, channels=(4, 8), num_scales=3, crop=True, scale_support=2)
        >>> net.num_scales_out, net(torch.randn(1, 1, 256)).shape
        (2, torch.Size([1, 3]))
    """

    def __init__(
        self,
        in_channels: int,
        num_classes: int,
        channels: Sequence[int] = (16, 32, 32),
        num_scales: int = 6,
        lift_kernel_size: int = 31,
        kernel_size: int = 3,
        scale_support: int = 2,
        crop: bool = False,
        pool: int = 4,
        padding_mode: str = "zeros",
        blur_order: int | None = 2,
        dropout: float = 0.0,
    ) -> None:
        super().__init__()
        self.in_channels = check_positive_int(in_channels, "in_channels")
        self.num_classes = check_positive_int(num_classes, "num_classes")
        channels = tuple(check_positive_int(c, f"channels[{i}]") for i, c in enumerate(channels))
        if not channels:
            raise ValueError("channels must hold at least one entry (the lifting layer), got ()")
        self.pool = check_positive_int(pool, "pool")
        if not 0.0 <= float(dropout) < 1.0:
            raise ValueError(f"dropout must be in [0, 1), got {dropout!r}")
        n = check_positive_int(num_scales, "num_scales")
        self.lift = ScaleLiftingConv1d(in_channels, channels[0], lift_kernel_size, n, bias=False,
                                       padding_mode=padding_mode, blur_order=blur_order)
        self.norms = nn.ModuleList([nn.BatchNorm2d(channels[0])])
        self.convs = nn.ModuleList()
        for i, (c_in, c_out) in enumerate(zip(channels[:-1], channels[1:])):
            if crop and scale_support > n:
                raise ValueError(
                    f"crop=True removes scale_support - 1 = {scale_support - 1} scales per block: "
                    f"block {i} has only {n} scales left (raise num_scales or lower scale_support)"
                )
            conv = ScaleGroupConv1d(c_in, c_out, kernel_size, n, scale_support, crop=crop, bias=False,
                                    padding_mode=padding_mode, blur_order=blur_order)
            self.convs.append(conv)
            self.norms.append(nn.BatchNorm2d(c_out))
            n = conv.num_out_scales
        self.num_scales_out = n
        self.act = nn.ReLU()
        self.time_pool = ScaleTimeMaxPool(self.pool) if self.pool > 1 else nn.Identity()
        self.readout = ScaleInvariantReadout("time_first")
        self.dropout = nn.Dropout(float(dropout))
        self.head = nn.Linear(channels[-1], self.num_classes)

    @property
    def in_field(self) -> SequenceField:
        return self.lift.in_field

    @property
    def out_field(self) -> TrivialField:
        return TrivialField()

    def features(self, x: Tensor) -> Tensor:
        """The last scale-translation map ``(B, C_last, N_out, L')`` before the readout."""
        x = check_float_tensor(x, "x")
        if x.dim() != 3 or x.shape[1] != self.in_channels:
            raise ValueError(f"x must be a signal (B, {self.in_channels}, L), got shape {tuple(x.shape)}")
        check_input_dtype(x, next(self.parameters(), None), "WaveletNet")
        if x.shape[-1] < self.pool ** (len(self.convs) + 1):
            raise ValueError(
                f"x must have at least pool^(layers) = {self.pool ** (len(self.convs) + 1)} samples, "
                f"got L={x.shape[-1]}"
            )
        h = self.time_pool(self.act(self.norms[0](self.lift(x))))
        for conv, norm in zip(self.convs, self.norms[1:]):
            h = self.time_pool(self.act(norm(conv(h))))
        return h

    def forward(self, x: Tensor) -> Tensor:
        return self.head(self.dropout(self.readout(self.features(x))))

    def wavelet_loss(self, weight: float = 10.0) -> Tensor:
        """The admissibility (zero-mean) loss of the learned mother wavelets (add it to the task loss)."""
        return wavelet_admissibility_loss(self, weight)

