"""Smoke tests of ``groupconv bench gsa`` (quick mode; timings are never asserted) and of its
analytic memory model, checked against hand counts and the layer's real tensor shapes."""

from __future__ import annotations

import pytest
import torch

from groupconv.benchmarks.gsa import (
    QUICK_SIZES,
    _measure_memory,
    _memory_probe,
    format_table,
    gsa_memory_elements,
    main,
    run_gsa_benchmark,
)


def test_quick_run_returns_well_formed_rows():
    res = run_gsa_benchmark(quick=True, memory=False)
    assert [(r["mode"], r["size"]) for r in res["rows"]] == list(QUICK_SIZES)
    for r in res["rows"]:
        assert r["pixels"] == r["size"] ** 2
        assert r["patch_size"] == (5 if r["mode"] == "local" else None)
        assert r["median_s"] > 0 and r["q1_s"] <= r["median_s"] <= r["q3_s"]
        assert r["analytic_bytes"] == 4 * r["analytic_elements"]["largest"] > 0
        assert r["empirical_bytes"] is None
    assert set(res["ratios"]) == {"local", "global"}
    loc, glo = res["ratios"]["local"], res["ratios"]["global"]
    assert loc["pixels"] == glo["pixels"] == 4.0
    assert loc["expected"] == 4.0 and glo["expected"] == 16.0
    assert loc["analytic_memory"] == pytest.approx(4.0)  # exactly linear in pixels
    assert glo["analytic_memory"] == pytest.approx(16.0)  # the score tensor dominates: quadratic
    assert loc["time"] > 0 and loc["empirical_memory"] is None
    text = format_table(res)
    assert "empirical peak" in text and "not measured" in text and "expected" in text


def test_memory_elements_hand_counts():
    # local, B=1, C=16, N=4, 2 heads, 32x32, 5x5 patch: P = 1024, k^2 = 25
    a = gsa_memory_elements(1, 16, 4, 2, 32, 5)
    assert a["neighbourhoods"] == 2 * 16 * 4 * 25 * 1024
    assert a["scores"] == 2 * 1024 * 4 * 4 * 25
    assert a["input"] == a["output"] == 16 * 4 * 1024
    assert a["largest"] == a["neighbourhoods"]
    # global, B=2, 8x8: scores (B, heads, N P, N P)
    g = gsa_memory_elements(2, 16, 4, 2, 8, None)
    assert g["scores"] == 2 * 2 * (4 * 64) ** 2 and g["offset_scores"] == 2 * 2 * 4 * 64 * 15 ** 2
    # lifting layers have one input element
    lift = gsa_memory_elements(1, 16, 4, 2, 32, 5, lifting=True)
    assert lift["neighbourhoods"] == a["neighbourhoods"] // 4 and lift["input"] == 16 * 1024


def test_memory_elements_match_the_layers_attention_maps():
    """The analytic score count equals the size of the maps the layer really computes."""
    from groupconv.groups import CyclicGroup
    from groupconv.nn.attention.self_attention import GroupSelfAttention

    for patch, s in ((3, 6), (None, 4)):
        layer = GroupSelfAttention(4, 4, CyclicGroup(4), heads=2, patch_size=patch).eval()
        with torch.no_grad():
            _, attn = layer(torch.randn(2, 4, 4, s, s), return_attention=True)
        assert attn.numel() == gsa_memory_elements(2, 4, 4, 2, s, patch)["scores"]


def test_memory_elements_errors():
    with pytest.raises(ValueError, match="patch_size must be a positive odd int"):
        gsa_memory_elements(1, 4, 4, 1, 8, 4)
    with pytest.raises(ValueError, match="size must be a positive int"):
        gsa_memory_elements(1, 4, 4, 1, 0, 3)
    with pytest.raises(ValueError, match="repeats must be a positive int"):
        run_gsa_benchmark(quick=True, memory=False, repeats=-1)


def test_memory_probe_in_process_and_subprocess():
    for mode in ("local", "global"):
        out = _memory_probe({"mode": mode, "b": 1, "c": 2, "heads": 1, "s": 6, "device": "cpu"})
        assert out["peak_bytes"] >= 0 and out["method"] in ("VmHWM", "ru_maxrss")
    peak = _measure_memory({"mode": "local", "b": 1, "c": 2, "heads": 1, "s": 6, "device": "cpu"})
    assert peak is not None and peak >= 0


def test_cli_memory_probe_prints_json(capsys):
    spec = '{"mode": "global", "b": 1, "c": 2, "heads": 1, "s": 4, "device": "cpu"}'
    assert main(["--memory-probe", spec]) == 0
    assert '"peak_bytes"' in capsys.readouterr().out


def test_verdicts_one_rule_per_row(monkeypatch):
    """Time and memory growth rows per mode, each with its own rule; ``ok`` reads only the ratio
    the row shows (memory probe faked: local grows 5x (ok), global 30x (NO); no timing asserted)."""
    import groupconv.benchmarks.gsa as M
    from groupconv.benchmarks.gsa import RULES

    fake = {("local", 8): 100.0, ("local", 16): 500.0, ("global", 4): 10.0, ("global", 8): 300.0}
    monkeypatch.setattr(M, "_measure_memory", lambda spec: fake[(spec["mode"], spec["s"])])
    res = run_gsa_benchmark(quick=True, memory=True)
    vs = {v["check"]: v for v in res["verdicts"]}
    assert list(vs) == ["local-time", "local-memory", "global-time", "global-memory"]
    assert vs["local-memory"]["ratio"] == 5.0 and vs["local-memory"]["ok"] is True
    assert vs["global-memory"]["ratio"] == 30.0 and vs["global-memory"]["ok"] is False
    for mode in ("local", "global"):
        v = vs[f"{mode}-time"]
        assert v["ratio"] == res["ratios"][mode]["time"] == v["ratio_spread"]["median"]
        assert v["ok"] == RULES[v["check"]].passes(v["ratio"])
    for v in vs.values():
        assert v["rule"] == RULES[v["check"]].describe() and v["what"] in ("8^2 -> 16^2", "4^2 -> 8^2")
    text = format_table(res)
    assert text.splitlines()[0].startswith("verdict rules")
    line = next(ln for ln in text.splitlines() if ln.startswith("global-memory"))
    assert line.split()[-1] == "NO"
