"""The status window over the controller, fed the lab's NetworkManager + Docker capture."""

from __future__ import annotations

from typing import Any

from PySide6.QtWidgets import QLabel, QPushButton, QWidget

from hotspotguard.ui.controller import Controller
from hotspotguard.ui.status_window import StatusWindow
from tests.ui.fakes import HOTSPOT, EngineBackend


def test_chips_blocker_and_fixes_on_offer(controller: Controller, qtbot: Any) -> None:
    window = StatusWindow(controller)
    qtbot.addWidget(window)
    window.show()
    assert window.headline.text() == "A hotspot is blocked."
    card = window.cards[HOTSPOT]
    assert card.title() == "Hotspot (nmp-hs0)"
    # one plain sentence first (finding 8); the engine's words a hover away
    assert card.sentence.text() == "Docker's FORWARD policy drops the phones' traffic."
    assert card.sentence.toolTip().startswith("blocked: Docker's filter FORWARD policy drop")
    chips = {name: chip.property("state") for name, chip in card.chips.items()}
    assert chips == {"dhcp": "ok", "dns": "ok", "outbound": "blocked", "reply": "blocked"}
    assert card.chips["outbound"].text() == "Internet: blocked"
    assert card.blocker.text() == "Blocked by Docker: ip filter FORWARD — policy drop"
    assert list(card.fix_buttons) == [
        "docker-user",
        "docker-stale-drop",
        "forward-allow",
        "docker-no-drop",
        "docker-netns",
    ]
    for strategy in ("docker-user", "forward-allow"):
        tradeoff = card.tradeoffs[strategy]
        qtbot.waitUntil(lambda label=tradeoff: "looking" not in label.text())
        assert tradeoff.text().startswith("Trade-off: ")
    stale = card.tradeoffs["docker-stale-drop"]  # Docker 20.10 here: why not, in words
    assert stale.text().startswith("Not available: ")  # from the planner, with the state
    assert not card.fix_buttons["docker-stale-drop"].isEnabled()
    assert "nftables backend" in stale.text()


def test_applied_fixes_and_undo(controller: Controller, backend: EngineBackend, qtbot: Any) -> None:
    window = StatusWindow(controller)
    qtbot.addWidget(window)
    with qtbot.waitSignal(controller.fixFinished, timeout=10_000):
        controller.fix(HOTSPOT, "docker-user")
    assert window.headline.text().startswith("Every hotspot works")
    assert window.cards[HOTSPOT].chips["outbound"].property("state") == "ok"
    assert not window.cards[HOTSPOT].fix_buttons  # nothing to fix any more
    row = window.findChild(QWidget, "applied-docker-user@nmp-hs0")
    assert row is not None and window.fixes_group.isVisibleTo(window)
    undo = row.findChild(QPushButton, "undo")
    with qtbot.waitSignal(controller.fixFinished, timeout=10_000):
        undo.click()
    assert "UndoFix" in backend.calls
    assert window.cards[HOTSPOT].chips["outbound"].property("state") == "blocked"
    assert not window.fixes_group.isVisibleTo(window)


def test_errors_in_words_and_busy(
    controller: Controller, backend: EngineBackend, qtbot: Any
) -> None:
    from hotspotguard.system.helper_client import HelperRefused

    window = StatusWindow(controller)
    qtbot.addWidget(window)
    window.show()
    backend.fail["UndoFix"] = HelperRefused("AccessDenied", "no")
    controller.undo("docker-user@nmp-hs0")
    qtbot.waitUntil(lambda: window.error.isVisible())
    assert window.error.text() == "Not allowed: the system's policy refused this change."
    card = window.cards[HOTSPOT]
    # every button is back, but for the Fix of a strategy the helper cannot plan here
    cannot = ("docker-stale-drop", "docker-no-drop", "docker-netns")
    qtbot.waitUntil(lambda: all(name in card.unavailable for name in cannot))
    assert not any(card.fix_buttons[name].isEnabled() for name in cannot)
    assert card.fix_buttons["docker-user"].isEnabled()
    greyed = [card.fix_buttons[name] for name in cannot]
    others = [b for b in window.findChildren(QPushButton) if b not in greyed]
    assert all(b.isEnabled() for b in others)


def test_chains_dialog_opens_on_the_blocked_flow(controller: Controller, qtbot: Any) -> None:
    window = StatusWindow(controller)
    qtbot.addWidget(window)
    window.cards[HOTSPOT].findChild(QPushButton, "chains").click()
    (dialog,) = window._dialogs
    assert dialog.choice is not None and (dialog.choice.iface, dialog.choice.name) == (
        HOTSPOT,
        "outbound",
    )
    dialog.close()


def test_chains_dialog_follows_the_controller(controller: Controller, qtbot: Any) -> None:
    from hotspotguard.ui.chains import ChainsDialog

    dialog = ChainsDialog(controller)  # as the tray's "Firewall chains…" opens it
    qtbot.addWidget(dialog)
    assert dialog.model.ruleset is controller.ruleset
    assert "dropped by Docker" in dialog.summary.text()
    with qtbot.waitSignal(controller.fixFinished, timeout=10_000):
        controller.fix(HOTSPOT, "docker-user")
    assert dialog.model.ruleset is controller.ruleset  # the fixed firewall, same flow
    assert dialog.choice is not None and dialog.choice.name == "outbound"
    assert "gets through" in dialog.summary.text()


def test_trade_off_stays_known_when_the_card_is_rebuilt(controller: Controller, qtbot: Any) -> None:
    """After an Undo or an unrelated firewall change the cards are rebuilt for the same cause:
    the trade-off already looked up is shown again, not "looking…" for ever (finding 3)."""
    window = StatusWindow(controller)
    qtbot.addWidget(window)
    window.show()
    first = window.cards[HOTSPOT].tradeoffs["docker-user"]
    qtbot.waitUntil(lambda: first.text().startswith("Trade-off: "))
    assert controller.state is not None
    window.show_state(controller.state)  # the same state again: new cards
    rebuilt = window.cards[HOTSPOT].tradeoffs["docker-user"]
    assert rebuilt is not first
    qtbot.waitUntil(lambda: rebuilt.text() == first.text(), timeout=2000)


def test_escape_and_close_end_the_window_and_tab_stays_on_what_is_seen(
    controller: Controller, qtbot: Any
) -> None:
    from PySide6.QtCore import Qt

    window = StatusWindow(controller)
    qtbot.addWidget(window)
    window.show()
    qtbot.waitExposed(window)
    chain: list[QWidget] = []
    widget = window.nextInFocusChain()
    while widget is not window and len(chain) < 200:
        if widget.focusPolicy() & Qt.FocusPolicy.TabFocus and widget.isEnabled():
            chain.append(widget)
        widget = widget.nextInFocusChain()
    assert all(w.isVisible() for w in chain), [w for w in chain if not w.isVisible()]
    names = [w.objectName() or type(w).__name__ for w in chain]
    assert names.index("chains") < len(names) - 1
    assert chain[names.index("chains") + 1] is window.close_button
    qtbot.keyClick(window, Qt.Key.Key_Escape)
    assert not window.isVisible()
    window.show()
    window.close_button.click()
    assert not window.isVisible()


def test_windows_fit_the_screens_available_area(controller: Controller, qtbot: Any) -> None:
    """Offscreen the screen is 800×600: the chains dialog (1000×640 wanted) and the fix
    dialog shrink to it, buttons included (finding 5)."""
    from hotspotguard.ui.chains import ChainsDialog
    from hotspotguard.ui.fix_dialog import FixDialog

    for window in (
        StatusWindow(controller),
        ChainsDialog(controller),
        FixDialog(controller, HOTSPOT),
    ):
        qtbot.addWidget(window)
        area = window.screen().availableGeometry()
        assert window.width() <= area.width() and window.height() <= area.height()
        window.show()
        assert area.contains(window.frameGeometry().topLeft())


def test_without_the_helper_the_shared_connections_a_sentence_and_the_next_step(
    qloop: Any, qtbot: Any
) -> None:
    """The helper is not installed: the status window still shows the hotspot NetworkManager
    shares, says in one plain sentence what is missing, and gives the real command (the path
    sudo needs) — no backticks, no D-Bus error (issue 11, finding 2)."""
    from hotspotguard.system.helper_client import HelperUnavailable
    from hotspotguard.ui.controller import FixedHotspots, HotspotInfo
    from hotspotguard.ui.tray import StateText
    from tests.ui.fakes import CONNECTION

    backend = EngineBackend()
    backend.fail["GetSnapshot"] = HelperUnavailable.not_installed(
        "The name io.github.hotspotguard.Helper1 was not provided by any .service files"
    )
    hub = Controller(backend, FixedHotspots([HotspotInfo(HOTSPOT, CONNECTION)]), settle=0.01)
    with qtbot.waitSignal(hub.stateChanged, timeout=10_000) as published:
        hub.start()
    state = published.args[0]
    assert state["state"] == "error" and hub.helper_missing
    window = StatusWindow(hub)
    qtbot.addWidget(window)
    window.show()
    assert window.headline.text() == (
        "Cannot check the hotspot: the part of Hotspot Guard that reads the firewall is not "
        "installed"
    )
    assert window.shared[HOTSPOT].title() == "Hotspot (nmp-hs0)"
    step = window.next_step.text()
    assert window.next_step.isVisible() and "install-system" in step
    command = step.split("<code>")[1].split("</code>")[0]
    assert command.startswith("sudo /") and command.endswith("/hotspotguard-helper install-system")
    seen = " ".join(w.text() for w in window.findChildren(QLabel) if w.isVisible())
    assert "`" not in seen and "org.freedesktop" not in seen and ".service" not in seen
    assert "`" not in StateText().tooltip(state)
    hub.stop()
    qtbot.waitUntil(lambda: not hub._tasks, timeout=5_000)


def test_the_window_icon_says_the_state(controller: Controller, qtbot: Any) -> None:
    """Not the application's green check while the hotspot is blocked (finding 9, in part)."""
    from hotspotguard.ui.icons import state_icon

    window = StatusWindow(controller)
    qtbot.addWidget(window)
    shown = window.windowIcon().pixmap(22, 22).toImage()
    assert shown == state_icon("blocked").pixmap(22, 22).toImage()
    assert shown != state_icon("ok").pixmap(22, 22).toImage()


def test_every_fix_button_is_in_view_at_640_wide(controller: Controller, qtbot: Any) -> None:
    """A long strategy heading wraps: no Fix button is pushed past the window's right edge
    (the window does not scroll sideways; finding 5)."""
    window = StatusWindow(controller)
    qtbot.addWidget(window)
    window.resize(640, 480)
    window.show()
    card = window.cards[HOTSPOT]
    assert len(card.fix_buttons) >= 4
    from PySide6.QtWidgets import QScrollArea

    scroll = window.findChild(QScrollArea)
    assert scroll is not None and scroll.widget() is not None
    assert scroll.widget().minimumSizeHint().width() <= scroll.viewport().width()
    for button in card.fix_buttons.values():
        right = button.mapTo(scroll.viewport(), button.rect().topRight()).x()
        assert right < scroll.viewport().width(), (button.objectName(), right)
