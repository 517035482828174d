"""E5 partial G-CNN experiments ("six-rotated", "six-mirrored") and the PartialGCNN model."""

import json
import math

import pytest
import torch

from groupconv.experiments import get_experiment, list_experiments, read_metrics, run_experiment
from groupconv.experiments.partial_experiments import (
    PARTIAL_DEFAULTS,
    PartialTrainResult,
    build_partial_model,
    format_partial_report,
    pair_agreement,
    partial_data,
    run_partial_experiment,
)
from groupconv.groups import O2, SO2, CyclicGroup, DihedralGroup
from groupconv.models.partial_gcnn import PartialGCNN
from groupconv.spaces import ImageField
from groupconv.testing import assert_invariant

NAMES = ("six-rotated", "six-mirrored")
ROT180 = torch.tensor([[math.pi]])


def _logit(p):
    return math.log(p / (1 - p))


def _model(group, **kw):
    kw = {"channels": (3, 3, 3), "pool_after": (0, 1), **kw}
    return PartialGCNN(1, 2, group, **kw)


# -- the experiments -----------------------------------------------------------------------------
def test_registered():
    assert set(NAMES) <= set(list_experiments())
    assert get_experiment("six-rotated").config()["group"] == "SO2"
    cfg = get_experiment("six-mirrored").config(quick=True)
    assert cfg["group"] == "O2" and cfg["mode"] == "extent" and cfg["epochs"] == 2


@pytest.mark.parametrize("name", NAMES)
def test_quick_run_reports_extents(name, tmp_path):
    rep = run_partial_experiment(name, quick=True, config={"epochs": 1}, verbose=False,
                                 out_dir=tmp_path, progress=False, max_steps=3)
    part, ctrl = rep["partial"], rep["control"]
    assert set(part["extents"]) == {"conv0", "conv1"}
    assert part["extents"]["conv0"]["partial"] is False and part["extents"]["conv1"]["partial"] is True
    assert 0 < part["extents"]["conv1"]["extent"] < 1
    if name == "six-mirrored":
        assert 0 < part["extents"]["conv1"]["mirror"] < 1
    else:
        assert part["extents"]["conv1"]["mirror"] is None
    assert not any(v["partial"] for v in ctrl["extents"].values())
    # the fully invariant control: every pair predicted alike, so exactly 50% by construction
    assert ctrl["pair_agreement"] == 1.0 and ctrl["test_accuracy"] == 0.5
    res = rep["results"]["partial"]
    assert isinstance(res, PartialTrainResult) and res.extents == part["extents"]
    assert [h["epoch"] for h in res.extent_history] == [1]
    # the extents are in the metrics JSON of each run and in the report
    assert read_metrics(tmp_path / "partial")["extents"]["conv1"]["partial"] is True
    side = json.loads((tmp_path / "partial" / "partial_extents.json").read_text())
    assert side["best_epoch"] == 1 and side["selected"] == part["extents"]
    assert json.loads((tmp_path / "report.json").read_text())["control"]["test_accuracy"] == 0.5
    text = format_partial_report(rep)
    assert "extents: conv0 full | conv1 u=" in text and "QUICK" in text


def test_registry_path_writes_extents(tmp_path, capsys):
    res = run_experiment("six-rotated", quick=True, config={"epochs": 1}, out_dir=tmp_path, progress=False,
                         max_steps=2)
    assert res.test_metric is not None
    side = json.loads((tmp_path / "partial_extents.json").read_text())
    assert set(side["selected"]) == {"conv0", "conv1"}
    assert "selected epoch 1 extents: conv0 full | conv1 u=" in capsys.readouterr().out


def test_config_switches():
    cfg = get_experiment("six-rotated").config(quick=True, overrides={"finite_order": 4})
    net = build_partial_model(cfg)
    assert isinstance(net.group, CyclicGroup) and net.convs[1].partial_mode == "mask"
    cfg = get_experiment("six-mirrored").config(quick=True, overrides={"finite_order": 4})
    assert isinstance(build_partial_model(cfg).group, DihedralGroup)
    cfg = get_experiment("six-rotated").config(quick=True, overrides={"fully_equivariant": True})
    assert build_partial_model(cfg).fully_equivariant
    with pytest.raises(ValueError, match="'group'"):
        build_partial_model({**PARTIAL_DEFAULTS, "group": "SE2"})
    with pytest.raises(ValueError, match="name must be"):
        partial_data("six-scaled", PARTIAL_DEFAULTS)
    with pytest.raises(KeyError, match="no config key"):
        get_experiment("six-rotated").config(overrides={"extent": 0.5})


def test_pair_agreement_detects_a_non_invariant_model():
    data = partial_data("six-rotated", {**PARTIAL_DEFAULTS, "size": 16})
    torch.manual_seed(0)
    net = _model(SO2())
    # "more ink in the top half or in the bottom half": not rotation invariant
    lin = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(256, 2, bias=False))
    half = torch.zeros(2, 16, 16)
    half[0, :8], half[1, 8:] = 1.0, 1.0
    lin[1].weight.data.copy_(half.view(2, 256))
    assert pair_agreement(lin, data) < 0.2
    net.set_fully_equivariant(True)
    assert pair_agreement(net, data) == 1.0


# -- the model -----------------------------------------------------------------------------------
@pytest.mark.parametrize("group", [SO2(), O2(), CyclicGroup(4), DihedralGroup(4)], ids=lambda g: g.name)
def test_fully_equivariant_model_is_exactly_invariant(group, device, float_dtype):
    kw = {} if not group.is_finite else {"kernel_net": None, "num_elements": None}
    torch.manual_seed(0)
    net = _model(group, fully_equivariant=True, **kw).to(device=device, dtype=float_dtype).eval()
    x = torch.randn(2, 1, 16, 16, device=device, dtype=float_dtype)
    rep = assert_invariant(net, x, in_field=ImageField(group))
    assert rep.passed and len(rep.rows) >= 4  # identity, the rotations by 90 degrees (mirrors)


def test_partial_model_breaks_rot180_and_switches_back():
    torch.manual_seed(0)
    net = _model(SO2()).eval()
    for conv in net.convs[1:]:
        conv.extent_logit.data.fill_(_logit(0.3))
    x = torch.randn(4, 1, 16, 16)
    rot = torch.rot90(x, 2, dims=(-2, -1))
    assert (net(x) - net(rot)).abs().max() > 1e-3
    net.set_fully_equivariant(True)
    assert net.fully_equivariant
    torch.testing.assert_close(net(x), net(rot), atol=1e-5, rtol=1e-5)
    net.set_fully_equivariant(False)  # the lifting layer stays full
    assert [c.partial for c in net.convs] == [False, True, True]
    assert (net(x) - net(rot)).abs().max() > 1e-3
    with pytest.raises(AssertionError):  # the kit agrees (EquivarianceError is an AssertionError)
        assert_invariant(net, x, ROT180, in_field=ImageField(SO2()))


def test_partial_model_mirror_mask():
    torch.manual_seed(0)
    net = _model(O2()).eval()
    flip = lambda t: torch.flip(t, dims=(-1,))  # noqa: E731
    for conv in net.convs[1:]:
        conv.extent_logit.data.fill_(40.0)  # u = 1: the whole circle
    x = torch.randn(3, 1, 16, 16)
    torch.testing.assert_close(net(x), net(flip(x)), atol=1e-5, rtol=1e-5)  # mirrors kept: invariant
    net.convs[-1].mirror_logit.data.fill_(-5.0)  # drop the mirrored elements of the last layer
    assert (net(x) - net(flip(x))).abs().max() > 1e-3
    ext = net.extents()
    assert ext["conv2"]["mirror"] < 0.01 and ext["conv1"]["mirror"] == pytest.approx(0.88)


def test_model_helpers_and_training_step():
    torch.manual_seed(0)
    net = _model(SO2(), partial_lifting=True)
    assert [c.partial for c in net.convs] == [True, True, True]
    groups = net.param_groups(1e-3, 1e-1)
    assert [len(g["params"]) for g in groups][1] == 3 and groups[1]["lr"] == 0.1
    for conv, u in zip(net.convs, (0.5, 0.9, 0.7), strict=True):
        conv.extent_logit.data.fill_(_logit(u))
    assert float(net.regularizer(1.0).detach()) == pytest.approx(0.4, abs=1e-5)
    g = torch.Generator().manual_seed(0)
    out = net(torch.randn(4, 1, 16, 16), generator=g)
    out.sum().backward()
    assert all(c.extent_logit.grad is not None for c in net.convs)
    assert "fully_equivariant=False" in repr(net)


@pytest.mark.parametrize("kwargs, match", [
    ({"channels": ()}, "channels"),
    ({"channels": 4}, "channels"),
    ({"pool_after": (3,)}, "pool_after"),
    ({"kernel_size": 0}, "kernel_size"),
    ({"group": "SO2"}, "group"),
])
def test_model_errors(kwargs, match):
    with pytest.raises((ValueError, TypeError), match=match):
        PartialGCNN(1, 2, **kwargs)


def test_model_input_errors():
    net = _model(SO2(), channels=(2,), pool_after=())
    with pytest.raises(ValueError, match="x must have shape"):
        net(torch.randn(2, 3, 8, 8))


# -- the full runs (minutes) ---------------------------------------------------------------------
#: six-rotated over seeds 0, 1, 2 on an AMD EPYC (2 shared cores, 2026-12-02): test accuracy 1.0,
#: 1.0, 1.0; learned measure conv1 0.41 / 0.47 / 0.38, conv2 0.90 / 0.59 / 0.90 (init 0.95). The
#: old single-seed assertion "conv2 < 0.9" sat on the knife's edge (0.9009 on seed 0). The claims
#: below hold on every seed with a margin, or on the seed mean.
SEEDS = (0, 1, 2)


@pytest.mark.training
def test_six_rotated_claims_hold_over_seeds():
    reports = [run_partial_experiment("six-rotated", config={"seed": s}, control=(s == 0), verbose=False,
                                      progress=False) for s in SEEDS]
    control = reports[0]["control"]  # exact by construction: an invariant model cannot tell 6 from 9
    assert control["test_accuracy"] == 0.5 and control["pair_agreement"] == 1.0
    init = reports[0]["config"]["init_extent"]
    per_seed = []
    for rep in reports:
        assert rep["partial"]["test_accuracy"] >= 0.95  # 1.0 on every seed measured
        measures = [e["measure"] for e in rep["partial"]["extents"].values() if e["partial"]]
        assert min(measures) < 0.6 < init  # some layer gave up most of SO(2): <= 0.47 measured
        per_seed.append(sum(measures) / len(measures))
    assert sum(per_seed) / len(per_seed) < 0.8  # seed mean of the mean partial measure: 0.61 measured


#: six-mirrored (init_keep 0.3) over seeds 0-4 on an AMD EPYC (2 shared cores, 2026-12-02):
#: test accuracy 0.972 / 0.986 / 1.0 / 0.972 / 0.986 (validation-selected; val 1.0 on every seed),
#: pairs predicted alike <= 0.056. With the old init_keep 0.7: 1.0 / 0.542 / 0.500 over seeds
#: 0-2 (issue 10).
@pytest.mark.training
def test_six_mirrored_claims_hold_over_seeds():
    reports = [run_partial_experiment("six-mirrored", config={"seed": s}, control=(s == 0), verbose=False,
                                      progress=False) for s in SEEDS]
    control = reports[0]["control"]  # exact by construction: an invariant model cannot tell 6 from its mirror
    assert control["test_accuracy"] == 0.5 and control["pair_agreement"] == 1.0
    for rep in reports:
        assert rep["partial"]["test_accuracy"] >= 0.95  # >= 0.972 on seeds 0-4 measured
        assert rep["partial"]["pair_agreement"] <= 0.1  # <= 0.056 measured: pairs told apart
        # some group conv dropped the reflections in the selected model (mirror p <= 0.15 measured)
        assert min(e["mirror"] for e in rep["partial"]["extents"].values() if e["partial"]) < 0.5
