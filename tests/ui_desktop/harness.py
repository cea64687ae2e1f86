"""The real applet (``hotspotguard.ui.app.main``) for the end-to-end tests and the benchmark.

Its Controller is the real one over ``InProcessBackend``, whose operations answer from real
captures (tests/ui_desktop/machine.py) instead of the live firewall. Commands arrive on stdin,
one per line; events leave on stdout as JSON lines:

    kind blocked|ok|unknown|no-hotspot|error   the machine becomes that capture; refresh
    show status|chains | show fix IFACE        open a window as the tray menu would
    apply KEY | outcome KEY                    press the fix dialog's Apply; emit its outcome
    grab KEY PATH                              save window KEY ("status", "fix:IFACE") as PNG
    quit

Usage: ``python -m tests.ui_desktop.harness [KIND] [--show]``.
"""

from __future__ import annotations

import json
import os
import sys
import time
from typing import Any

T0 = time.monotonic()

from PySide6.QtCore import QSocketNotifier, QTimer  # noqa: E402

from hotspotguard.ui import app  # noqa: E402
from hotspotguard.ui.controller import Controller, FixedHotspots, InProcessBackend  # noqa: E402
from tests.ui_desktop.machine import CapturedMachine  # noqa: E402

args = [a for a in sys.argv[1:] if not a.startswith("--")]
machine = CapturedMachine(args[0] if args else "blocked")


def emit(event: str, **fields: Any) -> None:
    line = json.dumps({"event": event, "t": round(time.monotonic() - T0, 4), **fields})
    sys.stdout.write(line + "\n")
    sys.stdout.flush()


def controller() -> Controller:
    return Controller(InProcessBackend(machine, kernel_events=False), FixedHotspots(None))


def ready(applet: app.Applet) -> None:
    tray = applet.tray
    tray.iconCreated.connect(lambda: emit("icon", mode=tray.mode))
    if tray.mode:  # up before on_ready ran
        emit("icon", mode=tray.mode)
    applet.controller.stateChanged.connect(  # type: ignore[attr-defined]
        lambda s: emit("state", state=s["state"], tooltip=tray.tooltip())
    )
    applet.controller.previewReady.connect(lambda p: emit("preview"))  # type: ignore[attr-defined]
    applet.notifier.sent.connect(lambda i, k: emit("notified", id=i, kind=k))
    for kind, factory in list(applet.factories.items()):

        def opened(*a: Any, _kind: str = kind, _factory: Any = factory) -> Any:
            window = _factory(*a)
            emit("window", kind=_kind, args=[str(x) for x in a[1:]])
            return window

        applet.factories[kind] = opened

    def command(line: str) -> None:
        words = line.split()
        if not words:
            return
        if words[0] == "kind":
            machine.set_kind(words[1])
            applet.controller.refresh()  # type: ignore[attr-defined]
        elif words[0] == "show" and words[1] == "fix":
            applet.show_fix(words[2])
        elif words[0] == "show":
            {"status": applet.show_status, "chains": applet.show_chains}[words[1]]()
        elif words[0] == "grab":
            window = applet.windows[words[1]]
            window.repaint()
            window.grab().save(words[2])
            emit("grabbed", key=words[1], path=words[2], w=window.width(), h=window.height())
        elif words[0] == "apply":  # the fix dialog's Apply button
            applet.windows[words[1]].apply()
        elif words[0] == "outcome":  # what the fix dialog says about it
            emit("outcome", key=words[1], text=applet.windows[words[1]].outcome.text())
        elif words[0] == "quit":
            applet.quit()

    buffer = b""

    def readable() -> None:
        nonlocal buffer
        chunk = os.read(0, 4096)
        if not chunk:
            notifier.setEnabled(False)
            applet.quit()
            return
        buffer += chunk
        while b"\n" in buffer:
            line, buffer = buffer.split(b"\n", 1)
            command(line.decode())

    notifier = QSocketNotifier(0, QSocketNotifier.Type.Read, applet)
    notifier.activated.connect(readable)
    QTimer.singleShot(0, lambda: emit("ready", pid=os.getpid()))


if __name__ == "__main__":
    sys.exit(app.main(["--show"] if "--show" in sys.argv else [], controller, on_ready=ready))
