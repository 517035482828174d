"""Issue 9: random generator sets and periods through the whole pipeline.

Hypothesis draws generator sets (rotations at random speeds, scalings, shears, rotation +
scaling, SE(2) and SE(3) homogeneous blocks, so(3)) and random periods (right, a multiple of the
right one, a fraction of it, arbitrary, on a non-periodic generator). Every draw ends in one of
two ways: ``MatrixLieGroup`` refuses it at construction with a ValueError naming ``period`` or
``generators``, or the group is accepted, ``validate`` accepts its own grid, and a lifting layer
built on it is verified by ``assert_equivariant`` (or the kit says, before measuring anything,
why it cannot be checked exactly). A correct layer is never reported non-equivariant, and no
error comes from deep inside (matrix logarithms, grid matching).
"""

from __future__ import annotations

import math

import pytest
import torch
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from groupconv.groups import MatrixLieGroup
from groupconv.nn import LiftingConv
from groupconv.testing import EquivarianceError, assert_equivariant

TWO_PI = 2 * math.pi


def _rot(n: int, i: int, j: int, w: float = 1.0) -> torch.Tensor:
    E = torch.zeros(n, n, dtype=torch.float64)
    E[i, j], E[j, i] = -w, w
    return E


def _unit(n: int, i: int, j: int) -> torch.Tensor:
    E = torch.zeros(n, n, dtype=torch.float64)
    E[i, j] = 1.0
    return E


def _family(kind: str, w: float) -> tuple[torch.Tensor, list[float | None]]:
    """Generators and the true period of each coordinate (None: not periodic)."""
    if kind == "rotation":
        return _rot(2, 0, 1, w)[None], [TWO_PI / w]
    if kind == "scaling":
        return torch.eye(2, dtype=torch.float64)[None], [None]
    if kind == "shear":
        return _unit(2, 0, 1)[None], [None]
    if kind == "rotscale":
        return torch.stack([_rot(2, 0, 1, w), torch.eye(2, dtype=torch.float64)]), [TWO_PI / w, None]
    if kind == "se2":
        return torch.stack([_rot(3, 0, 1, w), _unit(3, 0, 2), _unit(3, 1, 2)]), [TWO_PI / w, None, None]
    if kind == "se3":
        gens = [_rot(4, 1, 2), _rot(4, 2, 0), _rot(4, 0, 1), _unit(4, 0, 3), _unit(4, 1, 3), _unit(4, 2, 3)]
        return torch.stack(gens), [TWO_PI, TWO_PI, TWO_PI, None, None, None]
    if kind == "so3":
        return torch.stack([_rot(3, 1, 2), _rot(3, 2, 0), _rot(3, 0, 1)]), [TWO_PI] * 3
    raise AssertionError(kind)


@st.composite
def groups_and_periods(draw):
    kind = draw(st.sampled_from(["rotation", "scaling", "shear", "rotscale", "se2", "se3", "so3"]))
    w = draw(st.sampled_from([1.0, 2.0, 3.0, 0.5]))
    gens, true = _family(kind, w)
    periods = []
    honest = draw(st.booleans())  # half the draws declare every period right
    for p in true:
        kinds = ["right", "none", "double", "half", "arbitrary"]
        choice = "right" if honest else draw(st.sampled_from(kinds))
        base = TWO_PI if p is None else p
        periods.append({"right": p, "none": None, "double": 2 * base, "half": base / 2,
                        "arbitrary": draw(st.floats(0.1, 20.0))}[choice])
    return kind, gens, true, tuple(periods)


DEEP = ("principal logarithm", "h^-1 grid", "Denman", "singular", "index out of range")


def _assert_clear(err: Exception, *words: str) -> None:
    """A ValueError/TypeError whose message starts with one of ``words`` (the top-level
    explanation); a low-level cause may follow it, but may not be the whole message."""
    msg = str(err)
    assert isinstance(err, (ValueError, TypeError)), f"{type(err).__name__}: {msg}"
    head = min((msg.find(w) for w in words if w in msg), default=-1)
    assert head >= 0, msg
    assert not any(0 <= msg.find(d) < head for d in DEEP), msg


@settings(max_examples=30, deadline=None, derandomize=True, database=None,
          suppress_health_check=list(HealthCheck))
@given(groups_and_periods())
def test_random_generators_are_accepted_and_verified_or_refused_clearly(case):
    kind, gens, true, periods = case
    try:
        G = MatrixLieGroup(gens, period=periods, name=f"rand-{kind}")
    except ValueError as err:
        _assert_clear(err, "period", "generators")
        # refused only when some declared period is wrong (the generators themselves are valid)
        wrong = [(p, t) for p, t in zip(periods, true) if p is not None and
                 (t is None or abs(p - t) > 1e-9 * t)]
        assert wrong, f"a correct declaration was refused: {err}"
        event("refused at construction")
        return
    # accepted: every declared period is the true one
    for p, t in zip(periods, true):
        if p is not None:
            assert t is not None and abs(p - t) <= 1e-9 * t, (p, t)
    grid = G.grid(4, dtype=torch.float64)
    G.validate(grid, "grid")  # the group's own elements are members
    if G.space_dim not in (2, 3):
        with pytest.raises((ValueError, TypeError)) as info:
            LiftingConv(1, 2, G, 3, padding=1, num_elements=4, kernel_net="siren")
        _assert_clear(info.value, "acts on R^", "space_dim", "spatial", "dimension")
        event("layer refused (space_dim)")
        return
    torch.manual_seed(0)
    layer = LiftingConv(1, 2, G, 3, padding=1, num_elements=4, kernel_net="siren").eval()
    x = torch.randn(1, 1, *([7] * G.space_dim))
    try:
        report = assert_equivariant(layer, x)
    except EquivarianceError as err:  # a correct layer must never fail
        msg = f"{kind} {periods}: a correct layer was reported non-equivariant"
        raise AssertionError(f"{msg}\n{err}") from err
    except ValueError as err:
        _assert_clear(err, "share no exact element", "no tested element")
        event("kit: no exact element")
        return
    assert report.passed and any(r.informative for r in report.rows)
    event(f"verified ({kind})")
    mats = torch.stack([r.element.double() for r in report.rows])
    assert bool((torch.linalg.det(mats) > 0).all())  # connected group: no reflections tested
