"""`firewalld-zone` planned on a real firewalld's ruleset (Debian 12's firewalld 1.3, nftables
backend, `hs0` in `public`: tests/data/firewalld-public-hs0.json, captured in
tests/firewalldlab.py) with firewalld's zone settings as its D-Bus API gave them.  Pure."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import pytest

from hotspotguard.fixes import candidate_fixes
from hotspotguard.fixes.firewalld import FirewalldFacts, ZoneFacts, firewalld_table, with_zone
from hotspotguard.fixes.plan import HostFacts, ZoneChange, change_from_json
from hotspotguard.fixes.strategies import (
    FixUnavailable,
    apply_in_memory,
    candidates,
    verified_plan,
    verify_current,
)
from hotspotguard.ruleset import load_snapshot, parse_ruleset
from hotspotguard.ruleset.model import Verdict
from hotspotguard.ruleset.snapshot import Snapshot

DATA = Path(__file__).parent.parent / "data" / "firewalld-public-hs0.json"
NM_SHARED = ZoneFacts(
    "nm-shared",
    "ACCEPT",
    (("67", "udp"), ("53", "tcp"), ("53", "udp"), ("22", "tcp")),
    ("icmp", "ipv6-icmp"),
    ('rule priority="32767" reject',),
)
TRUSTED = ZoneFacts("trusted", "ACCEPT")
ZONES = ("block", "dmz", "drop", "external", "home", "internal", "nm-shared", "public", "trusted")


def facts(*targets: ZoneFacts) -> HostFacts:
    firewalld = FirewalldFacts(
        ZONES, "public", (("hs0", "public"),), (("hs0", ""),), targets or (NM_SHARED, TRUSTED)
    )
    return HostFacts(firewalld=firewalld)


def capture(**changes: object) -> Snapshot:
    doc = json.loads(DATA.read_text())
    doc["hotspots"][0].update(changes)
    return load_snapshot(doc)


def test_firewalld_is_the_culprit_and_its_zone_the_first_remedy() -> None:
    snapshot = capture()
    verdict = verify_current(snapshot, parse_ruleset(snapshot), "hs0")
    assert verdict.verdict == "blocked"
    assert verdict.blocked_by is not None and verdict.blocked_by.owner == "firewalld"
    assert candidate_fixes("firewalld", "outbound")[0] == "firewalld-zone"


def test_nm_shared_where_it_lets_through_all_the_hotspot_serves() -> None:
    snapshot = capture(ipv6_services=[])  # NetworkManager's own sharing: no DHCPv6
    ruleset = parse_ruleset(snapshot)
    plan, verification = verified_plan(snapshot, ruleset, "hs0", "firewalld-zone", facts())
    (change,) = plan.changes
    assert isinstance(change, ZoneChange) and change.zone == "nm-shared"
    assert (change.previous_runtime, change.previous_permanent) == ("public", "")
    assert verification.before.verdict == "blocked" and verification.after.verdict == "ok"
    assert plan.preview() == [
        "firewalld (D-Bus): zone.changeZoneOfInterface(nm-shared, hs0) (now in public)",
        "firewalld (D-Bus): config.zone nm-shared addInterface(hs0) (permanent; now none)",
    ]


def test_trusted_where_nm_shared_would_leave_dhcpv6_out_and_why() -> None:
    snapshot = capture()  # the lab's dnsmasq serves DHCPv6; nm-shared does not let it in
    plan, verification = verified_plan(
        snapshot, parse_ruleset(snapshot), "hs0", "firewalld-zone", facts()
    )
    (change,) = plan.changes
    assert isinstance(change, ZoneChange) and change.zone == "trusted"
    assert "(nm-shared would not be enough: after it, blocked:" in plan.summary
    assert verification.after.flows["dhcp6"].verdict == "accept"


def test_the_model_of_a_zone_follows_its_settings() -> None:
    """nm-shared with the user's dhcpv6 service (port 547) is enough; one that rejects
    everything (target REJECT, no services) is not, and no strategy is then claimed."""
    snapshot = capture()
    ruleset = parse_ruleset(snapshot)
    with_dhcpv6 = replace(NM_SHARED, ports=(*NM_SHARED.ports, ("547", "udp")))
    plan, _ = verified_plan(snapshot, ruleset, "hs0", "firewalld-zone", facts(with_dhcpv6))
    assert isinstance(plan.changes[0], ZoneChange) and plan.changes[0].zone == "nm-shared"
    closed = ZoneFacts("nm-shared", "REJECT")
    with pytest.raises(FixUnavailable, match="no zone of firewalld's is enough"):
        verified_plan(snapshot, ruleset, "hs0", "firewalld-zone", facts(closed))


def test_the_dispatch_moves_and_the_zone_chains_are_modelled() -> None:
    snapshot = capture()
    ruleset = parse_ruleset(snapshot)
    change = ZoneChange("hs0", "trusted", "public", "", "public", settings=TRUSTED)
    table = firewalld_table(with_zone(ruleset, change))
    assert table is not None
    zones = table.chain("filter_INPUT_ZONES")
    assert zones is not None
    assert zones.rules[0].text == 'iifname "hs0" goto filter_IN_trusted'
    assert len(zones.rules) == 2  # the interface's rule replaced, the catch-all kept
    post = table.chain("nat_POSTROUTING_ZONES")
    assert post is not None and post.rules[0].text == 'oifname "hs0" goto nat_POST_trusted'
    assert table.chain("filter_IN_trusted") is not None
    assert table.chain("filter_FWD_trusted") is not None
    assert firewalld_table(ruleset) is not table  # the ruleset itself is untouched


def test_an_interface_of_no_zone_gets_its_own_dispatch_before_the_catch_all() -> None:
    snapshot = capture()
    ruleset = parse_ruleset(snapshot)
    moved = with_zone(ruleset, ZoneChange("hs0", "public", "", "", "public", settings=None))
    change = ZoneChange("other0", "trusted", "", "", "public", settings=TRUSTED)
    table = firewalld_table(with_zone(moved, change))
    assert table is not None
    zones = table.chain("filter_FORWARD_ZONES")
    assert zones is not None
    texts = [r.text for r in zones.rules]
    assert texts.index('iifname "other0" goto filter_FWD_trusted') < len(texts) - 1
    assert zones.rules[-1].exprs == (Verdict("goto", "filter_FWD_public"),)  # the catch-all


def test_not_running_or_not_loaded() -> None:
    snapshot = capture()
    ruleset = parse_ruleset(snapshot)
    with pytest.raises(FixUnavailable, match="firewalld is not running"):
        verified_plan(snapshot, ruleset, "hs0", "firewalld-zone", HostFacts())
    offered = candidates(snapshot, ruleset, "hs0", HostFacts())
    assert offered[0].strategy == "firewalld-zone" and not offered[0].works
    assert offered[0].reason is not None and "firewalld is not running" in offered[0].reason
    bare = replace(ruleset, tables=tuple(t for t in ruleset.tables if t.name != "firewalld"))
    with pytest.raises(FixUnavailable, match="not loaded"):
        verified_plan(snapshot, bare, "hs0", "firewalld-zone", facts())


def test_zone_change_round_trip_and_in_memory() -> None:
    change = ZoneChange("hs0", "nm-shared", "public", "home", "public", False,
                        (("nm-shared", None), ("home", "<zone/>")))  # fmt: skip
    assert change_from_json(change.to_json()) == change
    snapshot = capture(ipv6_services=[])
    plan, _ = verified_plan(snapshot, parse_ruleset(snapshot), "hs0", "firewalld-zone", facts())
    after = apply_in_memory(snapshot, parse_ruleset(snapshot), plan)
    assert after[0] is not snapshot or after[1] is not None
