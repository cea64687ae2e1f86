"""`hotspotguard status --watch`: a real watcher in the lab's host namespace, real rule changes.

The watcher runs as a child (``ip netns exec HOST python -m hotspotguard status --watch --json
--iface hs0``); its stdout lines are read with timeouts. The child is always killed.
"""

from __future__ import annotations

import json
import os
import queue
import signal
import subprocess
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from hotspotguard import cli
from tests.lab import Lab, _venv_python

RULESETS = Path(__file__).resolve().parents[1] / "kernel" / "scenarios" / "rulesets"
TIMEOUT = 5.0  # seconds for a state line to come


class WatchChild:
    def __init__(self, lab: Lab, *args: str) -> None:
        argv = ["ip", "netns", "exec", lab.host, _venv_python(), "-m", "hotspotguard"]
        self.proc = subprocess.Popen(
            [*argv, "status", "--watch", *args],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            stdin=subprocess.DEVNULL,
            text=True,
        )
        self.lines: queue.SimpleQueue[str | None] = queue.SimpleQueue()
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            self.lines.put(line)
        self.lines.put(None)

    def next(self, timeout: float = TIMEOUT) -> dict[str, Any]:
        try:
            line = self.lines.get(timeout=timeout)
        except queue.Empty:
            raise AssertionError(f"no state line within {timeout} s") from None
        if line is None:
            raise AssertionError(f"the watcher ended: {self.stderr()}")
        doc: dict[str, Any] = json.loads(line)
        return doc

    def quiet(self, seconds: float) -> list[dict[str, Any]]:
        """The lines that come within `seconds` (expected: none)."""
        found: list[dict[str, Any]] = []
        deadline = time.monotonic() + seconds
        while (left := deadline - time.monotonic()) > 0:
            try:
                line = self.lines.get(timeout=left)
            except queue.Empty:
                break
            if line is None:
                break
            found.append(json.loads(line))
        return found

    def stderr(self) -> str:
        if self.proc.poll() is None:
            return ""
        return self.proc.stderr.read() if self.proc.stderr else ""

    def stop(self) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGINT)
            try:
                self.proc.wait(5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        return self.proc.returncode


@pytest.fixture
def watch(clean_lab: Lab) -> Iterator[Any]:
    children: list[WatchChild] = []

    def start(*args: str) -> WatchChild:
        child = WatchChild(clean_lab, *args)
        children.append(child)
        return child

    try:
        yield start
    finally:
        for child in children:
            child.stop()


def _state(doc: dict[str, Any]) -> tuple[str, str | None]:
    blocked = next((h["blocked_by"] for h in doc["hotspots"] if h["state"] == "blocked"), None)
    return doc["state"], blocked["owner"] if blocked else None


@pytest.mark.kernel
def test_watch_follows_nm_docker_the_fix_and_legacy(clean_lab: Lab, watch: Any) -> None:
    lab = clean_lab
    child = watch("--json", "--iface", "hs0")
    first = child.next(15)  # the first state (python start-up included)
    assert first["state"] == "blocked", first  # no masquerade yet
    assert first["reason"] and "masquerade" in first["reason"]
    hotspot = first["hotspots"][0]
    assert hotspot["iface"] == "hs0" and hotspot["connection"] is None
    assert {"flows", "summary", "verdict", "blocked_by", "fixes"} <= set(hotspot)

    lab.load_nft((RULESETS / "nm-shared-hs0.nft").read_text())
    assert child.next()["state"] == "ok"

    lab.load_iptables((RULESETS / "docker27.rules").read_text())
    doc = child.next()
    assert _state(doc) == ("blocked", "docker"), doc["reason"]

    lab.host_run(["iptables-nft", "-I", "DOCKER-USER", "-i", "hs0", "-j", "ACCEPT"])
    lab.host_run(["iptables-nft", "-I", "DOCKER-USER", "-o", "hs0", "-j", "ACCEPT"])
    docs = [child.next()]
    docs += child.quiet(0.5)  # the first insert alone may already change the verdict
    assert docs[-1]["state"] == "ok", [d["reason"] for d in docs]

    lab.host_run(["iptables-legacy", "-P", "FORWARD", "DROP"])  # no nftables event at all
    doc = child.next()
    assert doc["state"] == "blocked"
    assert doc["hotspots"][0]["blocked_by"]["source"].startswith("iptables-legacy")
    lab.host_run(["iptables-legacy", "-P", "FORWARD", "ACCEPT"])
    assert child.next()["state"] == "ok"

    lab.sysctl("net.ipv4.ip_forward", "0")  # RTM_NEWNETCONF
    assert _state(child.next()) == ("blocked", "sysctl")
    lab.sysctl("net.ipv4.ip_forward", "1")
    assert child.next()["state"] == "ok"
    assert child.quiet(0.3) == []
    assert child.stop() == 0
    assert child.stderr() == ""


@pytest.mark.kernel
def test_a_burst_of_1000_changes_gives_one_line(clean_lab: Lab, watch: Any) -> None:
    lab = clean_lab
    lab.load_nft((RULESETS / "nm-shared-hs0.nft").read_text())
    lab.load_nft(
        "table inet burst {\n chain c {\n type filter hook forward priority 10; policy accept;\n"
        " }\n}\n"
    )
    child = watch("--json", "--iface", "hs0")
    assert child.next(15)["state"] == "ok"
    script = (
        "for i in $(seq 999); do nft add rule inet burst c counter; done; "
        'nft add rule inet burst c iifname "hs0" drop'
    )
    t0 = time.monotonic()
    lab.host_run(["sh", "-c", script])
    took = time.monotonic() - t0
    docs = [child.next()]
    docs += child.quiet(1.0)
    assert 1 <= len(docs) <= 3, (len(docs), took)
    assert docs[-1]["state"] == "blocked"
    assert all(d["state"] == "blocked" for d in docs)


@pytest.mark.kernel
def test_the_hotspot_interface_goes_and_comes_back(clean_lab: Lab, watch: Any) -> None:
    lab = clean_lab
    lab.host_run(["ip", "link", "add", "hgw0", "type", "veth", "peer", "name", "hgw1"])
    try:
        lab.host_run(["ip", "addr", "add", "10.77.0.1/24", "dev", "hgw0"])
        child = watch("--json", "--iface", "hgw0")
        assert child.next(15)["state"] == "blocked"  # no masquerade
        lab.host_run(["ip", "link", "del", "hgw0"])
        doc = child.next()
        assert doc == {
            "state": "no-hotspot",
            "hotspots": [],
            "reason": "there is no interface named hgw0",
        }
        lab.host_run(["ip", "link", "add", "hgw0", "type", "veth", "peer", "name", "hgw1"])
        lab.host_run(["ip", "addr", "add", "10.77.0.1/24", "dev", "hgw0"])
        docs = [child.next()]
        docs += child.quiet(0.5)
        assert docs[-1]["state"] == "blocked"
        assert docs[-1]["hotspots"][0]["ipv4"] == ["10.77.0.1/24"]
        assert child.proc.poll() is None
    finally:
        lab.host_run(["ip", "link", "del", "hgw0"], check=False)


@pytest.mark.kernel
def test_text_lines_and_a_quiet_exit(clean_lab: Lab, watch: Any) -> None:
    child = watch("--iface", "hs0")
    line = child.lines.get(timeout=15)
    assert line is not None and " hs0: blocked: " in line
    assert child.stop() == 0
    assert child.stderr() == ""


def test_not_root_is_one_line_and_exit_2(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """A user watches through the helper; without one, one line says so at once."""
    monkeypatch.setattr(os, "geteuid", lambda: 1000)
    monkeypatch.setenv("DBUS_SYSTEM_BUS_ADDRESS", "unix:path=/nonexistent/hg-bus")
    assert cli.main(["status", "--watch", "--json"]) == 2
    out, err = capsys.readouterr()
    assert out == ""
    assert err.count("\n") == 1 and "cannot watch the firewall" in err and "D-Bus" in err
