"""Fix… in a real Plasma session asks for the password through KDE's own polkit agent.

The applet runs as the logged-in desktop user (tests/plasma/polkit_session.py: a login session
shaped as logind writes it, a real polkitd 126 on the lab's system bus, polkit-kde-agent-1
registered for that session, our helper bus-activated as root in a fresh network namespace
where Docker 28's rules block a NetworkManager hotspot). Plasma's secondary action on the tray
item (``SecondaryActivate``, a middle click) opens the fix dialog; its Apply calls the helper,
the helper asks polkitd, polkitd asks KDE's agent, whose dialog is on the screenshots
(tests/artifacts/screens/plasma-polkit-prompt.png). Cancelled: nothing changes. The admin's
password typed into KDE's dialog: the fix is in the kernel and the item is ``Active`` again.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.plasma import polkit_session
from tests.plasma.plasma_lab import Plasma
from tests.plasma.polkit_session import SessionPolkit
from tests.ui_desktop import sni_probe
from tests.ui_desktop.desktop_lab import wait_for

pytestmark = pytest.mark.plasma

SCREENS = Path(__file__).resolve().parents[1] / "artifacts" / "screens"


@pytest.fixture
def session_polkit(plasma: Plasma) -> Iterator[SessionPolkit]:
    reason = polkit_session.missing()
    if reason:
        pytest.skip(reason)
    lab = SessionPolkit(plasma)
    try:
        yield lab
    finally:
        lab.close()


def test_fix_asks_kdes_polkit_agent_cancel_then_password(
    plasma: Plasma, session_polkit: SessionPolkit
) -> None:
    lab = session_polkit
    assert "Registered Authentication Agent for unix-session:2" in lab.log("polkit")
    lab.docker_hotspot()
    applet = lab.applet()

    def outcome() -> str:
        """What the fix dialog says under its buttons."""
        applet.seen = [e for e in applet.seen if e.get("event") != "outcome"]
        applet.send("outcome fix:hs0")
        return str(applet.wait("outcome", timeout=5)["text"])

    def attention() -> str | None:
        for item in plasma.sni_items():
            if sni_probe.properties(plasma.address, item)["Status"] == "NeedsAttention":
                return item
        return None

    try:
        applet.wait("state", state="blocked", timeout=40)  # read: "yes" for an active session
        item = wait_for(attention, 10, "our item, NeedsAttention")
        sni_probe.call(plasma.address, item, "SecondaryActivate")  # middle click: Fix…
        opened = applet.wait("window", kind="fix", timeout=10)
        assert opened["args"] == ["hs0"]
        applet.wait("preview", timeout=20)

        # 1. the prompt, cancelled: refused, nothing changed
        applet.send("apply fix:hs0")
        lab.agent_dialog(SCREENS / "plasma-polkit-prompt.png")
        plasma.run("xdotool", "key", "Escape")
        wait_for(lambda: lab.agent_window() is None, 10, "the dialog to close", step=0.2)
        wait_for(lambda: not outcome().startswith("Applying"), 15, "the refusal", step=0.3)
        assert lab.tagged_rules() == []
        assert "Applied" not in outcome()
        assert applet.proc.poll() is None
        assert sni_probe.properties(plasma.address, item)["Status"] == "NeedsAttention"

        # 2. the admin's password: applied in the kernel, the item Active again
        applet.send("apply fix:hs0")
        lab.agent_dialog(SCREENS / "plasma-polkit-prompt-again.png")
        plasma.run("xdotool", "type", "--delay", "15", lab.password)
        plasma.run("xdotool", "key", "Return")
        applet.wait("state", state="ok", timeout=30)
        assert lab.tagged_rules(), lab.log("agent")
        wait_for(lambda: outcome().startswith("Applied"), 10, "the dialog's outcome", step=0.3)
        assert sni_probe.properties(plasma.address, item)["Status"] == "Active"
        plasma.screenshot(SCREENS / "plasma-polkit-applied.png")
    finally:
        applet.send("quit")
        applet.proc.wait(10)
