"""``hotspotguard-tray``'s first module (``python -m hotspotguard.ui.launch``): it imports no
Qt, so the pure-Python modules the icon needs (its StatusNotifierItem speaks dbus-next over
asyncio) are imported before Qt is; then it runs the applet (``ui.app``).

Why before: once PySide6 is imported, its import hook reads the source of every module
imported after it (looking for ``__feature__`` use) — ≈ 10 ms more for these on the way to
the icon (``benchmarks/bench_tray.py``). (A thread gains nothing: Qt's start holds the GIL.)

The cyclic garbage collector is off until the icon is up: the imports allocate much and free
little, and its passes over them cost ≈ 10 ms of CPU on the way to the icon.
"""

from __future__ import annotations

import contextlib
import gc
import importlib
import sys

#: imported before Qt: asyncio and dbus-next, for the StatusNotifierItem (ui/sni.py)
BEFORE_QT = ("asyncio", "dbus_next.aio.message_bus")


def without_tls() -> None:
    """Keep OpenSSL out of the applet: asyncio imports ``ssl`` only to offer TLS, which a tray
    icon talking D-Bus over Unix sockets never uses — and loading it costs ≈ 8 MB of memory
    that would sit there all session.  (asyncio copes: it treats ssl as unavailable.)"""
    if "ssl" not in sys.modules:
        sys.modules["ssl"] = None  # type: ignore[assignment]


def before_qt() -> None:
    """Keep OpenSSL out, then import :data:`BEFORE_QT` (a missing one is the item's to
    report)."""
    without_tls()
    for name in BEFORE_QT:
        with contextlib.suppress(ImportError):
            importlib.import_module(name)


def main(argv: list[str] | None = None) -> int:
    gc.disable()  # until the icon is up (ui.app.run enables it again); see the module's doc
    before_qt()
    from hotspotguard.ui.app import main as applet

    return applet(argv)


if __name__ == "__main__":
    sys.exit(main())
