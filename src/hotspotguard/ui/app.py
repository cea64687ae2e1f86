"""``hotspotguard tray`` / ``hotspotguard-tray``: the applet's entry point.

One instance per session: the first one owns ``io.github.hotspotguard.Tray`` on the session
bus; a second start asks it (``Tray1.Show``) to show its status window and exits. The icon is
shown first; the rest (the controller, notifications) is loaded after; windows on demand. Qt's
loop runs asyncio (qasync) for the controller and dbus-next (notifications).
"""

from __future__ import annotations

import argparse
import contextlib
import gc
import signal
import socket
import sys
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, cast

from PySide6.QtCore import (
    ClassInfo,
    QCoreApplication,
    QLibraryInfo,
    QLocale,
    QObject,
    QSocketNotifier,
    QTranslator,
    Slot,
)
from PySide6.QtDBus import QDBusConnection, QDBusInterface
from PySide6.QtGui import QIcon
from PySide6.QtWidgets import QApplication, QWidget

from hotspotguard.ui.launch import without_tls
from hotspotguard.ui.shipped import source_file
from hotspotguard.ui.tray import Tray

if TYPE_CHECKING:
    from hotspotguard.ui.controller import Controller

# The controller (the engine), the notifications and the windows are imported once the icon is
# up: the tray host shows it sooner. (asyncio and dbus-next, which the icon needs, ui.launch
# imports before Qt; qasync with the loop.)

APP_ID = "io.github.hotspotguard"
BUS_NAME = "io.github.hotspotguard.Tray"
OBJECT_PATH = "/io/github/hotspotguard/Tray"
INTERFACE = "io.github.hotspotguard.Tray1"

WindowFactory = Callable[..., QWidget]


def _default_windows() -> dict[str, WindowFactory]:
    """The windows, imported when first opened (they are not needed to sit in the tray)."""

    def status(controller: QObject) -> QWidget:
        from hotspotguard.ui.status_window import StatusWindow

        return StatusWindow(cast("Controller", controller))

    def chains(controller: QObject) -> QWidget:
        from hotspotguard.ui.chains import ChainsDialog

        return ChainsDialog(controller)

    def fix(controller: QObject, iface: str) -> QWidget:
        from hotspotguard.ui.fix_dialog import FixDialog

        return FixDialog(cast("Controller", controller), iface)

    return {"status": status, "chains": chains, "fix": fix}


def _raise(window: QWidget) -> None:
    window.show()
    window.raise_()
    window.activateWindow()


class Applet(QObject):
    """The tray, the notifications and the windows around one controller."""

    def __init__(
        self,
        controller: QObject,
        windows: dict[str, WindowFactory] | None = None,
        bus_address: str | None = None,
        parent: QObject | None = None,
        tray: Tray | None = None,
    ) -> None:
        import asyncio

        from hotspotguard.ui.notify import Notifier

        super().__init__(parent)
        self.controller = controller
        self.factories = {**_default_windows(), **(windows or {})}
        self.windows: dict[str, QWidget] = {}
        self.quit_requested = asyncio.Event()
        self.tray = tray or Tray(parent=self)
        self.tray.attach(controller)
        self.notifier = Notifier(
            controller, suppressed=self.status_visible, bus_address=bus_address, parent=self
        )
        self.tray.statusRequested.connect(self.show_status)
        self.tray.fixRequested.connect(self.show_fix)
        self.tray.undoRequested.connect(self.undo)
        self.tray.chainsRequested.connect(self.show_chains)
        self.tray.quitRequested.connect(self.quit)
        self.notifier.fixRequested.connect(self.show_fix)
        self.notifier.detailsRequested.connect(self.show_status)

    def status_visible(self) -> bool:
        window = self.windows.get("status")
        return window is not None and window.isVisible()

    def _window(self, key: str, *args: Any) -> QWidget:
        window = self.windows.get(key)
        if window is None:
            kind = key.split(":", 1)[0]
            window = self.factories[kind](self.controller, *args)
            self.windows[key] = window
        _raise(window)
        return window

    @Slot()
    def show_status(self) -> QWidget:
        return self._window("status")

    @Slot()
    def show_chains(self) -> QWidget:
        return self._window("chains")

    @Slot(str)
    def show_fix(self, iface: str) -> QWidget:
        return self._window(f"fix:{iface}", iface)

    @Slot()
    def undo(self) -> None:
        self.controller.undo()  # type: ignore[attr-defined]

    @Slot()
    def quit(self) -> None:
        self.quit_requested.set()

    async def close(self) -> None:
        self.tray.close()
        for window in self.windows.values():
            window.close()
        stop = getattr(self.controller, "stop", None)
        if callable(stop):
            stop()
        await self.notifier.stop()


@ClassInfo({"D-Bus Interface": INTERFACE})  # type: ignore[call-arg]  # PySide6's stub is wrong
class TrayService(QObject):  # type: ignore[operator]
    """``io.github.hotspotguard.Tray1``: what a second start asks of the first."""

    def __init__(self) -> None:
        super().__init__()
        self.applet: Applet | None = None
        self.pending = False

    @Slot()
    def Show(self) -> None:  # a D-Bus method name
        if self.applet is None:
            self.pending = True  # still starting: shown once ready
        else:
            self.applet.show_status()


def session_bus(bus_address: str | None = None) -> QDBusConnection:
    if bus_address:
        return QDBusConnection.connectToBus(bus_address, f"hotspotguard-{bus_address}")
    return QDBusConnection.sessionBus()


def claim(bus: QDBusConnection, service: TrayService) -> bool:
    """Own the single-instance name and serve Show; False when another instance has it (a
    session without a bus: True, no single instance)."""
    if not bus.isConnected():
        return True
    if not bus.registerService(BUS_NAME):
        return False
    bus.registerObject(OBJECT_PATH, service, QDBusConnection.RegisterOption.ExportAllSlots)
    return True


def ask_first_instance(bus: QDBusConnection) -> bool:
    reply = QDBusInterface(BUS_NAME, OBJECT_PATH, INTERFACE, bus).call("Show")
    return not reply.errorName()


def install_translations(app: QCoreApplication, locale: QLocale | None = None) -> list[str]:
    """Load ``hotspotguard_<locale>.qm`` (and Qt's own) for the system locale; the files
    loaded."""
    locale = locale or QLocale.system()
    loaded: list[str] = []
    folder = source_file("resources", "translations")
    sources = [("hotspotguard", str(folder) if folder else None)]
    sources.append(("qtbase", QLibraryInfo.path(QLibraryInfo.LibraryPath.TranslationsPath)))
    for name, directory in sources:
        translator = QTranslator(app)
        if directory and translator.load(locale, name, "_", directory):
            app.installTranslator(translator)
            loaded.append(translator.filePath())
    return loaded


def _signals_to_loop(on_signal: Callable[[], None]) -> QSocketNotifier:
    """SIGTERM/SIGINT wake Qt's loop (Python runs signal handlers only when it gets control)."""
    read, write = socket.socketpair()
    read.setblocking(False)
    write.setblocking(False)
    signal.set_wakeup_fd(write.fileno())
    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, lambda *_: None)
    notifier = QSocketNotifier(read.fileno(), QSocketNotifier.Type.Read)

    def woken() -> None:
        with contextlib.suppress(OSError):
            read.recv(64)
        on_signal()

    notifier.activated.connect(woken)
    notifier._sockets = (read, write)  # type: ignore[attr-defined]
    return notifier


def default_controller() -> QObject:
    from hotspotguard.ui.controller import Controller

    return Controller()


async def run(
    args: argparse.Namespace,
    controller_factory: Callable[[], QObject],
    windows: dict[str, WindowFactory] | None = None,
    bus_address: str | None = None,
    on_ready: Callable[[Applet], None] | None = None,
    tray: Tray | None = None,
    service: TrayService | None = None,
) -> int:
    """The applet's life: claim the name (or hand over; unless `main` did), build, wait for
    Quit, tidy up."""
    bus = session_bus(bus_address)
    if service is None:
        service = TrayService()
        if not claim(bus, service):
            return 0 if ask_first_instance(bus) else 1
    if tray is None:
        tray = Tray(bus_address=bus_address)
    tray.start()  # the icon first: the engine's imports can wait for it
    await tray.started()
    gc.enable()  # ui.launch turned it off for the way to the icon
    controller = controller_factory()
    applet = Applet(controller, windows, bus_address=bus_address, tray=tray)
    service.applet = applet
    applet.notifier.start()
    start = getattr(controller, "start", None)
    if callable(start):
        start()
    if args.show or service.pending:
        applet.show_status()
    if on_ready is not None:
        on_ready(applet)
    wake = _signals_to_loop(applet.quit)
    await applet.quit_requested.wait()
    wake.setEnabled(False)
    await applet.close()
    if bus.isConnected():
        bus.unregisterObject(OBJECT_PATH)
        bus.unregisterService(BUS_NAME)
    return 0


def parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="hotspotguard-tray",
        description="The hotspotguard tray applet (a second start shows the running one).",
    )
    parser.add_argument("--show", action="store_true", help="open the status window at start")
    parser.add_argument(
        "--check", action="store_true", help="build the tray and every window, then exit 0"
    )
    return parser


def self_check(app: QApplication) -> int:
    """``--check`` (installation tests, also offscreen): the controller, the tray and each
    window are built and closed; 0 when all of that works."""
    import asyncio

    from hotspotguard.ui.loop import event_loop

    async def build() -> None:
        applet = Applet(default_controller())
        for window in (applet.show_status(), applet.show_chains(), applet.show_fix("hs0")):
            window.close()
        await applet.close()

    loop = event_loop(app)
    asyncio.set_event_loop(loop)
    with loop:
        loop.run_until_complete(build())
    print("hotspotguard-tray: the tray, the status window, the chains and fix dialogs work")
    return 0


def make_application(argv: list[str]) -> QApplication:
    app = QApplication.instance() or QApplication(argv)
    assert isinstance(app, QApplication)
    app.setApplicationName("hotspotguard")
    app.setOrganizationDomain("hotspotguard.github.io")
    app.setDesktopFileName(APP_ID)
    app.setQuitOnLastWindowClosed(False)
    # Only Quit ends the applet: with the quit lock on, Qt ends the loop when the last
    # QEventLoopLocker goes — under Plasma one is held by the platform theme's tray icon, so a
    # re-created icon (the tray's watcher restarting) would quit the applet.
    app.setQuitLockEnabled(False)
    icon = source_file("resources", "icons", f"{APP_ID}.svg")
    app.setWindowIcon(QIcon.fromTheme(APP_ID, QIcon(str(icon) if icon else "")))
    install_translations(app)
    app.setApplicationDisplayName(QCoreApplication.translate("Applet", "Hotspot Guard"))
    return app


def main(
    argv: list[str] | None = None,
    controller_factory: Callable[[], QObject] | None = None,
    windows: dict[str, WindowFactory] | None = None,
    on_ready: Callable[[Applet], None] | None = None,
) -> int:
    """Run the applet until Quit (or SIGTERM); the exit code. The keywords are for tests."""
    without_tls()
    args = parser().parse_args(sys.argv[1:] if argv is None else argv)
    app = make_application(sys.argv[:1])
    if args.check:
        return self_check(app)
    bus = session_bus()
    service = TrayService()
    if not claim(bus, service):
        return 0 if ask_first_instance(bus) else 1
    import asyncio

    from hotspotguard.ui.loop import event_loop

    loop = event_loop(app)
    asyncio.set_event_loop(loop)
    try:
        with loop:
            return int(
                loop.run_until_complete(
                    run(
                        args,
                        controller_factory or default_controller,
                        windows,
                        on_ready=on_ready,
                        service=service,
                    )
                )
            )
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
