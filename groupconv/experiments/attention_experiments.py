"""Attention on groups, on rotated scikit-learn digits: CNN vs P4CNN vs alpha-P4CNN vs GSA-Net.

Registered experiment (``groupconv train attention-digits``,
:func:`~groupconv.experiments.run_experiment`):

``attention-digits``
    the data of the ``rotated-digits`` experiment (scikit-learn's 8x8 digits upsampled to
    16x16, rotated by uniformly random angles, fixed seed, stratified 60/20/20 split,
    :func:`~groupconv.experiments.gconv_experiments.digits_data`), classified by ``model=``

    * ``"cnn"``: :class:`~groupconv.models.gcnn.Z2CNN` with ``2 * channels`` channels;
    * ``"p4cnn"``: :class:`~groupconv.models.gcnn.GCNN` on ``CyclicGroup(4)``, ``channels``
      fields per layer;
    * ``"alpha-p4cnn"``: :func:`~groupconv.models.attentive.alpha_p4cnn` (the same layout with
      attentive lifting/group convolutions, channel + spatial attention, Romero et al. 2020)
      with ``alpha_channels`` fields (fewer, to pay for the attention parameters);
      ``channel_attention`` / ``spatial_attention`` switch either map off (ablations);
    * ``"gsa"``: a small :class:`~groupconv.nn.GroupTransformer` (GSA-Net, Romero & Cordonnier
      2021) on C4: lifting self-attention at full resolution, a 2x2 pool, then
      ``gsa_blocks`` transformer blocks of local (``gsa_patch_size``) group self-attention;
      BatchNorm in the blocks, a per-sample norm after the lifting layer
      (``gsa_lift_norm="instance"``: BatchNorm's running statistics of the near-blank lifted
      features left eval mode at chance, docs/results.md).

    At the defaults all four have 7.3k-7.8k parameters (within 15% of the P4CNN's 7.3k;
    :func:`parameter_budgets` counts them without training). Every model is trained with the
    same optimiser settings; the metric is the validation-selected test accuracy.

:func:`compare_attention_digits` trains all four and returns one row each;
:func:`format_attention_table` prints them. The P4CNN, alpha-P4CNN and GSA-Net are exactly
invariant to rotations by multiples of 90 degrees (every pooled map size is even).

Example:
    >>> from groupconv.experiments import get_experiment
    >>> cfg = get_experiment("attention-digits").config(quick=True)
    >>> cfg["model"], cfg["size"]
    ('alpha-p4cnn', 8)
    >>> type(build_attention_model("gsa", cfg)).__name__
    'GroupTransformer'
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

import torch
from torch import nn

from ..groups import CyclicGroup
from .gconv_experiments import build_digits_model, digits_data
from .registry import Experiment, get_experiment, register_experiment
from .trainer import TrainResult, count_parameters, fit

__all__ = [
    "ATTENTION_MODELS",
    "ATTENTION_DEFAULTS",
    "ATTENTION_QUICK",
    "BUDGET_TOLERANCE",
    "build_attention_model",
    "parameter_budgets",
    "compare_attention_digits",
    "format_attention_table",
]

#: model names of the ``attention-digits`` experiment, with a display label.
ATTENTION_MODELS: dict[str, str] = {
    "cnn": "plain CNN (Z2CNN)",
    "p4cnn": "P4CNN",
    "alpha-p4cnn": "alpha-P4CNN (channel + spatial attention)",
    "gsa": "GroupTransformer (C4 local GSA)",
}

#: largest relative deviation of a model's parameter count from the P4CNN's at the defaults.
BUDGET_TOLERANCE = 0.15

#: the full configuration (a few CPU minutes per model with one thread; the GSA-Net is slowest).
ATTENTION_DEFAULTS: dict[str, Any] = {
    "model": "alpha-p4cnn",
    "size": 16,
    "data_seed": 0,
    "train_fraction": 1.0,
    "step_fraction": 0.5,
    # CNN / P4CNN / alpha-P4CNN layout (that of ``rotated-digits``)
    "channels": 8,
    "alpha_channels": 7,
    "layers": 4,
    "pool_after": [1, 2],
    "kernel_size": 3,
    "first_kernel_size": 5,
    # attention of the alpha-P4CNN
    "attention_form": "full",
    "spatial_kernel_size": 7,
    "reduction": 2,
    "channel_attention": True,
    "spatial_attention": True,
    # the GroupTransformer
    "gsa_channels": 16,
    "gsa_blocks": [0, 3],
    "gsa_heads": 8,  # GSA-Nets use 9; 2 fitted far more slowly (docs/results.md)
    "gsa_head_channels": None,  # None: heads split gsa_channels; an int: GSA-Nets' per-head width
    "gsa_patch_size": 3,
    "gsa_mlp_ratio": 0.5,
    "gsa_norm": "batch",  # per-location LayerNorm left the model at chance (see notes)
    "gsa_lift_norm": "instance",  # no running statistics on the near-blank lifted features (notes)
    # training (shared by all models)
    "epochs": 20,
    "lr": 1e-2,  # 3e-3 left every model underfit (validation: P4CNN 90.3 -> 95.0 %, docs/results.md)
    "batch_size": 64,
    "weight_decay": 1e-4,
    "optimizer": "adamw",
    "seed": 0,
}

#: overrides of the quick (seconds) version: tiny models on 8x8 digits, two epochs on 30% of the
#: training set.
ATTENTION_QUICK: dict[str, Any] = {
    "size": 8,
    "channels": 3,
    "alpha_channels": 3,
    "layers": 3,
    "pool_after": [0, 1],
    "first_kernel_size": 3,
    "spatial_kernel_size": 3,
    "gsa_channels": 4,
    "gsa_blocks": [0, 1],
    "gsa_heads": 1,
    "epochs": 2,
    "train_fraction": 0.3,
}

_FIT_KEYS = ("epochs", "lr", "batch_size", "weight_decay", "seed", "optimizer")


def build_attention_model(model: str, cfg: Mapping[str, Any], num_classes: int = 10) -> nn.Module:
    """The ``"cnn"``, ``"p4cnn"``, ``"alpha-p4cnn"`` or ``"gsa"`` network for ``cfg``.

    Example:
        >>> cfg = {**ATTENTION_DEFAULTS}
        >>> build_attention_model("alpha-p4cnn", cfg).form
        'full'
        >>> build_attention_model("mlp", cfg)
        Traceback (most recent call last):
        ...
        ValueError: model must be one of ('cnn', 'p4cnn', 'alpha-p4cnn', 'gsa'), got 'mlp'
    """
    if model not in ATTENTION_MODELS:
        raise ValueError(f"model must be one of {tuple(ATTENTION_MODELS)}, got {model!r}")
    if model == "cnn":
        return build_digits_model("cnn", cfg, num_classes)
    if model == "p4cnn":
        return build_digits_model("c4", cfg, num_classes)
    if model == "alpha-p4cnn":
        from ..models.attentive import alpha_p4cnn

        layers = int(cfg["layers"])
        return alpha_p4cnn(
            1, num_classes, channels=(int(cfg["alpha_channels"]),) * layers,
            kernel_size=int(cfg["kernel_size"]), first_kernel_size=int(cfg["first_kernel_size"]),
            pool_after=tuple(int(i) for i in cfg["pool_after"]), form=str(cfg["attention_form"]),
            spatial_kernel_size=int(cfg["spatial_kernel_size"]), reduction=int(cfg["reduction"]),
            channel_attention=bool(cfg.get("channel_attention", True)),
            spatial_attention=bool(cfg.get("spatial_attention", True)),
        )
    from ..nn.attention.transformer import GroupTransformer

    patch = cfg["gsa_patch_size"]
    return GroupTransformer(
        1, num_classes, CyclicGroup(4), channels=int(cfg["gsa_channels"]),
        blocks=tuple(int(b) for b in cfg["gsa_blocks"]), heads=int(cfg["gsa_heads"]),
        head_channels=None if cfg.get("gsa_head_channels") is None else int(cfg["gsa_head_channels"]),
        patch_size=None if patch is None else int(patch), mlp_ratio=float(cfg["gsa_mlp_ratio"]),
        norm=str(cfg["gsa_norm"]),
        lift_norm=None if cfg.get("gsa_lift_norm") is None else str(cfg["gsa_lift_norm"]),
    )


def parameter_budgets(
    config: Mapping[str, Any] | None = None, *, quick: bool = False,
    models: Sequence[str] = tuple(ATTENTION_MODELS),
) -> dict[str, int]:
    """Trainable parameter counts of the experiment's models (no data, no training).

    Example:
        >>> b = parameter_budgets()
        >>> all(abs(n / b["p4cnn"] - 1) <= BUDGET_TOLERANCE for n in b.values())
        True
    """
    cfg = get_experiment("attention-digits").config(quick=quick, overrides=config)
    return {m: count_parameters(build_attention_model(m, cfg)) for m in models}


def _build(cfg: dict[str, Any]) -> tuple[nn.Module, Any, dict[str, Any]]:
    data = digits_data(cfg)
    model = build_attention_model(str(cfg["model"]), cfg, data.num_classes or 10)
    return model, data, {k: cfg[k] for k in _FIT_KEYS}


EXPERIMENT = register_experiment(
    Experiment(
        name="attention-digits",
        description="attention on groups: CNN vs P4CNN vs alpha-P4CNN vs GroupTransformer on "
                    "rotated 16x16 digits at equal parameter budgets",
        build=_build,
        default_config=ATTENTION_DEFAULTS,
        quick_config=ATTENTION_QUICK,
        tags=("E4", "images", "attention", "gcnn"),
    ),
    overwrite=True,
)


def compare_attention_digits(
    models: Sequence[str] = tuple(ATTENTION_MODELS),
    *,
    quick: bool = False,
    config: Mapping[str, Any] | None = None,
    num_threads: int | None = None,
    callback: Callable[[str, nn.Module, TrainResult], None] | None = None,
    **fit_overrides: Any,
) -> list[dict[str, Any]]:
    """Train every model of ``models`` on the same data and settings; one row per model.

    Each row: ``model``, ``label``, ``params``, ``param_ratio`` (to the P4CNN's count at the
    same configuration), ``test_accuracy`` (validation-selected), ``best_val_accuracy``,
    ``best_epoch``, ``epochs``, ``time_s`` (wall-clock training time). ``num_threads`` sets
    ``torch.set_num_threads`` for the runs (restored afterwards). ``callback(model,
    trained_net, result)`` sees every trained network; ``fit_overrides`` go to
    :func:`~groupconv.experiments.fit` (``device``, ``progress``...).

    Example:
        >>> rows = compare_attention_digits(["cnn"], quick=True, device="cpu",
        ...                                 progress=False)  # doctest: +SKIP
        >>> rows[0]["model"]  # doctest: +SKIP
        'cnn'
    """
    models = tuple(models)
    for m in models:
        if m not in ATTENTION_MODELS:
            raise ValueError(f"models must be drawn from {tuple(ATTENTION_MODELS)}, got {m!r}")
    if num_threads is not None and (isinstance(num_threads, bool) or not isinstance(num_threads, int)
                                    or num_threads < 1):
        raise ValueError(f"num_threads must be a positive int or None, got {num_threads!r}")
    exp = get_experiment("attention-digits")
    reference = parameter_budgets(config, quick=quick, models=("p4cnn",))["p4cnn"]
    prev_threads = torch.get_num_threads()
    rows = []
    try:
        if num_threads is not None:
            torch.set_num_threads(num_threads)
        for m in models:
            cfg = exp.config(quick=quick, overrides={**(config or {}), "model": m})
            torch.manual_seed(int(cfg["seed"]))
            net, data, kw = exp.build(cfg)
            res = fit(net, data, **{"name": f"attention-digits:{m}", **kw, **fit_overrides})
            rows.append({
                "model": m, "label": ATTENTION_MODELS[m], "params": res.num_params,
                "param_ratio": res.num_params / reference, "test_accuracy": res.test_metric,
                "best_val_accuracy": res.best_val_metric, "best_epoch": res.best_epoch,
                "epochs": len(res.history), "time_s": res.total_time_s,
            })
            if callback is not None:
                callback(m, net, res)
    finally:
        torch.set_num_threads(prev_threads)
    return rows


def format_attention_table(rows: Sequence[Mapping[str, Any]]) -> str:
    """A plain-text table of :func:`compare_attention_digits`'s rows.

    Example:
        >>> print(format_attention_table([{"model": "cnn", "params": 100, "param_ratio": 1.0,
        ...     "test_accuracy": 0.5, "best_val_accuracy": 0.6, "best_epoch": 3, "epochs": 4,
        ...     "time_s": 12.0}]))  # doctest: +NORMALIZE_WHITESPACE
        model  params  vs p4cnn  test acc  best val  best epoch  time
        -----  ------  --------  --------  --------  ----------  -----
        cnn    100     1.00      50.00%    60.00%    3/4         12.0s
    """
    from ..benchmarks.common import format_table

    body = []
    for r in rows:
        acc = r.get("test_accuracy")
        val = r.get("best_val_accuracy")
        body.append([
            r["model"], r["params"], f"{r['param_ratio']:.2f}",
            "-" if acc is None else f"{100 * acc:.2f}%", "-" if val is None else f"{100 * val:.2f}%",
            f"{r['best_epoch']}/{r['epochs']}", f"{r['time_s']:.1f}s",
        ])
    return format_table(["model", "params", "vs p4cnn", "test acc", "best val", "best epoch", "time"],
                        body)
