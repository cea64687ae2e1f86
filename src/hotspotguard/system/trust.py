"""Root runs only root-owned files: the one check for every program root will run later.

D-Bus starts the helper as root (`install-system`, `make install`), and the permanent fix's
docker.service drop-in and NetworkManager dispatcher script run it as root at every Docker start
and connection.  Whoever can write any file Python then executes or imports is root.  So the
helper, its ``#!`` interpreter (and the venv's ``pyvenv.cfg``), every directory above them, the
site-packages the interpreter reads (every file and directory in them, and the ``.pth`` files'
directories and editable-install mappings: the package tree), must be owned by root and
writable by nobody else, or the path is refused with one line naming it.

The search path is asked of the interpreter itself, once it is trusted, in isolated mode
without ``site`` (``-I -S``): nothing from the checked trees runs before they are checked.
The standard library's directories are checked, not walked (they come with the interpreter).
"""

from __future__ import annotations

import ast
import json
import os
import stat
import subprocess
from pathlib import Path

CLEAN_ENV = {"PATH": "/usr/sbin:/usr/bin:/sbin:/bin", "LC_ALL": "C.UTF-8"}
# site-packages as `site` would find them (a venv's from its pyvenv.cfg), without running
# `site` (which would process the .pth files before they are checked)
ASK = """
import json, os, site, sys
home = os.path.dirname(os.path.dirname(sys.executable))
cfg = os.path.join(home, "pyvenv.cfg")
sites = []
if os.path.isfile(cfg):
    sites = site.getsitepackages([home])
    with open(cfg) as handle:
        keys = dict(line.partition("=")[::2] for line in handle if "=" in line)
    keys = {k.strip().lower(): v.strip().lower() for k, v in keys.items()}
    if keys.get("include-system-site-packages") == "true":
        sites += site.getsitepackages()
else:
    sites = site.getsitepackages()
sites.append(site.getusersitepackages())
print(json.dumps({"path": sys.path, "site": sites}))
"""
ADVICE = "install hotspotguard system-wide (make install), or keep the tree root-owned"


class Untrusted(Exception):
    """A file root would run is not root's alone; the message is one line naming it.
    `problem` says what is wrong with `path` (a ``wording`` reason code: ``untrusted-owner``,
    ``untrusted-writable``, ``untrusted-unreadable``, ``untrusted-not-absolute``,
    ``untrusted-not-executable``, ``untrusted-does-not-run``), `detail` the system's words."""

    def __init__(self, message: str, problem: str, path: Path | str, detail: str = "") -> None:
        super().__init__(message)
        self.problem, self.path, self.detail = problem, str(path), detail


def _refuse(path: Path | str, why: str, purpose: str, problem: str) -> Untrusted:
    return Untrusted(f"{path} {why}: root would run it ({purpose}); {ADVICE}", problem, path)


def _check_one(path: Path, purpose: str, seen: set[Path], *, above: bool = False) -> None:
    try:
        info = os.lstat(path)
    except OSError as error:
        raise Untrusted(
            f"{path}: {error.strerror} ({purpose})",
            "untrusted-unreadable",
            path,
            error.strerror or "",
        ) from None
    if stat.S_ISLNK(info.st_mode):
        check_path(Path(os.path.realpath(path)), purpose, seen)
        return
    if info.st_uid != 0:
        raise _refuse(path, "is not owned by root", purpose, "untrusted-owner")
    if info.st_mode & (stat.S_IWGRP | stat.S_IWOTH) and not (above and _sticky_dir(info)):
        raise _refuse(path, "is writable by others than root", purpose, "untrusted-writable")


def _sticky_dir(info: os.stat_result) -> bool:
    """A sticky directory (such as /tmp): others may add names to it, but never rename or
    remove root's — harmless in a directory *above* what root runs, which names one entry."""
    return stat.S_ISDIR(info.st_mode) and bool(info.st_mode & stat.S_ISVTX)


def check_path(path: Path, purpose: str, seen: set[Path] | None = None) -> None:
    """`path` and every directory above it: root's, writable by root alone (symlinks are
    followed, their targets checked the same way)."""
    seen = set() if seen is None else seen
    if not path.is_absolute():
        raise Untrusted(
            f"{path} is not an absolute path ({purpose})", "untrusted-not-absolute", path
        )
    if path in seen:
        return
    seen.add(path)
    current = Path("/")
    parts = path.parts[1:]
    _check_one(current, purpose, seen, above=bool(parts))
    for number, part in enumerate(parts, 1):
        current = current / part
        _check_one(current, purpose, seen, above=number < len(parts))


def check_tree(top: Path, purpose: str, seen: set[Path]) -> None:
    """`top` (with the directories above it) and everything below it."""
    check_path(top, purpose, seen)
    for directory, dirs, files in os.walk(top):
        for name in dirs + files:
            path = Path(directory) / name
            info = os.lstat(path)
            if stat.S_ISLNK(info.st_mode):
                check_path(Path(os.path.realpath(path)), purpose, seen)
            elif info.st_uid != 0:
                raise _refuse(path, "is not owned by root", purpose, "untrusted-owner")
            elif info.st_mode & (stat.S_IWGRP | stat.S_IWOTH):
                raise _refuse(
                    path, "is writable by others than root", purpose, "untrusted-writable"
                )


def _interpreter(program: Path) -> Path | None:
    with open(program, "rb") as handle:
        first = handle.readline(4096)
    if not first.startswith(b"#!"):
        return None
    words = first[2:].strip().split()
    if not words:
        return None
    return Path(words[0].decode("utf-8", "replace"))


def _search_path(interpreter: Path) -> tuple[list[str], list[str]]:
    """sys.path (without site) and the site-packages directories of `interpreter`."""
    proc = subprocess.run(
        [str(interpreter), "-I", "-S", "-c", ASK],
        capture_output=True,
        text=True,
        env=CLEAN_ENV,
        cwd="/",
        timeout=30,
        check=False,
    )
    if proc.returncode != 0:
        said = proc.stderr.strip()[-200:]
        raise Untrusted(
            f"{interpreter} does not run: {said}", "untrusted-does-not-run", interpreter, said
        )
    doc = json.loads(proc.stdout)
    return [str(p) for p in doc["path"]], [str(p) for p in doc["site"]]


def _editable_roots(finder: Path) -> list[str]:
    """The package directories a setuptools editable finder maps (its MAPPING literal)."""
    try:
        tree = ast.parse(finder.read_text(encoding="utf-8"))
    except (OSError, SyntaxError, ValueError):
        return []
    for node in tree.body:
        if isinstance(node, ast.Assign) and any(
            isinstance(t, ast.Name) and t.id == "MAPPING" for t in node.targets
        ):
            try:
                mapping = ast.literal_eval(node.value)
            except ValueError:
                return []
            return [str(v) for v in mapping.values()] if isinstance(mapping, dict) else []
    return []


def check_runs_as_root(program: str | Path, purpose: str) -> None:
    """Refuse (`Untrusted`) unless every file root runs when it runs `program` is root's
    alone: see the module's docstring.  `purpose` says who runs it, for the message."""
    program = Path(program)
    seen: set[Path] = set()
    if not program.is_absolute():
        raise Untrusted(
            f"{program} is not an absolute path ({purpose})", "untrusted-not-absolute", program
        )
    if not program.is_file() or not os.access(program, os.X_OK):
        raise Untrusted(
            f"{program} is not an executable file ({purpose}); {ADVICE}",
            "untrusted-not-executable",
            program,
        )
    check_path(program, purpose, seen)
    interpreter = _interpreter(program)
    if interpreter is None:
        return  # a binary: it and its directories are all there is to check here
    check_path(interpreter, purpose, seen)
    venv_cfg = interpreter.parent.parent / "pyvenv.cfg"
    if venv_cfg.exists():
        check_path(venv_cfg, purpose, seen)
    if "python" not in interpreter.name:
        return
    stdlib, sites = _search_path(interpreter)
    for entry in stdlib:
        if entry and os.path.exists(entry):
            check_path(Path(entry), purpose, seen)
    for site in sites:
        top = Path(site)
        if not top.is_dir():
            continue
        check_tree(top, purpose, seen)
        for pth in sorted(top.glob("*.pth")):
            for line in pth.read_text(encoding="utf-8", errors="replace").splitlines():
                line = line.strip()
                if not line or line.startswith(("#", "import ", "import\t")):
                    continue  # `import` lines run code from the (checked) tree
                target = top / line
                if target.exists():
                    check_tree(target.resolve(), purpose, seen)
        for finder in sorted(top.glob("__editable__*finder.py")):
            for root in _editable_roots(finder):
                if os.path.exists(root):
                    check_tree(Path(root), purpose, seen)
