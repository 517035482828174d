"""The pytest plugin is opt-in: installing groupconv changes no other project's test suite
(issue 12, item 4). Runs pytest in a throw-away project in a subprocess."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from importlib import metadata
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def test_pyproject_declares_no_pytest11_entry_point():
    text = (ROOT / "pyproject.toml").read_text()
    assert "pytest11" not in text.replace("# no pytest11 entry point", "")


def _stale() -> list[str]:
    # an editable install made before this change still declares the entry point until it is
    # reinstalled; blocking that name is exactly what a fresh install looks like
    eps = metadata.entry_points(group="pytest11")
    return ["-p", "no:groupconv"] if any(ep.value == "groupconv.testing.plugin" for ep in eps) else []


def _run_pytest(project: Path, *args: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": str(ROOT), "PYTEST_ADDOPTS": ""}
    env.pop("PYTEST_XDIST_WORKER", None)
    return subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-p", "no:xdist", *_stale(), *args,
         str(project)], cwd=project, env=env, capture_output=True, text=True, timeout=300)


def test_other_projects_device_fixture_is_left_alone(tmp_path):
    (tmp_path / "conftest.py").write_text(textwrap.dedent("""
        import pytest

        @pytest.fixture
        def device():
            return "their own device"
    """))
    (tmp_path / "test_theirs.py").write_text(textwrap.dedent("""
        import groupconv  # installed and imported, but not opted into

        def test_uses_own_fixture(device):
            assert device == "their own device"
    """))
    res = _run_pytest(tmp_path)
    assert res.returncode == 0, res.stdout + res.stderr
    assert "1 passed" in res.stdout  # not re-parametrised over groupconv's devices


USER_TEST = """
import torch

def test_fixtures(device, float_dtype, assert_equivariant):
    assert isinstance(device, torch.device) and float_dtype in (torch.float32, torch.float64)
    assert callable(assert_equivariant)
"""


@pytest.mark.parametrize("how", ["conftest", "command-line"])
def test_opting_in_gives_the_fixtures(tmp_path, how):
    (tmp_path / "test_user.py").write_text(USER_TEST)
    if how == "conftest":
        (tmp_path / "conftest.py").write_text('pytest_plugins = ["groupconv.testing.plugin"]\n')
        res = _run_pytest(tmp_path, "--groupconv-devices=cpu")
    else:
        res = _run_pytest(tmp_path, "-p", "groupconv.testing.plugin", "--groupconv-devices=cpu")
    assert res.returncode == 0, res.stdout + res.stderr
    assert "2 passed" in res.stdout  # cpu x (float32, float64)


def test_without_opting_in_the_fixtures_are_absent(tmp_path):
    (tmp_path / "test_user.py").write_text(USER_TEST)
    res = _run_pytest(tmp_path)
    assert res.returncode != 0 and "fixture 'device' not found" in res.stdout
