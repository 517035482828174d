"""Lifting and group convolutions: exact equivariance against independent transforms.

Every reference transform here is written with torch.rot90 / torch.flip / torch.roll and
integer matrices, never with the layer's own machinery.
"""

from __future__ import annotations

import copy
import math
import pickle
import warnings
from dataclasses import dataclass

import numpy as np
import pytest
import torch
from _helpers import EXACT_TOL as TOL
from _helpers import rel_err, rot, rot_map
from torch import nn

import groupconv.nn.group.gconv_weights as gconv_mod  # the kernel branches patched below
from groupconv.groups import SO2, CyclicGroup, DihedralGroup, OctahedralGroup
from groupconv.groups.base import Group
from groupconv.nn.group.gconv import GroupConv, LiftingConv
from groupconv.nn.group.pooling import GlobalInvariantPool, GroupBatchNorm
from groupconv.sampling import StratifiedSampler
from groupconv.sampling.samplers import Sampler


# -- C4 / SO2-grid (rotations) -------------------------------------------------------------------
@pytest.mark.parametrize("size", [7, 8])
@pytest.mark.parametrize("group,kw,n", [(CyclicGroup(4), {}, 4), (SO2(), {"num_elements": 8}, 8)],
                         ids=["C4", "SO2-8"])
def test_rotation_equivariance_exact(group, kw, n, size, device, float_dtype):
    torch.manual_seed(0)
    fk = {"device": device, "dtype": float_dtype}
    lift = LiftingConv(2, 3, group, 5, padding="same", **kw, **fk)
    gc = GroupConv(3, 2, group, 3, padding=1, **kw, **fk)
    x = torch.randn(2, 2, size, size, **fk)
    y = gc(lift(x))
    assert y.shape == (2, 2, n, size, size)
    for k in (1, 2, 3):
        assert rel_err(gc(lift(rot(x, k))), rot_map(y, k, n)) <= TOL[float_dtype]
        h = torch.randn(1, 3, n, size, size, **fk)
        assert rel_err(gc(rot_map(h, k, n)), rot_map(gc(h), k, n)) <= TOL[float_dtype]


def test_valid_padding_and_c8_to_c4(device):
    torch.manual_seed(1)
    lift = LiftingConv(1, 2, CyclicGroup(8), 3, device=device)
    gc = GroupConv(2, 2, CyclicGroup(8), 3, num_elements=4, in_num_elements=8, device=device)
    assert gc.in_num_elements == 8 and gc.num_elements == 4
    x = torch.randn(1, 1, 10, 10, device=device)
    y = gc(lift(x))
    assert y.shape == (1, 2, 4, 6, 6)
    assert rel_err(gc(lift(rot(x, 1))), rot_map(y, 1, 4)) <= 1e-5


# -- D4: mirrors, constructed from integer matrices ---------------------------------------------
R90 = np.array([[0, -1], [1, 0]])


def d4_matrix(k: int, m: int) -> np.ndarray:
    return np.linalg.matrix_power(R90, k) @ np.diag([1, m])


D4_LIST = [(k, 1) for k in range(4)] + [(k, -1) for k in range(4)]  # the documented order


def d4_image(x: torch.Tensor, k: int, m: int) -> torch.Tensor:
    return rot(torch.flip(x, dims=(-1,)) if m == -1 else x, k)


def d4_map(y: torch.Tensor, k: int, m: int) -> torch.Tensor:
    g_inv = np.round(np.linalg.inv(d4_matrix(k, m))).astype(int)
    mats = [d4_matrix(*e) for e in D4_LIST]
    perm = [next(j for j, mj in enumerate(mats) if (mj == g_inv @ mi).all()) for mi in mats]
    return d4_image(y[:, :, perm], k, m)


def test_d4_matrices_match_group():
    D4 = DihedralGroup(4)
    ours = torch.tensor(np.stack([d4_matrix(*e) for e in D4_LIST]), dtype=torch.float64)
    assert torch.allclose(D4.matrix(D4.elements(dtype=torch.float64)), ours, atol=1e-9)


@pytest.mark.parametrize("size", [6, 7])
def test_d4_equivariance_exact(size, device, float_dtype):
    torch.manual_seed(2)
    fk = {"device": device, "dtype": float_dtype}
    D4 = DihedralGroup(4)
    lift = LiftingConv(2, 3, D4, 3, padding=1, **fk)
    gc = GroupConv(3, 2, D4, 3, **fk)
    x = torch.randn(2, 2, size, size, **fk)
    y = gc(lift(x))
    for k, m in D4_LIST[1:]:
        assert rel_err(gc(lift(d4_image(x, k, m))), d4_map(y, k, m)) <= TOL[float_dtype]


# -- custom groups ------------------------------------------------------------------------------
def test_matrix_lie_group_matches_c4(device):
    pytest.importorskip("groupconv.groups.matrix")
    from groupconv.groups.matrix import MatrixLieGroup

    G = MatrixLieGroup(torch.tensor([[[0.0, -1.0], [1.0, 0.0]]]), period=2 * math.pi)
    torch.manual_seed(3)
    lift_m = LiftingConv(2, 3, G, 3, num_elements=4, padding=1, device=device)
    gc_m = GroupConv(3, 2, G, 3, num_elements=4, padding=1, device=device)
    lift_c = LiftingConv(2, 3, CyclicGroup(4), 3, padding=1, device=device)
    gc_c = GroupConv(3, 2, CyclicGroup(4), 3, padding=1, device=device)
    lift_c.load_state_dict(lift_m.state_dict())
    gc_c.load_state_dict(gc_m.state_dict())
    x = torch.randn(1, 2, 7, 7, device=device)
    y = gc_m(lift_m(x))
    assert rel_err(y, gc_c(lift_c(x))) <= 1e-6
    assert rel_err(gc_m(lift_m(rot(x, 1))), rot_map(y, 1, 4)) <= 1e-5


@dataclass(frozen=True)
class Reflection1D(Group):
    """Z2 acting on R^1 by x -> -x; elements +-1 as (…, 1) floats (a user-defined group)."""

    name = "Reflection1D"
    dimension = 0
    element_shape = (1,)
    is_compact = True
    is_finite = True
    space_dim = 1
    order = 2

    def identity(self, batch_shape=(), device=None, dtype=None):
        return torch.ones(*batch_shape, 1, device=device, dtype=dtype)

    def product(self, g, h):
        return g * h

    def inverse(self, g):
        return g

    def exp(self, X):
        return torch.ones_like(X)

    def log(self, g):
        return torch.zeros_like(g)

    def matrix(self, g):
        return g.unsqueeze(-1)

    def sample(self, n, generator=None, device=None, dtype=None):
        return self.elements(device, dtype)[torch.randint(2, (n,), generator=generator)]

    def grid(self, n, device=None, dtype=None):
        return self.elements(device, dtype)[:n]

    def elements(self, device=None, dtype=None):
        return torch.tensor([[1.0], [-1.0]], device=device, dtype=dtype)

    def index(self, g):
        return (g[..., 0] < 0).long()

    def embedding(self, g):
        return g


def test_custom_1d_group_lifting_and_group_conv(device, float_dtype):
    torch.manual_seed(4)
    fk = {"device": device, "dtype": float_dtype}
    G = Reflection1D()
    lift = LiftingConv(2, 3, G, 5, padding="same", **fk)
    gc = GroupConv(3, 2, G, 3, **fk)
    x = torch.randn(2, 2, 11, **fk)
    y = gc(lift(x))
    assert y.shape == (2, 2, 2, 9)
    flipped = gc(lift(torch.flip(x, dims=(-1,))))
    assert rel_err(flipped, torch.flip(y, dims=(-1, 2))) <= TOL[float_dtype]


# -- 3-D: the cube group ------------------------------------------------------------------------
def test_octahedral_3d_lifting_and_group_conv(device):
    torch.manual_seed(5)
    O = OctahedralGroup()
    lift = LiftingConv(1, 2, O, 3, padding=1, device=device, dtype=torch.float64)
    gc = GroupConv(2, 1, O, 3, device=device, dtype=torch.float64)
    x = torch.randn(1, 1, 5, 5, 5, device=device, dtype=torch.float64)
    h = lift(x)
    y = gc(h)
    assert h.shape == (1, 2, 24, 5, 5, 5) and y.shape == (1, 1, 24, 3, 3, 3)
    mats = O.matrix(O.elements(dtype=torch.float64)).round()
    # rot90 over (h, w) and over (d, h): their matrices on (d, h, w) points
    cases = [((-2, -1), [[1, 0, 0], [0, 0, -1], [0, 1, 0]]), ((-3, -2), [[0, -1, 0], [1, 0, 0], [0, 0, 1]])]
    for dims, g in cases:
        g_inv = torch.tensor(g, dtype=torch.float64).T
        perm = [int(((mats - g_inv @ mi).abs().sum((-2, -1)) < 1e-6).nonzero()) for mi in mats]
        for out, ref_in in ((lift(torch.rot90(x, 1, dims)), h), (gc(torch.rot90(h, 1, dims)[:, :, perm]), y)):
            assert rel_err(out, torch.rot90(ref_in, 1, dims)[:, :, perm]) <= 1e-10


# -- continuous kernels -------------------------------------------------------------------------
@pytest.mark.parametrize("kernel_net", ["siren", "mlp", "module"])
def test_continuous_kernels_equivariant_on_8_grid(kernel_net, device, float_dtype):
    torch.manual_seed(6)
    fk = {"device": device, "dtype": float_dtype}
    if kernel_net == "module":
        net_l = nn.Sequential(nn.Linear(2, 16), nn.Tanh(), nn.Linear(16, 6)).to(**fk)
        net_g = nn.Sequential(nn.Linear(4, 16), nn.Tanh(), nn.Linear(16, 6)).to(**fk)
    else:
        net_l = net_g = kernel_net
    lift = LiftingConv(2, 3, SO2(), 5, num_elements=8, padding=2, kernel_net=net_l, **fk)
    gc = GroupConv(3, 2, SO2(), 3, num_elements=8, padding=1, kernel_net=net_g, mask="smooth", **fk)
    x = torch.randn(1, 2, 8, 8, **fk)
    y = gc(lift(x))
    assert y.shape == (1, 2, 8, 8, 8)
    for k in (1, 2):
        assert rel_err(gc(lift(rot(x, k))), rot_map(y, k, 8)) <= TOL[float_dtype]


def test_continuous_kernel_activation_scale_and_scaling_group():
    torch.manual_seed(7)
    lift = LiftingConv(4, 8, SO2(), 5, num_elements=8, padding=2, kernel_net="siren")
    gc = GroupConv(8, 8, SO2(), 5, num_elements=8, padding=2, kernel_net="siren")
    y = gc(lift(torch.randn(4, 4, 16, 16)))
    assert 0.1 < float(y.detach().std()) < 10.0
    pytest.importorskip("groupconv.groups.euclidean")
    from groupconv.groups import Scaling

    S = Scaling(d=2)
    gs = GroupConv(2, 2, S, 5, num_elements=4, padding=2, kernel_net="mlp", group_support=1.0)
    assert gs(torch.randn(1, 2, 4, 9, 9)).shape == (1, 2, 4, 9, 9)
    with pytest.raises(ValueError, match="kernel_net"):  # scale grid not closed: discrete undefined
        GroupConv(2, 2, S, 5, num_elements=4)


def test_random_grid_training_and_eval(device):
    from groupconv.sampling import StratifiedSampler

    torch.manual_seed(8)
    kw = {"num_elements": 8, "sampler": StratifiedSampler(), "kernel_net": "siren", "device": device}
    lift = LiftingConv(1, 2, SO2(), 3, padding=1, **kw)
    gc = GroupConv(2, 2, SO2(), 3, padding=1, **kw)
    x = torch.randn(1, 1, 6, 6, device=device)

    def run(inp, seed):
        gen = torch.Generator().manual_seed(seed)
        h, grid = lift.forward_with_grid(inp, generator=gen)
        return gc(h, in_grid=grid, generator=gen), grid

    y, grid = run(x, 0)
    assert not torch.allclose(grid.cpu(), SO2().grid(8, dtype=grid.dtype))
    assert rel_err(run(rot(x, 1), 0)[0], rot_map(y, 1, 8)) <= 1e-5  # same offset: exact
    assert not torch.allclose(run(x, 1)[0], y)  # a new offset per draw
    lift.eval()
    gc.eval()
    ye = gc(lift(x))
    assert torch.allclose(lift.out_grid, SO2().grid(8, device=device, dtype=lift.out_grid.dtype))
    assert rel_err(gc(lift(rot(x, 1))), rot_map(ye, 1, 8)) <= 1e-5
    with pytest.raises(ValueError, match="kernel_net"):
        LiftingConv(1, 2, SO2(), 3, num_elements=8, sampler=StratifiedSampler())


# -- the test can fail --------------------------------------------------------------------------
def test_broken_spatial_transform_is_detected(monkeypatch):
    real = gconv_mod.spatial_sampling

    def skip_rotation(group, grid, kernel_size, radius=None):
        return real(group, group.identity((grid.shape[0],), dtype=grid.dtype), kernel_size, radius)

    monkeypatch.setattr(gconv_mod, "spatial_sampling", skip_rotation)
    torch.manual_seed(9)
    lift = LiftingConv(1, 2, CyclicGroup(4), 3)
    x = torch.randn(1, 1, 7, 7)
    assert rel_err(lift(rot(x, 1)), rot_map(lift(x), 1, 4)) > 1e-2


# -- stacks, shapes, strides --------------------------------------------------------------------
def test_stack_is_invariant(float_dtype):
    torch.manual_seed(10)
    G = CyclicGroup(4)
    net = nn.Sequential(
        LiftingConv(1, 4, G, 3, padding=1), GroupBatchNorm(4), nn.ReLU(),
        GroupConv(4, 4, G, 3, padding=1), nn.ReLU(), GroupConv(4, 3, G, 3), GlobalInvariantPool(),
    ).to(float_dtype)
    net.train()
    x = torch.randn(3, 1, 9, 9, dtype=float_dtype)
    out = net(x)
    assert out.shape == (3, 3)
    for k in (1, 2, 3):
        assert rel_err(net(rot(x, k)), out) <= TOL[float_dtype]


@pytest.mark.parametrize("d,group", [(1, Reflection1D()), (2, CyclicGroup(4)), (3, OctahedralGroup())])
def test_padding_shapes(d, group):
    x = torch.randn(2, 1, *(7,) * d)
    assert LiftingConv(1, 2, group, 3, padding="same")(x).shape == (2, 2, group.order, *(7,) * d)
    y = LiftingConv(1, 2, group, 3, padding="valid")(x)
    assert y.shape == (2, 2, group.order, *(5,) * d)
    z = GroupConv(2, 1, group, 3, padding=1, stride=2, dilation=1)(y)
    assert z.shape == (2, 1, group.order, *(3,) * d)
    assert GroupConv(2, 1, group, 3, padding="same", dilation=2)(y).shape == (2, 1, group.order, *(5,) * d)


def test_stride_warns_once_when_not_symmetric():
    layer = LiftingConv(1, 1, CyclicGroup(4), 3, stride=2)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        layer(torch.randn(1, 1, 7, 7))  # (7 - 3) % 2 == 0: fine
    with pytest.warns(UserWarning, match="stride"):
        layer(torch.randn(1, 1, 8, 8))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        layer(torch.randn(1, 1, 8, 8))  # once


# -- eval cache, export, serialisation ----------------------------------------------------------
def _sd_equal(a: dict, b: dict) -> bool:
    return a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


@pytest.mark.parametrize("kernel_net", [None, "siren"])
def test_eval_cache_and_invalidation(kernel_net):
    torch.manual_seed(11)
    layer = GroupConv(2, 2, CyclicGroup(4), 3, padding=1, kernel_net=kernel_net)
    x = torch.randn(1, 2, 4, 5, 5)
    sd_train = layer.state_dict()
    layer.eval()
    assert _sd_equal(sd_train, layer.state_dict())
    with torch.no_grad():
        y1 = layer(x)
        cache = layer._kernel_cache
        assert cache is not None and layer(x) is not None and layer._kernel_cache is cache
    assert "_kernel_cache" not in layer.state_dict()
    assert _sd_equal(sd_train, layer.state_dict())
    opt = torch.optim.SGD(layer.parameters(), lr=0.5)
    layer(x).square().sum().backward()  # eval mode with grads: no cache, gradients flow
    opt.step()
    with torch.no_grad():
        y2 = layer(x)
    fresh = copy.deepcopy(layer)
    fresh._kernel_cache = None
    fresh.train()
    assert not torch.allclose(y1, y2)
    assert torch.allclose(y2, fresh(x).detach(), atol=1e-6)
    layer.train()
    assert layer._kernel_cache is None


@pytest.mark.parametrize("which", ["lift2d", "group2d", "group3d", "so2"])
def test_export_matches(which):
    torch.manual_seed(12)
    if which == "lift2d":
        layer, x = LiftingConv(2, 3, DihedralGroup(4), 3, padding="same"), torch.randn(2, 2, 6, 6)
    elif which == "group2d":
        layer, x = GroupConv(2, 3, DihedralGroup(4), 3, stride=2, padding=1), torch.randn(2, 2, 8, 7, 7)
    elif which == "so2":
        layer, x = GroupConv(2, 3, SO2(), 5, num_elements=8), torch.randn(2, 2, 8, 6, 6)
    else:
        layer, x = GroupConv(1, 2, OctahedralGroup(), 3), torch.randn(1, 1, 24, 4, 4, 4)
    conv = layer.export()
    assert type(conv) in (nn.Conv2d, nn.Conv3d) and not conv.training
    layer.eval()
    with torch.no_grad():
        y = layer(x)
        inp = x if x.dim() == 4 else x.flatten(1, 2)
        assert rel_err(conv(inp).unflatten(1, (layer.out_channels, layer.num_elements)), y) <= 1e-6


@pytest.mark.parametrize("kernel_net", [None, "mlp"])
def test_pickle_and_deepcopy(kernel_net):
    torch.manual_seed(13)
    layer = LiftingConv(1, 2, SO2(), 3, num_elements=8, kernel_net=kernel_net)
    x = torch.randn(1, 1, 5, 5)
    y = layer(x)
    for other in (copy.deepcopy(layer), pickle.loads(pickle.dumps(layer))):
        assert torch.equal(other(x), y)


def test_fields_declared():
    lift = LiftingConv(1, 2, CyclicGroup(4), 3)
    gc = GroupConv(2, 2, CyclicGroup(4), 3)
    assert lift.out_field.group == CyclicGroup(4)
    assert lift.in_field is not None and gc.in_field is not None and gc.out_field is not None
    x = torch.randn(1, 2, 4, 5, 5)
    g = torch.tensor([math.pi / 2])
    assert torch.equal(gc.in_field.transform(x, g), rot_map(x, 1, 4))


# -- errors -------------------------------------------------------------------------------------
def test_bad_inputs():
    G = CyclicGroup(4)
    gc = GroupConv(2, 3, G, 3)
    with pytest.raises(ValueError, match=r"x must have shape .*N_in=4"):
        gc(torch.randn(1, 2, 8, 5, 5))
    with pytest.raises(ValueError, match=r"in_channels=2"):
        gc(torch.randn(1, 3, 4, 5, 5))
    with pytest.raises(ValueError, match="x must have shape"):
        LiftingConv(2, 3, G, 3)(torch.randn(1, 2, 4, 5, 5))
    with pytest.raises(ValueError, match="kernel_size must be odd"):
        LiftingConv(1, 1, G, 4)
    with pytest.raises(ValueError, match="kernel_size must be odd"):
        GroupConv(1, 1, DihedralGroup(4), (3, 2))
    with pytest.raises(ValueError, match="kernel_size"):
        LiftingConv(1, 1, G, (3, 3, 3))
    with pytest.raises(ValueError, match="num_elements"):
        LiftingConv(1, 1, SO2(), 3)
    with pytest.raises(ValueError, match="spatial_dims"):
        LiftingConv(1, 1, G, 3, spatial_dims=3)
    with pytest.raises(ValueError, match="padding"):
        LiftingConv(1, 1, G, 3, padding="same", stride=2)
    with pytest.raises(TypeError, match="group"):
        LiftingConv(1, 1, "C4", 3)
    with pytest.raises(ValueError, match="kernel_net.out_features must be 6"):  # the registry's text
        LiftingConv(2, 3, SO2(), 3, num_elements=4, kernel_net=nn.Linear(2, 5))
    with pytest.raises(ValueError, match="kernel_net"):
        LiftingConv(1, 1, SO2(), 3, num_elements=4, kernel_net="nope")
    with pytest.raises(TypeError, match="x must be a torch.Tensor"):
        gc([1, 2])


@pytest.mark.parametrize(
    "group,kw",
    [(CyclicGroup(4), {}), (CyclicGroup(4), {"mask": True, "group_support": 2.0}),
     (DihedralGroup(4), {}), (SO2(), {"num_elements": 8}),
     (SO2(), {"num_elements": 8, "group_support": 1.0}),
     (CyclicGroup(8), {"num_elements": 4, "in_num_elements": 8})],
    ids=["C4", "C4-masked", "D4", "SO2-8-interp", "SO2-8-interp-support", "C8-to-C4"],
)
def test_expansion_gradients(group, kw):
    """The custom gather backward is the true gradient (and twice differentiable)."""
    layer = GroupConv(2, 2, group, 3, dtype=torch.float64, **kw)
    w = layer.weight.detach().clone().requires_grad_(True)

    def expand(weight, backward_zero_slot):
        return gconv_mod.expand_discrete(
            weight, layer.mode, layer.num_elements, layer.kernel_size, layer._flat_index,
            layer._backward_index, layer._zero_slot, layer._scale, layer._group_index,
            layer._spatial_matrix, backward_zero_slot,
        )

    for bzs in {layer._backward_zero_slot, True}:  # the layer's fast path and the safe default
        assert torch.autograd.gradcheck(lambda t, bzs=bzs: expand(t, bzs), (w,), fast_mode=True)
        assert torch.autograd.gradgradcheck(lambda t, bzs=bzs: expand(t, bzs), (w,), fast_mode=True)


# -- the expansion against an independent construction --------------------------------------------
def interp_matrix(A_inv: np.ndarray, k: int, radius: float = 1.0) -> np.ndarray:
    """(k^2, k^2) matrix with (A psi)[y] = bilinear psi(A_inv y) on the centred k x k grid,
    both psi and the result cut to the disc |y| <= radius (k - 1) / 2 (numpy, from scratch)."""
    c = (k - 1) / 2
    A = np.zeros((k * k, k * k))

    def inside(p: np.ndarray) -> bool:
        return bool(np.hypot(*(p - c)) <= radius * c + 1e-6)

    for r in range(k):
        for s in range(k):
            if not inside(np.array([r, s], dtype=float)):
                continue
            u = A_inv @ np.array([r - c, s - c]) + c
            u = np.where(np.abs(u - np.round(u)) < 1e-9, np.round(u), u)
            base = np.floor(u)
            for dr in (0, 1):
                for ds in (0, 1):
                    p = base + (dr, ds)
                    wgt = (1 - abs(u[0] - p[0])) * (1 - abs(u[1] - p[1]))
                    if wgt > 0 and (0 <= p).all() and (p <= k - 1).all() and inside(p):
                        A[r * k + s, int(p[0]) * k + int(p[1])] += wgt
    return A


def rotation_interp_matrix(theta: float, k: int, radius: float = 1.0) -> np.ndarray:
    """Bilinear rotation by theta: psi(R(-theta) y), R in (row, col) order."""
    R_inv = np.array([[math.cos(theta), math.sin(theta)], [-math.sin(theta), math.cos(theta)]])
    return interp_matrix(R_inv, k, radius)


@pytest.mark.parametrize("support", [None, 1.0])
@pytest.mark.parametrize("group,n", [(CyclicGroup(8), 8), (SO2(), 6)], ids=["C8", "SO2-6"])
def test_interp_expansion_matches_reference(group, n, support):
    """Interpolated (non-grid-preserving) expansion = bilinear rotation + roll of the group axis,
    built independently; gradients too (locality mask: |theta_i - theta_j| <= support)."""
    torch.manual_seed(11)
    k, C_out, C_in = 5, 2, 2
    kw = {} if group.is_finite else {"num_elements": n}
    layer = GroupConv(C_in, C_out, group, k, dtype=torch.float64, group_support=support,
                      basis="pixel", **kw)
    assert layer.mode == "interp"
    w = layer.weight
    A = [torch.from_numpy(rotation_interp_matrix(2 * math.pi * i / n, k)) for i in range(n)]
    blocks = []
    for o in range(C_out):
        for i in range(n):
            for c in range(C_in):
                for j in range(n):
                    dj = (j - i) % n
                    keep = support is None or min(dj, n - dj) * 2 * math.pi / n <= support + 1e-9
                    blocks.append(A[i] @ w[o, c, dj].reshape(-1) / n * keep)
    ref = torch.stack(blocks).view(C_out * n, C_in * n, k, k)
    W = layer.expanded_weight()
    assert rel_err(W, ref) <= 1e-12
    G = torch.randn_like(W)
    (g_ours,) = torch.autograd.grad((W * G).sum(), w)
    (g_ref,) = torch.autograd.grad((ref * G).sum(), w)
    assert rel_err(g_ours, g_ref) <= 1e-12


@pytest.mark.parametrize("which", ["C4", "D4"])
def test_exact_expansion_matches_reference(which):
    """Grid-preserving expansion = rot90 / flip of the kernel and the group-axis permutation
    h_i^-1 h_j, written with integer matrices."""
    torch.manual_seed(12)
    k, C_out, C_in = 5, 2, 3
    elems = [(q, 1) for q in range(4)] if which == "C4" else D4_LIST
    G = CyclicGroup(4) if which == "C4" else DihedralGroup(4)
    layer = GroupConv(C_in, C_out, G, k, dtype=torch.float64)
    assert layer.mode == "gather"
    n = len(elems)
    mats = [d4_matrix(*e) for e in elems]
    rel = [[next(a for a, ma in enumerate(mats) if (ma == np.round(np.linalg.inv(mi)) @ mj).all())
            for mj in mats] for mi in mats]
    w = layer.weight
    ref = torch.stack([
        d4_image(w[o, c, rel[i][j]], *elems[i]) / n
        for o in range(C_out) for i in range(n) for c in range(C_in) for j in range(n)
    ]).view(C_out * n, C_in * n, k, k)
    W = layer.expanded_weight()
    assert torch.equal(W, ref)
    G_ = torch.randn_like(W)
    (g_ours,) = torch.autograd.grad((W * G_).sum(), w)
    (g_ref,) = torch.autograd.grad((ref * G_).sum(), w)
    assert rel_err(g_ours, g_ref) <= 1e-12


def test_scaling_lift_matches_reference():
    """Non-uniform |det h|^-1 and no grid symmetry between elements (no factorisation)."""
    from groupconv.groups.euclidean import Scaling

    torch.manual_seed(13)
    k, n = 5, 3
    layer = LiftingConv(2, 2, Scaling(d=2), k, num_elements=n, dtype=torch.float64)
    scales = layer.out_grid.view(-1).tolist()
    w = layer.weight
    ref = torch.stack([
        torch.from_numpy(interp_matrix(np.eye(2) / s, k)) @ w[o, c].reshape(-1) / s**2
        for o in range(2) for s in scales for c in range(2)
    ]).view(2 * n, 2, k, k)
    W = layer.expanded_weight()
    assert rel_err(W, ref) <= 1e-12
    G = torch.randn_like(W)
    (g_ours,) = torch.autograd.grad((W * G).sum(), w)
    (g_ref,) = torch.autograd.grad((ref * G).sum(), w)
    assert rel_err(g_ours, g_ref) <= 1e-12


def test_interpolation_factorisation():
    """M_i = M_r[perm_i] is found (C8: 2 representatives) and always verified."""
    from groupconv.nn.group.gconv_kernels import _factor_interpolation

    layer = GroupConv(1, 1, CyclicGroup(8), 5, basis="pixel")
    assert layer._spatial_matrix.shape == (25, 2 * 25)  # 0 and 45 degrees, then rot90s
    steer = GroupConv(1, 1, CyclicGroup(8), 5)  # the steerable basis factors the same way
    assert steer._spatial_matrix.shape == (steer.weight.shape[-1], 2 * 25)
    g = torch.Generator().manual_seed(0)
    M0 = torch.rand(6, 6, generator=g, dtype=torch.float64)
    p = torch.randperm(6, generator=g)
    near = M0[p].clone()
    near[2, 3] += 1e-6  # a permutation up to 1e-6 is NOT the same matrix
    reps, rep_of, perm = _factor_interpolation(torch.stack([M0, M0[p], near]))
    assert reps == [0, 2] and rep_of.tolist() == [0, 0, 1]
    assert torch.equal(M0[perm[1]], M0[p])


def test_mask_sampling_is_the_masked_spatial_sampling():
    from groupconv.nn.group.gconv_kernels import mask_sampling, spatial_sampling

    for G, n in ((CyclicGroup(8), 8), (CyclicGroup(4), 4), (SO2(), 6)):
        grid = G.grid(n, dtype=torch.float64)
        for r in (1.0, 0.7):
            idx, wgt, exact = spatial_sampling(G, grid, (5, 5), r)
            idx2, wgt2 = mask_sampling(*spatial_sampling(G, grid, (5, 5))[:2], (5, 5), r)
            assert torch.equal(idx, idx2) and torch.equal(wgt, wgt2)


# -- per-batch-element random grids ------------------------------------------------------------
@dataclass(frozen=True, eq=False)
class _FixedGrids(Sampler):
    """Test sampler returning given grids: ``(n, *e)`` (per="call") or ``(B, n, *e)`` (per="batch")."""

    grids: torch.Tensor = None  # type: ignore[assignment]
    per: str = "call"

    def _sample(self, group, n, batch, generator, device, dtype):
        g = self.grids.to(device=device, dtype=dtype or self.grids.dtype)
        assert g.shape[-2] == n and (batch is None or g.shape[0] == batch)
        return g


def _pb_kw(sampler, device, dtype=torch.float32):
    return {"num_elements": 5, "sampler": sampler, "kernel_net": "siren", "padding": 1,
            "device": device, "dtype": dtype}


def _with_sampler(layer, sampler):
    """A copy of ``layer`` (same parameters) drawing its training grids from ``sampler``."""
    other = copy.deepcopy(layer)
    other.sampler = sampler
    other._per_batch = sampler.per_batch_element
    return other


def test_per_batch_grids_match_per_sample_shared_grids(device, float_dtype):
    torch.manual_seed(3)
    G = SO2()
    s = StratifiedSampler(per="batch")
    tol = {torch.float32: 1e-6, torch.float64: 1e-12}[float_dtype]
    lift = LiftingConv(2, 3, G, 3, **_pb_kw(s, device, float_dtype))
    gc = GroupConv(3, 2, G, 3, group_support=2.5, **_pb_kw(s, device, float_dtype))
    x = torch.randn(3, 2, 6, 6, device=device, dtype=float_dtype)
    gen = torch.Generator().manual_seed(0)
    h, g1 = lift.forward_with_grid(x, generator=gen)
    y, g2 = gc.forward_with_grid(h, in_grid=g1, generator=gen)
    assert g1.shape == g2.shape == (3, 5, 1) and h.shape == (3, 3, 5, 6, 6) and y.shape == (3, 2, 5, 6, 6)
    assert not torch.allclose(g1[0], g1[1]) and not torch.allclose(g1[0], g2[0])  # independent draws
    for b in range(3):  # the same layers on x[b:b+1] with sample b's grids shared (per-call path)
        lb = _with_sampler(lift, _FixedGrids(g1[b]))
        gb = _with_sampler(gc, _FixedGrids(g2[b]))
        hb, gb1 = lb.forward_with_grid(x[b : b + 1])
        assert torch.equal(gb1, g1[b])
        assert rel_err(hb, h[b : b + 1]) <= tol
        assert rel_err(gb(hb, in_grid=g1[b]), y[b : b + 1]) <= tol
    # gradients flow to the kernel net through the grouped conv
    y.square().sum().backward()
    assert all(p.grad is not None for p in lift.parameters())


def test_per_batch_grids_rotated_input_and_grids(device):
    """Rotating x by g = +90 deg and every grid h -> g h rotates the output maps exactly."""
    torch.manual_seed(4)
    G = SO2()
    g1 = StratifiedSampler(per="batch")(G, 5, batch_size=2, generator=torch.Generator().manual_seed(1))
    g2 = StratifiedSampler(per="batch")(G, 5, batch_size=2, generator=torch.Generator().manual_seed(2))
    g = torch.tensor([math.pi / 2], dtype=g1.dtype)
    lift = LiftingConv(1, 3, G, 3, **_pb_kw(_FixedGrids(g1, per="batch"), device))
    gc = GroupConv(3, 2, G, 3, **_pb_kw(_FixedGrids(g2, per="batch"), device))
    lift_r = _with_sampler(lift, _FixedGrids(G.product(g, g1), per="batch"))
    gc_r = _with_sampler(gc, _FixedGrids(G.product(g, g2), per="batch"))
    x = torch.randn(2, 1, 7, 7, device=device)
    h, o1 = lift.forward_with_grid(x)
    y = gc(h, in_grid=o1)
    hr, o1r = lift_r.forward_with_grid(rot(x, 1))
    assert torch.allclose(o1r.cpu(), G.product(g, g1).to(o1r.dtype))
    assert rel_err(hr, rot(h, 1)) <= 1e-5
    assert rel_err(gc_r(hr, in_grid=o1r), rot(y, 1)) <= 1e-5
    assert rel_err(gc(hr, in_grid=o1), rot(y, 1)) > 1e-3  # the grids must rotate too


def test_per_batch_grids_eval_uses_deterministic_grid(device):
    torch.manual_seed(5)
    lift = LiftingConv(1, 2, SO2(), 3, **_pb_kw(StratifiedSampler(per="batch"), device))
    gc = GroupConv(2, 2, SO2(), 3, **_pb_kw(StratifiedSampler(per="batch"), device))
    x = torch.randn(2, 1, 6, 6, device=device)
    with pytest.raises(ValueError, match="one grid per batch element"):
        lift.expanded_weight()
    lift.eval()
    gc.eval()
    h, grid = lift.forward_with_grid(x, generator=torch.Generator().manual_seed(0))
    assert torch.allclose(grid.cpu(), SO2().grid(5, dtype=grid.dtype))
    ref = LiftingConv(1, 2, SO2(), 3, num_elements=5, kernel_net="siren", padding=1, device=device,
                      basis="pixel")  # a random-grid layer reads its net at the pixels
    ref.load_state_dict(lift.state_dict())
    ref.eval()
    assert rel_err(h, ref(x)) <= 1e-6
    y = gc(h, in_grid=grid)
    # a batched deterministic in_grid takes the grouped-conv path and agrees
    yb, gb = gc.forward_with_grid(h, in_grid=grid.expand(2, *grid.shape))
    assert gb.shape == (2, 5, 1) and rel_err(yb, y) <= 1e-6


def test_per_batch_grids_errors(device):
    s = StratifiedSampler(per="batch")
    with pytest.raises(ValueError, match="kernel_net"):
        LiftingConv(1, 2, SO2(), 3, num_elements=4, sampler=s)
    with pytest.raises(ValueError, match="kernel_net"):
        GroupConv(1, 2, SO2(), 3, num_elements=4, sampler=s)
    lift = LiftingConv(1, 2, SO2(), 3, **_pb_kw(s, device))
    gc = GroupConv(2, 2, SO2(), 3, **_pb_kw(s, device))
    h, grid = lift.forward_with_grid(torch.randn(3, 1, 5, 5, device=device))
    with pytest.raises(ValueError, match=r"in_grid must have shape \(B=2, in_num_elements=5"):
        gc(h[:2], in_grid=grid)
    with pytest.raises(ValueError, match=r"in_grid must have shape \(B=3, in_num_elements=5"):
        gc(h, in_grid=grid[:, :4])
    disc = GroupConv(2, 2, CyclicGroup(4), 3)
    with pytest.raises(ValueError, match="continuous kernels"):
        disc(torch.randn(2, 2, 4, 5, 5), in_grid=CyclicGroup(4).elements().expand(2, 4, 1))
    from groupconv.nn.group.partial import PartialGroupConv

    assert not PartialGroupConv._per_batch_grids  # an explicit class attribute (issue 13)
    assert GroupConv._per_batch_grids and LiftingConv._per_batch_grids
