"""install-system / uninstall-system against a temporary root (never the real /usr)."""

from __future__ import annotations

import os
import shutil
import subprocess
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from hotspotguard.helper.install import (
    InstallError,
    check_helper,
    install_system,
    installed_paths,
    uninstall_system,
)

REPO = Path(__file__).resolve().parents[2]
HELPER = REPO / ".venv" / "bin" / "hotspotguard-helper"


@pytest.fixture
def trusted_helper() -> Path:
    if not HELPER.exists():
        pytest.skip("the venv has no hotspotguard-helper (pip install -e .)")
    try:
        check_helper(HELPER)
    except InstallError as error:
        pytest.skip(f"this checkout is not root-owned: {error}")
    return HELPER


def test_install_then_uninstall_exactly_our_files(tmp_path: Path, trusted_helper: Path) -> None:
    root = tmp_path / "root"
    steps = install_system(root, trusted_helper)
    written = sorted(step.path for step in steps)
    assert written == sorted(installed_paths(root))
    entry = (root / "usr/share/applications/io.github.hotspotguard.desktop").read_text()
    assert f"Exec={trusted_helper.parent}/hotspotguard-tray --show" in entry
    service = root / "usr/share/dbus-1/system-services/io.github.hotspotguard.Helper1.service"
    text = service.read_text()
    assert f"Exec={trusted_helper}\n" in text and "User=root" in text and "@HELPER@" not in text
    assert all(p.stat().st_mode & 0o777 == 0o644 for p in written)
    # a neighbour's file in the same directories is left alone
    neighbour = root / "usr/share/polkit-1/actions/org.example.other.policy"
    neighbour.write_text("<policyconfig/>")
    assert install_system(root, trusted_helper)  # again: idempotent
    removed = uninstall_system(root)
    assert sorted(step.path for step in removed) == written
    assert not any(p.exists() for p in written) and neighbour.exists()
    assert uninstall_system(root) == []


def test_dry_run_writes_nothing(tmp_path: Path, trusted_helper: Path) -> None:
    steps = install_system(tmp_path, trusted_helper, dry_run=True)
    assert len(steps) == len(installed_paths(tmp_path))
    assert not any(step.path.exists() for step in steps)
    assert not (tmp_path / "usr").exists()


def test_an_untrusted_helper_is_refused(tmp_path: Path) -> None:
    if os.geteuid() != 0:
        pytest.skip("needs root to make root-owned files")
    # tmp_path lies under /tmp: world-writable (sticky or not, D-Bus would run it as root)
    copy = tmp_path / "hotspotguard-helper"
    shutil.copy(HELPER if HELPER.exists() else "/bin/true", copy)
    with pytest.raises(InstallError, match="writable by others"):
        install_system(tmp_path / "root", copy)
    # a root-owned 0755 directory, but a helper owned by someone else / group-writable
    safe = Path("/run") / f"hg-install-test-{os.getpid()}"
    safe.mkdir(mode=0o755)
    try:
        helper = safe / "hotspotguard-helper"
        helper.write_text("#!/bin/sh\n")
        helper.chmod(0o755)
        check_helper(helper)  # trusted
        os.chown(helper, 65534, 65534)
        with pytest.raises(InstallError, match="not owned by root"):
            check_helper(helper)
        os.chown(helper, 0, 0)
        helper.chmod(0o775)
        with pytest.raises(InstallError, match="writable by others"):
            check_helper(helper)
        helper.chmod(0o755)
        helper.write_text(f"#!{tmp_path}/python\n")  # an interpreter in an untrusted place
        (tmp_path / "python").write_text("")
        with pytest.raises(InstallError):
            check_helper(helper)
    finally:
        shutil.rmtree(safe)
    assert not (tmp_path / "root").exists()


def test_templates_are_well_formed() -> None:
    system = REPO / "resources" / "system"
    policy = ET.parse(system / "io.github.hotspotguard.policy").getroot()
    defaults = {
        action.get("id"): tuple(action.findtext(f"defaults/{k}") for k in
                                ("allow_any", "allow_inactive", "allow_active"))
        for action in policy.iter("action")
    }  # fmt: skip
    assert defaults == {
        "io.github.hotspotguard.read": ("auth_admin", "auth_admin", "yes"),
        "io.github.hotspotguard.fix": ("auth_admin", "auth_admin", "auth_admin_keep"),
        "io.github.hotspotguard.persist": ("auth_admin",) * 3,
        "io.github.hotspotguard.undo-others": ("auth_admin",) * 3,
    }
    bus = ET.parse(system / "io.github.hotspotguard.Helper1.conf").getroot()
    owners = [(p.get("user"), a.get("own")) for p in bus.iter("policy") for a in p.iter("allow")
              if a.get("own")]  # fmt: skip
    assert owners == [("root", "io.github.hotspotguard.Helper1")]


def test_command_line_dry_run(tmp_path: Path, trusted_helper: Path) -> None:
    run = [str(trusted_helper.parent / "hotspotguard-helper")]
    out = subprocess.run(
        [*run, "install-system", "--dry-run", "--root", str(tmp_path)],
        capture_output=True, text=True, check=True,
    ).stdout  # fmt: skip
    count = len(installed_paths(tmp_path))
    assert out.count("would write ") == count and not (tmp_path / "usr").exists()
    subprocess.run(
        [*run, "install-system", "--root", str(tmp_path)], check=True, capture_output=True
    )
    out = subprocess.run(
        [*run, "uninstall-system", "--root", str(tmp_path)],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    assert out.count("remove ") == count
    version = subprocess.run([*run, "--version"], capture_output=True, text=True, check=True)
    assert version.stdout.startswith("hotspotguard ")
