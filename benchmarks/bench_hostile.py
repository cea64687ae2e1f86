"""The engine's work and memory bounds: hostile snapshots before and after, what real layouts use.

    .venv/bin/python benchmarks/bench_hostile.py                      # no root, no namespaces
    .venv/bin/python benchmarks/bench_hostile.py --snapshot FILE ...  # also these snapshots
        (e.g. bench_engine.py --sizes 100000 --keep DIR writes DIR/snapshot-100000.json)
    .venv/bin/python benchmarks/bench_hostile.py --set-elements 0     # without the big sets

Prints, for each ruleset: its size, the evaluation's wall time, the most rule visits one flow
needed (the budget is engine.MAX_STEPS per flow) and the verdicts. The hostile snapshot (a few
jumps per chain, a few chains deep: jumps**depth paths) is also run without the bound, stopped
after --before-seconds, to show what it cost before.

Memory: snapshot files with a set of --set-elements elements (an `inet` table whose forward
chain drops `ip daddr @big`: prefixes and ranges; and a concatenated `ip daddr . tcp dport`
set), and the --snapshot files, each read by `hotspotguard explain --snapshot FILE --json` in a
child process: its peak RSS and wall time. Figures only: nothing is asserted.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from hotspotguard.ruleset import load_snapshot, parse_ruleset
from hotspotguard.verdict import evaluate
from hotspotguard.verdict.engine import MAX_STEPS, Budget, ChainRun

Json = dict[str, Any]
evaluate_module = sys.modules["hotspotguard.verdict.evaluate"]  # the package re-exports a function


class RecordingBudget(Budget):
    """A flow's budget that remembers how much of it the flow used."""

    def __init__(self, forks: int, steps: int = MAX_STEPS) -> None:
        super().__init__(forks=forks, steps=steps, limit=steps)
        BUDGETS.append(self)


BUDGETS: list[Budget] = []


class Unbounded(RecordingBudget):
    """The engine as it was: no step budget, and no memory of chains that return unchanged."""

    def __init__(self, forks: int) -> None:
        super().__init__(forks, steps=10**15)


def _plain_pop(self: ChainRun, state: Any) -> None:
    state.stack = state.stack[:-1]
    state.entered = ()


class Stopped(Exception):
    pass


@contextmanager
def wall_limit(seconds: float) -> Iterator[None]:
    def stop(signum: int, frame: object) -> None:
        raise Stopped

    previous = signal.signal(signal.SIGALRM, stop)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)


def document(iface: str = "hs0", **extra: Any) -> Json:
    return {
        "format": "hotspotguard-snapshot/1",
        "nft": {"nftables": []},
        "sysctl": {"net.ipv4.ip_forward": "1", "net.ipv6.conf.all.forwarding": "1"},
        "hotspots": [{"iface": iface, "ipv4": ["10.42.0.1/24"], "ipv6": ["2001:db8:42::1/64"]}],
        "uplinks": ["up0"],
        **extra,
    }


# --- the rulesets ---------------------------------------------------------------------------


def hostile(jumps: int = 4, depth: int = 15) -> Json:
    """FORWARD jumps `jumps` times to C1, C1 `jumps` times to C2, ... (iptables-legacy-save)."""
    lines = ["*filter", ":INPUT ACCEPT [0:0]", ":FORWARD DROP [0:0]", ":OUTPUT ACCEPT [0:0]"]
    lines += [f":C{level} - [0:0]" for level in range(1, depth + 1)]
    for level in range(depth):
        chain = "FORWARD" if level == 0 else f"C{level}"
        lines += [f"-A {chain} -j C{level + 1}"] * jumps
    text = "\n".join([*lines, "COMMIT", ""])
    return document(iptables_legacy_save=text, ip6tables_legacy_save=text)


def _nft_rule(table: str, chain: str, *expr: Json) -> Json:
    return {"rule": {"family": "inet", "table": table, "chain": chain, "expr": list(expr)}}


def _match(left: Json, right: Any, op: str = "==") -> Json:
    return {"match": {"op": op, "left": left, "right": right}}


def _jump(target: str, kind: str = "jump") -> Json:
    return {kind: {"target": target}}


META_IIF = {"meta": {"key": "iifname"}}
META_OIF = {"meta": {"key": "oifname"}}
CT_STATE = {"ct": {"key": "state"}}
DPORT = {"payload": {"protocol": "th", "field": "dport"}}


def firewalld(zones: int = 12, services: int = 40) -> Json:
    """firewalld 1.x's nftables layout (table inet firewalld): filter_INPUT / filter_FORWARD
    dispatch by interface to zone chains, each with pre/log/deny/allow/post sub-chains and a
    rule per allowed service; the hotspot sits in zone z0."""
    t = "firewalld"
    items: list[Json] = [{"table": {"family": "inet", "name": t}}]

    def chain(name: str, hook: str | None = None, prio: int = 10) -> None:
        body: Json = {"family": "inet", "table": t, "name": name}
        if hook:
            body.update(type="filter", hook=hook, prio=prio, policy="accept")
        items.append({"chain": body})

    for hook, short in (("input", "IN"), ("forward", "FWDI")):
        base = "filter_INPUT" if hook == "input" else "filter_FORWARD"
        chain(base, hook)
        chain(f"{base}_ZONES")
        items.append(
            _nft_rule(
                t, base, _match(CT_STATE, {"set": ["established", "related"]}), {"accept": None}
            )
        )
        items.append(
            _nft_rule(t, base, _match({"ct": {"key": "status"}}, "dnat", "in"), {"accept": None})
        )
        items.append(_nft_rule(t, base, _match(META_IIF, "lo"), {"accept": None}))
        items.append(_nft_rule(t, base, _match(CT_STATE, {"set": ["invalid"]}), {"drop": None}))
        items.append(_nft_rule(t, base, _jump(f"{base}_ZONES")))
        items.append(_nft_rule(t, base, {"reject": {"type": "icmpx", "expr": "admin-prohibited"}}))
        for z in range(zones):
            zone = f"filter_{short}_z{z}"
            iface = "hs0" if z == 0 else f"eth{z}"
            items.append(
                _nft_rule(t, f"{base}_ZONES", _match(META_IIF, iface), _jump(zone, "goto"))
            )
            chain(zone)
            for part in ("pre", "log", "deny", "allow", "post"):
                chain(f"{zone}_{part}")
                items.append(_nft_rule(t, zone, _jump(f"{zone}_{part}")))
            for port in range(services):
                items.append(
                    _nft_rule(
                        t,
                        f"{zone}_allow",
                        _match(DPORT, 1000 + port),
                        _match(CT_STATE, {"set": ["new", "untracked"]}),
                        {"accept": None},
                    )
                )
            items.append(_nft_rule(t, f"{zone}_allow", _match(DPORT, 53), {"accept": None}))
            items.append(_nft_rule(t, f"{zone}_allow", _match(DPORT, 67), {"accept": None}))
            items.append(
                _nft_rule(
                    t,
                    zone,
                    _match({"meta": {"key": "l4proto"}}, {"set": ["icmp", "ipv6-icmp"]}),
                    {"accept": None},
                )
            )
        items.append(_nft_rule(t, f"{base}_ZONES", _jump(f"filter_{short}_z1", "goto")))
    return document(nft={"nftables": items})


def kube_proxy(services: int = 5000, endpoints: int = 3) -> Json:
    """kube-proxy's iptables layout: nat KUBE-SERVICES with a rule per service to KUBE-SVC-*,
    each spreading over KUBE-SEP-* with `-m statistic` (undecidable: it forks), and filter
    KUBE-FORWARD."""
    nat = ["*nat", ":PREROUTING ACCEPT [0:0]", ":POSTROUTING ACCEPT [0:0]"]
    nat += [":KUBE-SERVICES - [0:0]", ":KUBE-POSTROUTING - [0:0]", ":KUBE-MARK-MASQ - [0:0]"]
    rules = ["-A PREROUTING -m comment --comment kubernetes -j KUBE-SERVICES"]
    rules += [
        "-A POSTROUTING -j KUBE-POSTROUTING",
        "-A KUBE-MARK-MASQ -j MARK --set-xmark 0x4000/0x4000",
    ]
    rules += ["-A KUBE-POSTROUTING -m mark ! --mark 0x4000/0x4000 -j RETURN"]
    rules += ["-A KUBE-POSTROUTING -j MASQUERADE"]
    for s in range(services):
        svc = f"KUBE-SVC-{s:016X}"
        nat.append(f":{svc} - [0:0]")
        ip = f"10.96.{s // 250}.{s % 250 + 1}"
        rules.append(f"-A KUBE-SERVICES -d {ip}/32 -p tcp -m tcp --dport 443 -j {svc}")
        for e in range(endpoints):
            sep = f"KUBE-SEP-{s:012X}{e:04X}"
            nat.append(f":{sep} - [0:0]")
            left = endpoints - e
            prob = f"-m statistic --mode random --probability {1 / left:.5f} " if left > 1 else ""
            rules.append(f"-A {svc} {prob}-j {sep}")
            rules.append(f"-A {sep} -s 10.244.{e}.{s % 250 + 1}/32 -j KUBE-MARK-MASQ")
            rules.append(
                f"-A {sep} -p tcp -m tcp -j DNAT --to-destination 10.244.{e}.{s % 250 + 1}:443"
            )
    rules.append("-A KUBE-SERVICES -m addrtype --dst-type LOCAL -j RETURN")
    filt = [
        "*filter",
        ":INPUT ACCEPT [0:0]",
        ":FORWARD ACCEPT [0:0]",
        ":OUTPUT ACCEPT [0:0]",
        ":KUBE-FORWARD - [0:0]",
        "-A FORWARD -j KUBE-FORWARD",
        "-A KUBE-FORWARD -m conntrack --ctstate INVALID -j DROP",
        "-A KUBE-FORWARD -m mark --mark 0x4000/0x4000 -j ACCEPT",
        "-A KUBE-FORWARD -m conntrack --ctstate RELATED,ESTABLISHED -j ACCEPT",
        "COMMIT",
    ]
    text = "\n".join([*nat, *rules, "COMMIT", *filt, ""])
    nm = {
        "nftables": [
            {"table": {"family": "ip", "name": "nm-shared-hs0"}},
            {
                "chain": {
                    "family": "ip",
                    "table": "nm-shared-hs0",
                    "name": "nat_postrouting",
                    "type": "nat",
                    "hook": "postrouting",
                    "prio": 100,
                    "policy": "accept",
                }
            },
            _nm_masquerade(),
        ]
    }
    return document(nft=nm, iptables_legacy_save=text)


def _nm_masquerade() -> Json:
    src = {"prefix": {"addr": "10.42.0.0", "len": 24}}
    return {
        "rule": {
            "family": "ip",
            "table": "nm-shared-hs0",
            "chain": "nat_postrouting",
            "expr": [
                _match({"payload": {"protocol": "ip", "field": "saddr"}}, src),
                _match({"payload": {"protocol": "ip", "field": "daddr"}}, src, "!="),
                {"masquerade": None},
            ],
        }
    }


def write_big_set(path: Path, elements: int, concat: bool = False) -> None:
    """A snapshot whose `inet` table drops, on the forward hook, the destinations in a set of
    `elements` prefixes and ranges (or `ip daddr . tcp dport` pairs), written as it goes."""
    set_type = '["ipv4_addr", "inet_service"]' if concat else '"ipv4_addr"'
    left = (
        '{"concat": [{"payload": {"protocol": "ip", "field": "daddr"}}, '
        '{"payload": {"protocol": "tcp", "field": "dport"}}]}'
        if concat
        else '{"payload": {"protocol": "ip", "field": "daddr"}}'
    )
    with path.open("w") as out:
        out.write('{"format": "hotspotguard-snapshot/1", "nft": {"nftables": [')
        out.write('{"table": {"family": "inet", "name": "hostile"}}, ')
        out.write(
            '{"chain": {"family": "inet", "table": "hostile", "name": "fwd", "type": "filter",'
            ' "hook": "forward", "prio": 0, "policy": "accept"}}, '
        )
        out.write(
            '{"set": {"family": "inet", "name": "big", "table": "hostile", '
            f'"type": {set_type}, "flags": ["interval"], "elem": ['
        )
        for index in range(elements):
            a = 0x10000000 + index * 8  # 16.0.0.0 up: no hotspot flow's address
            dotted = f"{a >> 24}.{(a >> 16) & 255}.{(a >> 8) & 255}"
            if concat:
                item = f'{{"concat": ["{dotted}.{a & 255}", {index % 65536}]}}'
            elif index % 2:
                item = f'{{"range": ["{dotted}.{a & 255}", "{dotted}.{(a & 255) + 5}"]}}'
            else:
                item = f'{{"prefix": {{"addr": "{dotted}.{a & 255}", "len": 30}}}}'
            out.write(item if index == 0 else ", " + item)
        out.write("]}}, ")
        out.write(
            '{"rule": {"family": "inet", "table": "hostile", "chain": "fwd", "expr": ['
            f'{{"match": {{"op": "==", "left": {left}, "right": "@big"}}}}, {{"drop": null}}]}}}}'
        )
        rest = {k: v for k, v in document().items() if k not in {"format", "nft"}}
        out.write("]}, " + json.dumps(rest)[1:])


# A child's peak RSS counts the pages it shared with its parent when it was made (Linux keeps
# the high-water mark across fork and exec): so a small fresh process makes the child, waits
# for it and reports its rusage.
_WAIT_FOR_CHILD = """
import json, os, subprocess, sys, time
t = time.perf_counter()
proc = subprocess.Popen(sys.argv[1:], stdout=open(os.environ["BENCH_OUT"], "wb"))
_, status, usage = os.wait4(proc.pid, 0)
print(json.dumps([time.perf_counter() - t, os.waitstatus_to_exitcode(status), usage.ru_maxrss]))
"""


def explain_peak(path: Path) -> Json:
    """`hotspotguard explain --snapshot PATH --json` in a child: wall time, peak RSS, exit."""
    src = str(Path(__file__).resolve().parents[1] / "src")
    argv = [sys.executable, "-m", "hotspotguard", "explain", "--snapshot", str(path), "--json"]
    with tempfile.NamedTemporaryFile() as out:
        env = {**os.environ, "PYTHONPATH": src, "BENCH_OUT": out.name}
        done = subprocess.run(
            [sys.executable, "-c", _WAIT_FOR_CHILD, *argv],
            capture_output=True,
            env=env,
            check=False,
        )
        elapsed, code, peak = json.loads(done.stdout)
        report = json.loads(Path(out.name).read_bytes() or b"null")
    verdicts = (
        {n: f["verdict"] for h in report["hotspots"] for n, f in h["flows"].items()}
        if isinstance(report, dict) and "hotspots" in report
        else None
    )
    return {
        "bytes": path.stat().st_size,
        "seconds": elapsed,
        "peak_rss_kib": peak,
        "exit": code,
        "error": done.stderr.decode(errors="replace").strip()[-200:],
        "verdicts": verdicts,
    }


def memory_row(name: str, path: Path) -> Json:
    row = {"name": name, **explain_peak(path)}
    shown = row["error"] or " ".join(f"{k}={v}" for k, v in (row["verdicts"] or {}).items())
    print(
        f"{name:34s} {row['bytes'] / 1e6:8.1f} MB  explain --snapshot: peak RSS "
        f"{row['peak_rss_kib'] / 1024:6.0f} MiB  {row['seconds']:6.1f} s  exit {row['exit']}  "
        f"{shown}",
        flush=True,
    )
    return row


# --- measuring -----------------------------------------------------------------------------


def run(name: str, doc: Json, budget: type[Budget] = RecordingBudget, seconds: float = 0) -> Json:
    text = json.dumps(doc)
    snapshot = load_snapshot(doc)
    ruleset = parse_ruleset(snapshot)
    BUDGETS.clear()
    evaluate_module.Budget = budget  # type: ignore[misc]
    remembering = ChainRun._pop
    if budget is Unbounded:
        ChainRun._pop = _plain_pop  # type: ignore[method-assign]
    t = time.perf_counter()
    try:
        if seconds:
            with wall_limit(seconds):
                report = evaluate(snapshot, ruleset)
        else:
            report = evaluate(snapshot, ruleset)
    except Stopped:
        report = None
    finally:
        evaluate_module.Budget = Budget  # type: ignore[misc]
        ChainRun._pop = remembering  # type: ignore[method-assign]
    elapsed = time.perf_counter() - t
    rules = sum(len(c.rules) for table in ruleset.tables for c in table.chains)
    used = max((b.used for b in BUDGETS), default=0)
    verdicts = (
        {n: f.verdict for h in report.hotspots for n, f in h.flows.items()} if report else None
    )
    row = {
        "name": name,
        "bytes": len(text),
        "rules": rules,
        "seconds": elapsed,
        "max_steps": used,
        "stopped": report is None,
        "verdicts": verdicts,
    }
    shown = "stopped" if report is None else " ".join(f"{k}={v}" for k, v in verdicts.items())
    print(
        f"{name:34s} {len(text):>10,} B {rules:>8,} rules  {elapsed:8.3f} s"
        f"{'+' if report is None else ' '}  max {used:>12,} visits/flow  {shown}",
        flush=True,
    )
    return row


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--snapshot", action="append", default=[], type=Path)
    parser.add_argument("--before-seconds", type=float, default=30.0)
    parser.add_argument("--json", action="store_true", help="print the rows as JSON too")
    parser.add_argument("--set-elements", type=int, default=1_000_000, metavar="N")
    args = parser.parse_args()
    print(f"budget: {MAX_STEPS:,} rule visits per flow (engine.MAX_STEPS)")
    rows = [
        run("hostile 4 jumps x 15 deep, before", hostile(), Unbounded, args.before_seconds),
        run("hostile 4 jumps x 15 deep, after", hostile()),
        run("hostile 3 jumps x 15 deep, after", hostile(3, 15)),
        run("firewalld 12 zones x 40 services", firewalld()),
        run("kube-proxy 5,000 services", kube_proxy()),
    ]
    for path in args.snapshot:
        rows.append(run(path.name, json.loads(path.read_text())))
    if args.set_elements:
        with tempfile.TemporaryDirectory() as tmp:
            for concat in (False, True):
                path = Path(tmp) / "big-set.json"
                write_big_set(path, args.set_elements, concat)
                kind = "ip daddr . tcp dport" if concat else "prefixes and ranges"
                rows.append(memory_row(f"set of {args.set_elements:,} {kind}", path))
                path.unlink()
    for path in args.snapshot:
        rows.append(memory_row(path.name, path))
    if args.json:
        print(json.dumps(rows, indent=2))


if __name__ == "__main__":
    main()
