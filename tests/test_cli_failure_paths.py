"""Failure paths of ``groupconv train`` / ``bench`` and of checkpoints: one-line errors naming the
option, honoured overrides, resumable interrupts, extendable runs (issue 12, item 3)."""

from __future__ import annotations

import json

import pytest
import torch

from groupconv.cli import main
from groupconv.experiments import trainer as trainer_module

pytest.importorskip("sklearn")

BASE = ["train", "smoke", "--quick", "--no-progress", "--device", "cpu"]


pytestmark = pytest.mark.usefixtures("one_thread")  # tiny tensors: 1 intra-op thread


def _metrics(out) -> dict:
    return json.loads((out / "metrics.json").read_text())


def _one_error_line(err: str) -> str:
    lines = [ln for ln in err.splitlines() if ln.strip()]
    assert len(lines) == 1, err
    assert "Traceback" not in err
    return lines[0]


def test_overrides_after_options_and_fit_settings_honoured(tmp_path, capsys):
    out = tmp_path / "run"
    # KEY=VALUE after options; scheduler / max_steps are metrics.json config keys the smoke
    # experiment's own config does not list
    assert main([*BASE, "--out", str(out), "epochs=2", "scheduler=none", "max_steps=3"]) == 0
    cfg = _metrics(out)["config"]
    assert cfg["epochs"] == 2 and cfg["scheduler"] == "none" and cfg["max_steps"] == 3
    assert _metrics(out)["steps"] == 3
    with pytest.raises(SystemExit):  # other stray arguments are still refused
        main([*BASE, "--out", str(out), "--no-such-flag"])


@pytest.mark.parametrize("item, what", [("seed=1.5", "expected an int, got float 1.5"),
                                        ("seed=abc", "expected an int, got str 'abc'"),
                                        ("lr=fast", "expected a number"),
                                        ("epochs=true", "expected a number, got bool"),
                                        ("nosuchkey=1", "has no config key 'nosuchkey'")])
def test_badly_typed_overrides_name_the_key(tmp_path, capsys, item, what):
    assert main([*BASE, "--out", str(tmp_path / "r"), item]) == 2
    line = _one_error_line(capsys.readouterr().err)
    assert item.split("=")[0] in line and what in line


def test_resume_prints_epoch_extends_and_mismatch_names_no_resume(tmp_path, capsys):
    out = tmp_path / "run"
    assert main([*BASE, "--out", str(out), "epochs=1"]) == 0
    capsys.readouterr()
    assert main([*BASE, "--out", str(out), "epochs=2"]) == 0  # extend a finished run
    err = capsys.readouterr().err
    assert "resuming from epoch 1" in err and "extending to 2 epochs" in err
    assert [h["epoch"] for h in _metrics(out)["history"]] == [1, 2]
    assert main([*BASE, "--out", str(out), "epochs=2", "lr=0.5"]) == 2
    line = _one_error_line(capsys.readouterr().err)
    assert "different settings" in line and "'lr'" in line and "--no-resume" in line
    assert main([*BASE, "--out", str(out), "epochs=1"]) == 2  # fewer epochs than done: refused
    assert "--no-resume" in capsys.readouterr().err
    assert main([*BASE, "--out", str(out), "epochs=2", "lr=0.5", "--no-resume"]) == 0


@pytest.mark.parametrize("kind", ["truncated", "empty", "foreign", "foreign-dict"])
def test_unreadable_checkpoint_is_one_line(tmp_path, capsys, kind):
    out = tmp_path / "run"
    assert main([*BASE, "--out", str(out), "epochs=1"]) == 0
    ck = out / "checkpoint.pt"
    if kind == "truncated":
        ck.write_bytes(ck.read_bytes()[:200])
    elif kind == "empty":
        ck.write_bytes(b"")
    elif kind == "foreign":  # a pickle that weights_only refuses
        torch.save({"model": object.__new__(json.JSONDecoder)}, ck, _use_new_zipfile_serialization=True)
    else:
        torch.save({"epoch": 3}, ck)
    capsys.readouterr()
    assert main([*BASE, "--out", str(out), "epochs=1"]) == 2
    line = _one_error_line(capsys.readouterr().err)
    assert f"checkpoint {ck} is unreadable" in line and "delete it or pass --no-resume" in line
    assert "weights_only" not in line
    assert main([*BASE, "--out", str(out), "epochs=1", "--no-resume"]) == 0


def test_ctrl_c_leaves_a_resumable_checkpoint(tmp_path, capsys, monkeypatch):
    out = tmp_path / "run"
    real = trainer_module.Trainer._train_epoch

    def interrupted(self, net, epoch, prog):
        if epoch == 2:
            raise KeyboardInterrupt
        return real(self, net, epoch, prog)

    monkeypatch.setattr(trainer_module.Trainer, "_train_epoch", interrupted)
    assert main([*BASE, "--out", str(out), "epochs=3"]) == 130
    line = _one_error_line(capsys.readouterr().err)
    assert "interrupted" in line and "resume" in line
    assert torch.load(out / "checkpoint.pt", weights_only=True)["epoch"] == 1
    assert not list(out.glob(".checkpoint.pt.tmp*"))
    monkeypatch.setattr(trainer_module.Trainer, "_train_epoch", real)
    assert main([*BASE, "--out", str(out), "epochs=3"]) == 0
    assert "resuming from epoch 1" in capsys.readouterr().err
    assert [h["epoch"] for h in _metrics(out)["history"]] == [1, 2, 3]


def test_out_that_is_a_file_or_cannot_be_created(tmp_path, capsys):
    f = tmp_path / "afile"
    f.write_text("x")
    assert main([*BASE, "--out", str(f)]) == 2
    assert "--out" in _one_error_line(capsys.readouterr().err)
    assert main([*BASE, "--out", str(f / "sub")]) == 2
    assert "cannot create the folder" in _one_error_line(capsys.readouterr().err)


@pytest.mark.parametrize("argv, what", [
    (["train", "smoke", "--quick", "--device", "tpu"], "--device tpu: expected cpu, cuda or cuda:N"),
    (["bench", "groups", "--device", "tpu"], "--device tpu"),
    (["check", "C4", "--examples", "0"], "--examples must be >= 1, got 0"),
    (["bench", "groups", "--quick", "--batch", "0"], "--batch must be >= 1, got 0"),
    (["bench", "groups", "--quick", "--batch", "-5"], "--batch must be >= 1, got -5"),
])
def test_bad_option_values_are_one_line(argv, what, capsys):
    assert main(argv) == 2
    assert what in _one_error_line(capsys.readouterr().err)


def test_bench_json_checked_before_running_and_batch_honoured_under_quick(tmp_path, capsys, monkeypatch):
    import groupconv.benchmarks.groups as bench_groups

    calls = []

    def fake_run(batch, device, quick):
        calls.append((batch, quick))
        return {"rows": []}

    monkeypatch.setattr(bench_groups, "run_groups_benchmark", fake_run)
    monkeypatch.setattr(bench_groups, "format_table", lambda res: "table")
    bad = tmp_path / "missing" / "out.json"
    assert main(["bench", "groups", "--quick", "--json", str(bad)]) == 2
    assert "--json" in _one_error_line(capsys.readouterr().err) and calls == []  # nothing ran
    assert main(["bench", "groups", "--quick", "--json", str(tmp_path)]) == 2  # a directory
    assert main(["bench", "groups", "--quick", "--batch", "123", "--json", str(tmp_path / "b.json")]) == 0
    assert calls == [(123, True)]
    assert main(["bench", "groups", "--quick"]) == 0
    assert calls[-1] == (10_000, True)
