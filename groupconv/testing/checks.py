"""``check_group``: verify that a :class:`~groupconv.groups.Group` really is a group.

Every property runs twice: a vectorised *batch sweep* over sampled, grid and ``exp``-generated
elements (which also exercises broadcasting), then a Hypothesis search over single elements
with shrinking, so a failure names a small counter-example. Search is derandomised and uses no
example database: results are deterministic. Properties (``n/a`` where a method raises
``TypeError``/``NotImplementedError`` or the property does not apply):

=====================  ====================================================================
``conventions``        identity/sample shapes, dtype and device follow the request, seeded
                       sampling is reproducible, sampled elements pass ``validate``
``identity``           ``e g = g e = g``
``inverse``            ``g g^-1 = g^-1 g = e``
``associativity``      ``(g h) k = g (h k)``
``exp_of_log``         ``exp(log g) = g`` (elements with ``det > 0``: exp reaches only the
                       identity component)
``log_of_exp``         ``log(exp X) = X`` for ``|X| < log_radius`` across ``magnitudes``;
                       beyond it ``exp(log(exp X)) = exp X``
``matrix_homomorphism`` ``matrix(g h) = matrix(g) matrix(h)``, ``matrix(e) = I``
``action_homomorphism`` ``act(g h, x) = act(g, act(h, x))``, ``act(e, x) = x``
``det_multiplicative`` ``det(g h) = det(g) det(h)``
``finite_closure``     finite groups: ``elements()`` identity first, ``index`` inverts it,
                       every product and inverse lands in ``elements()``, Latin-square table
``haar_invariance``    compact groups: first and second moments of ``matrix`` entries of
                       ``sample`` are invariant under ``s -> g s`` and ``s -> s g`` (z-test at
                       6 sigma, fixed generator); finite groups: uniform frequencies
``grid``               ``grid(n)`` is deterministic, shaped, valid and identity-first (for
                       grids without the identity, e.g. a box grid, identity-first is n/a:
                       noted on the row, no error number shown)
=====================  ====================================================================

Elements are compared by ``min(|g - h|_max, G.distance(g, h))``. Tolerances are
``atol + rtol * scale`` with ``scale`` the largest magnitude involved; near the cut locus
(``|log g| > 0.9 pi``) logarithms are ill-conditioned (errors ~ sqrt(eps)), so a looser
``cut`` tolerance applies there (see :func:`group_tolerance`).

Example:
    >>> from groupconv.groups import SO2
    >>> report = check_group(SO2(), max_examples=5, dtypes=(torch.float64,), devices=["cpu"])
    >>> report.passed
    True
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import torch
from hypothesis import HealthCheck, Phase, Verbosity, given, settings
from hypothesis import strategies as st

from ..groups import Group, as_group
from . import strategies as gst
from ._properties import (
    _ARG_NAMES,
    _DESCRIPTIONS,
    _NA,
    _SPECS,
    _conventions,
    _Ctx,
    _finite_closure,
    _finite_uniform,
    _fmt,
    _grid,
    _haar_features,
    _Violation,
    group_tolerance,
)

__all__ = ["GroupCheckError", "GroupCheckRow", "GroupReport", "PROPERTIES", "check_group", "group_tolerance"]

PROPERTIES: tuple[str, ...] = (
    "conventions", "identity", "inverse", "associativity", "exp_of_log", "log_of_exp",
    "matrix_homomorphism", "action_homomorphism", "det_multiplicative", "finite_closure",
    "haar_invariance", "grid",
)


class GroupCheckError(AssertionError):
    """Raised by :func:`check_group` when a property fails; ``.report`` holds the full report."""

    def __init__(self, message: str, report: GroupReport) -> None:
        super().__init__(message)
        self.report = report


@dataclass
class GroupCheckRow:
    """One (group, property, dtype, device) result."""

    group: str
    property: str
    dtype: torch.dtype
    device: str
    examples: int = 0
    worst_error: float | None = None
    tolerance: float | None = None
    passed: bool = True
    skipped: bool = False
    message: str = ""

    @property
    def status(self) -> str:
        return "n/a" if self.skipped else ("pass" if self.passed else "FAIL")


@dataclass
class GroupReport:
    """All rows of a :func:`check_group` run; ``str(report)`` renders a table."""

    rows: list[GroupCheckRow] = field(default_factory=list)

    @property
    def passed(self) -> bool:
        return all(r.passed or r.skipped for r in self.rows)

    @property
    def failures(self) -> list[GroupCheckRow]:
        return [r for r in self.rows if not (r.passed or r.skipped)]

    def row(self, prop: str, dtype: torch.dtype | None = None, device: str | None = None) -> GroupCheckRow:
        """The first row of property ``prop`` (optionally of a dtype/device)."""
        for r in self.rows:
            if r.property == prop and dtype in (None, r.dtype) and device in (None, r.device):
                return r
        raise KeyError(f"no row for property {prop!r} (dtype={dtype}, device={device})")

    def __str__(self) -> str:
        head = ["group", "property", "dtype", "device", "examples", "worst error", "tolerance", "result"]
        cells = [
            [r.group, r.property, str(r.dtype).replace("torch.", ""), r.device, str(r.examples),
             "-" if r.worst_error is None else f"{r.worst_error:.2e}",
             "-" if r.tolerance is None else f"{r.tolerance:.1e}",
             r.status + (f" ({r.message.splitlines()[0]})" if (r.skipped or r.passed) and r.message else "")]
            for r in self.rows
        ]
        widths = [max([len(h)] + [len(c[i]) for c in cells]) for i, h in enumerate(head)]
        lines = ["  ".join(h.ljust(w) for h, w in zip(head, widths)).rstrip(),
                 "  ".join("-" * w for w in widths)]
        lines += ["  ".join(c.ljust(w) for c, w in zip(cell, widths)).rstrip() for cell in cells]
        return "\n".join(lines)


# -- the runner -----------------------------------------------------------------------------
def _evaluate(c: _Ctx, fn: Callable, names: Sequence[str], args: Sequence[torch.Tensor], worst: list) -> None:
    """Evaluate a batched property; update ``worst`` = [ratio, err, tol]; raise ``_Violation``."""
    try:
        err, tol, shown = fn(c, *args)
    except Exception as exc:  # a crash of the group's code is a failure of the property
        detail = "  " + ", ".join(f"{n} = {_fmt(a[0])}" for n, a in zip(names, args))
        raise _Violation(math.nan, math.nan, f"raised {type(exc).__name__}: {exc}\n{detail}") from exc
    err = err.detach().double().cpu().reshape(-1)
    tol = torch.as_tensor(tol).detach().double().cpu().reshape(-1).expand_as(err)
    ratio = torch.where(err <= tol, err / tol, torch.full_like(err, math.inf))
    i = int(ratio.argmax())
    e_i, t_i = float(err[i]), float(tol[i])
    if worst[0] is None or float(ratio[i]) > worst[0]:
        worst[:] = [float(ratio[i]), e_i, t_i]
    if float(ratio[i]) > 1.0:
        given_txt = ", ".join(f"{n} = {_fmt(a[i if a.shape[0] > 1 else 0])}" for n, a in zip(names, args))
        got_txt = "; ".join(f"{k} = {_fmt(v[i if v.shape[0] > 1 else 0])}" for k, v in shown.items())
        got_txt = f"\n  {got_txt}" if got_txt else ""
        raise _Violation(e_i, t_i, f"error {e_i:.3e} > tolerance {t_i:.1e}\n  {given_txt}{got_txt}")


def _search(strategy: st.SearchStrategy, check: Callable, max_examples: int) -> tuple[int, _Violation | None]:
    count = [0]

    @settings(max_examples=max_examples, database=None, derandomize=True, deadline=None,
              suppress_health_check=list(HealthCheck), verbosity=Verbosity.quiet,
              phases=(Phase.explicit, Phase.generate, Phase.shrink), report_multiple_bugs=False)
    @given(strategy)
    def run(args: tuple) -> None:
        count[0] += 1
        check(args)

    try:
        run()
    except _Violation as v:
        return count[0], v
    return count[0], None


def _run_property(c: _Ctx, row: GroupCheckRow, fn: Callable, kinds: str, batch: dict[str, torch.Tensor],
                  max_examples: int) -> None:
    names = _ARG_NAMES[kinds]
    kind_of = {"g": "g", "h": "g", "k": "g", "X": "X", "x": "x"}
    batch_args = [batch[kind_of[n]] if n in ("g", "X", "x") else batch["g"].roll(names.index(n), 0)
                  for n in names]
    worst: list = [None, None, None]
    sweep: _Violation | None = None
    try:
        _evaluate(c, fn, names, batch_args, worst)
    except _Violation as v:
        sweep = v
    n = batch_args[0].shape[0]
    strategies = {
        "g": gst.elements(c.G, dtype=c.dtype, device=c.device),
        "X": gst.algebra_vectors(c.G, magnitudes=c.magnitudes, dtype=c.dtype, device=c.device)
        if kinds == "X" else None,
        "x": gst.points(c.G.space_dim, dtype=c.dtype, device=c.device),
    }
    strategy = st.tuples(*(strategies[kind_of[nm]] for nm in names))
    tried, found = _search(strategy, lambda a: _evaluate(c, fn, names, [t.unsqueeze(0) for t in a], worst),
                           max_examples)
    row.examples = n + tried
    row.worst_error, row.tolerance = worst[1], worst[2]
    if found is not None:
        row.passed = False
        row.message = f"{found.detail}\n  (counter-example shrunk by Hypothesis)"
        row.worst_error, row.tolerance = found.err, found.tol
    elif sweep is not None:
        row.passed = False
        row.message = (f"{sweep.detail}\n  (found in the batch sweep; single elements pass: "
                       "a broadcasting/batching bug?)")
        row.worst_error, row.tolerance = sweep.err, sweep.tol


def _batch(c: _Ctx, seed: int = 0) -> dict[str, torch.Tensor | None]:
    G, dev = c.G, c.device
    gen = torch.Generator().manual_seed(seed)
    if G.is_finite:
        E = G.elements(device=dev, dtype=c.edtype)
        g = E if E.shape[0] <= 64 else E[torch.randperm(E.shape[0], generator=gen)[:64].to(dev)]
    else:
        parts = [G.sample(16, generator=torch.Generator(device=dev).manual_seed(seed), device=dev,
                          dtype=c.edtype)]
        if c.available["exp_total"]:
            parts.append(G.exp(_algebra_batch(c, gen)[: 2 * len(c.magnitudes)]))
        for n in (8, 4):
            try:
                parts.append(G.grid(n, device=dev, dtype=c.edtype))
                break
            except (ValueError, *_NA):
                continue
        g = torch.cat(parts)
    x = 5 * torch.randn(g.shape[0], G.space_dim, generator=gen, dtype=torch.float64).to(dev, c.dtype)
    return {"g": g, "x": x, "X": _algebra_batch(c, gen) if c.available["exp_total"] else None}


def _algebra_batch(c: _Ctx, gen: torch.Generator) -> torch.Tensor:
    d = c.G.algebra_dim
    u = torch.randn(4 * len(c.magnitudes), d, generator=gen, dtype=torch.float64)
    u = torch.cat([u, torch.eye(d, dtype=torch.float64).repeat(len(c.magnitudes), 1)])
    u = u / torch.linalg.vector_norm(u, dim=-1, keepdim=True)
    m = torch.tensor(c.magnitudes, dtype=torch.float64)
    mags = torch.cat([m.repeat_interleave(4), m.repeat_interleave(d)])
    return (u * mags[:, None]).to(c.device, c.dtype)


def check_group(
    G: Group,
    *,
    dtypes: Sequence[torch.dtype] = (torch.float32, torch.float64),
    devices: Sequence[str | torch.device] | None = None,
    max_examples: int = 25,
    magnitudes: Sequence[float] = (0.0, *gst.DEFAULT_MAGNITUDES),
    log_radius: float = math.pi,
    properties: Sequence[str] | None = None,
    haar_samples: int = 4096,
    raise_on_failure: bool = True,
) -> GroupReport:
    """Check the group axioms and the protocol of ``G`` as Hypothesis properties.

    Args:
        G: any :class:`~groupconv.groups.Group` (built-in or user-defined).
        dtypes: floating dtypes to check (elements, points, algebra vectors).
        devices: devices to check on (default: CPU plus CUDA when available).
        max_examples: Hypothesis examples per property (after a batch sweep).
        magnitudes: norms of the algebra vectors of ``log_of_exp`` (0, tiny, ..., near pi).
        log_radius: algebra vectors with a norm below it must satisfy ``log(exp X) = X``
            (the injectivity radius: ``pi`` for rotation factors).
        properties: a subset of :data:`PROPERTIES` (default: all).
        haar_samples: number of samples of the Haar-invariance statistics.
        raise_on_failure: raise :class:`GroupCheckError` when a property fails.

    Returns:
        A :class:`GroupReport` (``.passed``, ``.rows``, ``str()`` renders a table).

    Raises:
        GroupCheckError: naming the group, property, dtype/device, the shrunk counter-example
            and the error against the tolerance.
    """
    G = as_group(G, "G")
    selected = PROPERTIES if properties is None else tuple(properties)
    unknown = [p for p in selected if p not in PROPERTIES]
    if unknown:
        raise ValueError(f"properties must be among {PROPERTIES}, got unknown {unknown}")
    if max_examples < 1:
        raise ValueError(f"max_examples must be >= 1, got {max_examples}")
    devs = [str(d) for d in (gst.available_devices() if devices is None else devices)]
    report = GroupReport()
    for dev in devs:
        for dtype in dtypes:
            c = _Ctx(G, dtype, dev, magnitudes, log_radius)
            batch = _batch(c)
            for prop in selected:
                row = GroupCheckRow(repr(G), prop, dtype, dev)
                report.rows.append(row)
                try:
                    _run_one(c, row, prop, batch, max_examples, haar_samples)
                except Exception as exc:
                    row.passed, row.message = False, f"raised {type(exc).__name__}: {exc}"
    if raise_on_failure and not report.passed:
        lines = [f"check_group({G!r}): {len(report.failures)} failed propert"
                 f"{'y' if len(report.failures) == 1 else 'ies'}"]
        for r in report.failures:
            what = _DESCRIPTIONS.get(r.property, r.property)
            lines.append(f"- {r.property} [{str(r.dtype).replace('torch.', '')}, {r.device}]: {what}")
            lines += ["    " + ln for ln in r.message.splitlines()]
        raise GroupCheckError("\n".join(lines) + "\n\n" + str(report), report)
    return report


def _run_one(c: _Ctx, row: GroupCheckRow, prop: str, batch: dict, max_examples: int,
             haar_samples: int) -> None:
    G = c.G
    if prop == "conventions":
        return _conventions(c, row)
    if prop == "grid":
        return _grid(c, row)
    if prop == "finite_closure":
        if not G.is_finite:
            row.skipped, row.message = True, "not a finite group"
            return None
        return _finite_closure(c, row)
    fn, kinds, needs = _SPECS[prop]
    missing = [m for m in (needs or "").split("+") if m and not c.available[m]]
    if missing:
        row.skipped, row.message = True, f"{'/'.join(missing)} not available"
        return None
    if prop == "log_of_exp" and G.is_finite:
        row.skipped, row.message = True, "finite group: exp(log g) covers it"
        return None
    if prop == "haar_invariance":
        if not G.is_compact:
            row.skipped, row.message = True, "not compact: sample() follows a documented measure"
            return None
        c.haar_samples = G.sample(  # type: ignore[attr-defined]
            haar_samples, generator=torch.Generator(device=c.device).manual_seed(0), device=c.device,
            dtype=c.edtype)
        c.haar_f0 = _haar_features(c, c.haar_samples).unsqueeze(0)  # type: ignore[attr-defined]
        _run_property(c, row, fn, kinds, {"g": batch["g"][:4]}, max(2, min(max_examples, 3)))
        if G.is_finite and row.passed:
            msg = _finite_uniform(c, haar_samples)
            row.passed, row.message = not msg, msg
        return None
    _run_property(c, row, fn, kinds, batch, max_examples)
    return None
