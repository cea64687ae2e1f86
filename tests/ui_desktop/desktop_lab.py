"""A private, headless desktop for the applet's end-to-end tests (and its benchmark).

Xvfb on a display it picks itself (``-displayfd``), a private session bus (a config with no
service directories: nothing is activated behind our back), private ``HOME``/``XDG_*`` dirs,
and on demand a real tray host (``xfce4-panel`` with ``xfconfd``) and a real notification
server (``dunst``). Every process is started here in its own process group and only those are
stopped (by their ids) on close. Recipe: /work/shared/notes/lab-desktop.md.
"""

from __future__ import annotations

import contextlib
import json
import os
import queue
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from tests.helpers import accepting

#: Debian packages and the programs of theirs the lab runs
PACKAGES = {
    "xvfb": "Xvfb",
    "xfce4-panel": "xfce4-panel",
    "xfconf": "xfconf-query",
    "dunst": "dunstctl",
    "xdotool": "xdotool",
    "imagemagick": "import",
    "dbus-daemon": "dbus-daemon",
    "desktop-file-utils": "desktop-file-validate",
}
XFCONFD = "/usr/lib/x86_64-linux-gnu/xfce4/xfconf/xfconfd"
XCB_LIBS = {
    "libxcb-icccm.so.4": "libxcb-icccm4",
    "libxcb-keysyms.so.1": "libxcb-keysyms1",
    "libxcb-cursor.so.0": "libxcb-cursor0",
}
FONT = "/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf"

BUS_CONFIG = """<!DOCTYPE busconfig PUBLIC "-//freedesktop//DTD D-Bus Bus Configuration 1.0//EN"
 "http://www.freedesktop.org/standards/dbus/1.0/busconfig.dtd">
<busconfig>
  <type>session</type>
  <listen>unix:path={socket}</listen>
  <auth>EXTERNAL</auth>
  <policy context="default">
    <allow send_destination="*" eavesdrop="true"/>
    <allow eavesdrop="true"/>
    <allow own="*"/>
  </policy>
</busconfig>
"""

#: one top panel: a spacer and the notification area (SNI and XEmbed), 22px icons
PANEL_XML = """<?xml version="1.0" encoding="UTF-8"?>
<channel name="xfce4-panel" version="1.0">
  <property name="configver" type="int" value="2"/>
  <property name="panels" type="array">
    <value type="int" value="1"/>
    <property name="dark-mode" type="bool" value="true"/>
    <property name="panel-1" type="empty">
      <property name="position" type="string" value="p=6;x=0;y=0"/>
      <property name="length" type="uint" value="100"/>
      <property name="position-locked" type="bool" value="true"/>
      <property name="icon-size" type="uint" value="22"/>
      <property name="size" type="uint" value="32"/>
      <property name="plugin-ids" type="array">
        <value type="int" value="1"/>
        <value type="int" value="2"/>
      </property>
    </property>
  </property>
  <property name="plugins" type="empty">
    <property name="plugin-1" type="string" value="separator">
      <property name="expand" type="bool" value="true"/>
      <property name="style" type="uint" value="0"/>
    </property>
    <property name="plugin-2" type="string" value="systray">
      <property name="square-icons" type="bool" value="true"/>
      <property name="icon-size" type="uint" value="22"/>
    </property>
  </property>
</channel>
"""

DUNSTRC = """[global]
    monitor = 0
    follow = none
    width = 420
    height = 200
    origin = top-right
    offset = 10x40
    font = DejaVu Sans 10
    format = "<b>%s</b>\\n%b"
    show_indicators = yes
    dmenu = {dmenu}
    mouse_left_click = do_action, close_current
    mouse_middle_click = close_current
    mouse_right_click = close_all
    idle_threshold = 0
    sticky_history = yes
    history_length = 50
[urgency_low]
    timeout = 0
[urgency_normal]
    timeout = 0
[urgency_critical]
    timeout = 0
"""

#: dunst's context menu: log the choices it offers, pick the one named in $DMENU_PICK
DMENU = """#!/bin/sh
choices=$(cat)
printf '%s\\n' "$choices" >> "{log}"
pick=$(cat "{pick}" 2>/dev/null)
printf '%s\\n' "$choices" | grep -F -m1 -- "$pick"
"""


def missing() -> str | None:
    """Why the lab cannot run here (a missing Debian package), or None."""
    lacking = [pkg for pkg, prog in PACKAGES.items() if not shutil.which(prog)]
    if not os.path.exists(XFCONFD) and "xfconf" not in lacking:
        lacking.append("xfconf")
    libdirs = [Path("/usr/lib/x86_64-linux-gnu"), Path("/usr/lib64"), Path("/usr/lib")]
    for lib, pkg in XCB_LIBS.items():
        if not any((d / lib).exists() for d in libdirs):
            lacking.append(pkg)
    if not os.path.exists(FONT):
        lacking.append("fonts-dejavu-core")
    if lacking:
        return "needs the Debian packages " + " ".join(lacking)
    return None


def wait_for(check: Callable[[], Any], timeout: float, what: str, step: float = 0.05) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if value:
            return value
        if time.monotonic() > deadline:
            raise TimeoutError(f"timed out after {timeout:.0f} s waiting for {what}")
        time.sleep(step)


class Applet:
    """The applet harness (tests/ui_desktop/harness.py) in a desktop: commands in, events out."""

    def __init__(self, desktop: Desktop, kind: str = "blocked", env: dict[str, str] | None = None):
        root = Path(__file__).resolve().parents[2]
        self.proc = desktop.start(
            "applet",
            [sys.executable, "-m", "tests.ui_desktop.harness", kind],
            env={"QT_QPA_PLATFORM": "xcb", "PYTHONPATH": str(root), **(env or {})},
            cwd=str(root),
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
        )
        self.events: queue.Queue[dict[str, Any]] = queue.Queue()
        self.seen: list[dict[str, Any]] = []
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            with contextlib.suppress(ValueError):
                self.events.put(json.loads(line))

    def send(self, command: str) -> None:
        assert self.proc.stdin is not None
        self.proc.stdin.write(command.encode() + b"\n")
        self.proc.stdin.flush()

    def wait(self, event: str, timeout: float = 20, **match: Any) -> dict[str, Any]:
        """The first event named `event` with these fields (already seen ones count)."""

        def fits(item: dict[str, Any]) -> bool:
            return item.get("event") == event and all(item.get(k) == v for k, v in match.items())

        for item in self.seen:
            if fits(item):
                return item
        deadline = time.monotonic() + timeout
        while True:
            left = deadline - time.monotonic()
            if left <= 0 or (self.proc.poll() is not None and self.events.empty()):
                raise TimeoutError(f"no {event} {match} within {timeout} s; seen {self.seen}")
            try:
                item = self.events.get(timeout=min(left, 0.5))
            except queue.Empty:
                continue
            self.seen.append(item)
            if fits(item):
                return item


class PrivateBus:
    """A private session bus alone (no display): ``address``; ``close()`` stops it."""

    def __init__(self) -> None:
        self.root = Path(tempfile.mkdtemp(prefix="hsg-bus-"))
        socket = self.root / "bus"
        config = self.root / "bus.conf"
        config.write_text(BUS_CONFIG.format(socket=socket))
        self.proc = subprocess.Popen(
            ["dbus-daemon", f"--config-file={config}", "--nofork", "--nopidfile"],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            start_new_session=True,
        )
        try:
            wait_for(lambda: accepting(socket), 10, "the session bus")
        except TimeoutError:
            self.close()
            raise
        self.address = f"unix:path={socket}"

    def close(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            self.proc.wait(5)
        shutil.rmtree(self.root, ignore_errors=True)


def stop_group(proc: subprocess.Popen[Any], timeout: float = 5) -> None:
    """Stop a process started in a session of its own: its group gets SIGTERM, then SIGKILL."""
    if proc.poll() is not None:
        return
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, signal.SIGTERM)
    try:
        proc.wait(timeout)
    except subprocess.TimeoutExpired:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(timeout)


class Desktop:
    """Xvfb + a private session bus + private dirs; `panel()` and `dunst()` on demand."""

    def __init__(self, width: int = 1024, height: int = 640) -> None:
        self.root = Path(tempfile.mkdtemp(prefix="hsg-desktop-"))
        self.procs: list[subprocess.Popen[bytes]] = []
        self.logs: dict[str, Path] = {}
        self.names: dict[int, str] = {}
        try:
            self._start(width, height)
        except BaseException:
            self.close()
            raise

    # --- set-up --------------------------------------------------------------------------

    def _start(self, width: int, height: int) -> None:
        home = self.root / "home"
        dirs = {
            "HOME": home,
            "XDG_CONFIG_HOME": home / ".config",
            "XDG_DATA_HOME": home / ".local/share",
            "XDG_CACHE_HOME": home / ".cache",
            "XDG_STATE_HOME": home / ".local/state",
            "XDG_RUNTIME_DIR": self.root / "runtime",
        }
        for path in dirs.values():
            path.mkdir(parents=True, exist_ok=True)
        dirs["XDG_RUNTIME_DIR"].chmod(0o700)
        env = {k: v for k, v in os.environ.items() if not k.startswith(("XDG_", "DBUS_", "QT_"))}
        for key in ("WAYLAND_DISPLAY", "DISPLAY", "KDE_SESSION_VERSION", "KDE_FULL_SESSION"):
            env.pop(key, None)
        env.update({k: str(v) for k, v in dirs.items()})
        env.update(
            XDG_CONFIG_DIRS="/etc/xdg",
            XDG_DATA_DIRS="/usr/local/share:/usr/share",
            XDG_CURRENT_DESKTOP="XFCE",
            XDG_SESSION_TYPE="x11",
            NO_AT_BRIDGE="1",
            LANG=os.environ.get("LANG", "C.UTF-8"),
        )
        self.env = env

        read, write = os.pipe()
        self._spawn(
            "xvfb",
            [
                "Xvfb",
                "-displayfd",
                str(write),
                "-screen",
                "0",
                f"{width}x{height}x24",
                "+extension",
                "GLX",
                "-nolisten",
                "tcp",
                "-noreset",
            ],
            pass_fds=(write,),
        )
        os.close(write)
        with os.fdopen(read) as pipe:
            number = pipe.readline().strip()
        if not number:
            raise RuntimeError(f"Xvfb did not start: {self.log('xvfb')}")
        env["DISPLAY"] = f":{number}"

        socket = self.root / "bus"
        config = self.root / "bus.conf"
        config.write_text(BUS_CONFIG.format(socket=socket))
        self._spawn("dbus", ["dbus-daemon", f"--config-file={config}", "--nofork", "--nopidfile"])
        wait_for(lambda: accepting(socket), 10, "the session bus")
        env["DBUS_SESSION_BUS_ADDRESS"] = f"unix:path={socket}"

    def _spawn(self, name: str, argv: list[str], **kwargs: Any) -> subprocess.Popen[bytes]:
        log = self.root / f"{name}.log"
        self.logs[name] = log
        with open(log, "ab") as out:
            proc = subprocess.Popen(
                argv,
                env=kwargs.pop("env", self.env),
                stdout=kwargs.pop("stdout", out),
                stderr=out,
                stdin=kwargs.pop("stdin", subprocess.DEVNULL),
                start_new_session=True,
                **kwargs,
            )
        self.procs.append(proc)
        self.names[proc.pid] = name
        return proc

    def log(self, name: str) -> str:
        path = self.logs.get(name)
        return path.read_text(errors="replace")[-4000:] if path and path.exists() else ""

    # --- the bus -------------------------------------------------------------------------

    def bus_names(self) -> list[str]:
        out = self.run(
            [
                "dbus-send",
                "--session",
                "--print-reply",
                "--dest=org.freedesktop.DBus",
                "/org/freedesktop/DBus",
                "org.freedesktop.DBus.ListNames",
            ]
        )
        return [line.split('"')[1] for line in out.splitlines() if '"' in line]

    def has_name(self, name: str) -> bool:
        return name in self.bus_names()

    def sni_items(self) -> list[str]:
        """The items registered with the StatusNotifierWatcher (the tray host's view)."""
        out = self.run(
            [
                "dbus-send",
                "--session",
                "--print-reply",
                "--dest=org.kde.StatusNotifierWatcher",
                "/StatusNotifierWatcher",
                "org.freedesktop.DBus.Properties.Get",
                "string:org.kde.StatusNotifierWatcher",
                "string:RegisteredStatusNotifierItems",
            ],
            check=False,
        )
        return [line.split('"')[1] for line in out.splitlines() if '"' in line]

    def run(self, argv: list[str], check: bool = True, timeout: float = 20) -> str:
        done = subprocess.run(
            argv, env=self.env, capture_output=True, text=True, timeout=timeout, check=False
        )
        if check and done.returncode != 0:
            raise RuntimeError(f"{argv[0]} failed ({done.returncode}): {done.stderr.strip()}")
        return done.stdout

    # --- the desktop's programs ----------------------------------------------------------

    def panel(self) -> subprocess.Popen[bytes]:
        """xfce4-panel with its notification area; returns once it hosts StatusNotifierItems."""
        channel = Path(self.env["XDG_CONFIG_HOME"]) / "xfce4/xfconf/xfce-perchannel-xml"
        channel.mkdir(parents=True, exist_ok=True)
        (channel / "xfce4-panel.xml").write_text(PANEL_XML)
        if not any(self.names[p.pid] == "xfconfd" for p in self.procs if p.poll() is None):
            self._spawn("xfconfd", [XFCONFD])
            wait_for(lambda: self.has_name("org.xfce.Xfconf"), 10, "xfconfd")
        proc = self._spawn("panel", ["xfce4-panel", "--disable-wm-check"])
        wait_for(lambda: self.has_name("org.kde.StatusNotifierWatcher"), 20, "the panel's tray")
        return proc

    def dunst(self) -> subprocess.Popen[bytes]:
        """dunst, with a scripted context menu (see :data:`DMENU`)."""
        config = self.root / "dunstrc"
        dmenu = self.root / "dmenu.sh"
        self.dmenu_log = self.root / "dmenu.log"
        self.dmenu_pick = self.root / "dmenu.pick"
        dmenu.write_text(DMENU.format(log=self.dmenu_log, pick=self.dmenu_pick))
        dmenu.chmod(0o755)
        config.write_text(DUNSTRC.format(dmenu=dmenu))
        proc = self._spawn("dunst", ["dunst", "-config", str(config)])
        wait_for(lambda: self.has_name("org.freedesktop.Notifications"), 10, "dunst")
        return proc

    def start(
        self, name: str, argv: list[str], env: dict[str, str] | None = None, **kwargs: Any
    ) -> subprocess.Popen[bytes]:
        """Any other program, in this desktop's environment (plus `env`)."""
        return self._spawn(name, argv, env={**self.env, **(env or {})}, **kwargs)

    def screenshot(self, path: Path, crop: str | None = None) -> Path:
        """The screen (or a `WxH+X+Y` part of it) as PNG, with imagemagick's import."""
        path.parent.mkdir(parents=True, exist_ok=True)
        argv = ["import", "-window", "root"]
        if crop:
            argv += ["-crop", crop, "+repage"]
        self.run([*argv, str(path)])
        return path

    # --- tear-down -----------------------------------------------------------------------

    def stop(self, proc: subprocess.Popen[Any], timeout: float = 5) -> None:
        """Stop one of our processes (its process group: it was started in its own session)."""
        if proc.poll() is None:
            stop_group(proc, timeout)
        else:
            # its children (dunst's dmenu, …) may outlive it in its group
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(proc.pid, signal.SIGKILL)

    def close(self) -> None:
        for proc in reversed(self.procs):
            self.stop(proc)
        self.procs.clear()
        shutil.rmtree(self.root, ignore_errors=True)

    def __enter__(self) -> Desktop:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
