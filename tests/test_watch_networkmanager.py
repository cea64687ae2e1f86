"""`status --watch` following a real NetworkManager (in namespaces, on its own bus)."""

from __future__ import annotations

import json
import os
import queue
import signal
import subprocess
import threading
from pathlib import Path
from typing import Any

import pytest

from tests.lab import _venv_python
from tests.nmlab import NmLab

RULESETS = Path(__file__).resolve().parent / "kernel" / "scenarios" / "rulesets"


class Watch:
    """`hotspotguard status --watch --json` in the lab host, talking to the lab's bus."""

    def __init__(self, lab: NmLab) -> None:
        argv = ["ip", "netns", "exec", lab.host, _venv_python(), "-m", "hotspotguard"]
        self.proc = subprocess.Popen(
            [*argv, "status", "--watch", "--json"],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            stdin=subprocess.DEVNULL,
            text=True,
            env={**os.environ, "DBUS_SYSTEM_BUS_ADDRESS": lab.bus_address},
        )
        self.lines: queue.SimpleQueue[str | None] = queue.SimpleQueue()
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            self.lines.put(line)
        self.lines.put(None)

    def until(self, state: str, owner: str | None = None, timeout: float = 15.0) -> dict[str, Any]:
        """The first line in `state` (blocked by `owner`); lines before it are transitions."""
        seen: list[str] = []
        while True:
            try:
                line = self.lines.get(timeout=timeout)
            except queue.Empty:
                raise AssertionError(f"no {state!r} within {timeout} s; saw {seen}") from None
            if line is None:
                err = self.proc.stderr.read() if self.proc.stderr else ""
                raise AssertionError(f"the watcher ended: {err}")
            doc: dict[str, Any] = json.loads(line)
            blockers = [(h.get("blocked_by") or {}).get("owner") for h in doc["hotspots"]]
            if doc["state"] == state and (owner is None or owner in blockers):
                return doc
            seen.append(f"{doc['state']} ({doc.get('reason')})")

    def drain(self, seconds: float) -> list[dict[str, Any]]:
        """The lines that come within `seconds`."""
        found: list[dict[str, Any]] = []
        while True:
            try:
                line = self.lines.get(timeout=seconds)
            except queue.Empty:
                return found
            if line is None:
                return found
            found.append(json.loads(line))

    def stop(self) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGINT)
        try:
            return self.proc.wait(10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            return self.proc.wait()


@pytest.mark.kernel
def test_status_watch_follows_networkmanager(nm_lab: NmLab) -> None:
    watch = Watch(nm_lab)
    try:
        assert watch.until("no-hotspot")["hotspots"] == []
        nm_lab.up("hotspot")
        ok = watch.until("ok")
        (hotspot,) = ok["hotspots"]
        assert hotspot["iface"] == "hs0"
        assert hotspot["connection"]["id"] == "hotspot"
        assert hotspot["connection"]["type"] == "802-3-ethernet"
        assert hotspot["nm_backend"] == "nftables"
        docker = (RULESETS / "docker27.rules").read_text()
        subprocess.run(
            ["ip", "netns", "exec", nm_lab.host, "iptables-nft-restore", "--noflush"],
            input=docker,
            text=True,
            check=True,
        )
        blocked = watch.until("blocked")
        assert blocked["hotspots"][0]["blocked_by"]["owner"] == "docker"
        nm_lab.down("hotspot")
        assert watch.until("no-hotspot")["hotspots"] == []
        nm_lab.up("hotspot")  # a new active-connection path
        again = watch.until("blocked")
        assert again["hotspots"][0]["connection"]["id"] == "hotspot"
    finally:
        assert watch.stop() == 0


def _iptables(lab: NmLab, *args: str) -> None:
    subprocess.run(["ip", "netns", "exec", lab.host, "iptables-nft", *args], check=True)


@pytest.mark.kernel
@pytest.mark.docker
def test_timeline_with_a_real_dockerd(nm_lab: NmLab) -> None:
    """The issue's timeline, every transition read from `status --watch --json`."""
    from tests.lab import _which, start_dockerd

    if _which("dockerd") is None:
        pytest.skip("dockerd is not installed")
    watch = Watch(nm_lab)
    try:
        watch.until("no-hotspot")
        nm_lab.up("hotspot")
        assert watch.until("ok")["hotspots"][0]["connection"]["id"] == "hotspot"
        # dockerd starting at boot (forwarding still off): FORWARD policy DROP
        with start_dockerd(nm_lab, forwarding_off_first=True):  # type: ignore[arg-type]
            blocked = watch.until("blocked", owner="docker")
            assert blocked["hotspots"][0]["blocked_by"]["chain"] == "FORWARD"
            _iptables(nm_lab, "-I", "DOCKER-USER", "-i", "hs0", "-j", "ACCEPT")
            _iptables(nm_lab, "-I", "DOCKER-USER", "-o", "hs0", "-j", "ACCEPT")
            watch.until("ok")
        # dockerd restarted: it keeps DOCKER-USER's rules, the hotspot stays ok
        with start_dockerd(nm_lab, forwarding_off_first=False):  # type: ignore[arg-type]
            later = watch.drain(1.5)
            assert not later or later[-1]["state"] == "ok", later
        nm_lab.down("hotspot")
        watch.until("no-hotspot")
        nm_lab.up("hotspot")  # a new active-connection path
        watch.until("ok")
        # NetworkManager stopped: said so; restarted: followed again
        nm_lab.stop_networkmanager()
        stopped = watch.until("error")
        assert "NetworkManager" in (stopped["reason"] or "")
        nm_lab.start_networkmanager()
        nm_lab.up("uplink")
        nm_lab.up("hotspot")
        watch.until("ok")
        # the bus daemon restarted (NetworkManager with it): reconnects
        nm_lab.restart_dbus()
        nm_lab.up("uplink")
        nm_lab.up("hotspot")
        assert watch.until("ok", timeout=30)["hotspots"][0]["iface"] == "hs0"
    finally:
        assert watch.stop() == 0


@pytest.mark.kernel
def test_status_once_names_the_connection(nm_lab: NmLab) -> None:
    nm_lab.up("hotspot")
    argv = ["ip", "netns", "exec", nm_lab.host, _venv_python(), "-m", "hotspotguard", "status"]
    env = {**os.environ, "DBUS_SYSTEM_BUS_ADDRESS": nm_lab.bus_address}
    proc = subprocess.run([*argv, "--json"], capture_output=True, text=True, env=env, check=False)
    assert proc.returncode == 0, proc.stderr
    doc = json.loads(proc.stdout)
    assert doc["state"] == "ok"
    (hotspot,) = doc["hotspots"]
    assert (hotspot["iface"], hotspot["state"]) == ("hs0", "ok")
    assert hotspot["connection"]["id"] == "hotspot"
    text = subprocess.run(argv, capture_output=True, text=True, env=env, check=False)
    assert text.returncode == 0
    assert text.stdout.startswith("ok: clients of hs0")
    assert 'shared by NetworkManager\'s connection "hotspot"' in text.stdout
