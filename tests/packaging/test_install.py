"""`make install DESTDIR=… PREFIX=…` and `make uninstall`: the whole list in standard places,
every file and directory root's and writable only by root, and an uninstall that leaves the
staging tree empty."""

from __future__ import annotations

import os
import stat
import subprocess
from pathlib import Path

import pytest

from hotspotguard.helper.install import ALL_PARTS, Layout, system_files

REPO = Path(__file__).resolve().parents[2]
SYSTEM_PYTHON = Path("/usr/bin/python3")

pytestmark = pytest.mark.usefixtures("can_install")


def make(*args: str) -> str:
    result = subprocess.run(
        ["make", "--no-print-directory", "-C", str(REPO), *args],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    return result.stdout


def walk(root: Path) -> list[Path]:
    return sorted(Path(d) / n for d, dirs, files in os.walk(root) for n in (*dirs, *files))


def assert_root_only(root: Path) -> None:
    """No file root may run or read as configuration sits where another user could change it."""
    for path in [root, *walk(root)]:
        info = path.lstat()
        assert info.st_uid == 0 and info.st_gid == 0, f"{path} is not root's"
        assert not info.st_mode & (stat.S_IWGRP | stat.S_IWOTH), f"{path} is writable by others"
        assert not stat.S_ISLNK(info.st_mode), f"{path} is a symlink"


@pytest.mark.parametrize("prefix", ["/usr/local", "/usr"])
def test_install_lays_down_the_list_and_uninstall_removes_exactly_it(
    tmp_path: Path, prefix: str
) -> None:
    destdir = tmp_path / "stage"
    destdir.mkdir(mode=0o755)
    os.chmod(destdir, 0o755)
    os.chmod(tmp_path, 0o755)
    make("install", f"DESTDIR={destdir}", f"PREFIX={prefix}")
    layout = Layout(Path(prefix), Path("/etc"), SYSTEM_PYTHON)
    expected = {destdir / f.target.relative_to("/") for f in system_files(layout, ALL_PARTS)}
    files = {p for p in walk(destdir) if p.is_file()}
    assert expected <= files
    package = {p for p in files - expected if "/hotspotguard" in str(p.relative_to(destdir))}
    assert files == expected | package  # nothing else
    assert any(p.name == "cli.py" for p in package)
    assert_root_only(destdir)

    helper = destdir / prefix.lstrip("/") / "libexec/hotspotguard/hotspotguard-helper"
    assert helper.stat().st_mode & 0o777 == 0o755
    service = next(destdir.rglob("io.github.hotspotguard.Helper1.service")).read_text()
    assert f"Exec={prefix}/libexec/hotspotguard/hotspotguard-helper\n" in service
    assert "User=root" in service
    autostart = destdir / "etc/xdg/autostart/io.github.hotspotguard.desktop"
    assert f"Exec={prefix}/bin/hotspotguard-tray" in autostart.read_text()
    policy_dir = "usr/share/dbus-1/system.d" if prefix == "/usr" else "etc/dbus-1/system.d"
    assert (destdir / policy_dir / "io.github.hotspotguard.Helper1.conf").is_file()
    assert (destdir / "usr/share/polkit-1/actions/io.github.hotspotguard.policy").is_file()
    man = destdir / prefix.lstrip("/") / "share/man/man1/hotspotguard.1"
    assert man.read_text().startswith(".TH HOTSPOTGUARD 1")

    # the installed CLI runs from the staged package and finds its shipped example
    site = next(p.parent for p in package if p.name == "cli.py").parent
    example = destdir / prefix.lstrip("/") / "share/hotspotguard/examples"
    snapshot = next(example.glob("*.json"))
    run = subprocess.run(
        [
            str(SYSTEM_PYTHON),
            str(destdir / prefix.lstrip("/") / "bin/hotspotguard"),
            "explain",
            "--snapshot",
            str(snapshot),
        ],
        capture_output=True,
        text=True,
        env={"PYTHONPATH": str(site), "PATH": "/usr/bin:/bin"},
        check=False,
    )
    assert run.returncode == 1 and run.stdout.startswith("blocked:"), run.stderr
    # the permanent fixes' files name the installed helper (here: in the staging tree)
    code = "from hotspotguard.usecases.operations import Paths; print(Paths().helper)"
    named = subprocess.run(
        [str(SYSTEM_PYTHON), "-c", code], capture_output=True, text=True, check=False,
        env={"PYTHONPATH": str(site), "PATH": "/usr/bin:/bin"},
    )  # fmt: skip
    assert named.stdout.strip() == str(helper), named.stderr

    make("install", f"DESTDIR={destdir}", f"PREFIX={prefix}")  # again: idempotent
    assert {p for p in walk(destdir) if p.is_file()} == files
    make("uninstall", f"DESTDIR={destdir}", f"PREFIX={prefix}")
    assert walk(destdir) == []


def test_uninstall_leaves_a_neighbours_files(tmp_path: Path) -> None:
    destdir = tmp_path / "stage"
    neighbour = destdir / "usr/local/share/applications/org.example.other.desktop"
    neighbour.parent.mkdir(parents=True)
    neighbour.write_text("[Desktop Entry]\n")
    make("install", f"DESTDIR={destdir}")
    make("uninstall", f"DESTDIR={destdir}")
    assert [p for p in walk(destdir) if p.is_file()] == [neighbour]


def test_the_list_serves_install_system_too() -> None:
    """install-system (a root-owned checkout) writes a part of the same list."""
    from hotspotguard.helper.install import CHECKOUT_PARTS, installed_paths

    layout = Layout(helper=Path("/hotspotguard-helper"))
    checkout = {Path("/") / f.target.relative_to("/") for f in system_files(layout, CHECKOUT_PARTS)}
    assert set(installed_paths(Path("/"))) == checkout
    assert {f.part for f in system_files(layout)} == {"bus", "desktop", "autostart", "data", "docs"}


@pytest.mark.skipif(
    os.environ.get("HOTSPOTGUARD_PACKAGE_TESTS") != "1",
    reason="VENV=1 fetches the dependencies from PyPI: under `make test-packages`",
)
def test_venv_install_for_debian_12(tmp_path: Path) -> None:
    """`make install VENV=1`: a root-owned venv at /opt/hotspotguard with the dependencies,
    launchers naming its interpreter, and an uninstall that removes all of it."""
    destdir = tmp_path / "stage"
    destdir.mkdir(mode=0o755)
    os.chmod(tmp_path, 0o755)
    make("install", f"DESTDIR={destdir}", "VENV=1")
    assert_root_only(destdir / "usr")
    venv = destdir / "opt/hotspotguard"
    launcher = destdir / "usr/local/bin/hotspotguard"
    assert launcher.read_text().startswith("#!/opt/hotspotguard/bin/python3 -I\n")
    assert b"/stage/" not in (venv / "bin/pip").read_bytes()  # relocated to /opt
    snapshot = next((destdir / "usr/local/share/hotspotguard/examples").glob("*.json"))
    run = subprocess.run(
        [str(venv / "bin/python3"), str(launcher), "explain", "--snapshot", str(snapshot)],
        capture_output=True, text=True, check=False,
    )  # fmt: skip
    assert run.returncode == 1 and run.stdout.startswith("blocked:"), run.stderr
    helper = subprocess.run(
        [str(venv / "bin/python3"), "-c", "import nftables, pyroute2, dbus_next, qasync, PySide6"],
        capture_output=True, text=True, check=False,
    )  # fmt: skip
    assert helper.returncode == 0, helper.stderr
    make("uninstall", f"DESTDIR={destdir}", "VENV=1")
    assert walk(destdir) == []
