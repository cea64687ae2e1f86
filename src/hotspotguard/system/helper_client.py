"""The privileged helper's client (the CLI without root, the tray applet): D-Bus, system bus.

Each coroutine of :class:`HelperClient` is one method of ``io.github.hotspotguard.Helper1`` and
returns its decoded JSON.  With ``interactive=True`` calls carry ALLOW_INTERACTIVE_AUTHORIZATION,
so polkit may ask for a password (through the desktop's or a text agent).  Errors are
:class:`HelperUnavailable` (no helper installed, no system bus) or :class:`HelperRefused` (the
helper or polkit said no: ``kind`` is the helper's error kind, or ``AccessDenied``,
``InteractiveAuthorizationRequired``, ``InvalidArgs``, …).
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable
from typing import Any, Final

from dbus_next.constants import BusType, MessageFlag, MessageType
from dbus_next.errors import DBusError
from dbus_next.message import Message

from hotspotguard.system.dbusio import MessageBus

BUS_NAME: Final = "io.github.hotspotguard.Helper1"
OBJECT_PATH: Final = "/io/github/hotspotguard/Helper1"
INTERFACE: Final = "io.github.hotspotguard.Helper1"
ERROR_PREFIX: Final = "io.github.hotspotguard.Error."
INSTALL_HINT: Final = (
    "the privileged helper is not installed or cannot start: `hotspotguard doctor` says why "
    "(from a checkout: `sudo .venv/bin/hotspotguard-helper install-system`)"
)

#: method name -> D-Bus signature of its arguments
METHODS: Final[dict[str, str]] = {
    "GetSnapshot": "",
    "GetState": "as",
    "PreviewFix": "ss",
    "ApplyFix": "ssbs",
    "UndoFix": "s",
    "UndoAllFixes": "",
    "ListFixes": "",
    "SetPermanent": "sb",
    "Subscribe": "",
}
_UNAVAILABLE: Final = {
    "org.freedesktop.DBus.Error.ServiceUnknown",
    "org.freedesktop.DBus.Error.NameHasNoOwner",
    "org.freedesktop.DBus.Error.Spawn.ServiceNotFound",
    "org.freedesktop.DBus.Error.Spawn.ChildExited",
    "org.freedesktop.DBus.Error.Spawn.ExecFailed",
    "org.freedesktop.DBus.Error.Spawn.Failed",
    "org.freedesktop.DBus.Error.NoReply",
    "org.freedesktop.DBus.Error.Disconnected",
}


class HelperUnavailable(Exception):
    """The helper cannot be reached; the message says why and what to do, `cause` which case it
    is (``not-installed``, ``no-answer``, ``no-bus``, ``bus-gone``; "" for another) and
    `detail` the bus's own words, for a caller that words it in the person's language."""

    def __init__(self, message: str, cause: str = "", detail: str = "") -> None:
        super().__init__(message)
        self.cause = cause
        self.detail = detail

    @classmethod
    def not_installed(cls, detail: str) -> HelperUnavailable:
        return cls(f"{INSTALL_HINT} ({detail})", "not-installed", detail)

    @classmethod
    def no_answer(cls, detail: str) -> HelperUnavailable:
        return cls(f"the privileged helper did not answer: {detail}", "no-answer", detail)

    @classmethod
    def no_bus(cls, detail: str) -> HelperUnavailable:
        message = f"there is no system bus ({detail}); the helper needs D-Bus (package dbus)"
        return cls(message, "no-bus", detail)

    @classmethod
    def bus_gone(cls, detail: str = "") -> HelperUnavailable:
        message = "the system bus went away" + (f": {detail}" if detail else "")
        return cls(message, "bus-gone", detail)


class HelperRefused(Exception):
    """The helper (or polkit) answered with an error: `kind` and a one-line message; `fields`
    the reason's code and parameters where the helper sent them (``reason``, ``reason_code``,
    ``reason_params``, for wording.reason_sentence), else None."""

    def __init__(self, kind: str, message: str, fields: dict[str, Any] | None = None) -> None:
        super().__init__(message)
        self.kind = kind
        self.fields = fields


def _reason_fields(body: list[Any]) -> dict[str, Any] | None:
    """The structured reason an error reply carries as its second string (else None)."""
    if len(body) < 2 or not isinstance(body[1], str) or len(body[1]) > 65536:
        return None
    try:
        fields = json.loads(body[1])
    except ValueError:
        return None
    if not isinstance(fields, dict) or not isinstance(fields.get("reason_code"), str):
        return None
    return fields


def _error_from(name: str, text: str, fields: dict[str, Any] | None = None) -> Exception:
    if name in _UNAVAILABLE:
        if name in ("org.freedesktop.DBus.Error.ServiceUnknown",) or "Spawn" in name:
            return HelperUnavailable.not_installed(text)
        return HelperUnavailable.no_answer(text)
    if name.startswith(ERROR_PREFIX):
        return HelperRefused(name[len(ERROR_PREFIX) :], text, fields)
    return HelperRefused(name.rsplit(".", 1)[-1], text, fields)


class HelperClient:
    """One connection to the helper.  ``async with HelperClient() as helper: ...``"""

    def __init__(self, *, interactive: bool = True, bus_address: str | None = None) -> None:
        self.interactive = interactive
        self.bus_address = bus_address
        self._bus: MessageBus | None = None
        self._callbacks: list[Callable[[], None]] = []
        self._helper: str | None = None  # the helper's unique name, from its last reply
        self._tasks: set[asyncio.Future[None]] = set()

    async def connect(self) -> HelperClient:
        if self._bus is not None and self._bus.connected:
            return self
        try:  # the constructor already connects the socket
            if self.bus_address is not None:
                bus = MessageBus(bus_address=self.bus_address)
            else:
                bus = MessageBus(bus_type=BusType.SYSTEM)
            await bus.connect()
        except (OSError, DBusError, ValueError) as error:
            raise HelperUnavailable.no_bus(str(error)) from None
        bus.add_message_handler(self._on_message)
        self._bus = bus
        return self

    async def close(self) -> None:
        if self._bus is not None:
            self._bus.disconnect()
            self._bus = None

    async def __aenter__(self) -> HelperClient:
        return await self.connect()

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    @property
    def unique_name(self) -> str | None:
        return self._bus.unique_name if self._bus is not None else None

    async def call(self, method: str, *args: Any) -> Any:
        """Call `method` (a key of METHODS) with `args`; the decoded JSON (None for no result)."""
        text = await self.call_text(method, *args)
        return None if text is None else _decode(text)

    async def call_text(self, method: str, *args: Any) -> str | None:
        """As `call`, but the answer's JSON text, undecoded (None for no result)."""
        signature = METHODS.get(method)
        if signature is None:
            raise ValueError(f"unknown helper method {method!r}")
        await self.connect()
        assert self._bus is not None
        flags = MessageFlag.NONE
        if self.interactive:
            flags |= MessageFlag.ALLOW_INTERACTIVE_AUTHORIZATION
        try:
            reply = await self._bus.call(
                Message(
                    destination=BUS_NAME,
                    path=OBJECT_PATH,
                    interface=INTERFACE,
                    member=method,
                    signature=signature,
                    body=list(args),
                    flags=flags,
                )
            )
        except (OSError, EOFError) as error:
            raise HelperUnavailable.bus_gone(str(error)) from None
        if reply is None:
            raise HelperUnavailable.bus_gone()
        if reply.sender and reply.sender.startswith(":"):
            self._helper = reply.sender
        if reply.message_type == MessageType.ERROR:
            text = reply.body[0] if reply.body and isinstance(reply.body[0], str) else ""
            raise _error_from(reply.error_name or "", text, _reason_fields(reply.body))
        if not reply.body:
            return None
        if not isinstance(reply.body[0], str):
            raise HelperRefused("Failed", "the helper's answer is not JSON")
        return reply.body[0]

    # -- one coroutine per method --
    async def get_snapshot(self) -> dict[str, Any]:
        """The snapshot, decoded in a worker thread (tens of MB at 100k rules: the loop, often
        Qt's, must not stall on it)."""
        text = await self.call_text("GetSnapshot")
        return dict(await asyncio.to_thread(_decode, text or "null") or {})

    async def get_state(self, ifaces: list[str]) -> dict[str, Any]:
        """The state of these hotspots (``status --json``'s; none: the helper finds them), from
        the helper's live model while this connection subscribes."""
        return dict(await self.call("GetState", list(ifaces)))

    async def preview_fix(self, iface: str, strategy: str) -> dict[str, Any]:
        return dict(await self.call("PreviewFix", iface, strategy))

    async def apply_fix(
        self, iface: str, strategy: str, *, permanent: bool = False, generation: str = ""
    ) -> dict[str, Any]:
        return dict(await self.call("ApplyFix", iface, strategy, permanent, generation))

    async def undo_fix(self, fix_id: str = "") -> dict[str, Any]:
        return dict(await self.call("UndoFix", fix_id))

    async def undo_all_fixes(self) -> list[dict[str, Any]]:
        return list(await self.call("UndoAllFixes"))

    async def list_fixes(self) -> list[dict[str, Any]]:
        return list(await self.call("ListFixes"))

    async def set_permanent(self, fix_id: str, permanent: bool) -> dict[str, Any]:
        return dict(await self.call("SetPermanent", fix_id, permanent))

    async def subscribe(self, callback: Callable[[], None]) -> None:
        """Have `callback()` run (on this loop) on every ``Changed`` from the helper while this
        connection lives; the helper stays running meanwhile.  Should the helper go away (a
        crash, a restart), the subscription is renewed (which starts a new helper) and
        `callback()` runs once: anything may have changed meanwhile."""
        await self.connect()
        first = not self._callbacks
        self._callbacks.append(callback)
        try:
            if first:
                await self._bus_call("AddMatch", _owner_rule())
            await self.call("Subscribe")
        except BaseException:
            self._callbacks.remove(callback)
            raise

    async def _bus_call(self, member: str, *args: str) -> None:
        assert self._bus is not None
        await self._bus.call(
            Message(
                destination="org.freedesktop.DBus",
                path="/org/freedesktop/DBus",
                interface="org.freedesktop.DBus",
                member=member,
                signature="s" * len(args),
                body=list(args),
            )
        )

    async def _resubscribe(self) -> None:
        try:
            await self.call("Subscribe")
        except (HelperUnavailable, HelperRefused):
            return  # no helper now: the next call will say so
        for callback in list(self._callbacks):
            callback()

    def _on_message(self, msg: Message) -> None:
        if (
            msg.message_type == MessageType.SIGNAL
            and msg.sender == "org.freedesktop.DBus"
            and msg.member == "NameOwnerChanged"
            and msg.signature == "sss"
            and msg.body[0] == BUS_NAME
            and msg.body[1]
            and msg.body[1] == self._helper
            and self._callbacks
        ):
            self._helper = None
            task = asyncio.ensure_future(self._resubscribe())
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)
            return
        if (
            msg.message_type == MessageType.SIGNAL
            and msg.interface == INTERFACE
            and msg.member == "Changed"
            and msg.path == OBJECT_PATH
            and msg.sender is not None
            and msg.sender == self._helper
        ):
            for callback in list(self._callbacks):
                callback()


def _owner_rule() -> str:
    return (
        "type='signal',sender='org.freedesktop.DBus',interface='org.freedesktop.DBus',"
        f"member='NameOwnerChanged',arg0='{BUS_NAME}'"
    )


def call_helper(method: str, *args: Any, interactive: bool = True) -> Any:
    """One call from synchronous code (the CLI): the decoded JSON, or HelperUnavailable /
    HelperRefused."""

    async def once() -> Any:
        async with HelperClient(interactive=interactive) as helper:
            return await helper.call(method, *args)

    return asyncio.run(once())


def _decode(text: str) -> Any:
    from hotspotguard.gcpause import gc_paused

    try:
        with gc_paused():
            return json.loads(text)
    except (TypeError, ValueError, RecursionError):
        raise HelperRefused("Failed", "the helper's answer is not JSON") from None
