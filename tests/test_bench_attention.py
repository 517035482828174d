"""Smoke test of ``groupconv bench attention`` (quick mode; timings are never asserted)."""

from __future__ import annotations

import pytest
import torch

from groupconv.benchmarks.attention import _memory_probe, format_table, main, run_attention_benchmark


def test_attention_benchmark_quick_runs():
    before = torch.get_num_threads()
    res = run_attention_benchmark(quick=True, memory=False, threads=1)
    assert torch.get_num_threads() == before  # restored
    assert res["env"]["threads"] == 1
    assert set(res["step"]["timings"]) == {"p4cnn", "alpha_p4cnn_full", "alpha_p4cnn_fA"}
    assert all(r is not None and r > 0 for r in res["step"]["ratios"].values())
    table = format_table(res)
    assert "ratio vs p4cnn" in table and "alpha_p4cnn_fA" in table and "target met" in table


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
