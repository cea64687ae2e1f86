"""Fix strategies as plans (data): preview, apply, undo, persist.

Until the fix issue lands, only the names of the strategies that fit a blocked flow
are offered (`candidate_fixes`), so `explain` can say what would help.
"""

from __future__ import annotations

FORWARD_FLOWS = frozenset({"outbound", "reply", "outbound6", "reply6"})
STRATEGIES: dict[str, str] = {
    "docker-user": "accept the hotspot's traffic in Docker's DOCKER-USER chain",
    "docker-netns": "run dockerd in its own network namespace",
    "sysctl-forwarding": "turn IPv4/IPv6 forwarding on",
    "input-allow": "accept DHCP and DNS from the hotspot in the host's input chain",
    "forward-allow": "accept the hotspot's forwarded traffic before the dropping rule",
    "masquerade": "masquerade the hotspot's traffic on the uplink",
}
STRATEGY_NAMES: tuple[str, ...] = tuple(STRATEGIES)


def candidate_fixes(owner: str, flow: str) -> list[str]:
    """Names of the strategies that address a drop by `owner` on `flow`."""
    if owner == "sysctl":
        return ["sysctl-forwarding"]
    if owner == "nat":
        return ["masquerade"]
    if owner == "routing":
        return []
    if flow in FORWARD_FLOWS:
        if owner == "docker":
            return ["docker-user", "docker-netns"]
        return ["forward-allow"]
    return ["input-allow"]
