"""Synthetic long-range sequence tasks: the adding problem and copy memory (generated, offline).

Both follow the protocol of the TCN benchmark as used by CKConv (``seed_methods.md`` §3.3).
Sequences are ``(N, C, L)``. Generation uses a private ``torch.Generator`` seeded by ``seed``
(train, validation and test draw from one stream, in that order), so equal arguments give
bit-identical tensors and the global RNG is untouched.
"""

from __future__ import annotations

import math

import torch
from torch.utils.data import TensorDataset

from .base import DataSplits, check_counts, check_seed, torch_generator

__all__ = [
    "adding_problem",
    "copy_memory",
    "make_adding",
    "make_copy_memory",
    "ADDING_BASELINE_MSE",
    "copy_memory_baseline",
]

#: MSE of always predicting 1 on the adding problem: Var(u1 + u2) = 2 / 12.
ADDING_BASELINE_MSE: float = 2.0 / 12.0


def make_adding(n: int, seq_len: int, generator: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
    """``n`` adding-problem samples: inputs ``(n, 2, seq_len)`` float32, targets ``(n, 1)``.

    Channel 0 holds values ``~ U(0, 1)``; channel 1 is a marker with exactly two ones at two
    distinct uniformly random positions. The target is the sum of the two marked values.
    """
    values = torch.rand(n, seq_len, generator=generator)
    pos = torch.rand(n, seq_len, generator=generator).argsort(dim=1)[:, :2]
    marker = torch.zeros(n, seq_len).scatter_(1, pos, 1.0)
    target = (values * marker).sum(dim=1, keepdim=True)
    return torch.stack([values, marker], dim=1), target


def adding_problem(
    seq_len: int = 200,
    n_train: int = 5000,
    n_val: int = 1000,
    n_test: int = 1000,
    seed: int = 0,
) -> DataSplits:
    """The adding problem: regress the sum of the two marked values of a long sequence.

    Inputs ``(N, 2, seq_len)`` (channel 0: values ``U(0, 1)``, channel 1: two-hot marker),
    targets ``(N, 1)``. Loss ``"mse"``; the trivial predictor 1 has MSE ``2/12 ~= 0.167``
    (:data:`ADDING_BASELINE_MSE`), the figure a model must beat.

    Example:
        >>> d = adding_problem(seq_len=50, n_train=8, n_val=4, n_test=4, seed=0)
        >>> tuple(d.train.tensors[0].shape), tuple(d.train.tensors[1].shape)
        ((8, 2, 50), (8, 1))
        >>> bool((d.train.tensors[0][:, 1].sum(-1) == 2).all())
        True
    """
    c = check_counts(n_train=n_train, n_val=n_val, n_test=n_test)
    if isinstance(seq_len, bool) or not isinstance(seq_len, int) or seq_len < 2:
        raise ValueError(f"seq_len must be an int >= 2 (two markers), got {seq_len!r}")
    g = torch_generator(check_seed(seed))
    splits = [TensorDataset(*make_adding(c[k], seq_len, g)) for k in ("n_train", "n_val", "n_test")]
    return DataSplits(
        "adding",
        *splits,
        task="regression",
        loss="mse",
        input_shape=(2, seq_len),
        baseline=ADDING_BASELINE_MSE,
        baseline_note="MSE of always predicting 1 (= 2/12)",
        info={"seq_len": seq_len},
    )


def copy_memory_baseline(seq_len: int, memory_len: int = 10, num_symbols: int = 8) -> float:
    """Per-step cross-entropy of the memoryless baseline: ``memory_len * ln(num_symbols) / L``.

    It predicts the blank with certainty where the target is blank and guesses uniformly among the
    data symbols over the last ``memory_len`` steps; ``L = seq_len + 2 * memory_len``.

    Example:
        >>> round(copy_memory_baseline(100), 4)
        0.1733
    """
    return memory_len * math.log(num_symbols) / (seq_len + 2 * memory_len)


def make_copy_memory(
    n: int, seq_len: int, memory_len: int, num_symbols: int, generator: torch.Generator
) -> tuple[torch.Tensor, torch.Tensor]:
    """``n`` copy-memory samples as token ids: inputs and targets, both ``(n, seq_len + 2*memory_len)``.

    Tokens: 0 = blank, ``1..num_symbols`` = data, ``num_symbols + 1`` = delimiter. Input:
    ``memory_len`` data symbols, ``seq_len - 1`` blanks, then ``memory_len + 1`` delimiters (the
    first delimiter is the recall cue). Target: ``seq_len + memory_len`` blanks, then the
    ``memory_len`` data symbols.
    """
    total = seq_len + 2 * memory_len
    data = torch.randint(1, num_symbols + 1, (n, memory_len), generator=generator)
    x = torch.zeros(n, total, dtype=torch.long)
    x[:, :memory_len] = data
    x[:, memory_len + seq_len - 1 :] = num_symbols + 1
    y = torch.zeros(n, total, dtype=torch.long)
    y[:, seq_len + memory_len :] = data
    return x, y


def copy_memory(
    seq_len: int = 100,
    memory_len: int = 10,
    num_symbols: int = 8,
    n_train: int = 5000,
    n_val: int = 1000,
    n_test: int = 1000,
    seed: int = 0,
    encoding: str = "onehot",
) -> DataSplits:
    """Copy memory: reproduce ``memory_len`` symbols after ``seq_len`` steps of blanks.

    With ``L = seq_len + 2 * memory_len`` and ``K = num_symbols + 2`` token classes (0 blank,
    ``1..num_symbols`` data, ``num_symbols + 1`` delimiter):

    * inputs: ``encoding="onehot"`` gives float32 ``(N, K, L)``; ``encoding="index"`` gives the
      token ids as float32 ``(N, 1, L)`` (a single real-valued channel, as in CKConv);
    * targets: class ids ``(N, L)`` (int64), for a per-step ``K``-way cross-entropy (loss
      ``"seq-ce"``, logits ``(N, K, L)``).

    The memoryless baseline scores ``memory_len * ln(num_symbols) / L`` (``10 ln 8 / 120 ~=
    0.173`` for the defaults; :func:`copy_memory_baseline`).

    Example:
        >>> d = copy_memory(seq_len=20, n_train=4, n_val=2, n_test=2)
        >>> tuple(d.train.tensors[0].shape), tuple(d.train.tensors[1].shape), d.num_classes
        ((4, 10, 40), (4, 40), 10)
    """
    c = check_counts(n_train=n_train, n_val=n_val, n_test=n_test)
    for name, v, lo in (
        ("seq_len", seq_len, 1),
        ("memory_len", memory_len, 1),
        ("num_symbols", num_symbols, 1),
    ):
        if isinstance(v, bool) or not isinstance(v, int) or v < lo:
            raise ValueError(f"{name} must be an int >= {lo}, got {v!r}")
    if encoding not in ("onehot", "index"):
        raise ValueError(f"encoding must be 'onehot' or 'index', got {encoding!r}")
    g = torch_generator(check_seed(seed))
    k = num_symbols + 2
    total = seq_len + 2 * memory_len
    splits = []
    for key in ("n_train", "n_val", "n_test"):
        x, y = make_copy_memory(c[key], seq_len, memory_len, num_symbols, g)
        if encoding == "onehot":
            xin = torch.nn.functional.one_hot(x, k).permute(0, 2, 1).to(torch.float32).contiguous()
        else:
            xin = x.to(torch.float32).unsqueeze(1)
        splits.append(TensorDataset(xin, y))
    return DataSplits(
        "copy-memory",
        *splits,
        task="sequence-classification",
        loss="seq-ce",
        input_shape=(k if encoding == "onehot" else 1, total),
        num_classes=k,
        baseline=copy_memory_baseline(seq_len, memory_len, num_symbols),
        baseline_note=f"{memory_len} ln {num_symbols} / {total}: blanks certain, uniform guess at recall",
        info={"seq_len": seq_len, "memory_len": memory_len, "encoding": encoding},
    )
