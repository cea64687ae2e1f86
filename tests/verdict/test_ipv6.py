"""IPv6 as NetworkManager serves it: router/neighbour discovery flows, and DHCPv6/DNS over IPv6
deciding only where the hotspot serves them."""

from __future__ import annotations

from typing import Any

import pytest

from hotspotguard.ruleset import SnapshotError, load_snapshot, parse_ruleset
from hotspotguard.verdict import HotspotVerdict, evaluate
from hotspotguard.verdict.flows import solicited_node
from hotspotguard.verdict.report import explain_text, verdict_json
from tests.helpers import ACCEPT, DROP, chain, document, match, nft_doc, payload, rule, table
from tests.verdict.test_engine import nm_shared

V6 = ("2001:db8:42::1/64", "fe80::1/64")


def verdict_of(doc: dict[str, Any]) -> HotspotVerdict:
    snapshot = load_snapshot(doc)
    (hotspot,) = evaluate(snapshot, parse_ruleset(snapshot)).hotspots
    return hotspot


def doc6(*rules: dict[str, Any], services: list[str] | None = None, **kw: Any) -> dict[str, Any]:
    doc = document(nft_doc(*nm_shared(), *rules), ipv6=V6, **kw)
    if services is not None:
        doc["hotspots"][0]["ipv6_services"] = services
    return doc


def inet_chain(name: str, hook: str, prio: int = 0, policy: str = "accept") -> list[Any]:
    return [table("t", "inet"), chain("t", name, hook, prio=prio, policy=policy, family="inet")]


def inet_rule(name: str, *expr: dict[str, Any]) -> dict[str, Any]:
    return rule("t", name, *expr, family="inet")


def icmpv6_type(name: Any, op: str = "==") -> dict[str, Any]:
    return match(payload("icmpv6", "type"), name, op)


DHCP6_DROP = (
    *inet_chain("in", "input"),
    inet_rule("in", match(payload("udp", "dport"), 547), DROP),
)


def test_dhcpv6_dropped_but_not_served_is_informative() -> None:
    result = verdict_of(doc6(*DHCP6_DROP, services=["ra"]))
    assert result.flows["dhcp6"].verdict == "drop"
    assert not result.flows["dhcp6"].flow.required
    assert result.verdict == "ok"
    assert verdict_json(result)["flows"]["dhcp6"]["informative"] is True
    services = verdict_json(result)["ipv6_services"]
    assert services["served"] == ["ra"] and services["source"] == "snapshot"
    assert services["text"].startswith("IPv6: hs0 serves router advertisements (SLAAC)")


def test_dhcpv6_dropped_and_served_blocks() -> None:
    result = verdict_of(doc6(*DHCP6_DROP, services=["ra", "dhcp6", "dns6"]))
    assert result.verdict == "blocked"
    assert result.blocked_flow == "dhcp6"


def test_an_old_snapshot_assumes_networkmanagers_sharing_and_says_so() -> None:
    result = verdict_of(doc6(*DHCP6_DROP))
    assert result.verdict == "ok"
    assert result.ipv6_services == frozenset({"ra"})
    assert verdict_json(result)["ipv6_services"]["source"] == "assumed"
    text = explain_text(evaluate_report(doc6(*DHCP6_DROP)))
    assert "serves router advertisements (SLAAC); not DHCPv6, not DNS over IPv6" in text
    assert "assumed" in text


def evaluate_report(doc: dict[str, Any]) -> Any:
    snapshot = load_snapshot(doc)
    return evaluate(snapshot, parse_ruleset(snapshot))


def test_unknown_service_names_are_refused() -> None:
    with pytest.raises(SnapshotError, match="unknown service 'radvd'"):
        load_snapshot(doc6(services=["radvd"]))


@pytest.mark.parametrize(
    ("hook", "icmp", "flow"),
    [
        ("input", "nd-router-solicit", "rs6"),
        ("output", "nd-router-advert", "ra6"),
        ("input", "nd-neighbor-solicit", "ns6_in"),
        ("output", "nd-neighbor-advert", "na6_out"),
        ("output", "nd-neighbor-solicit", "ns6_out"),
        ("input", "nd-neighbor-advert", "na6_in"),
        ("input", "133", "rs6"),  # ip6tables-save writes numbers
    ],
)
def test_a_chain_dropping_discovery_blocks(hook: str, icmp: str, flow: str) -> None:
    result = verdict_of(doc6(*inet_chain("c", hook), inet_rule("c", icmpv6_type(icmp), DROP)))
    assert result.flows[flow].verdict == "drop"
    assert result.verdict == "blocked"
    assert result.blocked_flow == flow
    others = [f for f in ("rs6", "ra6", "ns6_in", "na6_out", "ns6_out", "na6_in") if f != flow]
    assert all(result.flows[f].verdict == "accept" for f in others if f[2:] != flow[2:])


def test_an_input_drop_policy_with_hop_limit_255_accepted() -> None:
    hl = match(payload("ip6", "hoplimit"), 255)
    rules = (
        *inet_chain("in", "input", policy="drop"),
        inet_rule(
            "in", icmpv6_type({"set": ["nd-neighbor-solicit", "nd-neighbor-advert"]}), hl, ACCEPT
        ),
    )
    result = verdict_of(doc6(*rules))
    assert result.flows["ns6_in"].verdict == "accept"
    assert result.flows["na6_in"].verdict == "accept"
    assert result.flows["rs6"].verdict == "drop"
    assert result.verdict == "blocked"


def test_discovery_is_untracked_after_conntrack_invalid_before() -> None:
    ct_state = {"ct": {"key": "state"}}
    invalid_after = (
        *inet_chain("in", "input"),
        inet_rule("in", match(ct_state, "invalid"), DROP),
    )
    assert verdict_of(doc6(*invalid_after)).flows["rs6"].verdict == "accept"
    untracked = (*inet_chain("in", "input"), inet_rule("in", match(ct_state, "untracked"), DROP))
    assert verdict_of(doc6(*untracked)).flows["rs6"].verdict == "drop"
    raw_invalid = (
        *inet_chain("raw", "prerouting", prio=-300),
        inet_rule("raw", match(ct_state, "invalid"), DROP),
    )
    assert verdict_of(doc6(*raw_invalid)).flows["rs6"].verdict == "drop"


def test_icmpv6_type_ranges_by_name() -> None:
    rules = (
        *inet_chain("in", "input"),
        inet_rule("in", icmpv6_type("nd-router-advert", ">"), DROP),
    )
    result = verdict_of(doc6(*rules))
    assert result.flows["rs6"].verdict == "accept"  # 133
    assert result.flows["ns6_in"].verdict == "drop"  # 135


def test_addresses_of_discovery() -> None:
    result = verdict_of(doc6())
    ra = result.flows["ra6"].flow.packet
    assert str(ra.saddr) == "fe80::1" and str(ra.daddr) == "ff02::1" and ra.hoplimit == 255
    ns = result.flows["ns6_out"].flow.packet
    assert ns.daddr == solicited_node(result.flows["na6_in"].flow.packet.saddr)  # type: ignore[arg-type]
    assert str(ns.daddr) == "ff02::1:ff00:10"
    assert result.flows["ra6"].flow.out_device == "hs0"


# --- ARP: judged only where an arp table filters ----------------------------------------------


def arp_doc(*rules: dict[str, Any], policy: str = "accept") -> dict[str, Any]:
    items = [
        table("a", "arp"),
        chain("a", "in", "input", policy=policy, family="arp"),
        chain("a", "out", "output", family="arp"),
    ]
    return document(nft_doc(*nm_shared(), *items, *rules))


def arp_rule(chain_name: str, *expr: dict[str, Any]) -> dict[str, Any]:
    return rule("a", chain_name, *expr, family="arp")


def test_no_arp_flows_without_an_arp_table() -> None:
    assert "arp_in" not in verdict_of(document(nft_doc(*nm_shared()))).flows


def test_an_arp_input_drop_policy_blocks() -> None:
    result = verdict_of(arp_doc(policy="drop"))
    assert result.flows["arp_in"].verdict == "drop"
    assert result.flows["arp_out"].verdict == "accept"
    assert result.blocked_flow == "arp_in"


def test_arp_fields_decide() -> None:
    request = match(payload("arp", "operation"), "request")
    gateway = match(payload("arp", "daddr ip"), "10.42.0.1")
    result = verdict_of(arp_doc(arp_rule("in", request, gateway, ACCEPT), policy="drop"))
    assert result.flows["arp_in"].verdict == "accept"
    reply_drop = arp_rule("out", match(payload("arp", "operation"), "reply"), DROP)
    result = verdict_of(arp_doc(reply_drop))
    assert result.flows["arp_out"].verdict == "drop"
    assert result.flows["arp_in"].verdict == "accept"
    # a rule on an IP header field never matches an ARP packet
    result = verdict_of(arp_doc(arp_rule("in", match(payload("ip", "saddr"), "10.42.0.10"), DROP)))
    assert result.flows["arp_in"].verdict == "accept"


def test_transport_header_of_icmpv6_is_type_and_code() -> None:
    th_sport = match(payload("th", "sport"), 133 << 8)
    result = verdict_of(doc6(*inet_chain("in", "input"), inet_rule("in", th_sport, DROP)))
    assert result.flows["rs6"].verdict == "drop"
    assert result.flows["ns6_in"].verdict == "accept"
    th_dport = match(payload("th", "dport"), 547)  # the checksum: not known
    result = verdict_of(doc6(*inet_chain("in", "input"), inet_rule("in", th_dport, DROP)))
    assert result.flows["rs6"].verdict == "unknown"
