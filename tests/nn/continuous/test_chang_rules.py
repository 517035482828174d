"""The Chang output-scaling rules of the continuous convolutions (issue 10, the memory tasks).

``"energy"`` (default) must give the forward pass of ``"energy_weight"`` at init and the
parameters (hence Adam's relative steps) of ``"reference"``; ``"energy_weight"`` puts the ~30x
gain into the output weights, so under Adam its output layer moves ~30x less in relative terms.
The step test below is the failing control: it fails for ``"energy_weight"``.
"""

from __future__ import annotations

import pytest
import torch
from torch import nn

from groupconv.nn import CKConv, FlexConv, SeparableFlexConv

RULES = ("energy", "energy_weight", "reference")

_LAYERS = {
    "CKConv-siren-causal": (lambda **k: CKConv(6, 6, kernel_net="siren", causal=True, **k), (4, 6, 120)),
    "FlexConv-2d": (lambda **k: FlexConv(4, 4, data_dim=2, kernel_size=17, **k), (2, 4, 17, 17)),
    "SeparableFlexConv-causal": (lambda **k: SeparableFlexConv(6, 6, causal=True, **k), (4, 6, 120)),
}


def _build(name: str, rule: str, seed: int = 0):
    make, shape = _LAYERS[name]
    torch.manual_seed(seed)
    return make(chang_rule=rule), shape


def _out_weight(layer) -> torch.Tensor:
    return layer.kernel_net.output_linear.weight.detach().clone()


@pytest.mark.parametrize("name", list(_LAYERS))
def test_energy_rule_is_the_reference_weights_times_a_fixed_gain(name):
    x = torch.randn(*_LAYERS[name][1], generator=torch.Generator().manual_seed(1))
    layers = {rule: _build(name, rule)[0] for rule in RULES}
    with torch.no_grad():
        out = {rule: layer(x) for rule, layer in layers.items()}
    e, w, r = (layers[k] for k in RULES)
    # forward at init: energy == energy_weight (different code paths: float32 tolerance)
    scale = float(out["energy"].abs().max())
    torch.testing.assert_close(out["energy"], out["energy_weight"], rtol=1e-4, atol=1e-5 * scale)
    # parameters: energy == reference (the same scaling code on the same draw)
    assert torch.equal(_out_weight(e), _out_weight(r))
    assert not torch.allclose(_out_weight(w), _out_weight(r))
    gain = float(e.kernel_gain)
    assert 5.0 < gain < 200.0  # the references' rule is 30-90x too small on our kernel nets
    assert float(w.kernel_gain) == 1.0 and float(r.kernel_gain) == 1.0
    size = x.shape[2:]
    torch.testing.assert_close(e.sample_kernel(size), gain * r.sample_kernel(size), rtol=1e-5, atol=1e-7)
    # energy_weight's output weights carry the same gain
    ratio = float(_out_weight(w).norm() / _out_weight(r).norm())
    assert ratio == pytest.approx(gain, rel=1e-4)


def _relative_kernel_step(rule: str) -> float:
    """One Adam step of a CKConv + BatchNorm (scale-free forward): ``|dk| / |k|``."""
    conv, shape = _build("CKConv-siren-causal", rule)
    model = nn.Sequential(conv, nn.BatchNorm1d(6, eps=1e-12))  # eps: the only scale-dependent part
    x = torch.randn(*shape, generator=torch.Generator().manual_seed(2))
    target = torch.randn(shape[0], 6, shape[2], generator=torch.Generator().manual_seed(3))
    k0 = conv.sample_kernel(shape[2:]).detach()
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    nn.functional.mse_loss(model(x), target).backward()
    opt.step()
    k1 = conv.sample_kernel(shape[2:]).detach()
    return float((k1 - k0).norm() / k0.norm())


def test_energy_rule_steps_like_the_reference_rule_under_adam():
    steps = {rule: _relative_kernel_step(rule) for rule in RULES}
    # the kernel of "energy" is a fixed multiple of "reference"'s: the same relative step
    # (measured: 7.66 for both at lr 1e-3: Adam's first step dwarfs the references' tiny output
    # weights; energy_weight 0.38)
    assert steps["energy"] == pytest.approx(steps["reference"], rel=1e-4), steps
    # control: with the gain in the weights the output layer's relative step is ~30x smaller
    assert steps["energy_weight"] < 0.5 * steps["reference"], steps


def test_old_checkpoints_without_kernel_gain_load_with_unit_gain():
    old, shape = _build("CKConv-siren-causal", "energy_weight")
    x = torch.randn(*shape)
    with torch.no_grad():
        y = old(x)
    state = {k: v for k, v in old.state_dict().items() if k != "kernel_gain"}  # a pre-gain checkpoint
    new, _ = _build("CKConv-siren-causal", "energy", seed=5)
    new.load_state_dict(state)  # strict
    assert float(new.kernel_gain) == 1.0
    with torch.no_grad():
        assert torch.equal(new(x), y)  # same computation (the gain is exactly 1)


def test_unknown_rule_is_named():
    with pytest.raises(ValueError, match="chang_rule must be one of"):
        CKConv(2, 2, chang_rule="energy-weight")  # type: ignore[arg-type]
