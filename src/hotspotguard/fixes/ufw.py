"""`ufw-route`: for ufw, through ufw's own rules, so its state stays coherent and permanent:
``ufw route allow in on HS out on UPLINK`` per uplink for forwarding, ``ufw allow in on HS to
any port 67|53 proto udp|tcp`` for the host's services, and for DHCPv6 (only where the engine
sees it dropped) ``from fe80::/10``.  ufw's own before-rules already pass replies and the ICMPv6
router and neighbour discovery.  Pure: nothing here runs ufw."""

from __future__ import annotations

from dataclasses import replace

from hotspotguard.fixes.plan import UfwChange
from hotspotguard.ruleset import Hotspot, Ruleset, Snapshot
from hotspotguard.ruleset.iptables import parse_rule_line
from hotspotguard.ruleset.model import Table
from hotspotguard.verdict import HotspotVerdict, evaluate
from hotspotguard.wording import Reason

SOURCES = ("iptables-nft", "iptables-legacy")
FORWARD = ("outbound", "reply", "outbound6", "reply6")
PORTS: dict[str, tuple[tuple[str, str], ...]] = {
    "dhcp": (("67", "udp"),),
    "dns": (("53", "udp"), ("53", "tcp")),
    "dns6": (("53", "udp"), ("53", "tcp")),
}
DHCP6 = "from fe80::/10 to any port 547 proto udp"


class UfwUnavailable(Exception):
    """ufw is not what drops here, or not active; one line."""


def _rules_for(dropped: set[str], hotspot: Hotspot, uplinks: tuple[str, ...]) -> list[str]:
    iface = hotspot.iface
    rules = []
    if dropped & set(FORWARD):
        rules += [f"route allow in on {iface} out on {uplink}" for uplink in uplinks]
    for flow in ("dhcp", "dns", "dns6"):
        if flow in dropped:
            rules += [
                f"allow in on {iface} to any port {port} proto {proto}"
                for port, proto in PORTS[flow]
            ]
    if "dhcp6" in dropped:
        rules.append(f"allow in on {iface} {DHCP6}")
    return list(dict.fromkeys(rules))


def _specs(rule: str, version: int) -> tuple[str, str] | None:
    """The chain and iptables spec ufw writes for `rule` in the IPv4 or IPv6 table (None:
    the rule has no twin in that family)."""
    words = rule.split()
    prefix = "ufw" if version == 4 else "ufw6"
    if words[0] == "route":
        return f"{prefix}-user-forward", f"-i {words[4]} -o {words[7]} -j ACCEPT"
    iface = words[3]
    if "from" in words:
        if version == 4:
            return None
        source = words[words.index("from") + 1]
        port, proto = words[words.index("port") + 1], words[words.index("proto") + 1]
        spec = f"-s {source} -i {iface} -p {proto} -m {proto} --dport {port} -j ACCEPT"
        return f"{prefix}-user-input", spec
    port, proto = words[words.index("port") + 1], words[words.index("proto") + 1]
    return f"{prefix}-user-input", f"-i {iface} -p {proto} -m {proto} --dport {port} -j ACCEPT"


def _ufw_tables(ruleset: Ruleset) -> list[Table]:
    return [
        t
        for t in ruleset.tables
        if t.name == "filter"
        and t.source in SOURCES
        and any(c.name in ("ufw-user-input", "ufw6-user-input") for c in t.chains)
    ]


def _edit(ruleset: Ruleset, rules: list[str], add: bool) -> Ruleset:
    """`ruleset` with the rules ufw writes for `rules` appended to its user chains (`add`), or
    with every rule equal to one of them taken out."""
    tables = list(ruleset.tables)
    managed = _ufw_tables(ruleset)
    for position, table in enumerate(tables):
        if table not in managed:
            continue
        version = 4 if table.family == "ip" else 6
        declared = frozenset(c.name for c in table.chains)
        wanted: dict[str, list[str]] = {}
        for rule in rules:
            spec = _specs(rule, version)
            if spec is not None:
                wanted.setdefault(spec[0], []).append(spec[1])
        chains = []
        for chain in table.chains:
            specs = wanted.get(chain.name, [])
            lines = [f"-A {chain.name} {spec}" for spec in specs]
            if add:
                extra = tuple(parse_rule_line(line, version, declared) for line in lines)
                chain = replace(chain, rules=chain.rules + extra)
            elif specs:
                ours = {" ".join(line.split()) for line in lines}
                kept = tuple(r for r in chain.rules if r.text not in ours)
                chain = replace(chain, rules=kept)
            chains.append(chain)
        tables[position] = replace(table, chains=tuple(chains))
    return Ruleset(tuple(tables), ruleset.warnings)


def with_rules(ruleset: Ruleset, change: UfwChange) -> Ruleset:
    """`ruleset` as ufw leaves it after adding `change`'s rules."""
    return _edit(ruleset, list(change.rules), add=True)


def ufw_change(
    snapshot: Snapshot, ruleset: Ruleset, hotspot: Hotspot, verdict_of: VerdictOf
) -> UfwChange:
    """The ufw rules for exactly the flows ufw drops, judged on the ruleset without any of
    the rules this strategy would add (so it plans the same while they are in place)."""
    if not _ufw_tables(ruleset):
        raise UfwUnavailable(Reason("ufw-not-active"))
    every = _rules_for({"outbound", "dhcp", "dns", "dns6", "dhcp6"}, hotspot, snapshot.uplinks)
    bare = _edit(ruleset, every, add=False)
    verdict = verdict_of(snapshot, bare, hotspot.iface)
    dropped = {
        name
        for name, result in verdict.flows.items()
        if result.verdict == "drop"
        and result.dropped_by is not None
        and result.dropped_by.owner == "ufw"
    }
    if dropped & set(FORWARD) and not snapshot.uplinks:
        raise UfwUnavailable(Reason("no-uplink-route"))
    rules = _rules_for(dropped, hotspot, snapshot.uplinks)
    if not rules:
        raise UfwUnavailable(Reason("ufw-drops-nothing"))
    return UfwChange(tuple(rules))


class VerdictOf:
    """The engine's verdict for one hotspot (a callable, so this module needs no strategies)."""

    def __call__(self, snapshot: Snapshot, ruleset: Ruleset, iface: str) -> HotspotVerdict:
        only = replace(snapshot, hotspots=tuple(h for h in snapshot.hotspots if h.iface == iface))
        return evaluate(only, ruleset).hotspots[0]
