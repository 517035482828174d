"""PointGResNet (issue 15, item 5): exact invariance / equivariance of both heads with the kit.

References are computed independently of the network: ``g`` moves raw coordinates by
``group.act`` (PointCloudField); a vector output ``v`` at point ``x`` is checked through its
arrow tip ``x + v``, which must move by ``group.act`` too (so ``v`` by the linear part only);
permutations reindex the point axis (TokenField). Breaking controls: a kernel on absolute
coordinates, and an equivariant head that forgets to rotate its local vectors, must fail.
"""

from __future__ import annotations

import copy

import pytest
import torch

from groupconv.groups import SE2, SE3, Permutations, Translations
from groupconv.models import PointGResNet
from groupconv.models.point_resnet import MaskedNorm
from groupconv.spaces import PointCloudField, TokenField, TrivialField
from groupconv.testing import EquivarianceError, assert_equivariant, assert_invariant

GROUPS = {"SE2": SE2(), "SE3": SE3(), "T2": Translations(2), "T3": Translations(3)}
C = 2


def _cloud(G, B=2, N=12, dtype=torch.float64, device="cpu", seed=0, pad=3):
    """Packed cloud (B, N, d + C + 1): coordinates, features, then a 0/1 mask column."""
    gen = torch.Generator().manual_seed(seed)
    x = torch.randn(B, N, G.space_dim, generator=gen, dtype=torch.float64)
    f = torch.randn(B, N, C, generator=gen, dtype=torch.float64)
    m = torch.ones(B, N, 1, dtype=torch.float64)
    if pad:
        m[1, N - pad :] = 0.0
    return torch.cat([x, f, m], -1).to(device=device, dtype=dtype)


def _split(x, d):
    return x[..., :d], x[..., d:-1], x[..., -1] > 0.5


class Classifier(torch.nn.Module):
    def __init__(self, G, samples=(None, 7), dtype=torch.float64, **kw):
        super().__init__()
        self.d = G.space_dim
        self.net = PointGResNet(G, C, 5, channels=8, num_blocks=len(samples), num_neighbors=5,
                                num_samples=samples, kernel_hidden=16, kernel_channels=8, dtype=dtype,
                                **kw).eval()

    def forward(self, x):
        return self.net(*_split(x, self.d))


class Arrows(torch.nn.Module):
    """Equivariant head as a point cloud: points, then arrow tips ``x + v`` (B, 2N, d)."""

    def __init__(self, G, dtype=torch.float64, **kw):
        super().__init__()
        self.d = G.space_dim
        self.net = PointGResNet(G, C, 1, channels=8, num_blocks=2, num_neighbors=5, head="equivariant",
                                kernel_hidden=16, kernel_channels=8, dtype=dtype, **kw).eval()

    def forward(self, x):
        pts, f, m = _split(x, self.d)
        v = self.net(pts, f, m)[:, :, 0]
        return torch.cat([pts, pts + v], 1)


def _elements(G, k=3, dtype=torch.float64, device="cpu", seed=6):
    return G.sample(k, generator=torch.Generator().manual_seed(seed), dtype=dtype).to(device)


@pytest.mark.parametrize("norm", ["batch", "layer"])
@pytest.mark.parametrize("name", list(GROUPS))
def test_invariant_head_is_exactly_invariant(name, norm, device, float_dtype):
    G = GROUPS[name]
    net = Classifier(G, norm=norm, dtype=float_dtype).to(device)
    x = _cloud(G, dtype=float_dtype, device=device)
    report = assert_invariant(net, x, _elements(G, dtype=float_dtype, device=device),
                              in_field=PointCloudField(G, features=C + 1))
    assert all(r.exact for r in report.rows)


@pytest.mark.parametrize("name", list(GROUPS))
def test_equivariant_head_rotates_with_the_input(name, device, float_dtype):
    G = GROUPS[name]
    net = Arrows(G, dtype=float_dtype).to(device)
    x = _cloud(G, dtype=float_dtype, device=device)
    report = assert_equivariant(net, x, _elements(G, dtype=float_dtype, device=device),
                                in_field=PointCloudField(G, features=C + 1), out_field=PointCloudField(G))
    assert all(r.exact for r in report.rows)
    if not isinstance(G, Translations):  # not vacuous: the vectors are not rotation-invariant
        pts, f, m = _split(x, G.space_dim)
        v = net.net(pts, f, m).detach()
        assert float(v.abs().max()) > 1e-3


@pytest.mark.parametrize("name", ["SE2", "SE3", "T2"])
def test_permutations_of_the_point_order(name):
    G, N = GROUPS[name], 12
    x = _cloud(G, N=N, pad=0)
    perms = TokenField(Permutations(N))
    gen = torch.Generator().manual_seed(7)
    extra = torch.stack([torch.randperm(N, generator=gen) for _ in range(2)])
    elements = torch.cat([perms.exact_elements(), extra])
    assert_equivariant(Classifier(G), x, elements, in_field=perms, out_field=TrivialField())
    arrows = Arrows(G)

    def vectors(t):  # (B, N, d): follows the points
        return arrows(t)[:, N:] - t[..., : G.space_dim]

    assert_equivariant(vectors, x, elements, in_field=perms, out_field=TokenField(Permutations(N)))


# ------------------------------------------------------------------------ breaking controls
class _AbsoluteCoordinates:
    """A group proxy whose inverse is the identity: the kernel then sees v, not u^-1 v."""

    def __init__(self, G):
        self._G = G

    def inverse(self, g):
        return self._G.identity(g.shape[: g.dim() - len(self._G.element_shape)], g.device, g.dtype)

    def __getattr__(self, name):
        return getattr(self._G, name)


@pytest.mark.parametrize("name", ["SE2", "SE3", "T3"])
def test_kernel_on_absolute_coordinates_breaks_invariance(name):
    G = GROUPS[name]
    net = Classifier(G)
    x = _cloud(G)
    field = PointCloudField(G, features=C + 1)
    assert_invariant(net, x, _elements(G), in_field=field)
    for m in net.modules():
        if type(m).__name__ == "PointGroupConv":
            m.group = _AbsoluteCoordinates(G)
    with pytest.raises(EquivarianceError):
        assert_invariant(net, x, _elements(G), in_field=field)


def _no_rotation(G):
    """A copy of ``G`` whose linear part is the identity: local vectors are never rotated."""
    bad = copy.copy(G)

    def matrix(g):
        m = G.matrix(g)
        return torch.eye(m.shape[-1], dtype=m.dtype).expand_as(m)

    object.__setattr__(bad, "matrix", matrix)
    return bad


@pytest.mark.parametrize("name", ["SE2", "SE3"])
def test_head_without_frame_rotation_breaks_equivariance(name):
    G = GROUPS[name]
    net = Arrows(G)
    x = _cloud(G)
    fields = dict(in_field=PointCloudField(G, features=C + 1), out_field=PointCloudField(G))
    assert_equivariant(net, x, _elements(G), **fields)
    net.net.group = _no_rotation(G)
    with pytest.raises(EquivarianceError):
        assert_equivariant(net, x, _elements(G), **fields)


# ------------------------------------------------------------------------ padding, norm, errors
@pytest.mark.parametrize("head", ["invariant", "equivariant"])
def test_padding_points_change_nothing(head):
    G = SE2()
    samples = (None, 6) if head == "invariant" else (None, None)
    net = PointGResNet(G, C, 3, channels=8, num_blocks=2, num_neighbors=5, num_samples=samples, head=head,
                       dtype=torch.float64).eval()
    gen = torch.Generator().manual_seed(3)
    pts = torch.randn(1, 10, 2, generator=gen, dtype=torch.float64)
    f = torch.randn(1, 10, C, generator=gen, dtype=torch.float64)
    ref = net(pts, f)
    pad_pts = torch.cat([pts, 100 * torch.randn(1, 4, 2, generator=gen, dtype=torch.float64)], 1)
    pad_f = torch.cat([f, torch.randn(1, 4, C, generator=gen, dtype=torch.float64)], 1)
    mask = torch.arange(14).unsqueeze(0) < 10
    out = net(pad_pts, pad_f, mask)
    if head == "equivariant":
        assert bool(out[:, 10:].eq(0).all())
        out = out[:, :10]
    torch.testing.assert_close(out, ref, atol=1e-10, rtol=1e-8)


def test_masked_batch_norm_ignores_padding_and_tracks_statistics():
    norm = MaskedNorm(3, "batch", momentum=1.0, dtype=torch.float64)
    gen = torch.Generator().manual_seed(0)
    x = torch.randn(2, 6, 2, 3, generator=gen, dtype=torch.float64)
    mask = torch.ones(2, 6, dtype=torch.bool)
    mask[1, 4:] = False
    x_pad = x.clone()
    x_pad[1, 4:] = 1e6  # padding values must not reach the statistics
    y = norm(x_pad, mask)
    real = x[mask].reshape(-1, 3)
    torch.testing.assert_close(norm.running_mean, real.mean(0))
    torch.testing.assert_close(norm.running_var, real.var(0, unbiased=True))
    torch.testing.assert_close(y[mask].reshape(-1, 3).mean(0), torch.zeros(3, dtype=torch.float64),
                               atol=1e-12, rtol=0)
    assert bool(y[1, 4:].eq(0).all())


def test_gradients_reach_every_parameter():
    net = PointGResNet(SE3(), 1, 4, channels=8, num_blocks=2, num_neighbors=4, num_samples=(None, 5))
    x = torch.randn(3, 9, 3, generator=torch.Generator().manual_seed(0))
    net(x).logsumexp(-1).sum().backward()
    missing = [n for n, p in net.named_parameters() if p.grad is None or not bool(p.grad.abs().sum() > 0)]
    assert not missing, missing


def test_argument_errors_name_the_argument():
    with pytest.raises(ValueError, match="num_samples must have num_blocks=2 entries, got 1"):
        PointGResNet(SE2(), 1, 2, num_blocks=2, num_samples=(4,))
    with pytest.raises(ValueError, match="head='equivariant'.*num_samples"):
        PointGResNet(SE2(), 1, 2, num_blocks=1, num_samples=(4,), head="equivariant")
    with pytest.raises(ValueError, match="head must be one of"):
        PointGResNet(SE2(), 1, 2, head="pool")
    with pytest.raises(ValueError, match="norm must be one of"):
        PointGResNet(SE2(), 1, 2, norm="group")
    with pytest.raises(ValueError, match="num_frames must be 1"):
        PointGResNet(Translations(2), 1, 2, num_frames=2)
    with pytest.raises(ValueError, match="in_channels=3"):
        PointGResNet(SE2(), 3, 2, num_blocks=0)(torch.randn(1, 5, 2))


def test_block_skip_path_takes_the_points_the_convolution_keeps():
    from groupconv.functional.points import farthest_point_sampling, gather_points, lift_points
    from groupconv.models import PointResBlock

    G = SE2()
    gen = torch.Generator().manual_seed(2)
    pts = torch.randn(2, 11, 2, generator=gen, dtype=torch.float64)
    mask = torch.ones(2, 11, dtype=torch.bool)
    mask[1, 8:] = False
    u = lift_points(G, pts, mask, num_frames=2)
    f = torch.randn(2, 11, 2, 4, generator=gen, dtype=torch.float64)
    block = PointResBlock(G, 4, num_neighbors=4, num_samples=5, dtype=torch.float64).eval()
    torch.nn.init.zeros_(block.linear.weight)
    torch.nn.init.zeros_(block.linear.bias)  # the residual branch is off: out = skip
    out = block(u, f, mask)
    idx, valid = farthest_point_sampling(pts, 5, mask)
    torch.testing.assert_close(out.elements, gather_points(u, idx))
    expected = gather_points(f, idx) * valid[:, :, None, None]
    torch.testing.assert_close(out.features, expected)
    assert torch.equal(out.mask, valid)
