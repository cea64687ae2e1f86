"""The applet's asyncio loop: qasync's, run by Qt's, with its callbacks on ``QBasicTimer``\\ s.

qasync schedules each asyncio callback with ``QObject.startTimer`` and ends it with
``killTimer(int)``; in PySide6 ≥ 6.8 the first ``killTimer`` resolves its overloads against
``Qt.TimerId`` and so builds every enum of the ``Qt`` namespace (≈ 25-50 ms), on the way to the
tray icon. A ``QBasicTimer`` stops without that: the icon registers that much sooner
(``benchmarks/bench_tray.py``). Same semantics as qasync's timer: a cancelled handle is skipped
when its time comes; nothing runs once the loop is closed.
"""

from __future__ import annotations

import asyncio

import qasync  # takes the Qt binding already imported (ui.app imports PySide6 first)
from PySide6.QtCore import QBasicTimer, QObject, QTimerEvent
from PySide6.QtWidgets import QApplication


class _Callbacks(QObject):
    """What qasync's loop asks of its timer (``add_callback``, ``stop``, ``set_debug``), with
    a ``QBasicTimer`` per callback: stopped without ``killTimer``."""

    def __init__(self) -> None:
        super().__init__()
        self._pending: dict[int, tuple[QBasicTimer, asyncio.Handle]] = {}
        self._stopped = False

    def add_callback(self, handle: asyncio.Handle, delay: float = 0) -> asyncio.Handle:
        timer = QBasicTimer()
        timer.start(int(max(0.0, delay) * 1000), self)
        self._pending[timer.timerId()] = (timer, handle)
        return handle

    def timerEvent(self, event: QTimerEvent) -> None:  # a Qt override
        timer, handle = self._pending.pop(event.timerId(), (None, None))
        if timer is None or handle is None:
            return
        timer.stop()
        if not self._stopped and not handle.cancelled():
            handle._run()  # as asyncio's own loops run a handle

    def stop(self) -> None:
        self._stopped = True

    def set_debug(self, enabled: bool) -> None:
        """qasync logs each callback in debug mode; these run plain."""


def event_loop(app: QApplication, already_running: bool = False) -> qasync.QEventLoop:
    """qasync's loop over `app`, its callbacks on QBasicTimers (see the module's doc)."""
    loop = qasync.QEventLoop(app, already_running=already_running)
    loop._timer = _Callbacks()
    return loop
