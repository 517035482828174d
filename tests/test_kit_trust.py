"""Issue 9: the verification kit cannot be fooled.

One test (or a few) per reproduced defect; each fails on the code before the fix:

1. custom rotation groups: members only (no reflections), exp/log membership, +-90 degrees
   labelled consistently;
2. non-square images: a 90-degree turn of H x W is W x H, checked exactly;
3. float16/bfloat16 layers: elements and reference transforms stay float64;
4. no vacuous pass: zero/constant input, empty batch, identity-only runs, all-zero outputs;
5. NaN reported as NaN;
6. periods checked at construction;
7. check_group rows read as what they are;
8. SO(3) grids of 24 m elements contain the cube group, so a lifting layer is checked exactly.
"""

from __future__ import annotations

import math
import warnings

import pytest
import torch
import torch.nn as nn

from groupconv.groups import SO3, CyclicGroup, MatrixLieGroup, OctahedralGroup, lie_group_from_sympy
from groupconv.groups.euclidean import Scaling
from groupconv.nn import LiftingConv
from groupconv.spaces import GroupGridField, ImageField
from groupconv.testing import EquivarianceError, assert_equivariant, check_group
from groupconv.testing.equivariance import UninformativeCheckError

J = [[0.0, -1.0], [1.0, 0.0]]
REFLECTION = torch.tensor([[0.0, 1.0], [1.0, 0.0]], dtype=torch.float64)


def rotation_group() -> MatrixLieGroup:
    return MatrixLieGroup(torch.tensor([J]), period=2 * math.pi, name="SO2custom")


def rot(k: int) -> torch.Tensor:
    """The rotation by k * 90 degrees as an exact integer matrix (independent of the groups)."""
    c, s = [(1, 0), (0, 1), (-1, 0), (0, -1)][k % 4]
    return torch.tensor([[c, -s], [s, c]], dtype=torch.float64)


def lifting(G, n=4, k=5, **kw):
    torch.manual_seed(0)
    return LiftingConv(1, 4, G, k, num_elements=n, kernel_net="siren", padding="same", **kw).eval()


# ---------------------------------------------------------------------------------- repro 1
def test_custom_rotation_group_checks_a_lifting_layer_exactly():
    G = rotation_group()
    report = assert_equivariant(lifting(G), torch.randn(2, 1, 15, 15))
    assert len(report.rows) == 4 and all(r.exact for r in report.rows)
    assert sum(r.informative for r in report.rows) == 3


def test_custom_rotation_group_exact_elements_are_members_only():
    els = ImageField(rotation_group()).exact_elements(dtype=torch.float64)
    assert els.shape == (4, 2, 2)
    got = {tuple(torch.round(e).long().flatten().tolist()) for e in els}
    assert got == {tuple(rot(k).long().flatten().tolist()) for k in range(4)}  # no reflections
    assert torch.equal(torch.round(els[0]), torch.eye(2, dtype=torch.float64))


def test_custom_group_log_and_validate_refuse_a_reflection_naming_it():
    G = rotation_group()
    with pytest.raises(ValueError, match=r"\[\[0, 1\], \[1, 0\]\].*det -1"):
        G.log(REFLECTION)
    with pytest.raises(ValueError, match="g must be an element of SO2custom"):
        G.validate(REFLECTION)
    with pytest.raises(ValueError, match="P must be an element"):
        G.validate(REFLECTION, "P")
    # a matrix with det > 0 that is not exp of a rotation generator (a shear)
    with pytest.raises(ValueError, match="SO2custom"):
        G.log(torch.tensor([[1.0, 1.0], [0.0, 1.0]], dtype=torch.float64))
    G.validate(rot(1))  # members still pass


def test_sympy_routes_draw_elements_from_the_group():
    sp = pytest.importorskip("sympy")
    t, s = sp.symbols("theta s")
    R = sp.Matrix([[sp.cos(t), -sp.sin(t)], [sp.sin(t), sp.cos(t)]])
    G = lie_group_from_sympy([t], R, period=2 * math.pi, name="SO2sym")
    assert assert_equivariant(lifting(G), torch.randn(2, 1, 11, 11)).passed
    RotScale = lie_group_from_sympy([t, s], sp.exp(s) * R, period=(2 * math.pi, None),
                                    box=(None, (0.0, math.log(4.0))), name="RotScale")
    els = ImageField(RotScale).exact_elements(dtype=torch.float64)
    assert bool((torch.linalg.det(els) > 0).all())
    with pytest.raises(ValueError, match="RotScale"):
        RotScale.log(torch.tensor([[1.0, 0.0], [0.0, -1.0]], dtype=torch.float64))


def test_given_elements_must_be_members():
    G = rotation_group()
    with pytest.raises(ValueError, match=r"elements\[1\] must be an element of SO2custom"):
        assert_equivariant(lifting(G), torch.randn(2, 1, 9, 9), elements=torch.stack([rot(0), REFLECTION]))


def test_plus_and_minus_ninety_degrees_are_labelled_alike():
    G = rotation_group()
    report = assert_equivariant(lifting(G), torch.randn(2, 1, 15, 15), elements=G.grid(4))
    assert [r.exact for r in report.rows] == [True] * 4


# ---------------------------------------------------------------------------------- repro 2
def test_non_square_image_is_checked_exactly():
    torch.manual_seed(0)
    layer = LiftingConv(1, 4, CyclicGroup(4), 3, padding="same").eval()
    x = torch.randn(2, 1, 9, 11)
    report = assert_equivariant(layer, x)
    assert len(report.rows) == 4 and all(r.exact for r in report.rows)
    # the reference computed by hand: rot90 of the input, rot90 + roll of the output
    with torch.no_grad():
        lhs = layer(torch.rot90(x, 1, dims=(-2, -1)))
        rhs = torch.roll(torch.rot90(layer(x), 1, dims=(-2, -1)), 1, dims=2)
    torch.testing.assert_close(lhs, rhs, atol=1e-5, rtol=1e-5)


def test_non_square_check_still_fails_a_non_equivariant_conv():
    torch.manual_seed(0)
    conv = nn.Conv2d(1, 1, 3, padding=1)
    fld = ImageField(CyclicGroup(4))
    with pytest.raises(EquivarianceError, match="not equivariant"):
        assert_equivariant(conv, torch.randn(2, 1, 9, 11), in_field=fld, out_field=fld)


def test_non_square_group_conv_and_non_cubic_volume_are_checked_exactly():
    from groupconv.nn import GroupConv

    torch.manual_seed(0)
    gconv = GroupConv(2, 3, CyclicGroup(4), 3, padding=1).eval()
    report = assert_equivariant(gconv, torch.randn(2, 2, 4, 8, 10))
    assert len(report.rows) == 4 and all(r.exact for r in report.rows)
    lift3 = LiftingConv(1, 2, OctahedralGroup(), 3, padding=1).eval()
    report = assert_equivariant(lift3, torch.randn(1, 1, 5, 6, 7))
    assert len(report.rows) == 24 and all(r.exact for r in report.rows)


# ---------------------------------------------------------------------------------- repro 3
@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16])
def test_low_precision_layers_are_checked_with_float64_elements(dtype):
    torch.manual_seed(0)
    layer = LiftingConv(1, 4, CyclicGroup(4), 3, padding="same").eval().to(dtype)
    report = assert_equivariant(layer, torch.randn(2, 1, 9, 9).to(dtype))
    assert report.dtype == dtype and len(report.rows) == 4 and all(r.exact for r in report.rows)
    # the out field acts with the group's float64 grid, not the layer's rounded buffer
    fld = layer.out_field
    assert isinstance(fld, GroupGridField) and fld.grid.dtype == torch.float64
    torch.testing.assert_close(fld.grid, CyclicGroup(4).elements(dtype=torch.float64))


def test_low_precision_check_fails_a_broken_layer():
    torch.manual_seed(0)
    conv = nn.Conv2d(1, 1, 3, padding=1).half()
    fld = ImageField(CyclicGroup(4))
    with pytest.raises(EquivarianceError):
        assert_equivariant(conv, torch.randn(2, 1, 9, 9).half(), in_field=fld, out_field=fld)


# ---------------------------------------------------------------------------------- repro 4
def _conv_and_field():
    torch.manual_seed(0)
    return nn.Conv2d(1, 1, 3), ImageField(CyclicGroup(4))


@pytest.mark.parametrize("x", [torch.zeros(2, 1, 9, 9), torch.full((2, 1, 9, 9), 3.0)],
                         ids=["zeros", "constant"])
def test_constant_input_is_refused(x):
    conv, fld = _conv_and_field()
    with pytest.raises(UninformativeCheckError, match="x is constant"):
        assert_equivariant(conv, x, in_field=fld, out_field=fld)
    with pytest.warns(UserWarning, match="x is constant"):  # allowed: the vacuous pass warns
        report = assert_equivariant(conv, x, in_field=fld, out_field=fld, allow_uninformative=True)
    assert report.passed  # a plain (non-equivariant) conv passes on it: the input is useless


def test_empty_batch_is_refused():
    conv, fld = _conv_and_field()
    with pytest.raises(UninformativeCheckError, match="empty batch"):
        assert_equivariant(conv, torch.zeros(0, 1, 9, 9), in_field=fld, out_field=fld)


def test_identity_only_run_is_refused():
    torch.manual_seed(0)
    layer = LiftingConv(1, 4, Scaling(), 3, num_elements=3, padding="same").eval()
    with pytest.raises(UninformativeCheckError, match="no tested element moves x"):
        assert_equivariant(layer, torch.randn(2, 1, 9, 9))
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        report = assert_equivariant(layer, torch.randn(2, 1, 9, 9), allow_uninformative=True)
    assert len(report.rows) == 1 and any("no tested element" in str(w.message) for w in caught)


def test_all_zero_outputs_are_refused():
    fld = ImageField(CyclicGroup(4))
    with pytest.raises(UninformativeCheckError, match="are zero"):
        assert_equivariant(lambda t: 0.0 * t, torch.randn(2, 1, 9, 9), in_field=fld, out_field=fld)


# ---------------------------------------------------------------------------------- repro 5
def test_nan_input_is_reported_as_nan():
    conv, fld = _conv_and_field()
    x = torch.randn(2, 1, 9, 9)
    x[0, 0, 0, 0] = float("nan")
    with pytest.raises(ValueError, match="1 NaN") as info:
        assert_equivariant(conv, x, in_field=fld, out_field=fld)
    assert "deterministic" not in str(info.value)


def test_nan_output_is_reported_as_nan():
    fld = ImageField(CyclicGroup(4))

    def f(t):
        out = t.clone()
        out[:, :, 0, 0] = float("nan")
        return out

    with pytest.raises(EquivarianceError, match="returned NaN/inf") as info:
        assert_equivariant(f, torch.randn(2, 1, 9, 9), in_field=fld, out_field=fld)
    assert "deterministic" not in str(info.value)
    assert all(r.nonfinite and math.isnan(r.abs_error) for r in info.value.report.rows)


# ---------------------------------------------------------------------------------- repro 6
def test_periods_are_checked_at_construction():
    with pytest.raises(ValueError, match=r"not the smallest period.*6\.28318"):
        MatrixLieGroup(torch.tensor([J]), period=4 * math.pi)
    with pytest.raises(ValueError, match=r"does not close.*smallest period is 6\.28318"):
        MatrixLieGroup(torch.tensor([J]), period=math.pi)
    with pytest.raises(ValueError, match="not periodic.*scaling"):
        MatrixLieGroup(torch.tensor([[[1.0, 0.0], [0.0, 1.0]]]), period=1.0)
    with pytest.raises(ValueError, match="not periodic.*nilpotent"):
        MatrixLieGroup(torch.tensor([[[0.0, 1.0], [0.0, 0.0]]]), period=1.0)
    # a scaled generator has its own period: 2 pi / 3
    G = MatrixLieGroup(torch.tensor([[[0.0, -3.0], [3.0, 0.0]]]), period=2 * math.pi / 3)
    assert len({tuple(torch.round(g, decimals=6).flatten().tolist()) for g in G.grid(8)}) == 8


# ---------------------------------------------------------------------------------- repro 7
def test_check_group_rows_read_as_what_they_are():
    E = torch.zeros(3, 3, 3)
    E[0, 0, 1], E[0, 1, 0], E[1, 0, 2], E[2, 1, 2] = -1.0, 1.0, 1.0, 1.0
    G = MatrixLieGroup(E, period=(2 * math.pi, None, None), box=(None, (-2.0, 2.0), (-2.0, 2.0)),
                       name="SE2m")
    report = check_group(G, dtypes=(torch.float64,), max_examples=5)
    for r in report.rows:
        if r.passed and not r.skipped and r.worst_error is not None and r.tolerance is not None:
            assert r.worst_error <= r.tolerance, (r.property, r.worst_error, r.tolerance)
    grid_row = report.row("grid")
    assert grid_row.passed and "identity-first n/a" in grid_row.message
    assert "identity-first n/a" in str(report)


# ---------------------------------------------------------------------------------- repro 8
def test_so3_grid_of_24_is_the_cube_group():
    g = SO3().grid(24, dtype=torch.float64)
    O = OctahedralGroup().elements(dtype=torch.float64)
    cube = {tuple(torch.round(e).long().flatten().tolist()) for e in O}
    assert {tuple(torch.round(e).long().flatten().tolist()) for e in g} == cube
    assert float((g - torch.round(g)).abs().max()) < 1e-12
    g48 = SO3().grid(48, dtype=torch.float64)
    d = SO3().distance(g48[:, None], g48[None]) + 10 * torch.eye(48, dtype=torch.float64)
    assert float(d.min()) > 0.5  # two well-separated cosets, no repeats


def test_sampled_so3_lifting_layer_is_checked_exactly():
    torch.manual_seed(0)
    layer = LiftingConv(1, 2, SO3(), 3, padding=1, num_elements=24, kernel_net="siren").eval()
    report = assert_equivariant(layer, torch.randn(1, 1, 7, 7, 7))
    assert len(report.rows) == 24 and all(r.exact for r in report.rows)


def test_so3_grid_without_the_cube_group_gives_a_clear_error():
    torch.manual_seed(0)
    layer = LiftingConv(1, 2, SO3(), 3, padding=1, num_elements=8, kernel_net="siren").eval()
    with pytest.raises(ValueError, match="share no exact element other than the identity"):
        assert_equivariant(layer, torch.randn(1, 1, 5, 5, 5))
