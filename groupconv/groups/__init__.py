"""Groups as batched-tensor value objects: the protocol and the catalogue.

Every group subclasses :class:`Group`; see ``groupconv/groups/base.py`` for the conventions
(elements are tensors ``(*batch, *element_shape)``; points follow tensor axis order).
"""

from .base import Group, as_group, wrap_angle
from .euclidean import Scaling, Translations
from .matrix import MatrixLieGroup, matrix_log
from .named import E2, SE2, SE3, ScaleTranslation, Sim2
from .permutations import Permutations
from .products import DirectProduct, SemidirectProduct
from .rotations import O2, SO2, CyclicGroup, DihedralGroup, rotation_matrix_2d
from .so3 import SO3, OctahedralGroup, quaternion_to_matrix, so3_hat, so3_vee
from .symbolic import SymbolicLieGroup, lie_group_from_sympy

__all__ = ["Group", "as_group", "wrap_angle", "SO2", "CyclicGroup", "rotation_matrix_2d"]
__all__ += [
    "O2",
    "DihedralGroup",
    "SO3",
    "OctahedralGroup",
    "so3_hat",
    "so3_vee",
    "quaternion_to_matrix",
    "Translations",
    "Scaling",
    "Permutations",
]

__all__ += [
    "DirectProduct",
    "SemidirectProduct",
    "SE2",
    "E2",
    "Sim2",
    "SE3",
    "ScaleTranslation",
    "MatrixLieGroup",
    "matrix_log",
    "SymbolicLieGroup",
    "lie_group_from_sympy",
]
