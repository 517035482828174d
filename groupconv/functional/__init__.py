"""Stateless operations: FFT convolution and the direct/FFT dispatcher; point-cloud
neighbourhoods, farthest-point subsampling and lifting (:mod:`groupconv.functional.points`)."""

from .fftconv import (
    FFT_MIN_SIDE_ND,
    FFT_MIN_TAPS_1D,
    conv,
    fftconv,
    next_fast_len,
    resolve_padding,
    use_fft,
)
from .points import (
    farthest_point_sampling,
    knn_neighbors,
    lift_points,
    radius_neighbors,
)

__all__ = [
    "fftconv",
    "conv",
    "use_fft",
    "next_fast_len",
    "resolve_padding",
    "FFT_MIN_TAPS_1D",
    "FFT_MIN_SIDE_ND",
    "knn_neighbors",
    "radius_neighbors",
    "farthest_point_sampling",
    "lift_points",
]
