"""The applet's controller against the real helper: bus-activated on the polkit lab's private
system bus, its rules changed in the lab's network namespace (tests/polkitlab.py).  The test
process is root, whom polkit always allows; the users' side is tests/helper's."""

from __future__ import annotations

from typing import Any

import pytest

from hotspotguard.ui.controller import Controller, FixedHotspots, HelperBackend
from hotspotguard.watch import HotspotInfo
from tests.polkitlab import PolkitLab

pytestmark = pytest.mark.kernel


def state_of(hub: Controller) -> str | None:
    return hub.state["state"] if hub.state is not None else None


def test_fix_and_undo_from_the_applet_through_the_real_helper(
    plab: PolkitLab, qloop: Any, qtbot: Any
) -> None:
    plab.docker_hotspot()
    hub = Controller(HelperBackend(plab.bus_address), FixedHotspots([HotspotInfo("hs0")]))
    with qtbot.waitSignal(hub.stateChanged, timeout=20_000) as published:
        hub.start()
    state = published.args[0]
    assert state["state"] == "blocked", state
    assert state["hotspots"][0]["blocked_by"]["owner"] == "docker"
    assert hub.report is not None and hub.ruleset is not None  # for the chains dialog

    # Fix: planned, applied by the helper, then the helper's Changed makes the state ok
    with qtbot.waitSignal(hub.fixFinished, timeout=20_000) as finished:
        hub.fix("hs0", "docker-user")
    assert finished.args[0]["id"] == "docker-user@hs0" and finished.args[0]["changed"]
    assert len(plab.tagged_rules()) == 2
    qtbot.waitUntil(lambda: state_of(hub) == "ok", timeout=20_000)
    qtbot.waitUntil(lambda: [f["id"] for f in hub.fixes] == ["docker-user@hs0"], timeout=20_000)

    with qtbot.waitSignal(hub.fixFinished, timeout=20_000):
        hub.undo()
    assert plab.tagged_rules() == []
    qtbot.waitUntil(
        lambda: hub.state is not None and hub.state["state"] == "blocked", timeout=20_000
    )
    hub.stop()
    qtbot.waitUntil(lambda: not hub._tasks, timeout=10_000)
