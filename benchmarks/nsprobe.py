"""Measurements that run inside the benchmark's namespace (started by bench_engine.py).

``ip netns exec NS python benchmarks/nsprobe.py PROBE [options] [-- ARGV…]`` runs one probe and
prints one JSON object. Times are taken inside the probe process, so the start-up of the probe
itself (``ip netns exec``, Python) is never counted; a probe that times a whole command (``cli``)
spawns it and counts everything from fork to exit.

Probes never raise: a failure is reported as ``{"error": "…"}`` (and a missing hotspotguard API as
``"not available: …"``).
"""

from __future__ import annotations

import argparse
import contextlib
import functools
import gc
import importlib
import io
import json
import os
import resource
import runpy
import statistics
import subprocess
import sys
import time
import traceback
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

import nfnl_dump

Json = dict[str, Any]


def vm_hwm_kib() -> int:
    """Peak RSS of this process so far (VmHWM), KiB."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1])
    return 0


def timed_command(argv: Sequence[str], stdout_path: str | None = None) -> Json:
    """Run ``argv``; wall time, output, exit code and the peak RSS of its process tree."""
    start = time.perf_counter()
    with contextlib.ExitStack() as stack:
        out = stack.enter_context(open(stdout_path, "wb")) if stdout_path else subprocess.PIPE
        proc = subprocess.Popen(list(argv), stdout=out, stderr=subprocess.PIPE)
        data = proc.stdout.read() if proc.stdout else b""
        err = proc.stderr.read() if proc.stderr else b""
        _, status, usage = os.wait4(proc.pid, 0)
        proc.returncode = os.waitstatus_to_exitcode(status)
    return {
        "seconds": time.perf_counter() - start,
        "stdout": data,
        "stderr": err.decode(errors="replace")[-2000:],
        "returncode": proc.returncode,
        "maxrss_kib": usage.ru_maxrss,
        "user": usage.ru_utime,
        "sys": usage.ru_stime,
    }


def loads_gc_paused(data: str | bytes) -> Any:
    """json.loads with the cyclic GC paused (what hotspotguard does)."""
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        return json.loads(data)
    finally:
        if was_enabled:
            gc.enable()


def median(values: Sequence[float]) -> float:
    return statistics.median(values) if values else float("nan")


def repeat(reps: int, func: Callable[[], Json]) -> Json:
    """Run ``func`` ``reps`` times; numeric fields become medians, plus ``runs`` and ``min``."""
    runs = [func() for _ in range(reps)]
    out: Json = dict(runs[-1])
    for key, value in runs[-1].items():
        if isinstance(value, float):
            out[key] = median([r[key] for r in runs])
    out["runs"] = reps
    out["min_seconds"] = min(r.get("seconds", float("nan")) for r in runs)
    return out


def count_rules_and_xt(doc: Json) -> tuple[int, int, int]:
    """(rules, rules with xt expressions, xt expressions) of an ``nft -j`` document."""
    rules = xt_rules = xt_exprs = 0
    for obj in doc.get("nftables", ()):
        rule = obj.get("rule")
        if rule is None:
            continue
        rules += 1
        n = sum(1 for e in rule.get("expr", ()) if "xt" in e)
        if n:
            xt_rules += 1
            xt_exprs += n
    return rules, xt_rules, xt_exprs


# ---------------------------------------------------------------------------------------------
# the floor and its alternatives
# ---------------------------------------------------------------------------------------------


def probe_nft_json(args: argparse.Namespace) -> Json:
    """The floor: ``nft -j list ruleset`` (a child) + ``json.loads``."""
    holder: dict[str, Json] = {}

    def once() -> Json:
        res = timed_command(["nft", "-j", "list", "ruleset"])
        t = time.perf_counter()
        doc = json.loads(res["stdout"])
        loads = time.perf_counter() - t
        del doc
        gc.collect()
        # the same bytes with the cyclic GC paused (it runs ~every 700 allocations otherwise)
        gc.disable()
        try:
            t = time.perf_counter()
            doc = json.loads(res["stdout"])
            loads_nogc = time.perf_counter() - t
        finally:
            gc.enable()
        holder["doc"] = doc
        return {
            "seconds": res["seconds"] + loads,
            "seconds_gc_paused": res["seconds"] + loads_nogc,
            "nft_seconds": res["seconds"],
            "loads_seconds": loads,
            "loads_gc_paused_seconds": loads_nogc,
            "nft_user": res["user"],
            "nft_sys": res["sys"],
            "bytes": len(res["stdout"]),
            "nft_maxrss_kib": res["maxrss_kib"],
            "returncode": res["returncode"],
        }

    out = repeat(args.reps, once)
    t = time.perf_counter()
    rules, xt_rules, xt_exprs = count_rules_and_xt(holder["doc"])
    out["xt_scan_seconds"] = time.perf_counter() - t
    out.update(rules=rules, xt_rules=xt_rules, xt_exprs=xt_exprs)
    out["tables"] = [
        f"{o['table']['family']} {o['table']['name']}"
        for o in holder["doc"]["nftables"]
        if "table" in o
    ]
    return out


def probe_nft_text(args: argparse.Namespace) -> Json:
    """``nft list ruleset`` (text) and ``nft -t -j`` (terse): is JSON the cost?"""
    out: Json = {}
    for name, argv in (
        ("text", ["nft", "list", "ruleset"]),
        ("terse_json", ["nft", "-t", "-j", "list", "ruleset"]),
    ):
        out[name] = repeat(args.reps, functools.partial(_plain, argv))
    return out


def _plain(argv: Sequence[str]) -> Json:
    res = timed_command(argv)
    return {
        "seconds": res["seconds"],
        "user": res["user"],
        "sys": res["sys"],
        "bytes": len(res["stdout"]),
        "returncode": res["returncode"],
    }


def probe_nft_per_table(args: argparse.Namespace) -> Json:
    """``nft -j list table F T`` + json.loads for each table: one after another, 2 at a time."""
    tables = [(family, name) for family, name, _ in nfnl_dump.list_tables()]

    def one(table: tuple[str, str]) -> tuple[str, float, int]:
        res = timed_command(["nft", "-j", "list", "table", *table])
        doc = loads_gc_paused(res["stdout"])
        return f"{table[0]} {table[1]}", res["seconds"], len(doc["nftables"])

    def sequential() -> Json:
        t = time.perf_counter()
        parts = [one(tb) for tb in tables]
        return {"seconds": time.perf_counter() - t, "per_table": {k: s for k, s, _ in parts}}

    def parallel() -> Json:
        t = time.perf_counter()
        with ThreadPoolExecutor(args.workers) as pool:
            list(pool.map(one, sorted(tables, key=lambda tb: tb[1] != "custom")))
        return {"seconds": time.perf_counter() - t}

    return {
        "sequential": repeat(args.reps, sequential),
        "parallel": repeat(args.reps, parallel),
        "workers": args.workers,
    }


def probe_iptables_save(args: argparse.Namespace) -> Json:
    """``iptables-nft-save`` and ``ip6tables-nft-save``, alone."""
    out: Json = {}
    for name in ("iptables-nft-save", "ip6tables-nft-save"):
        out[name] = repeat(args.reps, functools.partial(_plain, [name]))
    out["seconds"] = out["iptables-nft-save"]["seconds"] + out["ip6tables-nft-save"]["seconds"]
    return out


def probe_parallel_capture(args: argparse.Namespace) -> Json:
    """Capture prototype: nft -j ∥ ip(6)tables-nft-save, then json.loads (GC paused)."""

    def once() -> Json:
        t = time.perf_counter()
        argvs = [["nft", "-j", "list", "ruleset"], ["iptables-nft-save"], ["ip6tables-nft-save"]]
        with ThreadPoolExecutor(len(argvs)) as pool:
            results = list(pool.map(timed_command, argvs))
        loads_gc_paused(results[0]["stdout"])
        return {
            "seconds": time.perf_counter() - t,
            "parts": {" ".join(a[:1]): r["seconds"] for a, r in zip(argvs, results, strict=True)},
        }

    return repeat(args.reps, once)


#: the tables iptables-nft-save prints; everything else is listed with libnftables
XT_TABLES = {"filter", "nat", "mangle", "raw", "security"}
SAVE_TOOLS = {"ip": "iptables-nft-save", "ip6": "ip6tables-nft-save"}


def _libnft_json(nftables_module: Any, command: Json) -> Json:
    """One libnftables command given as JSON, in its own context; output decoded (GC paused)."""
    ctx = nftables_module.Nftables()
    ctx.set_json_output(True)
    rc, output, error = ctx.cmd(json.dumps({"nftables": [command]}))
    if rc != 0:
        raise RuntimeError(error.strip())
    doc: Json = loads_gc_paused(output) if output.strip() else {"nftables": []}
    return doc


def _capture_by_table(args: argparse.Namespace, from_save: bool) -> Json:
    """The table list from one netlink GETTABLE dump, then a libnftables ``list table`` per
    table (``--workers`` threads, biggest first) while ip(6)tables-nft-save run as children.
    With ``from_save``, the tables iptables-nft-save prints are not listed by nft at all."""
    try:
        import nftables  # type: ignore[import-untyped]
    except ImportError as exc:
        return {"error": f"not available: {exc}"}

    def once() -> Json:
        t0 = time.perf_counter()
        saves = {
            family: subprocess.Popen([tool], stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
            for family, tool in SAVE_TOOLS.items()
        }
        tables = nfnl_dump.list_tables()
        t_tables = time.perf_counter() - t0
        listed = [t for t in tables if not (from_save and t[0] in SAVE_TOOLS and t[1] in XT_TABLES)]
        skipped = [f"{t[0]} {t[1]}" for t in tables if t not in listed]
        timings: dict[str, float] = {}

        def one(table: tuple[str, str, int]) -> int:
            t = time.perf_counter()
            command = {"list": {"table": {"family": table[0], "name": table[1]}}}
            doc = _libnft_json(nftables, command)
            timings[f"{table[0]} {table[1]}"] = time.perf_counter() - t
            return len(doc["nftables"])

        with ThreadPoolExecutor(args.workers) as pool:
            objects = sum(pool.map(one, sorted(listed, key=lambda t: -t[2])))
        texts = {family: proc.communicate()[0].decode() for family, proc in saves.items()}
        covered = all(
            f"*{name}" in texts[family].splitlines()
            for family, name in (x.split() for x in skipped)
        )
        return {
            "seconds": time.perf_counter() - t0,
            "table_list_seconds": t_tables,
            "objects": objects,
            "per_table": timings,
            "from_save": skipped,
            "all_covered_by_save": covered,
        }

    return repeat(args.reps, once)


def probe_split_capture(args: argparse.Namespace) -> Json:
    """Capture prototype: iptables-nft's tables from ip(6)tables-nft-save only (they dump per
    chain), every other table through its own libnftables ``list table``."""
    return _capture_by_table(args, from_save=True)


def probe_table_capture(args: argparse.Namespace) -> Json:
    """Capture prototype: every table through its own libnftables ``list table`` (2 threads),
    the saves beside them: the same document as ``list ruleset``, without its one big dump."""
    return _capture_by_table(args, from_save=False)


def probe_libnftables(args: argparse.Namespace) -> Json:
    """libnftables in this process: ``cmd("list ruleset")`` with JSON output, + json.loads."""
    try:
        import nftables
    except ImportError as exc:
        return {"error": f"not available: {exc}"}

    def once() -> Json:
        t = time.perf_counter()
        nft = nftables.Nftables()
        nft.set_json_output(True)
        rc, output, error = nft.cmd("list ruleset")
        t_cmd = time.perf_counter() - t
        json.loads(output)
        return {
            "seconds": time.perf_counter() - t,
            "cmd_seconds": t_cmd,
            "returncode": rc,
            "bytes": len(output),
            "error": error[-500:] if rc else "",
        }

    out = repeat(args.reps, once)
    out["vm_hwm_kib"] = vm_hwm_kib()
    return out


def probe_netlink_raw(args: argparse.Namespace) -> Json:
    """The kernel side: a raw nfnetlink dump (all rules in one dump; per chain; 2 sockets)."""

    def variant(per_chain: bool, workers: int) -> Json:
        def once() -> Json:
            t = time.perf_counter()
            dump = nfnl_dump.dump_ruleset(per_chain=per_chain, elem_workers=workers)
            return {
                "seconds": time.perf_counter() - t,
                "rules_seconds": dump.stats["rules"].seconds,
                "rules_recvs": dump.stats["rules"].recvs,
                "set_elements_seconds": dump.stats["set_elements"].seconds,
                "set_element_requests": len(dump.sets),
                "bytes": dump.nbytes,
                "rules": dump.stats["rules"].messages,
                "sets": len(dump.sets),
                "anonymous_sets": sum(1 for _, _, n in dump.sets if n.startswith("__")),
            }

        return repeat(args.reps, once)

    t = time.perf_counter()
    gen = nfnl_dump.generation_id()
    return {
        "generation_id": gen,
        "generation_id_seconds": time.perf_counter() - t,
        "one_dump": variant(False, 1),
        "per_chain": variant(True, 1),
        "per_chain_2_sockets": variant(True, 2),
    }


def probe_pyroute2(args: argparse.Namespace) -> Json:
    """pyroute2's nftables support: dump (and decode) tables, chains, sets and all rules."""
    try:
        from pyroute2.nftables.main import NFTables  # type: ignore[import-untyped]
    except ImportError as exc:
        return {"error": f"not available: {exc}"}
    out: Json = {}
    nft = NFTables(nfgen_family=0)  # NFPROTO_UNSPEC: every family
    try:
        t0 = time.perf_counter()
        for what in ("get_tables", "get_chains", "get_sets", "get_rules"):
            t = time.perf_counter()
            msgs = getattr(nft, what)()
            out[what] = {"seconds": time.perf_counter() - t, "messages": len(msgs)}
        out["seconds"] = time.perf_counter() - t0
        out["note"] = (
            "decoded netlink messages (no set elements: pyroute2 has no dump of anonymous sets' "
            "elements, nor an nft-JSON form)"
        )
    finally:
        nft.close()
    out["vm_hwm_kib"] = vm_hwm_kib()
    return out


# ---------------------------------------------------------------------------------------------
# hotspotguard
# ---------------------------------------------------------------------------------------------


def _api(module: str, name: str) -> Callable[..., Any] | str:
    """The function ``module.name``, or why it is not available."""
    try:
        mod = importlib.import_module(module)
    except Exception as exc:
        return f"not available: {module}: {type(exc).__name__}: {exc}"
    func = getattr(mod, name, None)
    if func is None:
        return f"not available: {module}.{name} is missing"
    return func  # type: ignore[no-any-return]


def _timed_calls(reps: int, func: Callable[[], Any]) -> tuple[Json, Any]:
    times: list[float] = []
    value: Any = None
    for _ in range(reps):
        t = time.perf_counter()
        value = func()
        times.append(time.perf_counter() - t)
    return {"seconds": median(times), "min_seconds": min(times), "runs": reps}, value


def _report_summary(report: Any) -> Json:
    """How many flows were evaluated, and the verdicts (whatever the Report looks like)."""
    hotspots = getattr(report, "hotspots", None)
    if hotspots is None:
        return {"flows": None}
    flows = 0
    verdicts = []
    for h in hotspots:
        flows += len(getattr(h, "flows", ()) or ())
        drop = getattr(h, "blocked_by", None)
        where = f"{drop.family} {drop.table} {drop.chain}" if drop is not None else None
        iface = getattr(getattr(h, "hotspot", None), "iface", None)
        verdicts.append(
            {"iface": iface, "verdict": getattr(h, "verdict", None), "blocked_by": where}
        )
    return {"flows": flows, "verdicts": verdicts}


def probe_engine(args: argparse.Namespace) -> Json:
    """capture_snapshot → load_snapshot → parse_ruleset → evaluate, in this process."""
    out: Json = {}
    capture = _api("hotspotguard.system.capture", "capture_snapshot")
    load = _api("hotspotguard.ruleset", "load_snapshot")
    parse = _api("hotspotguard.ruleset", "parse_ruleset")
    evaluate = _api("hotspotguard.verdict", "evaluate")
    ifaces = args.iface or ["hs0"]
    # steady state: the one-off imports (pyroute2 alone is ~130 ms) count in the CLI figures only
    for lazy in ("nftables", "pyroute2"):
        with contextlib.suppress(ImportError):
            importlib.import_module(lazy)

    def guarded(name: str, reps: int, func: Callable[[], Any]) -> Any:
        try:
            figures, value = _timed_calls(reps, func)
        except Exception as exc:
            out[name] = {
                "error": f"{type(exc).__name__}: {exc}",
                "trace": traceback.format_exc()[-3000:],
            }
            return None
        out[name] = figures
        return value

    doc = None
    if isinstance(capture, str):
        out["capture"] = {"error": capture}
    else:
        doc = guarded("capture", args.reps, lambda: capture(ifaces))
    if doc is None and args.snapshot and Path(args.snapshot).exists():
        doc = json.loads(Path(args.snapshot).read_text())
        out["capture_source"] = args.snapshot
    if doc is not None:
        text = json.dumps(doc)
        out["snapshot_bytes"] = len(text)
        if args.snapshot and "capture_source" not in out:
            Path(args.snapshot).write_text(text)
    snapshot = ruleset = None
    if isinstance(load, str):
        out["load"] = {"error": load}
    elif doc is not None:
        snapshot = guarded("load", args.reps, lambda: load(doc))
    if isinstance(parse, str):
        out["parse"] = {"error": parse}
    elif snapshot is not None:
        ruleset = guarded("parse", args.reps, lambda: parse(snapshot))
    if isinstance(evaluate, str):
        out["evaluate"] = {"error": evaluate}
    elif ruleset is not None:
        report = guarded("evaluate", max(args.eval_reps, 1), lambda: evaluate(snapshot, ruleset))
        if report is not None:
            with contextlib.suppress(Exception):
                out["evaluate"].update(_report_summary(report))
    out["vm_hwm_kib"] = vm_hwm_kib()
    return out


def probe_cli(args: argparse.Namespace) -> Json:
    """Run a whole command (fork to exit): wall time, exit code, peak RSS of its process tree."""

    def once() -> Json:
        res = timed_command(args.argv)
        return {
            "seconds": res["seconds"],
            "returncode": res["returncode"],
            "stdout_bytes": len(res["stdout"]),
            "maxrss_kib": res["maxrss_kib"],
            "user": res["user"],
            "sys": res["sys"],
            "stderr": res["stderr"] if res["returncode"] else "",
        }

    return repeat(args.reps, once)


@contextlib.contextmanager
def _captured_stdout() -> Iterator[io.StringIO]:
    buf = io.StringIO()
    with contextlib.redirect_stdout(buf):
        yield buf


def probe_inproc_rss(args: argparse.Namespace) -> Json:
    """Run ``python -m hotspotguard ARGV`` in this process; peak RSS of the Python process alone."""
    base = vm_hwm_kib()
    sys.argv = ["hotspotguard", *args.argv]
    code: object = 0
    t = time.perf_counter()
    with _captured_stdout() as buf:
        try:
            runpy.run_module("hotspotguard", run_name="__main__", alter_sys=True)
        except SystemExit as exc:
            code = exc.code
        except Exception as exc:
            return {"error": f"{type(exc).__name__}: {exc}"}
    return {
        "seconds": time.perf_counter() - t,
        "exit": code if isinstance(code, int) or code is None else str(code),
        "stdout_bytes": len(buf.getvalue()),
        "vm_hwm_kib": vm_hwm_kib(),
        "vm_hwm_before_kib": base,
        "children_maxrss_kib": resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss,
    }


PROBES: dict[str, Callable[[argparse.Namespace], Json]] = {
    "nft_json": probe_nft_json,
    "nft_text": probe_nft_text,
    "nft_per_table": probe_nft_per_table,
    "iptables_save": probe_iptables_save,
    "parallel_capture": probe_parallel_capture,
    "split_capture": probe_split_capture,
    "table_capture": probe_table_capture,
    "libnftables": probe_libnftables,
    "netlink_raw": probe_netlink_raw,
    "pyroute2": probe_pyroute2,
    "engine": probe_engine,
    "cli": probe_cli,
    "inproc_rss": probe_inproc_rss,
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("probe", choices=sorted(PROBES))
    parser.add_argument("--reps", type=int, default=1)
    parser.add_argument("--eval-reps", type=int, default=9)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--iface", action="append")
    parser.add_argument("--snapshot", help="where the engine probe writes the captured snapshot")
    parser.epilog = "-- ARGV…: the command of the cli and inproc_rss probes"
    own, command = sys.argv[1:], []
    if "--" in own:
        at = own.index("--")
        own, command = own[:at], own[at + 1 :]
    args = parser.parse_args(own)
    args.argv = command
    real_stdout = sys.stdout
    try:
        result = PROBES[args.probe](args)
    except Exception as exc:
        result = {"error": f"{type(exc).__name__}: {exc}", "trace": traceback.format_exc()[-3000:]}
    real_stdout.write(json.dumps(result, default=str) + "\n")


if __name__ == "__main__":
    main()
