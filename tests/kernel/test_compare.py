"""The kernel-vs-engine comparison rules (pure: no root, no lab)."""

from __future__ import annotations

from typing import Any

import pytest

from tests.kernel.engine import compare
from tests.lab import ALL_FLOWS, KernelFlow


def _kernel(**over: KernelFlow) -> dict[str, KernelFlow]:
    base = {f: KernelFlow(True) for f in ALL_FLOWS}
    base["outbound"] = KernelFlow(True, True, seen_source="198.51.100.2")
    base["outbound6"] = KernelFlow(True, False, seen_source="2001:db8:42::10")
    base.update(over)
    return base


def _engine(verdict: str = "ok", **over: dict[str, Any]) -> dict[str, Any]:
    flows: dict[str, Any] = {f: {"verdict": "accept", "nat": None} for f in ALL_FLOWS}
    flows["outbound"]["nat"] = "masquerade"
    flows.update(over)
    return {"iface": "hs0", "verdict": verdict, "flows": flows, "blocked_by": None}


def test_agreement() -> None:
    problems, table = compare(_kernel(), _engine(), verdict="ok")
    assert problems == []
    assert "outbound" in table


def test_false_ok_is_flagged_as_the_worst() -> None:
    kernel = _kernel(outbound=KernelFlow(False), reply=KernelFlow(None))
    problems, table = compare(kernel, _engine())
    assert problems == ["FALSE OK on outbound: engine accept, the kernel DROPPED it"]
    assert "worst" in table


def test_false_alarm_nat_mismatch_and_skipped_reply() -> None:
    kernel = _kernel(dns=KernelFlow(True), reply=KernelFlow(None))
    engine = _engine(
        dns={"verdict": "drop", "nat": None},
        outbound={"verdict": "accept", "nat": None},
        reply={"verdict": "drop", "nat": None},
    )
    problems, _ = compare(kernel, engine)
    assert any(p.startswith("false alarm on dns") for p in problems)
    assert any(p.startswith("outbound: engine nat=None") for p in problems)
    assert not any("reply" in p for p in problems)  # the kernel could not test it


def test_unknown_only_where_allowed() -> None:
    engine = _engine("unknown", dns6={"verdict": "unknown", "nat": None})
    problems, _ = compare(_kernel(), engine, verdict="ok")
    assert len(problems) == 2  # the flow and the hotspot verdict
    problems, _ = compare(_kernel(), engine, verdict="ok", expect_unknown=frozenset({"dns6"}))
    assert problems == []


def test_verdict_and_owner() -> None:
    engine = _engine("blocked")
    engine["blocked_by"] = {"owner": "ufw"}
    problems, _ = compare(_kernel(), engine, verdict="ok", blocked_by="docker")
    assert problems == [
        "hotspot verdict: engine 'blocked', scenario expects 'ok'",
        "blocked_by owner: engine 'ufw', scenario expects 'docker'",
    ]


def test_lab_says_why_it_cannot_run(monkeypatch: pytest.MonkeyPatch) -> None:
    import tests.lab as lab

    monkeypatch.setattr(lab.os, "geteuid", lambda: 1000)
    assert "root" in (lab.lab_unavailable_reason() or "")
    monkeypatch.setattr(lab.os, "geteuid", lambda: 0)
    monkeypatch.setattr(lab, "_which", lambda tool: None if tool == "dnsmasq" else "/bin/true")
    assert lab.lab_unavailable_reason() == "the kernel lab needs these tools: dnsmasq"
