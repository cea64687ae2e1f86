"""The kernel oracle: a three-namespace hotspot lab that sends real packets.

Topology (all in private network namespaces; the root namespace is never touched)::

    PFX-phone              PFX-host (under test)             PFX-inet
    ph0 10.42.0.10/24 <--> hs0 10.42.0.1/24
        2001:db8:42::10/64     2001:db8:42::1/64
        fe80::10/64            dnsmasq (DHCPv4/v6, DNS)
        default via the host   up0 198.51.100.2/24 <------> in0 198.51.100.1/24
                                   2001:db8:100::2/64           2001:db8:100::1/64
                               default via inet             lo: 203.0.113.10/32, 2001:db8:113::10
                               ip_forward=1, v6 fwd=1       TCP listener :443; routes back to
                               xt0/xt1: a spare veth        10.42.0.0/24 and 2001:db8:42::/64

A probe sends, for each flow, one real packet from the phone and reports what the kernel of the
host did with it:

=========  ==================================================  ================================
flow       packet                                              "delivered" means
=========  ==================================================  ================================
dhcp       DHCPDISCOVER 0.0.0.0:68 -> 255.255.255.255:67 (raw)  dnsmasq logged DHCPDISCOVER(hs0)
dns        10.42.0.10:rand -> 10.42.0.1:53, A <tok>.probe.test  dnsmasq logged the query
outbound   TCP SYN 10.42.0.10:rand -> 203.0.113.10:443          an nft rule in INET saw the SYN
reply      the SYN-ACK coming back                              an nft rule in PHONE saw it (or
                                                                the connect() completed)
dhcp6      SOLICIT [fe80::10]:546 -> [ff02::1:2]:547 on ph0     dnsmasq logged DHCPSOLICIT(hs0)
dns6       [2001:db8:42::10]:rand -> [2001:db8:42::1]:53        dnsmasq logged the query
outbound6  TCP SYN to [2001:db8:113::10]:443                    as outbound
reply6     the SYN-ACK                                          as reply
rs6        ICMPv6 RS [fe80::10] -> [ff02::2], hop limit 255      the host's raw ICMPv6 socket on
                                                                hs0 got it (after input)
ra6        ICMPv6 RA from the host's link-local -> [ff02::1]     the phone's raw socket got it
ns6_in     NS [fe80::10] -> solicited-node of the host's LL     as rs6
na6_out    NA the host's LL -> [fe80::10]                       as ra6
ns6_out    NS [2001:db8:42::1] -> [ff02::1:ff00:10]             as ra6
na6_in     NA [2001:db8:42::10] -> [2001:db8:42::1]             as rs6
=========  ==================================================  ================================

Discovery probes are sent by raw ICMPv6 sockets (hop limit 255, the kernel's checksum) and carry
a per-probe token in an option of an experimental type, which receivers ignore; the host's own
discovery messages (say, the NA its kernel answers the phone's NS with) have none and do not
count.  The host's probes leave through its output and postrouting hooks; one a rule drops there
fails with EPERM and is never seen.

``masqueraded`` (outbound flows) is True when the SYN reached the internet with a source other
than the phone's address (198.51.100.2 / 2001:db8:100::2 for MASQUERADE).  The inet namespace
routes the hotspot subnets back through the host, so non-NATed connections complete too.

Neighbour entries are static (permanent) in all namespaces, so the packet flows never depend on
ARP/ND under the ruleset being tested; router and neighbour discovery are probed as flows of
their own.

Observation rules live in tables of the PHONE and INET namespaces (ours, never under test); the
host namespace only holds what a test loads.  Sockets of the phone and inet namespaces are created
by per-namespace worker threads (``setns`` on one thread only), so probing needs no subprocess.
"""

from __future__ import annotations

import atexit
import concurrent.futures
import contextlib
import ctypes
import ipaddress
import json
import os
import queue
import random
import re
import secrets
import select
import shutil
import signal
import socket
import struct
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

__all__ = [
    "ALL_FLOWS",
    "DISCOVERY_FLOWS",
    "V4_FLOWS",
    "V6_FLOWS",
    "DockerDaemon",
    "KernelFlow",
    "Lab",
    "LabError",
    "format_outcome",
    "lab_session",
    "lab_unavailable_reason",
    "start_dockerd",
]

ALL_FLOWS: tuple[str, ...] = (
    "dhcp",
    "dns",
    "outbound",
    "reply",
    "dhcp6",
    "dns6",
    "outbound6",
    "reply6",
    "rs6",
    "ra6",
    "ns6_in",
    "na6_out",
    "ns6_out",
    "na6_in",
)
V4_FLOWS: tuple[str, ...] = ALL_FLOWS[:4]
V6_FLOWS: tuple[str, ...] = ALL_FLOWS[4:]
DISCOVERY_FLOWS: tuple[str, ...] = ALL_FLOWS[8:]

# --- addresses (the engine uses exactly these) --------------------------------------------------
PHONE_IF, HOST_HS_IF, HOST_UP_IF, INET_IF = "ph0", "hs0", "up0", "in0"
SPARE_IFS = ("xt0", "xt1")  # an unused veth pair inside the host (for "other device" rules)
PHONE_V4, HOST_HS_V4, HOTSPOT_NET_V4 = "10.42.0.10", "10.42.0.1", "10.42.0.0/24"
PHONE_V6, PHONE_LL, HOST_HS_V6, HOTSPOT_NET_V6 = (
    "2001:db8:42::10",
    "fe80::10",
    "2001:db8:42::1",
    "2001:db8:42::/64",
)
UPLINK_V4, INET_V4 = "198.51.100.2", "198.51.100.1"
UPLINK_V6, INET_V6 = "2001:db8:100::2", "2001:db8:100::1"
SERVER_V4, SERVER_V6, SERVER_PORT = "203.0.113.10", "2001:db8:113::10", 443
PROBE_DOMAIN = "probe.test"
DHCP6_MCAST = "ff02::1:2"

MAC = {
    PHONE_IF: "02:00:00:00:42:10",
    HOST_HS_IF: "02:00:00:00:42:01",
    HOST_UP_IF: "02:00:00:01:00:02",
    INET_IF: "02:00:00:01:00:01",
}


def _eui64_link_local(mac: str) -> str:
    octets = bytearray(bytes.fromhex(mac.replace(":", "")))
    octets[0] ^= 0x02
    iid = bytes(octets[:3]) + b"\xff\xfe" + bytes(octets[3:])
    return str(ipaddress.IPv6Address(b"\xfe\x80" + bytes(6) + iid))


def solicited_node(address: str) -> str:
    low = int(ipaddress.IPv6Address(address)) & 0xFFFFFF
    return str(ipaddress.IPv6Address(int(ipaddress.IPv6Address("ff02::1:ff00:0")) | low))


# the host's link-local address on hs0 (the kernel's EUI-64 one): the source of its RAs
HOST_HS_LL = _eui64_link_local(MAC[HOST_HS_IF])
ND_RS, ND_RA, ND_NS, ND_NA = 133, 134, 135, 136
ND_TOKEN_OPTION = 253  # RFC 4727's experimental option type: receivers ignore it

PROBE_TIMEOUT = 0.5  # seconds to wait for a positive observation before calling it a drop
_POLL = 0.004

_SBIN_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
_ENV = dict(os.environ)
_ENV["PATH"] = os.environ.get("PATH", "") + ":" + _SBIN_PATH
_ENV.setdefault("LC_ALL", "C")

REQUIRED_TOOLS = (
    "ip",
    "nft",
    "sysctl",
    "iptables-nft-restore",
    "ip6tables-nft-restore",
    "iptables-legacy-restore",
    "ip6tables-legacy-restore",
    "dnsmasq",
    "conntrack",
)

NAME_RE = re.compile(r"^hg(\d+)([0-9a-f]{4})-(phone|host|inet)$")


class LabError(RuntimeError):
    """The lab could not be built or driven (not a firewall outcome)."""


@dataclass(frozen=True)
class KernelFlow:
    """What the kernel did with one flow of a probe."""

    delivered: bool | None  # None = not testable (e.g. reply when outbound was dropped)
    masqueraded: bool | None = None  # outbound/outbound6 only
    seen_source: str | None = field(default=None, compare=False)  # source address INET saw

    def short(self) -> str:
        """Compact notation used by the scenario corpus: True/False/None, 'masq', 'plain'."""
        if self.delivered and self.masqueraded is not None:
            return "masq" if self.masqueraded else "plain"
        return str(self.delivered)


def format_outcome(outcome: dict[str, KernelFlow]) -> str:
    return " ".join(f"{f}={outcome[f].short()}" for f in ALL_FLOWS if f in outcome)


def _which(tool: str) -> str | None:
    return shutil.which(tool, path=_ENV["PATH"])


def lab_unavailable_reason() -> str | None:
    """Why the kernel lab cannot run here (None if it can)."""
    if sys.platform != "linux":
        return "the kernel lab needs Linux"
    if os.geteuid() != 0:
        return "the kernel lab needs root (network namespaces, nftables, raw sockets)"
    missing = [t for t in REQUIRED_TOOLS if _which(t) is None]
    if missing:
        return "the kernel lab needs these tools: " + ", ".join(missing)
    return None


# --- running things ------------------------------------------------------------------------------


def _run(
    argv: list[str], *, input: str | None = None, check: bool = True, timeout: float = 60
) -> subprocess.CompletedProcess[str]:
    proc = subprocess.run(
        argv,
        input=input,
        text=True,
        capture_output=True,
        env=_ENV,
        check=False,
        timeout=timeout,
    )
    if check and proc.returncode != 0:
        raise LabError(
            f"command failed (rc={proc.returncode}): {' '.join(argv)}\n"
            f"stdout: {proc.stdout.strip()}\nstderr: {proc.stderr.strip()}"
        )
    return proc


_libc = ctypes.CDLL(None, use_errno=True)
T = TypeVar("T")
_CLONE_NEWNET = 0x40000000


def in_netns(netns: str, fn: Callable[[], T], timeout: float = 120) -> T:
    """`fn()` on a thread moved into `netns` (setns moves that thread only, never the process;
    subprocesses it starts are there too)."""
    results: list[T] = []
    errors: list[BaseException] = []

    def run() -> None:
        try:
            enter_netns(netns)
            results.append(fn())
        except BaseException as error:  # handed to the caller
            errors.append(error)

    thread = threading.Thread(target=run, name=f"netns:{netns}", daemon=True)
    thread.start()
    thread.join(timeout)
    if errors:
        raise errors[0]
    if not results:
        raise TimeoutError(f"no result from {netns} within {timeout} s")
    return results[0]


def enter_netns(netns: str) -> None:
    """Move the calling thread (only it: setns) into the network namespace `netns`."""
    path = f"/run/netns/{netns}"
    fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
    try:
        if _libc.setns(fd, _CLONE_NEWNET) != 0:
            err = ctypes.get_errno()
            raise OSError(err, os.strerror(err))
    finally:
        os.close(fd)
    if os.stat("/proc/thread-self/ns/net").st_ino != os.stat(path).st_ino:
        raise LabError("setns did not move the thread")


class _NetnsWorker:
    """A thread living in one network namespace; runs callables there.

    setns(CLONE_NEWNET) only moves the calling thread, so sockets created by this thread (and
    libnftables contexts it creates) belong to the namespace while the rest of the process stays
    in the root namespace.
    """

    def __init__(self, netns: str) -> None:
        self.netns = netns
        self._q: queue.SimpleQueue[Any] = queue.SimpleQueue()
        self._ready = threading.Event()
        self._error: BaseException | None = None
        self._local: dict[str, Any] = {}
        self._thread = threading.Thread(target=self._main, name=f"netns:{netns}", daemon=True)
        self._thread.start()
        if not self._ready.wait(10):
            raise LabError(f"worker for {netns} did not start")
        if self._error is not None:
            raise LabError(f"cannot enter netns {netns}: {self._error}") from self._error

    def _main(self) -> None:
        try:
            enter_netns(self.netns)
        except BaseException as exc:
            self._error = exc
            self._ready.set()
            return
        self._ready.set()
        while True:
            item = self._q.get()
            if item is None:
                break
            fn, args, fut = item
            if not fut.set_running_or_notify_cancel():
                continue
            try:
                fut.set_result(fn(*args))
            except BaseException as exc:
                fut.set_exception(exc)
        self._local.clear()

    def call(self, fn: Callable[..., Any], *args: Any, timeout: float = 20) -> Any:
        if not self._thread.is_alive():
            raise LabError(f"worker for {self.netns} is gone")
        fut: concurrent.futures.Future[Any] = concurrent.futures.Future()
        self._q.put((fn, args, fut))
        return fut.result(timeout)

    # -- nft inside this namespace (libnftables in-process when available) --
    def nft_json(self, command: str) -> dict[str, Any]:
        return dict(self.call(self._nft_json_here, command))

    def nft_cmd(self, command: str) -> None:
        self.call(self._nft_json_here, command, False)

    def _nft_json_here(self, command: str, parse: bool = True) -> dict[str, Any]:
        ctx: Any = self._local.get("nft")
        if ctx is None:
            try:
                import nftables  # type: ignore[import-untyped]

                ctx = nftables.Nftables()
                ctx.set_json_output(True)
            except Exception:
                ctx = False
            self._local["nft"] = ctx
        if ctx:
            rc, out, err = ctx.cmd(command)
            if rc != 0:
                raise LabError(f"nft {command!r} in {self.netns}: {err.strip()}")
        else:  # subprocess fallback; a forked child inherits this thread's namespace
            out = _run(["nft", "-j", "-f", "-"], input=command).stdout
        if not parse or not out.strip():
            return {"nftables": []}
        return dict(json.loads(out))

    def stop(self) -> None:
        if self._thread.is_alive():
            self._q.put(None)
            self._thread.join(5)


# --- packet building -----------------------------------------------------------------------------


def _csum(data: bytes) -> int:
    if len(data) % 2:
        data += b"\0"
    s: int = sum(struct.unpack(f"!{len(data) // 2}H", data))
    while s >> 16:
        s = (s & 0xFFFF) + (s >> 16)
    return (~s) & 0xFFFF


def _mac_bytes(mac: str) -> bytes:
    return bytes(int(x, 16) for x in mac.split(":"))


def build_dhcp_discover(mac: str, xid: int) -> bytes:
    """An Ethernet frame: DHCPDISCOVER 0.0.0.0:68 -> 255.255.255.255:67, broadcast flag set."""
    chaddr = _mac_bytes(mac)
    options = (
        b"\x63\x82\x53\x63"  # magic cookie
        + b"\x35\x01\x01"  # DHCP message type: DISCOVER
        + b"\x3d\x07\x01"
        + chaddr  # client identifier (htype 1 + MAC)
        + b"\x37\x03\x01\x03\x06"  # parameter request list: mask, router, DNS
        + b"\xff"
    )
    bootp = (
        struct.pack(
            "!BBBBIHH4s4s4s4s16s64s128s",
            1,  # op BOOTREQUEST
            1,  # htype ethernet
            6,  # hlen
            0,  # hops
            xid,
            0,  # secs
            0x8000,  # flags: broadcast
            b"\0" * 4,
            b"\0" * 4,
            b"\0" * 4,
            b"\0" * 4,
            chaddr + b"\0" * 10,
            b"\0" * 64,
            b"\0" * 128,
        )
        + options
    )
    bootp += b"\0" * max(0, 300 - len(bootp))
    src, dst = socket.inet_aton("0.0.0.0"), socket.inet_aton("255.255.255.255")
    udp_len = 8 + len(bootp)
    pseudo = src + dst + struct.pack("!BBH", 0, socket.IPPROTO_UDP, udp_len)
    udp_nocsum = struct.pack("!HHHH", 68, 67, udp_len, 0) + bootp
    ucs = _csum(pseudo + udp_nocsum) or 0xFFFF
    udp = struct.pack("!HHHH", 68, 67, udp_len, ucs) + bootp
    ip_nocsum = struct.pack(
        "!BBHHHBBH4s4s",
        0x45,
        0x10,
        20 + len(udp),
        _RNG.randrange(1 << 16),
        0,
        64,
        socket.IPPROTO_UDP,
        0,
        src,
        dst,
    )
    ip = ip_nocsum[:10] + struct.pack("!H", _csum(ip_nocsum)) + ip_nocsum[12:]
    eth = b"\xff" * 6 + chaddr + struct.pack("!H", 0x0800)
    return eth + ip + udp


def build_dhcp6_solicit(mac: str, xid: int) -> bytes:
    duid = struct.pack("!HH", 3, 1) + _mac_bytes(mac)  # DUID-LL
    opts = struct.pack("!HH", 1, len(duid)) + duid  # CLIENTID
    opts += struct.pack("!HHH", 8, 2, 0)  # ELAPSED_TIME
    opts += struct.pack("!HHIII", 3, 12, int.from_bytes(_mac_bytes(mac)[2:], "big"), 0, 0)  # IA_NA
    opts += struct.pack("!HHH", 6, 2, 23)  # ORO: DNS servers
    return bytes([1]) + xid.to_bytes(3, "big") + opts


def build_dns_query(name: str, qtype: int, qid: int) -> bytes:
    q = b"".join(bytes([len(p)]) + p.encode() for p in name.split(".")) + b"\0"
    return struct.pack("!HHHHHH", qid, 0x0100, 1, 0, 0, 0) + q + struct.pack("!HH", qtype, 1)


# --- probe plumbing ------------------------------------------------------------------------------


def build_arp_request(mac: str, sender: str, target: str) -> bytes:
    """An Ethernet broadcast ARP request: who has `target`? tell `sender` (at `mac`)."""
    own = bytes.fromhex(mac.replace(":", ""))
    arp = struct.pack("!HHBBH", 1, 0x0800, 6, 4, 1) + own + socket.inet_aton(sender)
    arp += bytes(6) + socket.inet_aton(target)
    return b"\xff" * 6 + own + struct.pack("!H", 0x0806) + arp


def _arp_exchange(mac: str, timeout: float) -> bool:
    """Runs in the phone's namespace: send an ARP request for the host's address from a MAC
    the host has never seen, and wait for the reply (the host's input and output both passed)."""
    s = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(0x0806))
    try:
        s.bind((PHONE_IF, 0))
        s.settimeout(0.02)
        s.send(build_arp_request(mac, PHONE_V4, HOST_HS_V4))
        own = bytes.fromhex(mac.replace(":", ""))
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                frame = s.recv(2048)
            except TimeoutError:
                continue
            # an ARP reply (operation 2) sent to our MAC
            if len(frame) >= 42 and frame[0:6] == own and frame[20:22] == b"\x00\x02":
                return True
        return False
    finally:
        s.close()


def build_nd(icmp_type: int, token: bytes, target: str | None = None) -> bytes:
    """An ICMPv6 router/neighbour discovery message (checksum filled in by the kernel) that
    ends with an option of an experimental type carrying `token` (6 bytes): receivers ignore
    it, the observer recognises its own probe by it."""
    if icmp_type == ND_RA:  # cur hop limit 64, no flags, router lifetime 0: not a default router
        body = struct.pack("!BBHII", 64, 0, 0, 0, 0)
    elif icmp_type == ND_RS:
        body = bytes(4)
    else:
        flags = 0x60000000 if icmp_type == ND_NA else 0  # solicited, override
        body = struct.pack("!I", flags) + ipaddress.IPv6Address(target or "::").packed
    option = bytes([ND_TOKEN_OPTION, 1]) + token
    return struct.pack("!BBH", icmp_type, 0, 0) + body + option


def nd_token(data: bytes) -> bytes | None:
    """The probe token of a received discovery message, None if it has none."""
    if len(data) >= 16 and data[-8] == ND_TOKEN_OPTION and data[-7] == 1:
        return data[-6:]
    return None


_ND_SOCKS: dict[int, socket.socket] = {}


def _nd_socket(iface: str) -> socket.socket:
    """This namespace's raw ICMPv6 socket on `iface` (hop limit 255, no multicast loop),
    kept open; non-blocking.  Called in the namespace's worker."""
    key = threading.get_ident()
    s = _ND_SOCKS.get(key)
    if s is None:
        s = socket.socket(socket.AF_INET6, socket.SOCK_RAW, socket.IPPROTO_ICMPV6)
        s.setsockopt(socket.SOL_SOCKET, socket.SO_BINDTODEVICE, iface.encode())
        s.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_UNICAST_HOPS, 255)
        s.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_MULTICAST_HOPS, 255)
        s.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_MULTICAST_LOOP, 0)
        s.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_MULTICAST_IF, socket.if_nametoindex(iface))
        s.setblocking(False)
        _ND_SOCKS[key] = s
    return s


def _close_nd_socket() -> None:
    s = _ND_SOCKS.pop(threading.get_ident(), None)
    if s is not None:
        s.close()


# who sends each discovery flow (from which address to which), the receiver is the other side
_ND_PLAN: dict[str, tuple[str, int, str, str, str | None]] = {
    # flow: (sender, type, source, destination, target)
    "rs6": ("phone", ND_RS, PHONE_LL, "ff02::2", None),
    "ns6_in": ("phone", ND_NS, PHONE_LL, solicited_node(HOST_HS_LL), HOST_HS_LL),
    "na6_in": ("phone", ND_NA, PHONE_V6, HOST_HS_V6, PHONE_V6),
    "ra6": ("host", ND_RA, HOST_HS_LL, "ff02::1", None),
    "na6_out": ("host", ND_NA, HOST_HS_LL, PHONE_LL, HOST_HS_LL),
    "ns6_out": ("host", ND_NS, HOST_HS_V6, solicited_node(PHONE_V6), PHONE_V6),
}


def _nd_drain(iface: str) -> socket.socket:
    """Runs in a namespace's worker: its discovery socket, emptied of earlier packets."""
    s = _nd_socket(iface)
    with contextlib.suppress(BlockingIOError):
        while True:
            s.recv(2048)
    return s


def _nd_send(iface: str, sender: str, tokens: dict[str, bytes]) -> None:
    """Runs in `sender`'s namespace: send its discovery probes."""
    s = _nd_socket(iface)
    index = socket.if_nametoindex(iface)
    for flow, token in tokens.items():
        who, icmp_type, source, destination, target = _ND_PLAN[flow]
        if who != sender:
            continue
        pktinfo = struct.pack("16sI", ipaddress.IPv6Address(source).packed, index)
        # EPERM: a rule on the sender's output path dropped it (the receiver never sees it)
        with contextlib.suppress(PermissionError):
            s.sendmsg(
                [build_nd(icmp_type, token, target)],
                [(socket.IPPROTO_IPV6, socket.IPV6_PKTINFO, pktinfo)],
                0,
                (destination, 0, 0, index),
            )


def _nd_received(s: socket.socket) -> set[tuple[int, bytes]]:
    """(ICMPv6 type, token) of the probes waiting in `s` (an ICMPv6 error quoting a probe,
    such as a `reject`'s, ends with the token too, but its type differs)."""
    seen: set[tuple[int, bytes]] = set()
    with contextlib.suppress(BlockingIOError, OSError):
        while True:
            data = s.recv(2048)
            token = nd_token(data)
            if token is not None:
                seen.add((data[0], token))
    return seen


@dataclass
class _Plan:
    token: str
    mac: str
    xid: int
    dns_port: int
    dns6_port: int
    tcp_port: int
    tcp6_port: int

    @property
    def name4(self) -> str:
        return f"a{self.token}.{PROBE_DOMAIN}"

    @property
    def name6(self) -> str:
        return f"b{self.token}.{PROBE_DOMAIN}"


_RNG = random.SystemRandom()  # independent of any seeding of the global `random` by tests


def _elements(doc: dict[str, Any]) -> list[Any]:
    out: list[Any] = []
    for item in doc.get("nftables", []):
        s = item.get("set")
        if s:
            for e in s.get("elem", []) or []:
                if isinstance(e, dict) and "elem" in e:
                    e = e["elem"]["val"]
                if isinstance(e, dict) and "concat" in e:
                    e = tuple(e["concat"])
                out.append(e)
    return out


INET_OBSERVER = f"""
table inet hglab {{
    set syn4 {{ type ipv4_addr . inet_service; flags dynamic,timeout; timeout 2m; }}
    set syn6 {{ type ipv6_addr . inet_service; flags dynamic,timeout; timeout 2m; }}
    chain pre {{
        type filter hook prerouting priority -450; policy accept;
        iifname "{INET_IF}" ip daddr {SERVER_V4} tcp dport {SERVER_PORT} tcp flags & (syn | ack) == syn counter update @syn4 {{ ip saddr . tcp sport }}
        iifname "{INET_IF}" ip6 daddr {SERVER_V6} tcp dport {SERVER_PORT} tcp flags & (syn | ack) == syn counter update @syn6 {{ ip6 saddr . tcp sport }}
    }}
}}
"""  # noqa: E501

PHONE_OBSERVER = f"""
table inet hglab {{
    set synack4 {{ type inet_service; flags dynamic,timeout; timeout 2m; }}
    set synack6 {{ type inet_service; flags dynamic,timeout; timeout 2m; }}
    chain pre {{
        type filter hook prerouting priority -450; policy accept;
        iifname "{PHONE_IF}" ip saddr {SERVER_V4} tcp sport {SERVER_PORT} tcp flags & (syn | ack) == syn | ack counter update @synack4 {{ tcp dport }}
        iifname "{PHONE_IF}" ip6 saddr {SERVER_V6} tcp sport {SERVER_PORT} tcp flags & (syn | ack) == syn | ack counter update @synack6 {{ tcp dport }}
    }}
}}
"""  # noqa: E501


_RAW: dict[int, socket.socket] = {}


def _raw_socket() -> socket.socket:
    """The phone's AF_PACKET socket, kept open (closing one costs ~20 ms: synchronize_net).

    Protocol 0: it only sends, it never queues received frames.  Called in the phone worker.
    """
    key = threading.get_ident()
    s = _RAW.get(key)
    if s is None:
        s = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, 0)
        s.bind((PHONE_IF, 0))
        _RAW[key] = s
    return s


def _close_raw_socket() -> None:
    s = _RAW.pop(threading.get_ident(), None)
    if s is not None:
        s.close()


def _phone_send(plan: _Plan, flows: frozenset[str]) -> dict[str, socket.socket]:
    """Runs in the phone namespace: create the sockets and send every packet."""
    socks: dict[str, socket.socket] = {}
    try:
        if "dhcp" in flows:
            _raw_socket().send(build_dhcp_discover(plan.mac, plan.xid))
        if "dhcp6" in flows:
            s = socket.socket(socket.AF_INET6, socket.SOCK_DGRAM)
            socks["dhcp6"] = s
            s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            idx = socket.if_nametoindex(PHONE_IF)
            s.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_MULTICAST_IF, idx)
            s.bind((PHONE_LL, 546, 0, idx))
            s.sendto(build_dhcp6_solicit(plan.mac, plan.xid & 0xFFFFFF), (DHCP6_MCAST, 547, 0, idx))
        for flow, fam, src, dst, port, name, qtype in (
            ("dns", socket.AF_INET, PHONE_V4, HOST_HS_V4, plan.dns_port, plan.name4, 1),
            ("dns6", socket.AF_INET6, PHONE_V6, HOST_HS_V6, plan.dns6_port, plan.name6, 28),
        ):
            if flow in flows:
                s = socket.socket(fam, socket.SOCK_DGRAM)
                socks[flow] = s
                s.bind((src, port))
                s.sendto(build_dns_query(name, qtype, plan.xid & 0xFFFF), (dst, 53))
        for flow, fam, src, dst, port in (
            ("outbound", socket.AF_INET, PHONE_V4, SERVER_V4, plan.tcp_port),
            ("outbound6", socket.AF_INET6, PHONE_V6, SERVER_V6, plan.tcp6_port),
        ):
            if flow in flows:
                s = socket.socket(fam, socket.SOCK_STREAM)
                socks[flow] = s
                s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
                s.bind((src, port))
                s.setblocking(False)
                err = s.connect_ex((dst, SERVER_PORT))
                if err not in (0, 115):  # EINPROGRESS
                    raise OSError(err, f"connect {dst}: {os.strerror(err)}")
    except BaseException:
        for s in socks.values():
            s.close()
        raise
    return socks


class _Server:
    """TCP listeners in the inet namespace that accept and drop connections."""

    def __init__(self, worker: _NetnsWorker) -> None:
        self._socks: list[socket.socket] = worker.call(self._make)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="hglab-server", daemon=True)
        self._thread.start()

    @staticmethod
    def _make() -> list[socket.socket]:
        out = []
        for fam, addr in ((socket.AF_INET, SERVER_V4), (socket.AF_INET6, SERVER_V6)):
            s = socket.socket(fam, socket.SOCK_STREAM)
            s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            s.bind((addr, SERVER_PORT))
            s.listen(512)
            s.setblocking(False)
            out.append(s)
        return out

    def _loop(self) -> None:
        while not self._stop.is_set():
            try:
                r, _, _ = select.select(self._socks, [], [], 0.2)
            except (OSError, ValueError):
                return
            for s in r:
                with contextlib.suppress(OSError):
                    c, _ = s.accept()
                    c.close()

    def close(self) -> None:
        self._stop.set()
        self._thread.join(2)
        for s in self._socks:
            s.close()


# --- the lab -------------------------------------------------------------------------------------


def _venv_python() -> str:
    env = os.environ.get("HOTSPOTGUARD_PYTHON")
    if env:
        return env
    repo_py = Path(__file__).resolve().parent.parent / ".venv" / "bin" / "python"
    return str(repo_py) if repo_py.exists() else sys.executable


class Lab:
    """A phone/host/inet namespace trio with a real dnsmasq.  Build with :func:`lab_session`."""

    prefix: str
    phone: str
    host: str
    inet: str

    def __init__(self, prefix: str | None = None) -> None:
        self.prefix = prefix or f"hg{os.getpid()}{secrets.token_hex(2)}"
        self.phone, self.host, self.inet = (f"{self.prefix}-{r}" for r in ("phone", "host", "inet"))
        self.tmpdir = Path(tempfile.mkdtemp(prefix=f"{self.prefix}-"))
        self.dnsmasq_log = self.tmpdir / "dnsmasq.log"
        self.probe_times: list[float] = []
        self.last_probe_seconds: float | None = None
        # seconds after sending at which each flow was seen delivered (-1: never)
        self.last_probe_detail: dict[str, float] = {}
        self.setup_seconds: float | None = None
        self._created: list[str] = []
        self._workers: dict[str, _NetnsWorker] = {}
        self._server: _Server | None = None
        self._dnsmasq: subprocess.Popen[bytes] | None = None
        self._saved_sysctls: dict[str, str] = {}
        self._closed = False
        self._lock = threading.Lock()
        atexit.register(self.close)
        t0 = time.monotonic()
        try:
            self._build()
        except BaseException:
            self.close()
            raise
        self.setup_seconds = time.monotonic() - t0

    # -- construction --
    def _ns_exec(self, ns: str, argv: list[str], **kw: Any) -> subprocess.CompletedProcess[str]:
        return _run(["ip", "netns", "exec", ns, *argv], **kw)

    def _ip_batch(self, ns: str, lines: list[str]) -> None:
        _run(["ip", "-n", ns, "-batch", "-"], input="\n".join(lines) + "\n")

    def _build(self) -> None:
        for ns in (self.phone, self.host, self.inet):
            _run(["ip", "netns", "add", ns])
            self._created.append(ns)
            # per-namespace sysctls only (never the root namespace)
            self._ns_exec(
                ns,
                [
                    "sysctl",
                    "-q",
                    "-w",
                    "net.ipv6.conf.all.accept_dad=0",
                    "net.ipv6.conf.default.accept_dad=0",
                    "net.ipv4.conf.all.rp_filter=0",
                    "net.ipv4.conf.default.rp_filter=0",
                    "net.ipv6.conf.default.accept_ra=0",
                    "net.ipv6.conf.all.accept_ra=0",
                ],
            )
        # links are created from inside the lab namespaces: the root namespace never sees them
        self._ip_batch(
            self.host,
            [
                f"link add {HOST_HS_IF} address {MAC[HOST_HS_IF]} type veth peer name {PHONE_IF}"
                f" address {MAC[PHONE_IF]} netns {self.phone}",
                f"link add {HOST_UP_IF} address {MAC[HOST_UP_IF]} type veth peer name {INET_IF}"
                f" address {MAC[INET_IF]} netns {self.inet}",
                f"link add {SPARE_IFS[0]} type veth peer name {SPARE_IFS[1]}",
                "link set lo up",
                f"link set {HOST_HS_IF} up",
                f"link set {HOST_UP_IF} up",
                f"link set {SPARE_IFS[0]} up",
                f"link set {SPARE_IFS[1]} up",
                f"addr add {HOST_HS_V4}/24 dev {HOST_HS_IF}",
                f"addr add {HOST_HS_V6}/64 dev {HOST_HS_IF} nodad",
                f"addr add {UPLINK_V4}/24 dev {HOST_UP_IF}",
                f"addr add {UPLINK_V6}/64 dev {HOST_UP_IF} nodad",
                f"route add default via {INET_V4} dev {HOST_UP_IF}",
                f"route add default via {INET_V6} dev {HOST_UP_IF}",
                f"neigh replace {PHONE_V4} lladdr {MAC[PHONE_IF]} dev {HOST_HS_IF} nud permanent",
                f"neigh replace {PHONE_V6} lladdr {MAC[PHONE_IF]} dev {HOST_HS_IF} nud permanent",
                f"neigh replace {PHONE_LL} lladdr {MAC[PHONE_IF]} dev {HOST_HS_IF} nud permanent",
                f"neigh replace {INET_V4} lladdr {MAC[INET_IF]} dev {HOST_UP_IF} nud permanent",
                f"neigh replace {INET_V6} lladdr {MAC[INET_IF]} dev {HOST_UP_IF} nud permanent",
            ],
        )
        self._ip_batch(
            self.phone,
            [
                "link set lo up",
                f"link set {PHONE_IF} up",
                f"addr add {PHONE_V4}/24 dev {PHONE_IF}",
                f"addr add {PHONE_V6}/64 dev {PHONE_IF} nodad",
                f"addr add {PHONE_LL}/64 dev {PHONE_IF} nodad",
                f"route add default via {HOST_HS_V4} dev {PHONE_IF}",
                f"route add default via {HOST_HS_V6} dev {PHONE_IF}",
                f"neigh replace {HOST_HS_V4} lladdr {MAC[HOST_HS_IF]} dev {PHONE_IF} nud permanent",
                f"neigh replace {HOST_HS_V6} lladdr {MAC[HOST_HS_IF]} dev {PHONE_IF} nud permanent",
            ],
        )
        self._ip_batch(
            self.inet,
            [
                "link set lo up",
                f"link set {INET_IF} up",
                f"addr add {INET_V4}/24 dev {INET_IF}",
                f"addr add {INET_V6}/64 dev {INET_IF} nodad",
                f"addr add {SERVER_V4}/32 dev lo",
                f"addr add {SERVER_V6}/128 dev lo nodad",
                f"route add {HOTSPOT_NET_V4} via {UPLINK_V4} dev {INET_IF}",
                f"route add {HOTSPOT_NET_V6} via {UPLINK_V6} dev {INET_IF}",
                f"neigh replace {UPLINK_V4} lladdr {MAC[HOST_UP_IF]} dev {INET_IF} nud permanent",
                f"neigh replace {UPLINK_V6} lladdr {MAC[HOST_UP_IF]} dev {INET_IF} nud permanent",
            ],
        )
        # the inet server never retransmits SYN-ACKs: no stale SYN-ACK can reach a later probe
        self._ns_exec(self.inet, ["sysctl", "-q", "-w", "net.ipv4.tcp_synack_retries=0"])
        self._ns_exec(self.inet, ["nft", "-f", "-"], input=INET_OBSERVER)
        self._ns_exec(self.phone, ["nft", "-f", "-"], input=PHONE_OBSERVER)
        self._set_forwarding()
        self._workers = {ns: _NetnsWorker(ns) for ns in (self.phone, self.inet, self.host)}
        self._server = _Server(self._workers[self.inet])
        self._start_dnsmasq()
        self._self_test()

    def _set_forwarding(self) -> None:
        self.host_run(
            [
                "sysctl",
                "-q",
                "-w",
                "net.ipv4.ip_forward=1",
                "net.ipv6.conf.all.forwarding=1",
            ]
        )

    def _start_dnsmasq(self) -> None:
        argv = [
            "ip",
            "netns",
            "exec",
            self.host,
            _which("dnsmasq") or "dnsmasq",
            "--keep-in-foreground",
            "--conf-file=/dev/null",
            "--no-hosts",
            "--no-resolv",
            "--bind-interfaces",
            f"--interface={HOST_HS_IF}",
            "--except-interface=lo",
            f"--address=/{PROBE_DOMAIN}/{SERVER_V4}",
            f"--address=/{PROBE_DOMAIN}/{SERVER_V6}",
            "--dhcp-range=10.42.0.100,10.42.0.200,60m",
            "--dhcp-range=2001:db8:42::100,2001:db8:42::200,64,60m",
            "--dhcp-authoritative",
            "--no-ping",
            "--log-dhcp",
            "--log-queries",
            f"--log-facility={self.dnsmasq_log}",
            f"--pid-file={self.tmpdir / 'dnsmasq.pid'}",
            f"--dhcp-leasefile={self.tmpdir / 'dnsmasq.leases'}",
            "--user=root",
            "--group=root",
        ]
        with open(self.tmpdir / "dnsmasq.stderr", "wb") as err_file:
            self._dnsmasq = subprocess.Popen(
                argv,
                stdin=subprocess.DEVNULL,
                stdout=subprocess.DEVNULL,
                stderr=err_file,
                env=_ENV,
                start_new_session=True,
            )
        deadline = time.monotonic() + 10
        while not (self.tmpdir / "dnsmasq.pid").exists():
            if self._dnsmasq.poll() is not None or time.monotonic() > deadline:
                err = (self.tmpdir / "dnsmasq.stderr").read_text(errors="replace")
                raise LabError(f"dnsmasq did not start: {err}")
            time.sleep(0.01)

    def _self_test(self) -> None:
        """The pristine lab must deliver every flow (and not masquerade)."""
        want = {f: KernelFlow(True, False if f.startswith("outbound") else None) for f in ALL_FLOWS}
        got: dict[str, KernelFlow] = {}
        for _ in range(20):
            got = self.probe()
            if got == want:
                self.probe_times.clear()
                return
            time.sleep(0.05)
        raise LabError(f"lab self-test failed: {format_outcome(got)}\n{self._dnsmasq_tail()}")

    # -- public API --
    def host_run(
        self, argv: list[str], input: str | None = None, check: bool = True
    ) -> subprocess.CompletedProcess[str]:
        """Run argv inside the host network namespace."""
        return self._ns_exec(self.host, list(argv), input=input, check=check)

    def load_nft(self, text: str) -> None:
        self.host_run(["nft", "-f", "-"], input=text)

    def load_iptables(self, save_text: str, *, ipv6: bool = False, legacy: bool = False) -> None:
        tool = f"{'ip6' if ipv6 else 'ip'}tables-{'legacy' if legacy else 'nft'}-restore"
        self.host_run([tool, "--noflush"], input=save_text)

    def sysctl(self, key: str, value: str) -> None:
        """Set a sysctl in the host namespace; reset() restores the value it had before."""
        if key not in self._saved_sysctls:
            self._saved_sysctls[key] = self.host_run(["sysctl", "-n", key]).stdout.strip()
        self.host_run(["sysctl", "-q", "-w", f"{key}={value}"])

    def reset(self) -> None:
        """Back to a clean host: no rules, no conntrack state, forwarding on."""
        # forwarding keys are not restored from saved values: writing ip_forward propagates to
        # every interface, so a value saved after it would be wrong; the script forces the
        # baseline (1 everywhere) instead
        restore = [
            f"{k}={v}"
            for k, v in self._saved_sysctls.items()
            if not k.endswith("forwarding") and k != "net.ipv4.ip_forward"
        ]
        self._saved_sysctls.clear()
        script = _RESET_SCRIPT.replace("@RESTORE@", " ".join(restore))
        self.host_run(["sh", "-ec", script])

    def snapshot(self, iface: str = HOST_HS_IF) -> dict[str, Any]:
        """`hotspotguard snapshot --iface IFACE` run inside the host namespace (parsed JSON)."""
        proc = self.host_run([_venv_python(), "-m", "hotspotguard", "snapshot", "--iface", iface])
        return dict(json.loads(proc.stdout))

    def ruleset(self) -> str:
        """The host's `nft list ruleset` (handy in failure messages)."""
        return self.host_run(["nft", "list", "ruleset"], check=False).stdout

    def host_pids(self) -> list[int]:
        out = _run(["ip", "netns", "pids", self.host], check=False).stdout
        return [int(p) for p in out.split()]

    def probe(
        self, flows: Iterable[str] = ALL_FLOWS, timeout: float = PROBE_TIMEOUT
    ) -> dict[str, KernelFlow]:
        """Send every requested flow at once and report what the kernel did with each."""
        flows = tuple(flows)
        bad = [f for f in flows if f not in ALL_FLOWS]
        if bad:
            raise ValueError(f"unknown flows: {bad}")
        with self._lock:
            return self._probe(flows, timeout)

    def _probe(self, flows: tuple[str, ...], timeout: float) -> dict[str, KernelFlow]:
        t0 = time.monotonic()
        send = set(flows)
        if "reply" in send:
            send.add("outbound")
        if "reply6" in send:
            send.add("outbound6")
        token = secrets.token_hex(5)
        mac = "02:" + ":".join(f"{b:02x}" for b in secrets.token_bytes(5))
        ports = _RNG.sample(range(20000, 61000), 4)
        plan = _Plan(token, mac, _RNG.getrandbits(32), *ports)
        log_pos = self.dnsmasq_log.stat().st_size if self.dnsmasq_log.exists() else 0
        phone, inet = self._workers[self.phone], self._workers[self.inet]

        tcp = {
            "outbound": ("syn4", "synack4", plan.tcp_port, PHONE_V4, "reply"),
            "outbound6": ("syn6", "synack6", plan.tcp6_port, PHONE_V6, "reply6"),
        }
        if send & set(tcp):
            # empty the observation sets: an element left by an earlier probe that happened to
            # use the same port would otherwise read as this probe's SYN / SYN-ACK
            inet.nft_cmd("flush set inet hglab syn4\nflush set inet hglab syn6")
            phone.nft_cmd("flush set inet hglab synack4\nflush set inet hglab synack6")
        socks: dict[str, socket.socket] = phone.call(_phone_send, plan, frozenset(send))
        nd_tokens = {f: secrets.token_bytes(6) for f in DISCOVERY_FLOWS if f in send}
        nd_socks: dict[str, socket.socket] = {}
        if nd_tokens:
            # each side's socket receives what the other side sends
            host = self._workers[self.host]
            nd_socks["host"] = host.call(_nd_drain, HOST_HS_IF)
            nd_socks["phone"] = phone.call(_nd_drain, PHONE_IF)
            host.call(_nd_send, HOST_HS_IF, "host", nd_tokens)
            phone.call(_nd_send, PHONE_IF, "phone", nd_tokens)
        nd_seen: dict[str, set[tuple[int, bytes]]] = {"host": set(), "phone": set()}
        t_sent = time.monotonic()
        log_patterns = {
            "dhcp": f"DHCPDISCOVER({HOST_HS_IF}) {mac}",
            "dns": f"query[A] {plan.name4} from {PHONE_V4}",
            "dhcp6": f"DHCPSOLICIT({HOST_HS_IF})",
            "dns6": f"query[AAAA] {plan.name6} from {PHONE_V6}",
        }
        dhcp6_tag = f"00:03:00:01:{mac}"
        result: dict[str, KernelFlow] = {}
        decided_at: dict[str, float] = {}
        tcp_state: dict[str, dict[str, Any]] = {
            f: {"seen": None, "synack": False, "connected": False, "failed": None}
            for f in tcp
            if f in send
        }
        try:
            deadline = t_sent + timeout
            hard_deadline = deadline + 2.0
            while True:
                now = time.monotonic()
                final = now >= deadline
                if (
                    final
                    and now < hard_deadline
                    and any(f in send and f not in result for f in log_patterns)
                    and self._dnsmasq_backlog()
                ):
                    # a datagram sits in dnsmasq's socket but is not logged yet (busy machine):
                    # it was delivered; wait for the log line instead of calling it a drop
                    final = False
                    deadline = now + 0.05
                # dnsmasq's log: DHCP and DNS
                if any(f in send and f not in result for f in log_patterns):
                    text = self._read_log(log_pos)
                    for f, pat in log_patterns.items():
                        if f in send and f not in result:
                            hit = pat in text
                            if f == "dhcp6":
                                hit = any(
                                    pat in line and (dhcp6_tag in line or mac in line)
                                    for line in text.splitlines()
                                )
                            if hit:
                                result[f] = KernelFlow(True)
                                decided_at[f] = now - t_sent
                            elif final:
                                result[f] = KernelFlow(False)
                # router/neighbour discovery: the receiving side's raw socket saw the token
                if any(f not in result for f in nd_tokens):
                    for side, nd_sock in nd_socks.items():
                        nd_seen[side] |= _nd_received(nd_sock)
                    for f, token in nd_tokens.items():
                        if f in result:
                            continue
                        sender, icmp_type = _ND_PLAN[f][:2]
                        receiver = "phone" if sender == "host" else "host"
                        if (icmp_type, token) in nd_seen[receiver]:
                            result[f] = KernelFlow(True)
                            decided_at[f] = now - t_sent
                        elif final:
                            result[f] = KernelFlow(False)
                # TCP: SYN seen in inet, SYN-ACK seen in phone, connect() outcome
                for f, st in tcp_state.items():
                    setname, synack_set, port, client, reply_flow = tcp[f]
                    s = socks[f]
                    if not st["connected"] and st["failed"] is None:
                        _, w, _ = select.select([], [s], [], 0)
                        if w:
                            err = s.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR)
                            if err == 0:
                                st["connected"] = True
                            else:
                                st["failed"] = err
                    settle = final or st["failed"] is not None or st["connected"]
                    was = (st["seen"], st["synack"])
                    if st["seen"] is None:
                        elems = _elements(inet.nft_json(f"list set inet hglab {setname}"))
                        # the set was flushed before sending: any element is this probe's SYN
                        # (preferably the one with our port; NAT may rewrite the port)
                        mine = [e for e in elems if e[1] == port] or elems
                        if mine:
                            st["seen"] = mine[0][0]
                    if st["seen"] is not None and not st["synack"]:
                        if st["connected"]:
                            st["synack"] = True
                        else:
                            ports_seen = _elements(
                                phone.nft_json(f"list set inet hglab {synack_set}")
                            )
                            st["synack"] = port in ports_seen
                    if was[0] is None and st["seen"] is not None:
                        decided_at[f] = now - t_sent
                    if not was[1] and st["synack"]:
                        decided_at[reply_flow] = now - t_sent
                    st["done"] = (st["seen"] is not None and st["synack"]) or (
                        settle and (st["failed"] is not None or final)
                    )
                if (
                    all(f in result for f in log_patterns if f in send)
                    and all(f in result for f in nd_tokens)
                    and all(st.get("done") for st in tcp_state.values())
                ):
                    break
                if final:
                    break
                time.sleep(_POLL)
        finally:
            for s in socks.values():
                s.close()
        for f, st in tcp_state.items():
            reply_flow = tcp[f][4]
            client = tcp[f][3]
            if st["seen"] is None:
                result[f] = KernelFlow(False, None)
                result[reply_flow] = KernelFlow(None)
            else:
                result[f] = KernelFlow(True, st["seen"] != client, seen_source=st["seen"])
                result[reply_flow] = KernelFlow(bool(st["synack"]))
        self.last_probe_detail = {f: round(decided_at.get(f, -1.0), 4) for f in flows}
        self.last_probe_seconds = time.monotonic() - t0
        self.probe_times.append(self.last_probe_seconds)
        return {f: result[f] for f in flows}

    def probe_arp(self, timeout: float = PROBE_TIMEOUT) -> bool:
        """Whether the host answers the phone's ARP request for its hotspot address (the
        request crossed the host's arp input hook, the reply its arp output hook). The static
        neighbour entries of the lab are not involved: the request comes from a fresh MAC."""
        mac = "02:" + ":".join(f"{b:02x}" for b in secrets.token_bytes(5))
        with self._lock:
            return bool(self._workers[self.phone].call(_arp_exchange, mac, timeout))

    def _dnsmasq_backlog(self) -> bool:
        """True if one of dnsmasq's DNS/DHCP sockets has unread datagrams."""
        if self._dnsmasq is None:
            return False
        for name in ("udp", "udp6"):
            try:
                lines = Path(f"/proc/{self._dnsmasq.pid}/net/{name}").read_text().splitlines()[1:]
            except OSError:
                continue
            for line in lines:
                cols = line.split()
                port = int(cols[1].rsplit(":", 1)[1], 16)
                rxq = int(cols[4].split(":")[1], 16)
                if port in (53, 67, 547) and rxq:
                    return True
        return False

    def _read_log(self, pos: int) -> str:
        try:
            with open(self.dnsmasq_log, "rb") as fh:
                fh.seek(pos)
                return fh.read().decode(errors="replace")
        except FileNotFoundError:
            return ""

    def _dnsmasq_tail(self, n: int = 30) -> str:
        lines = self._read_log(0).splitlines()[-n:]
        return "dnsmasq log tail:\n" + "\n".join(lines)

    # -- teardown --
    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        with contextlib.suppress(Exception):
            atexit.unregister(self.close)
        if self._server is not None:
            with contextlib.suppress(Exception):
                self._server.close()
        for w in self._workers.values():
            with contextlib.suppress(Exception):
                w.call(_close_raw_socket)
            with contextlib.suppress(Exception):
                w.call(_close_nd_socket)
            with contextlib.suppress(Exception):
                w.stop()
        self._workers.clear()
        if self._dnsmasq is not None:
            with contextlib.suppress(Exception):
                self._dnsmasq.terminate()
                self._dnsmasq.wait(3)
            with contextlib.suppress(Exception):
                self._dnsmasq.kill()
                self._dnsmasq.wait(3)
        for ns in reversed(self._created):
            _kill_netns_processes(ns)
            _run(["ip", "netns", "del", ns], check=False)
        self._created.clear()
        shutil.rmtree(self.tmpdir, ignore_errors=True)


_RESET_SCRIPT = r"""
nft flush ruleset
reset_legacy() {
  # /proc files have size 0: test the content, not the size
  names=$(cat "$2" 2>/dev/null || true)
  [ -n "$names" ] || return 0
  for t in $names; do
    echo "*$t"
    case $t in
      filter|security) chains="INPUT FORWARD OUTPUT" ;;
      nat) chains="PREROUTING INPUT OUTPUT POSTROUTING" ;;
      mangle) chains="PREROUTING INPUT FORWARD OUTPUT POSTROUTING" ;;
      raw) chains="PREROUTING OUTPUT" ;;
      *) chains="" ;;
    esac
    for c in $chains; do echo ":$c ACCEPT [0:0]"; done
    echo COMMIT
  done | "$1"
}
reset_legacy iptables-legacy-restore /proc/net/ip_tables_names
reset_legacy ip6tables-legacy-restore /proc/net/ip6_tables_names
conntrack -F -f ipv4 2>/dev/null
conntrack -F -f ipv6 2>/dev/null
for kv in @RESTORE@; do sysctl -q -w "$kv"; done
sysctl -q -w net.ipv4.ip_forward=1 net.ipv6.conf.all.forwarding=1
for f in /proc/sys/net/ipv4/conf/*/forwarding /proc/sys/net/ipv6/conf/*/forwarding; do
  [ "$(cat "$f")" = 1 ] || echo 1 > "$f"
done
"""


def _proc_alive(pid: int) -> bool:
    """True if pid exists and is not a zombie (PID 1 here reaps lazily)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except (FileNotFoundError, ProcessLookupError):
        return False
    return stat.rsplit(")", 1)[1].split()[0] not in ("Z", "X")


def _kill_netns_processes(ns: str, match: Callable[[int], bool] | None = None) -> None:
    """Kill the processes living in lab namespace ns (they are all ours)."""
    me = os.getpid()
    for sig in (signal.SIGTERM, signal.SIGKILL):
        out = _run(["ip", "netns", "pids", ns], check=False).stdout
        pids = [int(p) for p in out.split() if int(p) != me and _proc_alive(int(p))]
        if match is not None:
            pids = [p for p in pids if match(p)]
        if not pids:
            return
        for p in pids:
            with contextlib.suppress(ProcessLookupError):
                os.kill(p, sig)
        deadline = time.monotonic() + 3
        while time.monotonic() < deadline and any(_proc_alive(p) for p in pids):
            time.sleep(0.02)


def cleanup_stale_labs(dry_run: bool = False) -> list[str]:
    """Delete lab namespaces whose creating process is gone (opt-in; never automatic)."""
    out = _run(["ip", "netns", "list"], check=False).stdout
    stale = []
    for line in out.splitlines():
        name = line.split()[0] if line.split() else ""
        m = NAME_RE.match(name)
        if m and not _proc_alive(int(m.group(1))):
            stale.append(name)
            if not dry_run:
                _kill_netns_processes(name)
                _run(["ip", "netns", "del", name], check=False)
    return stale


class HolderLab:
    """What the NetworkManager and polkit labs share: a directory of logs and a namespace
    holder process whose death ends every wait."""

    dir: Path
    _holder: subprocess.Popen[bytes] | None
    LOG_NAMES: tuple[str, ...] = ("holder.log",)

    def logs(self) -> str:
        out = []
        for name in self.LOG_NAMES:
            with contextlib.suppress(OSError):
                out.append(f"--- {name}\n" + (self.dir / name).read_text(errors="replace")[-3000:])
        return "\n".join(out)

    def _wait(self, cond: Callable[[], bool], timeout: float, what: str) -> None:
        deadline = time.monotonic() + timeout
        while not cond():
            if time.monotonic() > deadline:
                raise LabError(f"{what} did not come up in {timeout} s\n{self.logs()}")
            if self._holder is not None and self._holder.poll() is not None:
                raise LabError(f"the namespace holder exited\n{self.logs()}")
            time.sleep(0.005)


@contextlib.contextmanager
def lab_session(prefix: str | None = None) -> Iterator[Lab]:
    """Build a lab, yield it, always tear it down."""
    lab = Lab(prefix)
    try:
        yield lab
    finally:
        lab.close()


# --- a real dockerd inside the host namespace ----------------------------------------------------


@dataclass
class DockerDaemon:
    lab: Lab
    dir: Path
    proc: subprocess.Popen[bytes]
    start_seconds: float

    @property
    def log(self) -> str:
        return (self.dir / "log").read_text(errors="replace")

    def docker(self, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        """The docker CLI against this daemon (if installed)."""
        return _run(["docker", "-H", f"unix://{self.dir}/sock", *args], check=check)


def _is_docker_process(pid: int) -> bool:
    try:
        cmd = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()
    except OSError:
        return False
    return "dockerd" in cmd or "containerd" in cmd


@contextlib.contextmanager
def start_dockerd(
    lab: Lab, *, forwarding_off_first: bool = True, timeout: float = 60, netns: str | None = None
) -> Iterator[DockerDaemon]:
    """Run a real dockerd in the lab host's network namespace (per lab-docker.md), or in the
    named namespace `netns` (one the test made).

    With forwarding_off_first (as at boot) net.ipv4.ip_forward is 0 when dockerd starts, so it
    enables forwarding itself and sets the FORWARD policy to DROP.  The rules dockerd writes stay
    after it stops (as in real life); lab.reset() removes them.  docker0 is deleted on exit.
    """
    where = netns or lab.host
    if _which("dockerd") is None:
        raise LabError("dockerd is not installed")
    d = Path(tempfile.mkdtemp(prefix=f"{lab.prefix}-d", dir="/tmp"))
    (d / "daemon.json").write_text(json.dumps({"deprecated-key-path": str(d / "key.json")}))
    if forwarding_off_first and netns is None:
        lab.sysctl("net.ipv4.ip_forward", "0")
    inner = (
        "mount -t tmpfs none /run && mount -t tmpfs none /opt && exec dockerd"
        f" --config-file {d}/daemon.json --data-root {d}/root --exec-root {d}/exec"
        f" --pidfile {d}/pid -H unix://{d}/sock"
    )
    t0 = time.monotonic()
    logf = open(d / "log", "wb")  # noqa: SIM115
    proc = subprocess.Popen(
        [
            "nsenter",
            f"--net=/run/netns/{where}",
            "unshare",
            "-m",
            "--propagation",
            "private",
            "sh",
            "-c",
            inner,
        ],
        stdin=subprocess.DEVNULL,
        stdout=logf,
        stderr=subprocess.STDOUT,
        env=_ENV,
        start_new_session=True,
    )
    logf.close()
    daemon = DockerDaemon(lab, d, proc, 0.0)
    try:
        deadline = time.monotonic() + timeout
        while "API listen" not in daemon.log:
            if proc.poll() is not None or time.monotonic() > deadline:
                raise LabError(f"dockerd did not start:\n{daemon.log[-3000:]}")
            time.sleep(0.02)
        daemon.start_seconds = time.monotonic() - t0
        yield daemon
    finally:
        with contextlib.suppress(Exception):
            proc.terminate()
            proc.wait(15)
        with contextlib.suppress(Exception):
            proc.kill()
            proc.wait(5)
        _kill_netns_processes(where, _is_docker_process)
        _run(["ip", "-n", where, "link", "del", "docker0"], check=False)
        shutil.rmtree(d, ignore_errors=True)
