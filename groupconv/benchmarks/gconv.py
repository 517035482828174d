"""``groupconv bench gconv``: regular group convolutions against their floor and against escnn.

The floor of a regular group conv is a plain ``torch.nn.functional.conv2d`` with the same
expanded weight shape ``(C_out N, C_in N, k, k)`` (a G-conv is one dense conv after a kernel
expansion whose cost does not depend on the batch or the image size). Every row has exactly one
verdict rule (printed above the table); ``ok`` follows from the value the row shows:

=======================  ===============================================================  ==========
check                    what is timed                                                    rule
=======================  ===============================================================  ==========
``train``                C8 and D4 ``GroupConv`` 16 -> 16 fields (128 -> 128 channels),   layer /
                         5x5, input ``(8, 128, 64, 64)``, forward + backward (input and   floor
                         parameter gradients), training mode, vs the floor                <= 1.05x
``small-forward``        the same layers, input ``(1, 128, 32, 32)``, training-mode       <= 1.15x
                         forward only (the kernel expansion is not amortised)
``eval-forward``         the same layers in eval mode, ``torch.no_grad``, batch-1 map     <= 1.10x
                         ``(1, 128, 8, 8)``: the expanded kernel is cached, what is left
                         is the per-call Python overhead
``construct``            building one layer (seconds per layer; the row's value)          <= 10 ms
``continuous-train``     SO(2) ``GroupConv`` with 8 samples and a SIREN kernel,            <= 1.3x
                         as ``train``
``train-escnn``          ``train`` against escnn's ``R2Conv`` (where installed)           layer /
                                                                                          escnn <= 1x
``small-forward-escnn``  ``small-forward`` against escnn's ``R2Conv``                     <= 1x
``construct-escnn``      construction against escnn's ``R2Conv``                          escnn /
                                                                                          layer >= 20x
=======================  ===============================================================  ==========

escnn (optional; imported through :mod:`groupconv.interop.escnn`) builds ``R2Conv`` between the
same regular field types (``rot2dOnR2(8)``, ``flipRot2dOnR2(4)``) in training mode; its rows are
separate so that a row's verdict never depends on a number it does not show.

Every ratio is the median of the per-round ratios of interleaved rounds in one process
(:func:`groupconv.benchmarks.common.time_interleaved`; a round times both sides back to back, so
its ratio cancels most of the load drift); ``ratio_spread`` records their quartiles.
``quick=True`` shrinks every size for a smoke run (its ratios mean little).

Example:
    >>> res = run_gconv_benchmark(quick=True, repeats=1, escnn=False)
    >>> sorted({r["check"] for r in res["rows"]})
    ['construct', 'continuous-train', 'eval-forward', 'small-forward', 'train']
    >>> print(format_table(res).splitlines()[0])
    verdict rules (one per row; 'ok' follows from the ratio shown):
"""

from __future__ import annotations

import importlib.util
import sys
import time
from collections.abc import Callable, Sequence
from typing import Any

import torch
import torch.nn.functional as F

from .common import (
    Option,
    Rule,
    environment_info,
    format_ratio,
    format_rules,
    format_seconds,
    ratio_spread,
    suite_main,
    time_interleaved,
)
from .common import format_table as _format_grid

__all__ = ["RULES", "TARGETS", "run_gconv_benchmark", "format_table", "main"]

#: the verdict rule of every check (one per row).
RULES: dict[str, Rule] = {r.check: r for r in (
    Rule("train", "layer / floor", "<=", 1.05),
    Rule("small-forward", "layer / floor", "<=", 1.15),
    Rule("eval-forward", "layer / floor", "<=", 1.10),
    Rule("construct", "seconds per layer", "<=", 0.010, unit="s"),
    Rule("continuous-train", "layer / floor", "<=", 1.3),
    Rule("train-escnn", "layer / escnn", "<=", 1.0),
    Rule("small-forward-escnn", "layer / escnn", "<=", 1.0),
    Rule("construct-escnn", "escnn / layer", ">=", 20.0),
)}

#: thresholds by check (``RULES[check].threshold``).
TARGETS: dict[str, float] = {k: r.threshold for k, r in RULES.items()}


def _groups() -> dict[str, Any]:
    from ..groups import SO2, CyclicGroup, DihedralGroup

    return {"C8": (CyclicGroup(8), {}), "D4": (DihedralGroup(4), {}),
            "SO2-8 siren": (SO2(), {"num_elements": 8, "kernel_net": "siren"})}


def _load_escnn(enabled: bool) -> tuple[Any, str | None]:
    if not enabled:
        return None, "escnn comparison disabled"
    if importlib.util.find_spec("escnn") is None:
        return None, "escnn is not installed (optional extra: pip install 'groupconv[escnn]')"
    try:
        from ..interop.escnn import import_escnn

        return import_escnn(), None
    except ImportError as exc:
        return None, f"import escnn failed: {exc}"


def _escnn_layer(escnn: Any, name: str, fields: int, k: int, device: torch.device) -> tuple[Any, Any]:
    gs = escnn.gspaces.rot2dOnR2(8) if name == "C8" else escnn.gspaces.flipRot2dOnR2(4)
    ft = escnn.nn.FieldType(gs, fields * [gs.regular_repr])
    return escnn.nn.R2Conv(ft, ft, k, padding=k // 2).to(device).train(), ft


def _make_layer(G: Any, kw: dict[str, Any], fields: int, k: int, device: torch.device) -> Any:
    from ..nn.group.gconv import GroupConv

    return GroupConv(fields, fields, G, k, padding=k // 2, **kw).to(device).train()


def _train_step(fn: Callable[[], torch.Tensor], inputs: Sequence[torch.Tensor], grad: torch.Tensor):
    def step() -> None:
        y = fn()
        torch.autograd.grad(y, list(inputs), grad)

    return step


def _row(check: str, layer: str, shape: Sequence[int], t: Any, base: Any, baseline: str,
        invert: bool = False, **extra: Any) -> dict[str, Any]:
    """One row, one rule: ratio = median per-round t / base (``invert``: base / t); ok = rule(ratio)."""
    rule = RULES[check]
    if base is None:  # an absolute rule on the row's median
        ratio, spread, value = None, None, t.median
    elif invert:
        spread = ratio_spread(base.seconds, t.seconds)
        ratio = value = spread["median"]
    else:
        spread = ratio_spread(t.seconds, base.seconds)
        ratio = value = spread["median"]
    return {
        "check": check, "layer": layer, "input": list(shape), "median_s": t.median, "q1_s": t.q1,
        "q3_s": t.q3, "baseline": baseline, "floor_s": None if base is None else base.median,
        "ratio": ratio, "ratio_spread": spread, "rule": rule.describe(),
        "target": rule.threshold, "ok": rule.passes(value), **extra,
    }


def run_gconv_benchmark(
    quick: bool = False,
    device: torch.device | str = "cpu",
    repeats: int | None = None,
    *,
    escnn: bool = True,
    seed: int = 0,
) -> dict[str, Any]:
    """Time the G-conv checks of the module docstring; ratios from one interleaved run.

    Args:
        quick: small sizes (4 fields, 16x16 maps, batch 2) and 2 rounds: a smoke run.
        device: where the layers run (escnn too).
        repeats: interleaved rounds per check (default 7; 2 when ``quick``).
        escnn: include escnn's ``R2Conv`` where installed.
        seed: seeds the inputs, the initialisations and the round order.

    Returns:
        A JSON-ready dict: ``rows`` (``check, layer, input, median_s, q1_s, q3_s, baseline,
        floor_s, ratio, ratio_spread, rule, target, ok``; ``floor_s`` is the baseline's median;
        ``construct`` rows have no baseline and their rule reads ``median_s``; escnn rows are
        separate checks), ``rules``, ``escnn`` (availability), ``sizes``, ``environment``.
    """
    if repeats is not None and (isinstance(repeats, bool) or not isinstance(repeats, int) or repeats < 1):
        raise ValueError(f"repeats must be a positive int, got {repeats!r}")
    dev = torch.device(device)
    R = repeats if repeats is not None else (2 if quick else 7)
    warm = 1
    fields = 4 if quick else 16
    k = 3 if quick else 5
    big = (2, 16, 16) if quick else (8, 64, 64)  # batch, H, W of the training check
    small = (1, 16, 16) if quick else (1, 32, 32)
    tiny = (1, 8, 8)  # batch, H, W of the eval check
    esc, esc_note = _load_escnn(escnn)
    gen = torch.Generator().manual_seed(seed)
    torch.manual_seed(seed)
    groups = _groups()
    rows: list[dict[str, Any]] = []

    def row(*args: Any, **kwargs: Any) -> None:
        rows.append(_row(*args, **kwargs))

    def bench_one(name: str, G: Any, kw: dict[str, Any]) -> None:
        layer = _make_layer(G, kw, fields, k, dev)
        N = layer.num_elements
        C = fields * N
        w = torch.randn(C, C, k, k, device=dev, generator=None, requires_grad=True)
        b = torch.randn(C, device=dev, requires_grad=True)
        params = [p for p in layer.parameters() if p.requires_grad]
        esc_layer = None
        if esc is not None and name in ("C8", "D4"):
            esc_layer, ft = _escnn_layer(esc, name, fields, k, dev)
        check = "continuous-train" if layer.continuous else "train"
        # -- training: forward + backward ---------------------------------------------------
        B, H, W = big
        x = torch.randn(B, fields, N, H, W, generator=gen).to(dev).requires_grad_(True)
        xf = torch.randn(B, C, H, W, generator=gen).to(dev).requires_grad_(True)
        gy = torch.randn(B, C, H, W, generator=gen).to(dev)
        fns = {
            "layer": _train_step(lambda: layer(x), [x, *params], gy.view(B, fields, N, H, W)),
            "floor": _train_step(lambda: F.conv2d(xf, w, b, padding=k // 2), [xf, w, b], gy),
        }
        if esc_layer is not None:
            ex = torch.randn(B, C, H, W, generator=gen).to(dev).requires_grad_(True)
            eparams = [p for p in esc_layer.parameters() if p.requires_grad]
            fns["escnn"] = _train_step(lambda: esc_layer(esc.nn.GeometricTensor(ex, ft)).tensor,
                                       [ex, *eparams], gy)
        t = time_interleaved(fns, repeats=R, warmup=warm, device=dev, seed=seed)
        label = f"{name} {fields}->{fields} fields, {k}x{k}"
        row(check, label, (B, C, H, W), t["layer"], t["floor"], "conv2d floor")
        if "escnn" in t:
            row("train-escnn", label, (B, C, H, W), t["layer"], t["escnn"], "escnn R2Conv")
        if layer.continuous:
            return
        # -- small maps, training-mode forward -------------------------------------------------
        B, H, W = small
        xs = torch.randn(B, fields, N, H, W, generator=gen).to(dev)
        xsf = xs.view(B, C, H, W)
        fns = {"layer": lambda: layer(xs), "floor": lambda: F.conv2d(xsf, w, b, padding=k // 2)}
        if esc_layer is not None:
            fns["escnn"] = lambda: esc_layer(esc.nn.GeometricTensor(xsf, ft)).tensor
        with torch.enable_grad():
            t = time_interleaved(fns, repeats=3 * R, warmup=warm, device=dev, seed=seed)
        row("small-forward", label, (B, C, H, W), t["layer"], t["floor"], "conv2d floor")
        if "escnn" in t:
            row("small-forward-escnn", label, (B, C, H, W), t["layer"], t["escnn"], "escnn R2Conv")
        # -- batch-1 eval forward (cached kernel) --------------------------------------------
        B, H, W = tiny
        xe = torch.randn(B, fields, N, H, W, generator=gen).to(dev)
        xef = xe.view(B, C, H, W)
        layer.eval()
        with torch.no_grad():
            we = layer.expanded_weight().clone()
            be = None if layer.bias is None else layer.bias.repeat_interleave(N)
            fns = {"layer": lambda: layer(xe), "floor": lambda: F.conv2d(xef, we, be, padding=k // 2)}
            t = time_interleaved(fns, repeats=10 * R, warmup=warm + 2, inner=5, device=dev, seed=seed)
        layer.train()
        row("eval-forward", label, (B, C, H, W), t["layer"], t["floor"], "conv2d floor")
        # -- construction ----------------------------------------------------------------------
        fns = {"layer": lambda G=G, kw=kw: _make_layer(G, kw, fields, k, dev)}
        if esc is not None:
            fns["escnn"] = lambda name=name: _escnn_layer(esc, name, fields, k, dev)
        first = {}
        for key, fn in fns.items():  # first (cold) construction, before any cache is warm
            t0 = time.perf_counter()
            fn()
            first[key] = time.perf_counter() - t0
        t = time_interleaved(fns, repeats=R, warmup=0, device=dev, seed=seed)
        row("construct", label, (), t["layer"], None, "-", first_s=first["layer"])
        if "escnn" in t:
            row("construct-escnn", label, (), t["layer"], t["escnn"], "escnn R2Conv", invert=True,
                first_s=first["layer"], escnn_first_s=first.get("escnn"))

    for name, (G, kw) in groups.items():
        bench_one(name, G, kw)
    return {
        "benchmark": "gconv",
        "quick": quick,
        "device": str(dev),
        "repeats": R,
        "sizes": {"fields": fields, "kernel_size": k, "train": list(big), "small": list(small),
                  "eval": list(tiny)},
        "rows": rows,
        "escnn": {"available": esc is not None, "note": esc_note,
                  "version": getattr(esc, "__version__", None) if esc is not None else None},
        "rules": [r.as_dict() for r in RULES.values()],
        "targets": dict(TARGETS),
        "environment": environment_info(dev),
    }


def format_table(result: dict[str, Any] | Sequence[dict[str, Any]]) -> str:
    """Render :func:`run_gconv_benchmark`'s result (or its ``rows``) as a text table.

    A full result starts with the verdict rules of the checks present (one per check).
    """
    rows = result["rows"] if isinstance(result, dict) else list(result)
    headers = ["check", "layer", "input", "median", "baseline", "baseline median", "ratio [q1-q3]",
               "rule", "ok"]
    body = []
    for r in rows:
        rule = RULES[r["check"]]
        th = format_seconds(rule.threshold) if rule.unit == "s" else f"{rule.threshold:g}x"
        body.append([
            r["check"], r["layer"], "x".join(map(str, r["input"])) or "-", format_seconds(r["median_s"]),
            r["baseline"], format_seconds(r["floor_s"]), format_ratio(r["ratio"], r["ratio_spread"], 3),
            f"{rule.op} {th}", {True: "ok", False: "NO", None: "-"}[r["ok"]],
        ])
    grid = _format_grid(headers, body)
    if not isinstance(result, dict):
        return grid
    env = result.get("environment", {})
    present = [RULES[c] for c in dict.fromkeys(r["check"] for r in rows)]
    lines = [format_rules(present), "", grid]
    lines.append(f"\ndevice {result.get('device')}, {result.get('repeats')} interleaved rounds "
                 f"(medians), torch {env.get('torch')}, {env.get('threads')} threads, load "
                 f"{env.get('load_average')}"
                 + (", QUICK sizes (ratios not meaningful)" if result.get("quick") else ""))
    esc = result.get("escnn", {})
    lines.append(f"escnn {esc.get('version')}: R2Conv, regular fields, training mode"
                 if esc.get("available") else f"no escnn comparison: {esc.get('note')}")
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m groupconv.benchmarks.gconv [--quick] [--device D] [--repeats R] [--json PATH]
    [--no-escnn]`` (see :func:`~groupconv.benchmarks.common.suite_main`)."""
    return suite_main(
        argv, module="groupconv.benchmarks.gconv",
        description="Regular G-convs vs a plain conv2d floor (and escnn).",
        run=run_gconv_benchmark, format_result=format_table,
        options=(Option("--repeats", "repeats", "interleaved rounds (default 7, quick 2)"),
                 Option("--no-escnn", "escnn", "skip the escnn comparison", kind="off")))


if __name__ == "__main__":
    sys.exit(main())
