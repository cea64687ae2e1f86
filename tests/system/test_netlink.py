"""hotspotguard.system.netlink against the real kernel, in a private network namespace.

The sockets are opened by a thread that entered the namespace (setns moves one thread only;
netlink sockets belong to the namespace they were created in), the changes are made with
``ip netns exec``. The xtables lock is global: the legacy test uses the real /run/xtables.lock.
"""

from __future__ import annotations

import os
import select
import shutil
import subprocess
import threading
import time
from collections.abc import Iterator

import pytest

from hotspotguard.system import netlink
from hotspotguard.system.netlink import KernelEvents, _rtnetlink_kinds
from tests.lab import enter_netns

NS = f"hgl{os.getpid()}"
TOOLS = ("ip", "nft", "sysctl", "iptables-legacy")


def _unavailable() -> str | None:
    if os.geteuid() != 0:
        return "needs root (network namespaces)"
    missing = [t for t in TOOLS if shutil.which(t) is None]
    return f"needs {', '.join(missing)}" if missing else None


def _ns(*argv: str, input: str | None = None) -> None:
    subprocess.run(
        ["ip", "netns", "exec", NS, *argv], input=input, text=True, check=True, capture_output=True
    )


@pytest.fixture
def netns() -> Iterator[str]:
    reason = _unavailable()
    if reason:
        pytest.skip(reason)
    subprocess.run(["ip", "netns", "del", NS], capture_output=True, check=False)
    subprocess.run(["ip", "netns", "add", NS], check=True)
    try:
        yield NS
    finally:
        subprocess.run(["ip", "netns", "del", NS], capture_output=True, check=False)


def _open_in(ns: str, **kw: bool) -> KernelEvents:
    """KernelEvents whose sockets live in `ns`."""
    result: list[KernelEvents | BaseException] = []

    def run() -> None:
        try:
            enter_netns(ns)
            result.append(KernelEvents(lambda kinds: None, **kw))
        except BaseException as exc:
            result.append(exc)

    thread = threading.Thread(target=run)
    thread.start()
    thread.join()
    if isinstance(result[0], BaseException):
        raise result[0]
    return result[0]


def _wait(events: KernelEvents, timeout: float = 2.0) -> frozenset[str]:
    """Every kind that arrives within `timeout` (after the first, a short quiet time)."""
    kinds: set[str] = set()
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        ready, _, _ = select.select(events.fileno_list(), [], [], 0.1 if kinds else 0.2)
        if not ready:
            if kinds:
                break
            continue
        kinds |= events.read()
    return frozenset(kinds)


@pytest.mark.kernel
def test_ruleset_changes_are_reported(netns: str) -> None:
    with _open_in(netns, rtnetlink=False, legacy=False) as events:
        assert events.gaps == []
        assert events.read() == frozenset()
        _ns("nft", "add table inet t; add chain inet t c { type filter hook forward priority 0; }")
        assert _wait(events) == {"ruleset"}
        _ns("iptables-nft", "-P", "FORWARD", "DROP")
        assert _wait(events) == {"ruleset"}
        assert _wait(events, 0.3) == frozenset()  # nothing more: no wake-up


@pytest.mark.kernel
def test_links_addresses_routes_and_forwarding_are_reported(netns: str) -> None:
    with _open_in(netns, ruleset=False, legacy=False) as events:
        _ns("ip", "link", "add", "hgx0", "type", "veth", "peer", "name", "hgx1")
        assert "link" in _wait(events)
        _ns("ip", "addr", "add", "192.0.2.1/24", "dev", "hgx0")
        assert "address" in _wait(events)
        _ns("ip", "link", "set", "hgx0", "up")
        _ns("ip", "link", "set", "hgx1", "up")
        _wait(events, 0.5)
        _ns("ip", "route", "add", "default", "via", "192.0.2.2")
        assert "route" in _wait(events)
        _ns("sysctl", "-qw", "net.ipv4.ip_forward=1")
        assert "sysctl" in _wait(events)
        _ns("sysctl", "-qw", "net.ipv4.conf.hgx0.forwarding=0")
        assert "sysctl" in _wait(events)
        _ns("ip", "link", "del", "hgx0")
        assert "link" in _wait(events)


@pytest.mark.kernel
def test_iptables_legacy_changes_fire_the_lock_watch(netns: str) -> None:
    with _open_in(netns, ruleset=False, rtnetlink=False) as events:
        assert events.gaps == []
        _wait(events, 0.2)  # another process's iptables run, if any
        _ns("iptables-legacy", "-P", "FORWARD", "DROP")
        assert _wait(events) == {"legacy"}
        for _ in range(3):  # (another process's iptables-legacy run would fire it too)
            _ns("iptables-legacy-save")  # a listing without the lock: no event
            _ns("iptables-nft-save")
            if "legacy" not in _wait(events, 0.3):
                break
        else:
            raise AssertionError("the save tools fire the lock watch")
        _ns("iptables-legacy-restore", "--noflush", input="*filter\n:FORWARD ACCEPT\nCOMMIT\n")
        assert _wait(events) == {"legacy"}


@pytest.mark.kernel
def test_a_recreated_lock_file_is_watched_again(netns: str, tmp_path: object) -> None:
    path = os.path.join(str(tmp_path), "xtables.lock")
    with _open_in(netns, ruleset=False, rtnetlink=False, lock_path=path) as events:
        assert os.path.exists(path)
        os.unlink(path)
        assert _wait(events) == {"legacy"}  # the deletion itself: the watch is re-armed
        assert os.path.exists(path)
        env = dict(os.environ, XTABLES_LOCKFILE=path)
        subprocess.run(
            ["ip", "netns", "exec", netns, "iptables-legacy", "-P", "FORWARD", "DROP"],
            env=env,
            check=True,
        )
        assert _wait(events) == {"legacy"}


@pytest.mark.kernel
def test_an_overflow_counts_as_a_change(netns: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(netlink, "_RCVBUF", 1)  # the kernel's minimum (a few KiB)
    with _open_in(netns, rtnetlink=False, legacy=False) as events:
        rules = "".join(f"add rule inet t c counter comment r{i}\n" for i in range(2000))
        _ns("nft", "-f", "-", input=f"add table inet t\nadd chain inet t c\n{rules}")
        time.sleep(0.2)
        assert events.read() >= {"ruleset", "overflow"}
        assert events.read() == frozenset()


def test_routes_of_the_main_and_default_tables_and_rules_count() -> None:
    # the snapshot's routes and policy rules decide fib/rpfilter lookups; the local table
    # changes with the addresses, which count anyway
    def message(mtype: int, dst_len: int, table: int) -> bytes:
        body = bytes([2, dst_len, 0, 0, table, 4, 0, 1]) + b"\0\0\0\0"
        return netlink._NLMSGHDR.pack(16 + len(body), mtype, 0, 0, 0) + body

    assert _rtnetlink_kinds(message(netlink.RTM_NEWROUTE, 0, 254)) == {"route"}
    assert _rtnetlink_kinds(message(netlink.RTM_NEWROUTE, 24, 254)) == {"route"}
    assert _rtnetlink_kinds(message(netlink.RTM_DELROUTE, 24, 253)) == {"route"}
    assert _rtnetlink_kinds(message(netlink.RTM_DELROUTE, 0, 255)) == set()
    assert _rtnetlink_kinds(message(netlink.RTM_NEWRULE, 0, 0)) == {"route"}
    both = message(netlink.RTM_NEWLINK, 0, 0) + message(netlink.RTM_NEWNETCONF, 0, 0)
    assert _rtnetlink_kinds(both) == {"link", "sysctl"}


@pytest.mark.kernel
def test_ruleset_notifications_name_what_changed(netns: str) -> None:
    from hotspotguard.system.nftables import generation

    with _open_in(netns, rtnetlink=False, legacy=False) as events:
        _ns("nft", "add table inet t; add chain inet t c; add set inet t s { type ipv4_addr; }")
        assert "ruleset" in _wait(events)
        made = events.changes.take()
        assert made.tables == {("inet", "t")}  # a table made: read as a whole
        assert ("inet", "t", "c") in made.chains and ("inet", "t", "s") in made.sets
        _ns("nft", "add rule inet t c ip daddr { 192.0.2.1, 192.0.2.2 } counter")
        _wait(events)
        rule = events.changes.take()
        assert rule.tables == set() and rule.chains == set()
        assert list(rule.added_rules) == [("inet", "t", "c")]
        assert rule.sets == set()  # the rule's anonymous set belongs to the rule
        assert rule.generation is not None and rule.generation > (made.generation or 0)
        _ns("nft", "add element inet t s { 192.0.2.9 }")
        _wait(events)
        assert events.changes.take().sets == {("inet", "t", "s")}
        out = subprocess.run(
            ["ip", "netns", "exec", netns, "nft", "-a", "list", "chain", "inet", "t", "c"],
            capture_output=True,
            text=True,
            check=True,
        ).stdout
        handle = int(out.split("# handle ")[-1].split()[0])
        _ns("nft", f"delete rule inet t c handle {handle}")
        _wait(events)
        deleted = events.changes.take()
        assert deleted.chains == set() and deleted.deleted_rules == {("inet", "t", "c"): {handle}}
        _ns("nft", "delete chain inet t c")
        _wait(events)
        gone = events.changes.take()
        assert gone.tables == set() and gone.deleted_chains == {("inet", "t", "c")}
        generation_there: list[int] = []
        thread = threading.Thread(
            target=lambda: (enter_netns(netns), generation_there.append(generation()))
        )
        thread.start()
        thread.join()
        assert gone.generation == generation_there[0]


def test_a_lost_notification_is_noted() -> None:
    changes = netlink.RulesetChanges()
    header = netlink._NLMSGHDR.pack(netlink._NLMSGHDR.size + 2, (10 << 8) | 6, 0, 0, 0)
    assert netlink.ruleset_messages(header + b"\0\0\0\0", changes)
    assert changes.lost  # a message too short for its header: cannot say what changed
