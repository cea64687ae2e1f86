"""Network namespaces for the benchmark, and the child processes run in them.

One lab = three namespaces named with a per-run prefix (``hgb<pid>-<n>-host``, ``-cl``, ``-up``):
the host has ``hs0`` (10.42.0.1/24, NetworkManager's hotspot side; its veth peer ``cl0`` lives in
the client namespace) and ``up0`` (198.51.100.2/24, default route via 198.51.100.1 in the upstream
namespace), plus a ``docker0`` bridge (172.17.0.1/16). The root namespace is never touched.

Every child process is started in a new session and registered; :func:`kill_children` and
:meth:`Lab.destroy` end them (by process group id) and delete the namespaces, also on Ctrl-C.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import time
from collections.abc import Sequence
from dataclasses import dataclass
from types import TracebackType

_children: dict[int, subprocess.Popen[bytes]] = {}


def spawn(argv: Sequence[str], **kwargs: object) -> subprocess.Popen[bytes]:
    """Start a registered child in its own session (so that its whole group can be ended)."""
    proc: subprocess.Popen[bytes] = subprocess.Popen(  # type: ignore[call-overload]
        list(argv), start_new_session=True, **kwargs
    )
    _children[proc.pid] = proc
    return proc


def _end_group(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is None:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(proc.pid, signal.SIGKILL)
        with contextlib.suppress(subprocess.TimeoutExpired):
            proc.wait(timeout=10)
    _children.pop(proc.pid, None)


def kill_children() -> None:
    """End every registered child that is still running (its process group included)."""
    for proc in list(_children.values()):
        _end_group(proc)


@dataclass
class Result:
    """What a child did: exit code, output, wall time."""

    returncode: int
    stdout: bytes
    stderr: bytes
    seconds: float
    timed_out: bool = False


def run(
    argv: Sequence[str], timeout: float | None = None, input_data: bytes | None = None
) -> Result:
    """Run a registered child to completion (or kill it at ``timeout``)."""
    start = time.perf_counter()
    proc = spawn(
        argv,
        stdin=subprocess.PIPE if input_data is not None else subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    try:
        out, err = proc.communicate(input_data, timeout=timeout)
        timed_out = False
    except subprocess.TimeoutExpired:
        _end_group(proc)
        out, err = proc.communicate()
        timed_out = True
    finally:
        _end_group(proc)
    return Result(proc.returncode, out, err, time.perf_counter() - start, timed_out)


def check(argv: Sequence[str], timeout: float | None = 120) -> Result:
    res = run(argv, timeout=timeout)
    if res.returncode != 0:
        raise RuntimeError(
            f"{' '.join(argv)} failed ({res.returncode}): {res.stderr.decode(errors='replace')}"
        )
    return res


def list_netns() -> list[str]:
    out = subprocess.run(["ip", "netns", "list"], capture_output=True, text=True, check=False)
    return [line.split()[0] for line in out.stdout.splitlines() if line.strip()]


class Lab:
    """The namespaces of one measured ruleset (fresh for each size)."""

    def __init__(self, prefix: str) -> None:
        self.host = f"{prefix}-host"
        self.client = f"{prefix}-cl"
        self.upstream = f"{prefix}-up"
        self.created: list[str] = []

    @property
    def namespaces(self) -> tuple[str, str, str]:
        return (self.host, self.client, self.upstream)

    def argv(self, argv: Sequence[str], ns: str | None = None) -> list[str]:
        """``argv`` to run inside a namespace of this lab (the host by default)."""
        return ["ip", "netns", "exec", ns or self.host, *argv]

    def create(self) -> None:
        for ns in self.namespaces:
            if ns in list_netns():
                raise RuntimeError(f"namespace {ns} already exists")
            check(["ip", "netns", "add", ns])
            self.created.append(ns)
        h, c, u = self.namespaces
        steps = [
            f"ip -n {h} link add hs0 type veth peer name cl0 netns {c}".split(),
            f"ip -n {h} link add up0 type veth peer name wan0 netns {u}".split(),
            ["ip", "-n", h, "link", "add", "docker0", "type", "bridge"],
            ["ip", "-n", h, "addr", "add", "10.42.0.1/24", "dev", "hs0"],
            ["ip", "-n", h, "addr", "add", "198.51.100.2/24", "dev", "up0"],
            ["ip", "-n", h, "addr", "add", "172.17.0.1/16", "dev", "docker0"],
            ["ip", "-n", c, "addr", "add", "10.42.0.2/24", "dev", "cl0"],
            ["ip", "-n", u, "addr", "add", "198.51.100.1/24", "dev", "wan0"],
        ]
        for ns, links in (
            (h, ("lo", "hs0", "up0", "docker0")),
            (c, ("lo", "cl0")),
            (u, ("lo", "wan0")),
        ):
            steps += [["ip", "-n", ns, "link", "set", link, "up"] for link in links]
        steps += [
            ["ip", "-n", h, "route", "add", "default", "via", "198.51.100.1"],
            ["ip", "-n", c, "route", "add", "default", "via", "10.42.0.1"],
            self.argv(["sysctl", "-qw", "net.ipv4.ip_forward=1"]),
        ]
        for step in steps:
            check(step)

    def destroy(self) -> None:
        """End every process left in our namespaces, then delete them."""
        for ns in reversed(self.created):
            pids = subprocess.run(
                ["ip", "netns", "pids", ns], capture_output=True, text=True, check=False
            ).stdout.split()
            for pid in pids:
                with contextlib.suppress(ProcessLookupError, ValueError):
                    os.kill(int(pid), signal.SIGKILL)
            subprocess.run(["ip", "netns", "del", ns], capture_output=True, check=False)
        self.created.clear()

    def __enter__(self) -> Lab:
        try:
            self.create()
        except BaseException:
            self.destroy()
            raise
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        kill_children()
        self.destroy()
