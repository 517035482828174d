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

import pytest
import torch

from groupconv.groups import MatrixLieGroup, lie_group_from_sympy
from groupconv.groups.custom_examples import QuarterTurns  # the docs' hand-written finite group
from groupconv.models import GCNN
from groupconv.nn import GroupConv, LiftingConv
from groupconv.nn.attention.attentive import AttentiveGroupConv
from groupconv.nn.attention.self_attention import GroupSelfAttention
from groupconv.nn.group.separable import SeparableGroupConv
from groupconv.testing import EquivarianceError, assert_equivariant, assert_invariant

J = [[0.0, -1.0], [1.0, 0.0]]


def generators_route():
    return MatrixLieGroup(torch.tensor([J]), period=2 * math.pi, name="SO2gen")


def sympy_route():
    sp = pytest.importorskip("sympy")
    t = sp.Symbol("theta")
    R = sp.Matrix([[sp.cos(t), -sp.sin(t)], [sp.sin(t), sp.cos(t)]])
    return lie_group_from_sympy([t], R, period=2 * math.pi, name="SO2sym")


ROUTES = {"generators": generators_route, "sympy": sympy_route, "finite": QuarterTurns}


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
