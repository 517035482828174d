"""Sphinx configuration of the groupconv documentation (offline; builds with ``-W``)."""

from __future__ import annotations

import os
import sys

sys.path.insert(0, os.path.abspath(".."))

project = "groupconv"
author = "groupconv developers"
copyright = "2024-2025, groupconv developers"

try:
    from groupconv import __version__ as release
except Exception:  # pragma: no cover - the docs still build without the package installed
    release = "0.1.0"
version = release

extensions = [
    "myst_parser",
    "sphinx.ext.autodoc",
    "sphinx.ext.autosummary",
    "sphinx.ext.napoleon",
    "sphinx.ext.viewcode",
    "sphinx.ext.mathjax",
]

source_suffix = {".md": "markdown", ".rst": "restructuredtext"}
root_doc = "index"
exclude_patterns = ["_build", "Thumbs.db", ".DS_Store", "make_figures.py"]

# MyST: $...$ maths, ::: fences, heading anchors for [text](page.md#anchor) links.
myst_enable_extensions = ["dollarmath", "colon_fence", "deflist"]
myst_heading_anchors = 3

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
html_theme = "alabaster"
html_static_path = ["_static"]
html_title = f"groupconv {release}"
html_theme_options = {
    "description": "Group-equivariant deep learning in PyTorch",
    "fixed_sidebar": True,
    "page_width": "1100px",
    "sidebar_width": "230px",
}


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
    app.connect("autodoc-process-docstring", _drop_type_docstrings)
    # before napoleon (priority 500) turns the Google sections into fields
    app.connect("autodoc-process-docstring", _join_wrapped_arg_names, priority=400)
