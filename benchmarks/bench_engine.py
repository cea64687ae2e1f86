"""Engine benchmark: a realistic big ruleset in a namespace, the floor, and hotspotguard end to end.

Run as root (from the repository, with the venv's Python)::

    .venv/bin/python benchmarks/bench_engine.py                 # 1k, 10k and 100k rules
    .venv/bin/python benchmarks/bench_engine.py --quick         # 1k and 10k
    .venv/bin/python benchmarks/bench_engine.py --sizes 1000,30000 --repeat 3 --json > run.json
    .venv/bin/python benchmarks/bench_engine.py --from-json run.json   # the tables again

Other options: ``--skip pyroute2,nft_text`` (steps by name), ``--no-anon-sets`` (the custom table
without ``{ … }`` sets), ``--keep DIR`` (copy each captured snapshot), ``--timeout`` (per probe).

For each size it builds a fresh namespace (``hgb<pid>-<n>-host`` with ``hs0``/``up0``), loads a
generated ruleset (bigruleset.py: NetworkManager's hotspot table, Docker and ufw through
iptables-nft, a large ``table inet custom``), and prints, measured in the same run:

- the floor: ``nft -j list ruleset`` (a child) + ``json.loads``; also with the GC paused;
- ``iptables-nft-save`` + ``ip6tables-nft-save`` alone, and all three in parallel;
- capture prototypes: one libnftables ``list table`` per table (the table list from netlink),
  and the same with iptables-nft's tables taken from the save tools only;
- libnftables in-process; a raw nfnetlink dump (one dump of all rules, per chain, 2 sockets) and
  the generation id; pyroute2's nftables dump; ``nft list ruleset`` (text), per-table listings;
- hotspotguard: ``capture_snapshot``, ``load_snapshot``, ``parse_ruleset``, ``evaluate`` (medians),
  the ``snapshot`` and ``explain`` commands, and ``explain --iface hs0 --json`` live end to end
  with its peak RSS (target at 100,000 rules: ≤ 450 MiB);
- the watcher's first reading (``status --watch`` as root until its first state): time and
  peak RSS.

Figures only: nothing is asserted. Namespaces and child processes are always removed (also on
Ctrl-C or SIGTERM); the root namespace is never touched.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import shutil
import signal
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from types import FrameType
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

import bigruleset
import nslab

HERE = Path(__file__).resolve().parent

Json = dict[str, Any]
DEFAULT_SIZES = (1_000, 10_000, 100_000)
QUICK_SIZES = (1_000, 10_000)
E2E_TARGET = 1.3  # × the floor
EVAL_TARGET = 0.020  # seconds
RSS_TARGET_MIB = 450  # explain's peak RSS at RSS_TARGET_SIZE rules (issue 14)
RSS_TARGET_SIZE = 100_000
#: the watcher's first reading: ``status --watch --iface hs0 --json`` as root, its own imports
#: in its own order, ended at its first state by SIGTERM (its way out: its nft monitor, a child
#: with less memory, is stopped and reaped; the figure is the process tree's peak)
WATCH_FIRST = """
import os, signal, sys
class FirstState:
    def write(self, text): pass
    def flush(self):
        sys.stdout = sys.__stdout__
        os.kill(os.getpid(), signal.SIGTERM)
sys.stdout = FirstState()
from hotspotguard.cli import main
sys.exit(main(["status", "--watch", "--iface", "hs0", "--json"]))
"""
PROBE = HERE / "nsprobe.py"
NA = "n/a"


def log(*parts: object) -> None:
    print(*parts, file=sys.stderr, flush=True)


# ---------------------------------------------------------------------------------------------
# figures
# ---------------------------------------------------------------------------------------------


def dig(data: Any, *path: str) -> Any:
    """``data[path[0]][path[1]]…``, or None when anything is missing or an error."""
    for key in path:
        if not isinstance(data, dict) or key not in data:
            return None
        data = data[key]
    return data


def seconds(data: Any, *path: str) -> float | None:
    value = dig(data, *path, "seconds") if path or isinstance(data, dict) else None
    if isinstance(value, (int, float)) and not math.isnan(value):
        return float(value)
    return None


#: exit codes of `hotspotguard explain` that are answers: 0 all fine, 1 a hotspot is blocked
EXPLAIN_OK = (0, 1)


def problem(data: Any, *path: str, ok: tuple[int, ...] = (0,)) -> str | None:
    """Why a figure is missing (the probe's error), if it is."""
    node = dig(data, *path) if path else data
    if node is None:
        return "not measured"
    if isinstance(node, dict):
        if "error" in node:
            return str(node["error"]).splitlines()[0][:120]
        if node.get("returncode") not in (None, *ok):
            return f"exit {node['returncode']}: {str(node.get('stderr', '')).strip()[-120:]}"
    return None


def fmt_s(value: float | None) -> str:
    if value is None:
        return NA
    if value < 1:
        return f"{value * 1e3:.1f} ms"
    return f"{value:.2f} s"


def fmt_mib(kib: Any) -> str:
    return f"{kib / 1024:.0f} MiB" if isinstance(kib, (int, float)) and kib else NA


def fmt_ratio(value: float | None) -> str:
    return f"{value:.2f}×" if value is not None else NA


def ratio(a: float | None, b: float | None) -> float | None:
    return a / b if a is not None and b else None


# ---------------------------------------------------------------------------------------------
# one size
# ---------------------------------------------------------------------------------------------


class Runner:
    """Runs probes inside one lab's host namespace."""

    def __init__(self, lab: nslab.Lab, reps: int, timeout: float) -> None:
        self.lab = lab
        self.reps = reps
        self.timeout = timeout

    def probe(self, name: str, *options: str, argv: list[str] | None = None) -> Json:
        cmd = [sys.executable, str(PROBE), name, "--reps", str(self.reps), *options]
        if argv:
            cmd += ["--", *argv]
        res = nslab.run(self.lab.argv(cmd), timeout=self.timeout)
        if res.timed_out:
            return {"error": f"timed out after {self.timeout:.0f} s"}
        lines = res.stdout.decode(errors="replace").strip().splitlines()
        try:
            data = json.loads(lines[-1])
        except (IndexError, json.JSONDecodeError):
            tail = res.stderr.decode(errors="replace").strip()[-300:]
            return {"error": f"probe {name} failed ({res.returncode}): {tail}"}
        return data if isinstance(data, dict) else {"error": f"unexpected output {data!r}"}


def load_ruleset(lab: nslab.Lab, generated: bigruleset.GeneratedRuleset, workdir: Path) -> Json:
    nft_file, ipt_file, ip6t_file = generated.write(workdir)
    out: Json = {}
    # boot order: ufw and Docker (iptables-nft) first, the custom table, then the hotspot
    for name, argv in (
        ("iptables-nft-restore", ["iptables-nft-restore", "--noflush", str(ipt_file)]),
        ("ip6tables-nft-restore", ["ip6tables-nft-restore", "--noflush", str(ip6t_file)]),
        ("nft -f", ["nft", "-f", str(nft_file)]),
    ):
        res = nslab.check(lab.argv(argv), timeout=3600)
        out[name] = res.seconds
    out["seconds"] = sum(out.values())
    out["bytes"] = {p.name: p.stat().st_size for p in (nft_file, ipt_file, ip6t_file)}
    return out


def measure_size(lab: nslab.Lab, size: int, args: argparse.Namespace, workdir: Path) -> Json:
    reps = args.repeat or (3 if size <= 10_000 else 1)
    result: Json = {"size": size, "reps": reps, "loadavg_before": os.getloadavg()}
    t = time.perf_counter()
    generated = bigruleset.generate(size, seed=args.seed, anonymous_sets=not args.no_anon_sets)
    result["generate_seconds"] = time.perf_counter() - t
    result["counts"] = generated.counts.as_dict()
    log(f"[{size}] loading {generated.counts.total} rules into {lab.host} …")
    result["load"] = load_ruleset(lab, generated, workdir)
    runner = Runner(lab, reps, args.timeout)
    py = sys.executable
    snap = workdir / "snapshot.json"
    cli_snap = workdir / "snapshot-cli.json"
    steps: list[tuple[str, Callable[[], Json]]] = [
        ("floor", lambda: runner.probe("nft_json")),
        ("iptables_save", lambda: runner.probe("iptables_save")),
        ("parallel_capture", lambda: runner.probe("parallel_capture")),
        ("table_capture", lambda: runner.probe("table_capture")),
        ("split_capture", lambda: runner.probe("split_capture")),
        ("libnftables", lambda: runner.probe("libnftables")),
        ("netlink_raw", lambda: runner.probe("netlink_raw")),
        ("pyroute2", lambda: runner.probe("pyroute2")),
        ("nft_text", lambda: runner.probe("nft_text")),
        ("nft_per_table", lambda: runner.probe("nft_per_table")),
        ("startup_python", lambda: runner.probe("cli", argv=[py, "-c", "pass"])),
        (
            "startup_import",
            lambda: runner.probe("cli", argv=[py, "-c", "import hotspotguard.cli, pyroute2"]),
        ),
        ("engine", lambda: runner.probe("engine", "--snapshot", str(snap), "--iface", "hs0")),
        (
            "cli_snapshot",
            lambda: runner.probe(
                "cli",
                argv=[py, "-m", "hotspotguard", "snapshot", "--iface", "hs0", "-o", str(cli_snap)],
            ),
        ),
        (
            "cli_explain_file",
            lambda: (
                runner.probe(
                    "cli",
                    argv=[py, "-m", "hotspotguard", "explain", "--snapshot", str(snap), "--json"],
                )
                if snap.exists()
                else {"error": "no snapshot captured"}
            ),
        ),
        (
            "cli_explain_live",
            lambda: runner.probe(
                "cli", argv=[py, "-m", "hotspotguard", "explain", "--iface", "hs0", "--json"]
            ),
        ),
        (
            "explain_rss",
            lambda: runner.probe("inproc_rss", argv=["explain", "--iface", "hs0", "--json"]),
        ),
        ("watch_first", lambda: runner.probe("cli", argv=[py, "-c", WATCH_FIRST])),
    ]
    for name, step in steps:
        if name in args.skip:
            continue
        log(f"[{size}] {name} …")
        t = time.perf_counter()
        result[name] = step()
        log(f"[{size}] {name}: {time.perf_counter() - t:.1f} s")
    result["loadavg_after"] = os.getloadavg()
    if args.keep and snap.exists():
        args.keep.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(snap, args.keep / f"snapshot-{size}.json")
    return result


# ---------------------------------------------------------------------------------------------
# report
# ---------------------------------------------------------------------------------------------


def figures(r: Json) -> Json:
    """The headline figures of one size (seconds; None when not available)."""
    floor = seconds(r, "floor")
    e2e = (
        seconds(r, "cli_explain_live")
        if not problem(r, "cli_explain_live", ok=EXPLAIN_OK)
        else None
    )
    return {
        "size": r["size"],
        "load": seconds(r, "load"),
        "floor": floor,
        "floor_gc_paused": dig(r, "floor", "seconds_gc_paused"),
        "nft": dig(r, "floor", "nft_seconds"),
        "json_loads": dig(r, "floor", "loads_seconds"),
        "json_loads_gc_paused": dig(r, "floor", "loads_gc_paused_seconds"),
        "iptables_save": seconds(r, "iptables_save"),
        "parallel_capture": seconds(r, "parallel_capture"),
        "split_capture": seconds(r, "split_capture"),
        "table_capture": seconds(r, "table_capture"),
        "startup_python": seconds(r, "startup_python"),
        "startup_import": seconds(r, "startup_import"),
        "libnftables": seconds(r, "libnftables"),
        "netlink_one_dump": seconds(r, "netlink_raw", "one_dump"),
        "netlink_one_dump_rules": dig(r, "netlink_raw", "one_dump", "rules_seconds"),
        "netlink_one_dump_recvs": dig(r, "netlink_raw", "one_dump", "rules_recvs"),
        "netlink_per_chain": seconds(r, "netlink_raw", "per_chain"),
        "netlink_per_chain_2": seconds(r, "netlink_raw", "per_chain_2_sockets"),
        "netlink_set_elements": dig(r, "netlink_raw", "per_chain", "set_elements_seconds"),
        "pyroute2": seconds(r, "pyroute2"),
        "nft_text": seconds(r, "nft_text", "text"),
        "nft_per_table": seconds(r, "nft_per_table", "sequential"),
        "nft_per_table_parallel": seconds(r, "nft_per_table", "parallel"),
        "capture": seconds(r, "engine", "capture"),
        "load_snapshot": seconds(r, "engine", "load"),
        "parse": seconds(r, "engine", "parse"),
        "evaluate": seconds(r, "engine", "evaluate"),
        "cli_snapshot": seconds(r, "cli_snapshot") if not problem(r, "cli_snapshot") else None,
        "cli_explain_file": seconds(r, "cli_explain_file")
        if not problem(r, "cli_explain_file", ok=EXPLAIN_OK)
        else None,
        "explain_e2e": e2e,
        "e2e_vs_floor": ratio(e2e, floor),
        "e2e_vs_floor_gc_paused": ratio(e2e, dig(r, "floor", "seconds_gc_paused")),
        "explain_peak_rss_kib": dig(r, "cli_explain_live", "maxrss_kib"),
        "explain_python_rss_kib": dig(r, "explain_rss", "vm_hwm_kib"),
        "watch_first": seconds(r, "watch_first") if not problem(r, "watch_first") else None,
        "watch_first_rss_kib": dig(r, "watch_first", "maxrss_kib"),
        "nft_peak_rss_kib": dig(r, "floor", "nft_maxrss_kib"),
        "libnftables_rss_kib": dig(r, "libnftables", "vm_hwm_kib"),
        "json_bytes": dig(r, "floor", "bytes"),
        "snapshot_bytes": dig(r, "engine", "snapshot_bytes"),
        "rules_listed": dig(r, "floor", "rules"),
        "xt_rules": dig(r, "floor", "xt_rules"),
        "anonymous_sets": dig(r, "netlink_raw", "one_dump", "anonymous_sets"),
    }


def verdicts(r: Json) -> str:
    found = dig(r, "engine", "evaluate", "verdicts") or []
    return "; ".join(
        f"{v.get('iface')} {v.get('verdict')}"
        + (f" by {v['blocked_by']}" if v.get("blocked_by") else "")
        for v in found
    )


def print_size(r: Json) -> None:
    f = figures(r)
    c = r["counts"]
    print()
    print(f"=== {r['size']:,} rules — median of {r['reps']} run(s) unless noted ===")
    print(
        f"ruleset: nft {c['nft_native']:,} (custom {c['custom']:,} in {c['custom_chains']} chains,"
        f" NM {c['nm']}) + iptables-nft {c['iptables_nft']:,} (Docker {c['docker']:,}:"
        f" {c['docker_published_ports']:,} published ports on {c['docker_networks']} networks;"
        f" ufw {c['ufw_v4']:,} v4 + {c['ufw_v6']:,} v6)"
    )
    print(
        f"listed: {f['rules_listed'] or NA} rules, {f['xt_rules'] or 0:,} with xt expressions,"
        f" {f['anonymous_sets'] if f['anonymous_sets'] is not None else NA} anonymous sets;"
        f" nft JSON {(f['json_bytes'] or 0) / 1e6:.1f} MB"
    )
    before, after = r.get("loadavg_before"), r.get("loadavg_after")
    if before and after:
        print(
            f"machine load average (1 min): {before[0]:.2f} before, {after[0]:.2f} after"
            " — other work on the machine skews the figures"
        )
    gen_s = dig(r, "netlink_raw", "generation_id_seconds")
    if gen_s is not None:
        print(f"generation id (NFT_MSG_GETGEN) read in {gen_s * 1e3:.2f} ms")
    ld = r["load"]
    print(
        f"load: iptables-nft-restore {fmt_s(ld['iptables-nft-restore'])},"
        f" ip6tables-nft-restore {fmt_s(ld['ip6tables-nft-restore'])}, nft -f {fmt_s(ld['nft -f'])}"
    )
    rows: list[tuple[str, str, str]] = [
        (
            "floor: nft -j list ruleset + json.loads",
            fmt_s(f["floor"]),
            f"nft {fmt_s(f['nft'])} + loads {fmt_s(f['json_loads'])};"
            f" nft peak RSS {fmt_mib(f['nft_peak_rss_kib'])}",
        ),
        (
            "  … json.loads with the GC paused",
            fmt_s(f["floor_gc_paused"]),
            f"loads {fmt_s(f['json_loads_gc_paused'])}",
        ),
        ("nft list ruleset (text)", fmt_s(f["nft_text"]), "is JSON the cost?"),
        (
            "nft -j list table, each table",
            fmt_s(f["nft_per_table"]),
            f"2 at a time: {fmt_s(f['nft_per_table_parallel'])}",
        ),
        ("iptables-nft-save + ip6tables-nft-save", fmt_s(f["iptables_save"]), ""),
        (
            "nft -j ∥ ip(6)tables-nft-save + loads",
            fmt_s(f["parallel_capture"]),
            "capture prototype",
        ),
        (
            "libnft list table ×2 threads ∥ saves",
            fmt_s(f["table_capture"]),
            problem(r, "table_capture")
            or "capture prototype: tables from netlink, one listing per table",
        ),
        (
            "split: ipt-save tables ∥ libnft per table",
            fmt_s(f["split_capture"]),
            problem(r, "split_capture")
            or "capture prototype; from the saves: "
            + ", ".join(dig(r, "split_capture", "from_save") or []),
        ),
        (
            "libnftables in-process + loads",
            fmt_s(f["libnftables"]),
            f"peak RSS {fmt_mib(f['libnftables_rss_kib'])}",
        ),
        (
            "netlink raw, one rule dump",
            fmt_s(f["netlink_one_dump"]),
            f"rules {fmt_s(f['netlink_one_dump_rules'])} ({f['netlink_one_dump_recvs']} recvs),"
            f" set elements {fmt_s(f['netlink_set_elements'])}",
        ),
        ("netlink raw, per-chain rule dumps", fmt_s(f["netlink_per_chain"]), "no decoding"),
        ("  … set elements over 2 sockets", fmt_s(f["netlink_per_chain_2"]), ""),
        (
            "pyroute2 get_tables/chains/sets/rules",
            fmt_s(f["pyroute2"]) if not problem(r, "pyroute2") else NA,
            problem(r, "pyroute2") or "decoded messages, no set elements",
        ),
        (
            "hotspotguard capture_snapshot",
            fmt_s(f["capture"]),
            problem(r, "engine", "capture") or f"{(f['snapshot_bytes'] or 0) / 1e6:.1f} MB JSON",
        ),
        (
            "  load_snapshot (validation)",
            fmt_s(f["load_snapshot"]),
            problem(r, "engine", "load") or "",
        ),
        ("  parse_ruleset", fmt_s(f["parse"]), problem(r, "engine", "parse") or ""),
        (
            "  evaluate (all flows)",
            fmt_s(f["evaluate"]),
            problem(r, "engine", "evaluate")
            or f"median of {dig(r, 'engine', 'evaluate', 'runs')},"
            f" {dig(r, 'engine', 'evaluate', 'flows')} flows; {verdicts(r)}",
        ),
        (
            "python -c pass / import hotspotguard.cli",
            fmt_s(f["startup_python"]),
            f"import hotspotguard.cli, pyroute2: {fmt_s(f['startup_import'])}",
        ),
        ("hotspotguard snapshot (CLI)", fmt_s(f["cli_snapshot"]), problem(r, "cli_snapshot") or ""),
        (
            "hotspotguard explain --snapshot (CLI)",
            fmt_s(f["cli_explain_file"]),
            problem(r, "cli_explain_file", ok=EXPLAIN_OK) or "",
        ),
        (
            "hotspotguard explain --iface hs0 (live)",
            fmt_s(f["explain_e2e"]),
            problem(r, "cli_explain_live", ok=EXPLAIN_OK)
            or f"exit {dig(r, 'cli_explain_live', 'returncode')};"
            f" {fmt_ratio(f['e2e_vs_floor'])} floor"
            f" ({fmt_ratio(f['e2e_vs_floor_gc_paused'])} the GC-paused floor);"
            f" peak RSS {fmt_mib(f['explain_peak_rss_kib'])} (tree),"
            f" {fmt_mib(f['explain_python_rss_kib'])} (Python alone)",
        ),
        (
            "the watcher's first reading",
            fmt_s(f["watch_first"]),
            problem(r, "watch_first") or f"peak RSS {fmt_mib(f['watch_first_rss_kib'])}",
        ),
    ]
    for label, value, note in rows:
        print(f"  {label:41} {value:>10}  {note}")


def print_summary(results: list[Json]) -> None:
    figs = [figures(r) for r in results]
    print()
    print("=== summary (seconds) ===")
    cols = [
        ("rules", "size"),
        ("load", "load"),
        ("floor", "floor"),
        ("floor-gc", "floor_gc_paused"),
        ("ipt-save", "iptables_save"),
        ("nl-1dump", "netlink_one_dump"),
        ("nl-chain", "netlink_per_chain"),
        ("capture", "capture"),
        ("parse", "parse"),
        ("eval", "evaluate"),
        ("explain", "explain_e2e"),
    ]
    print(" ".join(f"{h:>9}" for h, _ in cols) + "  e2e/floor   peak RSS")
    for f in figs:
        cells = []
        for _, key in cols:
            v = f[key]
            cells.append(
                f"{v:>9,}" if key == "size" else (f"{v:9.3f}" if v is not None else f"{NA:>9}")
            )
        print(
            " ".join(cells)
            + f"  {fmt_ratio(f['e2e_vs_floor']):>9}   {fmt_mib(f['explain_peak_rss_kib'])}"
        )

    print()
    print("=== scaling: µs per rule (and growth vs the smallest size) ===")
    keys = [
        ("floor", "floor"),
        ("nft alone", "nft"),
        ("json.loads", "json_loads"),
        ("netlink 1 dump", "netlink_one_dump"),
        ("netlink per chain", "netlink_per_chain"),
        ("iptables-nft-save", "iptables_save"),
        ("capture", "capture"),
        ("parse", "parse"),
        ("evaluate", "evaluate"),
        ("explain e2e", "explain_e2e"),
    ]
    print(f"  {'':20}" + "".join(f"{f['size']:>18,}" for f in figs))
    for label, key in keys:
        base = figs[0][key] / figs[0]["size"] if figs[0][key] else None
        cells = []
        for f in figs:
            if f[key] is None:
                cells.append(f"{NA:>18}")
                continue
            per = f[key] / f["size"]
            growth = f" (×{per / base:.2f})" if base else ""
            cells.append(f"{per * 1e6:>9.2f}{growth:>9}")
        print(f"  {label:20}" + "".join(cells))

    print()
    print("=== targets (figures, not assertions) ===")
    for f in figs:
        e2e = f["e2e_vs_floor"]
        verdict = NA if e2e is None else ("met" if e2e <= E2E_TARGET else "missed")
        ev = f["evaluate"]
        ev_verdict = NA if ev is None else ("met" if ev <= EVAL_TARGET else "missed")
        print(
            f"  {f['size']:>9,} rules: end to end {fmt_ratio(e2e)} floor (target ≤ {E2E_TARGET}×:"
            f" {verdict}); evaluation {fmt_s(ev)} (target ≤ 20 ms: {ev_verdict})"
        )
        rss = f["explain_peak_rss_kib"]
        if f["size"] >= RSS_TARGET_SIZE and rss is not None:
            met = "met" if rss / 1024 <= RSS_TARGET_MIB else "missed"
            print(
                f"  {f['size']:>9,} rules: explain peak RSS {fmt_mib(rss)}"
                f" (target ≤ {RSS_TARGET_MIB} MiB: {met}); the watcher's first reading"
                f" {fmt_mib(f['watch_first_rss_kib'])}"
            )
    if len(figs) >= 2:
        first, last = figs[0], figs[-1]
        for label, key in (("explain e2e", "explain_e2e"), ("parse", "parse"), ("floor", "floor")):
            if first[key] and last[key]:
                growth = (last[key] / last["size"]) / (first[key] / first["size"])
                shape = "linear or better" if growth <= 1.15 else "worse than linear"
                print(
                    f"  scaling {first['size']:,} → {last['size']:,}:"
                    f" {label} per rule ×{growth:.2f} ({shape})"
                )
            else:
                print(f"  scaling {label}: {NA}")


# ---------------------------------------------------------------------------------------------
# main
# ---------------------------------------------------------------------------------------------


def _raise_interrupt(signum: int, _frame: FrameType | None) -> None:
    raise KeyboardInterrupt(f"signal {signum}")


@contextmanager
def interrupts_as_keyboard_interrupt() -> Iterator[None]:
    signals = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)  # SIGINT: also when inherited ignored
    old = {s: signal.signal(s, _raise_interrupt) for s in signals}
    try:
        yield
    finally:
        for s, handler in old.items():
            signal.signal(s, handler)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", help="comma-separated rule counts (default 1000,10000,100000)")
    parser.add_argument("--quick", action="store_true", help="1k and 10k only")
    parser.add_argument(
        "--repeat", type=int, default=0, help="runs per measurement (default 3 up to 10k, else 1)"
    )
    parser.add_argument("--json", action="store_true", help="print machine-readable figures")
    parser.add_argument("--timeout", type=float, default=900, help="per probe, seconds")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--no-anon-sets",
        action="store_true",
        help="custom table without anonymous sets ({ … } in rules)",
    )
    parser.add_argument(
        "--from-json", type=Path, help="print the tables of an earlier --json run, measure nothing"
    )
    parser.add_argument(
        "--keep", type=Path, help="copy each size's captured snapshot into this directory"
    )
    parser.add_argument(
        "--skip",
        default="",
        help="comma-separated steps to skip (e.g. pyroute2,nft_text,nft_per_table)",
    )
    args = parser.parse_args(argv)
    if args.sizes:
        args.size_list = [
            int(x.replace("_", "").replace("k", "000")) for x in args.sizes.split(",")
        ]
    else:
        args.size_list = list(QUICK_SIZES if args.quick else DEFAULT_SIZES)
    args.skip = {x.strip() for x in args.skip.split(",") if x.strip()}
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.from_json:
        saved = json.loads(args.from_json.read_text())
        for result in saved["raw"]:
            print_size(result)
        if saved["raw"]:
            print_summary(saved["raw"])
        return 0
    if os.geteuid() != 0:
        log("bench_engine.py needs root (network namespaces, nft, iptables-nft)")
        return 2
    prefix = f"hgb{os.getpid()}"
    stale = [ns for ns in nslab.list_netns() if ns.startswith("hgb")]
    if stale:
        log(f"note: namespaces from an earlier run are still there: {' '.join(stale)}")
    results: list[Json] = []
    started = time.perf_counter()
    interrupted = False
    # Installed Python code has its .pyc files; a checkout run with PYTHONDONTWRITEBYTECODE
    # would compile hotspotguard on every start. Keep the caches out of the tree, and warm them.
    pycache = tempfile.TemporaryDirectory(prefix=f"{prefix}-pycache-")
    os.environ.pop("PYTHONDONTWRITEBYTECODE", None)
    os.environ["PYTHONPYCACHEPREFIX"] = pycache.name
    nslab.run([sys.executable, "-c", "import hotspotguard.cli, hotspotguard.system.capture"])
    with interrupts_as_keyboard_interrupt():
        try:
            for i, size in enumerate(args.size_list):
                with (
                    tempfile.TemporaryDirectory(prefix=f"{prefix}-") as tmp,
                    nslab.Lab(f"{prefix}-{i}") as lab,
                ):
                    result = measure_size(lab, size, args, Path(tmp))
                results.append(result)
                if not args.json:
                    print_size(result)
        except KeyboardInterrupt:
            interrupted = True
            log("interrupted: cleaning up")
        finally:
            nslab.kill_children()
            pycache.cleanup()
            left = [ns for ns in nslab.list_netns() if ns.startswith(prefix)]
            if left:
                log(f"warning: namespaces left behind: {' '.join(left)}")
    if args.json:
        print(
            json.dumps(
                {
                    "sizes": [figures(r) for r in results],
                    "raw": results,
                    "targets": {"e2e_vs_floor": E2E_TARGET, "evaluate_seconds": EVAL_TARGET},
                    "seconds": time.perf_counter() - started,
                },
                indent=1,
                default=str,
            )
        )
    elif results:
        print_summary(results)
        print(f"\n(total {time.perf_counter() - started:.0f} s)")
    return 130 if interrupted else 0


if __name__ == "__main__":
    sys.exit(main())
