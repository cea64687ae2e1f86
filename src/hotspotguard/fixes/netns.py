"""`docker-netns`: dockerd in a network namespace of its own (the seed's second fix, generated).

A docker.service drop-in gives dockerd a private network namespace (``PrivateNetwork=yes``,
``PrivateMounts=no`` so its mounts stay the host's) joined to the host by a veth pair, the
host's ``docker0`` ↔ the namespace's ``eth0``, addressed from a private /30 that is free on the
host (none of its addresses or routes overlap it); a table of ours masquerades what comes from
the /30 out of whatever interface it leaves by.  Docker's iptables rules then live in its own
namespace, and the ones it left on the host are cleared off its base chains (undo puts them
back).  Pure: the planner reads the ruleset and the facts the use case gathered."""

from __future__ import annotations

import ipaddress
import itertools
import re

from hotspotguard.fixes.docker import _jump_target, _spec, chain_reset
from hotspotguard.fixes.plan import (
    SOURCE_VARIANT,
    ChainReset,
    DropIn,
    NetnsFacts,
    NftTable,
    NftTableRemoved,
)
from hotspotguard.ruleset import Ruleset
from hotspotguard.wording import Reason

UNIT = "docker.service"
DROPIN_NAME = "60-hotspotguard-netns.conf"
TABLE = "hotspotguard-docker"
HOST_LINK = "docker0"
NS_LINK = "eth0"
#: where the /30 is looked for, each from its top down (Docker's own address pools inside the
#: namespace, 172.17-172.30/16 and 192.168.0.0/16 in /20s, skip what the namespace routes)
POOLS = ("10.255.0.0/16", "172.31.0.0/16", "192.168.255.0/24")
#: routes broader than this are catch-alls (a default route, a VPN's two /1 halves), not
#: networks a /30 could collide with
BROADEST = 8
TOOLS = ("ip", "nsenter", "sysctl", "nft")
_HOST_ADDRESS = re.compile(
    rf"^ExecStartPre=\S+ -t 1 -n -- \S+ addr add (\S+)/30 dev {HOST_LINK}$", re.M
)
_DOCKER_IFACE = re.compile(r"^(docker0|br-[0-9a-f]{12})$")


class NetnsUnavailable(Exception):
    """The strategy does not apply here; the message is one line."""


def free_subnet(networks: tuple[str, ...], prefer: str | None = None) -> ipaddress.IPv4Network:
    """The first /30 of `POOLS`, each from its top down (or `prefer`, the one a drop-in of
    ours already uses), that overlaps none of `networks`.  A /30 that overlaps a network
    skips to just below it: a few steps, however much is taken."""
    taken = []
    for text in networks:
        try:
            network = ipaddress.ip_network(text, strict=False)
        except ValueError:
            continue
        if isinstance(network, ipaddress.IPv4Network) and network.prefixlen >= BROADEST:
            taken.append((int(network.network_address), int(network.broadcast_address)))

    def overlapped(first: int) -> int | None:
        """The lowest address of a network the /30 at `first` overlaps (None: it is free)."""
        return next((low for low, high in taken if low <= first + 3 and first <= high), None)

    if prefer:
        first = int(ipaddress.IPv4Network(prefer).network_address)
        if overlapped(first) is None:
            return ipaddress.IPv4Network((first, 30))
    for pool in POOLS:
        network = ipaddress.IPv4Network(pool)
        bottom, first = int(network.network_address), int(network.broadcast_address) - 3
        while first >= bottom:
            low = overlapped(first)
            if low is None:
                return ipaddress.IPv4Network((first, 30))
            first = (low - 4) & ~3
    raise NetnsUnavailable(Reason("netns-no-subnet", pools=list(POOLS)))


def _tool(facts: NetnsFacts, name: str) -> str:
    return dict(facts.tools)[name]


def table_text(subnet: ipaddress.IPv4Network, fix_tag: str) -> str:
    """Our table: what leaves from the /30 by any interface but the veth is masqueraded."""
    return (
        f"table ip {TABLE} {{\n"
        "\tchain postrouting {\n"
        "\t\ttype nat hook postrouting priority srcnat; policy accept;\n"
        f'\t\tip saddr {subnet} oifname != "{HOST_LINK}" masquerade comment "{fix_tag}"\n'
        "\t}\n"
        "}\n"
    )


def _one_line(text: str) -> str:
    """An nft script as one command-line argument: statements joined by ';'."""
    parts: list[str] = []
    for line in text.splitlines():
        line = line.strip()
        if not line:
            continue
        if line.endswith("{") or line.endswith(";") or not parts or parts[-1].endswith("{"):
            parts.append(line)
        else:
            parts.append("; " + line if line != "}" else "; }")
    return " ".join(parts).replace("; ;", ";").replace(" ; ", "; ")


def dropin_text(facts: NetnsFacts, subnet: ipaddress.IPv4Network, fix_id: str, table: str) -> str:
    """The drop-in: every command an absolute path with its arguments, no shell.  systemd runs
    the ExecStartPre lines in the unit's new namespace; ``nsenter -t 1 -n`` runs one in PID
    1's (the host's), and ``ip link add … peer … netns 1`` puts the veth's host end there."""
    ip, nsenter, sysctl, nft = (_tool(facts, name) for name in TOOLS)
    host, ns = (f"{address}/30" for address in list(subnet.hosts()))
    gateway = host.split("/")[0]
    on_host = f"{nsenter} -t 1 -n --"
    script = f"table ip {TABLE}; delete table ip {TABLE}; " + _one_line(table)
    return (
        f"# Written by hotspotguard ({fix_id}): dockerd in a network namespace of its own,\n"
        f"# joined to the host by the veth {HOST_LINK} {host} <-> {NS_LINK} {ns};\n"
        f"# table ip {TABLE} masquerades its traffic.  `hotspotguard undo` removes this file.\n"
        "[Service]\n"
        "PrivateNetwork=yes\n"
        "# PrivateNetwork=yes implies PrivateMounts=yes: dockerd's mounts stay the host's\n"
        "PrivateMounts=no\n"
        "# a veth a namespace of an earlier start left behind\n"
        f"ExecStartPre=-{on_host} {ip} link delete {HOST_LINK}\n"
        f"ExecStartPre={ip} link add {NS_LINK} type veth peer name {HOST_LINK} netns 1\n"
        f"ExecStartPre={on_host} {ip} addr add {host} dev {HOST_LINK}\n"
        f"ExecStartPre={on_host} {sysctl} -q -w net.ipv4.conf.{HOST_LINK}.forwarding=1\n"
        f"ExecStartPre={on_host} {ip} link set {HOST_LINK} up\n"
        f"ExecStartPre={on_host} {nft} '{script}'\n"
        f"ExecStartPre={ip} link set lo up\n"
        f"ExecStartPre={ip} addr add {ns} dev {NS_LINK}\n"
        f"ExecStartPre={ip} link set {NS_LINK} up\n"
        f"ExecStartPre={ip} route add default via {gateway} dev {NS_LINK}\n"
    )


def _ours(text: str | None) -> str | None:
    """The host's veth address in a drop-in of ours (None: not ours, or absent)."""
    if text is None or not text.startswith("# Written by hotspotguard"):
        return None
    match = _HOST_ADDRESS.search(text)
    return match.group(1) if match else None


def _docker_rule(chain: str, text: str) -> bool:
    """Whether a rule of a built-in chain is Docker's: a jump into its chains, or a rule for
    its bridges (docker0, br-<id>)."""
    if (_jump_target(text) or "").startswith("DOCKER"):
        return True
    tokens = _spec(chain, text).split()
    return any(
        a in ("-i", "-o", "--in-interface", "--out-interface") and bool(_DOCKER_IFACE.match(b))
        for a, b in itertools.pairwise(tokens)
    )


def host_resets(ruleset: Ruleset) -> tuple[ChainReset, ...]:
    """Docker's rules cleared off the host's built-in chains of its iptables tables (filter,
    nat; IPv4 and IPv6): the filter FORWARD policy accept, its jumps and bridge rules gone.
    Planned the same way while done (each change then a no-op that keeps undo exact)."""
    changes = []
    for table in ruleset.tables:
        if table.source not in SOURCE_VARIANT or table.name not in ("filter", "nat"):
            continue
        if not any(chain.name.startswith("DOCKER") for chain in table.chains):
            continue
        for chain in table.chains:
            if chain.hook is not None:
                policy = "accept" if (table.name, chain.name) == ("filter", "FORWARD") else None
                changes.append(chain_reset(table, chain, policy, _docker_rule))
    return tuple(changes)


#: the tables of Docker's nftables backend (Docker 29's firewall-backend: nftables)
DOCKER_NFT_TABLES = ("docker-bridges",)


def host_tables(ruleset: Ruleset) -> tuple[NftTableRemoved, ...]:
    """Docker's nftables tables on the host, deleted whole (undo loads them back)."""
    return tuple(
        NftTableRemoved(table.family, table.name)
        for table in ruleset.tables
        if table.source == "nft" and table.name in DOCKER_NFT_TABLES
    )


def without_tables(ruleset: Ruleset, change: NftTableRemoved) -> Ruleset:
    """`ruleset` with `change` done."""
    kept = tuple(
        table
        for table in ruleset.tables
        if (table.source, table.family, table.name) != ("nft", change.family, change.name)
    )
    return Ruleset(kept, ruleset.warnings)


NetnsChange = ChainReset | NftTableRemoved | NftTable | DropIn


def netns_changes(
    ruleset: Ruleset, facts: NetnsFacts | None, fix_id: str, fix_tag: str
) -> tuple[ipaddress.IPv4Network, tuple[NetnsChange, ...]]:
    """The /30 and the changes: Docker's host rules cleared (its iptables rules off the
    built-in chains, its nftables tables deleted), our table, the drop-in (last: a restart
    then finds the masquerade in place)."""
    if facts is None or facts.dockerd is None:
        raise NetnsUnavailable(Reason("netns-no-dockerd"))
    if facts.problem:
        raise NetnsUnavailable(facts.problem)
    prefer = _ours(facts.dropin)
    if facts.dropin is not None and prefer is None:
        raise NetnsUnavailable(Reason("netns-dropin-not-ours", path=str(facts.dropin_path)))
    if facts.docker0 == "veth" and prefer is None:
        raise NetnsUnavailable(Reason("netns-stale-veth", link=HOST_LINK))
    if facts.docker0 not in (None, "veth", "bridge"):
        raise NetnsUnavailable(Reason("netns-link-not-bridge", link=HOST_LINK, kind=facts.docker0))
    subnet = free_subnet(
        facts.networks, str(ipaddress.ip_interface(f"{prefer}/30").network) if prefer else None
    )
    table = table_text(subnet, fix_tag)
    dropin = DropIn(
        facts.dropin_path, dropin_text(facts, subnet, fix_id, table), UNIT, facts.systemd
    )
    changes: tuple[NetnsChange, ...] = (*host_resets(ruleset), *host_tables(ruleset))
    return subnet, (*changes, NftTable("ip", TABLE, table), dropin)
