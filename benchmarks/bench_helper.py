"""The privileged helper over D-Bus: round trips, cold activation, a fix end to end (root).

In the polkit lab (tests/polkitlab.py: a private system bus, a real polkitd, the venv's
``hotspotguard-helper`` bus-activated in a fresh network namespace):

1. round trip of ``ListFixes`` (a read without the ruleset dump: dispatch, validation, polkit's
   CheckAuthorization, the worker thread, JSON), ``--calls`` (300) sequential calls, from an
   unprivileged user allowed by the rules (what the applet does) and from root;
2. cold activation: the helper stopped, then one ``ListFixes`` (the bus starts the helper:
   Python, imports, RequestName, polkit, the answer), ``--cold`` (5) times;
3. a fix end to end (Docker 28's FORWARD drop + NetworkManager's table in the netns):
   ``ApplyFix`` (capture, plan, verify, one iptables-nft-restore commit, record) and ``UndoFix``
   as the user, ``--fixes`` (5) times;
4. under attack (issue 13): the helper's memory after a user polkit denies sends 30 MB
   arguments (4 connections × 2), and another user's ``ListFixes`` latency while a read-only
   user floods 16 connections × 120 ``PreviewFix``.

Prints figures, asserts nothing.  Usage: ``sudo .venv/bin/python benchmarks/bench_helper.py``.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from dbus_next import Message, MessageType
from tests.polkitlab import CLEAN_ENV, PolkitLab, polkit_lab_unavailable_reason

from hotspotguard.system.dbusio import MessageBus

NAME, PATH = "io.github.hotspotguard.Helper1", "/io/github/hotspotguard/Helper1"

# Runs as the test user with the client venv: times `calls` sequential calls, prints JSON.
USER_TIMER = r"""
import asyncio, json, sys, time
from hotspotguard.system.helper_client import HelperClient
calls = json.loads(sys.argv[1])
async def main():
    out = []
    async with HelperClient(interactive=False) as helper:
        for method, args in calls:
            t = time.perf_counter()
            await helper.call(method, *args)
            out.append(time.perf_counter() - t)
    print(json.dumps(out))
asyncio.run(main())
"""


def ms(seconds: float) -> str:
    return f"{seconds * 1000:.2f} ms"


def p95(values: list[float]) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(0.95 * (len(ordered) - 1)))]


def user_timings(lab: PolkitLab, calls: list[tuple[str, list[object]]]) -> list[float]:
    argv = lab.ns_argv(
        [str(lab.venv / "bin" / "python"), "-c", USER_TIMER, json.dumps(calls)], lab.users["allow"]
    )
    out = subprocess.run(argv, capture_output=True, text=True, env=CLEAN_ENV, check=True)
    return list(json.loads(out.stdout))


async def root_timings(lab: PolkitLab, n: int) -> list[float]:
    bus = await MessageBus(bus_address=lab.bus_address).connect()
    out = []
    try:
        for _ in range(n):
            t = time.perf_counter()
            reply = await bus.call(
                Message(destination=NAME, path=PATH, interface=NAME, member="ListFixes")
            )
            out.append(time.perf_counter() - t)
            assert reply is not None and reply.message_type == MessageType.METHOD_RETURN
    finally:
        bus.disconnect()
    return out


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=300)
    parser.add_argument("--cold", type=int, default=5)
    parser.add_argument("--fixes", type=int, default=5)
    args = parser.parse_args()
    reason = polkit_lab_unavailable_reason()
    if reason:
        print(f"bench_helper: {reason}", file=sys.stderr)
        return 1
    lab = PolkitLab()
    try:
        print(f"polkit lab up in {lab.setup_seconds:.2f} s")
        user_timings(lab, [("ListFixes", [])])  # activation, warm-up
        warm = user_timings(lab, [("ListFixes", [])] * args.calls)
        print(
            f"ListFixes round trip (user, polkit yes), {len(warm)} calls: "
            f"median {ms(statistics.median(warm))}, p95 {ms(p95(warm))}, max {ms(max(warm))}"
        )
        rooted = asyncio.run(root_timings(lab, args.calls))
        print(
            f"ListFixes round trip (root), {len(rooted)} calls: "
            f"median {ms(statistics.median(rooted))}, p95 {ms(p95(rooted))}"
        )

        cold = []
        for _ in range(args.cold):
            lab.stop_helper()
            cold.append(asyncio.run(root_timings(lab, 1))[0])
        print(
            f"cold bus activation to first answer ({len(cold)}×): "
            f"median {ms(statistics.median(cold))}, min {ms(min(cold))}, max {ms(max(cold))}"
        )

        lab.docker_hotspot()
        fix = ("ApplyFix", ["hs0", "docker-user", False, ""])
        undo = ("UndoFix", ["docker-user@hs0"])
        preview = user_timings(lab, [("PreviewFix", ["hs0", "docker-user"])] * args.fixes)
        times = user_timings(lab, [fix, undo] * args.fixes)
        applies, undos = times[0::2], times[1::2]
        print(
            f"PreviewFix (capture, plan, verify) median {ms(statistics.median(preview))}; "
            f"ApplyFix end to end median {ms(statistics.median(applies))} "
            f"(min {ms(min(applies))}); UndoFix median {ms(statistics.median(undos))} "
            f"({args.fixes}× each)"
        )
        under_attack(lab)
    finally:
        lab.close()
    return 0


def under_attack(lab: PolkitLab) -> None:
    import collections
    import concurrent.futures

    lab.reset_firewall()
    lab.docker_hotspot()
    user_timings(lab, [("ListFixes", [])])
    rss0, peak0 = lab.helper_memory()
    huge = {"member": "PreviewFix", "signature": "ss", "body": ["x" * (30 << 20), "docker-user"]}
    lab.flood(lab.users["deny"], [huge, huge], 4)
    rss, peak = lab.helper_memory()
    print(
        f"helper memory after 4 × 2 × 30 MB from a denied user: RSS {rss / 1024:.1f} MiB, "
        f"peak {peak / 1024:.1f} MiB (before: {rss0 / 1024:.1f} / {peak0 / 1024:.1f} MiB)"
    )
    quiet = user_timings(lab, [("ListFixes", [])] * 20)
    preview = {"method": "PreviewFix", "args": ["hs0", "docker-user"], "interactive": False}
    with concurrent.futures.ThreadPoolExecutor(1) as pool:
        flood = pool.submit(lab.flood, lab.users["read"], [preview] * 120, 16)
        time.sleep(1.0)
        loud = user_timings(lab, [("ListFixes", [])] * 20)
        answers = flood.result()
    names = collections.Counter(str(a.get("error", "ok")) for a in answers)
    print(
        f"another user's ListFixes: median {ms(statistics.median(quiet))} quiet, "
        f"median {ms(statistics.median(loud))} / max {ms(max(loud))} under a 16 × 120 "
        f"PreviewFix flood ({dict(names)})"
    )


if __name__ == "__main__":
    sys.exit(main())
