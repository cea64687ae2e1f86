"""Apply, check and undo a `ChainReset`: a built-in iptables chain's policy set and another
program's stale jumps deleted, in one ``iptables-restore --noflush`` commit; undo sets the
policy back (if it is still ours) and puts each jump back at its position."""

from __future__ import annotations

import shlex

from hotspotguard.fixes.plan import ChainReset, RuleChange
from hotspotguard.ruleset.iptables import chain_lines
from hotspotguard.system import firewall
from hotspotguard.wording import Reason


def _state(change: ChainReset) -> tuple[str | None, list[str]]:
    """The chain's policy (lower case) and rule specs now."""
    text = firewall.save(change.variant, change.family, change.table)
    policy = None
    in_table = False
    for line in text.splitlines():
        if line.startswith("*"):
            in_table = line[1:].strip() == change.table
        elif in_table and line.startswith(f":{change.chain} "):
            policy = line.split()[1].lower()
    if policy is None:
        raise firewall.FirewallError(Reason("chain-gone", table=change.table, chain=change.chain))
    prefix = f"-A {change.chain} "
    lines = chain_lines(text).get((change.table, change.chain), [])
    return policy, [line[len(prefix) :] for line in lines]


def _present(specs: list[str], spec: str) -> bool:
    wanted = shlex.split(spec)
    return any(shlex.split(s) == wanted for s in specs)


def _commit(change: ChainReset, lines: list[str]) -> None:
    target = RuleChange(change.variant, change.family, change.table, change.chain, ())
    firewall.commit(target, lines)


def apply(change: ChainReset) -> bool:
    """Do `change`; False when there was nothing left to do."""
    policy, specs = _state(change)
    lines = [f"-D {change.chain} {spec}" for _, spec in change.removed if _present(specs, spec)]
    if change.policy is not None and policy != change.policy:
        lines.insert(0, f":{change.chain} {change.policy.upper()} [0:0]")
    _commit(change, lines)
    return bool(lines)


def undo(change: ChainReset) -> int:
    """Put back what `change` removed (the policy only if it is still the one we set); how
    many rules came back."""
    policy, specs = _state(change)
    lines = []
    if change.policy is not None and change.previous and policy == change.policy:
        lines.append(f":{change.chain} {change.previous.upper()} [0:0]")
    back = [(p, spec) for p, spec in sorted(change.removed) if not _present(specs, spec)]
    lines += [
        f"-I {change.chain} {min(p, len(specs) + n + 1)} {spec}" for n, (p, spec) in enumerate(back)
    ]
    _commit(change, lines)
    return len(back)


def in_place(change: ChainReset) -> bool:
    try:
        policy, specs = _state(change)
    except firewall.FirewallError:
        return False
    if change.policy is not None and policy != change.policy:
        return False
    return not any(_present(specs, spec) for _, spec in change.removed)


def merged(recorded: ChainReset | None, change: ChainReset) -> ChainReset:
    """What undo must restore after `change` re-applies a fix recorded as `recorded`: the
    policy from before the first apply, and every jump any apply removed."""
    if recorded is None:
        return change
    removed = recorded.removed + tuple(r for r in change.removed if r not in recorded.removed)
    return ChainReset(
        change.variant,
        change.family,
        change.table,
        change.chain,
        change.policy,
        recorded.previous,
        removed,
    )
