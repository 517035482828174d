"""Run the ``springs`` comparison (models x training sizes x seeds) and append one JSON line per cell.

Usage: ``python scripts/springs_compare.py OUT.jsonl [n_train ...]`` (default sizes 30 10 100, the headline size first;
seeds 0 1 2; every model of ``SPRING_MODELS``). The numbers of docs/results.md come from it.
"""

from __future__ import annotations

import json
import sys

import torch

from groupconv.experiments.spring_experiments import SPRING_MODELS, compare_spring_models

if __name__ == "__main__":
    torch.set_num_threads(1)
    out = sys.argv[1]
    sizes = [int(s) for s in sys.argv[2:]] or [30, 10, 100]
    for n in sizes:
        for m in SPRING_MODELS:
            (row,) = compare_spring_models([m], n_trains=[n], seeds=(0, 1, 2), callback=lambda c, _net, r: print(
                c, "val %.4g test %.4g epoch %s %.0fs" % (r.best_val_metric, r.test_metric, r.best_epoch,
                                                           r.total_time_s), flush=True))
            with open(out, "a") as fh:
                fh.write(json.dumps(row) + "\n")
            print(m, n, row["params"], "rollout %.4g +- %.2g" % (row["rollout_mse"]["mean"], row["rollout_mse"]["std"]),
                  "moved %.4g +- %.2g" % (row["moved_rollout_mse"]["mean"], row["moved_rollout_mse"]["std"]),
                  "accel %.4g" % row["test_accel_mse"]["mean"], "eq %.2g" % row["equivariance_error"],
                  "%.0fs" % row["time_s"], flush=True)
