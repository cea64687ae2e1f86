"""Fix strategies: from a snapshot and its ruleset to a `Plan`, verified by the engine.

A plan is offered only if the engine, run on the ruleset with the plan applied in memory,
says the hotspot comes out ``ok`` (`verify`).  Nothing here touches the machine.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass, replace
from typing import Protocol

from hotspotguard.fixes import STRATEGIES, candidate_fixes, remedies
from hotspotguard.fixes.allow import (
    FORWARD,
    INPUT,
    AllowUnavailable,
    insert_in_memory,
    plan_allow,
    without_tag,
)
from hotspotguard.fixes.docker import (
    DockerUnavailable,
    no_drop_changes,
    reset_in_memory,
    stale_drop_changes,
)
from hotspotguard.fixes.firewalld import (
    FirewalldUnavailable,
    firewalld_table,
    with_zone,
    zone_changes,
)
from hotspotguard.fixes.netns import (
    HOST_LINK,
    NS_LINK,
    TABLE,
    NetnsUnavailable,
    netns_changes,
    without_tables,
)
from hotspotguard.fixes.plan import (
    SOURCE_VARIANT,
    ChainInsert,
    ChainReset,
    Change,
    DropIn,
    FileChange,
    HostFacts,
    NftTable,
    NftTableRemoved,
    Plan,
    RuleChange,
    SysctlChange,
    UfwChange,
    ZoneChange,
    tag,
)
from hotspotguard.fixes.ufw import UfwUnavailable, VerdictOf, ufw_change, with_rules
from hotspotguard.ruleset import Hotspot, Ruleset, Snapshot
from hotspotguard.ruleset.iptables import parse_rule_line
from hotspotguard.ruleset.model import Table
from hotspotguard.ruleset.owners import chain_owner, display_owner
from hotspotguard.verdict import HotspotVerdict, evaluate
from hotspotguard.verdict.report import summary, summary_facts
from hotspotguard.wording import Reason, reason_fields, reason_of

DOCKER_USER = "DOCKER-USER"
PROPAGATES = {
    "net.ipv4.ip_forward": "net.ipv4.conf.",
    "net.ipv6.conf.all.forwarding": "net.ipv6.conf.",
}


class FixUnavailable(Exception):
    """The strategy cannot be planned (or would not work) here; the message is one line."""


@dataclass(frozen=True)
class Verification:
    """The engine's verdict for the hotspot before and after the plan (applied in memory)."""

    before: HotspotVerdict
    after: HotspotVerdict

    @property
    def works(self) -> bool:
        return self.after.verdict == "ok"


def _hotspot(snapshot: Snapshot, iface: str) -> Hotspot:
    for hotspot in snapshot.hotspots:
        if hotspot.iface == iface:
            return hotspot
    raise FixUnavailable(Reason("not-a-hotspot", iface=iface))


def _docker_user_table(ruleset: Ruleset, family: str) -> Table | None:
    for table in ruleset.tables:
        if (
            table.family == family
            and table.name == "filter"
            and table.source in SOURCE_VARIANT
            and table.chain(DOCKER_USER) is not None
        ):
            return table
    return None


def _networks(
    addresses: tuple[ipaddress.IPv4Interface | ipaddress.IPv6Interface, ...],
) -> list[str]:
    nets = [a.network for a in addresses if not a.ip.is_link_local]
    return [str(n) for n in dict.fromkeys(nets)]


def _docker_user_rules(
    hotspot: Hotspot, uplinks: tuple[str, ...], fix_tag: str, version: int
) -> tuple[str, ...]:
    """Accept new traffic from the hotspot's subnet to each uplink, and only the replies back
    (in iptables-save's canonical order, so the save text reads back the same)."""
    nets = _networks(hotspot.ipv4 if version == 4 else hotspot.ipv6)
    comment = f'-m comment --comment "{fix_tag}"'
    rules: list[str] = []
    for net in nets:
        for uplink in uplinks:
            rules.append(f"-s {net} -i {hotspot.iface} -o {uplink} {comment} -j ACCEPT")
            rules.append(
                f"-d {net} -i {uplink} -o {hotspot.iface} -m conntrack --ctstate "
                f"RELATED,ESTABLISHED {comment} -j ACCEPT"
            )
    return tuple(rules)


def _plan_docker_user(snapshot: Snapshot, ruleset: Ruleset, hotspot: Hotspot, fix_id: str) -> Plan:
    if not snapshot.uplinks:
        raise FixUnavailable(Reason("no-uplink"))
    changes: list[Change] = []
    for family, version in (("ip", 4), ("ip6", 6)):
        table = _docker_user_table(ruleset, family)
        rules = _docker_user_rules(hotspot, snapshot.uplinks, tag(fix_id), version)
        if table is None or not rules:
            continue
        variant = SOURCE_VARIANT[table.source]
        changes.append(RuleChange(variant, 4 if version == 4 else 6, "filter", DOCKER_USER, rules))
    if not changes:
        raise FixUnavailable(Reason("no-docker-user"))
    uplinks = ", ".join(snapshot.uplinks)
    return Plan(
        fix_id,
        "docker-user",
        hotspot.iface,
        f"accept {hotspot.iface}'s traffic to {uplinks} and its replies in Docker's "
        "DOCKER-USER chain",
        "least privilege: clients still cannot reach Docker's networks, and the uplink "
        "cannot open connections to them",
        tuple(changes),
    )


def _plan_sysctl_forwarding(snapshot: Snapshot, hotspot: Hotspot, fix_id: str) -> Plan:
    names = ["net.ipv4.ip_forward"]
    if hotspot.ipv6:
        names.append("net.ipv6.conf.all.forwarding")
    changes = tuple(
        SysctlChange(name, "1", snapshot.sysctl.get(name))
        for name in names
        if snapshot.sysctl.get(name) != "1"
    )
    if not changes:
        raise FixUnavailable(Reason("forwarding-already-on"))
    return Plan(
        fix_id,
        "sysctl-forwarding",
        hotspot.iface,
        "turn the kernel's packet forwarding on",
        "the host forwards between all its interfaces; the firewall's forward rules decide",
        changes,
    )


def _owners(ruleset: Ruleset, changes: tuple[ChainInsert, ...]) -> str:
    """The tables the changes edit, with who wrote them where that is known."""
    names = []
    for change in changes:
        name = f"{change.family} {change.table}"
        table = next(
            (t for t in ruleset.tables if (t.family, t.name) == (change.family, change.table)),
            None,
        )
        chain = table.chain(change.chain) if table is not None else None
        owner = chain_owner(table, chain) if table is not None and chain is not None else ""
        if owner and owner != change.table:
            name += f" ({display_owner(owner)})"
        names.append(name)
    return ", ".join(dict.fromkeys(names))


def _placement(changes: tuple[ChainInsert, ...], what: str) -> str:
    """Where the accepts go: before the dropping rule, or at the chain's end where its policy
    is what drops (`ChainInsert.before` None)."""
    at_end = {change.before is None for change in changes}
    if at_end == {False}:
        return f"just before the rule that drops {what}"
    if at_end == {True}:
        return "at the end of the chain, before its drop policy"
    return f"just before the rule that drops {what} (at the chain's end where its policy drops)"


def _plan_allow(
    snapshot: Snapshot, ruleset: Ruleset, hotspot: Hotspot, fix_id: str, strategy: str
) -> Plan:
    flows = FORWARD if strategy == "forward-allow" else INPUT
    try:
        changes = plan_allow(snapshot, ruleset, hotspot, flows, tag(fix_id))
    except AllowUnavailable as error:
        raise FixUnavailable(*error.args) from None
    where = _owners(ruleset, changes)
    if strategy == "forward-allow":
        uplinks = ", ".join(snapshot.uplinks)
        summary = (
            f"accept {hotspot.iface}'s traffic to {uplinks} and its replies "
            f"{_placement(changes, 'it')}, in {where}"
        )
    else:
        summary = (
            f"accept DHCP and DNS from {hotspot.iface} {_placement(changes, 'them')}, in {where}"
        )
    return Plan(
        fix_id,
        strategy,
        hotspot.iface,
        summary,
        f"it edits another program's table ({where}), which that program may rewrite "
        "(a permanent fix is re-applied by the dispatcher); nothing else is let through",
        changes,
    )


def _plan_docker_stale_drop(
    snapshot: Snapshot, ruleset: Ruleset, hotspot: Hotspot, fix_id: str
) -> Plan:
    try:
        changes = stale_drop_changes(ruleset)
    except DockerUnavailable as error:
        raise FixUnavailable(*error.args) from None
    return Plan(
        fix_id,
        "docker-stale-drop",
        hotspot.iface,
        "clear what Docker's old iptables backend left: the FORWARD policy drop and the jumps "
        "into its chains (Docker 29 runs its nftables backend here)",
        "Docker's current rules are untouched; the host forwards by its other rules, as it "
        "will after the next reboot",
        changes,
    )


def _plan_docker_no_drop(
    snapshot: Snapshot, ruleset: Ruleset, hotspot: Hotspot, fix_id: str, facts: HostFacts
) -> Plan:
    try:
        changes = no_drop_changes(ruleset, facts)
    except DockerUnavailable as error:
        raise FixUnavailable(*error.args) from None
    return Plan(
        fix_id,
        "docker-no-drop",
        hotspot.iface,
        f'tell Docker {facts.version} not to set the FORWARD policy to drop ("ip-forward-no-drop" '
        "in daemon.json, from its next start) and set it to accept now",
        "Docker's other forwarded traffic is then no longer dropped by policy: the host forwards "
        "between all its interfaces unless another rule drops it",
        changes,
    )


def _plan_ufw_route(
    snapshot: Snapshot, ruleset: Ruleset, hotspot: Hotspot, fix_id: str, facts: HostFacts
) -> Plan:
    if not facts.ufw and not facts.checked:
        raise FixUnavailable(Reason("ufw-not-checked"))
    if not facts.ufw:
        raise FixUnavailable(Reason("ufw-not-installed"))
    try:
        change = ufw_change(snapshot, ruleset, hotspot, VerdictOf())
    except UfwUnavailable as error:
        raise FixUnavailable(*error.args) from None
    return Plan(
        fix_id,
        "ufw-route",
        hotspot.iface,
        f"allow {hotspot.iface}'s traffic through ufw with ufw's own rules (route allow to the "
        "uplinks, allow DHCP and DNS in), kept by ufw",
        "ufw's own state stays coherent: `ufw status` shows the rules and `ufw delete` removes "
        "them; routing is allowed from the hotspot to the uplinks only",
        (change,),
    )


def _plan_firewalld_zone(
    snapshot: Snapshot, ruleset: Ruleset, hotspot: Hotspot, fix_id: str, facts: HostFacts
) -> Plan:
    """nm-shared where the engine proves it lets through all the hotspot serves, else trusted
    (nm-shared lets in DHCP, DNS, SSH and ICMP only: not DHCPv6, say)."""
    if firewalld_table(ruleset) is None:
        raise FixUnavailable(Reason("firewalld-not-loaded"))
    if not facts.checked:
        raise FixUnavailable(Reason("firewalld-not-checked"))
    try:
        changes = zone_changes(hotspot, facts.firewalld)
    except FirewalldUnavailable as error:
        raise FixUnavailable(*error.args) from None
    why = ""
    failed = []
    for change in changes:
        plan = _zone_plan(hotspot, fix_id, change, why)
        try:
            after = _verdict_of(*apply_in_memory(snapshot, ruleset, plan), hotspot.iface)
        except FixUnavailable as error:
            failed.append({"zone": change.zone, "why": reason_fields(reason_of(error))})
            continue
        if after.verdict == "ok":
            return plan
        why = f" ({change.zone} would not be enough: after it, {summary(after)})"
        failed.append({"zone": change.zone, "why": summary_facts(after)})
    raise FixUnavailable(Reason("firewalld-no-zone-enough", failed=failed))


def _zone_plan(hotspot: Hotspot, fix_id: str, change: ZoneChange, why: str) -> Plan:
    what = (
        "firewalld's zone for shared connections: DHCP, DNS, SSH and ICMP in, everything forwarded"
        if change.zone == "nm-shared"
        else "firewalld's trusted zone: everything from the hotspot is accepted"
    )
    trusted = change.zone == "trusted"
    cost = "the host then accepts every service from the hotspot's clients; " if trusted else ""
    return Plan(
        fix_id,
        "firewalld-zone",
        hotspot.iface,
        f"put {hotspot.iface} into firewalld's {change.zone} zone ({what}), now and in "
        f"firewalld's permanent configuration, through firewalld's D-Bus API{why}",
        f"{cost}firewalld's own knob, so firewall-cmd shows it and --reload keeps it; "
        "NetworkManager's connection.zone is left alone (a profile's zone is the user's choice; "
        "NetworkManager sets it again when the hotspot comes up, which a --permanent fix follows)",
        (change,),
    )


def _plan_docker_netns(
    snapshot: Snapshot, ruleset: Ruleset, hotspot: Hotspot, fix_id: str, facts: HostFacts
) -> Plan:
    if not facts.checked:
        raise FixUnavailable(Reason("netns-not-checked"))
    try:
        subnet, changes = netns_changes(ruleset, facts.netns, fix_id, tag(fix_id))
    except NetnsUnavailable as error:
        raise FixUnavailable(*error.args) from None
    host, ns = subnet.hosts()
    restart = (
        "running containers restart once now (docker.service restarts)"
        if facts.netns is not None and facts.netns.systemd
        else "it takes effect when docker.service next starts"
    )
    return Plan(
        fix_id,
        "docker-netns",
        hotspot.iface,
        f"run dockerd in a network namespace of its own (a docker.service drop-in: veth "
        f"{HOST_LINK} {host} <-> {NS_LINK} {ns}, from {subnet}, free on this host), masquerade "
        f"its traffic out of whatever uplink it leaves by (table ip {TABLE}), and clear Docker's "
        "rules off the host's base chains",
        f"published ports then live on the veth address {ns}, not on the host's; containers no "
        "longer see the host's interfaces; the docker CLI is unaffected; Docker's own rules stay "
        f"off the host's forward hook; {restart}",
        changes,
    )


COMBINED = "combined"
MAX_STEPS = 4


def _dropped(verdict: HotspotVerdict) -> int:
    return sum(1 for result in verdict.flows.values() if result.verdict == "drop")


def _plan_combined(
    snapshot: Snapshot, ruleset: Ruleset, hotspot: Hotspot, fix_id: str, facts: HostFacts
) -> Plan:
    """Several culprits at once: for each in turn, the least-privileged strategy that gets
    past it (fewer flows dropped), planned on the ruleset with the steps before it applied;
    one plan, applied in one go and undone as one."""
    steps: list[Plan] = []
    current = (snapshot, ruleset)
    for _ in range(MAX_STEPS):
        verdict = _verdict_of(*current, hotspot.iface)
        if verdict.verdict != "blocked":
            break
        step = None
        for strategy in remedies(verdict):
            if strategy in (s.strategy for s in steps):
                continue
            try:
                plan = PLANNERS[strategy](*current, hotspot, fix_id, facts)
                after = _verdict_of(*apply_in_memory(*current, plan), hotspot.iface)
            except FixUnavailable:
                continue
            if after.verdict == "ok" or _dropped(after) < _dropped(verdict):
                step = plan
                break
        if step is None:
            break
        steps.append(step)
        current = apply_in_memory(*current, step)
    if len(steps) < 2:
        raise FixUnavailable(Reason("combined-one-enough" if steps else "combined-none"))
    return Plan(
        fix_id,
        COMBINED,
        hotspot.iface,
        "; then ".join(step.summary for step in steps),
        _tradeoffs(steps),
        tuple(change for step in steps for change in step.changes),
        tuple(step.strategy for step in steps),
    )


def _tradeoffs(steps: list[Plan]) -> str:
    """Each step's trade-off once, naming the steps it belongs to."""
    by_text: dict[str, list[str]] = {}
    for step in steps:
        by_text.setdefault(step.tradeoff, []).append(step.strategy)
    return " ".join(f"{', '.join(names)}: {text}." for text, names in by_text.items())


class Planner(Protocol):
    def __call__(
        self,
        snapshot: Snapshot,
        ruleset: Ruleset,
        hotspot: Hotspot,
        fix_id: str,
        facts: HostFacts,
    ) -> Plan: ...


PLANNERS: dict[str, Planner] = {
    "docker-user": lambda snapshot, ruleset, hotspot, fix_id, facts: _plan_docker_user(
        snapshot, ruleset, hotspot, fix_id
    ),
    "sysctl-forwarding": lambda snapshot, ruleset, hotspot, fix_id, facts: _plan_sysctl_forwarding(
        snapshot, hotspot, fix_id
    ),
    "docker-stale-drop": lambda snapshot, ruleset, hotspot, fix_id, facts: _plan_docker_stale_drop(
        snapshot, ruleset, hotspot, fix_id
    ),
    "docker-no-drop": _plan_docker_no_drop,
    "forward-allow": lambda snapshot, ruleset, hotspot, fix_id, facts: _plan_allow(
        snapshot, ruleset, hotspot, fix_id, "forward-allow"
    ),
    "input-allow": lambda snapshot, ruleset, hotspot, fix_id, facts: _plan_allow(
        snapshot, ruleset, hotspot, fix_id, "input-allow"
    ),
    "ufw-route": _plan_ufw_route,
    "firewalld-zone": _plan_firewalld_zone,
    "docker-netns": _plan_docker_netns,
    COMBINED: _plan_combined,
}


def plan_fix(
    snapshot: Snapshot,
    ruleset: Ruleset,
    iface: str,
    strategy: str,
    facts: HostFacts | None = None,
) -> Plan:
    """The plan of `strategy` for hotspot `iface`, not yet verified; raises `FixUnavailable`."""
    planner = PLANNERS.get(strategy)
    if strategy not in STRATEGIES or planner is None:
        raise FixUnavailable(Reason("unknown-strategy", strategy=repr(strategy)))
    hotspot = _hotspot(snapshot, iface)
    fix_id = f"{strategy}@{iface}"
    # planned on the chains without this fix's own rules: the same plan while it is in place
    mine = without_tag(ruleset, tag(fix_id))
    return planner(snapshot, mine, hotspot, fix_id, facts or HostFacts())


def _insert_rules(ruleset: Ruleset, change: RuleChange) -> Ruleset:
    family = "ip" if change.family == 4 else "ip6"
    source = "iptables-nft" if change.variant == "nft" else "iptables-legacy"
    tables = list(ruleset.tables)
    for position, table in enumerate(tables):
        if (table.family, table.name, table.source) != (family, change.table, source):
            continue
        declared = frozenset(chain.name for chain in table.chains)
        added = tuple(
            parse_rule_line(f"-A {change.chain} {rule}", change.family, declared)
            for rule in change.rules
        )

        chains = tuple(
            replace(c, rules=added + c.rules) if c.name == change.chain else c for c in table.chains
        )
        tables[position] = replace(table, chains=chains)
        return Ruleset(tuple(tables), ruleset.warnings)
    raise FixUnavailable(
        Reason("chain-missing", family=family, table=change.table, chain=change.chain)
    )


def apply_in_memory(snapshot: Snapshot, ruleset: Ruleset, plan: Plan) -> tuple[Snapshot, Ruleset]:
    """The snapshot and ruleset as they would be with `plan` applied."""
    sysctl = dict(snapshot.sysctl)
    for change in plan.changes:
        if isinstance(change, RuleChange):
            ruleset = _insert_rules(ruleset, change)
        elif isinstance(change, ChainInsert):
            try:
                ruleset = insert_in_memory(ruleset, change, plan.tag)
            except AllowUnavailable as error:
                raise FixUnavailable(*error.args) from None
        elif isinstance(change, ChainReset):
            ruleset = reset_in_memory(ruleset, change)
        elif isinstance(change, (FileChange, DropIn)):
            continue  # read by its program at its next start: nothing changes now
        elif isinstance(change, NftTable):
            # ours: a masquerade of the namespace's /30 only, which no hotspot flow matches
            continue
        elif isinstance(change, NftTableRemoved):
            ruleset = without_tables(ruleset, change)
        elif isinstance(change, UfwChange):
            ruleset = with_rules(ruleset, change)
        elif isinstance(change, ZoneChange):
            try:
                ruleset = with_zone(ruleset, change)
            except FirewalldUnavailable as error:
                raise FixUnavailable(*error.args) from None
        else:
            sysctl[change.name] = change.value
            # as in the kernel, writing the global switch sets every interface's too
            family_prefix = PROPAGATES.get(change.name)
            if family_prefix:
                for name in sysctl:
                    if name.startswith(family_prefix) and name.endswith(".forwarding"):
                        sysctl[name] = change.value
    return replace(snapshot, sysctl=sysctl), ruleset


def _verdict_of(snapshot: Snapshot, ruleset: Ruleset, iface: str) -> HotspotVerdict:
    only = replace(snapshot, hotspots=tuple(h for h in snapshot.hotspots if h.iface == iface))
    return evaluate(only, ruleset).hotspots[0]


def verify_current(snapshot: Snapshot, ruleset: Ruleset, iface: str) -> HotspotVerdict:
    """The engine's verdict for hotspot `iface` as things are."""
    _hotspot(snapshot, iface)
    return _verdict_of(snapshot, ruleset, iface)


def verify(snapshot: Snapshot, ruleset: Ruleset, plan: Plan) -> Verification:
    """Run the engine before and after `plan` (in memory)."""
    before = _verdict_of(snapshot, ruleset, plan.iface)
    # on the chains as the plan saw them: without the rules of this fix already in place
    mine = without_tag(ruleset, plan.tag)
    after = _verdict_of(*apply_in_memory(snapshot, mine, plan), plan.iface)
    return Verification(before, after)


def verified_plan(
    snapshot: Snapshot,
    ruleset: Ruleset,
    iface: str,
    strategy: str,
    facts: HostFacts | None = None,
) -> tuple[Plan, Verification]:
    """A plan that the engine says works, with its verification; else `FixUnavailable` naming
    what would still block."""
    plan = plan_fix(snapshot, ruleset, iface, strategy, facts)
    verification = verify(snapshot, ruleset, plan)
    if not verification.works:
        after = summary_facts(verification.after)
        raise FixUnavailable(Reason("not-enough", strategy=strategy, after=after))
    return plan, verification


def preferred_strategy(verdict: HotspotVerdict) -> str | None:
    """The least-privileged built strategy for what blocks the hotspot, if there is one."""
    return next((s for s in remedies(verdict) if s in PLANNERS), None)


@dataclass(frozen=True)
class Candidate:
    """A strategy offered for what blocks a hotspot: its verified plan, or why it cannot work
    here (one line)."""

    strategy: str
    plan: Plan | None
    verification: Verification | None
    reason: str | None

    @property
    def works(self) -> bool:
        return self.plan is not None


def candidates(
    snapshot: Snapshot, ruleset: Ruleset, iface: str, facts: HostFacts | None = None
) -> list[Candidate]:
    """Every strategy that addresses what blocks `iface`, the least privileged first; those
    the engine proves fix every flow carry their plan, the others the reason they do not.
    Kept with `ruleset` for the same snapshot, hotspot and facts (choosing, then listing, costs
    one planning)."""
    key = f"candidates:{iface}"
    kept = ruleset.derived.get(key)
    if isinstance(kept, tuple) and kept[0] is snapshot and kept[1] == facts:
        return list(kept[2])
    result = _candidates(snapshot, ruleset, iface, facts)
    ruleset.derived[key] = (snapshot, facts, tuple(result))
    return result


def _candidates(
    snapshot: Snapshot, ruleset: Ruleset, iface: str, facts: HostFacts | None
) -> list[Candidate]:
    verdict = verify_current(snapshot, ruleset, iface)
    result = []
    names = list(remedies(verdict))
    for name, flow in verdict.flows.items():  # every culprit's, not only the first one's
        if flow.verdict == "drop" and flow.dropped_by is not None:
            names += [n for n in candidate_fixes(flow.dropped_by.owner, name) if n not in names]
    for strategy in names:
        result.append(_candidate(snapshot, ruleset, iface, strategy, facts))
    if names and not any(c.works for c in result):
        result.append(_candidate(snapshot, ruleset, iface, COMBINED, facts))
    return result


def _candidate(
    snapshot: Snapshot, ruleset: Ruleset, iface: str, strategy: str, facts: HostFacts | None
) -> Candidate:
    try:
        plan, verification = verified_plan(snapshot, ruleset, iface, strategy, facts)
    except FixUnavailable as error:
        return Candidate(strategy, None, None, reason_of(error))
    return Candidate(strategy, plan, verification, None)


def recommended(
    snapshot: Snapshot, ruleset: Ruleset, iface: str, facts: HostFacts | None = None
) -> Candidate | None:
    """The least-privileged candidate the engine proves fixes every blocked flow."""
    return next((c for c in candidates(snapshot, ruleset, iface, facts) if c.works), None)
