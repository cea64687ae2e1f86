"""Simplified Chinese through and through (issue 11, finding 7): the sentences the applet shows
are worded by hotspotguard.wording from the results' fields and translated, so the status
window of a blocked hotspot, its fix dialog and the chains dialog's flows carry no English
sentence of the engine's — while the command line and the JSON keep their English words."""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Iterator
from typing import Any

import pytest
from PySide6.QtCore import QCoreApplication, QLocale, QTranslator
from PySide6.QtWidgets import QAbstractButton, QComboBox, QGroupBox, QLabel, QTextEdit, QWidget

from hotspotguard import wording
from hotspotguard.ui.app import install_translations
from hotspotguard.ui.controller import Controller
from hotspotguard.ui.status_window import StatusWindow
from tests.ui.conftest import fixed_document
from tests.ui.fakes import HOTSPOT, EngineBackend

#: three English words in a row: a sentence, not a name (Docker, FORWARD) or a rule (policy drop)
ENGLISH = re.compile(r"\b[A-Za-z]{2,}[ ,']+[a-z]{2,}[ ,']+[a-z]{2,}\b")


@pytest.fixture
def chinese(qapp: Any) -> Iterator[None]:
    loaded = install_translations(qapp, QLocale("zh_CN"))
    assert loaded, "the zh_CN catalogue is not there"
    yield
    for translator in qapp.findChildren(QTranslator):
        if translator.filePath() in loaded:
            qapp.removeTranslator(translator)


def shown_texts(root: QWidget, children: bool = True) -> dict[str, str]:
    """Every text a person can read in `root` (and its `children`): labels, buttons, group
    titles, lists, tooltips (plain text boxes hold commands, which stay as they are)."""
    texts: dict[str, str] = {}
    for widget in [root, *(root.findChildren(QWidget) if children else ())]:
        if isinstance(widget, QTextEdit):
            continue
        name = f"{type(widget).__name__}#{widget.objectName()}"
        if isinstance(widget, (QLabel, QAbstractButton)):
            texts[f"{name} text"] = widget.text()
        if isinstance(widget, QGroupBox):
            texts[f"{name} title"] = widget.title()
        if isinstance(widget, QComboBox):
            for i in range(widget.count()):
                texts[f"{name} item {i}"] = widget.itemText(i)
        if widget.toolTip():
            texts[f"{name} tooltip"] = widget.toolTip()
    return texts


def english_in(texts: dict[str, str], literals: tuple[str, ...] = ()) -> dict[str, str]:
    """The texts with English sentences in them, once the firewall's own words (table, chain,
    rule — `literals`) are taken out: those stay as the firewall says them."""
    found = {}
    for where, text in texts.items():
        for literal in sorted(literals, key=len, reverse=True):
            text = text.replace(literal, "")
        if ENGLISH.search(text):
            found[where] = text
    return found


def test_the_blocked_status_window_in_chinese(
    chinese: None, controller: Controller, qtbot: Any
) -> None:
    window = StatusWindow(controller)
    qtbot.addWidget(window)
    window.show()
    card = window.cards[HOTSPOT]
    for label in card.tradeoffs.values():  # every trade-off looked up (or why not)
        qtbot.waitUntil(lambda label=label: "…" not in label.text(), timeout=10_000)
    texts = shown_texts(window)
    hotspot = card.hotspot
    assert hotspot["summary"] not in texts.values()  # the engine's English, kept in the JSON
    assert card.sentence.toolTip().startswith("被拦截：Docker 的 filter FORWARD policy drop")
    assert card.chips["outbound"].text() == "外网：被拦截"
    # the remedies not available here say why in Chinese too: the planner's reason is a code
    # and its parameters (the JSON keeps the English sentence beside them)
    unavailable = [r for r in hotspot["remedies"] if not r["available"]]
    assert unavailable and all(r["reason_code"] for r in unavailable), unavailable
    for remedy in unavailable:
        shown = card.tradeoffs[remedy["strategy"]].text()
        assert "不可用" in shown and remedy["reason"] not in shown, shown
    # a fix the state offered whose preview then fails (the stand-in plans without the host's
    # facts) says the planner's reason in Chinese too, as the in-process backend gives it
    assert controller.preview_errors, "no preview failed: the case is not exercised"
    drop = hotspot["blocked_by"]
    literals = tuple(str(drop[k]) for k in ("family", "table", "chain", "rule") if drop.get(k))
    assert english_in(texts, literals) == {}, english_in(texts, literals)


def forwarding_unread() -> dict[str, Any]:
    """The fixed machine, its forwarding switches not in the snapshot: outbound traffic and
    its replies are unknown (the engine says why)."""
    doc = fixed_document()
    doc["sysctl"] = {k: v for k, v in doc["sysctl"].items() if "forwarding" not in k}
    doc["sysctl"].pop("net.ipv4.ip_forward", None)
    return doc


@pytest.mark.parametrize("backend", [pytest.param(EngineBackend(forwarding_unread()))])
def test_an_unknown_flow_says_why_in_chinese(
    chinese: None, controller: Controller, qtbot: Any
) -> None:
    window = StatusWindow(controller)
    qtbot.addWidget(window)
    window.show()
    card = window.cards[HOTSPOT]
    hotspot = card.hotspot
    assert hotspot["verdict"] == "unknown"
    flow = hotspot["flows"]["outbound"]
    assert flow["reason"] == "net.ipv4.ip_forward is not in the snapshot"  # the JSON's words
    assert flow["reason_code"] == "sysctl-missing"
    assert flow["reason_params"] == {"key": "net.ipv4.ip_forward"}
    hover = card.chips["outbound"].toolTip()
    assert "快照中没有 net.ipv4.ip_forward" in hover, hover
    assert flow["reason"] not in hover
    assert "快照中没有 net.ipv4.ip_forward" in card.sentence.toolTip()
    assert english_in(shown_texts(window)) == {}, english_in(shown_texts(window))

    from hotspotguard.ui.chains import ChainsDialog

    chains = ChainsDialog(controller, iface=HOTSPOT, flow="outbound")
    qtbot.addWidget(chains)
    assert "快照中没有 net.ipv4.ip_forward" in chains.summary.text(), chains.summary.text()


def test_every_reason_has_its_chinese(chinese: None) -> None:
    """Each reason code's sentence is in the catalogue, with the same placeholders."""
    from hotspotguard.ui.texts import qt_tr

    for code, template in wording._REASONS.items():
        english, chinese_text = template(wording.english), template(qt_tr)
        assert chinese_text != english, code
        placeholders = sorted(re.findall(r"\{\w+\}", english))
        assert sorted(re.findall(r"\{\w+\}", chinese_text)) == placeholders, code


def test_the_fix_dialog_and_the_chains_dialog_in_chinese(
    chinese: None, controller: Controller, qtbot: Any
) -> None:
    from hotspotguard.ui.chains import ChainsDialog
    from hotspotguard.ui.fix_dialog import FixDialog

    dialog = FixDialog(controller, HOTSPOT)
    qtbot.addWidget(dialog)
    dialog.show()
    qtbot.waitUntil(lambda: dialog.preview is not None, timeout=10_000)
    texts = shown_texts(dialog)
    drop = controller.state["hotspots"][0]["blocked_by"]
    literals = tuple(str(drop[k]) for k in ("family", "table", "chain", "rule") if drop.get(k))
    assert english_in(texts, literals) == {}, english_in(texts, literals)
    assert dialog.summary.text().startswith(f"针对 {HOTSPOT}：")

    chains = ChainsDialog(controller, iface=HOTSPOT, flow="outbound")
    qtbot.addWidget(chains)
    labels = [chains.flow_box.itemText(i) for i in range(chains.flow_box.count())]
    assert f"{HOTSPOT} · 外网 — 被拦截" in labels
    assert not [label for label in labels if re.search(r"· [a-z]", label)], labels
    summary = chains.summary.text()  # the packet the flow stands for, worded in Chinese
    assert "到互联网的新 IPv4 连接" in summary and "connection from" not in summary, summary


def test_every_flow_description_has_its_chinese(chinese: None) -> None:
    """Each flow's packet sentence is in the catalogue with the same placeholders, and the
    English one is what the engine's flows carry in the JSON."""
    from hotspotguard.ruleset import load_snapshot
    from hotspotguard.ui.texts import qt_tr
    from hotspotguard.verdict.flows import arp_flows, discovery_flows, hotspot_flows

    snapshot = load_snapshot(fixed_document())
    hotspot = snapshot.hotspots[0]
    client, gateway = (
        ipaddress.ip_address("2001:db8:42::10"),
        ipaddress.ip_address("2001:db8:42::1"),
    )
    flows = [
        *hotspot_flows(hotspot, ("up0",)),
        *hotspot_flows(hotspot, ()),
        *arp_flows(hotspot),
        *discovery_flows(hotspot.iface, client, gateway, None),
    ]
    assert {f.name for f in flows} >= {
        "dhcp",
        "dns",
        "outbound",
        "reply",
        "arp_in",
        "rs6",
        "na6_in",
    }
    for flow in flows:
        params = dict(flow.params)
        assert wording.flow_description(flow.name, params) == flow.description, flow.name
        chinese_text = wording.flow_description(flow.name, params, qt_tr)
        assert chinese_text != flow.description and not re.search(r"\{\w+\}", chinese_text), (
            flow.name,
            chinese_text,
        )


def test_english_stays_for_the_command_line() -> None:
    """Without a translator the same functions give the JSON's and the CLI's English."""
    hotspot = {
        "iface": "wlp3s0",
        "verdict": "blocked",
        "blocked_flow": "outbound",
        "blocked_by": {
            "owner": "docker",
            "family": "ip",
            "table": "filter",
            "chain": "FORWARD",
            "rule": "policy drop",
        },
    }
    assert wording.verdict_summary(hotspot) == (
        "blocked: Docker's filter FORWARD policy drop stops outbound traffic from wlp3s0"
    )
    assert QCoreApplication.translate(wording.CONTEXT, "outbound traffic") == "outbound traffic"


def test_a_reason_through_the_helper_is_worded_in_chinese(chinese: None) -> None:
    """A preview refused by the helper carries its reason's code and parameters beside the
    English message (tests/helper/test_faults.py shows them cross the bus): the applet words it."""
    from hotspotguard.system.helper_client import HelperRefused
    from hotspotguard.ui.controller import error_sentence

    reason = wording.Reason("docker-live-iptables")
    refused = HelperRefused("NotApplicable", str(reason), wording.reason_fields(reason))
    sentence = error_sentence(refused)
    assert sentence and sentence != str(reason) and not re.search(r"[a-z]{4,} [a-z]{4,}", sentence)
    plain = HelperRefused("NotApplicable", "something only said in English")
    assert error_sentence(plain) == "something only said in English"
