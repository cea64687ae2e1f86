"""`firewalld-zone` against a real firewalld (tests/firewalldlab.py: the lab's host namespace,
a private system bus, its own copy of /etc/firewalld).  The hotspot `hs0` starts in firewalld's
`public` zone (as NetworkManager puts it there for a profile with connection.zone=public):
DHCP, DNS and forwarding are refused.  The CLI as root, /etc and /var/lib on an overlay: dry
run, fix (the phone's real packets through), second fix a no-op, firewalld's reload keeps it,
undo → firewalld's zone configuration and the normalized ruleset exactly as before; firewalld
not running and a firewalld without nm-shared and trusted zones are refused with one line,
exit 2, nothing changed."""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from tests.firewalldlab import FirewalldLab, firewalld_lab_unavailable_reason
from tests.helper.test_fix_docker import normalized_ruleset
from tests.helper.test_fix_networkmanager import hotspot as hotspot
from tests.helper.test_fix_networkmanager import phone_online
from tests.kernel.scenarios.model import ruleset
from tests.lab import Lab, _venv_python
from tests.nmlab import NmLab
from tests.sandbox import RootSandbox
from tests.usecases.test_inserts import delivered

pytestmark = pytest.mark.kernel

FLOWS = ("dhcp", "dns", "outbound", "reply")
ALL = (*FLOWS, "dhcp6", "dns6", "outbound6", "reply6")
FIX = ["fix", "--iface", "hs0", "--strategy", "firewalld-zone"]


class Rig:
    def __init__(self, lab: Lab, firewalld: FirewalldLab, box: RootSandbox) -> None:
        self.lab, self.firewalld, self.box = lab, firewalld, box

    def hg(self, *args: str, check: bool = True) -> tuple[int, str, str]:
        # firewalld's bus, and its /etc/firewalld (where it writes its backups) as it sees it
        env = ["env", f"DBUS_SYSTEM_BUS_ADDRESS={self.firewalld.address}"]
        mount = ["sh", "-c", 'mount --bind "$0" /etc/firewalld && exec "$@"',
                 str(self.firewalld.dir / "etc")]  # fmt: skip
        command = [*mount, *env, _venv_python(), "-m", "hotspotguard", *args]
        proc = self.box.run(command, self.lab.host, check=check)
        return proc.returncode, proc.stdout, proc.stderr

    def state(self) -> tuple[object, dict[str, str], str, str]:
        """The normalized ruleset, firewalld's configuration files, hs0's zones."""
        fw = self.firewalld
        runtime = fw.cmd("--get-zone-of-interface=hs0", check=False).strip()
        permanent = fw.cmd("--permanent", "--get-zone-of-interface=hs0", check=False).strip()
        return normalized_ruleset(self.lab), fw.config_files(), runtime, permanent


def _rig(lab: Lab, without_zones: tuple[str, ...] = ()) -> Iterator[Rig]:
    reason = firewalld_lab_unavailable_reason()
    if reason:
        pytest.skip(reason)
    lab.load_nft(ruleset("nm-shared-hs0.nft"))
    firewalld = FirewalldLab(lab.host, without_zones=without_zones)
    box = RootSandbox()
    try:
        firewalld.cmd("--zone=public", "--add-interface=hs0")
        yield Rig(lab, firewalld, box)
    finally:
        box.close()
        firewalld.close()


@pytest.fixture
def rig(clean_lab: Lab) -> Iterator[Rig]:
    yield from _rig(clean_lab)


def test_firewalld_zone_through_firewalld_itself(rig: Rig) -> None:
    before = rig.state()
    assert before[2:] == ("public", "")
    assert not any(delivered(rig.lab, ("dhcp", "outbound")).values())

    _, out, _ = rig.hg(*FIX, "--dry-run", "--json")
    preview = json.loads(out)
    assert preview["before"]["verdict"] == "blocked"
    assert preview["after"]["verdict"] == "ok"  # the engine, on its model of the zone
    # the lab's dnsmasq serves DHCPv6, which nm-shared does not let in: trusted, and why
    assert "(nm-shared would not be enough: after it, blocked:" in preview["plan"]["summary"]
    assert "IPv6 getting an address (DHCP)" in preview["plan"]["summary"]
    assert preview["plan"]["preview"] == [
        "firewalld (D-Bus): zone.changeZoneOfInterface(trusted, hs0) (now in public)",
        "firewalld (D-Bus): config.zone trusted addInterface(hs0) (permanent; now none)",
    ]
    assert rig.state() == before  # a dry run changes nothing
    _, out, _ = rig.hg("fix", "--iface", "hs0", "--dry-run", "--json")
    recommended = json.loads(out)
    assert recommended["plan"]["strategy"] == "firewalld-zone"

    rig.hg(*FIX)
    outcome = delivered(rig.lab, ALL)
    assert all(outcome.values()), outcome
    applied = rig.state()
    assert applied[2:] == ("trusted", "trusted")
    _, out, _ = rig.hg("status", "--iface", "hs0", check=False)
    assert out.startswith("ok:"), out
    _, again, _ = rig.hg(*FIX)
    assert "already in place" in again and rig.state() == applied

    rig.firewalld.cmd("--reload")  # firewalld's own permanence
    assert rig.state()[2:] == ("trusted", "trusted")
    assert all(delivered(rig.lab, ("dhcp", "outbound")).values())
    rig.firewalld.stop_firewalld()  # and across its restart (the table goes with it, and back)
    rig.firewalld.start_firewalld()
    assert rig.state()[2:] == ("trusted", "trusted")
    assert all(delivered(rig.lab, ("dhcp", "outbound")).values())

    _, undone, _ = rig.hg("undo", "firewalld-zone@hs0")
    assert "removed 2" in undone
    after = rig.state()
    assert after[1] == before[1]  # /etc/firewalld exactly as it was, its backups too
    assert after[2:] == ("public", "")
    # firewalld keeps a zone's chains once built, until its next reload: nothing jumps there
    assert unused_zone_chains(after[0], "trusted") == before[0]
    assert not any(delivered(rig.lab, ("dhcp", "outbound")).values())


def unused_zone_chains(ruleset: Any, zone: str) -> Any:
    """`ruleset` without the chains of `zone` (and their rules), checked to be unreferenced."""

    def of_zone(name: str) -> bool:
        return name.endswith(f"_{zone}") or f"_{zone}_" in name

    kept = []
    for item in ruleset:
        body = item.get("chain") or item.get("rule") or {}
        name = body.get("name") if "chain" in item else body.get("chain")
        if body.get("table") == "firewalld" and name and of_zone(name):
            continue
        kept.append(item)
    text = json.dumps(kept)
    assert f'_{zone}"' not in text and f"_{zone}_" not in text, "a rule still jumps there"
    return kept


def test_nm_shared_where_it_is_enough_and_the_users_permanent_zone_comes_back(rig: Rig) -> None:
    """With DHCPv6 let into nm-shared (the user's setting, runtime and permanent), nm-shared is
    enough: the plan takes it.  hs0 was bound to public permanently: undo binds it there again."""
    fw = rig.firewalld
    for where in ((), ("--permanent",)):
        fw.cmd(*where, "--zone=nm-shared", "--add-service=dhcpv6")
    fw.cmd("--permanent", "--zone=public", "--add-interface=hs0")
    before = rig.state()
    _, out, _ = rig.hg(*FIX, "--dry-run", "--json")
    assert json.loads(out)["plan"]["preview"][0].startswith(
        "firewalld (D-Bus): zone.changeZoneOfInterface(nm-shared, hs0)"
    )
    rig.hg(*FIX)
    assert rig.state()[2:] == ("nm-shared", "nm-shared")
    outcome = delivered(rig.lab, ALL)
    assert all(outcome.values()), outcome
    rig.hg("undo")
    after = rig.state()
    assert after[1:] == before[1:]
    assert unused_zone_chains(after[0], "nm-shared") == before[0]


def test_what_firewalld_really_builds_is_judged_before_it_is_kept(rig: Rig) -> None:
    """A firewalld policy the plan's model of a zone does not read (from trusted to anywhere:
    reject), which firewalld writes for an interface only once it is in trusted: the runtime
    move is judged on firewalld's real ruleset, taken back, and nothing is kept — one line,
    exit 2."""
    fw = rig.firewalld
    policy = ("--permanent", "--policy=hs-block")
    fw.cmd("--permanent", "--new-policy=hs-block")
    fw.cmd(*policy, "--add-ingress-zone=trusted")
    fw.cmd(*policy, "--add-egress-zone=ANY")
    fw.cmd(*policy, "--set-target=REJECT")
    fw.cmd("--reload")
    fw.cmd("--zone=public", "--add-interface=hs0")
    before = rig.state()
    code, out, err = rig.hg(*FIX, check=False)
    assert code == 2, (out, err)
    assert len(err.strip().splitlines()) == 1, err
    assert "in firewalld's zone trusted, hs0 is still blocked" in err
    assert "put back into public" in err
    after = rig.state()
    assert after[1:] == before[1:]
    assert unused_zone_chains(after[0], "trusted") == before[0]
    assert "firewalld-zone" not in rig.hg("fixes")[1]


def test_firewalld_not_running_is_refused(rig: Rig) -> None:
    rig.firewalld.stop_firewalld()
    rig.lab.load_nft(ruleset("nm-shared-hs0.nft"))  # firewalld took its table with it
    rig.lab.load_nft(
        "table inet firewalld {\n chain filter_FORWARD {\n"
        "  type filter hook forward priority filter + 10; policy drop;\n }\n}\n"
    )
    before = normalized_ruleset(rig.lab)
    code, out, err = rig.hg(*FIX, check=False)
    assert code == 2, (out, err)
    assert len(err.strip().splitlines()) == 1 and "firewalld is not running" in err, err
    assert normalized_ruleset(rig.lab) == before


def test_trusted_where_there_is_no_nm_shared(clean_lab: Lab) -> None:
    for rig in _rig(clean_lab, without_zones=("nm-shared",)):
        before = rig.state()
        _, out, _ = rig.hg(*FIX, "--dry-run", "--json")
        assert json.loads(out)["plan"]["preview"][0].startswith(
            "firewalld (D-Bus): zone.changeZoneOfInterface(trusted, hs0)"
        )
        rig.hg(*FIX)
        assert all(delivered(rig.lab, ("dhcp", "outbound")).values())
        rig.hg("undo")
        assert rig.state()[1:] == before[1:]


def test_a_zone_that_does_not_exist_any_more_is_refused(rig: Rig) -> None:
    """hs0 was in the user's own zone `hotspot`, deleted since the fix: undo cannot put it
    back there — one line, exit 2, nothing changed (the fix stays, and can be undone once the
    zone is back)."""
    fw = rig.firewalld
    fw.cmd("--permanent", "--new-zone=hotspot")
    fw.cmd("--reload")
    fw.cmd("--zone=hotspot", "--change-interface=hs0")
    rig.hg(*FIX)
    fw.cmd("--permanent", "--delete-zone=hotspot")
    fw.cmd("--reload")
    fixed = rig.state()
    assert fixed[2:] == ("trusted", "trusted")
    code, out, err = rig.hg("undo", check=False)
    assert code == 2, (out, err)
    assert err.strip().count("\n") == 0 and "has no zone hotspot" in err, err
    assert rig.state() == fixed
    assert "firewalld-zone@hs0" in rig.hg("fixes")[1]


DISPATCHER = "/etc/NetworkManager/dispatcher.d/90-hotspotguard"


def test_networkmanager_sets_its_zone_again_and_a_permanent_fix_follows(hotspot: NmLab) -> None:
    """A real NetworkManager whose hotspot profile says connection.zone=block (public would let
    it forward: NetworkManager binds the uplink to public too, and public forwards within
    itself), and a real
    firewalld on its bus; the phone leased its address from NetworkManager's dnsmasq (which
    serves no DHCPv6): the fix moves hs0 into nm-shared and the phone's TCP connection to the
    internet works; hotspot down/up → NetworkManager puts hs0 back into block, and the
    dispatcher script of a --permanent fix puts it into nm-shared again."""
    reason = firewalld_lab_unavailable_reason()
    if reason:
        pytest.skip(reason)
    lab = hotspot
    lab.nmcli("connection", "modify", "hotspot", "connection.zone", "block")
    firewalld = FirewalldLab(lab.host, bus_address=lab.bus_address)
    box = RootSandbox()

    def hg(*args: str) -> str:
        mount = ["sh", "-c", 'mount --bind "$0" /etc/firewalld && exec "$@"',
                 str(firewalld.dir / "etc")]  # fmt: skip
        env = ["env", f"DBUS_SYSTEM_BUS_ADDRESS={lab.bus_address}"]
        return box.run([*mount, *env, *args], lab.host).stdout

    def zone() -> str:
        return firewalld.cmd("--get-zone-of-interface=hs0", check=False).strip()

    def restart_hotspot() -> None:
        lab.down("hotspot")
        lab.up("hotspot")
        assert _wait(lambda: zone() == "block"), zone()  # NetworkManager's zone for it

    try:
        restart_hotspot()
        assert not phone_online(lab)
        files = firewalld.config_files()
        hg(_venv_python(), "-m", "hotspotguard", "fix", "--iface", "hs0",
           "--strategy", "firewalld-zone", "--permanent")  # fmt: skip
        assert zone() == "nm-shared" and phone_online(lab, 3.0)
        restart_hotspot()
        assert not phone_online(lab)
        # as NetworkManager's dispatcher runs it: the helper's clean environment finds the
        # system bus at its standard path, where the lab's bus is mounted for it
        bus = 'mount -t tmpfs tmpfs /run && mkdir /run/dbus && mount --bind "$1" /run/dbus'
        hg("sh", "-c", f'{bus} && shift && exec "$@"', "sh", str(lab.socket.parent),
           DISPATCHER, "hs0", "up")  # fmt: skip
        assert zone() == "nm-shared" and phone_online(lab, 3.0)
        hg(_venv_python(), "-m", "hotspotguard", "undo")
        assert zone() == "block" and firewalld.config_files() == files
        assert not phone_online(lab)
    finally:
        box.close()
        firewalld.close()


def _wait(ready: Callable[[], bool], seconds: float = 15) -> bool:
    deadline = time.monotonic() + seconds
    while not ready():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.2)
    return True
