"""The privilege boundary under attack (issue 13), each attack reproduced in the polkit lab (real
dbus-daemon, real polkitd, the bus-activated helper, real users) and seen refused.

The lab has no NetworkManager on its bus, so the helper reads the shared connections from
NetworkManager's firewall tables (the NetworkManager side: tests/usecases/test_sharing.py).
"""

from __future__ import annotations

import asyncio
import collections
import concurrent.futures
import shlex
import time
from typing import Any

import pytest
from dbus_next import Message
from dbus_next.aio import MessageBus

from hotspotguard.helper.service import BUS_NAME, OBJECT_PATH
from tests.helper.test_service import _direct_helper
from tests.polkitlab import PolkitLab

pytestmark = pytest.mark.kernel

DROPIN = "etc/systemd/system/docker.service.d/50-hotspotguard.conf"


def call(method: str, *args: Any, interactive: bool = True) -> dict[str, Any]:
    return {"method": method, "args": list(args), "interactive": interactive}


def errors(answers: list[dict[str, Any]]) -> list[str | None]:
    return [a.get("error") for a in answers]


def fixes_json(plab: PolkitLab) -> bool:
    return (plab.root / "var" / "lib" / "hotspotguard" / "fixes.json").exists()


def add_link(plab: PolkitLab, name: str, peer: str) -> None:
    """A veth named `name` in the helper's netns (its peer goes with it on deletion)."""
    plab.netns_run(["ip", "link", "add", name, "type", "veth", "peer", "name", peer])


def test_wildcard_and_quoted_hotspot_names_are_refused(plab: PolkitLab) -> None:
    """`+` (every interface for iptables), `hs+` (hs0, hs1, ...), a quote: valid kernel names,
    refused with one sentence before polkit is asked; the firewall is untouched."""
    plab.docker_hotspot()
    for n, name in enumerate(("+", "hs+", "a'b")):
        add_link(plab, name, f"hgq{n}")
    try:
        before, checks = plab.ruleset(), len(plab.polkit_checks())
        names = ("+", "hs+", "a'b", 'a"b')
        answers = plab.run_client(
            plab.users["allow"],
            [call("ApplyFix", name, "docker-user", False, "") for name in names]
            + [call("PreviewFix", "+", ""), call("UndoFix", "docker-user@+")],
        )
        assert errors(answers) == ["InvalidArgument"] * 6, answers
        assert "every interface" in answers[0]["message"]
        assert "begins with 'hs'" in answers[1]["message"]
        assert all("\n" not in a["message"] and "internal" not in a["message"] for a in answers)
        assert plab.ruleset() == before and not plab.tagged_rules()
        assert len(plab.polkit_checks()) == checks
    finally:
        for name in ("+", "hs+", "a'b"):
            plab.netns_run(["ip", "link", "del", name], check=False)


def test_a_wildcard_uplink_is_refused(plab: PolkitLab) -> None:
    """An uplink named `+` would make the DOCKER-USER rules read `-o +` (every interface)."""
    plab.docker_hotspot()
    add_link(plab, "+", "hgq9")
    try:
        plab.netns_run(["ip", "link", "set", "+", "up"])
        plab.netns_run(["ip", "route", "replace", "default", "dev", "+"])
        before = plab.ruleset()
        answers = plab.run_client(
            plab.users["allow"],
            [call("PreviewFix", "hs0", "docker-user"), call("ApplyFix", "hs0", "", False, "")],
        )
        assert errors(answers) == ["NotApplicable", "NotApplicable"], answers
        assert all("uplink name '+'" in a["message"] for a in answers), answers
        assert plab.ruleset() == before and not fixes_json(plab)
    finally:
        plab.netns_run(["ip", "link", "del", "+"], check=False)


def test_only_a_shared_connection_may_be_fixed(plab: PolkitLab) -> None:
    """up0 exists but nobody shares it: the helper is no tool to open Docker's FORWARD drop
    for any interface.  The shared hs0 still plans."""
    plab.docker_hotspot()
    before = plab.ruleset()
    answers = plab.run_client(
        plab.users["allow"],
        [call("ApplyFix", "up0", "docker-user", False, ""), call("PreviewFix", "up0", ""),
         call("PreviewFix", "hs0", "")],
    )  # fmt: skip
    assert errors(answers) == ["NotApplicable", "NotApplicable", None], answers
    assert "up0 is not a shared connection now (firewall shares: hs0)" in answers[0]["message"]
    assert plab.ruleset() == before and not fixes_json(plab)


def test_set_permanent_on_another_users_fix_needs_undo_others(plab: PolkitLab) -> None:
    """`fixer` may fix and keep its own fixes, not turn another user's permanent fix off (which
    removes the drop-in and the dispatcher script) nor on; the owner and `admin`'s rule may."""
    plab.docker_hotspot()
    allow, fixer = plab.users["allow"], plab.users["fixer"]
    applied = plab.run_client(allow, [call("ApplyFix", "hs0", "docker-user", True, "")])
    assert errors(applied) == [None], applied
    assert (plab.root / DROPIN).is_file()
    answers = plab.run_client(
        fixer,
        [
            call("SetPermanent", "docker-user@hs0", False),
            call("SetPermanent", "docker-user@hs0", True),
            call("SetPermanent", "docker-user@nosuch0", False),
        ],
    )
    assert errors(answers) == ["AccessDenied", "AccessDenied", "NotFound"], answers
    assert all("undo-others" in a["message"] for a in answers[:2]), answers
    assert (plab.root / DROPIN).is_file()
    listed = plab.run_client(allow, [call("ListFixes")])[0]["ok"]
    assert listed[0]["permanent"] is True
    answers = plab.run_client(allow, [call("SetPermanent", "docker-user@hs0", False)])
    assert errors(answers) == [None] and not (plab.root / DROPIN).exists(), answers
    plab.run_client(allow, [call("UndoAllFixes")])


def test_a_rule_with_our_tag_that_we_did_not_add_is_left_alone(plab: PolkitLab) -> None:
    """Tag spoofing: look-alikes carrying `hotspotguard:docker-user@hs0` (one with exactly the
    text of a rule the fix adds, one different), planted before the fix: apply does not delete
    them, undo removes exactly the rules the fix added (recorded by handle) and says what it
    left."""
    plab.docker_hotspot()
    tag = '-m comment --comment "hotspotguard:docker-user@hs0"'
    same = f"-s 10.42.0.0/24 -i hs0 -o up0 {tag} -j ACCEPT"
    other = f"-i hs0 {tag} -j DROP"
    plab.netns_run(["iptables-nft", "-A", "DOCKER-USER", *shlex.split(other)])
    allow = plab.users["allow"]
    applied = plab.run_client(allow, [call("ApplyFix", "hs0", "docker-user", False, "")])
    assert errors(applied) == [None], applied
    assert len(plab.tagged_rules()) == 3
    assert any("not added by it" in w for w in applied[0]["ok"]["warnings"]), applied
    recorded = applied[0]["ok"]["changes"][0]["added"]
    assert [r["position"] for r in recorded] == [1, 2] and all(r["handle"] for r in recorded)
    # a copy of the fix's first rule, letter for letter, above it: `-D <spec>` would take it
    plab.netns_run(["iptables-nft", "-I", "DOCKER-USER", "1", *shlex.split(same)])
    tagged = plab.tagged_rules()
    planted = [tagged[0], *(line for line in tagged if "DROP" in line)]
    again = plab.run_client(allow, [call("ApplyFix", "hs0", "docker-user", False, "")])
    assert again[0]["ok"]["changed"] is False and len(plab.tagged_rules()) == 4, again
    listed = plab.run_client(allow, [call("ListFixes")])[0]["ok"]
    assert listed[0]["in_place"] is True
    undone = plab.run_client(allow, [call("UndoFix", "docker-user@hs0")])
    assert undone[0]["ok"]["removed_rules"] == 2, undone
    assert "left 2 rule(s)" in " ".join(undone[0]["ok"]["warnings"]), undone
    assert plab.tagged_rules() == planted


def test_a_30_mb_argument_is_never_decoded(plab: PolkitLab) -> None:
    """A user polkit denies sends 30 MB arguments: the helper answers LimitsExceeded from the
    header alone, reading the body in 64 KiB chunks; its peak memory stays where it was."""
    assert errors(plab.run_client(plab.users["allow"], [call("ListFixes")])) == [None]
    pid = plab.helper_pid()
    _, peak_before = plab.helper_memory()
    huge = {"member": "PreviewFix", "signature": "ss", "body": ["x" * (30 << 20), "docker-user"]}
    answers = plab.run_client(plab.users["deny"], [huge, huge, call("ListFixes")], sequential=True)
    assert errors(answers) == ["org.freedesktop.DBus.Error.LimitsExceeded"] * 2 + [
        "AccessDenied"
    ], answers
    assert "too large" in answers[0]["message"]
    rss, peak = plab.helper_memory()
    print(f"\nhelper after 2 × 30 MB: RSS {rss / 1024:.1f} MiB, peak {peak / 1024:.1f} MiB "
          f"(peak before {peak_before / 1024:.1f} MiB)")  # fmt: skip
    assert plab.helper_pid() == pid
    assert peak - peak_before < 8 * 1024, (peak_before, peak)


def test_a_flood_from_one_user_is_bounded(plab: PolkitLab) -> None:
    """`read`'s 4 connections × 60 PreviewFix at once: served one at a time, the rest refused
    at once before polkit is asked; `allow`'s ListFixes is answered meanwhile."""
    plab.docker_hotspot()
    checks = len(plab.polkit_checks())
    calls = [call("PreviewFix", "hs0", "docker-user", interactive=False)] * 60
    with concurrent.futures.ThreadPoolExecutor(1) as pool:
        flood = pool.submit(plab.flood, plab.users["read"], calls, 4)
        time.sleep(0.5)
        t0 = time.monotonic()
        other = plab.run_client(plab.users["allow"], [call("ListFixes")])
        latency = time.monotonic() - t0
        answers = flood.result()
    names = collections.Counter(a.get("error") for a in answers)
    print(f"\nflood of {len(answers)}: {dict(names)}; allow's ListFixes in {latency:.2f} s")
    assert errors(other) == [None], other
    assert set(names) <= {None, "LimitsExceeded"}, names
    assert names[None] >= 1 and names["LimitsExceeded"] >= 100
    polkit_asked = len(plab.polkit_checks()) - checks
    assert polkit_asked <= names[None] + 1 + 4, (polkit_asked, names)  # never for the refused


def test_ping_does_not_keep_the_helper_alive(plab: PolkitLab) -> None:
    """A Ping every 0.2 s (any user may ping): the idle exit still comes."""
    idle = 1.0
    proc = _direct_helper(plab, idle)
    started = time.monotonic()

    async def ping_until_gone() -> int:
        bus = await MessageBus(bus_address=plab.bus_address).connect()
        pings = 0
        try:
            while proc.poll() is None and time.monotonic() - started < idle + 5:
                await bus.call(
                    Message(destination=BUS_NAME, path=OBJECT_PATH,
                            interface="org.freedesktop.DBus.Peer", member="Ping")
                )  # fmt: skip
                pings += 1
                await asyncio.sleep(0.2)
        finally:
            bus.disconnect()
        return pings

    try:
        pings = asyncio.run(ping_until_gone())
        assert proc.wait(5) == 0
        lived = time.monotonic() - started
        assert pings >= 3 and lived < idle + 2.5, (pings, lived)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


def test_a_password_prompt_does_not_hold_up_the_users_reads(plab: PolkitLab) -> None:
    """`asker`'s ApplyFix waits at the admin's password prompt (its "work" lane); the same
    user's ListFixes and Subscribe (the "list" lane) are answered meanwhile."""
    plab.docker_hotspot()
    user = plab.users["asker"]
    proc, pid = plab.start_waiting_client(user, [call("ApplyFix", "hs0", "docker-user", False, "")])
    agent = plab.start_agent(user, pid)
    try:
        assert proc.stdin is not None
        proc.stdin.write("go\n")
        proc.stdin.flush()
        deadline = time.monotonic() + 10
        while "Password:" not in agent.read(0.05):
            assert time.monotonic() < deadline, agent.read()
        answers = plab.run_client(user, [call("ListFixes"), call("Subscribe")], timeout=20)
        assert errors(answers) == [None, None], answers
        assert proc.poll() is None  # still at the prompt
        assert not plab.tagged_rules()
    finally:
        plab.stop_agent(agent)
        if proc.poll() is None:
            proc.kill()
        proc.wait()
