"""Learned partial equivariance (Romero & Lohit, "Learning Partial Equivariances from Data",
NeurIPS 2022), implemented from the maths.

Each partial layer integrates over a *learned* subset of H instead of all of it:

* ``mode="extent"`` (continuous SO(2), O(2); continuous kernels): the output grid is a
  stratified, reparameterised sample of ``U[-pi u, pi u)``, ``u = sigmoid(extent_logit)``::

      theta_k = u (g_k + (2 pi / n) eps_k),   g_k = the uniform grid in [-pi, pi),  eps_k ~ U(0, 1)

  (training; ``eps_k = 0`` in eval, so ``u -> 1`` gives the layer's grid). The kernel net sees
  the relative elements, so ``dL/du`` flows through the grid into the kernel (no ``.item()``;
  unlike the reference code the number of samples stays ``n``: no host sync, no shape change).
  For O(2) the mirrored copies of the rotations are kept by a straight-through relaxed
  Bernoulli sample with ``logits = mirror_logit`` (a learned mirror probability).
* ``mode="mask"`` (finite groups or deterministic grids): one logit per non-identity rotation
  (C_n, SO(2) grids; D_n / O(2) grids: ``n/2 - 1`` rotation logits and one mirror logit; other
  groups: one logit per non-identity element). Each forward draws a relaxed Bernoulli
  (Gumbel-sigmoid) sample ``sigmoid((l + log U - log(1 - U)) / tau)`` with the parameter ``l``
  AS THE LOGIT (the reference SO(2) code passes ``sigmoid(2 l)`` as a logit, so an element can
  never be dropped reliably), hardened with the straight-through estimator; the identity is
  always kept. Dropped elements' outputs are zeroed (the grid keeps its size, so later layers'
  Haar means simply skip them). Eval uses the deterministic mask ``l > 0``.

``partial=False`` or :meth:`set_fully_equivariant` turns a layer back into exactly the fully
equivariant :class:`~groupconv.nn.group.gconv.LiftingConv` / :class:`~groupconv.nn.group.gconv.GroupConv`
(same parameters, same outputs). Also here: :class:`TemperatureSchedule` (Gumbel temperature
annealing), :func:`monotonic_decay_loss` (``lambda sum_l ReLU(m_{l+1} - m_l)`` over the layers'
support measures), :func:`extents` (reporting), :func:`partial_param_groups` (a separate
learning rate for the partial parameters) and :class:`GroupSequential`, which threads the
output grid of each layer into the next one and composes with ``GroupBatchNorm``,
``GlobalInvariantPool`` and activations.

Example:
    >>> import torch
    >>> from groupconv.groups import SO2
    >>> from groupconv.nn.group.pooling import GlobalInvariantPool
    >>> net = GroupSequential(
    ...     PartialLiftingConv(1, 4, SO2(), 3, num_elements=8, kernel_net="siren", padding=1),
    ...     torch.nn.ReLU(),
    ...     PartialGroupConv(4, 2, SO2(), 3, num_elements=8, kernel_net="siren", padding=1),
    ...     GlobalInvariantPool())
    >>> net(torch.randn(2, 1, 7, 7)).shape
    torch.Size([2, 2])
    >>> sorted(extents(net))
    ['0', '2']
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import torch
from torch import Tensor, nn

from ..._validation import check_positive_int
from ...groups.base import Group
from ...groups.rotations import O2, SO2, CyclicGroup, DihedralGroup
from .gconv import GroupConv, LiftingConv, apply_element_mask

__all__ = [
    "PartialLiftingConv",
    "PartialGroupConv",
    "GroupSequential",
    "TemperatureSchedule",
    "relaxed_bernoulli",
    "monotonic_decay_loss",
    "extents",
    "set_fully_equivariant",
    "partial_layers",
    "partial_param_groups",
]

_MODES = ("extent", "mask")


def _logit(p: float, name: str) -> float:
    if isinstance(p, bool) or not isinstance(p, (int, float)) or not 0.0 < float(p) < 1.0:
        raise ValueError(f"{name} must be a probability strictly between 0 and 1, got {p!r}")
    return math.log(p) - math.log1p(-p)


def _uniform(shape: tuple[int, ...], generator: torch.Generator | None, like: Tensor) -> Tensor:
    dev = generator.device if generator is not None else like.device
    return torch.rand(shape, generator=generator, device=dev, dtype=like.dtype).to(like.device)


def relaxed_bernoulli(
    logits: Tensor,
    temperature: Tensor | float,
    generator: torch.Generator | None = None,
    hard: bool = True,
) -> Tensor:
    """Gumbel-sigmoid (binary Concrete) sample with ``logits`` as the log-odds.

    ``soft = sigmoid((logits + log U - log(1 - U)) / temperature)``, ``U ~ U(0, 1)``; with
    ``hard=True`` the forward value is ``1[soft > 0.5]`` (a Bernoulli(``sigmoid(logits)``)
    sample, whatever the temperature) and the gradient is that of ``soft`` (straight-through).

    Example:
        >>> import torch
        >>> z = relaxed_bernoulli(torch.tensor([-30.0, 30.0]), 0.5)
        >>> z.tolist()
        [0.0, 1.0]
    """
    u = _uniform(tuple(logits.shape), generator, logits)
    tiny = torch.finfo(u.dtype).tiny
    u = u.clamp(tiny, 1 - torch.finfo(u.dtype).eps)
    soft = torch.sigmoid((logits + torch.log(u) - torch.log1p(-u)) / temperature)
    if not hard:
        return soft
    return (soft > 0.5).to(soft.dtype) - soft.detach() + soft


class _PartialMixin:
    """Partial-equivariance machinery shared by the lifting and group convolutions."""

    _per_batch_grids = False  # the grid and the mask are drawn per call, shared by the batch
    _grid_moves_in_forward = True  # extent mode: the learned extent moves the grid

    def _init_partial(self, partial: bool, mode: str | None, init_extent: float, init_keep: float,
                      temperature: float) -> None:
        G: Group = self.group
        self.structure = (
            "rotation" if isinstance(G, (SO2, CyclicGroup))
            else "mirror" if isinstance(G, (O2, DihedralGroup)) else "generic"
        )
        if mode is None:
            extent_ok = self.continuous and not G.is_finite and self.structure != "generic"
            mode = "extent" if extent_ok else "mask"
        if mode not in _MODES:
            raise ValueError(f"mode must be one of {_MODES} or None, got {mode!r}")
        if isinstance(temperature, bool) or not isinstance(temperature, (int, float)) or temperature <= 0:
            raise ValueError(f"temperature must be a positive number, got {temperature!r}")
        self.partial_mode = mode
        self.partial = bool(partial)
        N = self.num_elements
        p = self.bias if self.bias is not None else next(self.parameters())
        fk = {"device": p.device, "dtype": p.dtype}
        if self.structure == "mirror" and N % 2 and N != 1:
            raise ValueError(f"a grid of {G.name} must hold n/2 rotations and their mirrors, got N={N}")
        n_rot = N // 2 if self.structure == "mirror" and N > 1 else N
        self.n_rotations = n_rot
        if mode == "extent":
            if self.structure not in ("rotation", "mirror") or G.is_finite:
                raise ValueError(
                    f"mode='extent' needs the continuous group SO2 or O2, got {G.name}; use mode='mask'"
                )
            if not self.continuous:
                raise ValueError("mode='extent' needs a continuous kernel (kernel_net=): the grid "
                                 "moves with the learned extent")
            self.extent_logit = nn.Parameter(torch.tensor(_logit(init_extent, "init_extent"), **fk))
            base = G.grid(N, dtype=torch.float64)[:n_rot, 0]  # uniform angles in [-pi, pi)
            self.register_buffer("_base_angles", base.to(fk["device"]), persistent=False)
        else:
            if self._stochastic:
                raise ValueError("mode='mask' masks the elements of a deterministic grid: "
                                 f"sampler={self.sampler!r} draws random grids")
            n_logits = max(n_rot - 1, 0) if self.structure != "generic" else N - 1
            self.element_logits = nn.Parameter(torch.full((n_logits,), _logit(init_keep, "init_keep"), **fk))
        if self.structure == "mirror":
            self.mirror_logit = nn.Parameter(torch.tensor(_logit(init_keep, "init_keep"), **fk))
        self.register_buffer("temperature", torch.tensor(float(temperature), **fk))

    # -- the learned distribution ------------------------------------------------------------
    def set_fully_equivariant(self, flag: bool = True) -> None:
        """``True``: behave exactly as the fully equivariant layer; ``False``: partial."""
        self.partial = not bool(flag)

    @property
    def fully_equivariant(self) -> bool:
        return not self.partial

    def extent(self) -> Tensor | None:
        """``u = sigmoid(extent_logit)``: the rotation support is ``[-pi u, pi u)`` (extent mode)."""
        return torch.sigmoid(self.extent_logit) if self.partial_mode == "extent" else None

    def mirror_probability(self) -> Tensor | None:
        """Probability that the mirrored elements are kept (O(2)/D_n)."""
        return torch.sigmoid(self.mirror_logit) if self.structure == "mirror" else None

    def keep_probabilities(self) -> Tensor | None:
        """Per-element keep probabilities ``(N,)`` on the grid (mask mode; identity: 1)."""
        if self.partial_mode != "mask":
            return None
        p = torch.cat([self.element_logits.new_ones(1), torch.sigmoid(self.element_logits)])
        if self.structure == "mirror":
            p = torch.cat([p, p * torch.sigmoid(self.mirror_logit)])
        return p

    def support_measure(self) -> Tensor:
        """The expected normalised Haar measure of the support, in ``(0, 1]`` (1: fully
        equivariant); what :func:`monotonic_decay_loss` compares across layers."""
        ref = self.temperature
        if not self.partial:
            return ref.new_ones(())
        if self.partial_mode == "extent":
            m = self.extent()
            return m * (1 + self.mirror_probability()) / 2 if self.structure == "mirror" else m
        return self.keep_probabilities().mean()

    def partial_grid(self, generator: torch.Generator | None) -> Tensor:
        """A draw of the partial output grid (extent mode; stratified in training)."""
        base = self._base_angles
        n = self.n_rotations
        u = torch.sigmoid(self.extent_logit).to(base.dtype)
        if self.training:
            theta = u * (base + (2 * math.pi / n) * _uniform((n,), generator, base))
        else:
            theta = u * base
        if self.structure == "rotation":
            return theta.unsqueeze(-1)
        m = torch.cat([base.new_ones(n), -base.new_ones(n)])
        return torch.stack([theta.repeat(2), m], dim=-1)

    def element_mask(self, generator: torch.Generator | None = None) -> Tensor | None:
        """The ``(N,)`` 0/1 mask of kept output elements (straight-through gradients in
        training), or ``None`` when nothing is masked."""
        if not self.partial:
            return None
        train = self.training
        ref = self.temperature

        def sample(logits: Tensor) -> Tensor:
            if train:
                return relaxed_bernoulli(logits, self.temperature, generator)
            return (logits > 0).to(logits.dtype)

        if self.partial_mode == "extent":
            if self.structure != "mirror":
                return None
            zm = sample(self.mirror_logit.unsqueeze(0))
            return torch.cat([ref.new_ones(self.n_rotations), zm.expand(self.n_rotations)])
        z = torch.cat([ref.new_ones(1), sample(self.element_logits)])
        if self.structure == "mirror":
            z = torch.cat([z, z * sample(self.mirror_logit.unsqueeze(0))])
        return z

    # -- hooks into the regular convolution ---------------------------------------------------
    def _grids_for_forward(self, in_grid, generator):
        out_grid, grid_in, fresh = super()._grids_for_forward(in_grid, generator)
        if self.partial and self.partial_mode == "extent":
            return self.partial_grid(generator), grid_in, True
        return out_grid, grid_in, fresh

    def _output_mask(self, generator: torch.Generator | None) -> Tensor | None:
        return self.element_mask(generator)

    def extra_repr(self) -> str:
        s = super().extra_repr()
        return s + (f", partial={self.partial_mode}" if self.partial else ", fully_equivariant")


_PARTIAL_DOC = """

    Partial-equivariance arguments (see :mod:`groupconv.nn.group.partial`):

    Args:
        partial: ``False`` gives exactly the fully equivariant layer (switchable later with
            :meth:`set_fully_equivariant`).
        mode: ``"extent"`` (continuous SO2/O2 with ``kernel_net``; the default there) or
            ``"mask"`` (element masks on a deterministic grid; the default otherwise).
        init_extent: initial ``u`` in ``(0, 1)`` (extent mode).
        init_keep: initial keep probability of masked elements and of the mirror.
        temperature: initial relaxed-Bernoulli temperature (see :class:`TemperatureSchedule`).
"""


class PartialLiftingConv(_PartialMixin, LiftingConv):
    """A :class:`~groupconv.nn.group.gconv.LiftingConv` whose output grid follows a learned
    distribution over H (the reference keeps the lifting layer fully equivariant: use
    ``partial=False`` for that).

    Example:
        >>> import torch
        >>> from groupconv.groups import SO2
        >>> lift = PartialLiftingConv(1, 2, SO2(), 3, num_elements=8, kernel_net="mlp")
        >>> y, grid = lift.forward_with_grid(torch.randn(1, 1, 5, 5))
        >>> bool(grid.abs().max() <= torch.pi * lift.extent())
        True
    """

    def __init__(self, in_channels: int, out_channels: int, group: Group, kernel_size: Any, *,
                 partial: bool = True, mode: str | None = None, init_extent: float = 0.95,
                 init_keep: float = 0.88, temperature: float = 0.5, **kwargs: Any) -> None:
        super().__init__(in_channels, out_channels, group, kernel_size, **kwargs)
        self._init_partial(partial, mode, init_extent, init_keep, temperature)


class PartialGroupConv(_PartialMixin, GroupConv):
    """A :class:`~groupconv.nn.group.gconv.GroupConv` whose output grid follows a learned
    distribution over H; pass the previous layer's grid as ``in_grid`` (or use
    :class:`GroupSequential`).

    Example:
        >>> import torch
        >>> from groupconv.groups import CyclicGroup
        >>> conv = PartialGroupConv(2, 2, CyclicGroup(4), 3, padding=1)
        >>> conv.partial_mode, tuple(conv.element_logits.shape)
        ('mask', (3,))
        >>> conv.eval()(torch.randn(1, 2, 4, 5, 5)).shape
        torch.Size([1, 2, 4, 5, 5])
    """

    def __init__(self, in_channels: int, out_channels: int, group: Group, kernel_size: Any, *,
                 partial: bool = True, mode: str | None = None, init_extent: float = 0.95,
                 init_keep: float = 0.88, temperature: float = 0.5, **kwargs: Any) -> None:
        super().__init__(in_channels, out_channels, group, kernel_size, **kwargs)
        self._init_partial(partial, mode, init_extent, init_keep, temperature)


PartialLiftingConv.__doc__ = (PartialLiftingConv.__doc__ or "") + _PARTIAL_DOC
PartialGroupConv.__doc__ = (PartialGroupConv.__doc__ or "") + _PARTIAL_DOC


# -- containers and training helpers --------------------------------------------------------------
class GroupSequential(nn.Sequential):
    """``nn.Sequential`` that threads group grids: a module with ``forward_with_grid_mask`` (the
    groupconv layers; their element mask is applied to their output) or ``forward_with_grid``
    gets the grid of the previous grid-producing layer as ``in_grid`` (only when that grid is not
    the producer's deterministic one, checked by identity: no device sync); other modules (norms,
    activations, pooling) get the tensor only.

    Example:
        >>> import torch
        >>> from groupconv.groups import CyclicGroup
        >>> from groupconv.nn.group.pooling import GroupBatchNorm, GlobalInvariantPool
        >>> G = CyclicGroup(4)
        >>> net = GroupSequential(PartialLiftingConv(1, 3, G, 3, partial=False), GroupBatchNorm(3),
        ...                       PartialGroupConv(3, 2, G, 3), GlobalInvariantPool())
        >>> net(torch.randn(2, 1, 9, 9)).shape
        torch.Size([2, 2])
    """

    def forward(self, x: Tensor, generator: torch.Generator | None = None) -> Tensor:  # type: ignore[override]
        return self.forward_with_grid(x, generator=generator)[0]

    def forward_with_grid(self, x: Tensor, in_grid: Tensor | None = None,
                          generator: torch.Generator | None = None) -> tuple[Tensor, Tensor | None]:
        grid = in_grid
        for module in self:
            if hasattr(module, "forward_with_grid_mask"):  # the groupconv layers
                y, grid, mask = module.forward_with_grid_mask(x, grid, generator)
                x = apply_element_mask(y, mask)
            elif hasattr(module, "forward_with_grid"):  # other grid-producing modules
                x, out = module.forward_with_grid(x, grid, generator=generator)
                grid = None if out is getattr(module, "out_grid", None) else out
            else:
                x = module(x)
        return x, grid


def partial_layers(model: nn.Module) -> list[tuple[str, _PartialMixin]]:
    """``(name, layer)`` of every partial layer of ``model`` in module order."""
    if not isinstance(model, nn.Module):
        raise TypeError(f"model must be a torch.nn.Module, got {type(model).__name__}")
    return [(n, m) for n, m in model.named_modules() if isinstance(m, _PartialMixin)]


def set_fully_equivariant(model: nn.Module, flag: bool = True) -> None:
    """Switch every partial layer of ``model`` to fully equivariant (``True``) or partial."""
    for _, m in partial_layers(model):
        m.set_fully_equivariant(flag)


def monotonic_decay_loss(model: nn.Module, weight: float = 1e-3) -> Tensor:
    """``weight * sum_l ReLU(m_{l+1} - m_l)`` over the support measures of the partial layers
    in module order: penalises a layer more equivariant than the one before it.

    Example:
        >>> import torch
        >>> from groupconv.groups import SO2
        >>> kw = dict(num_elements=4, kernel_net="mlp")
        >>> net = GroupSequential(PartialLiftingConv(1, 2, SO2(), 3, init_extent=0.5, **kw),
        ...                       PartialGroupConv(2, 2, SO2(), 3, init_extent=0.9, **kw))
        >>> round(float(monotonic_decay_loss(net, weight=1.0).detach()), 4)
        0.4
    """
    if isinstance(weight, bool) or not isinstance(weight, (int, float)) or weight < 0:
        raise ValueError(f"weight must be a number >= 0, got {weight!r}")
    layers = [m for _, m in partial_layers(model) if m.partial]
    if len(layers) < 2:
        p = next(model.parameters(), None)
        return torch.zeros((), device=None if p is None else p.device)
    m = torch.stack([layer.support_measure() for layer in layers])
    return weight * torch.relu(m[1:] - m[:-1]).sum()


def extents(model: nn.Module) -> dict[str, dict[str, Any]]:
    """Learned supports per partial layer, for reporting (host values: not for ``forward``).

    ``{name: {"measure": float, "mode": str, "partial": bool, "extent": float | None,
    "mirror": float | None, "keep": list[float] | None}}``.
    """
    out: dict[str, dict[str, Any]] = {}
    with torch.no_grad():
        for name, m in partial_layers(model):
            u, pm, keep = m.extent(), m.mirror_probability(), m.keep_probabilities()
            out[name] = {
                "measure": float(m.support_measure()), "mode": m.partial_mode, "partial": m.partial,
                "extent": None if u is None else float(u),
                "mirror": None if pm is None else float(pm),
                "keep": None if keep is None else [float(v) for v in keep],
            }
    return out


def partial_param_groups(model: nn.Module, lr: float, lr_partial: float,
                         **options: Any) -> list[dict[str, Any]]:
    """Optimizer parameter groups: the partial-equivariance parameters (extents, element and
    mirror logits) at ``lr_partial`` without weight decay, everything else at ``lr``.

    Example:
        >>> from groupconv.groups import CyclicGroup
        >>> groups = partial_param_groups(PartialGroupConv(1, 1, CyclicGroup(4), 3), 1e-3, 1e-4)
        >>> [len(g["params"]) for g in groups]
        [2, 1]
    """
    ids = set()
    for _, m in partial_layers(model):
        for pname in ("extent_logit", "element_logits", "mirror_logit"):
            p = getattr(m, pname, None)
            if isinstance(p, nn.Parameter):
                ids.add(id(p))
    rest = [p for p in model.parameters() if id(p) not in ids]
    part = [p for p in model.parameters() if id(p) in ids]
    return [{"params": rest, "lr": lr, **options},
            {"params": part, "lr": lr_partial, **{**options, "weight_decay": 0.0}}]


@dataclass(frozen=True)
class TemperatureSchedule:
    """Annealing of the relaxed-Bernoulli temperature from ``initial`` to ``final`` over
    ``total_steps`` (``"linear"`` as the reference, or ``"exponential"``); constant after.

    Example:
        >>> s = TemperatureSchedule(0.5, 1e-4, total_steps=100)
        >>> s(0), round(s(50), 5), round(s(1000), 8)
        (0.5, 0.25005, 0.0001)
    """

    initial: float = 0.5
    final: float = 1e-4
    total_steps: int = 1000
    kind: str = "linear"

    def __post_init__(self) -> None:
        for name in ("initial", "final"):
            v = getattr(self, name)
            if isinstance(v, bool) or not isinstance(v, (int, float)) or not v > 0:
                raise ValueError(f"{name} must be a positive number, got {v!r}")
        check_positive_int(self.total_steps, "total_steps")
        if self.kind not in ("linear", "exponential"):
            raise ValueError(f"kind must be 'linear' or 'exponential', got {self.kind!r}")

    def __call__(self, step: int) -> float:
        if isinstance(step, bool) or not isinstance(step, int) or step < 0:
            raise ValueError(f"step must be an int >= 0, got {step!r}")
        t = min(step / self.total_steps, 1.0)
        if self.kind == "linear":
            return self.initial + (self.final - self.initial) * t
        return self.initial * (self.final / self.initial) ** t

    def apply(self, model: nn.Module, step: int) -> float:
        """Set the temperature of every partial layer of ``model`` for ``step``; returns it."""
        tau = self(step)
        for _, m in partial_layers(model):
            m.temperature.fill_(tau)
        return tau
