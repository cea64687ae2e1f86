"""New rules as nft itself decodes them: a long-lived ``nft -j monitor new rules`` child.

Why: the kernel's NFT_MSG_NEWRULE notification carries the rule's expressions in netlink
form, and turning those into what ``nft -j list`` prints is nft's own delinearization (payload
dependencies, prefixes, ranges, flags, concatenations, anonymous sets): not something to do
again in Python. Reading the chain again instead (``nft list chain``) costs, in nft 1.0.6,
every set of the chain's table with its elements — one kernel request per set, each looked up
by name in a list: 0.1-0.4 s at 10,000 rules (1,000 anonymous sets), seconds at 100,000.
``nft -j monitor`` prints each new rule as the same JSON object a listing has (anonymous sets
inline: it keeps the sets it is told about), at the moment the kernel announces it.

The price: the monitor fills nft's whole cache when it starts (the time of one listing of the
ruleset, and memory in the child: ~40 MB at 10,000 rules); so the watcher starts it only once a
chain's listing proved slow (system.incremental), never for small rulesets.

What the feed gives is keyed by (family, table, chain, handle): a rule handle is never reused
in a table once its rule is deleted, but a replaced rule keeps its handle — the newest line
for a handle wins, and what the feed holds of a chain is dropped when the chain is listed
whole. A rule missing (the monitor was still starting, lost a message, or lags) means "list
the chain": correctness never depends on the feed. Anonymous maps' entries come in the order
of the command that made them (a listing prints the kernel's order; the engine does not
depend on it).
"""

from __future__ import annotations

import contextlib
import json
import os
import select
import subprocess
import time
from typing import Any, Final

from hotspotguard.system.nftables import CLEAN_ENV

RuleKey = tuple[str, str, str, int]

#: seconds an unclaimed rule is kept (rules of chains read whole, of iptables-nft tables, …)
KEEP: Final = 30.0
_READ_SIZE: Final = 1 << 16


class RuleFeed:
    """The rules ``nft -j monitor new rules`` prints (the child runs in this thread's network
    namespace). Not thread-safe: one caller at a time (the watcher's update)."""

    def __init__(self, binary: str) -> None:
        self._proc: subprocess.Popen[bytes] | None = subprocess.Popen(
            [binary, "-j", "monitor", "new", "rules"],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            env=CLEAN_ENV,
            close_fds=True,
        )
        assert self._proc.stdout is not None
        self._fd = self._proc.stdout.fileno()
        os.set_blocking(self._fd, False)
        self._partial = b""
        self._rules: dict[RuleKey, tuple[float, dict[str, Any]]] = {}
        self.pid = self._proc.pid

    @property
    def alive(self) -> bool:
        return self._proc is not None and self._proc.poll() is None

    def take(
        self, family: str, table: str, chain: str, handles: list[int], wait: float
    ) -> dict[int, dict[str, Any]]:
        """The rules of these handles the monitor printed (each given once), waiting up to
        `wait` seconds for the missing ones; what is still missing is not in the result."""
        found: dict[int, dict[str, Any]] = {}
        deadline = time.monotonic() + wait
        while True:
            self._drain()
            for handle in handles:
                entry = self._rules.pop((family, table, chain, handle), None)
                if entry is not None:
                    found[handle] = entry[1]
            left = deadline - time.monotonic()
            if len(found) == len(handles) or left <= 0 or not self.alive:
                break
            with contextlib.suppress(InterruptedError):
                select.select([self._fd], [], [], left)
        self._prune()
        return found

    def forget(self, family: str, table: str, chain: str) -> None:
        """Drop what the feed has of a chain (just listed whole: its rules are older)."""
        self._drain()
        self._rules = {k: v for k, v in self._rules.items() if k[:3] != (family, table, chain)}

    def _drain(self) -> None:
        if self._proc is None:
            return
        chunks = [self._partial]
        while True:
            try:
                data = os.read(self._fd, _READ_SIZE)
            except BlockingIOError:
                break
            except OSError:
                data = b""
            if not data:
                break
            chunks.append(data)
        text = b"".join(chunks)
        *lines, self._partial = text.split(b"\n")
        now = time.monotonic()
        for line in lines:
            self._note(line, now)

    def _note(self, line: bytes, now: float) -> None:
        try:
            event = json.loads(line)
        except ValueError:
            return
        if not isinstance(event, dict) or len(event) != 1:
            return
        ((_, body),) = event.items()  # "add" or "insert"
        rule = body.get("rule") if isinstance(body, dict) else None
        if not isinstance(rule, dict):
            return
        family, table, chain, handle = (rule.get(k) for k in ("family", "table", "chain", "handle"))
        if (
            isinstance(family, str)
            and isinstance(table, str)
            and isinstance(chain, str)
            and isinstance(handle, int)
        ):
            self._rules[(family, table, chain, handle)] = (now, rule)

    def _prune(self) -> None:
        since = time.monotonic() - KEEP
        if self._rules and next(iter(self._rules.values()))[0] < since:
            self._rules = {k: v for k, v in self._rules.items() if v[0] >= since}

    def close(self) -> None:
        proc, self._proc = self._proc, None
        if proc is None:
            return
        if proc.poll() is None:
            proc.terminate()
            try:
                proc.wait(2)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        if proc.stdout is not None:
            proc.stdout.close()
