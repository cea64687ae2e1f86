"""Desktop notifications through ``org.freedesktop.Notifications``, sent with dbus-next on the
asyncio loop (qasync runs it inside Qt's).

Why not Qt: ``QSystemTrayIcon.showMessage()`` swaps the tray icon for a generic one, sends no
actions and no ``desktop-entry`` hint, and does nothing without a tray; PySide6's QtDBus cannot
marshal ``Notify``'s ``a{sv}`` hints nor its uint32/byte arguments.

One quiet notification when a shared hotspot cannot be checked (an error: the helper missing,
NetworkManager or the firewall unreadable), once per transition.
One notification when a hotspot becomes blocked (per transition; none while the status window
is open), with the actions *Fix…* and *Details*; it stays until the hotspot is no longer blocked
(then it is withdrawn) or the user closes it. One notification for the result of a fix or an
undo. Quitting withdraws ours: a notification whose *Fix…* nobody would answer must not stay,
and the next start would add its own.
"""

from __future__ import annotations

import asyncio
import contextlib
import sys
from collections.abc import Callable, Coroutine
from pathlib import Path
from typing import Any

from dbus_next.aio.message_bus import MessageBus
from dbus_next.constants import MessageType
from dbus_next.message import Message
from dbus_next.signature import Variant
from PySide6.QtCore import QCoreApplication, QObject, QTimer, Signal, Slot

from hotspotguard.ui.icons import svg_path
from hotspotguard.ui.tray import StateText, capitalized, fill

SERVICE = "org.freedesktop.Notifications"
PATH = "/org/freedesktop/Notifications"
DESKTOP_ENTRY = "io.github.hotspotguard"
#: the name a server shows when it cannot read the desktop entry (e.g. run from a checkout)
APP_NAME = "Hotspot Guard"
#: expire_timeout: the server's default, or never (a blocked hotspot stays news until it is not)
TIMEOUT_DEFAULT, TIMEOUT_NEVER = -1, 0
URGENCY_LOW, URGENCY_NORMAL, URGENCY_CRITICAL = 0, 1, 2
MATCH = f"type='signal',interface='{SERVICE}',path='{PATH}'"


def _icon(state: str) -> str:
    path = svg_path(state)
    return Path(path).as_uri() if path else DESKTOP_ENTRY


class Notifier(QObject):
    """Sends and follows the applet's notifications."""

    fixRequested = Signal(str)
    detailsRequested = Signal()
    #: a notification was shown: its id and kind ("blocked", "result", "failed")
    sent = Signal(int, str)

    def __init__(
        self,
        controller: QObject,
        suppressed: Callable[[], bool] = lambda: False,
        bus_address: str | None = None,
        parent: QObject | None = None,
    ) -> None:
        super().__init__(parent)
        self.text = StateText(self)
        self.suppressed = suppressed
        self.bus_address = bus_address
        self.bus: MessageBus | None = None
        self._ready: asyncio.Future[bool] | None = None
        self._tasks: set[asyncio.Task[Any]] = set()
        self._blocked: set[str] = set()
        self._unchecked = False
        #: our notifications on screen: id -> (kind, iface)
        self.shown: dict[int, tuple[str, str]] = {}
        self._busy = False
        controller.stateChanged.connect(self.on_state)  # type: ignore[attr-defined]
        controller.fixFinished.connect(self.on_fix_finished)  # type: ignore[attr-defined]
        controller.failed.connect(self.on_failed)  # type: ignore[attr-defined]
        controller.busy.connect(self.on_busy)  # type: ignore[attr-defined]

    # --- the bus -------------------------------------------------------------------------

    def start(self) -> None:
        """Connect to the session bus (in the background; notifications wait for it)."""
        if self._ready is None:
            self._ready = asyncio.get_event_loop().create_future()
            self._spawn(self._connect())

    async def _connect(self) -> None:
        assert self._ready is not None
        try:
            bus = await (
                MessageBus(bus_address=self.bus_address) if self.bus_address else MessageBus()
            ).connect()
            reply = await bus.call(
                Message(
                    destination="org.freedesktop.DBus",
                    path="/org/freedesktop/DBus",
                    interface="org.freedesktop.DBus",
                    member="AddMatch",
                    signature="s",
                    body=[MATCH],
                )
            )
            if reply is None or reply.message_type == MessageType.ERROR:
                raise OSError(f"AddMatch failed: {reply.body if reply else 'no reply'}")
        except Exception as error:  # no session bus: the tray still works
            print(f"hotspotguard: no notifications: {error}", file=sys.stderr)
            self._ready.set_result(False)
            return
        bus.add_message_handler(self._on_message)
        self.bus = bus
        self._ready.set_result(True)

    async def stop(self) -> None:
        for task in list(self._tasks):
            task.cancel()
        if self.bus is not None and self.shown:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(
                    asyncio.gather(*(self.close(i) for i in list(self.shown))), 1
                )
        if self.bus is not None:
            self.bus.disconnect()
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self.bus.wait_for_disconnect(), 1)
            self.bus = None

    def _spawn(self, coroutine: Coroutine[Any, Any, Any]) -> None:
        task = asyncio.get_event_loop().create_task(coroutine)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def notify(
        self,
        summary: str,
        body: str,
        *,
        kind: str,
        iface: str = "",
        actions: list[str] | None = None,
        urgency: int = URGENCY_NORMAL,
        icon: str = DESKTOP_ENTRY,
        replaces: int = 0,
        timeout: int = TIMEOUT_DEFAULT,
    ) -> int:
        """Show one notification; its id, or 0 when there is no notification server."""
        if self._ready is None:
            self.start()
        assert self._ready is not None
        if not await self._ready or self.bus is None:
            return 0
        hints = {
            "desktop-entry": Variant("s", DESKTOP_ENTRY),
            "urgency": Variant("y", urgency),
            "category": Variant("s", "network.error" if kind == "blocked" else "network"),
        }
        reply = await self.bus.call(
            Message(
                destination=SERVICE,
                path=PATH,
                interface=SERVICE,
                member="Notify",
                signature="susssasa{sv}i",
                body=[
                    QCoreApplication.translate("Applet", APP_NAME),
                    replaces,
                    icon,
                    summary,
                    body,
                    actions or [],
                    hints,
                    timeout,
                ],
            )
        )
        if reply is None or reply.message_type != MessageType.METHOD_RETURN:
            return 0
        notification_id = int(reply.body[0])
        self.shown[notification_id] = (kind, iface)
        self.sent.emit(notification_id, kind)
        return notification_id

    async def close(self, notification_id: int) -> None:
        self.shown.pop(notification_id, None)
        if self.bus is not None:
            await self.bus.call(
                Message(
                    destination=SERVICE,
                    path=PATH,
                    interface=SERVICE,
                    member="CloseNotification",
                    signature="u",
                    body=[notification_id],
                )
            )

    def _on_message(self, message: Message) -> None:
        if message.message_type != MessageType.SIGNAL or message.interface != SERVICE:
            return
        if message.member == "ActionInvoked" and message.signature == "us":
            notification_id, key = message.body
            kind, iface = self.shown.get(notification_id, ("", ""))
            if not kind:
                return
            if key == "fix" and iface:
                self.fixRequested.emit(iface)
            elif key in ("default", "details"):
                self.detailsRequested.emit()
        elif message.member == "NotificationClosed" and message.signature == "uu":
            self.shown.pop(message.body[0], None)

    # --- what to say ---------------------------------------------------------------------

    @Slot(object)
    def on_state(self, state: dict[str, Any]) -> None:
        """Notify each hotspot that has just become blocked; withdraw the ones that are not
        blocked any more."""
        hotspots = {h.get("iface", ""): h for h in state.get("hotspots") or ()}
        blocked = {i for i, h in hotspots.items() if i and h.get("state") == "blocked"}
        # an error while a connection is shared: the user shares and nothing can be checked
        unchecked = state.get("state") == "error" and bool(hotspots)
        for notification_id, (kind, iface) in list(self.shown.items()):
            if (kind == "blocked" and iface not in blocked) or (kind == "error" and not unchecked):
                self._spawn(self.close(notification_id))
        new = sorted(blocked - self._blocked)
        self._blocked = blocked
        was_unchecked, self._unchecked = self._unchecked, unchecked
        if self.suppressed():
            return
        for iface in new:
            self._spawn(self._notify_blocked(hotspots[iface]))
        if unchecked and not was_unchecked:
            self._spawn(self._notify_unchecked(state, sorted(hotspots)))

    async def _notify_unchecked(self, state: dict[str, Any], ifaces: list[str]) -> None:
        # the sentence ends as the language ends it: once ("。" in Chinese)
        reason = str(state.get("reason") or self.tr("unknown error")).rstrip(".。")
        await self.notify(
            fill(self.tr("Cannot check hotspot %1"), ", ".join(ifaces)),
            fill(self.tr("%1."), capitalized(reason)),
            kind="error",
            iface=ifaces[0],
            actions=["details", self.tr("Details"), "default", self.tr("Details")],
            urgency=URGENCY_LOW,
            icon=_icon("error"),
        )

    async def _notify_blocked(self, hotspot: dict[str, Any]) -> None:
        iface = hotspot["iface"]
        actions = []
        if hotspot.get("fixes"):
            actions += ["fix", self.tr("Fix…")]
        actions += ["details", self.tr("Details"), "default", self.tr("Details")]
        await self.notify(
            fill(self.tr("Hotspot %1 has no internet"), iface),
            # a sentence ends as the language ends it ("。" in Chinese)
            fill(self.tr("%1."), capitalized(self.text.cause(hotspot))),
            kind="blocked",
            iface=iface,
            actions=actions,
            urgency=URGENCY_NORMAL,
            icon=_icon("blocked"),
            timeout=TIMEOUT_NEVER,
        )

    @Slot(bool)
    def on_busy(self, busy: bool) -> None:
        """A change of the firewall runs while busy; a failure reported just after busy ends
        (in the same turn of the loop) still belongs to it."""
        if busy:
            self._busy = True
        else:
            QTimer.singleShot(0, self._idle)

    def _idle(self) -> None:
        self._busy = False

    @Slot(object)
    def on_fix_finished(self, result: dict[str, Any]) -> None:
        if self.suppressed():
            return
        iface = str(result.get("iface") or "")
        if "removed_rules" in result:
            summary = fill(self.tr("Fix undone on %1"), iface)
            body = self.tr("The firewall is as it was before the fix.")
            state = "no-hotspot"
        elif (result.get("after") or {}).get("verdict") == "ok":
            summary = fill(self.tr("Hotspot %1 fixed"), iface)
            body = self.tr("The phones can reach the internet again.")
            state = "ok"
        else:
            summary = fill(self.tr("Fix applied on %1"), iface)
            body = self.tr("The hotspot is still not working: open the details to see why.")
            state = "unknown"
        actions = ["default", self.tr("Details")]
        self._spawn(
            self.notify(
                summary,
                body,
                kind="result",
                iface=iface,
                actions=actions,
                urgency=URGENCY_LOW,
                icon=_icon(state),
            )
        )

    @Slot(str)
    def on_failed(self, message: str) -> None:
        """A failure while changing the firewall (not the watcher's: the tray shows those)."""
        if not self._busy or self.suppressed():
            return
        self._spawn(
            self.notify(
                self.tr("Could not change the firewall"),
                message,
                kind="failed",
                actions=["default", self.tr("Details")],
                urgency=URGENCY_NORMAL,
                icon=_icon("error"),
            )
        )
