"""Differential testing: random rulesets, the kernel against the engine, flow by flow.

Hypothesis draws rulesets from the grammar in `rulegen` (families, hooks, priorities, chain
types, matches, verdicts, maps, sets, marks, notrack, nat). Each one is loaded into the lab's host
namespace; the kernel's verdict on every flow comes from real packets (`lab.probe()`), the
engine's from the snapshot the kernel gives back (`lab.snapshot()`), through the importable API.

    engine accept  <=> kernel delivered        (engine accept, kernel dropped = a FALSE OK)
    engine drop    <=> kernel dropped          (engine drop, kernel delivered = a false alarm)
    outbound(6)    also: engine nat set <=> the kernel masqueraded
    engine unknown is counted, not a disagreement; kernel "cannot tell" (None) is skipped

HOTSPOTGUARD_DIFF_EXAMPLES sets the number of rulesets (default 60; `make test-full`: 300).
HOTSPOTGUARD_DIFF_SEED replays a run (the seed is printed in the summary).
HOTSPOTGUARD_DIFF_MINIMIZE: how many disagreements to minimise against the kernel (default 3).
HOTSPOTGUARD_DIFF_WITHOUT=ingress,notrack,...: leave grammar features out (rulegen.FEATURES),
    e.g. to look for new disagreements while a known one is open. Printed in the summary.

The figures go to the terminal summary and to artifacts/differential.txt; the test fails on any
disagreement, listing each (minimised when possible) with the ruleset, the kernel's and the
engine's outcomes and the engine's trace.
"""

from __future__ import annotations

import json
import os
import random
import time
import traceback
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, Phase, assume, given, seed, settings

from hotspotguard.ruleset import load_snapshot, parse_ruleset
from hotspotguard.verdict import evaluate
from hotspotguard.verdict.report import verdict_json
from tests.kernel.rulegen import KNOWN_CASES, GeneratedRuleset, KnownCase, minimize, rulesets
from tests.lab import ALL_FLOWS, HOST_HS_IF, KernelFlow, Lab, LabError

pytestmark = pytest.mark.kernel

EXAMPLES = int(os.environ.get("HOTSPOTGUARD_DIFF_EXAMPLES", "60"))
MINIMIZE = int(os.environ.get("HOTSPOTGUARD_DIFF_MINIMIZE", "3"))
SEED = int(os.environ.get("HOTSPOTGUARD_DIFF_SEED") or random.randrange(2**32))
WITHOUT = frozenset(
    w.strip() for w in os.environ.get("HOTSPOTGUARD_DIFF_WITHOUT", "").split(",") if w.strip()
)
ARTIFACT = Path(__file__).resolve().parents[2] / "artifacts" / "differential.txt"

AGREE, UNKNOWN, SKIPPED = "agree", "unknown", "skipped"
FALSE_OK, FALSE_DROP, NAT = "FALSE OK", "false drop", "nat mismatch"
DISAGREE = (FALSE_OK, FALSE_DROP, NAT)


# --- one ruleset ------------------------------------------------------------------------------


@dataclass
class Outcome:
    kernel: dict[str, KernelFlow]
    engine: dict[str, Any]  # the engine's JSON for the hotspot (as `explain --json` prints it)
    verdicts: dict[str, str]  # flow -> AGREE / UNKNOWN / SKIPPED / one of DISAGREE
    times: dict[str, float]


def engine_hotspot(doc: dict[str, Any]) -> dict[str, Any]:
    snapshot = load_snapshot(doc)
    report = evaluate(snapshot, parse_ruleset(snapshot))
    for verdict in report.hotspots:
        if verdict.hotspot.iface == HOST_HS_IF:
            return verdict_json(verdict)
    raise AssertionError(f"the engine reports no hotspot {HOST_HS_IF}")


def classify(flow: str, kernel: KernelFlow | None, engine: dict[str, Any] | None) -> str:
    if kernel is None or kernel.delivered is None:
        return SKIPPED
    if engine is None:
        return FALSE_DROP if kernel.delivered else FALSE_OK
    verdict = engine.get("verdict")
    if verdict == "unknown":
        return UNKNOWN
    if verdict == "accept" and not kernel.delivered:
        return FALSE_OK
    if verdict == "drop" and kernel.delivered:
        return FALSE_DROP
    if verdict not in {"accept", "drop"}:
        return FALSE_OK
    if flow.startswith("outbound") and (engine.get("nat") is not None) != bool(kernel.masqueraded):
        return NAT
    return AGREE


def run_ruleset(lab: Lab, generated: GeneratedRuleset) -> Outcome | str:
    """Load, snapshot, probe, evaluate. A str is why the kernel refused the ruleset."""
    times: dict[str, float] = {}
    t = time.monotonic()
    lab.reset()
    times["reset"] = time.monotonic() - t
    t = time.monotonic()
    try:
        generated.load(lab)
    except LabError as error:
        return _refusal(str(error))
    times["load"] = time.monotonic() - t
    t = time.monotonic()
    doc = lab.snapshot()
    times["snapshot"] = time.monotonic() - t
    t = time.monotonic()
    kernel = lab.probe()
    times["probe"] = time.monotonic() - t
    t = time.monotonic()
    carried, bare = ingress_variants(doc)
    engine = engine_hotspot(carried)
    times["engine"] = time.monotonic() - t
    flows = engine.setdefault("flows", {})
    verdicts = {f: classify(f, kernel.get(f), flows.get(f)) for f in ALL_FLOWS}
    if bare is not None:
        # the same snapshot as another tool (or nft 1.0.6's JSON alone) would write it: no
        # device for the ingress chains anywhere. The engine may say unknown, never ok.
        bare_flows = engine_hotspot(bare).get("flows") or {}
        for f in ALL_FLOWS:
            flows[f + NO_DEVICE] = bare_flows.get(f)
            verdicts[f + NO_DEVICE] = classify(f, kernel.get(f), bare_flows.get(f))
    return Outcome(kernel, engine, verdicts, times)


NO_DEVICE = "/no-device"


def ingress_variants(doc: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any] | None]:
    """The snapshot with the ingress chains' devices only in its separate `ingress_devices`
    (as the capture carries them), and with no device anywhere (None without ingress chains)."""
    items = (doc.get("nft") or {}).get("nftables") or []
    ingress = [i["chain"] for i in items if "chain" in i and i["chain"].get("hook") == "ingress"]
    if not ingress:
        return doc, None
    stripped = json.loads(json.dumps(doc))
    for item in stripped["nft"]["nftables"]:
        if "chain" in item:
            item["chain"].pop("dev", None)
    carried = {**stripped, "ingress_devices": doc.get("ingress_devices") or []}
    assert carried["ingress_devices"], "the capture carries the ingress chains' devices"
    bare = {k: v for k, v in stripped.items() if k != "ingress_devices"}
    return carried, bare


def _refusal(message: str) -> str:
    for line in message.splitlines():
        if "Error:" in line:
            return line.split("Error:", 1)[1].strip()[:80]
        if "line" in line and ("failed" in line.lower() or "error" in line.lower()):
            return line.strip()[:80]
    return message.strip().splitlines()[0][:80] if message.strip() else "?"


def kernel_text(k: KernelFlow | None) -> str:
    if k is None or k.delivered is None:
        return "n/a"
    if not k.delivered:
        return "dropped"
    if k.masqueraded is None:
        return "delivered"
    return f"delivered ({'masqueraded to ' + str(k.seen_source) if k.masqueraded else 'no nat'})"


def engine_text(e: dict[str, Any] | None) -> str:
    if e is None:
        return "-"
    return str(e.get("verdict")) + (f" (nat {e['nat']})" if e.get("nat") else "")


def trace_text(e: dict[str, Any] | None) -> str:
    if not e:
        return ""
    lines = []
    for visit in e.get("trace") or []:
        lines.append(
            f"    {visit['hook']}: {visit['family']} {visit['table']} {visit['chain']}"
            f" (prio {visit['priority']}) -> {visit['verdict']}"
        )
        for step in visit.get("rules") or []:
            lines.append(
                f"      {step['chain']}[{step['index']}] {step['rule']} -> {step['action']}"
            )
    if e.get("reason"):
        lines.append(f"    reason: {e['reason']}")
    return "\n".join(lines)


def outcome_table(outcome: Outcome) -> str:
    flows = outcome.engine.get("flows") or {}
    rows = [("flow", "kernel", "engine", "")]
    for f in ALL_FLOWS:
        rows.append(
            (f, kernel_text(outcome.kernel.get(f)), engine_text(flows.get(f)), outcome.verdicts[f])
        )
    widths = [max(len(r[i]) for r in rows) for i in range(4)]
    return "\n".join(
        "  " + "  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)).rstrip() for r in rows
    )


# --- the run's bookkeeping --------------------------------------------------------------------


@dataclass
class Disagreement:
    flow: str
    kind: str
    ruleset: GeneratedRuleset
    outcome: Outcome
    minimized: GeneratedRuleset | None = None
    minimized_outcome: Outcome | None = None
    minimize_tries: int = 0

    def report(self) -> str:
        best, outcome = self.ruleset, self.outcome
        head = "original ruleset"
        if self.minimized is not None and self.minimized_outcome is not None:
            best, outcome = self.minimized, self.minimized_outcome
            head = (
                f"minimised ruleset ({self.minimize_tries} kernel runs; the original had"
                f" size {self.ruleset.size()}, this one {best.size()})"
            )
        flows = outcome.engine.get("flows") or {}
        engine = flows.get(self.flow)
        return (
            f"{self.kind} on {self.flow}:"
            f" kernel {kernel_text(outcome.kernel.get(self.flow.removesuffix(NO_DEVICE)))},"
            f" engine {engine_text(engine)}\n"
            f"  {head}:\n" + _indent(best.describe(), 4) + "\n"
            f"  outcomes:\n{outcome_table(outcome)}\n"
            f"  engine trace for {self.flow}:\n{trace_text(engine)}\n"
        )


def _indent(text: str, n: int) -> str:
    return "\n".join(" " * n + line for line in text.rstrip("\n").splitlines())


@dataclass
class Stats:
    seed: int = SEED
    target: int = EXAMPLES
    rulesets: int = 0
    rejected: int = 0
    counts: Counter[str] = field(default_factory=Counter)
    per_flow: dict[str, Counter[str]] = field(
        default_factory=lambda: {f: Counter() for f in ALL_FLOWS}
    )
    refusals: Counter[str] = field(default_factory=Counter)
    disagreements: list[Disagreement] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    times: Counter[str] = field(default_factory=Counter)
    slowest: float = 0.0
    seconds: float = 0.0
    minimize_seconds: float = 0.0

    def record(self, generated: GeneratedRuleset, outcome: Outcome) -> None:
        self.rulesets += 1
        flows = outcome.engine.get("flows") or {}
        for f, verdict in outcome.verdicts.items():
            self.counts[verdict if not f.endswith(NO_DEVICE) else "no-device " + verdict] += 1
            k = outcome.kernel.get(f.removesuffix(NO_DEVICE))
            per = self.per_flow.setdefault(f, Counter())
            per[
                "kernel "
                + (
                    "n/a"
                    if k is None or k.delivered is None
                    else "delivered"
                    if k.delivered
                    else "dropped"
                )
            ] += 1
            per["engine " + str((flows.get(f) or {}).get("verdict"))] += 1
            per[verdict] += 1
            if verdict == NAT and (flows.get(f) or {}).get("nat") and f == "outbound":
                self.counts["nat false ok"] += 1
        for name, seconds in outcome.times.items():
            self.times[name] += seconds
        self.slowest = max(self.slowest, sum(outcome.times.values()))
        for f, verdict in outcome.verdicts.items():
            if verdict in DISAGREE:
                self.disagreements.append(Disagreement(f, verdict, generated, outcome))

    @property
    def compared(self) -> int:
        return sum(
            v
            for k, v in self.counts.items()
            if k != SKIPPED and k != "nat false ok" and not k.startswith("no-device")
        )

    @property
    def false_ok(self) -> int:
        return self.counts[FALSE_OK] + self.counts["nat false ok"]

    @property
    def no_device(self) -> str:
        """Rulesets with ingress chains, evaluated again with no device in the document."""
        counts = {k.removeprefix("no-device "): v for k, v in self.counts.items() if "no-d" in k}
        if not counts:
            return ""
        shown = ", ".join(f"{v} {k}" for k, v in sorted(counts.items()) if k != SKIPPED)
        return f"; ingress devices left out of the document: {shown}"

    def line(self) -> str:
        disagree = sum(self.counts[k] for k in DISAGREE)
        decided = self.counts[AGREE] + disagree
        rate = 100.0 * self.counts[AGREE] / decided if decided else 100.0
        return (
            f"differential: {self.rulesets} rulesets, {self.compared} flows compared,"
            f" {self.counts[AGREE]} agree ({rate:.2f}% of decided), {self.false_ok} false ok,"
            f" {self.counts[FALSE_DROP]} false drop, {self.counts[NAT]} nat mismatch,"
            f" {self.counts[UNKNOWN]} unknown, {self.counts[SKIPPED]} skipped;"
            f" {self.rejected} generated rulesets refused by the kernel{self.no_device};"
            f" seed {self.seed}{'; without ' + ','.join(sorted(WITHOUT)) if WITHOUT else ''};"
            f" {self.seconds:.0f} s"
            f" ({self.seconds / max(self.rulesets, 1):.2f} s per ruleset)"
        )

    def details(self) -> str:
        out = [self.line(), ""]
        n = max(self.rulesets, 1)
        out.append(
            "mean seconds per ruleset: "
            + ", ".join(f"{k} {v / n:.3f}" for k, v in sorted(self.times.items()))
            + f"; slowest {self.slowest:.2f}; minimising {self.minimize_seconds:.0f} s total"
        )
        out.append("")
        keys = [
            "kernel delivered",
            "kernel dropped",
            "kernel n/a",
            "engine accept",
            "engine drop",
            "engine unknown",
            AGREE,
            *DISAGREE,
            UNKNOWN,
            SKIPPED,
        ]
        rows = [("flow", *keys)]
        for f in self.per_flow:
            rows.append((f, *(str(self.per_flow[f][k]) for k in keys)))
        widths = [max(len(r[i]) for r in rows) for i in range(len(keys) + 1)]
        out += ["  ".join(c.rjust(w) for c, w in zip(r, widths, strict=True)) for r in rows]
        if self.refusals:
            out += ["", "refused by the kernel (generator rejects, skipped):"]
            out += [f"  {n:4d}  {reason}" for reason, n in self.refusals.most_common(12)]
        if self.errors:
            out += ["", "errors:", *self.errors]
        if self.disagreements:
            out += ["", f"{len(self.disagreements)} disagreement(s):", ""]
            out += [d.report() for d in self.disagreements]
        return "\n".join(out) + "\n"


STATS = Stats()


class _SummaryPlugin:
    """Prints the figures in pytest's terminal summary (no `-s` needed)."""

    def __init__(self, stats: Stats) -> None:
        self.stats = stats

    def pytest_terminal_summary(self, terminalreporter: Any) -> None:
        if self.stats.rulesets or self.stats.rejected:
            terminalreporter.write_sep("-", "differential testing (kernel vs engine)")
            terminalreporter.write_line(self.stats.line())


def _register_summary(config: pytest.Config) -> None:
    if not config.pluginmanager.has_plugin("hotspotguard-differential"):
        config.pluginmanager.register(_SummaryPlugin(STATS), "hotspotguard-differential")


# --- minimising a disagreement -----------------------------------------------------------------


def _still(lab: Lab, flow: str, kind: str) -> Any:
    last: dict[str, Outcome] = {}

    def check(candidate: GeneratedRuleset) -> bool:
        result = run_ruleset(lab, candidate)
        if isinstance(result, str):
            return False
        if result.verdicts.get(flow) == kind:
            last["outcome"] = result
            return True
        return False

    return check, last


def minimise(lab: Lab, disagreement: Disagreement, budget: int = 150) -> None:
    check, last = _still(lab, disagreement.flow, disagreement.kind)
    smallest, tries = minimize(disagreement.ruleset, check, budget)
    if smallest is disagreement.ruleset:
        return
    # a minimised case must reproduce every time (the lab is real: rule out flukes)
    if all(check(smallest) for _ in range(2)):
        disagreement.minimized = smallest
        disagreement.minimized_outcome = last["outcome"]
        disagreement.minimize_tries = tries


def _signature(d: Disagreement) -> tuple[str, str]:
    return (d.flow, d.kind)


# --- the test ----------------------------------------------------------------------------------


def test_differential(lab: Lab, request: pytest.FixtureRequest) -> None:
    _register_summary(request.config)
    stats = STATS
    started = time.monotonic()

    @seed(SEED)
    @settings(
        max_examples=EXAMPLES,
        deadline=None,
        derandomize=False,
        database=None,
        suppress_health_check=list(HealthCheck),
        phases=[Phase.generate],
        report_multiple_bugs=False,
    )
    @given(rulesets(without=WITHOUT))
    def one(generated: GeneratedRuleset) -> None:
        try:
            result = run_ruleset(lab, generated)
        except Exception:  # an engine crash or a broken lab: reported, never hidden
            stats.errors.append(f"{traceback.format_exc()}\n{generated.describe()}")
            if len(stats.errors) > 3:
                raise
            return
        if isinstance(result, str):
            stats.rejected += 1
            stats.refusals[result] += 1
            assume(False)
            return
        stats.record(generated, result)

    try:
        one()
    finally:
        stats.seconds = time.monotonic() - started
        t = time.monotonic()
        seen: set[tuple[str, str]] = set()
        minimised: set[int] = set()
        for disagreement in stats.disagreements:
            if len(seen) >= MINIMIZE or _signature(disagreement) in seen:
                continue
            if id(disagreement.ruleset) in minimised:
                continue  # one ruleset, several flows: minimise it once
            seen.add(_signature(disagreement))
            minimised.add(id(disagreement.ruleset))
            try:
                minimise(lab, disagreement)
            except Exception:
                stats.errors.append("minimising failed:\n" + traceback.format_exc())
        stats.minimize_seconds = time.monotonic() - t
        lab.reset()
        ARTIFACT.parent.mkdir(parents=True, exist_ok=True)
        ARTIFACT.write_text(stats.details())
        print("\n" + stats.line())  # the figures, for -s runs and failure output
    shown_rulesets: set[int] = set()
    problems = list(stats.errors)
    for d in sorted(stats.disagreements, key=lambda d: d.minimized is None):
        if id(d.ruleset) not in shown_rulesets:  # the outcome table shows the other flows
            shown_rulesets.add(id(d.ruleset))
            problems.append(d.report())
    if problems:
        shown = "\n".join(problems[:8])
        more = f"\n... and {len(problems) - 8} more" if len(problems) > 8 else ""
        pytest.fail(
            f"{stats.line()}\n\nthe engine and the kernel disagree"
            f" (all of it in {ARTIFACT}):\n\n{shown}{more}",
            pytrace=False,
        )
    assert stats.rulesets > 0, "no ruleset could be loaded"


@pytest.mark.parametrize("case", KNOWN_CASES, ids=[c.name for c in KNOWN_CASES])
def test_known_case(lab: Lab, case: KnownCase) -> None:
    """Every disagreement the differential run found, minimised. The kernel's outcome must stay
    what was recorded (else the lab or the kernel changed); while the engine still disagrees,
    the case is an expected failure naming the engine bug (see `case.diagnosis`)."""
    lab.reset()
    try:
        if case.nft:
            lab.load_nft(case.nft)
        for text, ipv6, legacy in case.iptables:
            lab.load_iptables(text, ipv6=ipv6, legacy=legacy)
        doc = lab.snapshot()
        kernel = lab.probe()
    finally:
        lab.reset()
    got = {f: kernel[f].short() for f in ALL_FLOWS}
    # a case records the flows that existed when it was found (discovery flows came later)
    recorded = [f for f in ALL_FLOWS if f in case.kernel]
    assert {f: got[f] for f in recorded} == case.kernel, (
        f"the kernel no longer does what {case.name} recorded:\n"
        + "\n".join(
            f"  {f}: recorded {case.kernel[f]}, now {got[f]}"
            for f in recorded
            if got[f] != case.kernel[f]
        )
    )
    carried, bare = ingress_variants(doc)
    engine = engine_hotspot(carried)
    flows = engine.get("flows") or {}
    verdicts = {f: classify(f, kernel.get(f), flows.get(f)) for f in ALL_FLOWS}
    if bare is not None:
        bare_flows = engine_hotspot(bare).get("flows") or {}
        for f in ALL_FLOWS:
            verdicts[f + NO_DEVICE] = classify(f, kernel.get(f), bare_flows.get(f))
            flows = {**flows, f + NO_DEVICE: bare_flows.get(f)}
    wrong = {f: v for f, v in verdicts.items() if v in DISAGREE}
    if wrong:
        text = ", ".join(
            f"{f} {v} (kernel {got[f.removesuffix(NO_DEVICE)]}, engine {engine_text(flows.get(f))})"
            for f, v in wrong.items()
        )
        if case.fixed_in:
            pytest.fail(
                f"regression: {case.name} (fixed in {case.fixed_in}) is back: {text}\n"
                f"{case.diagnosis}\n{case.nft}",
                pytrace=False,
            )
        pytest.xfail(f"open engine bug {case.name}: {text}")


def test_generator_balance() -> None:
    """Without the kernel: generated rulesets are varied (a smoke test of the strategy)."""
    from hypothesis import strategies as st

    texts: list[str] = []

    @settings(
        max_examples=40,
        deadline=None,
        database=None,
        derandomize=True,
        suppress_health_check=list(HealthCheck),
    )
    @given(st.data())
    def collect(data: st.DataObject) -> None:
        texts.append(data.draw(rulesets()).describe())

    collect()
    joined = "\n".join(texts)
    for needle in ("hook forward", "policy drop", "accept", "drop", "jump", "vmap", "ct state"):
        assert needle in joined, needle
    assert len(set(texts)) > 30
    json.dumps(texts)
