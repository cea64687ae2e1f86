"""Sentences for people, built from structured results — the one place they are worded.

The engine and the fixes return data: a verdict, the flow it concerns (``blocked_flow``), what
blocks it (``blocked_by``: ``owner``, ``family``, ``table``, ``chain``, ``rule``), a strategy's
id. Every function here takes that data (the JSON objects of ``explain --json``, ``status
--json`` and the fix previews, or the same fields) and a translator ``tr``: English by default —
the command line, and the JSON's ``summary`` fields, which keep their words — and Qt's in the
applet (``ui.texts.qt_tr``), which reads the strings below from ``hotspotguard_<lang>.qm``
(``resources/translations/update.py`` extracts every ``tr("…")`` of this file, context
``Wording``). Placeholders are ``{name}``: a translation may put them in any order.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

from hotspotguard.ruleset.owners import UNKNOWN, display_owner

#: a translator: English text in, the person's language out
Translate = Callable[[str], str]
#: the context of this module's strings in the translation catalogues
CONTEXT = "Wording"


def english(text: str) -> str:
    return text


class _Fields(dict[str, str]):
    def __missing__(self, key: str) -> str:  # a translation that misspells a placeholder
        return "{" + key + "}"


def _fill(template: str, **fields: object) -> str:
    """`template` with its ``{name}`` placeholders filled; a broken translation shows its
    placeholders rather than failing."""
    try:
        return template.format_map(_Fields({k: str(v) for k, v in fields.items()}))
    except (ValueError, IndexError):
        return template


# --- flows -----------------------------------------------------------------------------------


#: flow id -> what the phone does, as a phrase (sentences and the explain text)
def flow_phrase(flow: str, tr: Translate = english) -> str:
    """ "getting an address (DHCP)", "IPv6 outbound traffic", "ARP requests"."""
    phrases = {
        "dhcp": tr("getting an address (DHCP)"),
        "dns": tr("name lookups (DNS)"),
        "outbound": tr("outbound traffic"),
        "reply": tr("replies from the internet"),
        "dhcp6": tr("IPv6 getting an address (DHCP)"),
        "dns6": tr("IPv6 name lookups (DNS)"),
        "outbound6": tr("IPv6 outbound traffic"),
        "reply6": tr("IPv6 replies from the internet"),
        "arp_in": tr("ARP requests"),
        "arp_out": tr("ARP replies"),
        "rs6": tr("IPv6 router solicitations"),
        "ra6": tr("IPv6 router advertisements"),
        "ns6_in": tr("IPv6 neighbour solicitations"),
        "na6_out": tr("IPv6 neighbour advertisements"),
        "ns6_out": tr("IPv6 neighbour solicitations"),
        "na6_in": tr("IPv6 neighbour advertisements"),
    }
    return phrases.get(flow, flow)


def flow_name(flow: str, tr: Translate = english) -> str:
    """A flow's short name, for chips and lists: "DHCP", "Internet", "IPv6 DNS"."""
    names = {
        "dhcp": tr("DHCP"),
        "dns": tr("DNS"),
        "outbound": tr("Internet"),
        "reply": tr("Replies"),
        "arp_in": tr("ARP requests"),
        "arp_out": tr("ARP replies"),
        "rs6": tr("Router solicitations"),
        "ra6": tr("Router advertisements"),
        "ns6_in": tr("Neighbour solicitations (in)"),
        "na6_out": tr("Neighbour advertisements (out)"),
        "ns6_out": tr("Neighbour solicitations (out)"),
        "na6_in": tr("Neighbour advertisements (in)"),
    }
    if flow in names:
        return names[flow]
    base = flow.removesuffix("6")
    if flow.endswith("6") and base in names:
        return _fill(tr("IPv6 {flow}"), flow=names[base])
    return flow


def verdict_word(verdict: str, tr: Translate = english) -> str:
    """A flow's or a hotspot's verdict in one word."""
    words = {
        "accept": tr("ok"),
        "ok": tr("ok"),
        "drop": tr("blocked"),
        "blocked": tr("blocked"),
        "unknown": tr("unknown"),
    }
    return words.get(verdict, verdict)


SERVICES = ("ra", "dhcp6", "dns6")


def service_name(service: str, tr: Translate = english) -> str:
    names = {
        "ra": tr("router advertisements (SLAAC)"),
        "dhcp6": tr("DHCPv6"),
        "dns6": tr("DNS over IPv6"),
    }
    return names.get(service, service)


# --- what blocks ------------------------------------------------------------------------------


def culprit_kind(blocked_by: Mapping[str, Any]) -> str:
    """What kind of thing blocks: "forwarding-off", "no-route", "no-masquerade", "untracked",
    "policy" (a chain's default), "rule" (a rule in a chain) or "other"."""
    owner = blocked_by.get("owner")
    special = {
        "sysctl": "forwarding-off",
        "routing": "no-route",
        "nat": "no-masquerade",
        "conntrack": "untracked",
    }
    if owner in special:
        return special[str(owner)]
    if blocked_by.get("table") is None:
        return "other"
    return "policy" if str(blocked_by.get("rule") or "").startswith("policy") else "rule"


def _where(drop: Mapping[str, Any], tr: Translate) -> str:
    """The culprit as the engine names it: "Docker's filter FORWARD policy drop"."""
    kind = culprit_kind(drop)
    rule = str(drop.get("rule") or "")
    if kind == "forwarding-off":
        return tr("the kernel's forwarding setting")
    if kind == "other":
        return rule
    fields = {
        "family": drop.get("family"),
        "table": drop.get("table"),
        "chain": drop.get("chain"),
        "source": drop.get("source"),
        "rule": rule,
    }
    if drop.get("owner") == UNKNOWN:
        if kind == "policy":
            text = tr(
                "the {rule} of chain {chain} in table {family} {table} ({source}), "
                "which no known program set,"
            )
        else:
            text = tr("a rule in table {family} {table} ({source}) chain {chain} that no known "
                      "program wrote")  # fmt: skip
        return _fill(text, **fields)
    who = display_owner(str(drop.get("owner") or UNKNOWN))
    if kind == "policy":
        return _fill(tr("{who}'s {table} {chain} {rule}"), who=who, **fields)
    return _fill(tr("{who}'s {table} {chain} rule"), who=who, **fields)


def verdict_summary(hotspot: Mapping[str, Any], tr: Translate = english) -> str:
    """The verdict in one sentence, as ``summary`` in the JSON: "blocked: Docker's filter
    FORWARD policy drop stops outbound traffic from wlp3s0". `hotspot` has ``iface``,
    ``verdict``, ``blocked_by``, ``blocked_flow``, ``reason`` and ``flows`` (each with
    ``verdict``, ``informative``, ``reason`` and ``uncertain`` rules)."""
    iface = hotspot.get("iface", "")
    verdict = hotspot.get("verdict")
    drop = hotspot.get("blocked_by")
    flow_id = hotspot.get("blocked_flow")
    if verdict == "ok":
        text = tr("ok: clients of {iface} can get an address, look up names and reach the internet")
        return _fill(text, iface=iface)
    if verdict == "blocked" and drop and flow_id:
        flow = flow_phrase(str(flow_id), tr)
        kind = culprit_kind(drop)
        if kind == "no-masquerade":
            text = tr("blocked: {rule}, so {flow} from {iface} gets no answer")
            return _fill(text, rule=drop.get("rule"), flow=flow, iface=iface)
        if kind == "no-route":
            text = tr("blocked: the host has no default route for {flow} from {iface}")
            return _fill(text, flow=flow, iface=iface)
        if str(flow_id).startswith("reply"):
            text = tr("blocked: {where} stops {flow} to {iface}")
        else:
            text = tr("blocked: {where} stops {flow} from {iface}")
        return _fill(text, where=_where(drop, tr), flow=flow, iface=iface)
    if verdict == "unknown":
        flows = hotspot.get("flows") or {}
        unsure = {
            name: flow
            for name, flow in flows.items()
            if flow.get("verdict") == "unknown" and not flow.get("informative")
        }
        names = ", ".join(flow_phrase(name, tr) for name in unsure)
        rules = {str(ref.get("rule")) for f in unsure.values() for ref in f.get("uncertain") or ()}
        reason = next((str(f["reason"]) for f in unsure.values() if f.get("reason")), "")
        text = tr("unknown: cannot tell whether {flows} from {iface} get through: {reason}")
        sentence = _fill(text, flows=names, iface=iface, reason=reason)
        if rules:
            detail = _fill(tr(" (undecidable: {rules})"), rules="; ".join(sorted(rules)[:3]))
            sentence += detail
        return sentence
    return f"{verdict}: {hotspot.get('reason') or ''}"


def services_text(iface: str, served: Sequence[str], known: bool, tr: Translate = english) -> str:
    """Which IPv6 services a hotspot serves, and where that was read."""
    yes = [service_name(s, tr) for s in SERVICES if s in served]
    no = [service_name(s, tr) for s in SERVICES if s not in served]
    text = _fill(tr("IPv6: {iface} serves {services}"), iface=iface,
                 services=", ".join(yes) or tr("nothing"))  # fmt: skip
    if no:
        text += _fill(tr("; not {services} (their flows only inform)"),
                      services=", not ".join(no))  # fmt: skip
    if not known:
        text += tr(
            " — assumed: the snapshot does not say, NetworkManager's own sharing serves this"
        )
    return text


# --- fixes ------------------------------------------------------------------------------------


def strategy_description(strategy: str, tr: Translate = english) -> str:
    """What a strategy does, in a phrase (``fixes.STRATEGIES`` keeps the English)."""
    descriptions = {
        "docker-user": tr("accept the hotspot's traffic in Docker's DOCKER-USER chain"),
        "sysctl-forwarding": tr("turn IPv4/IPv6 forwarding on"),
        "docker-no-drop": tr(
            "Docker 28's ip-forward-no-drop option, and the FORWARD policy accept now"
        ),
        "docker-stale-drop": tr("clear the FORWARD drop Docker's old iptables backend left behind"),
        "ufw-route": tr("ufw's own rules: route allow to the uplinks, allow DHCP and DNS in"),
        "firewalld-zone": tr("put the hotspot into firewalld's nm-shared zone, through firewalld"),
        "forward-allow": tr("accept the hotspot's forwarded traffic before the rule that drops it"),
        "input-allow": tr("accept DHCP and DNS from the hotspot before the rule that drops them"),
        "docker-netns": tr(
            "run dockerd in a network namespace of its own, its rules off the host's"
        ),
        "combined": tr("several strategies in one plan, for several culprits at once"),
    }
    return descriptions.get(strategy, strategy)


def strategy_tradeoff(strategy: str, tr: Translate = english) -> str:
    """What a strategy costs or leaves open, in a sentence for the applet (the plan's own
    ``tradeoff`` names the tables: the command line prints that)."""
    tradeoffs = {
        "docker-user": tr(
            "Least privileged: the phones reach the internet, Docker's networks stay closed "
            "to them."
        ),
        "sysctl-forwarding": tr(
            "This computer forwards traffic between its networks, as a router does."
        ),
        "docker-no-drop": tr("Docker's other forwarded traffic is no longer dropped by default."),
        "docker-stale-drop": tr("Only rules Docker no longer uses are removed."),
        "ufw-route": tr("ufw keeps the rules; they let only the hotspot's traffic through."),
        "firewalld-zone": tr(
            "firewalld keeps the hotspot in the zone it made for shared connections (or in its "
            "trusted zone, which accepts every service from the hotspot); it survives reloads."
        ),
        "forward-allow": tr(
            "It edits another program's firewall table, which that program may rewrite; "
            "nothing else is let through."
        ),
        "input-allow": tr(
            "It edits another program's firewall table, which that program may rewrite; "
            "nothing else is let through."
        ),
        "docker-netns": tr(
            "Published ports then live on Docker's own address, not on this computer's; "
            "containers no longer see this computer's interfaces; Docker restarts once."
        ),
        "combined": tr("Each step as its strategy does."),
    }
    return tradeoffs.get(strategy, "")


def plan_summary(plan: Mapping[str, Any], tr: Translate = english) -> str:
    """A plan in one sentence for the applet, from its strategy and interface."""
    strategy = str(plan.get("strategy") or "")
    steps = plan.get("steps") or ()
    if strategy == "combined" and steps:
        parts = [strategy_description(str(s.get("strategy")), tr) for s in steps]
        return _fill(tr("For {iface}: {steps}"), iface=plan.get("iface", ""),
                     steps=tr("; then ").join(parts))  # fmt: skip
    return _fill(tr("For {iface}: {action}"), iface=plan.get("iface", ""),
                 action=strategy_description(strategy, tr))  # fmt: skip
