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

import json
import shutil
import subprocess
import threading
import time
from typing import Any, Final

from hotspotguard.system import nftables
from hotspotguard.system.nftables import CLEAN_ENV

RuleKey = tuple[str, str, str, int]

#: seconds an unclaimed rule is kept (rules of chains read whole, of iptables-nft tables, …)
KEEP: Final = 30.0
#: unclaimed rules held before the old ones are dropped as they come
PRUNE_AT: Final = 4096
#: sets in one table from which listing a chain is slow (nft fetches every set of the table
#: for it, seconds at 100,000 rules): such a ruleset takes its new rules from the monitor
MANY_SETS: Final = 200


class RuleFeed:
    """The rules ``nft -j monitor new rules`` prints (the child runs in this thread's network
    namespace). A thread reads its output as it comes (blocked in read() while nothing
    happens: no wake-ups), so the monitor never waits on a full pipe in a burst."""

    def __init__(self, binary: str) -> None:
        # setpriv (util-linux): the monitor ends with the thread that started it, even when
        # this process is killed (no orphan keeping nft's cache of a big ruleset)
        setpriv = shutil.which("setpriv", path=CLEAN_ENV["PATH"])
        guard = [setpriv, "--pdeathsig", "TERM", "--"] if setpriv else []
        self._proc = subprocess.Popen(
            [*guard, binary, "-j", "monitor", "new", "rules"],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            env=CLEAN_ENV,
            close_fds=True,
        )
        self.pid = self._proc.pid
        self._changed = threading.Condition()
        self._rules: dict[RuleKey, tuple[float, dict[str, Any]]] = {}
        self._ended = False
        self._thread = threading.Thread(target=self._read, name="nft-monitor", daemon=True)
        self._thread.start()

    @property
    def alive(self) -> bool:
        return not self._ended

    def take(
        self, family: str, table: str, chain: str, handles: list[int], wait: float
    ) -> dict[int, dict[str, Any]]:
        """The rules of these handles the monitor printed (each given once), waiting up to
        `wait` seconds for the missing ones; what is still missing is not in the result."""
        found: dict[int, dict[str, Any]] = {}
        deadline = time.monotonic() + wait
        with self._changed:
            while True:
                for handle in handles:
                    entry = self._rules.pop((family, table, chain, handle), None)
                    if entry is not None:
                        found[handle] = entry[1]
                left = deadline - time.monotonic()
                if len(found) == len(handles) or left <= 0 or self._ended:
                    break
                self._changed.wait(left)
            self._prune()
        return found

    def forget(self, family: str, table: str, chain: str) -> None:
        """Drop what the feed has of a chain (just listed whole: its rules are older)."""
        with self._changed:
            self._rules = {k: v for k, v in self._rules.items() if k[:3] != (family, table, chain)}

    def _read(self) -> None:
        assert self._proc.stdout is not None
        try:
            for line in self._proc.stdout:
                found = _rule_of(line)
                if found is not None:
                    with self._changed:
                        self._rules[found[0]] = (time.monotonic(), found[1])
                        if len(self._rules) > PRUNE_AT:  # unclaimed: iptables-nft chains, …
                            self._prune()
                        self._changed.notify_all()
        except (OSError, ValueError):  # closed under us
            pass
        finally:
            with self._changed:
                self._ended = True
                self._changed.notify_all()

    def _prune(self) -> None:
        since = time.monotonic() - KEEP
        if self._rules and next(iter(self._rules.values()))[0] < since:
            self._rules = {k: v for k, v in self._rules.items() if v[0] >= since}

    def close(self) -> None:
        proc = self._proc
        if proc.poll() is None:
            proc.terminate()
            try:
                proc.wait(2)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        self._thread.join(2)
        if proc.stdout is not None:
            proc.stdout.close()


def _rule_of(line: bytes) -> tuple[RuleKey, dict[str, Any]] | None:
    """The rule of one line of ``nft -j monitor`` ({"add"|"insert"|…: {"rule": …}})."""
    try:
        event = json.loads(line)
    except ValueError:
        return None
    if not isinstance(event, dict) or len(event) != 1:
        return None
    ((_, body),) = event.items()
    rule = body.get("rule") if isinstance(body, dict) else None
    if not isinstance(rule, dict):
        return None
    family, table, chain, handle = (rule.get(k) for k in ("family", "table", "chain", "handle"))
    if (
        isinstance(family, str)
        and isinstance(table, str)
        and isinstance(chain, str)
        and isinstance(handle, int)
    ):
        return (family, table, chain, handle), rule
    return None


def early_feed() -> RuleFeed | None:
    """The monitor, started before the first reading of a ruleset with a table of MANY_SETS
    sets or more, by a process that lists that reading's biggest table before it loads the
    rest (nftables.prelist): the monitor fills its own cache of the ruleset meanwhile, ready
    for the first changes (a minute at 100,000 rules). None for a smaller ruleset, or when it
    cannot start (the reading decides again)."""
    try:
        if max(nftables.set_counts().values(), default=0) < MANY_SETS:
            return None
    except (nftables.NftablesError, OSError):
        return None
    binary = shutil.which("nft", path=CLEAN_ENV["PATH"])
    if binary is None:
        return None
    try:
        return RuleFeed(binary)
    except OSError:
        return None
