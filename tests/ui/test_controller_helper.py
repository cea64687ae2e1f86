"""The applet's controller against the real helper: bus-activated on the polkit lab's private
system bus, its rules changed in the lab's network namespace (tests/polkitlab.py).  The test
process is root, whom polkit always allows; the users' side is tests/helper's."""

from __future__ import annotations

from typing import Any

import pytest

from hotspotguard.ui.controller import Controller, FixedHotspots, HelperBackend
from hotspotguard.watch import Connection, HotspotInfo
from tests.polkitlab import PolkitLab

pytestmark = pytest.mark.kernel


def state_of(hub: Controller) -> str | None:
    return hub.state["state"] if hub.state is not None else None


def test_fix_and_undo_from_the_applet_through_the_real_helper(
    plab: PolkitLab, qloop: Any, qtbot: Any
) -> None:
    plab.docker_hotspot()
    shared = Connection("Hotspot", "0c3b2c6e-6f5f-4c55-9d1c-2a3f4b5c6d7e", "802-11-wireless")
    hub = Controller(HelperBackend(plab.bus_address), FixedHotspots([HotspotInfo("hs0", shared)]))
    with qtbot.waitSignal(hub.stateChanged, timeout=20_000) as published:
        hub.start()
    state = published.args[0]
    assert state["state"] == "blocked", state
    assert state["hotspots"][0]["blocked_by"]["owner"] == "docker"
    assert state["hotspots"][0]["connection"] == shared.to_json()  # NetworkManager's, ours
    # the state came from the helper's live model (GetState): no snapshot, no ruleset here
    assert hub.report is None and hub.ruleset is None
    # a chains dialog shown: the ruleset and the traces are read (GetSnapshot) while it is
    view = object()
    hub.want_details(view, True)
    qtbot.waitUntil(lambda: hub.ruleset is not None and hub.report is not None, timeout=20_000)
    assert state_of(hub) == "blocked"
    hub.want_details(view, False)

    # Fix: planned, applied by the helper, then the helper's Changed makes the state ok
    with qtbot.waitSignal(hub.fixFinished, timeout=20_000) as finished:
        hub.fix("hs0", "docker-user")
    assert finished.args[0]["id"] == "docker-user@hs0" and finished.args[0]["changed"]
    assert len(plab.tagged_rules()) == 2
    qtbot.waitUntil(lambda: state_of(hub) == "ok", timeout=20_000)
    assert hub.ruleset is None  # no view wants it: the next state dropped it
    qtbot.waitUntil(lambda: [f["id"] for f in hub.fixes] == ["docker-user@hs0"], timeout=20_000)

    with qtbot.waitSignal(hub.fixFinished, timeout=20_000):
        hub.undo()
    assert plab.tagged_rules() == []
    qtbot.waitUntil(
        lambda: hub.state is not None and hub.state["state"] == "blocked", timeout=20_000
    )
    hub.stop()
    qtbot.waitUntil(lambda: not hub._tasks, timeout=10_000)
