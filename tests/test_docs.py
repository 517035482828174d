"""The documentation product: the Sphinx site builds with -W, page snippets and docstring
examples run, every public name is in the API reference, the figure script runs, the notebooks
are the generator's output and the site renders them executed (fast mode), with their figures."""

from __future__ import annotations

import doctest
import importlib
import os
import pkgutil
import re
import subprocess
import sys
from html.parser import HTMLParser
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


class _CellOutputImages(HTMLParser):
    """Collects the ``src`` of every ``<img>`` inside a myst-nb cell output
    (``<div class="cell_output ...">``), i.e. a figure an executed cell produced."""

    def __init__(self) -> None:
        super().__init__()
        self.depth = 0           # open <div>s since the cell output began (0: outside one)
        self.srcs: list[str] = []

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        if tag == "div":
            if self.depth:
                self.depth += 1
            elif "cell_output" in (attrs.get("class") or "").split():
                self.depth = 1
        elif tag == "img" and self.depth:
            self.srcs.append(attrs.get("src") or "")

    def handle_endtag(self, tag):
        if tag == "div" and self.depth:
            self.depth -= 1


def cell_output_images(html: str) -> list[str]:
    parser = _CellOutputImages()
    parser.feed(html)
    return parser.srcs


def test_cell_output_image_finder():
    """The HTML check below finds figures of cell outputs only, not images elsewhere on the page."""
    html = ('<img src="logo.png"><div class="cell docutils container">'
            '<div class="cell_input"><img src="in.png"></div>'
            '<div class="cell_output docutils container"><div class="output"><img src="a.png"></div>'
            '<img src="b.png"></div><img src="after.png"></div>')
    assert cell_output_images(html) == ["a.png", "b.png"]
    assert cell_output_images('<div class="cell_output"><pre>text</pre></div>') == []


def _generated_notebook_names() -> list[str]:
    sys.path.insert(0, str(NOTEBOOKS))
    try:
        build = importlib.import_module("build_notebooks")
    finally:
        sys.path.pop(0)
    return [name for name in build.NOTEBOOKS if (NOTEBOOKS / name).exists()]


@pytest.mark.slow
def test_sphinx_build_has_no_warnings(tmp_path):
    """``sphinx -W -b html`` (warnings are errors), offline, into a temporary directory. The
    notebooks are executed by the build (fast mode, a fresh cache: a cell error fails it), and
    every notebook page shows at least one figure produced by an executed cell."""
    _needs("sphinx")
    _needs("myst_nb")
    _needs("furo")
    _needs("ipykernel")
    _needs("matplotlib")
    cmd = [sys.executable, "-m", "sphinx", "-W", "--keep-going", "-q", "-b", "html",
           "-d", str(tmp_path / "doctrees"), str(DOCS), str(tmp_path / "html")]
    env = {**os.environ, "GROUPCONV_FAST": "1"}
    proc = subprocess.run(cmd, capture_output=True, text=True, cwd=ROOT, timeout=900, env=env)
    assert proc.returncode == 0, f"sphinx failed:\n{proc.stdout[-4000:]}\n{proc.stderr[-4000:]}"
    html = tmp_path / "html"
    assert (html / "index.html").exists()
    assert (html / "api" / "groups.html").exists()
    assert "_static/custom.css" in (html / "index.html").read_text()   # the code-width CSS
    names = _generated_notebook_names()
    assert names, "no notebook to render"
    for name in names:
        page = html / "notebooks" / Path(name).with_suffix(".html")
        assert page.exists(), f"{name} has no page in the site"
        srcs = cell_output_images(page.read_text())
        assert srcs, f"{page.name}: no figure from an executed cell"
        for src in srcs:
            image = (page.parent / src).resolve()
            assert image.is_file() and image.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n", src


@pytest.mark.slow
def test_sphinx_build_fails_on_a_notebook_cell_error(tmp_path):
    """The site's configuration stops the build on a notebook cell error, even without ``-W``."""
    nbformat = pytest.importorskip("nbformat")
    _needs("myst_nb")
    _needs("furo")
    _needs("ipykernel")
    src = tmp_path / "src"
    src.mkdir()
    (src / "conf.py").write_text(
        f"import sys\nsys.path.insert(0, {str(DOCS)!r})\n"
        "from conf import *  # noqa: F401,F403  (the site's settings, its setup() included)\n"
        "html_static_path = []\nhtml_css_files = []\n")
    (src / "index.md").write_text("# t\n\n```{toctree}\nbroken\n```\n")
    book = nbformat.v4.new_notebook(cells=[nbformat.v4.new_markdown_cell("# broken"),
                                           nbformat.v4.new_code_cell("x = 1\nx / 0")])
    book.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    nbformat.write(book, src / "broken.ipynb")
    cmd = [sys.executable, "-m", "sphinx", "-q", "-b", "html", str(src), str(tmp_path / "html")]
    proc = subprocess.run(cmd, capture_output=True, text=True, cwd=tmp_path, timeout=300)
    out = proc.stdout + proc.stderr
    assert proc.returncode != 0, f"the build passed over a failing cell:\n{out[-3000:]}"
    assert "ZeroDivisionError" in out, out[-3000:]
    assert not (src / "notebooks").exists(), "the site's notebooks were rendered into another project"


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
