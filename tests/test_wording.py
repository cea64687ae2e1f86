"""hotspotguard.wording: the sentences from structured results, in English by default."""

from __future__ import annotations

import re

from hotspotguard import wording
from hotspotguard.fixes import STRATEGIES


def test_strategy_descriptions_are_the_registrys() -> None:
    """The applet's words for a strategy are the registry's (fixes.STRATEGIES), in English; a
    strategy wording does not know yet is named by its id."""
    for strategy, text in STRATEGIES.items():
        assert wording.strategy_description(strategy) in (text, strategy)
    assert wording.strategy_description("docker-user") == STRATEGIES["docker-user"]


def test_culprit_kinds() -> None:
    rule = {"owner": "docker", "table": "filter", "chain": "FORWARD", "rule": "-A FORWARD -j DROP"}
    assert wording.culprit_kind(rule) == "rule"
    assert wording.culprit_kind({**rule, "rule": "policy drop"}) == "policy"
    assert wording.culprit_kind({"owner": "sysctl", "table": None}) == "forwarding-off"
    assert wording.culprit_kind({"owner": "nat", "table": None}) == "no-masquerade"
    assert wording.culprit_kind({"owner": "routing", "table": None}) == "no-route"


def test_the_unknown_sentence_names_the_deciding_flows_only() -> None:
    hotspot = {
        "iface": "hs0",
        "verdict": "unknown",
        "flows": {
            "dhcp": {"verdict": "accept"},
            "outbound": {
                "verdict": "unknown",
                "reason": "a rate limit decides",
                "uncertain": [{"rule": "limit rate 10/second accept"}],
            },
            "dns6": {"verdict": "unknown", "informative": True, "reason": "not served"},
        },
    }
    assert wording.verdict_summary(hotspot) == (
        "unknown: cannot tell whether outbound traffic from hs0 get through: a rate limit "
        "decides (undecidable: limit rate 10/second accept)"
    )


def test_a_translator_words_every_part() -> None:
    """Every piece goes through the translator: nothing English is glued around it."""
    hotspot = {
        "iface": "hs0",
        "verdict": "blocked",
        "blocked_flow": "reply",
        "blocked_by": {
            "owner": "ufw",
            "table": "filter",
            "chain": "FORWARD",
            "rule": "policy drop",
        },
    }

    def shout(text: str) -> str:  # a "language": the words upper-case, the placeholders kept
        return re.sub(r"(\{[a-z]+\})|([^{]+)", lambda m: m[1] or m[2].upper(), text)

    said = wording.verdict_summary(hotspot, shout)
    assert (
        said == "BLOCKED: ufw'S filter FORWARD policy drop STOPS REPLIES FROM THE INTERNET TO hs0"
    )
    # a translation that misspells a placeholder shows it, it does not fail
    broken = wording.verdict_summary(hotspot, lambda text: text.replace("{who}", "{WHO}"))
    assert broken.startswith("blocked: {WHO}'s filter FORWARD policy drop stops")


SOURCE = wording.__file__.rsplit("/", 1)[0]


def test_every_reason_the_sources_give_is_worded() -> None:
    """A `Reason` code the planners or the engine raise that wording does not know would be
    said as its bare code: each one in the sources is in the table."""
    from pathlib import Path

    used = {
        code
        for path in Path(SOURCE).rglob("*.py")
        for code in re.findall(r'\b(?:Reason|step)\(\s*"([a-z0-9-]+)"', path.read_text())
    }
    assert {"step-change-chain", "step-restart-unit", "step-ufw"} <= used  # a tool's step
    used |= {"combined-one-enough", "combined-none"}  # chosen by a conditional
    assert len(used) > 40
    assert used <= set(wording._REASONS), sorted(used - set(wording._REASONS))


def test_a_reason_is_its_english_sentence_and_its_fields() -> None:
    import json

    reason = wording.Reason(
        "docker-too-old", version="27.5", needed=28, option="ip-forward-no-drop"
    )
    text = "Docker 27.5 is older than 28: the ip-forward-no-drop option does not exist"
    assert reason == text and isinstance(reason, str)
    fields = wording.reason_fields(reason)
    assert json.loads(json.dumps(fields)) == {
        "reason": text,
        "reason_code": "docker-too-old",
        "reason_params": {"version": "27.5", "needed": 28, "option": "ip-forward-no-drop"},
    }
    assert wording.reason_sentence(fields) == text
    # a reason that is only text (an older helper's, a system's message) keeps its words
    plain = wording.reason_fields("dockerd said no")
    assert plain["reason_code"] is None and wording.reason_sentence(plain) == "dockerd said no"
    assert wording.reason_sentence({"reason": "x", "reason_code": "from-the-future"}) == "x"
    # an exception raised with a Reason keeps it; one raised with text gives its first line
    assert wording.reason_of(ValueError(reason)).code == "docker-too-old"  # type: ignore[attr-defined]
    assert wording.reason_of(ValueError("one\ntwo")) == "one"


def test_a_nested_reason_is_worded_in_the_same_language() -> None:
    """A firewalld zone that is not enough names the verdict after it, worded from its facts."""
    after = {
        "iface": "hs0",
        "verdict": "blocked",
        "blocked_flow": "outbound",
        "blocked_by": {"owner": "docker", "family": "ip", "table": "filter",
                       "chain": "FORWARD", "rule": "policy drop"},
    }  # fmt: skip
    why = wording.reason_fields(wording.Reason("firewalld-zone-unknown", zone="trusted"))
    reason = wording.Reason(
        "firewalld-no-zone-enough",
        failed=[{"zone": "nm-shared", "why": after}, {"zone": "trusted", "why": why}],
    )
    assert reason == (
        "no zone of firewalld's is enough: in nm-shared, blocked: Docker's filter FORWARD policy "
        "drop stops outbound traffic from hs0; in trusted, firewalld's settings of zone trusted "
        "are unknown"
    )
    # every part through the same translator (here one that marks what it translated)
    marked = wording.reason_sentence(wording.reason_fields(reason), lambda text: "›" + text)
    assert marked.startswith("›no zone of firewalld's is enough: ›in nm-shared, ›blocked: ›"), (
        marked
    )
    assert "›in trusted, ›firewalld's settings of zone trusted are unknown" in marked
