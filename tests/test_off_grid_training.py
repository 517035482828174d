"""``make test-training``: the network-level claim of issue 11 on a seed mean.

A briefly trained SO(2)-8 G-CNN (the demo's ``rotated-digits`` model: steerable kernels,
BlurPool, disc readout, isotropic input blur) changes its logits under rotations of the test
digits by at most half as much as the C4 G-CNN (the P4CNN), averaged over seeds 0-2. "Any
angle": each test digit re-rendered from its 8x8 source at 16 random extra angles
(:func:`groupconv.experiments.demo.measure_invariance`); both models also stay exactly
invariant at 90 degrees, and both learn (accuracy far above chance), so a constant network
cannot pass.

Measured (this branch, load average about 18 on the shared 2-core machine, 21.5 minutes; a few
minutes on idle cores), any-angle change at seeds 0 / 1 / 2: C4 0.286 / 0.245 / 0.273 (test
accuracy 82.5 / 80.2 / 84.1 %), SO(2) 0.093 / 0.149 / 0.132 (56.0 / 52.4 / 50.4 %): ratio of
the means 0.465. The margin is thin: after 15 epochs the SO(2) model is still far from
trained (it reaches 87 % at 30 epochs, ratio 0.39 at seed 0, docs/off_grid.md).
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
OVERRIDES: dict = {"so2_input_blur": 0.8}  # the defaults, with the SO(2) input blur on


def _train(model: str, seed: int) -> dict[str, float]:
    cfg = {**DIGITS_DEFAULTS, "model": model, "seed": seed, "data_seed": 0, "epochs": EPOCHS, **OVERRIDES}
    torch.manual_seed(seed)
    data = digits_data(cfg)
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
