"""The tray icon in-process (offscreen): icons, tooltips, menu, re-creation for SNI."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from PySide6.QtCore import QObject, Signal
from PySide6.QtGui import QImage

from hotspotguard.ui.autostart import Autostart
from hotspotguard.ui.tray import STATES, StateText, Tray, fill, state_icon


class Signals(QObject):
    """Only the controller's signals: the tray listens to nothing else."""

    stateChanged = Signal(object)
    fixesChanged = Signal(object)
    fixFinished = Signal(object)
    failed = Signal(str)
    busy = Signal(bool)

    def undo(self, fix_id: str = "") -> None:
        self.undone = fix_id


@pytest.fixture
def tray(qapp: Any, config_home: Path) -> Any:
    signals = Signals()
    the_tray = Tray(signals, Autostart())
    the_tray.start(native=False)
    the_tray.signals = signals
    yield the_tray
    the_tray.close()


def test_tooltips_are_one_sentence_from_the_state(qapp: Any, states: dict[str, Any]) -> None:
    text = StateText()
    assert text.tooltip(states["blocked"]) == (
        "Hotspot nmp-hs0: Docker's FORWARD policy drops the phones' traffic"
    )
    assert text.tooltip(states["ok"]) == "Hotspot nmp-hs0: the phones can reach the internet"
    assert text.tooltip(states["unknown"]) == (
        "Hotspot nmp-hs0: cannot tell whether the phones can reach the internet"
    )
    assert text.tooltip(states["no-hotspot"]) == "No hotspot is on"
    assert text.tooltip(states["error"]) == (
        "Cannot check the hotspot: NetworkManager is not running"
    )
    for state in states.values():
        assert "\n" not in text.tooltip(state)


def test_causes_name_the_owner_the_chain_and_the_flow(qapp: Any) -> None:
    text = StateText()

    def cause(flow: str, **drop: Any) -> str:
        return text.cause({"blocked_flow": flow, "blocked_by": drop})

    assert cause(
        "reply", owner="ufw", table="filter", chain="ufw-before-forward", rule="-j DROP"
    ) == ("a rule in ufw's ufw-before-forward chain drops the replies to the phones")
    assert cause("dhcp", owner="mytable", table="mytable", chain="input", rule="policy drop") == (
        "the policy of the mytable input chain drops the phones' address requests (DHCP)"
    )
    assert cause("dns6", owner="x", table="x", chain="in", rule="udp dport 53 reject") == (
        "a rule in the x in chain rejects the phones' IPv6 name lookups"
    )
    assert cause("outbound", owner="sysctl", rule="net.ipv4.ip_forward = 0").startswith(
        "IP forwarding is off"
    )
    assert fill("%1 and %2", "%2", "b") == "%2 and b"


def _image(state: str) -> QImage:
    return state_icon(state).pixmap(22, 22).toImage()


def test_each_state_has_its_own_icon(qapp: Any) -> None:
    images = {state: _image(state) for state in STATES}
    for state, image in images.items():
        assert not image.isNull(), state
    for a in STATES:
        for b in STATES:
            if a < b:
                assert images[a] != images[b], (a, b)


def test_state_changes_icon_tooltip_and_menu(tray: Any, states: dict[str, Any]) -> None:
    labels = [a.text() for a in tray.menu.actions() if not a.isSeparator()]
    assert labels == [
        "Hotspot status…",
        "Fix…",
        "Undo",
        "Firewall chains…",
        "Start at login",
        "Quit",
    ]
    for kind in STATES:
        tray.signals.stateChanged.emit(states[kind])
        assert tray.icon.toolTip() == StateText().tooltip(states[kind])
        assert tray.icon.icon().pixmap(22, 22).toImage() == _image(kind)
        assert tray.fix_action.isEnabled() == (kind == "blocked")
    assert not tray.undo_action.isEnabled()
    tray.signals.fixesChanged.emit([{"id": "docker-user:nmp-hs0"}])
    assert tray.undo_action.isEnabled()
    tray.signals.busy.emit(True)
    assert not tray.undo_action.isEnabled()


def test_menu_actions_ask_the_application(tray: Any, states: dict[str, Any], qtbot: Any) -> None:
    tray.signals.stateChanged.emit(states["blocked"])
    with qtbot.waitSignal(tray.fixRequested) as fix:
        tray.fix_action.trigger()
    assert fix.args == ["nmp-hs0"]
    for action, signal in (
        (tray.status_action, tray.statusRequested),
        (tray.chains_action, tray.chainsRequested),
        (tray.quit_action, tray.quitRequested),
    ):
        with qtbot.waitSignal(signal):
            action.trigger()
    with qtbot.waitSignal(tray.statusRequested):
        tray._activated(tray.icon.ActivationReason.Trigger)


def test_start_at_login_toggle_writes_and_removes_the_entry(tray: Any, config_home: Path) -> None:
    entry = config_home / "autostart" / "io.github.hotspotguard.desktop"
    assert tray.autostart_action.isEnabled() and not tray.autostart_action.isChecked()
    tray.autostart_action.trigger()
    assert entry.is_file() and tray.autostart_action.isChecked()
    assert "X-KDE-autostart-phase=2" in entry.read_text()
    tray.autostart_action.trigger()
    assert not entry.exists() and not tray.autostart_action.isChecked()


def test_plasma_names_the_toggle_after_itself(
    qapp: Any, config_home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("XDG_CURRENT_DESKTOP", "KDE")
    tray = Tray(Signals(), Autostart())
    assert tray.autostart_action.text() == "Start with Plasma"
    tray.close()
