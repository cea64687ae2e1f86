"""The parsed firewall kept between evaluations: a change costs what the change is.

:class:`LiveFirewall` holds the typed model (``ruleset.model``) of the live ruleset. The first
update reads everything (a full capture); later ones get the :class:`RulesetChanges` the
kernel's notifications named (system.netlink) and re-read only that, through libnftables:

- rules added to (or replaced in) a chain: the chain's handles in the kernel's order from one
  netlink dump (no expressions), the rules the model already has, and the new ones as nft
  itself decoded them from the same notifications — a long-lived ``nft -j monitor`` child
  (system.nftmonitor), started once a listing proved slow (a big ruleset); without it, or for
  a rule it does not have, or in an iptables-nft chain: ``list chain`` (an iptables-nft chain
  also gets its ``iptables-nft -S CHAIN`` lines, whose text and xt matches the model keeps);
- rules deleted from a chain: dropped by handle, nothing read;
- a new regular chain: made empty in the model at its place in the kernel's order (one
  netlink dump of the chains); a base chain's policy changed: the policy its notification
  carries (NFTA_CHAIN_POLICY; its hook, type and priority must be the model's); a new base
  chain: made as its notification describes it (hook, type, priority, policy), as a regular
  one; one the notification does not describe in full (a device's hook): ``list chain``;
  a deleted chain: dropped (the kernel deletes only an empty chain nothing jumps to); a
  chain the model knows that the kernel no longer has (a rename): the table;
- a named set or map: ``list set``/``list map``;
- a table added, deleted or changed itself: ``list table`` (and ``iptables-nft-save -t``);
- iptables-legacy (no notifications; its lock file says "something changed"): both legacy
  save tools, as a full capture does.

Why not ``list chain`` for every change: nft 1.0.6 fetches every set of the chain's table
with its elements for it, one kernel request per set, each looked up by name in a list —
0.1-0.4 s for a chain of a 10,000-rule table with 1,000 anonymous sets, seconds at 100,000.

The new parts are spliced into the model (new Table/Chain objects, the untouched ones kept as
they are), and the engine's per-chain rule indexes of the untouched chains are carried over
into the new ruleset's index (``verdict.HookIndex.reusing``), so only the changed chains are
indexed again.

A generation check guards it: the model is trusted while the kernel's generation id equals the
last one announced by a notification (NFT_MSG_NEWGEN). If it moved and no notification
explains it (a lost message), or messages were lost (ENOBUFS), the next update is a full
capture, and :attr:`LiveFirewall.log` says why.
"""

from __future__ import annotations

import subprocess
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, replace
from functools import cache
from typing import Any

from hotspotguard.ruleset import Ruleset, Snapshot, load_snapshot, parse_ruleset
from hotspotguard.ruleset.iptables import BUILTIN_CHAINS
from hotspotguard.ruleset.model import Chain, ChainType, Table
from hotspotguard.ruleset.snapshot import FORMAT
from hotspotguard.system import nftables
from hotspotguard.system.capture import (
    CLEAN_ENV,
    IFNAME,
    CaptureError,
    _add_devices,
    _nft_binary_text,
    _tool,
    capture_firewall,
    capture_machine,
    existing_addresses,
    interface_addresses,
    reading_firewall,
    save_texts,
)
from hotspotguard.system.netlink import BaseChain, RulesetChanges
from hotspotguard.system.nftmonitor import MANY_SETS, RuleFeed

TableKey = tuple[str, str]
ObjectKey = tuple[str, str, str]

_CHAIN_TYPES: dict[str, ChainType] = {"filter": "filter", "nat": "nat", "route": "route"}
#: a chain's listing that takes this long (seconds) starts the rule feed (system.nftmonitor)
FEED_AFTER = 0.030
#: so does a full reading that takes this long (a big ruleset: its chains' listings will be
#: slow too)
FEED_AFTER_FULL = 0.5
#: seconds to wait for the feed to print a rule the kernel announced
FEED_WAIT = 0.100
#: how many times the feed is started before chains are only listed
FEED_STARTS = 3
LEGACY_SAVES = {
    "iptables_legacy_save": "iptables-legacy-save",
    "ip6tables_legacy_save": "ip6tables-legacy-save",
}
_SAVE_KEY = {"ip": "iptables_nft_save", "ip6": "ip6tables_nft_save"}
_SAVE_TOOL = {"ip": "iptables-nft-save", "ip6": "ip6tables-nft-save"}
_LIST_TOOL = {"ip": "iptables-nft", "ip6": "ip6tables-nft"}


class _Reread(Exception):
    """The part cannot be read alone: read its table instead."""


class _Full(Exception):
    """Only a full capture is right now (the message says why)."""


@dataclass
class UpdateStats:
    full: int = 0
    tables: int = 0
    chains: int = 0
    sets: int = 0
    deletions: int = 0
    policies: int = 0  # base chains' policies taken from their notifications
    fed: int = 0  # rules taken from the rule feed
    unfed: int = 0  # chains listed because the feed lacked a rule
    last_seconds: float = 0.0


def _snapshot_of(nft_items: list[Any], saves: dict[str, str]) -> Any:
    return load_snapshot(
        {
            "format": FORMAT,
            "nft": {"nftables": nft_items},
            "sysctl": {},
            "hotspots": [],
            "uplinks": [],
            **saves,
        }
    )


def _is_iptables_nft(family: str, name: str) -> bool:
    return family in _SAVE_KEY and name in BUILTIN_CHAINS and _has_tool(_SAVE_TOOL[family])


@cache
def _has_tool(name: str) -> bool:
    return _tool(name) is not None


def _kernel_handles(key: TableKey, chain: str) -> list[int] | None:
    """The chain's rule handles in order; None while a storm keeps interrupting the dump."""
    with reading_firewall():
        try:
            return nftables.rule_handles(*key, chain)
        except nftables.DumpInterrupted:
            return None
        except FileNotFoundError:
            raise _Reread from None  # the chain is gone


def _kernel_chains(key: TableKey) -> list[nftables.ChainInfo]:
    with reading_firewall():
        try:
            return nftables.chains(*key)
        except (FileNotFoundError, nftables.DumpInterrupted):
            raise _Reread from None  # the table is gone, or a storm: read the table


def _run_text(argv: list[str]) -> str | None:
    binary = _tool(argv[0])
    if binary is None:
        return None
    proc = subprocess.run(
        [binary, *argv[1:]],
        capture_output=True,
        text=True,
        env=CLEAN_ENV,
        stdin=subprocess.DEVNULL,
        check=False,
    )
    return proc.stdout if proc.returncode == 0 else None


def _list(what: dict[str, Any]) -> list[Any] | None:
    """One listing; None when nft refuses it (the object is gone, most often)."""
    with reading_firewall():
        try:
            return nftables.list_items(what)
        except nftables.NotListed:
            return None


def _with_devices(items: Iterator[Any]) -> Iterator[Any]:
    """The objects, ingress/egress chains with their devices (see _fill_devices)."""
    for item in items:
        chain = item.get("chain") if isinstance(item, dict) else None
        if isinstance(chain, dict) and chain.get("hook") in {"ingress", "egress"}:
            _fill_devices([item])
        yield item


def _fill_devices(items: list[Any]) -> None:
    binary = _tool("nft")
    _add_devices(
        {"nftables": items}, lambda: _nft_binary_text(binary, "list", "chains") if binary else ""
    )


class LiveFirewall:
    """The live firewall as a :class:`Ruleset`, updated from change notifications."""

    def __init__(
        self,
        log: Callable[[str], None] | None = None,
        rule_feed: bool | None = None,
        prelisted: nftables.Prelisted | None = None,
        feed: RuleFeed | None = None,
    ) -> None:
        """`rule_feed`: take added rules from nft's monitor (system.nftmonitor) — None: once
        a chain's listing took FEED_AFTER or a full reading FEED_AFTER_FULL, or from the start
        for a table of nftmonitor.MANY_SETS sets (started before the first full reading,
        beside it: the monitor fills its cache meanwhile, ready for the first change); True:
        from the first change; False: never. `prelisted`: the biggest table, already listed
        (nftables.prelist), for the first reading; `feed`: the monitor, started before that
        listing (nftmonitor.early_feed)."""
        self.log = log or (lambda text: None)
        self._prelisted = prelisted
        self._feed: RuleFeed | None = feed
        self._feed_wanted = True if feed is not None else rule_feed
        self._feed_starts = 1 if feed is not None else 0
        self.stats = UpdateStats()
        self._tables: dict[TableKey, Table] = {}
        self._warnings: dict[TableKey, tuple[str, ...]] = {}
        self._legacy: tuple[Table, ...] = ()
        self._legacy_warnings: tuple[str, ...] = ()
        self._seen: int | None = None  # the last generation a notification announced
        self._unexplained: int | None = None  # a generation seen without its notification
        self._full_reason: str | None = "first reading"
        self.ruleset: Ruleset | None = None
        #: after an update: the kernel's generation is not the last one announced (a
        #: notification is on its way, or was lost: when two updates without changes, a
        #: moment apart, find the same generation unannounced, the second reads everything)
        self.unsettled = False
        self._changed = True
        #: the base chains' attributes the notifications being applied carried
        self._base_chains: dict[ObjectKey, BaseChain | None] = {}

    # -- the one entry point --
    def update(self, changes: RulesetChanges, legacy: bool = False) -> Ruleset:
        """The ruleset now, given what changed since the last update (`legacy`: the xtables
        lock was used). Raises CaptureError when the firewall cannot be read."""
        start = time.perf_counter()
        if changes.generation is not None:
            # the collector keeps its last NEWGEN: after lost messages and a full reading
            # that one is older than what the reading saw
            self._seen = max(self._seen or 0, changes.generation)
        reason = self._full_reason
        if reason is None and changes.lost:
            reason = "ruleset notifications were lost (the socket overran)"
        unexplained, self._unexplained = self._unexplained, None
        if reason is None and not changes:
            now = nftables.generation()
            if self._seen is not None and now != self._seen:
                # a notification may be on its way (committed a moment ago, not yet read):
                # only the same generation still unannounced at the next look is a loss
                if unexplained == now:
                    reason = f"the ruleset generation moved ({self._seen} → {now}) unannounced"
                else:
                    self._unexplained = now
        if reason is None:
            try:
                self._apply(changes)
            except _Full as why:
                reason = str(why)
        if reason is not None:
            if self.ruleset is not None:
                self.log(f"full capture: {reason}")
            self._read_all()
        elif legacy:
            self._read_legacy()
        self._check_settled()
        self.stats.last_seconds = time.perf_counter() - start
        return self._publish()

    def invalidate(self, reason: str) -> None:
        """Have the next update read everything."""
        self._full_reason = self._full_reason or reason

    def _check_settled(self) -> None:
        try:
            self.unsettled = self._seen is None or nftables.generation() != self._seen
        except (nftables.NftablesError, OSError):
            self.unsettled = True

    # -- full --
    def _read_all(self) -> None:
        """Everything, table by table: each table's JSON is parsed and freed before the next
        is listed, so the peak is the model plus one table's JSON (not the whole document's).
        The generation is read around it; if it moved, again (then the whole document)."""
        self._full_reason = "a full capture failed"
        started = time.perf_counter()
        if self._feed_wanted is None and self.ruleset is None and self._many_sets():
            self._feed_wanted = True
            self._rule_feed()
        for _ in range(nftables.ATTEMPTS):
            prelisted, self._prelisted = self._prelisted, None
            if prelisted is not None:
                before, listed = prelisted.generation, prelisted.tables
            else:
                before, listed = self._generation(), nftables.tables()
            tables: dict[TableKey, Table] = {}
            warnings: dict[TableKey, tuple[str, ...]] = {}
            try:
                # the biggest first: libnftables' own peak for it comes while the model is
                # still small (its memory goes back to the system after each table)
                for found in sorted(listed, key=lambda t: -t.use):
                    key = (found.family, found.name)
                    if prelisted is not None and found == prelisted.table:
                        read = self._table_now(key, prelisted.objects)
                        prelisted = None
                    else:
                        read = self._table_now(key)
                    nftables.trim_heap()
                    if read is None:
                        raise _Full("a table went away")
                    tables[key], warnings[key] = read
            except _Full:
                continue
            tables = {(t.family, t.name): tables[(t.family, t.name)] for t in listed}
            if self._generation() == before:
                break
        else:
            before = self._generation()
            tables, warnings = self._read_document()
        self._tables, self._warnings = tables, warnings
        self._read_legacy()
        self._seen = before if self._seen is None else max(self._seen, before)
        self._full_reason = None
        self._changed = True
        self.stats.full += 1
        if self._feed_wanted is None and time.perf_counter() - started >= FEED_AFTER_FULL:
            self._feed_wanted = True
        self._rule_feed()

    @staticmethod
    def _many_sets() -> bool:
        try:
            return max(nftables.set_counts().values(), default=0) >= MANY_SETS
        except (nftables.NftablesError, OSError):
            return False  # the reading says what is wrong

    @staticmethod
    def _generation() -> int:
        with reading_firewall():
            return nftables.generation()

    @staticmethod
    def _read_document() -> tuple[dict[TableKey, Table], dict[TableKey, tuple[str, ...]]]:
        """The whole document at once (nft retries ``list ruleset`` until it is consistent)."""
        doc = capture_firewall()
        nft = doc.pop("nft")
        for key in LEGACY_SAVES:
            doc.pop(key, None)
        parsed = parse_ruleset(_snapshot_of(nft.get("nftables", []), doc))
        del nft
        return {(t.family, t.name): t for t in parsed.tables}, {("", ""): parsed.warnings}

    def _read_legacy(self) -> None:
        saves = save_texts(LEGACY_SAVES)
        parsed = parse_ruleset(_snapshot_of([], saves))
        self._legacy = parsed.tables
        self._legacy_warnings = parsed.warnings
        self._changed = True

    # -- incremental --
    def _apply(self, changes: RulesetChanges) -> None:
        self._base_chains = changes.base_chains
        tables = set(changes.tables)
        done: set[ObjectKey] = set()  # chains read whole: their rule changes come with them

        def each(keys: Iterable[ObjectKey], read: Callable[[TableKey, str], None]) -> None:
            for family, table, name in keys:
                if (family, table) in tables or (family, table, name) in done:
                    continue
                try:
                    read((family, table), name)
                except _Reread:
                    tables.add((family, table))

        each(sorted(changes.deleted_chains), self._drop_chain)
        done |= changes.deleted_chains
        chains = {
            key
            for key in changes.chains
            if key[:2] in tables or not self._set_policy(key, changes.base_chains.get(key))
        }
        each(sorted(chains), self._read_chain)
        done |= chains
        added = changes.added_rules
        each(sorted(added), lambda key, chain: self._add_rules(key, chain, added[(*key, chain)]))
        done |= set(changes.added_rules)  # their order came from the kernel: deletions too
        for (family, table, name), handles in changes.deleted_rules.items():
            if (family, table) in tables or (family, table, name) in done:
                continue
            try:
                self._delete_rules((family, table), name, handles)
            except _Reread:
                tables.add((family, table))
        each(sorted(changes.sets), self._read_set)
        if tables:
            for key in tables:
                self._read_table(key)
            self._kernel_order()

    def _kernel_order(self) -> None:
        """The tables in the kernel's order (a table deleted and made again goes last). A
        table made or deleted since it was read is the business of its notification, on its
        way (the generation check catches one that is lost)."""
        order = [(t.family, t.name) for t in nftables.tables()]
        known = [key for key in order if key in self._tables]
        known += [key for key in self._tables if key not in set(order)]
        self._tables = {key: self._tables[key] for key in known}

    def _read_table(self, key: TableKey) -> None:
        self.stats.tables += 1
        read = self._table_now(key)
        if read is None:
            if key in {(t.family, t.name) for t in nftables.tables()}:
                raise _Full(f"table {key[0]} {key[1]} could not be listed")
            self._tables.pop(key, None)
            self._warnings.pop(key, None)
            self._changed = True
            return
        self._splice(key, read[0])
        self._warnings[key] = read[1]

    @staticmethod
    def _table_now(
        key: TableKey, stream: Iterator[Any] | None = None
    ) -> tuple[Table, tuple[str, ...]] | None:
        """One table read and parsed (None: it is not there); its objects are decoded one at
        a time as the parser takes them (nftables.list_stream: stateless, the model keeps no
        counter; `stream`: the table's objects, listed already)."""
        family, name = key
        if stream is None:
            what = {"table": {"family": family, "name": name}}
            with reading_firewall():
                try:
                    stream = nftables.list_stream(what, stateless=True)
                except nftables.NotListed:
                    return None
            nftables.trim_heap()  # libnftables' cache of the table, freed: back before the parse
        saves: dict[str, str] = {}
        if _is_iptables_nft(family, name):
            text = _run_text([_SAVE_TOOL[family], "-t", name])
            if text:
                saves[_SAVE_KEY[family]] = text
        snapshot = Snapshot(
            nft={"nftables": _with_devices(stream)},
            sysctl={},
            hotspots=(),
            uplinks=(),
            iptables_nft_save=saves.get("iptables_nft_save", ""),
            ip6tables_nft_save=saves.get("ip6tables_nft_save", ""),
        )
        try:
            parsed = parse_ruleset(snapshot)
        except nftables.NftablesError as error:
            raise CaptureError(str(error)) from None
        del snapshot, stream
        found = [t for t in parsed.tables if (t.family, t.name) == key]
        if not found:
            raise _Full(f"table {family} {name} listed empty")
        return found[0], parsed.warnings

    def _drop_chain(self, key: TableKey, name: str) -> None:
        """A deleted chain leaves the model: the kernel deletes only a chain that is empty
        (its rules' deletions were announced) and that nothing jumps to."""
        table = self._tables.get(key)
        if table is None:
            raise _Reread
        chain = table.chain(name)
        if chain is None:
            return  # made and deleted since the last reading
        if name in {c.name for c in _kernel_chains(key)}:
            raise _Reread  # deleted and made again: read what is there
        self._splice(key, replace(table, chains=tuple(c for c in table.chains if c is not chain)))

    def _set_policy(self, key: ObjectKey, event: BaseChain | None) -> bool:
        """A base chain the model has, changed itself (its policy: a chain's hook, type and
        priority cannot change): the policy its notification carried, nothing listed. False
        where the notification does not say it all (or says otherwise): list the chain."""
        table = self._tables.get(key[:2])
        chain = table.chain(key[2]) if table is not None else None
        if table is None or chain is None or event is None or chain.devices:
            return False
        if (chain.hook, chain.type, chain.priority) != (event.hook, event.type, event.priority):
            return False
        if chain.policy != event.policy:
            self.stats.policies += 1
            new = replace(chain, policy="drop" if event.policy == "drop" else "accept")
            chains = tuple(new if c is chain else c for c in table.chains)
            self._splice(key[:2], replace(table, chains=chains))
        return True

    def _read_chain(self, key: TableKey, name: str) -> None:
        """A chain made or changed itself: a new regular chain, or a base chain its
        notification describes, is made empty in the model (its rules come as added rules),
        any other is listed."""
        table = self._tables.get(key)
        if table is None:
            raise _Reread
        if table.chain(name) is None:
            kernel = _kernel_chains(key)
            here = {c.name for c in kernel}
            info = next((c for c in kernel if c.name == name), None)
            if info is None or not {c.name for c in table.chains} <= here:
                raise _Reread  # gone meanwhile, or a chain was renamed: the table's business
            event = self._base_chains.get((*key, name))
            kind = _CHAIN_TYPES.get(event.type) if event is not None else None
            made: Chain | None = None if info.base else Chain(name)
            if info.base and event is not None and kind is not None:
                # a new base chain as its notification describes it
                made = Chain(
                    name,
                    hook=event.hook,
                    type=kind,
                    priority=event.priority,
                    policy="drop" if event.policy == "drop" else "accept",
                )
            if made is not None:
                self.stats.chains += 1
                self._place(key, table, made, kernel)
                handles = _kernel_handles(key, name)
                if handles is None:
                    self._list_chain(key, name)
                elif handles:
                    self._add_rules(key, name, set(handles))
                return
        self._list_chain(key, name)

    def _place(
        self, key: TableKey, table: Table, chain: Chain, kernel: list[nftables.ChainInfo]
    ) -> None:
        """`chain` (new) in `table` at its place in the kernel's order."""
        by_name = {c.name: c for c in table.chains}
        by_name[chain.name] = chain
        ordered = tuple(by_name[c.name] for c in kernel if c.name in by_name)
        self._splice(key, replace(table, chains=ordered))

    def _list_chain(self, key: TableKey, name: str) -> None:
        """The chain listed through libnftables (with an iptables-nft chain's ``-S`` lines)."""
        table = self._tables.get(key)
        if table is None:
            raise _Reread
        family, table_name = key
        self.stats.chains += 1
        started = time.perf_counter()
        items = _list({"chain": {"family": family, "table": table_name, "name": name}})
        if items is None:
            raise _Reread
        self._listed(time.perf_counter() - started)
        if self._feed is not None:
            self._feed.forget(family, table_name, name)  # what it has of the chain is older
        _fill_devices(items)
        saves: dict[str, str] = {}
        if table.source == "iptables-nft":
            lines = _run_text([_LIST_TOOL[family], "-t", table_name, "-S", name])
            if lines is None:
                raise _Reread
            declared = "".join(f":{c.name} - [0:0]\n" for c in table.chains)
            body = "".join(line + "\n" for line in lines.splitlines() if line.startswith("-A "))
            saves[_SAVE_KEY[family]] = f"*{table_name}\n{declared}{body}COMMIT\n"
        parsed = parse_ruleset(_snapshot_of(items, saves))
        del items
        new = next((t.chain(name) for t in parsed.tables if (t.family, t.name) == key), None)
        if new is None:
            raise _Reread
        self._note_warnings(key, parsed.warnings)
        if table.chain(name) is None:
            self._place(key, table, new, _kernel_chains(key))
        else:
            self._splice(
                key,
                replace(table, chains=tuple(new if c.name == name else c for c in table.chains)),
            )

    def _note_warnings(self, key: TableKey, warnings: tuple[str, ...]) -> None:
        """What parsing a part of the table said, added to what the table's reading said."""
        if warnings:
            self._warnings[key] = tuple(dict.fromkeys((*self._warnings.get(key, ()), *warnings)))

    def _add_rules(self, key: TableKey, name: str, handles: set[int]) -> None:
        """Rules added to a chain (`handles`; a replaced rule keeps its handle): the chain's
        handles in the kernel's order (one netlink dump, no expressions), the rules the
        model has kept, the new ones as nft decoded them from the notifications
        (system.nftmonitor); a rule the feed does not have (or an iptables-nft chain, whose
        rules need their ``-S`` text) means listing the chain."""
        table = self._tables.get(key)
        chain = table.chain(name) if table is not None else None
        family, table_name = key
        if table is None or chain is None:
            self._read_chain(key, name)
            return
        feed = self._rule_feed()
        if feed is None or table.source != "nft" or _is_iptables_nft(family, table_name):
            self._list_chain(key, name)
            return
        order = _kernel_handles(key, name)
        if order is None:
            self._list_chain(key, name)
            return
        kept = {r.handle: r for r in chain.rules if r.handle is not None}
        missing = [h for h in order if h not in kept or h in handles]
        fed = feed.take(family, table_name, name, missing, FEED_WAIT) if missing else {}
        if len(fed) < len(missing):
            self.stats.unfed += 1
            self._list_chain(key, name)
            return
        head = [{"table": {"family": family, "name": table_name}}]
        head.append({"chain": {"family": family, "table": table_name, "name": name}})
        parsed = parse_ruleset(_snapshot_of([*head, *({"rule": r} for r in fed.values())], {}))
        new = next((t.chain(name) for t in parsed.tables if (t.family, t.name) == key), None)
        added = {r.handle: r for r in new.rules} if new is not None else {}
        if any(h not in added for h in missing):
            self._list_chain(key, name)
            return
        self.stats.fed += len(missing)
        self._note_warnings(key, parsed.warnings)
        rules = tuple(added[h] if h in added else kept[h] for h in order)
        self._splice(
            key,
            replace(
                table,
                chains=tuple(replace(c, rules=rules) if c is chain else c for c in table.chains),
            ),
        )

    # -- the rule feed --
    def _listed(self, seconds: float) -> None:
        """A chain's listing took `seconds`: past FEED_AFTER, new rules come from the feed."""
        if seconds >= FEED_AFTER and self._feed_wanted is None:
            self._feed_wanted = True
            self._rule_feed()  # from now: the rules added next are in it

    def _rule_feed(self) -> RuleFeed | None:
        if not self._feed_wanted:
            return None
        if self._feed is not None and self._feed.alive:
            return self._feed
        if self._feed is not None:
            self._feed.close()
            self._feed = None
            self.log("the nft monitor of new rules stopped: chains are listed again")
            if self._feed_starts >= FEED_STARTS:
                self._feed_wanted = False
                return None
        binary = _tool("nft")
        if binary is None:
            self._feed_wanted = False
            return None
        try:
            self._feed = RuleFeed(binary)
        except OSError as error:
            self.log(f"cannot start nft's monitor of new rules: {error}")
            self._feed_wanted = False
            return None
        self._feed_starts += 1
        return self._feed

    def close(self) -> None:
        """Stop the rule feed's child, if one runs."""
        if self._feed is not None:
            self._feed.close()
            self._feed = None

    def _delete_rules(self, key: TableKey, name: str, handles: set[int]) -> None:
        table = self._tables.get(key)
        chain = table.chain(name) if table is not None else None
        if table is None or chain is None:
            raise _Reread
        kept = tuple(r for r in chain.rules if r.handle not in handles)
        if len(chain.rules) - len(kept) != len(handles):
            self._list_chain(key, name)  # a handle the model does not know: read it
            return
        self.stats.deletions += len(handles)
        new = replace(chain, rules=kept)
        self._splice(
            key, replace(table, chains=tuple(new if c is chain else c for c in table.chains))
        )

    def _read_set(self, key: TableKey, name: str) -> None:
        table = self._tables.get(key)
        if table is None:
            raise _Reread
        family, table_name = key
        self.stats.sets += 1
        sets = dict(table.sets)
        what = {"family": family, "table": table_name, "name": name}
        items = _list({"map" if name in sets and sets[name].is_map else "set": what})
        if items is None and name not in sets:
            items = _list({"map": what})  # a new map
        if items is None:
            sets.pop(name, None)  # deleted
        else:
            items.insert(0, {"table": {"family": family, "name": table_name}})
            parsed = parse_ruleset(_snapshot_of(items, {}))
            found = next((t.sets.get(name) for t in parsed.tables), None)
            if found is None:
                sets.pop(name, None)
            else:
                sets[name] = found
        self._splice(key, replace(table, sets=sets))

    def _splice(self, key: TableKey, table: Table) -> None:
        self._tables[key] = table
        self._changed = True

    # -- the result --
    def _publish(self) -> Ruleset:
        if not self._changed and self.ruleset is not None:
            return self.ruleset
        self._changed = False
        warnings: list[str] = []
        for items in self._warnings.values():
            warnings += items
        warnings += self._legacy_warnings
        ruleset = Ruleset((*self._tables.values(), *self._legacy), tuple(dict.fromkeys(warnings)))
        if self.ruleset is not None:
            from hotspotguard.verdict import HookIndex  # the engine's, imported when used

            HookIndex.reusing(ruleset, self.ruleset)
        self.ruleset = ruleset
        return ruleset


def shared_interfaces(ruleset: Ruleset) -> list[str]:
    """Interfaces NetworkManager shares, from its tables in the model (nm-shared-IFACE, or
    nm-sh-fw-IFACE chains with its iptables backend): capture.shared_interfaces for a model."""
    found: list[str] = []
    for table in ruleset.tables:
        if table.name.startswith("nm-shared-"):
            found.append(table.name[len("nm-shared-") :])
        elif table.source != "nft":
            found += [
                c.name[len("nm-sh-fw-") :] for c in table.chains if c.name.startswith("nm-sh-fw-")
            ]
    return list(dict.fromkeys(i for i in found if IFNAME.match(i)))


def capture_model(
    ifaces: list[str] | None, prelisted: nftables.Prelisted | None = None
) -> tuple[Snapshot, Ruleset]:
    """The live machine as a snapshot (without the firewall's document) and the firewall's
    model, read table by table: what ``explain`` needs, at half the memory of the document
    (the snapshot file of ``hotspotguard snapshot`` still comes from capture_snapshot).
    `prelisted`: the biggest table, listed before the caller imported this module (see
    nftables.prelist)."""
    if ifaces:
        addresses = {iface: interface_addresses(iface) for iface in ifaces}
    ruleset = LiveFirewall(rule_feed=False, prelisted=prelisted).update(RulesetChanges())
    if not ifaces:
        addresses = existing_addresses(shared_interfaces(ruleset))
    return load_snapshot({**capture_machine(addresses), "nft": None}), ruleset
