"""Docker as the fixes need to know it: its version (from its API socket, ``GET /version``, else
``dockerd --version``) and its daemon.json.  No shell, absolute paths, short timeouts."""

from __future__ import annotations

import json
import os
import re
import socket
import subprocess
from pathlib import Path

from hotspotguard.fixes.netns import DROPIN_NAME, HOST_LINK, TOOLS, UNIT
from hotspotguard.fixes.plan import DAEMON_JSON, HostFacts, NetnsFacts
from hotspotguard.ruleset import Ruleset
from hotspotguard.system import firewalld, systemd, trust, ufw
from hotspotguard.system.firewall import CLEAN_ENV

DOCKER_SOCKET = "/var/run/docker.sock"
DOCKERD = ("/usr/bin/dockerd", "/usr/sbin/dockerd", "/usr/local/bin/dockerd")
TIMEOUT = 2.0
MAX_DAEMON_JSON = 1 << 20


def _api_version(path: str) -> str | None:
    """Docker's version from its API (None when nothing answers there)."""
    try:
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
            sock.settimeout(TIMEOUT)
            sock.connect(path)
            sock.sendall(b"GET /version HTTP/1.0\r\nHost: docker\r\n\r\n")
            data = b""
            while len(data) < 1 << 16:
                chunk = sock.recv(4096)
                if not chunk:
                    break
                data += chunk
    except OSError:
        return None
    head, _, body = data.partition(b"\r\n\r\n")
    if not head.startswith(b"HTTP/1.") or b" 200 " not in head.split(b"\r\n", 1)[0] + b" ":
        return None
    try:
        version = json.loads(body).get("Version")
    except (ValueError, AttributeError):
        return None
    return version if isinstance(version, str) and version else None


def _dockerd_version() -> str | None:
    for binary in DOCKERD:
        try:
            proc = subprocess.run(
                [binary, "--version"],
                capture_output=True,
                text=True,
                env=CLEAN_ENV,
                timeout=TIMEOUT * 5,
                check=False,
            )
        except (OSError, subprocess.TimeoutExpired):
            continue
        match = re.search(r"version\s+([0-9][^\s,]*)", proc.stdout)
        if proc.returncode == 0 and match:
            return match.group(1)
    return None


def _stamp(path: str) -> tuple[int, int, int] | None:
    try:
        info = os.stat(path)
    except OSError:
        return None
    return info.st_dev, info.st_ino, info.st_mtime_ns


_known: dict[str, tuple[object, str | None]] = {}


def version(socket_path: str = DOCKER_SOCKET) -> str | None:
    """The running Docker's version, else the installed dockerd's; None when neither.  Asked
    again only when the socket or a dockerd binary changed (Docker restarted or upgraded):
    the watcher shows the remedies on every change of a blocked hotspot."""
    stamp = (_stamp(socket_path), *(_stamp(binary) for binary in DOCKERD))
    known = _known.get(socket_path)
    if known is not None and known[0] == stamp:
        return known[1]
    found = _api_version(socket_path) or _dockerd_version()
    _known[socket_path] = (stamp, found)
    return found


def read_text(path: str) -> str | None:
    """A small config file's text (None: it does not exist)."""
    try:
        with open(path, "rb") as handle:
            data = handle.read(MAX_DAEMON_JSON + 1)
    except FileNotFoundError:
        return None
    if len(data) > MAX_DAEMON_JSON:
        raise OSError(f"{path} is larger than {MAX_DAEMON_JSON} bytes")
    return data.decode("utf-8", "surrogateescape")


def uses_docker(ruleset: Ruleset) -> bool:
    return any(
        table.name.startswith("docker") or any(c.name.startswith("DOCKER") for c in table.chains)
        for table in ruleset.tables
    )


DAEMON_JSON_PATH = DAEMON_JSON


def facts(
    ruleset: Ruleset, dropin_dir: str | None = None, ifaces: tuple[str, ...] = ()
) -> HostFacts:
    """What the planners need beyond the ruleset: Docker's, gathered only where Docker's rules
    are in sight (a daemon.json that cannot be read is left to the planner to refuse), and
    whether ufw is installed; with `dropin_dir` (docker.service's drop-ins), what
    `docker-netns` needs, wherever Docker runs (once in its namespace, its rules are out of
    sight); firewalld's zones for `ifaces` where its table is loaded."""
    path = DAEMON_JSON_PATH
    netns = netns_facts(dropin_dir) if dropin_dir is not None else None
    zones = firewalld.zones_in_use(ruleset, ifaces)
    if not uses_docker(ruleset):
        return HostFacts(daemon_json_path=path, ufw=ufw.installed(), netns=netns, firewalld=zones)
    try:
        text = read_text(path)
    except (OSError, UnicodeDecodeError) as error:
        text = f"<unreadable: {error}>"  # not JSON: the planner refuses with the reason
    return HostFacts(
        version(DOCKER_SOCKET), text, path, ufw.installed(), netns=netns, firewalld=zones
    )


# --- docker-netns -----------------------------------------------------------------------

IP = "/usr/sbin/ip"
TOOL_DIRS = ("/usr/sbin", "/usr/bin", "/sbin", "/bin")


def _ip_json(*args: str) -> list[dict[str, object]]:
    try:
        proc = subprocess.run(
            [IP, "-j", *args], capture_output=True, text=True, env=CLEAN_ENV,
            timeout=TIMEOUT * 5, check=False,
        )  # fmt: skip
        doc = json.loads(proc.stdout or "[]") if proc.returncode == 0 else []
    except (OSError, subprocess.TimeoutExpired, ValueError):
        return []
    return [item for item in doc if isinstance(item, dict)] if isinstance(doc, list) else []


def host_networks() -> tuple[tuple[str, ...], str | None]:
    """Every IPv4 network of this namespace (addresses' and routes' prefixes, docker0's
    aside: it is Docker's bridge or our veth) and what docker0 is ("bridge", "veth", …)."""
    networks: list[str] = []
    docker0 = None
    for link in _ip_json("-d", "link", "show"):
        if link.get("ifname") == HOST_LINK:
            info = link.get("linkinfo")
            kind = info.get("info_kind") if isinstance(info, dict) else None
            docker0 = str(kind) if kind else "device"
    for link in _ip_json("-4", "addr", "show"):
        if link.get("ifname") == HOST_LINK:
            continue
        for address in link.get("addr_info") or []:  # type: ignore[attr-defined]
            if isinstance(address, dict) and "local" in address:
                networks.append(f"{address['local']}/{address.get('prefixlen', 32)}")
    for route in _ip_json("-4", "route", "show", "table", "all"):
        dst, dev = route.get("dst"), route.get("dev")
        if isinstance(dst, str) and dst != "default" and dev != HOST_LINK:
            networks.append(dst if "/" in dst else f"{dst}/32")
    return tuple(dict.fromkeys(networks)), docker0


def _tools() -> tuple[tuple[tuple[str, str], ...], str | None]:
    """The absolute paths of the tools the drop-in runs, each root's alone (else the reason)."""
    found = []
    for name in TOOLS:
        path = next((f"{d}/{name}" for d in TOOL_DIRS if os.path.exists(f"{d}/{name}")), None)
        if path is None:
            return (), f"{name} is not installed (looked in {', '.join(TOOL_DIRS)})"
        try:
            trust.check_path(Path(path), "at every Docker start, for docker-netns")
        except trust.Untrusted as error:
            return (), str(error)
        found.append((name, path))
    return tuple(found), None


def netns_facts(dropin_dir: str) -> NetnsFacts:
    networks, docker0 = host_networks()
    tools, problem = _tools()
    dropin_path = os.path.join(dropin_dir, DROPIN_NAME)
    try:
        dropin = read_text(dropin_path)
    except (OSError, UnicodeDecodeError) as error:
        dropin, problem = None, problem or f"{dropin_path} cannot be read: {error}"
    dockerd = next((path for path in DOCKERD if os.path.exists(path)), None)
    if dockerd and not problem and not systemd.booted() and systemd.unit_path(UNIT) is None:
        # an init other than systemd (OpenRC, runit, sysvinit): nothing would read the drop-in
        problem = (
            f"Docker is not started by systemd here (no {UNIT} unit): the drop-in would never run"
        )
    return NetnsFacts(
        networks, docker0, dockerd, tools, problem, dropin_path, dropin, systemd.booted()
    )
