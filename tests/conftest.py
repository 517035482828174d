"""Test configuration: a bounded Hypothesis profile so the suite stays fast on 2 cores.

The ``device`` and ``float_dtype`` fixtures come from groupconv's pytest plugin.
"""

import os

import torch
from hypothesis import HealthCheck, settings

# pytest-xdist runs one worker per core: intra-op threads on top of that only contend
# (a tiny op took 26 ms with 2 threads per worker vs 0.06 ms with 1). Override with
# GROUPCONV_TEST_THREADS for a single-process run.
torch.set_num_threads(int(os.environ.get("GROUPCONV_TEST_THREADS", "1")))

settings.register_profile(
    "groupconv",
    max_examples=int(os.environ.get("GROUPCONV_HYPOTHESIS_EXAMPLES", "25")),
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
    derandomize=True,
)
settings.load_profile("groupconv")
