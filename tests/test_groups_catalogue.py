"""Tests of the group catalogue: O2, D_n, SO3, the octahedral group, R^d, R^+ and S_n.

Group laws are checked against quantities computed independently of the parameterisation
(matrix products, the action on points); image and volume actions against ``torch.rot90`` /
``torch.flip``; exp/log round trips across magnitudes up to the cut locus.
"""

from __future__ import annotations

import copy
import itertools
import math
import pickle

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from groupconv.groups import (
    O2,
    SO3,
    DihedralGroup,
    Group,
    OctahedralGroup,
    Permutations,
    Scaling,
    Translations,
)

GROUPS = [
    O2(),
    DihedralGroup(3),
    DihedralGroup(4),
    SO3(),
    OctahedralGroup(),
    Translations(1),
    Translations(3, extent=2.0),
    Scaling(2),
    Scaling(3, log_range=(-1.0, 1.0)),
    Permutations(1),
    Permutations(4),
]
IDS = [repr(G) for G in GROUPS]
SEEDS = st.integers(0, 2**31 - 1)


def _eps(dtype: torch.dtype) -> float:
    return torch.finfo(dtype).eps


def _gen(device: torch.device, seed: int) -> torch.Generator:
    return torch.Generator(device=device).manual_seed(seed)


def _points(G: Group, batch: int, gen: torch.Generator, device, dtype) -> torch.Tensor:
    return torch.randn(batch, G.space_dim, generator=gen, device=device, dtype=dtype)


def _assert_same(G: Group, a: torch.Tensor, b: torch.Tensor, x: torch.Tensor, tol: float) -> None:
    """Elements are equal iff their matrices and their actions on points agree."""
    ma, mb = G.matrix(a).double(), G.matrix(b).double()
    assert torch.allclose(ma, mb, atol=tol, rtol=tol), (ma - mb).abs().max()
    xa, xb = G.act(a, x).double(), G.act(b, x).double()
    assert torch.allclose(xa, xb, atol=tol, rtol=tol), (xa - xb).abs().max()


# --------------------------------------------------------------------------- group axioms
@pytest.mark.parametrize("G", GROUPS, ids=IDS)
@settings(max_examples=8)
@given(seed=SEEDS)
def test_axioms_against_matrices_and_action(G: Group, seed: int, device, float_dtype) -> None:
    gen = _gen(device, seed)
    g, h, k = (G.sample(5, gen, device=device, dtype=float_dtype) for _ in range(3))
    x = _points(G, 5, gen, device, float_dtype)
    tol = 200 * _eps(float_dtype)
    e = G.identity((5,), device=device, dtype=float_dtype)
    gh = G.product(g, h)
    assert gh.shape == g.shape and gh.device.type == device.type
    if G.element_dtype_kind == "float":
        assert gh.dtype == float_dtype
    # the representation is a homomorphism, computed independently by matrix products
    mg, mh = G.matrix(g).double(), G.matrix(h).double()
    assert torch.allclose(G.matrix(gh).double(), mg @ mh, atol=tol)
    assert torch.allclose(G.matrix(e).double(), torch.eye(G.space_dim, dtype=torch.float64, device=device))
    assert torch.allclose(G.matrix(G.inverse(g)).double(), torch.linalg.inv(mg), atol=tol)
    assert torch.allclose(G.det(g).double(), torch.linalg.det(mg), atol=tol)
    # the action is a homomorphism
    assert torch.allclose(G.act(gh, x), G.act(g, G.act(h, x)), atol=tol * 10, rtol=tol)
    # axioms
    _assert_same(G, G.product(e, g), g, x, tol)
    _assert_same(G, G.product(g, e), g, x, tol)
    _assert_same(G, G.product(g, G.inverse(g)), e, x, tol)
    _assert_same(G, G.product(G.inverse(g), g), e, x, tol)
    _assert_same(G, G.product(gh, k), G.product(g, G.product(h, k)), x, 10 * tol)
    # samples are members, the identity is a member
    G.validate(g)
    G.validate(e)
    # embeddings have the declared length
    assert G.embedding(g).shape == (5, G.embedding_dim)


@pytest.mark.parametrize("G", GROUPS, ids=IDS)
def test_broadcasting_and_grid(G: Group, device, float_dtype) -> None:
    gen = _gen(device, 0)
    g = G.sample(2, gen, device=device, dtype=float_dtype).unsqueeze(1)  # (2, 1, *)
    h = G.sample(3, gen, device=device, dtype=float_dtype).unsqueeze(0)  # (1, 3, *)
    gh = G.product(g, h)
    assert gh.shape == (2, 3, *G.element_shape)
    ref = G.product(g.expand_as(gh), h.expand_as(gh))
    torch.testing.assert_close(gh, ref)  # broadcast vs materialised batch: may differ in the ulp
    assert G.matrix(gh).shape == (2, 3, G.space_dim, G.space_dim)
    assert G.det(gh).shape == (2, 3)
    assert G.identity((2, 3), device=device, dtype=float_dtype).shape == (2, 3, *G.element_shape)
    # grid: deterministic and identity first when the grid contains it
    n = G.order if G.is_finite else (3**G.space_dim if isinstance(G, Translations) else 4)
    grid = G.grid(n, device=device, dtype=float_dtype)
    assert grid.shape == (n, *G.element_shape)
    assert torch.equal(grid, G.grid(n, device=device, dtype=float_dtype))
    G.validate(grid)
    eye = torch.eye(G.space_dim, dtype=torch.float64, device=device)
    dist_to_e = (G.matrix(grid).double() - eye).abs().amax((-1, -2))
    if isinstance(G, Translations):
        dist_to_e = grid.abs().amax(-1).double()
    if bool((dist_to_e < 1e-6).any()):  # the grid contains the identity: it comes first
        assert float(dist_to_e[0]) < 1e-6


def _magnitudes(dtype: torch.dtype) -> list[float]:
    return [1e-7, 1e-5, 1e-3, 0.1, 1.0, 2.0, 3.0, math.pi - 1e-3, math.pi - 1e-4]


# --------------------------------------------------------------------------- exp / log
@settings(max_examples=10)
@given(seed=SEEDS)
def test_so3_exp_log_round_trips_up_to_cut_locus(seed: int, device, float_dtype) -> None:
    G = SO3()
    gen = _gen(device, seed)
    axis = torch.randn(1, 3, generator=gen, device=device, dtype=torch.float64)
    axis = axis / axis.norm(dim=-1, keepdim=True)
    mags = torch.tensor(_magnitudes(float_dtype), dtype=torch.float64, device=device)[:, None]
    w = (axis * mags).to(float_dtype)
    R = G.exp(w)
    G.validate(R)
    # independent check of exp: torch.linalg.matrix_exp of the skew matrix
    K = torch.zeros(len(mags), 3, 3, dtype=torch.float64, device=device)
    wd = w.double()
    K[:, 0, 1], K[:, 0, 2], K[:, 1, 2] = -wd[:, 2], wd[:, 1], -wd[:, 0]
    K = K - K.transpose(-1, -2)
    eps = _eps(float_dtype)
    assert torch.allclose(R.double(), torch.linalg.matrix_exp(K), atol=20 * eps)
    w2 = G.log(R)
    err = (w2 - w).norm(dim=-1) / w.norm(dim=-1)
    assert bool((err < 50 * eps).all()), err
    assert torch.allclose(G.exp(w2), R, atol=20 * eps)
    # Haar-random rotations: exp(log(R)) == R
    S = G.sample(16, gen, device=device, dtype=float_dtype)
    assert torch.allclose(G.exp(G.log(S)), S, atol=50 * eps)
    assert bool((G.log(S).norm(dim=-1) <= math.pi + 10 * eps).all())


def test_so3_log_at_exactly_pi_and_gradients(device, float_dtype) -> None:
    G = SO3()
    R = torch.diag(torch.tensor([1.0, -1.0, -1.0], dtype=float_dtype, device=device))
    w = G.log(R)
    assert math.isclose(float(w.norm()), math.pi, rel_tol=1e-6)
    assert torch.allclose(G.exp(w), R, atol=1e-5)
    # gradients are finite at the identity for exp and log
    X = torch.zeros(3, dtype=float_dtype, device=device, requires_grad=True)
    G.exp(X).sum().backward()
    assert bool(torch.isfinite(X.grad).all())
    I = torch.eye(3, dtype=float_dtype, device=device, requires_grad=True)
    G.log(I).sum().backward()
    assert bool(torch.isfinite(I.grad).all())
    # ... and at the cut locus (log is not differentiable there, but stays finite)
    Rpi = R.clone().requires_grad_(True)
    G.log(Rpi).sum().backward()
    assert bool(torch.isfinite(Rpi.grad).all())
    if float_dtype == torch.float64:
        w0 = torch.tensor([0.3, -0.2, 0.5], dtype=float_dtype, device=device, requires_grad=True)
        assert torch.autograd.gradcheck(G.exp, (w0,))
        assert torch.autograd.gradcheck(lambda v: G.log(G.exp(v)), (w0,))
        assert torch.autograd.gradcheck(lambda v: G.log(G.exp(v)), (w0 * 5,))  # near-pi branch


def test_o2_and_scaling_exp_log_round_trips(device, float_dtype) -> None:
    eps = _eps(float_dtype)
    mags = torch.tensor(_magnitudes(float_dtype), dtype=float_dtype, device=device)
    X = torch.cat([mags, -mags])[:, None]
    G = O2()
    g = G.exp(X)
    assert torch.equal(g[:, 1], torch.ones_like(g[:, 1]))
    assert torch.allclose(G.log(g), X, atol=4 * eps, rtol=4 * eps)
    s = G.sample(32, _gen(device, 1), device=device, dtype=float_dtype)
    rot = s.clone()
    rot[:, 1] = 1
    assert torch.allclose(G.exp(G.log(rot)), rot, atol=4 * eps)
    S = Scaling(2)
    Y = torch.cat([X, 10 * X])
    assert torch.allclose(S.log(S.exp(Y)), Y, atol=4 * eps, rtol=4 * eps)
    sc = S.sample(32, _gen(device, 2), device=device, dtype=float_dtype)
    assert torch.allclose(S.exp(S.log(sc)), sc, rtol=8 * eps)
    T = Translations(2)
    assert torch.equal(T.exp(T.log(sc.expand(32, 2))), sc.expand(32, 2))


def test_finite_subgroup_exp_log(device) -> None:
    D4 = DihedralGroup(4)
    E = D4.elements(device=device)
    assert torch.allclose(D4.exp(D4.log(E[:4])), E[:4], atol=1e-6)
    with pytest.raises(ValueError, match="multiples of 2\\*pi/4"):
        D4.exp(torch.tensor([[0.3]], device=device))
    O = OctahedralGroup()
    E = O.elements(device=device, dtype=torch.float64)
    assert torch.equal(O.exp(O.log(E)), E)  # exact (rounded) matrices
    with pytest.raises(ValueError, match="octahedral"):
        O.exp(torch.tensor([0.3, 0.0, 0.0], device=device))


# --------------------------------------------------------------------------- Haar statistics
def test_haar_statistics(device) -> None:
    gen = _gen(device, 1234)
    n = 4000
    R = SO3().sample(n, gen, device=device, dtype=torch.float64)
    assert R.mean(0).abs().max() < 0.05  # E[R] = 0 under Haar
    assert (R.pow(2).mean(0) - 1 / 3).abs().max() < 0.05  # E[R_ij^2] = 1/3
    grid = SO3().grid(512, device=device, dtype=torch.float64)
    assert grid.mean(0).abs().max() < 0.02  # near-uniform deterministic grid
    d = SO3().distance(grid[:, None], grid[None]) + 10 * torch.eye(512, dtype=torch.float64, device=device)
    assert d.min() > 0.1  # well spread: no near-duplicates
    g = O2().sample(n, gen, device=device, dtype=torch.float64)
    emb = O2().embedding(g)
    assert emb.mean(0).abs().max() < 0.05  # E[cos] = E[sin] = E[m] = 0
    assert (emb[:, :2].pow(2).mean(0) - 0.5).abs().max() < 0.05
    P = Permutations(3).sample(6000, gen, device=device)
    counts = torch.bincount(Permutations(3).index(P), minlength=6)
    assert (counts - 1000).abs().max() < 150
    counts = torch.bincount(OctahedralGroup().index(OctahedralGroup().sample(2400, gen, device=device)))
    assert counts.numel() == 24 and (counts - 100).abs().max() < 50
    s = Scaling(2, log_range=(0.0, 2.0)).sample(n, gen, device=device, dtype=torch.float64)
    assert abs(float(s.log().mean()) - 1.0) < 0.05 and float(s.min()) >= 1.0 and float(s.max()) <= math.e**2


# --------------------------------------------------------------------------- finite groups
FINITE = [DihedralGroup(1), DihedralGroup(3), DihedralGroup(4), OctahedralGroup(), Permutations(1),
          Permutations(3), Permutations(4)]


@pytest.mark.parametrize("G", FINITE, ids=[repr(G) for G in FINITE])
def test_finite_group_closure_and_index(G: Group, device, float_dtype) -> None:
    E = G.elements(device=device, dtype=float_dtype)
    N = G.order
    assert E.shape == (N, *G.element_shape)
    assert torch.equal(G.index(E), torch.arange(N, device=device))
    x = torch.arange(1.0, G.space_dim + 1, dtype=float_dtype, device=device)
    _assert_same(G, E[0], G.identity(device=device, dtype=float_dtype), x, 1e-6)
    table = G.index(G.product(E[:, None], E[None, :]))  # (N, N) Cayley table
    ref = torch.arange(N, device=device)
    assert torch.equal(table.sort(dim=1).values, ref.expand(N, N))  # Latin square: closure
    assert torch.equal(table.sort(dim=0).values, ref[:, None].expand(N, N))
    inv = G.index(G.inverse(E))
    assert torch.equal(table[ref, inv], torch.zeros_like(ref))
    # distinct elements act differently (faithful matrices)
    M = G.matrix(E).double().flatten(1)
    if G.space_dim > 1:
        assert torch.cdist(M, M).add(torch.eye(N, dtype=torch.float64, device=device)).min() > 0.5


def test_dihedral_element_order_and_grid(device) -> None:
    D3 = DihedralGroup(3)
    E = D3.elements(device=device, dtype=torch.float64)
    ang = [0.0, 2 * math.pi / 3, -2 * math.pi / 3]
    ref = torch.tensor([[a, 1.0] for a in ang] + [[a, -1.0] for a in ang], dtype=torch.float64)
    assert torch.allclose(E.cpu(), ref)
    assert torch.equal(DihedralGroup(4).grid(8), DihedralGroup(4).elements())
    assert torch.equal(DihedralGroup(4).grid(4), DihedralGroup(2).elements())
    assert torch.allclose(O2().grid(8), DihedralGroup(4).elements())


def test_permutations_specifics(device) -> None:
    S4 = Permutations(4)
    E = S4.elements(device=device)
    assert E.tolist() == [list(p) for p in itertools.permutations(range(4))]  # lexicographic
    g = E[[5, 17, 9]]
    x = torch.randn(3, 4, device=device, dtype=torch.float64)
    # act: the value at position i moves to position g[i] (explicit loop)
    ref = torch.empty_like(x)
    for b in range(3):
        for i in range(4):
            ref[b, g[b, i]] = x[b, i]
    assert torch.equal(S4.act(g, x), ref)
    assert torch.allclose(S4.matrix(g).double() @ x[..., None], ref[..., None])
    # composition (g h)[i] = g[h[i]]
    h = E[[1, 2, 3]]
    gh = S4.product(g, h)
    assert gh.tolist() == [[g[b, h[b, i]].item() for i in range(4)] for b in range(3)]
    assert S4.det(E).tolist() == torch.linalg.det(S4.matrix(E).double()).round().tolist()
    assert S4.distance(g, g).tolist() == [0.0] * 3 and S4.distance(g, h).tolist() == [1.0] * 3
    assert S4.identity(dtype=torch.float32).dtype == torch.long  # dtype is ignored
    assert S4.grid(2).tolist() == [[0, 1, 2, 3], [2, 3, 0, 1]]
    for fn in (S4.exp, S4.log, S4.normalized_log):
        with pytest.raises(TypeError, match="no Lie algebra"):
            fn(g)
    with pytest.raises(ValueError, match="n <= 8"):
        Permutations(9).elements()
    big = Permutations(12)
    assert big.index(torch.arange(11, -1, -1, device=device)).item() == math.factorial(12) - 1


def test_translations_and_scaling_grids(device, float_dtype) -> None:
    T = Translations(2, extent=2.0)
    grid = T.grid(9, device=device, dtype=float_dtype)
    assert grid.tolist() == [[a, b] for a in (0.0, 2.0, -2.0) for b in (0.0, 2.0, -2.0)]
    assert torch.equal(T.normalized_log(grid), grid / 2)
    assert T.sample(100, _gen(device, 0), device=device, dtype=float_dtype).abs().max() <= 2.0
    S = Scaling(2)
    assert torch.allclose(S.grid(4, device=device, dtype=float_dtype).squeeze(-1).double().cpu(),
                          torch.tensor([1.0, 2.0, 4.0, 8.0], dtype=torch.float64))
    nl = S.normalized_log(torch.tensor([[1.0], [8.0]], dtype=float_dtype, device=device))
    assert torch.allclose(nl.squeeze(-1).cpu(), torch.tensor([-1.0, 1.0], dtype=float_dtype))
    s = torch.tensor([[2.0]], dtype=float_dtype, device=device)
    assert torch.allclose(S.act(s, torch.ones(1, 2, dtype=float_dtype, device=device)),
                          2 * torch.ones(1, 2, dtype=float_dtype, device=device))


# --------------------------------------------------------------------------- actions on images
def _transform_index_image(G: Group, g: torch.Tensor, shape: tuple[int, ...]) -> torch.Tensor:
    """``(g . f)(p) = f(g^-1 p)`` on a centred integer grid, as an index gather."""
    idx = torch.arange(math.prod(shape), dtype=torch.float64).reshape(shape)
    coords = torch.stack(torch.meshgrid(*[torch.arange(s, dtype=torch.float64) for s in shape],
                                        indexing="ij"), -1)
    centre = torch.tensor([(s - 1) / 2 for s in shape], dtype=torch.float64)
    src = G.act(G.inverse(g.double()), (coords - centre)) + centre
    assert torch.allclose(src, src.round(), atol=1e-9)  # exact on the grid
    src = src.round().long()
    return idx[tuple(src.unbind(-1))]


@pytest.mark.parametrize("size", [4, 5])
def test_o2_dihedral_act_on_images_as_rot90_and_flip(size: int) -> None:
    idx = torch.arange(size * size, dtype=torch.float64).reshape(size, size)
    G = O2()
    out = _transform_index_image(G, torch.tensor([math.pi / 2, 1.0], dtype=torch.float64), (size, size))
    assert torch.equal(out, torch.rot90(idx, 1, dims=(-2, -1)))
    out = _transform_index_image(G, torch.tensor([0.0, -1.0], dtype=torch.float64), (size, size))
    assert torch.equal(out, torch.flip(idx, dims=(-1,)))
    D4 = DihedralGroup(4)
    for i, g in enumerate(D4.elements(dtype=torch.float64)):
        k, mirrored = i % 4, i >= 4
        ref = torch.rot90(torch.flip(idx, dims=(-1,)) if mirrored else idx, k, dims=(-2, -1))
        assert torch.equal(_transform_index_image(D4, g, (size, size)), ref), i


def test_octahedral_acts_on_voxels_as_rot90() -> None:
    O = OctahedralGroup()
    shape = (3, 4, 5)
    vol = torch.arange(60, dtype=torch.float64).reshape(shape)
    cube = (3, 3, 3)
    for g in O.elements(dtype=torch.float64):
        out = _transform_index_image(O, g, cube)  # every element permutes the voxels of a cube
        assert torch.equal(out.flatten().sort().values, torch.arange(27, dtype=torch.float64))
    for a, b in [(0, 1), (1, 2), (0, 2)]:
        M = torch.eye(3, dtype=torch.float64)
        M[a, a] = M[b, b] = 0.0
        M[a, b], M[b, a] = -1.0, 1.0
        O.validate(M)
        assert torch.equal(_transform_index_image(O, M, shape[:0] + (4, 4, 4)),
                           torch.rot90(torch.arange(64.0, dtype=torch.float64).reshape(4, 4, 4), 1,
                                       dims=(a, b)))
    assert vol.shape == shape


# --------------------------------------------------------------------------- value objects
@pytest.mark.parametrize("G", GROUPS, ids=IDS)
def test_value_semantics(G: Group) -> None:
    assert pickle.loads(pickle.dumps(G)) == G
    assert copy.deepcopy(G) == G and hash(copy.deepcopy(G)) == hash(G)
    with pytest.raises(AttributeError):
        G.name = "other"  # type: ignore[misc]
    assert repr(G).startswith(type(G).__name__)


def test_inequality() -> None:
    assert DihedralGroup(3) != DihedralGroup(4)
    assert SO3() != OctahedralGroup()
    assert Translations(2) != Translations(2, extent=2.0)
    assert Scaling(2) != Scaling(3)
    assert Permutations(3) == Permutations(3) and Permutations(3) != Permutations(4)


def test_o2_distance() -> None:
    G = O2()
    a, b = torch.tensor([0.3, 1.0]), torch.tensor([0.3, -1.0])
    assert math.isclose(float(G.distance(a, b)), math.pi, rel_tol=1e-6)
    assert math.isclose(float(G.distance(a, torch.tensor([0.5, 1.0]))), 0.2, rel_tol=1e-5)
    gen = torch.Generator().manual_seed(0)
    g, h, k = (G.sample(50, gen) for _ in range(3))
    assert torch.allclose(G.distance(G.product(k, g), G.product(k, h)), G.distance(g, h), atol=1e-5)
    assert bool((G.distance(g, h) <= G.distance(g, k) + G.distance(k, h) + 1e-5).all())


# --------------------------------------------------------------------------- errors
@pytest.mark.parametrize(
    "make, exc, match",
    [
        (lambda: DihedralGroup(0), ValueError, "n must be a positive int"),
        (lambda: DihedralGroup(2.5), TypeError, "n must be a positive int"),
        (lambda: Translations(0), ValueError, "d must be a positive int"),
        (lambda: Translations(2, extent=-1.0), ValueError, "extent must be a finite number > 0, got -1.0"),
        (lambda: Scaling(2, log_range=(1.0, 0.0)), ValueError, "lo < hi"),
        (lambda: Scaling(2, log_range=(0.0,)), TypeError, "log_range"),
        (lambda: Permutations(-1), ValueError, "n must be a positive int"),
        (lambda: O2().validate(torch.tensor([0.1, 0.5])), ValueError, "mirror bit"),
        (lambda: O2().product(torch.zeros(3), torch.zeros(2)), ValueError, r"\(\*batch, 2\)"),
        (lambda: O2().validate(torch.tensor([float("nan"), 1.0])), ValueError, "finite"),
        (lambda: O2().grid(3), ValueError, "even"),
        (lambda: DihedralGroup(4).validate(torch.tensor([0.3, 1.0])), ValueError, "multiples"),
        (lambda: DihedralGroup(4).grid(6), ValueError, "divisor"),
        (lambda: SO3().validate(2 * torch.eye(3)), ValueError, "rotation matrices"),
        (lambda: SO3().validate(-torch.eye(3)), ValueError, "det"),
        (lambda: SO3().exp(torch.zeros(2)), ValueError, r"\(\*batch, 3\)"),
        (lambda: SO3().log(torch.eye(2)), ValueError, r"\(\*batch, 3, 3\)"),
        (lambda: OctahedralGroup().validate(SO3().exp(torch.tensor([0.2, 0.0, 0.0]))), ValueError,
         "octahedral"),
        (lambda: OctahedralGroup().grid(5), ValueError, "24"),
        (lambda: Scaling(2).validate(torch.tensor([-1.0])), ValueError, "positive scales"),
        (lambda: Translations(2).grid(5), ValueError, "perfect"),
        (lambda: Translations(2).act(torch.zeros(2), torch.zeros(3)), ValueError, "x must have shape"),
        (lambda: Permutations(3).validate(torch.tensor([0, 0, 1])), ValueError, "permutations"),
        (lambda: Permutations(3).product(torch.zeros(3), torch.zeros(3)), TypeError, "torch.long"),
        (lambda: Permutations(4).grid(5), ValueError, "divide"),
        (lambda: SO3().sample(0), ValueError, "n must be a positive int"),
    ],
)
def test_bad_input_errors(make, exc, match) -> None:
    with pytest.raises(exc, match=match):
        make()
