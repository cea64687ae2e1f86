"""The Plasma 6 lab (``make test-plasma``): off unless HOTSPOTGUARD_PLASMA_LAB=1, so that
``make test`` does not run it twice in CI."""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest

from tests.plasma import plasma_lab


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "plasma: a real Plasma 6 session (make test-plasma)")


def _skip_unless_ready() -> None:
    if os.environ.get("HOTSPOTGUARD_PLASMA_LAB") != "1":
        pytest.skip("the Plasma 6 lab runs with `make test-plasma`")
    reason = plasma_lab.missing()
    if reason:
        pytest.skip(reason)


@pytest.fixture(scope="module")
def plasma() -> Iterator[plasma_lab.Plasma]:
    """A Plasma session shared by the module's tests."""
    _skip_unless_ready()
    session = plasma_lab.Plasma()
    try:
        yield session
    finally:
        session.down()


@pytest.fixture
def bare_session() -> Iterator[plasma_lab.Plasma]:
    """X, the bus and kwin only: Plasma's tray comes later (``start_plasma()``)."""
    _skip_unless_ready()
    session = plasma_lab.Plasma(bare=True)
    try:
        yield session
    finally:
        session.down()
