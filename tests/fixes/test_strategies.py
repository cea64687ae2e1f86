"""Fix plans from real captures, verified by the engine (pure: nothing touches the machine)."""

from __future__ import annotations

import pytest

from hotspotguard.fixes import STRATEGIES, candidate_fixes, remedies
from hotspotguard.fixes.plan import (
    ChainInsert,
    RuleChange,
    SysctlChange,
    change_from_json,
    rule_tag,
    tag,
)
from hotspotguard.fixes.strategies import (
    PLANNERS,
    FixUnavailable,
    apply_in_memory,
    candidates,
    plan_fix,
    preferred_strategy,
    recommended,
    verified_plan,
    verify_current,
)
from hotspotguard.ruleset import load_snapshot, parse_ruleset
from hotspotguard.ruleset.owners import OWNER_NAMES
from hotspotguard.ruleset.snapshot import Snapshot
from hotspotguard.verdict.flows import FLOW_ORDER
from tests.helpers import NM_LAB, document, nm_lab


def docker_capture(**overrides: object) -> Snapshot:
    """The NetworkManager lab's capture with Docker's rules (Docker 20.10, iptables-nft)."""
    doc = document(
        nm_lab("nft-3-docker-full.json"),
        iface="nmp-hs0",
        uplinks=("nmp-up0",),
        iptables_nft_save=(NM_LAB / "iptables-save-docker-full.txt").read_text(),
    )
    doc.update(overrides)
    return load_snapshot(doc)


def test_docker_user_plan_accepts_only_the_hotspot_to_the_uplink_and_its_replies() -> None:
    snapshot = docker_capture()
    ruleset = parse_ruleset(snapshot)
    plan, verification = verified_plan(snapshot, ruleset, "nmp-hs0", "docker-user")
    assert plan.fix_id == "docker-user@nmp-hs0"
    (change,) = plan.changes
    assert isinstance(change, RuleChange)
    assert (change.variant, change.family, change.table, change.chain) == (
        "nft",
        4,
        "filter",
        "DOCKER-USER",
    )
    comment = f'-m comment --comment "{tag(plan.fix_id)}"'
    assert change.rules == (
        f"-s 10.42.0.0/24 -i nmp-hs0 -o nmp-up0 {comment} -j ACCEPT",
        "-d 10.42.0.0/24 -i nmp-up0 -o nmp-hs0 -m conntrack --ctstate RELATED,ESTABLISHED "
        f"{comment} -j ACCEPT",
    )
    assert verification.before.verdict == "blocked"
    assert verification.after.verdict == "ok"
    assert plan.preview()[0].startswith("iptables-nft -t filter -I DOCKER-USER 1 -s 10.42.0.0/24")


def test_the_plan_in_memory_leaves_the_snapshot_and_ruleset_untouched() -> None:
    snapshot = docker_capture()
    ruleset = parse_ruleset(snapshot)
    plan = plan_fix(snapshot, ruleset, "nmp-hs0", "docker-user")
    _, changed = apply_in_memory(snapshot, ruleset, plan)
    user = ruleset.table("ip", "filter")
    assert user is not None
    assert len(user.chain_index["DOCKER-USER"].rules) == 0  # Docker 28 leaves it empty
    after = changed.table("ip", "filter")
    assert after is not None
    assert len(after.chain_index["DOCKER-USER"].rules) == 2
    assert after.chain_index["DOCKER-USER"].rules[0].comment == tag(plan.fix_id)


def test_docker_user_is_recommended_for_dockers_forward_drop() -> None:
    snapshot = docker_capture()
    verdict = verify_current(snapshot, parse_ruleset(snapshot), "nmp-hs0")
    assert preferred_strategy(verdict) == "docker-user"
    assert remedies(verdict) == (
        "docker-user",
        "docker-stale-drop",
        "forward-allow",
        "docker-no-drop",
        "docker-netns",
    )


def test_no_docker_user_chain_no_plan() -> None:
    snapshot = load_snapshot(
        document(nm_lab("nft-1-nm-only.json"), iface="nmp-hs0", uplinks=("nmp-up0",))
    )
    with pytest.raises(FixUnavailable, match="DOCKER-USER chain is not there"):
        plan_fix(snapshot, parse_ruleset(snapshot), "nmp-hs0", "docker-user")


def test_no_uplink_no_plan() -> None:
    snapshot = docker_capture(uplinks=[])
    with pytest.raises(FixUnavailable, match="no uplink"):
        plan_fix(snapshot, parse_ruleset(snapshot), "nmp-hs0", "docker-user")


def test_not_a_hotspot() -> None:
    snapshot = docker_capture()
    with pytest.raises(FixUnavailable, match="not a hotspot"):
        plan_fix(snapshot, parse_ruleset(snapshot), "eth9", "docker-user")


def test_a_plan_that_would_not_be_enough_is_not_offered() -> None:
    # forwarding off as well: the DOCKER-USER rules alone leave the hotspot blocked
    snapshot = docker_capture(
        sysctl={"net.ipv4.ip_forward": "0", "net.ipv6.conf.all.forwarding": "0"}
    )
    with pytest.raises(FixUnavailable, match="would not be enough: after it, blocked"):
        verified_plan(snapshot, parse_ruleset(snapshot), "nmp-hs0", "docker-user")


def test_sysctl_forwarding_plan() -> None:
    snapshot = load_snapshot(
        document(
            nm_lab("nft-1-nm-only.json"), iface="nmp-hs0", uplinks=("nmp-up0",), forwarding="0"
        )
    )
    ruleset = parse_ruleset(snapshot)
    assert preferred_strategy(verify_current(snapshot, ruleset, "nmp-hs0")) == "sysctl-forwarding"
    plan, verification = verified_plan(snapshot, ruleset, "nmp-hs0", "sysctl-forwarding")
    assert plan.changes == (SysctlChange("net.ipv4.ip_forward", "1", "0"),)
    assert verification.after.verdict == "ok"


def test_sysctl_forwarding_when_already_on() -> None:
    snapshot = docker_capture()
    with pytest.raises(FixUnavailable, match="already on"):
        plan_fix(snapshot, parse_ruleset(snapshot), "nmp-hs0", "sysctl-forwarding")


@pytest.mark.parametrize("strategy", ["docker-netns", "masquerade", "nonsense"])
def test_strategies_not_built_or_unknown(strategy: str) -> None:
    snapshot = docker_capture()
    with pytest.raises(FixUnavailable):
        plan_fix(snapshot, parse_ruleset(snapshot), "nmp-hs0", strategy)


def test_plan_json_round_trip() -> None:
    snapshot = docker_capture()
    plan = plan_fix(snapshot, parse_ruleset(snapshot), "nmp-hs0", "docker-user")
    doc = plan.to_json()
    assert [change_from_json(c) for c in doc["changes"]] == list(plan.changes)
    sysctl = SysctlChange("net.ipv4.ip_forward", "1", "0")
    assert change_from_json(sysctl.to_json()) == sysctl


def test_rule_tag() -> None:
    line = '-A DOCKER-USER -s 10.42.0.0/24 -m comment --comment "hotspotguard:x@y" -j ACCEPT'
    assert rule_tag(line) == "hotspotguard:x@y"
    assert rule_tag('-A DOCKER-USER -m comment --comment "someone else" -j ACCEPT') is None
    assert rule_tag('-A X -m comment --comment "unbalanced hotspotguard:') is None


def test_every_strategy_offered_has_a_planner() -> None:
    """The rule of the whole issue: a name `explain`, `status` or the applet offers can be
    planned; nothing unbuilt is ever offered."""
    assert set(STRATEGIES) == set(PLANNERS)
    owners = {*OWNER_NAMES, "nat", "routing", "conntrack", "sysctl", "filter", "someone"}
    offered = {name for o in owners for f in FLOW_ORDER for name in candidate_fixes(o, f)}
    assert offered <= set(PLANNERS)
    assert {"docker-user", "forward-allow", "input-allow", "sysctl-forwarding"} <= offered


def test_candidates_least_privileged_first() -> None:
    snapshot = docker_capture()
    ruleset = parse_ruleset(snapshot)
    listed = candidates(snapshot, ruleset, "nmp-hs0")
    assert [(c.strategy, c.works) for c in listed] == [
        ("docker-user", True),
        ("docker-stale-drop", False),
        ("forward-allow", True),
        ("docker-no-drop", False),  # no Docker facts given: "not installed here"
        ("docker-netns", False),
    ]
    # one that cannot work here says why, in one line
    reason = listed[1].reason
    assert reason is not None and "no docker-bridges table" in reason and "\n" not in reason
    best = recommended(snapshot, ruleset, "nmp-hs0")
    assert best is not None and best.strategy == "docker-user"


def test_forward_allow_appends_before_dockers_policy_drop() -> None:
    snapshot = docker_capture()
    ruleset = parse_ruleset(snapshot)
    plan, verification = verified_plan(snapshot, ruleset, "nmp-hs0", "forward-allow")
    (change,) = plan.changes
    assert isinstance(change, ChainInsert)
    assert (change.tool, change.family, change.table, change.chain) == (
        "iptables-nft",
        "ip",
        "filter",
        "FORWARD",
    )
    assert change.before is None  # the policy drops: at the chain's end
    assert verification.before.verdict == "blocked" and verification.after.verdict == "ok"
    assert "another program's table (ip filter (Docker))" in plan.tradeoff
    assert all(rule_tag(rule) == plan.tag for rule in change.rules)
    assert change_from_json(change.to_json()) == change
    assert plan.preview()[0].startswith("iptables-nft -t filter -A FORWARD -s 10.42.0.0/24")


def test_daemon_json_merge_keeps_keys_order_and_indentation() -> None:
    from hotspotguard.fixes.docker import DockerUnavailable, merged_daemon_json, version_tuple

    text = '{\n\t"b": 1,\n\t"a": {"x": [1, 2]}\n}\n'
    merged = merged_daemon_json(text, "daemon.json")
    assert (
        merged == '{\n\t"b": 1,\n\t"a": {\n\t\t"x": [\n\t\t\t1,\n\t\t\t2\n\t\t]\n\t},\n'
        '\t"ip-forward-no-drop": true\n}\n'
    )
    assert merged_daemon_json(None, "d") == '{\n  "ip-forward-no-drop": true\n}\n'
    for bad in ("[1]", "{", '{"a": 1} x'):
        with pytest.raises(DockerUnavailable, match="d is not"):
            merged_daemon_json(bad, "d")
    assert version_tuple("20.10.24+dfsg1") == (20, 10, 24)
    assert version_tuple("28.0.1") == (28, 0, 1)
    assert version_tuple("29.0.0-rc.1") == (29, 0, 0)
