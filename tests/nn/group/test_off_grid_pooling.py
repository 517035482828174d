"""Network parts that keep off-grid rotations (issue 11): BlurPool, the disc readout and the
models' antialias default; exact elements stay exact for odd and even map sizes."""

import math

import pytest
import torch
from _off_grid import rotate_cubic, smooth_noise

from groupconv.groups import SO2, CyclicGroup, DihedralGroup
from groupconv.models import GCNN, CKGResNet
from groupconv.nn.group.pooling import BlurPool, GlobalInvariantPool, SpatialMaxPool, disc_mask


@pytest.mark.parametrize("size", [(8, 8), (9, 9), (9, 8), (7, 10)])
def test_blurpool_exact_under_rot90_and_flips_for_odd_and_even_sizes(size):
    torch.manual_seed(0)
    x = torch.randn(2, 3, 4, *size, dtype=torch.float64)
    pool = BlurPool()
    y = pool(x)
    assert y.shape[-2:] == tuple((n + 1) // 2 for n in size)
    # transforms computed independently of the pool: flips always, rot90 on square maps
    for dims in ((-1,), (-2,)):
        assert torch.allclose(pool(torch.flip(x, dims)), torch.flip(y, dims), atol=1e-12)
    if size[0] == size[1]:
        assert torch.allclose(pool(torch.rot90(x, 1, (-2, -1))), torch.rot90(y, 1, (-2, -1)), atol=1e-12)


def test_blurpool_control_a_2x2_max_pool_on_an_odd_map_is_not_exact():
    x = torch.randn(1, 1, 9, 9, dtype=torch.float64)
    pool = SpatialMaxPool(2)
    assert not torch.allclose(pool(torch.rot90(x, 1, (-2, -1))), torch.rot90(pool(x), 1, (-2, -1)))


def test_blurpool_aliases_less_than_max_pool_at_45_degrees():
    """A smooth map rotated by 45 degrees (bicubic), pooled, vs the pooled map rotated: the
    blurred pool is closer (both compared on the central disc after upsampling back)."""
    errs = {}
    for name, pool in (("blur", BlurPool(max_first=False)), ("max", SpatialMaxPool(2))):
        e = []
        for seed in range(3):
            x = smooth_noise(32, seed, sigma=1.5).double()
            a = math.pi / 4
            y, yr = pool(x), pool(rotate_cubic(x, a))
            target = rotate_cubic(y, a)
            m = disc_mask(y.shape[-2:], dtype=y.dtype) * (
                torch.linspace(-1, 1, y.shape[-1]).view(1, -1) ** 2
                + torch.linspace(-1, 1, y.shape[-2]).view(-1, 1) ** 2 <= 0.5).double()
            e.append(float(((yr - target) * m).norm() / (target * m).norm()))
        errs[name] = sum(e) / len(e)
    assert errs["blur"] < 0.7 * errs["max"], errs


def test_disc_readout_is_invariant_to_exact_elements_and_skips_corners():
    x = torch.randn(2, 3, 4, 7, 7)
    pool = GlobalInvariantPool(disc=True)
    y = pool(x)
    assert torch.allclose(pool(torch.roll(torch.rot90(x, 1, (-2, -1)), 1, 2)), y, atol=1e-6)
    x2 = x.clone()
    x2[..., 0, 0] += 100.0  # a corner outside the inscribed disc changes nothing
    assert torch.equal(pool(x2), y)
    assert not torch.equal(GlobalInvariantPool()(x2), GlobalInvariantPool()(x))
    with pytest.raises(TypeError, match="disc"):
        GlobalInvariantPool(disc=1)


@pytest.mark.parametrize("size", [15, 16, 17])
def test_gcnn_antialias_default_and_exact_rot90_for_odd_and_even_inputs(size):
    torch.manual_seed(0)
    so2 = GCNN(1, 5, SO2(), channels=(3, 3, 3), num_elements=8, pool_after=(0, 1), norm="none").eval()
    c4 = GCNN(1, 5, CyclicGroup(4), channels=(3, 3), pool_after=(0,), norm="none").eval()
    assert so2.antialias and isinstance(so2.pool, BlurPool) and so2.readout.disc
    assert not c4.antialias and isinstance(c4.pool, SpatialMaxPool)
    assert not GCNN(1, 5, SO2(), channels=(3,), num_elements=8, pool_after=(), antialias=False).antialias
    assert GCNN(1, 5, DihedralGroup(4), channels=(3,), pool_after=(), antialias=True).antialias
    x = torch.randn(2, 1, size, size, dtype=torch.float32)
    y = so2(x)
    for k in (1, 2, 3):
        yr = so2(torch.rot90(x, k, (-2, -1)))
        assert torch.allclose(yr, y, atol=1e-5, rtol=1e-4), (k, (yr - y).abs().max())
    with pytest.raises(TypeError, match="antialias"):
        GCNN(1, 5, SO2(), channels=(3,), num_elements=8, pool_after=(), antialias="yes")


def test_ckgresnet_antialias_default():
    torch.manual_seed(0)
    net = CKGResNet(1, 3, hidden_channels=3, num_blocks=1, kernel_size=3, pool_after=(0,)).eval()
    assert net.antialias and isinstance(net.pool, BlurPool)
    x = torch.randn(1, 1, 13, 13)  # odd map before the pool: allowed, and exact at 90 degrees
    assert torch.allclose(net(torch.rot90(x, 1, (-2, -1))), net(x), atol=1e-5, rtol=1e-4)
    off = CKGResNet(1, 3, hidden_channels=3, num_blocks=1, kernel_size=3, antialias=False)
    assert not off.antialias and not off.readout.disc
