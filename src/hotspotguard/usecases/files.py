"""Apply and undo a `FileChange`: another program's config file rewritten atomically (same
mode, a backup of the old text beside it), only if it is still as planned; undo writes the old
text back (or removes a file that did not exist) only if it is still as we wrote it."""

from __future__ import annotations

import contextlib
import os
import stat

from hotspotguard.fixes.plan import FileChange
from hotspotguard.system import atomic
from hotspotguard.system.docker import read_text
from hotspotguard.wording import Reason


class FileMoved(Exception):
    """The file is not as planned (or as we left it); nothing was written.  One line."""


def _write(path: str, text: str, mode: int) -> None:
    atomic.write_file(path, text, mode, errors="surrogateescape")


def _mode(path: str) -> int:
    try:
        return stat.S_IMODE(os.stat(path).st_mode)
    except FileNotFoundError:
        return 0o644


def apply(change: FileChange) -> bool:
    current = read_text(change.path)
    if current == change.after:
        return False
    if current != change.before:
        raise FileMoved(Reason("file-moved", path=change.path))
    mode = _mode(change.path)
    if change.before is not None:
        _write(change.backup, change.before, mode)
    _write(change.path, change.after, mode)
    return True


def forget_backup(change: FileChange) -> None:
    """Remove the backup apply wrote, if it is still the text from before (a crash between
    writing it and the file, or between undo's writing the file back and removing it)."""
    if change.before is not None and read_text(change.backup) == change.before:
        os.unlink(change.backup)


def undo(change: FileChange) -> int:
    """Put the file back as it was; 1 when it was rewritten, 0 when nothing was ours."""
    current = read_text(change.path)
    if current == change.before:
        forget_backup(change)
        return 0
    if current != change.after:
        if change.before is None:
            raise FileMoved(Reason("file-edited", path=change.path))
        raise FileMoved(Reason("file-edited-kept", path=change.path, backup=change.backup))
    if change.before is None:
        os.unlink(change.path)
    else:
        _write(change.path, change.before, _mode(change.path))
    with contextlib.suppress(FileNotFoundError):
        os.unlink(change.backup)
    return 1


def in_place(change: FileChange) -> bool:
    try:
        return read_text(change.path) == change.after
    except OSError:
        return False
