"""Off-grid rotation probes shared by tests/nn/group/test_off_grid.py (inputs and measures only).

Two protocols of issue 11:

* :func:`axis_probe_error`: an analytic smooth input (a sum of Gaussians) sampled at exactly
  rotated coordinates (no interpolation of the input), the output at the centre pixel (fixed
  by the rotation) against the unrotated output rolled along the group axis.
* :func:`max_pool_error`: a smooth noise image rotated with cubic interpolation (scipy-free:
  ``grid_sample(mode="bicubic")``), the max over the group axis, relative error on the
  central disc.

The rotation ``R(a)`` acts on (row, col) positions as ``torch.rot90(x, 1, dims=(-2, -1))`` at
``a = 90`` degrees (checked in the tests), so the group axis moves by ``+a / (360 / N)``.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor


def _positions(size: int) -> Tensor:
    c = (size - 1) / 2
    ax = torch.arange(size, dtype=torch.float64) - c
    rr, cc = torch.meshgrid(ax, ax, indexing="ij")
    return torch.stack([rr, cc], -1)  # (S, S, 2) (row, col) about the centre pixel


def rotate_positions(p: Tensor, angle: float) -> Tensor:
    """``R(angle)^{-1} p`` for (row, col) positions: the source of output position ``p`` when
    the image is rotated by ``angle`` (the rot90 sense at 90 degrees)."""
    c, s = math.cos(angle), math.sin(angle)
    row, col = p[..., 0], p[..., 1]
    # rot90(x, 1, dims=(-2,-1)) maps out[i, j] = x[j, S-1-i]: source (row, col) = (col, -row)
    return torch.stack([c * row + s * col, -s * row + c * col], -1)


def gaussian_mixture(n_images: int, size: int, seed: int, angle: float = 0.0,
                     channels: int = 1, blobs: int = 6) -> Tensor:
    """``(n, channels, size, size)`` sums of Gaussians sampled at positions rotated by ``angle``
    about the centre pixel (exactly: the function is rotated, not the pixels)."""
    g = torch.Generator().manual_seed(seed)
    n = n_images * channels
    centres = (torch.rand(n, blobs, 2, generator=g, dtype=torch.float64) - 0.5) * (size * 0.6)
    widths = 1.2 + 1.6 * torch.rand(n, blobs, generator=g, dtype=torch.float64)
    amps = torch.randn(n, blobs, generator=g, dtype=torch.float64)
    p = rotate_positions(_positions(size), angle)  # (S, S, 2)
    d2 = ((p.view(1, 1, size, size, 2) - centres.view(n, blobs, 1, 1, 2)) ** 2).sum(-1)
    img = (amps.view(n, blobs, 1, 1) * torch.exp(-d2 / (2 * widths.view(n, blobs, 1, 1) ** 2))).sum(1)
    return img.view(n_images, channels, size, size).float()


@torch.no_grad()
def axis_probe_error(model, n_elements: int, angle: float, *, size: int = 21, n_images: int = 64,
                     seed: int = 0, channels: int = 1) -> float:
    """Relative error on the group axis at the centre pixel under an exact analytic rotation."""
    step = angle / (2 * math.pi / n_elements)
    k = round(step)
    assert abs(step - k) < 1e-9, "the angle must be on the group grid"
    x = gaussian_mixture(n_images, size, seed, 0.0, channels)
    xr = gaussian_mixture(n_images, size, seed, angle, channels)
    c = size // 2
    y = model(x)[..., c, c]  # (B, C, N)
    yr = model(xr)[..., c, c]
    target = torch.roll(y, k, dims=-1)
    return float((yr - target).norm() / target.norm())


def smooth_noise(size: int, seed: int, sigma: float = 2.0, channels: int = 1) -> Tensor:
    """Gaussian-filtered white noise ``(1, channels, size, size)``, unit std."""
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(1, channels, size, size, generator=g, dtype=torch.float64)
    r = int(math.ceil(4 * sigma))
    t = torch.arange(-r, r + 1, dtype=torch.float64)
    k1 = torch.exp(-t * t / (2 * sigma * sigma))
    k1 = k1 / k1.sum()
    kx = k1.view(1, 1, 1, -1).expand(channels, 1, 1, -1)
    ky = k1.view(1, 1, -1, 1).expand(channels, 1, -1, 1)
    x = F.conv2d(F.pad(x, (r, r, 0, 0), mode="reflect"), kx, groups=channels)
    x = F.conv2d(F.pad(x, (0, 0, r, r), mode="reflect"), ky, groups=channels)
    return (x / x.std()).float()


def rotate_cubic(x: Tensor, angle: float) -> Tensor:
    """Rotate ``(..., S, S)`` maps about the centre pixel by ``angle`` with bicubic
    interpolation (zeros outside), in the sense of :func:`rotate_positions`."""
    S = x.shape[-1]
    src = rotate_positions(_positions(S), angle)  # (row, col) source, pixel units from centre
    c = (S - 1) / 2
    grid = torch.stack([src[..., 1] / c, src[..., 0] / c], -1).to(x.dtype)  # (x=col, y=row)
    flat = x.reshape(-1, 1, S, S)
    out = F.grid_sample(flat, grid.expand(flat.shape[0], S, S, 2), mode="bicubic",
                        padding_mode="zeros", align_corners=True)
    return out.reshape(x.shape)


@torch.no_grad()
def max_pool_error(model, angle: float, *, size: int = 33, seed: int = 0, radius: float = 6.0,
                   channels: int = 1) -> float:
    """Max over the group axis, cubic-interpolated input rotation, error on the central disc."""
    x = smooth_noise(size, seed, channels=channels)
    y = model(x).amax(2)  # (1, C, S, S)
    yr = model(rotate_cubic(x, angle)).amax(2)
    target = rotate_cubic(y, angle)
    disc = (_positions(size).norm(dim=-1) <= radius).to(y.dtype)
    return float(((yr - target) * disc).norm() / (target * disc).norm())
