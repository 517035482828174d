"""Smoke tests of the benchmark helpers and ``bench groups`` (tiny sizes; never assert on timings)."""

from __future__ import annotations

import json
import math
import types

import pytest
import torch

from groupconv.benchmarks import common
from groupconv.benchmarks import groups as bench_groups
from groupconv.benchmarks.groups import OPS, format_table, load_escnn, main, run_groups_benchmark

ROW_KEYS = {"group", "op", "batch", "median_s", "q1_s", "q3_s", "elements_per_s", "escnn_batch",
            "escnn_median_s", "escnn_elements_per_s", "check", "ratio", "ratio_spread", "rule", "target",
            "ok"}


def _check_rows(res: dict, groups: tuple[str, ...], batch: int) -> None:
    skipped = {s["group"] for s in res["skipped"] if not s["reason"].startswith("escnn")}
    present = [g for g in groups if g not in skipped]
    assert [(r["group"], r["op"]) for r in res["rows"]] == [(g, op) for g in present for op in OPS]
    for r in res["rows"]:
        assert set(r) == ROW_KEYS and r["batch"] == batch
        assert r["median_s"] > 0 and r["q1_s"] <= r["median_s"] <= r["q3_s"]
        assert math.isclose(r["elements_per_s"], batch / r["median_s"])
        # one rule per row; ok reads only the ratio the row shows
        assert r["check"] == "vs-escnn" and r["rule"] == bench_groups.RULE.describe()
        assert r["ok"] == bench_groups.RULE.passes(r["ratio"])


def test_run_groups_benchmark_smoke(device: torch.device) -> None:
    res = run_groups_benchmark(batch=32, repeats=2, device=device, quick=True)
    _check_rows(res, ("SO2", "SE2", "SO3"), 32)
    assert res["benchmark"] == "groups" and res["device"] == str(device) and res["repeats"] == 2
    assert res["target_ratio"] == 100.0 and "torch" in res["environment"]
    if not res["escnn"]["available"]:
        assert all(r["ratio"] is None for r in res["rows"]) and res["min_ratio"] is None
    json.loads(json.dumps(res))  # JSON-ready
    text = format_table(res)
    assert "SO2" in text and "elements/s" in text and "product" in text
    assert format_table(res["rows"]).splitlines()[0].startswith("group")


def test_run_groups_benchmark_arguments() -> None:
    res = run_groups_benchmark(batch=8, repeats=1, groups=("SO2",), dtype=torch.float64)
    _check_rows(res, ("SO2",), 8)
    assert res["dtype"] == "float64"
    with pytest.raises(ValueError, match="groups must be names from"):
        run_groups_benchmark(batch=8, repeats=1, groups=("SO4",))
    with pytest.raises(ValueError, match="batch must be a positive int, got 0"):
        run_groups_benchmark(batch=0)


class _FakeElement:
    def __init__(self, value: float) -> None:
        self.value = value

    def __matmul__(self, other: _FakeElement) -> _FakeElement:
        return _FakeElement(self.value + other.value)

    def __invert__(self) -> _FakeElement:
        return _FakeElement(-self.value)

    def to(self, param: str) -> float:
        return self.value


class _FakeGroup:
    def element(self, value: object, param: str) -> _FakeElement:
        assert param in ("radians", "EV")
        return _FakeElement(float(sum(value)) if param == "EV" else value)


def test_escnn_comparison_plumbing_with_a_fake_escnn(monkeypatch: pytest.MonkeyPatch) -> None:
    fake = types.SimpleNamespace(so2_group=_FakeGroup, so3_group=_FakeGroup)
    monkeypatch.setattr(bench_groups, "load_escnn", lambda: (fake, None))
    monkeypatch.setattr(bench_groups, "_escnn_version", lambda: "fake")
    res = run_groups_benchmark(batch=16, repeats=1, escnn_batch=4, groups=("SO2", "SE2"))
    by = {(r["group"], r["op"]): r for r in res["rows"]}
    for op in OPS:
        r = by[("SO2", op)]
        assert r["escnn_batch"] == 4 and r["escnn_elements_per_s"] > 0
        # one round: the per-round ratio is the ratio of the medians
        assert math.isclose(r["ratio"], r["elements_per_s"] / r["escnn_elements_per_s"])
        assert r["ratio_spread"]["median"] == r["ratio"] and r["ok"] == (r["ratio"] >= 100.0)
        if ("SE2", op) in by:
            assert by[("SE2", op)]["ratio"] is None and by[("SE2", op)]["ok"] is None
    if ("SE2", "product") in by:
        assert any("escnn has no SE2" in s["reason"] for s in res["skipped"])
    assert res["min_ratio"] == min(r["ratio"] for r in res["rows"] if r["ratio"] is not None)
    text = format_table(res)
    assert text.splitlines()[0].startswith("verdict rules")
    assert "  vs-escnn: ok when batched / escnn elements per second >= 100x" in text
    for r in res["rows"]:
        line = next(ln for ln in text.splitlines() if ln.split()[:2] == [r["group"], r["op"]])
        assert line.split()[-1] == {True: "ok", False: "NO", None: "-"}[r["ok"]]


def test_load_escnn_when_absent(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(bench_groups.importlib.util, "find_spec", lambda name: None)
    module, reason = load_escnn()
    assert module is None and "not installed" in reason


def test_main_prints_table_and_writes_json(tmp_path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "bench.json"
    assert main(["--batch", "16", "--repeats", "1", "--quick", "--json", str(out)]) == 0
    assert "SO2" in capsys.readouterr().out
    assert json.loads(out.read_text())["batch"] == 16


def test_time_interleaved_and_helpers() -> None:
    calls: list[str] = []
    t = common.time_interleaved({"a": lambda: calls.append("a"), "b": lambda: calls.append("b")},
                                repeats=4, warmup=1, inner=2)
    assert list(t) == ["a", "b"] and calls.count("a") == 1 + 4 * 2 and calls.count("b") == 9
    rounds = {tuple(calls[2 + 4 * i: 2 + 4 * (i + 1)]) for i in range(4)}
    assert rounds <= {("a", "a", "b", "b"), ("b", "b", "a", "a")} and len(rounds) == 2  # shuffled
    assert all(len(x.seconds) == 4 and x.median >= 0 for x in t.values())
    assert set(t["a"].as_dict()) == {"name", "median_s", "q1_s", "q3_s", "rounds"}
    with pytest.raises(ValueError, match="repeats must be an int >= 1, got 0"):
        common.time_interleaved({"a": lambda: None}, repeats=0)
    with pytest.raises(ValueError, match="at least one candidate"):
        common.time_interleaved({})
    assert common.quantile([4.0, 1.0, 3.0, 2.0], 0.25) == 1.75
    assert common.ratio(6.0, 3.0) == 2.0 and common.ratio(None, 1.0) is None and common.ratio(1.0, 0) is None
    assert common.format_rate(1.5e9) == "1.5G" and common.format_seconds(None) == "-"


def test_write_json(tmp_path) -> None:
    p = common.write_json(tmp_path / "sub" / "x.json", {"dtype": torch.float32, "v": [1, 2]})
    assert json.loads(p.read_text()) == {"dtype": "torch.float32", "v": [1, 2]}
