"""``make test-training``: the results page's claims that hold, checked on seed means.

Budget (2 idle cores, ``-n 2``): mnist1d 3 seeds (the single-seed check it replaces ran seed 0
alone); attention-digits P4CNN and α-P4CNN over 5 seeds (~3 min on one core). The partial
experiments' seeds are checked in ``tests/test_partial_experiments.py``.
Every configuration is the registered default but for the named overrides (the α-P4CNN at the
P4CNN's 8 fields, as the paper compares them); the thresholds are below the measured seed means
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


def test_alpha_p4cnn_keeps_up_with_p4cnn_at_equal_widths():
    """attention-digits, seeds 0-4: the α-P4CNN with the P4CNN's 8 fields is not worse on the mean.

    The paper's claim (α-P4CNN 98.36 > P4CNN 97.86 % on rotMNIST, at equal widths) holds here with
    the reference's operator (+1.34 points over 10 seeds, t = 2.14; 11 min a seed, too slow for
    this tier). With the default ``form="full"`` checked here it holds on the 10-seed mean by
    +0.69 points (94.37 ± 1.38 vs 93.68 ± 1.34 %, docs/results.md), a paired difference of
    0.70 ± 1.77 (t = 1.24) that is not significant; seeds 0-4 measured 93.82 vs 93.70 %. So the
    check is a one-sided guard with a margin for CPU-to-CPU float differences: the α mean may not
    trail by more than 1.5 points. It guards the training of the experiment, not the attention's
    correctness: trained with every map given to the wrong sample (rolled along the batch) the
    α-P4CNN still reaches 94.82 % on seeds 0-4 (docs/results.md); the maps' formulas and
    equivariance are pinned by the unit tests of ``groupconv.nn.attention``.
    About 45 s (P4CNN) + 130 s (α-P4CNN) on one idle core.
    """
    seeds = [0, 1, 2, 3, 4]
    p4 = run_seeds("attention-digits", seeds, config={"model": "p4cnn"}, progress=False, device="cpu")
    alpha = run_seeds(
        "attention-digits",
        seeds,
        config={"model": "alpha-p4cnn", "alpha_channels": 8},
        progress=False,
        device="cpu",
    )
    p4_mean, alpha_mean = p4["test_metric"]["mean"], alpha["test_metric"]["mean"]
    assert p4_mean >= 0.91, p4["test_metric"]  # measured 0.937 (the experiment itself still trains)
    assert alpha_mean >= p4_mean - 0.015, (alpha["test_metric"], p4["test_metric"])
