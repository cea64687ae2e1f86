"""Root runs only root-owned files (system/trust.py): one check for install-system and for the
permanent fix's drop-in and dispatcher script, tried on a venv whose files a real unprivileged
user (``nobody``) owns or can write, as a user-owned checkout would be."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from hotspotguard.helper.install import InstallError, check_helper, install_system
from hotspotguard.system.trust import Untrusted, check_runs_as_root
from hotspotguard.usecases import state
from hotspotguard.usecases.operations import OperationError, Operations, Paths

REPO = Path(__file__).resolve().parents[2]
CACHE = Path("/var/cache/hotspotguard-tests")  # root's, 0755 (unlike /tmp: 1777)
NOBODY = 65534


@pytest.fixture(scope="module")
def tree() -> Iterator[Path]:
    """A root-owned venv (no pip) whose site-packages points at a copy of the package, and a
    `hotspotguard-helper` script in it, as `pip install -e .` makes it."""
    if os.geteuid() != 0:
        pytest.skip("needs root (chown)")
    CACHE.mkdir(mode=0o755, parents=True, exist_ok=True)
    top = Path(tempfile.mkdtemp(prefix="trust-", dir=CACHE))
    try:
        top.chmod(0o755)
        base = getattr(sys, "_base_executable", sys.executable)
        subprocess.run([base, "-m", "venv", "--without-pip", str(top / "venv")], check=True)
        shutil.copytree(
            REPO / "src" / "hotspotguard",
            top / "src" / "hotspotguard",
            ignore=shutil.ignore_patterns("__pycache__"),
        )
        site = next((top / "venv" / "lib").glob("python3*/site-packages"))
        (site / "hotspotguard.pth").write_text(f"{top / 'src'}\n")
        helper = top / "venv" / "bin" / "hotspotguard-helper"
        helper.write_text(
            f"#!{top / 'venv' / 'bin' / 'python'}\n"
            "from hotspotguard.helper.main import main\nraise SystemExit(main())\n"
        )
        helper.chmod(0o755)
        yield top
    finally:
        shutil.rmtree(top, ignore_errors=True)


def helper_of(top: Path) -> Path:
    return top / "venv" / "bin" / "hotspotguard-helper"


def as_nobody(argv: list[str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["setpriv", f"--reuid={NOBODY}", f"--regid={NOBODY}", "--clear-groups", *argv],
        capture_output=True,
        text=True,
        check=False,
    )


def test_a_root_owned_tree_is_trusted(tree: Path) -> None:
    check_runs_as_root(helper_of(tree), "test")
    check_helper(helper_of(tree))


def test_a_sticky_directory_above_is_trusted_but_not_inside(tree: Path) -> None:
    """/tmp-like directories (root's, sticky, world-writable) above the helper are harmless:
    nobody else can rename or remove root's entries in them. Inside the package tree one is
    not: anybody could add a module or a .pth file there."""
    mode = tree.stat().st_mode
    try:
        tree.chmod(0o1777)
        check_runs_as_root(helper_of(tree), "test")
        site = next((tree / "venv" / "lib").glob("python3*/site-packages"))
        site_mode = site.stat().st_mode
        site.chmod(0o1777)
        try:
            with pytest.raises(Untrusted, match="writable by others"):
                check_runs_as_root(helper_of(tree), "test")
        finally:
            site.chmod(site_mode)
    finally:
        tree.chmod(mode)


@pytest.mark.parametrize(
    ("relative", "how"),
    [
        ("src/hotspotguard/__init__.py", "owner"),  # the attack: code appended to it
        ("src/hotspotguard/usecases", "owner"),  # a directory of the package tree
        ("src", "mode"),  # the .pth file's directory, group-writable
        ("venv/lib", "mode"),  # above site-packages
        ("venv/bin/hotspotguard-helper", "owner"),  # the helper itself
        ("venv/pyvenv.cfg", "owner"),  # where the interpreter looks for its home
    ],
)
def test_a_file_the_user_controls_is_refused(tree: Path, relative: str, how: str) -> None:
    path = tree / relative
    info = path.stat()
    try:
        if how == "owner":
            os.chown(path, NOBODY, NOBODY)
        else:
            path.chmod(info.st_mode | 0o070)
            os.chown(path, 0, NOBODY)
        if relative.endswith("__init__.py"):  # the user can now make root run their code
            wrote = as_nobody(["sh", "-c", f"echo '# injected' >> {path}"])
            assert wrote.returncode == 0, wrote.stderr
        with pytest.raises(Untrusted) as info_:
            check_runs_as_root(helper_of(tree), "test")
        message = str(info_.value)
        assert str(path) in message and "\n" not in message
        assert "make install" in message
        with pytest.raises(InstallError) as install_error:
            install_system(tree / "root", helper_of(tree), dry_run=True)
        assert str(path) in str(install_error.value)
    finally:
        os.chown(path, 0, 0)
        path.chmod(info.st_mode)


def test_a_template_the_user_controls_is_refused(tree: Path) -> None:
    """install-system copies the templates into the bus's and polkit's configuration."""
    resources = tree / "resources"
    shutil.copytree(REPO / "resources", resources)
    shutil.copytree(REPO / "desktop", tree / "desktop")
    policy = resources / "system" / "io.github.hotspotguard.Helper1.conf"
    install_system(tree / "root", helper_of(tree), dry_run=True, resources=resources / "system")
    os.chown(policy, NOBODY, NOBODY)
    try:
        with pytest.raises(InstallError) as info:
            install_system(
                tree / "root", helper_of(tree), dry_run=True, resources=resources / "system"
            )
        assert str(policy) in str(info.value)
    finally:
        shutil.rmtree(resources)
        shutil.rmtree(tree / "desktop")


def test_a_permanent_fix_is_refused_from_a_user_owned_tree(tree: Path) -> None:
    """`fix --permanent` from a checkout writes files naming its helper, which root runs at
    the next Docker start: refused before anything is written, with the path."""
    work = tree / "work"
    paths = Paths(str(work / "state"), str(work / "dropin"), str(work / "nm"), str(helper_of(tree)))
    state.store(paths.state_file, [{"id": "docker-user@hs0", "uid": 0, "changes": []}])
    ops = Operations(paths)
    init = tree / "src" / "hotspotguard" / "__init__.py"
    os.chown(init, NOBODY, NOBODY)
    try:
        with pytest.raises(OperationError) as info:
            ops.set_permanent("docker-user@hs0", True, uid=0)
        assert str(init) in str(info.value) and info.value.kind == "NotApplicable"
        assert not (work / "dropin").exists() and not (work / "nm").exists()
        assert ops.list_fixes()[0].get("permanent") is not True
    finally:
        os.chown(init, 0, 0)
    done = ops.set_permanent("docker-user@hs0", True, uid=0)
    assert len(done["files"]) == 2 and str(helper_of(tree)) in Path(done["files"][0]).read_text()
