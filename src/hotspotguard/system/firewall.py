"""Changing the firewall: one `iptables-restore --noflush` commit per table iptables manages,
and kernel settings under /proc/sys.  Absolute paths, no shell, a clean environment; the rule
text comes from plans (never from a caller)."""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import re
import shlex
import subprocess
from dataclasses import dataclass
from typing import Any

from hotspotguard.fixes.plan import RuleChange, Variant, rule_tag
from hotspotguard.ruleset.iptables import chain_lines
from hotspotguard.system import nftables
from hotspotguard.wording import Reason, reason_fields

NFT = "/usr/sbin/nft"
ATTEMPTS = 5
CLEAN_ENV = {"PATH": "/usr/sbin:/usr/bin:/sbin:/bin", "LC_ALL": "C"}
SBIN = "/usr/sbin"
TIMEOUT = 30.0


class FirewallError(RuntimeError):
    """A change the kernel or a tool refused; the message is one line for a person (a
    `wording.Reason` where it is ours: `reason_of` keeps its code and parameters)."""


def _tool(variant: Variant, family: int, verb: str) -> str:
    base = "iptables" if family == 4 else "ip6tables"
    return f"{SBIN}/{base}-{variant}-{verb}"


def _family(family: int) -> str:
    return "ip" if family == 4 else "ip6"


def step(code: str, **params: Any) -> dict[str, Any]:
    """What a tool is run for, as a `Reason`'s fields (``{step}`` in the tools' reasons)."""
    return reason_fields(Reason(code, **params))


def run(argv: list[str], stdin: str | None = None, *, step: dict[str, Any]) -> str:
    """A system tool's output (absolute path, no shell, clean environment, time limit).  A
    failure is a FirewallError whose reason is ours — which tool, what `step` it was run for
    (`step(…)`), its exit status — with the tool's first error line quoted as its detail."""
    tool = argv[0].rsplit("/", 1)[-1]
    try:
        proc = subprocess.run(
            argv,
            input=stdin,
            capture_output=True,
            text=True,
            env=CLEAN_ENV,
            timeout=TIMEOUT,
            check=False,
        )
    except FileNotFoundError:
        raise FirewallError(Reason("tool-missing", tool=argv[0], step=step)) from None
    except subprocess.TimeoutExpired:
        raise FirewallError(
            Reason("tool-timeout", tool=tool, seconds=round(TIMEOUT), step=step)
        ) from None
    if proc.returncode != 0:
        raise FirewallError(tool_failed(tool, proc.returncode, proc.stderr, step))
    return proc.stdout


def tool_failed(tool: str, status: int, output: str, step: dict[str, Any]) -> Reason:
    """A tool's failure as our reason, its first line of `output` quoted as the detail."""
    lines = [line.strip() for line in output.splitlines() if line.strip()]
    if not lines:
        return Reason("tool-failed-silently", tool=tool, status=status, step=step)
    return Reason("tool-failed", tool=tool, status=status, step=step, detail=lines[0][:300])


def save(variant: Variant, family: int, table: str) -> str:
    """`ip(6)tables-VARIANT-save -t TABLE` (empty when the table is not there)."""
    return run(
        [_tool(variant, family, "save"), "-t", table],
        step=step("step-read-table", family=_family(family), table=table),
    )


def tagged_rules(save_text: str, table: str, chain: str, fix_tag: str) -> list[str]:
    """The specs (after ``-A CHAIN``) of the rules in `chain` that carry `fix_tag`."""
    lines = chain_lines(save_text).get((table, chain), [])
    prefix = f"-A {chain} "
    return [line[len(prefix) :] for line in lines if rule_tag(line) == fix_tag]


def chain_exists(save_text: str, table: str, chain: str) -> bool:
    in_table = False
    for line in save_text.splitlines():
        if line.startswith("*"):
            in_table = line[1:].strip() == table
        elif in_table and line.startswith(f":{chain} "):
            return True
    return False


def same_rules(a: list[str] | tuple[str, ...], b: list[str] | tuple[str, ...]) -> bool:
    """Whether two lists of specs are the same rules in the same order (token-wise)."""
    return [shlex.split(x) for x in a] == [shlex.split(x) for x in b]


def commit(change: RuleChange, lines: list[str]) -> None:
    """Apply `lines` (``-I``/``-D`` commands) to `change`'s table in one atomic commit."""
    if not lines:
        return
    text = f"*{change.table}\n" + "".join(line + "\n" for line in lines) + "COMMIT\n"
    where = step("step-change-chain", family=_family(change.family), table=change.table,
                 chain=change.chain)  # fmt: skip
    run([_tool(change.variant, change.family, "restore"), "--noflush", "--wait", "10"], text,
        step=where)  # fmt: skip


def insert_lines(change: RuleChange) -> list[str]:
    return [f"-I {change.chain} {n} {rule}" for n, rule in enumerate(change.rules, 1)]


def delete_lines(chain: str, specs: list[str]) -> list[str]:
    return [f"-D {chain} {spec}" for spec in specs]


def read_sysctl(name: str) -> str | None:
    try:
        with open(_sysctl_path(name)) as handle:
            return handle.read().strip()
    except OSError:
        return None


def write_sysctl(name: str, value: str) -> None:
    try:
        with open(_sysctl_path(name), "w") as handle:
            handle.write(value)
    except OSError as error:
        detail = error.strerror or str(error)
        raise FirewallError(Reason("sysctl-not-set", name=name, detail=detail)) from None


#: a global switch -> the directory of the per-interface settings the kernel sets with it
LINKED = {"net.ipv4.ip_forward": "net.ipv4.conf", "net.ipv6.conf.all.forwarding": "net.ipv6.conf"}


def linked_settings(name: str) -> dict[str, str]:
    """The per-interface ``forwarding`` settings writing `name` also sets, with their values
    now (interfaces whose names hold a dot are left out: their sysctl names are ambiguous)."""
    prefix = LINKED.get(name)
    if prefix is None:
        return {}
    try:
        ifaces = os.listdir("/proc/sys/" + prefix.replace(".", "/"))
    except OSError:
        return {}
    names = [f"{prefix}.{iface}.forwarding" for iface in ifaces if "." not in iface]
    values = {other: read_sysctl(other) for other in names if other != name}
    return {other: value for other, value in sorted(values.items()) if value is not None}


def restore_settings(settings: tuple[tuple[str, str], ...]) -> None:
    """Write `settings` back; an interface gone since is skipped."""
    for name, value in settings:
        if read_sysctl(name) is not None and read_sysctl(name) != value:
            with contextlib.suppress(FirewallError):
                write_sysctl(name, value)


def _sysctl_path(name: str) -> str:
    if not name.startswith("net.") or "/" in name or ".." in name:
        raise FirewallError(f"not a network setting: {name}")
    return "/proc/sys/" + name.replace(".", "/")


_COUNTERS = re.compile(r"\[\d+:\d+\]")


def _ruleset_only(save: str) -> str:
    """A save's rules without what changes when nothing does: the "# Generated by … on
    <time>" comments and the packet counters of the chains' policies."""
    lines = (line for line in save.splitlines() if not line.startswith("#"))
    return "\n".join(_COUNTERS.sub("", line) for line in lines)


def generation(legacy_saves: list[str]) -> str:
    """A token that changes whenever the ruleset does: nftables' generation id (which covers
    iptables-nft) and a digest of the iptables-legacy tables, which nftables cannot see."""
    rules = "\0".join(_ruleset_only(save) for save in legacy_saves)
    digest = hashlib.sha256(rules.encode()).hexdigest()[:12]
    try:
        gen = nftables.generation()
    except OSError as error:
        detail = error.strerror or str(error)
        raise FirewallError(Reason("generation-unread", detail=detail)) from None
    return f"{gen}-{digest}"


# --- the identity of the rules a fix added -----------------------------------------------------


@dataclass(frozen=True)
class AddedRule:
    """One rule a fix added, as it was found right after the commit: its full spec, its
    nftables handle (iptables-nft; unique in the table, never reused) and its position (1 = the
    top; for iptables-legacy, which has no handles, the position and the text are all there is).

    A rule carrying the fix's tag that is not one of these is a look-alike: never ours to
    delete."""

    spec: str
    handle: int | None
    position: int

    def to_json(self) -> dict[str, Any]:
        return {"spec": self.spec, "handle": self.handle, "position": self.position}

    @staticmethod
    def from_json(doc: Any) -> AddedRule:
        if not isinstance(doc, dict):
            raise ValueError("not a recorded rule")
        handle = doc.get("handle")
        return AddedRule(
            str(doc["spec"]),
            handle if isinstance(handle, int) else None,
            int(doc["position"]),
        )


@dataclass(frozen=True)
class ChainListing:
    """A chain's rules, in order: (spec, handle or None), read at nftables generation
    `generation` (None for iptables-legacy, which nftables cannot see)."""

    rules: tuple[tuple[str, int | None], ...]
    generation: int | None
    exists: bool


def _same(a: str, b: str) -> bool:
    try:
        return shlex.split(a) == shlex.split(b)
    except ValueError:
        return a == b


def _nft_handles(family: int, table: str, chain: str) -> list[int]:
    where = step("step-read-chain", family=_family(family), table=table, chain=chain)
    out = run([NFT, "-j", "-a", "list", "chain", _family(family), table, chain], step=where)
    try:
        doc = json.loads(out)
    except ValueError:
        raise FirewallError(Reason("tool-unreadable", tool="nft", step=where)) from None
    return [
        int(item["rule"]["handle"])
        for item in doc.get("nftables", [])
        if isinstance(item, dict) and "rule" in item
    ]


def list_chain(change: RuleChange) -> ChainListing:
    """The rules of `change`'s chain now, with their handles (one consistent reading)."""
    prefix = f"-A {change.chain} "
    for _ in range(ATTEMPTS):
        gen = nftables.generation() if change.variant == "nft" else None
        text = save(change.variant, change.family, change.table)
        exists = chain_exists(text, change.table, change.chain)
        lines = chain_lines(text).get((change.table, change.chain), [])
        specs = [line[len(prefix) :] for line in lines]
        if change.variant == "legacy" or not exists:
            return ChainListing(tuple((spec, None) for spec in specs), gen, exists)
        handles = _nft_handles(change.family, change.table, change.chain)
        if nftables.generation() == gen and len(handles) == len(specs):
            return ChainListing(tuple(zip(specs, handles, strict=True)), gen, exists)
    raise FirewallError(Reason("firewall-busy"))


def locate(
    listing: ChainListing, added: list[AddedRule], taken: set[int] | None = None
) -> list[int | None]:
    """Where each of `added` is now (0-based index in `listing`), None when it is gone.

    With a handle, only the rule of that handle with the same text is ours.  Without
    (iptables-legacy), the rule of the same text nearest its recorded position."""
    taken = set() if taken is None else set(taken)  # positions that are not these rules
    found: list[int | None] = []
    for rule in added:
        where: int | None = None
        if rule.handle is not None:
            where = next(
                (
                    i
                    for i, (spec, handle) in enumerate(listing.rules)
                    if handle == rule.handle and _same(spec, rule.spec)
                ),
                None,
            )
        else:
            candidates = [
                i
                for i, (spec, _) in enumerate(listing.rules)
                if i not in taken and _same(spec, rule.spec)
            ]
            if candidates:
                where = min(candidates, key=lambda i: abs(i + 1 - rule.position))
        if where is not None:
            taken.add(where)
        found.append(where)
    return found


def look_alikes(listing: ChainListing, ours: list[int | None], fix_tag: str) -> list[str]:
    """The specs of rules carrying `fix_tag` that are not ours."""
    mine = {i for i in ours if i is not None}
    return [
        spec
        for i, (spec, _) in enumerate(listing.rules)
        if i not in mine and rule_tag(spec) == fix_tag
    ]


def delete_positions(chain: str, positions: list[int]) -> list[str]:
    """``-D CHAIN N`` lines for 0-based `positions`, bottom first (the others keep their N)."""
    return [f"-D {chain} {i + 1}" for i in sorted(set(positions), reverse=True)]


def commit_on(change: RuleChange, listing: ChainListing, lines: list[str]) -> None:
    """`commit` if the ruleset is still the one `listing` was read from (iptables-nft); the
    positions in `lines` were computed from it."""
    if not lines:
        return
    if listing.generation is not None and nftables.generation() != listing.generation:
        raise Moved("the firewall changed while the fix was being changed: try again")
    commit(change, lines)


class Moved(FirewallError):
    """The ruleset moved between reading a chain and committing to it; nothing was changed."""


def added_at_top(change: RuleChange) -> list[AddedRule]:
    """The identities of `change`'s rules just inserted at the top of its chain (the first run
    of them from the top: another tool may have inserted above them meanwhile)."""
    listing = list_chain(change)
    count = len(change.rules)
    for start in range(len(listing.rules) - count + 1):
        run = listing.rules[start : start + count]
        if all(_same(spec, rule) for (spec, _), rule in zip(run, change.rules, strict=True)):
            return [AddedRule(spec, handle, start + n) for n, (spec, handle) in enumerate(run, 1)]
    raise FirewallError(f"{change.table} {change.chain} changed right after the fix's commit")
