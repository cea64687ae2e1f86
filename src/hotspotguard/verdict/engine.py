"""Pure evaluation of a flow through every base chain on every hook it crosses.

Netfilter's rules, as the kernel applies them: base chains registered on a hook run in
priority order; `accept` ends only its own base chain, `drop`/`reject` anywhere is
final; `jump` returns, `goto` does not; a verdict map is a jump table; nat chains see
only a connection's first packet. Where a rule cannot be decided (an unreadable match,
a `limit`), evaluation forks: both outcomes are followed, and the flow is `unknown`
only when they disagree. Never a false "accept".
"""

from __future__ import annotations

from bisect import bisect_left
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from typing import Literal, TypeAlias

from hotspotguard.ruleset.model import (
    ADDRESS_TYPES,
    NETWORK_TYPES,
    PACKET_CHANGES,
    AnonSet,
    Chain,
    Concat,
    CopyMark,
    Ct,
    Effect,
    ExtHeader,
    Fib,
    Flags,
    IPAddress,
    Key,
    Masked,
    Match,
    Meta,
    NamedSet,
    Nat,
    Notrack,
    Opaque,
    Payload,
    Range,
    Rule,
    RuleRef,
    Ruleset,
    SetElements,
    SetMark,
    SetMeta,
    SetRef,
    Table,
    TcpOption,
    Uncertain,
    Verdict,
    VerdictMap,
)
from hotspotguard.ruleset.owners import chain_owner
from hotspotguard.ruleset.render import rule_text
from hotspotguard.ruleset.values import CT_STATE_BITS, PROTOCOLS
from hotspotguard.verdict.fib import fib_device, rpfilter
from hotspotguard.verdict.flows import Flow, Packet
from hotspotguard.verdict.index import ChainIndex, RuleIndexes
from hotspotguard.wording import Reason

FlowVerdict = Literal["accept", "drop", "unknown"]

CONNTRACK_PRIORITY = -200
MAX_JUMP_DEPTH = 16  # the kernel's NFT_JUMP_STACK_SIZE
MAX_BRANCHES = 256
# Rule visits per flow, across all branches: hostile rulesets (a few jumps per chain, a few
# chains deep) would otherwise take exponential time within the depth cap. Real rulesets use
# a few hundred (see benchmarks/bench_hostile.py); the budget is far above that.
MAX_STEPS = 200_000
BUDGET_REASON = (
    "evaluating this flow would take more than {steps:,} rule visits (chains that jump to "
    "chains many times over): the engine stopped rather than run unbounded"
)
PORT_PROTOCOLS = frozenset({6, 17, 33, 132, 136})
# the table families whose chains see a packet of each family; the second is the one whose
# ingress chains do (with netdev's)
FAMILIES_FOR = {"ip": ("ip", "inet"), "ip6": ("ip6", "inet"), "arp": ("arp", "netdev")}
ARP_OPERATIONS = {1: "request", 2: "reply"}


# Pseudo keys of iptables matches that are false for our packets, which are never bridged,
# fragmented, or carry IPv6 extension headers (xt_physdev, -f, ip6t_rt/frag/hbh/dst).
PSEUDO_ZERO = frozenset({"bridged", "fragment", "exthdr"})


# The ct status bits the engine knows for its flows: whether the connection was source- or
# destination-NATed (it follows the NAT its flows go through); the rest (seen-reply, assured,
# confirmed, ...) depends on timing and history the snapshot cannot hold.
CT_NAT_BITS = 0x30


@dataclass(frozen=True, slots=True)
class PartialBits:
    """A bitmask value of which only the `known` bits are known."""

    value: int
    known: int

    def exact(self, mask: int = -1) -> int | None:
        """The value under `mask` if every bit of it is known, else None."""
        if mask & ~self.known & 0xFFFFFFFF:
            return None
        return self.value & mask


class _Break:
    """The kernel's NFT_BREAK: the expression cannot apply, so the rule does not match."""


BREAK = _Break()


# --- what the report needs ------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Step:
    """One rule that acted on the packet in a chain (or the chain's policy: index -1)."""

    chain: str
    index: int
    action: str
    text: str


@dataclass(frozen=True, slots=True)
class ChainVisit:
    hook: str
    family: str
    table: str
    chain: str
    priority: int
    source: str
    owner: str
    policy: str
    verdict: FlowVerdict
    steps: tuple[Step, ...]


@dataclass(frozen=True, slots=True)
class Drop:
    """The rule (or policy, or setting) that stops a flow, and who wrote it."""

    owner: str
    family: str | None
    table: str | None
    chain: str | None
    rule: str
    hook: str
    source: str = "nft"


@dataclass(frozen=True)
class FlowResult:
    flow: Flow
    verdict: FlowVerdict
    visits: tuple[ChainVisit, ...]
    dropped_by: Drop | None = None
    nat: str | None = None
    uncertain: tuple[RuleRef, ...] = ()
    reason: str | None = None
    untracked: bool = False  # the packet left untracked (notrack): no NAT, no reply entry
    nat_address: IPAddress | None = None  # the source the NAT gave (None: unknown)
    ct_mark: int = 0  # the connection's mark after this packet, which replies carry
    ct_zone: int = 0  # the conntrack zone the packet was looked up in


UNKNOWN_DEVICE = "ingress chain of an unknown device"
CONNTRACK_ORDER = "chain at conntrack's priority, assumed to run before conntrack"
NAT_ORDER = "chain at the nat core's priority, assumed to run before it"


def uncertainty_reason(assumptions: tuple[RuleRef, ...]) -> str:
    """Why a flow whose outcome hangs on `assumptions` is unknown, in one sentence."""
    for ref in assumptions:
        if ref.index == -1 and ref.text == UNKNOWN_DEVICE:
            return Reason("ingress-device", family=ref.family, table=ref.table, chain=ref.chain)
        if ref.index == -1 and ref.text == CONNTRACK_ORDER:
            return Reason(
                "conntrack-order",
                family=ref.family,
                table=ref.table,
                chain=ref.chain,
                priority=CONNTRACK_PRIORITY,
            )
        if ref.index == -1 and ref.text == NAT_ORDER:
            return Reason("nat-order", family=ref.family, table=ref.table, chain=ref.chain)
    return Reason("undecidable-rules")


@dataclass(slots=True)
class Budget:
    """The work one flow's evaluation may still do: forks (branches an undecidable rule
    opens) and steps (rule visits across all branches)."""

    forks: int = MAX_BRANCHES
    steps: int = MAX_STEPS
    limit: int = MAX_STEPS

    @property
    def used(self) -> int:
        return self.limit - self.steps


# --- the base chains of each hook, in the kernel's order ------------------------------------


@dataclass(frozen=True, slots=True)
class HookEntry:
    table: Table
    chain: Chain
    order: int


def _uses_conntrack(expr: object) -> bool:
    if isinstance(expr, Match):
        keys = expr.left.keys if isinstance(expr.left, Concat) else (expr.left,)
        return any(
            isinstance(k, Ct) or (isinstance(k, Masked) and isinstance(k.key, Ct)) for k in keys
        )
    if isinstance(expr, VerdictMap):
        return isinstance(expr.key, Ct)
    if isinstance(expr, SetMark):
        return expr.connection
    if isinstance(expr, CopyMark):
        return True
    if isinstance(expr, SetMeta):
        return expr.key.startswith("ct ")
    if isinstance(expr, Effect):  # `ct event set`, `ct helper set`, ...: they need a connection
        return expr.kind.startswith("ct ")
    return isinstance(expr, Nat)


_OWN_FAMILIES: Mapping[str, frozenset[str]] = {
    "ip": frozenset({"ip"}),
    "ip6": frozenset({"ip6"}),
    "inet": frozenset({"ip", "ip6"}),
}
#: what conntrack_families found per chain: (id(chain), table family, table source) -> families
ChainConntrack = dict[tuple[int, str, str], frozenset[str]]


def conntrack_families(ruleset: Ruleset, known: ChainConntrack | None = None) -> frozenset[str]:
    """Packet families whose connection tracking runs. The kernel starts it for a family
    only when a rule needs it (a ct match, a NAT statement; an iptables nat table): until
    then nat chains never run, whatever they say. `known` remembers each chain's part (kept
    across rulesets that share chains: see HookIndex.reusing)."""
    families: set[str] = set()
    for table in ruleset.tables:
        own = _OWN_FAMILIES.get(table.family, frozenset())
        if not own or own <= families:
            continue
        for chain in table.chains:
            key = (id(chain), table.family, table.source)
            part = known.get(key) if known is not None else None
            if part is None:
                part = _chain_conntrack(chain, own, table.source != "nft")
                if known is not None:
                    known[key] = part
            families |= part
            if own <= families:
                break
    return frozenset(families)


def _chain_conntrack(chain: Chain, own: frozenset[str], xt_notrack: bool) -> frozenset[str]:
    """The families of `own` that a chain's rules start conntrack for (iptables' CT
    --notrack starts it, xt_CT; nft's notrack does not)."""
    found: set[str] = set()
    for rule in chain.rules:
        for expr in rule.exprs:
            if _uses_conntrack(expr) or (xt_notrack and isinstance(expr, Notrack)):
                if isinstance(expr, Nat) and expr.family in own:
                    found.add(expr.family)
                else:
                    return own
    return frozenset(found)


NAT_CORE_PRIORITY = {"prerouting": -100, "output": -100, "input": 100, "postrouting": 100}
NAT_AFTER = 2**31  # sorts a chain at the nat core's priority after every nat chain there


def _hook_order(entry: HookEntry) -> tuple[int, int, int]:
    """Where a base chain runs on its hook. nat chains run inside the nat core's own hook
    (dstnat -100 / srcnat 100), ordered among themselves by their priority. Of equal
    priorities the most recently registered runs first (nf_hook_entries_grow inserts a new
    hook before its equals); the listing is in creation order."""
    chain = entry.chain
    if chain.type == "nat" and chain.hook in NAT_CORE_PRIORITY:
        return (NAT_CORE_PRIORITY[chain.hook], chain.priority, -entry.order)
    if chain.hook in NAT_CORE_PRIORITY and chain.priority == NAT_CORE_PRIORITY[chain.hook]:
        # at exactly the nat core's priority: after it here; the evaluation also follows the
        # other order (verdict.evaluate), which only the registration history decides
        return (chain.priority, NAT_AFTER, -entry.order)
    return (chain.priority, 0, -entry.order)


@dataclass
class HookIndex:
    """Base chains per (packet family, hook), sorted by priority then registration order."""

    entries: dict[tuple[str, str], list[HookEntry]] = field(default_factory=dict)
    ingress: list[HookEntry] = field(default_factory=list)
    rules: RuleIndexes = field(default_factory=RuleIndexes)
    owners: dict[int, str] = field(default_factory=dict)
    conntrack: frozenset[str] = frozenset()  # packet families whose conntrack is running
    conntrack_chains: ChainConntrack = field(default_factory=dict)

    def owner(self, entry: HookEntry) -> str:
        """Who owns a base chain (and its policy); remembered, as it reads the whole chain."""
        ident = id(entry.chain)
        if ident not in self.owners:
            self.owners[ident] = chain_owner(entry.table, entry.chain)
        return self.owners[ident]

    @classmethod
    def of(cls, ruleset: Ruleset) -> HookIndex:
        """The index of `ruleset`, built on first use and kept with it."""
        index = ruleset.derived.get("hook_index")
        if not isinstance(index, HookIndex):
            index = ruleset.derived["hook_index"] = cls.build(ruleset)
        return index

    @classmethod
    def reusing(cls, ruleset: Ruleset, previous: Ruleset) -> HookIndex:
        """`ruleset`'s index (kept with it), with the rule indexes and owners that
        `previous`'s index holds for the chains both rulesets share (the same Chain objects):
        after an incremental update only the chains that changed are indexed again."""
        old = previous.derived.get("hook_index")
        if not isinstance(old, HookIndex):
            index = cls.build(ruleset)
        else:
            chains = [chain for table in ruleset.tables for chain in table.chains]
            shared = {id(chain) for chain in chains}
            known = {k: v for k, v in old.conntrack_chains.items() if k[0] in shared}
            index = cls.build(ruleset, known)
            index.rules = old.rules.carried(chains)
            index.owners = {k: v for k, v in old.owners.items() if k in shared}
        ruleset.derived["hook_index"] = index
        return index

    @classmethod
    def build(cls, ruleset: Ruleset, known: ChainConntrack | None = None) -> HookIndex:
        index = cls(conntrack_chains={} if known is None else known)
        order = 0
        for table in ruleset.tables:
            for chain in table.base_chains:
                order += 1
                entry = HookEntry(table, chain, order)
                if chain.hook == "ingress":
                    if table.family in {"netdev", "inet"}:
                        index.ingress.append(entry)
                    continue
                for packet_family, families in FAMILIES_FOR.items():
                    if table.family in families:
                        index.entries.setdefault((packet_family, str(chain.hook)), []).append(entry)
        index.conntrack = conntrack_families(ruleset, index.conntrack_chains)
        for entries in index.entries.values():
            entries.sort(key=_hook_order)
        index.ingress.sort(key=_hook_order)
        return index

    def chains(self, family: str, hook: str, device: str) -> list[HookEntry]:
        """The base chains a packet of `family` crosses at `hook`; on ingress, those of
        `device` and those whose device the snapshot does not say (the caller decides what
        an unknown device means: never that the chain is absent)."""
        if hook == "ingress":
            return [
                e
                for e in self.ingress
                if (device in e.chain.devices or not e.chain.devices)
                and (e.table.family == "netdev" or FAMILIES_FOR[family][1] == e.table.family)
            ]
        return self.entries.get((family, hook), [])


# --- reading packet fields ------------------------------------------------------------------

# ICMPv6 types and codes by the names nft and ip6tables write for them (the rule's side keeps
# the name or the number as text; the packet's value is all of them at once)
ICMPV6_TYPE_NAMES: dict[int, tuple[str, ...]] = {
    1: ("destination-unreachable",),
    2: ("packet-too-big",),
    3: ("time-exceeded", "ttl-exceeded"),
    4: ("parameter-problem",),
    128: ("echo-request",),
    129: ("echo-reply",),
    130: ("mld-listener-query",),
    131: ("mld-listener-report",),
    132: ("mld-listener-done", "mld-listener-reduction"),
    133: ("nd-router-solicit", "router-solicitation"),
    134: ("nd-router-advert", "router-advertisement"),
    135: ("nd-neighbor-solicit", "neighbour-solicitation", "neighbor-solicitation"),
    136: ("nd-neighbor-advert", "neighbour-advertisement", "neighbor-advertisement"),
    137: ("nd-redirect", "redirect"),
    143: ("mld2-listener-report",),
}
ICMPV6_CODE_NAMES: dict[int, tuple[str, ...]] = {
    0: ("no-route",),
    1: ("admin-prohibited",),
    3: ("addr-unreachable",),
    4: ("port-unreachable",),
    5: ("policy-fail",),
    6: ("reject-route",),
}


_ICMPV6_NUMBERS: dict[str, int] = {
    name: number
    for table in (ICMPV6_TYPE_NAMES, ICMPV6_CODE_NAMES)
    for number, names in table.items()
    for name in (*names, str(number))
}


def _read_arp(key: Payload, packet: Packet) -> object:
    if packet.family != "arp":
        return BREAK  # an ARP header field of an IP packet
    if key.protocol != "arp":  # an IP or transport header field of an ARP packet: none
        return BREAK if key.protocol in {"ip", "ip6", "th"} or key.protocol in PROTOCOLS else None
    if key.field == "saddr ip":
        return packet.saddr
    if key.field == "daddr ip":
        return packet.daddr
    if key.field == "operation" and packet.arp_operation is not None:
        number = packet.arp_operation
        return frozenset({number, str(number), ARP_OPERATIONS.get(number, str(number))})
    return None


def _icmpv6_names(field: str, number: int) -> frozenset[object]:
    names = (ICMPV6_TYPE_NAMES if field == "type" else ICMPV6_CODE_NAMES).get(number, ())
    return frozenset({number, str(number), *names})


def read(key: Key, packet: Packet) -> object:
    """The value of `key` for `packet`: a value, None (unknown) or BREAK (cannot apply)."""
    if isinstance(key, Meta):
        name = key.key
        if name in {"iifname", "iif"}:
            return packet.iif
        if name in {"oifname", "oif"}:
            return packet.oif
        if name == "l4proto":
            return packet.l4proto
        if name == "nfproto":
            return {"ip": "ipv4", "ip6": "ipv6"}.get(packet.family, "arp")
        if name == "protocol":
            return packet.family
        if name == "mark":
            return packet.mark
        if name == "pkttype":
            return packet.pkttype
        if name == "length":
            return _length(packet)
        if name in PSEUDO_ZERO:
            return 0
        return None
    if isinstance(key, Payload):
        proto = key.protocol
        if proto == "arp" or packet.family == "arp":
            return _read_arp(key, packet)
        if proto in {"ip", "ip6"}:
            if proto != packet.family:
                return BREAK
            if key.field == "saddr":
                return packet.saddr
            if key.field == "daddr":
                return packet.daddr
            if key.field in {"protocol", "nexthdr"}:
                return packet.l4proto
            if key.field == "hoplimit" and proto == "ip6":
                return packet.hoplimit
            return None
        if proto == "th":
            if packet.l4proto == 58 and key.field == "sport" and packet.icmp_type is not None:
                # ICMPv6's first 16 bits are type and code; "dport" would be its checksum
                return (packet.icmp_type << 8) | (packet.icmp_code or 0)
            if packet.l4proto not in PORT_PROTOCOLS:
                return None
        elif proto in PROTOCOLS:
            if packet.l4proto != PROTOCOLS[proto]:
                return BREAK
        else:
            return None
        if key.field == "sport":
            return packet.sport
        if key.field == "dport":
            return packet.dport
        if key.field == "flags" and proto == "tcp":
            return packet.tcp_flags
        if proto == "icmpv6" and key.field in {"type", "code"}:
            number = packet.icmp_type if key.field == "type" else packet.icmp_code
            return None if number is None else _icmpv6_names(key.field, number)
        return None
    if isinstance(key, Ct):
        if key.key == "state":
            return (
                packet.ct_state
                if packet.tracked
                else ("untracked" if packet.ct_state == "untracked" else "invalid")
            )
        if not packet.tracked:
            return BREAK
        if key.key == "direction":
            return packet.ct_direction
        if key.key == "mark":
            return packet.ct_mark
        if key.key == "status":
            return PartialBits(packet.ct_nat, CT_NAT_BITS)
        return None
    if isinstance(key, ExtHeader):
        if packet.family != "ip6":
            return None
        # a client's plain packets carry no extension header: absent, and its fields cannot
        # be read (NFT_BREAK)
        return False if key.field is None else BREAK
    if isinstance(key, TcpOption):
        if packet.l4proto != PROTOCOLS["tcp"]:
            # no TCP header: a field cannot be read (NFT_BREAK); presence reads "absent" in the
            # kernel, but nft lists `meta l4proto tcp tcp option X missing` (the user's own
            # protocol match) and `tcp option X missing` alike, and only the second matches a
            # UDP packet: which one the listing stands for is not known
            return None if key.field is None else BREAK
        if packet.tcp_flags == 0x02 and key.field is None:  # the client's SYN
            return key.name in CLIENT_SYN_OPTIONS
        return None
    if isinstance(key, Fib):
        if key.result in {"oif", "oifname"}:
            return fib_device(packet.routing, key.flags, packet)
        if key.result == "rpfilter":
            return rpfilter(packet.routing, key.flags, packet)
        if key.result in {"type", "addrtype"}:
            kind = packet.fib_daddr_type if "daddr" in key.flags else packet.fib_saddr_type
            if key.result == "addrtype" and packet.family == "ip6" and kind == "local":
                # xt_addrtype on IPv6: UNICAST is the address's kind, so a local unicast
                # address is both (nft's fib says just "local")
                return frozenset({"local", "unicast"})
            return kind
        return None
    if isinstance(key, Masked):
        value = read(key.key, packet)
        if isinstance(value, str) and isinstance(key.key, Ct) and key.key.key == "state":
            value = CT_STATE_BITS.get(value)  # `ct state & (established | related)`
        if isinstance(value, int):
            return value & key.mask
        if isinstance(value, PartialBits):
            return value.exact(key.mask)
        if isinstance(value, ADDRESS_TYPES):  # `ip saddr & 255.0.255.0`
            return type(value)(int(value) & key.mask)
        return value if value is BREAK else None
    if isinstance(key, Concat):
        parts = [_whole(read(k, packet)) for k in key.keys]
        if any(p is BREAK for p in parts):
            return BREAK
        if any(p is None for p in parts):
            return None
        return tuple(parts)
    return None


SYN_LENGTHS = {"ip": Range(40, 80), "ip6": Range(60, 100)}
# The options a client's SYN carries (Linux and Android alike: MSS, SACK permitted,
# timestamps, window scale, padded with NOPs); by name (nft) and by kind (iptables).
CLIENT_SYN_OPTIONS = frozenset(
    {"maxseg", "sack-perm", "timestamp", "window", "nop", "2", "4", "8", "3", "1"}
)


def _length(packet: Packet) -> Range | None:
    """The length of the flows' TCP SYN and SYN-ACK: the IP and TCP headers and at most 40
    bytes of options (what `meta length` reads). Other packets' lengths are not known."""
    if packet.l4proto == PROTOCOLS["tcp"] and packet.tcp_flags in {0x02, 0x12}:
        return SYN_LENGTHS[packet.family]
    return None


def _whole(value: object) -> object:
    """A value compared as a whole: partly known bits are unknown (None)."""
    return value.exact() if isinstance(value, PartialBits) else value


def _range_matches(actual: Range, element: object) -> bool | None:
    """Whether an unknown value within `actual` (an ephemeral port) equals `element`."""
    low, high = actual.low, actual.high
    if isinstance(element, Range):
        if element.low <= low and high <= element.high:  # type: ignore[operator]
            return True
        if element.high < low or high < element.low:  # type: ignore[operator]
            return False
        return None
    if isinstance(element, int):
        return None if low <= element <= high else False  # type: ignore[operator]
    return None


def _element_matches(actual: object, element: object) -> bool | None:
    if isinstance(actual, Range):
        return _range_matches(actual, element)
    if isinstance(element, NETWORK_TYPES):
        if isinstance(actual, ADDRESS_TYPES):
            return actual.version == element.version and actual in element
        return None
    if isinstance(element, Range):
        try:
            return bool(element.low <= actual <= element.high)  # type: ignore[operator]
        except TypeError:
            return None
    if isinstance(element, tuple):
        if not isinstance(actual, tuple) or len(actual) != len(element):
            return None
        result: bool | None = True
        for a, e in zip(actual, element, strict=True):
            part = _element_matches(a, e)
            if part is False:
                return False
            if part is None:
                result = None
        return result
    if isinstance(element, str) and isinstance(actual, str) and element.endswith("*"):
        if element.endswith("\\*"):
            return actual == element[:-2] + "*"
        return actual.startswith(element[:-1])
    if isinstance(element, Opaque):
        return None
    return actual == element


def _in_elements(actual: object, elements: SetElements) -> bool | None:
    compact = elements.compact
    if isinstance(actual, Range):
        possible: bool | None = False if compact is None else compact.lookup_range(actual)
        if possible:
            return True
        for element in (*elements.exact, *elements.other):
            found = _range_matches(actual, element)
            if found:
                return True
            if found is None:
                possible = None
        return possible
    try:
        if actual in elements.exact:
            return True
    except TypeError:
        return None
    result: bool | None = False if compact is None else compact.lookup(actual)
    if result:
        return True
    for element in elements.other:
        found = _element_matches(actual, element)
        if found:
            return True
        if found is None:
            result = None
    return result


def _equals(actual: object, right: object, sets: Mapping[str, NamedSet]) -> bool | None:
    if isinstance(right, AnonSet):
        return _in_elements(actual, right.elements)
    if isinstance(right, SetRef):
        named = sets.get(right.name)
        return None if named is None else _in_elements(actual, named.elements)
    if isinstance(right, Flags):
        return actual in right.names if isinstance(actual, str) else None
    return _element_matches(actual, right)


def test(match: Match, packet: Packet, sets: Mapping[str, NamedSet]) -> bool | _Break | None:
    actual = read(match.left, packet)
    if actual is BREAK:
        return BREAK
    if actual is None or isinstance(match.right, Opaque):
        return None
    op = match.op
    if isinstance(match.left, Fib) and isinstance(actual, str):
        # a device found ("" for none): `exists`/`missing`, and `oif 0` for none
        if isinstance(match.right, bool):
            actual = actual != ""
        elif match.right in {"0", 0}:
            match = Match(match.left, match.op, "")
    if isinstance(actual, PartialBits):
        if op == "in" and isinstance(match.right, int):  # `ct status dnat`: a bit test
            if actual.value & match.right:
                return True
            return None if actual.exact(match.right) is None else False
        actual = actual.exact()
        if actual is None:
            return None
    if isinstance(actual, frozenset) and op in {"<", ">", "<=", ">="}:
        # an ICMPv6 type or code (its number and names) against a bound named or numbered
        number = next((a for a in actual if isinstance(a, int)), None)
        right = match.right
        bound = _ICMPV6_NUMBERS.get(right) if isinstance(right, str) else right
        if number is None or not isinstance(bound, int) or isinstance(bound, bool):
            return None
        actual = number
        match = Match(match.left, op, bound)
    if isinstance(actual, frozenset):  # several kinds at once: equal if any is
        results = {_equals(a, match.right, sets) for a in actual}
        equal = True if True in results else (None if None in results else False)
        if op in {"==", "in"}:
            return equal
        return None if equal is None or op != "!=" else not equal
    if op == "in" and isinstance(match.right, int) and isinstance(actual, int):
        return actual & match.right != 0  # `tcp flags syn`: a bit test, not equality
    if op in {"==", "in"}:
        return _equals(actual, match.right, sets)
    if op == "!=":
        equal = _equals(actual, match.right, sets)
        return None if equal is None else not equal
    if isinstance(actual, Range):
        return _compare_range(actual, op, match.right)
    try:
        if op == "<":
            return bool(actual < match.right)  # type: ignore[operator]
        if op == ">":
            return bool(actual > match.right)  # type: ignore[operator]
        if op == "<=":
            return bool(actual <= match.right)  # type: ignore[operator]
        if op == ">=":
            return bool(actual >= match.right)  # type: ignore[operator]
    except TypeError:
        return None
    return None


def _compare_range(actual: Range, op: str, right: object) -> bool | None:
    if not isinstance(right, int):
        return None
    low, high = actual.low, actual.high
    assert isinstance(low, int) and isinstance(high, int)
    checks = {
        "<": (high < right, low >= right),
        ">": (low > right, high <= right),
        "<=": (high <= right, low > right),
        ">=": (low >= right, high < right),
    }
    always, never = checks.get(op, (False, False))
    return True if always else False if never else None


def _before_conntrack(packet: Packet) -> bool:
    """Whether conntrack has yet to look the packet up (what notrack and zones act on)."""
    return not packet.tracked and packet.ct_state == "invalid"


# --- one rule -------------------------------------------------------------------------------

RuleOutcome = Literal["nomatch", "fallthrough", "verdict", "fork"]


def run_rule(
    rule: Rule, packet: Packet, sets: Mapping[str, NamedSet], assume_match: bool
) -> tuple[RuleOutcome, Packet, object]:
    """Evaluate one rule. Returns what happened, the packet after its statements, and the
    terminal expression reached (Verdict, VerdictMap or Nat) if any. With `assume_match`,
    undecidable matches count as matching; otherwise reaching an effect after one forks."""
    pending = False
    for expr in rule.exprs:
        if isinstance(expr, Match):
            result = test(expr, packet, sets)
            if result is False or result is BREAK:
                return "nomatch", packet, None
            if result is None and not assume_match:
                pending = True
            continue
        if isinstance(expr, Effect):
            continue
        if isinstance(expr, Uncertain):
            if not assume_match:
                pending = True
            continue
        if pending:
            return "fork", packet, None
        if isinstance(expr, SetMark):
            if not expr.connection:
                packet = packet.with_mark((packet.mark & expr.mask) | expr.value)
            elif packet.tracked:  # without a connection `ct mark set` does nothing
                packet = replace(packet, ct_mark=(packet.ct_mark & expr.mask) | expr.value)
        elif isinstance(expr, CopyMark):
            if not packet.tracked:
                if expr.breaks_untracked:  # nft's `ct mark` of no connection: NFT_BREAK
                    return "nomatch", packet, None
            elif expr.to_connection:
                mark = (packet.ct_mark & expr.keep) ^ (packet.mark & expr.take)
                packet = replace(packet, ct_mark=mark)
            else:
                packet = packet.with_mark((packet.mark & expr.keep) ^ (packet.ct_mark & expr.take))
        elif isinstance(expr, SetMeta):
            if expr.key == "pkttype":
                packet = replace(packet, pkttype=str(expr.value))
            elif isinstance(expr.value, int) and _before_conntrack(packet):
                # `ct zone set`: the template conntrack looks the packet up with; a no-op after
                packet = replace(packet, ct_zone=expr.value)
        elif isinstance(expr, Notrack):
            # effective only before conntrack has looked the packet up; a no-op after
            if _before_conntrack(packet):
                packet = replace(packet, ct_state="untracked", tracked=False)
        else:
            return "verdict", packet, expr
    if pending:
        return "fork", packet, None
    return "fallthrough", packet, None


# --- one base chain -------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class ChainOutcome:
    verdict: FlowVerdict
    packet: Packet
    steps: tuple[Step, ...]
    assumptions: tuple[RuleRef, ...]
    nat: str | None = None
    nat_to: IPAddress | None = None  # snat's fixed address (masquerade: the uplink's)
    final: Step | None = None
    final_chain: Chain | None = None
    reason: str | None = None


# The steps of a run as a linked list, newest first: appending is O(1) and forks share their
# past (a tuple copied at each step made long runs quadratic).
Trail: TypeAlias = "tuple[Step, Trail] | None"
MAX_TRACE = 400  # steps a trace keeps (the first and the last half)


def _trace(trail: Trail) -> tuple[Step, ...]:
    steps: list[Step] = []
    while trail is not None:
        step, trail = trail
        steps.append(step)
    steps.reverse()
    if len(steps) > MAX_TRACE:
        half = MAX_TRACE // 2
        gap = Step("", -1, "…", f"{len(steps) - MAX_TRACE:,} steps left out")
        steps = [*steps[:half], gap, *steps[-half:]]
    return tuple(steps)


@dataclass(slots=True)
class _State:
    stack: tuple[tuple[Chain, int], ...]
    packet: Packet
    steps: Trail = None
    assumptions: tuple[RuleRef, ...] = ()
    forced: tuple[str, int] | None = None  # (chain, index) to evaluate assuming a match
    pending: tuple[Verdict, Chain, Step] | None = None  # an assumed verdict-map entry
    # jumps whose chain may turn out to return the packet unchanged and undecided-free:
    # (stack depth inside it, chain, packet at the jump, assumptions then)
    entered: tuple[tuple[int, Chain, Packet, int], ...] = ()


def _ref(table: Table, chain: Chain, index: int, rule: Rule) -> RuleRef:
    return RuleRef(
        table.family, table.name, chain.name, index, rule_text(rule), table.source, rule.handle
    )


def _verdict_text(verdict: Verdict | Nat | None) -> str:
    if isinstance(verdict, Verdict):
        return f"{verdict.kind} {verdict.target}" if verdict.target else verdict.kind
    if isinstance(verdict, Nat):
        return verdict.kind
    return "no map entry"


class ChainRun:
    """Runs one base chain for one packet, following every branch an undecidable rule opens."""

    def __init__(
        self, table: Table, base: Chain, budget: Budget, indexes: RuleIndexes | None = None
    ) -> None:
        self.indexes = indexes or RuleIndexes()
        self.candidate_cache: dict[int, list[int] | None] = {}
        self.table = table
        self.base = base
        self.sets = table.sets
        self.budget = budget
        self.work: list[_State] = []
        self.returns: set[tuple[int, int, Packet]] = set()

    def outcomes(self, packet: Packet) -> list[ChainOutcome]:
        self.work = [_State(((self.base, 0),), packet)]
        results: list[ChainOutcome] = []
        while self.work:
            results.append(self._run(self.work.pop()))
        return results

    def _end(
        self,
        state: _State,
        verdict: FlowVerdict,
        step: Step | None = None,
        chain: Chain | None = None,
        nat: str | None = None,
        reason: str | None = None,
    ) -> ChainOutcome:
        return ChainOutcome(
            verdict,
            state.packet,
            _trace(state.steps),
            state.assumptions,
            nat=nat,
            final=step,
            final_chain=chain,
            reason=reason,
        )

    def _candidates(self, chain: Chain, packet: Packet) -> list[int] | None:
        """Candidate rules of `chain` for this run's packet (its indexed fields never change
        within one base chain: marks and conntrack state are not indexed)."""
        ident = id(chain)
        if ident not in self.candidate_cache:
            chain_index = self.indexes.get(chain)
            self.candidate_cache[ident] = (
                None if chain_index is None else chain_candidates(chain_index, packet)
            )
        return self.candidate_cache[ident]

    def _pop(self, state: _State) -> None:
        """Leave the innermost chain; remember a jumped-to chain that returned the packet as
        it came, with no undecidable rule on the way."""
        depth = len(state.stack)
        state.stack = state.stack[:-1]
        while state.entered and state.entered[-1][0] >= depth:
            entered_depth, chain, packet, assumptions = state.entered[-1]
            state.entered = state.entered[:-1]
            if (
                entered_depth == depth
                and packet == state.packet
                and assumptions == len(state.assumptions)
            ):
                self.returns.add((id(chain), depth - 1, packet))

    def _spend(self, cost: int) -> bool:
        self.budget.forks -= cost
        return self.budget.forks > 0

    def _run(self, state: _State) -> ChainOutcome:
        if state.pending is not None:
            verdict, chain, step = state.pending
            state.pending = None
            result = self._apply(verdict, chain, state, step)
            if result is not None:
                return result
        while True:
            if not state.stack:
                step = Step(
                    self.base.name, -1, f"policy {self.base.policy}", f"policy {self.base.policy}"
                )
                state.steps = (step, state.steps)
                policy: FlowVerdict = "accept" if self.base.policy == "accept" else "drop"
                return self._end(state, policy, step, self.base)
            chain, index = state.stack[-1]
            index = _next_candidate(self._candidates(chain, state.packet), chain, index)
            if index >= len(chain.rules):
                self._pop(state)  # end of a chain: implicit return
                continue
            budget = self.budget
            budget.steps -= 1
            if budget.steps < 0:
                return self._end(state, "unknown", reason=Reason("budget", steps=budget.limit))
            state.stack = (*state.stack[:-1], (chain, index + 1))
            rule = chain.rules[index]
            forced = state.forced == (chain.name, index)
            if forced:
                state.forced = None
            kind, packet, terminal = run_rule(rule, state.packet, self.sets, forced)
            if kind == "nomatch":
                continue
            if kind == "fork":
                ref = _ref(self.table, chain, index, rule)
                if not self._spend(1):
                    state.assumptions = (*state.assumptions, ref)
                    return self._end(state, "unknown", reason=Reason("too-many-undecidable"))
                self.work.append(
                    _State(
                        (*state.stack[:-1], (chain, index)),
                        state.packet,
                        (Step(chain.name, index, "assumed to match", ref.text), state.steps),
                        (*state.assumptions, ref),
                        forced=(chain.name, index),
                    )
                )
                state.steps = (
                    Step(chain.name, index, "assumed not to match", ref.text),
                    state.steps,
                )
                state.assumptions = (*state.assumptions, ref)
                continue
            state.packet = packet
            if kind == "fallthrough":
                if any(isinstance(e, PACKET_CHANGES) for e in rule.exprs):
                    state.steps = (
                        Step(chain.name, index, "changed the packet", rule_text(rule)),
                        state.steps,
                    )
                continue
            resolved = _resolve(terminal, packet, self.sets)
            if resolved is None:
                continue  # a verdict map without a matching element: the rule does not match
            text = rule_text(rule)
            if isinstance(resolved, list):  # a verdict map whose key is undecidable
                ref = _ref(self.table, chain, index, rule)
                state.assumptions = (*state.assumptions, ref)
                if not self._spend(len(resolved)):
                    return self._end(state, "unknown", reason=Reason("too-many-undecidable"))
                for alternative in resolved[1:]:
                    assert alternative is not None
                    step = Step(chain.name, index, f"assumed {_verdict_text(alternative)}", text)
                    self.work.append(
                        _State(
                            state.stack,
                            state.packet,
                            state.steps,
                            state.assumptions,
                            pending=(alternative, chain, step),
                        )
                    )
                state.steps = (Step(chain.name, index, "assumed no map entry", text), state.steps)
                continue
            step = Step(chain.name, index, _verdict_text(resolved), text)
            result = self._apply(resolved, chain, state, step)
            if result is not None:
                return result

    def _apply(
        self, verdict: Verdict | Nat, chain: Chain, state: _State, step: Step
    ) -> ChainOutcome | None:
        """Apply a verdict; returns the chain's outcome when the verdict ends the base chain."""
        if isinstance(verdict, Nat):
            if verdict.family is not None and verdict.family != state.packet.family:
                return None  # an inet table's NAT for the other family: a no-op
            state.steps = (step, state.steps)
            if verdict.kind in {"masquerade", "snat"}:
                outcome = self._end(state, "accept", step, chain, nat=verdict.kind)
                return replace(outcome, nat_to=verdict.address)
            return self._end(
                state,
                "unknown",
                step,
                chain,
                reason=Reason("rewrites-destination", kind=verdict.kind),
            )
        kind = verdict.kind
        if kind == "continue":
            return None
        state.steps = (step, state.steps)
        if kind == "accept":
            return self._end(state, "accept", step, chain)
        if kind in {"drop", "reject"}:
            return self._end(state, "drop", step, chain)
        if kind == "queue":
            return self._end(
                state,
                "unknown",
                step,
                chain,
                reason=Reason("hands-to-program"),
            )
        if kind == "return":
            self._pop(state)
            return None
        target = self.table.chain(verdict.target or "")
        if target is None:
            return self._end(
                state,
                "unknown",
                step,
                chain,
                reason=Reason("missing-chain", kind=kind, target=verdict.target),
            )
        if len(state.stack) >= MAX_JUMP_DEPTH:
            return self._end(state, "unknown", step, chain, reason=Reason("nested-too-deep"))
        if kind == "jump":
            if (id(target), len(state.stack), state.packet) in self.returns:
                # this chain returned this very packet, unchanged and with nothing undecided,
                # before: it does so again (chains that jump to chains many times over)
                assert state.steps is not None
                state.steps = (
                    replace(step, action=f"{step.action}: returns, as before"),
                    state.steps[1],
                )
                return None
            state.stack = (*state.stack, (target, 0))
            record = (len(state.stack), target, state.packet, len(state.assumptions))
            state.entered = (*state.entered, record)
        else:  # goto replaces the current chain
            state.stack = (*state.stack[:-1], (target, 0))
        return None


def _next_candidate(candidates: list[int] | None, chain: Chain, index: int) -> int:
    """The first rule at or after `index` that the chain's index cannot rule out."""
    if candidates is None:
        return index
    position = bisect_left(candidates, index)
    return candidates[position] if position < len(candidates) else len(chain.rules)


def chain_candidates(chain_index: ChainIndex, packet: Packet) -> list[int] | None:
    """The rules of an indexed chain that may match `packet`, in order (None: all)."""
    values: list[tuple[object, bool]] = []
    for key_index in chain_index.keys:
        value = read(key_index.key, packet)
        if value is BREAK:
            values.append((None, True))
        elif isinstance(value, Range):
            values.append((None, False))  # one unknown port of a range: no constraint
        else:
            values.append((value, False))
    return chain_index.candidates(values)


def _resolve(
    terminal: object, packet: Packet, sets: Mapping[str, NamedSet]
) -> Verdict | Nat | list[Verdict | None] | None:
    """The verdict a terminal expression gives: a Verdict/Nat, None for a verdict-map miss,
    or the possible verdicts (None first, for "no entry") when the map's key is undecidable."""
    if isinstance(terminal, Verdict | Nat):
        return terminal
    if isinstance(terminal, VerdictMap):
        entries: tuple[tuple[object, object], ...]
        if terminal.name is not None:
            named = sets.get(terminal.name)
            if named is None:
                return Verdict("queue")
            entries = named.entries
        else:
            entries = tuple(terminal.entries or ())
        value = _whole(read(terminal.key, packet))
        if value is BREAK:
            return None
        possible: list[Verdict | None] = [None]
        for element, verdict in entries:
            found = None if value is None else _element_matches(value, element)
            if found and isinstance(verdict, Verdict):
                return verdict
            if found is None and isinstance(verdict, Verdict) and verdict not in possible:
                possible.append(verdict)
        return possible if len(possible) > 1 else None
    return Verdict("queue")
