"""CI runs the fast suite a second time on another CPU path (issue 12, item 1)."""

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_ci_runs_the_fast_suite_on_the_portable_cpu_path_with_one_thread():
    ci = (ROOT / ".ci" / "run").read_text()
    steps = [ln.strip() for ln in ci.splitlines() if ln.strip() and not ln.lstrip().startswith("#")]
    assert "make test" in steps and "make test-portable" in steps
    recipe = re.search(r"^test-portable:.*\n((?:\t.*\n)+)", (ROOT / "Makefile").read_text(), flags=re.M)
    assert recipe, "no test-portable target"
    body = recipe.group(1)
    for setting in ("ATEN_CPU_CAPABILITY=default", "OMP_NUM_THREADS=1", "GROUPCONV_TEST_THREADS=1",
                    '-m "not slow and not training"'):
        assert setting in body, setting
