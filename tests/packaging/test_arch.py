"""The Arch PKGBUILD: its .SRCINFO in sync, its version the package's, and its package() (run
under bash with $srcdir and $pkgdir, as makepkg does) laying down exactly what
`make install DESTDIR=… PREFIX=/usr` does.  No Arch machine needed."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from hotspotguard import __version__

REPO = Path(__file__).resolve().parents[2]
ARCH = REPO / "packaging" / "arch"
sys.path.insert(0, str(ARCH))
import srcinfo  # noqa: E402

pytestmark = pytest.mark.usefixtures("can_install")


def files(root: Path) -> list[str]:
    return sorted(
        str((Path(d) / n).relative_to(root)) for d, _dirs, names in os.walk(root) for n in names
    )


def test_srcinfo_is_in_sync_with_the_pkgbuild() -> None:
    written = (ARCH / ".SRCINFO").read_text()
    assert written == srcinfo.srcinfo(ARCH / "PKGBUILD"), "run `make srcinfo`"
    parsed = srcinfo.parse_srcinfo(written)
    pkgbuild = srcinfo.read_pkgbuild(ARCH / "PKGBUILD")
    for key in ("pkgver", "pkgrel", "depends", "makedepends", "source", "arch", "license"):
        assert parsed[key] == pkgbuild[key], key
    assert parsed["pkgver"] == [__version__]
    changelog = (REPO / "debian/changelog").read_text().split("\n", 1)[0]
    assert f"({__version__})" in changelog
    # the runtime dependencies Debian's package names, in Arch's names
    assert {"pyside6", "python-dbus-next", "python-pyroute2", "python-qasync", "nftables",
            "polkit"} <= set(parsed["depends"])  # fmt: skip


def test_package_installs_what_make_install_does(tmp_path: Path) -> None:
    srcdir, pkgdir, reference = tmp_path / "src", tmp_path / "pkg", tmp_path / "ref"
    for directory in (srcdir, pkgdir, reference):
        directory.mkdir(mode=0o755)
    os.chmod(tmp_path, 0o755)
    (srcdir / f"hotspotguard-{__version__}").symlink_to(REPO)
    script = 'set -e; source "$1"; build; package'
    run = subprocess.run(
        ["bash", "-c", script, "bash", str(ARCH / "PKGBUILD")],
        capture_output=True, text=True, check=False,
        env={"PATH": os.environ["PATH"], "srcdir": str(srcdir), "pkgdir": str(pkgdir)},
    )  # fmt: skip
    assert run.returncode == 0, run.stderr[-3000:]
    make = subprocess.run(
        ["make", "-C", str(REPO), "install", f"DESTDIR={reference}", "PREFIX=/usr"],
        capture_output=True, text=True, check=False,
    )  # fmt: skip
    assert make.returncode == 0, make.stderr[-3000:]
    packaged = files(pkgdir)
    assert packaged == files(reference)
    assert "usr/libexec/hotspotguard/hotspotguard-helper" in packaged
    assert "etc/xdg/autostart/io.github.hotspotguard.desktop" in packaged
    backup = srcinfo.read_pkgbuild(ARCH / "PKGBUILD")["backup"]
    assert set(backup) <= set(packaged)
