"""check_group: passes on every catalogue group and the custom-group routes, and catches
deliberately broken groups (naming the property and a shrunk counter-example)."""

from __future__ import annotations

import math
from dataclasses import dataclass

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from groupconv.groups import SO2, CyclicGroup, Group, wrap_angle
from groupconv.groups.catalogue import CATALOGUE_SPEC, catalogue
from groupconv.testing import PROPERTIES, GroupCheckError, GroupReport, check_group, strategies

EXAMPLES = 3
CHEAP = ("identity", "inverse", "associativity", "exp_of_log", "log_of_exp")
NO_HAAR = tuple(p for p in PROPERTIES if p != "haar_invariance")


pytestmark = pytest.mark.usefixtures("one_thread")  # tiny tensors: 1 intra-op thread


def _check_both_dtypes(G: Group, device: torch.device) -> GroupReport:
    """Every property in float32 and float64, except that the Haar-invariance statistics run in
    float64 only: they test the sampler's distribution (z-tests on 4096 samples), not float
    precision, and are by far the most expensive property."""
    dev = [str(device)]
    r32 = check_group(G, devices=dev, dtypes=(torch.float32,), max_examples=EXAMPLES, properties=NO_HAAR)
    r64 = check_group(G, devices=dev, dtypes=(torch.float64,), max_examples=EXAMPLES)
    return GroupReport(r32.rows + r64.rows)


@pytest.mark.parametrize("name", [spec[0] for spec in CATALOGUE_SPEC])
def test_catalogue_group_passes(name: str, device: torch.device) -> None:
    G = catalogue()[name]
    report = _check_both_dtypes(G, device)
    assert report.passed
    assert {r.dtype for r in report.rows} == {torch.float32, torch.float64}
    ran = {r.property for r in report.rows if not r.skipped}
    assert {"identity", "inverse", "associativity", "conventions"} <= ran
    if G.is_finite:
        assert "finite_closure" in ran
    if G.is_compact:
        assert "haar_invariance" in ran


def _custom_routes() -> dict[str, Group]:
    from groupconv.groups import DirectProduct, MatrixLieGroup, lie_group_from_sympy

    sympy = pytest.importorskip("sympy")
    a, b = sympy.symbols("a b")
    return {
        "matrix-so2": MatrixLieGroup(torch.tensor([[[0.0, -1.0], [1.0, 0.0]]]), period=2 * math.pi),
        "sympy-aff1": lie_group_from_sympy([a, b], sympy.Matrix([[sympy.exp(a), b], [0, 1]]), name="Aff1"),
        "direct-so2xc4": DirectProduct(SO2(), CyclicGroup(4)),
        "user-flip": SignFlip(),
    }


@pytest.mark.parametrize("route", ["matrix-so2", "sympy-aff1", "direct-so2xc4", "user-flip"])
def test_custom_group_routes_pass(route: str, device: torch.device) -> None:
    report = _check_both_dtypes(_custom_routes()[route], device)
    assert report.passed, str(report)
    assert {r.dtype for r in report.rows if not r.skipped} == {torch.float32, torch.float64}


# -- a user-defined group written from scratch: Z2 = {+1, -1} acting on R^1 by sign -------------
@dataclass(frozen=True)
class SignFlip(Group):
    name = "SignFlip"
    dimension = 0
    element_shape = (1,)
    is_compact = True
    is_finite = True
    space_dim = 1
    order = 2

    def identity(self, batch_shape=(), device=None, dtype=None):
        return torch.ones(*batch_shape, 1, **self._factory_kwargs(device, dtype))

    def product(self, g, h):
        return g * h

    def inverse(self, g):
        return g.clone()

    def exp(self, X):
        raise TypeError("SignFlip has no Lie algebra")

    def log(self, g):
        raise TypeError("SignFlip has no Lie algebra")

    def matrix(self, g):
        return g.unsqueeze(-1)

    def elements(self, device=None, dtype=None):
        return torch.tensor([[1.0], [-1.0]], **self._factory_kwargs(device, dtype))

    def index(self, g):
        return (g[..., 0] < 0).long()

    def sample(self, n, generator=None, device=None, dtype=None):
        k = torch.randint(2, (n,), generator=generator, device=device)
        return self.elements(device, dtype)[k]

    def grid(self, n, device=None, dtype=None):
        return self.elements(device, dtype)[:n]


def test_user_group_skips_exp_log_as_not_applicable() -> None:
    report = check_group(SignFlip(), devices=["cpu"], dtypes=(torch.float64,), max_examples=3)
    assert report.row("exp_of_log").skipped and report.row("log_of_exp").skipped
    assert "n/a" in str(report)


# -- deliberately broken groups -----------------------------------------------------------
@dataclass(frozen=True)
class NonAssociative(SO2):
    def product(self, g, h):
        return wrap_angle(g + 2 * h)


@dataclass(frozen=True)
class LogSignFlipped(SO2):
    def log(self, g):
        return -wrap_angle(g)


@dataclass(frozen=True)
class BadMatrix(SO2):
    def matrix(self, g):  # rotation by theta + theta^2 / 20: not a homomorphism
        return super().matrix(g + 0.05 * g**2)


@dataclass(frozen=True)
class HalfCircleSampler(SO2):
    def sample(self, n, generator=None, device=None, dtype=None):
        u = torch.rand(n, 1, generator=generator, **self._factory_kwargs(device, dtype))
        return wrap_angle(math.pi * u)  # uniform on [0, pi): not Haar


@dataclass(frozen=True)
class NotClosedCyclic(CyclicGroup):
    def product(self, g, h):  # lands between lattice points
        return wrap_angle(g + h + 0.3 * (g != 0).to(g.dtype) * (h != 0).to(g.dtype))


BROKEN = [
    (NonAssociative(), "associativity"),
    (LogSignFlipped(), "log_of_exp"),
    (LogSignFlipped(), "exp_of_log"),
    (BadMatrix(), "matrix_homomorphism"),
    (BadMatrix(), "action_homomorphism"),
    (HalfCircleSampler(), "haar_invariance"),
    (NotClosedCyclic(4), "finite_closure"),
]


@pytest.mark.parametrize(("G", "prop"), BROKEN, ids=[f"{type(G).__name__}-{p}" for G, p in BROKEN])
def test_broken_group_is_caught(G: Group, prop: str, float_dtype: torch.dtype) -> None:
    with pytest.raises(GroupCheckError) as info:
        check_group(G, devices=["cpu"], dtypes=(float_dtype,), max_examples=10, properties=[prop])
    msg = str(info.value)
    assert prop in msg and type(G).__name__ in msg
    assert str(float_dtype).replace("torch.", "") in msg and "cpu" in msg
    assert "tolerance" in msg or "frequenc" in msg or "not" in msg
    row = info.value.report.row(prop)
    assert not row.passed and not row.skipped
    if row.worst_error is not None and not math.isnan(row.worst_error) and prop != "finite_closure":
        assert row.worst_error > row.tolerance


def test_counter_example_is_shrunk_and_named() -> None:
    with pytest.raises(GroupCheckError) as info:
        check_group(LogSignFlipped(), devices=["cpu"], dtypes=(torch.float64,), properties=["log_of_exp"])
    msg = str(info.value)
    # the smallest failing magnitude (1e-7 in float64) along the first axis
    assert "X = [1e-07]" in msg and "shrunk by Hypothesis" in msg


def test_report_without_raising() -> None:
    report = check_group(NonAssociative(), devices=["cpu"], dtypes=(torch.float64,), max_examples=5,
                         properties=["det_multiplicative", "associativity"], raise_on_failure=False)
    assert isinstance(report, GroupReport) and not report.passed
    assert "associativity" in [r.property for r in report.failures]
    table = str(report)
    assert "FAIL" in table and "pass" in table and "worst error" in table


def test_bad_arguments() -> None:
    with pytest.raises(TypeError, match="G must be a groupconv.groups.Group"):
        check_group("SO2")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="properties must be among"):
        check_group(SO2(), properties=["commutativity"])
    with pytest.raises(ValueError, match="max_examples"):
        check_group(SO2(), max_examples=0)
    assert len(PROPERTIES) == len(set(PROPERTIES))


# -- the strategies themselves ---------------------------------------------------------------
@settings(max_examples=15)
@given(data=st.data())
def test_strategies_draw_valid_elements(data) -> None:
    for G in (SO2(), CyclicGroup(8), SignFlip()):
        g = data.draw(strategies.elements(G, batch_shape=(3,)))
        assert g.shape == (3, *G.element_shape)
        G.validate(g)
    X = data.draw(strategies.algebra_vectors(SO2(), max_norm=1.0))
    assert X.shape == (1,) and float(X.abs()) <= 1.0 + 1e-12
    shape = data.draw(strategies.signal_shapes(group_axis=4, side=(2, 5)))
    assert len(shape) == 5 and shape[2] == 4 and shape[3] == shape[4]
    x = data.draw(strategies.signals(shape, dtype=torch.float64))
    assert x.shape == shape and x.dtype == torch.float64
    assert data.draw(strategies.dtypes()) in (torch.float32, torch.float64)
    assert data.draw(strategies.devices()).type in ("cpu", "cuda")
