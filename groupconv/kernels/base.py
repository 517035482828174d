"""Common base of every continuous kernel network, and the Chang et al. (2020) output scaling.

A kernel network is a neural field ``psi: [-1, 1]^D -> R^O`` sampled on the relative positions of a
convolution kernel. Every net in :mod:`groupconv.kernels` derives from :class:`KernelNet` and so

* takes ``coords`` shaped ``(..., in_features)`` and returns ``(..., out_features)``;
* reports ``frequency_bounds()``: a tensor ``(in_features,)`` with an upper bound of its frequency
  content along each coordinate, in *cycles per unit* of the coordinate, differentiable w.r.t.
  the parameters (used by the Nyquist anti-aliasing regulariser);
* carries the persistent lazy state of the Chang output scaling (:meth:`KernelNet.chang_initialize_`).

**Chang output scaling.** A hypernetwork that emits convolution weights should emit them with the
variance a conventional initialisation would give, ``Var ~ gain / fan_in`` with
``fan_in = in_channels * kernel_numel`` (Chang, Flokas & Lipson, ICLR 2020). The reference CCNN
multiplies the output layer's weight by ``sqrt(gain / fan_in)`` once, at the first forward, when
the kernel size is known. The flag of that one-shot initialisation must be *persistent*: the
reference stored it in a non-persistent buffer, so checkpoints reloaded for inference were scaled a
second time. Here the flag (``chang_initialized``) and the applied factor (``chang_scale``) are
persistent buffers, mirrored in a Python attribute at construction and at ``load_state_dict`` so
that ``forward`` never reads a device value.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor, nn
from torch.nn.utils import parametrize

from .._validation import check_positive_int, check_tensor, resolve_dtype

__all__ = ["KernelNet", "apply_chang_scaling", "scale_linear_weight_"]


def scale_linear_weight_(linear: nn.Linear, factor: Tensor | float) -> None:
    """Multiply the *effective* weight of ``linear`` by ``factor`` in place (no autograd).

    Works for plain layers and for layers under ``torch.nn.utils.parametrizations.weight_norm``
    (the magnitude ``g`` is scaled, so ``W = g v / |v|`` is scaled by the same factor).
    """
    with torch.no_grad():
        if parametrize.is_parametrized(linear, "weight"):
            p = linear.parametrizations.weight
            if not hasattr(p, "original0") or len(p) != 1:
                raise TypeError(
                    "scale_linear_weight_ supports plain weights or a single weight_norm "
                    f"parametrization, got {type(p[0]).__name__} x{len(p)}"
                )
            p.original0.mul_(factor)
        else:
            linear.weight.mul_(factor)


class KernelNet(nn.Module):
    """Base class of the kernel networks (see the module docstring).

    Subclasses set ``self.output_linear`` (the last ``nn.Linear``), implement ``forward`` and
    ``frequency_bounds``, and may override ``layer_frequency_bounds`` (per multiplicative layer)
    and the class attribute ``band_limited`` (``False`` for nets without a finite bound, e.g.
    ReLU MLPs, whose ``frequency_bounds`` is ``inf``).
    """

    band_limited: bool = True
    output_linear: nn.Linear

    def __init__(
        self,
        in_features: int,
        out_features: int,
        *,
        device: torch.device | str | None = None,
        dtype: torch.dtype | None = None,
    ) -> None:
        super().__init__()
        self.in_features = check_positive_int(in_features, "in_features")
        self.out_features = check_positive_int(out_features, "out_features")
        self.register_buffer("chang_initialized", torch.zeros((), dtype=torch.bool, device=device))
        self.register_buffer("chang_scale", torch.ones((), dtype=resolve_dtype(dtype), device=device))
        self._chang_done = False

    # ----------------------------------------------------------------------------- checks
    def _check_coords(self, coords: Tensor) -> Tensor:
        coords = check_tensor(coords, "coords")
        if coords.dim() < 1 or coords.shape[-1] != self.in_features:
            raise ValueError(
                f"coords must have shape (..., in_features={self.in_features}), "
                f"got shape {tuple(coords.shape)}"
            )
        if not coords.is_floating_point():
            raise TypeError(f"coords must be a floating-point tensor, got dtype {coords.dtype}")
        return coords

    # ----------------------------------------------------------------------- frequencies
    def frequency_bounds(self) -> Tensor:
        """Upper bound ``(in_features,)`` of the frequency content (cycles per unit)."""
        raise NotImplementedError

    def layer_frequency_bounds(self) -> Tensor:
        """Per-layer frequency bounds ``(num_filters, in_features)`` whose sum bounds the net.

        Multiplicative filter networks report one row per filter (products of sinusoids add
        their frequencies); other nets report a single row equal to :meth:`frequency_bounds`.
        """
        return self.frequency_bounds().unsqueeze(0)

    # --------------------------------------------------------------------------- Chang
    @property
    def is_chang_initialized(self) -> bool:
        """Whether the Chang output scaling has been applied (no device sync)."""
        return self._chang_done

    def chang_initialize_(
        self, fan_in: int, gain: float = 1.0, coords: Tensor | None = None,
        *, factor: Tensor | float | None = None,
    ) -> bool:
        """Apply the Chang output scaling once; later calls are no-ops.

        Args:
            fan_in: fan-in of the convolution the kernel feeds, ``in_channels * kernel_numel``
                (``kernel_numel`` alone for depthwise/separable kernels).
            gain: target variance numerator: the sampled kernel gets ``Var ~ gain / fan_in``.
            coords: if given, the *measured* variant: the net is evaluated on these positions
                and its output weight rescaled so that the sampled kernel's standard deviation
                is ``sqrt(gain / fan_in)`` (exact when the output bias is zero). Without
                ``coords`` the reference rule is used: the output weight is multiplied by
                ``sqrt(gain / fan_in)``.
            factor: if given, the output weight is multiplied by exactly this factor (a factor
                the caller measured, e.g. the energy rule of the continuous convolutions, which
                includes a mask); ``fan_in``, ``gain`` and ``coords`` are then only checked.

        Returns:
            ``True`` if the scaling was applied by this call, ``False`` if it had been already.

        Example:
            >>> from groupconv.kernels import SIREN
            >>> net = SIREN(1, 4)
            >>> net.chang_initialize_(fan_in=3 * 9), net.chang_initialize_(fan_in=3 * 9)
            (True, False)
        """
        fan_in = check_positive_int(fan_in, "fan_in")
        if not (isinstance(gain, (int, float)) and gain > 0):
            raise ValueError(f"gain must be a positive float, got {gain!r}")
        if self._chang_done:
            return False
        target = math.sqrt(gain / fan_in)
        with torch.no_grad():
            if factor is not None:
                pass
            elif coords is None:
                factor = target
            else:
                out = self(self._check_coords(coords))
                std = out.std() if out.numel() > 1 else out.abs().reshape(())
                factor = target / std.clamp_min(torch.finfo(out.dtype).tiny ** 0.5)
            scale_linear_weight_(self.output_linear, factor)
            self.chang_scale.mul_(factor)
            self.chang_initialized.fill_(True)
        self._chang_done = True
        return True

    def _load_from_state_dict(self, state_dict, prefix, local_metadata, strict, missing_keys,
                              unexpected_keys, error_msgs):  # noqa: D401 - torch hook
        super()._load_from_state_dict(state_dict, prefix, local_metadata, strict, missing_keys,
                                      unexpected_keys, error_msgs)
        # One sync at load time (not in forward): mirror the persistent flag.
        self._chang_done = bool(self.chang_initialized)


def apply_chang_scaling(
    net: KernelNet, fan_in: int, gain: float = 1.0, coords: Tensor | None = None
) -> bool:
    """Functional form of :meth:`KernelNet.chang_initialize_` (applied at most once per net).

    Example:
        >>> from groupconv.kernels import MAGNet
        >>> net = MAGNet(2, 8)
        >>> apply_chang_scaling(net, fan_in=8 * 9 * 9)
        True
    """
    if not isinstance(net, KernelNet):
        raise TypeError(f"net must be a groupconv.kernels.KernelNet, got {type(net).__name__}")
    return net.chang_initialize_(fan_in, gain=gain, coords=coords)


# --------------------------------------------------------------------------- init helpers
def _make_linear(
    in_f: int, out_f: int, bias: bool, device, dtype, generator: torch.Generator | None
) -> nn.Linear:
    """An ``nn.Linear`` with torch's default initialisation drawn from ``generator``."""
    lin = nn.Linear(in_f, out_f, bias=bias, device=device, dtype=dtype)
    with torch.no_grad():
        nn.init.kaiming_uniform_(lin.weight, a=math.sqrt(5.0), generator=generator)
        if lin.bias is not None:
            bound = 1.0 / math.sqrt(in_f)
            nn.init.uniform_(lin.bias, -bound, bound, generator=generator)
    return lin


def _uniform_(t: Tensor, low: float, high: float, generator: torch.Generator | None) -> Tensor:
    with torch.no_grad():
        return nn.init.uniform_(t, low, high, generator=generator)
