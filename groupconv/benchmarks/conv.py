"""``groupconv bench conv``: continuous-kernel convolutions (FFT route, FlexConv cropping, memory).

Checks and targets (issue "Continuous kernel convolutions", Performance):

=================  ==========================================================  ===============
check              what is measured                                            target
=================  ==========================================================  ===============
``fft-vs-direct``  ``conv(x, w, causal=True, method="fft")`` against            >= 20x faster
                   ``method="direct"`` (``F.conv1d`` on the padded input) for
                   ``x (1, C, L)``, a full-length kernel ``w (C, C, L)``,
                   ``C = 32``, ``L = 16384``; ratio = direct / FFT
``fft-floor``      the same FFT call against the bare ``torch.fft`` floor;       <= 1.5x
                   ratio = FFT / floor
``flexconv-crop``  forward (training mode, no autograd) of ``FlexConv(C, C)``   < 1x
                   (centred, ``kernel_size="same"``) at ``L`` with a narrow
                   mask (sigma 0.05) against a wide one (sigma 0.5);
                   ratio = narrow / wide; the sampled kernel sizes are
                   reported (dynamic cropping)
``ckconv-memory``  peak memory of one ``CKConv(C, C, causal=True)``             <= 2.5x
                   forward + backward at ``2L`` over ``L`` (linear growth is
                   ~2x, quadratic 4x)
=================  ==========================================================  ===============

**The floor** (``fft-floor``) is what any FFT convolution of this size has to do, written with bare
``torch`` calls on pre-made tensors: ``torch.fft.rfft(x, n)`` of the input and
``torch.fft.rfft(w, n)`` of the kernel at the same transform length ``n = next_fast_len(2L - 1)``
(the padded length of the causal conv; the zero padding is implicit in ``n``), the per-frequency
channel contraction ``einsum("bif,oif->bof")`` (the ``C_out x C_in`` mixing, a complex batched
matmul over frequencies) and ``torch.fft.irfft(., n)``. It omits the explicit padding, the
conjugation (correlation vs convolution costs the same), the layout copies, the crop of the valid
part and the dtype handling that :func:`~groupconv.functional.fftconv.fftconv` performs.

**Timing.** Candidates are timed in one process in interleaved rounds (medians;
:func:`~groupconv.benchmarks.common.time_interleaved`). The direct conv at ``L = 16384`` costs tens
of seconds per call, so it gets ``direct_repeats`` rounds (default 2) of its own, while the FFT and
the floor share ``repeats`` interleaved rounds. **Memory** is measured in fresh subprocesses
(``python -m groupconv.benchmarks.conv --memory-probe SPEC``): on CPU the peak RSS (``VmHWM``) is
reset through ``/proc/self/clear_refs`` after the layer and the input exist, and its rise over
the RSS at that moment is reported; on CUDA ``max_memory_allocated`` above the baseline.

``quick=True`` uses ``L = 1024`` (memory at 1024 and 2048), 2 rounds: a smoke run whose numbers
mean nothing (never assert them).

Example:
    >>> res = run_conv_benchmark(quick=True, repeats=1, memory=False)
    >>> [r["check"] for r in res["rows"]]
    ['fft-vs-direct', 'fft-floor', 'flexconv-crop']
    >>> print(format_table(res).splitlines()[0])  # doctest: +NORMALIZE_WHITESPACE
    check  candidate  baseline  input  median  baseline median  ratio  target  ok
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from collections.abc import Sequence
from typing import Any

import torch

from .common import environment_info, format_seconds, time_interleaved, write_json
from .common import format_table as _format_grid

__all__ = ["TARGETS", "run_conv_benchmark", "format_table", "main"]

#: targets: ``(op, value)``; the check passes when ``ratio op value``.
TARGETS: dict[str, tuple[str, float]] = {
    "fft-vs-direct": (">=", 20.0),
    "fft-floor": ("<=", 1.5),
    "flexconv-crop": ("<", 1.0),
    "ckconv-memory": ("<=", 2.5),
}

#: mask widths (sigma on ``[-1, 1]``) of the ``flexconv-crop`` check: narrow, wide.
MASK_SIGMAS: tuple[float, float] = (0.05, 0.5)


def _check_int(value: object, name: str, allow_none: bool = True) -> None:
    if value is None and allow_none:
        return
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ValueError(f"{name} must be {'None or ' if allow_none else ''}a positive int, got {value!r}")


def _passes(ratio: float | None, target: tuple[str, float]) -> bool | None:
    if ratio is None:
        return None
    op, v = target
    return bool({">=": ratio >= v, "<=": ratio <= v, "<": ratio < v, ">": ratio > v}[op])


def run_conv_benchmark(
    quick: bool = False,
    device: torch.device | str = "cpu",
    repeats: int | None = None,
    *,
    length: int | None = None,
    channels: int = 32,
    direct_repeats: int | None = None,
    memory: bool = True,
    threads: int | None = 1,
    seed: int = 0,
) -> dict[str, Any]:
    """Run the continuous-convolution checks (see the module docstring).

    Args:
        quick: ``L = 1024`` and 2 rounds (smoke run).
        device: where everything runs.
        repeats: interleaved rounds of the FFT / floor / FlexConv timings (default 7; quick 2).
        length: sequence length ``L`` (default 16384; quick 1024).
        channels: ``C = C_in = C_out`` (default 32).
        direct_repeats: rounds of the direct conv (default 2; it costs ~30 s per call at 16384).
        memory: run the ``ckconv-memory`` check (two subprocesses).
        threads: CPU threads for the run (``torch.set_num_threads``, restored afterwards; the
            memory subprocesses use the same count); ``None`` keeps the current setting.
        seed: seeds the inputs, the layers and the round order.

    Returns:
        A JSON-ready dict: ``rows`` (``check, candidate, baseline, input, median, floor, ratio,
        target, target_op, ok, unit`` plus per-check extras: ``q1_s``/``q3_s``, kernel taps,
        peak bytes), ``sizes``, ``targets``, ``environment``. ``median``/``floor`` are seconds
        (``unit="s"``) or bytes (``unit="B"``, memory).
    """
    _check_int(repeats, "repeats")
    _check_int(direct_repeats, "direct_repeats")
    _check_int(length, "length")
    _check_int(channels, "channels", allow_none=False)
    _check_int(threads, "threads")
    if length is not None and length < 4:
        raise ValueError(f"length must be >= 4, got {length}")
    previous = torch.get_num_threads()
    if threads is not None:
        torch.set_num_threads(threads)
    try:
        return _run(quick, torch.device(device), repeats, length, channels, direct_repeats,
                    memory, seed)
    finally:
        torch.set_num_threads(previous)


def _row(check: str, candidate: str, baseline: str, shape: Sequence[int], median: float | None,
         floor: float | None, ratio: float | None, unit: str = "s", **extra: Any) -> dict[str, Any]:
    op, value = TARGETS[check]
    return {"check": check, "candidate": candidate, "baseline": baseline, "input": list(shape),
            "median": median, "floor": floor, "ratio": ratio, "target": value, "target_op": op,
            "ok": _passes(ratio, TARGETS[check]), "unit": unit, **extra}


def _run(quick: bool, dev: torch.device, repeats: int | None, length: int | None, C: int,
         direct_repeats: int | None, memory: bool, seed: int) -> dict[str, Any]:
    from ..functional.fftconv import conv, next_fast_len
    from ..nn.flexconv import FlexConv

    R = repeats if repeats is not None else (2 if quick else 7)
    RD = direct_repeats if direct_repeats is not None else (min(R, 2))
    L = length if length is not None else (1024 if quick else 16384)
    gen = torch.Generator().manual_seed(seed)
    rows: list[dict[str, Any]] = []

    # -- FFT vs direct vs floor ---------------------------------------------------------------
    x = torch.randn(1, C, L, generator=gen).to(dev)
    w = (torch.randn(C, C, L, generator=gen) / (C * L) ** 0.5).to(dev)
    n = next_fast_len(2 * L - 1)

    def floor() -> torch.Tensor:
        xf = torch.fft.rfft(x, n=n)
        wf = torch.fft.rfft(w, n=n)
        return torch.fft.irfft(torch.einsum("bif,oif->bof", xf, wf), n=n)

    with torch.no_grad():
        fft_fn = lambda: conv(x, w, causal=True, method="fft")  # noqa: E731
        direct_fn = lambda: conv(x, w, causal=True, method="direct")  # noqa: E731
        t = time_interleaved({"fft": fft_fn, "floor": floor}, repeats=R, warmup=1, device=dev, seed=seed)
        td = time_interleaved({"direct": direct_fn}, repeats=RD, warmup=0, device=dev, seed=seed)
        err = float((fft_fn() - direct_fn()).abs().max()) if L <= 4096 else None
    tf, tfl, tdir = t["fft"], t["floor"], td["direct"]
    shape = (1, C, L)
    rows.append(_row("fft-vs-direct", "fftconv (causal, full-length kernel)", "direct conv1d", shape,
                     tf.median, tdir.median, tdir.median / tf.median, q1_s=tf.q1, q3_s=tf.q3,
                     kernel_taps=L, direct_rounds=RD, max_abs_diff=err))
    rows.append(_row("fft-floor", "fftconv (causal, full-length kernel)",
                     f"rfft+einsum+irfft (n={n})", shape, tf.median, tfl.median,
                     tf.median / tfl.median, q1_s=tf.q1, q3_s=tf.q3, floor_q1_s=tfl.q1,
                     floor_q3_s=tfl.q3, fft_length=n))

    # -- FlexConv dynamic cropping --------------------------------------------------------------
    layers = []
    for sigma in MASK_SIGMAS:
        torch.manual_seed(seed)
        layer = FlexConv(C, C, data_dim=1, mask_init_sigma=sigma, reference_size=L).to(dev).train()
        layers.append(layer)
    xs = torch.randn(1, C, L, generator=gen).to(dev)
    taps = [layer.crop_size(L)[0] for layer in layers]
    with torch.no_grad():
        t = time_interleaved({"narrow": lambda: layers[0](xs), "wide": lambda: layers[1](xs)},
                             repeats=R, warmup=1, device=dev, seed=seed)
    nar, wid = t["narrow"], t["wide"]
    rows.append(_row("flexconv-crop", f"FlexConv sigma={MASK_SIGMAS[0]} ({taps[0]} taps)",
                     f"sigma={MASK_SIGMAS[1]} ({taps[1]} taps)", (1, C, L), nar.median, wid.median,
                     nar.median / wid.median, q1_s=nar.q1, q3_s=nar.q3, kernel_taps=taps[0],
                     baseline_kernel_taps=taps[1], sigmas=list(MASK_SIGMAS)))

    # -- CKConv memory --------------------------------------------------------------------------
    if memory:
        threads = torch.get_num_threads()
        peaks = [_measure_memory(C, ll, str(dev), threads, seed) for ll in (L, 2 * L)]
        r = None if None in peaks or not peaks[0] else peaks[1] / peaks[0]
        rows.append(_row("ckconv-memory", f"CKConv fwd+bwd L={2 * L}", f"L={L}", (1, C, 2 * L),
                         peaks[1], peaks[0], r, unit="B", peak_bytes={str(L): peaks[0],
                                                                      str(2 * L): peaks[1]}))
    return {
        "benchmark": "conv",
        "quick": quick,
        "device": str(dev),
        "repeats": R,
        "direct_repeats": RD,
        "sizes": {"length": L, "channels": C, "batch": 1, "fft_length": n,
                  "mask_sigmas": list(MASK_SIGMAS)},
        "rows": rows,
        "targets": {k: f"{op} {v:g}" for k, (op, v) in TARGETS.items()},
        "floor": "rfft(x, n) + rfft(w, n) + einsum('bif,oif->bof') + irfft(., n), "
                 "n = next_fast_len(2L - 1)",
        "environment": environment_info(dev),
    }


# ------------------------------------------------------------------------------------ memory
def _memory_probe(spec: dict[str, Any]) -> dict[str, Any]:
    """One CKConv forward + backward; peak bytes above the baseline (runs in a subprocess)."""
    from ..nn.ckconv import CKConv

    torch.set_num_threads(int(spec.get("threads", 1)))
    torch.manual_seed(int(spec.get("seed", 0)))
    device, C, L = spec["device"], int(spec["c"]), int(spec["length"])
    layer = CKConv(C, C, data_dim=1, causal=True, reference_size=L, device=device)
    x = torch.randn(1, C, L, device=device, requires_grad=True)
    if torch.device(device).type == "cuda":
        torch.cuda.synchronize()
        base = torch.cuda.memory_allocated()
        torch.cuda.reset_peak_memory_stats()
        layer(x).sum().backward()
        torch.cuda.synchronize()
        return {"peak_bytes": float(torch.cuda.max_memory_allocated() - base), "method": "cuda"}
    import gc

    from .attention import _status_kib

    gc.collect()
    try:  # Linux: reset the peak RSS (VmHWM) to the current RSS, then read the new peak
        with open("/proc/self/clear_refs", "w") as fh:
            fh.write("5")
        before = _status_kib("VmRSS")
        layer(x).sum().backward()
        return {"peak_bytes": float(_status_kib("VmHWM") - before) * 1024.0, "method": "VmHWM"}
    except OSError:
        import resource

        before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        layer(x).sum().backward()
        after = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        return {"peak_bytes": float(after - before) * 1024.0, "method": "ru_maxrss"}


def _measure_memory(c: int, length: int, device: str, threads: int, seed: int) -> float | None:
    spec = {"c": c, "length": length, "device": device, "threads": threads, "seed": seed}
    cmd = [sys.executable, "-m", "groupconv.benchmarks.conv", "--memory-probe", json.dumps(spec)]
    try:
        out = subprocess.run(cmd, capture_output=True, text=True, timeout=600, check=True)
        return float(json.loads(out.stdout.strip().splitlines()[-1])["peak_bytes"])
    except (subprocess.SubprocessError, ValueError, KeyError, IndexError):
        return None


# ------------------------------------------------------------------------------------ output
def _fmt(value: float | None, unit: str) -> str:
    if value is None:
        return "-"
    if unit == "B":
        return f"{value / 2**20:.1f} MiB"
    return format_seconds(value)


def format_table(result: dict[str, Any] | Sequence[dict[str, Any]]) -> str:
    """Render :func:`run_conv_benchmark`'s result (or its ``rows``) as a text table."""
    rows = result["rows"] if isinstance(result, dict) else list(result)
    headers = ["check", "candidate", "baseline", "input", "median", "baseline median", "ratio",
               "target", "ok"]
    body = [[
        r["check"], r["candidate"], r["baseline"], "x".join(map(str, r["input"])),
        _fmt(r["median"], r["unit"]), _fmt(r["floor"], r["unit"]),
        "-" if r["ratio"] is None else f"{r['ratio']:.2f}x", f"{r['target_op']} {r['target']:g}x",
        "-" if r["ok"] is None else ("yes" if r["ok"] else "NO"),
    ] for r in rows]
    lines = [_format_grid(headers, body)]
    if isinstance(result, dict):
        env = result.get("environment", {})
        lines.append(
            f"\nratios: fft-vs-direct = direct/fft, fft-floor = fft/floor, flexconv-crop = "
            f"narrow/wide, ckconv-memory = peak(2L)/peak(L); floor = {result.get('floor')}; "
            f"device {result.get('device')}, {result.get('repeats')} interleaved rounds "
            f"({result.get('direct_repeats')} for direct), medians, torch {env.get('torch')}, "
            f"{env.get('threads')} threads"
            + (", QUICK sizes (numbers not meaningful)" if result.get("quick") else ""))
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m groupconv.benchmarks.conv [--quick] [--device D] [--repeats R] [--json PATH]``."""
    p = argparse.ArgumentParser(prog="python -m groupconv.benchmarks.conv",
                                description="Continuous-kernel convolutions: FFT route, FlexConv "
                                            "cropping, CKConv memory.")
    p.add_argument("--quick", action="store_true", help="smoke run with L = 1024")
    p.add_argument("--device", default="cpu", help="cpu or cuda (default cpu)")
    p.add_argument("--repeats", type=int, default=None, help="interleaved rounds (default 7, quick 2)")
    p.add_argument("--direct-repeats", type=int, default=None, help="rounds of the direct conv (default 2)")
    p.add_argument("--length", type=int, default=None, help="sequence length (default 16384)")
    p.add_argument("--threads", type=int, default=1, help="CPU threads (default 1)")
    p.add_argument("--no-memory", action="store_true", help="skip the memory subprocesses")
    p.add_argument("--json", metavar="PATH", help="also write the result as JSON")
    p.add_argument("--memory-probe", metavar="SPEC", help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.memory_probe:
        print(json.dumps(_memory_probe(json.loads(args.memory_probe))))
        return 0
    res = run_conv_benchmark(quick=args.quick, device=args.device, repeats=args.repeats,
                             length=args.length, direct_repeats=args.direct_repeats,
                             memory=not args.no_memory, threads=args.threads)
    print(format_table(res))
    if args.json:
        print(f"wrote {write_json(args.json, res)}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
