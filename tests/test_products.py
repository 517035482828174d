"""Direct and semidirect products: axioms against independently built homogeneous matrices."""

from __future__ import annotations

import copy
import math
import pickle

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from groupconv.groups import (
    E2,
    O2,
    SE2,
    SE3,
    SO2,
    SO3,
    CyclicGroup,
    DirectProduct,
    MatrixLieGroup,
    Permutations,
    ScaleTranslation,
    Scaling,
    SemidirectProduct,
    Sim2,
    Translations,
)

seeds = st.integers(0, 2**31 - 1)


def tol(dtype: torch.dtype) -> float:
    return 2e-5 if dtype == torch.float32 else 1e-9


def rot2(theta: torch.Tensor) -> torch.Tensor:
    c, s = torch.cos(theta), torch.sin(theta)
    return torch.stack([torch.stack([c, -s], -1), torch.stack([s, c], -1)], -2)


def hat(w: torch.Tensor) -> torch.Tensor:
    z = torch.zeros_like(w[..., 0])
    x, y, q = w[..., 0], w[..., 1], w[..., 2]
    return torch.stack(
        [torch.stack([z, -q, y], -1), torch.stack([q, z, -x], -1), torch.stack([-y, x, z], -1)], -2
    )


def homogeneous(A: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
    d = t.shape[-1]
    out = torch.zeros(*t.shape[:-1], d + 1, d + 1, dtype=t.dtype, device=t.device)
    out[..., :d, :d] = A
    out[..., :d, d] = t
    out[..., d, d] = 1
    return out


# Independent references: element -> homogeneous matrix, algebra coords -> algebra matrix.
def ref_affine(name: str, g: torch.Tensor) -> torch.Tensor:
    if name == "SE2":
        return homogeneous(rot2(g[..., 2]), g[..., :2])
    if name == "E2":
        A = rot2(g[..., 2]) @ torch.diag_embed(torch.stack([torch.ones_like(g[..., 3]), g[..., 3]], -1))
        return homogeneous(A, g[..., :2])
    if name == "Sim2":
        return homogeneous(g[..., 3, None, None] * rot2(g[..., 2]), g[..., :2])
    if name == "SE3":
        return homogeneous(g[..., 3:].reshape(*g.shape[:-1], 3, 3), g[..., :3])
    if name == "ScaleTranslation":
        return homogeneous(g[..., 1, None, None], g[..., :1])
    raise KeyError(name)


def ref_algebra(name: str, X: torch.Tensor) -> torch.Tensor:
    if name in ("SE2", "E2"):
        z = torch.zeros_like(X[..., 0])
        A = torch.stack([torch.stack([z, -X[..., 2]], -1), torch.stack([X[..., 2], z], -1)], -2)
        return homogeneous(A, X[..., :2]) - homogeneous(torch.zeros_like(A), torch.zeros_like(X[..., :2]))
    if name == "Sim2":
        s, w = X[..., 3], X[..., 2]
        A = torch.stack([torch.stack([s, -w], -1), torch.stack([w, s], -1)], -2)
        return homogeneous(A, X[..., :2]) - homogeneous(torch.zeros_like(A), torch.zeros_like(X[..., :2]))
    if name == "SE3":
        A = hat(X[..., 3:])
        return homogeneous(A, X[..., :3]) - homogeneous(torch.zeros_like(A), torch.zeros_like(X[..., :3]))
    if name == "ScaleTranslation":
        A = X[..., 1, None, None]
        return homogeneous(A, X[..., :1]) - homogeneous(torch.zeros_like(A), torch.zeros_like(X[..., :1]))
    raise KeyError(name)


NAMED = {"SE2": SE2, "E2": E2, "Sim2": Sim2, "SE3": SE3, "ScaleTranslation": ScaleTranslation}


def _sample(G, n, seed, device, dtype):
    gen = torch.Generator(device=device).manual_seed(seed)
    return G.sample(n, generator=gen, device=device, dtype=dtype)


@pytest.mark.parametrize("name", list(NAMED))
@settings(max_examples=10)
@given(seed=seeds)
def test_named_axioms_against_homogeneous_matrices(name, seed, device, float_dtype):
    G = NAMED[name]()
    g, h, k = (_sample(G, 4, seed + i, device, float_dtype) for i in range(3))
    Mg, Mh = ref_affine(name, g), ref_affine(name, h)
    t = tol(float_dtype)
    torch.testing.assert_close(G.affine_matrix(g), Mg, atol=t, rtol=t)
    torch.testing.assert_close(ref_affine(name, G.product(g, h)), Mg @ Mh, atol=t * 10, rtol=t)
    torch.testing.assert_close(ref_affine(name, G.inverse(g)), torch.linalg.inv(Mg), atol=t * 10, rtol=t)
    e = G.identity((4,), device=device, dtype=float_dtype)
    torch.testing.assert_close(G.product(e, g), g, atol=t, rtol=t)
    lhs = ref_affine(name, G.product(G.product(g, h), k))
    torch.testing.assert_close(lhs, ref_affine(name, G.product(g, G.product(h, k))), atol=t * 20, rtol=t)
    # action: x -> A x + t, a homomorphism
    x = torch.randn(4, G.space_dim, generator=torch.Generator().manual_seed(seed), dtype=float_dtype)
    x = x.to(device)
    xh = torch.cat([x, torch.ones_like(x[..., :1])], -1)
    torch.testing.assert_close(G.act(g, x), (Mg @ xh[..., None])[..., :-1, 0], atol=t * 10, rtol=t)
    torch.testing.assert_close(G.act(G.product(g, h), x), G.act(g, G.act(h, x)), atol=t * 20, rtol=t)
    torch.testing.assert_close(G.det(g), torch.linalg.det(Mg), atol=t * 10, rtol=t)
    torch.testing.assert_close(G.matrix(g), Mg[..., :-1, :-1], atol=t, rtol=t)
    assert G.affine_matrix(g).device == g.device and G.affine_matrix(g).dtype == float_dtype


MAGNITUDES = [0.0, 1e-7, 1e-3, 1.0, math.pi - 1e-3]


@pytest.mark.parametrize("name", list(NAMED))
@settings(max_examples=10)
@given(seed=seeds)
def test_exp_is_matrix_exponential_and_log_inverts(name, seed, device, float_dtype):
    """One batch row per magnitude of the rotation/scale part: 0, 1e-7, 1e-3, 1, pi - 1e-3."""
    G = NAMED[name]()
    gen = torch.Generator().manual_seed(seed)
    mags = torch.tensor(MAGNITUDES, dtype=torch.float64)
    X = torch.randn(len(MAGNITUDES), G.algebra_dim, generator=gen, dtype=torch.float64)
    d = G.d
    w = X[..., d:]
    X[..., d:] = mags[:, None] * w / torch.linalg.vector_norm(w, dim=-1, keepdim=True).clamp_min(1e-12)
    if name == "Sim2":
        X[..., 2], X[..., 3] = mags, 0.3 * w[..., 1]
    X = X.to(device=device, dtype=float_dtype)
    g = G.exp(X)
    ref = torch.linalg.matrix_exp(ref_algebra(name, X.double()))
    t = tol(float_dtype)
    torch.testing.assert_close(G.affine_matrix(g).double(), ref, atol=t * 10, rtol=t * 10)
    back = G.log(g)
    near_pi = 5e-3 if float_dtype == torch.float32 else 1e-8
    torch.testing.assert_close(back[:-1], X[:-1], atol=t * 10, rtol=t * 10)
    torch.testing.assert_close(back[-1:], X[-1:], atol=near_pi, rtol=t * 10)
    torch.testing.assert_close(G.exp(back), g, atol=t * 10, rtol=t * 10)


def test_se2_conventions(device):
    G = SE2()
    g = torch.tensor([1.0, 2.0, math.pi / 2], device=device)
    assert G.act(g, torch.tensor([1.0, 0.0], device=device)).round().tolist() == [1.0, 3.0]
    t, h = G.split(g)
    assert t.tolist() == [1.0, 2.0] and h.shape == (1,)
    assert torch.equal(G.combine(t, h), g)
    assert G.element_shape == (3,) and G.dimension == 3 and G.space_dim == 2
    assert not G.is_compact and not G.is_finite and G.name == "SE2"
    assert G.translations == Translations(2) and G.H == SO2()
    # grid(int): the stabiliser grid at zero translation, identity first
    grid = G.grid(4, device=device)
    assert grid.shape == (4, 3) and torch.equal(grid[0], G.identity(device=device))
    assert torch.equal(grid[:, 2:], SO2().grid(4, device=device))
    full = G.grid((4, 8), device=device)
    assert full.shape == (32, 3)
    assert torch.equal(full[:8, :2], torch.zeros(8, 2, device=device))


def test_se3_element_layout_and_sample_membership():
    G = SE3()
    g = G.sample(6, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    t, R = G.split(g)
    assert t.shape == (6, 3) and R.shape == (6, 3, 3)
    assert (t.abs() <= 1.0).all()
    torch.testing.assert_close(R @ R.mT, torch.eye(3, dtype=torch.float64).expand(6, 3, 3))
    G.validate(g)
    assert G.embedding(g).shape == (6, G.embedding_dim)


def test_scale_translation_formulas():
    G = ScaleTranslation()
    g, h = torch.tensor([1.0, 2.0]), torch.tensor([3.0, 4.0])
    assert G.product(g, h).tolist() == [7.0, 8.0]
    assert G.inverse(g).tolist() == [-0.5, 0.5]
    assert G.act(g, torch.tensor([5.0])).tolist() == [11.0]
    assert G.det(g).item() == 2.0
    # exp(v, u) = ((e^u - 1)/u v, e^u)
    X = torch.tensor([0.5, 0.7], dtype=torch.float64)
    expected = torch.tensor([(math.exp(0.7) - 1) / 0.7 * 0.5, math.exp(0.7)], dtype=torch.float64)
    torch.testing.assert_close(G.exp(X), expected)


def test_sim2_h_is_commuting_product():
    G = Sim2()
    assert isinstance(G.H, DirectProduct) and G.H.action == "commuting"
    h = torch.tensor([0.3, 2.0])
    torch.testing.assert_close(G.H.matrix(h), 2.0 * rot2(torch.tensor(0.3)))
    assert G.det(torch.tensor([0.0, 0.0, 0.3, 2.0])).item() == pytest.approx(4.0)


def test_p4_semidirect_product_with_finite_group(device):
    G = SemidirectProduct(Translations(2), CyclicGroup(4))
    g = G.combine(torch.tensor([1.0, 0.0], device=device), torch.tensor([math.pi / 2], device=device))
    x = torch.tensor([0.0, 1.0], device=device)
    torch.testing.assert_close(G.act(g, x), torch.tensor([0.0, 0.0], device=device), atol=1e-6, rtol=0)
    gg = G.product(g, g)
    ref = ref_affine("SE2", g) @ ref_affine("SE2", g)
    torch.testing.assert_close(ref_affine("SE2", gg), ref, atol=1e-6, rtol=0)
    CyclicGroup(4).validate(G.split(gg)[1])
    with pytest.raises(TypeError, match="finite H"):
        G.exp(torch.zeros(3, device=device))
    with pytest.raises(TypeError, match="finite H"):
        G.log(g)
    assert G.distance(g, g).abs().max() < 1e-6
    assert G.grid(4, device=device).shape == (4, 3)


def test_semidirect_with_matrix_lie_group_matches_se2():
    so2 = MatrixLieGroup(torch.tensor([[[0.0, -1.0], [1.0, 0.0]]]), period=2 * math.pi)
    G = SemidirectProduct(Translations(2), so2)
    X = torch.tensor([[0.3, -0.2, 1.1], [1.0, 2.0, -2.5]], dtype=torch.float64)
    g, ref = G.exp(X), SE2().exp(X)
    torch.testing.assert_close(G.affine_matrix(g), SE2().affine_matrix(ref))
    torch.testing.assert_close(G.log(g), X)
    assert G.element_shape == (6,)


def test_semidirect_validation():
    with pytest.raises(ValueError, match="H must act on R\\^3"):
        SemidirectProduct(Translations(3), SO2())
    with pytest.raises(ValueError, match="translations must be a translation group"):
        SemidirectProduct(SO2(), SO2())
    with pytest.raises(TypeError, match="must be Groups"):
        SemidirectProduct(Translations(2), "SO2")
    with pytest.raises(ValueError, match="SE2 element"):
        SE2().product(torch.zeros(2), torch.zeros(3))


# -- direct products -----------------------------------------------------------------------------
@settings(max_examples=10)
@given(seed=seeds)
def test_direct_product_factorwise(seed, device, float_dtype):
    G = DirectProduct(SO2(), SO3(), Scaling(1))
    assert G.element_shape == (1 + 9 + 1,) and G.dimension == 5 and G.space_dim == 6
    g, h = _sample(G, 3, seed, device, float_dtype), _sample(G, 3, seed + 1, device, float_dtype)
    parts_g, parts_h = G.split(g), G.split(h)
    assert [p.shape for p in parts_g] == [(3, 1), (3, 3, 3), (3, 1)]
    torch.testing.assert_close(G.combine(*parts_g), g)
    t = tol(float_dtype)
    gh = G.split(G.product(g, h))
    for F, a, b, c in zip(G.factors, parts_g, parts_h, gh):
        torch.testing.assert_close(c, F.product(a, b), atol=t, rtol=t)
    blocks = [torch.block_diag(*[F.matrix(p[i]) for F, p in zip(G.factors, parts_g)]) for i in range(3)]
    torch.testing.assert_close(G.matrix(g), torch.stack(blocks), atol=t, rtol=t)
    torch.testing.assert_close(G.matrix(G.product(g, h)), G.matrix(g) @ G.matrix(h), atol=t * 10, rtol=t)
    x = torch.randn(3, 6, generator=torch.Generator().manual_seed(seed), dtype=float_dtype).to(device)
    torch.testing.assert_close(G.act(g, x), (G.matrix(g) @ x[..., None])[..., 0], atol=t * 10, rtol=t)
    torch.testing.assert_close(G.det(g), torch.linalg.det(G.matrix(g)), atol=t * 10, rtol=t)
    X = torch.randn(3, 5, generator=torch.Generator().manual_seed(seed), dtype=float_dtype).to(device)
    X[:, 0] = X[:, 0].clamp(-3, 3)
    X[:, 1:4] = X[:, 1:4] / torch.linalg.vector_norm(X[:, 1:4], dim=-1, keepdim=True) * 1.5
    torch.testing.assert_close(G.log(G.exp(X)), X, atol=t * 10, rtol=t * 10)
    assert G.embedding(g).shape == (3, G.embedding_dim) == (3, sum(F.embedding_dim for F in G.factors))
    assert not G.is_compact and not G.is_finite


def test_direct_product_compact_and_grid(device):
    G = DirectProduct(SO2(), O2())
    assert G.is_compact and not G.is_finite
    grid = G.grid((3, 4), device=device)
    assert grid.shape == (12, 3)
    torch.testing.assert_close(grid[0], G.identity(device=device))
    torch.testing.assert_close(grid[:4, 1:], O2().grid(4, device=device))  # first factor slowest
    assert G.grid(16, device=device).shape == (16, 3)  # balanced: 4 x 4
    with pytest.raises(ValueError, match="per-factor counts"):
        G.grid((2, 2, 2))


def test_direct_product_finite_elements_and_index(device):
    G = DirectProduct(CyclicGroup(4), CyclicGroup(2))
    assert G.is_finite and G.order == 8
    els = G.elements(device=device)
    assert els.shape == (8, 2)
    torch.testing.assert_close(els[0], G.identity(device=device))
    assert G.index(els).tolist() == list(range(8))
    prod = G.product(els[:, None], els[None, :])
    assert G.index(prod).shape == (8, 8)
    # Cayley table rows are permutations
    assert all(sorted(row) == list(range(8)) for row in G.index(prod).tolist())


def test_direct_product_long_factors():
    G = DirectProduct(Permutations(3), Permutations(2))
    assert G.element_dtype_kind == "long" and G.is_finite and G.order == 12
    els = G.elements()
    assert G.index(G.product(els, G.inverse(els))).tolist() == [0] * 12
    with pytest.raises(TypeError, match="element dtype kind"):
        DirectProduct(SO2(), Permutations(3))


def test_direct_product_validation_errors():
    with pytest.raises(ValueError, match="at least one"):
        DirectProduct()
    with pytest.raises(TypeError, match="factors\\[1\\] must be a groupconv.groups.Group"):
        DirectProduct(SO2(), 3)
    with pytest.raises(ValueError, match="action must be"):
        DirectProduct(SO2(), action="sideways")
    with pytest.raises(ValueError, match="same R\\^d"):
        DirectProduct(SO2(), SO3(), action="commuting")
    with pytest.raises(ValueError, match="combine needs 2"):
        DirectProduct(SO2(), SO2()).combine(torch.zeros(1))


@pytest.mark.parametrize(
    "G",
    [
        SE2(),
        E2(),
        Sim2(),
        SE3(),
        ScaleTranslation(),
        DirectProduct(SO2(), Scaling(2), action="commuting"),
        SemidirectProduct(Translations(2), CyclicGroup(4)),
    ],
    ids=repr,
)
def test_value_semantics(G):
    assert pickle.loads(pickle.dumps(G)) == G
    assert copy.deepcopy(G) == G
    assert hash(copy.deepcopy(G)) == hash(G)
    assert type(G)() == G if type(G) in NAMED.values() else True
    with pytest.raises(AttributeError):
        G.H = SO2()  # frozen


def test_equality_by_value():
    assert SE2() == SE2() and SE2() != E2()
    assert SE2(extent=2.0) != SE2()
    assert DirectProduct(SO2(), Scaling()) == DirectProduct([SO2(), Scaling()])
    assert DirectProduct(SO2(), Scaling()) != DirectProduct(SO2(), Scaling(), action="commuting")
    assert SemidirectProduct(Translations(2), SO2()) == SemidirectProduct(Translations(2), SO2())
    assert repr(SE2()) == "SE2()"
