"""Kernel fitting: fit a target function with any kernel net (the CKConv/FlexConv benchmark).

Targets are functions of positions ``(..., D)`` in ``[-1, 1]^D`` returning ``(..., 1)`` (the
``TARGET_FUNCTIONS`` catalogue: Gaussian, step, sawtooth, sine, chirp, Gabor) or a tensor of
values on a grid (e.g. :func:`random_kernel`). :func:`fit_kernel` minimises the MSE with Adam.
The reference results (33x33 random kernel, 5000 iterations, lr 0.01): MAGNet MSE 0.0585,
SIREN 0.0787; ReLU MLPs fail on high frequencies.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import torch
from torch import Tensor, nn

from .._validation import check_positive_int, check_tensor, resolve_dtype

__all__ = [
    "linspace_grid",
    "TARGET_FUNCTIONS",
    "random_kernel",
    "FitResult",
    "fit_kernel",
]


def linspace_grid(
    sizes: int | Sequence[int],
    *,
    device: torch.device | str | None = None,
    dtype: torch.dtype | None = None,
) -> Tensor:
    """Positions ``(*sizes, D)`` of a ``linspace(-1, 1, K_d)`` grid, in tensor axis order.

    Example:
        >>> linspace_grid([3])[:, 0]
        tensor([-1.,  0.,  1.])
        >>> linspace_grid([2, 3]).shape
        torch.Size([2, 3, 2])
    """
    ks = [sizes] if isinstance(sizes, int) else list(sizes)
    ks = [check_positive_int(k, "sizes") for k in ks]
    dtype = resolve_dtype(dtype)
    axes = [torch.linspace(-1.0, 1.0, k, device=device, dtype=dtype) if k > 1
            else torch.zeros(1, device=device, dtype=dtype) for k in ks]
    return torch.stack(torch.meshgrid(*axes, indexing="ij"), dim=-1)


def _gaussian(x: Tensor) -> Tensor:
    return torch.exp(-0.5 * x.square().sum(-1, keepdim=True) / 0.2**2)


def _step(x: Tensor) -> Tensor:
    return (x[..., :1] >= 0).to(x.dtype)


def _sawtooth(x: Tensor) -> Tensor:
    return torch.remainder(2.0 * (x[..., :1] + 1.0), 1.0)


def _sine(x: Tensor) -> Tensor:
    return torch.sin(3 * math.pi * x[..., :1])


def _chirp(x: Tensor) -> Tensor:
    return torch.sin(2 * math.pi * (x[..., :1] + 1.0).square())


def _gabor(x: Tensor) -> Tensor:
    return _gaussian(x * (0.2 / 0.4)) * torch.cos(2 * math.pi * 2.0 * x[..., :1])


#: Benchmark targets, each ``f(coords (..., D)) -> (..., 1)``.
TARGET_FUNCTIONS: dict[str, Callable[[Tensor], Tensor]] = {
    "gaussian": _gaussian,
    "step": _step,
    "sawtooth": _sawtooth,
    "sine": _sine,
    "chirp": _chirp,
    "gabor": _gabor,
}


def random_kernel(
    sizes: int | Sequence[int],
    *,
    generator: torch.Generator | None = None,
    device: torch.device | str | None = None,
    dtype: torch.dtype | None = None,
) -> Tensor:
    """Standard-normal values ``(*sizes, 1)``: the "random kernel" target (fit on ``linspace_grid``)."""
    ks = [sizes] if isinstance(sizes, int) else list(sizes)
    gen_device = generator.device if generator is not None else "cpu"
    vals = torch.randn(*ks, 1, generator=generator, device=gen_device, dtype=torch.float64)
    return vals.to(device=device, dtype=resolve_dtype(dtype))


@dataclass
class FitResult:
    """Outcome of :func:`fit_kernel`: per-step losses, the final MSE and the fitted values."""

    losses: list[float]
    final_mse: float
    prediction: Tensor = field(repr=False)


def fit_kernel(
    net: nn.Module,
    target: Callable[[Tensor], Tensor] | str | Tensor,
    coords: Tensor | None = None,
    *,
    grid_size: int | Sequence[int] = 65,
    steps: int = 500,
    lr: float = 1e-2,
    optimizer: type[torch.optim.Optimizer] = torch.optim.Adam,
) -> FitResult:
    """Fit ``net`` to ``target`` on ``coords`` by minimising the MSE.

    Args:
        net: any kernel net ``(..., D) -> (..., O)``; trained in place.
        target: a callable ``coords -> values``, a name from :data:`TARGET_FUNCTIONS`, or a
            tensor of values on ``coords`` (``(..., O)``, or ``(...)`` when ``O == 1``).
        coords: positions ``(..., D)``; default ``linspace_grid(grid_size)`` on the net's device
            and dtype.
        steps, lr, optimizer: the optimisation (full batch).

    Example:
        >>> from groupconv.kernels import SIREN
        >>> torch.manual_seed(0) and None
        >>> res = fit_kernel(SIREN(1, 1, omega_0=10.0), "sine", steps=100, lr=1e-3)
        >>> res.final_mse < res.losses[0]
        True
    """
    steps = check_positive_int(steps, "steps")
    if not (isinstance(lr, (int, float)) and lr > 0):
        raise ValueError(f"lr must be a positive float, got {lr!r}")
    ref = next(iter(net.parameters()), None)
    if ref is None:
        raise ValueError("net has no parameters to fit")
    D = getattr(net, "in_features", None)
    if coords is None:
        if D is None:
            raise ValueError("coords is required for a net without an in_features attribute")
        ks = [grid_size] * D if isinstance(grid_size, int) else list(grid_size)
        if len(ks) != D:
            raise ValueError(f"grid_size must be an int or {D} ints, got {ks}")
        coords = linspace_grid(ks, device=ref.device, dtype=ref.dtype)
    coords = check_tensor(coords, "coords")
    if isinstance(target, str):
        if target not in TARGET_FUNCTIONS:
            raise ValueError(f"target must be one of {sorted(TARGET_FUNCTIONS)}, got {target!r}")
        target = TARGET_FUNCTIONS[target]
    values = target(coords) if callable(target) else check_tensor(target, "target")
    values = values.to(device=coords.device, dtype=coords.dtype).detach()
    with torch.no_grad():
        probe = net(coords)
    if values.shape != probe.shape and values.shape == probe.shape[:-1] and probe.shape[-1] == 1:
        values = values.unsqueeze(-1)
    if values.shape != probe.shape:
        if probe.shape[-1] > 1 and values.shape == probe.shape[:-1] + (1,):
            values = values.expand_as(probe)
        else:
            raise ValueError(
                f"target values must have shape {tuple(probe.shape)} (the net's output on coords), "
                f"got {tuple(values.shape)}"
            )
    opt = optimizer(net.parameters(), lr=lr)
    history = torch.empty(steps, dtype=torch.float64, device=coords.device)
    for i in range(steps):
        opt.zero_grad(set_to_none=True)
        loss = (net(coords) - values).square().mean()
        loss.backward()
        opt.step()
        history[i] = loss.detach()
    with torch.no_grad():
        pred = net(coords)
        final = (pred - values).square().mean()
    return FitResult(losses=history.tolist(), final_mse=float(final), prediction=pred)
