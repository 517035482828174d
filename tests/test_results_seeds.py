"""``make test-training``: the results page's claims that hold, checked on seed means.

Budget (2 idle cores, ``-n 2``): mnist1d 3 seeds (the single-seed check it replaces ran seed 0
alone) and six-rotated at seeds 1 and 2 (seed 0 is
``tests/test_partial_experiments.py::test_full_run_accuracies``): two extra mnist1d runs and four
partial runs, estimated at about 3-4 minutes on 2 idle cores (each mnist1d run took 7-19 min of
wall-clock on the loaded shared machine, ~1/5 of a core; not yet timed on an idle one).
Every configuration is the registered default; the thresholds are below the measured seed means
of docs/results.md by a margin for CPU-to-CPU float differences, never tuned on the test split.
"""

from __future__ import annotations

import pytest
import torch

from groupconv.experiments.partial_experiments import run_partial_experiment
from groupconv.experiments.registry import run_seeds

pytestmark = pytest.mark.training


@pytest.fixture(autouse=True)
def _one_thread():
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)


def test_mnist1d_ccnn_seed_mean():
    out = run_seeds("mnist1d", 3, progress=False, device="cpu")
    t = out["test_metric"]
    # measured 0.966 / 0.959 / see docs/results.md (claim: >= 0.96; reference CNN 0.94)
    assert t["mean"] >= 0.95, t
    assert t["min"] >= 0.94, t  # every seed beats the published CNN


@pytest.mark.parametrize("seed", [1, 2])
def test_six_rotated_other_seeds(seed):
    # six-mirrored over seeds 0-2: tests/test_partial_experiments.py::
    # test_six_mirrored_claims_hold_over_seeds (issue 10)
    rep = run_partial_experiment("six-rotated", config={"seed": seed}, verbose=False, progress=False,
                                 device="cpu")
    assert rep["partial"]["test_accuracy"] >= 0.95
    assert rep["control"]["test_accuracy"] == 0.5 and rep["control"]["pair_agreement"] == 1.0
