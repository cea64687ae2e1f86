"""The snapshot document (`hotspotguard-snapshot/1`): the engine's only input, validated."""

from __future__ import annotations

import ipaddress
import json
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from hotspotguard.gcpause import gc_paused
from hotspotguard.ruleset.jsonstream import LazyNft, loads_snapshot
from hotspotguard.ruleset.restored import RestoredError, RestoredFile, parse_restored
from hotspotguard.ruleset.routes import Routing, RoutingError, parse_routing

FORMAT = "hotspotguard-snapshot/1"
REQUIRED_KEYS = ("format", "nft", "sysctl", "hotspots", "uplinks")
SAVE_KEYS = (
    "iptables_nft_save",
    "ip6tables_nft_save",
    "iptables_legacy_save",
    "ip6tables_legacy_save",
)
# A snapshot file is refused above this size. Reading one takes its bytes and text while it is
# decoded, then its text (kept while it is parsed) and the model: 2.4 to 3.4 times the file's
# size with the interpreter (`explain --snapshot`: a million-element set in 47 MB, 113 MiB;
# 100,000 rules in 45 MB, 151 MiB), so at most about 900 MiB.
MAX_FILE_BYTES = 256 * 1024 * 1024


class SnapshotError(ValueError):
    """A snapshot that cannot be used; the message is one line for a person."""


IPV6_SERVICE_NAMES = frozenset({"ra", "dhcp6", "dns6"})


@dataclass(frozen=True)
class Hotspot:
    iface: str
    ipv4: tuple[ipaddress.IPv4Interface, ...] = ()
    ipv6: tuple[ipaddress.IPv6Interface, ...] = ()
    # what the hotspot serves over IPv6 ("ra", "dhcp6", "dns6"); None: the snapshot does not
    # say (older snapshots), and the verdict assumes NetworkManager's own sharing
    ipv6_services: frozenset[str] | None = None


@dataclass(frozen=True)
class Snapshot:
    nft: Mapping[str, Any]
    sysctl: Mapping[str, str]
    hotspots: tuple[Hotspot, ...]
    uplinks: tuple[str, ...]
    iptables_nft_save: str = ""
    ip6tables_nft_save: str = ""
    iptables_legacy_save: str = ""
    ip6tables_legacy_save: str = ""
    # optional: the uplinks' addresses (what a masquerade makes a client's source)
    uplink_addresses: Mapping[
        str, tuple[ipaddress.IPv4Interface | ipaddress.IPv6Interface, ...]
    ] = field(default_factory=dict)
    # optional: the devices of netdev/inet ingress chains by (family, table, chain), carried
    # apart from "nft" because nft 1.0.x's JSON leaves them out (the live capture knows them)
    ingress_devices: Mapping[tuple[str, str, str], tuple[str, ...]] = field(default_factory=dict)
    # optional: each family's routes and policy rules (what `fib` and rpfilter look up);
    # without them those lookups are `unknown`
    routing: Mapping[str, Routing] = field(default_factory=dict)
    # optional: the rules files boot services restore (netfilter-persistent, iptables.service),
    # which own the rules they hold
    restored_rules: tuple[RestoredFile, ...] = ()
    extra: Mapping[str, Any] = field(default_factory=dict)


def _interfaces(raw: object, version: int, where: str) -> tuple[Any, ...]:
    if raw is None:
        return ()
    if not isinstance(raw, list):
        raise SnapshotError(f"{where} must be a list of addresses")
    result = []
    for item in raw:
        try:
            iface = ipaddress.ip_interface(str(item))
        except ValueError:
            raise SnapshotError(f"{where}: {item!r} is not an address with a prefix") from None
        if iface.version != version:
            raise SnapshotError(f"{where}: {item!r} is not an IPv{version} address")
        result.append(iface)
    return tuple(result)


def _services(raw: object, where: str) -> frozenset[str] | None:
    if raw is None:
        return None
    if not isinstance(raw, list) or not all(isinstance(s, str) for s in raw):
        raise SnapshotError(f"{where} must be a list of service names")
    unknown = sorted(set(raw) - IPV6_SERVICE_NAMES)
    if unknown:
        known = ", ".join(sorted(IPV6_SERVICE_NAMES))
        raise SnapshotError(f"{where}: unknown service {unknown[0]!r} (known: {known})")
    return frozenset(raw)


def _ingress_devices(raw: object) -> dict[tuple[str, str, str], tuple[str, ...]]:
    """`[{"family": F, "table": T, "chain": C, "devices": [..]}, ...]`, validated."""
    if raw is None:
        return {}
    where = "'ingress_devices'"
    if not isinstance(raw, list):
        raise SnapshotError(f"{where} must be a list of chains with their devices")
    devices: dict[tuple[str, str, str], tuple[str, ...]] = {}
    for index, item in enumerate(raw):
        names = item.get("devices") if isinstance(item, dict) else None
        ident = (
            [item.get(k) for k in ("family", "table", "chain")] if isinstance(item, dict) else []
        )
        if (
            not all(isinstance(part, str) for part in ident)
            or not isinstance(names, list)
            or not all(isinstance(name, str) for name in names)
        ):
            raise SnapshotError(
                f"{where}[{index}] needs 'family', 'table', 'chain' and a 'devices' list of names"
            )
        family, table, chain = (str(part) for part in ident)
        devices[(family, table, chain)] = tuple(str(name) for name in names)
    return devices


def load_snapshot(doc: object) -> Snapshot:
    """Validate a decoded snapshot document; raise `SnapshotError` saying what is wrong."""
    if not isinstance(doc, dict):
        raise SnapshotError("a snapshot is a JSON object")
    missing = [key for key in REQUIRED_KEYS if key not in doc]
    if missing:
        raise SnapshotError(f"the snapshot lacks the key(s): {', '.join(missing)}")
    if doc["format"] != FORMAT:
        raise SnapshotError(f"unknown snapshot format {doc['format']!r} (expected {FORMAT!r})")
    nft = doc["nft"]
    if nft is None:
        nft = {"nftables": []}
    if not isinstance(nft, LazyNft) and (
        not isinstance(nft, dict) or not isinstance(nft.get("nftables", []), list)
    ):
        raise SnapshotError("'nft' must be the object `nft -j list ruleset` prints")
    sysctl = doc["sysctl"]
    if not isinstance(sysctl, dict):
        raise SnapshotError("'sysctl' must be an object of names to values")
    hotspots_raw = doc["hotspots"]
    if not isinstance(hotspots_raw, list):
        raise SnapshotError("'hotspots' must be a list")
    hotspots = []
    for index, item in enumerate(hotspots_raw):
        if not isinstance(item, dict) or not isinstance(item.get("iface"), str):
            raise SnapshotError(f"hotspots[{index}] needs an 'iface' name")
        where = f"hotspots[{index}]"
        hotspots.append(
            Hotspot(
                iface=item["iface"],
                ipv4=_interfaces(item.get("ipv4"), 4, where + ".ipv4"),
                ipv6=_interfaces(item.get("ipv6"), 6, where + ".ipv6"),
                ipv6_services=_services(item.get("ipv6_services"), where + ".ipv6_services"),
            )
        )
    uplinks = doc["uplinks"]
    if not isinstance(uplinks, list) or not all(isinstance(u, str) for u in uplinks):
        raise SnapshotError("'uplinks' must be a list of interface names")
    saves: dict[str, str] = {}
    for key in SAVE_KEYS:
        value = doc.get(key)
        if value is None:
            continue
        if not isinstance(value, str):
            raise SnapshotError(f"'{key}' must be the text iptables-save prints")
        saves[key] = value
    uplink_addresses: dict[str, tuple[Any, ...]] = {}
    raw_addresses = doc.get("uplink_addresses") or {}
    if not isinstance(raw_addresses, dict):
        raise SnapshotError("'uplink_addresses' must map interface names to address lists")
    for name, addresses in raw_addresses.items():
        where = f"uplink_addresses[{name!r}]"
        if not isinstance(addresses, list):
            raise SnapshotError(f"{where} must be a list of addresses")
        v4 = [a for a in addresses if ":" not in str(a)]
        v6 = [a for a in addresses if ":" in str(a)]
        uplink_addresses[str(name)] = _interfaces(v4, 4, where) + _interfaces(v6, 6, where)
    ingress_devices = _ingress_devices(doc.get("ingress_devices"))
    try:
        routing = parse_routing(doc.get("routing"))
        restored_rules = parse_restored(doc.get("restored_rules"))
    except (RoutingError, RestoredError) as error:
        raise SnapshotError(str(error)) from None
    known = set(REQUIRED_KEYS) | set(SAVE_KEYS)
    known |= {"uplink_addresses", "ingress_devices", "routing", "restored_rules"}
    return Snapshot(
        nft=nft,
        sysctl={str(k): str(v) for k, v in sysctl.items()},
        hotspots=tuple(hotspots),
        uplinks=tuple(uplinks),
        uplink_addresses=uplink_addresses,
        ingress_devices=ingress_devices,
        routing=routing,
        restored_rules=restored_rules,
        extra={k: v for k, v in doc.items() if k not in known},
        **saves,
    )


def read_snapshot_file(path: str, max_bytes: int = MAX_FILE_BYTES) -> Snapshot:
    """Read and validate a snapshot file ("-" is standard input)."""
    try:
        if path == "-":
            import sys

            data = sys.stdin.buffer.read(max_bytes + 1)
        else:
            size = os.stat(path).st_size
            if size > max_bytes:
                raise SnapshotError(
                    f"{path} is {size / 1e6:.0f} MB; a snapshot is at most {max_bytes // 2**20} MiB"
                )
            with open(path, "rb") as handle:
                data = handle.read(max_bytes + 1)
    except FileNotFoundError:
        raise SnapshotError(f"{path}: no such file") from None
    except IsADirectoryError:
        raise SnapshotError(f"{path} is a directory, not a snapshot file") from None
    except PermissionError:
        raise SnapshotError(f"{path}: permission denied") from None
    except OSError as error:
        raise SnapshotError(f"{path}: {error.strerror or error}") from None
    if len(data) > max_bytes:
        raise SnapshotError(f"the snapshot is larger than {max_bytes // 2**20} MiB")
    try:
        text = data.decode(json.detect_encoding(data), "surrogatepass")
        del data
        with gc_paused():
            doc = loads_snapshot(text)  # the nft listing is decoded as it is parsed
    except (ValueError, RecursionError) as error:
        raise SnapshotError(f"{path} is not valid JSON ({error})") from None
    return load_snapshot(doc)
