"""`docker-stale-drop` on the real kernel: Docker 29's nftables backend on a host that ran
its iptables backend before (Docker 28's iptables rules, loaded as it writes them, still in
place): the stale FORWARD policy drop and the jumps into Docker's chains are cleared, the
phone gets out, undo restores the normalized ruleset exactly."""

from __future__ import annotations

from pathlib import Path

import pytest

from hotspotguard.usecases.operations import OperationError
from tests.helper.test_fix_docker import normalized_ruleset
from tests.kernel.scenarios.model import ruleset
from tests.lab import Lab, in_netns
from tests.usecases.test_inserts import operations, prove

pytestmark = pytest.mark.kernel


def test_docker_stale_drop_on_a_migrated_host(clean_lab: Lab, tmp_path: Path) -> None:
    lab = clean_lab
    lab.load_nft(ruleset("nm-shared-hs0.nft"))
    lab.load_nft(ruleset("docker29-policy-accept.nft"))
    lab.load_iptables(ruleset("docker28.rules"))
    preview, done = prove(lab, tmp_path, "docker-stale-drop", ("outbound", "reply"))
    (change,) = done["changes"]
    assert (change["kind"], change["chain"], change["policy"], change["previous"]) == (
        "reset",
        "FORWARD",
        "accept",
        "drop",
    )
    assert change["removed"] == [[1, "-j DOCKER-USER"], [2, "-j DOCKER-FORWARD"]]
    assert preview["plan"]["preview"] == [
        "iptables-nft -t filter -D FORWARD -j DOCKER-USER",
        "iptables-nft -t filter -D FORWARD -j DOCKER-FORWARD",
        "iptables-nft -t filter -P FORWARD ACCEPT (now DROP)",
    ]


def test_docker_stale_drop_needs_dockers_nftables_backend(clean_lab: Lab, tmp_path: Path) -> None:
    """Docker 28 itself (iptables backend, its rules live): not stale, so not offered."""
    lab = clean_lab
    lab.load_nft(ruleset("nm-shared-hs0.nft"))
    lab.load_iptables(ruleset("docker28.rules"))
    before = normalized_ruleset(lab)
    ops = operations(tmp_path)
    with pytest.raises(OperationError, match="no docker-bridges table") as info:
        in_netns(lab.host, lambda: ops.apply("hs0", "docker-stale-drop", permanent=False, uid=0))
    assert info.value.kind == "NotApplicable" and "\n" not in str(info.value)
    assert normalized_ruleset(lab) == before


def test_docker_stale_drop_clears_both_families(clean_lab: Lab, tmp_path: Path) -> None:
    """Docker 28 managed ip6tables too: its IPv6 FORWARD drop is as stale, and goes as well."""
    lab = clean_lab
    lab.load_nft(ruleset("nm-shared-hs0.nft"))
    lab.load_nft(ruleset("docker29-policy-accept.nft"))
    lab.load_iptables(ruleset("docker28.rules"))
    lab.load_iptables(ruleset("docker28.v6.rules"), ipv6=True)
    flows = ("outbound", "reply", "outbound6", "reply6")
    _, done = prove(lab, tmp_path, "docker-stale-drop", flows)
    assert sorted((c["family"], c["chain"]) for c in done["changes"]) == [
        (4, "FORWARD"),
        (6, "FORWARD"),
    ]
