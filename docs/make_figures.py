"""Render the documentation figures into ``docs/_static/figures/`` (committed PNGs).

Run ``python docs/make_figures.py`` after changing the conventions they show. Every transform
is done by groupconv itself (``groupconv.spaces`` fields, ``groupconv.sampling`` samplers), so a
figure that looks wrong is a bug report. Needs matplotlib; takes a few seconds on a CPU.
"""

from __future__ import annotations

import math
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import torch  # noqa: E402

from groupconv.groups import SO2, CyclicGroup, DihedralGroup  # noqa: E402
from groupconv.sampling import GridSampler, HaarSampler, StratifiedSampler  # noqa: E402
from groupconv.spaces import GroupGridField, ImageField  # noqa: E402

OUT = Path(__file__).resolve().parent / "_static" / "figures"
DPI = 80


def test_image(size: int = 33) -> torch.Tensor:
    """An asymmetric smooth image ``(1, 1, size, size)``: an "F"-like shape, blurred."""
    img = torch.zeros(size, size, dtype=torch.float64)
    s = size // 11
    img[2 * s: 9 * s, 3 * s: 5 * s] = 1.0   # vertical bar
    img[2 * s: 4 * s, 5 * s: 9 * s] = 1.0   # top arm
    img[5 * s: 6 * s + 1, 5 * s: 7 * s] = 1.0  # middle arm
    k = torch.tensor([1.0, 4.0, 6.0, 4.0, 1.0], dtype=torch.float64)
    k = (k[:, None] * k[None, :]) / 256.0
    return torch.nn.functional.conv2d(img[None, None], k[None, None], padding=2)


def _show(ax, img: torch.Tensor, title: str, cmap: str = "viridis", **kw) -> None:
    ax.imshow(img.squeeze().numpy(), cmap=cmap, **kw)
    ax.set_title(title, fontsize=8)
    ax.set_xticks([])
    ax.set_yticks([])


def fig_group_actions(path: Path) -> None:
    """An image and its transforms by the 8 elements of D4 (first row: C4)."""
    x = test_image()
    D4 = DihedralGroup(4)
    field = ImageField(D4)
    els = D4.elements()
    fig, axes = plt.subplots(2, 4, figsize=(8, 4.3))
    for i, g in enumerate(els):
        theta, m = float(g[0]), int(g[1])
        y = field.transform(x, g)
        label = f"rot {round(math.degrees(theta)) % 360}°" + (", mirror" if m < 0 else "")
        _show(axes[i // 4, i % 4], y, label)
    fig.suptitle("D4 acting on an image: C4 rotations (top), mirrored ones (bottom)", fontsize=10)
    fig.tight_layout()
    fig.savefig(path, dpi=DPI)
    plt.close(fig)


def fig_exact_vs_interpolated(path: Path) -> None:
    """90° (index permutation, exact) vs 45° (interpolated): round-trip errors and the disc mask."""
    x = test_image(41)
    field = ImageField(SO2())
    mask = field.valid_mask(x.shape)
    rows = []
    for deg in (90.0, 45.0):
        g = torch.tensor([math.radians(deg)], dtype=torch.float64)
        y = field.transform(x, g)
        back = field.transform(y, SO2().inverse(g))
        rows.append((deg, y, (back - x).abs()))
    fig, axes = plt.subplots(2, 3, figsize=(8, 5.4))
    for r, (deg, y, err) in enumerate(rows):
        kind = "exact (rot90)" if deg == 90 else "interpolated"
        _show(axes[r, 0], x, "x")
        _show(axes[r, 1], y, f"g.x, {deg:.0f}° {kind}")
        m = err if mask is None else err * mask
        _show(axes[r, 2], m, f"|g⁻¹.(g.x) − x| in the disc\nmax {float(m.max()):.1e}", cmap="magma",
              vmin=0.0, vmax=max(float(rows[1][2].max()), 1e-12))
        if mask is not None:
            axes[r, 2].contour(mask.squeeze().numpy(), levels=[0.5], colors="white", linewidths=0.8)
    fig.suptitle("Exact vs approximate equivariance on a pixel grid", fontsize=10)
    fig.tight_layout()
    fig.savefig(path, dpi=DPI)
    plt.close(fig)


def fig_so2_grids(path: Path) -> None:
    """SO(2) discretisations: uniform grid, stratified grid (one random offset), Haar samples."""
    G = SO2()
    gen = torch.Generator().manual_seed(0)
    samplers = [("grid", GridSampler()), ("stratified", StratifiedSampler()), ("Haar", HaarSampler())]
    fig, axes = plt.subplots(1, 3, figsize=(8, 2.9), subplot_kw={"aspect": "equal"})
    circle = torch.linspace(0, 2 * math.pi, 200)
    for ax, (name, sampler) in zip(axes, samplers):
        ax.plot(torch.cos(circle), torch.sin(circle), color="0.8", lw=1)
        for draw, color in ((0, "C0"), (1, "C1")):
            angles = sampler(G, 8, generator=gen).reshape(-1)
            ax.scatter(torch.cos(angles), torch.sin(angles), s=22 if draw == 0 else 12, color=color,
                       zorder=3, label=f"call {draw + 1}")
        ax.set_title(f"{name}, n = 8", fontsize=9)
        ax.set_xticks([])
        ax.set_yticks([])
        ax.set_xlim(-1.25, 1.25)
        ax.set_ylim(-1.25, 1.25)
    axes[0].legend(fontsize=7, loc="lower left")
    fig.suptitle("Discretising SO(2): two calls of each sampler", fontsize=10)
    fig.tight_layout()
    fig.savefig(path, dpi=DPI)
    plt.close(fig)


def fig_group_grid_action(path: Path) -> None:
    """A C4 group feature map (B, C, 4, H, W) and its transform: rotate space and roll the axis."""
    C4 = CyclicGroup(4)
    base = test_image(33)
    f = torch.cat([base * (1.0 + 0.4 * i) for i in range(4)], dim=1)[:, None]  # (1, 1, 4, H, W)
    g = C4.elements()[1]
    gf = GroupGridField(C4, C4.elements()).transform(f, g)
    # the convention, computed independently: rot90 of every slice and a roll of the group axis
    assert torch.equal(gf, torch.roll(torch.rot90(f, 1, dims=(-2, -1)), 1, dims=2))
    fig, axes = plt.subplots(2, 4, figsize=(8, 4.3))
    vmax = float(f.max())
    for i in range(4):
        _show(axes[0, i], f[0, 0, i], f"f(h{i}, ·)", vmin=0, vmax=vmax)
        _show(axes[1, i], gf[0, 0, i], f"(g.f)(h{i}, x) = f(h{(i - 1) % 4}, g⁻¹x)", vmin=0, vmax=vmax)
    fig.suptitle(f"C4 on a group feature map, g = {float(g[0]) / math.pi:.1f}π: "
                 "rot90 of each slice and a roll of the group axis", fontsize=10)
    fig.tight_layout()
    fig.savefig(path, dpi=DPI)
    plt.close(fig)


FIGURES = {
    "group_actions.png": fig_group_actions,
    "exact_vs_interpolated.png": fig_exact_vs_interpolated,
    "so2_grids.png": fig_so2_grids,
    "group_grid_action.png": fig_group_grid_action,
}


def main(out: Path = OUT) -> list[Path]:
    out.mkdir(parents=True, exist_ok=True)
    paths = []
    for name, fn in FIGURES.items():
        fn(out / name)
        paths.append(out / name)
    return paths


if __name__ == "__main__":
    for p in main():
        print(f"{p} ({p.stat().st_size // 1024} KB)")
