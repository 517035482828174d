"""The kernel-net registry: one name set, one factory, per-layer defaults in one place.

Every continuous layer of groupconv (``CKConv``/``FlexConv`` and their separable forms,
``LiftingConv``/``GroupConv`` and the separable, partial and attentive layers built on them)
takes ``kernel_net=`` as one of the names of :data:`KERNEL_NETS` or an ``nn.Module`` mapping
``(..., in_features)`` coordinates to ``(..., out_features)`` kernel values, and
``kernel_net_kwargs=`` (options of a named net). :func:`build_kernel_net` is the one factory:

* a name is looked up case-insensitively and its class imported lazily;
* the layer family's defaults (:data:`KERNEL_NET_DEFAULTS`) are applied first, then
  ``kwargs`` (the user's ``kernel_net_kwargs``) override them;
* ``extra`` keyword arguments (``causal``, ``device``, ``dtype``) are passed only to classes
  whose constructor takes them;
* a module is checked (``in_features``/``out_features`` when it declares them) and returned as
  is; ``kwargs`` must then be empty.

Defaults per layer family (:data:`KERNEL_NET_DEFAULTS`):

* ``"continuous"`` (CKConv, FlexConv, SeparableCKConv/FlexConv): the classes' own defaults,
  which are the references' settings (CKConv/FlexConv/CCNN; e.g. SIREN ``omega_0 = 30``,
  MAGNet 3 layers of 32 and ``input_scale = 25.6``). FlexConv additionally ties a MAGNet's /
  GaborNet's window centres to its mask width (``mu_scale``), a default computed from the
  layer's own arguments (see :mod:`groupconv.nn.continuous.flexconv`).
* ``"group"`` (the regular lifting and group convolutions and everything built on them):
  SIREN with ``omega_0 = 10`` and an MLP with GELU and Kaiming init, 3 layers of 32 (the
  partial-equivariance references' ``CKResNet`` kernels; the group coordinates include the
  periodic embedding of ``h_i^{-1} h_j``); the other nets use their class defaults.

Example:
    >>> import torch
    >>> net = build_kernel_net("siren", 1, 6)
    >>> net(torch.zeros(5, 1)).shape
    torch.Size([5, 6])
    >>> float(build_kernel_net("siren", 4, 6, defaults="group").omega_0)
    10.0
    >>> try:
    ...     build_kernel_net("sirne", 1, 6)
    ... except ValueError as err:
    ...     print(str(err).split(" or ")[1])
    one of ['fourier', 'gabor', 'magnet', 'mlp', 'rff', 'siren'], got 'sirne'
"""

from __future__ import annotations

import importlib
import inspect
from typing import Any

from torch import nn

__all__ = ["KERNEL_NETS", "KERNEL_NET_DEFAULTS", "build_kernel_net", "kernel_net_class"]

#: kernel-net names accepted by every ``kernel_net=`` argument and the ``module:Class`` they map to.
KERNEL_NETS: dict[str, str] = {
    "mlp": "groupconv.kernels.nets:MLP",
    "siren": "groupconv.kernels.nets:SIREN",
    "rff": "groupconv.kernels.nets:RFF",
    "fourier": "groupconv.kernels.mfn:FourierNet",
    "gabor": "groupconv.kernels.mfn:GaborNet",
    "magnet": "groupconv.kernels.mfn:MAGNet",
}

#: constructor defaults per layer family and kernel-net name (``kernel_net_kwargs`` override them).
KERNEL_NET_DEFAULTS: dict[str, dict[str, dict[str, Any]]] = {
    "continuous": {},
    "group": {
        "siren": {"hidden_features": 32, "num_layers": 3, "omega_0": 10.0},
        "mlp": {"hidden_features": 32, "num_layers": 3, "activation": "gelu", "init": "kaiming"},
    },
}


def _expected() -> str:
    return f"an nn.Module or one of {sorted(KERNEL_NETS)}"


def kernel_net_class(name: str) -> type[nn.Module]:
    """The class registered under ``name`` (case-insensitive; imported on first use).

    Example:
        >>> kernel_net_class("MAGNet").__name__
        'MAGNet'
    """
    if not isinstance(name, str) or name.lower() not in KERNEL_NETS:
        raise ValueError(f"kernel_net must be {_expected()}, got {name!r}")
    mod_name, cls_name = KERNEL_NETS[name.lower()].split(":")
    return getattr(importlib.import_module(mod_name), cls_name)


def build_kernel_net(
    kernel_net: str | nn.Module,
    in_features: int,
    out_features: int,
    kwargs: dict[str, Any] | None = None,
    *,
    defaults: str = "continuous",
    **extra: Any,
) -> nn.Module:
    """Instantiate a kernel net by name or check a given module (see the module docstring).

    Args:
        kernel_net: a name in :data:`KERNEL_NETS` (any case) or an ``nn.Module``.
        in_features, out_features: coordinates in, kernel values out.
        kwargs: constructor options of a named net (the layer's ``kernel_net_kwargs``).
        defaults: the layer family in :data:`KERNEL_NET_DEFAULTS` whose defaults apply.
        extra: passed only when the class's constructor takes them (``causal``, ``device``...).

    Example:
        >>> import torch
        >>> build_kernel_net("magnet", 2, 3, {"hidden_features": 8})(torch.zeros(4, 2)).shape
        torch.Size([4, 3])
    """
    if defaults not in KERNEL_NET_DEFAULTS:
        raise ValueError(f"defaults must be one of {sorted(KERNEL_NET_DEFAULTS)}, got {defaults!r}")
    if isinstance(kernel_net, nn.Module):
        if kwargs:
            raise ValueError(
                f"kernel_net_kwargs must be empty when kernel_net is a module, got {sorted(kwargs)}"
            )
        for attr, want in (("in_features", in_features), ("out_features", out_features)):
            got = getattr(kernel_net, attr, want)
            if got != want:
                raise ValueError(f"kernel_net.{attr} must be {want} for this layer, got {got}")
        return kernel_net
    if kwargs is not None and not isinstance(kwargs, dict):
        raise TypeError(f"kernel_net_kwargs must be a dict or None, got {type(kwargs).__name__}")
    cls = kernel_net_class(kernel_net)
    params = inspect.signature(cls.__init__).parameters
    options = {k: v for k, v in extra.items() if k in params}
    options.update(KERNEL_NET_DEFAULTS[defaults].get(kernel_net.lower(), {}))
    options.update(kwargs or {})
    return cls(in_features, out_features, **options)
