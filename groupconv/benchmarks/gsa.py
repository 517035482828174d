"""``groupconv bench gsa``: how group self-attention scales with the number of pixels.

One :class:`~groupconv.nn.attention.self_attention.GroupSelfAttention` layer (G -> G on ``CyclicGroup(4)``,
input ``(B, C, 4, S, S)``), forward pass under ``torch.no_grad()``, at two sizes whose pixel
counts differ by 4x:

* **local** attention (``patch_size`` 5) at 32x32 and 64x64 -- each query attends to its
  ``5 x 5`` neighbourhood on every group element, so time and memory should grow about
  **linearly** in pixels (ratio ~4);
* **global** attention (``patch_size=None``) at 12x12 and 24x24 -- the score tensor is
  ``(B, heads, N H W, N H W)``, so time and memory should grow about **quadratically**
  (ratio ~16).

Per row: median forward time (interleaved rounds, :func:`~groupconv.benchmarks.common.time_interleaved`),
and peak memory two ways:

* *analytic* -- element counts of the large intermediates of the layer's algorithm
  (:func:`gsa_memory_elements`; the largest is reported, times the element size);
* *empirical* -- each (mode, size) runs in a fresh subprocess, which first runs the layer once
  on a tiny input (one-off lazy state would otherwise add a few MiB to the small size); on CPU
  the peak RSS (``VmHWM``) is reset through ``/proc/self/clear_refs`` and its rise over
  ``VmRSS`` during one forward is read (as ``groupconv bench attention`` does; an estimate to
  within allocator noise of a few hundred kB); on CUDA ``torch.cuda.max_memory_allocated``
  above the memory held before the call.

Ratios (large size / small size) of time and of both memories are reported per mode, next to the
pixel ratio. Timings are medians of one run on a shared machine: compare ratios, not absolutes.

Verdicts: one rule per row (:data:`RULES`, printed above the tables); ``ok`` follows from the
growth the row shows. Both sizes of a mode differ by 4x in pixels, so the rules allow 1.5x the
ideal growth: ``local-time`` and ``local-memory`` (empirical) <= 6x (linear: 4x),
``global-time`` and ``global-memory`` <= 24x (quadratic: 16x). The time growth is the median of
the per-round ratios (spread in ``ratio_spread``); the analytic memory growth is exact by
construction and reported without a verdict.

Example:
    >>> res = run_gsa_benchmark(quick=True, memory=False)
    >>> [(r["mode"], r["size"]) for r in res["rows"]]
    [('local', 8), ('local', 16), ('global', 4), ('global', 8)]
    >>> res["ratios"]["local"]["pixels"]
    4.0
    >>> [v["check"] for v in res["verdicts"]]
    ['local-time', 'local-memory', 'global-time', 'global-memory']
"""

from __future__ import annotations

from typing import Any

import torch

from .common import (
    Option,
    Rule,
    environment_info,
    format_seconds,
    format_verdicts,
    peak_memory,
    probe_in_subprocess,
    ratio,
    suite_main,
    time_interleaved,
    timing_ratio,
    verdict,
)
from .common import format_table as _grid

__all__ = ["run_gsa_benchmark", "format_table", "gsa_memory_elements", "main", "RULES", "SIZES",
           "QUICK_SIZES"]

#: the verdict rule of every check (one per row of ``verdicts``): 1.5x the ideal growth for 4x
#: the pixels (local: linear, global: quadratic).
RULES: dict[str, Rule] = {r.check: r for r in (
    Rule("local-time", "large / small time", "<=", 6.0),
    Rule("local-memory", "large / small empirical peak", "<=", 6.0),
    Rule("global-time", "large / small time", "<=", 24.0),
    Rule("global-memory", "large / small empirical peak", "<=", 24.0),
)}

#: (mode, spatial size) pairs of the full run; each mode's two sizes differ 4x in pixels.
SIZES: tuple[tuple[str, int], ...] = (("local", 32), ("local", 64), ("global", 12), ("global", 24))
#: the sizes of the quick (smoke) run.
QUICK_SIZES: tuple[tuple[str, int], ...] = (("local", 8), ("local", 16), ("global", 4), ("global", 8))

_ORDER = 4  # C4
_PATCH = 5


def gsa_memory_elements(
    batch: int, channels: int, num_elements: int, heads: int, size: int,
    patch_size: int | None, lifting: bool = False,
) -> dict[str, int]:
    """Element counts of the large intermediates of one group self-attention forward pass.

    For ``(B, C, N, S, S)`` input with ``P = S * S`` pixels, ``e`` heads, ``n = N`` input
    elements (1 for a lifting layer) and a ``k x k`` patch:

    * local: ``neighbourhoods = 2 B C n k^2 P`` (the unfolded keys and values) and
      ``scores = B e P N n k^2`` (the additive bias / attention weights) -- linear in ``P``;
    * global: ``offset_scores = B e N P (2S-1)^2`` (queries times the positional table) and
      ``scores = B e N n P^2`` -- quadratic in ``P``;

    plus ``input = B C n P`` and ``output = B C N P``; ``largest`` is the maximum.

    Example:
        >>> a = gsa_memory_elements(1, 16, 4, 2, 32, 5)
        >>> b = gsa_memory_elements(1, 16, 4, 2, 64, 5)
        >>> b["largest"] / a["largest"]
        4.0
        >>> g = [gsa_memory_elements(1, 16, 4, 2, s, None)["scores"] for s in (8, 16)]
        >>> g[1] / g[0]
        16.0
    """
    for name, v in (("batch", batch), ("channels", channels), ("num_elements", num_elements),
                    ("heads", heads), ("size", size)):
        if isinstance(v, bool) or not isinstance(v, int) or v < 1:
            raise ValueError(f"{name} must be a positive int, got {v!r}")
    if patch_size is not None and (isinstance(patch_size, bool) or not isinstance(patch_size, int)
                                   or patch_size < 1 or patch_size % 2 == 0):
        raise ValueError(f"patch_size must be a positive odd int or None, got {patch_size!r}")
    B, C, N, e, P = batch, channels, num_elements, heads, size * size
    n = 1 if lifting else N
    out = {"input": B * C * n * P, "output": B * C * N * P}
    if patch_size is None:
        out["offset_scores"] = B * e * N * P * (2 * size - 1) ** 2
        out["scores"] = B * e * N * n * P * P
    else:
        k2 = patch_size * patch_size
        out["neighbourhoods"] = 2 * B * C * n * k2 * P
        out["scores"] = B * e * P * N * n * k2
    out["largest"] = max(out.values())
    return out


def _config(quick: bool) -> dict[str, int]:
    return {"batch": 1, "channels": 4, "heads": 1} if quick else {"batch": 2, "channels": 16, "heads": 2}


def _layer(mode: str, channels: int, heads: int, device: str, dtype: torch.dtype):
    from ..groups import CyclicGroup
    from ..nn.attention.self_attention import GroupSelfAttention

    torch.manual_seed(0)
    patch = _PATCH if mode == "local" else None
    return GroupSelfAttention(channels, channels, CyclicGroup(_ORDER), heads=heads, patch_size=patch,
                              device=device, dtype=dtype).eval()


def _input(b: int, c: int, s: int, device: str, dtype: torch.dtype) -> torch.Tensor:
    g = torch.Generator().manual_seed(0)
    return torch.randn(b, c, _ORDER, s, s, generator=g, dtype=dtype).to(device)


def _memory_probe(spec: dict[str, Any]) -> dict[str, Any]:
    """Peak bytes above the baseline during one no-grad forward (meant for a fresh process)."""
    device, dtype = spec["device"], torch.float32
    layer = _layer(spec["mode"], spec["c"], spec["heads"], device, dtype)
    x = _input(spec["b"], spec["c"], spec["s"], device, dtype)
    with torch.no_grad():  # warm up lazy one-off state (kernels, thread pools) on a tiny input
        layer(_input(1, spec["c"], min(spec["s"], _PATCH), device, dtype))
        return peak_memory(lambda: layer(x), device)


def _measure_memory(spec: dict[str, Any]) -> float | None:
    return probe_in_subprocess("groupconv.benchmarks.gsa", spec)


def run_gsa_benchmark(quick: bool = False, device: str = "cpu", *, repeats: int | None = None,
                      memory: bool = True) -> dict[str, Any]:
    """Run the suite; returns ``{"env", "quick", "config", "rows", "ratios", "verdicts",
    "rules"}`` (JSON-ready).

    ``rows``: one dict per (mode, size) of :data:`SIZES` (:data:`QUICK_SIZES` when ``quick``)
    with ``mode``, ``size``, ``pixels``, ``patch_size``, ``median_s``, ``q1_s``, ``q3_s``,
    ``analytic_elements`` (:func:`gsa_memory_elements`), ``analytic_bytes`` (largest
    intermediate, float32) and ``empirical_bytes`` (``None`` when ``memory=False`` or the probe
    failed). ``ratios[mode]``: large size over small size of ``pixels``, ``time``,
    ``analytic_memory``, ``empirical_memory`` and the ideal ``expected`` (4 local, 16 global);
    ``time`` is the median of the per-round ratios. ``verdicts``: one row per check of
    :data:`RULES` (``check, what, ratio, ratio_spread, rule, target, ok``).
    ``quick``: tiny shapes and one round (a smoke test; numbers meaningless).
    """
    if not isinstance(quick, bool):
        raise TypeError(f"quick must be a bool, got {type(quick).__name__}")
    dev = str(torch.device(device))
    cfg = _config(quick)
    sizes = QUICK_SIZES if quick else SIZES
    reps = repeats or (1 if quick else 5)
    if isinstance(reps, bool) or not isinstance(reps, int) or reps < 1:
        raise ValueError(f"repeats must be a positive int, got {repeats!r}")
    b, c, e = cfg["batch"], cfg["channels"], cfg["heads"]
    fns = {}
    for mode, s in sizes:
        layer = _layer(mode, c, e, dev, torch.float32)
        x = _input(b, c, s, dev, torch.float32)

        def fwd(layer=layer, x=x) -> None:
            with torch.no_grad():
                layer(x)

        fns[f"{mode}-{s}"] = fwd
    t = time_interleaved(fns, repeats=reps, warmup=0 if quick else 1, device=dev)
    rows = []
    for mode, s in sizes:
        patch = _PATCH if mode == "local" else None
        an = gsa_memory_elements(b, c, _ORDER, e, s, patch)
        emp = None
        if memory:
            emp = _measure_memory({"mode": mode, "b": b, "c": c, "heads": e, "s": s, "device": dev})
        tm = t[f"{mode}-{s}"].as_dict()
        rows.append({"mode": mode, "size": s, "pixels": s * s, "patch_size": patch,
                     "median_s": tm["median_s"], "q1_s": tm["q1_s"], "q3_s": tm["q3_s"],
                     "analytic_elements": an, "analytic_bytes": 4 * an["largest"],
                     "empirical_bytes": emp})
    ratios: dict[str, dict[str, float | None]] = {}
    verdicts: list[dict[str, Any]] = []
    for mode in dict.fromkeys(m for m, _ in sizes):
        lo, hi = (r for r in rows if r["mode"] == mode)
        px = hi["pixels"] / lo["pixels"]
        growth, spread = timing_ratio(t[f"{mode}-{hi['size']}"], t[f"{mode}-{lo['size']}"])
        ratios[mode] = {"pixels": px, "expected": px if mode == "local" else px * px,
                        "time": growth,
                        "analytic_memory": ratio(hi["analytic_bytes"], lo["analytic_bytes"]),
                        "empirical_memory": ratio(hi["empirical_bytes"], lo["empirical_bytes"])}
        what = f"{lo['size']}^2 -> {hi['size']}^2"
        verdicts.append(verdict(RULES[f"{mode}-time"], growth, spread, what=what))
        verdicts.append(verdict(RULES[f"{mode}-memory"], ratios[mode]["empirical_memory"], None,
                                what=what))
    method = "cuda max_memory_allocated" if dev.startswith("cuda") else \
        "subprocess peak-RSS (VmHWM) delta"
    return {"env": environment_info(dev), "quick": quick,
            "config": {**cfg, "group": f"C{_ORDER}", "local_patch_size": _PATCH,
                       "memory_method": method if memory else None, "repeats": reps},
            "rows": rows, "ratios": ratios, "verdicts": verdicts,
            "rules": [r.as_dict() for r in RULES.values()]}


def _mib(x: float | None) -> str:
    return "-" if x is None else f"{x / 2**20:.2f} MiB"


def _r(x: float | None) -> str:
    return "-" if x is None else f"{x:.2f}"


def format_table(res: dict[str, Any]) -> str:
    """Human-readable tables of :func:`run_gsa_benchmark`'s result."""
    cfg, env = res["config"], res.get("env", {})
    rows = [[r["mode"], f"{r['size']}x{r['size']}", r["pixels"], format_seconds(r["median_s"]),
             _mib(r["analytic_bytes"]), _mib(r["empirical_bytes"])] for r in res["rows"]]
    out = [format_verdicts(res["verdicts"], RULES), "",
           f"GroupSelfAttention forward ({cfg['group']}, B={cfg['batch']}, C={cfg['channels']}, "
           f"heads={cfg['heads']}, local patch {cfg['local_patch_size']}, no grad; memory: "
           f"{cfg['memory_method'] or 'not measured'}; torch {env.get('torch')}, "
           f"{env.get('threads')} threads, load {env.get('load_average')})",
           _grid(["mode", "size", "pixels", "median", "analytic peak", "empirical peak"], rows), "",
           "growth, large / small size (expected: local ~ pixel ratio, global ~ its square)"]
    rows = [[m, _r(v["pixels"]), _r(v["expected"]), _r(v["time"]), _r(v["analytic_memory"]),
             _r(v["empirical_memory"])] for m, v in res["ratios"].items()]
    out.append(_grid(["mode", "pixels", "expected", "time", "analytic mem", "empirical mem"], rows))
    return "\n".join(out)


def main(argv: list[str] | None = None) -> int:
    """``python -m groupconv.benchmarks.gsa [--quick] [--device D] [--json P] [--no-memory]``
    (see :func:`~groupconv.benchmarks.common.suite_main`)."""
    return suite_main(
        argv, module="groupconv.benchmarks.gsa", description=__doc__.splitlines()[0],
        run=run_gsa_benchmark, format_result=format_table, memory_probe=_memory_probe,
        options=(Option("--no-memory", "memory", "skip the subprocess memory probes", kind="off"),))


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main())
