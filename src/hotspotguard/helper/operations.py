"""The privileged operations, one place: the D-Bus helper and the CLI run as root both call these.

Every entry point validates its arguments first (`validate_*`) and raises `HelperError` with a
one-line message for a person; nothing changes when an argument is bad.  Results are JSON-ready
dicts (the D-Bus service sends them as JSON strings).
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from typing import Any, Literal

from hotspotguard.fixes import STRATEGY_NAMES

ErrorKind = Literal["InvalidArgument", "NotFound", "Stale", "NotApplicable", "Failed"]

IFNAMSIZ = 16  # the kernel's limit, including the terminating NUL
MAX_ARGUMENT = 64  # no argument we accept is longer; longer ones are refused before parsing
FIX_ID = re.compile(r"^([a-z][a-z-]{0,31})@(.{1,15})$")


class HelperError(Exception):
    """A refused or failed operation; `kind` names the D-Bus error, the message is one line."""

    def __init__(self, kind: ErrorKind, message: str) -> None:
        super().__init__(message)
        self.kind: ErrorKind = kind


def validate_iface(name: object, *, must_exist: bool = True) -> str:
    """An interface name by the kernel's rules (`dev_valid_name`) and, by default, existing."""
    if not isinstance(name, str):
        raise HelperError("InvalidArgument", "an interface name must be a string")
    shown = name if len(name) <= MAX_ARGUMENT else name[:MAX_ARGUMENT] + "…"
    if not name:
        raise HelperError("InvalidArgument", "the interface name is empty")
    if len(name.encode("utf-8", "surrogatepass")) >= IFNAMSIZ:
        raise HelperError(
            "InvalidArgument", f"{shown!r} is not an interface name (at most 15 bytes)"
        )
    if name in (".", "..") or any(c in "/:" or c.isspace() for c in name):
        raise HelperError("InvalidArgument", f"{shown!r} is not an interface name")
    if not name.isprintable() or not name.isascii():
        raise HelperError("InvalidArgument", f"{shown!r} is not an interface name")
    if must_exist and not os.path.exists(f"/sys/class/net/{name}"):
        raise HelperError("NotFound", f"there is no interface {name}")
    return name


def validate_strategy(name: object) -> str:
    """A strategy name from the fixed list."""
    if not isinstance(name, str) or name not in STRATEGY_NAMES:
        shown = name[:MAX_ARGUMENT] if isinstance(name, str) else type(name).__name__
        known = ", ".join(STRATEGY_NAMES)
        raise HelperError("InvalidArgument", f"unknown strategy {shown!r} (known: {known})")
    return name


def validate_fix_id(text: object) -> str:
    """A fix id, `STRATEGY@IFACE` (it need not exist; the interface may be gone)."""
    if not isinstance(text, str) or len(text) > MAX_ARGUMENT:
        raise HelperError("InvalidArgument", "a fix id looks like docker-user@wlan0")
    match = FIX_ID.match(text)
    if not match:
        raise HelperError("InvalidArgument", f"{text!r} is not a fix id (like docker-user@wlan0)")
    validate_strategy(match.group(1))
    validate_iface(match.group(2), must_exist=False)
    return text


def fix_id(strategy: str, iface: str) -> str:
    return f"{strategy}@{iface}"


@dataclass(frozen=True)
class Paths:
    """Where the helper keeps state and writes its permanent-fix files (fixed, absolute)."""

    state_dir: str = "/var/lib/hotspotguard"
    systemd_dropin_dir: str = "/etc/systemd/system/docker.service.d"
    dispatcher_dir: str = "/etc/NetworkManager/dispatcher.d"
    helper: str = "/usr/libexec/hotspotguard-helper"

    @property
    def state_file(self) -> str:
        return os.path.join(self.state_dir, "fixes.json")


class Operations:
    """The helper's verbs.  Blocking; callers run them off their event loop, one at a time."""

    def __init__(self, paths: Paths | None = None) -> None:
        self.paths = paths or Paths()

    def snapshot(self) -> dict[str, Any]:
        """The live `hotspotguard-snapshot/1` document (hotspots from NetworkManager's tables)."""
        from hotspotguard.system.capture import CaptureError, capture_snapshot

        try:
            return capture_snapshot(None)
        except CaptureError as error:
            raise HelperError("Failed", str(error)) from None

    def preview(self, iface: str, strategy: str) -> dict[str, Any]:
        """The plan for `strategy` on hotspot `iface`, with the engine's before/after verdicts."""
        raise NotImplementedError

    def apply(
        self, iface: str, strategy: str, *, permanent: bool, uid: int, generation: str = ""
    ) -> dict[str, Any]:
        """Apply (idempotent); `generation` from a preview refuses it if the ruleset moved."""
        raise NotImplementedError

    def undo(self, fix_id: str, *, uid: int) -> dict[str, Any]:
        """Undo one fix ("" = the most recent); restores exactly what was there."""
        raise NotImplementedError

    def undo_all(self, *, uid: int) -> list[dict[str, Any]]:
        raise NotImplementedError

    def list_fixes(self) -> list[dict[str, Any]]:
        raise NotImplementedError

    def fix_owner(self, fix_id: str) -> int:
        """The uid that applied `fix_id` ("" = the most recent); NotFound if there is none."""
        raise NotImplementedError

    def set_permanent(self, fix_id: str, permanent: bool, *, uid: int) -> dict[str, Any]:
        raise NotImplementedError

    def reapply(self, iface: str | None = None) -> list[dict[str, Any]]:
        """Re-apply the saved permanent fixes (all, or those of `iface`); for the drop-in and
        the NetworkManager dispatcher script."""
        raise NotImplementedError
