"""The exit codes the README's table promises, for what a user meets without the helper: the
command cannot do what was asked — exit 2 and one line, whether there is no system bus or a
bus without the helper (issue 11, finding 10)."""

from __future__ import annotations

import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from hotspotguard.cli import main

COMMANDS = (
    ["status"],
    ["status", "--iface", "lo"],
    ["status", "--watch"],
    ["fix", "--dry-run", "--iface", "lo"],
    ["fixes"],
    ["undo"],
)


@pytest.fixture
def bus_without_helper(tmp_path: Path) -> Iterator[str]:
    """A private dbus-daemon on which no helper (and no NetworkManager) can be activated."""
    if shutil.which("dbus-daemon") is None:
        pytest.skip("dbus-daemon is not installed")
    daemon = subprocess.Popen(
        [
            "dbus-daemon",
            "--session",
            "--nofork",
            "--print-address",
            f"--address=unix:dir={tmp_path}",
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert daemon.stdout is not None
        yield daemon.stdout.readline().strip()
    finally:
        daemon.kill()
        daemon.wait()


@pytest.mark.parametrize("argv", COMMANDS, ids=" ".join)
@pytest.mark.parametrize("bus", ["no bus", "bus without the helper"])
def test_a_user_without_the_helper_gets_exit_2_and_one_line(
    argv: list[str],
    bus: str,
    request: pytest.FixtureRequest,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    address = (
        "unix:path=/nonexistent/hotspotguard-test-bus"
        if bus == "no bus"
        else request.getfixturevalue("bus_without_helper")
    )
    monkeypatch.setenv("DBUS_SYSTEM_BUS_ADDRESS", address)
    monkeypatch.setattr("os.geteuid", lambda: 1000)  # a user: everything goes to the helper
    code = main(argv)
    out, err = capsys.readouterr()
    assert code == 2, (out, err)
    assert out == "" and err.count("\n") == 1 and err.startswith("hotspotguard: ")
    assert "Traceback" not in err
