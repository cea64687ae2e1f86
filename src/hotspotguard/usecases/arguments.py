"""The arguments the use cases take from a caller, checked before anything is read or changed,
and the error they raise (`OperationError`): kept apart from the use cases themselves so that
the D-Bus helper validates every call without loading the engine (its first full reading of a
big firewall comes while it holds little; see watch.LiveAssessor)."""

from __future__ import annotations

import re
import socket
from typing import Literal

from hotspotguard.fixes import STRATEGY_NAMES
from hotspotguard.wording import Reason

ErrorKind = Literal["InvalidArgument", "NotFound", "Stale", "NotApplicable", "Failed"]

IFNAMSIZ = 16  # the kernel's limit, including the terminating NUL
MAX_ARGUMENT = 64  # no argument we accept is longer; longer ones are refused before parsing
FIX_ID = re.compile(r"([a-z][a-z-]{0,31})@(.{1,15})")  # always matched in full
# the characters of an interface name that goes into a firewall rule: iptables reads a
# trailing "+" as a wildcard ("hs+" is hs0, hs1, ...; "+" is every interface), nft a trailing
# "*", and a leading "-" or "!" an option or a negation; quotes would need quoting
RULE_NAME = re.compile(r"[A-Za-z0-9_.@][A-Za-z0-9_.@-]*")


class OperationError(Exception):
    """A refused or failed operation; `kind` names the D-Bus error, the message is one line."""

    def __init__(self, kind: ErrorKind, message: str) -> None:  # a `Reason` where ours
        super().__init__(message)
        self.kind: ErrorKind = kind


def validate_iface(name: object, *, must_exist: bool = True) -> str:
    """An interface name by the kernel's rules (`dev_valid_name`) and, by default, existing."""
    if not isinstance(name, str):
        raise OperationError("InvalidArgument", "an interface name must be a string")
    shown = name if len(name) <= MAX_ARGUMENT else name[:MAX_ARGUMENT] + "…"
    if not name:
        raise OperationError("InvalidArgument", "the interface name is empty")
    if len(name.encode("utf-8", "surrogatepass")) >= IFNAMSIZ:
        raise OperationError(
            "InvalidArgument", f"{shown!r} is not an interface name (at most 15 bytes)"
        )
    if name in (".", "..") or any(c in "/:" or c.isspace() for c in name):
        raise OperationError("InvalidArgument", f"{shown!r} is not an interface name")
    if not name.isprintable() or not name.isascii():
        raise OperationError("InvalidArgument", f"{shown!r} is not an interface name")
    refuse_pattern_name(name, "interface")
    if must_exist:
        try:
            socket.if_nametoindex(name)  # this network namespace's, unlike /sys/class/net
        except OSError:
            raise OperationError("NotFound", f"there is no interface {name}") from None
    return name


def refuse_pattern_name(name: str, role: str, kind: ErrorKind = "InvalidArgument") -> None:
    """Refuse an interface name the firewall tools would read as a pattern or an option
    rather than a literal name (a kernel may accept it; a rule naming it would not be exact)."""
    if RULE_NAME.fullmatch(name):
        return
    if name.endswith("+") or name.endswith("*"):
        which = "iptables" if name.endswith("+") else "nftables"
        stem = name[:-1]
        code = "name-wildcard" if stem else "name-wildcard-all"
        raise OperationError(
            kind, Reason(code, role=role, name=name, tool=which, char=name[-1], stem=stem)
        )
    raise OperationError(kind, Reason("name-unwritable", role=role, name=name))


def validate_strategy(name: object) -> str:
    """A strategy name from the fixed list."""
    if not isinstance(name, str) or name not in STRATEGY_NAMES:
        shown = name[:MAX_ARGUMENT] if isinstance(name, str) else type(name).__name__
        known = ", ".join(STRATEGY_NAMES)
        raise OperationError("InvalidArgument", f"unknown strategy {shown!r} (known: {known})")
    return name


def validate_fix_id(text: object) -> str:
    """A fix id, `STRATEGY@IFACE` (it need not exist; the interface may be gone)."""
    if not isinstance(text, str) or len(text) > MAX_ARGUMENT:
        raise OperationError("InvalidArgument", "a fix id looks like docker-user@wlan0")
    match = FIX_ID.fullmatch(text)
    if not match:
        raise OperationError(
            "InvalidArgument", f"{text!r} is not a fix id (like docker-user@wlan0)"
        )
    validate_strategy(match.group(1))
    validate_iface(match.group(2), must_exist=False)
    return text
