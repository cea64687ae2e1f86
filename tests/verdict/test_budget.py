"""The engine's work is bounded: a hostile snapshot of a few kilobytes (a few jumps per chain,
a few chains deep: billions of paths within the kernel's depth cap) ends in `unknown` with the
reason, while real layouts stay far below the budget (benchmarks/bench_hostile.py measures)."""

from __future__ import annotations

import json
import signal
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from hotspotguard.ruleset import load_snapshot, parse_ruleset
from hotspotguard.verdict import evaluate
from hotspotguard.verdict.engine import BUDGET_REASON, Budget, ChainRun
from tests.helpers import document


def hostile_save(jumps: int = 4, depth: int = 15) -> str:
    """iptables-save text: FORWARD jumps `jumps` times to C1, which jumps `jumps` times to C2,
    ... down to C`depth` (jumps**depth paths to the end)."""
    lines = ["*filter", ":INPUT ACCEPT [0:0]", ":FORWARD DROP [0:0]", ":OUTPUT ACCEPT [0:0]"]
    lines += [f":C{level} - [0:0]" for level in range(1, depth + 1)]
    for level in range(depth):
        chain = "FORWARD" if level == 0 else f"C{level}"
        lines += [f"-A {chain} -j C{level + 1}"] * jumps
    lines += ["COMMIT", ""]
    return "\n".join(lines)


def hostile_document() -> dict[str, Any]:
    return document(iptables_legacy_save=hostile_save())


@contextmanager
def deadline(seconds: int) -> Iterator[None]:
    """Fail instead of hanging if the bound is gone (no timing assertion)."""

    def expired(signum: int, frame: object) -> None:
        raise TimeoutError(f"the evaluation ran longer than {seconds} s: its work is unbounded")

    previous = signal.signal(signal.SIGALRM, expired)
    signal.alarm(seconds)
    try:
        yield
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, previous)


def test_hostile_snapshot_is_decided_without_walking_every_path() -> None:
    """4**16 paths: a chain that returned a packet unchanged, with nothing undecided, is not
    walked again for the same packet, so the drop policy decides in a few dozen visits."""
    doc = hostile_document()
    assert len(json.dumps(doc)) < 2048  # a kilobyte or two
    snapshot = load_snapshot(doc)
    with deadline(60):
        (hotspot,) = evaluate(snapshot, parse_ruleset(snapshot)).hotspots
    assert hotspot.flows["outbound"].verdict == "drop"
    assert hotspot.flows["dhcp"].verdict == "accept"  # input never crosses FORWARD
    steps = [s.action for v in hotspot.flows["outbound"].visits for s in v.steps]
    assert "jump C1: returns, as before" in steps


def test_out_of_budget_is_unknown_with_the_reason() -> None:
    snapshot = load_snapshot(hostile_document())
    ruleset = parse_ruleset(snapshot)
    (table,) = ruleset.tables
    forward = table.chain("FORWARD")
    assert forward is not None
    (hotspot,) = evaluate(snapshot, ruleset).hotspots
    packet = hotspot.flows["outbound"].flow.packet
    for steps, verdict in ((59, "unknown"), (60, "drop")):  # 4 x 15 jumps to the end
        (outcome,) = ChainRun(table, forward, Budget(steps=steps, limit=steps)).outcomes(packet)
        assert outcome.verdict == verdict
    assert outcome.reason is None
    (outcome,) = ChainRun(table, forward, Budget(steps=59, limit=59)).outcomes(packet)
    assert outcome.reason == BUDGET_REASON.format(steps=59)
    assert "more than 59 rule visits" in outcome.reason
