"""Homogeneous spaces: actions, homomorphism, membership, random points, errors."""

from __future__ import annotations

import math

import pytest
import torch

from groupconv.groups import SE2, SO2, CyclicGroup
from groupconv.groups.rotations import O2
from groupconv.groups.so3 import SO3
from groupconv.spaces import Circle, EuclideanSpace, GroupAsSpace, Sphere2


def test_euclidean_space_affine_action(device):
    X, G = EuclideanSpace(2), SE2()
    gen = torch.Generator().manual_seed(0)
    g, h = G.sample(2, generator=gen, dtype=torch.float64)
    x = X.random_points(5, torch.Generator().manual_seed(1), dtype=torch.float64)
    assert x.shape == (5, 2) and bool(X.contains(x).all())
    assert torch.allclose(X.act(G, g, X.act(G, h, x)), X.act(G, G.product(g, h), x))
    quarter = G.combine(torch.tensor([1.0, 0.0]), torch.tensor([math.pi / 2])).to(device)
    moved = X.act(G, quarter, torch.tensor([1.0, 0.0], device=device))
    assert moved.device.type == device.type
    assert torch.allclose(moved, torch.tensor([1.0, 1.0], device=device), atol=1e-6)
    with pytest.raises(ValueError, match="R\\^3"):
        EuclideanSpace(3).act(G, g, torch.zeros(3))


@pytest.mark.parametrize("group", [SO2(), CyclicGroup(4), O2()])
def test_circle(group):
    S = Circle()
    p = S.random_points(6, torch.Generator().manual_seed(0), dtype=torch.float64)
    assert bool(S.contains(p).all())
    g, h = group.sample(2, generator=torch.Generator().manual_seed(2), dtype=torch.float64)
    q = S.act(group, g, p)
    assert bool(S.contains(q).all())
    assert torch.allclose(S.act(group, g, S.act(group, h, p)), S.act(group, group.product(g, h), p))
    if group == SO2():  # SO2 element a maps angle b to a + b
        b = torch.tensor(0.3, dtype=torch.float64)
        moved = S.to_angle(S.act(group, torch.tensor([0.5], dtype=torch.float64), S.from_angle(b)))
        assert abs(float(moved) - 0.8) < 1e-12


def test_sphere2():
    S, G = Sphere2(), SO3()
    p = S.random_points(8, torch.Generator().manual_seed(0), dtype=torch.float64)
    g, h = G.sample(2, generator=torch.Generator().manual_seed(3), dtype=torch.float64)
    q = S.act(G, g, p)
    assert bool(S.contains(q).all())
    assert torch.allclose(S.angle(q[:1], q[1:2]), S.angle(p[:1], p[1:2]))  # isometry
    assert torch.allclose(S.act(G, g, S.act(G, h, p)), S.act(G, G.product(g, h), p))
    assert not bool(S.contains(2 * p).any())
    assert torch.allclose(S.project(2 * p), p)
    with pytest.raises(ValueError, match="must hold points of Sphere2"):
        S.validate(2 * p)
    with pytest.raises(ValueError, match=r"\(\*batch, 3\)"):
        S.act(G, g, torch.zeros(4, 2))
    with pytest.raises(ValueError, match="acts on R\\^2"):
        S.act(SO2(), torch.zeros(1), p)


def test_group_as_space():
    G = SO3()
    X = GroupAsSpace(G)
    assert X.dim == 9
    x = X.random_points(4, torch.Generator().manual_seed(0), dtype=torch.float64)
    assert x.shape == (4, 9) and bool(X.contains(x).all())
    g = G.sample(1, generator=torch.Generator().manual_seed(1), dtype=torch.float64)[0]
    y = X.act(G, g, x)
    assert torch.allclose(y.reshape(4, 3, 3), g @ x.reshape(4, 3, 3))
    assert not bool(X.contains(torch.zeros(2, 9, dtype=torch.float64)).any())
    with pytest.raises(ValueError, match="space's group"):
        X.act(SO2(), torch.zeros(1), x)
    C4 = CyclicGroup(4)
    Xc = GroupAsSpace(C4)
    e = C4.elements()
    assert torch.allclose(Xc.act(C4, e[1], e), C4.product(e[1], e))
    assert GroupAsSpace(C4) == GroupAsSpace(CyclicGroup(4))
