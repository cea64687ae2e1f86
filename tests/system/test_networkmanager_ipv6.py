"""A real NetworkManager 1.42 sharing IPv6 (`ipv6.method=shared`, a /64 delegated by the
uplink's DHCPv6 server): what it serves is read from the live machine, the phone takes its
address by SLAAC, and the verdict follows what really happens to the phone."""

from __future__ import annotations

import ipaddress
import json
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.lab import _which
from tests.nmlab import DELEGATED_PREFIX, NmLab, nm_lab_session, nm_lab_unavailable_reason

pytestmark = pytest.mark.kernel

DISCOVERY = ("rs6", "ra6", "ns6_in", "na6_out", "ns6_out", "na6_in")

# the phone asks the host's hotspot address (UDP to the discard port): the port-unreachable that
# comes back proves neighbour discovery both ways and the host's input and output
_ROUND_TRIP = """
import socket, sys
s = socket.socket(socket.AF_INET6, socket.SOCK_DGRAM)
s.settimeout(2)
s.connect((sys.argv[1], 9))
s.send(b"x")
try:
    s.recv(10)
except ConnectionRefusedError:
    print("answered")
except OSError as error:
    print(f"silent: {error}")
"""


@pytest.fixture(scope="module")
def shared6() -> Iterator[NmLab]:
    reason = nm_lab_unavailable_reason()
    if reason:
        pytest.skip(reason)
    if _which("dhcpd") is None:
        pytest.skip("sharing IPv6 needs ISC dhcpd -6 (isc-dhcp-server) for prefix delegation")
    with nm_lab_session() as lab:
        lab.share_ipv6()
        lab.up("uplink")
        lab.up("hotspot")
        yield lab


def _wait_phone_address(lab: NmLab, timeout: float = 20) -> list[str]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = lab.phone_ipv6()
        if found:
            return found
        time.sleep(0.2)
    return []


def _explain(lab: NmLab, tmp_path: Path) -> dict[str, Any]:
    snap = lab.host_run([sys.executable, "-m", "hotspotguard", "snapshot", "--iface", "hs0"])
    path = tmp_path / "snapshot.json"
    path.write_text(snap.stdout)
    proc = subprocess.run(
        [sys.executable, "-m", "hotspotguard", "explain", "--snapshot", str(path), "--json"],
        capture_output=True, text=True, check=False,
    )  # fmt: skip
    assert proc.returncode in (0, 1), proc.stderr
    doc = json.loads(proc.stdout)
    hotspot: dict[str, Any] = doc["hotspots"][0]
    hotspot["snapshot"] = json.loads(snap.stdout)
    return hotspot


def _round_trip(lab: NmLab, address: str) -> str:
    proc = subprocess.run(
        ["ip", "netns", "exec", lab.phone, sys.executable, "-c", _ROUND_TRIP, address],
        capture_output=True, text=True, check=False, timeout=10,
    )  # fmt: skip
    return proc.stdout.strip()


def test_the_phone_takes_its_address_by_slaac_and_the_verdict_says_ok(
    shared6: NmLab, tmp_path: Path
) -> None:
    phone = _wait_phone_address(shared6)
    assert phone, f"the phone got no IPv6 address\n{shared6.logs()}"
    prefix = ipaddress.ip_network(DELEGATED_PREFIX)
    assert ipaddress.ip_interface(phone[0]).ip in prefix  # SLAAC from the delegated /64
    (gateway,) = shared6.host_ipv6("hs0")
    assert ipaddress.ip_interface(gateway).ip in prefix
    assert _round_trip(shared6, str(ipaddress.ip_interface(gateway).ip)) == "answered"

    hotspot = _explain(shared6, tmp_path)
    # read from NM's settings (ipv6.method=shared: it advertises) and its dnsmasq's command line
    # (IPv4 listen address only, no IPv6 range)
    assert hotspot["snapshot"]["hotspots"][0]["ipv6_services"] == ["ra"]
    assert hotspot["ipv6_services"]["served"] == ["ra"]
    assert hotspot["ipv6_services"]["source"] == "snapshot"
    flows = hotspot["flows"]
    assert flows["dhcp6"]["informative"] and flows["dns6"]["informative"]
    assert all(flows[f]["verdict"] == "accept" and not flows[f]["informative"] for f in DISCOVERY)
    assert hotspot["verdict"] == "ok", hotspot["summary"]


def test_dhcpv6_dropped_on_input_is_not_blocked(shared6: NmLab, tmp_path: Path) -> None:
    """The issue's false alarm: NM serves no DHCPv6, so dropping 547 changes nothing."""
    rules = (
        "table inet hg_test {\n chain input {\n"
        " type filter hook input priority 0; policy accept;\n udp dport 547 drop\n }\n}\n"
    )
    shared6.host_run(["nft", "-f", "-"], input=rules)
    try:
        hotspot = _explain(shared6, tmp_path)
        assert hotspot["flows"]["dhcp6"]["verdict"] == "drop"
        assert hotspot["verdict"] == "ok", hotspot["summary"]
        assert _wait_phone_address(shared6)
    finally:
        shared6.host_run(["nft", "delete", "table", "inet", "hg_test"])


def test_router_advertisements_dropped_on_output_block_and_the_phone_gets_no_address(
    shared6: NmLab, tmp_path: Path
) -> None:
    """The issue's false ok: an output chain dropping RAs leaves a new phone without IPv6."""
    rules = (
        "table inet hg_test {\n chain output {\n"
        " type filter hook output priority 0; policy accept;\n"
        ' oifname "hs0" icmpv6 type nd-router-advert drop\n }\n}\n'
    )
    shared6.host_run(["nft", "-f", "-"], input=rules)
    try:
        hotspot = _explain(shared6, tmp_path)
        assert hotspot["flows"]["ra6"]["verdict"] == "drop"
        assert hotspot["verdict"] == "blocked"
        assert hotspot["blocked_flow"] == "ra6"
        # a phone that joins now (its link goes down and up: its addresses are gone, it
        # solicits): NM's answers never leave the host
        _rejoin(shared6)
        assert _wait_phone_address(shared6, timeout=4) == []
    finally:
        shared6.host_run(["nft", "delete", "table", "inet", "hg_test"])
    _rejoin(shared6)
    assert _wait_phone_address(shared6), "the phone got its address back once RAs flowed"


def _rejoin(lab: NmLab) -> None:
    for state in ("down", "up"):
        subprocess.run(["ip", "-n", lab.phone, "link", "set", "ph0", state], check=True)
