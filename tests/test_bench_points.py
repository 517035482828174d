"""Smoke tests of ``groupconv bench points`` (quick mode; timings are never asserted) and of its
analytic memory model, checked against the layer's real kernel-net activation."""

from __future__ import annotations

import json

import pytest
import torch

from groupconv.benchmarks.points import (
    RULES,
    _memory_probe,
    _setup,
    format_table,
    main,
    point_conv_memory_elements,
    run_points_benchmark,
)


def test_quick_run_has_one_verdict_row_per_rule():
    res = run_points_benchmark(quick=True, memory=False)
    assert [r["check"] for r in res["rows"]] == list(RULES)
    for r in res["rows"]:
        rule = RULES[r["check"]]
        assert r["rule"] == rule.describe() and r["target"] == rule.threshold
        if r["check"] == "points-memory":  # not measured: no verdict
            assert r["ratio"] is None and r["ok"] is None
        else:
            assert r["ratio"] > 0 and r["ok"] is rule.passes(r["ratio"])
            assert r["median"] > 0 and r["baseline_median"] > 0
    kinds = {(t["kind"], t["n"], t["k"]) for t in res["timings"]}
    assert ("dense", 32, 32) in kinds and ("knn", 64, 4) in kinds and ("knn", 32, 8) in kinds
    text = format_table(res)
    assert text.splitlines()[0].startswith("verdict rules") and "QUICK" in text and "not measured" in text
    json.dumps(res, default=str)  # JSON-ready


def test_analytic_memory_is_linear_in_points_and_neighbours_and_matches_the_layer():
    e = point_conv_memory_elements
    assert e(2, 2048, 16, 2, 32) == 2 * e(2, 1024, 16, 2, 32)  # linear in points
    assert e(2, 1024, 16, 2, 32) == 2 * e(2, 1024, 8, 2, 32)  # linear in neighbours
    assert e(2, 256, 256, 2, 32) == 4 * e(2, 128, 128, 2, 32)  # dense: quadratic
    conv, u, f = _setup(24, 5, "cpu")
    seen = []
    hook = conv.kernel_net.register_forward_hook(lambda m, i, o: seen.append(i[0].shape))
    conv(u, f)
    hook.remove()
    pairs = seen[0][:-1].numel()  # kernel-net inputs: one per (query element, neighbour element)
    assert pairs * 32 == e(2, 24, 5, 2, 32)


def test_memory_probe_reports_a_positive_peak():
    out = _memory_probe({"n": 64, "k": 8, "device": "cpu"})
    assert out["method"] in ("VmHWM", "cuda") and out["peak_bytes"] >= 0


def test_cli_entry_writes_json(tmp_path, capsys):
    path = tmp_path / "points.json"
    assert main(["--quick", "--no-memory", "--json", str(path)]) == 0
    assert "dense-vs-knn" in capsys.readouterr().out
    assert [r["check"] for r in json.loads(path.read_text())["rows"]] == list(RULES)


def test_arguments_are_checked():
    with pytest.raises(ValueError, match="repeats must be a positive int"):
        run_points_benchmark(quick=True, repeats=0, memory=False)
    with pytest.raises(TypeError, match="quick must be a bool"):
        run_points_benchmark(quick=1, memory=False)  # type: ignore[arg-type]
    assert torch.get_num_threads() >= 1
