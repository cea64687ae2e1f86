"""Fix-planning benchmark: every candidate fix planned and verified by the engine on big rulesets.

Run as root (from the repository, with the venv's Python)::

    .venv/bin/python benchmarks/bench_fixes.py            # 1k and 10k rules
    .venv/bin/python benchmarks/bench_fixes.py --sizes 1000,30000 --repeat 5

For each size it builds a fresh namespace (benchmarks/nslab.py), loads bigruleset.py's ruleset
(NetworkManager's hotspot table, Docker and ufw through iptables-nft, a large ``table inet
custom``), captures it with ``hotspotguard snapshot``, and prints, in this process: the engine's
verdict alone, and ``candidates`` (every strategy for every culprit planned and verified, the
Docker and ufw facts given), as medians.  Figures only: nothing is asserted; the namespaces are
always removed; the root namespace is never touched.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import bigruleset
import nslab
from bench_engine import load_ruleset
from hotspotguard.fixes.plan import HostFacts
from hotspotguard.fixes.strategies import candidates, verify_current
from hotspotguard.ruleset import load_snapshot, parse_ruleset


def median_seconds(fn: Callable[[], object], repeat: int) -> float:
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def measure(size: int, repeat: int, workdir: Path) -> dict[str, object]:
    with nslab.Lab(f"hgf{os.getpid()}-{size}") as lab:
        generated = bigruleset.generate(size)
        load_ruleset(lab, generated, workdir)
        snap = workdir / "snapshot.json"
        argv = [sys.executable, "-m", "hotspotguard", "snapshot", "--iface", "hs0", "-o", str(snap)]
        nslab.check(lab.argv(argv))
    snapshot = load_snapshot(json.loads(snap.read_text()))
    ruleset = parse_ruleset(snapshot)
    facts = HostFacts(version="28.0.1", ufw=True)
    listed = candidates(snapshot, ruleset, "hs0", facts)
    return {
        "rules": generated.counts.total,
        "verdict": verify_current(snapshot, ruleset, "hs0").verdict,
        "candidates": {c.strategy: c.works for c in listed},
        "engine_ms": 1000
        * median_seconds(lambda: verify_current(snapshot, ruleset, "hs0"), repeat),
        "candidates_ms": 1000
        * median_seconds(lambda: candidates(snapshot, ruleset, "hs0", facts), repeat),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="1000,10000")
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    if os.geteuid() != 0:
        sys.exit("bench_fixes: run as root (it builds network namespaces)")
    for size in (int(s) for s in args.sizes.split(",")):
        with tempfile.TemporaryDirectory(prefix="hg-bench-fixes-") as tmp:
            row = measure(size, args.repeat, Path(tmp))
        print(
            f"{row['rules']:>7} rules  verdict {row['verdict']}: engine {row['engine_ms']:.0f} ms, "
            f"every candidate planned and verified {row['candidates_ms']:.0f} ms  "
            f"{row['candidates']}"
        )


if __name__ == "__main__":
    main()
