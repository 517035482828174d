"""The container every data builder of :mod:`groupconv.data` returns, and shared helpers.

A :class:`DataSplits` holds three :class:`torch.utils.data.TensorDataset` (train, validation,
test) plus what a training loop needs to know about them: the task, the default loss, the
number of classes, the per-sample input shape and the trivial baseline to beat.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
from torch.utils.data import TensorDataset

__all__ = [
    "DataSplits",
    "stratified_split",
    "subsample_stratified",
    "torch_generator",
    "check_fractions",
    "check_seed",
    "check_counts",
]

_TASKS = ("classification", "regression", "sequence-classification")
_LOSSES = ("ce", "mse", "seq-ce")


@dataclass
class DataSplits:
    """Train / validation / test splits of one data set, with metadata.

    Attributes:
        name: registry name of the data set (``"rotated-digits"``, ...).
        train, val, test: tensor data sets ``(inputs, targets)``.
        task: ``"classification"``, ``"regression"`` or ``"sequence-classification"``.
        loss: the loss :func:`groupconv.experiments.fit` uses by default (``"ce"``, ``"mse"``,
            ``"seq-ce"``).
        input_shape: shape of one input sample (without the batch axis).
        num_classes: number of classes (``None`` for regression).
        baseline: the trivial baseline of the task's metric (chance accuracy, or the loss of a
            trivial predictor), documented in ``baseline_note``.
        baseline_note: how ``baseline`` is obtained.
        info: extra tensors/values (e.g. the rotation angle of every sample, per split).

    Example:
        >>> import torch
        >>> ds = TensorDataset(torch.zeros(4, 1, 3), torch.zeros(4, dtype=torch.long))
        >>> d = DataSplits("toy", ds, ds, ds, task="classification", loss="ce",
        ...                input_shape=(1, 3), num_classes=2)
        >>> d.sizes
        {'train': 4, 'val': 4, 'test': 4}
    """

    name: str
    train: TensorDataset
    val: TensorDataset
    test: TensorDataset
    task: str
    loss: str
    input_shape: tuple[int, ...]
    num_classes: int | None = None
    baseline: float | None = None
    baseline_note: str = ""
    info: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.task not in _TASKS:
            raise ValueError(f"task must be one of {_TASKS}, got {self.task!r}")
        if self.loss not in _LOSSES:
            raise ValueError(f"loss must be one of {_LOSSES}, got {self.loss!r}")
        self.input_shape = tuple(int(s) for s in self.input_shape)

    @property
    def sizes(self) -> dict[str, int]:
        """Number of samples per split."""
        return {"train": len(self.train), "val": len(self.val), "test": len(self.test)}

    def summary(self) -> str:
        """One line describing the splits (for logs and the CLI)."""
        s = self.sizes
        cls = f", {self.num_classes} classes" if self.num_classes else ""
        base = f", baseline {self.baseline:.4g} ({self.baseline_note})" if self.baseline is not None else ""
        return (
            f"{self.name}: {self.task}, input {self.input_shape}{cls}, "
            f"train/val/test {s['train']}/{s['val']}/{s['test']}{base}"
        )


def check_seed(seed: object) -> int:
    """Return ``seed`` as an int ``>= 0``."""
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)):
        raise TypeError(f"seed must be an int >= 0, got {type(seed).__name__} {seed!r}")
    if seed < 0:
        raise ValueError(f"seed must be an int >= 0, got {seed}")
    return int(seed)


def check_counts(**counts: object) -> dict[str, int]:
    """Check that every keyword is an int ``>= 0`` and return them as ints."""
    out = {}
    for name, v in counts.items():
        if isinstance(v, bool) or not isinstance(v, (int, np.integer)) or v < 0:
            raise ValueError(f"{name} must be an int >= 0, got {v!r}")
        out[name] = int(v)
    return out


def check_fractions(fractions: tuple[float, float, float], name: str = "split") -> tuple[float, float, float]:
    """Check a (train, val, test) triple of non-negative fractions summing to 1."""
    try:
        fr = tuple(float(f) for f in fractions)
    except TypeError as e:
        raise TypeError(f"{name} must be a (train, val, test) tuple of floats, got {fractions!r}") from e
    if len(fr) != 3 or min(fr) < 0 or abs(sum(fr) - 1.0) > 1e-6 or fr[0] == 0:
        raise ValueError(
            f"{name} must be 3 non-negative fractions (train, val, test) summing to 1 with train > 0, "
            f"got {fractions!r}"
        )
    return fr  # type: ignore[return-value]


def stratified_split(
    labels: np.ndarray, fractions: tuple[float, float, float], rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Split indices ``0..len(labels)-1`` into train/val/test, class by class.

    Every class is permuted by ``rng`` and cut at ``round(f_train * n_c)`` and
    ``round((f_train + f_val) * n_c)``; each split is then shuffled. Deterministic given ``rng``.

    Example:
        >>> tr, va, te = stratified_split(np.repeat(np.arange(2), 10), (0.6, 0.2, 0.2),
        ...                               np.random.default_rng(0))
        >>> len(tr), len(va), len(te)
        (12, 4, 4)
    """
    labels = np.asarray(labels)
    fr = check_fractions(fractions)
    parts: list[list[np.ndarray]] = [[], [], []]
    for c in np.unique(labels):
        idx = rng.permutation(np.flatnonzero(labels == c))
        n = len(idx)
        a = int(round(fr[0] * n))
        b = int(round((fr[0] + fr[1]) * n))
        for k, chunk in enumerate((idx[:a], idx[a:b], idx[b:])):
            parts[k].append(chunk)
    out = []
    for p in parts:
        cat = np.concatenate(p) if p else np.zeros(0, dtype=np.int64)
        out.append(rng.permutation(cat).astype(np.int64))
    return out[0], out[1], out[2]


def subsample_stratified(
    indices: np.ndarray, labels: np.ndarray, fraction: float, rng: np.random.Generator
) -> np.ndarray:
    """Keep ``round(fraction * n_c)`` (at least 1) of the ``indices`` of every class ``c``."""
    if not (0.0 < float(fraction) <= 1.0):
        raise ValueError(f"train_fraction must be in (0, 1], got {fraction!r}")
    if fraction == 1.0:
        return indices
    labels = np.asarray(labels)[indices]
    keep = []
    for c in np.unique(labels):
        sel = indices[labels == c]
        k = max(1, int(round(float(fraction) * len(sel))))
        keep.append(rng.permutation(sel)[:k])
    return rng.permutation(np.concatenate(keep)).astype(np.int64)


def torch_generator(seed: int) -> torch.Generator:
    """A CPU ``torch.Generator`` seeded with ``seed`` (never the global generator)."""
    return torch.Generator().manual_seed(int(seed))
