"""Offline data sets (generated or bundled; nothing is ever downloaded) and data transforms.

Every builder returns a :class:`DataSplits` (train/val/test ``TensorDataset`` + metadata),
deterministic in its ``seed`` and built in seconds:

* ``adding``: :func:`adding_problem`, ``(N, 2, T)`` -> ``(N, 1)``
* ``copy-memory``: :func:`copy_memory`, ``(N, 10, T+20)`` -> ``(N, T+20)``
* ``rotated-digits``: :func:`rotated_digits`, ``(N, 1, S, S)`` -> 10 classes
* ``six-rotated``: :func:`six_vs_rotated_six`, ``(N, 1, S, S)`` -> 2 classes
* ``six-mirrored``: :func:`six_vs_mirrored_six`, ``(N, 1, S, S)`` -> 2 classes
* ``mnist1d``: :func:`mnist1d`, ``(N, 1, 40)`` -> 10 classes
* ``tetris-3d``: :func:`tetris_3d`, packed point clouds ``(N, 4, 5)`` -> 8 classes
* ``digit-points``: :func:`digit_point_clouds`, packed point clouds ``(N, P, 4)`` -> 10 classes
* ``springs``: :func:`spring_dynamics`, packed 2-D spring states ``(N, 5, 6)`` -> accelerations ``(N, 5, 2)``

Example:
    >>> from groupconv.data import load_dataset
    >>> d = load_dataset("adding", seq_len=20, n_train=16, n_val=4, n_test=4)
    >>> d.loss, round(d.baseline, 3)
    ('mse', 0.167)
"""

from __future__ import annotations

from collections.abc import Callable

from .base import DataSplits, stratified_split
from .digits import load_digit_arrays, render_digits, rotated_digits, six_vs_mirrored_six, six_vs_rotated_six
from .mnist1d import mnist1d
from .points import digit_point_clouds, tetris_3d, unpack_points
from .springs import simulate_springs, spring_dynamics, unpack_spring_state
from .synthetic import ADDING_BASELINE_MSE, adding_problem, copy_memory, copy_memory_baseline
from .transforms import random_drop, resample, rotate_images, sequentialize

__all__ = [
    "DataSplits",
    "stratified_split",
    "adding_problem",
    "copy_memory",
    "copy_memory_baseline",
    "ADDING_BASELINE_MSE",
    "load_digit_arrays",
    "render_digits",
    "rotated_digits",
    "six_vs_rotated_six",
    "six_vs_mirrored_six",
    "mnist1d",
    "tetris_3d",
    "digit_point_clouds",
    "unpack_points",
    "spring_dynamics",
    "simulate_springs",
    "unpack_spring_state",
    "resample",
    "rotate_images",
    "sequentialize",
    "random_drop",
    "datasets_registry",
    "load_dataset",
    "register_dataset",
    "list_datasets",
]

#: Data set name -> builder (keyword arguments only). Extend with :func:`register_dataset`.
datasets_registry: dict[str, Callable[..., DataSplits]] = {
    "adding": adding_problem,
    "copy-memory": copy_memory,
    "rotated-digits": rotated_digits,
    "six-rotated": six_vs_rotated_six,
    "six-mirrored": six_vs_mirrored_six,
    "mnist1d": mnist1d,
    "tetris-3d": tetris_3d,
    "digit-points": digit_point_clouds,
    "springs": spring_dynamics,
}


def list_datasets() -> list[str]:
    """Names accepted by :func:`load_dataset`, sorted."""
    return sorted(datasets_registry)


def register_dataset(name: str, builder: Callable[..., DataSplits], overwrite: bool = False) -> None:
    """Add a builder (keyword arguments -> :class:`DataSplits`) under ``name``."""
    if not isinstance(name, str) or not name:
        raise ValueError(f"name must be a non-empty str, got {name!r}")
    if not callable(builder):
        raise TypeError(f"builder must be callable, got {type(builder).__name__}")
    if name in datasets_registry and not overwrite:
        raise ValueError(f"data set {name!r} is already registered; pass overwrite=True to replace it")
    datasets_registry[name] = builder


def load_dataset(name: str, **kwargs: object) -> DataSplits:
    """Build the data set registered as ``name`` with keyword arguments ``kwargs``.

    Raises ``KeyError`` naming the known data sets when ``name`` is unknown, and ``TypeError``
    naming the builder when an argument is not one of its parameters.
    """
    try:
        builder = datasets_registry[name]
    except (KeyError, TypeError):
        raise KeyError(f"unknown data set {name!r}; known data sets: {', '.join(list_datasets())}") from None
    import inspect

    params = inspect.signature(builder).parameters
    if not any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params.values()):
        bad = sorted(set(kwargs) - set(params))
        if bad:
            raise TypeError(
                f"data set {name!r} ({builder.__name__}) got unknown arguments {bad}; "
                f"it accepts {sorted(params)}"
            )
    return builder(**kwargs)
