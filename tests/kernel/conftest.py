"""Kernel-test reporting: the kernel outcome table and the timings at the end of the run.

The table is printed with `-v` or HOTSPOTGUARD_KERNEL_TABLE=1; the timing line always (when
scenarios ran).
"""

from __future__ import annotations

import os
import sys
from typing import Any

import pytest


def pytest_terminal_summary(terminalreporter: Any, exitstatus: int, config: pytest.Config) -> None:
    mod = sys.modules.get("tests.kernel.test_scenarios")
    runs = getattr(mod, "RUNS", None)
    if not runs:
        return
    engine_runs = getattr(mod, "RUNS_ENGINE", {})
    from tests.lab import format_outcome

    tr = terminalreporter
    probes = [r.probe_seconds for r in runs.values()]
    total = sum(r.scenario_seconds for r in runs.values())
    tr.write_line(
        f"kernel oracle: {len(runs)} scenarios in {total:.1f}s "
        f"(probe mean {1000 * sum(probes) / len(probes):.0f} ms, max {1000 * max(probes):.0f} ms)"
    )
    if config.getoption("verbose") > 0 or os.environ.get("HOTSPOTGUARD_KERNEL_TABLE"):
        tr.section("kernel outcomes per scenario")
        width = max(len(n) for n in runs)
        for name, run in runs.items():
            eng = engine_runs.get(name)
            mark = (
                "" if eng is None else ("  engine: agrees" if not eng[0] else "  engine: DIFFERS")
            )
            tr.write_line(
                f"{name.ljust(width)}  {format_outcome(run.kernel)}  "
                f"[{1000 * run.probe_seconds:.0f} ms]{mark}"
            )
