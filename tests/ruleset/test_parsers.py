"""Parsing nft JSON and iptables save text into the typed model."""

from __future__ import annotations

import ipaddress

from hotspotguard.ruleset import load_snapshot, parse_ruleset
from hotspotguard.ruleset.iptables import parse_save
from hotspotguard.ruleset.model import (
    AnonSet,
    Ct,
    Fib,
    Flags,
    Masked,
    Match,
    Meta,
    Nat,
    Payload,
    Range,
    SetMark,
    Uncertain,
    Verdict,
)
from hotspotguard.ruleset.render import rule_text
from tests.helpers import NM_LAB, document, nm_lab

DOCKER_27 = """\
*filter
:INPUT ACCEPT [0:0]
:FORWARD DROP [0:0]
:OUTPUT ACCEPT [0:0]
:DOCKER - [0:0]
:DOCKER-ISOLATION-STAGE-1 - [0:0]
:DOCKER-USER - [0:0]
-A FORWARD -j DOCKER-USER
-A FORWARD -o docker0 -m conntrack --ctstate RELATED,ESTABLISHED -j ACCEPT
-A FORWARD -i docker+ ! -o docker0 -j ACCEPT
-A DOCKER -d 172.17.0.2/32 ! -i docker0 -o docker0 -p tcp -m tcp --dport 80 -j ACCEPT
-A DOCKER-USER -p udp -m multiport --dports 53,67:68 -m comment --comment "a b" -j RETURN
-A DOCKER-USER -m addrtype --dst-type LOCAL,BROADCAST -j LOGDROP
-A DOCKER-USER -m mark --mark 0x1/0xff -m physdev --physdev-is-bridged -j DROP
-A DOCKER-USER -m recent --rcheck --seconds 60 -j DROP
-A DOCKER-USER -p tcp --tcp-flags SYN,RST,ACK,FIN SYN -j MARK --set-xmark 0x4/0xff
COMMIT
*nat
:PREROUTING ACCEPT [0:0]
:POSTROUTING ACCEPT [0:0]
-A POSTROUTING -s 172.17.0.0/16 ! -o docker0 -j MASQUERADE
COMMIT
"""


def test_iptables_save_chains_policies_and_matches() -> None:
    tables, warnings = parse_save(DOCKER_27, 4, "iptables-legacy")
    assert warnings == []
    filt = next(t for t in tables if t.name == "filter")
    forward = filt.chain("FORWARD")
    assert forward is not None
    assert (forward.hook, forward.priority, forward.policy) == ("forward", 0, "drop")
    assert filt.chain("DOCKER") is not None and not filt.chain("DOCKER").is_base  # type: ignore[union-attr]
    ct = forward.rules[1].exprs
    assert Match(Meta("oifname"), "==", "docker0") in ct
    assert Match(Ct("state"), "==", Flags(frozenset({"related", "established"}))) in ct
    assert forward.rules[2].exprs[0] == Match(Meta("iifname"), "==", "docker*")
    assert forward.rules[2].exprs[1] == Match(Meta("oifname"), "!=", "docker0")
    docker = filt.chain("DOCKER").rules[0].exprs  # type: ignore[union-attr]
    assert docker[0] == Match(Payload("ip", "daddr"), "==", ipaddress.ip_address("172.17.0.2"))
    assert Match(Payload("tcp", "dport"), "==", 80) in docker
    user = filt.chain("DOCKER-USER").rules  # type: ignore[union-attr]
    ports = user[0].exprs[1]
    assert isinstance(ports, Match) and isinstance(ports.right, AnonSet)
    assert 53 in ports.right.elements.exact and Range(67, 68) in ports.right.elements.other
    assert user[0].comment == "a b"
    assert user[0].exprs[-1] == Verdict("return")
    assert user[1].exprs[0] == Match(
        Fib("addrtype", ("daddr",)),
        "==",
        AnonSet(user[1].exprs[0].right.elements),  # type: ignore[union-attr]
    )
    assert user[1].exprs[-1] == Verdict("queue", "LOGDROP")  # unknown target, no such chain
    assert user[2].exprs[0] == Match(Masked(Meta("mark"), 0xFF), "==", 1)
    assert user[2].exprs[1] == Match(Meta("bridged"), "==", 1)
    assert isinstance(user[3].exprs[0], Uncertain)
    assert user[4].exprs[1] == Match(Masked(Payload("tcp", "flags"), 0x17), "==", 0x02)
    assert user[4].exprs[-1] == SetMark(4, 0xFFFFFF00)
    nat = next(t for t in tables if t.name == "nat")
    post = nat.chain("POSTROUTING")
    assert post is not None and post.type == "nat" and post.priority == 100
    assert post.rules[0].exprs[-1] == Nat("masquerade")
    assert rule_text(post.rules[0]) == "-A POSTROUTING -s 172.17.0.0/16 ! -o docker0 -j MASQUERADE"


def test_xt_gaps_are_filled_from_the_save_text() -> None:
    doc = document(
        nm_lab("nft-3-docker-full.json"),
        iptables_nft_save=(NM_LAB / "iptables-save-docker-full.txt").read_text(),
    )
    ruleset = parse_ruleset(load_snapshot(doc))
    filt = ruleset.table("ip", "filter")
    assert filt is not None and filt.source == "iptables-nft"
    ct_rule = filt.chain("DOCKER-CT").rules[0]  # type: ignore[union-attr]
    assert not any(isinstance(e, Uncertain) for e in ct_rule.exprs)
    assert "--ctstate RELATED,ESTABLISHED" in ct_rule.text
    assert ruleset.warnings == ()


def test_xt_without_save_text_stays_uncertain_with_a_warning() -> None:
    ruleset = parse_ruleset(load_snapshot(document(nm_lab("nft-3-docker-full.json"))))
    filt = ruleset.table("ip", "filter")
    ct_rule = filt.chain("DOCKER-CT").rules[0]  # type: ignore[union-attr]
    assert any(isinstance(e, Uncertain) for e in ct_rule.exprs)
    assert any("DOCKER-CT" in w for w in ruleset.warnings)


def test_nft_rule_text_is_rendered() -> None:
    ruleset = parse_ruleset(load_snapshot(document(nm_lab("nft-1-nm-only.json"))))
    table = ruleset.table("ip", "nm-shared-nmp-hs0")
    assert table is not None
    forward = table.chain("filter_forward")
    assert forward is not None and forward.hook == "forward"
    texts = [rule_text(r) for r in forward.rules]
    assert texts[1] == 'ip saddr 10.42.0.0/24 iifname "nmp-hs0" accept'
    assert "ct state { established, related }" in texts[0]


def test_snapshot_carries_ingress_devices_apart() -> None:
    import pytest

    from hotspotguard.ruleset import SnapshotError, load_snapshot
    from tests.helpers import document

    carried = [{"family": "netdev", "table": "t", "chain": "c", "devices": ["hs0", "up0"]}]
    snapshot = load_snapshot(document(ingress_devices=carried))
    assert snapshot.ingress_devices == {("netdev", "t", "c"): ("hs0", "up0")}
    assert "ingress_devices" not in snapshot.extra
    for bad in ({"netdev": "hs0"}, [{"family": "netdev", "table": "t", "devices": "hs0"}]):
        with pytest.raises(SnapshotError, match="ingress_devices"):
            load_snapshot(document(ingress_devices=bad))
