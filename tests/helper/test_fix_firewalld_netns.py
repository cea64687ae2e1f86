"""`firewalld-zone` and `docker-netns` through the helper, as a user's D-Bus calls meet them
(tests/polkitlab.py: a real polkitd, the helper bus-activated in its own netns, /etc and
/var/lib on an overlay): PreviewFix → ApplyFix → UndoFix leaves the ruleset and the files as
they were; firewalld not running, and no dockerd, are refused with one line and nothing changed."""

from __future__ import annotations

import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.firewalldlab import FIREWALL_CMD, FIREWALLD, firewalld_lab_unavailable_reason
from tests.helper.test_service import call, errors
from tests.polkitlab import PolkitLab
from tests.ui_desktop.desktop_lab import stop_group

pytestmark = pytest.mark.kernel

DROPIN = "etc/systemd/system/docker.service.d/60-hotspotguard-netns.conf"


def _files(root: Path) -> dict[str, bytes]:
    return {
        str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()
    }


def _etc_written(plab: PolkitLab) -> dict[str, bytes]:
    """What the lab's /etc overlay holds beyond the machine's /etc (its upper directory)."""
    return _files(plab.root / str(plab.dir).lstrip("/") / "ovl" / "etc.up")


def test_docker_netns_round_trip(plab: PolkitLab) -> None:
    """Docker 28's rules (no dockerd in the helper's netns: the drop-in takes effect at
    Docker's next start, said in the answer): applied and undone exactly, over D-Bus."""
    plab.docker_hotspot()
    allow = plab.users["allow"]
    before = plab.ruleset()
    (preview,) = plab.run_client(allow, [call("PreviewFix", "hs0", "docker-netns")])
    plan = preview["ok"]
    assert plan["after"]["verdict"] == "ok", plan
    assert plab.ruleset() == before and not (plab.root / DROPIN).exists()  # a preview
    (applied,) = plab.run_client(
        allow, [call("ApplyFix", "hs0", "docker-netns", False, plan["generation"])]
    )
    assert applied["ok"]["changed"], applied
    assert "table ip hotspotguard-docker" in plab.ruleset()
    assert "DOCKER" not in plab.netns_run(["iptables-nft", "-S", "FORWARD"]).stdout
    assert "PrivateNetwork=yes" in (plab.root / DROPIN).read_text()
    (again,) = plab.run_client(allow, [call("ApplyFix", "hs0", "docker-netns", False, "")])
    assert again["ok"]["changed"] is False, again
    (listed,) = plab.run_client(allow, [call("ListFixes")])
    assert [f["id"] for f in listed["ok"]] == ["docker-netns@hs0"]
    (undone,) = plab.run_client(allow, [call("UndoFix", "docker-netns@hs0")])
    assert "error" not in undone, undone
    assert plab.ruleset() == before
    assert not (plab.root / DROPIN).exists()
    (listed,) = plab.run_client(allow, [call("ListFixes")])
    assert listed["ok"] == []


class Firewalld:
    """A real firewalld inside the polkit lab: its netns, its mount namespace (so it writes
    /etc/firewalld on the lab's overlay, where the helper reads its backups) and its bus."""

    def __init__(self, plab: PolkitLab) -> None:
        self.plab = plab
        self.start()

    def start(self) -> None:
        log = str(self.plab.dir / "firewalld.log")
        argv = [FIREWALLD, "--nofork", "--nopid", "--log-target", "file", "--log-file", log]
        self.proc = self.plab._popen(self.plab.ns_argv(argv), "firewalld.out")
        self.plab._wait(lambda: self.cmd("--state", check=False) == "running", 30, "firewalld")

    def stop(self) -> None:
        stop_group(self.proc, 10)

    def cmd(self, *args: str, check: bool = True) -> str:
        proc = self.plab.ns_run([FIREWALL_CMD, *args], check=False, timeout=60)
        if check and proc.returncode != 0:
            raise AssertionError(f"firewall-cmd {' '.join(args)}: {proc.stderr}{proc.stdout}")
        return proc.stdout.strip()

    def state(self) -> tuple[str, str, str, dict[str, bytes]]:
        zones = [self.cmd(*flag, "--get-zone-of-interface=hs0", check=False)
                 for flag in ((), ("--permanent",))]  # fmt: skip
        return self.plab.ruleset(), zones[0], zones[1], _files(self.plab.root / "etc/firewalld")


@pytest.fixture
def firewalld(plab: PolkitLab) -> Iterator[Firewalld]:
    reason = firewalld_lab_unavailable_reason()
    if reason:
        pytest.skip(reason)
    plab.docker_hotspot()
    plab.netns_run(["nft", "delete table ip filter; delete table ip nat"])  # no Docker here
    fw = Firewalld(plab)
    try:
        # nm-shared's chains, built once: firewalld keeps them until its next reload
        fw.cmd("--zone=nm-shared", "--add-interface=up0")
        fw.cmd("--zone=nm-shared", "--remove-interface=up0")
        fw.cmd("--zone=public", "--add-interface=hs0")
        yield fw
    finally:
        fw.stop()


def test_firewalld_zone_round_trip(plab: PolkitLab, firewalld: Firewalld) -> None:
    allow = plab.users["allow"]
    before = firewalld.state()
    assert before[1:3] == ("public", "")
    (preview,) = plab.run_client(allow, [call("PreviewFix", "hs0", "firewalld-zone")])
    plan = preview["ok"]
    assert plan["before"]["verdict"] == "blocked" and plan["after"]["verdict"] == "ok", plan
    assert firewalld.state() == before  # a preview
    (applied,) = plab.run_client(
        allow, [call("ApplyFix", "hs0", "firewalld-zone", False, plan["generation"])]
    )
    assert applied["ok"]["changed"], applied
    # no DHCPv6 served here: nm-shared is enough
    assert firewalld.state()[1:3] == ("nm-shared", "nm-shared")
    (undone,) = plab.run_client(allow, [call("UndoFix", "firewalld-zone@hs0")])
    assert "error" not in undone, undone
    assert firewalld.state() == before  # zones, ruleset, /etc/firewalld and its backups


def test_firewalld_not_running_is_refused(plab: PolkitLab, firewalld: Firewalld) -> None:
    firewalld.stop()
    subprocess.run(
        ["ip", "netns", "exec", plab.netns, "nft", "-f", "-"], check=True, text=True,
        input="table inet firewalld {\n chain filter_FORWARD {\n"
        "  type filter hook forward priority filter + 10; policy drop;\n }\n}\n",
    )  # fmt: skip
    before = plab.ruleset(), _etc_written(plab)
    assert "passwd" in before[1]  # the test users: the overlay is read
    allow = plab.users["allow"]
    answers = plab.run_client(allow, [call("ApplyFix", "hs0", "firewalld-zone", False, "")])
    assert errors(answers) == ["NotApplicable"], answers
    assert "firewalld is not running" in answers[0]["message"], answers
    assert "\n" not in answers[0]["message"]
    assert (plab.ruleset(), _etc_written(plab)) == before
    assert not (plab.root / "var/lib/hotspotguard/fixes.json").exists()


def test_docker_netns_without_dockerd_is_refused(plab: PolkitLab) -> None:
    """dockerd hidden from the lab's mount namespace only (an overlay of /usr/sbin whose upper
    directory holds a whiteout for it): NotApplicable in one line, nothing changed."""
    plab.docker_hotspot()
    upper, work = plab.dir / "ovl" / "sbin.up", plab.dir / "ovl" / "sbin.work"
    plab.ns_run(["sh", "-ec", f"mkdir {upper} {work}; mknod {upper}/dockerd c 0 0; "
                 f"mount -t overlay hg-sbin -o lowerdir=/usr/sbin,upperdir={upper},"
                 f"workdir={work} /usr/sbin"])  # fmt: skip
    try:
        assert not (plab.root / "usr/sbin/dockerd").exists()
        before = plab.ruleset(), _etc_written(plab)
        allow = plab.users["allow"]
        answers = plab.run_client(
            allow,
            [call("PreviewFix", "hs0", "docker-netns"),
             call("ApplyFix", "hs0", "docker-netns", False, "")],
        )  # fmt: skip
        assert errors(answers) == ["NotApplicable", "NotApplicable"], answers
        for answer in answers:
            assert "no dockerd" in answer["message"] and "\n" not in answer["message"], answer
        assert (plab.ruleset(), _etc_written(plab)) == before
        assert not (plab.root / "var/lib/hotspotguard/fixes.json").exists()
    finally:
        plab.stop_helper()  # it has /usr/sbin open through the overlay
        plab.ns_run(["umount", "-l", "/usr/sbin"], check=False)
