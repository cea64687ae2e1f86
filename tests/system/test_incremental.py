"""Incremental capture == full capture, on the real kernel (a private network namespace).

Random sequences of changes — tables, chains (base and regular, policies), rules (add,
insert, replace, delete by handle), flushes, named sets and maps and their elements, with nft
and with iptables-nft (xt matches included) — are committed one at a time; after each, the
model that :class:`LiveFirewall` keeps up to date from the kernel's notifications must equal
(table for table, chain for chain, rule for rule) the model of a fresh full capture (the
snapshot document ``explain`` reads, parsed), and give the same verdict for the hotspot.
Steps per seed: ``HOTSPOTGUARD_INCREMENTAL_STEPS`` (40;
``make test-full`` runs 400).
"""

from __future__ import annotations

import dataclasses
import os
import random
import shlex
import shutil
import subprocess
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import Future
from queue import SimpleQueue
from typing import Any

import pytest

from hotspotguard.ruleset import load_snapshot, parse_ruleset
from hotspotguard.ruleset.model import AnonSet, Match, VerdictMap
from hotspotguard.system.capture import capture_machine, capture_snapshot, existing_addresses
from hotspotguard.system.incremental import LiveFirewall
from hotspotguard.system.netlink import KernelEvents, RulesetChanges
from hotspotguard.watch import assess_document
from tests.lab import enter_netns

NS = f"hgi{os.getpid()}"
STEPS = int(os.environ.get("HOTSPOTGUARD_INCREMENTAL_STEPS", "40"))
TOOLS = ("ip", "nft", "iptables-nft", "iptables-nft-save")


class InNamespace:
    """A thread inside the namespace: the sockets, libnftables and the children it starts
    (a forked child inherits the thread's namespace) all belong to it."""

    def __init__(self, ns: str) -> None:
        self.jobs: SimpleQueue[tuple[Callable[[], Any], Future[Any]] | None] = SimpleQueue()
        started: Future[None] = Future()
        self.thread = threading.Thread(target=self._main, args=(ns, started), daemon=True)
        self.thread.start()
        started.result(10)

    def _main(self, ns: str, started: Future[None]) -> None:
        try:
            enter_netns(ns)
        except BaseException as exc:
            started.set_exception(exc)
            return
        started.set_result(None)
        while (job := self.jobs.get()) is not None:
            fn, answer = job
            try:
                answer.set_result(fn())
            except BaseException as exc:
                answer.set_exception(exc)

    def __call__(self, fn: Callable[[], Any]) -> Any:
        answer: Future[Any] = Future()
        self.jobs.put((fn, answer))
        return answer.result(60)

    def close(self) -> None:
        self.jobs.put(None)


@pytest.fixture
def netns() -> Iterator[InNamespace]:
    if os.geteuid() != 0:
        pytest.skip("needs root (network namespaces)")
    missing = [t for t in TOOLS if shutil.which(t) is None]
    if missing:
        pytest.skip(f"needs {', '.join(missing)}")
    subprocess.run(["ip", "netns", "del", NS], capture_output=True, check=False)
    subprocess.run(["ip", "netns", "add", NS], check=True)
    worker: InNamespace | None = None
    try:
        for step in (
            "link add hs0 type veth peer name hs0p",
            "link add up0 type veth peer name up0p",
            "addr add 10.42.0.1/24 dev hs0",
            "addr add 198.51.100.2/24 dev up0",
            "link set hs0 up",
            "link set up0 up",
            "route add default via 198.51.100.1",
        ):
            subprocess.run(["ip", "-n", NS, *step.split()], check=True, capture_output=True)
        worker = InNamespace(NS)
        yield worker
    finally:
        if worker is not None:
            worker.close()
        subprocess.run(["ip", "netns", "del", NS], capture_output=True, check=False)


def _nft(command: str) -> bool:
    """One nft command (its own process: it fails alone, the test goes on)."""
    proc = subprocess.run(["nft", command], capture_output=True, text=True, check=False)
    return proc.returncode == 0


def _wait_for_feed(live: LiveFirewall, events: KernelEvents) -> None:
    """Wait until nft's monitor of new rules hears the kernel: it subscribes only after
    filling its cache, and a rule added before that is listed instead of fed (correct, but not
    what a test of the feed means to show). Probes with a table of its own, made again each
    round (a table made before the monitor listened is one it may not know), then forgets the
    notifications of the probe (the model never held that table)."""
    deadline = time.monotonic() + 45
    try:
        while True:
            feed = live._rule_feed()  # a monitor that ended is started again
            assert feed is not None, "the rule feed did not start"
            _nft("delete table inet hgprobe")
            _nft("add table inet hgprobe; add chain inet hgprobe c; add rule inet hgprobe c accept")
            if feed.take("inet", "hgprobe", "c", list(range(1, 8)), 0.3):
                break
            assert time.monotonic() < deadline, "nft's monitor never printed a rule"
    finally:
        _nft("delete table inet hgprobe")
        events.read()
        events.changes.take()


def _handles(family: str, table: str, chain: str) -> list[int]:
    import json

    proc = subprocess.run(
        ["nft", "-j", "-a", "list", "chain", family, table, chain],
        capture_output=True,
        text=True,
        check=False,
    )
    if proc.returncode != 0:
        return []
    items = json.loads(proc.stdout)["nftables"]
    return [i["rule"]["handle"] for i in items if "rule" in i]


def _iptables(*args: str) -> bool:
    proc = subprocess.run(["iptables-nft", *args], capture_output=True, text=True, check=False)
    return proc.returncode == 0


NFT_RULES = (
    'iifname "hs0" drop',
    'iifname "hs0" accept',
    'oifname "hs0" ct state established,related accept',
    "ip saddr 10.42.0.0/24 counter",
    "ip saddr @s4 drop",
    'iifname "hs0" jump c1',
    "ip daddr { 198.51.100.1, 203.0.113.7 } tcp dport { 80, 443 } accept",
    "meta l4proto udp udp dport 53 return",
    'iifname vmap { "hs0" : accept, "up0" : drop }',
    'iifname "hs0" oifname "up0" ip saddr 10.42.0.0/24 accept',
)
IPT_RULES = (
    "-i hs0 -j DROP",
    "-i hs0 -o up0 -j ACCEPT",
    "-o hs0 -m conntrack --ctstate RELATED,ESTABLISHED -j ACCEPT",
    "-p tcp -m multiport --dports 80,443 -j ACCEPT",
    "-s 10.42.0.0/24 -m comment --comment hotspot -j ACCEPT",
    "-i hs0 -j DOCKER-USER",
    "-p udp --dport 53 -m limit --limit 3/min -j RETURN",
)


def _step(rng: random.Random) -> str:
    """Make one random change; what it was (for the failure message)."""
    family = rng.choice(("inet", "ip"))
    table = rng.choice(("t1", "t2"))
    chain = rng.choice(("guard", "c1", "c2"))  # "fwd" is a keyword of nft
    where = f"{family} {table}"
    k = rng.randrange(22)
    if k == 0:
        text = f"add table {where}; add chain {where} {chain}"
    elif k == 1:
        text = f"{'delete' if rng.random() < 0.3 else 'add'} table {where}"
    elif k in (2, 3):
        policy = rng.choice(("accept", "drop"))
        prio = rng.choice((-10, 0, 10))
        text = (
            f"add chain {where} guard {{ type filter hook forward priority {prio}; "
            f"policy {policy}; }}"
            if chain == "guard"
            else f"add chain {where} {chain}"
        )
    elif k == 4:
        text = f"delete chain {where} {chain}"
    elif k in (5, 6, 7):
        text = f"add rule {where} {chain} {rng.choice(NFT_RULES)}"
    elif k == 8:
        text = f"insert rule {where} {chain} {rng.choice(NFT_RULES)}"
    elif k in (9, 10):
        handles = _handles(family, table, chain)
        if not handles:
            return "nothing to delete"
        text = f"delete rule {where} {chain} handle {rng.choice(handles)}"
    elif k == 11:
        handles = _handles(family, table, chain)
        if not handles:
            return "nothing to replace"
        rule = rng.choice(NFT_RULES)
        text = f"replace rule {where} {chain} handle {rng.choice(handles)} {rule}"
    elif k == 12:
        text = f"flush chain {where} {chain}"
    elif k == 13:
        kind = rng.choice(
            ("set s4 { type ipv4_addr; flags interval; }", "map m { type ifname : verdict; }")
        )
        text = f"add {kind.split()[0]} {where} {' '.join(kind.split()[1:])}"
    elif k == 14:
        text = f"add element {where} s4 {{ 10.42.0.{rng.randrange(1, 255)}, 10.42.0.0/28 }}"
    elif k == 15:
        text = f"flush set {where} s4"
    elif k == 16:
        text = f"delete set {where} s4"
    elif k == 17:  # a chain made with its rules in one transaction, or one deleted whole
        name = rng.choice(("c3", "c4"))
        if rng.random() < 0.4:
            text = f"flush chain {where} {name}; delete chain {where} {name}"
        else:
            rules = "; ".join(f"add rule {where} {name} {rng.choice(NFT_RULES)}" for _ in "ab")
            text = f"add chain {where} {name}; {rules}"
    elif k == 18:  # rules added and one deleted in one transaction
        handles = _handles(family, table, chain)
        text = (
            f"add rule {where} {chain} {rng.choice(NFT_RULES)}; "
            + (f"delete rule {where} {chain} handle {rng.choice(handles)}; " if handles else "")
            + f"insert rule {where} {chain} {rng.choice(NFT_RULES)}"
        )
    else:  # iptables-nft (its own table ip filter)
        return _ipt_step(rng)
    return f"nft {text}: {'ok' if _nft(text) else 'refused'}"


def _ipt_step(rng: random.Random) -> str:
    chain = rng.choice(("FORWARD", "DOCKER-USER"))
    k = rng.randrange(7)
    if k == 0:
        args = ["-N", "DOCKER-USER"]
    elif k == 1:
        args = ["-P", "FORWARD", rng.choice(("ACCEPT", "DROP"))]
    elif k in (2, 3):
        args = [rng.choice(("-A", "-I")), chain, *rng.choice(IPT_RULES).split()]
    elif k == 4:
        args = ["-D", chain, "1"]
    elif k == 5:
        args = ["-F", chain]
    else:
        args = ["-X", "DOCKER-USER"]
    return f"iptables-nft {' '.join(args)}: {'ok' if _iptables(*args) else 'refused'}"


def _canonical(tables: Any) -> Any:
    """The tables with anonymous maps' entries and sets' non-exact elements sorted: nft's
    monitor prints them in the command's order, a listing in the kernel's (the engine does
    not depend on it)."""

    def expr(item: Any) -> Any:
        if isinstance(item, VerdictMap) and item.entries:
            return dataclasses.replace(item, entries=tuple(sorted(item.entries, key=repr)))
        if isinstance(item, Match) and isinstance(item.right, AnonSet):
            elements = item.right.elements
            other = tuple(sorted(elements.other, key=repr))
            return dataclasses.replace(
                item, right=AnonSet(dataclasses.replace(elements, other=other))
            )
        return item

    return tuple(
        dataclasses.replace(
            table,
            chains=tuple(
                dataclasses.replace(
                    chain,
                    rules=tuple(
                        dataclasses.replace(rule, exprs=tuple(expr(e) for e in rule.exprs))
                        for rule in chain.rules
                    ),
                )
                for chain in table.chains
            ),
        )
        for table in tables
    )


def _verdict(ruleset: Any) -> str:
    doc = {**capture_machine(existing_addresses(["hs0"])), "nft": None}
    return assess_document(doc, {}, (), ruleset).state.key()


def _run(seed: int, steps: int, rule_feed: bool = False) -> None:
    rng = random.Random(seed)
    events = KernelEvents(lambda kinds: None, rtnetlink=False, legacy=False)
    live = LiveFirewall(rule_feed=rule_feed)
    changes = RulesetChanges()
    try:
        live.update(changes)  # the first reading
        if rule_feed:
            _wait_for_feed(live, events)
        done: list[str] = []
        for step in range(steps):
            if step == 0:  # something to change from the start
                text = "; ".join(f"add table {f} t1; add chain {f} t1 c1" for f in ("inet", "ip"))
                done.append(f"nft {text}: {'ok' if _nft(text) else 'refused'}")
            else:
                done.append(_step(rng))
            events.read()
            taken = events.changes.take()
            assert not taken.lost, "notifications were lost"
            incremental = live.update(taken)
            assert live.stats.full == 1, f"a full capture after: {done[-3:]}"
            fresh = parse_ruleset(load_snapshot(capture_snapshot(["hs0"])))
            assert _canonical(incremental.tables) == _canonical(fresh.tables), f"after: {done[-5:]}"
            assert _verdict(incremental) == _verdict(fresh), f"after: {done[-5:]}"
        made = sum(1 for text in done if text.endswith(": ok"))
        assert made >= steps // 5, done  # the sequence did change the ruleset
        assert live.stats.chains + live.stats.tables + live.stats.deletions > 0
        if rule_feed:
            assert live.stats.fed > 0, (live.stats, done)  # the added rules came from nft's monitor
    finally:
        events.close()
        live.close()


@pytest.mark.kernel
@pytest.mark.parametrize("seed", [1, 2, 3])
def test_incremental_equals_full_capture(netns: InNamespace, seed: int) -> None:
    netns(lambda: _run(seed, STEPS))


@pytest.mark.kernel
@pytest.mark.parametrize("seed", [5, 6, 7])
def test_rules_from_nfts_monitor_equal_a_full_capture(
    netns: InNamespace, seed: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The same, with the added rules taken from ``nft -j monitor`` (system.nftmonitor), as
    the watcher does once a chain's listing is slow."""
    from hotspotguard.system import incremental

    monkeypatch.setattr(incremental, "FEED_WAIT", 2.0)  # a loaded machine: the monitor lags
    netns(lambda: _run(seed, STEPS, rule_feed=True))


@pytest.mark.kernel
def test_a_lost_notification_means_a_full_capture(netns: InNamespace) -> None:
    def run() -> None:
        logged: list[str] = []
        live = LiveFirewall(log=logged.append)
        live.update(RulesetChanges())
        assert _nft("add table inet quiet")  # no socket listens: nothing announces it
        # the first look could be a notification on its way: the model is not trusted
        # (unsettled), nothing is read yet; the second look finds it still unannounced
        assert live.update(RulesetChanges()).table("inet", "quiet") is None
        assert live.unsettled and live.stats.full == 1
        assert live.update(RulesetChanges()).table("inet", "quiet") is not None
        assert live.stats.full == 2
        assert "unannounced" in logged[0]
        lost = RulesetChanges(lost=True)
        live.update(lost)
        assert live.stats.full == 3 and "lost" in logged[1]
        # the collector keeps the last NEWGEN it read, older than what that reading saw:
        # it must not make every later update look unannounced (a full capture each)
        stale = RulesetChanges(generation=1, messages=1)
        for _ in range(3):
            live.update(stale)
            live.update(RulesetChanges())
        assert live.stats.full == 3 and not live.unsettled

    netns(run)


@pytest.mark.kernel
def test_the_applets_live_assessor_reads_only_what_changed(netns: InNamespace) -> None:
    """The applet as root (ui.controller's in-process backend) follows the same incremental
    model: a verdict per change, without a full capture per change."""
    import asyncio

    from hotspotguard.watch import HotspotInfo, LiveAssessor

    async def run() -> None:
        # in the test's namespace (this thread's): forwarding on, so the firewall decides
        subprocess.run(["sysctl", "-qw", "net.ipv4.ip_forward=1"], check=True)
        assert _nft(
            "add table ip nat; add chain ip nat post { type nat hook postrouting priority 100; }; "
            'add rule ip nat post oifname "up0" masquerade'
        )
        assert _nft(
            "add table inet t1; add chain inet t1 guard { type filter hook forward "
            "priority 0; policy accept; }"
        )
        changed = asyncio.Event()
        assessor = LiveAssessor()
        try:
            assessor.subscribe(asyncio.get_running_loop(), changed.set)
            hotspots = [HotspotInfo("hs0")]
            first = await assessor.assess(hotspots)
            assert first.state.state == "ok", first.state
            for command, state in (
                ('add rule inet t1 guard iifname "hs0" drop', "blocked"),
                ("flush chain inet t1 guard", "ok"),
            ):
                changed.clear()
                assert _nft(command)
                await asyncio.wait_for(changed.wait(), 5)
                assessment = await assessor.assess(hotspots)
                assert assessment.state.state == state, (command, assessment.state)
                assert assessment.ruleset is not None  # for the chains dialog
            assert assessor.live.stats.full == 1  # only the first reading read everything
        finally:
            assessor.close()

    netns(lambda: asyncio.run(run()))


@pytest.mark.kernel
def test_base_chains_come_from_their_notifications(
    netns: InNamespace, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A base chain's policy changed (nft, iptables-nft's -P) and a new base chain are taken
    from their notifications (NFTA_CHAIN_HOOK, _TYPE, _POLICY): no chain listed, and the
    model equals a fresh full capture's after each change."""
    from hotspotguard.system import incremental

    listed: list[Any] = []
    real_list = incremental._list

    def counted(what: dict[str, Any]) -> Any:
        listed.append(what)
        return real_list(what)

    monkeypatch.setattr(incremental, "_list", counted)

    def run() -> None:
        assert _nft(
            "add table inet t1; add chain inet t1 guard { type filter hook forward "
            "priority 10; policy accept; }; add rule inet t1 guard tcp dport 22 accept"
        )
        subprocess.run(["iptables-nft", "-A", "FORWARD", "-i", "hs0", "-j", "ACCEPT"], check=True)
        events = KernelEvents(lambda kinds: None, rtnetlink=False, legacy=False)
        live = LiveFirewall()
        try:
            live.update(RulesetChanges())
            for change, policies in (
                ("nft add chain inet t1 guard { type filter hook forward priority 10; "
                 "policy drop; }", 1),
                ("iptables-nft -P FORWARD DROP", 2),
                ("nft add chain inet t1 guard { policy accept; }", 3),
                ("nft add chain inet t1 guard { policy accept; }", 3),  # unchanged
                ("iptables-nft -P FORWARD ACCEPT", 4),
                ("nft add chain inet t1 other { type filter hook input priority -5; "
                 "policy drop; }", 4),
                ("nft add chain ip t1 nat { type nat hook postrouting priority 100; }", 4),
            ):  # fmt: skip
                if change.startswith("nft add chain ip t1"):
                    assert _nft("add table ip t1")
                    events.read()
                    live.update(events.changes.take())
                listed.clear()
                subprocess.run(shlex.split(change), check=True, capture_output=True)
                events.read()
                incremental_model = live.update(events.changes.take())
                assert (live.stats.policies, listed) == (policies, []), change
                fresh = parse_ruleset(load_snapshot(capture_snapshot(["hs0"])))
                assert _canonical(incremental_model.tables) == _canonical(fresh.tables), change
            assert live.stats.full == 1
        finally:
            events.close()
            live.close()

    netns(run)


@pytest.mark.kernel
def test_realistic_rules_from_nfts_monitor_equal_a_full_capture(
    netns: InNamespace, monkeypatch: pytest.MonkeyPatch
) -> None:
    """benchmarks/bigruleset.py's ruleset at 1,000 rules (Docker and ufw through
    iptables-nft, an ``inet`` table with named sets, verdict maps, concatenations, anonymous
    sets): its own ``inet`` rules added and inserted again, taken from nft's monitor, give the
    model a full capture gives."""
    import re
    import sys
    import tempfile
    from pathlib import Path

    from hotspotguard.system import incremental

    monkeypatch.setattr(incremental, "FEED_WAIT", 2.0)
    sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "benchmarks"))
    try:
        import bigruleset
    finally:
        sys.path.pop(0)

    def run() -> None:
        with tempfile.TemporaryDirectory() as tmp:
            nft_file, ipt_file, _ = bigruleset.generate(1000).write(Path(tmp))
            subprocess.run(["iptables-nft-restore", "--noflush", str(ipt_file)], check=True)
            subprocess.run(["nft", "-f", str(nft_file)], check=True)
        events = KernelEvents(lambda kinds: None, rtnetlink=False, legacy=False)
        live = LiveFirewall(rule_feed=True)
        try:
            live.update(RulesetChanges())
            events.read()
            events.changes.take()
            _wait_for_feed(live, events)
            listing = subprocess.run(
                ["nft", "list", "table", "inet", "custom"], capture_output=True, text=True
            ).stdout
            rng = random.Random(7)
            chain, added = "", 0
            for line in listing.splitlines():
                if line.startswith("\tchain "):
                    chain = line.split()[1]
                elif line.startswith("\t\t") and chain and rng.random() < 0.15:
                    rule = re.sub(r"counter packets \d+ bytes \d+", "counter", line.strip())
                    if rule.startswith(("type ", "policy ")):
                        continue
                    verb = rng.choice(("add", "insert"))
                    added += _nft(f"{verb} rule inet custom {chain} {rule}")
            assert added > 10
            events.read()
            incremental_model = live.update(events.changes.take())
            fresh = parse_ruleset(load_snapshot(capture_snapshot(["hs0"])))
            # no full capture; the feed gave the rules, except where a monitor lagging on a
            # loaded machine left a chain to be listed instead (the model must agree either way)
            assert live.stats.full == 1 and live.stats.fed > 0, live.stats
            assert live.stats.fed == added or live.stats.unfed > 0, live.stats
            assert _canonical(incremental_model.tables) == _canonical(fresh.tables)
        finally:
            events.close()
            live.close()

    netns(run)


@pytest.mark.kernel
def test_the_first_reading_equals_the_document_with_quotas_and_prelisted(
    netns: InNamespace,
) -> None:
    """The first reading lists each table stateless (nft -s: the peak of a big table is lower)
    and puts back the quotas' used bytes: its model equals the stateful document's, quotas'
    used bytes in every unit included, for a reading that starts from the biggest table
    listed beforehand (nftables.prelist, what ``explain`` does) and one that does not."""
    from hotspotguard.system import nftables
    from hotspotguard.system.incremental import capture_model

    ruleset = """
    table inet q {
        chain c {
            type filter hook forward priority filter; policy accept;
            tcp dport 22 quota over 25 mbytes used 1025 bytes counter accept
            iifname "hs0" quota 10 mbytes used 2 mbytes counter quota 3000 mbytes used 3 kbytes
            quota 7 bytes
            oifname "up0" counter packets 4 bytes 400 quota over 4000 mbytes used 2049 mbytes drop
        }
        chain d {
            quota 5000 mbytes used 1048576 kbytes accept
        }
    }
    table ip small {
        chain e {
            type filter hook forward priority filter; policy accept;
            quota over 1 kbytes used 1000 bytes counter
        }
    }
    """

    def run() -> None:
        subprocess.run(["nft", "-f", "-"], input=ruleset, text=True, check=True)
        assert _iptables(
            "-A", "FORWARD", "-i", "hs0", "-m", "quota", "--quota", "5000", "-j", "ACCEPT"
        )
        fresh = parse_ruleset(load_snapshot(capture_snapshot(["hs0"])))
        quotas = [
            e.description
            for t in fresh.tables
            for c in t.chains
            for r in c.rules
            for e in r.exprs
            if "quota" in getattr(e, "description", "")
        ]
        assert sum("used" in q for q in quotas) == 6, quotas
        prelisted = nftables.prelist()
        assert prelisted is not None
        for first in (prelisted, None):
            model = capture_model(["hs0"], first)[1]
            assert model.tables == fresh.tables
            assert _verdict(model) == _verdict(fresh)

    netns(run)


@pytest.mark.kernel
def test_the_watchers_first_state_sees_a_change_made_after_its_prelisting(
    netns: InNamespace,
) -> None:
    """``status --watch`` as root lists the biggest table before it imports the watcher and
    subscribes to the kernel's notifications (nftables.prelist): a change made in between
    moves the generation, so the first reading starts again and the first state has it."""
    import asyncio

    from hotspotguard.system import nftables
    from hotspotguard.watch import StaticHotspots, Watcher, WatchState

    def first_state(prelisted: nftables.Prelisted | None) -> WatchState:
        states: list[WatchState] = []

        def publish(state: WatchState) -> None:
            states.append(state)
            watcher.stop()

        watcher = Watcher(StaticHotspots(["hs0"]), publish, incremental=True, prelisted=prelisted)
        asyncio.run(asyncio.wait_for(watcher.run(), 60))
        return states[0]

    def run() -> None:
        subprocess.run(["sysctl", "-qw", "net.ipv4.ip_forward=1"], check=True)
        rules = (f"add rule inet big c ip daddr 203.0.113.{i} counter" for i in range(60))
        assert _nft("add table inet big; add chain inet big c; " + "; ".join(rules))
        assert _nft(
            "add table inet f; add chain inet f fc { type filter hook forward priority 0; }"
        )
        prelisted = nftables.prelist()
        assert prelisted is not None and prelisted.table.name == "big"
        before = first_state(prelisted)
        assert before.key() == first_state(None).key(), before
        prelisted = nftables.prelist()
        assert _nft('add rule inet f fc iifname "hs0" drop')  # after the listing
        after = first_state(prelisted)
        assert after.key() == first_state(None).key() != before.key(), after
        assert (after.blocked_by or {}).get("rule") == 'iifname "hs0" drop', after

    netns(run)


@pytest.mark.kernel
def test_the_monitor_of_a_ruleset_of_many_sets_starts_before_the_prelisting(
    netns: InNamespace,
) -> None:
    """A process that lists the biggest table before it loads the rest starts nft's monitor
    first (nftmonitor.early_feed), for a table of MANY_SETS sets: the model takes that one, so
    the monitor fills its cache while the first reading runs, as it does without a prelisting."""
    from hotspotguard.system import nftables, nftmonitor

    def run() -> None:
        assert nftmonitor.early_feed() is None  # no table of many sets
        sets = (f"add set inet many s{i} {{ type ipv4_addr; }}" for i in range(200))
        assert nftmonitor.MANY_SETS == 200
        assert _nft("add table inet many; " + "; ".join(sets))
        feed = nftmonitor.early_feed()
        assert feed is not None
        live = LiveFirewall(prelisted=nftables.prelist(), feed=feed)
        try:
            live.update(RulesetChanges())
            assert live._rule_feed() is feed and feed.alive
        finally:
            live.close()

    netns(run)
