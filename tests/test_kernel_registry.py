"""The kernel-net registry (issue 13, item 1): one name set for every continuous layer.

* the registry itself: names, defaults per layer family, the one error text, modules;
* every continuous layer x every registered name builds, runs and passes its equivariance
  check with the kit (exact elements: integer shifts for the R^d convolutions, the 90-degree
  rotations of C4 for the group convolutions), at small sizes;
* the check can fail: a layer broken on purpose is caught.
"""

from __future__ import annotations

import pytest
import torch
from torch import nn

import groupconv.kernels as kernels
import groupconv.nn as gnn
from groupconv.groups import CyclicGroup
from groupconv.kernels import KERNEL_NET_DEFAULTS, KERNEL_NETS, build_kernel_net, kernel_net_class
from groupconv.nn.attention.attentive import AttentiveGroupConv
from groupconv.testing import EquivarianceError, assert_equivariant

pytestmark = pytest.mark.usefixtures("one_thread")

NAMES = ("mlp", "siren", "rff", "fourier", "gabor", "magnet")
F64 = torch.float64


# -- the registry --------------------------------------------------------------------------------
def test_registry_names_and_reexports():
    assert set(KERNEL_NETS) == set(NAMES)
    assert gnn.KERNEL_NETS is KERNEL_NETS and gnn.build_kernel_net is build_kernel_net
    from groupconv.nn.continuous.ckconv import KERNEL_NETS as old_names
    from groupconv.nn.continuous.ckconv import build_kernel_net as old_build

    assert old_names is KERNEL_NETS and old_build is build_kernel_net
    for name in NAMES:
        cls = kernel_net_class(name.upper())  # case-insensitive
        assert isinstance(cls, type) and issubclass(cls, kernels.KernelNet)
        net = build_kernel_net(name, 3, 5)
        assert type(net) is cls and (net.in_features, net.out_features) == (3, 5)
        assert net(torch.zeros(4, 3)).shape == (4, 5)


def test_one_error_text_names_argument_expected_and_value():
    for bad in ("sirne", 3, None):
        with pytest.raises(ValueError) as err:
            build_kernel_net(bad, 2, 2)
        msg = str(err.value)
        assert msg.startswith("kernel_net must be an nn.Module or one of")
        assert all(repr(n) in msg for n in NAMES) and msg.endswith(f"got {bad!r}")
    # every layer family reports the same text
    for make in (lambda: gnn.CKConv(1, 1, 1, "sirne"),
                 lambda: gnn.GroupConv(1, 1, CyclicGroup(4), 3, kernel_net="sirne"),
                 lambda: gnn.SeparableGroupConv(1, 1, CyclicGroup(4), 3, kernel_net="sirne")):
        with pytest.raises(ValueError, match=r"kernel_net must be an nn.Module or one of \['fourier'"):
            make()
    with pytest.raises(ValueError, match="defaults must be one of"):
        build_kernel_net("siren", 1, 1, defaults="nope")
    with pytest.raises(TypeError, match="kernel_net_kwargs must be a dict"):
        build_kernel_net("siren", 1, 1, [("omega_0", 3.0)])


def test_modules_are_checked_and_returned():
    net = kernels.SIREN(2, 6)
    assert build_kernel_net(net, 2, 6) is net
    with pytest.raises(ValueError, match="kernel_net.out_features must be 4 for this layer, got 6"):
        build_kernel_net(net, 2, 4)
    with pytest.raises(ValueError, match="kernel_net.in_features must be 3"):
        build_kernel_net(net, 3, 6)
    with pytest.raises(ValueError, match="kernel_net_kwargs must be empty"):
        build_kernel_net(net, 2, 6, {"omega_0": 1.0})
    plain = nn.Linear(2, 6)  # a module without the attributes is trusted
    assert build_kernel_net(plain, 2, 6) is plain


def test_defaults_per_layer_family_and_overrides():
    assert KERNEL_NET_DEFAULTS["continuous"] == {}
    assert float(build_kernel_net("siren", 2, 2).omega_0) == 30.0  # the class's (CKConv) default
    assert float(build_kernel_net("siren", 2, 2, defaults="group").omega_0) == 10.0
    assert float(build_kernel_net("siren", 2, 2, {"omega_0": 3.0}, defaults="group").omega_0) == 3.0
    mlp = build_kernel_net("mlp", 2, 2, defaults="group")
    assert isinstance(mlp, kernels.MLP) and mlp.hidden_features == 32
    # the group layers use the group family, the R^d layers the class defaults
    lift = gnn.LiftingConv(1, 1, CyclicGroup(4), 3, kernel_net="siren")
    assert float(lift.kernel_net.omega_0) == 10.0
    assert float(gnn.CKConv(1, 1, 1, "siren").kernel_net.omega_0) == 30.0
    # extra arguments reach only the classes that take them (causal: the MFNs)
    causal = build_kernel_net("magnet", 1, 2, {"mu_scale": 0.5}, causal=True)
    assert float(causal.mu.detach().min()) >= 0.5 - 1e-6  # causal centres: 1 - 0.5 U(0, 1)
    centred = build_kernel_net("magnet", 1, 2, {"mu_scale": 0.5})
    assert float(centred.mu.detach().min()) < 0.5
    assert isinstance(build_kernel_net("siren", 1, 2, causal=True), kernels.SIREN)


# -- every continuous layer x every name: builds, runs, equivariant ------------------------------
C4 = CyclicGroup(4)


def _gmap(n: int = 4, c: int = 2, size: int = 7) -> torch.Tensor:
    return torch.randn(2, c, n, size, size, dtype=F64)


LAYERS = {
    # R^d convolutions: circular padding, so the integer shifts act exactly
    "CKConv-1d": (lambda net: gnn.CKConv(2, 3, 1, net, kernel_size=5, padding_mode="circular", dtype=F64),
                  lambda: torch.randn(2, 2, 11, dtype=F64)),
    "CKConv-2d": (lambda net: gnn.CKConv(2, 2, 2, net, kernel_size=5, padding_mode="circular", dtype=F64),
                  lambda: torch.randn(2, 2, 9, 9, dtype=F64)),
    "SeparableCKConv-1d": (lambda net: gnn.SeparableCKConv(2, 3, 1, net, padding_mode="circular", dtype=F64),
                           lambda: torch.randn(2, 2, 11, dtype=F64)),
    "FlexConv-2d": (lambda net: gnn.FlexConv(2, 2, 2, net, kernel_size=7, mask_init_sigma=0.3,
                                             padding_mode="circular", dtype=F64),
                    lambda: torch.randn(2, 2, 9, 9, dtype=F64)),
    "SeparableFlexConv-1d": (lambda net: gnn.SeparableFlexConv(2, 3, 1, net, mask_init_sigma=0.3,
                                                               padding_mode="circular", dtype=F64),
                             lambda: torch.randn(2, 2, 11, dtype=F64)),
    # group convolutions on C4: the 90-degree rotations act exactly
    "LiftingConv": (lambda net: gnn.LiftingConv(2, 3, C4, 3, padding=1, kernel_net=net, dtype=F64),
                    lambda: torch.randn(2, 2, 7, 7, dtype=F64)),
    "GroupConv": (lambda net: gnn.GroupConv(2, 3, C4, 3, padding=1, kernel_net=net, dtype=F64), _gmap),
    "PartialLiftingConv": (lambda net: gnn.PartialLiftingConv(2, 3, C4, 3, padding=1, kernel_net=net,
                                                               dtype=F64).eval(),
                           lambda: torch.randn(2, 2, 7, 7, dtype=F64)),
    "PartialGroupConv": (lambda net: gnn.PartialGroupConv(2, 3, C4, 3, padding=1, kernel_net=net,
                                                          dtype=F64).eval(), _gmap),
    "SeparableGroupConv": (lambda net: gnn.SeparableGroupConv(2, 3, C4, 3, padding=1, kernel_net=net,
                                                              dtype=F64), _gmap),
    "SeparableGroupConv-dg": (lambda net: gnn.SeparableGroupConv(
        2, 3, C4, 3, variant="dgseparable", padding=1, kernel_net=net, dtype=F64), _gmap),
    "PointwiseGroupConv": (lambda net: gnn.PointwiseGroupConv(2, 3, C4, kernel_net=net, dtype=F64), _gmap),
    "AttentiveGroupConv": (lambda net: AttentiveGroupConv(2, 3, C4, 3, padding=1, kernel_net=net,
                                                          spatial_kernel_size=3, dtype=F64), _gmap),
}


@pytest.mark.parametrize("name", NAMES)
@pytest.mark.parametrize("layer_id", list(LAYERS))
def test_every_layer_accepts_every_name_and_stays_equivariant(layer_id, name):
    torch.manual_seed(0)
    build, inputs = LAYERS[layer_id]
    layer = build(name)
    assert isinstance(layer.kernel_net if hasattr(layer, "kernel_net") and layer.kernel_net is not None
                      else _factor_net(layer), kernel_net_class(name))
    x = inputs()
    y = layer(x)
    assert torch.isfinite(y).all() and y.abs().max() > 0
    if layer_id.startswith("Partial"):  # eval: the deterministic mask keeps every element here
        assert bool((layer.element_mask() == 1).all())
    report = assert_equivariant(layer, x)
    assert len(report.rows) >= 3 and report.passed


def _factor_net(layer: nn.Module) -> nn.Module:
    """The kernel net of a separable layer's spatial (or group) factor."""
    factor = layer.spatial_kernel if layer.spatial_kernel is not None else layer.group_kernel
    return factor.kernel_net


# -- the checks above can fail -------------------------------------------------------------------
def test_a_broken_group_layer_fails_the_check():
    """Every output element reads the kernel net at the identity's coordinates: not equivariant."""
    torch.manual_seed(0)
    layer = gnn.GroupConv(2, 3, C4, 3, padding=1, kernel_net="magnet", dtype=F64, basis="pixel")
    x = _gmap()
    assert_equivariant(layer, x)
    with torch.no_grad():
        layer._coords[..., :2] = layer._coords[:1, ..., :2].clone()  # spatial part of h_0 for all
    with pytest.raises(EquivarianceError):
        assert_equivariant(layer, x)


def test_a_broken_continuous_layer_fails_the_check():
    """A position-dependent gain after the conv breaks translation equivariance."""
    torch.manual_seed(0)
    layer = gnn.CKConv(2, 3, 1, "gabor", kernel_size=5, padding_mode="circular", dtype=F64)
    x = torch.randn(2, 2, 11, dtype=F64)
    ramp = torch.linspace(1.0, 2.0, 11, dtype=F64)

    def broken(t: torch.Tensor) -> torch.Tensor:
        return layer(t) * ramp

    with pytest.raises(EquivarianceError):
        assert_equivariant(broken, x, in_field=layer.in_field, out_field=layer.out_field)
