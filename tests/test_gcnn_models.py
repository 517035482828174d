"""G-CNN models: exact invariance (checked with the verification kit against torch.rot90/flip),
equivariance of the feature maps, serialisation, torch.compile and argument errors."""

import copy
import io
import math
import pickle

import pytest
import torch

from groupconv.groups import O2, SO2, CyclicGroup, DihedralGroup
from groupconv.models.ckgresnet import CKGResNet
from groupconv.models.gcnn import GCNN, Z2CNN, count_parameters
from groupconv.spaces import GroupGridField, ImageField, TrivialField
from groupconv.testing import assert_equivariant, assert_invariant, equivariance_error


def _c4(**kw):
    return GCNN(1, 5, CyclicGroup(4), channels=(3, 3, 3), pool_after=(0, 1), **kw)


def _so2(**kw):
    return GCNN(1, 5, SO2(), channels=(2, 2), num_elements=8, kernel_net="siren", pool_after=(0,),
                mask_radius=1.5, **kw)


def _d4():
    return GCNN(2, 4, DihedralGroup(4), channels=(2, 2), pool_after=(1,))


def _ckg():
    return CKGResNet(1, 5, hidden_channels=(2, 3), kernel_size=3, pool_after=(0,))


def _so2_linear_pool():  # the rotated-digits layout: steerable discrete basis, linear BlurPool
    return GCNN(1, 5, SO2(), channels=(2, 2), num_elements=8, pool_after=(0,), blurpool_max=False)


MODELS = {"c4": _c4, "so2-8": _so2, "so2-8-linear-pool": _so2_linear_pool, "d4": _d4, "ckgresnet": _ckg}


def _input(net, dtype=torch.float32, device="cpu", size=8):
    g = torch.Generator().manual_seed(0)
    return torch.randn(3, net.in_channels, size, size, generator=g, dtype=dtype).to(device)


@pytest.mark.parametrize("name", list(MODELS))
def test_invariant_under_exact_grid_elements(name, device, float_dtype):
    torch.manual_seed(0)
    net = MODELS[name]().to(device=device, dtype=float_dtype).eval()
    x = _input(net, float_dtype, device)
    report = assert_invariant(net, x)  # the model's in_field: every exact element of its group
    # the kit's default elements include the rotations by 90 degrees (and the mirrors for D4)
    assert len(report.rows) >= 4 and all(r.exact for r in report.rows)
    # independent reference: torch.rot90 / torch.flip and the raw outputs
    y = net(x)
    for k in (1, 2, 3):
        torch.testing.assert_close(net(torch.rot90(x, k, dims=(-2, -1))), y)
    if name == "d4":
        torch.testing.assert_close(net(torch.flip(x, dims=(-1,))), y)


def test_features_are_equivariant_group_maps(device):
    torch.manual_seed(0)
    net = _c4().to(device).eval()
    x = _input(net, torch.float64, device).float()
    G = net.group
    field = GroupGridField(G, net.convs[0].out_grid)
    assert_equivariant(net.features, x, in_field=ImageField(G), out_field=field)
    # reference by hand: rotating the input rotates the maps and rolls the group axis by +1
    f = net.features(x)
    torch.testing.assert_close(net.features(torch.rot90(x, 1, dims=(-2, -1))),
                               torch.roll(torch.rot90(f, 1, dims=(-2, -1)), 1, dims=2))


def test_plain_cnn_is_not_invariant():
    torch.manual_seed(0)
    cnn = Z2CNN(1, 5, channels=(6, 6), pool_after=(0,)).eval()
    x = _input(cnn)
    r = equivariance_error(cnn, x, torch.tensor([math.pi / 2]), ImageField(SO2()), TrivialField())
    assert r.rel_error > 1e-3


def test_parameter_counts_are_similar():
    from groupconv.experiments.gconv_experiments import DIGITS_DEFAULTS, build_digits_model

    n = {m: count_parameters(build_digits_model(m, DIGITS_DEFAULTS)) for m in ("cnn", "c4", "so2")}
    assert max(n.values()) / min(n.values()) < 1.5, n


@pytest.mark.parametrize("name", list(MODELS))
def test_pickle_deepcopy_state_dict_bit_exact(name):
    torch.manual_seed(0)
    net = MODELS[name]().eval()
    x = _input(net)
    y = net(x)
    assert torch.equal(copy.deepcopy(net)(x), y)
    assert torch.equal(pickle.loads(pickle.dumps(net))(x), y)
    buf = io.BytesIO()
    torch.save(net.state_dict(), buf)
    buf.seek(0)
    torch.manual_seed(1)
    fresh = MODELS[name]().eval()
    assert not torch.equal(fresh(x), y)
    fresh.load_state_dict(torch.load(buf, weights_only=True))
    assert torch.equal(fresh(x), y)
    assert set(net.state_dict()) == set(net.train().state_dict())


def test_gradients_reach_every_parameter():
    torch.manual_seed(0)
    for build in MODELS.values():
        net = build().train()
        net(_input(net)).square().sum().backward()
        missing = [n for n, p in net.named_parameters() if p.grad is None]
        assert not missing, missing


@pytest.mark.slow
def test_torch_compile_same_outputs():
    torch.manual_seed(0)
    net = _c4().eval()
    x = _input(net)
    compiled = torch.compile(net)
    torch.testing.assert_close(compiled(x), net(x), rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("size", [8, 9])
def test_linear_blurpool_option_is_exact_at_90_degrees_for_odd_and_even_maps(size):
    torch.manual_seed(0)
    net = _so2_linear_pool().eval()
    assert net.pool.max_first is False and _so2().pool.max_first is True
    x = _input(net, torch.float64, size=size)
    net = net.double()
    y = net(x)
    for k in (1, 2, 3):
        torch.testing.assert_close(net(torch.rot90(x, k, dims=(-2, -1))), y, rtol=1e-9, atol=1e-9)
    # the option changes the network: same weights, the max-first pool gives other logits
    other = GCNN(1, 5, SO2(), channels=(2, 2), num_elements=8, pool_after=(0,)).double().eval()
    other.load_state_dict(net.state_dict())
    assert (other(x) - y).abs().max() > 1e-3


def test_errors_name_the_argument():
    with pytest.raises(TypeError, match="blurpool_max"):
        GCNN(1, 10, SO2(), channels=(2,), pool_after=(), num_elements=8, blurpool_max=1)
    with pytest.raises(ValueError, match="channels"):
        GCNN(1, 10, CyclicGroup(4), channels=())
    with pytest.raises(ValueError, match="pool_after"):
        GCNN(1, 10, CyclicGroup(4), channels=(2, 2), pool_after=(5,))
    with pytest.raises(ValueError, match="norm"):
        GCNN(1, 10, CyclicGroup(4), channels=(2,), pool_after=(), norm="group")
    with pytest.raises(TypeError, match="group"):
        GCNN(1, 10, "C4")
    with pytest.raises(ValueError, match="kernel_size must be odd"):
        GCNN(1, 10, CyclicGroup(4), channels=(2,), pool_after=(), kernel_size=4)
    net = _c4()
    with pytest.raises(ValueError, match=r"x must have shape \(B, in_channels=1"):
        net(torch.randn(2, 3, 8, 8))
    with pytest.raises(ValueError, match="even"):
        net.eval()(torch.randn(1, 1, 9, 9))
    with pytest.raises(ValueError, match="sampler must be deterministic"):
        from groupconv.sampling import StratifiedSampler

        CKGResNet(1, 2, sampler=StratifiedSampler())
    with pytest.raises(ValueError, match="hidden_channels"):
        CKGResNet(1, 2, hidden_channels=())


def test_lifting_kernels_layout():
    net = _c4()
    k = net.lifting_kernels()
    assert k.shape == (3, 4, 1, 3, 3)
    # the C4 copies are exact rotations of the first one (torch.rot90 reference)
    for j in range(4):
        torch.testing.assert_close(k[:, j], torch.rot90(k[:, 0], j, dims=(-2, -1)))
    assert Z2CNN(1, 3, channels=(4,), pool_after=()).lifting_kernels().shape == (4, 1, 1, 3, 3)


# -- CKGResNet: separable kernels and learned partial equivariance --------------------------------
def _ckg_opt(**kw):
    return CKGResNet(1, 3, hidden_channels=(2, 3), kernel_size=3, pool_after=(0,), **kw)


def _rot_err(net, x, k=1):
    return (net(torch.rot90(x, k, dims=(-2, -1))) - net(x)).abs().max().item()


@pytest.mark.parametrize("variant", [True, "gseparable", "dseparable", "dgseparable"])
def test_ckgresnet_separable_invariant(variant, device):
    from groupconv.nn import SeparableGroupConv

    torch.manual_seed(0)
    net = _ckg_opt(separable=variant).to(device).eval()
    convs = [m for m in net.modules() if isinstance(m, SeparableGroupConv)]
    assert len(convs) == 4
    assert {c.variant for c in convs} == {"separable" if variant is True else variant}
    # the separable convs live on the lifting conv's grid
    assert all(torch.equal(c.out_grid, net.lift.out_grid) for c in convs)
    x = _input(net, device=device)
    report = assert_invariant(net, x)
    assert len(report.rows) >= 4 and all(r.exact for r in report.rows)
    y = net(x)
    for k in (1, 2, 3):  # independent reference
        torch.testing.assert_close(net(torch.rot90(x, k, dims=(-2, -1))), y)


def test_ckgresnet_separable_d4_mirror_invariant(float_dtype):
    torch.manual_seed(0)
    net = _ckg_opt(group=DihedralGroup(4), separable=True).to(float_dtype).eval()
    x = _input(net, float_dtype)
    assert_invariant(net, x)
    torch.testing.assert_close(net(torch.flip(x, dims=(-1,))), net(x))


@pytest.mark.parametrize("group,mode", [(SO2(), "extent"), (O2(), "extent"), (DihedralGroup(4), "mask")])
def test_ckgresnet_partial_switched_to_full_is_invariant(group, mode, device, float_dtype):
    torch.manual_seed(0)
    net = _ckg_opt(group=group, partial=True, init_extent=0.7, init_keep=0.3)
    net = net.to(device=device, dtype=float_dtype).eval()
    assert {info["mode"] for info in net.extents().values()} == {mode}
    assert not net.fully_equivariant
    x = _input(net, float_dtype, device)
    # partial: a learned support smaller than H (u = 0.7, or elements dropped) breaks invariance
    assert _rot_err(net, x) > 1e-3
    net.set_fully_equivariant(True)
    assert net.fully_equivariant
    assert all(info["measure"] == 1.0 for info in net.extents().values())
    report = assert_invariant(net, x)
    assert all(r.exact for r in report.rows)
    y = net(x)
    for k in (1, 2, 3):
        torch.testing.assert_close(net(torch.rot90(x, k, dims=(-2, -1))), y)
    if mode == "mask" or isinstance(group, O2):
        torch.testing.assert_close(net(torch.flip(x, dims=(-1,))), y)
    # the constructor flag builds the same control; switching back restores the partial layers
    torch.manual_seed(0)
    ctrl = _ckg_opt(group=group, partial=True, init_extent=0.7, init_keep=0.3,
                    fully_equivariant=True).to(device=device, dtype=float_dtype).eval()
    torch.testing.assert_close(ctrl(x), y)
    net.set_fully_equivariant(False)
    assert not net.fully_equivariant and _rot_err(net, x) > 1e-3


def test_ckgresnet_partial_extent_mode_uses_pointwise_shortcuts():
    from groupconv.nn import PartialGroupConv, PointwiseGroupConv

    net = _ckg_opt(partial=True)
    assert all(isinstance(b.shortcut, PointwiseGroupConv) for b in net.blocks)
    assert all(isinstance(b.conv1, PartialGroupConv) for b in net.blocks)
    assert type(net.lift).__name__ == "LiftingConv"  # the lifting stays fully equivariant
    assert sorted(net.extents()) == [f"blocks.{i}.conv{j}" for i in (0, 1) for j in (1, 2)]
    masked = _ckg_opt(group=CyclicGroup(4), partial=True)
    assert not any(isinstance(b.shortcut, PointwiseGroupConv) for b in masked.blocks)
    lifted = _ckg_opt(partial=True, partial_lifting=True)
    assert "lift" in lifted.extents() and len(lifted.extents()) == 5


@pytest.mark.parametrize("group,param", [(SO2(), "extent_logit"), (CyclicGroup(4), "element_logits")])
def test_ckgresnet_partial_trains_with_gradients_reaching_extents(group, param):
    torch.manual_seed(0)
    net = _ckg_opt(group=group, partial=True, init_keep=0.6).train()
    opt = torch.optim.SGD(net.param_groups(lr=0.05, lr_partial=0.5), lr=0.05)
    x, labels = _input(net), torch.tensor([0, 1, 2])
    before = {n: p.detach().clone() for n, p in net.named_parameters() if n.endswith(param)}
    assert len(before) == 4
    gen = torch.Generator().manual_seed(3)
    loss = torch.nn.functional.cross_entropy(net(x, generator=gen), labels) + net.regularizer(1e-3)
    opt.zero_grad()
    loss.backward()
    missing = [n for n, p in net.named_parameters() if p.grad is None]
    assert not missing, missing
    assert all(net.get_parameter(n).grad.abs().sum() > 0 for n in before)
    opt.step()
    assert all(not torch.equal(net.get_parameter(n), before[n]) for n in before)
    # a generator makes the sampled grids / masks reproducible
    out = [net(x, generator=torch.Generator().manual_seed(7)) for _ in range(2)]
    assert torch.equal(out[0], out[1])


@pytest.mark.parametrize("kw", [{"partial": True}, {"partial": True, "group": CyclicGroup(4)},
                                {"separable": "dgseparable"}], ids=["extent", "mask", "separable"])
def test_ckgresnet_options_pickle_state_dict_bit_exact(kw):
    torch.manual_seed(0)
    net = _ckg_opt(**kw)
    if kw.get("partial"):  # move the learned supports away from their initial values
        with torch.no_grad():
            for name, p in net.named_parameters():
                if name.endswith(("extent_logit", "element_logits")):
                    p.sub_(torch.linspace(1.5, 3.0, p.numel()).view_as(p))
    net.eval()
    x = _input(net)
    y = net(x)
    assert torch.equal(copy.deepcopy(net)(x), y)
    clone = pickle.loads(pickle.dumps(net))
    assert torch.equal(clone(x), y)
    if kw.get("partial"):
        assert clone.extents() == net.extents()
    buf = io.BytesIO()
    torch.save(net.state_dict(), buf)
    buf.seek(0)
    torch.manual_seed(1)
    fresh = _ckg_opt(**kw).eval()
    assert not torch.equal(fresh(x), y)
    fresh.load_state_dict(torch.load(buf, weights_only=True))
    assert torch.equal(fresh(x), y)


def test_ckgresnet_option_errors():
    with pytest.raises(ValueError, match="separable must be"):
        CKGResNet(1, 2, separable="sim2")
    with pytest.raises(ValueError, match="separable and partial"):
        CKGResNet(1, 2, separable=True, partial=True)
    with pytest.raises(ValueError, match="need partial=True"):
        CKGResNet(1, 2, fully_equivariant=True)
    with pytest.raises(TypeError, match="partial must be a bool"):
        CKGResNet(1, 2, partial="yes")
    with pytest.raises(ValueError, match="partial=True"):
        CKGResNet(1, 2, hidden_channels=2, num_blocks=1).set_fully_equivariant(True)
    with pytest.raises(ValueError, match="mode"):
        CKGResNet(1, 2, hidden_channels=2, num_blocks=1, partial=True, partial_mode="bogus")
    assert CKGResNet(1, 2, hidden_channels=2, num_blocks=1).extents() == {}
