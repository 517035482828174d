"""Bridge between groupconv and escnn (optional: ``pip install 'groupconv[escnn]'``).

escnn is never imported when groupconv is: :func:`import_escnn` imports it on first use, with
two workarounds for its install problems:

* lie_learn (an escnn dependency used only by SO(3)/O(3) Wigner-D code) pins ``numpy<2`` and
  its binaries need NumPy 1.x. If ``import escnn`` fails because lie_learn is missing or broken,
  a stub is put in ``sys.modules`` and the import retried: the 2-D gspaces work, escnn's SO(3)
  irreps raise ``NotImplementedError``. ``scripts/install_escnn.sh`` installs escnn this way.
* escnn#112: with scikit-learn >= 1.2 importable, escnn's numerical null space calls
  ``randomized_svd`` on an ``np.matrix`` and building D_N / O(2) layers fails on a cold cache;
  ``escnn.group._numerical.randomized_svd`` is set to ``None`` (escnn then uses scipy's SVD).

Conventions (checked numerically in ``tests/test_escnn_bridge.py`` against escnn's own
``GeometricTensor.transform``): escnn's ``rot2dOnR2(N)`` element ``k`` acts on images like
``torch.rot90(x, k, dims=(-2, -1))``, i.e. as groupconv's angle ``2 pi k / N``;
``flipRot2dOnR2(N)`` (default axis) element ``(f, k)`` acts like groupconv's D_N element
``(2 pi k / N, (-1)^f)`` (``(1, 0)`` is ``torch.flip(x, dims=(-1,))``); escnn's regular
representation is ``rho(g) e_h = e_{gh}`` on the basis ordered as ``G.elements``, which is the
order of ``CyclicGroup(N).elements()`` / ``DihedralGroup(N).elements()``. A regular feature map
``(B, C |G|, H, W)`` is field-major, so it is groupconv's ``(B, C, |G|, H, W)`` reshaped, with
the group axis permuted by :func:`regular_permutation` (the identity for C_N and D_N).

Example:
    >>> from groupconv.groups import DihedralGroup
    >>> from groupconv.interop.escnn import escnn_available, to_escnn_gspace
    >>> if escnn_available():
    ...     print(to_escnn_gspace(DihedralGroup(4)))
    ... else:
    ...     print("D4_on_R2[(3.141592653589793, 4)]")
    D4_on_R2[(3.141592653589793, 4)]
"""

from __future__ import annotations

import importlib
import importlib.util
import math
import sys
import types
import warnings
from typing import Any

import torch
from torch import Tensor

from .._validation import check_tensor
from ..groups import O2, SO2, SO3, CyclicGroup, DihedralGroup, Group, OctahedralGroup
from ..groups.base import wrap_angle

__all__ = [
    "INSTALL_HINT",
    "escnn_available",
    "import_escnn",
    "lie_learn_stubbed",
    "to_escnn_group",
    "to_escnn_gspace",
    "from_escnn_group",
    "element_to_escnn",
    "element_from_escnn",
    "regular_permutation",
    "regular_field_type",
    "regular_field_to_groupconv",
    "regular_field_from_groupconv",
    "groupconv_from_r2conv",
    "escnn_filter_from_groupconv",
]

#: How to get escnn; named by every ImportError of this module.
INSTALL_HINT = (
    "escnn is an optional extra of groupconv: install it with `bash scripts/install_escnn.sh "
    "[VENV]` (no Fortran compiler needed, keeps numpy 2) or `pip install 'groupconv[escnn]'` "
    "(needs gfortran for py3nj: `apt-get install -y gfortran`)"
)

_LIE_LEARN_STUBS = (
    "lie_learn",
    "lie_learn.representations",
    "lie_learn.representations.SO3",
    "lie_learn.representations.SO3.wigner_d",
)


def _no_wigner_d(*args: object, **kwargs: object) -> None:
    raise NotImplementedError(
        "SO(3) Wigner-D matrices are unavailable: lie_learn is not installed (groupconv put a stub in "
        "sys.modules so that escnn's 2-D gspaces import); install lie_learn with numpy<2 for SO(3)"
    )


def _purge(prefixes: tuple[str, ...]) -> None:
    for name in [m for m in sys.modules if m in prefixes or m.startswith(tuple(p + "." for p in prefixes))]:
        del sys.modules[name]


def _import_quietly(name: str) -> types.ModuleType:
    with warnings.catch_warnings():
        # escnn warns at import that py3nj (SO(3) Clebsch-Gordan only) is missing: expected here.
        warnings.filterwarnings("ignore", message=".*py3nj.*")
        return importlib.import_module(name)


def _apply_workarounds(escnn: types.ModuleType) -> None:
    numerical = importlib.import_module("escnn.group._numerical")
    if getattr(numerical, "randomized_svd", None) is not None:  # escnn#112 (scikit-learn >= 1.2)
        numerical.randomized_svd = None


def _caused_by_lie_learn(exc: BaseException) -> bool:
    """Whether an import error comes from lie_learn (missing, NumPy-1 binaries, its own deps)."""
    text = f"{getattr(exc, 'name', '')} {exc}"
    if "lie_learn" in text or "numpy" in text:
        return True
    tb = exc.__traceback__
    while tb is not None:
        if "lie_learn" in tb.tb_frame.f_code.co_filename:
            return True
        tb = tb.tb_next
    return False


def import_escnn() -> types.ModuleType:
    """Import and return the ``escnn`` package, with the workarounds of the module docstring.

    Raises:
        ImportError: escnn is not installed or fails to import; the message says how to install it.

    Example:
        >>> from groupconv.interop.escnn import escnn_available, import_escnn
        >>> if escnn_available():
        ...     gspace = import_escnn().gspaces.rot2dOnR2(4)
    """
    if "escnn" in sys.modules and "escnn.nn" in sys.modules:
        escnn = sys.modules["escnn"]
        _apply_workarounds(escnn)
        return escnn
    if importlib.util.find_spec("escnn") is None:
        raise ImportError(f"escnn is not installed. {INSTALL_HINT}", name="escnn")
    try:
        escnn = _import_quietly("escnn")
        _import_quietly("escnn.nn")
    except ImportError as exc:
        if not _caused_by_lie_learn(exc):
            raise ImportError(f"import escnn failed: {exc}. {INSTALL_HINT}", name="escnn") from exc
        _purge(("escnn", "lie_learn"))
        for name in _LIE_LEARN_STUBS:
            sys.modules[name] = types.ModuleType(name)
        sys.modules["lie_learn.representations.SO3.wigner_d"].wigner_D_matrix = _no_wigner_d  # type: ignore[attr-defined]
        try:
            escnn = _import_quietly("escnn")
            _import_quietly("escnn.nn")
        except Exception as exc2:  # noqa: BLE001 - any failure becomes one clear ImportError
            _purge(("escnn", "lie_learn"))
            raise ImportError(
                f"import escnn failed ({exc}); with lie_learn stubbed: {exc2}. {INSTALL_HINT}", name="escnn"
            ) from exc2
    _apply_workarounds(escnn)
    return escnn


def lie_learn_stubbed() -> bool:
    """Whether :func:`import_escnn` replaced lie_learn by a stub (escnn's SO(3) irreps unavailable)."""
    mod = sys.modules.get("lie_learn.representations.SO3.wigner_d")
    return getattr(mod, "wigner_D_matrix", None) is _no_wigner_d


def escnn_available() -> bool:
    """Whether :func:`import_escnn` succeeds (imports escnn the first time, ~2 s)."""
    if importlib.util.find_spec("escnn") is None:
        return False
    try:
        import_escnn()
    except ImportError:
        return False
    return True


# -- groups and gspaces ----------------------------------------------------------------------
def _fiber(group: Group) -> Group:
    """``H`` of ``R^2 x| H`` (SE2, E2, ...) or the group itself."""
    H = getattr(group, "H", None)
    T = getattr(group, "translations", None)
    if H is not None and T is not None:
        if getattr(T, "space_dim", None) != 2:
            raise ValueError(f"group must act on R^2 for escnn's 2-D gspaces, got {group!r}")
        return H
    return group


def to_escnn_group(group: Group) -> Any:
    """The escnn group equal to ``group``: C_N, D_N, SO(2), O(2), SO(3), octahedral.

    SO(3) and the octahedral group need escnn's lie_learn dependency for their representations
    (unavailable when :func:`import_escnn` stubbed it); their element maps are not provided.

    Raises:
        ValueError: ``group`` has no escnn counterpart.
    """
    eg = import_escnn().group
    if isinstance(group, CyclicGroup):
        return eg.cyclic_group(group.n)
    if isinstance(group, DihedralGroup):
        return eg.dihedral_group(group.n)
    if isinstance(group, SO2):
        return eg.so2_group()
    if isinstance(group, O2):
        return eg.o2_group()
    if isinstance(group, SO3):
        return eg.so3_group()
    if isinstance(group, OctahedralGroup):
        return eg.octa_group()
    raise ValueError(
        f"group must be CyclicGroup, DihedralGroup, SO2, O2, SO3 or OctahedralGroup to map to an escnn "
        f"group, got {group!r}"
    )


def to_escnn_gspace(group: Group, **kwargs: Any) -> Any:
    """The escnn gspace ``R^2 x| H`` of ``group`` (H itself, or SE2/E2 and other ``R^2 x| H``).

    ``CyclicGroup(N)`` -> ``rot2dOnR2(N)``, ``DihedralGroup(N)`` -> ``flipRot2dOnR2(N)``,
    ``SO2``/``SE2`` -> ``rot2dOnR2(-1)``, ``O2``/``E2`` -> ``flipRot2dOnR2(-1)``,
    ``CyclicGroup(1)`` -> ``trivialOnR2()``. ``kwargs`` go to escnn (e.g. ``maximum_frequency``).

    Raises:
        ValueError: no escnn gspace coincides with ``group``.
    """
    gspaces = import_escnn().gspaces
    H = _fiber(group)
    if isinstance(H, CyclicGroup):
        return gspaces.trivialOnR2(**kwargs) if H.n == 1 else gspaces.rot2dOnR2(H.n, **kwargs)
    if isinstance(H, DihedralGroup):
        return gspaces.flipRot2dOnR2(H.n, **kwargs)
    if isinstance(H, SO2):
        return gspaces.rot2dOnR2(-1, **kwargs)
    if isinstance(H, O2):
        return gspaces.flipRot2dOnR2(-1, **kwargs)
    raise ValueError(
        "group must be CyclicGroup, DihedralGroup, SO2, O2 or R^2 x| one of them (SE2, E2) to map to an "
        f"escnn 2-D gspace, got {group!r}"
    )


def _is_gspace(obj: Any) -> bool:
    return hasattr(obj, "fibergroup") and hasattr(obj, "basespace_action")


def from_escnn_group(obj: Any) -> Group:
    """The groupconv group equal to an escnn group, or to the fibre group H of an escnn gspace.

    Accepts ``escnn.group.Group`` objects and 2-D gspaces (``rot2dOnR2``, ``flipRot2dOnR2``,
    ``trivialOnR2``); a ``flipRot2dOnR2`` with a non-default reflection ``axis`` acts by a
    conjugate reflection that groupconv's D_N / O(2) do not use, so it is rejected.

    Raises:
        ValueError: ``obj`` is no escnn group or gspace with a groupconv counterpart.

    Example:
        >>> from groupconv.groups import CyclicGroup
        >>> from groupconv.interop.escnn import escnn_available, to_escnn_gspace
        >>> not escnn_available() or from_escnn_group(to_escnn_gspace(CyclicGroup(8))) == CyclicGroup(8)
        True
    """
    escnn = import_escnn()
    eg = escnn.group
    if _is_gspace(obj):
        G = obj.fibergroup
        if isinstance(G, (eg.DihedralGroup, eg.O2)):
            n = G.rotation_order if isinstance(G, eg.DihedralGroup) else -1
            default = escnn.gspaces.flipRot2dOnR2(n)
            if getattr(obj, "_sg_id", None) != getattr(default, "_sg_id", None):
                raise ValueError(
                    f"gspace must reflect about escnn's default axis (flipRot2dOnR2(N) with axis=pi/2) "
                    f"to match groupconv's mirror torch.flip(x, dims=(-1,)), got {obj!r}"
                )
        obj = G
    if isinstance(obj, eg.CyclicGroup):
        return CyclicGroup(obj.order())
    if isinstance(obj, eg.DihedralGroup):
        return DihedralGroup(obj.rotation_order)
    if isinstance(obj, eg.SO2):
        return SO2()
    if isinstance(obj, eg.O2):
        return O2()
    if isinstance(obj, eg.SO3):
        return SO3()
    if isinstance(obj, eg.Octahedral):
        return OctahedralGroup()
    raise ValueError(
        f"obj must be an escnn C_N, D_N, SO(2), O(2), SO(3), octahedral group or 2-D gspace, got {obj!r}"
    )


def _escnn_planar(group: Group) -> Any:
    if not isinstance(group, (CyclicGroup, DihedralGroup, SO2, O2)):
        raise ValueError(
            f"group must be CyclicGroup, DihedralGroup, SO2 or O2 for element maps, got {group!r}"
        )
    return to_escnn_group(group)


# -- elements ---------------------------------------------------------------------------------
def element_to_escnn(group: Group, g: Tensor) -> Any:
    """escnn ``GroupElement``(s) of groupconv elements ``g`` of C_N, D_N, SO(2) or O(2).

    ``g`` is ``(*batch, *element_shape)``: one element gives one ``GroupElement``, a batch a
    flat list (row-major over the batch). C_N: angle ``2 pi k / N`` -> ``k``; D_N:
    ``(2 pi k / N, m)`` -> ``(f, k)`` with ``f = (1 - m) / 2``; SO(2): radians; O(2):
    ``(theta, m)`` -> ``(f, theta)``.

    Example:
        >>> import math, torch
        >>> from groupconv.groups import DihedralGroup
        >>> from groupconv.interop.escnn import escnn_available
        >>> g = torch.tensor([math.pi / 2, -1.0])
        >>> str(element_to_escnn(DihedralGroup(4), g)) if escnn_available() else '(-, 1[2pi/4])'
        '(-, 1[2pi/4])'
    """
    G = _escnn_planar(group)
    g = group.check_element(check_tensor(g, "g"), "g")
    single = g.dim() == len(group.element_shape)
    flat = g.detach().to("cpu", torch.float64).reshape(-1, *group.element_shape)
    out = []
    if isinstance(group, CyclicGroup):
        for k in group.index(flat).tolist():
            out.append(G.element(int(k), "int"))
    elif isinstance(group, DihedralGroup):
        for i in group.index(flat).tolist():
            out.append(G.element((int(i) // group.n, int(i) % group.n), "int"))
    elif isinstance(group, SO2):
        for t in flat[:, 0].tolist():
            out.append(G.element(t % (2 * math.pi), "radians"))
    else:
        for t, m in flat.tolist():
            out.append(G.element((0 if m > 0 else 1, t % (2 * math.pi)), "radians"))
    return out[0] if single else out


def element_from_escnn(element: Any, dtype: torch.dtype | None = None) -> Tensor:
    """The groupconv element (tensor of its group's ``element_shape``) of an escnn ``GroupElement``.

    The group is ``from_escnn_group(element.group)``: C_N, D_N, SO(2) or O(2); angles are
    wrapped to ``[-pi, pi)``.
    """
    escnn = import_escnn()
    if not isinstance(element, escnn.group.GroupElement):
        raise TypeError(f"element must be an escnn GroupElement, got {type(element).__name__}")
    group = from_escnn_group(element.group)
    kw = {"dtype": dtype or torch.get_default_dtype()}
    if isinstance(group, CyclicGroup):
        return group.elements(**kw)[int(element.to("int")) % group.n]
    if isinstance(group, DihedralGroup):
        f, k = element.to("int")
        return group.elements(**kw)[int(f) * group.n + int(k) % group.n]
    if isinstance(group, SO2):
        return wrap_angle(torch.tensor([float(element.to("radians"))], **kw))
    if isinstance(group, O2):
        f, t = element.to("radians")
        return torch.stack([wrap_angle(torch.tensor(float(t), **kw)), torch.tensor(1.0 - 2 * int(f), **kw)])
    raise ValueError(f"element must belong to an escnn C_N, D_N, SO(2) or O(2), got {element!r}")


def regular_permutation(group: Group) -> Tensor:
    """``perm`` (long, ``(|G|,)``): groupconv's group-axis entry ``i`` is escnn's regular basis
    vector ``perm[i]`` (escnn orders it as ``G.elements``). The identity for C_N and D_N.
    """
    if not isinstance(group, (CyclicGroup, DihedralGroup)):
        raise ValueError(
            f"group must be a CyclicGroup or DihedralGroup (finite, regular fields), got {group!r}"
        )
    G = to_escnn_group(group)
    ours = torch.stack([element_from_escnn(e, torch.float64) for e in G.elements])
    esc_pos = group.index(ours)  # our index of escnn's j-th basis element
    perm = torch.empty_like(esc_pos)
    perm[esc_pos] = torch.arange(esc_pos.numel())
    return perm


# -- regular fields -----------------------------------------------------------------------------
def _group_of(obj: Any) -> Group:
    if isinstance(obj, Group):
        return _fiber(obj)
    return from_escnn_group(obj)


def regular_field_type(gspace_or_group: Any, channels: int) -> Any:
    """escnn ``FieldType`` of ``channels`` regular fields on a gspace (or a groupconv group)."""
    escnn = import_escnn()
    gs = gspace_or_group if _is_gspace(gspace_or_group) else to_escnn_gspace(gspace_or_group)
    return escnn.nn.FieldType(gs, int(channels) * [gs.regular_repr])


def _check_regular_type(field_type: Any, name: str) -> None:
    reg = field_type.gspace.regular_repr.name
    names = [r.name for r in field_type.representations]
    if any(n != reg for n in names):
        raise ValueError(f"{name} must hold only regular fields ({reg}), got {names}")


def regular_field_to_groupconv(x: Any, gspace: Any = None) -> Tensor:
    """escnn regular feature maps ``(B, C |G|, *spatial)`` -> groupconv's ``(B, C, |G|, *spatial)``.

    ``x`` is an escnn ``GeometricTensor`` of regular fields (``gspace`` then optional) or a
    tensor with ``gspace`` an escnn gspace/group or a groupconv C_N / D_N. The result follows
    groupconv's :class:`~groupconv.spaces.GroupGridField` convention on ``group.elements()``.
    """
    escnn = sys.modules.get("escnn.nn")
    if escnn is not None and isinstance(x, escnn.GeometricTensor):
        _check_regular_type(x.type, "x.type")
        gspace = x.type.gspace if gspace is None else gspace
        x = x.tensor
    if gspace is None:
        raise ValueError("gspace must be given when x is a plain tensor, got None")
    group = _group_of(gspace)
    perm = regular_permutation(group).to(check_tensor(x, "x").device)
    n = perm.numel()
    if x.dim() < 3 or x.shape[1] % n:
        raise ValueError(f"x must have shape (B, C * |G|={n} * C, *spatial), got shape {tuple(x.shape)}")
    return x.unflatten(1, (x.shape[1] // n, n))[:, :, perm]


def regular_field_from_groupconv(y: Tensor, gspace: Any) -> Tensor:
    """Inverse of :func:`regular_field_to_groupconv`: ``(B, C, |G|, *sp)`` -> ``(B, C |G|, *sp)``."""
    group = _group_of(gspace)
    perm = regular_permutation(group).to(check_tensor(y, "y").device)
    n = perm.numel()
    if y.dim() < 4 or y.shape[2] != n:
        raise ValueError(f"y must have shape (B, C, |G|={n}, *spatial), got shape {tuple(y.shape)}")
    return y[:, :, torch.argsort(perm)].flatten(1, 2)


# -- layers -------------------------------------------------------------------------------------
def groupconv_from_r2conv(conv: Any, check: bool = True, atol: float = 1e-5) -> torch.nn.Module:
    """A groupconv layer computing the same map as an escnn ``R2Conv`` between regular fields.

    Trivial input fields give a :class:`~groupconv.nn.LiftingConv`, regular ones a
    :class:`~groupconv.nn.GroupConv` (C_N or D_N, default ``flipRot2dOnR2`` axis). Its weight is
    the identity slice of escnn's expanded filter (times ``N_in``, groupconv's Haar ``1/N_in``
    compensated); ``check`` verifies that groupconv's expansion of that slice reproduces the
    whole filter to ``atol`` (escnn's filter lies in groupconv's function class). Input and
    output are related by :func:`regular_field_to_groupconv`.

    Raises:
        ValueError: fields that are not regular/trivial, an unsupported gspace or padding mode,
            or (``check``) a filter that groupconv's expansion does not reproduce.
    """
    from ..nn.group.gconv import GroupConv, LiftingConv

    in_type, out_type = conv.in_type, conv.out_type
    group = from_escnn_group(in_type.gspace)
    if not isinstance(group, (CyclicGroup, DihedralGroup)):
        raise ValueError(
            f"conv must act on a rot2dOnR2(N) or flipRot2dOnR2(N) gspace, got {in_type.gspace!r}"
        )
    _check_regular_type(out_type, "conv.out_type")
    triv = in_type.gspace.trivial_repr.name
    lifting = all(r.name == triv for r in in_type.representations)
    if not lifting:
        _check_regular_type(in_type, "conv.in_type (regular or trivial fields)")
    if getattr(conv, "padding_mode", "zeros") != "zeros" or getattr(conv, "groups", 1) != 1:
        raise ValueError(f"conv must use padding_mode='zeros' and groups=1, got {conv.padding_mode!r}")
    n = group.order
    with torch.no_grad():
        filt, bias = conv.expand_parameters()
        filt, bias = filt.detach().clone(), None if bias is None else bias.detach().clone()
    c_out = out_type.size // n
    c_in = in_type.size if lifting else in_type.size // n
    perm = regular_permutation(group).to(filt.device)
    k = filt.shape[-2:]
    W = filt.view(c_out, n, *filt.shape[1:])[:, perm]
    if not lifting:
        W = W.reshape(c_out, n, c_in, n, *k)[:, :, :, perm]
    kw = {"stride": conv.stride, "padding": conv.padding, "dilation": conv.dilation,
          "bias": bias is not None, "device": filt.device, "dtype": filt.dtype,
          "basis": "pixel"}  # one weight per pixel: escnn's filter is copied entry by entry
    if lifting:
        layer: torch.nn.Module = LiftingConv(c_in, c_out, group, tuple(k), **kw)
    else:
        layer = GroupConv(c_in, c_out, group, tuple(k), **kw)
    with torch.no_grad():
        layer.weight.copy_(W[:, 0] * (1 if lifting else n))
        if bias is not None:
            b = bias.view(c_out, n)
            if check and (b - b[:, :1]).abs().max() > atol:
                raise ValueError("conv's expanded bias must be constant within each regular field")
            layer.bias.copy_(b[:, 0])
        if check:
            target = W.reshape(c_out * n, -1, *k)
            err = (layer.expanded_weight() - target).abs().max().item()
            if err > atol:
                raise ValueError(
                    f"groupconv's expansion does not reproduce conv's filter (max abs error {err:.3g} > "
                    f"atol={atol}): the filter is not equivariant under {group!r} with groupconv's "
                    "conventions"
                )
    return layer


def escnn_filter_from_groupconv(layer: torch.nn.Module) -> tuple[Tensor, Tensor | None]:
    """``(filter, bias)`` of a groupconv C_N/D_N ``LiftingConv``/``GroupConv`` in escnn's layout.

    ``filter`` is ``(C_out |G|, C_in [|G|], *k)`` acting on escnn regular (or trivial) fields,
    as returned by escnn's ``R2Conv.expand_parameters()``; ``torch.nn.functional.conv2d`` with it
    maps escnn feature maps like ``layer`` maps groupconv's.
    """
    group = getattr(layer, "group", None)
    if not isinstance(group, (CyclicGroup, DihedralGroup)) or layer.num_elements != group.order:
        raise ValueError(f"layer must be a C_N/D_N LiftingConv or GroupConv on all elements, got {layer!r}")
    n = group.order
    inv = torch.argsort(regular_permutation(group))
    with torch.no_grad():
        W = layer.expanded_weight().detach()
    c_out, k = layer.out_channels, W.shape[2:]
    W = W.view(c_out, n, *W.shape[1:])[:, inv]
    if getattr(layer, "_lifting", False):
        filt = W.reshape(c_out * n, layer.in_channels, *k)
    else:
        filt = W.reshape(c_out, n, layer.in_channels, n, *k)[:, :, :, inv].reshape(c_out * n, -1, *k)
    bias = None if layer.bias is None else layer.bias.detach().repeat_interleave(n)
    return filt, bias
