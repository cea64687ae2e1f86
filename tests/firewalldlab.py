"""A real firewalld in a lab's host namespace, on a private system bus, with its own copy of
/etc/firewalld (../shared/notes/lab-firewalld-ufw.md): never the machine's configuration, bus or
firewall.

    dbus-daemon (private config, socket in the lab's directory)
    firewalld --nofork --nopid, inside the host netns and a private mount namespace where the
        copy is bind-mounted on /etc/firewalld (optionally --default-config: a copy of
        /usr/lib/firewalld, to take built-in zones away)

Both are started with setsid and stopped by their PIDs (TERM, then KILL)."""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
import time
from pathlib import Path

from tests.ui_desktop.desktop_lab import stop_group

FIREWALLD = "/usr/sbin/firewalld"
FIREWALL_CMD = "/usr/bin/firewall-cmd"
BUS_CONF = """<!DOCTYPE busconfig PUBLIC "-//freedesktop//DTD D-Bus Bus Configuration 1.0//EN"
 "http://www.freedesktop.org/standards/dbus/1.0/busconfig.dtd">
<busconfig>
  <type>system</type>
  <listen>unix:path={socket}</listen>
  <auth>EXTERNAL</auth>
  <policy context="default">
    <allow user="root"/>
    <allow own="*"/>
    <allow send_destination="*" eavesdrop="true"/>
    <allow receive_sender="*"/>
  </policy>
</busconfig>
"""


def firewalld_lab_unavailable_reason() -> str | None:
    if os.geteuid() != 0:
        return "the firewalld lab needs root"
    for tool in (FIREWALLD, FIREWALL_CMD, "/usr/bin/dbus-daemon"):
        if not os.access(tool, os.X_OK):
            return (
                f"{tool} is not installed (make system-deps installs firewalld without starting it)"
            )
    return None


class FirewalldLab:
    """firewalld serving network namespace `netns` on a private bus (`address`)."""

    def __init__(
        self, netns: str, *, without_zones: tuple[str, ...] = (), bus_address: str | None = None
    ) -> None:
        """`bus_address`: join that bus (a NetworkManager lab's) instead of a bus of its own."""
        self.netns = netns
        self.dir = Path(tempfile.mkdtemp(prefix="hg-firewalld-"))
        self.socket = self.dir / "bus"
        self.address = bus_address or f"unix:path={self.socket}"
        self._own_bus = bus_address is None
        self.log = self.dir / "firewalld.log"
        self._procs: list[subprocess.Popen[bytes]] = []  # the bus (if ours), firewalld
        try:
            self._start(without_zones)
        except BaseException:
            self.close()
            raise

    @property
    def env(self) -> dict[str, str]:
        return {**os.environ, "DBUS_SYSTEM_BUS_ADDRESS": self.address}

    def _start(self, without_zones: tuple[str, ...]) -> None:
        shutil.copytree("/etc/firewalld", self.dir / "etc", symlinks=True)
        extra = []
        if without_zones:
            shutil.copytree("/usr/lib/firewalld", self.dir / "usr", symlinks=True)
            for zone in without_zones:
                (self.dir / "usr" / "zones" / f"{zone}.xml").unlink()
            extra = ["--default-config", str(self.dir / "usr")]
        if self._own_bus:
            (self.dir / "bus.conf").write_text(BUS_CONF.format(socket=self.socket))
            self._bus = subprocess.Popen(
                ["dbus-daemon", f"--config-file={self.dir / 'bus.conf'}", "--nofork",
                 "--nopidfile", "--nosyslog"],
                start_new_session=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
            )  # fmt: skip
            self._procs.append(self._bus)
            self._wait(self.socket.exists, 10, "dbus-daemon")
        self._extra = extra
        self.start_firewalld()

    def start_firewalld(self) -> None:
        """firewalld on the copied configuration (again, after `stop_firewalld`: a restart)."""
        inner = (
            f"mount --bind {self.dir / 'etc'} /etc/firewalld && exec {FIREWALLD} --nofork "
            f"--nopid --log-target file --log-file {self.log} {' '.join(self._extra)}"
        )
        with open(self.dir / "stderr", "wb") as stderr:
            self._firewalld = subprocess.Popen(
                ["nsenter", f"--net=/run/netns/{self.netns}", "unshare", "--mount",
                 "--propagation", "private", "sh", "-ec", inner],
                env=self.env, start_new_session=True, stdout=subprocess.DEVNULL, stderr=stderr,
            )  # fmt: skip
        self._procs.append(self._firewalld)
        self._wait(lambda: self.cmd("--state", check=False).strip() == "running", 30, "firewalld")

    def _wait(self, ready: object, seconds: float, what: str) -> None:
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            if callable(ready) and ready():
                return
            if any(p.poll() is not None for p in self._procs):
                break
            time.sleep(0.1)
        log = self.log.read_text() if self.log.exists() else ""
        err = (self.dir / "stderr").read_text() if (self.dir / "stderr").exists() else ""
        raise RuntimeError(f"{what} did not start: {log[-2000:]} {err[-2000:]}")

    def cmd(self, *args: str, check: bool = True) -> str:
        """`firewall-cmd ARGS` against this firewalld (its D-Bus API, from the lab's netns)."""
        proc = subprocess.run(
            ["nsenter", f"--net=/run/netns/{self.netns}", FIREWALL_CMD, *args],
            env=self.env, capture_output=True, text=True, timeout=60,
        )  # fmt: skip
        if check and proc.returncode != 0:
            raise AssertionError(f"firewall-cmd {' '.join(args)}: {proc.stderr}{proc.stdout}")
        return proc.stdout

    def config_files(self) -> dict[str, str]:
        """Every file of the copied /etc/firewalld, by relative path."""
        root = self.dir / "etc"
        return {
            str(p.relative_to(root)): p.read_text() for p in sorted(root.rglob("*")) if p.is_file()
        }

    def stop_firewalld(self) -> None:
        stop_group(self._firewalld, 10)
        self._procs.remove(self._firewalld)

    def close(self) -> None:
        for proc in reversed(self._procs):
            stop_group(proc, 10)
        self._procs.clear()
        shutil.rmtree(self.dir, ignore_errors=True)
