"""Skipping rules that cannot match, so long chains (100,000 rules) evaluate in milliseconds.

For a long chain, one key that most of its rules test for equality (a destination
address, an interface, a port) is chosen, and the rules are bucketed by the value they
require. For a packet only the rules in its value's buckets and the rules that do not
test the key at all are candidates; the engine visits those, in order, and nothing else.
The result is exactly that of visiting every rule: a skipped rule has a match that is
false for this packet.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable
from dataclasses import dataclass, field

from hotspotguard.ruleset.model import (
    ADDRESS_TYPES,
    NETWORK_TYPES,
    PACKET_CHANGES,
    AnonSet,
    Chain,
    Key,
    Match,
    Meta,
    Payload,
)

MIN_RULES = 48  # shorter chains are faster to walk than to index
MAX_KEYS = 4
INDEXABLE_META = frozenset({"iifname", "oifname", "iif", "oif", "l4proto"})
INDEXABLE_FIELDS = frozenset({"saddr", "daddr", "sport", "dport"})


def _indexable(key: Key) -> bool:
    if isinstance(key, Meta):
        return key.key in INDEXABLE_META
    if isinstance(key, Payload):
        return key.field in INDEXABLE_FIELDS and key.protocol in {
            "ip",
            "ip6",
            "tcp",
            "udp",
            "th",
            "sctp",
            "dccp",
            "udplite",
        }
    return False


def _values(right: object) -> list[object] | None:
    """The exact values or networks a match requires, or None if not indexable."""
    if isinstance(right, AnonSet):
        elements = right.elements
        if any(not isinstance(e, NETWORK_TYPES) for e in elements.other):
            return None
        compact = elements.compact
        if compact is not None:
            if compact.has_ranges:
                return None
            return [*elements.exact, *compact.objects(), *elements.other]
        return [*elements.exact, *elements.other]
    if isinstance(right, str):
        return None if right.endswith("*") else [right]
    if isinstance(right, int | ipaddress.IPv4Address | ipaddress.IPv6Address):
        return [right]
    if isinstance(right, NETWORK_TYPES):
        return [right]
    return None


def _requirements(chain: Chain) -> list[dict[Key, list[object]]]:
    """Per rule: the keys it requires a value of (only rules with no side effects)."""
    result: list[dict[Key, list[object]]] = []
    for rule in chain.rules:
        required: dict[Key, list[object]] = {}
        if not any(isinstance(e, PACKET_CHANGES) for e in rule.exprs):
            for expr in rule.exprs:
                if isinstance(expr, Match) and expr.op in {"==", "in"} and _indexable(expr.left):
                    values = _values(expr.right)
                    if values is not None and expr.left not in required:
                        required[expr.left] = values
        result.append(required)
    return result


@dataclass
class KeyIndex:
    """The rules of a chain bucketed by the value they require of one key."""

    key: Key
    exact: dict[object, list[int]] = field(default_factory=dict)
    networks: dict[tuple[int, int], dict[int, list[int]]] = field(default_factory=dict)
    wildcard: list[int] = field(default_factory=list)

    def add(self, position: int, values: list[object] | None) -> None:
        if values is None:
            self.wildcard.append(position)
            return
        for value in values:
            if isinstance(value, NETWORK_TYPES):
                bucket = self.networks.setdefault((value.version, value.prefixlen), {})
                bucket.setdefault(int(value.network_address), []).append(position)
            else:
                self.exact.setdefault(value, []).append(position)

    def allowed(self, value: object) -> set[int]:
        """Positions of the rules that may match when the key reads `value` (BREAK-like
        values, for which no rule testing the key can match, pass `None`)."""
        allowed = set(self.wildcard)
        if value is None:
            return allowed
        allowed.update(self.exact.get(value, ()))
        if isinstance(value, ADDRESS_TYPES):
            number = int(value)
            bits = value.max_prefixlen
            for (version, prefixlen), bucket in self.networks.items():
                if version == value.version:
                    shift = bits - prefixlen
                    allowed.update(bucket.get((number >> shift) << shift, ()))
        return allowed


@dataclass
class ChainIndex:
    """Up to MAX_KEYS key indexes of one chain; a rule is a candidate only if none of them
    rules it out."""

    keys: list[KeyIndex]
    size: int

    @classmethod
    def build(cls, chain: Chain) -> ChainIndex | None:
        if len(chain.rules) < MIN_RULES:
            return None
        requirements = _requirements(chain)
        counts: dict[Key, int] = {}
        for required in requirements:
            for key in required:
                counts[key] = counts.get(key, 0) + 1
        chosen = sorted(
            (k for k, n in counts.items() if n * 10 >= len(chain.rules)),
            key=lambda k: -counts[k],
        )[:MAX_KEYS]
        if not chosen:
            return None
        keys = [KeyIndex(key) for key in chosen]
        for position, required in enumerate(requirements):
            for key_index in keys:
                key_index.add(position, required.get(key_index.key))
        return cls(keys, len(chain.rules))

    def candidates(self, values: list[tuple[object, bool]]) -> list[int] | None:
        """Sorted rule positions not ruled out, given each key's (value, cannot-apply);
        None when nothing can be ruled out. A value of None is unknown: no constraint."""
        allowed: set[int] | None = None
        for key_index, (value, broken) in zip(self.keys, values, strict=True):
            if value is None and not broken:
                continue
            found = key_index.allowed(None if broken else value)
            allowed = found if allowed is None else allowed & found
        return None if allowed is None else sorted(allowed)


class RuleIndexes:
    """Chain indexes, built on first use and kept for every flow of one evaluation."""

    def __init__(self) -> None:
        self._indexes: dict[int, ChainIndex | None] = {}

    def carried(self, chains: Iterable[Chain]) -> RuleIndexes:
        """New indexes holding what these have for `chains` (the chains a new ruleset shares
        with this one's: the same objects, alive while both rulesets are)."""
        kept = RuleIndexes()
        for chain in chains:
            ident = id(chain)
            if ident in self._indexes:
                kept._indexes[ident] = self._indexes[ident]
        return kept

    def get(self, chain: Chain) -> ChainIndex | None:
        ident = id(chain)
        if ident not in self._indexes:
            self._indexes[ident] = ChainIndex.build(chain)
        return self._indexes[ident]
