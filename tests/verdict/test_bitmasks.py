"""Where a set element's type and the packet field's type can differ: every bitmask and masked
comparison is typed as the kernel compares it (the JSON is what nft 1.0.6 prints)."""

from __future__ import annotations

from typing import Any

import pytest

from hotspotguard.ruleset import load_snapshot, parse_ruleset
from hotspotguard.ruleset.iptables import parse_rule_line
from hotspotguard.ruleset.model import Masked, Match
from hotspotguard.verdict import evaluate
from tests.helpers import DROP, chain, document, match, meta, nft_doc, payload, rule, table
from tests.verdict.test_engine import nm_shared

TCP_FLAGS = payload("tcp", "flags")
CT_STATE = {"ct": {"key": "state"}}
CT_STATUS = {"ct": {"key": "status"}}


def forward_verdicts(*exprs: dict[str, Any]) -> dict[str, str]:
    """Flow verdicts with NM's table plus one forward rule `exprs` (a drop at priority -10)."""
    doc = document(
        nft_doc(
            *nm_shared(),
            table("t"),
            chain("t", "f", "forward", prio=-10),
            rule("t", "f", *exprs),
        )
    )
    snapshot = load_snapshot(doc)
    (hotspot,) = evaluate(snapshot, parse_ruleset(snapshot)).hotspots
    return {name: flow.verdict for name, flow in hotspot.flows.items()}


@pytest.mark.parametrize(
    ("left", "right", "op", "outbound", "reply"),
    [
        # a set of flag names: an exact lookup of the whole flags byte (SYN; SYN-ACK)
        (TCP_FLAGS, {"set": ["syn", "ack"]}, "==", "drop", "accept"),
        (TCP_FLAGS, {"set": [{"|": ["syn", "ack"]}]}, "==", "accept", "drop"),
        (TCP_FLAGS, {"set": ["syn", "ack"]}, "!=", "accept", "drop"),
        # `tcp flags syn,ack`: any of the bits
        (TCP_FLAGS, ["syn", "ack"], "in", "drop", "drop"),
        (TCP_FLAGS, "syn", "!=", "accept", "drop"),
        ({"&": [TCP_FLAGS, ["syn", "ack"]]}, "syn", "==", "drop", "accept"),
        ({"&": [TCP_FLAGS, {"|": ["syn", "ack"]}]}, {"set": ["syn"]}, "==", "drop", "accept"),
        # ct state as a bitmask
        ({"&": [CT_STATE, ["established", "related"]]}, 0, "!=", "accept", "drop"),
        ({"&": [CT_STATE, "new"]}, 0, "==", "accept", "drop"),
        # ct status: the NAT bits follow the flows' own NAT (NM masquerades the outbound)
        (CT_STATUS, "snat", "in", "accept", "drop"),
        (CT_STATUS, "dnat", "in", "accept", "accept"),
        ({"&": [CT_STATUS, ["snat", "dnat"]]}, 0, "!=", "accept", "drop"),
        # addresses under a non-contiguous mask (the client 10.42.0.10, the server 203.0.113.10)
        ({"&": [payload("ip", "saddr"), "255.0.255.0"]}, "10.0.0.0", "==", "drop", "accept"),
        ({"&": [payload("ip", "daddr"), "255.255.0.255"]}, "203.0.0.10", "==", "drop", "accept"),
    ],
)
def test_bitmask_and_masked_matches(
    left: dict[str, Any], right: Any, op: str, outbound: str, reply: str
) -> None:
    got = forward_verdicts(match(left, right, op), DROP)
    assert (got["outbound"], got["reply"]) == (outbound, reply)


def test_ct_status_bits_the_snapshot_cannot_hold_stay_unknown() -> None:
    got = forward_verdicts(match(CT_STATUS, "assured", "in"), DROP)
    assert got["reply"] == "unknown"
    got = forward_verdicts(match(CT_STATUS, {"set": ["snat", "dnat"]}), DROP)
    assert got["reply"] == "unknown"  # an exact lookup needs every bit


def test_marks_with_masks_in_sets() -> None:
    left = {"&": [meta("mark"), 3]}
    assert forward_verdicts(match(left, {"set": [0, 2]}), DROP)["outbound"] == "drop"
    assert forward_verdicts(match(left, {"set": [1, 2]}), DROP)["outbound"] == "accept"


def test_iptables_non_contiguous_address_mask() -> None:
    parsed = parse_rule_line("-A FORWARD -s 10.0.12.0/255.0.255.0 -j DROP", 4, frozenset())
    first = parsed.exprs[0]
    assert isinstance(first, Match) and isinstance(first.left, Masked)
    assert first.left.mask == 0xFF00FF00 and str(first.right) == "10.0.12.0"
    prefix = parse_rule_line("-A FORWARD -s 10.0.0.0/255.0.0.0 -j DROP", 4, frozenset())
    assert str(prefix.exprs[0].right) == "10.0.0.0/8"  # type: ignore[union-attr]


EXTHDR_HBH = {"exthdr": {"name": "hbh"}}


def test_ipv6_extension_headers_are_absent_from_plain_packets() -> None:
    doc = document(
        nft_doc(
            *nm_shared(),
            table("t", "inet"),
            chain("t", "f", "forward", family="inet", prio=-10),
            rule("t", "f", match(EXTHDR_HBH, True), DROP, family="inet"),
            rule(
                "t",
                "f",
                match({"exthdr": {"name": "frag", "field": "more-fragments"}}, 1),
                DROP,
                family="inet",
            ),
        ),
        ipv6=("2001:db8:42::1/64",),
    )
    snapshot = load_snapshot(doc)
    (hotspot,) = evaluate(snapshot, parse_ruleset(snapshot)).hotspots
    assert hotspot.flows["outbound6"].verdict == "accept"
    assert hotspot.flows["outbound"].verdict == "unknown"  # IPv4: exthdr reads no header


def test_meta_length_of_the_flows_syn() -> None:
    length = meta("length")
    assert forward_verdicts(match(length, 1000, ">"), DROP)["outbound"] == "accept"
    assert forward_verdicts(match(length, 200, "<"), DROP)["outbound"] == "drop"
    assert forward_verdicts(match(length, 60), DROP)["outbound"] == "unknown"


def test_statements_that_change_nothing_read_keep_the_rule_going() -> None:
    dscp = {"mangle": {"key": payload("ip", "dscp"), "value": "cs1"}}
    event = {"mangle": {"key": {"ct": {"key": "event"}}, "value": "new"}}
    priority = {"mangle": {"key": meta("priority"), "value": "1:2"}}
    for statement in (dscp, event, priority):
        assert forward_verdicts(statement, DROP)["outbound"] == "drop"


def test_a_header_statement_carries_nfts_hidden_dependency() -> None:
    """`ip6 dscp set cs1 drop` in an inet table drops IPv6 packets only."""
    dscp6 = {"mangle": {"key": payload("ip6", "dscp"), "value": "cs1"}}
    doc = document(
        nft_doc(
            *nm_shared(),
            table("t", "inet"),
            chain("t", "f", "forward", family="inet", prio=-10),
            rule("t", "f", dscp6, DROP, family="inet"),
        ),
        ipv6=("2001:db8:42::1/64",),
    )
    snapshot = load_snapshot(doc)
    (hotspot,) = evaluate(snapshot, parse_ruleset(snapshot)).hotspots
    assert hotspot.flows["outbound6"].verdict == "drop"
    assert hotspot.flows["outbound"].verdict == "accept"


def test_stateful_matches_are_typed_and_uncertain() -> None:
    from hotspotguard.ruleset.model import Stateful

    parsed = parse_rule_line(
        "-A FORWARD -m hashlimit --hashlimit-above 10/sec --hashlimit-name h -j DROP",
        4,
        frozenset(),
    )
    (stateful, _) = parsed.exprs
    assert isinstance(stateful, Stateful) and stateful.kind == "hashlimit"
    assert "--hashlimit-above 10/sec" in stateful.description
