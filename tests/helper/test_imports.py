"""What the helper has loaded when it serves: its first full reading of the firewall (the first
GetState) comes while it holds little, the engine and the fixes' planner imported after it."""

from __future__ import annotations

import subprocess
import sys

ENGINE = (
    "hotspotguard.usecases.operations",
    "hotspotguard.fixes.strategies",
    "hotspotguard.verdict",
    "hotspotguard.assessment",
    "hotspotguard.system.incremental",
)


def test_serving_loads_no_engine_before_its_first_reading() -> None:
    code = (
        "import sys, hotspotguard.helper.main, hotspotguard.helper.service; "
        f"print(' '.join(m for m in {ENGINE!r} if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.split() == []
