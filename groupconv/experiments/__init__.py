"""Training machinery: the :func:`fit` loop, the experiment registry, metrics and plots.

Example:
    >>> from groupconv.experiments import list_experiments
    >>> "smoke" in list_experiments()
    True
"""

from .metrics import (
    LOSSES,
    LossSpec,
    accuracy,
    get_loss,
    mse,
    plot_history,
    read_metrics,
    sequence_cross_entropy,
    write_metrics,
)
from .registry import (
    Experiment,
    SmokeCNN,
    get_experiment,
    list_experiments,
    register_experiment,
    run_experiment,
    run_seeds,
    seed_summary,
)
from .trainer import EpochRecord, Trainer, TrainResult, count_parameters, fit

__all__ = [
    "fit",
    "Trainer",
    "TrainResult",
    "EpochRecord",
    "count_parameters",
    "Experiment",
    "register_experiment",
    "get_experiment",
    "list_experiments",
    "run_experiment",
    "run_seeds",
    "seed_summary",
    "SmokeCNN",
    "LossSpec",
    "LOSSES",
    "get_loss",
    "accuracy",
    "mse",
    "sequence_cross_entropy",
    "write_metrics",
    "read_metrics",
    "plot_history",
]
