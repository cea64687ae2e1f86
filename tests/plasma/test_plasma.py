"""The applet in a real Plasma 6 panel (tests/plasma/plasma_lab.py; `make test-plasma`).

What Plasma does with our StatusNotifierItem, read from the bus and seen on screenshots taken
here (tests/artifacts/screens/plasma-*.png): the item moves to the tray's overflow when
``Passive`` (no hotspot) and comes back when ``NeedsAttention`` (blocked), with our icons
(installed in the session user's hicolor); its menu over dbusmenu; the notification through
plasmashell's own server, whose *Fix…* button opens the fix dialog; and the applet surviving
kded6 (the watcher) coming after it and restarting (issue 11, finding 1).
"""

from __future__ import annotations

import time
from pathlib import Path

import pytest
from PySide6.QtGui import QColor, QImage

from hotspotguard.ui.icons import state_colour
from tests.plasma.plasma_lab import TRAY, Plasma
from tests.ui_desktop import sni_probe
from tests.ui_desktop.desktop_lab import Applet, wait_for

pytestmark = pytest.mark.plasma

SCREENS = Path(__file__).resolve().parents[1] / "artifacts" / "screens"


def tray_differs(a: Path, b: Path) -> int:
    """How many pixels differ between two shots of the tray's icon area."""
    one, two = QImage(str(a)), QImage(str(b))
    if one.size() != two.size():
        return one.width() * one.height()
    count = 0
    for y in range(one.height()):
        for x in range(one.width()):
            p, q = one.pixelColor(x, y), two.pixelColor(x, y)
            count += abs(p.red() - q.red()) + abs(p.green() - q.green()) > 60
    return count


def coloured(shot: Path, colour: QColor) -> int:
    """How many pixels of a shot are (nearly) `colour`: a state's badge."""
    image = QImage(str(shot))
    return sum(
        abs(p.red() - colour.red())
        + abs(p.green() - colour.green())
        + abs(p.blue() - colour.blue())
        < 60
        for y in range(image.height())
        for x in range(image.width())
        if (p := image.pixelColor(x, y))
    )


def test_the_applet_survives_kded_coming_after_it_and_restarting(bare_session: Plasma) -> None:
    bare = bare_session  # the login race: the applet starts before Plasma's tray
    applet = Applet(bare, "blocked")  # type: ignore[arg-type]
    applet.wait("icon", mode="xembed", timeout=30)
    bare.start_plasma()
    applet.wait("icon", mode="sni", timeout=20)
    items = wait_for(bare.sni_items, 10, "our item with kded6's watcher")
    bare.screenshot(SCREENS / "plasma-late-start.png")
    for _ in range(2):
        bare.restart_kded()
        items = wait_for(bare.sni_items, 10, "our item registered again")
        assert len(items) == 1
        assert applet.proc.poll() is None, bare.log("applet")
    props = sni_probe.properties(bare.address, items[0])
    assert props["Status"] == "NeedsAttention"
    assert "RuntimeError" not in bare.log("applet")
    applet.send("quit")
    assert applet.proc.wait(10) == 0


def test_plasmas_tray_hides_a_quiet_item_and_brings_back_a_blocked_one(plasma: Plasma) -> None:
    wait_for(lambda: plasma.has_name("org.kde.StatusNotifierWatcher"), 10, "the watcher")
    empty = SCREENS / "plasma-tray-empty.png"
    before = SCREENS / "plasma-tray-before.png"

    def settled() -> bool:  # the panel has stopped moving in
        plasma.screenshot(before, TRAY)
        time.sleep(0.5)
        return tray_differs(plasma.screenshot(empty, TRAY), before) == 0

    wait_for(settled, 20, "Plasma's panel to settle", step=0.2)
    applet = Applet(plasma, "no-hotspot")  # type: ignore[arg-type]
    try:
        applet.wait("state", state="no-hotspot", timeout=30)
        (item,) = wait_for(plasma.sni_items, 10, "our item")
        assert sni_probe.properties(plasma.address, item)["Status"] == "Passive"
        time.sleep(1)
        shot = plasma.screenshot(SCREENS / "plasma-tray-no-hotspot.png", TRAY)
        assert tray_differs(shot, empty) < 20, "a Passive item is in the overflow"

        for kind, status, icon in (
            ("blocked", "NeedsAttention", "hotspotguard-blocked"),
            ("ok", "Active", "hotspotguard-ok"),
        ):
            applet.send(f"kind {kind}")
            applet.wait("state", state=kind)
            props = wait_for(
                lambda s=status: (
                    (p := sni_probe.properties(plasma.address, item))["Status"] == s and p
                ),
                5,
                status,
            )
            assert props["IconName"] == icon  # ours, in hicolor, resolved by Qt and Plasma
            if status == "NeedsAttention":
                assert props["AttentionIconName"] == icon
            path = SCREENS / f"plasma-tray-{kind}.png"
            wait_for(  # our icon, with its state's badge (not the previous state's)
                lambda path=path, kind=kind: (
                    tray_differs(plasma.screenshot(path, TRAY), empty) > 50
                    and coloured(path, state_colour(kind)) >= 6
                ),
                10,
                f"our {kind} icon in Plasma's tray",
                step=0.3,
            )
        plasma.screenshot(SCREENS / "plasma-desktop-ok.png")

        labels = sni_probe.menu_labels(plasma.address, item)
        assert labels[0] == "Hotspot status…" and labels[-2:] == ["Start with Plasma", "Quit"]

        applet.send("kind no-hotspot")
        wait_for(
            lambda: tray_differs(plasma.screenshot(shot, TRAY), empty) < 20,
            10,
            "the item back in the overflow",
            step=0.3,
        )
    finally:
        applet.send("quit")
        applet.proc.wait(10)


def test_the_notification_in_plasma_and_its_fix_button(plasma: Plasma) -> None:
    assert plasma.name_owner_comm("org.freedesktop.Notifications") == "plasmashell"
    applet = Applet(plasma, "ok")  # type: ignore[arg-type]
    try:
        applet.wait("state", state="ok", timeout=30)
        applet.send("kind blocked")
        applet.wait("notified", kind="blocked")

        def popup() -> tuple[int, int, int, int] | None:
            for _wid, _name, x, y, w, h in plasma.windows():
                if 200 < w < 600 and 60 < h < 300 and y > 300:
                    return x, y, w, h
            return None

        x, y, w, h = wait_for(popup, 5, "Plasma's notification popup", step=0.2)
        plasma.screenshot(SCREENS / "plasma-notification.png")
        plasma.click(x + w - 89, y + h - 20)  # its Fix… button (left of Details)
        opened = applet.wait("window", kind="fix", timeout=10)
        assert opened["args"] == ["nmp-hs0"]
        applet.wait("preview", timeout=10)
        time.sleep(0.5)
        plasma.screenshot(SCREENS / "plasma-fix-dialog.png")
    finally:
        applet.send("quit")
        applet.proc.wait(10)


def test_in_chinese(plasma: Plasma) -> None:
    """LANG=zh_CN.UTF-8: the item's tooltip and menu, read from the bus, and the notification
    on screen are Chinese (the tree has a CJK font: no boxes)."""
    applet = Applet(plasma, "ok", env={"LANG": "zh_CN.UTF-8"})  # type: ignore[arg-type]
    try:
        applet.wait("state", state="ok", timeout=30)
        (item,) = wait_for(plasma.sni_items, 10, "our item")
        applet.send("kind blocked")
        applet.wait("notified", kind="blocked")
        props = wait_for(
            lambda: (
                (p := sni_probe.properties(plasma.address, item))["Status"] == "NeedsAttention"
                and p
            ),
            5,
            "NeedsAttention",
        )
        assert props["Title"] == "热点守护"
        assert any("\u4e00" <= c <= "\u9fff" for c in props["ToolTip"][3]), props["ToolTip"]
        labels = sni_probe.menu_labels(plasma.address, item)
        assert labels[0] == "热点状态…", labels
        time.sleep(1)
        plasma.screenshot(SCREENS / "plasma-notification-zh_CN.png")
    finally:
        applet.send("quit")
        applet.proc.wait(10)
