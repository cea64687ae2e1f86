"""`hotspotguard doctor` reports truthfully both ways: files present and trusted or not, the
helper activatable or not (polkit lab), NetworkManager running or stopped (NetworkManager lab),
a tray host and notification server on the session bus or not (desktop lab)."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from hotspotguard import doctor
from hotspotguard.cli import main
from tests.ui_desktop import desktop_lab

REPO = Path(__file__).resolve().parent.parent
RESOURCES = REPO / "resources" / "system"


def findings(doc: dict[str, Any]) -> dict[str, dict[str, str]]:
    return {check["check"]: check for check in doc["checks"]}


def run_doctor(env: dict[str, str], *args: str) -> tuple[int, dict[str, Any]]:
    done = subprocess.run(
        [sys.executable, "-m", "hotspotguard", "doctor", "--json", *args],
        capture_output=True, text=True, env=env, timeout=60, check=False,
    )  # fmt: skip
    assert done.returncode in (0, 1), done.stderr
    assert "Traceback" not in done.stderr
    return done.returncode, json.loads(done.stdout)


def lay_out(base: Path, helper: str) -> doctor.Places:
    for sub in ("services", "system.d", "actions"):
        (base / sub).mkdir(parents=True, exist_ok=True)
    service = (RESOURCES / "io.github.hotspotguard.Helper1.service").read_text()
    (base / "services/io.github.hotspotguard.Helper1.service").write_text(
        service.replace("@HELPER@", helper)
    )
    shutil.copy(RESOURCES / "io.github.hotspotguard.Helper1.conf", base / "system.d")
    shutil.copy(RESOURCES / "io.github.hotspotguard.policy", base / "actions")
    return doctor.Places([base / "services"], [base / "system.d"], [base / "actions"])


def test_files_present_and_the_helper_trusted(tmp_path: Path) -> None:
    places = lay_out(tmp_path, "/usr/bin/true")  # root's, in root's directories
    found = {f.check: f for f in doctor.check_files(places)}
    assert all(f.ok for f in found.values()), found
    assert found["helper service"].detail.endswith("→ /usr/bin/true")


def test_an_untrusted_or_missing_helper_is_a_problem(tmp_path: Path) -> None:
    open_dir = tmp_path / "open"
    open_dir.mkdir()
    open_dir.chmod(0o777)  # anybody could replace what is in it
    user_file = open_dir / "hotspotguard-helper"
    user_file.write_text("#!/bin/sh\n")
    user_file.chmod(0o755)
    places = lay_out(tmp_path / "a", str(user_file))
    service = next(f for f in doctor.check_files(places) if f.check == "helper service")
    assert not service.ok and "writable by others" in service.detail and service.fix
    places = lay_out(tmp_path / "b", "/nonexistent/hotspotguard-helper")
    service = next(f for f in doctor.check_files(places) if f.check == "helper service")
    assert not service.ok and "does not exist" in service.detail
    empty = doctor.Places([tmp_path / "none"], [tmp_path / "none"], [tmp_path / "none"])
    assert [f.ok for f in doctor.check_files(empty)] == [False, False, False]


def test_exit_codes_and_text(capsys: pytest.CaptureFixture[str]) -> None:
    code = main(["doctor"])
    out = capsys.readouterr().out
    assert code in (0, 1) and (code == 1) == ("\nproblem" in "\n" + out)
    assert all(line.startswith(("ok ", "problem ", " ")) for line in out.splitlines())
    with pytest.raises(SystemExit) as usage:
        main(["doctor", "--bogus"])
    assert usage.value.code == 2


@pytest.mark.kernel
def test_the_helper_installed_and_activatable(plab: Any) -> None:
    """Polkit lab: our files on its bus, the helper bus-activated by a user's read call;
    NetworkManager does not run there."""
    user = plab.users["allow"]
    argv = plab.ns_argv(
        [str(plab.venv / "bin" / "python"), "-m", "hotspotguard", "doctor", "--json",
         "--service-dir", str(plab.dir / "services"), "--policy-dir", str(plab.dir / "system.d"),
         "--actions-dir", str(plab.dir / "actions")],
        user,
    )  # fmt: skip
    env = {"PATH": "/usr/sbin:/usr/bin:/sbin:/bin", "LC_ALL": "C.UTF-8", "HOME": "/"}
    done = subprocess.run(argv, capture_output=True, text=True, env=env, timeout=60)
    assert done.returncode == 1, done.stderr
    found = findings(json.loads(done.stdout))
    for check in ("helper service", "bus policy", "polkit actions", "helper"):
        assert found[check]["status"] == "ok", found[check]
    assert "ListFixes" in found["helper"]["detail"]
    assert found["NetworkManager"]["status"] == "problem"
    assert found["NetworkManager"]["fix"] == "sudo systemctl start NetworkManager"


@pytest.mark.kernel
def test_networkmanager_running_then_stopped_and_no_helper(nm_lab: Any) -> None:
    env = {**nm_lab.env, "PYTHONPATH": str(REPO / "src")}
    code, doc = run_doctor(env)
    found = findings(doc)
    assert code == 1
    assert found["NetworkManager"]["status"] == "ok", found["NetworkManager"]
    assert "firewall backend" in found["NetworkManager"]["detail"]
    assert found["helper"]["status"] == "problem"  # nothing provides it on this bus
    assert "cannot be started" in found["helper"]["detail"]
    nm_lab.stop_networkmanager()
    try:
        code, doc = run_doctor(env)
        assert code == 1
        assert findings(doc)["NetworkManager"]["status"] == "problem"
    finally:
        nm_lab.start_networkmanager()


@pytest.mark.desktop
def test_tray_host_and_notifications_absent_then_present() -> None:
    reason = desktop_lab.missing()
    if reason:
        pytest.skip(reason)
    with desktop_lab.Desktop() as desktop:
        env = {**desktop.env, "PYTHONPATH": str(REPO / "src")}
        _, doc = run_doctor(env)
        found = findings(doc)
        assert found["tray host"]["status"] == "problem" and found["tray host"]["fix"]
        assert found["notifications"]["status"] == "problem"
        assert found["autostart"]["status"] == "problem"
        desktop.panel()
        desktop.dunst()
        autostart = Path(desktop.env["XDG_CONFIG_HOME"]) / "autostart"
        autostart.mkdir(parents=True)
        shutil.copy(REPO / "desktop/io.github.hotspotguard-autostart.desktop",
                    autostart / "io.github.hotspotguard.desktop")  # fmt: skip
        _, doc = run_doctor(env)
        found = findings(doc)
        for check in ("tray host", "notifications", "autostart"):
            assert found[check]["status"] == "ok", found[check]


def test_no_session_bus_is_said(monkeypatch: pytest.MonkeyPatch) -> None:
    env = {k: v for k, v in os.environ.items() if k != "DBUS_SESSION_BUS_ADDRESS"}
    _, doc = run_doctor({**env, "PYTHONPATH": str(REPO / "src")})
    assert "no session bus" in findings(doc)["tray host"]["detail"]


@pytest.mark.kernel
def test_iptables_legacy_tables_beside_iptables_nft_are_a_problem() -> None:
    """In a fresh network namespace: no legacy table (ok), then one made by iptables-legacy
    (a problem: two firewalls on the same hooks)."""
    if os.geteuid() != 0 or not shutil.which("iptables-legacy") or not shutil.which("ip"):
        pytest.skip("needs root, ip and iptables-legacy")
    if doctor._iptables_variant(shutil.which("iptables") or "") != "nf_tables":
        pytest.skip("iptables is not iptables-nft here")
    netns = f"hsgdoc{os.getpid()}"
    subprocess.run(["ip", "netns", "add", netns], check=True)
    try:
        env = {**os.environ, "PYTHONPATH": str(REPO / "src")}
        argv = ["ip", "netns", "exec", netns, sys.executable, "-m", "hotspotguard", "doctor",
                "--json"]  # fmt: skip

        def iptables() -> dict[str, str]:
            done = subprocess.run(argv, capture_output=True, text=True, env=env, timeout=60)
            return findings(json.loads(done.stdout))["iptables"]

        assert iptables()["status"] == "ok"
        subprocess.run(["ip", "netns", "exec", netns, "iptables-legacy", "-P", "FORWARD", "DROP"],
                       check=True)  # fmt: skip
        found = iptables()
        assert found["status"] == "problem" and "legacy tables exist too" in found["detail"]
        assert "iptables-legacy-save" in found["fix"]
    finally:
        subprocess.run(["ip", "netns", "del", netns], check=False)


TREE_FONTS = Path("/var/cache/hotspotguard-tests/trixie-plasma/usr/share/fonts/truetype/wqy")


def _fontconfig(tmp_path: Path, *directories: Path) -> Path:
    """A fontconfig configuration that sees only `directories`."""
    dirs = "".join(f"<dir>{d}</dir>" for d in directories)
    config = tmp_path / "fonts.conf"
    config.write_text(f"<fontconfig>{dirs}<cachedir>{tmp_path}/cache</cachedir></fontconfig>")
    return config


def test_a_chinese_locale_without_a_chinese_font_is_a_problem(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Issue 11, finding 7: without a CJK font the Chinese applet shows boxes; doctor says so
    and names the package (in other locales it says nothing)."""
    if not os.access(doctor.FC_LIST, os.X_OK):
        pytest.skip("fontconfig's fc-list is not installed")
    monkeypatch.delenv("LC_ALL", raising=False)
    monkeypatch.delenv("LC_MESSAGES", raising=False)
    monkeypatch.setenv("LANG", "C.UTF-8")
    assert doctor.check_fonts() == []
    monkeypatch.setenv("LANG", "zh_CN.UTF-8")
    monkeypatch.setenv("FONTCONFIG_FILE", str(_fontconfig(tmp_path, tmp_path / "none")))
    (finding,) = doctor.check_fonts()
    assert not finding.ok and "boxes" in finding.detail and "fonts-noto-cjk" in finding.fix
    if not TREE_FONTS.is_dir():
        return  # the Debian 13 tree (make test-plasma) brings one to try with
    monkeypatch.setenv("FONTCONFIG_FILE", str(_fontconfig(tmp_path, TREE_FONTS)))
    (finding,) = doctor.check_fonts()
    assert finding.ok and ("WenQuanYi" in finding.detail or "文泉驿" in finding.detail), finding
