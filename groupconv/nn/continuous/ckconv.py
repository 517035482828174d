"""Continuous kernel convolutions on R^d: CKConv (Romero et al., ICLR 2022) and its separable form.

The kernel is a continuous function ``psi: R^D -> R^{C_out x C_in}`` given by a kernel network
(:mod:`groupconv.kernels`), *sampled* on the grid of relative positions of the convolution and
used as an ordinary cross-correlation weight (FFT route for long kernels,
:func:`groupconv.functional.conv`).

**Coordinates.** An input of ``L`` samples per axis lives on ``linspace(-1, 1, L)`` (sample
spacing ``dp = 2 / (L - 1)``). Kernel tap ``j`` multiplies ``x[t + j]`` (centred kernels) and is
sampled at kernel coordinate ``c = rho * j * dp``; causal kernels multiply ``x[t - lag]`` and are
sampled at ``c = 1 - rho * lag * dp``, so ``+1`` is the current step and ``-1`` the oldest one
(CKConv's convention). ``rho`` (kernel units per input unit) is fixed by ``kernel_size``:

* ``"same"``: ``rho = 1``. Centred: the kernel covers offsets ``|s - t| <= 1``, i.e. half of the
  input each side, ``L`` taps for odd ``L`` (``L - 1`` for even ``L``, so it stays odd and centred).
  Causal: ``L`` taps, every past sample (the CKConv reference).
* ``"full"``: centred ``rho = 1/2``, ``2L - 1`` taps: every output sees every input. Causal
  ``"full"`` equals causal ``"same"``.
* odd ``int`` ``K`` (the *horizon*; any ``K >= 1`` when causal): ``K`` taps spanning ``[-1, 1]``
  at the *reference size* ``L_ref``, i.e. ``rho = (L_ref - 1) / (K - 1)``.

Taps are kept where ``|c| <= 1``. Padding keeps the output size (``"same"`` zero padding;
``padding_mode="circular"`` for periodic signals; causal: ``K - 1`` on the left).

**Resolution.** The reference size ``L_ref`` (``reference_size`` argument, or the spatial size of
the first regular forward / ``sample_kernel`` call, stored in a persistent buffer) fixes the
nominal sampling rate. At another size ``L`` the kernel is re-sampled on the new grid (same
``rho``: a horizon-``K`` kernel gets about ``(K - 1)(L - 1)/(L_ref - 1) + 1`` taps) and multiplied
by the sampling-rate ratio ``dp(L) / dp(L_ref)`` per axis (CKConv's ``sr_train / sr_test``), so the
layer approximates the same integral ``int x(s) psi(s - t) ds`` at any resolution. (The reference
additionally low-pass filters kernels evaluated at a *higher* rate; that is left to the
anti-aliasing regulariser.)

**Irregular sampling** (2-D/3-D point clouds, Monte-Carlo weights and padding masks:
:mod:`groupconv.nn.continuous.irregular`). 1-D: ``forward(x, positions)`` with ``positions``
``(L,)`` or ``(B, L)`` in ``[-1, 1]`` evaluates the kernel net on all ``L x L`` pairs and sums
with Voronoi quadrature weights (``(s_{k+1} - s_{k-1}) / 2``, one-sided at the ends) normalised
by ``dp(L_ref)``; on a regular grid it reproduces the regular result. Memory ``O(B L^2 C_out C_in)``.

**Caching.** In eval mode with autograd disabled the sampled kernel is cached in a
non-persistent buffer keyed on the input size, device, dtype and the ``_version`` counters of
all parameters, so an optimiser step, ``load_state_dict`` or ``train()`` invalidates it;
``state_dict`` is the same in train and eval mode. When the FFT route is taken, the kernel's
spectrum (:func:`groupconv.functional.kernel_spectrum`) is cached next to it under the same key,
so an eval forward costs ``rfft(x)`` + the complex channel mixing + ``irfft``; the direct/FFT
choice (``conv_method="auto"``) then asks the cost model with the kernel transform already paid.
In training (or with autograd on trainable parameters) nothing is cached: kernel and spectrum
are recomputed every call and gradients are exact.

**Initialisation.** On the first sampling the kernel net's output layer is rescaled once (Chang
et al., 2020) through :meth:`groupconv.kernels.base.KernelNet.chang_initialize_`, whose flag is
persistent. Two rules (``chang_rule=``):

* ``"energy"`` (default): the output weight is scaled by the references' ``sqrt(gain / fan_in)``
  (as ``"reference"``), then the sampled kernel, *including* a FlexConv mask and crop, is
  measured and a fixed, persistent multiplier ``kernel_gain`` (a buffer, not trained) is set so
  that every output channel has ``sum_{c, x} psi_oc(x)^2 = chang_gain`` (separable:
  ``sum_x psi_c(x)^2``), i.e. unit-variance white input gives output variance ``chang_gain``:
  the Chang target ``Var(psi) fan_in = gain`` measured on the kernel actually used. The forward
  pass at init is that of ``"energy_weight"``; the parameters, hence Adam's relative steps, are
  those of ``"reference"`` (the kernel is ``kernel_gain`` times the reference rule's kernel).
* ``"energy_weight"``: the same target reached by scaling the output weight itself (the default
  until issue 10's follow-up). Its output weights are ~30x those of ``"reference"``; Adam's steps
  do not scale with the weights, so the output layer then learns ~30x slower in relative
  terms (on the adding problem: unsolved in 10 epochs on 2 of 3 seeds, docs/results.md).
* ``"reference"``: the references' rule, the output weight times ``sqrt(gain / fan_in)`` with
  ``fan_in = C_in * kernel_numel`` (``kernel_numel`` for separable kernels). It assumes an
  output layer whose samples have unit variance, which the MAGNet/SIREN defaults do not give:
  for unit-variance input the output std is then 0.01-0.03 (30-90x below the target).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any, Literal

import torch
from torch import Tensor, nn

from ..._validation import check_positive_int, check_tensor
from ...functional.fftconv import KernelSpectrum, kernel_spectrum, resolve_padding, use_fft
from ...functional.fftconv import conv as _conv
from ...kernels.registry import KERNEL_NETS, build_kernel_net  # noqa: F401 - old import path
from .irregular import irregular_conv

_CHANG_RULES = ("energy", "energy_weight", "reference")

# KERNEL_NETS / build_kernel_net live in groupconv.kernels.registry (imported here for old imports)
__all__ = ["CKConv", "SeparableCKConv"]

_EPS = 1e-6


def _check_kernel_size(kernel_size: object, causal: bool) -> str | int:
    if isinstance(kernel_size, str):
        if kernel_size not in ("same", "full"):
            raise ValueError(f"kernel_size must be 'same', 'full' or an int, got {kernel_size!r}")
        return kernel_size
    k = check_positive_int(kernel_size, "kernel_size")
    if not causal and k % 2 == 0:
        raise ValueError(
            f"kernel_size must be odd for a centred (causal=False) kernel, got {k}"
        )
    return k


def _spacing(n: int) -> float:
    """Sample spacing of ``linspace(-1, 1, n)`` (``2`` for a single sample)."""
    return 2.0 / (n - 1) if n > 1 else 2.0


class _ContinuousConvNd(nn.Module):
    """Shared machinery of the continuous-kernel layers (grid, sampling, cache, conv)."""

    separable: bool = False

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        data_dim: int = 1,
        kernel_net: str | nn.Module = "siren",
        kernel_size: str | int = "same",
        *,
        causal: bool = False,
        bias: bool = True,
        conv_method: Literal["auto", "direct", "fft"] = "auto",
        padding_mode: Literal["zeros", "circular"] = "zeros",
        reference_size: int | Sequence[int] | None = None,
        kernel_net_kwargs: dict[str, Any] | None = None,
        chang_init: bool = True,
        chang_gain: float = 1.0,
        chang_rule: Literal["energy", "energy_weight", "reference"] = "energy",
        device: torch.device | str | None = None,
        dtype: torch.dtype | None = None,
    ) -> None:
        super().__init__()
        self.in_channels = check_positive_int(in_channels, "in_channels")
        self.out_channels = check_positive_int(out_channels, "out_channels")
        if data_dim not in (1, 2, 3) or isinstance(data_dim, bool):
            raise ValueError(f"data_dim must be 1, 2 or 3, got {data_dim!r}")
        self.data_dim = int(data_dim)
        if not isinstance(causal, bool):
            raise TypeError(f"causal must be a bool, got {causal!r}")
        if causal and self.data_dim != 1:
            raise ValueError(f"causal=True needs data_dim=1 (sequences), got data_dim={data_dim}")
        self.causal = causal
        self.kernel_size = _check_kernel_size(kernel_size, causal)
        if conv_method not in ("auto", "direct", "fft"):
            raise ValueError(f"conv_method must be 'auto', 'direct' or 'fft', got {conv_method!r}")
        self.conv_method = conv_method
        if padding_mode not in ("zeros", "circular"):
            raise ValueError(f"padding_mode must be 'zeros' or 'circular', got {padding_mode!r}")
        self.padding_mode = padding_mode
        self.chang_init = bool(chang_init)
        self.chang_gain = float(chang_gain)
        if chang_rule not in _CHANG_RULES:
            raise ValueError(f"chang_rule must be one of {_CHANG_RULES}, got {chang_rule!r}")
        self.chang_rule = chang_rule
        fk = {"device": device, "dtype": dtype}
        net_out = self.in_channels if self.separable else self.in_channels * self.out_channels
        self.kernel_net = build_kernel_net(
            kernel_net, self.data_dim, net_out, kernel_net_kwargs, causal=causal, **fk
        )
        # the energy rule's fixed kernel multiplier (persistent; 1 under the other rules)
        self.register_buffer("kernel_gain", torch.ones((), **fk))
        n_bias = self.in_channels if self.separable else self.out_channels
        self.bias = nn.Parameter(torch.zeros(n_bias, **fk)) if bias else None
        # reference size: persistent (0 = not yet known), mirrored on the host
        self.register_buffer("reference_size", torch.zeros(self.data_dim, dtype=torch.long, device=device))
        self._ref: tuple[int, ...] | None = None
        if reference_size is not None:
            self._set_reference(self._check_size(reference_size, "reference_size"))
        self.register_buffer("_cached_kernel", None, persistent=False)
        self._cache_key: tuple | None = None
        self._cached_spectrum: KernelSpectrum | None = None
        self._spectrum_key: tuple | None = None
        self.in_field, self.out_field = self._make_fields()

    # ------------------------------------------------------------------------ fields
    def _make_fields(self) -> tuple[Any, Any]:
        try:
            from ...groups import Translations
            from ...spaces.fields_grid import GridField
        except ImportError:  # pragma: no cover - spaces not available
            return None, None
        field = GridField(Translations(self.data_dim), spatial_dims=self.data_dim)
        return field, field

    # ------------------------------------------------------------------------ geometry
    def _check_size(self, size: int | Sequence[int], name: str) -> tuple[int, ...]:
        if isinstance(size, int):
            size = (size,) * self.data_dim
        size = tuple(check_positive_int(s, name) for s in size)
        if len(size) != self.data_dim:
            raise ValueError(f"{name} must have data_dim={self.data_dim} entries, got {size}")
        return size

    def _set_reference(self, size: tuple[int, ...]) -> None:
        if isinstance(self.kernel_size, int):
            limit = [n if self.causal else 2 * n - 1 for n in size]
            if any(self.kernel_size > m for m in limit):
                raise ValueError(
                    f"kernel_size={self.kernel_size} is larger than allowed for inputs of size "
                    f"{size}: at most {min(limit)} ({'L' if self.causal else '2L - 1'})"
                )
        self._ref = size
        with torch.no_grad():
            self.reference_size.copy_(torch.tensor(size, dtype=torch.long))

    def _rho(self, d: int) -> float:
        """Kernel coordinate units per input coordinate unit along axis ``d``."""
        if self.kernel_size == "same" or self.causal and self.kernel_size == "full":
            return 1.0
        if self.kernel_size == "full":
            return 0.5
        assert self._ref is not None
        if self.kernel_size == 1 or self._ref[d] == 1:
            return 1.0
        return (self._ref[d] - 1) / (self.kernel_size - 1)

    def axis_coordinates(self, size: Sequence[int]) -> list[Tensor]:
        """Per-axis kernel coordinates (float64, CPU, ascending) for an input of ``size``."""
        size = self._check_size(tuple(size), "size")
        if self._ref is None:
            self._set_reference(size)
        coords = []
        for d, n in enumerate(size):
            if n == 1 or (self.kernel_size == 1):
                coords.append(torch.tensor([1.0 if self.causal else 0.0], dtype=torch.float64))
                continue
            dk = self._rho(d) * _spacing(n)
            if self.causal:
                k = min(int(math.floor(2.0 / dk + _EPS)) + 1, n)
                c = 1.0 - dk * torch.arange(k - 1, -1, -1, dtype=torch.float64)
            else:
                h = min(int(math.floor(1.0 / dk + _EPS)), n - 1)
                c = dk * torch.arange(-h, h + 1, dtype=torch.float64)
            coords.append(c.clamp(-1.0, 1.0))
        return coords

    def amplitude_scale(self, size: Sequence[int]) -> float:
        """Sampling-rate ratio ``prod_d dp(L_d) / dp(L_ref_d)`` applied to the sampled kernel."""
        assert self._ref is not None
        s = 1.0
        for n, r in zip(size, self._ref):
            if n > 1 and r > 1:
                s *= (r - 1) / (n - 1)
        return s

    def kernel_positions(self, size: Sequence[int], dtype: torch.dtype | None = None,
                         device: torch.device | None = None) -> Tensor:
        """Grid of kernel coordinates ``(K_1, ..., K_D, D)`` sampled for inputs of ``size``.

        FlexConv layers return the cropped grid.
        """
        axes = self._crop_axes(self.axis_coordinates(size))
        axes = [c.to(device=device, dtype=dtype or self._param_dtype()) for c in axes]
        return torch.stack(torch.meshgrid(*axes, indexing="ij"), dim=-1)

    def _param_dtype(self) -> torch.dtype:
        p = next(self.kernel_net.parameters(), None)
        return p.dtype if p is not None else torch.get_default_dtype()

    # ------------------------------------------------------------------------ sampling
    def _kernel_values(self, grid: Tensor) -> Tensor:
        """Kernel net times ``kernel_gain`` (and the mask, in subclasses) at ``(..., D)`` -> ``(..., O)``."""
        return self.kernel_net(grid) * self.kernel_gain

    def _crop_axes(self, axes: list[Tensor]) -> list[Tensor]:
        """Per-axis crop of the kernel coordinates (identity here; FlexConv crops to its mask)."""
        return axes

    def _maybe_chang(self, grid: Tensor, keep: Tensor | None = None) -> None:
        """The one-shot output scaling (module docstring) on the kernel grid ``(*k, D)``;
        ``keep`` (``(*k)``, 0/1) zeroes taps outside the crop (FlexConv's compiled bucket)."""
        net = self.kernel_net
        pending = hasattr(net, "chang_initialize_") and not getattr(net, "is_chang_initialized", True)
        if not (self.chang_init and pending):
            return
        numel = math.prod(grid.shape[:-1])
        fan_in = numel if self.separable else self.in_channels * numel
        factor = None
        if self.chang_rule == "energy_weight":
            factor = self._chang_energy_factor(grid, keep)
        net.chang_initialize_(fan_in, gain=self.chang_gain, factor=factor)
        if self.chang_rule == "energy":  # reference weights, the rest as a fixed multiplier
            with torch.no_grad():
                self.kernel_gain.mul_(self._chang_energy_factor(grid, keep))

    def _chang_energy_factor(self, grid: Tensor, keep: Tensor | None) -> Tensor:
        """``sqrt(chang_gain / energy)`` of the current kernel on ``grid`` (per output channel)."""
        with torch.no_grad():  # init-time: one evaluation of the kernel on its grid
            v = self._kernel_values(grid)
            if keep is not None:
                v = v * keep.unsqueeze(-1)
            per_out = self.in_channels if self.separable else self.out_channels
            energy = v.square().sum() / per_out
            return (self.chang_gain / energy.clamp_min(torch.finfo(v.dtype).tiny)).sqrt()

    def _sample(self, size: tuple[int, ...], device: torch.device) -> Tensor:
        grid = self.kernel_positions(size, device=device)
        ks = tuple(grid.shape[:-1])
        self._maybe_chang(grid)
        values = self._kernel_values(grid)  # (*ks, O)
        values = values.movedim(-1, 0) * self.amplitude_scale(size)
        if self.separable:
            return values.reshape(self.in_channels, 1, *ks)
        return values.reshape(self.out_channels, self.in_channels, *ks)

    def sample_kernel(self, size: int | Sequence[int], device: torch.device | str | None = None) -> Tensor:
        """The sampled kernel for inputs of spatial ``size`` (with grad; uses the eval cache).

        Shape ``(C_out, C_in, *k)`` (separable layers: the depthwise ``(C_in, 1, *k)``). Use it
        for kernel regularisers (the references' "weight decay" is a norm of sampled kernels).
        """
        size = self._check_size(size, "size")
        if device is None:
            device = self.reference_size.device
        device = torch.device(device)
        # the cache key holds tensor version counters: bypass it under torch.compile, where the
        # compiled graph re-samples the kernel anyway (and a data-dependent guard would break it)
        can_cache = (
            not self.training
            and not torch.compiler.is_compiling()
            and (not torch.is_grad_enabled() or not any(p.requires_grad for p in self.parameters()))
        )
        if not can_cache:
            return self._sample(size, device)
        key = (size, self._ref, device, self._param_dtype(), self.kernel_gain._version,
               tuple((id(p), p._version) for p in self.parameters()))
        if self._cached_kernel is None or self._cache_key != key:
            self._cached_kernel = self._sample(size, device).detach()
            self._cache_key = key
            self._cached_spectrum = self._spectrum_key = None
        return self._cached_kernel

    def clear_cache(self) -> None:
        """Drop the cached eval-mode kernel and its spectrum."""
        self._cached_kernel = None
        self._cache_key = None
        self._cached_spectrum = None
        self._spectrum_key = None

    def train(self, mode: bool = True):  # noqa: D102 - nn.Module.train
        self.clear_cache()
        return super().train(mode)

    def _load_from_state_dict(self, state_dict, prefix, local_metadata, strict, missing_keys,
                              unexpected_keys, error_msgs):  # torch hook
        if prefix + "kernel_gain" not in state_dict:  # checkpoints from before the multiplier:
            state_dict[prefix + "kernel_gain"] = torch.ones_like(self.kernel_gain)  # gain in weights
        super()._load_from_state_dict(state_dict, prefix, local_metadata, strict, missing_keys,
                                      unexpected_keys, error_msgs)
        self.clear_cache()
        ref = tuple(int(v) for v in self.reference_size.tolist())  # one sync, at load time
        self._ref = None if any(v == 0 for v in ref) else ref

    # ------------------------------------------------------------------------ forward
    def _check_input(self, x: Tensor) -> Tensor:
        x = check_tensor(x, "x")
        if x.dim() != self.data_dim + 2:
            layout = ("(B, C, L)", "(B, C, H, W)", "(B, C, D, H, W)")[self.data_dim - 1]
            raise ValueError(
                f"x must have shape {layout} for data_dim={self.data_dim}, got shape {tuple(x.shape)}"
            )
        if x.shape[1] != self.in_channels:
            raise ValueError(f"x must have in_channels={self.in_channels} channels (dim 1), got {x.shape[1]}")
        if x.dtype != self._param_dtype():
            raise TypeError(f"x must have the layer's dtype {self._param_dtype()}, got {x.dtype}")
        return x

    def _padding(self, kernel: Tensor) -> list[tuple[int, int]]:
        ks = kernel.shape[2:]
        return [(k - 1, 0) for k in ks] if self.causal else [((k - 1) // 2, (k - 1) // 2) for k in ks]

    def _spectrum(self, x: Tensor, kernel: Tensor) -> KernelSpectrum | None:
        """The cached spectrum of the cached ``kernel`` when the FFT route is taken, else ``None``.

        Only a kernel that *is* the eval cache gets a spectrum (same key, so anything that
        invalidates the kernel invalidates the spectrum); the FFT/direct choice assumes the
        transform is paid once.
        """
        if kernel is not self._cached_kernel or self._cache_key is None:
            return None
        groups = self.in_channels if self.separable else 1
        padding = self._padding(kernel)
        if self.conv_method == "direct" or (self.conv_method == "auto" and not use_fft(
                x.shape, kernel.shape, padding=padding, groups=groups, spectrum_cached=True)):
            return None
        padded = [n + lo + hi for n, (lo, hi) in zip(x.shape[2:], resolve_padding(padding, kernel.shape[2:]))]
        key = (self._cache_key, tuple(padded))
        if self._cached_spectrum is None or self._spectrum_key != key:
            self._cached_spectrum = kernel_spectrum(kernel, padded, groups)
            self._spectrum_key = key
        return self._cached_spectrum

    def _depthwise_or_dense(self, x: Tensor, kernel: Tensor) -> Tensor:
        spectrum = self._spectrum(x, kernel)
        return _conv(x, kernel, self.bias, padding=self._padding(kernel), padding_mode=self.padding_mode,
                     groups=self.in_channels if self.separable else 1, method=self.conv_method,
                     spectrum=spectrum)

    def _mix(self, y: Tensor) -> Tensor:
        return y

    def forward(self, x: Tensor, positions: Tensor | None = None, mask: Tensor | None = None) -> Tensor:
        """Convolve ``x`` ``(B, C_in, *spatial)``; ``positions`` for irregular samples.

        Returns ``(B, C_out, *spatial)`` (same spatial size as the input). 2-D/3-D: ``x``
        ``(B, C_in, N)`` at ``positions`` ``(N, D)`` or ``(B, N, D)`` with an optional padding
        ``mask`` ``(B, N)`` (:mod:`groupconv.nn.continuous.irregular`).
        """
        if positions is not None and self.data_dim > 1:
            return irregular_conv(self, x, positions, mask)
        if mask is not None:
            raise ValueError("mask= is for irregular 2-D/3-D positions; 1-D positions use the Voronoi "
                             f"weights of the given samples (data_dim={self.data_dim}, "
                             f"positions={'given' if positions is not None else None})")
        x = self._check_input(x)
        if positions is not None:
            return self._mix(self._irregular(x, positions))
        size = tuple(x.shape[2:])
        if self._ref is None:
            self._set_reference(size)
        kernel = self.sample_kernel(size, device=x.device)
        return self._mix(self._depthwise_or_dense(x, kernel))

    # ------------------------------------------------------------------------ irregular
    def _irregular(self, x: Tensor, positions: Tensor) -> Tensor:
        positions = check_tensor(positions, "positions")  # 1-D; 2-D/3-D go to irregular_conv
        B, _, L = x.shape
        if positions.dim() == 1:
            positions = positions.unsqueeze(0)
        if positions.dim() != 2 or positions.shape[-1] != L or positions.shape[0] not in (1, B):
            raise ValueError(f"positions must have shape ({L},) or ({B}, {L}), got {tuple(positions.shape)}")
        if self._ref is None:
            raise RuntimeError(
                "the reference size is unknown: pass reference_size= or run one forward "
                "on a regular grid first"
            )
        pos = positions.to(x.dtype)
        # Voronoi quadrature weights of the (sorted) positions, normalised by dp(L_ref)
        srt, order = pos.sort(dim=-1)
        if L > 1:
            gaps = srt.diff(dim=-1)
            cell = torch.cat([gaps[:, :1], (gaps[:, 1:] + gaps[:, :-1]) / 2, gaps[:, -1:]], dim=-1)
        else:
            cell = torch.full_like(srt, _spacing(self._ref[0]))
        w = torch.empty_like(cell).scatter_(-1, order, cell) / _spacing(self._ref[0])
        rel = pos.unsqueeze(-2) - pos.unsqueeze(-1)  # (b, L_out, L_in): s - t
        c = self._rho(0) * rel + (1.0 if self.causal else 0.0)
        inside = (c.abs() <= 1.0 + _EPS).to(x.dtype)
        self._maybe_chang(self.kernel_positions(self._ref, dtype=x.dtype, device=x.device))
        vals = self._kernel_values(c.clamp(-1.0, 1.0).unsqueeze(-1))  # (b, L_out, L_in, O)
        vals = vals * (inside * w.unsqueeze(-2)).unsqueeze(-1)
        shared = vals.shape[0] == 1  # one set of positions for the whole batch
        if shared:
            vals = vals.squeeze(0)
        if self.separable:
            y = torch.einsum("ikc,bck->bci" if shared else "bikc,bck->bci", vals, x)
        else:
            vals = vals.unflatten(-1, (self.out_channels, self.in_channels))
            y = torch.einsum("ikoc,bck->boi" if shared else "bikoc,bck->boi", vals, x)
        if self.bias is not None:
            y = y + self.bias.view(1, -1, 1)
        return y

    def extra_repr(self) -> str:  # noqa: D102
        return (f"{self.in_channels}, {self.out_channels}, data_dim={self.data_dim}, "
                f"kernel_size={self.kernel_size!r}, causal={self.causal}, "
                f"bias={self.bias is not None}, conv_method={self.conv_method!r}, "
                f"padding_mode={self.padding_mode!r}, reference_size={self._ref}")


class CKConv(_ContinuousConvNd):
    """Continuous kernel convolution: a kernel net sampled on the relative-position grid.

    See the module docstring for the coordinates, ``kernel_size`` (``"same"``, ``"full"`` or
    an odd horizon; any horizon when causal), resolution changes, irregular sampling and caching.

    Args:
        in_channels, out_channels: channel counts.
        data_dim: 1 (sequences ``(B, C, L)``), 2 (images) or 3 (volumes).
        kernel_net: a name in :data:`groupconv.kernels.KERNEL_NETS` or a module
            ``(..., data_dim) -> (..., C_out*C_in)``.
        kernel_size: ``"same"``, ``"full"`` or an int horizon.
        causal: 1-D only; output ``t`` depends on inputs ``<= t``.
        bias: learnable bias ``(C_out,)``.
        conv_method: ``"auto"`` (FFT for long kernels), ``"direct"`` or ``"fft"``.
        padding_mode: ``"zeros"`` or ``"circular"``.
        reference_size: spatial size with the nominal sampling rate (default: the first input's).
        kernel_net_kwargs: passed to the kernel-net class when ``kernel_net`` is a name.
        chang_init, chang_gain, chang_rule: apply the Chang output scaling at the first
            sampling (``"energy"``: output variance ``chang_gain`` for white unit-variance
            input, through the fixed multiplier ``kernel_gain`` on top of the reference
            weights; ``"energy_weight"``: the same variance through the output weight;
            ``"reference"``: the references' ``sqrt(gain / fan_in)``).

    Example:
        >>> layer = CKConv(3, 4, data_dim=1, kernel_net="siren", causal=True)
        >>> layer(torch.randn(2, 3, 50)).shape
        torch.Size([2, 4, 50])
    """


class SeparableCKConv(_ContinuousConvNd):
    """Depthwise continuous kernel (``C_in`` outputs of the kernel net) then a 1x1 channel mixer.

    Two biases as in CCNN: ``bias`` ``(C_in,)`` on the depthwise conv and ``channel_mixer.bias``.

    Example:
        >>> layer = SeparableCKConv(3, 5, data_dim=2, kernel_size=7)
        >>> layer(torch.randn(1, 3, 16, 16)).shape
        torch.Size([1, 5, 16, 16])
    """

    separable = True

    def __init__(self, in_channels: int, out_channels: int, data_dim: int = 1, *args: Any,
                 **kwargs: Any) -> None:
        super().__init__(in_channels, out_channels, data_dim, *args, **kwargs)
        conv_cls = (nn.Conv1d, nn.Conv2d, nn.Conv3d)[self.data_dim - 1]
        fk = {"device": kwargs.get("device"), "dtype": kwargs.get("dtype")}
        self.channel_mixer = conv_cls(self.in_channels, self.out_channels, 1,
                                      bias=kwargs.get("bias", True), **fk)
        nn.init.kaiming_normal_(self.channel_mixer.weight)
        if self.channel_mixer.bias is not None:
            nn.init.zeros_(self.channel_mixer.bias)

    def _mix(self, y: Tensor) -> Tensor:
        return self.channel_mixer(y)
