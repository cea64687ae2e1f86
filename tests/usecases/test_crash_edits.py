"""Crash consistency for the change kinds beyond DOCKER-USER rules and sysctls: the helper
killed (SIGKILL) at every step of apply and undo of an insert into another program's chain
(an nft insert by handle; an ``iptables-restore --noflush`` commit), a policy reset (Docker's
stale FORWARD drop, IPv4 and IPv6: two commits), a file edit (daemon.json, and the policy
reset after it) and ufw's own commands.  Each time the next call finds the firewall, the
files and the record as before or as after, and a further apply or undo finishes from there
(tests/usecases/test_crash.py's driver and checks)."""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.firewalldlab import FirewalldLab, firewalld_lab_unavailable_reason
from tests.kernel.scenarios.model import ruleset
from tests.lab import Lab
from tests.sandbox import RootSandbox
from tests.usecases.test_crash import Machine, kill_at_every_step
from tests.usecases.test_files import DAEMON_JSON, docker28_api  # noqa: F401 (a fixture)
from tests.usecases.test_inserts import HAND_WRITTEN

pytestmark = pytest.mark.kernel


class FilesMachine(Machine):
    """The lab host with a file another program reads: its text and its directory's names
    (a backup left behind is a difference) are part of the state."""

    def __init__(self, lab: Lab, tmp: Path, watched: Path) -> None:
        super().__init__(lab, tmp)
        self.watched = watched

    def firewall(self) -> tuple[str, ...]:
        text = self.watched.read_text() if self.watched.exists() else "<none>"
        names = " ".join(sorted(os.listdir(self.watched.parent)))
        return (*super().firewall(), text, names)


class UfwMachine(Machine):
    """The lab host with the real ufw, its /etc on the sandbox's overlay: ufw's files are
    part of the state, and the driver runs where ufw sees them."""

    def __init__(self, lab: Lab, tmp: Path, box: RootSandbox) -> None:
        super().__init__(lab, tmp)
        self.box = box

    def command(self, argv: list[str]) -> list[str]:
        return self.box.argv(argv, self.lab.host)

    def firewall(self) -> tuple[str, ...]:
        files = self.box.run(
            ["cat", "/etc/ufw/user.rules", "/etc/ufw/user6.rules"], self.lab.host
        ).stdout
        return (*super().firewall(), files)


def test_insert_into_an_nft_table(clean_lab: Lab, tmp_path: Path) -> None:
    clean_lab.load_nft(ruleset("nm-shared-hs0.nft"))
    clean_lab.load_nft(HAND_WRITTEN)
    kill_at_every_step(Machine(clean_lab, tmp_path), "forward-allow")


def test_insert_into_iptables_chains(clean_lab: Lab, tmp_path: Path) -> None:
    """ufw's chains (iptables-nft) that drop the hotspot's DHCP and DNS: input-allow's accepts
    go before two rules, in one iptables-restore --noflush commit per family."""
    clean_lab.load_nft(ruleset("nm-shared-hs0.nft"))
    clean_lab.load_iptables(ruleset("ufw.rules"))
    clean_lab.load_iptables(ruleset("ufw.v6.rules"), ipv6=True)
    clean_lab.load_iptables("*filter\n-A ufw-user-forward -i hs0 -o up0 -j ACCEPT\nCOMMIT\n")
    clean_lab.load_iptables(
        "*filter\n-A ufw6-user-forward -i hs0 -o up0 -j ACCEPT\nCOMMIT\n", ipv6=True
    )
    kill_at_every_step(Machine(clean_lab, tmp_path), "input-allow")


def test_policy_resets_in_two_families(clean_lab: Lab, tmp_path: Path) -> None:
    clean_lab.load_nft(ruleset("nm-shared-hs0.nft"))
    clean_lab.load_nft(ruleset("docker29-policy-accept.nft"))
    clean_lab.load_iptables(ruleset("docker28.rules"))
    clean_lab.load_iptables(ruleset("docker28.v6.rules"), ipv6=True)
    kill_at_every_step(Machine(clean_lab, tmp_path), "docker-stale-drop")


@pytest.mark.usefixtures("docker28_api")
def test_a_file_edit_and_a_policy_reset(clean_lab: Lab, tmp_path: Path) -> None:
    clean_lab.load_nft(ruleset("nm-shared-hs0.nft"))
    clean_lab.load_iptables(ruleset("docker28.rules"))
    daemon_json = tmp_path / "etc-docker" / "daemon.json"  # where docker28_api says it is
    daemon_json.parent.mkdir()
    daemon_json.write_text(DAEMON_JSON)
    m = FilesMachine(clean_lab, tmp_path, daemon_json)
    m.extra["docker"] = [str(tmp_path / "docker.sock"), str(daemon_json)]
    kill_at_every_step(m, "docker-no-drop")


@pytest.fixture
def ufw_box(clean_lab: Lab) -> Iterator[RootSandbox]:
    if shutil.which("ufw") is None:
        pytest.skip("ufw is not installed")
    clean_lab.load_nft(ruleset("nm-shared-hs0.nft"))
    box = RootSandbox()
    try:
        # as tests/usecases/test_ufw_rules.py's lab: ufw's defaults, its sysctls left alone
        box.run(
            ["sh", "-ec", "sed -i 's|^IPT_SYSCTL=.*|IPT_SYSCTL=|' /etc/default/ufw; "
             "ufw --force enable; ufw allow 9/udp; ufw delete allow 9/udp"],
            clean_lab.host,
        )  # fmt: skip
        yield box
    finally:
        box.close()


def test_ufws_own_commands(clean_lab: Lab, tmp_path: Path, ufw_box: RootSandbox) -> None:
    kill_at_every_step(UfwMachine(clean_lab, tmp_path, ufw_box), "ufw-route")


def test_a_reapply_killed_at_every_step(clean_lab: Lab, tmp_path: Path) -> None:
    """The owner rewrites its table (new handles), the dispatcher's `reapply` puts a
    permanent forward-allow back and is killed at each step: the next call finds the accepts
    back in place with their new identity recorded, or not back, and undo then leaves the
    owner's table exactly as the owner wrote it — nothing of ours behind."""
    clean_lab.load_nft(ruleset("nm-shared-hs0.nft"))
    clean_lab.load_nft(HAND_WRITTEN)
    m = Machine(clean_lab, tmp_path)
    written = m.firewall()

    shift = iter(range(1, 100))

    def rewrite() -> None:  # the same table, its rules under new handles each time
        clean_lab.load_nft("delete table inet filter")
        scratch = [f"add chain inet filter scratch{n}" for n in range(next(shift))]
        clean_lab.load_nft("\n".join(["add table inet filter", *scratch]))
        clean_lab.load_nft("\n".join(s.replace("add", "delete") for s in scratch))
        clean_lab.load_nft(HAND_WRITTEN)
        assert m.firewall() == written

    m.run("apply", strategy="forward-allow", permanent=True)
    after = m.firewall()
    rewrite()
    steps, result = m.run("reapply")
    assert result == [{"id": "forward-allow@hs0", "result": "applied"}]
    assert m.firewall() == after
    outcomes = []
    for stop in range(1, len(steps) + 1):
        rewrite()
        m.run("reapply", stop=stop)
        _, fixes = m.run("list")
        now = m.firewall()
        assert now in (written, after)
        assert fixes[0]["in_place"] is (now == after)
        outcomes.append("after" if now == after else "rewritten")
        m.run("undo")
        assert m.firewall() == written and m.files() == []
        m.run("apply", strategy="forward-allow", permanent=True)
    print(f"\nreapply: {steps}; outcomes: {outcomes}")
    assert "after" in outcomes and "rewritten" in outcomes


def test_a_backup_left_by_a_cut_short_file_edit_goes(tmp_path: Path) -> None:
    """Killed between writing daemon.json's backup and daemon.json itself (apply), or between
    writing it back and removing the backup (undo): the next call removes the backup, which
    still holds the text from before, and the directory is as before."""
    from hotspotguard.fixes.plan import FileChange
    from hotspotguard.usecases import state
    from hotspotguard.usecases.operations import Operations, Paths

    daemon_json = tmp_path / "docker" / "daemon.json"
    daemon_json.parent.mkdir()
    daemon_json.write_text(DAEMON_JSON)
    change = FileChange(str(daemon_json), DAEMON_JSON, DAEMON_JSON + "x", "an edit")
    ops = Operations(Paths(str(tmp_path / "state"), str(tmp_path / "d"), str(tmp_path / "nm")))
    for pending in ("apply", "undo"):
        Path(change.backup).write_text(DAEMON_JSON)
        fixes = []
        if pending == "undo":
            fixes = [{"id": "docker-no-drop@hs0", "strategy": "docker-no-drop", "iface": "hs0",
                      "changes": [change.to_json()]}]  # fmt: skip
        intent = {"op": pending, "id": "docker-no-drop@hs0", "changes": [change.to_json()]}
        state.write(ops.paths.state_file, state.Record(fixes, intent))
        assert ops.list_fixes() == []
        assert os.listdir(daemon_json.parent) == ["daemon.json"]
        assert daemon_json.read_text() == DAEMON_JSON


class FirewalldMachine(Machine):
    """The lab host with a real firewalld (tests/firewalldlab.py): the interface's zones,
    runtime and permanent, and every file of firewalld's configuration (its `ZONE.xml.old`
    backups too) are part of the state; the driver runs on firewalld's bus, with its
    /etc/firewalld where the helper would see it."""

    def __init__(self, lab: Lab, tmp: Path, firewalld: FirewalldLab) -> None:
        super().__init__(lab, tmp)
        self.firewalld = firewalld

    def command(self, argv: list[str]) -> list[str]:
        etc = str(self.firewalld.dir / "etc")
        mount = ["unshare", "--mount", "--propagation", "private", "sh", "-c",
                 'mount --bind "$0" /etc/firewalld && exec "$@"', etc]  # fmt: skip
        bus = ["env", f"DBUS_SYSTEM_BUS_ADDRESS={self.firewalld.address}"]
        return super().command([*mount, *bus, *argv])

    def firewall(self) -> tuple[str, ...]:
        fw = self.firewalld
        zones = " ".join(
            fw.cmd(*flag, "--get-zone-of-interface=hs0", check=False).strip() or "-"
            for flag in ((), ("--permanent",))
        )
        files = "\n".join(f"{path}: {text!r}" for path, text in fw.config_files().items())
        return (*super().firewall(), zones, files)


def test_firewallds_zone_through_its_d_bus_api(clean_lab: Lab, tmp_path: Path) -> None:
    """hs0 in `public` (as in tests/usecases/test_firewalld_zone.py), moved into `trusted`
    runtime and permanent, killed at each step: firewalld's zones and its configuration files
    (backups included) as before or as after.  `trusted`'s chains are built once first:
    firewalld keeps a zone's chains until its next reload, nothing jumps to them after undo."""
    reason = firewalld_lab_unavailable_reason()
    if reason:
        pytest.skip(reason)
    clean_lab.load_nft(ruleset("nm-shared-hs0.nft"))
    firewalld = FirewalldLab(clean_lab.host)
    try:
        firewalld.cmd("--zone=trusted", "--add-interface=up0")  # trusted's chains, built
        firewalld.cmd("--zone=trusted", "--remove-interface=up0")
        firewalld.cmd("--zone=public", "--add-interface=hs0")
        kill_at_every_step(FirewalldMachine(clean_lab, tmp_path, firewalld), "firewalld-zone")
    finally:
        firewalld.close()
