"""The command line: `hotspotguard status|explain|snapshot|fix|undo|fixes|tray|doctor`.

Exit codes: 0 all hotspots ok (or none), 1 a hotspot is blocked or its state unknown,
2 bad input, usage, or nothing to ask (no helper, no NetworkManager). Errors are one line on
stderr, never a traceback.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from typing import TYPE_CHECKING, Any

from hotspotguard import __version__, cli_fixes

# The engine is imported by the commands that use it, not here: `explain` lists the firewall's
# biggest table before it loads the parser and the engine (see _report).
if TYPE_CHECKING:
    from hotspotguard.assessment import Remedies
    from hotspotguard.fixes.plan import HostFacts
    from hotspotguard.ruleset import Ruleset, Snapshot
    from hotspotguard.verdict import Report

EXIT_OK, EXIT_FOUND, EXIT_USAGE = 0, 1, 2
#: the man page's closing sections (hotspotguard.clidocs); the rest comes from the parser
MAN_EPILOG = """
Exit status: 0 every hotspot is ok (or there is none), 1 a hotspot is blocked or its state is
unknown (doctor: a problem was found; a fix failed or was not allowed), 2 bad input or usage,
or nothing to ask (no system bus, no helper, NetworkManager not running).  Errors are one line
on stderr.

Files: /usr/share/hotspotguard/examples holds snapshots to try explain --snapshot on.
The privileged helper is hotspotguard-helper in libexec/hotspotguard, started by D-Bus.

See also: hotspotguard-tray, the tray applet; hotspotguard doctor, when something is off.
"""


class UsageError(Exception):
    """Bad input: reported as one line, exit 2."""


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="hotspotguard",
        description="Find and fix the firewall rule that breaks a NetworkManager hotspot.",
    )
    parser.add_argument("--version", action="version", version=f"hotspotguard {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")

    status = sub.add_parser("status", help="the verdict for every shared connection, in short")
    status.add_argument("--iface", action="append", help="a hotspot interface (repeatable)")
    status.add_argument("--json", action="store_true", help="print JSON")
    status.add_argument(
        "--watch",
        action="store_true",
        help="keep watching: print a line (JSON lines with --json) on every change of state",
    )

    explain = sub.add_parser("explain", help="why a hotspot's clients get through or not")
    explain.add_argument("source", nargs="?", choices=["live"], help="read the live machine")
    explain.add_argument("--snapshot", metavar="FILE", help="a snapshot file ('-': stdin)")
    explain.add_argument("--iface", action="append", help="a hotspot interface (repeatable)")
    explain.add_argument("--json", action="store_true", help="print JSON")

    snapshot = sub.add_parser("snapshot", help="capture the live firewall into a JSON document")
    snapshot.add_argument("-o", "--output", metavar="FILE", help="write to FILE (default stdout)")
    snapshot.add_argument("--iface", action="append", help="a hotspot interface (repeatable)")
    cli_fixes.add_commands(sub)

    tray = sub.add_parser("tray", help="the tray applet (hotspotguard-tray)")
    tray.add_argument("--show", action="store_true", help="open the status window at start")

    doctor = sub.add_parser("doctor", help="check the installation and the desktop; how to fix")
    doctor.add_argument("--json", action="store_true", help="print JSON")
    for option in ("--service-dir", "--policy-dir", "--actions-dir"):  # tests: a lab's files
        doctor.add_argument(option, action="append", default=[], help=argparse.SUPPRESS)
    return parser


def _live_snapshot(ifaces: list[str] | None) -> Snapshot:
    from hotspotguard.ruleset import load_snapshot
    from hotspotguard.system.capture import CaptureError, live_capture

    try:
        return load_snapshot(live_capture()(ifaces))
    except CaptureError as error:
        raise UsageError(str(error)) from None


def _only(snapshot: Snapshot, ifaces: list[str] | None) -> Snapshot:
    if not ifaces:
        return snapshot
    from dataclasses import replace

    known = {h.iface for h in snapshot.hotspots}
    for iface in ifaces:
        if iface not in known:
            raise UsageError(f"no hotspot named {iface} in the snapshot")
    return replace(snapshot, hotspots=tuple(h for h in snapshot.hotspots if h.iface in ifaces))


def _report(args: argparse.Namespace) -> tuple[Report, Remedies]:
    """The verdicts, and the remedies the fixes' planner finds for each blocked hotspot (on
    this machine's facts; a snapshot explained elsewhere has none)."""
    if os.geteuid() == 0 and not getattr(args, "snapshot", None):
        prelisted = _prelist(args.iface)  # before the parser and the engine are imported
    from hotspotguard.fixes.plan import HostFacts
    from hotspotguard.ruleset import parse_ruleset, read_snapshot_file
    from hotspotguard.verdict import evaluate

    if getattr(args, "snapshot", None):
        from dataclasses import replace

        snapshot = _only(read_snapshot_file(args.snapshot), args.iface)
        ruleset = parse_ruleset(snapshot)
        snapshot = replace(snapshot, nft={})  # the file's text: not needed once parsed
        return _with_remedies(
            snapshot, ruleset, evaluate(snapshot, ruleset), HostFacts(checked=False)
        )
    if os.geteuid() == 0:  # the model table by table, no document: half the memory
        from hotspotguard.system.capture import CaptureError
        from hotspotguard.system.incremental import capture_model

        try:
            snapshot, ruleset = capture_model(args.iface, prelisted)
        except CaptureError as error:
            raise UsageError(str(error)) from None
        return _with_remedies(snapshot, ruleset, evaluate(snapshot, ruleset), None)
    snapshot = _live_snapshot(args.iface)
    ruleset = parse_ruleset(snapshot)
    return _with_remedies(snapshot, ruleset, evaluate(snapshot, ruleset), None)


def _prelist(ifaces: list[str] | None) -> Any:
    """The firewall's biggest table, listed while this process holds little (its peak is
    libnftables': nftables.prelist); None when an interface named is not there (that error
    comes at once, not after the listing)."""
    import socket

    try:
        for iface in ifaces or ():
            socket.if_nametoindex(iface)
    except (OSError, ValueError):
        return None
    from hotspotguard.system import nftables

    return nftables.prelist()


def _with_remedies(
    snapshot: Snapshot, ruleset: Ruleset, report: Report, facts: HostFacts | None
) -> tuple[Report, Remedies]:
    if not any(v.blocked_by for v in report.hotspots):
        return report, {}
    if facts is None:
        from hotspotguard.system import docker
        from hotspotguard.usecases.operations import Paths

        blocked = tuple(v.hotspot.iface for v in report.hotspots if v.blocked_by)
        facts = docker.facts(ruleset, Paths().systemd_dropin_dir, blocked)  # as fix gathers
    from hotspotguard.assessment import report_remedies

    return report, report_remedies(snapshot, ruleset, report, facts)


def _exit_code(report: Report) -> int:
    return EXIT_FOUND if any(h.verdict != "ok" for h in report.hotspots) else EXIT_OK


def _print_json(doc: Any) -> None:
    json.dump(doc, sys.stdout, indent=2)
    sys.stdout.write("\n")


def cmd_explain(args: argparse.Namespace) -> int:
    if args.snapshot and args.source == "live":
        raise UsageError("give either --snapshot FILE or live, not both")
    report, offered = _report(args)
    from hotspotguard.assessment import explain_text, report_json

    if args.json:
        _print_json(report_json(report, offered))
    else:
        print(explain_text(report, offered))
    return _exit_code(report)


def cmd_status(args: argparse.Namespace) -> int:
    if args.watch:
        return _watch_status(args)
    from hotspotguard.watch import status_once

    state = status_once(args.iface)
    if state.state == "error":
        for hotspot in state.hotspots:  # what NetworkManager (readable by users) says
            connection = hotspot.get("connection") or {}
            print(
                f"{hotspot['iface']}: shared by NetworkManager's connection "
                f'"{connection.get("id", "?")}"; its firewall state is unknown'
            )
        raise UsageError(state.reason or "cannot tell the state")
    if args.iface and state.state == "no-hotspot":  # a name that is not there is a mistake
        raise UsageError(state.reason or f"no hotspot named {', '.join(args.iface)}")
    from hotspotguard.assessment import remedy_lines

    if args.json:
        _print_json(state.to_json())
    elif not state.hotspots:
        print("no hotspot: no connection is being shared")
    else:
        for hotspot in state.hotspots:
            print(hotspot["summary"])
            connection = hotspot.get("connection")
            if connection:
                print(
                    f'  shared by NetworkManager\'s connection "{connection["id"]}" '
                    f"({connection['type']})"
                )
            services = hotspot.get("ipv6_services") or {}
            if services.get("text"):
                print(f"  {services['text']}")
            for line in remedy_lines(hotspot.get("remedies") or [], brief=True):
                print(f"  {line}")
    return EXIT_FOUND if state.state in {"blocked", "unknown"} else EXIT_OK


def _watch_status(args: argparse.Namespace) -> int:
    prelisted = feed = None
    if os.geteuid() != 0:  # a user watches through the helper: say at once if there is none
        from hotspotguard.system.helper_client import HelperRefused, HelperUnavailable, call_helper

        try:
            call_helper("ListFixes", interactive=True)
        except (HelperUnavailable, HelperRefused) as error:
            raise UsageError(f"cannot watch the firewall: {error}") from None
    else:  # root reads the firewall itself: its first reading, before asyncio and the engine
        from hotspotguard.system import nftables, nftmonitor

        feed = nftmonitor.early_feed()
        prelisted = nftables.prelist()
    from hotspotguard.watch import watch_lines

    return watch_lines(args.iface, args.json, prelisted=prelisted, feed=feed)


def cmd_snapshot(args: argparse.Namespace) -> int:
    from hotspotguard.system.capture import CaptureError, live_capture

    try:
        doc = live_capture()(args.iface)
    except CaptureError as error:
        raise UsageError(str(error)) from None
    text = json.dumps(doc)
    if args.output and args.output != "-":
        tmp = f"{args.output}.tmp{os.getpid()}"
        try:
            with open(tmp, "w") as handle:
                handle.write(text + "\n")
            os.replace(tmp, args.output)
        except OSError as error:
            raise UsageError(f"cannot write {args.output}: {error.strerror}") from None
    else:
        sys.stdout.write(text + "\n")
    return EXIT_OK


def cmd_tray(args: argparse.Namespace) -> int:
    from hotspotguard.ui.launch import main as tray_main

    return tray_main(["--show"] if args.show else [])


def cmd_doctor(args: argparse.Namespace) -> int:
    from pathlib import Path

    from hotspotguard import doctor

    places = doctor.Places()
    places.service_dirs[:0] = [Path(p) for p in args.service_dir]
    places.policy_dirs[:0] = [Path(p) for p in args.policy_dir]
    places.actions_dirs[:0] = [Path(p) for p in args.actions_dir]
    return doctor.main(args.json, places)


COMMANDS = {
    "tray": cmd_tray,
    "doctor": cmd_doctor,
    "explain": cmd_explain,
    "status": cmd_status,
    "snapshot": cmd_snapshot,
    **cli_fixes.COMMANDS,
}


def main(argv: list[str] | None = None) -> int:
    parser = _parser()
    args = parser.parse_args(argv)
    if args.command is None:
        parser.print_help()
        return EXIT_USAGE
    try:
        return COMMANDS[args.command](args)
    except UsageError as error:
        print(f"hotspotguard: {error}", file=sys.stderr)
        return EXIT_USAGE
    except cli_fixes.CommandError as error:
        print(f"hotspotguard: {error}", file=sys.stderr)
        return error.code
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:
        return EXIT_OK
    except Exception as error:  # never a traceback at the user
        from hotspotguard.ruleset import SnapshotError

        if isinstance(error, SnapshotError):
            print(f"hotspotguard: {error}", file=sys.stderr)
            return EXIT_USAGE
        if os.environ.get("HOTSPOTGUARD_DEBUG"):
            raise
        print(
            f"hotspotguard: internal error: {type(error).__name__}: {error} "
            "(set HOTSPOTGUARD_DEBUG=1 for details)",
            file=sys.stderr,
        )
        return EXIT_USAGE
