"""Tests of groupconv.sampling: grids, Haar, stratified, perturbed, Lie-algebra and scale samplers."""

from __future__ import annotations

import copy
import math
import pickle
from collections.abc import Sequence
from dataclasses import dataclass

import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st

from groupconv.groups import SO2, CyclicGroup, Group
from groupconv.sampling import (
    SAMPLERS,
    DyadicScaleSampler,
    GridSampler,
    HaarSampler,
    LieAlgebraSampler,
    LogUniformScaleSampler,
    PerturbedGridSampler,
    Sampler,
    StratifiedSampler,
    make_sampler,
    one_parameter_cell,
    scale_parameterisation,
)

try:  # written concurrently by other helpers: skip their rows cleanly if absent
    from groupconv.groups.so3 import SO3
except ImportError:  # pragma: no cover
    SO3 = None
try:
    from groupconv.groups.euclidean import Scaling, Translations
except ImportError:  # pragma: no cover
    Scaling = Translations = None

try:
    from groupconv.groups.matrix import MatrixLieGroup
except ImportError:  # pragma: no cover
    MatrixLieGroup = None

needs_matrix = pytest.mark.skipif(MatrixLieGroup is None, reason="groupconv.groups.matrix not available")
needs_so3 = pytest.mark.skipif(SO3 is None, reason="groupconv.groups.so3 not available")
needs_scaling = pytest.mark.skipif(Scaling is None, reason="groupconv.groups.euclidean not available")

TWO_PI = 2 * math.pi


def gen(seed: int = 0) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def circ(a: torch.Tensor) -> torch.Tensor:
    """Angles reduced to [0, 2 pi), computed independently of groupconv.wrap_angle."""
    return torch.remainder(a, TWO_PI)


@dataclass(frozen=True)
class LogScaleGroup(Group):
    """A user-defined R+ that stores log-scales (elements t = log s, product t1 + t2)."""

    name = "LogScaleGroup"

    dimension = property(lambda self: 1)
    element_shape = property(lambda self: (1,))
    is_compact = property(lambda self: False)
    is_finite = property(lambda self: False)
    space_dim = property(lambda self: 1)

    def identity(self, batch_shape: Sequence[int] = (), device=None, dtype=None) -> torch.Tensor:
        return torch.zeros(*tuple(batch_shape), 1, **self._factory_kwargs(device, dtype))

    def product(self, g, h):
        return g + h

    def inverse(self, g):
        return -g

    def exp(self, X):
        return self._check_algebra(X).clone()

    def log(self, g):
        return g.clone()

    def matrix(self, g):
        return torch.exp(g)[..., None]

    def sample(self, n, generator=None, device=None, dtype=None):
        return torch.rand(n, 1, generator=generator, **self._factory_kwargs(device, dtype))

    def grid(self, n, device=None, dtype=None):
        return torch.linspace(0, 1, n, **self._factory_kwargs(device, dtype)).unsqueeze(-1)


# -- shapes, determinism, devices and dtypes -------------------------------------------------------
STOCHASTIC = [
    HaarSampler(),
    StratifiedSampler(),
    PerturbedGridSampler(),
    LieAlgebraSampler("normal", scale=0.5),
    LieAlgebraSampler("uniform", box=1.0),
]


@pytest.mark.parametrize("sampler", STOCHASTIC, ids=repr)
def test_fixed_generator_is_deterministic(sampler: Sampler) -> None:
    a = sampler(SO2(), 6, generator=gen(3))
    b = sampler(SO2(), 6, generator=gen(3))
    c = sampler(SO2(), 6, generator=gen(4))
    assert not sampler.is_deterministic
    torch.testing.assert_close(a, b, rtol=0, atol=0)
    assert not torch.equal(a, c)


@pytest.mark.parametrize("sampler", [*STOCHASTIC, GridSampler()], ids=repr)
def test_device_dtype_and_shapes(sampler: Sampler, device: torch.device, float_dtype: torch.dtype) -> None:
    g = sampler(SO2(), 5, generator=gen(0), device=device, dtype=float_dtype)
    assert g.shape == (5, 1) and g.device.type == device.type and g.dtype == float_dtype
    w = sampler.weights(SO2(), 5, device=device, dtype=float_dtype)
    assert w.shape == (5,) and w.device.type == device.type and w.dtype == float_dtype
    torch.testing.assert_close(w.sum(), torch.tensor(1.0, device=device, dtype=float_dtype))


def test_cpu_generator_gives_same_elements_on_every_device(device: torch.device) -> None:
    ref = StratifiedSampler()(SO2(), 8, generator=gen(7), dtype=torch.float64)
    out = StratifiedSampler()(SO2(), 8, generator=gen(7), device=device, dtype=torch.float64)
    torch.testing.assert_close(out.cpu(), ref)


@pytest.mark.parametrize("cls", [HaarSampler, StratifiedSampler, PerturbedGridSampler, LieAlgebraSampler])
def test_per_batch_shapes_and_independence(cls: type[Sampler]) -> None:
    s = cls(per="batch")
    g = s(SO2(), 4, batch_size=3, generator=gen(0))
    assert s.per_batch_element and g.shape == (3, 4, 1)
    assert not torch.equal(g[0], g[1])
    # per-call samplers ignore batch_size: one grid shared by the batch
    assert cls()(SO2(), 4, batch_size=3, generator=gen(0)).shape == (4, 1)


def test_default_global_generator_is_used_when_none() -> None:
    torch.manual_seed(0)
    a = HaarSampler()(SO2(), 4)
    torch.manual_seed(0)
    torch.testing.assert_close(a, HaarSampler()(SO2(), 4))


# -- deterministic grids --------------------------------------------------------------------------
def test_grid_sampler_so2_is_uniform_identity_first(float_dtype: torch.dtype) -> None:
    g = GridSampler()(SO2(), 8, dtype=float_dtype)[:, 0].double()
    expected = torch.tensor([TWO_PI * k / 8 for k in range(8)], dtype=torch.float64)
    assert g[0] == 0
    assert torch.allclose(torch.cos(g), torch.cos(expected), atol=1e-6)
    assert torch.allclose(torch.sin(g), torch.sin(expected), atol=1e-6)
    assert GridSampler().is_deterministic


def test_grid_sampler_finite_groups() -> None:
    C = CyclicGroup(6)
    s = GridSampler()
    assert torch.equal(s(C), C.elements())
    assert s.num_elements(C) == 6 and s.weights(C).shape == (6,)
    sub = s(C, 3)  # the subgroup C_3: rotations by multiples of 2 pi / 3
    assert sub.shape == (3, 1) and sub[0, 0] == 0
    torch.testing.assert_close(circ(sub[:, 0]), torch.tensor([0.0, TWO_PI / 3, 2 * TWO_PI / 3]))
    with pytest.raises(ValueError, match=r"n must divide the order 6.*n=4"):
        s(C, 4)


@needs_so3
def test_grid_sampler_so3_identity_first() -> None:
    g = GridSampler()(SO3(), 12, dtype=torch.float64)
    torch.testing.assert_close(g[0], torch.eye(3, dtype=torch.float64))


@needs_scaling
def test_grid_sampler_scaling_identity_first() -> None:
    g = GridSampler()(Scaling(), 4, dtype=torch.float64)
    assert g[0, 0] == 1.0


# -- stratified grids -----------------------------------------------------------------------------
@given(n=st.integers(1, 40), seed=st.integers(0, 2**31 - 1), batch=st.integers(1, 4))
def test_stratified_so2_spacing_and_offset_within_one_cell(n: int, seed: int, batch: int) -> None:
    g = StratifiedSampler(per="batch")(SO2(), n, batch_size=batch, generator=gen(seed), dtype=torch.float64)
    grid = TWO_PI * torch.arange(n, dtype=torch.float64) / n
    delta = circ(g[..., 0] - grid)  # (B, n): the offset of every point from its grid point
    assert bool((delta >= 0).all()) and bool((delta < TWO_PI / n + 1e-12).all())
    # one offset per batch element: every point of a row is moved by the same angle
    assert float((delta - delta[:, :1]).abs().max()) < 1e-9
    if n > 1:  # spacing preserved
        step = circ(g[:, 1:, 0] - g[:, :-1, 0])
        assert torch.allclose(step, torch.full_like(step, TWO_PI / n), atol=1e-9)


def test_stratified_new_draw_every_call_with_one_generator() -> None:
    s, G, r = StratifiedSampler(), SO2(), gen(0)
    a, b = s(G, 4, generator=r), s(G, 4, generator=r)
    assert not torch.equal(a, b)


def test_stratified_cyclic_is_a_random_coset() -> None:
    C = CyclicGroup(8)
    for seed in range(6):
        g = StratifiedSampler()(C, 4, generator=gen(seed))
        k = C.index(g)
        assert len(set((k % 2).tolist())) == 1  # one coset of C_4 inside C_8
        assert sorted(((k - k[0]) % 8).tolist()) == [0, 2, 4, 6]
    full = StratifiedSampler()(C, 8, generator=gen(1))
    assert sorted(C.index(full).tolist()) == list(range(8))


@needs_scaling
def test_stratified_scaling_moves_each_point_inside_its_cell() -> None:
    S = Scaling()
    grid = GridSampler()(S, 4, dtype=torch.float64)[:, 0]
    ratio = grid[1] / grid[0]
    for seed in range(5):
        g = StratifiedSampler()(S, 4, generator=gen(seed), dtype=torch.float64)[:, 0]
        r = g / grid  # the common multiplicative offset, within one cell [1, ratio)
        assert torch.allclose(r, r[:1].expand(4)) and 1.0 <= float(r[0]) < float(ratio)


@needs_scaling
def test_stratified_noncompact_without_cell_raises() -> None:
    with pytest.raises(ValueError, match="n >= 2|no grid cell"):
        StratifiedSampler()(Scaling(), 1, generator=gen(0))
    if Translations is not None:
        with pytest.raises(ValueError, match="no grid cell for the non-compact group Translations"):
            StratifiedSampler()(Translations(2), 4, generator=gen(0))


def test_one_parameter_cell() -> None:
    assert one_parameter_cell(SO2(), 4) == pytest.approx(math.pi / 2)
    assert one_parameter_cell(SO2(), 2) == pytest.approx(math.pi)
    assert one_parameter_cell(SO2(), 1) == pytest.approx(TWO_PI)
    assert one_parameter_cell(CyclicGroup(4), 4) is None
    assert one_parameter_cell(LogScaleGroup(), 5) == pytest.approx(0.25)
    assert one_parameter_cell(LogScaleGroup(), 1) is None
    if SO3 is not None:
        assert one_parameter_cell(SO3(), 8) is None


@needs_matrix
def test_samplers_on_user_matrix_lie_groups() -> None:
    rot = MatrixLieGroup(torch.tensor([[[0.0, -1.0], [1.0, 0.0]]]), period=TWO_PI, name="Rot")
    g = StratifiedSampler()(rot, 4, generator=gen(0), dtype=torch.float64)
    theta = torch.atan2(g[:, 1, 0], g[:, 0, 0])  # angle read off the matrix, independently of log
    delta = circ(theta - TWO_PI * torch.arange(4, dtype=torch.float64) / 4)
    assert torch.allclose(delta, delta[:1].expand(4), atol=1e-9) and 0 <= float(delta[0]) < math.pi / 2
    aff = MatrixLieGroup(torch.tensor([[[1.0, 0.0], [0.0, 0.0]], [[0.0, 1.0], [0.0, 0.0]]]), name="Aff")
    assert LieAlgebraSampler()(aff, 5, batch_size=2, generator=gen(0)).shape == (5, 2, 2)
    perturbed = PerturbedGridSampler(max_offset=0.1, per="batch")
    assert perturbed(aff, 4, batch_size=3, generator=gen(0)).shape == (3, 4, 2, 2)
    with pytest.raises(ValueError, match="no grid cell for the non-compact group Aff"):
        StratifiedSampler()(aff, 4, generator=gen(0))


# -- Haar statistics (fixed seeds, tolerances of ~5 standard errors) --------------------------------
def _assert_uniform_angles(theta: torch.Tensor) -> None:
    m = theta.numel()
    tol = 5 / math.sqrt(2 * m)  # std of mean(cos) under the uniform law is 1/sqrt(2m)
    assert abs(float(torch.cos(theta).mean())) < tol and abs(float(torch.sin(theta).mean())) < tol
    # second moment too: E[cos 2t] = 0
    assert abs(float(torch.cos(2 * theta).mean())) < tol
    # coarse histogram: 8 bins of expected m/8
    counts = torch.histc(circ(theta).float(), bins=8, min=0, max=TWO_PI)
    assert float((counts - m / 8).abs().max()) < 5 * math.sqrt(m / 8)


def test_so2_haar_sampler_marginals_are_haar() -> None:
    g = HaarSampler(per="batch")(SO2(), 3, batch_size=4000, generator=gen(11), dtype=torch.float64)
    for i in range(3):  # each position, across independent draws
        _assert_uniform_angles(g[:, i, 0])


def test_so2_stratified_is_uniform_in_each_cell_and_haar_overall() -> None:
    n, m = 3, 4000
    g = StratifiedSampler(per="batch")(SO2(), n, batch_size=m, generator=gen(11), dtype=torch.float64)
    _assert_uniform_angles(g[..., 0].reshape(-1))  # a uniformly chosen point of the grid is Haar
    _assert_uniform_angles(g[:, torch.randint(n, (1,), generator=gen(2)).item(), 0] * n)  # offset * n
    for i in range(n):  # point i is uniform on its own cell [2 pi i / n, 2 pi (i + 1) / n)
        local = circ(g[:, i, 0] - TWO_PI * i / n)
        assert float(local.max()) < TWO_PI / n
        assert abs(float(local.mean()) - math.pi / n) < 5 * (TWO_PI / n) / math.sqrt(12 * m)


@needs_so3
@pytest.mark.parametrize("sampler", [HaarSampler(per="batch"), StratifiedSampler(per="batch")], ids=repr)
def test_so3_marginals_are_haar(sampler: Sampler) -> None:
    R = sampler(SO3(), 2, batch_size=3000, generator=gen(5), dtype=torch.float64)[:, 1]
    m = R.shape[0]
    # Haar on SO(3): E[R] = 0 and E[tr R] = 0, E[(tr R)^2] = 1
    assert float(R.mean(0).abs().max()) < 5 / math.sqrt(3 * m)
    tr = R.diagonal(dim1=-2, dim2=-1).sum(-1)
    assert abs(float(tr.mean())) < 5 / math.sqrt(m)
    assert abs(float((tr**2).mean()) - 1.0) < 0.15


# -- perturbed grids and Lie-algebra samplers -------------------------------------------------------
def test_perturbed_so2_default_offset_range() -> None:
    n = 4
    for seed in range(20):
        g = PerturbedGridSampler()(SO2(), n, generator=gen(seed), dtype=torch.float64)[:, 0]
        delta = circ(g - TWO_PI * torch.arange(n, dtype=torch.float64) / n)
        assert torch.allclose(delta, delta[:1].expand(n))
        assert 0 <= float(delta[0]) < TWO_PI * (n - 1) / n**2


@needs_so3
def test_perturbed_so3_needs_max_offset() -> None:
    with pytest.raises(ValueError, match="max_offset"):
        PerturbedGridSampler()(SO3(), 4, generator=gen(0))
    g = PerturbedGridSampler(max_offset=0.1)(SO3(), 4, generator=gen(0), dtype=torch.float64)
    grid = GridSampler()(SO3(), 4, dtype=torch.float64)
    # the same right offset u = grid_i^{-1} g_i for every i, with |log u| small
    u = SO3().product(SO3().inverse(grid), g)
    torch.testing.assert_close(u, u[:1].expand_as(u))
    assert float(SO3().log(u[0]).abs().max()) <= 0.1 + 1e-9


def test_lie_algebra_uniform_box_and_normal_scale() -> None:
    g = LieAlgebraSampler("uniform", box=0.3)(SO2(), 5000, generator=gen(0), dtype=torch.float64)[:, 0]
    assert float(g.abs().max()) <= 0.3 and float(g.abs().max()) > 0.29
    g = LieAlgebraSampler("normal", scale=0.2)(SO2(), 5000, generator=gen(1), dtype=torch.float64)[:, 0]
    assert abs(float(g.std()) - 0.2) < 0.01 and abs(float(g.mean())) < 0.01


@needs_so3
def test_lie_algebra_so3_per_coordinate_scale() -> None:
    s = LieAlgebraSampler("normal", scale=(1e-3, 1e-3, 0.5))
    R = s(SO3(), 2000, generator=gen(0), dtype=torch.float64)
    X = SO3().log(R)
    std = X.std(0)
    assert float(std[0]) < 0.01 and float(std[1]) < 0.01 and abs(float(std[2]) - 0.5) < 0.05
    with pytest.raises(ValueError, match=r"scale must have one entry per algebra coordinate of SO3 \(3\)"):
        LieAlgebraSampler(scale=(1.0, 2.0))(SO3(), 3, generator=gen(0))


# -- scale samplers -----------------------------------------------------------------------------------
@needs_scaling
def test_dyadic_scales_are_exact_powers_of_two(float_dtype: torch.dtype, device: torch.device) -> None:
    s = DyadicScaleSampler(9)
    g = s(Scaling(), device=device, dtype=float_dtype)
    assert g.shape == (9, 1) and g.dtype == float_dtype and g.device.type == device.type
    expected = torch.tensor([float(2**k) for k in range(9)], dtype=float_dtype)
    assert torch.equal(g[:, 0].cpu(), expected)  # bit-exact
    h = DyadicScaleSampler(3, start=-2)(Scaling(), dtype=float_dtype)[:, 0]
    assert h.tolist() == [0.25, 0.5, 1.0]
    assert s.is_deterministic and scale_parameterisation(Scaling()) == "scale"
    with pytest.raises(ValueError, match="n must equal num_scales=9"):
        s(Scaling(), 4)


def test_dyadic_on_a_log_parameterised_user_group() -> None:
    G = LogScaleGroup()
    assert scale_parameterisation(G) == "log"
    g = DyadicScaleSampler(4, base=2.0)(G, dtype=torch.float64)[:, 0]
    torch.testing.assert_close(g, torch.arange(4, dtype=torch.float64) * math.log(2.0))


@needs_scaling
def test_log_uniform_grid_and_random() -> None:
    s = LogUniformScaleSampler(0.5, 8.0)
    g = s(Scaling(), 5, dtype=torch.float64)[:, 0]
    torch.testing.assert_close(g, torch.tensor([0.5, 1.0, 2.0, 4.0, 8.0], dtype=torch.float64))
    assert s(Scaling(), 1)[0, 0] == 0.5 and s.is_deterministic
    r = LogUniformScaleSampler(0.5, 8.0, random=True, per="batch")
    x = r(Scaling(), 500, batch_size=2, generator=gen(0), dtype=torch.float64)
    assert x.shape == (2, 500, 1) and not r.is_deterministic
    assert float(x.min()) >= 0.5 and float(x.max()) <= 8.0
    assert abs(float(torch.log2(x).mean()) - 1.0) < 0.15  # log2 s uniform on [-1, 3]


def test_scale_samplers_reject_compact_groups() -> None:
    with pytest.raises(ValueError, match="one-parameter non-compact group.*SO2"):
        DyadicScaleSampler(3)(SO2())
    with pytest.raises(ValueError, match="max_scale must be > min_scale"):
        LogUniformScaleSampler(2.0, 1.0)
    with pytest.raises(ValueError, match="base must be a positive number other than 1"):
        DyadicScaleSampler(3, base=1.0)


# -- errors -----------------------------------------------------------------------------------------
@pytest.mark.parametrize("n", [0, -3])
def test_nonpositive_n_raises(n: int) -> None:
    for s in [GridSampler(), HaarSampler(), StratifiedSampler()]:
        with pytest.raises(ValueError, match=f"n must be a positive int.*got {n}"):
            s(SO2(), n)


def test_bad_arguments_raise_named_errors() -> None:
    with pytest.raises(TypeError, match="n must be a positive int, got float"):
        GridSampler()(SO2(), 2.0)
    with pytest.raises(ValueError, match="HaarSampler needs the number of elements n"):
        HaarSampler()(SO2())
    with pytest.raises(ValueError, match="GridSampler needs n .* continuous group SO2"):
        GridSampler()(SO2())
    with pytest.raises(ValueError, match=r"needs batch_size"):
        StratifiedSampler(per="batch")(SO2(), 4)
    with pytest.raises(ValueError, match="batch_size must be a positive int"):
        HaarSampler(per="batch")(SO2(), 4, batch_size=0)
    with pytest.raises(ValueError, match=r"per must be one of \('call', 'batch'\), got 'layer'"):
        StratifiedSampler(per="layer")
    with pytest.raises(TypeError, match="generator must be a torch.Generator"):
        HaarSampler()(SO2(), 4, generator=0)
    with pytest.raises(TypeError, match="group must be a groupconv.groups.Group, got str"):
        GridSampler()("SO2", 4)
    with pytest.raises(TypeError, match="dtype must be a torch.dtype"):
        GridSampler()(SO2(), 4, dtype="float32")
    with pytest.raises(ValueError, match="distribution must be one of"):
        LieAlgebraSampler("cauchy")
    with pytest.raises(ValueError, match="scale must be a finite number > 0, got -1.0"):
        LieAlgebraSampler(scale=-1.0)
    with pytest.raises(ValueError, match="max_offset must be a finite number > 0"):
        PerturbedGridSampler(max_offset=0.0)
    with pytest.raises(ValueError, match="finite group CyclicGroup"):
        LieAlgebraSampler()(CyclicGroup(4), 3, generator=gen(0))
    with pytest.raises(ValueError, match="finite group CyclicGroup"):
        PerturbedGridSampler()(CyclicGroup(4), 4, generator=gen(0))


# -- value objects and the registry ------------------------------------------------------------------
@pytest.mark.parametrize(
    "sampler",
    [GridSampler(), HaarSampler(per="batch"), StratifiedSampler(), PerturbedGridSampler(max_offset=0.2),
     LieAlgebraSampler("uniform", box=(0.1, 0.2)), DyadicScaleSampler(4), LogUniformScaleSampler(1.0, 3.0)],
    ids=repr,
)
def test_samplers_are_picklable_value_objects(sampler: Sampler) -> None:
    assert pickle.loads(pickle.dumps(sampler)) == sampler
    assert copy.deepcopy(sampler) == sampler and hash(copy.deepcopy(sampler)) == hash(sampler)
    with pytest.raises(AttributeError):
        sampler.per = "call"  # frozen


def test_make_sampler() -> None:
    assert make_sampler("stratified", per="batch") == StratifiedSampler(per="batch")
    assert make_sampler("dyadic", num_scales=3) == DyadicScaleSampler(3)
    s = GridSampler()
    assert make_sampler(s) is s
    names = {"grid", "haar", "stratified", "perturbed", "lie_algebra", "dyadic", "log_uniform"}
    assert set(SAMPLERS) >= names
    with pytest.raises(ValueError, match="unknown sampler 'sobol'; known samplers: grid"):
        make_sampler("sobol")
    with pytest.raises(TypeError, match="keyword arguments"):
        make_sampler(s, per="batch")
