"""The change kinds beyond DOCKER-USER rules and sysctls, in one dispatch for the use cases:
each kind's apply, undo and check live in its own module (`inserts`, `resets`)."""

from __future__ import annotations

from typing import Any

from hotspotguard.fixes.plan import ChainInsert, ChainReset, change_from_json
from hotspotguard.usecases import inserts, resets

Edit = ChainInsert | ChainReset
KINDS = (ChainInsert, ChainReset)


class StaleEdit(Exception):
    """What the change edits is not as planned any more (one line)."""


def apply(change: Edit, fix_tag: str, record: dict[str, Any] | None) -> tuple[bool, Edit]:
    """Do `change`: whether anything changed, and the change as undo must know it (with what
    an earlier apply of the same fix, `record`, found before it)."""
    if isinstance(change, ChainInsert):
        try:
            return inserts.apply(change, fix_tag), change
        except inserts.StaleChain as error:
            raise StaleEdit(str(error)) from None
    done = resets.merged(_recorded_reset(record, change), change)
    return resets.apply(change), done


def undo(change: Edit, fix_tag: str) -> int:
    """Undo `change`; how many rules it removed or put back."""
    if isinstance(change, ChainInsert):
        return inserts.remove(change, fix_tag)
    return resets.undo(change)


def in_place(change: Edit, fix_tag: str) -> bool:
    if isinstance(change, ChainInsert):
        return inserts.in_place(change, fix_tag)
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
