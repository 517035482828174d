"""Off-grid rotations (issue 11): sampled rotation groups hold between the pixel-exact angles.

Two protocols (helpers in tests/_off_grid.py, our own inputs and seeds):

* group-axis probe: analytic sum-of-Gaussians inputs sampled at exactly rotated coordinates,
  the output at the centre pixel against the unrotated output rolled along the group axis
  (64 images, 8 fields, untrained layers; lifting 5x5 and lifting 5x5 -> ReLU -> group 3x3);
* max over the group axis: Gaussian-filtered noise (sigma 2) on 33x33, bicubic rotation,
  relative error on the central disc of radius 6 (C8, 1 -> 4 fields, 7x7, padding 3).

escnn figures (constants; escnn is not needed). Issue 11, escnn R2Conv C8 at 45 degrees:
probe 0.015 (lifting) and 0.020 (stack); max-over-group 0.054 (45) and 0.136 (22.5).
C16 at 22.5 degrees is not in the issue: measured here with escnn 1.0 on the same probe inputs
(tests/_off_grid.py, seeds 0-2): 0.008 (lifting) and 0.025 (stack). Bars: the mean over 3
seeds at or below escnn (parity) and every seed within 2x. Measured (this branch, mean of 3
seeds): discrete C8 0.0024 / 0.0173, siren 0.0011 / 0.0044, mlp 0.0029 / 0.0077; C16 0.0018 /
0.0136; max-over-group C8 0.029 (45) / 0.040 (22.5).
"""

from __future__ import annotations

import math
import time

import pytest
import torch
from _off_grid import axis_probe_error, gaussian_mixture, max_pool_error, rotate_cubic

import groupconv.nn.group.gconv_weights as gconv_module  # where the steerable matrices are built
from groupconv.groups import SO2, CyclicGroup
from groupconv.nn import GroupConv, LiftingConv
from groupconv.nn.group.gconv_basis import steerable_matrices

ESCNN_PROBE = {8: (0.015, 0.020), 16: (0.008, 0.025)}  # (lifting, stack) at 360/N degrees
ESCNN_MAXPOOL_C8 = {45.0: 0.054, 22.5: 0.136}
SEEDS = (0, 1, 2)


def _layers(G, N, kernel_net, seed, **kw):
    ne = {} if G.is_finite else {"num_elements": N}
    torch.manual_seed(seed)
    lift = LiftingConv(1, 8, G, 5, padding=2, kernel_net=kernel_net, **ne, **kw).eval()
    gconv = GroupConv(8, 8, G, 3, padding=1, kernel_net=kernel_net, **ne, **kw).eval()
    return lift, (lambda t: gconv(torch.relu(lift(t))))


def _probe(G, N, kernel_net, **kw):
    lifts, stacks = [], []
    for seed in SEEDS:
        lift, stack = _layers(G, N, kernel_net, seed, **kw)
        lifts.append(axis_probe_error(lift, N, 2 * math.pi / N, seed=seed))
        stacks.append(axis_probe_error(stack, N, 2 * math.pi / N, seed=seed))
    return torch.tensor(lifts), torch.tensor(stacks)


def test_probe_rotation_convention_is_rot90():
    """The analytic rotation at 90 degrees is torch.rot90 (the sense the group axis rolls by
    +1 for C4), the bicubic one too; an exact C4 layer then has ~zero probe error."""
    x = gaussian_mixture(3, 21, 0)
    assert torch.allclose(gaussian_mixture(3, 21, 0, math.pi / 2), torch.rot90(x, 1, dims=(-2, -1)))
    assert torch.allclose(rotate_cubic(x.double(), math.pi / 2), torch.rot90(x.double(), 1, dims=(-2, -1)))
    lift, stack = _layers(CyclicGroup(4), 4, None, 0)
    assert lift.mode == "gather" and lift.basis == "pixel"  # C4 stays an exact gather
    assert axis_probe_error(lift, 4, math.pi / 2) < 1e-5
    assert axis_probe_error(stack, 4, math.pi / 2) < 1e-5


CASES = [(CyclicGroup(8), 8, None), (SO2(), 8, None), (SO2(), 8, "siren"), (SO2(), 8, "mlp"),
         (CyclicGroup(16), 16, None), (SO2(), 16, None), (SO2(), 16, "siren"), (SO2(), 16, "mlp")]


@pytest.mark.parametrize("group,N,kernel_net", CASES, ids=lambda v: str(v))
def test_group_axis_probe_at_escnn_parity(group, N, kernel_net):
    lifts, stacks = _probe(group, N, kernel_net)
    e_lift, e_stack = ESCNN_PROBE[N]
    assert float(lifts.mean()) <= e_lift and float(lifts.max()) <= 2 * e_lift, lifts
    assert float(stacks.mean()) <= e_stack and float(stacks.max()) <= 2 * e_stack, stacks


@pytest.mark.parametrize("kernel_net", [None, "siren"], ids=["discrete", "siren"])
@pytest.mark.parametrize("angle", [45.0, 22.5])
def test_max_over_group_at_or_below_escnn(angle, kernel_net):
    G, kw = (CyclicGroup(8), {}) if kernel_net is None else (SO2(), {"num_elements": 8})
    errs = []
    for seed in SEEDS:
        torch.manual_seed(seed)
        layer = LiftingConv(1, 4, G, 7, padding=3, kernel_net=kernel_net, **kw).eval()
        errs.append(max_pool_error(layer, math.radians(angle), seed=seed))
    assert sum(errs) / len(errs) <= ESCNN_MAXPOOL_C8[angle], errs


# -- breaking controls: the same protocols fail when equivariance is broken ---------------------
def test_control_pixel_interpolation_fails_the_bar():
    """The previous parameterisation (bilinear-rotated pixels with a hard mask) misses 2x."""
    lifts, stacks = _probe(CyclicGroup(8), 8, None, basis="pixel")
    assert float(lifts.mean()) > 2 * ESCNN_PROBE[8][0] and float(stacks.mean()) > 2 * ESCNN_PROBE[8][1]


def test_control_basis_rotated_the_wrong_way_fails(monkeypatch):
    """Evaluating the basis at h_i y instead of h_i^{-1} y (a sign error) is caught."""
    def wrong(group, grid, k, **kw):
        return steerable_matrices(group, group.inverse(grid), k, **kw)

    monkeypatch.setattr(gconv_module, "steerable_matrices", wrong)
    lift, _ = _layers(CyclicGroup(8), 8, None, 0)
    assert axis_probe_error(lift, 8, math.pi / 4) > 10 * ESCNN_PROBE[8][0]


def test_control_plain_conv_fails_max_over_group():
    torch.manual_seed(0)
    plain = torch.nn.Conv2d(1, 4, 7, padding=3)

    def copied(t):  # a plain conv copied along the group axis: not equivariant
        return plain(t)[:, :, None].expand(-1, -1, 8, -1, -1)

    assert max_pool_error(copied, math.pi / 4) > 3 * ESCNN_MAXPOOL_C8[45.0]


# -- the steerable parameterisation --------------------------------------------------------------
@pytest.mark.parametrize("kernel_net", [None, "mlp"])
def test_every_parameter_entry_trains(kernel_net):
    """No masked, dead entries: every weight entry gets a gradient; counts are trainable."""
    kw = {"num_elements": 8, "kernel_net": kernel_net}
    torch.manual_seed(0)
    lift = LiftingConv(2, 3, SO2(), 5, padding=2, **kw)
    gconv = GroupConv(3, 2, SO2(), 3, padding=1, **kw)
    assert lift.basis == gconv.basis == "steerable"
    gconv(torch.relu(lift(torch.randn(2, 2, 9, 9)))).square().sum().backward()
    for layer in (lift, gconv):
        for name, p in layer.named_parameters():
            assert bool((p.grad != 0).all()), (name, int((p.grad == 0).sum()), p.numel())
    if kernel_net is None:
        # 5x5: rings 0, 1, 2 with m <= 0, 1, 1 -> 7 functions; 3x3: rings 0, 1 -> 4
        assert lift.weight.shape == (3, 2, 7) and gconv.weight.shape == (2, 3, 8, 4)
        pixel = LiftingConv(2, 3, SO2(), 5, num_elements=8, basis="pixel")
        assert lift.weight.numel() < pixel.weight.numel()


def test_construction_is_fast():
    t = time.perf_counter()
    for N in (8, 16):
        LiftingConv(3, 16, SO2(), 7, num_elements=N)
        GroupConv(16, 16, CyclicGroup(N), 5)
        GroupConv(16, 16, SO2(), 5, num_elements=N, kernel_net="siren")
    assert time.perf_counter() - t < 2.0  # a few ms each (measured ~15 ms); generous on CI


def test_steerable_kernels_init_like_pixel_kernels():
    """Activations keep the scale of the pixel parameterisation at initialisation."""
    x = torch.randn(8, 4, 15, 15)
    stds = {}
    for basis in ("pixel", "steerable"):
        torch.manual_seed(0)
        with torch.no_grad():
            vals = [GroupConv(4, 16, CyclicGroup(8), 5, basis=basis, bias=False)(
                LiftingConv(4, 4, CyclicGroup(4), 3, bias=False)(x).repeat(1, 1, 2, 1, 1)).std()
                for _ in range(4)]
        stds[basis] = float(torch.stack(vals).mean())
    assert 0.5 < stds["steerable"] / stds["pixel"] < 2.0, stds


def test_basis_argument_errors():
    with pytest.raises(ValueError, match="basis must be"):
        LiftingConv(1, 2, SO2(), 3, num_elements=8, basis="fourier")
    # a non-square kernel is refused for any rotating group (the constructor's shared check)
    with pytest.raises(ValueError, match="kernel_size must be the same in every dimension"):
        LiftingConv(1, 2, SO2(), (3, 5), num_elements=8, basis="steerable")


def test_explicit_in_grid_matches_the_cached_path():
    """A steerable continuous group conv given its own grid as in_grid (the fresh path) equals
    the precomputed path."""
    torch.manual_seed(0)
    gconv = GroupConv(2, 3, SO2(), 3, padding=1, num_elements=8, kernel_net="mlp").eval()
    h = torch.randn(1, 2, 8, 7, 7)
    assert torch.allclose(gconv(h, in_grid=gconv.in_grid.clone()), gconv(h), atol=1e-5, rtol=1e-5)


def test_state_dict_round_trip_into_a_differently_seeded_layer():
    """The steerable continuous kernel's init gain travels with the state_dict."""
    torch.manual_seed(0)
    a = GroupConv(2, 3, SO2(), 3, padding=1, num_elements=8, kernel_net="siren").eval()
    torch.manual_seed(1)
    b = GroupConv(2, 3, SO2(), 3, padding=1, num_elements=8, kernel_net="siren").eval()
    assert "_steer_gain" in a.state_dict()
    b.load_state_dict(a.state_dict())
    h = torch.randn(1, 2, 8, 7, 7)
    assert torch.equal(a(h), b(h))


def test_max_frequency_cap():
    """max_frequency=2 gives a 3x3 kernel 6 basis functions (rings 0, 1 with m <= 2); it still
    rotates exactly at 90 degrees, and the probe at 45 degrees stays within 3x escnn (it
    aliases more than the default cut-off: measured 0.034 on the stack vs 0.017)."""
    torch.manual_seed(0)
    gconv = GroupConv(2, 3, CyclicGroup(8), 3, max_frequency=2)
    assert gconv.weight.shape == (3, 2, 8, 6)
    lift, stack = _layers(CyclicGroup(8), 8, None, 0, max_frequency=2)
    assert axis_probe_error(stack, 8, math.pi / 4) <= 3 * ESCNN_PROBE[8][1]
    with pytest.raises(ValueError, match="max_frequency"):
        GroupConv(2, 3, CyclicGroup(8), 3, max_frequency=-1)
