"""The chains dialog on the lab's real NetworkManager + Docker capture, and on big rulesets."""

from __future__ import annotations

import time
from typing import Any

from PySide6.QtCore import QModelIndex
from PySide6.QtWidgets import QApplication

from hotspotguard.ruleset.model import Chain, Rule, Ruleset, Table, Verdict
from hotspotguard.ui.chains import (
    NAME,
    PATH_ROLE,
    SHOWN_HOOKS,
    ChainsDialog,
    ChainsFilter,
    ChainsModel,
)
from hotspotguard.verdict.engine import HookIndex
from tests.ui.conftest import docker_document, evaluated


def docker_model(flow: str = "outbound") -> tuple[ChainsModel, Ruleset]:
    ruleset, report = evaluated(docker_document())
    model = ChainsModel(ruleset)
    model.set_flow(report.hotspots[0].flows[flow])
    return model, ruleset


def names(model: Any, parent: QModelIndex) -> list[str]:
    return [model.index(r, NAME, parent).data() for r in range(model.rowCount(parent))]


def child(model: Any, parent: QModelIndex, text: str) -> QModelIndex:
    for row in range(model.rowCount(parent)):
        index = model.index(row, NAME, parent)
        if str(index.data()).startswith(text):
            return index
    raise AssertionError(f"no row {text!r} under {parent.data()!r}: {names(model, parent)}")


def test_hooks_in_packet_order_and_chains_in_the_engines_order(qapp: Any) -> None:
    model, ruleset = docker_model()
    root = QModelIndex()
    assert names(model, root) == list(SHOWN_HOOKS)
    index = HookIndex.of(ruleset)
    for row, hook in enumerate(SHOWN_HOOKS):
        shown = names(model, model.index(row, 0))
        expected = [f"{e.table.family} {e.table.name} {e.chain.name}" for e in model.entries(hook)]
        assert [s.split("  ")[0] for s in shown] == expected
    # Docker's FORWARD was registered after NetworkManager's table: it runs first
    forward = model.index(SHOWN_HOOKS.index("forward"), 0)
    assert [s.split("  ")[0] for s in names(model, forward)] == [
        "ip filter FORWARD",
        "ip nm-shared-nmp-hs0 filter_forward",
    ]
    assert [e.chain.name for e in index.entries[("ip", "forward")]] == [
        "FORWARD",
        "filter_forward",
    ]
    base = child(model, forward, "ip filter FORWARD")
    assert base.siblingAtColumn(1).data() == "Docker"
    assert base.siblingAtColumn(3).data() == "drop"
    assert "iptables-nft" in base.data()


def test_the_outbound_path_and_the_dropping_rule(qapp: Any) -> None:
    model, _ = docker_model()
    forward = model.index(SHOWN_HOOKS.index("forward"), 0)
    assert forward.data(PATH_ROLE) == "path"
    assert model.index(SHOWN_HOOKS.index("input"), 0).data(PATH_ROLE) is None
    base = child(model, forward, "ip filter FORWARD")
    assert base.data(PATH_ROLE) == "path"
    nm = child(model, forward, "ip nm-shared-nmp-hs0")
    assert nm.data(PATH_ROLE) is None  # Docker dropped the packet before NM's chain ran
    jump = child(model, base, "-A FORWARD -j DOCKER-FORWARD")
    assert jump.data(PATH_ROLE) == "path"
    assert jump.siblingAtColumn(4).data() == "jump DOCKER-FORWARD"
    inner = names(model, jump)
    assert inner[0] == "-A DOCKER-FORWARD -j DOCKER-CT"
    policy = model.index(model.rowCount(base) - 1, 0, base)
    assert policy.data() == "policy drop"
    assert policy.data(PATH_ROLE) == "drop"
    expand, drop = model.path_indexes()
    assert drop == policy
    assert jump in expand and base in expand


def test_the_reply_flow_and_the_dhcp_flow(qapp: Any) -> None:
    model, _ = docker_model("dhcp")
    assert model.index(SHOWN_HOOKS.index("input"), 0).data(PATH_ROLE) is None  # no input chain
    assert model.index(SHOWN_HOOKS.index("forward"), 0).data(PATH_ROLE) is None
    model, _ = docker_model("reply")
    forward = model.index(SHOWN_HOOKS.index("forward"), 0)
    assert child(model, forward, "ip filter FORWARD").data(PATH_ROLE) == "path"


def test_search_keeps_the_ancestors_of_a_match_deep_in_a_jump(qapp: Any) -> None:
    model, _ = docker_model()
    proxy = ChainsFilter()
    proxy.setSourceModel(model)
    proxy.set_pattern("docker-ct")
    assert names(proxy, QModelIndex()) == ["forward"]
    forward = proxy.index(0, 0)
    assert [s.split("  ")[0] for s in names(proxy, forward)] == ["ip filter FORWARD"]
    base = proxy.index(0, 0, forward)
    assert names(proxy, base) == ["-A FORWARD -j DOCKER-FORWARD"]
    jump = proxy.index(0, 0, base)
    assert names(proxy, jump) == ["-A DOCKER-FORWARD -j DOCKER-CT"]
    proxy.set_pattern("masquerade")
    assert names(proxy, QModelIndex()) == ["postrouting"]
    proxy.set_pattern("")
    assert names(proxy, QModelIndex()) == list(SHOWN_HOOKS)


def test_dialog_copies_what_it_shows(qtbot: Any) -> None:
    ruleset, report = evaluated(docker_document())
    dialog = ChainsDialog(ruleset, report)
    qtbot.addWidget(dialog)
    dialog.show()
    qtbot.waitUntil(lambda: dialog.first_paint_seconds is not None)
    assert dialog.choice is not None and dialog.choice.name == "outbound"  # the blocked flow
    assert "dropped by Docker" in dialog.summary.text()
    text = dialog.text()
    assert "▸ ip filter FORWARD  [iptables-nft]   [Docker · 0 · drop · drop]" in text
    assert "      ▸ -A DOCKER-FORWARD -j DOCKER-CT   [jump DOCKER-CT]" in text
    assert "    ✖ policy drop   [policy drop]" in text
    dialog.copy_text()
    assert QApplication.clipboard().text() == text
    dialog.select_flow("nmp-hs0", "dns")
    assert "gets through" in dialog.summary.text()
    dialog.search.setText("POSTROUTING")
    dialog._apply_search()
    assert "ip nat POSTROUTING" in dialog.text()
    assert "FORWARD" not in dialog.text().split("\n", 1)[1]


def big_ruleset(rules: int) -> Ruleset:
    """One base chain of `rules` rules that jump to a chain of `rules` rules, plus a loop."""
    inner = Chain("INNER", tuple(Rule((), f"-A INNER -s 192.0.2.{i % 250} -j RETURN")
                                 for i in range(rules)))  # fmt: skip
    loop_a = Chain("LOOP-A", (Rule((Verdict("jump", "LOOP-B"),), "-A LOOP-A -j LOOP-B"),))
    loop_b = Chain("LOOP-B", (Rule((Verdict("jump", "LOOP-A"),), "-A LOOP-B -j LOOP-A"),))
    base_rules = [Rule((Verdict("jump", "INNER"),), "-A FORWARD -j INNER")]
    base_rules.append(Rule((Verdict("jump", "LOOP-A"),), "-A FORWARD -j LOOP-A"))
    base_rules += [Rule((), f"-A FORWARD -d 198.51.100.{i % 250} -j ACCEPT") for i in range(rules)]
    base = Chain("FORWARD", tuple(base_rules), hook="forward", policy="drop")
    return Ruleset((Table("ip", "filter", (base, inner, loop_a, loop_b), source="iptables-nft"),))


def test_a_100k_rule_chain_opens_lazily(qtbot: Any) -> None:
    """Only the rows asked for are built (the time it takes is a benchmark's figure:
    benchmarks/bench_ui.py; here it is printed, never asserted)."""
    ruleset = big_ruleset(100_000)
    HookIndex.of(ruleset)  # built by the evaluation the dialog follows
    dialog = ChainsDialog(ruleset)
    qtbot.addWidget(dialog)
    dialog.show()
    qtbot.waitUntil(lambda: dialog.first_paint_seconds is not None, timeout=30_000)
    print(f"first paint with 200,002 rules: {dialog.first_paint_seconds * 1000:.1f} ms")
    model = dialog.model
    forward = model.index(SHOWN_HOOKS.index("forward"), 0)
    base = model.index(0, 0, forward)
    assert model.rowCount(base) == 100_003  # two jumps, 100,000 rules, the policy
    assert len(model.node(base).children) < 200  # only the rows asked for exist
    loop = model.index(1, 0, base)
    a = model.index(0, 0, loop)  # LOOP-A's jump to LOOP-B
    assert a.data() == "-A LOOP-A -j LOOP-B"
    b = model.index(0, 0, a)
    assert b.data() == "-A LOOP-B -j LOOP-A"
    assert model.rowCount(b) == 0 and not model.hasChildren(b)  # the loop ends here
    proxy = dialog.proxy
    started = time.perf_counter()
    proxy.set_pattern("192.0.2.249")
    assert names(proxy, QModelIndex()) == ["forward"]
    print(f"search over 200,002 rules: {(time.perf_counter() - started) * 1000:.1f} ms")
