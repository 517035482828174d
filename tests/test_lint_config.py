"""CI runs the linters: ruff and the type check (mypy on groupconv/), and the package ships its
type hints (PEP 561 ``py.typed``)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

tomllib = pytest.importorskip("tomllib")  # Python >= 3.11

ROOT = Path(__file__).resolve().parents[1]


def _recipe(target: str) -> str:
    m = re.search(rf"^{target}:.*\n((?:\t.*\n|#.*\n)+)", (ROOT / "Makefile").read_text(), flags=re.M)
    assert m, f"Makefile has no {target} target"
    return m.group(1)


def test_ci_lints_before_testing():
    steps = [ln.strip() for ln in (ROOT / ".ci" / "run").read_text().splitlines()
             if ln.strip() and not ln.lstrip().startswith("#")]
    assert "make lint" in steps and "make test" in steps
    assert steps.index("make lint") < steps.index("make test")


def test_lint_runs_ruff_and_mypy_installed_by_the_dev_extra():
    lint = _recipe("lint")
    assert "ruff check groupconv tests" in lint and "-m mypy" in lint
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())
    assert any(dep.startswith("mypy") for dep in project["project"]["optional-dependencies"]["dev"])
    assert "dev" in re.search(r'-e "\.\[([a-z,]+)\]"', (ROOT / "Makefile").read_text()).group(1).split(",")
    mypy = project["tool"]["mypy"]
    assert mypy["files"] == ["groupconv"] and mypy["python_version"] == "3.10"


def test_py_typed_is_packaged():
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())
    assert (ROOT / "groupconv" / "py.typed").is_file()
    assert "py.typed" in project["tool"]["setuptools"]["package-data"]["groupconv"]
