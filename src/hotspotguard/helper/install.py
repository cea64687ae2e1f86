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
import shutil
import stat
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from hotspotguard.system import trust

SERVICE = "io.github.hotspotguard.Helper1.service"
BUS_POLICY = "io.github.hotspotguard.Helper1.conf"
ACTIONS = "io.github.hotspotguard.policy"
PLACEHOLDER = "@HELPER@"
STATES = ("idle", "ok", "blocked", "unknown", "error")
APP_ID = "io.github.hotspotguard"
APP_ENTRY = f"{APP_ID}.desktop"
AUTOSTART_SOURCE = f"{APP_ID}-autostart.desktop"
HELPER_NAME = "hotspotguard-helper"
#: the parts of the list: what ``install-system`` (a root-owned checkout) writes, and what
#: ``make install`` adds (the program, its data, autostart, shell completions and man page)
CHECKOUT_PARTS = frozenset({"bus", "desktop"})
ALL_PARTS = frozenset({"bus", "desktop", "program", "data", "autostart", "docs"})
#: console scripts: name -> the module whose ``main()`` it runs
LAUNCHERS = {
    "hotspotguard": "hotspotguard.cli",
    "hotspotguard-tray": "hotspotguard.ui.launch",
    HELPER_NAME: "hotspotguard.helper.main",
}


@dataclass(frozen=True)
class Layout:
    """Where things go, as the installed system sees them (without DESTDIR)."""

    prefix: Path = Path("/usr")
    sysconfdir: Path = Path("/etc")
    #: the interpreter the launchers name; None: the helper already exists (a checkout's venv)
    python: Path | None = None
    helper: Path | None = None  # a checkout's helper (python is None)

    @property
    def bindir(self) -> Path:
        return self.prefix / "bin"

    @property
    def libexecdir(self) -> Path:
        return self.prefix / "libexec" / "hotspotguard"

    @property
    def datadir(self) -> Path:
        return self.prefix / "share"

    @property
    def helper_path(self) -> Path:
        if self.python is not None:
            return self.libexecdir / HELPER_NAME
        if self.helper is None:
            raise InstallError("no helper: give the interpreter or the helper's path")
        return self.helper

    @property
    def tray_path(self) -> Path:
        if self.python is not None:
            return self.bindir / "hotspotguard-tray"
        return self.helper_path.parent / "hotspotguard-tray"

    @property
    def bus_policy_dir(self) -> Path:
        """dbus-daemon reads policies from /usr/share/dbus-1/system.d and /etc/dbus-1/system.d
        only: a /usr/local install puts its policy in the latter."""
        if self.prefix == Path("/usr"):
            return self.datadir / "dbus-1" / "system.d"
        return self.sysconfdir / "dbus-1" / "system.d"

    @property
    def polkit_actions_dir(self) -> Path:
        """polkitd reads actions from /usr/share/polkit-1/actions only, whatever the prefix."""
        return Path("/usr/share/polkit-1/actions")


@dataclass(frozen=True)
class SystemFile:
    """One file of the installation: where it goes (absolute, without DESTDIR), what the
    list calls its part, its mode, and how to make its content."""

    target: Path
    part: str
    mode: int
    make: Callable[[], str | bytes]


def source_tree() -> Path:
    """The source tree (``resources/``, ``desktop/``) this package runs from."""
    return resources_dir().parents[1]


def _text(path: Path) -> Callable[[], str]:
    return lambda: path.read_text(encoding="utf-8")


def _bytes(path: Path) -> Callable[[], bytes]:
    return lambda: path.read_bytes()


def _entry(path: Path, tray: Path) -> Callable[[], str]:
    """A desktop entry whose Exec/TryExec name the installed tray by its full path."""

    def make() -> str:
        text = path.read_text(encoding="utf-8")
        text = text.replace("Exec=hotspotguard-tray", f"Exec={tray}")
        return text.replace("TryExec=hotspotguard-tray", f"TryExec={tray}")

    return make


def _service(path: Path, helper: Path) -> Callable[[], str]:
    def make() -> str:
        text = path.read_text(encoding="utf-8")
        if PLACEHOLDER not in text:
            raise InstallError(f"{path} has no {PLACEHOLDER}")
        return text.replace(PLACEHOLDER, str(helper))

    return make


def launcher_text(python: Path, module: str) -> str:
    """A console script: ``-I`` keeps the user's PYTHONPATH and the like out (root runs the
    helper; the others need no more)."""
    return f"#!{python} -I\nimport sys\n\nfrom {module} import main\n\nsys.exit(main())\n"


def _launcher(python: Path, module: str) -> Callable[[], str]:
    return lambda: launcher_text(python, module)


def _clidoc(kind: str) -> Callable[[], str]:
    def make() -> str:
        from hotspotguard.clidocs import render

        return render(kind)

    return make


def _permanent(kind: str, helper: Path) -> Callable[[], str]:
    def make() -> str:
        from hotspotguard.system import persist

        if kind == "dropin":
            return persist.dropin_text(str(helper))
        return persist.dispatcher_text(str(helper))

    return make


def system_files(
    layout: Layout, parts: frozenset[str] = ALL_PARTS, tree: Path | None = None
) -> list[SystemFile]:
    """The one list of files an installation consists of (the Python package itself aside),
    made from the source tree `tree` (default: the one this package runs from)."""
    tree = tree or source_tree()
    system = tree / "resources" / "system"
    icons = tree / "resources" / "icons"
    helper, tray, share = layout.helper_path, layout.tray_path, layout.datadir
    hicolor = share / "icons" / "hicolor" / "scalable"
    ours = share / "hotspotguard"
    files = [
        SystemFile(
            share / "dbus-1/system-services" / SERVICE,
            "bus",
            0o644,
            _service(system / SERVICE, helper),
        ),
        SystemFile(layout.bus_policy_dir / BUS_POLICY, "bus", 0o644, _text(system / BUS_POLICY)),
        SystemFile(layout.polkit_actions_dir / ACTIONS, "bus", 0o644, _text(system / ACTIONS)),
        SystemFile(
            share / "applications" / APP_ENTRY,
            "desktop",
            0o644,
            _entry(tree / "desktop" / APP_ENTRY, tray),
        ),
        SystemFile(
            hicolor / "apps" / f"{APP_ID}.svg", "desktop", 0o644, _text(icons / f"{APP_ID}.svg")
        ),
    ]
    files += [
        SystemFile(
            hicolor / "status" / f"hotspotguard-{state}.svg",
            "desktop",
            0o644,
            _text(icons / f"hotspotguard-{state}.svg"),
        )
        for state in STATES
    ]
    files.append(
        SystemFile(
            layout.sysconfdir / "xdg/autostart" / APP_ENTRY,
            "autostart",
            0o644,
            _entry(tree / "desktop" / AUTOSTART_SOURCE, tray),
        )
    )
    if layout.python is not None:
        for name, module in LAUNCHERS.items():
            directory = layout.libexecdir if name == HELPER_NAME else layout.bindir
            files.append(
                SystemFile(directory / name, "program", 0o755, _launcher(layout.python, module))
            )
    # the data the programs find through ui.shipped (share/hotspotguard mirrors the tree)
    for source in sorted(icons.glob("*.svg")):
        files.append(
            SystemFile(ours / "resources/icons" / source.name, "data", 0o644, _text(source))
        )
    for source in sorted((tree / "resources/translations").glob("*.qm")):
        files.append(
            SystemFile(ours / "resources/translations" / source.name, "data", 0o644, _bytes(source))
        )
    files.append(
        SystemFile(
            ours / "desktop" / AUTOSTART_SOURCE,
            "data",
            0o644,
            _text(tree / "desktop" / AUTOSTART_SOURCE),
        )
    )
    for source in sorted((tree / "resources/examples").glob("*.json")):
        files.append(SystemFile(ours / "examples" / source.name, "data", 0o644, _text(source)))
    from hotspotguard.system.persist import DISPATCHER_NAME, DROPIN_NAME

    files += [
        SystemFile(ours / "permanent" / DROPIN_NAME, "data", 0o644, _permanent("dropin", helper)),
        SystemFile(
            ours / "permanent" / DISPATCHER_NAME, "data", 0o755, _permanent("dispatcher", helper)
        ),
        SystemFile(share / "man/man1/hotspotguard.1", "docs", 0o644, _clidoc("man")),
        SystemFile(
            share / "bash-completion/completions/hotspotguard", "docs", 0o644, _clidoc("bash")
        ),
        SystemFile(share / "zsh/site-functions/_hotspotguard", "docs", 0o644, _clidoc("zsh")),
    ]
    return [f for f in files if f.part in parts]


def under(root: Path, path: Path) -> Path:
    """`path` (absolute) inside the tree `root` (DESTDIR)."""
    return root / path.relative_to("/")


class InstallError(Exception):
    """Installing cannot be done safely; the message is one line for a person."""


@dataclass(frozen=True)
class InstallStep:
    """One file written or removed."""

    path: Path
    content: str | bytes | None  # None: removed
    mode: int = 0o644

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
    """The files install-system would write for a root-owned checkout (nothing is written)."""
    helper = helper or default_helper()
    check_helper(helper)
    source = resources or resources_dir()
    for name in (SERVICE, BUS_POLICY, ACTIONS):
        try:  # its text becomes the bus's and polkit's configuration
            trust.check_path(source / name, "install-system copies it into the system")
        except trust.Untrusted as error:
            raise InstallError(str(error)) from None
    files = system_files(Layout(helper=helper), CHECKOUT_PARTS, tree=source.parents[1])
    return [InstallStep(under(root, f.target), f.make(), f.mode) for f in files]


def installed_paths(root: Path = Path("/")) -> list[Path]:
    """Every file install-system writes, under `root`."""
    layout = Layout(helper=Path("/") / HELPER_NAME)  # the paths do not depend on it
    return [under(root, f.target) for f in system_files(layout, CHECKOUT_PARTS)]


def plan_uninstall(root: Path = Path("/")) -> list[InstallStep]:
    """The files uninstall would remove (those of ours that exist)."""
    paths = installed_paths(root)
    return [InstallStep(path, None) for path in paths if path.exists() or path.is_symlink()]


def execute(steps: list[InstallStep]) -> None:
    """Write (atomically, root's, with the step's mode) or remove each file."""
    for step in steps:
        if step.content is None:
            step.path.unlink(missing_ok=True)
            continue
        step.path.parent.mkdir(mode=0o755, parents=True, exist_ok=True)
        data = step.content.encode() if isinstance(step.content, str) else step.content
        temporary = step.path.with_name(f".{step.path.name}.tmp{os.getpid()}")
        try:
            fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o600)
            with os.fdopen(fd, "wb") as handle:
                handle.write(data)
                handle.flush()
                os.fsync(handle.fileno())
            os.chmod(temporary, step.mode)
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


# --- `make install` / `make uninstall`: the package, the launchers and the whole list ---------

#: pip's console scripts (we write our own launchers) and its per-directory leftovers
_PIP_LEFTOVERS = ("bin",)


def _run(argv: list[str]) -> str:
    # not the Makefile's PYTHONPATH=src: pip would take the source tree for an installed copy
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    result = subprocess.run(argv, capture_output=True, text=True, check=False, env=env)
    if result.returncode != 0:
        detail = (result.stderr or result.stdout).strip().splitlines()
        raise InstallError(f"{' '.join(argv[:4])} …: " + (detail[-1] if detail else "failed"))
    return result.stdout


def site_packages(python: Path, prefix: Path) -> Path:
    """Where `python` imports packages installed under `prefix` from (its own sys.path, so the
    Debian, Arch and venv layouts all come out right)."""
    code = (
        "import sys, sysconfig; p = sys.argv[1].rstrip('/') + '/lib/';"
        "print(next((d for d in sys.path if d.startswith(p) and d.endswith('-packages')),"
        " sysconfig.get_path('purelib', vars={'base': sys.argv[1], 'platbase': sys.argv[1]})))"
    )
    return Path(_run([str(python), "-I", "-c", code, str(prefix)]).strip())


def _install_package(wheel: Path, python: Path, target: Path, with_dependencies: bool) -> None:
    argv = [str(python), "-m", "pip", "install", "--quiet", "--disable-pip-version-check"]
    if with_dependencies:  # into the venv, from PyPI
        _run([*argv, str(wheel)])
        return
    _run(
        [
            *argv,
            "--root-user-action=ignore",
            "--no-deps",
            "--no-index",
            "--upgrade",
            "--target",
            str(target),
            str(wheel),
        ]
    )
    for name in _PIP_LEFTOVERS:
        leftover = target / name
        if leftover.is_dir():
            shutil.rmtree(leftover)
    for record in target.glob("hotspotguard-*.dist-info/direct_url.json"):
        record.unlink()  # it names the build directory


def _package_dirs(site: Path) -> list[Path]:
    return sorted([site / "hotspotguard", *site.glob("hotspotguard-*.dist-info")])


def _make_tree_readable(path: Path) -> None:
    """Root's files, writable only by root: directories 0755, files 0644 (0755 if executable)."""
    for directory, _subdirs, files in os.walk(path):
        os.chmod(directory, 0o755)
        for name in files:
            file = Path(directory) / name
            if not file.is_symlink():
                executable = os.stat(file).st_mode & stat.S_IXUSR
                os.chmod(file, 0o755 if executable else 0o644)


def install_all(
    destdir: Path, layout: Layout, wheel: Path | None, venv: Path | None = None
) -> list[Path]:
    """`make install`: the package (unless `wheel` is None: a distribution's build installs it),
    the launchers and every file of :func:`system_files`; the files written (under destdir)."""
    written: list[Path] = []
    if layout.python is None:
        raise InstallError("make install needs the interpreter the launchers name")
    if venv is not None:
        venv_here = under(destdir, venv)
        if not (venv_here / "bin" / "python3").exists():
            _run([sys.executable, "-m", "venv", str(venv_here)])
        if wheel is not None:
            _install_package(wheel, venv_here / "bin" / "python3", Path(), True)
        _relocate_venv(venv_here, venv)
        _make_tree_readable(venv_here)
        written.append(venv_here)
    elif wheel is not None:
        site = under(destdir, site_packages(layout.python, layout.prefix))
        _install_package(wheel, layout.python, site, False)
        for path in _package_dirs(site):
            _make_tree_readable(path)
            written.append(path)
    steps = [InstallStep(under(destdir, f.target), f.make(), f.mode) for f in system_files(layout)]
    for directory in sorted({step.path.parent for step in steps}):
        _make_dirs(destdir, directory)
    execute(steps)
    if destdir == Path("/"):
        check_helper(layout.helper_path)  # D-Bus runs it as root: refuse to leave it untrusted
    return written + [step.path for step in steps]


def _make_dirs(destdir: Path, directory: Path) -> None:
    """Create `directory` (and its parents below `destdir`) 0755."""
    missing = []
    current = directory
    while not current.exists() and current != destdir:
        missing.append(current)
        current = current.parent
    for path in reversed(missing):
        path.mkdir(mode=0o755)
        os.chmod(path, 0o755)


def _relocate_venv(here: Path, final: Path) -> None:
    """A venv built under DESTDIR names DESTDIR in its scripts: name its final place."""
    if here == final:
        return
    old, new = str(here).encode(), str(final).encode()
    for path in (here / "bin").iterdir():
        if path.is_file() and not path.is_symlink():
            data = path.read_bytes()
            if old in data:
                path.write_bytes(data.replace(old, new))
    config = here / "pyvenv.cfg"
    config.write_bytes(config.read_bytes().replace(old, new))


def uninstall_all(destdir: Path, layout: Layout, venv: Path | None = None) -> list[Path]:
    """`make uninstall`: remove exactly what :func:`install_all` wrote; the paths removed."""
    removed: list[Path] = []
    if venv is not None:
        venv_here = under(destdir, venv)
        if venv_here.exists():
            shutil.rmtree(venv_here)
            removed.append(venv_here)
    elif layout.python is not None and layout.python.exists():
        site = under(destdir, site_packages(layout.python, layout.prefix))
        for path in _package_dirs(site):
            if path.exists():
                shutil.rmtree(path)
                removed.append(path)
    for file in system_files(layout):
        path = under(destdir, file.target)
        if path.exists() or path.is_symlink():
            path.unlink()
            removed.append(path)
    _prune(destdir, {path.parent for path in removed}, layout)
    return removed


def _prune(destdir: Path, directories: set[Path], layout: Layout) -> None:
    """Remove directories left empty: up to `destdir` in a staging tree; on the real system
    only our own (share/hotspotguard/…, libexec/hotspotguard), never /usr/share/icons."""
    ours = (under(destdir, layout.datadir / "hotspotguard"), under(destdir, layout.libexecdir))
    for start in sorted(directories, key=lambda p: len(p.parts), reverse=True):
        current = start
        while current != destdir and current.is_dir() and not any(current.iterdir()):
            if destdir == Path("/") and not any(current.is_relative_to(o) for o in ours):
                break
            current.rmdir()
            current = current.parent


def main(argv: list[str] | None = None) -> int:
    """``python3 -m hotspotguard.helper.install install|uninstall|list`` (the Makefile's)."""
    import argparse

    parser = argparse.ArgumentParser(prog="hotspotguard-install")
    parser.add_argument("action", choices=["install", "uninstall", "list"])
    parser.add_argument("--destdir", default="/")
    parser.add_argument("--prefix", default="/usr/local")
    parser.add_argument("--sysconfdir", default="/etc")
    parser.add_argument("--python", default="/usr/bin/python3", help="the launchers' interpreter")
    parser.add_argument("--wheel", help="the package to install (none: only the files)")
    parser.add_argument("--venv", help="install into a venv there (e.g. /opt/hotspotguard)")
    args = parser.parse_args(argv)
    destdir = Path(os.path.abspath(args.destdir or "/"))
    venv = Path(args.venv) if args.venv else None
    python = venv / "bin" / "python3" if venv else Path(args.python)
    layout = Layout(Path(args.prefix), Path(args.sysconfdir), python)
    try:
        if args.action == "list":
            for file in system_files(layout):
                print(file.target)
        elif args.action == "install":
            wheel = Path(args.wheel) if args.wheel else None
            for path in install_all(destdir, layout, wheel, venv):
                print(f"installed {path}")
        else:
            removed = uninstall_all(destdir, layout, venv)
            for path in removed:
                print(f"removed {path}")
            if not removed:
                print("nothing to remove")
    except (InstallError, OSError) as error:
        print(f"hotspotguard install: {error}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
