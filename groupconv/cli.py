"""The ``groupconv`` command (also ``python -m groupconv``).

Subcommands:

* ``groupconv check [TARGET ...]`` -- run the verification kit over every built-in group and the
  custom-group routes (generators, sympy, a hand-written finite group; each also through a
  lifting layer and ``assert_equivariant``) on every available device and print a table
  (group, property, examples, worst error, pass/fail). Target names are case-insensitive.
* ``groupconv bench [groups|all]`` -- the benchmark suite: ratios measured in one run, JSON out.

Exit status is non-zero when a check fails or the arguments are wrong.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path

__all__ = ["main", "build_parser"]

BENCH_SUITES = ("groups", "conv", "gconv", "separable", "attention", "gsa", "points")
#: suites that train networks (minutes; not part of ``bench all``).
TRAINING_BENCH_SUITES = ("train-vs-escnn",)


class CLIError(Exception):
    """A user-facing error: printed as one line, exit status 2."""


def _devices(requested: str) -> list[str]:
    import torch

    if requested == "all":
        return ["cpu"] + (["cuda"] if torch.cuda.is_available() else [])
    kind = requested.split(":", 1)[0]
    index = requested.split(":", 1)[1] if ":" in requested else "0"
    if kind not in ("cpu", "cuda", "mps") or not index.isdigit() or (kind == "cpu" and ":" in requested):
        raise CLIError(f"--device {requested}: expected cpu, cuda or cuda:N (check also takes all)")
    if kind == "mps" and not (hasattr(torch.backends, "mps") and torch.backends.mps.is_available()):
        raise CLIError(f"--device {requested}: torch sees no MPS device; use --device cpu")
    if requested.startswith("cuda") and not torch.cuda.is_available():
        raise CLIError(
            f"--device {requested}: CUDA was asked for but torch sees no CUDA device "
            f"(torch {torch.__version__}); use --device cpu"
        )
    return [requested]


def _print_table(headers: Sequence[str], rows: Sequence[Sequence[object]], out=None) -> None:
    out = out or sys.stdout
    cells = [[str(c) for c in r] for r in rows]
    widths = [max([len(h)] + [len(r[i]) for r in cells]) for i, h in enumerate(headers)]
    line = "  ".join(h.ljust(w) for h, w in zip(headers, widths))
    print(line, file=out)
    print("  ".join("-" * w for w in widths), file=out)
    for r in cells:
        print("  ".join(c.ljust(w) for c, w in zip(r, widths)), file=out)


def _check_targets(requested: Sequence[str]) -> dict[str, object]:
    """Resolve ``groupconv check`` targets (case-insensitive) to ``{display name: group}``."""
    from .groups.catalogue import catalogue
    from .groups.custom_examples import custom_catalogue

    builtin, custom = catalogue(), custom_catalogue()
    by_key = {name.lower(): (name, group) for name, group in {**builtin, **custom}.items()}
    targets = list(requested) or ["all"]
    selected: dict[str, object] = {}
    for t in targets:
        key = t.lower()
        if key in ("all", "groups"):
            selected.update(builtin)
        if key in ("all", "custom"):
            selected.update(custom)
        if key in ("all", "groups", "custom"):
            continue
        if key in by_key:
            name, group = by_key[key]
            selected[name] = group
        elif f"custom:{key}" in by_key:
            name, group = by_key[f"custom:{key}"]
            selected[name] = group
        else:
            known = ", ".join(["all", "groups", "custom", *builtin, *custom])
            raise CLIError(f"unknown check target {t!r}; known targets (any case): {known}")
    return selected


def _layer_row(name: str, group: object, device: str) -> dict[str, object]:
    """A custom-group route through a lifting layer and ``assert_equivariant`` (exact elements)."""
    import torch

    from .nn import LiftingConv
    from .testing import EquivarianceError, assert_equivariant

    torch.manual_seed(0)
    kw = {} if group.is_finite else {"num_elements": 4, "kernel_net": "siren"}
    rec: dict[str, object] = {"group": name, "property": "lifting_equivariance", "dtype": "torch.float32",
                              "device": device, "examples": 0, "worst_error": None, "tolerance": None}
    try:
        layer = LiftingConv(1, 2, group, 3, padding=1, **kw).to(device).eval()
        report = assert_equivariant(layer, torch.randn(2, 1, 9, 11, device=device))
        worst = max(report.rows, key=lambda r: r.abs_error / r.tolerance)
        rec.update(examples=len(report.rows), worst_error=worst.abs_error, tolerance=worst.tolerance,
                   status="pass", message="")
    except (EquivarianceError, ValueError, TypeError) as err:
        rec.update(status="FAIL", message=f"{type(err).__name__}: {err}")
    return rec


def _cmd_check(args: argparse.Namespace) -> int:
    import torch

    from .testing import check_group

    selected = _check_targets(args.targets)
    devices = _devices(args.device)
    print(f"groupconv check: {len(selected)} groups on {', '.join(devices)} "
          f"({args.examples} examples per property)", file=sys.stderr)
    records: list[dict[str, object]] = []
    t_start = time.perf_counter()
    for i, (name, group) in enumerate(selected.items(), 1):
        t0 = time.perf_counter()
        custom = name.startswith("custom:")
        # the custom routes (exercised in depth by the test suite) run in float64 with half the
        # examples, plus one lifting-layer row per device, so the command keeps its time budget
        report = check_group(group, devices=devices, raise_on_failure=False,
                             max_examples=max(5, args.examples // 2) if custom else args.examples,
                             **({"dtypes": (torch.float64,)} if custom else {}))
        for r in report.rows:
            status = "n/a" if r.skipped else ("pass" if r.passed else "FAIL")
            records.append({"group": name, "property": r.property, "dtype": str(r.dtype),
                            "device": r.device, "examples": r.examples,
                            "worst_error": r.worst_error, "tolerance": r.tolerance,
                            "status": status, "message": r.message})
        if custom:
            records += [_layer_row(name, group, dev) for dev in devices]
        print(f"  [{i}/{len(selected)}] {name}: {time.perf_counter() - t0:.1f}s", file=sys.stderr)
    rows = [[r["group"], r["property"], str(r["dtype"]).replace("torch.", ""), r["device"], r["examples"],
             "-" if r["worst_error"] is None else f"{r['worst_error']:.2e}",
             "-" if r["tolerance"] is None else f"{r['tolerance']:.0e}", r["status"]] for r in records]
    _print_table(["group", "property", "dtype", "device", "examples", "worst error", "tol", "result"], rows)
    n_failed = sum(1 for r in records if r["status"] == "FAIL")
    n_checked = sum(1 for r in records if r["status"] != "n/a")
    print(f"\n{n_checked - n_failed} passed, {n_failed} failed "
          f"({len(records) - n_checked} not applicable) in {time.perf_counter() - t_start:.1f}s")
    if args.json:
        Path(args.json).write_text(json.dumps(records, indent=2))
    return 1 if n_failed else 0


def _cmd_bench(args: argparse.Namespace) -> int:
    suites = list(BENCH_SUITES) if args.suite == "all" else [args.suite]
    device = _devices(args.device)[0]
    if args.batch is not None and args.batch < 1:
        raise CLIError(f"--batch must be >= 1, got {args.batch}")
    if args.json:  # before minutes of benchmarking, not after
        _check_writable(Path(args.json), "--json")
    if args.threads is not None:
        if args.threads < 1:
            raise CLIError(f"--threads must be >= 1, got {args.threads}")
        import torch

        torch.set_num_threads(args.threads)
    results: dict[str, object] = {}
    format_table: Callable[..., str]  # each suite's own table formatter
    for suite in suites:
        if suite == "groups":
            from .benchmarks.groups import format_table, run_groups_benchmark

            batch = args.batch if args.batch is not None else (10_000 if args.quick else 100_000)
            res = run_groups_benchmark(batch=batch, device=device, quick=args.quick)
        elif suite == "conv":
            from .benchmarks.conv import format_table, run_conv_benchmark

            res = run_conv_benchmark(quick=args.quick, device=device, threads=args.threads or 1,
                                     calibrate=args.calibrate)
        elif suite == "gconv":
            from .benchmarks.gconv import format_table, run_gconv_benchmark

            res = run_gconv_benchmark(quick=args.quick, device=device)
        elif suite == "separable":
            from .benchmarks.separable import format_table, run_separable_benchmark

            res = run_separable_benchmark(quick=args.quick, device=device, threads=args.threads)
        elif suite == "attention":
            from .benchmarks.attention import format_table, run_attention_benchmark

            res = run_attention_benchmark(quick=args.quick, device=device)
        elif suite == "gsa":
            from .benchmarks.gsa import format_table, run_gsa_benchmark

            res = run_gsa_benchmark(quick=args.quick, device=device)
        elif suite == "points":
            from .benchmarks.points import format_table, run_points_benchmark

            res = run_points_benchmark(quick=args.quick, device=device)
        elif suite == "train-vs-escnn":
            from .benchmarks.train_vs_escnn import format_table, run_train_vs_escnn

            if args.seeds is not None and args.seeds < 1:
                raise CLIError(f"--seeds must be >= 1, got {args.seeds}")
            if args.epochs is not None and args.epochs < 1:
                raise CLIError(f"--epochs must be >= 1, got {args.epochs}")
            seeds = range(args.seeds if args.seeds is not None else (1 if args.quick else 3))
            res = run_train_vs_escnn(seeds=tuple(seeds), epochs=args.epochs, quick=args.quick, device=device)
        else:  # pragma: no cover - argparse restricts the choices
            raise CLIError(f"unknown benchmark suite {suite!r}")
        print(f"\n== groupconv bench {suite} ==")
        print(format_table(res))
        results[suite] = res
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=2, default=str))
        print(f"wrote {args.json}", file=sys.stderr)
    return 0


def _cmd_demo(args: argparse.Namespace) -> int:
    from .experiments.demo import run_demo

    device = _devices(args.device)[0] if args.device else None
    if args.seed < 0:
        raise CLIError(f"--seed must be a non-negative integer, got {args.seed}")
    result = run_demo(out_dir=args.out, device=device, seed=args.seed, quick=args.quick,
                      progress=not args.no_progress)
    if args.no_progress:  # run_demo prints the table itself when progress is on
        print(result["table"])
        print(f"report written to {args.out}/")
    return 0


def _parse_override(text: str) -> tuple[str, object]:
    if "=" not in text:
        raise CLIError(f"override {text!r} must look like KEY=VALUE (e.g. epochs=5 lr=1e-3)")
    key, raw = text.split("=", 1)
    try:
        value: object = json.loads(raw)
    except json.JSONDecodeError:
        value = raw
    return key.strip(), value


#: training-loop settings (the ``config`` of ``metrics.json``) that KEY=VALUE may override even
#: when the experiment's own configuration does not list them; they go to ``fit``.
FIT_OVERRIDE_KEYS: dict[str, type | tuple[type, ...]] = {
    "epochs": int, "lr": float, "weight_decay": float, "batch_size": int, "optimizer": str,
    "scheduler": (str, type(None)), "warmup_steps": int, "seed": int, "max_steps": (int, type(None)),
    "grad_clip": (float, type(None)), "checkpoint_every": int,
}


def _typed(key: str, value: object, expected: object) -> object:
    """``value`` checked against ``expected`` (a type, a tuple of types, or a default value whose
    type is used); a one-line CLIError naming ``key`` otherwise. Lists and dicts pass as given."""
    if isinstance(expected, tuple):
        types = expected
    else:
        types = (expected,) if isinstance(expected, type) else (type(expected),)

    def bad(what: str) -> CLIError:
        return CLIError(f"override {key}={json.dumps(value)}: expected {what}, "
                        f"got {type(value).__name__} {value!r}")

    if value is None or (isinstance(value, str) and value.lower() in ("none", "null")):
        if type(None) in types:
            return None
        raise bad("a value")
    if bool in types:
        if isinstance(value, bool):
            return value
        raise bad("true or false")
    if isinstance(value, bool) and (int in types or float in types):
        raise bad("a number")
    if int in types:
        if isinstance(value, int):
            return value
        if float in types and isinstance(value, float):
            return value
        raise bad("an int")
    if float in types:
        if isinstance(value, (int, float)):
            return float(value)
        raise bad("a number")
    if str in types and not isinstance(value, str):
        raise bad("a string")
    return value


def _check_writable(path: Path, flag: str) -> None:
    if path.is_dir():
        raise CLIError(f"{flag} {path}: is a directory, expected a file path")
    parent = path.parent if str(path.parent) else Path(".")
    if not parent.is_dir():
        raise CLIError(f"{flag} {path}: folder {parent} does not exist")
    if not os.access(parent, os.W_OK) or (path.exists() and not os.access(path, os.W_OK)):
        raise CLIError(f"{flag} {path}: not writable")


def _cmd_train(args: argparse.Namespace) -> int:
    from .experiments import get_experiment, list_experiments, plot_history, run_experiment

    if args.list or args.experiment is None:
        for name in list_experiments():
            print(f"{name:24s} {get_experiment(name).description}")
        return 0 if args.list else 2
    known = list_experiments()
    if args.experiment not in known:
        raise CLIError(f"unknown experiment {args.experiment!r}; known experiments: {', '.join(known)}")
    config: dict[str, object] = {}
    if args.config:
        path = Path(args.config)
        if not path.is_file():
            raise CLIError(f"--config {args.config}: no such file")
        try:
            loaded = json.loads(path.read_text())
        except json.JSONDecodeError as exc:
            raise CLIError(f"--config {args.config}: not valid JSON ({exc})") from exc
        if not isinstance(loaded, dict):
            raise CLIError(f"--config {args.config}: expected a JSON object, got {type(loaded).__name__}")
        config.update(loaded)
    for item in args.overrides:
        key, value = _parse_override(item)
        config[key] = value
    if args.seed is not None:
        config["seed"] = args.seed
    defaults = get_experiment(args.experiment).config(quick=args.quick)
    fit_kwargs: dict[str, object] = {}
    for key in list(config):
        if key in defaults:
            if defaults[key] is not None:
                config[key] = _typed(key, config[key], FIT_OVERRIDE_KEYS.get(key, defaults[key]))
        elif key in FIT_OVERRIDE_KEYS:  # a training-loop setting the experiment does not list
            fit_kwargs[key] = _typed(key, config.pop(key), FIT_OVERRIDE_KEYS[key])
        else:
            known = sorted(set(defaults) | set(FIT_OVERRIDE_KEYS))
            raise CLIError(f"experiment {args.experiment!r} has no config key {key!r}; known keys: "
                           f"{', '.join(known)}")
    device = _devices(args.device)[0] if args.device else None
    out_dir = Path(args.out or Path("runs") / args.experiment)
    if out_dir.exists() and not out_dir.is_dir():
        raise CLIError(f"--out {out_dir}: is a file, expected a folder")
    try:
        out_dir.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise CLIError(f"--out {out_dir}: cannot create the folder ({exc.strerror or exc})") from None
    if not os.access(out_dir, os.W_OK):
        raise CLIError(f"--out {out_dir}: folder is not writable")
    fit_kwargs.update({"out_dir": str(out_dir), "progress": not args.no_progress,
                       "resume": not args.no_resume})
    if device is not None:
        fit_kwargs["device"] = device
    if args.seeds is not None:  # seeds 0..N-1, mean +- std of the validation-selected test metric
        from .experiments.registry import run_seeds

        if args.seeds < 1 or args.seed is not None:
            raise CLIError(f"--seeds must be a positive integer and excludes --seed, got {args.seeds}")
        fit_kwargs.pop("out_dir")
        try:
            out = run_seeds(args.experiment, args.seeds, quick=args.quick, config=config,
                            out_dir=str(out_dir), **fit_kwargs)
        except (KeyError, TypeError, ValueError) as exc:
            raise CLIError(str(exc)) from exc
        t = out["test_metric"]
        each = ", ".join(f"{r['test_metric']:.4f}" for r in out["runs"])
        print(f"{args.experiment}: test {out['metric_name']} {t['mean']:.4f} +- {t['std']:.4f} over "
              f"seeds {out['seeds']} ({each})")
        print(f"results in {out_dir}/ (seeds.json, seed<k>/)", file=sys.stderr)
        return 0
    try:
        result = run_experiment(args.experiment, quick=args.quick, config=config, **fit_kwargs)
    except KeyboardInterrupt:
        ck = out_dir / "checkpoint.pt"
        where = (f"the checkpoint {ck} holds the last finished epoch; run the same command to resume"
                 if ck.exists() else "no epoch finished, nothing to resume")
        print(f"\ngroupconv train: interrupted; {where}", file=sys.stderr)
        return 130
    except (KeyError, TypeError, ValueError) as exc:
        raise CLIError(str(exc).strip("'\"")) from exc
    print(result.summary())
    plot = plot_history(result, out_dir / "history.png")
    print(f"results in {out_dir}/ (metrics.json, history.csv{', history.png' if plot else ''})",
          file=sys.stderr)
    return 0


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of the ``groupconv`` command."""
    from . import __version__

    parser = argparse.ArgumentParser(
        prog="groupconv",
        description="groupconv: group-equivariant deep learning in PyTorch. "
        "Verify groups and layers, and benchmark them.",
    )
    parser.add_argument("--version", action="version", version=f"groupconv {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")

    p = sub.add_parser(
        "demo",
        help="train a plain CNN, a C4 G-CNN and an SO(2) G-CNN on rotated digits and compare",
        description="The thesis in a few CPU minutes: on rotated scikit-learn digits (bundled, "
        "offline), train a plain CNN, a C4 G-CNN and a continuous SO(2) G-CNN at 100% and 10% "
        "of the training data; print parameters, validation-selected test accuracy and measured "
        "equivariance error; write metrics JSON and PNG plots to --out.",
    )
    p.add_argument("--device", help="cpu or cuda (default: cuda when available)")
    p.add_argument("--seed", type=int, default=0, help="seed of data split, rotations and init (default 0)")
    p.add_argument("--out", default="groupconv-demo", metavar="DIR",
                   help="report folder (default: groupconv-demo)")
    p.add_argument("--quick", action="store_true", help="a seconds-long smoke run (numbers meaningless)")
    p.add_argument("--no-progress", action="store_true", help="no progress bars")
    p.set_defaults(func=_cmd_demo)

    p = sub.add_parser(
        "check",
        help="run the verification kit over built-in groups on every available device",
        description="Run group-axiom, exp/log round-trip, action-homomorphism and sampler "
        "checks (Hypothesis properties) over the built-in catalogue and the custom-group routes "
        "and print a table.",
    )
    p.add_argument("targets", nargs="*", default=["all"], metavar="TARGET",
                   help="'all' (default: built-in groups and the custom-group routes), 'groups', "
                   "'custom' (MatrixLieGroup from generators, sympy, a hand-written finite group, each "
                   "also through a lifting layer), or a group name in any case: so2, D4, custom:sympy")
    p.add_argument("--device", default="all", help="cpu, cuda, or all available devices (default: all)")
    p.add_argument("--examples", type=int, default=30, help="Hypothesis examples per property (default: 30)")
    p.add_argument("--json", metavar="PATH", help="also write the results as JSON")
    p.set_defaults(func=_cmd_check)

    p = sub.add_parser(
        "train",
        help="train a named experiment (checkpoints, resumable, metrics JSON/CSV, a plot)",
        description="Train a registered experiment. Runs unchanged under "
        "`torchrun --nproc_per_node=N` (DistributedDataParallel; gloo on CPU, nccl on GPU).",
    )
    p.add_argument("experiment", nargs="?", help="experiment name (see --list)")
    p.add_argument("overrides", nargs="*", metavar="KEY=VALUE",
                   help="configuration overrides, values parsed as JSON (e.g. epochs=5 lr=1e-3)")
    p.add_argument("--list", action="store_true", help="list the known experiments and exit")
    p.add_argument("--config", metavar="FILE", help="a JSON file of configuration overrides")
    p.add_argument("--quick", action="store_true", help="the experiment's small smoke configuration")
    p.add_argument("--device", help="cpu or cuda (default: cuda when available)")
    p.add_argument("--seed", type=int, help="random seed (default: the experiment's)")
    p.add_argument("--seeds", type=int, metavar="N",
                   help="train seeds 0..N-1 and report mean +- std of the test metric")
    p.add_argument("--out", metavar="DIR", help="output folder (default: runs/EXPERIMENT)")
    p.add_argument("--no-resume", action="store_true", help="ignore an existing checkpoint in --out")
    p.add_argument("--no-progress", action="store_true", help="no progress line")
    p.set_defaults(func=_cmd_train)

    p = sub.add_parser(
        "bench",
        help="run benchmarks and print ratios measured in one run",
        description="Benchmarks report medians of interleaved repetitions in one process, as ratios "
        "to a floor (and to escnn where installed). Never trust a single run on a shared machine.",
    )
    p.add_argument("suite", nargs="?", default="all", choices=[*BENCH_SUITES, *TRAINING_BENCH_SUITES, "all"],
                   help="a suite, or all (every suite but the training ones: train-vs-escnn)")
    p.add_argument("--device", default="cpu", help="cpu or cuda (default: cpu)")
    p.add_argument("--batch", type=int, default=None,
                   help="elements per batched group op (default 100000; 10000 with --quick)")
    p.add_argument("--quick", action="store_true", help="small sizes, few repeats (smoke run)")
    p.add_argument("--threads", type=int, help="torch CPU threads during the run (1 on a shared machine)")
    p.add_argument("--json", metavar="PATH", help="write the results as JSON")
    p.add_argument("--seeds", type=int, metavar="N", help="train-vs-escnn: seeds 0..N-1 (default 3)")
    p.add_argument("--epochs", type=int, help="train-vs-escnn: training epochs (default: the demo's 30)")
    p.add_argument("--calibrate", action="store_true",
                   help="conv: fit the FFT/direct cost model here first and evaluate that one")
    p.set_defaults(func=_cmd_bench)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``groupconv`` command; returns the exit status."""
    parser = build_parser()
    # KEY=VALUE overrides may follow options (`train mnist1d --quick --out D epochs=2`)
    args, extra = parser.parse_known_args(argv)
    if args.command == "train":
        args.overrides = list(args.overrides) + [e for e in extra if "=" in e and not e.startswith("-")]
        extra = [e for e in extra if not ("=" in e and not e.startswith("-"))]
    if extra:
        parser.error(f"unrecognized arguments: {' '.join(extra)}")
    if args.command is None:
        parser.print_help()
        return 2
    if args.command == "check" and args.examples < 1:
        print(f"groupconv check: error: --examples must be >= 1, got {args.examples}", file=sys.stderr)
        return 2
    try:
        return int(args.func(args))
    except CLIError as exc:
        print(f"groupconv {args.command}: error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
