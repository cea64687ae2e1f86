"""The applet's icons: the desktop theme's, else our SVGs, else a coloured circle."""

from __future__ import annotations

import os
from functools import cache
from pathlib import Path

from PySide6.QtCore import QRectF
from PySide6.QtGui import QColor, QIcon, QPainter, QPixmap

from hotspotguard.ui.shipped import source_file

#: a state -> the Breeze icon that says it (asked of the theme first under Plasma)
THEME_NAMES: dict[str, str] = {
    "no-hotspot": "firewall-applet",
    "ok": "security-high",
    "blocked": "security-low",
    "unknown": "security-medium",
    "error": "firewall-applet-error",
}

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

#: the fallback circle's colour per icon name
COLOURS: dict[str, str] = {
    "hotspotguard-idle": "#8c8c8c",
    "hotspotguard-ok": "#2e9e44",
    "hotspotguard-blocked": "#d7263d",
    "hotspotguard-unknown": "#e0a100",
    "hotspotguard-error": "#7a3fb5",
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
def icon(name: str, theme_name: str | None = None) -> QIcon:
    """The theme's `theme_name` (or `name`), else our ``name.svg``, else a circle in the
    state's colour."""
    svg = svg_file(name)
    fallback = QIcon(str(svg)) if svg else QIcon()
    if fallback.isNull():
        fallback = circle_icon(COLOURS.get(name, "#8c8c8c"))
    return QIcon.fromTheme(theme_name or name, fallback)


def state_icon(state: str) -> QIcon:
    """The icon for a WatchState state or a flow verdict: Breeze's where the theme has it."""
    name = STATE_ICONS.get(state, "hotspotguard-unknown")
    verdict_state = {"accept": "ok", "drop": "blocked"}.get(state, state)
    return icon(name, THEME_NAMES.get(verdict_state) if breeze_desktop() else None)


def breeze_desktop() -> bool:
    """Whether the desktop is Plasma, whose Breeze theme draws the THEME_NAMES icons well;
    elsewhere (an Adwaita panel's old security-* shields) our own SVGs say more."""
    return "KDE" in os.environ.get("XDG_CURRENT_DESKTOP", "").upper().split(":")


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
