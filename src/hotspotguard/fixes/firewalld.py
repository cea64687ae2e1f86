"""`firewalld-zone`: put the hotspot's interface into firewalld's ``nm-shared`` zone (``trusted``
where there is none), through firewalld's own D-Bus API, now and in its permanent configuration.

firewalld sends each packet to a zone by the interface it came in on (``inet firewalld``'s
``*_ZONES`` chains: ``iifname "wlan0" goto filter_IN_public``; an interface of no zone falls to
the default zone's catch-all ``goto``).  `with_zone` makes that move in memory so the engine can
judge the plan before anything changes: the dispatch rules of the interface point at the new
zone's chains — firewalld's own where the zone is active already, else chains modelled from the
zone's settings (its target, the ports of its services and its own, its protocols, and a
catch-all reject rich rule such as nm-shared's).  What firewalld really builds is judged again
after the runtime change, before the permanent one (usecases/firewalld_zone.py).  Pure."""

from __future__ import annotations

import json
from dataclasses import dataclass, replace

from hotspotguard.fixes.plan import ZoneChange
from hotspotguard.ruleset import Hotspot, Ruleset
from hotspotguard.ruleset.model import Chain, Rule, Table, Verdict
from hotspotguard.ruleset.nft import parse_rule_exprs
from hotspotguard.wording import Reason

TARGETS = ("nm-shared", "trusted")
TABLE = ("inet", "firewalld")
CATCH_ALL_REJECT = 'rule priority="32767" reject'


class FirewalldUnavailable(Exception):
    """The strategy does not apply here (one line)."""


@dataclass(frozen=True)
class ZoneFacts:
    """A zone's settings, as firewalld's `getZoneSettings2` gives them (ports: its services'
    and its own, as (port, protocol)); `default`: firewalld's built-in settings, unchanged (no
    copy of the zone in /etc/firewalld)."""

    name: str
    target: str
    ports: tuple[tuple[str, str], ...] = ()
    protocols: tuple[str, ...] = ()
    rich_rules: tuple[str, ...] = ()
    default: bool = True


@dataclass(frozen=True)
class FirewalldFacts:
    """firewalld as the planner needs it (None in `HostFacts`: not running)."""

    zones: tuple[str, ...]
    default_zone: str
    runtime: tuple[tuple[str, str], ...]  # (iface, zone or "")
    permanent: tuple[tuple[str, str], ...]
    targets: tuple[ZoneFacts, ...]  # the settings of the zones a plan may use (TARGETS)

    def runtime_zone(self, iface: str) -> str:
        return dict(self.runtime).get(iface, "")

    def permanent_zone(self, iface: str) -> str:
        return dict(self.permanent).get(iface, "")


def firewalld_table(ruleset: Ruleset) -> Table | None:
    return next((t for t in ruleset.tables if (t.family, t.name) == TABLE), None)


def zone_changes(hotspot: Hotspot, facts: FirewalldFacts | None) -> list[ZoneChange]:
    """The moves of `hotspot` into nm-shared, then trusted (those firewalld has), from the
    zones it is in now."""
    if facts is None:
        raise FirewalldUnavailable(Reason("firewalld-not-running"))
    if not facts.targets:
        raise FirewalldUnavailable(Reason("firewalld-no-zone", zones=list(facts.zones)))
    return [
        ZoneChange(
            hotspot.iface,
            zone.name,
            facts.runtime_zone(hotspot.iface),
            facts.permanent_zone(hotspot.iface),
            facts.default_zone,
            zone.default,
            settings=zone,
        )
        for zone in facts.targets
    ]


# --- in memory -----------------------------------------------------------------------------


def _rule(exprs: list[object], text: str) -> Rule:
    return Rule(parse_rule_exprs(json.loads(json.dumps(exprs))), text)


def _iface_match(key: str, iface: str) -> dict[str, object]:
    return {"match": {"op": "==", "left": {"meta": {"key": key}}, "right": iface}}


def _dispatch(key: str, iface: str, target: str) -> Rule:
    return _rule([_iface_match(key, iface), {"goto": {"target": target}}],
                 f'{key} "{iface}" goto {target}')  # fmt: skip


def _goto(rule: Rule) -> str | None:
    last = rule.exprs[-1] if rule.exprs else None
    return last.target if isinstance(last, Verdict) and last.kind == "goto" else None


def _zone_chain_prefix(chain: Chain, default_zone: str) -> str | None:
    """`filter_IN_` for filter_INPUT_ZONES: from its catch-all goto to the default zone."""
    for rule in reversed(chain.rules):
        target = _goto(rule)
        if len(rule.exprs) == 1 and target and target.endswith("_" + default_zone):
            return target[: -len(default_zone)]
    return None


def _model_chain(name: str, hook_prefix: str, table: Table, zone: ZoneFacts) -> Chain:
    """A zone's chain as firewalld builds it for `zone`'s settings: the policies' chains it
    jumps to, and for the input and forward hooks what the zone lets through and its target."""
    rules: list[Rule] = []
    pre, post = f"{hook_prefix}_POLICIES_pre", f"{hook_prefix}_POLICIES_post"
    if table.chain(pre) is not None:
        rules.append(_rule([{"jump": {"target": pre}}], f"jump {pre}"))
    if name.startswith("filter_IN_"):
        for port, proto in zone.ports:
            low, _, high = port.partition("-")
            right: object = {"range": [int(low), int(high)]} if high else int(low)
            rules.append(_rule(
                [{"match": {"op": "==", "left": {"meta": {"key": "l4proto"}}, "right": proto}},
                 {"match": {"op": "==", "left": {"payload": {"protocol": proto, "field": "dport"}},
                            "right": right}},
                 {"accept": None}],
                f"{proto} dport {port} accept",
            ))  # fmt: skip
        for proto in zone.protocols:
            rules.append(_rule(
                [{"match": {"op": "==", "left": {"meta": {"key": "l4proto"}}, "right": proto}},
                 {"accept": None}],
                f"meta l4proto {proto} accept",
            ))  # fmt: skip
        if any(" ".join(r.split()) == CATCH_ALL_REJECT for r in zone.rich_rules):
            rules.append(_rule([{"reject": None}], "reject"))
    if table.chain(post) is not None:
        rules.append(_rule([{"jump": {"target": post}}], f"jump {post}"))
    if name.startswith(("filter_IN_", "filter_FWD_")):
        verdict = {"ACCEPT": "accept", "DROP": "drop", "REJECT": "reject", "%%REJECT%%": "reject"}
        kind = verdict.get(zone.target)
        if kind is None and name.startswith("filter_IN_"):
            kind = "reject"  # the default target, on input
        if kind is not None:
            rules.append(_rule([{kind: None}], kind))
    return Chain(name, tuple(rules))


HOOK_PREFIX = {
    "filter_IN_": "filter_INPUT",
    "filter_FWD_": "filter_FORWARD",
    "mangle_PRE_": "mangle_PREROUTING",
    "nat_PRE_": "nat_PREROUTING",
    "nat_POST_": "nat_POSTROUTING",
}


def with_zone(ruleset: Ruleset, change: ZoneChange) -> Ruleset:
    """`ruleset` as firewalld leaves it once `change.iface` is in `change.zone`."""
    target = change.settings
    table = firewalld_table(ruleset)
    if table is None:
        return ruleset
    chains = list(table.chains)
    extra: list[Chain] = []
    for position, chain in enumerate(chains):
        if not chain.name.endswith("_ZONES"):
            continue
        prefix = _zone_chain_prefix(chain, change.default_zone)
        if prefix is None:
            continue
        key = "oifname" if "POSTROUTING" in chain.name else "iifname"
        mine = _dispatch(key, change.iface, "x").exprs[0]
        rules = list(chain.rules)
        at = next((i for i, r in enumerate(rules) if r.exprs and r.exprs[0] == mine), None)
        if at is not None:
            del rules[at]
        else:  # after the sources' rules, before the interfaces' and the catch-all
            at = next(
                (i for i, r in enumerate(rules)
                 if len(r.exprs) == 1 or (r.exprs and getattr(r.exprs[0], "left", None)
                                          == getattr(mine, "left", None))),
                len(rules),
            )  # fmt: skip
        name = prefix + change.zone
        rules.insert(at, _dispatch(key, change.iface, name))
        chains[position] = replace(chain, rules=tuple(rules))
        if table.chain(name) is None and all(c.name != name for c in extra):
            if target is None:
                raise FirewalldUnavailable(Reason("firewalld-zone-unknown", zone=change.zone))
            extra.append(_model_chain(name, HOOK_PREFIX.get(prefix, prefix), table, target))
    new_table = replace(table, chains=tuple(chains) + tuple(extra))
    return Ruleset(tuple(new_table if t is table else t for t in ruleset.tables), ruleset.warnings)
