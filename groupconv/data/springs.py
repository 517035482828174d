"""2-D spring systems (n-body dynamics), simulated offline with a fixed-step integrator.

``N`` particles in the plane with masses ``m_i`` and spring constants ``k_i``; every pair is
joined by a spring of rest length 0 and stiffness ``k_i k_j`` (the setting of LieConv's
synthetic spring systems, Finzi et al. 2020), so the Hamiltonian is::

    H(q, v) = sum_i m_i |v_i|^2 / 2 + sum_{i<j} k_i k_j |q_i - q_j|^2 / 2

and the acceleration of particle ``i`` is ``a_i = -(k_i / m_i) sum_j k_j (q_i - q_j)``. The
dynamics commute with rigid motions: a rotated and translated initial state evolves into the
rotated and translated trajectory.

A state is ONE packed tensor ``(..., N, 6)`` per system: position (2), velocity (2), mass,
spring constant (:func:`unpack_spring_state`). :func:`spring_dynamics` returns
:class:`~groupconv.data.DataSplits` for learning the dynamics: inputs are states, targets the
true accelerations ``(N, 2)`` (derivative matching, as Hamiltonian neural networks are
trained), and ``info`` holds the ground-truth test/validation trajectories that rollouts of a
learned model are scored against.

Example:
    >>> d = spring_dynamics(n_train=4, n_val=2, n_test=3, steps=5, seed=0)
    >>> d.sizes, tuple(d.train.tensors[0].shape[1:]), tuple(d.train.tensors[1].shape[1:])
    ({'train': 24, 'val': 2, 'test': 3}, (5, 6), (5, 2))
    >>> tuple(d.info["test_positions"].shape)
    (3, 6, 5, 2)
"""

from __future__ import annotations

import math

import numpy as np
import torch
from torch.utils.data import TensorDataset

from ..functional.integrators import leapfrog_step, odeint_rk4
from .base import DataSplits, check_counts, check_seed

__all__ = [
    "spring_accelerations",
    "spring_energy",
    "simulate_springs",
    "random_spring_systems",
    "spring_dynamics",
    "pack_spring_state",
    "unpack_spring_state",
    "STATE_CHANNELS",
]

#: columns of a packed spring state: position (2), velocity (2), mass, spring constant.
STATE_CHANNELS = 6
INTEGRATORS = ("rk4", "leapfrog")


def pack_spring_state(q: torch.Tensor, v: torch.Tensor, masses: torch.Tensor,
                      k: torch.Tensor) -> torch.Tensor:
    """``(..., N, 6)`` from positions and velocities ``(..., N, 2)``, masses and ``k`` ``(..., N)``."""
    return torch.cat([q, v, masses.unsqueeze(-1), k.unsqueeze(-1)], -1)


def unpack_spring_state(x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """Positions, velocities ``(..., N, 2)``, masses and spring constants ``(..., N)`` of a state.

    Example:
        >>> q, v, m, k = unpack_spring_state(torch.arange(6.0).reshape(1, 6))
        >>> q.tolist(), v.tolist(), m.tolist(), k.tolist()
        ([[0.0, 1.0]], [[2.0, 3.0]], [4.0], [5.0])
    """
    if x.shape[-1] != STATE_CHANNELS:
        raise ValueError(f"x must be a packed spring state (..., N, {STATE_CHANNELS}), "
                         f"got shape {tuple(x.shape)}")
    return x[..., 0:2], x[..., 2:4], x[..., 4], x[..., 5]


def spring_accelerations(q: torch.Tensor, masses: torch.Tensor, k: torch.Tensor) -> torch.Tensor:
    """``a_i = -(k_i / m_i) sum_j k_j (q_i - q_j)`` for positions ``(..., N, 2)``.

    Example:
        >>> q = torch.tensor([[0.0, 0.0], [1.0, 0.0]])
        >>> (spring_accelerations(q, torch.ones(2), torch.ones(2)) + 0.0).tolist()
        [[1.0, 0.0], [-1.0, 0.0]]
    """
    ksum = k.sum(-1, keepdim=True)[..., None]  # (..., 1, 1)
    kq = (k[..., None] * q).sum(-2, keepdim=True)  # (..., 1, 2)
    return -(k / masses)[..., None] * (ksum * q - kq)


def spring_energy(q: torch.Tensor, v: torch.Tensor, masses: torch.Tensor, k: torch.Tensor) -> torch.Tensor:
    """The Hamiltonian ``(...)`` (kinetic plus spring energy) of states ``(..., N, 2)``.

    Example:
        >>> q = torch.tensor([[0.0, 0.0], [1.0, 0.0]])
        >>> float(spring_energy(q, torch.zeros(2, 2), torch.ones(2), torch.ones(2)))
        0.5
    """
    kinetic = 0.5 * (masses * v.pow(2).sum(-1)).sum(-1)
    diff = q[..., :, None, :] - q[..., None, :, :]
    kk = k[..., :, None] * k[..., None, :]
    return kinetic + 0.25 * (kk * diff.pow(2).sum(-1)).sum((-1, -2))  # each pair counted twice


def simulate_springs(
    state: torch.Tensor, steps: int, dt: float = 0.1, substeps: int = 10, integrator: str = "rk4"
) -> torch.Tensor:
    """Trajectories ``(B, steps + 1, N, 6)`` of packed states ``(B, N, 6)`` (masses, ``k`` constant).

    ``integrator="rk4"`` (default) or ``"leapfrog"`` (symplectic), each with ``substeps`` steps
    of ``dt / substeps`` per saved interval ``dt``.

    Example:
        >>> s = random_spring_systems(2, 4, seed=0)
        >>> simulate_springs(s, 3).shape
        torch.Size([2, 4, 4, 6])
    """
    if integrator not in INTEGRATORS:
        raise ValueError(f"integrator must be one of {INTEGRATORS}, got {integrator!r}")
    q, v, m, k = unpack_spring_state(state)
    if integrator == "rk4":
        def f(z: torch.Tensor) -> torch.Tensor:
            return torch.cat([z[..., 2:], spring_accelerations(z[..., :2], m, k)], -1)

        z = odeint_rk4(f, torch.cat([q, v], -1), dt, steps, substeps)
        params = state[:, None, :, 4:].expand(-1, z.shape[1], -1, -1)
        return torch.cat([z, params], -1)
    h = float(dt) / int(substeps)
    out = [state]
    for _ in range(int(steps)):
        for _ in range(int(substeps)):
            q, v = leapfrog_step(lambda p: spring_accelerations(p, m, k), q, v, h)
        out.append(pack_spring_state(q, v, m, k))
    return torch.stack(out, 1)


def random_spring_systems(
    n: int,
    num_particles: int = 5,
    *,
    position_std: float = 1.0,
    velocity_std: float = 0.5,
    aspect: float = 1.0,
    mass_range: tuple[float, float] = (0.5, 1.5),
    k_range: tuple[float, float] = (0.5, 1.5),
    seed: int = 0,
) -> torch.Tensor:
    """``n`` random initial states ``(n, num_particles, 6)`` in float64 (seeded, CPU).

    Positions and velocities are isotropic Gaussians; masses and spring constants uniform. System
    ``i`` is drawn from its own stream ``numpy.random.default_rng([seed, i])``, so the first ``n``
    systems are the same for every larger ``n``. ``aspect`` scales the second coordinate of positions
    and velocities (``< 1``: systems elongated along the first axis, a preferred orientation).

    Example:
        >>> s = random_spring_systems(3, 5, seed=1)
        >>> s.shape, s.dtype, bool((s[..., 4:] >= 0.5).all())
        (torch.Size([3, 5, 6]), torch.float64, True)
    """
    seed = check_seed(seed)
    N = int(num_particles)
    if N < 3:
        raise ValueError(f"num_particles must be >= 3 (SE(2) frames need 3 points), got {num_particles}")
    for name, (lo, hi) in (("mass_range", mass_range), ("k_range", k_range)):
        if not (0 < float(lo) <= float(hi) < math.inf):
            raise ValueError(f"{name} must be (lo, hi) with 0 < lo <= hi, got {(lo, hi)}")
    if not (0 < float(aspect) < math.inf):
        raise ValueError(f"aspect must be a positive finite float, got {aspect!r}")
    axes = np.array([1.0, float(aspect)])
    rows = []
    for i in range(int(n)):  # one stream per system: the first n systems never depend on n
        rng = np.random.default_rng([seed, i])
        rows.append(np.concatenate([
            float(position_std) * axes * rng.standard_normal((N, 2)),
            float(velocity_std) * axes * rng.standard_normal((N, 2)),
            rng.uniform(mass_range[0], mass_range[1], (N, 1)), rng.uniform(k_range[0], k_range[1], (N, 1)),
        ], 1))
    return torch.from_numpy(np.stack(rows) if rows else np.zeros((0, N, STATE_CHANNELS)))


def spring_dynamics(
    *,
    n_train: int = 100,
    n_val: int = 50,
    n_test: int = 100,
    num_particles: int = 5,
    steps: int = 20,
    dt: float = 0.1,
    substeps: int = 10,
    aspect: float = 1.0,
    seed: int = 0,
) -> DataSplits:
    """Spring systems for learning dynamics; inputs states ``(., N, 6)``, targets ``a`` ``(., N, 2)``.

    ``n_train + n_val + n_test`` trajectories of ``steps`` intervals ``dt`` are simulated with RK4
    (``substeps`` per interval) from :func:`random_spring_systems` (train, val and test use
    disjoint seeds derived from ``seed``, so a larger ``n_train`` extends a smaller one and
    never changes val/test). Training samples are EVERY state of the training trajectories
    (``n_train * (steps + 1)``); validation and test samples are the initial states. Targets are
    the exact accelerations; ``aspect`` as in :func:`random_spring_systems` (every split).
    ``info`` holds, for ``"val"`` and ``"test"``, the initial states
    ``"{split}_states"`` ``(n, N, 6)`` and the true positions ``"{split}_positions"``
    ``(n, steps + 1, N, 2)``, plus ``dt`` and ``steps``. Tensors are float32, simulated in float64.
    """
    counts = check_counts(n_train=n_train, n_val=n_val, n_test=n_test)
    seed = check_seed(seed)
    steps = int(steps)
    if steps < 1:
        raise ValueError(f"steps must be >= 1, got {steps}")
    sims = {}
    for i, split in enumerate(("train", "val", "test")):
        s0 = random_spring_systems(counts[f"n_{split}"], num_particles, aspect=aspect, seed=seed * 3 + i + 1)
        sims[split] = simulate_springs(s0, steps, dt, substeps)

    def targets(states: torch.Tensor) -> torch.Tensor:
        q, _, m, k = unpack_spring_state(states)
        return spring_accelerations(q, m, k)

    train_states = sims["train"].flatten(0, 1)
    sets: dict[str, TensorDataset] = {}
    info: dict[str, object] = {"dt": float(dt), "steps": steps}
    sets["train"] = TensorDataset(train_states.float(), targets(train_states).float())
    for split in ("val", "test"):
        s0 = sims[split][:, 0]
        sets[split] = TensorDataset(s0.float(), targets(s0).float())
        info[f"{split}_states"] = s0.float()
        info[f"{split}_positions"] = sims[split][..., :2].float()
    baseline = float(sets["test"].tensors[1].pow(2).mean())
    return DataSplits(
        "springs", sets["train"], sets["val"], sets["test"], task="regression", loss="mse",
        input_shape=(int(num_particles), STATE_CHANNELS), baseline=baseline,
        baseline_note="MSE of predicting zero acceleration on the test states", info=info,
    )
