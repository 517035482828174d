"""Test configuration: a bounded Hypothesis profile so the suite stays fast on 2 cores.

The ``device`` and ``float_dtype`` fixtures come from groupconv's pytest plugin.
"""

import os

from hypothesis import HealthCheck, settings

settings.register_profile(
    "groupconv",
    max_examples=int(os.environ.get("GROUPCONV_HYPOTHESIS_EXAMPLES", "25")),
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
    derandomize=True,
)
settings.load_profile("groupconv")
