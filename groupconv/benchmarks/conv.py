"""``groupconv bench conv``: continuous-kernel convolutions (FFT route, cached spectra, FlexConv
cropping, the FFT/direct cost model, memory).

Every row has exactly one verdict rule, printed above the table; ``ok`` follows from the ratio
the row shows. A row's ratio is the median of the per-round ratios of interleaved rounds (each
round times both sides back to back, so its ratio cancels most of the load drift between rounds;
rows timed in separate rounds use every pair); the table shows its quartiles in brackets and the
JSON records the spread, ``ratio_spread``:

=======================  ===================================================  ================
check                    what is measured                                     rule
=======================  ===================================================  ================
``fft-vs-direct``        ``conv(x, w, causal=True, method="fft")`` against     direct / fft
                         ``method="direct"`` for ``x (1, C, L)``, a           >= 20x
                         full-length kernel ``w (C, C, L)``, ``C = 32``,
                         ``L = 16384`` (kernel transformed every call)
``fft-floor``            the same FFT call against the bare-torch floor       fft / floor
                         (below), kernel transform included                   <= 1.5x
``ckconv-eval-direct``   eval forward of ``CKConv(C, C, causal=True)`` at     direct / layer
                         ``L_eval = L / 2`` (cached kernel and spectrum)      >= 20x
                         against a direct ``conv1d`` with the same kernel
``ckconv-eval-floor``    the same eval forward against the cached-spectrum    layer / floor
                         floor ``rfft(x) + mix + irfft``                      <= 1.2x
``flexconv-eval-floor``  eval forward of a causal ``FlexConv(C, C)`` (mask    layer / floor
                         sigma 0.5, cropped kernel) at ``L_eval`` against     <= 1.2x
                         the floor at its cropped kernel length
``flexconv-crop``        training-mode forward (no autograd) of               narrow / wide
                         ``FlexConv(C, C)`` at ``L`` with a narrow mask       < 1x
                         (sigma 0.05) against a wide one (sigma 0.5)
``cost-model``           ``conv(method="auto")`` against the faster of the    worst auto /
                         two routes on :data:`COST_SHAPES` (1-D/2-D/3-D),     best <= 1.25x
                         with the model installed for the run's thread
                         count (``calibrate=True``: one fitted first by
                         :func:`~groupconv.functional.cost.calibrate`)
``ckconv-memory``        peak memory of one ``CKConv(C, C, causal=True)``     peak(2L) /
                         forward + backward at ``2L`` over ``L``              peak(L) <= 2.5x
=======================  ===================================================  ================

**The floors** are what any FFT convolution of the size has to do, with bare ``torch`` calls on
pre-made tensors at the transform length ``n = next_fast_len(L + K - 1)``: ``torch.fft.rfft(x, n)``,
the per-frequency channel contraction as a frequency-major complex matmul
(``xf.permute(2, 0, 1).contiguous() @ W`` with ``W (n/2+1, C_in, C_out)`` pre-made, the product
made contiguous again) and ``torch.fft.irfft(., n)``; ``fft-floor`` adds ``torch.fft.rfft(w, n)``
of the kernel and, since that spectrum is used once, mixes it in its natural ``(C_out, C_in, F)``
layout by accumulating over the input channels (a frequency-major copy for the matmul costs more
than the kernel's FFT at ``L = 16384``). The floors
omit padding, the crop and the dtype handling. (The textbook ``einsum("bif,oif->bof")``
contraction is timed too and recorded as ``einsum_floor_s``; on the project's CPU it is several
times slower than the matmul at batch 1, so it would make a lenient floor.)

**Timing.** Candidates are timed in one process in interleaved rounds (medians;
:func:`~groupconv.benchmarks.common.time_interleaved`). The direct convs with full-length
kernels cost seconds to tens of seconds per call, so they get ``direct_repeats`` rounds (default
2) of their own. **Memory** is measured in fresh subprocesses (``python -m
groupconv.benchmarks.conv --memory-probe SPEC``): on CPU the peak RSS (``VmHWM``) is reset through
``/proc/self/clear_refs`` after the layer and the input exist, and its rise over the RSS at that
moment is reported; on CUDA ``max_memory_allocated`` above the baseline.

``quick=True`` uses ``L = 1024`` (memory at 1024 and 2048), 2 rounds and tiny cost-model shapes:
a smoke run whose numbers mean nothing (never assert them).

Example:
    >>> res = run_conv_benchmark(quick=True, repeats=1, length=128, channels=4, memory=False)
    >>> [r["check"] for r in res["rows"]][:4]
    ['fft-vs-direct', 'fft-floor', 'ckconv-eval-direct', 'ckconv-eval-floor']
    >>> print(format_table(res).splitlines()[0])
    verdict rules (one per row; 'ok' follows from the ratio shown):
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
    format_ratio,
    format_rules,
    format_seconds,
    peak_memory,
    probe_in_subprocess,
    ratio_spread,
    suite_main,
    time_interleaved,
)
from .common import format_table as _format_grid

__all__ = ["RULES", "TARGETS", "COST_SHAPES", "run_conv_benchmark", "format_table", "main"]

#: the verdict rule of every check (one per row).
RULES: dict[str, Rule] = {r.check: r for r in (
    Rule("fft-vs-direct", "direct / fft", ">=", 20.0),
    Rule("fft-floor", "fft / floor", "<=", 1.5),
    Rule("ckconv-eval-direct", "direct / layer", ">=", 20.0),
    Rule("ckconv-eval-floor", "layer / floor", "<=", 1.2),
    Rule("flexconv-eval-floor", "layer / floor", "<=", 1.2),
    Rule("flexconv-crop", "narrow / wide", "<", 1.0),
    Rule("cost-model", "worst auto / best route", "<=", 1.25),
    Rule("ckconv-memory", "peak(2L) / peak(L)", "<=", 2.5),
)}

#: the same rules as ``(op, threshold)`` pairs (kept for scripts reading the old form).
TARGETS: dict[str, tuple[str, float]] = {k: (r.op, r.threshold) for k, r in RULES.items()}

#: mask widths (sigma on ``[-1, 1]``) of the ``flexconv-crop`` check: narrow, wide.
MASK_SIGMAS: tuple[float, float] = (0.05, 0.5)

#: ``(x_shape, kernel_shape)`` of the ``cost-model`` check ("same" padding): both sides of the
#: crossover in 1-D, 2-D and 3-D, batch 1 and 8.
COST_SHAPES: tuple[tuple[tuple[int, ...], tuple[int, ...]], ...] = (
    ((8, 32, 4096), (32, 32, 31)),
    ((8, 32, 4096), (32, 32, 255)),
    ((1, 32, 4096), (32, 32, 1023)),
    ((8, 16, 32, 32), (16, 16, 3, 3)),
    ((8, 16, 32, 32), (16, 16, 21, 21)),
    ((2, 8, 16, 16, 16), (8, 8, 3, 3, 3)),
    ((2, 8, 16, 16, 16), (8, 8, 11, 11, 11)),
)
_QUICK_COST_SHAPES = (((2, 4, 128), (4, 4, 5)), ((1, 4, 128), (4, 4, 65)),
                      ((2, 4, 12, 12), (4, 4, 3, 3)))


def _check_int(value: object, name: str, allow_none: bool = True) -> None:
    if value is None and allow_none:
        return
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ValueError(f"{name} must be {'None or ' if allow_none else ''}a positive int, got {value!r}")


def run_conv_benchmark(
    quick: bool = False,
    device: torch.device | str = "cpu",
    repeats: int | None = None,
    *,
    length: int | None = None,
    channels: int = 32,
    direct_repeats: int | None = None,
    memory: bool = True,
    cost_model: bool = True,
    threads: int | None = 1,
    seed: int = 0,
    calibrate: bool = False,
) -> dict[str, Any]:
    """Run the continuous-convolution checks (see the module docstring).

    Args:
        quick: ``L = 1024`` and 2 rounds (smoke run).
        device: where everything runs.
        repeats: interleaved rounds of the FFT / floor / layer timings (default 7; quick 2).
        length: sequence length ``L`` (default 16384; quick 1024); the eval rows use ``L / 2``.
        channels: ``C = C_in = C_out`` (default 32).
        direct_repeats: rounds of the direct convs (default 2; ~30 s per call at 16384).
        memory: run the ``ckconv-memory`` check (two subprocesses).
        cost_model: run the ``cost-model`` check.
        calibrate: fit the FFT/direct cost model on this machine at the run's thread count
            first (:func:`~groupconv.functional.cost.calibrate`, a few seconds) and evaluate
            that model in the ``cost-model`` row instead of the installed one.
        threads: CPU threads for the run (``torch.set_num_threads``, restored afterwards; the
            memory subprocesses use the same count); ``None`` keeps the current setting.
        seed: seeds the inputs, the layers and the round order.

    Returns:
        A JSON-ready dict: ``rows`` (``check, candidate, baseline, input, median, floor, ratio,
        ratio_spread, rule, target, target_op, ok, unit`` plus per-check extras), ``rules``,
        ``sizes``, ``environment``. ``median``/``floor`` are seconds (``unit="s"``) or bytes
        (``unit="B"``, memory); ``ok`` is ``RULES[check].passes(ratio)``.
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
                    memory, cost_model, seed, calibrate)
    finally:
        torch.set_num_threads(previous)


def _row(check: str, candidate: str, baseline: str, shape: Sequence[int], median: float | None,
         floor: float | None, ratio: float | None, spread: dict[str, float] | None = None,
         unit: str = "s", **extra: Any) -> dict[str, Any]:
    """One row. With a ``spread`` the row's ratio is the median of the per-round ratios (rounds
    are interleaved, so a round's ratio cancels most of the load drift between rounds)."""
    rule = RULES[check]
    if spread is not None:
        ratio = spread["median"]
    return {"check": check, "candidate": candidate, "baseline": baseline, "input": list(shape),
            "median": median, "floor": floor, "ratio": ratio, "ratio_spread": spread,
            "rule": rule.describe(), "target": rule.threshold, "target_op": rule.op,
            "ok": rule.passes(ratio), "unit": unit, **extra}


def _floor_fns(x: torch.Tensor, w: torch.Tensor, n: int) -> tuple[Callable, Callable, Callable]:
    """Bare-torch floors at transform length ``n``: (cached matmul, uncached matmul, einsum)."""
    wf = torch.fft.rfft(w, n=n)  # (C_out, C_in, F)
    wm = wf.permute(2, 1, 0).contiguous()  # (F, C_in, C_out)

    def mix(xf: torch.Tensor, wmat: torch.Tensor) -> torch.Tensor:
        # contiguous before the inverse FFT: irfft of the permuted view is up to 20x slower
        # with 2 threads on the project's CPU
        return torch.matmul(xf.permute(2, 0, 1).contiguous(), wmat).permute(1, 2, 0).contiguous()

    def cached() -> torch.Tensor:
        return torch.fft.irfft(mix(torch.fft.rfft(x, n=n), wm), n=n)

    def uncached() -> torch.Tensor:
        # the kernel spectrum is used once: accumulate over input channels in its natural
        # (C_out, C_in, F) layout (a frequency-major copy for a matmul costs more than the
        # kernel's FFT at L = 16384, C = 32)
        wf1 = torch.fft.rfft(w, n=n)
        xc = torch.fft.rfft(x, n=n).conj()
        yc = torch.zeros(x.shape[0], w.shape[0], wf1.shape[-1], dtype=xc.dtype, device=xc.device)
        for i in range(w.shape[1]):
            yc.addcmul_(wf1[:, i].unsqueeze(0), xc[:, i].unsqueeze(1))
        return torch.fft.irfft(yc.conj(), n=n)

    def einsum() -> torch.Tensor:
        return torch.fft.irfft(torch.einsum("bif,oif->bof", torch.fft.rfft(x, n=n), wf), n=n)

    return cached, uncached, einsum


def _run(quick: bool, dev: torch.device, repeats: int | None, length: int | None, C: int,
         direct_repeats: int | None, memory: bool, cost_model: bool, seed: int,
         calibrate: bool = False) -> dict[str, Any]:
    from ..functional.fftconv import conv, next_fast_len
    from ..nn.continuous.ckconv import CKConv
    from ..nn.continuous.flexconv import FlexConv

    R = repeats if repeats is not None else (2 if quick else 7)
    RD = direct_repeats if direct_repeats is not None else (min(R, 2))
    L = length if length is not None else (1024 if quick else 16384)
    LE = max(L // 2, 4)
    gen = torch.Generator().manual_seed(seed)
    rows: list[dict[str, Any]] = []

    # -- FFT vs direct vs floor (kernel transformed every call) ---------------------------------
    x = torch.randn(1, C, L, generator=gen).to(dev)
    w = (torch.randn(C, C, L, generator=gen) / (C * L) ** 0.5).to(dev)
    n = next_fast_len(2 * L - 1)
    _, floor_uncached, floor_einsum = _floor_fns(x, w, n)
    with torch.no_grad():
        fft_fn = lambda: conv(x, w, causal=True, method="fft")  # noqa: E731
        direct_fn = lambda: conv(x, w, causal=True, method="direct")  # noqa: E731
        t = time_interleaved({"fft": fft_fn, "floor": floor_uncached, "einsum": floor_einsum},
                             repeats=R, warmup=1, device=dev, seed=seed)
        td = time_interleaved({"direct": direct_fn}, repeats=RD, warmup=0, device=dev, seed=seed)
        err = float((fft_fn() - direct_fn()).abs().max()) if L <= 4096 else None
    tf, tfl, tdir = t["fft"], t["floor"], td["direct"]
    shape = (1, C, L)
    rows.append(_row("fft-vs-direct", "fftconv (causal, full-length kernel)", "direct conv1d", shape,
                     tf.median, tdir.median, tdir.median / tf.median,
                     ratio_spread(tdir.seconds, tf.seconds), q1_s=tf.q1, q3_s=tf.q3,
                     kernel_taps=L, direct_rounds=RD, max_abs_diff=err))
    rows.append(_row("fft-floor", "fftconv (causal, full-length kernel)",
                     f"rfft(x)+rfft(w)+mix+irfft (n={n})", shape, tf.median, tfl.median,
                     tf.median / tfl.median, ratio_spread(tf.seconds, tfl.seconds), q1_s=tf.q1,
                     q3_s=tf.q3, floor_q1_s=tfl.q1, floor_q3_s=tfl.q3, fft_length=n,
                     einsum_floor_s=t["einsum"].median))

    # -- eval forwards with a cached kernel spectrum --------------------------------------------
    xe = torch.randn(1, C, LE, generator=gen).to(dev)
    torch.manual_seed(seed)
    ck = CKConv(C, C, causal=True, reference_size=LE).to(dev).eval()
    torch.manual_seed(seed)
    flex = FlexConv(C, C, causal=True, mask_init_sigma=MASK_SIGMAS[1], reference_size=LE).to(dev).eval()
    with torch.no_grad():
        ck(xe), flex(xe)  # fill the caches
        kc, kf = ck.sample_kernel(LE), flex.sample_kernel(LE)
        cached_ck, _, _ = _floor_fns(xe, kc, next_fast_len(LE + kc.shape[-1] - 1))
        cached_fx, _, einsum_fx = _floor_fns(xe, kf, next_fast_len(LE + kf.shape[-1] - 1))
        t = time_interleaved({"ck": lambda: ck(xe), "ck-floor": cached_ck, "flex": lambda: flex(xe),
                              "flex-floor": cached_fx}, repeats=R, warmup=1, device=dev, seed=seed)
        td = time_interleaved({"direct": lambda: conv(xe, kc, ck.bias, causal=True, method="direct")},
                              repeats=RD, warmup=0, device=dev, seed=seed)
        err = float((ck(xe) - conv(xe, kc, ck.bias, causal=True, method="direct")).abs().max()
                    ) if LE <= 4096 else None
    tc, tcf, tx, txf, tdir = t["ck"], t["ck-floor"], t["flex"], t["flex-floor"], td["direct"]
    shape = (1, C, LE)
    rows.append(_row("ckconv-eval-direct", "CKConv eval (cached spectrum)", "direct conv1d, same kernel",
                     shape, tc.median, tdir.median, tdir.median / tc.median,
                     ratio_spread(tdir.seconds, tc.seconds), q1_s=tc.q1, q3_s=tc.q3,
                     kernel_taps=int(kc.shape[-1]), direct_rounds=RD, max_abs_diff=err,
                     spectrum_cached=ck._cached_spectrum is not None))
    rows.append(_row("ckconv-eval-floor", "CKConv eval (cached spectrum)",
                     "rfft(x)+matmul+irfft", shape, tc.median, tcf.median, tc.median / tcf.median,
                     ratio_spread(tc.seconds, tcf.seconds), q1_s=tc.q1, q3_s=tc.q3,
                     floor_q1_s=tcf.q1, floor_q3_s=tcf.q3))
    rows.append(_row("flexconv-eval-floor", f"FlexConv eval sigma={MASK_SIGMAS[1]} ({kf.shape[-1]} taps)",
                     "rfft(x)+matmul+irfft", shape, tx.median, txf.median, tx.median / txf.median,
                     ratio_spread(tx.seconds, txf.seconds), q1_s=tx.q1, q3_s=tx.q3,
                     floor_q1_s=txf.q1, floor_q3_s=txf.q3, kernel_taps=int(kf.shape[-1]),
                     spectrum_cached=flex._cached_spectrum is not None))

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
                     nar.median / wid.median, ratio_spread(nar.seconds, wid.seconds), q1_s=nar.q1,
                     q3_s=nar.q3, kernel_taps=taps[0], baseline_kernel_taps=taps[1],
                     sigmas=list(MASK_SIGMAS)))

    # -- the FFT/direct cost model --------------------------------------------------------------
    if cost_model:
        model = None
        if calibrate:
            from ..functional.cost import CALIBRATION_SHAPES
            from ..functional.cost import calibrate as fit

            small = [((1, 2, 64), (2, 2, 9)), ((1, 2, 8, 8), (2, 2, 3, 3)),
                     ((1, 2, 4, 4, 4), (2, 2, 3, 3, 3))]
            model = fit(dev, threads=torch.get_num_threads(), repeats=1 if quick else 3,
                        shapes=small if quick else CALIBRATION_SHAPES)
        rows.append(_cost_model_row(_QUICK_COST_SHAPES if quick else COST_SHAPES, dev,
                                    max(2, R // 2), gen, seed, model))

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
        "sizes": {"length": L, "eval_length": LE, "channels": C, "batch": 1, "fft_length": n,
                  "mask_sigmas": list(MASK_SIGMAS)},
        "rows": rows,
        "rules": [r.as_dict() for r in RULES.values()],
        "targets": {k: f"{op} {v:g}" for k, (op, v) in TARGETS.items()},
        "floor": "rfft(x, n) + mix + irfft(., n): cached spectrum by frequency-major complex matmul; "
                 "fft-floor adds rfft(w, n), mixed in its natural layout",
        "environment": environment_info(dev),
    }


def _cost_model_row(shapes: Sequence[tuple[tuple[int, ...], tuple[int, ...]]], dev: torch.device,
                    rounds: int, gen: torch.Generator, seed: int,
                    model: Any = None) -> dict[str, Any]:
    """Time both routes per shape; the row's ratio is the worst ``t(auto choice) / t(best)``.

    ``model``: the :class:`~groupconv.functional.cost.CostModel` to evaluate (default: the one
    installed for the current thread count); the row records which (``cost_model``).
    """
    from ..functional.cost import get_cost_model
    from ..functional.fftconv import conv, use_fft

    calibrated = model is not None
    model = model if model is not None else get_cost_model()

    per_shape = []
    worst, worst_spread = 0.0, None
    for xs, ws in shapes:
        x = torch.randn(*xs, generator=gen).to(dev)
        w = torch.randn(*ws, generator=gen).to(dev)
        with torch.no_grad():
            t = time_interleaved({m: (lambda m=m, x=x, w=w: conv(x, w, padding="same", method=m))
                                  for m in ("direct", "fft")}, repeats=rounds, warmup=1,
                                 device=dev, seed=seed)
        choice = "fft" if use_fft(xs, ws, padding="same", cost_model=model) else "direct"
        best = min(t.values(), key=lambda tt: tt.median)
        spread = ratio_spread(t[choice].seconds, best.seconds)
        r = spread["median"]  # the median per-round ratio, as every row reports it
        per_shape.append({"x": list(xs), "kernel": list(ws), "choice": choice,
                          "direct_s": t["direct"].median, "fft_s": t["fft"].median, "ratio": r})
        if r >= worst:
            worst, worst_spread = r, spread
    total = sum(min(p["direct_s"], p["fft_s"]) for p in per_shape)
    chosen = sum(p["fft_s" if p["choice"] == "fft" else "direct_s"] for p in per_shape)
    threads = torch.get_num_threads()
    which = ("calibrated here" if calibrated else
             f"{model.threads}-thread model" if model.threads is not None else "installed model")
    return _row("cost-model", f"conv(method='auto'), {len(shapes)} shapes, {which}",
                "faster route per shape", [len(shapes)], chosen, total, worst, worst_spread,
                shapes=per_shape,
                cost_model={"source": model.source, "threads": model.threads, "calibrated": calibrated,
                            "run_threads": threads, "constants": {k: v for k, v in model.as_dict().items()
                                                                  if k not in ("extra", "source")}})


# ------------------------------------------------------------------------------------ memory
def _memory_probe(spec: dict[str, Any]) -> dict[str, Any]:
    """One CKConv forward + backward; peak bytes above the baseline (runs in a subprocess)."""
    from ..nn.continuous.ckconv import CKConv

    torch.set_num_threads(int(spec.get("threads", 1)))
    torch.manual_seed(int(spec.get("seed", 0)))
    device, C, L = spec["device"], int(spec["c"]), int(spec["length"])
    layer = CKConv(C, C, data_dim=1, causal=True, reference_size=L, device=device)
    x = torch.randn(1, C, L, device=device, requires_grad=True)
    return peak_memory(lambda: layer(x).sum().backward(), device)


def _measure_memory(c: int, length: int, device: str, threads: int, seed: int) -> float | None:
    spec = {"c": c, "length": length, "device": device, "threads": threads, "seed": seed}
    return probe_in_subprocess("groupconv.benchmarks.conv", spec)


# ------------------------------------------------------------------------------------ output
def _fmt(value: float | None, unit: str) -> str:
    if value is None:
        return "-"
    if unit == "B":
        return f"{value / 2**20:.1f} MiB"
    return format_seconds(value)


def format_table(result: dict[str, Any] | Sequence[dict[str, Any]]) -> str:
    """Render :func:`run_conv_benchmark`'s result (or its ``rows``) as a text table.

    A full result starts with the verdict rules (one per check); ``ratio`` shows the median of
    the per-round ratios and, in brackets, their quartiles.
    """
    rows = result["rows"] if isinstance(result, dict) else list(result)
    headers = ["check", "candidate", "baseline", "input", "median", "baseline median",
               "ratio [q1-q3]", "rule", "ok"]
    body = [[
        r["check"], r["candidate"], r["baseline"], "x".join(map(str, r["input"])),
        _fmt(r["median"], r["unit"]), _fmt(r["floor"], r["unit"]),
        format_ratio(r["ratio"], r.get("ratio_spread")), f"{r['target_op']} {r['target']:g}x",
        "-" if r["ok"] is None else ("ok" if r["ok"] else "NO"),
    ] for r in rows]
    grid = _format_grid(headers, body)
    if not isinstance(result, dict):
        return grid
    env = result.get("environment", {})
    present = [RULES[c] for c in dict.fromkeys(r["check"] for r in rows)]
    return "\n".join([
        format_rules(present), "", grid,
        f"\nfloor = {result.get('floor')}; device {result.get('device')}, {result.get('repeats')} "
        f"interleaved rounds ({result.get('direct_repeats')} for direct), medians, torch "
        f"{env.get('torch')}, {env.get('threads')} threads, load {env.get('load_average')}"
        + (", QUICK sizes (numbers not meaningful)" if result.get("quick") else "")])


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m groupconv.benchmarks.conv [--quick] [--device D] [--repeats R] [--json PATH] ...``
    (see :func:`~groupconv.benchmarks.common.suite_main`)."""
    return suite_main(
        argv, module="groupconv.benchmarks.conv",
        description="Continuous-kernel convolutions: FFT route, cached spectra, FlexConv cropping, "
                    "cost model, memory.",
        run=run_conv_benchmark, format_result=format_table, memory_probe=_memory_probe,
        options=(Option("--repeats", "repeats", "interleaved rounds (default 7, quick 2)"),
                 Option("--direct-repeats", "direct_repeats", "rounds of the direct conv (default 2)"),
                 Option("--length", "length", "sequence length (default 16384)"),
                 Option("--threads", "threads", "CPU threads (default 1)", default=1),
                 Option("--no-memory", "memory", "skip the memory subprocesses", kind="off"),
                 Option("--no-cost-model", "cost_model", "skip the cost-model check", kind="off"),
                 Option("--calibrate", "calibrate", "fit the cost model here first", kind="on")))


if __name__ == "__main__":
    sys.exit(main())
