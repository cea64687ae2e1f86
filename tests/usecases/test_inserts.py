"""`forward-allow` and `input-allow` on the real kernel: accepts inserted just before the rule
that drops (or the dropping policy) in another program's table, in its own tool, proven with
the lab phone's real packets; second apply a no-op; undo restores the normalized ruleset
exactly; a chain that moved since the preview is refused with nothing changed."""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from hotspotguard.usecases.operations import OperationError, Operations, Paths
from tests.helper.test_fix_docker import normalized_ruleset
from tests.kernel.scenarios.model import ruleset
from tests.lab import HOST_UP_IF, INET_V4, INET_V6, Lab, in_netns

pytestmark = pytest.mark.kernel

FORWARD_FLOWS = ("outbound", "reply", "outbound6", "reply6")
INPUT_FLOWS = ("dhcp", "dns", "dhcp6", "dns6")

HAND_WRITTEN = """
table inet filter {
    chain forward {
        type filter hook forward priority filter; policy accept;
        ct state invalid drop
        iifname "lan9" accept
        counter drop comment "router script: nothing else is forwarded"
    }
}
"""


def operations(tmp_path: Path) -> Operations:
    return Operations(Paths(str(tmp_path / "state"), str(tmp_path / "d"), str(tmp_path / "nm")))


def delivered(lab: Lab, flows: tuple[str, ...]) -> dict[str, bool]:
    return {name: flow.delivered for name, flow in lab.probe(flows).items() if name in flows}


def prove(
    lab: Lab, tmp_path: Path, strategy: str, flows: tuple[str, ...]
) -> tuple[dict[str, Any], dict[str, Any]]:
    """Preview, apply, apply again, undo: packets, the no-op and the exact undo checked.
    The preview and the first apply's result, for the test's own checks."""
    ops = operations(tmp_path)
    before = normalized_ruleset(lab)
    assert not any(delivered(lab, flows).values())
    preview = in_netns(lab.host, lambda: ops.preview("hs0", strategy))
    assert preview["plan"]["strategy"] == strategy
    assert preview["after"]["verdict"] == "ok"
    assert normalized_ruleset(lab) == before  # a preview changes nothing
    generation = preview["generation"]
    done = in_netns(
        lab.host,
        lambda: ops.apply("hs0", strategy, permanent=False, uid=0, generation=generation),
    )
    assert done["changed"]
    assert all(delivered(lab, flows).values()), lab.ruleset()
    applied = normalized_ruleset(lab)
    again = in_netns(lab.host, lambda: ops.apply("hs0", strategy, permanent=False, uid=0))
    assert not again["changed"] and normalized_ruleset(lab) == applied
    assert in_netns(lab.host, ops.list_fixes)[0]["in_place"] is True
    undone = in_netns(lab.host, lambda: ops.undo(f"{strategy}@hs0", uid=0))
    counted = sum(len(c.get("rules", c.get("removed", []))) for c in done["changes"])
    assert undone["removed_rules"] == counted
    assert normalized_ruleset(lab) == before
    assert not any(delivered(lab, flows).values())
    return preview, done


def test_forward_allow_in_a_hand_written_inet_table(clean_lab: Lab, tmp_path: Path) -> None:
    lab = clean_lab
    lab.load_nft(ruleset("nm-shared-hs0.nft"))
    lab.load_nft(HAND_WRITTEN)
    preview, done = prove(lab, tmp_path, "forward-allow", FORWARD_FLOWS)
    (change,) = done["changes"]
    assert (change["tool"], change["family"], change["table"], change["chain"]) == (
        "nft",
        "inet",
        "filter",
        "forward",
    )
    assert change["anchor"].startswith("drop comment") or "drop" in change["anchor"]
    assert "another program's table (inet filter (no known program))" in preview["plan"]["tradeoff"]
    lines = preview["plan"]["preview"]
    assert lines[0].startswith("nft insert rule inet filter forward handle ")
    assert 'iifname "hs0" oifname "up0" ip saddr 10.42.0.0/24 accept' in lines[0]


def test_forward_allow_in_dockers_nftables_table(clean_lab: Lab, tmp_path: Path) -> None:
    """Docker 29's own table (no DOCKER-USER): docker-user says why not, forward-allow works."""
    lab = clean_lab
    lab.load_nft(ruleset("nm-shared-hs0.nft"))
    lab.load_nft(ruleset("docker29-policy-drop.nft"))
    ops = operations(tmp_path)
    with pytest.raises(OperationError, match="DOCKER-USER chain is not there") as info:
        in_netns(lab.host, lambda: ops.preview("hs0", "docker-user"))
    assert info.value.kind == "NotApplicable"
    recommended = in_netns(lab.host, lambda: ops.preview("hs0", ""))
    assert recommended["plan"]["strategy"] == "forward-allow"
    _, done = prove(lab, tmp_path, "forward-allow", ("outbound", "reply"))
    (change,) = done["changes"]
    assert (change["table"], change["chain"], change["before"]) == (
        "docker-bridges",
        "filter-FORWARD",
        None,
    )


def test_input_allow_before_an_input_policy_drop(clean_lab: Lab, tmp_path: Path) -> None:
    lab = clean_lab
    lab.load_nft(ruleset("nm-shared-hs0.nft"))
    lab.load_nft(ruleset("input-drop-forgets-hotspot.nft"))
    preview, done = prove(lab, tmp_path, "input-allow", INPUT_FLOWS)
    (change,) = done["changes"]
    assert (change["family"], change["chain"], change["before"]) == ("inet", "input", None)
    assert any("udp dport 67" in line for line in preview["plan"]["preview"])


def test_forward_allow_in_ufws_iptables_chains(clean_lab: Lab, tmp_path: Path) -> None:
    """ufw (iptables-nft) that serves DHCP and DNS but routes nothing: the accepts go at the
    end of FORWARD, before its policy drop, through iptables-nft-restore."""
    lab = clean_lab
    lab.load_nft(ruleset("nm-shared-hs0.nft"))
    lab.load_iptables(ruleset("ufw.rules"))
    lab.load_iptables(ruleset("ufw-user-services-only.rules"))
    preview, done = prove(lab, tmp_path, "forward-allow", ("outbound", "reply"))
    (change,) = done["changes"]
    assert (change["tool"], change["table"], change["chain"]) == (
        "iptables-nft",
        "filter",
        "FORWARD",
    )
    assert "(ufw)" in preview["plan"]["tradeoff"]


UFW_ROUTE_ONLY = """*filter
-A ufw-user-forward -i hs0 -o up0 -j ACCEPT
COMMIT
"""


def test_input_allow_in_ufws_iptables_chains(clean_lab: Lab, tmp_path: Path) -> None:
    """ufw that routes the hotspot but drops its DHCP in ufw-skip-to-policy-input (and DNS by
    the INPUT policy): the accepts go just before each dropping rule the engine names."""
    lab = clean_lab
    lab.load_nft(ruleset("nm-shared-hs0.nft"))
    lab.load_iptables(ruleset("ufw.rules"))
    lab.load_iptables(UFW_ROUTE_ONLY)
    _, done = prove(lab, tmp_path, "input-allow", ("dhcp", "dns"))
    assert {c["tool"] for c in done["changes"]} == {"iptables-nft"}


def test_a_chain_that_moved_since_the_preview_is_refused(clean_lab: Lab, tmp_path: Path) -> None:
    lab = clean_lab
    lab.load_nft(ruleset("nm-shared-hs0.nft"))
    lab.load_nft(HAND_WRITTEN)
    ops = operations(tmp_path)
    preview = in_netns(lab.host, lambda: ops.preview("hs0", "forward-allow"))
    lab.load_nft('add rule inet filter forward iifname "lan8" accept')
    before = normalized_ruleset(lab)

    def apply(generation: str) -> Callable[[], Any]:
        return lambda: ops.apply(
            "hs0", "forward-allow", permanent=False, uid=0, generation=generation
        )

    with pytest.raises(OperationError) as info:
        in_netns(lab.host, apply(preview["generation"]))
    assert info.value.kind == "Stale"
    assert normalized_ruleset(lab) == before
    assert json.loads(json.dumps(in_netns(lab.host, ops.list_fixes))) == []


def test_an_uplink_that_vanished_since_the_preview_is_refused(
    clean_lab: Lab, tmp_path: Path
) -> None:
    lab = clean_lab
    lab.load_nft(ruleset("nm-shared-hs0.nft"))
    lab.load_nft(HAND_WRITTEN)
    ops = operations(tmp_path)
    preview = in_netns(lab.host, lambda: ops.preview("hs0", "forward-allow"))
    before = normalized_ruleset(lab)
    lab.host_run(["ip", "route", "del", "default"])
    lab.host_run(["ip", "-6", "route", "del", "default"])
    try:
        with pytest.raises(OperationError, match="no uplink") as info:
            in_netns(
                lab.host,
                lambda: ops.apply(
                    "hs0", "forward-allow", permanent=False, uid=0,
                    generation=preview["generation"],
                ),
            )  # fmt: skip
        assert info.value.kind == "NotApplicable" and "\n" not in str(info.value)
        assert normalized_ruleset(lab) == before
        assert in_netns(lab.host, ops.list_fixes) == []
    finally:
        for via in (INET_V4, INET_V6):
            lab.host_run(["ip", "route", "add", "default", "via", via, "dev", HOST_UP_IF])


def test_forward_allow_for_ipv6_in_dockers_ip6_table(clean_lab: Lab, tmp_path: Path) -> None:
    """Docker 29 with IPv6: its ip6 docker-bridges forward policy drops the phone's IPv6 only;
    the accepts go in that table, IPv6 only, and the phone's IPv6 TCP gets through."""
    lab = clean_lab
    lab.load_nft(ruleset("nm-shared-hs0.nft"))
    lab.load_nft(ruleset("docker29-policy-accept.nft"))
    lab.load_nft(ruleset("docker29-ip6-policy-drop.nft"))
    assert all(delivered(lab, ("outbound", "reply")).values())
    preview, done = prove(lab, tmp_path, "forward-allow", ("outbound6", "reply6"))
    (change,) = done["changes"]
    assert (change["family"], change["table"], change["chain"]) == (
        "ip6",
        "docker-bridges",
        "filter-FORWARD",
    )
    assert all("ip6 " in line for line in preview["plan"]["preview"])


@pytest.mark.parametrize(
    ("strategy", "table", "flows"),
    [
        ("forward-allow", HAND_WRITTEN, FORWARD_FLOWS),
        ("input-allow", ruleset("input-drop-forgets-hotspot.nft"), INPUT_FLOWS),
    ],
)
def test_a_permanent_allow_comes_back_after_its_owner_rewrites_the_table(
    clean_lab: Lab, tmp_path: Path, strategy: str, table: str, flows: tuple[str, ...]
) -> None:
    """The router script runs again (its table deleted and loaded anew, new handles): the
    dispatcher's `reapply` (as on hotspot down/up) plans again on the new table and puts the
    accepts back; undo then leaves the owner's table exactly as the owner wrote it."""
    lab = clean_lab
    lab.load_nft(ruleset("nm-shared-hs0.nft"))
    lab.load_nft(table)
    written = normalized_ruleset(lab)
    ops = operations(tmp_path)
    done = in_netns(lab.host, lambda: ops.apply("hs0", strategy, permanent=True, uid=0))
    assert done["permanent"] and done["files"]
    for _ in range(2):  # twice: the second reapply finds the identity the first recorded
        lab.load_nft("delete table inet filter")
        lab.load_nft("add table inet filter\nadd chain inet filter scratch")  # other handles
        lab.load_nft("delete chain inet filter scratch")
        lab.load_nft(table)
        assert not delivered(lab, flows[:1])[flows[0]]
        assert in_netns(lab.host, ops.list_fixes)[0]["in_place"] is False
        outcome = in_netns(lab.host, ops.reapply)
        assert outcome == [{"id": f"{strategy}@hs0", "result": "applied"}]
        assert all(delivered(lab, flows).values())
        assert in_netns(lab.host, ops.list_fixes)[0]["in_place"] is True
    undone = in_netns(lab.host, lambda: ops.undo(f"{strategy}@hs0", uid=0))
    assert undone["warnings"] == []
    assert normalized_ruleset(lab) == written
    assert not delivered(lab, flows[:1])[flows[0]]
    assert not list((tmp_path / "d").glob("*")) and not list((tmp_path / "nm").glob("*"))


def test_undo_leaves_a_look_alike_carrying_our_tag(clean_lab: Lab, tmp_path: Path) -> None:
    """A rule someone else added with our tag is not ours: undo removes the rules by the
    handles apply recorded, and the look-alike stays."""
    lab = clean_lab
    lab.load_nft(ruleset("nm-shared-hs0.nft"))
    lab.load_nft(HAND_WRITTEN)
    ops = operations(tmp_path)
    in_netns(lab.host, lambda: ops.apply("hs0", "forward-allow", permanent=False, uid=0))
    tagged = 'comment "hotspotguard:forward-allow@hs0"'
    lab.load_nft(f'add rule inet filter forward iifname "evil0" accept {tagged}')
    undone = in_netns(lab.host, lambda: ops.undo("forward-allow@hs0", uid=0))
    assert undone["removed_rules"] == 4
    left = [line for line in lab.ruleset().splitlines() if "hotspotguard:" in line]
    assert len(left) == 1 and "evil0" in left[0]


@pytest.mark.parametrize("variant", ["nft", "legacy"])
def test_undo_removes_inserted_iptables_rules_by_their_identity(
    clean_lab: Lab, tmp_path: Path, variant: str
) -> None:
    """Apply records each inserted rule's text, handle (iptables-nft) and position; undo
    deletes exactly those.  A copy of one of our rules (same text, tag and all) and another
    rule carrying our tag, both added by someone else, stay — with a warning."""
    lab = clean_lab
    legacy = variant == "legacy"
    lab.load_nft(ruleset("nm-shared-hs0.nft"))
    lab.load_iptables(ruleset("ufw.rules"), legacy=legacy)
    lab.load_iptables(ruleset("ufw-user-services-only.rules"), legacy=legacy)
    ops = operations(tmp_path)
    done = in_netns(lab.host, lambda: ops.apply("hs0", "forward-allow", permanent=False, uid=0))
    (change,) = done["changes"]
    assert change["tool"] == f"iptables-{variant}"
    placed = change["placed"]
    assert [spec for spec, _, _ in placed] == change["rules"]
    assert all((handle is None) == legacy for _, handle, _ in placed)
    tool = f"iptables-{variant}"
    copy = f"-I FORWARD 1 {change['rules'][0]}"
    other = '-I FORWARD 1 -i evil0 -m comment --comment "hotspotguard:forward-allow@hs0" -j ACCEPT'
    lab.load_iptables(f"*filter\n{copy}\n{other}\nCOMMIT\n", legacy=legacy)
    with_look_alikes = lab.host_run([f"{tool}-save", "-t", "filter"]).stdout
    undone = in_netns(lab.host, lambda: ops.undo("forward-allow@hs0", uid=0))
    assert undone["removed_rules"] == len(placed)
    assert undone["warnings"] == [
        "left 2 rule(s) in filter FORWARD that carry this fix's tag but were not added by it: "
        + other.removeprefix("-I FORWARD 1 ")
    ]
    after = lab.host_run([f"{tool}-save", "-t", "filter"]).stdout
    gone = Counter(with_look_alikes.splitlines()) - Counter(after.splitlines())
    assert sum(gone.values()) == len(placed)  # only ours went: the copy of our first rule stays
    tagged = [line for line in after.splitlines() if "hotspotguard:" in line]
    assert tagged == [
        other.replace("-I FORWARD 1", "-A FORWARD"),
        copy.replace("-I FORWARD 1", "-A FORWARD"),
    ]
