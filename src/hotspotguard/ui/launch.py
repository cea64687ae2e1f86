"""``hotspotguard-tray``'s first module (``python -m hotspotguard.ui.launch``): it imports no
Qt, so before this thread loads Qt it starts a thread on the pure-Python modules the icon needs
(its StatusNotifierItem speaks dbus-next over asyncio); then it runs the applet (``ui.app``).

Qt's start (its libraries, the display, the platform plugin, the fonts) releases the GIL for
much of its work: on two cores the icon registers sooner (``benchmarks/bench_tray.py``). The
main thread's own import of a module waits for the thread's (Python's per-module lock).
"""

from __future__ import annotations

import sys

#: imported in the thread; no Qt module (Qt's are loaded by the main thread)
PREFETCH = ("asyncio", "dbus_next.aio.message_bus")


def prefetch(modules: tuple[str, ...] = PREFETCH) -> None:
    import contextlib
    import importlib
    import threading

    def work() -> None:
        for name in modules:
            with contextlib.suppress(ImportError):
                importlib.import_module(name)

    threading.Thread(target=work, name="prefetch", daemon=True).start()


def without_tls() -> None:
    """Keep OpenSSL out of the applet: asyncio imports ``ssl`` only to offer TLS, which a tray
    icon talking D-Bus over Unix sockets never uses — and loading it costs ≈ 8 MB of memory
    that would sit there all session.  (asyncio copes: it treats ssl as unavailable.)"""
    if "ssl" not in sys.modules:
        sys.modules["ssl"] = None  # type: ignore[assignment]


def main(argv: list[str] | None = None) -> int:
    without_tls()  # before asyncio is imported, in either thread
    prefetch()
    from hotspotguard.ui.app import main as applet

    return applet(argv)


if __name__ == "__main__":
    sys.exit(main())
