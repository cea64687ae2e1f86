"""The firewall as typed, immutable data: one model for nftables and both iptables variants.

A rule is a sequence of *expressions* evaluated in order, as the kernel does: a
`Match` that fails ends the rule, a `Statement` has an effect (mark, NAT, counter),
a `Verdict` ends it. Values on the right of a match are already typed for their key
(addresses as `ipaddress` objects, protocols and ports as ints, interface names as
str patterns), so evaluation never parses text.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import cached_property
from typing import TYPE_CHECKING, Literal, TypeAlias, TypeVar

if TYPE_CHECKING:
    from hotspotguard.ruleset.compact import CompactElements

IPAddress: TypeAlias = ipaddress.IPv4Address | ipaddress.IPv6Address
IPNetwork: TypeAlias = ipaddress.IPv4Network | ipaddress.IPv6Network

Family = Literal["ip", "ip6", "inet", "netdev", "bridge", "arp"]
Source = Literal["nft", "iptables-nft", "iptables-legacy"]
Hook = Literal["ingress", "prerouting", "input", "forward", "output", "postrouting", "egress"]

HOOKS: tuple[str, ...] = (
    "ingress",
    "prerouting",
    "input",
    "forward",
    "output",
    "postrouting",
    "egress",
)


# --- left-hand sides: what a match reads from the packet -------------------------------------


@dataclass(frozen=True, slots=True)
class Meta:
    """`meta KEY` (iifname, oifname, iif, oif, l4proto, nfproto, mark, pkttype, ...)."""

    key: str


@dataclass(frozen=True, slots=True)
class Payload:
    """A header field: `ip saddr`, `ip6 daddr`, `tcp dport`, `th sport`, `icmp type`, ..."""

    protocol: str
    field: str


@dataclass(frozen=True, slots=True)
class Ct:
    """`ct KEY` (state, direction, status, mark, ...)."""

    key: str
    direction: str | None = None


@dataclass(frozen=True, slots=True)
class Fib:
    """`fib FLAGS RESULT`, e.g. `fib daddr type` is Fib("type", ("daddr",))."""

    result: str
    flags: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class Masked:
    """`KEY & MASK` (as in `meta mark & 0xff`)."""

    key: Key
    mask: int


@dataclass(frozen=True, slots=True)
class Concat:
    """`KEY . KEY ...`, the key of a concatenated set lookup."""

    keys: tuple[Key, ...]


@dataclass(frozen=True, slots=True)
class ExtHeader:
    """An IPv6 extension header (`exthdr hbh exists`, `frag more-fragments`, `rt type`): `field`
    None tests its presence. A hotspot client's plain packets carry none."""

    name: str
    field: str | None = None


@dataclass(frozen=True, slots=True)
class TcpOption:
    """`tcp option NAME [FIELD]` (`exists` when `field` is None)."""

    name: str
    field: str | None = None


@dataclass(frozen=True, slots=True)
class Computed:
    """A value computed from what no snapshot holds: numgen, jhash, symhash, socket, osf,
    ipsec, rt. Typed and readable; never decidable."""

    kind: str
    detail: str = ""


@dataclass(frozen=True, slots=True)
class Opaque:
    """An expression the engine cannot read (raw payload, numgen, an unknown kind, ...)."""

    description: str


Key: TypeAlias = (
    Meta | Payload | Ct | Fib | Masked | Concat | ExtHeader | TcpOption | Computed | Opaque
)


# --- right-hand sides -------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Range:
    """An inclusive interval of ints or addresses."""

    low: int | IPAddress
    high: int | IPAddress


@dataclass(frozen=True, slots=True)
class Flags:
    """A flag list, matched as "any of": `ct state established,related`."""

    names: frozenset[str]


@dataclass(frozen=True, slots=True)
class AnonSet:
    """An anonymous set `{ a, b, 10.0.0.0/8, 1-5 }` (elements may be concatenations)."""

    elements: SetElements


@dataclass(frozen=True, slots=True)
class SetRef:
    """`@name`: a named set of the rule's table."""

    name: str


Scalar: TypeAlias = int | str | IPAddress
Element: TypeAlias = "Scalar | IPNetwork | Range | tuple[Element, ...]"
Value: TypeAlias = "Scalar | IPNetwork | Range | Flags | AnonSet | SetRef | Opaque"


@dataclass(frozen=True, slots=True)
class SetElements:
    """Elements split for fast lookup: exact scalars in a frozenset, the rest scanned in order;
    a big set's addresses, numbers, prefixes, ranges and concatenations of them are kept in
    `compact` instead (sorted integer arrays, see ruleset.compact)."""

    exact: frozenset[object] = frozenset()
    other: tuple[object, ...] = ()
    compact: CompactElements | None = None

    def __len__(self) -> int:
        return len(self.exact) + len(self.other) + (len(self.compact) if self.compact else 0)


# --- rule parts -------------------------------------------------------------------------------

Op = Literal["==", "!=", "<", ">", "<=", ">=", "in"]


@dataclass(frozen=True, slots=True)
class Match:
    left: Key
    op: Op
    right: Value


def interned(value: Interned) -> Interned:
    """One object for equal matches and keys (`-o docker0`, `tcp dport 443`, `ip daddr` repeat
    in thousands of rules): a ruleset of 100,000 rules keeps each once. The table of them lives
    while a ruleset is parsed (`parse_ruleset` forgets it), so nothing outlives its rules."""
    try:
        found = _INTERNED.setdefault(value, value)
    except TypeError:  # a value that cannot be hashed: kept as it is
        return value
    if len(_INTERNED) > _INTERNED_MAX:
        _INTERNED.clear()
    return found  # type: ignore[return-value]


def forget_interned() -> None:
    _INTERNED.clear()


Interned = TypeVar("Interned", Match, Key)
_INTERNED: dict[object, object] = {}
_INTERNED_MAX = 1 << 18


VerdictKind = Literal["accept", "drop", "reject", "queue", "continue", "return", "jump", "goto"]


@dataclass(frozen=True, slots=True)
class Verdict:
    kind: VerdictKind
    target: str | None = None


@dataclass(frozen=True, slots=True)
class VerdictMap:
    """`KEY vmap { elem : verdict, ... }` or `KEY vmap @name`."""

    key: Key
    entries: tuple[tuple[object, Verdict], ...] | None
    name: str | None = None


NatKind = Literal["masquerade", "snat", "dnat", "redirect"]


@dataclass(frozen=True, slots=True)
class Nat:
    """A NAT statement; like the kernel's, it ends the rule with accept in a nat chain.
    `family` ("ip"/"ip6") restricts an inet table's `snat ip to ...` to that family: for
    packets of the other family it does nothing and the rule goes on."""

    kind: NatKind
    family: str | None = None
    address: IPAddress | None = None  # snat's fixed address, when it is one


@dataclass(frozen=True, slots=True)
class SetMark:
    """`meta mark set VALUE` (MARK --set-mark); `mask` keeps bits as --set-xmark does.
    With `connection`, the connection's mark (`ct mark set`, CONNMARK), which its replies
    carry too."""

    value: int
    mask: int = 0
    connection: bool = False


@dataclass(frozen=True, slots=True)
class CopyMark:
    """A mark copied between the packet and its connection: to the connection with `ct mark
    set meta mark` / CONNMARK --save-mark, back with `meta mark set ct mark` / --restore-mark.
    The target becomes `(target & keep) ^ (source & take)` (xt_connmark's nfmask/ctmask).
    `breaks_untracked`: without a connection the rule ends (nft's `ct mark` reads nothing)."""

    to_connection: bool
    keep: int = 0
    take: int = 0xFFFFFFFF
    breaks_untracked: bool = False


@dataclass(frozen=True, slots=True)
class SetMeta:
    """A statement that sets what later rules or the kernel read: `meta pkttype set host`
    (key "pkttype"), `ct zone set 1` (key "ct zone", effective before conntrack only)."""

    key: str
    value: int | str


@dataclass(frozen=True, slots=True)
class Notrack:
    """`notrack` / `-j CT --notrack`: the packet stays untracked (and unNATed)."""


@dataclass(frozen=True, slots=True)
class Effect:
    """A statement with no effect on the verdict (counter, log, TCPMSS, ...)."""

    kind: str


@dataclass(frozen=True, slots=True)
class Uncertain:
    """A statement that may or may not let the rule go on (limit, quota, an unknown match)."""

    description: str


@dataclass(frozen=True, slots=True)
class Stateful(Uncertain):
    """A match or statement whose outcome depends on state no snapshot holds (a rate limit, a
    quota, connection counts, a random number): typed and readable, and always uncertain.
    `kind` names it (limit, quota, hashlimit, connlimit, connbytes, recent, statistic, ...)."""

    kind: str = ""


Expr: TypeAlias = (
    Match | Verdict | VerdictMap | Nat | SetMark | CopyMark | SetMeta | Notrack | Effect | Uncertain
)


@dataclass(frozen=True, slots=True)
class Rule:
    exprs: tuple[Expr, ...]
    text: str
    handle: int | None = None
    comment: str | None = None


ChainType = Literal["filter", "nat", "route"]


@dataclass(frozen=True, slots=True)
class Chain:
    name: str
    rules: tuple[Rule, ...] = ()
    hook: str | None = None
    type: ChainType = "filter"
    priority: int = 0
    policy: Literal["accept", "drop"] = "accept"
    devices: tuple[str, ...] = ()

    @property
    def is_base(self) -> bool:
        return self.hook is not None


@dataclass(frozen=True, slots=True)
class NamedSet:
    """A named set or map. `entries` maps element -> data for maps (verdicts for vmaps)."""

    name: str
    elements: SetElements
    is_map: bool = False
    entries: tuple[tuple[object, object], ...] = ()


@dataclass(frozen=True)
class Table:
    family: Family
    name: str
    chains: tuple[Chain, ...] = ()
    sets: Mapping[str, NamedSet] = field(default_factory=dict)
    source: Source = "nft"

    @cached_property
    def chain_index(self) -> Mapping[str, Chain]:
        return {chain.name: chain for chain in self.chains}

    def chain(self, name: str) -> Chain | None:
        return self.chain_index.get(name)

    @property
    def base_chains(self) -> tuple[Chain, ...]:
        return tuple(chain for chain in self.chains if chain.is_base)


@dataclass(frozen=True)
class Ruleset:
    tables: tuple[Table, ...] = ()
    warnings: tuple[str, ...] = ()
    # Derived lookup structures (the engine's hook and rule indexes), built once per ruleset.
    derived: dict[str, object] = field(default_factory=dict, compare=False, repr=False)

    def table(self, family: str, name: str, source: str | None = None) -> Table | None:
        for table in self.tables:
            same = table.family == family and table.name == name
            if same and (source is None or table.source == source):
                return table
        return None


@dataclass(frozen=True, slots=True)
class RuleRef:
    """Where a rule lives, for traces and reports. `index` is -1 for a chain's policy."""

    family: str
    table: str
    chain: str
    index: int
    text: str
    source: Source = "nft"
    handle: int | None = None


# Type tuples for isinstance() in hot paths (a `X | Y` union is rebuilt on every call).
ADDRESS_TYPES = (ipaddress.IPv4Address, ipaddress.IPv6Address)
NETWORK_TYPES = (ipaddress.IPv4Network, ipaddress.IPv6Network)
PACKET_CHANGES = (SetMark, CopyMark, SetMeta, Notrack)
