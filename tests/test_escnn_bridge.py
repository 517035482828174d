"""groupconv <-> escnn bridge (``groupconv.interop.escnn``).

Tests marked ``escnn`` need the optional extra and are skipped with a reason when it is absent
(install it with ``bash scripts/install_escnn.sh``; CI does). The rest always run: groupconv
must never need escnn at import time.

Conventions are checked against escnn's own ``GeometricTensor.transform`` and against
``torch.rot90`` / ``torch.flip`` / ``torch.roll``, never against the bridge itself.
"""

from __future__ import annotations

import copy
import importlib.util
import math
import subprocess
import sys

import pytest
import torch

from groupconv.groups import E2, O2, SE2, SO2, CyclicGroup, DihedralGroup, Scaling, Translations
from groupconv.interop import escnn as bridge
from groupconv.spaces import GroupGridField, ImageField

SKIP_REASON = f"escnn is not installed ({bridge.INSTALL_HINT})"


@pytest.fixture(scope="module")
def escnn():
    if not bridge.escnn_available():
        pytest.skip(SKIP_REASON)
    return bridge.import_escnn()


FINITE = [CyclicGroup(4), DihedralGroup(4)]


# -- always run -----------------------------------------------------------------------------------
def test_groupconv_import_does_not_import_escnn():
    code = (
        "import sys, groupconv, groupconv.interop, groupconv.interop.escnn, groupconv.nn, groupconv.groups;"
        "bad = [m for m in sys.modules if m.split('.')[0] in ('escnn', 'lie_learn')];"
        "assert not bad, bad"
    )
    subprocess.run([sys.executable, "-c", code], check=True, timeout=120)


def test_missing_escnn_raises_with_install_hint(monkeypatch):
    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec",
                        lambda name, *a: None if name == "escnn" else real(name, *a))
    monkeypatch.delitem(sys.modules, "escnn", raising=False)
    monkeypatch.delitem(sys.modules, "escnn.nn", raising=False)
    assert bridge.escnn_available() is False
    with pytest.raises(ImportError, match="install_escnn.sh"):
        bridge.import_escnn()
    with pytest.raises(ImportError, match=r"groupconv\[escnn\]"):
        bridge.to_escnn_gspace(CyclicGroup(4))


# -- groups and gspaces -----------------------------------------------------------------------------
needs_escnn = pytest.mark.escnn


@needs_escnn
@pytest.mark.parametrize("group", [CyclicGroup(1), CyclicGroup(4), CyclicGroup(8), DihedralGroup(3),
                                   DihedralGroup(4), SO2(), O2()])
def test_group_and_gspace_round_trip(escnn, group):
    G = bridge.to_escnn_group(group)
    assert bridge.from_escnn_group(G) == group
    gs = bridge.to_escnn_gspace(group)
    assert bridge.from_escnn_group(gs) == group
    if isinstance(group, (CyclicGroup, DihedralGroup)):
        assert G.order() == group.order
        assert gs.fibergroup.order() == group.order


@needs_escnn
def test_gspace_names_and_semidirect_products(escnn):
    gspaces = escnn.gspaces
    assert bridge.to_escnn_gspace(CyclicGroup(4)) == gspaces.rot2dOnR2(4)
    assert bridge.to_escnn_gspace(DihedralGroup(4)) == gspaces.flipRot2dOnR2(4)
    assert bridge.to_escnn_gspace(SE2()) == gspaces.rot2dOnR2(-1)
    assert bridge.to_escnn_gspace(E2()) == gspaces.flipRot2dOnR2(-1)
    assert bridge.to_escnn_gspace(SO2(), maximum_frequency=4).fibergroup == escnn.group.so2_group()


@needs_escnn
def test_unsupported_groups_and_axes_raise(escnn):
    for group in (Scaling(), Translations(3)):
        with pytest.raises(ValueError, match="group must be"):
            bridge.to_escnn_gspace(group)
    with pytest.raises(ValueError, match="group must be"):
        bridge.to_escnn_group(Scaling())
    with pytest.raises(ValueError, match="default axis"):
        bridge.from_escnn_group(escnn.gspaces.flipRot2dOnR2(4, axis=0.0))
    with pytest.raises(ValueError, match="obj must be"):
        bridge.from_escnn_group("C4")
    with pytest.raises(ValueError, match="group must be"):
        bridge.element_to_escnn(Scaling(), torch.zeros(1))
    with pytest.raises(TypeError, match="GroupElement"):
        bridge.element_from_escnn((0, 1))


# -- elements -------------------------------------------------------------------------------------
def _escnn_image_transform(escnn, gspace, x, element):
    ft = escnn.nn.FieldType(gspace, x.shape[1] * [gspace.trivial_repr])
    return escnn.nn.GeometricTensor(x, ft).transform(element).tensor


@needs_escnn
@pytest.mark.parametrize("group", FINITE, ids=str)
def test_element_map_matches_escnn_image_action(escnn, group):
    gs = bridge.to_escnn_gspace(group)
    x = torch.randn(1, 2, 5, 5, dtype=torch.float64)
    field = ImageField(group)
    for g in group.elements(dtype=torch.float64):
        e = bridge.element_to_escnn(group, g)
        assert torch.equal(bridge.element_from_escnn(e, torch.float64), g)
        assert torch.equal(_escnn_image_transform(escnn, gs, x, e), field.transform(x, g))
    # independent of groupconv's fields: escnn's generators against torch's index ops
    quarter = bridge.element_to_escnn(group, group.elements()[1])
    assert torch.equal(_escnn_image_transform(escnn, gs, x, quarter), torch.rot90(x, 1, dims=(-2, -1)))
    if isinstance(group, DihedralGroup):
        e = bridge.element_to_escnn(group, torch.tensor([0.0, -1.0]))
        assert torch.equal(_escnn_image_transform(escnn, gs, x, e), torch.flip(x, dims=(-1,)))


@needs_escnn
@pytest.mark.parametrize("group", [CyclicGroup(4), CyclicGroup(6), DihedralGroup(4), DihedralGroup(5)],
                         ids=str)
def test_element_map_is_a_homomorphism(escnn, group):
    els = group.elements(dtype=torch.float64)
    E = bridge.element_to_escnn(group, els)
    assert len(E) == group.order
    for i, g in enumerate(els):
        for j, h in enumerate(els):
            assert E[i] @ E[j] == bridge.element_to_escnn(group, group.product(g, h))
        assert ~E[i] == bridge.element_to_escnn(group, group.inverse(g))


@needs_escnn
@pytest.mark.parametrize("group", [SO2(), O2()], ids=str)
def test_continuous_element_map(escnn, group):
    gen = torch.Generator().manual_seed(0)
    g = group.sample(16, generator=gen, dtype=torch.float64)
    E = bridge.element_to_escnn(group, g)
    back = torch.stack([bridge.element_from_escnn(e, torch.float64) for e in E])
    assert group.distance(back, g).max() < 1e-12
    assert torch.equal(back[:, 1:], g[:, 1:])  # mirror bits (O2)
    for a, b in zip(E[:8], E[8:]):  # homomorphism on random pairs
        ga, gb = (bridge.element_from_escnn(e, torch.float64) for e in (a, b))
        ours = group.product(ga, gb)
        prod = bridge.element_from_escnn(a @ b, torch.float64)
        assert group.distance(ours, prod).item() < 1e-9
    gs = bridge.to_escnn_gspace(group)
    x = torch.randn(1, 1, 5, 5, dtype=torch.float64)
    quarter = torch.tensor([math.pi / 2] if isinstance(group, SO2) else [math.pi / 2, 1.0],
                           dtype=torch.float64)
    out = _escnn_image_transform(escnn, gs, x, bridge.element_to_escnn(group, quarter))
    assert torch.allclose(out, torch.rot90(x, 1, dims=(-2, -1)), atol=1e-10)
    if isinstance(group, O2):
        mirror = torch.tensor([0.0, -1.0], dtype=torch.float64)
        out = _escnn_image_transform(escnn, gs, x, bridge.element_to_escnn(group, mirror))
        assert torch.allclose(out, torch.flip(x, dims=(-1,)), atol=1e-10)


# -- regular fields ---------------------------------------------------------------------------------
@needs_escnn
@pytest.mark.parametrize("group", FINITE, ids=str)
def test_regular_field_ordering_matches_escnn_transform(escnn, group):
    gs = bridge.to_escnn_gspace(group)
    ft = bridge.regular_field_type(gs, 2)
    x = torch.randn(1, ft.size, 5, 5, dtype=torch.float64)
    ours = bridge.regular_field_to_groupconv(escnn.nn.GeometricTensor(x, ft))
    assert ours.shape == (1, 2, group.order, 5, 5)
    assert torch.equal(bridge.regular_field_from_groupconv(ours, gs), x)
    field = GroupGridField(group, group.elements(dtype=torch.float64))
    for g in group.elements(dtype=torch.float64):
        esc = escnn.nn.GeometricTensor(x, ft).transform(bridge.element_to_escnn(group, g))
        # escnn applies rho_reg(g) as a dense matrix built from irreps: exact up to rounding
        assert torch.allclose(bridge.regular_field_to_groupconv(esc), field.transform(ours, g), atol=1e-12)
    if isinstance(group, CyclicGroup):  # independent: C_n acts as roll + rot90
        esc = escnn.nn.GeometricTensor(x, ft).transform(bridge.element_to_escnn(group, group.elements()[1]))
        expect = torch.roll(torch.rot90(ours, 1, dims=(-2, -1)), 1, dims=2)
        assert torch.allclose(bridge.regular_field_to_groupconv(esc), expect, atol=1e-12)


@needs_escnn
def test_regular_field_errors_and_device(escnn, device):
    group = DihedralGroup(4)
    x = torch.randn(2, 16, 3, 3, device=device)
    y = bridge.regular_field_to_groupconv(x, group)
    assert y.shape == (2, 2, 8, 3, 3) and y.device == x.device
    assert torch.equal(bridge.regular_field_from_groupconv(y, group), x)
    with pytest.raises(ValueError, match="x must have shape"):
        bridge.regular_field_to_groupconv(torch.randn(2, 15, 3, 3), group)
    with pytest.raises(ValueError, match="y must have shape"):
        bridge.regular_field_from_groupconv(torch.randn(2, 2, 4, 3, 3), group)
    with pytest.raises(ValueError, match="gspace must be given"):
        bridge.regular_field_to_groupconv(x)
    gs = bridge.to_escnn_gspace(group)
    mixed = escnn.nn.FieldType(gs, [gs.regular_repr, gs.trivial_repr])
    with pytest.raises(ValueError, match="regular fields"):
        bridge.regular_field_to_groupconv(escnn.nn.GeometricTensor(torch.randn(1, 9, 3, 3), mixed))


# -- function class: escnn R2Conv filters are groupconv layers ---------------------------------------
@pytest.fixture(scope="module")
def r2convs(escnn):
    """escnn R2Conv (C4, D4; lifting 2 trivial -> 3 regular and 2 regular -> 3 regular; 5x5)."""
    torch.manual_seed(0)
    convs = {}
    for group in FINITE:
        gs = bridge.to_escnn_gspace(group)
        for lifting in (True, False):
            trivial = escnn.nn.FieldType(gs, 2 * [gs.trivial_repr])
            in_type = trivial if lifting else bridge.regular_field_type(gs, 2)
            conv = escnn.nn.R2Conv(in_type, bridge.regular_field_type(gs, 3), 5, padding=2)
            with torch.no_grad():
                conv.weights.normal_()
                conv.bias.normal_()
            convs[(str(group), lifting)] = (group, conv.eval())
    return convs


@needs_escnn
@pytest.mark.parametrize("key", [(str(g), lift) for g in FINITE for lift in (True, False)],
                         ids=lambda k: f"{k[0]}-{'lift' if k[1] else 'group'}")
def test_escnn_filter_is_a_groupconv_expansion(r2convs, key):
    group, conv = r2convs[key]
    filt, bias = conv.expand_parameters()
    layer = bridge.groupconv_from_r2conv(conv)
    n = group.order
    # (a) groupconv's expansion of escnn's identity slice reproduces escnn's whole filter
    perm = bridge.regular_permutation(group)
    W = filt.detach().view(3, n, *filt.shape[1:])[:, perm]
    if not key[1]:
        W = W.reshape(3, n, 2, n, 5, 5)[:, :, :, perm]
    assert torch.allclose(layer.expanded_weight(), W.reshape(3 * n, -1, 5, 5), atol=1e-6)
    back_f, back_b = bridge.escnn_filter_from_groupconv(layer)
    assert torch.allclose(back_f, filt, atol=1e-6) and torch.allclose(back_b, bias, atol=1e-6)
    # (b) the outputs agree to float tolerance, in float32 and float64
    x = torch.randn(2, conv.in_type.size, 9, 9)
    y_esc = conv(conv.in_type(x))
    y_ours = layer(x if key[1] else bridge.regular_field_to_groupconv(x, group))
    y_esc = bridge.regular_field_to_groupconv(y_esc)
    assert (y_esc - y_ours).abs().max() <= 1e-6 * y_esc.abs().max()  # float32 rounding only
    # float64: escnn samples its basis in float32, so its own filter is equivariant only to ~1e-7
    conv.train()  # drops escnn's cached eval filter (a non-leaf tensor deepcopy refuses)
    conv64 = copy.deepcopy(conv).double().eval()
    conv.eval()
    layer64 = bridge.groupconv_from_r2conv(conv64, atol=1e-6)
    x64 = x.double()
    y64 = bridge.regular_field_to_groupconv(conv64(conv64.in_type(x64)))
    y_ours64 = layer64(x64 if key[1] else bridge.regular_field_to_groupconv(x64, group))
    assert y_ours64.dtype == torch.float64
    assert (y64 - y_ours64).abs().max() <= 1e-6 * y64.abs().max()


@needs_escnn
@pytest.mark.parametrize("group", FINITE, ids=str)
def test_escnn_output_is_equivariant_under_groupconv_fields(r2convs, group):
    conv = r2convs[(str(group), False)][1]
    field = GroupGridField(group, group.elements())
    x = bridge.regular_field_to_groupconv(torch.randn(1, conv.in_type.size, 7, 7), group)

    def run(z):
        z = conv.in_type(bridge.regular_field_from_groupconv(z, group))
        return bridge.regular_field_to_groupconv(conv(z))

    y = run(x)
    for g in group.elements():
        assert torch.allclose(run(field.transform(x, g)), field.transform(y, g), atol=1e-5)


@needs_escnn
def test_groupconv_from_r2conv_rejects_other_layers(escnn):
    gs = escnn.gspaces.rot2dOnR2(4)
    irr = escnn.nn.FieldType(gs, [gs.irrep(1)])
    conv = escnn.nn.R2Conv(bridge.regular_field_type(gs, 1), irr, 3)
    with pytest.raises(ValueError, match="regular fields"):
        bridge.groupconv_from_r2conv(conv)
    with pytest.raises(ValueError, match="layer must be"):
        bridge.escnn_filter_from_groupconv(torch.nn.Conv2d(1, 1, 3))
