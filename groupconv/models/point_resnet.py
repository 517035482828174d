"""A point-cloud G-ResNet (LieResNet-like, Finzi et al. 2020) on :class:`~groupconv.nn.PointGroupConv`.

``points (B, N, d)`` (+ per-point invariant ``features`` and a padding ``mask``) are lifted to
the group by :func:`~groupconv.functional.points.lift_points` (neighbour frames by default, so
the lift commutes exactly with rigid motions), embedded by one ``PointGroupConv`` and passed
through residual blocks

    h -> h[sub] + Linear(act(norm(PointGroupConv(act(norm(h))))))

where ``sub`` is the farthest-point subsample of the block's output points (the identity when
the block keeps every point). Features live on group elements and are invariant under the
left action (only the elements move), so any per-channel normalisation keeps equivariance;
``norm="batch"`` is a masked batch norm over the real (point, frame) entries,
``norm="layer"`` a layer norm over the channels.

Heads:

* ``head="invariant"``: mean over frames and real points, then an MLP: ``(B, out_channels)``,
  invariant under every group element (classification, energies);
* ``head="equivariant"``: per point and frame a linear map to ``out_channels`` vectors in the
  frame's local coordinates, rotated to the world by the linear part of the frame element
  ``u = (x, h)`` and averaged over the frames: ``(B, N, out_channels, d)`` vectors that rotate
  with the input and ignore translations (velocities, forces). Needs every block to keep every
  point (no ``num_samples``).

Example:
    >>> import torch
    >>> from groupconv.groups import SE2
    >>> net = PointGResNet(SE2(), 1, 3, channels=8, num_blocks=2, num_samples=(None, 6))
    >>> x = torch.randn(2, 10, 2, generator=torch.Generator().manual_seed(0))
    >>> net(x).shape
    torch.Size([2, 3])
    >>> vec = PointGResNet(SE2(), 1, 1, channels=8, num_blocks=1, head="equivariant")
    >>> vec(x).shape
    torch.Size([2, 10, 1, 2])
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor, nn

from .._validation import check_positive_int, check_tensor
from ..functional.points import (
    FRAME_MODES,
    check_points,
    farthest_point_sampling,
    gather_points,
    lift_points,
    translation_dim,
)
from ..groups.base import Group
from ..groups.euclidean import Translations
from ..groups.rotations import SO2
from ..nn.group.points import LiftedPoints, PointGroupConv

__all__ = ["PointGResNet", "PointResBlock", "MaskedNorm", "POINT_HEADS", "POINT_NORMS", "POINT_FRAMES",
           "centroid_frames"]

#: Heads of :class:`PointGResNet`.
POINT_HEADS = ("invariant", "equivariant")
#: Normalisations of :class:`PointGResNet` / :class:`PointResBlock`.
POINT_NORMS = ("batch", "layer", "none")
#: Lifts of :class:`PointGResNet`: those of :func:`~groupconv.functional.points.lift_points` and
#: ``"centroid"`` (:func:`centroid_frames`).
POINT_FRAMES = (*FRAME_MODES, "centroid")


def centroid_frames(group: Group, points: Tensor, mask: Tensor | None = None, num_frames: int = 1) -> Tensor:
    """Lift points ``(B, N, 2)`` to ``R^2 ⋊ SO(2)`` with frames pointing at the cloud's centroid.

    ``u = (x, theta + 2 pi s / S)``, ``s = 0 .. S-1``, where ``theta`` is the angle of ``c - x``
    and ``c`` the mean of the real points. ``c`` moves with every rigid motion, so
    ``lift(g x) = g lift(x)`` exactly (as the neighbour frames), but the direction to ``c`` is
    a smooth function of the whole cloud, where the direction to the nearest neighbour jumps
    between the (near-)tied neighbours of a pixel lattice. Undefined (decided by rounding) only
    for a point at ``c`` itself.

    Example:
        >>> import torch
        >>> from groupconv.groups import SE2
        >>> u = centroid_frames(SE2(), torch.tensor([[[0.0, 0.0], [2.0, 0.0]]]), num_frames=2)
        >>> u.shape, [round(float(a), 4) for a in u[0, 0, :, 2]]
        (torch.Size([1, 2, 2, 3]), [0.0, 3.1416])
    """
    points, mask = check_points(points, mask)
    S = check_positive_int(num_frames, "num_frames")
    if not isinstance(getattr(group, "H", None), SO2) or points.shape[-1] != 2:
        raise ValueError(f"centroid frames need R^2 ⋊ SO(2) (SE2) and points (B, N, 2), got {group!r} and "
                         f"points of shape {tuple(points.shape)}")
    w = mask.to(points.dtype).unsqueeze(-1)
    c = (points * w).sum(1, keepdim=True) / w.sum(1, keepdim=True).clamp_min(1.0)
    diff = c - points
    theta = torch.atan2(diff[..., 1], diff[..., 0])  # (B, N); e_0 is the row axis, as lift_points
    offs = torch.arange(S, dtype=points.dtype, device=points.device) * (2 * torch.pi / S)
    h = (theta.unsqueeze(-1) + offs).unsqueeze(-1)  # (B, N, S, 1)
    B, N = points.shape[:2]
    return group.combine(points.unsqueeze(2).expand(B, N, S, 2), h)  # type: ignore[attr-defined]


class MaskedNorm(nn.Module):
    """Per-channel normalisation of lifted features ``(B, N, S, C)`` that ignores padding points.

    ``kind="batch"``: batch norm whose statistics (and running averages) are taken over the real
    ``(b, n, s)`` entries only; ``"layer"``: layer norm over ``C``; ``"none"``: the identity.
    Padding entries are returned as zeros.

    Example:
        >>> import torch
        >>> norm = MaskedNorm(4, "batch")
        >>> x, m = torch.randn(2, 5, 3, 4), torch.ones(2, 5, dtype=torch.bool)
        >>> m[1, 3:] = False
        >>> y = norm(x, m).detach()
        >>> bool(y[1, 3:].eq(0).all()), abs(float(y[m].mean())) < 1e-5
        (True, True)
    """

    running_mean: Tensor  # buffers of kind="batch"
    running_var: Tensor

    def __init__(self, channels: int, kind: str = "batch", *, momentum: float = 0.1, eps: float = 1e-5,
                 device: torch.device | str | None = None, dtype: torch.dtype | None = None) -> None:
        super().__init__()
        if kind not in POINT_NORMS:
            raise ValueError(f"norm must be one of {POINT_NORMS}, got {kind!r}")
        self.kind, self.channels = kind, check_positive_int(channels, "channels")
        self.momentum, self.eps = float(momentum), float(eps)
        fk = {"device": device, "dtype": dtype}
        self.weight = nn.Parameter(torch.ones(channels, **fk)) if kind != "none" else None
        self.bias = nn.Parameter(torch.zeros(channels, **fk)) if kind != "none" else None
        if kind == "batch":
            self.register_buffer("running_mean", torch.zeros(channels, **fk))
            self.register_buffer("running_var", torch.ones(channels, **fk))

    def extra_repr(self) -> str:
        return f"{self.channels}, kind={self.kind!r}"

    def forward(self, x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """Normalise ``x`` ``(B, N, S, C)`` with real points ``mask`` ``(B, N)``."""
        x = check_tensor(x, "x")
        if x.dim() != 4 or x.shape[-1] != self.channels or not x.is_floating_point():
            raise ValueError(f"x must be float lifted features (B, N, S, C={self.channels}), got shape "
                             f"{tuple(x.shape)} and dtype {x.dtype}")
        mask = check_tensor(mask, "mask")
        if tuple(mask.shape) != tuple(x.shape[:2]):
            raise ValueError(f"mask must have shape (B, N) = {tuple(x.shape[:2])}, got {tuple(mask.shape)}")
        w = mask.to(x.dtype)[:, :, None, None]
        if self.kind == "none":
            return x * w
        weight, bias = self.weight.to(x.dtype), self.bias.to(x.dtype)
        if self.kind == "layer":
            y = nn.functional.layer_norm(x, (self.channels,), weight, bias, self.eps)
            return y * w
        if self.training:
            count = (w.sum() * x.shape[2]).clamp_min(1.0)
            mean = (x * w).sum((0, 1, 2)) / count
            var = ((x - mean).pow(2) * w).sum((0, 1, 2)) / count
            with torch.no_grad():
                unbiased = var * count / (count - 1).clamp_min(1.0)
                self.running_mean.lerp_(mean.detach().to(self.running_mean.dtype), self.momentum)
                self.running_var.lerp_(unbiased.detach().to(self.running_var.dtype), self.momentum)
        else:
            mean, var = self.running_mean.to(x.dtype), self.running_var.to(x.dtype)
        y = (x - mean) * torch.rsqrt(var + self.eps) * weight + bias
        return y * w


class PointResBlock(nn.Module):
    """``h -> h[sub] + Linear(act(norm(PointGroupConv(act(norm(h))))))`` on lifted points.

    ``num_samples`` subsamples the output points by farthest-point sampling (the skip path
    takes the same points); ``**conv_kwargs`` go to :class:`~groupconv.nn.PointGroupConv`.

    Example:
        >>> import torch
        >>> from groupconv.groups import SE2
        >>> from groupconv.functional.points import lift_points
        >>> u = lift_points(SE2(), torch.randn(1, 9, 2), num_frames=2)
        >>> out = PointResBlock(SE2(), 4, num_neighbors=4, num_samples=5)(u, torch.randn(1, 9, 2, 4))
        >>> out.features.shape
        torch.Size([1, 5, 2, 4])
    """

    def __init__(self, group: Group, channels: int, *, num_neighbors: int = 16, radius: float | None = None,
                 num_samples: int | None = None, norm: str = "batch",
                 device: torch.device | str | None = None, dtype: torch.dtype | None = None,
                 **conv_kwargs: object) -> None:
        super().__init__()
        self.num_samples = num_samples
        self.norm1 = MaskedNorm(channels, norm, device=device, dtype=dtype)
        self.conv = PointGroupConv(group, channels, channels, num_neighbors=num_neighbors, radius=radius,
                                   num_samples=num_samples, device=device, dtype=dtype,
                                   **conv_kwargs)  # type: ignore[arg-type]
        self.norm2 = MaskedNorm(channels, norm, device=device, dtype=dtype)
        self.linear = nn.Linear(channels, channels, device=device, dtype=dtype)
        self.act = nn.SiLU()
        self.d = translation_dim(group)

    def forward(self, elements: torch.Tensor, features: torch.Tensor, mask: torch.Tensor | None = None,
                orbits: torch.Tensor | None = None) -> LiftedPoints:
        """Apply the block; returns :class:`~groupconv.nn.LiftedPoints` on the output points."""
        elements, features, mask = self.conv._check(elements, features, mask, orbits)
        h = self.conv(elements, self.act(self.norm1(features, mask)), mask, orbits)
        y = self.linear(self.act(self.norm2(h.features, h.mask)))
        skip = features
        if self.num_samples is not None:
            # the conv's own choice of query points: the same deterministic function of the points
            pts = elements.reshape(*elements.shape[:3], -1)[:, :, 0, : self.d]
            idx, _ = farthest_point_sampling(pts, self.num_samples, mask)
            skip = gather_points(features, idx)
        out = (skip + y) * h.mask[:, :, None, None].to(y.dtype)
        return LiftedPoints(h.elements, out, h.mask)


class PointGResNet(nn.Module):
    """Residual group-convolutional network on point clouds (see the module docstring).

    Args:
        group: ``Translations(d)`` or ``R^d ⋊ H`` (SE2, SE3, ...), as for ``PointGroupConv``.
        in_channels: per-point invariant input features (``features=None`` in ``forward``
            means a constant 1, so ``in_channels=1``).
        out_channels: classes / invariant outputs, or vectors per point for the equivariant head.
        channels: feature channels of every block.
        num_blocks: residual blocks after the embedding convolution.
        num_frames: ``S``, stabiliser elements per point (default 2; 1 for ``Translations``).
        num_neighbors, radius: neighbourhoods of every convolution.
        num_samples: per block, ``None`` (keep every point) or the number of points kept by
            farthest-point sampling; a sequence of length ``num_blocks`` (default: keep all).
        head: ``"invariant"`` or ``"equivariant"`` (:data:`POINT_HEADS`).
        norm: ``"batch"``, ``"layer"`` or ``"none"`` (:data:`POINT_NORMS`).
        frames: how the lift chooses frames (:data:`POINT_FRAMES`; ``"neighbors"`` and
            ``"centroid"`` (SE2 only, :func:`centroid_frames`) are exactly equivariant; see
            :func:`~groupconv.functional.points.lift_points`).
        kernel_channels, kernel_hidden, coordinate_scale: passed to every ``PointGroupConv``.

    Example:
        >>> import torch
        >>> from groupconv.groups import Translations
        >>> net = PointGResNet(Translations(3), 2, 8, channels=8, num_blocks=1)
        >>> net(torch.randn(3, 6, 3), torch.randn(3, 6, 2)).shape
        torch.Size([3, 8])
    """

    def __init__(
        self,
        group: Group,
        in_channels: int,
        out_channels: int,
        *,
        channels: int = 32,
        num_blocks: int = 3,
        num_frames: int | None = None,
        num_neighbors: int = 16,
        radius: float | None = None,
        num_samples: Sequence[int | None] | None = None,
        head: str = "invariant",
        norm: str = "batch",
        frames: str = "neighbors",
        kernel_channels: int = 16,
        kernel_hidden: int = 32,
        coordinate_scale: float = 1.0,
        device: torch.device | str | None = None,
        dtype: torch.dtype | None = None,
    ) -> None:
        super().__init__()
        self.group = group
        self.d = translation_dim(group)
        self.in_channels = check_positive_int(in_channels, "in_channels")
        self.out_channels = check_positive_int(out_channels, "out_channels")
        channels = check_positive_int(channels, "channels")
        self.num_blocks = int(num_blocks)
        if self.num_blocks < 0:
            raise ValueError(f"num_blocks must be >= 0, got {num_blocks}")
        if num_frames is None:
            num_frames = 1 if isinstance(group, Translations) else 2
        self.num_frames = check_positive_int(num_frames, "num_frames")
        if isinstance(group, Translations) and self.num_frames != 1:
            raise ValueError(f"num_frames must be 1 for {group!r} (trivial stabiliser), got {num_frames}")
        if head not in POINT_HEADS:
            raise ValueError(f"head must be one of {POINT_HEADS}, got {head!r}")
        if norm not in POINT_NORMS:
            raise ValueError(f"norm must be one of {POINT_NORMS}, got {norm!r}")
        if frames not in POINT_FRAMES:
            raise ValueError(f"frames must be one of {POINT_FRAMES}, got {frames!r}")
        if frames == "centroid" and not isinstance(group, Translations) and not isinstance(
                getattr(group, "H", None), SO2):
            raise ValueError(f"frames='centroid' needs R^2 ⋊ SO(2) (SE2) or Translations, got {group!r}")
        samples = [None] * self.num_blocks if num_samples is None else list(num_samples)
        if len(samples) != self.num_blocks:
            raise ValueError(
                f"num_samples must have num_blocks={self.num_blocks} entries, got {len(samples)}"
            )
        if head == "equivariant" and any(s is not None for s in samples):
            raise ValueError(f"head='equivariant' outputs a vector per input point: num_samples must "
                             f"be all None, got {tuple(samples)}")
        self.head, self.frames, self.num_samples = head, frames, tuple(samples)
        fk = {"device": device, "dtype": dtype}
        ck = {"kernel_channels": kernel_channels, "kernel_hidden": kernel_hidden,
              "coordinate_scale": coordinate_scale}
        self.embed = PointGroupConv(group, in_channels, channels, num_neighbors=num_neighbors, radius=radius,
                                    **ck, **fk)  # type: ignore[arg-type]
        self.blocks = nn.ModuleList(
            PointResBlock(group, channels, num_neighbors=num_neighbors, radius=radius, num_samples=s,
                          norm=norm,
                          **ck, **fk)  # type: ignore[arg-type]
            for s in samples
        )
        self.norm = MaskedNorm(channels, norm, **fk)
        self.act = nn.SiLU()
        self.readout: nn.Module
        if head == "invariant":
            self.readout = nn.Sequential(nn.Linear(channels, channels, **fk), nn.SiLU(),
                                         nn.Linear(channels, out_channels, **fk))
        else:
            self.readout = nn.Linear(channels, out_channels * self.d, **fk)

    def extra_repr(self) -> str:
        return (f"{self.group!r}, head={self.head!r}, num_frames={self.num_frames}, "
                f"num_samples={self.num_samples}")

    def lift(self, points: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
        """The lifted elements ``(B, N, S, *element_shape)`` the network convolves."""
        if isinstance(self.group, Translations):
            return lift_points(self.group, points, mask)
        if self.frames == "centroid":
            return centroid_frames(self.group, points, mask, self.num_frames)
        return lift_points(self.group, points, mask, num_frames=self.num_frames, frames=self.frames)

    def forward(self, points: torch.Tensor, features: torch.Tensor | None = None,
                mask: torch.Tensor | None = None) -> torch.Tensor:
        """``points`` ``(B, N, d)``, ``features`` ``(B, N, in_channels)`` (default ones), ``mask``
        ``(B, N)`` bool; returns ``(B, out_channels)`` or ``(B, N, out_channels, d)``."""
        points, mask = check_points(points, mask)
        if features is None:
            if self.in_channels != 1:
                raise ValueError(
                    f"features=None means one constant channel, but in_channels={self.in_channels}"
                )
            features = points.new_ones(*points.shape[:2], 1)
        features = check_tensor(features, "features")
        if tuple(features.shape) != (*points.shape[:2], self.in_channels):
            raise ValueError(f"features must have shape (B, N, in_channels) = "
                             f"{(*points.shape[:2], self.in_channels)}, got {tuple(features.shape)}")
        u = self.lift(points, mask)
        h = self.embed(u, features, mask)
        for block in self.blocks:
            h = block(h.elements, h.features, h.mask)
        z = self.act(self.norm(h.features, h.mask))  # (B, M, S, C), zero at padding
        w = h.mask.to(z.dtype)
        if self.head == "invariant":
            pooled = z.mean(2).sum(1) / w.sum(1, keepdim=True).clamp_min(1.0)
            return self.readout(pooled)
        B, M, S = z.shape[:3]
        local = self.readout(z).reshape(B, M, S, self.out_channels, self.d, 1)
        lin = self.group.matrix(h.elements).to(z.dtype)  # (B, M, S, d, d): the frame's linear part
        world = (lin[:, :, :, None] @ local).squeeze(-1)  # (B, M, S, out, d)
        return world.mean(2) * w[:, :, None, None]
