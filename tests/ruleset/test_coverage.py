"""Parse coverage: every rule form nft(8) and iptables-extensions(8) document, loaded into a real
kernel (a network namespace of the test's own) and read back as the snapshot would, parses into
typed expressions. Prints the coverage figure; forms that still fall back to untyped are listed.

A form is typed when no match reads an `Opaque` key or value and no statement is a bare
`Uncertain` (a `Stateful` one — limit, quota, hashlimit, connbytes, ... — is typed: the engine
knows what it is and that its outcome depends on state no snapshot holds).
"""

from __future__ import annotations

import json
import os
import shlex
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest

from hotspotguard.ruleset.iptables import parse_rule_line
from hotspotguard.ruleset.model import Concat, Expr, Masked, Match, Opaque, Stateful, Uncertain
from hotspotguard.ruleset.nft import parse_nft
from hotspotguard.ruleset.render import rule_text

FORMS = Path(__file__).parent / "forms"
NFT_TABLE = """table inet t {
  set s { type ipv4_addr; flags dynamic,timeout; }
  map m { type ipv4_addr : verdict; }
  ct helper ftp { type "ftp" protocol tcp; }
  chain forward { type filter hook forward priority 0; }
  chain prerouting { type filter hook prerouting priority 0; }
  chain prerouting-nat { type nat hook prerouting priority -100; }
  chain postrouting-nat { type nat hook postrouting priority 100; }
}
"""

pytestmark = pytest.mark.skipif(
    os.geteuid() != 0 or not shutil.which("nft") or not shutil.which("unshare"),
    reason="loads rules into a network namespace of its own (root, nft, unshare)",
)


def _forms(name: str) -> list[str]:
    lines = (FORMS / name).read_text().splitlines()
    return [line for line in lines if line.strip() and not line.startswith("#")]


def _in_netns(script: str) -> str:
    """Run a shell script in a new, empty network namespace (gone when it ends)."""
    proc = subprocess.run(
        ["unshare", "--net", "sh", "-c", script], capture_output=True, text=True, timeout=300
    )
    return proc.stdout


def _untyped(expr: Expr) -> str | None:
    """Why `expr` is not typed, or None."""
    if isinstance(expr, Match):
        keys = expr.left.keys if isinstance(expr.left, Concat) else (expr.left,)
        for key in keys:
            inner = key.key if isinstance(key, Masked) else key
            if isinstance(inner, Opaque):
                return f"key {inner.description}"
        if isinstance(expr.right, Opaque):
            return f"value {expr.right.description}"
        return None
    if isinstance(expr, Uncertain) and not isinstance(expr, Stateful):
        return expr.description
    return None


def _coverage(parsed: list[tuple[str, list[Expr] | None]]) -> tuple[int, int, list[str]]:
    typed, loaded, gaps = 0, 0, []
    for form, exprs in parsed:
        if exprs is None:
            gaps.append(f"  (not loadable here) {form}")
            continue
        loaded += 1
        reasons = [r for r in map(_untyped, exprs) if r]
        if reasons:
            gaps.append(f"  {form}: {'; '.join(reasons)}")
        else:
            typed += 1
    return typed, loaded, gaps


def nft_parsed() -> list[tuple[str, list[Expr] | None]]:
    forms = _forms("nft.txt")
    script = []
    for number, form in enumerate(forms):
        chain = "forward"
        if form.startswith("@"):
            chain, form = form[1:].split(" ", 1)
        body = NFT_TABLE.replace(
            f"chain {chain} {{", f"chain {chain} {{\n    {form}\n  }}\n  chain unused{{", 1
        )
        script.append(
            f"nft flush ruleset; printf '%s' {shlex.quote(body)} | nft -f - 2>/dev/null"
            f" && echo {number} && nft -j list ruleset"
        )
    out = _in_netns("\n".join(script)).splitlines()
    documents: dict[int, dict[str, Any]] = {}
    for marker, doc in zip(out[::2], out[1::2], strict=False):
        documents[int(marker)] = json.loads(doc)
    parsed: list[tuple[str, list[Expr] | None]] = []
    for number, form in enumerate(forms):
        doc = documents.get(number)
        if doc is None:
            parsed.append((form, None))
            continue
        tables, _ = parse_nft(doc)
        rules = [r for t in tables for c in t.chains for r in c.rules]
        parsed.append((f"{form}  →  {rule_text(rules[0])}", list(rules[0].exprs)))
    return parsed


def iptables_parsed() -> list[tuple[str, list[Expr] | None]]:
    forms = _forms("iptables.txt")
    script = []
    for number, form in enumerate(forms):
        table, chain = "filter", "FORWARD"
        if form.startswith("@"):
            table, chain, form = form[1:].split(" ", 2)
        script.append(
            f"iptables-legacy -t {table} -F {chain};"
            f" iptables-legacy -t {table} -A {chain} {form} 2>/dev/null"
            f" && echo {number} && iptables-legacy-save -t {table} | grep -m1 -- '^-A {chain} '"
        )
    out = _in_netns("\n".join(script)).splitlines()
    lines = dict(zip((int(n) for n in out[::2]), out[1::2], strict=False))
    parsed: list[tuple[str, list[Expr] | None]] = []
    for number, form in enumerate(forms):
        line = lines.get(number)
        if line is None:
            parsed.append((form, None))
            continue
        rule = parse_rule_line(line, 4, frozenset())
        parsed.append((line, list(rule.exprs)))
    return parsed


def test_parse_coverage(capsys: pytest.CaptureFixture[str]) -> None:
    report = []
    totals = [0, 0]
    for name, parsed in (("nft", nft_parsed()), ("iptables", iptables_parsed())):
        typed, loaded, gaps = _coverage(parsed)
        totals[0] += typed
        totals[1] += loaded
        report.append(
            f"{name}: {typed}/{loaded} loaded forms typed ({100 * typed / max(loaded, 1):.1f}%),"
            f" {len(parsed) - loaded} not loadable in this kernel"
        )
        report += gaps
    figure = f"parse coverage: {totals[0]}/{totals[1]} ({100 * totals[0] / totals[1]:.1f}%)"
    with capsys.disabled():
        print("\n" + figure + "\n" + "\n".join(report))
    assert totals[1] > 200, "the forms did not load"
    assert totals[0] / totals[1] >= COVERAGE_FLOOR, figure + "\n" + "\n".join(report)


COVERAGE_FLOOR = 1.0  # measured: 247 of 247 loadable forms (100%)
