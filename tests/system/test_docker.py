"""What system/docker.py tells docker-netns about how Docker is started."""

from __future__ import annotations

from pathlib import Path

import pytest

from hotspotguard.fixes.netns import UNIT
from hotspotguard.system import docker, systemd


@pytest.fixture
def no_systemd(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A system systemd does not run (no /run/systemd/system), with empty unit directories and
    a dockerd: an OpenRC or runit host."""
    units = tmp_path / "units"
    units.mkdir()
    monkeypatch.setattr(systemd, "BOOTED_MARKER", str(tmp_path / "run-systemd-system"))
    monkeypatch.setattr(systemd, "UNIT_DIRS", (str(units),))
    dockerd = tmp_path / "dockerd"
    dockerd.write_text("")
    monkeypatch.setattr(docker, "DOCKERD", (str(dockerd),))
    return units


def test_docker_netns_is_not_offered_where_no_systemd_would_read_its_drop_in(
    no_systemd: Path, tmp_path: Path
) -> None:
    facts = docker.netns_facts(str(tmp_path / "docker.service.d"))
    if facts.problem and "not started by systemd" not in facts.problem:
        pytest.skip(f"another reason comes first on this machine: {facts.problem}")
    assert facts.problem is not None
    assert f"no {UNIT} unit" in facts.problem and "\n" not in facts.problem


def test_a_docker_unit_on_a_system_systemd_does_not_run_now_is_enough(
    no_systemd: Path, tmp_path: Path
) -> None:
    """A container or chroot of a systemd distribution: the drop-in takes effect at its boot."""
    (no_systemd / UNIT).write_text("[Service]\n")
    facts = docker.netns_facts(str(tmp_path / "docker.service.d"))
    assert facts.problem is None or "not started by systemd" not in facts.problem
