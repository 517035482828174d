"""pytest plugin of groupconv: opt-in, so that installing groupconv changes no other test suite.

Enable it in your ``conftest.py`` (the top-level one)::

    pytest_plugins = ["groupconv.testing.plugin"]

or for one run with ``pytest -p groupconv.testing.plugin``. Nothing is registered merely by
installing groupconv (no ``pytest11`` entry point): the ``device`` fixture below would otherwise
re-parametrise every test of every project that has a fixture of that name.

Fixtures (once enabled; nothing to import in a test file):

* ``device`` -- every available device (``cpu``, plus ``cuda`` when present), one test run each;
  ``--groupconv-devices=cpu`` (or ``cuda``, comma separated) restricts it.
* ``float_dtype`` -- ``torch.float32`` and ``torch.float64``, one test run each.
* ``assert_equivariant`` / ``assert_invariant`` -- :func:`groupconv.testing.assert_equivariant`
  and :func:`~groupconv.testing.assert_invariant`.
* ``equivariance_tolerance`` -- ``(atol, rtol)`` of exact checks for ``float_dtype``.
* ``check_group`` -- :func:`groupconv.testing.check_group`.

Example (a user's test file)::

    def test_my_net_is_equivariant(device, assert_equivariant):
        assert_equivariant(MyNet().to(device).eval(), torch.randn(2, 3, 32, 32, device=device))
"""

from __future__ import annotations

from collections.abc import Callable

import pytest
import torch

from .strategies import available_devices

__all__ = [
    "assert_equivariant_fixture",
    "assert_invariant_fixture",
    "available_devices",
    "check_group_fixture",
    "device",
    "equivariance_tolerance",
    "float_dtype",
    "pytest_addoption",
    "pytest_generate_tests",
    "selected_devices",
]


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("groupconv")
    group.addoption(
        "--groupconv-devices",
        default=None,
        help="comma-separated devices for the `device` fixture (default: cpu plus cuda when present)",
    )


def selected_devices(config: pytest.Config | None = None) -> list[str]:
    """The devices of the ``device`` fixture: ``--groupconv-devices`` or every available one."""
    requested = None if config is None else config.getoption("--groupconv-devices", default=None)
    if not requested:
        return available_devices()
    out = [d.strip() for d in requested.split(",") if d.strip()]
    for d in out:
        if torch.device(d).type == "cuda" and not torch.cuda.is_available():
            raise pytest.UsageError(f"--groupconv-devices asks for {d!r} but torch sees no CUDA device")
    return out


def _explicitly_parametrized(metafunc: pytest.Metafunc, name: str) -> bool:
    for mark in metafunc.definition.iter_markers("parametrize"):
        names = mark.args[0] if mark.args else mark.kwargs.get("argnames", "")
        names = [n.strip() for n in names.split(",")] if isinstance(names, str) else list(names)
        if name in names:
            return True
    return False


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    """Parametrise every test that uses the ``device`` fixture over the selected devices."""
    if "device" in metafunc.fixturenames and not _explicitly_parametrized(metafunc, "device"):
        devs = selected_devices(metafunc.config)
        metafunc.parametrize("device", devs, indirect=True, ids=devs)


@pytest.fixture
def device(request: pytest.FixtureRequest) -> torch.device:
    """Every selected device (CPU, plus CUDA when present), one test run each."""
    return torch.device(getattr(request, "param", "cpu"))


@pytest.fixture(params=[torch.float32, torch.float64], ids=["float32", "float64"])
def float_dtype(request: pytest.FixtureRequest) -> torch.dtype:
    """float32 and float64, one test run each."""
    return request.param


@pytest.fixture(name="assert_equivariant")
def assert_equivariant_fixture() -> Callable:
    """:func:`groupconv.testing.assert_equivariant` (fields from the layer's attributes)."""
    from .equivariance import assert_equivariant

    return assert_equivariant


@pytest.fixture(name="assert_invariant")
def assert_invariant_fixture() -> Callable:
    """:func:`groupconv.testing.assert_invariant`."""
    from .equivariance import assert_invariant

    return assert_invariant


@pytest.fixture
def equivariance_tolerance(float_dtype: torch.dtype) -> tuple[float, float]:
    """``(atol, rtol)`` of exact equivariance checks for ``float_dtype``."""
    from .equivariance import default_tolerance

    return default_tolerance(float_dtype)


@pytest.fixture(name="check_group")
def check_group_fixture() -> Callable:
    """:func:`groupconv.testing.check_group`."""
    from .checks import check_group

    return check_group
