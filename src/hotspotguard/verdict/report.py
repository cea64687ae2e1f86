"""The verdict for people (a sentence, then the trace) and for programs (stable JSON keys)."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from hotspotguard.ruleset.model import Range, RuleRef
from hotspotguard.ruleset.owners import UNKNOWN, display_owner
from hotspotguard.verdict.engine import ChainVisit, Drop, FlowResult
from hotspotguard.verdict.evaluate import HotspotVerdict, Report

FLOW_LABELS = {
    "dhcp": "getting an address (DHCP)",
    "dns": "name lookups (DNS)",
    "outbound": "outbound traffic",
    "reply": "replies from the internet",
}
DISCOVERY_LABELS = {
    "arp_in": "ARP requests",
    "arp_out": "ARP replies",
    "rs6": "IPv6 router solicitations",
    "ra6": "IPv6 router advertisements",
    "ns6_in": "IPv6 neighbour solicitations",
    "na6_out": "IPv6 neighbour advertisements",
    "ns6_out": "IPv6 neighbour solicitations",
    "na6_in": "IPv6 neighbour advertisements",
}
SERVICE_LABELS = {
    "ra": "router advertisements (SLAAC)",
    "dhcp6": "DHCPv6",
    "dns6": "DNS over IPv6",
}


def _flow_label(name: str) -> str:
    if name in DISCOVERY_LABELS:
        return DISCOVERY_LABELS[name]
    base = name.rstrip("6")
    label = FLOW_LABELS.get(base, name)
    return f"IPv6 {label}" if name.endswith("6") else label


def services_text(verdict: HotspotVerdict) -> str | None:
    """Which IPv6 services the hotspot serves, and where that was read (None: no IPv6)."""
    if not verdict.hotspot.ipv6:
        return None
    served = [SERVICE_LABELS[s] for s in SERVICE_LABELS if s in verdict.ipv6_services]
    missing = [SERVICE_LABELS[s] for s in SERVICE_LABELS if s not in verdict.ipv6_services]
    text = f"IPv6: {verdict.hotspot.iface} serves " + (", ".join(served) or "nothing")
    if missing:
        text += "; not " + ", not ".join(missing) + " (their flows only inform)"
    if not verdict.ipv6_services_known:
        text += " — assumed: the snapshot does not say, NetworkManager's own sharing serves this"
    return text


def drop_json(drop: Drop | None) -> dict[str, Any] | None:
    if drop is None:
        return None
    return {
        "owner": drop.owner,
        "family": drop.family,
        "table": drop.table,
        "chain": drop.chain,
        "rule": drop.rule,
        "hook": drop.hook,
        "source": drop.source,
    }


def _ref_json(ref: RuleRef) -> dict[str, Any]:
    return {
        "family": ref.family,
        "table": ref.table,
        "chain": ref.chain,
        "rule": ref.text,
        "source": ref.source,
    }


def _visit_json(visit: ChainVisit) -> dict[str, Any]:
    return {
        "hook": visit.hook,
        "family": visit.family,
        "table": visit.table,
        "chain": visit.chain,
        "priority": visit.priority,
        "owner": visit.owner,
        "source": visit.source,
        "policy": visit.policy,
        "verdict": visit.verdict,
        "rules": [
            {"chain": s.chain, "index": s.index, "action": s.action, "rule": s.text}
            for s in visit.steps
        ],
    }


def _port(port: int | Range | None) -> int | str | None:
    """A port, or "32768-60999" for "one of the ephemeral ports"."""
    return f"{port.low}-{port.high}" if isinstance(port, Range) else port


def flow_json(result: FlowResult) -> dict[str, Any]:
    flow, packet = result.flow, result.flow.packet
    return {
        "verdict": result.verdict,
        # a flow of a service the hotspot does not serve: judged, but it decides nothing
        "informative": not flow.required,
        "description": flow.description,
        "packet": {
            "family": packet.family,
            "saddr": str(packet.saddr),
            "daddr": str(packet.daddr),
            "protocol": {6: "tcp", 17: "udp", 58: "icmpv6"}.get(packet.l4proto, packet.l4proto),
            "sport": _port(packet.sport),
            "dport": _port(packet.dport),
            "icmpv6_type": packet.icmp_type,
            "hoplimit": packet.hoplimit if packet.family == "ip6" else None,
            "iif": flow.in_device,
            "oif": flow.out_device or None,
            "ct_state": packet.ct_state,
        },
        "nat": result.nat,
        "dropped_by": drop_json(result.dropped_by),
        "uncertain": [_ref_json(r) for r in result.uncertain],
        "reason": result.reason,
        "trace": [_visit_json(v) for v in result.visits],
    }


def verdict_json(verdict: HotspotVerdict) -> dict[str, Any]:
    hotspot = verdict.hotspot
    return {
        "iface": hotspot.iface,
        "ipv4": [str(a) for a in hotspot.ipv4],
        "ipv6": [str(a) for a in hotspot.ipv6],
        "verdict": verdict.verdict,
        "summary": summary(verdict),
        "flows": {name: flow_json(result) for name, result in verdict.flows.items()},
        "blocked_by": drop_json(verdict.blocked_by),
        "blocked_flow": verdict.blocked_flow,
        "nm_backend": verdict.nm_backend,
        "ipv6_services": {
            "served": sorted(verdict.ipv6_services),
            "source": "snapshot" if verdict.ipv6_services_known else "assumed",
            "text": services_text(verdict),
        }
        if hotspot.ipv6
        else None,
    }


def _where(drop: Drop) -> str:
    if drop.owner == "sysctl":
        return "the kernel's forwarding setting"
    if drop.table is None:
        return drop.rule
    policy = drop.rule.startswith("policy")
    if drop.owner == UNKNOWN:
        table = f"table {drop.family} {drop.table} ({drop.source})"
        if policy:
            return f"the {drop.rule} of chain {drop.chain} in {table}, which no known program set,"
        return f"a rule in {table} chain {drop.chain} that no known program wrote"
    who = display_owner(drop.owner)
    place = f"{drop.table} {drop.chain}"
    what = drop.rule if policy else "rule"
    return f"{who}'s {place} {what}"


def summary(verdict: HotspotVerdict) -> str:
    """One sentence: "blocked: Docker's filter FORWARD policy drop stops outbound traffic ..."."""
    iface = verdict.hotspot.iface
    if verdict.verdict == "ok":
        return f"ok: clients of {iface} can get an address, look up names and reach the internet"
    if verdict.verdict == "blocked" and verdict.blocked_by and verdict.blocked_flow:
        drop = verdict.blocked_by
        flow = _flow_label(verdict.blocked_flow)
        if drop.owner == "nat":
            return f"blocked: {drop.rule}, so {flow} from {iface} gets no answer"
        if drop.owner == "routing":
            return f"blocked: the host has no default route for {flow} from {iface}"
        direction = "to" if verdict.blocked_flow.startswith("reply") else "from"
        return f"blocked: {_where(drop)} stops {flow} {direction} {iface}"
    if verdict.verdict == "unknown":
        unsure = [r for r in verdict.flows.values() if r.verdict == "unknown" and r.flow.required]
        names = ", ".join(_flow_label(r.flow.name) for r in unsure)
        rules = {ref.text for r in unsure for ref in r.uncertain}
        detail = f" (undecidable: {'; '.join(sorted(rules)[:3])})" if rules else ""
        reason = next((r.reason for r in unsure if r.reason), "")
        return f"unknown: cannot tell whether {names} from {iface} get through: {reason}{detail}"
    return f"{verdict.verdict}: {verdict.reason or ''}"


def _step_lines(visit: ChainVisit) -> list[str]:
    return [f"        {s.chain}: {s.text}  → {s.action}" for s in visit.steps]


def explain_text(
    report: Report,
    trace: bool = True,
    annotate: Callable[[HotspotVerdict], Sequence[str]] | None = None,
) -> str:
    """The report for people; `annotate` adds lines under each verdict's heading."""
    if not report.hotspots:
        return "no hotspot: no connection is being shared"
    lines: list[str] = []
    for verdict in report.hotspots:
        lines.append(summary(verdict))
        if verdict.nm_backend:
            lines.append(
                f"  NetworkManager shares {verdict.hotspot.iface} with its "
                f"{verdict.nm_backend} firewall backend"
            )
        services = services_text(verdict)
        if services:
            lines.append(f"  {services}")
        if annotate is not None:
            lines.extend(f"  {line}" for line in annotate(verdict))
        if not trace:
            continue
        for name, result in verdict.flows.items():
            mark = {"accept": "ok", "drop": "DROPPED", "unknown": "UNKNOWN"}[result.verdict]
            extra = f", {result.nat}d" if result.nat else ""
            note = " (informative: not served)" if not result.flow.required else ""
            lines.append(f"  {name}: {mark}{extra}{note} — {result.flow.description}")
            if result.reason:
                lines.append(f"    because {result.reason}")
            for ref in result.uncertain:
                lines.append(f"    undecidable: {ref.family} {ref.table} {ref.chain}: {ref.text}")
            hook = None
            for visit in result.visits:
                if visit.hook != hook:
                    hook = visit.hook
                    lines.append(f"    {hook}:")
                lines.append(
                    f"      {visit.family} {visit.table} {visit.chain} (priority {visit.priority}, "
                    f"{display_owner(visit.owner)}) → {visit.verdict}"
                )
                lines.extend(_step_lines(visit))
    for warning in report.warnings:
        lines.append(f"warning: {warning}")
    return "\n".join(lines)
