"""Editing rules in nftables tables: one chain's rules with their handles, and a batch of
commands applied as one nft transaction (JSON in, so any table or chain name works, keywords
included).  Absolute path, no shell, a clean environment."""

from __future__ import annotations

import json
from typing import Any

from hotspotguard.system import firewall
from hotspotguard.system.firewall import NFT, FirewallError
from hotspotguard.wording import Reason


def _nft_json(commands: list[dict[str, Any]], step: dict[str, Any]) -> str:
    return firewall.run([NFT, "-j", "-f", "-"], json.dumps({"nftables": commands}), step=step)


def chain_rules(family: str, table: str, chain: str) -> list[dict[str, Any]] | None:
    """The rule objects of a chain (each with its ``handle``, ``expr``, maybe ``comment``), in
    order; None when the chain is not there."""
    what = {"chain": {"family": family, "table": table, "name": chain}}
    step = firewall.step("step-read-chain", family=family, table=table, chain=chain)
    try:
        output = _nft_json([{"list": what}], step)
    except FirewallError as error:
        if "No such file or directory" in str(error):
            return None
        raise
    try:
        items = json.loads(output).get("nftables", [])
    except (ValueError, AttributeError):
        raise FirewallError(Reason("tool-unreadable", tool="nft", step=step)) from None
    rules = [item["rule"] for item in items if isinstance(item, dict) and "rule" in item]
    return [rule for rule in rules if isinstance(rule, dict)]


def transaction(commands: list[dict[str, Any]], family: str, table: str, chain: str) -> None:
    """Apply `commands` (``insert``/``add``/``delete`` of rules in `family` `table` `chain`)
    atomically: all or none."""
    if commands:
        _nft_json(commands, firewall.step("step-change-chain", family=family, table=table,
                                          chain=chain))  # fmt: skip


def rule_object(
    family: str,
    table: str,
    chain: str,
    *,
    expr: list[Any] | None = None,
    handle: int | None = None,
    comment: str | None = None,
) -> dict[str, Any]:
    """A rule as nft's JSON names it (`handle`: which rule to insert before or delete)."""
    body: dict[str, Any] = {"family": family, "table": table, "chain": chain}
    if handle is not None:
        body["handle"] = handle
    if expr is not None:
        body["expr"] = expr
    if comment is not None:
        body["comment"] = comment
    return {"rule": body}
