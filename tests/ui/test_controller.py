"""The controller: the helper's snapshot evaluated off the GUI thread into watch-shaped
states, coalesced refreshes, fixes and errors in words."""

from __future__ import annotations

import asyncio
import threading
from typing import Any

import pytest

from hotspotguard import watch
from hotspotguard.system.helper_client import HelperRefused, HelperUnavailable
from hotspotguard.ui.controller import (
    Controller,
    FixedHotspots,
    HotspotInfo,
    assess_document,
    error_sentence,
)
from hotspotguard.usecases.operations import OperationError
from tests.ui.conftest import docker_document
from tests.ui.fakes import CONNECTION, HOTSPOT, EngineBackend


def test_assess_document_says_what_watch_assess_says(monkeypatch: pytest.MonkeyPatch) -> None:
    doc = docker_document()
    monkeypatch.setattr(watch, "_exists", lambda iface: True)  # the lab's interfaces
    source = watch.StaticHotspots([HOTSPOT])
    expected = watch.assess(source, capture=lambda ifaces: doc).to_json()
    mine = assess_document(doc, [HotspotInfo(HOTSPOT)])
    assert mine.state.to_json() == expected
    assert mine.state.state == "blocked"
    assert mine.report is not None and mine.ruleset is not None


def test_the_snapshot_is_filtered_to_networkmanagers_hotspots() -> None:
    doc = docker_document()
    extra = HotspotInfo("nmp-hs1", None, ("10.43.0.1/24",))
    state = assess_document(doc, [HotspotInfo(HOTSPOT, CONNECTION), extra]).state
    assert [h["iface"] for h in state.hotspots] == [HOTSPOT, "nmp-hs1"]
    assert state.hotspots[0]["connection"] == CONNECTION.to_json()
    assert state.hotspots[1]["ipv4"] == ["10.43.0.1/24"]  # NetworkManager's address
    assert assess_document(doc, []).state.state == "no-hotspot"
    assert assess_document(doc, None).state.hotspots[0]["iface"] == HOTSPOT  # NM's tables
    broken = assess_document({"format": "nope"}, None).state
    assert broken.state == "error" and "unreadable" in str(broken.reason)


def test_first_state_is_evaluated_off_the_gui_thread(controller: Controller, backend: Any) -> None:
    state = controller.state
    assert state is not None and state["state"] == "blocked"
    (hotspot,) = state["hotspots"]
    assert hotspot["state"] == "blocked" and hotspot["connection"]["id"] == "Hotspot"
    assert hotspot["blocked_by"]["owner"] == "docker"
    assert controller.report is not None and controller.ruleset is not None
    assert backend.calls[:1] == ["Subscribe"] and "GetSnapshot" in backend.calls
    assert backend.changed is not None  # subscribed to Changed


def test_evaluation_runs_in_a_worker_thread(
    controller: Controller, qtbot: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    threads: list[threading.Thread] = []
    from hotspotguard.ui import controller as module

    original = module.assess_document

    def spy(*args: Any) -> Any:
        threads.append(threading.current_thread())
        return original(*args)

    monkeypatch.setattr(module, "assess_document", spy)
    with qtbot.waitSignal(controller.stateChanged, timeout=10_000):
        controller.refresh()
    assert threads and threads[0] is not threading.main_thread()


def test_a_burst_of_changed_signals_gives_one_refresh(
    controller: Controller, backend: EngineBackend, qtbot: Any
) -> None:
    before = controller.evaluations
    published: list[object] = []
    controller.stateChanged.connect(published.append)
    for _ in range(50):
        assert backend.changed is not None
        backend.changed()
    qtbot.waitUntil(lambda: controller.evaluations > before, timeout=10_000)
    qtbot.wait(100)
    qtbot.waitUntil(lambda: not controller._tasks and not controller._refreshing)
    assert controller.evaluations - before == 1
    assert len(published) == 1


def test_a_fix_then_undo_through_the_controller(
    controller: Controller, backend: EngineBackend, qtbot: Any, qloop: Any
) -> None:
    busy: list[bool] = []
    controller.busy.connect(busy.append)
    with qtbot.waitSignal(controller.fixFinished, timeout=10_000) as done:
        controller.fix(HOTSPOT, "docker-user")
    assert done.args[0]["id"] == "docker-user@nmp-hs0"
    assert done.args[0]["after"]["verdict"] == "ok"
    assert busy == [True, False]
    assert controller.state is not None and controller.state["state"] == "ok"  # re-checked
    assert [f["id"] for f in controller.fixes] == ["docker-user@nmp-hs0"]
    with qtbot.waitSignal(controller.fixFinished, timeout=10_000):
        controller.undo()
    assert controller.state["state"] == "blocked" and controller.fixes == []


@pytest.mark.parametrize(
    ("error", "words"),
    [
        (HelperRefused("AccessDenied", "org.freedesktop...: denied"), "Not allowed"),
        (HelperRefused("InteractiveAuthorizationRequired", "x"), "no authentication agent"),
        (OperationError("Stale", "the firewall changed"), "look at the plan again"),
        (HelperUnavailable.not_installed("not activatable"), "not installed"),
        (HelperUnavailable.bus_gone(), "The system bus went away."),
        (HelperUnavailable("something new"), "The privileged helper cannot be reached."),
        (RuntimeError("boom\nTraceback (most recent call last):"), "Something went wrong: boom"),
    ],
)
def test_errors_are_one_sentence(error: BaseException, words: str) -> None:
    text = error_sentence(error)
    assert words in text and "\n" not in text and "Traceback" not in text


def test_a_refused_fix_says_why_and_is_not_busy_after(
    controller: Controller, backend: EngineBackend, qtbot: Any
) -> None:
    backend.fail["ApplyFix"] = HelperRefused("AccessDenied", "not authorized")
    busy: list[bool] = []
    controller.busy.connect(busy.append)
    with qtbot.waitSignal(controller.failed, timeout=10_000) as failed:
        controller.fix(HOTSPOT, "docker-user")
    assert failed.args[0].startswith("Not allowed")
    qtbot.waitUntil(lambda: busy == [True, False])
    assert controller.state is not None and controller.state["state"] == "blocked"


def test_no_helper_is_an_error_state(qloop: Any, qtbot: Any) -> None:
    backend = EngineBackend()
    backend.fail["GetSnapshot"] = HelperUnavailable.not_installed("not activatable")
    backend.fail["ListFixes"] = HelperUnavailable.not_installed("not activatable")
    hub = Controller(backend, FixedHotspots([HotspotInfo(HOTSPOT)]))
    with qtbot.waitSignal(hub.stateChanged, timeout=10_000) as published:
        hub.start()
    assert published.args[0] == {
        "state": "error",
        "hotspots": [],
        "reason": "the part of Hotspot Guard that reads the firewall is not installed",
    }
    qtbot.waitUntil(lambda: not hub._tasks)


def test_networkmanager_trouble_is_an_error_state(qloop: Any, qtbot: Any) -> None:
    class Down(FixedHotspots):
        @property
        def status(self) -> str | None:
            return "NetworkManager is not running"

    hub = Controller(EngineBackend(), Down([]))
    with qtbot.waitSignal(hub.stateChanged, timeout=10_000) as published:
        hub.start()
    assert published.args[0]["reason"] == "NetworkManager is not running"
    qtbot.waitUntil(lambda: not hub._tasks)
    asyncio.get_event_loop()  # the loop is still usable
