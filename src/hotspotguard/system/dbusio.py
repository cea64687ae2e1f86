"""dbus-next's asyncio ``MessageBus`` with a writer that survives a full socket buffer.

dbus-next 0.2.3's writer sends queued messages in a loop and treats ``EAGAIN`` from ``send()``
as a fatal error: the connection is finalized (for the helper: it exits) whenever the kernel's
socket buffer happens to be exactly full between two messages — a burst of a few hundred calls
is enough (seen with the fuzz test).  This writer waits for the socket to become writable
again instead.
"""

from __future__ import annotations

import array
import socket
from copy import copy
from typing import Any

from dbus_next.aio import message_bus as _aio
from dbus_next.message import Message


class _Writer(_aio._MessageWriter):
    def write_callback(self) -> None:
        try:
            while True:
                if self.buf is None:
                    if self.messages.qsize() == 0:
                        self.loop.remove_writer(self.fd)
                        return
                    buf, unix_fds, fut = self.messages.get_nowait()
                    self.unix_fds = unix_fds
                    self.buf = memoryview(buf)
                    self.offset = 0
                    self.fut = fut
                try:
                    if self.unix_fds and self.negotiate_unix_fd:
                        fds = array.array("i", self.unix_fds)
                        ancdata = [(socket.SOL_SOCKET, socket.SCM_RIGHTS, fds)]
                        self.offset += self.sock.sendmsg([self.buf[self.offset :]], ancdata)
                        self.unix_fds = None
                    else:
                        self.offset += self.sock.send(self.buf[self.offset :])
                except (BlockingIOError, InterruptedError):
                    return  # still registered: called again when the socket is writable
                if self.offset >= len(self.buf):
                    self.buf = None
                    _aio._future_set_result(self.fut, None)
                else:
                    return
        except Exception as error:
            _aio._future_set_exception(self.fut, error)
            self.bus._finalize(error)

    def buffer_message(self, msg: Any, future: Any = None) -> None:
        marshalled = msg._marshall(negotiate_unix_fd=self.negotiate_unix_fd)
        self.messages.put_nowait((marshalled, copy(msg.unix_fds), future))


class MessageBus(_aio.MessageBus):
    """``dbus_next.aio.MessageBus`` with the robust writer (same constructor)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._writer = _Writer(self)


async def call_method(
    bus: _aio.MessageBus,
    destination: str,
    path: str,
    interface: str,
    member: str,
    signature: str = "",
    body: list[Any] | None = None,
) -> Message | None:
    """One method call and its reply (None: the bus went away); what an error reply means is
    the caller's to say."""
    return await bus.call(
        Message(
            destination=destination,
            path=path,
            interface=interface,
            member=member,
            signature=signature,
            body=body or [],
        )
    )
