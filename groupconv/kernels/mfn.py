"""Multiplicative filter networks: FourierNet, GaborNet and MAGNet (anisotropic Gabor).

Recursion (Fathony et al., ICLR 2021; Romero et al., FlexConv, ICLR 2022), with ``L = num_layers``
hidden linears and ``L + 1`` filters ``g_0 .. g_L``::

    h_0 = g_0(x),   h_l = g_l(x) * (U_l h_{l-1} + c_l)  (l = 1..L),   psi(x) = W_out h_L + b_out

Filters (one per hidden unit ``j`` of filter ``l``):

* Fourier: ``sin(Omega_lj . x + phi_lj)``;
* Gabor (isotropic): ``exp(-1/2 gamma_lj^2 |x - mu_lj|^2) sin(Omega_lj . x + phi_lj)``;
* MAGNet (anisotropic): ``exp(-1/2 sum_d gamma_ljd^2 (x_d - mu_ljd)^2) sin(...)``; with
  ``steerable=True`` (2-D) the window is rotated by a learned angle ``2 pi theta_lj``.

The parameters of all filters are stacked (``filter_weight`` ``(L+1, H, D)``, ``gamma``,
``mu``, ...), so every filter is evaluated in one batched operation.

**Frequency content.** A product of sinusoids has the sum of their frequencies, so with the
per-filter bound ``f_l = max_j (|Omega_ljd| + s sigma_ljd) / 2 pi`` (``sigma`` the spectral
standard deviation of the Gaussian window, ``s = gauss_stddevs = 2``) the network is bounded by
``sum_l f_l`` along each axis (:meth:`MAGNet.layer_frequency_bounds`,
:meth:`MAGNet.frequency_bounds`). For FourierNet the bound is exact (no window).

**Initialisations** (``init=``):

* ``"flexconv"`` (Romero et al.): ``Omega_l = U(+-1/sqrt(D)) * input_scale / sqrt(L+1) * gamma_l``
  (Fourier: without ``gamma``), ``phi ~ U(-pi, pi)``, hidden ``U_l ~ U(+-sqrt(weight_scale/H))``.
  The reference experiments use ``input_scale = 25.6`` (the reference class default is 256).
* ``"ccnn"`` (Knigge et al.): ``Omega_l = U(+-1/sqrt(D)) * 2 pi omega_0 * gamma_l``, ``phi = 0``,
  Kaiming-uniform ("linear") hidden and output weights, hidden biases 1.
* ``gamma_l ~ Gamma(alpha / (l+1), beta)`` for MAGNet (later filters get wider windows);
  ``Gamma(alpha / (L+1), beta)`` for every filter of GaborNet; ``alpha = 6, beta = 1`` (rate).
* ``mu ~ mu_scale * U(-1, 1)``, or ``1 - mu_scale * U(0, 1)`` when ``causal``.
  FlexConv ties ``mu_scale`` to the mask: ``1.667 * mask_init``.
"""

from __future__ import annotations

import math
from typing import Literal

import torch
from torch import Tensor, nn

from .._validation import check_positive_int, resolve_dtype
from .base import KernelNet, _make_linear, _uniform_

__all__ = ["FourierNet", "GaborNet", "MAGNet", "sample_gamma"]


def sample_gamma(
    concentration: float,
    rate: float = 1.0,
    shape: tuple[int, ...] | torch.Size = (),
    *,
    generator: torch.Generator | None = None,
    device: torch.device | str | None = None,
    dtype: torch.dtype | None = None,
) -> Tensor:
    """Draw ``Gamma(concentration, rate)`` samples from ``generator`` (Marsaglia-Tsang).

    ``torch.distributions.Gamma`` cannot take a generator; this sampler does (vectorised
    rejection sampling in float64 on the generator's device, with the ``U^(1/alpha)`` boost for
    ``concentration < 1``). Mean ``concentration / rate``, variance ``concentration / rate^2``.

    Example:
        >>> g = sample_gamma(2.0, 1.0, (1000,), generator=torch.Generator().manual_seed(0))
        >>> bool((g > 0).all()), abs(g.mean().item() - 2.0) < 0.2
        (True, True)
    """
    if not (isinstance(concentration, (int, float)) and concentration > 0):
        raise ValueError(f"concentration must be a positive float, got {concentration!r}")
    if not (isinstance(rate, (int, float)) and rate > 0):
        raise ValueError(f"rate must be a positive float, got {rate!r}")
    shape = tuple(int(s) for s in shape)
    n = math.prod(shape)
    gen_device = generator.device if generator is not None else torch.device("cpu")
    a = float(concentration)
    boost = a < 1.0
    a_eff = a + 1.0 if boost else a
    d = a_eff - 1.0 / 3.0
    c = 1.0 / math.sqrt(9.0 * d)
    out = torch.empty(n, dtype=torch.float64, device=gen_device)
    filled = 0
    while filled < n:  # init-time only; expected acceptance rate > 95 %
        m = 2 * (n - filled) + 8
        x = torch.randn(m, generator=generator, dtype=torch.float64, device=gen_device)
        u = torch.rand(m, generator=generator, dtype=torch.float64, device=gen_device)
        v = (1.0 + c * x) ** 3
        ok = (v > 0) & (torch.log(u) < 0.5 * x * x + d - d * v + d * torch.log(v.clamp_min(1e-300)))
        acc = (d * v)[ok][: n - filled]
        out[filled : filled + acc.numel()] = acc
        filled += acc.numel()
    if boost:
        u = torch.rand(n, generator=generator, dtype=torch.float64, device=gen_device)
        out = out * u.pow(1.0 / a)
    out = out / float(rate)
    return out.reshape(shape).to(device=device, dtype=resolve_dtype(dtype))


class _MFN(KernelNet):
    """Shared implementation; use :class:`FourierNet`, :class:`GaborNet` or :class:`MAGNet`."""

    _kind: str = "fourier"

    def __init__(
        self,
        in_features: int,
        out_features: int,
        hidden_features: int = 32,
        num_layers: int = 3,
        *,
        init: Literal["flexconv", "ccnn"] = "flexconv",
        input_scale: float = 25.6,
        omega_0: float = 1.0,
        weight_scale: float = 1.0,
        alpha: float = 6.0,
        beta: float = 1.0,
        mu_scale: float = 1.0,
        causal: bool = False,
        steerable: bool = False,
        gauss_stddevs: float = 2.0,
        bias: bool = True,
        generator: torch.Generator | None = None,
        device: torch.device | str | None = None,
        dtype: torch.dtype | None = None,
    ) -> None:
        super().__init__(in_features, out_features, device=device, dtype=dtype)
        self.hidden_features = H = check_positive_int(hidden_features, "hidden_features")
        self.num_layers = L = check_positive_int(num_layers, "num_layers")
        if init not in ("flexconv", "ccnn"):
            raise ValueError(f"init must be 'flexconv' or 'ccnn', got {init!r}")
        for name, val in (("input_scale", input_scale), ("omega_0", omega_0), ("alpha", alpha),
                          ("beta", beta), ("weight_scale", weight_scale)):
            if not (isinstance(val, (int, float)) and val > 0):
                raise ValueError(f"{name} must be a positive float, got {val!r}")
        if not (isinstance(gauss_stddevs, (int, float)) and gauss_stddevs >= 0):
            raise ValueError(f"gauss_stddevs must be a float >= 0, got {gauss_stddevs!r}")
        if steerable and (self._kind != "magnet" or self.in_features != 2):
            raise ValueError(
                f"steerable=True needs a MAGNet with in_features=2, got {type(self).__name__} "
                f"with in_features={self.in_features}"
            )
        self.init = init
        self.steerable = bool(steerable)
        self.gauss_stddevs = float(gauss_stddevs)
        D, F = self.in_features, L + 1
        fk = {"device": device, "dtype": dtype}
        gen = generator

        # ---- windows: gamma (F, H, D or 1), mu (F, H, D), theta (F, H)
        if self._kind != "fourier":
            if self._kind == "magnet":
                gam = torch.stack([sample_gamma(alpha / (l + 1), beta, (H, D), generator=gen, **fk)
                                   for l in range(F)])
            else:
                gam = sample_gamma(alpha / F, beta, (F, H, 1), generator=gen, **fk)
            self.gamma = nn.Parameter(gam)
            mu = torch.empty(F, H, D, **fk)
            if causal:
                mu = 1.0 - mu_scale * _uniform_(mu, 0.0, 1.0, gen)
            else:
                mu = mu_scale * _uniform_(mu, -1.0, 1.0, gen)
            self.mu = nn.Parameter(mu)
            if self.steerable:
                self.theta = nn.Parameter(_uniform_(torch.empty(F, H, **fk), 0.0, 1.0, gen))
        # ---- filter linears: Omega (F, H, D), phi (F, H)
        omega = _uniform_(torch.empty(F, H, D, **fk), -1.0 / math.sqrt(D), 1.0 / math.sqrt(D), gen)
        scale = input_scale / math.sqrt(F) if init == "flexconv" else 2 * math.pi * omega_0
        omega = omega * scale
        if self._kind != "fourier":
            omega = omega * self.gamma.detach()
        self.filter_weight = nn.Parameter(omega)
        phi = torch.empty(F, H, **fk)
        phi = _uniform_(phi, -math.pi, math.pi, gen) if init == "flexconv" else phi.zero_()
        self.filter_bias = nn.Parameter(phi)
        # ---- hidden linears U_l (L, H, H), c_l (L, H)
        U = torch.empty(L, H, H, **fk)
        if init == "flexconv":
            bound = math.sqrt(weight_scale / H)
            _uniform_(U, -bound, bound, gen)
            c = _uniform_(torch.empty(L, H, **fk), -1 / math.sqrt(H), 1 / math.sqrt(H), gen)
        else:
            _uniform_(U, -math.sqrt(3.0 / H), math.sqrt(3.0 / H), gen)  # Kaiming "linear"
            c = torch.ones(L, H, **fk)
        self.hidden_weight = nn.Parameter(U)
        self.hidden_bias = nn.Parameter(c) if bias else None
        self.output_linear = _make_linear(H, self.out_features, bias, device, dtype, gen)
        if init == "ccnn":
            _uniform_(self.output_linear.weight, -math.sqrt(3.0 / H), math.sqrt(3.0 / H), gen)
        if bias:
            nn.init.zeros_(self.output_linear.bias)

    # --------------------------------------------------------------------------- forward
    def filters(self, coords: Tensor) -> Tensor:
        """All filter responses ``(..., L+1, H)`` at ``coords`` ``(..., in_features)``."""
        x = self._check_coords(coords)
        out = torch.sin(torch.einsum("...d,fhd->...fh", x, self.filter_weight) + self.filter_bias)
        if self._kind == "fourier":
            return out
        diff = x[..., None, None, :] - self.mu  # (..., F, H, D)
        if self.steerable:
            ang = 2 * math.pi * self.theta
            cos, sin = torch.cos(ang), torch.sin(ang)
            d0, d1 = diff[..., 0], diff[..., 1]
            diff = torch.stack([cos * d0 - sin * d1, sin * d0 + cos * d1], dim=-1)
        window = torch.exp(-0.5 * (self.gamma * diff).square().sum(-1))
        return window * out

    def forward(self, coords: Tensor) -> Tensor:
        """Kernel values ``(..., out_features)`` at ``coords`` ``(..., in_features)``."""
        g = self.filters(coords)
        h = g[..., 0, :]
        for l in range(self.num_layers):
            h = h @ self.hidden_weight[l].transpose(0, 1)
            if self.hidden_bias is not None:
                h = h + self.hidden_bias[l]
            h = g[..., l + 1, :] * h
        return self.output_linear(h)

    # ----------------------------------------------------------------------- frequencies
    def window_spectral_std(self) -> Tensor:
        """Angular-frequency std ``(L+1, H, D)`` of each Gaussian window along each axis.

        The Fourier transform of ``exp(-1/2 (x-mu)^T P (x-mu))`` is a Gaussian in angular
        frequency with covariance ``P``; its std along axis ``d`` is ``sqrt(P_dd)``. Without
        steering ``P = diag(gamma^2)``, so it is ``|gamma_d|``; with a rotation ``R``,
        ``P = R^T diag(gamma^2) R``. Zero for FourierNet.
        """
        if self._kind == "fourier":
            return torch.zeros_like(self.filter_weight)
        gam = self.gamma.abs().expand_as(self.filter_weight)
        if not self.steerable:
            return gam
        ang = 2 * math.pi * self.theta
        cos, sin = torch.cos(ang), torch.sin(ang)
        # rows of R = [[c, -s], [s, c]]; P_dd = sum_k R_kd^2 gamma_k^2
        p00 = (cos * gam[..., 0]).square() + (sin * gam[..., 1]).square()
        p11 = (sin * gam[..., 0]).square() + (cos * gam[..., 1]).square()
        return torch.stack([p00, p11], dim=-1).clamp_min(0).sqrt()

    def layer_frequency_bounds(self, stddevs: float | None = None) -> Tensor:
        """Per-filter bounds ``(L+1, in_features)``: ``max_j (|Omega| + s sigma) / 2 pi``."""
        s = self.gauss_stddevs if stddevs is None else float(stddevs)
        per_unit = self.filter_weight.abs() + s * self.window_spectral_std()
        return per_unit.amax(dim=1) / (2 * math.pi)

    def frequency_bounds(self, stddevs: float | None = None) -> Tensor:
        """Bound ``(in_features,)`` in cycles per unit: the sum of the per-filter bounds."""
        return self.layer_frequency_bounds(stddevs).sum(0)


class FourierNet(_MFN):
    """Multiplicative filter network with sine filters (see the module docstring).

    Example:
        >>> net = FourierNet(1, 2, hidden_features=8, num_layers=2)
        >>> net(torch.zeros(4, 1)).shape, net.layer_frequency_bounds().shape
        (torch.Size([4, 2]), torch.Size([3, 1]))
    """

    _kind = "fourier"


class GaborNet(_MFN):
    """Multiplicative filter network with isotropic Gabor filters (see the module docstring).

    Example:
        >>> net = GaborNet(2, 3)
        >>> net(torch.zeros(5, 5, 2)).shape
        torch.Size([5, 5, 3])
    """

    _kind = "gabor"


class MAGNet(_MFN):
    """Multiplicative Anisotropic Gabor Network (FlexConv/CCNN kernel net).

    Parameters are documented in the module docstring; the defaults reproduce the FlexConv
    initialisation with the experiments' ``input_scale = 25.6``; ``init="ccnn"`` with a tuned
    ``omega_0`` reproduces CCNN's. ``steerable=True`` (2-D only) rotates every window by a
    learned angle.

    Example:
        >>> net = MAGNet(2, 4, steerable=True, generator=torch.Generator().manual_seed(0))
        >>> net(torch.rand(3, 2) * 2 - 1).shape, net.frequency_bounds().shape
        (torch.Size([3, 4]), torch.Size([2]))
    """

    _kind = "magnet"
