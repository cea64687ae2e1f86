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
class ChainIndex:
    key: Key
    exact: dict[object, list[int]] = field(default_factory=dict)
    networks: dict[tuple[int, int], dict[int, list[int]]] = field(default_factory=dict)
    wildcard: list[int] = field(default_factory=list)
    cache: dict[object, list[int] | None] = field(default_factory=dict)

    @classmethod
    def build(cls, chain: Chain) -> ChainIndex | None:
        if len(chain.rules) < MIN_RULES:
            return None
        requirements = _requirements(chain)
        counts: dict[Key, int] = {}
        for required in requirements:
            for key in required:
                counts[key] = counts.get(key, 0) + 1
        if not counts:
            return None
        key = max(counts, key=lambda k: counts[k])
        if counts[key] * 4 < len(chain.rules):
            return None
        index = cls(key)
        for position, required in enumerate(requirements):
            values = required.get(key)
            if values is None:
                index.wildcard.append(position)
                continue
            for value in values:
                if isinstance(value, NETWORK_TYPES):
                    bucket = index.networks.setdefault((value.version, value.prefixlen), {})
                    bucket.setdefault(int(value.network_address), []).append(position)
                else:
                    index.exact.setdefault(value, []).append(position)
        return index

    def candidates(self, value: object, broken: bool) -> list[int] | None:
        """Rule positions that may match a packet whose key reads `value` (sorted), or None
        when every rule is a candidate. `broken`: the key cannot apply to this packet."""
        cache_key = ("break",) if broken else value
        try:
            return self.cache[cache_key]
        except KeyError:
            pass
        except TypeError:
            return None
        if broken:
            found: list[int] | None = self.wildcard
        elif value is None:
            found = None
        else:
            found = sorted(set(self._hits(value)) | set(self.wildcard))
        self.cache[cache_key] = found
        return found

    def _hits(self, value: object) -> Iterable[int]:
        yield from self.exact.get(value, ())
        if isinstance(value, ADDRESS_TYPES):
            number = int(value)
            bits = value.max_prefixlen
            for (version, prefixlen), bucket in self.networks.items():
                if version == value.version:
                    shift = bits - prefixlen
                    yield from bucket.get((number >> shift) << shift, ())


class RuleIndexes:
    """Chain indexes, built on first use and kept for every flow of one evaluation."""

    def __init__(self) -> None:
        self._indexes: dict[int, ChainIndex | None] = {}

    def get(self, chain: Chain) -> ChainIndex | None:
        ident = id(chain)
        if ident not in self._indexes:
            self._indexes[ident] = ChainIndex.build(chain)
        return self._indexes[ident]
