"""FlexNet (Romero et al., ICLR 2022): a ResNet of FlexConvs with learned kernel sizes.

Structure (``Img_ResNet`` / ``SeqData_ResNet`` of the reference, "FlexNet-k"):

* stem: FlexConv ``C_in -> H`` -> norm -> ReLU;
* ``num_blocks`` :class:`ResNetBlock` s ``conv -> norm -> ReLU -> dropout -> conv -> norm``
  plus a shortcut (1x1 conv + norm when the width changes), then ReLU; block ``i`` has
  ``round(H * width_factors[i])`` channels (the reference uses factors like
  ``[1, 2, 1.5, 3, 2, 2]``); optional 2x max pooling after the blocks listed in ``pool_after``;
* head: global average pooling and a linear classifier.

Every spatial convolution is a :class:`~groupconv.nn.FlexConv` (MAGNet kernel times a learnable
Gaussian mask, dynamic cropping) with horizon ``kernel_size`` (the CIFAR-10 runs use 33 on
32x32 images; masks start at ``sigma = 0.075``). ``conv="ck"`` gives the unmasked CKConv
ablation. For images the default ``data_dim=2``; ``data_dim=1`` gives the sequence variant.

Example:
    >>> import torch
    >>> net = FlexNet(3, 10, hidden_channels=4, num_blocks=2, kernel_size=9)
    >>> net(torch.randn(2, 3, 16, 16)).shape
    torch.Size([2, 10])
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import torch  # noqa: F401 - used by the doctests
from torch import Tensor, nn

from .._validation import check_dropout, check_positive_int, check_tensor
from .baselines import NormName, _check_block_input, make_norm
from .ckcnn import CONV_TYPES, ConvName, make_continuous_conv

__all__ = ["FlexNet", "ResNetBlock"]

_CONV = (nn.Conv1d, nn.Conv2d, nn.Conv3d)
_POOL = (nn.MaxPool1d, nn.MaxPool2d, nn.MaxPool3d)


class ResNetBlock(nn.Module):
    """``conv -> norm -> ReLU -> dropout -> conv -> norm`` + shortcut, then ReLU.

    Example:
        >>> block = ResNetBlock(2, 4, lambda i, o: nn.Conv2d(i, o, 3, padding=1), data_dim=2)
        >>> block(torch.randn(1, 2, 8, 8)).shape
        torch.Size([1, 4, 8, 8])
    """

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        conv_factory: Callable[[int, int], nn.Module],
        *,
        data_dim: int = 2,
        norm: NormName = "batch",
        dropout: float = 0.0,
    ) -> None:
        super().__init__()
        in_channels = check_positive_int(in_channels, "in_channels")
        out_channels = check_positive_int(out_channels, "out_channels")
        check_dropout(dropout)
        self.conv1 = conv_factory(in_channels, out_channels)
        self.norm1 = make_norm(norm, out_channels, data_dim)
        self.dropout = nn.Dropout(dropout)
        self.conv2 = conv_factory(out_channels, out_channels)
        self.norm2 = make_norm(norm, out_channels, data_dim)
        self.in_channels, self.data_dim = in_channels, data_dim
        if in_channels != out_channels:
            self.shortcut: nn.Module = nn.Sequential(_CONV[data_dim - 1](in_channels, out_channels, 1),
                                                     make_norm(norm, out_channels, data_dim))
        else:
            self.shortcut = nn.Identity()

    def forward(self, x: Tensor) -> Tensor:  # noqa: D102
        x = _check_block_input(self, x, self.in_channels, self.data_dim)
        h = self.dropout(torch.relu(self.norm1(self.conv1(x))))
        h = self.norm2(self.conv2(h))
        return torch.relu(h + self.shortcut(x))


class FlexNet(nn.Module):
    """ResNet-style FlexConv classifier for images (or sequences / volumes via ``data_dim``).

    Args:
        in_channels: input channels.
        num_classes: number of classes.
        hidden_channels: stem width ``H`` (default 22, the FlexNet CIFAR-10 width).
        num_blocks: residual blocks (FlexNet-k has ``k = 2 * num_blocks + 1`` conv layers; default 3).
        data_dim: 2 (images, default), 1 (sequences) or 3 (volumes).
        kernel_net: kernel-net name (default ``"magnet"``).
        kernel_size: FlexConv horizon (default 33; ``"same"``/``"full"`` also accepted).
        width_factors: per-block width multipliers (default all 1).
        pool_after: block indices followed by a 2x max pooling (default none).
        conv: ``"flex"`` (default), ``"ck"``, ``"separable-flex"`` or ``"separable-ck"``.
        norm: ``"batch"`` (default), ``"layer"`` or ``"none"``.
        dropout: dropout inside every block.
        kernel_net_kwargs, conv_kwargs: passed to every kernel net / convolution.

    Example:
        >>> FlexNet(1, 2, hidden_channels=4, num_blocks=1, data_dim=1, kernel_size="same")(
        ...     torch.randn(3, 1, 20)).shape
        torch.Size([3, 2])
    """

    def __init__(
        self,
        in_channels: int,
        num_classes: int,
        hidden_channels: int = 22,
        num_blocks: int = 3,
        data_dim: int = 2,
        kernel_net: str = "magnet",
        kernel_size: str | int = 33,
        *,
        width_factors: Sequence[float] | None = None,
        pool_after: Sequence[int] = (),
        conv: ConvName = "flex",
        norm: NormName = "batch",
        dropout: float = 0.0,
        kernel_net_kwargs: dict[str, Any] | None = None,
        conv_kwargs: dict[str, Any] | None = None,
    ) -> None:
        super().__init__()
        self.in_channels = check_positive_int(in_channels, "in_channels")
        self.num_classes = check_positive_int(num_classes, "num_classes")
        if data_dim not in (1, 2, 3) or isinstance(data_dim, bool):
            raise ValueError(f"data_dim must be 1, 2 or 3, got {data_dim!r}")
        self.data_dim = data_dim
        hidden = check_positive_int(hidden_channels, "hidden_channels")
        n = check_positive_int(num_blocks, "num_blocks")
        if conv not in CONV_TYPES:
            raise ValueError(f"conv must be one of {sorted(CONV_TYPES)}, got {conv!r}")
        factors = [1.0] * n if width_factors is None else [float(f) for f in width_factors]
        if len(factors) != n or any(f <= 0 for f in factors):
            raise ValueError(f"width_factors must be {n} (num_blocks) positive floats, got {width_factors!r}")
        pools = sorted({int(i) for i in pool_after})
        if any(not 0 <= i < n for i in pools):
            raise ValueError(f"pool_after must hold block indices in [0, {n}), got {list(pool_after)}")

        def factory(ci: int, co: int) -> nn.Module:
            return make_continuous_conv(conv, ci, co, data_dim, kernel_net=kernel_net,
                                        kernel_size=kernel_size,
                                        kernel_net_kwargs=kernel_net_kwargs, conv_kwargs=conv_kwargs)

        self.stem = nn.Sequential(factory(self.in_channels, hidden), make_norm(norm, hidden, data_dim),
                                  nn.ReLU())
        layers: list[nn.Module] = []
        width = hidden
        for i, f in enumerate(factors):
            out = max(1, int(round(hidden * f)))
            layers.append(ResNetBlock(width, out, factory, data_dim=data_dim, norm=norm, dropout=dropout))
            if i in pools:
                layers.append(_POOL[data_dim - 1](2))
            width = out
        self.blocks = nn.Sequential(*layers)
        self.head = nn.Linear(width, self.num_classes)

    def forward(self, x: Tensor) -> Tensor:
        """``(B, C_in, *spatial)`` -> logits ``(B, num_classes)``."""
        x = check_tensor(x, "x")
        if x.dim() != self.data_dim + 2 or x.shape[1] != self.in_channels:
            raise ValueError(f"x must have shape (B, in_channels={self.in_channels}, *spatial) with "
                             f"{self.data_dim} spatial dims, got {tuple(x.shape)}")
        h = self.blocks(self.stem(x))
        return self.head(h.flatten(2).mean(-1))
