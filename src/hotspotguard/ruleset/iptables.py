"""Parse `iptables-save` text (nft and legacy variants) into the typed model.

Each `-A` line becomes a `Rule` whose expressions mean what the kernel's xtables
matches do; a match or target this module does not know makes the rule uncertain.
"""

from __future__ import annotations

import ipaddress
import shlex
from dataclasses import dataclass, field

from hotspotguard.ruleset.model import (
    AnonSet,
    Chain,
    ChainType,
    CopyMark,
    Ct,
    Effect,
    Expr,
    Family,
    Fib,
    Flags,
    IPAddress,
    Masked,
    Match,
    Meta,
    Nat,
    Notrack,
    Op,
    Payload,
    Range,
    Rule,
    SetMark,
    SetMeta,
    Source,
    Stateful,
    Table,
    TcpOption,
    Uncertain,
    Value,
    Verdict,
    interned,
)
from hotspotguard.ruleset.values import (
    PROTOCOLS,
    TCP_FLAGS,
    bits_value,
    build_elements,
    parse_address,
    to_int,
)

# Built-in chains: table -> chain -> (hook, priority); nat chains are of type nat.
BUILTIN_CHAINS: dict[str, dict[str, tuple[str, int]]] = {
    "raw": {"PREROUTING": ("prerouting", -300), "OUTPUT": ("output", -300)},
    "mangle": {
        "PREROUTING": ("prerouting", -150),
        "INPUT": ("input", -150),
        "FORWARD": ("forward", -150),
        "OUTPUT": ("output", -150),
        "POSTROUTING": ("postrouting", -150),
    },
    "nat": {
        "PREROUTING": ("prerouting", -100),
        "INPUT": ("input", 100),
        "OUTPUT": ("output", -100),
        "POSTROUTING": ("postrouting", 100),
    },
    "filter": {"INPUT": ("input", 0), "FORWARD": ("forward", 0), "OUTPUT": ("output", 0)},
    "security": {"INPUT": ("input", 50), "FORWARD": ("forward", 50), "OUTPUT": ("output", 50)},
}

TERMINAL_TARGETS = {"ACCEPT": "accept", "DROP": "drop", "REJECT": "reject", "RETURN": "return"}
NAT_TARGETS = {"MASQUERADE": "masquerade", "SNAT": "snat", "DNAT": "dnat", "REDIRECT": "redirect"}
EFFECT_TARGETS = frozenset(
    {
        "LOG",
        "NFLOG",
        "ULOG",
        "TCPMSS",
        "CHECKSUM",
        "TRACE",
        "TOS",
        "TTL",
        "HL",
        "DSCP",
        "ECN",
        "CLASSIFY",
        "SET",
        "AUDIT",
        "TEE",
        "CONNSECMARK",
        "SECMARK",
        "IDLETIMER",
        "LED",
    }
)
ADDRTYPES = {
    "LOCAL": "local",
    "UNICAST": "unicast",
    "BROADCAST": "broadcast",
    "MULTICAST": "multicast",
    "ANYCAST": "anycast",
    "BLACKHOLE": "blackhole",
    "UNREACHABLE": "unreachable",
    "PROHIBIT": "prohibit",
    "UNSPEC": "unspec",
}
EXTENSION_HEADER_MATCHES = frozenset({"rt", "frag", "hbh", "dst"})
CT_STATES = {"NEW", "ESTABLISHED", "RELATED", "INVALID", "UNTRACKED"}
CT_TUPLE_OPTIONS: dict[str, tuple[str, str]] = {
    "--ctorigsrc": ("saddr", "original"),
    "--ctorigdst": ("daddr", "original"),
    "--ctreplsrc": ("saddr", "reply"),
    "--ctrepldst": ("daddr", "reply"),
    "--ctorigsrcport": ("proto-src", "original"),
    "--ctorigdstport": ("proto-dst", "original"),
    "--ctreplsrcport": ("proto-src", "reply"),
    "--ctrepldstport": ("proto-dst", "reply"),
}
TTL_OPS: dict[str, Op] = {
    "--ttl-eq": "==",
    "--ttl-lt": "<",
    "--ttl-gt": ">",
    "--hl-eq": "==",
    "--hl-lt": "<",
    "--hl-gt": ">",
}
# Matches whose outcome depends on state or content no snapshot holds (rates, quotas, counts,
# random numbers, payload strings, time, the CPU, sockets, IPsec policy): typed as Stateful.
STATEFUL_MODULES = frozenset(
    {
        "limit",
        "hashlimit",
        "connlimit",
        "connbytes",
        "recent",
        "quota",
        "statistic",
        "string",
        "time",
        "cpu",
        "u32",
        "nfacct",
        "policy",
        "helper",
        "socket",
        "devgroup",
        "owner",
        "set",
        "rateest",
        "cgroup",
        "cluster",
        "bpf",
        "realm",
        "ipvs",
        "ecn",
        "tos",
        "tcpmss",
    }
)


class SaveSyntaxError(ValueError):
    pass


@dataclass
class _Chain:
    name: str
    policy: str | None
    rules: list[Rule] = field(default_factory=list)


@dataclass
class _Table:
    name: str
    chains: dict[str, _Chain] = field(default_factory=dict)


RPFILTER_OPTIONS = frozenset({"--loose", "--validmark", "--accept-local", "--invert"})


def _negatable(tokens: list[str], index: int) -> tuple[bool, int]:
    if index < len(tokens) and tokens[index] == "!":
        return True, index + 1
    return False, index


def _iface(name: str) -> str:
    return name[:-1] + "*" if name.endswith("+") else name


def _address(text: str, version: int) -> Value:
    host, _, length = text.partition("/")
    if length in {"32", "128", ""}:
        address = parse_address(host)
        if address is not None and address.max_prefixlen == int(length or address.max_prefixlen):
            return address if address.version == version else Uncertain_value(text)
    try:
        net = ipaddress.ip_network(text, strict=False)
    except ValueError:
        return Uncertain_value(text)
    if net.version != version:
        return Uncertain_value(text)
    if net.num_addresses == 1:
        return net.network_address
    return net


def _masked_address(text: str, version: int) -> tuple[int, IPAddress] | None:
    """`ADDRESS/MASK` with a mask that is not a prefix: (mask, ADDRESS & MASK), else None."""
    host, _, mask_text = text.partition("/")
    address, mask = parse_address(host), parse_address(mask_text)
    if address is None or mask is None or not address.version == mask.version == version:
        return None
    bits = int(mask)
    inverted = ~bits & ((1 << address.max_prefixlen) - 1)
    if inverted & (inverted + 1) == 0:  # a prefix mask: `_address` reads it as a network
        return None
    return bits, type(address)(int(address) & bits)


def Uncertain_value(text: str) -> Value:
    from hotspotguard.ruleset.model import Opaque

    return Opaque(f"value {text}")


def _port_value(text: str) -> object:
    if ":" in text:
        low, _, high = text.partition(":")
        lo = to_int(low) if low else 0
        hi = to_int(high) if high else 65535
        if lo is None or hi is None:
            return Uncertain_value(text)
        return Range(lo, hi)
    port = to_int(text)
    return Uncertain_value(text) if port is None else port


def _tcp_flags(text: str) -> int | None:
    total = 0
    for name in text.split(","):
        name = name.strip().lower()
        if name == "all":
            total |= 0x3F
        elif name == "none":
            continue
        elif name in TCP_FLAGS:
            total |= TCP_FLAGS[name]
        else:
            return None
    return total


def _op(negated: bool) -> Op:
    return "!=" if negated else "=="


class _RuleParser:
    """Turns the tokens of one `-A` line into expressions, in the order iptables applies them."""

    def __init__(self, tokens: list[str], version: int, chains: frozenset[str]) -> None:
        self.tokens = tokens
        self.chains = chains
        self.version = version
        self.exprs: list[Expr] = []
        self.comment: str | None = None
        self.protocol: str | None = None
        self.verdict: list[Expr] = []

    def add(self, left: object, negated: bool, right: object) -> None:
        match = Match(interned(left), _op(negated), right)  # type: ignore[type-var, arg-type]
        self.exprs.append(interned(match))

    def parse(self) -> tuple[tuple[Expr, ...], str | None]:
        tokens = self.tokens
        i = 0
        while i < len(tokens):
            negated, i = _negatable(tokens, i)
            if i >= len(tokens):
                break
            opt = tokens[i]
            arg = tokens[i + 1] if i + 1 < len(tokens) else ""
            if opt in {"-i", "--in-interface"}:
                self.add(Meta("iifname"), negated, _iface(arg))
                i += 2
            elif opt in {"-o", "--out-interface"}:
                self.add(Meta("oifname"), negated, _iface(arg))
                i += 2
            elif opt in {"-s", "--source", "-d", "--destination"}:
                fieldname = "saddr" if opt in {"-s", "--source"} else "daddr"
                proto = "ip" if self.version == 4 else "ip6"
                masked = _masked_address(arg, self.version)
                if masked is not None:  # `-s 10.0.12.0/255.0.255.0`: a non-contiguous mask
                    mask, address = masked
                    self.add(Masked(Payload(proto, fieldname), mask), negated, address)
                else:
                    self.add(Payload(proto, fieldname), negated, _address(arg, self.version))
                i += 2
            elif opt in {"-p", "--protocol"}:
                name = arg.lower()
                number = PROTOCOLS.get(name, to_int(name))
                if name == "all":
                    i += 2
                    continue
                self.protocol = name if name in PROTOCOLS else None
                self.add(Meta("l4proto"), negated, number if number is not None else name)
                i += 2
            elif opt in {"-f", "--fragment"}:
                # our flows are never fragments
                self.exprs.append(Match(Meta("fragment"), _op(negated), 1))
                i += 1
            elif opt in {"-m", "--match"}:
                i = self.module(arg, i + 2)
            elif opt in {"-j", "--jump"}:
                i = self.target(arg, i + 2)
            elif opt in {"-g", "--goto"}:
                self.verdict.append(Verdict("goto", arg))
                i += 2
            elif opt in {"-c", "--set-counters"}:
                i += 3
            elif opt.startswith("["):  # "[packets:bytes]" prefix of iptables-save -c
                i += 1
            elif opt.startswith("--"):
                # an option of the protocol's implicit module (`-p tcp --dport 80`)
                i = self.module_option(self.protocol or "", i, negated)
            else:
                self.exprs.append(Uncertain(f"unknown option {opt}"))
                i += 1
        return tuple(self.exprs + self.verdict), self.comment

    def module(self, name: str, i: int) -> int:
        tokens = self.tokens
        if name in EXTENSION_HEADER_MATCHES:
            # no such IPv6 extension header in the packet: the match is false, whatever its
            # options or their negation (ip6t_rt.c and friends)
            self.exprs.append(Match(Meta("exthdr"), "==", 1))
            while i < len(tokens) and tokens[i] not in {"-m", "--match", "-j", "-g"}:
                i += 1
            return i
        if name == "rpfilter":  # flags only: --loose --validmark --accept-local --invert
            options: set[str] = set()
            while i < len(tokens) and tokens[i] in RPFILTER_OPTIONS:
                options.add(tokens[i].removeprefix("--"))
                i += 1
            invert = "invert" in options
            key = Fib("rpfilter", tuple(sorted(options - {"invert"})))
            self.exprs.append(Match(key, "!=" if invert else "==", True))
            return i
        while i < len(tokens):
            negated, j = _negatable(tokens, i)
            if j >= len(tokens) or not tokens[j].startswith("--"):
                break
            i = self.module_option(name, j, negated)
        return i

    def module_option(self, module: str, i: int, negated: bool) -> int:
        """Parse one `--option [value...]` of `module`; returns the next index."""
        tokens = self.tokens
        opt = tokens[i]
        arg = tokens[i + 1] if i + 1 < len(tokens) else ""
        proto = self.protocol or "th"
        if module == "comment" and opt == "--comment":
            self.comment = arg
            return i + 2
        if module in {"tcp", "udp", "sctp", "dccp", "udplite"} or (
            module in PROTOCOLS and opt in {"--dport", "--sport"}
        ):
            if opt in {"--dport", "--destination-port", "--sport", "--source-port"}:
                fieldname = "dport" if opt.startswith("--d") else "sport"
                self.add(Payload(module, fieldname), negated, _port_value(arg))
                return i + 2
            if opt == "--tcp-flags":
                mask = _tcp_flags(arg)
                comp = _tcp_flags(tokens[i + 2] if i + 2 < len(tokens) else "")
                if mask is None or comp is None:
                    self.exprs.append(Uncertain("tcp flags"))
                else:
                    self.add(Masked(Payload("tcp", "flags"), mask), negated, comp)
                return i + 3
            if opt == "--syn":
                self.add(Masked(Payload("tcp", "flags"), 0x17), negated, TCP_FLAGS["syn"])
                return i + 1
            if opt == "--tcp-option":
                self.add(TcpOption(arg), negated, True)
                return i + 2
        multiport_options = {"--dports", "--destination-ports", "--sports", "--source-ports"}
        if module == "multiport" and opt in multiport_options:
            ports = [_port_value(p) for p in arg.split(",")]
            fieldname = "dport" if opt.startswith("--d") else "sport"
            self.add(Payload(proto, fieldname), negated, AnonSet(build_elements(ports)))
            return i + 2
        if module in {"icmp", "icmp6", "icmpv6"} and opt in {"--icmp-type", "--icmpv6-type"}:
            protocol = "icmp" if module == "icmp" else "icmpv6"
            self.add(Payload(protocol, "type"), negated, arg.split("/")[0].lower())
            return i + 2
        if module in {"conntrack", "state"}:
            if opt in {"--ctstate", "--state"}:
                states = {s.upper() for s in arg.split(",")}
                if states <= CT_STATES:
                    self.add(Ct("state"), negated, Flags(frozenset(s.lower() for s in states)))
                elif states <= {"SNAT", "DNAT"} and not negated:
                    # pseudo states: the NAT status bits (negated, an untracked or invalid
                    # packet would match, which a ct status read cannot say)
                    bits = bits_value("ct_status", [s.lower() for s in states]) or 0
                    self.exprs.append(Match(Ct("status"), "in", bits))
                else:  # states or NAT status bits: not one match
                    self.exprs.append(Uncertain(f"conntrack state {arg}"))
                return i + 2
            if opt == "--ctstatus":
                status = [s.lower().replace("_", "-") for s in arg.split(",")]  # SEEN_REPLY
                status_bits = bits_value("ct_status", status)
                if status_bits is None:
                    self.exprs.append(Uncertain(f"conntrack status {arg}"))
                else:  # any of the bits (negated: none of them, which reads as unknown)
                    self.exprs.append(Match(Ct("status"), "!=" if negated else "in", status_bits))
                return i + 2
            if opt in CT_TUPLE_OPTIONS:
                key, direction = CT_TUPLE_OPTIONS[opt]
                value = _address(arg, self.version) if "addr" in key else _port_value(arg)
                self.add(Ct(key, direction), negated, value)
                return i + 2
            if opt == "--ctdir":
                self.add(Ct("direction"), negated, arg.lower())
                return i + 2
            if opt in {"--ctproto"}:
                self.add(Meta("l4proto"), negated, PROTOCOLS.get(arg.lower(), to_int(arg)))
                return i + 2
            if opt == "--ctexpire":
                self.exprs.append(Stateful(f"-m conntrack --ctexpire {arg}", "ctexpire"))
            else:
                self.exprs.append(Uncertain(f"conntrack {opt}"))
            return i + 2
        if module == "addrtype":
            if opt in {"--src-type", "--dst-type"}:
                flag = "saddr" if opt == "--src-type" else "daddr"
                names = [ADDRTYPES.get(t.upper()) for t in arg.split(",")]
                if None in names:
                    self.exprs.append(Uncertain(f"addrtype {arg}"))
                else:
                    values = build_elements([n for n in names if n is not None])
                    self.add(Fib("addrtype", (flag,)), negated, AnonSet(values))
                return i + 2
            if opt in {"--limit-iface-in", "--limit-iface-out"}:
                return i + 1
        if module == "physdev":
            # A routed (not bridged) packet matches every physdev test except the ones
            # that ask, un-negated, for a bridged packet (xt_physdev.c).
            if opt in {"--physdev-is-bridged", "--physdev-is-in", "--physdev-is-out"}:
                self.add(Meta("bridged"), negated, 1)
                return i + 1
            if opt in {"--physdev-in", "--physdev-out"}:
                return i + 2
        if module == "mark" and opt == "--mark":
            mark_text, _, mask_text = arg.partition("/")
            number = to_int(mark_text)
            mask_number = to_int(mask_text) if mask_text else None
            if number is None:
                self.exprs.append(Uncertain(f"mark {arg}"))
            elif mask_number is None:
                self.add(Meta("mark"), negated, number)
            else:
                self.add(Masked(Meta("mark"), mask_number), negated, number)
            return i + 2
        if module == "hl" and opt in {"--hl-eq", "--hl-lt", "--hl-gt"}:
            # ip6t_hl: `! --hl-eq` is "!="; lt/gt take no negation
            number = to_int(arg)
            if number is None:
                self.exprs.append(Uncertain(f"hl {opt} {arg}"))
            elif opt == "--hl-eq":
                self.add(Payload("ip6", "hoplimit"), negated, number)
            else:
                self.exprs.append(
                    Match(Payload("ip6", "hoplimit"), "<" if opt == "--hl-lt" else ">", number)
                )
            return i + 2
        if module == "iprange" and opt in {"--src-range", "--dst-range"}:
            low, _, high = arg.partition("-")
            try:
                rng = Range(ipaddress.ip_address(low), ipaddress.ip_address(high))
                proto_name = "ip" if self.version == 4 else "ip6"
                fieldname = "saddr" if opt == "--src-range" else "daddr"
                self.add(Payload(proto_name, fieldname), negated, rng)
            except ValueError:
                self.exprs.append(Uncertain(f"iprange {arg}"))
            return i + 2
        if module == "connmark" and opt == "--mark":
            mark_text, _, mask_text = arg.partition("/")
            number, mask_number = to_int(mark_text), to_int(mask_text) if mask_text else None
            if number is not None:
                ct_mark = Ct("mark") if mask_number is None else Masked(Ct("mark"), mask_number)
                self.add(ct_mark, negated, number)
                return i + 2
        if module == "pkttype" and opt == "--pkt-type":
            self.add(Meta("pkttype"), negated, arg.lower())
            return i + 2
        if module == "length" and opt == "--length":
            self.add(Meta("length"), negated, _port_value(arg))
            return i + 2
        if module in {"ttl", "hl"} and opt in TTL_OPS:
            field = ("ip", "ttl") if module == "ttl" else ("ip6", "hoplimit")
            number = to_int(arg)
            if number is not None:
                self.exprs.append(Match(Payload(*field), TTL_OPS[opt], number))
                return i + 2
        if module == "dscp" and opt in {"--dscp", "--dscp-class"}:
            dscp: object = to_int(arg) if opt == "--dscp" else arg.lower()
            self.add(Payload("ip" if self.version == 4 else "ip6", "dscp"), negated, dscp)
            return i + 2
        if module in STATEFUL_MODULES:
            # typed and readable, always undecidable: one expression for the module's options
            end = i + 1
            while end < len(tokens) and not tokens[end].startswith("-") and tokens[end] != "!":
                end += 1
            text = " ".join(tokens[i:end])
            last = self.exprs[-1] if self.exprs else None
            if isinstance(last, Stateful) and last.kind == module:
                self.exprs[-1] = Stateful(f"{last.description} {text}", module)
            else:
                self.exprs.append(Stateful(f"-m {module} {text}", module))
            return end
        # Unknown module or option: it may or may not match. Skip its arguments.
        self.exprs.append(Uncertain(f"-m {module} {opt}" if module else opt))
        i += 1
        while i < len(tokens) and not tokens[i].startswith("-") and tokens[i] != "!":
            i += 1
        return i

    def target(self, name: str, i: int) -> int:
        tokens = self.tokens
        args: list[str] = []
        while i < len(tokens):
            args.append(tokens[i])
            i += 1
        if name in self.chains:
            self.verdict.append(Verdict("jump", name))
        elif name in TERMINAL_TARGETS:
            self.verdict.append(Verdict(TERMINAL_TARGETS[name]))  # type: ignore[arg-type]
        elif name in NAT_TARGETS:
            self.verdict.append(Nat(NAT_TARGETS[name]))  # type: ignore[arg-type]
        elif name in {"NETMAP"}:
            self.verdict.append(Nat("dnat"))
        elif name in {"NOTRACK"} or (name == "CT" and "--notrack" in args):
            self.verdict.append(Notrack())
        elif name == "CT":
            self.verdict.append(_ct_target(args))
        elif name == "CONNMARK" and ("--restore-mark" in args or "--save-mark" in args):
            self.verdict.append(_connmark_copy(args))
        elif name in {"MARK", "CONNMARK"}:
            mark = _mark_target(args)
            if isinstance(mark, SetMark) and name == "CONNMARK":
                mark = SetMark(mark.value, mark.mask, connection=True)
            elif name == "CONNMARK":
                mark = Uncertain("CONNMARK " + " ".join(args))
            self.verdict.append(mark)
        elif name in EFFECT_TARGETS:
            self.verdict.append(Effect(name))
        elif name in {"QUEUE", "NFQUEUE"}:
            self.verdict.append(Verdict("queue"))
        else:
            # An unknown extension target (e.g. SYNPROXY): its verdict is not known.
            self.verdict.append(Verdict("queue", name))
        return i


def _ct_target(args: list[str]) -> Expr:
    """`-j CT`: `--zone N` puts the connection in a conntrack zone; its other options (helper,
    events, timeout) change nothing the verdict reads."""
    if "--zone" in args:
        index = args.index("--zone")
        zone = to_int(args[index + 1]) if index + 1 < len(args) else None
        return SetMeta("ct zone", zone) if zone is not None else Uncertain("CT --zone")
    if any(a.startswith("--zone-") for a in args):
        return Uncertain("CT " + " ".join(args))
    return Effect("CT")


def _connmark_copy(args: list[str]) -> Expr:
    """CONNMARK --save-mark / --restore-mark [--nfmask N] [--ctmask C] [--mask M]: a copy
    (xt_connmark: save makes the connection's mark (ct & ~ctmask) ^ (mark & nfmask), restore
    the packet's (mark & ~nfmask) ^ (ct & ctmask); --mask sets both masks)."""
    masks = {"--nfmask": 0xFFFFFFFF, "--ctmask": 0xFFFFFFFF}
    for index, arg in enumerate(args[:-1]):
        if arg in {"--nfmask", "--ctmask", "--mask"}:
            number = to_int(args[index + 1])
            if number is None:
                return Uncertain("CONNMARK " + " ".join(args))
            for key in masks if arg == "--mask" else (arg,):
                masks[key] = number
    nfmask, ctmask = masks["--nfmask"], masks["--ctmask"]
    if "--save-mark" in args:
        return CopyMark(to_connection=True, keep=~ctmask & 0xFFFFFFFF, take=nfmask)
    return CopyMark(to_connection=False, keep=~nfmask & 0xFFFFFFFF, take=ctmask)


def _mark_target(args: list[str]) -> Expr:
    for index, arg in enumerate(args[:-1]):
        value, _, mask = args[index + 1].partition("/")
        number = to_int(value)
        mask_number = to_int(mask) if mask else None
        if number is None:
            break
        if arg == "--set-mark":
            return SetMark(number, 0 if mask_number is None else (~mask_number) & 0xFFFFFFFF)
        if arg == "--set-xmark":
            keep = 0 if mask_number is None else (~mask_number) & 0xFFFFFFFF
            return SetMark(number, keep) if number & keep == 0 else Uncertain("MARK --set-xmark")
        if arg in {"--or-mark", "--and-mark", "--xor-mark"}:
            return Uncertain(f"MARK {arg}")
    return Uncertain("MARK")


def parse_save_rule(
    line_args: list[str], version: int, chains: frozenset[str] = frozenset()
) -> tuple[tuple[Expr, ...], str | None]:
    """The expressions of one rule; `chains` are the user chains a `-j NAME` may jump to."""
    return _RuleParser(line_args, version, chains).parse()


def _tokens(line: str) -> list[str]:
    if '"' in line or "'" in line or "\\" in line:
        try:
            return shlex.split(line)
        except ValueError:
            pass
    return line.split()  # shlex is 20x slower, and needed only for quotes


def declared_chains(text: str) -> dict[str, frozenset[str]]:
    """The chains each table of a save text declares (`:NAME POLICY`), by table."""
    declared: dict[str, set[str]] = {}
    table_name = ""
    for raw_line in text.splitlines():
        if raw_line.startswith("*"):
            table_name = raw_line[1:].strip()
        elif raw_line.startswith(":"):
            declared.setdefault(table_name, set()).add(raw_line[1:].split(" ", 1)[0])
    return {name: frozenset(chains) for name, chains in declared.items()}


def parse_rule_line(line: str, version: int, chains: frozenset[str]) -> Rule:
    """One `-A CHAIN ...` line as a Rule (its text is the line)."""
    exprs, comment = parse_save_rule(_tokens(line)[2:], version, chains)
    return Rule(exprs, line, None, comment)


def chain_lines(text: str) -> dict[tuple[str, str], list[str]]:
    """The `-A` lines of every chain of a save text, keyed by (table, chain), unparsed."""
    lines: dict[tuple[str, str], list[str]] = {}
    table_name = ""
    for raw_line in text.splitlines():
        if raw_line.startswith("*"):
            table_name = raw_line[1:].strip()
        elif raw_line.startswith("-A "):
            chain = raw_line[3:].split(" ", 1)[0]
            lines.setdefault((table_name, chain), []).append(raw_line.strip())
    return lines


def parse_save(text: str, version: int, source: Source) -> tuple[list[Table], list[str]]:
    """Parse `ip(6)tables-save` output into tables of `source`, with warnings for a person."""
    family: Family = "ip" if version == 4 else "ip6"
    tables: list[_Table] = []
    warnings: list[str] = []
    current: _Table | None = None
    declared = declared_chains(text)
    for number, raw_line in enumerate(text.splitlines(), 1):
        line = raw_line.strip()
        if not line or line.startswith("#"):
            continue
        if line.startswith("*"):
            current = _Table(line[1:].strip())
            tables.append(current)
        elif line == "COMMIT":
            current = None
        elif current is None:
            warnings.append(f"{source} line {number}: outside a table")
        elif line.startswith(":"):
            parts = line[1:].split()
            if parts:
                policy = parts[1] if len(parts) > 1 and parts[1] != "-" else None
                current.chains.setdefault(parts[0], _Chain(parts[0], policy))
        elif line.startswith("-A ") or line.startswith("-I "):
            tokens = _tokens(line)
            if len(tokens) < 2:
                continue
            chain = current.chains.setdefault(tokens[1], _Chain(tokens[1], None))
            chains = declared.get(current.name, frozenset())
            exprs, comment = parse_save_rule(tokens[2:], version, chains)
            chain.rules.append(Rule(exprs, line, None, comment))
        else:
            warnings.append(f"{source} line {number}: not understood: {line[:60]}")
    return [_to_table(t, family, source) for t in tables], warnings


def _to_table(table: _Table, family: Family, source: Source) -> Table:
    builtins = BUILTIN_CHAINS.get(table.name, {})
    chains: list[Chain] = []
    for chain in table.chains.values():
        hook = builtins.get(chain.name)
        if hook is not None and chain.policy is not None:
            chain_type: ChainType = "nat" if table.name == "nat" else "filter"
            chains.append(
                Chain(
                    chain.name,
                    tuple(chain.rules),
                    hook=hook[0],
                    type=chain_type,
                    priority=hook[1],
                    policy="drop" if chain.policy == "DROP" else "accept",
                )
            )
        else:
            chains.append(Chain(chain.name, tuple(chain.rules)))
    return Table(family, table.name, tuple(chains), {}, source)
