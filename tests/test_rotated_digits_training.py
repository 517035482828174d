"""``make test-training``: the rotated-digits ordering of issue 10 on seed means.

CNN < C4 <= SO(2)-8 on the demo's experiment (``groupconv train rotated-digits``, its registered
defaults: 30 epochs, AdamW lr 1e-2, ``data_seed`` 0) with 100 % and with 10 % of the training
split, seeds 0-2, validation-selected test accuracy, at matched parameter counts (CNN 7,610,
C4 7,266, SO(2) 7,269 with the steerable basis). Measured (docs/results.md, 2026-12-02), 100 %:
CNN 84.7 +- 1.2 %, C4 94.6 +- 0.2 %, SO(2) 97.2 +- 1.9 %; 10 %: CNN 45.3 +- 0.4 %, C4 76.8 +-
1.3 %, SO(2) 83.6 +- 3.1 %. The assertions only ask for the ordering and that every model
learns; the margins (>= 2.6 points) are far above CPU-to-CPU float differences. Cost: about 80
CPU-seconds per seed at 100 % and half that at 10 % (one thread), about 6 minutes in all.

Broken on purpose: with the previous recipe (``lr=3e-3``, the SIREN SO(2) model with 6 fields)
the SO(2) mean is 91.6 +- 3.9 % against C4's 91.7 +- 0.7 %, and the second assertion fails.
"""

from __future__ import annotations

import pytest

from groupconv.experiments.registry import run_seeds

pytestmark = [pytest.mark.training, pytest.mark.usefixtures("one_thread")]
pytest.importorskip("sklearn")

SEEDS = (0, 1, 2)


@pytest.mark.parametrize("fraction", [1.0, 0.1])
def test_cnn_below_c4_at_most_so2_on_the_seed_mean(fraction):
    acc = {m: run_seeds("rotated-digits", SEEDS, config={"model": m, "train_fraction": fraction},
                        progress=False, device="cpu")["test_metric"] for m in ("cnn", "c4", "so2")}
    mean = {m: s["mean"] for m, s in acc.items()}
    assert min(s["min"] for s in acc.values()) > 0.3, acc  # every run learns (chance: 0.1)
    assert mean["cnn"] < mean["c4"] <= mean["so2"], acc
