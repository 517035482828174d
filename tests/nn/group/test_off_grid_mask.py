"""The steerable path honours the mask arguments, and a forward with an explicit in_grid
stays on the input's device (issue 11, item 3)."""

from __future__ import annotations

import math

import pytest
import torch

import groupconv.nn.group.gconv_basis as basis_module
import groupconv.nn.group.gconv_weights as gconv_module
from groupconv.groups import SO2, CyclicGroup
from groupconv.nn import GroupConv, LiftingConv
from groupconv.nn.group.gconv_basis import steerable_window


def _corner_and_radius(layer) -> tuple[float, torch.Tensor]:
    """Largest |entry| of the expanded kernels at the 5x5 corners, and the per-pixel max."""
    w = layer.expanded_weight().detach().abs()
    per_pixel = w.flatten(0, -3).amax(0)  # (k, k)
    return float(per_pixel[0, 0]), per_pixel


def _radii(k: int) -> torch.Tensor:
    r = torch.arange(k, dtype=torch.float64) - (k - 1) / 2
    return (r.view(-1, 1) ** 2 + r.view(1, -1) ** 2).sqrt()


@pytest.mark.parametrize("kernel_net", [None, "mlp"])
def test_default_window_is_the_inscribed_disc_and_mask_false_keeps_the_corners(kernel_net):
    torch.manual_seed(0)
    kw = {"num_elements": 8, "kernel_net": kernel_net}
    default = LiftingConv(1, 3, SO2(), 5, **kw).eval()
    none = LiftingConv(1, 3, SO2(), 5, mask=False, **kw).eval()
    assert default.basis == none.basis == "steerable"
    c_default, _ = _corner_and_radius(default)
    c_none, _ = _corner_and_radius(none)
    assert c_default == 0.0  # |(2, 2)| = 2.83 > 2.5: outside the basis's disc in every rotation
    assert c_none > 1e-3  # the mask argument reaches the basis


@pytest.mark.parametrize("kernel_net", [None, "siren"])
def test_hard_mask_radius_shrinks_the_window_and_drops_the_outer_ring(kernel_net):
    torch.manual_seed(0)
    kw = {"num_elements": 8, "kernel_net": kernel_net}
    small = LiftingConv(1, 3, SO2(), 5, mask_radius=0.6, **kw).eval()  # disc of radius 1.5 px
    full = LiftingConv(1, 3, SO2(), 5, **kw).eval()
    _, pix = _corner_and_radius(small)
    assert float(pix[_radii(5) > 1.5 + 1e-9].max()) == 0.0
    assert float(pix[_radii(5) <= 1.5].min()) > 0.0
    if kernel_net is None:  # one coefficient per basis function: the r = 2 ring is gone
        assert small.weight.shape[-1] < full.weight.shape[-1]
        assert small.weight.shape[-1] == 4  # ring 0 (m = 0), ring 1 (now the outermost: m <= 1)


def test_smooth_mask_differs_from_hard_and_decays_outwards():
    torch.manual_seed(0)
    layers = {}
    for mask in ("hard", "smooth"):
        torch.manual_seed(0)
        layers[mask] = LiftingConv(1, 3, SO2(), 5, num_elements=8, kernel_net="mlp", mask=mask,
                                   mask_radius=0.8).eval()
    a, b = (layers[m].expanded_weight().detach() for m in ("hard", "smooth"))
    assert not torch.allclose(a, b, atol=1e-4)
    w = steerable_window((5, 5), "smooth", 0.8, 10.0).view(5, 5)
    assert float(w[2, 2]) > 0.99 and float(w[0, 0]) < 0.05  # corner: |y| / 2.5 = 1.13
    with pytest.raises(ValueError, match="mask must be"):
        steerable_window((5, 5), "soft")


def test_windowed_basis_still_rotates_exactly_at_90_degrees():
    """Any window is a function of |y| alone: the rot90 of the kernel for h is the kernel for
    h + 90 degrees (computed independently with torch.rot90)."""
    torch.manual_seed(0)
    for kw in ({"mask": False}, {"mask_radius": 0.6}, {"mask": "smooth", "kernel_net": "mlp"}):
        layer = LiftingConv(1, 2, CyclicGroup(8), 5, **kw).eval()
        w = layer.expanded_weight().detach().view(2, 8, 1, 5, 5)
        # h_{i+2} = h_i rotated by 90 degrees: its kernel is rot90 of h_i's (rot90 sense of the kit)
        rolled = torch.roll(w, -2, dims=1)
        assert torch.allclose(torch.rot90(w, 1, dims=(-2, -1)), rolled, atol=1e-5), kw


class _NoHostSync:
    """Fail on host round trips inside the block (CPU stand-in for a device check)."""

    def __init__(self, monkeypatch):
        self.mp = monkeypatch

    def __enter__(self):
        def boom(*a, **k):
            raise AssertionError("host round trip in forward")

        self.mp.setattr(torch.Tensor, "cpu", boom)
        self.mp.setattr(torch.Tensor, "item", boom)
        self.mp.setattr(torch.Tensor, "tolist", boom)
        self.mp.setattr(gconv_module, "steerable_continuous_coordinates", boom)
        self.mp.setattr(basis_module, "steerable_matrices", boom)
        self.mp.setattr(torch.linalg, "pinv", boom)
        return self

    def __exit__(self, *exc):
        self.mp.undo()
        return False


@pytest.mark.parametrize("group_support", [None, math.pi / 2])
def test_explicit_in_grid_builds_nothing_on_the_host_and_matches_the_cached_path(monkeypatch, group_support):
    torch.manual_seed(0)
    gconv = GroupConv(2, 3, SO2(), 3, padding=1, num_elements=8, kernel_net="mlp",
                      group_support=group_support).train()
    h = torch.randn(2, 2, 8, 7, 7)
    grid = gconv.in_grid.clone()
    ref = gconv(h)
    with _NoHostSync(monkeypatch):
        y = gconv(h, in_grid=grid)
    assert torch.allclose(y, ref, atol=1e-5, rtol=1e-5)
    # a different in_grid (shifted by a quarter of a step) changes the kernel, through the
    # embedding of h_i^-1 h_j, and its gradient reaches the kernel net
    with _NoHostSync(monkeypatch):
        y2 = gconv(h, in_grid=grid + math.pi / 16)
    assert not torch.allclose(y2, ref, atol=1e-4)
    y2.square().mean().backward()
    assert all(p.grad is not None for p in gconv.kernel_net.parameters())


def test_explicit_in_grid_follows_the_layer_dtype():
    torch.manual_seed(0)
    gconv = GroupConv(2, 3, SO2(), 3, padding=1, num_elements=8, kernel_net="mlp").double().eval()
    h = torch.randn(1, 2, 8, 7, 7, dtype=torch.float64)
    y = gconv(h, in_grid=gconv.in_grid.clone())
    assert y.dtype == torch.float64
    assert torch.allclose(y, gconv(h), atol=1e-10)
