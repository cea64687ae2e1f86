"""`forward-allow` and `input-allow`: tagged accepts in another program's chain, immediately
before the rule that drops the hotspot (or at the chain's end, before a dropping policy), for
exactly the flows that die there, in that table's own family and tool.

The site is the one the engine names (the chain and rule of each dropped flow); the planner
repeats until the engine finds no further site of its kind, so a second table that drops what
the first one now accepts gets its own accepts.  Pure: nothing here touches the machine.
"""

from __future__ import annotations

import ipaddress
import json
from dataclasses import dataclass, replace
from typing import Any

from hotspotguard.fixes.plan import ChainInsert, Tool
from hotspotguard.ruleset import Hotspot, Ruleset, Snapshot
from hotspotguard.ruleset.iptables import parse_rule_line
from hotspotguard.ruleset.model import Rule, Table
from hotspotguard.ruleset.nft import parse_rule_exprs
from hotspotguard.ruleset.render import rule_text
from hotspotguard.verdict import FlowResult, evaluate
from hotspotguard.wording import Reason

FORWARD = ("outbound", "reply", "outbound6", "reply6")
INPUT = ("dhcp", "dns", "dhcp6", "dns6")
MAX_ROUNDS = 8
TOOLS: dict[str, Tool] = {
    "nft": "nft",
    "iptables-nft": "iptables-nft",
    "iptables-legacy": "iptables-legacy",
}
ND_TYPES = (("nd-router-solicit", 133), ("nd-neighbor-solicit", 135), ("nd-neighbor-advert", 136))


class AllowUnavailable(Exception):
    """No site of this kind, or one this strategy cannot edit; the message is one line."""


@dataclass(frozen=True)
class DropSite:
    """Where a flow dies: a rule (`index` in `chain`) or the chain's policy (`index` -1)."""

    family: str
    table: str
    source: str
    chain: str
    index: int


def drop_site(result: FlowResult) -> DropSite | None:
    """The chain and rule the engine says dropped `result`'s packet (None: not a table's)."""
    drop = result.dropped_by
    if result.verdict != "drop" or drop is None or drop.table is None or drop.chain is None:
        return None
    for visit in reversed(result.visits):
        if (visit.family, visit.table) != (drop.family, drop.table) or visit.verdict != "drop":
            continue
        index = -1
        for step in reversed(visit.steps):
            if step.chain == drop.chain:
                index = step.index
                break
        return DropSite(visit.family, visit.table, visit.source, drop.chain, max(index, -1))
    return None


# --- the rules, for nft (text and JSON from one description) and for iptables ------------


@dataclass(frozen=True)
class _Accept:
    """One accept rule, described once: rendered as nft text, nft JSON and an iptables spec."""

    version: int
    iif: str
    oif: str = ""
    saddr: str = ""
    daddr: str = ""
    proto: str = ""  # udp, tcp, icmpv6
    dport: int | None = None
    icmpv6: tuple[tuple[str, int], ...] = ()
    replies: bool = False

    def nft(self, family: str) -> tuple[str, list[Any]]:
        text: list[str] = []
        exprs: list[Any] = []

        def match(left: Any, right: Any, shown: str, op: str = "==") -> None:
            text.append(shown)
            exprs.append({"match": {"op": op, "left": left, "right": right}})

        def meta(key: str) -> dict[str, Any]:
            return {"meta": {"key": key}}

        def payload(protocol: str, field: str) -> dict[str, Any]:
            return {"payload": {"protocol": protocol, "field": field}}

        ip = "ip" if self.version == 4 else "ip6"
        match(meta("iifname"), self.iif, f'iifname "{self.iif}"')
        if self.oif:
            match(meta("oifname"), self.oif, f'oifname "{self.oif}"')
        if family == "inet" and not (self.saddr or self.daddr or self.icmpv6):
            nfproto = "ipv4" if self.version == 4 else "ipv6"
            match(meta("nfproto"), nfproto, f"meta nfproto {nfproto}")
        for field, net in (("saddr", self.saddr), ("daddr", self.daddr)):
            if net:
                network = ipaddress.ip_network(net)
                address = str(network.network_address)
                prefix = {"prefix": {"addr": address, "len": network.prefixlen}}
                match(payload(ip, field), prefix, f"{ip} {field} {net}")
        if self.proto in ("udp", "tcp") and self.dport is not None:
            match(payload(self.proto, "dport"), self.dport, f"{self.proto} dport {self.dport}")
        if self.icmpv6:
            names = [name for name, _ in self.icmpv6]
            match(
                payload("icmpv6", "type"),
                {"set": names},
                "icmpv6 type { " + ", ".join(names) + " }",
            )
        if self.replies:
            states = ["established", "related"]
            match({"ct": {"key": "state"}}, states, "ct state established,related", "in")
        exprs.append({"accept": None})
        return " ".join([*text, "accept"]), exprs

    def iptables(self, fix_tag: str) -> list[str]:
        """The specs, each in iptables-save's canonical order (so the save reads back equal)."""
        head: list[str] = []
        if self.saddr:
            head += ["-s", self.saddr]
        if self.daddr:
            head += ["-d", self.daddr]
        head += ["-i", self.iif]
        if self.oif:
            head += ["-o", self.oif]
        comment = f'-m comment --comment "{fix_tag}" -j ACCEPT'
        if self.icmpv6:
            base = " ".join(head)
            return [
                f"{base} -p ipv6-icmp -m icmp6 --icmpv6-type {number} {comment}"
                for _, number in self.icmpv6
            ]
        if self.proto:
            head += ["-p", self.proto, "-m", self.proto, "--dport", str(self.dport)]
        if self.replies:
            head += ["-m", "conntrack", "--ctstate", "RELATED,ESTABLISHED"]
        return [" ".join(head) + " " + comment]


def _networks(hotspot: Hotspot, version: int) -> list[str]:
    addresses = hotspot.ipv4 if version == 4 else hotspot.ipv6
    nets = [a.network for a in addresses if not a.ip.is_link_local]
    return [str(n) for n in dict.fromkeys(nets)]


def _accepts(flow: str, hotspot: Hotspot, uplinks: tuple[str, ...]) -> list[_Accept]:
    """The accepts that let exactly `flow` (and its kind: DNS over TCP too) through."""
    version = 6 if flow.endswith("6") else 4
    kind = flow.rstrip("6")
    iface = hotspot.iface
    nets = _networks(hotspot, version)
    if kind == "outbound":
        return [_Accept(version, iface, up, saddr=net) for net in nets for up in uplinks]
    if kind == "reply":
        return [
            _Accept(version, up, iface, daddr=net, replies=True) for net in nets for up in uplinks
        ]
    if kind == "dns":
        return [
            _Accept(version, iface, saddr=net, proto=proto, dport=53)
            for net in nets
            for proto in ("udp", "tcp")
        ]
    if kind == "dhcp" and version == 4:
        return [_Accept(4, iface, proto="udp", dport=67)]
    if kind == "dhcp":
        # DHCPv6 from the client's link-local address, and the router and neighbour
        # discovery SLAAC needs (the engine has no flow for it; it dies where DHCPv6 does)
        return [
            _Accept(6, iface, saddr="fe80::/10", proto="udp", dport=547),
            _Accept(6, iface, icmpv6=ND_TYPES),
        ]
    return []


def _table(ruleset: Ruleset, site: DropSite) -> Table:
    for table in ruleset.tables:
        if (table.family, table.name, table.source) == (site.family, site.table, site.source):
            return table
    raise AllowUnavailable(Reason("allow-table-missing", family=site.family, table=site.table))


def _change(
    ruleset: Ruleset,
    site: DropSite,
    flows: list[str],
    hotspot: Hotspot,
    uplinks: tuple[str, ...],
    fix_tag: str,
) -> ChainInsert:
    tool = TOOLS.get(site.source)
    if tool is None or site.family not in ("ip", "ip6", "inet"):
        raise AllowUnavailable(
            Reason("allow-other-source", family=site.family, table=site.table, source=site.source)
        )
    table = _table(ruleset, site)
    chain = table.chain(site.chain)
    if chain is None:
        raise AllowUnavailable(
            Reason("allow-chain-missing", family=site.family, table=site.table, chain=site.chain)
        )
    accepts = [a for flow in flows for a in _accepts(flow, hotspot, uplinks)]
    accepts = list(dict.fromkeys(accepts))
    if not accepts:
        raise AllowUnavailable(Reason("allow-no-address", flows=list(flows)))
    anchor = rule_text(chain.rules[site.index]) if site.index >= 0 else ""
    if tool == "nft":
        rendered = [a.nft(site.family) for a in accepts]
        before = chain.rules[site.index].handle if site.index >= 0 else None
        if site.index >= 0 and before is None:
            raise AllowUnavailable(Reason("allow-no-handle", rule=repr(anchor)))
        return ChainInsert(
            tool,
            site.family,
            site.table,
            site.chain,
            before,
            anchor,
            tuple(f'{text} comment "{fix_tag}"' for text, _ in rendered),
            tuple(json.dumps(exprs) for _, exprs in rendered),
        )
    specs = tuple(spec for a in accepts for spec in a.iptables(fix_tag))
    before = site.index + 1 if site.index >= 0 else None
    return ChainInsert(tool, site.family, site.table, site.chain, before, anchor, specs)


def insert_in_memory(ruleset: Ruleset, change: ChainInsert, fix_tag: str) -> Ruleset:
    """`ruleset` with `change`'s rules (which carry `fix_tag`) in place."""
    source = change.tool
    tables = list(ruleset.tables)
    for position, table in enumerate(tables):
        if (table.family, table.name, table.source) != (change.family, change.table, source):
            continue
        chain = table.chain(change.chain)
        if chain is None:
            break
        if change.tool == "nft":
            added = tuple(
                Rule(parse_rule_exprs(json.loads(exprs)), "", None, fix_tag)
                for exprs in change.exprs
            )
            handles = [rule.handle for rule in chain.rules]
            at = handles.index(change.before) if change.before in handles else len(chain.rules)
        else:
            declared = frozenset(c.name for c in table.chains)
            added = tuple(
                parse_rule_line(f"-A {change.chain} {spec}", change.version, declared)
                for spec in change.rules
            )
            at = change.before - 1 if change.before is not None else len(chain.rules)
        rules = chain.rules[:at] + added + chain.rules[at:]
        chains = tuple(
            replace(c, rules=rules) if c.name == change.chain else c for c in table.chains
        )
        tables[position] = replace(table, chains=chains)
        return Ruleset(tuple(tables), ruleset.warnings)
    raise AllowUnavailable(
        Reason("chain-missing", family=change.family, table=change.table, chain=change.chain)
    )


def without_tag(ruleset: Ruleset, fix_tag: str) -> Ruleset:
    """`ruleset` without the rules that carry `fix_tag`: the chains as a plan of that fix sees
    them (so planning again while the fix is in place gives the same plan).  The same object
    when no rule carries it, so the engine's indexes of `ruleset` are used again."""
    if not any(r.comment == fix_tag for t in ruleset.tables for c in t.chains for r in c.rules):
        return ruleset
    tables = []
    for table in ruleset.tables:
        chains = tuple(
            replace(chain, rules=tuple(r for r in chain.rules if r.comment != fix_tag))
            if any(r.comment == fix_tag for r in chain.rules)
            else chain
            for chain in table.chains
        )
        tables.append(replace(table, chains=chains) if chains != table.chains else table)
    return Ruleset(tuple(tables), ruleset.warnings)


def plan_allow(
    snapshot: Snapshot, ruleset: Ruleset, hotspot: Hotspot, flows: tuple[str, ...], fix_tag: str
) -> tuple[ChainInsert, ...]:
    """The inserts that get `flows` past every table that drops them (as far as the engine
    sees; `verify` then checks the whole hotspot).  `ruleset` is without this fix's rules."""
    if not snapshot.uplinks and flows == FORWARD:
        raise AllowUnavailable(Reason("no-uplink"))
    only = replace(snapshot, hotspots=(hotspot,))
    sites: dict[DropSite, list[str]] = {}
    changes: tuple[ChainInsert, ...] = ()
    for _ in range(MAX_ROUNDS):
        current = ruleset
        for change in changes:
            current = insert_in_memory(current, change, fix_tag)
        verdict = evaluate(only, current).hotspots[0]
        found = False
        for name in flows:
            result = verdict.flows.get(name)
            site = drop_site(result) if result is not None else None
            if site is None or name in sites.get(site, []):
                continue
            sites.setdefault(site, []).append(name)
            found = True
        if not found:
            break
        # within a chain the later site first: an iptables insert then leaves the positions
        # of the earlier ones as planned
        order = sorted(sites, key=lambda s: (s.family, s.table, s.source, s.chain, -s.index))
        changes = tuple(
            _change(ruleset, site, sites[site], hotspot, snapshot.uplinks, fix_tag)
            for site in order
        )
    if not changes:
        kind = "forward" if flows == FORWARD else "input"
        raise AllowUnavailable(Reason("allow-none-dropped", kind=kind))
    return changes
