"""The tray applet's tests: in-process ones (offscreen Qt, a private session bus) and
end-to-end ones in a private headless desktop (tests/ui_desktop/desktop_lab.py)."""

from __future__ import annotations

import asyncio
import os
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

import pytest

from tests.ui_desktop import desktop_lab
from tests.ui_desktop.machine import real_state

ARTIFACTS = Path(__file__).resolve().parents[1] / "artifacts" / "screens"


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers", "desktop: end-to-end in a headless desktop (Xvfb, xfce4-panel, dunst)"
    )


@pytest.fixture(scope="session")
def states() -> dict[str, dict[str, Any]]:
    """Every tray state, from the engine on real captures."""
    return {kind: real_state(kind) for kind in ("no-hotspot", "ok", "blocked", "unknown", "error")}


@pytest.fixture
def private_bus() -> Iterator[desktop_lab.PrivateBus]:
    if not shutil.which("dbus-daemon"):
        pytest.skip("needs the Debian package dbus-daemon")
    bus = desktop_lab.PrivateBus()
    try:
        yield bus
    finally:
        bus.close()


@pytest.fixture
def config_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    home = tmp_path / "config"
    monkeypatch.setenv("XDG_CONFIG_HOME", str(home))
    monkeypatch.setenv("XDG_CONFIG_DIRS", str(tmp_path / "xdg"))
    return home


def run_async(qtbot: Any, loop: asyncio.AbstractEventLoop, coroutine: Any, timeout: int = 10000):
    """Run a coroutine on the qasync loop while qtbot spins Qt's; its result."""
    task = asyncio.ensure_future(coroutine, loop=loop)
    qtbot.waitUntil(task.done, timeout=timeout)
    return task.result()


@pytest.fixture(scope="session")
def desktop_skip_reason() -> str | None:
    return desktop_lab.missing()


@pytest.fixture
def desktop(desktop_skip_reason: str | None) -> Iterator[desktop_lab.Desktop]:
    """A private headless desktop: Xvfb, a session bus, private dirs (programs on demand)."""
    if desktop_skip_reason:
        pytest.skip(desktop_skip_reason)
    with desktop_lab.Desktop() as the_desktop:
        yield the_desktop


@pytest.fixture(scope="session")
def screens() -> Path:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    return ARTIFACTS
