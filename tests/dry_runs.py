"""Print each strategy's real `hotspotguard fix --iface hs0 --strategy NAME --dry-run` in the
kernel lab (tests/lab.py), for README's "How it fixes": the CLI as root in the lab's host
namespace, /etc and /var/lib overlaid (tests/sandbox.py), each layout loaded as its owner writes
it (tests/kernel/scenarios).  Docker 28 cannot run here (Debian 12 has 20.10): for
docker-no-drop's planned output the CLI's main runs with Docker's API socket pointed at a
stand-in answering GET /version as Docker 28 does (tests/usecases/test_files.py).

    sudo .venv/bin/python -m tests.dry_runs [STRATEGY ...]
"""

from __future__ import annotations

import os
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path

os.environ["HOTSPOTGUARD_SYSCONFDIR"] = "/nonexistent/hotspotguard-tests-etc"

from tests.kernel.scenarios.model import ruleset
from tests.lab import Lab, _venv_python
from tests.sandbox import RootSandbox
from tests.usecases.test_files import docker28_socket
from tests.usecases.test_inserts import HAND_WRITTEN

HG = [_venv_python(), "-m", "hotspotguard"]

#: the CLI's main with Docker's API socket (argv[1]) replaced; the rest of argv is the CLI's
WITH_SOCKET = (
    "import sys; from hotspotguard import cli; from hotspotguard.system import docker; "
    "docker.DOCKER_SOCKET = sys.argv[1]; sys.exit(cli.main(sys.argv[2:]))"
)


def docker28(lab: Lab) -> None:
    lab.load_iptables(ruleset("docker28.rules"))


def stale(lab: Lab) -> None:
    lab.load_nft(ruleset("docker29-policy-accept.nft"))
    lab.load_iptables(ruleset("docker28.rules"))


def forwarding_off(lab: Lab) -> None:
    lab.sysctl("net.ipv4.ip_forward", "0")


def input_drop(lab: Lab) -> None:
    lab.load_nft(ruleset("input-drop-forgets-hotspot.nft"))


def hand_written(lab: Lab) -> None:
    lab.load_nft(HAND_WRITTEN)


def docker29(lab: Lab) -> None:
    lab.load_nft(ruleset("docker29-policy-drop.nft"))


LAYOUTS: dict[str, Callable[[Lab], None]] = {
    "docker-user": docker28,
    "docker-no-drop": docker28,
    "docker-stale-drop": stale,
    "sysctl-forwarding": forwarding_off,
    "forward-allow": hand_written,
    "forward-allow/docker-bridges": docker29,
    "input-allow": input_drop,
    "ufw-route": lambda lab: None,  # ufw itself, enabled in the sandbox
}


def show(box: RootSandbox, lab: Lab, argv: list[str], shown: list[str]) -> None:
    proc = box.run(argv, lab.host, check=False)
    print(f"$ hotspotguard {' '.join(shown)}")
    print(proc.stdout + proc.stderr, end="")
    print(f"(exit {proc.returncode})\n")


def main(names: list[str]) -> int:
    lab = Lab()
    try:
        for name in names or list(LAYOUTS):
            strategy = name.split("/")[0]
            lab.reset()
            lab.load_nft(ruleset("nm-shared-hs0.nft"))
            LAYOUTS[name](lab)
            box = RootSandbox()
            try:
                if strategy == "ufw-route":  # as tests/usecases/test_ufw_rules.py does
                    box.run(
                        ["sh", "-ec", "sed -i 's|^IPT_SYSCTL=.*|IPT_SYSCTL=|' /etc/default/ufw; "
                         "ufw --force enable; ufw allow 9/udp; ufw delete allow 9/udp"],
                        lab.host,
                    )  # fmt: skip
                fix = ["fix", "--iface", "hs0", "--strategy", strategy, "--dry-run"]
                print(f"### {name}")
                show(box, lab, [*HG, *fix], fix)
                if strategy == "docker-no-drop":
                    with tempfile.TemporaryDirectory(prefix="hg-docker28-") as directory:
                        path, stop = docker28_socket(Path(directory))
                        try:
                            print("# with a stand-in Docker 28 API socket:")
                            argv = [HG[0], "-c", WITH_SOCKET, path, *fix]
                            show(box, lab, argv, fix)
                        finally:
                            stop()
            finally:
                box.close()
    finally:
        lab.close()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
