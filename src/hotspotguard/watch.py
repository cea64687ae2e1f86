"""Watching the live machine: a fresh verdict whenever the kernel reports a change.

Pieces:

- a :class:`HotspotSource` says which interfaces are hotspots (and of which connection), and
  calls back when that changes. :class:`StaticHotspots` is ``--iface``: fixed names whose
  addresses are read from the kernel on every evaluation (link/address events trigger one);
  :class:`FirewallHotspots` finds them in NetworkManager's firewall tables. The D-Bus source
  (``system.networkmanager.NetworkManagerWatch``) plugs in here: anything with ``hotspots()``,
  ``status``, ``start(on_change)`` and ``close()`` will do — see :func:`source_for`.
- :func:`assess` (blocking, never raises) turns the source and a live capture into a
  :class:`WatchState`.
- :class:`Watcher` ties :class:`hotspotguard.system.netlink.KernelEvents` to :func:`assess`.

Coalescing (bursts: Docker starting 100 containers sends thousands of events): an evaluation
starts once no event has come for ``settle`` (10 ms) — the rest of a transaction or of a
command sequence lands first — but no later than a ceiling after the first pending event, so
a never-ending stream (a daemon adding set elements, kube-proxy syncing) still gets fresh
states. The ceiling follows what an evaluation costs: four times the last one's duration,
at least ``min_ceiling`` (100 ms), at most ``max_delay`` (1 s). With the incremental model
(system.incremental) an evaluation costs what the change is, so a verdict-changing change in
the middle of churn comes out about 100 ms later, not at the 1 s ceiling a full capture of a
big ruleset needs. Evaluating in the middle of a storm is otherwise wasted: the result is
stale at birth, and the capture keeps re-reading a ruleset whose generation keeps moving.
While an evaluation runs (in a worker thread; the loop keeps draining the sockets meanwhile),
events only mark the state dirty; when it ends dirty, the next one starts no earlier than
``min_interval`` (50 ms) after the previous one started and, once the evaluations of the
last ``DUTY_WINDOW`` (2 s) took more than half of it, no earlier than one evaluation's
duration after the last ended (at most about half a CPU in a storm; a change right after an
unrelated one is not held back while the watcher is mostly idle). The first evaluation (a full
reading: minutes at 100,000 rules on a busy machine) counts for neither: the incremental ones
after it are not spaced by it. The last change of a burst
is therefore always evaluated. When nothing happens there is no timer at all: zero wake-ups.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import json
import os
import socket
import sys
import time
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal, Protocol

from hotspotguard.system.netlink import KernelEvents, Kinds, legacy_tables

if TYPE_CHECKING:
    from hotspotguard.assessment import RemedyMemo
    from hotspotguard.fixes.plan import HostFacts
    from hotspotguard.ruleset import Ruleset
    from hotspotguard.system.nftables import Prelisted
    from hotspotguard.system.nftmonitor import RuleFeed
    from hotspotguard.verdict import Report

State = Literal["no-hotspot", "ok", "blocked", "unknown", "error"]
STATES: tuple[State, ...] = ("no-hotspot", "ok", "blocked", "unknown", "error")
#: capture_snapshot's signature: hotspot interfaces (None: find them) -> snapshot document
Capture = Callable[[list[str] | None], dict[str, Any]]

SETTLE = 0.010
MIN_INTERVAL = 0.050
MIN_CEILING = 0.100
MAX_DELAY = 1.0
#: the coalescing ceiling in evaluations' durations (between MIN_CEILING and MAX_DELAY)
CEILING_FACTOR = 4.0
#: seconds over which the evaluations may take half the time before they are spaced out
DUTY_WINDOW = 2.0
#: evaluations in a row that hit a vanishing interface before giving up for this event
RETRIES = 3
#: after an update that left the ruleset's generation unannounced: look again this much later
#: (a notification on its way arrives meanwhile; one lost makes that look a full capture)
RECHECK = 0.2


@dataclass(frozen=True)
class Connection:
    """The NetworkManager connection that shares an interface."""

    id: str
    uuid: str
    type: str

    def to_json(self) -> dict[str, str]:
        return {"id": self.id, "uuid": self.uuid, "type": self.type}


@dataclass(frozen=True)
class HotspotInfo:
    """A hotspot interface, the connection that shares it and the addresses NetworkManager
    gives it ("10.42.0.1/24"; a capture reads the kernel's own where it can)."""

    iface: str
    connection: Connection | None = None
    ipv4: tuple[str, ...] = ()
    ipv6: tuple[str, ...] = ()


class Events(Protocol):
    """Change notifications (KernelEvents, or HelperEvents for users): ``on_change(kinds)``
    from the loop once attached; ``gaps`` says, a line each, what goes unseen."""

    gaps: list[str]

    def attach(self, loop: asyncio.AbstractEventLoop) -> None: ...

    def close(self) -> None: ...


class HotspotSource(Protocol):
    """Where the hotspots come from. Call order: ``start(on_change)``, then ``hotspots()`` and
    ``status`` at each evaluation (from a worker thread: return plain data), ``close()``.
    ``on_change`` must be called from the event loop's thread."""

    def hotspots(self) -> list[HotspotInfo] | None:
        """The hotspots now; None: find them in NetworkManager's firewall tables."""
        ...

    @property
    def status(self) -> str | None:
        """None while the source works; else why not, for a person ("NetworkManager is not
        running")."""
        ...

    @property
    def ready(self) -> bool:
        """False until the source has read its hotspots once; it then calls ``on_change``."""
        ...

    def start(self, on_change: Callable[[], None]) -> None: ...

    def close(self) -> None: ...


class StaticHotspots:
    """``--iface NAME``: these interfaces are the hotspots, whatever NetworkManager says; the
    watcher's link/address events cover their addresses, so this source never calls back."""

    def __init__(self, ifaces: list[str]) -> None:
        self.ifaces = list(dict.fromkeys(ifaces))

    def hotspots(self) -> list[HotspotInfo] | None:
        return [HotspotInfo(iface) for iface in self.ifaces]

    @property
    def status(self) -> str | None:
        return None

    @property
    def ready(self) -> bool:
        return True

    def start(self, on_change: Callable[[], None]) -> None:
        pass

    def close(self) -> None:
        pass


class FirewallHotspots(StaticHotspots):
    """No ``--iface`` and no D-Bus source: the interfaces of NetworkManager's nm-shared-IFACE
    tables (or nm-sh-fw-IFACE chains), found anew at each evaluation."""

    def __init__(self) -> None:
        super().__init__([])

    def hotspots(self) -> list[HotspotInfo] | None:
        return None


class NetworkManagerHotspots:
    """The connections NetworkManager shares, followed over D-Bus (system.networkmanager)."""

    def __init__(self, bus_address: str | None = None) -> None:
        from hotspotguard.system.networkmanager import NetworkManagerWatch

        self.watch = NetworkManagerWatch(bus_address=bus_address)
        self._tasks: set[asyncio.Task[None]] = set()
        self._ready = False

    def _spawn(self, coroutine: Any) -> None:
        task = asyncio.get_running_loop().create_task(coroutine)
        self._tasks.add(task)  # keep a reference until it is done
        task.add_done_callback(self._tasks.discard)

    @property
    def ready(self) -> bool:
        return self._ready

    def start(self, on_change: Callable[[], None]) -> None:
        self.watch.on_change = on_change

        async def first_reading() -> None:
            await self.watch.start()
            self._ready = True
            on_change()  # the watch reports changes after its first reading, not that one

        self._spawn(first_reading())

    def hotspots(self) -> list[HotspotInfo] | None:
        if not self.watch.status.ok:
            return []
        return [
            HotspotInfo(c.iface, Connection(c.id, c.uuid, c.type), c.ipv4, c.ipv6)
            for c in self.watch.connections
            if c.iface and c.activated
        ]

    @property
    def status(self) -> str | None:
        status = self.watch.status
        return None if status.ok else status.message or status.kind

    def close(self) -> None:
        with contextlib.suppress(RuntimeError):  # no loop left: nothing to stop
            self._spawn(self.watch.stop())

    async def follow(self, on_change: Callable[[], None]) -> None:
        """As `start`, but returns once NetworkManager's connections have been read."""
        self.watch.on_change = on_change
        await self.watch.start()
        self._ready = True

    async def unfollow(self) -> None:
        await self.watch.stop()


def system_bus_reachable() -> bool:
    """Whether a system bus socket is there (DBUS_SYSTEM_BUS_ADDRESS, else the standard one)."""
    address = os.environ.get("DBUS_SYSTEM_BUS_ADDRESS", "unix:path=/run/dbus/system_bus_socket")
    for part in address.split(";"):
        if part.startswith("unix:path="):
            return os.path.exists(part.split("=", 1)[1].split(",", 1)[0])
        if part.startswith(("unix:abstract=", "tcp:")):
            return True
    return False


def source_for(ifaces: list[str] | None) -> HotspotSource:
    """The source for the command line: the interfaces given, else NetworkManager over D-Bus,
    else (no system bus at all, as on a bare server) NetworkManager's firewall tables."""
    if ifaces:
        return StaticHotspots(ifaces)
    if system_bus_reachable():
        return NetworkManagerHotspots()
    return FirewallHotspots()


_KEY_FIELDS = ("iface", "state", "blocked_by", "blocked_flow", "ipv4", "ipv6", "connection")


@dataclass(frozen=True)
class WatchState:
    """What the watcher publishes: ``hotspots`` are ``explain --json``'s hotspot objects plus
    "state" and "connection"."""

    state: State
    hotspots: tuple[dict[str, Any], ...] = ()
    reason: str | None = None

    @property
    def blocked_by(self) -> dict[str, Any] | None:
        for hotspot in self.hotspots:
            if hotspot.get("state") == "blocked":
                found: dict[str, Any] | None = hotspot.get("blocked_by")
                return found
        return None

    def to_json(self) -> dict[str, Any]:
        """With ``reason_code`` and ``reason_params`` where the reason is a `wording.Reason`
        (the applet words it in the person's language)."""
        from hotspotguard.wording import Reason, reason_fields

        doc = {"state": self.state, "hotspots": list(self.hotspots), "reason": self.reason}
        return {**doc, **reason_fields(self.reason)} if isinstance(self.reason, Reason) else doc

    @classmethod
    def from_json(cls, doc: object) -> WatchState:
        """:meth:`to_json`'s document back (the helper's ``GetState``); ValueError if it is
        not one."""
        if not isinstance(doc, dict) or doc.get("state") not in STATES:
            raise ValueError("not a hotspotguard state")
        hotspots, reason = doc.get("hotspots") or [], doc.get("reason")
        if not isinstance(hotspots, list) or not all(isinstance(h, dict) for h in hotspots):
            raise ValueError("not a hotspotguard state: its hotspots are not objects")
        if reason is not None and not isinstance(reason, str):
            raise ValueError("not a hotspotguard state: its reason is not text")
        from hotspotguard.wording import reason_from_fields

        return cls(doc["state"], tuple(hotspots), reason_from_fields(doc))

    def key(self) -> str:
        """What a change of state means: the states, their causes, the hotspots' addresses and
        connections — not the traces (a rule added elsewhere changes them, not the verdict)."""
        parts = [{k: h.get(k) for k in _KEY_FIELDS} for h in self.hotspots]
        return json.dumps([self.state, self.reason, parts], sort_keys=True, default=str)

    def text(self) -> str:
        """One line for a person."""
        if self.state in ("ok", "blocked", "unknown") and self.hotspots:
            return "; ".join(f"{h['iface']}: {h['summary']}" for h in self.hotspots)
        return f"{self.state}: {self.reason}" if self.reason else self.state


def _worst(states: list[str]) -> State:
    state: State
    for state in ("blocked", "unknown"):
        if state in states:
            return state
    return "ok"


def _exists(iface: str) -> bool:
    try:
        socket.if_nametoindex(iface)
    except OSError:
        return False
    return True


def _no_interface(names: Sequence[str]) -> WatchState:
    """The state when none of the hotspots named exists."""
    return WatchState(
        "no-hotspot", reason=f"there is no interface named {' or '.join(names) or 'hotspot'}"
    )


def _one_line(error: BaseException) -> str:
    text = str(error).strip().splitlines()
    return text[0] if text else type(error).__name__


def _captured(error: BaseException) -> str:
    """A capture's error, kept structured where it is a `wording.Reason`."""
    from hotspotguard.wording import reason_of

    return reason_of(error)


def _not_evaluated(error: BaseException) -> str:
    from hotspotguard.wording import Reason

    return Reason("not-evaluated", error=type(error).__name__, detail=_one_line(error))


#: reads the firewall's parsed model now (LiveFirewall.update with the pending changes)
Update = Callable[[], "Ruleset"]


#: the kinds of change that leave the machine part of a capture (addresses, routes, forwarding
#: sysctls) as it was: the kernel reports changes of those as link/address/route/sysctl
FIREWALL_KINDS = frozenset({"ruleset", "legacy", "recheck"})


class MachineCache:
    """The machine part of the last capture (not the firewall), reused while only the firewall
    changed: ``fresh`` is False when something else may have changed since."""

    def __init__(self) -> None:
        self.fresh = False
        self.ifaces: list[str] | None = None
        self.doc: dict[str, Any] | None = None


def assess(
    source: HotspotSource,
    capture: Capture | None = None,
    update: Update | None = None,
    machine: MachineCache | None = None,
) -> WatchState:
    """The state of the live machine now; never raises (faults become an ``error`` state).
    With `update`, the firewall is its model (system.incremental) and only the rest of the
    machine is captured (or taken from `machine` while it is fresh)."""
    try:
        return _assess(source, capture, update, machine or MachineCache())
    except Exception as error:  # a parser surprise, a tool that changed: say it, keep going
        if os.environ.get("HOTSPOTGUARD_DEBUG"):
            import traceback

            traceback.print_exc()
        return WatchState("error", reason=_not_evaluated(error))


def _assess(
    source: HotspotSource, capture: Capture | None, update: Update | None, machine: MachineCache
) -> WatchState:
    from hotspotguard.system.capture import CaptureError, live_capture

    status = source.status
    if status:
        return WatchState("error", reason=status)
    ruleset: Ruleset | None = None
    if update is not None:
        try:
            ruleset = update()
        except CaptureError as error:
            return WatchState("error", reason=_captured(error))
        capture = _machine_capture(ruleset, machine)
    capture = capture or live_capture()
    last_error = ""
    for _ in range(RETRIES):
        wanted = source.hotspots()
        missing: list[str] = []
        if wanted is not None:
            missing = [h.iface for h in wanted if not _exists(h.iface)]
            wanted = [h for h in wanted if h.iface not in missing]
            if not wanted:
                return _no_interface(missing)
        connections = {h.iface: h.connection for h in wanted or ()}
        try:
            doc = capture([h.iface for h in wanted] if wanted is not None else None)
        except CaptureError as error:
            last_error = _captured(error)
            if wanted is not None and not all(_exists(h.iface) for h in wanted):
                continue  # an interface went away during the capture: look again
            # what can be said without the firewall: the shared connections themselves
            known = tuple(
                {"iface": h.iface, "state": "unknown", "connection": h.connection.to_json()}
                for h in wanted or ()
                if h.connection is not None
            )
            return WatchState("error", hotspots=known, reason=last_error)
        return assess_document(doc, connections, missing, ruleset).state
    return WatchState("error", reason=last_error or "the hotspot interfaces keep changing")


#: the helper's ``GetState``: hotspot names (none: the helper finds them) -> its answer
ReadState = Callable[[list[str]], Awaitable[object]]


def state_from_helper(doc: object, hotspots: Sequence[HotspotInfo] | None) -> WatchState:
    """The helper's ``GetState`` answer as a state, with NetworkManager's connections of
    `hotspots` (the helper does not know them); ValueError if it is not a state."""
    state = WatchState.from_json(doc)
    connections = {h.iface: h.connection for h in hotspots or () if h.connection}
    items = tuple(
        {**h, "connection": connections[h["iface"]].to_json()}
        if h.get("iface") in connections
        else h
        for h in state.hotspots
    )
    return WatchState(state.state, items, state.reason)


async def assess_through_helper(source: HotspotSource, read_state: ReadState) -> WatchState:
    """:func:`assess` for a user: the state from the helper's ``GetState`` — its live model
    (system.incremental) while we subscribe, so a change costs what it is and no snapshot
    crosses the bus. The same states, reasons and hotspot objects; never raises."""
    from hotspotguard.system.helper_client import HelperRefused, HelperUnavailable

    status = source.status
    if status:
        return WatchState("error", reason=status)
    wanted = source.hotspots()
    if wanted is not None and not wanted:
        return _no_interface([])
    try:
        doc = await read_state([h.iface for h in wanted or ()])
        return state_from_helper(doc, wanted)
    except (HelperUnavailable, HelperRefused, ValueError) as error:
        unreadable = isinstance(error, ValueError)
        reason = f"the helper's answer is not a state: {error}" if unreadable else str(error)
        # what can be said without the firewall: the shared connections themselves
        known = tuple(
            {"iface": h.iface, "state": "unknown", "connection": h.connection.to_json()}
            for h in wanted or ()
            if h.connection is not None
        )
        return WatchState("error", hotspots=known, reason=f"cannot read the firewall: {reason}")
    except Exception as error:  # as assess: say it, keep going
        return WatchState("error", reason=_not_evaluated(error))


def _machine_capture(ruleset: Ruleset, machine: MachineCache) -> Capture:
    """A capture of all but the firewall, whose model is `ruleset`."""
    from hotspotguard.system.capture import capture_machine, existing_addresses, interface_addresses
    from hotspotguard.system.incremental import shared_interfaces

    def capture(ifaces: list[str] | None) -> dict[str, Any]:
        wanted = shared_interfaces(ruleset) if ifaces is None else ifaces
        if machine.fresh and machine.doc is not None and machine.ifaces == wanted:
            return machine.doc
        machine.fresh = False
        if ifaces is None:
            addresses = existing_addresses(wanted)
        else:
            addresses = {iface: interface_addresses(iface) for iface in ifaces}
        doc = {**capture_machine(addresses), "nft": None}
        machine.doc, machine.ifaces, machine.fresh = doc, list(wanted), True
        return doc

    return capture


@dataclass(frozen=True)
class Assessment:
    """A state with the report and ruleset it came from (for views that show the trace)."""

    state: WatchState
    report: Report | None = None
    ruleset: Ruleset | None = None


def assess_document(
    doc: dict[str, Any],
    connections: Mapping[str, Connection | None],
    missing: Sequence[str] = (),
    ruleset: Ruleset | None = None,
) -> Assessment:
    """The state for a captured snapshot document (blocking): its hotspots' verdicts, each
    `explain --json`'s object plus "state" and its NetworkManager "connection"; `missing`
    names wanted hotspots whose interfaces are gone. A `ruleset` given is the firewall (the
    document's own is not parsed)."""
    from hotspotguard.assessment import hotspot_json
    from hotspotguard.ruleset import SnapshotError, load_snapshot, parse_ruleset
    from hotspotguard.verdict import evaluate

    try:
        snapshot = load_snapshot(doc)
    except SnapshotError as error:
        from hotspotguard.wording import Reason

        unreadable = Reason("snapshot-unreadable", detail=_one_line(error))
        return Assessment(WatchState("error", reason=unreadable))
    if ruleset is None:
        ruleset = parse_ruleset(snapshot)
    report = evaluate(snapshot, ruleset)
    if not report.hotspots:
        state = WatchState("no-hotspot", reason="no connection shares an interface")
        return Assessment(state, report, ruleset)
    hotspots: list[dict[str, Any]] = []
    blocked = tuple(v.hotspot.iface for v in report.hotspots if v.blocked_by)
    facts = _host_facts(ruleset, blocked) if blocked else None
    for verdict in report.hotspots:
        offered = _remedies().remedies(snapshot, ruleset, verdict, facts) if facts else ()
        item = hotspot_json(verdict, offered)
        item["state"] = verdict.verdict
        conn = connections.get(verdict.hotspot.iface)
        item["connection"] = conn.to_json() if conn else None
        hotspots.append(item)
    worst = _worst([h["state"] for h in hotspots])
    reason = next((h["summary"] for h in hotspots if h["state"] == worst), None)
    if worst == "ok":
        reason = None
    if missing:
        gone = f"there is no interface named {' or '.join(missing)}"
        reason = f"{reason}; {gone}" if reason else gone
    return Assessment(WatchState(worst, tuple(hotspots), reason), report, ruleset)


@functools.cache
def _remedies() -> RemedyMemo:
    """The process's remedies, planned again only when what they are planned from changed."""
    from hotspotguard.assessment import RemedyMemo

    return RemedyMemo()


def _host_facts(ruleset: Ruleset, ifaces: tuple[str, ...]) -> HostFacts:
    """What the fixes' planner needs beyond the ruleset (Docker's version, ufw), for the
    remedies each blocked hotspot is shown with."""
    from hotspotguard.system import docker
    from hotspotguard.usecases.operations import Paths

    return docker.facts(ruleset, Paths().systemd_dropin_dir, ifaces)  # as fix gathers them


class LiveAssessor:
    """The watcher's incremental model for a caller with its own loop and hotspots (the
    applet as root, the helper for its subscribers): the kernel's notifications call
    ``on_change`` and are kept, and an assessment reads only what they named
    (system.incremental) and the machine part only when something else than the firewall
    changed — no full capture per change.

    Without notifications (none subscribed) each assessment is a full reading, as it must be:
    nothing says what changed since the last one."""

    def __init__(self, warn: Callable[[str], None] | None = None) -> None:
        self.warn = warn
        self.live: Any = None  # LiveFirewall, made at the first assessment (its imports too)
        self.events: KernelEvents | None = None
        self._owns_events = False
        self._machine = MachineCache()
        self._kinds: set[str] = {"start"}

    def subscribe(self, loop: asyncio.AbstractEventLoop, on_change: Callable[[], None]) -> None:
        """Follow the kernel's notifications (from `loop`, which calls ``on_change``)."""
        if self.events is not None:
            return

        def noted(kinds: Kinds) -> None:
            self.note(kinds)
            on_change()

        self.events = KernelEvents(noted)
        self._owns_events = True
        self.events.attach(loop)

    def follow(self, events: KernelEvents) -> None:
        """Follow `events`, which the caller owns and whose kinds it passes to :meth:`note`."""
        self.events, self._owns_events = events, False

    def note(self, kinds: Kinds) -> None:
        """The kinds of a notification (from the loop's thread)."""
        self._kinds |= kinds

    def pending(self) -> tuple[Any, set[str]]:
        """What changed since the last call (take it on the loop's thread, then give it to
        :meth:`assess_pending`: in that order, one assessment at a time)."""
        changes = self.events.changes.take() if self.events is not None else None
        kinds, self._kinds = self._kinds, set()
        if self.events is None:
            kinds.add("start")  # nothing says what changed: read it all
        return changes, kinds

    async def assess(self, hotspots: list[HotspotInfo] | None) -> Assessment:
        """The state of these hotspots now (None: NetworkManager's firewall tables say)."""
        pending = self.pending()
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(None, self.assess_pending, pending, hotspots)

    def assess_pending(
        self, pending: tuple[Any, set[str]], hotspots: list[HotspotInfo] | None
    ) -> Assessment:
        """Blocking: :meth:`assess` with what :meth:`pending` took. The first one lists the
        firewall's biggest table before it imports the parser and the engine (the model's
        first reading is a full one: nftables.prelist)."""
        if self.live is None:
            from hotspotguard.system import nftables, nftmonitor

            feed = nftmonitor.early_feed()
            prelisted = nftables.prelist()
            from hotspotguard.system.incremental import LiveFirewall

            self.live = LiveFirewall(log=self.warn, prelisted=prelisted, feed=feed)
            del prelisted
        from hotspotguard.system.capture import CaptureError
        from hotspotguard.system.netlink import RulesetChanges

        changes, kinds = pending
        try:
            ruleset = self.live.update(
                changes or RulesetChanges(), bool(kinds & {"legacy", "start"})
            )
            self._machine.fresh &= bool(kinds) and kinds <= FIREWALL_KINDS
            wanted = [h for h in hotspots if _exists(h.iface)] if hotspots is not None else None
            missing = [h.iface for h in hotspots or () if h not in (wanted or ())]
            if wanted is not None and not wanted:
                return Assessment(_no_interface(missing))
            capture = _machine_capture(ruleset, self._machine)
            doc = capture([h.iface for h in wanted] if wanted is not None else None)
            connections = {h.iface: h.connection for h in wanted or ()}
            return assess_document(doc, connections, missing, ruleset)
        except CaptureError as error:
            self.live.invalidate("the last update failed")
            return Assessment(WatchState("error", reason=_captured(error)))
        except Exception as error:  # a parser surprise: say it, keep going
            self.live.invalidate("the last update failed")
            return Assessment(WatchState("error", reason=_not_evaluated(error)))

    def close(self) -> None:
        if self.events is not None and self._owns_events:
            self.events.close()
        self.events = None
        if self.live is not None:
            self.live.close()
            self.live = None


@dataclass
class WatchStats:
    events: int = 0
    ignored: int = 0  # legacy lock events of other namespaces
    evaluations: int = 0
    published: int = 0
    busy_seconds: float = 0.0
    kinds: set[str] = field(default_factory=set)


class Watcher:
    """Evaluates on kernel events (coalesced, see the module's docstring) and calls
    ``publish(state)`` for the first state and for each state that differs from the last."""

    def __init__(
        self,
        source: HotspotSource,
        publish: Callable[[WatchState], None],
        *,
        capture: Capture | None = None,
        settle: float = SETTLE,
        min_interval: float = MIN_INTERVAL,
        max_delay: float = MAX_DELAY,
        min_ceiling: float = MIN_CEILING,
        events: Callable[[Callable[[Kinds], None]], Events] | None = None,
        debug: Callable[[str], None] | None = None,
        has_legacy: Callable[[], bool] | None = None,
        warn: Callable[[str], None] | None = None,
        incremental: bool | None = None,
        prelisted: Prelisted | None = None,
        feed: RuleFeed | None = None,
    ) -> None:
        """`prelisted`: the firewall's biggest table, listed before this process imported the
        rest (nftables.prelist), and `feed`, nft's monitor started before that listing
        (nftmonitor.early_feed): for the model (dropped, the monitor stopped, without one)."""
        self.source = source
        self.publish = publish
        self.capture = capture
        self.settle = settle
        self.min_interval = min_interval
        self.stats = WatchStats()
        self.last: WatchState | None = None
        self._make_events = events or KernelEvents
        self._debug = debug
        self._warn = warn
        self._loop: asyncio.AbstractEventLoop | None = None
        self._timer: asyncio.TimerHandle | None = None
        self._running = False
        self._dirty = False
        self._last_start = -1e9
        self._last_end = -1e9
        self._last_duration = 0.0
        self._recent: list[tuple[float, float]] = []  # (start, end) of recent evaluations
        self._stopped: asyncio.Event | None = None
        self._pending_kinds: set[str] = set()
        self._first_pending: float | None = None
        self._last_event = 0.0
        self.max_delay = max_delay
        self.min_ceiling = min_ceiling
        self._has_legacy = has_legacy or legacy_tables
        self._legacy = self._has_legacy()
        self._evaluating_kinds: set[str] = set()
        # the firewall's model, kept between evaluations (root, the kernel's notifications,
        # no capture given): see system.incremental
        self._incremental = (
            capture is None and events is None and os.geteuid() == 0
            if incremental is None
            else incremental
        )
        self._events: Events | None = None
        self.live: Any = None
        self._prelisted = prelisted
        self._feed = feed
        self._recheck: asyncio.TimerHandle | None = None
        self._machine = MachineCache()

    # -- events --
    def _on_kernel(self, kinds: Kinds) -> None:
        if kinds == {"legacy"} and not self._legacy:
            # the xtables lock is global: with no legacy table here (~10 µs to check), it was
            # another namespace's iptables-legacy (or a listing)
            self._legacy = self._has_legacy()
            if not self._legacy:
                self.stats.ignored += 1
                return
        self.stats.events += 1
        self.stats.kinds |= kinds
        self._pending_kinds |= kinds
        self.poke()

    def poke(self) -> None:
        """Something may have changed (call from the loop's thread). Cheap: during a storm it
        only notes the time; the one timer re-arms itself when it fires too early."""
        now = self._now()
        self._dirty = True
        self._last_event = now
        if self._first_pending is None:
            self._first_pending = now
        if not self._running and self._timer is None:
            self._schedule()

    def poke_threadsafe(self) -> None:
        if self._loop is not None:
            self._loop.call_soon_threadsafe(self.poke)

    def _now(self) -> float:
        assert self._loop is not None
        return self._loop.time()

    def _due(self) -> float:
        """When to evaluate: ``settle`` after the latest event, the ceiling after the first
        pending one at the latest, and never sooner than the rate limit allows."""
        first = self._first_pending if self._first_pending is not None else self._last_event
        ceiling = min(self.max_delay, max(self.min_ceiling, CEILING_FACTOR * self._last_duration))
        at = min(self._last_event + self.settle, first + ceiling)
        return max(
            at,
            self._last_start + self.min_interval,
            self._duty_wait(),
        )

    def _duty_wait(self) -> float:
        """The last evaluation's end while the evaluations of the last DUTY_WINDOW took at
        most half of it; else one evaluation's duration later."""
        since = self._last_end - DUTY_WINDOW
        self._recent = [(a, b) for a, b in self._recent if b > since]
        busy = sum(b - max(a, since) for a, b in self._recent)
        if busy <= DUTY_WINDOW / 2:
            return self._last_end
        return self._last_end + self._last_duration

    def _schedule(self) -> None:
        assert self._loop is not None
        self._timer = self._loop.call_at(self._due(), self._fire)

    def _fire(self) -> None:
        self._timer = None
        if self._running or (self._stopped is not None and self._stopped.is_set()):
            return  # running, or stopping (the executor may be gone)
        if not self.source.ready:  # its first reading will poke us
            self._dirty = False
            return
        if self._now() < self._due() - 0.0005:  # events came meanwhile: not quiet yet
            self._schedule()
            return
        self._evaluate()

    def _evaluate(self) -> None:
        assert self._loop is not None
        self._dirty = False
        self._first_pending = None
        self._evaluating_kinds, self._pending_kinds = self._pending_kinds, set()
        self._running = True
        self._last_start = self._loop.time()
        update = self._update() if self.live is not None else None
        kinds = self._evaluating_kinds
        self._machine.fresh &= bool(kinds) and kinds <= FIREWALL_KINDS
        read_state = getattr(self._events, "read_state", None)
        future: asyncio.Future[WatchState]
        if read_state is not None and self.capture is None:  # a user: the helper's model
            future = self._loop.create_task(assess_through_helper(self.source, read_state))
        else:
            future = self._loop.run_in_executor(
                None, assess, self.source, self.capture, update, self._machine
            )
        future.add_done_callback(self._evaluated)

    def _update(self) -> Update:
        """The model's update with the changes noted so far (taken now, in the loop)."""
        live = self.live
        changes = getattr(self._events, "changes", None)
        taken = changes.take() if changes is not None else None
        legacy = bool(self._evaluating_kinds & {"legacy", "start"})

        def update() -> Ruleset:
            from hotspotguard.system.netlink import RulesetChanges

            try:
                result: Ruleset = live.update(taken or RulesetChanges(), legacy)
            except BaseException:
                live.invalidate("the last update failed")
                raise
            return result

        return update

    def _evaluated(self, future: asyncio.Future[WatchState]) -> None:
        assert self._loop is not None
        self._running = False
        self._last_end = self._loop.time()
        took = self._last_end - self._last_start
        self._last_duration = took
        if self.stats.evaluations == 0:
            # the first reading of a big ruleset takes long once; it does not say what the
            # next (incremental) evaluations cost: no spacing after it
            self._last_duration = min(took, MIN_CEILING / CEILING_FACTOR)
        else:
            self._recent.append((self._last_start, self._last_end))
        self.stats.evaluations += 1
        self.stats.busy_seconds += took
        if future.cancelled():
            return
        error = future.exception()
        state = future.result() if error is None else WatchState("error", reason=str(error))
        if self._debug:
            self._debug(
                f"evaluation {self.stats.evaluations}: {took * 1000:.1f} ms, "
                f"{state.state}, events {self.stats.events} "
                f"({', '.join(sorted(self._evaluating_kinds)) or 'start'})"
                + (f", model {self.live.stats}" if self.live is not None else "")
            )
        if self.live is not None and self.live.unsettled and self._recheck is None:
            self._recheck = self._loop.call_later(RECHECK, self._rechecked)
        if self.last is None or state.key() != self.last.key():
            self.last = state
            self.stats.published += 1
            try:
                self.publish(state)
            except OSError:  # the reader went away (a closed pipe): nobody to tell
                self.stop()
                return
        if self._dirty:
            self._schedule()

    def _rechecked(self) -> None:
        self._recheck = None
        if self._stopped is not None and self._stopped.is_set():
            return
        self._pending_kinds.add("recheck")
        self.poke()

    # -- running --
    async def run(self) -> None:
        """Watch until :meth:`stop` (or cancellation)."""
        self._loop = asyncio.get_running_loop()
        self._stopped = asyncio.Event()
        events = self._make_events(self._on_kernel)
        self._events = events
        prelisted, self._prelisted = self._prelisted, None
        feed, self._feed = self._feed, None
        if self._incremental and hasattr(events, "changes"):
            from hotspotguard.system.incremental import LiveFirewall

            # a listing taken before the kernel's notifications were followed is checked by the
            # first reading's generation (a change meanwhile: that reading starts again)
            self.live = LiveFirewall(log=self._warn or self._debug, prelisted=prelisted, feed=feed)
            self._pending_kinds.add("start")
        elif feed is not None:
            feed.close()
        del prelisted, feed
        for gap in events.gaps:
            if self._warn:
                self._warn(gap)
        try:
            events.attach(self._loop)
            self.source.start(self.poke)
            self.poke()  # the first state
            await self._stopped.wait()
        finally:
            if self._timer is not None:
                self._timer.cancel()
                self._timer = None
            if self._recheck is not None:
                self._recheck.cancel()
                self._recheck = None
            events.close()
            self.source.close()
            if self.live is not None:
                self.live.close()

    def stop(self) -> None:
        if self._stopped is not None:
            self._stopped.set()


def status_once(ifaces: list[str] | None) -> WatchState:
    """`hotspotguard status` without --watch: the state now, from the watcher's own sources.
    Interfaces named that exist but are not shared connections make an ``error`` state whose
    reason says so."""
    source = source_for(ifaces)
    root = os.geteuid() == 0
    if root and not isinstance(source, NetworkManagerHotspots):
        state = assess(source)
        return _only_shared(state, ifaces) if ifaces else state
    nm = source if isinstance(source, NetworkManagerHotspots) else None

    async def read() -> WatchState:
        if nm is not None:
            await nm.watch.start()
        try:
            if root:
                return await asyncio.to_thread(assess, source)
            # a user: the helper's state (GetState), not a snapshot evaluated here
            from hotspotguard.system.helper_client import HelperClient

            helper = HelperClient(interactive=True)  # connects at the call: errors are states
            try:
                return await assess_through_helper(
                    source, lambda names: helper.call("GetState", names)
                )
            finally:
                await helper.close()
        finally:
            if nm is not None:
                await nm.watch.stop()

    state = asyncio.run(read())
    return _only_shared(state, ifaces) if ifaces and nm is None else state


def _only_shared(state: WatchState, ifaces: list[str]) -> WatchState:
    """`state` for interfaces named on the command line, unless one of them exists but is not
    a shared connection: NetworkManager's word where it is on the bus, else its firewall
    tables as the engine read them (a hotspot's ``nm_backend``)."""
    from hotspotguard.system.sharing import SharingUnknown, networkmanager_shares

    if state.state == "error" or not state.hotspots:
        return state
    try:
        shared = networkmanager_shares()
    except SharingUnknown as error:
        return WatchState("error", reason=str(error))
    if shared is None:
        shared = tuple(h["iface"] for h in state.hotspots if h.get("nm_backend"))
        source = "NetworkManager's firewall tables do not name it"
    else:
        source = f"NetworkManager shares: {', '.join(shared) or 'none'}"
    outside = [h["iface"] for h in state.hotspots if h["iface"] not in shared]
    if not outside:
        return state
    verb = "is not a shared connection" if len(outside) == 1 else "are not shared connections"
    if len(outside) > 1:
        source = source.replace("name it", "name them")
    return WatchState("error", reason=f"{' and '.join(outside)} {verb} now ({source})")


class HelperEvents:
    """The helper's ``Changed`` signal as the watcher's events: a user cannot subscribe to the
    kernel's ruleset notifications (it needs CAP_NET_ADMIN), the helper can.  Same shape as
    :class:`KernelEvents` (``attach``, ``close``, ``gaps``), plus :meth:`read_state`: the
    helper's ``GetState`` on the same connection, which the watcher evaluates with (the
    helper keeps its live model while the connection subscribes)."""

    def __init__(self, on_change: Callable[[Kinds], None]) -> None:
        self.on_change = on_change
        self.gaps: list[str] = []
        self._client: Any = None
        self._task: asyncio.Task[None] | None = None

    def attach(self, loop: asyncio.AbstractEventLoop) -> None:
        from hotspotguard.system.helper_client import HelperClient

        # interactive: polkit may ask (as for any read by the command line)
        self._client = HelperClient(interactive=True)
        self._task = loop.create_task(self._subscribe())

    async def _subscribe(self) -> None:
        from hotspotguard.system.helper_client import HelperRefused, HelperUnavailable

        # if it fails, the evaluations (through the same helper) say why
        with contextlib.suppress(HelperUnavailable, HelperRefused):
            await self._client.subscribe(lambda: self.on_change(frozenset({"helper"})))

    async def read_state(self, names: list[str]) -> object:
        """``GetState`` of these hotspots (none: the helper finds them), once subscribed."""
        if self._task is not None and not self._task.done():
            await asyncio.shield(self._task)  # one connection: its subscription comes first
        return await self._client.call("GetState", names)

    def close(self) -> None:
        if self._task is not None:
            self._task.cancel()
        if self._client is not None:
            with contextlib.suppress(RuntimeError):  # no loop left: the process is ending
                asyncio.get_running_loop().create_task(self._client.close())


def watch_lines(
    ifaces: list[str] | None,
    as_json: bool,
    out: Callable[[str], None] | None = None,
    prelisted: Prelisted | None = None,
    feed: RuleFeed | None = None,
) -> int:
    """``hotspotguard status --watch``: one line per change of state until Ctrl-C (exit 0).
    `prelisted`, `feed`: as root, the biggest table listed and nft's monitor started before
    this module was imported (see :class:`Watcher`)."""
    import signal

    def write(text: str) -> None:
        sys.stdout.write(text + "\n")
        sys.stdout.flush()

    emit = out or write

    def publish(state: WatchState) -> None:
        if as_json:
            emit(json.dumps(state.to_json()))
        else:
            emit(f"{time.strftime('%H:%M:%S')} {state.text()}")

    debug = None
    if os.environ.get("HOTSPOTGUARD_WATCH_DEBUG"):

        def debug(text: str) -> None:
            print(f"watch: {text}", file=sys.stderr, flush=True)

    def warn(text: str) -> None:
        print(f"hotspotguard: warning: {text}", file=sys.stderr, flush=True)

    # a user watches through the helper: its Changed signal, and captures it makes (polkit's
    # read action); root reads the kernel's notifications and the firewall directly
    events = None if os.geteuid() == 0 else HelperEvents
    watcher = Watcher(
        source_for(ifaces),
        publish,
        events=events,
        debug=debug,
        warn=warn,
        prelisted=prelisted,
        feed=feed,
    )
    del prelisted, feed  # the watcher's model takes them (it frees the listing as it parses it)

    def on_error(loop: asyncio.AbstractEventLoop, context: dict[str, Any]) -> None:
        error = context.get("exception")
        if os.environ.get("HOTSPOTGUARD_DEBUG"):
            loop.default_exception_handler(context)
        elif error is not None:
            warn(f"internal error: {type(error).__name__}: {_one_line(error)}")
        else:
            warn(str(context.get("message", "internal error")))

    async def main() -> None:
        loop = asyncio.get_running_loop()
        loop.set_exception_handler(on_error)
        for signum in (signal.SIGTERM, signal.SIGHUP):
            loop.add_signal_handler(signum, watcher.stop)
        await watcher.run()

    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(main())
    if debug is not None:
        debug(
            f"stats: events {watcher.stats.events} (+{watcher.stats.ignored} ignored), "
            f"evaluations {watcher.stats.evaluations}, "
            f"busy {watcher.stats.busy_seconds:.3f} s, published {watcher.stats.published}"
        )
    return 0
