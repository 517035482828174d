"""groupconv: group-equivariant deep learning on batched tensors.

Subpackages (imports only point downwards): ``groups`` -> ``spaces`` -> ``sampling`` ->
``kernels`` -> ``functional`` -> ``nn`` -> ``models``; ``testing`` uses the public API only.
"""

from . import groups

__version__ = "0.1.0"

__all__ = ["groups", "__version__"]
