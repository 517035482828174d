"""A generic, deterministic, resumable training loop with DistributedDataParallel support.

:func:`fit` trains any ``nn.Module`` on a :class:`~groupconv.data.DataSplits` (or a
``(train, val, test)`` triple of data sets), selects the epoch with the best *validation*
metric, keeps that state in memory and reports the *test* metric of that state (never a
test-selected number).

* Determinism: ``torch.manual_seed(seed + rank)`` at the start and a private generator for the
  shuffling. Two CPU runs with equal arguments (and an equally initialised model) agree bit
  for bit. ``deterministic=True`` adds ``torch.use_deterministic_algorithms(True,
  warn_only=True)`` for the run (restored afterwards); it is opt-in because its first call
  imports ``torch._inductor`` (~4 s) and CPU kernels are deterministic already.
* Checkpoints (``out_dir/checkpoint.pt``, written atomically every ``checkpoint_every`` epochs)
  hold the model, optimiser, scheduler, epoch, step, history, best state and every RNG state
  (per rank); ``resume=True`` continues from it and ends with the same result as an
  uninterrupted run. ``metrics.json`` / ``history.csv`` are rewritten after every epoch and
  ``best_model.pt`` (the selected ``state_dict``) at the end.
* DDP: under ``torchrun --nproc_per_node=N`` (``WORLD_SIZE`` > 1 in the environment) the process
  group is initialised (``nccl`` on CUDA, ``gloo`` on CPU), the model wrapped in
  ``DistributedDataParallel``, training data sharded by ``DistributedSampler``, evaluation
  shards reduced exactly (sums of losses and counts), buffers synchronised from rank 0 at the
  end of each epoch, and files written by rank 0 only.
"""

from __future__ import annotations

import math
import os
import sys
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

import torch
import torch.distributed as dist
from torch import nn
from torch.utils.data import (
    BatchSampler,
    DataLoader,
    Dataset,
    RandomSampler,
    SequentialSampler,
    Subset,
    TensorDataset,
)
from torch.utils.data.distributed import DistributedSampler

from .metrics import EpochRecord, LossSpec, TrainResult, get_loss, read_checkpoint, write_metrics

__all__ = ["EpochRecord", "TrainResult", "Trainer", "fit", "count_parameters"]

CHECKPOINT = "checkpoint.pt"


def count_parameters(model: nn.Module, trainable_only: bool = True) -> int:
    """Number of (trainable) parameter entries of ``model``; shared parameters count once."""
    return sum(p.numel() for p in model.parameters() if p.requires_grad or not trainable_only)


class _TensorBatches(Dataset):
    """Indexes every tensor of a ``TensorDataset`` with a whole batch of indices at once."""

    def __init__(self, tensors: Sequence[torch.Tensor]):
        self.tensors = tuple(tensors)

    def __len__(self) -> int:
        return len(self.tensors[0])

    def __getitem__(self, idx: Any) -> tuple[torch.Tensor, ...]:
        idx = torch.as_tensor(idx, dtype=torch.long)
        return tuple(t[idx] for t in self.tensors)


def _resolve_data(data: Any) -> tuple[Dataset, Dataset | None, Dataset | None, str | None, str]:
    if all(hasattr(data, a) for a in ("train", "val", "test")):
        return data.train, data.val, data.test, getattr(data, "loss", None), str(getattr(data, "name", "run"))
    if isinstance(data, Mapping):
        if "train" not in data:
            raise ValueError(f"data as a mapping needs a 'train' key, got keys {sorted(data)}")
        return data["train"], data.get("val"), data.get("test"), None, "run"
    if isinstance(data, (tuple, list)) and len(data) in (2, 3):
        parts = list(data) + [None] * (3 - len(data))
        return parts[0], parts[1], parts[2], None, "run"
    raise TypeError(
        "data must be a DataSplits, a mapping with 'train' (and 'val', 'test') or a "
        f"(train, val[, test]) tuple of data sets, got {type(data).__name__}"
    )


class _CosineWithWarmup:
    """LR factor: linear warm-up over ``warmup`` steps, then cosine decay to 0 at ``total``."""

    def __init__(self, total: int, warmup: int):
        self.total, self.warmup = max(1, total), max(0, warmup)

    def __call__(self, step: int) -> float:
        if step < self.warmup:
            return (step + 1) / self.warmup
        span = max(1, self.total - self.warmup)
        return 0.5 * (1.0 + math.cos(math.pi * min(1.0, (step - self.warmup) / span)))


class _Progress:
    def __init__(self, enabled: bool):
        self.enabled = enabled and sys.stderr.isatty()
        self.last = 0.0

    def update(self, text_fn: Callable[[], str], force: bool = False, end: bool = False) -> None:
        if not self.enabled:
            return
        now = time.perf_counter()
        if force or now - self.last > 0.2:
            self.last = now
            sys.stderr.write("\r" + text_fn()[:150].ljust(100) + ("\n" if end else ""))
            sys.stderr.flush()


class Trainer:
    """Configured training run; :meth:`fit` executes it. See :func:`fit` for the arguments."""

    def __init__(
        self,
        model: nn.Module,
        data: Any,
        *,
        epochs: int = 10,
        lr: float = 1e-3,
        weight_decay: float = 0.0,
        batch_size: int = 64,
        eval_batch_size: int | None = None,
        optimizer: str | Callable[..., torch.optim.Optimizer] = "adam",
        scheduler: str | None = "cosine",
        warmup_steps: int = 0,
        loss: str | None = None,
        device: str | torch.device | None = None,
        seed: int = 0,
        out_dir: str | os.PathLike | None = None,
        checkpoint_every: int = 1,
        resume: bool = True,
        progress: bool = True,
        max_steps: int | None = None,
        param_groups: Callable[..., list[dict]] | Iterable[dict] | None = None,
        regularizer: Callable[[nn.Module], torch.Tensor] | None = None,
        grad_clip: float | None = None,
        deterministic: bool = False,
        distributed: bool | None = None,
        callbacks: Sequence[Callable[[Trainer, EpochRecord], None]] = (),
        name: str | None = None,
    ):
        if not isinstance(model, nn.Module):
            raise TypeError(f"model must be an nn.Module, got {type(model).__name__}")
        for arg, v in (
            ("epochs", epochs),
            ("batch_size", batch_size),
            ("checkpoint_every", checkpoint_every),
        ):
            if isinstance(v, bool) or not isinstance(v, int) or v < 1:
                raise ValueError(f"{arg} must be an int >= 1, got {v!r}")
        if max_steps is not None and (
            isinstance(max_steps, bool) or not isinstance(max_steps, int) or max_steps < 1
        ):
            raise ValueError(f"max_steps must be None or an int >= 1, got {max_steps!r}")
        if not (isinstance(lr, (int, float)) and lr > 0):
            raise ValueError(f"lr must be a float > 0, got {lr!r}")
        if isinstance(optimizer, str) and optimizer not in ("adam", "adamw", "sgd"):
            raise ValueError(f"optimizer must be 'adam', 'adamw', 'sgd' or a callable, got {optimizer!r}")
        if scheduler not in ("cosine", "none", "constant", None):
            raise ValueError(f"scheduler must be 'cosine' or None, got {scheduler!r}")
        if regularizer is not None and not callable(regularizer):
            raise TypeError(
                f"regularizer must be a callable model -> scalar tensor, got {type(regularizer).__name__}"
            )
        self.model = model
        self.train_set, self.val_set, self.test_set, data_loss, data_name = _resolve_data(data)
        self.loss_spec: LossSpec = get_loss(loss or data_loss or "ce")
        self.name = name or data_name
        self.epochs, self.lr, self.weight_decay = epochs, float(lr), float(weight_decay)
        self.batch_size, self.eval_batch_size = batch_size, eval_batch_size or max(batch_size, 256)
        self.optimizer_spec, self.scheduler_spec, self.warmup_steps = optimizer, scheduler, int(warmup_steps)
        self.device_arg, self.seed = device, int(seed)
        self.out_dir = Path(out_dir) if out_dir is not None else None
        self.checkpoint_every, self.resume, self.progress = checkpoint_every, resume, progress
        self.max_steps, self.param_groups, self.regularizer = max_steps, param_groups, regularizer
        self.grad_clip, self.deterministic, self.distributed = grad_clip, deterministic, distributed
        self.callbacks = list(callbacks)
        self.rank, self.world_size = 0, 1
        self.optimizer: torch.optim.Optimizer | None = None
        self.scheduler: torch.optim.lr_scheduler.LRScheduler | None = None
        self.history: list[EpochRecord] = []
        self.global_step = 0
        self.best_state: dict[str, torch.Tensor] | None = None
        self.best_epoch: int | None = None
        self.best_val: float | None = None

    # ------------------------------------------------------------------ setup
    def config(self) -> dict[str, Any]:
        """The hyper-parameters a checkpoint must agree with to be resumed."""
        spec = self.optimizer_spec
        opt = spec if isinstance(spec, str) else getattr(spec, "__qualname__", type(spec).__name__)
        return {
            "epochs": self.epochs,
            "lr": self.lr,
            "weight_decay": self.weight_decay,
            "batch_size": self.batch_size,
            "optimizer": opt,
            "scheduler": self.scheduler_spec or "none",
            "warmup_steps": self.warmup_steps,
            "loss": self.loss_spec.name,
            "seed": self.seed,
            "max_steps": self.max_steps,
            "grad_clip": self.grad_clip,
            "world_size": self.world_size,
        }

    def _setup_distributed(self) -> bool:
        world = int(os.environ.get("WORLD_SIZE", "1"))
        use = (world > 1) if self.distributed is None else bool(self.distributed)
        if not use:
            return False
        if not dist.is_available():
            raise RuntimeError("distributed=True but torch.distributed is not available in this build")
        created = False
        if not dist.is_initialized():
            want_cuda = (self.device_arg is None or torch.device(self.device_arg).type == "cuda") and (
                torch.cuda.is_available()
            )
            dist.init_process_group(backend="nccl" if want_cuda else "gloo")
            created = True
        self.rank, self.world_size = dist.get_rank(), dist.get_world_size()
        return created

    def _resolve_device(self) -> torch.device:
        local = int(os.environ.get("LOCAL_RANK", self.rank))
        if self.device_arg is None:
            dev = torch.device("cuda" if torch.cuda.is_available() else "cpu")
        else:
            dev = torch.device(self.device_arg)
        if dev.type == "cuda":
            if not torch.cuda.is_available():
                raise RuntimeError(
                    f"device={self.device_arg!r} but torch sees no CUDA device; use device='cpu'"
                )
            if dev.index is None:
                dev = torch.device("cuda", local % torch.cuda.device_count() if self.world_size > 1 else 0)
            torch.cuda.set_device(dev)
        return dev

    def _loader(self, ds: Dataset, train: bool) -> DataLoader:
        pin = self.device.type == "cuda"
        if train:
            if self.world_size > 1:
                sampler: Any = DistributedSampler(
                    ds, num_replicas=self.world_size, rank=self.rank, shuffle=True, seed=self.seed
                )
            else:
                sampler = RandomSampler(ds, generator=self.generator)
            bs = self.batch_size
        else:
            if self.world_size > 1:  # exact sharding, no padding: reduced sums stay exact
                idx = list(range(self.rank, len(ds), self.world_size))
                ds = (
                    TensorDataset(*(t[idx] for t in ds.tensors))
                    if isinstance(ds, TensorDataset)
                    else Subset(ds, idx)
                )
            sampler, bs = SequentialSampler(ds), self.eval_batch_size
        if isinstance(ds, TensorDataset):
            return DataLoader(
                _TensorBatches(ds.tensors),
                sampler=BatchSampler(sampler, bs, drop_last=False),
                batch_size=None,
                pin_memory=pin,
                generator=self.generator,
            )
        return DataLoader(ds, batch_size=bs, sampler=sampler, pin_memory=pin, generator=self.generator)

    def _to_device(self, batch: Sequence[torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor]:
        if len(batch) < 2:
            raise ValueError(f"each batch must be (inputs, targets), got {len(batch)} tensor(s)")
        nb = self.device.type == "cuda"
        return batch[0].to(self.device, non_blocking=nb), batch[1].to(self.device, non_blocking=nb)

    def _materialize_lazy(self) -> None:
        if not any(isinstance(p, nn.parameter.UninitializedParameter) for p in self.model.parameters()):
            return
        x, _ = self._to_device(next(iter(self.train_loader)))
        was = self.model.training
        self.model.eval()
        with torch.no_grad():
            self.model(x)
        self.model.train(was)

    def _build_optimizer(self) -> None:
        m = self.model
        if self.param_groups is None:
            groups: Any = [p for p in m.parameters() if p.requires_grad]
        elif callable(self.param_groups):
            groups = self.param_groups(m, lr=self.lr, weight_decay=self.weight_decay)
        else:
            groups = list(self.param_groups)
        spec = self.optimizer_spec
        if callable(spec):
            self.optimizer = spec(groups, lr=self.lr, weight_decay=self.weight_decay)
        elif spec == "adam":
            self.optimizer = torch.optim.Adam(groups, lr=self.lr, weight_decay=self.weight_decay)
        elif spec == "adamw":
            self.optimizer = torch.optim.AdamW(groups, lr=self.lr, weight_decay=self.weight_decay)
        else:
            self.optimizer = torch.optim.SGD(groups, lr=self.lr, momentum=0.9, weight_decay=self.weight_decay)
        steps = self.epochs * len(self.train_loader)
        self.total_steps = min(steps, self.max_steps) if self.max_steps else steps
        if self.scheduler_spec == "cosine":
            self.scheduler = torch.optim.lr_scheduler.LambdaLR(
                self.optimizer, _CosineWithWarmup(self.total_steps, self.warmup_steps)
            )

    # ------------------------------------------------------------ checkpoints
    def _rng_state(self) -> dict[str, Any]:
        st: dict[str, Any] = {"torch": torch.get_rng_state(), "loader": self.generator.get_state()}
        if self.device.type == "cuda":
            st["cuda"] = torch.cuda.get_rng_state(self.device)
        return st

    def _set_rng_state(self, st: Mapping[str, Any]) -> None:
        torch.set_rng_state(st["torch"])
        self.generator.set_state(st["loader"])
        if "cuda" in st and self.device.type == "cuda":
            torch.cuda.set_rng_state(st["cuda"], self.device)

    def _save_checkpoint(self, epoch: int, elapsed: float) -> None:
        rng = [self._rng_state()]
        if self.world_size > 1:
            rng_all: list[Any] = [None] * self.world_size
            dist.all_gather_object(rng_all, rng[0])
            rng = rng_all
        if self.rank == 0 and self.out_dir is not None:
            state = {
                "epoch": epoch,
                "global_step": self.global_step,
                "model": self.model.state_dict(),
                "optimizer": self.optimizer.state_dict(),
                "scheduler": self.scheduler.state_dict() if self.scheduler is not None else None,
                "history": [h.to_dict() for h in self.history],
                "best_state": self.best_state,
                "best_epoch": self.best_epoch,
                "best_val": self.best_val,
                "rng": rng,
                "config": self.config(),
                "elapsed": elapsed,
            }
            path = self.out_dir / CHECKPOINT
            tmp = path.with_name(f".{CHECKPOINT}.tmp{os.getpid()}")
            try:  # atomic: an interrupt (Ctrl-C) leaves the previous checkpoint intact
                torch.save(state, tmp)
                os.replace(tmp, path)
            finally:
                tmp.unlink(missing_ok=True)
        if self.world_size > 1:
            dist.barrier()

    def _load_checkpoint(self) -> tuple[int, float]:
        path = None if self.out_dir is None else self.out_dir / CHECKPOINT
        if not (self.resume and path is not None and path.exists()):
            return 0, 0.0
        ck = read_checkpoint(path)
        ours, theirs = self.config(), ck["config"]
        # more epochs / steps than the checkpoint's run extend it (the cosine schedule is
        # re-spanned over the new total); everything else must agree
        extend = {k for k in ("epochs", "max_steps")
                  if isinstance(theirs.get(k), int) and (ours[k] is None or ours[k] > theirs[k])}
        diff = {k: (theirs.get(k), v) for k, v in ours.items() if theirs.get(k) != v and k not in extend}
        if diff:
            raise ValueError(
                f"cannot resume from {path}: it was written with different settings "
                f"{ {k: f'{a!r} (checkpoint) vs {b!r} (now)' for k, (a, b) in diff.items()} }; "
                "pass --no-resume (resume=False) to start afresh, or another --out (out_dir)"
            )
        self.model.load_state_dict(ck["model"])
        self.optimizer.load_state_dict(ck["optimizer"])
        if self.scheduler is not None and ck["scheduler"] is not None:
            self.scheduler.load_state_dict(ck["scheduler"])
            # the schedule object's state (total steps) is part of the state dict: use this run's
            self.scheduler.lr_lambdas = [_CosineWithWarmup(self.total_steps, self.warmup_steps)
                                         for _ in self.scheduler.lr_lambdas]
        self.history = [EpochRecord(**h) for h in ck["history"]]
        self.global_step = int(ck["global_step"])
        self.best_state, self.best_epoch, self.best_val = ck["best_state"], ck["best_epoch"], ck["best_val"]
        rng = ck["rng"]
        self._set_rng_state(rng[self.rank] if len(rng) == self.world_size else rng[0])
        epoch = int(ck["epoch"])
        if self.rank == 0:
            more = f", extending to {self.epochs} epochs" if "epochs" in extend else ""
            print(f"[{self.name}] resuming from epoch {epoch} ({path}){more}", file=sys.stderr, flush=True)
        return epoch, float(ck.get("elapsed", 0.0))

    # ------------------------------------------------------------------- loop
    def _reduce(self, t: torch.Tensor) -> torch.Tensor:
        if self.world_size > 1:
            dist.all_reduce(t)
        return t

    @torch.no_grad()
    def evaluate(self, loader: DataLoader) -> tuple[float | None, float | None]:
        """Mean loss and metric of the (unwrapped) model over a loader, reduced over ranks."""
        was = self.model.training
        self.model.eval()
        sums = torch.zeros(3, dtype=torch.float64, device=self.device)
        for batch in loader:
            x, y = self._to_device(batch)
            out = self.model(x)
            sums += torch.stack([s.to(torch.float64) for s in self.loss_spec.stats(out, y)])
        self.model.train(was)
        loss_sum, metric_sum, count = self._reduce(sums).tolist()
        if count == 0:
            return None, None
        return loss_sum / count, metric_sum / count

    def _sync_buffers(self) -> None:
        if self.world_size > 1:
            for b in self.model.buffers():
                dist.broadcast(b, src=0)

    def _train_epoch(self, net: nn.Module, epoch: int, prog: _Progress) -> tuple[float, float | None, bool]:
        """One pass over the training shard; returns (mean loss, mean regulariser, max_steps hit)."""
        net.train()
        sampler = self.train_loader.sampler
        inner = sampler.sampler if isinstance(sampler, BatchSampler) else sampler
        if isinstance(inner, DistributedSampler):
            inner.set_epoch(epoch)
        n_batches = len(self.train_loader)
        sums = torch.zeros(3, dtype=torch.float64, device=self.device)  # loss, regulariser, count
        done = False
        for i, batch in enumerate(self.train_loader):
            x, y = self._to_device(batch)
            loss = self.loss_spec.loss(net(x), y)
            total, reg = loss, None
            if self.regularizer is not None:
                reg = self.regularizer(self.model)
                total = total + reg
            self.optimizer.zero_grad(set_to_none=True)
            total.backward()
            if self.grad_clip is not None:
                nn.utils.clip_grad_norm_(self.model.parameters(), float(self.grad_clip))
            self.optimizer.step()
            if self.scheduler is not None:
                self.scheduler.step()
            self.global_step += 1
            n = float(y.shape[0])
            r = reg.detach().to(torch.float64) * n if reg is not None else sums.new_zeros(())
            sums += torch.stack([loss.detach().to(torch.float64) * n, r, sums.new_tensor(n)])
            prefix = f"[{self.name}] epoch {epoch}/{self.epochs} step {i + 1}/{n_batches}"
            shown = loss.detach()
            prog.update(lambda prefix=prefix, shown=shown: f"{prefix} loss {float(shown):.4f}")
            if self.max_steps is not None and self.global_step >= self.max_steps:
                done = True
                break
        loss_sum, reg_sum, count = self._reduce(sums).tolist()
        train_loss = loss_sum / max(count, 1.0)
        if not math.isfinite(train_loss):
            raise FloatingPointError(
                f"training loss became {train_loss} in epoch {epoch} (lr={self.lr}); "
                "lower the learning rate or set grad_clip"
            )
        return train_loss, (reg_sum / max(count, 1.0) if self.regularizer is not None else None), done

    def fit(self) -> TrainResult:
        """Train, select by validation, evaluate the test split; returns a :class:`TrainResult`."""
        created_pg = self._setup_distributed()
        self.device = self._resolve_device()
        det = bool(self.deterministic)
        prev_det = (
            torch.are_deterministic_algorithms_enabled(),
            torch.is_deterministic_algorithms_warn_only_enabled(),
        )
        if det:
            torch.use_deterministic_algorithms(True, warn_only=True)
        try:
            return self._fit()
        finally:
            if det:
                torch.use_deterministic_algorithms(prev_det[0], warn_only=prev_det[1])
            if created_pg and dist.is_initialized():
                dist.destroy_process_group()

    def _fit(self) -> TrainResult:
        torch.manual_seed(self.seed + self.rank)
        self.generator = torch.Generator().manual_seed(self.seed)
        if self.out_dir is not None and self.rank == 0:
            self.out_dir.mkdir(parents=True, exist_ok=True)
        self.model.to(self.device)
        self.train_loader = self._loader(self.train_set, train=True)
        val_loader = (
            self._loader(self.val_set, False) if self.val_set is not None and len(self.val_set) else None
        )
        test_loader = (
            self._loader(self.test_set, False) if self.test_set is not None and len(self.test_set) else None
        )
        self._materialize_lazy()
        self._build_optimizer()
        start_epoch, elapsed0 = self._load_checkpoint()
        net: nn.Module = self.model
        if self.world_size > 1:
            ids = [self.device.index] if self.device.type == "cuda" else None
            net = nn.parallel.DistributedDataParallel(self.model, device_ids=ids)
        prog = _Progress(self.progress and self.rank == 0)
        spec = self.loss_spec
        t_start = time.perf_counter()
        done = self.max_steps is not None and self.global_step >= self.max_steps
        for epoch in range(start_epoch + 1, self.epochs + 1):
            if done:
                break
            t0 = time.perf_counter()
            train_loss, train_reg, done = self._train_epoch(net, epoch, prog)
            self._sync_buffers()
            val_loss, val_metric = self.evaluate(val_loader) if val_loader is not None else (None, None)
            rec = EpochRecord(
                epoch=epoch,
                steps=self.global_step,
                train_loss=train_loss,
                val_loss=val_loss,
                val_metric=val_metric,
                lr=float(self.optimizer.param_groups[0]["lr"]),
                time_s=time.perf_counter() - t0,
                train_regularizer=train_reg,
            )
            self.history.append(rec)
            if val_metric is None or spec.better(val_metric, self.best_val):
                self.best_val, self.best_epoch = val_metric, epoch
                self.best_state = {
                    k: v.detach().to("cpu", copy=True) for k, v in self.model.state_dict().items()
                }
            line = self._epoch_line(rec)
            prog.update(lambda line=line: line, force=True, end=True)
            if self.out_dir is not None and (
                epoch % self.checkpoint_every == 0 or epoch == self.epochs or done
            ):
                self._save_checkpoint(epoch, elapsed0 + time.perf_counter() - t_start)
                if self.rank == 0:
                    write_metrics(
                        self.out_dir, self._result(None, None, elapsed0 + time.perf_counter() - t_start)
                    )
            for cb in self.callbacks:
                cb(self, rec)
        if self.best_state is not None:
            self.model.load_state_dict(self.best_state)
        test_loss, test_metric = self.evaluate(test_loader) if test_loader is not None else (None, None)
        result = self._result(test_loss, test_metric, elapsed0 + time.perf_counter() - t_start)
        if self.out_dir is not None and self.rank == 0:
            write_metrics(self.out_dir, result)
            if self.best_state is not None:
                tmp = self.out_dir / ".best_model.pt.tmp"
                torch.save(self.best_state, tmp)
                os.replace(tmp, self.out_dir / "best_model.pt")
        if self.world_size > 1:
            dist.barrier()
        return result

    def _epoch_line(self, rec: EpochRecord) -> str:
        val = "" if rec.val_metric is None else f" | val {self.loss_spec.metric_name} {rec.val_metric:.4f}"
        return (
            f"[{self.name}] epoch {rec.epoch}/{self.epochs} train loss {rec.train_loss:.4f}{val} "
            f"| {rec.time_s:.1f}s"
        )

    def _result(self, test_loss: float | None, test_metric: float | None, elapsed: float) -> TrainResult:
        has_val = any(h.val_metric is not None for h in self.history)
        return TrainResult(
            name=self.name,
            metric_name=self.loss_spec.metric_name,
            higher_is_better=self.loss_spec.higher_is_better,
            history=list(self.history),
            best_epoch=self.best_epoch,
            best_val_metric=self.best_val,
            test_metric=test_metric,
            test_loss=test_loss,
            num_params=count_parameters(self.model),
            steps=self.global_step,
            total_time_s=elapsed,
            selection="val" if has_val else "last",
            config=self.config(),
            out_dir=None if self.out_dir is None else str(self.out_dir),
        )


def fit(model: nn.Module, data: Any, **kwargs: Any) -> TrainResult:
    """Train ``model`` on ``data`` and return the validation-selected :class:`TrainResult`.

    Args:
        model: any module mapping a batch of inputs to outputs (logits ``(N, K)``, ``(N, K, L)``
            for ``"seq-ce"``, or regression outputs). After ``fit`` it holds the selected state.
        data: a :class:`~groupconv.data.DataSplits`, a mapping with ``"train"``/``"val"``/``"test"``
            or a ``(train, val[, test])`` tuple of data sets yielding ``(inputs, targets)``.
        epochs, lr, weight_decay, batch_size: the usual; ``eval_batch_size`` defaults to
            ``max(batch_size, 256)``.
        optimizer: ``"adam"`` (L2 weight decay), ``"adamw"``, ``"sgd"`` (momentum 0.9) or a
            callable ``(params, lr=, weight_decay=) -> Optimizer``.
        scheduler: ``"cosine"`` (per step, to 0 at the last step, after ``warmup_steps`` linear
            warm-up steps) or ``None``.
        loss: ``"ce"`` (metric accuracy), ``"mse"`` (metric MSE), ``"seq-ce"`` (metric: the
            per-step cross-entropy); default: the data set's ``loss``, else ``"ce"``.
        device: ``"cpu"``, ``"cuda"``...; default CUDA when available (``cuda:LOCAL_RANK`` under DDP).
        seed: seeds torch's global RNG (``seed + rank``) and the shuffling generator.
        out_dir: where ``checkpoint.pt``, ``metrics.json``, ``history.csv`` and ``best_model.pt`` go.
        checkpoint_every: checkpoint period in epochs (the last epoch is always saved).
        resume: continue from ``out_dir/checkpoint.pt`` when it exists (settings must match).
        progress: a ``\\r`` progress line on stderr (rank 0, only when stderr is a terminal).
        max_steps: stop after this many optimiser steps (the cosine schedule spans them).
        param_groups: optimiser groups: a list, or a callable ``(model, lr=, weight_decay=)``
            such as :func:`groupconv.kernels.param_groups`.
        regularizer: callable ``model -> scalar`` added to the loss (e.g. a Nyquist penalty).
        grad_clip: clip the global gradient norm to this value.
        deterministic: ``torch.use_deterministic_algorithms(True, warn_only=True)`` during the
            run (restored afterwards); off by default (see the module docstring).
        distributed: force DDP on/off; default: on when ``WORLD_SIZE`` > 1 (``torchrun``).
        callbacks: ``fn(trainer, epoch_record)`` called after each epoch (after its checkpoint).
        name: run name (default: the data set's).

    Example:
        >>> import torch
        >>> from torch.utils.data import TensorDataset
        >>> g = torch.Generator().manual_seed(0)
        >>> x = torch.randn(64, 3, generator=g); y = (x[:, 0] > 0).long()
        >>> ds = TensorDataset(x, y)
        >>> _ = torch.manual_seed(0)
        >>> res = fit(torch.nn.Linear(3, 2), (ds, ds, ds), epochs=20, lr=0.05, batch_size=16,
        ...           device="cpu", progress=False)
        >>> res.metric_name, res.test_metric > 0.9, len(res.history)
        ('accuracy', True, 20)
    """
    return Trainer(model, data, **kwargs).fit()
