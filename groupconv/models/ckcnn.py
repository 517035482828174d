"""CKCNN (Romero et al., ICLR 2022): TCN-style networks of continuous kernel convolutions.

``CKCNN`` stacks ``num_blocks`` :class:`~groupconv.models.baselines.TCNBlock` s of
``[CKConv -> norm -> ReLU -> dropout] x 2 + 1x1 shortcut -> ReLU`` with ``hidden_channels``
channels, then a readout (:class:`~groupconv.models.baselines.SequenceReadout`):

* ``"last"``: the last time step (the reference; a causal model has seen the whole sequence
  there, issue dwromero/ckconv#11);
* ``"mean"``: the mean over time (CCNN's choice; resolution independent);
* ``"sequence"``: one output per step ``(B, C_out, L)`` (copy memory).

Every kernel is as long as the input (``kernel_size="same"``, causal by default), so a single
layer has a global memory horizon. ``conv="flex"`` swaps in FlexConv (a FlexTCN), and
``"separable-ck"`` / ``"separable-flex"`` CCNN's depthwise-separable layers.

Normalisation: the reference uses ``GroupNorm(1, C)``, which normalises over channels *and*
time and therefore leaks the future into causal outputs; the default ``norm="layer"`` here is a
per-step LayerNorm over channels (:class:`~groupconv.models.baselines.ChannelLayerNorm`), which
keeps the model exactly causal. ``norm="batch"`` is causal in eval mode only.

Helpers for the kernel regularisers of :mod:`groupconv.kernels`: :func:`continuous_convs`,
:func:`sampled_kernels` (the references' "weight decay" is an Lp norm of the sampled kernels)
and :func:`nyquist_terms` (input of :class:`~groupconv.kernels.NyquistRegularizer`).

Example:
    >>> import torch
    >>> net = CKCNN(2, 1, hidden_channels=8)
    >>> net(torch.randn(3, 2, 40)).shape
    torch.Size([3, 1])
    >>> CKCNN(10, 10, hidden_channels=8, readout="sequence")(torch.randn(2, 10, 25)).shape
    torch.Size([2, 10, 25])
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Literal

import torch  # noqa: F401 - used by the doctests
from torch import Tensor, nn

from .._validation import check_dropout, check_positive_int
from ..nn.continuous.ckconv import CKConv, SeparableCKConv
from ..nn.continuous.flexconv import FlexConv, SeparableFlexConv
from .baselines import NormName, Readout, SequenceReadout, TCNBlock, _check_seq_input

__all__ = ["CKCNN", "CONV_TYPES", "make_continuous_conv", "continuous_convs", "sampled_kernels",
           "nyquist_terms"]

#: names accepted by ``conv=`` in the continuous-kernel models.
CONV_TYPES: dict[str, type[nn.Module]] = {
    "ck": CKConv,
    "flex": FlexConv,
    "separable-ck": SeparableCKConv,
    "separable-flex": SeparableFlexConv,
}

ConvName = Literal["ck", "flex", "separable-ck", "separable-flex"]


def make_continuous_conv(
    conv: ConvName,
    in_channels: int,
    out_channels: int,
    data_dim: int = 1,
    *,
    kernel_net: str | nn.Module = "siren",
    kernel_size: str | int = "same",
    causal: bool = False,
    kernel_net_kwargs: dict[str, Any] | None = None,
    conv_kwargs: dict[str, Any] | None = None,
) -> nn.Module:
    """Build one continuous convolution named by ``conv`` (see :data:`CONV_TYPES`).

    ``conv_kwargs`` go to the layer (e.g. ``mask_init_sigma``, ``conv_method``); mask arguments
    are rejected for the unmasked ``"ck"`` layers.

    Example:
        >>> make_continuous_conv("flex", 2, 3, kernel_net="magnet").mask.data_dim
        1
    """
    if conv not in CONV_TYPES:
        raise ValueError(f"conv must be one of {sorted(CONV_TYPES)}, got {conv!r}")
    kw = dict(conv_kwargs or {})
    if "flex" not in conv:
        bad = sorted(k for k in kw if k.startswith("mask_") or k == "dynamic_cropping")
        if bad:
            raise ValueError(
                f"conv={conv!r} has no mask; conv_kwargs {bad} need conv='flex' or 'separable-flex'"
            )
    # kernel_net_kwargs are copied: a kernel net may keep a reference to the dict
    return CONV_TYPES[conv](in_channels, out_channels, data_dim, kernel_net, kernel_size, causal=causal,
                            kernel_net_kwargs=dict(kernel_net_kwargs or {}), **kw)


class CKCNN(nn.Module):
    """TCN-style continuous-kernel network for sequences ``(B, C_in, L)`` (see the module doc).

    Args:
        in_channels: input channels.
        out_channels: outputs (classes or regression targets).
        hidden_channels: block width (30 gives ~100k parameters in the reference with its
            32-unit kernel nets; 100 gives ~1M).
        num_blocks: number of TCN blocks (2 convolutions each; default 2).
        kernel_net: kernel-net name for every layer (``"siren"``, ``"mlp"``, ``"magnet"``, ...; see
            :data:`groupconv.nn.KERNEL_NETS`).
        readout: ``"last"`` (default), ``"mean"`` or ``"sequence"``.
        conv: ``"ck"`` (default), ``"flex"``, ``"separable-ck"`` or ``"separable-flex"``.
        kernel_size: ``"same"`` (kernel as long as the input), ``"full"`` or an int horizon.
        causal: causal kernels (default ``True``).
        norm: ``"layer"`` (per-step channel LayerNorm, default), ``"batch"`` or ``"none"``.
        dropout: dropout after every activation.
        kernel_net_kwargs: passed to every kernel net (e.g. ``{"omega_0": 30.0}``).
        conv_kwargs: passed to every convolution (e.g. ``{"conv_method": "fft"}``).

    Example:
        >>> net = CKCNN(1, 10, hidden_channels=4, readout="mean", conv="flex", kernel_net="magnet")
        >>> net(torch.randn(2, 1, 16)).shape
        torch.Size([2, 10])
    """

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        hidden_channels: int = 30,
        num_blocks: int = 2,
        kernel_net: str = "siren",
        readout: Readout = "last",
        *,
        conv: ConvName = "ck",
        kernel_size: str | int = "same",
        causal: bool = True,
        norm: NormName = "layer",
        dropout: float = 0.0,
        kernel_net_kwargs: dict[str, Any] | None = None,
        conv_kwargs: dict[str, Any] | None = None,
    ) -> None:
        super().__init__()
        self.in_channels = check_positive_int(in_channels, "in_channels")
        self.out_channels = check_positive_int(out_channels, "out_channels")
        hidden = check_positive_int(hidden_channels, "hidden_channels")
        n = check_positive_int(num_blocks, "num_blocks")
        check_dropout(dropout)
        if conv not in CONV_TYPES:
            raise ValueError(f"conv must be one of {sorted(CONV_TYPES)}, got {conv!r}")

        def factory(ci: int, co: int) -> nn.Module:
            return make_continuous_conv(conv, ci, co, 1, kernel_net=kernel_net, kernel_size=kernel_size,
                                        causal=causal, kernel_net_kwargs=kernel_net_kwargs,
                                        conv_kwargs=conv_kwargs)

        self.blocks = nn.Sequential(*[
            TCNBlock(self.in_channels if i == 0 else hidden, hidden, factory, norm=norm, dropout=dropout)
            for i in range(n)
        ])
        self.head = SequenceReadout(hidden, self.out_channels, readout)
        self.causal = causal
        self.readout = readout

    def features(self, x: Tensor) -> Tensor:
        """Hidden features ``(B, hidden_channels, L)`` before the readout."""
        return self.blocks(_check_seq_input(x, self.in_channels))

    def forward(self, x: Tensor) -> Tensor:
        """``(B, C_in, L)`` -> ``(B, C_out)`` (``readout="sequence"``: ``(B, C_out, L)``)."""
        return self.head(self.features(x))


def continuous_convs(model: nn.Module) -> list[nn.Module]:
    """Every continuous convolution (CKConv, FlexConv and their separable forms) inside ``model``.

    Example:
        >>> len(continuous_convs(CKCNN(1, 1, hidden_channels=4, num_blocks=3)))
        6
    """
    return [m for m in model.modules() if isinstance(m, (CKConv, SeparableCKConv))]


def sampled_kernels(model: nn.Module, size: int | Sequence[int] | None = None) -> list[Tensor]:
    """Sampled kernels (with grad) of every continuous conv at ``size`` (default: each reference size).

    Layers that have not seen an input yet and get no ``size`` are skipped. Feed the list to
    :class:`~groupconv.kernels.LnKernelLoss` for CKConv-style "weight decay".

    Example:
        >>> net = CKCNN(1, 1, hidden_channels=2, num_blocks=1)
        >>> _ = net(torch.randn(1, 1, 12))
        >>> [tuple(k.shape) for k in sampled_kernels(net)]
        [(2, 1, 12), (2, 2, 12)]
    """
    out = []
    for m in continuous_convs(model):
        s = size if size is not None else m._ref
        if s is None:
            continue
        out.append(m.sample_kernel(s))
    return out


def nyquist_terms(model: nn.Module, with_mask: bool = False) -> list[tuple]:
    """``(kernel_net, K[, mask])`` per continuous conv, for :class:`~groupconv.kernels.NyquistRegularizer`.

    ``K`` (per axis) is the number of samples the layer's grid puts on ``[-1, 1]`` at its
    reference resolution, ``(L_ref - 1) / rho + 1`` (``L_ref`` for ``"same"`` kernels), whose
    Nyquist frequency ``(K - 1) / 4`` the kernel must respect to transfer to other resolutions.
    Layers without a known reference size are skipped; ``with_mask`` adds the FlexConv masks
    (for ``target="gabor+mask"``).

    Example:
        >>> net = CKCNN(1, 1, hidden_channels=2, num_blocks=1, kernel_net="magnet")
        >>> _ = net(torch.randn(1, 1, 40))
        >>> [t[1] for t in nyquist_terms(net)]
        [[40], [40]]
    """
    terms: list[tuple] = []
    for m in continuous_convs(model):
        if m._ref is None:
            continue
        ks = [int(round((r - 1) / m._rho(d))) + 1 if r > 1 else 1 for d, r in enumerate(m._ref)]
        if with_mask:
            terms.append((m.kernel_net, ks, getattr(m, "mask", None)))
        else:
            terms.append((m.kernel_net, ks))
    return terms
