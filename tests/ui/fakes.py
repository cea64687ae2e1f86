"""A helper stand-in for the UI tests: real snapshots, the real engine and the real fix
planner; "applying" a fix switches to the lab's capture of the same machine after it."""

from __future__ import annotations

import asyncio
import copy
import threading
from collections.abc import Callable
from typing import Any

from hotspotguard.assessment import verdict_brief
from hotspotguard.fixes.strategies import FixUnavailable, verified_plan
from hotspotguard.ruleset import load_snapshot, parse_ruleset
from hotspotguard.usecases.operations import OperationError
from hotspotguard.watch import Connection
from hotspotguard.wording import reason_of
from tests.ui.conftest import docker_document, fixed_document

HOTSPOT = "nmp-hs0"
CONNECTION = Connection("Hotspot", "0b3a1e2c-0000-4000-8000-000000000001", "802-11-wireless")


class EngineBackend:
    """The helper's verbs over documents in memory (see the module's docstring)."""

    def __init__(self, doc: dict[str, Any] | None = None) -> None:
        self.doc = doc if doc is not None else docker_document()
        self.generation = "1"
        self.fixes: list[dict[str, Any]] = []
        self.calls: list[str] = []
        self.snapshot_threads: list[str] = []
        self.fail: dict[str, BaseException] = {}
        self.hold: dict[str, asyncio.Event] = {}
        self.changed: Callable[[], None] | None = None
        #: strategies the stand-in says cannot work here, with the helper's one-line reason
        self.unavailable: dict[str, str] = {}

    async def _enter(self, name: str) -> None:
        self.calls.append(name)
        if name in self.hold:
            await self.hold[name].wait()
        if name in self.fail:
            raise self.fail[name]

    async def get_snapshot(self) -> dict[str, Any]:
        await self._enter("GetSnapshot")
        self.snapshot_threads.append(threading.current_thread().name)
        return copy.deepcopy(self.doc)

    def _plan(self, iface: str, strategy: str) -> tuple[Any, Any]:
        snapshot = load_snapshot(self.doc)
        if strategy in self.unavailable:
            raise OperationError("NotApplicable", self.unavailable[strategy])
        try:
            return verified_plan(
                snapshot, parse_ruleset(snapshot), iface, strategy or "docker-user"
            )
        except FixUnavailable as error:
            raise OperationError("NotApplicable", reason_of(error)) from None

    async def preview_fix(self, iface: str, strategy: str) -> dict[str, Any]:
        await self._enter("PreviewFix")
        plan, verification = self._plan(iface, strategy)
        return {
            "plan": plan.to_json(),
            "generation": self.generation,
            "before": verdict_brief(verification.before),
            "after": verdict_brief(verification.after),
            "applied": any(f["id"] == plan.fix_id for f in self.fixes),
        }

    async def apply_fix(
        self, iface: str, strategy: str, permanent: bool, generation: str
    ) -> dict[str, Any]:
        await self._enter("ApplyFix")
        if generation and generation != self.generation:
            raise OperationError("Stale", "the firewall changed since the fix was planned")
        plan, verification = self._plan(iface, strategy)
        record = {
            "id": plan.fix_id,
            "strategy": plan.strategy,
            "iface": iface,
            "uid": 1000,
            "applied_at": 0.0,
            "permanent": permanent,
            "summary": plan.summary,
            "changes": [c.to_json() for c in plan.changes],
        }
        self.fixes.append(record)
        self.doc = fixed_document()
        self.generation = "2"
        return {
            **record,
            "changed": True,
            "files": [],
            "before": verdict_brief(verification.before),
            "after": verdict_brief(verification.after),
        }

    async def undo_fix(self, fix_id: str) -> dict[str, Any]:
        await self._enter("UndoFix")
        record = next((f for f in self.fixes if f["id"] == fix_id or not fix_id), None)
        if record is None:
            raise OperationError("NotFound", f"no fix {fix_id} is applied")
        self.fixes.remove(record)
        self.doc = docker_document()
        self.generation = "3"
        return {**record, "removed_rules": 2, "files": []}

    async def undo_all_fixes(self) -> list[dict[str, Any]]:
        return [await self.undo_fix(str(f["id"])) for f in list(self.fixes)]

    async def list_fixes(self) -> list[dict[str, Any]]:
        await self._enter("ListFixes")
        return [{**f, "in_place": True} for f in self.fixes]

    async def set_permanent(self, fix_id: str, permanent: bool) -> dict[str, Any]:
        await self._enter("SetPermanent")
        record = next(f for f in self.fixes if f["id"] == fix_id)
        record["permanent"] = permanent
        return {**record, "files": []}

    async def subscribe(self, callback: Callable[[], None]) -> None:
        await self._enter("Subscribe")
        self.changed = callback

    async def close(self) -> None:
        pass
