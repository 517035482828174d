#!/usr/bin/env bash
# Install escnn into a virtualenv for groupconv's optional bridge (groupconv.interop.escnn).
#
#   bash scripts/install_escnn.sh [VENV]      # VENV defaults to .venv
#
# escnn 1.0.11 does not install cleanly with a plain `pip install escnn`:
#   * py3nj (SO(3) Clebsch-Gordan only) is source-only Fortran: it fails without gfortran;
#   * lie_learn 0.0.2 pins numpy<2 and its binaries need NumPy 1.x.
# This script keeps the venv's numpy (numpy 2 is fine) and needs no compiler:
#   pip install --no-deps escnn==1.0.11   plus its pure-Python import deps (joblib, autograd,
#   pymanopt). lie_learn and py3nj are left out; groupconv.interop.escnn.import_escnn() puts a
#   lie_learn stub in sys.modules when (and only when) `import escnn` fails for lack of it, so the
#   2-D gspaces (C_N, D_N, SO(2), O(2)) work and escnn's SO(3)/O(3) Wigner-D code is unavailable.
#   If numpy<2 is already installed, pass ESCNN_FULL=1 to also install lie_learn (SO(3) usable).
#
# Idempotent: if escnn==1.0.11 and its deps are already importable, it does nothing (~1 s).
set -euo pipefail

VENV="${1:-.venv}"
PY="$VENV/bin/python"
ESCNN_VERSION="1.0.11"
export PIP_DISABLE_PIP_VERSION_CHECK=1

if [ ! -x "$PY" ]; then
    echo "install_escnn.sh: no python at $PY (create the venv first, e.g. 'make test' or python3 -m venv $VENV)" >&2
    exit 2
fi

have_escnn() {
    "$PY" - "$ESCNN_VERSION" <<'EOF'
import sys
from importlib.metadata import PackageNotFoundError, version
try:
    ok = version("escnn") == sys.argv[1]
    for dep in ("joblib", "autograd", "pymanopt"):
        version(dep)
except PackageNotFoundError:
    ok = False
sys.exit(0 if ok else 1)
EOF
}

if have_escnn; then
    echo "install_escnn.sh: escnn $ESCNN_VERSION already installed in $VENV"
else
    start=$(date +%s)
    "$PY" -m pip install --quiet --no-deps "escnn==$ESCNN_VERSION"
    # escnn's import-time deps (joblib) and optional numerical ones (pymanopt, autograd).
    "$PY" -m pip install --quiet joblib autograd pymanopt
    if [ "${ESCNN_FULL:-0}" = "1" ]; then
        "$PY" -m pip install --quiet --no-deps "lie_learn==0.0.2"
    fi
    echo "install_escnn.sh: installed escnn $ESCNN_VERSION into $VENV in $(( $(date +%s) - start )) s"
fi

# Smoke check through groupconv's bridge (applies the lie_learn stub / escnn#112 workaround).
"$PY" - <<'EOF'
from groupconv.interop.escnn import import_escnn

escnn = import_escnn()
gs = escnn.gspaces.rot2dOnR2(4)
print(f"install_escnn.sh: escnn OK ({gs})")
EOF
