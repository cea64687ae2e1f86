"""Notifications over a private session bus, against a recording notification server."""

# dbus-next reads D-Bus signatures from annotations: "as", "a{sv}", …
# ruff: noqa: F821, F722, UP037

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from dbus_next.aio import MessageBus
from dbus_next.service import ServiceInterface, method, signal
from PySide6.QtCore import QObject, Signal

from hotspotguard.ui.notify import Notifier
from tests.ui_desktop.conftest import run_async


class Signals(QObject):
    stateChanged = Signal(object)
    fixesChanged = Signal(object)
    fixFinished = Signal(object)
    failed = Signal(str)
    busy = Signal(bool)


class Server(ServiceInterface):
    """org.freedesktop.Notifications that records what it is sent."""

    def __init__(self) -> None:
        super().__init__("org.freedesktop.Notifications")
        self.sent: list[dict[str, Any]] = []
        self.closed: list[int] = []

    @method()
    def Notify(  # a D-Bus method name
        self,
        app: "s",
        replaces: "u",
        icon: "s",
        summary: "s",
        body: "s",
        actions: "as",
        hints: "a{sv}",
        timeout: "i",
    ) -> "u":
        self.sent.append(
            {
                "app": app,
                "icon": icon,
                "summary": summary,
                "body": body,
                "actions": dict(zip(actions[::2], actions[1::2], strict=True)),
                "hints": {k: v.value for k, v in hints.items()},
                "timeout": timeout,
            }
        )
        return len(self.sent)

    @method()
    def CloseNotification(self, notification_id: "u"):  # type: ignore[no-untyped-def]
        self.closed.append(notification_id)
        self.NotificationClosed(notification_id, 3)

    @method()
    def GetCapabilities(self) -> "as":
        return ["actions", "body"]

    @signal()
    def ActionInvoked(self, notification_id: int, key: str) -> "us":
        return [notification_id, key]

    @signal()
    def NotificationClosed(self, notification_id: int, reason: int) -> "uu":
        return [notification_id, reason]


@pytest.fixture
def server(private_bus: Any, qloop: Any, qtbot: Any) -> Any:
    async def serve() -> tuple[MessageBus, Server]:
        bus = await MessageBus(bus_address=private_bus.address).connect()
        the_server = Server()
        bus.export("/org/freedesktop/Notifications", the_server)
        await bus.request_name("org.freedesktop.Notifications")
        return bus, the_server

    bus, the_server = run_async(qtbot, qloop, serve())
    yield the_server
    bus.disconnect()


@pytest.fixture
def notifier(private_bus: Any, qloop: Any, server: Any, qtbot: Any) -> Any:
    signals = Signals()
    window = {"open": False}
    the_notifier = Notifier(
        signals, suppressed=lambda: window["open"], bus_address=private_bus.address
    )
    the_notifier.signals = signals
    the_notifier.window = window
    the_notifier.start()
    yield the_notifier
    run_async(qtbot, qloop, the_notifier.stop())


def test_a_blocked_hotspot_is_notified_once_per_transition(
    notifier: Any, server: Server, states: dict[str, Any], qtbot: Any
) -> None:
    with qtbot.waitSignal(notifier.sent) as sent:
        notifier.signals.stateChanged.emit(states["blocked"])
    assert sent.args[1] == "blocked"
    (note,) = server.sent
    assert note["summary"] == "Hotspot nmp-hs0 has no internet"
    assert note["body"] == "Docker's FORWARD policy drops the phones' traffic."
    assert note["actions"] == {"fix": "Fix…", "details": "Details", "default": "Details"}
    assert note["hints"]["desktop-entry"] == "io.github.hotspotguard"
    assert note["hints"]["urgency"] == 1
    assert note["app"] == "Hotspot Guard"  # a server without our desktop entry shows it
    assert note["timeout"] == 0  # stays until the hotspot is no longer blocked

    notifier.signals.stateChanged.emit(states["blocked"])  # still blocked: nothing new
    qtbot.wait(200)
    assert len(server.sent) == 1
    notifier.signals.stateChanged.emit(states["ok"])  # fixed elsewhere: withdrawn
    qtbot.waitUntil(lambda: server.closed == [1])
    qtbot.waitUntil(lambda: not notifier.shown)
    with qtbot.waitSignal(notifier.sent):
        notifier.signals.stateChanged.emit(states["blocked"])  # blocked again: a new one
    assert len(server.sent) == 2


def test_no_notification_while_the_status_window_is_open(
    notifier: Any, server: Server, states: dict[str, Any], qtbot: Any
) -> None:
    notifier.window["open"] = True
    notifier.signals.stateChanged.emit(states["blocked"])
    qtbot.wait(300)
    assert server.sent == []
    notifier.window["open"] = False  # closing the window does not replay the transition
    notifier.signals.stateChanged.emit(states["blocked"])
    qtbot.wait(300)
    assert server.sent == []


def test_actions_ask_for_the_fix_or_the_details(
    notifier: Any, server: Server, states: dict[str, Any], qtbot: Any
) -> None:
    with qtbot.waitSignal(notifier.sent) as sent:
        notifier.signals.stateChanged.emit(states["blocked"])
    notification_id = sent.args[0]
    with qtbot.waitSignal(notifier.fixRequested) as fix:
        server.ActionInvoked(notification_id, "fix")
    assert fix.args == ["nmp-hs0"]
    with qtbot.waitSignal(notifier.detailsRequested):
        server.ActionInvoked(notification_id, "default")
    with qtbot.assertNotEmitted(notifier.fixRequested, wait=200):
        server.ActionInvoked(notification_id + 100, "fix")  # not ours
    server.NotificationClosed(notification_id, 2)
    qtbot.waitUntil(lambda: not notifier.shown)


def test_the_result_of_a_fix_and_of_an_undo_is_notified(
    notifier: Any, server: Server, qtbot: Any
) -> None:
    result = {"id": "docker-user:nmp-hs0", "iface": "nmp-hs0", "after": {"verdict": "ok"}}
    with qtbot.waitSignal(notifier.sent):
        notifier.signals.fixFinished.emit(result)
    assert server.sent[-1]["summary"] == "Hotspot nmp-hs0 fixed"
    assert server.sent[-1]["hints"]["urgency"] == 0
    with qtbot.waitSignal(notifier.sent):
        notifier.signals.fixFinished.emit({**result, "removed_rules": 2})
    assert server.sent[-1]["summary"] == "Fix undone on nmp-hs0"
    notifier.signals.failed.emit("the watcher's own trouble")  # not during a change: silent
    qtbot.wait(200)
    assert len(server.sent) == 2
    notifier.signals.busy.emit(True)
    notifier.signals.busy.emit(False)
    with qtbot.waitSignal(notifier.sent):
        notifier.signals.failed.emit("Not allowed: the system's policy refused this change.")
    assert server.sent[-1]["summary"] == "Could not change the firewall"


def test_without_a_notification_server_nothing_breaks(
    private_bus: Any, qloop: Any, states: dict[str, Any], qtbot: Any
) -> None:
    signals = Signals()
    notifier = Notifier(signals, bus_address=private_bus.address)
    notifier.start()
    assert run_async(qtbot, qloop, notifier.notify("a", "b", kind="blocked")) == 0
    signals.stateChanged.emit(states["blocked"])
    qtbot.wait(200)
    run_async(qtbot, qloop, notifier.stop())


def test_without_a_session_bus_nothing_breaks(qloop: Any, qtbot: Any) -> None:
    notifier = Notifier(Signals(), bus_address="unix:path=/nonexistent/bus")
    assert run_async(qtbot, qloop, asyncio.wait_for(notifier.notify("a", "b", kind="x"), 5)) == 0


def test_quitting_withdraws_our_notifications(
    private_bus: Any, qloop: Any, server: Server, states: dict[str, Any], qtbot: Any
) -> None:
    """A notification left behind would offer a Fix… nobody answers, and the next start would
    add a second one (issue 11, finding 4)."""
    signals = Signals()
    notifier = Notifier(signals, bus_address=private_bus.address)
    notifier.start()
    with qtbot.waitSignal(notifier.sent) as sent:
        signals.stateChanged.emit(states["blocked"])
    run_async(qtbot, qloop, notifier.stop())
    assert server.closed == [sent.args[0]]
