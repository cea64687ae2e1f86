"""End to end in a private headless desktop: the real applet in a real tray host
(xfce4-panel: StatusNotifierItem and XEmbed) beside a real notification server (dunst).

The applet's Controller evaluates real captures with the engine (tests/ui_desktop/machine.py).
Screenshots land in tests/artifacts/screens/.
"""

from __future__ import annotations

import json
import os
import shutil
import time
from pathlib import Path

import pytest
from PySide6.QtGui import QColor, QImage, QPainter

from tests.ui_desktop.desktop_lab import Applet, Desktop, wait_for

pytestmark = pytest.mark.desktop

PANEL = "1024x32+0+0"
#: what each state's icon shows (its badge), in Breeze's palette
COLOURS = {
    "blocked": "#da4453",
    "ok": "#27ae60",
    "unknown": "#f67400",
    "error": "#da4453",
    "no-hotspot": "#7f8c8d",
}
SCREENSHOTS = Path(__file__).resolve().parents[2] / "resources" / "screenshots"


def colour_pixels(path: Path, colour: str, tolerance: int = 40) -> int:
    """How many pixels of the image are close to `colour`."""
    image = QImage(str(path))
    want = QColor(colour)
    count = 0
    for y in range(image.height()):
        for x in range(image.width()):
            pixel = image.pixelColor(x, y)
            if (
                abs(pixel.red() - want.red())
                + abs(pixel.green() - want.green())
                + abs(pixel.blue() - want.blue())
                < tolerance
            ):
                count += 1
    return count


def icon_pixels(path: Path, tolerance: int = 60) -> int:
    """How many pixels of a panel screenshot differ from the panel's background (its top-left
    pixel): our icon, whether the host draws our SVG or its theme's icon for the Breeze name."""
    image = QImage(str(path))
    background = image.pixelColor(0, 0)
    count = 0
    for y in range(image.height()):
        for x in range(image.width()):
            pixel = image.pixelColor(x, y)
            distance = (
                abs(pixel.red() - background.red())
                + abs(pixel.green() - background.green())
                + abs(pixel.blue() - background.blue())
            )
            count += distance > tolerance
    return count


def panel_shows(desktop: Desktop, path: Path, timeout: float = 10) -> int:
    def shown() -> int:
        desktop.screenshot(path, PANEL)
        return icon_pixels(path)

    return int(wait_for(shown, timeout, "our icon in the panel", step=0.2))


def test_icon_appears_even_when_the_applet_starts_before_the_panel(
    desktop: Desktop, screens: Path
) -> None:
    applet = Applet(desktop, "blocked")
    applet.wait("state", state="blocked")
    assert desktop.sni_items() == []  # no tray host yet: nothing to register with
    started = time.monotonic()
    desktop.panel()
    applet.wait("icon")  # re-created once the StatusNotifierWatcher appeared
    items = wait_for(desktop.sni_items, 10, "our StatusNotifierItem")
    registered = time.monotonic() - started
    assert len(items) == 1 and items[0].endswith("/StatusNotifierItem"), items
    assert panel_shows(desktop, screens / "panel-late-start.png") > 10
    print(f"panel start -> our item registered: {registered:.2f} s")
    applet.send("quit")
    assert applet.proc.wait(10) == 0
    wait_for(lambda: desktop.sni_items() == [], 5, "the item to go away")


def test_each_state_in_the_panel_and_the_windows(desktop: Desktop, screens: Path) -> None:
    desktop.panel()
    applet = Applet(desktop, "no-hotspot")
    applet.wait("state", state="no-hotspot")
    wait_for(desktop.sni_items, 10, "our StatusNotifierItem")
    previous = b""
    for kind in ("no-hotspot", "ok", "unknown", "error", "blocked"):
        if kind != "no-hotspot":
            applet.send(f"kind {kind}")
            applet.wait("state", state=kind)
        shot = screens / f"panel-{kind}.png"

        def redrawn(shot: Path = shot, previous: bytes = previous, kind: str = kind) -> bool:
            desktop.screenshot(shot, PANEL)
            if kind == "no-hotspot":  # Passive: the panel hides the item (nothing to say)
                return icon_pixels(shot) == 0
            return shot.read_bytes() != previous and icon_pixels(shot) > 5

        wait_for(redrawn, 10, f"the panel to show the {kind} icon", step=0.2)
        previous = shot.read_bytes()
    state = applet.wait("state", state="blocked")
    assert state["tooltip"] == "Hotspot nmp-hs0: Docker's FORWARD policy drops the phones' traffic"

    applet.send("show status")
    applet.wait("window", kind="status")
    time.sleep(1.0)  # the fixes' trade-offs are looked up in the background
    applet.send(f"grab status {screens / 'status-window.png'}")
    applet.wait("grabbed", key="status")
    applet.send("show chains")
    applet.wait("window", kind="chains")
    time.sleep(0.5)
    applet.send(f"grab chains {screens / 'chains-dialog.png'}")
    applet.wait("grabbed", key="chains")
    desktop.screenshot(screens / "desktop-windows.png")
    applet.send("quit")
    assert applet.proc.wait(10) == 0


def test_blocked_notification_fix_action_opens_the_fix_dialog(
    desktop: Desktop, screens: Path
) -> None:
    desktop.dunst()
    desktop.panel()
    applet = Applet(desktop, "blocked")
    applet.wait("state", state="blocked")
    applet.wait("notified", kind="blocked")
    wait_for(lambda: desktop.run(["dunstctl", "count", "displayed"]).strip() == "1", 5, "dunst")
    time.sleep(0.3)
    desktop.screenshot(screens / "notification.png")
    assert colour_pixels(screens / "notification.png", COLOURS["blocked"]) > 5

    desktop.dmenu_pick.write_text("Fix")
    desktop.run(["dunstctl", "context"])  # dunst's menu offers the actions; ours picks Fix
    opened = applet.wait("window", kind="fix", timeout=10)
    assert opened["args"] == ["nmp-hs0"]
    offered = desktop.dmenu_log.read_text()
    assert "Fix…" in offered and "Details" in offered, offered
    applet.wait("preview", timeout=10)  # the dialog asked for the plan: the real planner's
    time.sleep(0.5)
    applet.send(f"grab fix:nmp-hs0 {screens / 'fix-dialog.png'}")
    applet.wait("grabbed", key="fix:nmp-hs0")

    desktop.run(["dunstctl", "close-all"])  # dunst keeps closed notifications in its history
    history = json.loads(desktop.run(["dunstctl", "history"]))
    summaries = [n["summary"]["data"] for n in history["data"][0]]
    assert "Hotspot nmp-hs0 has no internet" in summaries
    applet.send("quit")
    assert applet.proc.wait(10) == 0


def test_an_xembed_tray_shows_the_icon(desktop: Desktop, screens: Path) -> None:
    """A tray with only the XEmbed protocol (trayer: no StatusNotifierWatcher): Qt embeds our
    icon there, with our SVG."""
    if shutil.which("trayer") is None:
        pytest.skip("needs the Debian package trayer")
    desktop.start(
        "trayer",
        ["trayer", "--edge", "top", "--align", "right", "--widthtype", "pixel", "--width",
         "96", "--heighttype", "pixel", "--height", "32", "--SetDockType", "false",
         "--transparent", "false", "--tint", "0x333333"],
    )  # fmt: skip
    applet = Applet(desktop, "blocked")
    applet.wait("state", state="blocked")
    shot = screens / "xembed-blocked.png"

    def embedded() -> bool:
        desktop.screenshot(shot, "96x32+928+0")
        return colour_pixels(shot, COLOURS["blocked"]) > 5

    wait_for(embedded, 15, "our icon in the XEmbed tray", step=0.2)
    assert desktop.sni_items() == []  # no StatusNotifierItem host: it is the XEmbed icon
    applet.send("quit")
    assert applet.proc.wait(10) == 0


def test_screenshots_for_the_readme(screens: Path) -> None:
    """With HOTSPOTGUARD_UPDATE_SCREENSHOTS=1, copies the best screenshots to
    resources/screenshots (after the tests that take them), the panel and the notification
    cropped to the top right corner; a plain run leaves the checkout as it is."""
    if not os.environ.get("HOTSPOTGUARD_UPDATE_SCREENSHOTS"):
        pytest.skip("set HOTSPOTGUARD_UPDATE_SCREENSHOTS=1 to refresh resources/screenshots")
    crops = {"panel-blocked.png": (784, 0, 240, 32), "notification.png": (544, 0, 480, 110)}
    wanted = [
        "panel-blocked.png",
        "notification.png",
        "status-window.png",
        "fix-dialog.png",
        "chains-dialog.png",
    ]
    present = [name for name in wanted if (screens / name).exists()]
    if not present:
        pytest.skip("no screenshots taken in this run")
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    states = [screens / f"panel-{kind}.png" for kind in PANEL_STATES]
    if all(path.exists() for path in states):
        assert panel_states(states).save(str(SCREENSHOTS / "panel-states.png"))
    for name in present:
        if name in crops:
            image = QImage(str(screens / name)).copy(*crops[name])
            assert image.save(str(SCREENSHOTS / name))
        else:
            shutil.copy(screens / name, SCREENSHOTS / name)


PANEL_STATES = ("no-hotspot", "ok", "unknown", "error", "blocked")


def panel_states(paths: list[Path], size: int = 32, gap: int = 12) -> QImage:
    """The panel's icon in each state, side by side on the panel's colour."""
    images = [QImage(str(path)) for path in paths]
    strip = QImage(len(images) * (size + gap) + gap, size, QImage.Format.Format_RGB32)
    strip.fill(images[0].pixelColor(0, 0))
    painter = QPainter(strip)
    for index, image in enumerate(images):
        background = image.pixelColor(0, 0)
        columns = [
            x
            for x in range(image.width())
            if any(image.pixelColor(x, y) != background for y in range(image.height()))
        ]
        centre = (columns[0] + columns[-1]) // 2 if columns else image.width() - size
        icon = image.copy(max(0, centre - size // 2), 0, size, size)
        painter.drawImage(gap + index * (size + gap), 0, icon)
    painter.end()
    return strip
