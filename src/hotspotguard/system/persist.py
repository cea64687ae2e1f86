"""The files that make fixes permanent: a docker.service drop-in and a NetworkManager
dispatcher script, both calling ``hotspotguard-helper reapply`` (no sleep, no ``bash -c``).

Docker creates DOCKER-USER before it reports ready, so ExecStartPost finds it; NetworkManager
runs dispatcher scripts with (interface, action) after a connection comes up."""

from __future__ import annotations

import contextlib
import os
import re
import tempfile

DROPIN_NAME = "50-hotspotguard.conf"
DISPATCHER_NAME = "90-hotspotguard"
SAFE_PATH = re.compile(r"^/[A-Za-z0-9._+/-]+$")  # no spaces, quotes, '%' or '$'


def dropin_text(helper: str) -> str:
    return (
        "# Written by hotspotguard: re-applies the hotspot fixes kept after reboot once Docker\n"
        "# has started (and set up DOCKER-USER); '-': a fix that fails never fails Docker.\n"
        "# `hotspotguard undo` removes this file.\n"
        "[Service]\n"
        f"ExecStartPost=-{helper} reapply\n"
    )


def dispatcher_text(helper: str) -> str:
    return (
        "#!/bin/sh\n"
        "# Written by hotspotguard: re-applies its fixes kept after reboot when a connection\n"
        "# comes up: the hotspot (its rules are back) or an uplink (the rules name it).\n"
        "# `hotspotguard undo` removes this file.\n"
        '[ "$2" = up ] || exit 0\n'
        f"exec {helper} reapply\n"
    )


def _write(path: str, text: str, mode: int) -> None:
    directory = os.path.dirname(path)
    os.makedirs(directory, mode=0o755, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=directory, prefix=".hotspotguard-")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(text)
        os.chmod(tmp, mode)
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise


def install(dropin_dir: str, dispatcher_dir: str, helper: str) -> list[str]:
    """Write both files (idempotent); the paths written.  The helper's path goes into a shell
    script and a unit file unquoted, so only plain absolute paths are accepted."""
    if not SAFE_PATH.match(helper):
        raise ValueError(f"the helper's path {helper!r} is not a plain absolute path")
    dropin = os.path.join(dropin_dir, DROPIN_NAME)
    dispatcher = os.path.join(dispatcher_dir, DISPATCHER_NAME)
    _write(dropin, dropin_text(helper), 0o644)
    _write(dispatcher, dispatcher_text(helper), 0o755)
    return [dropin, dispatcher]


def remove(dropin_dir: str, dispatcher_dir: str) -> list[str]:
    """Remove both files (and the drop-in directory if we leave it empty); the paths removed."""
    removed = []
    for path in (
        os.path.join(dropin_dir, DROPIN_NAME),
        os.path.join(dispatcher_dir, DISPATCHER_NAME),
    ):
        with contextlib.suppress(FileNotFoundError):
            os.unlink(path)
            removed.append(path)
    with contextlib.suppress(OSError):
        os.rmdir(dropin_dir)  # only if empty: other drop-ins stay
    return removed
