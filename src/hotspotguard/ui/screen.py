"""Window sizes that fit the screen: a wanted size, never more than the screen's available
area (the panel left out) — at 125 % on 1366×768 a fixed 1000×640 hides a dialog's buttons."""

from __future__ import annotations

from PySide6.QtWidgets import QWidget

#: the share of the available area a window may take at most
MARGIN = 0.92


def fit(window: QWidget, width: int, height: int) -> None:
    """Resize `window` to `width`×`height`, shrunk to the available area of its screen (and
    centred there when it had to shrink)."""
    screen = window.screen()
    if screen is None:
        window.resize(width, height)
        return
    area = screen.availableGeometry()
    w = min(width, int(area.width() * MARGIN))
    h = min(height, int(area.height() * MARGIN))
    window.resize(w, h)
    if (w, h) != (width, height):
        window.move(area.x() + (area.width() - w) // 2, area.y() + (area.height() - h) // 2)
