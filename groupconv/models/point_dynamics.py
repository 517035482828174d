"""Vector fields on particle systems (accelerations, forces): equivariant point networks and an MLP.

:class:`PointDynamicsNet` maps particle positions ``(B, N, d)``, velocities ``(B, N, d)`` and
invariant per-particle scalars ``(B, N, C)`` (masses, charges, spring constants) to one vector
per particle ``(B, N, d)``, equivariant to the group of its :class:`~groupconv.models.PointGResNet`:

1. the positions are lifted to group elements ``u = (x_i, h_s)`` (``S`` frames per particle;
   for ``SE(2)`` the frames point at the particle's nearest neighbours, so
   ``lift(g x) = g lift(x)`` exactly);
2. velocities enter in the frame's local coordinates ``h_s^T v_i`` (invariant under every rigid
   motion, since frame and velocity rotate together), next to the scalars, as lifted features;
3. the ResNet's convolutions see only ``u^-1 v`` (invariant);
4. the equivariant head reads ``d``-vectors in each frame and rotates them back to the world by
   ``h_s`` (averaged over frames).

So for ``SE(2)``: rotating and translating the positions (and rotating the velocities) rotates
the output vectors; for ``Translations(2)`` (frames = identity) the output is only
translation-invariant. :class:`MLPDynamics` is the non-equivariant baseline on the flattened
absolute state.

Example:
    >>> import torch
    >>> from groupconv.groups import SE2
    >>> net = PointDynamicsNet(SE2(), 2, channels=8, num_blocks=1, num_neighbors=4)
    >>> q, v, s = torch.randn(3, 5, 2), torch.randn(3, 5, 2), torch.rand(3, 5, 2)
    >>> net(q, v, s).shape
    torch.Size([3, 5, 2])
"""

from __future__ import annotations

import torch
from torch import nn

from .._validation import check_positive_int, check_tensor
from ..functional.points import check_points
from ..groups.base import Group
from .point_resnet import PointGResNet

__all__ = ["PointDynamicsNet", "MLPDynamics"]


class PointDynamicsNet(nn.Module):
    """Equivariant per-particle vector field from positions, velocities and scalars (module doc).

    Args:
        group: ``Translations(d)`` or ``R^d ⋊ H`` (``SE2``, ...), as for :class:`PointGResNet`.
        scalar_channels: invariant features per particle (e.g. 2: mass and spring constant).
        use_velocities: feed the velocities (in frame coordinates) as features.
        channels, num_blocks, num_frames, num_neighbors, norm, kernel_channels, kernel_hidden,
            coordinate_scale: of the underlying :class:`PointGResNet` (``head="equivariant"``).

    Example:
        >>> import torch
        >>> from groupconv.groups import Translations
        >>> net = PointDynamicsNet(Translations(2), 1, channels=4, num_blocks=0)
        >>> net(torch.randn(2, 4, 2), torch.randn(2, 4, 2), torch.ones(2, 4, 1)).shape
        torch.Size([2, 4, 2])
    """

    def __init__(
        self,
        group: Group,
        scalar_channels: int,
        *,
        use_velocities: bool = True,
        channels: int = 16,
        num_blocks: int = 2,
        num_frames: int | None = None,
        num_neighbors: int = 8,
        norm: str = "layer",
        kernel_channels: int = 16,
        kernel_hidden: int = 32,
        coordinate_scale: float = 1.0,
        device: torch.device | str | None = None,
        dtype: torch.dtype | None = None,
    ) -> None:
        super().__init__()
        self.scalar_channels = check_positive_int(scalar_channels, "scalar_channels")
        self.use_velocities = bool(use_velocities)
        self.group = group
        d = group.space_dim
        in_channels = self.scalar_channels + (d if self.use_velocities else 0)
        # the embedding convolution reads the lifted inputs (scalars + frame-local velocities)
        self.net = PointGResNet(
            group, in_channels, 1, channels=channels, num_blocks=num_blocks, num_frames=num_frames,
            num_neighbors=num_neighbors, head="equivariant", norm=norm, kernel_channels=kernel_channels,
            kernel_hidden=kernel_hidden, coordinate_scale=coordinate_scale, device=device, dtype=dtype,
        )
        self.d = self.net.d

    def lifted_inputs(self, positions: torch.Tensor, velocities: torch.Tensor, scalars: torch.Tensor,
                      mask: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """The lifted elements ``u`` ``(B, N, S, *shape)`` and features ``(B, N, S, C)``."""
        u = self.net.lift(positions, mask)
        S = u.shape[2]
        feats = [scalars.unsqueeze(2).expand(-1, -1, S, -1)]
        if self.use_velocities:
            lin = self.group.matrix(u).to(velocities.dtype)  # (B, N, S, d, d): the frame's rotation
            feats.append((lin.transpose(-1, -2) @ velocities[:, :, None, :, None]).squeeze(-1))
        return u, torch.cat(feats, -1)

    def forward(self, positions: torch.Tensor, velocities: torch.Tensor, scalars: torch.Tensor,
                mask: torch.Tensor | None = None) -> torch.Tensor:
        """Vectors ``(B, N, d)`` for positions, velocities ``(B, N, d)``, scalars ``(B, N, C)``."""
        positions, mask = check_points(positions, mask, "positions")
        velocities, scalars = check_tensor(velocities, "velocities"), check_tensor(scalars, "scalars")
        if velocities.shape != positions.shape:
            raise ValueError(f"velocities must have the shape of positions {tuple(positions.shape)}, "
                             f"got {tuple(velocities.shape)}")
        if tuple(scalars.shape) != (*positions.shape[:2], self.scalar_channels):
            raise ValueError(f"scalars must have shape (B, N, scalar_channels) = "
                             f"{(*positions.shape[:2], self.scalar_channels)}, got {tuple(scalars.shape)}")
        net = self.net
        u, feats = self.lifted_inputs(positions, velocities, scalars, mask)
        h = net.embed(u, feats, mask)
        for block in net.blocks:
            h = block(h.elements, h.features, h.mask)
        z = net.act(net.norm(h.features, h.mask))
        B, M, S = z.shape[:3]
        local = net.readout(z).reshape(B, M, S, self.d, 1)
        lin = self.group.matrix(h.elements).to(z.dtype)
        world = (lin @ local).squeeze(-1)  # (B, N, S, d)
        return world.mean(2) * h.mask.to(z.dtype)[:, :, None]


class MLPDynamics(nn.Module):
    """Non-equivariant baseline: an MLP on the flattened absolute state ``(B, N * (2 d + C))``.

    Example:
        >>> import torch
        >>> net = MLPDynamics(5, 2, hidden=32)
        >>> net(torch.randn(3, 5, 2), torch.randn(3, 5, 2), torch.rand(3, 5, 2)).shape
        torch.Size([3, 5, 2])
    """

    def __init__(self, num_particles: int, scalar_channels: int, *, d: int = 2, hidden: int = 128,
                 layers: int = 3) -> None:
        super().__init__()
        self.num_particles = check_positive_int(num_particles, "num_particles")
        self.scalar_channels = check_positive_int(scalar_channels, "scalar_channels")
        self.d = check_positive_int(d, "d")
        layers = check_positive_int(layers, "layers")
        n_in = self.num_particles * (2 * self.d + self.scalar_channels)
        mods: list[nn.Module] = []
        for i in range(layers - 1):
            mods += [nn.Linear(n_in if i == 0 else hidden, hidden), nn.SiLU()]
        mods.append(nn.Linear(n_in if layers == 1 else hidden, self.num_particles * self.d))
        self.mlp = nn.Sequential(*mods)

    def forward(self, positions: torch.Tensor, velocities: torch.Tensor, scalars: torch.Tensor,
                mask: torch.Tensor | None = None) -> torch.Tensor:
        """Vectors ``(B, N, d)``; ``mask`` must be ``None`` or all real (fixed ``N``)."""
        if mask is not None and not bool(mask.all()):
            raise ValueError("mask must be None or all True: MLPDynamics has a fixed number of particles")
        positions = check_tensor(positions, "positions")
        velocities, scalars = check_tensor(velocities, "velocities"), check_tensor(scalars, "scalars")
        want = (self.num_particles, self.d)
        if positions.dim() != 3 or tuple(positions.shape[1:]) != want:
            raise ValueError(f"positions must have shape (B, num_particles, d) = (B, *{want}), "
                             f"got shape {tuple(positions.shape)}")
        B, N = positions.shape[:2]
        if velocities.shape != positions.shape:
            raise ValueError(f"velocities must have the shape of positions {tuple(positions.shape)}, "
                             f"got {tuple(velocities.shape)}")
        if tuple(scalars.shape) != (B, N, self.scalar_channels):
            raise ValueError(f"scalars must have shape (B, N, scalar_channels) = "
                             f"{(B, N, self.scalar_channels)}, got {tuple(scalars.shape)}")
        dtype = self.mlp[0].weight.dtype
        got = (positions.dtype, velocities.dtype, scalars.dtype)
        if any(t != dtype for t in got):
            raise ValueError(f"positions, velocities and scalars must have the module's dtype {dtype}, "
                             f"got {got}")
        x = torch.cat([positions, velocities, scalars], -1).reshape(B, -1)
        return self.mlp(x).reshape(B, N, self.d)
