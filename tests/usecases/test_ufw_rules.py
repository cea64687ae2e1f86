"""`ufw-route` through the real ufw: ufw enabled with its defaults in the lab's host namespace,
its /etc on a throw-away overlay (tests/sandbox.py), never the machine's.  The CLI as root:
dry run, fix (the phone's real packets through, IPv4 and IPv6), second fix a no-op, `ufw reload`
keeps it (ufw's own permanence), undo restores the normalized ruleset and ufw's files exactly."""

from __future__ import annotations

import json
import shutil
from collections.abc import Iterator

import pytest

from tests.helper.test_fix_docker import normalized_ruleset
from tests.kernel.scenarios.model import ruleset
from tests.lab import ALL_FLOWS, Lab, _venv_python
from tests.sandbox import RootSandbox
from tests.usecases.test_inserts import delivered

pytestmark = pytest.mark.kernel

HG = [_venv_python(), "-m", "hotspotguard"]
UFW_FILES = "cat /etc/ufw/user.rules /etc/ufw/user6.rules /etc/ufw/ufw.conf"


@pytest.fixture
def ufw_lab(clean_lab: Lab) -> Iterator[tuple[Lab, RootSandbox]]:
    if shutil.which("ufw") is None:
        pytest.skip("ufw is not installed")
    lab = clean_lab
    lab.load_nft(ruleset("nm-shared-hs0.nft"))
    box = RootSandbox()
    try:
        # ufw's sysctl file would retune the lab host's network settings: not ours to test
        # ufw 0.36 completes its ufw6-user-limit chains only at its first change of user
        # rules after `enable`: make that change first, so what a fix changes is only its own
        box.run(
            ["sh", "-ec", "sed -i 's|^IPT_SYSCTL=.*|IPT_SYSCTL=|' /etc/default/ufw; "
             "ufw --force enable; ufw allow 9/udp; ufw delete allow 9/udp"],
            lab.host,
        )  # fmt: skip
        yield lab, box
    finally:
        box.close()


def sh(box: RootSandbox, lab: Lab, command: str) -> str:
    return box.run(["sh", "-ec", command], lab.host).stdout


def test_ufw_route_through_ufw_itself(ufw_lab: tuple[Lab, RootSandbox]) -> None:
    lab, box = ufw_lab
    before, files = normalized_ruleset(lab), sh(box, lab, UFW_FILES)
    assert not any(delivered(lab, ("dhcp", "outbound")).values())

    fix = [*HG, "fix", "--iface", "hs0", "--strategy", "ufw-route"]
    preview = json.loads(box.run([*fix, "--dry-run", "--json"], lab.host).stdout)
    assert preview["plan"]["preview"] == [
        "ufw route allow in on hs0 out on up0",
        "ufw allow in on hs0 to any port 67 proto udp",
        "ufw allow in on hs0 to any port 53 proto udp",
        "ufw allow in on hs0 to any port 53 proto tcp",
        "ufw allow in on hs0 from fe80::/10 to any port 547 proto udp",
    ]
    assert preview["after"]["verdict"] == "ok"
    recommended = json.loads(box.run([*HG, "fix", "--iface", "hs0", "--dry-run", "--json"],
                                     lab.host).stdout)  # fmt: skip
    assert recommended["plan"]["strategy"] == "ufw-route"  # one strategy for both culprits

    box.run(fix, lab.host)
    outcome = delivered(lab, tuple(ALL_FLOWS))
    assert all(outcome.values()), outcome
    status = sh(box, lab, "ufw status")
    assert "Anywhere on up0" in status and "ALLOW FWD" in status
    listing = box.run([*HG, "fixes"], lab.host).stdout
    assert "ufw-route@hs0" in listing and "  + ufw route allow in on hs0 out on up0" in listing
    applied = normalized_ruleset(lab)
    again = box.run(fix, lab.host).stdout
    assert "already in place" in again and normalized_ruleset(lab) == applied

    undone = box.run([*HG, "undo", "ufw-route@hs0"], lab.host).stdout
    assert "removed 5 rules" in undone
    assert sh(box, lab, UFW_FILES) == files
    assert normalized_ruleset(lab) == before
    assert not any(delivered(lab, ("dhcp", "outbound")).values())


def test_ufw_keeps_it_across_its_reload(ufw_lab: tuple[Lab, RootSandbox]) -> None:
    """Permanence is ufw's own: its files hold the rules, `ufw reload` loads them again.
    (ufw's reload rebuilds its chains its own way, so here the files are compared.)"""
    lab, box = ufw_lab
    files = sh(box, lab, UFW_FILES)
    box.run([*HG, "fix", "--iface", "hs0", "--strategy", "ufw-route"], lab.host)
    sh(box, lab, "ufw reload")
    assert all(delivered(lab, ("dhcp", "dns", "outbound", "reply")).values())
    box.run([*HG, "undo"], lab.host)
    assert sh(box, lab, UFW_FILES) == files
    sh(box, lab, "ufw reload")
    assert not any(delivered(lab, ("dhcp", "outbound")).values())


def test_a_rule_ufw_already_had_is_left_alone(ufw_lab: tuple[Lab, RootSandbox]) -> None:
    lab, box = ufw_lab
    sh(box, lab, "ufw allow in on hs0 to any port 67 proto udp")
    before, files = normalized_ruleset(lab), sh(box, lab, UFW_FILES)
    box.run([*HG, "fix", "--iface", "hs0", "--strategy", "ufw-route"], lab.host)
    assert all(delivered(lab, ("dhcp", "outbound")).values())
    box.run([*HG, "undo"], lab.host)
    assert sh(box, lab, UFW_FILES) == files and normalized_ruleset(lab) == before
    assert delivered(lab, ("dhcp",))["dhcp"]  # the user's own rule is still there


def test_ufw_not_installed_is_one_line_exit_2_and_nothing_changed(
    ufw_lab: tuple[Lab, RootSandbox],
) -> None:
    """ufw's rules are loaded but its command is gone (uninstalled, rules left from before):
    ufw-route is refused in one line, exit 2, and nothing changes — the ruleset, ufw's
    files, the record."""
    lab, box = ufw_lab
    before, files = normalized_ruleset(lab), sh(box, lab, UFW_FILES)
    fix = [*HG, "fix", "--iface", "hs0", "--strategy", "ufw-route"]
    # in the sandbox's own mount namespace only: /usr/sbin/ufw is an empty, unexecutable file
    hidden = ["sh", "-ec", 'mount --bind /dev/null /usr/sbin/ufw; exec "$@"', "sh"]
    proc = box.run([*hidden, *fix], lab.host, check=False)
    assert proc.returncode == 2, proc.stdout + proc.stderr
    assert proc.stderr == "hotspotguard: ufw is not installed here (no /usr/sbin/ufw)\n"
    assert normalized_ruleset(lab) == before and sh(box, lab, UFW_FILES) == files
    assert not box.written("/var/lib/hotspotguard/fixes.json").exists()
    dry = json.loads(box.run([*hidden, *HG, "fix", "--iface", "hs0", "--dry-run", "--json"],
                             lab.host).stdout)  # fmt: skip
    reasons = {c["strategy"]: c["reason"] for c in dry["candidates"]}
    assert reasons["ufw-route"] == "ufw is not installed here (no /usr/sbin/ufw)"
    assert dry["plan"]["strategy"] == "combined"  # what works without ufw's command
