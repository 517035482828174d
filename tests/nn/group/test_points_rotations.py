"""Point clouds under rotation groups that fix the origin (SO(2), SO(3) acting on R^d).

References are independent of the layer: ``g`` acts on raw coordinates (PointCloudField,
``group.act``) and permutations reindex the points (TokenField). Every rotation acts exactly on
points, so these are exact-tolerance checks.
"""

from __future__ import annotations

import pytest
import torch

from groupconv.functional.points import (
    gather_points,
    lift_points,
    lifted_positions,
    orbit_invariants,
    point_dim,
)
from groupconv.groups import SO2, SO3, Permutations, Translations
from groupconv.nn import PointGroupConv
from groupconv.spaces import PointCloudField, TokenField
from groupconv.testing import EquivarianceError, assert_equivariant

GROUPS = {"SO2": (SO2(), 1), "SO3": (SO3(), 2)}


def _cloud(G, B=2, N=12, C=2, dtype=torch.float64, device="cpu", seed=0):
    gen = torch.Generator().manual_seed(seed)
    x = torch.randn(B, N, G.space_dim, generator=gen, dtype=torch.float64)
    f = torch.randn(B, N, C, generator=gen, dtype=torch.float64)
    return torch.cat([x, f], -1).to(device=device, dtype=dtype)


@pytest.mark.parametrize("name", list(GROUPS))
@pytest.mark.parametrize("frames", ["neighbors", "sample", "grid"])
def test_lift_points_to_rotations(name, frames):
    G, S = GROUPS[name]
    if name == "SO2" and frames != "neighbors":
        S = 1
    x = torch.randn(2, 9, G.space_dim, dtype=torch.float64)
    u = lift_points(G, x, num_frames=S, frames=frames, generator=torch.Generator().manual_seed(0))
    M = G.matrix(u)
    eye = torch.eye(G.space_dim, dtype=torch.float64)
    torch.testing.assert_close(M @ M.transpose(-1, -2), eye.expand_as(M), atol=1e-12, rtol=0)
    torch.testing.assert_close(torch.linalg.det(M), torch.ones(M.shape[:-2], dtype=torch.float64))
    direction = x / x.norm(dim=-1, keepdim=True)  # u e_0 = x / |x| for every frame of the fibre
    torch.testing.assert_close(M[..., :, 0], direction.unsqueeze(2).expand(-1, -1, S, -1))
    torch.testing.assert_close(lifted_positions(G, u, orbit_invariants(G, x)), x)
    assert point_dim(G) == G.space_dim


@pytest.mark.parametrize("name", list(GROUPS))
def test_neighbor_lift_commutes_with_rotations(name):
    G, S = GROUPS[name]
    x = torch.randn(2, 9, G.space_dim, dtype=torch.float64)
    g = G.sample(1, generator=torch.Generator().manual_seed(1), dtype=torch.float64)[0]
    lifted_then_moved = G.matrix(g) @ G.matrix(lift_points(G, x, num_frames=S))
    moved_then_lifted = G.matrix(lift_points(G, G.act(g, x), num_frames=S))
    torch.testing.assert_close(moved_then_lifted, lifted_then_moved, atol=1e-12, rtol=0)


class RotNet(torch.nn.Module):
    """lift to SO(d) -> PointGroupConv (orbits = |x|) -> SiLU -> PointGroupConv -> fibre mean.
    ``orbit`` maps the points to the orbit identifiers (``|x|``; the control passes x_0)."""

    def __init__(self, G, S, num_samples=None, dtype=torch.float64, orbit=None):
        super().__init__()
        self.G, self.S, self.orbit = G, S, orbit or (lambda x: orbit_invariants(G, x))
        self.c1 = PointGroupConv(G, 2, 4, num_neighbors=5, orbit_dim=1, dtype=dtype)
        self.c2 = PointGroupConv(G, 4, 3, num_neighbors=4, orbit_dim=1, num_samples=num_samples,
                                 dtype=dtype)

    def forward(self, cloud):
        d = self.G.space_dim
        x, f = cloud[..., :d], cloud[..., d:]
        q = self.orbit(x)
        h = self.c1(lift_points(self.G, x, num_frames=self.S), f, orbits=q)
        idx = self.c2.sample_indices(h.elements, h.mask, q)
        h = self.c2(h.elements, torch.nn.functional.silu(h.features), h.mask, q)
        pts = x if idx is None else gather_points(x, idx)
        return torch.cat([pts, h.features.mean(2)], -1)


@pytest.mark.parametrize("name", list(GROUPS))
@pytest.mark.parametrize("num_samples", [None, 7])
def test_rotation_point_conv_exactly_equivariant(name, num_samples, device, float_dtype):
    G, S = GROUPS[name]
    torch.manual_seed(0)
    net = RotNet(G, S, num_samples, dtype=float_dtype).to(device)
    cloud = _cloud(G, dtype=float_dtype, device=device)
    elements = G.sample(3, generator=torch.Generator().manual_seed(2), dtype=float_dtype).to(device)
    fields = dict(in_field=PointCloudField(G, features=2), out_field=PointCloudField(G, features=3))
    with torch.no_grad():
        assert_equivariant(net, cloud, elements, **fields)
        if num_samples is None:
            perms = TokenField(Permutations(12))
            assert_equivariant(net, cloud, perms.exact_elements(device=device), in_field=perms,
                               out_field=perms)


@pytest.mark.parametrize("name", list(GROUPS))
def test_rotation_point_conv_breaking_controls(name):
    G, S = GROUPS[name]
    torch.manual_seed(0)
    cloud = _cloud(G)
    elements = G.sample(2, generator=torch.Generator().manual_seed(3), dtype=torch.float64)
    fields = dict(in_field=PointCloudField(G, features=2), out_field=PointCloudField(G, features=3))
    # a kernel that sees an absolute coordinate (x_0 as the "orbit identifier") is not equivariant
    bad = RotNet(G, S, orbit=lambda x: x[..., :1])
    with torch.no_grad(), pytest.raises(EquivarianceError):
        assert_equivariant(bad, cloud, elements, **fields)
    # the group fixes the origin: the layer is NOT translation equivariant (it sees |x|)
    net = RotNet(G, S)
    T = Translations(G.space_dim)
    shift = torch.full((1, G.space_dim), 0.7, dtype=torch.float64)
    with torch.no_grad(), pytest.raises(EquivarianceError):
        assert_equivariant(net, cloud, shift, in_field=PointCloudField(T, features=2),
                           out_field=PointCloudField(T, features=3))


def test_rotation_groups_need_the_radius():
    with pytest.raises(ValueError, match="orbit_dim must be >= 1"):
        PointGroupConv(SO3(), 1, 2)
    conv = PointGroupConv(SO3(), 1, 2, orbit_dim=1)
    x = torch.randn(1, 6, 3)
    with pytest.raises(ValueError, match="orbits must have shape"):
        conv(lift_points(SO3(), x), torch.ones(1, 6, 1))
    with pytest.raises(ValueError, match="num_frames must be 1"):
        lift_points(SO2(), torch.randn(1, 4, 2), num_frames=2)
    with pytest.raises(ValueError, match="orbits must be"):
        lifted_positions(SO2(), lift_points(SO2(), torch.randn(1, 4, 2)))


def test_sample_indices_are_the_kept_points():
    G = SO3()
    x = torch.randn(2, 15, 3, dtype=torch.float64)
    q = orbit_invariants(G, x)
    u = lift_points(G, x, num_frames=2)
    conv = PointGroupConv(G, 1, 2, num_neighbors=4, orbit_dim=1, num_samples=5, dtype=torch.float64)
    idx = conv.sample_indices(u, None, q)
    with torch.no_grad():
        out = conv(u, torch.ones(2, 15, 1, dtype=torch.float64), orbits=q)
    assert idx.shape == (2, 5) and torch.equal(gather_points(u, idx), out.elements)
    assert PointGroupConv(G, 1, 2, orbit_dim=1).sample_indices(u, None, q) is None
