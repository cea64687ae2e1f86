"""The applet's icons: the desktop theme's, else our SVGs, else a coloured circle."""

from __future__ import annotations

from functools import cache
from pathlib import Path

from PySide6.QtCore import QRectF, Qt
from PySide6.QtGui import QColor, QIcon, QPainter, QPixmap

#: resources/icons of a source checkout (an installed package finds them in the theme)
ICON_DIR = Path(__file__).resolve().parents[3] / "resources" / "icons"

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


@cache
def icon(name: str, icon_dir: Path = ICON_DIR) -> QIcon:
    """The theme's `name`, else ``icon_dir/name.svg``, else a circle in the state's colour."""
    svg = icon_dir / f"{name}.svg"
    if svg.is_file():
        fallback = QIcon(str(svg))
        if fallback.isNull():
            fallback = circle_icon(COLOURS.get(name, "#8c8c8c"))
    else:
        fallback = circle_icon(COLOURS.get(name, "#8c8c8c"))
    return QIcon.fromTheme(name, fallback)


def state_icon(state: str) -> QIcon:
    """The icon for a WatchState state or a flow verdict."""
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
