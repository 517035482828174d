"""`groupconv bench train-vs-escnn`: CLI registration, matched trainable parameter counts, the
quick smoke run (escnn tests are skipped with a reason when escnn is absent), the skip path."""

import json

import pytest
import torch

from groupconv.benchmarks import train_vs_escnn as bench
from groupconv.cli import BENCH_SUITES, TRAINING_BENCH_SUITES, build_parser, main
from groupconv.groups import CyclicGroup
from groupconv.interop import escnn as bridge
from groupconv.nn import LiftingConv

SKIP_REASON = f"escnn is not installed ({bridge.INSTALL_HINT})"
needs_escnn = pytest.mark.skipif(not bridge.escnn_available(), reason=SKIP_REASON)


# -- always run -----------------------------------------------------------------------------------
def test_cli_registers_the_suite_outside_bench_all():
    ns = build_parser().parse_args(["bench", "train-vs-escnn", "--seeds", "2", "--epochs", "5", "--quick"])
    assert (ns.suite, ns.seeds, ns.epochs, ns.quick) == ("train-vs-escnn", 2, 5, True)
    assert "train-vs-escnn" in TRAINING_BENCH_SUITES and "train-vs-escnn" not in BENCH_SUITES  # not in `all`


@pytest.mark.parametrize("args, message", [
    (["--seeds", "0"], "--seeds must be >= 1, got 0"),
    (["--epochs", "0"], "--epochs must be >= 1, got 0"),
])
def test_cli_rejects_bad_counts_in_one_line(args, message, capsys):
    assert main(["bench", "train-vs-escnn", *args]) == 2
    assert message in capsys.readouterr().err


def test_skipped_with_a_clear_message_without_escnn(monkeypatch, capsys):
    monkeypatch.setattr(bench, "escnn_available", lambda: False)
    res = bench.run_train_vs_escnn(quick=True)
    assert set(res) == {"skipped"} and "escnn is not installed" in res["skipped"]
    assert main(["bench", "train-vs-escnn", "--quick"]) == 0
    out = capsys.readouterr().out
    assert "skipped: escnn is not installed" in out and "install_escnn.sh" in out


def test_live_parameters_sees_masked_entries():
    # the old pixel kernels with a hard disc mask hold entries that never train: the count of
    # parameters with a gradient must be smaller than the count of requires_grad entries
    old = LiftingConv(1, 4, CyclicGroup(8), 5, padding=2, basis="pixel")
    x = torch.randn(2, 1, 9, 9)
    assert bench.live_parameters(old, x) < bench.trainable_parameters(old)
    net = bench.build_model("groupconv")
    assert bench.live_parameters(net, torch.randn(4, 1, 16, 16)) == bench.trainable_parameters(net)


def test_build_model_rejects_unknown_names():
    with pytest.raises(ValueError, match="name must be one of"):
        bench.build_model("c4")


# -- escnn ----------------------------------------------------------------------------------------
@needs_escnn
def test_trainable_parameter_counts_match_within_ten_percent():
    counts = {}
    x = torch.randn(4, 1, 16, 16)
    for name in bench.TRAIN_VS_ESCNN_MODELS:
        net = bench.build_model(name)
        counts[name] = bench.trainable_parameters(net)
        assert bench.live_parameters(net, x) == counts[name], name  # nothing masked and dead
    assert counts["groupconv"] == counts["escnn"]  # the same basis sizes, the same fields
    assert abs(counts["groupconv-default"] / counts["escnn"] - 1) <= 0.10, counts


@needs_escnn
def test_quick_run_rows_summary_and_verdicts(capsys):
    res = bench.run_train_vs_escnn(quick=True, seeds=(1,), progress=False)
    models = tuple(bench.TRAIN_VS_ESCNN_MODELS)
    assert [(r["model"], r["seed"]) for r in res["rows"]] == [(m, 1) for m in models]  # model-major order
    for r in res["rows"]:
        assert 0 <= r["test_accuracy"] <= 1 and r["any_angle"] > 0 and r["change_45"] > 0
        if r["model"] != "escnn":  # C8 on even maps with BlurPool: 90-degree rotations are exact
            assert r["rot90"] < 1e-4, r
    for m in models:
        s = res["summary"][m]
        (row,) = [r for r in res["rows"] if r["model"] == m]
        assert s["test_accuracy"] == (row["test_accuracy"], 0.0) and s["change_45"] == (row["change_45"], 0.0)
    v = res["verdicts"]["groupconv"]
    acc, e_acc = res["summary"]["groupconv"]["test_accuracy"][0], res["summary"]["escnn"]["test_accuracy"]
    assert v["accuracy_ok"] == (acc >= e_acc[0] - e_acc[1])
    assert v["ok"] == (v["accuracy_ok"] and v["change_45_ok"] and v["params_matched"])
    json.dumps(res, default=str)
    table = bench.format_table(res)
    assert "verdict groupconv:" in table and "escnn C8" in table


def test_diagnosis_options_swap_pool_and_readout_and_stay_exact_at_90_degrees():
    from groupconv.nn.group.pooling import BlurPool, GlobalInvariantPool

    base = bench.build_model("groupconv")
    assert isinstance(base.pool, BlurPool) and base.pool.max_first and base.readout.disc
    torch.manual_seed(0)
    net = bench.build_model("groupconv", {"blurpool_max": False, "disc_readout": False}).eval()
    assert not net.pool.max_first and isinstance(net.readout, GlobalInvariantPool) and not net.readout.disc
    x = torch.randn(3, 1, 16, 16, dtype=torch.float64)
    net = net.double()
    y, y90 = net(x), net(torch.rot90(x, 1, dims=(-2, -1)))
    assert torch.allclose(y, y90, atol=1e-10, rtol=1e-9)  # exact element: float64 rounding only
