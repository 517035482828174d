"""``make test-training``: the network-level claim of issue 11 on a seed mean.

A briefly trained SO(2)-8 G-CNN -- the ``rotated-digits`` SO(2) model with steerable SIREN
kernels (``kernel_net="siren"``, 6 fields, lr 3e-3: the demo's model until issue 10's last
pass), BlurPool and the disc readout, with its ReLU evaluated on a 2x finer grid
(``so2_activation_oversample=2``, an option: off in the demo, where it costs accuracy) --
changes its logits under rotations of the test digits by at
most half as much as the C4 G-CNN (the P4CNN), averaged over seeds 0-2. "Any angle": each test
digit re-rendered from its 8x8 source at 16 random extra angles
(:func:`groupconv.experiments.demo.measure_invariance`); both models also stay exactly
invariant at 90 degrees, and both learn (accuracy far above chance), so a constant network
cannot pass.

Measured (this branch, one run per model and seed, load average 20-40 on the shared 2-core
machine; each SO(2) run used about 3 CPU minutes, training and measuring), any-angle change at
seeds 0 / 1 / 2: C4 0.285 / 0.247 / 0.277 (test accuracy 81.6 / 80.2 / 85.0 %), SO(2)
0.109 / 0.111 / 0.108 (54.6 / 44.3 / 51.0 %): ratio of the means 0.404 (the previous test,
input blur instead of the oversampled ReLU: 0.465). Thin spots: after 15 epochs the SO(2)
model is far from trained (seed 1 at 44.3 % against the 40 % floor below), and the whole test
is several CPU minutes, over the training tier's per-test budget.

Break on purpose: without the oversampled ReLU (``OVERRIDES = {"so2_activation_oversample":
1}``, the demo's default) the same runs give SO(2) 0.139 / 0.134 / 0.163 (76.3 / 57.9 /
48.8 %): ratio 0.538, so this test fails (measured with the same script, not through pytest).
"""

from __future__ import annotations

import pytest
import torch

from groupconv.experiments.demo import measure_invariance
from groupconv.experiments.gconv_experiments import DIGITS_DEFAULTS, build_digits_model, digits_data
from groupconv.experiments.trainer import fit

pytestmark = [pytest.mark.training, pytest.mark.usefixtures("one_thread")]
pytest.importorskip("sklearn")

SEEDS = (0, 1, 2)
EPOCHS = 15  # "briefly trained": half the demo's 30 epochs
# the recipe and SO(2) model this was measured with (the demo moved to lr 1e-2, 24x24 digits and
# the discrete steerable basis later, checked by tests/test_rotated_digits_training.py: ratio
# 0.50 over seeds 0-2 after 30 epochs, docs/results.md)
OVERRIDES: dict = {"so2_activation_oversample": 2, "kernel_net": "siren", "so2_channels": 6, "lr": 3e-3,
                   "size": 16}


def _train(model: str, seed: int) -> dict[str, float]:
    cfg = {**DIGITS_DEFAULTS, "model": model, "seed": seed, "data_seed": 0, "epochs": EPOCHS, **OVERRIDES}
    torch.manual_seed(seed)
    data = digits_data(cfg)
    torch.manual_seed(seed)
    net = build_digits_model(model, cfg)
    res = fit(net, data, epochs=EPOCHS, lr=cfg["lr"], batch_size=cfg["batch_size"],
              weight_decay=cfg["weight_decay"], optimizer=cfg["optimizer"], seed=seed,
              device="cpu", progress=False)
    inv = measure_invariance(net, data, num_images=64, num_angles=16, device="cpu", seed=seed)
    return {"test": float(res.test_metric), **inv}


def test_so2_any_angle_change_is_at_most_half_of_c4s_on_the_seed_mean():
    runs = {(m, s): _train(m, s) for s in SEEDS for m in ("c4", "so2")}
    for key, r in runs.items():
        assert r["test"] > 0.4, (key, r)  # both learn (chance is 0.1): a constant net cannot pass
        assert r["rot90"] < 1e-4, (key, r)  # exact at the pixel-exact angles
    c4 = [runs[("c4", s)]["any_angle"] for s in SEEDS]
    so2 = [runs[("so2", s)]["any_angle"] for s in SEEDS]
    ratio = (sum(so2) / len(so2)) / (sum(c4) / len(c4))
    assert ratio <= 0.5, {"ratio": ratio, "c4": c4, "so2": so2}
