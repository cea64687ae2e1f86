"""The one hub between the privileged helper and the widgets (no widget talks to the helper).

Data path: the hotspots come from NetworkManager over D-Bus (readable without root); their
state from the watcher's incremental model (watch.LiveAssessor) — in the helper as a user
(``GetState``, kept there while we subscribe), in-process as root. The result is published as
a dict shaped like :meth:`hotspotguard.watch.WatchState.to_json`. While a view wants the
ruleset and the traces (the chains dialog, :meth:`Controller.want_details`), a user's refresh
fetches the whole snapshot (``GetSnapshot``) instead, filtered to those hotspots and evaluated
in a worker thread by the pure engine; the last :class:`Report` and :class:`Ruleset` are kept
for it. ``Changed`` from the helper (root: kernel events) triggers a refresh, coalesced: one
refresh runs at a time and a burst of changes during it forces exactly one more.

asyncio runs inside Qt's loop (qasync); every coroutine here must run on that loop.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
from collections.abc import Awaitable, Callable, Coroutine
from typing import TYPE_CHECKING, Any, Protocol, TypeVar

from PySide6.QtCore import QCoreApplication, QObject, Signal

from hotspotguard import wording
from hotspotguard.ruleset import Ruleset
from hotspotguard.ui import texts
from hotspotguard.verdict import Report
from hotspotguard.watch import (
    Assessment,
    HotspotInfo,
    LiveAssessor,
    NetworkManagerHotspots,
    WatchState,
    state_from_helper,
)
from hotspotguard.watch import assess_document as watch_assess_document

if TYPE_CHECKING:
    from hotspotguard.system.helper_client import HelperUnavailable

T = TypeVar("T")

#: a refresh starts this long after the first Changed of a burst (the rest of it lands first)
SETTLE_SECONDS = 0.05


def tr(text: str) -> str:
    """Translate a controller message (context "Controller")."""
    return QCoreApplication.translate("Controller", text)


# --- the hotspots: NetworkManager's shared connections ---------------------------------------


class HotspotFeed(Protocol):
    """Where the applet's hotspots come from (watch.NetworkManagerHotspots, or fixed ones);
    ``hotspots()`` None means "the snapshot's own list"."""

    def hotspots(self) -> list[HotspotInfo] | None: ...

    @property
    def status(self) -> str | None:
        """None while the feed works; else why not, for a person."""
        ...

    async def follow(self, on_change: Callable[[], None]) -> None: ...

    async def unfollow(self) -> None: ...


class FixedHotspots:
    """Fixed hotspots (tests, ``--iface``), or None: the snapshot's own (NM's tables)."""

    def __init__(self, hotspots: list[HotspotInfo] | None = None) -> None:
        self._hotspots = hotspots

    def hotspots(self) -> list[HotspotInfo] | None:
        return None if self._hotspots is None else list(self._hotspots)

    @property
    def status(self) -> str | None:
        return None

    async def follow(self, on_change: Callable[[], None]) -> None:
        pass

    async def unfollow(self) -> None:
        pass


# --- evaluating a snapshot document (the worker thread's part) ------------------------------


def filter_document(doc: dict[str, Any], hotspots: list[HotspotInfo]) -> dict[str, Any]:
    """`doc` with exactly `hotspots` as its hotspots: the snapshot's entry (the kernel's
    addresses at capture time) where it has one, else NetworkManager's addresses."""
    captured = {h.get("iface"): h for h in doc.get("hotspots") or () if isinstance(h, dict)}
    chosen = [
        captured.get(h.iface) or {"iface": h.iface, "ipv4": list(h.ipv4), "ipv6": list(h.ipv6)}
        for h in hotspots
    ]
    return {**doc, "hotspots": chosen}


def assess_document(
    doc: dict[str, Any], hotspots: list[HotspotInfo] | None, status: str | None = None
) -> Assessment:
    """The state for a ready snapshot document (blocking; never raises).

    This is :func:`hotspotguard.watch.assess` minus the capture: the same states, reasons
    and hotspot objects (``explain --json``'s plus "state" and "connection")."""
    try:
        return _assess_document(doc, hotspots, status)
    except Exception as error:  # a parser surprise: say it, keep going
        line = (str(error).strip().splitlines() or [type(error).__name__])[0]
        reason = wording.Reason("not-evaluated", error=type(error).__name__, detail=line)
        return Assessment(WatchState("error", reason=reason))


def _assess_document(
    doc: dict[str, Any], hotspots: list[HotspotInfo] | None, status: str | None
) -> Assessment:
    if status:
        return Assessment(WatchState("error", reason=status))
    if hotspots is not None:
        if not hotspots:
            return Assessment(WatchState("no-hotspot", reason="no connection shares an interface"))
        doc = filter_document(doc, hotspots)
    return watch_assess_document(doc, {h.iface: h.connection for h in hotspots or ()})


# --- the helper: over D-Bus as a user, in-process as root -----------------------------------


class Backend(Protocol):
    """The helper's verbs as coroutines (errors: HelperUnavailable, HelperRefused or
    OperationError, each with a one-line message)."""

    async def get_snapshot(self) -> dict[str, Any]: ...
    async def preview_fix(self, iface: str, strategy: str) -> dict[str, Any]: ...
    async def apply_fix(
        self, iface: str, strategy: str, permanent: bool, generation: str
    ) -> dict[str, Any]: ...
    async def undo_fix(self, fix_id: str) -> dict[str, Any]: ...
    async def undo_all_fixes(self) -> list[dict[str, Any]]: ...
    async def list_fixes(self) -> list[dict[str, Any]]: ...
    async def set_permanent(self, fix_id: str, permanent: bool) -> dict[str, Any]: ...
    async def subscribe(self, callback: Callable[[], None]) -> None: ...
    async def close(self) -> None: ...


class HelperBackend:
    """A user: the helper over the system bus. Reads go on a connection that never asks
    for a password (a background refresh must not pop up a dialog); changes go on one that
    allows interactive authorisation, so the desktop's polkit agent asks."""

    def __init__(self, bus_address: str | None = None) -> None:
        from hotspotguard.system.helper_client import HelperClient

        self.reader = HelperClient(interactive=False, bus_address=bus_address)
        self.changer = HelperClient(interactive=True, bus_address=bus_address)

    async def get_snapshot(self) -> dict[str, Any]:
        return await self.reader.get_snapshot()

    async def get_state(self, hotspots: list[HotspotInfo] | None) -> Assessment:
        """The helper's state from its live model (``GetState``): no snapshot per change."""
        doc = await self.reader.get_state([h.iface for h in hotspots or ()])
        try:
            return Assessment(state_from_helper(doc, hotspots))
        except ValueError as error:
            from hotspotguard.system.helper_client import HelperRefused

            raise HelperRefused("Failed", f"the helper's answer is not a state: {error}") from None

    async def preview_fix(self, iface: str, strategy: str) -> dict[str, Any]:
        return await self.reader.preview_fix(iface, strategy)

    async def apply_fix(
        self, iface: str, strategy: str, permanent: bool, generation: str
    ) -> dict[str, Any]:
        return await self.changer.apply_fix(
            iface, strategy, permanent=permanent, generation=generation
        )

    async def undo_fix(self, fix_id: str) -> dict[str, Any]:
        return await self.changer.undo_fix(fix_id)

    async def undo_all_fixes(self) -> list[dict[str, Any]]:
        return await self.changer.undo_all_fixes()

    async def list_fixes(self) -> list[dict[str, Any]]:
        return await self.reader.list_fixes()

    async def set_permanent(self, fix_id: str, permanent: bool) -> dict[str, Any]:
        return await self.changer.set_permanent(fix_id, permanent)

    async def subscribe(self, callback: Callable[[], None]) -> None:
        await self.reader.subscribe(callback)

    async def close(self) -> None:
        await self.reader.close()
        await self.changer.close()


class InProcessBackend:
    """Root: the helper's own operations, each in a worker thread; changes are told by the
    kernel's notifications (as the helper's ``Changed`` would be)."""

    def __init__(
        self, operations: Any = None, *, kernel_events: bool = True, live: bool = False
    ) -> None:
        from hotspotguard.usecases.operations import Operations

        self.ops = operations if operations is not None else Operations()
        self.kernel_events = kernel_events
        self._events: Any = None
        #: `live`: states come from the watcher's incremental model (watch.LiveAssessor),
        #: not from a snapshot per change
        self.assessor: LiveAssessor | None = LiveAssessor() if live else None

    async def _run(self, fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        return await asyncio.get_running_loop().run_in_executor(None, lambda: fn(*args, **kwargs))

    async def get_snapshot(self) -> dict[str, Any]:
        return await self._run(self.ops.snapshot)

    async def preview_fix(self, iface: str, strategy: str) -> dict[str, Any]:
        return await self._run(self.ops.preview, iface, strategy)

    async def apply_fix(
        self, iface: str, strategy: str, permanent: bool, generation: str
    ) -> dict[str, Any]:
        return await self._run(
            self.ops.apply, iface, strategy, permanent=permanent, uid=0, generation=generation
        )

    async def undo_fix(self, fix_id: str) -> dict[str, Any]:
        return await self._run(self.ops.undo, fix_id, uid=0)

    async def undo_all_fixes(self) -> list[dict[str, Any]]:
        return await self._run(self.ops.undo_all, uid=0)

    async def list_fixes(self) -> list[dict[str, Any]]:
        return await self._run(self.ops.list_fixes)

    async def set_permanent(self, fix_id: str, permanent: bool) -> dict[str, Any]:
        return await self._run(self.ops.set_permanent, fix_id, permanent, uid=0)

    async def subscribe(self, callback: Callable[[], None]) -> None:
        if not self.kernel_events or self._events is not None:
            return
        if self.assessor is not None:
            self.assessor.subscribe(asyncio.get_running_loop(), callback)
            return
        from hotspotguard.system.netlink import KernelEvents

        self._events = KernelEvents(lambda _kinds: callback())
        self._events.attach(asyncio.get_running_loop())

    async def close(self) -> None:
        if self._events is not None:
            self._events.close()
            self._events = None
        if self.assessor is not None:
            self.assessor.close()


def default_backend() -> Backend:
    """In-process as root, the D-Bus helper otherwise."""
    return InProcessBackend(live=True) if os.geteuid() == 0 else HelperBackend()


# --- errors in words -------------------------------------------------------------------------


def helper_missing(error: BaseException) -> bool:
    """The helper is not installed (not merely slow or refusing)."""
    from hotspotguard.system.helper_client import HelperUnavailable

    return isinstance(error, HelperUnavailable) and error.cause == "not-installed"


def helper_install_command() -> str:
    """The command that installs the helper, with the path sudo needs (its secure_path does
    not reach a virtualenv or ~/.local/bin)."""
    import shutil
    import sys
    from pathlib import Path

    beside = Path(sys.executable).parent / "hotspotguard-helper"
    found = shutil.which("hotspotguard-helper") or (str(beside) if beside.exists() else None)
    return f"sudo {found or 'hotspotguard-helper'} install-system"


def _unreachable(error: HelperUnavailable) -> str:
    """Why the helper cannot be reached, in the person's language; what the bus said — its own
    words — quoted after it."""
    sentence = {
        "no-answer": tr("The privileged helper did not answer."),
        "no-bus": tr("There is no system bus: the helper needs D-Bus (package dbus)."),
        "bus-gone": tr("The system bus went away."),
    }.get(error.cause)
    if sentence is None:
        return tr("The privileged helper cannot be reached.")
    return f"{sentence} “{error.detail}”" if error.detail else sentence


def error_sentence(error: BaseException) -> str:
    """One sentence for a person, never a traceback."""
    from hotspotguard.system.helper_client import HelperRefused, HelperUnavailable
    from hotspotguard.usecases.operations import OperationError

    text = (str(error).strip().splitlines() or [""])[0]
    if isinstance(error, HelperRefused):
        if error.kind == "AccessDenied":
            return tr("Not allowed: the system's policy refused this change.")
        if error.kind == "InteractiveAuthorizationRequired":
            return tr("This needs your password, but no authentication agent is running.")
        if error.kind == "Stale":
            return tr("The firewall changed meanwhile: look at the plan again.")
        if error.fields is not None:  # the planner's reason, structured, through the helper
            return wording.reason_sentence(error.fields, texts.qt_tr)
        return text or tr("The helper refused: {kind}.").format(kind=error.kind)
    if isinstance(error, OperationError):
        if error.kind == "Stale":
            return tr("The firewall changed meanwhile: look at the plan again.")
        reason = wording.reason_of(error)
        if isinstance(reason, wording.Reason):  # in-process: the planner's reason, structured
            return wording.reason_sentence(wording.reason_fields(reason), texts.qt_tr)
        return text
    if isinstance(error, HelperUnavailable):
        if helper_missing(error):
            return tr("the part of Hotspot Guard that reads the firewall is not installed")
        return _unreachable(error)
    if isinstance(error, asyncio.TimeoutError):
        return tr("The helper did not answer in time.")
    return tr("Something went wrong: {what}").format(what=text or type(error).__name__)


# --- the controller --------------------------------------------------------------------------


class Controller(QObject):
    """The hub: owns the backend and the hotspot feed, publishes states and fix results."""

    stateChanged = Signal(object)  # dict shaped like WatchState.to_json()
    fixesChanged = Signal(object)  # list of list_fixes records
    previewReady = Signal(object)  # a PreviewFix result
    busy = Signal(bool)
    fixFinished = Signal(object)  # an ApplyFix / UndoFix result
    failed = Signal(str)  # one sentence

    def __init__(
        self,
        backend: Backend | None = None,
        hotspots: HotspotFeed | None = None,
        parent: QObject | None = None,
        *,
        settle: float = SETTLE_SECONDS,
    ) -> None:
        super().__init__(parent)
        self.backend: Backend = backend or default_backend()
        self.feed: HotspotFeed = hotspots or NetworkManagerHotspots()
        self.settle = settle
        self.state: dict[str, Any] | None = None
        self.report: Report | None = None
        self.ruleset: Ruleset | None = None
        self.fixes: list[dict[str, Any]] = []
        self.preview_errors: dict[tuple[str, str], str] = {}
        #: the last look at the firewall failed because the helper is not installed
        self.helper_missing = False
        self.evaluations = 0
        self._tasks: set[asyncio.Future[Any]] = set()
        self._refreshing = False
        self._dirty = False
        self._timer: asyncio.TimerHandle | None = None
        self._busy_depth = 0
        self._started = False
        self._refreshed = asyncio.Event()
        #: views shown that need the ruleset and traces (the chains dialog): while one is,
        #: a refresh through the helper reads the whole snapshot, not only the state
        self._detail_views: set[int] = set()

    # -- tasks --
    def spawn(self, coroutine: Coroutine[Any, Any, T]) -> asyncio.Future[T]:
        """Run `coroutine` on the loop, keeping a reference until it is done."""
        task = asyncio.ensure_future(coroutine)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return task

    async def idle(self) -> None:
        """Wait until no refresh or action is pending (for tests and shutdown)."""
        while self._tasks or self._refreshing or self._timer is not None:
            await asyncio.sleep(0.005)

    # -- life --
    def start(self) -> None:
        """Slot: start following (see :meth:`start_async`)."""
        self.spawn(self.start_async())

    def stop(self) -> None:
        """Slot: stop following and let go of the helper (see :meth:`close`)."""
        self.spawn(self.close())

    async def start_async(self) -> None:
        """Follow the hotspots and the helper's changes; publish the first state."""
        if self._started:
            return
        self._started = True
        await self.feed.follow(self.request_refresh)
        with contextlib.suppress(Exception):  # the first refresh says what is wrong
            await self.backend.subscribe(self.request_refresh)
        await asyncio.gather(self.refresh_now(), self.refresh_fixes())

    async def close(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        current = asyncio.current_task()
        for task in list(self._tasks):
            if task is not current:
                task.cancel()
        with contextlib.suppress(Exception):
            await self.feed.unfollow()
        with contextlib.suppress(Exception):
            await self.backend.close()

    def want_details(self, view: object, wanted: bool) -> None:
        """`view` (the chains dialog) is shown and needs :attr:`ruleset` and :attr:`report`
        (or no longer: hidden)."""
        if not wanted:
            self._detail_views.discard(id(view))
        elif id(view) not in self._detail_views:
            self._detail_views.add(id(view))
            if self.ruleset is None:
                self.request_refresh()

    # -- refreshing (coalesced) --
    def request_refresh(self) -> None:
        """Something changed (a slot; call from the loop's thread): refresh soon, once."""
        self._dirty = True
        if self._refreshing or self._timer is not None:
            return
        loop = asyncio.get_event_loop()
        self._timer = loop.call_later(self.settle, self._fire)

    def _fire(self) -> None:
        self._timer = None
        self.spawn(self.refresh_now())

    async def refresh_now(self) -> None:
        """Fetch the snapshot, evaluate it in a worker thread, publish the state."""
        if self._refreshing:  # the running refresh goes round once more; wait for it
            self._dirty = True
            await self._refreshed.wait()
            return
        self._refreshing = True
        self._refreshed.clear()
        try:
            while True:
                self._dirty = False
                assessment = await self._assess()
                self.evaluations += 1
                self._publish(assessment)
                if not self._dirty:
                    break
        finally:
            self._refreshing = False
            self._refreshed.set()

    async def _assess(self) -> Assessment:
        status = self.feed.status
        if status:
            return Assessment(WatchState("error", reason=status))
        hotspots = self.feed.hotspots()
        if hotspots is not None and not hotspots:
            return Assessment(WatchState("no-hotspot", reason="no connection shares an interface"))
        assessor = getattr(self.backend, "assessor", None)
        if assessor is not None:  # root, in-process: the watcher's incremental model
            return await assessor.assess(hotspots)  # type: ignore[no-any-return]
        get_state = getattr(self.backend, "get_state", None)
        try:
            if get_state is not None and not self._detail_views:  # the helper's live model
                assessment: Assessment = await get_state(hotspots)
                self.helper_missing = False
                return assessment
            doc = await self.backend.get_snapshot()
        except Exception as error:
            self.helper_missing = helper_missing(error)
            # what can be said without the firewall: the shared connections themselves
            known = tuple(
                {"iface": h.iface, "state": "unknown", "connection": h.connection.to_json()}
                for h in hotspots or ()
                if h.connection is not None
            )
            return Assessment(WatchState("error", hotspots=known, reason=error_sentence(error)))
        self.helper_missing = False
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(None, assess_document, doc, hotspots, None)

    def _publish(self, assessment: Assessment) -> None:
        if assessment.report is not None:
            self.report, self.ruleset = assessment.report, assessment.ruleset
        elif assessment.state.state != "error":
            self.report = self.ruleset = None
        self.state = assessment.state.to_json()
        self.stateChanged.emit(self.state)

    async def refresh_fixes(self) -> list[dict[str, Any]]:
        """Re-read what hotspotguard has applied; publishes fixesChanged."""
        try:
            self.fixes = await self.backend.list_fixes()
        except Exception as error:
            self.failed.emit(error_sentence(error))
            return self.fixes
        self.fixesChanged.emit(self.fixes)
        return self.fixes

    # -- actions --
    async def _action(self, work: Awaitable[T]) -> T | None:
        self._busy_depth += 1
        if self._busy_depth == 1:
            self.busy.emit(True)
        try:
            return await work
        except asyncio.CancelledError:
            raise
        except Exception as error:
            self.failed.emit(error_sentence(error))
            return None
        finally:
            self._busy_depth -= 1
            if self._busy_depth == 0:
                self.busy.emit(False)

    async def preview_fix(
        self, iface: str, strategy: str = "", *, quiet: bool = False
    ) -> dict[str, Any] | None:
        """The helper's plan for `strategy` on `iface` (None after `failed`). `quiet`: for
        background look-ups (the status window's trade-offs): no busy, no failed, no raise."""
        if quiet:
            try:
                result: dict[str, Any] | None = await self.backend.preview_fix(iface, strategy)
            except Exception as error:
                self.preview_errors[(iface, strategy)] = error_sentence(error)
                return None
        else:
            result = await self._action(self.backend.preview_fix(iface, strategy))
        if result is not None:
            self.preview_errors.pop((iface, strategy), None)
            self.previewReady.emit(result)
        return result

    async def apply_fix(
        self, iface: str, strategy: str, permanent: bool = False, generation: str = ""
    ) -> dict[str, Any] | None:
        """Apply a fix (the polkit agent may ask); then the state and the fixes are re-read."""
        result = await self._action(self.backend.apply_fix(iface, strategy, permanent, generation))
        await self._after_change(result)
        return result

    async def undo_fix(self, fix_id: str = "") -> dict[str, Any] | None:
        """Undo one fix ("": the most recent)."""
        result = await self._action(self.backend.undo_fix(fix_id))
        await self._after_change(result)
        return result

    async def undo_all_fixes(self) -> list[dict[str, Any]] | None:
        result = await self._action(self.backend.undo_all_fixes())
        await self._after_change(result)
        return result

    async def set_permanent(self, fix_id: str, permanent: bool) -> dict[str, Any] | None:
        result = await self._action(self.backend.set_permanent(fix_id, permanent))
        if result is not None:
            await self.refresh_fixes()
        return result

    async def _after_change(self, result: object) -> None:
        if result is None:
            return
        await asyncio.gather(self.refresh_now(), self.refresh_fixes())
        self.fixFinished.emit(result)

    # -- slots for widgets that do not await --
    def refresh(self) -> None:
        self.request_refresh()

    def request_preview(self, iface: str, strategy: str = "") -> None:
        self.spawn(self.preview_fix(iface, strategy))

    def fix(self, iface: str, strategy: str = "", permanent: bool = False) -> None:
        """Slot: apply a fix without a preview (the helper plans it on the spot)."""
        self.spawn(self.apply_fix(iface, strategy, permanent))

    def undo(self, fix_id: str = "") -> None:
        """Slot: undo one fix ("": the most recent)."""
        self.spawn(self.undo_fix(fix_id))

    def undo_all(self) -> None:
        self.spawn(self.undo_all_fixes())

    # -- reading the kept state --
    def hotspot(self, iface: str) -> dict[str, Any] | None:
        for item in (self.state or {}).get("hotspots") or ():
            if item.get("iface") == iface:
                found: dict[str, Any] = item
                return found
        return None
