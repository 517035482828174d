"""The eval-time kernel cache of the lifting and group convolutions.

In eval (or with frozen parameters) the expanded dense kernel ``(C_out N, C_in N_in, *k)`` and
the expanded bias are computed once and reused while the parameters and buffers keep their
versions; :meth:`EvalKernelCacheMixin._cached_forward` then serves a forward with one dense conv,
no re-validation of an input signature already checked and no grid resolution (the batch-1 /
small-map case, where Python overhead is comparable to the conv). Training and
``torch.compile`` always recompute.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor

__all__ = ["EvalKernelCacheMixin", "input_signature"]


def input_signature(x: object) -> tuple | None:
    """Shape, dtype and device of a tensor input, ``None`` otherwise: what the host's input
    check depends on besides the layer (an input with a checked signature is not re-checked)."""
    return (x.shape, x.dtype, x.device) if isinstance(x, Tensor) else None


class EvalKernelCacheMixin:
    """Cache of the expanded kernel for :class:`~groupconv.nn.group.gconv._RegularGroupConv`.

    The host provides ``_grids_for_forward``, ``_compute_weight``, ``_expanded_bias``, ``_conv``
    and the ``_kernel_cache`` buffer / ``_cache_key`` attribute.
    """

    _kernel_cache: Tensor | None
    _cache_key: tuple | None
    _eval_bias: Tensor | None

    def _param_key(self) -> tuple:
        # a direct walk over the parameter/buffer dicts: named_parameters' de-duplication costs
        # more than the conv itself on a batch-1 8x8 map (a shared tensor just appears twice)
        key: list = [torch.is_inference_mode_enabled()]
        for m in self.modules():
            for t in m._parameters.values():
                if t is not None:
                    key.append((t._version, t.data_ptr(), t.dtype, t.device))
            for name, t in m._buffers.items():
                if t is not None and not (m is self and name == "_kernel_cache"):
                    key.append((t._version, t.data_ptr(), t.dtype, t.device))
        return tuple(key)

    def _expanded(self, in_grid, generator) -> tuple[Tensor, Tensor]:
        out_grid, grid_in, fresh = self._grids_for_forward(in_grid, generator)
        # no cache under torch.compile: the key reads version counters and the inference-mode
        # flag, which dynamo cannot trace (the compiled graph re-expands the kernel anyway)
        cacheable = (
            not self.training
            and not fresh
            and not torch.compiler.is_compiling()
            and (not torch.is_grad_enabled() or not any(p.requires_grad for p in self.parameters()))
        )
        if cacheable:
            key = self._param_key()
            if self._kernel_cache is not None and self._cache_key == key:
                return self._kernel_cache, out_grid
            with torch.no_grad():
                w = self._compute_weight(out_grid, grid_in, fresh)
                self._eval_bias = None if self.bias is None else self._expanded_bias()
            self._kernel_cache = w
            self._cache_key = key
            return w, out_grid
        return self._compute_weight(out_grid, grid_in, fresh), out_grid

    def train(self, mode: bool = True) -> Any:
        self._kernel_cache = None
        self._cache_key = None
        self._eval_bias = None
        return super().train(mode)

    def _cached_forward(self, x: object) -> Tensor | None:
        """The eval forward straight from the cached expanded kernel and bias, or ``None``.

        Applies when the cache is valid (same parameter versions, same grad/inference mode as
        when it was filled) and ``x`` has the shape, dtype and device of an input that already
        passed :meth:`_check_input`: one dense conv, no re-validation, no grid resolution.
        """
        w = self._kernel_cache
        if (
            w is None
            or getattr(self, "_checked_input", None) != input_signature(x)
            or torch.compiler.is_compiling()
            or (torch.is_grad_enabled() and any(p.requires_grad for p in self.parameters()))
            or self._cache_key != self._param_key()
        ):
            return None
        return self._conv(x, w, getattr(self, "_eval_bias", None))
