"""Stateless operations: FFT convolution and the direct/FFT dispatcher."""

from .fftconv import (
    FFT_MIN_SIDE_ND,
    FFT_MIN_TAPS_1D,
    conv,
    fftconv,
    next_fast_len,
    resolve_padding,
    use_fft,
)

__all__ = [
    "fftconv",
    "conv",
    "use_fft",
    "next_fast_len",
    "resolve_padding",
    "FFT_MIN_TAPS_1D",
    "FFT_MIN_SIDE_ND",
]
