"""Spring / n-body dynamics (issue 15): learn the vector field, roll it out with RK4.

Registered experiment ``springs`` (``groupconv train springs``): :func:`groupconv.data.spring_dynamics`
(5 particles in 2-D, all pairs joined by springs ``k_i k_j``, RK4-simulated). A model maps a packed
state ``(B, N, 6)`` (position, velocity, mass, ``k``) to accelerations ``(B, N, 2)`` and is trained
by derivative matching (MSE to the true accelerations, as Hamiltonian neural networks are); the
checkpoint is selected on the validation acceleration MSE. Trajectories are then predicted by
integrating ``dq/dt = v, dv/dt = model(q, v)`` with RK4 at the data's ``dt`` from the initial
test states (:func:`rollout`), scored by the position MSE averaged over the ``steps`` predicted
times (:func:`rollout_mse`).

Models (``model=``), built at about equal parameter counts (~15k) by :func:`build_spring_model`:

* ``"se2"``: :class:`~groupconv.models.PointDynamicsNet` on ``SE2`` -- exactly equivariant to
  rotations and translations (velocities enter in the nearest-neighbour frames, the output
  vectors are rotated back to the world);
* ``"t2"``: the same network on ``Translations(2)`` -- translation-invariant only;
* ``"mlp"``: :class:`~groupconv.models.MLPDynamics` on the flattened absolute state.

:func:`compare_spring_models` runs models x training-set sizes x seeds and reports the rollout
MSE on the test systems as drawn and on the same systems moved by a random rigid motion
(rotation by a uniform angle, translation by ``move_distance`` in a random direction).

Example:
    >>> cfg = get_experiment("springs").config(quick=True)
    >>> net, data, kw = get_experiment("springs").build(cfg)
    >>> rollout(net, data.info["test_states"], 3, 0.1).shape
    torch.Size([4, 4, 5, 2])
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import torch
from torch import nn
from torch.utils.data import TensorDataset

from ..data.base import DataSplits
from ..data.springs import pack_spring_state, spring_accelerations, spring_dynamics, unpack_spring_state
from ..functional.integrators import odeint_rk4
from ..groups import SE2, Translations
from ..models.point_dynamics import MLPDynamics, PointDynamicsNet
from .registry import Experiment, fit_seed, get_experiment, register_experiment, seed_summary
from .trainer import TrainResult

__all__ = [
    "SPRING_MODELS",
    "SPRINGS_DEFAULTS",
    "SPRINGS_QUICK",
    "PackedDynamics",
    "build_spring_model",
    "springs_data",
    "rollout",
    "rollout_mse",
    "true_accelerations",
    "rigid_motion",
    "equivariance_error",
    "compare_spring_models",
]

#: the models of the ``springs`` experiment.
SPRING_MODELS = ("se2", "t2", "mlp")

_FIT_KEYS = ("epochs", "lr", "batch_size", "weight_decay", "seed", "optimizer")

#: the full ``springs`` configuration.
SPRINGS_DEFAULTS: dict[str, Any] = {
    "model": "se2", "data_seed": 0, "n_train": 30, "n_val": 50, "n_test": 100, "num_particles": 5,
    "steps": 20, "dt": 0.1, "substeps": 10, "aspect": 1.0, "samples_per_epoch": 1600,
    "channels": 16, "blocks": 2, "frames": 2, "neighbors": 5, "kernel_channels": 16, "kernel_hidden": 32,
    "norm": "layer", "use_velocities": True, "mlp_hidden": 104, "output_scale": 5.0,
    "epochs": 20, "lr": 3e-3, "batch_size": 64, "weight_decay": 0.0, "optimizer": "adamw", "seed": 0,
}
#: overrides of the quick ``springs`` version (tests, smoke runs).
SPRINGS_QUICK: dict[str, Any] = {"epochs": 1, "n_train": 2, "n_val": 4, "n_test": 4, "steps": 5,
                                 "samples_per_epoch": 12, "channels": 8, "mlp_hidden": 16}


class PackedDynamics(nn.Module):
    """Adapter: packed states ``(B, N, 6)`` -> ``output_scale * net(q, v, [m, k])`` ``(B, N, 2)``.

    ``net`` is a :class:`~groupconv.models.PointDynamicsNet` or
    :class:`~groupconv.models.MLPDynamics` (any module ``(q, v, scalars) -> (B, N, 2)``).

    Example:
        >>> net = PackedDynamics(MLPDynamics(4, 2, hidden=8))
        >>> net(torch.randn(3, 4, 6)).shape
        torch.Size([3, 4, 2])
    """

    def __init__(self, net: nn.Module, output_scale: float = 1.0) -> None:
        super().__init__()
        if not (math.isfinite(float(output_scale)) and float(output_scale) > 0):
            raise ValueError(f"output_scale must be a positive finite float, got {output_scale}")
        self.net, self.output_scale = net, float(output_scale)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        q, v, m, k = unpack_spring_state(x)
        return self.output_scale * self.net(q, v, torch.stack([m, k], -1))


def build_spring_model(model: str, cfg: Mapping[str, Any]) -> PackedDynamics:
    """The dynamics model ``model`` (:data:`SPRING_MODELS`) of configuration ``cfg``."""
    if model not in SPRING_MODELS:
        raise ValueError(f"model must be one of {SPRING_MODELS}, got {model!r}")
    net: nn.Module
    if model == "mlp":
        net = MLPDynamics(int(cfg["num_particles"]), 2, hidden=int(cfg["mlp_hidden"]))
    else:
        G = SE2() if model == "se2" else Translations(2)
        net = PointDynamicsNet(
            G, 2, use_velocities=bool(cfg["use_velocities"]), channels=int(cfg["channels"]),
            num_blocks=int(cfg["blocks"]), num_frames=int(cfg["frames"]) if model == "se2" else 1,
            num_neighbors=int(cfg["neighbors"]), norm=str(cfg["norm"]),
            kernel_channels=int(cfg["kernel_channels"]), kernel_hidden=int(cfg["kernel_hidden"]),
        )
    return PackedDynamics(net, float(cfg["output_scale"]))


def springs_data(cfg: Mapping[str, Any]) -> DataSplits:
    """The ``springs`` splits of ``cfg``; the training states repeated to ``samples_per_epoch``.

    The repetition keeps the number of optimiser steps per epoch about equal across training
    sizes (the data-efficiency curve compares sizes, not amounts of optimisation).
    """
    data = spring_dynamics(n_train=int(cfg["n_train"]), n_val=int(cfg["n_val"]), n_test=int(cfg["n_test"]),
                           num_particles=int(cfg["num_particles"]), steps=int(cfg["steps"]),
                           dt=float(cfg["dt"]), substeps=int(cfg["substeps"]), aspect=float(cfg["aspect"]),
                           seed=int(cfg["data_seed"]))
    n = len(data.train)
    reps = max(1, round(int(cfg["samples_per_epoch"]) / max(n, 1)))
    if reps > 1:
        data.train = TensorDataset(*(t.repeat(reps, *([1] * (t.dim() - 1))) for t in data.train.tensors))
    data.info["train_repeats"] = reps
    return data


def _build_springs(cfg: dict[str, Any]) -> tuple[nn.Module, Any, dict[str, Any]]:
    return build_spring_model(str(cfg["model"]), cfg), springs_data(cfg), {k: cfg[k] for k in _FIT_KEYS}


register_experiment(Experiment(
    name="springs",
    description="2-D spring dynamics: SE(2) vs T(2) point networks vs an MLP, learned accelerations + RK4",
    build=_build_springs, default_config=SPRINGS_DEFAULTS, quick_config=SPRINGS_QUICK,
    tags=("issue15", "points", "2d", "dynamics"),
), overwrite=True)


def rollout(model: Callable[[torch.Tensor], torch.Tensor], states: torch.Tensor, steps: int,
            dt: float) -> torch.Tensor:
    """Predicted positions ``(B, steps + 1, N, 2)`` from packed states ``(B, N, 6)``.

    Integrates ``dq/dt = v, dv/dt = model(state)`` with one RK4 step per ``dt`` (masses and
    ``k`` constant). ``model`` may be a network or the true :func:`spring_accelerations`.
    """
    _, _, m, k = unpack_spring_state(states)

    def f(z: torch.Tensor) -> torch.Tensor:
        a = model(pack_spring_state(z[..., :2], z[..., 2:], m, k))
        return torch.cat([z[..., 2:], a.to(z.dtype)], -1)

    return odeint_rk4(f, states[..., :4], dt, steps)[..., :2]


def true_accelerations(states: torch.Tensor) -> torch.Tensor:
    """The exact accelerations of packed states (the model :func:`rollout` of the data itself)."""
    q, _, m, k = unpack_spring_state(states)
    return spring_accelerations(q, m, k)


@torch.no_grad()
def rollout_mse(model: Callable[[torch.Tensor], torch.Tensor], states: torch.Tensor, positions: torch.Tensor,
                dt: float, batch_size: int = 256) -> float:
    """Position MSE of :func:`rollout` against ``positions`` ``(B, T + 1, N, 2)`` over T predicted times."""
    steps = positions.shape[1] - 1
    se, count = 0.0, 0
    for i in range(0, len(states), batch_size):
        pred = rollout(model, states[i:i + batch_size], steps, dt)[:, 1:]
        tgt = positions[i:i + batch_size, 1:].to(pred.dtype)
        se += float((pred - tgt).pow(2).sum())
        count += tgt.numel()
    return se / max(count, 1)


def rigid_motion(states: torch.Tensor, angles: torch.Tensor, shifts: torch.Tensor) -> torch.Tensor:
    """Rotate positions and velocities of packed states ``(B, N, 6)`` by ``angles`` ``(B,)`` and
    translate the positions by ``shifts`` ``(B, 2)``; masses and ``k`` unchanged."""
    c, s = torch.cos(angles), torch.sin(angles)
    R = torch.stack([torch.stack([c, -s], -1), torch.stack([s, c], -1)], -2).to(states.dtype)  # (B, 2, 2)
    q, v, m, k = unpack_spring_state(states)
    q = q @ R.transpose(-1, -2) + shifts[:, None, :].to(states.dtype)
    return pack_spring_state(q, v @ R.transpose(-1, -2), m, k)


def _random_motions(n: int, distance: float, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(int(seed))
    angles = 2 * math.pi * torch.rand(n, generator=g, dtype=torch.float64)
    phi = 2 * math.pi * torch.rand(n, generator=g, dtype=torch.float64)
    return angles, float(distance) * torch.stack([torch.cos(phi), torch.sin(phi)], -1)


@torch.no_grad()
def equivariance_error(model: Callable[[torch.Tensor], torch.Tensor], states: torch.Tensor,
                       distance: float = 3.0, seed: int = 0) -> float:
    """``max |f(g x) - R_g f(x)|`` over packed states, ``g`` random rotations + translations."""
    angles, shifts = _random_motions(len(states), distance, seed)
    a = model(states)
    moved = model(rigid_motion(states, angles, shifts))
    zero = torch.zeros_like(shifts)
    expected = rigid_motion(pack_spring_state(a, a, states[..., 4], states[..., 5]), angles, zero)[..., :2]
    return float((moved - expected.to(moved.dtype)).abs().max())


def compare_spring_models(
    models: Sequence[str] = SPRING_MODELS,
    *,
    n_trains: Sequence[int] | None = None,
    seeds: Sequence[int] = (0, 1, 2),
    quick: bool = False,
    config: Mapping[str, Any] | None = None,
    move_distance: float = 3.0,
    callback: Callable[[dict[str, Any], nn.Module, TrainResult], None] | None = None,
    **fit_overrides: Any,
) -> list[dict[str, Any]]:
    """Train every model x training size (trajectories) x seed; one row per (model, size).

    Each row: ``model``, ``n_train``, ``params``, and :func:`~groupconv.experiments.seed_summary`
    over seeds of ``rollout_mse`` (test systems as drawn), ``moved_rollout_mse`` (the same
    systems under a random rigid motion, ``move_distance`` away; targets moved the same way),
    ``test_accel_mse`` (the trainer's validation-selected test metric), plus
    ``equivariance_error`` (max over seeds, float32 on 64 test states), ``time_s`` and ``runs``.
    Every row also carries ``floor_rollout_mse``: the true dynamics rolled out by the same RK4
    at ``dt`` (the integrator's own error).
    """
    exp = get_experiment("springs")
    sizes: Sequence[int | None] = [None] if n_trains is None else list(n_trains)
    rows = []
    for n in sizes:
        for m in models:
            runs, eq, t0 = [], 0.0, time.perf_counter()
            for seed in seeds:
                over = {**(config or {}), "model": m, "seed": int(seed)}
                if n is not None:
                    over["n_train"] = int(n)
                net, data, res, cfg = fit_seed(exp, over, quick=quick, name=f"springs:{m}",
                                               progress=False, **fit_overrides)
                net = net.cpu().eval()
                dt, info = float(cfg["dt"]), data.info
                states, pos = info["test_states"], info["test_positions"]
                angles, shifts = _random_motions(len(states), move_distance, 1000 + int(seed))
                moved = rigid_motion(states, angles, shifts)
                moved_pos = torch.stack([rigid_motion(pack_spring_state(
                    pos[:, t], pos[:, t], states[..., 4], states[..., 5]), angles, shifts)[..., :2]
                    for t in range(pos.shape[1])], 1)
                floor = rollout_mse(true_accelerations, states.double(), pos.double(), dt)
                eq = max(eq, equivariance_error(net, states[:64]))
                runs.append({"seed": int(seed), "rollout_mse": rollout_mse(net, states, pos, dt),
                             "moved_rollout_mse": rollout_mse(net, moved, moved_pos, dt),
                             "test_accel_mse": res.test_metric, "best_val_accel_mse": res.best_val_metric,
                             "best_epoch": res.best_epoch, "params": res.num_params,
                             "time_s": res.total_time_s})
                if callback is not None:
                    callback({"model": m, "n_train": cfg["n_train"], "seed": int(seed)}, net, res)
            rows.append({
                "experiment": "springs", "model": m, "n_train": int(cfg["n_train"]),
                "params": runs[0]["params"],
                **{key: seed_summary([r[key] for r in runs])
                   for key in ("rollout_mse", "moved_rollout_mse", "test_accel_mse")},
                "equivariance_error": eq, "floor_rollout_mse": floor,
                "time_s": time.perf_counter() - t0, "runs": runs,
            })
    return rows
