"""Relative positional encodings of group self-attention (nn/attention/positional.py).

The offset grid and its group action checked against integer arithmetic; the encoders'
structure; and, in the attention layers, that relative acted offsets give equivariance while
un-acted or absolute positions break it (the kit must then fail).
"""

from __future__ import annotations

import math

import pytest
import torch
from _gsa import make_input, make_layer, perms, tokens

from groupconv.groups import CyclicGroup, DihedralGroup, Permutations
from groupconv.nn.attention.positional import (
    GroupRelativeEncoder,
    RelativePositionEncoder,
    TokenShiftField,
    acted_offsets,
    square_offsets,
)
from groupconv.nn.attention.self_attention import GroupSelfAttention, LiftingSelfAttention, SetSelfAttention
from groupconv.spaces import TokenField
from groupconv.testing import EquivarianceError, assert_equivariant


# -- the pieces of positional.py --------------------------------------------------------------
def test_square_offsets_row_major_and_closed_under_d4():
    offs = square_offsets(2)
    expect = [[float(r), float(c)] for r in range(-2, 3) for c in range(-2, 3)]  # unfold order
    assert offs.dtype == torch.float64 and offs.tolist() == expect
    as_set = {tuple(o) for o in expect}
    assert {(-c, r) for r, c in as_set} == as_set  # 90-degree rotation
    assert {(r, -c) for r, c in as_set} == as_set  # mirror


def test_acted_offsets_rotate_scale_and_snap():
    offs = square_offsets(1)
    r90 = torch.tensor([[0.0, -1.0], [1.0, 0.0]], dtype=torch.float64)
    mats = torch.stack([torch.eye(2, dtype=torch.float64), r90])
    out = acted_offsets(mats, offs, 2.0)
    assert out.shape == (2, 9, 2) and out.dtype == torch.float64
    torch.testing.assert_close(out[0], offs / 2, rtol=0, atol=0)
    by_hand = torch.stack([-offs[:, 1], offs[:, 0]], dim=-1) / 2  # (r, c) -> (-c, r)
    torch.testing.assert_close(out[1], by_hand, rtol=0, atol=0)
    # equal in exact arithmetic -> the same floats: a rotation by 30 degrees applied as one
    # matrix or as the product of two 15-degree ones
    def rotm(t):
        return torch.tensor([[math.cos(t), -math.sin(t)], [math.sin(t), math.cos(t)]], dtype=torch.float64)
    one = acted_offsets(rotm(math.pi / 6)[None], offs, 1.0)
    two = acted_offsets((rotm(math.pi / 12) @ rotm(math.pi / 12))[None], offs, 1.0)
    assert torch.equal(one, two)


@pytest.mark.parametrize("heads", [1, 2])
def test_rowcol_encoder_heads_see_row_then_column(heads):
    torch.manual_seed(0)
    enc = RelativePositionEncoder(4 * heads, mode="rowcol", heads=heads, dtype=torch.float64)
    c = torch.randn(7, 2, dtype=torch.float64)
    c2 = c.clone()
    c2[:, 1] += 1.0  # change the column coordinate only
    y, y2 = enc(c).unflatten(-1, (heads, 4)), enc(c2).unflatten(-1, (heads, 4))
    torch.testing.assert_close(y[..., :2], y2[..., :2], rtol=0, atol=0)  # row halves unchanged
    assert not torch.allclose(y[..., 2:], y2[..., 2:])  # column halves move
    joint = RelativePositionEncoder(6, mode="joint", in_features=3, dtype=torch.float64)
    assert joint(torch.randn(5, 3, dtype=torch.float64)).shape == (5, 6)


@pytest.mark.parametrize("group", [CyclicGroup(4), DihedralGroup(4)], ids=["C4", "D4"])
def test_group_table_depends_on_the_relative_element_only(group):
    grid = group.elements()
    n = grid.shape[0]
    table = GroupRelativeEncoder(group, grid, 5, dtype=torch.float64)()
    mlp = GroupRelativeEncoder(group, grid, 5, mode="mlp", dtype=torch.float64)()
    rel = group.product(group.inverse(grid).unsqueeze(1), grid.unsqueeze(0))  # h_i^-1 h_j
    mats, rel_mats = group.matrix(grid), group.matrix(rel)  # canonical: compare as matrices
    # table: the same learned row (bit-equal); mlp: the network on the embedding of an element
    # the grid holds in float32 (h_i^-1 h_j and h_k can be an ulp apart there)
    for enc, tol in ((table, 0.0), (mlp, 1e-6)):
        assert enc.shape == (n, n, 5)
        for i in range(n):
            for j in range(n):
                # the (0, k) entry with h_0^-1 h_k = h_i^-1 h_j (h_0 the identity)
                same = torch.isclose(mats, rel_mats[i, j], atol=1e-6).flatten(1).all(-1)
                k = int(torch.nonzero(same)[0])
                torch.testing.assert_close(enc[i, j], enc[0, k], rtol=0, atol=tol)


def test_token_shift_field_is_roll():
    f = TokenShiftField(5)
    x = torch.randn(2, 5, 3)
    for t in (1, -2, 7):
        torch.testing.assert_close(f.transform(x, torch.tensor([float(t)])), torch.roll(x, t, 1))
    assert f.exact_elements().flatten().tolist() == [0.0, 1.0, -1.0, 2.0]
    with pytest.raises(ValueError, match="integer shift"):
        f.transform(x, torch.tensor([0.5]))
    with pytest.raises(ValueError, match=r"N=5"):
        f.transform(torch.randn(2, 4, 3), torch.tensor([1.0]))


def test_positional_option_errors():
    C4 = CyclicGroup(4)
    with pytest.raises(ValueError, match="positional"):
        SetSelfAttention(4, positional="sinusoidal")
    with pytest.raises(ValueError, match="mode must be 'joint' or 'rowcol'"):
        LiftingSelfAttention(1, 4, C4, positional="both")
    with pytest.raises(ValueError, match="group_encoding must be"):
        GroupSelfAttention(4, 4, C4, group_encoding="onehot")
    with pytest.raises(ValueError, match="heads must divide out_features"):
        RelativePositionEncoder(5, heads=2)


# -- in the attention layers ------------------------------------------------------------------
def test_rowcol_joint_and_mlp_group_encoding_equivariant(device):
    layer = make_layer("group", "SO2grid8", 3, torch.float64, device, positional="joint",
                       group_encoding="mlp")
    assert_equivariant(layer, make_input(layer, 5, torch.float64, device), mode="exact")


# -- the invariance condition is necessary: breaking it makes the kit fail ----------------
def test_unacted_offsets_break_rotation_equivariance(device):
    """rho(x_j - x_i) without h^{-1}: still translation-relative, but the operator is no longer
    invariant under the joint left action, so lifting is not rotation equivariant."""
    layer = make_layer("lift", "C4", 3, torch.float64, device)
    x = make_input(layer, 5, torch.float64, device)
    assert_equivariant(layer, x, mode="exact")
    eye = torch.eye(2, dtype=torch.float64).expand(4, 2, 2)
    layer._local_coords = acted_offsets(eye, square_offsets(1), 1).to(device)
    with pytest.raises(EquivarianceError) as err:
        assert_equivariant(layer, x, mode="exact")
    assert err.value.report.rows[0].passed  # identity still fine
    assert not all(r.passed for r in err.value.report.rows[1:])


def test_absolute_positional_term_breaks_equivariance(device):
    layer = make_layer("group", "D4", 3, torch.float64, device)
    x = make_input(layer, 5, torch.float64, device)
    absolute = torch.randn(1, 4, 1, 5, 5, dtype=torch.float64, device=device)

    def with_absolute(t):
        return layer(t + absolute)

    with pytest.raises(EquivarianceError):
        assert_equivariant(with_absolute, x, in_field=layer.in_field, out_field=layer.out_field,
                           mode="exact")


def test_relative_encoding_translation_not_permutation(float_dtype, device):
    torch.manual_seed(0)
    attn = SetSelfAttention(4, heads=2, positional="relative", num_tokens=6, device=device,
                            dtype=float_dtype).eval()
    x = tokens(dtype=float_dtype, device=device)
    assert isinstance(attn.in_field, TokenShiftField)
    shifts = torch.arange(6, dtype=torch.float64).unsqueeze(-1)  # Translations(1) elements
    assert_equivariant(attn, x, shifts, mode="exact")
    for t in (1, 4):  # independent: torch.roll
        torch.testing.assert_close(attn(torch.roll(x, t, 1)), torch.roll(attn(x), t, 1))
    tok = TokenField(Permutations(6))
    with pytest.raises(EquivarianceError):
        assert_equivariant(attn, x, perms(6), in_field=tok, out_field=tok, mode="exact")


def test_absolute_encoding_breaks_both(device):
    torch.manual_seed(0)
    attn = SetSelfAttention(4, heads=2, positional="absolute", num_tokens=6, device=device,
                            dtype=torch.float64).eval()
    assert attn.in_field is None
    x = tokens(device=device)
    tok, shift = TokenField(Permutations(6)), TokenShiftField(6)
    with pytest.raises(EquivarianceError):
        assert_equivariant(attn, x, perms(6), in_field=tok, out_field=tok, mode="exact")
    with pytest.raises(EquivarianceError):
        assert_equivariant(attn, x, in_field=shift, out_field=shift, mode="exact")
