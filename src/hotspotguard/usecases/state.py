"""The helper's record of applied fixes (root-only JSON, written atomically and durably).

Beside the fixes, the record holds the one change in progress (`pending`: an apply or an undo,
written before the firewall is touched and cleared once the fixes are recorded): after a crash
the next call finds it and brings the firewall back to what the fixes say (usecases.operations).
"""

from __future__ import annotations

import contextlib
import json
import os
import tempfile
from dataclasses import dataclass, field
from typing import Any

FORMAT = "hotspotguard-fixes/1"
TEMPORARY_PREFIX = ".fixes-"


@dataclass
class Record:
    """The applied fixes, oldest first, and the change in progress if one was interrupted."""

    fixes: list[dict[str, Any]] = field(default_factory=list)
    pending: dict[str, Any] | None = None


def read(path: str) -> Record:
    """The record (empty when there is none yet); RuntimeError when it is unreadable."""
    try:
        with open(path, encoding="utf-8") as handle:
            doc = json.load(handle)
    except FileNotFoundError:
        return Record()
    except (OSError, ValueError) as error:
        raise RuntimeError(f"the record of applied fixes ({path}) is unreadable: {error}") from None
    if not isinstance(doc, dict) or doc.get("format") != FORMAT:
        raise RuntimeError(f"the record of applied fixes ({path}) is not {FORMAT}")
    fixes = doc.get("fixes")
    pending = doc.get("pending")
    return Record(
        [f for f in fixes if isinstance(f, dict)] if isinstance(fixes, list) else [],
        pending if isinstance(pending, dict) else None,
    )


def load(path: str) -> list[dict[str, Any]]:
    """The applied fixes, oldest first ([] when there is no record yet)."""
    return read(path).fixes


def write(path: str, record: Record) -> None:
    """Replace the record atomically and durably: the new file's data is on disk before the
    rename, and the rename is on disk (the directory synced) before this returns, so a crash
    or a power cut leaves the old record or the new one, never half of one."""
    directory = os.path.dirname(path)
    os.makedirs(directory, mode=0o700, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=directory, prefix=TEMPORARY_PREFIX, suffix=".json")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            doc: dict[str, Any] = {"format": FORMAT, "fixes": record.fixes}
            if record.pending is not None:
                doc["pending"] = record.pending
            json.dump(doc, handle, indent=1)
            handle.write("\n")
            handle.flush()
            os.fsync(handle.fileno())
        os.chmod(tmp, 0o600)
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise
    sync_directory(directory)


def store(path: str, fixes: list[dict[str, Any]]) -> None:
    """Replace the fixes (no change in progress)."""
    write(path, Record(fixes))


def sync_directory(directory: str) -> None:
    """fsync a directory: the names created, renamed or removed in it are on disk."""
    fd = os.open(directory, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def remove_temporaries(directory: str) -> None:
    """Temporary files a crash left behind (never the record itself)."""
    with contextlib.suppress(OSError):
        for name in os.listdir(directory):
            if name.startswith(TEMPORARY_PREFIX):
                with contextlib.suppress(OSError):
                    os.unlink(os.path.join(directory, name))
