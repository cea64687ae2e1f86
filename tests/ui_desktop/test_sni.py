"""Our StatusNotifierItem in a real SNI host (xfce4-panel under Xvfb), read from the bus as the
host reads it: its Status per state, its menu over dbusmenu, the clicks — and the applet
surviving a watcher that appears after it and restarts (issue 11, finding 1)."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.ui_desktop import sni_probe
from tests.ui_desktop.desktop_lab import Applet, Desktop, wait_for

pytestmark = pytest.mark.desktop

WATCHER = "org.kde.StatusNotifierWatcher"


def test_a_watcher_that_appears_late_and_restarts_keeps_the_applet_and_its_item(
    desktop: Desktop,
) -> None:
    applet = Applet(desktop, "blocked")
    applet.wait("icon", mode="xembed")  # no watcher yet: the QSystemTrayIcon stand-in
    assert desktop.sni_items() == []
    panel = desktop.panel()
    applet.wait("icon", mode="sni")
    (_item,) = wait_for(desktop.sni_items, 10, "our item registered")
    for restart in range(2):  # the watcher goes and comes back (a kded or panel restart)
        desktop.stop(panel)
        wait_for(lambda: not desktop.has_name(WATCHER), 10, "the watcher to go")
        assert applet.proc.poll() is None, f"the applet quit ({restart})"
        panel = desktop.panel()
        items = wait_for(desktop.sni_items, 10, "our item registered again")
        assert len(items) == 1, items
        assert applet.proc.poll() is None
    address = desktop.env["DBUS_SESSION_BUS_ADDRESS"]
    assert sni_probe.properties(address, items[0])["Status"] == "NeedsAttention"
    applet.send("quit")
    assert applet.proc.wait(10) == 0
    wait_for(lambda: desktop.sni_items() == [], 5, "the item to go away")


def test_status_follows_the_hotspot_and_the_menu_is_read_over_dbusmenu(
    desktop: Desktop, screens: Path
) -> None:
    desktop.panel()
    applet = Applet(desktop, "no-hotspot")
    applet.wait("state", state="no-hotspot")
    (item,) = wait_for(desktop.sni_items, 10, "our item")
    address = desktop.env["DBUS_SESSION_BUS_ADDRESS"]
    props = sni_probe.properties(address, item)
    assert props["Category"] == "SystemServices"
    assert props["Id"] == "hotspotguard"
    assert props["Title"] == "Hotspot Guard"
    assert props["ItemIsMenu"] is False
    assert props["Menu"] == "/MenuBar"
    expected = {
        "no-hotspot": "Passive",
        "ok": "Active",
        "unknown": "NeedsAttention",
        "error": "Active",
        "blocked": "NeedsAttention",
    }
    for kind, status in expected.items():
        if kind != "no-hotspot":
            applet.send(f"kind {kind}")
        tip = applet.wait("state", state=kind)["tooltip"]
        props = wait_for(
            lambda s=status, t=tip: (
                (p := sni_probe.properties(address, item))["Status"] == s
                and p["ToolTip"][3] == t
                and p
            ),
            5,
            f"Status {status} for {kind}",
        )
        _icon_name, _pixmaps, title, text = props["ToolTip"]
        assert title == "Hotspot Guard" and text == tip
        sizes = [(w, h) for w, h, data in props["IconPixmap"] if len(data) == 4 * w * h]
        assert (22, 22) in sizes, sizes
        if status == "NeedsAttention":
            assert props["AttentionIconPixmap"]
        desktop.screenshot(screens / f"sni-{kind}.png", "1024x32+0+0")
    assert applet.wait("state", state="error")["tooltip"].startswith("Cannot check the hotspot: ")

    labels = sni_probe.menu_labels(address, item)
    assert labels == [
        "Hotspot status…",
        "-",
        "Fix…",
        "Undo",
        "-",
        "Firewall chains…",
        "-",
        "Start at login",
        "Quit",
    ]
    entries = {e.get("label"): e for e in sni_probe.menu_items(address, item)}
    assert entries["Fix…"]["enabled"] is True  # blocked: a fix is on offer
    assert entries["Undo"]["enabled"] is False
    assert entries["Start at login"]["toggle-type"] == "checkmark"

    sni_probe.call(address, item, "SecondaryActivate")  # middle click: Fix…
    assert applet.wait("window", kind="fix")["args"] == ["nmp-hs0"]
    sni_probe.call(address, item, "Scroll", "is", 3, "vertical")  # nothing
    sni_probe.call(address, item, "Activate")  # left click: the status window
    applet.wait("window", kind="status")
    sni_probe.click_menu(address, item, "Firewall chains…")
    applet.wait("window", kind="chains")

    applet.send("kind ok")
    wait_for(lambda: sni_probe.properties(address, item)["Status"] == "Active", 5, "ok")
    entries = {e.get("label"): e for e in sni_probe.menu_items(address, item)}
    assert entries["Fix…"]["enabled"] is False
    sni_probe.call(address, item, "SecondaryActivate")  # not blocked: middle click does nothing
    sni_probe.click_menu(address, item, "Quit")
    assert applet.proc.wait(10) == 0
    fixes = [e for e in applet.seen if e.get("event") == "window" and e.get("kind") == "fix"]
    assert len(fixes) == 1  # the second middle click (not blocked) opened nothing
