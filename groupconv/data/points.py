"""Point-cloud data sets, generated offline: 3-D Tetris and scikit-learn digits as point clouds.

Every input is ONE packed tensor ``(N, P, d + features + 1)`` per split: coordinates, invariant
per-point features, then a 0/1 mask column (``1`` = a real point, padding at the end), the
layout :class:`~groupconv.spaces.PointCloudField` ``(G, features=features + 1)`` transforms and
:func:`unpack_points` splits.

* :func:`tetris_3d` -- the 8 shapes of Thomas et al. (2018), 4 cubes each, trained in their
  canonical orientation and tested under uniformly random rotations (and translations);
* :func:`digit_point_clouds` -- scikit-learn's 8x8 digits, the pixels brighter than a threshold
  as 2-D points with their intensity as feature, rotated by uniformly random angles.

Generic clouds: both builders move every point by a small fixed offset (``perturbation`` /
``jitter``). On the exact lattice, neighbour distances tie (a square's corner has two nearest
neighbours at distance 1) and the Tetris line is collinear, so a frame built from nearest
neighbours (``lift_points(frames="neighbors")``) would be decided by rounding once the cloud is
rotated; the offsets keep every tie apart by far more than float32 rounding, so invariance of
the networks can be checked exactly. Set them to 0 for the exact lattice.

Example:
    >>> d = tetris_3d(n_train=2, n_val=1, n_test=3, seed=0)
    >>> d.sizes, tuple(d.train.tensors[0].shape[1:]), d.num_classes
    ({'train': 16, 'val': 8, 'test': 24}, (4, 5), 8)
    >>> pts, feats, mask = unpack_points(d.test.tensors[0], 3)
    >>> pts.shape, feats.shape, bool(mask.all())
    (torch.Size([24, 4, 3]), torch.Size([24, 4, 1]), True)
"""

from __future__ import annotations

import math

import numpy as np
import torch
from torch.utils.data import TensorDataset

from .base import (
    DataSplits,
    check_counts,
    check_fractions,
    check_seed,
    stratified_split,
    subsample_stratified,
    torch_generator,
)
from .digits import load_digit_arrays

__all__ = [
    "TETRIS_SHAPES",
    "tetris_3d",
    "tetris_points",
    "digit_point_clouds",
    "random_rotations_3d",
    "unpack_points",
]

#: The 8 Tetris shapes of Thomas et al. (2018), "Tensor field networks": 4 unit cubes each.
#: ``chiral_1`` and ``chiral_2`` are mirror images (told apart by rotations, not by reflections).
TETRIS_SHAPES: dict[str, tuple[tuple[int, int, int], ...]] = {
    "chiral_1": ((0, 0, 0), (0, 0, 1), (1, 0, 0), (1, 1, 0)),
    "chiral_2": ((0, 0, 0), (0, 0, 1), (1, 0, 0), (1, -1, 0)),
    "square": ((0, 0, 0), (1, 0, 0), (0, 1, 0), (1, 1, 0)),
    "line": ((0, 0, 0), (0, 0, 1), (0, 0, 2), (0, 0, 3)),
    "corner": ((0, 0, 0), (0, 0, 1), (0, 1, 0), (1, 0, 0)),
    "L": ((0, 0, 0), (0, 0, 1), (0, 0, 2), (0, 1, 0)),
    "T": ((0, 0, 0), (0, 0, 1), (0, 0, 2), (0, 1, 1)),
    "zigzag": ((0, 0, 0), (1, 0, 0), (1, 1, 0), (2, 1, 0)),
}

_PERTURBATION_SEED = 1234  # the fixed offsets of the Tetris points (the same in every split)


def unpack_points(x: torch.Tensor, d: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Split a packed cloud ``(..., P, d + C + 1)`` into points, features and a bool mask.

    Example:
        >>> p, f, m = unpack_points(torch.tensor([[[0.0, 1.0, 5.0, 1.0], [0.0, 0.0, 0.0, 0.0]]]), 2)
        >>> p.shape, f.tolist(), m.tolist()
        (torch.Size([1, 2, 2]), [[[5.0], [0.0]]], [[True, False]])
    """
    if x.shape[-1] < d + 1:
        raise ValueError(f"x must have at least d + 1 = {d + 1} columns (coordinates, mask), "
                         f"got shape {tuple(x.shape)}")
    return x[..., :d], x[..., d:-1], x[..., -1] > 0.5


def random_rotations_3d(
    n: int, generator: torch.Generator, dtype: torch.dtype = torch.float64
) -> torch.Tensor:
    """``n`` rotation matrices ``(n, 3, 3)`` drawn uniformly (Haar) from SO(3).

    A standard normal 4-vector is uniform on the unit 3-sphere after normalisation, and unit
    quaternions cover SO(3) twice with the Haar measure.

    Example:
        >>> R = random_rotations_3d(4, torch.Generator().manual_seed(0))
        >>> torch.allclose(R @ R.transpose(-1, -2), torch.eye(3, dtype=R.dtype).expand(4, 3, 3))
        True
        >>> bool(torch.allclose(torch.linalg.det(R), torch.ones(4, dtype=R.dtype)))
        True
    """
    q = torch.randn(int(n), 4, generator=generator, dtype=torch.float64)
    q = q / torch.linalg.vector_norm(q, dim=-1, keepdim=True)
    w, x, y, z = q.unbind(-1)
    R = torch.stack([
        1 - 2 * (y * y + z * z), 2 * (x * y - w * z), 2 * (x * z + w * y),
        2 * (x * y + w * z), 1 - 2 * (x * x + z * z), 2 * (y * z - w * x),
        2 * (x * z - w * y), 2 * (y * z + w * x), 1 - 2 * (x * x + y * y),
    ], -1).reshape(-1, 3, 3)
    return R.to(dtype)


def tetris_points(perturbation: float = 0.2) -> torch.Tensor:
    """The 8 shapes as ``(8, 4, 3)`` float64 points, centred, with the fixed offsets applied.

    Every point moves by a fixed offset drawn uniformly in the ball of radius ``perturbation``
    (seeded; the same for every call), so no nearest-neighbour distances tie and no shape is
    collinear (see the module docstring).

    Example:
        >>> p = tetris_points(0.0)
        >>> p.shape, bool(p.mean(1).abs().max() < 1e-12)
        (torch.Size([8, 4, 3]), True)
    """
    if not (math.isfinite(float(perturbation)) and 0.0 <= float(perturbation) < 0.5):
        raise ValueError(f"perturbation must be in [0, 0.5) (cube units), got {perturbation!r}")
    pts = torch.tensor(list(TETRIS_SHAPES.values()), dtype=torch.float64)
    g = torch_generator(_PERTURBATION_SEED)
    direction = torch.randn(pts.shape, generator=g, dtype=torch.float64)
    direction = direction / torch.linalg.vector_norm(direction, dim=-1, keepdim=True)
    radius = torch.rand(*pts.shape[:2], 1, generator=g, dtype=torch.float64) ** (1 / 3)
    pts = pts + float(perturbation) * radius * direction
    return pts - pts.mean(1, keepdim=True)


def _pack(points: torch.Tensor, features: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    return torch.cat([points, features, mask.unsqueeze(-1).to(points.dtype)], -1).to(torch.float32)


def tetris_3d(
    *,
    n_train: int = 16,
    n_val: int = 8,
    n_test: int = 64,
    perturbation: float = 0.2,
    translation: float = 2.0,
    test_rotations: bool = True,
    seed: int = 0,
) -> DataSplits:
    """3-D Tetris: 8 classes, inputs ``(N, 4, 3 + 1 + 1)`` (points, a constant feature, mask).

    Train and validation hold ``n_train`` / ``n_val`` copies of every shape (per class) in its
    canonical orientation, each moved by a random translation uniform in
    ``[-translation, translation]^3``; the test split holds ``n_test`` copies of every shape
    under a uniformly random rotation (Haar on SO(3); ``test_rotations=False``: none) and a
    random translation: the SO(3)/SE(3) generalisation test of Thomas et al. (2018).
    ``info["rotations"]`` holds the test rotations. Deterministic in ``seed``.

    Example:
        >>> d = tetris_3d(n_train=1, n_val=1, n_test=1)
        >>> d.train.tensors[1].tolist()
        [0, 1, 2, 3, 4, 5, 6, 7]
    """
    counts = check_counts(n_train=n_train, n_val=n_val, n_test=n_test)
    if min(counts["n_train"], counts["n_test"]) < 1:
        raise ValueError(f"n_train and n_test must be >= 1, got {n_train}, {n_test}")
    seed = check_seed(seed)
    if not (math.isfinite(float(translation)) and float(translation) >= 0):
        raise ValueError(f"translation must be a finite float >= 0, got {translation!r}")
    shapes = tetris_points(perturbation)
    g = torch_generator(seed)
    splits, rotations = {}, None
    for name, n in (("train", counts["n_train"]), ("val", counts["n_val"]), ("test", counts["n_test"])):
        labels = torch.arange(8).repeat(n)
        pts = shapes[labels]
        if name == "test" and test_rotations:
            rotations = random_rotations_3d(len(labels), g)
            pts = pts @ rotations.transpose(-1, -2)
        shift = (torch.rand(len(labels), 1, 3, generator=g, dtype=torch.float64) * 2 - 1) * float(translation)
        pts = pts + shift
        mask = torch.ones(pts.shape[:2], dtype=torch.bool)
        splits[name] = TensorDataset(_pack(pts, torch.ones(*pts.shape[:2], 1, dtype=pts.dtype), mask), labels)
    return DataSplits(
        "tetris-3d", splits["train"], splits["val"], splits["test"], task="classification", loss="ce",
        input_shape=(4, 5), num_classes=8, baseline=1 / 8, baseline_note="chance accuracy",
        info={"shapes": tuple(TETRIS_SHAPES), "rotations": rotations, "perturbation": float(perturbation),
              "points": 3, "features": 1},
    )


def digit_point_clouds(
    *,
    threshold: float = 0.3,
    jitter: float = 0.1,
    rotations: str | None = "random",
    train_fraction: float = 1.0,
    split: tuple[float, float, float] = (0.6, 0.2, 0.2),
    seed: int = 0,
    upright_train: bool = False,
) -> DataSplits:
    """scikit-learn digits as rotated point clouds: inputs ``(N, P, 2 + 1 + 1)``, 10 classes.

    Every pixel brighter than ``threshold`` (intensities in ``[0, 1]``) becomes a point at its
    (row, column) position in pixel units, centred on the image centre ``(3.5, 3.5)``, moved by
    a fixed offset uniform in ``[-jitter, jitter]^2`` (see the module docstring) and rotated
    about the centre by a uniformly random angle (``rotations="random"``; ``None``: upright);
    its intensity is the feature. Clouds are padded to the largest count ``P``. The split is
    stratified 60/20/20 (``split``), ``train_fraction`` keeps that fraction of every class of
    the training split. ``upright_train=True`` keeps the training and validation digits upright
    (angle 0; the test digits keep their random angles, as ``tetris_3d``); the random numbers
    drawn are the same either way. ``info["angles"]`` holds the angles per split. Deterministic
    in ``seed``.

    Example:
        >>> d = digit_point_clouds(train_fraction=0.1)
        >>> x = d.train.tensors[0]
        >>> x.shape[-1], d.num_classes, int(x[..., -1].sum(1).min()) >= 5
        (4, 10, True)
    """
    seed = check_seed(seed)
    split = check_fractions(split)
    if not 0.0 <= float(threshold) < 1.0:
        raise ValueError(f"threshold must be in [0, 1), got {threshold!r}")
    if not (math.isfinite(float(jitter)) and 0.0 <= float(jitter) < 0.5):
        raise ValueError(f"jitter must be in [0, 0.5) (pixels), got {jitter!r}")
    if rotations not in ("random", None, "none"):
        raise ValueError(f"rotations must be 'random' or None, got {rotations!r}")
    images, labels = load_digit_arrays()
    n = len(labels)
    bright = images > float(threshold)  # (n, 8, 8)
    counts = bright.flatten(1).sum(1)
    P = int(counts.max())
    g = torch_generator(seed)
    rows, cols = torch.meshgrid(torch.arange(8.0), torch.arange(8.0), indexing="ij")
    grid = torch.stack([rows, cols], -1).reshape(64, 2).to(torch.float64) - 3.5
    order = torch.argsort((~bright).flatten(1).to(torch.int8), dim=1, stable=True)[:, :P]  # bright first
    pts = grid[order]  # (n, P, 2)
    feats = images.flatten(1).to(torch.float64).gather(1, order).unsqueeze(-1)
    mask = torch.arange(P).unsqueeze(0) < counts.unsqueeze(1)
    pts = pts + (torch.rand(pts.shape, generator=g, dtype=torch.float64) * 2 - 1) * float(jitter)
    if rotations == "random":
        angles = torch.rand(n, generator=g, dtype=torch.float64) * (2 * math.pi)
    else:
        angles = torch.zeros(n, dtype=torch.float64)
    rng = np.random.default_rng(seed)
    tr, va, te = stratified_split(labels.numpy(), split, rng)
    if upright_train:
        angles[torch.from_numpy(np.concatenate([tr, va]))] = 0.0
    c, s = torch.cos(angles), torch.sin(angles)
    R = torch.stack([torch.stack([c, -s], -1), torch.stack([s, c], -1)], -2)  # (n, 2, 2)
    pts = pts @ R.transpose(-1, -2)
    pts = pts * mask.unsqueeze(-1)
    feats = feats * mask.unsqueeze(-1)
    x = _pack(pts, feats, mask)
    tr = subsample_stratified(tr, labels.numpy(), float(train_fraction), rng)
    parts = {k: torch.from_numpy(v) for k, v in (("train", tr), ("val", va), ("test", te))}
    ds = {k: TensorDataset(x[idx], labels[idx]) for k, idx in parts.items()}
    return DataSplits(
        "digit-points", ds["train"], ds["val"], ds["test"], task="classification", loss="ce",
        input_shape=(P, 4), num_classes=10, baseline=0.1, baseline_note="chance accuracy",
        info={"angles": {k: angles[idx] for k, idx in parts.items()}, "source_index": parts,
              "threshold": float(threshold), "upright_train": bool(upright_train), "points": 2,
              "features": 1, "max_points": P},
    )
