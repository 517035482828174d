"""`groupconv bench separable` in quick mode: well-formed rows and table (timings never asserted)."""

import json
import math

import pytest
import torch

from groupconv.benchmarks.separable import RULES, TARGETS, format_table, main, run_separable_benchmark
from groupconv.groups import CyclicGroup
from groupconv.nn.group.gconv import GroupConv
from groupconv.nn.group.separable import SeparableGroupConv


@pytest.fixture(scope="module")
def result():
    before = torch.get_num_threads()
    res = run_separable_benchmark(quick=True, repeats=1, threads=1)
    assert torch.get_num_threads() == before  # restored
    return res


def test_rows_are_well_formed(result):
    rows = result["rows"]
    assert [r["fields"] for r in rows] == [2, 4]
    k = result["sizes"]["kernel_size"]
    for r in rows:
        f = r["fields"]
        assert r["channels"] == 8 * f and r["input"] == [1, f, 8, 8, 8]
        assert r["kernel_size"] == k
        # analytic FLOPs, recomputed independently: dense C_out N x C_in N x k^2 MACs per pixel
        # vs a (C_in N -> C_out N) 1x1 conv plus a depthwise k x k conv, plus the biases
        P, C = 8 * 8, 8 * f
        assert r["flops_full"] == 2 * P * C * C * k * k + P * C
        assert r["flops_sep"] == 2 * (P * C * C + P * C * k * k) + P * C
        assert r["flops_ratio"] == pytest.approx(r["flops_full"] / r["flops_sep"])
        for key in ("full_s", "sep_s", "fwd_full_s", "fwd_sep_s"):
            assert r[key] > 0 and math.isfinite(r[key])
        assert r["full_q1_s"] <= r["full_s"] <= r["full_q3_s"]
        # speed-ups are medians of per-round ratios (one round here: the ratio of the times)
        assert r["speedup"] == pytest.approx(r["full_s"] / r["sep_s"])
        assert r["fwd_speedup"] == pytest.approx(r["fwd_full_s"] / r["fwd_sep_s"])
        assert "ok" not in r  # verdicts live in their own rows, one rule each
    assert result["targets"] == TARGETS and result["repeats"] == 1 and result["quick"] is True
    assert result["environment"]["threads"] == 1
    json.dumps(result)


def test_verdicts_one_rule_per_row(result):
    """Each verdict row has one rule and its ``ok`` reads only the ratio it shows: a size whose
    FLOPs ratio passes but whose speed-up fails gets one ok and one NO, not one combined NO."""
    vs = result["verdicts"]
    assert [(v["check"], v["what"]) for v in vs] == [
        (c, f"C8 {f} fields") for f in (2, 4) for c in ("flops", "speedup")]
    for v, r in zip(vs, [r for r in result["rows"] for _ in range(2)]):
        rule = RULES[v["check"]]
        assert v["rule"] == rule.describe() and v["target"] == rule.threshold
        assert v["ok"] == rule.passes(v["ratio"]) and isinstance(v["ok"], bool)
        if v["check"] == "flops":
            assert v["ratio"] == pytest.approx(r["flops_ratio"]) and v["ratio_spread"] is None
        else:
            sp = v["ratio_spread"]
            assert v["ratio"] == r["speedup"] == sp["median"] and sp["q1"] <= v["ratio"] <= sp["q3"]
    assert [d["check"] for d in result["rules"]] == list(RULES)


def test_full_size_flops_target_analytic():
    """The issue's shapes (C8, 5x5, input (4, C, 8, 32, 32)): >= 3x fewer FLOPs (no timing)."""
    G = CyclicGroup(8)
    for f in (8, 64):
        shape = (4, f, 8, 32, 32)
        full = GroupConv(f, f, G, 5, padding=2)
        sep = SeparableGroupConv(f, f, G, 5, padding=2)
        from groupconv.nn.group.separable import group_conv_flops

        assert group_conv_flops(full, shape) / sep.flops(shape) >= TARGETS["flops_ratio"]


def test_format_table(result):
    text = format_table(result)
    assert text.splitlines()[0].startswith("verdict rules")
    assert "  flops: ok when full / separable FLOPs >= 3x" in text
    assert "  speedup: ok when full / separable fwd+bwd time >= 2x" in text
    assert "QUICK" in text
    verdict_lines = [ln for ln in text.splitlines() if ln.startswith(("flops ", "speedup "))]
    assert len(verdict_lines) == len(result["verdicts"])
    for line, v in zip(verdict_lines, result["verdicts"]):
        assert line.split()[-1] == ("ok" if v["ok"] else "NO")
    table = format_table(result["rows"]).splitlines()
    assert table[0].split()[:2] == ["layer", "input"] and len(table) == len(result["rows"]) + 2


@pytest.mark.parametrize("kwargs", [{"repeats": 0}, {"repeats": True}, {"fields": []}, {"fields": [0]},
                                    {"threads": 0}])
def test_bad_arguments(kwargs):
    with pytest.raises(ValueError, match=next(iter(kwargs))):
        run_separable_benchmark(quick=True, **kwargs)


def test_main_writes_json(tmp_path, capsys):
    path = tmp_path / "sep.json"
    assert main(["--quick", "--repeats", "1", "--json", str(path)]) == 0
    assert "flops ratio" in capsys.readouterr().out
    assert json.loads(path.read_text())["verdicts"][0]["check"] == "flops"
    assert json.loads(path.read_text())["benchmark"] == "separable"
