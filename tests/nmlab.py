"""A real NetworkManager lab: NM 1.42 in private namespaces with its own system bus.

Follows /work/shared/notes/lab-networkmanager.md::

    netns PFX-phone       netns PFX-host (+ own mount and UTS namespace)          netns PFX-inet
    ph0 <--veth--> hs0    profile "hotspot": ethernet, ipv4.method=shared (10.42.0.1/24)
                   up0    profile "uplink": 198.51.100.2/24 gw .1  <--veth-->  in0 198.51.100.1/24
                   a private system dbus-daemon + NetworkManager --debug (+ the dnsmasq it starts)

`share_ipv6()` adds IPv6 as NM 1.42 shares it: the inet side advertises the M flag and ISC
``dhcpd -6`` delegates 2001:db8:4200::/64 to the uplink (``ipv6.method=auto``); the hotspot
(``ipv6.method=shared``) gets 2001:db8:4200::1/64 and NM advertises it, the phone configures its
address by SLAAC.

A "holder" process (``sleep``) owns the host's mount and UTS namespaces, in which /sys is
remounted read-only (else NM waits for udev forever and every device stays unmanaged) and per-lab
directories are bind-mounted over /run, /var/lib/NetworkManager and NM's configuration
directories.  dbus-daemon and NetworkManager are started with ``nsenter`` into the holder's
namespaces, so each can be killed and restarted on its own.  Because /run is a bind of a lab
directory, the bus is reachable from the root namespace at ``unix:path=LAB/run/dbus/...``.
"""

from __future__ import annotations

import atexit
import contextlib
import os
import secrets
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

from tests.lab import _ENV, HolderLab, LabError, _kill_netns_processes, _proc_alive, _which

__all__ = ["NmLab", "nm_lab_session", "nm_lab_unavailable_reason"]

REQUIRED_TOOLS = (
    "ip",
    "unshare",
    "nsenter",
    "dbus-daemon",
    "NetworkManager",
    "nmcli",
    "nm-online",
    "dnsmasq",
)  # sharing IPv6 also needs dhcpd (isc-dhcp-server): see share_ipv6

NM_CONF = """\
[main]
plugins=keyfile
no-auto-default=*
dhcp=internal
dns=none
rc-manager=unmanaged
hostname-mode=none
auth-polkit=root-only
firewall-backend=nftables
[keyfile]
unmanaged-devices=except:interface-name:hs0;except:interface-name:up0
[connectivity]
enabled=false
"""

# The stock system bus policy (the <policy> blocks of /usr/share/dbus-1/system.conf), shared by
# the labs' private system buses.
SYSTEM_BUS_POLICY = """\
  <policy context="default">
    <allow user="*"/>
    <deny own="*"/>
    <deny send_type="method_call"/>
    <allow send_type="signal"/>
    <allow send_requested_reply="true" send_type="method_return"/>
    <allow send_requested_reply="true" send_type="error"/>
    <allow receive_type="method_call"/>
    <allow receive_type="method_return"/>
    <allow receive_type="error"/>
    <allow receive_type="signal"/>
    <allow send_destination="org.freedesktop.DBus" send_interface="org.freedesktop.DBus"/>
    <allow send_destination="org.freedesktop.DBus"
           send_interface="org.freedesktop.DBus.Introspectable"/>
    <allow send_destination="org.freedesktop.DBus"
           send_interface="org.freedesktop.DBus.Properties"/>
    <deny send_destination="org.freedesktop.DBus" send_interface="org.freedesktop.DBus"
          send_member="UpdateActivationEnvironment"/>
  </policy>
  <policy user="root">
    <allow send_destination="org.freedesktop.DBus"
           send_interface="org.freedesktop.DBus.Monitoring"/>
  </policy>
"""

# The stock system bus without a service directory (so nothing is bus-activated), without
# fork/user/pidfile/syslog.
BUS_CONF = """\
<!DOCTYPE busconfig PUBLIC "-//freedesktop//DTD D-Bus Bus Configuration 1.0//EN"
 "http://www.freedesktop.org/standards/dbus/1.0/busconfig.dtd">
<busconfig>
  <type>system</type>
  <listen>unix:path=/run/dbus/system_bus_socket</listen>
  <auth>EXTERNAL</auth>
{policy}  <includedir>/usr/share/dbus-1/system.d</includedir>
  <includedir>/etc/dbus-1/system.d</includedir>
</busconfig>
""".replace("{policy}", SYSTEM_BUS_POLICY)

# Runs in the host netns under `unshare --mount --uts`; $1 = lab dir, $2 = hostname.
_HOLDER = r"""
set -e
L=$1
mount -o remount,bind,ro /sys
mount --bind "$L/run" /run
mount --bind "$L/varlib" /var/lib/NetworkManager
mount --bind "$L/conns" /etc/NetworkManager/system-connections
mount --bind "$L/confd" /etc/NetworkManager/conf.d
mount --bind "$L/shared" /etc/NetworkManager/dnsmasq-shared.d
mount --bind "$L/resolv.conf" /etc/resolv.conf
hostname "$2"
mkdir -p /run/dbus
echo ready > "$L/holder-ready"
exec sleep 1000000
"""


_BIND_TARGETS = (
    "/var/lib/NetworkManager",
    "/etc/NetworkManager/system-connections",
    "/etc/NetworkManager/conf.d",
    "/etc/NetworkManager/dnsmasq-shared.d",
    "/etc/resolv.conf",
)


def _run(
    argv: list[str],
    *,
    check: bool = True,
    env: dict[str, str] | None = None,
    timeout: float = 60,
    input: str | None = None,
) -> subprocess.CompletedProcess[str]:
    proc = subprocess.run(
        argv,
        text=True,
        capture_output=True,
        env=env or _ENV,
        check=False,
        timeout=timeout,
        input=input,
    )
    if check and proc.returncode != 0:
        raise LabError(
            f"command failed (rc={proc.returncode}): {' '.join(argv)}\n"
            f"stdout: {proc.stdout.strip()}\nstderr: {proc.stderr.strip()}"
        )
    return proc


# The uplink's IPv6 side (the inet namespace plays the ISP's router): router advertisements with
# the M flag (addresses and prefixes come from DHCPv6) from a small sender, and ISC dhcpd -6
# handing out an address on the link and delegating a /64 for the hotspot.
UPLINK_NET6 = "2001:db8:100::/64"
INET_V6 = "2001:db8:100::1"
DELEGATED_PREFIX = "2001:db8:4200::/64"

DHCPD6_CONF = """\
default-lease-time 3600;
max-lease-time 7200;
authoritative;
subnet6 2001:db8:100::/64 {
  range6 2001:db8:100::100 2001:db8:100::1ff;
  prefix6 2001:db8:4200:: 2001:db8:4200:: /64;
}
"""

# Runs in the inet namespace: an RA every 0.5 s on in0 (M flag, default router, the uplink's
# on-link prefix, not for SLAAC).
RA_SENDER = r"""
import socket, struct, sys, time
iface = sys.argv[1]
idx = socket.if_nametoindex(iface)
mac = bytes.fromhex(open(f"/sys/class/net/{iface}/address").read().strip().replace(":", ""))
s = socket.socket(socket.AF_INET6, socket.SOCK_RAW, socket.IPPROTO_ICMPV6)
s.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_MULTICAST_HOPS, 255)
s.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_MULTICAST_IF, idx)
prefix = socket.inet_pton(socket.AF_INET6, "2001:db8:100::")
ra = struct.pack("!BBHBBHII", 134, 0, 0, 64, 0x80, 1800, 0, 0)
ra += bytes([1, 1]) + mac
ra += struct.pack("!BBBBIII", 3, 4, 64, 0x80, 86400, 14400, 0) + prefix
while True:
    try:
        s.sendto(ra, ("ff02::1", 0, 0, idx))
    except OSError:
        pass
    time.sleep(0.5)
"""


def nm_lab_unavailable_reason() -> str | None:
    """Why the NetworkManager lab cannot run here (None if it can)."""
    if os.geteuid() != 0:
        return "the NetworkManager lab needs root (network and mount namespaces)"
    missing = [t for t in REQUIRED_TOOLS if _which(t) is None]
    if missing:
        return "the NetworkManager lab needs: " + ", ".join(missing) + " (network-manager, dbus)"
    for d in (*_BIND_TARGETS, "/usr/share/dbus-1/system.d/org.freedesktop.NetworkManager.conf"):
        if not os.path.exists(d):
            return f"the NetworkManager lab needs {d} (is network-manager installed?)"
    return None


class NmLab(HolderLab):
    """Builds the lab on construction (tears a half-built lab down on failure); close() undoes."""

    LOG_NAMES = ("holder.log", "dbus.log", "nm.log")

    def __init__(self, prefix: str | None = None) -> None:
        t0 = time.monotonic()
        self.prefix = prefix or f"hgnm{os.getpid()}{secrets.token_hex(2)}"
        self.phone, self.host, self.inet = (f"{self.prefix}-{s}" for s in ("phone", "host", "inet"))
        self.dir = Path(tempfile.mkdtemp(prefix=f"{self.prefix}-", dir="/tmp"))
        self.socket = self.dir / "run" / "dbus" / "system_bus_socket"
        self.bus_address = f"unix:path={self.socket}"
        self._created: list[str] = []
        self._holder: subprocess.Popen[bytes] | None = None
        self._dbus: subprocess.Popen[bytes] | None = None
        self._nm: subprocess.Popen[bytes] | None = None
        self._inet_daemons: list[subprocess.Popen[bytes]] = []
        self._closed = False
        atexit.register(self.close)
        self.up_seconds = 0.0
        self.down_seconds = 0.0
        try:
            self._build()
        except BaseException:
            self.close()
            raise
        self.up_seconds = time.monotonic() - t0

    # -- building --
    def _build(self) -> None:
        for sub in ("run/dbus", "varlib", "conns", "confd", "shared"):
            (self.dir / sub).mkdir(parents=True, exist_ok=True)
        (self.dir / "resolv.conf").write_text("nameserver 198.51.100.1\n")
        (self.dir / "nm.conf").write_text(NM_CONF)
        (self.dir / "bus.conf").write_text(BUS_CONF)
        (self.dir / "shared" / "no-ping.conf").write_text("no-ping\n")
        for ns in (self.phone, self.host, self.inet):
            _run(["ip", "netns", "add", ns])
            self._created.append(ns)
            _run(["ip", "-n", ns, "link", "set", "lo", "up"])
        _run(["ip", "-n", self.host, "link", "add", "hs0", "type", "veth", "peer", "name", "ph0",
              "netns", self.phone])  # fmt: skip
        _run(["ip", "-n", self.host, "link", "add", "up0", "type", "veth", "peer", "name", "in0",
              "netns", self.inet])  # fmt: skip
        _run(["ip", "-n", self.phone, "addr", "add", "10.42.0.10/24", "dev", "ph0"])
        _run(["ip", "-n", self.phone, "link", "set", "ph0", "up"])
        _run(["ip", "-n", self.inet, "addr", "add", "198.51.100.1/24", "dev", "in0"])
        _run(["ip", "-n", self.inet, "link", "set", "in0", "up"])
        with open(self.dir / "holder.log", "wb") as logf:
            self._holder = subprocess.Popen(
                ["ip", "netns", "exec", self.host, "unshare", "--mount", "--uts", "--propagation",
                 "private", "sh", "-c", _HOLDER, "holder", str(self.dir), self.prefix[:60]],
                stdin=subprocess.DEVNULL, stdout=logf, stderr=subprocess.STDOUT, env=_ENV,
                start_new_session=True,
            )  # fmt: skip
        self._wait(lambda: (self.dir / "holder-ready").exists(), 10, "the namespace holder")
        self.start_dbus()
        self.start_networkmanager()

    def _holder_pid(self) -> int:
        """The pid of `sleep` (exec'ed by sh, itself exec'ed by unshare / ip netns exec)."""
        assert self._holder is not None
        return self._holder.pid

    def _spawn(self, argv: list[str], log: str) -> subprocess.Popen[bytes]:
        with open(self.dir / log, "ab") as logf:
            return subprocess.Popen(
                ["nsenter", "-t", str(self._holder_pid()), "-m", "-u", "-n", "--", *argv],
                stdin=subprocess.DEVNULL, stdout=logf, stderr=subprocess.STDOUT, env=_ENV,
                start_new_session=True,
            )  # fmt: skip

    # -- the bus and NetworkManager --
    def start_dbus(self) -> None:
        with contextlib.suppress(FileNotFoundError):
            self.socket.unlink()
        self._dbus = self._spawn(
            ["dbus-daemon", f"--config-file={self.dir}/bus.conf", "--nofork"], "dbus.log"
        )
        self._wait(self.socket.exists, 10, "dbus-daemon")

    def stop_dbus(self) -> None:
        self._stop(self._dbus)
        self._dbus = None

    def restart_dbus(self, restart_networkmanager: bool = True) -> None:
        """NetworkManager 1.42 stays running when its bus goes away but never joins the new one:
        by default it is restarted too (as a service manager would)."""
        self.stop_dbus()
        self.start_dbus()
        if restart_networkmanager and self._nm is not None:
            self.restart_networkmanager()

    def start_networkmanager(self, timeout: float = 30) -> None:
        self._nm = self._spawn(
            ["NetworkManager", "--debug", f"--config={self.dir}/nm.conf"], "nm.log"
        )
        proc = _run(["nm-online", "-s", "-q", "-t", str(int(timeout))], check=False, env=self.env)
        if proc.returncode != 0 or self._nm.poll() is not None:
            raise LabError(f"NetworkManager did not start (rc {proc.returncode})\n{self.logs()}")

    def stop_networkmanager(self, sig: signal.Signals = signal.SIGTERM) -> None:
        self._stop(self._nm, sig)
        self._nm = None

    def restart_networkmanager(self) -> None:
        self.stop_networkmanager()
        self.start_networkmanager()

    @property
    def networkmanager_running(self) -> bool:
        return self._nm is not None and self._nm.poll() is None

    @staticmethod
    def _stop(proc: subprocess.Popen[bytes] | None, sig: int = signal.SIGTERM) -> None:
        if proc is None or proc.poll() is not None:
            return
        with contextlib.suppress(ProcessLookupError):
            proc.send_signal(sig)
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(5)

    @property
    def env(self) -> dict[str, str]:
        return {**_ENV, "DBUS_SYSTEM_BUS_ADDRESS": self.bus_address}

    def sysctl(self, key: str, value: str) -> None:
        """Set a sysctl in the lab host's network namespace."""
        self.host_run(["sysctl", "-q", "-w", f"{key}={value}"])

    def nmcli(self, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        """nmcli against the lab's bus (from the root namespace)."""
        return _run(["nmcli", *args], check=check, env=self.env)

    def add_profiles(self) -> None:
        """The notes' "uplink" (static) and "hotspot" (ethernet, ipv4.method=shared) profiles."""
        common = ("con", "add", "type", "ethernet", "autoconnect", "no", "ipv6.method", "disabled")
        self.nmcli(*common, "ifname", "up0", "con-name", "uplink", "ipv4.method", "manual",
                   "ipv4.addresses", "198.51.100.2/24", "ipv4.gateway", "198.51.100.1")  # fmt: skip
        self.nmcli(*common, "ifname", "hs0", "con-name", "hotspot", "ipv4.method", "shared")

    def share_ipv6(self) -> None:
        """Share IPv6 as NetworkManager 1.42 does it: the uplink takes its address by DHCPv6
        (the inet side advertises the M flag) and gets a /64 delegated; the hotspot profile
        (`ipv6.method=shared`) puts an address of that prefix on hs0 and advertises it to the
        phone, which configures its address by SLAAC."""
        if _which("dhcpd") is None:
            raise LabError("sharing IPv6 needs ISC dhcpd -6 (isc-dhcp-server) on the inet side")
        _run(["ip", "-n", self.inet, "addr", "add", f"{INET_V6}/64", "dev", "in0", "nodad"])
        for key in ("accept_dad", "dad_transmits"):
            self.host_run(["sysctl", "-q", "-w", f"net.ipv6.conf.default.{key}=0"], check=False)
        # the phone: a host that takes router advertisements and configures SLAAC
        _run(["ip", "netns", "exec", self.phone, "sysctl", "-q", "-w",
              "net.ipv6.conf.ph0.accept_ra=1", "net.ipv6.conf.ph0.autoconf=1",
              "net.ipv6.conf.ph0.accept_dad=0"])  # fmt: skip
        (self.dir / "dhcpd6.conf").write_text(DHCPD6_CONF)
        (self.dir / "dhcpd6.leases").write_text("")
        (self.dir / "ra.py").write_text(RA_SENDER)
        for argv, log in (
            (["dhcpd", "-6", "-f", "-q", "-cf", f"{self.dir}/dhcpd6.conf",
              "-lf", f"{self.dir}/dhcpd6.leases", "-pf", f"{self.dir}/dhcpd6.pid",
              "-user", "root", "-group", "root", "in0"], "dhcpd6.log"),
            ([sys.executable, f"{self.dir}/ra.py", "in0"], "ra.log"),
        ):  # fmt: skip
            with open(self.dir / log, "ab") as logf:
                self._inet_daemons.append(
                    subprocess.Popen(
                        ["ip", "netns", "exec", self.inet, *argv],
                        stdin=subprocess.DEVNULL,
                        stdout=logf,
                        stderr=subprocess.STDOUT,
                        env=_ENV,
                        start_new_session=True,
                    )
                )
        self.nmcli("con", "modify", "uplink", "ipv6.method", "auto")
        self.nmcli("con", "modify", "hotspot", "ipv6.method", "shared")

    def phone_ipv6(self) -> list[str]:
        """The phone's global IPv6 addresses (with prefix length)."""
        out = _run(["ip", "-n", self.phone, "-6", "-o", "addr", "show", "dev", "ph0",
                    "scope", "global"], check=False).stdout  # fmt: skip
        return [line.split()[3] for line in out.splitlines() if len(line.split()) > 3]

    def host_ipv6(self, iface: str = "hs0") -> list[str]:
        out = self.host_run(["ip", "-6", "-o", "addr", "show", "dev", iface, "scope", "global"],
                            check=False).stdout  # fmt: skip
        return [line.split()[3] for line in out.splitlines() if len(line.split()) > 3]

    def up(self, profile: str) -> None:
        self.nmcli("--wait", "30", "con", "up", profile)

    def down(self, profile: str) -> None:
        self.nmcli("--wait", "30", "con", "down", profile)

    def host_pids(self) -> list[int]:
        """Live processes in the host's network namespace (NM, the dnsmasq it started, ...)."""
        out = _run(["ip", "netns", "pids", self.host], check=False).stdout
        return [int(p) for p in out.split() if _proc_alive(int(p))]

    def host_run(
        self, argv: list[str], check: bool = True, input: str | None = None
    ) -> subprocess.CompletedProcess[str]:
        return _run(["ip", "netns", "exec", self.host, *argv], check=check, input=input)

    # -- teardown --
    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        with contextlib.suppress(Exception):
            atexit.unregister(self.close)
        t0 = time.monotonic()
        self._stop(self._nm)
        self._stop(self._dbus)
        self._stop(self._holder)
        for daemon in self._inet_daemons:
            self._stop(daemon)
        for ns in reversed(self._created):
            _kill_netns_processes(ns)  # a stale dnsmasq (NM killed with SIGKILL), anything else
            _run(["ip", "netns", "del", ns], check=False)
        self._created.clear()
        for proc in (self._nm, self._dbus, self._holder):
            if proc is not None and _proc_alive(proc.pid):
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(proc.pid, signal.SIGKILL)
        shutil.rmtree(self.dir, ignore_errors=True)
        self.down_seconds = time.monotonic() - t0


# (up, down) seconds of every lab built by the `nm_lab` fixture, for the timing report.
LAB_TIMES: list[tuple[float, float]] = []


@contextlib.contextmanager
def nm_lab_session(prefix: str | None = None) -> Iterator[NmLab]:
    """Build the NetworkManager lab with its two profiles, yield it, always tear it down."""
    lab = NmLab(prefix)
    try:
        lab.add_profiles()
        yield lab
    finally:
        lab.close()
