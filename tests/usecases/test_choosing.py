"""Choosing and combining on the real kernel: a hand-written `inet filter` whose input policy
drops the hotspot's DHCP/DNS and whose forward chain ends in a drop, so no single strategy is
enough; `fix` without a strategy makes one combined plan (input-allow, then forward-allow),
applied in one go, undone as one, rolled back when a later step fails; the dry run lists every
candidate."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from hotspotguard.system.firewall import FirewallError
from hotspotguard.usecases import inserts
from hotspotguard.usecases.operations import OperationError
from tests.helper.test_fix_docker import normalized_ruleset
from tests.kernel.scenarios.model import ruleset
from tests.lab import ALL_FLOWS, Lab, _venv_python, in_netns
from tests.sandbox import RootSandbox
from tests.usecases.test_inserts import HAND_WRITTEN, delivered, operations

pytestmark = pytest.mark.kernel


def two_culprits(lab: Lab) -> None:
    lab.load_nft(ruleset("nm-shared-hs0.nft"))
    lab.load_nft(ruleset("input-drop-forgets-hotspot.nft"))
    lab.load_nft(HAND_WRITTEN)  # the same table's forward chain gets a final drop


def test_two_culprits_one_combined_plan(clean_lab: Lab, tmp_path: Path) -> None:
    lab = clean_lab
    two_culprits(lab)
    flows = tuple(ALL_FLOWS)
    before = normalized_ruleset(lab)
    assert not any(delivered(lab, ("dhcp", "outbound")).values())
    ops = operations(tmp_path)
    preview = in_netns(lab.host, lambda: ops.preview("hs0", ""))
    plan = preview["plan"]
    assert (plan["strategy"], plan["steps"]) == ("combined", ["input-allow", "forward-allow"])
    assert preview["after"]["verdict"] == "ok"
    listed = {c["strategy"]: c for c in preview["candidates"]}
    assert "would not be enough" in listed["input-allow"]["reason"]
    assert "would not be enough" in listed["forward-allow"]["reason"]
    assert listed["combined"]["recommended"] and listed["combined"]["works"]
    assert listed["combined"]["flows"]["dhcp"] == {"before": "drop", "after": "accept"}

    done = in_netns(lab.host, lambda: ops.apply("hs0", "", permanent=False, uid=0))
    assert done["id"] == "combined@hs0" and done["changed"]
    outcome = delivered(lab, flows)
    assert all(outcome.values()), outcome
    applied = normalized_ruleset(lab)
    again = in_netns(lab.host, lambda: ops.apply("hs0", "", permanent=False, uid=0))
    assert not again["changed"] and normalized_ruleset(lab) == applied
    assert [f["id"] for f in in_netns(lab.host, ops.list_fixes)] == ["combined@hs0"]
    in_netns(lab.host, lambda: ops.undo("combined@hs0", uid=0))
    assert normalized_ruleset(lab) == before
    assert not any(delivered(lab, ("dhcp", "outbound")).values())


def test_a_failing_second_step_rolls_back_the_first(
    clean_lab: Lab, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    lab = clean_lab
    two_culprits(lab)
    before = normalized_ruleset(lab)
    real = inserts.apply
    calls: list[Any] = []

    def second_fails(change: Any, fix_tag: str) -> Any:
        calls.append(change)
        if len(calls) == 2:  # input-allow's insert went in; forward-allow's fails
            raise FirewallError("iptables-nft-restore failed: injected fault")
        return real(change, fix_tag)

    monkeypatch.setattr(inserts, "apply", second_fails)
    ops = operations(tmp_path)
    with pytest.raises(OperationError, match="injected fault") as info:
        in_netns(lab.host, lambda: ops.apply("hs0", "", permanent=False, uid=0))
    assert info.value.kind == "Failed"
    assert len(calls) == 2
    assert normalized_ruleset(lab) == before
    assert in_netns(lab.host, ops.list_fixes) == []


def test_the_dry_run_lists_every_candidate(clean_lab: Lab) -> None:
    lab = clean_lab
    two_culprits(lab)
    before = normalized_ruleset(lab)
    box = RootSandbox()
    try:
        hg = [_venv_python(), "-m", "hotspotguard", "fix", "--iface", "hs0", "--dry-run"]
        text = box.run(hg, lab.host).stdout
        doc = json.loads(box.run([*hg, "--json"], lab.host).stdout)
    finally:
        box.close()
    assert [c["strategy"] for c in doc["candidates"]] == [
        "input-allow",
        "forward-allow",
        "combined",
    ]
    assert "Candidates (least privileged first):" in text
    assert "  * combined (recommended): " in text
    assert "  - input-allow: not here: input-allow would not be enough" in text
    assert "  - forward-allow: not here: forward-allow would not be enough" in text
    assert "dhcp drop -> accept" in text
    assert normalized_ruleset(lab) == before
