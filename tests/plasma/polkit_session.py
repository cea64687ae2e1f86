"""A logged-in user's polkit in the Plasma lab: a real polkitd 126 and polkit-kde-agent-1 from
the Debian 13 tree, a login session they both believe in, and our helper on a private system bus.

polkit asks an agent only in the caller's login session, which it learns from systemd's
sd-login (polkit 126, src/polkitbackend/polkitbackendsessionmonitor-systemd.c; the agent's own
``UnixSessionSubject`` in src/polkit/polkitunixsession-systemd.c):

- the session of a process: ``sd_pid_get_session`` / ``sd_pidfd_get_session`` read
  ``/proc/PID/cgroup`` (the cgroup2 ``0::`` line once ``/sys/fs/cgroup`` is a cgroup2 mount) and
  take the ``session-N.scope`` unit after the ``.slice`` components;
- a session's user, seat and state: ``sd_session_get_uid`` / ``_get_seat`` / ``_is_active``
  read the ``UID=``, ``SEAT=``, ``ACTIVE=`` keys of ``/run/systemd/sessions/N``;
  ``sd_uid_get_state`` reads ``STATE=`` of ``/run/systemd/users/UID`` (polkit's "active" test);
- ``sd_login_monitor_new("session")`` watches those directories.

With no logind here, this lab writes those files as logind does (systemd's
src/login/logind-session.c ``session_save``, logind-user.c ``user_save_internal``,
logind-seat.c ``seat_save``: logind's keys, format and order, less those of a VT, a FIFO and a
leader) and puts the session's processes in a cgroup named as logind's scope is:
``user.slice/user-UID.slice/session-N.scope``. The session's user, hsgdesk, is in the tree's
/etc/passwd (``plasma6-lab.sh ensure``), so that Plasma's session bus can look it up and let
it connect. Nothing of it touches the machine::

    cgroup (cgroup2): <this process's cgroup>/hsgpk…  (one per run, removed at close even when a
                      test fails, or by the next run if this one was killed; no controllers are
                      enabled in it, so it limits nothing)
    netns hsgpk…-net (fresh: the helper's firewall changes land here)
      holder: `unshare --mount --cgroup` (the cgroup namespace's root is the run's cgroup), then
              chrooted into the tree, in its own mount namespace:
        /sys/fs/cgroup            cgroup2 (root: the run's cgroup): user.slice/…, system.slice/…
        /run                      tmpfs: /run/dbus, /run/systemd/{sessions,users,seats}
        /etc, /var/lib            overlays on a tmpfs (the admin, in group sudo; helper state)
        /usr/share/polkit-1/actions  read-only overlay: our actions beside Debian's
        /usr/share/dbus-1/system.conf  bind: the tree's system bus, plus our helper's service
      dbus-daemon --system and polkitd 126 (system.slice), our helper (bus-activated, as root),
      polkit-kde-agent-1 and the applet as the session user (session-N.scope), on Plasma's
      display and session bus (its second socket, /tmp/uxs/bus).

Decisions come from our .policy's defaults for an active local session (``read``: yes,
``fix``: auth_admin_keep) and Debian's 50-default.rules (admins: group sudo): no test rules.
"""

from __future__ import annotations

import atexit
import contextlib
import os
import secrets
import shutil
import signal
import subprocess
import tempfile
import time
from pathlib import Path
from typing import Any

from tests.plasma.plasma_lab import ROOT, Plasma
from tests.polkitlab import HOTSPOT_LINKS, install_helper_bus_files
from tests.ui_desktop.desktop_lab import Applet, wait_for

ENV = ["env", "-i", "PATH=/usr/sbin:/usr/bin:/sbin:/bin", "LANG=C.UTF-8"]
AGENT = "/usr/lib/x86_64-linux-gnu/libexec/polkit-kde-authentication-agent-1"
SESSION_ID = "2"
APPLET = "tests.plasma.helper_applet"
#: the desktop's user: in the tree's /etc/passwd (plasma6-lab.sh ensure), so that Plasma's
#: session bus can look it up; the admin exists only in this run's /etc overlay
DESK_USER = "hsgdesk"

# $1 tree, $2 lab dir, $3 checkout; in the fresh netns, after `unshare --mount --cgroup`
HOLDER = r"""
set -e
R=$1; L=$2; P=$3
mount -t proc proc $R/proc
mount -t sysfs sys $R/sys
mount -t cgroup2 hsgpk-cgroup $R/sys/fs/cgroup
mount --bind /dev $R/dev
mount -t devpts -o newinstance,ptmxmode=0666 devpts $R/dev/pts
mount -t tmpfs -o mode=1777 tmpfs $R/dev/shm
mount -t tmpfs -o mode=0755 hsgpk-run $R/run
mkdir -p $R/run/dbus $R/run/systemd/sessions $R/run/systemd/users $R/run/systemd/seats
mount -t tmpfs -o mode=0700 hsgpk-ovl $L/ovl
for d in etc varlib; do mkdir $L/ovl/$d.up $L/ovl/$d.work; done
mount -t overlay hsgpk-etc \
  -o "lowerdir=$R/etc,upperdir=$L/ovl/etc.up,workdir=$L/ovl/etc.work" $R/etc
mount -t overlay hsgpk-varlib \
  -o "lowerdir=$R/var/lib,upperdir=$L/ovl/varlib.up,workdir=$L/ovl/varlib.work" $R/var/lib
mount -t overlay hsgpk-actions -o "ro,lowerdir=$L/actions:$R/usr/share/polkit-1/actions" \
  $R/usr/share/polkit-1/actions
mount --bind $L/bus.conf $R/usr/share/dbus-1/system.conf
for d in $L $P; do mkdir -p $R$d; mount --bind $d $R$d; done
echo ready > $L/ready
exec chroot $R /bin/sleep 2147483647
"""

# the login session, as logind would have written it ($1 uid, $2 user name, $3 session id)
SESSION = r"""
set -e
U=$1; NAME=$2; N=$3
for g in user.slice/user-$U.slice/session-$N.scope system.slice/dbus.service \
         system.slice/polkit.service; do mkdir -p /sys/fs/cgroup/$g; done
now=$(date +%s%6N); mono=$(awk '{printf "%d", $1 * 1000000}' /proc/uptime)
cat > /run/systemd/sessions/$N <<EOF
# This is private data. Do not parse.
UID=$U
USER=$NAME
ACTIVE=1
IS_DISPLAY=1
STATE=active
REMOTE=0
TYPE=x11
ORIGINAL_TYPE=x11
CLASS=user
SCOPE=session-$N.scope
SEAT=seat0
DISPLAY=:42
SERVICE=sddm
DESKTOP=KDE
POSITION=0
REALTIME=$now
MONOTONIC=$mono
EOF
cat > /run/systemd/users/$U <<EOF
# This is private data. Do not parse.
NAME=$NAME
STATE=active
STOPPING=no
RUNTIME=/run/user/$U
SLICE=user-$U.slice
DISPLAY=$N
REALTIME=$now
MONOTONIC=$mono
SESSIONS=$N
SEATS=seat0
ACTIVE_SESSIONS=$N
ONLINE_SESSIONS=$N
ACTIVE_SEATS=seat0
ONLINE_SEATS=seat0
EOF
cat > /run/systemd/seats/seat0 <<EOF
# This is private data. Do not parse.
IS_SEAT0=1
CAN_MULTI_SESSION=1
CAN_TTY=0
CAN_GRAPHICAL=1
ACTIVE=$N
ACTIVE_UID=$U
SESSIONS=$N
UIDS=$U
EOF
mkdir -p /run/user/$U /tmp/uxs/user; chown $U:$U /run/user/$U /tmp/uxs/user; chmod 0700 /run/user/$U
"""


def missing() -> str | None:
    """Why the session's polkit cannot run here, or None."""
    if cgroup2_mount() is None:
        return "needs a cgroup2 hierarchy (for the session's scope)"
    return None


def cgroup2_mount() -> Path | None:
    for line in Path("/proc/self/mountinfo").read_text().splitlines():
        fields = line.split()
        sep = fields.index("-")
        if fields[sep + 1] == "cgroup2" and fields[3] == "/":
            return Path(fields[4])
    return None


def own_cgroup() -> str:
    for line in Path("/proc/self/cgroup").read_text().splitlines():
        if line.startswith("0::"):
            return line[3:]
    return "/"


def sweep_stale_cgroups(parent: Path) -> None:
    """Remove the empty cgroups an earlier run left behind when it was killed before its
    teardown (named hsgpk<its pid>…, that pid gone); a cgroup with a process is left alone."""
    import re

    for stale in parent.glob("hsgpk*"):
        found = re.match(r"hsgpk(\d+)x", stale.name)
        if not stale.is_dir() or not found or Path(f"/proc/{found.group(1)}").exists():
            continue
        for sub in sorted(stale.rglob("*"), key=lambda p: -len(p.parts)):
            if sub.is_dir():
                with contextlib.suppress(OSError):
                    sub.rmdir()
        with contextlib.suppress(OSError):
            stale.rmdir()


class SessionPolkit:
    """Built on construction (a half-built one is torn down); ``close()`` undoes all."""

    def __init__(self, plasma: Plasma) -> None:
        self.plasma = plasma
        self.prefix = f"hsgpk{os.getpid()}x{secrets.token_hex(2)}"
        self.netns = f"{self.prefix}-net"
        self.dir = Path(tempfile.mkdtemp(prefix=f"{self.prefix}-", dir="/tmp"))
        self.dir.chmod(0o755)
        mount = cgroup2_mount()
        assert mount is not None
        self.cgroup = mount / own_cgroup().lstrip("/") / self.prefix
        tag = "hg" + secrets.token_hex(3)
        self.user_name, self.admin_name = DESK_USER, f"{tag}a"
        self.password = secrets.token_urlsafe(12)
        self.uid = 0
        self.holder: subprocess.Popen[bytes] | None = None
        self.procs: list[subprocess.Popen[Any]] = []
        self._netns = False
        self._closed = False
        atexit.register(self.close)
        try:
            self._build()
        except BaseException:
            self.close()
            raise

    # -- building --
    def _build(self) -> None:
        t0 = time.monotonic()
        for sub in ("services", "system.d", "actions", "ovl"):
            (self.dir / sub).mkdir(mode=0o755)
        (self.dir / "bus.conf").write_text(self._bus_conf())
        helper = self.dir / "helper"
        helper.write_text(
            "#!/bin/sh\n"
            f"PYTHONPATH={ROOT / 'src'} exec /usr/bin/python3 -c "
            "'import sys; from hotspotguard.helper.main import main; sys.exit(main())'\n"
        )
        install_helper_bus_files(self.dir, helper)
        for path in self.dir.rglob("*"):
            path.chmod(0o755 if path.is_dir() or path == helper else 0o644)
        sweep_stale_cgroups(self.cgroup.parent)
        self.cgroup.mkdir()
        subprocess.run(["ip", "netns", "add", self.netns], check=True)
        self._netns = True
        self.netns_run(["ip", "link", "set", "lo", "up"])
        with open(self.dir / "holder.log", "wb") as log:
            self.holder = subprocess.Popen(
                ["sh", "-c",
                 f'echo 0 > {self.cgroup}/cgroup.procs && exec ip netns exec {self.netns} '
                 f'unshare --mount --cgroup --propagation private sh -c "$0" holder "$@"',
                 HOLDER, str(self.plasma.tree), str(self.dir), str(ROOT)],
                stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
                start_new_session=True,
            )  # fmt: skip
        wait_for(lambda: (self.dir / "ready").exists() or self.holder.poll() is not None, 10,
                 "the holder")  # fmt: skip
        if not (self.dir / "ready").exists():
            raise RuntimeError((self.dir / "holder.log").read_text())
        self.root_run(["useradd", "-M", "-G", "sudo", "-s", "/usr/sbin/nologin", self.admin_name])
        self.root_run(["chpasswd"], input=f"{self.admin_name}:{self.password}\n")
        self.uid = int(self.root_run(["id", "-u", self.user_name]).strip())
        self.root_run(["sh", "-c", SESSION, "session", str(self.uid), self.user_name, SESSION_ID])
        self.dbus = self._start("dbus", "system.slice/dbus.service", None,
                                ["dbus-daemon", "--system", "--nofork", "--nopidfile",
                                 "--nosyslog"])  # fmt: skip
        wait_for(lambda: self.system_socket.exists(), 10, "the system bus")
        self.polkitd = self._start(
            "polkit", "system.slice/polkit.service", None, ["/usr/lib/polkit-1/polkitd"]
        )
        wait_for(lambda: "Acquired the name" in self.log("polkit"), 15, "polkitd")
        self.agent = self.start_in_session("agent", [AGENT])
        try:
            wait_for(
                lambda: "Registered Authentication Agent for unix-session:" in self.log("polkit"),
                20,
                "polkit-kde-agent-1 registered for the session",
            )
        except TimeoutError as error:
            raise RuntimeError(f"{error}\n{self.log('agent')}\n{self.log('polkit')}") from None
        self.setup_seconds = time.monotonic() - t0

    def _bus_conf(self) -> str:
        """The tree's system bus config, plus our helper's service and policy."""
        text = (self.plasma.tree / "usr/share/dbus-1/system.conf").read_text()
        text = text.replace("<includedir>system.d</includedir>",
                            "<includedir>/usr/share/dbus-1/system.d</includedir>")  # fmt: skip
        ours = f"  <servicedir>{self.dir}/services</servicedir>\n" \
               f"  <includedir>{self.dir}/system.d</includedir>\n</busconfig>"  # fmt: skip
        return text.replace("</busconfig>", ours)

    @property
    def system_socket(self) -> Path:
        assert self.holder is not None
        return Path(f"/proc/{self.holder.pid}/root/run/dbus/system_bus_socket")

    def _enter(self, cgroup: str | None, argv: list[str], user: bool = False) -> list[str]:
        """`argv` chrooted in the holder's namespaces (mount, cgroup, network), in `cgroup`
        (relative to the run's), as the session user if `user`."""
        assert self.holder is not None
        inner = argv
        if user:
            home = "/tmp/uxs/user"
            inner = ["setpriv", f"--reuid={self.uid}", f"--regid={self.uid}", "--init-groups",
                     "env", "-i", "PATH=/usr/bin:/bin", f"HOME={home}",
                     f"XDG_RUNTIME_DIR=/run/user/{self.uid}", "DISPLAY=:42",
                     "DBUS_SESSION_BUS_ADDRESS=unix:path=/tmp/uxs/bus",
                     f"XDG_SESSION_ID={SESSION_ID}", "XDG_SESSION_TYPE=x11",
                     "XDG_CURRENT_DESKTOP=KDE", "KDE_SESSION_VERSION=6", "KDE_FULL_SESSION=true",
                     "QT_QPA_PLATFORM=xcb", "LANG=C.UTF-8", f"USER={self.user_name}",
                     *argv]  # fmt: skip
        move = f"echo $$ > /sys/fs/cgroup/{cgroup}/cgroup.procs && " if cgroup else ""
        return ["nsenter", "-t", str(self.holder.pid), "-m", "-C", "-n", "-r", "-w", *ENV,
                "sh", "-c", f'{move}exec "$@"', "sh", *inner]  # fmt: skip

    def root_run(self, argv: list[str], input: str | None = None, timeout: float = 30) -> str:
        done = subprocess.run(
            self._enter(None, argv), input=input, capture_output=True, text=True,
            timeout=timeout, check=False,
        )  # fmt: skip
        if done.returncode:
            raise RuntimeError(f"{argv}: {done.stdout}{done.stderr}")
        return done.stdout

    def _start(
        self, name: str, cgroup: str, user: bool | None, argv: list[str], **kw: Any
    ) -> subprocess.Popen[Any]:
        stdout = kw.pop("stdout", None)
        with open(self.dir / f"{name}.log", "ab") as log:
            proc = subprocess.Popen(
                self._enter(cgroup, argv, bool(user)),
                stdin=kw.pop("stdin", subprocess.DEVNULL),
                stdout=stdout or log,
                stderr=log,
                start_new_session=True,
                **kw,
            )
        self.procs.append(proc)
        return proc

    def start_in_session(self, name: str, argv: list[str], **kw: Any) -> subprocess.Popen[Any]:
        """`argv` as the session's user, in its session scope."""
        scope = f"user.slice/user-{self.uid}.slice/session-{SESSION_ID}.scope"
        return self._start(name, scope, True, argv, **kw)

    def log(self, name: str) -> str:
        path = self.dir / f"{name}.log"
        return path.read_text(errors="replace") if path.exists() else ""

    # -- the helper's network namespace --
    def netns_run(self, argv: list[str], input: str | None = None) -> str:
        return subprocess.run(
            ["ip", "netns", "exec", self.netns, *argv], input=input, capture_output=True,
            text=True, check=True, timeout=30,
        ).stdout  # fmt: skip

    def docker_hotspot(self) -> None:
        """hs0 shared by NetworkManager's table, Docker 28's FORWARD policy drop: blocked."""
        from tests.kernel.scenarios.model import ruleset

        for command in HOTSPOT_LINKS:
            self.netns_run(["ip", *command.split()])
        self.netns_run(["sysctl", "-q", "-w", "net.ipv4.ip_forward=1"])
        self.netns_run(["nft", "-f", "-"], input=ruleset("nm-shared-hs0.nft"))
        self.netns_run(["iptables-nft-restore"], input=ruleset("docker28.rules"))

    def tagged_rules(self) -> list[str]:
        save = self.netns_run(["iptables-nft-save"])
        return [line for line in save.splitlines() if "hotspotguard:" in line]

    # -- the applet, as the session's user over the helper --
    def applet(self) -> Applet:
        return SessionApplet(self)

    def agent_window(self) -> tuple[str, int, int, int, int] | None:
        """KDE's authentication dialog, if mapped: (window id, x, y, width, height)."""
        out = self.plasma.run(
            "sh",
            "-c",
            "for w in $(xdotool search --onlyvisible --name '^Authentication Required$'); do "
            "g=$(xdotool getwindowgeometry --shell $w 2>/dev/null) || continue; "  # gone meanwhile
            'eval "$g"; echo "$w $X $Y $WIDTH $HEIGHT"; done; true',
        )
        for line in out.splitlines():
            wid, *geometry = line.split()
            x, y, w, h = (int(v) for v in geometry)
            if w > 200 and h > 100:
                return wid, x, y, w, h
        return None

    def agent_dialog(self, shot: Path, timeout: float = 30) -> str:
        """Wait until KDE's dialog is mapped and painted (the dark disc of its lock icon, either
        side of the lock; x, y are its client area's), screenshot the screen, give it the focus;
        its window id."""
        from PySide6.QtGui import QImage

        def painted() -> str | None:
            found = self.agent_window()
            if found is None:
                return None
            wid, x, y, _, _ = found
            image = QImage(str(self.plasma.screenshot(shot)))
            disc = ((x + 26, y + 56), (x + 34, y + 56), (x + 62, y + 56), (x + 70, y + 56))
            dark = all(image.pixelColor(i, j).lightness() < 110 for i, j in disc)
            return wid if dark else None

        wid = str(wait_for(painted, timeout, "KDE's authentication dialog, painted", step=0.3))
        self.plasma.run("sh", "-c", f"xdotool windowactivate --sync {wid} 2>/dev/null; true")
        return wid

    # -- teardown --
    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        with contextlib.suppress(Exception):
            atexit.unregister(self.close)
        for _ in range(50):  # every process of the run: they are all in its cgroup
            pids = self._cgroup_pids()
            if not pids:
                break
            for pid in pids:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGKILL)
            time.sleep(0.1)
        for proc in [*self.procs, *([self.holder] if self.holder else [])]:
            with contextlib.suppress(Exception):
                proc.wait(5)
        if self.cgroup.exists():
            for sub in sorted(self.cgroup.rglob("*"), key=lambda p: -len(p.parts)):
                if sub.is_dir():
                    with contextlib.suppress(OSError):
                        sub.rmdir()
            with contextlib.suppress(OSError):
                self.cgroup.rmdir()
        if self._netns:
            subprocess.run(["ip", "netns", "del", self.netns], check=False)
        for path in (self.plasma.tree / str(self.dir).lstrip("/"),):
            with contextlib.suppress(OSError):
                path.rmdir()  # the empty mount point in the tree's /tmp
        with contextlib.suppress(OSError):
            shutil.rmtree(self.plasma.tree / "tmp/uxs/user")
        shutil.rmtree(self.dir, ignore_errors=True)

    def _cgroup_pids(self) -> list[int]:
        pids: list[int] = []
        if self.cgroup.exists():
            for procs in self.cgroup.rglob("cgroup.procs"):
                with contextlib.suppress(OSError):
                    pids += [int(p) for p in procs.read_text().split()]
            with contextlib.suppress(OSError):
                pids += [int(p) for p in (self.cgroup / "cgroup.procs").read_text().split()]
        return sorted(set(pids))


class SessionApplet(Applet):
    """tests/plasma/helper_applet.py as the session's user (the applet over the real helper)."""

    def __init__(self, lab: SessionPolkit) -> None:
        import queue
        import threading

        self.proc = lab.start_in_session(
            "applet",
            ["sh", "-c", f"cd {ROOT} && PYTHONPATH=src:. exec python3 -m {APPLET}"],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
        )  # fmt: skip
        self.events: queue.Queue[dict[str, Any]] = queue.Queue()
        self.seen: list[dict[str, Any]] = []
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()
