"""Who wrote a rule: Docker, ufw, firewalld, ... from table, chain and comment names."""

from __future__ import annotations

import re

from hotspotguard.ruleset.model import Chain, Match, Meta, Table, Verdict, VerdictMap

# (owner, pattern) pairs tried in order against "table", "chain" and "comment" names.
_CHAIN_PATTERNS: tuple[tuple[str, re.Pattern[str]], ...] = (
    ("hotspotguard", re.compile(r"^hotspotguard", re.I)),
    ("docker", re.compile(r"^DOCKER")),
    ("ufw", re.compile(r"^ufw6?-")),
    ("libvirt", re.compile(r"^LIBVIRT_")),
    ("podman", re.compile(r"^NETAVARK|^NETAVARK_|^netavark", re.I)),
    ("kubernetes", re.compile(r"^(KUBE-|FLANNEL-|CNI-|cali-|CILIUM_)")),
    ("tailscale", re.compile(r"^ts-")),
    ("networkmanager", re.compile(r"^nm-sh-")),
)
_TABLE_PATTERNS: tuple[tuple[str, re.Pattern[str]], ...] = (
    ("hotspotguard", re.compile(r"^hotspotguard")),
    ("docker", re.compile(r"^docker")),
    ("firewalld", re.compile(r"^firewalld")),
    ("libvirt", re.compile(r"^libvirt")),
    ("podman", re.compile(r"^netavark")),
    ("kubernetes", re.compile(r"^(kube-proxy|kubernetes|cilium|calico)")),
    ("networkmanager", re.compile(r"^nm-shared-")),
    ("tailscale", re.compile(r"^ts-")),
    ("ufw", re.compile(r"^ufw")),
)
_COMMENT_PATTERNS: tuple[tuple[str, re.Pattern[str]], ...] = (
    ("hotspotguard", re.compile(r"hotspotguard", re.I)),
    ("networkmanager", re.compile(r"^nm-shared-")),
    ("docker", re.compile(r"docker", re.I)),
    ("ufw", re.compile(r"^'?(ufw|dapp_)", re.I)),
    ("libvirt", re.compile(r"libvirt", re.I)),
    ("kubernetes", re.compile(r"kube|cni|flannel|calico|cilium", re.I)),
)

OWNER_NAMES: dict[str, str] = {
    "docker": "Docker",
    "ufw": "ufw",
    "firewalld": "firewalld",
    "libvirt": "libvirt",
    "podman": "Podman",
    "kubernetes": "Kubernetes",
    "tailscale": "Tailscale",
    "networkmanager": "NetworkManager",
    "hotspotguard": "hotspotguard",
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
    return table.name


def rule_owner(table: Table, chain: Chain, comment: str | None) -> str:
    """Owner of one rule: its comment first, then its chain."""
    return _first(_COMMENT_PATTERNS, comment) or chain_owner(table, chain)


def display_owner(owner: str) -> str:
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
