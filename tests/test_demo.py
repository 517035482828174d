"""The quick `groupconv demo` end to end: table, metrics JSON and PNG plots in the report folder."""

import json

import pytest

pytest.importorskip("sklearn")


def test_quick_demo_writes_report(tmp_path, capsys):
    from groupconv.experiments.demo import format_demo_table, run_demo

    res = run_demo(tmp_path / "report", device="cpu", seed=0, quick=True, progress=True)
    out = capsys.readouterr()
    assert "C4 G-CNN" in out.out and "plain CNN" in out.out and "SO(2) G-CNN" in out.out
    assert "[6/6]" in out.err  # one progress bar per training run
    assert sorted(res["models"]) == ["c4", "cnn", "so2"]
    assert len(res["rows"]) == 6 and {r["train_fraction"] for r in res["rows"]} == {1.0, 0.1}
    for m in res["models"].values():
        assert m["params"] > 0
        assert set(m["test_accuracy"]) == {"1", "0.1"}
        assert all(0.0 <= a <= 1.0 for a in m["test_accuracy"].values())
    inv = {k: v["invariance"]["rot90"] for k, v in res["models"].items()}
    assert inv["c4"] < 1e-4 and inv["so2"] < 1e-4 and inv["cnn"] > 1e-3  # exact vs not invariant
    report = tmp_path / "report"
    data = json.loads((report / "metrics.json").read_text())
    assert data["models"]["c4"]["params"] == res["models"]["c4"]["params"]
    assert (report / "table.txt").read_text().strip() == format_demo_table(res).strip()
    pytest.importorskip("matplotlib")
    for name in ("accuracy_vs_data.png", "output_under_rotation.png", "learned_kernels.png"):
        assert (report / name).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_demo_rejects_bad_arguments(tmp_path):
    from groupconv.experiments.demo import run_demo

    with pytest.raises(ValueError, match="seed"):
        run_demo(tmp_path, seed=-1, quick=True, progress=False)
