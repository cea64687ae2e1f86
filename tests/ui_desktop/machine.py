"""A machine made of real captures, for the applet's tests and benchmark.

The lab's captures of NetworkManager's hotspot beside Docker 28 (tests/data/nm-lab) stand in
for the live firewall: `CapturedMachine` answers the helper's verbs (the ones
``InProcessBackend`` calls) from them, planning fixes with the real planner and verifying them
with the real engine; applying the docker-user fix switches the machine to the capture taken
after that fix. States come from :func:`hotspotguard.watch.assess` on the same documents.
"""

from __future__ import annotations

import copy
import time
from typing import Any

from hotspotguard.assessment import verdict_brief
from hotspotguard.fixes.strategies import (
    FixUnavailable,
    preferred_strategy,
    verified_plan,
    verify_current,
)
from hotspotguard.ruleset import load_snapshot, parse_ruleset
from hotspotguard.watch import WatchState, assess
from tests.helpers import NM_LAB, SnapshotHotspots, document, nm_lab

IFACE = "nmp-hs0"


def blocked_document() -> dict[str, Any]:
    """NetworkManager's hotspot beside Docker 28: the FORWARD policy drops its traffic."""
    return document(
        nm_lab("nft-3-docker-full.json"),
        iface=IFACE,
        uplinks=("nmp-up0",),
        iptables_nft_save=(NM_LAB / "iptables-save-docker-full.txt").read_text(),
    )


def fixed_document() -> dict[str, Any]:
    """The same machine after the fix in DOCKER-USER."""
    return document(nm_lab("nft-3-docker-full-fixed.json"), iface=IFACE, uplinks=("nmp-up0",))


def unknown_document() -> dict[str, Any]:
    """NetworkManager alone, captured without the forwarding sysctls: undecidable."""
    doc = document(nm_lab("nft-1-nm-only.json"), iface=IFACE, uplinks=("nmp-up0",))
    doc["sysctl"] = {}
    return doc


def idle_document() -> dict[str, Any]:
    """NetworkManager's firewall with no shared connection."""
    return {**document(nm_lab("nft-1-nm-only.json"), iface=IFACE), "hotspots": []}


DOCUMENTS = {
    "blocked": blocked_document,
    "ok": fixed_document,
    "unknown": unknown_document,
    "no-hotspot": idle_document,
}


def real_state(kind: str) -> dict[str, Any]:
    """``WatchState.to_json()`` from the engine on a real capture ("error": the watcher's own
    answer when NetworkManager is not running)."""
    if kind == "error":
        state: WatchState = assess(SnapshotHotspots("NetworkManager is not running"))
    else:
        doc = DOCUMENTS[kind]()
        state = assess(SnapshotHotspots(), lambda _ifaces: copy.deepcopy(doc))
    assert state.state == kind, state
    return state.to_json()


class CapturedMachine:
    """The helper's operations over captures: blocked until a fix is applied."""

    def __init__(self, kind: str = "blocked") -> None:
        self.doc = DOCUMENTS[kind]()
        self.failure: str | None = None
        self.fixes: list[dict[str, Any]] = []
        self.calls: list[str] = []

    def snapshot(self) -> dict[str, Any]:
        self.calls.append("snapshot")
        if self.failure:
            from hotspotguard.usecases.operations import OperationError

            raise OperationError("Failed", self.failure)
        return copy.deepcopy(self.doc)

    def _plan(self, iface: str, strategy: str) -> tuple[Any, Any, Any]:
        snapshot = load_snapshot(self.doc)
        ruleset = parse_ruleset(snapshot)
        if not strategy:
            strategy = preferred_strategy(verify_current(snapshot, ruleset, iface)) or ""
            if not strategy:
                from hotspotguard.usecases.operations import OperationError

                raise OperationError("NotApplicable", f"{iface} is not blocked: nothing to fix")
        try:
            plan, verification = verified_plan(snapshot, ruleset, iface, strategy)
        except FixUnavailable as error:  # as Operations says it
            from hotspotguard.usecases.operations import OperationError

            raise OperationError("NotApplicable", str(error)) from None
        return snapshot, plan, verification

    def preview(self, iface: str, strategy: str = "") -> dict[str, Any]:
        self.calls.append(f"preview {iface} {strategy}")
        _, plan, verification = self._plan(iface, strategy)
        return {
            "plan": plan.to_json(),
            "generation": "1-captured",
            "before": verdict_brief(verification.before),
            "after": verdict_brief(verification.after),
            "applied": any(f["id"] == plan.fix_id for f in self.fixes),
        }

    def apply(
        self, iface: str, strategy: str, *, permanent: bool, uid: int, generation: str = ""
    ) -> dict[str, Any]:
        self.calls.append(f"apply {iface} {strategy}")
        _, plan, verification = self._plan(iface, strategy)
        record = {
            "id": plan.fix_id,
            "strategy": plan.strategy,
            "iface": iface,
            "uid": uid,
            "applied_at": time.time(),
            "permanent": permanent,
            "summary": plan.summary,
            "changes": [c.to_json() for c in plan.changes],
        }
        self.fixes = [f for f in self.fixes if f["id"] != plan.fix_id] + [record]
        self.doc = fixed_document()
        return {
            **record,
            "changed": True,
            "files": [],
            "before": verdict_brief(verification.before),
            "after": verdict_brief(verification.after),
        }

    def undo(self, fix_id: str, *, uid: int) -> dict[str, Any]:
        self.calls.append(f"undo {fix_id}")
        record = next((f for f in self.fixes if not fix_id or f["id"] == fix_id), None)
        if record is None:
            from hotspotguard.usecases.operations import OperationError

            raise OperationError("NotFound", "no fix has been applied")
        self.fixes.remove(record)
        self.doc = blocked_document()
        return {**record, "removed_rules": len(record["changes"]), "files": []}

    def undo_all(self, *, uid: int) -> list[dict[str, Any]]:
        return [self.undo(f["id"], uid=uid) for f in reversed(self.fixes)]

    def list_fixes(self) -> list[dict[str, Any]]:
        return [{**f, "in_place": True} for f in self.fixes]

    def set_permanent(self, fix_id: str, permanent: bool, *, uid: int) -> dict[str, Any]:
        for record in self.fixes:
            if record["id"] == fix_id:
                record["permanent"] = permanent
                return record
        from hotspotguard.usecases.operations import OperationError

        raise OperationError("NotFound", f"no fix {fix_id}")

    def set_kind(self, kind: str) -> None:
        """Become another capture ("error": the capture fails, as without nft)."""
        self.failure = (
            "nft: cannot read the ruleset (Operation not permitted)" if (kind == "error") else None
        )
        if kind != "error":
            self.doc = DOCUMENTS[kind]()
