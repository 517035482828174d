"""Imports only point downwards: a module never imports from a higher floor of the package.

Floors, lowest first (``_validation`` is the shared checks every floor may use)::

    _validation
    groups, the package root (``groupconv/__init__.py`` re-exports ``groups``)
    spaces
    sampling
    kernels, functional, data      (data: datasets; may use the maths, no layers)
    nn, testing                    (testing: the verification kit; public API only, below)
    models, interop                (interop: the escnn bridge wraps nn layers)
    experiments, benchmarks
    cli, __main__

A module may import from its own floor or any floor below. Imports are read with ``ast`` from
every file under ``groupconv/`` -- at module level and inside functions, classes and
``if TYPE_CHECKING:`` blocks alike -- and relative imports are resolved against the file's
package. ``groupconv/testing`` additionally sees only the public API: it imports packages
(``groupconv.spaces``, not ``groupconv.spaces.fields``), and only names in their ``__all__``.
"""

from __future__ import annotations

import ast
import importlib
from dataclasses import dataclass
from pathlib import Path

import pytest

PKG = Path(__file__).resolve().parents[1] / "groupconv"

FLOORS: list[tuple[str, ...]] = [
    ("_validation",),
    ("groups", ""),  # "" is the package root, groupconv/__init__.py
    ("spaces",),
    ("sampling",),
    ("kernels", "functional", "data"),
    ("nn", "testing"),
    ("models", "interop"),
    ("experiments", "benchmarks"),
    ("cli", "__main__"),
]
FLOOR = {part: i for i, parts in enumerate(FLOORS) for part in parts}


@dataclass(frozen=True)
class Import:
    """One import in a module: the module path that is imported from, the names, the line."""

    source: str  # importing module, e.g. "groupconv.nn.group.gconv"
    target: str  # imported module, e.g. "groupconv.kernels"
    names: tuple[str, ...]  # the names of ``from target import a, b`` (empty for ``import target``)
    line: int


def _module_name(path: Path) -> tuple[str, bool]:
    parts = list(path.relative_to(PKG.parent).with_suffix("").parts)
    is_package = parts[-1] == "__init__"
    if is_package:
        parts = parts[:-1]
    return ".".join(parts), is_package


def imports_of(source: str, module: str, is_package: bool) -> list[Import]:
    """Every import of ``groupconv`` in ``source`` (the text of ``module``), at any depth."""
    out: list[Import] = []
    package = module.split(".") if is_package else module.split(".")[:-1]
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            out += [Import(module, a.name, (), node.lineno) for a in node.names
                    if a.name.split(".")[0] == "groupconv"]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package[: len(package) - (node.level - 1)]
                target = ".".join(base + ([node.module] if node.module else []))
            else:
                target = node.module or ""
            if target.split(".")[0] != "groupconv":
                continue
            names = tuple(a.name for a in node.names)
            if node.module is None:  # ``from . import x``: x may be a submodule or a name
                for name in names:
                    sub = PKG.parent.joinpath(*target.split("."), name)
                    is_sub = sub.is_dir() or sub.with_suffix(".py").is_file()
                    out.append(Import(module, f"{target}.{name}" if is_sub else target,
                                      () if is_sub else (name,), node.lineno))
            else:
                out.append(Import(module, target, names, node.lineno))
    return out


def floor_of(module: str) -> int:
    """The floor of ``groupconv.<part>...``; ``KeyError`` for a part no floor lists."""
    parts = module.split(".")
    return FLOOR[parts[1] if len(parts) > 1 else ""]


def upward_imports(imports: list[Import]) -> list[str]:
    """The imports that point to a higher floor, as readable lines."""
    return [f"{i.source}:{i.line} imports {i.target} (floor {floor_of(i.target)} > "
            f"{floor_of(i.source)})" for i in imports if floor_of(i.target) > floor_of(i.source)]


def private_kit_imports(imports: list[Import]) -> list[str]:
    """Imports of ``groupconv.testing`` that go past the public API of another package."""
    bad = []
    for i in imports:
        if not i.source.startswith("groupconv.testing") or i.target.startswith("groupconv.testing"):
            continue
        parts = i.target.split(".")
        if len(parts) != 2 or parts[1].startswith("_"):
            bad.append(f"{i.source}:{i.line} imports the module {i.target} (import its package)")
            continue
        public = set(getattr(importlib.import_module(i.target), "__all__", ()))
        bad += [f"{i.source}:{i.line} imports {name} from {i.target}, not in its __all__"
                for name in i.names if name not in public]
    return bad


def _all_imports() -> list[Import]:
    out: list[Import] = []
    for path in sorted(PKG.rglob("*.py")):
        module, is_package = _module_name(path)
        out += imports_of(path.read_text(encoding="utf-8"), module, is_package)
    return out


ALL = _all_imports()


def test_every_part_of_the_package_has_a_floor():
    parts = {p.stem if p.suffix == ".py" else p.name for p in PKG.iterdir()
             if (p.suffix == ".py" or (p / "__init__.py").is_file()) and p.name != "__init__.py"}
    assert parts, PKG
    missing = sorted(parts - set(FLOOR))
    assert not missing, f"place these parts of groupconv on a floor in FLOORS: {missing}"


def test_the_scan_sees_module_and_function_level_imports():
    kinds = {(i.source, i.target) for i in ALL}
    assert ("groupconv.nn.group.gconv_weights", "groupconv.kernels") in {
        (s, ".".join(t.split(".")[:2])) for s, t in kinds}  # module level, relative
    # function level (a lazy import inside a method): the GSA group encoder's relative index
    assert any(i.source == "groupconv.nn.attention.positional" and i.target.endswith("gconv_kernels")
               for i in ALL)
    assert len(ALL) > 200, len(ALL)


def test_no_module_imports_from_a_higher_floor():
    bad = upward_imports(ALL)
    assert not bad, "imports that point up a floor:\n" + "\n".join(bad)


def test_the_verification_kit_sees_only_the_public_api():
    kit = [i for i in ALL if i.source.startswith("groupconv.testing")]
    assert kit  # it does import groups and spaces
    bad = private_kit_imports(ALL)
    assert not bad, "\n".join(bad)


# -- the checks can fail ------------------------------------------------------------------------
@pytest.mark.parametrize("module,is_package,code,expect", [
    ("groupconv.groups.base", False, "from ..nn import GroupConv", "groupconv.nn"),
    ("groupconv.spaces", True, "def f():\n    from groupconv.models import GCNN\n", "groupconv.models"),
    ("groupconv.nn.group.gconv", False, "from ...experiments import registry", "groupconv.experiments"),
    ("groupconv.kernels.nets", False,
     "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from .. import nn\n", "groupconv.nn"),
])
def test_an_upward_import_is_reported(module, is_package, code, expect):
    found = imports_of(code, module, is_package)
    assert [i.target for i in found] == [expect]
    bad = upward_imports(found)
    assert len(bad) == 1 and expect in bad[0]


def test_downward_and_same_floor_imports_pass():
    code = "from ..groups import SO2\nfrom ..kernels import nets\nfrom .gconv import LiftingConv\n"
    found = imports_of(code, "groupconv.functional.points", False)
    assert {i.target for i in found} == {"groupconv.groups", "groupconv.kernels",
                                         "groupconv.functional.gconv"}
    assert upward_imports(found) == []


def test_a_private_kit_import_is_reported():
    found = imports_of("from ..spaces.fields import GridField\nfrom ..groups import _lie_helpers\n"
                       "from ..spaces import _elements\nfrom ..groups import SO2\n",
                       "groupconv.testing.checks", False)
    bad = private_kit_imports(found)
    assert len(bad) == 3, bad
    assert "groupconv.spaces.fields" in bad[0] and "_lie_helpers" in bad[1] and "_elements" in bad[2]
