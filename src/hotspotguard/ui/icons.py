"""The applet's icons: our SVGs (a hotspot glyph and a badge for the state, legible at 22 px on
light and dark panels: tests/ui/test_icons.py), found through the icon theme where installed
(hicolor), else from the resources, else a coloured circle."""

from __future__ import annotations

from functools import cache
from pathlib import Path

from PySide6.QtCore import QRectF
from PySide6.QtGui import QColor, QIcon, QPainter, QPixmap

from hotspotguard.ui.shipped import source_file

#: a state (WatchState.state, or a flow verdict) -> the icon's name
STATE_ICONS: dict[str, str] = {
    "no-hotspot": "hotspotguard-idle",
    "idle": "hotspotguard-idle",
    "ok": "hotspotguard-ok",
    "accept": "hotspotguard-ok",
    "blocked": "hotspotguard-blocked",
    "drop": "hotspotguard-blocked",
    "unknown": "hotspotguard-unknown",
    "error": "hotspotguard-error",
}

#: the state's colour per icon name: the SVG badges' fill, the chips', the fallback circle's
COLOURS: dict[str, str] = {
    "hotspotguard-idle": "#8c8c8c",
    "hotspotguard-ok": "#1e8e4a",
    "hotspotguard-blocked": "#da4453",
    "hotspotguard-unknown": "#f6b100",
    "hotspotguard-error": "#8e44ad",
}

SIZES = (16, 22, 24, 32, 48, 64)


def state_colour(state: str) -> QColor:
    """The colour that stands for a state (chips and badges use it too)."""
    return QColor(COLOURS.get(STATE_ICONS.get(state, "hotspotguard-unknown"), "#8c8c8c"))


def circle_icon(colour: QColor | str) -> QIcon:
    """A filled circle with a thin darker ring, at the usual icon sizes."""
    from PySide6.QtCore import Qt  # the Qt namespace costs ≈ 50 ms to load: not before the icon

    fill = QColor(colour)
    icon = QIcon()
    for size in SIZES:
        pixmap = QPixmap(size, size)
        pixmap.fill(Qt.GlobalColor.transparent)
        painter = QPainter(pixmap)
        painter.setRenderHint(QPainter.RenderHint.Antialiasing)
        painter.setPen(fill.darker(140))
        painter.setBrush(fill)
        margin = max(1.0, size / 8)
        painter.drawEllipse(QRectF(margin, margin, size - 2 * margin, size - 2 * margin))
        painter.end()
        icon.addPixmap(pixmap)
    return icon


def svg_file(name: str) -> Path | None:
    """Our shipped ``resources/icons/NAME.svg``, if it is there."""
    return source_file("resources", "icons", f"{name}.svg")


def svg_path(state: str) -> str | None:
    """The shipped SVG for a state (None when the resources are not installed)."""
    path = svg_file(STATE_ICONS.get(state, "hotspotguard-unknown"))
    return str(path) if path else None


@cache
def icon(name: str) -> QIcon:
    """The theme's `name` (ours, installed in hicolor), else our ``name.svg``, else a circle
    in the state's colour."""
    svg = svg_file(name)
    fallback = QIcon(str(svg)) if svg else QIcon()
    if fallback.isNull():
        fallback = circle_icon(COLOURS.get(name, "#8c8c8c"))
    return QIcon.fromTheme(name, fallback)


def state_icon(state: str) -> QIcon:
    """The icon for a WatchState state or a flow verdict (on every desktop: Breeze's
    security-* shields say neither "hotspot" nor the state clearly at 22 px)."""
    return icon(STATE_ICONS.get(state, "hotspotguard-unknown"))


@cache
def owner_colour(owner: str) -> QColor:
    """A stable colour per firewall owner for its badge."""
    known = {
        "networkmanager": "#2f7fc1",
        "docker": "#1d63ed",
        "ufw": "#dd4814",
        "firewalld": "#b51f24",
        "libvirt": "#6a5acd",
        "hotspotguard": "#2e9e44",
        "kubernetes": "#326ce5",
        "podman": "#892ca0",
        "tailscale": "#444444",
    }
    if owner in known:
        return QColor(known[owner])
    hue = sum(owner.encode()) * 37 % 360
    return QColor.fromHsv(hue, 120, 170)


@cache
def owner_icon(owner: str) -> QIcon:
    return circle_icon(owner_colour(owner))
