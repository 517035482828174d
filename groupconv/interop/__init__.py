"""Bridges to other equivariance libraries (optional extras).

* :mod:`groupconv.interop.escnn` -- escnn (``pip install 'groupconv[escnn]'`` or
  ``bash scripts/install_escnn.sh``): group and gspace maps, element and regular-field
  conventions, and importing escnn ``R2Conv`` filters into groupconv layers.

Nothing here imports escnn at import time: the bridge imports it on first use.

Example:
    >>> from groupconv.interop import escnn_available
    >>> isinstance(escnn_available(), bool)
    True
"""

from .escnn import INSTALL_HINT, escnn_available, import_escnn

__all__ = ["INSTALL_HINT", "escnn_available", "import_escnn"]
