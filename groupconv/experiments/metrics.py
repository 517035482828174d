"""Losses, metrics and result files of the training loop.

Every task has a *loss* (what is minimised) and a *metric* (what selects the best epoch and is
reported): ``"ce"`` -> accuracy (higher is better), ``"mse"`` -> MSE, ``"seq-ce"`` -> the
per-step cross-entropy (lower is better). Evaluation accumulates exact sums (loss sum, metric
sum, count) so results do not depend on the batch size or on how samples are split across
DDP ranks.
"""

from __future__ import annotations

import csv
import json
import math
import os
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F

__all__ = [
    "EpochRecord",
    "TrainResult",
    "LossSpec",
    "LOSSES",
    "get_loss",
    "accuracy",
    "mse",
    "sequence_cross_entropy",
    "write_metrics",
    "read_metrics",
    "plot_history",
    "atomic_write_text",
    "read_checkpoint",
]


@dataclass
class EpochRecord:
    """What one epoch produced (metrics are averaged over the whole split, all ranks)."""

    epoch: int
    steps: int
    train_loss: float
    val_loss: float | None
    val_metric: float | None
    lr: float
    time_s: float
    train_regularizer: float | None = None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class TrainResult:
    """Outcome of :func:`fit`.

    ``test_metric`` / ``test_loss`` are measured on the state of ``best_epoch``, the epoch with
    the best validation metric (``selection="val"``), or of the last epoch when there is no
    validation set (``selection="last"``).
    """

    name: str
    metric_name: str
    higher_is_better: bool
    history: list[EpochRecord]
    best_epoch: int | None
    best_val_metric: float | None
    test_metric: float | None
    test_loss: float | None
    num_params: int
    steps: int
    total_time_s: float
    selection: str
    config: dict[str, Any] = field(default_factory=dict)
    out_dir: str | None = None

    @property
    def train_losses(self) -> list[float]:
        return [h.train_loss for h in self.history]

    @property
    def val_metrics(self) -> list[float | None]:
        return [h.val_metric for h in self.history]

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["history"] = [h.to_dict() for h in self.history]
        return d

    def summary(self) -> str:
        """One line: best epoch, validation and test metric, parameters, time."""
        val = "n/a" if self.best_val_metric is None else f"{self.best_val_metric:.4f}"
        test = "n/a" if self.test_metric is None else f"{self.test_metric:.4f}"
        return (
            f"{self.name}: best epoch {self.best_epoch} (val {self.metric_name} {val}), "
            f"test {self.metric_name} {test}, {self.num_params} params, {self.total_time_s:.1f}s"
        )


def accuracy(logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """Fraction of samples whose arg-max over dim 1 equals ``targets`` (a 0-dim tensor).

    Works for ``(N, K)`` logits with ``(N,)`` targets and ``(N, K, L)`` with ``(N, L)``.

    Example:
        >>> accuracy(torch.tensor([[2.0, 1.0], [0.0, 3.0]]), torch.tensor([0, 0]))
        tensor(0.5000)
    """
    return (logits.argmax(dim=1) == targets).to(torch.float32).mean()


def _match(pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    if pred.shape != target.shape:
        if pred.numel() != target.numel():
            raise ValueError(
                f"model output of shape {tuple(pred.shape)} does not match the regression target "
                f"of shape {tuple(target.shape)}"
            )
        pred = pred.reshape(target.shape)
    return pred


def mse(pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Mean squared error; ``pred`` is reshaped to ``target`` when only the layout differs.

    Example:
        >>> mse(torch.tensor([[1.0], [3.0]]), torch.tensor([[0.0], [1.0]]))
        tensor(2.5000)
    """
    return F.mse_loss(_match(pred, target.to(pred.dtype)), target.to(pred.dtype))


def sequence_cross_entropy(logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """Per-step cross-entropy of ``(N, K, L)`` logits against ``(N, L)`` class ids, averaged.

    Example:
        >>> round(float(sequence_cross_entropy(torch.zeros(2, 8, 5), torch.zeros(2, 5, dtype=torch.long))), 4)
        2.0794
    """
    if (
        logits.dim() != 3
        or targets.dim() != 2
        or logits.shape[0] != targets.shape[0]
        or (logits.shape[2] != targets.shape[1])
    ):
        raise ValueError(
            f"seq-ce needs logits (N, K, L) and targets (N, L), got {tuple(logits.shape)} and "
            f"{tuple(targets.shape)}"
        )
    return F.cross_entropy(logits, targets)


@dataclass(frozen=True)
class LossSpec:
    """A training loss with the metric that selects and reports models.

    ``stats(output, target)`` returns the 0-dim tensors ``(loss_sum, metric_sum, count)`` of a
    batch; means are ``loss_sum / count`` and ``metric_sum / count``.
    """

    name: str
    metric_name: str
    higher_is_better: bool

    def loss(self, output: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        """Mean loss of a batch (the quantity that is back-propagated)."""
        if self.name == "ce":
            return F.cross_entropy(output, target)
        if self.name == "mse":
            return mse(output, target)
        return sequence_cross_entropy(output, target)

    def stats(
        self, output: torch.Tensor, target: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Summed loss, summed metric and number of counted items of a batch."""
        if self.name == "ce":
            loss_sum = F.cross_entropy(output, target, reduction="sum")
            correct = (output.argmax(dim=1) == target).sum()
            count = torch.tensor(float(target.numel()), device=output.device)
            return loss_sum, correct.to(loss_sum.dtype), count
        if self.name == "mse":
            tgt = target.to(output.dtype)
            se = F.mse_loss(_match(output, tgt), tgt, reduction="sum")
            return se, se, torch.tensor(float(tgt.numel()), device=output.device)
        sequence_cross_entropy(output, target)  # shape checks
        loss_sum = F.cross_entropy(output, target, reduction="sum")
        return loss_sum, loss_sum, torch.tensor(float(target.numel()), device=output.device)

    def better(self, a: float, b: float | None) -> bool:
        """Whether metric value ``a`` beats ``b`` (``None`` is beaten by any finite ``a``)."""
        if not math.isfinite(a):
            return False
        if b is None or not math.isfinite(b):
            return True
        return a > b if self.higher_is_better else a < b


LOSSES: dict[str, LossSpec] = {
    "ce": LossSpec("ce", "accuracy", True),
    "mse": LossSpec("mse", "mse", False),
    "seq-ce": LossSpec("seq-ce", "seq_ce", False),
}


def get_loss(name: str) -> LossSpec:
    """The :class:`LossSpec` called ``name`` (``"ce"``, ``"mse"`` or ``"seq-ce"``)."""
    try:
        return LOSSES[name]
    except (KeyError, TypeError):
        raise ValueError(f"loss must be one of {sorted(LOSSES)}, got {name!r}") from None


def atomic_write_text(path: str | os.PathLike, text: str) -> None:
    """Write ``text`` to ``path`` through a temporary file and ``os.replace`` (atomic)."""
    path = Path(path)
    tmp = path.with_name(f".{path.name}.tmp{os.getpid()}")
    tmp.write_text(text)
    os.replace(tmp, path)


def _as_dict(result: Any) -> dict[str, Any]:
    if isinstance(result, Mapping):
        return dict(result)
    if hasattr(result, "to_dict"):
        return result.to_dict()
    raise TypeError(f"result must be a TrainResult or a mapping, got {type(result).__name__}")


def write_metrics(out_dir: str | os.PathLike, result: Any) -> tuple[Path, Path]:
    """Write ``metrics.json`` (the whole result) and ``history.csv`` (one row per epoch) atomically.

    ``result`` is a :class:`~groupconv.experiments.TrainResult` or its ``to_dict()``.
    Returns the two paths.

    Example:
        >>> import tempfile
        >>> d = tempfile.mkdtemp()
        >>> res = {"history": [{"epoch": 1, "train_loss": 0.5, "val_metric": 0.9}], "test_metric": 0.8}
        >>> j, c = write_metrics(d, res)
        >>> read_metrics(d)["test_metric"], c.read_text().splitlines()[0]
        (0.8, 'epoch,train_loss,val_metric')
    """
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    data = _as_dict(result)
    jpath, cpath = out / "metrics.json", out / "history.csv"
    atomic_write_text(jpath, json.dumps(data, indent=2, sort_keys=False, default=str))
    rows = list(data.get("history") or [])
    fields: list[str] = []
    for r in rows:
        for k in r:
            if k not in fields:
                fields.append(k)
    tmp = cpath.with_name(f".{cpath.name}.tmp{os.getpid()}")
    with open(tmp, "w", newline="") as fh:
        w = csv.DictWriter(fh, fieldnames=fields)
        w.writeheader()
        for r in rows:
            w.writerow(r)
    os.replace(tmp, cpath)
    return jpath, cpath


def read_metrics(out_dir: str | os.PathLike) -> dict[str, Any]:
    """Read back the ``metrics.json`` written by :func:`write_metrics`."""
    return json.loads((Path(out_dir) / "metrics.json").read_text())


def plot_history(result: Any, path: str | os.PathLike) -> Path | None:
    """Plot train/validation loss and the validation metric per epoch to ``path`` (PNG, PDF...).

    Draws with matplotlib's object API (Agg, no pyplot, no global backend change); returns
    ``None`` (and plots nothing) when matplotlib is not installed, else the written path.
    """
    try:
        from matplotlib.figure import Figure  # no pyplot: no global backend state is touched
    except ImportError:
        return None
    data = _as_dict(result)
    hist = list(data.get("history") or [])
    ep = [h["epoch"] for h in hist]
    fig = Figure(figsize=(9, 3.5))
    ax0, ax1 = fig.subplots(1, 2)
    ax0.plot(ep, [h.get("train_loss") for h in hist], label="train loss")
    if any(h.get("val_loss") is not None for h in hist):
        ax0.plot(ep, [h.get("val_loss") for h in hist], label="val loss")
    ax0.set_xlabel("epoch")
    ax0.set_ylabel("loss")
    ax0.legend()
    metric = data.get("metric_name", "metric")
    if any(h.get("val_metric") is not None for h in hist):
        ax1.plot(ep, [h.get("val_metric") for h in hist], marker="o", label=f"val {metric}")
    best = data.get("best_epoch")
    if best:
        ax1.axvline(best, color="gray", linestyle="--", label=f"best epoch {best}")
    if data.get("test_metric") is not None:
        ax1.set_title(f"test {metric} at best epoch: {data['test_metric']:.4g}")
    ax1.set_xlabel("epoch")
    ax1.set_ylabel(metric)
    ax1.legend()
    fig.suptitle(str(data.get("name") or ""))
    fig.tight_layout()
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path)
    return path


_CHECKPOINT_KEYS = ("epoch", "global_step", "model", "optimizer", "scheduler", "history", "best_state",
                    "best_epoch", "best_val", "rng", "config")


def read_checkpoint(path: str | os.PathLike) -> dict[str, Any]:
    """Load a ``checkpoint.pt`` written by :class:`~groupconv.experiments.Trainer` (``weights_only``).

    Raises a one-line ``ValueError`` ("checkpoint ... is unreadable: delete it or pass
    --no-resume") for a truncated, empty or foreign file, never torch's unsafe-load advice.

    Example:
        >>> import tempfile, pathlib
        >>> p = pathlib.Path(tempfile.mkdtemp()) / "checkpoint.pt"
        >>> _ = p.write_bytes(b"")
        >>> try:
        ...     read_checkpoint(p)
        ... except ValueError as err:
        ...     print(str(err).split(": ", 1)[1])
        delete it or pass --no-resume (resume=False)
    """
    advice = "delete it or pass --no-resume (resume=False)"
    try:
        ck = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # truncated, empty, foreign pickle...: never torch's unsafe-load advice
        raise ValueError(f"checkpoint {path} is unreadable ({type(exc).__name__}): {advice}") from None
    if not isinstance(ck, dict) or any(k not in ck for k in _CHECKPOINT_KEYS) or not isinstance(
        ck["config"], dict
    ):
        raise ValueError(f"checkpoint {path} is unreadable (not a groupconv training checkpoint): {advice}")
    return ck
