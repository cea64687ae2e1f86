"""Shared fixtures.  `lab` / `clean_lab`: the kernel oracle (see tests/lab.py); `nm_lab`: a real
NetworkManager (tests/nmlab.py); `polkit_lab` / `plab`: a real polkitd and the bus-activated helper
(tests/polkitlab.py)."""

from __future__ import annotations

import os

# The capture reads the rules files boot services restore (netfilter-persistent's
# /etc/iptables/rules.v4, ...): tests never read the machine's own /etc, in-process or in the
# processes they start (tests/lab.py copies this environment).
os.environ["HOTSPOTGUARD_SYSCONFDIR"] = "/nonexistent/hotspotguard-tests-etc"

import asyncio
import signal
import threading
from collections.abc import Iterator
from typing import Any

import pytest

from tests.lab import Lab, LabError, lab_unavailable_reason
from tests.nmlab import LAB_TIMES, NmLab, nm_lab_session, nm_lab_unavailable_reason
from tests.polkitlab import PolkitLab, polkit_lab_unavailable_reason


@pytest.fixture
def nm_lab() -> Iterator[NmLab]:
    """A real NetworkManager on its own bus in namespaces, its uplink up (tests/nmlab.py)."""
    reason = nm_lab_unavailable_reason()
    if reason:
        pytest.skip(reason)
    with nm_lab_session() as the_lab:
        the_lab.up("uplink")
        yield the_lab
    LAB_TIMES.append((the_lab.up_seconds, the_lab.down_seconds))


@pytest.fixture(scope="session")
def lab() -> Iterator[Lab]:
    """One phone/host/inet namespace lab for the whole session (skips when it cannot run).

    Use `clean_lab` in tests: it resets the host before handing the lab out.
    """
    reason = lab_unavailable_reason()
    if reason:
        pytest.skip(reason)
    # SIGTERM (a CI timeout, `kill`) skips atexit: turn it into KeyboardInterrupt, on which pytest
    # stops the run and still finalizes session fixtures (SystemExit would only fail one test)
    previous: Any = None
    if threading.current_thread() is threading.main_thread():
        previous = signal.getsignal(signal.SIGTERM)
        if previous == signal.SIG_DFL:
            signal.signal(signal.SIGTERM, _exit_on_sigterm)
    try:
        the_lab = Lab()
    except LabError as error:  # the half-built lab is already torn down
        pytest.fail(f"cannot build the kernel lab: {error}")
    try:
        yield the_lab
    finally:
        the_lab.close()
        if previous == signal.SIG_DFL:
            signal.signal(signal.SIGTERM, signal.SIG_DFL)


def _exit_on_sigterm(signum: int, frame: Any) -> None:
    raise KeyboardInterrupt(f"signal {signum}")


@pytest.fixture
def clean_lab(lab: Lab) -> Iterator[Lab]:
    """The session lab, reset to a clean host (no rules, no conntrack, forwarding on)."""
    lab.reset()
    yield lab


@pytest.fixture(scope="module")
def polkit_lab() -> Iterator[PolkitLab]:
    """A private system bus + real polkitd + bus-activated helper in a fresh netns (per module)."""
    reason = polkit_lab_unavailable_reason()
    if reason:
        pytest.skip(reason)
    try:
        lab = PolkitLab()
    except LabError as error:  # the half-built lab is already torn down
        pytest.fail(f"cannot build the polkit lab: {error}")
    try:
        yield lab
    finally:
        lab.close()


@pytest.fixture
def plab(polkit_lab: PolkitLab) -> PolkitLab:
    """The module's polkit lab with an empty firewall and no fixes recorded."""
    polkit_lab.reset_firewall()
    return polkit_lab


@pytest.fixture
def qloop(qapp: Any) -> Iterator[asyncio.AbstractEventLoop]:
    """qasync's loop over pytest-qt's QApplication: coroutines and Qt signals interleave while
    qtbot waits, as in the running applet."""
    from hotspotguard.ui.loop import event_loop

    loop = event_loop(qapp, already_running=True)
    asyncio.set_event_loop(loop)
    try:
        yield loop
    finally:
        for task in asyncio.all_tasks(loop):
            task.cancel()
        asyncio.events._set_running_loop(None)
        asyncio.set_event_loop(None)
        loop._QEventLoop__is_running = False  # type: ignore[attr-defined]  # never ran exec()
        loop.close()


# What a fix writes on a real machine: the suite must never leave (or create) any of it.
SYSTEM_FILES = (
    "/var/lib/hotspotguard",
    "/etc/systemd/system/docker.service.d/50-hotspotguard.conf",
    "/etc/NetworkManager/dispatcher.d/90-hotspotguard",
)
_PREEXISTING = pytest.StashKey[set[str]]()


def pytest_sessionstart(session: pytest.Session) -> None:
    import os

    session.config.stash[_PREEXISTING] = {p for p in SYSTEM_FILES if os.path.exists(p)}


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    import os

    before = session.config.stash.get(_PREEXISTING, set())
    left = [p for p in SYSTEM_FILES if os.path.exists(p) and p not in before]
    if left:
        print(f"\nERROR: the test suite left files on the machine: {', '.join(left)}")
        session.exitstatus = 1
