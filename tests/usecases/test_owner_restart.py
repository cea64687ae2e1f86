"""`docker-no-drop` and `docker-stale-drop` survive their owner's restart: Docker starts again
after the fix and writes its rules as it does at every start; the hotspot stays ok, a second
apply is a no-op, and undo still restores the files and the normalized ruleset exactly.

Why not a real restart: only Docker 20.10 runs here (Debian 12's docker.io).  20.10 knows
neither ``"ip-forward-no-drop"`` (Docker 28) nor the nftables firewall backend (Docker 29), so a
real dockerd restart would show 20.10's behaviour, not theirs.  Each restart is therefore
Docker's rules as that version writes them at its start, loaded in the lab's host namespace:
Docker 28 with ``"ip-forward-no-drop": true`` makes its chains and jumps again and leaves the
FORWARD policy alone (forwarding is already on); Docker 29's nftables backend deletes and makes
its own ``docker-bridges`` table again and does not touch iptables' tables at all."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from tests.helper.test_fix_docker import normalized_ruleset
from tests.kernel.scenarios.model import ruleset
from tests.lab import Lab, in_netns
from tests.usecases.test_files import DAEMON_JSON, docker28_api  # noqa: F401 (a fixture)
from tests.usecases.test_inserts import delivered, operations

pytestmark = pytest.mark.kernel

FLOWS = ("outbound", "reply")


def tables(lab: Lab) -> dict[tuple[str, str], list[Any]]:
    """The normalized ruleset by table: a table made again is listed after the others, which
    changes nothing the kernel does."""
    found: dict[tuple[str, str], list[Any]] = {}
    for item in normalized_ruleset(lab):
        body = next(iter(item.values()))
        name = body["name"] if "table" in item else body["table"]
        found.setdefault((body["family"], name), []).append(item)
    return found


def docker28_starts_with_no_drop(lab: Lab) -> None:
    """Docker 28's start with ``"ip-forward-no-drop": true``: its filter and nat tables as it
    writes them (every DOCKER-* chain and jump made again), the FORWARD policy left ACCEPT."""
    rules = ruleset("docker28.rules").replace(":FORWARD DROP", ":FORWARD ACCEPT")
    assert ":FORWARD ACCEPT" in rules
    lab.host_run(["iptables-nft-restore"], input=rules)  # its tables, as a fresh start leaves them


def docker29_starts(lab: Lab) -> None:
    """Docker 29's start with its nftables backend, forwarding already on: its table deleted
    and made again (the policy-accept layout); iptables' tables untouched."""
    lab.load_nft("delete table ip docker-bridges")
    lab.load_nft(ruleset("docker29-policy-accept.nft"))


@pytest.mark.usefixtures("docker28_api")
def test_docker_no_drop_survives_docker_28s_restart(
    clean_lab: Lab,
    tmp_path: Path,
    docker28_api: Path,  # noqa: F811
) -> None:
    lab = clean_lab
    lab.load_nft(ruleset("nm-shared-hs0.nft"))
    lab.load_iptables(ruleset("docker28.rules"))
    daemon_json = docker28_api
    daemon_json.parent.mkdir()
    daemon_json.write_text(DAEMON_JSON)
    ops = operations(tmp_path)
    before = normalized_ruleset(lab)
    assert not any(delivered(lab, FLOWS).values())

    done = in_netns(lab.host, lambda: ops.apply("hs0", "docker-no-drop", permanent=True, uid=0))
    assert done["changed"] and all(delivered(lab, FLOWS).values())
    written = daemon_json.read_text()
    assert json.loads(written)["ip-forward-no-drop"] is True
    applied = normalized_ruleset(lab)

    docker28_starts_with_no_drop(lab)
    assert normalized_ruleset(lab) == applied  # Docker wrote what the fix left
    assert all(delivered(lab, FLOWS).values())
    assert daemon_json.read_text() == written
    assert in_netns(lab.host, ops.list_fixes)[0]["in_place"] is True
    again = in_netns(lab.host, lambda: ops.apply("hs0", "docker-no-drop", permanent=True, uid=0))
    assert not again["changed"]

    in_netns(lab.host, lambda: ops.undo("docker-no-drop@hs0", uid=0))
    assert daemon_json.read_text() == DAEMON_JSON
    assert not Path(f"{daemon_json}.hotspotguard-backup").exists()
    assert normalized_ruleset(lab) == before
    assert not any(delivered(lab, FLOWS).values())


def test_docker_stale_drop_survives_docker_29s_restart(clean_lab: Lab, tmp_path: Path) -> None:
    lab = clean_lab
    lab.load_nft(ruleset("nm-shared-hs0.nft"))
    lab.load_nft(ruleset("docker29-policy-accept.nft"))
    lab.load_iptables(ruleset("docker28.rules"))  # left by the iptables backend before
    ops = operations(tmp_path)
    before = tables(lab)
    assert not any(delivered(lab, FLOWS).values())

    done = in_netns(lab.host, lambda: ops.apply("hs0", "docker-stale-drop", permanent=True, uid=0))
    assert done["changed"] and all(delivered(lab, FLOWS).values())
    applied = tables(lab)

    docker29_starts(lab)
    assert tables(lab) == applied
    assert all(delivered(lab, FLOWS).values())
    assert in_netns(lab.host, ops.list_fixes)[0]["in_place"] is True
    again = in_netns(lab.host, lambda: ops.apply("hs0", "docker-stale-drop", permanent=True, uid=0))
    assert not again["changed"]

    in_netns(lab.host, lambda: ops.undo("docker-stale-drop@hs0", uid=0))
    assert tables(lab) == before
    assert not any(delivered(lab, FLOWS).values())
