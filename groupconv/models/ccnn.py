"""CCNN (Knigge, Romero et al., ICLR 2023): one continuous CNN for sequences, images and volumes.

Architecture (``data_dim`` 1, 2 or 3; inputs ``(B, C, L)``, ``(B, C, H, W)``, ``(B, C, D, H, W)``):

1. stem: continuous conv ``C_in -> H`` (``stem="conv"``, default) or a 1x1 linear
   (``stem="linear"``), then norm and GELU;
2. ``num_blocks`` pre-norm residual "S4 blocks" (:class:`CCNNBlock`)
   ``y = x + GELU(Linear(Dropout(GELU(SepFlexConv(Norm(x))))))`` (``prenorm=False`` moves the
   norm after the sum);
3. a final norm, then the head: ``"classification"`` averages over every position (mean over
   time for sequences, global average pooling for images) and applies a linear map ->
   ``(B, C_out)``; ``"sequence"`` applies the linear map at every position ->
   ``(B, C_out, *spatial)`` (dense / per-step prediction).

The convolution is CCNN's :class:`~groupconv.nn.SeparableFlexConv` (depthwise MAGNet kernel
with a learnable Gaussian mask and dynamic cropping, then a 1x1 channel mixer) by default;
``conv=`` selects ``"separable-ck"``, ``"flex"`` or ``"ck"``. Every layer is defined in
continuous coordinates and the head averages over positions, so a CCNN trained at one
resolution can be evaluated at another (see :mod:`groupconv.nn.continuous.ckconv`, "Resolution").

Example:
    >>> import torch
    >>> net = CCNN(1, 10, hidden_channels=8, num_blocks=2)
    >>> net(torch.randn(4, 1, 40)).shape
    torch.Size([4, 10])
    >>> image_net = CCNN(3, 5, data_dim=2, hidden_channels=4, num_blocks=1, kernel_size=9)
    >>> image_net(torch.randn(2, 3, 12, 12)).shape
    torch.Size([2, 5])
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Literal

import torch  # noqa: F401 - used by the doctests
from torch import Tensor, nn

from .._validation import check_dropout, check_positive_int, check_tensor
from .baselines import NormName, _check_block_input, make_norm
from .ckcnn import CONV_TYPES, ConvName, make_continuous_conv

__all__ = ["CCNN", "CCNNBlock"]

_LINEAR = (nn.Conv1d, nn.Conv2d, nn.Conv3d)


class CCNNBlock(nn.Module):
    """CCNN's residual block (the "S4 block"), pre-norm by default.

    ``prenorm=True``: ``y = x + GELU(Linear(Dropout(GELU(conv(Norm(x))))))``;
    ``prenorm=False``: ``y = Norm(x + GELU(Linear(Dropout(GELU(conv(x))))))``.
    ``Linear`` is a 1x1 convolution; ``conv_factory(c, c)`` builds the spatial convolution.

    Example:
        >>> block = CCNNBlock(4, lambda i, o: nn.Conv1d(i, o, 3, padding=1))
        >>> block(torch.randn(2, 4, 10)).shape
        torch.Size([2, 4, 10])
    """

    def __init__(
        self,
        channels: int,
        conv_factory: Callable[[int, int], nn.Module],
        *,
        data_dim: int = 1,
        norm: NormName = "batch",
        dropout: float = 0.0,
        prenorm: bool = True,
    ) -> None:
        super().__init__()
        channels = check_positive_int(channels, "channels")
        if data_dim not in (1, 2, 3) or isinstance(data_dim, bool):
            raise ValueError(f"data_dim must be 1, 2 or 3, got {data_dim!r}")
        check_dropout(dropout)
        self.prenorm = bool(prenorm)
        self.channels, self.data_dim = channels, data_dim
        self.norm = make_norm(norm, channels, data_dim)
        self.conv = conv_factory(channels, channels)
        self.dropout = nn.Dropout(dropout)
        self.linear = _LINEAR[data_dim - 1](channels, channels, 1)
        self.act = nn.GELU()

    def forward(self, x: Tensor) -> Tensor:  # noqa: D102
        x = _check_block_input(self, x, self.channels, self.data_dim)
        h = self.norm(x) if self.prenorm else x
        h = self.act(self.linear(self.dropout(self.act(self.conv(h)))))
        return x + h if self.prenorm else self.norm(x + h)


class CCNN(nn.Module):
    """The Continuous CNN: a stem, pre-norm residual SeparableFlexConv blocks and a head.

    Args:
        in_channels: input channels.
        out_channels: classes / outputs.
        data_dim: 1 (sequences), 2 (images) or 3 (volumes).
        hidden_channels: block width (the paper's CCNN-4,140 uses 140; default 32).
        num_blocks: number of residual blocks (paper: 4 or 6; default 4).
        kernel_net: kernel-net name (default ``"magnet"``).
        head: ``"classification"`` (mean over positions, ``(B, C_out)``) or ``"sequence"``
            (per position, ``(B, C_out, *spatial)``).
        conv: ``"separable-flex"`` (default), ``"separable-ck"``, ``"flex"`` or ``"ck"``.
        kernel_size: ``"same"``, ``"full"`` or an int horizon; default ``"same"`` for sequences
            and ``33`` for images and volumes (the CCNN image setting).
        causal: causal kernels (sequences only; default ``False``).
        norm: ``"batch"`` (default, as CCNN), ``"layer"`` (per-position channel LayerNorm;
            exactly causal with ``causal=True``) or ``"none"``.
        dropout: dropout inside every block.
        prenorm: pre-norm (default) or post-norm blocks.
        stem: ``"conv"`` (continuous conv, default) or ``"linear"`` (1x1).
        kernel_net_kwargs, conv_kwargs: passed to every kernel net / convolution
            (e.g. ``conv_kwargs={"mask_init_sigma": 0.5}``).

    Example:
        >>> net = CCNN(2, 3, hidden_channels=4, num_blocks=1, head="sequence", causal=True, norm="layer")
        >>> net(torch.randn(1, 2, 30)).shape
        torch.Size([1, 3, 30])
    """

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        data_dim: int = 1,
        hidden_channels: int = 32,
        num_blocks: int = 4,
        kernel_net: str = "magnet",
        head: Literal["classification", "sequence"] = "classification",
        *,
        conv: ConvName = "separable-flex",
        kernel_size: str | int | None = None,
        causal: bool = False,
        norm: NormName = "batch",
        dropout: float = 0.0,
        prenorm: bool = True,
        stem: Literal["conv", "linear"] = "conv",
        kernel_net_kwargs: dict[str, Any] | None = None,
        conv_kwargs: dict[str, Any] | None = None,
    ) -> None:
        super().__init__()
        self.in_channels = check_positive_int(in_channels, "in_channels")
        self.out_channels = check_positive_int(out_channels, "out_channels")
        if data_dim not in (1, 2, 3) or isinstance(data_dim, bool):
            raise ValueError(f"data_dim must be 1, 2 or 3, got {data_dim!r}")
        self.data_dim = data_dim
        hidden = check_positive_int(hidden_channels, "hidden_channels")
        n = check_positive_int(num_blocks, "num_blocks")
        if head not in ("classification", "sequence"):
            raise ValueError(f"head must be 'classification' or 'sequence', got {head!r}")
        if stem not in ("conv", "linear"):
            raise ValueError(f"stem must be 'conv' or 'linear', got {stem!r}")
        if conv not in CONV_TYPES:
            raise ValueError(f"conv must be one of {sorted(CONV_TYPES)}, got {conv!r}")
        if causal and data_dim != 1:
            raise ValueError(f"causal=True needs data_dim=1 (sequences), got data_dim={data_dim}")
        check_dropout(dropout)
        if kernel_size is None:
            kernel_size = "same" if data_dim == 1 else 33
        self.head_type = head
        self.causal = causal

        def factory(ci: int, co: int) -> nn.Module:
            return make_continuous_conv(conv, ci, co, data_dim, kernel_net=kernel_net,
                                        kernel_size=kernel_size,
                                        causal=causal, kernel_net_kwargs=kernel_net_kwargs,
                                        conv_kwargs=conv_kwargs)

        linear = _LINEAR[data_dim - 1]
        self.stem = nn.Sequential(
            factory(self.in_channels, hidden) if stem == "conv" else linear(self.in_channels, hidden, 1),
            make_norm(norm, hidden, data_dim),
            nn.GELU(),
        )
        self.blocks = nn.Sequential(*[
            CCNNBlock(hidden, factory, data_dim=data_dim, norm=norm, dropout=dropout, prenorm=prenorm)
            for _ in range(n)
        ])
        self.final_norm = make_norm(norm, hidden, data_dim) if prenorm else nn.Identity()
        self.head = linear(hidden, self.out_channels, 1)

    def features(self, x: Tensor) -> Tensor:
        """Hidden features ``(B, hidden_channels, *spatial)`` before the head."""
        x = check_tensor(x, "x")
        if x.dim() != self.data_dim + 2 or x.shape[1] != self.in_channels:
            layout = ("(B, C, L)", "(B, C, H, W)", "(B, C, D, H, W)")[self.data_dim - 1]
            raise ValueError(f"x must have shape {layout} with C=in_channels={self.in_channels} "
                             f"for data_dim={self.data_dim}, got {tuple(x.shape)}")
        return self.final_norm(self.blocks(self.stem(x)))

    def forward(self, x: Tensor) -> Tensor:
        """Logits ``(B, C_out)`` (``head="classification"``) or ``(B, C_out, *spatial)``."""
        h = self.features(x)
        if self.head_type == "sequence":
            return self.head(h)
        pooled = h.flatten(2).mean(-1)
        return self.head(pooled.view(*pooled.shape, *([1] * self.data_dim))).flatten(1)
