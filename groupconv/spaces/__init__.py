"""Homogeneous spaces and fields: how group elements act on points and on sampled signals.

* :mod:`~groupconv.spaces.homogeneous` -- :class:`EuclideanSpace`, :class:`Circle`,
  :class:`Sphere2`, :class:`GroupAsSpace`.
* :mod:`~groupconv.spaces.fields` -- the :class:`Field` protocol, :class:`TrivialField`,
  :class:`PointCloudField`, :class:`TokenField`, :class:`TupleField`.
* :mod:`~groupconv.spaces.points` -- :class:`LiftedPointField` (features on lifted point clouds).
* :mod:`~groupconv.spaces.fields_grid` -- :class:`GridField` (:class:`ImageField`,
  :class:`VolumeField`, :class:`SequenceField`) and :class:`GroupGridField`.

Example:
    >>> import torch
    >>> from groupconv.groups import CyclicGroup
    >>> f = ImageField(CyclicGroup(4))
    >>> x = torch.randn(1, 2, 4, 4)
    >>> bool((f.transform(x, torch.tensor([torch.pi / 2])) == torch.rot90(x, 1, (-2, -1))).all())
    True
"""

from .fields import (
    Field,
    PointCloudField,
    TokenField,
    TrivialField,
    TupleField,
    check_single_element,
    sample_elements,
)
from .fields_grid import (
    GridField,
    GroupGridField,
    ImageField,
    SequenceField,
    VolumeField,
    affine_parts,
)
from .homogeneous import Circle, EuclideanSpace, GroupAsSpace, HomogeneousSpace, Sphere2
from .points import LiftedPointField, pack_lifted, unpack_lifted

__all__ = [
    "Field",
    "TrivialField",
    "PointCloudField",
    "TokenField",
    "TupleField",
    "LiftedPointField",
    "pack_lifted",
    "unpack_lifted",
    "GridField",
    "ImageField",
    "VolumeField",
    "SequenceField",
    "GroupGridField",
    "affine_parts",
    "check_single_element",
    "sample_elements",
    "HomogeneousSpace",
    "EuclideanSpace",
    "Circle",
    "Sphere2",
    "GroupAsSpace",
]
