"""The files that keep fixes: checked by systemd's own verifier and run as NetworkManager would."""

from __future__ import annotations

import os
import shutil
import stat
import subprocess
from pathlib import Path

import pytest

from hotspotguard.system import persist
from hotspotguard.usecases.operations import Paths


def _helper() -> str:
    helper = Paths().helper
    if not os.path.exists(helper):
        pytest.skip(f"{helper} is not installed (pip install -e .)")
    return helper


def test_the_dropin_passes_systemd_analyze_verify(tmp_path: Path) -> None:
    analyze = shutil.which("systemd-analyze")
    unit = Path("/lib/systemd/system/docker.service")
    if analyze is None or not unit.exists():
        pytest.skip("needs systemd-analyze and docker.io's docker.service")
    helper = _helper()
    shutil.copy(unit, tmp_path / "docker.service")
    written = persist.install(str(tmp_path / "docker.service.d"), str(tmp_path / "nm"), helper)
    text = Path(written[0]).read_text()
    assert f"ExecStartPost=-{helper} reapply" in text
    assert "sleep" not in text and "bash" not in text
    env = {**os.environ, "SYSTEMD_UNIT_PATH": f"{tmp_path}:"}
    check = [analyze, "verify", str(tmp_path / "docker.service")]
    proc = subprocess.run(check, env=env, capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    # the verifier does read our drop-in: a broken one fails
    Path(written[0]).write_text("[Service]\nExecStartPost=not-absolute reapply\n")
    proc = subprocess.run(check, env=env, capture_output=True, text=True)
    assert proc.returncode != 0


def test_the_dispatcher_script_acts_only_on_up(tmp_path: Path) -> None:
    marker = tmp_path / "called"
    fake_helper = tmp_path / "helper"  # records its arguments: the script's contract
    fake_helper.write_text(f'#!/bin/sh\necho "$@" > {marker}\n')
    fake_helper.chmod(0o755)
    _, script = persist.install(str(tmp_path / "d"), str(tmp_path / "nm"), str(fake_helper))
    assert stat.S_IMODE(os.stat(script).st_mode) == 0o755
    assert subprocess.run(["sh", "-n", script]).returncode == 0
    subprocess.run([script, "wlan0", "down"], check=True)
    assert not marker.exists()
    subprocess.run([script, "wlan0", "up"], check=True)
    assert marker.read_text().split() == ["reapply"]  # every fix: an uplink may have changed


def test_paths_that_would_need_quoting_are_refused(tmp_path: Path) -> None:
    for helper in ("/home/a b/helper", "relative/helper", "/opt/%h/helper", "/x/$(id)"):
        with pytest.raises(ValueError):
            persist.install(str(tmp_path / "d"), str(tmp_path / "nm"), helper)
    assert not (tmp_path / "d").exists()


def test_remove_takes_exactly_our_files(tmp_path: Path) -> None:
    dropins, nm = tmp_path / "docker.service.d", tmp_path / "nm"
    nm.mkdir()
    (nm / "10-someone-else").write_text("#!/bin/sh\n")
    written = persist.install(str(dropins), str(nm), "/usr/bin/true")
    assert sorted(persist.remove(str(dropins), str(nm))) == sorted(written)
    assert not dropins.exists()  # it was ours alone
    assert [p.name for p in nm.iterdir()] == ["10-someone-else"]
    assert persist.remove(str(dropins), str(nm)) == []
