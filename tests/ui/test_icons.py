"""The tray's icons say "hotspot" and the state at a glance at 22 px on Breeze's light and dark
panels (issue 11, finding 9): each is rendered at 22 px on each background, the sheet is saved
(tests/artifacts/screens/icons-22px.png, 6× enlarged) and contrast is measured, as WCAG measures
it (relative luminance; 3:1 is its floor for graphics that carry meaning)."""

from __future__ import annotations

import itertools
from pathlib import Path

import pytest
from PySide6.QtCore import QRectF
from PySide6.QtGui import QColor, QImage, QPainter
from PySide6.QtSvg import QSvgRenderer

from hotspotguard.ui import icons

SCREENS = Path(__file__).resolve().parents[1] / "artifacts" / "screens"
SIZE = 22
#: Breeze's window and view backgrounds, light (Plasma 6 panels use them) and dark
BACKGROUNDS = {
    "light": "#eff0f1",
    "light view": "#fcfcfc",
    "dark": "#31363b",
    "dark view": "#202326",
}
STATES = ("no-hotspot", "ok", "blocked", "unknown", "error")
#: the badge's place: the bottom-right quarter, where the state is said
BADGE = (11, 11, 22, 22)


def luminance(colour: QColor) -> float:
    def channel(value: float) -> float:
        return value / 12.92 if value <= 0.04045 else ((value + 0.055) / 1.055) ** 2.4

    return (
        0.2126 * channel(colour.redF())
        + 0.7152 * channel(colour.greenF())
        + 0.0722 * channel(colour.blueF())
    )


def contrast(a: QColor, b: QColor) -> float:
    high, low = sorted((luminance(a), luminance(b)), reverse=True)
    return (high + 0.05) / (low + 0.05)


def render(state: str, background: str) -> QImage:
    path = icons.svg_path(state)
    assert path is not None, "the shipped icons are missing"
    image = QImage(SIZE, SIZE, QImage.Format.Format_ARGB32)
    image.fill(QColor(background))
    painter = QPainter(image)
    QSvgRenderer(path).render(painter, QRectF(0, 0, SIZE, SIZE))
    painter.end()
    return image


def pixels(image: QImage, box: tuple[int, int, int, int] = (0, 0, SIZE, SIZE)) -> list[QColor]:
    x0, y0, x1, y1 = box
    return [image.pixelColor(x, y) for y in range(y0, y1) for x in range(x0, x1)]


def standing_out(image: QImage, background: str, box: tuple[int, int, int, int]) -> int:
    """How many pixels in `box` stand out from the background at 3:1 or more."""
    back = QColor(background)
    return sum(contrast(p, back) >= 3.0 for p in pixels(image, box))


@pytest.fixture(scope="module")
def sheet(qapp: object) -> dict[tuple[str, str], QImage]:
    images = {(s, b): render(s, bg) for s in STATES for b, bg in BACKGROUNDS.items()}
    zoom, gap = 6, 8
    cell = SIZE * zoom + gap
    out = QImage(
        gap + cell * len(STATES), gap + cell * len(BACKGROUNDS), QImage.Format.Format_RGB32
    )
    out.fill(QColor("#808080"))
    painter = QPainter(out)
    for (i, state), (j, name) in itertools.product(enumerate(STATES), enumerate(BACKGROUNDS)):
        target = QRectF(gap + i * cell, gap + j * cell, SIZE * zoom, SIZE * zoom)
        painter.drawImage(target, images[state, name])
    painter.end()
    SCREENS.mkdir(parents=True, exist_ok=True)
    out.save(str(SCREENS / "icons-22px.png"))
    return images


@pytest.mark.parametrize("background", BACKGROUNDS)
@pytest.mark.parametrize("state", STATES)
def test_the_hotspot_glyph_stands_out(
    sheet: dict[tuple[str, str], QImage], state: str, background: str
) -> None:
    """The hotspot's waves and dot (top left) are drawn in pixels at 3:1 or more against the
    panel: at least a fifth of their area, on light and on dark."""
    glyph = (0, 0, 15, 15)
    count = standing_out(sheet[state, background], BACKGROUNDS[background], glyph)
    assert count >= 15 * 15 // 5, (state, background, count)


@pytest.mark.parametrize("background", BACKGROUNDS)
@pytest.mark.parametrize("state", [s for s in STATES if s != "no-hotspot"])
def test_the_state_badge_stands_out_in_its_colour(
    sheet: dict[tuple[str, str], QImage], state: str, background: str
) -> None:
    """The badge (bottom right) is outlined at 3:1 or more against the panel, and most of it
    is the state's own colour — the colour the status window's chips use."""
    image = sheet[state, background]
    assert standing_out(image, BACKGROUNDS[background], BADGE) >= 30
    want = icons.state_colour(state)
    close = sum(
        abs(p.red() - want.red()) + abs(p.green() - want.green()) + abs(p.blue() - want.blue()) < 60
        for p in pixels(image, BADGE)
    )
    assert close >= 25, (state, background, close)


def test_no_hotspot_has_no_badge(sheet: dict[tuple[str, str], QImage]) -> None:
    """Nothing to say: the glyph alone, no colour."""
    for background in BACKGROUNDS:
        colourful = [p for p in pixels(sheet["no-hotspot", background]) if p.hsvSaturationF() > 0.3]
        assert not colourful, background


@pytest.mark.parametrize("background", BACKGROUNDS)
def test_the_states_look_different(sheet: dict[tuple[str, str], QImage], background: str) -> None:
    """Any two states differ at a glance: their badges differ in many pixels."""
    for a, b in itertools.combinations(STATES, 2):
        first, second = pixels(sheet[a, background], BADGE), pixels(sheet[b, background], BADGE)
        differing = sum(
            abs(p.red() - q.red()) + abs(p.green() - q.green()) + abs(p.blue() - q.blue()) > 90
            for p, q in zip(first, second, strict=True)
        )
        assert differing >= 30, (a, b, background, differing)


def test_the_state_icons_are_ours_everywhere(monkeypatch: pytest.MonkeyPatch) -> None:
    """Under Plasma too (no Breeze security-* shields, which say neither "hotspot" nor the
    state clearly at 22 px): the icon's name is ours, for the SNI's IconName."""
    monkeypatch.setenv("XDG_CURRENT_DESKTOP", "KDE")
    for state in STATES:
        assert not icons.state_icon(state).isNull()
    assert not hasattr(icons, "THEME_NAMES")
