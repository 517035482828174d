"""Sphinx configuration of the groupconv documentation (offline; builds with ``-W``)."""

from __future__ import annotations

import os
import shutil
import sys
import tempfile
from pathlib import Path

DOCS = Path(__file__).resolve().parent
ROOT = DOCS.parent
sys.path.insert(0, str(ROOT))

project = "groupconv"
author = "groupconv developers"
copyright = "2024-2025, groupconv developers"

try:
    from groupconv import __version__ as release
except Exception:  # pragma: no cover - the docs still build without the package installed
    release = "0.1.0"
version = release

extensions = [
    "myst_nb",  # MyST markdown (it wraps myst_parser) and executed notebooks
    "sphinx.ext.autodoc",
    "sphinx.ext.autosummary",
    "sphinx.ext.napoleon",
    "sphinx.ext.viewcode",
    "sphinx.ext.mathjax",
]

source_suffix = {".md": "myst-nb", ".ipynb": "myst-nb", ".rst": "restructuredtext"}
root_doc = "index"
exclude_patterns = ["_build", "Thumbs.db", ".DS_Store", "make_figures.py", "**.ipynb_checkpoints"]

# MyST: $...$ maths, ::: fences, heading anchors for [text](page.md#anchor) links.
myst_enable_extensions = ["dollarmath", "colon_fence", "deflist"]
myst_heading_anchors = 3

# --- notebooks -------------------------------------------------------------------------------
# The source of truth is notebooks/build_notebooks.py; the committed notebooks/*.ipynb are its
# output with no outputs. The site renders the generator's notebooks into docs/notebooks/
# (generated, git-ignored) and executes them at build time in the fast mode the notebooks honour
# (GROUPCONV_FAST=1: tiny sizes, few steps), so that their pages show the outputs and figures.
NOTEBOOK_SUBDIR = "notebooks"   # docs/notebooks/*.ipynb, pages notebooks/<name>


def render_notebooks(out: Path) -> list[Path]:
    """Write the generator's notebooks into ``out``; files whose bytes did not change are left
    alone (their mtime too, so an incremental build does not re-read them), files the generator
    no longer produces are removed."""
    sys.path.insert(0, str(ROOT / "notebooks"))
    try:
        import build_notebooks
    finally:
        sys.path.pop(0)
    out.mkdir(exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        fresh = build_notebooks.build(Path(tmp))
        for path in fresh:
            target = out / path.name
            if not target.exists() or target.read_bytes() != path.read_bytes():
                shutil.copyfile(path, target)
    names = {p.name for p in fresh}
    for stale in out.glob("*.ipynb"):
        if stale.name not in names:
            stale.unlink()
    return sorted(out / n for n in names)


def _render_notebooks_into_site(app, config):
    # only for this site: a project that reuses this configuration (tests) brings its own pages
    if Path(app.srcdir).resolve() == DOCS:
        render_notebooks(DOCS / NOTEBOOK_SUBDIR)


# The kernel inherits this process's environment: fast mode unless the caller chose otherwise
# (GROUPCONV_FAST=0 renders the full-size runs), this checkout's groupconv first on the path, and
# no MPLBACKEND, so that ipykernel's inline backend turns figures into image outputs.
os.environ.setdefault("GROUPCONV_FAST", "1")
os.environ["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")]))
os.environ.pop("MPLBACKEND", None)

# "cache": outputs are kept in <outdir>/../.jupyter_cache keyed on the notebook's cells, so a
# rebuild re-executes only notebooks whose cells changed. The key does not cover the library:
# after changing groupconv, rebuild with `-D nb_execution_mode=force` (the slow-tier test
# builds into a fresh directory, so it always executes). A failing cell fails the build.
nb_execution_mode = "cache"
nb_execution_timeout = 300          # seconds per cell (fast mode needs a few)
nb_execution_raise_on_error = True  # a cell error stops the build, with or without -W
nb_execution_show_tb = True
nb_execution_in_temp = True         # whatever a notebook writes goes to a temporary directory
nb_merge_streams = True

# API reference: hand-written pages with autosummary tables (no generated stub files).
autosummary_generate = False
autodoc_member_order = "bysource"
autodoc_typehints = "description"
autodoc_typehints_format = "short"
autodoc_default_options = {"members": True, "show-inheritance": True}
autodoc_mock_imports: list[str] = ["escnn"]
napoleon_google_docstring = True
napoleon_numpy_docstring = False
napoleon_use_rtype = False
napoleon_use_ivar = True  # "Attributes:" sections as fields, not duplicate attribute entries

# Docstrings write "1/|det|" in plain prose; make the |det| substitution render as itself.
rst_epilog = """
.. |det| replace:: \\|det\\|
"""

# No network: no intersphinx, MathJax is the only remote asset and it is loaded by the reader's
# browser, never at build time.
html_theme = "furo"
html_static_path = ["_static"]
html_css_files = ["custom.css"]  # a content column wide enough for 110-character code lines
html_title = f"groupconv {release}"


def _drop_type_docstrings(app, what, name, obj, options, lines):
    """Module constants (dicts, tuples...) have no docstring of their own: autodoc would show the
    builtin type's (``dict() -> new empty dictionary ...``); show nothing instead."""
    if what in ("data", "attribute") and lines:
        own = type(obj).__doc__
        if isinstance(own, str) and "\n".join(lines).strip() == __import__("inspect").cleandoc(own).strip():
            lines.clear()


_ARG_SECTIONS = ("Args:", "Arguments:", "Parameters:", "Keyword Args:", "Keyword Arguments:")


def _outside_literals(line: str) -> str:
    return "".join(part for i, part in enumerate(line.split("``")) if i % 2 == 0)


def _join_wrapped_arg_names(app, what, name, obj, options, lines):
    """Google-style entries that share one description may wrap their list of names over lines
    (``a, b, c,`` then ``d: text`` on the next line); napoleon would read the wrapped part as
    an entry with an empty name (a docutils warning). Join such lines before napoleon runs."""
    i, in_args, indent = 0, False, None
    while i < len(lines):
        line = lines[i]
        stripped = line.strip()
        if stripped in _ARG_SECTIONS:
            in_args, indent = True, None
        elif in_args and stripped and indent is None:
            indent = len(line) - len(line.lstrip())
        elif in_args and stripped and len(line) - len(line.lstrip()) < (indent or 0):
            in_args = False
        if (in_args and indent is not None and len(line) - len(line.lstrip()) == indent
                and stripped.endswith(",") and ":" not in _outside_literals(stripped)
                and i + 1 < len(lines) and lines[i + 1].strip()):
            lines[i] = line.rstrip() + " " + lines.pop(i + 1).strip()
            continue
        i += 1


def setup(app):
    app.connect("config-inited", _render_notebooks_into_site)
    app.connect("autodoc-process-docstring", _drop_type_docstrings)
    # before napoleon (priority 500) turns the Google sections into fields
    app.connect("autodoc-process-docstring", _join_wrapped_arg_names, priority=400)
