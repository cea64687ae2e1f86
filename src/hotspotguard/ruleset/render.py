"""Rules as text a person recognises: nft syntax for nft rules, the save line for iptables."""

from __future__ import annotations

import ipaddress
from itertools import islice

from hotspotguard.ruleset.model import (
    NETWORK_TYPES,
    AnonSet,
    Computed,
    Concat,
    CopyMark,
    Ct,
    Effect,
    Expr,
    ExtHeader,
    Fib,
    Flags,
    Key,
    Masked,
    Match,
    Meta,
    Nat,
    Notrack,
    Opaque,
    Payload,
    Range,
    Rule,
    SetElements,
    SetMark,
    SetMeta,
    SetRef,
    TcpOption,
    Uncertain,
    Verdict,
    VerdictMap,
)
from hotspotguard.ruleset.values import PROTOCOL_NAMES


def render_key(key: Key) -> str:
    if isinstance(key, Meta):
        if key.key in {"iifname", "oifname", "iif", "oif", "mark", "l4proto", "pkttype", "nfproto"}:
            return key.key
        return f"meta {key.key}"
    if isinstance(key, Payload):
        return f"{key.protocol} {key.field}"
    if isinstance(key, Ct):
        return f"ct {key.direction + ' ' if key.direction else ''}{key.key}"
    if isinstance(key, Fib):
        if key.result == "rpfilter":  # iptables' `-m rpfilter [--loose ...]`
            return "rpfilter" + "".join(f" --{flag}" for flag in key.flags)
        return f"fib {' . '.join(key.flags)} {key.result}"
    if isinstance(key, Masked):
        inner = key.key
        if isinstance(inner, Payload) and inner.field in {"saddr", "daddr"}:
            mask = ipaddress.IPv4Address if inner.protocol == "ip" else ipaddress.IPv6Address
            return f"{render_key(inner)} & {mask(key.mask)}"
        return f"{render_key(inner)} & {key.mask:#x}"
    if isinstance(key, Concat):
        return " . ".join(render_key(k) for k in key.keys)
    if isinstance(key, ExtHeader):
        return f"{key.name} {key.field}" if key.field else f"exthdr {key.name}"
    if isinstance(key, TcpOption):
        return f"tcp option {key.name}" + (f" {key.field}" if key.field else "")
    if isinstance(key, Computed):
        return f"{key.kind} {key.detail}".strip()
    return f"<{key.description}>"


def render_value(value: object, key: Key | None = None) -> str:
    if isinstance(value, bool):  # `exthdr hbh exists`, `tcp option sack-perm missing`
        return "exists" if value else "missing"
    if isinstance(value, str):
        if key is not None and isinstance(key, Meta) and key.key in {"iifname", "oifname"}:
            return f'"{value}"'
        return value
    if isinstance(value, int) and isinstance(key, Meta) and key.key == "l4proto":
        return PROTOCOL_NAMES.get(value, str(value))
    if isinstance(value, NETWORK_TYPES):
        return str(value)
    if isinstance(value, Range):
        return f"{value.low}-{value.high}"
    if isinstance(value, Flags):
        return ",".join(sorted(value.names))
    if isinstance(value, AnonSet):
        return "{ " + ", ".join(render_value(v, key) for v in _elements(value.elements)) + " }"
    if isinstance(value, SetRef):
        return f"@{value.name}"
    if isinstance(value, tuple):
        return " . ".join(render_value(v) for v in value)
    if isinstance(value, Opaque):
        return f"<{value.description}>"
    return str(value)


def _elements(elements: SetElements) -> list[object]:
    compact = islice(elements.compact.objects(), 8) if elements.compact else ()
    items = sorted(elements.exact, key=str) + list(compact) + list(elements.other)
    return items[:8] + (["…"] if len(elements) > 8 else [])


def render_expr(expr: Expr) -> str:
    if isinstance(expr, Match):
        op = "" if expr.op in {"==", "in"} else f"{expr.op} "
        return f"{render_key(expr.left)} {op}{render_value(expr.right, expr.left)}"
    if isinstance(expr, Verdict):
        return f"{expr.kind} {expr.target}" if expr.target else expr.kind
    if isinstance(expr, VerdictMap):
        if expr.name:
            return f"{render_key(expr.key)} vmap @{expr.name}"
        items = ", ".join(f"{render_value(k)} : {render_expr(v)}" for k, v in (expr.entries or ()))
        return f"{render_key(expr.key)} vmap {{ {items} }}"
    if isinstance(expr, Nat):
        return expr.kind
    if isinstance(expr, SetMark):
        return f"meta mark set {expr.value:#x}"
    if isinstance(expr, CopyMark):
        return "ct mark set meta mark" if expr.to_connection else "meta mark set ct mark"
    if isinstance(expr, SetMeta):
        return f"{'meta ' if expr.key == 'pkttype' else ''}{expr.key} set {expr.value}"
    if isinstance(expr, Notrack):
        return "notrack"
    if isinstance(expr, Effect):
        return expr.kind
    if isinstance(expr, Uncertain):
        return f"<{expr.description}>"
    return "?"


def rule_text(rule: Rule) -> str:
    """The rule as text: its save line when it came from iptables, else rendered nft syntax."""
    if rule.text:
        return rule.text
    text = " ".join(
        render_expr(e) for e in rule.exprs if not isinstance(e, Effect) or e.kind != "counter"
    )
    if rule.comment:
        text += f' comment "{rule.comment}"'
    return text
