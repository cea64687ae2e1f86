"""`hotspotguard status|fix|fixes|undo` run by real unprivileged users: through the helper,
with polkit deciding (the polkit lab: a real polkitd, the helper bus-activated)."""

from __future__ import annotations

import json
import subprocess

import pytest

from tests.polkitlab import CLEAN_ENV, PolkitLab, User

pytestmark = pytest.mark.kernel


def hotspotguard(lab: PolkitLab, user: User, *args: str) -> subprocess.CompletedProcess[str]:
    argv = lab.ns_argv([str(lab.venv / "bin" / "python"), "-m", "hotspotguard", *args], user)
    return subprocess.run(
        argv, capture_output=True, text=True, env=CLEAN_ENV, stdin=subprocess.DEVNULL, timeout=60
    )


def test_an_allowed_user_reads_fixes_and_undoes(plab: PolkitLab) -> None:
    plab.docker_hotspot()
    user = plab.users["allow"]
    status = hotspotguard(plab, user, "status", "--iface", "hs0", "--json")
    assert status.returncode == 1, status.stderr  # blocked
    state = json.loads(status.stdout)
    assert state["state"] == "blocked"
    assert state["hotspots"][0]["blocked_by"]["owner"] == "docker"

    fixed = hotspotguard(plab, user, "fix", "--iface", "hs0")
    assert fixed.returncode == 0, fixed.stderr
    assert fixed.stdout.startswith("Applied docker-user@hs0")
    assert len(plab.tagged_rules()) == 2
    assert hotspotguard(plab, user, "status", "--iface", "hs0").returncode == 0

    listing = hotspotguard(plab, user, "fixes")
    assert "docker-user@hs0" in listing.stdout
    undone = hotspotguard(plab, user, "undo")
    assert undone.stdout.strip() == "Undid docker-user@hs0: removed 2 rules", undone.stderr
    assert plab.tagged_rules() == []


def test_a_refused_user_gets_one_line_and_nothing_changes(plab: PolkitLab) -> None:
    plab.docker_hotspot()
    before = plab.ruleset()
    for role in ("deny", "read"):
        fixed = hotspotguard(plab, plab.users[role], "fix", "--iface", "hs0")
        assert fixed.returncode == 1
        assert fixed.stderr.count("\n") == 1 and "Traceback" not in fixed.stderr
        assert fixed.stderr.startswith("hotspotguard: not allowed to ")
    denied = hotspotguard(plab, plab.users["deny"], "status", "--iface", "hs0")
    assert denied.returncode == 2 and "Traceback" not in denied.stderr
    assert plab.ruleset() == before
