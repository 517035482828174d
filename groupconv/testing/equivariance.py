"""Measure and assert equivariance of any callable: ``f(g . x) == g . f(x)``.

``f`` is any callable on tensors; layers of groupconv declare ``in_field``/``out_field``
(:mod:`groupconv.spaces`) so nothing else is needed. For other callables pass the fields.
Invariance is the special case ``out_field=TrivialField()`` (see :func:`assert_invariant`).

How errors are measured:

* transforms are *reference* computations in ``float64`` (``g . x`` is computed in float64 and
  cast back to ``x.dtype`` before ``f`` sees it; ``g . f(x)`` is computed from ``f(x)`` cast to
  float64), so the transform's own rounding never pollutes the measurement;
* ``f`` runs under ``torch.no_grad()`` in its current mode (call ``.eval()`` yourself for
  dropout/batch-norm); modules and layers with fields run as ONE batch
  ``cat([x, g_1 x, ..., g_k x])``, other callables in a loop (``batched=`` overrides);
* each element gets a row: ``abs`` = ``max |f(g x) - g f(x)|``, ``rel`` =
  ``||f(g x) - g f(x)|| / ||g f(x)||`` (over the valid mask in approximate checks).

No vacuous passes: an empty batch, a constant input, outputs that are zero everywhere, and runs
in which no tested element moves ``x`` or ``f(x)`` raise :class:`UninformativeCheckError`
(``allow_uninformative=True`` warns instead); a non-finite ``x`` is a ``ValueError`` and NaN
outputs fail with the error reported as NaN. Elements are the in field's group members (given
elements are validated; low-precision ones that round to an exact element are replaced by it).

Exact and approximate checks are kept apart:

* **exact** (the transform is an index permutation on both fields: multiples of 90 degrees,
  flips, integer shifts, group-axis rolls): passes when
  ``abs <= atol + rtol * max|g f(x)|`` with dtype-aware defaults
  (:data:`EXACT_TOLERANCES`: float32 ``rtol=1e-4``, float64 ``1e-10``);
* **approximate** (interpolated transforms, e.g. 45 degrees on a pixel grid): compared inside
  the out field's ``valid_mask`` (the central disc), passes when ``rel <= rtol`` with the
  budget :data:`APPROXIMATE_RTOL` = 0.1 unless overridden.

Example:
    >>> import torch
    >>> from groupconv.groups import CyclicGroup
    >>> from groupconv.spaces import ImageField
    >>> field = ImageField(CyclicGroup(4))
    >>> f = lambda x: sum(torch.rot90(x, k, (-2, -1)) for k in range(4))
    >>> report = assert_equivariant(f, torch.randn(2, 3, 8, 8), in_field=field, out_field=field)
    >>> report.passed, len(report.rows)
    (True, 4)
"""

from __future__ import annotations

import inspect
import math
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import cast

import torch

from ..spaces import Field

__all__ = [
    "APPROXIMATE_RTOL",
    "EXACT_TOLERANCES",
    "EquivarianceError",
    "EquivarianceReport",
    "EquivarianceResult",
    "UninformativeCheckError",
    "assert_equivariant",
    "assert_invariant",
    "default_tolerance",
    "equivariance_error",
]

#: ``(atol, rtol)`` of exact checks by dtype of ``f``'s output (the least precise of input/output).
EXACT_TOLERANCES: dict[torch.dtype, tuple[float, float]] = {
    torch.float64: (1e-12, 1e-10),
    torch.float32: (1e-6, 1e-4),
    torch.float16: (1e-3, 1e-2),
    torch.bfloat16: (1e-2, 5e-2),
}
#: Default budget of approximate checks: relative L2 error inside the valid mask.
APPROXIMATE_RTOL: float = 0.1

_MODES = ("auto", "exact", "approximate")


def default_tolerance(dtype: torch.dtype, exact: bool = True) -> tuple[float, float]:
    """``(atol, rtol)`` of :func:`assert_equivariant` for outputs of ``dtype``.

    Example:
        >>> default_tolerance(torch.float32), default_tolerance(torch.float32, exact=False)
        ((1e-06, 0.0001), (0.0, 0.1))
    """
    if not exact:
        return 0.0, APPROXIMATE_RTOL
    if dtype not in EXACT_TOLERANCES:
        raise ValueError(f"dtype must be one of {list(EXACT_TOLERANCES)}, got {dtype}")
    return EXACT_TOLERANCES[dtype]


class EquivarianceError(AssertionError):
    """Raised by :func:`assert_equivariant`; ``.report`` holds the per-element report."""

    def __init__(self, message: str, report: EquivarianceReport) -> None:
        super().__init__(message)
        self.report = report


@dataclass
class EquivarianceResult:
    """The equivariance error of ``f`` for one element ``g``."""

    element: torch.Tensor
    exact: bool
    abs_error: float
    rel_error: float
    scale: float
    tolerance: float
    passed: bool
    masked: bool = False
    #: False when ``g`` fixes both ``x`` and ``f(x)``: the row tests determinism only.
    informative: bool = True
    #: True when ``f(g . x)`` or ``f(x)`` holds NaN/inf (the row fails; errors read NaN).
    nonfinite: bool = False

    @property
    def criterion(self) -> str:
        return "abs" if self.exact else "rel"


@dataclass
class EquivarianceReport:
    """Per-element rows of :func:`assert_equivariant`; ``str(report)`` renders a table."""

    rows: list[EquivarianceResult] = field(default_factory=list)
    name: str = "f"
    dtype: torch.dtype | None = None
    in_field: Field | None = None
    out_field: Field | None = None

    @property
    def passed(self) -> bool:
        return all(r.passed for r in self.rows)

    @property
    def failures(self) -> list[EquivarianceResult]:
        return [r for r in self.rows if not r.passed]

    @property
    def max_rel_error(self) -> float:
        return max((r.rel_error for r in self.rows), default=0.0)

    def __str__(self) -> str:
        head = ["#", "element", "check", "max abs err", "rel err", "passes if", "result"]
        cells = []
        for i, r in enumerate(self.rows):
            el = _fmt(r.element)
            if r.exact:
                bound = f"abs <= {r.tolerance:.1e}"
            else:
                bound = f"rel <= {r.tolerance:.1e}" + (" (masked)" if r.masked else "")
            cells.append([str(i), el, "exact" if r.exact else "approx", f"{r.abs_error:.2e}",
                          f"{r.rel_error:.2e}", bound, "pass" if r.passed else "FAIL"])
        widths = [max([len(h)] + [len(c[j]) for c in cells]) for j, h in enumerate(head)]
        dt = str(self.dtype).replace("torch.", "")
        lines = [f"equivariance of {self.name} ({dt}): in_field={self.in_field!r}, "
                 f"out_field={self.out_field!r}",
                 "  ".join(h.ljust(w) for h, w in zip(head, widths)).rstrip(),
                 "  ".join("-" * w for w in widths)]
        lines += ["  ".join(c.ljust(w) for c, w in zip(cell, widths)).rstrip() for cell in cells]
        return "\n".join(lines)


def _fmt(t: torch.Tensor) -> str:
    t = t.detach().cpu()
    if t.numel() > 8:
        return f"<{tuple(t.shape)}>"
    if t.is_floating_point():
        return "[" + ", ".join(f"{v:.5g}" for v in t.double().flatten().tolist()) + "]"
    return str(t.flatten().tolist())


def _name(f: Callable) -> str:
    return getattr(f, "__qualname__", None) or type(f).__name__


def _resolve_fields(
    f: Callable, in_field: Field | None, out_field: Field | None
) -> tuple[Field, Field]:
    in_field = getattr(f, "in_field", None) if in_field is None else in_field
    out_field = getattr(f, "out_field", None) if out_field is None else out_field
    for nm, fld in (("in_field", in_field), ("out_field", out_field)):
        if fld is None:
            raise ValueError(
                f"{nm} is needed: {_name(f)} has no attribute {nm}; pass {nm}=... (a groupconv.spaces "
                "field); for invariance use out_field=TrivialField() or assert_invariant"
            )
        if not callable(getattr(fld, "transform", None)):
            raise TypeError(f"{nm} must have a transform(x, g) method (a groupconv.spaces Field), "
                            f"got {type(fld).__name__}")
    return cast(Field, in_field), cast(Field, out_field)


def _is_exact(fld: object, g: torch.Tensor, x_shape: Sequence[int] | None = None) -> bool:
    fn = getattr(fld, "is_exact", None)
    if fn is None:
        return True
    if x_shape is not None:
        try:
            takes_shape = "x_shape" in inspect.signature(fn).parameters
        except (TypeError, ValueError):
            takes_shape = False
        if takes_shape:
            return bool(fn(g, x_shape=tuple(x_shape)))
    return bool(fn(g))


def _exact_or_reason(fld: object, g: torch.Tensor, x_shape: Sequence[int] | None = None) -> str:
    """``""`` when ``fld`` transforms ``g`` exactly, else why not (a field that cannot act
    with ``g`` at all, e.g. an SO(3) element off a group grid, is not exact either)."""
    try:
        return "" if _is_exact(fld, g, x_shape) else "interpolated"
    except ValueError as err:
        return str(err)


def _snap(gs: list[torch.Tensor], ref: torch.Tensor) -> list[torch.Tensor]:
    """Replace low-precision elements by the float64 reference elements they round to.

    An element given as float16/bfloat16/float32 (e.g. ``G.grid(4)`` in float32, whose
    -90 degrees is off by 1e-7) stands for the exact lattice element it rounds to; the kit
    transforms with the float64 one (within 8 ulp of the element's dtype).
    """
    if ref is None or ref.numel() == 0 or not ref.is_floating_point():
        return gs
    b = ref.reshape(ref.shape[0], -1).to(torch.float64).cpu()
    out = []
    for g in gs:
        if not g.is_floating_point() or g.dtype == torch.float64:
            out.append(g)
            continue
        tol = 8 * torch.finfo(g.dtype).eps
        d = (g.reshape(1, -1).to(torch.float64).cpu() - b).abs().amax(-1)
        j = int(d.argmin())
        hit = float(d[j]) <= tol * (1.0 + float(b[j].abs().max()))
        out.append(ref[j].to(g.device) if hit else g)
    return out


def _least_precise(*dtypes: torch.dtype) -> torch.dtype:
    floats = [d for d in dtypes if d.is_floating_point]
    return max(floats, key=lambda d: torch.finfo(d).eps) if floats else torch.float32


def _forward(f: Callable, x: torch.Tensor, xs: list[torch.Tensor], batched: bool) -> list[torch.Tensor]:
    inputs = [x, *xs]
    with torch.no_grad():
        if batched and xs:
            # one batch per input shape (a 90-degree turn of an H x W image is W x H)
            groups: dict[tuple[int, ...], list[int]] = {}
            for i, t in enumerate(inputs):
                groups.setdefault(tuple(t.shape), []).append(i)
            outs_b: list[torch.Tensor | None] = [None] * len(inputs)
            B = x.shape[0]
            for idx in groups.values():
                try:
                    out = f(torch.cat([inputs[i] for i in idx], dim=0)) if len(idx) > 1 else None
                except Exception:  # noqa: BLE001 - fall back to one call per input
                    out = None
                if isinstance(out, torch.Tensor) and out.dim() > 0 and out.shape[0] == B * len(idx):
                    for i, o in zip(idx, out.split(B, dim=0)):
                        outs_b[i] = o
            outs = [o if o is not None else f(t) for o, t in zip(outs_b, inputs)]
        else:
            outs = [f(t) for t in inputs]
    for o in outs:
        if not isinstance(o, torch.Tensor):
            raise TypeError(f"f must return a tensor, got {type(o).__name__}")
    return outs


class UninformativeCheckError(ValueError):
    """Raised when an equivariance check would pass without having tested anything (an empty
    batch, a constant input, an all-zero output, or only elements that fix the input)."""


def _check_input(x: object, name: str = "x") -> torch.Tensor:
    if not isinstance(x, torch.Tensor):
        raise TypeError(f"{name} must be a torch.Tensor, got {type(x).__name__}")
    if x.dim() == 0 or x.shape[0] == 0 or x.numel() == 0:
        raise UninformativeCheckError(
            f"{name} must hold at least one non-empty sample, got shape {tuple(x.shape)}: an empty "
            "batch tests nothing"
        )
    if x.is_floating_point() or x.is_complex():
        bad = ~torch.isfinite(x)
        if bool(bad.any()):
            n_nan = int(torch.isnan(x).sum())
            raise ValueError(
                f"{name} must be finite, got {n_nan} NaN and {int(bad.sum()) - n_nan} inf entries "
                f"(first at index {tuple(bad.nonzero()[0].tolist())}): an equivariance error "
                "measured on it would read NaN"
            )
    return x


def _uninformative(msg: str, allow: bool) -> None:
    if allow:
        warnings.warn(msg, UserWarning, stacklevel=3)
    else:
        raise UninformativeCheckError(msg + " (pass allow_uninformative=True to only warn)")


def _measure(
    f: Callable, x: torch.Tensor, gs: Sequence[torch.Tensor], in_field: Field, out_field: Field,
    exact: Sequence[bool], *, atol: float | None, rtol: float | None, mask: torch.Tensor | None,
    reference_dtype: torch.dtype, batched: bool | None, order: int | None,
) -> tuple[list[EquivarianceResult], torch.dtype]:
    _check_input(x)
    if batched is None:
        batched = isinstance(f, torch.nn.Module) or hasattr(f, "in_field")
    ref = reference_dtype
    x_ref = x.detach().to(ref)

    def elem(g: torch.Tensor) -> torch.Tensor:
        return g.to(device=x.device, dtype=ref) if g.is_floating_point() else g.to(x.device)

    xs64 = [in_field.transform(x_ref, elem(g), order=order) for g in gs]
    xs = [t.to(x.dtype) for t in xs64]
    outs = _forward(f, x, xs, bool(batched))
    y = outs[0]
    dtype = _least_precise(x.dtype, y.dtype)
    y_ref = y.detach().to(ref)
    y_finite = bool(torch.isfinite(y_ref).all())
    rows = []
    for g, fy, is_ex, gx in zip(gs, outs[1:], exact, xs64):
        target = out_field.transform(y_ref, elem(g), order=order)
        if tuple(fy.shape) != tuple(target.shape):
            raise ValueError(f"f(g . x) has shape {tuple(fy.shape)} but g . f(x) has shape "
                             f"{tuple(target.shape)} for g = {_fmt(g)}: the fields do not match f")
        diff = fy.detach().to(ref) - target
        m = mask
        if m is None and not is_ex and hasattr(out_field, "valid_mask"):
            m = out_field.valid_mask(tuple(target.shape), device=target.device, dtype=ref)
        if m is not None:
            m = m.to(device=target.device, dtype=ref)
            diff, target = diff * m, target * m
        abs_err = float(diff.abs().max()) if diff.numel() else 0.0
        scale = float(target.abs().max()) if target.numel() else 0.0
        nrm = float(torch.linalg.vector_norm(target))
        dn = float(torch.linalg.vector_norm(diff))
        rel = dn / nrm if nrm > 0 else (0.0 if dn == 0 else float("inf"))
        a0, r0 = default_tolerance(dtype, exact=is_ex)
        a, r = (a0 if atol is None else atol), (r0 if rtol is None else rtol)
        nonfinite = not (y_finite and bool(torch.isfinite(fy.detach()).all()))
        if nonfinite:
            abs_err = rel = math.nan
        if is_ex:
            tol = a + r * scale
            ok = abs_err <= tol
        else:
            tol = r
            ok = rel <= tol or abs_err <= a
        moved = tuple(gx.shape) != tuple(x_ref.shape) or not torch.equal(gx, x_ref)
        moved = moved or tuple(target.shape) != tuple(y_ref.shape) or not torch.equal(target, y_ref)
        rows.append(EquivarianceResult(g.detach().cpu(), bool(is_ex), abs_err, rel, scale, tol,
                                       bool(ok and not nonfinite), m is not None, bool(moved), nonfinite))
    return rows, dtype


def equivariance_error(
    f: Callable,
    x: torch.Tensor,
    g: torch.Tensor,
    in_field: Field | None = None,
    out_field: Field | None = None,
    *,
    exact: bool | None = None,
    reference_dtype: torch.dtype = torch.float64,
    mask: torch.Tensor | None = None,
    atol: float | None = None,
    rtol: float | None = None,
    order: int | None = None,
) -> EquivarianceResult:
    """Equivariance error of ``f`` at ``x`` for ONE element ``g`` (no assertion).

    ``exact=None`` asks both fields (``is_exact``); approximate comparisons use the out
    field's ``valid_mask`` unless ``mask`` is given.

    Example:
        >>> import torch
        >>> from groupconv.groups import SO2
        >>> from groupconv.spaces import ImageField
        >>> fld = ImageField(SO2())
        >>> r = equivariance_error(lambda t: 2 * t, torch.randn(1, 1, 9, 9), torch.tensor([0.3]), fld, fld)
        >>> r.exact, r.rel_error < 1e-6
        (False, True)
    """
    in_field, out_field = _resolve_fields(f, in_field, out_field)
    g = torch.as_tensor(g)
    if exact is None:
        exact = _is_exact(in_field, g, x.shape) and _is_exact(out_field, g)
    rows, _ = _measure(f, x, [g], in_field, out_field, [bool(exact)], atol=atol, rtol=rtol, mask=mask,
                       reference_dtype=reference_dtype, batched=False, order=order)
    return rows[0]


def assert_equivariant(
    f: Callable,
    x: torch.Tensor,
    elements: torch.Tensor | Sequence[torch.Tensor] | None = None,
    *,
    in_field: Field | None = None,
    out_field: Field | None = None,
    mode: str = "auto",
    atol: float | None = None,
    rtol: float | None = None,
    mask: torch.Tensor | None = None,
    reference_dtype: torch.dtype = torch.float64,
    batched: bool | None = None,
    order: int | None = None,
    allow_uninformative: bool = False,
) -> EquivarianceReport:
    """Assert ``f(g . x) == g . f(x)`` for every element; return the per-element report.

    Args:
        f: a callable on tensors (fields from ``f.in_field``/``f.out_field`` when not given).
        x: the input, batch first.
        elements: ``(k, *element_shape)``; default: the in field's ``exact_elements`` that
            are also exact for the out field (identity first: it checks determinism).
        mode: ``"auto"`` (exact rows where both fields transform exactly), ``"exact"`` or
            ``"approximate"`` for every row.
        atol, rtol: override the defaults (:func:`default_tolerance`); in approximate rows
            ``rtol`` is the relative budget.
        mask: a float mask broadcastable to ``f(x)`` replacing the fields' valid mask.
        reference_dtype: dtype of the reference transforms and of the comparison.
        batched: run ``f`` once on all inputs (default: for modules and layers with fields).
        order: interpolation order passed to the fields' ``transform``.
        allow_uninformative: warn instead of raising :class:`UninformativeCheckError` when the
            check could not fail (a constant ``x``, all-zero outputs, or no tested element that
            moves ``x`` or ``f(x)``).

    Elements given in float32/float16/bfloat16 that round to one of the in field's exact
    elements are replaced by its float64 version (the kit always transforms in float64).

    Raises:
        EquivarianceError: with the table of rows and the failing elements (NaN outputs are
            reported as NaN, not as a failure of determinism).
        UninformativeCheckError: (a ``ValueError``) an empty batch, a constant input, all-zero
            outputs, or only elements that fix ``x`` and ``f(x)``.
        ValueError: a non-finite ``x``.

    Example:
        >>> import torch
        >>> from groupconv.groups import CyclicGroup
        >>> from groupconv.spaces import ImageField
        >>> fld = ImageField(CyclicGroup(4))
        >>> f = lambda t: t + torch.rot90(t, 2, (-2, -1))
        >>> assert_equivariant(f, torch.randn(1, 1, 5, 7), in_field=fld, out_field=fld).passed
        True
        >>> try:
        ...     assert_equivariant(f, torch.zeros(1, 1, 5, 5), in_field=fld, out_field=fld)
        ... except UninformativeCheckError as err:
        ...     print(str(err)[:16])
        x is constant (e
    """
    if mode not in _MODES:
        raise ValueError(f"mode must be one of {_MODES}, got {mode!r}")
    in_field, out_field = _resolve_fields(f, in_field, out_field)
    x = _check_input(x)
    if x.is_floating_point() and bool((x == x.reshape(-1)[0]).all()):
        _uninformative(
            f"x is constant (every entry = {float(x.reshape(-1)[0]):.4g}): rotations, flips and "
            "shifts leave it unchanged, so the check cannot fail; pass a random input such as "
            "torch.randn(...)", allow_uninformative)
    ref_elements = None
    if hasattr(in_field, "exact_elements"):
        try:
            ref_elements = in_field.exact_elements(device=x.device, dtype=reference_dtype)
        except (TypeError, ValueError):
            ref_elements = None
    if elements is None:
        if ref_elements is None:
            raise ValueError("elements is needed: in_field has no exact_elements()")
        gs, dropped = [], []
        for g in ref_elements:
            why = _exact_or_reason(out_field, g)
            (dropped.append((g, why)) if why else gs.append(g))
        if not gs or len(gs) == 1 and dropped:
            reason = f" ({dropped[0][1]})" if dropped else ""
            raise ValueError(
                f"in_field {in_field!r} and out_field {out_field!r} share no exact element other than "
                f"the identity{reason}; pass elements=... (e.g. G.grid(n) or G.sample(n)) and "
                "mode='approximate'"
            )
    else:
        gs = list(elements) if not isinstance(elements, torch.Tensor) else list(elements.unbind(0))
        if not gs:
            raise ValueError("elements must hold at least one group element, got none")
        gs = _snap(gs, ref_elements)
        group = getattr(in_field, "group", None)
        validate = getattr(group, "validate", None)
        if callable(validate):  # never test a non-member (e.g. a reflection for a rotation group)
            for i, g in enumerate(gs):
                validate(g.to(reference_dtype) if g.is_floating_point() else g, f"elements[{i}]")
    if mode == "auto":
        exact = [_is_exact(in_field, g, x.shape) and _is_exact(out_field, g) for g in gs]
    else:
        exact = [mode == "exact"] * len(gs)
    rows, dtype = _measure(f, x, gs, in_field, out_field, exact, atol=atol, rtol=rtol, mask=mask,
                           reference_dtype=reference_dtype, batched=batched, order=order)
    report = EquivarianceReport(rows, _name(f), dtype, in_field, out_field)
    bad_nf = [r for r in rows if r.nonfinite]
    if bad_nf:
        msg = [f"{_name(f)} returned NaN/inf for {len(bad_nf)} of {len(rows)} elements (x is finite): "
               "the equivariance error is NaN"]
        msg += [f"  g = {_fmt(r.element)}: max abs error nan" for r in bad_nf]
        raise EquivarianceError("\n".join(msg) + "\n\n" + str(report), report)
    if not report.passed:
        bad = report.failures
        msg = [f"{_name(f)} is not equivariant for {len(bad)} of {len(rows)} elements:"]
        for r in bad:
            what = f"max abs error {r.abs_error:.3e} > {r.tolerance:.1e}" if r.exact else \
                f"relative error {r.rel_error:.3e} > budget {r.tolerance:.1e}"
            msg.append(f"  g = {_fmt(r.element)} ({'exact' if r.exact else 'approximate'} check): {what}")
        if rows and not rows[0].passed and not rows[0].informative:
            msg.append("  hint: it fails at the identity, so f is not deterministic (dropout or "
                       "batch statistics in training mode? call .eval())")
        raise EquivarianceError("\n".join(msg) + "\n\n" + str(report), report)
    if all(r.scale == 0.0 and r.abs_error == 0.0 for r in rows):
        _uninformative("f(x) and every f(g . x) are zero (dead ReLUs, a zero-initialised layer?): "
                       "the check cannot fail", allow_uninformative)
    if not any(r.informative for r in rows):
        _uninformative(
            f"no tested element moves x or f(x) (only the identity, or elements fixing x, were "
            f"tested: {[_fmt(r.element) for r in rows]}); pass elements=... that act on x, e.g. "
            "G.grid(n) with mode='approximate'", allow_uninformative)
    return report


def assert_invariant(
    f: Callable,
    x: torch.Tensor,
    elements: torch.Tensor | Sequence[torch.Tensor] | None = None,
    *,
    in_field: Field | None = None,
    **kwargs: object,
) -> EquivarianceReport:
    """:func:`assert_equivariant` with a trivial out field: ``f(g . x) == f(x)``.

    Example:
        >>> import torch
        >>> from groupconv.groups import CyclicGroup
        >>> from groupconv.spaces import ImageField
        >>> f = lambda t: t.sum(dim=(-2, -1))
        >>> assert_invariant(f, torch.randn(2, 3, 6, 6), in_field=ImageField(CyclicGroup(4))).passed
        True
    """
    from ..spaces import TrivialField

    return assert_equivariant(f, x, elements, in_field=in_field, out_field=TrivialField(), **kwargs)
