"""`docker-no-drop` on the real kernel: Docker 28's ``"ip-forward-no-drop": true`` merged into
daemon.json (keys, values and order kept; a backup), the FORWARD policy drop Docker 28 set
reset now; the phone gets out; undo restores the file byte for byte and the normalized
ruleset exactly.  Docker 28 cannot run here (Debian 12 has 20.10): its API socket is a stand-in
answering ``GET /version`` with Docker 28's recorded reply; its rules are loaded as it writes
them.  daemon.json lives in the test's directory (never the machine's /etc)."""

from __future__ import annotations

import json
import os
import socket
import threading
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from hotspotguard.system import docker
from hotspotguard.usecases.operations import OperationError
from tests.helper.test_fix_docker import normalized_ruleset
from tests.kernel.scenarios.model import ruleset
from tests.lab import Lab, in_netns
from tests.sandbox import RootSandbox
from tests.usecases.test_inserts import delivered, operations

pytestmark = pytest.mark.kernel

#: Docker Engine 28.0.1's reply to GET /version (docker.com's packages, amd64)
DOCKER28_VERSION = {
    "Platform": {"Name": "Docker Engine - Community"},
    "Version": "28.0.1",
    "ApiVersion": "1.48",
    "MinAPIVersion": "1.24",
    "GitCommit": "bbd0a17",
    "GoVersion": "go1.23.6",
    "Os": "linux",
    "Arch": "amd64",
    "KernelVersion": "6.1.0-31-amd64",
    "BuildTime": "2025-02-26T10:41:31.000000000+00:00",
}
DAEMON_JSON = (
    '{\n    "log-driver": "journald",\n    "data-root": "/srv/docker",\n'
    '    "dns": [\n        "9.9.9.9"\n    ]\n}\n'
)


def docker28_socket(directory: Path) -> tuple[str, Callable[[], None]]:
    """A unix socket answering GET /version with Docker 28.0.1's reply; its path and a stop."""
    path = directory / "docker.sock"
    server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    server.bind(str(path))
    server.listen()
    body = json.dumps(DOCKER28_VERSION).encode()
    reply = b"HTTP/1.0 200 OK\r\nContent-Type: application/json\r\n\r\n" + body

    def serve() -> None:
        while True:
            try:
                conn, _ = server.accept()
            except OSError:
                return
            with conn:
                conn.recv(4096)
                conn.sendall(reply)

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()

    def stop() -> None:
        server.shutdown(socket.SHUT_RDWR)
        server.close()
        thread.join(5)

    return str(path), stop


@pytest.fixture
def docker28_api(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """A unix socket answering GET /version as Docker 28 does; daemon.json in tmp_path."""
    path, stop = docker28_socket(tmp_path)
    monkeypatch.setattr(docker, "DOCKER_SOCKET", path)
    monkeypatch.setattr(docker, "DAEMON_JSON_PATH", str(tmp_path / "etc-docker" / "daemon.json"))
    yield tmp_path / "etc-docker" / "daemon.json"
    stop()


def docker28_hotspot(lab: Lab) -> None:
    lab.load_nft(ruleset("nm-shared-hs0.nft"))
    lab.load_iptables(ruleset("docker28.rules"))


def test_docker_no_drop_merges_daemon_json_and_resets_the_policy(
    clean_lab: Lab, tmp_path: Path, docker28_api: Path
) -> None:
    lab = clean_lab
    docker28_hotspot(lab)
    daemon_json = docker28_api
    daemon_json.parent.mkdir()
    daemon_json.write_text(DAEMON_JSON)
    os.chmod(daemon_json, 0o600)
    ops = operations(tmp_path)
    before = normalized_ruleset(lab)
    assert not any(delivered(lab, ("outbound", "reply")).values())

    preview = in_netns(lab.host, lambda: ops.preview("hs0", "docker-no-drop"))
    assert preview["after"]["verdict"] == "ok"
    assert "Docker 28.0.1" in preview["plan"]["summary"]
    assert "no longer dropped by policy" in preview["plan"]["tradeoff"]
    assert preview["plan"]["preview"] == [
        f'edit {daemon_json}: set "ip-forward-no-drop": true, every other key kept '
        f"(the old file kept as {daemon_json}.hotspotguard-backup)",
        "iptables-nft -t filter -P FORWARD ACCEPT (now DROP)",
    ]
    assert daemon_json.read_text() == DAEMON_JSON and normalized_ruleset(lab) == before

    done = in_netns(lab.host, lambda: ops.apply("hs0", "docker-no-drop", permanent=False, uid=0))
    assert done["changed"]
    assert all(delivered(lab, ("outbound", "reply")).values())
    written = daemon_json.read_text()
    assert list(json.loads(written).items()) == [
        *json.loads(DAEMON_JSON).items(),
        ("ip-forward-no-drop", True),
    ]
    assert written.startswith('{\n    "log-driver"')  # its indentation kept
    assert os.stat(daemon_json).st_mode & 0o777 == 0o600
    assert Path(f"{daemon_json}.hotspotguard-backup").read_text() == DAEMON_JSON

    applied = normalized_ruleset(lab)
    again = in_netns(lab.host, lambda: ops.apply("hs0", "docker-no-drop", permanent=False, uid=0))
    assert not again["changed"] and normalized_ruleset(lab) == applied
    assert daemon_json.read_text() == written
    assert in_netns(lab.host, ops.list_fixes)[0]["in_place"] is True

    in_netns(lab.host, lambda: ops.undo("docker-no-drop@hs0", uid=0))
    assert daemon_json.read_text() == DAEMON_JSON
    assert not Path(f"{daemon_json}.hotspotguard-backup").exists()
    assert normalized_ruleset(lab) == before
    assert not any(delivered(lab, ("outbound", "reply")).values())


def test_a_daemon_json_that_is_not_json_is_refused(
    clean_lab: Lab, tmp_path: Path, docker28_api: Path
) -> None:
    lab = clean_lab
    docker28_hotspot(lab)
    docker28_api.parent.mkdir()
    docker28_api.write_text('{"log-driver": "journald",}\n')
    before = normalized_ruleset(lab)
    ops = operations(tmp_path)
    with pytest.raises(OperationError, match="is not valid JSON") as info:
        in_netns(lab.host, lambda: ops.apply("hs0", "docker-no-drop", permanent=False, uid=0))
    assert info.value.kind == "NotApplicable" and "\n" not in str(info.value)
    assert docker28_api.read_text() == '{"log-driver": "journald",}\n'
    assert sorted(p.name for p in docker28_api.parent.iterdir()) == ["daemon.json"]
    assert normalized_ruleset(lab) == before


def test_docker_older_than_28_gets_one_line_and_exit_2(clean_lab: Lab) -> None:
    """The CLI as root, /etc overlaid: Debian 12's dockerd (20.10) has no such option."""
    lab = clean_lab
    docker28_hotspot(lab)
    before = normalized_ruleset(lab)
    box = RootSandbox()
    try:
        hg = [str(Path(".venv/bin/python").absolute()), "-m", "hotspotguard"]
        proc = box.run(
            [*hg, "fix", "--iface", "hs0", "--strategy", "docker-no-drop"], lab.host, check=False
        )
    finally:
        box.close()
    assert proc.returncode == 2, proc.stderr
    assert proc.stderr.count("\n") == 1 and "older than 28" in proc.stderr, proc.stderr
    assert normalized_ruleset(lab) == before
