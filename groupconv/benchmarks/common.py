"""Timing helpers shared by every ``groupconv bench`` suite.

The machines this runs on are shared and noisy (medians drift by tens of percent between runs),
so every suite measures the candidates it compares *in one process*, interleaved: each round
runs every candidate once in a freshly shuffled order, and the summary is the median over
rounds. Ratios are formed from medians of the same run only.

Example:
    >>> import torch
    >>> t = time_interleaved({"add": lambda: torch.ones(8) + 1, "mul": lambda: torch.ones(8) * 2},
    ...                      repeats=3, warmup=1)
    >>> sorted(t), len(t["add"].seconds)
    (['add', 'mul'], 3)
    >>> t["add"].median > 0
    True
"""

from __future__ import annotations

import argparse
import gc
import json
import math
import os
import platform
import random
import statistics
import subprocess
import sys
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

__all__ = [
    "Timing",
    "synchronize",
    "time_interleaved",
    "quantile",
    "ratio",
    "throughput",
    "environment_info",
    "write_json",
    "format_table",
    "format_rate",
    "format_seconds",
    "Rule",
    "ratio_spread",
    "format_ratio",
    "format_rules",
    "peak_memory",
    "probe_in_subprocess",
    "Option",
    "suite_main",
    "verdict",
    "timing_ratio",
    "format_verdict",
    "format_verdicts",
]


@dataclass
class Timing:
    """Per-round wall-clock seconds of one candidate (one call each; ``inner`` calls averaged)."""

    name: str
    seconds: list[float] = field(default_factory=list)

    @property
    def median(self) -> float:
        """Median seconds per call."""
        return statistics.median(self.seconds)

    @property
    def q1(self) -> float:
        """First quartile of the seconds per call."""
        return quantile(self.seconds, 0.25)

    @property
    def q3(self) -> float:
        """Third quartile of the seconds per call."""
        return quantile(self.seconds, 0.75)

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready summary (median, quartiles, rounds)."""
        return {"name": self.name, "median_s": self.median, "q1_s": self.q1, "q3_s": self.q3,
                "rounds": len(self.seconds)}


def quantile(values: Sequence[float], q: float) -> float:
    """Linear-interpolated quantile ``q in [0, 1]`` of a non-empty sequence.

    Example:
        >>> quantile([1.0, 2.0, 3.0, 4.0], 0.5)
        2.5
    """
    if not values:
        raise ValueError("values must be a non-empty sequence, got an empty one")
    if not 0.0 <= q <= 1.0:
        raise ValueError(f"q must be in [0, 1], got {q}")
    xs = sorted(values)
    pos = q * (len(xs) - 1)
    lo, hi = math.floor(pos), math.ceil(pos)
    return xs[lo] + (xs[hi] - xs[lo]) * (pos - lo)


def synchronize(device: torch.device | str | None) -> None:
    """Wait for queued work on ``device`` (a no-op on the CPU)."""
    if device is None:
        return
    dev = torch.device(device)
    if dev.type == "cuda":
        torch.cuda.synchronize(dev)


def time_interleaved(
    fns: Mapping[str, Callable[[], object]],
    *,
    repeats: int = 15,
    warmup: int = 2,
    inner: int = 1,
    device: torch.device | str | None = None,
    seed: int = 0,
) -> dict[str, Timing]:
    """Time candidates round-robin: each round runs every candidate in a new shuffled order.

    Args:
        fns: candidates by name (zero-argument callables).
        repeats: number of timed rounds (>= 1).
        warmup: untimed calls of every candidate before the first round.
        inner: calls per timed sample (the sample is their mean); raise it for very fast ops.
        device: synchronised before and after each sample (CUDA timing).
        seed: seed of the shuffling (the order never depends on the global RNG).

    Returns:
        ``{name: Timing}`` in the order of ``fns``.
    """
    if not fns:
        raise ValueError("fns must hold at least one candidate, got none")
    for name, value in (("repeats", repeats), ("inner", inner)):
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise ValueError(f"{name} must be an int >= 1, got {value!r}")
    if isinstance(warmup, bool) or not isinstance(warmup, int) or warmup < 0:
        raise ValueError(f"warmup must be an int >= 0, got {warmup!r}")
    names = list(fns)
    for _ in range(warmup):
        for name in names:
            fns[name]()
    synchronize(device)
    rng = random.Random(seed)
    out = {name: Timing(name) for name in names}
    for _ in range(repeats):
        order = names[:]
        rng.shuffle(order)
        for name in order:
            fn = fns[name]
            synchronize(device)
            t0 = time.perf_counter()
            for _ in range(inner):
                fn()
            synchronize(device)
            out[name].seconds.append((time.perf_counter() - t0) / inner)
    return out


@dataclass(frozen=True)
class Rule:
    """The one verdict rule of a benchmark row: ``ok`` iff ``value op threshold``.

    ``quantity`` names the value the row *shows* (e.g. ``"direct / fft"``), so a reader can
    check every verdict from the printed numbers alone.

    Example:
        >>> r = Rule("fft-vs-direct", "direct / fft", ">=", 20.0)
        >>> r.passes(21.0), r.passes(19.9), r.passes(None)
        (True, False, None)
        >>> r.describe()
        'fft-vs-direct: ok when direct / fft >= 20x'
    """

    check: str
    quantity: str
    op: str
    threshold: float
    unit: str = "x"

    def __post_init__(self) -> None:
        if self.op not in (">=", "<=", "<", ">"):
            raise ValueError(f"op must be one of '>=', '<=', '<', '>', got {self.op!r}")

    def passes(self, value: float | None) -> bool | None:
        """The verdict for ``value`` (``None`` when there is no value)."""
        if value is None or (isinstance(value, float) and math.isnan(value)):
            return None
        v, t = float(value), float(self.threshold)
        return {">=": v >= t, "<=": v <= t, "<": v < t, ">": v > t}[self.op]

    def describe(self) -> str:
        """``"check: ok when quantity op threshold"``."""
        if self.unit == "s":
            th = format_seconds(self.threshold)
        else:
            th = f"{self.threshold:g}{self.unit}"
        return f"{self.check}: ok when {self.quantity} {self.op} {th}"

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready form."""
        return {"check": self.check, "quantity": self.quantity, "op": self.op,
                "threshold": self.threshold, "unit": self.unit, "text": self.describe()}


def ratio_spread(numerator: Sequence[float], denominator: Sequence[float]) -> dict[str, float]:
    """Spread of a ratio over rounds: per-round ratios when both sides have the same number of
    interleaved rounds, otherwise every numerator/denominator pair.

    Returns ``median``, ``q1``, ``q3``, ``min``, ``max`` and ``n`` (ratios formed). The row's
    ``ratio`` is the ratio of the medians; this is how much it moves between rounds.

    Example:
        >>> ratio_spread([2.0, 4.0, 6.0], [1.0, 2.0, 2.0])["median"]
        2.0
    """
    if not numerator or not denominator:
        raise ValueError("numerator and denominator must be non-empty sequences of seconds")
    if len(numerator) == len(denominator):
        rs = [a / b for a, b in zip(numerator, denominator) if b > 0]
    else:
        rs = [a / b for a in numerator for b in denominator if b > 0]
    if not rs:
        raise ValueError("denominator must hold a positive time, got only zeros")
    return {"median": statistics.median(rs), "q1": quantile(rs, 0.25), "q3": quantile(rs, 0.75),
            "min": min(rs), "max": max(rs), "n": len(rs)}


def format_ratio(value: float | None, spread: Mapping[str, float] | None = None, digits: int = 2) -> str:
    """``"10.21x [9.80-10.52]"`` (a ratio and the quartiles of the per-round ratios).

    Example:
        >>> format_ratio(1.234, {"q1": 1.2, "q3": 1.3})
        '1.23x [1.20-1.30]'
        >>> format_ratio(None)
        '-'
    """
    if value is None:
        return "-"
    text = f"{value:.{digits}f}x"
    if spread:
        text += f" [{spread['q1']:.{digits}f}-{spread['q3']:.{digits}f}]"
    return text


def format_rules(rules: Sequence[Rule]) -> str:
    """The rules block printed above a benchmark table (one line per check)."""
    return "\n".join(["verdict rules (one per row; 'ok' follows from the ratio shown):"]
                     + [f"  {r.describe()}" for r in rules])


def verdict(rule: Rule, value: float | None, spread: Mapping[str, float] | None = None,
            **fields: Any) -> dict[str, Any]:
    """One verdict row: ``fields`` (what the row is about) plus the rule and its outcome.

    ``ok`` is ``rule.passes(value)`` and nothing else, so the printed ``ratio`` decides it;
    ``spread`` is the ratio's spread over rounds (:func:`ratio_spread`; ``None`` for a single
    measurement such as an analytic count or one memory probe).

    Example:
        >>> v = verdict(Rule("speedup", "full / separable", ">=", 2.0), 2.4, None, what="C8")
        >>> v["ok"], v["rule"], v["what"]
        (True, 'speedup: ok when full / separable >= 2x', 'C8')
    """
    return {**fields, "check": rule.check, "quantity": rule.quantity, "ratio": value,
            "ratio_spread": dict(spread) if spread is not None else None,
            "rule": rule.describe(), "target": rule.threshold, "ok": rule.passes(value)}


def timing_ratio(numerator: Timing, denominator: Timing, scale: float = 1.0
                 ) -> tuple[float, dict[str, float]]:
    """``(ratio, spread)``: the median of the per-round ratios ``scale * num / den``, and their spread.

    The spread is :func:`ratio_spread`'s, scaled. A round times both sides back to back, so its
    ratio cancels most of the load drift between rounds.

    Example:
        >>> r, sp = timing_ratio(Timing("a", [2.0, 4.0, 9.0]), Timing("b", [1.0, 2.0, 3.0]))
        >>> r, sp["q1"], sp["n"]
        (2.0, 2.0, 3)
    """
    sp = ratio_spread(numerator.seconds, denominator.seconds)
    sp = {k: (v * scale if k != "n" else v) for k, v in sp.items()}
    return sp["median"], sp


def format_verdict(ok: bool | None) -> str:
    """``"ok"``, ``"NO"`` or ``"-"`` (no value)."""
    return {True: "ok", False: "NO", None: "-"}[ok]


def format_verdicts(verdicts: Sequence[Mapping[str, Any]], rules: Mapping[str, Rule]) -> str:
    """The rules of the checks present (one line each), then one line per verdict row:
    check, what, the ratio with its quartiles, the rule's bound and ``ok``.

    Example:
        >>> rule = Rule("speedup", "full / separable", ">=", 2.0)
        >>> print(format_verdicts([verdict(rule, 2.5, {"q1": 2.4, "q3": 2.6}, what="C8")],
        ...                       {"speedup": rule}))
        verdict rules (one per row; 'ok' follows from the ratio shown):
          speedup: ok when full / separable >= 2x
        <BLANKLINE>
        check    what  ratio [q1-q3]      rule   ok
        -------  ----  -----------------  -----  --
        speedup  C8    2.50x [2.40-2.60]  >= 2x  ok
    """
    present = [rules[c] for c in dict.fromkeys(v["check"] for v in verdicts)]
    body = []
    for v in verdicts:
        rule = rules[v["check"]]
        th = format_seconds(rule.threshold) if rule.unit == "s" else f"{rule.threshold:g}{rule.unit}"
        body.append([v["check"], v.get("what", "-"), format_ratio(v["ratio"], v.get("ratio_spread")),
                     f"{rule.op} {th}", format_verdict(v["ok"])])
    grid = format_table(["check", "what", "ratio [q1-q3]", "rule", "ok"], body)
    return "\n".join([format_rules(present), "", grid])


def ratio(numerator: float | None, denominator: float | None) -> float | None:
    """``numerator / denominator``, or ``None`` when either is missing or the denominator is 0."""
    if numerator is None or denominator is None or denominator == 0:
        return None
    return numerator / denominator


def throughput(elements: int, seconds: float) -> float:
    """Elements per second (``inf`` for a zero time)."""
    return math.inf if seconds <= 0 else elements / seconds


def environment_info(device: torch.device | str = "cpu") -> dict[str, Any]:
    """What a benchmark number depends on: versions, threads, CPU capability, device name."""
    dev = torch.device(device)
    info: dict[str, Any] = {
        "torch": torch.__version__,
        "python": platform.python_version(),
        "platform": platform.platform(),
        "threads": torch.get_num_threads(),
        "cpu_count": os.cpu_count(),
        "device": str(dev),
    }
    try:
        info["cpu_capability"] = torch.backends.cpu.get_cpu_capability()
    except (AttributeError, RuntimeError):  # pragma: no cover - older torch
        info["cpu_capability"] = None
    info["machine"] = platform.machine()
    info["cpu_model"] = _cpu_model()
    try:
        info["load_average"] = list(os.getloadavg())
    except (AttributeError, OSError):  # pragma: no cover - not on Linux/macOS
        info["load_average"] = None
    if dev.type == "cuda" and torch.cuda.is_available():
        info["device_name"] = torch.cuda.get_device_name(dev)
        info["cuda"] = torch.version.cuda
    return info


def _cpu_model() -> str | None:
    try:
        with open("/proc/cpuinfo") as fh:
            for line in fh:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or None


def write_json(path: str | os.PathLike[str], payload: Any) -> Path:
    """Write ``payload`` as indented JSON (non-JSON values via ``str``); returns the path."""
    p = Path(path)
    p.parent.mkdir(parents=True, exist_ok=True)
    p.write_text(json.dumps(payload, indent=2, default=str) + "\n")
    return p


def format_rate(x: float | None) -> str:
    """``12345678.0`` -> ``"12.3M"``; ``None`` -> ``"-"``.

    Example:
        >>> format_rate(2.5e7), format_rate(999.0), format_rate(None)
        ('25.0M', '999', '-')
    """
    if x is None:
        return "-"
    if math.isinf(x):
        return "inf"
    for unit, scale in (("G", 1e9), ("M", 1e6), ("k", 1e3)):
        if abs(x) >= scale:
            return f"{x / scale:.1f}{unit}"
    return f"{x:.0f}"


def format_seconds(x: float | None) -> str:
    """Seconds in a readable unit: ``0.0123`` -> ``"12.3 ms"``.

    Example:
        >>> format_seconds(0.0123), format_seconds(2e-6)
        ('12.3 ms', '2.0 us')
    """
    if x is None:
        return "-"
    if x >= 1:
        return f"{x:.2f} s"
    if x >= 1e-3:
        return f"{x * 1e3:.1f} ms"
    return f"{x * 1e6:.1f} us"


def format_table(headers: Sequence[str], rows: Sequence[Sequence[object]]) -> str:
    """A plain-text table with left-aligned columns.

    Example:
        >>> print(format_table(["a", "bb"], [[1, 2], [10, 20]]))
        a   bb
        --  --
        1   2
        10  20
    """
    cells = [[str(c) for c in r] for r in rows]
    widths = [max([len(h)] + [len(r[i]) for r in cells]) for i, h in enumerate(headers)]
    lines = ["  ".join(h.ljust(w) for h, w in zip(headers, widths)).rstrip(),
             "  ".join("-" * w for w in widths)]
    lines += ["  ".join(c.ljust(w) for c, w in zip(r, widths)).rstrip() for r in cells]
    return "\n".join(lines)


# -- peak memory -----------------------------------------------------------------------------------
def _status_kib(key: str) -> int:
    with open("/proc/self/status") as fh:
        for line in fh:
            if line.startswith(key + ":"):
                return int(line.split()[1])
    raise OSError(f"{key} not in /proc/self/status")


def peak_memory(step: Callable[[], object], device: torch.device | str) -> dict[str, Any]:
    """Peak bytes above the baseline while ``step()`` runs, and how they were measured.

    CUDA: ``torch.cuda.max_memory_allocated`` above the memory allocated before the call
    (``"cuda"``). CPU: the peak RSS (``VmHWM``) is reset to the current RSS through
    ``/proc/self/clear_refs`` and its rise over ``VmRSS`` is read (``"VmHWM"``, Linux); elsewhere
    the rise of ``ru_maxrss`` (``"ru_maxrss"``: zero unless the step exceeds the process's
    earlier peak). Meant for a fresh process (:func:`probe_in_subprocess`): what the process
    allocated before is not measured.

    Example:
        >>> import torch
        >>> r = peak_memory(lambda: torch.ones(1 << 20).sum(), "cpu")
        >>> sorted(r), r["peak_bytes"] >= 0
        (['method', 'peak_bytes'], True)
    """
    if torch.device(device).type == "cuda":
        torch.cuda.synchronize()
        base = torch.cuda.memory_allocated()
        torch.cuda.reset_peak_memory_stats()
        step()
        torch.cuda.synchronize()
        return {"peak_bytes": float(torch.cuda.max_memory_allocated() - base), "method": "cuda"}
    gc.collect()
    try:  # Linux: reset the peak RSS (VmHWM) to the current RSS, then read the new peak
        with open("/proc/self/clear_refs", "w") as fh:
            fh.write("5")
        before = _status_kib("VmRSS")
        step()
        return {"peak_bytes": float(_status_kib("VmHWM") - before) * 1024.0, "method": "VmHWM"}
    except OSError:
        import resource

        before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        step()
        after = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        return {"peak_bytes": float(after - before) * 1024.0, "method": "ru_maxrss"}


def probe_in_subprocess(module: str, spec: Mapping[str, Any], timeout: float = 600.0) -> float | None:
    """Run ``python -m <module> --memory-probe <spec as JSON>`` in a fresh process and return the
    ``peak_bytes`` it prints last (a :func:`peak_memory` result), or ``None`` when it fails.

    Example:
        >>> probe_in_subprocess("groupconv.no_such_module", {}) is None
        True
    """
    cmd = [sys.executable, "-m", module, "--memory-probe", json.dumps(dict(spec))]
    try:
        out = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, check=True)
        return float(json.loads(out.stdout.strip().splitlines()[-1])["peak_bytes"])
    except (subprocess.SubprocessError, ValueError, KeyError, IndexError):
        return None


# -- the ``python -m groupconv.benchmarks.<suite>`` entry points --------------------------------------
@dataclass(frozen=True)
class Option:
    """A suite-specific command-line option of :func:`suite_main`, passed to the suite's ``run``.

    ``flag`` (``"--length"``) becomes the keyword ``kwarg`` (``"length"``); ``kind`` is ``int``
    (default ``None``: the suite's own default), ``"off"`` (a ``--no-X`` switch passing
    ``kwarg=False``; ``True`` otherwise) or ``"on"`` (a switch passing ``kwarg=True``; ``False``
    otherwise).

    Example:
        >>> Option("--no-memory", "memory", "skip the memory probes", kind="off").kwarg
        'memory'
    """

    flag: str
    kwarg: str
    help: str
    kind: Any = int
    default: Any = None


def suite_main(
    argv: Sequence[str] | None,
    *,
    module: str,
    description: str,
    run: Callable[..., dict[str, Any]],
    format_result: Callable[[dict[str, Any]], str],
    options: Sequence[Option] = (),
    memory_probe: Callable[[dict[str, Any]], dict[str, Any]] | None = None,
) -> int:
    """The one command line of every suite module: ``python -m <module> [--quick] [--device D]
    [--json PATH] [suite options]``; runs ``run(quick=, device=, **options)``, prints
    ``format_result`` of the result and writes the JSON. ``groupconv bench <suite>`` is the
    user-facing command; these entry points add the suite's tuning knobs (sizes, repeats,
    skipping parts) for scripts and tests, and the hidden ``--memory-probe SPEC`` that
    :func:`probe_in_subprocess` runs in a fresh process. Returns the exit status (0).

    Example:
        >>> def run(quick, device, repeats=None):
        ...     return {"device": device, "repeats": repeats}
        >>> suite_main(["--repeats", "3"], module="demo", description="a demo suite", run=run,
        ...            format_result=str, options=[Option("--repeats", "repeats", "rounds")])
        {'device': 'cpu', 'repeats': 3}
        0
    """
    p = argparse.ArgumentParser(prog=f"python -m {module}", description=description)
    p.add_argument("--quick", action="store_true", help="smoke run with small sizes (numbers not meaningful)")
    p.add_argument("--device", default="cpu", help="cpu or cuda (default cpu)")
    p.add_argument("--json", metavar="PATH", help="also write the result as JSON")
    for o in options:
        if o.kind == "off":
            p.add_argument(o.flag, dest=o.kwarg, action="store_false", help=o.help)
        elif o.kind == "on":
            p.add_argument(o.flag, dest=o.kwarg, action="store_true", help=o.help)
        else:
            p.add_argument(o.flag, dest=o.kwarg, type=o.kind, default=o.default, help=o.help)
    if memory_probe is not None:
        p.add_argument("--memory-probe", metavar="SPEC", help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if memory_probe is not None and args.memory_probe:
        print(json.dumps(memory_probe(json.loads(args.memory_probe))))
        return 0
    res = run(quick=args.quick, device=args.device, **{o.kwarg: getattr(args, o.kwarg) for o in options})
    print(format_result(res))
    if args.json:
        print(f"wrote {write_json(args.json, res)}", file=sys.stderr)
    return 0
