"""Route lookups against the kernel: `fib … oif` and `-m rpfilter` rules (every option, both
families) under NetworkManager's shared table, real packets on every flow (the DHCP discover
with its 0.0.0.0 source included), and the engine on the snapshot the kernel gives back, with
its routes. Every flow must agree, and none may be unknown: the lab's routes decide them all."""

from __future__ import annotations

import pytest

from tests.kernel.scenarios.model import ruleset
from tests.kernel.test_differential import DISAGREE, UNKNOWN, classify, engine_hotspot
from tests.lab import ALL_FLOWS, Lab

pytestmark = pytest.mark.kernel

NM = ruleset("nm-shared-hs0.nft")


def _nft(family: str, hook: str, rule: str, priority: int = -150) -> str:
    return (
        f"table {family} fibt {{\n chain c {{\n"
        f"  type filter hook {hook} priority {priority}; policy accept;\n  {rule}\n }}\n}}\n"
    )


NFT_CASES = {
    "saddr-iif-missing-prerouting": ("inet", "prerouting", "fib saddr . iif oif missing drop"),
    "saddr-mark-iif-0": ("inet", "prerouting", "fib saddr . mark . iif oif 0 drop"),
    "saddr-iif-exists": ("inet", "prerouting", "fib saddr . iif oif exists drop"),
    "daddr-missing": ("inet", "prerouting", "fib daddr oif missing drop"),
    "daddr-oifname-up": ("inet", "prerouting", 'fib daddr oifname "up0" drop'),
    "daddr-iif-exists": ("ip", "prerouting", "fib daddr . iif oif exists drop"),
    "saddr-oif-hs": ("ip6", "prerouting", 'fib saddr oif "hs0" drop'),
    "saddr-iif-missing-input": ("inet", "input", "fib saddr . iif oif missing drop"),
    "daddr-iif-oifname-input": ("inet", "input", 'fib daddr . iif oifname != "hs0" drop'),
    "daddr-iif-forward": ("inet", "forward", "fib daddr . iif oif missing drop"),
    "saddr-iif-forward": ("inet", "forward", 'fib saddr . iif oifname "hs*" drop'),
    "saddr-mark-forward": ("ip", "forward", "fib saddr . mark oif exists drop"),
}
RPFILTER_OPTIONS = ["", "--loose", "--accept-local", "--validmark --loose", "--invert"]
RPFILTER_CASES = {
    f"rpfilter{'6' if v6 else ''}-{opts.replace('--', '').replace(' ', '-') or 'strict'}": (
        v6,
        opts,
    )
    for v6 in (False, True)
    for opts in [*RPFILTER_OPTIONS, "--loose --invert"]
}


def _judge(lab: Lab, load: list[tuple[str, str | bool]]) -> dict[str, str]:
    lab.reset()
    try:
        lab.load_nft(NM)
        for kind, text in load:
            if kind == "nft":
                lab.load_nft(str(text))
            else:
                lab.load_iptables(str(text), ipv6=kind == "ip6tables")
        doc = lab.snapshot()
        kernel = lab.probe()
    finally:
        lab.reset()
    assert doc.get("routing", {}).get("ip", {}).get("routes"), "the capture carries the routes"
    flows = engine_hotspot(doc).get("flows") or {}
    return {f: classify(f, kernel.get(f), flows.get(f)) for f in ALL_FLOWS}


def _check(verdicts: dict[str, str]) -> None:
    wrong = {f: v for f, v in verdicts.items() if v in DISAGREE or v == UNKNOWN}
    assert not wrong, wrong


@pytest.mark.parametrize("name", list(NFT_CASES))
def test_fib_lookup_agrees_with_the_kernel(lab: Lab, name: str) -> None:
    family, hook, rule = NFT_CASES[name]
    _check(_judge(lab, [("nft", _nft(family, hook, rule))]))


@pytest.mark.parametrize("name", list(RPFILTER_CASES))
def test_rpfilter_agrees_with_the_kernel(lab: Lab, name: str) -> None:
    v6, options = RPFILTER_CASES[name]
    text = f"*raw\n:PREROUTING ACCEPT [0:0]\n-A PREROUTING -m rpfilter {options} -j DROP\nCOMMIT\n"
    _check(_judge(lab, [("ip6tables" if v6 else "iptables", text)]))


ADDRTYPE_CASES = {
    f"addrtype{'6' if v6 else ''}-{name}": (v6, chain, match)
    for v6 in (False, True)
    for name, chain, match in (
        ("dst-local-limit-in", "PREROUTING", "--dst-type LOCAL --limit-iface-in"),
        ("dst-unicast-limit-in", "PREROUTING", "! --dst-type UNICAST --limit-iface-in"),
        ("src-local-limit-out", "POSTROUTING", "--src-type LOCAL --limit-iface-out"),
    )
}


@pytest.mark.parametrize("name", list(ADDRTYPE_CASES))
def test_addrtype_with_its_interface_agrees_with_the_kernel(lab: Lab, name: str) -> None:
    v6, chain, match = ADDRTYPE_CASES[name]
    text = (
        f"*mangle\n:PREROUTING ACCEPT [0:0]\n:POSTROUTING ACCEPT [0:0]\n"
        f"-A {chain} -m addrtype {match} -j DROP\nCOMMIT\n"
    )
    _check(_judge(lab, [("ip6tables" if v6 else "iptables", text)]))
