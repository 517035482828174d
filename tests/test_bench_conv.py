"""Smoke tests of ``groupconv bench conv`` (quick sizes; timings are never asserted)."""

from __future__ import annotations

import json

import pytest
import torch

from groupconv.benchmarks import conv as bench


@pytest.fixture(scope="module")
def quick_result() -> dict:
    return bench.run_conv_benchmark(quick=True, repeats=1, length=256, memory=False)


def test_quick_rows_and_fields(quick_result: dict) -> None:
    rows = quick_result["rows"]
    assert [r["check"] for r in rows] == ["fft-vs-direct", "fft-floor", "flexconv-crop"]
    for r in rows:
        assert r["median"] > 0 and r["floor"] > 0 and r["ratio"] > 0
        assert r["target_op"] in (">=", "<=", "<") and isinstance(r["ok"], bool)
        assert r["input"] == [1, 32, 256]
    # the FFT and the direct route compute the same thing
    assert rows[0]["max_abs_diff"] < 1e-3
    # the narrow mask samples fewer taps than the wide one (dynamic cropping)
    crop = rows[2]
    assert crop["kernel_taps"] < crop["baseline_kernel_taps"] <= 256
    json.dumps(quick_result, default=str)  # JSON-ready


def test_format_table(quick_result: dict) -> None:
    text = bench.format_table(quick_result)
    assert text.splitlines()[0].split()[:3] == ["check", "candidate", "baseline"]
    assert "QUICK" in text and "fft-floor" in text
    assert bench.format_table(quick_result["rows"]).count("\n") == 4  # header, rule, 3 rows


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
