"""Continuous kernel convolutions at irregular positions in 2-D and 3-D (point clouds).

``CKConv(..., data_dim=D)(x, positions, mask)`` with ``x`` ``(B, C_in, N)`` features of ``N``
points, ``positions`` ``(N, D)`` or ``(B, N, D)`` (the input coordinates of the regular path:
``linspace(-1, 1, L)`` per axis at the reference size) and an optional boolean ``mask``
``(B, N)`` (``True`` = a real point) computes::

    y_i = b + sum_{j valid} w * psi(rho * (p_j - p_i)) x_j,      w = N_ref / N_valid,

the kernel net evaluated at the relative positions (scaled by the layer's ``rho`` per axis,
kept where every coordinate is in ``[-1, 1]``, the support of the gridded kernel; FlexConv
multiplies by its Gaussian mask there and does not crop), Monte-Carlo normalised: each of the
``N_valid`` real points of a cloud carries the weight ``N_ref / N_valid`` with
``N_ref = prod(reference_size)``, the number of grid samples the kernel was scaled for. On the
full reference grid every weight is 1 and the result equals the regular (zero-padded) path; on
another grid of ``L`` samples per axis it differs from the regular path's sampling-rate ratio
``prod (L_ref - 1) / (L - 1)`` by ``O(1 / L)``. Outputs at padding points are zero.

Because only differences ``p_j - p_i`` enter, the layer is equivariant to every translation of
the positions (exactly, up to the rounding of the differences) and to permutations of the point
order. Memory is ``O(B N^2 C_out C_in)`` (``C_in`` for separable kernels), evaluated in chunks
of query points: use it for clouds of up to a few thousand points, or
:class:`~groupconv.nn.PointGroupConv` (k nearest neighbours) for larger ones.

Example:
    >>> import torch
    >>> from groupconv.nn import CKConv
    >>> conv = CKConv(3, 4, data_dim=2, kernel_size=5, reference_size=(9, 9))
    >>> pos = torch.rand(2, 30, 2) * 2 - 1
    >>> conv(torch.randn(2, 3, 30), pos).shape
    torch.Size([2, 4, 30])
"""

from __future__ import annotations

import math

import torch
from torch import Tensor

from ..._validation import check_tensor

__all__ = ["irregular_conv"]

_EPS = 1e-6
_CHUNK_ELEMENTS = 1 << 24  # kernel values (pairs x outputs) evaluated at once


def _check(layer, x: object, positions: object, mask: object) -> tuple[Tensor, Tensor, Tensor]:
    D = layer.data_dim
    x = check_tensor(x, "x")
    if x.dim() != 3 or x.shape[1] != layer.in_channels:
        raise ValueError(f"x must be point features (B, in_channels={layer.in_channels}, N) when "
                         f"positions are given for data_dim={D}, got shape {tuple(x.shape)}")
    if x.dtype != layer._param_dtype():
        raise TypeError(f"x must have the layer's dtype {layer._param_dtype()}, got {x.dtype}")
    B, _, N = x.shape
    positions = check_tensor(positions, "positions")
    if positions.dim() == 2:
        positions = positions.unsqueeze(0)
    if positions.dim() != 3 or tuple(positions.shape[1:]) != (N, D) or positions.shape[0] not in (1, B):
        raise ValueError(f"positions must have shape ({N}, {D}) or ({B}, {N}, {D}), "
                         f"got {tuple(positions.shape)}")
    if not positions.is_floating_point():
        raise TypeError(f"positions must be a floating-point tensor, got dtype {positions.dtype}")
    if mask is None:
        mask = torch.ones(B, N, dtype=torch.bool, device=x.device)
    else:
        mask = check_tensor(mask, "mask")
        if tuple(mask.shape) != (B, N):
            raise ValueError(f"mask must have shape (B, N) = {(B, N)}, got {tuple(mask.shape)}")
        mask = mask.to(device=x.device, dtype=torch.bool)
    if layer._ref is None:
        raise RuntimeError("the reference size is unknown: pass reference_size= or run one forward "
                           "on a regular grid first")
    return x, positions.to(device=x.device, dtype=x.dtype), mask


def irregular_conv(layer, x: Tensor, positions: Tensor, mask: Tensor | None = None) -> Tensor:
    """The irregular-position forward of a 2-D/3-D continuous conv (module docstring).

    ``layer`` is a :class:`~groupconv.nn.CKConv`/``FlexConv`` (or separable) layer;
    returns ``(B, C_out, N)``, zero at padding points (the separable layers' channel mixer
    included).
    """
    x, pos, mask = _check(layer, x, positions, mask)
    D, N = layer.data_dim, x.shape[2]
    rho = torch.tensor([layer._rho(d) for d in range(D)], dtype=x.dtype, device=x.device)
    layer._maybe_chang(layer.kernel_positions(layer._ref, dtype=x.dtype, device=x.device))
    w = mask.to(x.dtype)
    weight = math.prod(layer._ref) / w.sum(1).clamp_min(1.0)  # Monte-Carlo: N_ref / N_valid
    xw = x * (w * weight.unsqueeze(-1)).unsqueeze(1)  # padding contributes nothing
    n_out = layer.in_channels if layer.separable else layer.in_channels * layer.out_channels
    chunk = max(1, _CHUNK_ELEMENTS // max(1, pos.shape[0] * N * n_out))
    shared = pos.shape[0] == 1
    parts = []
    for s in range(0, N, chunk):
        rel = pos.unsqueeze(1) - pos[:, s:s + chunk].unsqueeze(2)  # (b, m, N, D): p_j - p_i
        c = rel * rho
        inside = (c.abs() <= 1.0 + _EPS).all(-1).to(x.dtype)
        vals = layer._kernel_values(c.clamp(-1.0, 1.0)) * inside.unsqueeze(-1)  # (b, m, N, O)
        if shared:
            vals = vals.squeeze(0)
        if layer.separable:
            parts.append(torch.einsum("ikc,bck->bci" if shared else "bikc,bck->bci", vals, xw))
        else:
            vals = vals.unflatten(-1, (layer.out_channels, layer.in_channels))
            parts.append(torch.einsum("ikoc,bck->boi" if shared else "bikoc,bck->boi", vals, xw))
    y = torch.cat(parts, -1)
    if layer.bias is not None:
        y = y + layer.bias.view(1, -1, 1)
    if layer.separable:
        mixer = layer.channel_mixer
        y = torch.einsum("oc,bcn->bon", mixer.weight.flatten(1), y)
        if mixer.bias is not None:
            y = y + mixer.bias.view(1, -1, 1)
    return y * w.unsqueeze(1)
