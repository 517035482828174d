"""Smoke test of ``groupconv bench attention`` (quick mode; timings are never asserted)."""

from __future__ import annotations

from groupconv.benchmarks.attention import _memory_probe, format_table, run_attention_benchmark


def test_attention_benchmark_quick_runs():
    res = run_attention_benchmark(quick=True, memory=False)
    assert set(res["step"]["timings"]) == {"p4cnn", "alpha_p4cnn_full", "alpha_p4cnn_fA"}
    assert all(r is not None and r > 0 for r in res["step"]["ratios"].values())
    assert "ratio vs p4cnn" in format_table(res)


def test_memory_probe_in_process():
    for kind in ("plain", "full"):
        out = _memory_probe({"kind": kind, "b": 1, "c": 2, "s": 6, "device": "cpu"})
        assert out["peak_bytes"] >= 0 and out["method"] in ("VmHWM", "ru_maxrss", "cuda")
