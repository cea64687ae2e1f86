"""Only a shared connection may be fixed: NetworkManager's word over its bus (a real
NetworkManager in the lab of tests/nmlab.py), its firewall tables where it is not on the bus."""

from __future__ import annotations

from pathlib import Path
from typing import TypeVar

import pytest

from hotspotguard.system.sharing import shared_now
from hotspotguard.usecases.operations import OperationError, Operations, Paths
from hotspotguard.watch import status_once
from tests.lab import _run, in_netns
from tests.nmlab import NmLab

pytestmark = pytest.mark.kernel

T = TypeVar("T")
STALE = "table ip nm-shared-up0 { }"  # a table left behind (or planted by root): not NM's word


def test_networkmanager_says_what_is_shared(
    nm_lab: NmLab, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    lab = nm_lab
    lab.up("hotspot")
    monkeypatch.setenv("DBUS_SYSTEM_BUS_ADDRESS", lab.bus_address)
    _run(["ip", "netns", "exec", lab.host, "nft", "-f", "-"], input=STALE)
    tables = {"nft": {"nftables": [{"table": {"family": "ip", "name": "nm-shared-up0"}}]}}
    shared = in_netns(lab.host, lambda: shared_now(tables))
    assert shared.source == "NetworkManager" and shared.ifaces == ("hs0",)
    ops = Operations(Paths(str(tmp_path / "state"), str(tmp_path / "d"), str(tmp_path / "nm")))
    with pytest.raises(OperationError) as info:
        in_netns(lab.host, lambda: ops.preview("up0", "sysctl-forwarding"))
    assert info.value.kind == "NotApplicable"
    assert "up0 is not a shared connection now (NetworkManager shares: hs0)" in str(info.value)
    # `status --iface up0` says the same, with NetworkManager's word (issue 11, finding 10)
    state = in_netns(lab.host, lambda: status_once(["up0"]))
    assert state.state == "error"
    assert state.reason == "up0 is not a shared connection now (NetworkManager shares: hs0)"
    assert in_netns(lab.host, lambda: status_once(["hs0"])).state in ("ok", "blocked")
    lab.down("hotspot")
    assert in_netns(lab.host, lambda: shared_now({})).ifaces == ()
    # NetworkManager gone from its bus: its tables are what is left to read
    lab.stop_networkmanager()
    shared = in_netns(lab.host, lambda: shared_now(tables))
    assert shared.source == "firewall" and shared.ifaces == ("up0",)
