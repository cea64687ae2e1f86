"""The named scenario corpus: rulesets as NetworkManager, Docker, ufw & co. write them.

Every scenario states the kernel outcome the lab measured (``kernel``, compact notation, see
model.py).  Those expectations double as regression checks of the lab itself; the engine is
compared flow by flow against what the kernel really did (test_scenarios.py).
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

from tests.lab import Lab, start_dockerd

from .model import (
    ND_INPUT_DROP,
    ND_OK,
    ND_OUTPUT_DROP,
    V4_ALL_DROP,
    V4_FWD_DROP,
    V4_OK_MASQ,
    V4_OK_PLAIN,
    V6_ALL_DROP,
    V6_FWD_DROP,
    V6_OK_MASQ,
    V6_OK_PLAIN,
    Cmd,
    Nft,
    Scenario,
    Sysctl,
    expect,
    ipt_file,
    nft_file,
)

NM = nft_file("nm-shared-hs0.nft")
NM_IPT = ipt_file("nm-shared-hs0.iptables.rules")
D27 = ipt_file("docker27.rules")
D27_LEGACY = ipt_file("docker27.rules", legacy=True)
D27_V6 = ipt_file("docker27.v6.rules", ipv6=True)
D28 = ipt_file("docker28.rules")
D28_V6 = ipt_file("docker28.v6.rules", ipv6=True)
UFW = ipt_file("ufw.rules")
UFW6 = ipt_file("ufw.v6.rules", ipv6=True)

# nft 1.0.6 (Debian 12) leaves the device out of netdev chains in its JSON output (the text
# listing has `device "hs0"`): `hotspotguard snapshot` adds it back from `nft list chains`, so
# the engine must be exact here too.


def ipt(*args: str, tool: str = "iptables-nft") -> Cmd:
    return Cmd((tool, *args))


# The seed's quick fix, in the seed's order (-i first, then -o inserted above it).
SEED_FIX = (
    ipt("-I", "DOCKER-USER", "-i", "hs0", "-j", "ACCEPT"),
    ipt("-I", "DOCKER-USER", "-o", "hs0", "-j", "ACCEPT"),
)
SEED_FIX_V6 = (
    ipt("-I", "DOCKER-USER", "-i", "hs0", "-j", "ACCEPT", tool="ip6tables-nft"),
    ipt("-I", "DOCKER-USER", "-o", "hs0", "-j", "ACCEPT", tool="ip6tables-nft"),
)


@contextlib.contextmanager
def _dockerd_at_boot(lab: Lab) -> Iterator[None]:
    # as at boot: forwarding is off when dockerd starts, so it turns it on and sets FORWARD DROP
    with start_dockerd(lab, forwarding_off_first=True):
        yield


@contextlib.contextmanager
def _dockerd_forwarding_on(lab: Lab) -> Iterator[None]:
    # forwarding already on (sysctl.d, or the hotspot came first): dockerd leaves the policy alone
    with start_dockerd(lab, forwarding_off_first=False):
        yield


def _big_sets(server_in: str) -> Nft:
    """An inet table with sets big enough for the engine's compact form (sorted integer
    arrays): 1,500 IPv4 prefixes and ranges, 1,000 IPv6 prefixes, 600 port ranges and 1,000
    `ip daddr . tcp dport` pairs; the internet server (203.0.113.10:443) is in `server_in`
    ("blocklist": a range of it; "pairs": a pair of it) and in nothing else."""
    v4 = [
        f"100.{64 + i // 256}.{i % 256}.0/24"
        if i % 2
        else f"100.{64 + i // 256}.{i % 256}.1-100.{64 + i // 256}.{i % 256}.9"
        for i in range(1500)
    ]
    pairs = [f"198.18.{i // 256}.{i % 256} . {1024 + i}" for i in range(1000)]
    if server_in == "blocklist":
        v4.append("203.0.113.8-203.0.113.15")
    else:
        pairs.append("203.0.113.10 . 443")
    v6 = [f"fd00:{i:x}::/48" for i in range(1000)]
    ports = [f"{1000 + 10 * i}-{1005 + 10 * i}" for i in range(600)]
    text = (
        "table inet big {\n"
        f" set blocklist {{ type ipv4_addr; flags interval; elements = {{ {', '.join(v4)} }} }}\n"
        f" set blocklist6 {{ type ipv6_addr; flags interval; elements = {{ {', '.join(v6)} }} }}\n"
        f" set ports {{ type inet_service; flags interval; elements = {{ {', '.join(ports)} }} }}\n"
        " set pairs { type ipv4_addr . inet_service; "
        f"elements = {{ {', '.join(pairs)} }} }}\n"
        " chain i {\n  type filter hook input priority 0;\n"
        "  ip saddr @blocklist drop\n  udp dport @ports drop\n }\n"
        " chain f {\n  type filter hook forward priority 0;\n"
        "  ip daddr @blocklist drop\n  ip6 daddr @blocklist6 drop\n"
        "  ip daddr . tcp dport @pairs drop\n }\n}\n"
    )
    return Nft(text, source=f"<big sets, the server in {server_in}>")


SCENARIOS: list[Scenario] = [
    # --- baseline and NetworkManager alone ------------------------------------------------------
    Scenario(
        "pristine",
        "No ruleset at all: everything is delivered, nothing is masqueraded.",
        (),
        expect(V4_OK_PLAIN, V6_OK_PLAIN),
        notes="The lab's inet routes the hotspot nets back, so even un-NATed traffic completes.",
    ),
    Scenario(
        "nm_nft_only",
        "NetworkManager's shared table (nftables backend) for hs0, exactly as NM writes it.",
        (NM,),
        expect(V4_OK_MASQ, V6_OK_PLAIN),
        verdict="ok",
        notes="NM's table is family ip: IPv6 is untouched (forwarded, not masqueraded).",
    ),
    Scenario(
        "nm_nft_firewalld_rpfilter",
        "NM (nftables) + firewalld's IPv6 reverse-path filter (IPv6_rpfilter=yes, its default), "
        "as firewalld 1.3 writes it: every flow comes in where its source is routed.",
        (
            NM,
            Nft(
                "table inet rpf {\n chain filter_PREROUTING {\n"
                "  type filter hook prerouting priority filter + 10; policy accept;\n"
                "  icmpv6 type { nd-router-advert, nd-neighbor-solicit } accept\n"
                "  meta nfproto ipv6 fib saddr . mark . iif oif missing drop\n }\n}\n",
                "firewalld's filter_PREROUTING",
            ),
        ),
        expect(V4_OK_MASQ, V6_OK_PLAIN),
        verdict="ok",
    ),
    Scenario(
        "nm_iptables_only",
        "NetworkManager with firewall-backend=iptables: nm-sh-fw-hs0 / nm-sh-in-hs0 chains.",
        (NM_IPT,),
        expect(V4_OK_MASQ, V6_OK_PLAIN),
        verdict="ok",
    ),
    # --- Docker <= 27 ----------------------------------------------------------------------------
    Scenario(
        "nm_nft_docker27",
        "NM (nftables) + Docker <=27 via iptables-nft: FORWARD policy DROP, DOCKER-USER RETURN.",
        (NM, D27),
        expect(V4_FWD_DROP, V6_OK_PLAIN),
        verdict="blocked",
        blocked_by="docker",
        notes="NM's accept is final only for its own base chain; iptables' FORWARD DROP still "
        "applies to hs0 traffic.",
    ),
    Scenario(
        "nm_nft_docker27_seed_fix",
        "Docker <=27 + the seed's fix: DOCKER-USER -i hs0 ACCEPT and -o hs0 ACCEPT (inserted).",
        (NM, D27, *SEED_FIX),
        expect(V4_OK_MASQ, V6_OK_PLAIN),
        verdict="ok",
    ),
    Scenario(
        "nm_nft_docker27_fix_after_return",
        "Docker <=27 + the fix APPENDED to DOCKER-USER, i.e. after Docker's -j RETURN: no effect.",
        (
            NM,
            D27,
            ipt("-A", "DOCKER-USER", "-i", "hs0", "-j", "ACCEPT"),
            ipt("-A", "DOCKER-USER", "-o", "hs0", "-j", "ACCEPT"),
        ),
        expect(V4_FWD_DROP, V6_OK_PLAIN),
        verdict="blocked",
        blocked_by="docker",
    ),
    Scenario(
        "nm_nft_docker27_legacy",
        "NM (nftables) + Docker <=27 through iptables-legacy (x_tables, not nf_tables).",
        (NM, D27_LEGACY),
        expect(V4_FWD_DROP, V6_OK_PLAIN),
        verdict="blocked",
        blocked_by="docker",
        notes="The legacy filter table's FORWARD DROP is its own hook: invisible to `nft list`.",
    ),
    Scenario(
        "nm_nft_docker27_legacy_seed_fix",
        "Docker <=27 via iptables-legacy + the seed's fix with iptables-legacy.",
        (
            NM,
            D27_LEGACY,
            ipt("-I", "DOCKER-USER", "-i", "hs0", "-j", "ACCEPT", tool="iptables-legacy"),
            ipt("-I", "DOCKER-USER", "-o", "hs0", "-j", "ACCEPT", tool="iptables-legacy"),
        ),
        expect(V4_OK_MASQ, V6_OK_PLAIN),
        verdict="ok",
    ),
    Scenario(
        "nm_iptables_docker27",
        "NM's iptables backend (jump to nm-sh-fw-hs0 inside FORWARD) + Docker <=27: survives.",
        (D27, NM_IPT),
        expect(V4_OK_MASQ, V6_OK_PLAIN),
        verdict="ok",
        notes="NM's ACCEPT happens inside the same FORWARD chain, before the DROP policy.",
    ),
    Scenario(
        "nm_nft_docker27_v4_v6",
        "NM + Docker 27 with ip6tables (default since 27): FORWARD DROP for IPv4 and IPv6.",
        (NM, D27, D27_V6),
        expect(V4_FWD_DROP, V6_FWD_DROP),
        verdict="blocked",
        blocked_by="docker",
    ),
    # --- Docker 28 -------------------------------------------------------------------------------
    Scenario(
        "nm_nft_docker28",
        "The seed: NM (nftables) + Docker 28 (DOCKER-FORWARD / DOCKER-CT / DOCKER-BRIDGE).",
        (NM, D28),
        expect(V4_FWD_DROP, V6_OK_PLAIN),
        verdict="blocked",
        blocked_by="docker",
    ),
    Scenario(
        "nm_nft_docker28_seed_fix",
        "Docker 28 + the seed's fix (iptables -I DOCKER-USER -i hs0 / -o hs0 -j ACCEPT).",
        (NM, D28, *SEED_FIX),
        expect(V4_OK_MASQ, V6_OK_PLAIN),
        verdict="ok",
    ),
    Scenario(
        "nm_nft_docker28_fix_in_only",
        "Docker 28 + only half of the fix (-i hs0): requests leave, replies are dropped.",
        (NM, D28, SEED_FIX[0]),
        expect(V4_OK_MASQ, reply=False, **V6_OK_PLAIN),
        verdict="blocked",
        blocked_by="docker",
    ),
    Scenario(
        "nm_nft_docker28_fix_wrong_iface",
        "Docker 28 + the seed's fix copied literally (wlp3s0, not the hotspot's hs0).",
        (
            NM,
            D28,
            ipt("-I", "DOCKER-USER", "-i", "wlp3s0", "-j", "ACCEPT"),
            ipt("-I", "DOCKER-USER", "-o", "wlp3s0", "-j", "ACCEPT"),
        ),
        expect(V4_FWD_DROP, V6_OK_PLAIN),
        verdict="blocked",
        blocked_by="docker",
    ),
    Scenario(
        "nm_nft_docker28_least_privilege_fix",
        "Docker 28 + a least-privilege fix: -i hs0 -s 10.42.0.0/24 -o up0 ACCEPT and "
        "-o hs0 ctstate RELATED,ESTABLISHED ACCEPT.",
        (
            NM,
            D28,
            ipt(
                "-I", "DOCKER-USER", "-i", "hs0", "-s", "10.42.0.0/24", "-o", "up0", "-j", "ACCEPT"
            ),
            ipt(
                "-I",
                "DOCKER-USER",
                "-o",
                "hs0",
                "-m",
                "conntrack",
                "--ctstate",
                "RELATED,ESTABLISHED",
                "-j",
                "ACCEPT",
            ),
        ),
        expect(V4_OK_MASQ, V6_OK_PLAIN),
        verdict="ok",
    ),
    Scenario(
        "nm_nft_docker28_v6_fix_v4_only",
        "Docker 28 for IPv4 and IPv6, the seed's fix applied with iptables only (not ip6tables).",
        (NM, D28, D28_V6, *SEED_FIX),
        expect(V4_OK_MASQ, V6_FWD_DROP),
        blocked_by="docker",
    ),
    Scenario(
        "nm_nft_docker28_v6_fixed_both",
        "Docker 28 for IPv4 and IPv6, the seed's fix applied with iptables and ip6tables.",
        (NM, D28, D28_V6, *SEED_FIX, *SEED_FIX_V6),
        expect(V4_OK_MASQ, V6_OK_PLAIN),
        verdict="ok",
    ),
    Scenario(
        "nm_nft_docker28_accept_in_earlier_chain",
        "Docker 28 + an own inet forward chain at priority -10 accepting hs0: not enough.",
        (NM, D28, nft_file("forward-accept-hotspot-earlier.nft")),
        expect(V4_FWD_DROP, V6_OK_PLAIN),
        verdict="blocked",
        blocked_by="docker",
        notes="accept ends only the current base chain; the FORWARD DROP at priority 0 follows.",
    ),
    # --- Docker 29, nftables backend -------------------------------------------------------------
    Scenario(
        "nm_nft_docker29_nft_policy_drop",
        "NM + Docker 29 firewall-backend nftables, filter-FORWARD policy drop (it set ip_forward).",
        (NM, nft_file("docker29-policy-drop.nft")),
        expect(V4_FWD_DROP, V6_OK_PLAIN),
        verdict="blocked",
        blocked_by="docker",
    ),
    Scenario(
        "nm_nft_docker29_nft_policy_accept",
        "NM + Docker 29 nftables backend, policy accept: the verdict maps only know docker0.",
        (NM, nft_file("docker29-policy-accept.nft")),
        expect(V4_OK_MASQ, V6_OK_PLAIN),
        verdict="ok",
    ),
    Scenario(
        "nm_nft_docker29_migrated",
        "Docker 29 nftables (policy accept) on a host migrated from the iptables backend: "
        "Docker 28's iptables FORWARD DROP is still there until reboot.",
        (NM, nft_file("docker29-policy-accept.nft"), D28),
        expect(V4_FWD_DROP, V6_OK_PLAIN),
        verdict="blocked",
        blocked_by="docker",
    ),
    Scenario(
        "nm_nft_docker29_ip6_policy_drop",
        "Docker 29 nftables: IPv4 policy accept, ip6 docker-bridges filter-FORWARD policy drop.",
        (NM, nft_file("docker29-policy-accept.nft"), nft_file("docker29-ip6-policy-drop.nft")),
        expect(V4_OK_MASQ, V6_FWD_DROP),
        blocked_by="docker",
    ),
    # --- ufw -------------------------------------------------------------------------------------
    Scenario(
        "nm_nft_ufw_default",
        "NM + ufw enabled with defaults (deny incoming, deny routed), IPv4 and IPv6.",
        (NM, UFW, UFW6),
        expect(V4_ALL_DROP, V6_ALL_DROP, ND_OK),
        verdict="blocked",
        blocked_by="ufw",
        notes="DHCP: ufw-after-input sends udp/67 to skip-to-policy (DROP); DNS and forwarding "
        "hit the DROP policies.",
    ),
    Scenario(
        "nm_nft_ufw_hotspot_allowed",
        "NM + ufw with `allow in on hs0` for DHCP/DNS (multiport) and `route allow in on hs0 out "
        "on up0`, IPv4 and IPv6.",
        (
            NM,
            UFW,
            UFW6,
            ipt_file("ufw-user-hotspot.rules"),
            ipt_file("ufw-user-hotspot.v6.rules", ipv6=True),
        ),
        expect(V4_OK_MASQ, V6_OK_PLAIN),
        verdict="ok",
    ),
    Scenario(
        "nm_nft_ufw_services_only",
        "NM + ufw allowing DHCP/DNS on hs0 but no route rule: leases and names, no internet.",
        (
            NM,
            UFW,
            UFW6,
            ipt_file("ufw-user-services-only.rules"),
            ipt_file("ufw-user-services-only.v6.rules", ipv6=True),
        ),
        expect(V4_FWD_DROP, V6_FWD_DROP),
        verdict="blocked",
        blocked_by="ufw",
    ),
    # --- hand-written nftables ------------------------------------------------------------------
    Scenario(
        "nm_nft_inet_vmap_router",
        "NM + an inet router firewall dispatching on iifname / iifname . oifname verdict maps "
        "that include hs0 (policies drop).",
        (NM, nft_file("inet-vmap-router.nft")),
        expect(V4_OK_MASQ, V6_OK_PLAIN),
        verdict="ok",
    ),
    Scenario(
        "nm_nft_inet_vmap_router_no_hs0",
        "The same router firewall whose verdict maps never got hs0 (only lan0): all dropped.",
        (NM, nft_file("inet-vmap-router-no-hs0.nft")),
        expect(V4_ALL_DROP, V6_ALL_DROP, ND_OK),
        verdict="blocked",
    ),
    Scenario(
        "nm_nft_forward_drop_later_priority",
        "NM + an inet forward chain at priority 10, policy drop, accepting only established.",
        (NM, nft_file("forward-drop-later-priority.nft")),
        expect(V4_FWD_DROP, V6_FWD_DROP),
        verdict="blocked",
    ),
    Scenario(
        "nm_nft_netdev_ingress_hs0_drop",
        "NM + a netdev ingress chain on hs0 with policy drop: nothing from the phone arrives.",
        (NM, nft_file("netdev-ingress-hs0-drop.nft")),
        expect(V4_ALL_DROP, V6_ALL_DROP),
        verdict="blocked",
        notes="Ingress runs before everything else on the device.",
    ),
    Scenario(
        "nm_nft_netdev_ingress_hs0_dhcp_drop",
        "NM + a netdev ingress chain on hs0 dropping udp dport 67 only.",
        (NM, nft_file("netdev-ingress-hs0-dhcp-drop.nft")),
        expect(V4_OK_MASQ, V6_OK_PLAIN, dhcp=False),
        verdict="blocked",
        notes="Ingress runs before everything else on the device.",
    ),
    Scenario(
        "nm_nft_netdev_ingress_other_drop",
        "NM + a netdev ingress drop on another device (xt0): must not matter.",
        (NM, nft_file("netdev-ingress-other-drop.nft")),
        expect(V4_OK_MASQ, V6_OK_PLAIN),
        verdict="ok",
        notes="Ingress runs before everything else on the device.",
    ),
    Scenario(
        "nm_nft_input_drop_forgets_hotspot",
        "NM + an inet input filter with policy drop that forgets DHCP and DNS (forward open).",
        (NM, nft_file("input-drop-forgets-hotspot.nft")),
        expect(
            V4_OK_MASQ,
            V6_OK_PLAIN,
            dhcp=False,
            dns=False,
            dhcp6=False,
            dns6=False,
        ),
        verdict="blocked",
    ),
    Scenario(
        "nm_nft_input_drop_allows_hotspot",
        "NM + the same input filter opening udp 53/67/547 and tcp 53 on hs0.",
        (NM, nft_file("input-drop-allows-hotspot.nft")),
        expect(V4_OK_MASQ, V6_OK_PLAIN),
        verdict="ok",
    ),
    Scenario(
        "nm_nft_arch_default",
        "NM + Arch Linux's default nftables.conf (input and forward policy drop).",
        (NM, nft_file("arch-default.nft")),
        expect(V4_ALL_DROP, V6_ALL_DROP, ND_OK),
        verdict="blocked",
        notes="DNS is rejected (pkttype host), the broadcast DISCOVER falls to the drop policy.",
    ),
    # --- sysctls ---------------------------------------------------------------------------------
    Scenario(
        "nm_nft_ip_forward_off",
        "NM's table but net.ipv4.ip_forward=0.",
        (NM, Sysctl("net.ipv4.ip_forward", "0")),
        expect(V4_FWD_DROP, V6_OK_PLAIN),
        verdict="blocked",
    ),
    Scenario(
        "nm_nft_ipv6_forwarding_off",
        "NM's table with net.ipv6.conf.all.forwarding=0 (IPv4 fine).",
        (NM, Sysctl("net.ipv6.conf.all.forwarding", "0")),
        expect(V4_OK_MASQ, V6_FWD_DROP, rs6=False),
        notes="A host that does not forward IPv6 is no router: it leaves ff02::2, so router "
        "solicitations reach no one.",
    ),
    Scenario(
        "nm_nft_hotspot_iface_forwarding_off",
        "NM's table, global forwarding on but net.ipv4.conf.hs0.forwarding=0.",
        (NM, Sysctl("net.ipv4.conf.hs0.forwarding", "0")),
        expect(V4_FWD_DROP, V6_OK_PLAIN),
        verdict="blocked",
        notes="IPv4 forwards only what arrives on an interface with forwarding on.",
    ),
    Scenario(
        "nm_nft_uplink_iface_forwarding_off",
        "NM's table, net.ipv4.conf.up0.forwarding=0: requests leave, replies are not forwarded.",
        (NM, Sysctl("net.ipv4.conf.up0.forwarding", "0")),
        expect(V4_OK_MASQ, V6_OK_PLAIN, reply=False),
        verdict="blocked",
        notes="The SYN-ACK arrives on up0 (de-masqueraded to 10.42.0.10) and must be forwarded "
        "from up0.",
    ),
    # --- raw / conntrack / nat -------------------------------------------------------------------
    Scenario(
        "nm_nft_raw_ct_invalid_drop",
        "NM + `ct state invalid drop` in a prerouting chain at priority raw (-300).",
        (NM, nft_file("raw-ct-invalid-drop.nft")),
        expect(V4_ALL_DROP, V6_OK_PLAIN),
        verdict="blocked",
        notes="Before conntrack (-200) no packet has a ct entry: ct state reads as invalid.",
    ),
    Scenario(
        "nm_nft_filter_ct_invalid_drop",
        "NM + the same `ct state invalid drop` at priority filter (after conntrack): harmless.",
        (NM, nft_file("filter-ct-invalid-drop.nft")),
        expect(V4_OK_MASQ, V6_OK_PLAIN),
        verdict="ok",
    ),
    Scenario(
        "nm_nft_raw_notrack_hs0",
        "NM + `iifname hs0 notrack` at priority raw: no masquerade, and the SYN-ACK is not "
        "established.",
        (NM, nft_file("raw-notrack-hs0.nft")),
        expect(V4_OK_PLAIN, V6_OK_PLAIN, reply=False),
        verdict="blocked",
        notes="Untracked packets skip NAT; the SYN-ACK opens no valid conntrack entry (invalid), "
        "so NM's `oifname hs0 reject` catches it.",
    ),
    Scenario(
        "nat_only_no_masquerade",
        "Only a nat table (a DNAT and an SNAT for another subnet), no masquerade for the hotspot.",
        (nft_file("nat-only-no-masquerade.nft"),),
        expect(V4_OK_PLAIN, V6_OK_PLAIN),
        notes="Delivered unmasqueraded: the lab's internet routes 10.42.0.0/24 back.",
    ),
    # --- IPv6 tables -----------------------------------------------------------------------------
    Scenario(
        "nm_nft_ip6_forward_drop",
        "NM + an ip6 filter table with forward policy drop.",
        (NM, nft_file("ip6-forward-drop.nft")),
        expect(V4_OK_MASQ, V6_FWD_DROP),
    ),
    Scenario(
        "nm_nft_ip6_hotspot_nat66",
        "NM + an ip6 twin of NM's table (NAT66 masquerade, forward policy drop).",
        (NM, nft_file("ip6-hotspot-nat66.nft")),
        expect(V4_OK_MASQ, V6_OK_MASQ),
        verdict="ok",
    ),
    # --- IPv6 router and neighbour discovery ------------------------------------------------------
    Scenario(
        "nm_nft_nd_input_drop",
        "NM + an input filter opening DHCP/DNS/DHCPv6 but no ICMPv6: RS/NS/NA from the phone die.",
        (NM, nft_file("nd-input-drop.nft")),
        expect(V4_OK_MASQ, V6_OK_PLAIN, ND_INPUT_DROP),
        verdict="blocked",
        notes="Before discovery flows were modelled this read as ok: the phone had no SLAAC "
        "address and could not resolve its router.",
        tags=("ipv6-discovery",),
    ),
    Scenario(
        "nm_nft_nd_input_allowed_hoplimit",
        "NM + the same filter accepting RS/NS/NA with hop limit 255 (RFC 4890).",
        (NM, nft_file("nd-input-allowed.nft")),
        expect(V4_OK_MASQ, V6_OK_PLAIN),
        verdict="ok",
        tags=("ipv6-discovery",),
    ),
    Scenario(
        "nm_nft_nd_output_drop",
        "NM + an egress filter letting out tracked replies and DHCP/DNS answers only: RA/NS/NA "
        "from the host are untracked and dropped.",
        (NM, nft_file("nd-output-drop.nft")),
        expect(V4_OK_MASQ, V6_OK_PLAIN, ND_OUTPUT_DROP),
        verdict="blocked",
        tags=("ipv6-discovery",),
    ),
    Scenario(
        "nm_nft_nd_output_untracked_allowed",
        "NM + the egress filter also accepting `ct state untracked`: discovery leaves.",
        (NM, nft_file("nd-output-untracked-allowed.nft")),
        expect(V4_OK_MASQ, V6_OK_PLAIN),
        verdict="ok",
        tags=("ipv6-discovery",),
    ),
    Scenario(
        "nm_nft_nd_hoplimit_255_drop",
        "NM + `ip6 hoplimit 255 drop` on input, and RAs dropped on output unless hop limit 255.",
        (NM, nft_file("nd-hoplimit-255-drop.nft")),
        expect(V4_OK_MASQ, V6_OK_PLAIN, ND_INPUT_DROP),
        verdict="blocked",
        notes="DHCPv6 (multicast, hop limit 1) and DNS (64) pass; discovery needs 255.",
        tags=("ipv6-discovery",),
    ),
    Scenario(
        "nm_nft_nd_raw_ct_invalid_drop",
        "NM + ip6 `ct state invalid drop` at priority raw on prerouting and on RA/NA output.",
        (NM, nft_file("nd-raw-ct-invalid-drop.nft")),
        expect(V4_OK_MASQ, V6_ALL_DROP, ra6=False, na6_out=False),
        verdict="blocked",
        notes="Before conntrack every packet reads as invalid; after it, discovery is untracked.",
        tags=("ipv6-discovery",),
    ),
    Scenario(
        "nm_nft_nd_th_sport",
        "NM + `th sport` matches on input and output: for ICMPv6 the first 16 bits are type "
        "and code (RS 133 = 34048 on input, RA 134 = 34304 on output).",
        (
            NM,
            Nft(
                "table inet t {\n chain i {\n type filter hook input priority 0;\n"
                " th sport 34048 drop\n }\n chain o {\n"
                " type filter hook output priority 0;\n th sport 34304 drop\n }\n}\n",
                source="<th sport>",
            ),
        ),
        expect(V4_OK_MASQ, V6_OK_PLAIN, rs6=False, ra6=False),
        expect_unknown=frozenset({"dns", "dns6"}),
        notes="A DNS query's source port is one of the ephemeral ports, which hold 34048: "
        "unknown. The lab's host sends no RAs, so RS/RA only inform.",
        tags=("ipv6-discovery",),
    ),
    Scenario(
        "nm_nft_nd_ip6tables_icmp6_hl",
        "NM + ip6tables-nft: RS and NA dropped by type number and name, NS accepted with "
        "`-m hl --hl-eq 255`, RAs dropped by name on output, `! --hl-eq 255` on output.",
        (NM, ipt_file("nd-drop.v6.rules", ipv6=True)),
        expect(V4_OK_MASQ, V6_OK_PLAIN, rs6=False, na6_in=False, ra6=False),
        verdict="blocked",
        tags=("ipv6-discovery",),
    ),
    Scenario(
        "nm_nft_nd_ip6tables_legacy",
        "NM + the same rules through ip6tables-legacy.",
        (NM, ipt_file("nd-drop.v6.rules", ipv6=True, legacy=True)),
        expect(V4_OK_MASQ, V6_OK_PLAIN, rs6=False, na6_in=False, ra6=False),
        verdict="blocked",
        tags=("ipv6-discovery",),
    ),
    # --- a real dockerd --------------------------------------------------------------------------
    Scenario(
        "docker_real_boot_order",
        "A real dockerd (Debian docker.io) started while ip_forward=0, then NM's hotspot.",
        (NM, Sysctl("net.ipv4.ip_forward", "1")),
        expect(V4_FWD_DROP, V6_OK_PLAIN),
        verdict="blocked",
        blocked_by="docker",
        docker=True,
        context=_dockerd_at_boot,
    ),
    Scenario(
        "nm_nft_big_sets_server_in_a_range",
        "NM + an inet table with sets of thousands of prefixes, ranges, ports and address . "
        "port pairs (the engine's compact form); the internet server is in a range of the "
        "forward blocklist.",
        (NM, _big_sets("blocklist")),
        expect(V4_FWD_DROP, V6_OK_PLAIN),
        verdict="blocked",
    ),
    Scenario(
        "nm_nft_big_sets_server_in_a_pair",
        "The same big sets; the server's address . port is one of 1,001 pairs.",
        (NM, _big_sets("pairs")),
        expect(V4_FWD_DROP, V6_OK_PLAIN),
        verdict="blocked",
    ),
    Scenario(
        "docker_real_forwarding_preset",
        "A real dockerd started with ip_forward already 1: it leaves FORWARD's policy ACCEPT.",
        (NM,),
        expect(V4_OK_MASQ, V6_OK_PLAIN),
        verdict="ok",
        docker=True,
        context=_dockerd_forwarding_on,
    ),
    Scenario(
        "docker_real_seed_fix",
        "A real dockerd (FORWARD DROP) + the seed's DOCKER-USER fix after it started.",
        (NM, Sysctl("net.ipv4.ip_forward", "1"), *SEED_FIX),
        expect(V4_OK_MASQ, V6_OK_PLAIN),
        verdict="ok",
        docker=True,
        context=_dockerd_at_boot,
    ),
]

BY_NAME = {s.name: s for s in SCENARIOS}
assert len(BY_NAME) == len(SCENARIOS), "duplicate scenario names"
