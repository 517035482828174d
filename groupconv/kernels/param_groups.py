"""Optimiser parameter groups whose membership is decided by parameter *identity*, not by names.

CCNN's ``mask_lr_ratio`` silently did nothing: its optimiser looked for parameters named
``"mask_params"`` inside modules of one class, while the mask parameters were called
``mask_width_param``/``mask_mean_param`` and lived in a sibling class. Here a module declares
which of its *own* parameters belong to which group through a class (or instance) attribute
``_param_group_tags = {local_parameter_name: tag}`` (e.g. :class:`~groupconv.kernels.GaussianMask`
tags ``mean`` and ``log_sigma``/``sigma`` as ``"mask"``; :class:`~groupconv.kernels.SIREN` tags a
learnable ``omega_0`` as ``"omega_0"``). :func:`param_groups` walks ``named_modules()``, resolves
the tags to parameter objects, then assigns every parameter of ``model.named_parameters()`` to
exactly one group, so the names it reports are the real ones and nothing is lost or doubled
(:func:`check_param_groups` verifies it).
"""

from __future__ import annotations

from collections.abc import Mapping

from torch import nn

__all__ = ["DEFAULT_LR_FACTORS", "param_groups", "tag_parameters", "check_param_groups"]

#: FlexConv trains the mask at 0.1x the learning rate; omega_0 at the base rate by default.
DEFAULT_LR_FACTORS: dict[str, float] = {"mask": 0.1, "omega_0": 1.0}


def tag_parameters(module: nn.Module, tags: Mapping[str, str]) -> nn.Module:
    """Assign groups to parameters of ``module`` by their local names (instance-level tags).

    Example:
        >>> lin = tag_parameters(nn.Linear(2, 2), {"bias": "no_decay"})
        >>> [g["group"] for g in param_groups(lin, lr=1e-3)]
        ['default', 'no_decay']
    """
    for name in tags:
        if name not in module._parameters:
            raise ValueError(
                f"tags names a parameter {name!r} that {type(module).__name__} does not have; "
                f"its own parameters are {sorted(module._parameters)}"
            )
    merged = dict(getattr(module, "_param_group_tags", {}))
    merged.update(tags)
    module._param_group_tags = merged
    return module


def _tag_by_id(model: nn.Module) -> dict[int, str]:
    tags: dict[int, str] = {}
    for mod_name, module in model.named_modules(remove_duplicate=False):
        declared = getattr(module, "_param_group_tags", None)
        if not declared:
            continue
        for local, tag in declared.items():
            p = module._parameters.get(local)
            if p is None:  # declared but absent (e.g. a buffer when not learnable)
                continue
            previous = tags.get(id(p))
            if previous is not None and previous != tag:
                raise ValueError(
                    f"parameter {mod_name}.{local} is tagged both {previous!r} and {tag!r}"
                )
            tags[id(p)] = tag
    return tags


def param_groups(
    model: nn.Module,
    lr: float,
    *,
    lr_factors: Mapping[str, float] | None = None,
    weight_decay: float = 0.0,
    weight_decay_overrides: Mapping[str, float] | None = None,
    include_frozen: bool = False,
) -> list[dict]:
    """Parameter groups for ``torch.optim`` with per-tag learning-rate factors.

    Args:
        model: any module; tagged submodules (masks, learnable ``omega_0``) anywhere inside.
        lr: base learning rate (the ``"default"`` group).
        lr_factors: learning-rate factor per tag (missing tags get 1.0); defaults to
            :data:`DEFAULT_LR_FACTORS` (``mask: 0.1``, ``omega_0: 1.0``).
        weight_decay: base weight decay of every group.
        weight_decay_overrides: weight decay per tag (e.g. ``{"mask": 0.0}``).
        include_frozen: also list parameters with ``requires_grad=False``.

    Returns:
        A list of dicts ``{"params", "names", "group", "lr", "weight_decay"}`` (optimisers keep
        the extra keys), ``"default"`` first; every parameter appears exactly once.

    Example:
        >>> import torch
        >>> from groupconv.kernels import GaussianMask, SIREN
        >>> model = nn.ModuleDict({"net": SIREN(1, 2, learn_omega_0=True), "mask": GaussianMask(1)})
        >>> groups = param_groups(model, lr=0.01)
        >>> [(g["group"], g["lr"], g["names"]) for g in groups if g["group"] != "default"]
        [('mask', 0.001, ['mask.mean', 'mask.log_sigma']), ('omega_0', 0.01, ['net.omega_0'])]
        >>> opt = torch.optim.Adam(groups)
    """
    if not isinstance(model, nn.Module):
        raise TypeError(f"model must be an nn.Module, got {type(model).__name__}")
    if not (isinstance(lr, (int, float)) and lr >= 0):
        raise ValueError(f"lr must be a float >= 0, got {lr!r}")
    factors = dict(DEFAULT_LR_FACTORS if lr_factors is None else lr_factors)
    wd_over = dict(weight_decay_overrides or {})
    tags = _tag_by_id(model)
    groups: dict[str, dict] = {}
    for name, p in model.named_parameters():  # de-duplicated: shared params appear once
        if not (p.requires_grad or include_frozen):
            continue
        tag = tags.get(id(p), "default")
        if tag not in groups:
            groups[tag] = {
                "params": [],
                "names": [],
                "group": tag,
                "lr": lr * float(factors.get(tag, 1.0)) if tag != "default" else float(lr),
                "weight_decay": float(wd_over.get(tag, weight_decay)),
            }
        groups[tag]["params"].append(p)
        groups[tag]["names"].append(name)
    order = sorted(groups, key=lambda t: (t != "default", t))
    return [groups[t] for t in order]


def check_param_groups(model: nn.Module, groups: list[dict], include_frozen: bool = False) -> None:
    """Raise ``ValueError`` unless ``groups`` covers every parameter of ``model`` exactly once
    and each listed name refers to the very parameter object listed with it."""
    named = dict(model.named_parameters())
    expected = {id(p) for p in named.values() if p.requires_grad or include_frozen}
    seen: dict[int, str] = {}
    for g in groups:
        names = g.get("names", [None] * len(g["params"]))
        for name, p in zip(names, g["params"]):
            if id(p) in seen:
                raise ValueError(
                    f"parameter {name or '?'} is in two groups ({seen[id(p)]}, {g.get('group')})"
                )
            if name is not None and named.get(name) is not p:
                raise ValueError(f"group {g.get('group')!r} lists name {name!r} for another parameter")
            seen[id(p)] = str(g.get("group"))
    missing = [n for n, p in named.items() if id(p) in expected and id(p) not in seen]
    if missing:
        raise ValueError(f"parameters missing from every group: {missing}")
    extra = set(seen) - expected
    if extra:
        raise ValueError(f"{len(extra)} listed parameter(s) are not parameters of the model")

