"""`hotspotguard status|fix|fixes|undo` run by real unprivileged users: through the helper,
with polkit deciding (the polkit lab: a real polkitd, the helper bus-activated)."""

from __future__ import annotations

import json
import queue
import subprocess
import threading

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


def test_a_user_watches_through_the_helper(plab: PolkitLab) -> None:
    """`status --watch` as a user: the helper's Changed signal wakes it, its captures feed it."""
    plab.docker_hotspot()
    user = plab.users["allow"]
    argv = [str(plab.venv / "bin" / "python"), "-m", "hotspotguard", "status", "--iface", "hs0"]
    proc = subprocess.Popen(
        plab.ns_argv([*argv, "--watch", "--json"], user),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=CLEAN_ENV,
    )
    lines: queue.Queue[str] = queue.Queue()
    threading.Thread(target=lambda: [lines.put(x) for x in proc.stdout or ()], daemon=True).start()
    try:
        assert json.loads(lines.get(timeout=20))["state"] == "blocked"
        # a fix lands: the watcher hears of it through the helper's Changed
        fixed = hotspotguard(plab, user, "fix", "--iface", "hs0")
        assert fixed.returncode == 0, fixed.stderr
        assert json.loads(lines.get(timeout=20))["state"] == "ok"
    finally:
        proc.terminate()
        proc.wait(10)
    assert proc.returncode in (0, -15), proc.stderr.read() if proc.stderr else ""
