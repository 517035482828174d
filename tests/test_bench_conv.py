"""Smoke tests of ``groupconv bench conv`` (quick sizes; timings are never asserted)."""

from __future__ import annotations

import json

import pytest
import torch

from groupconv.benchmarks import conv as bench


@pytest.fixture(scope="module")
def quick_result() -> dict:
    return bench.run_conv_benchmark(quick=True, repeats=1, length=256, memory=False)


CHECKS = ["fft-vs-direct", "fft-floor", "ckconv-eval-direct", "ckconv-eval-floor",
          "flexconv-eval-floor", "flexconv-crop", "cost-model"]


def test_quick_rows_and_fields(quick_result: dict) -> None:
    rows = quick_result["rows"]
    assert [r["check"] for r in rows] == CHECKS
    for r in rows:
        assert r["median"] > 0 and r["floor"] > 0 and r["ratio"] > 0
        assert r["target_op"] in (">=", "<=", "<") and isinstance(r["ok"], bool)
        # the verdict follows from the ratio shown, by the row's one rule
        rule = bench.RULES[r["check"]]
        assert r["ok"] == rule.passes(r["ratio"]) and r["rule"] == rule.describe()
        sp = r["ratio_spread"]
        assert sp["min"] <= sp["q1"] <= sp["median"] <= sp["q3"] <= sp["max"] and sp["n"] >= 1
        assert r["ratio"] == sp["median"]  # the ratio shown is the median per-round ratio
    assert [r["input"] for r in rows[:2]] == [[1, 32, 256]] * 2
    assert [r["input"] for r in rows[2:5]] == [[1, 32, 128]] * 3
    # the FFT and the direct route compute the same thing; the eval rows use the cached spectrum
    assert rows[0]["max_abs_diff"] < 1e-3 and rows[2]["max_abs_diff"] < 1e-3
    assert rows[2]["spectrum_cached"] and rows[4]["spectrum_cached"]
    # the narrow mask samples fewer taps than the wide one (dynamic cropping)
    crop = rows[5]
    assert crop["kernel_taps"] < crop["baseline_kernel_taps"] <= 256
    cost = rows[6]
    assert cost["ratio"] == max(s["ratio"] for s in cost["shapes"]) >= 1.0
    env = quick_result["environment"]
    assert {"torch", "threads", "machine", "cpu_model", "platform"} <= set(env)
    json.dumps(quick_result, default=str)  # JSON-ready


def test_format_table(quick_result: dict) -> None:
    text = bench.format_table(quick_result)
    lines = text.splitlines()
    assert lines[0].startswith("verdict rules")
    for check in CHECKS:  # each rule printed once in the header
        assert sum(line.strip().startswith(f"{check}: ok when") for line in lines) == 1
    table = bench.format_table(quick_result["rows"]).splitlines()
    assert table[0].split()[:3] == ["check", "candidate", "baseline"]
    assert len(table) == 2 + len(CHECKS)
    for line, r in zip(table[2:], quick_result["rows"]):
        assert line.split()[-1] == ("ok" if r["ok"] else "NO")
    assert "QUICK" in text and "fft-floor" in text


def test_verdict_ignores_everything_but_the_shown_ratio() -> None:
    row = bench._row("fft-floor", "a", "b", [1], 1.0, 1.0, 1.49)
    assert row["ok"] is True
    row = bench._row("fft-floor", "a", "b", [1], 1.0, 1.0, 1.51)
    assert row["ok"] is False
    assert bench._row("ckconv-memory", "a", "b", [1], None, None, None, unit="B")["ok"] is None


def test_threads_restored() -> None:
    before = torch.get_num_threads()
    bench.run_conv_benchmark(quick=True, repeats=1, direct_repeats=1, length=64, channels=2,
                             memory=False, threads=1)
    assert torch.get_num_threads() == before


def test_memory_probe_in_process() -> None:
    out = bench._memory_probe({"c": 2, "length": 64, "device": "cpu", "threads": 1})
    assert out["method"] in ("VmHWM", "ru_maxrss") and out["peak_bytes"] >= 0


def test_main_quick_without_memory(capsys: pytest.CaptureFixture[str], tmp_path) -> None:
    path = tmp_path / "conv.json"
    assert bench.main(["--quick", "--repeats", "1", "--length", "128", "--no-memory",
                       "--json", str(path)]) == 0
    assert "fft-vs-direct" in capsys.readouterr().out
    assert json.loads(path.read_text())["benchmark"] == "conv"


@pytest.mark.parametrize("kwargs, match", [
    ({"repeats": 0}, "repeats"),
    ({"length": 2}, "length"),
    ({"channels": True}, "channels"),
    ({"threads": -1}, "threads"),
])
def test_bad_arguments(kwargs: dict, match: str) -> None:
    with pytest.raises(ValueError, match=match):
        bench.run_conv_benchmark(quick=True, memory=False, **kwargs)


def test_memory_subprocess() -> None:
    peak = bench._measure_memory(2, 64, "cpu", 1, 0)
    assert peak is not None and peak >= 0


def test_cost_model_row_names_its_model_and_calibrate_option() -> None:
    from groupconv.functional.cost import DEFAULT_COST_MODEL, CostModel, get_cost_model, set_cost_model

    gen = torch.Generator().manual_seed(0)
    shapes = bench._QUICK_COST_SHAPES
    row = bench._cost_model_row(shapes, torch.device("cpu"), 1, gen, 0)
    cm = row["cost_model"]
    assert not cm["calibrated"] and cm["source"] == get_cost_model().source
    assert cm["run_threads"] == torch.get_num_threads()
    # a model installed for the run's thread count is the one evaluated (direct made absurdly
    # expensive: every shape goes to the FFT)
    n = torch.get_num_threads()
    old = set_cost_model(CostModel(a_direct=(1.0, 1.0, 1.0), source="test", threads=n))
    try:
        row = bench._cost_model_row(shapes, torch.device("cpu"), 1, gen, 0)
        assert row["cost_model"]["source"] == "test" and row["cost_model"]["threads"] == n
        assert all(s["choice"] == "fft" for s in row["shapes"])
    finally:
        set_cost_model(None, threads=n)
    assert get_cost_model() is old is DEFAULT_COST_MODEL
    res = bench.run_conv_benchmark(quick=True, repeats=1, direct_repeats=1, length=64, channels=2,
                                   memory=False, threads=1, calibrate=True)
    cost = res["rows"][-1]
    assert cost["check"] == "cost-model" and cost["cost_model"]["calibrated"]
    assert cost["cost_model"]["threads"] == 1 and "calibrate(" in cost["cost_model"]["source"]
    assert "calibrated here" in cost["candidate"]
