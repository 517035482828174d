"""The Group protocol's constant attributes: plain class attributes, or instance attributes set at
construction where they depend on the arguments -- with values checked against what the
elements themselves show (identity shape, matrix size), and value semantics kept (equality,
hashing, pickling, copying use the dataclass fields only)."""

from __future__ import annotations

import copy
import pickle

import pytest
import torch

from groupconv.groups import (
    O2,
    SE2,
    SE3,
    SO2,
    SO3,
    CyclicGroup,
    DihedralGroup,
    DirectProduct,
    Permutations,
    Scaling,
    SemidirectProduct,
    Translations,
)

PROTOCOL = ("dimension", "element_shape", "is_compact", "is_finite", "space_dim")

GROUPS = [SO2(), CyclicGroup(6), O2(), DihedralGroup(3), SO3(), Translations(3), Scaling(2),
          Permutations(4), DirectProduct(SO2(), CyclicGroup(4)),
          DirectProduct(SO2(), Scaling(2), action="commuting"),
          SemidirectProduct(Translations(2), O2()), SE2(), SE3()]


@pytest.mark.parametrize("G", GROUPS, ids=lambda G: G.name)
def test_attributes_are_plain_values_matching_the_elements(G):
    for name in PROTOCOL:
        assert not isinstance(getattr(type(G), name, None), property), name
    e = G.identity((2,), dtype=torch.float64 if G.element_dtype_kind == "float" else None)
    assert tuple(e.shape) == (2, *G.element_shape)
    assert tuple(G.matrix(e).shape) == (2, G.space_dim, G.space_dim)
    assert isinstance(G.is_compact, bool) and isinstance(G.is_finite, bool)
    assert isinstance(G.dimension, int) and G.dimension >= 0


def test_values_that_depend_on_the_arguments():
    T = Translations(3)
    assert (T.dimension, T.element_shape, T.space_dim) == (3, (3,), 3)
    assert Scaling(2).space_dim == 2 and Permutations(5).element_shape == (5,)
    P = DirectProduct(SO2(), CyclicGroup(4), Translations(2))
    assert (P.dimension, P.element_shape, P.space_dim) == (1 + 0 + 2, (1 + 1 + 2,), 2 + 2 + 2)
    assert not P.is_compact and not P.is_finite
    assert DirectProduct(CyclicGroup(2), DihedralGroup(3)).is_finite
    assert DirectProduct(SO2(), Scaling(2), action="commuting").space_dim == 2
    S = SemidirectProduct(Translations(3), SO3())
    assert (S.dimension, S.element_shape, S.space_dim) == (3 + 3, (3 + 9,), 3)


@pytest.mark.parametrize("G", [Translations(3), DirectProduct(SO2(), CyclicGroup(4)), SE2(), Permutations(4)],
                         ids=lambda G: G.name)
def test_value_semantics_unchanged(G):
    twin = pickle.loads(pickle.dumps(G))
    assert twin == G and hash(twin) == hash(G)
    for other in (twin, copy.deepcopy(G), copy.copy(G)):
        assert all(getattr(other, n) == getattr(G, n) for n in PROTOCOL)
    assert Translations(2) != Translations(3)
    with pytest.raises(AttributeError):  # still frozen
        G.space_dim = 7
