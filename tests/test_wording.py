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
