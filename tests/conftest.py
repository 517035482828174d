"""Test configuration: a bounded Hypothesis profile so the suite stays fast on 2 cores.

The ``device`` and ``float_dtype`` fixtures come from groupconv's pytest plugin, which is
opt-in: enabled here, as users enable it in their own ``conftest.py``.
"""

import os
import sys
from importlib import metadata

import pytest
import torch
from hypothesis import HealthCheck, settings


def _loaded_by_entry_point() -> bool:
    """An editable install made before the plugin became opt-in still declares the ``pytest11``
    entry point (until ``pip install -e .`` runs again): pytest has then imported and registered
    the plugin before this file, and listing it here too would register it twice."""
    return "groupconv.testing.plugin" in sys.modules and any(
        ep.value == "groupconv.testing.plugin" for ep in metadata.entry_points(group="pytest11"))


pytest_plugins = [] if _loaded_by_entry_point() else ["groupconv.testing.plugin"]

# pytest-xdist runs one worker per core: intra-op threads on top of that only contend
# (a tiny op took 26 ms with 2 threads per worker vs 0.06 ms with 1). Override with
# GROUPCONV_TEST_THREADS for a single-process run.
torch.set_num_threads(int(os.environ.get("GROUPCONV_TEST_THREADS", "1")))



@pytest.fixture(scope="module")
def one_thread():
    """One intra-op thread for a module of tiny tensors or models (``pytestmark =
    pytest.mark.usefixtures("one_thread")``): on the shared 2-core machines extra threads only
    contend, whatever ``GROUPCONV_TEST_THREADS`` says for the rest of the suite."""
    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(previous)


settings.register_profile(
    "groupconv",
    max_examples=int(os.environ.get("GROUPCONV_HYPOTHESIS_EXAMPLES", "25")),
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
    derandomize=True,
)
settings.load_profile("groupconv")
