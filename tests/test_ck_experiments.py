"""E1-E3 continuous-kernel experiments: registration, configs, quick runs end to end.

The quick runs take a few seconds in total; the full-mode claims (adding solved by CKCNN and
not by the k=3 TCN; mnist1d over seeds in tests/test_results_seeds.py) are ``training`` tests
(``make test-training``), deselected from the default and slow runs.
"""

from __future__ import annotations

import math

import pytest
import torch

from groupconv.experiments import get_experiment, list_experiments, run_experiment
from groupconv.experiments.ck_experiments import (
    EXPERIMENTS,
    KernelRegularizer,
    build_sequence_model,
    compare,
    resolution_study,
)
from groupconv.models.baselines import TCN
from groupconv.models.ckcnn import CKCNN

NAMES = ("adding", "copy-memory", "mnist1d", "mnist1d-resolution")

slow = pytest.mark.training


pytestmark = pytest.mark.usefixtures("one_thread")  # tiny tensors: 1 intra-op thread


def test_registered():
    assert set(NAMES) <= set(list_experiments())
    assert {e.name for e in EXPERIMENTS} == set(NAMES)
    for name in NAMES:
        exp = get_experiment(name)
        full, quick = exp.config(), exp.config(quick=True)
        assert "seed" in full and full.keys() == quick.keys()
        assert exp.description and exp.tags


def test_full_configs_match_the_protocol():
    assert get_experiment("adding").config()["seq_len"] == 200
    assert get_experiment("copy-memory").config()["seq_len"] == 100
    res = get_experiment("mnist1d-resolution").config()
    assert res["test_length"] == 80 and res["kernel"] == "magnet" and res["nyquist"] > 0


def test_unknown_config_key_fails_loudly():
    with pytest.raises(KeyError, match="no config key"):
        get_experiment("adding").config(overrides={"hiden": 3})
    with pytest.raises(ValueError, match="model must be"):
        build_sequence_model({"model": "lstm"}, 1, 1, "last")


def _sane(res, metric: str) -> None:
    assert res.metric_name == metric and res.selection == "val"
    assert res.test_metric is not None and math.isfinite(res.test_metric)
    assert res.best_epoch is not None and res.num_params > 0 and res.steps > 0


def test_quick_adding_and_tcn_variant():
    out = compare("adding", {"ckcnn": {}, "tcn": {"model": "tcn"}}, quick=True)
    for res in out.values():
        _sane(res, "mse")
        assert 0 < res.test_metric < 2.0
    assert out["tcn"].num_params < out["ckcnn"].num_params


def test_quick_copy_memory():
    res = run_experiment("copy-memory", quick=True, progress=False)
    _sane(res, "seq_ce")
    assert 0 < res.test_metric < math.log(10) + 0.5  # at most about uniform guessing


def test_quick_mnist1d():
    res = run_experiment("mnist1d", quick=True, progress=False)
    _sane(res, "accuracy")
    assert 0.0 <= res.test_metric <= 1.0


def test_quick_resolution_study():
    out = resolution_study({"magnet+nyquist": {"nyquist": 0.1}, "siren": {"kernel": "siren", "nyquist": 0.0}},
                           quick=True)
    for row in out.values():
        assert 0 <= row["acc_train_length"] <= 1 and 0 <= row["acc_test_length"] <= 1
        assert row["params"] > 0


def test_resolution_test_split_is_resampled():
    exp = get_experiment("mnist1d-resolution")
    cfg = exp.config(quick=True)
    model, data, kwargs = exp.build(cfg)
    assert data.test.tensors[0].shape[-1] == 80 and data.val.tensors[0].shape[-1] == 40
    assert data.info["test_at_train_length"].tensors[0].shape[-1] == 40
    assert isinstance(kwargs["regularizer"], KernelRegularizer)
    with torch.no_grad():
        model.eval()
        assert model(data.test.tensors[0][:3]).shape == (3, 10)  # any resolution


def test_kernel_regularizer():
    torch.manual_seed(0)
    net = CKCNN(1, 1, hidden_channels=2, num_blocks=1, kernel_net="magnet",
                kernel_net_kwargs={"input_scale": 256.0})
    net(torch.randn(1, 1, 20))
    pen = KernelRegularizer(nyquist=0.1)(net)
    assert pen > 0  # high-frequency MAGNet on a 20-sample grid violates Nyquist
    pen.backward()
    assert any(p.grad is not None and p.grad.abs().sum() > 0 for p in net.parameters())
    assert float(KernelRegularizer()(net)) == 0.0
    ln = KernelRegularizer(ln_weight=1.0)(net)
    assert ln > 0


def test_models_built_from_configs():
    cfg = get_experiment("adding").config()
    assert isinstance(build_sequence_model(cfg, 2, 1, "last"), CKCNN)
    assert isinstance(build_sequence_model({**cfg, "model": "tcn"}, 2, 1, "last"), TCN)
    for model in ("ccnn", "ckcnn", "flexnet", "cnn"):
        cfg = get_experiment("mnist1d").config(quick=True, overrides={"model": model})
        net = build_sequence_model(cfg, 1, 10, "mean")
        assert net(torch.randn(2, 1, 40)).shape == (2, 10)


# --------------------------------------------------------------------------- full runs (slow)
@pytest.mark.slow
@slow
def test_full_adding_ckcnn_beats_trivial_and_tcn_does_not():
    out = compare("adding", {"ckcnn": {}, "tcn": {"model": "tcn"}}, progress=False)
    assert out["ckcnn"].test_metric < 0.05
    assert out["tcn"].test_metric > 0.15

# mnist1d: the 3-seed check lives in tests/test_results_seeds.py (it superseded seed 0 >= 90 %)
