"""The training loop: learning, validation-selected test metric, checkpoint/resume, determinism, files."""

from __future__ import annotations

import csv
import json

import pytest
import torch
from torch import nn
from torch.utils.data import TensorDataset

from groupconv.data import adding_problem, copy_memory, rotated_digits
from groupconv.experiments import (
    Experiment,
    SmokeCNN,
    Trainer,
    accuracy,
    fit,
    get_experiment,
    get_loss,
    list_experiments,
    plot_history,
    read_metrics,
    register_experiment,
    run_experiment,
)

pytest.importorskip("sklearn")


pytestmark = pytest.mark.usefixtures("one_thread")  # tiny tensors: 1 intra-op thread


def _toy(n: int = 96, seed: int = 0) -> tuple[TensorDataset, TensorDataset, TensorDataset]:
    """A noisy 3-class problem on 6 features (so validation accuracy fluctuates)."""
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(3 * n, 6, generator=g)
    y = (x[:, 0] + 0.5 * x[:, 1] > 0).long() + (x[:, 2] > 1).long()
    x = x + 0.8 * torch.randn(x.shape, generator=g)
    return (
        TensorDataset(x[:n], y[:n]),
        TensorDataset(x[n : 2 * n], y[n : 2 * n]),
        TensorDataset(x[2 * n :], y[2 * n :]),
    )


def _mlp(seed: int = 0) -> nn.Module:
    torch.manual_seed(seed)
    return nn.Sequential(nn.Linear(6, 16), nn.ReLU(), nn.Dropout(0.2), nn.Linear(16, 3))


def _params(model: nn.Module) -> list[torch.Tensor]:
    return [p.detach().clone() for p in model.state_dict().values()]


KW = dict(epochs=4, lr=0.02, batch_size=16, device="cpu", progress=False, seed=3)


def test_smoke_cnn_learns_rotated_digits():
    data = rotated_digits(size=12, rotations=None, seed=0, train_fraction=0.5)
    torch.manual_seed(0)
    res = fit(SmokeCNN(1, 10, 12), data, epochs=6, lr=1e-2, batch_size=32, device="cpu", progress=False)
    losses = res.train_losses
    assert losses[-1] < 0.6 * losses[0], losses
    assert res.test_metric > 0.6 and res.metric_name == "accuracy" and res.higher_is_better
    assert res.num_params == sum(p.numel() for p in SmokeCNN(1, 10, 12).parameters())
    assert res.selection == "val" and res.steps == 6 * len(range(0, data.sizes["train"], 32))


def test_test_metric_is_taken_at_the_best_validation_epoch():
    tr, va, te = _toy()
    per_epoch_test = {}

    def record(trainer: Trainer, rec) -> None:  # independent test accuracy of every epoch's state
        trainer.model.eval()
        with torch.no_grad():
            per_epoch_test[rec.epoch] = float(accuracy(trainer.model(te.tensors[0]), te.tensors[1]))
        trainer.model.train()

    res = fit(_mlp(), (tr, va, te), callbacks=[record], **{**KW, "epochs": 8, "lr": 0.1, "scheduler": None})
    vals = res.val_metrics
    best = max(range(len(vals)), key=lambda i: (vals[i], -i)) + 1  # first epoch with the max
    assert res.best_epoch == best and res.best_val_metric == vals[best - 1]
    assert res.test_metric == pytest.approx(per_epoch_test[best], abs=1e-6)
    # the selection matters here: neither the last epoch nor the best test epoch would give it
    assert res.best_epoch != len(vals) and abs(res.test_metric - per_epoch_test[len(vals)]) > 1e-3
    assert abs(res.test_metric - max(per_epoch_test.values())) > 1e-3


def test_deterministic_twice():
    a_model, b_model = _mlp(), _mlp()
    a = fit(a_model, _toy(), deterministic=True, **KW)
    assert not torch.are_deterministic_algorithms_enabled()  # restored
    b = fit(b_model, _toy(), **KW)
    strip = [{k: v for k, v in h.to_dict().items() if k != "time_s"} for h in a.history]
    assert strip == [{k: v for k, v in h.to_dict().items() if k != "time_s"} for h in b.history]
    assert all(torch.equal(p, q) for p, q in zip(_params(a_model), _params(b_model)))
    assert a.test_metric == b.test_metric


def test_resume_gives_the_uninterrupted_result(tmp_path):
    ref_model = _mlp()
    ref = fit(ref_model, _toy(), out_dir=tmp_path / "ref", **KW)

    class Stop(Exception):
        pass

    def interrupt(trainer, rec):
        if rec.epoch == 2:
            raise Stop

    with pytest.raises(Stop):
        fit(_mlp(), _toy(), out_dir=tmp_path / "run", callbacks=[interrupt], **KW)
    ck = torch.load(tmp_path / "run" / "checkpoint.pt", weights_only=True)
    assert ck["epoch"] == 2
    resumed_model = _mlp(seed=99)  # whatever the initialisation, the checkpoint wins
    res = fit(resumed_model, _toy(), out_dir=tmp_path / "run", **KW)
    assert [h.epoch for h in res.history] == [1, 2, 3, 4]
    for h1, h2 in zip(ref.history, res.history):
        assert (h1.train_loss, h1.val_metric, h1.lr, h1.steps) == (
            h2.train_loss,
            h2.val_metric,
            h2.lr,
            h2.steps,
        )
    assert (res.best_epoch, res.test_metric, res.test_loss) == (
        ref.best_epoch,
        ref.test_metric,
        ref.test_loss,
    )
    assert all(torch.equal(p, q) for p, q in zip(_params(ref_model), _params(resumed_model)))
    # a finished run resumes to the same result without training
    again = fit(_mlp(seed=5), _toy(), out_dir=tmp_path / "run", **KW)
    assert again.test_metric == ref.test_metric and again.steps == ref.steps
    with pytest.raises(ValueError, match="different settings.*lr"):
        fit(_mlp(), _toy(), out_dir=tmp_path / "run", **{**KW, "lr": 0.5})
    fresh = fit(_mlp(), _toy(), out_dir=tmp_path / "run", resume=False, **{**KW, "epochs": 1})
    assert len(fresh.history) == 1


def test_metrics_files_and_plot(tmp_path):
    res = fit(_mlp(), _toy(), out_dir=tmp_path, name="toy", **KW)
    m = read_metrics(tmp_path)
    assert m["test_metric"] == res.test_metric and m["best_epoch"] == res.best_epoch and m["name"] == "toy"
    assert m["num_params"] == res.num_params and m["config"]["lr"] == KW["lr"]
    rows = list(csv.DictReader(open(tmp_path / "history.csv")))
    assert len(rows) == 4 and float(rows[-1]["train_loss"]) == pytest.approx(res.history[-1].train_loss)
    assert (tmp_path / "checkpoint.pt").exists()
    best = torch.load(tmp_path / "best_model.pt", weights_only=True)
    assert set(best) == set(_mlp().state_dict())
    json.dumps(res.to_dict())
    pytest.importorskip("matplotlib")
    out = plot_history(res, tmp_path / "plots" / "history.png")
    assert out is not None and out.stat().st_size > 1000
    assert not list(tmp_path.glob(".*tmp*"))  # atomic writes leave no temporaries


def test_regression_and_sequence_losses():
    data = adding_problem(seq_len=10, n_train=64, n_val=32, n_test=32, seed=0)
    torch.manual_seed(0)
    res = fit(nn.Sequential(nn.Flatten(), nn.Linear(20, 1)), data, epochs=2, batch_size=16, progress=False)
    assert res.metric_name == "mse" and not res.higher_is_better and res.test_metric > 0
    seq = copy_memory(seq_len=6, memory_len=2, n_train=32, n_val=8, n_test=8, seed=0)
    res = fit(nn.Conv1d(10, 10, 3, padding=1), seq, epochs=2, batch_size=8, progress=False, device="cpu")
    assert res.metric_name == "seq_ce" and res.test_metric == pytest.approx(res.test_loss)
    # mse of (N, 1) outputs against (N,) targets: reshaped, not broadcast
    spec = get_loss("mse")
    assert float(spec.loss(torch.ones(4, 1), torch.zeros(4))) == 1.0
    with pytest.raises(ValueError, match="does not match"):
        spec.loss(torch.ones(4, 2), torch.zeros(4))


def test_max_steps_regularizer_param_groups_no_val():
    tr, va, te = _toy()
    seen = {}

    def groups(model, lr, weight_decay):
        seen["lr"] = lr
        return [
            {"params": list(model[0].parameters()), "lr": lr * 0.1},
            {"params": list(model[3].parameters())},
        ]

    model = _mlp()
    res = fit(
        model,
        {"train": tr, "test": te},
        max_steps=5,
        regularizer=lambda m: 1e-3 * m[0].weight.pow(2).sum(),
        param_groups=groups,
        scheduler=None,
        **{k: v for k, v in KW.items()},
    )
    assert res.steps == 5 and len(res.history) == 1 and seen["lr"] == KW["lr"]
    assert res.selection == "last" and res.best_val_metric is None and res.test_metric is not None
    assert res.history[0].train_regularizer > 0


def test_argument_errors():
    with pytest.raises(ValueError, match="loss must be one of"):
        fit(_mlp(), _toy(), loss="hinge")
    with pytest.raises(ValueError, match="optimizer"):
        fit(_mlp(), _toy(), optimizer="lbfgs")
    with pytest.raises(ValueError, match="epochs"):
        fit(_mlp(), _toy(), epochs=0)
    with pytest.raises(TypeError, match="data must be"):
        fit(_mlp(), torch.zeros(3))
    with pytest.raises(TypeError, match="model must be"):
        fit(lambda x: x, _toy())


def test_experiment_registry():
    assert "smoke" in list_experiments()
    with pytest.raises(KeyError, match="known experiments: .*smoke"):
        get_experiment("nope")
    exp = get_experiment("smoke")
    with pytest.raises(KeyError, match="no config key 'epoch'"):
        exp.config(overrides={"epoch": 1})
    res = run_experiment("smoke", quick=True, config={"epochs": 1, "size": 8}, progress=False, device="cpu")
    assert res.name == "smoke" and len(res.history) == 1
    with pytest.raises(ValueError, match="already registered"):
        register_experiment(exp)
    tiny = Experiment(
        "test-tiny",
        "tiny",
        build=lambda cfg: (_mlp(), _toy(), {"epochs": cfg["epochs"], "progress": False}),
        default_config={"epochs": 1, "seed": 0},
    )
    register_experiment(tiny, overwrite=True)
    assert run_experiment("test-tiny", device="cpu").steps == 2  # 96 samples, batch 64
