"""Candidate group elements for exact field transforms, and snapping of low-precision elements
to the group's own elements (internal helpers of :mod:`groupconv.spaces.fields_grid`)."""

from __future__ import annotations

import itertools
import math

import torch

from ..groups.base import Group

__all__ = ["candidate_elements", "snap_elements", "snap_tolerance"]

_JOIN_METHODS = ("compose", "join", "element", "from_parts", "combine", "pack")


def snap_tolerance(dtype: torch.dtype) -> float:
    """Max-abs distance under which an element stored in ``dtype`` is taken to be a float64
    reference element (8 ulp of ``dtype`` at 1, never below 1e-9)."""
    if not dtype.is_floating_point:
        return 0.0
    return max(8 * torch.finfo(dtype).eps, 1e-9)


def snap_elements(els: torch.Tensor, ref: torch.Tensor, dtype: torch.dtype) -> torch.Tensor:
    """Replace each row of ``els`` (float64) by the nearest row of ``ref`` (float64) when they
    differ by at most :func:`snap_tolerance` (``dtype``, scaled by the magnitude)."""
    if not els.is_floating_point() or ref.numel() == 0 or els.numel() == 0:
        return els
    tol = snap_tolerance(dtype)
    a = els.reshape(els.shape[0], -1).to(torch.float64)
    b = ref.reshape(ref.shape[0], -1).to(device=a.device, dtype=torch.float64)
    D = (a[:, None, :] - b[None, :, :]).abs().amax(-1)
    dmin, j = D.min(dim=1)
    scale = 1.0 + b.abs().amax(-1)[j]
    hit = dmin <= tol * scale
    out = torch.where(hit[:, None], b[j], a)
    return out.reshape(els.shape)


def _signed_permutations(d: int) -> torch.Tensor:
    mats = []
    for perm in itertools.permutations(range(d)):
        for signs in itertools.product((1.0, -1.0), repeat=d):
            P = torch.zeros(d, d, dtype=torch.float64)
            for r, (c, s) in enumerate(zip(perm, signs)):
                P[r, c] = s
            mats.append(P)
    return torch.stack(mats)


def _join(group: Group, t: torch.Tensor, h: torch.Tensor) -> torch.Tensor | None:
    """Build the element ``(t, h)`` of a semidirect product (checked by ``split``)."""
    cands = []
    for name in _JOIN_METHODS:
        fn = getattr(group, name, None)
        if callable(fn):
            try:
                cands.append(fn(t, h))
            except Exception:  # noqa: BLE001 - an unknown signature: try the next one
                pass
    es = tuple(group.element_shape)
    flat = torch.cat([t.reshape(-1), h.reshape(-1)])
    if flat.numel() == math.prod(es):
        cands.append(flat.reshape(es))
    for c in cands:
        try:
            t2, h2 = group.split(c)
            if torch.allclose(t2.to(t.dtype), t) and torch.allclose(h2.to(h.dtype), h):
                return c
        except Exception:  # noqa: BLE001
            continue
    return None


def candidate_elements(group: Group, d: int) -> list[torch.Tensor]:
    """Elements worth testing for an exact action (float64, CPU, batches), identity first."""
    es = tuple(group.element_shape)
    out: list[torch.Tensor] = [group.identity((1,), dtype=torch.float64)]

    def add(fn):
        try:
            c = fn()
            if c is not None:
                out.append(c.to(torch.float64).reshape(-1, *es))
        except Exception:  # noqa: BLE001 - a group without that discretisation
            pass

    if group.is_finite and group.order <= 1024:
        add(lambda: group.elements(dtype=torch.float64))
        return out
    for n in (8, 4, 2):
        add(lambda n=n: group.grid(n, dtype=torch.float64))
    if es == (d, d):  # matrix groups: the signed permutations that are members
        for P in _signed_permutations(d):
            add(lambda P=P: group.validate(P, "P"))
    shifts = [torch.zeros(d, dtype=torch.float64)]
    for k in range(d):
        for s in (1.0, -1.0):
            e = torch.zeros(d, dtype=torch.float64)
            e[k] = s
            shifts.append(e)
    shifts.append(torch.arange(1, d + 1, dtype=torch.float64))
    factors = getattr(group, "factors", None)
    if hasattr(group, "split") and hasattr(group, "H"):  # R^d x| H
        hs = torch.cat(candidate_elements(group.H, d))
        pairs = [(shifts[0], h) for h in hs] + [(t, hs[0]) for t in shifts[1:]]
        pairs += [(shifts[-1], h) for h in hs[1:]]  # a mixed shift-rotation per linear part
        for t, h in pairs:
            add(lambda t=t, h=h: _join(group, t, h))
    elif isinstance(factors, tuple) and callable(getattr(group, "combine", None)):  # direct products
        per = [torch.cat(candidate_elements(f, f.space_dim))[:8] for f in factors]
        for combo in itertools.product(*[list(p) for p in per]):
            add(lambda combo=combo: group.combine(*combo))
    elif es == (d,):  # translation-like groups: elements may be the shift vectors themselves
        out.extend(s.reshape(1, d) for s in shifts[1:])
    return out


