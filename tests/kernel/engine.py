"""The engine side of the oracle: run hotspotguard on a snapshot and compare it with the kernel.

Decoupled on purpose: the engine is driven through its CLI (`python -m hotspotguard explain
--snapshot FILE --json`), never imported.
"""

from __future__ import annotations

import functools
import json
import subprocess
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from tests.lab import ALL_FLOWS, HOST_HS_IF, KernelFlow

PYTHON = sys.executable


@functools.lru_cache(maxsize=1)
def engine_unavailable_reason() -> str | None:
    """None when `hotspotguard snapshot` and `explain --snapshot --json` exist."""
    for sub in ("snapshot", "explain"):
        proc = subprocess.run(
            [PYTHON, "-m", "hotspotguard", sub, "--help"],
            capture_output=True,
            text=True,
            check=False,
        )
        if proc.returncode != 0:
            return f"the engine CLI is not available yet (`hotspotguard {sub} --help` failed)"
        if sub == "explain" and ("--snapshot" not in proc.stdout or "--json" not in proc.stdout):
            return "`hotspotguard explain` has no --snapshot/--json yet"
    return None


class EngineError(RuntimeError):
    pass


def explain(snapshot: Mapping[str, Any], workdir: Path, iface: str = HOST_HS_IF) -> dict[str, Any]:
    """The engine's JSON report entry for `iface` (exit code 0 or 1 are both verdicts)."""
    path = workdir / "snapshot.json"
    path.write_text(json.dumps(snapshot))
    proc = subprocess.run(
        [PYTHON, "-m", "hotspotguard", "explain", "--snapshot", str(path), "--json"],
        capture_output=True,
        text=True,
        check=False,
    )
    if proc.returncode not in (0, 1):
        raise EngineError(
            f"hotspotguard explain failed (rc={proc.returncode}): {proc.stderr.strip()}\n"
            f"snapshot kept at {path}"
        )
    (workdir / "explain.json").write_text(proc.stdout)
    doc = json.loads(proc.stdout)
    for hotspot in doc.get("hotspots", []):
        if hotspot.get("iface") == iface:
            return dict(hotspot)
    raise EngineError(f"the engine reports no hotspot {iface}: {proc.stdout[:500]}")


def _owner(blocked_by: Any) -> str | None:
    if isinstance(blocked_by, Mapping):
        owner = blocked_by.get("owner")
        return str(owner) if owner is not None else None
    return None


def _kernel_text(k: KernelFlow | None) -> str:
    if k is None:
        return "-"
    if k.delivered is None:
        return "n/a"
    if not k.delivered:
        return "DROPPED"
    if k.masqueraded is None:
        return "delivered"
    return f"delivered ({'masq ' + str(k.seen_source) if k.masqueraded else 'no nat'})"


def compare(
    kernel: Mapping[str, KernelFlow],
    hotspot: Mapping[str, Any],
    *,
    expect_unknown: frozenset[str] = frozenset(),
    verdict: str | None = None,
    blocked_by: str | None = None,
) -> tuple[list[str], str]:
    """Flow-by-flow comparison.  Returns (problems, table); no problems = agreement.

    engine accept <=> kernel delivered; engine drop <=> kernel dropped; engine unknown only where
    the scenario allows it; for outbound flows also `nat is not None` <=> masqueraded.  A FALSE
    OK (engine accept, kernel dropped) is the worst failure and is flagged as such.
    """
    flows = hotspot.get("flows") or {}
    problems: list[str] = []
    rows = [("flow", "kernel", "engine", "")]
    for name in ALL_FLOWS:
        k = kernel.get(name)
        e = flows.get(name)
        e_verdict = e.get("verdict") if isinstance(e, Mapping) else None
        e_nat = e.get("nat") if isinstance(e, Mapping) else None
        e_text = "-" if e is None else f"{e_verdict}" + (f" ({e_nat})" if e_nat else "")
        status = ""
        if k is None or k.delivered is None:
            status = "(not compared)"
        elif e is None:
            status = "MISSING in engine"
            problems.append(f"{name}: the engine gives no verdict (kernel: {_kernel_text(k)})")
        elif e_verdict == "unknown":
            if name in expect_unknown:
                status = "unknown (allowed)"
            else:
                status = "UNKNOWN (not allowed)"
                problems.append(f"{name}: engine unknown, kernel {_kernel_text(k)}")
        elif e_verdict == "accept" and not k.delivered:
            status = "FALSE OK  <== worst"
            problems.append(f"FALSE OK on {name}: engine accept, the kernel DROPPED it")
        elif e_verdict == "drop" and k.delivered:
            status = "FALSE ALARM"
            problems.append(f"false alarm on {name}: engine drop, the kernel delivered it")
        elif e_verdict not in ("accept", "drop"):
            status = f"BAD VERDICT {e_verdict!r}"
            problems.append(f"{name}: unexpected engine verdict {e_verdict!r}")
        elif (
            name.startswith("outbound")
            and k.delivered
            and (e_nat is not None) != bool(k.masqueraded)
        ):
            status = "NAT MISMATCH"
            problems.append(
                f"{name}: engine nat={e_nat!r}, kernel "
                f"{'masqueraded to ' + str(k.seen_source) if k.masqueraded else 'not masqueraded'}"
            )
        else:
            status = "ok"
        rows.append((name, _kernel_text(k), e_text, status))
    engine_verdict = hotspot.get("verdict")
    owner = _owner(hotspot.get("blocked_by"))
    # an overall "unknown" is fine when it only comes from flows the scenario allows to be unknown
    unknown_flows = {
        n for n, e in flows.items() if isinstance(e, Mapping) and e.get("verdict") == "unknown"
    }
    allowed_unknown = engine_verdict == "unknown" and unknown_flows <= set(expect_unknown)
    if verdict is not None and engine_verdict != verdict and not allowed_unknown:
        problems.append(f"hotspot verdict: engine {engine_verdict!r}, scenario expects {verdict!r}")
    if blocked_by is not None and owner != blocked_by and not allowed_unknown:
        problems.append(f"blocked_by owner: engine {owner!r}, scenario expects {blocked_by!r}")
    widths = [max(len(r[i]) for r in rows) for i in range(4)]
    table = "\n".join(
        "  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)).rstrip() for r in rows
    )
    table += (
        f"\nengine hotspot verdict: {engine_verdict} (blocked_by owner {owner});"
        f" summary: {hotspot.get('summary')}"
    )
    return problems, table
