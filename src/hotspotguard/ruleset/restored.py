"""Rules files that a boot service restores with iptables-restore: Debian's netfilter-persistent
(iptables-persistent: /etc/iptables/rules.v4, rules.v6) and the iptables.service of Arch
(/etc/iptables/iptables.rules, ip6tables.rules) and Fedora (/etc/sysconfig/iptables,
ip6tables). A rule of the live firewall that such a file holds was put there by that service
at boot, so it, not "no known program", owns it.

The snapshot carries the files' texts (optional); rules are compared as the engine reads them
(typed expressions, in any order), so `-s 10.0.0.1 -p tcp --dport 22` in the file is the
`-s 10.0.0.1/32 -p tcp -m tcp --dport 22` that iptables-save prints.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from functools import cached_property

from hotspotguard.ruleset.iptables import parse_save
from hotspotguard.ruleset.model import Expr

# the programs and the files they restore, relative to the system configuration directory
RESTORERS: dict[str, tuple[tuple[str, str], ...]] = {
    "netfilter-persistent": (("ip", "iptables/rules.v4"), ("ip6", "iptables/rules.v6")),
    "iptables.service": (
        ("ip", "iptables/iptables.rules"),
        ("ip6", "iptables/ip6tables.rules"),
        ("ip", "sysconfig/iptables"),
        ("ip6", "sysconfig/ip6tables"),
    ),
}
MAX_TEXT = 64 * 1024 * 1024


class RestoredError(ValueError):
    """A `restored_rules` entry that is not one; the message is one line for a person."""


RuleKey = tuple[str, ...]


def rule_key(exprs: tuple[Expr, ...]) -> RuleKey:
    """A rule as a comparable value: its expressions in any order."""
    return tuple(sorted(repr(e) for e in exprs))


@dataclass(frozen=True)
class RestoredFile:
    program: str
    family: str  # "ip" or "ip6"
    path: str
    text: str

    @cached_property
    def chains(self) -> Mapping[tuple[str, str], tuple[str | None, frozenset[RuleKey]]]:
        """(table, chain) → (policy, the rules' keys)."""
        tables, _ = parse_save(self.text, 4 if self.family == "ip" else 6, "iptables-nft")
        return {
            (table.name, chain.name): (
                chain.policy if self._declares_policy(table.name, chain.name) else None,
                frozenset(rule_key(rule.exprs) for rule in chain.rules),
            )
            for table in tables
            for chain in table.chains
        }

    def _declares_policy(self, table: str, chain: str) -> bool:
        current = ""
        for line in self.text.splitlines():
            if line.startswith("*"):
                current = line[1:].strip()
            elif current == table and line.startswith(f":{chain} "):
                return line.split()[1] in {"ACCEPT", "DROP"}
        return False


def parse_restored(raw: object) -> tuple[RestoredFile, ...]:
    """`[{"program": P, "family": "ip"|"ip6", "path": F, "text": T}, ...]`, validated."""
    if raw is None:
        return ()
    if not isinstance(raw, list):
        raise RestoredError("'restored_rules' must be a list of rules files")
    files = []
    for index, item in enumerate(raw):
        where = f"restored_rules[{index}]"
        if not isinstance(item, dict) or not all(
            isinstance(item.get(k), str) for k in ("program", "family", "path", "text")
        ):
            raise RestoredError(f"{where} needs 'program', 'family', 'path' and 'text'")
        if item["program"] not in RESTORERS:
            known = ", ".join(sorted(RESTORERS))
            raise RestoredError(f"{where}: unknown program {item['program']!r} (known: {known})")
        if item["family"] not in {"ip", "ip6"}:
            raise RestoredError(f"{where}: the family is ip or ip6, not {item['family']!r}")
        if len(item["text"]) > MAX_TEXT:
            raise RestoredError(f"{where}: the rules file is larger than 64 MiB")
        files.append(RestoredFile(item["program"], item["family"], item["path"], item["text"]))
    return tuple(files)


def restoring_program(
    files: tuple[RestoredFile, ...],
    family: str,
    table: str,
    chain: str,
    exprs: tuple[Expr, ...] | None,
    policy: str | None = None,
) -> str | None:
    """The program whose rules file holds this rule (`exprs`), or declares this chain's
    `policy` (exprs None); None if none does."""
    key = rule_key(exprs) if exprs is not None else None
    for restored in files:
        if restored.family != family:
            continue
        found = restored.chains.get((table, chain))
        if found is None:
            continue
        declared, keys = found
        if key is not None and key in keys:
            return restored.program
        if key is None and policy is not None and declared == policy:
            return restored.program
    return None
