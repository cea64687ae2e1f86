"""What the CLI, the watcher and the applet show: each verdict with the remedies for its culprit.

The verdict (`verdict.report`) knows nothing of fixes; the remedies are attached here, where the
result is assembled for people (`explain_text`) and programs (`hotspot_json`, `report_json`).
"""

from __future__ import annotations

from typing import Any

from hotspotguard.fixes import STRATEGIES, remedies
from hotspotguard.verdict import HotspotVerdict, Report
from hotspotguard.verdict import report as verdict_report


def hotspot_json(verdict: HotspotVerdict) -> dict[str, Any]:
    """`explain --json`'s object for one hotspot: the verdict, and `fixes`."""
    return {**verdict_report.verdict_json(verdict), "fixes": list(remedies(verdict))}


def report_json(report: Report) -> dict[str, Any]:
    return {
        "hotspots": [hotspot_json(h) for h in report.hotspots],
        "warnings": list(report.warnings),
    }


def _fix_lines(verdict: HotspotVerdict) -> list[str]:
    names = remedies(verdict)
    if not names:
        return []
    return ["fixes: " + ", ".join(f"{name} ({STRATEGIES.get(name, '')})" for name in names)]


def explain_text(report: Report, trace: bool = True) -> str:
    return verdict_report.explain_text(report, trace, annotate=_fix_lines)


def verdict_brief(verdict: HotspotVerdict) -> dict[str, Any]:
    """The verdict in brief, as a plan's before/after: state, sentence, remedies, and the fields
    the sentence is worded from (hotspotguard.wording)."""
    return {
        **verdict_report.summary_facts(verdict),  # what the applet words the sentence from
        "verdict": verdict.verdict,
        "summary": verdict_report.summary(verdict),
        "fixes": list(remedies(verdict)),
    }
