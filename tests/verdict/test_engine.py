"""The engine's netfilter semantics, on small rulesets and on real captures."""

from __future__ import annotations

from typing import Any

from hotspotguard.ruleset import load_snapshot, parse_ruleset
from hotspotguard.verdict import HotspotVerdict, evaluate
from tests.helpers import (
    ACCEPT,
    DROP,
    NM_LAB,
    chain,
    document,
    goto,
    jump,
    match,
    meta,
    nft_doc,
    nm_lab,
    payload,
    rule,
    table,
)


def verdict_of(doc: dict[str, Any]) -> HotspotVerdict:
    snapshot = load_snapshot(doc)
    (hotspot,) = evaluate(snapshot, parse_ruleset(snapshot)).hotspots
    return hotspot


def flows(result: HotspotVerdict) -> dict[str, str]:
    return {name: flow.verdict for name, flow in result.flows.items()}


def nm_shared(iface: str = "hs0") -> list[dict[str, Any]]:
    """NetworkManager's shared table, as in the real capture."""
    name = f"nm-shared-{iface}"
    src = {"prefix": {"addr": "10.42.0.0", "len": 24}}
    return [
        table(name),
        chain(name, "nat_postrouting", "postrouting", prio=100, type="nat"),
        chain(name, "filter_forward", "forward", prio=0),
        rule(
            name,
            "nat_postrouting",
            match(payload("ip", "saddr"), src),
            match(payload("ip", "daddr"), src, "!="),
            {"masquerade": None},
        ),
        rule(
            name,
            "filter_forward",
            match(payload("ip", "daddr"), src),
            match(meta("oifname"), iface),
            match({"ct": {"key": "state"}}, {"set": ["established", "related"]}),
            ACCEPT,
        ),
        rule(
            name,
            "filter_forward",
            match(payload("ip", "saddr"), src),
            match(meta("iifname"), iface),
            ACCEPT,
        ),
        rule(name, "filter_forward", match(meta("iifname"), iface), {"reject": None}),
        rule(name, "filter_forward", match(meta("oifname"), iface), {"reject": None}),
    ]


def test_real_capture_nm_only_is_ok() -> None:
    result = verdict_of(
        document(nm_lab("nft-1-nm-only.json"), iface="nmp-hs0", uplinks=("nmp-up0",))
    )
    assert result.verdict == "ok"
    assert result.nm_backend == "nftables"
    assert result.flows["outbound"].nat == "masquerade"


def test_real_capture_docker_blocks_outbound_with_its_forward_policy() -> None:
    doc = document(
        nm_lab("nft-3-docker-full.json"),
        iface="nmp-hs0",
        uplinks=("nmp-up0",),
        iptables_nft_save=(NM_LAB / "iptables-save-docker-full.txt").read_text(),
    )
    result = verdict_of(doc)
    assert result.verdict == "blocked"
    assert flows(result) == {"dhcp": "accept", "dns": "accept", "outbound": "drop", "reply": "drop"}
    assert result.blocked_flow == "outbound"
    assert result.blocked_by is not None
    assert (result.blocked_by.owner, result.blocked_by.table, result.blocked_by.chain) == (
        "docker",
        "filter",
        "FORWARD",
    )
    assert result.blocked_by.rule == "policy drop"


def test_real_capture_docker_with_the_seed_fix_is_ok() -> None:
    doc = document(nm_lab("nft-3-docker-full-fixed.json"), iface="nmp-hs0", uplinks=("nmp-up0",))
    assert verdict_of(doc).verdict == "ok"


def test_accept_in_one_base_chain_does_not_save_from_a_drop_in_another() -> None:
    doc = document(
        nft_doc(
            *nm_shared(),
            table("other"),
            chain("other", "fw", "forward", prio=10, policy="drop"),
        )
    )
    result = verdict_of(doc)
    assert result.flows["outbound"].verdict == "drop"
    assert result.blocked_by is not None and result.blocked_by.table == "other"


def test_priority_order_decides_which_drop_is_named() -> None:
    doc = document(
        nft_doc(
            table("late"),
            chain("late", "fw", "forward", prio=10, policy="drop"),
            table("early"),
            chain("early", "fw", "forward", prio=-10, policy="drop"),
        )
    )
    assert verdict_of(doc).blocked_by.table == "early"  # type: ignore[union-attr]


def test_jump_returns_and_goto_does_not() -> None:
    base = [
        table("t"),
        chain("t", "fw", "forward", policy="drop"),
        chain("t", "sub"),
        chain("t", "sub2"),
    ]
    # jump: sub falls off its end, back to fw, whose next rule accepts
    with_jump = document(
        nft_doc(*nm_shared(), *base, rule("t", "fw", jump("sub")), rule("t", "fw", ACCEPT))
    )
    assert verdict_of(with_jump).flows["outbound"].verdict == "accept"
    # goto: sub's end returns to fw's caller (none): the policy drops
    with_goto = document(
        nft_doc(*nm_shared(), *base, rule("t", "fw", goto("sub")), rule("t", "fw", ACCEPT))
    )
    assert verdict_of(with_goto).flows["outbound"].verdict == "drop"
    # return inside a jumped-to chain
    with_return = document(
        nft_doc(
            *nm_shared(),
            *base,
            rule("t", "fw", jump("sub")),
            rule("t", "sub", {"return": None}),
            rule("t", "sub", DROP),
            rule("t", "fw", ACCEPT),
        )
    )
    assert verdict_of(with_return).flows["outbound"].verdict == "accept"


def test_verdict_map_on_interface_name() -> None:
    vmap = {"vmap": {"key": meta("iifname"), "data": {"set": [["hs0", ACCEPT], ["eth*", DROP]]}}}
    doc = document(
        nft_doc(
            *nm_shared(),
            table("t", "inet"),
            chain("t", "fw", "forward", policy="drop", family="inet"),
            rule("t", "fw", vmap, family="inet"),
        )
    )
    result = verdict_of(doc)
    assert result.flows["outbound"].verdict == "accept"
    assert result.flows["reply"].verdict == "drop"  # up0 matches no entry: the policy


def test_undecidable_rule_makes_unknown_only_when_it_matters() -> None:
    unknown_match = {"match": {"op": "==", "left": {"numgen": {"mod": 2}}, "right": 0}}
    # an undecidable rule that drops: the outcome depends on it
    doc = document(
        nft_doc(
            *nm_shared(),
            table("t"),
            chain("t", "fw", "forward"),
            rule("t", "fw", unknown_match, DROP),
        )
    )
    result = verdict_of(doc)
    assert result.verdict == "unknown"
    assert result.flows["outbound"].uncertain
    # the same rule accepting, in a chain whose policy accepts: no difference
    doc = document(
        nft_doc(
            *nm_shared(),
            table("t"),
            chain("t", "fw", "forward"),
            rule("t", "fw", unknown_match, ACCEPT),
        )
    )
    assert verdict_of(doc).verdict == "ok"


def test_ct_state_before_conntrack_is_invalid() -> None:
    ct_new = match({"ct": {"key": "state"}}, "new")
    doc = document(
        nft_doc(
            *nm_shared(),
            table("raw"),
            chain("raw", "pre", "prerouting", prio=-300, policy="drop"),
            rule("raw", "pre", ct_new, ACCEPT),
        )
    )
    assert verdict_of(doc).flows["dns"].verdict == "drop"
    doc = document(
        nft_doc(
            *nm_shared(),
            table("raw"),
            chain("raw", "pre", "prerouting", prio=-150, policy="drop"),
            rule("raw", "pre", ct_new, ACCEPT),
        )
    )
    assert verdict_of(doc).flows["dns"].verdict == "accept"


def test_nat_chains_see_only_new_connections() -> None:
    doc = document(
        nft_doc(
            *nm_shared(),
            table("n"),
            chain("n", "post", "postrouting", prio=100, type="nat", policy="drop"),
        )
    )
    result = verdict_of(doc)
    assert result.flows["outbound"].verdict == "drop"
    assert result.flows["reply"].verdict == "accept"


def test_forwarding_off_blocks_forwarded_flows_only() -> None:
    result = verdict_of(document(nft_doc(*nm_shared()), forwarding="0"))
    assert flows(result) == {"dhcp": "accept", "dns": "accept", "outbound": "drop", "reply": "drop"}
    assert result.blocked_by is not None and result.blocked_by.owner == "sysctl"


def test_no_masquerade_is_blocked() -> None:
    result = verdict_of(document(nft_doc()))
    assert result.flows["outbound"].verdict == "accept"
    assert result.verdict == "blocked" and result.blocked_by.owner == "nat"  # type: ignore[union-attr]


def test_netdev_ingress_on_the_hotspot_only() -> None:
    def ingress(dev: str) -> dict[str, Any]:
        return document(
            nft_doc(
                *nm_shared(),
                table("nd", "netdev"),
                chain("nd", "in", "ingress", family="netdev", dev=dev, prio=0, policy="drop"),
            )
        )

    assert flows(verdict_of(ingress("hs0")))["dhcp"] == "drop"
    assert flows(verdict_of(ingress("eth9")))["dhcp"] == "accept"


def test_ingress_chain_without_its_device_is_never_ignored() -> None:
    """nft 1.0.6's JSON leaves the device out: a chain that drops on ingress reads unknown
    (with the reason), or exact when the snapshot carries the devices apart."""

    def ingress(family: str, **extra: Any) -> dict[str, Any]:
        return document(
            nft_doc(
                *nm_shared(),
                table("nd", family),
                chain("nd", "in", "ingress", family=family, prio=0, policy="drop"),
            ),
            **extra,
        )

    for family in ("netdev", "inet"):
        result = verdict_of(ingress(family))
        assert result.verdict == "unknown" and flows(result)["dhcp"] == "unknown"
        assert "does not say which device the ingress chain" in str(result.flows["dhcp"].reason)
        carried = [{"family": family, "table": "nd", "chain": "in", "devices": ["hs0"]}]
        assert flows(verdict_of(ingress(family, ingress_devices=carried)))["dhcp"] == "drop"
        elsewhere = [{"family": family, "table": "nd", "chain": "in", "devices": ["eth9"]}]
        assert flows(verdict_of(ingress(family, ingress_devices=elsewhere)))["dhcp"] == "accept"


def test_ipv6_twins_exist_when_the_hotspot_has_ipv6() -> None:
    result = verdict_of(document(nft_doc(*nm_shared()), ipv6=("2001:db8:42::1/64",)))
    assert set(result.flows) == {
        "dhcp",
        "dns",
        "outbound",
        "reply",
        "rs6",
        "ra6",
        "ns6_in",
        "na6_out",
        "ns6_out",
        "na6_in",
        "dhcp6",
        "dns6",
        "outbound6",
        "reply6",
    }
    assert result.flows["outbound6"].verdict == "accept"


def test_named_concatenated_set_with_element_options() -> None:
    """Real `nft -j` output: a set of address . port, one element with a timeout."""
    import json

    from tests.helpers import DATA

    nft = json.loads((DATA / "nft-concat-set-timeout.json").read_text())
    result = verdict_of(document(nft))
    assert result.flows["dns"].verdict == "drop"  # 10.42.0.10 . 53 (the element with a timeout)
    assert result.flows["dhcp"].verdict == "accept"
