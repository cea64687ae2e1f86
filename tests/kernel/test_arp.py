"""ARP, judged where an arp table or a netdev ingress chain filters it, against real ARP: the
phone asks for the host's hotspot address from a fresh MAC, the host answers or not."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.kernel import engine
from tests.kernel.scenarios.model import ruleset
from tests.lab import Lab

pytestmark = pytest.mark.kernel

NM = ruleset("nm-shared-hs0.nft")

CASES = {
    "arp-input-policy-drop": "table arp a {\n chain i {\n"
    " type filter hook input priority 0; policy drop;\n }\n}\n",
    "arp-input-request-for-gateway-accepted": "table arp a {\n chain i {\n"
    " type filter hook input priority 0; policy drop;\n"
    " arp operation request arp daddr ip 10.42.0.1 accept\n }\n}\n",
    "arp-input-other-gateway-only": "table arp a {\n chain i {\n"
    " type filter hook input priority 0; policy drop;\n"
    " arp daddr ip 10.42.0.254 accept\n }\n}\n",
    "arp-output-reply-drop": "table arp a {\n chain o {\n"
    " type filter hook output priority 0; policy accept;\n"
    ' oifname "hs0" arp operation reply drop\n }\n}\n',
    "arp-output-other-device": "table arp a {\n chain o {\n"
    " type filter hook output priority 0; policy accept;\n"
    ' oifname "up0" drop\n }\n}\n',
    "netdev-ingress-drops-arp": "table netdev n {\n chain i {\n"
    ' type filter hook ingress device "hs0" priority 0; policy accept;\n'
    " meta protocol arp drop\n }\n}\n",
    "netdev-ingress-drops-ip-only": "table netdev n {\n chain i {\n"
    ' type filter hook ingress device "hs0" priority 0; policy accept;\n'
    " meta protocol ip udp dport 67 drop\n }\n}\n",
}


@pytest.mark.parametrize("name", list(CASES))
def test_arp_engine_matches_kernel(lab: Lab, name: str, tmp_path: Path) -> None:
    reason = engine.engine_unavailable_reason()
    if reason:
        pytest.skip(reason)
    lab.reset()
    try:
        lab.load_nft(NM)
        lab.load_nft(CASES[name])
        answered = lab.probe_arp()
        snapshot = lab.snapshot()
    finally:
        lab.reset()
    hotspot = engine.explain(snapshot, tmp_path)
    flows = hotspot["flows"]
    verdicts = (flows["arp_in"]["verdict"], flows["arp_out"]["verdict"])
    assert "unknown" not in verdicts, verdicts
    assert (verdicts == ("accept", "accept")) == answered, (name, answered, verdicts)
    if not answered:
        assert hotspot["verdict"] == "blocked"
