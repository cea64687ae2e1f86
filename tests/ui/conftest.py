"""Qt tests run headless (offscreen); asyncio runs inside Qt's loop as in the applet (qasync)."""

from __future__ import annotations

import asyncio
import contextlib
import os
from collections.abc import Iterator
from typing import Any

os.environ["QT_QPA_PLATFORM"] = "offscreen"

import pytest

from hotspotguard.ruleset import load_snapshot, parse_ruleset
from hotspotguard.ruleset.model import Ruleset
from hotspotguard.verdict import Report, evaluate
from tests.helpers import NM_LAB, document, nm_lab


def docker_document() -> dict[str, Any]:
    """The lab's capture of NetworkManager's hotspot beside Docker 28 (iptables-nft)."""
    return document(
        nm_lab("nft-3-docker-full.json"),
        iface="nmp-hs0",
        uplinks=("nmp-up0",),
        iptables_nft_save=(NM_LAB / "iptables-save-docker-full.txt").read_text(),
    )


def fixed_document() -> dict[str, Any]:
    """The same machine after the docker-user fix."""
    return document(
        nm_lab("nft-3-docker-full-fixed.json"),
        iface="nmp-hs0",
        uplinks=("nmp-up0",),
    )


def evaluated(doc: dict[str, Any]) -> tuple[Ruleset, Report]:
    snapshot = load_snapshot(doc)
    ruleset = parse_ruleset(snapshot)
    return ruleset, evaluate(snapshot, ruleset)


@pytest.fixture
def backend() -> Any:
    from tests.ui.fakes import EngineBackend

    return EngineBackend()


@contextlib.contextmanager
def started_controller(backend: Any, qtbot: Any) -> Iterator[Any]:
    """A controller over `backend` for the fakes' hotspot, its first state published and its
    tasks done; stopped after."""
    from hotspotguard.ui.controller import Controller, FixedHotspots, HotspotInfo
    from tests.ui.fakes import CONNECTION, HOTSPOT

    hub = Controller(backend, FixedHotspots([HotspotInfo(HOTSPOT, CONNECTION)]), settle=0.01)
    with qtbot.waitSignal(hub.stateChanged, timeout=10_000):
        hub.start()
    qtbot.waitUntil(lambda: not hub._tasks, timeout=10_000)
    yield hub
    hub.stop()
    qtbot.waitUntil(lambda: not hub._tasks, timeout=5_000)


@pytest.fixture
def controller(qloop: asyncio.AbstractEventLoop, qtbot: Any, backend: Any) -> Iterator[Any]:
    """A started controller over the engine backend, its first state published."""
    with started_controller(backend, qtbot) as hub:
        yield hub
