"""Install (or remove) the system integration: the helper's D-Bus system service file, its bus
policy and the polkit actions (from the templates in ``resources/system``), and the desktop's
application entry and icons (``desktop/``, ``resources/icons``).

``@HELPER@`` in the service file becomes the absolute path of the installed
``hotspotguard-helper``.  D-Bus starts that file as root, so it is refused unless it, every
directory on its path, and the Python interpreter its ``#!`` line names are owned by root and
writable by nobody else.  ``root`` is for tests (a temporary tree); it defaults to ``/``.
"""

from __future__ import annotations

import os
import stat
import sys
from dataclasses import dataclass
from pathlib import Path

from hotspotguard.system import trust

SERVICE = "io.github.hotspotguard.Helper1.service"
BUS_POLICY = "io.github.hotspotguard.Helper1.conf"
ACTIONS = "io.github.hotspotguard.policy"
TARGETS: dict[str, str] = {
    SERVICE: "usr/share/dbus-1/system-services",
    BUS_POLICY: "usr/share/dbus-1/system.d",
    ACTIONS: "usr/share/polkit-1/actions",
}
PLACEHOLDER = "@HELPER@"
STATES = ("idle", "ok", "blocked", "unknown", "error")
#: the desktop's files: source (in the source tree) -> target directory
DESKTOP_FILES: dict[str, str] = {
    "desktop/io.github.hotspotguard.desktop": "usr/share/applications",
    "resources/icons/io.github.hotspotguard.svg": "usr/share/icons/hicolor/scalable/apps",
    **{
        f"resources/icons/hotspotguard-{state}.svg": "usr/share/icons/hicolor/scalable/status"
        for state in STATES
    },
}
APP_ENTRY = "io.github.hotspotguard.desktop"


class InstallError(Exception):
    """Installing cannot be done safely; the message is one line for a person."""


@dataclass(frozen=True)
class InstallStep:
    """One file written or removed."""

    path: Path
    content: str | None  # None: removed

    def describe(self) -> str:
        return f"{'write' if self.content is not None else 'remove'} {self.path}"


def resources_dir() -> Path:
    """The templates: ``resources/system`` of the source tree this package runs from."""
    here = Path(__file__).resolve()
    for parent in here.parents:
        candidate = parent / "resources" / "system"
        if (candidate / SERVICE).is_file():
            return candidate
    raise InstallError("cannot find resources/system (install hotspotguard from its source tree)")


def default_helper() -> Path:
    """The `hotspotguard-helper` beside the running Python (the venv's or the system's bin)."""
    argv0 = Path(sys.argv[0]) if sys.argv and sys.argv[0] else None
    if argv0 is not None and argv0.name == "hotspotguard-helper" and argv0.is_absolute():
        return argv0
    return Path(sys.executable).parent / "hotspotguard-helper"


def check_trusted(path: Path) -> None:
    """Refuse unless `path` and every directory above it are root-owned and writable only by
    root (no group/world write bit, sticky or not)."""
    if not path.is_absolute():
        raise InstallError(f"{path} is not an absolute path")
    current = Path("/")
    for part in path.parts[1:]:
        current = current / part
        _check_one(current)
    _check_one(Path("/"))


def _check_one(path: Path) -> None:
    try:
        info = os.lstat(path)
    except OSError as error:
        raise InstallError(f"{path}: {error.strerror}") from None
    if stat.S_ISLNK(info.st_mode):
        target = Path(os.path.realpath(path))
        check_trusted(target)
        return
    if info.st_uid != 0:
        raise InstallError(f"{path} is not owned by root: D-Bus would run it as root")
    if info.st_mode & (stat.S_IWGRP | stat.S_IWOTH):
        raise InstallError(f"{path} is writable by others than root: D-Bus would run it as root")


def check_helper(helper: Path) -> None:
    """The helper's path and its interpreter must be trusted (see :func:`check_trusted`)."""
    if any(c.isspace() for c in str(helper)) or PLACEHOLDER in str(helper):
        raise InstallError(f"{helper}: a path with spaces cannot go into a D-Bus service file")
    if not helper.is_file() or not os.access(helper, os.X_OK):
        raise InstallError(f"{helper} is not an executable file")
    check_trusted(helper)
    with open(helper, "rb") as handle:
        first = handle.readline(4096)
    if first.startswith(b"#!"):
        interpreter = first[2:].strip().split()[0].decode("utf-8", "replace")
        check_trusted(Path(interpreter))
        if os.path.realpath(interpreter) != interpreter:
            check_trusted(Path(os.path.realpath(interpreter)))
    try:  # and all that Python then imports (system/trust.py)
        trust.check_runs_as_root(helper, "D-Bus starts it for the helper")
    except trust.Untrusted as error:
        raise InstallError(str(error)) from None


def plan_install(
    root: Path = Path("/"), helper: Path | None = None, resources: Path | None = None
) -> list[InstallStep]:
    """The files install would write (nothing is written)."""
    helper = helper or default_helper()
    check_helper(helper)
    source = resources or resources_dir()
    steps = []
    for name, directory in TARGETS.items():
        try:  # its text becomes the bus's and polkit's configuration
            trust.check_path(source / name, "install-system copies it into the system")
        except trust.Untrusted as error:
            raise InstallError(str(error)) from None
        text = (source / name).read_text(encoding="utf-8")
        if name == SERVICE:
            if PLACEHOLDER not in text:
                raise InstallError(f"{source / name} has no {PLACEHOLDER}")
            text = text.replace(PLACEHOLDER, str(helper))
        steps.append(InstallStep(root / directory / name, text))
    tree = source.parents[1]
    tray = helper.parent / "hotspotguard-tray"
    for relative, directory in DESKTOP_FILES.items():
        text = (tree / relative).read_text(encoding="utf-8")
        if relative.endswith(APP_ENTRY):  # the menu must find the tray beside the helper
            text = text.replace("Exec=hotspotguard-tray", f"Exec={tray}")
            text = text.replace("TryExec=hotspotguard-tray", f"TryExec={tray}")
        steps.append(InstallStep(root / directory / Path(relative).name, text))
    return steps


def installed_paths(root: Path = Path("/")) -> list[Path]:
    """Every file install writes, under `root`."""
    system = [root / directory / name for name, directory in TARGETS.items()]
    desktop = [root / d / Path(relative).name for relative, d in DESKTOP_FILES.items()]
    return system + desktop


def plan_uninstall(root: Path = Path("/")) -> list[InstallStep]:
    """The files uninstall would remove (those of ours that exist)."""
    paths = installed_paths(root)
    return [InstallStep(path, None) for path in paths if path.exists() or path.is_symlink()]


def execute(steps: list[InstallStep]) -> None:
    """Write (atomically, 0644, root's) or remove each file."""
    for step in steps:
        if step.content is None:
            step.path.unlink(missing_ok=True)
            continue
        step.path.parent.mkdir(mode=0o755, parents=True, exist_ok=True)
        temporary = step.path.with_name(f".{step.path.name}.tmp{os.getpid()}")
        try:
            fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o644)
            with os.fdopen(fd, "w", encoding="utf-8") as handle:
                handle.write(step.content)
                handle.flush()
                os.fsync(handle.fileno())
            os.chmod(temporary, 0o644)
            os.replace(temporary, step.path)
        except BaseException:
            temporary.unlink(missing_ok=True)
            raise


def install_system(
    root: Path = Path("/"),
    helper: Path | None = None,
    *,
    dry_run: bool = False,
    resources: Path | None = None,
) -> list[InstallStep]:
    """Write our files under `root` (unless `dry_run`); the steps."""
    steps = plan_install(root, helper, resources)
    if not dry_run:
        execute(steps)
    return steps


def uninstall_system(root: Path = Path("/"), *, dry_run: bool = False) -> list[InstallStep]:
    """Remove exactly our files from `root` (unless `dry_run`); the steps."""
    steps = plan_uninstall(root)
    if not dry_run:
        execute(steps)
    return steps
