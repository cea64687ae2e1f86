"""``status --iface X``: an interface that is not there, or that is there but is not a shared
connection (the uplink), is a usage error (exit 2) that says so — never "no hotspot" with exit 0,
never a verdict for an interface nobody shares (issue 11, finding 10)."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from hotspotguard.cli import main
from tests.lab import Lab, _venv_python

RULESETS = Path(__file__).resolve().parents[1] / "kernel" / "scenarios" / "rulesets"
NO_BUS = "unix:path=/nonexistent/hotspotguard-test-bus"


def test_status_for_a_missing_interface_says_so(capsys: pytest.CaptureFixture[str]) -> None:
    code = main(["status", "--iface", "hsgnosuch0"])
    out, err = capsys.readouterr()
    assert code == 2, (out, err)
    assert "there is no interface named hsgnosuch0" in err
    assert "Traceback" not in err and out == ""


def _status(lab: Lab, *args: str) -> subprocess.CompletedProcess[str]:
    """`hotspotguard status` in the lab's host namespace, where no NetworkManager is on a bus:
    its firewall tables say what it shares."""
    argv = ["ip", "netns", "exec", lab.host, "env", f"DBUS_SYSTEM_BUS_ADDRESS={NO_BUS}"]
    return subprocess.run(
        [*argv, _venv_python(), "-m", "hotspotguard", "status", *args],
        capture_output=True,
        text=True,
        timeout=60,
    )


@pytest.mark.kernel
def test_status_for_the_uplink_says_it_is_not_shared(clean_lab: Lab) -> None:
    clean_lab.load_nft((RULESETS / "nm-shared-hs0.nft").read_text())
    uplink = _status(clean_lab, "--iface", "up0")
    assert uplink.returncode == 2, uplink
    assert uplink.stdout == ""
    assert uplink.stderr == (
        "hotspotguard: up0 is not a shared connection now "
        "(NetworkManager's firewall tables do not name it)\n"
    )
    both = _status(clean_lab, "--iface", "hs0", "--iface", "up0", "--json")
    assert both.returncode == 2 and "up0 is not a shared connection now" in both.stderr
    hotspot = _status(clean_lab, "--iface", "hs0")
    assert hotspot.returncode == 0, hotspot
    assert hotspot.stdout.startswith("ok: ")
