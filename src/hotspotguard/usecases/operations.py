"""The use cases (plan, apply, undo, list, reapply), one place: the CLI and the applet call them
in-process as root, and the D-Bus helper calls them for users.

Every entry point validates its arguments first (`validate_*`) and raises `OperationError` with a
one-line message for a person; nothing changes when an argument is bad.  Results are JSON-ready
dicts (the D-Bus service sends them as JSON strings).
"""

from __future__ import annotations

import contextlib
import os
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import Any

from hotspotguard.assessment import verdict_brief
from hotspotguard.fixes.plan import (
    ChainInsert,
    Change,
    DropIn,
    Plan,
    RuleChange,
    SysctlChange,
    UfwChange,
    ZoneChange,
    change_from_json,
    rule_tag,
    tag,
)
from hotspotguard.fixes.strategies import (
    FixUnavailable,
    Verification,
    candidates,
    verified_plan,
    verify_current,
)
from hotspotguard.ruleset import Ruleset, Snapshot, SnapshotError, load_snapshot, parse_ruleset
from hotspotguard.system import docker, firewall, persist, trust
from hotspotguard.usecases import edits, firewalld_zone, state
from hotspotguard.usecases.arguments import OperationError as OperationError  # its callers'
from hotspotguard.usecases.arguments import (
    refuse_pattern_name,
    validate_fix_id,
    validate_iface,
    validate_strategy,
)
from hotspotguard.usecases.choosing import candidates_json
from hotspotguard.verdict.report import summary_facts
from hotspotguard.wording import Reason, reason_fields, reason_of

#: change kinds whose rules name the uplinks (their names must not read as patterns)
NAMES_UPLINKS = (RuleChange, ChainInsert, UfwChange)
APPLY_ATTEMPTS = 3


def fix_id(strategy: str, iface: str) -> str:
    return f"{strategy}@{iface}"


def _default_helper() -> str:
    """The installed `hotspotguard-helper`: beside the running Python (a venv), else in the
    libexec directory of the prefix this package is installed under (`make install`, the
    distributions' packages: <prefix>/lib/python3…/…-packages → <prefix>/libexec/hotspotguard)."""
    candidates = [os.path.join(os.path.dirname(sys.executable), "hotspotguard-helper")]
    package = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    parts = package.split(os.sep)
    if "lib" in parts:
        prefix = os.sep.join(parts[: len(parts) - 1 - parts[::-1].index("lib")]) or os.sep
        candidates.append(os.path.join(prefix, "libexec", "hotspotguard", "hotspotguard-helper"))
    found = (c for c in candidates if os.path.isabs(c) and os.path.exists(c))
    return next(found, DEFAULT_HELPER)


DEFAULT_HELPER = "/usr/libexec/hotspotguard/hotspotguard-helper"


@dataclass(frozen=True)
class Paths:
    """Where the helper keeps state and writes its permanent-fix files (fixed, absolute)."""

    state_dir: str = "/var/lib/hotspotguard"
    systemd_dropin_dir: str = "/etc/systemd/system/docker.service.d"
    dispatcher_dir: str = "/etc/NetworkManager/dispatcher.d"
    helper: str = field(default_factory=_default_helper)

    @property
    def state_file(self) -> str:
        return os.path.join(self.state_dir, "fixes.json")


def _one_line(error: BaseException) -> str:
    """The error's first line, kept structured where it is a `wording.Reason` (a tool's
    failure, a chain gone): the applet words it in the person's language."""
    return reason_of(error) or type(error).__name__


@dataclass
class _Live:
    """The machine now, for one hotspot: snapshot, ruleset and the generation token."""

    snapshot: Snapshot
    ruleset: Ruleset
    generation: str
    doc: dict[str, Any]


class Operations:
    """The helper's verbs.  Blocking; callers run them off their event loop, one at a time."""

    def __init__(
        self, paths: Paths | None = None, on_step: Callable[[str], None] | None = None
    ) -> None:
        self.paths = paths or Paths()
        # called between the steps of apply, undo and set-permanent (the crash tests stop the
        # process there); nothing in production
        self._on_step = on_step

    def _step(self, name: str) -> None:
        if self._on_step is not None:
            self._on_step(name)

    # --- reading ---------------------------------------------------------------------------

    def snapshot(self) -> dict[str, Any]:
        """The live `hotspotguard-snapshot/1` document (hotspots from NetworkManager's tables)."""
        from hotspotguard.system.capture import CaptureError, capture_snapshot

        try:
            return capture_snapshot(None)
        except CaptureError as error:
            raise OperationError("Failed", str(error)) from None

    def _live(self, iface: str) -> _Live:
        """Capture the machine with `iface` as the hotspot, between two equal generations."""
        from hotspotguard.system.capture import CaptureError, capture_snapshot

        for _ in range(5):
            try:
                before = firewall.generation([])
                doc = capture_snapshot([iface])
                snapshot = load_snapshot(doc)
                legacy = [snapshot.iptables_legacy_save, snapshot.ip6tables_legacy_save]
                token = firewall.generation(legacy)
            except (CaptureError, SnapshotError, firewall.FirewallError) as error:
                raise OperationError("Failed", _one_line(error)) from None
            if before.split("-")[0] == token.split("-")[0]:
                return _Live(snapshot, parse_ruleset(snapshot), token, doc)
        raise OperationError("Failed", Reason("firewall-busy"))

    def _plan(self, iface: str, strategy: str) -> tuple[_Live, Plan, Verification]:
        validate_iface(iface)
        if strategy:
            validate_strategy(strategy)
        live = self._live(iface)
        _require_shared(iface, live.doc)
        facts = docker.facts(live.ruleset, self.paths.systemd_dropin_dir, (iface,))
        if not strategy:
            verdict = verify_current(live.snapshot, live.ruleset, iface)
            applied = [f for f in self._load() if f.get("iface") == iface]
            offered = candidates(live.snapshot, live.ruleset, iface, facts)
            chosen = next((c.strategy for c in offered if c.works), None)
            if chosen is None and verdict.verdict == "ok" and applied:
                chosen = str(applied[-1]["strategy"])  # ok thanks to it: apply is then a no-op
            if chosen is None:
                if verdict.verdict == "ok":
                    raise OperationError("NotApplicable", Reason("nothing-to-fix", iface=iface))
                if offered:
                    failed = [{"strategy": c.strategy, "why": reason_fields(c.reason)}
                              for c in offered]  # fmt: skip
                    raise OperationError("NotApplicable", Reason("no-fix-works", failed=failed))
                raise OperationError(
                    "NotApplicable", Reason("no-fix-built", verdict=summary_facts(verdict))
                )
            strategy = chosen
        try:
            plan, verification = verified_plan(live.snapshot, live.ruleset, iface, strategy, facts)
        except FixUnavailable as error:  # in-process callers keep the reason's code
            raise OperationError("NotApplicable", reason_of(error)) from None
        if any(isinstance(c, NAMES_UPLINKS) for c in plan.changes):
            for uplink in live.snapshot.uplinks:  # the rules name them
                refuse_pattern_name(uplink, "uplink", "NotApplicable")
        return live, plan, verification

    def preview(self, iface: str, strategy: str = "") -> dict[str, Any]:
        """The plan for `strategy` ("" = the recommended one, with every candidate it was
        chosen from) on hotspot `iface`, with the engine's verdicts before and after it, and
        the generation it was planned on."""
        live, plan, verification = self._plan(iface, strategy)
        result = {
            "plan": plan.to_json(),
            "generation": live.generation,
            "before": verdict_brief(verification.before),
            "after": verdict_brief(verification.after),
            "applied": self._find(plan.fix_id) is not None,
        }
        if not strategy:  # the recommended one: with every candidate it was chosen from
            facts = docker.facts(live.ruleset, self.paths.systemd_dropin_dir, (iface,))
            result["candidates"] = candidates_json(live.snapshot, live.ruleset, iface, facts)
        return result

    # --- changing --------------------------------------------------------------------------

    def apply(
        self, iface: str, strategy: str, *, permanent: bool, uid: int, generation: str = ""
    ) -> dict[str, Any]:
        """Apply (idempotent).  With the `generation` of a preview (a plan a person saw) it is
        refused if the ruleset moved since; without, a plan overtaken by a change while being
        applied is made again (a daemon such as dockerd may still be writing its rules)."""
        for _ in range(APPLY_ATTEMPTS - 1):
            try:
                return self._apply_once(iface, strategy, permanent, uid, generation)
            except OperationError as error:
                if error.kind != "Stale" or generation:
                    raise
            time.sleep(0.05)
        return self._apply_once(iface, strategy, permanent, uid, generation)

    def _apply_once(
        self, iface: str, strategy: str, permanent: bool, uid: int, generation: str
    ) -> dict[str, Any]:
        live, plan, verification = self._plan(iface, strategy)
        if permanent:
            self._check_keepable()  # before anything changes
        if generation and generation != live.generation:
            raise OperationError(
                "Stale", "the firewall changed since the fix was planned: preview it again"
            )
        fixes = self._recover()
        record = next((f for f in fixes if f.get("id") == plan.fix_id), None)
        done: list[tuple[Change, list[firewall.AddedRule]]] = []
        warnings: list[str] = []
        changed = False
        expected = live.generation.split("-")[0]  # nftables' part; ours commits move it on
        try:
            # the settings as they are now, recorded (with the whole plan) before any change:
            # after a crash the next call knows what to take back
            planned = [_as_found(change, record) for change in plan.changes]
            self._step("planned")
            self._write(fixes, {"op": "apply", "id": plan.fix_id,
                                "changes": [c.to_json() for c in planned]})  # fmt: skip
            self._step("intent")
            for number, change in enumerate(planned, 1):
                if isinstance(change, RuleChange):
                    previous = _recorded_rules(record, change)
                    added, moved_to = self._insert(change, plan.tag, expected, previous, warnings)
                    changed |= moved_to is not None
                    expected = moved_to or expected
                    done.append((change, added))
                elif isinstance(change, edits.KINDS):
                    did, recorded = _apply_edit(change, plan.tag, record)
                    changed |= did
                    done.append((recorded, []))
                else:
                    if firewall.read_sysctl(change.name) != change.value:
                        firewall.write_sysctl(change.name, change.value)
                        changed = True
                    done.append((change, []))
                self._step(f"change-{number}")
        except (firewall.FirewallError, OSError, OperationError) as error:
            self._roll_back(done, plan.tag)
            with contextlib.suppress(OperationError):
                self._write(fixes, None)
            if isinstance(error, OperationError):
                raise
            raise OperationError("Failed", _one_line(error)) from None
        done += [(kept, []) for kept in edits.kept_removals(record, [c for c, _ in done])]
        keep = permanent or bool(record and record.get("permanent"))
        new_record = {
            "id": plan.fix_id,
            "strategy": plan.strategy,
            "iface": plan.iface,
            "uid": record["uid"] if record else uid,
            "applied_at": record["applied_at"] if record else time.time(),
            "permanent": keep,
            "summary": plan.summary,
            "changes": [_change_record(change, added) for change, added in done],
        }
        fixes = [f for f in fixes if f.get("id") != plan.fix_id] + [new_record]
        self._store(fixes)
        self._step("recorded")
        files = self._sync_permanent_files(fixes)
        self._step("files")
        return {
            **new_record,
            "changed": changed,
            "files": files,
            "warnings": warnings,
            "notes": [_apply_note(c) for c in plan.changes if isinstance(c, DropIn) and changed],
            "before": verdict_brief(verification.before),
            "after": verdict_brief(verification.after),
        }

    def _insert(
        self,
        change: RuleChange,
        fix_tag: str,
        expected: str,
        previous: list[firewall.AddedRule],
        warnings: list[str],
    ) -> tuple[list[firewall.AddedRule], str | None]:
        """Put `change`'s rules in place in one commit (replacing `previous`, the rules an
        earlier apply of this fix added) if nftables' generation is still `expected`.  The
        identities of the rules now in place, and the generation after the commit (None when
        they already were in place).  Look-alikes (our tag, not ours) stay, with a warning."""
        listing = firewall.list_chain(change)
        if not listing.exists:
            raise firewall.FirewallError(
                Reason("chain-gone", table=change.table, chain=change.chain)
            )
        where = firewall.locate(listing, previous)
        mine = [i for i in where if i is not None]
        warnings += _look_alike_warnings(change, firewall.look_alikes(listing, where, fix_tag))
        if len(mine) == len(previous) and firewall.same_rules(
            [listing.rules[i][0] for i in mine], change.rules
        ):
            return previous, None
        if firewall.generation([]).split("-")[0] != expected:
            raise OperationError(
                "Stale", "the firewall changed while the fix was applied: try again"
            )
        lines = firewall.delete_positions(change.chain, mine) + firewall.insert_lines(change)
        try:
            firewall.commit_on(change, listing, lines)
        except firewall.Moved as error:
            raise OperationError("Stale", reason_of(error)) from None
        moved_to = firewall.generation([]).split("-")[0]
        return firewall.added_at_top(change), moved_to

    def _remove(
        self, change: RuleChange, added: list[firewall.AddedRule], fix_tag: str = ""
    ) -> tuple[int, list[str]]:
        """Delete exactly the rules `added` (one commit); how many, and warnings for a person:
        look-alikes left in place, rules of the fix already gone."""
        for _ in range(firewall.ATTEMPTS):
            listing = firewall.list_chain(change)
            where = firewall.locate(listing, added)
            mine = [i for i in where if i is not None]
            try:
                firewall.commit_on(change, listing, firewall.delete_positions(change.chain, mine))
            except firewall.Moved:
                continue
            warnings = _look_alike_warnings(change, firewall.look_alikes(listing, where, fix_tag))
            gone = len(where) - len(mine)
            if gone:
                warnings.append(
                    f"{gone} of this fix's rules in {change.table} {change.chain} were already gone"
                )
            return len(mine), warnings
        raise firewall.FirewallError(Reason("firewall-busy"))

    def _roll_back(self, done: list[tuple[Change, list[firewall.AddedRule]]], fix_tag: str) -> None:
        for change, added in reversed(done):
            with contextlib.suppress(firewall.FirewallError, OSError):
                if isinstance(change, RuleChange):
                    self._remove(change, added)
                elif isinstance(change, edits.KINDS):
                    edits.undo(change, fix_tag)
                else:
                    self._undo_sysctl(change, force=True)

    @staticmethod
    def _undo_sysctl(change: SysctlChange, force: bool = False) -> None:
        """The setting as it was, if it still is as we set it (or `force`), and the settings
        the kernel changed along with it."""
        if change.previous is None:
            return
        if force or firewall.read_sysctl(change.name) == change.value:
            firewall.write_sysctl(change.name, change.previous)
            firewall.restore_settings(change.restore)

    def undo(self, fix_id: str, *, uid: int) -> dict[str, Any]:
        """Undo one fix ("" = the most recent); restores exactly what was there."""
        if fix_id:
            validate_fix_id(fix_id)
        fixes = self._recover()
        record = self._pick(fixes, fix_id)
        self._write(fixes, {"op": "undo", "id": record["id"]})
        self._step("intent")
        try:
            removed, warnings = self._take_back(record)
        except OperationError as error:
            if error.kind == "NotApplicable":  # refused as recorded: the fix stays, as it is
                self._write(fixes, None)
            raise
        fixes = [f for f in fixes if f.get("id") != record["id"]]
        self._store(fixes)
        self._step("recorded")
        files = self._sync_permanent_files(fixes)
        self._step("files")
        notes = [
            _undo_note(raw) for raw in record.get("changes", []) if raw.get("kind") == "dropin"
        ]
        return {**record, "removed_rules": removed, "files": files, "warnings": warnings,
                "notes": notes}  # fmt: skip

    def _take_back(self, record: dict[str, Any]) -> tuple[int, list[str]]:
        """Remove the rules `record` added and put its settings back (idempotent: what is
        gone already is skipped); how many rules, and warnings for a person."""
        removed = 0
        warnings: list[str] = []
        try:
            for number, raw in enumerate(record.get("changes", []), 1):
                change = change_from_json(raw)
                if isinstance(change, RuleChange):
                    count, said = self._remove(
                        change, _added_of(raw, change), tag(str(record["id"]))
                    )
                    removed += count
                    warnings += said
                elif isinstance(change, edits.KINDS):
                    count, said = edits.undo(change, tag(str(record["id"])))
                    removed += count
                    warnings += said
                else:
                    self._undo_sysctl(change)
                self._step(f"change-{number}")
        except edits.StaleEdit as error:
            raise OperationError("NotApplicable", reason_of(error)) from None
        except (firewall.FirewallError, OSError, KeyError, TypeError, ValueError) as error:
            raise OperationError("Failed", _one_line(error)) from None
        return removed, warnings

    def undo_all(self, *, uid: int) -> list[dict[str, Any]]:
        return [self.undo(str(f["id"]), uid=uid) for f in reversed(self._load())]

    def list_fixes(self) -> list[dict[str, Any]]:
        """The applied fixes, oldest first, each with whether its rules are still in place."""
        result = []
        for record in self._recover():
            result.append({**record, "in_place": self._in_place(record)})
        return result

    def _in_place(self, record: dict[str, Any]) -> bool:
        try:
            for raw in record.get("changes", []):
                change = change_from_json(raw)
                if isinstance(change, RuleChange):
                    listing = firewall.list_chain(change)
                    where = firewall.locate(listing, _added_of(raw, change))
                    if None in where or not firewall.same_rules(
                        [listing.rules[i][0] for i in where if i is not None], change.rules
                    ):
                        return False
                elif isinstance(change, edits.KINDS):
                    if not edits.in_place(change, tag(str(record["id"]))):
                        return False
                elif firewall.read_sysctl(change.name) != change.value:
                    return False
        except (firewall.FirewallError, KeyError, TypeError, ValueError):
            return False
        return True

    def fix_owner(self, fix_id: str) -> int:
        """The uid that applied `fix_id` ("" = the most recent); NotFound if there is none."""
        if fix_id:
            validate_fix_id(fix_id)
        return int(self._pick(self._load(), fix_id).get("uid", 0))

    def set_permanent(self, fix_id: str, permanent: bool, *, uid: int) -> dict[str, Any]:
        if fix_id:
            validate_fix_id(fix_id)
        fixes = self._recover()
        record = self._pick(fixes, fix_id)
        if permanent:
            self._check_keepable()
        record["permanent"] = bool(permanent)
        self._store(fixes)
        self._step("recorded")
        files = self._sync_permanent_files(fixes)
        self._step("files")
        return {**record, "files": files}

    def reapply(self, iface: str | None = None) -> list[dict[str, Any]]:
        """Re-apply the saved permanent fixes (all, or those of `iface`); for the drop-in and
        the NetworkManager dispatcher script (all: an uplink coming up changes the rules
        too).  Per fix: "applied", "in place" or why not."""
        if iface is not None:
            validate_iface(iface, must_exist=False)
        results = []
        for record in self._recover():
            if not record.get("permanent") or (iface is not None and record["iface"] != iface):
                continue
            outcome: dict[str, Any] = {"id": record["id"]}
            try:
                done = self.apply(
                    str(record["iface"]),
                    str(record["strategy"]),
                    permanent=True,
                    uid=int(record.get("uid", 0)),
                )
                outcome["result"] = "applied" if done["changed"] else "in place"
            except OperationError as error:
                outcome["result"] = f"not applied: {error}"
            results.append(outcome)
        return results

    # --- the record and the permanent files ------------------------------------------------

    def _load(self) -> list[dict[str, Any]]:
        try:
            return state.load(self.paths.state_file)
        except RuntimeError as error:
            raise OperationError("Failed", str(error)) from None

    def _store(self, fixes: list[dict[str, Any]]) -> None:
        try:
            state.store(self.paths.state_file, fixes)
        except OSError as error:
            raise OperationError("Failed", Reason("record-unsaved", detail=str(error))) from None

    def _write(self, fixes: list[dict[str, Any]], pending: dict[str, Any] | None) -> None:
        try:
            state.write(self.paths.state_file, state.Record(fixes, pending))
        except OSError as error:
            raise OperationError("Failed", Reason("record-unsaved", detail=str(error))) from None

    def _recover(self) -> list[dict[str, Any]]:
        """The fixes, after finishing what a crash interrupted: an apply is taken back (the
        firewall as before it), an undo is completed (as after it), and the permanent files
        are made to agree with the record.  Nothing to do (the usual case) costs one read."""
        try:
            record = state.read(self.paths.state_file)
        except RuntimeError as error:
            raise OperationError("Failed", str(error)) from None
        fixes, pending = record.fixes, record.pending
        if pending is not None:
            if pending.get("op") == "undo":
                gone = next((f for f in fixes if f.get("id") == pending.get("id")), None)
                if gone is not None:
                    self._take_back(gone)
                    fixes = [f for f in fixes if f is not gone]
            elif pending.get("op") == "apply":
                self._take_back_apply(fixes, pending)
            self._write(fixes, None)
        state.remove_temporaries(self.paths.state_dir)  # a write cut short before its rename
        paths = self.paths
        keep = any(_reapplied(f) for f in fixes)
        if keep != persist.present(paths.systemd_dropin_dir, paths.dispatcher_dir) or (
            keep and not persist.installed(paths.systemd_dropin_dir, paths.dispatcher_dir,
                                           paths.helper)
        ):  # fmt: skip
            self._sync_permanent_files(fixes)
        return fixes

    def _take_back_apply(self, fixes: list[dict[str, Any]], pending: dict[str, Any]) -> None:
        """Undo what an interrupted apply may have done: its rules (by text: their handles were
        never recorded), except those an earlier apply of the same fix recorded, and its
        settings, unless a recorded fix set them."""
        record = next((f for f in fixes if f.get("id") == pending.get("id")), None)
        fix_tag = tag(str(pending.get("id", "")))
        recorded_settings = {
            raw.get("name") for f in fixes for raw in f.get("changes", [])
            if raw.get("kind") == "sysctl"
        }  # fmt: skip
        try:
            for raw in reversed(pending.get("changes", [])):
                change = change_from_json(raw)
                if isinstance(change, RuleChange):
                    claimed = _recorded_rules(record, change)
                    self._remove_unclaimed(change, claimed, fix_tag)
                elif isinstance(change, edits.KINDS):
                    refreshed = edits.take_back(change, fix_tag, record)
                    if refreshed is not None and record is not None:
                        kept = [c for c in record["changes"] if not edits.same_target(c, change)]
                        record["changes"] = [*kept, refreshed.to_json()]
                elif change.name not in recorded_settings:
                    self._undo_sysctl(change)
        except (firewall.FirewallError, OSError, KeyError, TypeError, ValueError) as error:
            why = reason_fields(_one_line(error))
            raise OperationError("Failed", Reason("interrupted-fix", why=why)) from None

    def _remove_unclaimed(
        self, change: RuleChange, claimed: list[firewall.AddedRule], fix_tag: str
    ) -> None:
        for _ in range(firewall.ATTEMPTS):
            listing = firewall.list_chain(change)
            held = {i for i in firewall.locate(listing, claimed) if i is not None}
            texts = [firewall.AddedRule(spec, None, n) for n, spec in enumerate(change.rules, 1)]
            found = firewall.locate(listing, texts, taken=held)
            mine = [i for i in found if i is not None and rule_tag(listing.rules[i][0]) == fix_tag]
            try:
                firewall.commit_on(change, listing, firewall.delete_positions(change.chain, mine))
                return
            except firewall.Moved:
                continue
        raise firewall.FirewallError(Reason("firewall-busy"))

    def _find(self, fix_id: str) -> dict[str, Any] | None:
        return next((f for f in self._load() if f.get("id") == fix_id), None)

    @staticmethod
    def _pick(fixes: list[dict[str, Any]], fix_id: str) -> dict[str, Any]:
        if not fix_id:
            if not fixes:
                raise OperationError("NotFound", Reason("no-fix-applied"))
            return fixes[-1]
        for record in fixes:
            if record.get("id") == fix_id:
                return record
        raise OperationError("NotFound", Reason("fix-not-applied", fix=fix_id))

    def _check_keepable(self) -> None:
        """The drop-in and the dispatcher script make root run the helper at every Docker start
        and connection: refuse unless all it runs is root's alone (system/trust.py)."""
        try:
            trust.check_runs_as_root(
                self.paths.helper, "at every Docker start and connection, for a permanent fix"
            )
        except trust.Untrusted as error:
            problem = Reason(error.problem, path=error.path, detail=error.detail)
            raise OperationError(
                "NotApplicable", Reason("fix-not-keepable", why=reason_fields(problem))
            ) from None

    def _sync_permanent_files(self, fixes: list[dict[str, Any]]) -> list[str]:
        """Install the drop-in and dispatcher script while a permanent fix exists, else remove
        them; the files now in place."""
        paths = self.paths
        try:
            if any(_reapplied(f) for f in fixes):
                if not persist.installed(
                    paths.systemd_dropin_dir, paths.dispatcher_dir, paths.helper
                ):
                    self._check_keepable()
                persist.remove_temporaries(paths.systemd_dropin_dir, paths.dispatcher_dir)
                return persist.install(paths.systemd_dropin_dir, paths.dispatcher_dir, paths.helper)
            persist.remove(paths.systemd_dropin_dir, paths.dispatcher_dir)
        except (OSError, ValueError) as error:
            raise OperationError("Failed", Reason("files-unwritten", detail=str(error))) from None
        return []


def _apply_edit(
    change: edits.Edit, fix_tag: str, record: dict[str, Any] | None
) -> tuple[bool, Change]:
    try:
        return edits.apply(change, fix_tag, record)
    except edits.StaleEdit as error:
        raise OperationError("Stale", reason_of(error)) from None


def _require_shared(iface: str, doc: dict[str, Any]) -> None:
    """Refuse `iface` unless it is a shared connection now: a fix opens the firewall for the
    interface it names, and the helper is no tool to open it for any interface."""
    # imported here: the command line's parser (and its man page, generated at build time
    # without the runtime dependencies) needs this module, not D-Bus
    from hotspotguard.system.sharing import SharingUnknown, shared_now

    try:
        shared = shared_now(doc)
    except SharingUnknown as error:
        raise OperationError("Failed", reason_of(error)) from None
    if iface in shared.ifaces:
        return
    raise OperationError(
        "NotApplicable",
        Reason("not-shared", iface=iface, source=shared.source, shared=list(shared.ifaces)),
    )


def _reapplied(record: dict[str, Any]) -> bool:
    """Whether a fix is kept by re-applying it (the reapply drop-in and dispatcher script): a
    permanent one, but for one whose own drop-in keeps it (`docker-netns`: a reapply there
    would run in Docker's namespace, as every Exec line of its unit does)."""
    changes = record.get("changes", [])
    return bool(record.get("permanent")) and not any(c.get("kind") == "dropin" for c in changes)


def _apply_note(change: DropIn) -> str:
    if change.reload:
        return f"{change.unit} restarted with {change.path}"
    return f"takes effect when {change.unit} next starts (systemd does not run this system)"


def _undo_note(raw: dict[str, Any]) -> str:
    """What undoing a drop-in leaves to the unit's next start (for `docker-netns`: Docker
    back on the host's network, with its own rules)."""
    unit = str(raw.get("unit", "the unit"))
    return (
        f"{unit} keeps running as it was started, in its own namespace without the masquerade "
        f"(its containers offline), until it next starts (systemctl restart {unit}): Docker's "
        "own rules come back on the host at its next start"
    )


def _change_record(change: Change, added: list[firewall.AddedRule]) -> dict[str, Any]:
    """A change as the record keeps it: for rules, with the identity of each rule added."""
    doc = change.to_json()
    if isinstance(change, RuleChange):
        doc["added"] = [rule.to_json() for rule in added]
    return doc


def _added_of(raw: dict[str, Any], change: RuleChange) -> list[firewall.AddedRule]:
    """The rules a recorded change added (a record from before identities: its rules' text)."""
    if "added" in raw:
        return [firewall.AddedRule.from_json(doc) for doc in raw["added"]]
    return [firewall.AddedRule(spec, None, n) for n, spec in enumerate(change.rules, 1)]


def _recorded_rules(record: dict[str, Any] | None, change: RuleChange) -> list[firewall.AddedRule]:
    """The rules an earlier apply of this fix added to `change`'s chain."""
    for raw in (record or {}).get("changes", []):
        if raw.get("kind") != "rules":
            continue
        old = change_from_json(raw)
        if isinstance(old, RuleChange) and (old.variant, old.family, old.table, old.chain) == (
            change.variant,
            change.family,
            change.table,
            change.chain,
        ):
            return _added_of(raw, old)
    return []


def _look_alike_warnings(change: RuleChange, specs: list[str]) -> list[str]:
    if not specs:
        return []
    return [
        f"left {len(specs)} rule(s) in {change.table} {change.chain} that carry this fix's "
        f"tag but were not added by it: {specs[0]}"
    ]


def _as_found(change: Change, record: dict[str, Any] | None) -> Change:
    """`change` with what undo must put back as it is now (or as the fix's `record` has it
    from its first apply): read before the intent is written, so that a crash mid-apply
    takes everything back."""
    if isinstance(change, SysctlChange):
        return _recorded_sysctl(record, change.name) or replace(
            change,
            previous=firewall.read_sysctl(change.name),
            restore=tuple(firewall.linked_settings(change.name).items()),
        )
    if isinstance(change, ZoneChange):
        return firewalld_zone.with_backups(change, record)
    return change


def _recorded_sysctl(record: dict[str, Any] | None, name: str) -> SysctlChange | None:
    """The change an earlier apply of this fix recorded (its values from before the first)."""
    for raw in (record or {}).get("changes", []):
        if raw.get("kind") == "sysctl" and raw.get("name") == name:
            change = change_from_json(raw)
            return change if isinstance(change, SysctlChange) else None
    return None
