"""Which interfaces are shared connections now: NetworkManager's word over D-Bus, or — where
no NetworkManager is on the system bus — its firewall tables (only root can write those).

The helper fixes only these: a fix opens Docker's FORWARD drop for the interface it names, so
an interface nobody shares (a LAN, a VPN) must never get one.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import Any, Literal

from dbus_next.constants import BusType
from dbus_next.errors import DBusError

from hotspotguard.system.capture import shared_interfaces
from hotspotguard.system.dbusio import MessageBus
from hotspotguard.system.networkmanager import (
    ACTIVATED,
    shared_connections,
    system_bus_address,
)
from hotspotguard.wording import Reason

TIMEOUT = 5.0
NOT_THERE = frozenset(
    {
        "org.freedesktop.DBus.Error.ServiceUnknown",
        "org.freedesktop.DBus.Error.NameHasNoOwner",
    }
)


class SharingUnknown(RuntimeError):
    """NetworkManager is on the bus but would not say what it shares (one line)."""


@dataclass(frozen=True)
class Shared:
    """The shared interfaces now, and who said so."""

    ifaces: tuple[str, ...]
    source: Literal["NetworkManager", "firewall"]


async def _from_networkmanager() -> tuple[str, ...] | None:
    address = system_bus_address()
    try:
        bus = MessageBus(bus_address=address) if address else MessageBus(bus_type=BusType.SYSTEM)
        await bus.connect()
    except (OSError, DBusError, ValueError):
        return None  # no system bus: no NetworkManager to ask
    try:
        connections = await shared_connections(bus)
    except DBusError as error:
        if error.type in NOT_THERE:
            return None
        raise SharingUnknown(Reason("nm-sharing-unknown", detail=str(error))) from None
    finally:
        bus.disconnect()  # type: ignore[no-untyped-call]
    return tuple(c.iface for c in connections if c.iface is not None and 0 < c.state <= ACTIVATED)


def networkmanager_shares() -> tuple[str, ...] | None:
    """The interfaces NetworkManager shares now, or None where it is not on the system bus.
    Blocking (its own event loop); raises `SharingUnknown`."""
    try:
        return asyncio.run(asyncio.wait_for(_from_networkmanager(), TIMEOUT))
    except TimeoutError:
        raise SharingUnknown(Reason("nm-timeout")) from None


def shared_now(snapshot_doc: dict[str, Any]) -> Shared:
    """The interfaces shared now; `snapshot_doc` (a live capture) is read when NetworkManager
    is not on the system bus.  Blocking (its own event loop); raises `SharingUnknown`."""
    ifaces = networkmanager_shares()
    if ifaces is not None:
        return Shared(ifaces, "NetworkManager")
    nft = snapshot_doc.get("nft")
    saves = {k: v for k, v in snapshot_doc.items() if k.endswith("_save") and isinstance(v, str)}
    tables = shared_interfaces(nft if isinstance(nft, dict) else {}, saves)
    return Shared(tuple(tables), "firewall")
