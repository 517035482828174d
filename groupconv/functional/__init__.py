"""Stateless operations: FFT convolution, cached kernel spectra and the direct/FFT cost model;
point-cloud neighbourhoods, farthest-point subsampling and lifting
(:mod:`groupconv.functional.points`); fixed-step ODE integrators
(:mod:`groupconv.functional.integrators`)."""

from .cost import DEFAULT_COST_MODEL, CostModel, calibrate, get_cost_model, set_cost_model
from .fftconv import (
    KernelSpectrum,
    conv,
    fftconv,
    kernel_spectrum,
    next_fast_len,
    resolve_padding,
    use_fft,
)
from .integrators import leapfrog_step, odeint_rk4, rk4_step
from .points import (
    farthest_point_sampling,
    gather_points,
    knn_neighbors,
    lift_points,
    lifted_positions,
    orbit_invariants,
    point_neighborhoods,
    radius_neighbors,
)

__all__ = [
    "fftconv",
    "conv",
    "use_fft",
    "next_fast_len",
    "resolve_padding",
    "KernelSpectrum",
    "kernel_spectrum",
    "CostModel",
    "DEFAULT_COST_MODEL",
    "calibrate",
    "get_cost_model",
    "set_cost_model",
    "knn_neighbors",
    "radius_neighbors",
    "farthest_point_sampling",
    "lift_points",
    "lifted_positions",
    "orbit_invariants",
    "point_neighborhoods",
    "gather_points",
    "rk4_step",
    "odeint_rk4",
    "leapfrog_step",
]
