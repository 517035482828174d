"""The eval-time kernel cache of the lifting and group convolutions.

In eval (or with frozen parameters) the expanded dense kernel ``(C_out N, C_in N_in, *k)`` and
the expanded bias are computed once and reused while the layer's parameters and buffers are
unchanged. A forward whose input has the shape, dtype and device of an input that already
passed the layer's checks is then served by :meth:`EvalKernelCacheMixin._cached_forward`: one
dense conv, no re-validation, no grid resolution (the batch-1 / small-map case, where Python
overhead is comparable to the conv). Training and ``torch.compile`` always recompute.

What "unchanged" means (:func:`module_watch`, :func:`watch_holds`): every tensor registered in
the layer or its submodules (kernel nets) keeps its version counter (an in-place edit under
``torch.no_grad``, an optimizer step and ``load_state_dict`` all bump it) and its storage
pointer (``p.data = ...``); every ``_parameters`` / ``_buffers`` / ``_modules`` entry of the
submodules is still the same object and none was added or removed. On the layer itself any
attribute assignment or deletion (a parameter, buffer or submodule, ``load_state_dict(assign=True)``,
but also ``layer.mask_temperature = ...``), ``.to()`` / ``.double()`` / ``.cuda()``
(``nn.Module._apply``) and ``train()`` / ``eval()`` drop the cache. Only stored values are
compared per call, no key is rebuilt: the batch-1 path reads each registered tensor's version
and pointer and nothing else of the layer (the per-call Python work is what the batch-1 8x8
benchmark row measures). Edits through ``p.data`` (``p.data.add_(1)``) bypass the version
counter by torch's design, and plain attributes of a submodule are not watched: call
:meth:`~EvalKernelCacheMixin.clear_cache` after such edits.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor, nn

__all__ = ["EvalKernelCacheMixin", "module_watch", "watch_holds"]

_MISSING = object()
_CONV = {1: torch.nn.functional.conv1d, 2: torch.nn.functional.conv2d, 3: torch.nn.functional.conv3d}
# bound once: the batch-1 path calls them on every forward (dynamo knows these functions)
_is_compiling = torch.compiler.is_compiling
_grad_enabled = torch.is_grad_enabled


def module_watch(module: nn.Module) -> tuple[tuple, tuple]:
    """A snapshot of the state a module's computation depends on, for :func:`watch_holds`.

    ``(tensors, entries)``: ``(tensor, version, data_ptr)`` of every registered parameter and
    buffer of ``module`` and its submodules, and ``(dict, name, value)`` of every entry of the
    submodules' ``_parameters`` / ``_buffers`` / ``_modules`` dicts plus ``(dict, None, len)``
    per dict (``module``'s own entries are left out: the layers drop their cache on attribute
    assignment instead, see :class:`EvalKernelCacheMixin`).

    Example:
        >>> import torch
        >>> net = torch.nn.Sequential(torch.nn.Linear(2, 2))
        >>> w = module_watch(net)
        >>> watch_holds(w)
        True
        >>> with torch.no_grad():
        ...     _ = net[0].weight.add_(1.0)
        ...
        >>> watch_holds(w)
        False
        >>> w = module_watch(net)
        >>> net[0].bias = torch.nn.Parameter(torch.zeros(2))  # a submodule's entry replaced
        >>> watch_holds(w)
        False
    """
    tensors: dict[int, tuple] = {}  # by id: a tensor registered twice is read once
    entries: list[tuple] = []
    for m in module.modules():
        for d in (m._parameters, m._buffers, m._modules):
            if m is not module:
                entries.append((d, None, len(d)))
            for name, value in d.items():
                if m is not module:
                    entries.append((d, name, value))
                if isinstance(value, Tensor):
                    tensors[id(value)] = (value, value._version, value.data_ptr())
    return tuple(tensors.values()), tuple(entries)


def watch_holds(watch: tuple[tuple, tuple] | None) -> bool:
    """Whether nothing recorded by :func:`module_watch` changed (``None``: ``False``)."""
    if watch is None:
        return False
    tensors, entries = watch
    for t, version, ptr in tensors:
        if t._version != version or t.data_ptr() != ptr:
            return False
    for d, name, value in entries:
        if (len(d) != value) if name is None else (d.get(name, _MISSING) is not value):
            return False
    return True


class EvalKernelCacheMixin:
    """Cache of the expanded kernel for :class:`~groupconv.nn.group.gconv._RegularGroupConv`.

    The host provides ``_grids_for_forward``, ``_compute_weight``, ``_expanded_bias``, ``_conv``,
    ``bias``, ``_lifting``, ``out_channels``, ``num_elements``, ``spatial_dims``, ``stride``,
    ``padding`` and ``dilation``. The cache lives in plain attributes (not buffers: ``state_dict``
    and ``.to()`` never see it; ``_apply`` drops it):

    * ``_kernel_cache``, ``_eval_bias``: the expanded kernel and bias;
    * ``_cache_key``: the :func:`module_watch` taken when they were computed;
    * ``_cache_inference``: whether they were computed under ``torch.inference_mode``;
    * ``_eval_state``: what the fast path needs, set by the host's forward once an input
      signature has passed its checks with the cached kernel (see :meth:`_remember_input`).
    """

    _kernel_cache: Tensor | None = None
    _eval_bias: Tensor | None = None
    _cache_key: tuple | None = None
    _cache_inference: bool = False
    _eval_state: tuple | None = None

    def clear_cache(self) -> None:
        """Drop the cached eval kernel (recomputed at the next forward).

        Needed only after editing parameters through ``.data`` (``p.data.add_(1)``), which
        bypasses torch's version counters; every other change is noticed by itself.
        """
        # object.__setattr__: plain attributes, without nn.Module.__setattr__'s dict lookups
        object.__setattr__(self, "_kernel_cache", None)
        object.__setattr__(self, "_eval_bias", None)
        object.__setattr__(self, "_cache_key", None)
        object.__setattr__(self, "_eval_state", None)

    def _cache_allowed(self) -> bool:
        """Eval, not compiling, and no gradient to the parameters can be needed."""
        return (
            not self.training
            and not _is_compiling()
            and (not _grad_enabled() or not any(p.requires_grad for p in self.parameters()))
        )

    def _expanded(self, in_grid, generator) -> tuple[Tensor, Tensor]:
        out_grid, grid_in, fresh = self._grids_for_forward(in_grid, generator)
        # no cache under torch.compile: the check reads version counters, which dynamo cannot
        # trace (the compiled graph re-expands the kernel anyway)
        if fresh or not self._cache_allowed():
            return self._compute_weight(out_grid, grid_in, fresh), out_grid
        w = self._kernel_cache
        # a kernel filled under inference_mode is an inference tensor: fine wherever gradients
        # are off, refilled where autograd could record it (grad enabled, frozen parameters)
        if w is None or (self._cache_inference and _grad_enabled()) or not watch_holds(self._cache_key):
            with torch.no_grad():
                w = self._compute_weight(out_grid, grid_in, fresh)
                bias = None if self.bias is None else self._expanded_bias()
            self.clear_cache()
            object.__setattr__(self, "_kernel_cache", w)
            object.__setattr__(self, "_eval_bias", bias)
            object.__setattr__(self, "_cache_inference", torch.is_inference_mode_enabled())
            # taken after the expansion: the kernel is what these versions produce
            object.__setattr__(self, "_cache_key", module_watch(self))
        return w, out_grid

    def _remember_input(self, x: Tensor, weight: Tensor, y: Tensor) -> None:
        """Record the fast-path state after a checked forward that used the cached kernel:
        everything :meth:`_cached_forward` reads, in one tuple (one attribute lookup)."""
        if weight is not self._kernel_cache or _is_compiling():
            return
        tensors, entries = self._cache_key
        in_shape = None if self._lifting else (x.shape[0], -1, *x.shape[3:])
        state = (
            x.shape, x.dtype, x.device, in_shape, _CONV[len(self.stride)], weight, self._eval_bias,
            (self.stride, self.padding, self.dilation), tuple(y.shape), tensors, entries,
            tuple(self.parameters()), self._cache_inference,
        )
        object.__setattr__(self, "_eval_state", state)

    def _cached_forward(self, x: object) -> Tensor | None:
        """The eval forward straight from the cached expanded kernel and bias, or ``None``.

        Applies when the layer is in eval, not being compiled, no parameter gradient can be
        needed, nothing the kernel depends on changed (:func:`watch_holds`) and ``x`` has the
        shape, dtype and device of an input that already passed the layer's checks: one dense
        conv, no re-validation, no grid resolution. Written flat (no helper calls): on a
        batch-1 8x8 map every Python step after the conv has evicted the interpreter's caches
        costs about ten times its tight-loop time.
        """
        state = self._eval_state  # None in training: train() / eval() / any assignment clear it
        if state is None or _is_compiling():
            return None
        (shape, dtype, device, in_shape, conv, w, b, geometry, out_shape, tensors, entries, params,
         inference) = state
        if not isinstance(x, Tensor) or x.shape != shape or x.dtype is not dtype or x.device != device:
            return None
        if _grad_enabled() and (inference or any(p.requires_grad for p in params)):
            return None
        for t, version, ptr in tensors:
            if t._version != version or t.data_ptr() != ptr:
                return None
        if entries and not watch_holds(((), entries)):
            return None
        return conv(x if in_shape is None else x.view(in_shape), w, b, *geometry).view(out_shape)

    def train(self, mode: bool = True) -> Any:
        self.clear_cache()
        return super().train(mode)  # type: ignore[misc]

    def _apply(self, fn: Any, recurse: bool = True) -> Any:
        # .to() / .double() / .cuda() / .half(): parameters may keep their objects and versions
        self.clear_cache()
        return super()._apply(fn, recurse)  # type: ignore[misc]

    def __setattr__(self, name: str, value: Any) -> None:
        # any assignment (a parameter, buffer or submodule, load_state_dict(assign=True), a
        # geometry or mask option) may change the kernel or the forward: drop the cache. The
        # cache's own attributes are written with object.__setattr__ and never come here.
        if self.__dict__.get("_eval_state") is not None or self.__dict__.get("_kernel_cache") is not None:
            self.clear_cache()
        super().__setattr__(name, value)

    def __getstate__(self) -> dict:
        # copies and pickles start without the cache (it holds the original's dicts and tensors)
        state = dict(super().__getstate__())  # type: ignore[misc]
        for name in ("_kernel_cache", "_eval_bias", "_cache_key", "_eval_state"):
            state.pop(name, None)
        return state

    def __delattr__(self, name: str) -> None:
        self.clear_cache()
        super().__delattr__(name)


