"""The change kinds beyond DOCKER-USER rules and sysctls, in one dispatch for the use cases:
each kind's apply, undo and check live in its own module (`inserts`, `resets`)."""

from __future__ import annotations

from typing import Any

from hotspotguard.fixes.plan import (
    ChainInsert,
    ChainReset,
    FileChange,
    UfwChange,
    ZoneChange,
    change_from_json,
)
from hotspotguard.system.firewall import FirewallError
from hotspotguard.usecases import files, firewalld_zone, inserts, resets, ufw_rules

Edit = ChainInsert | ChainReset | FileChange | UfwChange | ZoneChange
KINDS = (ChainInsert, ChainReset, FileChange, UfwChange, ZoneChange)


class StaleEdit(Exception):
    """What the change edits is not as planned any more (one line)."""


def apply(change: Edit, fix_tag: str, record: dict[str, Any] | None) -> tuple[bool, Edit]:
    """Do `change`: whether anything changed, and the change as undo must know it (with what
    an earlier apply of the same fix, `record`, found before it)."""
    if isinstance(change, ChainInsert):
        try:
            return inserts.apply(change, fix_tag)
        except inserts.StaleChain as error:
            raise StaleEdit(str(error)) from None
    if isinstance(change, UfwChange):
        return ufw_rules.apply(change, fix_tag, record)
    if isinstance(change, ZoneChange):
        try:
            return firewalld_zone.apply(change, record)
        except firewalld_zone.ZoneRefused as error:
            raise StaleEdit(str(error)) from None
    if isinstance(change, FileChange):
        recorded = _recorded_file(record, change)
        try:
            return files.apply(change), recorded or change
        except files.FileMoved as error:
            raise StaleEdit(str(error)) from None
    done = resets.merged(_recorded_reset(record, change), change)
    return resets.apply(change), done


def undo(change: Edit, fix_tag: str) -> int:
    """Undo `change`; how many rules it removed or put back.  `StaleEdit` when it cannot be
    undone as recorded (nothing changed)."""
    if isinstance(change, ChainInsert):
        return inserts.remove(change, fix_tag)
    if isinstance(change, UfwChange):
        return ufw_rules.undo(change)
    if isinstance(change, ZoneChange):
        try:
            return firewalld_zone.undo(change)
        except firewalld_zone.ZoneRefused as error:
            raise StaleEdit(str(error)) from None
    if isinstance(change, FileChange):
        try:
            return files.undo(change)
        except files.FileMoved as error:
            raise FirewallError(str(error)) from None
    return resets.undo(change)


def undo_interrupted(change: Edit, fix_tag: str) -> None:
    """Take back what a first apply cut short may have done: a change in place is undone; a
    zone move is undone binding by binding (the runtime one may be made, the permanent not)."""
    if isinstance(change, ZoneChange):
        try:
            firewalld_zone.undo(change)
        except firewalld_zone.ZoneRefused as error:
            raise FirewallError(str(error)) from None
    elif in_place(change, fix_tag):
        undo(change, fix_tag)


def in_place(change: Edit, fix_tag: str) -> bool:
    if isinstance(change, ChainInsert):
        return inserts.in_place(change, fix_tag)
    if isinstance(change, UfwChange):
        return ufw_rules.in_place(change)
    if isinstance(change, ZoneChange):
        return firewalld_zone.in_place(change)
    if isinstance(change, FileChange):
        return files.in_place(change)
    return resets.in_place(change)


def _recorded_reset(record: dict[str, Any] | None, change: ChainReset) -> ChainReset | None:
    for raw in (record or {}).get("changes", []):
        if raw.get("kind") != "reset":
            continue
        old = change_from_json(raw)
        if isinstance(old, ChainReset) and (old.variant, old.family, old.table, old.chain) == (
            change.variant,
            change.family,
            change.table,
            change.chain,
        ):
            return old
    return None


def _recorded_file(record: dict[str, Any] | None, change: FileChange) -> FileChange | None:
    """The file change an earlier apply recorded, if this one writes the same text (its
    `before` is the text from before the first apply)."""
    for raw in (record or {}).get("changes", []):
        if raw.get("kind") == "file" and raw.get("path") == change.path:
            old = change_from_json(raw)
            if isinstance(old, FileChange) and old.after == change.after:
                return old
    return None
