"""The firewall as typed data, built from a snapshot document."""

from __future__ import annotations

from dataclasses import replace

from hotspotguard.gcpause import gc_paused
from hotspotguard.ruleset.iptables import BUILTIN_CHAINS, chain_rules, parse_save
from hotspotguard.ruleset.model import Chain, Rule, Ruleset, Table
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
        return _parse_ruleset(snapshot)


def _parse_ruleset(snapshot: Snapshot) -> Ruleset:
    tables, warnings = parse_nft(snapshot.nft)
    saves = {4: snapshot.iptables_nft_save, 6: snapshot.ip6tables_nft_save}
    filled: list[Table] = []
    gap_rules: dict[int, dict[tuple[str, str], list[Rule]]] = {}
    for table in tables:
        version = {"ip": 4, "ip6": 6}.get(table.family)
        if (
            version is None
            or table.name not in BUILTIN_CHAINS
            or not (saves[version] or any(has_xt(r) for c in table.chains for r in c.rules))
        ):
            filled.append(table)
            continue
        if version not in gap_rules:
            gap_rules[version] = chain_rules(saves[version], version) if saves[version] else {}
        table = _fill_xt(table, gap_rules[version], warnings)
        filled.append(table)
    for version, text in ((4, snapshot.iptables_legacy_save), (6, snapshot.ip6tables_legacy_save)):
        if text:
            legacy, legacy_warnings = parse_save(text, version, "iptables-legacy")
            filled.extend(legacy)
            warnings.extend(legacy_warnings)
    return Ruleset(tuple(filled), tuple(warnings))


def _fill_xt(table: Table, saved: dict[tuple[str, str], list[Rule]], warnings: list[str]) -> Table:
    """Replace the rules with opaque xt expressions by the same rules from the save text."""
    chains: list[Chain] = []
    for chain in table.chains:
        text_rules = saved.get((table.name, chain.name))
        if text_rules is not None and len(text_rules) == len(chain.rules):
            rules = tuple(
                replace(saved_rule, handle=rule.handle)
                if has_xt(rule)
                else replace(rule, text=saved_rule.text, comment=rule.comment or saved_rule.comment)
                for rule, saved_rule in zip(chain.rules, text_rules, strict=True)
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
