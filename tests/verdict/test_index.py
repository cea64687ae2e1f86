"""The rule index skips only rules that cannot match: results equal a walk of every rule."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from hotspotguard.ruleset import load_snapshot, parse_ruleset
from hotspotguard.verdict import evaluate, index
from tests.helpers import ACCEPT, DROP, chain, document, jump, match, meta, nft_doc, payload, rule

ADDRESSES = ["10.42.0.10", "203.0.113.10", "198.51.100.7", "10.42.0.1", "0.0.0.0"]
PREFIXES = [
    {"prefix": {"addr": "10.42.0.0", "len": 24}},
    {"prefix": {"addr": "203.0.0.0", "len": 8}},
]

MATCHES = st.one_of(
    st.builds(
        lambda n, op: match(meta("iifname"), n, op),
        st.sampled_from(["hs0", "up0", "eth0"]),
        st.sampled_from(["==", "!="]),
    ),
    st.builds(lambda n: match(meta("oifname"), n), st.sampled_from(["hs0", "up0", ""])),
    st.builds(
        lambda f, a: match(payload("ip", f), a),
        st.sampled_from(["saddr", "daddr"]),
        st.sampled_from(ADDRESSES + PREFIXES),
    ),
    st.builds(
        lambda p, f: match(payload(p, "dport"), f),
        st.sampled_from(["tcp", "udp", "th"]),
        st.sampled_from([53, 67, 443, 22, {"set": [53, 443]}]),
    ),
    st.builds(
        lambda s: match({"ct": {"key": "state"}}, s), st.sampled_from(["new", "established"])
    ),
)
VERDICTS = st.sampled_from([ACCEPT, DROP, {"return": None}, jump("sub"), {"counter": None}])


def ruleset_doc(rules: list[tuple[list[dict[str, Any]], dict[str, Any]]]) -> dict[str, Any]:
    items: list[dict[str, Any]] = [
        {"table": {"family": "ip", "name": "t"}},
        chain("t", "fw", "forward", policy="drop"),
        chain("t", "in", "input", policy="drop"),
        chain("t", "sub"),
        rule("t", "sub", match(payload("tcp", "dport"), 443), DROP),
    ]
    for position, (matches, verdict) in enumerate(rules):
        name = "fw" if position % 3 else "in"
        items.append(rule("t", name, *matches, verdict))
    return document(nft_doc(*items))


def outcome(doc: dict[str, Any]) -> dict[str, tuple[str, str | None]]:
    snapshot = load_snapshot(doc)
    (hotspot,) = evaluate(snapshot, parse_ruleset(snapshot)).hotspots
    return {
        name: (flow.verdict, flow.dropped_by.rule if flow.dropped_by else None)
        for name, flow in hotspot.flows.items()
    }


@settings(max_examples=60, deadline=None)
@given(
    st.lists(
        st.tuples(st.lists(MATCHES, min_size=1, max_size=3), VERDICTS), min_size=150, max_size=220
    )
)
def test_indexed_evaluation_equals_walking_every_rule(
    rules: list[tuple[list[dict[str, Any]], dict[str, Any]]],
) -> None:
    doc = ruleset_doc(rules)
    with_index = outcome(doc)
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(index, "MIN_RULES", 10**9)
        without_index = outcome(doc)
    assert with_index == without_index


def test_a_new_ruleset_reuses_the_indexes_of_the_chains_it_shares() -> None:
    from dataclasses import replace

    from hotspotguard.verdict import HookIndex

    rules = [([match(payload("ip", "saddr"), a)], ACCEPT) for a in ADDRESSES * 40]
    snapshot = load_snapshot(ruleset_doc(rules))
    old = parse_ruleset(snapshot)
    evaluate(snapshot, old)  # builds the index and the long chains' rule indexes
    (table,) = old.tables
    forward, incoming = table.chain("fw"), table.chain("in")
    assert forward is not None and incoming is not None
    changed = replace(incoming, rules=incoming.rules[1:])
    new = replace(old, tables=(replace(table, chains=(forward, changed, table.chains[2])),))
    new.derived.clear()
    before = HookIndex.of(old).rules
    built = before.get(forward), before.get(incoming)
    assert built[0] is not None
    reused = HookIndex.reusing(new, old)
    assert HookIndex.of(new) is reused
    assert reused.rules.get(forward) is built[0]  # kept, not built again
    assert reused.rules.get(changed) is not built[1]
    assert evaluate(snapshot, new).hotspots[0].flows.keys() == outcome(ruleset_doc(rules)).keys()
