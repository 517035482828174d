"""User-defined groups: MatrixLieGroup (generators) and the sympy route."""

from __future__ import annotations

import copy
import math
import pickle

import pytest
import sympy as sp
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from groupconv.groups import (
    SO2,
    DirectProduct,
    MatrixLieGroup,
    SymbolicLieGroup,
    lie_group_from_sympy,
    matrix_log,
)

J = [[[0.0, -1.0], [1.0, 0.0]]]
AFF = [[[1.0, 0.0], [0.0, 0.0]], [[0.0, 1.0], [0.0, 0.0]]]  # a (log-scale), b (translation)
angles = st.floats(-math.pi + 1e-6, math.pi - 1e-6, allow_nan=False)


def so2_custom() -> MatrixLieGroup:
    return MatrixLieGroup(torch.tensor(J), period=2 * math.pi, name="SO2custom")


def affine() -> MatrixLieGroup:
    return MatrixLieGroup(torch.tensor(AFF), box=((-1.0, 1.0), (-2.0, 2.0)), name="Aff1")


def tol(dtype: torch.dtype) -> float:
    return 2e-5 if dtype == torch.float32 else 1e-10


def affine_exp_reference(X: torch.Tensor) -> torch.Tensor:
    """exp(a E1 + b E2) = [[e^a, b (e^a - 1)/a], [0, 1]] (closed form, guarded at a = 0)."""
    a, b = X[..., 0], X[..., 1]
    small = a.abs() < 1e-8
    frac = torch.where(small, 1 + a / 2, torch.expm1(a) / torch.where(small, torch.ones_like(a), a))
    one, zero = torch.ones_like(a), torch.zeros_like(a)
    return torch.stack([torch.stack([torch.exp(a), b * frac], -1), torch.stack([zero, one], -1)], -2)


# -- SO(2) written by hand behaves as SO2 --------------------------------------------------------
@given(theta=st.lists(angles, min_size=1, max_size=4))
def test_custom_so2_matches_builtin(theta, device, float_dtype):
    G, R = so2_custom(), SO2()
    th = torch.tensor(theta, device=device, dtype=float_dtype)[:, None]
    g = G.exp(th)
    t = tol(float_dtype) * 10
    torch.testing.assert_close(G.matrix(g), R.matrix(th), atol=t, rtol=t)
    torch.testing.assert_close(G.log(g), th, atol=t * 10, rtol=t)
    x = torch.randn(len(theta), 2, dtype=float_dtype).to(device)
    torch.testing.assert_close(G.act(g, x), R.act(th, x), atol=t, rtol=t)
    torch.testing.assert_close(G.embedding(g), R.embedding(th), atol=t * 10, rtol=t)
    torch.testing.assert_close(G.normalized_log(g), R.normalized_log(th), atol=t * 10, rtol=t)
    torch.testing.assert_close(G.inverse(g), R.matrix(R.inverse(th)), atol=t, rtol=t)
    torch.testing.assert_close(G.det(g), torch.ones_like(th[:, 0]), atol=t, rtol=t)
    assert g.device == th.device and g.dtype == float_dtype


def test_custom_so2_grid_sample_and_attributes(device, float_dtype):
    G, R = so2_custom(), SO2()
    for n in (1, 4, 6, 8):
        grid = G.grid(n, device=device, dtype=float_dtype)
        torch.testing.assert_close(
            grid, R.matrix(R.grid(n, device=device, dtype=float_dtype)), atol=1e-6, rtol=0
        )
    assert G.is_compact and not G.is_finite and G.dimension == 1 and G.space_dim == 2
    assert G.element_shape == (2, 2) and G.embedding_dim == 2 and G.is_orthogonal
    s = G.sample(
        2000, generator=torch.Generator(device=device).manual_seed(0), device=device, dtype=float_dtype
    )
    theta = G.log(s)[:, 0]
    assert theta.min() >= -math.pi and theta.max() <= math.pi
    # Haar: uniform angle -> mean of (cos, sin) near zero, |theta| mean near pi/2
    assert G.embedding(s).mean(0).abs().max() < 0.08
    assert abs(theta.abs().mean().item() - math.pi / 2) < 0.1


@pytest.mark.parametrize("theta", [0.0, 1e-7, -1e-7, math.pi - 1e-6, -math.pi + 1e-6, math.pi, -math.pi])
def test_custom_so2_log_small_and_near_pi(theta, float_dtype):
    G = so2_custom()
    th = torch.tensor([[theta]], dtype=float_dtype)
    g = G.exp(th)
    back = G.log(g)
    # exact pi: the log is +-pi (both valid); otherwise the same angle
    diff = (back - th + math.pi) % (2 * math.pi) - math.pi
    assert diff.abs().max() < (1e-5 if float_dtype == torch.float32 else 1e-9)
    torch.testing.assert_close(G.exp(back), g, atol=1e-6, rtol=0)
    exact_pi = torch.tensor([[[-1.0, 0.0], [0.0, -1.0]]], dtype=float_dtype)
    assert abs(abs(G.log(exact_pi).item()) - math.pi) < 1e-5


# -- the affine group of the line --------------------------------------------------------------
@settings(max_examples=15)
@given(seed=st.integers(0, 2**31 - 1), scale=st.sampled_from([1e-7, 1e-3, 1.0, 3.0]))
def test_affine_group_axioms_and_round_trips(seed, scale, device, float_dtype):
    G = affine()
    gen = torch.Generator().manual_seed(seed)
    X, Y, Z = (scale * torch.randn(3, 2, generator=gen, dtype=float_dtype).to(device) for _ in range(3))
    g, h, k = G.exp(X), G.exp(Y), G.exp(Z)
    t = tol(float_dtype)
    torch.testing.assert_close(g, affine_exp_reference(X), atol=t * 10 * max(scale, 1) ** 2, rtol=t * 10)
    torch.testing.assert_close(G.log(g), X, atol=t * 100 * max(scale, 1), rtol=t * 100)
    e = G.identity((3,), device=device, dtype=float_dtype)
    torch.testing.assert_close(G.product(g, G.inverse(g)), e, atol=t * 100, rtol=0)
    torch.testing.assert_close(G.product(e, g), g)
    big = max(scale, 1) ** 3
    torch.testing.assert_close(
        G.product(G.product(g, h), k), G.product(g, G.product(h, k)), atol=t * 100 * big, rtol=t * 100
    )
    # acting on homogeneous points (x, 1): x -> e^a x + b', a homomorphism
    x = torch.stack([torch.randn(3, generator=gen, dtype=float_dtype), torch.ones(3, dtype=float_dtype)], -1)
    x = x.to(device)
    torch.testing.assert_close(
        G.act(G.product(g, h), x), G.act(g, G.act(h, x)), atol=t * 100 * big, rtol=t * 10
    )
    torch.testing.assert_close(G.det(g), torch.exp(X[:, 0]), atol=t * 10 * big, rtol=t * 10)


def test_affine_group_structure_grid_and_embedding():
    G = affine()
    c = G.structure_constants
    assert c.shape == (2, 2, 2)
    torch.testing.assert_close(c[0, 1], torch.tensor([0.0, 1.0], dtype=torch.float64))  # [E1, E2] = E2
    torch.testing.assert_close(c[1, 0], torch.tensor([0.0, -1.0], dtype=torch.float64))
    assert not G.is_compact and not G.is_orthogonal
    coords = G.grid_coordinates((3, 5))
    assert coords.shape == (15, 2)
    assert coords[:, 0].unique().tolist() == [-1.0, 0.0, 1.0] and coords[:5, 1].tolist() == [-2, -1, 0, 1, 2]
    torch.testing.assert_close(G.grid((3, 5)), G.exp(coords))
    assert G.grid(6).shape == (6, 2, 2)
    s = G.sample(500, generator=torch.Generator().manual_seed(1), dtype=torch.float64)
    X = G.log(s)
    assert X[:, 0].abs().max() <= 1 + 1e-9 and X[:, 1].abs().max() <= 2 + 1e-9
    emb = G.embedding(s)
    assert emb.shape == (500, 2) and emb.abs().max() <= 1 + 1e-6
    torch.testing.assert_close(G.normalized_log(s), emb)


def test_affine_log_rejects_non_members_and_singular():
    G = affine()
    with pytest.raises(ValueError, match="leaves the span"):
        G.log(torch.tensor([[2.0, 0.0], [0.0, 3.0]], dtype=torch.float64))
    with pytest.raises(ValueError, match="invertible"):
        G.log(torch.tensor([[1.0, 1.0], [0.0, 0.0]]))
    with pytest.raises(ValueError, match="g must be an element of Aff1"):
        G.validate(torch.tensor([[2.0, 0.0], [0.0, 3.0]]))
    with pytest.raises(ValueError, match="Aff1 element"):
        G.log(torch.zeros(3, 3))


def test_matrix_log_non_diagonalisable_and_rotation():
    shear = torch.tensor([[1.0, 5.0], [0.0, 1.0]], dtype=torch.float64)  # a Jordan block
    torch.testing.assert_close(matrix_log(shear), torch.tensor([[0.0, 5.0], [0.0, 0.0]], dtype=torch.float64))
    A = torch.tensor([[[0.0, -3.0, 0.1], [3.0, 0.0, 0.0], [0.0, 0.2, 0.5]]], dtype=torch.float64)
    torch.testing.assert_close(matrix_log(torch.linalg.matrix_exp(A)), A)
    with pytest.raises(ValueError, match="square"):
        matrix_log(torch.zeros(2, 3))


# -- generator validation --------------------------------------------------------------------
def test_generator_validation_errors():
    with pytest.raises(ValueError, match="generators must be square"):
        MatrixLieGroup(torch.zeros(1, 2, 3))
    with pytest.raises(ValueError, match=r"generators must have shape \(k, n, n\).*generators\[None\]"):
        MatrixLieGroup(torch.tensor(J[0]))
    with pytest.raises(TypeError, match="floating-point"):
        MatrixLieGroup(torch.tensor([[[0, -1], [1, 0]]]))
    with pytest.raises(ValueError, match="linearly independent"):
        MatrixLieGroup(torch.tensor([J[0], [[0.0, -2.0], [2.0, 0.0]]]))
    with pytest.raises(ValueError, match="linearly independent"):
        MatrixLieGroup(torch.zeros(1, 2, 2))
    with pytest.raises(ValueError, match="finite"):
        MatrixLieGroup(torch.tensor([[[math.nan, 0.0], [0.0, 0.0]]]))
    # so(3) without its third generator is not closed: [Lx, Ly] = Lz
    Lx = [[0.0, 0.0, 0.0], [0.0, 0.0, -1.0], [0.0, 1.0, 0.0]]
    Ly = [[0.0, 0.0, 1.0], [0.0, 0.0, 0.0], [-1.0, 0.0, 0.0]]
    with pytest.raises(ValueError, match=r"not closed under the Lie bracket: \[E_0, E_1\]"):
        MatrixLieGroup(torch.tensor([Lx, Ly]))
    Lz = [[0.0, -1.0, 0.0], [1.0, 0.0, 0.0], [0.0, 0.0, 0.0]]
    so3 = MatrixLieGroup(torch.tensor([Lx, Ly, Lz]))
    torch.testing.assert_close(
        so3.structure_constants[0, 1], torch.tensor([0.0, 0.0, 1.0], dtype=torch.float64)
    )
    with pytest.raises(ValueError, match="period must have one entry"):
        MatrixLieGroup(torch.tensor(AFF), period=(1.0,))
    with pytest.raises(ValueError, match="period entries"):
        MatrixLieGroup(torch.tensor(J), period=-1.0)
    with pytest.raises(ValueError, match="box entries must be finite pairs"):
        MatrixLieGroup(torch.tensor(AFF), box=((1.0, -1.0), None))
    with pytest.raises(ValueError, match="periodic coordinates must be None"):
        MatrixLieGroup(torch.tensor(J), period=1.0, box=((0.0, 1.0),))


def test_matrix_lie_group_value_semantics():
    G = so2_custom()
    assert G == MatrixLieGroup(J, period=(2 * math.pi,), name="SO2custom")  # nested lists, tuple period
    assert G != MatrixLieGroup(J, period=2 * math.pi, name="SO2other")
    assert pickle.loads(pickle.dumps(G)) == G and copy.deepcopy(G) == G
    assert hash(pickle.loads(pickle.dumps(G))) == hash(G)
    assert isinstance(G.generators, tuple) and isinstance(G.generators[0][0][0], float)
    with pytest.raises(AttributeError):
        G.period = None
    assert "SO2custom" in repr(G)


def test_matrix_lie_group_in_direct_product():
    G = DirectProduct(so2_custom(), affine())
    assert G.element_shape == (8,) and G.dimension == 3 and G.space_dim == 4
    X = torch.tensor([[0.5, 0.2, -0.3]], dtype=torch.float64)
    g = G.exp(X)
    torch.testing.assert_close(G.log(g), X)
    a, b = G.split(g)
    assert a.shape == (1, 2, 2) and b.shape == (1, 2, 2)


# -- the sympy route ----------------------------------------------------------------------------
def test_sympy_so2_matches_hand_written():
    t = sp.Symbol("theta")
    R = sp.Matrix([[sp.cos(t), -sp.sin(t)], [sp.sin(t), sp.cos(t)]])
    G = lie_group_from_sympy([t], R, period=2 * math.pi, name="SO2custom")
    assert isinstance(G, SymbolicLieGroup) and isinstance(G, MatrixLieGroup)
    assert G.generators == so2_custom().generators
    assert G.symbolic_generators() == [sp.Matrix([[0, -1], [1, 0]])]
    th = torch.tensor([[0.3], [-2.0]], dtype=torch.float64, requires_grad=True)
    P = G.parameterization(th)
    torch.testing.assert_close(P, G.exp(th))  # for SO(2) the parameterisation is exp
    P.sum().backward()
    assert th.grad is not None
    assert pickle.loads(pickle.dumps(G)) == G and copy.deepcopy(G) == G
    assert G.sympy_matrix() == sp.ImmutableMatrix(R)


def test_sympy_affine_matches_hand_written():
    a, b = sp.symbols("a b")
    G = SymbolicLieGroup.from_parameterization(
        [a, b], sp.Matrix([[sp.exp(a), b], [0, 1]]), box=((-1.0, 1.0), (-2.0, 2.0)), name="Aff1"
    )
    assert G.generators == affine().generators
    torch.testing.assert_close(G.structure_constants, affine().structure_constants)
    c = G.symbolic_structure_constants()
    assert c[0][1] == [0, 1] and c[1][0] == [0, -1]
    X = torch.tensor([[0.4, -1.2]], dtype=torch.float64)
    torch.testing.assert_close(G.exp(X), affine().exp(X))
    # the parameterisation g(a, b) is not exp: b enters directly
    torch.testing.assert_close(
        G.parameterization(X), torch.tensor([[[math.exp(0.4), -1.2], [0.0, 1.0]]], dtype=torch.float64)
    )


def test_sympy_so2_times_scaling():
    t, s = sp.symbols("theta s")
    R = sp.Matrix([[sp.cos(t), -sp.sin(t)], [sp.sin(t), sp.cos(t)]])
    G = lie_group_from_sympy([t, s], sp.exp(s) * R, period=(2 * math.pi, None), box=(None, (0.0, 2.0)))
    assert G.generators == (((0.0, -1.0), (1.0, 0.0)), ((1.0, 0.0), (0.0, 1.0)))
    assert not G.is_compact and G.embedding_dim == 3
    X = torch.tensor([[0.5, 1.5]], dtype=torch.float64)
    torch.testing.assert_close(G.exp(X), G.parameterization(X))
    torch.testing.assert_close(G.log(G.exp(X)), X)


def test_sympy_errors():
    t, s = sp.symbols("theta s")
    with pytest.raises(ValueError, match="identity at symbols = 0"):
        lie_group_from_sympy([t], sp.Matrix([[2 + t, 0], [0, 1]]))
    with pytest.raises(ValueError, match="linearly independent"):
        lie_group_from_sympy([t, s], sp.Matrix([[1, t + s], [0, 1]]))
    heisenberg_part = sp.Matrix([[1, t, 0], [0, 1, s], [0, 0, 1]])  # [E1, E2] = E13 missing
    with pytest.raises(ValueError, match="not closed under the Lie bracket"):
        lie_group_from_sympy([t, s], heisenberg_part)
    with pytest.raises(ValueError, match="not listed in symbols"):
        lie_group_from_sympy([t], sp.Matrix([[1, t + s], [0, 1]]))
    with pytest.raises(ValueError, match="square"):
        lie_group_from_sympy([t], sp.Matrix([[1, t, 0], [0, 1, 0]]))
    with pytest.raises(TypeError, match="sympy Matrix"):
        lie_group_from_sympy([t], [[1, t], [0, 1]])
    with pytest.raises(TypeError, match="Symbols"):
        lie_group_from_sympy(["t"], sp.Matrix([[1, t], [0, 1]]))


def test_check_group_on_custom_groups():
    checks = pytest.importorskip("groupconv.testing.checks")
    for G in (so2_custom(), affine()):
        report = checks.check_group(G, dtypes=(torch.float64,), devices=("cpu",), max_examples=5)
        assert report.passed
