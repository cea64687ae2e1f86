"""The checks an installation test runs: the applet builds offscreen and exits 0; the helper
loads everything it serves with."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

BIN = Path(sys.executable).parent


def test_the_applet_check_builds_tray_and_windows_offscreen() -> None:
    env = {k: v for k, v in os.environ.items() if k != "DBUS_SESSION_BUS_ADDRESS"}
    env.update(QT_QPA_PLATFORM="offscreen", HOME=os.environ.get("HOME", "/root"))
    done = subprocess.run(
        [str(BIN / "hotspotguard-tray"), "--check"],
        capture_output=True, text=True, env=env, timeout=120, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert "status window" in done.stdout


@pytest.mark.skipif(os.geteuid() != 0, reason="the helper runs as root only")
def test_the_helper_self_check() -> None:
    done = subprocess.run(
        [str(BIN / "hotspotguard-helper"), "self-check"],
        capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    assert done.returncode == 0 and done.stdout.endswith(": ok\n"), done.stderr
