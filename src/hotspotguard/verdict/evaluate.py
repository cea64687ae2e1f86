"""From a snapshot to a verdict per hotspot: every flow through every hook it crosses."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, replace
from typing import Literal

from hotspotguard.ruleset import Hotspot, Ruleset, Snapshot
from hotspotguard.ruleset.iptables import parse_rule_line
from hotspotguard.ruleset.model import IPAddress, RuleRef
from hotspotguard.ruleset.owners import UNKNOWN, chain_owner, nm_backend, rule_owner
from hotspotguard.ruleset.restored import restoring_program
from hotspotguard.ruleset.routes import MAX_ROUTES, POLICY_RULES, TOO_MANY_ROUTES
from hotspotguard.ruleset.values import CT_STATUS_BITS
from hotspotguard.verdict.engine import (
    CONNTRACK_ORDER,
    CONNTRACK_PRIORITY,
    MAX_BRANCHES,
    NAT_CORE_PRIORITY,
    NAT_ORDER,
    UNKNOWN_DEVICE,
    Budget,
    ChainOutcome,
    ChainRun,
    ChainVisit,
    Drop,
    FlowResult,
    FlowVerdict,
    HookEntry,
    HookIndex,
    uncertainty_reason,
)
from hotspotguard.verdict.flows import (
    ALL_ROUTERS,
    FLOW_ORDER,
    Flow,
    Packet,
    arp_flows,
    hotspot_flows,
    ipv6_services,
)
from hotspotguard.wording import Reason

NAT_CORE_DSTNAT = NAT_CORE_PRIORITY["prerouting"]
NAT_CORE_SRCNAT = NAT_CORE_PRIORITY["postrouting"]
SNAT_BIT = CT_STATUS_BITS["snat"]

HotspotState = Literal["ok", "blocked", "unknown"]


@dataclass(frozen=True)
class HotspotVerdict:
    hotspot: Hotspot
    verdict: HotspotState
    flows: dict[str, FlowResult]
    blocked_by: Drop | None
    blocked_flow: str | None
    nm_backend: str | None
    reason: str | None = None
    # what the hotspot serves over IPv6, and whether the snapshot said so (else: assumed)
    ipv6_services: frozenset[str] = frozenset()
    ipv6_services_known: bool = False


@dataclass(frozen=True)
class Report:
    hotspots: tuple[HotspotVerdict, ...]
    warnings: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class _Branch:
    packet: Packet
    visits: tuple[ChainVisit, ...] = ()
    assumptions: tuple[RuleRef, ...] = ()
    nat: str | None = None
    nat_hook: str | None = None  # where the NAT was set up: later nat chains there do not run
    verdict: FlowVerdict | None = None  # set when the branch has ended (drop/unknown)
    dropped_by: Drop | None = None
    reason: str | None = None


def _packet_at(flow: Flow, base: Packet, hook: str, priority: int) -> Packet:
    """The packet as a chain at `hook`/`priority` sees it (devices, conntrack state)."""
    # postrouting of a forwarded packet still knows its input device (ip_output's indev)
    iif = flow.in_device if hook != "output" else ""
    oif = flow.out_device if hook in {"forward", "output", "postrouting"} else ""
    packet = replace(base, iif=iif, oif=oif)
    before_denat = hook == "ingress" or (hook == "prerouting" and priority < NAT_CORE_DSTNAT)
    if flow.nat_daddr != "" and before_denat:
        # a reply to a NATed connection is translated back only in the nat core (-100)
        packet = replace(packet, daddr=flow.nat_daddr, fib_daddr_type="local")
    if base.ct_state == "untracked" and not base.conntrack_ignores:
        return packet
    # conntrack marks router/neighbour discovery untracked, but only once it has seen it
    conntrack_hook = hook in {"prerouting", "output"}
    if hook == "ingress" or (conntrack_hook and priority < CONNTRACK_PRIORITY):
        return replace(packet, ct_state="invalid", tracked=False)
    return packet


def _other_order(
    flow: Flow, branch: _Branch, hook: str, chain_type: str, priority: int, packet: Packet
) -> tuple[Packet, str] | None:
    """A chain at exactly the priority of conntrack (-200) or of the nat core (dstnat -100,
    srcnat 100) runs before or after it depending on which registered last
    (nf_hook_entries_grow puts a new hook before those of equal priority), which no snapshot
    holds. The engine's order runs the chain after them; this is the packet as the chain sees
    it in the other order, with the reason's text, or None where the order changes nothing."""
    if chain_type == "nat":
        return None
    if hook in {"prerouting", "output"} and priority == CONNTRACK_PRIORITY:
        if packet.ct_state == "untracked" and not packet.conntrack_ignores:
            return None  # notrack before: conntrack leaves it alone
        before = replace(packet, ct_state="invalid", tracked=False)
        return (before, CONNTRACK_ORDER) if before != packet else None
    if hook == "prerouting" and priority == NAT_CORE_DSTNAT and flow.nat_daddr != "":
        # a reply to a NATed connection, not yet translated back
        return replace(packet, daddr=flow.nat_daddr, fib_daddr_type="local"), NAT_ORDER
    if hook == "postrouting" and priority == NAT_CORE_SRCNAT and branch.nat_hook == hook:
        # the connection's first packet before the nat core gave it its new source
        return replace(packet, saddr=flow.packet.saddr, ct_nat=flow.packet.ct_nat), NAT_ORDER
    return None


def _forwarding(flow: Flow, sysctl: Mapping[str, str]) -> tuple[bool | None, str]:
    """Whether the kernel forwards this flow's packets, and the setting that decides (IPv4:
    the input device's `forwarding`, which `ip_forward` sets for all; IPv6: `all`)."""
    if flow.family == "ip":
        per_device = f"net.ipv4.conf.{flow.in_device}.forwarding"
        key = per_device if per_device in sysctl else "net.ipv4.ip_forward"
    else:
        key = "net.ipv6.conf.all.forwarding"
    value = sysctl.get(key)
    if value is None:
        return None, key
    return value.strip() not in {"0", ""}, key


def evaluate_flow(
    flow: Flow, index: HookIndex, sysctl: dict[str, str], max_branches: int = MAX_BRANCHES
) -> FlowResult:
    budget = Budget(forks=max_branches)
    branches = [_Branch(flow.packet)]
    for hook in flow.path:
        if hook == "forward":
            branches = [_route_forward(flow, b, sysctl) for b in branches]
        if hook == "input" and flow.packet.daddr == ALL_ROUTERS:
            branches = [_to_all_routers(flow, b, sysctl) for b in branches]
        device = flow.in_device if hook == "ingress" else ""
        for entry in index.chains(flow.family, hook, device):
            if hook == "ingress" and not entry.chain.devices:
                branches = _device_unknown(flow, branches, entry, budget, index)
                continue
            branches = [
                new
                for branch in branches
                for new in _through_chain(flow, branch, entry, hook, budget, index)
            ]
    return _combine(flow, branches)


def _device_unknown(
    flow: Flow, branches: list[_Branch], entry: HookEntry, budget: Budget, index: HookIndex
) -> list[_Branch]:
    """An ingress chain whose device the snapshot does not say: it may or may not apply."""
    table, chain = entry.table, entry.chain
    ref = RuleRef(
        table.family,
        table.name,
        chain.name,
        -1,
        UNKNOWN_DEVICE,
        table.source,
    )
    result: list[_Branch] = []
    for branch in branches:
        assumed = replace(branch, assumptions=(*branch.assumptions, ref))
        result.append(assumed)
        result.extend(_through_chain(flow, assumed, entry, "ingress", budget, index))
    return result


def _to_all_routers(flow: Flow, branch: _Branch, sysctl: Mapping[str, str]) -> _Branch:
    """Only a router listens on ff02::2: with IPv6 forwarding off the host never joins it."""
    if branch.verdict is not None:
        return branch
    enabled, key = _forwarding(flow, sysctl)
    if enabled:
        return branch
    if enabled is None:
        return replace(branch, verdict="unknown", reason=Reason("sysctl-missing", key=key))
    drop = Drop("sysctl", None, None, None, f"{key} = 0", "input", "sysctl")
    reason = Reason("not-a-router", key=key)
    return replace(branch, verdict="drop", dropped_by=drop, reason=reason)


def _route_forward(flow: Flow, branch: _Branch, sysctl: dict[str, str]) -> _Branch:
    if branch.verdict is not None:
        return branch
    if flow.nat_daddr != "" and branch.packet.ct_state == "untracked":
        drop = Drop("conntrack", None, None, None, "untracked reply", "prerouting", "nft")
        reason = Reason("untracked-reply")
        return replace(branch, verdict="drop", dropped_by=drop, reason=reason)
    if not flow.out_device:
        return replace(
            branch,
            verdict="drop",
            reason=Reason("no-default-route"),
            dropped_by=Drop("routing", None, None, None, "no default route", "routing"),
        )
    if branch.packet.pkttype != "host":
        # ip_forward and ip6_forward drop what is not addressed to this host's link address
        text = f"meta pkttype set {branch.packet.pkttype}"
        drop = Drop("routing", None, None, None, text, "routing")
        reason = Reason("pkttype", pkttype=branch.packet.pkttype)
        return replace(branch, verdict="drop", dropped_by=drop, reason=reason)
    enabled, key = _forwarding(flow, sysctl)
    if enabled:
        return branch
    if enabled is None:
        return replace(branch, verdict="unknown", reason=Reason("sysctl-missing", key=key))
    drop = Drop("sysctl", None, None, None, f"{key} = 0", "routing", "sysctl")
    return replace(
        branch, verdict="drop", dropped_by=drop, reason=Reason("forwarding-off", key=key)
    )


def _through_chain(
    flow: Flow, branch: _Branch, entry: HookEntry, hook: str, budget: Budget, index: HookIndex
) -> list[_Branch]:
    if branch.verdict is not None:
        return [branch]
    chain, table = entry.chain, entry.table
    packet = _packet_at(flow, branch.packet, hook, chain.priority)
    other = _other_order(flow, branch, hook, chain.type, chain.priority, packet)
    if other is not None:
        # the order of this chain and conntrack or the nat core is in no snapshot: both are
        # followed, and where they differ the flow is unknown
        view, text = other
        ref = RuleRef(table.family, table.name, chain.name, -1, text, table.source)
        ordered = replace(branch, assumptions=(*branch.assumptions, ref))
        after_results = _run_chain(flow, branch, entry, hook, budget, index, packet)
        before_results = _run_chain(flow, ordered, entry, hook, budget, index, view)
        if [replace(b, assumptions=()) for b in after_results] == [
            replace(b, assumptions=()) for b in before_results
        ]:
            return after_results  # the order changes nothing here
        return after_results + before_results
    return _run_chain(flow, branch, entry, hook, budget, index, packet)


def _run_chain(
    flow: Flow,
    branch: _Branch,
    entry: HookEntry,
    hook: str,
    budget: Budget,
    index: HookIndex,
    packet: Packet,
) -> list[_Branch]:
    chain, table = entry.chain, entry.table
    if chain.type == "nat" and (
        packet.ct_state != "new"
        or not packet.tracked
        or flow.family not in index.conntrack
        or branch.nat_hook == hook
    ):
        # nat chains see only the first packet of a tracked connection, and only until one
        # of them has set up the translation (nf_nat_inet_fn)
        return [branch]
    outcomes = ChainRun(table, chain, budget, index.rules).outcomes(packet)
    owner = index.owner(entry)
    results = []
    for outcome in outcomes:
        visit = ChainVisit(
            hook,
            table.family,
            table.name,
            chain.name,
            chain.priority,
            table.source,
            owner,
            chain.policy,
            outcome.verdict,
            outcome.steps,
        )
        # carry packet changes (mark, notrack) on, but not this chain's view of conntrack
        carried = replace(
            branch.packet,
            mark=outcome.packet.mark,
            ct_mark=outcome.packet.ct_mark,
            pkttype=outcome.packet.pkttype,
            ct_zone=outcome.packet.ct_zone,
        )
        if outcome.nat:  # later chains see the translated source
            source = outcome.nat_to if outcome.nat == "snat" else flow.masquerade_address
            carried = replace(carried, saddr=source, ct_nat=carried.ct_nat | SNAT_BIT)
        if outcome.packet.ct_state == "untracked":
            carried = replace(carried, ct_state="untracked", tracked=False)
        results.append(
            replace(
                branch,
                packet=carried,
                visits=(*branch.visits, visit),
                assumptions=branch.assumptions + outcome.assumptions,
                nat=outcome.nat or branch.nat,
                nat_hook=hook if outcome.nat else branch.nat_hook,
                verdict=None if outcome.verdict == "accept" else outcome.verdict,
                dropped_by=_drop(entry, hook, outcome) if outcome.verdict == "drop" else None,
                reason=outcome.reason,
            )
        )
    return results


def _drop(entry: HookEntry, hook: str, outcome: ChainOutcome) -> Drop:
    table = entry.table
    chain = outcome.final_chain or entry.chain
    step = outcome.final
    comment = None
    if step is not None and step.index >= 0:
        comment = chain.rules[step.index].comment
    owner = (
        rule_owner(table, chain, comment, chain.rules[step.index])
        if step and step.index >= 0
        else chain_owner(table, chain)
    )
    return Drop(
        owner, table.family, table.name, chain.name, step.text if step else "", hook, table.source
    )


def _combine(flow: Flow, branches: list[_Branch]) -> FlowResult:
    primary = branches[0]
    verdicts = {b.verdict or "accept" for b in branches}
    assumptions = tuple(dict.fromkeys(r for b in branches for r in b.assumptions))
    if len(verdicts) == 1:
        verdict: FlowVerdict = verdicts.pop()
    else:
        verdict = "unknown"
    nat = primary.nat
    reason = primary.reason
    if verdict == "accept" and len({b.nat for b in branches}) > 1:
        verdict, reason = "unknown", Reason("masquerade-undecidable")
    if verdict == "unknown" and reason is None:
        reason = next((b.reason for b in branches if b.reason), None)
        if reason is None and assumptions:
            reason = uncertainty_reason(assumptions)
    return FlowResult(
        flow,
        verdict,
        primary.visits,
        primary.dropped_by if verdict == "drop" else None,
        nat if verdict == "accept" else None,
        assumptions if verdict == "unknown" else (),
        reason if verdict != "accept" else None,
        untracked=primary.packet.ct_state == "untracked",
        nat_address=primary.packet.saddr if nat else None,
        ct_mark=primary.packet.ct_mark,
        ct_zone=primary.packet.ct_zone,
    )


def _reply_of(reply: Flow, outbound: FlowResult) -> Flow:
    """The reply as the outbound packet's connection shapes it: its mark, its NAT, whether
    conntrack knows it at all."""
    packet = replace(reply.packet, ct_mark=outbound.ct_mark)
    if outbound.untracked:
        # the connection was never tracked: its reply matches no conntrack entry
        packet = replace(packet, ct_state="invalid", tracked=False)
    nat_daddr: IPAddress | Literal[""] | None = ""
    if outbound.nat is not None:
        nat_daddr = outbound.nat_address
        packet = replace(packet, ct_nat=SNAT_BIT)
    return replace(reply, packet=packet, nat_daddr=nat_daddr)


def _restored_owner(drop: Drop, snapshot: Snapshot) -> Drop:
    """A rule (or policy) no known program wrote, restored at boot from a rules file
    (netfilter-persistent, iptables.service), is that service's."""
    if drop.owner != UNKNOWN or not drop.source.startswith("iptables") or not drop.family:
        return drop
    if not drop.table or not drop.chain:
        return drop
    exprs, policy = None, None
    if drop.rule.startswith("-A "):
        version = 4 if drop.family == "ip" else 6
        exprs = parse_rule_line(drop.rule, version, frozenset()).exprs
    elif drop.rule.startswith("policy "):
        policy = drop.rule.removeprefix("policy ")
    program = restoring_program(
        snapshot.restored_rules, drop.family, drop.table, drop.chain, exprs, policy
    )
    return replace(drop, owner=program) if program else drop


def _zone_checked(reply: FlowResult, outbound: FlowResult) -> FlowResult:
    """A reply looked up in another conntrack zone than its connection's finds no connection:
    what the kernel then does is not what the engine followed (an established reply)."""
    if reply.ct_zone == outbound.ct_zone or outbound.untracked:
        return reply
    reason = Reason("conntrack-zone", zone=outbound.ct_zone, reply_zone=reply.ct_zone)
    return replace(reply, verdict="unknown", dropped_by=None, nat=None, reason=reason)


def _with_routing(flow: Flow, snapshot: Snapshot) -> Flow:
    routing = snapshot.routing.get(flow.family)
    return replace(flow, packet=replace(flow.packet, routing=routing)) if routing else flow


def _routes_reason(result: FlowResult, snapshot: Snapshot) -> FlowResult:
    """An unknown that hangs on a route lookup the snapshot cannot make says so."""
    if result.verdict != "unknown" or not any(
        "fib " in ref.text or "rpfilter" in ref.text for ref in result.uncertain
    ):
        return result
    routing = snapshot.routing.get(result.flow.family)
    if routing is None:
        why = Reason("no-routes")
    elif routing.undecidable == TOO_MANY_ROUTES:
        why = Reason("routes-too-many", limit=MAX_ROUTES)
    elif routing.undecidable == POLICY_RULES:
        why = Reason("routes-policy-rules")
    else:
        return result
    return replace(result, reason=why)


def evaluate_hotspot(
    hotspot: Hotspot, ruleset: Ruleset, index: HookIndex, snapshot: Snapshot
) -> HotspotVerdict:
    flows = hotspot_flows(hotspot, snapshot.uplinks, snapshot.uplink_addresses)
    if snapshot.routing:
        flows = [_with_routing(flow, snapshot) for flow in flows]
    if any(
        (t.family == "arp" and t.base_chains)
        or (t.family == "netdev" and any(c.hook == "ingress" for c in t.base_chains))
        for t in ruleset.tables
    ):
        # ARP is judged only where something filters it: an arp table, a netdev ingress chain
        flows = arp_flows(hotspot) + flows
    sysctl = dict(snapshot.sysctl)
    results: dict[str, FlowResult] = {}
    for flow in flows:
        outbound = results.get(flow.name.replace("reply", "outbound"))
        if flow.name.startswith("reply") and outbound is not None:
            flow = _reply_of(flow, outbound)
        result = _routes_reason(evaluate_flow(flow, index, sysctl), snapshot)
        if outbound is not None and flow.name.startswith("reply"):
            result = _zone_checked(result, outbound)
        if result.dropped_by is not None and snapshot.restored_rules:
            result = replace(result, dropped_by=_restored_owner(result.dropped_by, snapshot))
        results[flow.name] = result
    # flows of services the hotspot does not serve are shown, but do not decide
    ordered = [
        results[name] for name in FLOW_ORDER if name in results and results[name].flow.required
    ]
    state: HotspotState = "ok"
    blocked_by: Drop | None = None
    blocked_flow: str | None = None
    reason: str | None = None
    for result in ordered:
        if result.verdict == "drop":
            state, blocked_by, blocked_flow = "blocked", result.dropped_by, result.flow.name
            reason = result.reason
            break
    if state == "ok":
        for result in ordered:
            if result.verdict == "accept" and result.flow.needs_nat and result.nat is None:
                state, blocked_flow = "blocked", result.flow.name
                src = hotspot.ipv4[0].network if hotspot.ipv4 else "the hotspot"
                text = f"no masquerade for {src} leaving via {result.flow.out_device}"
                blocked_by = Drop("nat", None, None, None, text, "postrouting", "nft")
                reason = Reason("unmasqueraded")
                break
    if state == "ok" and any(r.verdict == "unknown" for r in ordered):
        state = "unknown"
    if not ordered:
        reason = Reason("no-address")
    backend = nm_backend(ruleset.tables, hotspot.iface)
    return HotspotVerdict(
        hotspot,
        state,
        results,
        blocked_by,
        blocked_flow,
        backend,
        reason,
        ipv6_services(hotspot) if hotspot.ipv6 else frozenset(),
        hotspot.ipv6_services is not None,
    )


def evaluate(snapshot: Snapshot, ruleset: Ruleset) -> Report:
    """The verdict for every hotspot of the snapshot."""
    index = HookIndex.of(ruleset)
    return Report(
        tuple(evaluate_hotspot(h, ruleset, index, snapshot) for h in snapshot.hotspots),
        ruleset.warnings,
    )
