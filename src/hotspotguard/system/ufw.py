"""ufw's own command: absolute path, no shell, a clean environment, each argument its own."""

from __future__ import annotations

import os
import subprocess

from hotspotguard.system.firewall import CLEAN_ENV, TIMEOUT, FirewallError

UFW = "/usr/sbin/ufw"


def installed() -> bool:
    return os.access(UFW, os.X_OK)


def run(args: list[str]) -> str:
    """`ufw ARGS…`; its output.  FirewallError (one line) when ufw refuses."""
    if not installed():
        raise FirewallError("ufw is not installed here")
    try:
        proc = subprocess.run(
            [UFW, *args],
            capture_output=True,
            text=True,
            env=CLEAN_ENV,
            timeout=TIMEOUT,
            check=False,
            stdin=subprocess.DEVNULL,
        )
    except subprocess.TimeoutExpired:
        raise FirewallError(f"ufw did not finish in {TIMEOUT:.0f} s") from None
    if proc.returncode != 0:
        lines = [line for line in (proc.stderr + proc.stdout).splitlines() if line.strip()]
        raise FirewallError("ufw failed: " + (lines[0] if lines else f"exit {proc.returncode}"))
    return proc.stdout


def added() -> list[str]:
    """The rules added through ufw, as `ufw show added` prints them (after "ufw ")."""
    lines = run(["show", "added"]).splitlines()
    return [line[4:].strip() for line in lines if line.startswith("ufw ")]
