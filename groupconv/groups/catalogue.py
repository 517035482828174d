"""The built-in catalogue: one default instance of every group groupconv ships.

Used by ``groupconv check`` and by the test suite to run the verification kit over every
group. A user's own group works everywhere a catalogue group does; it just is not listed here.

Example:
    >>> from groupconv.groups.catalogue import catalogue
    >>> "SO2" in catalogue()
    True
"""

from __future__ import annotations

import importlib

from .base import Group

__all__ = ["catalogue", "CATALOGUE_SPEC"]

#: (name, module, constructor, args) of every built-in group, in display order.
CATALOGUE_SPEC: tuple[tuple[str, str, str, tuple], ...] = (
    ("Translations(2)", "euclidean", "Translations", (2,)),
    ("SO2", "rotations", "SO2", ()),
    ("C4", "rotations", "CyclicGroup", (4,)),
    ("C8", "rotations", "CyclicGroup", (8,)),
    ("O2", "rotations", "O2", ()),
    ("D4", "rotations", "DihedralGroup", (4,)),
    ("Scaling", "euclidean", "Scaling", ()),
    ("SO3", "so3", "SO3", ()),
    ("Octahedral", "so3", "OctahedralGroup", ()),
    ("Permutations(4)", "permutations", "Permutations", (4,)),
    ("SE2", "named", "SE2", ()),
    ("E2", "named", "E2", ()),
    ("Sim2", "named", "Sim2", ()),
    ("SE3", "named", "SE3", ()),
    ("ScaleTranslation", "named", "ScaleTranslation", ()),
)


def catalogue() -> dict[str, Group]:
    """Default instances of every built-in group, keyed by display name."""
    out: dict[str, Group] = {}
    for name, module, ctor, args in CATALOGUE_SPEC:
        mod = importlib.import_module(f"groupconv.groups.{module}")
        out[name] = getattr(mod, ctor)(*args)
    return out
