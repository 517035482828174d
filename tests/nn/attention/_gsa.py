"""Builders shared by the group self-attention tests (test_self_attention, test_positional,
test_transformer): a layer of each kind on C4 / D4 / an 8-grid of SO(2), and seeded inputs.

Importable as ``from _gsa import ...`` (pytest puts this test folder on ``sys.path``).
"""

from __future__ import annotations

import torch

from groupconv.groups import SO2, CyclicGroup, DihedralGroup
from groupconv.nn.attention.self_attention import GroupSelfAttention, LiftingSelfAttention

GROUPS = {
    "C4": (CyclicGroup(4), None),
    "D4": (DihedralGroup(4), None),
    "SO2grid8": (SO2(), 8),
}


def make_layer(kind: str, gname: str, patch, dtype, device, **kw):
    """A seeded ``LiftingSelfAttention`` (``kind="lift"``) or ``GroupSelfAttention`` in eval mode."""
    group, n = GROUPS[gname]
    torch.manual_seed(0)
    cls = LiftingSelfAttention if kind == "lift" else GroupSelfAttention
    cin = 3 if kind == "lift" else 4
    layer = cls(cin, 4, group, heads=2, patch_size=patch, num_elements=n, device=device, dtype=dtype, **kw)
    return layer.eval()


def make_input(layer, size, dtype, device, B=2):
    """A seeded input of the layer's layout with ``size x size`` pixels."""
    g = torch.Generator().manual_seed(1)
    if isinstance(layer, LiftingSelfAttention):
        shape = (B, layer.in_channels, size, size)
    else:
        shape = (B, layer.in_channels, layer.num_elements, size, size)
    return torch.randn(*shape, generator=g, dtype=torch.float64).to(device=device, dtype=dtype)


def tokens(n=6, c=4, dtype=torch.float64, device="cpu"):
    """Seeded tokens ``(2, n, c)``."""
    g = torch.Generator().manual_seed(3)
    return torch.randn(2, n, c, generator=g, dtype=torch.float64).to(device=device, dtype=dtype)


def perms(n, k=4):
    """The identity and ``k`` seeded permutations of ``n`` tokens, ``(k + 1, n)``."""
    g = torch.Generator().manual_seed(5)
    return torch.stack([torch.arange(n)] + [torch.randperm(n, generator=g) for _ in range(k)])
