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
TEMPORARY_PREFIX = ".hotspotguard-"
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
    fd, tmp = tempfile.mkstemp(dir=directory, prefix=TEMPORARY_PREFIX)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(text)
            handle.flush()
            os.fsync(handle.fileno())
        os.chmod(tmp, mode)
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise
    _sync_directory(directory)


def _sync_directory(directory: str) -> None:
    fd = os.open(directory, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def remove_temporaries(*directories: str) -> None:
    """Temporary files a crash between writing and renaming left behind (a dispatcher
    directory runs what is executable in it)."""
    for directory in directories:
        with contextlib.suppress(OSError):
            for name in os.listdir(directory):
                if name.startswith(TEMPORARY_PREFIX):
                    with contextlib.suppress(OSError):
                        os.unlink(os.path.join(directory, name))


def install(dropin_dir: str, dispatcher_dir: str, helper: str) -> list[str]:
    """Write both files (idempotent); the paths written.  The helper's path goes into a shell
    script and a unit file unquoted, so only plain absolute paths are accepted."""
    if not SAFE_PATH.match(helper):
        raise ValueError(f"the helper's path {helper!r} is not a plain absolute path")
    dropin = os.path.join(dropin_dir, DROPIN_NAME)
    dispatcher = os.path.join(dispatcher_dir, DISPATCHER_NAME)
    for path, text, mode in (
        (dropin, dropin_text(helper), 0o644),
        (dispatcher, dispatcher_text(helper), 0o755),
    ):
        if not _is(path, text, mode):
            _write(path, text, mode)
    return [dropin, dispatcher]


def installed(dropin_dir: str, dispatcher_dir: str, helper: str) -> bool:
    """Whether both files are in place as `install` would write them."""
    return _is(os.path.join(dropin_dir, DROPIN_NAME), dropin_text(helper), 0o644) and _is(
        os.path.join(dispatcher_dir, DISPATCHER_NAME), dispatcher_text(helper), 0o755
    )


def present(dropin_dir: str, dispatcher_dir: str) -> bool:
    """Whether either file is there."""
    return os.path.lexists(os.path.join(dropin_dir, DROPIN_NAME)) or os.path.lexists(
        os.path.join(dispatcher_dir, DISPATCHER_NAME)
    )


def _is(path: str, text: str, mode: int) -> bool:
    """Whether `path` already holds `text` with `mode` (nothing to write)."""
    try:
        with open(path, encoding="utf-8") as handle:
            return handle.read() == text and os.stat(path).st_mode & 0o7777 == mode
    except (OSError, ValueError):
        return False


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
    for directory in (dropin_dir, dispatcher_dir):
        if removed:
            with contextlib.suppress(OSError):
                _sync_directory(directory)
    return removed
