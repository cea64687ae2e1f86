"""Capture the live machine into a snapshot document (root: reading the ruleset needs it).

The nft listing runs in-process through libnftables while the iptables save tools run
beside it as child processes, so the slowest of them sets the pace, not their sum.
"""

from __future__ import annotations

import contextlib
import ipaddress
import json
import os
import re
import shutil
import subprocess
from collections.abc import Callable, Iterable, Iterator
from typing import Any

from hotspotguard.ruleset.restored import MAX_TEXT as MAX_RESTORED_TEXT
from hotspotguard.ruleset.restored import RESTORERS
from hotspotguard.ruleset.snapshot import FORMAT
from hotspotguard.system import nftables
from hotspotguard.wording import Reason, reason_of

CLEAN_ENV = {"PATH": "/usr/sbin:/usr/bin:/sbin:/bin", "LC_ALL": "C"}
SAVE_TOOLS = {
    "iptables_nft_save": "iptables-nft-save",
    "ip6tables_nft_save": "ip6tables-nft-save",
    "iptables_legacy_save": "iptables-legacy-save",
    "ip6tables_legacy_save": "ip6tables-legacy-save",
}
# The kernel's rule for interface names: 1-15 bytes, no '/', ':', whitespace; not "." or "..".
IFNAME = re.compile(r"^(?!\.{1,2}$)[^/:\s]{1,15}$")


NOT_ROOT = Reason("not-root")


class CaptureError(RuntimeError):
    """The live machine could not be read; the message is one line for a person."""


def firewall_unread(error: BaseException) -> Reason:
    """ "cannot read the firewall: …" with `error`'s first line as the system's words."""
    return Reason("firewall-unread", detail=reason_of(error) or type(error).__name__)


@contextlib.contextmanager
def reading_firewall() -> Iterator[None]:
    """Around a read of the firewall: not being root, or the system's own failure, becomes a
    CaptureError for a person. (What means something else — an object gone, a dump
    interrupted — the caller handles inside.)"""
    try:
        yield
    except PermissionError:
        raise CaptureError(NOT_ROOT) from None
    except (nftables.NftablesError, OSError) as error:
        raise CaptureError(firewall_unread(error)) from None


def _tool(name: str) -> str | None:
    return shutil.which(name, path=CLEAN_ENV["PATH"])


def _read_nft() -> dict[str, Any]:
    """`nft -j list ruleset`'s document, read table by table (see system.nftables), with the
    ingress chains' devices that nft 1.0.x leaves out of its JSON put back."""
    with reading_firewall():
        doc = nftables.list_ruleset_json()
    binary = _tool("nft")
    _add_devices(doc, lambda: _nft_binary_text(binary, "list", "chains") if binary else "")
    return doc


def _nft_binary_text(binary: str, *args: str) -> str:
    proc = subprocess.run(
        [binary, *args], capture_output=True, text=True, env=CLEAN_ENV, check=False
    )
    return proc.stdout if proc.returncode == 0 else ""


_TABLE_LINE = re.compile(r"^table (\S+) (\S+) \{")
_CHAIN_LINE = re.compile(r"^\s*chain (\S+) \{")
_DEVICE = re.compile(r'\bdevice "?([^"\s;]+)"?')
_DEVICES = re.compile(r"\bdevices = \{([^}]*)\}")


def chain_devices(listing: str) -> dict[tuple[str, str, str], list[str]]:
    """Devices of netdev/inet ingress chains from `nft list chains` text, by (family, table,
    chain). nft 1.0.x leaves them out of its JSON, so the snapshot adds them back."""
    devices: dict[tuple[str, str, str], list[str]] = {}
    family = table = chain = ""
    for line in listing.splitlines():
        if match := _TABLE_LINE.match(line):
            family, table = match.groups()
        elif match := _CHAIN_LINE.match(line):
            chain = match.group(1)
        elif " hook " in line:
            if match := _DEVICES.search(line):
                names = [d.strip().strip('"') for d in match.group(1).split(",")]
                devices[(family, table, chain)] = [n for n in names if n]
            elif match := _DEVICE.search(line):
                devices[(family, table, chain)] = [match.group(1)]
    return devices


def _add_devices(nft: dict[str, Any], listing_chains: Callable[[], str]) -> None:
    """Fill in "dev" of ingress/egress chains where the JSON lacks it."""
    missing = [
        item["chain"]
        for item in nft.get("nftables", [])
        if isinstance(item, dict)
        and isinstance(item.get("chain"), dict)
        and item["chain"].get("hook") in {"ingress", "egress"}
        and "dev" not in item["chain"]
    ]
    if not missing:
        return
    devices = chain_devices(listing_chains())
    for chain in missing:
        found = devices.get((chain.get("family"), chain.get("table"), chain.get("name")))
        if found:
            chain["dev"] = found[0] if len(found) == 1 else found


def ingress_devices(nft: dict[str, Any]) -> list[dict[str, Any]]:
    """The snapshot's separate record of ingress chains' devices (what `_add_devices` found),
    for readers of the "nft" document that expect nft's own JSON, without them."""
    found = []
    for item in nft.get("nftables", []):
        chain = item.get("chain") if isinstance(item, dict) else None
        if isinstance(chain, dict) and chain.get("hook") == "ingress" and "dev" in chain:
            dev = chain["dev"]
            found.append(
                {
                    "family": chain.get("family"),
                    "table": chain.get("table"),
                    "chain": chain.get("name"),
                    "devices": [dev] if isinstance(dev, str) else list(dev),
                }
            )
    return found


def _start_saves(tools: dict[str, str] | None = None) -> dict[str, subprocess.Popen[str]]:
    procs: dict[str, subprocess.Popen[str]] = {}
    for key, command in (tools or SAVE_TOOLS).items():
        name, *args = command.split()
        binary = _tool(name)
        if binary is None:
            continue
        procs[key] = subprocess.Popen(
            [binary, *args],
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            stdin=subprocess.DEVNULL,
            text=True,
            env=CLEAN_ENV,
        )
    return procs


def _read_sysctl(name: str) -> str | None:
    try:
        with open("/proc/sys/" + name.replace(".", "/")) as handle:
            return handle.read().strip()
    except OSError:
        return None


def _sysctls(ifaces: Iterable[str]) -> dict[str, str]:
    names = ["net.ipv4.ip_forward", "net.ipv6.conf.all.forwarding"]
    names += [f"net.ipv4.conf.{iface}.forwarding" for iface in ifaces if "." not in iface]
    values = {name: _read_sysctl(name) for name in names}
    return {name: value for name, value in values.items() if value is not None}


def _ip_json(*args: str) -> tuple[int, Any, str]:
    """Run iproute2's `ip -j ARGS` (its JSON is stable; importing pyroute2 alone costs 0.2 s
    of start-up, more than the whole capture of a small ruleset)."""
    binary = _tool("ip")
    if binary is None:
        raise CaptureError("iproute2's ip command is not installed")
    proc = subprocess.run(
        [binary, "-j", *args], capture_output=True, text=True, env=CLEAN_ENV, check=False
    )
    try:
        data = json.loads(proc.stdout) if proc.stdout.strip() else []
    except ValueError:
        data = []
    return proc.returncode, data, proc.stderr.strip()


def interface_addresses(iface: str) -> tuple[list[str], list[str]]:
    """IPv4 and IPv6 addresses (with prefix) of `iface`; CaptureError if it does not exist."""
    if not IFNAME.match(iface):
        raise CaptureError(f"{iface!r} is not a valid interface name")
    rc, links, _ = _ip_json("addr", "show", "dev", iface)
    if rc != 0 or not links:
        raise CaptureError(f"there is no interface named {iface}")
    v4: list[str] = []
    v6: list[str] = []
    for info in links[0].get("addr_info", []):
        local, length = info.get("local"), info.get("prefixlen")
        if not isinstance(local, str) or not isinstance(length, int):
            continue
        (v6 if info.get("family") == "inet6" else v4).append(f"{local}/{length}")
    return v4, v6


def _all_addresses(iface: str) -> list[str]:
    try:
        v4, v6 = interface_addresses(iface)
    except CaptureError:  # gone since the routes were read
        return []
    return v4 + v6


def default_uplinks() -> list[str]:
    """Interfaces of the default routes (main table), IPv4 first."""
    uplinks: list[str] = []
    for family in ("-4", "-6"):
        _, routes, _ = _ip_json(family, "route", "show", "default")
        for route in routes if isinstance(routes, list) else []:
            hops = route.get("nexthops") or [route]
            for hop in hops:
                dev = hop.get("dev")
                if isinstance(dev, str) and dev not in uplinks:
                    uplinks.append(dev)
    return uplinks


def routing() -> dict[str, Any]:
    """Each family's routes of every table and its policy rules, as iproute2 prints them: what
    `fib` and rpfilter look up. The four listings run side by side; a family whose listing
    fails is left out (its lookups stay unknown)."""
    binary = _tool("ip")
    if binary is None:
        return {}
    listings = {
        (family, what): subprocess.Popen(
            [binary, "-j", flag, *args],
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            stdin=subprocess.DEVNULL,
            text=True,
            env=CLEAN_ENV,
        )
        for family, flag in (("ip", "-4"), ("ip6", "-6"))
        for what, args in (("routes", ("route", "show", "table", "all")), ("rules", ("rule",)))
    }
    parsed: dict[tuple[str, str], Any] = {}
    try:
        for key, proc in listings.items():
            out, _ = proc.communicate()
            try:
                parsed[key] = json.loads(out) if proc.returncode == 0 and out.strip() else None
            except ValueError:
                parsed[key] = None
    finally:
        _reap(listings.values())
    found: dict[str, Any] = {}
    for family in ("ip", "ip6"):
        routes, rules = parsed.get((family, "routes")), parsed.get((family, "rules"))
        if isinstance(routes, list) and isinstance(rules, list):
            found[family] = {"routes": routes, "rules": rules}
    return found


def sysconfdir() -> str:
    """Where the system's configuration lives: /etc, or HOTSPOTGUARD_SYSCONFDIR (tests point it
    elsewhere; the helper runs with a clean environment, sudo resets it)."""
    return os.environ.get("HOTSPOTGUARD_SYSCONFDIR") or "/etc"


def restored_rules(etc: str | None = None) -> list[dict[str, str]]:
    """The rules files boot services restore (see ruleset.restored) that exist, with their
    texts: whoever wrote a rule they hold, that service restores it at every boot."""
    base = etc if etc is not None else sysconfdir()
    found = []
    for program, files in RESTORERS.items():
        for family, relative in files:
            path = os.path.join(base, relative)
            try:
                with open(path, encoding="utf-8", errors="replace") as handle:
                    text = handle.read(MAX_RESTORED_TEXT + 1)
            except OSError:
                continue
            if len(text) <= MAX_RESTORED_TEXT and text.strip():
                found.append({"program": program, "family": family, "path": path, "text": text})
    return found


def shared_interfaces(nft: dict[str, Any], saves: dict[str, str]) -> list[str]:
    """Interfaces NetworkManager shares, read from its firewall tables (nm-shared-IFACE,
    or nm-sh-fw-IFACE chains with its iptables backend). The D-Bus watcher supersedes this."""
    found: list[str] = []
    for item in nft.get("nftables", []):
        table = item.get("table") if isinstance(item, dict) else None
        if isinstance(table, dict) and str(table.get("name", "")).startswith("nm-shared-"):
            found.append(str(table["name"])[len("nm-shared-") :])
    for text in saves.values():
        found += re.findall(r"^:nm-sh-fw-(\S+)", text, flags=re.M)
    return list(dict.fromkeys(i for i in found if IFNAME.match(i)))


def _hotspot(
    iface: str, v4: list[str], v6: list[str], services: list[str] | None = None
) -> dict[str, Any]:
    """A snapshot's hotspot entry; the IPv6 services served on it are read here unless
    given (see system.served)."""
    entry: dict[str, Any] = {"iface": iface, "ipv4": v4, "ipv6": v6}
    if services is None:
        addresses = [ipaddress.ip_interface(a) for a in v4 + v6]
        services = []
        if any(not a.ip.is_link_local for a in addresses if a.version == 6):
            from hotspotguard.system import served  # only a hotspot with IPv6 needs the look

            services = served.ipv6_services(iface, addresses)
    entry["ipv6_services"] = services
    return entry


def save_texts(tools: dict[str, str] | None = None) -> dict[str, str]:
    """The save tools' texts by snapshot key (`tools`: key → argv0 and arguments, all four
    whole-ruleset saves by default), run side by side; a tool missing or failing gives none."""
    procs = _start_saves(tools)
    try:
        return _finish_saves(procs)
    finally:
        _reap(procs.values())


def _finish_saves(procs: dict[str, subprocess.Popen[str]]) -> dict[str, str]:
    """The texts of the saves that succeeded with something to say, by snapshot key."""
    saves: dict[str, str] = {}
    for key, proc in procs.items():
        out, _ = proc.communicate()
        if proc.returncode == 0 and out.strip():
            saves[key] = out
    return saves


def _reap(procs: Iterable[subprocess.Popen[str]]) -> None:
    for proc in procs:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


def capture_firewall() -> dict[str, Any]:
    """The firewall part of a snapshot document: "nft" and the save tools' texts (the save
    tools run beside the in-process nft listing)."""
    procs = _start_saves()
    try:
        nft = _read_nft()
        saves = _finish_saves(procs)
    finally:
        _reap(procs.values())
    return {"nft": nft, **saves}


def capture_machine(hotspots_addrs: dict[str, tuple[list[str], list[str]]]) -> dict[str, Any]:
    """The rest of a snapshot document (all but the firewall): the hotspots with their
    addresses (and IPv6 services), the uplinks and theirs, the forwarding sysctls."""
    hotspots = [_hotspot(iface, v4, v6) for iface, (v4, v6) in hotspots_addrs.items()]
    uplinks = [u for u in default_uplinks() if u not in hotspots_addrs]
    return {
        "format": FORMAT,
        "sysctl": _sysctls([*hotspots_addrs, *uplinks]),
        "hotspots": hotspots,
        "uplinks": uplinks,
        "uplink_addresses": {u: _all_addresses(u) for u in uplinks},
        "routing": routing(),
        "restored_rules": restored_rules(),
    }


def existing_addresses(ifaces: Iterable[str]) -> dict[str, tuple[list[str], list[str]]]:
    """The addresses of those of `ifaces` that exist (a stale table's interface is gone)."""
    found: dict[str, tuple[list[str], list[str]]] = {}
    for iface in ifaces:
        try:
            found[iface] = interface_addresses(iface)
        except CaptureError:
            continue
    return found


def capture_snapshot(ifaces: list[str] | None = None) -> dict[str, Any]:
    """The live machine as a `hotspotguard-snapshot/1` document.

    `ifaces` names the hotspot interfaces; None finds them from NetworkManager's tables."""
    if ifaces:
        hotspots_addrs = {iface: interface_addresses(iface) for iface in ifaces}
    firewall = capture_firewall()
    if not ifaces:
        saves = {k: v for k, v in firewall.items() if k != "nft"}
        hotspots_addrs = existing_addresses(shared_interfaces(firewall["nft"], saves))
    machine = capture_machine(hotspots_addrs)
    nft = firewall.pop("nft")
    return {
        "format": FORMAT,
        "nft": nft,
        **firewall,
        **machine,
        "ingress_devices": ingress_devices(nft),
    }


def is_root() -> bool:
    return os.geteuid() == 0


def with_hotspots(doc: dict[str, Any], ifaces: list[str] | None) -> dict[str, Any]:
    """A snapshot document (e.g. the helper's, read as root) with `ifaces` as its hotspots,
    their addresses read here (no root needed); None keeps the document's own hotspots."""
    if ifaces is None:
        return doc
    known = {
        h.get("iface"): h.get("ipv6_services")
        for h in doc.get("hotspots", [])
        if isinstance(h, dict) and isinstance(h.get("ipv6_services"), list)
    }
    hotspots = []
    for iface in ifaces:
        v4, v6 = interface_addresses(iface)
        hotspots.append(_hotspot(iface, v4, v6, known.get(iface)))
    uplinks = [u for u in doc.get("uplinks", []) if u not in ifaces]
    return {**doc, "hotspots": hotspots, "uplinks": uplinks}


def capture_through_helper(ifaces: list[str] | None = None) -> dict[str, Any]:
    """`capture_snapshot` for a user: the helper reads the firewall (polkit's read action)."""
    from hotspotguard.system.helper_client import HelperRefused, HelperUnavailable, call_helper

    try:
        doc = call_helper("GetSnapshot", interactive=True)
    except (HelperUnavailable, HelperRefused) as error:
        raise CaptureError(firewall_unread(error)) from None
    if not isinstance(doc, dict):
        raise CaptureError(Reason("no-snapshot"))
    return with_hotspots(doc, ifaces)


def live_capture() -> Callable[[list[str] | None], dict[str, Any]]:
    """How this process reads the live machine: directly as root, else through the helper."""
    return capture_snapshot if is_root() else capture_through_helper
