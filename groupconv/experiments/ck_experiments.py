"""Continuous-kernel experiments E1-E3 (offline, 2-core CPU, minutes each).

Registered experiments (``groupconv train NAME``, :func:`~groupconv.experiments.run_experiment`):

=======================  ====================================================================
``adding``               E1: adding problem, ``T = 200``, MSE (trivial predictor: 0.167).
                         ``model="ckcnn"`` (default) or ``"tcn"`` (same depth, ``k = 3``, no
                         dilation: receptive field 9, cannot see both markers).
``copy-memory``          E1: copy memory, ``T = 100``, 10 symbols; per-step cross-entropy
                         (memoryless baseline ``10 ln 8 / (T + 20) = 0.173``).
``mnist1d``              E2: mnist1d (length 40), accuracy; ``model="ccnn"`` (default),
                         ``"ckcnn"``, ``"flexnet"`` or ``"cnn"`` (the mnist1d reference CNN, 94%).
``mnist1d-resolution``   E3: train at length 40, select on validation at 40, *test at length
                         80* (linearly resampled): ``kernel="magnet"`` with the Nyquist
                         regulariser (``nyquist=0.1``, default) vs ``kernel="siren"``,
                         ``nyquist=0``.
=======================  ====================================================================

Every experiment reports the *validation-selected* test metric (:func:`~groupconv.experiments.fit`).
``quick=True`` shrinks data, model and epochs to a seconds-long smoke run (CI).
:func:`compare` runs several variants of one experiment; :func:`resolution_study` runs E3's
variants and evaluates every selected model at both resolutions.

Example:
    >>> from groupconv.experiments import get_experiment
    >>> get_experiment("adding").config(quick=True)["seq_len"]
    50
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from typing import Any

import torch
from torch import nn
from torch.utils.data import TensorDataset

from ..kernels.regularizers import NyquistRegularizer, ln_kernel_norm
from ..models.baselines import TCN, ConvNet
from ..models.ccnn import CCNN
from ..models.ckcnn import CKCNN, nyquist_terms, sampled_kernels
from ..models.flexnet import FlexNet
from .registry import Experiment, get_experiment, register_experiment
from .trainer import TrainResult, fit

__all__ = ["KernelRegularizer", "build_sequence_model", "compare", "resolution_study", "EXPERIMENTS"]

_FIT_KEYS = ("epochs", "lr", "batch_size", "weight_decay", "seed", "grad_clip", "optimizer", "warmup_steps")


class KernelRegularizer:
    """``model -> scalar``: Nyquist anti-aliasing penalty plus an Lp norm of the sampled kernels.

    ``nyquist`` is the factor of :class:`~groupconv.kernels.NyquistRegularizer` (FlexConv: 0.1,
    ``method="together"``, 2 Gaussian standard deviations); ``ln_weight`` multiplies the
    (unsquared) ``p``-norm of every sampled kernel (CKConv's "weight decay"). Terms with a
    zero factor are skipped; layers that have not seen an input yet are ignored.

    Example:
        >>> net = CKCNN(1, 1, hidden_channels=2, num_blocks=1, kernel_net="magnet")
        >>> _ = net(torch.randn(1, 1, 40))
        >>> float(KernelRegularizer(nyquist=0.1)(net).detach()) >= 0
        True
    """

    def __init__(self, nyquist: float = 0.0, ln_weight: float = 0.0, p: float = 2.0) -> None:
        self.nyquist = float(nyquist)
        self.ln_weight = float(ln_weight)
        self.p = float(p)
        self._nyq = NyquistRegularizer(self.nyquist) if self.nyquist > 0 else None

    def __call__(self, model: nn.Module) -> torch.Tensor:  # noqa: D102
        total = next(model.parameters()).new_zeros(())
        if self._nyq is not None:
            terms = nyquist_terms(model)
            if terms:
                total = total + self._nyq(terms)
        if self.ln_weight > 0:
            kernels = sampled_kernels(model)
            if kernels:
                total = total + self.ln_weight * ln_kernel_norm(kernels, p=self.p)
        return total

    def __repr__(self) -> str:
        return f"KernelRegularizer(nyquist={self.nyquist}, ln_weight={self.ln_weight}, p={self.p})"


def build_sequence_model(cfg: Mapping[str, Any], in_channels: int, out_channels: int,
                         readout: str) -> nn.Module:
    """The model named by ``cfg["model"]`` for a sequence task (keys documented per experiment)."""
    name = cfg["model"]
    kernel_kwargs: dict[str, Any] = dict(cfg.get("kernel_net_kwargs") or {})
    if name == "ckcnn":
        return CKCNN(in_channels, out_channels, int(cfg["hidden"]), int(cfg["blocks"]), cfg["kernel"],
                     readout, conv=cfg.get("conv", "ck"), causal=bool(cfg.get("causal", True)),
                     norm=cfg.get("norm", "layer"), dropout=float(cfg.get("dropout", 0.0)),
                     kernel_net_kwargs=kernel_kwargs, conv_kwargs=dict(cfg.get("conv_kwargs") or {}))
    if name == "tcn":
        return TCN(in_channels, out_channels, int(cfg["hidden"]), int(cfg["blocks"]),
                   kernel_size=int(cfg.get("tcn_kernel_size", 3)), readout=readout,
                   norm=cfg.get("norm", "layer"))
    if name == "ccnn":
        head = "sequence" if readout == "sequence" else "classification"
        return CCNN(in_channels, out_channels, 1, int(cfg["hidden"]), int(cfg["blocks"]), cfg["kernel"],
                    head, conv=cfg.get("conv", "separable-flex"), causal=bool(cfg.get("causal", False)),
                    norm=cfg.get("norm", "batch"), dropout=float(cfg.get("dropout", 0.0)),
                    stem=cfg.get("stem", "conv"), kernel_net_kwargs=kernel_kwargs,
                    conv_kwargs=dict(cfg.get("conv_kwargs") or {}))
    if name == "flexnet":
        return FlexNet(in_channels, out_channels, int(cfg["hidden"]), int(cfg["blocks"]), 1, cfg["kernel"],
                       "same", norm=cfg.get("norm", "batch"), dropout=float(cfg.get("dropout", 0.0)),
                       kernel_net_kwargs=kernel_kwargs, conv_kwargs=dict(cfg.get("conv_kwargs") or {}))
    if name == "cnn":
        return ConvNet(in_channels, out_channels, channels=int(cfg.get("cnn_channels", 25)))
    raise ValueError(f"model must be 'ckcnn', 'tcn', 'ccnn', 'flexnet' or 'cnn', got {name!r}")


def _fit_kwargs(cfg: Mapping[str, Any]) -> dict[str, Any]:
    kw = {k: cfg[k] for k in _FIT_KEYS if k in cfg}
    reg = KernelRegularizer(float(cfg.get("nyquist", 0.0)), float(cfg.get("ln_weight", 0.0)))
    if reg.nyquist > 0 or reg.ln_weight > 0:
        kw["regularizer"] = reg
    if cfg.get("mask_lr_factor") is not None:
        from ..kernels.param_groups import param_groups

        factor = float(cfg["mask_lr_factor"])

        def groups(model: nn.Module, lr: float, weight_decay: float = 0.0) -> list[dict]:
            return param_groups(model, lr, lr_factors={"mask": factor}, weight_decay=weight_decay)

        kw["param_groups"] = groups
    kw.setdefault("progress", False)
    return kw


# ----------------------------------------------------------------------------- E1: adding
def _build_adding(cfg: dict[str, Any]) -> tuple[nn.Module, Any, dict[str, Any]]:
    from ..data import adding_problem

    data = adding_problem(seq_len=int(cfg["seq_len"]), n_train=int(cfg["n_train"]), n_val=int(cfg["n_val"]),
                          n_test=int(cfg["n_test"]), seed=int(cfg["data_seed"]))
    return build_sequence_model(cfg, 2, 1, "last"), data, _fit_kwargs(cfg)


#: the CKCNN of the memory tasks. ``chang_rule="reference"``: the references' sqrt(1/fan_in) output
#: scaling (kernels ~30x below unit gain at init), the rule their 3 seeds were measured with (adding
#: test MSE 0.0165 +- 0.0179). The layers' default ``"energy"`` (the same weights times a fixed
#: gain) gave 0.0242 +- 0.0249, the old ``"energy_weight"`` 0.0592 +- 0.0801 (seed 0 unsolved,
#: seeds 1-2 solved): docs/results.md.
_SEQ_MODEL = {"hidden": 30, "blocks": 2, "kernel": "siren", "kernel_net_kwargs": {"omega_0": 30.0},
              "conv": "ck", "norm": "layer", "causal": True, "dropout": 0.0,
              "conv_kwargs": {"chang_rule": "reference"}}

ADDING = Experiment(
    name="adding",
    description="E1 adding problem T=200: CKCNN (SIREN, 2x30) vs model='tcn' (k=3, no dilation); MSE, "
                "trivial 0.167",
    build=_build_adding,
    default_config={"model": "ckcnn", **_SEQ_MODEL, "norm": "batch", "seq_len": 200, "n_train": 5000,
                    "n_val": 1000,
                    "n_test": 1000, "data_seed": 0, "epochs": 10, "lr": 2e-3, "batch_size": 32,
                    "weight_decay": 0.0, "grad_clip": 1.0, "seed": 0},
    # quick: one epoch of 8 steps is too short for BatchNorm running statistics
    quick_config={"seq_len": 50, "n_train": 256, "n_val": 64, "n_test": 64, "epochs": 1, "hidden": 8,
                  "batch_size": 32, "norm": "layer"},
    tags=("E1", "sequences", "ckconv"),
)


# ----------------------------------------------------------------------------- E1: copy memory
def _build_copy(cfg: dict[str, Any]) -> tuple[nn.Module, Any, dict[str, Any]]:
    from ..data import copy_memory

    data = copy_memory(seq_len=int(cfg["seq_len"]), memory_len=int(cfg["memory_len"]),
                       n_train=int(cfg["n_train"]), n_val=int(cfg["n_val"]), n_test=int(cfg["n_test"]),
                       seed=int(cfg["data_seed"]))
    k = int(data.num_classes or 10)
    return build_sequence_model(cfg, int(data.input_shape[0]), k, "sequence"), data, _fit_kwargs(cfg)


COPY_MEMORY = Experiment(
    name="copy-memory",
    description="E1 copy memory T=100: CKCNN (SIREN, 2x30) per-step CE vs the memoryless 10 ln8/(T+20)",
    build=_build_copy,
    default_config={"model": "ckcnn", **_SEQ_MODEL, "seq_len": 100, "memory_len": 10, "n_train": 5000,
                    "n_val": 1000, "n_test": 1000, "data_seed": 0, "epochs": 3, "lr": 2e-3,
                    "batch_size": 32, "weight_decay": 0.0, "grad_clip": 1.0, "seed": 0},
    quick_config={"seq_len": 20, "n_train": 256, "n_val": 64, "n_test": 64, "epochs": 1, "hidden": 8},
    tags=("E1", "sequences", "ckconv"),
)


# ----------------------------------------------------------------------------- E2: mnist1d
def _mnist1d_data(cfg: Mapping[str, Any]):
    from ..data import mnist1d

    return mnist1d(num_samples=int(cfg["num_samples"]), seed=int(cfg["data_seed"]), length=40)


def _build_mnist1d(cfg: dict[str, Any]) -> tuple[nn.Module, Any, dict[str, Any]]:
    data = _mnist1d_data(cfg)
    return build_sequence_model(cfg, 1, 10, "mean"), data, _fit_kwargs(cfg)


_CCNN_CONV_KWARGS: dict[str, Any] = {"mask_init_sigma": 0.5}
_CCNN_MODEL = {"model": "ccnn", "hidden": 32, "blocks": 2, "kernel": "magnet", "kernel_net_kwargs": {},
               "conv": "separable-flex", "conv_kwargs": dict(_CCNN_CONV_KWARGS), "norm": "batch",
               "causal": False, "dropout": 0.1, "stem": "conv"}

MNIST1D = Experiment(
    name="mnist1d",
    description="E2 mnist1d (length 40): CCNN-2,32 (SeparableFlexConv + MAGNet); model='ckcnn'|'cnn' "
                "to compare (reference CNN 94%)",
    build=_build_mnist1d,
    default_config={**_CCNN_MODEL, "num_samples": 5000, "data_seed": 42, "epochs": 30, "lr": 3e-3,
                    "batch_size": 64, "weight_decay": 1e-4, "optimizer": "adamw", "grad_clip": 1.0,
                    "mask_lr_factor": 0.1, "nyquist": 0.0, "seed": 0},
    quick_config={"num_samples": 400, "epochs": 1, "hidden": 8, "blocks": 1},
    tags=("E2", "sequences", "ccnn"),
)


# ----------------------------------------------------------------------------- E3: resolution
def _build_resolution(cfg: dict[str, Any]) -> tuple[nn.Module, Any, dict[str, Any]]:
    from ..data import DataSplits, resample

    data = _mnist1d_data(cfg)
    test_len = int(cfg["test_length"])
    x_test, y_test = data.test.tensors
    shifted = DataSplits(
        f"mnist1d-40to{test_len}", data.train, data.val,
        TensorDataset(resample(x_test, test_len), y_test),
        task=data.task, loss=data.loss, input_shape=data.input_shape, num_classes=data.num_classes,
        baseline=data.baseline, baseline_note=data.baseline_note,
        info={**data.info, "test_length": test_len, "test_at_train_length": data.test},
    )
    cfg = dict(cfg)
    cfg["kernel_net_kwargs"] = dict(cfg.get("kernel_net_kwargs") or {})
    if cfg["kernel"] == "siren":
        cfg["kernel_net_kwargs"].setdefault("omega_0", float(cfg["siren_omega_0"]))
    return build_sequence_model(cfg, 1, 10, "mean"), shifted, _fit_kwargs(cfg)


RESOLUTION = Experiment(
    name="mnist1d-resolution",
    description="E3 mnist1d train at 40 / test at 80 (zero-shot): MAGNet + Nyquist (default) vs "
                "kernel='siren', nyquist=0",
    build=_build_resolution,
    # chang_rule "energy_weight": the output scaling its 3 seeds per kernel were measured with
    # (docs/results.md); the layers' default moved to "energy" (a fixed kernel gain) afterwards
    default_config={**MNIST1D.default_config, "kernel": "magnet", "nyquist": 0.1, "test_length": 80,
                    "epochs": 20, "siren_omega_0": 30.0, "stem": "linear",
                    "conv_kwargs": {**_CCNN_CONV_KWARGS, "chang_rule": "energy_weight"}},
    quick_config=dict(MNIST1D.quick_config),
    tags=("E3", "sequences", "ccnn", "resolution"),
)

#: the experiments this module registers
EXPERIMENTS: tuple[Experiment, ...] = (ADDING, COPY_MEMORY, MNIST1D, RESOLUTION)

for _exp in EXPERIMENTS:
    register_experiment(_exp, overwrite=True)


# ----------------------------------------------------------------------------- drivers
def _run(name: str, quick: bool, overrides: Mapping[str, Any] | None,
         fit_overrides: Mapping[str, Any] | None) -> tuple[nn.Module, Any, TrainResult]:
    exp = get_experiment(name)
    cfg = exp.config(quick=quick, overrides=overrides)
    torch.manual_seed(int(cfg.get("seed", 0)))
    model, data, kwargs = exp.build(cfg)
    kwargs = {"name": exp.name, **kwargs, **(fit_overrides or {})}
    return model, data, fit(model, data, **kwargs)


def compare(name: str, variants: Mapping[str, Mapping[str, Any]], *, quick: bool = False,
            **fit_overrides: Any) -> dict[str, TrainResult]:
    """Run experiment ``name`` once per variant (config overrides); returns ``{label: TrainResult}``.

    Example (E1's claim: CKCNN solves the adding problem, the k=3 TCN cannot)::

        compare("adding", {"ckcnn": {}, "tcn": {"model": "tcn"}})
    """
    return {label: _run(name, quick, ov, fit_overrides)[2] for label, ov in variants.items()}


@torch.no_grad()
def _accuracy(model: nn.Module, ds: TensorDataset, batch_size: int = 500) -> float:
    model.eval()
    x, y = ds.tensors
    device = next(model.parameters()).device
    correct = 0
    for i in range(0, len(x), batch_size):
        correct += int((model(x[i:i + batch_size].to(device)).argmax(1).cpu() == y[i:i + batch_size]).sum())
    return correct / max(1, len(x))


def resolution_study(
    variants: Mapping[str, Mapping[str, Any]] | None = None,
    *,
    quick: bool = False,
    **fit_overrides: Any,
) -> dict[str, dict[str, float]]:
    """E3: per variant, the validation-selected model's test accuracy at length 40 and at 80.

    Default variants: ``"magnet+nyquist"`` (MAGNet, ``nyquist=0.1``), ``"magnet"``
    (``nyquist=0``) and ``"siren"`` (SIREN, ``nyquist=0``). Returns
    ``{label: {"acc_train_length", "acc_test_length", "retained", "val_acc", "time_s", "params"}}``.
    """
    if variants is None:
        variants = {
            "magnet+nyquist": {"kernel": "magnet", "nyquist": 0.1},
            "magnet": {"kernel": "magnet", "nyquist": 0.0},
            "siren": {"kernel": "siren", "nyquist": 0.0},
        }
    out: dict[str, dict[str, float]] = {}
    for label, ov in variants.items():
        t0 = time.perf_counter()
        model, data, res = _run("mnist1d-resolution", quick, ov, fit_overrides)
        acc40 = _accuracy(model, data.info["test_at_train_length"])
        acc80 = float(res.test_metric) if res.test_metric is not None else float("nan")
        out[label] = {
            "acc_train_length": acc40,
            "acc_test_length": acc80,
            "retained": acc80 / acc40 if acc40 > 0 else float("nan"),
            "val_acc": float(res.best_val_metric or float("nan")),
            "time_s": time.perf_counter() - t0,
            "params": float(res.num_params),
        }
    return out
