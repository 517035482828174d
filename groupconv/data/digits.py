"""Image data sets built from scikit-learn's bundled 8x8 digits (offline, no download).

* :func:`rotated_digits` -- the rotMNIST analogue: every digit rotated by a random angle.
* :func:`six_vs_rotated_six` -- MNIST6-180 analogue: upright 6 (class 0) vs the same 6 rotated by
  180 degrees (class 1); a rotation-invariant model is at 50% by construction.
* :func:`six_vs_mirrored_six` -- MNIST6-M analogue: 6 vs its horizontal mirror image.

Rendering: each 8x8 digit (values 0..16, scaled to [0, 1], zero background) is resampled once,
bilinearly, onto a ``size x size`` canvas, with the support of the interpolated digit (its 8x8
pixels plus the half-pixel fade to the zero background, 9x9 source pixels) scaled to a square of
``digit_size`` canvas pixels (default ``(size - 1) / sqrt(2)``, so its corners never leave the
disc through the outermost pixel centres: nothing is clipped at any angle) and rotated about
the exact canvas centre ``((size-1)/2, (size-1)/2)``. One interpolation only
(upsampling and rotation are a single ``grid_sample``). Angles follow the library convention:
``+pi/2`` is ``torch.rot90(x, 1, dims=(-2, -1))``; right angles are applied with ``rot90``
exactly, 180-degree pairs with ``torch.rot90(x, 2)`` and mirrors with ``torch.flip(x, (-1,))``.

The default ``size=16`` is even so that 2x2 stride-2 pooling tiles the map symmetrically (an
exactly p4-equivariant pooling needs the map size divisible by the stride); any size >= 4
works, odd sizes included.
"""

from __future__ import annotations

import math
from functools import lru_cache

import numpy as np
import torch
import torch.nn.functional as F
from torch.utils.data import TensorDataset

from .base import (
    DataSplits,
    check_fractions,
    check_seed,
    stratified_split,
    subsample_stratified,
    torch_generator,
)
from .transforms import rotation_grid

__all__ = [
    "load_digit_arrays",
    "render_digits",
    "rotated_digits",
    "six_vs_rotated_six",
    "six_vs_mirrored_six",
]


@lru_cache(maxsize=1)
def _digits_cached() -> tuple[np.ndarray, np.ndarray]:
    try:
        from sklearn.datasets import load_digits
    except ImportError as e:  # pragma: no cover - depends on the environment
        raise ImportError(
            "the digits data sets need scikit-learn (bundled 8x8 digits, no download): "
            "pip install 'groupconv[data]' or pip install scikit-learn"
        ) from e
    d = load_digits()
    images = np.asarray(d.images, dtype=np.float32) / 16.0
    images.setflags(write=False)
    target = np.asarray(d.target, dtype=np.int64)
    target.setflags(write=False)
    return images, target


def load_digit_arrays() -> tuple[torch.Tensor, torch.Tensor]:
    """scikit-learn's 1797 digits as ``(1797, 8, 8)`` float32 in ``[0, 1]`` and ``(1797,)`` labels.

    Example:
        >>> x, y = load_digit_arrays()
        >>> tuple(x.shape), int(y.max()), float(x.max())
        ((1797, 8, 8), 9, 1.0)
    """
    images, target = _digits_cached()
    return torch.tensor(images), torch.tensor(target)


def _check_size(size: object) -> int:
    if isinstance(size, bool) or not isinstance(size, int) or size < 4:
        raise ValueError(f"size must be an int >= 4 (canvas side in pixels), got {size!r}")
    return size


def render_digits(
    images: torch.Tensor, size: int = 16, angles: torch.Tensor | None = None, digit_size: float | None = None
) -> torch.Tensor:
    """Render ``(N, h, w)`` small images onto ``(N, 1, size, size)`` canvases, rotated by ``angles``.

    ``digit_size`` is the side, in canvas pixels, of the support of the interpolated source
    (``h + 1`` source pixels; default ``(size - 1) / sqrt(2)``). Angles that are multiples of
    ``pi/2`` are applied exactly with ``rot90`` after an upright rendering, so
    ``render(x, angle=pi/2) == rot90(render(x))``.

    Example:
        >>> x, _ = load_digit_arrays()
        >>> up = render_digits(x[:2], 16)
        >>> r = render_digits(x[:2], 16, torch.tensor([math.pi / 2, math.pi]))
        >>> torch.equal(r[0], torch.rot90(up[0], 1, dims=(-2, -1)))
        True
    """
    size = _check_size(size)
    if images.dim() != 3:
        raise ValueError(f"images must be (N, h, w), got shape {tuple(images.shape)}")
    n, h, w = images.shape
    ds = (size - 1) / math.sqrt(2.0) if digit_size is None else float(digit_size)
    if not (0 < ds <= 4 * size):
        raise ValueError(f"digit_size must be in (0, {4 * size}], got {digit_size!r}")
    a = (
        torch.zeros(n, dtype=torch.float64)
        if angles is None
        else torch.as_tensor(angles, dtype=torch.float64)
    )
    a = a.flatten()
    if a.numel() != n:
        raise ValueError(f"angles must have one entry per image ({n}), got {a.numel()}")
    k = torch.round(a / (math.pi / 2))
    exact = (a - k * (math.pi / 2)).abs() < 1e-6
    a_render = torch.where(exact, torch.zeros_like(a), a)
    # scale: canvas pixels -> source pixels (the support, max(h, w) + 1 source pixels, spans digit_size)
    grid = rotation_grid(a_render, (size, size), (h, w), scale=(max(h, w) + 1) / ds).to(torch.float32)
    out = F.grid_sample(
        images[:, None].to(torch.float32), grid, mode="bilinear", padding_mode="zeros", align_corners=False
    )
    for q in (1, 2, 3):
        sel = exact & (torch.remainder(k, 4) == q)
        if bool(sel.any()):
            out[sel] = torch.rot90(out[sel], q, dims=(-2, -1))
    return out


def _angles(rotations: object, n: int, g: torch.Generator) -> torch.Tensor:
    if rotations is None or rotations == "none":
        return torch.zeros(n, dtype=torch.float64)
    if rotations == "random":
        return torch.rand(n, generator=g, dtype=torch.float64) * (2 * math.pi)
    if isinstance(rotations, int) and not isinstance(rotations, bool) and rotations >= 1:
        k = torch.randint(0, rotations, (n,), generator=g)
        return k.to(torch.float64) * (2 * math.pi / rotations)
    raise ValueError(
        f"rotations must be 'random' (uniform angles in [0, 2pi)), an int n >= 1 (angles 2 pi k / n) "
        f"or None/'none' (upright), got {rotations!r}"
    )


def rotated_digits(
    size: int = 16,
    rotations: str | int | None = "random",
    seed: int = 0,
    train_fraction: float = 1.0,
    split: tuple[float, float, float] = (0.6, 0.2, 0.2),
    digit_size: float | None = None,
) -> DataSplits:
    """Rotated digits (rotMNIST analogue): ``(N, 1, size, size)`` float32 images, 10 classes.

    Every one of the 1797 digits gets an angle (``rotations="random"``: uniform in
    ``[0, 2 pi)``; an int ``n``: a uniform multiple of ``2 pi / n``, exact for ``n`` in 1, 2, 4;
    ``None``: upright), then the set is split 60/20/20 stratified by class (``split``), and
    ``train_fraction`` keeps that fraction of each class of the training split (validation and
    test do not depend on it). Angles per split are in ``info["angles"]`` (radians).
    Deterministic in ``seed`` (private generators only).

    Example:
        >>> d = rotated_digits(size=16, seed=0, train_fraction=0.1)
        >>> tuple(d.test.tensors[0].shape[1:]), d.num_classes, d.sizes["test"] > 300
        ((1, 16, 16), 10, True)
    """
    size = _check_size(size)
    seed = check_seed(seed)
    split = check_fractions(split)
    images, labels = load_digit_arrays()
    n = len(labels)
    angles = _angles(rotations, n, torch_generator(seed))
    x = render_digits(images, size, angles, digit_size)
    rng = np.random.default_rng(seed)
    tr, va, te = stratified_split(labels.numpy(), split, rng)
    tr = subsample_stratified(tr, labels.numpy(), float(train_fraction), rng)
    parts = {k: torch.from_numpy(v) for k, v in (("train", tr), ("val", va), ("test", te))}
    ds = {k: TensorDataset(x[idx], labels[idx]) for k, idx in parts.items()}
    return DataSplits(
        "rotated-digits",
        ds["train"],
        ds["val"],
        ds["test"],
        task="classification",
        loss="ce",
        input_shape=(1, size, size),
        num_classes=10,
        baseline=0.1,
        baseline_note="chance accuracy",
        info={
            "angles": {k: angles[idx] for k, idx in parts.items()},
            "source_index": parts,
            "rotations": rotations,
            "size": size,
        },
    )


def _six_pairs(
    name: str,
    transform: str,
    size: int,
    seed: int,
    split: tuple[float, float, float],
    jitter_degrees: float,
    copies: int,
    digit_size: float | None,
) -> DataSplits:
    size = _check_size(size)
    seed = check_seed(seed)
    split = check_fractions(split)
    if not (0.0 <= float(jitter_degrees) <= 180.0):
        raise ValueError(f"jitter_degrees must be in [0, 180], got {jitter_degrees!r}")
    if isinstance(copies, bool) or not isinstance(copies, int) or copies < 1:
        raise ValueError(f"copies must be an int >= 1, got {copies!r}")
    images, labels = load_digit_arrays()
    sixes = torch.nonzero(labels == 6).flatten()
    rng = np.random.default_rng(seed)
    g = torch_generator(seed)
    tr, va, te = stratified_split(np.zeros(len(sixes), dtype=np.int64), split, rng)
    out: dict[str, TensorDataset] = {}
    info: dict[str, dict[str, torch.Tensor]] = {"pair": {}, "source_index": {}, "angles": {}}
    for key, src in (("train", tr), ("val", va), ("test", te)):
        src_idx = sixes[torch.from_numpy(src)].repeat(copies)
        m = len(src_idx)
        jit = (torch.rand(m, generator=g, dtype=torch.float64) * 2 - 1) * math.radians(float(jitter_degrees))
        x0 = render_digits(images[src_idx], size, jit, digit_size)
        x1 = torch.rot90(x0, 2, dims=(-2, -1)) if transform == "rot180" else torch.flip(x0, dims=(-1,))
        x = torch.cat([x0, x1])
        y = torch.cat([torch.zeros(m, dtype=torch.long), torch.ones(m, dtype=torch.long)])
        partner = torch.cat([torch.arange(m, 2 * m), torch.arange(m)])
        perm = torch.from_numpy(rng.permutation(2 * m))
        inv = torch.empty_like(perm)
        inv[perm] = torch.arange(2 * m)
        out[key] = TensorDataset(x[perm], y[perm])
        info["pair"][key] = inv[partner[perm]]
        info["source_index"][key] = torch.cat([src_idx, src_idx])[perm]
        info["angles"][key] = torch.cat([jit, jit])[perm]
    return DataSplits(
        name,
        out["train"],
        out["val"],
        out["test"],
        task="classification",
        loss="ce",
        input_shape=(1, size, size),
        num_classes=2,
        baseline=0.5,
        baseline_note="chance; also the exact accuracy of any "
        f"{'rotation' if transform == 'rot180' else 'mirror'}-invariant model",
        info={**info, "size": size, "jitter_degrees": float(jitter_degrees), "copies": copies},
    )


def six_vs_rotated_six(
    size: int = 16,
    seed: int = 0,
    split: tuple[float, float, float] = (0.6, 0.2, 0.2),
    jitter_degrees: float = 0.0,
    copies: int = 1,
    digit_size: float | None = None,
) -> DataSplits:
    """Digit 6 upright (class 0) vs the same image rotated by 180 degrees (class 1).

    Each source 6 (181 in scikit-learn's digits; sources are split 60/20/20, so pairs never
    straddle splits) gives ``copies`` pairs; a pair is an upright rendering, optionally turned by
    a uniform jitter in ``[-jitter_degrees, jitter_degrees]``, and its exact ``rot90(., 2)``.
    ``info["pair"][split][i]`` is the index of sample ``i``'s partner. Any model invariant to
    180-degree rotations gives both members one prediction, so it scores exactly 50%.

    Example:
        >>> d = six_vs_rotated_six(seed=0)
        >>> x, y = d.test.tensors
        >>> j = d.info["pair"]["test"]
        >>> torch.equal(x[j], torch.rot90(x, 2, dims=(-2, -1))), bool((y[j] != y).all())
        (True, True)
    """
    return _six_pairs("six-rotated", "rot180", size, seed, split, jitter_degrees, copies, digit_size)


def six_vs_mirrored_six(
    size: int = 16,
    seed: int = 0,
    split: tuple[float, float, float] = (0.6, 0.2, 0.2),
    jitter_degrees: float = 0.0,
    copies: int = 1,
    digit_size: float | None = None,
) -> DataSplits:
    """Digit 6 (class 0) vs its horizontal mirror image ``torch.flip(x, (-1,))`` (class 1).

    Same construction as :func:`six_vs_rotated_six`; any mirror-invariant model (O(2), D_n with
    an invariant readout) scores exactly 50%.

    Example:
        >>> d = six_vs_mirrored_six(seed=0)
        >>> x, y = d.train.tensors
        >>> torch.equal(x[d.info["pair"]["train"]], torch.flip(x, dims=(-1,)))
        True
    """
    return _six_pairs("six-mirrored", "mirror", size, seed, split, jitter_degrees, copies, digit_size)
