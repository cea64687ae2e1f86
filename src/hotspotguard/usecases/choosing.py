"""Every candidate fix for a hotspot, as the dry run and the applet show them: least privileged
first, each with its trade-off, how long it lasts, and the engine's verdict per flow before
and after it (or the one-line reason it cannot work here)."""

from __future__ import annotations

from typing import Any

from hotspotguard.fixes import PERMANENCE, STRATEGIES
from hotspotguard.fixes.plan import HostFacts
from hotspotguard.fixes.strategies import Candidate, candidates
from hotspotguard.ruleset import Ruleset, Snapshot
from hotspotguard.wording import reason_fields


def _flows(candidate: Candidate) -> dict[str, dict[str, str]]:
    if candidate.verification is None:
        return {}
    before, after = candidate.verification.before.flows, candidate.verification.after.flows
    return {
        name: {"before": result.verdict, "after": after[name].verdict if name in after else ""}
        for name, result in before.items()
    }


def candidate_json(candidate: Candidate, recommended: bool) -> dict[str, Any]:
    plan = candidate.plan
    steps = list(plan.steps or (plan.strategy,)) if plan else [candidate.strategy]
    permanence = PERMANENCE.get(candidate.strategy, "")
    if plan is not None and plan.steps:
        permanence = "; ".join(f"{step}: {PERMANENCE.get(step, '')}" for step in plan.steps)
    return {
        "strategy": candidate.strategy,
        "description": STRATEGIES.get(candidate.strategy, ""),
        "recommended": recommended,
        "works": candidate.works,
        **reason_fields(candidate.reason),
        "summary": plan.summary if plan else None,
        "tradeoff": plan.tradeoff if plan else None,
        "permanence": permanence,
        "steps": steps,
        "preview": plan.preview() if plan else [],
        "flows": _flows(candidate),
    }


def candidates_json(
    snapshot: Snapshot, ruleset: Ruleset, iface: str, facts: HostFacts
) -> list[dict[str, Any]]:
    listed = candidates(snapshot, ruleset, iface, facts)
    best = next((c.strategy for c in listed if c.works), None)
    return [candidate_json(c, c.strategy == best) for c in listed]
