"""The change kinds beyond DOCKER-USER rules and sysctls, in one dispatch for the use cases:
each kind's apply, undo and check live in its own module (`inserts`, `resets`)."""

from __future__ import annotations

from typing import Any

from hotspotguard.fixes.plan import (
    ChainInsert,
    ChainReset,
    DropIn,
    FileChange,
    NftTable,
    NftTableRemoved,
    UfwChange,
    ZoneChange,
    change_from_json,
)
from hotspotguard.system.firewall import FirewallError
from hotspotguard.usecases import dropins, files, firewalld_zone, inserts, resets, ufw_rules
from hotspotguard.wording import reason_of

Edit = (
    ChainInsert
    | ChainReset
    | FileChange
    | UfwChange
    | DropIn
    | NftTable
    | NftTableRemoved
    | ZoneChange
)
KINDS = (
    ChainInsert,
    ChainReset,
    FileChange,
    UfwChange,
    DropIn,
    NftTable,
    NftTableRemoved,
    ZoneChange,
)


class StaleEdit(Exception):
    """What the change edits is not as planned any more (one line)."""


def apply(change: Edit, fix_tag: str, record: dict[str, Any] | None) -> tuple[bool, Edit]:
    """Do `change`: whether anything changed, and the change as undo must know it (with what
    an earlier apply of the same fix, `record`, found before it)."""
    if isinstance(change, ChainInsert):
        try:
            return inserts.apply(change, fix_tag)
        except inserts.StaleChain as error:
            raise StaleEdit(reason_of(error)) from None
    if isinstance(change, UfwChange):
        return ufw_rules.apply(change, fix_tag, record)
    if isinstance(change, ZoneChange):
        try:
            return firewalld_zone.apply(change, record)
        except firewalld_zone.ZoneRefused as error:
            raise StaleEdit(reason_of(error)) from None
    if isinstance(change, FileChange):
        recorded = _recorded_file(record, change)
        try:
            return files.apply(change), recorded or change
        except files.FileMoved as error:
            raise StaleEdit(reason_of(error)) from None
    if isinstance(change, DropIn):
        try:
            did, done_dropin = dropins.apply_dropin(change)
        except dropins.NotOurs as error:
            raise StaleEdit(reason_of(error)) from None
        return did, done_dropin if did else _recorded_dropin(record, change) or change
    if isinstance(change, NftTable):
        try:
            return dropins.apply_table(change), change
        except dropins.NotOurs as error:
            raise StaleEdit(reason_of(error)) from None
    if isinstance(change, NftTableRemoved):
        did, removed = dropins.remove_table(change)
        return did, removed if did else recorded_removal(record, change) or removed
    done = resets.merged(_recorded_reset(record, change), change)
    return resets.apply(change), done


def undo(change: Edit, fix_tag: str) -> tuple[int, list[str]]:
    """Undo `change`: how many rules it removed or put back, and warnings for a person.
    `StaleEdit` when it cannot be undone as recorded (nothing changed)."""
    if isinstance(change, ChainInsert):
        return inserts.remove(change, fix_tag)
    if isinstance(change, UfwChange):
        return ufw_rules.undo(change), []
    if isinstance(change, ZoneChange):
        try:
            return firewalld_zone.undo(change), []
        except firewalld_zone.ZoneRefused as error:
            raise StaleEdit(reason_of(error)) from None
    if isinstance(change, FileChange):
        try:
            return files.undo(change), []
        except files.FileMoved as error:
            raise FirewallError(reason_of(error)) from None
    if isinstance(change, DropIn):
        return dropins.undo_dropin(change), []
    if isinstance(change, NftTable):
        return dropins.undo_table(change), []
    if isinstance(change, NftTableRemoved):
        return dropins.restore_table(change), []
    return resets.undo(change), []


def take_back(change: Edit, fix_tag: str, record: dict[str, Any] | None) -> Edit | None:
    """Undo what an apply cut short (a crash) did with `change`, which it had not recorded:
    a first apply is taken back; a re-apply keeps what the recorded fix (`record`) holds, and
    an insert it put back is returned with the identity of its rules now (new handles and
    positions), which the record must take over for undo to find them."""
    if isinstance(change, UfwChange):  # several commands: any of them may have run
        ufw_rules.take_back(change, fix_tag, record)
    elif record is None and isinstance(change, ZoneChange):
        try:  # binding by binding: the runtime one may be made, the permanent not
            firewalld_zone.undo(change)
        except firewalld_zone.ZoneRefused as error:
            raise FirewallError(reason_of(error)) from None
    elif record is None:
        if in_place(change, fix_tag):  # one commit (one rename): all or nothing
            undo(change, fix_tag)
        elif isinstance(change, FileChange):  # cut short after writing the backup
            files.forget_backup(change)
    elif isinstance(change, ChainInsert) and in_place(change, fix_tag):
        return inserts.apply(change, fix_tag)[1]  # in place: reads the identity only
    return None


def same_target(raw: dict[str, Any], change: Edit) -> bool:
    """Whether a recorded change `raw` edits what `change` edits."""
    doc = change.to_json()
    keys = ("kind", "tool", "variant", "family", "table", "chain", "path", "name")
    return all(raw.get(key) == doc.get(key) for key in keys)


def in_place(change: Edit, fix_tag: str) -> bool:
    if isinstance(change, ChainInsert):
        return inserts.in_place(change, fix_tag)
    if isinstance(change, UfwChange):
        return ufw_rules.in_place(change)
    if isinstance(change, ZoneChange):
        return firewalld_zone.in_place(change)
    if isinstance(change, FileChange):
        return files.in_place(change)
    if isinstance(change, DropIn):
        return dropins.dropin_in_place(change)
    if isinstance(change, NftTable):
        return dropins.table_in_place(change)
    if isinstance(change, NftTableRemoved):
        return dropins.table_removed(change)
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


def _recorded_dropin(record: dict[str, Any] | None, change: DropIn) -> DropIn | None:
    """The drop-in an earlier apply recorded (whether it made the directory), if it wrote
    the same text."""
    for raw in (record or {}).get("changes", []):
        if raw.get("kind") == "dropin" and raw.get("path") == change.path:
            old = change_from_json(raw)
            if isinstance(old, DropIn) and old.text == change.text:
                return old
    return None


def recorded_removal(
    record: dict[str, Any] | None, change: NftTableRemoved
) -> NftTableRemoved | None:
    """The table an earlier apply of this fix deleted (with its text, for undo)."""
    for raw in (record or {}).get("changes", []):
        if raw.get("kind") == "table-removed":
            old = change_from_json(raw)
            if isinstance(old, NftTableRemoved) and (old.family, old.name) == (
                change.family,
                change.name,
            ):
                return old
    return None


def kept_removals(record: dict[str, Any] | None, done: list[Any]) -> list[NftTableRemoved]:
    """Tables an earlier apply of this fix deleted that this apply's plan no longer names
    (they are gone): kept in the record, so that undo still loads them back."""
    named = {(c.family, c.name) for c in done if isinstance(c, NftTableRemoved)}
    kept = []
    for raw in (record or {}).get("changes", []):
        if raw.get("kind") == "table-removed":
            old = change_from_json(raw)
            if isinstance(old, NftTableRemoved) and (old.family, old.name) not in named:
                kept.append(old)
    return kept
