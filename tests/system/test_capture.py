"""Capture helpers that need no root: parsing nft's text listing, finding shared interfaces."""

from __future__ import annotations

from hotspotguard.system.capture import IFNAME, _add_devices, chain_devices, shared_interfaces

# `nft list chains` as nft 1.0.6 prints it (its JSON lacks the devices).
LISTING = """\
table netdev t {
\tchain c {
\t\ttype filter hook ingress device "hs0" priority filter; policy accept;
\t}
}
table inet i {
\tchain c {
\t\ttype filter hook ingress devices = { hs0, lo } priority filter; policy accept;
\t}
\tchain plain {
\t}
}
"""


def test_chain_devices_from_the_text_listing() -> None:
    assert chain_devices(LISTING) == {
        ("netdev", "t", "c"): ["hs0"],
        ("inet", "i", "c"): ["hs0", "lo"],
    }


def test_devices_are_added_only_where_missing() -> None:
    doc = {
        "nftables": [
            {"chain": {"family": "netdev", "table": "t", "name": "c", "hook": "ingress"}},
            {"chain": {"family": "inet", "table": "i", "name": "c", "hook": "ingress"}},
            {"chain": {"family": "ip", "table": "f", "name": "x", "hook": "forward"}},
        ]
    }
    calls: list[int] = []

    def listing() -> str:
        calls.append(1)
        return LISTING

    _add_devices(doc, listing)
    chains = [item["chain"] for item in doc["nftables"]]
    assert chains[0]["dev"] == "hs0"
    assert chains[1]["dev"] == ["hs0", "lo"]
    assert "dev" not in chains[2]
    _add_devices(doc, listing)  # nothing missing any more: no second listing
    assert calls == [1]


def test_shared_interfaces_from_networkmanager_tables() -> None:
    nft = {"nftables": [{"table": {"family": "ip", "name": "nm-shared-wlp3s0"}}]}
    saves = {"iptables_nft_save": "*filter\n:nm-sh-fw-enp1s0 - [0:0]\nCOMMIT\n"}
    assert shared_interfaces(nft, saves) == ["wlp3s0", "enp1s0"]


def test_interface_names_follow_the_kernel_rules() -> None:
    assert IFNAME.match("wlp3s0") and IFNAME.match("br-0a1b2c3d4e5f")
    for bad in ("", ".", "..", "a/b", "a b", "x" * 16, "eth0:1"):
        assert not IFNAME.match(bad), bad
