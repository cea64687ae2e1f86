"""The record of fixes is written atomically and durably (file and directory synced)."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest

from hotspotguard.usecases import state
from hotspotguard.usecases.operations import Operations, Paths


def test_the_file_and_then_its_directory_are_synced(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    synced: list[str] = []
    real_fsync = os.fsync

    def fsync(fd: int) -> None:
        kind = "dir" if stat.S_ISDIR(os.fstat(fd).st_mode) else "file"
        synced.append(kind)
        real_fsync(fd)

    monkeypatch.setattr(os, "fsync", fsync)
    path = str(tmp_path / "state" / "fixes.json")
    state.write(path, state.Record([{"id": "docker-user@hs0"}], {"op": "undo"}))
    assert synced == ["file", "dir"]
    record = state.read(path)
    assert record.fixes == [{"id": "docker-user@hs0"}] and record.pending == {"op": "undo"}
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600


def test_a_write_cut_short_before_its_rename_leaves_the_old_record(tmp_path: Path) -> None:
    """A power cut between writing the temporary file and renaming it: the record is the old
    one, whole; the next call removes the leftover."""
    paths = Paths(str(tmp_path / "state"), str(tmp_path / "d"), str(tmp_path / "nm"))
    state.store(paths.state_file, [{"id": "docker-user@hs0", "uid": 0, "changes": []}])
    leftover = Path(paths.state_dir) / ".fixes-abc123.json"
    leftover.write_text('{"format": "hotspotguard-fixes/1", "fix')  # half written
    fixes = Operations(paths).list_fixes()
    assert [f["id"] for f in fixes] == ["docker-user@hs0"]
    assert not leftover.exists()
