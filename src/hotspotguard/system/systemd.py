"""systemd as the fixes need it: whether it runs the system, and ``systemctl`` to have it read
unit files again and restart a unit that runs.  No shell, absolute path, clean environment."""

from __future__ import annotations

import os

from hotspotguard.system.firewall import run, step

SYSTEMCTL = "/usr/bin/systemctl"
#: exists only while systemd is PID 1 (what sd_booted(3) checks)
BOOTED_MARKER = "/run/systemd/system"
#: where packages and the administrator put unit files (systemd.unit(5)'s system unit paths)
UNIT_DIRS = ("/etc/systemd/system", "/usr/local/lib/systemd/system", "/usr/lib/systemd/system",
             "/lib/systemd/system")  # fmt: skip


def booted() -> bool:
    """Whether systemd runs this system."""
    return os.path.isdir(BOOTED_MARKER)


def unit_path(unit: str) -> str | None:
    """Where `unit`'s file is, on a system systemd does not run now as well (None: nowhere)."""
    return next((f"{d}/{unit}" for d in UNIT_DIRS if os.path.exists(f"{d}/{unit}")), None)


def daemon_reload() -> None:
    run([SYSTEMCTL, "daemon-reload"], step=step("step-reload-units"))


def try_restart(unit: str) -> None:
    """Restart `unit` if it runs (a stopped unit stays stopped); FirewallError with
    systemctl's first error line (exit 5: no such unit)."""
    run([SYSTEMCTL, "try-restart", unit], step=step("step-restart-unit", unit=unit))
