"""pytest plugin of groupconv (registered through the ``pytest11`` entry point).

Fixtures:

* ``device`` -- parametrised over every available device (``cpu``, plus ``cuda`` when present),
  so a test that takes ``device`` runs once per device.
* ``float_dtype`` -- parametrised over ``torch.float32`` and ``torch.float64``.

Example (in a user's test file, nothing to import)::

    def test_my_net_is_equivariant(device):
        net = MyNet().to(device)
        ...
"""

from __future__ import annotations

import pytest
import torch

__all__ = ["available_devices", "device", "float_dtype"]


def available_devices() -> list[str]:
    """``["cpu"]`` plus ``"cuda"`` when a CUDA device is visible."""
    devices = ["cpu"]
    if torch.cuda.is_available():
        devices.append("cuda")
    return devices


@pytest.fixture(params=available_devices())
def device(request: pytest.FixtureRequest) -> torch.device:
    """Every available device, one test run each."""
    return torch.device(request.param)


@pytest.fixture(params=[torch.float32, torch.float64], ids=["float32", "float64"])
def float_dtype(request: pytest.FixtureRequest) -> torch.dtype:
    """float32 and float64, one test run each."""
    return request.param
