"""Layer arguments are checked at construction (or at forward for input-dependent ones); each
error names the argument, the expected and the actual value (issue 12, item 2)."""

from __future__ import annotations

import inspect
import warnings

import pytest
import torch

from groupconv.groups import SO2, CyclicGroup, DihedralGroup
from groupconv.nn import GlobalInvariantPool, GroupConv, LiftingConv

C4 = CyclicGroup(4)


@pytest.mark.parametrize("cls, args", [(LiftingConv, (3, 4)), (GroupConv, (3, 4))])
@pytest.mark.parametrize("group", [C4, DihedralGroup(4), SO2()], ids=lambda g: g.name)
def test_non_square_kernel_on_rotating_group(cls, args, group):
    kw = {"num_elements": 8} if group.name == "SO2" else {}
    with pytest.raises(ValueError, match=r"kernel_size must be the same in every dimension.*got \(3, 5\)"):
        cls(*args, group, (3, 5), padding="same", **kw)


def test_non_square_kernel_allowed_when_nothing_rotates():
    # mirrors only along an axis / identity: the kernel is never rotated, (3, 5) is exact
    layer = LiftingConv(1, 2, CyclicGroup(1), (3, 5), padding="same")
    assert layer(torch.randn(1, 1, 6, 7)).shape == (1, 2, 1, 6, 7)


@pytest.mark.parametrize("kw, name", [({"stride": (1, 2), "padding": 1}, "stride"),
                                      ({"dilation": (1, 2), "padding": 2}, "dilation")])
def test_anisotropic_stride_or_dilation_warns_under_rotations(kw, name):
    # found by tests/test_fuzz_layers.py: GroupConv(..., stride=(1, 2)) on C4 was silently 0.16 off
    with pytest.warns(UserWarning, match=rf"{name} \(1, 2\) differs between dimensions.*not exactly "
                                         r"equivariant to the rotations of CyclicGroup\(4\)"):
        GroupConv(2, 2, C4, 1, **kw)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        GroupConv(2, 2, CyclicGroup(1), 1, **kw)  # nothing rotates: exact, no warning


def test_asymmetric_padding_warns_under_rotations():
    with pytest.warns(UserWarning, match=r"padding \(1, 0\) differs between dimensions"):
        LiftingConv(1, 2, C4, 3, padding=(1, 0))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        LiftingConv(1, 2, C4, 3, padding=(1, 1))


@pytest.mark.parametrize("kw, match", [
    ({"stride": 0}, r"LiftingConv: stride must be >= 1 in every dimension, got \(0, 0\)"),
    ({"padding": -1}, r"LiftingConv: padding must be >= 0 in every dimension, got \(-1, -1\)"),
    ({"dilation": 0}, r"LiftingConv: dilation must be >= 1 in every dimension, got \(0, 0\)"),
    ({"stride": (1, 0)}, r"stride must be >= 1 in every dimension, got \(1, 0\)"),
])
def test_conv_geometry_checked_at_construction(kw, match):
    with pytest.raises(ValueError, match=match):
        LiftingConv(1, 2, C4, 3, **kw)


def test_kernel_larger_than_padded_input():
    layer = LiftingConv(1, 2, C4, 5)
    with pytest.raises(ValueError, match=r"x has spatial size \(3, 3\), padded \(3, 3\), smaller than "
                                         r"the dilated kernel \(5, 5\)"):
        layer(torch.randn(1, 1, 3, 3))
    gc = GroupConv(2, 2, C4, 3, dilation=2, padding=1)  # extent 5, padded 3 + 2 = 5: fits
    assert gc(torch.randn(1, 2, 4, 3, 3)).shape == (1, 2, 4, 1, 1)
    with pytest.raises(ValueError, match=r"padded \(4, 4\), smaller than the dilated kernel \(5, 5\)"):
        gc(torch.randn(1, 2, 4, 2, 2))


@pytest.mark.parametrize("dtype", [torch.float16, torch.float64])
@pytest.mark.parametrize("kernel_net", [None, "siren"])
def test_input_dtype_mismatch_names_both(dtype, kernel_net):
    kw = {"num_elements": 4, "kernel_net": kernel_net} if kernel_net else {}
    layer = LiftingConv(1, 2, SO2() if kernel_net else C4, 3, **kw)
    with pytest.raises(TypeError, match=rf"x has dtype {dtype} but the layer's parameters are torch.float32"):
        layer(torch.randn(1, 1, 5, 5, dtype=dtype))
    layer.to(dtype)  # and the conversion the message proposes works (float64 at least)
    if dtype == torch.float64:
        assert layer(torch.randn(1, 1, 5, 5, dtype=dtype)).dtype == dtype


def test_global_invariant_pool_needs_a_group_axis():
    image = torch.randn(2, 3, 8, 8)  # (B, C, H, W): no group axis
    with pytest.raises(ValueError, match=r"x must have shape \(B, C, N, H, W\).*got shape \(2, 3, 8, 8\)"):
        GlobalInvariantPool()(image)
    # an explicit 1-D group map is still accepted
    assert GlobalInvariantPool(spatial_dims=1)(torch.randn(2, 3, 4, 8)).shape == (2, 3)


def test_lifting_conv_signature_and_typos():
    params = inspect.signature(LiftingConv).parameters
    assert "kwargs" not in params and "in_num_elements" not in params
    assert {"padding", "stride", "dilation", "kernel_net", "num_elements"} <= set(params)
    with pytest.raises(TypeError, match=r"LiftingConv\(\) got an unexpected keyword argument 'paddng' "
                                        r"\(did you mean 'padding'\?\)"):
        LiftingConv(1, 2, C4, 3, paddng=1)
    with pytest.raises(TypeError, match="in_num_elements is not an option"):
        LiftingConv(1, 2, C4, 3, in_num_elements=4)

