"""``groupconv demo``: plain CNN vs C4 G-CNN vs continuous SO(2) G-CNN on rotated digits.

:func:`run_demo` trains the three networks of the ``rotated-digits`` experiment
(:mod:`groupconv.experiments.gconv_experiments`) on 100% and on 10% of the training split of
scikit-learn's bundled digits, rotated by random angles (no download), and reports for each:

* parameters;
* validation-selected test accuracy on the rotated test digits, with 100% and 10% of the data;
* the measured invariance error of the logits (trained at 100%): ``rot90`` = worst relative
  error over rotations of the test images by 90, 180 and 270 degrees (exact actions on the
  pixel grid, measured with :func:`groupconv.testing.equivariance_error`; 0 up to float
  rounding for both G-CNNs), and ``any angle`` = the mean relative change of the logits when
  each test digit is re-rendered at 16 other angles (interpolation makes this non-zero for
  every model, and smallest for the SO(2) G-CNN).

It writes a report folder: ``metrics.json`` (every number, configuration and timing),
``table.txt``, and PNG plots (``accuracy_vs_data.png``, ``output_under_rotation.png``,
``learned_kernels.png``; matplotlib's object API, no global backend change; skipped with a note
when matplotlib is not installed).

Sizes: the full demo takes a few CPU minutes on 2 cores (about 2 minutes on an idle machine);
``quick=True`` is a seconds-long smoke version with tiny models whose accuracies mean little.

Example:
    >>> import tempfile
    >>> res = run_demo(tempfile.mkdtemp(), device="cpu", quick=True, progress=False)  # doctest: +SKIP
    >>> sorted(res["models"])  # doctest: +SKIP
    ['c4', 'cnn', 'so2']
"""

from __future__ import annotations

import json
import math
import os
import sys
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch
from torch import nn

from ..data import render_digits, rotated_digits
from ..data.digits import load_digit_arrays
from ..groups import SO2
from ..spaces import ImageField, TrivialField
from ..testing import equivariance_error
from .gconv_experiments import DIGITS_MODELS, compare_rotated_digits
from .registry import get_experiment

__all__ = ["run_demo", "format_demo_table", "off_grid_summary", "measure_invariance", "DEMO_FRACTIONS"]

#: the training-data fractions of the demo.
DEMO_FRACTIONS: tuple[float, float] = (1.0, 0.1)
#: configuration of the full demo (on top of the ``rotated-digits`` defaults).
_FULL: dict[str, Any] = {"epochs": 30}
#: the quick (smoke) demo.
_QUICK: dict[str, Any] = {"epochs": 2}


class _Bar:
    """A text progress bar on stderr: redrawn in place on a terminal, one line per step otherwise."""

    def __init__(self, enabled: bool, stream: Any = None) -> None:
        self.enabled = bool(enabled)
        self.stream = stream if stream is not None else sys.stderr
        self.tty = bool(getattr(self.stream, "isatty", lambda: False)())

    def update(self, label: str, done: int, total: int, extra: str = "", end: bool = False) -> None:
        if not self.enabled:
            return
        width = 24
        fill = int(round(width * done / max(total, 1)))
        line = f"{label:<34} [{'#' * fill}{'.' * (width - fill)}] {done}/{total} {extra}"
        if self.tty:
            self.stream.write("\r" + line[:150].ljust(110) + ("\n" if end else ""))
        elif end:
            self.stream.write(line + "\n")
        self.stream.flush()

    def note(self, text: str) -> None:
        if self.enabled:
            self.stream.write(text + "\n")
            self.stream.flush()


def _resolve_device(device: str | torch.device | None) -> torch.device:
    if device is None:
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    dev = torch.device(device)
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise ValueError(f"device={str(device)!r} but torch sees no CUDA device; use device='cpu'")
    return dev


def measure_invariance(
    model: nn.Module,
    data: Any,
    num_images: int = 64,
    num_angles: int = 16,
    device: torch.device | str = "cpu",
    seed: int = 0,
) -> dict[str, float]:
    """Invariance errors of a classifier's logits on rotated-digits test images (eval mode).

    Returns ``rot90`` (worst relative error over the 90/180/270-degree rotations, measured by
    :func:`~groupconv.testing.equivariance_error` with exact pixel permutations) and
    ``any_angle`` (mean over ``num_angles`` random angles of
    ``||f(render(x, a + t)) - f(render(x, a))|| / ||f(render(x, a))||``: the digit re-rendered
    from its 8x8 source at another angle, one interpolation each).
    """
    model.eval()
    dev = torch.device(device)
    x = data.test.tensors[0][:num_images].to(dev)
    field = ImageField(SO2())
    errs = []
    for k in (1, 2, 3):
        g = torch.tensor([k * math.pi / 2], dtype=torch.float64)
        r = equivariance_error(model, x, g, field, TrivialField(), exact=True)
        errs.append(r.rel_error)
    src, _ = load_digit_arrays()
    idx = data.info["source_index"]["test"][:num_images]
    base = data.info["angles"]["test"][:num_images]
    gen = torch.Generator().manual_seed(seed)
    shifts = torch.rand(num_angles, generator=gen, dtype=torch.float64) * 2 * math.pi
    size = int(data.info["size"])
    with torch.no_grad():
        y0 = model(render_digits(src[idx], size, base).to(dev)).double()
        rel = []
        for t in shifts:
            y = model(render_digits(src[idx], size, base + t).to(dev)).double()
            rel.append(float((y - y0).norm() / y0.norm().clamp_min(1e-12)))
    return {"rot90": max(errs), "any_angle": sum(rel) / len(rel)}


def _rotation_curves(models: Mapping[str, nn.Module], data: Any, device: torch.device,
                     num_images: int = 64, steps: int = 73) -> dict[str, Any]:
    """Logit change and true-class probability vs an extra rotation angle (for the plot)."""
    src, labels = load_digit_arrays()
    idx = data.info["source_index"]["test"][:num_images]
    base = data.info["angles"]["test"][:num_images]
    size = int(data.info["size"])
    angles = torch.linspace(0, 2 * math.pi, steps, dtype=torch.float64)
    out: dict[str, Any] = {"angles_deg": [float(a) * 180 / math.pi for a in angles], "models": {}}
    for name, m in models.items():
        m.eval()
        rel, prob = [], []
        with torch.no_grad():
            y0 = m(render_digits(src[idx], size, base).to(device)).double()
            for a in angles:
                y = m(render_digits(src[idx], size, base + a).to(device)).double()
                rel.append(float((y - y0).norm() / y0.norm().clamp_min(1e-12)))
                p = torch.softmax(y, dim=1)[0, int(labels[idx[0]])]
                prob.append(float(p))
        out["models"][name] = {"relative_logit_change": rel, "true_class_probability_digit0": prob}
    return out


def _plots(out: Path, rows: list[dict[str, Any]], curves: dict[str, Any],
           kernels: Mapping[str, torch.Tensor], result: Mapping[str, Any] | None = None) -> list[str]:
    try:
        from matplotlib.figure import Figure
    except ImportError:
        return []
    written = []
    # accuracy vs data fraction
    fig = Figure(figsize=(5.5, 4))
    ax = fig.subplots()
    for m, label in DIGITS_MODELS.items():
        pts = sorted((r["train_fraction"], r["test_accuracy"]) for r in rows if r["model"] == m)
        if pts:
            ax.plot([p[0] * 100 for p in pts], [100 * p[1] for p in pts], marker="o", label=label)
    ax.set_xscale("log")
    ax.set_xlabel("training data used (%)")
    ax.set_ylabel("test accuracy on rotated digits (%)")
    ax.set_title("validation-selected test accuracy")
    ax.grid(alpha=0.3)
    ax.legend()
    fig.tight_layout()
    fig.savefig(out / "accuracy_vs_data.png", dpi=100)
    written.append("accuracy_vs_data.png")
    # output under rotation
    fig = Figure(figsize=(10, 4))
    ax0, ax1 = fig.subplots(1, 2)
    a = curves["angles_deg"]
    for m, c in curves["models"].items():
        ax0.plot(a, c["relative_logit_change"], label=DIGITS_MODELS.get(m, m))
        ax1.plot(a, c["true_class_probability_digit0"], label=DIGITS_MODELS.get(m, m))
    ax0.set_xlabel("extra rotation of the test digits (degrees)")
    ax0.set_ylabel("relative change of the logits")
    summary = off_grid_summary(result) if result is not None else []
    ax0.set_title("output under rotation (64 test digits)" + (f"\n{summary[0]}" if summary else ""),
                  fontsize=9)
    for v in (45, 135, 225, 315):  # the SO(2)-8 grid's angles that do not permute pixels
        ax0.axvline(v, color="0.8", lw=0.8, ls=":")
    ax1.set_xlabel("rotation of one test digit (degrees)")
    ax1.set_ylabel("probability of the true class")
    ax1.set_ylim(-0.02, 1.02)
    for axis in (ax0, ax1):
        axis.set_xticks(range(0, 361, 90))
        axis.grid(alpha=0.3)
        axis.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(out / "output_under_rotation.png", dpi=100)
    written.append("output_under_rotation.png")
    # learned kernels of the first layer: rows = models (first channels), columns = group grid
    n_ch = 3
    cols = max(int(k.shape[1]) for k in kernels.values())
    fig = Figure(figsize=(1.1 * cols + 1, 1.1 * n_ch * len(kernels) + 0.5))
    axes = fig.subplots(n_ch * len(kernels), cols, squeeze=False)
    for r, (m, k) in enumerate(kernels.items()):
        k = k.detach().cpu()
        for c in range(n_ch):
            for j in range(cols):
                axis = axes[r * n_ch + c][j]
                axis.set_xticks([])
                axis.set_yticks([])
                if c < k.shape[0] and j < k.shape[1]:
                    w = k[c, j, 0]
                    vmax = float(k[c].abs().max()) or 1.0
                    axis.imshow(w.numpy(), cmap="RdBu_r", vmin=-vmax, vmax=vmax)
                else:
                    axis.set_axis_off()
                if j == 0:
                    axis.set_ylabel(f"{m} #{c}", fontsize=7)
    fig.suptitle("first-layer kernels (columns: the group grid)", fontsize=9)
    fig.tight_layout()
    fig.savefig(out / "learned_kernels.png", dpi=100)
    written.append("learned_kernels.png")
    return written


def format_demo_table(result: Mapping[str, Any]) -> str:
    """The demo's printed table from :func:`run_demo`'s result."""
    from ..benchmarks.common import format_table

    fr = result["fractions"]
    headers = ["model", "params"] + [f"test acc {100 * f:g}% data" for f in fr] + [
        "invariance err rot90", "invariance err any angle"]
    body = []
    for info in result["models"].values():
        accs = [info["test_accuracy"].get(f"{f:g}") for f in fr]
        body.append([info["label"], info["params"]]
                    + ["-" if a is None else f"{100 * a:.1f}%" for a in accs]
                    + [f"{info['invariance']['rot90']:.1e}", f"{info['invariance']['any_angle']:.3f}"])
    return format_table(headers, body) + "".join(f"\n{line}" for line in off_grid_summary(result))


def _curve_at(curves: Mapping[str, Any], model: str, angle_deg: float) -> float | None:
    c = curves.get("models", {}).get(model)
    if not c:
        return None
    angles = curves["angles_deg"]
    i = min(range(len(angles)), key=lambda j: abs(angles[j] - angle_deg))
    return float(c["relative_logit_change"][i])


def off_grid_summary(result: Mapping[str, Any]) -> list[str]:
    """Lines saying how the SO(2) G-CNN fares between the 90-degree angles (issue 11): its
    any-angle logit change relative to the C4 G-CNN's, and whether its curve dips at 45 degrees
    (an element of its 8-sample grid): lower there than at 25 degrees (between grid angles).

    Example:
        >>> res = {"models": {"so2": {"invariance": {"any_angle": 0.1}},
        ...                   "c4": {"invariance": {"any_angle": 0.3}}}}
        >>> off_grid_summary(res)
        ["any-angle logit change, SO(2) / C4: 0.33 (at most half of C4's)"]
    """
    models = result.get("models", {})
    if "so2" not in models or "c4" not in models:
        return []
    so2, c4 = models["so2"]["invariance"]["any_angle"], models["c4"]["invariance"]["any_angle"]
    lines = [f"any-angle logit change, SO(2) / C4: {so2 / max(c4, 1e-12):.2f} "
             f"({'at most' if so2 <= 0.5 * c4 else 'more than'} half of C4's)"]
    curves = result.get("output_under_rotation") or {}
    v45, v25 = _curve_at(curves, "so2", 45.0), _curve_at(curves, "so2", 25.0)
    c45 = _curve_at(curves, "c4", 45.0)
    if v45 is not None and v25 is not None and c45 is not None:
        dip = "dips" if v45 < v25 else "does not dip"
        lines.append(f"SO(2) curve {dip} at 45 deg: {v45:.3f} (25 deg: {v25:.3f}; C4 at 45 deg: {c45:.3f})")
    return lines


def run_demo(
    out_dir: str | os.PathLike = "groupconv-demo",
    device: str | torch.device | None = None,
    seed: int = 0,
    quick: bool = False,
    progress: bool = True,
    *,
    threads: int | None = None,
) -> dict[str, Any]:
    """Train plain CNN, C4 G-CNN and SO(2) G-CNN on rotated digits; print and save the report.

    Args:
        out_dir: report folder (created; files are overwritten).
        device: ``"cpu"``, ``"cuda"``... (default: CUDA when available).
        seed: seeds the data split, the rotations and the initialisations.
        quick: a seconds-long smoke version (tiny models, 2 epochs).
        progress: progress bars on stderr and the table on stdout.
        threads: CPU threads during the run (default: torch's setting, or 1 when the machine is
            busier than its core count, where more threads only contend); restored afterwards.

    Returns:
        A JSON-ready dict: ``models`` (per model: ``label``, ``params``, ``test_accuracy`` by
        fraction, ``invariance``), ``rows`` (one per run), ``fractions``, ``config``,
        ``files`` (written paths), ``table`` and ``time_s``.
    """
    if isinstance(seed, bool) or not isinstance(seed, int) or seed < 0:
        raise ValueError(f"seed must be a non-negative int, got {seed!r}")
    t0 = time.perf_counter()
    dev = _resolve_device(device)
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    old_threads = torch.get_num_threads()
    if threads is None and dev.type == "cpu" and hasattr(os, "getloadavg"):
        threads = 1 if os.getloadavg()[0] >= (os.cpu_count() or 1) else None
    if threads is not None:
        torch.set_num_threads(int(threads))
    bar = _Bar(progress)
    try:
        config = {**(_QUICK if quick else _FULL), "seed": seed, "data_seed": seed}
        fractions = DEMO_FRACTIONS
        total = len(fractions) * len(DIGITS_MODELS)
        trained: dict[str, nn.Module] = {}
        invariance: dict[str, dict[str, float]] = {}
        size = int(get_experiment("rotated-digits").config(quick=quick, overrides=config)["size"])
        data_full = rotated_digits(size=size, rotations="random", seed=seed)  # what the models see
        bar.note(f"groupconv demo: rotated scikit-learn digits ({data_full.sizes['train']} train / "
                 f"{data_full.sizes['val']} val / {data_full.sizes['test']} test, {size}x{size}), "
                 f"device {dev}, {torch.get_num_threads()} thread(s){', quick' if quick else ''}")
        state = {"run": 0}

        def epoch_cb(trainer: Any, rec: Any) -> None:
            acc = "" if rec.val_metric is None else f"val acc {100 * rec.val_metric:.1f}%"
            bar.update(f"[{state['run'] + 1}/{total}] {trainer.name}", rec.epoch, trainer.epochs, acc)

        def run_cb(m: str, frac: float, net: nn.Module, res: Any) -> None:
            state["run"] += 1
            bar.update(f"[{state['run']}/{total}] {res.name}", len(res.history), len(res.history),
                       f"test acc {100 * (res.test_metric or 0):.1f}% ({res.total_time_s:.0f}s)", end=True)
            if frac == fractions[0]:
                trained[m] = net
                invariance[m] = measure_invariance(net, data_full, num_images=16 if quick else 64,
                                                   num_angles=4 if quick else 16, device=dev, seed=seed)

        extra = {"max_steps": 4} if quick else {}
        rows = compare_rotated_digits(
            tuple(DIGITS_MODELS), fractions, quick=quick, config=config, callback=run_cb,
            device=dev, progress=False, callbacks=[epoch_cb], **extra,
        )
        bar.note("measuring outputs under rotation and plotting ...")
        curves = _rotation_curves(trained, data_full, dev, num_images=16 if quick else 64,
                                  steps=13 if quick else 73)
        kernels = {m: net.lifting_kernels() for m, net in trained.items()}
        models: dict[str, Any] = {}
        for m, label in DIGITS_MODELS.items():
            mine = [r for r in rows if r["model"] == m]
            models[m] = {
                "label": label,
                "params": mine[0]["params"],
                "test_accuracy": {f"{r['train_fraction']:g}": r["test_accuracy"] for r in mine},
                "invariance": invariance[m],
            }
        files = _plots(out, rows, curves, kernels,
                       {"models": models, "output_under_rotation": curves})
        result: dict[str, Any] = {
            "experiment": "rotated-digits",
            "fractions": list(fractions),
            "models": models,
            "rows": rows,
            "output_under_rotation": curves,
            "config": {**config, "quick": quick, "device": str(dev), "threads": torch.get_num_threads()},
            "data_sizes": data_full.sizes,
        }
        result["table"] = format_demo_table(result)
        result["time_s"] = time.perf_counter() - t0
        result["files"] = [str(out / f) for f in ["metrics.json", "table.txt", *files]]
        (out / "table.txt").write_text(result["table"] + "\n")
        (out / "metrics.json").write_text(json.dumps(result, indent=2, default=str) + "\n")
        if not files:
            bar.note("matplotlib is not installed: no plots (pip install matplotlib)")
        if progress:
            print(result["table"])
            print(f"\nreport written to {out}/ ({', '.join(Path(f).name for f in result['files'])}) "
                  f"in {result['time_s']:.0f}s")
        return result
    finally:
        torch.set_num_threads(old_threads)
