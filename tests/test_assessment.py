"""The rule of the whole fixes issue, walked over the registry: every strategy `explain`,
`status --json`, the status window and the fix dialog offer can be planned on this host, and
every one that cannot comes with the planner's one-line reason — never a bare name.

Pure: snapshots of real layouts (the NetworkManager lab's Docker capture, ufw's and Docker's
rules as iptables-legacy texts, hand-written nft tables), each with the host facts a machine
could have (Docker 20.10 or 28, none, ufw or not, or a snapshot explained elsewhere)."""

from __future__ import annotations

import json
from typing import Any

import pytest

from hotspotguard.assessment import explain_text, hotspot_json, report_remedies
from hotspotguard.fixes import STRATEGIES
from hotspotguard.fixes.plan import HostFacts, NetnsFacts
from hotspotguard.fixes.strategies import PLANNERS, FixUnavailable, verified_plan
from hotspotguard.ruleset import Snapshot, load_snapshot, parse_ruleset
from hotspotguard.verdict import evaluate
from tests.fixes.test_firewalld import DATA as FIREWALLD
from tests.fixes.test_firewalld import facts as firewalld_facts
from tests.helpers import (
    DROP,
    NM_LAB,
    chain,
    document,
    match,
    meta,
    nm_lab,
    payload,
    rule,
    table,
)
from tests.kernel.scenarios.model import ruleset as scenario

HS, UP = "nmp-hs0", "nmp-up0"  # the NetworkManager lab's: its masquerade shares HS


def _nm(*items: dict[str, Any], **extra: Any) -> dict[str, Any]:
    """The NetworkManager lab's capture sharing HS, with `items` added to its ruleset."""
    nft = nm_lab("nft-1-nm-only.json")
    nft = {"nftables": [*nft["nftables"], *items]}
    return document(nft, iface=HS, uplinks=(UP,), **extra)


def _docker() -> dict[str, Any]:
    return document(
        nm_lab("nft-3-docker-full.json"),
        iface=HS,
        uplinks=(UP,),
        iptables_nft_save=(NM_LAB / "iptables-save-docker-full.txt").read_text(),
    )


def _migrated_docker() -> dict[str, Any]:
    """Docker 29's nftables table beside the FORWARD drop its iptables backend left."""
    return _nm(
        table("docker-bridges"),
        chain("docker-bridges", "filter-FORWARD", "forward", policy="accept"),
        iptables_legacy_save=scenario("docker28.rules"),
    )


def _ufw() -> dict[str, Any]:
    return _nm(
        iptables_legacy_save=scenario("ufw.rules"),
        ip6tables_legacy_save=scenario("ufw.v6.rules"),
    )


def _dropping(hook: str, handle: int, *expr: dict[str, Any]) -> list[dict[str, Any]]:
    """A hand-written inet filter chain on `hook` whose rule `expr` drops."""
    dropping = rule("filter", hook, *expr, DROP, family="inet")
    dropping["rule"]["handle"] = handle
    return [chain("filter", hook, hook, family="inet"), dropping]


FORWARD_DROP = _dropping("forward", 90, match(meta("iifname"), HS))
INPUT_DROP = _dropping("input", 91, match(payload("udp", "dport"), 67))

LAYOUTS = {
    "docker": _docker,
    "docker-migrated": _migrated_docker,
    "ufw": _ufw,
    "nft-forward": lambda: _nm(table("filter", "inet"), *FORWARD_DROP),
    "nft-input": lambda: _nm(table("filter", "inet"), *INPUT_DROP),
    "nft-both": lambda: _nm(table("filter", "inet"), *FORWARD_DROP, *INPUT_DROP),
    "forwarding-off": lambda: {**_nm(), "sysctl": {"net.ipv4.ip_forward": "0"}},
    "firewalld": lambda: json.loads(FIREWALLD.read_text()),  # a real firewalld's, hs0 in public
}
NETNS = NetnsFacts(  # what docker-netns finds on a systemd host with Docker's bridge up
    networks=("10.42.0.0/24", "198.51.100.0/24"),
    docker0="bridge",
    dockerd="/usr/sbin/dockerd",
    tools=(("ip", "/usr/sbin/ip"), ("nsenter", "/usr/bin/nsenter"),
           ("sysctl", "/usr/sbin/sysctl"), ("nft", "/usr/sbin/nft")),
    dropin_path="/etc/systemd/system/docker.service.d/60-hotspotguard-netns.conf",
    systemd=True,
)  # fmt: skip
FACTS = {
    "bare": HostFacts(),
    "docker-20.10-netns": HostFacts(version="20.10.24+dfsg1", netns=NETNS),
    "docker-20.10-ufw": HostFacts(version="20.10.24+dfsg1", ufw=True),
    "docker-28": HostFacts(version="28.0.1", daemon_json='{\n  "debug": true\n}\n'),
    "docker-28-bad-json": HostFacts(version="28.0.1", daemon_json="{ not json"),
    "snapshot": HostFacts(checked=False),
    "firewalld": firewalld_facts(),
}


def _offers(layout: str, facts: HostFacts) -> tuple[Snapshot, list[dict[str, Any]]]:
    snapshot = load_snapshot(LAYOUTS[layout]())
    ruleset = parse_ruleset(snapshot)
    report = evaluate(snapshot, ruleset)
    offered = report_remedies(snapshot, ruleset, report, facts)
    return snapshot, [hotspot_json(v, offered[v.hotspot.iface]) for v in report.hotspots]


@pytest.mark.parametrize("facts_name", sorted(FACTS))
@pytest.mark.parametrize("layout", sorted(LAYOUTS))
def test_every_offered_fix_can_be_planned_and_every_other_says_why(
    layout: str, facts_name: str
) -> None:
    facts = FACTS[facts_name]
    snapshot, hotspots = _offers(layout, facts)
    ruleset = parse_ruleset(snapshot)
    for hotspot in hotspots:
        assert hotspot["verdict"] == "blocked", hotspot["summary"]
        remedies = hotspot["remedies"]
        assert remedies, f"{layout}: a blocked hotspot with no remedy considered"
        for remedy in remedies:
            assert remedy["strategy"] in PLANNERS, f"{remedy['strategy']} has no planner"
            assert remedy["description"] == STRATEGIES[remedy["strategy"]]
            if remedy["available"]:
                assert remedy["reason"] is None
                plan, verification = verified_plan(
                    snapshot, ruleset, hotspot["iface"], remedy["strategy"], facts
                )
                assert verification.works and plan.strategy == remedy["strategy"]
            else:
                reason = remedy["reason"]
                assert isinstance(reason, str) and reason and "\n" not in reason
                with pytest.raises(FixUnavailable):
                    verified_plan(snapshot, ruleset, hotspot["iface"], remedy["strategy"], facts)
        assert hotspot["fixes"] == [r["strategy"] for r in remedies if r["available"]]


def test_the_walk_covers_every_strategy_in_the_registry() -> None:
    """Each strategy is considered somewhere, and each is available somewhere: the walk
    above is not vacuous for any of them."""
    considered: set[str] = set()
    available: set[str] = set()
    for layout in LAYOUTS:
        for facts in FACTS.values():
            for hotspot in _offers(layout, facts)[1]:
                considered |= {r["strategy"] for r in hotspot["remedies"]}
                available |= set(hotspot["fixes"])
    walked = {
        "docker-user",
        "sysctl-forwarding",
        "docker-no-drop",
        "docker-stale-drop",
        "ufw-route",
        "forward-allow",
        "input-allow",
        "combined",
        "docker-netns",
        "firewalld-zone",
    }
    assert walked <= considered and walked <= available  # a new strategy adds its layout here


def test_reasons_in_words() -> None:
    _, (docker,) = _offers("docker", FACTS["docker-20.10-ufw"])
    why = {r["strategy"]: r["reason"] for r in docker["remedies"] if not r["available"]}
    assert why["docker-no-drop"] == (
        "Docker 20.10.24+dfsg1 is older than 28: the ip-forward-no-drop option does not exist"
    )
    assert "no docker-bridges table" in why["docker-stale-drop"]
    assert docker["fixes"] == ["docker-user", "forward-allow"]
    _, (docker,) = _offers("docker", FACTS["docker-28-bad-json"])
    why = {r["strategy"]: r["reason"] for r in docker["remedies"] if not r["available"]}
    assert why["docker-no-drop"].startswith("/etc/docker/daemon.json is not valid JSON")
    _, (ufw,) = _offers("ufw", FACTS["bare"])
    why = {r["strategy"]: r["reason"] for r in ufw["remedies"] if not r["available"]}
    assert why["ufw-route"] == "ufw is not installed here (no /usr/sbin/ufw)"
    assert ufw["fixes"] == ["combined"]
    _, (ufw,) = _offers("ufw", FACTS["snapshot"])
    assert "not in the snapshot" in ufw["remedies"][0]["reason"]


def test_explain_names_no_strategy_bare() -> None:
    snapshot = load_snapshot(_docker())
    ruleset = parse_ruleset(snapshot)
    report = evaluate(snapshot, ruleset)
    offered = report_remedies(snapshot, ruleset, report, FACTS["docker-20.10-ufw"])
    lines = explain_text(report, offered, trace=False).splitlines()
    assert lines[2:] == [
        "  fixes: docker-user (accept the hotspot's traffic in Docker's DOCKER-USER chain), "
        "forward-allow (accept the hotspot's forwarded traffic before the rule that drops it)",
        "    not here: docker-stale-drop: Docker does not run its nftables backend here (no "
        "docker-bridges table): its iptables rules are live, not stale",
        "    not here: docker-no-drop: Docker 20.10.24+dfsg1 is older than 28: the "
        "ip-forward-no-drop option does not exist",
        "    not here: docker-netns: Docker is not installed here (no dockerd)",
    ]


def test_the_watchers_memo_plans_again_only_when_what_it_plans_from_changed() -> None:
    """A change off the hotspot's paths (another table's churn) reuses the remedies; a
    change on a path, or in the host's facts, plans them again."""
    from hotspotguard.assessment import RemedyMemo

    memo = RemedyMemo()

    def remedies(doc: dict[str, Any], facts: HostFacts) -> tuple[Any, ...]:
        snapshot = load_snapshot(doc)
        ruleset = parse_ruleset(snapshot)
        (verdict,) = evaluate(snapshot, ruleset).hotspots
        return memo.remedies(snapshot, ruleset, verdict, facts)

    facts = FACTS["docker-20.10-ufw"]
    first = remedies(_docker(), facts)
    assert remedies(_docker(), facts) is first
    churn = _docker()
    churn["nft"]["nftables"] += [table("custom", "inet"), chain("custom", "idle", family="inet")]
    assert remedies(churn, facts) is first  # not on any path of the hotspot's packets
    assert remedies(_docker(), FACTS["docker-28"]) != first  # docker-no-drop now available
    on_path = _docker()
    accept = rule("nm-shared-nmp-hs0", "filter_forward", match(meta("iifname"), "lan9"), DROP)
    on_path["nft"]["nftables"].append(accept)
    again = remedies(on_path, facts)
    assert again is not first and again == first  # planned again: the same answer here
