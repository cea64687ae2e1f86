"""Read a StatusNotifierItem and its dbusmenu from the bus, as a tray host does (dbus-next).

Blocking helpers for the end-to-end tests (each call connects, asks, disconnects):
``properties(address, item)``, ``menu_labels(address, item)``, ``call(address, item, member)``.
`item` is a watcher's entry, ``service/path`` (or a bare service: ``/StatusNotifierItem``).
"""

from __future__ import annotations

import asyncio
from typing import Any

from dbus_next import Message, MessageType, Variant
from dbus_next.aio import MessageBus

ITEM = "org.kde.StatusNotifierItem"
MENU = "com.canonical.dbusmenu"


def split(item: str) -> tuple[str, str]:
    service, _, path = item.partition("/")
    return service, "/" + path if path else "/StatusNotifierItem"


async def _call(
    address: str, service: str, path: str, interface: str, member: str, sig: str, body: list[Any]
) -> list[Any]:
    bus = await MessageBus(bus_address=address).connect()
    try:
        reply = await bus.call(
            Message(
                destination=service,
                path=path,
                interface=interface,
                member=member,
                signature=sig,
                body=body,
            )
        )
    finally:
        bus.disconnect()
    assert reply is not None
    if reply.message_type == MessageType.ERROR:
        raise RuntimeError(f"{member}: {reply.error_name}: {reply.body}")
    return list(reply.body)


def _plain(value: Any) -> Any:
    if isinstance(value, Variant):
        return _plain(value.value)
    if isinstance(value, list):
        return [_plain(v) for v in value]
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    return value


def properties(address: str, item: str) -> dict[str, Any]:
    """All the item's properties (variants unwrapped)."""
    service, path = split(item)
    body = asyncio.run(
        _call(address, service, path, "org.freedesktop.DBus.Properties", "GetAll", "s", [ITEM])
    )
    return {k: _plain(v) for k, v in body[0].items()}


def menu_items(address: str, item: str) -> list[dict[str, Any]]:
    """The menu's entries (id, properties), as the host reads them for a right click."""
    service, _path = split(item)
    menu_path = properties(address, item)["Menu"]
    asyncio.run(_call(address, service, menu_path, MENU, "AboutToShow", "i", [0]))
    _revision, layout = asyncio.run(
        _call(address, service, menu_path, MENU, "GetLayout", "iias", [0, -1, []])
    )
    return [{"id": child.value[0], **_plain(child.value[1])} for child in layout[2]]


def menu_labels(address: str, item: str) -> list[str]:
    return [e.get("label", "-") for e in menu_items(address, item) if e.get("visible", True)]


def click_menu(address: str, item: str, label: str) -> None:
    """Click an entry of the menu by its label, as the host does (Event "clicked")."""
    service, _ = split(item)
    entry = next(e for e in menu_items(address, item) if e.get("label") == label)
    menu_path = properties(address, item)["Menu"]
    asyncio.run(
        _call(
            address,
            service,
            menu_path,
            MENU,
            "Event",
            "isvu",
            [entry["id"], "clicked", Variant("i", 0), 0],
        )
    )


def call(address: str, item: str, member: str, sig: str = "ii", *body: Any) -> None:
    """Activate, SecondaryActivate (at 0,0 by default), ContextMenu or Scroll."""
    service, path = split(item)
    args = list(body) or ([0, 0] if sig == "ii" else [])
    asyncio.run(_call(address, service, path, ITEM, member, sig, args))
