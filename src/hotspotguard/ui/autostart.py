"""Starting the applet at login: the XDG autostart entry in the user's config directory.

Enabling copies the shipped ``desktop/io.github.hotspotguard-autostart.desktop`` to
``$XDG_CONFIG_HOME/autostart/io.github.hotspotguard.desktop`` (``~/.config`` by default);
disabling removes it — or, when a system-wide entry of that name exists (a packaged install in
``/etc/xdg/autostart``), writes a ``Hidden=true`` copy that overrides it, as the spec says.
"""

from __future__ import annotations

import os
import shutil
import sys
from pathlib import Path

from hotspotguard.ui.shipped import source_file

ENTRY_NAME = "io.github.hotspotguard.desktop"
SHIPPED_NAME = "io.github.hotspotguard-autostart.desktop"
SCRIPT = "hotspotguard-tray"


def config_home() -> Path:
    value = os.environ.get("XDG_CONFIG_HOME", "")
    return Path(value) if os.path.isabs(value) else Path.home() / ".config"


def _config_dirs() -> list[Path]:
    value = os.environ.get("XDG_CONFIG_DIRS") or "/etc/xdg"
    return [Path(p) for p in value.split(":") if os.path.isabs(p)]


def _keys(text: str) -> dict[str, str]:
    """The ``[Desktop Entry]`` group's keys (enough for Hidden and the GNOME switch)."""
    keys: dict[str, str] = {}
    group = ""
    for raw in text.splitlines():
        line = raw.strip()
        if line.startswith("["):
            group = line
        elif group == "[Desktop Entry]" and "=" in line and not line.startswith("#"):
            key, value = line.split("=", 1)
            keys[key.strip()] = value.strip()
    return keys


def _active(text: str) -> bool:
    keys = _keys(text)
    return (
        keys.get("Hidden", "false").lower() != "true"
        and keys.get("X-GNOME-Autostart-enabled", "true").lower() != "false"
    )


def _command() -> str:
    """``hotspotguard-tray`` if the login session will find it on PATH, else its full path
    beside this Python (a venv's bin)."""
    if shutil.which(SCRIPT):
        return SCRIPT
    beside = Path(sys.executable).parent / SCRIPT
    return str(beside) if beside.is_file() else SCRIPT


class Autostart:
    """The user's autostart entry for the applet."""

    def __init__(self, shipped: Path | None = None) -> None:
        self.shipped = shipped or source_file("desktop", SHIPPED_NAME)

    @property
    def path(self) -> Path:
        return config_home() / "autostart" / ENTRY_NAME

    def _system_entry(self) -> Path | None:
        return next(
            (
                d / "autostart" / ENTRY_NAME
                for d in _config_dirs()
                if (d / "autostart" / ENTRY_NAME).is_file()
            ),
            None,
        )

    def enabled(self) -> bool:
        """Whether the applet starts at login (the user's entry wins over a system one)."""
        for entry in (self.path, self._system_entry()):
            if entry is not None and entry.is_file():
                try:
                    return _active(entry.read_text(encoding="utf-8"))
                except (OSError, UnicodeDecodeError):
                    return False
        return False

    def available(self) -> bool:
        return self.shipped is not None and self.shipped.is_file()

    def set_enabled(self, enabled: bool) -> None:
        """Write or remove the entry; raises OSError when the config directory is unwritable."""
        if enabled:
            if self.shipped is None:
                raise OSError(f"cannot find the shipped {SHIPPED_NAME}")
            text = self.shipped.read_text(encoding="utf-8")
            command = _command()
            if command != SCRIPT:
                text = text.replace(f"Exec={SCRIPT}", f"Exec={command}")
                text = text.replace(f"TryExec={SCRIPT}", f"TryExec={command}")
            self._write(text)
        elif self._system_entry() is not None:
            self._write("[Desktop Entry]\nType=Application\nName=Hotspot Guard\nHidden=true\n")
        else:
            self.path.unlink(missing_ok=True)

    def _write(self, text: str) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        partial = self.path.with_name(f".{ENTRY_NAME}.part")
        partial.write_text(text, encoding="utf-8")
        os.replace(partial, self.path)
