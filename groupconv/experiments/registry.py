"""Experiment registry: named, configurable training runs used by ``groupconv train`` / ``demo``.

An :class:`Experiment` knows how to *build* a run from a configuration dict: it returns the
model, the data and the keyword arguments of :func:`~groupconv.experiments.fit`. Configurations
are plain dicts (JSON-friendly): ``default_config`` for the full run, ``quick_config`` holds the
overrides of a fast version (tests, demos). Only a tiny ``"smoke"`` experiment (a plain CNN on
rotated digits) is registered here; model-specific experiments register themselves elsewhere.

Example:
    >>> exp = get_experiment("smoke")
    >>> cfg = exp.config(quick=True, overrides={"epochs": 1})
    >>> cfg["epochs"], cfg["train_fraction"]
    (1, 0.3)
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import nn

from .trainer import TrainResult, fit

__all__ = [
    "Experiment",
    "register_experiment",
    "get_experiment",
    "list_experiments",
    "run_experiment",
    "run_seeds",
    "seed_summary",
    "SmokeCNN",
]

BuildFn = Callable[[dict[str, Any]], tuple[nn.Module, Any, dict[str, Any]]]

_REGISTRY: dict[str, Experiment] = {}


@dataclass(frozen=True)
class Experiment:
    """A named experiment.

    Attributes:
        name: registry key (``"e4-rotated-digits"``...).
        description: one line for ``groupconv train --list``.
        build: ``config -> (model, data, fit_kwargs)``; ``fit_kwargs`` are passed to
            :func:`~groupconv.experiments.fit` (epochs, lr, regularizer...).
        default_config: the full run's configuration (must contain ``"seed"`` for seeding the
            model initialisation; 0 is used otherwise).
        quick_config: overrides applied on top of ``default_config`` for a fast run.
        tags: free-form labels (``"E4"``, ``"images"``...).
    """

    name: str
    description: str
    build: BuildFn
    default_config: Mapping[str, Any] = field(default_factory=dict)
    quick_config: Mapping[str, Any] = field(default_factory=dict)
    tags: tuple[str, ...] = ()

    def config(self, quick: bool = False, overrides: Mapping[str, Any] | None = None) -> dict[str, Any]:
        """``default_config``, updated by ``quick_config`` when ``quick``, then by ``overrides``.

        Unknown override keys raise ``KeyError`` listing the known ones (typos fail loudly).
        """
        cfg = dict(self.default_config)
        if quick:
            cfg.update(self.quick_config)
        for k, v in (overrides or {}).items():
            if k not in cfg:
                raise KeyError(
                    f"experiment {self.name!r} has no config key {k!r}; known keys: {', '.join(sorted(cfg))}"
                )
            cfg[k] = v
        return cfg


def register_experiment(experiment: Experiment, overwrite: bool = False) -> Experiment:
    """Add ``experiment`` to the registry (``overwrite=True`` to replace one); returns it."""
    if not isinstance(experiment, Experiment):
        raise TypeError(f"experiment must be an Experiment, got {type(experiment).__name__}")
    if experiment.name in _REGISTRY and not overwrite:
        raise ValueError(f"experiment {experiment.name!r} is already registered; pass overwrite=True")
    _REGISTRY[experiment.name] = experiment
    return experiment


#: modules that register the built-in experiments; imported on first lookup so that
#: ``import groupconv.experiments`` stays light.
BUILTIN_EXPERIMENT_MODULES: tuple[str, ...] = (
    "groupconv.experiments.attention_experiments",
    "groupconv.experiments.ck_experiments",
    "groupconv.experiments.gconv_experiments",
    "groupconv.experiments.partial_experiments",
    "groupconv.experiments.point_experiments",
    "groupconv.experiments.spring_experiments",
)
_builtin_loaded = False


def _load_builtin() -> None:
    global _builtin_loaded
    if _builtin_loaded:
        return
    _builtin_loaded = True
    import importlib

    for module in BUILTIN_EXPERIMENT_MODULES:
        importlib.import_module(module)


def get_experiment(name: str) -> Experiment:
    """The experiment registered as ``name``; ``KeyError`` listing the known names otherwise."""
    _load_builtin()
    try:
        return _REGISTRY[name]
    except (KeyError, TypeError):
        raise KeyError(
            f"unknown experiment {name!r}; known experiments: {', '.join(list_experiments())}"
        ) from None


def list_experiments() -> list[str]:
    """Registered experiment names, sorted."""
    _load_builtin()
    return sorted(_REGISTRY)


def run_experiment(
    experiment: str | Experiment,
    *,
    quick: bool = False,
    config: Mapping[str, Any] | None = None,
    **fit_overrides: Any,
) -> TrainResult:
    """Build and train an experiment: seeds torch with ``config["seed"]``, builds, calls ``fit``.

    ``config`` overrides configuration keys; ``fit_overrides`` (``out_dir``, ``device``,
    ``progress``...) override the keyword arguments the experiment passes to ``fit``.
    """
    exp = get_experiment(experiment) if isinstance(experiment, str) else experiment
    return fit_seed(exp, config, quick=quick, **fit_overrides)[2]


def fit_seed(
    exp: Experiment, config: Mapping[str, Any] | None = None, *, quick: bool = False, **fit_overrides: Any,
) -> tuple[nn.Module, Any, TrainResult, dict[str, Any]]:
    """:func:`run_experiment` returning ``(model, data, result, cfg)``: the comparison helpers of
    the experiments (point digits, springs) train each (model, size, seed) cell through it."""
    cfg = exp.config(quick=quick, overrides=config)
    torch.manual_seed(int(cfg.get("seed", 0)))
    model, data, kwargs = exp.build(cfg)
    kwargs = {"name": exp.name, **kwargs, **fit_overrides}
    return model, data, fit(model, data, **kwargs), cfg


def seed_summary(values: Sequence[float]) -> dict[str, float]:
    """``mean``, ``std`` (sample std, ``ddof=1``; 0 for one value), ``min``, ``max``, ``n``.

    Example:
        >>> s = seed_summary([0.9, 0.92, 0.94])
        >>> round(s["mean"], 4), round(s["std"], 4), s["n"]
        (0.92, 0.02, 3)
    """
    vals = [float(v) for v in values]
    if not vals:
        raise ValueError("values must hold at least one number, got none")
    n = len(vals)
    mean = sum(vals) / n
    std = math.sqrt(sum((v - mean) ** 2 for v in vals) / (n - 1)) if n > 1 else 0.0
    return {"mean": mean, "std": std, "min": min(vals), "max": max(vals), "n": n}


def run_seeds(
    experiment: str | Experiment,
    seeds: int | Sequence[int] = 3,
    *,
    quick: bool = False,
    config: Mapping[str, Any] | None = None,
    out_dir: str | None = None,
    **fit_overrides: Any,
) -> dict[str, Any]:
    """Train ``experiment`` once per seed (``config["seed"]`` = 0, 1, ... or the given seeds).

    The data split (``data_seed``) stays that of ``config``: seeds vary the initialisation and the
    batch order only. Returns ``{"experiment", "seeds", "runs": [TrainResult.to_dict() ...],
    "test_metric": seed_summary(...), "best_val_metric": seed_summary(...), "metric_name",
    "higher_is_better"}``: the test metric of every run is measured at its own
    validation-selected epoch. With ``out_dir`` each seed writes to ``out_dir/seed<k>`` and the
    summary to ``out_dir/seeds.json``.

    Example:
        >>> out = run_seeds("smoke", 2, quick=True, config={"epochs": 1}, progress=False)  # doctest: +SKIP
        >>> out["test_metric"]["n"]  # doctest: +SKIP
        2
    """
    import json
    from pathlib import Path

    exp = get_experiment(experiment) if isinstance(experiment, str) else experiment
    if isinstance(seeds, bool) or (isinstance(seeds, int) and seeds < 1):
        raise ValueError(f"seeds must be a positive int or a sequence of ints, got {seeds!r}")
    seed_list = list(range(seeds)) if isinstance(seeds, int) else [int(s) for s in seeds]
    if not seed_list:
        raise ValueError("seeds must name at least one seed, got an empty sequence")
    runs = []
    for seed in seed_list:
        kw = dict(fit_overrides)
        if out_dir is not None:
            kw["out_dir"] = str(Path(out_dir) / f"seed{seed}")
        res = run_experiment(exp, quick=quick, config={**(config or {}), "seed": seed}, **kw)
        runs.append(res.to_dict() if hasattr(res, "to_dict") else dict(vars(res)))
    summary: dict[str, Any] = {
        "experiment": exp.name, "seeds": seed_list, "config": exp.config(quick, config),
        "metric_name": runs[0].get("metric_name"), "higher_is_better": runs[0].get("higher_is_better"),
        "test_metric": seed_summary([r["test_metric"] for r in runs]),
        "best_val_metric": seed_summary([r["best_val_metric"] for r in runs]),
        "runs": runs,
    }
    if out_dir is not None:
        Path(out_dir).mkdir(parents=True, exist_ok=True)
        (Path(out_dir) / "seeds.json").write_text(json.dumps(summary, indent=2, default=str))
    return summary


class SmokeCNN(nn.Module):
    """A small plain CNN for images ``(B, C, H, W)``: three 3x3 conv-BN-ReLU, global average pool, linear.

    Example:
        >>> SmokeCNN(1, 10, 8)(torch.zeros(2, 1, 16, 16)).shape
        torch.Size([2, 10])
    """

    def __init__(self, in_channels: int = 1, num_classes: int = 10, channels: int = 16):
        super().__init__()
        layers: list[nn.Module] = []
        for i, stride in enumerate((1, 2, 1)):
            layers += [
                nn.Conv2d(in_channels if i == 0 else channels, channels, 3, padding=1, stride=stride),
                nn.BatchNorm2d(channels),
                nn.ReLU(),
            ]
        self.features = nn.Sequential(*layers)
        self.head = nn.Linear(channels, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.features(x).mean(dim=(-2, -1)))


def _build_smoke(cfg: dict[str, Any]) -> tuple[nn.Module, Any, dict[str, Any]]:
    from ..data import rotated_digits

    data = rotated_digits(
        size=int(cfg["size"]),
        rotations=cfg["rotations"],
        seed=int(cfg["data_seed"]),
        train_fraction=float(cfg["train_fraction"]),
    )
    model = SmokeCNN(1, data.num_classes or 10, int(cfg["channels"]))
    kwargs = {k: cfg[k] for k in ("epochs", "lr", "batch_size", "weight_decay", "seed")}
    return model, data, kwargs


register_experiment(
    Experiment(
        name="smoke",
        description="plain 3-layer CNN on rotated scikit-learn digits (pipeline smoke test, seconds)",
        build=_build_smoke,
        default_config={
            "size": 16,
            "rotations": "random",
            "data_seed": 0,
            "train_fraction": 1.0,
            "channels": 16,
            "epochs": 5,
            "lr": 1e-2,
            "batch_size": 64,
            "weight_decay": 0.0,
            "seed": 0,
        },
        quick_config={"epochs": 2, "train_fraction": 0.3},
        tags=("smoke", "images"),
    )
)
