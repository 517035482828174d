"""Group self-attention (GSA-Nets): equivariance, set-function facts, maps, errors.

Equivariance is checked with the verification kit (fields declared by the layers) and, once per
group family, against transforms built here from torch.rot90 / torch.roll / torch.flip.
"""

from __future__ import annotations

import math

import pytest
import torch

from groupconv.groups import SO2, CyclicGroup, DihedralGroup, Permutations
from groupconv.nn.attention.positional import TokenShiftField, acted_offsets, square_offsets
from groupconv.nn.attention.self_attention import GroupSelfAttention, LiftingSelfAttention, SetSelfAttention
from groupconv.nn.attention.transformer import GroupTransformer, TransformerBlock
from groupconv.spaces import GridField, GroupGridField, TokenField
from groupconv.testing import EquivarianceError, assert_equivariant, assert_invariant

GROUPS = {
    "C4": (CyclicGroup(4), None),
    "D4": (DihedralGroup(4), None),
    "SO2grid8": (SO2(), 8),
}


def _make(kind: str, gname: str, patch, dtype, device, **kw):
    group, n = GROUPS[gname]
    torch.manual_seed(0)
    cls = LiftingSelfAttention if kind == "lift" else GroupSelfAttention
    cin = 3 if kind == "lift" else 4
    layer = cls(cin, 4, group, heads=2, patch_size=patch, num_elements=n, device=device, dtype=dtype, **kw)
    return layer.eval()


def _input(layer, size, dtype, device, B=2):
    g = torch.Generator().manual_seed(1)
    if isinstance(layer, LiftingSelfAttention):
        shape = (B, layer.in_channels, size, size)
    else:
        shape = (B, layer.in_channels, layer.num_elements, size, size)
    return torch.randn(*shape, generator=g, dtype=torch.float64).to(device=device, dtype=dtype)


# -- exact equivariance of every attention layer (kit) --------------------------------------
@pytest.mark.parametrize("gname", list(GROUPS))
@pytest.mark.parametrize("kind", ["lift", "group"])
@pytest.mark.parametrize("patch,size", [(3, 5), (3, 6), (None, 4)], ids=["local5", "local6", "global"])
def test_attention_exact_equivariance_kit(gname, kind, patch, size, float_dtype, device):
    layer = _make(kind, gname, patch, float_dtype, device)
    x = _input(layer, size, float_dtype, device)
    report = assert_equivariant(layer, x, mode="exact")
    n_exact = 8 if gname == "D4" else 4  # rotations by 90 degrees (and flips for D4)
    assert len(report.rows) == n_exact


def test_rowcol_joint_and_mlp_group_encoding_equivariant(device):
    layer = _make("group", "SO2grid8", 3, torch.float64, device, positional="joint", group_encoding="mlp")
    assert_equivariant(layer, _input(layer, 5, torch.float64, device), mode="exact")


# -- independent constructions: rot90 + roll, flip + hand-built axis permutation -----------
@pytest.mark.parametrize("patch", [3, None], ids=["local", "global"])
def test_c4_rot90_roll_independent(patch, float_dtype, device):
    lift = _make("lift", "C4", patch, float_dtype, device)
    gsa = _make("group", "C4", patch, float_dtype, device)
    x = _input(lift, 5, float_dtype, device)
    y = gsa(lift(x))
    tol = 1e-4 if float_dtype == torch.float32 else 1e-10
    for k in range(1, 4):
        y_rot = gsa(lift(torch.rot90(x, k, dims=(-2, -1))))
        expect = torch.roll(torch.rot90(y, k, dims=(-2, -1)), k, dims=2)
        torch.testing.assert_close(y_rot, expect, atol=tol, rtol=tol)


def test_so2_grid8_rot90_roll_independent(device):
    lift = _make("lift", "SO2grid8", 3, torch.float64, device)
    gsa = _make("group", "SO2grid8", 3, torch.float64, device)
    x = _input(lift, 6, torch.float64, device)
    y = gsa(lift(x))
    y_rot = gsa(lift(torch.rot90(x, 1, dims=(-2, -1))))
    # 90 degrees is two steps of the 8-element grid
    torch.testing.assert_close(y_rot, torch.roll(torch.rot90(y, 1, dims=(-2, -1)), 2, dims=2))


def test_d4_flip_independent(device):
    lift = _make("lift", "D4", 3, torch.float64, device)
    gsa = _make("group", "D4", 3, torch.float64, device)
    x = _input(lift, 5, torch.float64, device)
    y = gsa(lift(x))
    # mirror m: (m h)_(k,+1) = (-k, -1) and (m h)_(k,-1) = (-k, +1)   (elements: 4 rotations, 4 mirrored)
    perm = [4 + (-k) % 4 for k in range(4)] + [(-k) % 4 for k in range(4)]
    y_flip = gsa(lift(torch.flip(x, dims=(-1,))))
    expect = torch.flip(y, dims=(-1,))[:, :, perm]
    torch.testing.assert_close(y_flip, expect)


# -- the invariance condition is necessary: breaking it makes the kit fail ----------------
def test_unacted_offsets_break_rotation_equivariance(device):
    """rho(x_j - x_i) without h^{-1}: still translation-relative, but the operator is no longer
    invariant under the joint left action, so lifting is not rotation equivariant."""
    layer = _make("lift", "C4", 3, torch.float64, device)
    x = _input(layer, 5, torch.float64, device)
    assert_equivariant(layer, x, mode="exact")
    eye = torch.eye(2, dtype=torch.float64).expand(4, 2, 2)
    layer._local_coords = acted_offsets(eye, square_offsets(1), 1).to(device)
    with pytest.raises(EquivarianceError) as err:
        assert_equivariant(layer, x, mode="exact")
    assert err.value.report.rows[0].passed  # identity still fine
    assert not all(r.passed for r in err.value.report.rows[1:])


def test_absolute_positional_term_breaks_equivariance(device):
    layer = _make("group", "D4", 3, torch.float64, device)
    x = _input(layer, 5, torch.float64, device)
    absolute = torch.randn(1, 4, 1, 5, 5, dtype=torch.float64, device=device)

    def with_absolute(t):
        return layer(t + absolute)

    with pytest.raises(EquivarianceError):
        assert_equivariant(with_absolute, x, in_field=layer.in_field, out_field=layer.out_field,
                           mode="exact")


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
    layer = _make(kind, gname, patch, torch.float64, device)
    x = _input(layer, 5, torch.float64, device)
    torch.testing.assert_close(layer(x), _reference(layer, x), atol=1e-8, rtol=1e-7)


# -- attention maps --------------------------------------------------------------------------
@pytest.mark.parametrize("kind", ["lift", "group"])
@pytest.mark.parametrize("patch", [3, None], ids=["local", "global"])
def test_attention_maps_returned(kind, patch, device):
    layer = _make(kind, "C4", patch, torch.float64, device)
    x = _input(layer, 5, torch.float64, device)
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


# -- models -----------------------------------------------------------------------------------
@pytest.mark.parametrize("gname,dtype", [("C4", torch.float32), ("D4", torch.float64),
                                         ("SO2grid8", torch.float64)])
def test_group_transformer_invariant(gname, dtype, device):
    group, n = GROUPS[gname]
    torch.manual_seed(0)
    model = GroupTransformer(2, 3, group, channels=4, blocks=(1, 1), heads=2, patch_size=3,
                             num_elements=n, device=device, dtype=dtype).eval()
    x = torch.randn(2, 2, 8, 8, dtype=dtype, device=device)
    report = assert_invariant(model, x, mode="exact")
    assert len(report.rows) == (8 if gname == "D4" else 4)
    assert model(x).shape == (2, 3)
    assert isinstance(model.out_field.transform(model(x), group.identity()), torch.Tensor)


def test_transformer_block_equivariant_and_trains(device):
    torch.manual_seed(0)
    block = TransformerBlock(4, DihedralGroup(4), heads=2, patch_size=3, device=device,
                             dtype=torch.float64).eval()
    x = torch.randn(1, 4, 8, 5, 5, dtype=torch.float64, device=device)
    assert_equivariant(block, x, mode="exact")
    y, attn = block(x, return_attention=True)
    assert attn.shape == (1, 2, 8, 5, 5, 8, 3, 3)
    block.train()
    model = GroupTransformer(1, 2, CyclicGroup(4), channels=4, blocks=(1,), heads=2, patch_size=3,
                             device=device)
    model(torch.randn(2, 1, 6, 6, device=device)).sum().backward()
    grads = [p.grad for p in model.parameters() if p.requires_grad]
    assert all(g is not None and bool(torch.isfinite(g).all()) for g in grads)


@pytest.mark.parametrize("embedding", ["mlp", "linear", "none"])
def test_transformer_embedding_and_readout(embedding, device):
    torch.manual_seed(0)
    kw = dict(channels=4, blocks=(0, 1), heads=2, patch_size=3, embedding=embedding, device=device,
              dtype=torch.float64)
    mean = GroupTransformer(1, 3, CyclicGroup(4), **kw).eval()
    assert mean.lift.in_channels == (1 if embedding == "none" else 4)
    assert len(list(mean.embed.parameters())) == {"mlp": 4, "linear": 2, "none": 0}[embedding]
    x = torch.randn(2, 1, 8, 8, dtype=torch.float64, device=device)
    # the readout: mean over space of the per-pixel logits, then max over the group axis
    f = mean.features(x)
    assert f.shape == (2, 3, 4, 4, 4)
    torch.testing.assert_close(mean(x), f.mean(dim=(-2, -1)).amax(-1))
    summed = GroupTransformer(1, 3, CyclicGroup(4), spatial_pool="sum", **kw).eval()
    summed.load_state_dict(mean.state_dict())
    torch.testing.assert_close(summed(x), 16 * mean(x))
    assert_invariant(mean, x, mode="exact")
    # the embedding is pointwise: it only sees one pixel's channels
    if embedding != "none":
        e = mean.embed(x.movedim(1, -1)).movedim(-1, 1)
        e2 = mean.embed(x[:, :, :1, :1].movedim(1, -1)).movedim(-1, 1)
        torch.testing.assert_close(e[:, :, :1, :1], e2)


def test_transformer_option_errors():
    G = CyclicGroup(4)
    with pytest.raises(ValueError, match="embedding must be one of.*got 'conv'"):
        GroupTransformer(1, 2, G, channels=4, blocks=(1,), heads=2, embedding="conv")
    with pytest.raises(ValueError, match="spatial_pool must be 'mean' or 'sum', got 'max'"):
        GroupTransformer(1, 2, G, channels=4, blocks=(1,), heads=2, spatial_pool="max")
    model = GroupTransformer(2, 2, G, channels=4, blocks=(1,), heads=2, patch_size=3)
    with pytest.raises(ValueError, match=r"in_channels=2.*\(1, 1, 6, 6\)"):
        model(torch.randn(1, 1, 6, 6))


def test_odd_pooling_warns():
    model = GroupTransformer(1, 2, CyclicGroup(4), channels=4, blocks=(1, 1), heads=2, patch_size=3)
    with pytest.warns(UserWarning, match="drops a row"):
        model(torch.randn(1, 1, 7, 7))


# -- the set-function view ------------------------------------------------------------------
def _tokens(n=6, c=4, dtype=torch.float64, device="cpu"):
    g = torch.Generator().manual_seed(3)
    return torch.randn(2, n, c, generator=g, dtype=torch.float64).to(device=device, dtype=dtype)


def _perms(n, k=4):
    g = torch.Generator().manual_seed(5)
    return torch.stack([torch.arange(n)] + [torch.randperm(n, generator=g) for _ in range(k)])


def test_plain_set_attention_permutation_equivariant(float_dtype, device):
    torch.manual_seed(0)
    attn = SetSelfAttention(4, heads=2, num_tokens=6, device=device, dtype=float_dtype).eval()
    x = _tokens(dtype=float_dtype, device=device)
    assert attn.in_field == TokenField(Permutations(6))
    assert_equivariant(attn, x, _perms(6), mode="exact")  # declared fields
    assert_equivariant(attn, x, mode="exact")  # the field's own exact elements
    perm = torch.tensor([2, 0, 5, 1, 4, 3])  # independent: plain indexing
    torch.testing.assert_close(attn(x[:, perm]), attn(x)[:, perm])


def test_relative_encoding_translation_not_permutation(float_dtype, device):
    torch.manual_seed(0)
    attn = SetSelfAttention(4, heads=2, positional="relative", num_tokens=6, device=device,
                            dtype=float_dtype).eval()
    x = _tokens(dtype=float_dtype, device=device)
    assert isinstance(attn.in_field, TokenShiftField)
    shifts = torch.arange(6, dtype=torch.float64).unsqueeze(-1)  # Translations(1) elements
    assert_equivariant(attn, x, shifts, mode="exact")
    for t in (1, 4):  # independent: torch.roll
        torch.testing.assert_close(attn(torch.roll(x, t, 1)), torch.roll(attn(x), t, 1))
    tok = TokenField(Permutations(6))
    with pytest.raises(EquivarianceError):
        assert_equivariant(attn, x, _perms(6), in_field=tok, out_field=tok, mode="exact")


def test_absolute_encoding_breaks_both(device):
    torch.manual_seed(0)
    attn = SetSelfAttention(4, heads=2, positional="absolute", num_tokens=6, device=device,
                            dtype=torch.float64).eval()
    assert attn.in_field is None
    x = _tokens(device=device)
    tok, shift = TokenField(Permutations(6)), TokenShiftField(6)
    with pytest.raises(EquivarianceError):
        assert_equivariant(attn, x, _perms(6), in_field=tok, out_field=tok, mode="exact")
    with pytest.raises(EquivarianceError):
        assert_equivariant(attn, x, in_field=shift, out_field=shift, mode="exact")


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
    with pytest.raises(ValueError, match="positional"):
        SetSelfAttention(4, positional="sinusoidal")
    with pytest.raises(ValueError, match="mode must be 'joint' or 'rowcol'"):
        LiftingSelfAttention(1, 4, C4, positional="both")
    with pytest.raises(ValueError, match="group_encoding must be"):
        GroupSelfAttention(4, 4, C4, group_encoding="onehot")
    with pytest.raises(ValueError, match="num_tokens=5"):
        SetSelfAttention(4, num_tokens=5)(torch.randn(1, 6, 4))
    with pytest.raises(TypeError, match="floating-point"):
        gsa(torch.ones(1, 4, 4, 5, 5, dtype=torch.long))


def test_fields_declared():
    layer = LiftingSelfAttention(1, 4, SO2(), num_elements=8, patch_size=3)
    assert layer.in_field == GridField(SO2(), 2)
    assert isinstance(layer.out_field, GroupGridField) and layer.out_field.n == 8
    assert GroupSelfAttention(4, 4, SO2(), num_elements=8).in_field == layer.out_field
