"""The fix dialog: the real planner's plan in full, apply with progress, the re-checked
verdict (the real engine on the lab's capture after the fix), errors in words."""

from __future__ import annotations

import asyncio
from typing import Any

from hotspotguard.system.helper_client import HelperRefused
from hotspotguard.ui.controller import Controller
from hotspotguard.ui.fix_dialog import FixDialog
from tests.ui.fakes import HOTSPOT, EngineBackend


def open_dialog(controller: Controller, qtbot: Any, strategy: str = "") -> FixDialog:
    dialog = FixDialog(controller, HOTSPOT, strategy)
    qtbot.addWidget(dialog)
    dialog.show()
    qtbot.waitUntil(lambda: dialog.preview is not None or dialog.error.isVisible(), timeout=10_000)
    return dialog


def test_plan_apply_and_recheck(controller: Controller, backend: EngineBackend, qtbot: Any) -> None:
    dialog = open_dialog(controller, qtbot)
    # only what the planner can do here (Docker 20.10, no docker-bridges: not the other two)
    assert [dialog.strategy_box.itemData(i) for i in range(dialog.strategy_box.count())] == [
        "",
        "docker-user",
        "forward-allow",
        "docker-netns",
    ]
    # worded from the plan's strategy and interface (the internal id is no main text)
    assert dialog.summary.text() == (
        "For nmp-hs0: accept the hotspot's traffic in Docker's DOCKER-USER chain"
    )
    lines = dialog.plan.toPlainText().splitlines()
    assert lines and all(line.startswith("iptables-nft -t filter -I DOCKER-USER") for line in lines)
    assert "hotspotguard:docker-user@nmp-hs0" in lines[0]
    # each command on one line on screen: never wrapped inside an option (finding 5)
    assert dialog.plan.lineWrapMode() == dialog.plan.LineWrapMode.NoWrap
    dialog.plan.resize(300, 200)  # narrower than any command
    dialog.plan.viewport().repaint()
    block = dialog.plan.document().firstBlock()
    while block.isValid():
        assert block.layout().lineCount() <= 1, block.text()
        block = block.next()
    assert dialog.tradeoff.text().startswith("Trade-off: ")
    assert "Afterwards: ok:" in dialog.before_after.text()
    assert dialog.apply_button.isEnabled()

    backend.hold["ApplyFix"] = asyncio.Event()
    dialog.permanent.setChecked(True)
    dialog.apply_button.click()
    qtbot.waitUntil(lambda: "ApplyFix" in backend.calls)
    assert dialog.progress.isVisible()  # busy: indicator on, everything else off
    assert not dialog.apply_button.isEnabled() and not dialog.close_button.isEnabled()
    assert not dialog.strategy_box.isEnabled() and not dialog.permanent.isEnabled()
    backend.hold.pop("ApplyFix").set()
    qtbot.waitUntil(lambda: dialog.applied is not None, timeout=10_000)
    assert dialog.applied["permanent"] is True
    assert dialog.outcome.text() == "Applied docker-user@nmp-hs0. It is kept after reboot."
    assert dialog.before_after.text().startswith("Checked again: ok: clients of nmp-hs0")
    assert not dialog.progress.isVisible() and dialog.close_button.isEnabled()
    assert not dialog.apply_button.isEnabled()  # done: nothing more to apply


def test_a_strategy_that_cannot_be_planned(
    controller: Controller, backend: EngineBackend, qtbot: Any
) -> None:
    backend.unavailable["forward-allow"] = "the chain it would edit is not there"
    dialog = open_dialog(controller, qtbot, "forward-allow")
    assert dialog.error.isVisible()
    assert "\n" not in dialog.error.text() and dialog.error.text()
    assert not dialog.apply_button.isEnabled()
    dialog.strategy_box.setCurrentIndex(dialog.strategy_box.findData("docker-user"))
    qtbot.waitUntil(lambda: dialog.preview is not None, timeout=10_000)
    assert dialog.apply_button.isEnabled() and not dialog.error.isVisible()


def test_refusals_and_stale_plans_in_words(
    controller: Controller, backend: EngineBackend, qtbot: Any
) -> None:
    dialog = open_dialog(controller, qtbot)
    backend.fail["ApplyFix"] = HelperRefused("AccessDenied", "org.freedesktop.PolicyKit1…")
    dialog.apply_button.click()
    qtbot.waitUntil(lambda: dialog.error.isVisible(), timeout=10_000)
    assert dialog.error.text() == "Not allowed: the system's policy refused this change."
    assert dialog.apply_button.isEnabled() and dialog.applied is None
    del backend.fail["ApplyFix"]
    backend.generation = "moved"  # the firewall changed after the preview
    dialog.apply_button.click()
    qtbot.waitUntil(lambda: "look at the plan again" in dialog.error.text(), timeout=10_000)
    assert dialog.applied is None
