"""The firewall as typed data, built from a snapshot document."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import replace

from hotspotguard.gcpause import gc_paused
from hotspotguard.ruleset.iptables import (
    BUILTIN_CHAINS,
    chain_lines,
    declared_chains,
    parse_rule_line,
    parse_save,
)
from hotspotguard.ruleset.model import Chain, Ruleset, Table, forget_interned
from hotspotguard.ruleset.nft import has_xt, parse_nft
from hotspotguard.ruleset.snapshot import (
    FORMAT,
    Hotspot,
    Snapshot,
    SnapshotError,
    load_snapshot,
    read_snapshot_file,
)

__all__ = [
    "FORMAT",
    "Hotspot",
    "Ruleset",
    "Snapshot",
    "SnapshotError",
    "load_snapshot",
    "parse_ruleset",
    "read_snapshot_file",
]


def parse_ruleset(snapshot: Snapshot) -> Ruleset:
    """Everything the kernel runs: nft tables (iptables-nft's xt gaps filled from the save
    texts) followed by the iptables-legacy tables, which nft cannot see."""
    with gc_paused():
        try:
            return _parse_ruleset(snapshot)
        finally:
            forget_interned()


def _parse_ruleset(snapshot: Snapshot) -> Ruleset:
    tables, warnings = parse_nft(snapshot.nft)
    if snapshot.ingress_devices:
        tables = [_with_ingress_devices(t, snapshot.ingress_devices) for t in tables]
    saves = {4: snapshot.iptables_nft_save, 6: snapshot.ip6tables_nft_save}
    filled: list[Table] = []
    gap_lines: dict[int, tuple[dict[tuple[str, str], list[str]], dict[str, frozenset[str]]]] = {}
    for table in tables:
        version = {"ip": 4, "ip6": 6}.get(table.family)
        if (
            version is None
            or table.name not in BUILTIN_CHAINS
            or not (saves[version] or any(has_xt(r) for c in table.chains for r in c.rules))
        ):
            filled.append(table)
            continue
        if version not in gap_lines:
            text = saves[version]
            gap_lines[version] = (chain_lines(text), declared_chains(text))
        lines, declared = gap_lines[version]
        table = _fill_xt(table, version, lines, declared.get(table.name, frozenset()), warnings)
        filled.append(table)
    for version, text in ((4, snapshot.iptables_legacy_save), (6, snapshot.ip6tables_legacy_save)):
        if text:
            legacy, legacy_warnings = parse_save(text, version, "iptables-legacy")
            filled.extend(legacy)
            warnings.extend(legacy_warnings)
    return Ruleset(tuple(filled), tuple(warnings))


def _with_ingress_devices(
    table: Table, devices: Mapping[tuple[str, str, str], tuple[str, ...]]
) -> Table:
    """Give ingress chains that name no device in the nft document the devices the snapshot
    carries for them (nft 1.0.x's JSON leaves them out)."""
    missing = [
        index
        for index, chain in enumerate(table.chains)
        if chain.hook == "ingress"
        and not chain.devices
        and (table.family, table.name, chain.name) in devices
    ]
    if not missing:
        return table
    chains = list(table.chains)
    for index in missing:
        chains[index] = replace(
            chains[index], devices=devices[(table.family, table.name, chains[index].name)]
        )
    return replace(table, chains=tuple(chains))


def _fill_xt(
    table: Table,
    version: int,
    saved: dict[tuple[str, str], list[str]],
    declared: frozenset[str],
    warnings: list[str],
) -> Table:
    """Give an iptables-nft table's rules their save lines as text, and replace the rules with
    opaque xt expressions by the same rules parsed from those lines (only those: parsing
    50,000 lines that nft's JSON already describes would be wasted)."""
    chains: list[Chain] = []
    for chain in table.chains:
        lines = saved.get((table.name, chain.name), [])
        if len(lines) == len(chain.rules):
            rules = tuple(
                replace(parse_rule_line(line, version, declared), handle=rule.handle)
                if has_xt(rule)
                else replace(rule, text=line)
                for rule, line in zip(chain.rules, lines, strict=True)
            )
            chains.append(replace(chain, rules=rules))
        elif any(has_xt(r) for r in chain.rules):
            warnings.append(
                f"{table.family} {table.name} {chain.name}: iptables matches could not be read "
                "(no matching iptables-nft-save text); those rules are uncertain"
            )
            chains.append(chain)
        else:
            chains.append(chain)
    return replace(table, chains=tuple(chains), source="iptables-nft")
