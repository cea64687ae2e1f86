"""How fast and how cheaply ``hotspotguard status --watch`` follows the kernel (root; namespaces).

In a fresh namespace lab (benchmarks/nslab.py: hs0, up0, docker0, NetworkManager's table):

1. latency: ``--changes`` (50) rule changes that flip the verdict (a drop rule for hs0 added,
   then flushed), ``--pause`` (0.1 s) apart, then 50 back to back (each right after the
   previous state line: this measures the rate limit, see hotspotguard.watch), each
   committed through libnftables in this process (a thread inside the namespace; the timestamp
   is taken the moment the commit call returns), to the state line the watcher prints;
2. burst: ``--burst`` (10,000) separate nft transactions spread over ``--burst-seconds`` (2 s),
   the last one flipping the verdict: the watcher's evaluations, its CPU time (its own, and its
   children's: the save tools and ``ip``), and the latency after the last change;
3. idle: ``--idle-seconds`` (60) without a change: the watcher's wake-ups (context switches of
   all its threads, /proc/PID/task/*/schedstat) and CPU time (/proc/PID/stat). The xtables
   lock is global: iptables-legacy runs in *other* namespaces (other test suites, containers)
   still wake the watcher, which then ignores them (no legacy table here: see ``ignored``);
4. legacy latency (last, as it creates this namespace's legacy tables);
5. churn (``--churn-sizes``, default 1,000 and 10,000 rules; ``make bench`` adds 100,000): a
   fresh lab per size holding benchmarks/bigruleset.py's ruleset (Docker's iptables-nft
   ``FORWARD DROP`` with its published-port rules and ufw: half the rules; a hand-written
   ``inet custom`` table: the other half), the watcher started on it, then one unrelated rule
   added to or flushed from a chain of the custom table every second (without echo: an
   ``add rule --echo`` at 100k rules costs nft seconds of its own) for
   ``--churn-seconds`` (40); a third of the way in the seed's DOCKER-USER fix is committed
   (one ``iptables-nft-restore --noflush``), two thirds in it is taken back. Printed: the
   watcher's CPU over the churn (its own and its children's, % of one core), the two verdict
   flips (from the fixing command's exit to the state line) and the watcher's peak RSS.

Prints figures, asserts nothing. Usage: ``sudo .venv/bin/python benchmarks/bench_watch.py``
(``--only-churn`` for section 5 alone).
"""

from __future__ import annotations

import argparse
import contextlib
import ctypes
import json
import os
import queue
import statistics
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

import bigruleset
import nslab

ROOT = Path(__file__).resolve().parents[1]
NM_TABLE = ROOT / "tests" / "kernel" / "scenarios" / "rulesets" / "nm-shared-hs0.nft"
CLK_TCK = os.sysconf("SC_CLK_TCK")
_CLONE_NEWNET = 0x40000000


class NsNft:
    """libnftables commands run by a thread inside a namespace (setns moves one thread)."""

    def __init__(self, ns: str) -> None:
        self.jobs: queue.SimpleQueue[tuple[Callable[[], Any], queue.SimpleQueue[Any]] | None]
        self.jobs = queue.SimpleQueue()
        ready: queue.SimpleQueue[BaseException | None] = queue.SimpleQueue()
        self.thread = threading.Thread(target=self._main, args=(ns, ready), daemon=True)
        self.thread.start()
        error = ready.get()
        if error is not None:
            raise error

    def _main(self, ns: str, ready: queue.SimpleQueue[BaseException | None]) -> None:
        try:
            libc = ctypes.CDLL(None, use_errno=True)
            fd = os.open(f"/run/netns/{ns}", os.O_RDONLY | os.O_CLOEXEC)
            try:
                if libc.setns(fd, _CLONE_NEWNET) != 0:
                    raise OSError(ctypes.get_errno(), "setns")
            finally:
                os.close(fd)
            import nftables  # type: ignore[import-untyped]

            self.ctx = nftables.Nftables(sofile="libnftables.so.1")
        except BaseException as exc:
            ready.put(exc)
            return
        ready.put(None)
        while (job := self.jobs.get()) is not None:
            fn, answer = job
            try:
                answer.put(fn())
            except BaseException as exc:
                answer.put(exc)

    def call(self, fn: Callable[[], Any]) -> Any:
        answer: queue.SimpleQueue[Any] = queue.SimpleQueue()
        self.jobs.put((fn, answer))
        result = answer.get()
        if isinstance(result, BaseException):
            raise result
        return result

    def cmd(self, text: str) -> float:
        """Run one nft command; the monotonic time at which it returned (committed)."""

        def run() -> float:
            rc, _, err = self.ctx.cmd(text)
            now = time.monotonic()
            if rc != 0:
                raise RuntimeError(f"nft {text}: {err}")
            return now

        result: float = self.call(run)
        return result

    def added(self, text: str) -> int:
        """Run one ``add rule`` command; the handle of the rule it added."""

        def run() -> int:
            self.ctx.set_echo_output(True)
            self.ctx.set_handle_output(True)
            self.ctx.set_json_output(True)
            try:
                rc, out, err = self.ctx.cmd(text)
            finally:
                self.ctx.set_echo_output(False)
                self.ctx.set_handle_output(False)
                self.ctx.set_json_output(False)
            if rc != 0:
                raise RuntimeError(f"nft {text}: {err}")
            for item in json.loads(out)["nftables"]:
                for verb in item.values():
                    if isinstance(verb, dict) and "rule" in verb:
                        return int(verb["rule"]["handle"])
            raise RuntimeError(f"nft {text}: no handle echoed")

        result: int = self.call(run)
        return result

    def many(self, texts: list[str], seconds: float) -> float:
        """Run the commands spread evenly over `seconds`; when the last one returned."""

        def run() -> float:
            start = time.monotonic()
            last = start
            for i, text in enumerate(texts):
                due = start + seconds * i / len(texts)
                if (wait := due - time.monotonic()) > 0:
                    time.sleep(wait)
                rc, _, err = self.ctx.cmd(text)
                last = time.monotonic()
                if rc != 0:
                    raise RuntimeError(f"nft {text}: {err}")
            return last

        result: float = self.call(run)
        return result

    def close(self) -> None:
        self.jobs.put(None)


class Watcher:
    """The watcher child: its JSON lines with the time each was read, its debug lines."""

    def __init__(self, lab: nslab.Lab, verbose: bool = False) -> None:
        self.verbose = verbose
        env = dict(os.environ, HOTSPOTGUARD_WATCH_DEBUG="1")
        argv = [sys.executable, "-m", "hotspotguard", "status", "--watch", "--json"]
        self.proc = nslab.spawn(
            lab.argv([*argv, "--iface", "hs0"]),
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            env=env,
        )
        self.lines: queue.SimpleQueue[tuple[float, dict[str, Any]]] = queue.SimpleQueue()
        self.evaluations = 0
        self.stats_line = "?"
        threading.Thread(target=self._out, daemon=True).start()
        threading.Thread(target=self._err, daemon=True).start()

    def _out(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            self.lines.put((time.monotonic(), json.loads(line)))

    def _err(self) -> None:
        assert self.proc.stderr is not None
        for line in self.proc.stderr:
            if line.startswith(b"watch: evaluation "):
                self.evaluations += 1
            if line.startswith(b"watch: stats: "):
                self.stats_line = line.decode().strip()[len("watch: stats: ") :]
            if self.verbose:
                sys.stderr.write(f"{time.monotonic():.3f} " + line.decode(errors="replace"))
            elif not line.startswith(b"watch: "):
                sys.stderr.write("watcher: " + line.decode(errors="replace"))

    def next(self, timeout: float = 30) -> tuple[float, dict[str, Any]]:
        return self.lines.get(timeout=timeout)

    def until(self, state: str, timeout: float = 30) -> float:
        deadline = time.monotonic() + timeout
        while True:
            at, doc = self.lines.get(timeout=max(0.001, deadline - time.monotonic()))
            if doc["state"] == state:
                return at

    def drain(self, quiet: float = 0.3) -> int:
        n = 0
        while True:
            try:
                self.lines.get(timeout=quiet)
                n += 1
            except queue.Empty:
                return n

    def cpu(self) -> tuple[float, float]:
        """(own CPU seconds, children's CPU seconds: the waited-for ones' and the running
        ones', such as the nft monitor of system.nftmonitor)."""
        fields = Path(f"/proc/{self.proc.pid}/stat").read_text().rsplit(")", 1)[1].split()
        utime, stime, cutime, cstime = (int(f) for f in fields[11:15])
        running = 0
        for pid in self.children():
            try:
                child = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue
            running += int(child[11]) + int(child[12])
        return (utime + stime) / CLK_TCK, (cutime + cstime + running) / CLK_TCK

    def children(self) -> list[int]:
        """The watcher's running children."""
        found: list[int] = []
        for task in Path(f"/proc/{self.proc.pid}/task").iterdir():
            with contextlib.suppress(OSError):
                found += [int(p) for p in Path(task, "children").read_text().split()]
        return found

    def schedstat(self) -> tuple[int, float]:
        """(times scheduled in, CPU seconds) summed over all threads."""
        runs, cpu = 0, 0
        for task in Path(f"/proc/{self.proc.pid}/task").iterdir():
            try:
                ns_cpu, _, slices = Path(task, "schedstat").read_text().split()
            except OSError:
                continue
            runs += int(slices)
            cpu += int(ns_cpu)
        return runs, cpu / 1e9


def _pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def bench(args: argparse.Namespace) -> None:
    prefix = f"hgw{os.getpid()}"
    with nslab.Lab(prefix) as lab:
        nslab.check(lab.argv(["nft", "-f", str(NM_TABLE)]))
        nslab.check(
            lab.argv(
                [
                    "nft",
                    "add table inet bench; "
                    "add chain inet bench c { type filter hook forward priority 10; }",
                ]
            )
        )
        nft = NsNft(lab.host)
        watcher = Watcher(lab, args.verbose)
        try:
            t_start = time.monotonic()
            _, first = watcher.next()
            print(f"first state: {first['state']} after {time.monotonic() - t_start:.2f} s")
            watcher.drain()

            # 1. latency: isolated changes (100 ms apart), then back to back
            for label, pause in (("isolated", args.pause), ("back to back", 0.0)):
                latencies: list[float] = []
                for _ in range(args.changes // 2):
                    time.sleep(pause)
                    committed = nft.cmd('add rule inet bench c iifname "hs0" drop')
                    latencies.append(watcher.until("blocked") - committed)
                    time.sleep(pause)
                    committed = nft.cmd("flush chain inet bench c")
                    latencies.append(watcher.until("ok") - committed)
                ms = [x * 1000 for x in latencies]
                print(
                    f"latency nft, {label} ({len(ms)} changes): "
                    f"median {statistics.median(ms):.1f} ms, p95 {_pct(ms, 0.95):.1f} ms, "
                    f"max {max(ms):.1f} ms"
                )
            # 2. burst
            evals0, (cpu0, child0) = watcher.evaluations, watcher.cpu()
            texts = ["add rule inet bench c counter"] * (args.burst - 1)
            texts.append('add rule inet bench c iifname "hs0" drop')
            t0 = time.monotonic()
            last = nft.many(texts, args.burst_seconds)
            done = watcher.until("blocked", timeout=120)
            time.sleep(1.0)
            lines = 1 + watcher.drain()
            cpu1, child1 = watcher.cpu()
            print(
                f"burst: {args.burst} transactions in {last - t0:.2f} s -> "
                f"{watcher.evaluations - evals0} evaluations, {lines} state line(s), "
                f"CPU {1000 * (cpu1 - cpu0):.0f} ms own + {1000 * (child1 - child0):.0f} ms "
                f"children, latency after the last change {1000 * (done - last):.0f} ms"
            )
            nft.cmd("flush chain inet bench c")
            watcher.until("ok")
            watcher.drain(1.0)

            # 3. idle
            runs0, sched0 = watcher.schedstat()
            cpu0, child0 = watcher.cpu()
            evals0 = watcher.evaluations
            time.sleep(args.idle_seconds)
            runs1, sched1 = watcher.schedstat()
            cpu1, child1 = watcher.cpu()
            print(
                f"idle {args.idle_seconds:.0f} s: {runs1 - runs0} wake-ups, "
                f"{1000 * (sched1 - sched0):.2f} ms CPU (schedstat), "
                f"{1000 * (cpu1 - cpu0):.0f} ms (stat, in ticks), "
                f"{watcher.evaluations - evals0} evaluations"
            )
            # 4. (last: it creates legacy tables, after which other namespaces' legacy
            # lock events are no longer ignored)
            legacy: list[float] = []
            for policy, state in (("DROP", "blocked"), ("ACCEPT", "ok")) * 5:
                time.sleep(args.pause)
                res = nslab.check(lab.argv(["iptables-legacy", "-P", "FORWARD", policy]))
                returned = time.monotonic()
                legacy.append((watcher.until(state) - returned) * 1000)
                del res
            print(
                f"latency iptables-legacy ({len(legacy)} changes, from the command's exit): "
                f"median {statistics.median(legacy):.1f} ms, max {max(legacy):.1f} ms"
            )

            watcher.proc.terminate()
            watcher.proc.wait(10)
            time.sleep(0.2)
            print(f"watcher: {watcher.stats_line}")
        finally:
            nft.close()
            nslab.kill_children()


#: the seed's DOCKER-USER fix, and ufw's input opened to the hotspot (DHCP, DNS: ufw's
#: default input policy drops them, a verdict of its own): one commit that makes hs0 "ok"
FIX_RULES = (
    ("DOCKER-USER", "-s 10.42.0.0/24 -i hs0 -o up0 -j ACCEPT"),
    (
        "DOCKER-USER",
        "-d 10.42.0.0/24 -i up0 -o hs0 -m conntrack --ctstate RELATED,ESTABLISHED -j ACCEPT",
    ),
    ("INPUT", "-i hs0 -j ACCEPT"),
)


def _restore(lab: nslab.Lab, text: str) -> float:
    """One iptables-nft-restore --noflush commit; the monotonic time its process exited."""
    res = nslab.run(lab.argv(["iptables-nft-restore", "--noflush"]), 60, text.encode())
    if res.returncode != 0:
        raise RuntimeError(f"iptables-nft-restore: {res.stderr.decode(errors='replace')}")
    return time.monotonic()


def _peak_rss_kib(pid: int) -> int:
    with contextlib.suppress(OSError):
        return _read_peak_rss_kib(pid)
    return 0


def _read_peak_rss_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1])
    return 0


def churn_one(size: int, args: argparse.Namespace) -> dict[str, float]:
    """Section 5 for one ruleset size (a lab of its own)."""
    generated = bigruleset.generate(size)
    prefix = f"hgc{os.getpid()}"
    with nslab.Lab(prefix) as lab:
        workdir = Path(f"/tmp/{prefix}-churn")
        nft_file, ipt_file, ip6t_file = generated.write(workdir)
        t_load = time.monotonic()
        for argv in (
            ["iptables-nft-restore", "--noflush", str(ipt_file)],
            ["ip6tables-nft-restore", "--noflush", str(ip6t_file)],
            ["nft", "-f", str(nft_file)],
        ):
            nslab.check(lab.argv(argv), timeout=3600)
        load_seconds = time.monotonic() - t_load
        nft = NsNft(lab.host)
        watcher = Watcher(lab, args.verbose)
        try:
            t_start = time.monotonic()
            _, first = watcher.next(timeout=600)
            first_seconds = time.monotonic() - t_start
            if first["state"] != "blocked":
                print(f"  (first state {first['state']}: {first.get('reason')})")
            watcher.drain(1.0)
            fix = "".join(f"-I {chain} {rule}\n" for chain, rule in FIX_RULES)
            undo = "".join(f"-D {chain} {rule}\n" for chain, rule in FIX_RULES)
            fix, undo = (f"*filter\n{text}COMMIT\n" for text in (fix, undo))
            seconds = args.churn_seconds
            steps = {round(seconds / 3): (fix, "ok"), round(2 * seconds / 3): (undo, "blocked")}
            flips: list[float] = []
            nft.cmd("add chain inet custom churn")
            watcher.drain(1.0)
            cpu0, child0 = watcher.cpu()
            t0 = time.monotonic()
            for second in range(seconds):
                due = t0 + second
                if (wait := due - time.monotonic()) > 0:
                    time.sleep(wait)
                if second % 2:
                    nft.cmd("flush chain inet custom churn")
                else:
                    nft.cmd(f"add rule inet custom churn {_churn_rule(second)}")
                if second in steps:
                    text, state = steps[second]
                    committed = _restore(lab, text)
                    try:
                        flips.append(watcher.until(state, timeout=120) - committed)
                    except queue.Empty:
                        print(f"  (no {state!r} state within 120 s)", flush=True)
            elapsed = time.monotonic() - t0
            cpu1, child1 = watcher.cpu()
            rss = _peak_rss_kib(watcher.proc.pid)
            children_rss = sum(_peak_rss_kib(pid) for pid in watcher.children())
            watcher.proc.terminate()
            watcher.proc.wait(30)
            result = {
                "rules": size,
                "load_s": load_seconds,
                "first_state_s": first_seconds,
                "cpu_own_pct": 100 * (cpu1 - cpu0) / elapsed,
                "cpu_children_pct": 100 * (child1 - child0) / elapsed,
                "flip_ms": [1000 * f for f in flips],
                "peak_rss_mib": rss / 1024,
                "children_rss_mib": children_rss / 1024,
            }
            print(
                f"churn {size:>7,} rules: watcher CPU {result['cpu_own_pct']:.1f} % own + "
                f"{result['cpu_children_pct']:.1f} % children (1 change/s for {elapsed:.0f} s), "
                f"flips {', '.join(f'{ms:.0f}' for ms in result['flip_ms'])} ms, "
                f"peak RSS {result['peak_rss_mib']:.0f} MiB (its running children: "
                f"{result['children_rss_mib']:.0f} MiB), first state after "
                f"{first_seconds:.2f} s (ruleset loaded in {load_seconds:.1f} s)",
                flush=True,
            )
            print(f"  watcher: {watcher.stats_line}", flush=True)
            return result
        finally:
            nft.close()
            nslab.kill_children()
            for path in (nft_file, ipt_file, ip6t_file):
                path.unlink(missing_ok=True)
            with contextlib.suppress(OSError):
                workdir.rmdir()


def _churn_rule(n: int) -> str:
    return f"ip saddr 192.0.2.{n % 250 + 1} tcp dport {1000 + n} counter accept"


def churn(args: argparse.Namespace) -> None:
    for size in args.churn_sizes:
        churn_one(size, args)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--changes", type=int, default=50)
    parser.add_argument("--verbose", action="store_true", help="show the watcher's log")
    parser.add_argument("--pause", type=float, default=0.1, help="seconds between changes")
    parser.add_argument("--burst", type=int, default=10_000)
    parser.add_argument("--burst-seconds", type=float, default=2.0)
    parser.add_argument("--idle-seconds", type=float, default=60.0)
    parser.add_argument(
        "--churn-sizes",
        type=lambda text: [int(x) for x in text.split(",") if x],
        default=[1_000, 10_000],
        help="comma-separated ruleset sizes of the churn section (100000 is minutes a size)",
    )
    parser.add_argument("--churn-seconds", type=int, default=40)
    parser.add_argument("--only-churn", action="store_true", help="the churn section alone")
    args = parser.parse_args()
    if os.geteuid() != 0:
        print("bench_watch needs root (network namespaces)", file=sys.stderr)
        return 2
    try:
        if not args.only_churn:
            bench(args)
        churn(args)
    except KeyboardInterrupt:
        return 130
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
