"""What the CLI, the watcher and the applet show: each verdict with the remedies for its culprit.

The verdict (`verdict.report`) knows nothing of fixes; the remedies are attached here, where the
result is assembled for people (`explain_text`) and programs (`hotspot_json`, `report_json`).
Each remedy is what the fix's own planner says of it on this machine (`fixes.strategies`'s
candidates): available, or the one-line reason it cannot work here — never a bare name.
"""

from __future__ import annotations

from collections.abc import Hashable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from hotspotguard.fixes import STRATEGIES, remedies
from hotspotguard.fixes.plan import HostFacts
from hotspotguard.fixes.strategies import candidates
from hotspotguard.ruleset import Ruleset, Snapshot
from hotspotguard.verdict import HotspotVerdict, Report
from hotspotguard.verdict import report as verdict_report


@dataclass(frozen=True)
class Remedy:
    """A strategy for what blocks a hotspot: available here, or why not (one line)."""

    strategy: str
    available: bool
    reason: str | None = None

    def to_json(self) -> dict[str, Any]:
        return {
            "strategy": self.strategy,
            "description": STRATEGIES.get(self.strategy, ""),
            "available": self.available,
            "reason": self.reason,
        }


Remedies = Mapping[str, Sequence[Remedy]]  # per hotspot interface


def hotspot_remedies(
    snapshot: Snapshot, ruleset: Ruleset, verdict: HotspotVerdict, facts: HostFacts
) -> tuple[Remedy, ...]:
    """The remedies for what blocks `verdict`, least privileged first, each planned and
    verified by the engine as `fix` would (none when nothing blocks it)."""
    if verdict.blocked_by is None:
        return ()
    try:
        listed = candidates(snapshot, ruleset, verdict.hotspot.iface, facts)
    except Exception as error:  # a view never fails for a planner's bug
        why = f"it could not be planned: {error}".splitlines()[0]
        return tuple(Remedy(name, False, why) for name in remedies(verdict))
    return tuple(Remedy(c.strategy, c.works, c.reason) for c in listed)


class RemedyMemo:
    """The remedies last planned for each hotspot, kept while what they are planned from is
    the same: the hotspot, the uplinks, the settings, the host facts, and each flow's path
    through the firewall (every chain and rule it met, and the drop that stopped it).  For the
    watcher: a change elsewhere (another table's churn) then costs the verdict alone, not a
    plan of every candidate; a fix plans and verifies again when it is applied."""

    def __init__(self) -> None:
        self._kept: dict[str, tuple[Hashable, tuple[Remedy, ...]]] = {}

    def remedies(
        self, snapshot: Snapshot, ruleset: Ruleset, verdict: HotspotVerdict, facts: HostFacts
    ) -> tuple[Remedy, ...]:
        if verdict.blocked_by is None:
            return ()
        paths = tuple((n, f.verdict, f.dropped_by, f.visits) for n, f in verdict.flows.items())
        key = (
            verdict.hotspot,
            snapshot.uplinks,
            tuple(sorted(snapshot.sysctl.items())),
            facts,
            paths,
        )
        iface = verdict.hotspot.iface
        kept = self._kept.get(iface)
        if kept is not None and kept[0] == key:
            return kept[1]
        offered = hotspot_remedies(snapshot, ruleset, verdict, facts)
        self._kept[iface] = (key, offered)
        return offered


def report_remedies(
    snapshot: Snapshot, ruleset: Ruleset, report: Report, facts: HostFacts
) -> dict[str, tuple[Remedy, ...]]:
    return {v.hotspot.iface: hotspot_remedies(snapshot, ruleset, v, facts) for v in report.hotspots}


def hotspot_json(verdict: HotspotVerdict, offered: Sequence[Remedy]) -> dict[str, Any]:
    """`explain --json`'s object for one hotspot: the verdict, `fixes` (the strategies that
    work here) and `remedies` (every one considered, with whether it is available and why
    not)."""
    return {
        **verdict_report.verdict_json(verdict),
        "fixes": [r.strategy for r in offered if r.available],
        "remedies": [r.to_json() for r in offered],
    }


def report_json(report: Report, offered: Remedies) -> dict[str, Any]:
    return {
        "hotspots": [hotspot_json(h, offered.get(h.hotspot.iface, ())) for h in report.hotspots],
        "warnings": list(report.warnings),
    }


def remedy_lines(offered: Sequence[dict[str, Any]], brief: bool = False) -> list[str]:
    """The remedies (as `hotspot_json` gives them) for people: the available ones on one
    line (`brief`: their names only), each other with its reason."""
    if not offered:
        return []
    available = [
        str(r["strategy"]) if brief else f"{r['strategy']} ({r.get('description', '')})"
        for r in offered
        if r.get("available")
    ]
    lines = ["fixes: " + (", ".join(available) or "none works here")]
    lines += [
        f"  not here: {r['strategy']}: {r['reason']}" for r in offered if not r.get("available")
    ]
    return lines


def explain_text(report: Report, offered: Remedies, trace: bool = True) -> str:
    def annotate(verdict: HotspotVerdict) -> list[str]:
        return remedy_lines([r.to_json() for r in offered.get(verdict.hotspot.iface, ())])

    return verdict_report.explain_text(report, trace, annotate=annotate)


def verdict_brief(verdict: HotspotVerdict) -> dict[str, Any]:
    """The verdict in brief, as a plan's before/after: state, sentence, and the fields the
    sentence is worded from (hotspotguard.wording); the remedies a preview weighs are its
    `candidates`, each with why it works or not."""
    return {
        **verdict_report.summary_facts(verdict),  # what the applet words the sentence from
        "verdict": verdict.verdict,
        "summary": verdict_report.summary(verdict),
    }
