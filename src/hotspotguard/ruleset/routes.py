"""The routing tables of one address family, as the snapshot carries them (optional): what
`fib` expressions and `-m rpfilter` look up.

The input is iproute2's JSON (`ip -j -4 route show table all`, `ip -j -4 rule show`; the same
for `-6`), so a snapshot can be written by hand or by another tool. A lookup follows the policy
rules only where they are plain (each sends every packet to one table, as the kernel's default
local/main/default rules do); rules that select by mark, interface or address make a lookup
undecidable, and the engine says `unknown`.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Mapping
from dataclasses import dataclass
from functools import cached_property
from typing import Final, Literal

from hotspotguard.ruleset.model import IPAddress, IPNetwork

# the route types whose lookup fails (fib_props' errors; ip6's RTF_REJECT), and "throw",
# which sends the lookup on to the next rule
FAILING_TYPES = frozenset({"blackhole", "unreachable", "prohibit"})
# the keys a plain policy rule may have: one that sends every packet to a table
PLAIN_RULE_KEYS = frozenset({"priority", "src", "table", "protocol", "flags"})
MAX_ROUTES = 100_000
#: why a family's lookups cannot be made (`Routing.undecidable`; the verdict's reason codes)
Undecidable = Literal["routes-policy-rules", "routes-too-many"]
POLICY_RULES: Final = "routes-policy-rules"  # rules select packets by mark, interface, address
TOO_MANY_ROUTES: Final = "routes-too-many"  # more than MAX_ROUTES: not read


class RoutingError(ValueError):
    """Routes or rules that are not iproute2's JSON; the message is one line for a person."""


@dataclass(frozen=True, slots=True)
class Route:
    network: IPNetwork
    type: str  # unicast, local, broadcast, multicast, anycast, blackhole, throw, ...
    devices: tuple[str, ...]  # the nexthops' devices, the first one first
    table: str
    metric: int = 0


class _Undecided:
    """A lookup whose result the snapshot cannot decide (policy rules, a choice the kernel
    makes by hash or by source address)."""


UNDECIDED = _Undecided()
LookupResult = Route | None | _Undecided


@dataclass(frozen=True, eq=False)
class Routing:
    """One family's routes (all tables) and policy rules; compared by identity, as packets
    carry it. `undecidable` says why its lookups cannot be made, if they cannot: a reason
    code (`POLICY_RULES`, `TOO_MANY_ROUTES`), worded by hotspotguard.wording."""

    family: Literal["ip", "ip6"]
    routes: tuple[Route, ...]
    tables: tuple[str, ...] | None  # the tables plain rules visit, in order; None: not plain
    undecidable: Undecidable | None = None

    @cached_property
    def _index(self) -> dict[str, list[tuple[int, dict[int, list[Route]]]]]:
        """Per table, its routes by prefix length (longest first) and network."""
        tables: dict[str, dict[int, dict[int, list[Route]]]] = {}
        for route in self.routes:
            by_length = tables.setdefault(route.table, {})
            network = route.network
            by_length.setdefault(network.prefixlen, {}).setdefault(
                int(network.network_address), []
            ).append(route)
        return {
            table: sorted(by_length.items(), reverse=True) for table, by_length in tables.items()
        }

    def lookup(
        self, address: IPAddress, device: str | None = None, *, strict: bool = False
    ) -> LookupResult:
        """The route the kernel's lookup of `address` finds. With `device`, a route through it
        is preferred among the best prefix's routes (ip6's rt6_device_match); `strict`
        considers only routes through it (RT6_LOOKUP_F_IFACE)."""
        if self.tables is None or self.undecidable:
            return UNDECIDED
        value, bits = int(address), address.max_prefixlen
        for table in self.tables:
            for length, networks in self._index.get(table, ()):
                shift = bits - length
                best = networks.get(value >> shift << shift, [])
                if strict:
                    best = [route for route in best if device in route.devices]
                if not best:
                    continue
                chosen = self._choose(sorted(best, key=lambda r: r.metric), device)
                if isinstance(chosen, Route) and chosen.type == "throw":
                    break  # on to the next rule's table
                return chosen
        return None

    def _choose(self, routes: list[Route], device: str | None) -> Route | _Undecided:
        if self.family == "ip":
            return routes[0]  # the lowest metric (fib_table_lookup's first alias)
        if device is not None:
            for route in routes:
                if device in route.devices:
                    return route
            return routes[0]
        if len({r.devices for r in routes}) > 1 or len(routes[0].devices) > 1:
            # rt6_device_match picks by the source address's device, fib6_select_path by hash
            return UNDECIDED
        return routes[0]


def _network(dst: object, family: str) -> IPNetwork:
    if dst == "default":
        return ipaddress.ip_network("0.0.0.0/0" if family == "ip" else "::/0")
    if not isinstance(dst, str):
        raise RoutingError(f"a route's dst must be text, not {dst!r}")
    try:
        network = ipaddress.ip_network(dst, strict=False)
    except ValueError:
        raise RoutingError(f"{dst!r} is not a route destination") from None
    if network.version != (4 if family == "ip" else 6):
        raise RoutingError(f"{dst!r} is not an {family} destination")
    return network


def _route(raw: object, family: str) -> Route:
    if not isinstance(raw, Mapping):
        raise RoutingError("each route must be an object as `ip -j route` prints it")
    hops = raw.get("nexthops")
    if isinstance(hops, list):
        devices = tuple(str(h["dev"]) for h in hops if isinstance(h, Mapping) and "dev" in h)
    else:
        devices = (str(raw["dev"]),) if isinstance(raw.get("dev"), str) else ()
    metric = raw.get("metric", 0)
    return Route(
        network=_network(raw.get("dst"), family),
        type=str(raw.get("type", "unicast")),
        devices=devices,
        table=str(raw.get("table", "main")),
        metric=metric if isinstance(metric, int) else 0,
    )


def _plain_tables(rules: object) -> tuple[str, ...] | None:
    """The tables plain rules visit in priority order; None where a rule selects packets."""
    if not isinstance(rules, list):
        raise RoutingError("'rules' must be the list `ip -j rule show` prints")
    ordered = sorted(
        (r for r in rules if isinstance(r, Mapping)), key=lambda r: int(r.get("priority", 0))
    )
    if len(ordered) != len(rules):
        raise RoutingError("each rule must be an object as `ip -j rule show` prints it")
    tables = []
    for rule in ordered:
        if set(rule) - PLAIN_RULE_KEYS or rule.get("src", "all") != "all" or "table" not in rule:
            return None
        if rule.get("flags"):  # "not" and the like
            return None
        tables.append(str(rule["table"]))
    return tuple(tables)


def parse_routing(raw: object) -> dict[str, Routing]:
    """`{"ip": {"routes": [...], "rules": [...]}, "ip6": {...}}`, validated."""
    if raw is None:
        return {}
    if not isinstance(raw, Mapping):
        raise RoutingError("'routing' must map ip/ip6 to their routes and rules")
    result: dict[str, Routing] = {}
    for family, body in raw.items():
        if family not in {"ip", "ip6"}:
            raise RoutingError(f"'routing' has the family {family!r} (known: ip, ip6)")
        if not isinstance(body, Mapping) or not isinstance(body.get("routes"), list):
            raise RoutingError(f"routing[{family!r}] needs a 'routes' list and a 'rules' list")
        routes = body["routes"]
        if len(routes) > MAX_ROUTES:  # a full internet table: not read, its lookups unknown
            result[family] = Routing(family, (), None, TOO_MANY_ROUTES)
            continue
        tables = _plain_tables(body.get("rules"))
        policy: Undecidable | None = None if tables is not None else POLICY_RULES
        result[family] = Routing(family, tuple(_route(r, family) for r in routes), tables, policy)
    return result
