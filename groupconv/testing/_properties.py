"""The properties checked by :func:`~groupconv.testing.check_group` (internal).

Each ``_p_*`` function evaluates one property on batched arguments (every argument has a
leading batch dimension) and returns ``(error, tolerance, shown)``: per-row errors, per-row
tolerances and the intermediate values to print in a failure message. The whole-group checks
(``conventions``, ``grid``, ``finite_closure`` and the finite-group uniformity statistic) fill
a :class:`~groupconv.testing.checks.GroupCheckRow` directly. The runner (batch sweep, then a
Hypothesis search) lives in :mod:`groupconv.testing.checks`.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING

import torch

from ..groups import Group
from . import strategies as gst

if TYPE_CHECKING:
    from .checks import GroupCheckRow

__all__ = ["group_tolerance"]

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
    worst, with_id, without = 0.0, 0, []
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
        if not bool((d <= tol).any()):
            without.append(n)  # identity-first does not apply to this grid
            continue
        with_id += 1
        worst = max(worst, float(d[0]))
        if not bool(d[0] <= tol[0]):
            k = int((d <= tol).nonzero()[0, 0])
            problems.append(f"grid({n}) contains the identity at position {k}, not first: {_fmt(a[0])}")
    if tried == 0:
        row.skipped, row.message = True, "grid(n) raised for every n tried"
        return
    row.examples, row.passed = tried, not problems
    # the number shown is the distance of grid(n)[0] from the identity, so it is only shown
    # for grids that contain the identity (a box grid of a non-compact group need not)
    row.worst_error = worst if with_id else None
    row.tolerance = c.atol + c.rtol if with_id else None
    notes = [f"grid({', '.join(map(str, without))}) holds no identity: identity-first n/a"] if without else []
    row.message = "; ".join(problems + ([] if problems else notes))


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
