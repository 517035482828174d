"""Seeds: ``run_seeds`` / ``groupconv train --seeds N`` and the mean +- std summary."""

from __future__ import annotations

import json
import math

import pytest

from groupconv.cli import main
from groupconv.experiments.registry import run_seeds, seed_summary


def test_seed_summary_is_the_sample_mean_and_std():
    s = seed_summary([0.5, 0.7, 0.9])
    assert s["mean"] == pytest.approx(0.7) and s["std"] == pytest.approx(0.2)
    assert (s["min"], s["max"], s["n"]) == (0.5, 0.9, 3)
    assert seed_summary([0.3])["std"] == 0.0
    with pytest.raises(ValueError, match="at least one"):
        seed_summary([])


def test_run_seeds_varies_the_initialisation_only(tmp_path):
    out = run_seeds("smoke", [0, 1], quick=True, config={"epochs": 1}, out_dir=str(tmp_path),
                    progress=False, device="cpu")
    assert out["seeds"] == [0, 1] and len(out["runs"]) == 2
    tests = [r["test_metric"] for r in out["runs"]]
    assert out["test_metric"]["mean"] == pytest.approx(sum(tests) / 2)
    assert math.isfinite(out["test_metric"]["std"])
    assert out["runs"][0]["num_params"] == out["runs"][1]["num_params"]
    saved = json.loads((tmp_path / "seeds.json").read_text())
    assert saved["test_metric"] == pytest.approx(out["test_metric"])
    assert (tmp_path / "seed0").is_dir() and (tmp_path / "seed1").is_dir()
    with pytest.raises(ValueError, match="seeds"):
        run_seeds("smoke", 0)


def test_cli_seeds(tmp_path, capsys):
    rc = main(["train", "smoke", "epochs=1", "--quick", "--seeds", "2", "--out", str(tmp_path),
               "--no-progress", "--device", "cpu"])
    assert rc == 0
    line = capsys.readouterr().out
    assert "+-" in line and "seeds [0, 1]" in line
    assert (tmp_path / "seeds.json").exists()
    assert main(["train", "smoke", "--seeds", "2", "--seed", "1", "--out", str(tmp_path)]) != 0
