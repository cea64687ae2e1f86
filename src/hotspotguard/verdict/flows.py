"""The packets of a hotspot client that must get through: DHCP, DNS, outbound and its reply,
and for IPv6 the router and neighbour discovery that gives the client its address and its
router (RS/RA, NS/NA, on the host's input and output).

Each flow is one concrete packet and the hooks it crosses. Where a real value is not
known (a client's ephemeral source port), the field is None: a rule that reads it is
uncertain rather than guessed. A flow of a service the hotspot does not serve (DHCPv6 or DNS
over IPv6 where only router advertisements give the address) is informative: it is judged and
shown, but it does not decide the hotspot's verdict.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Mapping
from dataclasses import dataclass, replace
from typing import Literal

from hotspotguard import wording
from hotspotguard.ruleset.model import IPAddress, Range
from hotspotguard.ruleset.routes import Routing
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

TCP, UDP, ICMPV6 = 6, 17, 58
ARP_REQUEST, ARP_REPLY = 1, 2
SYN, ACK = 0x02, 0x10
# ICMPv6 router and neighbour discovery (RFC 4861): sent and accepted only with hop limit 255
ND_RS, ND_RA, ND_NS, ND_NA = 133, 134, 135, 136
ND_HOP_LIMIT = 255
# nf_conntrack_icmpv6's noct_valid_new: MLD queries/reports/done, RS, RA, NS, NA, MLDv2 reports
UNTRACKED_ICMPV6 = frozenset({130, 131, 132, 133, 134, 135, 136, 143})
DEFAULT_HOP_LIMIT = 64
ALL_NODES = ipaddress.IPv6Address("ff02::1")
ALL_ROUTERS = ipaddress.IPv6Address("ff02::2")

# The IPv6 services a hotspot may serve: router advertisements (SLAAC), DHCPv6, DNS over IPv6.
IPV6_SERVICES = ("ra", "dhcp6", "dns6")
# What NetworkManager's ipv6.method=shared serves (measured with NM 1.42): it sends router
# advertisements itself (no M/O flags, no DNS server in them), its dnsmasq listens on the
# IPv4 address only and has no IPv6 range. The default for a snapshot that does not say.
NM_SHARED_IPV6_SERVICES = frozenset({"ra"})

CtState = Literal["new", "established", "related", "invalid", "untracked"]
FLOW_ORDER = (
    "arp_in",
    "arp_out",
    "dhcp",
    "dns",
    "outbound",
    "reply",
    "rs6",
    "ra6",
    "ns6_in",
    "na6_out",
    "ns6_out",
    "na6_in",
    "dhcp6",
    "dns6",
    "outbound6",
    "reply6",
)
ARP_FLOWS = ("arp_in", "arp_out")
DISCOVERY_FLOWS = ("rs6", "ra6", "ns6_in", "na6_out", "ns6_out", "na6_in")
# the service each flow depends on (a flow not listed is needed whenever its family is there)
FLOW_SERVICE = {"rs6": "ra", "ra6": "ra", "dhcp6": "dhcp6", "dns6": "dns6"}


@dataclass(frozen=True, slots=True)
class Packet:
    """One packet as the rules see it; `oif`/`iif` are "" where the hook has no such device."""

    family: Literal["ip", "ip6", "arp"]
    saddr: IPAddress | None  # None: not known (translated to an address the snapshot lacks)
    daddr: IPAddress | None
    l4proto: int
    sport: int | Range | None
    dport: int | Range | None
    iif: str = ""
    oif: str = ""
    tcp_flags: int | None = None
    icmp_type: int | None = None
    icmp_code: int | None = None
    arp_operation: int | None = None
    hoplimit: int = DEFAULT_HOP_LIMIT
    ct_state: CtState = "new"
    ct_direction: Literal["original", "reply"] = "original"
    tracked: bool = True
    fib_daddr_type: str = "unicast"
    fib_saddr_type: str = "unicast"
    pkttype: str = "host"
    mark: int = 0
    ct_mark: int = 0
    ct_nat: int = 0  # the connection's NAT status bits (ct status snat 0x10 / dnat 0x20)
    routing: Routing | None = None  # the family's routes (fib, rpfilter); None: not known
    ct_zone: int = 0  # the conntrack zone a `ct zone set` before conntrack put it in

    def with_mark(self, mark: int) -> Packet:
        return replace(self, mark=mark)

    @property
    def conntrack_ignores(self) -> bool:
        """ICMPv6 that conntrack marks untracked: router/neighbour discovery and MLD."""
        return self.l4proto == ICMPV6 and self.icmp_type in UNTRACKED_ICMPV6


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
    # False: the hotspot does not serve what this flow asks for; judged, but not deciding
    required: bool = True
    # what `description` is built from (interface, addresses, uplink): wording.flow_description
    # words it in the person's language
    params: tuple[tuple[str, str], ...] = ()

    @property
    def forwarded(self) -> bool:
        return "forward" in self.path

    @property
    def family(self) -> Literal["ip", "ip6", "arp"]:
        return self.packet.family


INPUT_PATH = ("ingress", "prerouting", "input")
FORWARD_PATH = ("ingress", "prerouting", "forward", "postrouting")
OUTPUT_PATH = ("output", "postrouting")


def solicited_node(address: IPAddress) -> ipaddress.IPv6Address:
    """The solicited-node multicast address of an IPv6 address (ff02::1:ffXX:XXXX)."""
    low = int(address) & 0xFFFFFF
    return ipaddress.IPv6Address(int(ipaddress.IPv6Address("ff02::1:ff00:0")) | low)


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
        link_local = [a.ip for a in hotspot.ipv6 if a.ip.is_link_local]
        if global_addrs:
            gateway6 = global_addrs[0]
            client6 = client_address(gateway6)
            host_ll = link_local[0] if link_local else None
            flows += discovery_flows(iface, client6, gateway6.ip, host_ll)
            flows += _family_flows(
                "ip6",
                "6",
                iface,
                uplink,
                client6,
                gateway6.ip,
                INTERNET_V6,
                dhcp_src=CLIENT_LINK_LOCAL,
                dhcp_dst=ipaddress.IPv6Address("ff02::1:2"),
                dhcp_ports=(546, 547),
            )
    served = ipv6_services(hotspot)
    flows = [
        replace(f, required=False)
        if f.name in FLOW_SERVICE and FLOW_SERVICE[f.name] not in served
        else f
        for f in flows
    ]
    return [_with_masquerade(f, masquerade_address(4 if f.family == "ip" else 6)) for f in flows]


def _flow(
    name: str,
    params: Mapping[str, object],
    packet: Packet,
    path: tuple[str, ...],
    in_device: str,
    out_device: str = "",
    *,
    needs_nat: bool = False,
) -> Flow:
    """A flow described in English from `params`, which it keeps for other languages."""
    kept = tuple((key, str(value)) for key, value in params.items())
    description = wording.flow_description(name, dict(kept))
    return Flow(
        name, description, packet, path, in_device, out_device, needs_nat=needs_nat, params=kept
    )


def arp_flows(hotspot: Hotspot) -> list[Flow]:
    """ARP between a client and the host: its request for the gateway's address (broadcast,
    on input) and the host's reply (on output). Judged only where an `arp` table filters."""
    if not hotspot.ipv4:
        return []
    gateway = hotspot.ipv4[0]
    client = client_address(gateway)
    iface = hotspot.iface
    request = Packet(
        "arp",
        client,
        gateway.ip,
        0,
        None,
        None,
        arp_operation=ARP_REQUEST,
        tracked=False,
        ct_state="invalid",
        pkttype="broadcast",
        fib_daddr_type="broadcast",
    )
    reply = Packet(
        "arp",
        gateway.ip,
        client,
        0,
        None,
        None,
        arp_operation=ARP_REPLY,
        tracked=False,
        ct_state="invalid",
        pkttype="host",
    )
    return [
        _flow(
            "arp_in",
            {"gateway": gateway.ip, "client": client, "iface": iface},
            request,
            ("ingress", "input"),
            iface,
        ),
        _flow("arp_out", {"client": client, "iface": iface}, reply, ("output",), "", iface),
    ]


def ipv6_services(hotspot: Hotspot) -> frozenset[str]:
    """What the hotspot serves over IPv6: the snapshot's word, else NetworkManager's default."""
    if hotspot.ipv6_services is None:
        return NM_SHARED_IPV6_SERVICES
    return hotspot.ipv6_services


def _discovery(
    source: IPAddress | None,
    destination: IPAddress | None,
    icmp_type: int,
    *,
    inbound: bool,
) -> Packet:
    multicast = destination is not None and destination.is_multicast
    if inbound:
        daddr_type = "multicast" if multicast else "local"
        pkttype = "multicast" if multicast else "host"
        saddr_type = "unicast"
    else:  # locally generated: the socket buffer says "host" until it leaves
        daddr_type = "multicast" if multicast else "unicast"
        pkttype = "host"
        saddr_type = "local"
    return Packet(
        "ip6",
        source,
        destination,
        ICMPV6,
        None,
        None,
        icmp_type=icmp_type,
        icmp_code=0,
        hoplimit=ND_HOP_LIMIT,
        # conntrack leaves router and neighbour discovery untracked (nf_conntrack_icmpv6)
        ct_state="untracked",
        tracked=False,
        fib_daddr_type=daddr_type,
        fib_saddr_type=saddr_type,
        pkttype=pkttype,
    )


def discovery_flows(
    iface: str,
    client: IPAddress,
    gateway: IPAddress,
    gateway_link_local: IPAddress | None,
) -> list[Flow]:
    """IPv6 router and neighbour discovery between a client and the host, both ways: the
    client asks for router advertisements (RS) and gets them (RA, from the host's link-local
    address, which the snapshot may lack: None), it resolves its router (NS/NA), and the host
    resolves the client's address to forward the replies to it (NS/NA)."""
    host_ll = gateway_link_local
    client_ll = CLIENT_LINK_LOCAL
    rs = _discovery(client_ll, ALL_ROUTERS, ND_RS, inbound=True)
    ra = _discovery(host_ll, ALL_NODES, ND_RA, inbound=False)
    router_target = solicited_node(host_ll) if host_ll is not None else None
    ns_in = _discovery(client_ll, router_target, ND_NS, inbound=True)
    na_out = _discovery(host_ll, client_ll, ND_NA, inbound=False)
    ns_out = _discovery(gateway, solicited_node(client), ND_NS, inbound=False)
    na_in = _discovery(client, gateway, ND_NA, inbound=True)
    return [
        _flow("rs6", {"iface": iface}, rs, INPUT_PATH, iface),
        _flow("ra6", {"iface": iface}, ra, OUTPUT_PATH, "", iface),
        _flow("ns6_in", {"iface": iface}, ns_in, INPUT_PATH, iface),
        _flow("na6_out", {"iface": iface}, na_out, OUTPUT_PATH, "", iface),
        _flow("ns6_out", {"client": client, "iface": iface}, ns_out, OUTPUT_PATH, "", iface),
        _flow("na6_in", {"client": client, "iface": iface}, na_in, INPUT_PATH, iface),
    ]


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
        hoplimit=1 if v6 else DEFAULT_HOP_LIMIT,  # multicast leaves with hop limit 1
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
    return [
        _flow("dhcp" + suffix, {"iface": iface}, dhcp, INPUT_PATH, iface),
        _flow("dns" + suffix, {"client": client, "gateway": gateway}, dns, INPUT_PATH, iface),
        _flow(
            "outbound" + suffix,
            {"client": client, "uplink": uplink},
            outbound,
            FORWARD_PATH,
            iface,
            uplink,
            needs_nat=not v6,
        ),
        _flow(
            "reply" + suffix,
            {"client": client},
            reply,
            FORWARD_PATH,
            uplink,
            iface,
        ),
    ]
