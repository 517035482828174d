"""``scripts/gpu_check.sh`` runs end to end in its CPU dry-run mode (so the GPU script cannot rot)."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import torch

ROOT = Path(__file__).resolve().parents[1]
SCRIPT = ROOT / "scripts" / "gpu_check.sh"

pytestmark = pytest.mark.skipif(shutil.which("bash") is None or shutil.which("timeout") is None,
                                reason="needs bash and coreutils timeout")


def _run(*args: str, out: Path) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHON": sys.executable, "OMP_NUM_THREADS": "1"}
    return subprocess.run(["bash", str(SCRIPT), "--out", str(out), *args], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=540)


def test_dry_run_writes_json_and_markdown_summaries(tmp_path: Path) -> None:
    proc = _run("--dry-run", out=tmp_path)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    summary = json.loads((tmp_path / "summary.json").read_text())
    assert summary["dry_run"] is True and summary["ok"] is True
    assert [s["step"] for s in summary["steps"]] == ["environment", "tests", "bench-conv", "demo"]
    assert all(s["rc"] == 0 and s["seconds"] >= 0 for s in summary["steps"])
    assert summary["tests"]["tests"] >= 1 and summary["tests"]["failures"] == 0
    assert summary["environment"]["torch"] == torch.__version__
    checks = {b["check"] for b in summary["bench"]}
    assert {"fft-vs-direct", "ckconv-eval-floor"} <= checks
    assert all(isinstance(b["ok"], bool) for b in summary["bench"])
    md = (tmp_path / "summary.md").read_text()
    assert md.startswith("# gpu_check DRY RUN") and "| tests | ok |" in md
    assert "fft-vs-direct" in md


def test_failed_step_is_reported(tmp_path: Path) -> None:
    """A failing step makes the script exit 1 and the summary name it (not a silent pass)."""
    env_timeout = {"GPU_CHECK_BENCH_TIMEOUT": "0.01"}
    os.environ.update(env_timeout)
    try:
        proc = _run("--dry-run", out=tmp_path)
    finally:
        for k in env_timeout:
            os.environ.pop(k)
    assert proc.returncode == 1
    summary = json.loads((tmp_path / "summary.json").read_text())
    bench = next(s for s in summary["steps"] if s["step"] == "bench-conv")
    assert bench["ok"] is False and bench["timed_out"] is True
    assert "| bench-conv | TIMEOUT |" in (tmp_path / "summary.md").read_text()


@pytest.mark.skipif(torch.cuda.is_available(), reason="a real run would start on this machine")
def test_real_run_needs_cuda(tmp_path: Path) -> None:
    proc = _run(out=tmp_path)
    assert proc.returncode == 2 and "no CUDA device" in proc.stderr
