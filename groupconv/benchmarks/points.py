"""``groupconv bench points``: time and memory of :class:`~groupconv.nn.PointGroupConv` vs the
number of points and of neighbours, next to a dense (all-pairs) baseline.

Subject: one ``PointGroupConv(SE2(), C, C)`` (``C = 16``, ``kernel_channels = 16``,
``kernel_hidden = 32``) on ``B = 2`` clouds of ``N`` standard-normal points lifted to ``S = 2``
neighbour frames each, **forward + backward** (``out.features.square().mean().backward()``;
the lift is made once, outside the timed call). Sizes (full run):

* ``knn`` in ``N`` -- ``N`` in 512, 1024, 2048 with ``K = 16`` neighbours;
* ``knn`` in ``K`` -- ``K`` in 8, 16, 32 at ``N = 1024``;
* ``dense`` -- every point a neighbour of every point (``K = N``), ``N`` in 128, 256: the
  all-pairs convolution, quadratic in ``N``.

The kernel net runs on ``B N S K S`` pairs, so time and activation memory should grow
**linearly** in ``N`` and in ``K`` (ratio ~2 per doubling) and quadratically for ``dense``
(~4); the rules split at ``2 sqrt 2 = 2.83x`` per doubling, the geometric mean of the two, and
report the least favourable doubling of each sweep. The neighbour search computes all ``N^2``
distances (in chunks, so its memory stays bounded) but costs ``d = 2`` flops per pair against
thousands for the kernel net; it is included.

Every row has one verdict rule, printed above the table (``ok`` follows from the ratio shown):

==================  ==========================================  ===================
check               what is measured                            rule
==================  ==========================================  ===================
``points-time``     knn forward+backward at ``2N`` over ``N``   t(2N)/t(N) <= 2.83x
``neighbors-time``  knn at ``2K`` over ``K`` (same ``N``)       t(2K)/t(K) <= 2.83x
``points-memory``   peak memory of knn at ``2N`` over ``N``     peak(2N)/peak(N) <= 2.83x
``dense-growth``    dense at ``2N`` over ``N``                  t(2N)/t(N) >= 2.83x
``dense-vs-knn``    dense over knn at the largest dense ``N``   dense/knn >= 2x
==================  ==========================================  ===================

Ratios are medians of per-round ratios of interleaved rounds
(:func:`~groupconv.benchmarks.common.time_interleaved`), quartiles in brackets. **Memory** (each
``N`` in a fresh subprocess, ``python -m groupconv.benchmarks.points --memory-probe SPEC``): on
CPU the rise of the peak RSS (``VmHWM``, reset through ``/proc/self/clear_refs``) during one
forward + backward, on CUDA ``max_memory_allocated`` above the baseline; plus the analytic
element count of the largest activation (the kernel net's hidden layer, ``B N S K S hidden``).

``quick=True`` uses tiny sizes and one round: a smoke run whose numbers mean nothing.

Example:
    >>> res = run_points_benchmark(quick=True, memory=False)
    >>> [r["check"] for r in res["rows"]]
    ['points-time', 'neighbors-time', 'points-memory', 'dense-growth', 'dense-vs-knn']
    >>> print(format_table(res).splitlines()[0])
    verdict rules (one per row; 'ok' follows from the ratio shown):
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch

from .common import (
    Option,
    Rule,
    environment_info,
    format_ratio,
    format_rules,
    format_seconds,
    peak_memory,
    probe_in_subprocess,
    ratio,
    ratio_spread,
    suite_main,
    time_interleaved,
)
from .common import format_table as _grid

__all__ = ["RULES", "run_points_benchmark", "format_table", "point_conv_memory_elements", "main"]

#: per doubling, linear growth is 2x and quadratic 4x: the rules split at their geometric mean.
_MID = round(2 * 2**0.5, 2)  # 2.83

#: the verdict rule of every check (one per row).
RULES: dict[str, Rule] = {r.check: r for r in (
    Rule("points-time", "t(2N) / t(N)", "<=", _MID),
    Rule("neighbors-time", "t(2K) / t(K)", "<=", _MID),
    Rule("points-memory", "peak(2N) / peak(N)", "<=", _MID),
    Rule("dense-growth", "t(2N) / t(N)", ">=", _MID),
    Rule("dense-vs-knn", "dense / knn", ">=", 2.0),
)}

_FULL = {"points": (512, 1024, 2048), "k": 16, "neighbors": (8, 16, 32), "n_at_k": 1024,
         "dense": (128, 256)}
_QUICK = {"points": (32, 64), "k": 4, "neighbors": (4, 8), "n_at_k": 32, "dense": (16, 32)}
_B, _C, _S, _KC, _KH = 2, 16, 2, 16, 32


def point_conv_memory_elements(batch: int, points: int, neighbors: int, frames: int, hidden: int) -> int:
    """Elements of the largest activation of one ``PointGroupConv`` forward: ``B N S K S hidden``.

    Example:
        >>> point_conv_memory_elements(2, 2048, 16, 2, 32) / point_conv_memory_elements(2, 1024, 16, 2, 32)
        2.0
    """
    return int(batch) * int(points) * int(frames) * int(neighbors) * int(frames) * int(hidden)


def _setup(n: int, k: int, device: str):
    from ..functional.points import lift_points
    from ..groups import SE2
    from ..nn import PointGroupConv

    torch.manual_seed(0)
    G = SE2()
    conv = PointGroupConv(G, _C, _C, num_neighbors=k, kernel_channels=_KC, kernel_hidden=_KH, device=device)
    gen = torch.Generator().manual_seed(n)
    pts = torch.randn(_B, n, 2, generator=gen).to(device)
    u = lift_points(G, pts, num_frames=_S)
    f = torch.randn(_B, n, _S, _C, generator=gen).to(device).requires_grad_(True)
    return conv, u, f


def _step(conv, u, f) -> None:
    out = conv(u, f)
    out.features.square().mean().backward()
    conv.zero_grad(set_to_none=True)
    f.grad = None


def _memory_probe(spec: dict[str, Any]) -> dict[str, Any]:
    """Peak bytes above the baseline during one forward + backward (meant for a fresh process)."""
    device = spec["device"]
    small = _setup(min(spec["n"], 16), min(spec["k"], 4), device)
    _step(*small)  # lazy one-off state (thread pools, kernels) before the measurement
    conv, u, f = _setup(spec["n"], spec["k"], device)
    return peak_memory(lambda: _step(conv, u, f), device)


def _measure_memory(n: int, k: int, device: str) -> float | None:
    return probe_in_subprocess("groupconv.benchmarks.points", {"n": n, "k": k, "device": device})


def _row(check: str, cand: str, base: str, a: Any, b: Any, unit: str = "s") -> dict[str, Any]:
    rule = RULES[check]
    if unit == "s":
        spread = ratio_spread(a.seconds, b.seconds)
        value, med_a, med_b = spread["median"], a.median, b.median
    else:
        value, spread, med_a, med_b = ratio(a, b), None, a, b  # type: ignore[assignment]
    return {"check": check, "candidate": cand, "baseline": base, "median": med_a, "baseline_median": med_b,
            "unit": unit, "ratio": value, "ratio_spread": spread, "rule": rule.describe(),
            "target_op": rule.op, "target": rule.threshold, "ok": rule.passes(value)}


def _worst(rows: list[dict[str, Any]]) -> dict[str, Any]:
    """The row of a check with the least favourable ratio (the one the verdict is about)."""
    rule = RULES[rows[0]["check"]]
    vals = [r for r in rows if r["ratio"] is not None]
    if not vals:
        return rows[0]
    key = (lambda r: r["ratio"]) if rule.op in ("<=", "<") else (lambda r: -r["ratio"])
    return max(vals, key=key)


def run_points_benchmark(quick: bool = False, device: str = "cpu", *, repeats: int | None = None,
                         memory: bool = True) -> dict[str, Any]:
    """Run the suite; returns ``{"environment", "device", "quick", "config", "timings", "memory",
    "rows"}`` (JSON-ready).

    ``timings``: every measured size (``kind`` knn/dense, ``n``, ``k``, median and quartiles,
    analytic elements of the largest activation); ``memory``: ``{n: bytes or None}`` of the knn
    sizes in ``N``; ``rows``: one per check (:data:`RULES`), each the least favourable ratio of
    its doublings, with ``ok``.
    """
    if not isinstance(quick, bool):
        raise TypeError(f"quick must be a bool, got {type(quick).__name__}")
    sizes = _QUICK if quick else _FULL
    reps = repeats if repeats is not None else (1 if quick else 5)
    if isinstance(reps, bool) or not isinstance(reps, int) or reps < 1:
        raise ValueError(f"repeats must be a positive int, got {repeats!r}")
    dev = str(torch.device(device))
    cases = {f"knn-N{n}-K{sizes['k']}": ("knn", n, sizes["k"]) for n in sizes["points"]}
    cases.update({f"knn-N{sizes['n_at_k']}-K{k}": ("knn", sizes["n_at_k"], k) for k in sizes["neighbors"]})
    cases.update({f"dense-N{n}": ("dense", n, n) for n in sizes["dense"]})
    fns = {}
    for name, (_, n, k) in cases.items():
        state = _setup(n, k, dev)
        fns[name] = lambda state=state: _step(*state)
    t = time_interleaved(fns, repeats=reps, warmup=0 if quick else 1, device=dev)
    timings = [{"name": name, "kind": kind, "n": n, "k": k, **t[name].as_dict(),
                "analytic_elements": point_conv_memory_elements(_B, n, k, _S, _KH)}
               for name, (kind, n, k) in cases.items()]
    mem = {n: (_measure_memory(n, sizes["k"], dev) if memory else None) for n in sizes["points"]}
    k0, n0 = sizes["k"], sizes["n_at_k"]
    pts, nbs, dense = sizes["points"], sizes["neighbors"], sizes["dense"]
    rows = [
        _worst([_row("points-time", f"knn N={b} K={k0}", f"knn N={a} K={k0}", t[f"knn-N{b}-K{k0}"],
                     t[f"knn-N{a}-K{k0}"]) for a, b in zip(pts, pts[1:])]),
        _worst([_row("neighbors-time", f"knn N={n0} K={b}", f"knn N={n0} K={a}", t[f"knn-N{n0}-K{b}"],
                     t[f"knn-N{n0}-K{a}"]) for a, b in zip(nbs, nbs[1:])]),
        _worst([_row("points-memory", f"knn N={b} K={k0}", f"knn N={a} K={k0}", mem[b], mem[a], unit="B")
                for a, b in zip(pts, pts[1:])]),
        _worst([_row("dense-growth", f"dense N={b}", f"dense N={a}", t[f"dense-N{b}"], t[f"dense-N{a}"])
                for a, b in zip(dense, dense[1:])]),
    ]
    nd = dense[-1]
    knn_name = f"knn-N{nd}-K{k0}"
    if knn_name not in t:  # time the knn layer at the dense size in the same rounds as dense
        state = _setup(nd, k0, dev)
        extra = time_interleaved({knn_name: lambda: _step(*state), f"dense-N{nd}": fns[f"dense-N{nd}"]},
                                 repeats=reps, warmup=0 if quick else 1, device=dev)
        rows.append(_row("dense-vs-knn", f"dense N={nd}", f"knn N={nd} K={k0}", extra[f"dense-N{nd}"],
                         extra[knn_name]))
    else:
        rows.append(_row("dense-vs-knn", f"dense N={nd}", f"knn N={nd} K={k0}", t[f"dense-N{nd}"],
                         t[knn_name]))
    method = "cuda max_memory_allocated" if dev.startswith("cuda") else "subprocess peak-RSS (VmHWM) delta"
    return {"environment": environment_info(dev), "device": dev, "quick": quick, "repeats": reps,
            "config": {"group": "SE2", "batch": _B, "channels": _C, "frames": _S, "kernel_channels": _KC,
                       "kernel_hidden": _KH, "memory_method": method if memory else None, **sizes},
            "timings": timings, "memory": {str(n): v for n, v in mem.items()}, "rows": rows}


def _fmt(value: float | None, unit: str) -> str:
    if value is None:
        return "-"
    return f"{value / 2**20:.1f} MiB" if unit == "B" else format_seconds(value)


def format_table(result: dict[str, Any]) -> str:
    """Human-readable tables of :func:`run_points_benchmark`'s result: rules, verdicts, sizes."""
    rows = result["rows"]
    body = [[r["check"], r["candidate"], r["baseline"], _fmt(r["median"], r["unit"]),
             _fmt(r["baseline_median"], r["unit"]), format_ratio(r["ratio"], r.get("ratio_spread")),
             f"{r['target_op']} {r['target']:g}x", "-" if r["ok"] is None else ("ok" if r["ok"] else "NO")]
            for r in rows]
    mem, cfg = result.get("memory", {}), result["config"]
    sizes = [[s["kind"], s["n"], s["k"], format_seconds(s["median_s"]),
              f"{4 * s['analytic_elements'] / 2**20:.1f} MiB",
              _fmt(mem.get(str(s["n"])) if s["kind"] == "knn" and s["k"] == cfg["k"] else None, "B")]
             for s in result["timings"]]
    env = result.get("environment", {})
    return "\n".join([
        format_rules([RULES[r["check"]] for r in rows]), "",
        _grid(["check", "candidate", "baseline", "median", "baseline median", "ratio [q1-q3]", "rule", "ok"],
              body),
        "", f"PointGroupConv({cfg['group']}, {cfg['channels']}, {cfg['channels']}), B={cfg['batch']}, "
            f"S={cfg['frames']} frames, forward+backward; memory: {cfg['memory_method'] or 'not measured'}",
        _grid(["kind", "N", "K", "median", "largest activation", "empirical peak"], sizes),
        f"\ndevice {result.get('device')}, {result.get('repeats')} interleaved rounds, "
        f"torch {env.get('torch')}, {env.get('threads')} threads, load {env.get('load_average')}"
        + (", QUICK sizes (numbers not meaningful)" if result.get("quick") else ""),
    ])


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m groupconv.benchmarks.points [--quick] [--device D] [--repeats R] [--json PATH]
    [--no-memory]`` (see :func:`~groupconv.benchmarks.common.suite_main`)."""
    return suite_main(
        argv, module="groupconv.benchmarks.points", description=__doc__.splitlines()[0],
        run=run_points_benchmark, format_result=format_table, memory_probe=_memory_probe,
        options=(Option("--repeats", "repeats", "timing rounds"),
                 Option("--no-memory", "memory", "skip the subprocess memory probes", kind="off")))


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main())
