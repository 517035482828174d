"""Layers own their grids and masks (issue 13, items 2, 6 and 7).

* ``forward_with_grid_mask(x, in_grid, generator) -> (y, grid, mask)``: one contract across the
  lifting, group, partial, separable, pointwise and attentive layers; ``forward_with_grid`` is
  the same call with the mask applied;
* the class attributes that replaced the introspection of overridden hooks;
* ``resolve_grid`` in ``groupconv.sampling``; the mask argument's rules;
* ``num_elements`` of CKGResNet / PartialGCNN: no sentinel on 8.
"""

from __future__ import annotations

import math

import pytest
import torch

from groupconv.groups import O2, SO2, CyclicGroup, DihedralGroup
from groupconv.models import CKGResNet, PartialGCNN
from groupconv.nn import (
    GroupConv,
    LiftingConv,
    PartialGroupConv,
    PartialLiftingConv,
    PointwiseGroupConv,
    SeparableGroupConv,
    apply_element_mask,
)
from groupconv.nn.attention.attentive import AttentiveGroupConv, AttentiveLiftingConv, CoAttentiveGroupConv
from groupconv.nn.group.gconv_weights import resolve_mask
from groupconv.sampling import HaarSampler, StratifiedSampler, resolve_grid

pytestmark = pytest.mark.usefixtures("one_thread")

C4, S = CyclicGroup(4), SO2()


def _img(b=2, c=2, size=7):
    return torch.randn(b, c, size, size, generator=torch.Generator().manual_seed(1))


def _gmap(n, b=2, c=2, size=7):
    return torch.randn(b, c, n, size, size, generator=torch.Generator().manual_seed(2))


def _gen(seed=5):
    return torch.Generator().manual_seed(seed)


# -- forward_with_grid_mask ----------------------------------------------------------------------
DETERMINISTIC = {
    "LiftingConv": (lambda: LiftingConv(2, 3, C4, 3, padding=1), _img),
    "GroupConv-so2-siren": (lambda: GroupConv(2, 3, S, 3, num_elements=8, kernel_net="siren", padding=1),
                            lambda: _gmap(8)),
    "PartialLiftingConv-full": (lambda: PartialLiftingConv(2, 3, C4, 3, padding=1, partial=False), _img),
    "SeparableGroupConv": (lambda: SeparableGroupConv(2, 3, C4, 3, padding=1), lambda: _gmap(4)),
    "PointwiseGroupConv": (lambda: PointwiseGroupConv(2, 3, C4), lambda: _gmap(4)),
    "AttentiveLiftingConv": (lambda: AttentiveLiftingConv(2, 3, C4, 3, padding=1, spatial_kernel_size=3),
                             _img),
    "AttentiveGroupConv-fA": (lambda: AttentiveGroupConv(2, 3, C4, 3, padding=1, form="feature",
                                                         spatial_kernel_size=3), lambda: _gmap(4)),
    "CoAttentiveGroupConv": (lambda: CoAttentiveGroupConv(2, 3, C4, 3, padding=1, heads=2), lambda: _gmap(4)),
}


@pytest.mark.parametrize("name", list(DETERMINISTIC))
@pytest.mark.parametrize("train", [True, False])
def test_deterministic_layers_return_no_grid_and_no_mask(name, train):
    build, inputs = DETERMINISTIC[name]
    torch.manual_seed(0)
    layer = build().train(train)
    x = inputs()
    y, grid, mask = layer.forward_with_grid_mask(x)
    assert grid is None and mask is None
    assert torch.equal(y, layer(x))  # the same computation (attentive layers: with attention)
    y2, out = layer.forward_with_grid(x)
    assert out is layer.out_grid and torch.equal(y2, y)


def _dropping(layer, drop):
    """Logits of +-30: the relaxed Bernoulli keeps / drops these elements whatever its noise."""
    with torch.no_grad():
        layer.element_logits.copy_(torch.tensor([-30.0 if i in drop else 30.0
                                                 for i in range(1, layer.num_elements)]))
    return layer


@pytest.mark.parametrize("cls,inputs", [(PartialLiftingConv, _img), (PartialGroupConv, lambda: _gmap(4))])
def test_partial_mask_mode_returns_the_unmasked_output_and_its_mask(cls, inputs):
    torch.manual_seed(0)
    layer = _dropping(cls(2, 3, C4, 3, padding=1), drop={2})
    x = inputs()
    y, grid, mask = layer.forward_with_grid_mask(x, generator=_gen())
    assert grid is None  # mask mode keeps the deterministic grid
    assert mask.tolist() == [1.0, 1.0, 0.0, 1.0]
    assert y[:, :, 2].abs().max() > 0  # not masked yet: the caller places the mask
    masked, out = layer.forward_with_grid(x, generator=_gen())
    assert out is layer.out_grid
    assert torch.equal(masked[:, :, 2], torch.zeros_like(masked[:, :, 2]))
    keep = [0, 1, 3]
    assert torch.equal(masked[:, :, keep], y[:, :, keep])
    assert torch.equal(apply_element_mask(y, mask), masked)
    # eval: the deterministic mask l > 0
    layer.eval()
    assert layer.forward_with_grid_mask(x)[2].tolist() == [1.0, 1.0, 0.0, 1.0]


def test_partial_extent_mode_returns_its_drawn_grid_and_the_mirror_mask():
    torch.manual_seed(0)
    rot = PartialGroupConv(2, 3, S, 3, num_elements=8, kernel_net="siren", padding=1, init_extent=0.5)
    y, grid, mask = rot.forward_with_grid_mask(_gmap(8), generator=_gen())
    assert mask is None and tuple(grid.shape) == (8, 1) and y.shape == (2, 3, 8, 7, 7)
    assert float(grid.detach().abs().max()) <= math.pi * 0.5 + 1e-6  # inside [-pi u, pi u)
    mirror = PartialGroupConv(2, 3, O2(), 3, num_elements=8, kernel_net="siren", padding=1)
    with torch.no_grad():
        mirror.mirror_logit.fill_(-30.0)  # drop the mirrored half
    y, grid, mask = mirror.forward_with_grid_mask(_gmap(8), generator=_gen())
    assert tuple(grid.shape) == (8, 2) and mask.tolist() == [1.0] * 4 + [0.0] * 4
    assert y[:, :, 4:].abs().max() > 0


def test_random_samplers_hand_on_their_grid():
    torch.manual_seed(0)
    conv = GroupConv(2, 3, S, 3, num_elements=8, kernel_net="siren", sampler=HaarSampler(), padding=1)
    y, grid, mask = conv.forward_with_grid_mask(_gmap(8), generator=_gen())
    assert mask is None and grid is not None and tuple(grid.shape) == (8, 1)
    batched = GroupConv(2, 3, S, 3, num_elements=8, kernel_net="siren", padding=1,
                        sampler=StratifiedSampler(per="batch"))
    y, grid, mask = batched.forward_with_grid_mask(_gmap(8), generator=_gen())
    assert tuple(grid.shape) == (2, 8, 1)
    # the next layer takes it as in_grid
    nxt = GroupConv(3, 2, S, 3, num_elements=8, kernel_net="siren", padding=1, basis="pixel")
    assert nxt.forward_with_grid_mask(y, grid)[0].shape == (2, 2, 8, 7, 7)


def test_per_batch_and_moving_grid_are_explicit_class_attributes():
    per_batch = {LiftingConv: True, GroupConv: True, PartialLiftingConv: False, PartialGroupConv: False,
                 PointwiseGroupConv: False, AttentiveLiftingConv: False, AttentiveGroupConv: False,
                 CoAttentiveGroupConv: False}
    for cls, flag in per_batch.items():
        assert cls._per_batch_grids is flag, cls.__name__
    assert PartialGroupConv._grid_moves_in_forward and not GroupConv._grid_moves_in_forward
    # what the attributes decide: per-batch samplers and batched grids are refused ...
    with pytest.raises(ValueError, match="per='batch' is not supported by PartialGroupConv"):
        PartialGroupConv(2, 2, S, 3, num_elements=8, kernel_net="siren",
                         sampler=StratifiedSampler(per="batch"))
    with pytest.raises(ValueError, match="not supported by PartialGroupConv"):
        PartialGroupConv(2, 2, S, 3, num_elements=8, kernel_net="siren", partial=False)(
            _gmap(8), in_grid=S.grid(8).expand(2, 8, 1))
    # ... and partial layers keep the pixel read-out where a plain layer projects on the basis
    assert GroupConv(2, 2, S, 5, num_elements=8, kernel_net="siren").basis == "steerable"
    assert PartialGroupConv(2, 2, S, 5, num_elements=8, kernel_net="siren").basis == "pixel"


# -- resolve_grid --------------------------------------------------------------------------------
def test_resolve_grid_lives_in_sampling_and_names_num_elements():
    from groupconv.nn.group.gconv_kernels import resolve_grid as old

    assert old is resolve_grid
    grid, random = resolve_grid(CyclicGroup(16), 8, None, "GroupConv")
    assert grid.shape[0] == 8 and not random
    assert resolve_grid(S, 8, HaarSampler(), "GroupConv")[1]
    with pytest.raises(ValueError, match="num_elements=5 is not a grid size of CyclicGroup\\(16\\)"):
        resolve_grid(CyclicGroup(16), 5, None, "GroupConv")
    with pytest.raises(ValueError, match="num_elements must be a positive int"):
        resolve_grid(S, None, None, "GroupConv")


# -- the mask argument ---------------------------------------------------------------------------
def test_mask_rules():
    assert [resolve_mask(m, True) for m in (None, True, False, "hard", "smooth", "none")] == \
        ["hard", "hard", "none", "hard", "smooth", "none"]
    assert [resolve_mask(m, False) for m in (None, True, False, "hard", "none")] == \
        [None, "hard", "none", "hard", "none"]
    with pytest.raises(ValueError, match="mask must be None, True, False, 'hard', 'smooth' or 'none', got"):
        resolve_mask("disc", True)
    with pytest.raises(ValueError, match="mask='smooth' needs a continuous kernel"):
        LiftingConv(1, 1, C4, 3, mask="smooth")


def _corner_energy(layer):
    w = layer.expanded_weight().detach()
    return float(w[..., 0, 0].abs().sum() + w[..., 0, -1].abs().sum())


def test_discrete_mask_none_auto_false_and_hard():
    torch.manual_seed(0)
    kw = {"num_elements": 8, "basis": "pixel"}  # interpolated pixels (45-degree rotations)
    auto = LiftingConv(1, 2, S, 3, **kw)
    off = LiftingConv(1, 2, S, 3, mask=False, **kw)
    assert (auto.mask, off.mask) == ("hard", "none")
    assert _corner_energy(auto) == 0.0 and _corner_energy(off) > 0  # False: no mask, as documented
    exact = LiftingConv(1, 2, C4, 3)  # exact permutations: no mask unless asked for
    assert exact.mask is None and _corner_energy(exact) > 0
    assert _corner_energy(LiftingConv(1, 2, C4, 3, mask=True)) == 0.0
    cont = LiftingConv(1, 2, C4, 3, kernel_net="siren", mask=False)
    assert cont.mask == "none" and _corner_energy(cont) > 0


# -- num_elements of the models (no sentinel on 8) -----------------------------------------------
def test_models_honour_num_elements():
    kw = {"hidden_channels": 2, "num_blocks": 1, "kernel_size": 3}
    assert CKGResNet(1, 2, CyclicGroup(16), num_elements=8, **kw).num_elements == 8
    assert CKGResNet(1, 2, CyclicGroup(16), **kw).num_elements == 16  # None: the order
    assert CKGResNet(1, 2, DihedralGroup(4), **kw).num_elements == 8
    assert CKGResNet(1, 2, **kw).num_elements == 8  # SO(2): 8 by default
    assert CKGResNet(1, 2, S, num_elements=4, **kw).num_elements == 4
    with pytest.raises(ValueError, match="num_elements=5 is not a grid size of CyclicGroup\\(16\\)"):
        CKGResNet(1, 2, CyclicGroup(16), num_elements=5, **kw)
    pkw = {"channels": (2, 2), "pool_after": ()}
    assert PartialGCNN(1, 2, CyclicGroup(4), kernel_net=None, **pkw).num_elements == 4
    assert PartialGCNN(1, 2, **pkw).num_elements == 8
    assert PartialGCNN(1, 2, CyclicGroup(8), num_elements=4, **pkw).num_elements == 4
