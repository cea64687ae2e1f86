"""`hotspotguard status|fix|fixes|undo` run by real unprivileged users: through the helper,
with polkit deciding (the polkit lab: a real polkitd, the helper bus-activated)."""

from __future__ import annotations

import json
import queue
import subprocess
import threading
import time
from typing import Any

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


#: the path before GetState: the helper's snapshot (GetSnapshot), evaluated in the user's process
SNAPSHOT_PATH = """
import json, sys
from hotspotguard.system.capture import capture_through_helper
from hotspotguard.watch import StaticHotspots, assess
print(json.dumps(assess(StaticHotspots(sys.argv[1:]), capture_through_helper).to_json()))
"""


def snapshot_path_state(lab: PolkitLab, user: User, *ifaces: str) -> dict[str, Any]:
    argv = lab.ns_argv([str(lab.venv / "bin" / "python"), "-c", SNAPSHOT_PATH, *ifaces], user)
    done = subprocess.run(argv, capture_output=True, text=True, env=CLEAN_ENV, timeout=60)
    assert done.returncode == 0, done.stderr
    return dict(json.loads(done.stdout))


def by_sender(calls: list[tuple[str, str]], sender: str) -> list[str]:
    return [member for who, member in calls if who == sender]


def test_a_user_watches_through_the_helpers_state(plab: PolkitLab) -> None:
    """`status --watch --json` as a user: the helper's Changed wakes it and the helper's
    GetState (its live model) is what it prints — no snapshot crosses the bus (a dbus-monitor
    on the lab's bus counts the calls) — and each line is what the path before (GetSnapshot,
    evaluated in the user's process) says of the same firewall."""
    plab.docker_hotspot()
    user = plab.users["allow"]
    argv = [str(plab.venv / "bin" / "python"), "-m", "hotspotguard", "status", "--iface", "hs0"]
    with plab.helper_calls() as calls:
        proc = subprocess.Popen(
            plab.ns_argv([*argv, "--watch", "--json"], user),
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env=CLEAN_ENV,
        )
        lines: queue.Queue[str] = queue.Queue()
        threading.Thread(
            target=lambda: [lines.put(x) for x in proc.stdout or ()], daemon=True
        ).start()
        try:
            first = json.loads(lines.get(timeout=20))
            assert first["state"] == "blocked"
            assert first == snapshot_path_state(plab, user, "hs0")
            watcher = next(who for who, member in calls if member == "Subscribe")
            asked = len(by_sender(calls, watcher))
            # an unrelated change: the watcher asks again (and prints nothing: same state)
            for command in ("add table inet hgother", "add chain inet hgother c",
                            "add rule inet hgother c tcp dport 9 accept"):  # fmt: skip
                plab.netns_run(["nft", *command.split()])
            deadline = time.monotonic() + 20
            while len(by_sender(calls, watcher)) == asked and time.monotonic() < deadline:
                time.sleep(0.05)
            assert len(by_sender(calls, watcher)) > asked
            assert lines.empty()
            # a fix lands: the watcher hears of it through the helper's Changed
            fixed = hotspotguard(plab, user, "fix", "--iface", "hs0")
            assert fixed.returncode == 0, fixed.stderr
            ok = json.loads(lines.get(timeout=20))
            assert ok["state"] == "ok"
            assert ok == snapshot_path_state(plab, user, "hs0")
            undone = hotspotguard(plab, user, "undo")
            assert undone.returncode == 0, undone.stderr
            assert json.loads(lines.get(timeout=20)) == first
        finally:
            proc.terminate()
            proc.wait(10)
        assert proc.returncode in (0, -15), proc.stderr.read() if proc.stderr else ""
        watched = by_sender(calls, watcher)
    assert watched[0] == "Subscribe" and "GetSnapshot" not in watched, watched
    assert set(watched[1:]) == {"GetState"} and len(watched) >= 5, watched


def test_a_users_status_reads_the_helpers_state(plab: PolkitLab) -> None:
    """Plain `status` as a user: one GetState, no snapshot; the same answer as the path
    before, a hotspot named that is not there included."""
    plab.docker_hotspot()
    user = plab.users["allow"]
    for ifaces in (["hs0"], ["hs0", "gone0"]):
        named = [arg for iface in ifaces for arg in ("--iface", iface)]
        with plab.helper_calls() as calls:
            status = hotspotguard(plab, user, "status", *named, "--json")
        assert status.returncode == 1, status.stderr  # blocked
        assert json.loads(status.stdout) == snapshot_path_state(plab, user, *ifaces)
        assert [member for _, member in calls] == ["GetState"], calls
    text = hotspotguard(plab, user, "status", "--iface", "hs0")
    summary = snapshot_path_state(plab, user, "hs0")["hotspots"][0]["summary"]
    assert text.returncode == 1 and text.stdout.splitlines()[0] == summary, text.stdout
