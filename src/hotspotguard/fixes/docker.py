"""Docker's own ways out: `docker-stale-drop` (what the iptables backend left behind once
Docker 29 runs its nftables backend) and `docker-no-drop` (Docker ≥ 28's
``"ip-forward-no-drop": true``).  Pure: the planners read the ruleset and the facts the
use case gathered (Docker's version, daemon.json's text); nothing here touches the machine."""

from __future__ import annotations

import itertools
import json
import shlex
from collections.abc import Callable
from dataclasses import replace

from hotspotguard.fixes.plan import SOURCE_VARIANT, ChainReset, FileChange, HostFacts
from hotspotguard.ruleset import Ruleset
from hotspotguard.ruleset.model import Chain, Table
from hotspotguard.wording import Reason


class DockerUnavailable(Exception):
    """The strategy does not apply here; the message is one line."""


def _jump_target(text: str) -> str | None:
    try:
        tokens = shlex.split(text)
    except ValueError:
        return None
    for index, token in enumerate(tokens[:-1]):
        if token in ("-j", "-g", "--jump", "--goto"):
            return tokens[index + 1]
    return None


def _spec(chain: str, text: str) -> str:
    prefix = f"-A {chain} "
    return text[len(prefix) :] if text.startswith(prefix) else text


def _docker_filter_tables(ruleset: Ruleset) -> list[Table]:
    """The iptables `filter` tables that hold Docker's chains."""
    return [
        table
        for table in ruleset.tables
        if table.name == "filter"
        and table.source in SOURCE_VARIANT
        and any(chain.name.startswith("DOCKER") for chain in table.chains)
    ]


def _jumps_to_docker(chain: str, rule: str) -> bool:
    return (_jump_target(rule) or "").startswith("DOCKER")


def chain_reset(
    table: Table,
    chain: Chain,
    policy: str | None,
    removing: Callable[[str, str], bool] = _jumps_to_docker,
) -> ChainReset:
    """`chain` of an iptables-managed `table` with its policy set to `policy` (None: kept) and
    the rules `removing(chain name, rule text)` picks deleted (by default: jumps into DOCKER-*)."""
    removed = tuple(
        (position, _spec(chain.name, rule.text))
        for position, rule in enumerate(chain.rules, 1)
        if removing(chain.name, rule.text)
    )
    return ChainReset(
        SOURCE_VARIANT[table.source],
        4 if table.family == "ip" else 6,
        table.name,
        chain.name,
        policy,
        chain.policy,
        removed,
    )


def stale_drop_changes(ruleset: Ruleset) -> tuple[ChainReset, ...]:
    """The reset of each iptables `filter` FORWARD Docker's old backend left: policy ACCEPT
    and no jumps into its chains (the chains themselves stay, unreferenced, as Docker left
    them).  Planned the same way while already done (then each change is a no-op)."""
    if not any(
        table.name == "docker-bridges" and table.source == "nft" for table in ruleset.tables
    ):
        raise DockerUnavailable(Reason("docker-live-iptables"))
    changes = []
    for table in _docker_filter_tables(ruleset):
        for chain in table.chains:
            if chain.hook is None:
                continue
            change = chain_reset(table, chain, "accept" if chain.name == "FORWARD" else None)
            if change.removed or chain.name == "FORWARD":
                changes.append(change)
    if not changes:
        raise DockerUnavailable(Reason("docker-no-stale-rules"))
    return tuple(changes)


def reset_in_memory(ruleset: Ruleset, change: ChainReset) -> Ruleset:
    """`ruleset` with `change` done."""
    family = "ip" if change.family == 4 else "ip6"
    source = "iptables-nft" if change.variant == "nft" else "iptables-legacy"
    specs = {spec for _, spec in change.removed}
    tables = list(ruleset.tables)
    for position, table in enumerate(tables):
        if (table.family, table.name, table.source) != (family, change.table, source):
            continue
        chains = []
        for chain in table.chains:
            if chain.name == change.chain:
                kept = tuple(r for r in chain.rules if _spec(chain.name, r.text) not in specs)
                policy = chain.policy
                if change.policy is not None:
                    policy = "drop" if change.policy == "drop" else "accept"
                chain = replace(chain, rules=kept, policy=policy)
            chains.append(chain)
        tables[position] = replace(table, chains=tuple(chains))
    return Ruleset(tuple(tables), ruleset.warnings)


# --- docker-no-drop ---------------------------------------------------------------------

NO_DROP_OPTION = "ip-forward-no-drop"
NO_DROP_SINCE = (28, 0)


def version_tuple(version: str) -> tuple[int, ...]:
    """ "28.0.1" -> (28, 0, 1); "20.10.24+dfsg1" -> (20, 10, 24)."""
    numbers = []
    for part in version.split("+", 1)[0].split("-", 1)[0].split("."):
        digits = "".join(itertools.takewhile(str.isdigit, part))
        if not digits:
            break
        numbers.append(int(digits))
    return tuple(numbers)


def merged_daemon_json(text: str | None, path: str) -> str:
    """daemon.json with ``"ip-forward-no-drop": true``, every other key, value and their order
    kept (the indentation too, where it is one); `DockerUnavailable` when it is not a JSON
    object, so nothing is written."""
    if text is None or not text.strip():
        return json.dumps({NO_DROP_OPTION: True}, indent=2) + "\n"
    try:
        doc = json.loads(text)
    except ValueError as error:
        raise DockerUnavailable(
            Reason("docker-json-invalid", path=str(path), error=str(error))
        ) from None
    if not isinstance(doc, dict):
        raise DockerUnavailable(Reason("docker-json-not-object", path=str(path)))
    doc[NO_DROP_OPTION] = True
    indent = _indent(text)
    return json.dumps(doc, indent=indent, ensure_ascii=False) + "\n"


def _indent(text: str) -> int | str:
    for line in text.splitlines()[1:]:
        stripped = line.lstrip(" \t")
        if stripped and len(stripped) < len(line):
            lead = line[: len(line) - len(stripped)]
            return "\t" if lead.startswith("\t") else len(lead)
    return 2


def no_drop_changes(ruleset: Ruleset, facts: HostFacts) -> tuple[FileChange | ChainReset, ...]:
    """daemon.json with the option, and each Docker FORWARD policy drop reset to accept now
    (the option only stops Docker from setting it at its next start)."""
    if facts.version is None and not facts.checked:
        raise DockerUnavailable(Reason("docker-version-not-checked", needed=NO_DROP_SINCE[0]))
    if facts.version is None:
        raise DockerUnavailable(Reason("docker-not-installed"))
    if version_tuple(facts.version) < NO_DROP_SINCE:
        raise DockerUnavailable(
            Reason(
                "docker-too-old",
                version=facts.version,
                needed=NO_DROP_SINCE[0],
                option=NO_DROP_OPTION,
            )
        )
    after = merged_daemon_json(facts.daemon_json, facts.daemon_json_path)
    what = f'set "{NO_DROP_OPTION}": true, every other key kept'
    if after == facts.daemon_json:
        what = f'"{NO_DROP_OPTION}": true is already set'
    # there even when already set: a second apply is then a no-op that keeps the first's record
    changes: list[FileChange | ChainReset] = [
        FileChange(facts.daemon_json_path, facts.daemon_json, after, what)
    ]
    for table in _docker_filter_tables(ruleset):
        forward = table.chain("FORWARD")
        if forward is not None and forward.hook is not None:
            changes.append(
                ChainReset(
                    SOURCE_VARIANT[table.source],
                    4 if table.family == "ip" else 6,
                    table.name,
                    "FORWARD",
                    "accept",
                    forward.policy,
                )
            )
    return tuple(changes)
