"""ufw's own command: absolute path, no shell, a clean environment, each argument its own."""

from __future__ import annotations

import os
import subprocess

from hotspotguard.system.firewall import CLEAN_ENV, TIMEOUT, FirewallError, step, tool_failed
from hotspotguard.wording import Reason

UFW = "/usr/sbin/ufw"


def installed() -> bool:
    return os.access(UFW, os.X_OK)


def run(args: list[str]) -> str:
    """`ufw ARGS…`; its output.  FirewallError (our reason, ufw's words as its detail) when
    ufw refuses."""
    doing = step("step-ufw", args=" ".join(args))
    if not installed():
        raise FirewallError(Reason("tool-missing", tool=UFW, step=doing))
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
        why = Reason("tool-timeout", tool="ufw", seconds=round(TIMEOUT), step=doing)
        raise FirewallError(why) from None
    if proc.returncode != 0:
        raise FirewallError(tool_failed("ufw", proc.returncode, proc.stderr + proc.stdout, doing))
    return proc.stdout


def added() -> list[str]:
    """The rules added through ufw, as `ufw show added` prints them (after "ufw ")."""
    lines = run(["show", "added"]).splitlines()
    return [line[4:].strip() for line in lines if line.startswith("ufw ")]
