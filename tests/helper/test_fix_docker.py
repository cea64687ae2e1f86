"""The Docker fix on the real kernel with a real dockerd: `hotspotguard fix|undo|fixes` as root
(the helper's operations in-process), proven with packets between the lab's namespaces.

The CLI runs with /etc and /var/lib overlaid (tests/sandbox.py), so its record of fixes and the
permanent-fix files land in the sandbox, at the paths it uses on a real machine."""

from __future__ import annotations

import json
import re
import shlex
import subprocess
from collections.abc import Iterator
from typing import Any

import pytest

from tests.kernel.scenarios.model import ruleset
from tests.lab import PHONE_V4, Lab, _run, _venv_python, _which, start_dockerd
from tests.sandbox import RootSandbox

pytestmark = [pytest.mark.kernel, pytest.mark.docker]

HG = [_venv_python(), "-m", "hotspotguard"]
DROPIN = "/etc/systemd/system/docker.service.d/50-hotspotguard.conf"
DISPATCHER = "/etc/NetworkManager/dispatcher.d/90-hotspotguard"
CONTAINER_V4 = "172.17.0.2"
LISTEN_PORT = 8080


@pytest.fixture
def sandbox() -> Iterator[RootSandbox]:
    box = RootSandbox()
    yield box
    box.close()


def normalized_ruleset(lab: Lab) -> list[Any]:
    """`nft -j list ruleset` without handles, counters' values and the metainfo."""
    doc = json.loads(lab.host_run(["nft", "-j", "list", "ruleset"]).stdout)

    def clean(value: Any) -> Any:
        if isinstance(value, dict):
            if "counter" in value and isinstance(value["counter"], dict):
                return {"counter": {}}
            return {k: clean(v) for k, v in value.items() if k != "handle"}
        if isinstance(value, list):
            return [clean(v) for v in value]
        return value

    return [clean(item) for item in doc["nftables"] if "metainfo" not in item]


def can_connect(lab: Lab, from_ns: str, to_ns: str, address: str) -> bool:
    """Whether a TCP connection from `from_ns` reaches a listener in `to_ns` at `address`."""
    server = subprocess.Popen(
        [
            "ip", "netns", "exec", to_ns, _venv_python(), "-c",
            "import socket,sys\n"
            f"s=socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)\n"
            f"s.bind(('{address}', {LISTEN_PORT})); s.listen(); print('up', flush=True)\n"
            "s.settimeout(3)\n"
            "try: s.accept()\nexcept OSError: pass\n",
        ],
        stdout=subprocess.PIPE,
        text=True,
    )  # fmt: skip
    try:
        assert server.stdout is not None and server.stdout.readline().strip() == "up"
        client = _run(
            [
                "ip", "netns", "exec", from_ns, _venv_python(), "-c",
                f"import socket; socket.create_connection(('{address}', {LISTEN_PORT}), 1.0)",
            ],
            check=False,
        )  # fmt: skip
        return client.returncode == 0
    finally:
        server.kill()
        server.wait()


def hotspotguard(box: RootSandbox, lab: Lab, *args: str, check: bool = True) -> str:
    return box.run([*HG, *args], lab.host, check=check).stdout


def tagged(lab: Lab) -> list[str]:
    save = lab.host_run(["iptables-nft-save", "-t", "filter"]).stdout
    return [line for line in save.splitlines() if "hotspotguard:" in line]


@pytest.fixture
def docker_hotspot(clean_lab: Lab) -> Iterator[Lab]:
    """The lab's hotspot as NetworkManager shares it (its nft table), then a real dockerd started
    with forwarding off, as at boot: Docker's FORWARD policy drop blocks the phone."""
    if _which("dockerd") is None:
        pytest.skip("dockerd is not installed")
    clean_lab.load_nft(ruleset("nm-shared-hs0.nft"))
    yield clean_lab


@pytest.fixture
def container(docker_hotspot: Lab) -> Iterator[str]:
    """A namespace plugged into docker0 at 172.17.0.2, standing in for a container."""
    lab = docker_hotspot
    name = f"{lab.prefix}-ctr"
    _run(["ip", "netns", "add", name])
    try:
        yield name
    finally:
        _run(["ip", "netns", "del", name], check=False)
        lab.host_run(["ip", "link", "del", "hgc0"], check=False)


def plug_container(lab: Lab, name: str) -> None:
    lab.host_run(
        ["ip", "link", "add", "hgc0", "type", "veth", "peer", "name", "eth0", "netns", name]
    )
    lab.host_run(["ip", "link", "set", "hgc0", "master", "docker0", "up"])
    for command in (
        f"addr add {CONTAINER_V4}/16 dev eth0",
        "link set eth0 up",
        "link set lo up",
        "route add default via 172.17.0.1",
    ):
        _run(["ip", "-n", name, *command.split()])


def test_fix_then_undo_with_a_real_dockerd(
    docker_hotspot: Lab, container: str, sandbox: RootSandbox
) -> None:
    lab = docker_hotspot
    with start_dockerd(lab):
        plug_container(lab, container)
        assert not lab.probe(["outbound"])["outbound"].delivered
        assert not can_connect(lab, lab.phone, container, CONTAINER_V4)
        before = normalized_ruleset(lab)

        preview = json.loads(
            hotspotguard(sandbox, lab, "fix", "--iface", "hs0", "--dry-run", "--json")
        )
        assert preview["plan"]["strategy"] == "docker-user"
        assert preview["before"]["verdict"] == "blocked"
        assert "Docker" in preview["before"]["summary"]
        assert preview["after"]["verdict"] == "ok"
        assert normalized_ruleset(lab) == before, "a dry run changed the ruleset"

        out = hotspotguard(sandbox, lab, "fix", "--iface", "hs0")
        assert out.startswith("Applied docker-user@hs0"), out
        flows = lab.probe(["outbound", "reply"])
        assert flows["outbound"].delivered and flows["outbound"].masqueraded
        assert flows["reply"].delivered
        rules = tagged(lab)
        assert len(rules) == 2 and all("-A DOCKER-USER" in r for r in rules)
        assert all('--comment "hotspotguard:docker-user@hs0"' in r for r in rules)
        # least privilege: Docker's network stays closed to the phone, the phone to the uplink
        assert not can_connect(lab, lab.phone, container, CONTAINER_V4)
        assert not can_connect(lab, lab.inet, lab.phone, PHONE_V4)
        after = normalized_ruleset(lab)

        out = hotspotguard(sandbox, lab, "fix", "--iface", "hs0")
        assert "already in place" in out
        assert normalized_ruleset(lab) == after, "a second fix changed the ruleset"

        listing = hotspotguard(sandbox, lab, "fixes")
        assert "docker-user@hs0" in listing and "until reboot" in listing

        out = hotspotguard(sandbox, lab, "undo")
        assert out.strip() == "Undid docker-user@hs0: removed 2 rules"
        assert normalized_ruleset(lab) == before, "undo did not restore the ruleset exactly"
        assert not lab.probe(["outbound"])["outbound"].delivered
        assert hotspotguard(sandbox, lab, "fixes").strip() == "no fixes applied"


def _exec_start_post(box: RootSandbox) -> list[str]:
    text = box.written(DROPIN).read_text()
    match = re.search(r"^ExecStartPost=(.+)$", text, flags=re.M)
    assert match, text
    argv = shlex.split(match.group(1).removeprefix("-"))  # "-": its failure never fails Docker
    assert argv[0].startswith("/") and "sleep" not in text and "bash" not in text
    return argv


def test_a_permanent_fix_survives_docker_restarts_and_flushes(
    docker_hotspot: Lab, sandbox: RootSandbox
) -> None:
    lab = docker_hotspot
    with start_dockerd(lab):
        out = hotspotguard(sandbox, lab, "fix", "--iface", "hs0", "--permanent")
        assert "Kept after reboot" in out
        assert sandbox.written(DROPIN).is_file()
        dispatcher = sandbox.written(DISPATCHER)
        assert dispatcher.stat().st_mode & 0o777 == 0o755
        assert lab.probe(["outbound"])["outbound"].delivered
    # dockerd stopped and started again: Docker keeps DOCKER-USER's rules
    with start_dockerd(lab, forwarding_off_first=False):
        assert len(tagged(lab)) == 2
        assert lab.probe(["outbound"])["outbound"].delivered
        # the rules flushed (as by a firewall reload); the drop-in's own command puts them back
        lab.host_run(["iptables-nft", "-F", "DOCKER-USER"])
        assert not lab.probe(["outbound"])["outbound"].delivered
        sandbox.run(_exec_start_post(sandbox), lab.host)
        assert len(tagged(lab)) == 2
        assert lab.probe(["outbound"])["outbound"].delivered
        # so does NetworkManager's dispatcher when the hotspot comes up
        lab.host_run(["iptables-nft", "-F", "DOCKER-USER"])
        sandbox.run([str(DISPATCHER), "hs0", "up"], lab.host)
        assert lab.probe(["outbound"])["outbound"].delivered

        out = hotspotguard(sandbox, lab, "undo", "--all")
        assert "Undid docker-user@hs0" in out
        assert not sandbox.written(DROPIN).exists() and not dispatcher.exists()
        assert tagged(lab) == []


def _legacy_save(lab: Lab, tool: str) -> list[str]:
    save = lab.host_run([tool]).stdout
    return [re.sub(r"\[\d+:\d+\]", "", line) for line in save.splitlines() if line[:1] != "#"]


@pytest.mark.parametrize(
    ("layout", "v6_layout", "legacy"),
    [("docker28.rules", "docker28.v6.rules", False), ("docker27.rules", None, True)],
    ids=["docker28-nft-v4-v6", "docker27-legacy"],
)
def test_fix_on_dockers_layouts_as_docker_writes_them(
    docker_hotspot: Lab, sandbox: RootSandbox, layout: str, v6_layout: str | None, legacy: bool
) -> None:
    lab = docker_hotspot
    lab.load_iptables(ruleset(layout), legacy=legacy)
    if v6_layout:
        lab.load_iptables(ruleset(v6_layout), ipv6=True, legacy=legacy)
    flows = ["outbound", "reply", "outbound6", "reply6"]
    assert not lab.probe(flows)["outbound"].delivered
    if v6_layout:
        assert not lab.probe(flows)["outbound6"].delivered
    before = normalized_ruleset(lab)
    before_legacy = _legacy_save(lab, "iptables-legacy-save")

    plan = json.loads(hotspotguard(sandbox, lab, "fix", "--iface", "hs0", "--dry-run", "--json"))
    changes = plan["plan"]["changes"]
    assert [(c["variant"], c["family"]) for c in changes] == (
        [("nft", 4), ("nft", 6)] if v6_layout else [("legacy", 4)]
    )
    hotspotguard(sandbox, lab, "fix", "--iface", "hs0")
    after = lab.probe(flows)
    assert all(after[f].delivered for f in flows), after
    if legacy:
        assert len([r for r in _legacy_save(lab, "iptables-legacy-save") if "hotspotguard:" in r])

    hotspotguard(sandbox, lab, "undo", "docker-user@hs0")
    assert normalized_ruleset(lab) == before
    assert _legacy_save(lab, "iptables-legacy-save") == before_legacy
    assert not lab.probe(flows)["outbound"].delivered
