"""A Debian 13 ("trixie") tree for building and installing the package, cached between runs.

The tree is ``debootstrap --variant=buildd`` from the machine's own apt mirror (the URL in
``/etc/apt/sources.list*``) plus the build tools (debhelper, dh-python, lintian), kept at
``/var/cache/hotspotguard-tests/trixie-build`` and never changed after it is complete (a
stamp file beside it says so).  Every run works on an overlay of it: a fresh upper directory in a
private mount namespace (``unshare --mount``), so a build, an install and a purge never touch
the cache, and apt's downloaded ``.deb`` files are kept in a second cache directory bound over
``/var/cache/apt/archives``.

``python3 -m tests.packaging.debian_tree`` builds (or checks) the cached tree and prints the time.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

CACHE = Path(os.environ.get("HOTSPOTGUARD_TEST_CACHE", "/var/cache/hotspotguard-tests"))
SUITE = "trixie"
TREE = CACHE / f"{SUITE}-build"
ARCHIVES = CACHE / f"{SUITE}-apt-archives"
# Bump when the list changes: the cached tree is rebuilt.
BUILD_TOOLS = (
    "debhelper",
    "dh-python",
    "pybuild-plugin-pyproject",
    "python3-all",
    "python3-setuptools",
    "python3-wheel",
    "lintian",
    "fakeroot",
)
TOOLS_KEY = " ".join(BUILD_TOOLS)
CLEAN_ENV = {
    "PATH": "/usr/sbin:/usr/bin:/sbin:/bin",
    "LC_ALL": "C.UTF-8",
    "HOME": "/root",
    "DEBIAN_FRONTEND": "noninteractive",
}


class TreeError(Exception):
    """The tree cannot be built or used here; the message says why."""


def mirror_url() -> str:
    """The machine's Debian mirror (the first ``deb`` URL of its apt sources)."""
    sources = [*sorted(Path("/etc/apt").glob("sources.list.d/*")), Path("/etc/apt/sources.list")]
    for path in sources:
        try:
            text = path.read_text(encoding="utf-8")
        except OSError:
            continue
        for match in re.finditer(r"^(?:URIs:|deb)\s+(?:\[[^]]*\]\s+)?(\S+)", text, re.M):
            url = match.group(1).rstrip("/")
            if "security" not in url and url.startswith(("http://", "https://")):
                return url
    raise TreeError("no Debian mirror in /etc/apt/sources.list*")


def unavailable_reason() -> str | None:
    if os.geteuid() != 0:
        return "needs root (debootstrap, chroot, mount namespaces)"
    for tool in ("debootstrap", "unshare", "chroot", "mount"):
        if shutil.which(tool) is None:
            return f"{tool} is not installed"
    return None


def _stamp(tree: Path) -> Path:
    """Beside the tree (a file inside it would be in every test's view of it)."""
    return tree.with_name(tree.name + ".complete")


def tree_ready(tree: Path = TREE) -> bool:
    try:
        return _stamp(tree).read_text(encoding="utf-8").strip() == TOOLS_KEY
    except OSError:
        return False


def ensure_tree(tree: Path = TREE, log: Path | None = None) -> float:
    """Build the cached tree unless it is complete; the seconds it took (0 when cached)."""
    if tree_ready(tree):
        return 0.0
    start = time.monotonic()
    partial = tree.with_name(tree.name + ".partial")
    shutil.rmtree(partial, ignore_errors=True)
    shutil.rmtree(tree, ignore_errors=True)
    _stamp(tree).unlink(missing_ok=True)
    partial.parent.mkdir(parents=True, exist_ok=True)
    ARCHIVES.mkdir(parents=True, exist_ok=True)
    out = open(log, "ab") if log else subprocess.DEVNULL  # noqa: SIM115
    try:
        _check(
            ["debootstrap", "--variant=buildd", SUITE, str(partial), mirror_url()],
            stdout=out,
        )
        (partial / "etc/apt/sources.list").write_text(
            f"deb {mirror_url()} {SUITE} main\n", encoding="utf-8"
        )
        script = (
            "apt-get -q update && "
            f"apt-get install -y -q --no-install-recommends {TOOLS_KEY} && apt-get clean"
        )
        _in_chroot(partial, script, stdout=out, writable_cache=True)
    finally:
        if log:
            out.close()  # type: ignore[union-attr]
    partial.rename(tree)
    _stamp(tree).write_text(TOOLS_KEY + "\n", encoding="utf-8")
    return time.monotonic() - start


def _check(argv: list[str], **kwargs: object) -> None:
    result = subprocess.run(argv, env=CLEAN_ENV, stderr=subprocess.PIPE, **kwargs)  # type: ignore
    if result.returncode != 0:
        tail = result.stderr.decode("utf-8", "replace")[-2000:]
        raise TreeError(f"{argv[0]} failed ({result.returncode}): {tail}")


# Runs as `unshare --mount --propagation private sh -c MOUNT_SCRIPT sh ROOT SCRIPT`.
_MOUNTS = r"""
set -e
root=$1; shift
if [ -n "$OVERLAY" ]; then
  layers="lowerdir=$LOWER,upperdir=$OVERLAY/upper,workdir=$OVERLAY/work"
  mount -t overlay overlay -o "$layers" "$root"
fi
mount -t proc proc "$root/proc"
mount -t sysfs sysfs "$root/sys"
mount --rbind /dev "$root/dev"
mount -t tmpfs tmpfs "$root/run"
mount -t tmpfs tmpfs "$root/tmp"
mkdir -p "$root/var/cache/apt/archives"
if [ -n "$ARCHIVES" ]; then mount --bind "$ARCHIVES" "$root/var/cache/apt/archives"; fi
cp /etc/resolv.conf "$root/etc/resolv.conf" 2>/dev/null || true
exec chroot "$root" /bin/sh -c "$1"
"""


def _in_chroot(
    root: Path,
    script: str,
    *,
    stdout: object = None,
    writable_cache: bool = False,
    check: bool = True,
    overlay_of: tuple[Path, Path] | None = None,
    isolated: bool = False,
) -> subprocess.CompletedProcess[bytes]:
    env = dict(CLEAN_ENV, ARCHIVES=str(ARCHIVES) if not writable_cache else "")
    if overlay_of is not None:
        env.update(LOWER=str(overlay_of[0]), OVERLAY=str(overlay_of[1]))
    argv = ["unshare", "--mount", "--propagation", "private"]
    if isolated:  # its own network (no way out) and PID namespace (all it starts ends with it)
        argv += ["--net", "--pid", "--fork"]
    argv += ["sh", "-c", _MOUNTS, "sh"]
    result = subprocess.run(
        [*argv, str(root), script],
        env=env,
        stdout=stdout if stdout is not None else subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    if check and result.returncode != 0:
        tail = (result.stdout or b"").decode("utf-8", "replace")[-3000:]
        raise TreeError(f"in the {SUITE} tree, `{script[:200]}` failed: {tail}")
    return result


class Overlay:
    """A throw-away view of the cached tree (lower) with every change in ``upper``: each
    :meth:`run` mounts it afresh inside its own private mount namespace, so nothing is ever
    mounted in the machine's."""

    def __init__(self, tree: Path, workdir: Path) -> None:
        self.tree = tree
        self.workdir = workdir
        self.upper = workdir / "upper"
        self.merged = workdir / "merged"

    def run(
        self, script: str, *, check: bool = True, isolated: bool = False
    ) -> subprocess.CompletedProcess[bytes]:
        """`script` (sh) as root in the tree; stdout+stderr captured.  `isolated`: in a new
        network and PID namespace too (daemons it starts die with it; no network)."""
        return _in_chroot(
            self.merged, script, check=check, overlay_of=(self.tree, self.workdir),
            isolated=isolated,
        )  # fmt: skip

    def put(self, source: Path, inside: str) -> None:
        """Copy `source` (a file or directory) to `inside` (an absolute path in the tree)."""
        target = self.upper / inside.lstrip("/")
        target.parent.mkdir(parents=True, exist_ok=True)
        if source.is_dir():
            shutil.copytree(source, target, symlinks=True)
        else:
            shutil.copy2(source, target)


@contextmanager
def overlay(tree: Path = TREE) -> Iterator[Overlay]:
    """A fresh overlay of the cached tree, removed afterwards."""
    if not tree_ready(tree):
        raise TreeError(f"{tree} is not built (make test-packages builds it)")
    ARCHIVES.mkdir(parents=True, exist_ok=True)
    workdir = Path(tempfile.mkdtemp(prefix="hsg-deb-", dir=CACHE))
    for name in ("upper", "work", "merged"):
        (workdir / name).mkdir()
    try:
        yield Overlay(tree, workdir)
    finally:
        shutil.rmtree(workdir, ignore_errors=True)


def main() -> int:
    reason = unavailable_reason()
    if reason:
        print(f"cannot build the {SUITE} tree: {reason}", file=sys.stderr)
        return 1
    seconds = ensure_tree(log=CACHE / f"{SUITE}-build.log")
    print(f"{TREE}: " + ("cached" if seconds == 0 else f"built in {seconds:.0f} s"))
    return 0


if __name__ == "__main__":
    sys.exit(main())
