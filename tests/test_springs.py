"""Spring / n-body dynamics (issue 15): integrators, data, equivariant dynamics nets, experiment."""

from __future__ import annotations

import math

import pytest
import torch

from groupconv.data.springs import (
    random_spring_systems,
    simulate_springs,
    spring_accelerations,
    spring_dynamics,
    spring_energy,
    unpack_spring_state,
)
from groupconv.experiments import get_experiment, list_experiments
from groupconv.experiments.spring_experiments import (
    SPRINGS_DEFAULTS,
    build_spring_model,
    compare_spring_models,
    equivariance_error,
    rollout,
    rollout_mse,
    true_accelerations,
)
from groupconv.functional.integrators import leapfrog_step, odeint_rk4, rk4_step
from groupconv.groups import SE2, Translations
from groupconv.models.point_dynamics import MLPDynamics, PointDynamicsNet

F64 = torch.float64
EXACT_F64 = 1e-9  # exact equivariance, float64 (rounding only)


def _rotation(theta: float) -> torch.Tensor:
    c, s = math.cos(theta), math.sin(theta)
    return torch.tensor([[c, -s], [s, c]], dtype=F64)


def _move(states: torch.Tensor, theta: float, shift: tuple[float, float]) -> torch.Tensor:
    """Independent rigid motion of packed states: q -> R q + t, v -> R v."""
    R, t = _rotation(theta).to(states.dtype), torch.tensor(shift, dtype=states.dtype)
    out = states.clone()
    out[..., 0:2] = states[..., 0:2] @ R.T + t
    out[..., 2:4] = states[..., 2:4] @ R.T
    return out


# ----------------------------------------------------------------------------- integrators
def test_rk4_matches_the_harmonic_oscillator_and_is_fourth_order():
    def f(z):
        return torch.stack([z[..., 1], -z[..., 0]], -1)

    z0 = torch.tensor([[1.0, 0.0]], dtype=F64)
    errs = []
    for n in (10, 20):
        z = odeint_rk4(f, z0, 1.0 / n, n)
        errs.append(abs(float(z[0, -1, 0]) - math.cos(1.0)))
    assert errs[0] < 1e-6
    assert 12 < errs[0] / errs[1] < 20  # 2^4 = 16 for a 4th-order method
    one = rk4_step(f, z0, 0.1)
    assert torch.equal(one, odeint_rk4(f, z0, 0.1, 1)[:, 1])


def test_leapfrog_is_second_order_and_time_reversible():
    q0, v0 = torch.tensor([1.0], dtype=F64), torch.tensor([0.0], dtype=F64)
    q, v = leapfrog_step(lambda p: -p, q0, v0, 0.1)
    qb, vb = leapfrog_step(lambda p: -p, q, -v, 0.1)  # run backwards
    assert torch.allclose(qb, q0, atol=1e-14) and torch.allclose(-vb, v0, atol=1e-14)
    assert abs(float(q) - math.cos(0.1)) < 1e-4


@pytest.mark.parametrize("integrator,tol", [("rk4", 1e-7), ("leapfrog", 1e-3)])
def test_spring_energy_is_conserved(integrator, tol):
    s = random_spring_systems(8, 5, seed=3)
    traj = simulate_springs(s, 20, dt=0.1, substeps=10, integrator=integrator)
    E = spring_energy(*unpack_spring_state(traj))
    drift = ((E - E[:, :1]).abs() / E[:, :1]).max()
    assert float(drift) < tol
    # a coarse RK4 step visibly loses energy: the check can fail
    coarse = spring_energy(*unpack_spring_state(simulate_springs(s, 20, dt=0.1, substeps=1)))
    assert float(((coarse - coarse[:, :1]).abs() / coarse[:, :1]).max()) > 1e-5


def test_accelerations_are_minus_the_energy_gradient_over_mass():
    s = random_spring_systems(4, 6, seed=1)
    q, v, m, k = unpack_spring_state(s)
    q = q.clone().requires_grad_(True)
    (grad,) = torch.autograd.grad(spring_energy(q, v, m, k).sum(), q)
    q = q.detach()
    assert torch.allclose(spring_accelerations(q, m, k), -grad / m[..., None], atol=1e-12)
    # momentum is conserved: sum_i m_i a_i = 0
    assert float((m[..., None] * spring_accelerations(q, m, k)).sum(1).abs().max()) < 1e-12


def test_simulated_dynamics_commute_with_rigid_motions():
    s = random_spring_systems(3, 5, seed=2)
    theta, shift = 0.7, (2.0, -1.0)
    a = simulate_springs(_move(s, theta, shift), 10)
    b = simulate_springs(s, 10)
    b = torch.stack([_move(b[:, t], theta, shift) for t in range(b.shape[1])], 1)
    assert torch.allclose(a, b, atol=1e-10)


# ----------------------------------------------------------------------------- data
def test_spring_dynamics_splits_are_deterministic_and_nested():
    d1 = spring_dynamics(n_train=3, n_val=2, n_test=2, steps=4, seed=5)
    d2 = spring_dynamics(n_train=3, n_val=2, n_test=2, steps=4, seed=5)
    d3 = spring_dynamics(n_train=6, n_val=2, n_test=2, steps=4, seed=5)
    assert d1.sizes == {"train": 15, "val": 2, "test": 2} and d1.loss == "mse"
    for a, b in zip(d1.train.tensors + d1.test.tensors, d2.train.tensors + d2.test.tensors):
        assert torch.equal(a, b)
    assert torch.equal(d3.train.tensors[0][:15], d1.train.tensors[0])  # a larger n_train extends
    assert torch.equal(d3.test.tensors[0], d1.test.tensors[0])  # and never changes the test split
    other = spring_dynamics(n_train=3, n_val=2, n_test=2, steps=4, seed=6)
    assert not torch.equal(other.test.tensors[0], d1.test.tensors[0])
    x, y = d1.test.tensors
    assert torch.allclose(y, true_accelerations(x.double()).float(), atol=1e-5)
    assert torch.equal(d1.info["test_positions"][:, 0], x[..., :2])


def test_random_spring_systems_validate_arguments():
    with pytest.raises(ValueError, match="num_particles"):
        random_spring_systems(2, 2)
    with pytest.raises(ValueError, match="mass_range"):
        random_spring_systems(2, 5, mass_range=(0.0, 1.0))
    with pytest.raises(ValueError, match="integrator"):
        simulate_springs(random_spring_systems(1, 3), 2, integrator="euler")
    with pytest.raises(ValueError, match="aspect"):
        random_spring_systems(2, 5, aspect=0.0)
    iso, flat = random_spring_systems(3, 5, seed=2), random_spring_systems(3, 5, seed=2, aspect=0.25)
    assert torch.equal(flat[..., [0, 2, 4, 5]], iso[..., [0, 2, 4, 5]])
    assert torch.allclose(flat[..., [1, 3]], 0.25 * iso[..., [1, 3]], atol=1e-15)


# ----------------------------------------------------------------------------- models
def _se2_net(**kw):
    torch.manual_seed(0)
    return PointDynamicsNet(SE2(), 2, channels=8, num_blocks=1, num_neighbors=5, dtype=F64, **kw).eval()


def _apply(net, states):
    q, v, m, k = unpack_spring_state(states)
    return net(q, v, torch.stack([m, k], -1))


@torch.no_grad()
def _vector_error(net, states, theta, shift):
    R = _rotation(theta)
    return float((_apply(net, _move(states, theta, shift)) - _apply(net, states) @ R.T).abs().max())


def test_se2_dynamics_net_is_exactly_equivariant_and_t2_only_translation_invariant():
    s = random_spring_systems(6, 5, seed=4)
    net = _se2_net()
    for theta, shift in ((0.3, (0.0, 0.0)), (2.5, (4.0, -3.0)), (-1.2, (0.5, 7.0))):
        assert _vector_error(net, s, theta, shift) < EXACT_F64
    torch.manual_seed(0)
    t2 = PointDynamicsNet(Translations(2), 2, channels=8, num_blocks=1, num_neighbors=5, dtype=F64).eval()
    assert _vector_error(t2, s, 0.0, (3.0, -2.0)) < EXACT_F64
    assert _vector_error(t2, s, 1.0, (0.0, 0.0)) > 1e-3
    mlp = MLPDynamics(5, 2, hidden=16).double()
    assert _vector_error(mlp, s, 0.0, (3.0, -2.0)) > 1e-3


def test_se2_dynamics_net_is_permutation_equivariant():
    s = random_spring_systems(3, 5, seed=7)
    net = _se2_net()
    perm = torch.tensor([3, 0, 4, 1, 2])
    assert torch.allclose(_apply(net, s[:, perm]), _apply(net, s)[:, perm], atol=EXACT_F64)


class _AbsolutePositions(PointDynamicsNet):
    """Breaking control: the absolute coordinates leak into the features."""

    def lifted_inputs(self, positions, velocities, scalars, mask):
        return super().lifted_inputs(positions, velocities, scalars + positions.sum(-1, keepdim=True), mask)


class _WorldVelocities(PointDynamicsNet):
    """Breaking control: velocities fed in world coordinates instead of frame coordinates."""

    def lifted_inputs(self, positions, velocities, scalars, mask):
        u, feats = super().lifted_inputs(positions, velocities, scalars, mask)
        return u, torch.cat([feats[..., :2], velocities.unsqueeze(2).expand_as(feats[..., 2:])], -1)


@pytest.mark.parametrize("broken", [_AbsolutePositions, _WorldVelocities])
def test_breaking_controls_fail_the_equivariance_check(broken):
    s = random_spring_systems(6, 5, seed=4)
    torch.manual_seed(0)
    net = broken(SE2(), 2, channels=8, num_blocks=1, num_neighbors=5, dtype=F64).eval()
    assert _vector_error(net, s, 1.1, (3.0, 1.0)) > 1e-4


def test_rollout_of_a_moved_system_is_the_moved_rollout():
    """Exact SE(2) equivariance end to end: rotate + translate the initial state -> the trajectory."""
    s = random_spring_systems(4, 5, seed=8)
    net = _se2_net()
    with torch.no_grad():
        model = build_spring_model("se2", {**SPRINGS_DEFAULTS, "channels": 8, "blocks": 1})
        model.net = net
        theta, shift = 2.1, (-3.0, 5.0)
        ref = rollout(model, s, 6, 0.1)
        moved = rollout(model, _move(s, theta, shift), 6, 0.1)
        expected = ref @ _rotation(theta).T + torch.tensor(shift, dtype=F64)
        assert float((moved - expected).abs().max()) < 1e-8
        mlp = build_spring_model("mlp", {**SPRINGS_DEFAULTS, "mlp_hidden": 16}).double()
        bad = rollout(mlp, _move(s, theta, shift), 6, 0.1)
        assert float((bad - rollout(mlp, s, 6, 0.1) @ _rotation(theta).T - torch.tensor(shift, dtype=F64))
                     .abs().max()) > 1e-3


def test_true_dynamics_rollout_matches_the_data_to_the_integrator_error():
    d = spring_dynamics(n_train=1, n_val=1, n_test=5, steps=10, seed=0)
    states, positions = d.info["test_states"].double(), d.info["test_positions"].double()
    floor = rollout_mse(true_accelerations, states, positions, 0.1)
    assert floor < 1e-6


def test_default_models_have_about_equal_parameter_counts():
    counts = {m: sum(p.numel() for p in build_spring_model(m, SPRINGS_DEFAULTS).parameters())
              for m in ("se2", "t2", "mlp")}
    assert max(counts.values()) / min(counts.values()) < 1.03, counts


def test_model_errors_name_the_argument():
    net = PointDynamicsNet(SE2(), 2, channels=4, num_blocks=0)
    with pytest.raises(ValueError, match="scalars"):
        net(torch.randn(1, 5, 2), torch.randn(1, 5, 2), torch.randn(1, 5, 3))
    with pytest.raises(ValueError, match="velocities"):
        net(torch.randn(1, 5, 2), torch.randn(1, 4, 2), torch.randn(1, 5, 2))
    with pytest.raises(ValueError, match="num_particles"):
        MLPDynamics(5, 2)(torch.randn(1, 4, 2), torch.randn(1, 4, 2), torch.randn(1, 4, 2))
    with pytest.raises(ValueError, match="dtype"):
        MLPDynamics(5, 2)(torch.randn(1, 5, 2).double(), torch.randn(1, 5, 2), torch.randn(1, 5, 2))
    with pytest.raises(ValueError, match="model"):
        build_spring_model("e2", SPRINGS_DEFAULTS)


# ----------------------------------------------------------------------------- experiment
def test_springs_experiment_is_registered_and_smoke_runs():
    assert "springs" in list_experiments()
    rows = compare_spring_models(["se2", "mlp"], seeds=(0,), quick=True, config={"n_test": 2, "n_val": 2})
    by = {r["model"]: r for r in rows}
    for r in rows:
        assert math.isfinite(r["rollout_mse"]["mean"]) and math.isfinite(r["moved_rollout_mse"]["mean"])
        assert r["floor_rollout_mse"] < 1e-6 and r["n_train"] == 2
    se2 = by["se2"]
    assert se2["equivariance_error"] < 1e-4  # float32 rounding on accelerations of size ~5
    rel = abs(se2["moved_rollout_mse"]["mean"] - se2["rollout_mse"]["mean"]) / se2["rollout_mse"]["mean"]
    assert rel < 1e-3
    assert by["mlp"]["equivariance_error"] > 1e-2
    cfg = get_experiment("springs").config(quick=True, overrides={"model": "t2"})
    net, data, kw = get_experiment("springs").build(cfg)
    assert kw["epochs"] == 1 and len(data.train) >= cfg["samples_per_epoch"]
    assert equivariance_error(net.eval(), data.info["test_states"]) > 1e-3  # T(2): rotations break it


@pytest.mark.training
def test_se2_dynamics_beat_the_mlp_in_rollout_mse_and_ignore_rigid_motions():
    """The headline of docs/results.md (``springs``) at a shorter schedule: 1 seed, 8 epochs, 30
    training trajectories. Full claim (3 seeds, 20 epochs): SE(2) 0.062 +- 0.010 vs MLP 0.32 +- 0.02.
    Measured here: SE(2) 0.105 (moved 0.105), MLP 0.316 (moved 0.604); 13 s CPU time."""
    rows = compare_spring_models(["se2", "mlp"], n_trains=[30], seeds=(0,),
                                 config={"epochs": 8, "n_test": 50})
    by = {r["model"]: r for r in rows}
    se2, mlp = by["se2"]["rollout_mse"]["mean"], by["mlp"]["rollout_mse"]["mean"]
    assert se2 < 0.5 * mlp, (se2, mlp)
    se2_moved = by["se2"]["moved_rollout_mse"]["mean"]
    assert abs(se2_moved - se2) / se2 < 1e-3  # exact equivariance: a moved system is as easy
    assert by["mlp"]["moved_rollout_mse"]["mean"] > 1.2 * mlp  # the MLP has not learned the symmetry
