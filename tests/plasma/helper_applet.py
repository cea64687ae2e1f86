"""The applet as a logged-in user: tests/ui_desktop/harness.py's events and commands, but its
Controller is the real one over the real helper (``HelperBackend``: the system bus, polkit) and
the hotspots are the snapshot's own (NetworkManager's tables in the helper's netns).
Run by tests/plasma/polkit_session.py."""

from __future__ import annotations

import sys

from hotspotguard.ui import app
from hotspotguard.ui.controller import Controller, FixedHotspots, HelperBackend
from tests.ui_desktop import harness


def controller() -> Controller:
    return Controller(HelperBackend(), FixedHotspots(None))


if __name__ == "__main__":
    sys.exit(app.main([], controller, on_ready=harness.ready))
