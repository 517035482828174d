"""``python -m groupconv`` runs the ``groupconv`` command."""

import sys

from .cli import main

sys.exit(main())
