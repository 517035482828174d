"""Smoke test of ``groupconv bench attention`` (quick mode; timings are never asserted)."""

from __future__ import annotations

import pytest
import torch

from groupconv.benchmarks.attention import RULES, _memory_probe, format_table, main, run_attention_benchmark


def test_attention_benchmark_quick_runs():
    before = torch.get_num_threads()
    res = run_attention_benchmark(quick=True, memory=False, threads=1)
    assert torch.get_num_threads() == before  # restored
    assert res["env"]["threads"] == 1
    assert set(res["step"]["timings"]) == {"p4cnn", "alpha_p4cnn_full", "alpha_p4cnn_fA"}
    assert all(r is not None and r > 0 for r in res["step"]["ratios"].values())
    table = format_table(res)
    assert "ratio vs p4cnn" in table and "alpha_p4cnn_fA" in table
    # one rule per row; ok reads only the ratio the row shows
    assert table.splitlines()[0].startswith("verdict rules")
    assert "  step: ok when attentive / P4CNN step time <= 3x" in table
    assert [(v["check"], v["what"]) for v in res["verdicts"]] == [
        ("step", "alpha_p4cnn_full"), ("step", "alpha_p4cnn_fA")]
    for v in res["verdicts"]:
        assert v["ratio"] == res["step"]["ratios"][v["what"]] == v["ratio_spread"]["median"]
        assert v["ok"] == RULES["step"].passes(v["ratio"]) and isinstance(v["ok"], bool)
        line = next(ln for ln in table.splitlines() if ln.startswith("step") and v["what"] in ln)
        assert line.split()[-1] == ("ok" if v["ok"] else "NO")


def test_memory_verdicts_follow_the_ratios(monkeypatch):
    """Memory rows: one per attentive form (empirical) plus the analytic count, each with its own
    rule; a form over the 4x bound is NO without touching the others (probe faked, no timing)."""
    import groupconv.benchmarks.attention as A

    peaks = {"plain": 100.0, "full": 250.0, "full_mean_max": 450.0, "feature": None}
    monkeypatch.setattr(A, "_measure_memory", lambda kind, *a: peaks[kind])
    res = run_attention_benchmark(quick=True, memory=True, threads=1)
    mem = {v["what"]: v for v in res["verdicts"] if v["check"] == "memory"}
    assert mem["full"]["ratio"] == 2.5 and mem["full"]["ok"] is True
    assert mem["full_mean_max"]["ratio"] == 4.5 and mem["full_mean_max"]["ok"] is False
    assert mem["feature"]["ratio"] is None and mem["feature"]["ok"] is None
    (an,) = [v for v in res["verdicts"] if v["check"] == "memory-analytic"]
    assert an["ratio"] == res["memory"]["analytic_ratio_full_vs_plain"]
    assert an["ok"] == (an["ratio"] <= 4.0)
    assert "NO" in format_table(res)


def test_attention_benchmark_rejects_bad_threads():
    with pytest.raises(ValueError, match="threads must be a positive int or None, got 0"):
        run_attention_benchmark(quick=True, memory=False, threads=0)


def test_memory_probe_in_process():
    for kind in ("plain", "full"):
        out = _memory_probe({"kind": kind, "b": 1, "c": 2, "s": 6, "device": "cpu"})
        assert out["peak_bytes"] >= 0 and out["method"] in ("VmHWM", "ru_maxrss", "cuda")


def test_cli_memory_probe_prints_json(capsys):
    assert main(["--memory-probe", '{"kind": "feature", "b": 1, "c": 2, "s": 6, "device": "cpu"}']) == 0
    assert '"peak_bytes"' in capsys.readouterr().out
