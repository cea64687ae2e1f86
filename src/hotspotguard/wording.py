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


def flow_description(flow: str, params: Mapping[str, str], tr: Translate = english) -> str:
    """The packet a flow stands for, in a sentence: "new IPv4 connection from 10.42.0.10 to the
    internet via up0" (`params` from `verdict.flows.Flow.params`)."""
    templates = {
        "dhcp": tr("DHCP discover from a new client on {iface}"),
        "dhcp6": tr("DHCPv6 solicit from a new client on {iface}"),
        "dns": tr("IPv4 DNS query from {client} to {gateway}"),
        "dns6": tr("IPv6 DNS query from {client} to {gateway}"),
        "outbound": tr("new IPv4 connection from {client} to the internet via {uplink}"),
        "outbound6": tr("new IPv6 connection from {client} to the internet via {uplink}"),
        "reply": tr("the internet's IPv4 reply to {client}"),
        "reply6": tr("the internet's IPv6 reply to {client}"),
        "arp_in": tr("ARP request for {gateway} from {client} on {iface}"),
        "arp_out": tr("the host's ARP reply to {client} on {iface}"),
        "rs6": tr("router solicitation from a new client on {iface}"),
        "ra6": tr("router advertisement to the clients on {iface}"),
        "ns6_in": tr("neighbour solicitation from a client resolving its router on {iface}"),
        "na6_out": tr("neighbour advertisement of the router to a client on {iface}"),
        "ns6_out": tr("neighbour solicitation for {client} from the host on {iface}"),
        "na6_in": tr("neighbour advertisement from {client} to the host on {iface}"),
    }
    fields = dict(params)
    if "uplink" in fields and not fields["uplink"]:
        fields["uplink"] = tr("no uplink")
    return _fill(templates[flow], **fields) if flow in templates else flow


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
        names = tr(", ").join(flow_phrase(name, tr) for name in unsure)
        rules = {str(ref.get("rule")) for f in unsure.values() for ref in f.get("uncertain") or ()}
        reason = next((reason_sentence(f, tr) for f in unsure.values() if f.get("reason")), "")
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
                 services=tr(", ").join(yes) or tr("nothing"))  # fmt: skip
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


# --- reasons ---------------------------------------------------------------------------------


class Reason(str):
    """A reason as a sentence (the English one: ``str`` everywhere a reason was text) that
    keeps what it was built from — its code and parameters — so the applet words it again in
    the person's language (``reason_fields`` puts both into the JSON, beside ``reason``).
    Parameters are JSON values; a nested reason is given as ``reason_fields(…)``."""

    code: str
    params: dict[str, Any]

    def __new__(cls, code: str, /, **params: Any) -> Reason:
        made = super().__new__(cls, reason_text(code, params))
        made.code = code
        made.params = params
        return made


def reason_of(error: BaseException) -> str:
    """An exception's reason, kept structured when it was raised with a `Reason`."""
    first = error.args[0] if error.args else None
    return first if isinstance(first, Reason) else str(error).splitlines()[0] if str(error) else ""


def reason_fields(reason: str | None) -> dict[str, Any]:
    """``reason``, ``reason_code`` and ``reason_params`` for a JSON object (code and params
    are null for a reason that is only text)."""
    if isinstance(reason, Reason):
        return {"reason": str(reason), "reason_code": reason.code, "reason_params": reason.params}
    return {"reason": reason, "reason_code": None, "reason_params": None}


def reason_sentence(doc: Mapping[str, Any], tr: Translate = english) -> str:
    """The reason of a JSON object (``reason``, ``reason_code``, ``reason_params``) in the
    person's language; a reason without a code (or with one this version does not know)
    keeps its words."""
    code = doc.get("reason_code")
    if isinstance(code, str) and code in _REASONS:
        return reason_text(code, doc.get("reason_params") or {}, tr)
    return str(doc.get("reason") or "")


def _param(value: Any, tr: Translate) -> str:
    if isinstance(value, Mapping):
        if "iface" in value and "verdict" in value:  # a verdict's facts: its sentence
            return verdict_summary(value, tr)
        return reason_sentence(value, tr)
    if isinstance(value, (list, tuple)):
        return tr(", ").join(_param(v, tr) for v in value)
    if isinstance(value, int) and not isinstance(value, bool):
        return f"{value:,}"
    return str(value)


def reason_text(code: str, params: Mapping[str, Any], tr: Translate = english) -> str:
    """The sentence of reason `code` with its `params` (an unknown code is said as itself)."""
    template = _REASONS.get(code)
    if template is None:
        return code
    fields = {name: _param(value, tr) for name, value in params.items()}
    if code == "firewalld-no-zone-enough":
        fields["failed"] = tr("; ").join(
            _fill(tr("in {zone}, {why}"), zone=f.get("zone"), why=_param(f.get("why"), tr))
            for f in params.get("failed") or ()
        )
    if code == "no-fix-works":
        fields["failed"] = tr("; ").join(
            _fill(tr("{strategy}: {why}"), strategy=f.get("strategy"), why=_param(f.get("why"), tr))
            for f in params.get("failed") or ()
        )
    if code == "not-shared" and not params.get("shared"):
        fields["shared"] = tr("none")
    if code == "firewalld-no-zone" and not params.get("zones"):
        fields["zones"] = tr("none")
    if code == "allow-none-dropped":
        fields["kind"] = (
            tr("forwarded traffic") if params.get("kind") == "forward" else tr("DHCP and DNS")
        )
    return _fill(template(tr), **fields)


def _reasons() -> dict[str, Callable[[Translate], str]]:
    """Every reason code's sentence, with ``{name}`` for its parameters: why a strategy is not
    available here (the planners'), and why the engine could not decide a flow, or what drops
    it where no rule does."""
    return {
        # why a strategy is not available here
        "not-a-hotspot": lambda tr: tr("{iface} is not a hotspot (no shared connection uses it)"),
        "no-uplink": lambda tr: tr(
            "there is no uplink (no default route) to let the hotspot out to"
        ),
        "no-uplink-route": lambda tr: tr(
            "there is no uplink (no default route) to route the hotspot to"
        ),
        "no-docker-user": lambda tr: tr(
            "Docker's DOCKER-USER chain is not there (Docker not running, or Docker 29 with "
            "its nftables backend)"
        ),
        "forwarding-already-on": lambda tr: tr("forwarding is already on"),
        "ufw-not-checked": lambda tr: tr(
            "whether ufw is installed is not in the snapshot (explain on the machine itself to "
            "check)"
        ),
        "ufw-not-installed": lambda tr: tr("ufw is not installed here (no /usr/sbin/ufw)"),
        "ufw-not-active": lambda tr: tr("ufw is not active here (its user chains are not loaded)"),
        "ufw-drops-nothing": lambda tr: tr("ufw drops none of the hotspot's traffic"),
        "firewalld-not-loaded": lambda tr: tr(
            "firewalld's table (inet firewalld) is not loaded here"
        ),
        "firewalld-not-checked": lambda tr: tr(
            "firewalld's zones are not in the snapshot (explain on the machine itself to check)"
        ),
        "firewalld-not-running": lambda tr: tr(
            "firewalld is not running (its table is loaded, but nothing answers on the system bus)"
        ),
        "firewalld-no-zone": lambda tr: tr(
            "firewalld has no zone nm-shared or trusted to put the hotspot in (its zones: {zones})"
        ),
        "firewalld-zone-unknown": lambda tr: tr("firewalld's settings of zone {zone} are unknown"),
        "firewalld-no-zone-enough": lambda tr: tr("no zone of firewalld's is enough: {failed}"),
        "netns-not-checked": lambda tr: tr(
            "the host's Docker, networks and systemd are not in the snapshot (explain on the "
            "machine itself to check)"
        ),
        "netns-no-dockerd": lambda tr: tr("Docker is not installed here (no dockerd)"),
        "netns-no-subnet": lambda tr: tr(
            "no free private /30 for the veth: the host's addresses and routes cover {pools}"
        ),
        "netns-dropin-not-ours": lambda tr: tr("{path} is there and is not hotspotguard's"),
        "netns-stale-veth": lambda tr: tr(
            "{link} is a veth an earlier namespace set-up left: remove it first "
            "(ip link delete {link})"
        ),
        "netns-link-not-bridge": lambda tr: tr("{link} is a {kind} device, not Docker's bridge"),
        "docker-live-iptables": lambda tr: tr(
            "Docker does not run its nftables backend here (no docker-bridges table): "
            "its iptables rules are live, not stale"
        ),
        "docker-no-stale-rules": lambda tr: tr("Docker's old iptables backend left no rules here"),
        "docker-json-invalid": lambda tr: tr("{path} is not valid JSON ({error}): fix it first"),
        "docker-json-not-object": lambda tr: tr("{path} is not a JSON object: fix it first"),
        "docker-version-not-checked": lambda tr: tr(
            "Docker's version is not in the snapshot: the option exists from Docker {needed} on "
            "(explain on the machine itself to check)"
        ),
        "docker-not-installed": lambda tr: tr(
            "Docker is not installed here (no dockerd, no API socket)"
        ),
        "docker-too-old": lambda tr: tr(
            "Docker {version} is older than {needed}: the {option} option does not exist"
        ),
        "allow-table-missing": lambda tr: tr("{family} {table} is not in the ruleset"),
        "allow-other-source": lambda tr: tr(
            "the drop is in {family} {table} ({source}), which this strategy does not edit"
        ),
        "allow-chain-missing": lambda tr: tr("{family} {table} has no chain {chain}"),
        "allow-no-address": lambda tr: tr("the hotspot has no address for {flows}"),
        "allow-none-dropped": lambda tr: tr("no firewall table drops the hotspot's {kind}"),
        "allow-no-handle": lambda tr: tr("the ruleset has no handle for {rule}"),
        "unknown-strategy": lambda tr: tr("unknown strategy {strategy}"),
        "chain-missing": lambda tr: tr("{family} {table} {chain} is not there"),
        "combined-one-enough": lambda tr: tr("one strategy is all it takes here"),
        "combined-none": lambda tr: tr("no strategy gets past what blocks the hotspot"),
        "not-enough": lambda tr: tr("{strategy} would not be enough: after it, {after}"),
        "planner-failed": lambda tr: tr("it could not be planned: {error}"),
        # why the engine cannot decide a flow
        "budget": lambda tr: tr(
            "evaluating this flow would take more than {steps} rule visits (chains that jump to "
            "chains many times over): the engine stopped rather than run unbounded"
        ),
        "too-many-undecidable": lambda tr: tr("too many undecidable rules"),
        "rewrites-destination": lambda tr: tr("{kind} rewrites the destination"),
        "hands-to-program": lambda tr: tr(
            "a rule hands the packet to a program or an unknown target"
        ),
        "missing-chain": lambda tr: tr("{kind} to a chain that does not exist: {target}"),
        "nested-too-deep": lambda tr: tr("jumps nested too deep"),
        "sysctl-missing": lambda tr: tr("{key} is not in the snapshot"),
        "masquerade-undecidable": lambda tr: tr(
            "whether the connection is masqueraded is undecidable"
        ),
        "conntrack-zone": lambda tr: tr(
            "the connection is in conntrack zone {zone} and its reply is looked up in zone "
            "{reply_zone}: conntrack does not find it"
        ),
        "no-routes": lambda tr: tr(
            "the snapshot has no routes, which its route lookups (fib, rpfilter) need"
        ),
        "routes-policy-rules": lambda tr: tr(
            "policy routing rules select packets by mark, interface or address: the engine "
            "cannot make its route lookups (fib, rpfilter)"
        ),
        "routes-too-many": lambda tr: tr(
            "the host has more than {limit} routes, which the engine does not read: it cannot "
            "make its route lookups (fib, rpfilter)"
        ),
        "ingress-device": lambda tr: tr(
            "the snapshot does not say which device the ingress chain {family} {table} {chain} "
            "is on (nft 1.0.x's JSON leaves it out), and it may drop the flow"
        ),
        "conntrack-order": lambda tr: tr(
            "the chain {family} {table} {chain} is at conntrack's priority ({priority}): "
            "whether it runs before or after conntrack depends on which registered last, "
            "which no snapshot holds, and the outcomes differ"
        ),
        "nat-order": lambda tr: tr(
            "the chain {family} {table} {chain} is at the nat core's priority: whether it sees "
            "the packet before or after its address translation depends on which registered "
            "last, which no snapshot holds, and the outcomes differ"
        ),
        "undecidable-rules": lambda tr: tr("the outcome depends on rules the engine cannot decide"),
        # what drops a flow where no rule does
        "not-a-router": lambda tr: tr(
            "the host is no IPv6 router ({key} = 0): nothing listens on ff02::2"
        ),
        "untracked-reply": lambda tr: tr(
            "the reply is untracked, so nothing translates it back to the client"
        ),
        "no-default-route": lambda tr: tr("no default route: the host has no uplink"),
        "pkttype": lambda tr: tr(
            "a rule set the packet type to {pkttype}: the kernel forwards only packets of type host"
        ),
        "forwarding-off": lambda tr: tr("forwarding is off ({key} = 0)"),
        "unmasqueraded": lambda tr: tr(
            "the connection leaves unmasqueraded: replies cannot find the client"
        ),
        "no-address": lambda tr: tr("the hotspot has no address"),
        # a system tool that failed: our sentence, the tool's own words quoted as its detail
        "tool-failed": lambda tr: tr(
            "{tool} failed while {step} (exit status {status}): “{detail}”"
        ),
        "tool-failed-silently": lambda tr: tr(
            "{tool} failed while {step} (exit status {status}) and said nothing"
        ),
        "tool-missing": lambda tr: tr("{tool} is not installed, and {step} needs it"),
        "tool-timeout": lambda tr: tr("{tool} did not finish in {seconds} s while {step}"),
        "tool-unreadable": lambda tr: tr("{tool} printed nothing readable while {step}"),
        "sysctl-not-set": lambda tr: tr("cannot set {name}: “{detail}”"),
        "firewalld-refused": lambda tr: tr("firewalld refused {member}: “{detail}”"),
        "firewalld-gone": lambda tr: tr(
            "firewalld is not running (nothing answers on the system bus)"
        ),
        "firewalld-no-bus": lambda tr: tr("firewalld is not running (there is no system bus)"),
        "firewalld-timeout": lambda tr: tr("firewalld did not answer in {seconds} s"),
        # the step a tool was run for ({step} above)
        "step-read-table": lambda tr: tr("reading {family} table {table}"),
        "step-read-chain": lambda tr: tr("reading {family} {table} {chain}"),
        "step-change-chain": lambda tr: tr("changing the rules of {family} {table} {chain}"),
        "step-load-table": lambda tr: tr("loading {family} table {table}"),
        "step-delete-table": lambda tr: tr("deleting {family} table {table}"),
        "step-reload-units": lambda tr: tr("having systemd read its unit files again"),
        "step-restart-unit": lambda tr: tr("restarting {unit}"),
        "step-ufw": lambda tr: tr("running “ufw {args}”"),
        # why a fix could not be applied, undone or kept
        "generation-unread": lambda tr: tr("cannot read the ruleset's generation: “{detail}”"),
        "firewall-busy": lambda tr: tr("the firewall keeps changing; try again in a moment"),
        "chain-gone": lambda tr: tr("{table} {chain} is not there any more"),
        "nothing-to-fix": lambda tr: tr("{iface} is not blocked: nothing to fix"),
        "no-fix-works": lambda tr: tr("no fix works here ({failed})"),
        "no-fix-built": lambda tr: tr("no fix is built for this yet: {verdict}"),
        "no-fix-applied": lambda tr: tr("no fix has been applied"),
        "fix-not-applied": lambda tr: tr("no fix {fix} is applied"),
        "record-unsaved": lambda tr: tr("cannot save the record of fixes: “{detail}”"),
        "files-unwritten": lambda tr: tr("cannot write the files that keep fixes: “{detail}”"),
        "interrupted-fix": lambda tr: tr("cannot finish an interrupted fix: {why}"),
        "not-shared": lambda tr: tr(
            "{iface} is not a shared connection now ({source} shares: {shared}): "
            "hotspotguard fixes only hotspots"
        ),
        # what a fix edits is not as planned any more
        "file-not-as-planned": lambda tr: tr(
            "{path} is there and is not as planned: preview the fix again"
        ),
        "table-not-as-planned": lambda tr: tr(
            "table {family} {table} is there and is not as planned: preview the fix again"
        ),
        "file-moved": lambda tr: tr("{path} changed since the fix was planned: preview it again"),
        "file-edited": lambda tr: tr("{path} was edited since the fix: left as it is"),
        "file-edited-kept": lambda tr: tr(
            "{path} was edited since the fix: left as it is; the old one is in {backup}"
        ),
        "table-edited": lambda tr: tr(
            "table {family} {table} was changed since the fix: left as it is"
        ),
    }


_REASONS = _reasons()
