"""Per-batch-element group grids for :class:`~groupconv.nn.group.gconv.LiftingConv` and
:class:`~groupconv.nn.group.gconv.GroupConv` (a mixin of their shared base).

With a sampler drawn per batch element (``StratifiedSampler(per="batch")``) or a batched
``in_grid`` ``(B, N_in, *element_shape)``, each sample gets its own grid: the kernel network is
evaluated once on the coordinates of all ``B`` grids and the convolution runs as ONE grouped
conv (``groups=B``) on ``(1, B C_in N_in, *spatial)``. Continuous kernels only (discrete weights
are not defined off a closed grid). In eval mode the deterministic shared grid is used.
"""

from __future__ import annotations

import torch.nn.functional as F
from torch import Tensor

from .gconv_kernels import batched_continuous_weight, continuous_coordinates
from .gconv_weights import pixel_mask_scale

__all__ = ["PerBatchGridMixin"]

_CONV = {1: F.conv1d, 2: F.conv2d, 3: F.conv3d}


class PerBatchGridMixin:
    """The per-batch-grid forward path; relies on the attributes of ``_RegularGroupConv``."""

    def _per_batch_call(self, in_grid: object) -> bool:
        batched_in = (
            not self._lifting and isinstance(in_grid, Tensor)
            and in_grid.dim() == 2 + len(self.group.element_shape)
        )
        if batched_in and not self._per_batch_grids:
            raise ValueError(
                f"in_grid with a batch axis (shape {tuple(in_grid.shape)}) is not supported by "
                f"{type(self).__name__}: pass a shared grid (in_num_elements, *element_shape)"
            )
        return batched_in or (self.training and self._per_batch)

    def _batched_grids(self, B: int, in_grid: Tensor | None, generator) -> tuple[Tensor, Tensor | None]:
        """``(out_grid (B, N, *e), in_grid (B, N_in, *e) or None)`` of a per-batch forward."""
        G, ref = self.group, self.out_grid
        if self.training and self._per_batch:
            out = self.sampler(G, self.num_elements, batch_size=B, generator=generator,
                               device=ref.device, dtype=ref.dtype)
        elif self.training and self._stochastic:  # one per-call draw shared by the batch
            out = self.sampler(G, self.num_elements, generator=generator, device=ref.device, dtype=ref.dtype)
            out = out.expand(B, *out.shape)
        else:
            out = ref.expand(B, *ref.shape)
        if self._lifting:
            return out, None
        if in_grid is None:
            return out, self.in_grid.expand(B, *self.in_grid.shape)
        if not self.continuous:
            raise ValueError("in_grid is only supported with continuous kernels (kernel_net=)")
        g = G.check_element(in_grid, "in_grid")
        ne = len(G.element_shape)
        if g.dim() == 1 + ne:
            g = g.expand(B, *g.shape)
        if g.dim() != 2 + ne or g.shape[0] != B or g.shape[1] != self.in_num_elements:
            raise ValueError(
                f"in_grid must have shape (B={B}, in_num_elements={self.in_num_elements}, "
                f"*element_shape) (one grid per batch element of x) or (in_num_elements, "
                f"*element_shape), got shape {tuple(in_grid.shape)}"
            )
        return out, g

    def _forward_per_batch(self, x: Tensor, in_grid: Tensor | None, generator) -> tuple[Tensor, Tensor]:
        """One grid per batch element: B expanded kernels and one grouped conv (``groups=B``)."""
        B = x.shape[0]
        if getattr(self, "basis", None) == "steerable":
            raise ValueError(
                "one in_grid per batch element needs basis='pixel' on this layer (the steerable "
                "projection is built for the layer's own output grid)"
            )
        out_grid, grid_in = self._batched_grids(B, in_grid, generator)
        coords, m = continuous_coordinates(
            self.group, out_grid, grid_in, self.kernel_size, self.mask, self.mask_radius,
            self.mask_temperature,
        )
        # (B, N, N_in, K)
        mask_scale = pixel_mask_scale(m, self._element_scale(out_grid), self._pair_mask(out_grid, grid_in))
        dt = self._coords.dtype
        weight = batched_continuous_weight(
            self.kernel_net, coords.to(dt), mask_scale.to(dt), self.out_channels, self.in_channels,
            self.kernel_size,
        )
        inp = x.reshape(1, -1, *x.shape[-self.spatial_dims :])  # (1, B C_in N_in, *s)
        bias = self.bias
        if bias is not None:
            bias = bias.unsqueeze(1).expand(-1, self.num_elements).reshape(1, -1).expand(B, -1).reshape(-1)
        y = _CONV[self.spatial_dims](inp, weight, bias, self.stride, self.padding, self.dilation, B)
        return y.view(B, self.out_channels, self.num_elements, *y.shape[2:]), out_grid

