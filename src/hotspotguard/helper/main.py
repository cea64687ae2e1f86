"""``hotspotguard-helper``: the privileged helper's command line (root only).

``hotspotguard-helper``                 serve on the system bus (D-Bus activation runs this)
``hotspotguard-helper reapply [IFACE]`` re-apply the saved permanent fixes (the Docker drop-in's
                                        ExecStartPost and NetworkManager's dispatcher run this)
``hotspotguard-helper install-system [--dry-run]`` / ``uninstall-system [--dry-run]``
``hotspotguard-helper self-check``      load everything serving needs (an installation's test)
``hotspotguard-helper --version``
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from hotspotguard import __version__


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> None:  # type: ignore[override]
        print(f"hotspotguard-helper: {message}", file=sys.stderr)
        sys.exit(2)


def _parser() -> argparse.ArgumentParser:
    description = __doc__.splitlines()[0].replace("``", "")  # no reST markup at the user
    parser = _Parser(prog="hotspotguard-helper", description=description)
    parser.add_argument("--version", action="version", version=f"hotspotguard {__version__}")
    commands = parser.add_subparsers(dest="command")
    reapply = commands.add_parser("reapply", help="re-apply the saved permanent fixes")
    reapply.add_argument("iface", nargs="?", help="only the fixes of this hotspot interface")
    commands.add_parser("self-check", help="load everything serving needs, then exit 0")
    for name, text in (
        ("install-system", "install the D-Bus service and policies, the menu entry, the icons"),
        ("uninstall-system", "remove the files install-system wrote"),
    ):
        sub = commands.add_parser(name, help=text)
        sub.add_argument("--dry-run", action="store_true", help="only say what would be done")
        sub.add_argument("--root", default="/", help=argparse.SUPPRESS)  # tests only
    return parser


def _fail(message: str, status: int = 1) -> int:
    print(f"hotspotguard-helper: {message}", file=sys.stderr)
    return status


def _reapply(iface: str | None) -> int:
    from hotspotguard.usecases.arguments import OperationError, validate_iface
    from hotspotguard.usecases.operations import Operations

    try:
        if iface is not None:
            iface = validate_iface(iface, must_exist=False)
        fixes = Operations().reapply(iface)
    except OperationError as error:
        return _fail(str(error).splitlines()[0] if str(error) else error.kind)
    for fix in fixes:
        what = fix.get("id", "?")
        state = fix.get("state") or fix.get("result") or "reapplied"
        print(f"{what}: {state}")
    return 0


def _self_check() -> int:
    """Import what serving and fixing need, open libnftables, and check that the file D-Bus
    would run (this one, when started by its path) is root's alone."""
    try:
        import nftables
        import pyroute2  # noqa: F401

        from hotspotguard.helper import service  # noqa: F401
        from hotspotguard.usecases import operations  # noqa: F401

        nftables.Nftables()
        if sys.argv and os.path.isabs(sys.argv[0]):
            from hotspotguard.system import trust

            trust.check_runs_as_root(sys.argv[0], "D-Bus starts it for the helper")
    except Exception as error:  # each failure is one line for a person
        return _fail(f"self-check failed: {type(error).__name__}: {error}")
    print(f"hotspotguard-helper {__version__}: ok")
    return 0


def _install(command: str, root: str, dry_run: bool) -> int:
    from hotspotguard.helper.install import InstallError, install_system, uninstall_system

    try:
        if command == "install-system":
            steps = install_system(Path(root), dry_run=dry_run)
        else:
            steps = uninstall_system(Path(root), dry_run=dry_run)
    except (InstallError, OSError) as error:
        return _fail(str(error))
    for step in steps:
        print(("would " if dry_run else "") + step.describe())
    if not steps:
        print("nothing to remove")
    return 0


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    if os.geteuid() != 0 and not (args.command and getattr(args, "dry_run", False)):
        return _fail("must run as root (D-Bus starts the helper; use sudo for the others)")
    if args.command is None:
        from hotspotguard.helper.service import serve

        return serve()
    from hotspotguard.helper.service import clean_environment

    root = os.path.abspath(getattr(args, "root", "/"))
    clean_environment()
    if args.command == "reapply":
        return _reapply(args.iface)
    if args.command == "self-check":
        return _self_check()
    return _install(args.command, root, args.dry_run)


if __name__ == "__main__":
    sys.exit(main())
