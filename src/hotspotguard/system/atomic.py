"""Files replaced whole: a crash or a power cut leaves the old file or the new one, never half.

The text goes to a temporary file beside the target, is synced, renamed over the target, and
the directory is synced, so the rename itself is on disk before `write_file` returns.
"""

from __future__ import annotations

import contextlib
import os
import tempfile


def write_file(
    path: str,
    text: str,
    mode: int,
    *,
    prefix: str = ".hotspotguard-",
    suffix: str = "",
    directory_mode: int = 0o755,
    errors: str = "strict",
) -> None:
    """Replace `path` with `text` (file mode `mode`); its directory is made if missing."""
    directory = os.path.dirname(path)
    os.makedirs(directory, mode=directory_mode, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=directory, prefix=prefix, suffix=suffix)
    try:
        with os.fdopen(fd, "w", encoding="utf-8", errors=errors) as handle:
            handle.write(text)
            handle.flush()
            os.fsync(handle.fileno())
        os.chmod(tmp, mode)
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise
    sync_directory(directory)


def sync_directory(directory: str) -> None:
    """fsync a directory: the names created, renamed or removed in it are on disk."""
    fd = os.open(directory, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def remove_temporaries(directory: str, prefix: str) -> None:
    """The temporary files a crash between writing and renaming left in `directory`."""
    with contextlib.suppress(OSError):
        for name in os.listdir(directory):
            if name.startswith(prefix):
                with contextlib.suppress(OSError):
                    os.unlink(os.path.join(directory, name))
