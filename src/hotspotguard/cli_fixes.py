"""`hotspotguard fix|undo|fixes`: as root the helper's operations run in-process (no bus
needed, so it works in a bare namespace); as a user they go through the helper over D-Bus,
and the desktop's polkit agent asks for the password."""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from typing import Any, Protocol

#: refusals (bad input, not applicable here, overtaken by a change) exit 2: nothing changed
REFUSED = ("InvalidArgument", "NotFound", "NotApplicable", "Stale")


class CommandError(Exception):
    """A refused or failed command: one line on stderr; `code` is the exit status."""

    def __init__(self, message: str, code: int = 1) -> None:
        super().__init__(message)
        self.code = code


class Fixer(Protocol):
    def preview(self, iface: str, strategy: str) -> dict[str, Any]: ...
    def apply(
        self, iface: str, strategy: str, permanent: bool, generation: str
    ) -> dict[str, Any]: ...
    def undo(self, fix_id: str) -> dict[str, Any]: ...
    def undo_all(self) -> list[dict[str, Any]]: ...
    def list_fixes(self) -> list[dict[str, Any]]: ...


class InProcess:
    """Root: the helper's own code, here."""

    def __init__(self) -> None:
        from hotspotguard.usecases.operations import Operations

        self.ops = Operations()

    def preview(self, iface: str, strategy: str) -> dict[str, Any]:
        return self.ops.preview(iface, strategy)

    def apply(self, iface: str, strategy: str, permanent: bool, generation: str) -> dict[str, Any]:
        return self.ops.apply(iface, strategy, permanent=permanent, uid=0, generation=generation)

    def undo(self, fix_id: str) -> dict[str, Any]:
        return self.ops.undo(fix_id, uid=0)

    def undo_all(self) -> list[dict[str, Any]]:
        return self.ops.undo_all(uid=0)

    def list_fixes(self) -> list[dict[str, Any]]:
        return self.ops.list_fixes()


PKTTYAGENT = "/usr/bin/pkttyagent"


@contextlib.contextmanager
def text_agent() -> Iterator[None]:
    """In a terminal, polkit's text agent for this process, unless the desktop already runs
    one (``--fallback``), so a password can be asked here; elsewhere nothing."""
    if not sys.stdin.isatty() or not os.access(PKTTYAGENT, os.X_OK):
        yield
        return
    ready_read, ready_write = os.pipe()
    try:
        agent = subprocess.Popen(
            [PKTTYAGENT, "--process", str(os.getpid()), "--fallback", "--notify-fd",
             str(ready_write)],
            pass_fds=(ready_write,),
        )  # fmt: skip
    except OSError:
        os.close(ready_read)
        os.close(ready_write)
        yield
        return
    os.close(ready_write)
    try:
        os.read(ready_read, 1)  # EOF once the agent is registered (or has given up)
        os.close(ready_read)
        yield
    finally:
        agent.terminate()
        with contextlib.suppress(subprocess.TimeoutExpired):
            agent.wait(2)


class ThroughHelper:
    """A user: the D-Bus helper (polkit decides; the desktop's agent, or polkit's text agent
    in a terminal, may ask a password)."""

    def _call(self, method: str, *args: Any) -> Any:
        from hotspotguard.system.helper_client import HelperRefused, HelperUnavailable, call_helper

        try:
            with text_agent():
                return call_helper(method, *args, interactive=True)
        except HelperUnavailable as error:
            raise CommandError(str(error), 2) from None
        except HelperRefused as error:
            code = (
                2 if error.kind in ("InvalidArgument", "NotFound", "NotApplicable", "Stale") else 1
            )
            raise CommandError(str(error), code) from None

    def preview(self, iface: str, strategy: str) -> dict[str, Any]:
        result: dict[str, Any] = self._call("PreviewFix", iface, strategy)
        return result

    def apply(self, iface: str, strategy: str, permanent: bool, generation: str) -> dict[str, Any]:
        result: dict[str, Any] = self._call("ApplyFix", iface, strategy, permanent, generation)
        return result

    def undo(self, fix_id: str) -> dict[str, Any]:
        result: dict[str, Any] = self._call("UndoFix", fix_id)
        return result

    def undo_all(self) -> list[dict[str, Any]]:
        result: list[dict[str, Any]] = self._call("UndoAllFixes")
        return result

    def list_fixes(self) -> list[dict[str, Any]]:
        result: list[dict[str, Any]] = self._call("ListFixes")
        return result


def fixer() -> Fixer:
    return InProcess() if os.geteuid() == 0 else ThroughHelper()


def add_commands(sub: Any) -> None:
    fix = sub.add_parser("fix", help="fix a blocked hotspot (shows the plan with --dry-run)")
    fix.add_argument("--iface", help="the hotspot interface (default: the only hotspot)")
    fix.add_argument("--strategy", default="", help="docker-user, sysctl-forwarding, …")
    fix.add_argument("--permanent", action="store_true", help="keep it after reboots")
    fix.add_argument("--dry-run", action="store_true", help="print the plan, change nothing")
    fix.add_argument("--json", action="store_true", help="print JSON")

    undo = sub.add_parser("undo", help="undo a fix (default: the most recent)")
    undo.add_argument("id", nargs="?", default="", help="a fix id, like docker-user@wlan0")
    undo.add_argument("--all", action="store_true", help="undo every fix")
    undo.add_argument("--json", action="store_true", help="print JSON")

    fixes = sub.add_parser("fixes", help="the fixes hotspotguard has applied")
    fixes.add_argument("--json", action="store_true", help="print JSON")


def _print_json(doc: Any) -> None:
    json.dump(doc, sys.stdout, indent=2)
    sys.stdout.write("\n")


def _hotspot_iface() -> str:
    """The only hotspot (NetworkManager's shared connections, else its firewall tables)."""
    from hotspotguard.watch import status_once

    state = status_once(None)
    names = [h["iface"] for h in state.hotspots]
    if not names:
        reason = f" ({state.reason})" if state.reason and state.state == "error" else ""
        raise CommandError(f"no hotspot is active{reason}; name one with --iface", 2)
    blocked = [h["iface"] for h in state.hotspots if h.get("state") == "blocked"]
    if len(names) == 1 or len(blocked) == 1:
        return str(blocked[0] if blocked else names[0])
    raise CommandError(f"several hotspots ({', '.join(names)}): choose one with --iface", 2)


def _plan_lines(preview: dict[str, Any]) -> list[str]:
    plan = preview["plan"]
    lines = [f"Fix {plan['id']}: {plan['summary']}"]
    lines += [f"  {line}" for line in plan["preview"]]
    lines.append(f"Trade-off: {plan['tradeoff']}")
    lines.append(f"Before: {preview['before']['summary']}")
    lines.append(f"After:  {preview['after']['summary']}")
    return lines + _candidate_lines(preview.get("candidates") or [])


def _candidate_lines(listed: list[dict[str, Any]]) -> list[str]:
    """Every candidate, least privileged first: why not, or what it costs and lasts, and the
    engine's verdict per flow before -> after."""
    if not listed:
        return []
    lines = ["", "Candidates (least privileged first):"]
    for item in listed:
        if not item["works"]:
            lines.append(f"  - {item['strategy']}: not here: {item['reason']}")
            continue
        mark = " (recommended)" if item["recommended"] else ""
        lines.append(f"  * {item['strategy']}{mark}: {item['summary']}")
        lines.append(f"      Trade-off: {item['tradeoff']}")
        lines.append(f"      Lasts: {item['permanence']}")
        flows = item.get("flows") or {}
        lines.append(
            "      Flows: "
            + ", ".join(f"{name} {v['before']} -> {v['after']}" for name, v in flows.items())
        )
    return lines


def _run(action: Any) -> Any:
    from hotspotguard.usecases.operations import OperationError  # the engine's: when used

    try:
        return action()
    except OperationError as error:
        code = 2 if error.kind in REFUSED else 1
        raise CommandError(str(error), code) from None


def cmd_fix(args: argparse.Namespace) -> int:
    backend = fixer()
    iface = args.iface or _hotspot_iface()
    if args.dry_run:
        preview = _run(lambda: backend.preview(iface, args.strategy))
        if args.json:
            _print_json(preview)
        else:
            print("\n".join(_plan_lines(preview)))
            if preview.get("applied"):
                print("(already applied: applying it again changes nothing)")
        return 0
    # planned and verified as it is applied: nobody saw a plan, so no generation holds it
    done = _run(lambda: backend.apply(iface, args.strategy, args.permanent, ""))
    if args.json:
        _print_json(done)
        return 0
    if done["changed"]:
        print(f"Applied {done['id']}: {done['summary']}")
    else:
        print(f"{done['id']} is already in place: nothing changed")
    print(f"Now: {done['after']['summary']}")
    for note in done.get("notes", []):  # what waits for a daemon's next start
        print(f"Note: {note}")
    for warning in done.get("warnings", []):  # look-alikes of our rules, left alone
        print(f"warning: {warning}", file=sys.stderr)
    if done.get("permanent"):
        print("Kept after reboot and Docker restarts (" + ", ".join(done["files"]) + ")")
    return 0


def cmd_undo(args: argparse.Namespace) -> int:
    backend = fixer()
    if args.all and args.id:
        raise CommandError("give a fix id or --all, not both", 2)
    undone = _run(backend.undo_all) if args.all else [_run(lambda: backend.undo(args.id))]
    if args.json:
        _print_json(undone)
        return 0
    if not undone:
        print("no fix was applied: nothing to undo")
    for record in undone:
        rules = record.get("removed_rules", 0)
        print(f"Undid {record['id']}: removed {rules} rule{'s' if rules != 1 else ''}")
        for note in record.get("notes", []):
            print(f"Note: {note}")
        for warning in record.get("warnings", []):
            print(f"warning: {warning}", file=sys.stderr)
    return 0


def cmd_fixes(args: argparse.Namespace) -> int:
    fixes = _run(fixer().list_fixes)
    if args.json:
        _print_json(fixes)
        return 0
    if not fixes:
        print("no fixes applied")
    for record in fixes:
        when = time.strftime("%Y-%m-%d %H:%M", time.localtime(record.get("applied_at", 0)))
        flags = ["permanent" if record.get("permanent") else "until reboot"]
        if not record.get("in_place", True):
            flags.append("NOT IN PLACE (re-run `hotspotguard fix`)")
        print(f"{record['id']}  applied {when}  {', '.join(flags)}")
        print(f"  {record.get('summary', '')}")
        for change in record.get("changes", []):
            if change.get("kind") == "rules":
                for rule in change["rules"]:
                    print(f"  + {change['table']} {change['chain']} {rule}")
            elif change.get("kind") == "sysctl":
                print(f"  = {change['name']}={change['value']} (was {change.get('previous')})")
            else:
                from hotspotguard.fixes.plan import change_from_json

                for line in change_from_json(change).preview():
                    print(f"  + {line}")
    return 0


COMMANDS = {"fix": cmd_fix, "undo": cmd_undo, "fixes": cmd_fixes}
