"""`docker-netns` planned from a real capture (Docker 20.10 beside NetworkManager), pure: the /30
it picks, the drop-in it generates (checked by systemd's own verifier), the engine's proof
with Docker's rules off the host's chains, and each reason it is not offered."""

from __future__ import annotations

import os
import shlex
import shutil
import subprocess
from pathlib import Path

import pytest

from hotspotguard.fixes.netns import (
    POOLS,
    NetnsUnavailable,
    dropin_text,
    free_subnet,
    table_text,
)
from hotspotguard.fixes.plan import (
    ChainReset,
    DropIn,
    HostFacts,
    NetnsFacts,
    NftTable,
    change_from_json,
    tag,
)
from hotspotguard.fixes.strategies import FixUnavailable, candidates, verified_plan
from hotspotguard.ruleset import parse_ruleset
from tests.fixes.test_strategies import docker_capture

TOOLS = (
    ("ip", "/usr/sbin/ip"),
    ("nsenter", "/usr/bin/nsenter"),
    ("sysctl", "/usr/sbin/sysctl"),
    ("nft", "/usr/sbin/nft"),
)
HOST_NETWORKS = ("10.42.0.1/24", "192.168.1.23/24", "10.0.0.0/24", "172.17.0.0/16", "0.0.0.0/1")
DROPIN = "/etc/systemd/system/docker.service.d/60-hotspotguard-netns.conf"


def netns_facts(**overrides: object) -> HostFacts:
    values: dict[str, object] = {
        "networks": HOST_NETWORKS,
        "docker0": "bridge",
        "dockerd": "/usr/sbin/dockerd",
        "tools": TOOLS,
        "dropin_path": DROPIN,
    }
    values.update(overrides)
    return HostFacts(netns=NetnsFacts(**values))  # type: ignore[arg-type]


def test_the_first_free_slash_30_avoids_every_address_and_route() -> None:
    assert str(free_subnet(HOST_NETWORKS)) == "10.255.255.252/30"
    taken = ("10.255.255.254/32", "10.255.255.248/30")
    assert str(free_subnet(taken)) == "10.255.255.244/30"
    # a VPN's route for all of 10/8 sends it to the next pool; catch-alls (default, /1) do not
    assert str(free_subnet(("10.0.0.0/8", "0.0.0.0/0", "128.0.0.0/1"))) == "172.31.255.252/30"
    # the one a drop-in of ours uses is kept while it is still free
    assert str(free_subnet(HOST_NETWORKS, "10.255.1.0/30")) == "10.255.1.0/30"
    assert str(free_subnet(("10.255.1.2/32",), "10.255.1.0/30")) == "10.255.255.252/30"
    with pytest.raises(NetnsUnavailable, match="no free private /30") as info:
        free_subnet(("10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16"))
    assert all(pool in str(info.value) for pool in POOLS)


def test_the_plan_clears_dockers_rules_off_the_host_and_the_engine_says_ok() -> None:
    snapshot = docker_capture()
    ruleset = parse_ruleset(snapshot)
    facts = netns_facts()
    plan, verification = verified_plan(snapshot, ruleset, "nmp-hs0", "docker-netns", facts)
    assert verification.before.verdict == "blocked" and verification.after.verdict == "ok"
    *resets, table, dropin = plan.changes
    assert isinstance(table, NftTable) and isinstance(dropin, DropIn)
    assert all(isinstance(change, ChainReset) for change in resets)
    forward = next(c for c in resets if isinstance(c, ChainReset) and c.chain == "FORWARD")
    assert (forward.table, forward.policy, forward.previous) == ("filter", "accept", "drop")
    # every jump into Docker's chains and every rule for its bridge goes (Docker 28's layout)
    assert forward.removed == ((1, "-j DOCKER-USER"), (2, "-j DOCKER-FORWARD"))
    postrouting = next(c for c in resets if isinstance(c, ChainReset) and c.chain == "POSTROUTING")
    assert postrouting.removed == ((1, "-s 172.17.0.0/16 ! -o docker0 -j MASQUERADE"),)
    assert table.text == table_text(free_subnet(HOST_NETWORKS), tag(plan.fix_id))
    assert 'ip saddr 10.255.255.252/30 oifname != "docker0" masquerade' in table.text
    assert dropin.path == DROPIN and not dropin.reload
    assert (
        "veth docker0 10.255.255.253 <-> eth0 10.255.255.254, from 10.255.255.252/30"
        in plan.summary
    )
    assert plan.tradeoff == (
        "published ports then live on the veth address 10.255.255.254, not on the host's; "
        "containers no longer see the host's interfaces; the docker CLI is unaffected; Docker's "
        "own rules stay off the host's forward hook; it takes effect when docker.service next "
        "starts"
    )
    preview = plan.preview()
    assert "iptables-nft -t filter -P FORWARD ACCEPT (now DROP)" in preview
    assert f"write {DROPIN}:" in preview
    assert preview[-1] == "(takes effect when docker.service next starts: systemd is not running)"
    for change in plan.changes:  # the record's form round-trips
        assert change_from_json(change.to_json()) == change


def test_with_systemd_running_apply_reloads_and_restarts_docker() -> None:
    snapshot = docker_capture()
    facts = netns_facts(systemd=True)
    plan, _ = verified_plan(snapshot, parse_ruleset(snapshot), "nmp-hs0", "docker-netns", facts)
    assert plan.preview()[-2:] == [
        "systemctl daemon-reload",
        "systemctl try-restart docker.service",
    ]
    assert plan.tradeoff.endswith("running containers restart once now (docker.service restarts)")


def test_the_dropin_runs_absolute_paths_and_no_shell() -> None:
    subnet = free_subnet(HOST_NETWORKS)
    text = dropin_text(netns_facts().netns, subnet, "docker-netns@wlan0", table_text(subnet, "t"))  # type: ignore[arg-type]
    commands = [line.split("=", 1)[1].lstrip("-") for line in text.splitlines() if "Exec" in line]
    assert commands and all(shlex.split(c)[0].startswith("/") for c in commands)
    assert all(os.access(shlex.split(c)[0], os.X_OK) for c in commands)  # on this machine
    assert not any(shlex.split(c)[0].rsplit("/", 1)[-1] in ("sh", "bash") for c in commands)
    assert "PrivateNetwork=yes" in text and "PrivateMounts=no" in text
    assert "10.0.0." not in text  # never the seed's hard-coded /24
    assert "ExecStartPre=-/usr/bin/nsenter -t 1 -n -- /usr/sbin/ip link delete docker0" in text
    assert "route add default via 10.255.255.253 dev eth0" in text


def test_the_dropin_passes_systemd_analyze_verify(tmp_path: Path) -> None:
    analyze = shutil.which("systemd-analyze")
    unit = Path("/lib/systemd/system/docker.service")
    if analyze is None or not unit.exists():
        pytest.skip("needs systemd-analyze and docker.io's docker.service")
    missing = [path for _, path in TOOLS if not os.path.exists(path)]
    if missing:
        pytest.skip(f"needs {missing}")
    shutil.copy(unit, tmp_path / "docker.service")
    (tmp_path / "docker.service.d").mkdir()
    subnet = free_subnet(HOST_NETWORKS)
    table = table_text(subnet, tag("docker-netns@wlan0"))
    dropin = tmp_path / "docker.service.d" / "60-hotspotguard-netns.conf"
    dropin.write_text(dropin_text(netns_facts().netns, subnet, "docker-netns@wlan0", table))  # type: ignore[arg-type]
    env = {**os.environ, "SYSTEMD_UNIT_PATH": f"{tmp_path}:"}
    check = [analyze, "verify", str(tmp_path / "docker.service")]
    proc = subprocess.run(check, env=env, capture_output=True, text=True)
    assert (proc.returncode, proc.stderr) == (0, "")  # not even a warning
    # it does read ours (systemd 252 warns, exit 0, of a line it cannot parse, and checks
    # only the first command of each list that is not "-")
    dropin.write_text(dropin.read_text().replace("'table ip", "'table ip '", 1))
    proc = subprocess.run(check, env=env, capture_output=True, text=True)
    assert f"{dropin}:" in proc.stderr and "Unbalanced quoting" in proc.stderr


@pytest.mark.parametrize(
    ("overrides", "reason"),
    [
        ({"dockerd": None}, "Docker is not installed here (no dockerd)"),
        (
            {"networks": ("10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16")},
            "no free private /30 for the veth",
        ),
        ({"docker0": "veth"}, "docker0 is a veth an earlier namespace set-up left"),
        ({"dropin": "[Service]\nPrivateNetwork=yes\n"}, f"{DROPIN} is there and is not"),
        ({"tools": (), "problem": "nft is not installed"}, "nft is not installed"),
    ],
)
def test_what_keeps_it_from_being_offered_is_said_in_one_line(
    overrides: dict[str, object], reason: str
) -> None:
    snapshot = docker_capture()
    ruleset = parse_ruleset(snapshot)
    facts = netns_facts(**overrides)
    with pytest.raises(FixUnavailable) as info:
        verified_plan(snapshot, ruleset, "nmp-hs0", "docker-netns", facts)
    assert str(info.value).startswith(reason) and "\n" not in str(info.value)
    listed = {c.strategy: c for c in candidates(snapshot, ruleset, "nmp-hs0", facts)}
    assert listed["docker-netns"].reason == str(info.value)


def test_planned_again_while_in_place_it_keeps_its_slash_30() -> None:
    """Once applied, docker0 is our veth and the drop-in ours: the same plan again."""
    snapshot = docker_capture()
    ruleset = parse_ruleset(snapshot)
    first, _ = verified_plan(snapshot, ruleset, "nmp-hs0", "docker-netns", netns_facts())
    dropin = first.changes[-1]
    assert isinstance(dropin, DropIn)
    facts = netns_facts(docker0="veth", dropin=dropin.text)
    again, _ = verified_plan(snapshot, ruleset, "nmp-hs0", "docker-netns", facts)
    assert again.changes == first.changes


def test_the_skip_ahead_search_finds_what_trying_every_slash_30_finds() -> None:
    """free_subnet jumps below a network it hits; checked against the plain search on random
    hosts (addresses and routes crowding the top of the pools)."""
    import ipaddress
    import random

    rng = random.Random(1030)

    starts = [
        first
        for pool in map(ipaddress.IPv4Network, POOLS)
        for first in range(int(pool.broadcast_address) - 3, int(pool.network_address) - 1, -4)
    ]

    def plain(networks: list[ipaddress.IPv4Network]) -> str | None:
        spans = [(int(n.network_address), int(n.broadcast_address)) for n in networks]
        for first in starts:
            if not any(low <= first + 3 and first <= high for low, high in spans):
                return str(ipaddress.IPv4Network((first, 30)))
        return None

    for _ in range(100):
        networks = []
        for _ in range(rng.randrange(1, 12)):
            pool = ipaddress.IPv4Network(rng.choice(POOLS))
            top = int(pool.broadcast_address)
            address = top - rng.randrange(0, 2048)
            prefix = rng.choice((16, 20, 24, 26, 28, 29, 30, 31, 32))
            networks.append(ipaddress.IPv4Network((address, prefix), strict=False))
        expected = plain(networks)
        texts = tuple(str(n) for n in networks)
        if expected is None:
            with pytest.raises(NetnsUnavailable):
                free_subnet(texts)
        else:
            assert str(free_subnet(texts)) == expected, texts
