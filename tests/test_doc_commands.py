"""Every shell command in the README and the docs is run by a test (issue 12, item 5), the way
the Python blocks already are, plus the docs facts that drifted (experiment list, py.typed).

Each command of every ```bash block is dispatched on its program: commands that are cheap are
run for real (``groupconv ... --quick``, ``--list``, ``make -n``, ``pytest --collect-only``,
the notebook generator in a copy); the rest are run as far as possible without minutes of work
or network: ``groupconv`` through the real argument parser and option checks, ``pip install``
against the extras and files it names, shell scripts through ``bash -n``. A program with no
handler fails the test, so a new kind of command cannot slip in unchecked.
"""

from __future__ import annotations

import os
import re
import shlex
import shutil
import subprocess
import sys
from importlib import metadata
from pathlib import Path

import pytest

from groupconv.cli import build_parser

ROOT = Path(__file__).resolve().parents[1]
PAGES = [ROOT / "README.md"] + sorted(p for p in (ROOT / "docs").rglob("*.md") if "_build" not in p.parts)


def _commands() -> list[tuple[str, str]]:
    out = []
    for page in PAGES:
        for block in re.findall(r"```(?:bash|sh|shell)\n(.*?)```", page.read_text(), flags=re.S):
            for line in block.splitlines():
                line = line.split(" #", 1)[0].strip() if not line.lstrip().startswith("#") else ""
                for cmd in filter(None, (c.strip() for c in line.split("&&"))):
                    out.append((page.relative_to(ROOT).as_posix(), cmd))
    return out


COMMANDS = _commands()


def _stale_plugin_args() -> list[str]:
    eps = metadata.entry_points(group="pytest11")
    return ["-p", "no:groupconv"] if any(ep.value == "groupconv.testing.plugin" for ep in eps) else []


def _expand_synopsis(argv: list[str], tmp: Path) -> list[list[str]]:
    """``bench a|b [--json PATH]`` -> one argv per alternative, brackets dropped, metavars filled."""
    fill = {"PATH": str(tmp / "out.json"), "DIR": str(tmp / "out"), "FILE": str(tmp / "f.json"), "N": "1"}
    flat = [fill.get(a.strip("[]"), a.strip("[]")) for a in argv]
    alts = [(i, a.split("|")) for i, a in enumerate(flat) if "|" in a]
    if not alts:
        return [flat]
    i, options = alts[0]
    return [flat[:i] + [o] + flat[i + 1:] for o in options]


def _check_groupconv(argv: list[str], tmp: Path) -> None:
    from groupconv.cli import main
    from groupconv.experiments import list_experiments

    for args in _expand_synopsis(argv, tmp):
        parser = build_parser()
        ns, extra = parser.parse_known_args(args)  # exactly main()'s parsing
        if ns.command == "train":
            extra = [e for e in extra if "=" not in e]
            if ns.experiment is not None:
                assert ns.experiment in list_experiments(), args
        assert not extra, f"unrecognised arguments {extra} in {args}"
        cheap = "--quick" in args and ns.command != "bench" or "--list" in args
        cheap = cheap or (ns.command == "bench" and "--quick" in args and ns.suite in ("groups", "separable"))
        if "cuda" in args and not __import__("torch").cuda.is_available():
            assert main(args) == 2  # the one-line "no CUDA" error, not a traceback
        elif cheap:
            assert main([*args, "--out", str(tmp / "o")] if ns.command == "train" else args) == 0


def _check_make(argv: list[str]) -> None:
    targets = set(re.findall(r"^([\w.-]+):", (ROOT / "Makefile").read_text(), flags=re.M))
    for t in argv[1:]:
        assert t in targets, f"make {t}: no such Makefile target"
    if shutil.which("make"):
        res = subprocess.run(["make", "-n", "-C", str(ROOT), *argv[1:]], capture_output=True, text=True)
        assert res.returncode == 0, res.stderr


def _check_pip(argv: list[str]) -> None:
    assert argv[1] == "install", argv
    text = (ROOT / "pyproject.toml").read_text()
    extras_block = text.split("[project.optional-dependencies]", 1)[1].split("\n[", 1)[0]
    extras = set(re.findall(r"^(\w+)\s*=", extras_block, flags=re.M))
    rest = argv[2:]
    for i, a in enumerate(rest):
        if a == "-r":
            assert (ROOT / rest[i + 1]).is_file(), f"pip install -r {rest[i + 1]}: no such file"
        m = re.fullmatch(r"\.\[([\w,]+)\]", a)
        if m:
            missing = set(m.group(1).split(",")) - extras
            assert not missing, f"pip install {a}: no extra {missing} in pyproject.toml"


def _check_python(argv: list[str], tmp: Path) -> None:
    if argv[1:3] == ["-m", "pytest"]:
        args = [a for a in argv[3:]]
        cmd = [sys.executable, "-m", "pytest", "--collect-only", "-q", "-p", "no:cacheprovider",
               *_stale_plugin_args(), *args]
        res = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True,
                             env={**os.environ, "PYTHONPATH": str(ROOT)}, timeout=600)
        collected = re.search(r"\d+(/\d+)? tests? collected", res.stdout)
        assert res.returncode == 0 and collected, res.stdout[-2000:] + res.stderr[-2000:]
        return
    if argv[1:3] == ["-m", "groupconv"]:
        _check_groupconv(argv[3:], tmp)
        return
    if argv[1] == "-m":  # another module's command line: its --quick version, for real
        env = {**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1"}
        base = [sys.executable, "-m", argv[2]]
        helptext = subprocess.run([*base, "--help"], capture_output=True, text=True, env=env, timeout=120)
        assert helptext.returncode == 0 and "--quick" in helptext.stdout, helptext.stderr[-2000:]
        args = [str(tmp / "o") if a.startswith("runs/") else a for a in argv[3:]]
        res = subprocess.run([*base, *args, "--quick"], capture_output=True, text=True, env=env, timeout=600)
        assert res.returncode == 0, res.stderr[-2000:]
        return
    script = ROOT / argv[1]
    assert script.is_file(), f"python {argv[1]}: no such file"
    if script.name == "build_notebooks.py":  # run for real, writing into a copy
        pytest.importorskip("nbformat")
        copy = tmp / "notebooks"
        shutil.copytree(script.parent, copy, ignore=shutil.ignore_patterns("*.ipynb"))
        res = subprocess.run([sys.executable, str(copy / script.name)], capture_output=True, text=True,
                             env={**os.environ, "PYTHONPATH": str(ROOT), "MPLBACKEND": "Agg"}, timeout=300)
        assert res.returncode == 0, res.stderr[-2000:]
        assert list(copy.glob("*.ipynb"))
        return
    raise AssertionError(f"no handler for python {argv[1]}")


@pytest.mark.parametrize("page, command", COMMANDS, ids=[f"{p}:{c[:40]}" for p, c in COMMANDS])
def test_shell_command_runs(page, command, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    argv = shlex.split(command)
    while argv and re.fullmatch(r"[A-Z_]+=\S*", argv[0]):  # VAR=value prefixes
        k, v = argv.pop(0).split("=", 1)
        monkeypatch.setenv(k, v)
    prog = argv[0].removeprefix(".venv/bin/")
    if prog == "make":
        _check_make(argv)
    elif prog == "groupconv":
        _check_groupconv(argv[1:], tmp_path)
    elif prog == "pip":
        _check_pip(argv)
    elif prog in ("python", "python3"):
        _check_python(argv, tmp_path)
    elif prog == "bash":
        script = ROOT / argv[1]
        assert script.is_file(), f"bash {argv[1]}: no such file"
        assert subprocess.run(["bash", "-n", str(script)]).returncode == 0
    elif prog.startswith("scripts/") and prog.endswith(".sh"):  # a project script run directly
        script = ROOT / prog
        assert script.is_file(), f"{prog}: no such file"
        assert subprocess.run(["bash", "-n", str(script)]).returncode == 0
        text = script.read_text()
        for opt in (a for a in argv[1:] if a.startswith("--")):
            assert opt in text, f"{page}: {prog} has no option {opt}"
    else:
        raise AssertionError(f"{page}: no handler for the command {command!r}: add one to this test")


def test_the_commands_were_found():
    pages = {p for p, _ in COMMANDS}
    assert {"README.md", "docs/getting_started.md", "docs/notebooks.md", "docs/benchmarks.md"} <= pages


def test_readme_lists_every_experiment():
    from groupconv.experiments import list_experiments

    text = (ROOT / "README.md").read_text()
    section = text.split("named experiments (`groupconv train --list`):", 1)[1].split("Checkpoints", 1)[0]
    listed = re.findall(r"`([\w-]+)`", section.split(". Overrides", 1)[0])
    assert sorted(listed) == list_experiments()


def test_getting_started_says_what_make_demo_runs():
    text = (ROOT / "docs" / "getting_started.md").read_text()
    demo = next(ln for ln in text.splitlines() if ln.startswith("make demo"))
    recipe = re.search(r"^demo:.*\n\t(.*)$", (ROOT / "Makefile").read_text(), flags=re.M).group(1)
    assert recipe.split()[-1] == "demo" and "`groupconv demo`" in demo


def test_package_ships_py_typed():
    assert (ROOT / "groupconv" / "py.typed").is_file()
    text = (ROOT / "pyproject.toml").read_text()
    assert re.search(r'\[tool\.setuptools\.package-data\]\s*\ngroupconv = \["py\.typed"\]', text)
