"""`docker-netns` on the real kernel with a real dockerd: the hotspot blocked by Docker's FORWARD
drop; the fix previewed, applied and applied again (a no-op); then docker.service "restarts" as
systemd would start it with the drop-in — its ExecStartPre lines run, exactly as written, in a
new network namespace (PrivateNetwork=yes), with the lab's host namespace standing in for PID
1's (`-t 1` and `netns 1` name a process there) — and a real dockerd starts inside it.  Packets
then show the phone online, a process in Docker's namespace reaching the internet through the
masquerade, and the host's forward hook free of Docker's chains.  Undo: the normalized ruleset
and the files as before.  The drop-in's directory is the test's (never the machine's /etc)."""

from __future__ import annotations

import contextlib
import json
import os
import shlex
import stat
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from hotspotguard import wording
from hotspotguard.fixes.netns import DROPIN_NAME
from hotspotguard.system import docker, systemd
from hotspotguard.usecases.operations import OperationError, Operations, Paths
from tests.helper.test_fix_docker import normalized_ruleset
from tests.kernel.scenarios.model import ruleset
from tests.lab import (
    SERVER_V4,
    UPLINK_V4,
    Lab,
    _is_docker_process,
    _kill_netns_processes,
    _run,
    _venv_python,
    _which,
    in_netns,
    start_dockerd,
)
from tests.sandbox import RootSandbox
from tests.usecases.test_inserts import delivered

pytestmark = [pytest.mark.kernel, pytest.mark.docker]

V4 = ("dhcp", "dns", "outbound", "reply")
PORT = 8081


def operations(tmp_path: Path) -> Operations:
    return Operations(
        Paths(str(tmp_path / "state"), str(tmp_path / "docker.service.d"), str(tmp_path / "nm"))
    )


@contextlib.contextmanager
def pid_one_stand_in(lab: Lab) -> Iterator[int]:
    """A process in the lab's host namespace: the drop-in's `1` (PID 1) becomes its PID."""
    proc = subprocess.Popen(
        ["nsenter", f"--net=/run/netns/{lab.host}", "sleep", "600"], start_new_session=True
    )
    try:
        yield proc.pid
    finally:
        proc.kill()
        proc.wait()


def exec_start_pre(text: str, pid: int) -> list[tuple[bool, list[str]]]:
    """The drop-in's ExecStartPre commands in order, (failure ignored, argv), with PID 1
    replaced by `pid` (systemd's quoting: what shlex reads for these lines)."""
    commands = []
    for line in text.splitlines():
        if not line.startswith("ExecStartPre="):
            continue
        command = line.split("=", 1)[1]
        ignore = command.startswith("-")
        argv = shlex.split(command.lstrip("-"))
        for index in range(1, len(argv)):
            if argv[index] == "1" and argv[index - 1] in ("-t", "netns"):
                argv[index] = str(pid)
        commands.append((ignore, argv))
    return commands


@contextlib.contextmanager
def docker_service_started(lab: Lab, dropin: str, pid: int, start: int = 1) -> Iterator[str]:
    """docker.service as systemd starts it with the drop-in: a new network namespace, the
    ExecStartPre lines in it (a failing one without '-' fails the start), then dockerd."""
    unit_ns = f"{lab.prefix}-unit{start}"
    _run(["ip", "netns", "add", unit_ns])
    try:
        for ignore, argv in exec_start_pre(dropin, pid):
            proc = _run(["nsenter", f"--net=/run/netns/{unit_ns}", *argv], check=False)
            assert ignore or proc.returncode == 0, f"{argv}: {proc.stderr}"
        with start_dockerd(lab, netns=unit_ns):
            yield unit_ns
    finally:
        _kill_netns_processes(unit_ns)
        _run(["ip", "netns", "del", unit_ns], check=False)  # the veth goes with it


def seen_from(lab: Lab, netns: str) -> str | None:
    """Connect from `netns` to a listener on the simulated internet; the source address the
    internet saw (None: no connection)."""
    server = subprocess.Popen(
        [
            "ip", "netns", "exec", lab.inet, _venv_python(), "-c",
            "import socket\n"
            "s=socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)\n"
            f"s.bind(('{SERVER_V4}', {PORT})); s.listen(); print('up', flush=True)\n"
            "s.settimeout(5)\n"
            "try: print(s.accept()[1][0], flush=True)\nexcept OSError: pass\n",
        ],
        stdout=subprocess.PIPE,
        text=True,
    )  # fmt: skip
    try:
        assert server.stdout is not None and server.stdout.readline().strip() == "up"
        client = _run(
            [
                "nsenter", f"--net=/run/netns/{netns}", _venv_python(), "-c",
                f"import socket; socket.create_connection(('{SERVER_V4}', {PORT}), 2.0)",
            ],
            check=False,
        )  # fmt: skip
        if client.returncode != 0:
            return None
        return server.stdout.readline().strip() or None
    finally:
        server.kill()
        server.wait()


def forward_chains(lab: Lab, netns: str) -> list[dict[str, Any]]:
    """The base chains on the forward hook of `netns`, each with the chains it jumps to."""
    doc = _run(["ip", "netns", "exec", netns, "nft", "-j", "list", "ruleset"]).stdout
    items = json.loads(doc)["nftables"]
    chains = [i["chain"] for i in items if "chain" in i and i["chain"].get("hook") == "forward"]
    result = []
    for chain in chains:
        targets = []
        for item in items:
            rule = item.get("rule")
            if rule and (rule["family"], rule["table"], rule["chain"]) == (
                chain["family"],
                chain["table"],
                chain["name"],
            ):
                for expr in rule["expr"]:
                    for verb in ("jump", "goto"):
                        if isinstance(expr, dict) and verb in expr:
                            targets.append(expr[verb]["target"])
        result.append({**chain, "targets": targets})
    return result


def files(directory: Path) -> dict[str, tuple[int, bytes]]:
    if not directory.exists():
        return {}
    return {
        str(p.relative_to(directory)): (stat.S_IMODE(p.stat().st_mode), p.read_bytes())
        for p in sorted(directory.rglob("*"))
        if p.is_file()
    }


@pytest.fixture
def docker_blocks_hotspot(clean_lab: Lab) -> Iterator[Lab]:
    """NetworkManager's hotspot table, then a real dockerd on the host (forwarding off first,
    as at boot): Docker's FORWARD policy drop blocks the phone."""
    if _which("dockerd") is None:
        pytest.skip("dockerd is not installed")
    clean_lab.load_nft(ruleset("nm-shared-hs0.nft"))
    with start_dockerd(clean_lab):
        yield clean_lab


def test_dockerd_in_its_own_namespace_frees_the_hotspot_and_still_reaches_the_internet(
    docker_blocks_hotspot: Lab, tmp_path: Path
) -> None:
    lab = docker_blocks_hotspot
    ops = operations(tmp_path)
    dropin_dir = tmp_path / "docker.service.d"
    assert not any(delivered(lab, ("outbound", "reply")).values())
    assert any("DOCKER" in t for c in forward_chains(lab, lab.host) for t in c["targets"])
    before = normalized_ruleset(lab)

    preview = in_netns(lab.host, lambda: ops.preview("hs0", "docker-netns"))
    plan = preview["plan"]
    assert preview["before"]["verdict"] == "blocked" and preview["after"]["verdict"] == "ok"
    assert "published ports then live on the veth address" in plan["tradeoff"]
    assert "takes effect when docker.service next starts" in plan["tradeoff"]
    subnet = plan["summary"].split(", from ", 1)[1].split(",", 1)[0]
    host_ips = lab.host_run(["ip", "-4", "-br", "addr"]).stdout
    assert subnet.startswith("10.255.") and subnet.split("/")[0][:-1] not in host_ips
    assert normalized_ruleset(lab) == before and not dropin_dir.exists()

    done = in_netns(lab.host, lambda: ops.apply("hs0", "docker-netns", permanent=False, uid=0))
    assert done["changed"]
    assert done["notes"] == [
        "takes effect when docker.service next starts (systemd does not run this system)"
    ]
    dropin = dropin_dir / DROPIN_NAME
    text = dropin.read_text()
    assert stat.S_IMODE(dropin.stat().st_mode) == 0o644 and dropin.stat().st_uid == 0
    assert all(delivered(lab, V4).values())  # Docker's drop is off the host already
    applied = normalized_ruleset(lab)
    again = in_netns(lab.host, lambda: ops.apply("hs0", "docker-netns", permanent=False, uid=0))
    assert not again["changed"] and normalized_ruleset(lab) == applied
    assert dropin.read_text() == text

    # docker.service restarts: the old dockerd stops (its host rules stay, as Docker leaves
    # them), and systemd starts it with the drop-in
    _kill_netns_processes(lab.host, _is_docker_process)
    with pid_one_stand_in(lab) as pid, docker_service_started(lab, text, pid) as unit_ns:
        # the phone is online
        assert all(delivered(lab, V4).values()), lab.ruleset()
        # a process in Docker's namespace reaches the internet, masqueraded to the uplink's
        # address (the internet routes nothing back to the /30)
        assert seen_from(lab, unit_ns) == UPLINK_V4
        # Docker's rules are in its namespace, none on the host's forward hook
        inside = forward_chains(lab, unit_ns)
        assert any(c["policy"] == "drop" for c in inside)
        assert any(t.startswith("DOCKER") for c in inside for t in c["targets"])
        on_host = forward_chains(lab, lab.host)
        assert not any(t.startswith("DOCKER") for c in on_host for t in c["targets"])
        assert all(c.get("policy") != "drop" for c in on_host)
        listed = in_netns(lab.host, ops.list_fixes)
        assert [(f["id"], f["in_place"]) for f in listed] == [("docker-netns@hs0", True)]

        # Docker restarts while its old namespace lingers (its veth still on the host): the
        # drop-in deletes the stale docker0 first, makes the table again, and all still works
        _kill_netns_processes(unit_ns)
        assert "docker0" in lab.host_run(["ip", "-br", "link"]).stdout
        with docker_service_started(lab, text, pid, start=2) as second:
            assert all(delivered(lab, V4).values()), lab.ruleset()
            assert seen_from(lab, second) == UPLINK_V4
            assert normalized_ruleset(lab) == applied  # the table made again, the same
            assert in_netns(lab.host, ops.list_fixes)[0]["in_place"] is True

        undone = in_netns(lab.host, lambda: ops.undo("docker-netns@hs0", uid=0))
        assert "Docker's own rules come back on the host at its next start" in undone["notes"][0]
        assert normalized_ruleset(lab) == before
        assert not dropin_dir.exists()
    assert not any(delivered(lab, ("outbound", "reply")).values())


@pytest.mark.parametrize("fault", ["no free /30", "stale veth", "docker not installed"])
def test_bad_input_is_one_line_and_changes_nothing(
    docker_blocks_hotspot: Lab, tmp_path: Path, fault: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    lab = docker_blocks_hotspot
    ops = operations(tmp_path)
    if fault == "no free /30":  # a VPN's routes, say: every private range is taken
        for network in ("10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16"):
            lab.host_run(["ip", "route", "add", "unreachable", network])
        message = "no free private /30 for the veth"
    elif fault == "stale veth":  # the seed's hand-made set-up, left behind
        lab.host_run(["ip", "link", "del", "docker0"])
        lab.host_run(["ip", "link", "add", "docker0", "type", "veth", "peer", "name", "d0ns"])
        message = "docker0 is a veth an earlier namespace set-up left"
    else:
        monkeypatch.setattr(docker, "DOCKERD", ("/nonexistent/dockerd",))
        message = "Docker is not installed here (no dockerd)"
    try:
        before = normalized_ruleset(lab)
        with pytest.raises(OperationError) as info:
            in_netns(lab.host, lambda: ops.apply("hs0", "docker-netns", permanent=False, uid=0))
        assert info.value.kind == "NotApplicable"
        assert str(info.value).startswith(message) and "\n" not in str(info.value)
        assert normalized_ruleset(lab) == before
        assert files(tmp_path) == {}
    finally:
        for network in ("10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16"):
            lab.host_run(["ip", "route", "del", "unreachable", network], check=False)
        if fault == "stale veth":
            lab.host_run(["ip", "link", "del", "docker0"], check=False)


def test_with_systemd_as_pid_1_apply_reloads_and_restarts_docker(
    docker_blocks_hotspot: Lab, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """systemd cannot be PID 1 here: a stand-in `systemctl` answers as systemd 252's does
    (exit 0, silent, for daemon-reload and for try-restart of a loaded unit) and records
    each call with whether the drop-in was there by then."""
    lab = docker_blocks_hotspot
    booted = tmp_path / "run-systemd-system"
    booted.mkdir()
    calls = tmp_path / "calls"
    dropin = tmp_path / "docker.service.d" / DROPIN_NAME
    systemctl = tmp_path / "systemctl"
    systemctl.write_text(
        "#!/bin/sh\n"
        f"if [ -e {dropin} ]; then there=dropin; else there=none; fi\n"
        f'echo "$* $there" >> {calls}\n'
        'case "$1" in\n'
        "  daemon-reload|try-restart) exit 0 ;;\n"
        '  *) echo "Unknown command verb $1." >&2; exit 1 ;;\n'
        "esac\n"
    )
    systemctl.chmod(0o755)
    monkeypatch.setattr(systemd, "BOOTED_MARKER", str(booted))
    monkeypatch.setattr(systemd, "SYSTEMCTL", str(systemctl))
    ops = operations(tmp_path)
    preview = in_netns(lab.host, lambda: ops.preview("hs0", "docker-netns"))
    assert preview["plan"]["preview"][-2:] == [
        "systemctl daemon-reload",
        "systemctl try-restart docker.service",
    ]
    assert "running containers restart once now" in preview["plan"]["tradeoff"]
    done = in_netns(lab.host, lambda: ops.apply("hs0", "docker-netns", permanent=False, uid=0))
    assert done["notes"] == [f"docker.service restarted with {dropin}"]
    assert calls.read_text().splitlines() == [
        "daemon-reload dropin",
        "try-restart docker.service dropin",
    ]
    again = in_netns(lab.host, lambda: ops.apply("hs0", "docker-netns", permanent=False, uid=0))
    assert not again["changed"] and len(calls.read_text().splitlines()) == 2  # no restart
    in_netns(lab.host, lambda: ops.undo("docker-netns@hs0", uid=0))
    # undo has systemd read the units again; Docker is not restarted by it
    assert calls.read_text().splitlines()[2:] == ["daemon-reload none"]


def test_a_failing_restart_takes_everything_back(
    docker_blocks_hotspot: Lab, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """systemctl's own failure (exit 5, "Unit docker.service not found.", as systemd 252 says
    for a unit it does not know): the drop-in, the table and the reset chains are rolled back."""
    lab = docker_blocks_hotspot
    booted = tmp_path / "run-systemd-system"
    booted.mkdir()
    systemctl = tmp_path / "systemctl"
    systemctl.write_text(
        '#!/bin/sh\n[ "$1" = daemon-reload ] && exit 0\n'
        'echo "Failed to try-restart $2: Unit $2 not found." >&2\nexit 5\n'
    )
    systemctl.chmod(0o755)
    monkeypatch.setattr(systemd, "BOOTED_MARKER", str(booted))
    monkeypatch.setattr(systemd, "SYSTEMCTL", str(systemctl))
    ops = operations(tmp_path)
    before = normalized_ruleset(lab)
    with pytest.raises(OperationError) as info:
        in_netns(lab.host, lambda: ops.apply("hs0", "docker-netns", permanent=False, uid=0))
    assert info.value.kind == "Failed"
    # our sentence (which tool, for what, its exit status), systemctl's own words quoted
    assert str(info.value) == (
        "systemctl failed while restarting docker.service (exit status 5): "
        "“Failed to try-restart docker.service: Unit docker.service not found.”"
    )
    reason = wording.reason_of(info.value)
    assert isinstance(reason, wording.Reason) and reason.code == "tool-failed"
    assert reason.params["step"]["reason_code"] == "step-restart-unit"
    assert normalized_ruleset(lab) == before
    assert not (tmp_path / "docker.service.d").exists()
    assert in_netns(lab.host, ops.list_fixes) == []
    assert os.listdir(tmp_path / "state") == ["fixes.json"]


def test_fix_dry_run_lists_it_with_its_trade_off(docker_blocks_hotspot: Lab) -> None:
    """`hotspotguard fix --dry-run` as root, /etc and /var/lib overlaid (tests/sandbox.py):
    every candidate, docker-netns among them with its trade-off; nothing written."""
    lab = docker_blocks_hotspot
    box = RootSandbox()
    try:
        before = normalized_ruleset(lab)
        hg = [_venv_python(), "-m", "hotspotguard", "fix", "--iface", "hs0", "--dry-run"]
        listed = box.run(hg, lab.host).stdout
        assert "  * docker-netns: run dockerd in a network namespace of its own" in listed
        assert "Trade-off: published ports then live on the veth address 10.255." in listed
        shown = box.run([*hg, "--strategy", "docker-netns"], lab.host).stdout
        dropin = f"/etc/systemd/system/docker.service.d/{DROPIN_NAME}"
        assert f"write {dropin}:" in shown
        assert "iptables-nft -t filter -P FORWARD ACCEPT (now DROP)" in shown
        assert "After:  ok:" in shown
        assert not box.written(dropin).exists() and normalized_ruleset(lab) == before
    finally:
        box.close()


def test_dockers_nftables_backend_is_taken_off_the_host_and_put_back(
    clean_lab: Lab, tmp_path: Path
) -> None:
    """Docker 29's nftables backend (its `docker-bridges` table, the FORWARD policy drop it
    sets when it turned forwarding on), loaded as Docker writes it (Debian 12's dockerd is
    20.10): the table is deleted whole — the phone online — and loaded back by undo; applied
    again while it is gone, the record still holds it."""
    if _which("dockerd") is None:
        pytest.skip("dockerd is not installed")
    lab = clean_lab
    lab.load_nft(ruleset("nm-shared-hs0.nft"))
    lab.load_nft(ruleset("docker29-policy-drop.nft"))
    ops = operations(tmp_path)
    before = normalized_ruleset(lab)
    assert not any(delivered(lab, ("outbound", "reply")).values())
    preview = in_netns(lab.host, lambda: ops.preview("hs0", "docker-netns"))
    assert "nft delete table ip docker-bridges" in preview["plan"]["preview"]
    assert preview["after"]["verdict"] == "ok"
    done = in_netns(lab.host, lambda: ops.apply("hs0", "docker-netns", permanent=False, uid=0))
    assert done["changed"] and all(delivered(lab, V4).values())
    tables = lab.host_run(["nft", "list", "tables"]).stdout.split("\n")
    assert "table ip docker-bridges" not in tables and "table ip hotspotguard-docker" in tables
    applied = normalized_ruleset(lab)
    again = in_netns(lab.host, lambda: ops.apply("hs0", "docker-netns", permanent=False, uid=0))
    assert not again["changed"] and normalized_ruleset(lab) == applied
    in_netns(lab.host, lambda: ops.undo("docker-netns@hs0", uid=0))
    assert normalized_ruleset(lab) == before
    assert not any(delivered(lab, ("outbound", "reply")).values())


V6 = ("outbound6", "reply6")


def test_the_phones_ipv6_gets_through_too(docker_blocks_hotspot: Lab, tmp_path: Path) -> None:
    """The hotspot shares IPv6 — the phone has an address in 2001:db8:42::/64 and TCP to the
    simulated internet over IPv6 (the kernel lab sets the phone's address itself; a phone
    taking it by SLAAC from NetworkManager's advertisements is
    tests/system/test_networkmanager_ipv6.py) — and Docker manages ip6tables too: its ip6
    FORWARD drop
    blocks the phone's IPv6.  Debian 12's dockerd 20.10 writes no ip6tables rules (its
    `ip6tables` option is experimental there), so Docker 28's ip6tables layout is loaded beside
    the real dockerd's IPv4 rules, as Docker 28 writes it.  The fix takes Docker's ip6tables
    rules off the host's hook as well: the phone's IPv6 works after it, and after docker.service
    restarts in its own namespace; undo puts both families back exactly."""
    lab = docker_blocks_hotspot
    lab.load_iptables(ruleset("docker28.v6.rules"), ipv6=True)
    ops = operations(tmp_path)
    assert not any(delivered(lab, V6).values())
    before = normalized_ruleset(lab)

    preview = in_netns(lab.host, lambda: ops.preview("hs0", "docker-netns"))
    assert preview["after"]["verdict"] == "ok"
    assert "ip6tables-nft -t filter -P FORWARD ACCEPT (now DROP)" in preview["plan"]["preview"]
    done = in_netns(lab.host, lambda: ops.apply("hs0", "docker-netns", permanent=False, uid=0))
    assert done["changed"]
    outcome = delivered(lab, (*V4, *V6))
    assert all(outcome.values()), outcome
    assert "DOCKER" not in lab.host_run(["ip6tables-nft", "-S", "FORWARD"]).stdout
    nat6 = lab.host_run(["ip6tables-nft", "-t", "nat", "-S"]).stdout.splitlines()
    builtin = ("PREROUTING", "INPUT", "OUTPUT", "POSTROUTING")
    assert [line for line in nat6 if line.split()[:2] in (["-A", c] for c in builtin)] == []
    text = (tmp_path / "docker.service.d" / DROPIN_NAME).read_text()

    _kill_netns_processes(lab.host, _is_docker_process)
    with pid_one_stand_in(lab) as pid, docker_service_started(lab, text, pid) as unit_ns:
        outcome = delivered(lab, (*V4, *V6))
        assert all(outcome.values()), outcome
        on_host = forward_chains(lab, lab.host)
        assert not any(t.startswith("DOCKER") for c in on_host for t in c["targets"])
        assert all(c.get("policy") != "drop" for c in on_host)
        assert seen_from(lab, unit_ns) == UPLINK_V4
        in_netns(lab.host, lambda: ops.undo("docker-netns@hs0", uid=0))
    assert normalized_ruleset(lab) == before
    assert not any(delivered(lab, V6).values())
