"""``make test-training``: the results page's claims that hold, checked on seed means.

Budget (2 idle cores, ``-n 2``): mnist1d 3 seeds (the single-seed check it replaces ran seed 0
alone). The partial experiments' seeds are checked in ``tests/test_partial_experiments.py``.
Every configuration is the registered default; the thresholds are below the measured seed means
of docs/results.md by a margin for CPU-to-CPU float differences, never tuned on the test split.
"""

from __future__ import annotations

import pytest

from groupconv.experiments.registry import run_seeds

pytestmark = [pytest.mark.training, pytest.mark.usefixtures("one_thread")]


def test_mnist1d_ccnn_seed_mean():
    out = run_seeds("mnist1d", 3, progress=False, device="cpu")
    t = out["test_metric"]
    # measured 0.969 / 0.977 / 0.964 (docs/results.md; claim: >= 0.96; reference CNN 0.94)
    assert t["mean"] >= 0.95, t
    assert t["min"] >= 0.94, t  # every seed beats the published CNN
