"""Reading what a hotspot serves over IPv6 from dnsmasq's options and NetworkManager's files."""

from __future__ import annotations

import ipaddress
import os
import subprocess
import sys
from pathlib import Path

from hotspotguard.system import served
from hotspotguard.system.served import Process, dnsmasq_options, dnsmasq_services

ADDRS = [ipaddress.ip_interface(a) for a in ("10.42.0.1/24", "2001:db8:42::1/64", "fe80::1/64")]

# NetworkManager 1.42's dnsmasq sharing IPv4 and IPv6 (ipv6.method=shared), as `ps` showed it
# in the NetworkManager lab (tests/nmlab.py)
NM_ARGV = (
    "/usr/sbin/dnsmasq",
    "--conf-file=/dev/null",
    "--no-hosts",
    "--keep-in-foreground",
    "--bind-interfaces",
    "--except-interface=lo",
    "--clear-on-reload",
    "--strict-order",
    "--listen-address=10.42.0.1",
    "--dhcp-range=10.42.0.10,10.42.0.254,60m",
    "--dhcp-leasefile=/var/lib/NetworkManager/dnsmasq-hs0.leases",
    "--pid-file=/run/nm-dnsmasq-hs0.pid",
    "--conf-dir=/etc/NetworkManager/dnsmasq-shared.d",
)


def services(*argv: str) -> set[str]:
    proc = Process(os.getpid(), "dnsmasq", ("dnsmasq", "--conf-file=/dev/null", *argv))
    return dnsmasq_services(dnsmasq_options(proc), "hs0", ADDRS)


def test_networkmanagers_dnsmasq_serves_nothing_over_ipv6() -> None:
    proc = Process(os.getpid(), "dnsmasq", NM_ARGV)
    assert dnsmasq_services(dnsmasq_options(proc), "hs0", ADDRS) == set()


def test_a_dnsmasq_on_the_interface_with_an_ipv6_range() -> None:
    assert services("--interface=hs0", "--dhcp-range=2001:db8:42::100,2001:db8:42::200,64") == {
        "dhcp6",
        "dns6",
    }
    assert services("--interface=hs0", "--port=0") == set()
    assert services("--interface=wl*", "--dhcp-range=::100,::200,constructor:hs0") == set()
    assert services("--dhcp-range=::100,::200,constructor:hs*,ra-only") == {"ra", "dns6"}
    assert services(
        "--listen-address=2001:db8:42::1",
        "--enable-ra",
        "--dhcp-range=::1,::400,constructor:hs0,slaac",
    ) == {"ra", "dhcp6", "dns6"}
    assert services("--except-interface=hs0") == set()


def test_conf_dir_files_are_read_as_the_daemon_sees_them(tmp_path: Path) -> None:
    conf = tmp_path / "shared.d"
    conf.mkdir()
    (conf / "v6.conf").write_text("# IPv6 too\ndhcp-range=::100,::1ff,constructor:hs0\nenable-ra\n")
    (conf / "skip.conf~").write_text("port=0\n")
    argv = (*NM_ARGV[:-1], f"--conf-dir={conf}")
    proc = Process(os.getpid(), "dnsmasq", argv)
    assert dnsmasq_services(dnsmasq_options(proc), "hs0", ADDRS) == {"ra", "dhcp6"}


def test_only_daemons_of_this_network_namespace_count() -> None:
    sleeper = subprocess.Popen(
        ["unshare", "-n", sys.executable, "-c", "import time; time.sleep(30)"]
    )
    try:
        mine = served.processes({"python3", "python", Path(sys.executable).name[:15]})
        assert os.getpid() in {p.pid for p in mine}
        assert sleeper.pid not in {p.pid for p in mine}
    finally:
        sleeper.kill()
        sleeper.wait()
