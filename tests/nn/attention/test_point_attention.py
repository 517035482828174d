"""Group self-attention on point sets (issue 15, item 3).

References are computed independently of the layers: ``g`` acts on raw coordinates by
``group.act`` (PointCloudField) or on lifted elements by the group product (LiftedPointField);
permutations reindex the point axis (TokenField). Every element of SE(2)/SE(3)/T(d)/SO(3) acts
exactly on points, so the kit's exact tolerances apply. Breaking controls: an absolute-position
encoding must fail the same checks.
"""

from __future__ import annotations

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from groupconv.functional.points import gather_points, lift_points, orbit_invariants
from groupconv.groups import SE2, SE3, SO3, Permutations, Translations
from groupconv.nn import LiftingPointSelfAttention, PointSelfAttention
from groupconv.spaces import LiftedPointField, PointCloudField, TokenField, pack_lifted, unpack_lifted
from groupconv.testing import EquivarianceError, assert_equivariant
from groupconv.testing import point_strategies as pst

GROUPS = {"SE2": SE2(), "SE3": SE3(), "T3": Translations(3)}


def _frames(G) -> int:
    return 1 if isinstance(G, Translations) else 2


def _cloud(G, B=2, N=14, C=3, dtype=torch.float64, device="cpu", seed=0, pad=0):
    """Packed cloud (B, N, d + C + 1): coordinates, features, then a 0/1 mask column."""
    gen = torch.Generator().manual_seed(seed)
    x = torch.randn(B, N, G.space_dim, generator=gen, dtype=torch.float64)
    f = torch.randn(B, N, C, generator=gen, dtype=torch.float64)
    m = torch.ones(B, N, 1, dtype=torch.float64)
    if pad:
        m[0, N - pad:] = 0.0
    return torch.cat([x, f, m], -1).to(device=device, dtype=dtype)


class AttnNet(torch.nn.Module):
    """lift (neighbour frames) -> LiftingPointSelfAttention -> SiLU -> PointSelfAttention
    (optionally FPS-downsampled) -> mean over the fibre: per-point invariant features."""

    def __init__(self, G, C=3, out=4, num_samples=None, dtype=torch.float64, positional="relative",
                 lifting_positional=None):
        super().__init__()
        self.G, self.S, self.d = G, _frames(G), G.space_dim
        lp = positional if lifting_positional is None else lifting_positional
        self.a1 = LiftingPointSelfAttention(G, C, 8, heads=2, num_neighbors=5, positional=lp, dtype=dtype)
        self.a2 = PointSelfAttention(G, 8, out, heads=2, num_neighbors=4, num_samples=num_samples,
                                     positional=positional, dtype=dtype)

    def forward(self, x):
        d = self.d
        pts, feats, mask = x[..., :d], x[..., d:-1], x[..., -1] > 0.5
        u = lift_points(self.G, pts, mask, num_frames=self.S)
        h = self.a1(u, feats, mask)
        h = self.a2(h.elements, torch.nn.functional.silu(h.features), h.mask)
        return torch.cat([h.elements[:, :, 0, :d], h.features.mean(2)], -1)


# ------------------------------------------------------------------- exact equivariance
@pytest.mark.parametrize("name", list(GROUPS))
@pytest.mark.parametrize("num_samples", [None, 6])
def test_group_attention_exactly_equivariant_on_lifted_points(name, num_samples, device, float_dtype):
    """One PointSelfAttention on arbitrary lifted elements: m(g u) = m(u) moved, for sampled g."""
    G = GROUPS[name]
    S, C = (3 if not isinstance(G, Translations) else 1), 4
    gen = torch.Generator().manual_seed(4)
    u = G.sample(2 * 12 * S, generator=gen, dtype=torch.float64).reshape(2, 12, S, -1)
    f = torch.randn(2, 12, S, C, generator=gen, dtype=torch.float64)
    x = pack_lifted(u, f).to(device=device, dtype=float_dtype)
    torch.manual_seed(0)
    attn = PointSelfAttention(G, C, 4, heads=2, num_neighbors=5, num_samples=num_samples,
                              dtype=float_dtype).to(device)

    def packed(layer):
        def fn(t):
            e, feat = unpack_lifted(t, G, S)
            out = layer(e, feat)
            return pack_lifted(out.elements, out.features)
        return fn

    elements = G.sample(3, generator=torch.Generator().manual_seed(5), dtype=float_dtype).to(device)
    fields = dict(in_field=LiftedPointField(G, S, C), out_field=LiftedPointField(G, S, 4))
    with torch.no_grad():
        report = assert_equivariant(packed(attn), x, elements, **fields)
        assert all(r.exact for r in report.rows) and len(report.rows) == 3
        attn_abs = PointSelfAttention(G, C, 4, heads=2, num_neighbors=5, num_samples=num_samples,
                                      positional="absolute", dtype=float_dtype).to(device)
        with pytest.raises(EquivarianceError):  # breaking control: rho(v) instead of rho(u^-1 v)
            assert_equivariant(packed(attn_abs), x, elements, **fields)


@pytest.mark.parametrize("name", list(GROUPS))
def test_point_attention_network_equivariant(name, device, float_dtype):
    """points -> lift -> lifting attention -> group attention (FPS) -> fibre mean: exact."""
    G = GROUPS[name]
    torch.manual_seed(1)
    net = AttnNet(G, num_samples=7, dtype=float_dtype).to(device)
    x = _cloud(G, dtype=float_dtype, device=device, pad=3)
    elements = G.sample(3, generator=torch.Generator().manual_seed(6), dtype=float_dtype).to(device)
    with torch.no_grad():
        report = assert_equivariant(net, x, elements, in_field=PointCloudField(G, features=4),
                                    out_field=PointCloudField(G, features=4))
    assert all(r.exact for r in report.rows)


@pytest.mark.parametrize("name", ["SE2", "SE3"])
def test_point_attention_permutation_equivariant(name):
    G = GROUPS[name]
    torch.manual_seed(2)
    net = AttnNet(G)
    x = _cloud(G, N=12)
    perms = TokenField(Permutations(12))
    with torch.no_grad():
        assert_equivariant(net, x, perms.exact_elements(dtype=torch.float64), in_field=perms,
                           out_field=perms)


@pytest.mark.parametrize("name", ["SE2", "SE3", "T3"])
@pytest.mark.parametrize("which", ["lifting", "group", "both"])
def test_absolute_position_encoding_fails(name, which):
    """Breaking control: rho on absolute coordinates breaks equivariance; the relative twin passes."""
    G = GROUPS[name]
    x = _cloud(G)
    elements = G.sample(2, generator=torch.Generator().manual_seed(8), dtype=torch.float64)
    fields = dict(in_field=PointCloudField(G, features=4), out_field=PointCloudField(G, features=4))
    torch.manual_seed(3)
    good = AttnNet(G)
    with torch.no_grad():
        assert_equivariant(good, x, elements, **fields)
        kw = {"lifting": dict(positional="relative", lifting_positional="absolute"),
              "group": dict(positional="absolute", lifting_positional="relative"),
              "both": dict(positional="absolute")}[which]
        torch.manual_seed(3)
        bad = AttnNet(G, **kw)
        with pytest.raises(EquivarianceError):
            assert_equivariant(bad, x, elements, **fields)


def test_rotation_group_attention_with_orbits(device, float_dtype):
    """SO(3) fixing the origin: orbits |x| enter the encoding; exact rotation equivariance, and a
    non-invariant 'orbit' (x_0) breaks it."""
    G = SO3()
    torch.manual_seed(4)
    lift = LiftingPointSelfAttention(G, 2, 4, heads=2, num_neighbors=5, orbit_dim=1, dtype=float_dtype)
    gsa = PointSelfAttention(G, 4, 3, heads=1, num_neighbors=4, orbit_dim=1, num_samples=6,
                             dtype=float_dtype)
    lift, gsa = lift.to(device), gsa.to(device)

    def make(orbit):
        def net(cloud):
            x, f = cloud[..., :3], cloud[..., 3:]
            q = orbit(x)
            h = lift(lift_points(G, x, num_frames=2), f, orbits=q)
            idx = gsa.sample_indices(h.elements, h.mask, q)
            h = gsa(h.elements, h.features, h.mask, q)
            return torch.cat([gather_points(x, idx), h.features.mean(2)], -1)
        return net

    gen = torch.Generator().manual_seed(9)
    cloud = torch.randn(2, 13, 5, generator=gen, dtype=torch.float64).to(device=device, dtype=float_dtype)
    elements = G.sample(3, generator=gen, dtype=float_dtype).to(device)
    fields = dict(in_field=PointCloudField(G, features=2), out_field=PointCloudField(G, features=3))
    with torch.no_grad():
        assert_equivariant(make(lambda x: orbit_invariants(G, x)), cloud, elements, **fields)
        with pytest.raises(EquivarianceError):
            assert_equivariant(make(lambda x: x[..., :1]), cloud, elements, **fields)


# ------------------------------------------------------------------- masks and attention maps
def test_padding_does_not_change_real_points_and_maps_sum_to_one():
    G = SE2()
    torch.manual_seed(5)
    net = AttnNet(G)
    x = _cloud(G, B=1, N=10)
    junk = torch.cat([torch.randn(1, 4, 2) * 50, torch.randn(1, 4, 3), torch.zeros(1, 4, 1)], -1).double()
    padded = torch.cat([x, junk], 1)
    with torch.no_grad():
        torch.testing.assert_close(net(padded)[:, :10], net(x), atol=1e-12, rtol=1e-10)
        assert bool((net(padded)[:, 10:, 2:] == 0).all())
    # more neighbours than real points: padded keys get zero weight, maps sum to 1
    attn = PointSelfAttention(G, 3, 4, heads=2, num_neighbors=12, dtype=torch.float64)
    mask = torch.ones(2, 9, dtype=torch.bool)
    mask[0, 6:] = False
    u = lift_points(G, torch.randn(2, 9, 2, dtype=torch.float64), mask, num_frames=2)
    with torch.no_grad():
        out, maps = attn(u, torch.randn(2, 9, 2, 3, dtype=torch.float64), mask, return_attention=True)
    assert maps.shape == (2, 9, 2, 2, 12 * 2)  # (B, M, S, heads, K * S); K > N pads invalid slots
    sums = maps.sum(-1)
    torch.testing.assert_close(sums[1], torch.ones_like(sums[1]))
    torch.testing.assert_close(sums[0, :6], torch.ones_like(sums[0, :6]))
    assert bool((sums[0, 6:] == 0).all()) and bool((out.features[0, 6:] == 0).all())
    assert float(maps[0, :6].reshape(6, 2, 2, 12, 2)[..., 6:, :].abs().max()) == 0.0  # padded keys
    assert float(maps[1].reshape(9, 2, 2, 12, 2)[..., 9:, :].abs().max()) == 0.0  # missing keys
    y = attn(u, torch.randn(2, 9, 2, 3, dtype=torch.float64), mask).features
    assert bool(torch.isfinite(y).all())


def _saved_bytes(layer, G, n):
    x = torch.randn(1, n, G.space_dim, generator=torch.Generator().manual_seed(n))
    u = lift_points(G, x, num_frames=2)
    f = torch.randn(1, n, 2, 8, requires_grad=True)
    total = [0]

    def pack(t):
        total[0] += t.numel() * t.element_size()
        return t

    with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
        layer(u, f).features.sum().backward()
    return total[0]


def test_activation_memory_is_linear_in_points():
    G = SE3()
    layer = PointSelfAttention(G, 8, 8, heads=2, num_neighbors=8)
    small, big = _saved_bytes(layer, G, 64), _saved_bytes(layer, G, 128)
    assert 1.9 <= big / small <= 2.1, (small, big)


def test_errors_name_the_argument():
    G = SE2()
    with pytest.raises(ValueError, match="heads must divide"):
        PointSelfAttention(G, 4, 6, heads=4)
    with pytest.raises(ValueError, match="positional must be"):
        PointSelfAttention(G, 4, 4, positional="rowcol")
    with pytest.raises(ValueError, match="orbit_dim must be >= 1"):
        LiftingPointSelfAttention(SO3(), 4, 4)
    layer = LiftingPointSelfAttention(G, 3, 4)
    u = lift_points(G, torch.randn(1, 6, 2), num_frames=2)
    with pytest.raises(ValueError, match="features must have shape"):
        layer(u, torch.randn(1, 6, 2, 3))
    with pytest.raises(ValueError, match="mask must have shape"):
        layer(u, torch.randn(1, 6, 3), torch.ones(1, 5, dtype=torch.bool))
    with pytest.raises(ValueError, match="orbits given but orbit_dim=0"):
        layer(u, torch.randn(1, 6, 3), orbits=torch.ones(1, 6, 1))
    with pytest.raises(ValueError, match="elements must be lifted points"):
        layer(torch.randn(1, 6, 2, 4), torch.randn(1, 6, 3))
    with pytest.raises(TypeError, match="features has dtype torch.float64"):
        layer(u, torch.randn(1, 6, 3, dtype=torch.float64))


def test_sample_indices_are_the_kept_points():
    G = SE3()
    torch.manual_seed(6)
    x = torch.randn(2, 15, 3, dtype=torch.float64)
    mask = torch.ones(2, 15, dtype=torch.bool)
    mask[1, 11:] = False
    u = lift_points(G, x, mask, num_frames=2)
    for layer, f in ((LiftingPointSelfAttention(G, 3, 4, num_samples=6, dtype=torch.float64),
                      torch.randn(2, 15, 3, dtype=torch.float64)),
                     (PointSelfAttention(G, 3, 4, num_samples=6, dtype=torch.float64),
                      torch.randn(2, 15, 2, 3, dtype=torch.float64))):
        idx = layer.sample_indices(u, mask)
        with torch.no_grad():
            out = layer(u, f, mask)
        assert idx.shape == (2, 6)
        assert torch.equal(gather_points(u, idx), out.elements)
        assert torch.equal(gather_points(mask, idx) & out.mask, out.mask)
    assert PointSelfAttention(G, 3, 4).sample_indices(u, mask) is None


@settings(max_examples=10, deadline=None)
@given(x=pst.point_clouds(3, features=3, min_points=6, max_points=14), seed=st.integers(0, 2**31 - 1))
def test_se3_attention_on_drawn_padded_clouds(x, seed):
    torch.manual_seed(0)
    net = AttnNet(SE3(), num_samples=5)
    g = SE3().sample(2, generator=torch.Generator().manual_seed(seed), dtype=torch.float64)
    fld = PointCloudField(SE3(), features=4)
    with torch.no_grad():
        assert_equivariant(net, x, g, in_field=fld, out_field=fld)
