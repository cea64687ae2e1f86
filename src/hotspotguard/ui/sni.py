"""The tray icon as a native StatusNotifierItem, with its menu over ``com.canonical.dbusmenu``.

Why not ``QSystemTrayIcon``: Qt's item always says ``Status: Active``, so Plasma can neither
tuck a quiet icon into the overflow (``Passive``) nor bring a blocked hotspot back out
(``NeedsAttention``); and under Plasma Qt's item is the KDE platform theme's, which quits the
application when re-created (the quit lock). This one is served from Python over dbus-next on
the asyncio loop (qasync runs it inside Qt's), with plain messages: no code generation, no
introspection of Python annotations.

The item owns ``org.kde.StatusNotifierItem-PID-1`` and registers it with
``org.kde.StatusNotifierWatcher`` — again whenever the watcher re-appears (the login race, a
kded or panel restart). The menu is a ``QMenu`` read as it is: ids are the actions' positions,
and any change of an action (text, enabled, checked) is one ``LayoutUpdated``.
"""

from __future__ import annotations

import array
import asyncio
import os
import sys
from collections.abc import Callable
from typing import Any

from dbus_next.aio.message_bus import MessageBus
from dbus_next.constants import MessageFlag, MessageType, NameFlag, RequestNameReply
from dbus_next.errors import DBusError
from dbus_next.message import Message
from dbus_next.signature import Variant
from PySide6.QtCore import QObject, QPoint, QTimer, Signal
from PySide6.QtGui import QAction, QIcon, QImage
from PySide6.QtWidgets import QMenu

WATCHER = "org.kde.StatusNotifierWatcher"
WATCHER_PATH = "/StatusNotifierWatcher"
ITEM_INTERFACE = "org.kde.StatusNotifierItem"
ITEM_PATH = "/StatusNotifierItem"
MENU_INTERFACE = "com.canonical.dbusmenu"
MENU_PATH = "/MenuBar"
PROPERTIES = "org.freedesktop.DBus.Properties"
INTROSPECTABLE = "org.freedesktop.DBus.Introspectable"
DBUS = "org.freedesktop.DBus"
#: NameOwnerChanged of the watcher only
WATCHER_MATCH = (
    f"type='signal',sender='{DBUS}',interface='{DBUS}',member='NameOwnerChanged',arg0='{WATCHER}'"
)
PIXMAP_SIZES = (22, 32, 48)

Pixmaps = list[list[Any]]

INTROSPECTION = """<!DOCTYPE node PUBLIC "-//freedesktop//DTD D-BUS Object Introspection 1.0//EN"
 "http://www.freedesktop.org/standards/dbus/1.0/introspect.dtd">
<node>
 <interface name="org.kde.StatusNotifierItem">
  <property name="Category" type="s" access="read"/>
  <property name="Id" type="s" access="read"/>
  <property name="Title" type="s" access="read"/>
  <property name="Status" type="s" access="read"/>
  <property name="WindowId" type="i" access="read"/>
  <property name="IconThemePath" type="s" access="read"/>
  <property name="Menu" type="o" access="read"/>
  <property name="ItemIsMenu" type="b" access="read"/>
  <property name="IconName" type="s" access="read"/>
  <property name="IconPixmap" type="a(iiay)" access="read"/>
  <property name="OverlayIconName" type="s" access="read"/>
  <property name="OverlayIconPixmap" type="a(iiay)" access="read"/>
  <property name="AttentionIconName" type="s" access="read"/>
  <property name="AttentionIconPixmap" type="a(iiay)" access="read"/>
  <property name="AttentionMovieName" type="s" access="read"/>
  <property name="ToolTip" type="(sa(iiay)ss)" access="read"/>
  <method name="ContextMenu"><arg name="x" type="i" direction="in"/>\
<arg name="y" type="i" direction="in"/></method>
  <method name="Activate"><arg name="x" type="i" direction="in"/>\
<arg name="y" type="i" direction="in"/></method>
  <method name="SecondaryActivate"><arg name="x" type="i" direction="in"/>\
<arg name="y" type="i" direction="in"/></method>
  <method name="Scroll"><arg name="delta" type="i" direction="in"/>\
<arg name="orientation" type="s" direction="in"/></method>
  <signal name="NewTitle"/>
  <signal name="NewIcon"/>
  <signal name="NewAttentionIcon"/>
  <signal name="NewOverlayIcon"/>
  <signal name="NewToolTip"/>
  <signal name="NewStatus"><arg name="status" type="s"/></signal>
 </interface>
 <interface name="com.canonical.dbusmenu">
  <property name="Version" type="u" access="read"/>
  <property name="TextDirection" type="s" access="read"/>
  <property name="Status" type="s" access="read"/>
  <property name="IconThemePath" type="as" access="read"/>
  <method name="GetLayout"><arg type="i" direction="in"/><arg type="i" direction="in"/>\
<arg type="as" direction="in"/><arg type="u" direction="out"/>\
<arg type="(ia{sv}av)" direction="out"/></method>
  <method name="GetGroupProperties"><arg type="ai" direction="in"/><arg type="as" direction="in"/>\
<arg type="a(ia{sv})" direction="out"/></method>
  <method name="GetProperty"><arg type="i" direction="in"/><arg type="s" direction="in"/>\
<arg type="v" direction="out"/></method>
  <method name="Event"><arg type="i" direction="in"/><arg type="s" direction="in"/>\
<arg type="v" direction="in"/><arg type="u" direction="in"/></method>
  <method name="EventGroup"><arg type="a(isvu)" direction="in"/>\
<arg type="ai" direction="out"/></method>
  <method name="AboutToShow"><arg type="i" direction="in"/><arg type="b" direction="out"/></method>
  <method name="AboutToShowGroup"><arg type="ai" direction="in"/><arg type="ai" direction="out"/>\
<arg type="ai" direction="out"/></method>
  <signal name="ItemsPropertiesUpdated"><arg type="a(ia{sv})"/><arg type="a(ias)"/></signal>
  <signal name="LayoutUpdated"><arg type="u"/><arg type="i"/></signal>
  <signal name="ItemActivationRequested"><arg type="i"/><arg type="u"/></signal>
 </interface>
</node>
"""


def icon_pixmaps(icon: QIcon) -> Pixmaps:
    """An icon as SNI pixmaps: (width, height, ARGB32 in network byte order) per size."""
    pixmaps: Pixmaps = []
    if icon.isNull():
        return pixmaps
    for size in PIXMAP_SIZES:
        image = icon.pixmap(size, size).toImage().convertToFormat(QImage.Format.Format_ARGB32)
        if image.isNull():
            continue
        words = array.array("I", bytes(image.constBits())[: image.sizeInBytes()])
        if sys.byteorder == "little":
            words.byteswap()
        pixmaps.append([image.width(), image.height(), words.tobytes()])
    return pixmaps


class Look:
    """What the item shows: status, icon, attention icon and tooltip."""

    def __init__(
        self,
        status: str = "Passive",
        icon: QIcon | None = None,
        attention: QIcon | None = None,
        tooltip: str = "",
    ) -> None:
        self.status = status
        self.icon_name = icon.name() if icon is not None else ""
        self.icon = icon_pixmaps(icon) if icon is not None else []
        self.attention_name = attention.name() if attention is not None else ""
        self.attention = icon_pixmaps(attention) if attention is not None else []
        self.tooltip = tooltip


class MenuExport:
    """A QMenu as ``com.canonical.dbusmenu`` (flat: our menu has no submenus)."""

    def __init__(self, menu: QMenu, changed: Callable[[], None]) -> None:
        self.menu = menu
        self.revision = 1
        self._changed = changed
        self._pending = False
        for action in menu.actions():
            action.changed.connect(self._action_changed)

    def _action_changed(self) -> None:
        if not self._pending:  # several changes in one go: one LayoutUpdated
            self._pending = True
            QTimer.singleShot(0, self._flush)

    def _flush(self) -> None:
        self._pending = False
        self.revision += 1
        self._changed()

    def actions(self) -> list[QAction]:
        return self.menu.actions()

    def action(self, item_id: int) -> QAction | None:
        actions = self.actions()
        return actions[item_id - 1] if 0 < item_id <= len(actions) else None

    def properties(self, item_id: int, names: list[str] | None = None) -> dict[str, Variant]:
        props: dict[str, Variant] = {}
        if item_id == 0:
            props["children-display"] = Variant("s", "submenu")
        elif (action := self.action(item_id)) is not None:
            if action.isSeparator():
                props["type"] = Variant("s", "separator")
            else:
                props["label"] = Variant("s", action.text().replace("_", "__").replace("&", "_"))
                props["enabled"] = Variant("b", action.isEnabled())
                if action.isCheckable():
                    props["toggle-type"] = Variant("s", "checkmark")
                    props["toggle-state"] = Variant("i", 1 if action.isChecked() else 0)
            props["visible"] = Variant("b", action.isVisible())
        if names:
            props = {k: v for k, v in props.items() if k in names}
        return props

    def layout(self, parent: int, depth: int, names: list[str]) -> list[Any]:
        children: list[Variant] = []
        if parent == 0 and depth != 0:
            for item_id in range(1, len(self.actions()) + 1):
                node = [item_id, self.properties(item_id, names), []]
                children.append(Variant("(ia{sv}av)", node))
        return [parent, self.properties(parent, names), children]

    def event(self, item_id: int, event: str) -> Callable[[], None] | None:
        """What a click does (run once the reply is on its way: the host is not kept
        waiting, and Quit does not cut the reply off)."""
        action = self.action(item_id)
        if event == "clicked" and action is not None and action.isEnabled():
            return action.trigger
        return None

    def about_to_show(self, item_id: int) -> bool:
        """The menu opens: refresh what is read lazily (the autostart check mark)."""
        if item_id != 0:
            return False
        before = self.revision
        self.menu.aboutToShow.emit()
        if self._pending:
            self._flush()
        return self.revision != before


class StatusNotifierItem(QObject):
    """One item on the session bus. ``start()`` then ``show(look)``; ``stop()`` at the end."""

    #: left click (Activate), middle click (SecondaryActivate), at screen coordinates
    activated = Signal()
    secondaryActivated = Signal()
    #: registered with a watcher (at start and whenever one re-appears)
    registered = Signal()
    #: the watcher is there (True) or gone (False)
    watcherPresent = Signal(bool)

    def __init__(
        self,
        menu: QMenu,
        item_id: str,
        title: str,
        bus_address: str | None = None,
        parent: QObject | None = None,
    ) -> None:
        super().__init__(parent)
        self.item_id = item_id
        self.title = title
        self.bus_address = bus_address
        self.bus: MessageBus | None = None
        self.name = f"org.kde.StatusNotifierItem-{os.getpid()}-1"
        self.look = Look()
        self.menu = MenuExport(menu, self._layout_changed)
        self._tasks: set[asyncio.Task[Any]] = set()
        self._after: list[Callable[[], None]] = []
        self.is_registered = False

    # --- the bus -------------------------------------------------------------------------

    async def start(self) -> bool:
        """Connect, own the item's name, follow the watcher; whether a watcher took the item
        (False: no watcher now — the item waits for one; or no session bus at all)."""
        try:
            bus = await (
                MessageBus(bus_address=self.bus_address) if self.bus_address else MessageBus()
            ).connect()
        except Exception as error:
            print(f"hotspotguard: no session bus for the tray item: {error}", file=sys.stderr)
            return False
        self.bus = bus
        bus.add_message_handler(self._on_message)
        reply = await bus.request_name(self.name, NameFlag.DO_NOT_QUEUE)
        if reply not in (RequestNameReply.PRIMARY_OWNER, RequestNameReply.ALREADY_OWNER):
            self.name = bus.unique_name or self.name
        await self._call(DBUS, "/org/freedesktop/DBus", DBUS, "AddMatch", "s", [WATCHER_MATCH])
        return await self.register()

    async def register(self) -> bool:
        """Register with the watcher; False when there is none (or it refused)."""
        if self.bus is None:
            return False
        reply = await self._call(
            WATCHER, WATCHER_PATH, WATCHER, "RegisterStatusNotifierItem", "s", [self.name]
        )
        self.is_registered = reply is not None and reply.message_type == MessageType.METHOD_RETURN
        if self.is_registered:
            self.registered.emit()
        return self.is_registered

    def close(self) -> None:
        """Leave the bus: the watcher drops the item with our name."""
        for task in list(self._tasks):
            task.cancel()
        bus, self.bus = self.bus, None
        if bus is not None:
            bus.disconnect()

    async def _call(
        self, destination: str, path: str, interface: str, member: str, sig: str, body: list[Any]
    ) -> Message | None:
        if self.bus is None:
            return None
        message = Message(
            destination=destination,
            path=path,
            interface=interface,
            member=member,
            signature=sig,
            body=body,
            flags=MessageFlag.NO_AUTOSTART,  # a watcher that is not running stays so
        )
        try:
            return await self.bus.call(message)
        except Exception:  # the bus went away
            return None

    def _spawn(self, coroutine: Any) -> None:
        task = asyncio.get_event_loop().create_task(coroutine)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    def _signal(self, path: str, interface: str, member: str, sig: str = "", *body: Any) -> None:
        if self.bus is not None:
            self.bus.send(Message.new_signal(path, interface, member, sig, list(body)))

    # --- what it shows -------------------------------------------------------------------

    def show(self, look: Look) -> None:
        """Show `look`; only what changed is announced (a host re-reads each announcement)."""
        old, self.look = self.look, look
        if look.icon_name != old.icon_name or look.icon != old.icon:
            self._signal(ITEM_PATH, ITEM_INTERFACE, "NewIcon")
        if look.attention_name != old.attention_name or look.attention != old.attention:
            self._signal(ITEM_PATH, ITEM_INTERFACE, "NewAttentionIcon")
        if look.tooltip != old.tooltip or look.icon != old.icon:
            self._signal(ITEM_PATH, ITEM_INTERFACE, "NewToolTip")
        if look.status != old.status:
            self._signal(ITEM_PATH, ITEM_INTERFACE, "NewStatus", "s", look.status)

    def _layout_changed(self) -> None:
        self._signal(MENU_PATH, MENU_INTERFACE, "LayoutUpdated", "ui", self.menu.revision, 0)

    def item_properties(self) -> dict[str, Variant]:
        look = self.look
        return {
            "Category": Variant("s", "SystemServices"),
            "Id": Variant("s", self.item_id),
            "Title": Variant("s", self.title),
            "Status": Variant("s", look.status),
            "WindowId": Variant("i", 0),
            "IconThemePath": Variant("s", ""),
            "Menu": Variant("o", MENU_PATH),
            "ItemIsMenu": Variant("b", False),
            "IconName": Variant("s", look.icon_name),
            "IconPixmap": Variant("a(iiay)", look.icon),
            "OverlayIconName": Variant("s", ""),
            "OverlayIconPixmap": Variant("a(iiay)", []),
            "AttentionIconName": Variant("s", look.attention_name),
            "AttentionIconPixmap": Variant("a(iiay)", look.attention),
            "AttentionMovieName": Variant("s", ""),
            "ToolTip": Variant(
                "(sa(iiay)ss)", [look.icon_name, look.icon, self.title, look.tooltip]
            ),
        }

    def menu_properties(self) -> dict[str, Variant]:
        return {
            "Version": Variant("u", 3),
            "TextDirection": Variant("s", "rtl" if self.menu.menu.isRightToLeft() else "ltr"),
            "Status": Variant("s", "normal"),
            "IconThemePath": Variant("as", []),
        }

    # --- incoming messages ---------------------------------------------------------------

    def _on_message(self, message: Message) -> Message | bool | None:
        kind = message.message_type
        if kind == MessageType.SIGNAL:
            if message.member == "NameOwnerChanged" and message.body[:1] == [WATCHER]:
                present = bool(message.body[2])
                self.is_registered = self.is_registered and present
                self.watcherPresent.emit(present)
                if present:
                    self._spawn(self.register())
            return None
        if kind != MessageType.METHOD_CALL or message.path not in (ITEM_PATH, MENU_PATH):
            return None
        self._after = []
        try:
            reply = self._answer(message)
        except (IndexError, TypeError, ValueError) as error:
            raise DBusError("org.freedesktop.DBus.Error.InvalidArgs", str(error)) from error
        if reply is None or self.bus is None:
            return reply
        after, self._after = self._after, []
        sent = self.bus.send(reply)
        for then in after:
            sent.add_done_callback(lambda _sent, then=then: QTimer.singleShot(0, then))
        return True

    def _answer(self, message: Message) -> Message | None:
        interface, member, body = message.interface, message.member, message.body
        reply: tuple[str, list[Any]] | None = None
        if interface == INTROSPECTABLE and member == "Introspect":
            reply = ("s", [INTROSPECTION])
        elif interface == PROPERTIES:
            props = self.item_properties() if message.path == ITEM_PATH else self.menu_properties()
            if member == "GetAll":
                reply = ("a{sv}", [props])
            elif member == "Get" and body[1] in props:
                reply = ("v", [props[body[1]]])
            elif member == "Get":
                raise DBusError("org.freedesktop.DBus.Error.UnknownProperty", body[1])
        elif message.path == ITEM_PATH and interface in (ITEM_INTERFACE, None):
            reply = self._item_call(member, body)
        elif message.path == MENU_PATH and interface in (MENU_INTERFACE, None):
            reply = self._menu_call(member, body)
        if reply is None:
            return None  # dbus-next answers UnknownMethod
        return Message.new_method_return(message, reply[0], reply[1])

    def _item_call(self, member: str, body: list[Any]) -> tuple[str, list[Any]] | None:
        if member == "Activate":
            self._after.append(self.activated.emit)
        elif member == "SecondaryActivate":
            self._after.append(self.secondaryActivated.emit)
        elif member == "ContextMenu":  # a host that does not read the dbusmenu itself
            point = QPoint(int(body[0]), int(body[1]))
            self._after.append(lambda: self.menu.menu.popup(point))
        elif member != "Scroll":  # scrolling means nothing here
            return None
        return ("", [])

    def _menu_call(self, member: str, body: list[Any]) -> tuple[str, list[Any]] | None:
        menu = self.menu
        if member == "GetLayout":
            return ("u(ia{sv}av)", [menu.revision, menu.layout(body[0], body[1], body[2])])
        if member == "GetGroupProperties":
            ids = body[0] or range(len(menu.actions()) + 1)
            return ("a(ia{sv})", [[[i, menu.properties(i, body[1])] for i in ids]])
        if member == "GetProperty":
            props = menu.properties(body[0])
            if body[1] not in props:
                raise DBusError("org.freedesktop.DBus.Error.InvalidArgs", body[1])
            return ("v", [props[body[1]]])
        if member == "Event":
            self._after += filter(None, [menu.event(body[0], body[1])])
            return ("", [])
        if member == "EventGroup":
            for item_id, event, _data, _time in body[0]:
                self._after += filter(None, [menu.event(item_id, event)])
            return ("ai", [[]])
        if member == "AboutToShow":
            return ("b", [menu.about_to_show(body[0])])
        if member == "AboutToShowGroup":
            updates = [i for i in body[0] if menu.about_to_show(i)]
            return ("aiai", [updates, []])
        return None
