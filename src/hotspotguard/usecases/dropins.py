"""Apply, check and undo a `DropIn` (a systemd drop-in of ours, written whole) and an
`NftTable` (a table of ours, made in one nft transaction).  Neither overwrites what is not
ours as planned: a file or table of that name that differs is refused (apply) or left alone
(undo), with a one-line reason."""

from __future__ import annotations

import contextlib
import os
from dataclasses import replace
from typing import Any

from hotspotguard.fixes.plan import DropIn, NftTable, NftTableRemoved
from hotspotguard.system import atomic, firewall, systemd
from hotspotguard.system.docker import read_text
from hotspotguard.wording import Reason

TEMPORARY_PREFIX = ".hotspotguard-"


class NotOurs(Exception):
    """A file or table of that name is there and is not as planned (one line)."""


def apply_dropin(change: DropIn) -> tuple[bool, DropIn]:
    """Write the drop-in (and, where systemd runs, have it read and the unit restarted if it
    runs); whether anything changed, and the change as undo must know it."""
    current = read_text(change.path)
    if current == change.text:
        return False, change
    if current is not None:
        raise NotOurs(Reason("file-not-as-planned", path=change.path))
    directory = os.path.dirname(change.path)
    made_dir = not os.path.isdir(directory)
    atomic.write_file(change.path, change.text, 0o644, prefix=TEMPORARY_PREFIX)
    done = replace(change, made_dir=made_dir)
    if change.reload:
        try:
            systemd.daemon_reload()
            systemd.try_restart(change.unit)
        except firewall.FirewallError:
            undo_dropin(done)  # as before: the caller rolls back the rest
            raise
    return True, done


def undo_dropin(change: DropIn) -> int:
    """Remove the drop-in if it is still ours as written; 1 when it was removed."""
    current = read_text(change.path)
    if current is None:
        return 0
    if current != change.text:
        raise firewall.FirewallError(Reason("file-edited", path=change.path))
    os.unlink(change.path)
    directory = os.path.dirname(change.path)
    if change.made_dir:
        with contextlib.suppress(OSError):
            os.rmdir(directory)  # only if empty
    with contextlib.suppress(OSError):
        atomic.sync_directory(directory if os.path.isdir(directory) else os.path.dirname(directory))
    if change.reload:
        systemd.daemon_reload()
    return 1


def dropin_in_place(change: DropIn) -> bool:
    try:
        return read_text(change.path) == change.text
    except (OSError, UnicodeDecodeError):
        return False


def _listing(change: NftTable | NftTableRemoved) -> str | None:
    """The table as nft lists it (None: there is none)."""
    try:
        return firewall.run(
            [firewall.NFT, "list", "table", change.family, change.name],
            step=firewall.step("step-read-table", family=change.family, table=change.name),
        )
    except firewall.FirewallError as error:
        if "No such file or directory" in str(error):
            return None
        raise


def _loading(change: NftTable | NftTableRemoved) -> dict[str, Any]:
    return firewall.step("step-load-table", family=change.family, table=change.name)


def _same(listing: str, text: str) -> bool:
    return listing.split() == text.split()


def apply_table(change: NftTable) -> bool:
    listing = _listing(change)
    if listing is not None and _same(listing, change.text):
        return False
    if listing is not None:
        raise NotOurs(Reason("table-not-as-planned", family=change.family, table=change.name))
    # one transaction
    firewall.run([firewall.NFT, "-f", "-"], stdin=change.text, step=_loading(change))
    return True


def undo_table(change: NftTable) -> int:
    listing = _listing(change)
    if listing is None:
        return 0
    if not _same(listing, change.text):
        raise firewall.FirewallError(
            Reason("table-edited", family=change.family, table=change.name)
        )
    firewall.run(
        [firewall.NFT, "delete", "table", change.family, change.name],
        step=firewall.step("step-delete-table", family=change.family, table=change.name),
    )
    return 1


def table_in_place(change: NftTable) -> bool:
    try:
        listing = _listing(change)
    except firewall.FirewallError:
        return False
    return listing is not None and _same(listing, change.text)


def remove_table(change: NftTableRemoved) -> tuple[bool, NftTableRemoved]:
    """Delete another program's table, keeping its text for undo (one nft transaction)."""
    listing = _listing(change)
    if listing is None:
        return False, change
    firewall.run(
        [firewall.NFT, "delete", "table", change.family, change.name],
        step=firewall.step("step-delete-table", family=change.family, table=change.name),
    )
    return True, replace(change, text=listing)


def restore_table(change: NftTableRemoved) -> int:
    """Load the table back as it was; none when it is there again (its owner made it anew)."""
    if not change.text or _listing(change) is not None:
        return 0
    firewall.run([firewall.NFT, "-f", "-"], stdin=change.text, step=_loading(change))
    return 1


def table_removed(change: NftTableRemoved) -> bool:
    try:
        return _listing(change) is None
    except firewall.FirewallError:
        return False
