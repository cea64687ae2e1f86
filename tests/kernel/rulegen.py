"""Random firewall rulesets for the differential test (kernel vs engine).

`rulesets()` is a hypothesis strategy of `GeneratedRuleset`: 1-4 nft tables (families ip, ip6,
inet and sometimes netdev) and, sometimes, an iptables-nft or iptables-legacy restore text. Each
is loadable as-is into the lab's host namespace. The engine never sees these texts: the test
loads them into the kernel and hands the engine the snapshot the kernel gives back.

The grammar is what the engine claims to support: base chains on ingress, prerouting, input,
forward and postrouting at priorities around the kernel's landmarks (raw -300, conntrack -200,
mangle -150, dstnat -100, filter 0, srcnat 100), filter and nat types, random policies; regular
chains reached by jump/goto (and left by return); matches on interfaces (names, wildcards,
indexes, sets), addresses (single, prefix, range, anonymous and named sets), l4 protocol, ports,
conntrack state, direction and mark, fib address type, marks (and `meta mark set` before
them), pkttype, tcp flags, icmp type, concatenations; verdicts (reject with its variants),
verdict maps (anonymous and named), counter, log, limit, notrack, ct mark set, masquerade,
snat. The iptables grammar: filter/nat/mangle/raw built-in and user chains, -i/-o, -s/-d,
-p with ports, multiport, conntrack, addrtype, mark, iprange; ACCEPT/DROP/REJECT/RETURN, jumps,
gotos, MASQUERADE, SNAT, MARK, CT --notrack.

Generation is weighted so that each flow is accepted or dropped about equally often (and a
good share of outbound connections is masqueraded). Every generated script loads (or the test
skips it and counts it: nft's own checks, `nft -c`, miss the kernel's hook validation, so
loading is the check); regular chains only ever get statements valid for the hooks that reach
them. `GeneratedRuleset.shrink_candidates()` yields smaller variants, which the test uses to
minimise a disagreement against the kernel before reporting it.

`rulesets(without=...)` leaves grammar features out (FEATURES): a run can look for new
disagreements while known ones are open.

`KNOWN_CASES` keeps every disagreement the differential run found, minimised, as a named
regression case for the scenario corpus.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field, replace
from typing import Any, TypeVar

from hypothesis import strategies as st

T = TypeVar("T")

HS, UP, SPARE = "hs0", "up0", "xt0"  # the lab's hotspot, uplink and an unused device
PRIORITIES = (-300, -200, -150, -100, -10, 0, 10, 100, 300)
NAT_PRIORITIES = tuple(p for p in PRIORITIES if p > -200)  # the kernel refuses nat at <= -200
NAT_HOOKS = ("prerouting", "input", "postrouting")
V4_FAMILIES = frozenset({"ip", "inet", "netdev"})
V6_FAMILIES = frozenset({"ip6", "inet", "netdev"})


# --- the generated ruleset, as data (so it can be shrunk) ------------------------------------


@dataclass(frozen=True)
class NftRule:
    parts: tuple[str, ...]  # matches and statements, in order
    verdict: str = ""  # the terminal part ("" for none)
    targets: frozenset[str] = frozenset()  # chains it may jump/goto
    uses: frozenset[str] = frozenset()  # named sets and maps it reads
    removable: tuple[bool, ...] = ()  # per part: dropping it keeps the rule loadable

    def render(self) -> str:
        return " ".join((*self.parts, self.verdict)).strip() or "counter"


@dataclass(frozen=True)
class NftChain:
    name: str
    rules: tuple[NftRule, ...] = ()
    hook: str | None = None
    type: str = "filter"
    priority: int = 0
    policy: str = "accept"
    device: str | None = None

    def render(self) -> list[str]:
        lines = [f"  chain {self.name} {{"]
        if self.hook:
            device = f' device "{self.device}"' if self.device else ""
            lines.append(
                f"    type {self.type} hook {self.hook}{device} priority {self.priority};"
                f" policy {self.policy};"
            )
        lines += [f"    {rule.render()}" for rule in self.rules]
        lines.append("  }")
        return lines


@dataclass(frozen=True)
class NftSet:
    name: str
    body: str  # `set NAME { ... }` or `map NAME { ... }`


@dataclass(frozen=True)
class NftTable:
    family: str
    name: str
    chains: tuple[NftChain, ...] = ()
    sets: tuple[NftSet, ...] = ()

    def render(self) -> str:
        lines = [f"table {self.family} {self.name} {{"]
        for named in self.sets:
            lines += ["  " + line for line in named.body.splitlines()]
        for chain in self.chains:
            lines += chain.render()
        lines.append("}")
        return "\n".join(lines)


@dataclass(frozen=True)
class IptablesChain:
    name: str
    policy: str | None  # None for a user chain
    rules: tuple[str, ...] = ()  # the text after `-A NAME `


@dataclass(frozen=True)
class IptablesTable:
    name: str
    chains: tuple[IptablesChain, ...]


@dataclass(frozen=True)
class IptablesLoad:
    tables: tuple[IptablesTable, ...]
    ipv6: bool = False
    legacy: bool = False

    @property
    def tool(self) -> str:
        return f"{'ip6' if self.ipv6 else 'ip'}tables-{'legacy' if self.legacy else 'nft'}-restore"

    def render(self) -> str:
        lines: list[str] = []
        for table in self.tables:
            lines.append(f"*{table.name}")
            for chain in table.chains:
                lines.append(f":{chain.name} {chain.policy or '-'} [0:0]")
            for chain in table.chains:
                lines += [f"-A {chain.name} {rule}" for rule in chain.rules]
            lines.append("COMMIT")
        return "\n".join(lines) + "\n"


@dataclass(frozen=True)
class GeneratedRuleset:
    tables: tuple[NftTable, ...] = ()
    iptables: tuple[IptablesLoad, ...] = ()

    @property
    def nft(self) -> str:
        return "\n".join(t.render() for t in self.tables) + ("\n" if self.tables else "")

    def describe(self) -> str:
        parts = []
        if self.tables:
            parts.append("# nft -f -\n" + self.nft)
        for load in self.iptables:
            parts.append(f"# {load.tool} --noflush\n" + load.render())
        return "\n".join(parts) if parts else "# (empty ruleset)\n"

    def load(self, lab: Any) -> None:
        if self.tables:
            lab.load_nft(self.nft)
        for load in self.iptables:
            lab.load_iptables(load.render(), ipv6=load.ipv6, legacy=load.legacy)

    def size(self) -> int:
        nft = sum(
            1 + len(c.rules) + sum(len(r.parts) for r in c.rules)
            for t in self.tables
            for c in t.chains
        )
        ipt = sum(1 + len(c.rules) for load in self.iptables for t in load.tables for c in t.chains)
        return nft + len(self.tables) + ipt

    # -- shrinking: every candidate is strictly smaller or simpler, and stays loadable --
    def shrink_candidates(self) -> Iterator[GeneratedRuleset]:
        for i in range(len(self.iptables)):
            yield replace(self, iptables=self.iptables[:i] + self.iptables[i + 1 :])
        for i in range(len(self.tables)):
            yield replace(self, tables=self.tables[:i] + self.tables[i + 1 :])
        for ti, table in enumerate(self.tables):
            for shrunk in _shrink_table(table):
                yield replace(self, tables=_put(self.tables, ti, shrunk))
        for li, load in enumerate(self.iptables):
            for shrunk_load in _shrink_iptables(load):
                yield replace(self, iptables=_put(self.iptables, li, shrunk_load))


def _put(items: tuple[T, ...], index: int, item: T) -> tuple[T, ...]:
    return (*items[:index], item, *items[index + 1 :])


def _without_chain(table: NftTable, name: str) -> NftTable:
    chains = tuple(
        replace(c, rules=tuple(r for r in c.rules if name not in r.targets))
        for c in table.chains
        if c.name != name
    )
    return replace(table, chains=chains)


def _shrink_table(table: NftTable) -> Iterator[NftTable]:
    for chain in table.chains:
        without = _without_chain(table, chain.name)
        if without.chains:
            yield without
    for named in table.sets:
        used = any(named.name in r.uses for c in table.chains for r in c.rules)
        if not used:
            yield replace(table, sets=tuple(s for s in table.sets if s is not named))
    for ci, chain in enumerate(table.chains):
        if chain.policy == "drop":
            yield replace(table, chains=_put(table.chains, ci, replace(chain, policy="accept")))
        for ri in range(len(chain.rules)):
            rules = chain.rules[:ri] + chain.rules[ri + 1 :]
            yield replace(table, chains=_put(table.chains, ci, replace(chain, rules=rules)))
    for ci, chain in enumerate(table.chains):
        for ri, rule in enumerate(chain.rules):
            for pi, part in enumerate(rule.parts):
                if pi < len(rule.removable) and not rule.removable[pi]:
                    continue
                smaller = replace(
                    rule,
                    parts=rule.parts[:pi] + rule.parts[pi + 1 :],
                    removable=rule.removable[:pi] + rule.removable[pi + 1 :],
                    uses=rule.uses
                    if "@" in " ".join(rule.parts[:pi] + rule.parts[pi + 1 :])
                    or "@" in rule.verdict
                    else frozenset(),
                )
                if part == "counter" and not smaller.parts and not smaller.verdict:
                    continue
                rules = _put(chain.rules, ri, smaller)
                yield replace(table, chains=_put(table.chains, ci, replace(chain, rules=rules)))
    for ci, chain in enumerate(table.chains):
        if chain.hook and chain.priority != 0 and chain.type == "filter":
            yield replace(table, chains=_put(table.chains, ci, replace(chain, priority=0)))


def _shrink_iptables(load: IptablesLoad) -> Iterator[IptablesLoad]:
    for ti, table in enumerate(load.tables):
        if len(load.tables) > 1:
            yield replace(load, tables=load.tables[:ti] + load.tables[ti + 1 :])
        for ci, chain in enumerate(table.chains):
            if chain.policy == "DROP":
                shrunk = replace(
                    table, chains=_put(table.chains, ci, replace(chain, policy="ACCEPT"))
                )
                yield replace(load, tables=_put(load.tables, ti, shrunk))
            for ri in range(len(chain.rules)):
                rules = chain.rules[:ri] + chain.rules[ri + 1 :]
                shrunk = replace(table, chains=_put(table.chains, ci, replace(chain, rules=rules)))
                yield replace(load, tables=_put(load.tables, ti, shrunk))


# --- drawing helpers -----------------------------------------------------------------------------


class _Draw:
    """Weighted choices, from hypothesis' `draw` or from a `random.Random`.

    With `draw`, every choice is a hypothesis integer (shrinks towards the first option, but
    hypothesis favours small and repeated examples). With `rng` (the default of `rulesets()`,
    seeded by hypothesis), choices follow the grammar's weights exactly; shrinking is then
    done by `minimize()` against the kernel."""

    def __init__(
        self,
        draw: Callable[[st.SearchStrategy[Any]], Any] | None = None,
        rng: random.Random | None = None,
    ) -> None:
        self.draw = draw
        self.rng = rng

    def _below(self, n: int) -> int:
        if self.rng is not None:
            return self.rng.randrange(n)
        assert self.draw is not None
        return int(self.draw(st.integers(0, n - 1)))

    def pick(self, options: Sequence[tuple[T, float]]) -> T:
        options = [(value, weight) for value, weight in options if weight > 0]
        scale = 100
        total = sum(round(weight * scale) for _, weight in options)
        point = self._below(total)
        for value, weight in options:
            point -= round(weight * scale)
            if point < 0:
                return value
        return options[-1][0]

    def one(self, values: Sequence[T]) -> T:
        return values[self._below(len(values))]

    def chance(self, p: float) -> bool:
        return self._below(1000) >= 1000 - round(p * 1000)

    def int(self, low: int, high: int) -> int:
        return low + self._below(high - low + 1)

    def subset(self, pool: Sequence[T], low: int, high: int) -> list[T]:
        count = self.int(low, min(high, len(pool)))
        indexes = list(range(len(pool)))
        chosen = []
        for _ in range(count):
            chosen.append(indexes.pop(self._below(len(indexes))))
        return [pool[i] for i in sorted(chosen)]


# --- values ------------------------------------------------------------------------------------

V4_SINGLE = [
    ("10.42.0.10", 3),  # the phone
    ("10.42.0.1", 2),  # the host on the hotspot
    ("203.0.113.10", 2),  # the server
    ("0.0.0.0", 1),  # DHCP source
    ("255.255.255.255", 1),  # DHCP destination
    ("198.51.100.2", 1),  # the host on the uplink
]
V4_PREFIX = [
    ("10.42.0.0/24", 3),
    ("10.0.0.0/8", 1),
    ("203.0.113.0/24", 1),
    ("198.51.100.0/24", 1),
    ("224.0.0.0/4", 0.5),
    ("192.168.0.0/16", 0.5),
    ("0.0.0.0/8", 0.5),
]
V4_RANGE = [
    ("10.42.0.5-10.42.0.20", 1),
    ("10.42.0.0-10.42.0.9", 0.5),
    ("203.0.113.1-203.0.113.99", 1),
]
V4_SET_POOL = [  # pairwise disjoint, so any subset is a valid interval set
    "0.0.0.0",
    "10.42.0.1",
    "10.42.0.10",
    "10.42.0.64/26",
    "192.168.0.0/16",
    "198.51.100.0/24",
    "203.0.113.10",
    "224.0.0.0/4",
    "255.255.255.255",
]
V4_MASKED = [  # (mask, value): the phone, the server and the uplink under odd masks
    ("255.0.255.0", "10.0.0.0"),
    ("255.255.0.255", "203.0.0.10"),
    ("0.255.0.255", "0.42.0.10"),
    ("255.0.255.0", "198.0.100.0"),
]
V6_MASKED = [
    ("ffff:ffff::ffff", "2001:db8::10"),
    ("ffff:0:ffff::", "2001:0:42::"),
]
V6_SINGLE = [
    ("2001:db8:42::10", 3),
    ("2001:db8:42::1", 2),
    ("2001:db8:113::10", 2),
    ("fe80::10", 1),
    ("ff02::1:2", 1),
    ("2001:db8:100::2", 1),
]
V6_PREFIX = [
    ("2001:db8:42::/64", 3),
    ("fe80::/10", 1),
    ("ff00::/8", 1),
    ("2001:db8:113::/48", 1),
    ("2001:db8::/32", 1),
    ("2001:db8:100::/64", 0.5),
]
V6_RANGE = [("2001:db8:42::5-2001:db8:42::20", 1), ("2001:db8:113::1-2001:db8:113::ff", 1)]
V6_SET_POOL = [
    "2001:db8:42::1",
    "2001:db8:42::10",
    "2001:db8:99::/48",
    "2001:db8:100::2",
    "2001:db8:113::10",
    "fd00::/8",
    "fe80::/10",
    "ff02::1:2",
]
DPORTS = [("53", 3), ("67", 2), ("443", 3), ("547", 1.5), ("22", 0.5)]
DPORT_RANGES = [("1-1023", 1), ("50-70", 1), ("400-600", 1), ("1024-65535", 0.7)]
SPORTS = [("443", 3), ("68", 2), ("546", 1), ("53", 0.5)]
SPORT_RANGES = [("1-1023", 1), ("20000-61000", 0.5), ("1024-65535", 0.5)]
PORT_SET_POOL = ["22", "53", "67", "80", "443", "547", "1000-2000", "60000-65535"]
IFNAMES = [("hs0", 5), ("up0", 4), ("lo", 1), ("xt0", 0.5), ("ph0", 0.5)]
IF_WILDCARDS = [("hs*", 2), ("up*", 1), ("x*", 0.5)]
IFINDEX_NAMES = [("hs0", 5), ("up0", 4), ("lo", 1), ("xt0", 0.5)]
IF_SET_POOL = ['"hs0"', '"up0"', '"lo"', '"xt0"', '"ph0"']
CT_STATES = ["new", "established", "related", "invalid", "untracked"]
CT_STATE_WEIGHTS = [
    ("new", 3),
    ("established", 3),
    ("related", 1),
    ("invalid", 1.5),
    ("untracked", 1),
]
FIB_TYPES = [("local", 3), ("broadcast", 1.5), ("unicast", 3), ("multicast", 1.5)]
MARKS = ["0x00000001", "0x00000002", "0x00000003"]


# --- the context a rule is written in -----------------------------------------------------------


@dataclass
class _Ctx:
    family: str
    hook: str  # the hook of the base chain (or of the base chains that reach a regular chain)
    type: str  # filter / nat
    priority: int
    targets: list[str]  # chains this chain may jump to / goto
    table: _TableBuilder


@dataclass
class _TableBuilder:
    family: str
    name: str
    without: frozenset[str] = frozenset()
    sets: dict[str, NftSet] = field(default_factory=dict)

    def named(self, name: str, body: Callable[[], str]) -> str:
        if name not in self.sets:
            self.sets[name] = NftSet(name, body())
        return name


# --- matches --------------------------------------------------------------------------------------


def _iface_match(d: _Draw, ctx: _Ctx) -> tuple[str, str | None]:
    hook = ctx.hook
    inbound = hook in {"ingress", "prerouting", "input"}
    key = d.pick(
        [
            ("iifname", 6 if hook != "postrouting" else 2),
            ("oifname", 1 if inbound else 5),
            ("iif", 2 if hook != "postrouting" else 1),
            ("oif", 0.5 if inbound else 2),
        ]
    )
    by_index = key in {"iif", "oif"}
    named = 0 if by_index or "named-sets" in ctx.table.without else 1
    form = d.pick(
        [("eq", 6), ("ne", 2), ("wild", 0 if by_index else 2), ("set", 2), ("named", named)]
    )
    if form == "wild":
        return f'{key} "{d.pick(IF_WILDCARDS)}"', None
    if form == "set":
        pool = IF_SET_POOL if not by_index else IF_SET_POOL[:4]
        items = d.subset(pool, 1, 3)
        if not by_index and d.chance(0.3):
            items.append('"' + d.pick(IF_WILDCARDS) + '"')
        neg = "!= " if d.chance(0.15) and not by_index else ""
        return f"{key} {neg}{{ {', '.join(items)} }}", None
    if form == "named":

        def body() -> str:
            items = d.subset(IF_SET_POOL, 1, 3)
            return f"set ifs {{\n  type ifname\n  elements = {{ {', '.join(items)} }}\n}}"

        name = ctx.table.named("ifs", body)
        neg = "!= " if d.chance(0.25) else ""
        return f"{key} {neg}@{name}", name
    value = d.pick(IFINDEX_NAMES if by_index else IFNAMES)
    op = "!= " if form == "ne" else ""
    return f'{key} {op}"{value}"', None


V6_CLIENT = "2001:db8:42::10"


def _v6(pool: list[T], without: frozenset[str]) -> list[T]:
    """Without "v6-client": no value naming the phone's IPv6 address exactly."""
    if "v6-client" not in without:
        return pool
    return [v for v in pool if V6_CLIENT not in (v[0] if isinstance(v, tuple) else v)]


def _addr_match(d: _Draw, ctx: _Ctx) -> tuple[str, str | None]:
    families = []
    if ctx.family in V4_FAMILIES:
        families.append(("ip", 3))
    if ctx.family in V6_FAMILIES:
        families.append(("ip6", 2))
    proto = d.pick(families)
    v6 = proto == "ip6"
    key = f"{proto} {d.pick([('saddr', 1), ('daddr', 1)])}"
    named = 0 if "named-sets" in ctx.table.without else 1
    form = d.pick(
        [("single", 4), ("prefix", 3), ("range", 1), ("set", 2), ("named", named), ("mask", 1)]
    )
    neg = "!= " if d.chance(0.2) else ""
    without = ctx.table.without
    if form == "mask":  # a non-contiguous address mask
        mask, value = d.one(V6_MASKED if v6 else V4_MASKED)
        return f"{key} & {mask} {neg or '== '}{value}", None
    if form == "set":
        items = d.subset(_v6(V6_SET_POOL, without) if v6 else V4_SET_POOL, 1, 4)
        return f"{key} {neg}{{ {', '.join(items)} }}", None
    if form == "named":
        set_name = "a6" if v6 else "a4"

        def body() -> str:
            items = d.subset(_v6(V6_SET_POOL, without) if v6 else V4_SET_POOL, 1, 4)
            kind = "ipv6_addr" if v6 else "ipv4_addr"
            return (
                f"set {set_name} {{\n  type {kind}\n  flags interval\n"
                f"  elements = {{ {', '.join(items)} }}\n}}"
            )

        ctx.table.named(set_name, body)
        return f"{key} {neg}@{set_name}", set_name
    table = {
        "single": _v6(V6_SINGLE, without) if v6 else V4_SINGLE,
        "prefix": V6_PREFIX if v6 else V4_PREFIX,
        "range": V6_RANGE if v6 else V4_RANGE,
    }[form]
    return f"{key} {neg}{d.pick(table)}", None


def _proto_match(d: _Draw, ctx: _Ctx) -> tuple[str, str | None]:
    icmp = (
        "icmp"
        if ctx.family in {"ip"}
        else "icmpv6"
        if ctx.family == "ip6"
        else d.one(["icmp", "icmpv6"])
    )
    form = d.pick([("l4", 5), ("ipproto", 1)])
    if form == "ipproto":
        if ctx.family in V4_FAMILIES and (ctx.family not in V6_FAMILIES or d.chance(0.5)):
            return f"ip protocol {d.pick([('udp', 1), ('tcp', 1), ('icmp', 0.5)])}", None
        return f"ip6 nexthdr {d.pick([('udp', 1), ('tcp', 1), ('icmpv6', 0.5)])}", None
    value = d.pick(
        [("tcp", 3), ("udp", 3), (icmp, 1), ("{ tcp, udp }", 1), ("!= udp", 1), ("!= tcp", 1)]
    )
    return f"meta l4proto {value}", None


def _port_match(d: _Draw, ctx: _Ctx) -> tuple[str, str | None]:
    proto = d.pick([("th", 4), ("tcp", 2), ("udp", 2)])
    which = d.pick([("dport", 5), ("sport", 1)])
    key = f"{proto} {which}"
    named = 1 if which == "dport" and "named-sets" not in ctx.table.without else 0
    form = d.pick([("single", 5), ("range", 2), ("set", 2), ("named", named)])
    neg = "!= " if d.chance(0.15) else ""
    if form == "set":
        return f"{key} {neg}{{ {', '.join(d.subset(PORT_SET_POOL, 1, 4))} }}", None
    if form == "named":

        def body() -> str:
            items = d.subset(PORT_SET_POOL, 1, 4)
            return (
                "set ports {\n  type inet_service\n  flags interval\n"
                f"  elements = {{ {', '.join(items)} }}\n}}"
            )

        ctx.table.named("ports", body)
        return f"{key} {neg}@ports", "ports"
    if form == "range":
        return f"{key} {neg}{d.pick(DPORT_RANGES if which == 'dport' else SPORT_RANGES)}", None
    return f"{key} {neg}{d.pick(DPORTS if which == 'dport' else SPORTS)}", None


def _ct_state_match(d: _Draw, ctx: _Ctx) -> tuple[str, str | None]:
    form = d.pick([("single", 3), ("ne", 1), ("flags", 2), ("set", 2), ("masked", 1)])
    if form == "masked":  # a bitmask comparison of the state
        states = " | ".join(d.subset(CT_STATES, 1, 2))
        return d.one([f"ct state & ({states}) != 0", f"ct state & ({states}) == 0"]), None
    if form in {"single", "ne"}:
        op = "!= " if form == "ne" else ""
        return f"ct state {op}{d.pick(CT_STATE_WEIGHTS)}", None
    states = d.subset(CT_STATES, 2, 3)
    if form == "flags":
        return f"ct state {','.join(states)}", None
    return f"ct state {{ {', '.join(states)} }}", None


def _ct_status_match(d: _Draw, ctx: _Ctx) -> tuple[str, str | None]:
    """ct status: the NAT bits are known from the flows' own NAT, the rest is not."""
    return d.pick(
        [
            ("ct status dnat", 3),
            ("ct status snat", 3),
            ("ct status != dnat", 1),
            ("ct status & (snat | dnat) != 0", 1),
            ("ct status & dnat == dnat", 1),
            ("ct status & snat == 0", 1),
            ("ct status { snat, dnat }", 0.5),
            ("ct status assured", 0.5),
        ]
    ), None


def _tcp_option_match(d: _Draw, ctx: _Ctx) -> tuple[str, str | None]:
    """The client's SYN carries MSS, SACK permitted, timestamps and window scale."""
    name = d.one(["maxseg", "sack-perm", "timestamp", "window", "md5sig", "fastopen"])
    return f"tcp option {name} {d.one(['exists', 'missing'])}", None


def _length_match(d: _Draw, ctx: _Ctx) -> tuple[str, str | None]:
    """meta length: the flows' SYN and SYN-ACK are 40-80 bytes (IPv6: 60-100)."""
    return d.one(
        ["meta length > 1000", "meta length < 200", "meta length 60", "meta length > 50"]
    ), None


def _exthdr_match(d: _Draw, ctx: _Ctx) -> tuple[str, str | None]:
    """IPv6 extension headers: a client's plain packets carry none."""
    return d.one(
        [
            "exthdr hbh exists",
            "exthdr frag exists",
            "exthdr rt missing",
            "exthdr dst exists",
            "frag more-fragments 1",
            "hbh nexthdr tcp",
        ]
    ), None


def _ct_direction_match(d: _Draw, ctx: _Ctx) -> tuple[str, str | None]:
    op = "!= " if d.chance(0.25) else ""
    return f"ct direction {op}{d.one(['original', 'reply'])}", None


def _fib_route_match(d: _Draw, ctx: _Ctx) -> str:
    """A route lookup (`fib … oif`/`oifname`): the kernel allows it on prerouting, input and
    forward, with `iif` (it refuses `oif` as a flag of this result)."""
    address = d.pick([("saddr", 3), ("daddr", 2)])
    flags = [address]
    if d.chance(0.3):
        flags.append("mark")
    if d.chance(0.6):
        flags.append("iif")
    lookup = "fib " + " . ".join(flags)
    form = d.pick([("presence", 4), ("name", 2), ("wildcard", 1)])
    if form == "presence":
        return f"{lookup} oif {d.one(['missing', 'exists', '0'])}"
    op = "!= " if d.chance(0.3) else ""
    if form == "wildcard":
        return f'{lookup} oifname {op}"{d.one(["hs*", "up*"])}"'
    return f"{lookup} {d.one(['oif', 'oifname'])} {op}{d.one([HS, UP])}"


def _fib_match(d: _Draw, ctx: _Ctx) -> tuple[str, str | None]:
    if ctx.hook in {"prerouting", "input", "forward"} and d.chance(0.5):
        return _fib_route_match(d, ctx), None
    form = d.pick([("single", 4), ("ne", 1), ("set", 1)])
    if form == "set":
        types = d.subset([t for t, _ in FIB_TYPES], 2, 3)
        return f"fib daddr type {{ {', '.join(types)} }}", None
    op = "!= " if form == "ne" else ""
    return f"fib daddr type {op}{d.pick(FIB_TYPES)}", None


def _mark_match(d: _Draw, ctx: _Ctx) -> tuple[str, str | None]:
    form = d.pick([("eq", 4), ("ne", 1), ("masked", 1), ("masked-set", 0.5), ("set", 1)])
    if form == "masked":
        bit = d.one(["0x00000001", "0x00000002"])
        op = d.one(["==", "!="])
        return f"meta mark & {bit} {op} {d.one([bit, '0x00000000'])}", None
    if form == "masked-set":
        return f"meta mark & 0x00000003 {{ {', '.join(d.subset(MARKS, 1, 2))} }}", None
    if form == "set":
        return f"meta mark {{ {', '.join(d.subset(MARKS, 1, 2))} }}", None
    if form == "ne":
        return f"meta mark != {d.one(['0x00000000', *MARKS])}", None
    return f"meta mark {d.one(['0x00000000', *MARKS])}", None


def _icmp_match(d: _Draw, ctx: _Ctx) -> tuple[str, str | None]:
    if ctx.family in {"ip"} or (ctx.family in V4_FAMILIES and d.chance(0.5)):
        return f"icmp type {d.one(['echo-request', 'destination-unreachable'])}", None
    # IPv6 router and neighbour discovery: types by name (alone, negated, in sets), codes, and
    # the hop limit 255 that discovery is sent with
    nd = ["echo-request", "nd-router-solicit", "nd-router-advert", "nd-neighbor-solicit"]
    nd.append("nd-neighbor-advert")
    form = d.pick([("type", 3), ("set", 1), ("hoplimit", 2), ("code", 1)])
    if form == "set":
        return f"icmpv6 type {{ {', '.join(d.subset(nd, 2, 3))} }}", None
    if form == "hoplimit":
        return f"ip6 hoplimit {d.one(['255', '!= 255', '1', '< 255', '> 64'])}", None
    if form == "code":
        return f"icmpv6 type {d.one(nd)} icmpv6 code {d.one(['0', '1'])}", None
    return f"icmpv6 type {'!= ' if d.chance(0.2) else ''}{d.one(nd)}", None


def _nfproto_match(d: _Draw, ctx: _Ctx) -> tuple[str, str | None]:
    if ctx.family == "netdev":
        return f"meta protocol {d.one(['ip', 'ip6'])}", None
    return f"meta nfproto {d.one(['ipv4', 'ipv6'])}", None


def _pkttype_match(d: _Draw, ctx: _Ctx) -> tuple[str, str | None]:
    form = d.pick([("single", 3), ("ne", 1), ("set", 1)])
    if form == "set":
        return (
            f"meta pkttype {{ {', '.join(d.subset(['host', 'broadcast', 'multicast'], 2, 2))} }}",
            None,
        )
    op = "!= " if form == "ne" else ""
    return f"meta pkttype {op}{d.pick([('host', 2), ('broadcast', 1), ('multicast', 1)])}", None


TCP_FLAG_SET_POOL = ["fin", "syn", "rst", "ack", "syn | ack", "fin | ack"]


def _tcp_flags_match(d: _Draw, ctx: _Ctx) -> tuple[str, str | None]:
    form = d.pick([("fixed", 5), ("set", 2), ("masked-set", 1), ("named", 1)])
    if form == "set":  # a set of flag names: an exact lookup of the whole flags byte
        neg = "!= " if d.chance(0.2) else ""
        return f"tcp flags {neg}{{ {', '.join(d.subset(TCP_FLAG_SET_POOL, 1, 3))} }}", None
    if form == "masked-set":
        items = ", ".join(d.subset(["syn", "ack", "syn | ack", "0x0"], 1, 2))
        return f"tcp flags & (syn | ack) == {{ {items} }}", None
    if form == "named" and "named-sets" not in ctx.table.without:

        def body() -> str:
            items = d.subset(TCP_FLAG_SET_POOL, 1, 3)
            return f"set tf {{\n  type tcp_flag\n  elements = {{ {', '.join(items)} }}\n}}"

        ctx.table.named("tf", body)
        return "tcp flags @tf", "tf"
    return d.pick(
        [
            ("tcp flags syn", 1),
            ("tcp flags syn,ack", 1),
            ("tcp flags & (syn | ack) == syn", 2),
            ("tcp flags & (syn | ack) == syn | ack", 2),
            ("tcp flags & (fin | syn | rst | ack) != syn", 1),
            ("tcp flags ack", 1),
            ("tcp flags != syn", 1),
            ("tcp flags == syn | ack", 1),
            ("tcp flags syn / syn,ack", 1),
        ]
    ), None


def _ct_mark_match(d: _Draw, ctx: _Ctx) -> tuple[str, str | None]:
    op = "!= " if d.chance(0.25) else ""
    return f"ct mark {op}{d.one(['0x00000000', *MARKS])}", None


def _concat_match(d: _Draw, ctx: _Ctx) -> tuple[str, str | None]:
    v6 = ctx.family == "ip6" or (ctx.family in V6_FAMILIES and ctx.family != "ip" and d.chance(0.4))
    proto = "ip6" if v6 else "ip"
    pool = _v6(V6_SET_POOL, ctx.table.without) if v6 else V4_SET_POOL
    singles = [a for a in pool if "/" not in a]
    kind = d.pick([("addr-port", 2), ("iface-addr", 1)])
    if kind == "addr-port":
        field = d.one(["saddr", "daddr"])
        items = [
            f"{d.one(singles)} . {d.one(['53', '67', '443', '547'])}" for _ in range(d.int(1, 3))
        ]
        return f"{proto} {field} . th dport {{ {', '.join(sorted(set(items)))} }}", None
    items = [f'"{d.one(["hs0", "up0"])}" . {d.one(singles)}' for _ in range(d.int(1, 3))]
    field = d.one(["saddr", "daddr"])
    return f"iifname . {proto} {field} {{ {', '.join(sorted(set(items)))} }}", None


MATCHES: list[tuple[Callable[[_Draw, _Ctx], tuple[str, str | None]], float, str]] = [
    (_iface_match, 6, "iface"),
    (_addr_match, 5, "addr"),
    (_proto_match, 3, "proto"),
    (_port_match, 5, "port"),
    (_ct_state_match, 4, "ct"),
    (_ct_direction_match, 1, "ct"),
    (_ct_status_match, 1, "ct-status"),
    (_length_match, 0.7, "length"),
    (_tcp_option_match, 0.7, "tcp-option"),
    (_exthdr_match, 0.7, "exthdr"),
    (_fib_match, 2, "fib"),
    (_mark_match, 2, "mark"),
    (_icmp_match, 1, "icmp"),
    (_nfproto_match, 1, "nfproto"),
    (_pkttype_match, 1, "pkttype"),
    (_tcp_flags_match, 1, "tcp-flags"),
    (_ct_mark_match, 0.7, "ct-mark"),
    (_concat_match, 0.7, "concat"),
]
# What `rulesets(without=...)` (and HOTSPOTGUARD_DIFF_WITHOUT) can leave out: every match kind
# above, and these.
FEATURES = frozenset(
    {
        "iface",
        "addr",
        "proto",
        "port",
        "ct",
        "fib",
        "mark",
        "icmp",
        "nfproto",
        "pkttype",
        "tcp-flags",
        "ct-mark",
        "ct-status",
        "length",
        "tcp-option",
        "exthdr",
        "mangle",
        "concat",
        "limit",
        "log",
        "ingress",
        "iptables",
        "legacy",
        "notrack",
        "nat",
        "vmap",
        "named-sets",
        "reject",
        "jump",
        "equal-priority",
        "conntrack-priority",
        "v6-client",
    }
)


def _match(d: _Draw, ctx: _Ctx) -> tuple[str, str | None]:
    options = []
    for index, (_, weight, needs) in enumerate(MATCHES):
        if needs in {"ct", "ct-mark", "ct-status"} and ctx.family == "netdev":
            continue  # no conntrack expressions in the netdev family
        if needs == "fib" and ctx.hook == "ingress" and ctx.family != "netdev":
            continue  # inet ingress refuses fib
        if needs == "nfproto" and ctx.family not in {"inet", "netdev"}:
            continue
        if needs == "exthdr" and ctx.family == "ip":
            continue  # IPv6 only
        if needs in ctx.table.without:
            continue
        options.append((index, weight))
    if not options:
        return "counter", None
    generate = MATCHES[d.pick(options)][0]
    return generate(d, ctx)


# --- verdicts and statements ----------------------------------------------------------------------


def _simple_verdicts(ctx: _Ctx) -> list[tuple[str, float]]:
    reject_ok = ctx.hook in {"ingress", "prerouting", "input", "forward"}
    reject_ok = reject_ok and "reject" not in ctx.table.without
    return [
        ("accept", 30),
        ("drop", 22),
        ("reject", 6 if reject_ok else 0),
        ("continue", 4),
        ("return", 5),
    ]


def _vmap(d: _Draw, ctx: _Ctx) -> tuple[str, frozenset[str], str | None]:
    """`KEY vmap { ... }` or `KEY vmap @NAME`: (text, jump targets, named map used)."""
    key = d.pick(
        [
            ("iifname", 3),
            ("oifname", 2 if ctx.hook != "ingress" else 0),
            ("th dport", 3),
            ("meta l4proto", 1),
        ]
    )
    values: list[str] = {
        "iifname": ['"hs0"', '"up0"', '"lo"', '"xt0"'],
        "oifname": ['"hs0"', '"up0"', '"lo"', '"xt0"'],
        "th dport": ["53", "67", "443", "547", "1-50", "60000-65535"],
        "meta l4proto": ["tcp", "udp", "icmp"],
    }[key]

    def verdicts(allow_jump: bool) -> list[tuple[str, float]]:
        # a map holds verdicts only (`reject` is a statement)
        options = [(v, w) for v, w in _simple_verdicts(ctx) if w > 0 and v != "reject"]
        if allow_jump:
            for target in ctx.targets:
                options += [(f"jump {target}", 4), (f"goto {target}", 2)]
        return options

    named_ok = "named-sets" not in ctx.table.without
    if key in {"iifname", "oifname", "th dport"} and named_ok and d.chance(0.3):
        kind = {"iifname": "ifname", "oifname": "ifname", "th dport": "inet_service"}[key]
        name = "vif" if kind == "ifname" else "vport"
        pool = values[:4]  # single values: a named map without the interval flag

        def body() -> str:
            items = d.subset(pool, 1, 3)
            elems = ", ".join(f"{item} : {d.pick(verdicts(False))}" for item in items)
            return f"map {name} {{\n  type {kind} : verdict\n  elements = {{ {elems} }}\n}}"

        ctx.table.named(name, body)
        return f"{key} vmap @{name}", frozenset(), name
    items = d.subset(values, 1, 3)
    chosen = [d.pick(verdicts(True)) for _ in items]
    targets = frozenset(v.split()[1] for v in chosen if " " in v)
    elems = ", ".join(f"{item} : {verdict}" for item, verdict in zip(items, chosen, strict=True))
    return f"{key} vmap {{ {elems} }}", targets, None


def _protocols(match: str) -> tuple[str, str]:
    """The network and transport protocols a match implies ("" where it implies none)."""
    words = match.split()
    l3 = ""
    if "." in words and words[0] not in {"ip", "ip6"}:  # `iifname . ip6 daddr { ... }`
        words = words[2:]
    if words[0] == "ip" or words[0] == "icmp" or match in {"meta nfproto ipv4", "meta protocol ip"}:
        l3 = "4"
    elif words[0] in {"ip6", "icmpv6", "exthdr", "frag", "hbh"} or match in {
        "meta nfproto ipv6",
        "meta protocol ip6",
    }:
        l3 = "6"
    l4 = ""
    if words[0] in {"tcp", "udp"}:
        l4 = words[0]
    elif words[0] in {"icmp", "icmpv6"}:
        l4 = "icmp"
    elif words[:2] in (["meta", "l4proto"], ["ip", "protocol"], ["ip6", "nexthdr"]):
        value = words[2]
        if value == "{":  # `meta l4proto { tcp, udp }`: nft wants no single protocol after it
            l4 = "several"
        else:
            l4 = "icmp" if value.startswith("icmp") else value if value in {"tcp", "udp"} else ""
    return l3, l4


def _rule(d: _Draw, ctx: _Ctx, base_policy_drop: bool) -> NftRule:
    parts: list[str] = []
    removable: list[bool] = []
    uses: set[str] = set()
    if ctx.type == "nat":  # fewer matches: nat rules that apply to the flows are the point
        count = d.pick([(0, 3), (1, 4), (2, 1)])
    else:
        count = d.pick([(0, 2), (1, 5), (2, 4), (3, 2)])
    seen: set[str] = set()
    l3: set[str] = set()
    l4: set[str] = set()
    for _ in range(count):
        text, used = _match(d, ctx)
        words = text.split()
        head = words[0] if words[0] in {"iifname", "oifname", "iif", "oif"} else " ".join(words[:2])
        if head in seen or text == "counter":
            continue  # one match per key keeps rules readable
        proto3, proto4 = _protocols(text)
        if (proto3 and l3 - {proto3}) or (proto4 and l4 - {proto4}):
            continue  # nft refuses e.g. `ip saddr ... ip6 daddr ...` in one rule
        seen.add(head)
        l3.update({proto3} - {""})
        l4.update({proto4} - {""})
        parts.append(text)
        removable.append(True)
        if used:
            uses.add(used)
    nat_stmt = ctx.type == "nat"
    if ctx.hook in {"prerouting", "ingress"} and ctx.type == "filter":
        notrack_p = 0.3 if ctx.priority < -200 else 0.05
    else:
        notrack_p = 0.03 if ctx.type == "filter" and ctx.hook != "ingress" else 0.0
    if "notrack" in ctx.table.without:
        notrack_p = 0.0
    if d.chance(notrack_p):
        parts.append("notrack")
        removable.append(True)
    if "mark" not in ctx.table.without and d.chance(0.12):
        parts.append(f"meta mark set {d.one(MARKS)}")
        removable.append(True)
    if "ct-mark" not in ctx.table.without and ctx.family != "netdev" and d.chance(0.04):
        parts.append(f"ct mark set {d.one(MARKS)}")
        removable.append(True)
    if "mangle" not in ctx.table.without and d.chance(0.06):
        # statements that change nothing the verdict reads (the header ones carry nft's hidden
        # dependency: the rule goes on only for packets with that header)
        options = ["meta priority set 1:2"]
        if ctx.family != "netdev":
            options.append("ct event set new")
        if ctx.family in V4_FAMILIES and l3 <= {"4"}:
            options.append("ip dscp set cs1")
        if ctx.family in V6_FAMILIES and l3 <= {"6"}:
            options.append("ip6 dscp set cs1")
        parts.append(d.one(options))
        removable.append(True)
    if "log" not in ctx.table.without and d.chance(0.03):
        parts.append('log prefix "hg "')
        removable.append(True)
    if "limit" not in ctx.table.without and d.chance(0.03):
        parts.append(d.one(["limit rate 10/second", "limit rate over 1/minute"]))
        removable.append(True)
    if d.chance(0.25):
        parts.append("counter")
        removable.append(True)
    options: list[tuple[str, float]] = list(_simple_verdicts(ctx))
    if base_policy_drop:  # under a drop policy, give flows a way through
        options = [(v, w * (2 if v == "accept" else 1)) for v, w in options]
    if ctx.targets:
        options += [("jump", 10), ("goto", 5)]
    options += [("vmap", 0 if "vmap" in ctx.table.without else 7), ("none", 5 if parts else 0)]
    if nat_stmt:  # nat chains mostly translate; a drop there is rarer
        options = [(v, w * (0.3 if v == "drop" else 1)) for v, w in options]
    if nat_stmt and ctx.hook == "postrouting":
        options += [("masquerade", 50), ("snat", 12)]
    targets: frozenset[str] = frozenset()
    verdict = d.pick(options)
    if verdict in {"jump", "goto"}:
        target = d.one(ctx.targets)
        targets = frozenset({target})
        verdict = f"{verdict} {target}"
    elif verdict == "vmap":
        verdict, targets, used = _vmap(d, ctx)
        if used:
            uses.add(used)
    elif verdict == "none":
        verdict = ""
    elif verdict == "snat":
        if ctx.family == "ip":
            verdict = "snat to 198.51.100.2"
        elif ctx.family == "ip6":
            verdict = "snat to 2001:db8:100::2"
        else:  # inet: the address family must agree with the rule's matches
            v4 = "snat ip to 198.51.100.2"
            v6 = "snat ip6 to 2001:db8:100::2"
            verdict = v4 if l3 == {"4"} else v6 if l3 == {"6"} else d.one([v4, v6])
    elif verdict == "masquerade" and d.chance(0.3):
        verdict = 'oifname "up0" masquerade'
    elif verdict == "reject" and d.chance(0.4):
        # nft lists these without the protocol match it adds in front of them
        variants: list[tuple[str, float]] = []
        if ctx.family in {"inet", "netdev"}:  # icmpx only where both families meet
            variants.append(("reject with icmpx type admin-prohibited", 1))
        if l4 <= {"tcp"}:
            variants.append(("reject with tcp reset", 2))
        if ctx.family in V4_FAMILIES and l3 <= {"4"}:
            variants.append(("reject with icmp type host-unreachable", 1))
        if ctx.family in V6_FAMILIES and l3 <= {"6"}:
            variants.append(("reject with icmpv6 type admin-prohibited", 1))
        verdict = d.pick(variants) if variants else "reject"
    return NftRule(tuple(parts), verdict, targets, frozenset(uses), tuple(removable))


# --- tables -------------------------------------------------------------------------------------


@dataclass
class _ChainPlan:
    name: str
    hook: str
    type: str
    priority: int
    policy: str = "accept"
    device: str | None = None
    base: bool = True


def _priority(
    d: _Draw,
    key: tuple[str, ...],
    choices: Sequence[int],
    without: frozenset[str],
    taken: set[tuple[object, ...]],
) -> int | None:
    """A priority for a base chain at `key` (hook[, device]); with "equal-priority" left out,
    one no other base chain on that hook has (None when none is left)."""
    if "conntrack-priority" in without:
        choices = [p for p in choices if p != -200]
    if "equal-priority" in without:
        choices = [p for p in choices if (*key, p) not in taken]
        if not choices:
            return None
    prio = d.one(choices)
    taken.add((*key, prio))
    return prio


def _table(
    d: _Draw,
    index: int,
    without: frozenset[str] = frozenset(),
    taken: set[tuple[object, ...]] | None = None,
) -> NftTable:
    taken = set() if taken is None else taken
    ingress = "ingress" not in without
    family = d.pick([("inet", 4), ("ip", 3.5), ("ip6", 1.5), ("netdev", 1 if ingress else 0)])
    builder = _TableBuilder(family, f"t{index}", without)
    bases: list[_ChainPlan] = []
    for number in range(d.pick([(1, 4), (2, 3), (3, 2)])):
        name = f"b{number}"
        if family == "netdev" or (family == "inet" and ingress and d.chance(0.08)):
            device = d.pick([(HS, 6), (UP, 2), (SPARE, 1)])
            maybe = _priority(d, ("ingress", device), PRIORITIES, without, taken)
            if maybe is None:
                continue
            prio = maybe
            policy = "drop" if d.chance(0.15) else "accept"
            bases.append(_ChainPlan(name, "ingress", "filter", prio, policy, device))
            continue
        hook = d.pick([("prerouting", 2), ("input", 3), ("forward", 4), ("postrouting", 3)])
        ctype = "filter"
        nat_ok = "nat" not in without
        if hook in NAT_HOOKS and nat_ok and d.chance(0.6 if hook == "postrouting" else 0.15):
            ctype = "nat"
        maybe = _priority(
            d, (hook,), NAT_PRIORITIES if ctype == "nat" else PRIORITIES, without, taken
        )
        if maybe is None:
            continue
        prio = maybe
        drop_p = 0.06 if ctype == "nat" else 0.3
        policy = "drop" if d.chance(drop_p) else "accept"
        bases.append(_ChainPlan(name, hook, ctype, prio, policy))
    # regular chains, each reached only from base chains of one (hook, type): always loadable
    regulars: list[_ChainPlan] = []
    jumps = "jump" not in without
    if not bases:
        return NftTable(family, builder.name)
    for number in range(d.pick([(0, 3), (1, 3), (2, 2), (3, 1 if jumps else 0)]) if jumps else 0):
        home = d.one(bases)
        regulars.append(_ChainPlan(f"c{number}", home.hook, home.type, home.priority, base=False))

    def reachable(plan: _ChainPlan) -> list[str]:
        later = regulars[regulars.index(plan) + 1 :] if not plan.base else regulars
        return [r.name for r in later if (r.hook, r.type) == (plan.hook, plan.type)]

    chains: list[NftChain] = []
    for plan in bases + regulars:
        ctx = _Ctx(family, plan.hook, plan.type, plan.priority, reachable(plan), builder)
        if plan.base:
            count = d.pick([(0, 1), (1, 3), (2, 3), (3, 2), (4, 1.5), (5, 1)])
        else:
            count = d.pick([(1, 3), (2, 3), (3, 2), (4, 1)])
        rules = tuple(_rule(d, ctx, plan.policy == "drop") for _ in range(count))
        if plan.base:
            chains.append(
                NftChain(
                    plan.name, rules, plan.hook, plan.type, plan.priority, plan.policy, plan.device
                )
            )
        else:
            chains.append(NftChain(plan.name, rules))
    sets = tuple(builder.sets[name] for name in sorted(builder.sets))
    return NftTable(family, builder.name, tuple(chains), sets)


# --- iptables ---------------------------------------------------------------------------------

IPT_BUILTIN = {
    "filter": ("INPUT", "FORWARD", "OUTPUT"),
    "nat": ("PREROUTING", "INPUT", "OUTPUT", "POSTROUTING"),
    "mangle": ("PREROUTING", "INPUT", "FORWARD", "OUTPUT", "POSTROUTING"),
    "raw": ("PREROUTING", "OUTPUT"),
}
IPT_HOOKED = {  # the built-in chains the generator writes rules into
    "filter": ("INPUT", "FORWARD"),
    "nat": ("PREROUTING", "POSTROUTING"),
    "mangle": ("PREROUTING", "INPUT", "FORWARD", "POSTROUTING"),
    "raw": ("PREROUTING",),
}


def _ipt_match(d: _Draw, v6: bool, chain: str, protocol: list[str], without: frozenset[str]) -> str:
    kinds = [
        ("iface", 5),
        ("addr", 4),
        ("proto", 4),
        ("ct", 3),
        ("addrtype", 1.5),
        ("mark", 1),
        ("iprange", 0.5),
        ("multiport", 1),
    ]
    feature = {"proto": "port", "multiport": "port", "addrtype": "fib", "iprange": "addr"}
    kinds = [(k, w) for k, w in kinds if feature.get(k, k) not in without]
    if not kinds:
        return ""
    kind = d.pick(kinds)
    neg = "! " if d.chance(0.2) else ""
    if kind == "iface":
        inbound = chain in {"PREROUTING", "INPUT"}
        outbound = chain == "POSTROUTING"
        flag = "-o" if outbound or (not inbound and d.chance(0.5)) else "-i"
        name = d.pick([("hs0", 5), ("up0", 4), ("hs+", 2), ("lo", 1)])
        return f"{neg}{flag} {name}"
    if kind == "addr":
        flag = d.one(["-s", "-d"])
        pool = _v6(V6_SINGLE + V6_PREFIX, without) if v6 else (V4_SINGLE + V4_PREFIX)
        masked = [(f"{v}/{m}", 1.0) for m, v in (V6_MASKED if v6 else V4_MASKED)]
        value = d.pick([*pool, *masked])
        if "/" not in value:
            value += "/128" if v6 else "/32"
        return f"{neg}{flag} {value}"
    if kind in {"proto", "multiport"} and not protocol:
        proto = d.pick([("tcp", 1), ("udp", 1)])
        protocol.append(proto)
        if kind == "multiport":
            ports = ",".join(d.subset(["53", "67", "443", "547", "1000:2000"], 1, 3))
            return f"-p {proto} -m multiport {neg}--dports {ports}"
        port = d.pick(
            [("53", 3), ("67", 2), ("443", 3), ("547", 1), ("1024:65535", 1), ("1:1023", 1)]
        )
        which = d.pick([("--dport", 5), ("--sport", 1)])
        return f"-p {proto} -m {proto} {neg}{which} {port}"
    if kind in {"proto", "multiport"}:
        return f"{neg}-p {d.one(['icmpv6' if v6 else 'icmp', 'udp', 'tcp'])}"
    if kind == "ct":
        if d.chance(0.2):  # --ctdir cannot be negated
            return f"-m conntrack --ctdir {d.one(['ORIGINAL', 'REPLY'])}"
        if d.chance(0.2):  # the NAT pseudo states and status bits
            return d.one(
                [
                    f"-m conntrack {neg}--ctstate {d.one(['SNAT', 'DNAT', 'SNAT,DNAT'])}",
                    f"-m conntrack {neg}--ctstatus {d.one(['ASSURED', 'SEEN_REPLY'])}",
                ]
            )
        if d.chance(0.1):
            return f"-m length {neg}--length {d.one(['1000:65535', '0:200', '60'])}"
        states = ",".join(s.upper() for s in d.subset(CT_STATES, 1, 2))
        return f"-m conntrack {neg}--ctstate {states}"
    if kind == "addrtype":
        types = ["LOCAL", "UNICAST", "MULTICAST"] + ([] if v6 else ["BROADCAST"])  # no v6 broadcast
        return f"-m addrtype {neg}--dst-type {d.one(types)}"
    if kind == "mark":
        return f"-m mark {neg}--mark {d.one(['0x1', '0x2', '0x3', '0x2/0x2'])}"
    low_high = "2001:db8:42::5-2001:db8:42::20" if v6 else "10.42.0.5-10.42.0.20"
    return f"-m iprange {neg}--src-range {low_high}"


def _ipt_rule(
    d: _Draw,
    v6: bool,
    table: str,
    chain: str,
    users: list[str],
    without: frozenset[str],
    user_chain: bool = False,
) -> str:
    protocol: list[str] = []
    parts: list[str] = []
    flags: set[str] = set()
    for _ in range(d.pick([(0, 1), (1, 4), (2, 3)])):
        part = _ipt_match(d, v6, chain, protocol, without)
        if not part:
            continue
        words = part.replace("! ", "").split()
        flag = words[0] if words[0] != "-m" else " ".join(words[:3])
        if flag in flags or ("-p" in flags and words[0] == "-p"):
            continue  # iptables allows each option once
        flags.add(flag)
        flags.update({"-p"} if "-p" in words else set())
        parts.append(part)
    rpfilter_ok = table in {"raw", "mangle"} and chain == "PREROUTING" and not user_chain
    if rpfilter_ok and "fib" not in without and d.chance(0.4):
        options_text = [o for o in ("--loose", "--validmark", "--accept-local") if d.chance(0.3)]
        if d.chance(0.4):
            options_text.append("--invert")
        parts.append(" ".join(["-m rpfilter", *options_text]))
    options: list[tuple[str, float]] = [("ACCEPT", 6), ("DROP", 5), ("RETURN", 1)]
    if table == "filter" and "reject" not in without:
        options.append(("REJECT", 1.5))
    if table == "nat" and chain == "POSTROUTING" and not user_chain:
        options += [("MASQUERADE", 8), ("SNAT", 2)]
    if table == "nat":  # iptables refuses DROP in the nat table
        options = [(v, w) for v, w in options if v != "DROP"]
    if table == "raw" and "notrack" not in without:
        options += [("CT --notrack", 6)]
    if table in {"mangle", "raw"} and "mark" not in without:
        options += [("MARK --set-mark", 4)]
    if users:
        options += [("jump", 6), ("goto", 1)]
    target = d.pick(options)
    if target == "jump":
        return " ".join([*parts, f"-j {d.one(users)}"])
    if target == "goto":
        return " ".join([*parts, f"-g {d.one(users)}"])
    if target == "SNAT":
        target = "SNAT --to-source " + ("2001:db8:100::2" if v6 else "198.51.100.2")
    if target == "MARK --set-mark":
        target += " " + d.one(["0x1", "0x2", "0x3"])
    return " ".join([*parts, f"-j {target}"])


def _iptables(d: _Draw, without: frozenset[str] = frozenset()) -> IptablesLoad:
    v6 = d.chance(0.3)
    legacy = "legacy" not in without and d.chance(0.4)
    names = ["filter"]
    for extra, p in (("nat", 0.35), ("mangle", 0.2), ("raw", 0.15)):
        if extra == "nat" and "nat" in without:
            continue
        if d.chance(p):
            names.append(extra)
    tables = []
    for name in names:
        chains: list[IptablesChain] = []
        user_count = d.pick([(0, 2), (1, 2), (2, 1)]) if "jump" not in without else 0
        users = [f"U{name[0].upper()}{i}" for i in range(user_count)]
        hooked = IPT_HOOKED[name]
        for builtin in IPT_BUILTIN[name]:
            policy = "ACCEPT"
            if builtin in hooked and name == "filter" and d.chance(0.3):
                policy = "DROP"
            rules: tuple[str, ...] = ()
            if builtin in hooked:
                count = d.pick([(0, 1), (1, 3), (2, 3), (3, 2)])
                rules = tuple(_ipt_rule(d, v6, name, builtin, users, without) for _ in range(count))
            chains.append(IptablesChain(builtin, policy, rules))
        for i, user in enumerate(users):
            later = users[i + 1 :]
            count = d.pick([(1, 3), (2, 2), (3, 1)])
            # user chains of nat are reached from PREROUTING and POSTROUTING alike: no NAT
            # targets there; REJECT only in filter
            chain_kind = "FORWARD" if name == "filter" else "PREROUTING"
            rules = tuple(
                _ipt_rule(d, v6, name, chain_kind, later, without, user_chain=True)
                for _ in range(count)
            )
            chains.append(IptablesChain(user, None, rules))
        tables.append(IptablesTable(name, tuple(chains)))
    return IptablesLoad(tuple(tables), v6, legacy)


# --- the strategy ---------------------------------------------------------------------------


@st.composite
def rulesets(
    draw: Callable[[st.SearchStrategy[Any]], Any],
    iptables_p: float = 0.2,
    without: frozenset[str] = frozenset(),
    shrinkable: bool = False,
) -> GeneratedRuleset:
    """A random ruleset: 1-4 nft tables and sometimes iptables (see the module docstring).
    `without` leaves grammar features out (names in FEATURES), e.g. while a bug is open.
    `shrinkable` draws every choice through hypothesis (see `_Draw`)."""
    unknown = set(without) - FEATURES
    if unknown:
        raise ValueError(f"unknown features {sorted(unknown)}; known: {sorted(FEATURES)}")
    if shrinkable:
        d = _Draw(draw=draw)
    else:
        d = _Draw(rng=random.Random(draw(st.integers(0, 2**64 - 1))))
    with_iptables = "iptables" not in without and d.chance(iptables_p)
    count = d.pick([(1, 3), (2, 3), (3, 2), (4, 1)])
    if with_iptables and d.chance(0.3):
        count = 0
    taken: set[tuple[object, ...]] = set()
    if with_iptables and "equal-priority" in without:  # the iptables tables' fixed priorities
        taken |= {
            (hook, prio)
            for hook, prio in (
                ("prerouting", -300),
                ("prerouting", -150),
                ("prerouting", -100),
                ("input", -150),
                ("input", 0),
                ("input", 100),
                ("forward", -150),
                ("forward", 0),
                ("postrouting", -150),
                ("postrouting", 100),
            )
        }
    tables = tuple(_table(d, i, without, taken) for i in range(count))
    tables = tuple(t for t in tables if t.chains)
    loads: tuple[IptablesLoad, ...] = ()
    if with_iptables:
        first = _iptables(d, without)
        loads = (first,)
        if d.chance(0.2):
            second = _iptables(d, without)
            if (second.ipv6, second.legacy) != (first.ipv6, first.legacy):
                loads = (first, second)
    if not tables and not loads:
        tables = (_table(d, 0, without, set()),)
    return GeneratedRuleset(tables, loads)


def minimize(
    ruleset: GeneratedRuleset,
    still_fails: Callable[[GeneratedRuleset], bool],
    budget: int = 120,
) -> tuple[GeneratedRuleset, int]:
    """Greedy delta debugging: the smallest variant (by `shrink_candidates`) that still fails.
    Returns it and the number of candidates tried (each one costs a kernel probe)."""
    tried = 0
    current = ruleset
    progress = True
    while progress and tried < budget:
        progress = False
        for candidate in current.shrink_candidates():
            if candidate.size() >= current.size() and candidate.describe() == current.describe():
                continue
            tried += 1
            if still_fails(candidate):
                current = candidate
                progress = True
                break
            if tried >= budget:
                break
    return current, tried


# --- disagreements found by the differential run, minimised -----------------------------------


@dataclass(frozen=True)
class KnownCase:
    """A minimised ruleset on which the engine and the kernel disagreed.

    `kernel` is what the lab's kernel did (KernelFlow.short(): "True", "False", "None" (not
    testable), "masq", "plain"), `engine` what the engine said when the case was found
    ("accept", "drop", "accept/masquerade"), for the flows that matter; `false_ok` lists the
    flows where the engine said ok and the kernel dropped (the worst kind)."""

    name: str
    nft: str
    kernel: dict[str, str]
    engine: dict[str, str]
    diagnosis: str
    false_ok: tuple[str, ...] = ()
    iptables: tuple[tuple[str, bool, bool], ...] = ()  # (restore text, ipv6, legacy)
    fixed_in: str | None = None  # the commit that made the engine agree; then a regression test


ALL_DELIVERED = {
    "dhcp": "True",
    "dns": "True",
    "outbound": "plain",
    "reply": "True",
    "dhcp6": "True",
    "dns6": "True",
    "outbound6": "plain",
    "reply6": "True",
}


def _k(**changes: str) -> dict[str, str]:
    return {**ALL_DELIVERED, **changes}


KNOWN_CASES: list[KnownCase] = [
    KnownCase(
        "ingress-chain-device-not-in-json",
        """table netdev t0 {
  chain i {
    type filter hook ingress device "hs0" priority 0; policy accept;
    udp dport 53 drop
  }
}
""",
        _k(dns="False", dns6="False"),
        {"dns": "accept", "dns6": "accept"},
        "nft 1.0.6 `nft -j list ruleset` prints netdev/inet ingress chains without their "
        'device (no "dev" key; the text listing has `device "hs0"`), so Chain.devices is '
        "empty and HookIndex.chains() never selects the chain: every ingress chain is ignored. "
        "Kernel: the chain is registered on hs0 and drops. Engine side: when an ingress chain "
        "has no device in the JSON, take it from the text listing (or `nft -j list chain`), "
        "or treat the chain as possibly on every device (uncertain), never as absent.",
        false_ok=("dns", "dns6"),
        fixed_in="ec0b786",
    ),
    KnownCase(
        "inet-ingress-chain-device-not-in-document",
        """table inet t0 {
  chain i {
    type filter hook ingress device "hs0" priority 0; policy accept;
    udp dport 53 drop
  }
}
""",
        _k(dns="False", dns6="False"),
        {"dns": "accept", "dns6": "accept"},
        "A snapshot whose nft document names no device for an ingress chain (nft 1.0.6's JSON, "
        "another tool's snapshot) made HookIndex.chains() filter the chain out, so the "
        "evaluator's unknown-device fork was never reached: a false ok. Now a device-less "
        "ingress chain is resolved from the snapshot's `ingress_devices`, else it forks and "
        "the flow reads unknown with the reason. The test checks both documents.",
        false_ok=("dns", "dns6"),
        fixed_in="63a1f45",
    ),
    KnownCase(
        "tcp-flags-name-set",
        """table inet t0 {
  chain f {
    type filter hook forward priority 0; policy accept;
    tcp flags { syn, fin } drop
  }
}
""",
        _k(outbound="False", reply="None", outbound6="False", reply6="None"),
        {"outbound": "accept", "outbound6": "accept"},
        "`tcp flags { syn, fin }` is a set of flag names; the parser kept the names as strings "
        "while the packet's flags are a number, so the set never matched and the SYN went "
        "through: a false ok. Bitmask types (tcp_flag, ct_state, ct_status) are now typed as "
        "their bits everywhere (values.BIT_KINDS), a set lookup compares the whole value.",
        false_ok=("outbound", "outbound6"),
        fixed_in="5c35186",
    ),
    KnownCase(
        "tcp-flags-masked-name-set",
        """table ip t0 {
  chain f {
    type filter hook forward priority 0; policy accept;
    tcp flags & (syn | ack) == { syn } drop
  }
}
""",
        _k(outbound="False", reply="None"),
        {"outbound": "unknown"},
        "The mask `syn | ack` is an or-expression in the JSON and the set holds names: neither "
        "was typed, so the rule read as undecidable (unknown, not a disagreement); now exact.",
        fixed_in="5c35186",
    ),
    KnownCase(
        "tcp-flags-named-set",
        """table ip t0 {
  set tf {
    type tcp_flag
    elements = { syn, rst }
  }
  chain f {
    type filter hook forward priority 0; policy accept;
    tcp flags @tf drop
  }
}
""",
        _k(outbound="False", reply="None"),
        {"outbound": "accept"},
        "A named set of type tcp_flag kept its elements as names: never a match, a false ok.",
        false_ok=("outbound",),
        fixed_in="5c35186",
    ),
    KnownCase(
        "ct-event-set-starts-conntrack",
        """table ip6 t1 {
  chain b0 {
    type nat hook prerouting priority -10; policy accept;
    ct event set new th dport vmap { 1-50 : accept }
    reject
  }
}
""",
        _k(dhcp6="False", dns6="False", outbound6="False", reply6="None"),
        {"dhcp6": "accept", "dns6": "accept", "outbound6": "accept"},
        "`ct event set` is a conntrack user (nft_ct's set expression takes the netns' "
        "conntrack), so the nat chain runs and rejects; the engine, reading it as a statement "
        "that changes nothing, counted no conntrack user and skipped the nat chain.",
        false_ok=("dhcp6", "dns6", "outbound6"),
        fixed_in="599842a",
    ),
    KnownCase(
        "notrack-at-conntrack-priority",
        """table inet t0 {
  chain b1 {
    type nat hook postrouting priority 10; policy accept;
    oifname "up0" masquerade
  }
}
table ip6 t1 {
  chain b0 {
    type filter hook prerouting priority -200; policy accept;
    notrack accept
  }
}
""",
        _k(outbound="masq"),
        {"outbound6": "accept/masquerade"},
        "A `notrack` in a chain at exactly conntrack's priority (-200): the kernel ran it before "
        "conntrack, so the connection is untracked and never masqueraded; the engine reads the "
        "conntrack state there as unknown and makes `notrack` a no-op, so it says masqueraded. "
        "Engine: a chain at exactly -200 runs before conntrack if it registered after it "
        "(nf_hook_entries_grow puts a new hook before those of equal priority), which no "
        "snapshot holds: both orders are followed, and the flow is unknown when they differ "
        "(found by the differential run of the engine branch, 2026-12-04).",
        false_ok=("outbound6",),
        fixed_in="0c165d3",
    ),
    KnownCase(
        "filter-at-nat-core-priority",
        """table ip t0 {
  chain b1 {
    type filter hook prerouting priority -100; policy drop;
    ip daddr & 255.0.255.0 == 198.0.100.0 accept
    iif != "up0" accept
  }
}
table ip t1 {
  chain b0 {
    type nat hook postrouting priority -100; policy accept;
    jump c0
  }
  chain c0 {
    oifname "up0" masquerade
  }
}
""",
        # the reply is left out: whether t0 runs before the nat core translates it back
        # depends on what registered the nat core first in the lab's history
        {k: v for k, v in _k(outbound="masq").items() if k != "reply"},
        {"reply": "drop"},
        "A filter chain at exactly the nat core's dstnat priority (-100): the kernel ran it "
        "before the reply was translated back (the nat core had registered earlier, so the "
        "newer chain went first), it saw the uplink's address and accepted; the engine ran it "
        "after and dropped the reply. Engine: at exactly -100 (and srcnat's 100) both orders "
        "are followed, unknown where they differ (differential run of the engine branch, seed "
        "564975440, 2026-12-04).",
        fixed_in="7f5c5b5",
    ),
    KnownCase(
        "nat-chain-skipped-without-conntrack",
        """table ip t0 {
  chain n {
    type nat hook prerouting priority -100; policy accept;
    udp dport 53 drop
  }
}
""",
        _k(),
        {"dns": "drop"},
        "A nat chain does not enable conntrack; only expressions do (ct, masquerade/snat/dnat, "
        "xt conntrack/NAT/CT targets: nf_ct_netns_get()). With no conntrack user for the family "
        "in the netns, packets carry no conntrack entry and nf_nat_inet_fn() returns NF_ACCEPT "
        "before running any nat chain (`if (!ct) return NF_ACCEPT`): the drop never happens. "
        "Any ct/nat expression anywhere for that family (even in an output chain) makes it drop. "
        "Engine: run nat chains only if some rule of the snapshot uses conntrack for that "
        "family (inet counts for both), else skip them (or call them uncertain).",
        fixed_in="83096c3",
    ),
    KnownCase(
        "nat-chain-skipped-without-conntrack-v6",
        """table ip t0 {
  chain n {
    type nat hook postrouting priority 100; policy accept;
    oifname "up0" masquerade
  }
}
table ip6 t1 {
  chain n {
    type nat hook prerouting priority -100; policy accept;
    udp dport 53 drop
  }
}
""",
        _k(outbound="masq"),
        {"dns6": "drop"},
        "As nat-chain-skipped-without-conntrack, per family: the ip masquerade enables IPv4 "
        "conntrack only, so the ip6 nat chain never runs.",
        fixed_in="83096c3",
    ),
    KnownCase(
        "ipv6-client-address",
        """table ip6 t0 {
  chain i {
    type filter hook input priority 0; policy accept;
    ip6 saddr 2001:db8:42::10 udp dport 53 drop
  }
}
""",
        _k(dns6="False"),
        {"dns6": "accept"},
        "flows.client_address() adds CLIENT_HOST_INDEX = 10 (decimal) to the prefix, which is "
        "2001:db8:42::a for IPv6, while the documented flows (and the lab's phone) use "
        "2001:db8:42::10. Beyond the constant: IPv6 clients of a shared connection use SLAAC or "
        "privacy addresses, so a rule on one exact client address should make the flow "
        "uncertain rather than decide it with a guessed address.",
        false_ok=("dns6",),
        fixed_in="83096c3",
    ),
    KnownCase(
        "notrack-after-conntrack-is-a-no-op",
        """table inet t0 {
  chain f0 {
    type filter hook forward priority -50; policy accept;
    notrack
  }
  chain f1 {
    type filter hook forward priority 0; policy drop;
    ct state new,established accept
  }
}
""",
        _k(),
        {"outbound": "drop", "reply": "drop", "outbound6": "drop", "reply6": "drop"},
        "nft_notrack_eval() returns at once when the packet already has a conntrack entry "
        "(`if (ct || ctinfo == IP_CT_UNTRACKED) return;`), i.e. anywhere after conntrack "
        "(prerouting/output priority > -200, and every input/forward/postrouting chain); the "
        "kernel accepts notrack in those hooks. The engine's run_rule() makes the packet "
        "untracked wherever notrack appears: apply it only before conntrack.",
        fixed_in="83096c3",
    ),
    KnownCase(
        "notrack-syn-makes-reply-invalid",
        """table inet t0 {
  chain raw {
    type filter hook prerouting priority -300; policy accept;
    iifname "hs0" tcp dport 443 notrack
  }
  chain f1 {
    type filter hook forward priority 0; policy drop;
    iifname "hs0" accept
    ct state established accept
  }
}
""",
        _k(reply="False", reply6="False"),
        {"reply": "accept", "reply6": "accept"},
        "The reply flow's ct state is fixed at established, but when the outbound SYN was made "
        "untracked no conntrack entry exists: the SYN-ACK creates a new one in the ORIGINAL "
        "direction, which TCP conntrack refuses (tcp_conntracks[0][SYNACK][sNO] = sIV), so it "
        "is `ct state invalid` (checked: `ct state invalid drop` drops it, `new`/`untracked` "
        "do not). Engine: when the outbound branch went untracked, evaluate the reply as "
        "ct state invalid (and ct direction unavailable).",
        false_ok=("reply", "reply6"),
        fixed_in="ec0b786",
    ),
    KnownCase(
        "masquerade-rewrites-source-for-later-postrouting-chains",
        """table ip t0 {
  chain n {
    type nat hook postrouting priority 100; policy accept;
    oifname "up0" masquerade
  }
  chain p {
    type filter hook postrouting priority 300; policy accept;
    ip saddr 198.51.100.2 tcp dport 443 drop
  }
}
""",
        _k(outbound="False", reply="None"),
        {"outbound": "accept/masquerade"},
        "Source NAT is applied by the nat hook itself (nf_nat_inet_fn -> nf_nat_packet at "
        "NF_IP_PRI_NAT_SRC = 100), so postrouting chains after 100 see the masqueraded source "
        "(198.51.100.2) and no longer the client's. The engine keeps the client's address "
        "after masquerade: after a masquerade/snat at postrouting, later chains must see "
        "saddr = the uplink's address (masquerade) or the snat address (and the inverse case "
        "`ip saddr 10.42.0.0/24 drop` there is a false drop).",
        false_ok=("outbound",),
        fixed_in="83096c3",
    ),
    KnownCase(
        "masquerade-rewrites-source-false-drop",
        """table ip t0 {
  chain n {
    type nat hook postrouting priority 100; policy accept;
    oifname "up0" masquerade
  }
  chain p {
    type filter hook postrouting priority 300; policy accept;
    ip saddr 10.42.0.0/24 drop
  }
}
""",
        _k(outbound="masq"),
        {"outbound": "drop"},
        "The other side of masquerade-rewrites-source-for-later-postrouting-chains.",
        fixed_in="83096c3",
    ),
    KnownCase(
        "reply-seen-before-de-nat",
        """table ip t0 {
  chain n {
    type nat hook postrouting priority 100; policy accept;
    oifname "up0" masquerade
  }
  chain p {
    type filter hook prerouting priority -150; policy accept;
    iifname "up0" ip daddr 198.51.100.2 tcp sport 443 drop
  }
}
""",
        _k(outbound="masq", reply="False"),
        {"reply": "accept"},
        "A masqueraded connection's reply is un-NATed by the prerouting nat hook "
        "(NF_IP_PRI_NAT_DST = -100): prerouting chains before -100 see daddr = the uplink "
        "address (198.51.100.2), chains from -100 on see the client. The engine's reply packet "
        "always has daddr = client: when the outbound was masqueraded (snat'ed), the reply "
        "before -100 must carry the translated address (the inverse, `ip daddr 10.42.0.10 "
        "drop` at -150, is a false drop).",
        false_ok=("reply",),
        fixed_in="83096c3",
    ),
    KnownCase(
        "reply-seen-before-de-nat-false-drop",
        """table ip t0 {
  chain n {
    type nat hook postrouting priority 100; policy accept;
    oifname "up0" masquerade
  }
  chain p {
    type filter hook prerouting priority -150; policy accept;
    iifname "up0" ip daddr 10.42.0.10 drop
  }
}
""",
        _k(outbound="masq"),
        {"reply": "drop"},
        "The other side of reply-seen-before-de-nat.",
        fixed_in="83096c3",
    ),
    KnownCase(
        "nat-chain-runs-at-nat-hook-priority",
        """table ip t0 {
  chain n {
    type nat hook postrouting priority 300; policy accept;
    meta mark set 0x00000001
  }
  chain p {
    type filter hook postrouting priority 200; policy accept;
    ct state new meta mark 0x00000001 drop
  }
}
""",
        _k(outbound="False", reply="None"),
        {"outbound": "accept"},
        "nft nat chains are not netfilter hooks of their own: nf_nat_register_fn() puts them "
        "in the list the nat core walks from its own hooks at fixed priorities (prerouting "
        "-100, input 100, output -100, postrouting 100); the chain's priority only orders nat "
        "chains among themselves. So this nat chain (priority 300) runs at 100, before the "
        "filter chain at 200, which sees the mark and drops. The engine orders the nat chain "
        "by its own priority (after 200).",
        false_ok=("outbound",),
        fixed_in="83096c3",
    ),
    KnownCase(
        "nat-chain-runs-at-nat-hook-priority-false-drop",
        """table ip t0 {
  chain n {
    type nat hook postrouting priority -100; policy accept;
    meta mark set 0x00000001
  }
  chain p {
    type filter hook postrouting priority 0; policy accept;
    ct state new meta mark 0x00000001 drop
  }
}
""",
        _k(),
        {"outbound": "drop"},
        "The other side of nat-chain-runs-at-nat-hook-priority: the nat chain at -100 really "
        "runs at 100, after the filter chain at 0.",
        fixed_in="83096c3",
    ),
    KnownCase(
        "equal-priority-newest-chain-first",
        """table ip t0 {
  chain b {
    type filter hook forward priority 0; policy accept;
    meta mark 0x00000001 drop
  }
}
table ip t1 {
  chain a {
    type filter hook forward priority 0; policy accept;
    meta mark set 0x00000001
  }
}
""",
        _k(outbound="False", reply="None"),
        {"outbound": "accept"},
        "Base chains of equal priority on one hook: nf_hook_entries_grow() inserts a new hook "
        "before the existing ones of the same priority, so the chain registered last runs "
        "first (t1's chain a sets the mark, then t0's chain b drops). The engine runs them in "
        "listing (registration) order. Engine: among equal priorities run the later-listed "
        "chain first (holds within one table too), or call the flow uncertain where the order "
        "matters (marks, notrack, nat) and registration order is not known (legacy tables).",
        false_ok=("outbound",),
        fixed_in="83096c3",
    ),
    KnownCase(
        "equal-priority-newest-chain-first-false-drop",
        """table ip t0 {
  chain a {
    type filter hook forward priority 0; policy accept;
    meta mark set 0x00000001
  }
}
table ip t1 {
  chain b {
    type filter hook forward priority 0; policy accept;
    meta mark 0x00000001 drop
  }
}
""",
        _k(),
        {"outbound": "drop", "reply": "drop"},
        "The other side of equal-priority-newest-chain-first.",
        fixed_in="83096c3",
    ),
    KnownCase(
        "ct-state-at-conntrack-priority",
        """table ip t0 {
  chain p {
    type filter hook prerouting priority -200; policy accept;
    ct state new drop
  }
}
""",
        _k(dhcp="False", dns="False", outbound="False", reply="None"),
        {"dhcp": "accept", "dns": "accept", "outbound": "accept"},
        "Conntrack's own hook has priority -200 and is registered when its first user appears "
        "(here: this rule's ct expression, after the chain was created). Equal priorities run "
        "newest first, so conntrack runs before this chain and `ct state new` matches. The "
        "engine treats priority <= -200 as before conntrack (ct state invalid). If a conntrack "
        "user existed before the chain was created, the chain runs first (checked: then the "
        "flows pass). Engine: at exactly -200 the ct state is undecidable from the snapshot "
        "(uncertain), unless registration order is derived.",
        false_ok=("dhcp", "dns", "outbound"),
        fixed_in="83096c3",
    ),
    KnownCase(
        "untracked-reply-is-not-un-nated",
        """table inet t0 {
  chain raw {
    type filter hook prerouting priority -300; policy accept;
    iifname "up0" notrack
  }
  chain n {
    type nat hook postrouting priority 100; policy accept;
    oifname "up0" masquerade
  }
}
""",
        _k(outbound="masq", reply="False", outbound6="masq", reply6="False"),
        {"reply": "accept", "reply6": "accept"},
        "The masqueraded connection's replies are made untracked before conntrack, so no "
        "conntrack entry is found for them and nothing reverses the NAT: the SYN-ACK keeps "
        "daddr = the uplink address (198.51.100.2), is routed to the host itself and never "
        "reaches the client. (Found with a netdev ingress `notrack` on up0 as well.) Engine: "
        "a reply made untracked while the outbound was NATed is not delivered (drop, or "
        "unknown), whatever the filter rules say.",
        false_ok=("reply", "reply6"),
        fixed_in="83096c3",
    ),
    KnownCase(
        "inet-nat-statement-of-one-family",
        """table inet t0 {
  chain f {
    type filter hook forward priority 0; policy accept;
    ct state new counter
  }
  chain n {
    type nat hook postrouting priority 100; policy accept;
    snat ip to 198.51.100.2
    oifname "up0" drop
  }
}
""",
        _k(outbound="masq", outbound6="False", reply6="None"),
        {"outbound6": "accept/snat"},
        'In an inet table `snat ip to ...` (JSON {"snat": {"family": "ip", ...}}) '
        "only acts on IPv4 packets: nft_nat_inet_eval() skips it for other families and the "
        'rule does not end the chain, so the IPv6 SYN goes on to `oifname "up0" drop`. '
        "The engine takes every nat statement as terminal for both families (FALSE OK on "
        "outbound6, and nat=snat for a connection that is not translated).",
        false_ok=("outbound6",),
        fixed_in="83096c3",
    ),
    KnownCase(
        "nat-statement-enables-conntrack-for-its-family-only",
        """table inet t0 {
  chain n {
    type nat hook postrouting priority 100; policy accept;
    snat ip to 198.51.100.2
    oifname "up0" drop
  }
}
""",
        _k(outbound="masq"),
        {"outbound6": "accept/snat"},
        "As nat-chain-skipped-without-conntrack: `snat ip to` calls nf_ct_netns_get() for "
        "IPv4 only (the statement's family, not the table's), so with no other conntrack user "
        "the inet nat chain never runs for IPv6: outbound6 is neither translated nor dropped "
        "by the `drop` after it. The engine reports nat=snat for outbound6 (a nat mismatch).",
        fixed_in="83096c3",
    ),
    KnownCase(
        "ct-mark-is-per-connection",
        """table inet t0 {
  chain f {
    type filter hook forward priority 0; policy accept;
    iifname "hs0" ct mark set 0x00000001
    iifname "up0" ct mark 0x00000001 drop
  }
}
""",
        _k(reply="False", reply6="False"),
        {"reply": "accept", "reply6": "accept"},
        "`ct mark set` stores the mark in the conntrack entry, so every later packet of the "
        "connection (the reply too) reads it. The engine ignores `ct mark set` (an Effect) and "
        'reads ct mark as 0 (engine.read: `if key.key == "mark": return 0`). Engine: carry '
        "ct mark from the outbound branch into the reply flow, or make ct mark uncertain.",
        false_ok=("reply", "reply6"),
        fixed_in="83096c3",
    ),
    KnownCase(
        "tcp-flags-in-is-a-bit-test",
        """table inet t0 {
  chain f {
    type filter hook forward priority 0; policy accept;
    tcp flags syn iifname "up0" drop
  }
}
""",
        _k(reply="False", reply6="False"),
        {"reply": "accept", "reply6": "accept"},
        '`tcp flags syn` (nft -j: op "in", right "syn") is a bit test, '
        "(flags & syn) != 0, so it matches the SYN-ACK too. The engine compares for equality "
        '(0x12 == 0x02). Engine: for op "in" with a flag or bitmask value on an integer '
        "key, match when `actual & value != 0` (and for a list of flags, against their OR).",
        false_ok=("reply", "reply6"),
        fixed_in="83096c3",
    ),
    KnownCase(
        "reject-type-hides-nfproto-match",
        """table inet t0 {
  chain i {
    type filter hook input priority 0; policy accept;
    meta nfproto ipv4 reject
  }
}
""",
        _k(dhcp="False", dns="False"),
        {"dhcp6": "drop", "dns6": "drop"},
        "nft lists `meta nfproto ipv4 reject` as `reject with icmp port-unreachable` and "
        'its JSON as [{"reject": {"type": "icmp", ...}}]: the nfproto match is '
        "printed as the reject's implicit dependency, but the kernel rule still has it "
        "(`nft --debug=netlink`: meta load nfproto; cmp eq 2; reject type 0 code 3). The "
        "engine reads an unconditional reject and drops the IPv6 flows too. Engine: in "
        "inet/netdev/bridge tables a reject of type icmp implies nfproto ipv4, icmpv6 "
        "implies ipv6 (icmpx: both).",
        fixed_in="83096c3",
    ),
    KnownCase(
        "reject-tcp-reset-hides-protocol-match",
        """table ip t0 {
  chain i {
    type filter hook input priority 0; policy accept;
    reject with tcp reset
  }
}
""",
        _k(),
        {"dhcp": "drop", "dns": "drop"},
        "nft adds `ip protocol tcp` in front of `reject with tcp reset` and omits it again "
        'when listing (JSON: [{"reject": {"type": "tcp reset"}}] alone; bytecode: '
        "payload load 1b @ network header + 9; cmp eq 6; reject type 1). The engine drops "
        'the UDP flows. Engine: a reject of type "tcp reset" implies l4proto tcp (in inet '
        "tables nft keeps the `meta l4proto tcp` match visible, in ip/ip6 tables it does not).",
        fixed_in="83096c3",
    ),
    KnownCase(
        "inet-nat-statement-of-one-family-v4",
        """table inet t0 {
  chain n {
    type nat hook postrouting priority 10; policy accept;
    snat ip6 to 2001:db8:100::2
  }
}
""",
        _k(outbound6="masq"),
        {"outbound": "accept/snat"},
        "The IPv4 side of inet-nat-statement-of-one-family: `snat ip6 to` never translates "
        "IPv4 (here IPv4 conntrack is not even enabled, see "
        "nat-statement-enables-conntrack-for-its-family-only), yet the engine reports "
        "outbound nat=snat: the hotspot's IPv4 traffic leaves unmasqueraded while the engine "
        "says it is translated (a false ok on the nat requirement).",
        false_ok=("outbound",),
        fixed_in="83096c3",
    ),
    KnownCase(
        "uncertain-masquerade-reported-as-none-v6",
        """table ip6 t0 {
  chain n {
    type nat hook postrouting priority 300; policy accept;
    limit rate 10/second masquerade
  }
}
""",
        _k(outbound6="masq"),
        {"outbound6": "accept"},
        "Minor: the limit makes the masquerade undecidable; both branches accept, and for "
        "IPv6 (needs_nat False) _combine() reports the first branch's nat (None) as if it were "
        "certain, while the kernel (first packet within the rate) masquerades. For IPv4 the "
        "same ruleset gives `unknown`, correctly. Engine: report the nat as undecidable (or "
        "None only when every branch agrees).",
        fixed_in="83096c3",
    ),
    KnownCase(
        "first-nat-chain-to-translate-ends-the-nat-core",
        """table ip6 t0 {
  chain b0 {
    type nat hook postrouting priority -150; policy accept;
    masquerade
  }
}
table inet t1 {
  chain b0 {
    type nat hook postrouting priority -10; policy accept;
    drop
  }
}
""",
        _k(outbound6="masq"),
        {"outbound6": "drop"},
        "nf_nat_inet_fn() runs a hook's nat chains in priority order only until one of them "
        "has set up the translation (`if (nf_nat_initialized(ct, maniptype)) goto do_nat`): "
        "after the ip6 masquerade the inet chain's drop never runs. For IPv4 nothing enables "
        "conntrack (the inet chain has no ct/nat expression), so no nat chain runs at all.",
        fixed_in="after 83096c3",
    ),
    KnownCase(
        "iptables-nat-table-does-not-start-conntrack",
        """table ip t0 {
  chain b0 {
    type nat hook prerouting priority 300; policy accept;
    reject
  }
}
""",
        _k(),
        {"dhcp": "drop", "dns": "drop", "outbound": "drop"},
        "An iptables-legacy nat table (left empty by earlier tests) registers the nat hooks "
        "but starts no connection tracking; only its rules' targets (MASQUERADE, SNAT, DNAT, "
        "CT) and conntrack/state matches do (their checkentry calls nf_ct_netns_get). With no "
        "conntrack the nft nat chain never runs.",
        iptables=(
            ("*nat\n:PREROUTING ACCEPT [0:0]\n:POSTROUTING ACCEPT [0:0]\nCOMMIT\n", False, True),
        ),
        fixed_in="after 83096c3",
    ),
    KnownCase(
        "ct-mark-set-starts-conntrack",
        """table inet t0 {
  chain b0 {
    type nat hook prerouting priority 10; policy accept;
    reject
  }
  chain b1 {
    type filter hook postrouting priority 0; policy accept;
    tcp dport 80 ct mark set 0x00000003
  }
}
""",
        _k(
            dhcp="False",
            dns="False",
            outbound="False",
            reply="None",
            dhcp6="False",
            dns6="False",
            outbound6="False",
            reply6="None",
        ),
        {"outbound6": "accept"},
        "`ct mark set` needs a connection: nft_ct's set expression starts conntrack for the "
        "table's families (inet: both), so the nat chain's reject runs.",
        false_ok=("outbound6",),
        fixed_in="after 83096c3",
    ),
    KnownCase(
        "xt-addrtype-unicast-includes-local-on-ipv6",
        "",
        _k(dhcp6="False"),
        {"dns6": "drop"},
        "ip6tables' addrtype UNICAST tests the address's kind (ipv6_addr_type), so the host's "
        "own unicast address is UNICAST as well as LOCAL; for IPv4 inet_addr_type says LOCAL "
        "only, and nft's fib says local on both.",
        iptables=(
            (
                "*filter\n:INPUT ACCEPT [0:0]\n:FORWARD ACCEPT [0:0]\n:OUTPUT ACCEPT [0:0]\n"
                "-A INPUT -i hs+ -m addrtype --dst-type UNICAST -j ACCEPT\n"
                "-A INPUT -m conntrack ! --ctstate ESTABLISHED,UNTRACKED -j DROP\nCOMMIT\n",
                True,
                False,
            ),
        ),
        fixed_in="after 83096c3",
    ),
]
