"""firewalld over its D-Bus API (``org.fedoraproject.FirewallD1`` on the system bus): which zone
an interface is in (runtime and permanent), what a zone lets in, and moving an interface between
zones.  Blocking calls, each its own short connection (like `sharing.shared_now`); every failure
is a `FirewalldError` with one line."""

from __future__ import annotations

import asyncio
import contextlib
import os
import re
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any, TypeVar

from hotspotguard.fixes.firewalld import TARGETS, FirewalldFacts, ZoneFacts, firewalld_table
from hotspotguard.ruleset import Ruleset
from hotspotguard.system import atomic
from hotspotguard.wording import Reason

if TYPE_CHECKING:  # dbus-next is imported where a call is made: the CLI's docs build without it
    from hotspotguard.system.dbusio import MessageBus

NAME = "org.fedoraproject.FirewallD1"
PATH = "/org/fedoraproject/FirewallD1"
CONFIG_PATH = PATH + "/config"
MAIN = NAME
ZONE = NAME + ".zone"
CONFIG = NAME + ".config"
CONFIG_ZONE = NAME + ".config.zone"
PROPERTIES = "org.freedesktop.DBus.Properties"
TIMEOUT = 10.0  # firewalld rebuilds its chains for a zone change: a busy machine takes seconds
T = TypeVar("T")


class FirewalldError(Exception):
    """firewalld is not there or refused (one line: a `wording.Reason`, firewalld's own
    words quoted as its detail)."""


class _Client:
    def __init__(self, bus: MessageBus) -> None:
        self.bus = bus

    async def call(
        self, member: str, signature: str = "", body: list[Any] | None = None, *,
        interface: str = ZONE, path: str = PATH,
    ) -> Any:  # fmt: skip
        from dbus_next.constants import MessageType

        from hotspotguard.system.dbusio import call_method

        reply = await call_method(self.bus, NAME, path, interface, member, signature, body)
        assert reply is not None
        if reply.message_type == MessageType.ERROR:
            text = reply.body[0] if reply.body and isinstance(reply.body[0], str) else ""
            if reply.error_name in (
                "org.freedesktop.DBus.Error.ServiceUnknown",
                "org.freedesktop.DBus.Error.NameHasNoOwner",
            ):
                raise FirewalldError(Reason("firewalld-gone"))
            detail = (text or reply.error_name or "").strip().splitlines()
            raise FirewalldError(
                Reason("firewalld-refused", member=member, detail=(detail or [""])[0][:300])
            )
        return reply.body[0] if reply.body else None

    async def config_zone(self, zone: str) -> str:
        path = await self.call("getZoneByName", "s", [zone], interface=CONFIG, path=CONFIG_PATH)
        return str(path)

    async def zone_property(self, zone_path: str, name: str) -> Any:
        variant = await self.call(
            "Get", "ss", [CONFIG_ZONE, name], interface=PROPERTIES, path=zone_path
        )
        return variant.value


def _run(work: Callable[[_Client], Awaitable[T]]) -> T:
    from dbus_next.constants import BusType
    from dbus_next.errors import DBusError

    from hotspotguard.system.dbusio import MessageBus
    from hotspotguard.system.networkmanager import system_bus_address

    async def main() -> T:
        address = system_bus_address()
        try:
            bus = (
                MessageBus(bus_address=address) if address else MessageBus(bus_type=BusType.SYSTEM)
            )
            await bus.connect()
        except (OSError, DBusError, ValueError):
            raise FirewalldError(Reason("firewalld-no-bus")) from None
        try:
            return await work(_Client(bus))
        finally:
            bus.disconnect()  # type: ignore[no-untyped-call]

    try:
        return asyncio.run(asyncio.wait_for(main(), TIMEOUT))
    except TimeoutError:
        raise FirewalldError(Reason("firewalld-timeout", seconds=round(TIMEOUT))) from None


def _unwrap(value: Any) -> Any:
    return value.value if hasattr(value, "signature") and hasattr(value, "value") else value


async def _zone_facts(client: _Client, zone: str) -> ZoneFacts:
    settings = await client.call("getZoneSettings2", "s", [zone])
    get = {key: _unwrap(value) for key, value in settings.items()}
    ports: list[tuple[str, str]] = [(str(p), str(proto)) for p, proto in get.get("ports", [])]
    for service in get.get("services", []):
        found = await client.call("getServiceSettings2", "s", [service], interface=MAIN)
        for port, proto in _unwrap(found.get("ports", [])) or []:
            ports.append((str(port), str(proto)))
    path = await client.config_zone(zone)
    return ZoneFacts(
        name=zone,
        target=str(get.get("target", "default")),
        ports=tuple(dict.fromkeys(ports)),
        protocols=tuple(str(p) for p in get.get("protocols", [])),
        rich_rules=tuple(str(r) for r in get.get("rules_str", [])),
        default=bool(await client.zone_property(path, "default")),
    )


def facts(ifaces: tuple[str, ...], targets: tuple[str, ...]) -> FirewalldFacts:
    """What the planner needs: firewalld's zones, its default zone, each of `ifaces`' runtime and
    permanent zone ("" = none), and the settings of each of `targets` that exists."""

    async def work(client: _Client) -> FirewalldFacts:
        zones = tuple(str(z) for z in await client.call("getZones"))
        default_zone = str(await client.call("getDefaultZone", interface=MAIN))
        runtime, permanent = [], []
        for iface in ifaces:
            runtime.append((iface, str(await client.call("getZoneOfInterface", "s", [iface]))))
            zone = await client.call(
                "getZoneOfInterface", "s", [iface], interface=CONFIG, path=CONFIG_PATH
            )
            permanent.append((iface, str(zone)))
        settings = tuple([await _zone_facts(client, t) for t in targets if t in zones])
        return FirewalldFacts(zones, default_zone, tuple(runtime), tuple(permanent), settings)

    return _run(work)


def zone_of(iface: str) -> tuple[str, str]:
    """`iface`'s runtime and permanent zone ("" = none)."""

    async def work(client: _Client) -> tuple[str, str]:
        runtime = str(await client.call("getZoneOfInterface", "s", [iface]))
        permanent = await client.call(
            "getZoneOfInterface", "s", [iface], interface=CONFIG, path=CONFIG_PATH
        )
        return runtime, str(permanent)

    return _run(work)


def missing_zones(runtime: tuple[str, ...], permanent: tuple[str, ...]) -> list[str]:
    """Those of the zones named that firewalld does not have (now, or in its configuration)."""

    async def work(client: _Client) -> list[str]:
        now = set(await client.call("getZones"))
        kept = set(await client.call("getZoneNames", interface=CONFIG, path=CONFIG_PATH))
        return [z for z in runtime if z and z not in now] + [
            z for z in permanent if z and z not in kept
        ]

    return _run(work)


def set_runtime_zone(iface: str, zone: str) -> None:
    """Put `iface` into `zone` now ("" = into none: take it out of the zone it is in)."""

    async def work(client: _Client) -> None:
        current = str(await client.call("getZoneOfInterface", "s", [iface]))
        if current == zone:
            return
        if not zone:
            await client.call("removeInterface", "ss", [current, iface])
        else:
            await client.call("changeZoneOfInterface", "ss", [zone, iface])

    _run(work)


def set_permanent_zone(iface: str, zone: str, *, restore_default: tuple[str, ...] = ()) -> None:
    """Bind `iface` to `zone` in firewalld's permanent configuration ("" = to none), taking it
    out of the zone it was bound to; the zones in `restore_default` whose settings were
    firewalld's defaults before are put back to them (so no copy is left in /etc/firewalld)."""

    async def work(client: _Client) -> None:
        current = str(
            await client.call(
                "getZoneOfInterface", "s", [iface], interface=CONFIG, path=CONFIG_PATH
            )
        )
        if current != zone:
            if current:
                path = await client.config_zone(current)
                await client.call("removeInterface", "s", [iface], interface=CONFIG_ZONE, path=path)
            if zone:
                path = await client.config_zone(zone)
                await client.call("addInterface", "s", [iface], interface=CONFIG_ZONE, path=path)
        for name in restore_default:
            path = await client.config_zone(name)
            if not await client.zone_property(path, "default"):
                await client.call("loadDefaults", interface=CONFIG_ZONE, path=path)

    _run(work)


def reload() -> None:
    """firewalld's reload: the permanent configuration becomes the runtime one."""
    _run(lambda client: client.call("reload", interface=MAIN))


ZONES_DIR = "/etc/firewalld/zones"
ZONE_NAME = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.-]{0,63}")
MAX_BACKUP = 1 << 20


def _backup_path(zone: str) -> str:
    if not ZONE_NAME.fullmatch(zone):
        raise FirewalldError(f"{zone!r} is not a firewalld zone name")
    return os.path.join(ZONES_DIR, f"{zone}.xml.old")


def read_backup(zone: str) -> str | None:
    """firewalld's backup of `zone` (`ZONE.xml.old`, written at each change), None: absent."""
    try:
        with open(_backup_path(zone), "rb") as handle:
            data = handle.read(MAX_BACKUP + 1)
    except FileNotFoundError:
        return None
    if len(data) > MAX_BACKUP:
        raise OSError(f"{_backup_path(zone)} is larger than {MAX_BACKUP} bytes")
    return data.decode("utf-8", "surrogateescape")


def restore_backup(zone: str, text: str | None) -> None:
    """`zone`'s backup as it was (`text`; None: no backup)."""
    path = _backup_path(zone)
    if text is None:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(path)
    elif read_backup(zone) != text:
        atomic.write_file(path, text, 0o644, errors="surrogateescape")


def zones_in_use(ruleset: Ruleset, ifaces: tuple[str, ...]) -> FirewalldFacts | None:
    """firewalld's zones, asked over D-Bus only where its table is loaded (None: it is not, or
    firewalld does not answer: the planner says so)."""
    if firewalld_table(ruleset) is None:
        return None
    try:
        return facts(ifaces, TARGETS)
    except FirewalldError:
        return None
