"""Apply and undo a `ZoneChange` through firewalld's D-Bus API.

The runtime move comes first, and firewalld's resulting ruleset is judged by the engine before
the permanent one is made: if firewalld still drops any of the hotspot's flows (a zone whose
settings the plan's model did not foresee: a rich rule, a policy), the interface goes back to
the zone it was in and nothing is kept.  Undo puts it back, runtime and permanent, into the
zones it was in before the first apply, and a zone whose settings were firewalld's built-in
ones gets them back (no copy left in /etc/firewalld)."""

from __future__ import annotations

import contextlib
from dataclasses import replace
from typing import Any

from hotspotguard.fixes.plan import ZoneChange, change_from_json
from hotspotguard.system import firewalld
from hotspotguard.system.firewall import FirewallError
from hotspotguard.wording import reason_of


class ZoneRefused(Exception):
    """The change cannot be made as planned (a zone it needs is gone; firewalld's real ruleset
    for the zone still blocks the hotspot); nothing was changed (one line)."""


def _require(runtime: tuple[str, ...], permanent: tuple[str, ...], what: str) -> None:
    missing = firewalld.missing_zones(runtime, permanent)
    if missing:
        raise ZoneRefused(f"firewalld has no zone {', '.join(dict.fromkeys(missing))}: {what}")


def _recorded(record: dict[str, Any] | None, change: ZoneChange) -> ZoneChange | None:
    for raw in (record or {}).get("changes", []):
        if raw.get("kind") == "zone":
            old = change_from_json(raw)
            if isinstance(old, ZoneChange) and (old.iface, old.zone) == (change.iface, change.zone):
                return old
    return None


def firewalld_drops(iface: str) -> str | None:
    """What firewalld's live ruleset still drops of hotspot `iface`'s flows (None: nothing)."""
    from hotspotguard.ruleset import load_snapshot, parse_ruleset
    from hotspotguard.system.capture import capture_snapshot
    from hotspotguard.verdict import evaluate

    snapshot = load_snapshot(capture_snapshot([iface]))
    verdict = evaluate(snapshot, parse_ruleset(snapshot)).hotspots[0]
    for name, flow in verdict.flows.items():
        if flow.verdict == "drop" and flow.dropped_by and flow.dropped_by.owner == "firewalld":
            return f"{name} ({flow.dropped_by.chain})"
    return None


def with_backups(change: ZoneChange, record: dict[str, Any] | None) -> ZoneChange:
    """`change` with firewalld's backups (`ZONE.xml.old`) of the zones it rewrites as they are
    before it — the first apply's, from the fix's `record`.  Read before the intent is written,
    so that a crash mid-apply puts them back too."""
    try:
        return _with_backups(change, record, firewalld.zone_of(change.iface)[1])
    except (firewalld.FirewalldError, OSError) as error:
        raise FirewallError(_one_line(error)) from None


def _with_backups(change: ZoneChange, record: dict[str, Any] | None, permanent: str) -> ZoneChange:
    recorded = _recorded(record, change)
    if recorded is not None:
        return recorded
    if change.backups:
        return change
    zones = dict.fromkeys(z for z in (change.zone, permanent) if z)
    return replace(change, backups=tuple((zone, firewalld.read_backup(zone)) for zone in zones))


def apply(change: ZoneChange, record: dict[str, Any] | None) -> tuple[bool, ZoneChange]:
    """Move the interface; whether anything changed, and the change with the zones from before
    the first apply of this fix (what undo restores)."""
    try:
        runtime, permanent = firewalld.zone_of(change.iface)
        _require((change.zone,), (change.zone,), f"{change.iface} cannot be put there")
        kept = _with_backups(change, record, permanent)
        changed = False
        if runtime != change.zone:
            firewalld.set_runtime_zone(change.iface, change.zone)
            changed = True
            try:
                dropped = firewalld_drops(change.iface)
            except Exception as error:  # the capture failed: not kept either
                dropped = f"the firewall could not be read again ({error})"
            if dropped is not None:
                with contextlib.suppress(firewalld.FirewalldError):
                    firewalld.set_runtime_zone(change.iface, runtime)
                raise ZoneRefused(
                    f"in firewalld's zone {change.zone}, {change.iface} is still blocked: "
                    f"{dropped}; put back into {runtime or 'no zone'}"
                )
        if permanent != change.zone:
            try:
                firewalld.set_permanent_zone(change.iface, change.zone)
            except firewalld.FirewalldError:
                if changed:
                    with contextlib.suppress(firewalld.FirewalldError):
                        firewalld.set_runtime_zone(change.iface, runtime)
                raise
            changed = True
    except (firewalld.FirewalldError, OSError) as error:
        raise FirewallError(_one_line(error)) from None
    return changed, kept


def _one_line(error: BaseException) -> str:
    """The error's first line, kept structured where it is a `wording.Reason`."""
    return reason_of(error) or type(error).__name__


def undo(change: ZoneChange) -> int:
    """Back into the zones it was in (each only while it is still in ours); how many of the
    two bindings changed."""
    try:
        runtime, permanent = firewalld.zone_of(change.iface)
        _require(
            (change.previous_runtime,) if runtime == change.zone else (),
            (change.previous_permanent,) if permanent == change.zone else (),
            f"{change.iface} stays in {change.zone} (put it where you want it with firewall-cmd)",
        )
        count = 0
        if runtime == change.zone and change.previous_runtime != change.zone:
            firewalld.set_runtime_zone(change.iface, change.previous_runtime)
            count += 1
        if permanent == change.zone and change.previous_permanent != change.zone:
            restore = (change.zone,) if change.zone_was_default else ()
            firewalld.set_permanent_zone(
                change.iface, change.previous_permanent, restore_default=restore
            )
            count += 1
        for zone, text in change.backups:
            firewalld.restore_backup(zone, text)
    except (firewalld.FirewalldError, OSError) as error:
        raise FirewallError(_one_line(error)) from None
    return count


def in_place(change: ZoneChange) -> bool:
    try:
        return firewalld.zone_of(change.iface) == (change.zone, change.zone)
    except firewalld.FirewalldError:
        return False
