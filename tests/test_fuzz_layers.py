"""A fuzzer over layer arguments and inputs (issue 12, item 6).

Each draw either raises a ``ValueError`` / ``TypeError`` that names the argument (at
construction or at forward), or returns a finite output that passes the kit's exact check
(``assert_equivariant`` on the exact elements) -- never an ``IndexError`` / ``RuntimeError`` from
inside torch and never a silently non-equivariant layer (a layer that is knowingly inexact, like
a stride that does not tile the map, must say so with a warning).

* ``test_fuzz_regular_group_convs``: Hypothesis over the constructor arguments (group, kernel
  size, stride, padding, dilation) and the input (spatial size, channels, dtype) of
  ``LiftingConv`` / ``GroupConv``.
* ``test_fuzz_zoo_inputs``: every module of ``tests/_module_zoo.py`` under input mutations
  (dtype, rank, channels, tiny spatial size). Modules that still leak a torch error for some
  mutation are listed in ``KNOWN_GAPS`` (strict xfail: fixing one makes the test fail until the
  entry is removed, so the list only shrinks).
"""

from __future__ import annotations

import warnings

import pytest
import torch
from _module_zoo import ZOO
from hypothesis import given, settings
from hypothesis import strategies as st

from groupconv.groups import SO2, CyclicGroup, DihedralGroup
from groupconv.nn import GroupConv, LiftingConv
from groupconv.testing import EquivarianceError, assert_equivariant

GROUPS = {"C1": CyclicGroup(1), "C4": CyclicGroup(4), "D4": DihedralGroup(4), "SO2-8": SO2()}
CONV_ARGS = ("kernel_size", "stride", "padding", "dilation", "in_channels", "out_channels")

ints = st.integers(-1, 4)
pairs = st.tuples(st.integers(-1, 4), st.integers(-1, 4))


@settings(max_examples=200)
@given(
    group=st.sampled_from(sorted(GROUPS)),
    lifting=st.booleans(),
    kernel_size=st.one_of(st.integers(0, 5), st.tuples(st.integers(1, 5), st.integers(1, 5))),
    stride=st.one_of(ints, pairs),
    padding=st.one_of(ints, pairs, st.sampled_from(["same", "valid", "full"])),
    dilation=st.one_of(st.integers(0, 2), st.tuples(st.integers(1, 2), st.integers(1, 2))),
    size=st.integers(1, 9),
    channels=st.sampled_from([2, 2, 2, 3]),  # 3: a mismatch with in_channels=2
    dtype=st.sampled_from([torch.float32, torch.float32, torch.float64, torch.float16, torch.int64]),
)
def test_fuzz_regular_group_convs(group, lifting, kernel_size, stride, padding, dilation, size,
                                  channels, dtype):
    G = GROUPS[group]
    cls = LiftingConv if lifting else GroupConv
    extra = {"num_elements": 8} if group == "SO2-8" else {}
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            torch.manual_seed(0)
            layer = cls(2, 3, G, kernel_size, stride=stride, padding=padding, dilation=dilation, **extra)
        except (ValueError, TypeError) as exc:
            assert any(a in str(exc) for a in CONV_ARGS), f"construction error names no argument: {exc}"
            return
        layer.eval()
        n = layer.in_num_elements
        shape = (2, channels, size, size) if lifting else (2, channels, n, size, size)
        x = torch.randn(shape, generator=torch.Generator().manual_seed(1)).to(dtype)
        try:
            with torch.no_grad():
                y = layer(x)
        except (ValueError, TypeError) as exc:
            assert "x" in str(exc).replace("xp", ""), f"forward error does not name x: {exc}"
            return
    assert torch.isfinite(y).all()
    inexact = [w for w in caught if "not exactly equivariant" in str(w.message)
               or "does not tile" in str(w.message)]
    if inexact:  # said so: allowed to be inexact
        return
    try:
        assert_equivariant(layer, x, mode="exact")
    except EquivarianceError as err:  # pragma: no cover - the failure message is the point
        raise AssertionError(f"silently non-equivariant: {cls.__name__}({kernel_size=}, {stride=}, "
                             f"{padding=}, {dilation=}) on {group} at size {size}:\n{err}") from None


# -- every zoo module under input mutations ------------------------------------------------------
def _mutations(xs: tuple[torch.Tensor, ...]) -> dict[str, tuple[torch.Tensor, ...]]:
    x, rest = xs[0], xs[1:]
    return {
        "float16": (x.half(), *rest),
        "float64": (x.double(), *rest),
        "int64": (x.long(), *rest),
        "drop-batch": (x[0], *rest),
        "extra-dim": (x.unsqueeze(-1), *rest),
        "channels+1": (torch.cat([x, x[:, :1]], 1), *rest),
        "tiny-space": (x[..., :1], *rest),
    }


MUTATIONS = ["float16", "float64", "int64", "drop-batch", "extra-dim", "channels+1", "tiny-space"]
#: modules that still raise a torch error (RuntimeError / NotImplementedError) for a mutation:
#: the follow-up list of issue 12, item 6 (83 cases over 30 modules when first measured,
#: 2026-12-02; all closed since). Add ``"entry-id": {"mutation", ...}`` for a new known gap.
KNOWN_GAPS: dict[str, set[str]] = {}
_BY_ID = {e.id: e for e in ZOO}
CASES = [
    pytest.param(e.id, m, marks=pytest.mark.xfail(strict=True, raises=(RuntimeError, NotImplementedError),
                                                   reason="torch error leaks (KNOWN_GAPS)"))
    if m in KNOWN_GAPS.get(e.id, ()) else pytest.param(e.id, m)
    for e in ZOO if "_none" not in getattr(e.inputs, "__name__", "") for m in MUTATIONS
]


@pytest.mark.parametrize("entry_id, mutation", CASES)
def test_fuzz_zoo_inputs(entry_id, mutation):
    entry = _BY_ID[entry_id]
    torch.manual_seed(0)
    module = entry.build()
    xs = entry.inputs(torch.Generator().manual_seed(0))
    if not xs:
        pytest.skip("module takes no input")
    ys = _mutations(xs)[mutation]
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            out = module(*ys)
    except (ValueError, TypeError) as exc:
        text = str(exc)
        assert any(w in text for w in ("x", "input", "dtype", "shape", "size")), (
            f"{entry_id}: error names no argument: {text}")
        return
    outs = out if isinstance(out, (tuple, list)) else (out,)
    for o in outs:
        if isinstance(o, torch.Tensor) and o.is_floating_point():
            assert torch.isfinite(o).all(), f"{entry_id}: non-finite output for {mutation}"


def test_known_gaps_name_real_modules():
    assert set(KNOWN_GAPS) <= set(_BY_ID), set(KNOWN_GAPS) - set(_BY_ID)
    assert all(m <= set(MUTATIONS) for m in KNOWN_GAPS.values())
