"""Group self-attention (GSA-Nets): equivariance, set-function facts, maps, errors.

The positional encodings (positional.py) are tested in test_positional.py, the transformer
blocks and model (transformer.py) in test_transformer.py.

Equivariance is checked with the verification kit (fields declared by the layers) and, once per
group family, against transforms built here from torch.rot90 / torch.roll / torch.flip.
"""

from __future__ import annotations

import math

import pytest
import torch
from _gsa import GROUPS, make_input, make_layer, perms, tokens

from groupconv.groups import SO2, CyclicGroup, DihedralGroup, Permutations
from groupconv.nn.attention.self_attention import GroupSelfAttention, LiftingSelfAttention, SetSelfAttention
from groupconv.nn.attention.transformer import TransformerBlock
from groupconv.spaces import GridField, GroupGridField, TokenField
from groupconv.testing import assert_equivariant


# -- exact equivariance of every attention layer (kit) --------------------------------------
@pytest.mark.parametrize("gname", list(GROUPS))
@pytest.mark.parametrize("kind", ["lift", "group"])
@pytest.mark.parametrize("patch,size", [(3, 5), (3, 6), (None, 4)], ids=["local5", "local6", "global"])
def test_attention_exact_equivariance_kit(gname, kind, patch, size, float_dtype, device):
    layer = make_layer(kind, gname, patch, float_dtype, device)
    x = make_input(layer, size, float_dtype, device)
    report = assert_equivariant(layer, x, mode="exact")
    n_exact = 8 if gname == "D4" else 4  # rotations by 90 degrees (and flips for D4)
    assert len(report.rows) == n_exact


# -- independent constructions: rot90 + roll, flip + hand-built axis permutation -----------
@pytest.mark.parametrize("patch", [3, None], ids=["local", "global"])
def test_c4_rot90_roll_independent(patch, float_dtype, device):
    lift = make_layer("lift", "C4", patch, float_dtype, device)
    gsa = make_layer("group", "C4", patch, float_dtype, device)
    x = make_input(lift, 5, float_dtype, device)
    y = gsa(lift(x))
    tol = 1e-4 if float_dtype == torch.float32 else 1e-10
    for k in range(1, 4):
        y_rot = gsa(lift(torch.rot90(x, k, dims=(-2, -1))))
        expect = torch.roll(torch.rot90(y, k, dims=(-2, -1)), k, dims=2)
        torch.testing.assert_close(y_rot, expect, atol=tol, rtol=tol)


def test_so2_grid8_rot90_roll_independent(device):
    lift = make_layer("lift", "SO2grid8", 3, torch.float64, device)
    gsa = make_layer("group", "SO2grid8", 3, torch.float64, device)
    x = make_input(lift, 6, torch.float64, device)
    y = gsa(lift(x))
    y_rot = gsa(lift(torch.rot90(x, 1, dims=(-2, -1))))
    # 90 degrees is two steps of the 8-element grid
    torch.testing.assert_close(y_rot, torch.roll(torch.rot90(y, 1, dims=(-2, -1)), 2, dims=2))


def test_d4_flip_independent(device):
    lift = make_layer("lift", "D4", 3, torch.float64, device)
    gsa = make_layer("group", "D4", 3, torch.float64, device)
    x = make_input(lift, 5, torch.float64, device)
    y = gsa(lift(x))
    # mirror m: (m h)_(k,+1) = (-k, -1) and (m h)_(k,-1) = (-k, +1)   (elements: 4 rotations, 4 mirrored)
    perm = [4 + (-k) % 4 for k in range(4)] + [(-k) % 4 for k in range(4)]
    y_flip = gsa(lift(torch.flip(x, dims=(-1,))))
    expect = torch.flip(y, dims=(-1,))[:, :, perm]
    torch.testing.assert_close(y_flip, expect)


# -- reference implementation of the formulas (dense pairs, loops over nothing clever) ------
def _reference(layer, x):
    """Direct evaluation of the GSA formulas with dense (query, key) pairs."""
    lifting = isinstance(layer, LiftingSelfAttention)
    G, grid = layer.group, layer.grid
    N, e, d = layer.num_elements, layer.heads, layer.head_dim
    B, H, W = x.shape[0], x.shape[-2], x.shape[-1]
    P = H * W
    pos = torch.stack(torch.meshgrid(torch.arange(H), torch.arange(W), indexing="ij"), -1).reshape(P, 2)
    rel = (pos[None, :, :] - pos[:, None, :]).double()  # [i, j] = x_j - x_i
    Minv = G.matrix(G.inverse(grid)).double()
    r = layer.patch_size // 2 if layer.patch_size else max(H, W) - 1
    coords = torch.einsum("nab,ijb->nija", Minv, rel) / max(r, 1)
    rho = layer.pos_encoder(coords.to(x)).view(N, P, P, e, d)
    feats = x.movedim(1, -1).reshape(B, 1 if lifting else N, P, -1)
    q = layer.query(feats).view(B, -1, P, e, d).expand(B, N, P, e, d)
    k, v = layer.key_value(feats).view(B, -1, P, 2, e, d).unbind(3)  # (B, n_in, P, e, d)
    # score[b, e, h, i, h~, j]
    s = torch.einsum("bhied,bgjed->behigj", q, k)
    s = s + torch.einsum("bhied,hijed->behij", q, rho)[:, :, :, :, None]
    if not lifting:
        rhoH = layer.group_encoder().view(N, N, e, d)
        s = s + torch.einsum("bhied,hged->behig", q, rhoH)[..., None]
    if layer.patch_size:
        far = rel.abs().amax(-1) > r  # (P, P)
        s = s.masked_fill(far[None, None, None, :, None, :], float("-inf"))
    s = s / math.sqrt(d)
    a = torch.softmax(s.flatten(-2), -1).view(s.shape)
    out = torch.einsum("behigj,bgjed->bhied", a, v).reshape(B, N, H, W, e * d)
    return layer.out_proj(out).permute(0, 4, 1, 2, 3)


@pytest.mark.parametrize("kind", ["lift", "group"])
@pytest.mark.parametrize("patch", [3, None], ids=["local", "global"])
@pytest.mark.parametrize("gname", ["D4", "SO2grid8"])
def test_matches_reference_formula(kind, patch, gname, device):
    layer = make_layer(kind, gname, patch, torch.float64, device)
    x = make_input(layer, 5, torch.float64, device)
    torch.testing.assert_close(layer(x), _reference(layer, x), atol=1e-8, rtol=1e-7)


# -- GSA-Nets' head layout: every head its own head_channels-wide q, k, v ----------------------
@pytest.mark.parametrize("kind", ["lift", "group"])
@pytest.mark.parametrize("patch", [3, None], ids=["local", "global"])
def test_head_channels_layout(kind, patch, device):
    cls = LiftingSelfAttention if kind == "lift" else GroupSelfAttention
    torch.manual_seed(0)
    # 3 heads of width 4 for 5 output channels: heads need not divide out_channels
    layer = cls(3 if kind == "lift" else 5, 5, CyclicGroup(4), heads=3, head_channels=4, patch_size=patch,
                device=device, dtype=torch.float64).eval()
    assert (layer.heads, layer.head_dim) == (3, 4)
    assert layer.query.weight.shape[0] == 12 and layer.out_proj.weight.shape == (5, 12)
    assert "head_channels=4" in repr(layer)
    x = make_input(layer, 5, torch.float64, device)
    torch.testing.assert_close(layer(x), _reference(layer, x), atol=1e-8, rtol=1e-7)
    report = assert_equivariant(layer, x, mode="exact")
    assert len(report.rows) == 4
    # the default layout is unchanged: heads split out_channels
    plain = cls(layer.in_channels, 4, CyclicGroup(4), heads=2, patch_size=patch)
    assert (plain.heads, plain.head_dim, plain.query.weight.shape[0]) == (2, 2, 4)


def test_head_channels_bad_values():
    with pytest.raises(ValueError, match="head_channels"):
        LiftingSelfAttention(1, 4, CyclicGroup(4), heads=2, head_channels=0)
    # one channel per head cannot hold a row part and a column part
    with pytest.raises(ValueError, match="rowcol"):
        LiftingSelfAttention(1, 4, CyclicGroup(4), heads=2, head_channels=1)


# -- attention maps --------------------------------------------------------------------------
@pytest.mark.parametrize("kind", ["lift", "group"])
@pytest.mark.parametrize("patch", [3, None], ids=["local", "global"])
def test_attention_maps_returned(kind, patch, device):
    layer = make_layer(kind, "C4", patch, torch.float64, device)
    x = make_input(layer, 5, torch.float64, device)
    y, attn = layer(x, return_attention=True)
    torch.testing.assert_close(y, layer(x))  # same numbers as the SDPA path
    tail = (3, 3) if patch else (5, 5)
    mid = () if kind == "lift" else (4,)
    assert attn.shape == (2, 2, 4, 5, 5) + mid + tail
    sums = attn.flatten(5).sum(-1)
    torch.testing.assert_close(sums, torch.ones_like(sums))
    if patch:  # top-left pixel: the row and column above/left of it are outside the image
        corner = attn[:, :, :, 0, 0].detach()
        assert float(corner[..., 0, :].abs().max()) == 0.0
        assert float(corner[..., :, 0].abs().max()) == 0.0


# -- the set-function view ------------------------------------------------------------------
def test_plain_set_attention_permutation_equivariant(float_dtype, device):
    torch.manual_seed(0)
    attn = SetSelfAttention(4, heads=2, num_tokens=6, device=device, dtype=float_dtype).eval()
    x = tokens(dtype=float_dtype, device=device)
    assert attn.in_field == TokenField(Permutations(6))
    assert_equivariant(attn, x, perms(6), mode="exact")  # declared fields
    assert_equivariant(attn, x, mode="exact")  # the field's own exact elements
    perm = torch.tensor([2, 0, 5, 1, 4, 3])  # independent: plain indexing
    torch.testing.assert_close(attn(x[:, perm]), attn(x)[:, perm])


def test_set_attention_maps():
    attn = SetSelfAttention(4, heads=2)
    y, a = attn(torch.randn(3, 5, 4), return_attention=True)
    assert y.shape == (3, 5, 4) and a.shape == (3, 2, 5, 5)
    torch.testing.assert_close(a.sum(-1), torch.ones(3, 2, 5))


# -- bad input --------------------------------------------------------------------------------
def test_bad_inputs_raise_clear_errors():
    C4, D4 = CyclicGroup(4), DihedralGroup(4)
    with pytest.raises(ValueError, match="heads must divide out_channels.*6.*heads=4"):
        LiftingSelfAttention(1, 6, C4, heads=4)
    with pytest.raises(ValueError, match="heads must divide"):
        SetSelfAttention(5, heads=2)
    with pytest.raises(ValueError, match="patch_size must be odd"):
        GroupSelfAttention(4, 4, C4, patch_size=4)
    with pytest.raises(ValueError, match=r"patch_size=7 is larger than the image \(5, 5\)"):
        LiftingSelfAttention(1, 4, C4, patch_size=7)(torch.randn(1, 1, 5, 5))
    gsa = GroupSelfAttention(4, 4, C4, patch_size=3)
    lift_d4 = LiftingSelfAttention(1, 4, D4, patch_size=3)
    with pytest.raises(ValueError, match="group mismatch"):
        gsa(lift_d4(torch.randn(1, 1, 5, 5)))
    with pytest.raises(ValueError, match="group mismatch"):
        TransformerBlock(4, D4, attention=gsa)
    with pytest.raises(ValueError, match="in_channels=4"):
        gsa(torch.randn(1, 3, 4, 5, 5))
    with pytest.raises(ValueError, match="num_elements must be a positive int"):
        LiftingSelfAttention(1, 4, SO2())
    with pytest.raises(ValueError, match="num_tokens=5"):
        SetSelfAttention(4, num_tokens=5)(torch.randn(1, 6, 4))
    with pytest.raises(TypeError, match="floating-point"):
        gsa(torch.ones(1, 4, 4, 5, 5, dtype=torch.long))


def test_fields_declared():
    layer = LiftingSelfAttention(1, 4, SO2(), num_elements=8, patch_size=3)
    assert layer.in_field == GridField(SO2(), 2)
    assert isinstance(layer.out_field, GroupGridField) and layer.out_field.n == 8
    assert GroupSelfAttention(4, 4, SO2(), num_elements=8).in_field == layer.out_field
