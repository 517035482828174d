"""Point-cloud experiments (issue 15): 3-D Tetris and rotated digits as point clouds.

Registered experiments (``groupconv train NAME``, :func:`~groupconv.experiments.run_experiment`),
both classifying with :class:`~groupconv.models.PointGResNet` (invariant head) fed packed clouds
``(B, P, d + 1 + 1)`` (:func:`groupconv.data.points.unpack_points`):

``tetris-3d``
    :func:`groupconv.data.tetris_3d`: train and validate on the 8 shapes in their canonical
    orientation (random translations), test under uniformly random rotations and translations.
    ``model="se3"`` lifts every point to 2 SE(3) frames built from its nearest neighbours, so
    the network is exactly SE(3)-invariant and generalises to every orientation;
    ``model="t3"`` (the same network on ``Translations(3)``) is only translation-invariant.

``point-digits``
    :func:`groupconv.data.digit_point_clouds`: the bright pixels of scikit-learn's digits as
    2-D points with intensities, every digit rotated by a random angle (``upright_train=True``:
    training and validation digits upright, test digits rotated); ``model="se2"`` vs
    ``model="t2"``, trained on ``train_fraction`` of the training split (an epoch is a pass over
    ``max(1, round(step_fraction / f))`` copies of a fraction-``f`` subset, as in
    ``rotated-digits``). ``lift`` chooses the SE(2) frames
    (:data:`~groupconv.models.point_resnet.POINT_FRAMES`): ``"centroid"`` (default) points them
    at the cloud's mean; ``"neighbors"`` (nearest neighbour) is decided by the jitter on a pixel
    lattice and plateaued at ~60 % (``docs/howto/points.md``).

Reported metric: the validation-selected test accuracy (:func:`~groupconv.experiments.fit`).
:func:`invariance_error` measures ``max |f(g x) - f(x)|`` of a trained network on test clouds
for random group elements; :func:`compare_point_models` runs models x fractions x seeds and
summarises each cell as mean +- std.

Example:
    >>> from groupconv.experiments import get_experiment
    >>> cfg = get_experiment("tetris-3d").config(quick=True)
    >>> net = build_point_model(cfg["model"], cfg, in_channels=1, num_classes=8)
    >>> type(net.net).__name__, net.d
    ('PointGResNet', 3)
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import torch
from torch import nn
from torch.utils.data import TensorDataset

from ..data.base import DataSplits
from ..data.points import digit_point_clouds, tetris_3d, unpack_points
from ..groups import SE2, SE3, Translations
from ..groups.base import Group
from ..models.point_resnet import PointGResNet
from .registry import Experiment, fit_seed, get_experiment, register_experiment, seed_summary
from .trainer import TrainResult

__all__ = [
    "POINT_GROUPS",
    "PackedPointNet",
    "build_point_model",
    "point_group",
    "tetris_data",
    "point_digits_data",
    "invariance_error",
    "compare_point_models",
    "TETRIS_DEFAULTS",
    "TETRIS_QUICK",
    "POINT_DIGITS_DEFAULTS",
    "POINT_DIGITS_QUICK",
]

#: model name -> group of the point experiments.
POINT_GROUPS: dict[str, Callable[[], Group]] = {
    "se3": SE3, "t3": lambda: Translations(3), "se2": SE2, "t2": lambda: Translations(2),
}

_FIT_KEYS = ("epochs", "lr", "batch_size", "weight_decay", "seed", "optimizer")
_NET_KEYS = {"channels": 16, "blocks": 2, "frames": 2, "neighbors": 4, "samples": None,
             "kernel_channels": 16, "kernel_hidden": 32, "coordinate_scale": 1.0, "norm": "batch",
             "lift": "neighbors"}

#: the full ``tetris-3d`` configuration (seconds per seed on 2 cores).
TETRIS_DEFAULTS: dict[str, Any] = {
    "model": "se3", "data_seed": 0, "n_train": 16, "n_val": 8, "n_test": 64, "perturbation": 0.2,
    **_NET_KEYS,
    "epochs": 20, "lr": 3e-3, "batch_size": 16, "weight_decay": 0.0, "optimizer": "adamw", "seed": 0,
}
#: overrides of the quick ``tetris-3d`` version.
TETRIS_QUICK: dict[str, Any] = {"epochs": 2, "n_train": 2, "n_val": 1, "n_test": 2, "channels": 8}

#: the full ``point-digits`` configuration.
POINT_DIGITS_DEFAULTS: dict[str, Any] = {
    "model": "se2", "data_seed": 0, "train_fraction": 1.0, "step_fraction": 0.5, "threshold": 0.3,
    "upright_train": False,
    "jitter": 0.1, **_NET_KEYS, "frames": 1, "neighbors": 8, "samples": [None, 12], "coordinate_scale": 2.0,
    "lift": "centroid",
    "epochs": 12, "lr": 1e-2, "batch_size": 32, "weight_decay": 1e-4, "optimizer": "adamw", "seed": 0,
}
#: overrides of the quick ``point-digits`` version.
POINT_DIGITS_QUICK: dict[str, Any] = {"epochs": 1, "train_fraction": 0.1, "channels": 8}


class PackedPointNet(nn.Module):
    """Adapter: a packed cloud ``(B, P, d + C + 1)`` -> ``net(points, features, mask)``.

    Example:
        >>> net = PackedPointNet(PointGResNet(Translations(2), 1, 3, channels=4, num_blocks=0), 2)
        >>> net(torch.ones(5, 6, 4)).shape
        torch.Size([5, 3])
    """

    def __init__(self, net: nn.Module, d: int) -> None:
        super().__init__()
        self.net, self.d = net, int(d)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(*unpack_points(x, self.d))


def point_group(model: str) -> Group:
    """The group of model ``"se3"``, ``"t3"``, ``"se2"`` or ``"t2"``."""
    if model not in POINT_GROUPS:
        raise ValueError(f"model must be one of {tuple(POINT_GROUPS)}, got {model!r}")
    return POINT_GROUPS[model]()


def build_point_model(model: str, cfg: Mapping[str, Any], in_channels: int = 1,
                      num_classes: int = 10) -> PackedPointNet:
    """The classifier ``model`` (:data:`POINT_GROUPS`) for ``cfg``, taking packed clouds.

    Translation-only models get one frame per point, the rest ``cfg["frames"]``; everything
    else (channels, blocks, neighbours, subsampling, kernel net) is shared.
    """
    G = point_group(model)
    blocks = int(cfg["blocks"])
    samples = cfg.get("samples")
    samples = None if samples is None else [None if s is None else int(s) for s in samples]
    frames = 1 if isinstance(G, Translations) else int(cfg["frames"])
    net = PointGResNet(
        G, in_channels, num_classes, channels=int(cfg["channels"]), num_blocks=blocks, num_frames=frames,
        num_neighbors=int(cfg["neighbors"]), num_samples=samples, norm=str(cfg["norm"]),
        kernel_channels=int(cfg["kernel_channels"]), kernel_hidden=int(cfg["kernel_hidden"]),
        coordinate_scale=float(cfg["coordinate_scale"]), frames=str(cfg.get("lift", "neighbors")),
    )
    return PackedPointNet(net, G.space_dim)


def tetris_data(cfg: Mapping[str, Any]) -> DataSplits:
    """The ``tetris-3d`` splits of ``cfg``."""
    return tetris_3d(n_train=int(cfg["n_train"]), n_val=int(cfg["n_val"]), n_test=int(cfg["n_test"]),
                     perturbation=float(cfg["perturbation"]), seed=int(cfg["data_seed"]))


def point_digits_data(cfg: Mapping[str, Any]) -> DataSplits:
    """The ``point-digits`` splits of ``cfg``, the training subset repeated (module docstring)."""
    frac = float(cfg["train_fraction"])
    data = digit_point_clouds(threshold=float(cfg["threshold"]), jitter=float(cfg["jitter"]),
                              train_fraction=frac, seed=int(cfg["data_seed"]),
                              upright_train=bool(cfg.get("upright_train", False)))
    reps = max(1, round(float(cfg["step_fraction"]) / frac)) if frac < 1.0 else 1
    if reps > 1:
        data.train = TensorDataset(*(t.repeat(reps, *([1] * (t.dim() - 1))) for t in data.train.tensors))
        data.info["train_repeats"] = reps
    return data


def _build_tetris(cfg: dict[str, Any]) -> tuple[nn.Module, Any, dict[str, Any]]:
    data = tetris_data(cfg)
    return build_point_model(str(cfg["model"]), cfg, 1, 8), data, {k: cfg[k] for k in _FIT_KEYS}


def _build_digits(cfg: dict[str, Any]) -> tuple[nn.Module, Any, dict[str, Any]]:
    data = point_digits_data(cfg)
    return build_point_model(str(cfg["model"]), cfg, 1, 10), data, {k: cfg[k] for k in _FIT_KEYS}


register_experiment(Experiment(
    name="tetris-3d",
    description="3-D Tetris point clouds: SE(3) vs T(3) PointGResNet, trained upright, tested rotated",
    build=_build_tetris, default_config=TETRIS_DEFAULTS, quick_config=TETRIS_QUICK,
    tags=("issue15", "points", "3d"),
), overwrite=True)

register_experiment(Experiment(
    name="point-digits",
    description="rotated digits as 2-D point clouds: SE(2) vs T(2) PointGResNet",
    build=_build_digits, default_config=POINT_DIGITS_DEFAULTS, quick_config=POINT_DIGITS_QUICK,
    tags=("issue15", "points", "2d"),
), overwrite=True)


@torch.no_grad()
def invariance_error(model: PackedPointNet, x: torch.Tensor, group: Group, num_elements: int = 4,
                     seed: int = 0) -> float:
    """``max |f(g x) - f(x)|`` over packed clouds ``x`` and ``num_elements`` sampled ``g``.

    ``g`` moves the coordinates by ``group.act`` (independently of the network); features and
    mask are kept. ``model`` is evaluated in its current mode and dtype.

    Example:
        >>> net = build_point_model("t2", {**POINT_DIGITS_DEFAULTS, "channels": 4}).eval()
        >>> invariance_error(net, torch.randn(3, 8, 4).abs(), Translations(2), 2) < 1e-4
        True
    """
    d = group.space_dim
    gen = torch.Generator().manual_seed(int(seed))
    ref = model(x)
    worst = 0.0
    for g in group.sample(int(num_elements), generator=gen, dtype=torch.float64):
        pts = group.act(g, x[..., :d].to(torch.float64)).to(x.dtype)
        moved = torch.cat([pts, x[..., d:]], -1)
        worst = max(worst, float((model(moved) - ref).abs().max()))
    return worst


def compare_point_models(
    experiment: str,
    models: Sequence[str],
    *,
    fractions: Sequence[float] | None = None,
    seeds: Sequence[int] = (0, 1, 2),
    quick: bool = False,
    config: Mapping[str, Any] | None = None,
    callback: Callable[[dict[str, Any], nn.Module, TrainResult], None] | None = None,
    **fit_overrides: Any,
) -> list[dict[str, Any]]:
    """Train every model (x training fraction, ``point-digits`` only) x seed; one row per cell.

    Each row: ``model``, ``train_fraction``, ``params``, ``test_accuracy`` and
    ``best_val_accuracy`` (:func:`~groupconv.experiments.seed_summary` over seeds, test at each
    run's validation-selected epoch), ``invariance_error`` (max over seeds of
    :func:`invariance_error` on 64 test clouds, 4 random elements of the model's group -- the
    data's symmetry group for the invariant model, translations for the others -- and, under
    ``"rotation_error"``, of the full SE(d)), ``logit_scale`` (max ``|f(x)|`` on those clouds, the
    scale float32 rounding is relative to), ``time_s`` (total seconds) and ``runs``.
    ``callback(row_so_far, net, result)`` sees every trained network.
    """
    exp = get_experiment(experiment)
    fracs: Sequence[float | None] = [None] if fractions is None else list(fractions)
    rows = []
    for frac in fracs:
        for m in models:
            runs, inv, rot, scale, t0 = [], 0.0, 0.0, 0.0, time.perf_counter()
            for seed in seeds:
                over = {**(config or {}), "model": m, "seed": int(seed)}
                if frac is not None:
                    over["train_fraction"] = float(frac)
                net, data, res, cfg = fit_seed(exp, over, quick=quick, name=f"{experiment}:{m}",
                                               progress=False, **fit_overrides)
                net = net.cpu().eval()
                x = data.test.tensors[0][:64]
                with torch.no_grad():
                    scale = max(scale, float(net(x).abs().max()))
                inv = max(inv, invariance_error(net, x, point_group(m)))
                full = SE3() if net.d == 3 else SE2()
                rot = max(rot, invariance_error(net, x, full))
                runs.append({"seed": int(seed), "test_accuracy": res.test_metric,
                             "best_val_accuracy": res.best_val_metric, "best_epoch": res.best_epoch,
                             "params": res.num_params, "time_s": res.total_time_s})
                if callback is not None:
                    callback({"model": m, "train_fraction": frac, "seed": int(seed)}, net, res)
            rows.append({
                "experiment": experiment, "model": m, "train_fraction": frac, "params": runs[0]["params"],
                "test_accuracy": seed_summary([r["test_accuracy"] for r in runs]),
                "best_val_accuracy": seed_summary([r["best_val_accuracy"] for r in runs]),
                "invariance_error": inv, "rotation_error": rot, "logit_scale": scale,
                "time_s": time.perf_counter() - t0, "runs": runs,
            })
    return rows
