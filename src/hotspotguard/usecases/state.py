"""The helper's record of applied fixes (root-only JSON, written atomically)."""

from __future__ import annotations

import contextlib
import json
import os
import tempfile
from typing import Any

FORMAT = "hotspotguard-fixes/1"


def load(path: str) -> list[dict[str, Any]]:
    """The applied fixes, oldest first ([] when there is no record yet)."""
    try:
        with open(path, encoding="utf-8") as handle:
            doc = json.load(handle)
    except FileNotFoundError:
        return []
    except (OSError, ValueError) as error:
        raise RuntimeError(f"the record of applied fixes ({path}) is unreadable: {error}") from None
    if not isinstance(doc, dict) or doc.get("format") != FORMAT:
        raise RuntimeError(f"the record of applied fixes ({path}) is not {FORMAT}")
    fixes = doc.get("fixes")
    return [f for f in fixes if isinstance(f, dict)] if isinstance(fixes, list) else []


def store(path: str, fixes: list[dict[str, Any]]) -> None:
    """Replace the record atomically (a crash leaves the old or the new one, never half)."""
    directory = os.path.dirname(path)
    os.makedirs(directory, mode=0o700, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=directory, prefix=".fixes-", suffix=".json")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            json.dump({"format": FORMAT, "fixes": fixes}, handle, indent=1)
            handle.write("\n")
            handle.flush()
            os.fsync(handle.fileno())
        os.chmod(tmp, 0o600)
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise
