"""Groups as batched-tensor value objects: the protocol and the catalogue.

Every group subclasses :class:`Group`; see ``groupconv/groups/base.py`` for the conventions
(elements are tensors ``(*batch, *element_shape)``; points follow tensor axis order).
"""

from .base import Group, wrap_angle
from .rotations import SO2, CyclicGroup, rotation_matrix_2d

__all__ = ["Group", "wrap_angle", "SO2", "CyclicGroup", "rotation_matrix_2d"]
