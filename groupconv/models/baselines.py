"""Plain convolutional baselines and the shared building blocks of the continuous-kernel models.

Baselines (fixed, discrete kernels) to compare the continuous-kernel models against:

* :class:`TCN`: the TCN-style network of :class:`~groupconv.models.ckcnn.CKCNN` with ordinary
  causal ``Conv1d`` kernels of ``kernel_size`` taps and dilation ``dilation_base ** block``
  (``dilation_base=1``: no dilation, receptive field ``1 + 2 * num_blocks * (kernel_size - 1)``;
  the E1 baseline "k = 3, same depth, no dilation" sees 9 steps).
* :class:`ConvNet`: the small strided CNN of the mnist1d reference (3 x Conv(25, k=5, stride 2),
  ReLU, linear; README: 94% on mnist1d), for sequences, images or volumes (``data_dim``).

Shared blocks: :class:`ChannelLayerNorm` (LayerNorm over the channels at every position: it
does not mix positions, so it keeps causal models causal and works at any resolution),
:func:`make_norm`, :class:`CausalConv1d` and the generic :class:`TCNBlock`.

Example:
    >>> import torch
    >>> net = TCN(2, 1, hidden_channels=8)
    >>> net(torch.randn(3, 2, 50)).shape, net.receptive_field
    (torch.Size([3, 1]), 9)
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Literal

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from .._validation import check_dropout, check_float_tensor, check_input_dtype, check_positive_int
from ..nn.attention.transformer import ChannelLayerNorm  # per-position LayerNorm over channels (shared)

__all__ = [
    "ChannelLayerNorm",
    "make_norm",
    "CausalConv1d",
    "TCNBlock",
    "SequenceReadout",
    "TCN",
    "ConvNet",
    "count_parameters",
]

NormName = Literal["layer", "batch", "none"]
Readout = Literal["last", "mean", "sequence"]


def count_parameters(model: nn.Module, trainable_only: bool = True) -> int:
    """Number of (trainable) scalar parameters of ``model``.

    Example:
        >>> count_parameters(nn.Linear(3, 2))
        8
    """
    return sum(p.numel() for p in model.parameters() if p.requires_grad or not trainable_only)


def make_norm(norm: NormName | None, channels: int, data_dim: int = 1) -> nn.Module:
    """``"layer"`` (:class:`ChannelLayerNorm`), ``"batch"`` (``BatchNorm{d}d``) or ``"none"``.

    Example:
        >>> type(make_norm("batch", 4, data_dim=2)).__name__
        'BatchNorm2d'
    """
    if norm is None or norm == "none":
        return nn.Identity()
    if norm == "layer":
        return ChannelLayerNorm(channels)
    if norm == "batch":
        if data_dim not in (1, 2, 3):
            raise ValueError(f"data_dim must be 1, 2 or 3, got {data_dim!r}")
        return (nn.BatchNorm1d, nn.BatchNorm2d, nn.BatchNorm3d)[data_dim - 1](channels)
    raise ValueError(f"norm must be 'layer', 'batch' or 'none', got {norm!r}")


class CausalConv1d(nn.Conv1d):
    """``Conv1d`` with ``dilation * (kernel_size - 1)`` zeros of left padding: output ``t`` sees ``<= t``.

    Example:
        >>> conv = CausalConv1d(1, 1, 3)
        >>> conv(torch.randn(1, 1, 10)).shape
        torch.Size([1, 1, 10])
    """

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int, dilation: int = 1,
                 bias: bool = True) -> None:
        super().__init__(in_channels, out_channels, check_positive_int(kernel_size, "kernel_size"),
                         dilation=check_positive_int(dilation, "dilation"), bias=bias)

    def forward(self, x: Tensor) -> Tensor:  # noqa: D102
        x = check_float_tensor(x, "x")
        if x.dim() not in (2, 3) or x.shape[-2] != self.in_channels:
            raise ValueError(f"x must have shape ([B,] in_channels={self.in_channels}, L), got shape "
                             f"{tuple(x.shape)}")
        check_input_dtype(x, self.weight, "CausalConv1d")
        return super().forward(F.pad(x, (self.dilation[0] * (self.kernel_size[0] - 1), 0)))


class TCNBlock(nn.Module):
    """CKConv's TCN block: ``[conv -> norm -> ReLU -> dropout] x 2``, plus a shortcut, then ReLU.

    ``conv_factory(c_in, c_out)`` builds each convolution (a continuous or a discrete one);
    the shortcut is a 1x1 convolution when the channel count changes.

    Example:
        >>> block = TCNBlock(2, 4, lambda i, o: CausalConv1d(i, o, 3))
        >>> block(torch.randn(1, 2, 12)).shape
        torch.Size([1, 4, 12])
    """

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        conv_factory: Callable[[int, int], nn.Module],
        *,
        norm: NormName = "layer",
        dropout: float = 0.0,
        data_dim: int = 1,
    ) -> None:
        super().__init__()
        in_channels = check_positive_int(in_channels, "in_channels")
        out_channels = check_positive_int(out_channels, "out_channels")
        check_dropout(dropout)
        self.conv1 = conv_factory(in_channels, out_channels)
        self.norm1 = make_norm(norm, out_channels, data_dim)
        self.conv2 = conv_factory(out_channels, out_channels)
        self.norm2 = make_norm(norm, out_channels, data_dim)
        self.dropout = nn.Dropout(dropout)
        self.in_channels, self.data_dim = in_channels, data_dim
        conv = (nn.Conv1d, nn.Conv2d, nn.Conv3d)[data_dim - 1]
        self.shortcut = conv(in_channels, out_channels, 1) if in_channels != out_channels else nn.Identity()

    def forward(self, x: Tensor) -> Tensor:  # noqa: D102
        x = _check_block_input(self, x, self.in_channels, self.data_dim)
        y = self.dropout(torch.relu(self.norm1(self.conv1(x))))
        y = self.dropout(torch.relu(self.norm2(self.conv2(y))))
        return torch.relu(y + self.shortcut(x))


def _check_block_input(module: nn.Module, x: Tensor, channels: int, data_dim: int) -> Tensor:
    """Float ``x`` of shape ``(B, channels, *data_dim spatial)`` in the dtype of ``module``'s parameters."""
    x = check_float_tensor(x, "x")
    name = type(module).__name__
    if x.dim() != 2 + data_dim or x.shape[1] != channels:
        raise ValueError(f"{name}: x must have shape (B, channels={channels}, *{data_dim} spatial dims), "
                         f"got shape {tuple(x.shape)}")
    check_input_dtype(x, next(module.parameters(), None), name)
    return x


class SequenceReadout(nn.Module):
    """Maps features ``(B, H, L)`` to outputs: ``"last"`` step, ``"mean"`` over time, or ``"sequence"``.

    ``"last"`` and ``"mean"`` give ``(B, out_channels)``; ``"sequence"`` applies the linear map at
    every step and gives ``(B, out_channels, L)`` (per-step logits for copy memory).

    Example:
        >>> SequenceReadout(4, 3, "sequence")(torch.randn(2, 4, 9)).shape
        torch.Size([2, 3, 9])
    """

    def __init__(self, hidden_channels: int, out_channels: int, readout: Readout = "last") -> None:
        super().__init__()
        if readout not in ("last", "mean", "sequence"):
            raise ValueError(f"readout must be 'last', 'mean' or 'sequence', got {readout!r}")
        self.readout = readout
        self.linear = nn.Conv1d(check_positive_int(hidden_channels, "hidden_channels"),
                                check_positive_int(out_channels, "out_channels"), 1)

    def forward(self, h: Tensor) -> Tensor:  # noqa: D102
        h = check_float_tensor(h, "h")
        if h.dim() != 3 or h.shape[1] != self.linear.in_channels:
            raise ValueError(f"h must have shape (B, hidden_channels={self.linear.in_channels}, L), "
                             f"got shape {tuple(h.shape)}")
        check_input_dtype(h, self.linear.weight, "SequenceReadout", "h")
        if self.readout == "sequence":
            return self.linear(h)
        z = h[:, :, -1:] if self.readout == "last" else h.mean(-1, keepdim=True)
        return self.linear(z).squeeze(-1)

    def extra_repr(self) -> str:  # noqa: D102
        return f"readout={self.readout!r}"


def _check_seq_input(x: Tensor, in_channels: int, module: nn.Module | None = None) -> Tensor:
    x = check_float_tensor(x, "x")
    if x.dim() != 3 or x.shape[1] != in_channels:
        raise ValueError(f"x must have shape (B, in_channels={in_channels}, L), got {tuple(x.shape)}")
    if module is not None:
        check_input_dtype(x, next(module.parameters(), None), type(module).__name__)
    return x


class TCN(nn.Module):
    """Causal TCN baseline with discrete ``kernel_size``-tap kernels (same blocks as CKCNN).

    Args:
        in_channels, out_channels: input channels and outputs (classes / regression targets).
        hidden_channels: width of every block (default 30, as CKCNN).
        num_blocks: number of :class:`TCNBlock` (2 convolutions each; default 2).
        kernel_size: taps per convolution (default 3).
        dilation_base: dilation of block ``i`` is ``dilation_base ** i`` (default 1: none).
        readout: ``"last"``, ``"mean"`` or ``"sequence"`` (see :class:`SequenceReadout`).
        norm, dropout: per-block normalisation and dropout.

    Example:
        >>> TCN(1, 10, readout="sequence")(torch.randn(2, 1, 30)).shape
        torch.Size([2, 10, 30])
    """

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        hidden_channels: int = 30,
        num_blocks: int = 2,
        kernel_size: int = 3,
        dilation_base: int = 1,
        readout: Readout = "last",
        norm: NormName = "layer",
        dropout: float = 0.0,
    ) -> None:
        super().__init__()
        self.in_channels = check_positive_int(in_channels, "in_channels")
        self.out_channels = check_positive_int(out_channels, "out_channels")
        hidden = check_positive_int(hidden_channels, "hidden_channels")
        n = check_positive_int(num_blocks, "num_blocks")
        k = check_positive_int(kernel_size, "kernel_size")
        base = check_positive_int(dilation_base, "dilation_base")
        blocks = []
        for i in range(n):
            d = base**i
            blocks.append(TCNBlock(self.in_channels if i == 0 else hidden, hidden,
                                   lambda ci, co, d=d: CausalConv1d(ci, co, k, dilation=d),
                                   norm=norm, dropout=dropout))
        self.blocks = nn.Sequential(*blocks)
        self.head = SequenceReadout(hidden, self.out_channels, readout)
        #: number of past steps (current one included) an output can see
        self.receptive_field = 1 + 2 * (k - 1) * sum(base**i for i in range(n))

    def forward(self, x: Tensor) -> Tensor:
        """``(B, C_in, L)`` -> ``(B, C_out)`` (or ``(B, C_out, L)`` with ``readout="sequence"``)."""
        return self.head(self.blocks(_check_seq_input(x, self.in_channels, self)))


class ConvNet(nn.Module):
    """mnist1d's reference CNN: ``num_layers`` x [Conv(k, stride) -> ReLU], global mean, linear.

    The mnist1d README reports 94% test accuracy with 3 layers of 25 channels, ``k = 5``,
    stride 2 (the reference flattens the last feature map; here it is averaged so any input
    size works). ``data_dim`` 2 or 3 gives the same net for images and volumes.

    Example:
        >>> ConvNet(1, 10)(torch.randn(4, 1, 40)).shape
        torch.Size([4, 10])
    """

    def __init__(
        self,
        in_channels: int,
        num_classes: int,
        channels: int = 25,
        num_layers: int = 3,
        kernel_size: int = 5,
        stride: int = 2,
        data_dim: int = 1,
        norm: NormName = "none",
    ) -> None:
        super().__init__()
        if data_dim not in (1, 2, 3) or isinstance(data_dim, bool):
            raise ValueError(f"data_dim must be 1, 2 or 3, got {data_dim!r}")
        self.data_dim = data_dim
        self.in_channels = check_positive_int(in_channels, "in_channels")
        ch = check_positive_int(channels, "channels")
        k = check_positive_int(kernel_size, "kernel_size")
        s = check_positive_int(stride, "stride")
        conv = (nn.Conv1d, nn.Conv2d, nn.Conv3d)[data_dim - 1]
        layers: list[nn.Module] = []
        for i in range(check_positive_int(num_layers, "num_layers")):
            layers += [conv(self.in_channels if i == 0 else ch, ch, k, stride=s, padding=k // 2),
                       make_norm(norm, ch, data_dim), nn.ReLU()]
        self.features = nn.Sequential(*layers)
        self.linear = nn.Linear(ch, check_positive_int(num_classes, "num_classes"))

    def forward(self, x: Tensor) -> Tensor:
        """``(B, C_in, *spatial)`` -> logits ``(B, num_classes)``."""
        x = check_float_tensor(x, "x")
        if x.dim() != self.data_dim + 2 or x.shape[1] != self.in_channels:
            raise ValueError(f"x must have shape (B, in_channels={self.in_channels}, *spatial) with "
                             f"{self.data_dim} spatial dims, got {tuple(x.shape)}")
        check_input_dtype(x, self.linear.weight, "ConvNet")
        h = self.features(x)
        return self.linear(h.flatten(2).mean(-1))
