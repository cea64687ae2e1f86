"""The packets of a hotspot client that must get through: DHCP, DNS, outbound and its reply.

Each flow is one concrete packet and the hooks it crosses. Where a real value is not
known (a client's ephemeral source port), the field is None: a rule that reads it is
uncertain rather than guessed.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Mapping
from dataclasses import dataclass, replace
from typing import Literal

from hotspotguard.ruleset.model import IPAddress, Range
from hotspotguard.ruleset.snapshot import Hotspot

IPInterface = ipaddress.IPv4Interface | ipaddress.IPv6Interface

# Where the engine sends the client's outbound flow: an address standing for "the internet".
INTERNET_V4 = ipaddress.IPv4Address("203.0.113.10")
INTERNET_V6 = ipaddress.IPv6Address("2001:db8:113::10")
OUTBOUND_PORT = 443
# A typical client's host part: .10 (NetworkManager's DHCP range starts there) and ::10.
CLIENT_HOST_INDEX = {4: 10, 6: 0x10}
CLIENT_LINK_LOCAL = ipaddress.IPv6Address("fe80::10")

# A client's source port: one of Linux's default ephemeral ports, which one unknown.
EPHEMERAL_PORTS = Range(32768, 60999)

TCP, UDP = 6, 17
SYN, ACK = 0x02, 0x10

# "unknown": a chain at exactly conntrack's priority (-200), which may run before or after
# conntrack depending on which was registered last.
CtState = Literal["new", "established", "related", "invalid", "untracked", "unknown"]
FLOW_ORDER = ("dhcp", "dns", "outbound", "reply", "dhcp6", "dns6", "outbound6", "reply6")


@dataclass(frozen=True, slots=True)
class Packet:
    """One packet as the rules see it; `oif`/`iif` are "" where the hook has no such device."""

    family: Literal["ip", "ip6"]
    saddr: IPAddress | None  # None: not known (translated to an address the snapshot lacks)
    daddr: IPAddress | None
    l4proto: int
    sport: int | Range | None
    dport: int | Range | None
    iif: str = ""
    oif: str = ""
    tcp_flags: int | None = None
    ct_state: CtState = "new"
    ct_direction: Literal["original", "reply"] = "original"
    tracked: bool = True
    fib_daddr_type: str = "unicast"
    fib_saddr_type: str = "unicast"
    pkttype: str = "host"
    mark: int = 0
    ct_mark: int = 0
    ct_nat: int = 0  # the connection's NAT status bits (ct status snat 0x10 / dnat 0x20)

    def with_mark(self, mark: int) -> Packet:
        return replace(self, mark=mark)


@dataclass(frozen=True, slots=True)
class Flow:
    name: str
    description: str
    packet: Packet
    path: tuple[str, ...]
    in_device: str
    out_device: str = ""
    needs_nat: bool = False
    # The uplink's address, the source a masquerade gives the outbound flow (None: unknown).
    masquerade_address: IPAddress | None = None
    # For a reply to a NATed connection: its destination until the nat core translates it
    # back at prerouting -100 ("" when the connection was not NATed, None when unknown).
    nat_daddr: IPAddress | Literal[""] | None = ""

    @property
    def forwarded(self) -> bool:
        return "forward" in self.path

    @property
    def family(self) -> Literal["ip", "ip6"]:
        return self.packet.family


INPUT_PATH = ("ingress", "prerouting", "input")
FORWARD_PATH = ("ingress", "prerouting", "forward", "postrouting")


def client_address(interface: ipaddress.IPv4Interface | ipaddress.IPv6Interface) -> IPAddress:
    """The address a typical client of this hotspot has (.10 / ::10 of its network)."""
    net = interface.network
    host_index = CLIENT_HOST_INDEX[net.version]
    if net.num_addresses > host_index + 2:
        candidate = net.network_address + host_index
        if candidate != interface.ip:
            return candidate
    for host in net.hosts():
        if host != interface.ip:
            return host
    return interface.ip


def hotspot_flows(
    hotspot: Hotspot,
    uplinks: tuple[str, ...],
    uplink_addresses: Mapping[str, tuple[IPInterface, ...]] | None = None,
) -> list[Flow]:
    """The flows of a client of `hotspot`, IPv4 where it has IPv4, IPv6 where it has IPv6."""
    flows: list[Flow] = []
    iface = hotspot.iface
    uplink = uplinks[0] if uplinks else ""
    own = (uplink_addresses or {}).get(uplink, ())

    def masquerade_address(version: int) -> IPAddress | None:
        usable = [a.ip for a in own if a.version == version and not a.ip.is_link_local]
        return usable[0] if usable else None

    if hotspot.ipv4:
        gateway = hotspot.ipv4[0]
        client = client_address(gateway)
        flows += _family_flows(
            "ip",
            "",
            iface,
            uplink,
            client,
            gateway.ip,
            INTERNET_V4,
            dhcp_src=ipaddress.IPv4Address("0.0.0.0"),
            dhcp_dst=ipaddress.IPv4Address("255.255.255.255"),
            dhcp_ports=(68, 67),
        )
    if hotspot.ipv6:
        global_addrs = [a for a in hotspot.ipv6 if not a.ip.is_link_local]
        if global_addrs:
            gateway6 = global_addrs[0]
            flows += _family_flows(
                "ip6",
                "6",
                iface,
                uplink,
                client_address(gateway6),
                gateway6.ip,
                INTERNET_V6,
                dhcp_src=CLIENT_LINK_LOCAL,
                dhcp_dst=ipaddress.IPv6Address("ff02::1:2"),
                dhcp_ports=(546, 547),
            )
    return [_with_masquerade(f, masquerade_address(4 if f.family == "ip" else 6)) for f in flows]


def _with_masquerade(flow: Flow, address: IPAddress | None) -> Flow:
    return replace(flow, masquerade_address=address) if flow.name.startswith("outbound") else flow


def _family_flows(
    family: Literal["ip", "ip6"],
    suffix: str,
    iface: str,
    uplink: str,
    client: IPAddress,
    gateway: IPAddress,
    internet: IPAddress,
    *,
    dhcp_src: IPAddress,
    dhcp_dst: IPAddress,
    dhcp_ports: tuple[int, int],
) -> list[Flow]:
    v6 = family == "ip6"
    dhcp = Packet(
        family,
        dhcp_src,
        dhcp_dst,
        UDP,
        dhcp_ports[0],
        dhcp_ports[1],
        fib_daddr_type="multicast" if v6 else "broadcast",
        fib_saddr_type="unicast" if v6 else "broadcast",
        pkttype="multicast" if v6 else "broadcast",
    )
    dns = Packet(family, client, gateway, UDP, EPHEMERAL_PORTS, 53, fib_daddr_type="local")
    outbound = Packet(family, client, internet, TCP, EPHEMERAL_PORTS, OUTBOUND_PORT, tcp_flags=SYN)
    reply = Packet(
        family,
        internet,
        client,
        TCP,
        OUTBOUND_PORT,
        EPHEMERAL_PORTS,
        tcp_flags=SYN | ACK,
        ct_state="established",
        ct_direction="reply",
    )
    version = "IPv6" if v6 else "IPv4"
    dhcp_text = "DHCPv6 solicit" if v6 else "DHCP discover"
    return [
        Flow("dhcp" + suffix, f"{dhcp_text} from a new client on {iface}", dhcp, INPUT_PATH, iface),
        Flow(
            "dns" + suffix,
            f"{version} DNS query from {client} to {gateway}",
            dns,
            INPUT_PATH,
            iface,
        ),
        Flow(
            "outbound" + suffix,
            f"new {version} connection from {client} to the internet via {uplink or 'no uplink'}",
            outbound,
            FORWARD_PATH,
            iface,
            uplink,
            needs_nat=not v6,
        ),
        Flow(
            "reply" + suffix,
            f"the internet's {version} reply to {client}",
            reply,
            FORWARD_PATH,
            uplink,
            iface,
        ),
    ]
