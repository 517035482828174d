"""Offline data sets: determinism, shapes, balance, and that the transformations are the right ones.

Rotations are checked against ``torch.rot90``/``torch.flip`` and against an independent
computation of where a point moves (the rotation matrix on (row, col) coordinates).
"""

from __future__ import annotations

import math
import random

import numpy as np
import pytest
import torch

from groupconv.data import (
    ADDING_BASELINE_MSE,
    DataSplits,
    adding_problem,
    copy_memory,
    copy_memory_baseline,
    list_datasets,
    load_dataset,
    mnist1d,
    random_drop,
    render_digits,
    resample,
    rotate_images,
    rotated_digits,
    sequentialize,
    six_vs_mirrored_six,
    six_vs_rotated_six,
)
from groupconv.data.digits import load_digit_arrays

sklearn = pytest.importorskip("sklearn")


def _tensors_equal(a: DataSplits, b: DataSplits) -> bool:
    return all(
        torch.equal(x, y)
        for split in ("train", "val", "test")
        for x, y in zip(getattr(a, split).tensors, getattr(b, split).tensors)
    )


# ----------------------------------------------------------------------------- synthetic


def test_adding_problem_structure_and_baseline():
    d = adding_problem(seq_len=50, n_train=4000, n_val=10, n_test=10, seed=3)
    x, y = d.train.tensors
    assert x.shape == (4000, 2, 50) and y.shape == (4000, 1) and d.loss == "mse"
    assert torch.equal(x[:, 1].sum(-1), torch.full((4000,), 2.0))
    assert set(torch.unique(x[:, 1]).tolist()) == {0.0, 1.0}
    assert 0 <= x[:, 0].min() and x[:, 0].max() < 1
    # target recomputed independently from the marker positions
    marked = [x[i, 0][x[i, 1] == 1].sum() for i in range(20)]
    assert torch.allclose(torch.stack(marked), y[:20, 0])
    empirical = float(((y - 1.0) ** 2).mean())
    assert abs(empirical - ADDING_BASELINE_MSE) < 0.015
    assert d.baseline == pytest.approx(1 / 6)


def test_adding_problem_deterministic():
    a = adding_problem(seq_len=30, n_train=20, n_val=5, n_test=5, seed=1)
    b = adding_problem(seq_len=30, n_train=20, n_val=5, n_test=5, seed=1)
    c = adding_problem(seq_len=30, n_train=20, n_val=5, n_test=5, seed=2)
    assert _tensors_equal(a, b) and not _tensors_equal(a, c)


def test_copy_memory_structure():
    T, mem = 30, 10
    d = copy_memory(seq_len=T, memory_len=mem, n_train=50, n_val=5, n_test=5, seed=0)
    x, y = d.train.tensors
    L = T + 2 * mem
    assert x.shape == (50, 10, L) and y.shape == (50, L) and y.dtype == torch.long
    tokens = x.argmax(dim=1)
    assert torch.equal(x.sum(dim=1), torch.ones(50, L))  # one-hot
    assert ((tokens[:, :mem] >= 1) & (tokens[:, :mem] <= 8)).all()
    assert (tokens[:, mem : mem + T - 1] == 0).all()
    assert (tokens[:, mem + T - 1 :] == 9).all()
    assert (y[:, : mem + T] == 0).all()
    assert torch.equal(y[:, mem + T :], tokens[:, :mem])
    idx = copy_memory(seq_len=T, memory_len=mem, n_train=50, n_val=5, n_test=5, seed=0, encoding="index")
    assert idx.train.tensors[0].shape == (50, 1, L)
    assert torch.equal(idx.train.tensors[0][:, 0].long(), tokens)
    assert d.baseline == pytest.approx(10 * math.log(8) / (T + 20))
    assert copy_memory_baseline(100) == pytest.approx(0.17329, abs=1e-4)


def test_copy_memory_baseline_is_the_memoryless_loss():
    """The documented baseline equals the CE of 'blank for sure, then uniform over 8'."""
    d = copy_memory(seq_len=20, n_train=64, n_val=1, n_test=1, seed=0)
    _, y = d.train.tensors
    logits = torch.full((64, 10, y.shape[1]), -1e4)
    logits[:, 0, : y.shape[1] - 10] = 0.0
    logits[:, 1:9, y.shape[1] - 10 :] = 0.0
    ce = torch.nn.functional.cross_entropy(logits, y)
    assert float(ce) == pytest.approx(d.baseline, rel=1e-5)


def test_copy_memory_deterministic_and_errors():
    a = copy_memory(seq_len=10, n_train=8, n_val=2, n_test=2, seed=5)
    b = copy_memory(seq_len=10, n_train=8, n_val=2, n_test=2, seed=5)
    assert _tensors_equal(a, b)
    with pytest.raises(ValueError, match="encoding"):
        copy_memory(encoding="bits")
    with pytest.raises(ValueError, match="seq_len"):
        copy_memory(seq_len=0)
    with pytest.raises(ValueError, match="n_train"):
        adding_problem(n_train=-1)
    with pytest.raises(TypeError, match="seed"):
        adding_problem(seed=1.5)


# ----------------------------------------------------------------------------- rotations


def test_rotate_images_matches_rot90_both_paths(float_dtype):
    g = torch.Generator().manual_seed(0)
    for size in (7, 8):
        x = torch.rand(3, 2, size, size, generator=g, dtype=float_dtype)
        for k in range(4):
            ref = torch.rot90(x, k, dims=(-2, -1))
            assert torch.equal(rotate_images(x, k * math.pi / 2), ref)
            interp = rotate_images(x, k * math.pi / 2, exact_right_angles=False)
            assert torch.allclose(interp, ref, atol=1e-5)


def test_rotate_images_moves_points_by_the_rotation_matrix():
    """A blob at p goes to R(theta) p (points in (row, col) order, about the exact centre)."""
    size, c = 33, 16.0
    r, q = torch.meshgrid(torch.arange(float(size)), torch.arange(float(size)), indexing="ij")
    p = torch.tensor([-9.0, 4.0])  # offset from the centre
    img = torch.exp(-((r - c - p[0]) ** 2 + (q - c - p[1]) ** 2) / 2.0)[None, None]
    for theta in (0.3, 1.0, 2.5, -2.0):
        out = rotate_images(img, theta)[0, 0]
        com = torch.stack([(out * r).sum(), (out * q).sum()]) / out.sum() - c
        R = torch.tensor([[math.cos(theta), -math.sin(theta)], [math.sin(theta), math.cos(theta)]])
        assert torch.allclose(com, R @ p, atol=0.05), (theta, com, R @ p)


def test_rotate_images_errors():
    with pytest.raises(ValueError, match="angles"):
        rotate_images(torch.zeros(2, 1, 4, 4), torch.zeros(3))
    with pytest.raises(ValueError, match=r"\(N, C, H, W\)"):
        rotate_images(torch.zeros(4, 4), 0.0)


# ------------------------------------------------------------------------------- digits


def test_render_digits_right_angles_exact_and_centred():
    x, _ = load_digit_arrays()
    up = render_digits(x[:5], 15)
    a = torch.tensor([math.pi / 2] * 5, dtype=torch.float64)
    assert torch.equal(render_digits(x[:5], 15, a), torch.rot90(up, 1, dims=(-2, -1)))
    # the 8x8 box maps to the centre: a symmetric source stays symmetric under flips
    sym = torch.ones(1, 8, 8)
    img = render_digits(sym, 16)
    assert torch.allclose(img, torch.flip(img, dims=(-1,))) and torch.allclose(
        img, torch.flip(img, dims=(-2,))
    )
    # no mass is clipped at any angle with the default digit size
    for t in (0.0, 0.7, 2.2):
        img = render_digits(sym, 16, torch.tensor([t]))[0, 0]
        assert img[[0, -1]].abs().max() == 0 and img[:, [0, -1]].abs().max() == 0


def test_rotated_digits_shapes_balance_determinism():
    d = rotated_digits(size=16, seed=0)
    assert d.sizes["train"] + d.sizes["val"] + d.sizes["test"] == 1797
    x, y = d.train.tensors
    assert x.shape[1:] == (1, 16, 16) and x.dtype == torch.float32 and y.dtype == torch.long
    assert x.min() >= 0 and x.max() <= 1
    for split in ("train", "val", "test"):
        counts = torch.bincount(getattr(d, split).tensors[1], minlength=10).float()
        frac = counts / counts.sum()
        assert (frac - 0.1).abs().max() < 0.02, (split, counts)
    assert _tensors_equal(d, rotated_digits(size=16, seed=0))
    assert not torch.equal(x, rotated_digits(size=16, seed=1).train.tensors[0][: len(x)])
    ang = d.info["angles"]["train"]
    assert ang.min() >= 0 and ang.max() < 2 * math.pi and ang.std() > 1.5
    src = {k: set(v.tolist()) for k, v in d.info["source_index"].items()}
    assert not (src["train"] & src["test"]) and not (src["val"] & src["test"])


def test_rotated_digits_are_rotated_by_their_recorded_angles():
    images, _ = load_digit_arrays()
    d = rotated_digits(size=16, rotations=4, seed=2)
    x = d.test.tensors[0]
    up = render_digits(images[d.info["source_index"]["test"]], 16)
    k = torch.round(d.info["angles"]["test"] / (math.pi / 2)).long()
    assert len(set(k.tolist())) == 4
    for i in range(40):
        assert torch.equal(x[i], torch.rot90(up[i], int(k[i]), dims=(-2, -1)))
    # continuous angles: second moments turn as R M R^T (an independent geometric check)
    d = rotated_digits(size=31, seed=3)
    x, ang = d.test.tensors[0][:, 0], d.info["angles"]["test"]
    up = render_digits(images[d.info["source_index"]["test"]], 31)[:, 0]
    r, q = torch.meshgrid(torch.arange(31.0) - 15, torch.arange(31.0) - 15, indexing="ij")
    pts = torch.stack([r, q], -1)  # (31, 31, 2)

    def moments(img):
        w = img / img.sum()
        m = (w[..., None] * pts).sum((0, 1))
        d_ = pts - m
        return torch.einsum("hw,hwi,hwj->ij", w, d_, d_)

    errs, wrong = [], []
    for i in range(60):
        R = torch.tensor(
            [[math.cos(ang[i]), -math.sin(ang[i])], [math.sin(ang[i]), math.cos(ang[i])]], dtype=torch.float32
        )
        m_up, m_rot = moments(up[i]), moments(x[i])
        errs.append(float((m_rot - R @ m_up @ R.T).norm() / m_up.norm()))
        wrong.append(float((m_rot - R.T @ m_up @ R).norm() / m_up.norm()))
    assert np.median(errs) < 0.05 and np.median(wrong) > 4 * np.median(errs)


def test_rotated_digits_train_fraction_keeps_val_test():
    full = rotated_digits(size=12, seed=0)
    small = rotated_digits(size=12, seed=0, train_fraction=0.1)
    assert abs(small.sizes["train"] - 0.1 * full.sizes["train"]) <= 10
    assert torch.bincount(small.train.tensors[1], minlength=10).min() >= 9
    for split in ("val", "test"):
        assert torch.equal(getattr(full, split).tensors[0], getattr(small, split).tensors[0])
    assert set(small.info["source_index"]["train"].tolist()) <= set(
        full.info["source_index"]["train"].tolist()
    )


def test_rotated_digits_errors():
    with pytest.raises(ValueError, match="rotations"):
        rotated_digits(rotations="sometimes")
    with pytest.raises(ValueError, match="size"):
        rotated_digits(size=2)
    with pytest.raises(ValueError, match="split"):
        rotated_digits(split=(0.5, 0.5, 0.5))
    with pytest.raises(ValueError, match="train_fraction"):
        rotated_digits(train_fraction=0.0)


@pytest.mark.parametrize("jitter", [0.0, 10.0])
def test_six_vs_rotated_six_pairs(jitter):
    d = six_vs_rotated_six(size=16, seed=0, jitter_degrees=jitter, copies=2 if jitter else 1)
    assert d.num_classes == 2
    for split in ("train", "val", "test"):
        x, y = getattr(d, split).tensors
        j = d.info["pair"][split]
        assert torch.equal(x[j], torch.rot90(x, 2, dims=(-2, -1)))
        assert bool((y[j] != y).all()) and int(y.sum()) * 2 == len(y)
        # a rotation-invariant classifier is at exactly 50 %
        score = (x + torch.rot90(x, 2, dims=(-2, -1))).flatten(1) @ torch.randn(x[0].numel())
        pred = (score > 0).long()
        assert float((pred == y).float().mean()) == 0.5
    srcs = [set(d.info["source_index"][s].tolist()) for s in ("train", "val", "test")]
    assert not (srcs[0] & srcs[2]) and not (srcs[1] & srcs[2]) and not (srcs[0] & srcs[1])
    images, labels = load_digit_arrays()
    assert all(int(labels[i]) == 6 for i in srcs[0])
    assert _tensors_equal(
        d, six_vs_rotated_six(size=16, seed=0, jitter_degrees=jitter, copies=2 if jitter else 1)
    )
    # class 0 is upright (up to jitter): without jitter it is exactly the upright rendering
    if jitter == 0.0:
        x, y = d.test.tensors
        up = render_digits(images[d.info["source_index"]["test"]], 16)
        assert torch.equal(x[y == 0], up[y == 0])


def test_six_vs_mirrored_six_pairs():
    d = six_vs_mirrored_six(size=16, seed=1, jitter_degrees=5.0)
    for split in ("train", "val", "test"):
        x, y = getattr(d, split).tensors
        j = d.info["pair"][split]
        assert torch.equal(x[j], torch.flip(x, dims=(-1,)))
        assert bool((y[j] != y).all())
    x, y = d.train.tensors
    assert not torch.equal(x[d.info["pair"]["train"]], torch.rot90(x, 2, dims=(-2, -1)))


# ------------------------------------------------------------------------------ mnist1d


def test_mnist1d_shapes_determinism_and_global_rng_untouched():
    pytest.importorskip("mnist1d")
    np.random.seed(123)
    random.seed(123)
    before_np, before_py = np.random.get_state()[1].copy(), random.getstate()
    d = mnist1d(num_samples=400, seed=42)
    assert np.array_equal(np.random.get_state()[1], before_np) and random.getstate() == before_py
    assert d.sizes["test"] == 80 and d.sizes["train"] + d.sizes["val"] == 320
    x, y = d.train.tensors
    assert x.shape[1:] == (1, 40) and x.dtype == torch.float32 and set(y.unique().tolist()) == set(range(10))
    assert _tensors_equal(d, mnist1d(num_samples=400, seed=42))
    other = mnist1d(num_samples=400, seed=42, split_seed=1)
    assert torch.equal(other.test.tensors[0], d.test.tensors[0])
    assert not torch.equal(other.train.tensors[0], d.train.tensors[0])
    assert mnist1d(num_samples=400, seed=42, length=60).train.tensors[0].shape[-1] == 60


def test_resample_linear():
    t = torch.linspace(0, 1, 40)
    x = torch.stack([2 * t + 1, -t]).unsqueeze(0)  # (1, 2, 40), linear signals
    y = resample(x, 80)
    t2 = torch.linspace(0, 1, 80)
    assert y.shape == (1, 2, 80)
    assert torch.allclose(y, torch.stack([2 * t2 + 1, -t2]).unsqueeze(0), atol=1e-5)
    assert torch.equal(y[..., [0, -1]], x[..., [0, -1]])
    assert torch.allclose(resample(y, 40), x, atol=1e-5)
    assert resample(torch.zeros(3, 40), 80).shape == (3, 80)
    with pytest.raises(ValueError, match="new_length"):
        resample(x, 1)


def test_sequence_transforms():
    img = torch.arange(16.0).reshape(1, 1, 4, 4)
    assert torch.equal(sequentialize(img)[0, 0], torch.arange(16.0))
    p1, p2 = sequentialize(img, permutation_seed=3), sequentialize(img, permutation_seed=3)
    assert torch.equal(p1, p2) and torch.equal(p1.sort(dim=-1).values, sequentialize(img))
    y = random_drop(torch.ones(4, 2, 20), 0.25, torch.Generator().manual_seed(0))
    assert torch.equal((y == 0).sum(-1), torch.full((4, 2), 5))
    assert torch.equal(y[:, 0], y[:, 1])


# ----------------------------------------------------------------------------- registry


def test_load_dataset_registry():
    assert set(list_datasets()) >= {
        "adding",
        "copy-memory",
        "rotated-digits",
        "six-rotated",
        "six-mirrored",
        "mnist1d",
    }
    with pytest.raises(KeyError, match="known data sets: adding, copy-memory"):
        load_dataset("mnist")
    with pytest.raises(TypeError, match="unknown arguments"):
        load_dataset("adding", length=10)
    d = load_dataset("six-mirrored", size=12)
    assert d.name == "six-mirrored" and d.input_shape == (1, 12, 12) and "invariant" in d.summary()
    assert load_dataset("copy-memory", seq_len=10, n_train=2, n_val=1, n_test=1).loss == "seq-ce"
