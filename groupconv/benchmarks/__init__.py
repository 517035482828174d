"""Benchmarks shipped with groupconv (``groupconv bench``).

Every suite measures its candidates in one process with interleaved rounds and reports medians
and ratios (:mod:`groupconv.benchmarks.common`); suites import their subjects lazily, so a
missing optional piece (escnn, a group not yet available) drops rows instead of failing.

Suites:

* :mod:`groupconv.benchmarks.groups` -- batched group ops (product, inverse, exp, log) for
  SO(2), SE(2), SO(3), and the ratio to escnn's per-element objects where escnn is installed.

Example:
    >>> from groupconv.benchmarks import time_interleaved
    >>> t = time_interleaved({"noop": lambda: None}, repeats=2, warmup=0)
    >>> len(t["noop"].seconds)
    2
"""

from .common import Timing, environment_info, format_table, ratio, throughput, time_interleaved, write_json

__all__ = [
    "Timing",
    "environment_info",
    "format_table",
    "ratio",
    "throughput",
    "time_interleaved",
    "write_json",
]
