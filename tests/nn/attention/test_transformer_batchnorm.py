"""GroupTransformer(norm="batch"): the running statistics start at the first training batch.

torch's BatchNorm starts at running mean 0 / variance 1 and moves them by 0.1 per step. The
lifted features of the attention-digits GroupTransformer have per-channel variances of 1e-6 to
1e-3, so the start dominated eval mode for hundreds of steps (eval accuracy at chance for 16
of 20 epochs while the training loss fell; docs/results.md). These tests pin the warm start and
compare with torch's own BatchNorm3d as the control (which must show the defect).
"""

from __future__ import annotations

import pytest
import torch
from torch import nn

from groupconv.groups import CyclicGroup
from groupconv.nn import GroupTransformer

pytestmark = pytest.mark.usefixtures("one_thread")


def _model(seed: int = 0) -> GroupTransformer:
    torch.manual_seed(seed)
    return GroupTransformer(1, 5, CyclicGroup(4), channels=8, blocks=(0, 1), heads=2, patch_size=3,
                            norm="batch")


def _small_images(seed: int = 1) -> torch.Tensor:
    # small-valued, mostly blank images: the regime of the digits data (tiny feature variances)
    g = torch.Generator().manual_seed(seed)
    x = torch.zeros(6, 1, 8, 8)
    x[:, :, 2:6, 2:6] = 0.05 * torch.rand(6, 1, 4, 4, generator=g)
    return x


def _batch_norms(model: nn.Module) -> list[nn.BatchNorm3d]:
    return [m for m in model.modules() if isinstance(m, nn.BatchNorm3d)]


def test_first_training_batch_sets_the_running_statistics() -> None:
    model, x = _model(), _small_images()
    bns = _batch_norms(model)
    assert len(bns) == 4  # lift_norm + the block's three
    seen: dict[int, torch.Tensor] = {}
    hooks = [m.register_forward_hook(lambda m, i, o: seen.__setitem__(id(m), i[0].detach()))
             for m in bns]
    model.train()
    with torch.no_grad():
        model(x)
    for h in hooks:
        h.remove()
    for m in bns:
        a = seen[id(m)].transpose(0, 1).reshape(m.num_features, -1)
        if m is model.lift_norm:  # the regime where the 0 / 1 start is far off
            assert float(a.var(1).max()) < 1e-2
        torch.testing.assert_close(m.running_mean, a.mean(1), rtol=1e-4, atol=1e-7)
        torch.testing.assert_close(m.running_var, a.var(1, unbiased=True), rtol=1e-4, atol=1e-9)
        assert m.momentum == 0.1  # restored after the first step
        assert int(m.num_batches_tracked) == 1


def test_eval_after_one_training_batch_matches_training_mode() -> None:
    """After one training forward, eval mode on the same batch reproduces the training-mode
    logits (running stats = that batch's stats, up to the unbiased n/(n-1) factor); torch's
    BatchNorm3d (the old behaviour) does not."""
    x = _small_images()

    def gap(model: nn.Module) -> float:
        model.train()
        with torch.no_grad():
            train_logits = model(x)
        model.eval()
        with torch.no_grad():
            eval_logits = model(x)
        return float((eval_logits - train_logits).abs().max() / train_logits.abs().max())

    assert gap(_model()) < 1e-2

    control = _model()
    for m in list(control.modules()):
        for child_name, child in list(m.named_children()):
            if isinstance(child, nn.BatchNorm3d):
                plain = nn.BatchNorm3d(child.num_features)
                plain.load_state_dict(child.state_dict())
                setattr(m, child_name, plain)
    assert not any(type(m).__name__ == "_WarmStartBatchNorm3d" for m in control.modules())
    assert gap(control) > 0.5


def test_loaded_statistics_are_kept_and_reset_restarts() -> None:
    x = _small_images()
    trained = _model()
    trained.train()
    with torch.no_grad():
        trained(x)
    state = {k: v.clone() for k, v in trained.state_dict().items()}
    fresh = _model(seed=3)
    fresh.load_state_dict(state)
    bn = fresh.lift_norm
    before_mean, before_var = bn.running_mean.clone(), bn.running_var.clone()
    x2 = _small_images(seed=2) * 3.0
    seen = {}
    h = bn.register_forward_hook(lambda m, i, o: seen.__setitem__("x", i[0].detach()))
    fresh.train()
    with torch.no_grad():
        fresh(x2)
    h.remove()
    a = seen["x"].transpose(0, 1).reshape(bn.num_features, -1)
    # a loaded module is started: the ordinary momentum-0.1 update, not a replacement
    torch.testing.assert_close(bn.running_mean, 0.9 * before_mean + 0.1 * a.mean(1), rtol=1e-4, atol=1e-7)
    torch.testing.assert_close(bn.running_var, 0.9 * before_var + 0.1 * a.var(1), rtol=1e-4, atol=1e-9)
    bn.reset_running_stats()
    with torch.no_grad():
        fresh(x2)
    torch.testing.assert_close(bn.running_mean, a.mean(1), rtol=1e-4, atol=1e-7)


def test_eval_and_no_tracking_paths_leave_statistics_alone() -> None:
    model, x = _model(), _small_images()
    model.eval()
    with torch.no_grad():
        model(x)  # an eval forward does not consume the warm start
    bn = model.lift_norm
    torch.testing.assert_close(bn.running_var, torch.ones_like(bn.running_var))
    model.train()
    with torch.no_grad():
        model(x)
    assert float((bn.running_var - 1).abs().max()) > 0.5


def test_instance_lift_norm_has_no_running_statistics_and_keeps_c4_invariance() -> None:
    """``lift_norm="instance"`` (the attention-digits default): per-sample statistics after the
    lifting layer, so nothing there can drift between training and evaluation."""
    # float64: on nearly blank images the lifted features vary by ~1e-4 around an offset of
    # ~0.1, and normalising them amplifies float32 rounding (C4 logit changes up to ~0.1 in
    # float32 here, 1e-11 in float64); the operator itself is exactly invariant.
    torch.manual_seed(0)
    model = GroupTransformer(1, 5, CyclicGroup(4), channels=8, blocks=(0, 1), heads=2, patch_size=3,
                             norm="batch", lift_norm="instance", dtype=torch.float64)
    assert type(model.lift_norm).__name__ == "_InstanceNorm" and model.lift_norm.num_features == 8
    assert len(_batch_norms(model)) == 3
    x = _small_images().double()
    model.train()
    with torch.no_grad():
        model(x)
    model.eval()
    with torch.no_grad():
        y = model(x)
        # exact C4 invariance, the rotation computed by torch.rot90 (independent of the model)
        for k in (1, 2, 3):
            torch.testing.assert_close(model(torch.rot90(x, k, dims=(-2, -1))), y, rtol=1e-9, atol=1e-9)
    # the lifted features are normalised per sample and channel over (group, H, W)
    with torch.no_grad():
        e = model.embed(x.movedim(1, -1)).movedim(-1, 1)
        h = model.lift_norm(model.lift(e))
    torch.testing.assert_close(h.mean(dim=(2, 3, 4)), torch.zeros(6, 8, dtype=torch.float64), rtol=0,
                               atol=1e-9)


def test_lift_norm_is_checked_by_name() -> None:
    with pytest.raises(ValueError, match="lift_norm must be"):
        GroupTransformer(1, 5, CyclicGroup(4), channels=8, blocks=(1,), heads=2, lift_norm="group")
    with pytest.raises(ValueError, match="norm must be 'layer', 'batch' or 'instance'"):
        GroupTransformer(1, 5, CyclicGroup(4), channels=8, blocks=(1,), heads=2, norm="group")


def test_instance_norm_equals_group_norm_with_one_channel_per_group() -> None:
    from groupconv.nn.attention.transformer import _InstanceNorm

    torch.manual_seed(0)
    x = 0.1 + 1e-2 * torch.randn(3, 5, 4, 6, 6, dtype=torch.float64)
    ours = _InstanceNorm(5, dtype=torch.float64)
    ref = nn.GroupNorm(5, 5, dtype=torch.float64)
    with torch.no_grad():
        for m in (ours, ref):
            m.weight.copy_(torch.linspace(0.5, 2.0, 5))
            m.bias.copy_(torch.linspace(-1.0, 1.0, 5))
    torch.testing.assert_close(ours(x), ref(x), rtol=1e-10, atol=1e-10)
