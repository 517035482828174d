"""Ready-made networks: continuous-kernel CNNs (CKCNN, FlexNet, CCNN), G-CNNs, attentive and
partial G-CNNs, continuous-kernel G-ResNets, wavelet networks, point-cloud G-ResNets and
equivariant particle-dynamics nets.

Each model is built in one line with documented defaults.
"""

from .attentive import AttentiveGCNN, alpha_p4cnn
from .baselines import TCN, ConvNet
from .ccnn import CCNN, CCNNBlock
from .ckcnn import CKCNN
from .ckgresnet import CKGResBlock, CKGResNet
from .flexnet import FlexNet, ResNetBlock
from .gcnn import GCNN, Z2CNN
from .partial_gcnn import PartialGCNN
from .point_dynamics import MLPDynamics, PointDynamicsNet
from .point_resnet import PointGResNet, PointResBlock
from .wavelet import WaveletNet

__all__ = [
    "CKCNN",
    "FlexNet",
    "ResNetBlock",
    "CCNN",
    "CCNNBlock",
    "TCN",
    "ConvNet",
    "GCNN",
    "Z2CNN",
    "CKGResNet",
    "CKGResBlock",
    "WaveletNet",
    "AttentiveGCNN",
    "alpha_p4cnn",
    "PartialGCNN",
    "PointGResNet",
    "PointResBlock",
    "PointDynamicsNet",
    "MLPDynamics",
]
