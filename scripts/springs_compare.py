"""Run the ``springs`` comparison (models x training sizes x seeds); one JSON line per cell.

Usage: ``python scripts/springs_compare.py OUT.jsonl [n_train ...]`` (default sizes 30 10 100,
the headline size first; seeds 0 1 2; every model of ``SPRING_MODELS``). The numbers of
docs/results.md ("Spring dynamics") come from it.
"""

from __future__ import annotations

import json
import sys

import torch

from groupconv.experiments import TrainResult
from groupconv.experiments.spring_experiments import SPRING_MODELS, compare_spring_models


def _report(cell: dict, _net: torch.nn.Module, res: TrainResult) -> None:
    print(cell, f"val {res.best_val_metric:.4g} test {res.test_metric:.4g} epoch {res.best_epoch} "
          f"{res.total_time_s:.0f}s", flush=True)


if __name__ == "__main__":
    torch.set_num_threads(1)
    out = sys.argv[1]
    sizes = [int(s) for s in sys.argv[2:]] or [30, 10, 100]
    for n in sizes:
        for m in SPRING_MODELS:
            (row,) = compare_spring_models([m], n_trains=[n], seeds=(0, 1, 2), callback=_report)
            with open(out, "a") as fh:
                fh.write(json.dumps(row) + "\n")
            r, mv = row["rollout_mse"], row["moved_rollout_mse"]
            print(m, n, row["params"], f"rollout {r['mean']:.4g} +- {r['std']:.2g}",
                  f"moved {mv['mean']:.4g} +- {mv['std']:.2g}", f"accel {row['test_accel_mse']['mean']:.4g}",
                  f"eq {row['equivariance_error']:.2g}", f"{row['time_s']:.0f}s", flush=True)
