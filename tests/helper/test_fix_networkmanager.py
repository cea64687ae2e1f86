"""The Docker fix on a real NetworkManager hotspot beside a real dockerd, end to end.

NetworkManager 1.42 shares ``hs0`` in the lab of tests/nmlab.py (its own bus, its own dnsmasq);
the phone leases its address from that dnsmasq; dockerd starts afterwards with forwarding off, as
at boot, so Docker's FORWARD policy drop cuts the phone off.  Every claim is checked with the
phone's own TCP connection to a server on the simulated internet (203.0.113.10:443).

``hotspotguard`` runs as root in the lab host's network namespace with /etc and /var/lib overlaid
(tests/sandbox.py) and finds the hotspot through NetworkManager on the lab's bus
(``DBUS_SYSTEM_BUS_ADDRESS``).  NetworkManager's re-apply path is real too: the lab's bus gets a
service file for nm-dispatcher, so NetworkManager's dispatcher call starts the real nm-dispatcher,
which runs the sandbox's ``90-hotspotguard`` when the hotspot comes up.
"""

from __future__ import annotations

import contextlib
import ipaddress
import json
import os
import secrets
import shlex
import signal
import socket
import struct
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import pytest

from tests.helper.test_fix_docker import (
    DISPATCHER,
    DROPIN,
    HG,
    _exec_start_post,
    normalized_ruleset,
    tagged,
)
from tests.lab import DockerDaemon, _proc_alive, _run, _which, in_netns, start_dockerd
from tests.nmlab import NmLab
from tests.sandbox import RootSandbox

pytestmark = [
    pytest.mark.kernel,
    pytest.mark.docker,
    pytest.mark.skipif(_which("dockerd") is None, reason="dockerd is not installed (docker.io)"),
]

SERVER, SERVER_PORT = "203.0.113.10", 443  # on the internet namespace's loopback
FIXES_JSON = "/var/lib/hotspotguard/fixes.json"
NM_DISPATCHER = ("/usr/libexec/nm-dispatcher", "/usr/lib/NetworkManager/nm-dispatcher")
DISPATCHER_NAME = "org.freedesktop.nm_dispatcher"

T = TypeVar("T")


# --- the lab's namespaces ---------------------------------------------------------------------


def dockerd(
    lab: NmLab, *, forwarding_off_first: bool
) -> contextlib.AbstractContextManager[DockerDaemon]:
    """tests.lab's real dockerd in the NetworkManager lab's host namespace."""
    return start_dockerd(
        lab,  # type: ignore[arg-type]  # the same host/prefix/host_run/sysctl interface
        forwarding_off_first=forwarding_off_first,
    )


def ruleset(lab: NmLab) -> list[Any]:
    """test_fix_docker's normalized `nft -j list ruleset` of the lab host."""
    return normalized_ruleset(lab)  # type: ignore[arg-type]


def tagged_rules(lab: NmLab) -> list[str]:
    """test_fix_docker's `hotspotguard:` tagged iptables rules of the lab host."""
    return tagged(lab)  # type: ignore[arg-type]


# --- a tiny DHCP client: the phone leases its address from NetworkManager's dnsmasq ------------


@dataclass(frozen=True)
class Lease:
    address: ipaddress.IPv4Interface
    router: str
    server: str


def _bootp(message: int, xid: int, mac: bytes, extra: bytes = b"") -> bytes:
    """A BOOTREQUEST with the broadcast flag (the client has no address to be answered at)."""
    head = struct.pack(
        "!BBBBIHH4s4s4s4s16s64s128s", 1, 1, 6, 0, xid, 0, 0x8000,
        bytes(4), bytes(4), bytes(4), bytes(4), mac + bytes(10), bytes(64), bytes(128),
    )  # fmt: skip
    options = b"\x63\x82\x53\x63" + bytes([53, 1, message, 61, 7, 1]) + mac
    return head + options + bytes([55, 3, 1, 3, 54]) + extra + b"\xff"


def _options(packet: bytes) -> dict[int, bytes]:
    found: dict[int, bytes] = {}
    i = 240  # after the fixed BOOTP fields and the magic cookie
    while i + 1 < len(packet) and packet[i] != 255:
        if packet[i] == 0:
            i += 1
            continue
        found[packet[i]] = packet[i + 2 : i + 2 + packet[i + 1]]
        i += 2 + packet[i + 1]
    return found


def _exchange(
    sock: socket.socket, request: bytes, xid: int, want: int, timeout: float
) -> tuple[bytes, dict[int, bytes]]:
    """Broadcast `request` (again each second) until a reply of DHCP message type `want`."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        sock.sendto(request, ("255.255.255.255", 67))
        resend = time.monotonic() + 1.0
        while (left := min(resend, deadline) - time.monotonic()) > 0:
            sock.settimeout(left)
            try:
                packet = sock.recv(4096)
            except TimeoutError:
                break
            if len(packet) < 240 or packet[0] != 2 or packet[4:8] != struct.pack("!I", xid):
                continue
            options = _options(packet)
            if options.get(53) == bytes([want]):
                return packet, options
    raise TimeoutError(f"no DHCP reply of type {want} within {timeout} s")


def dhcp_lease(iface: str, mac: str, timeout: float = 10) -> Lease:
    """DISCOVER, OFFER, REQUEST, ACK on `iface` (call it inside the client's namespace)."""
    chaddr = bytes.fromhex(mac.replace(":", ""))
    xid = secrets.randbits(32)
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM, socket.IPPROTO_UDP) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_BROADCAST, 1)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_BINDTODEVICE, iface.encode())
        sock.bind(("0.0.0.0", 68))
        offer, options = _exchange(sock, _bootp(1, xid, chaddr), xid, 2, timeout)
        server = options[54]
        chosen = bytes([50, 4]) + offer[16:20] + bytes([54, 4]) + server
        ack, options = _exchange(sock, _bootp(3, xid, chaddr, chosen), xid, 5, timeout)
    return Lease(
        ipaddress.IPv4Interface(f"{socket.inet_ntoa(ack[16:20])}/{socket.inet_ntoa(options[1])}"),
        socket.inet_ntoa(options[3][:4]),
        socket.inet_ntoa(server),
    )


def phone_online(lab: NmLab, timeout: float = 1.0) -> bool:
    """Whether the phone's TCP connection to the server is answered within `timeout`."""

    def connect() -> bool:
        try:
            with socket.create_connection((SERVER, SERVER_PORT), timeout):
                return True
        except OSError:
            return False

    return in_netns(lab.phone, connect)


# --- the CLI in the sandbox, on the lab's bus ----------------------------------------------------


def hotspotguard(box: RootSandbox, lab: NmLab, *args: str, check: bool = True) -> str:
    """`hotspotguard ARGS` as root in the lab host, finding NetworkManager on the lab's bus."""
    command = ["env", f"DBUS_SYSTEM_BUS_ADDRESS={lab.bus_address}", *HG, *args]
    return box.run(command, lab.host, check=check).stdout


@pytest.fixture
def sandbox() -> Iterator[RootSandbox]:
    box = RootSandbox()
    yield box
    box.close()


@pytest.fixture
def hotspot(nm_lab: NmLab) -> Iterator[NmLab]:
    """NetworkManager's hotspot up, the phone on it with a lease from NetworkManager's dnsmasq and
    a server listening on the internet: the phone is online (Docker is not started yet)."""
    lab = nm_lab
    lab.up("hotspot")
    _run(["ip", "-n", lab.inet, "addr", "add", f"{SERVER}/32", "dev", "lo"])
    listener = in_netns(lab.inet, lambda: socket.create_server((SERVER, SERVER_PORT), backlog=512))
    try:
        _run(["ip", "-n", lab.phone, "addr", "flush", "dev", "ph0"])  # the lab's static address
        link = json.loads(_run(["ip", "-j", "-n", lab.phone, "link", "show", "ph0"]).stdout)
        lease = in_netns(lab.phone, lambda: dhcp_lease("ph0", link[0]["address"]))
        assert lease.server == lease.router == "10.42.0.1", lease
        assert lease.address in ipaddress.ip_network("10.42.0.0/24"), lease
        _run(["ip", "-n", lab.phone, "addr", "add", str(lease.address), "dev", "ph0"])
        _run(["ip", "-n", lab.phone, "route", "add", "default", "via", lease.router])
        assert phone_online(lab, 3.0), "the hotspot does not work even without Docker"
        yield lab
    finally:
        listener.close()


# --- NetworkManager's dispatcher, started by the lab's bus ---------------------------------------

# The bus-activated nm-dispatcher ($1), in its own mount namespace with the sandbox's overlays.
# The machine's other dispatcher scripts (Debian's 01-ifupdown runs /etc/network/if-up.d) must
# not run inside the lab: they are masked (nm-dispatcher skips what is not a regular file).
_DISPATCHER_INNER = """
for f in /etc/NetworkManager/dispatcher.d/* /etc/NetworkManager/dispatcher.d/*/* \\
         /usr/lib/NetworkManager/dispatcher.d/* /usr/lib/NetworkManager/dispatcher.d/*/*; do
  case "$f" in
    */90-hotspotguard) ;;
    *) if [ -f "$f" ]; then mount --bind /dev/null "$f"; fi ;;
  esac
done
exec "$1" --debug
"""


def _nm_dispatcher() -> str | None:
    return next((path for path in NM_DISPATCHER if os.access(path, os.X_OK)), None)


def _cmdline(pid: int) -> list[str]:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().decode(errors="replace").split("\0")
    except OSError:
        return []


def _activatable(lab: NmLab) -> list[str]:
    reply = subprocess.run(
        ["dbus-send", "--system", "--print-reply", "--dest=org.freedesktop.DBus",
         "/org/freedesktop/DBus", "org.freedesktop.DBus.ListActivatableNames"],
        env=lab.env, capture_output=True, text=True, check=True, timeout=10,
    ).stdout  # fmt: skip
    return [line.split('"')[1] for line in reply.splitlines() if line.strip().startswith("string")]


def _reload_bus(lab: NmLab, *, activatable: bool) -> None:
    """SIGHUP the lab's dbus-daemon (it re-reads its configuration) and wait until it has."""
    config = f"--config-file={lab.dir}/bus.conf"
    (daemon,) = [pid for pid in lab.host_pids() if config in _cmdline(pid)]
    os.kill(daemon, signal.SIGHUP)
    deadline = time.monotonic() + 10
    while (DISPATCHER_NAME in _activatable(lab)) != activatable:
        assert time.monotonic() < deadline, f"the lab's bus did not reload\n{lab.logs()}"
        time.sleep(0.02)


def _stop_dispatchers(lab: NmLab) -> None:
    """End the nm-dispatcher the lab's bus started (it lives in the lab host; nothing else)."""
    pids = [p for p in lab.host_pids() if Path(_cmdline(p)[0]).name == "nm-dispatcher"]
    for pid in pids:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + 5
    while any(_proc_alive(p) for p in pids) and time.monotonic() < deadline:
        time.sleep(0.02)


@contextlib.contextmanager
def dispatcher_on_the_bus(lab: NmLab, box: RootSandbox, binary: str) -> Iterator[Path]:
    """Let the lab's bus activate nm-dispatcher, as a machine's system bus does; yields its log.

    The lab's bus has no service directory (nothing is activated); this adds one whose service
    file starts the real nm-dispatcher in a mount namespace with the sandbox's /etc and /var/lib,
    where the permanent fix's script and record are.  dbus-daemon runs in NetworkManager's mount
    namespace (the lab's /run) and, without a <servicehelper>, executes Exec= itself, as root.
    """
    services = lab.dir / "dbus-services"
    services.mkdir(exist_ok=True)
    log = services / "nm-dispatcher.log"
    inner = services / "nm-dispatcher-inner.sh"
    inner.write_text(_DISPATCHER_INNER)
    wrapper = services / "nm-dispatcher-in-sandbox"
    command = shlex.join(box.argv(["/bin/sh", str(inner), binary]))
    wrapper.write_text(f"#!/bin/sh\nexec {command} >>{shlex.quote(str(log))} 2>&1\n")
    wrapper.chmod(0o755)
    (services / f"{DISPATCHER_NAME}.service").write_text(
        f"[D-BUS Service]\nName={DISPATCHER_NAME}\nExec={wrapper}\nUser=root\n"
    )
    conf = lab.dir / "bus.conf"
    original = conf.read_text()
    assert "<servicedir>" not in original, "the lab's bus activates services already"
    conf.write_text(
        original.replace("<includedir>", f"<servicedir>{services}</servicedir>\n  <includedir>", 1)
    )
    try:
        _reload_bus(lab, activatable=True)
        yield log
    finally:
        conf.write_text(original)
        with contextlib.suppress(Exception):
            _reload_bus(lab, activatable=False)
        _stop_dispatchers(lab)  # its overlays must be unmounted before the sandbox is used again


def wait_for_text(path: Path, text: str, timeout: float) -> str:
    """The file's content once it contains `text` (an AssertionError with it after `timeout`)."""
    deadline = time.monotonic() + timeout
    while True:
        content = path.read_text(errors="replace") if path.exists() else ""
        if text in content:
            return content
        assert time.monotonic() < deadline, f"no {text!r} within {timeout} s in:\n{content[-3000:]}"
        time.sleep(0.05)


# --- the tests ------------------------------------------------------------------------------


def test_fix_and_undo_on_a_networkmanager_hotspot(hotspot: NmLab, sandbox: RootSandbox) -> None:
    lab = hotspot
    with dockerd(lab, forwarding_off_first=True):
        # 1. blocked; the plan, for NetworkManager's shared connection found on the bus
        assert not phone_online(lab)
        before = ruleset(lab)
        status = json.loads(hotspotguard(sandbox, lab, "status", "--json", check=False))
        (seen,) = status["hotspots"]  # the connection's name comes from D-Bus only
        assert (seen["iface"], seen["connection"]["id"], seen["state"]) == (
            "hs0", "hotspot", "blocked",
        )  # fmt: skip
        preview = json.loads(hotspotguard(sandbox, lab, "fix", "--dry-run", "--json"))
        assert preview["plan"]["id"] == "docker-user@hs0"
        assert preview["plan"]["strategy"] == "docker-user"
        assert preview["before"]["verdict"] == "blocked"
        assert "Docker" in preview["before"]["summary"]
        assert preview["after"]["verdict"] == "ok"
        assert preview["applied"] is False
        assert ruleset(lab) == before, "a dry run changed the ruleset"
        assert not sandbox.written(FIXES_JSON).exists(), "a dry run recorded a fix"
        assert not phone_online(lab)

        # 2. the fix: the phone is online
        out = hotspotguard(sandbox, lab, "fix")
        assert out.startswith("Applied docker-user@hs0"), out
        assert phone_online(lab, 3.0)
        rules = tagged_rules(lab)
        assert len(rules) == 2 and all(r.startswith("-A DOCKER-USER ") for r in rules), rules
        assert all('--comment "hotspotguard:docker-user@hs0"' in r for r in rules), rules
        after = ruleset(lab)

        # 3. again: nothing changes
        out = hotspotguard(sandbox, lab, "fix")
        assert out.startswith("docker-user@hs0 is already in place"), out
        assert ruleset(lab) == after, "a second fix changed the ruleset"

        # 4. undo: exactly the ruleset from before, the phone offline again
        out = hotspotguard(sandbox, lab, "undo")
        assert out.strip() == "Undid docker-user@hs0: removed 2 rules", out
        assert ruleset(lab) == before, "undo did not restore the ruleset"
        assert not phone_online(lab)
        assert hotspotguard(sandbox, lab, "fixes").strip() == "no fixes applied"


def test_a_permanent_fix_is_reapplied_by_docker_and_networkmanager(
    hotspot: NmLab, sandbox: RootSandbox
) -> None:
    lab = hotspot
    # 5. a permanent fix; dockerd stopped and started again: still online
    with dockerd(lab, forwarding_off_first=True):
        assert not phone_online(lab)
        out = hotspotguard(sandbox, lab, "fix", "--permanent")
        assert out.startswith("Applied docker-user@hs0") and "Kept after reboot" in out, out
        assert sandbox.written(DROPIN).is_file()
        script = sandbox.written(DISPATCHER)
        assert script.stat().st_mode & 0o777 == 0o755
        assert phone_online(lab, 3.0)
    with dockerd(lab, forwarding_off_first=False):
        assert len(tagged_rules(lab)) == 2
        assert phone_online(lab, 3.0), "the fix did not survive a Docker restart"

        # 6. the rules flushed: offline; the drop-in's ExecStartPost puts them back
        lab.host_run(["iptables-nft", "-F", "DOCKER-USER"])
        assert not phone_online(lab)
        sandbox.run(_exec_start_post(sandbox), lab.host)
        assert len(tagged_rules(lab)) == 2
        assert phone_online(lab, 3.0)

        # 7. flushed again; NetworkManager re-applies it when the hotspot comes up: its call
        # starts the real nm-dispatcher, which runs 90-hotspotguard with (hs0, up)
        lab.host_run(["iptables-nft", "-F", "DOCKER-USER"])
        assert not phone_online(lab)
        binary = _nm_dispatcher()
        if binary is not None:
            with dispatcher_on_the_bus(lab, sandbox, binary) as log:
                lab.down("hotspot")
                lab.up("hotspot")
                # the helper prints its outcome when it is done (and has saved its record)
                text = wait_for_text(log, "docker-user@hs0: applied", 15)
            assert DISPATCHER in text, text[-3000:]  # run by nm-dispatcher, on `up` only
        else:  # no nm-dispatcher installed: the script as NetworkManager would run it
            sandbox.run([DISPATCHER, "hs0", "up"], lab.host)
        assert len(tagged_rules(lab)) == 2
        assert phone_online(lab, 3.0)

        # 8. undo --all: the files and every tagged rule gone, the phone offline
        out = hotspotguard(sandbox, lab, "undo", "--all")
        assert out.strip() == "Undid docker-user@hs0: removed 2 rules", out
        assert not sandbox.written(DROPIN).exists() and not script.exists()
        assert tagged_rules(lab) == []
        assert not phone_online(lab)
