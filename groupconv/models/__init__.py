"""Ready-made networks: continuous-kernel CNNs, G-CNNs, wavelet networks.

Each model is built in one line with documented defaults.
"""

from .wavelet import WaveletNet

__all__ = ["WaveletNet"]
