"""The documentation product: the Sphinx site builds with -W, page snippets and docstring
examples run, every public name is in the API reference, the figure script and the notebooks
execute (fast mode)."""

from __future__ import annotations

import doctest
import importlib
import os
import pkgutil
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
DOCS = ROOT / "docs"
NOTEBOOKS = ROOT / "notebooks"

#: Pages written for the docs whose ```python blocks must run top to bottom.
SNIPPET_PAGES = [
    "getting_started.md",
    "concepts.md",
    "howto/verify_equivariance.md",
    "howto/kernel_networks.md",
    "howto/group_convolutions.md",
    "off_grid.md",
    "howto/attention.md",
    "howto/partial_equivariance.md",
    "howto/points.md",
]

#: Modules whose docstring examples need an optional dependency that is absent here.
OPTIONAL_MODULES = {"groupconv.interop.escnn": "escnn"}


def _needs(module: str) -> None:
    pytest.importorskip(module)


def _public_modules() -> list[str]:
    import groupconv

    names = ["groupconv"]
    for info in pkgutil.walk_packages(groupconv.__path__, "groupconv."):
        if not info.name.rsplit(".", 1)[-1].startswith("_"):
            names.append(info.name)
    return sorted(names)


# --- pages ---------------------------------------------------------------------------------


def test_every_page_is_in_the_toctree():
    index = (DOCS / "index.md").read_text()
    pages = [p.relative_to(DOCS).with_suffix("").as_posix() for p in DOCS.rglob("*.md")
             if "_build" not in p.parts and p.name != "index.md"]
    missing = [p for p in pages if p not in index]
    assert not missing, f"pages not in docs/index.md's toctree: {missing}"


@pytest.mark.parametrize("page", SNIPPET_PAGES)
def test_page_snippets_run(page, tmp_path, monkeypatch):
    """Every ```python block of the page runs, in order, in one namespace (like a reader would)."""
    text = (DOCS / page).read_text()
    blocks = re.findall(r"```python\n(.*?)```", text, flags=re.S)
    assert blocks, f"{page} has no python snippet"
    monkeypatch.chdir(tmp_path)
    namespace: dict[str, object] = {"__name__": f"docs_snippet_{page}"}
    for i, block in enumerate(blocks):
        if block.lstrip().startswith("def test_"):       # a pytest example: define and call it
            exec(compile(block, f"{page}[{i}]", "exec"), namespace)
            fn = next(v for k, v in namespace.items() if k.startswith("test_") and callable(v))
            import groupconv.testing as kit
            fn(device="cpu", assert_equivariant=kit.assert_equivariant)
            continue
        exec(compile(block, f"{page}[{i}]", "exec"), namespace)


def test_api_reference_lists_every_public_name():
    rst = "\n".join(p.read_text() for p in (DOCS / "api").glob("*.rst"))
    sys.path.insert(0, str(DOCS / "api"))
    try:
        gen = importlib.import_module("_generate")
    finally:
        sys.path.pop(0)
    missing = []
    for _page, (_title, _pkg, modules) in gen.PAGES.items():
        for modname in modules:
            mod = importlib.import_module(modname)
            for name in getattr(mod, "__all__", []):
                if f"{modname}.{name}" not in rst and not (name in rst and modname in rst):
                    missing.append(f"{modname}.{name}")
    assert not missing, f"run `python docs/api/_generate.py`; not in docs/api: {missing}"


@pytest.mark.slow
def test_sphinx_build_has_no_warnings(tmp_path):
    """``sphinx -W -b html`` (warnings are errors), offline, into a temporary directory."""
    _needs("sphinx")
    _needs("myst_parser")
    cmd = [sys.executable, "-m", "sphinx", "-W", "--keep-going", "-q", "-b", "html",
           "-d", str(tmp_path / "doctrees"), str(DOCS), str(tmp_path / "html")]
    proc = subprocess.run(cmd, capture_output=True, text=True, cwd=ROOT, timeout=600)
    assert proc.returncode == 0, f"sphinx failed:\n{proc.stdout[-4000:]}\n{proc.stderr[-4000:]}"
    assert (tmp_path / "html" / "index.html").exists()
    assert (tmp_path / "html" / "api" / "groups.html").exists()


def test_figure_script_renders_pngs(tmp_path):
    _needs("matplotlib")
    sys.path.insert(0, str(DOCS))
    try:
        figs = importlib.import_module("make_figures")
    finally:
        sys.path.pop(0)
    paths = figs.main(tmp_path)
    assert {p.name for p in paths} == set(figs.FIGURES)
    for p in paths:
        assert p.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
        committed = DOCS / "_static" / "figures" / p.name
        assert committed.exists(), f"commit {committed} (python docs/make_figures.py)"
        assert committed.stat().st_size < 200_000


# --- docstring examples ----------------------------------------------------------------------


@pytest.mark.parametrize("modname", _public_modules())
def test_docstring_examples(modname):
    """The ``>>>`` examples of every module run as doctests."""
    if modname in OPTIONAL_MODULES:
        _needs(OPTIONAL_MODULES[modname])
    mod = importlib.import_module(modname)
    finder = doctest.DocTestFinder(exclude_empty=True)
    runner = doctest.DocTestRunner(optionflags=doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE)
    tests = [t for t in finder.find(mod, modname) if t.examples]
    out: list[str] = []
    for t in tests:
        runner.run(t, out=out.append)
    result = runner.summarize(verbose=False)
    assert result.failed == 0, "".join(out)


# --- notebooks ---------------------------------------------------------------------------------


def test_notebooks_are_generated_and_stripped():
    nbformat = pytest.importorskip("nbformat")
    sys.path.insert(0, str(NOTEBOOKS))
    try:
        build = importlib.import_module("build_notebooks")
    finally:
        sys.path.pop(0)
    for name, (cells, _modules) in build.NOTEBOOKS.items():
        path = NOTEBOOKS / name
        if not path.exists():
            continue
        book = nbformat.read(path, as_version=4)
        assert [c.source for c in book.cells] == build.cell_sources(cells), (
            f"{name} is out of date: run `python notebooks/build_notebooks.py`")
        assert all(not c.get("outputs") for c in book.cells if c.cell_type == "code"), f"{name} has outputs"


def _notebook_paths() -> list[Path]:
    return sorted(NOTEBOOKS.glob("*.ipynb"))


@pytest.mark.slow
@pytest.mark.parametrize("path", _notebook_paths(), ids=lambda p: p.stem)
def test_notebook_executes(path, tmp_path, monkeypatch):
    """Each notebook runs in fast mode (``GROUPCONV_FAST=1``) without a cell error."""
    nbformat = pytest.importorskip("nbformat")
    nbclient = pytest.importorskip("nbclient")
    pytest.importorskip("ipykernel")
    _needs("matplotlib")
    monkeypatch.setenv("GROUPCONV_FAST", "1")
    monkeypatch.delenv("MPLBACKEND", raising=False)   # keep ipykernel's inline backend (plots as outputs)
    monkeypatch.setenv("PYTHONPATH", str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", ""))
    book = nbformat.read(path, as_version=4)
    client = nbclient.NotebookClient(book, timeout=300, kernel_name="python3",
                                     resources={"metadata": {"path": str(tmp_path)}})
    client.execute()      # raises CellExecutionError naming the cell on any error
    images = sum("image/png" in o.get("data", {}) for c in book.cells for o in c.get("outputs", []))
    assert images >= 1, f"{path.name} produced no plot"
