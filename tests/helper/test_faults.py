"""The fixes' faults through the helper, as a user's D-Bus calls meet them: a strategy that
cannot work here, a ruleset that changed since the preview, an unknown strategy, an uplink
that vanished — each a D-Bus error with a one-line message, and nothing changed in the kernel
or on disk (the helper's netns and its /etc and /var/lib overlay of tests/polkitlab.py)."""

from __future__ import annotations

import pytest

from tests.helper.test_service import call, errors
from tests.polkitlab import PolkitLab

pytestmark = pytest.mark.kernel


def test_faults_are_one_line_dbus_errors_and_change_nothing(plab: PolkitLab) -> None:
    plab.docker_hotspot()
    allow = plab.users["allow"]
    preview = plab.run_client(allow, [call("PreviewFix", "hs0", "docker-user")])[0]["ok"]
    # someone changes the firewall between the preview a person saw and its apply
    plab.netns_run(["iptables-nft", "-I", "DOCKER-USER", "-i", "lan9", "-j", "RETURN"])
    before = plab.ruleset()
    docker_etc = plab.root / "etc/docker"
    files = sorted(p.name for p in docker_etc.iterdir()) if docker_etc.is_dir() else []
    answers = plab.run_client(
        allow,
        [call("ApplyFix", "hs0", "docker-user", False, preview["generation"]),
         call("ApplyFix", "hs0", "docker-no-drop", True, ""),  # Debian 12's Docker is 20.10
         call("ApplyFix", "hs0", "docker-stale-drop", False, ""),  # Docker 28's rules are live
         call("ApplyFix", "hs0", "ufw-route", False, ""),  # ufw does not block here
         call("ApplyFix", "hs0", "nonsense", False, "")],
    )  # fmt: skip
    assert errors(answers) == [
        "Stale",
        "NotApplicable",
        "NotApplicable",
        "NotApplicable",
        "InvalidArgument",
    ], answers
    assert all(a["message"] and "\n" not in a["message"] for a in answers), answers
    assert "changed since the fix was planned" in answers[0]["message"]
    assert "no docker-bridges table" in answers[2]["message"]
    # a planner's reason crosses the bus structured, for the applet to word it in its language
    assert answers[2]["fields"]["reason_code"] == "docker-live-iptables", answers[2]
    assert answers[2]["fields"]["reason"] == answers[2]["message"]
    assert "fields" not in answers[4]  # a plain refusal: its text only
    # the uplink goes away
    plab.netns_run(["ip", "route", "del", "default"])
    (vanished,) = plab.run_client(allow, [call("ApplyFix", "hs0", "docker-user", False, "")])
    assert vanished.get("error") == "NotApplicable" and "no uplink" in vanished["message"]
    assert plab.ruleset() == before
    assert not (plab.root / "var/lib/hotspotguard/fixes.json").exists()
    assert (sorted(p.name for p in docker_etc.iterdir()) if docker_etc.is_dir() else []) == files
    assert plab.tagged_rules() == []
