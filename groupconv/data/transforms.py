"""Tensor transforms used to build data sets and transfer experiments.

* :func:`rotate_images` -- rotation of ``(N, C, H, W)`` images about their exact centre
  ``((H-1)/2, (W-1)/2)`` by arbitrary angles, with the library's convention: a signal
  transforms as ``(g.f)(x) = f(g^{-1} x)`` with points in ``(row, col)`` order, so ``+pi/2``
  equals ``torch.rot90(x, 1, dims=(-2, -1))`` (exact angles are dispatched to ``rot90``).
* :func:`resample` -- linear resampling of sequences ``(N, C, L)`` to a new length
  (resolution-transfer experiments: train at 40, test at 80).
* :func:`sequentialize` -- sMNIST-style flattening of images into sequences, optionally with a
  fixed-seed permutation (pMNIST-style).
* :func:`random_drop` -- irregular sampling: zero a random subset of time steps.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

from .._validation import check_tensor

__all__ = ["rotate_images", "rotation_grid", "resample", "sequentialize", "random_drop"]


def rotation_grid(
    angles: torch.Tensor, out_size: tuple[int, int], in_size: tuple[int, int], scale: float = 1.0
) -> torch.Tensor:
    """A ``grid_sample`` grid ``(N, H_out, W_out, 2)`` that rotates about the exact centres.

    Output pixel ``p`` (centred ``(row, col)`` offsets in output pixels) samples the input at
    ``scale * R(-angle) p`` input pixels from the input centre, i.e. ``out = f(g^{-1} p)``.
    The grid is for ``align_corners=False`` (pixel ``i`` of an axis of size ``n`` sits at the
    normalised coordinate ``(2 i + 1) / n - 1``), so any input and output sizes share their
    centre exactly.
    """
    h_out, w_out = out_size
    h_in, w_in = in_size
    dtype = angles.dtype if angles.is_floating_point() else torch.get_default_dtype()
    angles = angles.to(dtype)
    r = torch.arange(h_out, dtype=dtype, device=angles.device) - (h_out - 1) / 2
    c = torch.arange(w_out, dtype=dtype, device=angles.device) - (w_out - 1) / 2
    pr, pc = torch.meshgrid(r, c, indexing="ij")  # (H, W)
    cos = torch.cos(angles)[:, None, None]
    sin = torch.sin(angles)[:, None, None]
    # R(-t) = [[cos, sin], [-sin, cos]] acting on (row, col)
    src_r = scale * (cos * pr + sin * pc)
    src_c = scale * (-sin * pr + cos * pc)
    # normalised (x = col, y = row), align_corners=False: u = 2 * offset / n
    return torch.stack([2 * src_c / w_in, 2 * src_r / h_in], dim=-1)


def rotate_images(
    x: torch.Tensor, angles: torch.Tensor | float, mode: str = "bilinear", exact_right_angles: bool = True
) -> torch.Tensor:
    """Rotate images ``(N, C, H, W)`` by ``angles`` (radians; scalar or ``(N,)``) about their centre.

    Points outside the input read as zero. With ``exact_right_angles`` (default), samples whose
    angle is a multiple of ``pi/2`` (to 1e-6, so float32 angles qualify) on square images use
    ``torch.rot90`` and are exact.

    Example:
        >>> x = torch.arange(9.0).reshape(1, 1, 3, 3)
        >>> torch.equal(rotate_images(x, math.pi / 2), torch.rot90(x, 1, dims=(-2, -1)))
        True
        >>> y = rotate_images(x, math.pi / 2, exact_right_angles=False)
        >>> bool(torch.allclose(y, torch.rot90(x, 1, dims=(-2, -1)), atol=1e-5))
        True
    """
    x = check_tensor(x, "x")
    if x.dim() != 4:
        raise ValueError(f"x must be images (N, C, H, W), got shape {tuple(x.shape)}")
    if mode not in ("bilinear", "nearest", "bicubic"):
        raise ValueError(f"mode must be 'bilinear', 'nearest' or 'bicubic', got {mode!r}")
    n = x.shape[0]
    a = torch.as_tensor(angles, dtype=torch.float64).flatten()
    if a.numel() == 1:
        a = a.expand(n)
    if a.numel() != n:
        raise ValueError(f"angles must be a scalar or have {n} entries (one per image), got {a.numel()}")
    out = torch.empty_like(x)
    todo = torch.ones(n, dtype=torch.bool)
    if exact_right_angles and x.shape[-1] == x.shape[-2]:
        k = torch.round(a / (math.pi / 2))
        exact = (a - k * (math.pi / 2)).abs() < 1e-6
        for q in range(4):
            sel = exact & (torch.remainder(k, 4) == q)
            if bool(sel.any()):
                idx = sel.nonzero().flatten().to(x.device)
                out[idx] = torch.rot90(x[idx], q, dims=(-2, -1))
        todo = ~exact
    if bool(todo.any()):
        idx = todo.nonzero().flatten()
        dt = x.dtype if x.is_floating_point() else torch.float32
        grid = rotation_grid(a[idx].to(x.device), x.shape[-2:], x.shape[-2:]).to(dt)
        dev_idx = idx.to(x.device)
        out[dev_idx] = F.grid_sample(
            x[dev_idx].to(dt), grid, mode=mode, padding_mode="zeros", align_corners=False
        ).to(x.dtype)
    return out


def resample(x: torch.Tensor, new_length: int, align_corners: bool = True) -> torch.Tensor:
    """Linearly resample sequences ``(N, C, L)`` (or ``(N, L)``) to ``new_length`` samples.

    With ``align_corners=True`` (default) the first and last samples stay at the ends of the
    domain, as mnist1d itself samples its signals (``np.linspace(0, 1, L)``); this is the
    resolution-change used for zero-shot transfer (train at 40, test at 80).

    Example:
        >>> x = torch.tensor([[[0.0, 1.0, 2.0]]])
        >>> resample(x, 5)
        tensor([[[0.0000, 0.5000, 1.0000, 1.5000, 2.0000]]])
    """
    x = check_tensor(x, "x")
    if isinstance(new_length, bool) or not isinstance(new_length, int) or new_length < 2:
        raise ValueError(f"new_length must be an int >= 2, got {new_length!r}")
    if x.dim() not in (2, 3):
        raise ValueError(f"x must be sequences (N, C, L) or (N, L), got shape {tuple(x.shape)}")
    squeeze = x.dim() == 2
    y = x.unsqueeze(1) if squeeze else x
    dt = y.dtype if y.is_floating_point() else torch.float32
    y = F.interpolate(y.to(dt), size=new_length, mode="linear", align_corners=align_corners)
    return y.squeeze(1) if squeeze else y


def sequentialize(images: torch.Tensor, permutation_seed: int | None = None) -> torch.Tensor:
    """Flatten images ``(N, C, H, W)`` row by row into sequences ``(N, C, H*W)`` (sMNIST-style).

    With ``permutation_seed`` the time axis is permuted by a fixed random permutation drawn from
    a private generator (pMNIST-style); the same seed always gives the same permutation.

    Example:
        >>> sequentialize(torch.arange(4.0).reshape(1, 1, 2, 2))
        tensor([[[0., 1., 2., 3.]]])
    """
    images = check_tensor(images, "images")
    if images.dim() != 4:
        raise ValueError(f"images must be (N, C, H, W), got shape {tuple(images.shape)}")
    seq = images.flatten(2)
    if permutation_seed is not None:
        perm = torch.randperm(seq.shape[-1], generator=torch.Generator().manual_seed(int(permutation_seed)))
        seq = seq[..., perm.to(seq.device)]
    return seq


def random_drop(x: torch.Tensor, drop_rate: float, generator: torch.Generator | None = None) -> torch.Tensor:
    """Irregular sampling: zero a random ``drop_rate`` fraction of the time steps of each sequence.

    ``x`` is ``(N, C, L)``; the same steps are dropped in every channel of a sample. Returns a
    new tensor; ``generator`` (CPU) makes the choice reproducible.

    Example:
        >>> y = random_drop(torch.ones(2, 3, 10), 0.3, torch.Generator().manual_seed(0))
        >>> (y[:, 0] == 0).sum(dim=-1).tolist()
        [3, 3]
    """
    x = check_tensor(x, "x")
    if x.dim() != 3:
        raise ValueError(f"x must be sequences (N, C, L), got shape {tuple(x.shape)}")
    if not (0.0 <= float(drop_rate) < 1.0):
        raise ValueError(f"drop_rate must be in [0, 1), got {drop_rate!r}")
    n, _, length = x.shape
    k = int(round(float(drop_rate) * length))
    if k == 0:
        return x.clone()
    order = torch.rand(n, length, generator=generator).argsort(dim=1)[:, :k]
    keep = torch.ones(n, length, dtype=x.dtype).scatter_(1, order, 0.0).to(x.device)
    return x * keep.unsqueeze(1)
