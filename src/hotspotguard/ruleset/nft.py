"""Parse the JSON `nft -j list ruleset` prints into the typed model.

Anything this parser does not understand becomes `Opaque` (a match that cannot be
decided) or `Uncertain` (a statement that may stop the rule): never an error, and
never silently a match or a non-match.
"""

from __future__ import annotations

from collections.abc import Mapping
from functools import lru_cache
from typing import Any

from hotspotguard.ruleset.model import (
    AnonSet,
    Chain,
    ChainType,
    Computed,
    Concat,
    CopyMark,
    Ct,
    Effect,
    Expr,
    ExtHeader,
    Family,
    Fib,
    Flags,
    Key,
    Masked,
    Match,
    Meta,
    NamedSet,
    Nat,
    Notrack,
    Opaque,
    Payload,
    Range,
    Rule,
    SetMark,
    SetMeta,
    SetRef,
    Stateful,
    Table,
    TcpOption,
    Uncertain,
    Value,
    Verdict,
    VerdictMap,
    interned,
)
from hotspotguard.ruleset.render import render_key
from hotspotguard.ruleset.values import (
    BIT_KINDS,
    SET_TYPE_KINDS,
    ElementsBuilder,
    Kind,
    bits_value,
    build_elements,
    key_kind,
    masked_kind,
    network,
    parse_address,
    scalar,
    to_int,
)

FAMILIES: frozenset[str] = frozenset({"ip", "ip6", "inet", "netdev", "bridge", "arp"})
OPS: frozenset[str] = frozenset({"==", "!=", "<", ">", "<=", ">=", "in"})
VERDICTS: frozenset[str] = frozenset(
    {"accept", "drop", "reject", "queue", "continue", "return", "jump", "goto"}
)
# Statements that never change the verdict nor the packet fields the engine reads.
EFFECTS: frozenset[str] = frozenset(
    {"counter", "log", "dup", "ct helper", "ct timeout", "ct expectation", "secmark", "synproxy"}
)
# Statements that can stop a rule from going on: the rule becomes uncertain.
MAYBE_STOP: frozenset[str] = frozenset({"limit", "quota", "ct count", "meter", "connlimit"})
# nft's base chain types accepted as-is.
CHAIN_TYPES: frozenset[str] = frozenset({"filter", "nat", "route"})

# Sentinel for "the right-hand side could not be typed".
UNKNOWN_VALUE = Opaque("value")


def parse_key(raw: object) -> Key:
    """Type the left-hand side of a match."""
    if not isinstance(raw, dict) or len(raw) != 1:
        return Opaque(f"expression {str(raw)[:40]}")
    ((kind, body),) = raw.items()
    if kind == "meta" and isinstance(body, dict) and isinstance(body.get("key"), str):
        return Meta(body["key"])
    if kind == "payload" and isinstance(body, dict):
        if isinstance(body.get("protocol"), str) and isinstance(body.get("field"), str):
            return Payload(body["protocol"], body["field"])
        return Opaque("raw payload")
    if kind == "ct" and isinstance(body, dict) and isinstance(body.get("key"), str):
        direction = body.get("dir")
        return Ct(body["key"], direction if isinstance(direction, str) else None)
    if kind == "fib" and isinstance(body, dict) and isinstance(body.get("result"), str):
        flags = body.get("flags", [])
        if isinstance(flags, str):
            flags = [flags]
        if isinstance(flags, list) and all(isinstance(f, str) for f in flags):
            return Fib(body["result"], tuple(sorted(flags)))
    if kind == "&" and isinstance(body, list) and len(body) == 2:
        inner = parse_key(body[0])
        mask = _mask(inner, body[1])
        if mask is not None and not isinstance(inner, Opaque):
            return Masked(inner, mask)
        return Opaque("masked expression")
    if kind == "concat" and isinstance(body, list):
        return Concat(tuple(parse_key(item) for item in body))
    if kind == "exthdr" and isinstance(body, dict) and isinstance(body.get("name"), str):
        field = body.get("field")
        return ExtHeader(body["name"], field if isinstance(field, str) else None)
    if kind == "tcp option" and isinstance(body, dict) and isinstance(body.get("name"), str):
        field = body.get("field")
        return TcpOption(body["name"], field if isinstance(field, str) else None)
    if kind in COMPUTED:
        return Computed(kind, _detail(body))
    return Opaque(f"{kind} expression")


# Expressions whose value depends on what no snapshot holds (hashes, random numbers, sockets,
# the sender's OS, IPsec state, routes' classes).
COMPUTED: frozenset[str] = frozenset(
    {"numgen", "jhash", "symhash", "socket", "osf", "ipsec", "rt", "sctp chunk", "dccp option"}
)


def _detail(body: object) -> str:
    """A short readable account of an expression's JSON body, for the trace."""
    if isinstance(body, dict):
        parts = []
        for key, value in body.items():
            if isinstance(value, str | int | float):
                parts.append(f"{key} {value}")
        return " ".join(parts)
    return str(body) if isinstance(body, str | int) else ""


def _mask(inner: Key, raw: object) -> int | None:
    """The mask of `inner & MASK` as an int: bits of a bitmask type (`syn | ack`,
    `established`), an address mask (`255.0.255.0`), or a number."""
    kind = masked_kind(inner)
    if kind in BIT_KINDS:
        return bits_value(kind, raw)
    if kind == "addr" and isinstance(raw, str):
        address = parse_address(raw)
        return None if address is None else int(address)
    return to_int(raw)


def parse_element(kind: Kind, raw: object, key: Key | None = None) -> object:
    """Type one element of a set, a range or a prefix; Opaque when it cannot be read."""
    if isinstance(raw, dict):
        if kind in BIT_KINDS and "|" in raw:
            bits = bits_value(kind, raw)
            return UNKNOWN_VALUE if bits is None else bits
        if "elem" in raw and isinstance(raw["elem"], dict):
            return parse_element(kind, raw["elem"].get("val"), key)
        if "prefix" in raw and isinstance(raw["prefix"], dict):
            addr, length = raw["prefix"].get("addr"), raw["prefix"].get("len")
            if isinstance(addr, str) and isinstance(length, int):
                if kind == "name":
                    return addr + "*"
                net = network(addr, length)
                return UNKNOWN_VALUE if net is None else net
            return UNKNOWN_VALUE
        if "range" in raw and isinstance(raw["range"], list) and len(raw["range"]) == 2:
            low = scalar(kind, raw["range"][0])
            high = scalar(kind, raw["range"][1])
            if isinstance(low, str) or isinstance(high, str):
                return UNKNOWN_VALUE
            return Range(low, high)  # type: ignore[arg-type]
        if "concat" in raw and isinstance(raw["concat"], list):
            keys = key.keys if isinstance(key, Concat) else ()
            parts = []
            for index, item in enumerate(raw["concat"]):
                part_key = keys[index] if index < len(keys) else None
                part_kind = key_kind(part_key) if part_key is not None else "any"
                parts.append(parse_element(part_kind, item, part_key))
            return tuple(parts)
        return UNKNOWN_VALUE
    if isinstance(raw, list):
        return UNKNOWN_VALUE
    return scalar(kind, raw)


def parse_value(key: Key, raw: object) -> Value:
    """Type the right-hand side of a match for `key`."""
    kind = key_kind(key)
    if isinstance(raw, str) and raw.startswith("@"):
        return SetRef(raw[1:])
    if isinstance(raw, dict) and "set" in raw:
        items = raw["set"]
        if not isinstance(items, list):
            items = [items]
        return AnonSet(build_elements([parse_element(kind, item, key) for item in items]))
    if isinstance(raw, list) or (isinstance(raw, dict) and "|" in raw):
        if kind in BIT_KINDS:  # `tcp flags syn,ack`: the bits, tested as "any of" by `in`
            bits = bits_value(kind, raw)
            return UNKNOWN_VALUE if bits is None else bits
        if isinstance(raw, list) and all(isinstance(item, str) for item in raw):
            return Flags(frozenset(str(item).lower() for item in raw))
        return UNKNOWN_VALUE
    value = parse_element(kind, raw, key)
    if isinstance(value, tuple):
        return AnonSet(build_elements([value]))
    if value is UNKNOWN_VALUE or isinstance(value, Opaque):
        return UNKNOWN_VALUE
    return value  # type: ignore[return-value]


def parse_verdict(kind: str, body: object) -> Verdict | None:
    if kind not in VERDICTS:
        return None
    if kind in {"jump", "goto"}:
        target = body.get("target") if isinstance(body, dict) else None
        if not isinstance(target, str):
            return None
        return Verdict(kind, target)  # type: ignore[arg-type]
    return Verdict(kind)  # type: ignore[arg-type]


def parse_map_data(raw: object) -> object:
    """A map's data: a `Verdict` for verdict maps, else the value as given."""
    if isinstance(raw, dict) and len(raw) == 1:
        ((kind, body),) = raw.items()
        verdict = parse_verdict(kind, body)
        if verdict is not None:
            return verdict
    return raw


@lru_cache(maxsize=1 << 16)
def _simple_match(op: str, left_kind: str, first: str, second: str, right: str | int) -> Match:
    """A match of a meta/payload key with a scalar: by far the most common, so memoised."""
    body = {"key": first} if left_kind == "meta" else {"protocol": first, "field": second}
    key = parse_key({left_kind: body})
    if op not in OPS:
        return Match(key, "==", UNKNOWN_VALUE)
    return Match(key, op, parse_value(key, right))  # type: ignore[arg-type]


_CONSTANT_STATEMENTS: dict[str, Expr] = {
    "accept": Verdict("accept"),
    "drop": Verdict("drop"),
    "return": Verdict("return"),
    "continue": Verdict("continue"),
    "counter": Effect("counter"),
    "masquerade": Nat("masquerade"),
}


def parse_statement(raw: object) -> Expr:
    if not isinstance(raw, dict) or len(raw) != 1:
        return Uncertain(f"statement {str(raw)[:40]}")
    ((kind, body),) = raw.items()
    constant = _CONSTANT_STATEMENTS.get(kind)
    if constant is not None and (body is None or kind == "counter" or kind == "masquerade"):
        return constant
    if kind == "match" and isinstance(body, dict):
        left, right = body.get("left"), body.get("right")
        if isinstance(left, dict) and len(left) == 1 and isinstance(right, str | int):
            ((left_kind, left_body),) = left.items()
            if isinstance(left_body, dict):
                if left_kind == "meta" and len(left_body) == 1:
                    first = left_body.get("key")
                    if isinstance(first, str):
                        return _simple_match(body.get("op", "=="), "meta", first, "", right)
                elif left_kind == "payload" and len(left_body) == 2:
                    first, second = left_body.get("protocol"), left_body.get("field")
                    if isinstance(first, str) and isinstance(second, str):
                        return _simple_match(body.get("op", "=="), "payload", first, second, right)
        op = body.get("op", "==")
        key = interned(parse_key(body.get("left")))
        if op not in OPS:
            return interned(Match(key, "==", UNKNOWN_VALUE))
        return interned(Match(key, op, parse_value(key, body.get("right"))))
    verdict = parse_verdict(kind, body)
    if verdict is not None:
        return verdict
    if kind == "vmap" and isinstance(body, dict):
        key = parse_key(body.get("key"))
        data = body.get("data")
        if isinstance(data, str) and data.startswith("@"):
            return VerdictMap(key, None, data[1:])
        if isinstance(data, dict) and isinstance(data.get("set"), list):
            entries: list[tuple[object, Verdict]] = []
            for pair in data["set"]:
                if not isinstance(pair, list) or len(pair) != 2:
                    return Uncertain("verdict map")
                verdict_data = parse_map_data(pair[1])
                if not isinstance(verdict_data, Verdict):
                    return Uncertain("verdict map")
                entries.append((parse_element(key_kind(key), pair[0], key), verdict_data))
            return VerdictMap(key, tuple(entries))
        return Uncertain("verdict map")
    if kind in {"masquerade", "snat", "dnat", "redirect"}:
        family = body.get("family") if isinstance(body, dict) else None
        addr = body.get("addr") if isinstance(body, dict) else None
        address = parse_address(addr) if isinstance(addr, str) else None
        return Nat(kind, family if family in {"ip", "ip6"} else None, address)
    if kind == "notrack":
        return Notrack()
    if kind == "mangle" and isinstance(body, dict):
        key = parse_key(body.get("key"))
        if key in (Meta("mark"), Ct("mark")):
            mark = _mark_update(key, body.get("value"))
            if mark is not None:
                return mark
            source = parse_key(body.get("value"))
            if {key, source} == {Meta("mark"), Ct("mark")}:  # `ct mark set meta mark`, back
                to_connection = key == Ct("mark")
                return CopyMark(to_connection, breaks_untracked=not to_connection)
            return Uncertain(f"{render_key(key)} set (computed)")
        if key == Meta("pkttype") and isinstance(body.get("value"), str):
            return SetMeta("pkttype", body["value"].lower())
        if key == Ct("zone") and to_int(body.get("value")) is not None:
            return SetMeta("ct zone", _int(body.get("value")))
        if _changes_nothing_read(key):
            return Effect(f"{render_key(key)} set")
        return Uncertain(f"{render_key(key)} set")
    if kind in EFFECTS:
        return Effect(kind)
    if kind in MAYBE_STOP:
        return Stateful(f"{kind} {_detail(body)}".strip(), kind)
    if kind == "xt":
        name = body.get("name", "?") if isinstance(body, dict) else "?"
        xt_type = body.get("type", "match") if isinstance(body, dict) else "match"
        return Uncertain(f"xt {xt_type} {name}")
    if kind == "set":  # `set add ... @s`: an effect on a set, not on the verdict
        return Effect("set update")
    return Uncertain(f"{kind} statement")


# Fields the verdict never reads: setting them changes nothing the engine decides on (a later
# match on them reads an unknown value anyway).
_UNREAD_META = frozenset({"priority", "nftrace", "secmark"})
_UNREAD_CT = frozenset({"event", "label", "helper", "expectation", "timeout", "secmark"})
_UNREAD_FIELDS = frozenset({"dscp", "ecn", "ttl", "hoplimit", "flowlabel", "checksum", "id"})


def _changes_nothing_read(key: Key) -> bool:
    if isinstance(key, Meta):
        return key.key in _UNREAD_META
    if isinstance(key, Ct):
        return key.key in _UNREAD_CT
    if isinstance(key, Payload):
        return key.field in _UNREAD_FIELDS
    return isinstance(key, TcpOption)  # `tcp option maxseg size set` (TCPMSS)


def _mark_update(key: Key, raw: object) -> SetMark | None:
    """`mark set N`, `mark set mark | N`, `mark set mark & N` as a SetMark, else None."""
    connection = isinstance(key, Ct)
    value = to_int(raw)
    if value is not None:
        return SetMark(value, 0, connection=connection)
    if isinstance(raw, dict) and len(raw) == 1:
        ((op, operands),) = raw.items()
        if op in {"|", "&"} and isinstance(operands, list) and len(operands) == 2:
            same, number = parse_key(operands[0]), to_int(operands[1])
            if same == key and number is not None:
                if op == "|":
                    return SetMark(number, 0xFFFFFFFF, connection=connection)
                return SetMark(0, number, connection=connection)
    return None


def _int(value: object, default: int = 0) -> int:
    number = to_int(value)
    return default if number is None else number


def _devices(body: Mapping[str, Any]) -> tuple[str, ...]:
    dev = body.get("dev")
    if isinstance(dev, str):
        return (dev,)
    if isinstance(dev, list):
        return tuple(str(d) for d in dev)
    return ()


def _named_set(body: Mapping[str, Any], is_map: bool) -> NamedSet:
    set_type = body.get("type")
    types = set_type if isinstance(set_type, list) else [set_type]
    kinds: list[Kind] = [SET_TYPE_KINDS.get(str(t), "any") for t in types]
    elements = ElementsBuilder()
    addresses = kinds == ["addr"] and not is_map
    entries: list[tuple[object, object]] = []
    for raw in body.get("elem", []) or []:  # a snapshot file's: decoded one at a time
        data: object = None
        if is_map and isinstance(raw, list) and len(raw) == 2:
            raw, data = raw
        if isinstance(raw, dict) and isinstance(raw.get("elem"), dict):
            raw = raw["elem"].get("val")  # an element with a timeout, counter or comment
        if addresses and elements.add_address(raw):
            continue
        if isinstance(raw, dict) and isinstance(raw.get("concat"), list) and len(kinds) > 1:
            if not is_map and elements.add_concat(kinds, raw["concat"]):
                continue
            value: object = tuple(
                parse_element(kinds[i] if i < len(kinds) else "any", part)
                for i, part in enumerate(raw["concat"])
            )
        else:
            value = parse_element(kinds[0], raw)
        elements.add(value)
        if is_map:
            entries.append((value, parse_map_data(data)))
    return NamedSet(
        name=str(body.get("name")),
        elements=elements.build(),
        is_map=is_map,
        entries=tuple(entries),
    )


# `reject with icmp|icmpv6|tcp reset` carries a match that nft's listing hides: the kernel
# rule also has `meta nfproto ipv4|ipv6` (in inet tables) or `meta l4proto tcp`.
_REJECT_IMPLIES: dict[str, Match] = {
    "icmp": Match(Meta("nfproto"), "==", "ipv4"),
    "icmpv6": Match(Meta("nfproto"), "==", "ipv6"),
    "tcp reset": Match(Meta("l4proto"), "==", 6),
}


# `ip dscp set cs1` in an inet table carries the dependency nft adds and its listing hides:
# the rule goes on only for packets that have that header.
_MANGLE_IMPLIES: dict[str, Match] = {
    "ip": Match(Meta("nfproto"), "==", "ipv4"),
    "ip6": Match(Meta("nfproto"), "==", "ipv6"),
    "tcp": Match(Meta("l4proto"), "==", 6),
    "udp": Match(Meta("l4proto"), "==", 17),
}


def parse_rule_exprs(raw: list[object]) -> tuple[Expr, ...]:
    exprs: list[Expr] = []
    for item in raw:
        if isinstance(item, dict) and isinstance(item.get("reject"), dict):
            implied = _REJECT_IMPLIES.get(str(item["reject"].get("type")))
            if implied is not None:
                exprs.append(implied)
        if isinstance(item, dict) and isinstance(item.get("mangle"), dict):
            key = parse_key(item["mangle"].get("key"))
            if isinstance(key, Payload) and key.protocol in _MANGLE_IMPLIES:
                exprs.append(_MANGLE_IMPLIES[key.protocol])
            elif isinstance(key, TcpOption):
                exprs.append(_MANGLE_IMPLIES["tcp"])
        exprs.append(parse_statement(item))
    return tuple(exprs)


def parse_nft(doc: Mapping[str, Any]) -> tuple[list[Table], list[str]]:
    """Parse `nft -j list ruleset` output; returns the tables and warnings for a person."""
    warnings: list[str] = []
    items = doc.get("nftables", [])
    order: list[tuple[str, str]] = []
    chains: dict[tuple[str, str], dict[str, dict[str, Any]]] = {}
    rules: dict[tuple[str, str, str], list[Rule]] = {}
    sets: dict[tuple[str, str], dict[str, NamedSet]] = {}
    for item in items:
        if not isinstance(item, dict) or len(item) != 1:
            continue
        ((kind, body),) = item.items()
        if not isinstance(body, dict):
            continue
        family, table = body.get("family"), body.get("table")
        if kind == "table":
            name = body.get("name")
            if family in FAMILIES and isinstance(name, str):
                order.append((family, name))
                chains.setdefault((family, name), {})
                sets.setdefault((family, name), {})
            continue
        if family not in FAMILIES or not isinstance(table, str):
            continue
        tkey = (family, table)
        if kind == "chain" and isinstance(body.get("name"), str):
            chains.setdefault(tkey, {})[body["name"]] = body
        elif kind == "rule" and isinstance(body.get("chain"), str):
            exprs = body.get("expr", [])
            parsed = (
                parse_rule_exprs(exprs)
                if isinstance(exprs, list)
                else (Uncertain("rule without expressions"),)
            )
            comment = body.get("comment")
            handle = body.get("handle")
            rules.setdefault((family, table, body["chain"]), []).append(
                Rule(
                    parsed,
                    "",
                    handle if isinstance(handle, int) else None,
                    comment if isinstance(comment, str) else None,
                )
            )
        elif kind in {"set", "map"} and isinstance(body.get("name"), str):
            sets.setdefault(tkey, {})[body["name"]] = _named_set(body, kind == "map")
    for tkey in chains:
        if tkey not in order:
            order.append(tkey)
    tables: list[Table] = []
    for family, name in order:
        chain_list: list[Chain] = []
        for chain_name, body in chains.get((family, name), {}).items():
            chain_rules = tuple(rules.get((family, name, chain_name), ()))
            hook = body.get("hook")
            if isinstance(hook, str):
                chain_type = body.get("type", "filter")
                if chain_type not in CHAIN_TYPES:
                    warnings.append(
                        f"{family} {name} {chain_name}: unknown chain type {chain_type}"
                    )
                    chain_type = "filter"
                policy = body.get("policy", "accept")
                chain_list.append(
                    Chain(
                        chain_name,
                        chain_rules,
                        hook=hook,
                        type=_chain_type(chain_type),
                        priority=_int(body.get("prio")),
                        policy="drop" if policy == "drop" else "accept",
                        devices=_devices(body),
                    )
                )
            else:
                chain_list.append(Chain(chain_name, chain_rules))
        fam: Family = family  # type: ignore[assignment]
        tables.append(Table(fam, name, tuple(chain_list), sets.get((family, name), {})))
    return tables, warnings


def _chain_type(raw: object) -> ChainType:
    if raw == "nat":
        return "nat"
    if raw == "route":
        return "route"
    return "filter"


def has_xt(rule: Rule) -> bool:
    return any(isinstance(e, Uncertain) and e.description.startswith("xt ") for e in rule.exprs)
