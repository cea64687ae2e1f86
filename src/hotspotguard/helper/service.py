"""The privileged helper as a D-Bus system service (the udisks / blueman-mechanism pattern).

A root process, started by D-Bus activation, owning ``io.github.hotspotguard.Helper1``.  Every
call goes the same way, in this order:

1. the fixed dispatch table, keyed by (interface, member, signature): anything else is
   ``UnknownMethod`` / ``UnknownObject`` / ``InvalidArgs``;
2. the arguments are validated (allow-lists, length caps): ``Error.InvalidArgument``;
3. one authorisation choke point, :meth:`HelperService._authorize`: polkit's
   ``CheckAuthorization`` for the caller's unique bus name (flag 1 only if the message allows
   interactive authorisation): ``AccessDenied`` / ``InteractiveAuthorizationRequired``;
4. the operation, in the single worker thread (operations block; one at a time).

Results are JSON text.  A ``OperationError`` becomes ``io.github.hotspotguard.Error.<Kind>`` with
its one-line message; anything else is logged (stderr: the journal) and the caller only gets
``Error.Failed``.  The service exits after ``idle_timeout`` seconds with no call in flight and
no subscriber.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import json
import logging
import os
import re
import struct
import sys
from collections import OrderedDict
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Final

from dbus_next._private.unmarshaller import MarshallerStreamEndError, Unmarshaller
from dbus_next.constants import BusType, MessageFlag, MessageType
from dbus_next.errors import DBusError
from dbus_next.message import Message
from dbus_next.signature import SignatureTree, Variant

from hotspotguard import wording
from hotspotguard.system.dbusio import MessageBus
from hotspotguard.system.netlink import KernelEvents, RulesetChanges
from hotspotguard.usecases.arguments import (
    MAX_ARGUMENT,
    OperationError,
    validate_fix_id,
    validate_iface,
    validate_strategy,
)
from hotspotguard.watch import HotspotInfo, LiveAssessor

if TYPE_CHECKING:  # imported at the first operation (see HelperService.ops)
    from hotspotguard.usecases.operations import Operations

BUS_NAME: Final = "io.github.hotspotguard.Helper1"
OBJECT_PATH: Final = "/io/github/hotspotguard/Helper1"
INTERFACE: Final = "io.github.hotspotguard.Helper1"
ERROR_PREFIX: Final = "io.github.hotspotguard.Error."

ACTION_READ: Final = "io.github.hotspotguard.read"
ACTION_FIX: Final = "io.github.hotspotguard.fix"
ACTION_PERSIST: Final = "io.github.hotspotguard.persist"
ACTION_UNDO_OTHERS: Final = "io.github.hotspotguard.undo-others"

IDLE_TIMEOUT: Final = 30.0
CLEAN_ENV: Final = {"PATH": "/usr/sbin:/usr/bin:/sbin:/bin", "LC_ALL": "C.UTF-8"}

# the Changed signal: after QUIET s without kernel events, never closer than MIN_GAP s to the
# previous one, at most MAX_DELAY s after the first pending event
QUIET: Final = 0.010
MIN_GAP: Final = 0.050
MAX_DELAY: Final = 1.0

DBUS_ERROR: Final = "org.freedesktop.DBus.Error."
UNKNOWN_METHOD: Final = DBUS_ERROR + "UnknownMethod"
UNKNOWN_OBJECT: Final = DBUS_ERROR + "UnknownObject"
UNKNOWN_INTERFACE: Final = DBUS_ERROR + "UnknownInterface"
INVALID_ARGS: Final = DBUS_ERROR + "InvalidArgs"
ACTION_WORDS: Final = {
    ACTION_READ: "read the firewall",
    ACTION_FIX: "change the firewall",
    ACTION_PERSIST: "keep a fix after reboot",
    ACTION_UNDO_OTHERS: "undo or change another user's fix",
}
ACCESS_DENIED: Final = DBUS_ERROR + "AccessDenied"
LIMITS_EXCEEDED: Final = DBUS_ERROR + "LimitsExceeded"
# no call of ours is larger than a few hundred bytes: a larger message is skipped unread (its
# header is read for the answer, its body discarded in chunks), never decoded into memory
MAX_MESSAGE_BYTES: Final = 64 * 1024
MAX_HEADER_BYTES: Final = 4096
SKIP_CHUNK: Final = 64 * 1024
# per caller (a uid, whatever its connections) and lane: one call served at a time (polkit is
# asked within it), at most MAX_QUEUED more waiting; beyond that a call is refused at once
MAX_QUEUED: Final = 8
MAX_HOTSPOTS: Final = 16  # interfaces in one GetState
UID_CACHE: Final = 512  # bus names whose uid is remembered
INTERACTIVE_REQUIRED: Final = DBUS_ERROR + "InteractiveAuthorizationRequired"

POLKIT_NAME: Final = "org.freedesktop.PolicyKit1"
POLKIT_PATH: Final = "/org/freedesktop/PolicyKit1/Authority"
POLKIT_INTERFACE: Final = "org.freedesktop.PolicyKit1.Authority"
POLKIT_ALLOW_USER_INTERACTION: Final = 1

DBUS_NAME: Final = "org.freedesktop.DBus"
DBUS_PATH: Final = "/org/freedesktop/DBus"
REQUEST_NAME_DO_NOT_QUEUE: Final = 4
REQUEST_NAME_PRIMARY_OWNER: Final = 1

GENERATION = re.compile(r"[A-Za-z0-9._:-]{0,64}")  # always matched in full
MAX_MESSAGE: Final = 400  # characters of an error message sent to a caller

log = logging.getLogger("hotspotguard.helper")

INTROSPECTION: Final = f"""\
<!DOCTYPE node PUBLIC "-//freedesktop//DTD D-BUS Object Introspection 1.0//EN"
 "http://www.freedesktop.org/standards/dbus/1.0/introspect.dtd">
<node name="{OBJECT_PATH}">
  <interface name="{INTERFACE}">
    <method name="GetSnapshot"><arg name="snapshot" type="s" direction="out"/></method>
    <method name="GetState">
      <arg name="ifaces" type="as" direction="in"/>
      <arg name="state" type="s" direction="out"/>
    </method>
    <method name="PreviewFix">
      <arg name="iface" type="s" direction="in"/>
      <arg name="strategy" type="s" direction="in"/>
      <arg name="preview" type="s" direction="out"/>
    </method>
    <method name="ApplyFix">
      <arg name="iface" type="s" direction="in"/>
      <arg name="strategy" type="s" direction="in"/>
      <arg name="permanent" type="b" direction="in"/>
      <arg name="generation" type="s" direction="in"/>
      <arg name="fix" type="s" direction="out"/>
    </method>
    <method name="UndoFix">
      <arg name="id" type="s" direction="in"/>
      <arg name="fix" type="s" direction="out"/>
    </method>
    <method name="UndoAllFixes"><arg name="fixes" type="s" direction="out"/></method>
    <method name="ListFixes"><arg name="fixes" type="s" direction="out"/></method>
    <method name="SetPermanent">
      <arg name="id" type="s" direction="in"/>
      <arg name="permanent" type="b" direction="in"/>
      <arg name="fix" type="s" direction="out"/>
    </method>
    <method name="Subscribe"/>
    <signal name="Changed"/>
  </interface>
  <interface name="org.freedesktop.DBus.Introspectable">
    <method name="Introspect"><arg name="xml" type="s" direction="out"/></method>
  </interface>
  <interface name="org.freedesktop.DBus.Peer">
    <method name="Ping"/>
    <method name="GetMachineId"><arg name="machine_uuid" type="s" direction="out"/></method>
  </interface>
</node>
"""


class BoundedUnmarshaller(Unmarshaller):
    """dbus-next's reader with a size cap checked on the fixed header, before the message is
    buffered: an oversized message's body is read and dropped in chunks, and it comes out with
    an empty body and `oversized` set (a reply to one of our calls: as an error)."""

    def __init__(self, stream: Any, sock: Any = None, limit: int = MAX_MESSAGE_BYTES) -> None:
        super().__init__(stream, sock)
        self.limit = limit
        self.skipping: int | None = None  # body bytes still to drop
        self.pending: Message | None = None

    def unmarshall(self) -> Message | None:
        try:
            if self.skipping is None:
                self.offset = 0
                self.read(16, prefetch=True)
                order = "<" if self.buf[0] == ord("l") else ">"
                body_len, _serial, header_len = struct.unpack_from(order + "III", self.buf, 4)
                header_end = 16 + header_len + (-header_len % 8)
                if header_end + body_len <= self.limit:
                    return super().unmarshall()  # type: ignore[no-any-return]
                if header_len > MAX_HEADER_BYTES:  # not even its sender is read: no answer
                    self.pending = _dropped(header_end + body_len)
                    self.skipping = header_end - 16 + body_len
                else:
                    self.read(header_end, prefetch=True)
                    self.pending = self._header_only(header_end + body_len)
                    self.skipping = body_len
            while self.skipping > 0:
                self.buf = bytearray()
                self.offset = 0
                want = min(self.skipping, SKIP_CHUNK)
                try:
                    self.read(want)
                except MarshallerStreamEndError:
                    self.skipping -= len(self.buf)
                    self.buf = bytearray()
                    raise
                self.skipping -= want
            self.buf = bytearray()
            self.message = self.pending
            return self.pending
        except MarshallerStreamEndError:
            return None

    def _header_only(self, size: int) -> Message:
        self.endian = self.buf[0]
        self.offset = 12
        fields = {
            int(code): variant.value
            for code, variant in self.read_argument(SignatureTree._get("a(yv)").types[0])
        }
        kind = MessageType(self.buf[1])
        error_name = fields.get(4)
        if kind in (MessageType.METHOD_RETURN, MessageType.ERROR):
            kind, error_name = MessageType.ERROR, LIMITS_EXCEEDED
        header: dict[str, Any] = {
            "path": fields.get(1),
            "interface": fields.get(2),
            "member": fields.get(3),
            "error_name": error_name,
            "reply_serial": fields.get(5),
            "destination": fields.get(6),
            "sender": fields.get(7),
            "message_type": kind,
            "flags": MessageFlag(self.buf[2]),
            "serial": struct.unpack_from("<I" if self.buf[0] == ord("l") else ">I", self.buf, 8)[0],
        }
        message = Message(**header)
        setattr(message, "oversized", size)  # noqa: B010  # dbus-next's Message has no slot
        return message


def _dropped(size: int) -> Message:
    """A stand-in for a message skipped unread (a signal nobody handles)."""
    message = Message(
        message_type=MessageType.SIGNAL,
        path="/",
        interface="io.github.hotspotguard.Dropped",
        member="Dropped",
    )
    setattr(message, "oversized", size)  # noqa: B010
    return message


class HelperBus(MessageBus):
    """The helper's bus connection: messages are size-checked before they are decoded."""

    def _create_unmarshaller(self) -> BoundedUnmarshaller:
        sock = self._sock if self._negotiate_unix_fd else None
        return BoundedUnmarshaller(self._stream, sock)


@dataclass
class _Caller:
    """One caller's (uid's) calls: the one being served holds `turn`; `calls` counts it and
    those waiting."""

    turn: asyncio.Lock = field(default_factory=asyncio.Lock)
    calls: int = 0


class Refused(Exception):
    """A call answered with a D-Bus error (`name`) and a one-line message."""

    def __init__(self, name: str, message: str) -> None:
        super().__init__(message)
        self.name = name


@dataclass(frozen=True)
class Call:
    """One validated method call: who sent it, whether they allow a password prompt, its args."""

    msg: Message
    sender: str
    interactive: bool
    args: tuple[Any, ...]


Validator = Callable[[list[Any]], tuple[Any, ...]]


@dataclass(frozen=True)
class Method:
    """One method of the surface: its argument check, the polkit action every call of it needs,
    its arguments' names (polkit's details, for admins' rules) and its handler."""

    validate: Validator
    action: str
    arg_names: tuple[str, ...]
    handler: Callable[[Call], Awaitable[Any]]
    lane: str = "work"  # per caller, one call at a time per lane ("list": cheap reads)

    def details(self, args: tuple[Any, ...]) -> dict[str, str]:
        return {
            name: str(value).lower() if isinstance(value, bool) else str(value)
            for name, value in zip(self.arg_names, args, strict=False)
        }


def _capped(value: Any, what: str) -> str:
    if not isinstance(value, str) or len(value) > MAX_ARGUMENT:
        raise OperationError("InvalidArgument", f"{what} is too long (at most {MAX_ARGUMENT})")
    return value


def _no_args(body: list[Any]) -> tuple[Any, ...]:
    return ()


def _iface_strategy(body: list[Any]) -> tuple[Any, ...]:
    """(iface, strategy): an existing interface (its existence is no secret: any user can
    list interfaces); the strategy "" asks for the recommended one."""
    iface = validate_iface(_capped(body[0], "the interface name"))
    strategy = _capped(body[1], "the strategy")
    return iface, validate_strategy(strategy) if strategy else ""


def _hotspot_names(body: list[Any]) -> tuple[Any, ...]:
    """(names,): at most MAX_HOTSPOTS interface names by the kernel's rules, space-separated
    (no name holds a space; polkit's details show them so); a name that does not exist (any
    more) is said in the state, not refused; none: NetworkManager's firewall tables say."""
    names = body[0]
    if not isinstance(names, list) or len(names) > MAX_HOTSPOTS:
        raise OperationError("InvalidArgument", f"at most {MAX_HOTSPOTS} interfaces at once")
    checked = [validate_iface(_capped(n, "the interface name"), must_exist=False) for n in names]
    if len(set(checked)) != len(checked):
        raise OperationError("InvalidArgument", "an interface is named twice")
    return (" ".join(checked),)


def _apply_args(body: list[Any]) -> tuple[Any, ...]:
    iface, strategy = _iface_strategy(body)
    generation = _capped(body[3], "the generation")
    if not GENERATION.fullmatch(generation):
        raise OperationError("InvalidArgument", "the generation is not one a preview gave")
    return iface, strategy, bool(body[2]), generation


def _fix_id_or_latest(body: list[Any]) -> tuple[Any, ...]:
    text = _capped(body[0], "the fix id")
    return (validate_fix_id(text) if text else "",)


def _fix_id_bool(body: list[Any]) -> tuple[Any, ...]:
    return validate_fix_id(_capped(body[0], "the fix id")), bool(body[1])


def _one_line(text: str) -> str:
    line = (text.strip().splitlines() or [""])[0].strip()
    return line if len(line) <= MAX_MESSAGE else line[: MAX_MESSAGE - 1] + "…"


def _to_json(result: Any) -> str:
    # ASCII only: always a valid D-Bus string (no NUL, no lone surrogate)
    return json.dumps(result, ensure_ascii=True, separators=(",", ":"), allow_nan=False)


class HelperService:
    """The helper on one bus connection; :meth:`run` serves until idle (or the bus goes)."""

    def __init__(
        self,
        bus: MessageBus,
        operations: Operations | None = None,
        *,
        idle_timeout: float = IDLE_TIMEOUT,
        events_factory: Callable[[Callable[[frozenset[str]], None]], KernelEvents] | None = None,
    ) -> None:
        self.bus = bus
        self._ops = operations
        self.idle_timeout = idle_timeout
        self._events_factory = events_factory or (lambda cb: KernelEvents(cb))
        self._events: KernelEvents | None = None
        # the firewall's incremental model (watch.LiveAssessor), kept while someone subscribes:
        # GetState costs what the change since the last one is, not a full capture
        self._live: LiveAssessor | None = None
        self._worker = concurrent.futures.ThreadPoolExecutor(1, "hotspotguard-op")
        self._loop = asyncio.get_running_loop()
        self._inflight = 0
        self._subscribers: set[str] = set()
        self._idle: asyncio.TimerHandle | None = None
        self._last_work = self._loop.time()  # only authorised calls count as work
        self._callers: dict[tuple[int, str], _Caller] = {}
        self._uids: OrderedDict[str, asyncio.Future[int]] = OrderedDict()
        self._done: asyncio.Future[None] = self._loop.create_future()
        self._stopping = False
        self._tasks: set[asyncio.Task[None]] = set()
        self._emit_handle: asyncio.TimerHandle | None = None
        self._first_pending: float | None = None
        self._last_emit = -MIN_GAP
        self.signals_sent = 0
        D = INTERFACE
        # the fixed surface: (interface, member, signature) -> how its arguments are checked,
        # the polkit action every call needs (asked in _serve, before the handler runs; a
        # handler may ask for a further one), the arguments' names for polkit's details
        self._table: dict[tuple[str, str, str], Method] = {
            (D, "GetSnapshot", ""): Method(_no_args, ACTION_READ, (), self._get_snapshot),
            (D, "GetState", "as"): Method(
                _hotspot_names, ACTION_READ, ("ifaces",), self._get_state, "list"
            ),
            (D, "PreviewFix", "ss"): Method(
                _iface_strategy, ACTION_READ, ("iface", "strategy"), self._preview_fix
            ),
            (D, "ApplyFix", "ssbs"): Method(
                _apply_args, ACTION_FIX, ("iface", "strategy", "permanent"), self._apply_fix
            ),
            (D, "UndoFix", "s"): Method(_fix_id_or_latest, ACTION_FIX, ("fix_id",), self._undo_fix),
            (D, "UndoAllFixes", ""): Method(_no_args, ACTION_FIX, (), self._undo_all_fixes),
            (D, "ListFixes", ""): Method(_no_args, ACTION_READ, (), self._list_fixes, "list"),
            (D, "SetPermanent", "sb"): Method(
                _fix_id_bool, ACTION_PERSIST, ("fix_id", "permanent"), self._set_permanent
            ),
            (D, "Subscribe", ""): Method(_no_args, ACTION_READ, (), self._subscribe, "list"),
        }
        self._members = {(iface, member) for iface, member, _ in self._table}

    @property
    def ops(self) -> Operations:
        """The use cases, made at their first call, in the worker (call it there): a helper
        that has only read the state has not loaded the engine's planner and fixes, so its
        first full reading of a big firewall comes while it holds little (watch.LiveAssessor)."""
        if self._ops is None:
            from hotspotguard.usecases.operations import Operations

            self._ops = Operations()
        return self._ops

    # -- life cycle --
    async def run(self) -> int:
        """Own the name (or give up: exit status 1), then serve until idle; 0 on idle exit."""
        self.bus.add_message_handler(self._on_message)
        reply = await self.bus.call(
            Message(
                destination=DBUS_NAME,
                path=DBUS_PATH,
                interface=DBUS_NAME,
                member="RequestName",
                signature="su",
                body=[BUS_NAME, REQUEST_NAME_DO_NOT_QUEUE],
            )
        )
        if reply is None or reply.message_type != MessageType.METHOD_RETURN:
            text = reply.body[0] if reply is not None and reply.body else "no reply"
            log.error("cannot own %s: %s", BUS_NAME, _one_line(str(text)))
            return 1
        if reply.body[0] != REQUEST_NAME_PRIMARY_OWNER:
            log.error("%s is already owned: another helper is running", BUS_NAME)
            return 1
        self._arm_idle()
        disconnected = asyncio.ensure_future(self.bus.wait_for_disconnect())
        try:
            await asyncio.wait({disconnected, self._done}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            disconnected.cancel()
            live = self._live
            self._stop_events()
            self._worker.shutdown(wait=True, cancel_futures=True)
            if live is not None:  # its close may have been cancelled with the queue
                live.close()
        return 0

    def _arm_idle(self) -> None:
        if self._idle is not None:
            self._idle.cancel()
            self._idle = None
        if self._inflight == 0 and not self._subscribers and not self._stopping:
            due = self._last_work + self.idle_timeout
            self._idle = self._loop.call_at(max(due, self._loop.time()), self._idle_exit)

    def _idle_exit(self) -> None:
        self._idle = None
        if self._inflight or self._subscribers or self._stopping:
            return
        self._stopping = True
        self._spawn(self._release_and_stop())

    async def _release_and_stop(self) -> None:
        """Give the name back (a new call activates a new helper), answer what already came."""
        try:
            await self.bus.call(
                Message(
                    destination=DBUS_NAME,
                    path=DBUS_PATH,
                    interface=DBUS_NAME,
                    member="ReleaseName",
                    signature="s",
                    body=[BUS_NAME],
                )
            )
            await asyncio.sleep(0.05)
            while self._inflight:
                await asyncio.sleep(0.01)
        finally:
            if not self._done.done():
                self._done.set_result(None)

    def _spawn(self, coro: Awaitable[None]) -> None:
        task: asyncio.Task[None] = asyncio.ensure_future(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    # -- dispatch --
    def _on_message(self, msg: Message) -> Message | bool | None:
        size = getattr(msg, "oversized", None)
        if size is not None:
            if msg.message_type != MessageType.METHOD_CALL or msg.sender is None:
                return None if msg.message_type == MessageType.SIGNAL else False
            return self._error(
                msg,
                LIMITS_EXCEEDED,
                f"the message is too large ({size} bytes; at most "
                f"{MAX_MESSAGE_BYTES}): nothing in it was read",
            )
        if msg.message_type == MessageType.SIGNAL:
            self._on_signal(msg)
            return None
        if msg.message_type != MessageType.METHOD_CALL:
            return None  # replies to our own calls: dbus-next routes them
        if msg.sender is None:
            return True
        try:
            return self._dispatch(msg)
        except Exception:
            log.exception("dispatching %s.%s", msg.interface, msg.member)
            return self._error(msg, ERROR_PREFIX + "Failed", "internal error in the helper")

    def _error(self, msg: Message, name: str, text: str) -> Message | bool:
        """An error reply: the one-line message, and where the text is a `wording.Reason`, its
        code and parameters as JSON in a second string (a client words it in its person's
        language; one reading only the first string loses nothing)."""
        if msg.flags & MessageFlag.NO_REPLY_EXPECTED:
            return True
        if not isinstance(text, wording.Reason):
            return Message.new_error(msg, name, _one_line(text))
        return Message(
            message_type=MessageType.ERROR,
            reply_serial=msg.serial,
            destination=msg.sender,
            error_name=name,
            signature="ss",
            body=[_one_line(text), json.dumps(wording.reason_fields(text))],
        )

    def _reply(
        self, msg: Message, signature: str = "", body: list[Any] | None = None
    ) -> Message | bool:
        if msg.flags & MessageFlag.NO_REPLY_EXPECTED:
            return True
        reply: Message = Message.new_method_return(msg, signature, body or [])
        return reply

    def _dispatch(self, msg: Message) -> Message | bool:
        interface, member, signature = msg.interface or "", msg.member or "", msg.signature or ""
        if interface == "org.freedesktop.DBus.Introspectable":
            if member == "Introspect" and signature == "":
                return self._reply(msg, "s", [self._introspect(msg.path or "/")])
        elif interface == "org.freedesktop.DBus.Peer":
            if member == "Ping" and signature == "":  # not work: the idle exit still comes
                return self._reply(msg)
            if member == "GetMachineId" and signature == "":
                machine_id = _machine_id()
                if machine_id is None:
                    return self._error(msg, DBUS_ERROR + "Failed", "no machine id")
                return self._reply(msg, "s", [machine_id])
        if (interface, member) not in self._members:
            return self._error(msg, UNKNOWN_METHOD, f"no method {member!r} in {interface!r}")
        if msg.path != OBJECT_PATH:
            return self._error(msg, UNKNOWN_OBJECT, f"no object at {msg.path!r}")
        entry = self._table.get((interface, member, signature))
        if entry is None:
            return self._error(msg, INVALID_ARGS, f"{member}: wrong argument types ({signature!r})")
        if self._stopping and member == "Subscribe":  # calls that came in are still served,
            # but a subscription would not keep this helper: retrying activates a new one
            return self._error(msg, ERROR_PREFIX + "Failed", "the helper is exiting; try again")
        try:
            args = entry.validate(list(msg.body))
        except OperationError as error:
            return self._error(msg, ERROR_PREFIX + error.kind, wording.reason_of(error))
        interactive = bool(msg.flags & MessageFlag.ALLOW_INTERACTIVE_AUTHORIZATION)
        call = Call(msg, msg.sender or "", interactive, args)
        self._inflight += 1
        self._arm_idle()
        self._spawn(self._serve(call, entry))
        return True

    async def _serve(self, call: Call, method: Method) -> None:
        reply: Message | bool
        try:
            result = await self._admitted(call, method)
            if result is None:
                reply = self._reply(call.msg)
            else:
                reply = self._reply(call.msg, "s", [_to_json(result)])
        except Refused as refused:
            reply = self._error(call.msg, refused.name, str(refused))
        except OperationError as error:
            reply = self._error(call.msg, ERROR_PREFIX + error.kind, wording.reason_of(error))
        except Exception:
            log.exception("%s from %s failed", call.msg.member, call.sender)
            reply = self._error(call.msg, ERROR_PREFIX + "Failed", "internal error in the helper")
        finally:
            self._inflight -= 1
            self._arm_idle()
        if isinstance(reply, Message) and self.bus.connected:
            self.bus.send(reply)

    async def _admitted(self, call: Call, method: Method) -> Any:
        """The call served in its caller's turn: one at a time per uid (whatever the number of
        its connections) and lane, at most MAX_QUEUED waiting, before polkit is even asked.  A
        fix waiting for a password holds the "work" lane; the same user's ListFixes and
        Subscribe go on in the "list" lane."""
        uid = await self._caller_uid(call)
        key = (uid, method.lane)
        caller = self._callers.setdefault(key, _Caller())
        if caller.calls > MAX_QUEUED:
            raise Refused(
                LIMITS_EXCEEDED, "too many calls at once from this user: wait for the answers"
            )
        caller.calls += 1
        try:
            async with caller.turn:
                await self._authorize(call, method.action, method.details(call.args))
                self._last_work = self._loop.time()
                try:
                    return await method.handler(call)
                finally:
                    self._last_work = self._loop.time()
        finally:
            caller.calls -= 1
            if caller.calls == 0:
                self._callers.pop(key, None)

    @staticmethod
    def _introspect(path: str) -> str:
        if path == OBJECT_PATH:
            return INTROSPECTION
        children = ""
        prefix = path.rstrip("/") + "/"
        if OBJECT_PATH.startswith(prefix):
            child = OBJECT_PATH[len(prefix) :].split("/")[0]
            children = f'  <node name="{child}"/>\n'
        return (
            '<!DOCTYPE node PUBLIC "-//freedesktop//DTD D-BUS Object Introspection 1.0//EN"\n'
            ' "http://www.freedesktop.org/standards/dbus/1.0/introspect.dtd">\n'
            f"<node>\n{children}</node>\n"
        )

    # -- the one authorisation choke point --
    async def _authorize(self, call: Call, action: str, details: dict[str, str]) -> None:
        """polkit's decision for the caller's bus name; raises Refused unless authorised."""
        flags = POLKIT_ALLOW_USER_INTERACTION if call.interactive else 0
        subject = ["system-bus-name", {"name": Variant("s", call.sender)}]
        reply = await self.bus.call(
            Message(
                destination=POLKIT_NAME,
                path=POLKIT_PATH,
                interface=POLKIT_INTERFACE,
                member="CheckAuthorization",
                signature="(sa{sv})sa{ss}us",
                body=[subject, action, details, flags, ""],
            )
        )
        if reply is None or reply.message_type != MessageType.METHOD_RETURN:
            text = reply.body[0] if reply is not None and reply.body else "no answer"
            log.warning("polkit could not decide %s for %s: %s", action, call.sender, text)
            raise Refused(ACCESS_DENIED, f"not authorised: polkit could not decide ({text})")
        authorized, challenge, result_details = reply.body[0]
        if authorized:
            return
        what = ACTION_WORDS.get(action, action)
        if challenge and not call.interactive:
            raise Refused(
                INTERACTIVE_REQUIRED,
                f"{what} needs authentication, and this call does not allow asking ({action})",
            )
        if result_details.get("polkit.dismissed"):
            raise Refused(ACCESS_DENIED, f"not allowed to {what}: authentication dismissed")
        raise Refused(ACCESS_DENIED, f"not allowed to {what} (polkit action {action})")

    async def _caller_uid(self, call: Call) -> int:
        """The caller's uid, from the bus (asked once per bus name, remembered)."""
        known = self._uids.get(call.sender)
        if known is None:
            known = self._loop.create_future()
            self._uids[call.sender] = known
            while len(self._uids) > UID_CACHE:
                self._uids.popitem(last=False)
            reply = await self._bus_call("GetConnectionUnixUser", "s", [call.sender])
            if reply is None or reply.message_type != MessageType.METHOD_RETURN:
                self._uids.pop(call.sender, None)
                known.set_exception(Refused(ACCESS_DENIED, "the caller is gone"))
            else:
                known.set_result(int(reply.body[0]))
        return await asyncio.shield(known)

    async def _work(self, fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        return await self._loop.run_in_executor(self._worker, lambda: fn(*args, **kwargs))

    # -- the methods --
    async def _get_snapshot(self, call: Call) -> Any:
        return await self._work(lambda: self.ops.snapshot())

    async def _get_state(self, call: Call) -> Any:
        """``status --json``'s state of the hotspots named (none: NetworkManager's tables say),
        from the live model while someone subscribes, else from a full reading."""
        (names,) = call.args
        hotspots = [HotspotInfo(name) for name in names.split()] or None
        live = self._live
        if live is None:  # nothing follows the kernel's changes: a one-off full reading
            once = LiveAssessor(warn=log.warning)

            def assess_once() -> Any:
                try:
                    return once.assess_pending(once.pending(), hotspots)
                finally:
                    once.close()

            assessment = await self._work(assess_once)
        else:  # taken here, on the loop, and served in order by the one worker
            assessment = await self._work(live.assess_pending, live.pending(), hotspots)
        return assessment.state.to_json()

    async def _preview_fix(self, call: Call) -> Any:
        iface, strategy = call.args
        return await self._work(lambda: self.ops.preview(iface, strategy))

    async def _apply_fix(self, call: Call) -> Any:
        iface, strategy, permanent, generation = call.args
        if permanent:  # keeping it after reboot is a further action
            details = {"iface": iface, "strategy": strategy, "permanent": "true"}
            await self._authorize(call, ACTION_PERSIST, details)
        uid = await self._caller_uid(call)
        return await self._work(
            lambda: self.ops.apply(
                iface, strategy, permanent=permanent, uid=uid, generation=generation
            )
        )

    async def _undo_fix(self, call: Call) -> Any:
        (fix_id,) = call.args
        uid = await self._caller_uid(call)
        owner = await self._work(self._owner_or_none, fix_id)
        if owner is not None and owner != uid:  # another user's fix: a further action
            await self._authorize(call, ACTION_UNDO_OTHERS, {"fix_id": fix_id})

        def undo() -> Any:
            if self._owner_or_none(fix_id) not in (None, owner):  # "" names another fix now
                raise OperationError("Stale", "the fixes changed meanwhile; look again")
            return self.ops.undo(fix_id, uid=uid)

        return await self._work(undo)

    def _owner_or_none(self, fix_id: str) -> int | None:
        try:
            return self.ops.fix_owner(fix_id)
        except OperationError as error:
            if error.kind == "NotFound":
                return None
            raise

    async def _undo_all_fixes(self, call: Call) -> Any:
        uid = await self._caller_uid(call)
        owners = await self._work(self._owners)
        if owners - {uid}:
            await self._authorize(call, ACTION_UNDO_OTHERS, {})

        def undo_all() -> Any:
            if self._owners() - owners - {uid}:
                raise OperationError("Stale", "the fixes changed meanwhile; look again")
            return self.ops.undo_all(uid=uid)

        return await self._work(undo_all)

    def _owners(self) -> set[int]:
        owners: set[int] = set()
        for fix in self.ops.list_fixes():
            owner = self._owner_or_none(str(fix.get("id", "")))
            if owner is not None:
                owners.add(owner)
        return owners

    async def _list_fixes(self, call: Call) -> Any:
        return await self._work(lambda: self.ops.list_fixes())

    async def _set_permanent(self, call: Call) -> Any:
        fix_id, permanent = call.args
        uid = await self._caller_uid(call)
        owner = await self._work(lambda: self.ops.fix_owner(fix_id))  # NotFound: no change
        if owner != uid:  # another user's fix, on or off: a further action
            details = {"fix_id": fix_id, "permanent": str(bool(permanent)).lower()}
            await self._authorize(call, ACTION_UNDO_OTHERS, details)

        def set_permanent() -> Any:
            if self._owner_or_none(fix_id) != owner:
                raise OperationError("Stale", "the fixes changed meanwhile; look again")
            return self.ops.set_permanent(fix_id, permanent, uid=uid)

        return await self._work(set_permanent)

    async def _subscribe(self, call: Call) -> None:
        sender = call.sender
        if sender in self._subscribers:
            return None
        await self._bus_call("AddMatch", "s", [_owner_rule(sender)])
        self._subscribers.add(sender)
        self._start_events()
        # it may have left before the match rule existed
        reply = await self._bus_call("NameHasOwner", "s", [sender])
        if reply is not None and reply.body and not reply.body[0]:
            self._drop_subscriber(sender)
        return None

    async def _bus_call(self, member: str, signature: str, body: list[Any]) -> Message | None:
        return await self.bus.call(
            Message(
                destination=DBUS_NAME,
                path=DBUS_PATH,
                interface=DBUS_NAME,
                member=member,
                signature=signature,
                body=body,
            )
        )

    # -- subscribers and the Changed signal --
    def _on_signal(self, msg: Message) -> None:
        if msg.sender != DBUS_NAME or msg.interface != DBUS_NAME:
            return
        if msg.member == "NameOwnerChanged" and msg.signature == "sss":
            name, _old, new = msg.body
            if not new and name in self._subscribers:
                self._drop_subscriber(name)
        elif msg.member == "NameLost" and msg.signature == "s" and msg.body[0] == BUS_NAME:
            log.warning("lost %s; exiting", BUS_NAME)
            self._stopping = True
            if not self._done.done():
                self._done.set_result(None)

    def _drop_subscriber(self, name: str) -> None:
        if name not in self._subscribers:
            return
        self._subscribers.discard(name)
        if self.bus.connected:
            self._spawn(self._remove_match(name))
        if not self._subscribers:
            self._stop_events()
        self._arm_idle()

    async def _remove_match(self, name: str) -> None:
        await self._bus_call("RemoveMatch", "s", [_owner_rule(name)])

    def _start_events(self) -> None:
        if self._events is not None:
            return
        live = LiveAssessor(warn=log.warning)

        def on_change(kinds: frozenset[str]) -> None:
            live.note(kinds)
            self._on_kernel_change(kinds)

        events = self._events_factory(on_change)
        for gap in events.gaps:
            log.warning("%s", gap)
        events.attach(self._loop)
        self._events = events
        if isinstance(getattr(events, "changes", None), RulesetChanges):
            live.follow(events)
            self._live = live

    def _stop_events(self) -> None:
        if self._live is not None:  # dropped after the assessments already queued
            live, self._live = self._live, None
            live.events = None
            self._worker.submit(live.close)
        if self._events is not None:
            self._events.close()
            self._events = None
        if self._emit_handle is not None:
            self._emit_handle.cancel()
            self._emit_handle = None
        self._first_pending = None

    def _on_kernel_change(self, kinds: frozenset[str]) -> None:
        now = self._loop.time()
        if self._first_pending is None:
            self._first_pending = now
        due = max(now + QUIET, self._last_emit + MIN_GAP)
        due = min(due, max(self._first_pending + MAX_DELAY, self._last_emit + MIN_GAP))
        if self._emit_handle is not None:
            self._emit_handle.cancel()
        self._emit_handle = self._loop.call_at(due, self._emit_changed)

    def _emit_changed(self) -> None:
        self._emit_handle = None
        self._first_pending = None
        self._last_emit = self._loop.time()
        for name in sorted(self._subscribers):  # unicast: only authorised subscribers
            self.bus.send(
                Message(
                    message_type=MessageType.SIGNAL,
                    destination=name,
                    path=OBJECT_PATH,
                    interface=INTERFACE,
                    member="Changed",
                )
            )
            self.signals_sent += 1


def _owner_rule(name: str) -> str:
    return (
        "type='signal',sender='org.freedesktop.DBus',interface='org.freedesktop.DBus',"
        f"member='NameOwnerChanged',arg0='{name}'"
    )


def _machine_id() -> str | None:
    for path in ("/etc/machine-id", "/var/lib/dbus/machine-id"):
        try:
            with open(path) as handle:
                text = handle.read().strip()
        except OSError:
            continue
        if re.fullmatch(r"[0-9a-f]{32}", text):
            return text
    return None


def clean_environment() -> None:
    """Replace os.environ by a minimal, fixed one (the helper trusts nothing it inherits)."""
    os.environ.clear()
    os.environ.update(CLEAN_ENV)
    os.umask(0o022)
    os.chdir("/")


async def serve_async(
    *,
    idle_timeout: float = IDLE_TIMEOUT,
    bus_address: str | None = None,
    operations: Operations | None = None,
) -> int:
    """Connect to the system bus (or `bus_address`) and serve; the exit status."""
    try:  # the constructor already connects the socket
        if bus_address is not None:
            bus = HelperBus(bus_address=bus_address)
        else:
            bus = HelperBus(bus_type=BusType.SYSTEM)
        await bus.connect()
    except (OSError, DBusError, ValueError) as error:
        log.error("cannot connect to the system bus: %s", error)
        return 1
    try:
        return await HelperService(bus, operations, idle_timeout=idle_timeout).run()
    finally:
        if bus.connected:
            bus.disconnect()


def serve(*, idle_timeout: float = IDLE_TIMEOUT, bus_address: str | None = None) -> int:
    """The service's process: root only, clean environment; returns the exit status."""
    logging.basicConfig(
        stream=sys.stderr, level=logging.INFO, format="hotspotguard-helper: %(message)s"
    )
    if os.geteuid() != 0:
        log.error("refusing to run: the helper must run as root (D-Bus starts it)")
        return 1
    clean_environment()
    return asyncio.run(serve_async(idle_timeout=idle_timeout, bus_address=bus_address))
