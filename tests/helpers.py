"""Building snapshot documents for tests from real captures and small rulesets."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

DATA = Path(__file__).parent / "data"
NM_LAB = DATA / "nm-lab"


def document(
    nft: dict[str, Any] | None = None,
    *,
    iface: str = "hs0",
    ipv4: tuple[str, ...] = ("10.42.0.1/24",),
    ipv6: tuple[str, ...] = (),
    uplinks: tuple[str, ...] = ("up0",),
    forwarding: str = "1",
    **extra: Any,
) -> dict[str, Any]:
    return {
        "format": "hotspotguard-snapshot/1",
        "nft": nft if nft is not None else {"nftables": []},
        "sysctl": {"net.ipv4.ip_forward": forwarding, "net.ipv6.conf.all.forwarding": forwarding},
        "hotspots": [{"iface": iface, "ipv4": list(ipv4), "ipv6": list(ipv6)}],
        "uplinks": list(uplinks),
        **extra,
    }


def nm_lab(name: str) -> dict[str, Any]:
    loaded: dict[str, Any] = json.loads((NM_LAB / name).read_text())
    return loaded


def nft_doc(*items: dict[str, Any]) -> dict[str, Any]:
    """An `nft -j` document from table/chain/rule items (family ip unless given)."""
    return {"nftables": list(items)}


def table(name: str, family: str = "ip") -> dict[str, Any]:
    return {"table": {"family": family, "name": name}}


def chain(
    table_name: str,
    name: str,
    hook: str | None = None,
    *,
    prio: int = 0,
    policy: str = "accept",
    family: str = "ip",
    type: str = "filter",
    dev: str | None = None,
) -> dict[str, Any]:
    body: dict[str, Any] = {"family": family, "table": table_name, "name": name}
    if hook:
        body.update(type=type, hook=hook, prio=prio, policy=policy)
        if dev:
            body["dev"] = dev
    return {"chain": body}


def rule(
    table_name: str, chain_name: str, *expr: dict[str, Any], family: str = "ip"
) -> dict[str, Any]:
    return {
        "rule": {"family": family, "table": table_name, "chain": chain_name, "expr": list(expr)}
    }


def match(left: dict[str, Any], right: Any, op: str = "==") -> dict[str, Any]:
    return {"match": {"op": op, "left": left, "right": right}}


def meta(key: str) -> dict[str, Any]:
    return {"meta": {"key": key}}


def payload(protocol: str, field: str) -> dict[str, Any]:
    return {"payload": {"protocol": protocol, "field": field}}


ACCEPT: dict[str, Any] = {"accept": None}
DROP: dict[str, Any] = {"drop": None}


def jump(target: str) -> dict[str, Any]:
    return {"jump": {"target": target}}


def goto(target: str) -> dict[str, Any]:
    return {"goto": {"target": target}}


def accepting(path: Path) -> bool:
    """A Unix socket that takes connections (its file appears before the daemon listens)."""
    import socket as sockets

    if not path.exists():
        return False
    with sockets.socket(sockets.AF_UNIX, sockets.SOCK_STREAM) as probe:
        try:
            probe.connect(str(path))
        except OSError:
            return False
    return True


class SnapshotHotspots:
    """A hotspot source for `watch.assess`: the snapshot's own hotspots (NetworkManager's list
    left to the capture), or `status`, a failure to report."""

    def __init__(self, status: str | None = None) -> None:
        self._status = status

    def hotspots(self) -> None:
        return None

    @property
    def status(self) -> str | None:
        return self._status

    @property
    def ready(self) -> bool:
        return True

    def start(self, on_change: Any) -> None:
        pass

    def close(self) -> None:
        pass
