"""`groupconv bench gconv` in quick mode: well-formed rows and table (timings are never asserted)."""

import json
import math

import pytest

from groupconv.benchmarks.gconv import TARGETS, format_table, main, run_gconv_benchmark


@pytest.fixture(scope="module")
def result():
    return run_gconv_benchmark(quick=True, repeats=1, escnn=False)


def test_rows_are_well_formed(result):
    rows = result["rows"]
    checks = [(r["check"], r["layer"].split()[0]) for r in rows]
    assert ("train", "C8") in checks and ("train", "D4") in checks
    assert ("small-forward", "C8") in checks and ("construct", "D4") in checks
    assert ("continuous-train", "SO2-8") in checks
    for r in rows:
        assert r["median_s"] > 0 and math.isfinite(r["median_s"])
        assert r["q1_s"] <= r["median_s"] <= r["q3_s"]
        if r["check"] == "construct":
            assert r["ratio"] is None and r["target"] == TARGETS["construct"]
        else:
            assert r["floor_s"] > 0 and r["ratio"] == pytest.approx(r["median_s"] / r["floor_s"])
            assert r["target"] == TARGETS[r["check"]]
            assert r["input"][1] == result["sizes"]["fields"] * 8  # C8, D4 and the SO(2) grid: 8 elements
        assert r["escnn_s"] is None and isinstance(r["ok"], bool)
    assert result["escnn"]["available"] is False
    json.dumps(result, default=str)


def test_format_table(result):
    text = format_table(result)
    assert text.splitlines()[0].split()[:3] == ["check", "layer", "input"]
    assert "QUICK" in text and "no escnn comparison" in text
    assert len(format_table(result["rows"]).splitlines()) == len(result["rows"]) + 2


def test_bad_arguments():
    with pytest.raises(ValueError, match="repeats"):
        run_gconv_benchmark(quick=True, repeats=0)


def test_main_writes_json(tmp_path, capsys, monkeypatch):
    import groupconv.benchmarks.gconv as mod

    calls = {}

    def fake(**kw):
        calls.update(kw)
        return {"rows": [], "quick": True, "escnn": {"available": False, "note": "x"}, "environment": {}}

    monkeypatch.setattr(mod, "run_gconv_benchmark", fake)
    assert main(["--quick", "--no-escnn", "--json", str(tmp_path / "b.json")]) == 0
    assert calls["quick"] is True and calls["escnn"] is False
    assert json.loads((tmp_path / "b.json").read_text())["quick"] is True
    assert "check" in capsys.readouterr().out
