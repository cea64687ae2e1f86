"""The Debian 13 package, for real: built inside a Debian 13 ("trixie") tree against its Python,
lintian without errors, installed with apt resolving the dependencies from Debian, run there
(the CLI, the helper's self-check, the applet offscreen), and purged without a trace.

Slow (a debootstrap tree, cached; Qt from Debian): only under ``make test-packages``
(HOTSPOTGUARD_PACKAGE_TESTS=1), which ``.ci/run`` calls.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.packaging import debian_tree

REPO = Path(__file__).resolve().parents[2]
BUILD = "/build"
DEB = f"{BUILD}/hotspotguard_0.1.0_all.deb"
EXAMPLE = "/usr/share/hotspotguard/examples/docker-blocks-hotspot.json"
# Runs in its own network and PID namespace: a system bus, the postinst's reload, doctor.
BUS_CHECK = """
set -e
mkdir -p /run/dbus
dbus-daemon --system --fork --nopidfile
for i in $(seq 50); do [ -S /run/dbus/system_bus_socket ] && break; sleep 0.1; done
set +e
/var/lib/dpkg/info/hotspotguard.postinst configure >/dev/null; echo "postinst: $?"
hotspotguard doctor --json; echo "doctor: $?"
exit 0
"""

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(
        os.environ.get("HOTSPOTGUARD_PACKAGE_TESTS") != "1",
        reason="the Debian 13 package test runs under `make test-packages`",
    ),
]


def source_files() -> list[str]:
    """The checkout's files (tracked and new, not ignored): what a source package holds."""
    out = subprocess.run(
        ["git", "-C", str(REPO), "ls-files", "-co", "--exclude-standard", "-z"],
        capture_output=True, check=True,
    ).stdout.decode()  # fmt: skip
    return [name for name in out.split("\0") if name and (REPO / name).is_file()]


def out(result: subprocess.CompletedProcess[bytes]) -> str:
    return result.stdout.decode("utf-8", "replace")


@pytest.fixture(scope="module")
def tree() -> Iterator[debian_tree.Overlay]:
    reason = debian_tree.unavailable_reason()
    if reason:
        pytest.skip(reason)
    seconds = debian_tree.ensure_tree(log=debian_tree.CACHE / "trixie-build.log")
    print(f"\nDebian 13 tree: {'cached' if not seconds else f'built in {seconds:.0f} s'}")
    with debian_tree.overlay() as overlay:
        source = overlay.upper / BUILD.lstrip("/") / "hotspotguard"
        for name in source_files():
            target = source / name
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(REPO / name, target)
        # no daemon starts inside the tree (policy-rc.d), apt from the machine's mirror
        policy = overlay.upper / "usr/sbin/policy-rc.d"
        policy.parent.mkdir(parents=True, exist_ok=True)
        policy.write_text("#!/bin/sh\nexit 101\n")
        policy.chmod(0o755)
        start = time.monotonic()
        build = overlay.run(f"cd {BUILD}/hotspotguard && dpkg-buildpackage -us -uc -b", check=False)
        assert build.returncode == 0, out(build)[-4000:]
        print(f".deb built in {time.monotonic() - start:.0f} s")
        yield overlay


def test_lintian_finds_no_errors(tree: debian_tree.Overlay) -> None:
    result = tree.run(f"chmod -R a+rX {BUILD}; runuser -u nobody -- lintian --info {DEB}",
                      check=False)  # fmt: skip
    report = out(result)
    print("lintian:\n" + (report or "(clean)"))
    errors = [line for line in report.splitlines() if line.startswith("E:")]
    assert errors == [], report
    assert result.returncode == 0, report


def test_install_run_and_purge(tree: debian_tree.Overlay) -> None:
    start = time.monotonic()
    install = tree.run(
        f"apt-get update -q >/dev/null && apt-get install -y -q --no-install-recommends {DEB}",
        check=False,
    )
    assert install.returncode == 0, out(install)[-4000:]
    print(f"apt install with the dependencies from Debian: {time.monotonic() - start:.0f} s")
    files = out(tree.run("dpkg -L hotspotguard")).split()

    version = tree.run("hotspotguard --version")
    assert out(version).strip() == "hotspotguard 0.1.0"
    explain = tree.run(f"hotspotguard explain --snapshot {EXAMPLE}", check=False)
    assert explain.returncode == 1 and out(explain).startswith("blocked:"), out(explain)
    helper = tree.run("/usr/libexec/hotspotguard/hotspotguard-helper self-check", check=False)
    assert helper.returncode == 0 and out(helper).endswith(": ok\n"), out(helper)
    applet = tree.run(
        "HOME=/root QT_QPA_PLATFORM=offscreen hotspotguard-tray --check 2>/dev/null", check=False
    )
    assert applet.returncode == 0 and "work" in out(applet), out(applet)
    code = "from hotspotguard.usecases.operations import Paths; print(Paths().helper)"
    named = tree.run(f'python3 -c "{code}"', check=False)
    assert out(named).strip() == "/usr/libexec/hotspotguard/hotspotguard-helper", out(named)
    man = tree.run("test -s /usr/share/man/man1/hotspotguard.1.gz && echo man", check=False)
    assert out(man).strip() == "man"

    # a real system bus in the tree: the postinst reloads it, the bus activates our helper for
    # doctor's read call, and doctor finds the installation whole
    bus = tree.run(BUS_CHECK, check=False, isolated=True)
    report = out(bus)
    print("doctor inside the tree, with a system bus:\n" + report)
    assert bus.returncode == 0, report[-4000:]
    assert "postinst: 0" in report, report
    doc = json.loads(report[report.index("{") : report.rindex("}") + 1])
    found = {check["check"]: check for check in doc["checks"]}
    for check in ("helper service", "bus policy", "polkit actions", "helper", "nftables", "icons"):
        assert found[check]["status"] == "ok", found[check]
    assert found["helper service"]["detail"].endswith(
        "→ /usr/libexec/hotspotguard/hotspotguard-helper"
    )

    purge = tree.run("apt-get purge -y -q hotspotguard", check=False)
    assert purge.returncode == 0, out(purge)[-3000:]
    ours = " ".join(f"'{path}'" for path in files if "hotspotguard" in path)
    left = tree.run(f'for f in {ours}; do [ -e "$f" ] && echo "$f"; done; true')
    assert out(left).split() == []
    found = tree.run(
        "find / -xdev \\( -path /proc -o -path /sys -o -path /build \\) -prune "
        "-o -name '*hotspotguard*' -print",
        check=False,
    )
    assert out(found).split() == [], out(found)
