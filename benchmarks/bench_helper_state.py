"""What one rule change costs the helper and the applet as a user: ``GetSnapshot`` + local
evaluation (the applet before) against ``GetState`` (the helper's live model), at --sizes rules.

In the polkit lab (tests/polkitlab.py: a private system bus, a real polkitd, the venv's
``hotspotguard-helper`` bus-activated in a fresh network namespace) the ruleset of
benchmarks/bigruleset.py is loaded (Docker's iptables-nft FORWARD DROP with its published ports
and ufw, and a hand-written ``inet`` table) with a hotspot hs0.  A root client subscribes (as
the applet does), then for each of --changes changes — one unrelated rule added to, or the
chain flushed in, the ``inet`` table — waits for ``Changed`` and asks as the applet would.  CPU
is the helper's own plus its children's (the nft monitor included), per change; "applet" is
this process's CPU for the answer (decoding, and for GetSnapshot the evaluation).

Then the same changes under ``hotspotguard status --watch --json`` run as a lab user (the
command line, which reads the helper's ``GetState`` as the applet does): CPU per change of the
watch process and of the helper, from the change to the watcher's evaluation (its
HOTSPOTGUARD_WATCH_DEBUG line).  ``--cli-src DIR`` runs that command from another source tree
(a checkout of an older commit: the before of a before/after).  The helper's peak RSS
(VmHWM) is its high-water mark after its first answer (its first full reading: the figure of
issue 14, target ≤ 450 MiB at 100,000 rules) and after the run.

``GetSnapshot`` is measured only at the sizes of ``--snapshot-sizes`` (at 100,000 rules one
snapshot per change takes seconds of CPU: 20 of them make minutes).

Prints figures, asserts nothing.  Usage:
``sudo .venv/bin/python benchmarks/bench_helper_state.py [--sizes 1000,10000,100000]``.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import queue
import statistics
import subprocess
import sys
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from tests.polkitlab import CLEAN_ENV, HOTSPOT_LINKS, PolkitLab, polkit_lab_unavailable_reason

import bigruleset
from hotspotguard.system.helper_client import HelperClient
from hotspotguard.watch import HotspotInfo

CLK_TCK = os.sysconf("SC_CLK_TCK")
RSS_TARGET_MIB = 450  # the peak RSS of a first full reading at RSS_TARGET_SIZE rules (issue 14)
RSS_TARGET_SIZE = 100_000


def _task_cpu(pid: int) -> float:
    """CPU seconds of all of `pid`'s threads (schedstat: nanoseconds, not clock ticks)."""
    total = 0
    for task in Path(f"/proc/{pid}/task").iterdir():
        with contextlib.suppress(OSError):
            total += int(Path(task, "schedstat").read_text().split()[0])
    return total / 1e9


def helper_cpu(pid: int) -> float:
    """The helper's CPU seconds: its own, its waited-for children's and its running ones'."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    total = (int(fields[13]) + int(fields[14])) / CLK_TCK + _task_cpu(pid)
    for task in Path(f"/proc/{pid}/task").iterdir():
        with contextlib.suppress(OSError):
            for child in Path(task, "children").read_text().split():
                with contextlib.suppress(OSError):
                    total += _task_cpu(int(child))
    return total


async def per_change(
    lab: PolkitLab, method: str, changes: int
) -> tuple[float, float, float, float]:
    """(helper CPU s, applet CPU s, wall s from Changed to the state) medians per change, and
    the helper's peak RSS (MiB) after its first answer (its first full reading)."""
    from hotspotguard.ui.controller import assess_document

    changed = asyncio.Event()
    hotspots = [HotspotInfo("hs0")]
    helper_s: list[float] = []
    applet_s: list[float] = []
    wall_s: list[float] = []
    async with HelperClient(bus_address=lab.bus_address, interactive=False) as client:
        await client.subscribe(changed.set)

        async def ask() -> str:
            if method == "GetState":
                return str((await client.get_state(["hs0"]))["state"])
            doc = await client.get_snapshot()
            return assess_document(doc, hotspots).state.state

        first = await ask()  # the first reading: full either way
        pid = await asyncio.to_thread(lab.helper_pid)
        assert pid is not None
        first_peak = peak_rss_mib(pid)
        await asyncio.to_thread(lab.netns_run, ["nft", "add", "chain", "inet", "custom", "churn"])
        await asyncio.wait_for(changed.wait(), 30)
        await ask()
        await asyncio.sleep(0.5)
        for n in range(changes):
            changed.clear()
            command = change_command(n)
            cpu0 = helper_cpu(pid)  # the change's notifications (and the nft monitor's) count
            await asyncio.to_thread(lab.netns_run, ["nft", *command.split()])
            await asyncio.wait_for(changed.wait(), 30)
            own0, t0 = time.process_time(), time.perf_counter()
            state = await ask()
            wall_s.append(time.perf_counter() - t0)
            applet_s.append(time.process_time() - own0)
            await asyncio.sleep(0.2)  # the helper's work after the answer (freeing) counts too
            helper_s.append(helper_cpu(pid) - cpu0)
        print(f"    (state {first} → {state})")
    medians = (statistics.median(v) for v in (helper_s, applet_s, wall_s))
    return (*medians, first_peak)


def peak_rss_mib(pid: int) -> float:
    """VmHWM of `pid`, MiB."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return 0.0


def change_command(n: int) -> str:
    if n % 2:
        return "flush chain inet custom churn"
    return (
        f"add rule inet custom churn ip saddr 192.0.2.{n % 250 + 1} "
        f"tcp dport {1000 + n} counter accept"
    )


def watch_per_change(
    lab: PolkitLab, changes: int, cli_src: str | None
) -> tuple[float, float, float, str]:
    """`status --watch --json` as a user: (helper CPU s, watch CPU s, wall s from the change
    to the evaluation) medians per change, and the state it printed."""
    env = dict(CLEAN_ENV, HOTSPOTGUARD_WATCH_DEBUG="1")
    if cli_src:
        env["PYTHONPATH"] = cli_src
    argv = [str(lab.venv / "bin" / "python"), "-m", "hotspotguard", "status", "--iface", "hs0"]
    proc = subprocess.Popen(
        lab.ns_argv([*argv, "--watch", "--json"], lab.users["allow"]),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )
    evaluations: queue.Queue[str] = queue.Queue()
    printed: list[str] = []

    def read_stderr() -> None:
        for line in proc.stderr or ():
            if line.startswith("watch: evaluation "):
                evaluations.put(line)

    threading.Thread(target=read_stderr, daemon=True).start()
    threading.Thread(target=lambda: printed.extend(proc.stdout or ()), daemon=True).start()
    helper_s: list[float] = []
    watch_s: list[float] = []
    wall_s: list[float] = []
    try:
        evaluations.get(timeout=600)  # the first: a full reading in the helper
        time.sleep(1.0)
        pid = lab.helper_pid()
        if pid is None:
            said = printed[-1].strip() if printed else "nothing"
            raise RuntimeError(f"no helper after the first evaluation; the watch said: {said}")
        for n in range(changes):
            while not evaluations.empty():
                evaluations.get()
            cpu0, own0 = helper_cpu(pid), helper_cpu(proc.pid)
            t0 = time.perf_counter()
            lab.netns_run(["nft", *change_command(n).split()])
            try:
                evaluations.get(timeout=60)
            except queue.Empty:
                raise RuntimeError("a change not evaluated within 60 s") from None
            wall_s.append(time.perf_counter() - t0)
            time.sleep(0.3)  # the rest of the work (freeing, a recheck) counts too
            helper_s.append(helper_cpu(pid) - cpu0)
            watch_s.append(helper_cpu(proc.pid) - own0)
    finally:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:  # a worker thread still in an evaluation
            proc.kill()
            proc.wait(10)
    state = json.loads(printed[-1])["state"] if printed else "?"
    return (
        statistics.median(helper_s),
        statistics.median(watch_s),
        statistics.median(wall_s),
        state,
    )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="1000,10000,100000")
    parser.add_argument("--snapshot-sizes", default="1000,10000")
    parser.add_argument("--changes", type=int, default=20)
    parser.add_argument("--cli-src", help="run `status --watch` from this source tree")
    args = parser.parse_args()
    reason = polkit_lab_unavailable_reason()
    if reason:
        print(f"bench_helper_state: {reason}", file=sys.stderr)
        return 1
    for size in (int(s) for s in args.sizes.split(",")):
        generated = bigruleset.generate(size)
        lab = PolkitLab()
        workdir = Path(f"/tmp/hg-helperstate-{os.getpid()}")
        try:
            for command in HOTSPOT_LINKS:
                lab.netns_run(["ip", *command.split()])
            lab.netns_run(["sysctl", "-q", "-w", "net.ipv4.ip_forward=1"])
            nft_file, ipt_file, ip6t_file = generated.write(workdir)
            for argv in (
                ["iptables-nft-restore", "--noflush", str(ipt_file)],
                ["ip6tables-nft-restore", "--noflush", str(ip6t_file)],
                ["nft", "-f", str(nft_file)],
            ):
                lab.netns_run(argv)
            print(f"{size:,} rules:", flush=True)
            snapshots = size in {int(s) for s in args.snapshot_sizes.split(",") if s}
            for method in ("GetSnapshot", "GetState") if snapshots else ("GetState",):
                lab.stop_helper()  # a fresh helper for each: its model starts with the method
                helper, applet, wall, first_peak = asyncio.run(
                    per_change(lab, method, args.changes)
                )
                what = "GetSnapshot + evaluation" if method == "GetSnapshot" else "GetState"
                pid = lab.helper_pid()
                peak = f", helper peak RSS {peak_rss_mib(pid):.0f} MiB" if pid else ""
                print(
                    f"  {what:<24} per change (median of {args.changes}): helper CPU "
                    f"{helper * 1000:.1f} ms, applet CPU {applet * 1000:.1f} ms, "
                    f"Changed → state {wall * 1000:.0f} ms{peak}",
                    flush=True,
                )
                target = ""
                if size >= RSS_TARGET_SIZE:
                    met = "met" if first_peak <= RSS_TARGET_MIB else "missed"
                    target = f" (target at {RSS_TARGET_SIZE:,} rules ≤ {RSS_TARGET_MIB} MiB: {met})"
                print(
                    f"  {'':<24} helper peak RSS after its first {method}: "
                    f"{first_peak:.1f} MiB{target}",
                    flush=True,
                )
            lab.stop_helper()
            try:
                helper, watch, wall, state = watch_per_change(lab, args.changes, args.cli_src)
            except RuntimeError as error:
                print(f"  {'status --watch (user)':<24} {error}", flush=True)
                continue
            print(
                f"  {'status --watch (user)':<24} per change (median of {args.changes}): helper "
                f"CPU {helper * 1000:.1f} ms, watch CPU {watch * 1000:.1f} ms, "
                f"change → evaluated {wall * 1000:.0f} ms (state {state})",
                flush=True,
            )
        finally:
            lab.close()
            for path in workdir.glob("*"):
                path.unlink()
            with contextlib.suppress(OSError):
                workdir.rmdir()
    return 0


if __name__ == "__main__":
    sys.exit(main())
