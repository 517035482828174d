"""Pointwise kernel networks: ReLU-family MLP, SIREN and random Fourier features (RFF).

All take relative positions ``coords`` of shape ``(..., in_features)`` (normalised to
``[-1, 1]``) and return ``(..., out_features)``. Linear layers act on the last axis, so any
number of leading axes (a batch of kernel grids, a flattened grid) is accepted.

``num_layers`` counts the linear layers including the output layer (``num_layers=3``:
``in -> H -> H -> out``, as in CKConv's ``KernelNet``).
"""

from __future__ import annotations

import math
from typing import Literal

import torch
from torch import Tensor, nn
from torch.nn.utils.parametrizations import weight_norm as _weight_norm

from .._validation import check_positive_int
from .base import KernelNet, _make_linear, _uniform_

__all__ = ["MLP", "SIREN", "RFF"]

_ACTIVATIONS = {
    "relu": lambda slope: nn.ReLU(),
    "leaky_relu": lambda slope: nn.LeakyReLU(slope),
    "swish": lambda slope: nn.SiLU(),
    "silu": lambda slope: nn.SiLU(),
    "gelu": lambda slope: nn.GELU(),
}


class _FlatBatchNorm(nn.BatchNorm1d):
    """BatchNorm over all kernel positions: ``(..., C)`` is flattened to ``(N, C)``."""

    def forward(self, x: Tensor) -> Tensor:  # noqa: D102
        shape = x.shape
        return super().forward(x.reshape(-1, shape[-1])).reshape(shape)


def _make_norm(norm: str | None, features: int, device, dtype) -> nn.Module:
    if norm is None or norm == "none":
        return nn.Identity()
    if norm == "layer":
        return nn.LayerNorm(features, device=device, dtype=dtype)
    if norm == "batch":
        return _FlatBatchNorm(features, device=device, dtype=dtype)
    raise ValueError(f"norm must be one of None, 'layer', 'batch', got {norm!r}")


def _check_layers(num_layers: int, minimum: int, name: str = "num_layers") -> int:
    num_layers = check_positive_int(num_layers, name)
    if num_layers < minimum:
        raise ValueError(f"{name} must be >= {minimum}, got {num_layers}")
    return num_layers


def _maybe_weight_norm(layers: list[nn.Linear], enabled: bool) -> list[nn.Linear]:
    if not enabled:
        return layers
    return [_weight_norm(lin, name="weight", dim=0) for lin in layers]


class MLP(KernelNet):
    """CKConv's kernel MLP: ``Linear -> Norm -> act`` repeated, then a linear output layer.

    Args:
        in_features: dimension ``D`` of the positions.
        out_features: number of kernel values per position (e.g. ``C_out * C_in``).
        hidden_features: width ``H`` of the hidden layers.
        num_layers: number of linear layers, output included (>= 2).
        activation: ``"relu"``, ``"leaky_relu"``, ``"swish"`` (= ``"silu"``) or ``"gelu"``.
        norm: ``None``, ``"layer"`` or ``"batch"`` after every hidden linear.
        weight_norm: wrap every linear in ``torch.nn.utils.parametrizations.weight_norm``.
        init: ``"knots"`` (CKConv): weights ``~ N(0, weight_std)`` and biases that spread the
            ReLU knots evenly over ``[-1, 1]``: the first-layer hyperplanes pass through
            ``c_i = linspace(-1, 1, H)_i`` on every axis (``b_i = -w_i . c_i``) and the second
            layer's bias cancels its input one grid step past each knot
            (``b2 = -W2 a``, ``a_i = w_i . (step, ..., step)``); remaining biases are zero.
            ``"kaiming"`` (CCNN): Kaiming-uniform weights, zero biases.
        weight_std: standard deviation of the ``"knots"`` weights (CKConv: 0.01).
        negative_slope: slope of the LeakyReLU.
        generator: random generator of the initialisation.

    ReLU-family MLPs are not band-limited: :meth:`frequency_bounds` is ``inf`` and
    ``band_limited`` is ``False`` (the Nyquist regulariser refuses them).

    Example:
        >>> net = MLP(2, 6, hidden_features=16)
        >>> net(torch.zeros(5, 5, 2)).shape
        torch.Size([5, 5, 6])
    """

    band_limited = False

    def __init__(
        self,
        in_features: int,
        out_features: int,
        hidden_features: int = 32,
        num_layers: int = 3,
        *,
        activation: Literal["relu", "leaky_relu", "swish", "silu", "gelu"] = "relu",
        norm: Literal["layer", "batch"] | None = None,
        weight_norm: bool = False,
        bias: bool = True,
        init: Literal["knots", "kaiming"] = "knots",
        weight_std: float = 0.01,
        negative_slope: float = 0.01,
        generator: torch.Generator | None = None,
        device: torch.device | str | None = None,
        dtype: torch.dtype | None = None,
    ) -> None:
        super().__init__(in_features, out_features, device=device, dtype=dtype)
        self.hidden_features = check_positive_int(hidden_features, "hidden_features")
        self.num_layers = _check_layers(num_layers, 2)
        if activation not in _ACTIVATIONS:
            raise ValueError(f"activation must be one of {sorted(_ACTIVATIONS)}, got {activation!r}")
        if init not in ("knots", "kaiming"):
            raise ValueError(f"init must be 'knots' or 'kaiming', got {init!r}")
        if init == "knots" and not bias:
            raise ValueError("init='knots' needs bias=True (the knots are placed by the biases)")
        self.activation = activation
        H = self.hidden_features
        sizes = [self.in_features] + [H] * (self.num_layers - 1) + [self.out_features]
        layers = [
            _make_linear(sizes[i], sizes[i + 1], bias, device, dtype, generator)
            for i in range(self.num_layers)
        ]
        self._initialise(layers, init, weight_std, generator)
        layers = _maybe_weight_norm(layers, weight_norm)
        self.hidden = nn.ModuleList(layers[:-1])
        self.norms = nn.ModuleList(_make_norm(norm, H, device, dtype) for _ in layers[:-1])
        self.acts = nn.ModuleList(_ACTIVATIONS[activation](negative_slope) for _ in layers[:-1])
        self.output_linear = layers[-1]

    @torch.no_grad()
    def _initialise(self, layers: list[nn.Linear], init: str, std: float, gen) -> None:
        if init == "kaiming":
            for lin in layers:
                nn.init.kaiming_uniform_(lin.weight, nonlinearity="relu", generator=gen)
                if lin.bias is not None:
                    lin.bias.zero_()
            return
        for lin in layers:
            nn.init.normal_(lin.weight, 0.0, std, generator=gen)
            lin.bias.zero_()
        first = layers[0]
        H = first.out_features
        knots = torch.linspace(-1.0, 1.0, H, device=first.weight.device, dtype=first.weight.dtype)
        first.bias.copy_(-(first.weight * knots[:, None]).sum(-1))
        if len(layers) > 2:
            step = 2.0 / max(H - 1, 1)
            response = first.weight.sum(-1) * step  # pre-activation one step past each knot
            layers[1].bias.copy_(-(layers[1].weight @ response))

    def forward(self, coords: Tensor) -> Tensor:
        """Kernel values ``(..., out_features)`` at ``coords`` ``(..., in_features)``."""
        h = self._check_coords(coords)
        for lin, norm, act in zip(self.hidden, self.norms, self.acts):
            h = act(norm(lin(h)))
        return self.output_linear(h)

    def frequency_bounds(self) -> Tensor:
        """``inf`` on every axis: piecewise-linear / ReLU-family nets are not band-limited."""
        w = self.output_linear.weight
        return torch.full((self.in_features,), math.inf, device=w.device, dtype=w.dtype)


class SIREN(KernelNet):
    """Sine network: ``h_1 = sin(w0 (W_1 x + b_1))``, ``h_l = sin(w0 (W_l h + b_l))``, linear out.

    Args:
        omega_0: the frequency factor ``w0`` (SIREN default 30; CKConv sweeps 10-45,
            G-CNNs use 10). It acts as a smoothness prior.
        learn_omega_0: make ``omega_0`` a parameter (give it its own learning rate with
            :func:`groupconv.kernels.param_groups`).
        init: ``"siren"`` (Sitzmann et al.; FlexConv): first layer ``U(+-1/n_in)``;
            ``"ckconv"``: first layer ``U(-1, 1)``. Later layers and the output layer are
            ``U(+-sqrt(6/n)/w0)`` in both.
        bias_init: ``"uniform"`` (sine-layer biases ``U(-1, 1)``, random phases) or ``"zero"``.
            The output bias starts at zero.
        weight_norm: wrap the linears in ``weight_norm``.

    :meth:`frequency_bounds` is the instantaneous-frequency (Lipschitz) bound of the phases
    plus the modulating bandwidth, layer by layer (Carson's rule for a sine of a sine): with
    ``g_1 = w0 |W_1| / 2 pi`` and ``g_l = w0 |W_l| g_{l-1}``,
    ``B_l = max_j g_{l,j} + B_{l-1}``. A nested sine is not strictly band-limited; beyond
    this bound its spectrum decays like the Bessel tails of frequency modulation.

    Example:
        >>> net = SIREN(1, 3, omega_0=10.0)
        >>> net(torch.linspace(-1, 1, 7)[:, None]).shape
        torch.Size([7, 3])
    """

    _param_group_tags = {"omega_0": "omega_0"}

    def __init__(
        self,
        in_features: int,
        out_features: int,
        hidden_features: int = 32,
        num_layers: int = 3,
        *,
        omega_0: float = 30.0,
        learn_omega_0: bool = False,
        init: Literal["siren", "ckconv"] = "siren",
        bias_init: Literal["uniform", "zero"] = "uniform",
        weight_norm: bool = False,
        bias: bool = True,
        generator: torch.Generator | None = None,
        device: torch.device | str | None = None,
        dtype: torch.dtype | None = None,
    ) -> None:
        super().__init__(in_features, out_features, device=device, dtype=dtype)
        self.hidden_features = check_positive_int(hidden_features, "hidden_features")
        self.num_layers = _check_layers(num_layers, 2)
        if not (isinstance(omega_0, (int, float)) and omega_0 > 0):
            raise ValueError(f"omega_0 must be a positive float, got {omega_0!r}")
        if init not in ("siren", "ckconv"):
            raise ValueError(f"init must be 'siren' or 'ckconv', got {init!r}")
        if bias_init not in ("uniform", "zero"):
            raise ValueError(f"bias_init must be 'uniform' or 'zero', got {bias_init!r}")
        w0 = torch.tensor(float(omega_0), device=device, dtype=dtype)
        if learn_omega_0:
            self.omega_0 = nn.Parameter(w0)
        else:
            self.register_buffer("omega_0", w0)
        H = self.hidden_features
        sizes = [self.in_features] + [H] * (self.num_layers - 1) + [self.out_features]
        layers = [
            _make_linear(sizes[i], sizes[i + 1], bias, device, dtype, generator)
            for i in range(self.num_layers)
        ]
        first_bound = 1.0 if init == "ckconv" else 1.0 / self.in_features
        _uniform_(layers[0].weight, -first_bound, first_bound, generator)
        for lin in layers[1:]:
            bound = math.sqrt(6.0 / lin.in_features) / float(omega_0)
            _uniform_(lin.weight, -bound, bound, generator)
        if bias:
            for lin in layers[:-1]:
                if bias_init == "uniform":
                    _uniform_(lin.bias, -1.0, 1.0, generator)
                else:
                    nn.init.zeros_(lin.bias)
            nn.init.zeros_(layers[-1].bias)
        layers = _maybe_weight_norm(layers, weight_norm)
        self.hidden = nn.ModuleList(layers[:-1])
        self.output_linear = layers[-1]

    def forward(self, coords: Tensor) -> Tensor:
        """Kernel values ``(..., out_features)`` at ``coords`` ``(..., in_features)``."""
        h = self._check_coords(coords)
        for lin in self.hidden:
            h = torch.sin(self.omega_0 * lin(h))
        return self.output_linear(h)

    def frequency_bounds(self) -> Tensor:
        """Carson/Lipschitz bound ``(in_features,)`` in cycles per unit (see the class doc)."""
        w0 = self.omega_0.abs()
        g = w0 * self.hidden[0].weight.abs() / (2 * math.pi)  # (H, D) phase rates
        band = g.amax(0)
        for lin in self.hidden[1:]:
            g = w0 * (lin.weight.abs() @ g)
            band = g.amax(0) + band
        return band


class RFF(KernelNet):
    """Random Fourier features ``[cos(W x), sin(W x)]``, ``W ~ N(0, (2 pi omega_0)^2)``, then an MLP.

    Args:
        num_frequencies: number ``F`` of random frequencies (embedding width ``2F``);
            default ``hidden_features // 2``.
        omega_0: standard deviation of the frequencies in cycles per unit.
        learn_frequencies: make ``W`` a parameter (default: a fixed buffer).
        num_layers: linear layers of the MLP after the embedding (>= 1). With ``num_layers=1``
            the net is a linear read-out of sinusoids and is band-limited with bound
            ``max_j |W_jd| / 2 pi``; deeper ReLU-family MLPs report ``inf``.
        activation, norm, weight_norm: as in :class:`MLP` (Kaiming init, zero biases).

    Example:
        >>> net = RFF(2, 4, omega_0=2.0, generator=torch.Generator().manual_seed(0))
        >>> net(torch.rand(10, 2) * 2 - 1).shape
        torch.Size([10, 4])
    """

    def __init__(
        self,
        in_features: int,
        out_features: int,
        hidden_features: int = 32,
        num_layers: int = 3,
        *,
        num_frequencies: int | None = None,
        omega_0: float = 1.0,
        learn_frequencies: bool = False,
        activation: Literal["relu", "leaky_relu", "swish", "silu", "gelu"] = "relu",
        norm: Literal["layer", "batch"] | None = None,
        weight_norm: bool = False,
        bias: bool = True,
        generator: torch.Generator | None = None,
        device: torch.device | str | None = None,
        dtype: torch.dtype | None = None,
    ) -> None:
        super().__init__(in_features, out_features, device=device, dtype=dtype)
        self.hidden_features = check_positive_int(hidden_features, "hidden_features")
        self.num_layers = _check_layers(num_layers, 1)
        F = max(self.hidden_features // 2, 1) if num_frequencies is None else num_frequencies
        self.num_frequencies = check_positive_int(F, "num_frequencies")
        if not (isinstance(omega_0, (int, float)) and omega_0 > 0):
            raise ValueError(f"omega_0 must be a positive float, got {omega_0!r}")
        W = torch.empty(self.num_frequencies, self.in_features, device=device, dtype=dtype)
        with torch.no_grad():
            nn.init.normal_(W, 0.0, 2 * math.pi * float(omega_0), generator=generator)
        if learn_frequencies:
            self.frequencies = nn.Parameter(W)
        else:
            self.register_buffer("frequencies", W)
        self.band_limited = self.num_layers == 1
        mlp_in = 2 * self.num_frequencies
        if self.num_layers == 1:
            self.head = None
            lin = _make_linear(mlp_in, self.out_features, bias, device, dtype, generator)
            self.readout = _maybe_weight_norm([lin], weight_norm)[0]
        else:
            self.head = MLP(
                mlp_in, self.out_features, self.hidden_features, self.num_layers,
                activation=activation, norm=norm, weight_norm=weight_norm, bias=bias,
                init="kaiming", generator=generator, device=device, dtype=dtype,
            )

    @property
    def output_linear(self) -> nn.Linear:  # type: ignore[override]
        """The last linear layer (the one the Chang scaling rescales)."""
        return self.readout if self.head is None else self.head.output_linear

    def embed(self, coords: Tensor) -> Tensor:
        """The Fourier embedding ``(..., 2F)`` of ``coords`` ``(..., in_features)``."""
        z = self._check_coords(coords) @ self.frequencies.transpose(0, 1)
        return torch.cat([torch.cos(z), torch.sin(z)], dim=-1)

    def forward(self, coords: Tensor) -> Tensor:
        """Kernel values ``(..., out_features)`` at ``coords`` ``(..., in_features)``."""
        z = self.embed(coords)
        return self.readout(z) if self.head is None else self.head(z)

    def embedding_frequency_bounds(self) -> Tensor:
        """Largest embedding frequency per axis, ``max_j |W_jd| / 2 pi`` (cycles per unit)."""
        return self.frequencies.abs().amax(0) / (2 * math.pi)

    def frequency_bounds(self) -> Tensor:
        """Embedding bound for a linear head, ``inf`` when an MLP follows the embedding."""
        bound = self.embedding_frequency_bounds()
        if self.band_limited:
            return bound
        return bound + math.inf
