"""Point-cloud group convolutions: neighbourhoods, lifting, PointGroupConv and its kit fields.

Equivariance references are computed independently of the layer: ``g`` acts on raw
coordinates by ``group.act`` (PointCloudField) or on lifted elements by the group product
(LiftedPointField); permutations reindex the point axis (TokenField). Every element of SE(2)/
SE(3)/T(d) acts exactly on points, so all checks here use the kit's exact tolerances.
"""

from __future__ import annotations

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from groupconv.functional.points import (
    farthest_point_sampling,
    knn_neighbors,
    lift_points,
    radius_neighbors,
)
from groupconv.groups import SE2, SE3, SO3, CyclicGroup, Permutations, Sim2, Translations
from groupconv.nn import PointGroupConv
from groupconv.spaces import (
    LiftedPointField,
    PointCloudField,
    TokenField,
    TrivialField,
    pack_lifted,
    unpack_lifted,
)
from groupconv.testing import EquivarianceError, assert_equivariant, assert_invariant
from groupconv.testing import point_strategies as pst

GROUPS = {"SE2": SE2(), "SE3": SE3(), "T2": Translations(2), "T3": Translations(3)}


def _d(G) -> int:
    return G.space_dim


def _frames(G) -> int:
    return 1 if isinstance(G, Translations) else 2


def _cloud(G, B=2, N=14, C=3, dtype=torch.float64, device="cpu", seed=0, pad=0):
    """Packed cloud (B, N, d + C + 1): coordinates, features, then a 0/1 mask column."""
    gen = torch.Generator().manual_seed(seed)
    x = torch.randn(B, N, _d(G), generator=gen, dtype=torch.float64)
    f = torch.randn(B, N, C, generator=gen, dtype=torch.float64)
    m = torch.ones(B, N, 1, dtype=torch.float64)
    if pad:
        m[0, N - pad :] = 0.0
    return torch.cat([x, f, m], -1).to(device=device, dtype=dtype)


class PointNet(torch.nn.Module):
    """lift -> PointGroupConv -> SiLU -> PointGroupConv -> mean over the fibre (per-point
    invariant features on the output points). ``invariant=True`` also averages the points."""

    def __init__(self, G, C=3, out=4, num_samples=None, invariant=False, dtype=torch.float64, **kw):
        super().__init__()
        self.G, self.S, self.d, self.invariant = G, _frames(G), _d(G), invariant
        self.c1 = PointGroupConv(G, C, 6, num_neighbors=5, dtype=dtype, **kw)
        self.c2 = PointGroupConv(G, 6, out, num_neighbors=4, num_samples=num_samples, dtype=dtype, **kw)

    def forward(self, x):
        d = self.d
        pts, feats, mask = x[..., :d], x[..., d:-1], x[..., -1] > 0.5
        u = lift_points(self.G, pts, mask, num_frames=self.S)
        h = self.c1(u, feats, mask)
        h = self.c2(h.elements, torch.nn.functional.silu(h.features), h.mask)
        y = h.features.mean(2)
        if self.invariant:
            w = h.mask.to(y.dtype).unsqueeze(-1)
            return (y * w).sum(1) / w.sum(1)
        return torch.cat([h.elements[:, :, 0, :d], y], -1)


# ------------------------------------------------------------------ neighbourhoods and FPS
def test_knn_matches_brute_force_with_mask():
    gen = torch.Generator().manual_seed(1)
    x = torch.randn(2, 11, 3, generator=gen, dtype=torch.float64)
    mask = torch.ones(2, 11, dtype=torch.bool)
    mask[1, 7:] = False
    idx, valid = knn_neighbors(x, 4, mask)
    for b in range(2):
        n = int(mask[b].sum())
        D = torch.cdist(x[b, :n], x[b, :n])
        ref = D.argsort(-1)[:, :4]
        assert torch.equal(idx[b, :n].sort(-1).values, ref.sort(-1).values)
        assert bool(valid[b, :n].all()) and not bool(valid[b, n:].any())
    # more neighbours than real points: the extra slots are invalid
    idx, valid = knn_neighbors(x, 9, mask)
    assert valid[1, :7].sum(-1).tolist() == [7] * 7 and idx.shape == (2, 11, 9)


def test_radius_neighbors_drop_far_points():
    x = torch.tensor([[[0.0, 0.0], [0.5, 0.0], [2.0, 0.0], [0.0, 0.9]]])
    idx, valid = radius_neighbors(x, 1.0, 4)
    d = torch.cdist(x[0], x[0])
    for i in range(4):
        got = {int(j) for j, ok in zip(idx[0, i], valid[0, i]) if ok}
        assert got == {j for j in range(4) if d[i, j] <= 1.0}


def test_farthest_point_sampling_spreads_and_ignores_padding():
    x = torch.tensor([[[0.0], [0.1], [5.0], [10.0], [100.0]]])
    mask = torch.tensor([[True, True, True, True, False]])
    idx, valid = farthest_point_sampling(x, 3, mask)
    # centroid of the real points is 3.775: 10 is farthest, then 0, then 5
    assert idx.tolist() == [[3, 0, 2]] and bool(valid.all())
    idx, valid = farthest_point_sampling(x, 6, mask)
    assert valid.tolist() == [[True] * 4 + [False] * 2] and 4 not in idx[0, :4].tolist()


# -------------------------------------------------------------------------------- lifting
@pytest.mark.parametrize("name", ["SE2", "SE3"])
def test_neighbor_frames_commute_with_rigid_motions(name):
    G = GROUPS[name]
    x = torch.randn(3, 10, G.d, generator=torch.Generator().manual_seed(2), dtype=torch.float64)
    u = lift_points(G, x, num_frames=3)
    assert u.shape == (3, 10, 3, G.element_shape[0])
    for g in G.sample(4, generator=torch.Generator().manual_seed(3), dtype=torch.float64):
        lhs = lift_points(G, G.act(g, x), num_frames=3)
        rhs = G.product(g, u)
        if name == "SE2":  # compare angles on the circle
            lhs = torch.cat([lhs[..., :2], lhs[..., 2:].cos(), lhs[..., 2:].sin()], -1)
            rhs = torch.cat([rhs[..., :2], rhs[..., 2:].cos(), rhs[..., 2:].sin()], -1)
        torch.testing.assert_close(lhs, rhs, atol=1e-12, rtol=1e-12)
    if name == "SE3":  # frames are rotations
        R = u[..., 3:].reshape(*u.shape[:3], 3, 3)
        SO3().validate(R)
        torch.testing.assert_close(torch.linalg.det(R), torch.ones(3, 10, 3, dtype=torch.float64))


def test_lift_modes_and_errors():
    x = torch.randn(2, 5, 2)
    assert lift_points(Translations(2), x).shape == (2, 5, 1, 2)
    u = lift_points(SE2(), x, num_frames=4, frames="grid")
    assert torch.equal(u[..., :2], x.unsqueeze(2).expand(-1, -1, 4, -1))
    s = lift_points(Sim2(), x, num_frames=3, frames="sample", generator=torch.Generator().manual_seed(0))
    assert s.shape == (2, 5, 3, 4)
    with pytest.raises(ValueError, match="frames='neighbors' needs H = SO2 or SO3"):
        lift_points(Sim2(), x, num_frames=2)
    with pytest.raises(ValueError, match="num_frames must be 1"):
        lift_points(Translations(2), x, num_frames=2)
    with pytest.raises(ValueError, match="points must have d = 3"):
        lift_points(SE3(), x)
    with pytest.raises(TypeError, match="group must be Translations"):
        lift_points(CyclicGroup(4), torch.randn(1, 4, 2))


# ---------------------------------------------------------------- equivariance with the kit
@pytest.mark.parametrize("name", list(GROUPS))
@pytest.mark.parametrize("num_samples", [None, 6])
def test_group_layer_exactly_equivariant_on_lifted_points(name, num_samples, device, float_dtype):
    """One PointGroupConv on arbitrary lifted elements: y(g u) = y(u), for sampled g."""
    G = GROUPS[name]
    S, C = 3 if not isinstance(G, Translations) else 1, 2
    gen = torch.Generator().manual_seed(4)
    u = G.sample(2 * 12 * S, generator=gen, dtype=torch.float64).reshape(2, 12, S, -1)
    f = torch.randn(2, 12, S, C, generator=gen, dtype=torch.float64)
    x = pack_lifted(u, f).to(device=device, dtype=float_dtype)
    conv = PointGroupConv(G, C, 4, num_neighbors=5, num_samples=num_samples, dtype=float_dtype).to(device)

    def fn(t):
        e, feat = unpack_lifted(t, G, S)
        out = conv(e, feat)
        return pack_lifted(out.elements, out.features)

    elements = G.sample(3, generator=torch.Generator().manual_seed(5), dtype=float_dtype).to(device)
    report = assert_equivariant(fn, x, elements, in_field=LiftedPointField(G, S, C),
                                out_field=LiftedPointField(G, S, 4))
    assert all(r.exact for r in report.rows) and len(report.rows) == 3


@pytest.mark.parametrize("name", list(GROUPS))
def test_point_network_equivariant_and_invariant(name, device, float_dtype):
    """points -> lift (neighbour frames) -> 2 convs (FPS) -> fibre mean: exact end to end."""
    G = GROUPS[name]
    net = PointNet(G, num_samples=7, dtype=float_dtype).to(device)
    x = _cloud(G, dtype=float_dtype, device=device, pad=3)
    elements = G.sample(3, generator=torch.Generator().manual_seed(6), dtype=float_dtype).to(device)
    assert_equivariant(net, x, elements, in_field=PointCloudField(G, features=4),
                       out_field=PointCloudField(G, features=4))
    inv = PointNet(G, invariant=True, dtype=float_dtype).to(device)
    assert_invariant(inv, x, elements, in_field=PointCloudField(G, features=4))


@pytest.mark.parametrize("name", ["SE2", "SE3", "T2"])
def test_permutation_of_point_order(name):
    G, N = GROUPS[name], 14
    x = _cloud(G, N=N)
    perms = TokenField(Permutations(N))
    gen = torch.Generator().manual_seed(7)
    extra = torch.stack([torch.randperm(N, generator=gen) for _ in range(2)])
    elements = torch.cat([perms.exact_elements(), extra])
    # every point kept: the output follows the points
    assert_equivariant(PointNet(G), x, elements, in_field=perms, out_field=TokenField(Permutations(N)))
    # farthest-point subsampling picks points by position: the output order ignores the input order
    assert_equivariant(PointNet(G, num_samples=6), x, elements, in_field=perms, out_field=TrivialField())


# ------------------------------------------------------------------------ breaking tests
class _AbsoluteCoordinates:
    """A group proxy whose inverse is the identity: the kernel then sees v, not u^-1 v."""

    def __init__(self, G):
        self._G = G

    def inverse(self, g):
        return self._G.identity(g.shape[: g.dim() - len(self._G.element_shape)], g.device, g.dtype)

    def __getattr__(self, name):
        return getattr(self._G, name)


@pytest.mark.parametrize("name", ["SE2", "SE3", "T3"])
def test_kernel_on_absolute_coordinates_fails(name):
    G = GROUPS[name]
    net = PointNet(G, num_samples=7)
    x = _cloud(G)
    elements = G.sample(2, generator=torch.Generator().manual_seed(8), dtype=torch.float64)
    fields = dict(in_field=PointCloudField(G, features=4), out_field=PointCloudField(G, features=4))
    assert_equivariant(net, x, elements, **fields)  # the real layer passes ...
    for conv in (net.c1, net.c2):
        conv.group = _AbsoluteCoordinates(G)
    with pytest.raises(EquivarianceError):  # ... and fails once the kernel sees absolute positions
        assert_equivariant(net, x, elements, **fields)


# ------------------------------------------------------------- masks and normalisation
def test_padding_does_not_change_real_points():
    G = SE2()
    net = PointNet(G)
    x = _cloud(G, B=1, N=10)
    junk = torch.cat([torch.randn(1, 4, 2) * 50, torch.randn(1, 4, 3), torch.zeros(1, 4, 1)], -1).double()
    padded = torch.cat([x, junk], 1)
    with torch.no_grad():
        torch.testing.assert_close(net(padded)[:, :10], net(x), atol=1e-12, rtol=1e-10)
        assert bool((net(padded)[:, 10:, 2:] == 0).all())


def test_monte_carlo_normalisation_is_the_neighbourhood_mean():
    """With a constant kernel the layer is linear(mean of the valid neighbours' features)."""
    G = SE2()
    conv = PointGroupConv(G, 2, 3, num_neighbors=4, kernel_channels=1, dtype=torch.float64)
    with torch.no_grad():
        conv.kernel_net.output_linear.weight.zero_()
        conv.kernel_net.output_linear.bias.fill_(1.0)
    x = torch.randn(1, 9, 2, dtype=torch.float64)
    mask = torch.ones(1, 9, dtype=torch.bool)
    mask[0, 6:] = False
    f = torch.randn(1, 9, 2, 2, dtype=torch.float64)
    out = conv(lift_points(G, x, mask, num_frames=2), f, mask)
    idx, valid = knn_neighbors(x, 4, mask)
    for i in range(6):
        nb = [int(j) for j, ok in zip(idx[0, i], valid[0, i]) if ok]
        mean = f[0, nb].reshape(-1, 2).mean(0)
        ref = conv.linear(mean)
        torch.testing.assert_close(out.features[0, i], ref.expand(2, 3), atol=1e-12, rtol=1e-10)
    assert bool((out.features[0, 6:] == 0).all())


def test_argument_errors_name_the_argument():
    G = SE2()
    conv = PointGroupConv(G, 2, 3)
    u = lift_points(G, torch.randn(1, 5, 2), num_frames=2)
    with pytest.raises(ValueError, match="features must have shape"):
        conv(u, torch.randn(1, 5, 3))
    with pytest.raises(ValueError, match="elements must be lifted points"):
        conv(u[..., :2], torch.randn(1, 5, 2))
    with pytest.raises(ValueError, match="mask must have shape"):
        conv(u, torch.randn(1, 5, 2), torch.ones(1, 4, dtype=torch.bool))
    with pytest.raises(ValueError, match="coordinates must be one of"):
        PointGroupConv(G, 2, 3, coordinates="polar")
    with pytest.raises(ValueError, match="orbits must have shape"):
        PointGroupConv(G, 2, 3, orbit_dim=1)(u, torch.randn(1, 5, 2))
    with pytest.raises(ValueError, match=r"must be a point cloud \(B, N, 2 \+ 1\)"):
        PointCloudField(G, features=1).transform(torch.randn(1, 5, 2), torch.zeros(3))


def test_orbit_identifiers_reach_the_kernel_and_stay_invariant():
    G = SE3()
    conv = PointGroupConv(G, 1, 2, num_neighbors=4, orbit_dim=1, dtype=torch.float64)
    x = torch.randn(1, 8, 3, dtype=torch.float64)
    q = torch.randn(1, 8, 1, dtype=torch.float64)
    u = lift_points(G, x, num_frames=2)
    f = torch.ones(1, 8, 1, dtype=torch.float64)
    y = conv(u, f, orbits=q).features
    assert not torch.allclose(y, conv(u, f, orbits=q + 1).features)
    g = G.sample(1, generator=torch.Generator().manual_seed(9), dtype=torch.float64)[0]
    y2 = conv(lift_points(G, G.act(g, x), num_frames=2), f, orbits=q).features
    torch.testing.assert_close(y2, y, atol=1e-12, rtol=1e-10)


def test_float32_matches_float64():
    G = SE3()
    net = PointNet(G, num_samples=5)
    x = _cloud(G)
    with torch.no_grad():
        y64 = net(x)
        y32 = net.float()(x.float())
    assert y32.dtype == torch.float32
    torch.testing.assert_close(y32.double(), y64, atol=1e-4, rtol=1e-4)


# ------------------------------------------------------------------- property-based checks


@settings(max_examples=10)
@given(x=pst.point_clouds(3, features=3, min_points=6, max_points=14),
       seed=st.integers(0, 2**31 - 1))
def test_se3_network_on_drawn_padded_clouds(x, seed):
    G = SE3()
    torch.manual_seed(0)
    net = PointNet(G, num_samples=5)
    g = G.sample(2, generator=torch.Generator().manual_seed(seed), dtype=torch.float64)
    fld = PointCloudField(G, features=4)
    assert_equivariant(net, x, g, in_field=fld, out_field=fld)


@settings(max_examples=10)
@given(x=pst.point_clouds(2, features=3, min_points=5, max_points=12, batch_size=1, masked=False),
       data=st.data())
def test_se2_network_permutation_equivariant_on_drawn_clouds(x, data):
    n = x.shape[1]
    p = data.draw(pst.point_permutations(n))
    torch.manual_seed(0)
    tok = TokenField(Permutations(n))
    elements = [p, torch.roll(torch.arange(n), 1)]  # the drawn one may be the identity
    assert_equivariant(PointNet(SE2()), x, elements, in_field=tok, out_field=tok)


def test_sampled_and_grid_frames_are_not_exactly_equivariant():
    """The Monte-Carlo lifts are equivariant in distribution only: the exact check must fail."""
    G = SE2()
    torch.manual_seed(0)
    net = PointNet(G, num_samples=7)
    x = _cloud(G)
    fld = PointCloudField(G, features=4)
    g = G.sample(2, generator=torch.Generator().manual_seed(10), dtype=torch.float64)

    class GridLift(PointNet):
        def forward(self, x):
            d = self.d
            pts, feats, mask = x[..., :d], x[..., d:-1], x[..., -1] > 0.5
            u = lift_points(self.G, pts, mask, num_frames=self.S, frames="grid")
            h = self.c1(u, feats, mask)
            h = self.c2(h.elements, torch.nn.functional.silu(h.features), h.mask)
            return torch.cat([h.elements[:, :, 0, :d], h.features.mean(2)], -1)

    grid = GridLift(G, num_samples=7)
    grid.load_state_dict(net.state_dict())
    assert_equivariant(net, x, g, in_field=fld, out_field=fld)
    with pytest.raises(EquivarianceError):
        assert_equivariant(grid, x, g, in_field=fld, out_field=fld)


def _saved_bytes(conv, G, n, k_frames=2):
    """Bytes autograd saves for backward in one forward pass (activation memory)."""
    x = torch.randn(1, n, G.d, generator=torch.Generator().manual_seed(n))
    u = lift_points(G, x, num_frames=k_frames)
    f = torch.randn(1, n, 4, requires_grad=True)
    total = [0]

    def pack(t):
        total[0] += t.numel() * t.element_size()
        return t

    with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
        conv(u, f).features.sum().backward()
    return total[0]


@pytest.mark.parametrize("name", ["SE2", "SE3"])
def test_activation_memory_is_linear_in_points(name):
    """Doubling the points at a fixed neighbourhood size doubles the saved activations (a
    dense all-pairs layer would quadruple them)."""
    G = GROUPS[name]
    conv = PointGroupConv(G, 4, 4, num_neighbors=8)
    small, big = _saved_bytes(conv, G, 64), _saved_bytes(conv, G, 128)
    assert 1.9 <= big / small <= 2.1, (small, big)
    more_nb = PointGroupConv(G, 4, 4, num_neighbors=16)
    more_nb.load_state_dict(conv.state_dict())
    assert 1.8 <= _saved_bytes(more_nb, G, 64) / small <= 2.1
