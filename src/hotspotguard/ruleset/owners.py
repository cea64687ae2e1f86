"""Who wrote a rule: Docker, ufw, firewalld, ... from table, chain and comment names."""

from __future__ import annotations

import re
from collections.abc import Iterable

from hotspotguard.ruleset.model import Chain, Match, Meta, Rule, Table, Verdict, VerdictMap

UNKNOWN = "unknown"
"""The owner of a rule no known program wrote (never the table's name: a table called
`filter` or `t` is not a program)."""

# (owner, pattern) pairs tried in order against "table", "chain" and "comment" names, from the
# layouts these programs really write.
_CHAIN_PATTERNS: tuple[tuple[str, re.Pattern[str]], ...] = (
    ("hotspotguard", re.compile(r"^hotspotguard", re.I)),
    ("docker", re.compile(r"^DOCKER")),  # DOCKER, DOCKER-USER, DOCKER-FORWARD (28), ...
    ("ufw", re.compile(r"^ufw6?-")),
    ("libvirt", re.compile(r"^LIBVIRT_")),  # LIBVIRT_INP/OUT/FWO/FWI/FWX/PRT
    ("podman", re.compile(r"^NETAVARK[-_]", re.I)),  # NETAVARK_FORWARD, NETAVARK-<hash>
    ("kube-router", re.compile(r"^KUBE-(ROUTER|NWPLCY|POD-FW|SRC)-")),  # k3s's network policy
    ("flannel", re.compile(r"^FLANNEL-")),
    ("calico", re.compile(r"^cali-")),
    ("cilium", re.compile(r"^(CILIUM_|OLD_CILIUM_)")),
    ("kubernetes", re.compile(r"^(KUBE-|CNI-)")),  # kube-proxy, CNI portmap/bridge
    ("tailscale", re.compile(r"^ts-")),  # ts-input, ts-forward, ts-postrouting
    ("lxd", re.compile(r"^(fwd|in|out|pstrt|prert)\.lxdbr")),
    ("incus", re.compile(r"^(fwd|in|out|pstrt|prert)\.incusbr")),
    ("networkmanager", re.compile(r"^nm-sh-")),
)
_TABLE_PATTERNS: tuple[tuple[str, re.Pattern[str]], ...] = (
    ("hotspotguard", re.compile(r"^hotspotguard")),
    ("docker", re.compile(r"^docker")),  # Docker 29's nftables backend: docker-bridges
    ("firewalld", re.compile(r"^firewalld")),
    ("libvirt", re.compile(r"^libvirt")),  # libvirt_network (nftables backend)
    ("podman", re.compile(r"^netavark$")),
    ("calico", re.compile(r"^calico")),
    ("cilium", re.compile(r"^cilium")),
    ("kubernetes", re.compile(r"^(kube-proxy|kubernetes)$")),
    ("networkmanager", re.compile(r"^nm-shared-")),
    ("tailscale", re.compile(r"^ts-")),
    ("lxd", re.compile(r"^lxd$")),
    ("incus", re.compile(r"^incus$")),
    ("waydroid", re.compile(r"^waydroid")),
    ("ufw", re.compile(r"^ufw")),
)
_COMMENT_PATTERNS: tuple[tuple[str, re.Pattern[str]], ...] = (
    ("hotspotguard", re.compile(r"hotspotguard", re.I)),
    ("networkmanager", re.compile(r"^nm-shared-")),
    ("docker", re.compile(r"docker", re.I)),
    ("ufw", re.compile(r"^'?(ufw|dapp_)", re.I)),
    ("libvirt", re.compile(r"libvirt", re.I)),
    ("lxd", re.compile(r"generated for LXD", re.I)),
    ("incus", re.compile(r"generated for Incus", re.I)),
    ("podman", re.compile(r"netavark|podman", re.I)),
    ("kube-router", re.compile(r"kube-router", re.I)),
    ("calico", re.compile(r"^cali:", re.I)),
    ("cilium", re.compile(r"cilium", re.I)),
    ("flannel", re.compile(r"flannel", re.I)),
    ("kubernetes", re.compile(r"kube|cni", re.I)),
    ("tailscale", re.compile(r"tailscale", re.I)),
)
# Interfaces only one program creates: a rule in a shared chain (iptables INPUT, an `lxc`
# table) that names one was written by that program.
_IFACE_PATTERNS: tuple[tuple[str, re.Pattern[str]], ...] = (
    ("waydroid", re.compile(r"^waydroid\d")),
    ("lxd", re.compile(r"^lxdbr\d")),
    ("incus", re.compile(r"^incusbr\d")),
    ("libvirt", re.compile(r"^virbr\d")),
    ("docker", re.compile(r"^docker\d")),
    ("podman", re.compile(r"^podman\d")),
    ("tailscale", re.compile(r"^tailscale\d")),
    ("flannel", re.compile(r"^(flannel\.|cni0$)")),
    ("kube-router", re.compile(r"^kube-bridge$")),
)

OWNER_NAMES: dict[str, str] = {
    "docker": "Docker",
    "ufw": "ufw",
    "firewalld": "firewalld",
    "libvirt": "libvirt",
    "podman": "Podman",
    "kubernetes": "Kubernetes",
    "kube-router": "kube-router (k3s)",
    "flannel": "Flannel",
    "calico": "Calico",
    "cilium": "Cilium",
    "tailscale": "Tailscale",
    "lxd": "LXD",
    "incus": "Incus",
    "waydroid": "Waydroid",
    "networkmanager": "NetworkManager",
    "hotspotguard": "hotspotguard",
    "netfilter-persistent": "netfilter-persistent (iptables-persistent)",
    "iptables.service": "iptables.service",
    "sysctl": "the kernel's forwarding setting",
}


def _first(patterns: tuple[tuple[str, re.Pattern[str]], ...], name: str | None) -> str | None:
    if not name:
        return None
    for owner, pattern in patterns:
        if pattern.search(name):
            return owner
    return None


def _jump_targets(chain: Chain) -> list[str]:
    targets: list[str] = []
    for rule in chain.rules:
        for expr in rule.exprs:
            if isinstance(expr, Verdict) and expr.target:
                targets.append(expr.target)
            elif isinstance(expr, VerdictMap):
                targets.extend(v.target for _, v in expr.entries or () if v.target)
    return targets


def chain_owner(table: Table, chain: Chain) -> str:
    """Owner of a chain (and of its policy)."""
    owner = _first(_TABLE_PATTERNS, table.name) or _first(_CHAIN_PATTERNS, chain.name)
    if owner:
        return owner
    if chain.is_base:
        # A built-in chain (iptables FORWARD) belongs to whoever hooks into it: Docker
        # and ufw both set the policy and jump to their own chains first.
        votes: dict[str, int] = {}
        for target in _jump_targets(chain):
            target_owner = _first(_CHAIN_PATTERNS, target)
            if target_owner and target_owner != "networkmanager":
                votes[target_owner] = votes.get(target_owner, 0) + 1
        if votes:
            return max(votes, key=lambda k: votes[k])
    return UNKNOWN


def _interface_owner(rules: Iterable[Rule]) -> str | None:
    """The program whose own interfaces every interface match of `rules` names, if one."""
    owners: set[str | None] = set()
    for rule in rules:
        for expr in rule.exprs:
            if (
                isinstance(expr, Match)
                and isinstance(expr.left, Meta)
                and expr.left.key in {"iifname", "oifname", "iif", "oif"}
            ):
                name = expr.right if isinstance(expr.right, str) else None
                owners.add(_first(_IFACE_PATTERNS, name))
    return owners.pop() if len(owners) == 1 else None


def rule_owner(table: Table, chain: Chain, comment: str | None, rule: Rule | None = None) -> str:
    """Owner of one rule: its comment first, then its chain, then its interfaces."""
    owner = _first(_COMMENT_PATTERNS, comment) or chain_owner(table, chain)
    if owner == UNKNOWN and rule is not None:
        return _interface_owner((rule,)) or UNKNOWN
    return owner


def display_owner(owner: str) -> str:
    if owner == UNKNOWN:
        return "no known program"
    return OWNER_NAMES.get(owner, owner)


def nm_backend(tables: tuple[Table, ...], iface: str) -> str | None:
    """Which NetworkManager firewall backend shares `iface`: "nftables", "iptables" or None."""
    for table in tables:
        if table.name == f"nm-shared-{iface}":
            return "nftables"
    for table in tables:
        if table.family in {"ip", "ip6"} and table.chain(f"nm-sh-fw-{iface}") is not None:
            return "iptables"
    for table in tables:
        if table.name == "firewalld":
            for chain in table.chains:
                if "nm-shared" in chain.name and _mentions(chain, iface):
                    return "firewalld"
    return None


def _mentions(chain: Chain, iface: str) -> bool:
    return any(
        isinstance(e, Match) and isinstance(e.left, Meta) and e.right == iface
        for rule in chain.rules
        for e in rule.exprs
    )
