"""Route lookups (`fib … oif`, `-m rpfilter`) decided from the snapshot's routes: the hotspot's
flows, the DHCP discover's 0.0.0.0 source, and `unknown` with the reason where the snapshot has
no routes or policy rules select packets. The kernel differential checks them against real
packets (tests/kernel)."""

from __future__ import annotations

from typing import Any

import pytest

from hotspotguard.ruleset import load_snapshot, parse_ruleset
from hotspotguard.ruleset.routes import UNDECIDED, parse_routing
from hotspotguard.ruleset.snapshot import SnapshotError
from hotspotguard.verdict import evaluate
from tests.helpers import DROP, chain, document, match, nft_doc, rule, table
from tests.verdict.test_engine import nm_shared

DEFAULT_RULES_4 = [
    {"priority": 0, "src": "all", "table": "local"},
    {"priority": 32766, "src": "all", "table": "main"},
    {"priority": 32767, "src": "all", "table": "default"},
]
ROUTES_4 = [
    {"dst": "default", "gateway": "198.51.100.1", "dev": "up0", "flags": []},
    {"dst": "10.42.0.0/24", "dev": "hs0", "protocol": "kernel", "scope": "link"},
    {"dst": "198.51.100.0/24", "dev": "up0", "protocol": "kernel", "scope": "link"},
    {"type": "local", "dst": "10.42.0.1", "dev": "hs0", "table": "local"},
    {"type": "local", "dst": "198.51.100.2", "dev": "up0", "table": "local"},
    {"type": "broadcast", "dst": "10.42.0.255", "dev": "hs0", "table": "local"},
]
ROUTING = {"ip": {"routes": ROUTES_4, "rules": DEFAULT_RULES_4}}


def fib(flags: list[str], result: str = "oif") -> dict[str, Any]:
    return {"fib": {"result": result, "flags": flags}}


def verdicts(hook: str, *exprs: dict[str, Any], routing: Any = ROUTING) -> dict[str, Any]:
    doc = document(
        nft_doc(
            *nm_shared(),
            table("t"),
            chain("t", "c", hook, prio=-150 if hook == "prerouting" else 0),
            rule("t", "c", *exprs),
        ),
        uplink_addresses={"up0": ["198.51.100.2/24"]},
        **({"routing": routing} if routing is not None else {}),
    )
    snapshot = load_snapshot(doc)
    (hotspot,) = evaluate(snapshot, parse_ruleset(snapshot)).hotspots
    return {name: (flow.verdict, flow.reason) for name, flow in hotspot.flows.items()}


def only(result: dict[str, Any]) -> dict[str, str]:
    return {name: verdict for name, (verdict, _) in result.items()}


def test_strict_reverse_path_passes_every_hotspot_flow() -> None:
    # firewalld's and the nft wiki's rpfilter: the DHCP discover from 0.0.0.0 passes (no
    # lookup for a zeronet source to the broadcast), the rest have their routes back
    result = verdicts("prerouting", match(fib(["saddr", "iif", "mark"]), False), DROP)
    assert set(only(result).values()) == {"accept"}


def test_daddr_lookup_of_a_local_address_finds_no_device() -> None:
    # "Should not see RTN_LOCAL here": `fib daddr oif` of the host's own address is 0
    result = only(verdicts("prerouting", match(fib(["daddr"]), False), DROP))
    assert result["dns"] == "drop"
    assert result["dhcp"] == "accept"  # 0.0.0.0 to the broadcast: the input device
    assert result["outbound"] == "accept"  # the default route
    assert result["reply"] == "drop"  # before de-NAT its destination is the uplink's address


def test_oifname_and_exists() -> None:
    result = only(verdicts("forward", match(fib(["daddr"], "oifname"), "up0"), DROP))
    assert result["outbound"] == "drop" and result["reply"] == "accept"
    result = only(verdicts("forward", match(fib(["daddr", "oif"]), True), DROP))
    assert result["outbound"] == "drop" and result["reply"] == "drop"
    result = only(verdicts("forward", match(fib(["saddr", "iif"]), "0"), DROP))
    assert result["outbound"] == "accept" and result["reply"] == "accept"


def test_no_route_back_drops() -> None:
    routes = [r for r in ROUTES_4 if r["dst"] != "default"]
    routing = {"ip": {"routes": routes, "rules": DEFAULT_RULES_4}}
    result = only(
        verdicts("prerouting", match(fib(["saddr", "iif"]), False), DROP, routing=routing)
    )
    assert result["reply"] == "drop" and result["outbound"] == "accept"


def test_without_routes_unknown_with_the_reason() -> None:
    result = verdicts("prerouting", match(fib(["daddr"]), False), DROP, routing=None)
    verdict, reason = result["outbound"]
    assert verdict == "unknown"
    assert "no routes" in reason


def test_without_routes_a_reverse_path_check_passes_by_construction() -> None:
    # every flow comes in where its source is routed (firewalld's rpfilter in an older
    # snapshot): decided, as with the routes
    result = verdicts("prerouting", match(fib(["saddr", "iif", "mark"]), False), DROP, routing=None)
    assert set(only(result).values()) == {"accept"}


def test_policy_rules_that_select_packets_make_lookups_unknown() -> None:
    rules = [*DEFAULT_RULES_4, {"priority": 100, "src": "all", "fwmark": "0x1", "table": "7"}]
    routing = {"ip": {"routes": ROUTES_4, "rules": rules}}
    result = verdicts("prerouting", match(fib(["saddr", "iif"]), False), DROP, routing=routing)
    verdict, reason = result["outbound"]
    assert verdict == "unknown" and "policy routing" in reason
    # a code, not a route table's sentence: the applet words it in the person's language
    assert (reason.code, reason.params) == ("routes-policy-rules", {})


def test_a_full_internet_table_is_not_read_and_says_so() -> None:
    from hotspotguard.ruleset.routes import MAX_ROUTES

    many = [{"dst": f"{n >> 16}.{n >> 8 & 255}.{n & 255}.0/24", "dev": "up0"}
            for n in range(MAX_ROUTES + 1)]  # fmt: skip
    routing = {"ip": {"routes": many, "rules": DEFAULT_RULES_4}}
    result = verdicts("prerouting", match(fib(["saddr", "iif"]), False), DROP, routing=routing)
    verdict, reason = result["outbound"]
    assert verdict == "unknown"
    assert (reason.code, reason.params) == ("routes-too-many", {"limit": MAX_ROUTES})
    assert reason.startswith(f"the host has more than {MAX_ROUTES:,} routes")


@pytest.mark.parametrize(
    ("line", "dhcp", "outbound", "reply"),
    [
        ("-A PREROUTING -m rpfilter -j DROP", "drop", "drop", "drop"),
        ("-A PREROUTING -m rpfilter --invert -j DROP", "accept", "accept", "accept"),
        ("-A PREROUTING -s 10.42.0.10 -m rpfilter --loose -j DROP", "accept", "drop", "accept"),
    ],
)
def test_iptables_rpfilter(line: str, dhcp: str, outbound: str, reply: str) -> None:
    save = f"*raw\n:PREROUTING ACCEPT [0:0]\n{line}\nCOMMIT\n"
    doc = document(
        nft_doc(*nm_shared()),
        uplink_addresses={"up0": ["198.51.100.2/24"]},
        routing=ROUTING,
        iptables_legacy_save=save,
    )
    snapshot = load_snapshot(doc)
    (hotspot,) = evaluate(snapshot, parse_ruleset(snapshot)).hotspots
    got = {n: f.verdict for n, f in hotspot.flows.items()}
    assert (got["dhcp"], got["outbound"], got["reply"]) == (dhcp, outbound, reply)


def test_ipv6_link_local_lookup_is_by_device() -> None:
    routing = parse_routing(
        {
            "ip6": {
                "routes": [
                    {"dst": "fe80::/64", "dev": "hs0", "metric": 256},
                    {"dst": "fe80::/64", "dev": "up0", "metric": 256},
                    {"dst": "default", "dev": "up0", "gateway": "fe80::1", "metric": 1024},
                ],
                "rules": [
                    {"priority": 0, "src": "all", "table": "local"},
                    {"priority": 32766, "src": "all", "table": "main"},
                ],
            }
        }
    )["ip6"]
    import ipaddress

    client = ipaddress.IPv6Address("fe80::10")
    found = routing.lookup(client, "hs0", strict=True)
    assert found is not None and found is not UNDECIDED
    assert found.devices == ("hs0",)  # type: ignore[union-attr]
    assert routing.lookup(client) is UNDECIDED  # which of the two: by source address


@pytest.mark.parametrize(
    "routing",
    [
        [],
        {"ipx": {"routes": [], "rules": []}},
        {"ip": {"routes": [{"dst": "nowhere"}], "rules": []}},
        {"ip": {"routes": [{"dst": "2001:db8::/32"}], "rules": []}},
        {"ip": {"routes": []}},
    ],
)
def test_bad_routing_is_a_clear_error(routing: Any) -> None:
    with pytest.raises(SnapshotError):
        load_snapshot(document(routing=routing))


def test_lookup_longest_prefix_metric_throw_and_tables() -> None:
    import ipaddress

    rules = [*DEFAULT_RULES_4]
    routes = [
        {"dst": "default", "dev": "up0", "metric": 600},
        {"dst": "default", "dev": "wl0", "metric": 100},
        {"dst": "203.0.113.0/24", "dev": "vpn0"},
        {"dst": "203.0.113.128/25", "type": "throw"},
        {"dst": "203.0.113.128/25", "dev": "up0", "table": "default"},
        {"dst": "198.51.100.0/24", "type": "blackhole"},
    ]
    routing = parse_routing({"ip": {"routes": routes, "rules": rules}})["ip"]

    def devices(address: str) -> object:
        found = routing.lookup(ipaddress.IPv4Address(address))
        return getattr(found, "devices", found)

    assert devices("192.0.2.1") == ("wl0",)  # the lower metric of two defaults
    assert devices("203.0.113.5") == ("vpn0",)  # the longer prefix
    assert devices("203.0.113.200") == ("up0",)  # thrown on to the next rule's table
    assert devices("198.51.100.7") == ()  # a blackhole: found, and it fails the lookup
    many = {"ip": {"routes": [{"dst": "default"}] * 100_001, "rules": rules}}
    assert parse_routing(many)["ip"].lookup(ipaddress.IPv4Address("192.0.2.1")) is UNDECIDED
