"""Ready-made networks: G-CNNs, continuous-kernel G-ResNets, wavelet networks.

Each model is built in one line with documented defaults.
"""

from .attentive import AttentiveGCNN, alpha_p4cnn
from .ckgresnet import CKGResBlock, CKGResNet
from .gcnn import GCNN, Z2CNN
from .partial_gcnn import PartialGCNN
from .wavelet import WaveletNet

__all__ = [
    "GCNN",
    "Z2CNN",
    "CKGResNet",
    "CKGResBlock",
    "WaveletNet",
    "AttentiveGCNN",
    "alpha_p4cnn",
    "PartialGCNN",
]
