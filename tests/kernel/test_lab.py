"""Tests of the oracle itself: the lab must see what the kernel does, fast, and leave no trace."""

from __future__ import annotations

import os
import subprocess
import time
from pathlib import Path

import pytest

from tests.kernel.scenarios.model import ruleset
from tests.lab import (
    ALL_FLOWS,
    DISCOVERY_FLOWS,
    PHONE_V4,
    UPLINK_V4,
    KernelFlow,
    Lab,
    LabError,
    _proc_alive,
    _run,
    _which,
    lab_unavailable_reason,
    start_dockerd,
)

pytestmark = pytest.mark.kernel

ALL_PLAIN = {f: KernelFlow(True, False if f.startswith("outbound") else None) for f in ALL_FLOWS}


def _root_state() -> dict[str, str]:
    """What the lab must never change in the root namespace."""
    cmds = {
        "links": ["ip", "-o", "link", "show"],
        "addrs": ["ip", "-o", "addr", "show"],
        "routes": ["ip", "route", "show", "table", "all"],
        "rules": ["ip", "rule", "show"],
        "nft": ["nft", "list", "ruleset"],
        "fwd": ["sysctl", "net.ipv4.ip_forward", "net.ipv6.conf.all.forwarding"],
    }
    return {k: _run(v, check=False).stdout for k, v in cmds.items()}


def _own_netns(prefix: str) -> list[str]:
    out = _run(["ip", "netns", "list"], check=False).stdout
    return [line.split()[0] for line in out.splitlines() if line.startswith(prefix + "-")]


def test_pristine_lab_delivers_everything(clean_lab: Lab) -> None:
    assert clean_lab.probe() == ALL_PLAIN


def test_discovery_probes_see_input_and_output_rules(clean_lab: Lab) -> None:
    clean_lab.load_nft(
        "table inet t {\n"
        " chain i { type filter hook input priority 0; icmpv6 type nd-router-solicit drop; }\n"
        " chain o { type filter hook output priority 0; icmpv6 type nd-neighbor-advert drop; }\n"
        "}\n"
    )
    out = clean_lab.probe(DISCOVERY_FLOWS)
    assert {f: k.delivered for f, k in out.items()} == {
        "rs6": False,
        "ra6": True,
        "ns6_in": True,
        "na6_out": False,
        "ns6_out": True,
        "na6_in": True,
    }
    clean_lab.reset()
    clean_lab.load_nft(
        "table ip6 t {\n"
        " chain i { type filter hook input priority 0; ip6 hoplimit 255 drop; }\n"
        " chain o { type filter hook output priority 0; ct state untracked drop; }\n"
        "}\n"
    )
    out = clean_lab.probe(["dns6", *DISCOVERY_FLOWS])
    assert out["dns6"].delivered
    assert not any(out[f].delivered for f in DISCOVERY_FLOWS)
    # a reject's ICMPv6 error quotes the probe, token and all: it must not count as delivered
    clean_lab.reset()
    clean_lab.load_nft(
        "table inet t {\n chain p { type filter hook prerouting priority 0; reject; }\n}\n"
    )
    out = clean_lab.probe(DISCOVERY_FLOWS)
    assert [f for f in DISCOVERY_FLOWS if out[f].delivered] == ["ra6", "na6_out", "ns6_out"]


def test_probe_decides_without_waiting_for_its_timeout(clean_lab: Lab) -> None:
    """Every flow delivered: the probe ends as soon as each is seen, not at its timeout; a drop
    waits one timeout for all flows at once, not one per flow. (Checked against a generous
    timeout, so a loaded machine does not fail it; the speed itself is a benchmark figure.)"""
    for _ in range(3):
        clean_lab.probe(timeout=5.0)
        assert (clean_lab.last_probe_seconds or 0) < 2.5, clean_lab.last_probe_seconds
    clean_lab.load_nft(
        "table inet t { chain i { type filter hook input priority 0; policy drop; }; }"
    )
    t0 = time.monotonic()
    out = clean_lab.probe(timeout=2.0)
    elapsed = time.monotonic() - t0
    assert not out["dns"].delivered
    assert elapsed < 2.0 * 2, elapsed


def test_probe_subset_and_reply_needs_outbound(clean_lab: Lab) -> None:
    assert set(clean_lab.probe(["dns6"])) == {"dns6"}
    assert clean_lab.probe(["reply"]) == {"reply": KernelFlow(True)}
    clean_lab.load_nft(
        'table ip t { chain f { type filter hook forward priority 0; iifname "hs0" drop; }; }'
    )
    assert clean_lab.probe(["outbound", "reply"]) == {
        "outbound": KernelFlow(False),
        "reply": KernelFlow(None),
    }
    with pytest.raises(ValueError):
        clean_lab.probe(["smtp"])


def test_reject_is_decided_without_waiting(clean_lab: Lab) -> None:
    # an ICMP reject makes the phone's connect() fail at once: no need to wait for the timeout
    clean_lab.load_nft(
        'table ip t { chain f { type filter hook forward priority 0; iifname "hs0" reject; }; }'
    )
    out = clean_lab.probe(["dhcp", "dns", "outbound", "reply"], timeout=5.0)
    assert out["outbound"] == KernelFlow(False) and out["reply"] == KernelFlow(None)
    assert (clean_lab.last_probe_seconds or 5) < 2.5  # half the timeout: it did not wait


def test_masquerade_and_snat_are_seen(clean_lab: Lab) -> None:
    clean_lab.load_nft(
        "table ip n { chain p { type nat hook postrouting priority srcnat; "
        'oifname "up0" snat to 198.51.100.2; }; }'
    )
    out = clean_lab.probe(["outbound", "reply"])
    assert out["outbound"] == KernelFlow(True, True)
    assert out["outbound"].seen_source == UPLINK_V4
    assert out["reply"] == KernelFlow(True)
    clean_lab.reset()
    out = clean_lab.probe(["outbound"])
    assert out["outbound"].seen_source == PHONE_V4 and out["outbound"].masqueraded is False


def test_reply_drop_is_seen(clean_lab: Lab) -> None:
    clean_lab.load_nft(
        'table ip t { chain f { type filter hook forward priority 0; oifname "hs0" drop; }; }'
    )
    out = clean_lab.probe(["outbound", "reply"])
    assert out == {"outbound": KernelFlow(True, False), "reply": KernelFlow(False)}


def test_reset_restores_a_clean_host(clean_lab: Lab) -> None:
    lab = clean_lab
    lab.load_nft("table inet t { chain f { type filter hook forward priority 0; policy drop; }; }")
    lab.load_iptables("*filter\n:FORWARD DROP [0:0]\n:X - [0:0]\n-A INPUT -j X\nCOMMIT\n")
    lab.load_iptables("*filter\n:FORWARD DROP [0:0]\nCOMMIT\n", ipv6=True)
    lab.load_iptables(
        "*filter\n:INPUT DROP [0:0]\n:Y - [0:0]\n-A INPUT -j Y\nCOMMIT\n"
        "*nat\n:POSTROUTING ACCEPT [0:0]\n-A POSTROUTING -j MASQUERADE\nCOMMIT\n",
        legacy=True,
    )
    lab.load_iptables("*filter\n:INPUT DROP [0:0]\nCOMMIT\n", ipv6=True, legacy=True)
    lab.sysctl("net.ipv4.ip_forward", "0")
    lab.sysctl("net.ipv4.conf.up0.forwarding", "0")
    lab.sysctl("net.ipv4.conf.hs0.rp_filter", "1")
    assert not lab.probe(["dns"])["dns"].delivered
    lab.reset()
    assert lab.host_run(["nft", "list", "ruleset"]).stdout.strip() == ""
    for tool in ("iptables-legacy-save", "ip6tables-legacy-save"):
        text = lab.host_run([tool]).stdout
        assert "-A " not in text and " DROP " not in text, text
        assert ":X " not in text and ":Y " not in text
    sysctl = lab.host_run(
        [
            "sysctl",
            "-n",
            "net.ipv4.ip_forward",
            "net.ipv6.conf.all.forwarding",
            "net.ipv4.conf.up0.forwarding",
            "net.ipv4.conf.hs0.rp_filter",
        ]
    ).stdout.split()
    assert sysctl == ["1", "1", "1", "0"]
    assert lab.host_run(["conntrack", "-C"]).stdout.strip() == "0"
    assert lab.probe() == ALL_PLAIN


def test_old_log_lines_never_count(clean_lab: Lab) -> None:
    assert clean_lab.probe(["dns", "dhcp"]) == {"dns": KernelFlow(True), "dhcp": KernelFlow(True)}
    clean_lab.load_nft(
        "table inet t { chain i { type filter hook input priority 0; policy drop; }; }"
    )
    assert clean_lab.probe(["dns", "dhcp"]) == {
        "dns": KernelFlow(False),
        "dhcp": KernelFlow(False),
    }


def test_snapshot_runs_inside_the_host(clean_lab: Lab) -> None:
    from tests.kernel.engine import engine_unavailable_reason

    reason = engine_unavailable_reason()
    if reason:
        pytest.skip(reason)
    clean_lab.load_nft(ruleset("nm-shared-hs0.nft"))
    snap = clean_lab.snapshot()
    assert snap["format"] == "hotspotguard-snapshot/1"
    assert [h["iface"] for h in snap["hotspots"]] == ["hs0"]
    assert "10.42.0.1/24" in snap["hotspots"][0]["ipv4"]
    assert snap["uplinks"] == ["up0"]


def test_second_lab_is_isolated_and_leaves_nothing(lab: Lab) -> None:
    """A second lab runs beside the session lab; closing it removes all of it."""
    before = _root_state()
    other = Lab()
    try:
        assert other.prefix != lab.prefix
        assert len(_own_netns(other.prefix)) == 3
        pids = _run(["ip", "netns", "pids", other.host]).stdout.split()
        assert pids, "dnsmasq should run in the host namespace"
        other.load_nft(
            "table inet t { chain i { type filter hook input priority 0; policy drop; }; }"
        )
        assert not other.probe(["dns"])["dns"].delivered
        assert lab.probe(["dns"])["dns"].delivered  # the session lab is not affected
        tmpdir = other.tmpdir
    finally:
        other.close()
    assert _own_netns(other.prefix) == []
    assert not any(_proc_alive(int(p)) for p in pids)
    assert not tmpdir.exists()
    other.close()  # idempotent
    assert _root_state() == before


def test_failed_setup_tears_down(monkeypatch: pytest.MonkeyPatch) -> None:
    if lab_unavailable_reason():
        pytest.skip(lab_unavailable_reason() or "")

    def boom(self: Lab) -> None:
        raise LabError("injected failure")

    monkeypatch.setattr(Lab, "_self_test", boom)
    prefix = f"hg{os.getpid()}beef"
    with pytest.raises(LabError, match="injected"):
        Lab(prefix)
    assert _own_netns(prefix) == []
    leftovers = subprocess.run(["pgrep", "-f", f"{prefix}-"], capture_output=True, text=True)
    assert leftovers.stdout.strip() == ""


@pytest.mark.docker
def test_dockerd_in_the_host_namespace(clean_lab: Lab) -> None:
    if _which("dockerd") is None:
        pytest.skip("dockerd is not installed")
    before = _root_state()
    with start_dockerd(clean_lab) as daemon:
        assert daemon.start_seconds < 30
        save = clean_lab.host_run(["iptables-nft-save"]).stdout
        assert ":FORWARD DROP" in save and "-A FORWARD -j DOCKER-USER" in save
        assert "docker0" in clean_lab.host_run(["ip", "-o", "link"]).stdout
        pid = daemon.proc.pid
    assert not _proc_alive(pid)
    host_cmds = [
        Path(f"/proc/{p}/cmdline").read_bytes() for p in clean_lab.host_pids() if _proc_alive(p)
    ]
    assert not any(b"dockerd" in c or b"containerd" in c for c in host_cmds)
    assert "docker0" not in clean_lab.host_run(["ip", "-o", "link"]).stdout
    # dockerd's rules outlive it (as on a real machine) until the lab is reset
    assert ":FORWARD DROP" in clean_lab.host_run(["iptables-nft-save"]).stdout
    clean_lab.reset()
    assert clean_lab.host_run(["nft", "list", "ruleset"]).stdout.strip() == ""
    assert _root_state() == before
