"""A real polkitd and a private system bus for the helper (after /work/shared/notes/lab-polkit.md).

::

    netns PFX-helper (fresh: the helper's firewall changes land here, never on the machine)
      holder: `unshare --mount --propagation private`, then `sleep`; in its mount namespace:
        /run                              tmpfs (the bus socket, the xtables lock)
        /etc, /var/lib                    overlays, upper dirs on a tmpfs (state, drop-ins,
                                          the test users: nothing reaches the disk)
        /usr/share/polkit-1/actions       read-only overlay: our actions beside the distro's
        /etc/polkit-1/rules.d             tmpfs with the test rules (10-…, before 50-default)
        /usr/share/dbus-1/system.conf     bind: our bus config (one servicedir of ours, whose
                                          .service runs the venv's hotspotguard-helper)
      dbus-daemon --system, polkitd (with its polkit.log() trace), the bus-activated helper,
      and every client (`nsenter` into the holder's namespaces, `setpriv` to a test user).

The test process reaches the bus at /proc/HOLDER/root/run/dbus/system_bus_socket (as root:
polkit always authorises uid 0, so decisions are tested through the users).  Teardown kills
every process of the network namespace by PID, deletes it and the lab directory; the users only
ever existed in the overlay.
"""

from __future__ import annotations

import asyncio
import atexit
import contextlib
import hashlib
import json
import os
import pty
import secrets
import shutil
import signal
import subprocess
import sys
import tempfile
import termios
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from dbus_next import Message, MessageType
from dbus_next.aio import MessageBus

from tests.lab import HolderLab, LabError, _kill_netns_processes, _proc_alive, _run, _which
from tests.nmlab import SYSTEM_BUS_POLICY

__all__ = ["PolkitLab", "User", "client_venv", "polkit_lab_unavailable_reason"]

REPO = Path(__file__).resolve().parent.parent
BUS_NAME = "io.github.hotspotguard.Helper1"
HELPER_EXEC = REPO / ".venv" / "bin" / "hotspotguard-helper"
RESOURCES = REPO / "resources" / "system"
POLKITD = "/usr/lib/polkit-1/polkitd"
LAUNCH_HELPER = "/usr/lib/dbus-1.0/dbus-daemon-launch-helper"
SYSTEM_PYTHON = "/usr/bin/python3"
REQUIRED_TOOLS = ("ip", "unshare", "nsenter", "setpriv", "dbus-daemon", "pkttyagent", "useradd")
CLEAN_ENV = {
    "PATH": "/usr/sbin:/usr/bin:/sbin:/bin",
    "LC_ALL": "C.UTF-8",
    "HOME": "/",
    # the helper's capture reads restored rules files from here, never the machine's /etc
    "HOTSPOTGUARD_SYSCONFDIR": os.environ.get("HOTSPOTGUARD_SYSCONFDIR", "/nonexistent"),
}
ROLES = ("allow", "deny", "read", "auth", "admin", "fixer", "asker")
RULES_FILE = "10-hotspotguard-test.rules"
CHECK_MARK = "hotspotguard-check"

BUS_CONF = """\
<!DOCTYPE busconfig PUBLIC "-//freedesktop//DTD D-Bus Bus Configuration 1.0//EN"
 "http://www.freedesktop.org/standards/dbus/1.0/busconfig.dtd">
<busconfig>
  <type>system</type>
  <user>messagebus</user>
  <listen>unix:path=/run/dbus/system_bus_socket</listen>
  <auth>EXTERNAL</auth>
  <servicehelper>/usr/lib/dbus-1.0/dbus-daemon-launch-helper</servicehelper>
  <servicedir>{lab}/services</servicedir>
{policy}  <includedir>/usr/share/dbus-1/system.d</includedir>
  <includedir>{lab}/system.d</includedir>
</busconfig>
""".replace("{policy}", SYSTEM_BUS_POLICY)

# $1 = lab directory.  Runs in the fresh netns under `unshare --mount --propagation private`.
_HOLDER = r"""
set -e
L=$1
mount -t tmpfs -o mode=0755 hgpk-run /run
mkdir -p /run/dbus
mount -t tmpfs -o mode=0700 hgpk-ovl "$L/ovl"
for d in etc varlib; do mkdir "$L/ovl/$d.up" "$L/ovl/$d.work"; done
mount -t overlay hgpk-etc -o "lowerdir=/etc,upperdir=$L/ovl/etc.up,workdir=$L/ovl/etc.work" /etc
mount -t overlay hgpk-varlib \
  -o "lowerdir=/var/lib,upperdir=$L/ovl/varlib.up,workdir=$L/ovl/varlib.work" /var/lib
mount -t overlay hgpk-actions -o "ro,lowerdir=$L/actions:/usr/share/polkit-1/actions" \
  /usr/share/polkit-1/actions
mount -t tmpfs -o mode=0700 hgpk-rules /etc/polkit-1/rules.d
cp "$L/rules/"* /etc/polkit-1/rules.d/
chown -R polkitd:polkitd /etc/polkit-1/rules.d
mount --bind "$L/bus.conf" /usr/share/dbus-1/system.conf
echo ready > "$L/ready"
exec sleep 2147483647
"""

# The driver a test user runs (with the client venv's Python): argv[1] is a JSON list of calls
# ("-": on the first line of stdin)
# {"method", "args", "interactive"} or raw ones {"member", "signature", "body", "interface",
# "path"}; with argv[2] == "wait" it prints its pid and waits for a line on stdin first.  It
# prints one JSON list: {"ok": result} or {"error": name, "message": text} per call, in order
# (and "fields": the reason's code and parameters where the helper sent them).
CLIENT = r"""
import asyncio, json, os, sys
from dbus_next import BusType, Message, MessageFlag, MessageType
from hotspotguard.system.dbusio import MessageBus
from hotspotguard.system.helper_client import HelperClient, HelperRefused, HelperUnavailable

async def raw(bus, c):
    flags = MessageFlag.ALLOW_INTERACTIVE_AUTHORIZATION if c.get("interactive") else 0
    reply = await bus.call(Message(
        destination=c.get("destination", "io.github.hotspotguard.Helper1"),
        path=c.get("path", "/io/github/hotspotguard/Helper1"),
        interface=c.get("interface", "io.github.hotspotguard.Helper1"),
        member=c["member"], signature=c.get("signature", ""), body=c.get("body", []),
        flags=MessageFlag(flags)))
    if reply.message_type == MessageType.ERROR:
        return {"error": reply.error_name, "message": (reply.body or [""])[0]}
    return {"ok": reply.body}

async def main():
    calls = json.loads(sys.stdin.readline() if sys.argv[1] == "-" else sys.argv[1])
    if len(sys.argv) > 2 and sys.argv[2] == "wait":
        print(os.getpid(), flush=True)
        sys.stdin.readline()
    bus = await MessageBus(bus_type=BusType.SYSTEM).connect()
    clients = {}
    window = asyncio.Semaphore(64)
    async def one(c):
        async with window:
            return await one_call(c)
    async def one_call(c):
        if "member" in c:
            return await raw(bus, c)
        key = bool(c.get("interactive", True))
        if key not in clients:
            clients[key] = await HelperClient(interactive=key).connect()
        try:
            return {"ok": await clients[key].call(c["method"], *c.get("args", []))}
        except HelperRefused as e:
            fields = {"fields": e.fields} if e.fields else {}
            return {"error": e.kind, "message": str(e), **fields}
        except HelperUnavailable as e:
            return {"error": "Unavailable", "message": str(e)}
    if os.environ.get("HG_SEQUENTIAL"):
        out = [await one(c) for c in calls]
    else:
        out = await asyncio.gather(*(one(c) for c in calls))
    print(json.dumps(out), flush=True)

asyncio.run(main())
"""

RULES = """\
// hotspotguard's test rules (per-run users); each check leaves a trace in polkitd's output
polkit.addAdminRule(function(action, subject) {{
    if (action.id.indexOf("io.github.hotspotguard.") == 0) return ["unix-user:{admin}"];
}});
polkit.addRule(function(action, subject) {{
    if (action.id.indexOf("io.github.hotspotguard.") != 0) return undefined;
    polkit.log("{mark} " + action.id + " user=" + subject.user +
               " iface=" + action.lookup("iface") + " fix_id=" + action.lookup("fix_id"));
    var u = subject.user;
    if (u == "{allow}") return polkit.Result.YES;
    if (u == "{deny}") return polkit.Result.NO;
    if (u == "{read}")
        return action.id == "io.github.hotspotguard.read" ? polkit.Result.YES : polkit.Result.NO;
    if (u == "{auth}") return polkit.Result.AUTH_ADMIN_KEEP;
    if (u == "{asker}")  // reads freely, asks for the admin's password to change anything
        return action.id == "io.github.hotspotguard.read" ? polkit.Result.YES
                                                           : polkit.Result.AUTH_ADMIN_KEEP;
    if (u == "{fixer}")  // everything but another user's fixes
        return action.id == "io.github.hotspotguard.undo-others" ? polkit.Result.NO
                                                                  : polkit.Result.YES;
    return undefined;
}});
"""


def install_helper_bus_files(lab: Path, helper: Path) -> None:
    """The helper's D-Bus activation file (running `helper`), bus policy and polkit actions,
    as the package installs them, into a lab's ``services``, ``system.d`` and ``actions``."""
    (lab / "services" / "io.github.hotspotguard.Helper1.service").write_text(
        (RESOURCES / "io.github.hotspotguard.Helper1.service")
        .read_text()
        .replace("@HELPER@", str(helper))
    )
    shutil.copy(RESOURCES / "io.github.hotspotguard.Helper1.conf", lab / "system.d")
    shutil.copy(RESOURCES / "io.github.hotspotguard.policy", lab / "actions")


def polkit_lab_unavailable_reason() -> str | None:
    """Why the polkit lab cannot run here (None if it can)."""
    if os.geteuid() != 0:
        return "the polkit lab needs root (namespaces, overlays, test users)"
    missing = [t for t in REQUIRED_TOOLS if _which(t) is None]
    missing += [p for p in (POLKITD, LAUNCH_HELPER, SYSTEM_PYTHON) if not os.path.exists(p)]
    if missing:
        return "the polkit lab needs: " + ", ".join(missing) + " (polkitd, dbus, util-linux)"
    if not HELPER_EXEC.exists():
        return f"{HELPER_EXEC} is missing: pip install -e . (the hotspotguard-helper script)"
    return None


def client_venv() -> Path:
    """A venv of /usr/bin/python3 that test users can run (root's Python is unreadable to
    them), with dbus-next copied in (pure Python) and this source tree on its path; cached
    under /tmp by the hash of pyproject.toml and dbus-next's version."""
    import dbus_next

    package = Path(dbus_next.__file__).resolve().parent
    key = hashlib.sha256(
        (REPO / "pyproject.toml").read_bytes() + str(package).encode() + str(REPO).encode()
    ).hexdigest()[:12]
    target = Path(tempfile.gettempdir()) / f"hotspotguard-clientvenv-{key}"
    if (target / ".complete").exists():
        return target
    build = Path(tempfile.mkdtemp(prefix=f"hotspotguard-clientvenv-{key}-build-"))
    try:
        subprocess.run(
            [SYSTEM_PYTHON, "-m", "venv", "--without-pip", str(build)],
            check=True,
            capture_output=True,
            env=CLEAN_ENV,
        )
        site = next(build.glob("lib/python3*/site-packages"))
        shutil.copytree(package, site / "dbus_next", ignore=shutil.ignore_patterns("__pycache__"))
        (site / "hotspotguard-src.pth").write_text(f"{REPO / 'src'}\n")
        (build / ".complete").write_text("ok\n")
        for path in (build, *build.rglob("*")):
            if not path.is_symlink():
                path.chmod(0o755 if path.is_dir() else 0o644 | (path.stat().st_mode & 0o111))
        try:
            build.rename(target)
        except OSError:  # built meanwhile by another run
            shutil.rmtree(build, ignore_errors=True)
    except BaseException:
        shutil.rmtree(build, ignore_errors=True)
        raise
    return target


@dataclass(frozen=True)
class User:
    """A test user (it exists only in the lab's /etc overlay)."""

    role: str
    name: str
    uid: int
    gid: int


@dataclass
class Agent:
    """A pkttyagent on a pty, registered for one client process."""

    proc: subprocess.Popen[bytes]
    master: int
    output: bytearray

    def read(self, timeout: float = 0.0) -> str:
        import select

        deadline = time.monotonic() + timeout
        while True:
            left = max(0.0, deadline - time.monotonic())
            ready, _, _ = select.select([self.master], [], [], left)
            if not ready:
                break
            try:
                data = os.read(self.master, 4096)
            except OSError:
                break
            if not data:
                break
            self.output += data
            timeout = 0.0
            deadline = time.monotonic()
        return self.output.decode(errors="replace")

    def echo_off(self) -> bool:
        return not termios.tcgetattr(self.master)[3] & termios.ECHO


# the helper's namespace as a hotspot sees it: hs0 (10.42.0.1/24) and an uplink up0 with the
# default route (each an `ip` command)
HOTSPOT_LINKS = (
    "link add hs0 type veth peer name hsp",
    "link add up0 type veth peer name upp",
    "addr add 10.42.0.1/24 dev hs0",
    "addr add 198.51.100.2/24 dev up0",
    "link set hs0 up",
    "link set hsp up",
    "link set up0 up",
    "link set upp up",
    "route add default via 198.51.100.1 dev up0",
)


class PolkitLab(HolderLab):
    """Builds the lab on construction (a half-built one is torn down); close() undoes all."""

    LOG_NAMES = ("holder.log", "dbus.log", "polkit.log")

    def __init__(self, prefix: str | None = None) -> None:
        t0 = time.monotonic()
        self.prefix = prefix or f"hgpk{os.getpid()}{secrets.token_hex(2)}"
        self.netns = f"{self.prefix}-helper"
        self.dir = Path(tempfile.mkdtemp(prefix=f"{self.prefix}-", dir="/tmp"))
        self.dir.chmod(0o755)
        self.tag = "hg" + secrets.token_hex(3)
        self.users: dict[str, User] = {}
        self.password = secrets.token_urlsafe(12)
        self._holder: subprocess.Popen[bytes] | None = None
        self._dbus: subprocess.Popen[bytes] | None = None
        self._polkitd: subprocess.Popen[bytes] | None = None
        self._netns_created = False
        self._closed = False
        self.venv = client_venv()
        atexit.register(self.close)
        try:
            self._build()
        except BaseException:
            self.close()
            raise
        self.setup_seconds = time.monotonic() - t0

    # -- paths --
    @property
    def holder_pid(self) -> int:
        assert self._holder is not None
        return self._holder.pid

    @property
    def root(self) -> Path:
        """The lab's file system as the test process sees it."""
        return Path(f"/proc/{self.holder_pid}/root")

    @property
    def bus_address(self) -> str:
        return f"unix:path={self.root}/run/dbus/system_bus_socket"

    # -- building --
    def _build(self) -> None:
        names = {role: f"{self.tag}{role}" for role in ROLES}
        for sub in ("services", "system.d", "actions", "rules", "ovl"):
            (self.dir / sub).mkdir(mode=0o755)
        (self.dir / "bus.conf").write_text(BUS_CONF.format(lab=self.dir))
        install_helper_bus_files(self.dir, HELPER_EXEC)
        (self.dir / "rules" / RULES_FILE).write_text(RULES.format(mark=CHECK_MARK, **names))
        (self.dir / "client.py").write_text(CLIENT)
        for path in self.dir.rglob("*"):
            path.chmod(0o755 if path.is_dir() else 0o644)
        _run(["ip", "netns", "add", self.netns])
        self._netns_created = True
        _run(["ip", "-n", self.netns, "link", "set", "lo", "up"])
        self._holder = self._popen(
            ["ip", "netns", "exec", self.netns, "unshare", "--mount", "--propagation", "private",
             "sh", "-c", _HOLDER, "holder", str(self.dir)],
            "holder.log",
        )  # fmt: skip
        self._wait(lambda: (self.dir / "ready").exists(), 10, "the namespace holder")
        for name in names.values():
            self.ns_run(["useradd", "-M", "-N", "-d", "/", "-s", "/usr/sbin/nologin", name])
        self.ns_run(["chpasswd"], input=f"{names['admin']}:{self.password}\n")
        passwd = (self.root / "etc" / "passwd").read_text()
        for line in passwd.splitlines():
            fields = line.split(":")
            for role, name in names.items():
                if fields[0] == name:
                    self.users[role] = User(role, name, int(fields[2]), int(fields[3]))
        self.start_bus()

    def _popen(self, argv: list[str], log: str, **kw: Any) -> subprocess.Popen[bytes]:
        with open(self.dir / log, "ab") as logf:
            return subprocess.Popen(
                argv,
                stdin=subprocess.DEVNULL,
                stdout=logf,
                stderr=subprocess.STDOUT,
                env=CLEAN_ENV,
                start_new_session=True,
                **kw,
            )

    def ns_argv(self, argv: list[str], user: User | None = None) -> list[str]:
        """`argv` inside the lab's mount and network namespaces (as `user`, or root)."""
        inner = argv
        if user is not None:
            inner = ["setpriv", f"--reuid={user.uid}", f"--regid={user.gid}", "--clear-groups",
                     "--", *argv]  # fmt: skip
        return ["nsenter", "-t", str(self.holder_pid), "-m", "-n", "--", *inner]

    def ns_run(
        self, argv: list[str], *, input: str | None = None, check: bool = True, timeout: float = 30
    ) -> subprocess.CompletedProcess[str]:
        """Run a root command inside the lab."""
        return _run(self.ns_argv(argv), input=input, check=check, timeout=timeout)

    def start_bus(self) -> None:
        socket_path = self.root / "run" / "dbus" / "system_bus_socket"
        self._dbus = self._popen(
            self.ns_argv(["dbus-daemon", "--system", "--nofork", "--nopidfile", "--nosyslog"]),
            "dbus.log",
        )
        self._wait(socket_path.exists, 10, "dbus-daemon")
        self._polkitd = self._popen(self.ns_argv([POLKITD]), "polkit.log")
        self._wait(lambda: self.name_owner("org.freedesktop.PolicyKit1") is not None, 15, "polkitd")

    # -- the bus, from the test process (root) --
    def bus_call(self, member: str, signature: str = "", *body: Any) -> Any:
        """A call to org.freedesktop.DBus; the reply's body (or None on an error)."""
        return asyncio.run(
            self.root_call(
                "org.freedesktop.DBus", "/org/freedesktop/DBus", "org.freedesktop.DBus", member,
                signature, list(body),
            )
        )  # fmt: skip

    async def root_call(
        self, destination: str, path: str, interface: str, member: str, signature: str,
        body: list[Any],
    ) -> Any:  # fmt: skip
        bus = await MessageBus(bus_address=self.bus_address).connect()
        try:
            reply = await bus.call(
                Message(destination=destination, path=path, interface=interface, member=member,
                        signature=signature, body=body)
            )  # fmt: skip
        finally:
            bus.disconnect()
        if reply is None or reply.message_type == MessageType.ERROR:
            return None
        return reply.body

    def name_owner(self, name: str) -> str | None:
        body = self.bus_call("GetNameOwner", "s", name)
        return str(body[0]) if body else None

    def helper_pid(self) -> int | None:
        """The pid of the process owning the helper's name (None: not running)."""
        body = self.bus_call("GetConnectionUnixProcessID", "s", "io.github.hotspotguard.Helper1")
        return int(body[0]) if body else None

    def stop_helper(self) -> None:
        """Kill the helper that owns the name (if any) and wait until the name is free."""
        pid = self.helper_pid()
        if pid is None:
            return
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGTERM)
        self._wait(lambda: not _proc_alive(pid), 5, "the helper's exit")
        self._wait(lambda: self.helper_pid() is None, 5, "the helper's name release")

    # -- polkit --
    def polkit_checks(self) -> list[str]:
        """The trace lines our rules left: one per CheckAuthorization that reached them."""
        text = (self.dir / "polkit.log").read_text(errors="replace")
        return [line for line in text.splitlines() if CHECK_MARK in line]

    def write_rules(self, text: str) -> None:
        path = self.root / "etc" / "polkit-1" / "rules.d" / RULES_FILE
        path.write_text(text)

    # -- clients --
    def client_argv(self, user: User | None) -> list[str]:
        return self.ns_argv([str(self.venv / "bin" / "python"), str(self.dir / "client.py")], user)

    def run_client(
        self,
        user: User | None,
        calls: list[dict[str, Any]],
        *,
        sequential: bool = False,
        timeout: float = 60,
    ) -> list[dict[str, Any]]:
        """Run the client driver as `user`; its answers, one per call."""
        env = {**CLEAN_ENV, **({"HG_SEQUENTIAL": "1"} if sequential else {})}
        proc = subprocess.run(
            [*self.client_argv(user), "-"],
            input=json.dumps(calls) + "\n",
            capture_output=True,
            text=True,
            env=env,
            timeout=timeout,
            check=False,
        )
        if proc.returncode != 0:
            raise LabError(f"client failed ({proc.returncode}): {proc.stderr[-3000:]}")
        return list(json.loads(proc.stdout.strip().splitlines()[-1]))

    def flood(
        self, user: User, calls: list[dict[str, Any]], processes: int, timeout: float = 300
    ) -> list[dict[str, Any]]:
        """`processes` clients (each its own bus connection) sending `calls` each, all at once
        (64 in flight per connection); all their answers."""
        procs = [
            subprocess.Popen(
                [*self.client_argv(user), "-"],
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                text=True,
                env=CLEAN_ENV,
                start_new_session=True,
            )
            for _ in range(processes)
        ]
        answers: list[dict[str, Any]] = []
        for proc in procs:
            out, err = proc.communicate(json.dumps(calls) + "\n", timeout=timeout)
            if proc.returncode != 0:
                raise LabError(f"flood client failed ({proc.returncode}): {err[-3000:]}")
            answers += json.loads(out.strip().splitlines()[-1])
        return answers

    def helper_memory(self) -> tuple[int, int]:
        """The running helper's resident and peak resident memory (VmRSS, VmHWM), in KiB."""
        pid = self.helper_pid()
        if pid is None:
            raise LabError("the helper is not running")
        fields = dict(
            line.split(":", 1) for line in Path(f"/proc/{pid}/status").read_text().splitlines()
        )
        return int(fields["VmRSS"].split()[0]), int(fields["VmHWM"].split()[0])

    def start_waiting_client(
        self, user: User, calls: list[dict[str, Any]]
    ) -> tuple[subprocess.Popen[str], int]:
        """A client that prints its pid and calls once told to (a line on its stdin)."""
        proc = subprocess.Popen(
            [*self.client_argv(user), json.dumps(calls), "wait"],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env={**CLEAN_ENV, "HG_SEQUENTIAL": "1"},
            start_new_session=True,
        )
        assert proc.stdout is not None
        pid = int(proc.stdout.readline())
        return proc, pid

    def start_agent(self, user: User, pid: int, timeout: float = 10) -> Agent:
        """pkttyagent for process `pid` on a pty (as `user`), once it has registered."""
        import fcntl

        master, slave = pty.openpty()
        notify_r, notify_w = os.pipe()

        def controlling_tty() -> None:
            fcntl.ioctl(0, termios.TIOCSCTTY, 0)

        try:
            proc = subprocess.Popen(
                self.ns_argv(
                    ["pkttyagent", "--process", str(pid), "--notify-fd", str(notify_w)], user
                ),
                stdin=slave,
                stdout=slave,
                stderr=slave,
                env={**CLEAN_ENV, "TERM": "dumb"},
                start_new_session=True,
                pass_fds=(notify_w,),
                preexec_fn=controlling_tty,  # after setsid: the pty becomes its tty
            )
        finally:
            os.close(slave)
            os.close(notify_w)  # else no EOF when the agent is registered
        agent = Agent(proc, master, bytearray())
        try:
            import select

            deadline = time.monotonic() + timeout
            while True:
                ready, _, _ = select.select([notify_r], [], [], 0.05)
                if ready and not os.read(notify_r, 64):
                    break
                agent.read()
                if proc.poll() is not None or time.monotonic() > deadline:
                    raise LabError(f"pkttyagent did not register: {agent.read()}\n{self.logs()}")
        finally:
            os.close(notify_r)
        return agent

    def answer_password(self, agent: Agent, timeout: float = 10) -> None:
        """Wait for the prompt and for echo off (pkttyagent prints first, then TCSAFLUSH), then
        type the admin's password."""
        deadline = time.monotonic() + timeout
        while "Password:" not in agent.read(0.02) or not agent.echo_off():
            if time.monotonic() > deadline:
                raise LabError(f"no password prompt: {agent.read()!r}\n{self.logs()}")
        os.write(agent.master, self.password.encode() + b"\n")

    def stop_agent(self, agent: Agent) -> None:
        if agent.proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(agent.proc.pid, signal.SIGTERM)
            try:
                agent.proc.wait(5)
            except subprocess.TimeoutExpired:
                os.killpg(agent.proc.pid, signal.SIGKILL)
                agent.proc.wait(5)
        with contextlib.suppress(OSError):
            os.close(agent.master)

    @contextlib.contextmanager
    def helper_calls(self) -> Iterator[list[tuple[str, str]]]:
        """The helper's methods called on the lab's bus while inside, in order, as (caller's
        unique name, method) (a list that fills as they come): a real dbus-monitor, as root,
        in the lab's namespaces."""
        rule = "type='method_call',interface='io.github.hotspotguard.Helper1'"
        proc = subprocess.Popen(
            self.ns_argv(["dbus-monitor", "--system", "--profile", rule]),
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            text=True,
            bufsize=1,
        )
        calls: list[tuple[str, str]] = []
        started = threading.Event()

        def read() -> None:
            assert proc.stdout is not None
            for line in proc.stdout:
                fields = line.rstrip("\n").split("\t")
                started.set()  # its own NameAcquired/NameLost: monitoring from here on
                if fields[0] == "mc" and len(fields) >= 8 and fields[6] == BUS_NAME:
                    calls.append((fields[3], fields[7]))

        reader = threading.Thread(target=read, daemon=True)
        reader.start()
        try:
            if not started.wait(10):
                raise LabError(f"dbus-monitor did not start\n{self.logs()}")
            yield calls
        finally:
            proc.terminate()
            proc.wait(5)
            reader.join(5)

    # -- the helper's network namespace --
    def ruleset(self) -> str:
        return _run(["ip", "netns", "exec", self.netns, "nft", "list", "ruleset"]).stdout

    def tagged_rules(self) -> list[str]:
        """The iptables-nft rules carrying a hotspotguard tag in the helper's netns."""
        save = _run(["ip", "netns", "exec", self.netns, "iptables-nft-save"]).stdout
        return [line for line in save.splitlines() if "hotspotguard:" in line]

    def netns_run(self, argv: list[str], check: bool = True) -> subprocess.CompletedProcess[str]:
        return _run(["ip", "netns", "exec", self.netns, *argv], check=check)

    def docker_hotspot(self) -> None:
        """In the helper's netns: a hotspot hs0 (10.42.0.1/24, NetworkManager's nft table), an
        uplink up0 with the default route, forwarding on, and Docker 28's iptables-nft rules
        (FORWARD policy drop): blocked, and docker-user fixes it."""
        from tests.kernel.scenarios.model import ruleset

        for command in HOTSPOT_LINKS:
            self.netns_run(["ip", *command.split()])
        self.netns_run(["sysctl", "-q", "-w", "net.ipv4.ip_forward=1"])
        _run(
            ["ip", "netns", "exec", self.netns, "nft", "-f", "-"],
            input=ruleset("nm-shared-hs0.nft"),
        )
        _run(
            ["ip", "netns", "exec", self.netns, "iptables-nft-restore"],
            input=ruleset("docker28.rules"),
        )

    def reset_firewall(self) -> None:
        """An empty ruleset and no interfaces but lo in the helper's netns; no fixes recorded."""
        self.netns_run(["nft", "flush", "ruleset"])
        for link in ("hs0", "up0"):
            self.netns_run(["ip", "link", "del", link], check=False)
        with contextlib.suppress(FileNotFoundError):
            (self.root / "var" / "lib" / "hotspotguard" / "fixes.json").unlink()

    def pids(self) -> list[int]:
        out = _run(["ip", "netns", "pids", self.netns], check=False).stdout
        return [int(p) for p in out.split() if _proc_alive(int(p))]

    # -- teardown --
    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        with contextlib.suppress(Exception):
            atexit.unregister(self.close)
        if self._netns_created:
            _kill_netns_processes(self.netns)  # holder, bus, polkitd, helper, clients, agents
        for proc in (self._polkitd, self._dbus, self._holder):
            if proc is not None:
                if proc.poll() is None:
                    with contextlib.suppress(ProcessLookupError):
                        os.killpg(proc.pid, signal.SIGKILL)
                with contextlib.suppress(Exception):
                    proc.wait(5)
        if self._netns_created:
            _run(["ip", "netns", "del", self.netns], check=False)
        shutil.rmtree(self.dir, ignore_errors=True)


@contextlib.contextmanager
def polkit_lab_session(prefix: str | None = None) -> Iterator[PolkitLab]:
    lab = PolkitLab(prefix)
    try:
        yield lab
    finally:
        lab.close()


if __name__ == "__main__":  # a quick manual check: build, print the figures, tear down
    with polkit_lab_session() as lab:
        print(f"set-up {lab.setup_seconds:.2f} s; users {lab.users}", file=sys.stderr)
