"""Small helpers shared by the test files (one copy instead of one per file).

Importable from any test module as ``from _helpers import ...``: pytest puts the folder of the
root ``conftest.py`` (``tests/``) on ``sys.path``. The transforms here are built from
``torch.rot90`` / ``torch.roll`` only, independently of the group code under test.
"""

from __future__ import annotations

import torch

__all__ = ["EXACT_TOL", "rel_err", "rel_norm", "rot", "rot_map"]

# tolerance of "exact" equivariance (90-degree rotations, flips, grid shifts), by dtype
EXACT_TOL = {torch.float32: 1e-5, torch.float64: 1e-12}


def rel_err(a: torch.Tensor, b: torch.Tensor) -> float:
    """Largest absolute difference relative to the largest entry of ``b`` (max norm)."""
    a, b = a.detach(), b.detach()
    return float((a - b).abs().max() / b.abs().max().clamp_min(1e-30))


def rel_norm(a: torch.Tensor, b: torch.Tensor) -> float:
    """``||a - b|| / ||b||`` in the Frobenius norm."""
    a, b = a.detach(), b.detach()
    return float((a - b).norm() / b.norm().clamp_min(1e-30))


def rot(x: torch.Tensor, k: int) -> torch.Tensor:
    """Rotate the last two (spatial) axes by ``k`` * 90 degrees."""
    return torch.rot90(x, k, dims=(-2, -1))


def rot_map(y: torch.Tensor, k: int, n: int, mirrors: bool = False) -> torch.Tensor:
    """Rotation by ``k`` * 90 degrees of a map ``(B, C, n, H, W)`` on a grid of ``n`` rotations
    (``n`` divisible by 4): rotate space, roll the group axis by ``k * n / 4``. With ``mirrors``
    the group axis holds ``n / 2`` rotations followed by their mirrored copies, and each half
    rolls by ``k * (n / 2) / 4``."""
    if mirrors:
        return torch.roll(rot(y, k).unflatten(2, (2, n // 2)), k * n // 8, dims=3).flatten(2, 3)
    return torch.roll(rot(y, k), k * n // 4, dims=2)
