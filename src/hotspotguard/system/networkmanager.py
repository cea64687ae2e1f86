"""NetworkManager's shared connections (hotspots), read and followed over D-Bus (dbus-next).

`shared_connections(bus)` reads them once; `NetworkManagerWatch` keeps the list up to date from
signals only (no polling): NM's ActiveConnections, each active connection's state and IP
configs, the devices' interface names, the settings being updated, NetworkManager leaving or
joining the bus, and the bus itself going away (reconnects with back-off).

What NetworkManager (1.42) does on the bus, as recorded in a lab: activation adds a new
ActiveConnection/N object (a re-activation gets a NEW path), emits StateChanged 1 then 2 and only
afterwards sets Ip4Config; `ActiveConnections` is re-sent unchanged on every device state change,
so values are compared, signals are never counted.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any, Literal, cast

from dbus_next.aio.message_bus import MessageBus
from dbus_next.constants import BusType, MessageType
from dbus_next.errors import DBusError
from dbus_next.message import Message
from dbus_next.signature import Variant

from hotspotguard.system.dbusio import call_method
from hotspotguard.wording import Reason

__all__ = [
    "NM_BUS_NAME",
    "NetworkManagerWatch",
    "SharedConnection",
    "WatchStatus",
    "shared_connections",
]

log = logging.getLogger(__name__)
_DBusError: Any = DBusError  # dbus-next's constructors are unannotated

NM_BUS_NAME = "org.freedesktop.NetworkManager"
NM_PATH = "/org/freedesktop/NetworkManager"
_PROPS = "org.freedesktop.DBus.Properties"
_ACTIVE = "org.freedesktop.NetworkManager.Connection.Active"
_DEVICE = "org.freedesktop.NetworkManager.Device"
_IP4 = "org.freedesktop.NetworkManager.IP4Config"
_IP6 = "org.freedesktop.NetworkManager.IP6Config"
_SETTINGS_CONN = "org.freedesktop.NetworkManager.Settings.Connection"
_DBUS = "org.freedesktop.DBus"
_OBJECT_MANAGER = "org.freedesktop.DBus.ObjectManager"
# Errors meaning "NetworkManager is not on the bus" (rather than "NM answered with an error").
_NOT_RUNNING_ERRORS = frozenset(
    {
        "org.freedesktop.DBus.Error.ServiceUnknown",
        "org.freedesktop.DBus.Error.NameHasNoOwner",
        "org.freedesktop.DBus.Error.NoReply",
    }
)
# Errors meaning "this object went away while we were reading it" (a deactivation racing us).
_GONE_ERRORS = frozenset(
    {
        "org.freedesktop.DBus.Error.UnknownObject",
        "org.freedesktop.DBus.Error.UnknownMethod",
        "org.freedesktop.DBus.Error.UnknownInterface",
        "org.freedesktop.DBus.Error.UnknownProperty",
        "org.freedesktop.DBus.Error.InvalidArgs",
    }
)
SHARED = "shared"
ACTIVATED = 2  # NMActiveConnectionState


@dataclass(frozen=True)
class SharedConnection:
    """One active connection whose IPv4 or IPv6 method is "shared" (a hotspot)."""

    id: str
    uuid: str
    type: str  # "802-11-wireless", "802-3-ethernet", ...
    mode: str | None  # "ap" for a Wi-Fi hotspot, else None
    path: str  # the ActiveConnection object path (a re-activation gets a new one)
    iface: str | None  # the device's IpInterface, else its Interface
    ipv4: tuple[str, ...]  # "10.42.0.1/24"
    ipv6: tuple[str, ...]
    state: int  # NMActiveConnectionState: 1 activating, 2 activated, 3 deactivating, 4 deactivated
    ipv4_method: str | None
    ipv6_method: str | None

    @property
    def activated(self) -> bool:
        return self.state == ACTIVATED


StatusKind = Literal["ok", "networkmanager-not-running", "networkmanager-error", "bus-unavailable"]


@dataclass(frozen=True)
class WatchStatus:
    """How the watch is doing; `message` is one line for a person."""

    kind: StatusKind
    message: str = ""

    @property
    def ok(self) -> bool:
        return self.kind == "ok"


class _NotRunning(Exception):
    """NetworkManager is not on the bus."""


# --- reading -------------------------------------------------------------------------------------


def _unwrap(value: Any) -> Any:
    return value.value if isinstance(value, Variant) else value


async def _call(
    bus: MessageBus,
    path: str,
    interface: str,
    member: str,
    signature: str = "",
    body: list[Any] | None = None,
    destination: str = NM_BUS_NAME,
) -> list[Any]:
    reply = await call_method(bus, destination, path, interface, member, signature, body)
    assert reply is not None
    if reply.message_type == MessageType.ERROR:
        text = reply.body[0] if reply.body and isinstance(reply.body[0], str) else ""
        if reply.error_name in _NOT_RUNNING_ERRORS:
            raise _NotRunning(text or str(reply.error_name))
        raise _DBusError(str(reply.error_name), text, reply)
    return list(reply.body)


async def _get_all(bus: MessageBus, path: str, interface: str) -> dict[str, Any]:
    body = await _call(bus, path, _PROPS, "GetAll", "s", [interface])
    return {k: _unwrap(v) for k, v in body[0].items()}


async def _get(bus: MessageBus, path: str, interface: str, name: str) -> Any:
    body = await _call(bus, path, _PROPS, "Get", "ss", [interface, name])
    return _unwrap(body[0])


def _addresses(data: Any) -> tuple[str, ...]:
    out = []
    for entry in data or []:
        addr, prefix = _unwrap(entry.get("address")), _unwrap(entry.get("prefix"))
        if addr is not None and prefix is not None:
            out.append(f"{addr}/{prefix}")
    return tuple(out)


def _setting(settings: dict[str, Any], group: str, key: str) -> str | None:
    value = _unwrap(settings.get(group, {}).get(key))
    return value if isinstance(value, str) else None


async def _ip_addresses(bus: MessageBus, path: str | None, interface: str) -> tuple[str, ...]:
    if not path or path == "/":
        return ()
    return _addresses(await _get(bus, path, interface, "AddressData"))


async def _read_active(
    bus: MessageBus, path: str
) -> tuple[SharedConnection | None, frozenset[str]]:
    """The shared connection at ActiveConnection `path` (None if not shared, or gone) and the
    object paths behind it (device, IP configs) whose changes matter."""
    try:
        ac = await _get_all(bus, path, _ACTIVE)
        settings_path = ac.get("Connection") or "/"
        if settings_path == "/":
            return None, frozenset()
        (settings,) = await _call(bus, settings_path, _SETTINGS_CONN, "GetSettings")
        v4 = _setting(settings, "ipv4", "method")
        v6 = _setting(settings, "ipv6", "method")
        if SHARED not in (v4, v6):
            return None, frozenset()
        devices = [str(d) for d in ac.get("Devices") or []]
        ip4, ip6 = str(ac.get("Ip4Config") or "/"), str(ac.get("Ip6Config") or "/")

        async def iface() -> str | None:
            if not devices:
                return None
            dev = await _get_all(bus, devices[0], _DEVICE)
            return str(dev.get("IpInterface") or dev.get("Interface") or "") or None

        name, ipv4, ipv6 = await asyncio.gather(
            iface(), _ip_addresses(bus, ip4, _IP4), _ip_addresses(bus, ip6, _IP6)
        )
    except DBusError as error:
        if error.type in _GONE_ERRORS:
            return None, frozenset()  # deactivated while we were reading; ActiveConnections tells
        raise
    type_ = str(ac.get("Type") or _setting(settings, "connection", "type") or "")
    mode = _setting(settings, "802-11-wireless", "mode") if type_ == "802-11-wireless" else None
    found = SharedConnection(
        id=str(ac.get("Id", "")),
        uuid=str(ac.get("Uuid", "")),
        type=type_,
        mode=mode if mode == "ap" else None,
        path=path,
        iface=name,
        ipv4=ipv4,
        ipv6=ipv6,
        state=int(ac.get("State", 0)),
        ipv4_method=v4,
        ipv6_method=v6,
    )
    return found, frozenset({path, *devices, ip4, ip6} - {"/"})


async def _active_paths(bus: MessageBus) -> list[str]:
    return [str(p) for p in await _get(bus, NM_PATH, NM_BUS_NAME, "ActiveConnections")]


@dataclass
class _Reading:
    found: list[SharedConnection]
    watched: set[str]  # object paths behind them (active connection, device, IP configs)
    not_shared: set[str]  # active connections read and found not shared
    errors: list[DBusError]  # active connections NM would not describe (the others still count)


async def _read_shared(bus: MessageBus, paths: Iterable[str]) -> _Reading:
    paths = list(paths)
    results = await asyncio.gather(*(_read_active(bus, p) for p in paths), return_exceptions=True)
    reading = _Reading([], set(), set(), [])
    for path, result in zip(paths, results, strict=True):
        if isinstance(result, DBusError):
            reading.errors.append(result)
        elif isinstance(result, BaseException):
            raise result  # NM left the bus (_NotRunning), the bus went away, cancellation
        else:
            found, objects = result
            if found is None:
                reading.not_shared.add(path)
            else:
                reading.found.append(found)
                reading.watched |= objects
    return reading


async def shared_connections(bus: MessageBus) -> list[SharedConnection]:
    """The active connections whose ipv4.method or ipv6.method is "shared", in NM's order.

    Raises dbus_next.errors.DBusError when NetworkManager is not running or answers an error.
    """
    try:
        reading = await _read_shared(bus, await _active_paths(bus))
    except _NotRunning as error:
        raise _DBusError("org.freedesktop.DBus.Error.ServiceUnknown", str(error)) from None
    if reading.errors:
        raise reading.errors[0]
    return reading.found


# --- following -----------------------------------------------------------------------------------


def system_bus_address() -> str | None:
    """DBUS_SYSTEM_BUS_ADDRESS when set (tests point it at a private bus), else the default."""
    return os.environ.get("DBUS_SYSTEM_BUS_ADDRESS") or None


_MATCH_RULES = (
    f"type='signal',sender='{_DBUS}',interface='{_DBUS}',member='NameOwnerChanged',"
    f"arg0='{NM_BUS_NAME}'",
    f"type='signal',sender='{NM_BUS_NAME}',interface='{_PROPS}',member='PropertiesChanged',"
    f"path='{NM_PATH}',arg0='{NM_BUS_NAME}'",
    f"type='signal',sender='{NM_BUS_NAME}',interface='{_PROPS}',member='PropertiesChanged',"
    f"arg0='{_ACTIVE}'",
    f"type='signal',sender='{NM_BUS_NAME}',interface='{_PROPS}',member='PropertiesChanged',"
    f"arg0='{_IP4}'",
    f"type='signal',sender='{NM_BUS_NAME}',interface='{_PROPS}',member='PropertiesChanged',"
    f"arg0='{_IP6}'",
    f"type='signal',sender='{NM_BUS_NAME}',interface='{_PROPS}',member='PropertiesChanged',"
    f"arg0='{_DEVICE}'",
    f"type='signal',sender='{NM_BUS_NAME}',interface='{_ACTIVE}',member='StateChanged'",
    f"type='signal',sender='{NM_BUS_NAME}',interface='{_SETTINGS_CONN}',member='Updated'",
    f"type='signal',sender='{NM_BUS_NAME}',interface='{_OBJECT_MANAGER}',member='InterfacesAdded',"
    f"arg0path='{NM_PATH}'",
)

# What a PropertiesChanged of each interface must touch to matter (for a watched object).
_RELEVANT = {
    _ACTIVE: {"State", "Devices", "Ip4Config", "Ip6Config", "Id", "Connection", "Type"},
    _DEVICE: {"IpInterface", "Interface"},
    _IP4: {"AddressData"},
    _IP6: {"AddressData"},
}

BACKOFF_FIRST = 0.5
BACKOFF_MAX = 5.0


class NetworkManagerWatch:
    """Follows NetworkManager's shared connections; never raises D-Bus trouble into the caller.

    `connections` is the current tuple, `status` says whether it can be trusted; `on_change` is
    called (in the event loop) only when either actually changed.
    """

    def __init__(
        self,
        on_change: Callable[[], None] | None = None,
        *,
        bus_address: str | None = None,
        backoff_first: float = BACKOFF_FIRST,
        backoff_max: float = BACKOFF_MAX,
    ) -> None:
        self.on_change = on_change
        self._address = bus_address
        self._backoff = (backoff_first, backoff_max)
        self._connections: tuple[SharedConnection, ...] = ()
        self._status = WatchStatus("bus-unavailable", "not started")
        self._bus: MessageBus | None = None
        self._task: asyncio.Task[None] | None = None
        self._refresh_task: asyncio.Task[None] | None = None
        self._dirty = False
        self._active: tuple[str, ...] | None = None  # last ActiveConnections value seen
        self._watched: set[str] = set()  # object paths behind the current shared connections
        self._not_shared: set[str] = set()  # active connections read and found not shared
        self._epoch = 0
        self._refreshing = False
        self._ready: asyncio.Event | None = None
        self.refreshes = 0  # full re-reads done (for tests and diagnostics)

    @property
    def connections(self) -> tuple[SharedConnection, ...]:
        return self._connections

    @property
    def status(self) -> WatchStatus:
        return self._status

    async def start(self) -> None:
        """Connect and read the current state (returns once the first attempt settled)."""
        if self._task is not None:
            return
        self._ready = asyncio.Event()
        self._task = asyncio.get_running_loop().create_task(self._run(), name="nm-watch")
        await self._ready.wait()

    async def stop(self) -> None:
        task, self._task = self._task, None
        for t in (self._refresh_task, task):
            if t is not None:
                t.cancel()
                with contextlib.suppress(asyncio.CancelledError, Exception):
                    await t
        self._refresh_task = None
        self._disconnect()

    # -- state changes --
    def _publish(
        self, connections: tuple[SharedConnection, ...] | None, status: WatchStatus
    ) -> None:
        # the kind, not the wording ("retrying in 2 s"), makes a change worth a callback
        changed = status.kind != self._status.kind
        self._status = status
        if connections is not None and connections != self._connections:
            self._connections = connections
            changed = True
        started = self._ready is not None and self._ready.is_set()  # start() reports the first
        if changed and started and self.on_change is not None:
            try:
                self.on_change()
            except Exception:
                log.exception("NetworkManagerWatch on_change callback failed")

    def _gone(self, status: WatchStatus) -> None:
        self._epoch += 1  # a read in flight is stale now
        self._active = None
        self._watched = set()
        self._not_shared = set()
        self._publish((), status)

    # -- the connection loop --
    async def _run(self) -> None:
        delay = self._backoff[0]
        while True:
            try:
                bus = await self._connect()
            except Exception as error:  # no socket, refused, auth, a bad address
                said = str(error) or type(error).__name__
                unreachable = Reason("bus-unreachable", detail=said, seconds=f"{delay:g}")
                self._gone(WatchStatus("bus-unavailable", unreachable))
                self._set_ready()
                await asyncio.sleep(delay)
                delay = min(delay * 2, self._backoff[1])
                continue
            delay = self._backoff[0]
            self._set_ready()
            try:
                await cast(Any, bus).wait_for_disconnect()
                reason = Reason("bus-closed")
            except Exception as error:
                reason = Reason("bus-lost", detail=str(error) or type(error).__name__)
            self._bus = None
            if self._refresh_task is not None:
                self._refresh_task.cancel()
                self._refresh_task = None
            self._gone(WatchStatus("bus-unavailable", reason))
            await asyncio.sleep(delay)
            delay = min(delay * 2, self._backoff[1])

    def _set_ready(self) -> None:
        if self._ready is not None:
            self._ready.set()

    async def _connect(self) -> MessageBus:
        address = self._address or system_bus_address()
        bus = MessageBus(bus_address=cast(str, address), bus_type=BusType.SYSTEM)
        await bus.connect()
        try:
            bus.add_message_handler(self._on_message)
            for rule in _MATCH_RULES:
                await _call(bus, "/org/freedesktop/DBus", _DBUS, "AddMatch", "s", [rule], _DBUS)
            (owner_known,) = await _call(
                bus, "/org/freedesktop/DBus", _DBUS, "NameHasOwner", "s", [NM_BUS_NAME], _DBUS
            )
        except BaseException:
            cast(Any, bus).disconnect()
            raise
        self._bus = bus
        if owner_known:
            await self._refresh_now()
        else:
            self._gone(WatchStatus("networkmanager-not-running", Reason("nm-not-running")))
        return bus

    def _disconnect(self) -> None:
        bus, self._bus = self._bus, None
        if bus is not None:
            with contextlib.suppress(Exception):
                cast(Any, bus).disconnect()

    # -- signals --
    def _on_message(self, msg: Message) -> bool:
        if msg.message_type != MessageType.SIGNAL:
            return False
        if msg.member == "NameOwnerChanged" and msg.interface == _DBUS:
            name, _old, new = msg.body
            if name == NM_BUS_NAME:
                if new:
                    self._schedule()
                else:
                    self._gone(WatchStatus("networkmanager-not-running", Reason("nm-left")))
            return False
        if msg.interface == _PROPS and msg.member == "PropertiesChanged":
            interface, changed = msg.body[0], msg.body[1]
            if interface == NM_BUS_NAME and msg.path == NM_PATH:
                if self._active is None:  # not read since NM (re)started
                    self._schedule()
                elif "ActiveConnections" in changed:
                    value = tuple(str(p) for p in _unwrap(changed["ActiveConnections"]))
                    if value != self._active:  # re-sent unchanged on device changes: ignore
                        self._schedule()
            elif (
                interface in _RELEVANT
                and _RELEVANT[interface] & set(changed)
                and self._matters(msg.path, interface == _ACTIVE)
            ):
                self._schedule()
        elif msg.interface == _ACTIVE and msg.member == "StateChanged":
            if self._matters(msg.path, True):
                self._schedule()
        elif self._other_trigger(msg):
            self._schedule()
        return False

    @staticmethod
    def _other_trigger(msg: Message) -> bool:
        if msg.interface == _SETTINGS_CONN:
            return msg.member == "Updated"  # a profile changed (its method, its mode)
        # NM exported its root object (it is starting)
        return msg.member == "InterfacesAdded" and bool(msg.body) and msg.body[0] == NM_PATH

    def _matters(self, path: str | None, active_connection: bool) -> bool:
        """Whether a change of object `path` can change the shared connections."""
        if self._refreshing or path in self._watched:
            return True  # a read in flight may have missed it: read again
        # an active connection not (yet) read may be a new hotspot
        return active_connection and path not in self._not_shared

    def _schedule(self) -> None:
        """Re-read soon; bursts of signals coalesce into one read (values are then compared)."""
        self._dirty = True
        if self._bus is not None and (self._refresh_task is None or self._refresh_task.done()):
            self._refresh_task = asyncio.get_running_loop().create_task(self._refresh_loop())

    async def _refresh_loop(self) -> None:
        while self._dirty and self._bus is not None:
            await self._refresh_now()

    async def _refresh_now(self) -> None:
        bus = self._bus
        if bus is None:
            return
        self._dirty = False
        self._refreshing = True
        epoch = self._epoch
        self.refreshes += 1
        try:
            try:
                active = tuple(await _active_paths(bus))
            except DBusError as error:
                if error.type not in _GONE_ERRORS:
                    raise
                # NM owns its name a moment before it exports its objects: it is starting;
                # its first signals (InterfacesAdded, PropertiesChanged) bring us back
                if epoch == self._epoch and bus is self._bus:
                    self._active = None
                    starting = WatchStatus("networkmanager-not-running", Reason("nm-starting"))
                    self._publish((), starting)
                return
            reading = await _read_shared(bus, active)
        except _NotRunning:
            self._gone(WatchStatus("networkmanager-not-running", Reason("nm-not-running")))
            return
        except DBusError as error:
            if epoch == self._epoch and bus is self._bus:
                self._publish(None, _error_status(error))
            return
        except Exception as error:  # the bus went away mid-read: the run loop handles that
            log.debug("NetworkManager read failed: %r", error)
            return
        finally:
            self._refreshing = False
        if epoch != self._epoch or bus is not self._bus:
            return  # NetworkManager left (or the bus went away) while we were reading
        self._active = active
        self._watched = reading.watched
        self._not_shared = reading.not_shared
        # with errors, the readable connections still count; the next change re-reads all
        status = (
            _error_status(reading.errors[0])
            if reading.errors
            else WatchStatus("ok", _summary(reading.found))
        )
        self._publish(tuple(reading.found), status)


def _error_status(error: DBusError) -> WatchStatus:
    return WatchStatus(
        "networkmanager-error", Reason("nm-error", error=error.type, detail=error.text)
    )


def _summary(found: list[SharedConnection]) -> str:
    if not found:
        return "NetworkManager runs; no shared connection is active"
    names = ", ".join(f"{c.id} ({c.iface or '?'})" for c in found)
    return f"NetworkManager shares: {names}"
