"""The tray icon: one icon per state, a one-sentence tooltip, the menu.

The icon is our own StatusNotifierItem (ui/sni.py) wherever a
``org.kde.StatusNotifierWatcher`` is on the session bus: its ``Status`` follows the hotspot
(Passive with nothing to say, NeedsAttention when blocked). Where there is none, a
``QSystemTrayIcon`` stands in (XEmbed), until a watcher appears (the login race): then the
item registers and the stand-in goes.
"""

from __future__ import annotations

import contextlib
import os
import re
import sys
from typing import TYPE_CHECKING, Any

from PySide6.QtCore import QCoreApplication, QObject, Signal, Slot
from PySide6.QtGui import QAction
from PySide6.QtWidgets import QMenu, QSystemTrayIcon

from hotspotguard.ui.autostart import Autostart
from hotspotguard.ui.icons import state_icon

if TYPE_CHECKING:
    import asyncio

    from hotspotguard.ui.sni import StatusNotifierItem

SNI_WATCHER = "org.kde.StatusNotifierWatcher"
STATES = ("no-hotspot", "ok", "blocked", "unknown", "error")
ITEM_ID = "hotspotguard"


def sni_status(state: dict[str, Any]) -> str:
    """The item's Status: Passive with no hotspot (the host may tuck it away), NeedsAttention
    when a hotspot is blocked or cannot be checked, else Active (errors included: the tooltip
    gives the reason)."""
    kind = state.get("state")
    if kind == "no-hotspot":
        return "Passive"
    if kind == "blocked" or (kind == "unknown" and first_of(state, "unknown")):
        return "NeedsAttention"
    return "Active"


def first_of(state: dict[str, Any], wanted: str) -> dict[str, Any] | None:
    return next((h for h in state.get("hotspots") or () if h.get("state") == wanted), None)


def fill(template: str, *args: str) -> str:
    """QString.arg in one pass: %1, %2, … replaced by `args` (their own % signs stay)."""
    return re.sub(
        r"%(\d)", lambda m: args[int(m[1]) - 1] if 0 < int(m[1]) <= len(args) else m[0], template
    )


def capitalized(text: str) -> str:
    return text[:1].upper() + text[1:]


class StateText(QObject):
    """Sentences for people, built from a state dict (``WatchState.to_json()``)."""

    def tooltip(self, state: dict[str, Any]) -> str:
        """One sentence: "Hotspot wlp3s0: Docker's FORWARD policy drops the phones' traffic"."""
        kind = state.get("state")
        hotspots = [h for h in state.get("hotspots") or () if h.get("iface")]
        if kind == "no-hotspot":
            return self.tr("No hotspot is on")
        if kind == "blocked" and (hotspot := first_of(state, "blocked")):
            return fill(self.tr("Hotspot %1: %2"), hotspot["iface"], self.cause(hotspot))
        if kind == "unknown" and (hotspot := first_of(state, "unknown")):
            text = self.tr("Hotspot %1: cannot tell whether the phones can reach the internet")
            return fill(text, hotspot["iface"])
        if kind == "ok" and hotspots:
            names = ", ".join(h["iface"] for h in hotspots)
            if len(hotspots) == 1:
                return fill(self.tr("Hotspot %1: the phones can reach the internet"), names)
            return fill(self.tr("Hotspots %1: the phones can reach the internet"), names)
        from hotspotguard import wording  # here: the tray starts without the sentences
        from hotspotguard.ui import texts

        reason = wording.reason_sentence(state, texts.qt_tr) or self.tr("unknown error")
        return fill(self.tr("Cannot check the hotspot: %1"), reason)

    def cause(self, hotspot: dict[str, Any]) -> str:
        """What stops a blocked hotspot's clients, as a clause: "Docker's FORWARD policy drops
        the phones' traffic"."""
        drop = hotspot.get("blocked_by") or {}
        owner = drop.get("owner") or ""
        rule = drop.get("rule") or ""
        if owner == "sysctl":
            return self.tr("IP forwarding is off, so the phones cannot reach the internet")
        if owner == "routing":
            return self.tr("this computer has no route to the internet")
        if owner == "nat":
            return self.tr("the phones' traffic is not masqueraded, so no replies come back")
        if owner == "conntrack":
            return self.tr("untracked replies cannot find their way back to the phones")
        from hotspotguard.ruleset.owners import OWNER_NAMES  # after the icon is up (the engine)

        chain = drop.get("chain") or ""
        where = f"{drop.get('table') or ''} {chain}".strip()
        name = OWNER_NAMES.get(owner)
        policy = rule.startswith("policy")
        if name and policy:
            who = fill(self.tr("%1's %2 policy"), name, chain)
        elif name:
            who = fill(self.tr("a rule in %1's %2 chain"), name, chain)
        elif policy:
            who = fill(self.tr("the policy of the %1 chain"), where)
        else:
            who = fill(self.tr("a rule in the %1 chain"), where)
        what = self.effect(hotspot.get("blocked_flow") or "outbound")
        if "reject" in rule.lower():
            return fill(self.tr("%1 rejects %2"), who, what)
        return fill(self.tr("%1 drops %2"), who, what)

    def effect(self, flow: str) -> str:
        effects = {
            "dhcp": self.tr("the phones' address requests (DHCP)"),
            "dns": self.tr("the phones' name lookups (DNS)"),
            "outbound": self.tr("the phones' traffic"),
            "reply": self.tr("the replies to the phones"),
            "dhcp6": self.tr("the phones' IPv6 address requests"),
            "dns6": self.tr("the phones' IPv6 name lookups"),
            "outbound6": self.tr("the phones' IPv6 traffic"),
            "reply6": self.tr("the IPv6 replies to the phones"),
            "rs6": self.tr("the phones' IPv6 router solicitations"),
            "ra6": self.tr("the router advertisements that give the phones IPv6 addresses"),
            "ns6_in": self.tr("the phones' IPv6 neighbour solicitations"),
            "na6_out": self.tr("the host's IPv6 neighbour advertisements"),
            "ns6_out": self.tr("the host's IPv6 neighbour solicitations"),
            "na6_in": self.tr("the phones' IPv6 neighbour advertisements"),
            "arp_in": self.tr("the phones' ARP requests"),
            "arp_out": self.tr("the host's ARP replies"),
        }
        return effects.get(flow, effects["outbound"])


class Tray(QObject):
    """The tray icon and its menu. It only asks; the application opens windows and acts."""

    statusRequested = Signal()
    fixRequested = Signal(str)
    undoRequested = Signal()
    chainsRequested = Signal()
    quitRequested = Signal()
    #: the icon is up: the item registered with a watcher, or the QSystemTrayIcon stand-in
    #: shown; tests and the benchmark watch it (``mode`` says which)
    iconCreated = Signal()

    def __init__(
        self,
        controller: QObject | None = None,
        autostart: Autostart | None = None,
        parent: QObject | None = None,
        bus_address: str | None = None,
    ) -> None:
        super().__init__(parent)
        self.text = StateText(self)
        self.autostart = autostart or Autostart()
        self.state: dict[str, Any] = {"state": "no-hotspot", "hotspots": [], "reason": None}
        self.busy = False
        self.fixes: list[dict[str, Any]] = []
        self.bus_address = bus_address
        #: the XEmbed stand-in (None while the item is registered)
        self.icon: QSystemTrayIcon | None = None
        self.sni: StatusNotifierItem | None = None
        self._shown: tuple[str, ...] = ()
        self._task: asyncio.Task[None] | None = None
        self.menu = self._build_menu()
        if controller is not None:
            self.attach(controller)

    @property
    def mode(self) -> str:
        """Which icon is up: "sni" (our item), "xembed" (the QSystemTrayIcon stand-in), or
        "" (none yet)."""
        if self.icon is not None:
            return "xembed"
        return "sni" if self.sni is not None and self.sni.is_registered else ""

    def start(self, native: bool = True) -> None:
        """Show the icon: our StatusNotifierItem when the asyncio loop runs and a watcher is
        there, else the stand-in. `native=False`: the stand-in only (offscreen tests)."""
        if native:
            import asyncio  # not before launch.without_tls() ran: it keeps OpenSSL out

            self._task = asyncio.get_event_loop().create_task(self._start_item())
        else:
            self._stand_in()

    async def started(self, timeout: float = 2) -> None:
        """Wait (a bounded time) until the icon is up, or known not to be possible."""
        if self._task is not None:
            import asyncio

            await asyncio.wait([self._task], timeout=timeout)

    def _build_menu(self) -> QMenu:
        menu = QMenu()
        self.status_action = QAction(self.tr("Hotspot status…"), menu)
        self.status_action.triggered.connect(self.statusRequested)
        self.fix_action = QAction(self.tr("Fix…"), menu)
        self.fix_action.triggered.connect(self._fix)
        self.undo_action = QAction(self.tr("Undo"), menu)
        self.undo_action.triggered.connect(self.undoRequested)
        self.chains_action = QAction(self.tr("Firewall chains…"), menu)
        self.chains_action.triggered.connect(self.chainsRequested)
        plasma = "KDE" in os.environ.get("XDG_CURRENT_DESKTOP", "").upper().split(":")
        label = self.tr("Start with Plasma") if plasma else self.tr("Start at login")
        self.autostart_action = QAction(label, menu)
        self.autostart_action.setCheckable(True)
        self.autostart_action.toggled.connect(self._toggle_autostart)
        self.quit_action = QAction(self.tr("Quit"), menu)
        self.quit_action.triggered.connect(self.quitRequested)
        menu.addAction(self.status_action)
        menu.addSeparator()
        menu.addActions([self.fix_action, self.undo_action])
        menu.addSeparator()
        menu.addAction(self.chains_action)
        menu.addSeparator()
        menu.addActions([self.autostart_action, self.quit_action])
        menu.aboutToShow.connect(self._sync_autostart)
        self._sync_autostart()
        return menu

    def attach(self, controller: QObject) -> None:
        """Follow a controller (the icon can be shown before it exists: start-up is faster)."""
        controller.stateChanged.connect(self.set_state)  # type: ignore[attr-defined]
        controller.busy.connect(self.set_busy)  # type: ignore[attr-defined]
        controller.fixesChanged.connect(self.set_fixes)  # type: ignore[attr-defined]

    async def _start_item(self) -> None:
        from hotspotguard.ui.sni import StatusNotifierItem

        title = QCoreApplication.translate("Applet", "Hotspot Guard")
        item = StatusNotifierItem(self.menu, ITEM_ID, title, self.bus_address, self)
        item.activated.connect(self.statusRequested)
        item.secondaryActivated.connect(self._secondary)
        item.registered.connect(self._item_registered)
        self.sni = item
        self._shown = ()
        self._refresh()
        try:
            registered = await item.start()
        except Exception as error:  # a bus that misbehaves: the stand-in still works
            print(f"hotspotguard: no StatusNotifierItem: {error!r}", file=sys.stderr)
            item.close()
            registered = False
        if item.bus is None:
            self.sni = None
        if not registered:
            self._stand_in()  # no watcher (yet): XEmbed until one registers the item

    @Slot()
    def _item_registered(self) -> None:
        """A watcher took our item: the stand-in goes. (The application's quit lock is off:
        deleting the last QSystemTrayIcon must not end the loop.)"""
        if self.icon is not None:
            self.icon.hide()
            self.icon.deleteLater()
            self.icon = None
        self.iconCreated.emit()

    def _stand_in(self) -> None:
        if self.icon is None:
            self.icon = QSystemTrayIcon(self)
            self._shown = ()
            self.icon.setContextMenu(self.menu)
            self.icon.activated.connect(self._activated)
            self._refresh()
            self.icon.show()
            self.iconCreated.emit()

    @Slot(object)
    def set_state(self, state: dict[str, Any]) -> None:
        self.state = state
        self._refresh()

    @Slot(object)
    def set_fixes(self, fixes: list[dict[str, Any]]) -> None:
        """What hotspotguard has applied (Undo undoes the most recent)."""
        self.fixes = list(fixes)
        self._refresh()

    @Slot(bool)
    def set_busy(self, busy: bool) -> None:
        self.busy = busy
        self._refresh()

    def tooltip(self) -> str:
        return self.text.tooltip(self.state)

    def _refresh(self) -> None:
        kind = self.state.get("state", "error")
        blocked = first_of(self.state, "blocked")
        self.fix_action.setEnabled(not self.busy and bool(blocked and blocked.get("fixes")))
        self.undo_action.setEnabled(not self.busy and bool(self.fixes))
        if self.icon is None and self.sni is None:
            return
        kind = kind if kind in STATES else "error"
        shown = (sni_status(self.state), self.tooltip())
        if (kind, *shown) == self._shown:  # unchanged: nothing to send (a host re-reads)
            return
        self._shown = (kind, *shown)
        icon = state_icon(kind)
        if self.icon is not None:
            self.icon.setIcon(icon)
            self.icon.setToolTip(shown[1])
        if self.sni is not None:
            from hotspotguard.ui.sni import Look

            self.sni.show(Look(shown[0], icon, icon, shown[1]))  # the badge says which

    def _fix(self) -> None:
        hotspot = first_of(self.state, "blocked")
        if hotspot:
            self.fixRequested.emit(hotspot["iface"])

    @Slot()
    def _secondary(self) -> None:
        """Middle click: Fix… when a hotspot is blocked and a fix is on offer, else nothing."""
        if self.fix_action.isEnabled():
            self._fix()

    @Slot(QSystemTrayIcon.ActivationReason)
    def _activated(self, reason: QSystemTrayIcon.ActivationReason) -> None:
        if reason in (
            QSystemTrayIcon.ActivationReason.Trigger,
            QSystemTrayIcon.ActivationReason.DoubleClick,
        ):
            self.statusRequested.emit()

    def _sync_autostart(self) -> None:
        self.autostart_action.blockSignals(True)
        self.autostart_action.setEnabled(self.autostart.available())
        self.autostart_action.setChecked(self.autostart.enabled())
        self.autostart_action.blockSignals(False)

    @Slot(bool)
    def _toggle_autostart(self, enabled: bool) -> None:
        # an unwritable config directory: the check mark then shows the truth
        with contextlib.suppress(OSError):
            self.autostart.set_enabled(enabled)
        self._sync_autostart()

    def close(self) -> None:
        if self._task is not None:
            self._task.cancel()
        if self.icon is not None:
            self.icon.hide()
        if self.sni is not None:
            self.sni.close()
