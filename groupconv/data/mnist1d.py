"""mnist1d (Greydanus 2020), generated offline with ``mnist1d.data.make_dataset``.

``mnist1d.data.get_dataset`` tries a download first: it is never called here. The generator
seeds numpy's and Python's *global* RNGs; :func:`mnist1d` saves and restores both, so calling
it leaves the caller's random state untouched. Sequences are ``(N, 1, length)`` float32
(standardised by mnist1d), labels int64 in ``0..9``.
"""

from __future__ import annotations

import random
from functools import lru_cache

import numpy as np
import torch
from torch.utils.data import TensorDataset

from .base import DataSplits, check_seed, stratified_split
from .transforms import resample

__all__ = ["mnist1d", "resample"]


@lru_cache(maxsize=4)
def _generate(num_samples: int, seed: int, length: int, shuffle_seq: bool) -> tuple[np.ndarray, ...]:
    try:
        from mnist1d.data import get_dataset_args, make_dataset
    except ImportError as e:  # pragma: no cover - depends on the environment
        raise ImportError(
            "the mnist1d data set needs the mnist1d package (generated offline): "
            "pip install 'groupconv[data]' or pip install mnist1d"
        ) from e
    args = get_dataset_args()
    args.num_samples = num_samples
    args.seed = seed
    args.final_seq_length = length
    args.shuffle_seq = shuffle_seq
    np_state, py_state = np.random.get_state(), random.getstate()
    try:
        d = make_dataset(args)  # never get_dataset: it downloads
    finally:
        np.random.set_state(np_state)
        random.setstate(py_state)
    arrays = (
        np.asarray(d["x"], dtype=np.float32),
        np.asarray(d["y"], dtype=np.int64),
        np.asarray(d["x_test"], dtype=np.float32),
        np.asarray(d["y_test"], dtype=np.int64),
    )
    for a in arrays:
        a.setflags(write=False)
    return arrays


def mnist1d(
    num_samples: int = 5000,
    seed: int = 42,
    length: int = 40,
    val_fraction: float = 0.2,
    shuffle_seq: bool = False,
    split_seed: int = 0,
) -> DataSplits:
    """mnist1d as ``(N, 1, length)`` sequences with a train/validation/test split.

    mnist1d's own 80/20 split gives train and test (4000/1000 for the defaults, seed 42 is the
    published configuration); ``val_fraction`` of the training part, stratified by class and
    drawn with ``split_seed``, becomes the validation set (about 3200/800/1000 by default; rounded per class).
    ``shuffle_seq=True`` gives the spatially shuffled variant. Results are cached per
    ``(num_samples, seed, length, shuffle_seq)`` (generation takes ~3 s for 5000 samples).

    Example:
        >>> d = mnist1d(num_samples=500)
        >>> d.sizes, tuple(d.train.tensors[0].shape[1:])
        ({'train': 319, 'val': 81, 'test': 100}, (1, 40))
        >>> tuple(resample(d.test.tensors[0], 80).shape)
        (100, 1, 80)
    """
    for name, v, lo in (("num_samples", num_samples, 10), ("length", length, 2)):
        if isinstance(v, bool) or not isinstance(v, int) or v < lo:
            raise ValueError(f"{name} must be an int >= {lo}, got {v!r}")
    seed, split_seed = check_seed(seed), check_seed(split_seed)
    if not (0.0 <= float(val_fraction) < 1.0):
        raise ValueError(f"val_fraction must be in [0, 1), got {val_fraction!r}")
    x, y, x_test, y_test = _generate(num_samples, seed, length, bool(shuffle_seq))
    f = float(val_fraction)
    tr, va, _ = stratified_split(y, (1.0 - f, f, 0.0), np.random.default_rng(split_seed))
    xt, yt = torch.tensor(x).unsqueeze(1), torch.tensor(y)
    return DataSplits(
        "mnist1d",
        TensorDataset(xt[tr], yt[tr]),
        TensorDataset(xt[va], yt[va]),
        TensorDataset(torch.tensor(x_test).unsqueeze(1), torch.tensor(y_test)),
        task="classification",
        loss="ce",
        input_shape=(1, length),
        num_classes=10,
        baseline=0.1,
        baseline_note="chance accuracy (mnist1d README: MLP ~68%, CNN ~94%)",
        info={"seed": seed, "length": length, "shuffle_seq": bool(shuffle_seq), "split_seed": split_seed},
    )
