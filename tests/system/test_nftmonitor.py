"""The rule feed (system.nftmonitor) on the kernel, in a private network namespace."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator

import pytest

NS = f"hgm{os.getpid()}"

pytestmark = pytest.mark.kernel


@pytest.fixture
def netns() -> Iterator[str]:
    if os.geteuid() != 0 or shutil.which("nft") is None:
        pytest.skip("needs root and nft")
    subprocess.run(["ip", "netns", "add", NS], check=True)
    try:
        yield NS
    finally:
        subprocess.run(["ip", "netns", "del", NS], capture_output=True, check=False)


SCRIPT = """
import subprocess, sys, time
from hotspotguard.system.nftmonitor import RuleFeed
feed = RuleFeed("/usr/sbin/nft")
time.sleep(0.3)  # its cache read, its socket bound
subprocess.run(["nft", "add table inet t; add chain inet t c; "
                "add rule inet t c ip saddr { 192.0.2.1, 192.0.2.2 } accept"], check=True)
handle = int(subprocess.run(["nft", "-a", "list", "chain", "inet", "t", "c"],
             capture_output=True, text=True, check=True).stdout.split("# handle ")[-1].split()[0])
rules = feed.take("inet", "t", "c", [handle, handle + 100], wait=0.5)
print(sorted(rules) == [handle], rules[handle]["expr"][0]["match"]["right"], flush=True)
print(feed.pid, flush=True)
if sys.argv[1] == "close":
    feed.close()
"""


def _run(ns: str, how: str) -> tuple[str, int]:
    proc = subprocess.run(
        ["ip", "netns", "exec", ns, sys.executable, "-c", SCRIPT, how],
        capture_output=True,
        text=True,
        check=False,
        env={**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)},
    )
    lines = proc.stdout.splitlines()
    assert len(lines) == 2, proc.stderr
    return lines[0], int(lines[1])


def _gone(pid: int) -> bool:
    deadline = time.monotonic() + 3
    while time.monotonic() < deadline:
        if not os.path.exists(f"/proc/{pid}"):
            return True
        time.sleep(0.05)
    return False


def test_new_rules_as_nft_decodes_them_and_no_orphan(netns: str) -> None:
    seen, pid = _run(netns, "close")
    assert seen == "True {'set': ['192.0.2.1', '192.0.2.2']}"
    assert _gone(pid)
    # the process ends without closing the feed (killed, crashed): the monitor ends too
    _, pid = _run(netns, "exit")
    assert _gone(pid)
