"""Typing the right-hand side of a match for the key it is compared with."""

from __future__ import annotations

import ipaddress
import socket
from collections.abc import Iterable
from typing import Any, Literal

from hotspotguard.ruleset.compact import BITS, COMPACT_MIN, INT, RANGE, V4, V6, CompactElements
from hotspotguard.ruleset.model import (
    Concat,
    Ct,
    Fib,
    IPAddress,
    IPNetwork,
    Key,
    Masked,
    Meta,
    Opaque,
    Payload,
    SetElements,
)

Kind = Literal["addr", "int", "proto", "name", "str", "any", "tcp_flags", "ct_state", "ct_status"]

PROTOCOLS: dict[str, int] = {
    "icmp": 1,
    "igmp": 2,
    "tcp": 6,
    "udp": 17,
    "gre": 47,
    "esp": 50,
    "ah": 51,
    "icmpv6": 58,
    "ipv6-icmp": 58,
    "icmp6": 58,
    "sctp": 132,
    "udplite": 136,
    "dccp": 33,
}
PROTOCOL_NAMES: dict[int, str] = {
    1: "icmp",
    6: "tcp",
    17: "udp",
    58: "icmpv6",
    132: "sctp",
    136: "udplite",
    33: "dccp",
}

TCP_FLAGS: dict[str, int] = {
    "fin": 0x01,
    "syn": 0x02,
    "rst": 0x04,
    "psh": 0x08,
    "ack": 0x10,
    "urg": 0x20,
    "ecn": 0x40,
    "cwr": 0x80,
}

# Bitmask types: symbol -> bits (nft's tcp_flag, ct_state and ct_status types).
CT_STATE_BITS: dict[str, int] = {
    "invalid": 0x01,
    "established": 0x02,
    "related": 0x04,
    "new": 0x08,
    "untracked": 0x40,
}
CT_STATUS_BITS: dict[str, int] = {
    "expected": 0x01,
    "seen-reply": 0x02,
    "assured": 0x04,
    "confirmed": 0x08,
    "snat": 0x10,
    "dnat": 0x20,
    "dying": 0x200,
}
BIT_KINDS: dict[str, dict[str, int]] = {
    "tcp_flags": TCP_FLAGS,
    "ct_state": CT_STATE_BITS,
    "ct_status": CT_STATUS_BITS,
}


def bits_value(kind: str, raw: object) -> int | None:
    """A value of a bitmask type as an int: a number, a symbol (`syn`), a list of symbols
    (`syn,ack`) or an or-expression (`syn | ack`); None when it is not one."""
    table = BIT_KINDS.get(kind, {})
    if isinstance(raw, bool):
        return None
    if isinstance(raw, int):
        return raw
    if isinstance(raw, str):
        return table[raw.lower()] if raw.lower() in table else to_int(raw)
    parts: object = raw
    if isinstance(raw, dict) and len(raw) == 1 and "|" in raw:
        parts = raw["|"]
    if isinstance(parts, list) and parts:
        total = 0
        for part in parts:
            bits = bits_value(kind, part)
            if bits is None:
                return None
            total |= bits
        return total
    return None


_ADDR_FIELDS = {"saddr", "daddr", "saddr ip", "daddr ip"}  # the last two: arp's
_PROTO_FIELDS = {("ip", "protocol"), ("ip6", "nexthdr")}
_STR_META = {"nfproto", "pkttype", "protocol"}
_NAME_META = {"iifname", "oifname", "iif", "oif", "ibrname", "obrname", "iifkind", "oifkind"}

# nft set types -> value kinds
SET_TYPE_KINDS: dict[str, Kind] = {
    "ipv4_addr": "addr",
    "ipv6_addr": "addr",
    "inet_service": "int",
    "inet_proto": "proto",
    "ifname": "name",
    "iface_index": "name",
    "mark": "int",
    "ct_state": "str",
    "ct_dir": "str",
    "ct_status": "ct_status",
    "tcp_flag": "tcp_flags",
    "fib_addrtype": "str",
    "pkt_type": "str",
    "nf_proto": "str",
    "icmp_type": "str",
    "icmpv6_type": "str",
    "verdict": "any",
}


def key_kind(key: Key) -> Kind:
    """What kind of value `key` yields, which decides how its right-hand side is typed."""
    if isinstance(key, Meta):
        if key.key in _NAME_META:
            return "name"
        if key.key == "l4proto":
            return "proto"
        if key.key in _STR_META:
            return "str"
        return "int"
    if isinstance(key, Payload):
        if key.field in _ADDR_FIELDS:
            return "addr"
        if (key.protocol, key.field) in _PROTO_FIELDS:
            return "proto"
        if key.protocol == "tcp" and key.field == "flags":
            return "tcp_flags"
        if key.field in {"type", "code"}:
            return "str"
        return "int"
    if isinstance(key, Ct):
        if key.key == "status":
            return "ct_status"
        if key.key in {"state", "direction"}:
            return "str"
        if key.key in {"saddr", "daddr", "ip saddr", "ip daddr", "ip6 saddr", "ip6 daddr"}:
            return "addr"
        if key.key in {"protocol", "proto"}:
            return "proto"
        return "int"
    if isinstance(key, Fib):
        return "str" if key.result in {"type", "addrtype"} else "name"
    if isinstance(key, Masked):
        return masked_kind(key.key)
    if isinstance(key, Concat | Opaque):
        return "any"
    return "any"


def masked_kind(inner: Key) -> Kind:
    """The kind of `inner & MASK`: a bitmask stays one (ct state becomes its bits), an address
    stays an address, the rest is a number."""
    kind = key_kind(inner)
    if isinstance(inner, Ct) and inner.key == "state":
        return "ct_state"
    if kind in BIT_KINDS or kind == "addr":
        return kind
    return "int"


def to_int(raw: object) -> int | None:
    if isinstance(raw, bool):
        return int(raw)
    if isinstance(raw, int):
        return raw
    if isinstance(raw, str):
        try:
            return int(raw, 0)
        except ValueError:
            return None
    return None


def parse_address(text: str) -> IPAddress | None:
    """An address from its text, None if it is not one (inet_pton is much faster than
    ipaddress's own parser, which matters on rulesets of 100,000 rules)."""
    try:
        if ":" in text:
            return ipaddress.IPv6Address(socket.inet_pton(socket.AF_INET6, text))
        return ipaddress.IPv4Address(socket.inet_pton(socket.AF_INET, text))
    except OSError:
        return None


def scalar(kind: Kind, raw: object) -> object:
    """Type one scalar value; returns an `ipaddress` object, an int or a str."""
    if kind == "addr" and isinstance(raw, str):
        address = parse_address(raw)
        return raw if address is None else address
    if kind == "proto":
        if isinstance(raw, str):
            number = PROTOCOLS.get(raw.lower())
            if number is not None:
                return number
        value = to_int(raw)
        return raw if value is None else value
    if kind == "int":
        value = to_int(raw)
        return raw if value is None else value
    if kind in BIT_KINDS:
        bits = bits_value(kind, raw)
        return raw if bits is None else bits
    if kind == "str" and isinstance(raw, str):
        return raw.lower()
    return raw


def network(addr: str, length: int) -> IPNetwork | None:
    try:
        return ipaddress.ip_network(f"{addr}/{length}", strict=False)
    except ValueError:
        return None


def _exact(value: object) -> bool:
    """A value compared by equality alone (not a prefix, range or "eth*" wildcard)."""
    if isinstance(value, str):
        return not value.endswith("*")
    return isinstance(value, int | ipaddress.IPv4Address | ipaddress.IPv6Address)


def build_elements(values: Iterable[object]) -> SetElements:
    """Split typed set elements into exact scalars (hashable lookup) and the rest; a big
    set's addresses, numbers, prefixes and ranges go to compact arrays."""
    builder = ElementsBuilder()
    for value in values:
        builder.add(value)
    return builder.build()


def _address_int(
    text: str, pton: Any = socket.inet_pton, v4: int = socket.AF_INET, v6: int = socket.AF_INET6
) -> tuple[int, int] | None:
    try:
        if ":" in text:
            return V6, int.from_bytes(pton(v6, text), "big")
        return V4, int.from_bytes(pton(v4, text), "big")
    except (OSError, ValueError):
        return None


class ElementsBuilder:
    """A set's typed elements taken one at a time: the first COMPACT_MIN as objects; once the
    set is that big, those with a compact form go to arrays as they come, so a set of a
    million prefixes never exists as a million objects."""

    def __init__(self) -> None:
        self._pending: list[object] = []
        self._compact: CompactElements | None = None
        self._exact: set[object] = set()
        self._other: list[object] = []

    def add(self, value: object) -> None:
        if self._compact is None:
            self._pending.append(value)
            if len(self._pending) >= COMPACT_MIN:
                self._compact = CompactElements()
                pending, self._pending = self._pending, []
                for item in pending:
                    self._place(item)
            return
        self._place(value)

    def add_address(self, raw: object) -> bool:
        """Take an address, prefix or range of addresses straight from its JSON, as
        parse_element would type it, without making objects (once the set is big); False
        when the caller must type it itself."""
        compact = self._compact
        if compact is None:
            return False
        if type(raw) is str:
            point = _address_int(raw)
            if point is None:
                return False
            compact.add_point(*point)
            return True
        if type(raw) is not dict or "elem" in raw:
            return False
        prefix = raw.get("prefix")
        if prefix is not None:
            if type(prefix) is not dict:
                return False
            addr, length = prefix.get("addr"), prefix.get("len")
            if type(addr) is not str or type(length) is not int:
                return False
            point = _address_int(addr)
            if point is None:
                return False
            domain, number = point
            bits = 32 if domain == V4 else 128
            if not 0 <= length <= bits:
                return False
            host = (1 << (bits - length)) - 1
            compact.add_span(domain, number & ~host, number | host, length)
            return True
        bounds = raw.get("range")
        if type(bounds) is list and len(bounds) == 2:
            low = _address_int(bounds[0]) if type(bounds[0]) is str else None
            high = _address_int(bounds[1]) if type(bounds[1]) is str else None
            if low is None or high is None or low[0] != high[0]:
                return False
            compact.add_span(low[0], low[1], high[1], RANGE)
            return True
        return False

    def add_concat(self, kinds: list[Kind], parts: list[object]) -> bool:
        """Take a concatenation of addresses and numbers (`ip daddr . tcp dport`) straight
        from its JSON parts, as parse_element would type them (once the set is big); False
        when the caller must type it itself."""
        compact = self._compact
        if compact is None or len(parts) > len(kinds):
            return False
        signature: list[int] = []
        key = 0
        for kind, part in zip(kinds, parts, strict=False):
            if kind == "addr" and type(part) is str:
                point = _address_int(part)
                if point is None:
                    return False
                domain, number = point
            elif kind == "int" and type(part) is int and 0 <= part <= 0xFFFFFFFFFFFFFFFF:
                domain, number = INT, part
            else:
                return False
            signature.append(domain)
            key = (key << BITS[domain]) | number
        compact.add_tuple(tuple(signature), key)
        return True

    def _place(self, value: object) -> None:
        assert self._compact is not None
        if not self._compact.add(value):
            self._split(value)

    def _split(self, value: object) -> None:
        if _exact(value) or (isinstance(value, tuple) and all(_exact(v) for v in value)):
            self._exact.add(value)
        else:
            self._other.append(value)

    def build(self) -> SetElements:
        for value in self._pending:
            self._split(value)
        compact = self._compact.finish() if self._compact is not None else None
        return SetElements(frozenset(self._exact), tuple(self._other), compact)
