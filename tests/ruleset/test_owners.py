"""Owners are programs recognised by their real layouts, or `unknown` (never a table's name)."""

from __future__ import annotations

import pytest

from hotspotguard.ruleset.iptables import parse_save
from hotspotguard.ruleset.model import Chain, Match, Meta, Rule, Table, Verdict
from hotspotguard.ruleset.owners import UNKNOWN, chain_owner, display_owner, rule_owner
from hotspotguard.verdict.report import summary
from tests.helpers import DROP, chain, document, match, meta, nft_doc, rule, table
from tests.verdict.test_engine import nm_shared, verdict_of


@pytest.mark.parametrize(
    ("family", "table_name", "chain_name", "owner"),
    [
        ("ip", "docker-bridges", "filter-FORWARD", "docker"),  # Docker 29's nftables backend
        ("inet", "netavark", "FORWARD", "podman"),
        ("ip", "filter", "NETAVARK_FORWARD", "podman"),
        ("ip", "filter", "NETAVARK-1D8721804F16F", "podman"),
        ("ip", "libvirt_network", "guest_output", "libvirt"),
        ("ip", "filter", "LIBVIRT_FWO", "libvirt"),
        ("inet", "lxd", "fwd.lxdbr0", "lxd"),
        ("inet", "incus", "fwd.incusbr0", "incus"),
        ("ip", "filter", "ts-forward", "tailscale"),
        ("ip", "filter", "KUBE-ROUTER-FORWARD", "kube-router"),
        ("ip", "filter", "KUBE-NWPLCY-ABCDEF", "kube-router"),
        ("ip", "filter", "KUBE-SERVICES", "kubernetes"),
        ("ip", "kube-proxy", "filter-forward", "kubernetes"),
        ("ip", "filter", "cali-FORWARD", "calico"),
        ("ip", "filter", "CILIUM_FORWARD", "cilium"),
        ("ip", "filter", "FLANNEL-FWD", "flannel"),
        ("inet", "firewalld", "filter_FORWARD", "firewalld"),
        ("ip", "filter", "FORWARD", UNKNOWN),
        ("ip", "t", "fw", UNKNOWN),
        ("inet", "myrouter", "forward", UNKNOWN),
    ],
)
def test_chain_owner(family: str, table_name: str, chain_name: str, owner: str) -> None:
    chain_obj = Chain(chain_name)
    assert chain_owner(Table(family, table_name, (chain_obj,)), chain_obj) == owner  # type: ignore[arg-type]


def test_iptables_built_in_chain_belongs_to_whoever_jumps_from_it() -> None:
    text = (
        "*filter\n:INPUT ACCEPT [0:0]\n:FORWARD DROP [0:0]\n:OUTPUT ACCEPT [0:0]\n"
        ":NETAVARK_FORWARD - [0:0]\n-A FORWARD -j NETAVARK_FORWARD\nCOMMIT\n"
    )
    (filter_table,) = parse_save(text, 4, "iptables-legacy")[0]
    forward = filter_table.chain("FORWARD")
    assert forward is not None and chain_owner(filter_table, forward) == "podman"


def test_a_rule_on_a_programs_own_interface() -> None:
    """Waydroid (waydroid-net.sh) and LXD write plain rules into shared chains."""
    chain_obj = Chain("INPUT", hook="input")
    filter_table = Table("ip", "filter", (chain_obj,), source="iptables-legacy")

    def on(iface: str) -> Rule:
        return Rule((Match(Meta("iifname"), "==", iface), Verdict("drop")), "")

    assert rule_owner(filter_table, chain_obj, None, on("waydroid0")) == "waydroid"
    assert rule_owner(filter_table, chain_obj, None, on("lxdbr0")) == "lxd"
    assert rule_owner(filter_table, chain_obj, None, on("hs0")) == UNKNOWN
    assert rule_owner(filter_table, chain_obj, "generated for Incus network incusbr0") == "incus"


def test_no_known_program_reads_as_such() -> None:
    """The owner is `unknown`, table, chain, family and source stay separate fields."""
    doc = document(
        nft_doc(
            *nm_shared(), table("t"), chain("t", "fw", "forward", prio=-10), rule("t", "fw", DROP)
        )
    )
    result = verdict_of(doc)
    drop = result.blocked_by
    assert drop is not None
    assert (drop.owner, drop.family, drop.table, drop.chain, drop.source) == (
        UNKNOWN,
        "ip",
        "t",
        "fw",
        "nft",
    )
    assert summary(result) == (
        "blocked: a rule in table ip t (nft) chain fw that no known program wrote"
        " stops outbound traffic from hs0"
    )
    assert display_owner(UNKNOWN) == "no known program"


def test_legacy_policy_of_no_known_program() -> None:
    legacy = "*filter\n:INPUT ACCEPT [0:0]\n:FORWARD DROP [0:0]\n:OUTPUT ACCEPT [0:0]\nCOMMIT\n"
    result = verdict_of(document(nft_doc(*nm_shared()), iptables_legacy_save=legacy))
    assert result.blocked_by is not None and result.blocked_by.owner == UNKNOWN
    assert result.blocked_by.source == "iptables-legacy"
    assert summary(result).startswith(
        "blocked: the policy drop of chain FORWARD in table ip filter (iptables-legacy),"
        " which no known program set, stops"
    )


def test_interface_matches_of_other_kinds_do_not_decide() -> None:
    doc = document(
        nft_doc(
            *nm_shared(),
            table("lxc", "inet"),
            chain("lxc", "fw", "forward", family="inet", prio=-10),
            rule("lxc", "fw", match(meta("iifname"), "waydroid0"), DROP, family="inet"),
        )
    )
    assert verdict_of(doc).verdict == "ok"  # the rule never meets the hotspot's packets
