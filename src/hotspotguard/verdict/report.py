"""The verdict for people (a sentence, then the trace) and for programs (stable JSON keys)."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from hotspotguard import wording
from hotspotguard.ruleset.model import Range, RuleRef
from hotspotguard.ruleset.owners import display_owner
from hotspotguard.verdict.engine import ChainVisit, Drop, FlowResult
from hotspotguard.verdict.evaluate import HotspotVerdict, Report


def services_text(verdict: HotspotVerdict) -> str | None:
    """Which IPv6 services the hotspot serves, and where that was read (None: no IPv6)."""
    if not verdict.hotspot.ipv6:
        return None
    iface, known = verdict.hotspot.iface, verdict.ipv6_services_known
    return wording.services_text(iface, sorted(verdict.ipv6_services), known)


def drop_json(drop: Drop | None) -> dict[str, Any] | None:
    if drop is None:
        return None
    doc: dict[str, Any] = {
        "owner": drop.owner,
        "family": drop.family,
        "table": drop.table,
        "chain": drop.chain,
        "rule": drop.rule,
        "hook": drop.hook,
        "source": drop.source,
    }
    doc["kind"] = wording.culprit_kind(doc)  # policy, rule, forwarding-off, no-route, …
    return doc


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
        **wording.reason_fields(result.reason),
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


def summary_facts(verdict: HotspotVerdict) -> dict[str, Any]:
    """What `wording.verdict_summary` reads: the JSON's fields, without the traces."""
    return {
        "iface": verdict.hotspot.iface,
        "verdict": verdict.verdict,
        **wording.reason_fields(verdict.reason),
        "blocked_by": drop_json(verdict.blocked_by),
        "blocked_flow": verdict.blocked_flow,
        "flows": {
            name: {
                "verdict": result.verdict,
                "informative": not result.flow.required,
                **wording.reason_fields(result.reason),
                "uncertain": [{"rule": ref.text} for ref in result.uncertain],
            }
            for name, result in verdict.flows.items()
        },
    }


def summary(verdict: HotspotVerdict) -> str:
    """One sentence: "blocked: Docker's filter FORWARD policy drop stops outbound traffic ..."
    (worded by hotspotguard.wording from the verdict's fields)."""
    return wording.verdict_summary(summary_facts(verdict))


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
