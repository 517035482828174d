"""Fixed-step ODE integrators (RK4, leapfrog) for simulating and rolling out dynamics.

Both are stateless and differentiable (autograd flows through every stage), so the same
function integrates the ground-truth dynamics of :mod:`groupconv.data.springs` and a learned
vector field at test time.

* :func:`rk4_step` / :func:`odeint_rk4`: the classical 4th-order Runge-Kutta step for
  ``dz/dt = f(z)`` on any tensor state ``z``;
* :func:`leapfrog_step`: the symplectic velocity-Verlet (kick-drift-kick) step for
  ``dq/dt = v, dv/dt = a(q)`` -- 2nd order, bounded energy error for conservative forces.

Example:
    >>> import torch
    >>> f = lambda z: torch.stack([z[..., 1], -z[..., 0]], -1)  # harmonic oscillator
    >>> z = odeint_rk4(f, torch.tensor([[1.0, 0.0]], dtype=torch.float64), 0.01, 100)
    >>> z.shape, round(float(z[0, -1, 0]), 6) == round(float(torch.cos(torch.tensor(1.0))), 6)
    (torch.Size([1, 101, 2]), True)
"""

from __future__ import annotations

from collections.abc import Callable

import torch

from .._validation import check_positive_int, check_tensor

__all__ = ["rk4_step", "odeint_rk4", "leapfrog_step"]


def _check_dt(dt: float) -> float:
    dt = float(dt)
    if not (dt > 0 and dt < float("inf")):
        raise ValueError(f"dt must be a positive finite float, got {dt}")
    return dt


def rk4_step(f: Callable[[torch.Tensor], torch.Tensor], z: torch.Tensor, dt: float) -> torch.Tensor:
    """One classical Runge-Kutta step ``z(t) -> z(t + dt)`` of ``dz/dt = f(z)``.

    Example:
        >>> import torch
        >>> z = rk4_step(lambda z: -z, torch.ones(2, dtype=torch.float64), 0.1)
        >>> bool(torch.allclose(z, torch.full((2,), 0.9048375, dtype=torch.float64), atol=1e-6))
        True
    """
    dt = _check_dt(dt)
    k1 = f(z)
    k2 = f(z + 0.5 * dt * k1)
    k3 = f(z + 0.5 * dt * k2)
    k4 = f(z + dt * k3)
    return z + (dt / 6.0) * (k1 + 2.0 * k2 + 2.0 * k3 + k4)


def odeint_rk4(
    f: Callable[[torch.Tensor], torch.Tensor], z0: torch.Tensor, dt: float, steps: int, substeps: int = 1
) -> torch.Tensor:
    """States ``(B, steps + 1, *state)`` at times ``0, dt, ..., steps * dt`` from ``z0`` ``(B, *state)``.

    Every interval ``dt`` is integrated by ``substeps`` RK4 steps of ``dt / substeps``; only the
    states at multiples of ``dt`` are returned (``z0`` first).

    Example:
        >>> import torch
        >>> odeint_rk4(lambda z: torch.ones_like(z), torch.zeros(3, 1), 0.5, 4).shape
        torch.Size([3, 5, 1])
    """
    z = check_tensor(z0, "z0")
    if z.dim() < 1:
        raise ValueError(f"z0 must have a batch axis (B, *state), got shape {tuple(z.shape)}")
    dt = _check_dt(dt)
    steps = int(steps)
    if steps < 0:
        raise ValueError(f"steps must be >= 0, got {steps}")
    substeps = check_positive_int(substeps, "substeps")
    h = dt / substeps
    out = [z]
    for _ in range(steps):
        for _ in range(substeps):
            z = rk4_step(f, z, h)
        out.append(z)
    return torch.stack(out, 1)


def leapfrog_step(
    accel: Callable[[torch.Tensor], torch.Tensor], q: torch.Tensor, v: torch.Tensor, dt: float
) -> tuple[torch.Tensor, torch.Tensor]:
    """One velocity-Verlet step of ``dq/dt = v, dv/dt = accel(q)``; returns ``(q, v)`` at ``t + dt``.

    Example:
        >>> import torch
        >>> one, zero = torch.ones(1, dtype=torch.float64), torch.zeros(1, dtype=torch.float64)
        >>> q, v = leapfrog_step(lambda q: -q, one, zero, 0.1)
        >>> round(float(q), 5), round(float(v), 5)
        (0.995, -0.09975)
    """
    dt = _check_dt(dt)
    v_half = v + 0.5 * dt * accel(q)
    q_new = q + dt * v_half
    return q_new, v_half + 0.5 * dt * accel(q_new)
