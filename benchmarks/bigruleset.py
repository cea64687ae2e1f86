"""Generator of realistic big rulesets for the engine benchmark.

A ruleset of ``total`` rules mixes what a busy machine that also runs a NetworkManager hotspot
really has in its kernel:

- NetworkManager's hotspot table ``table ip nm-shared-hs0``, exactly as in the seed (6 rules);
- Docker (≤ 27 layout, iptables-nft): ``FORWARD DROP``, ``DOCKER-USER``,
  ``DOCKER-ISOLATION-STAGE-1/2``, per bridge network the conntrack/jump/accept rules, per
  published port one filter ``DOCKER`` accept, one nat ``DOCKER`` DNAT and one hairpin
  ``MASQUERADE``;
- ufw (iptables-nft and ip6tables-nft): its before/after/logging/track chains and many
  ``ufw-user-*`` rules (``-m multiport``, ``-m comment``, conntrack, ``recent`` limits);
- a large hand-written ``table inet custom``: base chains on the input and forward hooks, zone
  chains with address/port/interface/ct-state rules, named sets and verdict maps.

About half of the rules are iptables-nft rules (loaded with ``iptables-nft-restore --noflush``),
the rest native nft rules (loaded with one ``nft -f``). Only documentation/benchmark address
ranges are used (192.0.2.0/24, 198.51.100.0/24, 203.0.113.0/24, 198.18.0.0/15, 2001:db8::/32),
plus Docker's own 172.17-31.0.0/16 bridge pools and NetworkManager's 10.42.0.0/24.

Usable alone: ``python benchmarks/bigruleset.py 10000 -o DIR`` writes the three load files.
"""

from __future__ import annotations

import argparse
import hashlib
import random
from dataclasses import dataclass, field
from pathlib import Path

HOTSPOT_IFACE = "hs0"
UPLINK_IFACE = "up0"
HOTSPOT_SUBNET = "10.42.0.0/24"
UPLINK_ADDR = "198.51.100.2"

#: share of all rules written by iptables-nft (Docker + ufw); the rest is native nft
IPTABLES_SHARE = 0.5
#: share of the iptables-nft rules that are Docker's (the rest is ufw's)
DOCKER_SHARE = 0.7
#: share of ufw's rules that are IPv6 (ip6tables-nft)
UFW_V6_SHARE = 0.2
#: rules per regular chain of the custom nft table
CUSTOM_CHAIN_RULES = 250


def nm_shared_table(iface: str = HOTSPOT_IFACE) -> str:
    """NetworkManager's shared-connection table, rule for rule as in the seed."""
    return f"""table ip nm-shared-{iface} {{
    chain nat_postrouting {{
        type nat hook postrouting priority srcnat; policy accept;
        ip saddr 10.42.0.0/24 ip daddr != 10.42.0.0/24 masquerade
    }}
    chain filter_forward {{
        type filter hook forward priority filter; policy accept;
        ip daddr 10.42.0.0/24 oifname "{iface}" ct state {{ established, related }} accept
        ip saddr 10.42.0.0/24 iifname "{iface}" accept
        iifname "{iface}" oifname "{iface}" accept
        iifname "{iface}" reject
        oifname "{iface}" reject
    }}
}}
"""


NM_RULES = 6


@dataclass
class Counts:
    """How many rules each component got (each line is one kernel rule)."""

    nm: int = NM_RULES
    docker: int = 0
    docker_ports: int = 0
    docker_networks: int = 0
    ufw_v4: int = 0
    ufw_v6: int = 0
    custom: int = 0
    custom_chains: int = 0
    custom_set_elements: int = 0

    @property
    def iptables(self) -> int:
        return self.docker + self.ufw_v4 + self.ufw_v6

    @property
    def nft_native(self) -> int:
        return self.nm + self.custom

    @property
    def total(self) -> int:
        return self.iptables + self.nft_native

    def as_dict(self) -> dict[str, int]:
        return {
            "total": self.total,
            "nft_native": self.nft_native,
            "iptables_nft": self.iptables,
            "nm": self.nm,
            "docker": self.docker,
            "docker_published_ports": self.docker_ports,
            "docker_networks": self.docker_networks,
            "ufw_v4": self.ufw_v4,
            "ufw_v6": self.ufw_v6,
            "custom": self.custom,
            "custom_chains": self.custom_chains,
            "custom_set_elements": self.custom_set_elements,
        }


@dataclass
class GeneratedRuleset:
    """The load files of one generated ruleset."""

    size: int
    nft_text: str
    iptables_text: str
    ip6tables_text: str
    counts: Counts = field(default_factory=Counts)

    def write(self, directory: Path) -> tuple[Path, Path, Path]:
        directory.mkdir(parents=True, exist_ok=True)
        paths = (
            directory / "ruleset.nft",
            directory / "iptables.rules",
            directory / "ip6tables.rules",
        )
        texts = (self.nft_text, self.iptables_text, self.ip6tables_text)
        for path, text in zip(paths, texts, strict=True):
            path.write_text(text)
        return paths


# --------------------------------------------------------------------------------------------
# Docker (≤ 27, iptables-nft)
# --------------------------------------------------------------------------------------------

_CONTAINER_PORTS = (80, 443, 8080, 3000, 5432, 6379, 9000, 27017, 8443, 5000, 9090, 11211)


def _bridge_name(k: int) -> str:
    if k == 0:
        return "docker0"
    return "br-" + hashlib.sha256(f"net{k}".encode()).hexdigest()[:12]


def _bridge_subnet(k: int) -> tuple[str, int, int]:
    """(subnet, first octet pair as ints) of Docker's default address pools."""
    if k < 15:
        return f"172.{17 + k}.0.0/16", 172, 17 + k
    third = 16 * (k - 15)
    return f"192.168.{third}.0/20", 192, 168


def _container_ip(k: int, index: int) -> str:
    _, a, b = _bridge_subnet(k)
    host = index + 2
    if k < 15:
        return f"{a}.{b}.{host >> 8}.{host & 255}"
    third = 16 * (k - 15) + (host >> 8)
    return f"{a}.{b}.{third}.{host & 255}"


def docker_rules(budget: int, rng: random.Random) -> tuple[list[str], list[str], Counts]:
    """Docker's filter and nat lines (iptables-save syntax) for about ``budget`` rules."""
    counts = Counts()
    networks = max(1, min(31, budget // 450))
    fixed = 2 + 3 + 2 + 8 * networks
    ports = max(1, (budget - fixed) // 3)
    counts.docker_networks = networks
    counts.docker_ports = ports

    filt: list[str] = []
    nat: list[str] = []
    f_forward = ["-A FORWARD -j DOCKER-USER", "-A FORWARD -j DOCKER-ISOLATION-STAGE-1"]
    f_docker: list[str] = []
    f_iso1: list[str] = []
    f_iso2: list[str] = []
    n_post: list[str] = []
    n_docker: list[str] = []
    n_hairpin: list[str] = []
    for k in range(networks):
        br = _bridge_name(k)
        subnet, _, _ = _bridge_subnet(k)
        f_forward += [
            f"-A FORWARD -o {br} -m conntrack --ctstate RELATED,ESTABLISHED -j ACCEPT",
            f"-A FORWARD -o {br} -j DOCKER",
            f"-A FORWARD -i {br} ! -o {br} -j ACCEPT",
            f"-A FORWARD -i {br} -o {br} -j ACCEPT",
        ]
        f_iso1.append(f"-A DOCKER-ISOLATION-STAGE-1 -i {br} ! -o {br} -j DOCKER-ISOLATION-STAGE-2")
        f_iso2.append(f"-A DOCKER-ISOLATION-STAGE-2 -o {br} -j DROP")
        n_post.append(f"-A POSTROUTING -s {subnet} ! -o {br} -j MASQUERADE")
        n_docker.append(f"-A DOCKER -i {br} -j RETURN")

    host_port = {"tcp": 10000, "udp": 10000}
    container = 0
    port_no = 0
    while port_no < ports:
        k = container % networks
        ip = _container_ip(k, container // networks)
        br = _bridge_name(k)
        published = rng.sample(_CONTAINER_PORTS, rng.randint(1, 6))
        for cport in published:
            if port_no >= ports:
                break
            proto = "udp" if rng.random() < 0.1 else "tcp"
            hport = host_port[proto]
            host_port[proto] += 1
            bind = f"-d {UPLINK_ADDR}/32 " if rng.random() < 0.1 else ""
            f_docker.append(
                f"-A DOCKER -d {ip}/32 ! -i {br} -o {br} -p {proto} -m {proto} --dport {cport}"
                " -j ACCEPT"
            )
            n_docker.append(
                f"-A DOCKER {bind}! -i {br} -p {proto} -m {proto} --dport {hport}"
                f" -j DNAT --to-destination {ip}:{cport}"
            )
            n_hairpin.append(
                f"-A POSTROUTING -s {ip}/32 -d {ip}/32 -p {proto} -m {proto} --dport {cport}"
                " -j MASQUERADE"
            )
            port_no += 1
        container += 1

    filt += f_forward + f_docker + f_iso1
    filt.append("-A DOCKER-ISOLATION-STAGE-1 -j RETURN")
    filt += f_iso2
    filt.append("-A DOCKER-ISOLATION-STAGE-2 -j RETURN")
    filt.append("-A DOCKER-USER -j RETURN")
    nat += [
        "-A PREROUTING -m addrtype --dst-type LOCAL -j DOCKER",
        "-A OUTPUT ! -d 127.0.0.0/8 -m addrtype --dst-type LOCAL -j DOCKER",
    ]
    nat += n_post + n_hairpin + n_docker
    counts.docker = len(filt) + len(nat)
    return filt, nat, counts


DOCKER_FILTER_CHAINS = (
    "DOCKER",
    "DOCKER-ISOLATION-STAGE-1",
    "DOCKER-ISOLATION-STAGE-2",
    "DOCKER-USER",
)


# --------------------------------------------------------------------------------------------
# ufw (iptables-nft / ip6tables-nft)
# --------------------------------------------------------------------------------------------

_UFW_CHAINS = (
    [
        f"ufw{{v}}-{stage}-{hook}"
        for stage in ("before-logging", "before", "after", "after-logging", "reject", "track")
        for hook in ("input", "output", "forward")
    ]
    + [
        f"ufw{{v}}-user-{x}"
        for x in (
            "input",
            "output",
            "forward",
            "logging-input",
            "logging-output",
            "logging-forward",
            "limit",
            "limit-accept",
        )
    ]
    + [
        "ufw{v}-logging-deny",
        "ufw{v}-logging-allow",
        "ufw{v}-skip-to-policy-input",
        "ufw{v}-skip-to-policy-output",
        "ufw{v}-skip-to-policy-forward",
    ]
)

_LOG = '-m limit --limit 3/min --limit-burst 10 -j LOG --log-prefix "[UFW {what}] "'


def _ufw_fixed(v6: bool) -> list[str]:
    """ufw's before/after rules (from its before.rules/after.rules), one family."""
    v = "6" if v6 else ""
    c = f"ufw{v}"
    lines: list[str] = []
    for hook in ("input", "output", "forward"):
        hook_chain = hook.upper()
        for stage in ("before-logging", "before", "after", "after-logging", "reject", "track"):
            lines.append(f"-A {hook_chain} -j {c}-{stage}-{hook}")
    lines += [f"-A {c}-before-input -i lo -j ACCEPT", f"-A {c}-before-output -o lo -j ACCEPT"]
    for hook in ("input", "output", "forward"):
        lines.append(f"-A {c}-before-{hook} -m conntrack --ctstate RELATED,ESTABLISHED -j ACCEPT")
    lines += [
        f"-A {c}-before-input -m conntrack --ctstate INVALID -j {c}-logging-deny",
        f"-A {c}-before-input -m conntrack --ctstate INVALID -j DROP",
    ]
    if v6:
        for t in (1, 2, 3, 4, 128, 133, 134, 135, 136):
            lines.append(f"-A {c}-before-input -p ipv6-icmp -m icmp6 --icmpv6-type {t} -j ACCEPT")
        for t in (1, 2, 3, 4, 128):
            lines.append(f"-A {c}-before-forward -p ipv6-icmp -m icmp6 --icmpv6-type {t} -j ACCEPT")
        lines += [
            f"-A {c}-before-input -s fe80::/10 -d fe80::/10 -p udp -m udp --sport 547 --dport 546"
            " -j ACCEPT",
            f"-A {c}-before-input -d ff02::fb/128 -p udp -m udp --dport 5353 -j ACCEPT",
        ]
    else:
        for t in (3, 11, 12, 8):
            lines.append(f"-A {c}-before-input -p icmp -m icmp --icmp-type {t} -j ACCEPT")
            lines.append(f"-A {c}-before-forward -p icmp -m icmp --icmp-type {t} -j ACCEPT")
        lines += [
            f"-A {c}-before-input -p udp -m udp --sport 67 --dport 68 -j ACCEPT",
            f"-A {c}-before-input -j {c}-not-local",
            f"-A {c}-before-input -d 224.0.0.251/32 -p udp -m udp --dport 5353 -j ACCEPT",
            f"-A {c}-before-input -d 239.255.255.250/32 -p udp -m udp --dport 1900 -j ACCEPT",
            f"-A {c}-not-local -m addrtype --dst-type LOCAL -j RETURN",
            f"-A {c}-not-local -m addrtype --dst-type MULTICAST -j RETURN",
            f"-A {c}-not-local -m addrtype --dst-type BROADCAST -j RETURN",
            f"-A {c}-not-local -m limit --limit 3/min --limit-burst 10 -j {c}-logging-deny",
            f"-A {c}-not-local -j DROP",
        ]
    for hook in ("input", "output", "forward"):
        lines.append(f"-A {c}-before-{hook} -j {c}-user-{hook}")
    for port in (137, 138, 139, 445):
        proto = "tcp" if port in (139, 445) else "udp"
        lines.append(
            f"-A {c}-after-input -p {proto} -m {proto} --dport {port} -j {c}-skip-to-policy-input"
        )
    if not v6:
        lines += [
            f"-A {c}-after-input -p udp -m udp --dport 67 -j {c}-skip-to-policy-input",
            f"-A {c}-after-input -p udp -m udp --dport 68 -j {c}-skip-to-policy-input",
            f"-A {c}-after-input -m addrtype --dst-type BROADCAST -j {c}-skip-to-policy-input",
        ]
    lines += [
        f"-A {c}-after-logging-input {_LOG.format(what='BLOCK')}",
        f"-A {c}-after-logging-forward {_LOG.format(what='BLOCK')}",
        f"-A {c}-logging-deny -m conntrack --ctstate INVALID -m limit --limit 3/min"
        " --limit-burst 10 -j RETURN",
        f"-A {c}-logging-deny {_LOG.format(what='BLOCK')}",
        f"-A {c}-logging-allow {_LOG.format(what='ALLOW')}",
        f"-A {c}-skip-to-policy-input -j DROP",
        f"-A {c}-skip-to-policy-output -j ACCEPT",
        f"-A {c}-skip-to-policy-forward -j DROP",
        f"-A {c}-track-output -p tcp -m conntrack --ctstate NEW -j ACCEPT",
        f"-A {c}-track-output -p udp -m conntrack --ctstate NEW -j ACCEPT",
        f'-A {c}-user-limit -m limit --limit 3/min -j LOG --log-prefix "[UFW LIMIT BLOCK] "',
        f"-A {c}-user-limit -j REJECT"
        + (
            " --reject-with icmp6-port-unreachable"
            if v6
            else " --reject-with icmp-port-unreachable"
        ),
        f"-A {c}-user-limit-accept -j ACCEPT",
    ]
    return lines


def _ufw_user(budget: int, v6: bool, rng: random.Random) -> list[str]:
    """``budget`` ufw user rules (what ``ufw allow/deny/limit/route`` writes)."""
    c = "ufw6" if v6 else "ufw"
    lines: list[str] = []
    i = 0

    def addr(n: int) -> str:
        if v6:
            return f"2001:db8:{(n >> 16) & 0xFFFF:x}:{n & 0xFFFF:x}::/64"
        return f"198.18.{(n >> 8) & 255}.{n & 255}/32"

    while len(lines) < budget:
        kind = rng.random()
        port = 1024 + (i * 7) % 60000
        name = f"'app{i}'"
        if kind < 0.25:
            proto = rng.choice(("tcp", "udp"))
            lines.append(f"-A {c}-user-input -p {proto} -m {proto} --dport {port} -j ACCEPT")
        elif kind < 0.45:
            ports = ",".join(str(port + d) for d in range(rng.randint(2, 6)))
            lines.append(
                f"-A {c}-user-input -p tcp -m multiport --dports {ports}"
                f' -m comment --comment "dapp_{name}" -j ACCEPT'
            )
        elif kind < 0.65:
            lines.append(f"-A {c}-user-input -s {addr(i)} -j DROP")
        elif kind < 0.75:
            lines.append(
                f"-A {c}-user-input -s {addr(i)} -p tcp -m tcp --dport {port}"
                f' -m comment --comment "{name}" -j ACCEPT'
            )
        elif kind < 0.80 and len(lines) + 3 <= budget:
            lines += [
                f"-A {c}-user-input -p tcp -m tcp --dport {port} -m conntrack --ctstate NEW"
                " -m recent --set --name DEFAULT --mask "
                + ("ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff" if v6 else "255.255.255.255")
                + " --rsource",
                f"-A {c}-user-input -p tcp -m tcp --dport {port} -m conntrack --ctstate NEW"
                " -m recent --update --seconds 30 --hitcount 6 --name DEFAULT --mask "
                + ("ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff" if v6 else "255.255.255.255")
                + f" --rsource -j {c}-user-limit",
                f"-A {c}-user-input -p tcp -m tcp --dport {port} -j {c}-user-limit-accept",
            ]
        elif kind < 0.90:
            lines.append(
                f"-A {c}-user-forward -i lan{i % 8} -o wan{i % 4} -p tcp -m tcp --dport {port}"
                " -j ACCEPT"
            )
        else:
            lines.append(
                f"-A {c}-user-output -d {addr(i + 50000)} -p tcp -m tcp --dport {port}"
                " -j REJECT --reject-with tcp-reset"
            )
        i += 1
    return lines[:budget]


def _restore_text(tables: dict[str, tuple[dict[str, str], list[str]]]) -> str:
    """An iptables-restore file: {table: ({chain: policy or '-'}, lines)}."""
    out = ["# generated by benchmarks/bigruleset.py"]
    for table, (chains, lines) in tables.items():
        out.append(f"*{table}")
        out += [f":{chain} {policy} [0:0]" for chain, policy in chains.items()]
        out += lines
        out.append("COMMIT")
    return "\n".join(out) + "\n"


def iptables_texts(budget: int, rng: random.Random) -> tuple[str, str, Counts]:
    """The iptables-nft-restore and ip6tables-nft-restore files (Docker + ufw)."""
    d_filter, d_nat, counts = docker_rules(round(budget * DOCKER_SHARE), rng)
    ufw_budget = max(0, budget - counts.docker)
    fixed4 = _ufw_fixed(v6=False)
    fixed6 = _ufw_fixed(v6=True)
    v6_budget = max(len(fixed6), round(ufw_budget * UFW_V6_SHARE))
    v4_budget = max(len(fixed4), ufw_budget - v6_budget)
    user4 = _ufw_user(v4_budget - len(fixed4), v6=False, rng=rng)
    user6 = _ufw_user(v6_budget - len(fixed6), v6=True, rng=rng)
    # ufw starts at boot, Docker later inserts its rules at the top of FORWARD.
    filter4 = (
        [x for x in d_filter if x.startswith("-A FORWARD ")]
        + [x for x in fixed4 if x.startswith(("-A INPUT ", "-A OUTPUT ", "-A FORWARD "))]
        + [x for x in d_filter if not x.startswith("-A FORWARD ")]
        + [x for x in fixed4 if not x.startswith(("-A INPUT ", "-A OUTPUT ", "-A FORWARD "))]
        + user4
    )
    ufw4_chains = {ch.format(v=""): "-" for ch in [*_UFW_CHAINS, "ufw{v}-not-local"]}
    ufw6_chains = {ch.format(v="6"): "-" for ch in _UFW_CHAINS}
    base = {"INPUT": "DROP", "FORWARD": "DROP", "OUTPUT": "ACCEPT"}
    text4 = _restore_text(
        {
            "filter": (
                {**base, **dict.fromkeys(DOCKER_FILTER_CHAINS, "-"), **ufw4_chains},
                filter4,
            ),
            "nat": (
                {
                    "PREROUTING": "ACCEPT",
                    "INPUT": "ACCEPT",
                    "OUTPUT": "ACCEPT",
                    "POSTROUTING": "ACCEPT",
                    "DOCKER": "-",
                },
                d_nat,
            ),
        }
    )
    text6 = _restore_text({"filter": ({**base, **ufw6_chains}, fixed6 + user6)})
    counts.ufw_v4 = len(fixed4) + len(user4)
    counts.ufw_v6 = len(fixed6) + len(user6)
    return text4, text6, counts


# --------------------------------------------------------------------------------------------
# the custom nft table
# --------------------------------------------------------------------------------------------


def _v4(n: int, prefix: int = 32) -> str:
    """An address of 198.18.0.0/15 (benchmarking range) numbered n."""
    n %= 1 << 17
    a = 18 + (n >> 16)
    base = f"198.{a}.{(n >> 8) & 255}.{n & 255}"
    if prefix == 32:
        return base
    mask = (0xFFFFFFFF << (32 - prefix)) & 0xFFFFFFFF
    value = ((198 << 24) | (a << 16) | (n & 0xFFFF)) & mask
    return f"{value >> 24}.{(value >> 16) & 255}.{(value >> 8) & 255}.{value & 255}/{prefix}"


def _custom_rule(i: int, rng: random.Random, anonymous_sets: bool = True) -> str:
    k = rng.random()
    port = 1 + (i * 13) % 65000
    if k < 0.18:
        return f"ip saddr {_v4(i)} tcp dport {port} counter accept"
    if k < 0.30:
        ports = "{ 53, 123 }" if anonymous_sets else "53"
        return f"ip saddr {_v4(i, 24)} ip daddr 192.0.2.{i % 250 + 1} udp dport {ports} accept"
    if k < 0.40:
        return f"ip6 saddr 2001:db8:{i & 0xFFFF:x}::/48 tcp dport {port} accept"
    if k < 0.50:
        return f'iifname "lan{i % 16}" oifname "wan{i % 4}" ct state new counter accept'
    if k < 0.58:
        return f"tcp dport @web_ports ip saddr 203.0.113.{i % 254 + 1} accept"
    if k < 0.66:
        return f"meta l4proto udp udp dport {port}-{port + 10} drop"
    if k < 0.74:
        return f"ip daddr {_v4(i)} tcp dport {port} ct state new limit rate 10/second accept"
    if k < 0.84:
        return f'ip saddr {_v4(i)} counter drop comment "auto-ban {i}"'
    if k < 0.92:
        reject = "reject with icmpx type admin-prohibited"
        return f'oifname "{UPLINK_IFACE}" ip daddr {_v4(i, 28)} {reject}'
    ports = f"{{ {port}, {port + 1}, {port + 2} }}" if anonymous_sets else str(port)
    return f"ip daddr {_v4(i)} tcp dport {ports} ct state new accept"


def custom_table(
    budget: int, rng: random.Random, anonymous_sets: bool = True
) -> tuple[str, Counts]:
    """``table inet custom`` with about ``budget`` rules (1 in 5 with an anonymous set)."""
    counts = Counts()
    n_sets = max(16, budget // 100)
    blocklist = sorted({rng.randrange(1 << 17) for _ in range(n_sets)})
    web_ports = [80, 443, 8080, 8443, 8000, 8888]
    admin6 = [f"2001:db8:ad::{i:x}" for i in range(1, 9)]
    counts.custom_set_elements = len(blocklist) + len(web_ports) + len(admin6)

    input_fixed = [
        "ct state established,related accept",
        "ct state invalid drop",
        'iifname "lo" accept',
        "ip saddr @blocklist_v4 counter drop",
        "ip6 saddr @admin_v6 tcp dport 22 accept",
        "meta l4proto { icmp, ipv6-icmp } accept",
        "iifname vmap @zone_in",
    ]
    forward_fixed = [
        "ct state established,related accept",
        "ip daddr @blocklist_v4 counter drop",
        "iifname vmap @zone_fwd",
        "jump fwd_common",
    ]
    fixed = len(input_fixed) + len(forward_fixed)
    chain_rules = max(0, budget - fixed)
    n_chains = max(3, -(-chain_rules // CUSTOM_CHAIN_RULES))
    counts.custom_chains = n_chains + 2
    chain_names = ["fwd_common"] + [f"zone_{i}" for i in range(n_chains - 1)]
    zones_in = [c for j, c in enumerate(chain_names[1:]) if j % 2 == 0]
    zones_fwd = [c for j, c in enumerate(chain_names[1:]) if j % 2 == 1]

    out = ["table inet custom {"]
    out.append("    set blocklist_v4 {\n        type ipv4_addr; flags interval;")
    out.append("        elements = { " + ", ".join(_v4(n) for n in blocklist) + " }\n    }")
    out.append("    set web_ports {\n        type inet_service;")
    out.append("        elements = { " + ", ".join(map(str, web_ports)) + " }\n    }")
    out.append("    set admin_v6 {\n        type ipv6_addr;")
    out.append("        elements = { " + ", ".join(admin6) + " }\n    }")

    def vmap(name: str, zones: list[str]) -> None:
        out.append(f"    map {name} {{\n        type ifname : verdict;")
        elems = [f'"z{j}if" : jump {z}' for j, z in enumerate(zones)]
        if elems:
            out.append("        elements = { " + ", ".join(elems) + " }")
        out.append("    }")

    vmap("zone_in", zones_in)
    vmap("zone_fwd", zones_fwd)
    # declare every chain first so that the base chains' jumps resolve
    out += [f"    chain {name} {{\n    }}" for name in chain_names]
    out.append("    chain input {\n        type filter hook input priority filter; policy accept;")
    out += [f"        {r}" for r in input_fixed]
    out.append("    }")
    out.append(
        "    chain forward {\n        type filter hook forward priority filter; policy accept;"
    )
    out += [f"        {r}" for r in forward_fixed]
    out.append("    }")
    out.append("}")
    # the zone chains' rules, as `add rule` commands (one nft -f batch with the table)
    written = 0
    for j, name in enumerate(chain_names):
        n = chain_rules // n_chains + (1 if j < chain_rules % n_chains else 0)
        for _ in range(n):
            out.append(f"add rule inet custom {name} {_custom_rule(written, rng, anonymous_sets)}")
            written += 1
    counts.custom = fixed + written
    return "\n".join(out) + "\n", counts


def generate(total: int, seed: int = 0, anonymous_sets: bool = True) -> GeneratedRuleset:
    """A realistic ruleset of exactly ``total`` rules (the smallest sensible is about 300).

    ``anonymous_sets=False`` writes single values where the custom table would use ``{ … }``.
    """
    rng = random.Random(seed * 1_000_003 + total)
    ipt_budget = round(total * IPTABLES_SHARE)
    text4, text6, counts = iptables_texts(ipt_budget, rng)
    custom_budget = total - NM_RULES - counts.iptables
    custom_text, ccounts = custom_table(custom_budget, rng, anonymous_sets)
    counts.custom = ccounts.custom
    counts.custom_chains = ccounts.custom_chains
    counts.custom_set_elements = ccounts.custom_set_elements
    nft_text = "#!/usr/sbin/nft -f\n" + nm_shared_table() + custom_text
    return GeneratedRuleset(total, nft_text, text4, text6, counts)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("size", type=int, help="total number of rules")
    parser.add_argument("-o", "--output", type=Path, default=Path("."), help="directory")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--no-anon-sets", action="store_true")
    args = parser.parse_args()
    generated = generate(args.size, args.seed, anonymous_sets=not args.no_anon_sets)
    for path in generated.write(args.output):
        print(path)
    print(generated.counts.as_dict())


if __name__ == "__main__":
    main()
