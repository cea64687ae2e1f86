"""Route lookups as netfilter does them: nft's `fib … oif`/`oifname` (nft_fib_ipv4.c,
nft_fib_ipv6.c) and iptables' `-m rpfilter` (ipt_rpfilter.c, ip6t_rpfilter.c), on the packet's
addresses and devices and the snapshot's routes.

Each function returns None where the snapshot cannot decide (no routes, policy rules that
select packets, an address the engine does not know).
"""

from __future__ import annotations

import ipaddress

from hotspotguard.ruleset.model import IPAddress
from hotspotguard.ruleset.routes import FAILING_TYPES, UNDECIDED, Route, Routing
from hotspotguard.verdict.flows import ICMPV6, Packet

LIMITED_BROADCAST = ipaddress.IPv4Address("255.255.255.255")
LOCAL_MULTICAST = ipaddress.IPv4Network("224.0.0.0/24")
ANY6 = ipaddress.IPv6Address("::")


def _zeronet_to_local(packet: Packet) -> bool:
    """A 0.0.0.0 source to the limited broadcast or a link-local multicast group (a DHCP
    discover): netfilter does no lookup and answers with the packet's own device."""
    saddr, daddr = packet.saddr, packet.daddr
    return (
        isinstance(saddr, ipaddress.IPv4Address)
        and int(saddr) >> 24 == 0  # ipv4_is_zeronet: 0.0.0.0/8
        and isinstance(daddr, ipaddress.IPv4Address)
        and (daddr == LIMITED_BROADCAST or daddr in LOCAL_MULTICAST)
    )


def _link_local(address: IPAddress) -> bool:
    """ipv6_addr_type()'s IPV6_ADDR_LINKLOCAL: fe80::/10, and multicast of link scope."""
    if not isinstance(address, ipaddress.IPv6Address):
        return False
    if address.is_multicast:
        return (int(address) >> 112) & 0xF == 2
    return address in ipaddress.IPv6Network("fe80::/10")


def _skb_device(packet: Packet) -> str:
    return packet.iif or packet.oif


def _reverse_path_by_construction(packet: Packet) -> bool:
    """Without the snapshot's routes, a reverse-path check still passes for the flows the
    engine builds: each comes in where its source is routed (the hotspot's subnet, its
    link-local addresses and DHCP's 0.0.0.0 on the hotspot; the internet through the uplink,
    which is the default route's device)."""
    if packet.saddr is None or not packet.iif:
        return False
    return not (int(packet.saddr) == 0 and packet.family == "ip6")


def fib_device(routing: Routing | None, flags: tuple[str, ...], packet: Packet) -> str | None:
    """`fib FLAGS oif`/`oifname`: the device found ("" for none), None if undecidable."""
    if routing is None:
        # firewalld's rpfilter (`fib saddr . mark . iif oif missing drop`) in an older
        # snapshot: the route back leaves by the input device (`iif`, which the kernel allows
        # only before the source is translated: prerouting, input, forward)
        reverse = "saddr" in flags and "iif" in flags
        return packet.iif if reverse and _reverse_path_by_construction(packet) else None
    if routing.family != packet.family:
        return None
    device = packet.oif if "oif" in flags else packet.iif if "iif" in flags else ""
    if packet.family == "ip" and _zeronet_to_local(packet):
        return _skb_device(packet)
    by_daddr = "daddr" in flags
    target = packet.daddr if by_daddr else packet.saddr
    if target is None:
        return None
    if packet.family == "ip6":
        if packet.saddr == ANY6 and packet.l4proto == ICMPV6:
            return None  # nft_fib_v6_skip_icmpv6 answers by hook, which a packet lacks here
        strict = _link_local(target)
        lookup_device = (device or _skb_device(packet)) if strict else None
        found = routing.lookup(target, lookup_device, strict=strict)
        if found is UNDECIDED:
            return None
        if not isinstance(found, Route) or found.type in FAILING_TYPES | {"anycast", "local"}:
            return ""
        route_device = found.devices[0] if found.devices else ""
        if device and device != route_device:
            return ""
        return route_device
    found = routing.lookup(target)
    if found is UNDECIDED:
        return None
    if not isinstance(found, Route) or found.type in FAILING_TYPES or found.type == "local":
        return ""
    if not device:
        return found.devices[0] if found.devices else ""
    return device if device in found.devices else ""


def rpfilter(routing: Routing | None, options: tuple[str, ...], packet: Packet) -> bool | None:
    """`-m rpfilter [--loose] [--validmark] [--accept-local]` (before --invert): whether the
    packet's source is reachable back through its input device. None if undecidable."""
    if routing is None:
        return True if _reverse_path_by_construction(packet) else None
    if routing.family != packet.family:
        return None
    loose, accept_local = "loose" in options, "accept-local" in options
    device = packet.iif
    saddr = packet.saddr
    if packet.family == "ip":
        if _zeronet_to_local(packet):
            return True
        if saddr is None:
            return None
        found = routing.lookup(saddr)
        if found is UNDECIDED:
            return None
        if not isinstance(found, Route) or found.type in FAILING_TYPES:
            return False
        if found.type != "unicast" and not (found.type == "local" and accept_local):
            return False
        return device in found.devices or loose
    if saddr == ANY6:
        return True  # not routable: the forward path drops it
    if saddr is None:
        return None
    strict = _link_local(saddr)
    with_device = strict or not loose
    found = routing.lookup(saddr, device if with_device else None, strict=strict)
    if found is UNDECIDED:
        return None
    if not isinstance(found, Route) or found.type in FAILING_TYPES | {"anycast", "throw"}:
        return False
    if found.type == "local":
        return accept_local
    return (found.devices[:1] == (device,)) or loose
