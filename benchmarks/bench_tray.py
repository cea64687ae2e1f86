"""The tray applet's figures beside a bare PySide6 tray icon, measured in the same run.

In a private headless desktop (Xvfb, a private session bus, xfce4-panel as the tray host; see
tests/ui_desktop/desktop_lab.py):

- start -> icon registered with the tray host (the watcher's StatusNotifierItemRegistered),
  median of several starts (target: ours <= 1.5x bare), and the CPU time the process used until
  then (read as the watcher announces the item: what a busy machine does not inflate);
- VmRSS after 10 s idle (target <= 1.3x bare);
- idle CPU time and wake-ups (context switches, all threads) over 60 s (target: 0 of ours).

"Ours" is the real entry point, ``python -m hotspotguard.ui.launch``, with the real Controller on
this machine (as root: the firewall read in-process; NetworkManager over the system bus). The
idle figures add the applet with the real Controller over a captured firewall and no live
sources (tests/ui_desktop/harness.py): the applet's own idle cost. Figures, not assertions.
The code runs from its own .pyc cache, as installed code does (not compiled on every start).

``--plasma``: the same in a real Plasma 6 session (tests/plasma/plasma_lab.py; its Debian 13
tree, Python 3.13 and PySide6 6.8 from Debian, the KDE platform theme loaded), kded6's watcher
as the registrar; "bare" is the same script with Debian's PySide6 there.
Usage: ``python benchmarks/bench_tray.py [--runs N] [--idle SECONDS] [--plasma]``.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from dbus_next import Message, MessageType  # noqa: E402
from dbus_next.aio import MessageBus  # noqa: E402
from tests.ui_desktop.desktop_lab import Desktop, missing  # noqa: E402

BARE = """
import sys
from PySide6.QtGui import QIcon
from PySide6.QtWidgets import QApplication, QMenu, QSystemTrayIcon
app = QApplication(sys.argv)
app.setQuitOnLastWindowClosed(False)
icon = QSystemTrayIcon(QIcon(sys.argv[1]))
menu = QMenu()
menu.addAction("Quit", app.quit)
icon.setContextMenu(menu)
icon.setToolTip("bare")
icon.show()
app.exec()
"""


def argv_for(kind: str, scratch: Path) -> list[str]:
    if kind == "bare":
        script = scratch / "bare_tray.py"
        script.write_text(BARE)
        return [sys.executable, str(script), str(ROOT / "resources/icons/hotspotguard-ok.svg")]
    if kind == "captured":
        return [sys.executable, "-m", "tests.ui_desktop.harness", "blocked"]
    return [sys.executable, "-m", "hotspotguard.ui.launch"]


class Registrations:
    """StatusNotifierItemRegistered signals from the tray host, with their arrival time and
    the registering process's CPU time then: the process is `pid` (the one just started), or
    the owner of the item's bus name (kded6 announces ``:1.N/StatusNotifierItem``)."""

    def __init__(self) -> None:
        self.times: list[float] = []
        self.cpu: list[float] = []
        self.event = asyncio.Event()
        #: the registering process, when the caller knows it
        self.pid = 0
        self.bus: MessageBus | None = None
        self.tasks: set[asyncio.Future[None]] = set()

    async def connect(self, address: str) -> MessageBus:
        bus = await MessageBus(bus_address=address).connect()
        rule = (
            "type='signal',interface='org.kde.StatusNotifierWatcher',"
            "member='StatusNotifierItemRegistered'"
        )
        await bus.call(
            Message(
                destination="org.freedesktop.DBus",
                path="/org/freedesktop/DBus",
                interface="org.freedesktop.DBus",
                member="AddMatch",
                signature="s",
                body=[rule],
            )
        )

        def handler(message: Message) -> None:
            if (
                message.message_type == MessageType.SIGNAL
                and message.member == "StatusNotifierItemRegistered"
            ):
                self.times.append(time.monotonic())
                if self.pid:
                    self.cpu.append(cpu_ticks(self.pid) / 100)
                    self.event.set()
                else:
                    task = asyncio.ensure_future(self._cpu_of(str(message.body[0]).split("/")[0]))
                    self.tasks.add(task)
                    task.add_done_callback(self.tasks.discard)

        bus.add_message_handler(handler)
        self.bus = bus
        return bus

    async def _cpu_of(self, name: str) -> None:
        """The CPU time of `name`'s owner (one round trip after the signal)."""
        assert self.bus is not None
        reply = await self.bus.call(
            Message(
                destination="org.freedesktop.DBus",
                path="/org/freedesktop/DBus",
                interface="org.freedesktop.DBus",
                member="GetConnectionUnixProcessID",
                signature="s",
                body=[name],
            )
        )
        ok = reply is not None and reply.message_type == MessageType.METHOD_RETURN
        self.cpu.append(cpu_ticks(int(reply.body[0])) / 100 if ok else float("nan"))
        self.event.set()


async def start_times(desktop: Desktop, runs: int) -> dict[str, list[float]]:
    registrations = Registrations()
    bus = await registrations.connect(desktop.env["DBUS_SESSION_BUS_ADDRESS"])
    results: dict[str, list[float]] = {"bare": [], "ours": [], "bare cpu": [], "ours cpu": []}
    for _ in range(runs):
        for kind in ("bare", "ours"):
            registrations.event.clear()
            started = time.monotonic()
            proc = desktop.start(kind, argv_for(kind, desktop.root), cwd=str(ROOT))
            registrations.pid = proc.pid
            await asyncio.wait_for(registrations.event.wait(), 30)
            results[f"{kind} cpu"].append(registrations.cpu[-1])  # CPU until then, s
            results[kind].append(registrations.times[-1] - started)
            desktop.stop(proc)
            desktop.procs.remove(proc)
            await asyncio.sleep(0.3)
    bus.disconnect()
    return results


def rss_kb(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    return 0


def cpu_ticks(pid: int) -> int:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return int(fields[11]) + int(fields[12])  # utime + stime


def switches(pid: int) -> int:
    total = 0
    for task in Path(f"/proc/{pid}/task").iterdir():
        for line in (task / "status").read_text().splitlines():
            if line.startswith(("voluntary_ctxt_switches", "nonvoluntary_ctxt_switches")):
                total += int(line.split()[1])
    return total


def idle_figures(
    desktop: Desktop, settle: float, idle: float, kinds: tuple[str, ...]
) -> dict[str, dict[str, float]]:
    """Start `kinds` together, wait `settle`, read VmRSS, then CPU and wake-ups over `idle`."""
    procs: dict[str, subprocess.Popen[bytes]] = {
        kind: desktop.start(
            kind,
            argv_for(kind, desktop.root),
            cwd=str(ROOT),
            env={"PYTHONPATH": str(ROOT)},
            stdin=subprocess.PIPE,  # the harness quits at the end of its input
        )
        for kind in kinds
    }
    time.sleep(settle)
    figures = {k: {"rss_mb": rss_kb(p.pid) / 1024} for k, p in procs.items()}
    before = {k: (cpu_ticks(p.pid), switches(p.pid)) for k, p in procs.items()}
    time.sleep(idle)
    hz = 100  # USER_HZ
    for kind, proc in procs.items():
        ticks, wakeups = cpu_ticks(proc.pid), switches(proc.pid)
        figures[kind]["cpu_ms"] = (ticks - before[kind][0]) * 1000 / hz
        figures[kind]["wakeups"] = wakeups - before[kind][1]
        desktop.stop(proc)
        desktop.procs.remove(proc)
    return figures


def plasma_figures(runs: int, settle: float, idle: float) -> int:
    """Start times, RSS and idle cost in the Plasma lab (root; its tree must be built)."""
    from tests.plasma.plasma_lab import Plasma
    from tests.plasma.plasma_lab import missing as plasma_missing

    reason = plasma_missing()
    if reason:
        print(f"bench_tray --plasma: skipped: {reason}")
        return 0
    session = Plasma(bind=True)
    try:
        scratch = session.logs

        async def starts() -> dict[str, list[float]]:
            registrations = Registrations()
            bus = await registrations.connect(session.address)
            results: dict[str, list[float]] = {
                k: [] for k in ("bare", "ours", "bare cpu", "ours cpu")
            }
            for _ in range(runs):
                for kind in ("bare", "ours"):
                    registrations.event.clear()
                    started = time.monotonic()
                    proc = session.start(kind, argv_for(kind, scratch))
                    await asyncio.wait_for(registrations.event.wait(), 30)
                    results[kind].append(registrations.times[-1] - started)
                    results[f"{kind} cpu"].append(registrations.cpu[-1])  # CPU until then, s
                    session.stop(proc)
                    session.procs.remove(proc)
                    await asyncio.sleep(0.5)
            bus.disconnect()
            return results

        times = asyncio.run(starts())
        figures: dict[str, dict[str, float]] = {}
        for kinds in (("bare", "ours"), ("captured",)):
            procs = {
                k: session.start(k, argv_for(k, scratch), stdin=subprocess.PIPE) for k in kinds
            }
            pids = {k: session._child_pid(p, "python3") for k, p in procs.items()}
            time.sleep(settle)
            for kind, pid in pids.items():
                figures[kind] = {"rss_mb": rss_kb(pid) / 1024}
            before = {k: (cpu_ticks(pid), switches(pid)) for k, pid in pids.items()}
            time.sleep(idle)
            for kind, pid in pids.items():
                figures[kind]["cpu_ms"] = (cpu_ticks(pid) - before[kind][0]) * 10
                figures[kind]["wakeups"] = switches(pid) - before[kind][1]
                session.stop(procs[kind])
                session.procs.remove(procs[kind])
    finally:
        session.down()
    bare, ours = statistics.median(times["bare"]), statistics.median(times["ours"])
    print(f"tray applet vs a bare PySide6 tray icon (Plasma 6.3 under Xvfb, {runs} starts)")
    print(
        f"  start -> icon registered: ours {ours * 1000:.0f} ms, bare {bare * 1000:.0f} ms "
        f"(median), {ours / bare:.2f}x (target <= 1.5x)"
    )
    cpu_bare, cpu_ours = statistics.median(times["bare cpu"]), statistics.median(times["ours cpu"])
    print(
        f"  CPU until registered (load-independent): ours {cpu_ours * 1000:.0f} ms, bare "
        f"{cpu_bare * 1000:.0f} ms (median), {cpu_ours / cpu_bare:.2f}x; "
        f"load {os.getloadavg()[0]:.1f}"
    )
    rb, ro = figures["bare"]["rss_mb"], figures["ours"]["rss_mb"]
    print(
        f"  VmRSS after {settle:.0f} s idle: ours {ro:.1f} MB, bare {rb:.1f} MB, "
        f"{ro / rb:.2f}x (target <= 1.3x)"
    )
    for kind in ("ours", "captured", "bare"):
        print(
            f"  idle {idle:.0f} s, {kind}: {figures[kind]['cpu_ms']:.0f} ms CPU, "
            f"{figures[kind]['wakeups']:.0f} wake-ups, VmRSS {figures[kind]['rss_mb']:.1f} MB"
        )
    return 0


def compiled_code(scratch: str) -> None:
    """Installed Python code has its .pyc files; a checkout run with PYTHONDONTWRITEBYTECODE
    would compile the applet on every start (≈ 25 ms). The caches go to `scratch`, warmed."""
    os.environ.pop("PYTHONDONTWRITEBYTECODE", None)
    os.environ["PYTHONPYCACHEPREFIX"] = scratch
    subprocess.run(
        [sys.executable, "-m", "compileall", "-q", str(ROOT / "src"), str(ROOT / "tests")],
        check=True,
    )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=5, help="starts of each (default 5)")
    parser.add_argument("--idle", type=float, default=60, help="idle window, s (default 60)")
    parser.add_argument("--settle", type=float, default=10, help="before RSS, s (default 10)")
    parser.add_argument("--plasma", action="store_true", help="in the Plasma 6 lab instead")
    args = parser.parse_args()
    if args.plasma:
        return plasma_figures(args.runs, args.settle, args.idle)
    reason = missing()
    if reason:
        print(f"bench_tray: skipped: {reason}")
        return 0
    pycache = tempfile.TemporaryDirectory(prefix="hsg-bench-tray-pycache-")
    compiled_code(pycache.name)
    with pycache, Desktop() as desktop:
        desktop.panel()
        starts = asyncio.run(start_times(desktop, args.runs))
        idle = idle_figures(desktop, args.settle, args.idle, ("bare", "ours"))
        # one instance per session: the second applet runs on its own
        idle |= idle_figures(desktop, args.settle, args.idle, ("captured",))
    bare, ours = statistics.median(starts["bare"]), statistics.median(starts["ours"])
    print(f"tray applet vs a bare PySide6 tray icon (xfce4-panel under Xvfb, {args.runs} starts)")
    print(
        f"  start -> icon registered: ours {ours * 1000:.0f} ms, bare {bare * 1000:.0f} ms "
        f"(median), {ours / bare:.2f}x (target <= 1.5x)"
    )
    cpu_bare, cpu_ours = (
        statistics.median(starts["bare cpu"]),
        statistics.median(starts["ours cpu"]),
    )
    print(
        f"  CPU until registered (load-independent): ours {cpu_ours * 1000:.0f} ms, bare "
        f"{cpu_bare * 1000:.0f} ms (median), {cpu_ours / cpu_bare:.2f}x; "
        f"load {os.getloadavg()[0]:.1f}"
    )
    rb, ro = idle["bare"]["rss_mb"], idle["ours"]["rss_mb"]
    print(
        f"  VmRSS after {args.settle:.0f} s idle: ours {ro:.1f} MB, bare {rb:.1f} MB, "
        f"{ro / rb:.2f}x (target <= 1.3x)"
    )
    names = {
        "ours": "ours (this machine)",
        "captured": "ours (captured firewall, no live sources)",
        "bare": "bare",
    }
    for kind, name in names.items():
        print(
            f"  idle {args.idle:.0f} s, {name}: {idle[kind]['cpu_ms']:.0f} ms CPU, "
            f"{idle[kind]['wakeups']:.0f} wake-ups (context switches, all threads), "
            f"VmRSS {idle[kind]['rss_mb']:.1f} MB"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
