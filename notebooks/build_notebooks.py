"""Generate the tutorial notebooks ``notebooks/*.ipynb`` (outputs stripped) with nbformat.

Edit the cells here, then run ``python notebooks/build_notebooks.py``. Each notebook reads
``GROUPCONV_FAST=1`` to use tiny sizes so that CI executes it in seconds
(``tests/test_docs.py``). Notebooks whose modules do not exist yet are not generated.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

import nbformat
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook

HERE = Path(__file__).resolve().parent

SETUP = """\
import math
import os

import matplotlib.pyplot as plt  # the kernel's inline backend: plots are cell outputs
import torch

FAST = os.environ.get("GROUPCONV_FAST") == "1"   # tiny sizes for CI
torch.manual_seed(0)
print(f"fast mode: {FAST}, math.pi = {math.pi:.4f}")"""


def split_statements(src: str) -> str:
    """One statement per line in the notebook: ``a; b`` -> two lines at the same indentation."""
    out = []
    for line in src.splitlines():
        indent = line[: len(line) - len(line.lstrip())]
        parts = line.strip().split("; ") if "; " in line and "#" not in line else [line.strip()]
        out += [indent + p for p in parts]
    return "\n".join(out)


def cell_sources(cells: list[tuple[str, str]]) -> list[str]:
    return [src if kind == "md" else split_statements(src) for kind, src in cells]


def nb(cells: list[tuple[str, str]]) -> nbformat.NotebookNode:
    book = new_notebook()
    book.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    book.metadata["language_info"] = {"name": "python"}
    book.cells = [new_markdown_cell(src) if kind == "md" else new_code_cell(src)
                  for (kind, _), src in zip(cells, cell_sources(cells))]
    for i, cell in enumerate(book.cells):
        cell.id = f"cell-{i:02d}"   # deterministic ids: regenerating gives no diff
    return book


GROUPS_TOUR = [
    ("md", "# A tour of groups and actions\n\nGroups in groupconv are small frozen objects; their "
           "elements are batched tensors `(*batch, *element_shape)`. This notebook shows products, "
           "inverses, `exp`/`log`, actions on points and images, discretisations of SO(2), and the "
           "`check_group` table."),
    ("code", SETUP),
    ("md", "## Elements are tensors\n\nAn SO(2) element is an angle `(..., 1)`; a D4 element is "
           "`(angle, mirror)`; an SO(3) element a rotation matrix."),
    ("code", """\
from groupconv.groups import SE2, SO2, SO3, CyclicGroup, DihedralGroup

G = SO2()
g = G.sample(4, generator=torch.Generator().manual_seed(0))
h = G.exp(torch.tensor([[math.pi / 2]]))
print("g =", g.squeeze(-1))
print("g h =", G.product(g, h).squeeze(-1))          # broadcasting over the batch
print("g g^-1 =", G.product(g, G.inverse(g)).squeeze(-1))
print("D4 elements (angle, mirror):\\n", DihedralGroup(4).elements())"""),
    ("md", "## exp and log\n\n`log(exp(X)) = X` inside the principal domain; the SO(3) log is guarded "
           "near the identity and near angle π."),
    ("code", """\
R3 = SO3()
X = torch.randn(1000 if not FAST else 50, 3)
X = X / X.norm(dim=-1, keepdim=True) * torch.rand(X.shape[0], 1) * (math.pi - 1e-3)
err = (R3.log(R3.exp(X)) - X).norm(dim=-1)
print(f"SO(3) log(exp(X)) max error: {err.max():.2e}")
plt.figure(figsize=(4, 2.5))
plt.semilogy(X.norm(dim=-1), err + 1e-18, ".", ms=3)
plt.xlabel("|X| (rotation angle)"); plt.ylabel("round-trip error"); plt.title("SO(3) exp/log")
plt.tight_layout(); plt.show()"""),
    ("md", "## Actions on points and on images\n\nPoints are in tensor axis order `(row, col)`; +π/2 "
           "acts on an image exactly as `torch.rot90(x, 1, dims=(-2, -1))`. Fields apply the action "
           "to sampled signals."),
    ("code", """\
from groupconv.spaces import ImageField

print(G.act(h, torch.tensor([1.0, 0.0])))            # (row 1, col 0) -> (0, 1)
size = 17 if FAST else 33
yy, xx = torch.meshgrid(torch.linspace(-1, 1, size), torch.linspace(-1, 1, size), indexing="ij")
img = (torch.exp(-((yy + 0.3) ** 2 + (xx - 0.1) ** 2) / 0.05) + (xx > 0.4) * (yy < 0)).float()[None, None]
D4 = DihedralGroup(4)
field = ImageField(D4)
fig, axes = plt.subplots(1, 8, figsize=(12, 1.8))
for ax, g4 in zip(axes, D4.elements()):
    ax.imshow(field.transform(img, g4)[0, 0]); ax.axis("off")
    ax.set_title(f"{math.degrees(g4[0]):.0f}°, m={int(g4[1])}", fontsize=8)
plt.show()
assert torch.equal(field.transform(img, D4.elements()[1]), torch.rot90(img, 1, dims=(-2, -1)))"""),
    ("md", "## Discretising SO(2)\n\nA uniform grid, a stratified grid (the grid shifted by one random "
           "offset) and Haar samples; random grids make a network equivariant in expectation."),
    ("code", """\
from groupconv.sampling import GridSampler, HaarSampler, StratifiedSampler

gen = torch.Generator().manual_seed(1)
fig, axes = plt.subplots(1, 3, figsize=(9, 3), subplot_kw={"aspect": "equal"})
samplers = [("grid", GridSampler()), ("stratified", StratifiedSampler()), ("Haar", HaarSampler())]
for ax, (name, s) in zip(axes, samplers):
    a = s(G, 8, generator=gen).reshape(-1)
    ax.scatter(torch.cos(a), torch.sin(a)); ax.set_title(name); ax.set_xlim(-1.2, 1.2); ax.set_ylim(-1.2, 1.2)
plt.show()"""),
    ("md", "## Checking a group\n\n`check_group` runs the axioms, exp/log round trips, the action "
           "homomorphism and Haar statistics as Hypothesis properties and returns a table."),
    ("code", """\
from groupconv.testing import check_group

for group in (CyclicGroup(4), SE2()):
    report = check_group(group, dtypes=(torch.float64,), max_examples=5 if FAST else 25)
    print(report, "\\n")"""),
]

CONTINUOUS_KERNELS = [
    ("md", "# Continuous kernels\n\nA continuous kernel is a small network evaluated at relative "
           "positions. Different networks have different spectral biases; FlexConv multiplies the "
           "kernel by a learnable Gaussian mask, learning the kernel size."),
    ("code", SETUP),
    ("md", "## Fit a kernel: MLP vs SIREN vs MAGNet"),
    ("code", """\
from groupconv.kernels import MLP, SIREN, MAGNet, fit_kernel, linspace_grid

steps = 30 if FAST else 1000
grid = 65 if FAST else 257
nets = {"MLP": MLP(1, 1, 32, 3), "SIREN": SIREN(1, 1, 32, 3, omega_0=30.0), "MAGNet": MAGNet(1, 1, 32, 3)}
coords = linspace_grid(grid)
fig, axes = plt.subplots(1, 3, figsize=(12, 2.8), sharey=True)
for ax, (name, net) in zip(axes, nets.items()):
    res = fit_kernel(net, "gabor", coords=coords, steps=steps, lr=1e-2)
    ax.plot(coords[:, 0], res.prediction.reshape(-1).detach(), label=name)
    ax.set_title(f"{name}: MSE {res.final_mse:.1e}")
plt.show()"""),
    ("md", "## FlexConv learns its kernel size\n\nThe Gaussian mask starts small; trained on a "
           "task that needs long-range context, its width grows."),
    ("code", """\
from groupconv.nn import FlexConv

L = 64 if FAST else 256
layer = FlexConv(1, 1, data_dim=1, kernel_net="magnet")
opt = torch.optim.Adam(layer.parameters(), lr=1e-2)
x = torch.randn(16, 1, L)
target = torch.roll(x, L // 4, dims=-1)             # needs a long kernel: a shift by L/4
sigmas = []
for _step in range(20 if FAST else 300):
    loss = torch.nn.functional.mse_loss(layer(x), target)
    opt.zero_grad(); loss.backward(); opt.step()
    sigmas.append(float(layer.mask.effective_sigma().detach()[0]))
print("final loss", loss.item())
plt.figure(figsize=(4, 2.5)); plt.plot(sigmas); plt.xlabel("step"); plt.ylabel("mask sigma"); plt.show()"""),
]

VERIFY = [
    ("md", "# Building and verifying a G-CNN\n\n`assert_equivariant` compares `f(g x)` with "
           "`g f(x)` for every element that acts exactly on the grid, and reports exact and "
           "approximate checks separately."),
    ("code", SETUP),
    ("md", "## One layer, its fields, its report"),
    ("code", """\
from groupconv.groups import CyclicGroup, DihedralGroup
from groupconv.nn.group.gconv import GroupConv, LiftingConv
from groupconv.nn.group.pooling import GlobalInvariantPool, GroupBatchNorm
from groupconv.spaces import ImageField
from groupconv.testing import EquivarianceError, assert_equivariant, assert_invariant

C4 = CyclicGroup(4)
lift = LiftingConv(1, 4, C4, kernel_size=3, padding="same").eval()
print(lift.in_field, "->", lift.out_field)
print(assert_equivariant(lift, torch.randn(2, 1, 15, 15)))"""),
    ("md", "## An approximate check, and a failure\n\nC8 is exact only at multiples of 90°. At 45° "
           "the check is approximate (relative L2 error inside the disc) and may fail its budget: "
           "the error says which element and by how much."),
    ("code", """\
C8 = CyclicGroup(8)
lift8 = LiftingConv(1, 4, C8, kernel_size=5, padding="same").eval()
smooth = torch.nn.functional.avg_pool2d(torch.randn(1, 1, 33, 33), 5, 1, 2)
try:
    print(assert_equivariant(lift8, smooth, elements=C8.elements()[:3]))
except EquivarianceError as err:
    print(err)"""),
    ("md", "## A D4 G-CNN on rotated digits\n\nTrained for a few steps on scikit-learn's bundled 8×8 "
           "digits (rotated), then checked: invariance holds at initialisation and after training."),
    ("code", """\
from groupconv.data import rotated_digits

splits = rotated_digits()
xtr, ytr = splits.train.tensors if hasattr(splits.train, "tensors") else splits.train
n = 256 if FAST else len(xtr)
xtr, ytr = xtr[:n].float(), ytr[:n].long()
D4 = DihedralGroup(4)
ch = 8 if FAST else 16
net = torch.nn.Sequential(
    LiftingConv(1, ch, D4, 3, padding="same"), GroupBatchNorm(ch), torch.nn.ReLU(),
    GroupConv(ch, ch, D4, 3, padding="same"), GroupBatchNorm(ch), torch.nn.ReLU(),
    GlobalInvariantPool(), torch.nn.Linear(ch, 10),
)
opt = torch.optim.Adam(net.parameters(), lr=3e-3)
losses = []
for _step in range(15 if FAST else 300):
    idx = torch.randint(0, n, (64,))
    loss = torch.nn.functional.cross_entropy(net(xtr[idx]), ytr[idx])
    opt.zero_grad(); loss.backward(); opt.step(); losses.append(loss.item())
plt.figure(figsize=(4, 2.5)); plt.plot(losses); plt.xlabel("step"); plt.ylabel("loss"); plt.show()
net.eval()
print(assert_invariant(net, xtr[:4], in_field=ImageField(D4)))"""),
]

ATTENTION = [
    ("md", "# Attention maps on groups\n\nGroup self-attention computes one attention map per pixel "
           "and per group element. Rotating the input rotates the maps and rolls them along the group axis."),
    ("code", SETUP),
    ("code", """\
from groupconv.groups import CyclicGroup
from groupconv.nn.attention.self_attention import LiftingSelfAttention
from groupconv.testing import assert_equivariant

C4 = CyclicGroup(4)
size = 9 if FAST else 17
lift = LiftingSelfAttention(1, 8, C4, heads=1, patch_size=5).eval()
x = torch.zeros(1, 1, size, size); x[0, 0, size // 2, size // 2 + 2] = 1.0; x[0, 0, size // 2 - 1, :] += 0.5
print(assert_equivariant(lift, x))
y, maps = lift(x, return_attention=True)
print(maps.shape)            # (B, heads, N, H, W, k, k)"""),
    ("md", "The maps of the centre pixel, for each element of C4, on the input and on the rotated input:"),
    ("code", """\
_, maps_rot = lift(torch.rot90(x, 1, dims=(-2, -1)), return_attention=True)
c = size // 2
fig, axes = plt.subplots(2, 4, figsize=(8, 4))
for i in range(4):
    axes[0, i].imshow(maps[0, 0, i, c, c].detach()); axes[0, i].set_title(f"x, h{i}", fontsize=8)
    axes[1, i].imshow(maps_rot[0, 0, i, c, c].detach()); axes[1, i].set_title(f"rot90 x, h{i}", fontsize=8)
for ax in axes.flat:
    ax.axis("off")
plt.tight_layout(); plt.show()
# rotating the input: the map of element h_i is the rotated map of h_{i-1}
expected = torch.rot90(torch.roll(maps[0, 0, :, c, c], 1, dims=0), 1, dims=(-2, -1))
print("max deviation:", (maps_rot[0, 0, :, c, c] - expected).abs().max().item())"""),
]

#: file name -> (cells, modules it needs)
PARTIAL = [
    ("md", "# Partial equivariance: 6 vs rotated 6\n\nA network exactly invariant to 180-degree "
           "rotations gives a 6 and its rotated copy the same prediction, so it cannot beat 50% on "
           "\"6 vs rotated 6\". A partial G-CNN (Romero & Lohit, NeurIPS 2022) learns, per group "
           "convolution, the extent `u` of the rotations it integrates over (`[-pi u, pi u)`). "
           "This notebook trains `PartialGCNN` on the `six-rotated` experiment, plots the learned "
           "extents over the epochs and compares it with the fully equivariant control "
           "(see the how-to guide *Partial equivariance*)."),
    ("code", SETUP),
    ("md", "## The data\n\nscikit-learn's digit 6 (class 0) and its exact `rot90(., 2)` (class 1); "
           "`info['pair']` links each image to its partner."),
    ("code", """\
from groupconv.data import six_vs_rotated_six

data = six_vs_rotated_six(size=16, seed=0)
x, y = data.train.tensors
j = data.info["pair"]["train"]
print(len(data.train), "training images, classes", y[:6].tolist())
assert torch.equal(x[j], torch.rot90(x, 2, dims=(-2, -1)))
fig, axes = plt.subplots(1, 4, figsize=(6, 1.8))
for ax, i in zip(axes, [0, int(j[0]), 1, int(j[1])]):
    ax.imshow(x[i, 0], cmap="gray")
    ax.set_title(f"class {int(y[i])}")
    ax.axis("off")"""),
    ("md", "## Train the partial model and the control\n\nThe registered experiment builds a "
           "`PartialGCNN` on `SO2()` (8 samples, SIREN kernels, a learned extent per group conv), "
           "the optimiser groups (a separate learning rate for the extents), the monotonic-decay "
           "penalty and a `PartialMonitor` that records the extents after every epoch. "
           "`fully_equivariant=True` builds the control: the same network, every layer fully "
           "equivariant."),
    ("code", """\
from groupconv.experiments import fit, get_experiment

exp = get_experiment("six-rotated")
EPOCHS = 9 if FAST else 30   # the default configuration trains 30 epochs
if FAST:
    torch.set_num_threads(1)   # small models: one thread is faster on a small shared machine


def train(fully_equivariant, epochs=EPOCHS):
    cfg = exp.config(overrides={"epochs": epochs, "fully_equivariant": fully_equivariant,
                                "print_extents": False})
    torch.manual_seed(cfg["seed"])
    model, splits, kw = exp.build(cfg)
    result = fit(model, splits, progress=False, **kw)
    return model, result, kw["callbacks"][0].history   # the PartialMonitor's per-epoch extents


partial_model, partial_res, history = train(False)
control_model, control_res, _ = train(True, 3 if FAST else EPOCHS)   # it cannot move from 50%
for label, res in [("partial", partial_res), ("control", control_res)]:
    print(f"{label:8s} test accuracy {100 * res.test_metric:.1f}% (epoch {res.best_epoch})")"""),
    ("md", "## The learned extents over the epochs\n\nThe lifting layer (`conv0`) stays fully "
           "equivariant; each group conv learns its own `u`. A 180-degree rotation leaves the "
           "support once `u <= 0.5`. With the full configuration (30 epochs) the run in the "
           "docs reached `u = 0.553` (conv1) and `0.666` (conv2) at 100% test accuracy."),
    ("code", """\
epochs = [h["epoch"] for h in history]
fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(9, 3))
for name in history[0]["extents"]:
    if history[0]["extents"][name]["partial"]:
        ax1.plot(epochs, [h["extents"][name]["extent"] for h in history], "o-", label=name)
ax1.axhline(0.5, color="gray", ls=":", lw=1)
ax1.set(xlabel="epoch", ylabel="extent u", title="learned rotation extents")
ax1.legend()
for label, res in [("partial", partial_res), ("fully equivariant", control_res)]:
    ax2.plot([r.epoch for r in res.history], [100 * r.val_metric for r in res.history], "o-", label=label)
ax2.set(xlabel="epoch", ylabel="validation accuracy (%)", ylim=(40, 102), title="6 vs rotated 6")
ax2.legend()
plt.tight_layout()
learned = partial_model.extents()
print({name: round(info["extent"], 3) for name, info in learned.items() if info["partial"]})"""),
    ("md", "## The control is stuck at 50%, by construction\n\nThe fully equivariant model is "
           "exactly invariant to the 90-degree rotations (the verification kit checks it), so it "
           "predicts both members of every pair alike. Switching the *trained* partial model to "
           "fully equivariant (`set_fully_equivariant(True)`, same parameters) does the same to it."),
    ("code", """\
from groupconv.experiments.partial_experiments import pair_agreement
from groupconv.testing import assert_invariant

xt = data.test.tensors[0][:8]
control_model.eval()
assert all(r.exact for r in assert_invariant(control_model, xt).rows)
print(f"control: pairs predicted alike {100 * pair_agreement(control_model, data):.0f}%")
print(f"partial: pairs predicted alike {100 * pair_agreement(partial_model, data):.0f}%")
partial_model.set_fully_equivariant(True)
print(f"partial switched to full: pairs predicted alike {100 * pair_agreement(partial_model, data):.0f}%")
partial_model.set_fully_equivariant(False)"""),
]


POINTS = [
    ("md", "# Point clouds: group convolutions off the grid\n\nA point cloud has no grid. "
           "`PointGroupConv` lifts every point to group elements and convolves with a kernel net on "
           "`u^-1 v` (LieConv-style), so a network is exactly equivariant for *every* element of "
           "SE(2)/SE(3), not only for a discrete subgroup. This notebook looks at the data "
           "(digits and 3-D Tetris as point clouds), checks a `PointGResNet` with the verification "
           "kit, watches its vector head rotate, puts a custom group on points and trains the "
           "Tetris experiment."),
    ("code", SETUP),
    ("md", "## Digits as point clouds\n\nThe bright pixels of scikit-learn's 8x8 digits become 2-D "
           "points with their intensity as a feature, rotated by random angles. Inputs are packed "
           "`(B, P, 2 + 1 + 1)`: coordinates, feature, a 0/1 mask column (padding at the end)."),
    ("code", """\
from groupconv.data.points import digit_point_clouds, tetris_3d, unpack_points

digits = digit_point_clouds(train_fraction=0.1)
pts, feats, mask = unpack_points(digits.train.tensors[0][:4], 2)
fig, axes = plt.subplots(1, 4, figsize=(10, 2.6))
for ax, p, f, m, y in zip(axes, pts, feats, mask, digits.train.tensors[1]):
    ax.scatter(p[m, 1], -p[m, 0], c=f[m, 0], cmap="viridis", s=40)
    ax.set(title=f"label {int(y)}", aspect="equal", xticks=[], yticks=[])
plt.tight_layout()
print(digits.summary())"""),
    ("md", "## A point-cloud G-ResNet, checked with the kit\n\n`PointGResNet` = lift (frames pointing "
           "at nearest neighbours, so `lift(g x) = g lift(x)` exactly) -> `PointGroupConv` -> residual "
           "blocks (farthest-point subsampling) -> an invariant head. `PointCloudField(G, features=2)` "
           "moves the coordinates by `G.act` and carries the feature and mask columns along; "
           "`TokenField` permutes the point order."),
    ("code", """\
from groupconv.groups import SE2, Permutations
from groupconv.models import PointGResNet
from groupconv.spaces import PointCloudField, TokenField, TrivialField
from groupconv.testing import assert_equivariant, assert_invariant

G = SE2()
net = PointGResNet(G, 1, 10, channels=8, num_blocks=2, num_samples=(None, 12), num_neighbors=6,
                   dtype=torch.float64).eval()


def classify(x):   # packed clouds -> logits
    return net(*unpack_points(x, 2))


x = digits.val.tensors[0][:4].double()
elements = G.sample(4, dtype=torch.float64)
report = assert_invariant(classify, x, elements, in_field=PointCloudField(G, features=2))
print(report)
n = int(x[..., -1].sum(1).min())   # the first n points of every cloud are real points
perms = TokenField(Permutations(n))
assert_equivariant(classify, x[:, :n], perms.exact_elements(), in_field=perms, out_field=TrivialField())
print("invariant to every sampled SE(2) element and to permutations of the point order")"""),
    ("md", "## An equivariant head: vectors that rotate with the cloud\n\n`head=\"equivariant\"` maps "
           "each frame's features to vectors in the frame's local coordinates and rotates them to "
           "the world by the frame (velocities, forces). Rotate the input and the arrows turn with it."),
    ("code", """\
vec = PointGResNet(G, 1, 1, channels=8, num_blocks=1, num_neighbors=6, head="equivariant",
                   dtype=torch.float64).eval()
p, f, m = unpack_points(x[:1], 2)
g = G.combine(torch.zeros(2, dtype=torch.float64), torch.tensor([math.pi / 3], dtype=torch.float64))
with torch.no_grad():
    v = vec(p, f, m)[0, :, 0]
    v_rot = vec(G.act(g, p), f, m)[0, :, 0]
R = G.matrix(g)
print("max |v(g x) - R v(x)| =", float((v_rot - v @ R.T)[m[0]].abs().max()))
fig, axes = plt.subplots(1, 2, figsize=(7, 3.2))
for ax, pts_, vv, title in ((axes[0], p[0], v, "x"), (axes[1], G.act(g, p)[0], v_rot, "g x (60 degrees)")):
    q = pts_[m[0]]
    ax.quiver(q[:, 1], -q[:, 0], vv[m[0], 1], -vv[m[0], 0], color="C3")
    ax.scatter(q[:, 1], -q[:, 0], s=10)
    ax.set(title=title, aspect="equal", xticks=[], yticks=[])
plt.tight_layout()"""),
    ("md", "## A custom group on points\n\nAny semidirect product `R^d ⋊ H` works, including a "
           "custom `MatrixLieGroup`: here SO(2) built from its Lie-algebra generator only "
           "(`groupconv.groups.custom_examples`). Neighbour frames need a built-in SO(2)/SO(3), so "
           "the lift samples `H` (`frames=\"sample\"`, Haar): the *convolution* is still exactly "
           "equivariant on lifted elements (`LiftedPointField` moves them by the group product)."),
    ("code", """\
from groupconv.functional.points import lift_points
from groupconv.groups import SemidirectProduct, Translations
from groupconv.groups.custom_examples import rotations_from_generators
from groupconv.nn import PointGroupConv
from groupconv.spaces import LiftedPointField, pack_lifted, unpack_lifted

H = rotations_from_generators()
Gc = SemidirectProduct(Translations(2), H)
u = lift_points(Gc, p, m, num_frames=3, frames="sample", generator=torch.Generator().manual_seed(0))
conv = PointGroupConv(Gc, 1, 4, num_neighbors=5, dtype=torch.float64)


def lifted_conv(t):
    e, feat = unpack_lifted(t, Gc, 3)
    out = conv(e, feat)
    return pack_lifted(out.elements, out.features)


t = pack_lifted(u, f.unsqueeze(2).expand(-1, -1, 3, -1))
print(assert_equivariant(lifted_conv, t, Gc.sample(3, dtype=torch.float64),
                         in_field=LiftedPointField(Gc, 3, 1), out_field=LiftedPointField(Gc, 3, 4)))"""),
    ("md", "## 3-D Tetris: trained upright, tested in every orientation\n\nThe 8 Tetris shapes of "
           "Thomas et al. (2018), trained in their canonical orientation and tested under random "
           "rotations. The SE(3) network is exactly invariant, so it classifies every rotated shape; "
           "the T(3) network only knows the orientations it saw (`groupconv train tetris-3d`; over 3 "
           "seeds in the docs: 100 % vs about 14 %)."),
    ("code", """\
from groupconv.experiments import fit, get_experiment

exp = get_experiment("tetris-3d")
if FAST:
    torch.set_num_threads(1)
results = {}
for model in ("se3", "t3"):
    cfg = exp.config(quick=FAST, overrides={"model": model, **({"epochs": 4} if FAST else {})})
    torch.manual_seed(cfg["seed"])
    net3, data3, kw = exp.build(cfg)
    results[model] = fit(net3, data3, progress=False, **{**kw, "device": "cpu"})
    print(f"{model}: validation (upright) {100 * results[model].best_val_metric:.0f}%, "
          f"test (rotated) {100 * results[model].test_metric:.0f}%")"""),
]


NOTEBOOKS = {
    "01_groups_tour.ipynb": (GROUPS_TOUR, ["groupconv.groups", "groupconv.testing"]),
    "02_continuous_kernels.ipynb": (CONTINUOUS_KERNELS, ["groupconv.kernels", "groupconv.nn.continuous.flexconv"]),
    "03_verify_equivariance.ipynb": (VERIFY, ["groupconv.nn.group.gconv", "groupconv.nn.group.pooling",
                                              "groupconv.data"]),
    "04_attention_maps.ipynb": (ATTENTION, ["groupconv.nn.attention.self_attention"]),
    "05_partial_equivariance.ipynb": (PARTIAL, ["groupconv.nn.group.partial", "groupconv.models.partial_gcnn",
                                                "groupconv.experiments.partial_experiments"]),
    "06_point_clouds.ipynb": (POINTS, ["groupconv.models.point_resnet",
                                       "groupconv.experiments.point_experiments"]),
}


def _available(modules: list[str]) -> bool:
    return all(importlib.util.find_spec(m) is not None for m in modules)


def build(out_dir: Path = HERE) -> list[Path]:
    """Write every notebook whose modules exist into ``out_dir``; return their paths."""
    paths = []
    for name, (cells, modules) in NOTEBOOKS.items():
        if not _available(modules):
            print(f"skipping {name}: needs {modules}")
            continue
        path = out_dir / name
        nbformat.write(nb(cells), path)
        paths.append(path)
    return paths


if __name__ == "__main__":
    for p in build():
        print(p)
