"""Changing the firewall: one `iptables-restore --noflush` commit per table iptables manages,
and kernel settings under /proc/sys.  Absolute paths, no shell, a clean environment; the rule
text comes from plans (never from a caller)."""

from __future__ import annotations

import contextlib
import hashlib
import os
import shlex
import subprocess

from hotspotguard.fixes.plan import RuleChange, Variant, rule_tag
from hotspotguard.ruleset.iptables import chain_lines
from hotspotguard.system import nftables

CLEAN_ENV = {"PATH": "/usr/sbin:/usr/bin:/sbin:/bin", "LC_ALL": "C"}
SBIN = "/usr/sbin"
TIMEOUT = 30.0


class FirewallError(RuntimeError):
    """A change the kernel or a tool refused; the message is one line for a person."""


def _tool(variant: Variant, family: int, verb: str) -> str:
    base = "iptables" if family == 4 else "ip6tables"
    return f"{SBIN}/{base}-{variant}-{verb}"


def _run(argv: list[str], stdin: str | None = None) -> str:
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
        raise FirewallError(f"{argv[0]} is not installed") from None
    except subprocess.TimeoutExpired:
        raise FirewallError(f"{argv[0]} did not finish in {TIMEOUT:.0f} s") from None
    if proc.returncode != 0:
        lines = [line for line in proc.stderr.splitlines() if line.strip()]
        detail = lines[0] if lines else f"exit code {proc.returncode}"
        raise FirewallError(f"{argv[0].rsplit('/', 1)[-1]} failed: {detail}")
    return proc.stdout


def save(variant: Variant, family: int, table: str) -> str:
    """`ip(6)tables-VARIANT-save -t TABLE` (empty when the table is not there)."""
    return _run([_tool(variant, family, "save"), "-t", table])


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
    _run([_tool(change.variant, change.family, "restore"), "--noflush", "--wait", "10"], text)


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
        raise FirewallError(f"cannot set {name}: {error.strerror or error}") from None


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


def generation(legacy_saves: list[str]) -> str:
    """A token that changes whenever the ruleset does: nftables' generation id (which covers
    iptables-nft) and a digest of the iptables-legacy tables, which nftables cannot see."""
    digest = hashlib.sha256("\0".join(legacy_saves).encode()).hexdigest()[:12]
    try:
        gen = nftables.generation()
    except OSError as error:
        raise FirewallError(f"cannot read the ruleset's generation: {error}") from None
    return f"{gen}-{digest}"
