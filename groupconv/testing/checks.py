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
``grid``               ``grid(n)`` is deterministic, shaped, valid and identity-first
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

from ..groups import Group
from . import strategies as gst

__all__ = ["GroupCheckError", "GroupCheckRow", "GroupReport", "PROPERTIES", "check_group", "group_tolerance"]

PROPERTIES: tuple[str, ...] = (
    "conventions", "identity", "inverse", "associativity", "exp_of_log", "log_of_exp",
    "matrix_homomorphism", "action_homomorphism", "det_multiplicative", "finite_closure",
    "haar_invariance", "grid",
)

_NA = (TypeError, NotImplementedError)
_Z = 6.0  # z-score bound of the sampler statistics (deterministic generator: no flakiness)

_TOLERANCES: dict[torch.dtype, tuple[float, float, float]] = {
    torch.float64: (1e-12, 1e-9, 1e-6),
    torch.float32: (1e-6, 1e-4, 2e-3),
    torch.float16: (1e-3, 1e-2, 5e-2),
    torch.bfloat16: (1e-2, 5e-2, 1e-1),
}


def group_tolerance(dtype: torch.dtype) -> tuple[float, float, float]:
    """``(atol, rtol, cut)`` used by :func:`check_group` for ``dtype``.

    ``cut`` replaces ``rtol`` for logarithms near the cut locus of compact factors.

    Example:
        >>> group_tolerance(torch.float64)
        (1e-12, 1e-09, 1e-06)
    """
    if dtype not in _TOLERANCES:
        raise ValueError(f"dtype must be a floating dtype in {list(_TOLERANCES)}, got {dtype}")
    return _TOLERANCES[dtype]


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
             r.status + (f" ({r.message.splitlines()[0]})" if r.skipped and r.message else "")]
            for r in self.rows
        ]
        widths = [max([len(h)] + [len(c[i]) for c in cells]) for i, h in enumerate(head)]
        lines = ["  ".join(h.ljust(w) for h, w in zip(head, widths)).rstrip(),
                 "  ".join("-" * w for w in widths)]
        lines += ["  ".join(c.ljust(w) for c, w in zip(cell, widths)).rstrip() for cell in cells]
        return "\n".join(lines)


# -- helpers ----------------------------------------------------------------------------------
class _Violation(Exception):
    def __init__(self, err: float, tol: float, detail: str) -> None:
        super().__init__(detail)
        self.err, self.tol, self.detail = err, tol, detail


def _fmt(t: torch.Tensor) -> str:
    t = t.detach().cpu()
    if t.is_floating_point():
        t = t.double()
        if t.numel() > 16:
            return f"<tensor {tuple(t.shape)}, max|.|={float(t.abs().max()):.4g}>"
        return "[" + ", ".join(f"{v:.6g}" for v in t.flatten().tolist()) + "]"
    return str(t.tolist()) if t.numel() <= 16 else f"<tensor {tuple(t.shape)}>"


class _Ctx:
    """Per (group, dtype, device) state: tolerances and which methods exist."""

    def __init__(self, G: Group, dtype: torch.dtype, device: str, magnitudes: Sequence[float],
                 log_radius: float) -> None:
        self.G, self.dtype, self.device = G, dtype, device
        self.edtype = gst._element_dtype(G, dtype)
        self.atol, self.rtol, self.cut = group_tolerance(dtype)
        self.magnitudes, self.log_radius = tuple(magnitudes), log_radius
        self.es = tuple(G.element_shape)
        e = G.identity((1,), device=device, dtype=self.edtype)
        self.available = {}
        probes: dict[str, Callable[[], object]] = {
            "log": lambda: G.log(e), "matrix": lambda: G.matrix(e), "det": lambda: G.det(e),
            "act": lambda: G.act(e, torch.zeros(1, G.space_dim, device=device, dtype=dtype)),
        }
        for name, probe in probes.items():
            try:
                probe()
                self.available[name] = True
            except _NA:
                self.available[name] = False
        self.available["exp"] = gst.has_exp(G, total=False)
        self.available["exp_total"] = gst.has_exp(G)

    def identity(self, n: int) -> torch.Tensor:
        return self.G.identity((n,), device=self.device, dtype=self.edtype)

    def err(self, a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
        """Per-row element error ``min(|a - b|_max, distance(a, b))``."""
        nd = len(self.es)
        if not a.is_floating_point():
            return (a != b).flatten(a.dim() - nd).any(-1).double()
        raw = (a.double() - b.double()).abs().flatten(a.dim() - nd).amax(-1)
        try:
            dist = self.G.distance(a, b).double().reshape(raw.shape)
        except _NA:
            return raw
        return torch.where(torch.isnan(raw), raw, torch.minimum(raw, dist.nan_to_num(math.inf)))

    @staticmethod
    def mag(*ts: torch.Tensor) -> torch.Tensor:
        """Per-row largest magnitude among float tensors with a leading batch dim."""
        out = None
        for t in ts:
            if t.is_floating_point():
                m = t.detach().double().abs().reshape(t.shape[0], -1).amax(-1).nan_to_num(0.0)
                out = m if out is None else torch.maximum(out, m)
        return torch.zeros(1, dtype=torch.float64, device=ts[0].device) if out is None else out

    def tol(self, scale: torch.Tensor) -> torch.Tensor:
        return self.atol + self.rtol * (1.0 + scale)


# -- the properties (batched: every argument has a leading batch dim) ----------------------
def _p_identity(c: _Ctx, g):
    G, e = c.G, c.identity(g.shape[0])
    eg, ge = G.product(e, g), G.product(g, e)
    return torch.maximum(c.err(eg, g), c.err(ge, g)), c.tol(c.mag(g)), {"e g": eg, "g e": ge}


def _p_inverse(c: _Ctx, g):
    G, e = c.G, c.identity(g.shape[0])
    gi = G.inverse(g)
    a, b = G.product(g, gi), G.product(gi, g)
    shown = {"g^-1": gi, "g g^-1": a, "g^-1 g": b}
    return torch.maximum(c.err(a, e), c.err(b, e)), c.tol(c.mag(g, gi)), shown


def _p_assoc(c: _Ctx, g, h, k):
    G = c.G
    gh, hk = G.product(g, h), G.product(h, k)
    lhs, rhs = G.product(gh, k), G.product(g, hk)
    return c.err(lhs, rhs), c.tol(c.mag(g, h, k, gh, hk, lhs)), {"(g h) k": lhs, "g (h k)": rhs}


def _norm(X: torch.Tensor) -> torch.Tensor:
    return torch.linalg.vector_norm(X.double(), dim=-1)


def _p_exp_of_log(c: _Ctx, g):
    G = c.G
    keep = torch.ones(g.shape[0], dtype=torch.bool, device=g.device)
    if c.available["det"]:
        keep = G.det(g).reshape(-1) > 0
    L = G.log(g)
    back = G.exp(L)
    n = _norm(L)
    tol = torch.where(n > 0.9 * math.pi, c.atol + c.cut * (1 + c.mag(g)), c.tol(c.mag(g, L)))
    err = torch.where(keep, c.err(back, g), torch.zeros_like(tol))
    return err, tol, {"log g": L, "exp(log g)": back}


def _p_log_of_exp(c: _Ctx, X):
    G = c.G
    g = G.exp(X)
    L = G.log(g)
    n = _norm(X)
    inside = n < c.log_radius
    coord = (L.double() - X.double()).abs().amax(-1)
    elem = c.err(G.exp(L), g)
    err = torch.where(inside, coord, elem)
    rt = torch.where(n > 0.9 * math.pi, torch.full_like(n, c.cut), torch.full_like(n, c.rtol))
    tol = torch.where(inside, c.atol + rt * n, c.atol + rt * (1 + c.mag(g)))
    return err, tol, {"exp X": g, "log(exp X)": L}


def _p_matrix(c: _Ctx, g, h):
    G = c.G
    Mg, Mh, Mgh = (G.matrix(t).double() for t in (g, h, G.product(g, h)))
    rhs = Mg @ Mh
    eye = torch.eye(Mg.shape[-1], dtype=torch.float64, device=Mg.device)
    Me = G.matrix(c.identity(g.shape[0])).double()
    err = torch.maximum((Mgh - rhs).abs().flatten(1).amax(-1), (Me - eye).abs().flatten(1).amax(-1))
    scale = c.mag(Mg) * c.mag(Mh) * Mg.shape[-1]
    return err, c.tol(scale), {"matrix(g h)": Mgh, "matrix(g) matrix(h)": rhs, "matrix(e)": Me}


def _p_action(c: _Ctx, g, h, x):
    G = c.G
    lhs = G.act(G.product(g, h), x)
    hx = G.act(h, x)
    rhs = G.act(g, hx)
    ex = G.act(c.identity(g.shape[0]), x)
    err = torch.maximum((lhs.double() - rhs.double()).abs().amax(-1),
                        (ex.double() - x.double()).abs().amax(-1))
    return err, c.tol(c.mag(x, hx, lhs, rhs)), {"act(g h, x)": lhs, "act(g, act(h, x))": rhs, "act(e, x)": ex}


def _p_det(c: _Ctx, g, h):
    G = c.G
    dg, dh, dgh = (G.det(t).double().reshape(-1) for t in (g, h, G.product(g, h)))
    return (dgh - dg * dh).abs(), c.tol((dg * dh).abs()), {"det(g h)": dgh, "det(g) det(h)": dg * dh}


def _haar_features(c: _Ctx, s: torch.Tensor) -> torch.Tensor:
    """Matrix entries (or the embedding) and their pairwise products: first + second moments."""
    G = c.G
    f = (G.matrix(s) if c.available["matrix"] else G.embedding(s)).double().flatten(s.dim() - len(c.es))
    iu = torch.triu_indices(f.shape[-1], f.shape[-1], device=f.device)
    return torch.cat([f, f[..., iu[0]] * f[..., iu[1]]], dim=-1)


def _p_haar(c: _Ctx, g):
    G, s = c.G, c.haar_samples  # type: ignore[attr-defined]
    m, N = g.shape[0], s.shape[0]
    gg = g.unsqueeze(1).expand(m, N, *c.es)
    ss = s.unsqueeze(0).expand(m, N, *c.es)
    f0 = c.haar_f0  # type: ignore[attr-defined]
    errs, tols = [], []
    for moved in (G.product(gg, ss), G.product(ss, gg)):
        d = _haar_features(c, moved) - f0
        mean, std = d.mean(1).abs(), d.std(1)
        bound = _Z * std / math.sqrt(N) + c.atol + c.rtol * d.abs().amax(1)
        errs.append(mean)
        tols.append(bound)
    mean, bound = torch.cat(errs, -1), torch.cat(tols, -1)
    worst = (mean / bound).argmax(-1, keepdim=True)
    return mean.gather(-1, worst)[:, 0], bound.gather(-1, worst)[:, 0], {}


_SPECS: dict[str, tuple[Callable, str, str | None]] = {
    # name: (function, argument kinds, required method)
    "identity": (_p_identity, "g", None),
    "inverse": (_p_inverse, "g", None),
    "associativity": (_p_assoc, "ggg", None),
    "exp_of_log": (_p_exp_of_log, "g", "exp+log"),
    "log_of_exp": (_p_log_of_exp, "X", "exp_total+log"),
    "matrix_homomorphism": (_p_matrix, "gg", "matrix"),
    "action_homomorphism": (_p_action, "ggx", "act"),
    "det_multiplicative": (_p_det, "gg", "det"),
    "haar_invariance": (_p_haar, "g", None),
}
_ARG_NAMES = {"g": ("g",), "X": ("X",), "gg": ("g", "h"), "ggg": ("g", "h", "k"), "ggx": ("g", "h", "x")}
_DESCRIPTIONS = {
    "identity": "e g = g e = g", "inverse": "g g^-1 = g^-1 g = e", "associativity": "(g h) k = g (h k)",
    "exp_of_log": "exp(log g) = g", "log_of_exp": "log(exp X) = X inside the injectivity radius",
    "matrix_homomorphism": "matrix(g h) = matrix(g) matrix(h) and matrix(e) = I",
    "action_homomorphism": "act(g h, x) = act(g, act(h, x)) and act(e, x) = x",
    "det_multiplicative": "det(g h) = det(g) det(h)",
    "haar_invariance": "moments of sample() invariant under s -> g s and s -> s g (Haar)",
    "finite_closure": "elements()/index()/product closure",
    "grid": "grid(n) deterministic, valid, identity first",
    "conventions": "shapes, dtype/device following, reproducible sampling, validate",
}


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


def _batch(c: _Ctx, seed: int = 0) -> dict[str, torch.Tensor]:
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


def _same_place(t: torch.Tensor, c: _Ctx) -> bool:
    dev_ok = t.device.type == torch.device(c.device).type
    return dev_ok and (c.edtype is None or t.dtype == c.edtype)


def _conventions(c: _Ctx, row: GroupCheckRow) -> None:
    G, dev, problems = c.G, c.device, []
    e = G.identity((3,), device=dev, dtype=c.edtype)
    if tuple(e.shape) != (3, *c.es) or not _same_place(e, c):
        problems.append(f"identity((3,)) has shape {tuple(e.shape)}, {e.dtype}, {e.device}; "
                        f"expected {(3, *c.es)}, {c.edtype}, {dev}")
    s1 = G.sample(5, generator=torch.Generator(device=dev).manual_seed(7), device=dev, dtype=c.edtype)
    s2 = G.sample(5, generator=torch.Generator(device=dev).manual_seed(7), device=dev, dtype=c.edtype)
    if tuple(s1.shape) != (5, *c.es) or not _same_place(s1, c):
        problems.append(f"sample(5) has shape {tuple(s1.shape)}, {s1.dtype}, {s1.device}; "
                        f"expected {(5, *c.es)}, {c.edtype}, {dev}")
    elif not torch.equal(s1, s2):
        problems.append("sample(5, generator) differs between two generators with the same seed")
    try:
        G.validate(s1, "sample(5)")
    except ValueError as exc:
        problems.append(f"validate rejects sampled elements: {exc}")
    p = G.product(s1, G.inverse(s1.flip(0)))
    if tuple(p.shape) != (5, *c.es) or not _same_place(p, c):
        problems.append(f"product/inverse return shape {tuple(p.shape)}, {p.dtype}, {p.device}")
    row.examples, row.passed = 5, not problems
    row.message = "; ".join(problems)


def _grid(c: _Ctx, row: GroupCheckRow) -> None:
    G, problems, tried = c.G, [], 0
    sizes = sorted({1, 2, G.order}) if G.is_finite else [1, 4, 8]
    worst = 0.0
    for n in sizes:
        try:
            a = G.grid(n, device=c.device, dtype=c.edtype)
        except (ValueError, *_NA):
            continue
        tried += 1
        b = G.grid(n, device=c.device, dtype=c.edtype)
        if tuple(a.shape) != (n, *c.es) or not _same_place(a, c):
            problems.append(f"grid({n}) has shape {tuple(a.shape)}, {a.dtype}; "
                            f"expected {(n, *c.es)}, {c.edtype}")
            continue
        if not torch.equal(a, b):
            problems.append(f"grid({n}) is not deterministic")
        try:
            G.validate(a, f"grid({n})")
        except ValueError as exc:
            problems.append(str(exc))
        d = c.err(a, c.identity(n))
        tol = c.tol(c.mag(a))
        worst = max(worst, float(d[0]))
        if bool((d <= tol).any()) and not bool(d[0] <= tol[0]):
            k = int((d <= tol).nonzero()[0, 0])
            problems.append(f"grid({n}) contains the identity at position {k}, not first: {_fmt(a[0])}")
    if tried == 0:
        row.skipped, row.message = True, "grid(n) raised for every n tried"
        return
    row.examples, row.passed, row.worst_error = tried, not problems, worst
    row.tolerance, row.message = c.atol + c.rtol, "; ".join(problems)


def _finite_closure(c: _Ctx, row: GroupCheckRow) -> None:
    G, problems = c.G, []
    E = G.elements(device=c.device, dtype=c.edtype)
    m = E.shape[0]
    if m != G.order:
        problems.append(f"elements() has {m} rows but order is {G.order}")
    if float(c.err(E[:1], c.identity(1))[0]) > c.atol + c.rtol:
        problems.append(f"elements()[0] = {_fmt(E[0])} is not the identity")
    idx = G.index(E).reshape(-1).cpu()
    if not torch.equal(idx, torch.arange(m)):
        problems.append(f"index(elements()) = {idx.tolist()[:12]}... is not 0..{m - 1}")
    if m <= 48:
        i, j = torch.meshgrid(torch.arange(m), torch.arange(m), indexing="ij")
        i, j = i.reshape(-1), j.reshape(-1)
    else:
        gen = torch.Generator().manual_seed(0)
        i, j = torch.randint(m, (2048,), generator=gen), torch.randint(m, (2048,), generator=gen)
    P = G.product(E[i.to(c.device)], E[j.to(c.device)])
    worst = 0.0
    try:
        k = G.index(P).reshape(-1)
        err = c.err(E[k], P).cpu()
        tol = c.tol(c.mag(P)).cpu()
        worst = float(err.max())
        bad = (~(err <= tol)).nonzero()
        if bad.numel():
            b = int(bad[0, 0])
            problems.append(f"product of elements()[{int(i[b])}] and elements()[{int(j[b])}] = {_fmt(P[b])} "
                            f"is not elements()[index] = {_fmt(E[k[b]])}")
        if m <= 48 and problems == []:
            table = k.reshape(m, m).cpu()
            if not (table.sort(1).values == torch.arange(m)).all() or not (table.sort(0).values.T
                                                                          == torch.arange(m)).all():
                problems.append("the Cayley table is not a Latin square (product not invertible)")
        ki = G.index(G.inverse(E)).reshape(-1)
        if float(c.err(E[ki], G.inverse(E)).max()) > c.atol + c.rtol * 2:
            problems.append("inverse(elements()) does not land in elements()")
    except ValueError as exc:
        problems.append(f"a product of elements is not an element: {exc}")
    row.examples, row.passed, row.worst_error = int(i.numel()), not problems, worst
    row.tolerance, row.message = c.atol + c.rtol, "; ".join(problems)


def _finite_uniform(c: _Ctx, N: int) -> str:
    G = c.G
    gen = torch.Generator(device=c.device).manual_seed(1)
    s = G.sample(N, generator=gen, device=c.device, dtype=c.edtype)
    freq = torch.bincount(G.index(s).reshape(-1).cpu(), minlength=G.order).double() / N
    p = 1.0 / G.order
    bound = _Z * math.sqrt(p * (1 - p) / N)
    dev = float((freq - p).abs().max())
    if dev > bound:
        k = int((freq - p).abs().argmax())
        return (f"sample() frequencies are not uniform: element {k} has frequency {float(freq[k]):.4f}, "
                f"expected {p:.4f} +- {bound:.4f} ({N} samples)")
    return ""


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
    if not isinstance(G, Group):
        raise TypeError(f"G must be a groupconv.groups.Group, got {type(G).__name__}")
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
