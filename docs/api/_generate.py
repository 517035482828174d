"""Regenerate the API reference pages ``docs/api/*.rst`` from the packages' ``__all__``.

Run ``python docs/api/_generate.py`` after adding a public name or module; the pages are
committed (``tests/test_docs.py`` checks that every public name has an entry). Each page holds
the module docstring, a summary table and one autodoc directive per public name.
"""

from __future__ import annotations

import importlib
import inspect
from pathlib import Path

HERE = Path(__file__).resolve().parent

#: page -> (title, package, modules documented on it). Modules that do not import are skipped.
PAGES: dict[str, tuple[str, str, list[str]]] = {
    "groups": ("Groups", "groupconv.groups", ["groupconv.groups"]),
    "spaces": ("Spaces and fields", "groupconv.spaces", ["groupconv.spaces"]),
    "sampling": ("Sampling", "groupconv.sampling", ["groupconv.sampling"]),
    "testing": ("Verification kit", "groupconv.testing",
                ["groupconv.testing", "groupconv.testing.strategies", "groupconv.testing.plugin",
                 "groupconv.testing.profile"]),
    "kernels": ("Kernel networks, masks and regularisers", "groupconv.kernels", ["groupconv.kernels"]),
    "nn": ("Layers", "groupconv.nn", [
        "groupconv.nn.continuous.ckconv", "groupconv.nn.continuous.flexconv", "groupconv.nn.group.gconv", "groupconv.nn.group.separable",
        "groupconv.nn.group.pooling", "groupconv.nn.group.partial", "groupconv.nn.attention.attentive_blocks",
        "groupconv.nn.attention.attentive_reference",
        "groupconv.nn.attention.attentive", "groupconv.nn.attention.self_attention", "groupconv.nn.attention.positional",
        "groupconv.nn.attention.transformer", "groupconv.nn.wavelet", "groupconv.nn.group.gconv_kernels",
        "groupconv.nn.group.export", "groupconv.nn.group.gconv_basis",
        "groupconv.nn.group.points", "groupconv.nn.attention.point_attention",
        "groupconv.nn.continuous.irregular"]),
    "models": ("Models", "groupconv.models", [
        "groupconv.models.gcnn", "groupconv.models.ckgresnet", "groupconv.models.partial_gcnn",
        "groupconv.models.attentive", "groupconv.models.ckcnn", "groupconv.models.flexnet",
        "groupconv.models.ccnn", "groupconv.models.wavelet", "groupconv.models.baselines",
        "groupconv.models.point_resnet", "groupconv.models.point_dynamics"]),
    "functional": ("Functional", "groupconv.functional", ["groupconv.functional"]),
    "data": ("Data", "groupconv.data", ["groupconv.data"]),
    "experiments": ("Experiments", "groupconv.experiments", [
        "groupconv.experiments", "groupconv.experiments.metrics", "groupconv.experiments.demo",
        "groupconv.experiments.gconv_experiments", "groupconv.experiments.partial_experiments",
        "groupconv.experiments.attention_experiments", "groupconv.experiments.ck_experiments",
        "groupconv.experiments.point_experiments", "groupconv.experiments.spring_experiments"]),
    "benchmarks": ("Benchmarks", "groupconv.benchmarks", [
        "groupconv.benchmarks", "groupconv.benchmarks.common", "groupconv.benchmarks.groups",
        "groupconv.benchmarks.gconv", "groupconv.benchmarks.separable", "groupconv.benchmarks.attention",
        "groupconv.benchmarks.gsa", "groupconv.benchmarks.points", "groupconv.benchmarks.train_vs_escnn"]),
    "interop": ("escnn bridge", "groupconv.interop", ["groupconv.interop.escnn"]),
    "cli": ("Command line", "groupconv.cli", ["groupconv.cli"]),
}

#: Modules whose docstring is not rendered (it does not parse as reStructuredText yet).
NO_DOCSTRING: set[str] = {
}


def summary(obj: object) -> str:
    """The first sentence of ``obj``'s own docstring, cut outside inline literals; '' if none."""
    doc = inspect.getdoc(obj) if not isinstance(obj, (dict, list, tuple, str, int, float)) else None
    if not doc or (not inspect.isclass(obj) and doc == inspect.getdoc(type(obj))):
        return ""
    para = " ".join(doc.strip().split("\n\n")[0].split())
    inside = False
    i = 0
    while i < len(para):
        if para.startswith("``", i):
            inside = not inside
            i += 2
            continue
        if not inside and para[i] == "." and (i + 1 == len(para) or para[i + 1] == " "):
            return para[: i + 1]
        i += 1
    return para if not inside else ""


def _directive(obj: object) -> str:
    if inspect.isclass(obj):
        return "autoclass"
    if inspect.isfunction(obj) or inspect.isbuiltin(obj):
        return "autofunction"
    if inspect.ismodule(obj):
        return "automodule"
    return "autodata"


def _home(obj: object, modname: str, documented: list[str]) -> str | None:
    """The other module of this page that documents ``obj`` (re-exports get a link, not a
    second autodoc entry, which Sphinx would report as a duplicate), or ``None``."""
    if inspect.ismodule(obj):
        return None
    for other in documented:
        if other == modname:
            continue
        try:
            mod = importlib.import_module(other)
        except ImportError:
            continue
        owner = getattr(obj, "__module__", None)
        names = getattr(mod, "__all__", [])
        if any(getattr(mod, n, None) is obj for n in names) and (
                owner == other or (owner != modname and documented.index(other) < documented.index(modname))):
            return other
    return None


def module_section(modname: str, heading: bool, documented: list[str] | None = None) -> list[str]:
    mod = importlib.import_module(modname)
    names = list(getattr(mod, "__all__", []))
    documented = documented or [modname]
    out: list[str] = []
    if heading:
        out += [f"``{modname}``", "-" * (len(modname) + 4), ""]
    if modname in NO_DOCSTRING:
        out += [f".. module:: {modname}", ""]
    else:
        out += [f".. automodule:: {modname}", "   :no-members:", ""]
    if not names:
        return out
    out += [".. list-table::", "   :widths: 30 70", ""]
    homes = {n: _home(getattr(mod, n), modname, documented) for n in names}
    for n in names:
        obj = getattr(mod, n)
        role = "mod" if inspect.ismodule(obj) else "obj"
        target = obj.__name__ if inspect.ismodule(obj) else f"{homes[n] or modname}.{n}"
        text = summary(obj) if homes[n] is None else f"Re-exported from :mod:`{homes[n]}` ({modname}.{n})."
        out += [f"   * - :{role}:`~{target}`", f"     - {text}"]
    out += [""]
    for n in names:
        obj = getattr(mod, n)
        if homes[n] is not None:
            continue
        d = _directive(obj)
        if d == "automodule":
            out += [f"See :mod:`{obj.__name__}`.", ""]
            continue
        out += [f".. {d}:: {modname}.{n}"]
        if d == "autoclass":
            out += ["   :members:", "   :show-inheritance:"]
        out += [""]
    return out


def main() -> None:
    for fname, (title, pkg, mods) in PAGES.items():
        out = [title, "=" * len(title), ""]
        several = len(mods) > 1 or mods[0] != pkg
        if several and pkg not in mods:
            out += [f".. automodule:: {pkg}", "   :no-members:", ""]
        for m in mods:
            try:
                out += module_section(m, heading=several, documented=mods)
            except ImportError as exc:  # a module that is not there yet
                print(f"skipping {m}: {exc}")
        (HERE / f"{fname}.rst").write_text("\n".join(out).rstrip() + "\n")
    idx = ["API reference", "=============", "",
           "Generated from the docstrings (``docs/api/_generate.py``). Only the names in each module's",
           "``__all__`` are listed.", "", ".. toctree::", "   :maxdepth: 2", ""]
    idx += [f"   {f}" for f in PAGES] + [""]
    (HERE / "index.rst").write_text("\n".join(idx))


if __name__ == "__main__":
    main()
