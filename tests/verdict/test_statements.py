"""Statements that change what later rules or the kernel read: mark copies between the packet
and its connection (`ct mark set meta mark`, CONNMARK --save-mark/--restore-mark), `meta
pkttype set`, conntrack zones (`ct zone set`, `-j CT --zone`); and a chain at exactly
conntrack's priority, whose order against conntrack no snapshot holds."""

from __future__ import annotations

from typing import Any

from hotspotguard.ruleset import load_snapshot, parse_ruleset
from hotspotguard.ruleset.iptables import parse_rule_line
from hotspotguard.ruleset.model import CopyMark, SetMeta
from hotspotguard.verdict import evaluate
from tests.helpers import ACCEPT, DROP, chain, document, match, meta, nft_doc, rule, table
from tests.verdict.test_engine import nm_shared

CT_MARK = {"ct": {"key": "mark"}}


def flows(*items: dict[str, Any], **extra: Any) -> dict[str, tuple[str, str | None]]:
    snapshot = load_snapshot(document(nft_doc(*nm_shared(), *items), **extra))
    (hotspot,) = evaluate(snapshot, parse_ruleset(snapshot)).hotspots
    return {name: (flow.verdict, flow.reason) for name, flow in hotspot.flows.items()}


def mangle(key: dict[str, Any], value: Any) -> dict[str, Any]:
    return {"mangle": {"key": key, "value": value}}


def test_connmark_copies_parse_with_their_masks() -> None:
    restore = parse_rule_line("-A PREROUTING -j CONNMARK --restore-mark", 4, frozenset())
    assert restore.exprs == (CopyMark(to_connection=False, keep=0, take=0xFFFFFFFF),)
    save = parse_rule_line(
        "-A PREROUTING -j CONNMARK --save-mark --nfmask 0xff --ctmask 0xf0", 4, frozenset()
    )
    assert save.exprs == (CopyMark(to_connection=True, keep=0xFFFFFF0F, take=0xFF),)
    zone = parse_rule_line("-A PREROUTING -j CT --zone 3", 4, frozenset())
    assert zone.exprs == (SetMeta("ct zone", 3),)


def test_mark_saved_to_the_connection_reaches_the_reply() -> None:
    # the outbound packet is marked and its mark saved to the connection; the reply has no
    # packet mark until it is restored from the connection, then a rule drops it
    result = flows(
        table("m"),
        chain("m", "pre", "prerouting", prio=-150),
        rule("m", "pre", match(meta("iifname"), "hs0"), mangle(meta("mark"), 5)),
        rule("m", "pre", match(meta("iifname"), "hs0"), mangle(CT_MARK, meta("mark"))),
        rule("m", "pre", match(meta("iifname"), "up0"), mangle(meta("mark"), CT_MARK)),
        rule("m", "pre", match(meta("iifname"), "up0"), match(meta("mark"), 5), DROP),
    )
    assert result["outbound"][0] == "accept"
    assert result["reply"][0] == "drop"


def test_restoring_from_no_connection_ends_the_rule() -> None:
    # before conntrack there is no connection: nft's `ct mark` breaks the rule (no drop)
    result = flows(
        table("m"),
        chain("m", "raw", "prerouting", prio=-300),
        rule("m", "raw", mangle(meta("mark"), CT_MARK), DROP),
    )
    assert result["dns"][0] == "accept" and result["outbound"][0] == "accept"


def test_pkttype_set_is_read_by_later_rules_and_stops_forwarding() -> None:
    result = flows(
        table("m"),
        chain("m", "pre", "prerouting", prio=-150),
        rule("m", "pre", match(meta("iifname"), "hs0"), mangle(meta("pkttype"), "broadcast")),
        chain("m", "in", "input", prio=0),
        rule("m", "in", match(meta("pkttype"), "broadcast"), match(meta("l4proto"), 17), DROP),
    )
    assert result["dns"][0] == "drop"  # now reads as broadcast
    verdict, reason = result["outbound"]
    assert verdict == "drop" and reason is not None and "packet type" in reason
    assert result["reply"][0] == "accept"


def test_a_reply_in_another_conntrack_zone_is_unknown() -> None:
    result = flows(
        table("z"),
        chain("z", "raw", "prerouting", prio=-300),
        rule("z", "raw", match(meta("iifname"), "hs0"), mangle({"ct": {"key": "zone"}}, 2)),
    )
    assert result["outbound"][0] == "accept"
    verdict, reason = result["reply"]
    assert verdict == "unknown" and reason is not None and "zone 2" in reason
    both = flows(
        table("z"),
        chain("z", "raw", "prerouting", prio=-300),
        rule("z", "raw", mangle({"ct": {"key": "zone"}}, 2)),
    )
    assert both["reply"][0] == "accept"  # the same zone both ways


def test_notrack_at_conntrack_priority_is_unknown_with_the_reason() -> None:
    # the chain may run before conntrack (the connection stays untracked and unmasqueraded)
    # or after it (notrack does nothing): the outcomes differ
    result = flows(
        table("t"),
        chain("t", "c", "prerouting", prio=-200),
        rule("t", "c", {"notrack": None}),
    )
    verdict, reason = result["outbound"]
    assert verdict == "unknown"
    assert reason is not None and ("masquerade" in reason or "conntrack's priority" in reason)


def test_a_chain_at_conntrack_priority_that_does_not_care_is_decided() -> None:
    result = flows(
        table("t"),
        chain("t", "c", "prerouting", prio=-200),
        rule(
            "t",
            "c",
            match(meta("l4proto"), 17),
            match({"payload": {"protocol": "udp", "field": "dport"}}, 53),
            DROP,
        ),
    )
    assert result["dns"][0] == "drop"
    assert result["outbound"][0] == "accept"


def test_a_filter_chain_at_the_nat_cores_priority_sees_the_reply_either_way() -> None:
    # before the nat core translates the reply back it is addressed to the uplink's address,
    # after it to the client: which one the chain sees, only the registration order says
    src = {"prefix": {"addr": "198.51.100.0", "len": 24}}
    result = flows(
        table("t"),
        chain("t", "c", "prerouting", prio=-100, policy="drop"),
        rule("t", "c", match({"payload": {"protocol": "ip", "field": "daddr"}}, src), ACCEPT),
        rule("t", "c", match(meta("iifname"), "up0", "!="), ACCEPT),
        uplink_addresses={"up0": ["198.51.100.2/24"]},
    )
    verdict, reason = result["reply"]
    assert verdict == "unknown"
    assert reason is not None and "nat core" in reason
