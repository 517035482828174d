"""alpha-P4CNN: the P4CNN-style G-CNN of :mod:`groupconv.models.gcnn` with attentive convolutions.

:class:`AttentiveGCNN` has exactly the architecture of :class:`~groupconv.models.gcnn.GCNN`
(same widths, kernels, norms, pools and invariant readout) with every convolution (or the
ones listed in ``attentive_layers``) replaced by an :class:`~groupconv.nn.AttentiveLiftingConv`
/ :class:`~groupconv.nn.AttentiveGroupConv` carrying channel and spatial attention
(Romero et al., 2020: alpha-P4CNN on rotMNIST). ``form="full"`` uses the full attentive
G-conv, ``form="feature"`` the fA form. The logits are invariant to the group grid's exact
actions, as for the G-CNN.

Example:
    >>> import torch
    >>> from groupconv.groups import CyclicGroup
    >>> net = AttentiveGCNN(1, 10, CyclicGroup(4), channels=(4, 4), pool_after=(0,),
    ...                     spatial_kernel_size=3).eval()
    >>> x = torch.randn(2, 1, 8, 8)
    >>> torch.allclose(net(x), net(torch.rot90(x, 1, dims=(-2, -1))), atol=1e-5)
    True
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch
from torch import Tensor

from ..groups.base import Group
from ..nn.attention.attentive import AttentiveGroupConv, AttentiveLiftingConv
from .gcnn import GCNN

__all__ = ["AttentiveGCNN", "alpha_p4cnn"]


class AttentiveGCNN(GCNN):
    """alpha-G-CNN: :class:`~groupconv.models.gcnn.GCNN` with attentive convolutions.

    Args:
        in_channels, num_classes, group, channels, kernel_size, and the keyword arguments of
            :class:`~groupconv.models.gcnn.GCNN` (``first_kernel_size``, ``pool_after``,
            ``num_elements``, ``kernel_net``, ``kernel_net_kwargs``, ``norm``, ``dropout``,
            ``group_pool``, ``spatial_pool``).
        form: ``"full"`` (default) or ``"feature"`` (fA).
        attentive_layers: indices of the attentive layers (default: all).
        channel_attention, spatial_attention, reduction, statistics, spatial_kernel_size,
            complement, chunk_elements: the attention options of
            :class:`~groupconv.nn.AttentiveGroupConv`.

    Example:
        >>> import torch
        >>> net = AttentiveGCNN(1, 10, channels=(4, 4), pool_after=(0,), form="feature")
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
        form: str = "full",
        attentive_layers: Sequence[int] | None = None,
        channel_attention: bool = True,
        spatial_attention: bool = True,
        reduction: int = 2,
        statistics: Sequence[str] | None = None,
        spatial_kernel_size: int = 7,
        complement: bool = False,
        chunk_elements: int | None = None,
        **gcnn_kwargs: Any,
    ) -> None:
        super().__init__(in_channels, num_classes, group, channels, kernel_size, **gcnn_kwargs)
        n = len(self.convs)
        layers = tuple(range(n)) if attentive_layers is None else tuple(attentive_layers)
        for i in layers:
            if isinstance(i, bool) or not isinstance(i, int) or not 0 <= i < n:
                raise ValueError(f"attentive_layers must hold layer indices in [0, {n}), got {layers!r}")
        self.attentive_layers = tuple(sorted(set(layers)))
        self.form = form
        att = {"form": form, "channel_attention": channel_attention,
               "spatial_attention": spatial_attention, "reduction": reduction,
               "statistics": statistics, "spatial_kernel_size": spatial_kernel_size,
               "complement": complement, "chunk_elements": chunk_elements}
        grid_kw = {k: gcnn_kwargs[k] for k in ("num_elements", "kernel_net", "kernel_net_kwargs")
                   if gcnn_kwargs.get(k) is not None}
        for i in self.attentive_layers:
            old = self.convs[i]
            cls = AttentiveLiftingConv if i == 0 else AttentiveGroupConv
            self.convs[i] = cls(old.in_channels, old.out_channels, self.group, old.kernel_size,
                                padding=old.padding, bias=old.bias is not None, **grid_kw, **att)

    def attention_maps(self, x: Tensor) -> list[dict[str, Tensor]]:
        """The attention maps of every attentive layer on input ``x`` (one dict per layer)."""
        maps: list[dict[str, Tensor]] = []
        h = x
        for i, (conv, norm) in enumerate(zip(self.convs, self.norms, strict=True)):
            if i in self.attentive_layers:
                h, m = conv(h, return_attention=True)
                maps.append(m)
            else:
                h = conv(h)
            h = self.dropout(torch.relu(norm(h)))
            if i in self.pool_after:
                h = self.pool(h)
        return maps

    def extra_repr(self) -> str:
        return super().extra_repr() + f", form={self.form!r}, attentive_layers={self.attentive_layers}"


def alpha_p4cnn(in_channels: int = 1, num_classes: int = 10, **kwargs: Any) -> AttentiveGCNN:
    """The alpha-P4CNN of Romero et al. (2020): C4, 6 layers of 10 fields, channel + spatial
    attention (options of :class:`AttentiveGCNN` override the defaults).

    Example:
        >>> alpha_p4cnn().num_elements
        4
    """
    from ..groups import CyclicGroup

    kwargs.setdefault("group", CyclicGroup(4))
    return AttentiveGCNN(in_channels, num_classes, **kwargs)
