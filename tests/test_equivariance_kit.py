"""equivariance_error / assert_equivariant / assert_invariant on hand-made equivariant callables
(built from torch.rot90 / torch.roll, independent of the kit) and on deliberately broken ones."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F
from hypothesis import given, settings
from hypothesis import strategies as st

from groupconv.groups import SO2, CyclicGroup
from groupconv.spaces import GroupGridField, ImageField, TrivialField
from groupconv.testing import (
    EquivarianceError,
    EquivarianceReport,
    assert_equivariant,
    assert_invariant,
    default_tolerance,
    equivariance_error,
)
from groupconv.testing import strategies as gst

C4 = CyclicGroup(4)


class C4Lifting(torch.nn.Module):
    """A C4 lifting conv by hand: the kernel rotated by rot90 k times gives output orientation k."""

    def __init__(self, cin: int = 3, cout: int = 4, k: int = 3, *, dtype=torch.float32) -> None:
        super().__init__()
        self.weight = torch.nn.Parameter(torch.randn(cout, cin, k, k, dtype=dtype))
        self.in_field = ImageField(C4)
        self.out_field = GroupGridField(C4, C4.elements())

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        w = torch.stack([torch.rot90(self.weight, r, (-2, -1)) for r in range(4)], 1)
        y = F.conv2d(x, w.flatten(0, 1), padding=self.weight.shape[-1] // 2)
        return y.unflatten(1, (self.weight.shape[0], 4))


def test_rot90_reference_matches_field() -> None:
    x = torch.randn(1, 2, 5, 5, dtype=torch.float64)
    y = torch.randn(1, 2, 4, 5, 5, dtype=torch.float64)
    g = C4.elements()[1]
    assert torch.equal(ImageField(C4).transform(x, g), torch.rot90(x, 1, (-2, -1)))
    assert torch.equal(GroupGridField(C4, C4.elements()).transform(y, g),
                       torch.roll(torch.rot90(y, 1, (-2, -1)), 1, dims=2))


def test_layer_with_fields_passes_exact_mode(device: torch.device, float_dtype: torch.dtype) -> None:
    torch.manual_seed(0)
    layer = C4Lifting(dtype=float_dtype).to(device)
    x = torch.randn(2, 3, 9, 9, device=device, dtype=float_dtype)
    report = assert_equivariant(layer, x)  # fields come from the layer
    assert isinstance(report, EquivarianceReport) and report.passed
    assert len(report.rows) == 4 and all(r.exact for r in report.rows)
    assert report.rows[0].abs_error == 0.0  # identity first: deterministic
    atol, rtol = default_tolerance(float_dtype)
    assert report.max_rel_error < rtol
    assert report.dtype == float_dtype


def test_broken_equivariance_fails_with_table(device: torch.device, float_dtype: torch.dtype) -> None:
    torch.manual_seed(0)
    layer = C4Lifting(dtype=float_dtype).to(device)
    bias = torch.randn(9, 9, device=device, dtype=float_dtype)  # a fixed non-symmetric image

    def broken(x):
        return layer(x) + bias

    x = torch.randn(2, 3, 9, 9, device=device, dtype=float_dtype)
    with pytest.raises(EquivarianceError) as info:
        assert_equivariant(broken, x, in_field=layer.in_field, out_field=layer.out_field)
    msg = str(info.value)
    assert "broken" in msg and "not equivariant for 3 of 4 elements" in msg
    assert "FAIL" in msg and "exact" in msg and "[1.5708]" in msg
    rows = info.value.report.rows
    assert rows[0].passed and not any(r.passed for r in rows[1:])


def test_invariance_via_trivial_field(device: torch.device, float_dtype: torch.dtype) -> None:
    torch.manual_seed(0)
    layer = C4Lifting(dtype=float_dtype).to(device)
    x = torch.randn(2, 3, 8, 8, device=device, dtype=float_dtype)

    def pooled(t):
        return layer(t).amax(dim=(2, 3, 4))  # max over orientations and space: invariant

    assert assert_invariant(pooled, x, in_field=layer.in_field).passed
    assert assert_equivariant(pooled, x, in_field=layer.in_field, out_field=TrivialField()).passed
    with pytest.raises(EquivarianceError):  # not invariant: spatial mean of one orientation only
        assert_invariant(lambda t: layer(t)[:, :, 0].mean(dim=(-2, -1)), x, in_field=layer.in_field)


def _blob(n: int, dtype: torch.dtype, device: torch.device) -> torch.Tensor:
    r = torch.linspace(-1, 1, n, dtype=torch.float64)
    yy, xx = torch.meshgrid(r, r, indexing="ij")
    img = torch.exp(-((yy - 0.2) ** 2 + (xx + 0.1) ** 2) / 0.1)
    img = img + 0.5 * torch.exp(-(yy**2 + (xx - 0.3) ** 2) / 0.05)
    return img.reshape(1, 1, n, n).to(device=device, dtype=dtype)


def test_approximate_rotation_within_budget(device: torch.device, float_dtype: torch.dtype) -> None:
    field = ImageField(SO2())

    def smooth(t):  # pointwise: equivariant in the continuum, approximately on the grid
        return torch.tanh(2 * t) + t**2

    x = _blob(33, float_dtype, device)
    els = torch.tensor([[0.0], [math.pi / 4], [math.pi / 2]])
    report = assert_equivariant(smooth, x, els, in_field=field, out_field=field)
    exact = [r.exact for r in report.rows]
    assert exact == [True, False, True]
    approx = report.rows[1]
    assert approx.masked and 0 < approx.rel_error < 0.1 and approx.tolerance == 0.1
    # forcing exact mode on 45 degrees fails: interpolation is not exact
    with pytest.raises(EquivarianceError, match="exact check"):
        assert_equivariant(smooth, x, els[1:2], in_field=field, out_field=field, mode="exact")
    # a tighter approximate budget can be asked for and fails
    with pytest.raises(EquivarianceError, match="budget"):
        assert_equivariant(smooth, x, els[1:2], in_field=field, out_field=field, rtol=1e-6)


def test_equivariance_error_single_element() -> None:
    torch.manual_seed(0)
    layer = C4Lifting(dtype=torch.float64)
    x = torch.randn(1, 3, 7, 7, dtype=torch.float64)
    r = equivariance_error(layer, x, C4.elements()[3])
    assert r.exact and r.passed and r.abs_error < 1e-10 and r.rel_error < 1e-12
    r = equivariance_error(lambda t: layer(t) + 1e-3 * torch.arange(49.0, dtype=torch.float64).reshape(7, 7),
                           x, C4.elements()[1], layer.in_field, layer.out_field)
    assert not r.passed and r.abs_error > 1e-3


def test_batched_and_looped_agree() -> None:
    torch.manual_seed(0)
    layer = C4Lifting(dtype=torch.float64)
    x = torch.randn(2, 3, 6, 6, dtype=torch.float64)
    a = assert_equivariant(layer, x, batched=True)
    b = assert_equivariant(layer, x, batched=False)
    assert [r.passed for r in a.rows] == [r.passed for r in b.rows]
    for ra, rb in zip(a.rows, b.rows):
        assert abs(ra.abs_error - rb.abs_error) < 1e-12


def test_nondeterministic_callable_gets_a_hint() -> None:
    field = ImageField(C4)
    with pytest.raises(EquivarianceError, match="not deterministic"):
        assert_equivariant(lambda t: t + torch.rand_like(t), torch.randn(1, 1, 4, 4), in_field=field,
                           out_field=field)


def test_clear_errors() -> None:
    with pytest.raises(ValueError, match="in_field is needed"):
        assert_equivariant(lambda t: t, torch.randn(1, 1, 4, 4))
    with pytest.raises(ValueError, match="mode must be one of"):
        assert_equivariant(lambda t: t, torch.randn(1, 1, 4, 4), in_field=ImageField(C4),
                           out_field=ImageField(C4), mode="roughly")
    with pytest.raises(TypeError, match="transform"):
        assert_equivariant(lambda t: t, torch.randn(1, 1, 4, 4), in_field=object(), out_field=ImageField(C4))
    with pytest.raises(EquivarianceError, match="C4Lifting is not equivariant"):  # wrong out field
        assert_equivariant(C4Lifting(), torch.randn(1, 3, 5, 5), out_field=TrivialField())


@settings(max_examples=10)
@given(shape=gst.signal_shapes(side=(2, 7), channels=(1, 3)), seed=st.integers(0, 2**16))
def test_hypothesis_shapes_rot90_symmetrised(shape, seed) -> None:
    """rot90-symmetrised functions are exactly C4 equivariant on every square shape."""
    gen = torch.Generator().manual_seed(seed)
    x = torch.randn(shape, generator=gen)
    field = ImageField(C4)

    def f(t):
        return sum(torch.rot90(torch.rot90(t, -k, (-2, -1)).cumsum(-1), k, (-2, -1)) for k in range(4))

    assert assert_equivariant(f, x, in_field=field, out_field=field).passed


def test_plugin_fixtures(assert_equivariant, equivariance_tolerance, float_dtype, device) -> None:  # noqa: F811
    """The plugin's fixtures: two lines test a layer."""
    layer = C4Lifting(dtype=float_dtype).to(device)
    assert assert_equivariant(layer, torch.randn(1, 3, 6, 6, device=device, dtype=float_dtype)).passed
    assert equivariance_tolerance == default_tolerance(float_dtype)
