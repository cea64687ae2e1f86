"""The applet's entry point (single instance, windows on demand, translations), its autostart
entry and the shipped desktop files."""

from __future__ import annotations

import argparse
import asyncio
import gc
import os
import shutil
import subprocess
import sys
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any

import pytest
from PySide6.QtCore import QCoreApplication, QLocale, QTranslator
from PySide6.QtWidgets import QWidget

from hotspotguard.ui import app as applet_app
from hotspotguard.ui.autostart import Autostart
from hotspotguard.ui.controller import Controller, FixedHotspots, InProcessBackend
from hotspotguard.ui.shipped import source_file
from hotspotguard.ui.tray import StateText
from tests.ui_desktop.machine import CapturedMachine

ROOT = Path(__file__).resolve().parents[2]
DESKTOP_FILES = sorted((ROOT / "desktop").glob("*.desktop"))
TS = ROOT / "resources" / "translations" / "hotspotguard_zh_CN.ts"


@pytest.mark.skipif(not shutil.which("desktop-file-validate"), reason="needs desktop-file-utils")
@pytest.mark.parametrize("path", DESKTOP_FILES, ids=lambda p: p.name)
def test_desktop_files_are_valid(path: Path) -> None:
    done = subprocess.run(["desktop-file-validate", str(path)], capture_output=True, text=True)
    assert done.returncode == 0 and not done.stdout.strip(), done.stdout


def test_autostart_entry_asks_every_desktop(config_home: Path) -> None:
    text = (ROOT / "desktop" / "io.github.hotspotguard-autostart.desktop").read_text()
    assert "OnlyShowIn" not in text and "NotShowIn" not in text
    assert "X-KDE-autostart-phase=2" in text and "X-GNOME-Autostart-enabled=true" in text


@pytest.mark.skipif(not shutil.which("desktop-file-validate"), reason="needs desktop-file-utils")
def test_autostart_toggle_honours_xdg_config_home(config_home: Path, tmp_path: Path) -> None:
    autostart = Autostart()
    assert autostart.available() and not autostart.enabled()
    autostart.set_enabled(True)
    entry = config_home / "autostart" / "io.github.hotspotguard.desktop"
    assert autostart.enabled() and entry.is_file()
    done = subprocess.run(["desktop-file-validate", str(entry)], capture_output=True, text=True)
    assert done.returncode == 0, done.stdout
    autostart.set_enabled(False)
    assert not entry.exists() and not autostart.enabled()
    # a packaged, system-wide entry: disabling writes the user's Hidden=true override
    system = tmp_path / "xdg" / "autostart"
    system.mkdir(parents=True)
    shutil.copy(
        ROOT / "desktop" / "io.github.hotspotguard-autostart.desktop",
        system / "io.github.hotspotguard.desktop",
    )
    assert autostart.enabled()
    autostart.set_enabled(False)
    assert "Hidden=true" in entry.read_text() and not autostart.enabled()


class Window(QWidget):
    def __init__(self, controller: Any, *args: Any) -> None:
        super().__init__()
        self.args = args


def _controller() -> Controller:
    backend = InProcessBackend(CapturedMachine("blocked"), kernel_events=False)
    return Controller(backend, FixedHotspots(None))


def test_a_second_start_shows_the_first_ones_window(
    private_bus: Any, qloop: Any, qtbot: Any, config_home: Path
) -> None:
    windows = {"status": Window, "chains": Window, "fix": Window}
    ready: list[applet_app.Applet] = []
    args = argparse.Namespace(show=False)
    gc.disable()  # as ui.launch leaves it: the applet turns it on once the icon is up
    try:
        first = asyncio.ensure_future(
            applet_app.run(args, _controller, windows, private_bus.address, on_ready=ready.append)
        )
        qtbot.waitUntil(lambda: bool(ready), timeout=10000)
        assert gc.isenabled()
    finally:
        gc.enable()
    applet = ready[0]
    qtbot.waitUntil(lambda: applet.controller.state is not None, timeout=10000)
    assert applet.controller.state["state"] == "blocked"
    assert "status" not in applet.windows
    second = subprocess.Popen(  # a second start, as from the application menu
        [sys.executable, "-c", "import sys; from hotspotguard.ui import app; sys.exit(app.main())"],
        env={
            **os.environ,
            "DBUS_SESSION_BUS_ADDRESS": private_bus.address,
            "QT_QPA_PLATFORM": "offscreen",
        },
    )
    qtbot.waitUntil(lambda: second.poll() is not None, timeout=20000)
    assert second.returncode == 0  # it asked the first one, which shows its status window
    qtbot.waitUntil(lambda: applet.status_visible(), timeout=5000)
    fix = applet.show_fix("nmp-hs0")
    assert fix.args == ("nmp-hs0",) and applet.show_fix("nmp-hs0") is fix
    applet.quit()
    qtbot.waitUntil(first.done, timeout=10000)
    assert first.result() == 0


def test_chinese_translation_loads_for_the_system_locale(qapp: Any) -> None:
    translators = applet_app.install_translations(qapp, QLocale("zh_CN"))
    try:
        assert any(path.endswith("hotspotguard_zh_CN.qm") for path in translators)
        assert StateText().tooltip({"state": "no-hotspot"}) == "没有开启热点"
        assert QCoreApplication.translate("Applet", "Hotspot Guard") == "热点守护"
    finally:
        for translator in qapp.findChildren(QTranslator):
            qapp.removeTranslator(translator)
            translator.deleteLater()
    assert StateText().tooltip({"state": "no-hotspot"}) == "No hotspot is on"


def test_every_string_is_translated() -> None:
    assert source_file("resources", "translations", "hotspotguard_zh_CN.qm") is not None
    root = ET.parse(TS).getroot()
    messages = root.findall("./context/message")
    assert len(messages) > 50
    for message in messages:
        translation = message.find("translation")
        source = message.findtext("source")
        assert translation is not None and translation.get("type") is None, source
        text = translation.text or "".join(t.text or "" for t in translation.iter("numerusform"))
        assert text.strip(), source
        for marker in ("%1", "%2", "{"):
            if marker in (source or ""):
                assert marker in text, source


def test_only_quit_ends_the_applet(qapp: Any) -> None:
    """Under Plasma the platform theme's tray icon holds a QEventLoopLocker: with Qt's quit
    lock on, deleting the last tray icon (the stand-in going when a watcher appears) ends the
    loop (issue 11, finding 1; end to end with a watcher that comes late and restarts:
    test_sni.py)."""
    from hotspotguard.ui.app import make_application

    app = make_application(["hotspotguard-tray"])
    assert not app.isQuitLockEnabled() and not app.quitOnLastWindowClosed()


def test_the_icon_comes_before_asyncio_openssl_and_the_engine() -> None:
    """Importing the entry point loads none of them: asyncio must come after ``without_tls()``
    (else OpenSSL costs ≈ 8 MB all session) and the engine after the icon is up."""
    import subprocess
    import sys

    code = (
        "import sys, hotspotguard.ui.app; "
        "print([m for m in ('asyncio', 'ssl', 'hotspotguard.ruleset', 'dbus_next') "
        "if m in sys.modules])"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_the_launcher_imports_the_icons_modules_before_qt_without_openssl() -> None:
    """``hotspotguard-tray`` (ui.launch) imports asyncio and dbus-next before Qt — after
    ``without_tls()``, and nothing of the engine."""
    import subprocess
    import sys

    code = (
        "import sys; from hotspotguard.ui import launch; "
        "launch.before_qt(); "
        "print(sys.modules.get('ssl', 0) is None, 'asyncio' in sys.modules, "
        "'dbus_next.aio.message_bus' in sys.modules, 'hotspotguard.ruleset' in sys.modules, "
        "'PySide6' in sys.modules)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.split() == ["True", "True", "True", "False", "False"]
