"""Fix strategies as plans (data): culprit → remedies, preview, engine-verified, apply, undo.

The verdict names the culprit and knows nothing of fixes; this layer maps a culprit to the
strategies that address it (`remedies`), and `strategies` turns one into a verified plan.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from hotspotguard.verdict import HotspotVerdict

FORWARD_FLOWS = frozenset({"outbound", "reply", "outbound6", "reply6"})
#: The strategies that are built: each has a planner in `strategies.PLANNERS` (a test walks
#: this registry), and only these are ever offered.
STRATEGIES: dict[str, str] = {
    "docker-user": "accept the hotspot's traffic in Docker's DOCKER-USER chain",
    "sysctl-forwarding": "turn IPv4/IPv6 forwarding on",
    "docker-no-drop": "Docker 28's ip-forward-no-drop option, and the FORWARD policy accept now",
    "docker-stale-drop": "clear the FORWARD drop Docker's old iptables backend left behind",
    "ufw-route": "ufw's own rules: route allow to the uplinks, allow DHCP and DNS in",
    "firewalld-zone": "put the hotspot into firewalld's nm-shared zone, through firewalld",
    "forward-allow": "accept the hotspot's forwarded traffic before the rule that drops it",
    "input-allow": "accept DHCP and DNS from the hotspot before the rule that drops them",
    "docker-netns": "run dockerd in a network namespace of its own, its rules off the host's",
    "combined": "several strategies in one plan, for several culprits at once",
}
STRATEGY_NAMES: tuple[str, ...] = tuple(STRATEGIES)
#: how long each strategy's fix lasts, in one sentence
PERMANENCE: dict[str, str] = {
    "docker-user": "until reboot; with --permanent, re-applied whenever Docker starts",
    "sysctl-forwarding": "until reboot; with --permanent, re-applied at boot",
    "docker-stale-drop": "until Docker's old rules would be gone anyway (the next reboot)",
    "docker-no-drop": "permanent: daemon.json keeps Docker from setting the drop again",
    "forward-allow": "until the table's owner rewrites it; with --permanent, re-applied "
    "when a hotspot or uplink comes up",
    "input-allow": "until the table's owner rewrites it; with --permanent, re-applied "
    "when a hotspot or uplink comes up",
    "ufw-route": "permanent: ufw keeps its rules (ufw reload, reboot)",
    "firewalld-zone": "permanent: firewalld's configuration keeps it (firewall-cmd --reload, "
    "restart); with --permanent, re-applied when NetworkManager brings the hotspot up",
    "docker-netns": "permanent: the drop-in sets the namespace up at every Docker start, "
    "until undo",
    "combined": "each step as its strategy: see them",
}


def remedies(verdict: HotspotVerdict) -> tuple[str, ...]:
    """Names of the strategies that address what blocks `verdict` (none when nothing does)."""
    if verdict.blocked_by is None or verdict.blocked_flow is None:
        return ()
    return tuple(candidate_fixes(verdict.blocked_by.owner, verdict.blocked_flow))


def candidate_fixes(owner: str, flow: str) -> list[str]:
    """Names of the strategies that address a drop by `owner` on `flow`, the least privileged
    first (a missing masquerade, a missing route, untracked replies: none is built)."""
    if owner == "sysctl":
        return ["sysctl-forwarding"]
    if owner in ("nat", "routing", "conntrack"):
        return []
    if owner == "ufw":
        return ["ufw-route", "forward-allow" if flow in FORWARD_FLOWS else "input-allow"]
    if owner == "firewalld":
        return ["firewalld-zone", "forward-allow" if flow in FORWARD_FLOWS else "input-allow"]
    if flow in FORWARD_FLOWS:
        if owner == "docker":
            return [
                "docker-user",
                "docker-stale-drop",
                "forward-allow",
                "docker-no-drop",
                "docker-netns",
            ]
        return ["forward-allow"]
    return ["input-allow"]
