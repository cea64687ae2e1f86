"""The scenario corpus against the kernel, then the engine against the kernel.

test_kernel_outcome[NAME]: load the scenario into the lab host, send the real packets, and check
    the kernel's outcome against the one recorded in the scenario (a regression check of the lab).
test_engine_matches_kernel[NAME]: the engine's verdict on the snapshot taken while the scenario
    was loaded, compared flow by flow with what the kernel really did.
Both share one run per scenario (cached), so every scenario is loaded and probed once.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from tests.kernel import engine
from tests.kernel.scenarios import SCENARIOS, Scenario, kernel_short
from tests.lab import ALL_FLOWS, KernelFlow, Lab, format_outcome

pytestmark = pytest.mark.kernel


@dataclass
class Run:
    kernel: dict[str, KernelFlow]
    snapshot: dict[str, Any] | None
    snapshot_error: str | None
    ruleset: str
    probe_seconds: float
    scenario_seconds: float


RUNS: dict[str, Run] = {}


def run_scenario(lab: Lab, scenario: Scenario) -> Run:
    if scenario.name in RUNS:
        return RUNS[scenario.name]
    t0 = time.monotonic()
    lab.reset()
    snapshot: dict[str, Any] | None = None
    error: str | None = None
    try:
        with scenario.applied(lab):
            kernel = lab.probe()
            probe_seconds = lab.last_probe_seconds or 0.0
            ruleset = lab.ruleset()
            if engine.engine_unavailable_reason() is None:
                try:
                    snapshot = lab.snapshot()
                except Exception as exc:  # reported by the engine test, not here
                    error = f"{type(exc).__name__}: {exc}"
    finally:
        lab.reset()
    run = Run(kernel, snapshot, error, ruleset, probe_seconds, time.monotonic() - t0)
    RUNS[scenario.name] = run
    return run


def _params() -> list[Any]:
    return [
        pytest.param(s, id=s.name, marks=[pytest.mark.docker] if s.docker else [])
        for s in SCENARIOS
    ]


def _skip_if_no_docker(scenario: Scenario) -> None:
    if scenario.docker:
        from tests.lab import _which

        if _which("dockerd") is None:
            pytest.skip("dockerd is not installed")


@pytest.mark.parametrize("scenario", _params())
def test_kernel_outcome(lab: Lab, scenario: Scenario) -> None:
    _skip_if_no_docker(scenario)
    run = run_scenario(lab, scenario)
    got = kernel_short(run.kernel)
    want = dict(scenario.kernel)
    if got != want:
        diff = "\n".join(
            f"  {f:10s} expected {want.get(f)!s:6s} kernel said {got.get(f)!s}"
            for f in ALL_FLOWS
            if got.get(f) != want.get(f)
        )
        pytest.fail(
            f"kernel outcome differs from the recorded one for {scenario.name}\n{diff}\n"
            f"{scenario.describe()}\nkernel: {format_outcome(run.kernel)}\n"
            f"host ruleset:\n{run.ruleset}"
        )


@pytest.mark.parametrize("scenario", _params())
def test_engine_matches_kernel(lab: Lab, scenario: Scenario, tmp_path: Path) -> None:
    reason = engine.engine_unavailable_reason()
    if reason:
        pytest.skip(reason)
    _skip_if_no_docker(scenario)
    run = run_scenario(lab, scenario)
    if run.snapshot is None:
        pytest.fail(f"`hotspotguard snapshot` failed in the lab host: {run.snapshot_error}")
    hotspot = engine.explain(run.snapshot, tmp_path)
    problems, table = engine.compare(
        run.kernel,
        hotspot,
        expect_unknown=scenario.expect_unknown,
        verdict=scenario.verdict,
        blocked_by=scenario.blocked_by,
    )
    RUNS_ENGINE[scenario.name] = (problems, hotspot.get("verdict"))
    if problems:
        pytest.fail(
            f"engine and kernel disagree on {scenario.name}:\n  - "
            + "\n  - ".join(problems)
            + f"\n\n{table}\n\n{scenario.describe()}\n"
            f"snapshot and explain output: {tmp_path}\nhost ruleset:\n{run.ruleset}",
            pytrace=False,
        )


RUNS_ENGINE: dict[str, tuple[list[str], Any]] = {}


def test_corpus_is_big_enough() -> None:
    assert len(SCENARIOS) >= 25
    assert all(set(s.kernel) == set(ALL_FLOWS) for s in SCENARIOS)
