"""Apply, check and undo a `ChainInsert`: accepts in another program's chain, placed just
before the rule that drops (or at the chain's end), in that table's own tool: one nft
transaction for nftables tables, one ``iptables-restore --noflush`` commit for iptables ones.

Our rules are the ones carrying the fix's tag; the chain without them is the chain as planned,
so the anchor (the dropping rule) is checked there: a chain that moved since the plan is refused
(`Stale`), never edited blind.  Applying what is already in place changes nothing."""

from __future__ import annotations

import json
import shlex
from dataclasses import replace
from typing import Any

from hotspotguard.fixes.plan import ChainInsert, RuleChange, rule_tag
from hotspotguard.ruleset.model import Rule
from hotspotguard.ruleset.nft import parse_rule_exprs
from hotspotguard.ruleset.render import rule_text
from hotspotguard.system import firewall, nftrules
from hotspotguard.wording import Reason


class StaleChain(Exception):
    """The chain is not as planned any more (the one-line message says which)."""


def _stale(change: ChainInsert) -> StaleChain:
    return StaleChain(
        f"{change.family} {change.table} {change.chain} changed since the fix was planned: "
        "preview it again"
    )


def _nft_text(rule: dict[str, Any]) -> str:
    exprs = rule.get("expr")
    comment = rule.get("comment")
    parsed = parse_rule_exprs(exprs if isinstance(exprs, list) else [])
    return rule_text(Rule(parsed, "", None, comment if isinstance(comment, str) else None))


def _planned_nft(change: ChainInsert, fix_tag: str) -> list[str]:
    return [_nft_text({"expr": json.loads(e), "comment": fix_tag}) for e in change.exprs]


def _nft_block(change: ChainInsert, fix_tag: str) -> tuple[list[dict[str, Any]], list[Any]]:
    """The chain's rules and our tagged block where `change` puts it (checking the anchor)."""
    rules = nftrules.chain_rules(change.family, change.table, change.chain)
    if rules is None:
        raise firewall.FirewallError(
            Reason("chain-missing", family=change.family, table=change.table, chain=change.chain)
        )
    if change.before is None:
        end = len(rules)
    else:
        handles = [rule.get("handle") for rule in rules]
        if change.before not in handles:
            raise _stale(change)
        end = handles.index(change.before)
        if _nft_text(rules[end]) != change.anchor:
            raise _stale(change)
    start = end
    while start > 0 and rules[start - 1].get("comment") == fix_tag:
        start -= 1
    return rules, rules[start:end]


def _apply_nft(change: ChainInsert, fix_tag: str) -> tuple[bool, ChainInsert]:
    _, block = _nft_block(change, fix_tag)
    if [_nft_text(rule) for rule in block] == _planned_nft(change, fix_tag):
        return False, replace(change, handles=tuple(int(rule["handle"]) for rule in block))
    where = (change.family, change.table, change.chain)
    commands: list[dict[str, Any]] = [
        {"delete": nftrules.rule_object(*where, handle=int(rule["handle"]))} for rule in block
    ]
    verb = "insert" if change.before is not None else "add"
    for exprs in change.exprs:
        body = nftrules.rule_object(
            *where, expr=json.loads(exprs), handle=change.before, comment=fix_tag
        )
        commands.append({verb: body})
    nftrules.transaction(commands, *where)
    _, block = _nft_block(change, fix_tag)
    return True, replace(change, handles=tuple(int(rule["handle"]) for rule in block))


def _target(change: ChainInsert) -> RuleChange:
    """The chain `change` edits, as the iptables helpers name one."""
    return RuleChange(change.variant, change.version, change.table, change.chain, ())


def _listing(change: ChainInsert) -> firewall.ChainListing:
    """The chain's rules now, with their handles; FirewallError when it is gone."""
    listing = firewall.list_chain(_target(change))
    if not listing.exists:
        raise firewall.FirewallError(Reason("chain-gone", table=change.table, chain=change.chain))
    return listing


def _ipt_block(change: ChainInsert, fix_tag: str) -> tuple[firewall.ChainListing, int, int]:
    """The chain, and the [start, end) of our block where `change` puts it."""
    listing = _listing(change)
    specs = [spec for spec, _ in listing.rules]
    if change.before is None:
        end = len(specs)
    else:
        # the anchor's position counts the chain as planned: without any rule of ours
        theirs = [n for n, spec in enumerate(specs) if rule_tag(spec) != fix_tag]
        index = change.before - 1
        if index >= len(theirs):
            raise _stale(change)
        end = theirs[index]
        anchor = shlex.split(change.anchor)[2:]
        if shlex.split(specs[end]) != anchor:
            raise _stale(change)
    start = end
    while start > 0 and rule_tag(specs[start - 1]) == fix_tag:
        start -= 1
    return listing, start, end


def _apply_iptables(change: ChainInsert, fix_tag: str) -> tuple[bool, ChainInsert]:
    listing, start, end = _ipt_block(change, fix_tag)
    block = [spec for spec, _ in listing.rules[start:end]]
    changed = not firewall.same_rules(block, change.rules)
    if changed:
        lines = firewall.delete_lines(change.chain, block)
        if change.before is None:
            lines += [f"-A {change.chain} {rule}" for rule in change.rules]
        else:
            lines += [
                f"-I {change.chain} {start + n} {rule}" for n, rule in enumerate(change.rules, 1)
            ]
        firewall.commit_on(_target(change), listing, lines)
        listing, start, end = _ipt_block(change, fix_tag)
    placed = tuple(
        (spec, handle, position + 1)
        for position, (spec, handle) in enumerate(listing.rules)
        if start <= position < end
    )
    return changed, replace(change, placed=placed)


def apply(change: ChainInsert, fix_tag: str) -> tuple[bool, ChainInsert]:
    """Put `change`'s rules in place (replacing an older version of them): whether anything
    changed (False when they already were), and the change with the identity of its rules
    (nft: their handles; iptables: text, handle and position), which undo removes and nothing
    else."""
    if change.tool == "nft":
        return _apply_nft(change, fix_tag)
    return _apply_iptables(change, fix_tag)


def _look_alikes(change: ChainInsert, specs: list[str]) -> list[str]:
    if not specs:
        return []
    return [
        f"left {len(specs)} rule(s) in {change.table} {change.chain} that carry this fix's "
        f"tag but were not added by it: {specs[0]}"
    ]


def _remove_nft(change: ChainInsert, fix_tag: str) -> tuple[int, list[str]]:
    rules = nftrules.chain_rules(change.family, change.table, change.chain) or []
    tagged = [rule for rule in rules if rule.get("comment") == fix_tag]
    ours = tagged
    if change.handles:  # exactly the rules this fix added; look-alikes with our tag stay
        ours = [rule for rule in tagged if rule.get("handle") in change.handles]
    where = (change.family, change.table, change.chain)
    nftrules.transaction(
        [{"delete": nftrules.rule_object(*where, handle=int(rule["handle"]))} for rule in ours],
        *where,
    )
    others = [_nft_text(rule) for rule in tagged if rule not in ours]
    return len(ours), _look_alikes(change, others)


def remove(change: ChainInsert, fix_tag: str) -> tuple[int, list[str]]:
    """Delete the rules `change` added, by the identity apply recorded (one commit): how
    many, and warnings for a person (a look-alike carrying our tag is left alone).  Without
    a recorded identity (an apply cut short before it recorded one) every rule carrying
    `fix_tag` goes.  A chain gone meanwhile holds none."""
    if change.tool == "nft":
        return _remove_nft(change, fix_tag)
    for _ in range(firewall.ATTEMPTS):
        try:
            listing = _listing(change)
        except firewall.FirewallError:
            return 0, []
        if change.placed:
            added = [firewall.AddedRule(*rule) for rule in change.placed]
            where = firewall.locate(listing, added)
        else:
            where = [i for i, (spec, _) in enumerate(listing.rules) if rule_tag(spec) == fix_tag]
        mine = [i for i in where if i is not None]
        try:
            firewall.commit_on(
                _target(change), listing, firewall.delete_positions(change.chain, mine)
            )
        except firewall.Moved:
            continue
        return len(mine), _look_alikes(change, firewall.look_alikes(listing, where, fix_tag))
    raise firewall.FirewallError(Reason("firewall-busy"))


def in_place(change: ChainInsert, fix_tag: str) -> bool:
    """Whether `change`'s rules are where the plan put them."""
    try:
        if change.tool == "nft":
            _, block = _nft_block(change, fix_tag)
            return [_nft_text(rule) for rule in block] == _planned_nft(change, fix_tag)
        listing, start, end = _ipt_block(change, fix_tag)
        return firewall.same_rules([spec for spec, _ in listing.rules[start:end]], change.rules)
    except (StaleChain, firewall.FirewallError):
        return False
