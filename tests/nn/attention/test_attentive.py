"""Attentive and co-attentive group convolutions, and the alpha-P4CNN.

Equivariance is checked with the verification kit AND with transforms written here from
torch.rot90 / torch.flip / torch.roll (independent of the layers' fields); the memory-safe full
form is compared with a naive implementation that materialises every per-channel response.
"""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from _helpers import rot, rot_map

from groupconv.groups import SO2, CyclicGroup, DihedralGroup
from groupconv.models.attentive import AttentiveGCNN, alpha_p4cnn
from groupconv.nn.attention.attentive import (
    AttentiveGroupConv,
    AttentiveLiftingConv,
    CoAttentiveGroupConv,
    GroupChannelAttention,
    GroupSpatialAttention,
    attention_memory_elements,
)
from groupconv.sampling import HaarSampler
from groupconv.testing import EquivarianceError, assert_equivariant, assert_invariant

GROUPS = [(CyclicGroup(4), {}, 4), (DihedralGroup(4), {}, 8), (SO2(), {"num_elements": 8}, 8)]
IDS = ["C4", "D4", "SO2-8"]
TOL = {torch.float32: 2e-5, torch.float64: 1e-11}


def _layers(group, kw, fk, with_max=True):
    att = {"spatial_kernel_size": 3, **kw, **fk}
    layers = {
        "lift-full": AttentiveLiftingConv(2, 3, group, 3, padding=1, **att),
        "lift-full-max": AttentiveLiftingConv(2, 3, group, 3, padding=1, statistics=("mean", "max"), **att),
        "lift-fA": AttentiveLiftingConv(2, 3, group, 3, padding=1, form="feature", **att),
        "gconv-full": AttentiveGroupConv(2, 3, group, 3, padding=1, **att),
        "gconv-full-max": AttentiveGroupConv(2, 3, group, 3, padding=1, statistics=("mean", "max"), **att),
        "gconv-fA": AttentiveGroupConv(2, 3, group, 3, padding=1, form="feature", **att),
        "co-attentive": CoAttentiveGroupConv(2, 3, group, 3, padding=1, heads=2, **kw, **fk),
    }
    return layers if with_max else {k: v for k, v in layers.items() if not k.endswith("max")}


def _input(name, n, fk, size=5):
    shape = (2, 2, size, size) if name.startswith("lift") else (2, 2, n, size, size)
    return torch.randn(*shape, **fk)


@pytest.mark.parametrize("group,kw,n", GROUPS, ids=IDS)
def test_every_attention_layer_is_equivariant_with_the_kit(group, kw, n, device, float_dtype):
    torch.manual_seed(0)
    fk = {"device": device, "dtype": float_dtype}
    for name, layer in _layers(group, kw, fk, with_max=isinstance(group, CyclicGroup)).items():
        rep = assert_equivariant(layer, _input(name, n, fk))
        assert len(rep.rows) == (8 if n == 8 and isinstance(group, DihedralGroup) else 4), name


# -- independent transforms ---------------------------------------------------------------------
def _flip_map(y):  # D4 mirror (0, -1): flip columns; axis j <- mirror^-1 h_i (see DESIGN)
    src = [4 + (-i) % 4 for i in range(4)] + [(-(i - 4)) % 4 for i in range(4, 8)]
    return torch.flip(y, dims=(-1,))[:, :, src]


@pytest.mark.parametrize("group,kw,n", GROUPS, ids=IDS)
def test_equivariance_against_rot90_roll_flip(group, kw, n, device, float_dtype):
    torch.manual_seed(1)
    fk = {"device": device, "dtype": float_dtype}
    for name, layer in _layers(group, kw, fk, with_max=not isinstance(group, CyclicGroup)).items():
        x = _input(name, n, fk)
        y = layer(x)
        lift = name.startswith("lift")
        for k in (1,):  # generates the rotations of the grid
            gx = rot(x, k) if lift else rot_map(x, k, n if not isinstance(group, DihedralGroup) else 4)
            if isinstance(group, DihedralGroup):  # rotations roll both halves by k
                gy = torch.cat([rot_map(y[:, :, :4], k, 4), rot_map(y[:, :, 4:], k, 4)], dim=2)
                if not lift:
                    gx = torch.cat([rot_map(x[:, :, :4], k, 4), rot_map(x[:, :, 4:], k, 4)], dim=2)
            else:
                gy = rot_map(y, k, n)
            err = (layer(gx) - gy).abs().max() / gy.abs().max()
            assert err <= TOL[float_dtype], (name, k, float(err))
        if isinstance(group, DihedralGroup):
            gx = torch.flip(x, dims=(-1,)) if lift else _flip_map(x)
            err = (layer(gx) - _flip_map(y)).abs().max() / y.abs().max()
            assert err <= TOL[float_dtype], (name, "flip", float(err))


def test_alpha_p4cnn_invariant_after_pooling(device, float_dtype):
    torch.manual_seed(0)
    fk = {"device": device, "dtype": float_dtype}
    x = torch.randn(2, 1, 8, 8, **fk)
    for form in ("full", "feature"):
        net = alpha_p4cnn(channels=(3, 3), pool_after=(0,), spatial_kernel_size=3, form=form).to(**fk).eval()
        assert_invariant(net, x)
        for k in (1, 2):
            ref = net(x)
            assert (net(rot(x, k)) - ref).abs().max() <= TOL[float_dtype] * ref.abs().max()
    net = AttentiveGCNN(1, 5, SO2(), channels=(2, 2), num_elements=8, pool_after=(0,),
                        spatial_kernel_size=3, statistics=("mean", "max")).to(**fk).eval()
    assert_invariant(net, x)
    net = AttentiveGCNN(1, 5, DihedralGroup(4), channels=(2, 2), pool_after=(0,), spatial_kernel_size=3,
                        form="feature").to(**fk).eval()
    assert_invariant(net, x)
    assert len(net.attention_maps(x)) == 2


# -- the invariance condition is necessary -----------------------------------------------------
class _PositionalSpatial(GroupSpatialAttention):
    def statistics(self, x):  # adds an absolute row coordinate: not invariant under rotations
        s = super().statistics(x)
        ramp = torch.arange(x.shape[-2], device=x.device, dtype=x.dtype).view(-1, 1)
        return s + ramp


class _PixelStatistic(GroupChannelAttention):
    def statistic(self, x, name):  # the value at pixel (0, 0): not a spatially invariant statistic
        return x[..., 0, 0]


def test_breaking_the_invariance_condition_breaks_equivariance(device):
    torch.manual_seed(0)
    x = torch.randn(2, 2, 4, 6, 6, device=device, dtype=torch.float64)
    for form in ("full", "feature"):
        layer = AttentiveGroupConv(2, 3, CyclicGroup(4), 3, padding=1, form=form, spatial_kernel_size=3,
                                   device=device, dtype=torch.float64)
        assert_equivariant(layer, x)
        sa = layer.spatial_attention if form == "full" else layer.attention.spatial_attention
        sa.__class__ = _PositionalSpatial
        with pytest.raises(EquivarianceError):
            assert_equivariant(layer, x)
    layer = AttentiveGroupConv(2, 3, CyclicGroup(4), 3, padding=1, form="feature", spatial_attention=False,
                               device=device, dtype=torch.float64)
    assert_equivariant(layer, x)
    layer.attention.channel_attention.__class__ = _PixelStatistic
    with pytest.raises(EquivarianceError):
        assert_equivariant(layer, x)


# -- maps, naive reference, memory formula ----------------------------------------------------
def test_attention_maps_shapes(device):
    G = CyclicGroup(4)
    x = torch.randn(2, 3, 4, 6, 6, device=device)
    _, m = AttentiveGroupConv(3, 5, G, 3, padding=1, device=device)(x, return_attention=True)
    assert m["channel"].shape == (2, 5, 4, 3, 4) and m["spatial"].shape == (2, 1, 4, 6, 6)
    assert bool(((m["channel"] > 0) & (m["channel"] < 1)).all())
    _, m = AttentiveLiftingConv(3, 5, G, 3, padding=1, device=device)(x[:, :, 0], return_attention=True)
    assert m["channel"].shape == (2, 5, 4, 3) and m["spatial"].shape == (2, 1, 4, 6, 6)
    _, m = AttentiveGroupConv(3, 5, G, 3, form="feature", device=device)(x, return_attention=True)
    assert m["channel"].shape == (2, 3, 4) and m["spatial"].shape == (2, 1, 4, 6, 6)
    y, m = AttentiveLiftingConv(3, 5, G, 3, form="feature", device=device)(x[:, :, 0], return_attention=True)
    assert m["channel"].shape == (2, 3) and m["spatial"].shape == (2, 1, 6, 6) and y.shape == (2, 5, 4, 4, 4)
    _, m = CoAttentiveGroupConv(3, 5, G, 3, heads=3, device=device)(x, return_attention=True)
    assert m["group"].shape == (2, 3, 4, 6, 6)
    torch.testing.assert_close(m["group"].sum(2), torch.ones(2, 3, 6, 6, device=device))


def _naive_full(layer, x):
    """Materialise r[b, o, i, c, j, x], pool, rolled MLP (C4: h_i^-1 h_j = j - i mod 4), sum."""
    W = layer.expanded_weight()  # (P, Q, k, k)
    xf = x.flatten(1, 2)
    B, Q = xf.shape[:2]
    P = W.shape[0]
    cols = F.unfold(xf, 3, padding=1).view(B, Q, 9, -1)
    r = torch.einsum("bqkl,pqk->bpql", cols, W.flatten(2))  # the big tensor
    C, N = layer.in_channels, 4
    rel = (torch.arange(N).view(1, N) - torch.arange(N).view(N, 1)) % N
    mlp = layer.channel_mlp
    logits = 0
    for s in (r.mean(-1), r.amax(-1)):
        s = s.view(B, layer.out_channels, N, C, N)
        h = torch.relu(torch.einsum("boicj,dcij->boid", s, mlp["w1"][:, :, rel]) + mlp["b1"])
        logits = logits + torch.einsum("boid,cdij->boicj", h, mlp["w2"][:, :, rel]) + mlp["b2"].view(-1, 1)
    a = torch.sigmoid(logits).reshape(B, P, Q, 1)
    y = (a * r).sum(2) + layer.bias.repeat_interleave(N).view(1, -1, 1)
    return y.view(B, layer.out_channels, N, *x.shape[-2:])


def test_memory_safe_full_form_equals_naive(device):
    torch.manual_seed(0)
    fk = {"device": device, "dtype": torch.float64}
    layer = AttentiveGroupConv(3, 2, CyclicGroup(4), 3, padding=1, spatial_attention=False,
                               statistics=("mean", "max"), chunk_elements=50, **fk)
    x = torch.randn(2, 3, 4, 5, 5, **fk, requires_grad=True)
    y = layer(x)
    ref = _naive_full(layer, x)
    torch.testing.assert_close(y, ref)
    g = torch.randn_like(y)
    got = torch.autograd.grad((y * g).sum(), [x, layer.weight, layer.channel_mlp["w1"]])
    want = torch.autograd.grad((ref * g).sum(), [x, layer.weight, layer.channel_mlp["w1"]])
    for a, b in zip(got, want, strict=True):
        torch.testing.assert_close(a, b)


@pytest.mark.parametrize("opts", [{"padding": 1}, {"padding": "valid"}, {"padding": "same"},
                                  {"padding": 2, "stride": 2}, {"padding": (1, 2), "dilation": 2},
                                  {"padding": 0, "stride": (2, 1), "dilation": (1, 2)}],
                         ids=["p1", "valid", "same", "stride2", "dilation2", "mixed"])
def test_response_statistics_match_depthwise_responses(opts, device):
    """The closed-form mean and the gathered max equal pooling every response r[b, p, q, x]."""
    torch.manual_seed(0)
    fk = {"device": device, "dtype": torch.float64}
    layer = AttentiveGroupConv(2, 3, CyclicGroup(4), 3, statistics=("mean", "max"), chunk_elements=40,
                               spatial_attention=False, **opts, **fk)
    xf = torch.randn(2, 8, 7, 9, **fk)
    W = layer.expanded_weight()
    P, Q = W.shape[:2]
    pad = opts["padding"] if opts["padding"] != "same" else 1
    r = F.conv2d(xf, W.transpose(0, 1).reshape(Q * P, 1, 3, 3), None, opts.get("stride", 1), pad,
                 opts.get("dilation", 1), groups=Q)  # (B, Q P, X') every response, independently
    r = r.view(2, Q, P, -1).transpose(1, 2)
    got = layer.response_statistics(xf, W)
    torch.testing.assert_close(got["mean"], r.mean(-1))
    torch.testing.assert_close(got["max"], r.amax(-1))
    y, maps = layer(xf.view(2, 2, 4, 7, 9), return_attention=True)  # sum_q alpha r + bias
    ref = (maps["channel"].reshape(2, P, Q, 1) * r).sum(2) + layer.bias.repeat_interleave(4).view(-1, 1)
    torch.testing.assert_close(y.flatten(1, 2).flatten(2), ref)


def test_kernel_budget_decides_recomputation(device, monkeypatch):
    """Per-sample kernels within the budget: no checkpoint; above it: batch chunks, same result."""
    import groupconv.nn.attention.attentive as mod

    calls = []
    real = mod.checkpoint
    monkeypatch.setattr(mod, "checkpoint", lambda *a, **k: calls.append(1) or real(*a, **k))
    torch.manual_seed(0)
    fk = {"device": device, "dtype": torch.float64}
    x = torch.randn(3, 2, 4, 6, 6, **fk, requires_grad=True)
    big = AttentiveGroupConv(2, 3, CyclicGroup(4), 3, padding=1, spatial_kernel_size=3, **fk)
    y = big(x)  # kernels 3*12*8*9 <= 2 * output 2*3*12*36
    assert not calls
    small = AttentiveGroupConv(2, 3, CyclicGroup(4), 3, padding=1, spatial_kernel_size=3,
                               chunk_elements=12 * 8 * 9, **fk)
    small.load_state_dict(big.state_dict())
    ys = small(x)
    assert len(calls) == 3
    torch.testing.assert_close(ys, y)
    g1 = torch.autograd.grad(y.sum(), [x, big.weight])
    g2 = torch.autograd.grad(ys.sum(), [x, small.weight])
    for a, b in zip(g1, g2, strict=True):
        torch.testing.assert_close(a, b)
    with torch.no_grad():  # chunked without recomputation
        torch.testing.assert_close(small(x), y.detach())
    assert len(calls) == 3


def test_spatial_attention_matches_its_definition(device):
    """sigmoid(GroupConv([mean, max]_c)); lifting: sigmoid(max_H (or mean_H) LiftingConv(...))."""
    torch.manual_seed(0)
    fk = {"device": device, "dtype": torch.float64}
    x = torch.randn(2, 5, 4, 6, 7, **fk)
    sa = GroupSpatialAttention(CyclicGroup(4), 3, **fk)
    stats = torch.stack([x.mean(1), x.amax(1)], dim=1)
    torch.testing.assert_close(sa(x), torch.sigmoid(sa.conv(stats)))
    lsa = GroupSpatialAttention(CyclicGroup(4), 5, lifting=True, **fk)
    img = x[:, :, 0]
    stats = torch.stack([img.mean(1), img.amax(1)], dim=1)
    torch.testing.assert_close(lsa(img), torch.sigmoid(lsa.conv(stats).amax(dim=2)))  # reference: max
    msa = GroupSpatialAttention(CyclicGroup(4), 5, lifting=True, pool="mean", **fk)
    torch.testing.assert_close(msa(img), torch.sigmoid(msa.conv(stats).mean(dim=2)))


def test_memory_formula():
    m = attention_memory_elements(128, 96, 4, 96, 4, (34, 34), (32, 32), (3, 3))
    assert m["naive"] == 128 * 96 * 4 * 96 * 4 * 32 * 32
    assert m["naive"] // m["output"] == 96 * 4 and m["extra"] < 4 * m["output"]
    lean = attention_memory_elements(128, 96, 4, 96, 4, (34, 34), (32, 32), (3, 3), spatial_attention=False)
    assert lean["extra"] < 3 * lean["output"] < m["extra"]
    big = attention_memory_elements(2, 3, 4, 3, 4, (7, 7), (5, 5), (3, 3), chunk_elements=10**6,
                                    max_statistic=True)
    assert big["extra"] > 10**6 + 2 * 12 * 12 * 10


# -- bad input ---------------------------------------------------------------------------------
def test_bad_inputs_raise_clear_errors():
    C4, D4 = CyclicGroup(4), DihedralGroup(4)
    with pytest.raises(ValueError, match="heads must divide in_channels=3"):
        CoAttentiveGroupConv(3, 2, C4, 3, heads=2)
    with pytest.raises(ValueError, match="form must be 'full', 'feature' or 'reference'"):
        AttentiveGroupConv(3, 2, C4, 3, form="fa")
    with pytest.raises(ValueError, match="statistics must be"):
        AttentiveGroupConv(3, 2, C4, 3, statistics=("median",))
    with pytest.raises(ValueError, match="normalization"):
        CoAttentiveGroupConv(4, 2, C4, 3, normalization="relu")
    with pytest.raises(ValueError, match="deterministic grid"):
        AttentiveGroupConv(2, 2, SO2(), 3, sampler=HaarSampler(), num_elements=4, kernel_net="mlp")
    layer = AttentiveGroupConv(2, 2, D4, 3, padding=1)
    with pytest.raises(ValueError, match=r"N_in=8"):  # a C4 map into a D4 layer
        layer(torch.randn(1, 2, 4, 5, 5))
    with pytest.raises(ValueError, match="N=8"):
        GroupSpatialAttention(D4, 3)(torch.randn(1, 2, 4, 5, 5))
    with pytest.raises(ValueError, match="channels=2"):
        GroupChannelAttention(2, C4)(torch.randn(1, 3, 4, 5, 5))
    with pytest.raises(ValueError, match="in_grid must be None"):
        layer(torch.randn(1, 2, 8, 5, 5), in_grid=D4.elements())
    with pytest.raises(ValueError, match="attentive_layers"):
        AttentiveGCNN(1, 10, C4, channels=(2, 2), attentive_layers=(5,))
    with pytest.raises(ValueError, match="channel_attention or spatial_attention"):
        AttentiveGroupConv(2, 2, C4, 3, channel_attention=False, spatial_attention=False)
