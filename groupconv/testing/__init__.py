"""The public verification kit of groupconv.

* :func:`check_group` -- group axioms, exp/log round trips, matrix/action homomorphisms,
  finite-group closure, Haar-invariance statistics of the sampler, as Hypothesis properties;
* :mod:`~groupconv.testing.strategies` -- Hypothesis strategies for group elements, algebra
  vectors, points, signal shapes, signals, dtypes and devices;
  :mod:`~groupconv.testing.point_strategies` -- padded point clouds and point permutations;
* :func:`equivariance_error`, :func:`assert_equivariant`, :func:`assert_invariant` -- measure
  ``f(g . x)`` against ``g . f(x)`` with float64 reference transforms, exact and approximate
  checks kept apart, a per-element report;
* a pytest plugin (``device``, ``float_dtype``, ``assert_equivariant`` ... fixtures),
  opt-in (``pytest_plugins = ["groupconv.testing.plugin"]`` in a ``conftest.py``).

Example:
    >>> import torch
    >>> from groupconv.groups import CyclicGroup
    >>> check_group(CyclicGroup(4), max_examples=5, devices=["cpu"]).passed
    True
"""

from . import point_strategies, strategies
from .checks import PROPERTIES, GroupCheckError, GroupCheckRow, GroupReport, check_group, group_tolerance
from .equivariance import (
    APPROXIMATE_RTOL,
    EXACT_TOLERANCES,
    EquivarianceError,
    EquivarianceReport,
    EquivarianceResult,
    UninformativeCheckError,
    assert_equivariant,
    assert_invariant,
    default_tolerance,
    equivariance_error,
)
from .profile import EquivarianceProfile, equivariance_profile

__all__ = [
    "APPROXIMATE_RTOL",
    "EXACT_TOLERANCES",
    "PROPERTIES",
    "EquivarianceError",
    "EquivarianceProfile",
    "EquivarianceReport",
    "EquivarianceResult",
    "GroupCheckError",
    "GroupCheckRow",
    "GroupReport",
    "UninformativeCheckError",
    "assert_equivariant",
    "assert_invariant",
    "check_group",
    "default_tolerance",
    "equivariance_error",
    "equivariance_profile",
    "group_tolerance",
    "point_strategies",
    "strategies",
]
