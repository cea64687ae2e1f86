"""The chains dialog's time to first paint on big rulesets (1k, 10k, 100k rules).

Run as root (from the repository, with the venv's Python)::

    .venv/bin/python benchmarks/bench_ui.py                  # 1k, 10k and 100k rules
    .venv/bin/python benchmarks/bench_ui.py --sizes 1000,10000
    .venv/bin/python benchmarks/bench_ui.py --snapshot fw.json   # a snapshot you have

For each size: a fresh namespace (benchmarks/nslab.py) gets a generated ruleset
(benchmarks/bigruleset.py: NetworkManager's hotspot table, Docker and ufw through iptables-nft,
a large ``table inet custom``), ``hotspotguard snapshot --iface hs0`` captures it, and this
process parses and evaluates it as the controller does. Then, offscreen, median of
``--repeat`` runs: the dialog from construction to the first paint of its tree (the target
is ≤ 300 ms), a search over every rule, and expanding the longest base chain. Figures only.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
sys.path.insert(0, str(Path(__file__).resolve().parent))

import bigruleset
import nslab

DEFAULT_SIZES = (1_000, 10_000, 100_000)
TARGET_SECONDS = 0.300


def capture(size: int, workdir: Path) -> Path:
    """Load a generated ruleset of `size` rules into a fresh namespace and snapshot it."""
    generated = bigruleset.generate(size)
    nft_file, ipt_file, ip6t_file = generated.write(workdir)
    snapshot = workdir / f"snapshot-{size}.json"
    with nslab.Lab(f"hgu{os.getpid()}-{size}") as lab:
        for argv in (
            ["iptables-nft-restore", "--noflush", str(ipt_file)],
            ["ip6tables-nft-restore", "--noflush", str(ip6t_file)],
            ["nft", "-f", str(nft_file)],
        ):
            nslab.check(lab.argv(argv), timeout=3600)
        command = [sys.executable, "-m", "hotspotguard", "snapshot", "--iface", "hs0"]
        nslab.check(lab.argv([*command, "-o", str(snapshot)]), timeout=3600)
    return snapshot


def measure(snapshot_path: Path, repeat: int) -> dict[str, Any]:
    from PySide6.QtCore import QModelIndex
    from PySide6.QtWidgets import QApplication

    from hotspotguard.ruleset import parse_ruleset, read_snapshot_file
    from hotspotguard.ui.chains import ChainsDialog
    from hotspotguard.verdict import evaluate

    app = QApplication.instance() or QApplication([])
    started = time.perf_counter()
    snapshot = read_snapshot_file(str(snapshot_path))
    ruleset = parse_ruleset(snapshot)
    report = evaluate(snapshot, ruleset)
    prepare = time.perf_counter() - started
    rules = sum(len(c.rules) for t in ruleset.tables for c in t.chains)
    paints: list[float] = []
    searches: list[float] = []
    expands: list[float] = []
    longest_rows: list[int] = []
    for _ in range(repeat):
        dialog = ChainsDialog(ruleset, report)
        dialog.show()
        while dialog.first_paint_seconds is None:
            app.processEvents()
        paints.append(dialog.first_paint_seconds)
        t = time.perf_counter()
        dialog.proxy.set_pattern("203.0.113.77")
        dialog.view.expandToDepth(1)
        app.processEvents()
        searches.append(time.perf_counter() - t)
        dialog.proxy.set_pattern("")
        proxy = dialog.proxy
        longest = max(
            (
                (proxy.rowCount(proxy.index(b, 0, proxy.index(h, 0, QModelIndex()))), h, b)
                for h in range(proxy.rowCount())
                for b in range(proxy.rowCount(proxy.index(h, 0)))
            ),
            default=None,
        )
        if longest is not None:
            hook = dialog.proxy.index(longest[1], 0)
            base = dialog.proxy.index(longest[2], 0, hook)
            t = time.perf_counter()
            dialog.view.expand(base)
            app.processEvents()
            expands.append(time.perf_counter() - t)
            longest_rows.append(longest[0])
        dialog.close()
        dialog.deleteLater()
        app.processEvents()
    return {
        "rules": rules,
        "prepare_seconds": prepare,
        "first_paint_seconds": statistics.median(paints),
        "first_paint_max_seconds": max(paints),
        "search_seconds": statistics.median(searches),
        "expand_seconds": statistics.median(expands) if expands else None,
        "longest_chain_rows": max(longest_rows, default=0),
        "verdict": report.hotspots[0].verdict if report.hotspots else None,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default=",".join(map(str, DEFAULT_SIZES)))
    parser.add_argument("--snapshot", type=Path, help="measure this snapshot instead")
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--json", action="store_true", help="print JSON")
    args = parser.parse_args(argv)
    results: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory(prefix="hg-bench-ui-") as tmp:
        workdir = Path(tmp)
        if args.snapshot:
            paths = [(0, args.snapshot)]
        else:
            if os.geteuid() != 0:
                print("bench_ui: needs root to build rulesets in a namespace", file=sys.stderr)
                return 2
            paths = []
            for size in (int(s) for s in args.sizes.split(",")):
                t = time.perf_counter()
                paths.append((size, capture(size, workdir)))
                print(f"[{size}] loaded and captured in {time.perf_counter() - t:.1f} s",
                      file=sys.stderr, flush=True)  # fmt: skip
        for size, path in paths:
            result = {"size": size, **measure(path, args.repeat)}
            results.append(result)
            if not args.json:
                paint = result["first_paint_seconds"]
                mark = "ok" if paint <= TARGET_SECONDS else "OVER TARGET"
                expand = result["expand_seconds"]
                print(
                    f"{result['rules']:>8,} rules: first paint {paint * 1000:7.1f} ms "
                    f"(max {result['first_paint_max_seconds'] * 1000:.1f}; target "
                    f"{TARGET_SECONDS * 1000:.0f} ms: {mark}), search "
                    f"{result['search_seconds'] * 1000:.1f} ms, expand the longest base chain "
                    f"({result['longest_chain_rows']:,} rows) {(expand or 0) * 1000:.1f} ms; "
                    "snapshot→report "
                    f"{result['prepare_seconds']:.2f} s",
                    flush=True,
                )
    if args.json:
        print(json.dumps(results, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
