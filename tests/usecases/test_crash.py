"""Crash consistency: the helper killed (SIGKILL) at every step of apply, undo and set-permanent.

A driver process runs the use case in the kernel lab's host namespace with a step hook that
stops it (SIGSTOP) at step N; the test then kills it with SIGKILL, as the OOM killer or a power
cut would.  Then the next call (`list_fixes`, as any caller's would) must find the firewall as
before or as after — never between — with the record and the permanent files agreeing with it,
and a further apply or undo must finish from there.
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import time
from pathlib import Path
from typing import Any

import pytest

from tests.kernel.scenarios.model import ruleset
from tests.lab import Lab

pytestmark = pytest.mark.kernel

REPO = Path(__file__).resolve().parents[2]
PYTHON = str(REPO / ".venv" / "bin" / "python")
DRIVER = r"""
import json, os, signal, sys
from hotspotguard.usecases.operations import Operations, OperationError, Paths
args = json.loads(sys.argv[1])
if "docker" in args:  # Docker's API socket and daemon.json where the test put them
    from hotspotguard.system import docker
    docker.DOCKER_SOCKET, docker.DAEMON_JSON_PATH = args["docker"]
steps = []
def on_step(name):
    steps.append(name)
    print(name, flush=True)
    if len(steps) == args["stop"]:
        os.kill(os.getpid(), signal.SIGSTOP)
ops = Operations(Paths(*args["paths"]), on_step=on_step)
verb = args["verb"]
if verb == "apply":
    result = ops.apply("hs0", args["strategy"], permanent=args["permanent"], uid=1000)
elif verb == "undo":
    result = ops.undo("", uid=1000)
elif verb == "reapply":
    result = ops.reapply()
elif verb == "permanent":
    result = ops.set_permanent("", args["permanent"], uid=1000)
else:
    result = ops.list_fixes()
print("RESULT " + json.dumps(result), flush=True)
"""


# Docker with ip6tables: its FORWARD drop and DOCKER-USER for IPv6 too
DOCKER_IPV6 = """*filter
:FORWARD DROP [0:0]
:DOCKER-USER - [0:0]
-A FORWARD -j DOCKER-USER
-A DOCKER-USER -j RETURN
COMMIT
"""


class Machine:
    """The lab host as the helper sees it: its firewall and settings, the record, the files."""

    def __init__(self, lab: Lab, tmp: Path) -> None:
        self.lab = lab
        self.tmp = tmp
        self.paths = [str(tmp / "state"), str(tmp / "dropin"), str(tmp / "nm")]
        self.extra: dict[str, Any] = {}  # more arguments for the driver

    def firewall(self) -> tuple[str, ...]:
        rules = self.lab.host_run(["nft", "list", "ruleset"]).stdout
        rules = re.sub(r"counter packets \d+ bytes \d+", "counter", rules)  # traffic moves them
        keys = ["net.ipv4.ip_forward", "net.ipv6.conf.all.forwarding"]
        forward = self.lab.host_run(["sysctl", "-n", *keys]).stdout
        return rules, forward

    def command(self, argv: list[str]) -> list[str]:
        """`argv` as the helper would run: here, in the lab's host namespace."""
        return ["ip", "netns", "exec", self.lab.host, *argv]

    def files(self) -> list[str]:
        return sorted(
            p.name for d in ("dropin", "nm") if (self.tmp / d).is_dir()
            for p in (self.tmp / d).iterdir()
        )  # fmt: skip

    def run(self, verb: str, stop: int = 0, **extra: Any) -> tuple[list[str], Any]:
        """Run `verb`; with `stop`, kill it at that step.  The steps it reported, its result
        (None when killed)."""
        args = {"verb": verb, "stop": stop, "paths": self.paths, **self.extra, **extra}
        proc = subprocess.Popen(
            self.command([PYTHON, "-c", DRIVER, json.dumps(args)]),
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=str(REPO),
        )  # fmt: skip
        assert proc.stdout is not None
        steps: list[str] = []
        while True:
            line = proc.stdout.readline()
            if not line:
                break
            if line.startswith("RESULT "):
                proc.wait(30)
                return steps, json.loads(line[len("RESULT ") :])
            steps.append(line.strip())
            if stop and len(steps) == stop:
                _wait_stopped(proc.pid)
                proc.send_signal(signal.SIGKILL)
                proc.wait(10)
                return steps, None
        _, err = proc.communicate(timeout=30)
        raise AssertionError(f"the driver failed ({proc.returncode}): {err[-2000:]}")


def _wait_stopped(pid: int) -> None:
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        stat = Path(f"/proc/{pid}/stat").read_text()
        if stat.rsplit(")", 1)[1].split()[0] == "T":
            return
        time.sleep(0.005)
    raise AssertionError("the driver did not stop at its step")


@pytest.fixture
def machine(clean_lab: Lab, tmp_path: Path) -> Machine:
    clean_lab.load_nft(ruleset("nm-shared-hs0.nft"))
    clean_lab.load_iptables(ruleset("docker28.rules"))
    clean_lab.load_iptables(DOCKER_IPV6, ipv6=True)  # a second commit: kills between the two
    return Machine(clean_lab, tmp_path)


def _consistent(
    m: Machine, before: tuple[str, ...], after: tuple[str, ...], strategy: str = ""
) -> str:
    """After the next call: "before" or "after", with the record and files agreeing."""
    _, fixes = m.run("list")
    now = m.firewall()
    assert now in (before, after), "the firewall is between before and after"
    state = json.loads((m.tmp / "state" / "fixes.json").read_text())
    assert "pending" not in state
    assert not [n for n in os.listdir(m.tmp / "state") if n.startswith(".fixes-")]
    if now == before:
        assert fixes == []
        assert m.files() == []
        return "before"
    assert len(fixes) == 1 and fixes[0]["in_place"] is True
    if strategy == "docker-netns":  # kept by its own drop-in, never by a reapply
        assert m.files() == ["60-hotspotguard-netns.conf"]
        return "after"
    assert m.files() == (["50-hotspotguard.conf", "90-hotspotguard"] * fixes[0]["permanent"])
    return "after"


@pytest.mark.parametrize("strategy", ["docker-user", "sysctl-forwarding", "docker-netns"])
def test_killed_at_every_step_of_apply_and_undo(machine: Machine, strategy: str) -> None:
    m = machine
    if strategy == "sysctl-forwarding":
        m.lab.sysctl("net.ipv4.ip_forward", "0")
        m.lab.sysctl("net.ipv6.conf.all.forwarding", "0")
        for tool in ("iptables-nft", "ip6tables-nft"):
            m.lab.host_run([tool, "-P", "FORWARD", "ACCEPT"])
    kill_at_every_step(m, strategy)


def kill_at_every_step(m: Machine, strategy: str) -> None:
    """Apply and undo `strategy` (permanent), each killed at each of its steps in turn: the
    next call finds the firewall as before or as after, and a further call finishes."""
    before = m.firewall()
    steps, result = m.run("apply", strategy=strategy, permanent=True)
    assert result["changed"]
    after = m.firewall()
    assert after != before
    undo_steps, _ = m.run("undo")
    assert m.firewall() == before and m.files() == []
    print(f"\napply: {steps}; undo: {undo_steps}")
    outcomes = []
    for stop in range(1, len(steps) + 1):  # apply killed at each step
        m.run("apply", stop=stop, strategy=strategy, permanent=True)
        seen = _consistent(m, before, after, strategy)
        outcomes.append(seen)
        if seen == "after":  # finish: undo from there
            m.run("undo")
        else:  # or apply again
            m.run("apply", strategy=strategy, permanent=True)
            assert _consistent(m, before, after, strategy) == "after"
            m.run("undo")
        assert m.firewall() == before and m.files() == []
    for stop in range(1, len(undo_steps) + 1):  # undo killed at each step
        m.run("apply", strategy=strategy, permanent=True)
        m.run("undo", stop=stop)
        outcomes.append(_consistent(m, before, after, strategy))
        assert m.firewall() == before
    print(f"outcomes: {outcomes}")
    assert outcomes[: len(steps)].count("before") >= 1 and "after" in outcomes


def test_killed_at_every_step_of_set_permanent(machine: Machine) -> None:
    m = machine
    before = m.firewall()
    m.run("apply", strategy="docker-user", permanent=False)
    after = m.firewall()
    steps, _ = m.run("permanent", permanent=True)
    m.run("permanent", permanent=False)
    for flag in (True, False):
        for stop in range(1, len(steps) + 1):
            m.run("permanent", permanent=not flag)
            m.run("permanent", stop=stop, permanent=flag)
            assert _consistent(m, before, after) == "after"
            state = json.loads((m.tmp / "state" / "fixes.json").read_text())
            assert state["fixes"][0]["permanent"] is flag
    m.run("undo")
    assert m.firewall() == before and m.files() == []
