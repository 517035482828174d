"""A registry of small, constructible instances of every public module of groupconv.

Used by ``tests/test_module_protocol.py`` to check the ``nn.Module`` protocol (pickle, deepcopy,
``state_dict`` round trips, eval caching, dtype following, ``torch.compile``) uniformly over the
whole library. Every public ``nn.Module`` class in ``groupconv.nn`` and ``groupconv.models``
(exported or still only in its submodule's ``__all__``) needs at least one :class:`ZooEntry`;
a test enforces it.

Sizes are tiny (C4 / D4 / SO(2) with 8 elements, 9x9 images, length-32 sequences, a few
channels) so that the whole protocol suite stays fast on 2 CPU cores.

Each entry has a ``build`` callable (no arguments; the caller seeds the global RNG) and an
``inputs`` callable ``(generator) -> tuple of float32 CPU tensors`` (``()`` for modules without
input). Modules of submodules that do not import are skipped (listed in :data:`IMPORT_ERRORS`).
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import partial

import torch
from torch import Tensor, nn

__all__ = ["ZOO", "IMPORT_ERRORS", "ZooEntry", "cheapest_entry"]

IMPORT_ERRORS: dict[str, str] = {}


def _load(name: str):
    try:
        return importlib.import_module(name)
    except Exception as exc:  # a half-written helper file must not break the whole suite
        IMPORT_ERRORS[name] = f"{type(exc).__name__}: {exc}"
        return None


@dataclass(frozen=True)
class ZooEntry:
    """One constructible instance: ``build()`` (seed first) and ``inputs(generator)``."""

    id: str
    cls: type
    build: Callable[[], nn.Module]
    inputs: Callable[[torch.Generator], tuple[Tensor, ...]]
    notes: str = ""
    tags: frozenset = field(default_factory=frozenset)
    #: inputs of another size, for modules whose lazy state depends on the first input size
    alt_inputs: Callable[[torch.Generator], tuple[Tensor, ...]] | None = None


# ------------------------------------------------------------------------------ inputs
def _rand(*shape: int) -> Callable[[torch.Generator], tuple[Tensor, ...]]:
    def make(gen: torch.Generator) -> tuple[Tensor, ...]:
        return (torch.randn(*shape, generator=gen),)

    return make


def _none(gen: torch.Generator) -> tuple[Tensor, ...]:
    return ()


IMG = _rand(2, 2, 9, 9)  # (B, C, H, W)
IMG8 = _rand(2, 2, 8, 8)  # even size: models with exact 2x2 pooling
SEQ = _rand(2, 2, 32)  # (B, C, L)
IMG_ALT = _rand(1, 2, 12, 12)  # other sizes, for lazily fixed reference sizes
SEQ_ALT = _rand(1, 2, 45)
LAZY_SEQ = {"tags": ("lazy",), "alt_inputs": SEQ_ALT}  # lazy Chang scaling / reference size
LAZY_IMG = {"tags": ("lazy",), "alt_inputs": IMG_ALT}


def _gmap(c: int, n: int, size: int = 9):  # (B, C, |H|, H, W)
    return _rand(2, c, n, size, size)


# ------------------------------------------------------------------------------ registry
ZOO: list[ZooEntry] = []


def _add(module: object, cls_name: str, id_: str, build: Callable[[], nn.Module], inputs,
         notes: str = "", tags: tuple[str, ...] = (), alt_inputs=None) -> None:
    if module is None:
        return
    cls = getattr(module, cls_name, None)
    if cls is None:
        IMPORT_ERRORS[f"{module.__name__}.{cls_name}"] = "class not found"
        return
    ZOO.append(ZooEntry(id_, cls, build, inputs, notes, frozenset(tags), alt_inputs))


def _groups():
    from groupconv.groups import SO2, CyclicGroup, DihedralGroup

    return CyclicGroup(4), DihedralGroup(4), SO2()


C4, D4, SO2_ = _groups()

# ---- groupconv.nn.group.gconv
m_gc = _load("groupconv.nn.group.gconv")
if m_gc is not None:
    _add(m_gc, "LiftingConv", "LiftingConv-C4", lambda: m_gc.LiftingConv(2, 3, C4, 3, padding=1), IMG,
         tags=("cheap",))
    _add(m_gc, "LiftingConv", "LiftingConv-D4", lambda: m_gc.LiftingConv(2, 3, D4, 3), IMG)
    _add(m_gc, "LiftingConv", "LiftingConv-SO2-8-interp",
         lambda: m_gc.LiftingConv(2, 3, SO2_, 3, num_elements=8), IMG)
    _add(m_gc, "LiftingConv", "LiftingConv-SO2-8-siren",
         lambda: m_gc.LiftingConv(2, 3, SO2_, 3, num_elements=8, kernel_net="siren", padding=1), IMG)
    _add(m_gc, "GroupConv", "GroupConv-C4", lambda: m_gc.GroupConv(3, 2, C4, 3, padding=1), _gmap(3, 4))
    _add(m_gc, "GroupConv", "GroupConv-D4", lambda: m_gc.GroupConv(3, 2, D4, 3), _gmap(3, 8))
    _add(m_gc, "GroupConv", "GroupConv-SO2-8-mlp",
         lambda: m_gc.GroupConv(3, 2, SO2_, 3, num_elements=8, kernel_net="mlp", mask="smooth"),
         _gmap(3, 8))

    def _random_grid_gconv():
        from groupconv.sampling import HaarSampler

        return m_gc.GroupConv(3, 2, SO2_, 3, num_elements=8, kernel_net="siren",
                           sampler=HaarSampler())

    _add(m_gc, "GroupConv", "GroupConv-SO2-8-haar", _random_grid_gconv, _gmap(3, 8),
         notes="random output grid in train mode")

# ---- groupconv.nn.continuous.ckconv / flexconv
m_ck = _load("groupconv.nn.continuous.ckconv")
if m_ck is not None:
    _add(m_ck, "CKConv", "CKConv-1d-siren-causal",
         lambda: m_ck.CKConv(2, 3, 1, "siren", causal=True), SEQ, **LAZY_SEQ)
    _add(m_ck, "CKConv", "CKConv-2d-mlp-k5",
         lambda: m_ck.CKConv(2, 3, 2, "mlp", kernel_size=5), IMG, **LAZY_IMG)
    _add(m_ck, "CKConv", "CKConv-1d-magnet-fft",
         lambda: m_ck.CKConv(2, 3, 1, "magnet", conv_method="fft"), SEQ, **LAZY_SEQ)
    _add(m_ck, "SeparableCKConv", "SeparableCKConv-1d",
         lambda: m_ck.SeparableCKConv(2, 3, 1, kernel_size=9), SEQ, **LAZY_SEQ)
m_fx = _load("groupconv.nn.continuous.flexconv")
if m_fx is not None:
    _add(m_fx, "FlexConv", "FlexConv-2d",
         lambda: m_fx.FlexConv(2, 3, 2, kernel_size=9, mask_init_sigma=0.3), IMG, **LAZY_IMG)
    _add(m_fx, "FlexConv", "FlexConv-1d-causal",
         lambda: m_fx.FlexConv(2, 3, 1, causal=True, mask_init_sigma=0.3), SEQ, **LAZY_SEQ)
    _add(m_fx, "SeparableFlexConv", "SeparableFlexConv-1d",
         lambda: m_fx.SeparableFlexConv(2, 3, 1, mask_init_sigma=0.3), SEQ, **LAZY_SEQ)

# ---- groupconv.nn.group.pooling
m_p = _load("groupconv.nn.group.pooling")
if m_p is not None:
    _add(m_p, "GroupMaxPool", "GroupMaxPool", lambda: m_p.GroupMaxPool(), _gmap(2, 4))
    _add(m_p, "GroupMeanPool", "GroupMeanPool", lambda: m_p.GroupMeanPool(), _gmap(2, 4))
    _add(m_p, "SpatialMaxPool", "SpatialMaxPool", lambda: m_p.SpatialMaxPool(2), _gmap(2, 4, 8))
    _add(m_p, "SpatialAvgPool", "SpatialAvgPool", lambda: m_p.SpatialAvgPool(2), _gmap(2, 4, 8))
    _add(m_p, "BlurPool", "BlurPool", lambda: m_p.BlurPool(), _gmap(2, 4, 9))
    _add(m_p, "GlobalInvariantPool", "GlobalInvariantPool", lambda: m_p.GlobalInvariantPool(),
         _gmap(2, 4))
    _add(m_p, "GroupBatchNorm", "GroupBatchNorm", lambda: m_p.GroupBatchNorm(2), _gmap(2, 4))
    _add(m_p, "GroupLayerNorm", "GroupLayerNorm", lambda: m_p.GroupLayerNorm(2), _gmap(2, 4))

# ---- groupconv.nn.group.export (plain-torch forms on flattened (B, C N, H, W) maps)
m_ex = _load("groupconv.nn.group.export")
if m_ex is not None:
    _add(m_ex, "FlatGroupPool", "FlatGroupPool", lambda: m_ex.FlatGroupPool(4), _rand(2, 8, 9, 9))
    _add(m_ex, "FlatGroupLayerNorm", "FlatGroupLayerNorm", lambda: m_ex.FlatGroupLayerNorm(2, 4),
         _rand(2, 8, 9, 9))

# ---- groupconv.nn.attention.self_attention / positional / transformer
m_a = _load("groupconv.nn.attention.self_attention")
if m_a is not None:
    _add(m_a, "LiftingSelfAttention", "LiftingSelfAttention-C4",
         lambda: m_a.LiftingSelfAttention(2, 4, C4, heads=2, patch_size=3), _rand(2, 2, 6, 6))
    _add(m_a, "GroupSelfAttention", "GroupSelfAttention-C4",
         lambda: m_a.GroupSelfAttention(4, 4, C4, heads=2, patch_size=3), _gmap(4, 4, 6))
    _add(m_a, "GroupSelfAttention", "GroupSelfAttention-SO2-8-mlp",
         lambda: m_a.GroupSelfAttention(2, 2, SO2_, num_elements=8, patch_size=3,
                                        group_encoding="mlp"), _gmap(2, 8, 5))
    _add(m_a, "SetSelfAttention", "SetSelfAttention",
         lambda: m_a.SetSelfAttention(4, heads=2, num_tokens=5), _rand(2, 5, 4))
m_pos = _load("groupconv.nn.attention.positional")
if m_pos is not None:
    _add(m_pos, "RelativePositionEncoder", "RelativePositionEncoder",
         lambda: m_pos.RelativePositionEncoder(4, mode="rowcol"), _rand(3, 5, 2))
    _add(m_pos, "GroupRelativeEncoder", "GroupRelativeEncoder-C4-table",
         lambda: m_pos.GroupRelativeEncoder(C4, C4.elements(), 3), _none)
    _add(m_pos, "GroupRelativeEncoder", "GroupRelativeEncoder-SO2-8-mlp",
         lambda: m_pos.GroupRelativeEncoder(SO2_, SO2_.grid(8), 3, mode="mlp"), _none)
m_t = _load("groupconv.nn.attention.transformer")
if m_t is not None:
    _add(m_t, "ChannelLayerNorm", "nn.ChannelLayerNorm", lambda: m_t.ChannelLayerNorm(2),
         _gmap(2, 4))
    _add(m_t, "TransformerBlock", "TransformerBlock-C4",
         lambda: m_t.TransformerBlock(4, C4, heads=2, patch_size=3), _gmap(4, 4, 6))
    _add(m_t, "GroupTransformer", "GroupTransformer-C4",
         lambda: m_t.GroupTransformer(1, 3, C4, channels=4, blocks=(1,), heads=2, patch_size=3),
         _rand(2, 1, 6, 6))

# ---- groupconv.nn.wavelet / models.wavelet
m_w = _load("groupconv.nn.wavelet")
if m_w is not None:
    _add(m_w, "ScaleLiftingConv1d", "ScaleLiftingConv1d",
         lambda: m_w.ScaleLiftingConv1d(2, 3, 5, num_scales=3), SEQ)
    _add(m_w, "ScaleGroupConv1d", "ScaleGroupConv1d-crop",
         lambda: m_w.ScaleGroupConv1d(2, 3, 3, num_scales=3, scale_support=2, crop=True),
         _rand(2, 2, 3, 32))
    _add(m_w, "ScaleMaxPool", "ScaleMaxPool", lambda: m_w.ScaleMaxPool(), _rand(2, 2, 3, 32))
    _add(m_w, "ScaleTimeMaxPool", "ScaleTimeMaxPool", lambda: m_w.ScaleTimeMaxPool(4),
         _rand(2, 2, 3, 32))
    _add(m_w, "ScaleInvariantReadout", "ScaleInvariantReadout",
         lambda: m_w.ScaleInvariantReadout(), _rand(2, 2, 3, 32))
m_wn = _load("groupconv.models.wavelet")
if m_wn is not None:
    _add(m_wn, "WaveletNet", "WaveletNet",
         lambda: m_wn.WaveletNet(1, 3, channels=(3, 4), num_scales=3, lift_kernel_size=7,
                                 crop=True, scale_support=2, pool=2), _rand(2, 1, 64))

# ---- groupconv.nn.group.separable (not exported yet)
m_s = _load("groupconv.nn.group.separable")
if m_s is not None:
    _add(m_s, "SeparableGroupConv", "SeparableGroupConv-C4",
         lambda: m_s.SeparableGroupConv(3, 2, C4, 3, padding=1), _gmap(3, 4))
    _add(m_s, "SeparableGroupConv", "SeparableGroupConv-SO2-8-siren",
         lambda: m_s.SeparableGroupConv(3, 2, SO2_, 3, num_elements=8, kernel_net="siren"),
         _gmap(3, 8))
    _add(m_s, "PointwiseGroupConv", "PointwiseGroupConv-C4",
         lambda: m_s.PointwiseGroupConv(3, 2, C4), _gmap(3, 4))

# ---- groupconv.nn.group.partial (not exported yet)
m_pa = _load("groupconv.nn.group.partial")
if m_pa is not None:
    _add(m_pa, "PartialLiftingConv", "PartialLiftingConv-SO2-8",
         lambda: m_pa.PartialLiftingConv(2, 3, SO2_, 3, num_elements=8, kernel_net="siren"), IMG,
         notes="stochastic in train mode")
    _add(m_pa, "PartialGroupConv", "PartialGroupConv-C4",
         lambda: m_pa.PartialGroupConv(3, 2, C4, 3, padding=1), _gmap(3, 4),
         notes="stochastic in train mode")

    def _group_sequential():
        from groupconv.nn.group.pooling import GlobalInvariantPool, GroupBatchNorm

        return m_pa.GroupSequential(
            m_pa.PartialLiftingConv(1, 3, C4, 3, partial=False), GroupBatchNorm(3), nn.ReLU(),
            m_pa.PartialGroupConv(3, 2, C4, 3), GlobalInvariantPool())

    _add(m_pa, "GroupSequential", "GroupSequential-C4", _group_sequential, _rand(2, 1, 9, 9))

# ---- groupconv.nn.attention.attentive (not exported yet)
m_at = _load("groupconv.nn.attention.attentive")
if m_at is not None:
    _add(m_at, "GroupChannelAttention", "GroupChannelAttention-C4",
         lambda: m_at.GroupChannelAttention(4, C4), _gmap(4, 4))
    _add(m_at, "GroupSpatialAttention", "GroupSpatialAttention-C4",
         lambda: m_at.GroupSpatialAttention(C4, 3), _gmap(2, 4))
    _add(m_at, "FeatureAttention", "FeatureAttention-C4",
         lambda: m_at.FeatureAttention(4, C4, spatial_kernel_size=3), _gmap(4, 4))
    _add(m_at, "AttentiveLiftingConv", "AttentiveLiftingConv-C4",
         lambda: m_at.AttentiveLiftingConv(2, 4, C4, 3, padding=1, spatial_kernel_size=3), IMG)
    _add(m_at, "AttentiveGroupConv", "AttentiveGroupConv-D4-feature",
         lambda: m_at.AttentiveGroupConv(2, 4, D4, 3, padding=1, form="feature",
                                         spatial_kernel_size=3), _gmap(2, 8))
    _add(m_at, "AttentiveGroupConv", "AttentiveGroupConv-C4-full",
         lambda: m_at.AttentiveGroupConv(2, 4, C4, 3, padding=1, spatial_kernel_size=3),
         _gmap(2, 4))
    _add(m_at, "CoAttentiveGroupConv", "CoAttentiveGroupConv-C4",
         lambda: m_at.CoAttentiveGroupConv(4, 2, C4, 3, padding=1, heads=2), _gmap(4, 4))

# ---- groupconv.models.* (not exported yet)
m_b = _load("groupconv.models.baselines")
if m_b is not None:
    _conv3 = partial(nn.Conv1d, kernel_size=3, padding=1)  # picklable conv factory
    _add(m_b, "CausalConv1d", "CausalConv1d", lambda: m_b.CausalConv1d(2, 3, 3, dilation=2), SEQ)
    _add(m_b, "TCNBlock", "TCNBlock", lambda: m_b.TCNBlock(2, 4, _conv3), SEQ)
    _add(m_b, "SequenceReadout", "SequenceReadout", lambda: m_b.SequenceReadout(2, 3, "mean"), SEQ)
    _add(m_b, "TCN", "TCN", lambda: m_b.TCN(2, 3, hidden_channels=4), SEQ)
    _add(m_b, "ConvNet", "ConvNet",
         lambda: m_b.ConvNet(2, 3, channels=4, num_layers=2, norm="batch"), SEQ)
m_ckc = _load("groupconv.models.ckcnn")
if m_ckc is not None:
    _add(m_ckc, "CKCNN", "CKCNN", lambda: m_ckc.CKCNN(2, 3, hidden_channels=4, num_blocks=1), SEQ,
         **LAZY_SEQ)
    _add(m_ckc, "CKCNN", "CKCNN-flex-magnet",
         lambda: m_ckc.CKCNN(2, 3, hidden_channels=4, num_blocks=1, conv="flex",
                             kernel_net="magnet", readout="mean"), SEQ, **LAZY_SEQ)
m_cc = _load("groupconv.models.ccnn")
if m_cc is not None:
    _add(m_cc, "CCNN", "CCNN-1d", lambda: m_cc.CCNN(2, 3, hidden_channels=4, num_blocks=1), SEQ,
         **LAZY_SEQ)
    _add(m_cc, "CCNNBlock", "CCNNBlock",
         lambda: m_cc.CCNNBlock(4, partial(nn.Conv1d, kernel_size=3, padding=1)), _rand(2, 4, 32))
m_fn = _load("groupconv.models.flexnet")
if m_fn is not None:
    _add(m_fn, "FlexNet", "FlexNet-2d",
         lambda: m_fn.FlexNet(2, 3, hidden_channels=4, num_blocks=1, kernel_size=9), IMG,
         **LAZY_IMG)
    _add(m_fn, "ResNetBlock", "ResNetBlock",
         lambda: m_fn.ResNetBlock(2, 4, partial(nn.Conv2d, kernel_size=3, padding=1)), IMG)
m_g = _load("groupconv.models.gcnn")
if m_g is not None:
    _add(m_g, "GCNN", "GCNN-C4",
         lambda: m_g.GCNN(2, 3, C4, channels=(3, 3), pool_after=(0,)), IMG8)
    _add(m_g, "GCNN", "GCNN-SO2-8-siren",
         lambda: m_g.GCNN(2, 3, SO2_, channels=(3, 3), num_elements=8, kernel_net="siren"), IMG8)
    _add(m_g, "Z2CNN", "Z2CNN", lambda: m_g.Z2CNN(2, 3, channels=(3, 3), pool_after=(0,)), IMG8)
m_ag = _load("groupconv.models.attentive")
if m_ag is not None:
    _add(m_ag, "AttentiveGCNN", "AttentiveGCNN-C4",
         lambda: m_ag.AttentiveGCNN(2, 3, C4, channels=(3, 3), pool_after=(0,),
                                    spatial_kernel_size=3), IMG8)


m_ckg = _load("groupconv.models.ckgresnet")
if m_ckg is not None:
    _add(m_ckg, "CKGResBlock", "CKGResBlock-SO2-4",
         lambda: m_ckg.CKGResBlock(2, 3, SO2_, 3, conv_kwargs={"num_elements": 4,
                                                               "kernel_net": "siren"}),
         _gmap(2, 4, 6))
    _add(m_ckg, "CKGResNet", "CKGResNet-SO2-8",
         lambda: m_ckg.CKGResNet(2, 3, hidden_channels=3, num_blocks=1, kernel_size=3), IMG8)

m_pg = _load("groupconv.models.partial_gcnn")
if m_pg is not None:
    _add(m_pg, "PartialGCNN", "PartialGCNN-SO2",
         lambda: m_pg.PartialGCNN(2, 3, SO2_, channels=(3, 3), pool_after=(0,)), IMG8,
         notes="stochastic in train mode")


# ---- groupconv.nn.group.points
m_pts = _load("groupconv.nn.group.points")
if m_pts is not None:
    def _lifted(group_name: str, n: int = 10, frames: int = 2, channels: int = 2):
        def make(gen: torch.Generator) -> tuple[Tensor, ...]:
            from groupconv.functional.points import lift_points
            from groupconv.groups import SE2, SE3

            G = {"SE2": SE2(), "SE3": SE3()}[group_name]
            x = torch.randn(2, n, G.d, generator=gen)
            return lift_points(G, x, num_frames=frames), torch.randn(2, n, frames, channels, generator=gen)

        return make

    def _point_conv(group_name: str, **kw):
        from groupconv.groups import SE2, SE3

        G = {"SE2": SE2(), "SE3": SE3()}[group_name]
        return m_pts.PointGroupConv(G, 2, 3, num_neighbors=4, **kw)

    # lazy: the one-shot Chang scaling is measured on the first batch (alt: another cloud size)
    _add(m_pts, "PointGroupConv", "PointGroupConv-SE2-fps", lambda: _point_conv("SE2", num_samples=5),
         _lifted("SE2"), tags=("lazy",), alt_inputs=_lifted("SE2", n=13))
    _add(m_pts, "PointGroupConv", "PointGroupConv-SE3-radius", lambda: _point_conv("SE3", radius=1.5),
         _lifted("SE3"), tags=("lazy",), alt_inputs=_lifted("SE3", n=7))


# ---- groupconv.nn.attention.point_attention
m_patt = _load("groupconv.nn.attention.point_attention")
if m_patt is not None and m_pts is not None:
    def _lifted_points(group_name: str, n: int = 10, frames: int = 2, channels: int = 2):
        def make(gen: torch.Generator) -> tuple[Tensor, ...]:
            elements, features = _lifted(group_name, n, frames, channels)(gen)
            return elements, features[:, :, 0]  # per-point features for the lifting layer

        return make

    def _point_attention(cls_name: str, group_name: str, **kw):
        from groupconv.groups import SE2, SE3

        G = {"SE2": SE2(), "SE3": SE3()}[group_name]
        return getattr(m_patt, cls_name)(G, 2, 4, heads=2, num_neighbors=4, **kw)

    _add(m_patt, "LiftingPointSelfAttention", "LiftingPointSelfAttention-SE2-fps",
         lambda: _point_attention("LiftingPointSelfAttention", "SE2", num_samples=5), _lifted_points("SE2"))
    _add(m_patt, "PointSelfAttention", "PointSelfAttention-SE3-radius",
         lambda: _point_attention("PointSelfAttention", "SE3", radius=1.5), _lifted("SE3"))


# ---- groupconv.models.point_resnet
m_pres = _load("groupconv.models.point_resnet")
if m_pres is not None and m_pts is not None:
    def _point_resnet(head: str):
        from groupconv.groups import SE2

        samples = (None, 5) if head == "invariant" else None
        return m_pres.PointGResNet(SE2(), 2, 3, channels=4, num_blocks=2, num_neighbors=4,
                                   num_samples=samples, head=head, kernel_channels=4, kernel_hidden=8)

    def _block():
        from groupconv.groups import SE2

        return m_pres.PointResBlock(SE2(), 3, num_neighbors=4, num_samples=5, kernel_hidden=8)

    _add(m_pres, "PointResBlock", "PointResBlock-SE2-fps", _block, _lifted("SE2", channels=3))
    for kind in ("batch", "layer"):
        mask = (lambda gen: (torch.randn(2, 6, 2, 3, generator=gen), torch.ones(2, 6, dtype=torch.bool)))
        _add(m_pres, "MaskedNorm", f"MaskedNorm-{kind}", partial(m_pres.MaskedNorm, 3, kind), mask)
    _add(m_pres, "PointGResNet", "PointGResNet-SE2-invariant", lambda: _point_resnet("invariant"),
         lambda gen: (torch.randn(2, 10, 2, generator=gen), torch.randn(2, 10, 2, generator=gen)))
    _add(m_pres, "PointGResNet", "PointGResNet-SE2-vectors", lambda: _point_resnet("equivariant"),
         lambda gen: (torch.randn(2, 10, 2, generator=gen), torch.randn(2, 10, 2, generator=gen)))


# ---- groupconv.models.point_dynamics
m_pdyn = _load("groupconv.models.point_dynamics")
if m_pdyn is not None and m_pts is not None:
    def _point_dynamics(group_name: str):
        from groupconv.groups import SE2, Translations

        G = SE2() if group_name == "SE2" else Translations(2)
        return m_pdyn.PointDynamicsNet(G, 2, channels=4, num_blocks=1, num_neighbors=4, kernel_channels=4,
                                       kernel_hidden=8)

    def _particles(gen: torch.Generator) -> tuple[Tensor, ...]:
        return tuple(torch.randn(2, 6, 2, generator=gen) for _ in range(3))  # positions, velocities, scalars

    for _g in ("SE2", "T2"):
        _add(m_pdyn, "PointDynamicsNet", f"PointDynamicsNet-{_g}", partial(_point_dynamics, _g), _particles)
    _add(m_pdyn, "MLPDynamics", "MLPDynamics", partial(m_pdyn.MLPDynamics, 6, 2, hidden=8), _particles)


def cheapest_entry() -> ZooEntry:
    """The cheapest layer (a C4 LiftingConv), for the fast compile smoke test."""
    return next(e for e in ZOO if "cheap" in e.tags)
