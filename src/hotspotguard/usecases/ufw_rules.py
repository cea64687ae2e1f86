"""Apply and undo a `UfwChange` through ufw itself: each rule added with our tag as its ufw
comment; a rule ufw already has (`ufw show added`) is left alone and out of `added`, so undo
deletes only what we added (`ufw [route] delete RULE`).  A failure half-way deletes what this
apply added."""

from __future__ import annotations

import contextlib
from typing import Any

from hotspotguard.fixes.plan import UfwChange, change_from_json
from hotspotguard.system import ufw
from hotspotguard.system.firewall import FirewallError


def _delete_args(rule: str) -> list[str]:
    words = rule.split()
    if words[0] == "route":
        return ["route", "delete", *words[1:]]
    return ["delete", *words]


def _same(line: str, rule: str) -> bool:
    """Whether a `ufw show added` line is `rule` (with any comment)."""
    return line == rule or line.startswith(rule + " comment ")


def _recorded(record: dict[str, Any] | None) -> tuple[str, ...]:
    for raw in (record or {}).get("changes", []):
        if raw.get("kind") == "ufw":
            old = change_from_json(raw)
            if isinstance(old, UfwChange):
                return old.added
    return ()


def apply(change: UfwChange, fix_tag: str, record: dict[str, Any] | None) -> tuple[bool, UfwChange]:
    """Add the rules; whether ufw added any, and the change with every rule any apply of this
    fix added (what undo deletes)."""
    added: list[str] = []
    present = ufw.added()
    try:
        for rule in change.rules:
            if any(_same(line, rule) for line in present):
                continue  # the user's own (with a comment of theirs, ufw would overwrite it)
            output = ufw.run([*rule.split(), "comment", fix_tag])
            if "Skipping" not in output:
                added.append(rule)
    except FirewallError:
        for rule in reversed(added):
            with contextlib.suppress(FirewallError):
                ufw.run(_delete_args(rule))
        raise
    before = _recorded(record)
    every = before + tuple(rule for rule in added if rule not in before)
    return bool(added), UfwChange(change.rules, every)


def undo(change: UfwChange) -> int:
    for rule in reversed(change.added):
        ufw.run(_delete_args(rule))
    return len(change.added)


def take_back(change: UfwChange, fix_tag: str, record: dict[str, Any] | None) -> int:
    """After an apply cut short (before it recorded what it added): delete the rules of
    `change` that carry our tag as their ufw comment — ours, since a rule ufw already had is
    never added again — except those an earlier apply of this fix (`record`) holds."""
    kept = _recorded(record)
    ours = [
        rule
        for rule in change.rules
        if rule not in kept
        and any(_same(line, rule) and line.endswith(f"comment '{fix_tag}'") for line in ufw.added())
    ]
    for rule in reversed(ours):
        ufw.run(_delete_args(rule))
    return len(ours)


def in_place(change: UfwChange) -> bool:
    try:
        present = ufw.added()
    except FirewallError:
        return False
    return all(any(_same(line, rule) for line in present) for rule in change.rules)
