"""Issue 9: custom groups are first-class everywhere.

The three routes of docs/custom_groups.md -- Lie-algebra generators (``MatrixLieGroup``), a
sympy parameterisation (``lie_group_from_sympy``) and a hand-written finite group (a ``Group``
subclass) -- go through ``assert_equivariant``/``assert_invariant`` with a lifting conv, a group
conv, a separable conv, an attentive conv, a group self-attention layer and the GCNN model,
with the default (exact) elements the kit draws from each group. A failing control (a layer
whose output channels are permuted the wrong way) proves that the same checks can fail.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import pytest
import torch

from groupconv.groups import Group, MatrixLieGroup, lie_group_from_sympy
from groupconv.models import GCNN
from groupconv.nn import GroupConv, LiftingConv
from groupconv.nn.attention import GroupSelfAttention
from groupconv.nn.attentive import AttentiveGroupConv
from groupconv.nn.separable import SeparableGroupConv
from groupconv.testing import EquivarianceError, assert_equivariant, assert_invariant

J = [[0.0, -1.0], [1.0, 0.0]]


@dataclass(frozen=True)
class RotMat4(Group):
    """A user's hand-written finite group: the four rotations by multiples of 90 degrees, as
    2 x 2 matrices (elements ``(*batch, 2, 2)``); coordinates of so(2) for ``log``/``exp``."""

    name = "RotMat4"

    @property
    def dimension(self) -> int:
        return 0

    @property
    def algebra_dim(self) -> int:
        return 1

    @property
    def element_shape(self) -> tuple[int, ...]:
        return (2, 2)

    @property
    def is_compact(self) -> bool:
        return True

    @property
    def is_finite(self) -> bool:
        return True

    @property
    def space_dim(self) -> int:
        return 2

    @property
    def order(self) -> int:
        return 4

    def identity(self, batch_shape=(), device=None, dtype=None):
        eye = torch.eye(2, **self._factory_kwargs(device, dtype))
        return eye.expand(*tuple(batch_shape), 2, 2).clone()

    def product(self, g, h):
        return self.check_element(g, "g") @ self.check_element(h, "h")

    def inverse(self, g):
        return self.check_element(g).transpose(-1, -2).clone()

    def _angle(self, g):
        return torch.atan2(g[..., 1, 0], g[..., 0, 0])

    def exp(self, X):
        X = self._check_algebra(X)
        k = torch.round(X[..., 0] / (math.pi / 2))
        if bool(((X[..., 0] - k * math.pi / 2).abs() > 1e-4).any()):
            raise ValueError("X must hold multiples of pi/2 (elements of RotMat4)")
        t = k * math.pi / 2
        c, s = torch.round(torch.cos(t)), torch.round(torch.sin(t))
        return torch.stack([torch.stack([c, -s], -1), torch.stack([s, c], -1)], -2)

    def log(self, g):
        g = self.check_element(g)
        t = self._angle(g)
        return (t - 2 * math.pi * torch.floor((t + math.pi) / (2 * math.pi))).unsqueeze(-1)

    def matrix(self, g):
        return self.check_element(g)

    def elements(self, device=None, dtype=None):
        return self.exp((torch.arange(4, **self._factory_kwargs(device, dtype)) * math.pi / 2)[:, None])

    def index(self, g):
        k = torch.round(self._angle(self.check_element(g)) / (math.pi / 2)).long()
        return torch.remainder(k, 4)

    def _check_membership(self, g, name):
        ok = (g - torch.round(g)).abs().amax((-2, -1)) < 1e-5
        ok = ok & ((g @ g.transpose(-1, -2) - torch.eye(2, dtype=g.dtype)).abs().amax((-2, -1)) < 1e-5)
        ok = ok & (torch.linalg.det(g) > 0)
        if not bool(ok.all()):
            raise ValueError(f"{name} must hold 90-degree rotation matrices")

    def sample(self, n, generator=None, device=None, dtype=None):
        k = torch.randint(4, (self._check_n(n),), generator=generator)
        return self.elements(device, dtype)[k.to(device)]

    def grid(self, n, device=None, dtype=None):
        if self._check_n(n) != 4:
            raise ValueError(f"n must be 4 for RotMat4.grid, got {n}")
        return self.elements(device, dtype)

    def distance(self, g, h):
        return torch.linalg.matrix_norm(self.check_element(g) - self.check_element(h))

    def embedding(self, g):
        t = self._angle(self.check_element(g))
        return torch.stack([torch.cos(t), torch.sin(t)], -1)

    @property
    def embedding_dim(self) -> int:
        return 2


def generators_route():
    return MatrixLieGroup(torch.tensor([J]), period=2 * math.pi, name="SO2gen")


def sympy_route():
    sp = pytest.importorskip("sympy")
    t = sp.Symbol("theta")
    R = sp.Matrix([[sp.cos(t), -sp.sin(t)], [sp.sin(t), sp.cos(t)]])
    return lie_group_from_sympy([t], R, period=2 * math.pi, name="SO2sym")


ROUTES = {"generators": generators_route, "sympy": sympy_route, "finite": RotMat4}


def _kw(G):
    return {} if G.is_finite else {"num_elements": 4, "kernel_net": "siren"}


def _gkw(G):
    return {} if G.is_finite else {"num_elements": 4}


LAYERS = {
    "lifting": lambda G: (LiftingConv(2, 3, G, 3, padding=1, **_kw(G)), (2, 2, 9, 9)),
    "group": lambda G: (GroupConv(2, 3, G, 3, padding=1, **_kw(G)), (2, 2, 4, 9, 9)),
    "separable": lambda G: (SeparableGroupConv(2, 3, G, 3, padding=1, **_kw(G)), (2, 2, 4, 9, 9)),
    "attentive": lambda G: (AttentiveGroupConv(2, 3, G, 3, padding=1, spatial_kernel_size=3, **_kw(G)),
                            (2, 2, 4, 9, 9)),
    "gsa": lambda G: (GroupSelfAttention(2, 2, G, heads=1, patch_size=3, **_gkw(G)), (2, 2, 4, 7, 7)),
}


@pytest.mark.parametrize("route", list(ROUTES))
@pytest.mark.parametrize("layer", list(LAYERS))
def test_custom_group_layers_are_equivariant(route, layer):
    G = ROUTES[route]()
    torch.manual_seed(0)
    module, shape = LAYERS[layer](G)
    module = module.eval()
    x = torch.randn(*shape)
    report = assert_equivariant(module, x)
    # the default elements are the group's own four 90-degree rotations, all exact
    assert len(report.rows) == 4 and all(r.exact for r in report.rows)
    assert sum(r.informative for r in report.rows) == 3
    mats = torch.stack([r.element.double() for r in report.rows])
    assert bool((torch.linalg.det(mats) > 0.5).all())  # never a reflection


@pytest.mark.parametrize("route", list(ROUTES))
def test_custom_group_gcnn_is_invariant(route):
    G = ROUTES[route]()
    torch.manual_seed(0)
    model = GCNN(1, 3, G, channels=(3, 3), pool_after=(0,), **_gkw(G), norm="none",
                 **({} if G.is_finite else {"kernel_net": "siren"})).eval()
    report = assert_invariant(model, torch.randn(2, 1, 8, 8), in_field=model.in_field)
    assert len(report.rows) == 4 and sum(r.informative for r in report.rows) == 3


@pytest.mark.parametrize("route", list(ROUTES))
def test_custom_group_check_fails_a_broken_layer(route):
    """Control: rolling the group axis of a correct lifting layer's output breaks equivariance
    for every non-identity element, and the same default check catches it."""
    G = ROUTES[route]()
    torch.manual_seed(0)
    layer = LiftingConv(2, 3, G, 3, padding=1, **_kw(G)).eval()

    def broken(t):
        y = layer(t)
        return torch.cat([y[:, :, :1], y[:, :, 1:].flip(2)], dim=2)  # swap +-90 degrees channels

    with pytest.raises(EquivarianceError, match="not equivariant"):
        assert_equivariant(broken, torch.randn(2, 2, 9, 9), in_field=layer.in_field,
                           out_field=layer.out_field)
