"""``groupconv bench groups``: throughput of batched group operations, and the ratio to escnn.

For SO(2), SE(2) and SO(3) the suite times ``product``, ``inverse``, ``exp`` and ``log`` on a
batch of elements (default 100,000) and reports elements per second. Where escnn is installed
the same operations run on escnn's per-element ``GroupElement`` objects (``g1 @ g2``, ``~g``,
``G.element(params)`` as the ``exp`` analogue, ``g.to(param)`` as the ``log`` analogue) on a
smaller batch (default 2,000), and the ratio of elements per second is reported; the issue's
target is a ratio of at least 100. escnn has no SE(2) group object, so that row has no ratio.

Everything is timed in one process with interleaved rounds (see :mod:`.common`); the torch and
escnn candidates share the rounds, so their ratio comes from the same conditions. Every row has
one verdict rule, ``vs-escnn: ok when batched / escnn elements per second >= 100x`` (printed
above the table); its ``ratio`` is the median of the per-round ratios (spread in
``ratio_spread``) and ``ok`` follows from it alone (``-`` where escnn has no such group).

Run it with ``groupconv bench groups`` or ``python -m groupconv.benchmarks.groups``.

Example:
    >>> res = run_groups_benchmark(batch=64, repeats=1, quick=True, groups=("SO2",))
    >>> sorted({r["op"] for r in res["rows"]})
    ['exp', 'inverse', 'log', 'product']
    >>> print(format_table(res).splitlines()[0])
    verdict rules (one per row; 'ok' follows from the ratio shown):
    >>> print(format_table(res["rows"]).splitlines()[0])  # doctest: +NORMALIZE_WHITESPACE
    group  op  batch  median  elements/s  escnn elements/s  ratio [q1-q3]  ok
"""

from __future__ import annotations

import importlib
import importlib.util
import sys
import types
from collections.abc import Callable, Sequence
from typing import Any

import torch

from .common import (
    Option,
    Rule,
    environment_info,
    format_rate,
    format_ratio,
    format_rules,
    format_seconds,
    format_verdict,
    suite_main,
    throughput,
    time_interleaved,
    timing_ratio,
)
from .common import format_table as _format_grid

__all__ = ["GROUP_SPECS", "OPS", "RULE", "TARGET_RATIO", "run_groups_benchmark", "format_table", "load_escnn",
           "main"]

#: (display name, module, class) of the benchmarked groups; imported lazily, skipped if absent.
GROUP_SPECS: tuple[tuple[str, str, str], ...] = (
    ("SO2", "groupconv.groups.rotations", "SO2"),
    ("SE2", "groupconv.groups.products", "SE2"),
    ("SO3", "groupconv.groups.so3", "SO3"),
)
OPS: tuple[str, ...] = ("product", "inverse", "exp", "log")
#: back-to-back calls per timed sample of a batched op: steady-state throughput, like escnn's
#: per-element loops (a single call right after an escnn loop pays for the evicted caches).
BATCHED_INNER = 5
#: The issue's target: batched ops at least this many times faster than escnn per element.
TARGET_RATIO = 100.0
#: the one verdict rule of every row.
RULE = Rule("vs-escnn", "batched / escnn elements per second", ">=", TARGET_RATIO)


def load_escnn() -> tuple[types.ModuleType | None, str | None]:
    """Import ``escnn.group`` if installed: ``(module, note)`` or ``(None, reason)``.

    escnn is optional; it is imported through :func:`groupconv.interop.escnn.import_escnn`,
    which stubs lie_learn (built against NumPy 1.x) when ``import escnn`` fails without it
    (SO(2) keeps working; escnn's SO(3) irreps, unused here, become unavailable) and applies the
    escnn#112 workaround.
    """
    if importlib.util.find_spec("escnn") is None:
        return None, "escnn is not installed (optional extra: pip install 'groupconv[escnn]')"
    from ..interop.escnn import import_escnn, lie_learn_stubbed

    try:
        import_escnn()
    except ImportError as exc:
        return None, f"import escnn failed: {exc}"
    note = "lie_learn stubbed in sys.modules" if lie_learn_stubbed() else None
    return sys.modules["escnn.group"], note


def _load_groups(names: Sequence[str]) -> tuple[dict[str, Any], list[dict[str, str]]]:
    known = {spec[0]: spec for spec in GROUP_SPECS}
    groups: dict[str, Any] = {}
    skipped: list[dict[str, str]] = []
    for name in names:
        if name not in known:
            raise ValueError(f"groups must be names from {tuple(known)}, got {name!r}")
        _, module, cls = known[name]
        try:
            groups[name] = getattr(importlib.import_module(module), cls)()
        except (ImportError, AttributeError) as exc:
            skipped.append({"group": name, "reason": f"{module}.{cls} unavailable: {exc}"})
    return groups, skipped


def _torch_candidates(G: Any, batch: int, device: torch.device, dtype: torch.dtype,
                      generator: torch.Generator) -> dict[str, Callable[[], object]]:
    g = G.sample(batch, generator=generator, dtype=dtype).to(device)
    h = G.sample(batch, generator=generator, dtype=dtype).to(device)
    X = G.log(g)
    # .contiguous(): an op returning a lazy view (e.g. a transposed rotation) must still produce
    # its elements in memory to be comparable (a no-op for ops that already do).
    return {
        "product": lambda: G.product(g, h).contiguous(),
        "inverse": lambda: G.inverse(g).contiguous(),
        "exp": lambda: G.exp(X).contiguous(),
        "log": lambda: G.log(g).contiguous(),
    }


def _escnn_candidates(escnn_group: types.ModuleType, name: str, batch: int,
                      generator: torch.Generator) -> dict[str, Callable[[], object]]:
    """Per-element escnn loops doing the same work as the batched ops, on ``batch`` elements."""
    if name == "SO2":
        G = escnn_group.so2_group()
        params = (torch.rand(batch, generator=generator, dtype=torch.float64) * 6.283185307179586).tolist()
        param = "radians"
    elif name == "SO3":
        G = escnn_group.so3_group()
        v = torch.randn(batch, 3, generator=generator, dtype=torch.float64)
        angle = torch.rand(batch, 1, generator=generator, dtype=torch.float64) * 3.1
        v = v / v.norm(dim=-1, keepdim=True) * angle
        params = list(v.numpy())
        param = "EV"
    else:
        raise LookupError(f"escnn has no {name} group object")
    gs = [G.element(p, param=param) for p in params]
    hs = list(reversed(gs))
    return {
        "product": lambda: [a @ b for a, b in zip(gs, hs)],
        "inverse": lambda: [~a for a in gs],
        "exp": lambda: [G.element(p, param=param) for p in params],
        "log": lambda: [a.to(param) for a in gs],
    }


def run_groups_benchmark(
    batch: int = 100_000,
    repeats: int | None = None,
    device: torch.device | str = "cpu",
    quick: bool = False,
    *,
    dtype: torch.dtype = torch.float32,
    escnn_batch: int | None = None,
    groups: Sequence[str] | None = None,
    seed: int = 0,
) -> dict[str, Any]:
    """Time batched ``product``/``inverse``/``exp``/``log`` and compare with escnn per element.

    Args:
        batch: elements per batched op (default 100,000).
        repeats: interleaved timed rounds (default 20; 3 when ``quick``).
        device: where the batched ops run (escnn always runs on the CPU in Python).
        quick: small smoke run (few rounds, escnn batch 200).
        dtype: element dtype of the batched ops.
        escnn_batch: elements per escnn loop (default ``min(batch, 2000)``, 200 when ``quick``).
        groups: subset of ``("SO2", "SE2", "SO3")``; groups whose module is missing are skipped.
        seed: seeds the inputs and the round order.

    Returns:
        A JSON-ready dict: ``rows`` (one per group and op: ``group, op, batch, median_s, q1_s,
        q3_s, elements_per_s, escnn_batch, escnn_median_s, escnn_elements_per_s, check, ratio,
        ratio_spread, rule, target, ok``; ``ratio`` is the median per-round ratio of elements
        per second, ``None`` without escnn, and ``ok`` is :data:`RULE` applied to it),
        ``skipped`` (groups or escnn rows left out, with the reason), ``escnn`` (availability),
        ``min_ratio``, ``target_ratio``, ``rules`` and ``environment``.
    """
    for arg, value in (("batch", batch), ("repeats", repeats), ("escnn_batch", escnn_batch)):
        if value is not None and (isinstance(value, bool) or not isinstance(value, int) or value < 1):
            raise ValueError(f"{arg} must be a positive int, got {value!r}")
    repeats = repeats if repeats is not None else (3 if quick else 20)
    escnn_batch = escnn_batch if escnn_batch is not None else min(batch, 200 if quick else 2000)
    device = torch.device(device)
    names = tuple(groups) if groups is not None else tuple(s[0] for s in GROUP_SPECS)
    loaded, skipped = _load_groups(names)
    escnn_group, escnn_note = load_escnn()
    gen = torch.Generator().manual_seed(seed)

    candidates: dict[str, Callable[[], object]] = {}
    has_escnn: dict[str, bool] = {}
    with torch.inference_mode():
        for name, G in loaded.items():
            for op, fn in _torch_candidates(G, batch, device, dtype, gen).items():
                candidates[f"{name}/{op}/torch"] = lambda fn=fn: [fn() for _ in range(BATCHED_INNER)]
            has_escnn[name] = False
            if escnn_group is None:
                continue
            try:
                for op, fn in _escnn_candidates(escnn_group, name, escnn_batch, gen).items():
                    candidates[f"{name}/{op}/escnn"] = fn
                has_escnn[name] = True
            except Exception as exc:  # noqa: BLE001 - an escnn failure only drops the comparison
                skipped.append({"group": name, "reason": f"escnn comparison unavailable: {exc}"})
        timings = time_interleaved(candidates, repeats=repeats, warmup=1 if quick else 2,
                                   device=device, seed=seed) if candidates else {}

    rows: list[dict[str, Any]] = []
    for name in loaded:
        for op in OPS:
            t = timings[f"{name}/{op}/torch"]
            eps = throughput(batch * BATCHED_INNER, t.median)
            row: dict[str, Any] = {
                "group": name, "op": op, "batch": batch, "median_s": t.median / BATCHED_INNER,
                "q1_s": t.q1 / BATCHED_INNER, "q3_s": t.q3 / BATCHED_INNER,
                "elements_per_s": eps, "escnn_batch": None, "escnn_median_s": None,
                "escnn_elements_per_s": None, "check": RULE.check, "ratio": None,
                "ratio_spread": None, "rule": RULE.describe(), "target": RULE.threshold, "ok": None,
            }
            if has_escnn[name]:
                e = timings[f"{name}/{op}/escnn"]
                e_eps = throughput(escnn_batch, e.median)
                # per round: (batch * inner / t_torch) / (escnn_batch / t_escnn)
                r, spread = timing_ratio(e, t, scale=batch * BATCHED_INNER / escnn_batch)
                row.update(escnn_batch=escnn_batch, escnn_median_s=e.median,
                           escnn_elements_per_s=e_eps, ratio=r, ratio_spread=spread,
                           ok=RULE.passes(r))
            rows.append(row)
    ratios = [r["ratio"] for r in rows if r["ratio"] is not None]
    return {
        "benchmark": "groups",
        "batch": batch,
        "repeats": repeats,
        "device": str(device),
        "dtype": str(dtype).replace("torch.", ""),
        "rows": rows,
        "skipped": skipped,
        "escnn": {"available": escnn_group is not None, "note": escnn_note, "batch": escnn_batch,
                  "version": _escnn_version() if escnn_group is not None else None},
        "min_ratio": min(ratios) if ratios else None,
        "target_ratio": TARGET_RATIO,
        "rules": [RULE.as_dict()],
        "environment": environment_info(device),
    }


def _escnn_version() -> str | None:
    try:
        from importlib.metadata import version

        return version("escnn")
    except Exception:  # noqa: BLE001 - version is informational
        return None


def format_table(result: dict[str, Any] | Sequence[dict[str, Any]]) -> str:
    """Render :func:`run_groups_benchmark`'s result (or just its ``rows``) as a text table."""
    rows = result["rows"] if isinstance(result, dict) else list(result)
    headers = ["group", "op", "batch", "median", "elements/s", "escnn elements/s", "ratio [q1-q3]", "ok"]
    body = [
        [r["group"], r["op"], r["batch"], format_seconds(r["median_s"]), format_rate(r["elements_per_s"]),
         format_rate(r["escnn_elements_per_s"]), format_ratio(r["ratio"], r.get("ratio_spread"), 0),
         format_verdict(r.get("ok"))]
        for r in rows
    ]
    lines = [_format_grid(headers, body)]
    if isinstance(result, dict):
        lines.insert(0, format_rules([RULE]) + "\n")
        env = result.get("environment", {})
        lines.append(f"\ndevice {result.get('device')}, {result.get('dtype')}, {result.get('repeats')} "
                     f"interleaved rounds (medians; batched ops {BATCHED_INNER} calls per sample), "
                     f"torch {env.get('torch')}, {env.get('threads')} threads, load "
                     f"{env.get('load_average')}")
        esc = result.get("escnn", {})
        if esc.get("available"):
            lines.append(f"escnn {esc.get('version')}: per-element loops over {esc.get('batch')} elements"
                         + (f" ({esc['note']})" if esc.get("note") else ""))
        else:
            lines.append(f"no escnn comparison: {esc.get('note')}")
        for s in result.get("skipped", []):
            lines.append(f"skipped {s['group']}: {s['reason']}")
    return "\n".join(lines)


def _run_with_threads(quick: bool, device: str, batch: int | None, threads: int | None,
                      **kwargs: Any) -> dict[str, Any]:
    if threads is not None:
        if threads < 1:
            raise SystemExit(f"--threads must be >= 1, got {threads}")
        torch.set_num_threads(threads)
    batch = (10_000 if quick else 100_000) if batch is None else batch
    return run_groups_benchmark(batch=batch, device=device, quick=quick, **kwargs)


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m groupconv.benchmarks.groups [--batch N] [--repeats R] [--quick] [--threads T]``
    (see :func:`~groupconv.benchmarks.common.suite_main`). Returns the exit status (0)."""
    return suite_main(
        argv, module="groupconv.benchmarks.groups",
        description="Throughput of batched group ops, and the ratio to escnn.",
        run=_run_with_threads, format_result=format_table,
        options=(Option("--batch", "batch", "elements per batched op (default 100000; 10000 with --quick)"),
                 Option("--repeats", "repeats", "interleaved rounds (default 20, quick 3)"),
                 Option("--escnn-batch", "escnn_batch", "elements per escnn loop (default 2000)"),
                 Option("--threads", "threads", "torch CPU threads (default: torch's; 1 is robust on a "
                        "loaded shared machine)")))


if __name__ == "__main__":
    sys.exit(main())
