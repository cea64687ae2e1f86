"""The watcher without a kernel: coalescing, change detection, faults (fake capture/events)."""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Callable
from typing import Any, cast

import pytest

from hotspotguard.system.capture import CaptureError
from hotspotguard.system.netlink import KernelEvents, Kinds
from hotspotguard.watch import (
    Connection,
    HotspotInfo,
    StaticHotspots,
    Watcher,
    WatchState,
    assess,
    source_for,
)

# A snapshot document of a host with lo as the "hotspot" (lo exists everywhere).
EMPTY_NFT: dict[str, Any] = {"nftables": [{"metainfo": {"json_schema_version": 1}}]}


def _doc(ifaces: list[str] | None, forward: str = "1") -> dict[str, Any]:
    return {
        "format": "hotspotguard-snapshot/1",
        "nft": EMPTY_NFT,
        "sysctl": {"net.ipv4.ip_forward": forward},
        "hotspots": [
            {"iface": i, "ipv4": ["10.42.0.1/24"], "ipv6": []} for i in (ifaces or ["lo"])
        ],
        "uplinks": ["up0"],
        "uplink_addresses": {"up0": ["198.51.100.2/24"]},
    }


class _Events:
    """Stands in for KernelEvents: the test fires events by hand."""

    instance: _Events | None = None

    def __init__(self, on_change: Callable[[Kinds], None]) -> None:
        self.on_change = on_change
        self.gaps: list[str] = []
        self.closed = False
        _Events.instance = self

    def attach(self, loop: asyncio.AbstractEventLoop) -> None:
        pass

    def close(self) -> None:
        self.closed = True


def _events(on_change: Callable[[Kinds], None]) -> KernelEvents:
    return cast(KernelEvents, _Events(on_change))


class _Capture:
    def __init__(self, delay: float = 0.0) -> None:
        self.calls = 0
        self.delay = delay
        self.forward = "1"
        self.fail: Exception | None = None

    def __call__(self, ifaces: list[str] | None) -> dict[str, Any]:
        self.calls += 1
        time.sleep(self.delay)
        if self.fail is not None:
            raise self.fail
        return _doc(ifaces, self.forward)


async def _until(condition: Callable[[], bool], timeout: float = 10.0) -> None:
    """Wait for `condition` (a loaded machine may take long; an idle one returns at once)."""
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        await asyncio.sleep(0.005)


async def _run(watcher: Watcher, script: Callable[[], Any]) -> None:
    task = asyncio.create_task(watcher.run())
    try:
        await script()
    finally:
        watcher.stop()
        await task


def test_the_first_state_then_only_changes() -> None:
    published: list[WatchState] = []
    capture = _Capture()
    watcher = Watcher(StaticHotspots(["lo"]), published.append, capture=capture, events=_events)

    async def script() -> None:
        await _until(lambda: len(published) == 1)
        assert [s.state for s in published] == ["blocked"]  # no masquerade
        events = _Events.instance
        assert events is not None
        events.on_change(frozenset({"ruleset"}))
        await _until(lambda: capture.calls == 2)
        await asyncio.sleep(0.05)
        assert len(published) == 1  # same verdict: nothing printed
        capture.forward = "0"
        events.on_change(frozenset({"sysctl"}))
        await _until(lambda: len(published) == 2)
        assert published[1].blocked_by is not None

    asyncio.run(_run(watcher, script))
    assert capture.calls == 3
    assert _Events.instance is not None and _Events.instance.closed


def test_a_burst_is_coalesced_and_its_end_is_evaluated() -> None:
    published: list[WatchState] = []
    capture = _Capture(delay=0.02)
    watcher = Watcher(StaticHotspots(["lo"]), published.append, capture=capture, events=_events)

    async def script() -> None:
        await asyncio.sleep(0.1)
        events = _Events.instance
        assert events is not None
        start = capture.calls
        t0 = time.monotonic()
        while time.monotonic() - t0 < 0.5:  # thousands of events in 0.5 s
            for _ in range(50):
                events.on_change(frozenset({"ruleset"}))
            await asyncio.sleep(0.005)
        capture.forward = "0"  # the burst's last change
        events.on_change(frozenset({"sysctl"}))
        await _until(lambda: (published[-1].blocked_by or {}).get("owner") == "sysctl")
        burst = capture.calls - start
        # events 5 ms apart never leave 10 ms of quiet: an evaluation each ceiling (100 ms for
        # evaluations this cheap), and one after the end — never one per event
        assert 2 <= burst <= 12, burst
        assert published[-1].state == "blocked"
        assert published[-1].blocked_by is not None
        assert published[-1].blocked_by["owner"] == "sysctl"

    asyncio.run(_run(watcher, script))
    assert watcher.stats.events >= 1000


def test_events_during_an_evaluation_cause_one_more() -> None:
    started = threading.Event()
    release = threading.Event()
    calls: list[float] = []

    def capture(ifaces: list[str] | None) -> dict[str, Any]:
        calls.append(time.monotonic())
        started.set()
        release.wait(2)
        return _doc(ifaces)

    watcher = Watcher(StaticHotspots(["lo"]), lambda s: None, capture=capture, events=_events)

    async def script() -> None:
        await asyncio.get_running_loop().run_in_executor(None, started.wait, 2)
        events = _Events.instance
        assert events is not None
        for _ in range(100):
            events.on_change(frozenset({"ruleset"}))
        release.set()
        await asyncio.sleep(0.2)

    asyncio.run(_run(watcher, script))
    assert len(calls) == 2


def test_errors_are_states_with_reasons(monkeypatch: pytest.MonkeyPatch) -> None:
    capture = _Capture()
    capture.fail = CaptureError("cannot read the firewall: not root (run as root or through sudo)")
    state = assess(StaticHotspots(["lo"]), capture)
    assert state.state == "error"
    assert state.reason is not None and "not root" in state.reason

    def garbage(ifaces: list[str] | None) -> dict[str, Any]:
        return {"format": "something else"}

    state = assess(StaticHotspots(["lo"]), garbage)
    assert state.state == "error"
    assert state.reason and state.reason.startswith("the captured firewall is unreadable: ")

    def surprise(snapshot: object) -> None:
        raise ValueError("unexpected expression\nwith details")

    monkeypatch.setattr("hotspotguard.ruleset.parse_ruleset", surprise)
    state = assess(StaticHotspots(["lo"]), _Capture())
    assert state == WatchState(
        "error", (), "could not evaluate the firewall: ValueError: unexpected expression"
    )

    def crash(ifaces: list[str] | None) -> dict[str, Any]:
        raise KeyError("nft")

    state = assess(StaticHotspots(["lo"]), crash)
    assert state.state == "error"
    assert state.reason == "could not evaluate the firewall: KeyError: 'nft'"


def test_a_missing_or_vanishing_interface(monkeypatch: pytest.MonkeyPatch) -> None:
    state = assess(StaticHotspots(["hgnothere0"]), _Capture())
    assert state == WatchState("no-hotspot", (), "there is no interface named hgnothere0")

    state = assess(StaticHotspots(["lo", "hgnothere0"]), _Capture())
    assert state.state == "blocked"
    assert state.reason and state.reason.endswith("there is no interface named hgnothere0")

    # hs9 exists when the evaluation starts and is gone during the capture
    present = {"hs9"}
    monkeypatch.setattr("hotspotguard.watch._exists", lambda iface: iface in present)

    def gone(ifaces: list[str] | None) -> dict[str, Any]:
        present.clear()
        raise CaptureError("there is no interface named hs9")

    state = assess(StaticHotspots(["hs9"]), gone)
    assert state == WatchState("no-hotspot", (), "there is no interface named hs9")


def test_the_source_status_and_connection() -> None:
    class Down(StaticHotspots):
        @property
        def status(self) -> str | None:
            return "NetworkManager is not running"

    assert assess(Down(["lo"]), _Capture()) == WatchState(
        "error", (), "NetworkManager is not running"
    )

    class Shared(StaticHotspots):
        def hotspots(self) -> list[HotspotInfo] | None:
            return [HotspotInfo("lo", Connection("Hotspot", "u-u-i-d", "802-11-wireless"))]

    state = assess(Shared([]), _Capture())
    hotspot = state.to_json()["hotspots"][0]
    assert hotspot["connection"] == {
        "id": "Hotspot",
        "uuid": "u-u-i-d",
        "type": "802-11-wireless",
    }
    assert hotspot["state"] == hotspot["verdict"]
    assert {"iface", "flows", "blocked_by", "summary", "fixes"} <= set(hotspot)
    assert assess(StaticHotspots(["lo"]), _Capture()).hotspots[0]["connection"] is None


def test_source_for_the_command_line(monkeypatch: pytest.MonkeyPatch) -> None:
    assert source_for(["hs0", "hs0"]).hotspots() == [HotspotInfo("hs0")]
    # no system bus at all (a bare server): NetworkManager's firewall tables
    monkeypatch.setenv("DBUS_SYSTEM_BUS_ADDRESS", "unix:path=/nonexistent/bus")
    assert source_for(None).hotspots() is None


def test_text_lines() -> None:
    assert WatchState("error", (), "cannot read the firewall: not root").text() == (
        "error: cannot read the firewall: not root"
    )
    state = assess(StaticHotspots(["lo"]), _Capture())
    assert state.text().startswith("lo: blocked: ")


@pytest.mark.parametrize("state", ["ok", "blocked"])
def test_keys_ignore_traces(state: str) -> None:
    hotspot = {"iface": "hs0", "state": state, "flows": {"a": 1}}
    other = dict(hotspot, flows={"a": 2})
    assert WatchState("ok", (hotspot,)).key() == WatchState("ok", (other,)).key()


def test_legacy_events_of_other_namespaces_are_ignored() -> None:
    capture = _Capture()
    tables = [False]
    watcher = Watcher(
        StaticHotspots(["lo"]),
        lambda s: None,
        capture=capture,
        events=_events,
        has_legacy=lambda: tables[0],
    )

    async def script() -> None:
        await asyncio.sleep(0.1)
        events = _Events.instance
        assert events is not None
        events.on_change(frozenset({"legacy"}))  # another namespace's iptables-legacy
        await asyncio.sleep(0.1)
        assert capture.calls == 1
        events.on_change(frozenset({"legacy", "ruleset"}))
        await asyncio.sleep(0.1)
        assert capture.calls == 2
        tables[0] = True  # this namespace's first legacy table
        events.on_change(frozenset({"legacy"}))
        await asyncio.sleep(0.1)
        assert capture.calls == 3

    asyncio.run(_run(watcher, script))
    assert watcher.stats.ignored == 1


def test_a_never_ending_stream_is_evaluated_every_max_delay() -> None:
    capture = _Capture()
    watcher = Watcher(
        StaticHotspots(["lo"]),
        lambda s: None,
        capture=capture,
        events=_events,
        max_delay=0.2,
        min_ceiling=0.2,
    )

    async def script() -> None:
        await asyncio.sleep(0.1)
        events = _Events.instance
        assert events is not None
        start = capture.calls
        t0 = time.monotonic()
        sent = 0
        while time.monotonic() - t0 < 2.0:
            events.on_change(frozenset({"ruleset"}))
            sent += 1
            await asyncio.sleep(0.002)
        # about every 0.2 s (10): evaluated amid the stream, far fewer times than the events
        # came; bounds wide enough for a loaded machine's late timers
        assert 3 <= capture.calls - start <= 15 < sent, (capture.calls - start, sent)

    asyncio.run(_run(watcher, script))


def test_a_flip_amid_churn_is_not_held_back_to_the_ceiling() -> None:
    """Cheap evaluations, events every 2 ms without end: the verdict-changing one comes out
    within a few of its evaluations' durations (the ceiling follows them), not after 1 s."""
    capture = _Capture(delay=0.005)
    published: list[tuple[float, WatchState]] = []
    watcher = Watcher(
        StaticHotspots(["lo"]),
        lambda s: published.append((time.monotonic(), s)),
        capture=capture,
        events=_events,
    )

    async def script() -> None:
        await asyncio.sleep(0.1)
        events = _Events.instance
        assert events is not None
        t0 = time.monotonic()
        flipped = 0.0
        while time.monotonic() - t0 < 1.5:
            if not flipped and time.monotonic() - t0 > 0.5:
                capture.forward = "0"
                flipped = time.monotonic()
            events.on_change(frozenset({"ruleset"}))
            await asyncio.sleep(0.002)
        blocked = [at for at, state in published if state.key() != published[0][1].key()]
        assert blocked, [s.state for _, s in published]
        assert blocked[0] - flipped < 0.5, blocked[0] - flipped

    asyncio.run(_run(watcher, script))


def test_a_long_first_reading_does_not_space_the_next_evaluations() -> None:
    """The first evaluation reads everything (minutes at 100k rules on a busy machine); the
    ones after it are incremental: a change right after it is not held back by its length."""
    capture = _Capture(delay=1.3)
    published: list[tuple[float, WatchState]] = []
    watcher = Watcher(
        StaticHotspots(["lo"]),
        lambda s: published.append((time.monotonic(), s)),
        capture=capture,
        events=_events,
    )

    async def script() -> None:
        await _until(lambda: bool(published))
        capture.delay = 0.005
        capture.forward = "0"
        events = _Events.instance
        assert events is not None
        flipped = time.monotonic()
        events.on_change(frozenset({"ruleset"}))
        await _until(lambda: len(published) > 1)
        assert published[1][0] - flipped < 0.5, published[1][0] - flipped

    asyncio.run(_run(watcher, script))


def test_without_the_firewall_the_shared_connections_are_still_said() -> None:
    class Shared(StaticHotspots):
        def hotspots(self) -> list[HotspotInfo] | None:
            return [HotspotInfo("lo", Connection("Hotspot", "u-1", "802-11-wireless"))]

    capture = _Capture()
    capture.fail = CaptureError("cannot read the firewall: not root")
    state = assess(Shared(["lo"]), capture)
    assert state.state == "error"
    assert state.hotspots == (
        {
            "iface": "lo",
            "state": "unknown",
            "connection": {"id": "Hotspot", "uuid": "u-1", "type": "802-11-wireless"},
        },
    )
