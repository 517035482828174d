"""form="reference": the reference's full attentive G-conv (per-output-channel MLPs, (o, i, j) maps)."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from groupconv.groups import CyclicGroup
from groupconv.nn import AttentiveGroupConv, AttentiveLiftingConv
from groupconv.nn.attention.attentive_reference import reference_memory_elements

F64 = {"dtype": torch.float64}


def _naive(layer, x, complement):
    """Loop-by-loop evaluation of the module docstring's formulas (C4: h_i^-1 h_j = j - i)."""
    lifting = layer._lifting
    xf = x if lifting else x.flatten(1, 2)
    W = layer.expanded_weight()
    O, N = layer.out_channels, layer.num_elements
    n_in = 1 if lifting else layer.in_num_elements
    C = layer.in_channels
    ref = layer.reference
    Wx = ref.spatial_conv.expanded_weight()
    B = x.shape[0]
    y = torch.zeros(B, O, N, *x.shape[-2:], **F64)
    for o in range(O):
        for i in range(N):
            p = o * N + i
            def resp(c, j, p=p):
                q = c * n_in + j
                return F.conv2d(xf[:, q:q + 1], W[p:p + 1, q:q + 1], padding=1)[:, 0]

            r = torch.stack([torch.stack([resp(c, j) for j in range(n_in)], 1)
                             for c in range(C)], 1)  # (B, C, n_in, X, Y)
            logits = 0
            for s in (r.mean(dim=(-2, -1)), r.amax(dim=(-2, -1))):  # (B, C, n_in)
                out = torch.zeros_like(s)
                for j in range(n_in):
                    rel = 0 if lifting else (j - i) % N
                    h = torch.relu(s[:, :, j] @ ref.w1[o, :, :, rel].T)
                    out[:, :, j] = h @ ref.w2[o, :, :, rel].T
                logits = logits + out
            a_c = torch.sigmoid(logits)
            att = r * a_c[..., None, None]
            stats = torch.stack([att.mean(1), att.amax(1)], 1)  # (B, 2, n_in, X, Y)
            a_x = torch.stack([torch.sigmoid(sum(
                F.conv2d(stats[:, s:s + 1, j], Wx[p:p + 1, s * n_in + j:s * n_in + j + 1], padding=1)[:, 0]
                for s in range(2))) for j in range(n_in)], 1)  # (B, n_in, X, Y)
            att = att * a_x[:, None]
            y[:, o, i] = ((r - att) if complement else att).sum(dim=(1, 2))
    if layer.bias is not None:
        y = y + layer.bias.view(1, O, 1, 1, 1)
    return y


@pytest.mark.parametrize("lifting", [False, True])
@pytest.mark.parametrize("complement", [False, True])
def test_reference_form_matches_the_formulas(lifting, complement):
    torch.manual_seed(0)
    G = CyclicGroup(4)
    if lifting:
        layer = AttentiveLiftingConv(2, 3, G, 3, padding=1, form="reference", spatial_kernel_size=3,
                                     complement=complement, **F64)
        x = torch.randn(2, 2, 6, 6, **F64)
    else:
        layer = AttentiveGroupConv(2, 3, G, 3, padding=1, form="reference", spatial_kernel_size=3,
                                   complement=complement, **F64)
        x = torch.randn(2, 2, 4, 6, 6, **F64)
    with torch.no_grad():
        layer.bias.normal_()
    torch.testing.assert_close(layer(x), _naive(layer, x, complement))


def test_reference_parameter_count_and_maps():
    layer = AttentiveGroupConv(10, 10, CyclicGroup(4), 3, padding=1, form="reference", spatial_kernel_size=3)
    assert layer.reference.channel_parameters() == 4000  # 10 x (5 x 10 x 4) x 2, as the reference
    y, maps = layer(torch.randn(2, 10, 4, 6, 6), return_attention=True)
    assert maps["channel"].shape == (2, 10, 4, 10, 4)
    assert maps["spatial"].shape == (2, 10, 4, 4, 6, 6)  # one map per (o, i, j)


def test_reference_chunks_bound_memory_and_agree():
    torch.manual_seed(1)
    G = CyclicGroup(4)
    big = AttentiveGroupConv(4, 6, G, 3, padding=1, form="reference", spatial_kernel_size=3, **F64)
    small = AttentiveGroupConv(4, 6, G, 3, padding=1, form="reference", spatial_kernel_size=3,
                               chunk_elements=1, **F64)
    small.load_state_dict(big.state_dict())
    x = torch.randn(3, 4, 4, 7, 7, **F64, requires_grad=True)
    y_big = big(x)
    y_small = small(x)
    torch.testing.assert_close(y_small, y_big)
    g_big, = torch.autograd.grad(y_big.square().sum(), x)
    g_small, = torch.autograd.grad(y_small.square().sum(), x)
    torch.testing.assert_close(g_small, g_big)  # checkpointed chunks give the same gradients
    m = reference_memory_elements(128, 96, 4, 96, 4, (32, 32))
    assert m["chunk"] * 96 <= m["naive"]  # one CIFAR-10 layer: >= 96x less than the whole tensor


@pytest.mark.parametrize("lifting", [False, True])
def test_reference_form_is_exactly_c4_equivariant(lifting):
    torch.manual_seed(2)
    G = CyclicGroup(4)
    cls = AttentiveLiftingConv if lifting else AttentiveGroupConv
    layer = cls(3, 4, G, 3, padding=1, form="reference", spatial_kernel_size=3, **F64)
    x = torch.randn(2, 3, 8, 8, **F64) if lifting else torch.randn(2, 3, 4, 8, 8, **F64)

    def act(t, fiber):
        t = torch.rot90(t, 1, dims=(-2, -1))
        return torch.roll(t, 1, dims=2) if fiber else t

    def err():
        with torch.no_grad():
            return float((layer(act(x, not lifting)) - act(layer(x), True)).abs().max())

    assert err() < 1e-10
    if not lifting:  # failing control: weights indexed by the absolute h_j, not h_i^-1 h_j
        rel = layer.reference.rel
        layer.reference.rel = torch.arange(rel.shape[1]).expand_as(rel).clone()
        assert err() > 1e-3
