"""``groupconv bench separable``: separable against full (non-separable) group convolutions.

The separable G-conv (Knigge, Romero & Bekkers, ICML 2022; :class:`~groupconv.nn.group.separable.
SeparableGroupConv`, ``variant="separable"``) factorises the kernel as ``k^H_oc(h) k^R_o(x)``:
a 1x1 conv over ``(C_in N) -> (C_out N)`` followed by a depthwise spatial conv, instead of one
dense ``(C_out N) x (C_in N) x k x k`` conv (:class:`~groupconv.nn.group.gconv.GroupConv`).

Checks (C8, 5x5 kernels, input ``(4, C, 8, 32, 32)``), for ``C = 8`` fields (64 channels) and
``C = 64`` fields (512 channels):

* ``flops``: analytic forward FLOPs, full / separable (rule: >= 3x;
  :func:`~groupconv.nn.group.separable.group_conv_flops`,
  :meth:`~groupconv.nn.group.separable.SeparableGroupConv.flops`);
* ``speedup``: forward + backward (input and parameter gradients, training mode) wall time,
  full / separable, the median of the per-round ratios of interleaved rounds in one process
  (rule: >= 2x);
* ``fwd_speedup``: training-mode forward only, full / separable (reported, no rule).

Every verdict is its own row of ``verdicts`` with one rule (:data:`RULES`, printed above the
table) and ``ok`` follows from the ratio that row shows (its spread over rounds in
``ratio_spread``); the per-size ``rows`` hold the timings.

``quick=True`` shrinks every size for a smoke run (its timings mean nothing; never assert them).

Example:
    >>> res = run_separable_benchmark(quick=True, repeats=1)
    >>> [r["fields"] for r in res["rows"]], res["rows"][0]["flops_ratio"] > 1
    ([2, 4], True)
    >>> print(format_table(res).splitlines()[0])
    verdict rules (one per row; 'ok' follows from the ratio shown):
    >>> [(v["check"], v["what"]) for v in res["verdicts"]][:2]
    [('flops', 'C8 2 fields'), ('speedup', 'C8 2 fields')]
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Sequence
from typing import Any

import torch

from .common import (
    Option,
    Rule,
    environment_info,
    format_rate,
    format_seconds,
    format_verdicts,
    suite_main,
    time_interleaved,
    timing_ratio,
    verdict,
)
from .common import format_table as _format_grid

__all__ = ["RULES", "TARGETS", "run_separable_benchmark", "format_table", "main"]

#: the verdict rule of every check (one per row of ``verdicts``).
RULES: dict[str, Rule] = {r.check: r for r in (
    Rule("flops", "full / separable FLOPs", ">=", 3.0),
    Rule("speedup", "full / separable fwd+bwd time", ">=", 2.0),
)}

#: targets of the issue: minimum FLOPs ratio and minimum forward+backward speed-up.
TARGETS: dict[str, float] = {"flops_ratio": RULES["flops"].threshold, "speedup": RULES["speedup"].threshold}


def _step(layer: torch.nn.Module, x: torch.Tensor, grad: torch.Tensor, backward: bool) -> Callable[[], None]:
    params = [p for p in layer.parameters() if p.requires_grad]

    def run() -> None:
        y = layer(x)
        if backward:
            torch.autograd.grad(y, [x, *params], grad)

    return run


def run_separable_benchmark(
    quick: bool = False,
    device: torch.device | str = "cpu",
    repeats: int | None = None,
    *,
    fields: Sequence[int] | None = None,
    threads: int | None = None,
    seed: int = 0,
) -> dict[str, Any]:
    """Time full vs separable C8 group convs (see the module docstring); one row per size.

    Args:
        quick: tiny sizes (2 and 4 fields, 3x3 kernels, input ``(1, C, 8, 8, 8)``), 2 rounds.
        device: where the layers run.
        repeats: interleaved rounds (default 7; 2 when ``quick``).
        fields: fields per layer to benchmark (default ``(8, 64)``; quick ``(2, 4)``).
        threads: CPU threads for the run (``torch.set_num_threads``, restored afterwards);
            ``None`` keeps the current setting. On a loaded machine 1 thread gives steadier
            medians (oversubscribed threads inflate every time).
        seed: seeds the initialisation, the inputs and the round order.

    Returns:
        A JSON-ready dict: ``rows`` (``layer, fields, channels, input, kernel_size, flops_full,
        flops_sep, flops_ratio, full_s, sep_s, speedup, speedup_spread, full_q1_s, full_q3_s,
        sep_q1_s, sep_q3_s, fwd_full_s, fwd_sep_s, fwd_speedup``; the speed-ups are medians of
        per-round ratios), ``verdicts`` (one per check and size: ``check, what, ratio,
        ratio_spread, rule, target, ok``), ``rules``, ``targets``, ``sizes``, ``environment``.
    """
    if repeats is not None and (isinstance(repeats, bool) or not isinstance(repeats, int) or repeats < 1):
        raise ValueError(f"repeats must be a positive int, got {repeats!r}")
    sizes = tuple(fields) if fields is not None else ((2, 4) if quick else (8, 64))
    if not sizes or any(isinstance(f, bool) or not isinstance(f, int) or f < 1 for f in sizes):
        raise ValueError(f"fields must be a non-empty sequence of positive ints, got {fields!r}")
    if threads is not None and (isinstance(threads, bool) or not isinstance(threads, int) or threads < 1):
        raise ValueError(f"threads must be None or a positive int, got {threads!r}")
    previous = torch.get_num_threads()
    if threads is not None:
        torch.set_num_threads(threads)
    try:
        return _run(quick, torch.device(device), repeats, sizes, seed)
    finally:
        torch.set_num_threads(previous)


def _run(quick: bool, dev: torch.device, repeats: int | None, sizes: tuple[int, ...],
         seed: int) -> dict[str, Any]:
    from ..groups import CyclicGroup
    from ..nn.group.gconv import GroupConv
    from ..nn.group.separable import SeparableGroupConv, group_conv_flops

    R = repeats if repeats is not None else (2 if quick else 7)
    k = 3 if quick else 5
    B, S = (1, 8) if quick else (4, 32)
    G = CyclicGroup(8)
    N = 8
    gen = torch.Generator().manual_seed(seed)
    torch.manual_seed(seed)
    rows: list[dict[str, Any]] = []
    verdicts: list[dict[str, Any]] = []
    for f in sizes:
        full = GroupConv(f, f, G, k, padding=k // 2).to(dev).train()
        sep = SeparableGroupConv(f, f, G, k, padding=k // 2).to(dev).train()
        shape = (B, f, N, S, S)
        x = torch.randn(*shape, generator=gen).to(dev).requires_grad_(True)
        gy = torch.randn(*shape, generator=gen).to(dev)
        fl_full, fl_sep = group_conv_flops(full, shape), sep.flops(shape)
        fns = {
            "full": _step(full, x, gy, True), "sep": _step(sep, x, gy, True),
            "full_fwd": _step(full, x, gy, False), "sep_fwd": _step(sep, x, gy, False),
        }
        t = time_interleaved(fns, repeats=R, warmup=1, device=dev, seed=seed)
        speed, spread = timing_ratio(t["full"], t["sep"])
        fwd_speed, _ = timing_ratio(t["full_fwd"], t["sep_fwd"])
        what = f"C8 {f} fields"
        verdicts.append(verdict(RULES["flops"], fl_full / fl_sep, None, what=what))
        verdicts.append(verdict(RULES["speedup"], speed, spread, what=what))
        rows.append({
            "layer": f"C8 {f}->{f} fields ({f * N} channels), {k}x{k}", "fields": f,
            "channels": f * N, "input": list(shape), "kernel_size": k,
            "flops_full": fl_full, "flops_sep": fl_sep, "flops_ratio": fl_full / fl_sep,
            "full_s": t["full"].median, "sep_s": t["sep"].median, "speedup": speed,
            "speedup_spread": spread,
            "full_q1_s": t["full"].q1, "full_q3_s": t["full"].q3,
            "sep_q1_s": t["sep"].q1, "sep_q3_s": t["sep"].q3,
            "fwd_full_s": t["full_fwd"].median, "fwd_sep_s": t["sep_fwd"].median,
            "fwd_speedup": fwd_speed,
        })
    return {
        "benchmark": "separable",
        "quick": quick,
        "device": str(dev),
        "repeats": R,
        "sizes": {"group": "C8", "kernel_size": k, "batch": B, "spatial": S, "fields": list(sizes)},
        "rows": rows,
        "verdicts": verdicts,
        "rules": [r.as_dict() for r in RULES.values()],
        "targets": dict(TARGETS),
        "environment": environment_info(dev),
    }


def format_table(result: dict[str, Any] | Sequence[dict[str, Any]]) -> str:
    """Render :func:`run_separable_benchmark`'s result (or its ``rows``) as text.

    A full result starts with the verdict rules and one verdict row per check and size, then
    the timings per size.
    """
    rows = result["rows"] if isinstance(result, dict) else list(result)
    headers = ["layer", "input", "flops full", "flops sep", "flops ratio", "full fwd+bwd",
               "sep fwd+bwd", "speedup", "fwd speedup"]
    body = [[
        r["layer"], "x".join(map(str, r["input"])), format_rate(r["flops_full"]),
        format_rate(r["flops_sep"]), f"{r['flops_ratio']:.1f}x", format_seconds(r["full_s"]),
        format_seconds(r["sep_s"]), f"{r['speedup']:.2f}x", f"{r['fwd_speedup']:.2f}x",
    ] for r in rows]
    grid = _format_grid(headers, body)
    if not isinstance(result, dict):
        return grid
    env = result.get("environment", {})
    return "\n".join([
        format_verdicts(result["verdicts"], RULES), "", grid,
        f"\ndevice {result.get('device')}, {result.get('repeats')} interleaved rounds (medians of "
        f"per-round ratios), torch {env.get('torch')}, {env.get('threads')} threads, load "
        f"{env.get('load_average')}"
        + (", QUICK sizes (timings not meaningful)" if result.get("quick") else ""),
    ])


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m groupconv.benchmarks.separable [--quick] [--device D] [--repeats R] [--json PATH]
    [--threads T]`` (see :func:`~groupconv.benchmarks.common.suite_main`)."""
    return suite_main(
        argv, module="groupconv.benchmarks.separable",
        description="Separable vs full C8 group convolutions.",
        run=run_separable_benchmark, format_result=format_table,
        options=(Option("--repeats", "repeats", "interleaved rounds (default 7, quick 2)"),
                 Option("--threads", "threads", "CPU threads (default: torch's)")))


if __name__ == "__main__":
    sys.exit(main())
