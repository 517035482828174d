"""The ``groupconv`` command: help, errors, check, train and bench entry points."""

import json
import subprocess
import sys

import pytest

from groupconv.cli import main


def test_help_lists_subcommands(capsys):
    with pytest.raises(SystemExit) as exc:
        main(["--help"])
    assert exc.value.code == 0
    out = capsys.readouterr().out
    for cmd in ("check", "train", "bench"):
        assert cmd in out


def test_no_command_prints_help_and_fails(capsys):
    assert main([]) == 2
    assert "usage" in capsys.readouterr().out


def test_check_one_group_table_and_json(tmp_path, capsys):
    path = tmp_path / "check.json"
    assert main(["check", "C4", "--device", "cpu", "--examples", "3", "--json", str(path)]) == 0
    out = capsys.readouterr().out
    assert "associativity" in out and "C4" in out and "0 failed" in out
    records = json.loads(path.read_text())
    assert {r["group"] for r in records} == {"C4"}
    assert all(r["status"] in ("pass", "n/a") for r in records)


def test_check_unknown_target_is_one_clear_line(capsys):
    assert main(["check", "NoSuchGroup"]) == 2
    err = capsys.readouterr().err
    assert "unknown check target 'NoSuchGroup'" in err and "SO2" in err


def test_cuda_requested_but_absent(capsys):
    import torch

    if torch.cuda.is_available():
        pytest.skip("CUDA is present: the absent-CUDA error cannot be shown")
    assert main(["check", "C4", "--device", "cuda"]) == 2
    assert "CUDA was asked for" in capsys.readouterr().err


def test_train_unknown_experiment_lists_known(capsys):
    assert main(["train", "no-such-experiment"]) == 2
    err = capsys.readouterr().err
    assert "unknown experiment" in err and "smoke" in err


def test_train_bad_override(capsys):
    assert main(["train", "smoke", "epochs"]) == 2
    assert "KEY=VALUE" in capsys.readouterr().err


def test_train_smoke_quick_writes_metrics(tmp_path, capsys):
    out = tmp_path / "run"
    assert main(["train", "smoke", "--quick", "--out", str(out), "--no-progress", "--device", "cpu"]) == 0
    assert (out / "metrics.json").is_file() and (out / "history.csv").is_file()
    assert "test accuracy" in capsys.readouterr().out


def test_python_dash_m_entry_point():
    res = subprocess.run([sys.executable, "-m", "groupconv", "--version"], capture_output=True, text=True)
    assert res.returncode == 0 and res.stdout.startswith("groupconv ")


def test_demo_quick_writes_report(tmp_path, capsys):
    out = tmp_path / "demo"
    assert main(["demo", "--quick", "--out", str(out), "--no-progress", "--device", "cpu"]) == 0
    printed = capsys.readouterr().out
    assert "C4 G-CNN" in printed and "plain CNN" in printed
    assert (out / "metrics.json").is_file() and (out / "table.txt").is_file()


def test_demo_rejects_negative_seed(capsys):
    assert main(["demo", "--seed", "-1"]) == 2
    assert "--seed" in capsys.readouterr().err
