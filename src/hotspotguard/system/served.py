"""What a hotspot serves over IPv6, read from the live machine (root).

Router advertisements (SLAAC), DHCPv6 and DNS over IPv6 are each served, or not, by a program
running in this network namespace: NetworkManager sends router advertisements itself for a
connection whose `ipv6.method` is `shared` (its settings, read from its device state and its
profiles), and the dnsmasq it (or anyone) starts serves what its command line and the files it
reads say (`interface`, `listen-address`, `port`, `dhcp-range`, `enable-ra`). Files are read
through `/proc/PID/root`, so a daemon in a mount namespace of its own is read as it sees them.
"""

from __future__ import annotations

import configparser
import fnmatch
import ipaddress
import os
from collections.abc import Iterable, Iterator
from dataclasses import dataclass

# dhcp-range modes (dnsmasq(8)): which send router advertisements, which leave DHCPv6 out
_RA_MODES = frozenset({"ra-only", "slaac", "ra-names", "ra-stateless", "ra-advrouter"})
_NO_DHCP6_MODES = frozenset({"ra-only"})
_MAX_CONF_FILES = 64
_MAX_FILE_BYTES = 1 << 20
_NM_PROFILE_DIRS = (
    "/etc/NetworkManager/system-connections",
    "/run/NetworkManager/system-connections",
    "/usr/lib/NetworkManager/system-connections",
)


@dataclass(frozen=True)
class Process:
    pid: int
    comm: str
    argv: tuple[str, ...]

    def path(self, name: str) -> str:
        """`name` as this process sees it (its own root and mount namespace)."""
        return f"/proc/{self.pid}/root{name}"


def _net_namespace(pid: int | str) -> int | None:
    try:
        return os.stat(f"/proc/{pid}/ns/net").st_ino
    except OSError:
        return None


def processes(names: Iterable[str]) -> list[Process]:
    """The running processes called one of `names` in this network namespace."""
    wanted = set(names)
    here = _net_namespace("self")
    found: list[Process] = []
    try:
        pids = [int(p) for p in os.listdir("/proc") if p.isdigit()]
    except OSError:
        return []
    for pid in pids:
        try:
            comm = _read_small(f"/proc/{pid}/comm").decode(errors="replace").strip()
            if comm not in wanted:
                continue
            raw = _read_small(f"/proc/{pid}/cmdline", 1 << 16)
        except OSError:
            continue
        if here is not None and _net_namespace(pid) != here:
            continue  # another namespace's daemon serves other interfaces
        argv = tuple(a.decode(errors="replace") for a in raw.split(b"\0") if a)
        if argv:
            found.append(Process(pid, comm, argv))
    return found


def _read_small(path: str, limit: int = 64) -> bytes:
    """A /proc file with plain os calls (a buffered open per process costs 5x more)."""
    fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
    try:
        return os.read(fd, limit)
    finally:
        os.close(fd)


def _read(path: str) -> str:
    try:
        with open(path, "rb") as handle:
            return handle.read(_MAX_FILE_BYTES).decode(errors="replace")
    except OSError:
        return ""


# --- dnsmasq -----------------------------------------------------------------------------------


def dnsmasq_options(proc: Process) -> list[tuple[str, str]]:
    """dnsmasq's options as (name, value): its command line, then the files it reads."""
    options: list[tuple[str, str]] = []
    conf_files: list[str] = []
    conf_dirs: list[str] = []
    explicit_conf = False
    for arg in proc.argv[1:]:
        if not arg.startswith("--"):
            continue
        name, _, value = arg[2:].partition("=")
        if name == "conf-file":
            explicit_conf = True
            if value and value != "/dev/null":
                conf_files.append(value)
        elif name == "conf-dir":
            conf_dirs.append(value)
        else:
            options.append((name, value))
    if not explicit_conf:
        conf_files.append("/etc/dnsmasq.conf")
    for spec in conf_dirs:
        directory, *patterns = spec.split(",")
        try:
            names = sorted(os.listdir(proc.path(directory)))
        except OSError:
            continue
        for name in names:
            if name.startswith(".") or name.endswith("~"):
                continue
            includes = [p[1:] for p in patterns if p.startswith("*")]
            excludes = [p for p in patterns if not p.startswith("*")]
            if includes and not any(name.endswith(s) for s in includes):
                continue
            if any(name.endswith(s) for s in excludes):
                continue
            conf_files.append(f"{directory.rstrip('/')}/{name}")
    for path in conf_files[:_MAX_CONF_FILES]:
        for line in _read(proc.path(path)).splitlines():
            line = line.strip()
            if not line or line.startswith("#"):
                continue
            name, _, value = line.partition("=")
            options.append((name.strip(), value.strip()))
    return options


def _split(values: Iterable[str]) -> list[str]:
    return [v.strip() for value in values for v in value.split(",") if v.strip()]


def dnsmasq_services(
    options: list[tuple[str, str]],
    iface: str,
    addresses: Iterable[ipaddress.IPv4Interface | ipaddress.IPv6Interface],
) -> set[str]:
    """The IPv6 services one dnsmasq configuration serves on `iface`."""
    addresses = list(addresses)
    values: dict[str, list[str]] = {}
    for name, value in options:
        values.setdefault(name, []).append(value)
    interfaces = _split(values.get("interface", []))
    excluded = _split(values.get("except-interface", []))
    listen = []
    for text in _split(values.get("listen-address", [])):
        try:
            listen.append(ipaddress.ip_address(text.split("%")[0]))
        except ValueError:
            continue
    if any(fnmatch.fnmatchcase(iface, pattern) for pattern in excluded):
        return set()
    own = {a.ip for a in addresses}
    by_interface = any(fnmatch.fnmatchcase(iface, pattern) for pattern in interfaces)
    by_address = [a for a in listen if a in own]
    if (interfaces or listen) and not (by_interface or by_address):
        return set()
    served: set[str] = set()
    port = values.get("port", ["53"])[-1]
    if port.strip() != "0" and (
        by_interface or any(a.version == 6 for a in by_address) or not (interfaces or listen)
    ):
        served.add("dns6")
    networks6 = [a.network for a in addresses if a.version == 6 and not a.ip.is_link_local]
    for spec in values.get("dhcp-range", []):
        fields = [f.strip() for f in spec.split(",")]
        fields = [f for f in fields if not f.startswith(("set:", "tag:"))]
        if not fields:
            continue
        start = fields[0]
        if start.startswith("::"):
            # "::1,::400,constructor:IFACE": addresses built from the interface's prefixes
            constructors = [f for f in fields if f.startswith("constructor:")]
            if not any(fnmatch.fnmatchcase(iface, c.split(":", 1)[1]) for c in constructors):
                continue
        else:
            try:
                first = ipaddress.ip_address(start)
            except ValueError:
                continue
            if first.version != 6 or not any(first in net for net in networks6):
                continue
        modes = {f for f in fields[1:] if f in _RA_MODES}
        if modes:
            served.add("ra")
        if not modes & _NO_DHCP6_MODES:
            served.add("dhcp6")
    if "enable-ra" in values and "dhcp6" in served:
        served.add("ra")  # enable-ra advertises the prefixes of its DHCPv6 ranges
    return served


# --- NetworkManager ------------------------------------------------------------------------------


def _keyfile(text: str) -> configparser.ConfigParser:
    parser = configparser.ConfigParser(interpolation=None, strict=False)
    try:
        parser.read_string(text)
    except configparser.Error:
        return configparser.ConfigParser()
    return parser


def _nm_profiles(proc: Process) -> Iterator[configparser.ConfigParser]:
    for directory in _NM_PROFILE_DIRS:
        try:
            names = sorted(os.listdir(proc.path(directory)))
        except OSError:
            continue
        for name in names:
            if name.endswith(".nmconnection"):
                yield _keyfile(_read(proc.path(f"{directory}/{name}")))


def nm_ipv6_method(proc: Process, iface: str) -> str | None:
    """`ipv6.method` of the connection NetworkManager has active on `iface` (its device
    state file names the connection's uuid; its keyfile profiles hold the settings)."""
    try:
        index = int(_read(f"/sys/class/net/{iface}/ifindex").strip())
    except ValueError:
        return None
    state = _keyfile(_read(proc.path(f"/run/NetworkManager/devices/{index}")))
    uuid = state.get("device", "connection-uuid", fallback=None)
    if not uuid:
        return None
    for profile in _nm_profiles(proc):
        if profile.get("connection", "uuid", fallback=None) == uuid:
            return profile.get("ipv6", "method", fallback="auto")
    return None


def ipv6_services(
    iface: str, addresses: Iterable[ipaddress.IPv4Interface | ipaddress.IPv6Interface]
) -> list[str]:
    """The IPv6 services served on `iface`: "ra", "dhcp6", "dns6" (sorted)."""
    addresses = list(addresses)
    served: set[str] = set()
    running = processes({"dnsmasq", "NetworkManager"})
    for proc in running:
        if proc.comm == "NetworkManager":
            if nm_ipv6_method(proc, iface) == "shared":
                served.add("ra")  # NetworkManager sends them itself (its ndisc)
        else:
            served |= dnsmasq_services(dnsmasq_options(proc), iface, addresses)
    return sorted(served)
