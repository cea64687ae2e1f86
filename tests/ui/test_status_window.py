"""The status window over the controller, fed the lab's NetworkManager + Docker capture."""

from __future__ import annotations

from typing import Any

from PySide6.QtWidgets import QPushButton, QWidget

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
    assert card.sentence.text().startswith("blocked: Docker's filter FORWARD policy drop stops")
    chips = {name: chip.property("state") for name, chip in card.chips.items()}
    assert chips == {"dhcp": "ok", "dns": "ok", "outbound": "blocked", "reply": "blocked"}
    assert card.chips["outbound"].text() == "Internet: blocked"
    assert card.blocker.text() == "Blocked by Docker: ip filter FORWARD — policy drop"
    assert list(card.fix_buttons) == [
        "docker-user",
        "docker-stale-drop",
        "forward-allow",
        "docker-no-drop",
    ]
    for strategy in ("docker-user", "forward-allow"):
        tradeoff = card.tradeoffs[strategy]
        qtbot.waitUntil(lambda label=tradeoff: "looking" not in label.text())
        assert tradeoff.text().startswith("Trade-off: ")
    stale = card.tradeoffs["docker-stale-drop"]  # Docker 20.10 here: why not, in words
    qtbot.waitUntil(lambda: stale.text().startswith("Not available: "))
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
    cannot = ("docker-stale-drop", "docker-no-drop")
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
