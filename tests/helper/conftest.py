"""The polkit lab for the helper's D-Bus tests (tests/polkitlab.py)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.lab import LabError
from tests.polkitlab import PolkitLab, polkit_lab_unavailable_reason


@pytest.fixture(scope="module")
def polkit_lab() -> Iterator[PolkitLab]:
    """A private system bus + real polkitd + bus-activated helper in a fresh netns (per module)."""
    reason = polkit_lab_unavailable_reason()
    if reason:
        pytest.skip(reason)
    try:
        lab = PolkitLab()
    except LabError as error:  # the half-built lab is already torn down
        pytest.fail(f"cannot build the polkit lab: {error}")
    try:
        yield lab
    finally:
        lab.close()


@pytest.fixture
def plab(polkit_lab: PolkitLab) -> PolkitLab:
    """The module's polkit lab with an empty firewall and no fixes recorded."""
    polkit_lab.reset_firewall()
    return polkit_lab
