"""A real Plasma 6 session for the applet's tests: kwin_x11, kded6 (the StatusNotifierWatcher)
and plasmashell (the tray host and the notification server) from a cached Debian 13 tree, under
Xvfb — driven through tests/plasma/plasma6-lab.sh (recipe: /work/shared/notes/lab-plasma6.md).

The tree is built once by ``make test-plasma`` (``plasma6-lab.sh ensure``: debootstrap and
≈ 760 packages, ≈ 3 min, 1.8 GB) and kept in /var/cache/hotspotguard-tests/trixie-plasma.
Every process runs chrooted in a private mount namespace; ``down()`` stops those whose root is
the tree (all were started here), by pid. The applet runs from this checkout (bound into the
tree) with Debian 13's Python, PySide6 6.8, dbus-next and qasync.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import signal
import subprocess
import tempfile
import time
from pathlib import Path
from typing import Any

from tests.ui_desktop.desktop_lab import stop_group, wait_for

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = Path(__file__).resolve().parent / "plasma6-lab.sh"
TREE = Path(
    os.environ.get("HOTSPOTGUARD_PLASMA_TREE", "/var/cache/hotspotguard-tests/trixie-plasma")
)
STAMP = ".hotspotguard-plasma-3"
DISPLAY = ":42"
SESSION = "tmp/uxs"
#: the screen (1366x768): Plasma's bottom panel, and in it the tray's icons left of the
#: expander arrow (the clock, which changes, is left out)
PANEL = "1366x56+0+712"
TRAY = "200x40+1020+720"


def missing() -> str | None:
    """Why the Plasma lab cannot run here, or None."""
    if os.geteuid() != 0:
        return "needs root (chroot, private mounts)"
    if not (TREE / STAMP).exists():
        return f"no Plasma 6 tree in {TREE}: `make test-plasma` builds it (≈ 3 min, 1.8 GB)"
    for tool in ("import", "dbus-send", "unshare"):
        if subprocess.run(["sh", "-c", f"command -v {tool}"], capture_output=True).returncode:
            return f"needs {tool} on the host"
    return None


class Plasma:
    """One Plasma session (``up``); programs in it (``start``, ``run``); ``down``."""

    def __init__(self, bare: bool = False, bind: bool = False) -> None:
        """`bare`: X, the bus and kwin only; ``start_plasma()`` brings kded6 and plasmashell
        later (the login race). `bind`: ``logs`` is seen in the tree too (scratch files)."""
        # one session at a time on the shared tree and display (another checkout's run, a
        # benchmark): the next waits for the lock instead of killing the first one's programs
        self._lock = (TREE.parent / f"{TREE.name}.lock").open("w")
        fcntl.flock(self._lock, fcntl.LOCK_EX)
        self.tree = TREE
        self.session = TREE / SESSION
        self.address = f"unix:path={self.session}/rt/bus"
        self.env = {"DBUS_SESSION_BUS_ADDRESS": self.address, "DISPLAY": DISPLAY}
        self.logs = Path(tempfile.mkdtemp(prefix="hsg-plasma-"))
        self.procs: list[subprocess.Popen[bytes]] = []
        self.names: dict[int, str] = {}
        self._script_env = {**os.environ, "R": str(TREE), "PROJECT": str(ROOT)}
        if bind:
            self._script_env["UXBIND"] = str(self.logs)
        try:
            self._script("ensure")  # writes the session script (the tree is there)
            if bare:
                self._script_env["NO_PLASMA"] = "1"
            started = time.monotonic()
            self._script("up")
            self._script_env.pop("NO_PLASMA", None)
            self.up_seconds = time.monotonic() - started
            if not bare:
                wait_for(self.panel_painted, 30, "Plasma's panel", step=0.2)
            self.painted_seconds = time.monotonic() - started
        except BaseException:
            self.down()  # what `up` started goes, and the lock with it
            raise

    def start_plasma(self) -> None:
        """kded6 (the watcher) and plasmashell (the tray host), after the fact."""
        self.start_kded()
        proc = self.start("plasmashell", ["plasmashell", "--no-respawn"])
        (self.session / "plasmashell.pid").write_text(str(self._child_pid(proc, "plasmashell")))
        wait_for(lambda: self.has_name("org.kde.plasmashell"), 30, "plasmashell")
        wait_for(self.panel_painted, 30, "Plasma's panel", step=0.2)

    def _script(self, *args: str, timeout: float = 120) -> str:
        done = subprocess.run(
            [str(SCRIPT), *args],
            env=self._script_env,
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )
        if done.returncode:
            raise RuntimeError(f"plasma6-lab.sh {args[0]}: {done.stdout}{done.stderr}")
        return done.stdout

    # --- programs in the session ---------------------------------------------------------

    def start(
        self, name: str, argv: list[str], env: dict[str, str] | None = None, **kwargs: Any
    ) -> subprocess.Popen[bytes]:
        """A program in the session, from the checkout (``sys.executable`` becomes the tree's
        python3). Desktop-lab compatible: tests.ui_desktop.desktop_lab.Applet runs here."""
        kwargs.pop("cwd", None)
        if (argv and argv[0].endswith(("python", "python3"))) or "/python" in argv[0]:
            argv = ["python3", *argv[1:]]
        extra = " ".join(f"{k}={v}" for k, v in (env or {}).items() if k in ("LANG", "LC_ALL"))
        log = self.logs / f"{name}.log"
        with open(log, "ab") as out:
            proc = subprocess.Popen(
                [str(SCRIPT), "applet", *argv],
                env={**self._script_env, "APPLET_ENV": extra},
                stdout=kwargs.pop("stdout", out),
                stderr=out,
                stdin=kwargs.pop("stdin", subprocess.DEVNULL),
                start_new_session=True,
                **kwargs,
            )
        self.procs.append(proc)
        self.names[proc.pid] = name
        return proc

    def run(self, *argv: str, timeout: float = 20) -> str:
        """A command in the session's environment; its output."""
        return self._script("applet", *argv, timeout=timeout)

    def log(self, name: str) -> str:
        path = self.logs / f"{name}.log"
        return path.read_text(errors="replace")[-4000:] if path.exists() else ""

    def stop(self, proc: subprocess.Popen[Any], timeout: float = 5) -> None:
        stop_group(proc, timeout)

    # --- the session's parts -------------------------------------------------------------

    def pid(self, name: str) -> int | None:
        path = self.session / f"{name}.pid"
        with contextlib.suppress(OSError, ValueError):
            pid = int(path.read_text())
            if Path(f"/proc/{pid}").exists():
                return pid
        return None

    def restart_kded(self) -> None:
        """kded6 (and with it org.kde.StatusNotifierWatcher) goes and comes back: D-Bus
        activation may bring it back (plasmashell asks for it), else we start it."""
        old = self.name_owner_pid("org.kde.StatusNotifierWatcher")
        assert old, "kded6 is not running"
        os.kill(old, signal.SIGTERM)
        try:
            wait_for(lambda: not Path(f"/proc/{old}").exists(), 5, "kded6 to exit")
        except TimeoutError:
            os.kill(old, signal.SIGKILL)

        def back() -> bool:
            new = self.name_owner_pid("org.kde.StatusNotifierWatcher")
            return new is not None and new != old

        try:
            wait_for(back, 3, "kded6 activated again", step=0.1)
        except TimeoutError:
            self.start_kded()

    def start_kded(self) -> None:
        self.start("kded", ["kded6"])
        wait_for(lambda: self.has_name("org.kde.StatusNotifierWatcher"), 20, "kded6's watcher")

    def _child_pid(self, proc: subprocess.Popen[bytes], comm: str) -> int:
        def found() -> int | None:
            for p in Path("/proc").glob("[0-9]*"):
                with contextlib.suppress(OSError):
                    if (p / "comm").read_text().strip() == comm and os.getpgid(
                        int(p.name)
                    ) == proc.pid:
                        return int(p.name)
            return None

        return int(wait_for(found, 10, comm))

    def bus_names(self) -> list[str]:
        out = self._dbus_send("org.freedesktop.DBus", "/org/freedesktop/DBus", "ListNames")
        return [line.split('"')[1] for line in out.splitlines() if '"' in line]

    def has_name(self, name: str) -> bool:
        return name in self.bus_names()

    def name_owner_pid(self, name: str) -> int | None:
        out = self._dbus_send(
            "org.freedesktop.DBus",
            "/org/freedesktop/DBus",
            "GetConnectionUnixProcessID",
            f"string:{name}",
        )
        words = out.split()
        return int(words[-1]) if words and words[-1].isdigit() else None

    def name_owner_comm(self, name: str) -> str:
        """The program that owns a bus name (e.g. plasmashell for the notifications)."""
        return Path(f"/proc/{self.name_owner_pid(name)}/comm").read_text().strip()

    def sni_items(self) -> list[str]:
        out = self._dbus_send(
            "org.kde.StatusNotifierWatcher",
            "/StatusNotifierWatcher",
            "Get",
            "string:org.kde.StatusNotifierWatcher",
            "string:RegisteredStatusNotifierItems",
            interface="org.freedesktop.DBus.Properties",
        )
        return [line.split('"')[1] for line in out.splitlines() if '"' in line]

    def _dbus_send(self, dest: str, path: str, member: str, *args: str, **kw: str) -> str:
        interface = kw.get("interface", dest)
        done = subprocess.run(
            [
                "dbus-send",
                f"--bus={self.address}",
                "--print-reply",
                f"--dest={dest}",
                path,
                f"{interface}.{member}",
                *args,
            ],
            capture_output=True,
            text=True,
            timeout=10,
            check=False,
        )
        return done.stdout

    # --- the screen ----------------------------------------------------------------------

    def screenshot(self, path: Path, crop: str | None = None) -> Path:
        path.parent.mkdir(parents=True, exist_ok=True)
        argv = ["import", "-window", "root"]
        if crop:
            argv += ["-crop", crop, "+repage"]
        subprocess.run(
            [*argv, str(path)], env={**os.environ, "DISPLAY": DISPLAY}, check=True, timeout=20
        )
        return path

    def panel_painted(self) -> bool:
        shot = self.screenshot(self.logs / "panel.png", PANEL)
        from PySide6.QtGui import QImage

        image = QImage(str(shot))
        return not image.isNull() and image.pixelColor(683, 28).lightness() > 60

    def windows(self) -> list[tuple[int, str, int, int, int, int]]:
        """Visible plasmashell windows: (id, name, x, y, width, height)."""
        out = self.run(
            "sh",
            "-c",
            "for w in $(xdotool search --onlyvisible --class plasmashell); do "
            'eval $(xdotool getwindowgeometry --shell $w); echo "$w $X $Y $WIDTH $HEIGHT '
            '$(xdotool getwindowname $w)"; done',
        )
        found = []
        for line in out.splitlines():
            parts = line.split(maxsplit=5)
            if len(parts) >= 5:
                wid, x, y, w, h = (int(p) for p in parts[:5])
                found.append((wid, parts[5] if len(parts) > 5 else "", x, y, w, h))
        return found

    def click(self, x: int, y: int) -> None:
        self.run("xdotool", "mousemove", str(x), str(y), "click", "1")

    def down(self) -> None:
        try:
            for proc in reversed(self.procs):
                self.stop(proc)
            self._script("down")
        finally:
            self._lock.close()  # the lock goes with the file
