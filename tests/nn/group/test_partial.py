"""Partial G-CNN layers: the fully-equivariant switch (exact, equal to the full layer), gradients
to the learned extents and logits, the relaxed Bernoulli with the parameter as the logit, the
schedule, the regulariser, containers, serialisation, torch.compile and errors."""

from __future__ import annotations

import copy
import math
import pickle

import pytest
import torch
from _helpers import EXACT_TOL as TOL
from _helpers import rel_err, rot, rot_map
from torch import nn

from groupconv.groups import O2, SO2, CyclicGroup, DihedralGroup
from groupconv.nn.group.gconv import GroupConv, LiftingConv
from groupconv.nn.group.partial import (
    GroupSequential,
    PartialGroupConv,
    PartialLiftingConv,
    TemperatureSchedule,
    extents,
    monotonic_decay_loss,
    partial_param_groups,
    relaxed_bernoulli,
    set_fully_equivariant,
)
from groupconv.nn.group.pooling import GlobalInvariantPool, GroupBatchNorm

CASES = [
    (CyclicGroup(4), {}, 4),
    (SO2(), {"num_elements": 8, "kernel_net": "siren"}, 8),
    (O2(), {"num_elements": 8, "kernel_net": "mlp"}, 8),
]
IDS = ["C4-mask", "SO2-extent", "O2-extent-mirror"]


# -- the switch recovers the full layer exactly ----------------------------------------------------
@pytest.mark.parametrize("group,kw,n", CASES, ids=IDS)
def test_switch_equals_full_layer_and_is_equivariant(group, kw, n, device, float_dtype):
    torch.manual_seed(0)
    fk = {"device": device, "dtype": float_dtype}
    plift = PartialLiftingConv(2, 3, group, 3, padding=1, **kw, **fk)
    pconv = PartialGroupConv(3, 2, group, 3, padding=1, **kw, **fk)
    # partial layers keep the net read at the pixels of their (learned) grid: basis="pixel"
    lift = LiftingConv(2, 3, group, 3, padding=1, basis="pixel", **kw, **fk)
    conv = GroupConv(3, 2, group, 3, padding=1, basis="pixel", **kw, **fk)
    lift.load_state_dict(plift.state_dict(), strict=False)
    conv.load_state_dict(pconv.state_dict(), strict=False)
    x = torch.randn(2, 2, 7, 7, **fk)
    for m in (plift, pconv):
        m.set_fully_equivariant(True)
        assert m.fully_equivariant
    y = pconv(plift(x))
    torch.testing.assert_close(y, conv(lift(x)))  # other classes, other code path: a tolerance
    for k in (1, 2, 3):
        ref = rot_map(y, k, n, mirrors=isinstance(group, O2))
        assert rel_err(pconv(plift(rot(x, k))), ref) <= TOL[float_dtype]
    for m in (plift, pconv):
        m.set_fully_equivariant(False)
        if m.partial_mode == "mask":
            with torch.no_grad():
                m.element_logits.fill_(-5.0)
    assert not torch.equal(pconv(plift(x)), y)  # partial: a different (learned) support


def test_partial_false_constructor_and_model_switch():
    torch.manual_seed(1)
    G = CyclicGroup(4)
    net = GroupSequential(
        PartialLiftingConv(1, 4, G, 3, padding=1, partial=False), GroupBatchNorm(4), nn.ReLU(),
        PartialGroupConv(4, 4, G, 3, padding=1, init_keep=0.3), nn.ReLU(),
        PartialGroupConv(4, 3, G, 3, init_keep=0.3), GlobalInvariantPool(),
    )
    x = torch.randn(3, 1, 9, 9)
    net.eval()  # eval: deterministic masks, l < 0 drops every non-identity element
    assert not torch.allclose(net(rot(x, 1)), net(x), atol=1e-4)
    set_fully_equivariant(net, True)
    out = net(x)
    for k in (1, 2, 3):
        assert rel_err(net(rot(x, k)), out) <= 1e-5
    assert all(not v["partial"] for v in extents(net).values())


# -- continuous extent -----------------------------------------------------------------------------
def test_extent_grid_is_stratified_and_differentiable():
    torch.manual_seed(2)
    layer = PartialGroupConv(2, 2, SO2(), 3, num_elements=8, kernel_net="siren", init_extent=0.5)
    u = float(layer.extent().detach())
    assert abs(u - 0.5) < 1e-6
    gen = torch.Generator().manual_seed(0)
    grid = layer.partial_grid(gen)[:, 0]
    cell = 2 * math.pi * u / 8
    lo = -math.pi * u + cell * torch.arange(8, dtype=torch.float64)
    order = torch.argsort(grid.detach())
    assert bool(((grid.detach()[order] >= lo - 1e-9) & (grid.detach()[order] < lo + cell)).all())
    grid.sum().backward()
    assert layer.extent_logit.grad is not None and layer.extent_logit.grad.abs() > 0
    layer.eval()  # eval: the uniform grid scaled by u (identity first)
    assert torch.allclose(layer.partial_grid(None)[:, 0], u * SO2().grid(8, dtype=torch.float64)[:, 0])


@pytest.mark.parametrize("group", [SO2(), O2()], ids=["SO2", "O2"])
def test_gradients_reach_extent_through_the_network(group):
    torch.manual_seed(3)
    kw = {"num_elements": 8, "kernel_net": "mlp", "padding": 1, "dtype": torch.float64}
    lift = PartialLiftingConv(1, 3, group, 3, partial=False, **kw)
    conv = PartialGroupConv(3, 2, group, 3, init_extent=0.7, **kw)
    x = torch.randn(2, 1, 6, 6, dtype=torch.float64)

    def loss(logit: torch.Tensor) -> torch.Tensor:
        with torch.no_grad():
            conv.extent_logit.copy_(logit)
        h, grid = lift.forward_with_grid(x)
        y = conv(h, in_grid=None, generator=torch.Generator().manual_seed(5))
        return y.square().mean()

    base = conv.extent_logit.detach().clone()
    conv.zero_grad()
    loss(base).backward()
    g = float(conv.extent_logit.grad)
    eps = 1e-6
    with torch.no_grad():
        fd = (float(loss(base + eps)) - float(loss(base - eps))) / (2 * eps)
    assert g != 0.0 and abs(g - fd) <= 1e-5 * max(1.0, abs(fd))
    if group == O2():  # the mirror probability learns through the straight-through estimator
        assert conv.mirror_logit.grad is not None


# -- discrete masks --------------------------------------------------------------------------------
def test_relaxed_bernoulli_uses_the_parameter_as_logit():
    gen = torch.Generator().manual_seed(0)
    logits = torch.tensor([-2.0, 0.0, 1.0, -20.0, 20.0]).repeat(20000, 1)
    z = relaxed_bernoulli(logits, 0.5, gen)
    rate = z.mean(0)
    # P(keep) = sigmoid(l); the reference bug (sigmoid as logit) would give sigmoid(sigmoid(l)) > 0.5
    expect = torch.sigmoid(torch.tensor([-2.0, 0.0, 1.0, -20.0, 20.0]))
    assert torch.allclose(rate, expect, atol=0.015)
    assert set(z.unique().tolist()) <= {0.0, 1.0}
    lg = torch.zeros(4, requires_grad=True)
    relaxed_bernoulli(lg, 0.5, gen).sum().backward()
    assert bool((lg.grad > 0).all())  # straight-through: the soft sample's gradient
    soft = relaxed_bernoulli(torch.zeros(1000), 5.0, gen, hard=False)
    assert 0.0 < float(soft.min()) and float(soft.max()) < 1.0


@pytest.mark.parametrize("group,n_logits", [(CyclicGroup(4), 3), (DihedralGroup(4), 3)], ids=["C4", "D4"])
def test_element_masks(group, n_logits):
    torch.manual_seed(4)
    layer = PartialGroupConv(2, 2, group, 3, padding=1)
    assert layer.partial_mode == "mask" and layer.element_logits.shape == (n_logits,)
    n = layer.num_elements
    with torch.no_grad():
        layer.element_logits.copy_(torch.tensor([30.0, -30.0, 30.0]))
        if group == DihedralGroup(4):
            layer.mirror_logit.fill_(-30.0)
    x = torch.randn(1, 2, n, 5, 5)
    y = layer(x, generator=torch.Generator().manual_seed(0))
    kept = [0, 1, 3]  # identity, logit +30, logit +30 (and, for D4, no mirrored element)
    dropped = [i for i in range(n) if i not in kept]
    assert bool((y[:, :, dropped] == 0).all()) and bool((y[:, :, kept] != 0).all())
    y.sum().backward()
    assert layer.element_logits.grad is not None
    layer.eval()
    ye = layer(x)
    assert bool((ye[:, :, dropped] == 0).all())
    keep = layer.keep_probabilities()
    assert keep[0] == 1.0 and keep.shape == (n,)


def test_temperature_schedule():
    s = TemperatureSchedule(0.5, 1e-4, total_steps=10)
    assert s(0) == 0.5 and abs(s(10) - 1e-4) < 1e-12 and abs(s(5) - 0.25005) < 1e-12
    e = TemperatureSchedule(1.0, 0.01, total_steps=2, kind="exponential")
    assert abs(e(1) - 0.1) < 1e-12
    layer = PartialGroupConv(1, 1, CyclicGroup(4), 3)
    assert s.apply(layer, 10) == s(10) and abs(float(layer.temperature) - 1e-4) < 1e-9
    with pytest.raises(ValueError, match="total_steps"):
        TemperatureSchedule(total_steps=0)
    with pytest.raises(ValueError, match="kind"):
        TemperatureSchedule(kind="cosine")
    with pytest.raises(ValueError, match="step"):
        s(-1)


# -- regulariser, reporting, optimiser groups --------------------------------------------------------
def test_monotonic_decay_loss_and_extents():
    kw = {"num_elements": 4, "kernel_net": "mlp", "padding": 1}
    net = GroupSequential(
        PartialLiftingConv(1, 2, SO2(), 3, init_extent=0.9, **kw), nn.ReLU(),
        PartialGroupConv(2, 2, SO2(), 3, init_extent=0.4, **kw),
        PartialGroupConv(2, 2, SO2(), 3, init_extent=0.6, **kw), GlobalInvariantPool(),
    )
    loss = monotonic_decay_loss(net, weight=2.0)
    assert abs(float(loss.detach()) - 2.0 * 0.2) < 1e-5
    loss.backward()
    assert float(net[3].extent_logit.grad) > 0 and float(net[2].extent_logit.grad) < 0
    assert float(net[0].extent_logit.grad) == 0.0
    ext = extents(net)
    assert list(ext) == ["0", "2", "3"] and abs(ext["2"]["extent"] - 0.4) < 1e-6
    assert ext["2"]["mode"] == "extent" and ext["2"]["keep"] is None
    set_fully_equivariant(net, True)
    assert float(monotonic_decay_loss(net)) == 0.0
    groups = partial_param_groups(net, 1e-3, 1e-4, weight_decay=1e-2)
    assert len(groups[1]["params"]) == 3 and groups[1]["weight_decay"] == 0.0
    assert groups[0]["weight_decay"] == 1e-2
    x = torch.randn(2, 1, 6, 6)
    set_fully_equivariant(net, False)
    net(x, generator=torch.Generator().manual_seed(0)).sum().backward()  # grids flow layer to layer
    assert all(m.extent_logit.grad is not None for m in (net[0], net[2], net[3]))


# -- serialisation, compile, errors -----------------------------------------------------------------
@pytest.mark.parametrize("group,kw,n", CASES, ids=IDS)
def test_pickle_deepcopy_state_dict(group, kw, n):
    torch.manual_seed(6)
    layer = PartialGroupConv(2, 2, group, 3, **kw)
    x = torch.randn(1, 2, n, 5, 5)

    def run(m):
        return m(x, generator=torch.Generator().manual_seed(3))

    y = run(layer)
    for other in (copy.deepcopy(layer), pickle.loads(pickle.dumps(layer))):
        assert torch.equal(run(other), y)
    fresh = PartialGroupConv(2, 2, group, 3, **kw)
    fresh.load_state_dict(layer.state_dict())
    assert torch.equal(run(fresh), y)
    assert "temperature" in layer.state_dict()


@pytest.mark.slow  # ~9-12 s on the shared 2-core machine
def test_torch_compile_matches_eager():
    torch.manual_seed(7)
    layer = PartialGroupConv(2, 2, SO2(), 3, num_elements=4, kernel_net="mlp", padding=1).eval()
    x = torch.randn(1, 2, 4, 5, 5)
    compiled = torch.compile(layer, backend="aot_eager", fullgraph=False)
    assert torch.allclose(compiled(x), layer(x), atol=1e-6)


def test_bad_inputs():
    with pytest.raises(ValueError, match="mode"):
        PartialGroupConv(1, 1, CyclicGroup(4), 3, mode="soft")
    with pytest.raises(ValueError, match="continuous"):
        PartialGroupConv(1, 1, CyclicGroup(4), 3, mode="extent")
    with pytest.raises(ValueError, match="kernel_net"):
        PartialGroupConv(1, 1, SO2(), 3, num_elements=4, mode="extent")
    with pytest.raises(ValueError, match="init_extent"):
        PartialGroupConv(1, 1, SO2(), 3, num_elements=4, kernel_net="mlp", init_extent=1.0)
    with pytest.raises(ValueError, match="init_keep"):
        PartialGroupConv(1, 1, CyclicGroup(4), 3, init_keep=0.0)
    with pytest.raises(ValueError, match="temperature"):
        PartialGroupConv(1, 1, CyclicGroup(4), 3, temperature=-1.0)
    from groupconv.sampling import StratifiedSampler

    with pytest.raises(ValueError, match="deterministic grid"):
        PartialGroupConv(1, 1, SO2(), 3, num_elements=4, kernel_net="mlp", mode="mask",
                         sampler=StratifiedSampler())
    with pytest.raises(ValueError, match="x must have shape"):
        PartialGroupConv(1, 1, CyclicGroup(4), 3)(torch.randn(1, 1, 3, 5, 5))
    with pytest.raises(TypeError, match="model"):
        extents("net")
    with pytest.raises(ValueError, match="weight"):
        monotonic_decay_loss(nn.Linear(1, 1), weight=-1.0)
