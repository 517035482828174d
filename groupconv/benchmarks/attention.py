"""``groupconv bench attention``: cost of attentive group convolutions, as ratios from one run.

Two measurements (the issue's targets in brackets):

* **training step** of the alpha-P4CNN (:func:`groupconv.models.attentive.alpha_p4cnn`, full
  form and fA form, channel + spatial attention, 7x7 spatial kernels as in the paper) against
  the P4CNN (:class:`groupconv.models.gcnn.GCNN`) of equal width (C4, 6 layers of 10 fields,
  a 2x2 max pool after layer 1, the same invariant readout) on the same input: forward,
  cross-entropy, backward and an Adam step on a rotMNIST-sized batch (64 x 1 x 28 x 28),
  interleaved rounds, medians (target: alpha-P4CNN / P4CNN <= 3 for both forms; the
  reference took ~15x). On the CPU the suite runs with ``threads`` torch threads (default 1:
  shared machines make multi-threaded ratios noisy), restored afterwards.
* **peak memory** of one full attentive G-conv against the plain G-conv on the same input,
  forward + backward (target <= 4x). Two methods, both reported:
  *analytic* -- element counts of the largest tensors
  (:func:`groupconv.nn.attention.attentive.attention_memory_elements`, including the naive
  ``B C_out N C_in N_in X Y`` tensor the reference materialised);
  *empirical* -- on CUDA ``torch.cuda.max_memory_allocated`` above the memory held before the
  call; on CPU each candidate runs in a fresh subprocess: the peak RSS (``VmHWM``) is reset
  through ``/proc/self/clear_refs`` after the input, parameters and imports exist, and its rise
  over ``VmRSS`` during one forward + backward is read (``ru_maxrss`` delta where that is not
  available; allocator reuse makes it an estimate to within a few hundred kB).

Verdicts: one rule per row (:data:`RULES`, printed above the tables), ``ok`` follows from the
ratio the row shows: ``step`` (alpha-P4CNN / P4CNN step time, per form; the median of the
per-round ratios, their spread in ``ratio_spread``), ``memory`` (empirical attentive / plain peak
per attentive form) and ``memory-analytic`` (the analytic full / plain count).

Example:
    >>> res = run_attention_benchmark(quick=True, memory=False)
    >>> sorted(res["step"]["ratios"])
    ['alpha_p4cnn_fA', 'alpha_p4cnn_full']
    >>> [(v["check"], v["what"]) for v in res["verdicts"]]
    [('step', 'alpha_p4cnn_full'), ('step', 'alpha_p4cnn_fA')]
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

__all__ = ["run_attention_benchmark", "format_table", "main", "RULES", "STEP_TARGET", "MEMORY_TARGET"]

STEP_TARGET = 3.0
MEMORY_TARGET = 4.0

#: the verdict rule of every check (one per row of ``verdicts``).
RULES: dict[str, Rule] = {r.check: r for r in (
    Rule("step", "attentive / P4CNN step time", "<=", STEP_TARGET),
    Rule("memory", "attentive / plain peak memory", "<=", MEMORY_TARGET),
    Rule("memory-analytic", "attentive / plain analytic elements", "<=", MEMORY_TARGET),
)}


def _models(quick: bool, device: str) -> dict[str, torch.nn.Module]:
    from ..models.attentive import alpha_p4cnn
    from ..models.gcnn import GCNN

    kw: dict[str, Any] = {"channels": (4, 4), "pool_after": (0,)} if quick else {}
    torch.manual_seed(0)
    return {
        "p4cnn": GCNN(1, 10, **kw).to(device),
        "alpha_p4cnn_full": alpha_p4cnn(**kw).to(device),
        "alpha_p4cnn_fA": alpha_p4cnn(form="feature", **kw).to(device),
    }


def _step(net: torch.nn.Module, x: torch.Tensor, y: torch.Tensor):
    opt = torch.optim.Adam(net.parameters(), lr=1e-3)

    def run() -> None:
        opt.zero_grad(set_to_none=True)
        torch.nn.functional.cross_entropy(net(x), y).backward()
        opt.step()

    return run


def _layer(kind: str, c: int, device: str) -> torch.nn.Module:
    from ..groups import CyclicGroup
    from ..nn.attention.attentive import AttentiveGroupConv
    from ..nn.group.gconv import GroupConv

    torch.manual_seed(0)
    G = CyclicGroup(4)
    if kind == "plain":
        return GroupConv(c, c, G, 3, padding=1).to(device)
    if kind == "full_mean_max":
        return AttentiveGroupConv(c, c, G, 3, padding=1, statistics=("mean", "max")).to(device)
    return AttentiveGroupConv(c, c, G, 3, padding=1, form="full" if kind == "full" else "feature").to(device)


def _memory_probe(spec: dict[str, Any]) -> dict[str, Any]:
    """One forward + backward of a layer; peak bytes above the baseline (run in a subprocess)."""
    device = spec["device"]
    layer = _layer(spec["kind"], spec["c"], device)
    x = torch.randn(spec["b"], spec["c"], 4, spec["s"], spec["s"], device=device, requires_grad=True)
    return peak_memory(lambda: layer(x).sum().backward(), device)


def _measure_memory(kind: str, b: int, c: int, s: int, device: str) -> float | None:
    spec = {"kind": kind, "b": b, "c": c, "s": s, "device": device}
    return probe_in_subprocess("groupconv.benchmarks.attention", spec)


def run_attention_benchmark(quick: bool = False, device: str = "cpu", *, repeats: int | None = None,
                            memory: bool = True, threads: int | None = 1) -> dict[str, Any]:
    """Run the suite; returns ``{"env", "step", "memory", "verdicts", "rules", "targets"}``
    (JSON-ready). ``step["ratios"]`` are medians of per-round ratios (``step["spreads"]`` their
    spread); ``verdicts`` hold one row per check (``check, what, ratio, ratio_spread, rule,
    target, ok``).

    ``quick``: tiny shapes and one round (a smoke test, numbers meaningless). ``threads``:
    torch CPU threads during the run (``None``: leave the current setting).
    """
    if threads is not None:
        if isinstance(threads, bool) or not isinstance(threads, int) or threads < 1:
            raise ValueError(f"threads must be a positive int or None, got {threads!r}")
    before = torch.get_num_threads()
    if threads is not None:
        torch.set_num_threads(threads)
    try:
        return _run(quick, device, repeats, memory)
    finally:
        torch.set_num_threads(before)


def _run(quick: bool, device: str, repeats: int | None, memory: bool) -> dict[str, Any]:
    from ..nn.attention.attentive import attention_memory_elements

    dev = str(torch.device(device))
    b, s = (4, 8) if quick else (64, 28)
    reps = repeats or (1 if quick else 5)
    nets = _models(quick, dev)
    g = torch.Generator().manual_seed(0)
    x = torch.randn(b, 1, s, s, generator=g).to(dev)
    y = torch.randint(0, 10, (b,), generator=g).to(dev)
    t = time_interleaved({k: _step(n, x, y) for k, n in nets.items()}, repeats=reps,
                         warmup=0 if quick else 1, device=dev)
    per_round = {k: timing_ratio(v, t["p4cnn"]) for k, v in t.items() if k != "p4cnn"}
    step = {"batch": b, "size": s, "timings": {k: v.as_dict() for k, v in t.items()},
            "ratios": {k: r for k, (r, _) in per_round.items()},
            "spreads": {k: sp for k, (_, sp) in per_round.items()}}
    verdicts = [verdict(RULES["step"], r, sp, what=k) for k, (r, sp) in per_round.items()]
    mem: dict[str, Any] = {}
    if memory:
        mb, mc, ms = (2, 4, 8) if quick else (32, 16, 32)
        an = attention_memory_elements(mb, mc, 4, mc, 4, (ms, ms), (ms, ms), (3, 3))
        mem = {"batch": mb, "channels": mc, "size": ms, "analytic_elements": an,
               "analytic_ratio_full_vs_plain": ratio(an["input"] + an["output"] + an["extra"],
                                                     an["input"] + an["output"]),
               "naive_vs_output": ratio(an["naive"], an["output"])}
        kinds = ("plain", "full", "full_mean_max", "feature")
        peaks = {k: _measure_memory(k, mb, mc, ms, dev) for k in kinds}
        mem["empirical_bytes"] = peaks
        mem["empirical_ratios"] = {k: ratio(v, peaks["plain"]) for k, v in peaks.items() if k != "plain"}
        cpu = "subprocess peak-RSS (VmHWM) delta"
        mem["method"] = "cuda max_memory_allocated" if dev.startswith("cuda") else cpu
        verdicts += [verdict(RULES["memory"], r, None, what=k) for k, r in mem["empirical_ratios"].items()]
        verdicts.append(verdict(RULES["memory-analytic"], mem["analytic_ratio_full_vs_plain"], None,
                                what="full"))
    return {"env": environment_info(dev), "quick": quick, "step": step, "memory": mem,
            "verdicts": verdicts, "rules": [r.as_dict() for r in RULES.values()],
            "targets": {"step_ratio_max": STEP_TARGET, "memory_ratio_max": MEMORY_TARGET}}


def format_table(res: dict[str, Any]) -> str:
    """Human-readable tables of :func:`run_attention_benchmark`'s result."""
    st = res["step"]
    rows = []
    for k, v in st["timings"].items():
        r = st["ratios"].get(k)
        rows.append([k, format_seconds(v["median_s"]), "-" if r is None else f"{r:.2f}"])
    env = res.get("env", {})
    out = [format_verdicts(res["verdicts"], RULES), "",
           f"training step (fwd + bwd + Adam), batch {st['batch']} x 1 x {st['size']}^2, "
           f"{env.get('threads')} thread(s), torch {env.get('torch')}, load {env.get('load_average')}",
           _grid(["model", "median", "ratio vs p4cnn"], rows)]
    mem = res.get("memory") or {}
    if mem:
        rows = []
        for k, v in mem["empirical_bytes"].items():
            r = mem["empirical_ratios"].get(k)
            rows.append([k, "-" if v is None else f"{v / 2**20:.1f} MiB", "-" if r is None else f"{r:.2f}"])
        out += ["", f"peak memory, one C4 layer fwd+bwd, B={mem['batch']} C={mem['channels']} "
                f"{mem['size']}^2 ({mem['method']})",
                _grid(["layer", "peak", "ratio vs plain"], rows),
                f"analytic full/plain: {mem['analytic_ratio_full_vs_plain']:.2f}; naive per-channel "
                f"tensor / output: {mem['naive_vs_output']:.0f}x"]
    return "\n".join(out)


def main(argv: list[str] | None = None) -> int:
    """``python -m groupconv.benchmarks.attention [--quick] [--device D] [--json P] [--repeats R]
    [--threads T]`` (see :func:`~groupconv.benchmarks.common.suite_main`)."""
    return suite_main(
        argv, module="groupconv.benchmarks.attention", description=__doc__.splitlines()[0],
        run=run_attention_benchmark, format_result=format_table, memory_probe=_memory_probe,
        options=(Option("--repeats", "repeats", "interleaved rounds"),
                 Option("--threads", "threads", "torch CPU threads (default 1)", default=1)))


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main())
