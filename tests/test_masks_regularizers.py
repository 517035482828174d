"""Masks (Gaussian with dynamic cropping, circular), regularisers and optimiser param groups."""

from __future__ import annotations

import math

import pytest
import torch
from torch import nn

from groupconv.kernels import (
    MLP,
    SIREN,
    CircularMask,
    FourierNet,
    GaussianMask,
    LnKernelLoss,
    MAGNet,
    MaskSizePenalty,
    NyquistRegularizer,
    WaveletLoss,
    check_param_groups,
    linspace_grid,
    ln_kernel_norm,
    mask_size_penalty,
    nyquist_frequency,
    nyquist_penalty,
    param_groups,
    tag_parameters,
    wavelet_zero_mean_loss,
)


def gen(seed: int = 0) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


# ------------------------------------------------------------------------------ Gaussian mask
@pytest.mark.parametrize("parameterization", ["log", "variance"])
def test_gaussian_mask_values(parameterization, device, float_dtype):
    m = GaussianMask(2, init_mean=[0.2, -0.1], init_sigma=[0.3, 0.5], parameterization=parameterization,
                     device=device, dtype=float_dtype)
    x = torch.rand(4, 5, 2, device=device, dtype=float_dtype) * 2 - 1
    v = m(x)
    assert v.shape == (4, 5) and v.dtype == float_dtype and v.device.type == device.type
    ref = torch.exp(-0.5 * ((x[..., 0] - 0.2) / 0.3) ** 2) * torch.exp(-0.5 * ((x[..., 1] + 0.1) / 0.5) ** 2)
    torch.testing.assert_close(v, ref, rtol=1e-5, atol=1e-6)
    # the threshold level sits at mean +- half_width
    edge = m.mean + m.half_width() * torch.tensor([1.0, 0.0], device=device, dtype=float_dtype)
    assert float(m(edge).detach()) == pytest.approx(m.threshold, rel=1e-4)
    v.sum().backward()
    for p in m.parameters():
        assert p.grad is not None and torch.isfinite(p.grad).all() and p.grad.abs().sum() > 0


def test_variance_parameterisation_is_stable_at_zero_width():
    m = GaussianMask(1, init_sigma=1.0, parameterization="variance")
    with torch.no_grad():
        m.sigma.zero_()
    x = torch.linspace(-1, 1, 11)[:, None]
    v = m(x)
    assert torch.isfinite(v).all()
    v.sum().backward()
    assert torch.isfinite(m.sigma.grad).all() and torch.isfinite(m.mean.grad).all()


def test_mask_bad_inputs():
    with pytest.raises(ValueError, match="threshold"):
        GaussianMask(1, threshold=1.5)
    with pytest.raises(ValueError, match="init_sigma"):
        GaussianMask(2, init_sigma=[0.1, 0.2, 0.3])
    with pytest.raises(ValueError, match="init_sigma"):
        GaussianMask(1, init_sigma=0.0)
    with pytest.raises(ValueError, match="parameterization"):
        GaussianMask(1, parameterization="sqrt")
    m = GaussianMask(2)
    with pytest.raises(ValueError, match="positions"):
        m(torch.zeros(3, 1))
    with pytest.raises(ValueError, match="kernel_size"):
        m.crop_slices([9])
    with pytest.raises(ValueError, match="mode"):
        m.crop_slices([9, 9], mode="left")
    with pytest.raises(ValueError, match="grid"):
        m.crop(torch.zeros(9, 2))


def test_crop_shrinks_with_sigma_and_is_exact():
    K = 65
    grid = torch.linspace(-1, 1, K)[:, None]
    sizes = []
    for sigma in [0.02, 0.05, 0.1, 0.2, 0.4, 1.0]:
        m = GaussianMask(1, init_mean=0.1, init_sigma=sigma)
        (tight,) = m.crop_slices([K], mode="tight")
        vals = m(grid).detach()
        inside = torch.zeros(K, dtype=torch.bool)
        inside[tight] = True
        assert (vals[inside] >= m.threshold - 1e-6).all()  # kept: above the threshold
        assert (vals[~inside] < m.threshold + 1e-6).all()  # dropped: below it
        (cen,) = m.crop_slices([K], mode="centered")
        assert cen.start == K - cen.stop  # symmetric: a centred kernel stays centred
        assert cen.start <= tight.start and cen.stop >= tight.stop
        sizes.append(cen.stop - cen.start)
    assert sizes == sorted(sizes) and sizes[0] < 10 and sizes[-1] == K


def test_crop_causal_and_degenerate():
    m = GaussianMask(1, init_mean=1.0, init_sigma=0.1)
    (sl,) = m.crop_slices([101], mode="causal")
    assert sl.stop == 101 and 80 < sl.start < 100
    far = GaussianMask(1, init_mean=5.0, init_sigma=0.01)
    for mode in ("tight", "causal", "centered"):
        (s,) = far.crop_slices([11], mode=mode)
        assert s.stop - s.start >= 1
    tiny = GaussianMask(1, init_mean=0.0, init_sigma=1e-4)
    assert tiny.crop_slices([10], mode="centered")[0] == slice(4, 6)  # even grid keeps 2


def test_crop_2d_anisotropic(device):
    m = GaussianMask(2, init_sigma=[0.1, 0.4], device=device)
    grid = linspace_grid([33, 33], device=device)
    cropped, (s0, s1) = m.crop(grid)
    assert cropped.shape[0] < cropped.shape[1] <= 33 and cropped.shape[-1] == 2
    torch.testing.assert_close(cropped, grid[s0, s1])
    ext = m.crop_extent()
    assert ext.shape == (2, 2) and (ext[:, 0] < ext[:, 1]).all()


def test_circular_mask_invariant_under_rot90():
    grid = linspace_grid([9, 9])
    for smoothing in (0.0, 0.2):
        m = CircularMask(2, radius=0.8, smoothing=smoothing)(grid)
        assert m.shape == (9, 9)
        torch.testing.assert_close(torch.rot90(m, 1, dims=(0, 1)), m)
        torch.testing.assert_close(torch.flip(m, dims=(1,)), m)
        r = grid.norm(dim=-1)
        assert (m[r <= 0.8] == 1).all()
    hard = CircularMask(2, radius=0.8)(grid)
    assert (hard[grid.norm(dim=-1) > 0.81] == 0).all()
    with pytest.raises(ValueError, match="radius"):
        CircularMask(2, radius=0)


# ------------------------------------------------------------------------------ regularisers
def test_ln_kernel_norm_and_module():
    k1 = torch.randn(3, 4, requires_grad=True)
    k2 = torch.randn(5, requires_grad=True)
    val = ln_kernel_norm([k1, k2], p=2)
    ref = k1.detach().square().sum().sqrt() + k2.detach().square().sum().sqrt()
    assert val.dim() == 0
    torch.testing.assert_close(val.detach(), ref)
    torch.testing.assert_close(ln_kernel_norm(k1, p=1).detach(), k1.detach().abs().sum())
    (LnKernelLoss(0.5, p=2)([k1, k2])).backward()
    assert k1.grad is not None and k2.grad is not None
    with pytest.raises(ValueError, match="kernels"):
        ln_kernel_norm([])
    with pytest.raises(ValueError, match="p must"):
        ln_kernel_norm(k1, p=0)


def test_nyquist_frequency():
    torch.testing.assert_close(nyquist_frequency([33, 9, 2]), torch.tensor([8.0, 2.0, 0.25]))


@pytest.mark.parametrize("method", ["together", "summed"])
@pytest.mark.parametrize("target", ["gabor", "gabor+mask"])
def test_nyquist_penalty_formula_and_gradients(method, target):
    net = MAGNet(2, 3, 8, 2, generator=gen())
    mask = GaussianMask(2, init_sigma=[0.2, 0.3])
    ks = [17, 33]
    pen = nyquist_penalty(net, ks, mask=mask, method=method, target=target)
    assert pen.dim() == 0 and pen > 0
    # independent recomputation of the formula
    per_unit = net.filter_weight.abs() + 2.0 * net.gamma.abs()
    f = per_unit.amax(1) / (2 * math.pi)  # (F, D)
    nyq = torch.tensor([(k - 1) / 4 for k in ks])
    m = 2.0 / (2 * math.pi * torch.tensor([0.2, 0.3])) if target == "gabor+mask" else torch.zeros(2)
    if method == "summed":
        ref = torch.relu(f.sum(0) + m - nyq).square().sum()
    else:
        ref = torch.relu(f + (m - nyq) / f.shape[0]).square().sum()
    torch.testing.assert_close(pen, ref, rtol=1e-4, atol=1e-6)
    pen.backward()
    assert net.filter_weight.grad.abs().sum() > 0 and net.gamma.grad.abs().sum() > 0
    if target == "gabor+mask":
        assert mask.log_sigma.grad is not None and mask.log_sigma.grad.abs().sum() > 0


def test_nyquist_penalty_zero_when_band_limited_below_nyquist():
    net = FourierNet(1, 1, 4, 2, generator=gen())
    with torch.no_grad():
        net.filter_weight.mul_(1e-3)
    assert nyquist_penalty(net, 33).item() == 0.0
    assert nyquist_penalty(net, 33, method="summed").item() == 0.0


def test_minimising_nyquist_penalty_brings_bound_below_nyquist():
    net = SIREN(1, 1, 8, 2, omega_0=30.0, generator=gen())
    K = 9
    assert float(net.frequency_bounds().detach()) > (K - 1) / 4
    opt = torch.optim.Adam(net.parameters(), lr=0.05)
    for _ in range(200):
        opt.zero_grad()
        loss = nyquist_penalty(net, K, method="summed")
        if loss.item() == 0.0:
            break
        loss.backward()
        opt.step()
    assert float(net.frequency_bounds().detach()) <= (K - 1) / 4 + 1e-3


def test_nyquist_errors_and_regularizer_module():
    with pytest.raises(ValueError, match="band-limited"):
        nyquist_penalty(MLP(1, 1), 9)
    net = MAGNet(2, 1, 4, 1)
    with pytest.raises(ValueError, match="mask"):
        nyquist_penalty(net, 9, target="gabor+mask")
    with pytest.raises(ValueError, match="method"):
        nyquist_penalty(net, 9, method="both")
    with pytest.raises(ValueError, match="kernel_size"):
        nyquist_penalty(net, [9, 9, 9])
    reg = NyquistRegularizer(0.1, target="gabor+mask")
    mask, net2, mask2 = GaussianMask(2), MAGNet(2, 1, 4, 1), GaussianMask(2, init_sigma=0.3)
    total = reg([(net, 9, mask), (net2, [9, 17], mask2)])
    assert total.dim() == 0 and total > 0
    ref = nyquist_penalty(net, 9, mask=mask, target="gabor+mask") + nyquist_penalty(
        net2, [9, 17], mask=mask2, target="gabor+mask")
    torch.testing.assert_close(total, 0.1 * ref)
    with pytest.raises(ValueError, match="terms"):
        reg([])


def test_mask_size_penalty():
    masks = [GaussianMask(2, init_sigma=[0.1, 0.2]), GaussianMask(1, init_sigma=0.3)]
    pen = mask_size_penalty(masks, p=2)
    c = math.sqrt(-2 * math.log(0.1))
    ref = c * (math.hypot(0.1, 0.2) + 0.3)
    assert pen.item() == pytest.approx(ref, rel=1e-5)
    pen.backward()
    assert all(m.log_sigma.grad is not None for m in masks)
    model = nn.Sequential(nn.Linear(2, 2), masks[0], nn.ModuleList([masks[1]]))
    assert MaskSizePenalty(2.0)(model).item() == pytest.approx(2 * ref, rel=1e-5)
    with pytest.raises(TypeError, match="masks"):
        mask_size_penalty([nn.Linear(1, 1)])


def test_wavelet_zero_mean_loss():
    zero_mean = torch.tensor([[1.0, -1.0, 0.0], [2.0, -1.0, -1.0]])
    assert wavelet_zero_mean_loss(zero_mean).item() == 0.0
    k = torch.randn(4, 3, 5, 5, requires_grad=True)
    val = wavelet_zero_mean_loss(k, spatial_dims=2)
    torch.testing.assert_close(val.detach(), k.detach().sum(dim=(-2, -1)).square().mean())
    (WaveletLoss()(k)).backward()
    assert k.grad is not None
    with pytest.raises(ValueError, match="spatial_dims"):
        wavelet_zero_mean_loss(torch.zeros(3), spatial_dims=2)


# ------------------------------------------------------------------------------ param groups
class _OddContainer(nn.Module):
    """Mask and net under unrelated attribute names (the layout that broke CCNN's optimiser)."""

    def __init__(self) -> None:
        super().__init__()
        self.mask_width_param_holder = GaussianMask(2)
        self.kernel = SIREN(2, 4, 8, 2, learn_omega_0=True)
        inner = GaussianMask(1, parameterization="variance")
        self.deep = nn.ModuleList([nn.Sequential(nn.Linear(3, 3), inner)])
        self.shared = self.mask_width_param_holder  # the same mask registered twice
        self.frozen = nn.Linear(2, 2)
        self.frozen.requires_grad_(False)


def test_param_groups_cover_every_parameter_once():
    model = _OddContainer()
    groups = param_groups(model, lr=0.02, weight_decay=1e-4, weight_decay_overrides={"mask": 0.0})
    check_param_groups(model, groups)
    by_tag = {g["group"]: g for g in groups}
    assert set(by_tag) == {"default", "mask", "omega_0"}
    # every mask parameter lands in the mask group, found independently of the helper
    mask_params = {id(p) for m in model.modules() if isinstance(m, GaussianMask) for p in m.parameters()}
    assert {id(p) for p in by_tag["mask"]["params"]} == mask_params
    assert by_tag["mask"]["lr"] == pytest.approx(0.002) and by_tag["mask"]["weight_decay"] == 0.0
    assert by_tag["omega_0"]["params"] == [model.kernel.omega_0]
    # names are the real names of those very parameters
    named = dict(model.named_parameters())
    for g in groups:
        for n, p in zip(g["names"], g["params"]):
            assert named[n] is p
    listed = [id(p) for g in groups for p in g["params"]]
    assert len(listed) == len(set(listed))
    expected = {id(p) for p in model.parameters() if p.requires_grad}
    assert set(listed) == expected
    opt = torch.optim.AdamW(groups)
    loss = model.kernel(torch.zeros(1, 2)).sum() + model.mask_width_param_holder(torch.zeros(1, 2)).sum()
    loss.backward()
    opt.step()


def test_param_groups_checks_and_tags():
    model = _OddContainer()
    groups = param_groups(model, lr=0.1, lr_factors={"mask": 0.5})
    broken = [dict(g, params=list(g["params"]), names=list(g["names"])) for g in groups]
    broken[0]["params"].pop()
    broken[0]["names"].pop()
    with pytest.raises(ValueError, match="missing"):
        check_param_groups(model, broken)
    doubled = groups + [dict(groups[-1])]
    with pytest.raises(ValueError, match="two groups"):
        check_param_groups(model, doubled)
    lin = tag_parameters(nn.Linear(2, 2), {"bias": "no_decay"})
    assert [g["group"] for g in param_groups(lin, 1.0)] == ["default", "no_decay"]
    with pytest.raises(ValueError, match="does not have"):
        tag_parameters(nn.Linear(2, 2), {"gamma": "x"})
    assert len(param_groups(model, 0.1, include_frozen=True)[0]["params"]) > len(groups[0]["params"])
