"""A fix as data: exactly what will be added or set, shown before anything runs.

Every rule a plan adds carries the comment ``hotspotguard:<fix id>`` (its *tag*), which is how
apply recognises a fix already in place and how undo finds exactly the rules it added.
"""

from __future__ import annotations

import shlex
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal

if TYPE_CHECKING:
    from hotspotguard.fixes.firewalld import FirewalldFacts, ZoneFacts

Variant = Literal["nft", "legacy"]
#: a table's source (ruleset) -> the iptables variant that manages it
SOURCE_VARIANT: dict[str, Variant] = {"iptables-nft": "nft", "iptables-legacy": "legacy"}
TAG_PREFIX = "hotspotguard:"
DAEMON_JSON = "/etc/docker/daemon.json"


@dataclass(frozen=True)
class NetnsFacts:
    """What `docker-netns` needs to know of the host: every IPv4 network on it (its
    addresses' and routes' prefixes, those of `docker0` aside), what `docker0` is now
    ("bridge", "veth", None: absent), the tools the drop-in runs (absolute, root's; None: one
    is missing or not root's, with `problem` saying which), the drop-in's path and its text
    now (None: absent), and whether systemd runs the system."""

    networks: tuple[str, ...] = ()
    docker0: str | None = None
    dockerd: str | None = None
    tools: tuple[tuple[str, str], ...] = ()
    problem: str | None = None
    dropin_path: str = ""
    dropin: str | None = None
    systemd: bool = False


@dataclass(frozen=True)
class HostFacts:
    """What planners need to know beyond the ruleset, gathered by the use case: Docker's
    version (None: not found) and daemon.json's text (None: no file), whether ufw is there,
    what docker-netns needs, firewalld's zones.  `checked` is False for a snapshot explained
    elsewhere: none of this is known then."""

    version: str | None = None
    daemon_json: str | None = None
    daemon_json_path: str = DAEMON_JSON
    ufw: bool = False
    netns: NetnsFacts | None = None
    # firewalld's zones (fixes.firewalld.FirewalldFacts), where its table is loaded; None: it
    # is not, or firewalld is not running
    firewalld: FirewalldFacts | None = None
    checked: bool = True


def tag(fix_id: str) -> str:
    """The comment every rule of fix `fix_id` carries."""
    return TAG_PREFIX + fix_id


@dataclass(frozen=True)
class RuleChange:
    """Rules inserted, in order, at the top of a chain that iptables manages.

    `rules` are rule specifications as ``iptables-save`` prints them after ``-A CHAIN``."""

    variant: Variant
    family: Literal[4, 6]
    table: str
    chain: str
    rules: tuple[str, ...]

    @property
    def command(self) -> str:
        """The program a person would use for these rules (for the preview)."""
        base = "iptables" if self.family == 4 else "ip6tables"
        return f"{base}-{self.variant}"

    def preview(self) -> list[str]:
        return [
            f"{self.command} -t {self.table} -I {self.chain} {n} {rule}"
            for n, rule in enumerate(self.rules, 1)
        ]

    def to_json(self) -> dict[str, Any]:
        return {
            "kind": "rules",
            "variant": self.variant,
            "family": self.family,
            "table": self.table,
            "chain": self.chain,
            "rules": list(self.rules),
        }


@dataclass(frozen=True)
class SysctlChange:
    """A kernel setting written under /proc/sys.  Undo writes the previous value back, and then
    `restore`: the settings the kernel changed along with it (writing ``ip_forward`` sets every
    interface's ``forwarding``), as they were."""

    name: str
    value: str
    previous: str | None = None
    restore: tuple[tuple[str, str], ...] = ()

    def preview(self) -> list[str]:
        was = f" (now {self.previous})" if self.previous is not None else ""
        return [f"sysctl {self.name}={self.value}{was}"]

    def to_json(self) -> dict[str, Any]:
        return {
            "kind": "sysctl",
            "name": self.name,
            "value": self.value,
            "previous": self.previous,
            "restore": [list(pair) for pair in self.restore],
        }


Tool = Literal["nft", "iptables-nft", "iptables-legacy"]


@dataclass(frozen=True)
class ChainInsert:
    """Accepts put into another program's chain, immediately before the rule that drops
    (`before`: its nft handle, or its 1-based position in an iptables chain) or, where the
    chain's policy drops, at its end (`before` None).

    `anchor` is the text of the rule at `before` when the plan was made: apply refuses a chain
    that moved since rather than edit it blind.  `rules` are the rules as a person reads them
    (nft syntax, or iptables-save specs); for nft, `exprs` holds each rule's expression list as
    JSON, which is what is applied (one nft transaction)."""

    tool: Tool
    family: str  # the table's nft family: ip, ip6, inet, ...
    table: str
    chain: str
    before: int | None
    anchor: str
    rules: tuple[str, ...]
    exprs: tuple[str, ...] = ()
    handles: tuple[int, ...] = ()  # nft: the handles our rules got (filled in by apply)
    #: iptables: each rule as found right after apply (spec, iptables-nft handle or None,
    #: 1-based position), which undo removes and nothing else
    placed: tuple[tuple[str, int | None, int], ...] = ()

    @property
    def version(self) -> Literal[4, 6]:
        return 6 if self.family == "ip6" else 4

    @property
    def variant(self) -> Variant:
        return "legacy" if self.tool == "iptables-legacy" else "nft"

    def preview(self) -> list[str]:
        if self.tool == "nft":
            where = (
                f"insert rule {self.family} {self.table} {self.chain} handle {self.before}"
                if self.before is not None
                else f"add rule {self.family} {self.table} {self.chain}"
            )
            return [f"nft {where} {rule}" for rule in self.rules]
        base = ("iptables" if self.version == 4 else "ip6tables") + f"-{self.variant}"
        if self.before is None:
            return [f"{base} -t {self.table} -A {self.chain} {rule}" for rule in self.rules]
        return [
            f"{base} -t {self.table} -I {self.chain} {self.before + n} {rule}"
            for n, rule in enumerate(self.rules)
        ]

    def to_json(self) -> dict[str, Any]:
        return {
            "kind": "insert",
            "tool": self.tool,
            "family": self.family,
            "table": self.table,
            "chain": self.chain,
            "before": self.before,
            "anchor": self.anchor,
            "rules": list(self.rules),
            "exprs": list(self.exprs),
            "handles": list(self.handles),
            "placed": [list(rule) for rule in self.placed],
        }


@dataclass(frozen=True)
class ChainReset:
    """A built-in chain of a table iptables manages, cleared of what another program left:
    its policy set to `policy` (None: left alone) and the rules `removed` deleted (each with
    its 1-based position, so undo puts it back where it was).  `previous` is the policy as
    it was, which undo restores."""

    variant: Variant
    family: Literal[4, 6]
    table: str
    chain: str
    policy: str | None
    previous: str | None
    removed: tuple[tuple[int, str], ...] = ()

    @property
    def command(self) -> str:
        return ("iptables" if self.family == 4 else "ip6tables") + f"-{self.variant}"

    def preview(self) -> list[str]:
        lines = [
            f"{self.command} -t {self.table} -D {self.chain} {spec}" for _, spec in self.removed
        ]
        if self.policy is not None and self.policy != self.previous:
            was = f" (now {self.previous.upper()})" if self.previous else ""
            lines.append(
                f"{self.command} -t {self.table} -P {self.chain} {self.policy.upper()}{was}"
            )
        return lines

    def to_json(self) -> dict[str, Any]:
        return {
            "kind": "reset",
            "variant": self.variant,
            "family": self.family,
            "table": self.table,
            "chain": self.chain,
            "policy": self.policy,
            "previous": self.previous,
            "removed": [[position, spec] for position, spec in self.removed],
        }


@dataclass(frozen=True)
class FileChange:
    """A configuration file another program reads, rewritten whole: `before` is its text as
    planned (None: it did not exist), `after` the new text.  Apply refuses a file that is
    neither (edited since the plan); undo writes `before` back (or removes the file)."""

    path: str
    before: str | None
    after: str
    what: str  # one line: the edit, for the preview

    @property
    def backup(self) -> str:
        return self.path + ".hotspotguard-backup"

    def preview(self) -> list[str]:
        if self.before == self.after:
            return [f"{self.path}: {self.what}"]
        kept = f" (the old file kept as {self.backup})" if self.before is not None else ""
        return [f"edit {self.path}: {self.what}{kept}"]

    def to_json(self) -> dict[str, Any]:
        return {
            "kind": "file",
            "path": self.path,
            "before": self.before,
            "after": self.after,
            "what": self.what,
        }


@dataclass(frozen=True)
class UfwChange:
    """Rules added through ufw's own command, so its state stays coherent and permanent
    (`ufw RULE comment TAG`); undo deletes (`ufw delete RULE`) only those that were not there
    before (`added`, filled in as it is applied)."""

    rules: tuple[str, ...]  # each as ufw's arguments: "route allow in on wlan0 out on eth0"
    added: tuple[str, ...] = ()

    def preview(self) -> list[str]:
        return [f"ufw {rule}" for rule in self.rules]

    def to_json(self) -> dict[str, Any]:
        return {"kind": "ufw", "rules": list(self.rules), "added": list(self.added)}


@dataclass(frozen=True)
class ZoneChange:
    """An interface moved into a firewalld zone through firewalld's D-Bus API, now (runtime)
    and in firewalld's permanent configuration.  `previous_runtime` and `previous_permanent`
    are the zones it was in ("" = none), which undo restores; `zone_was_default`: the zone's
    settings were firewalld's built-in ones, which undo loads again (no copy left in /etc)."""

    iface: str
    zone: str
    previous_runtime: str
    previous_permanent: str
    default_zone: str  # where an interface of no zone goes (the in-memory model needs it)
    zone_was_default: bool = True
    # firewalld's backups (`ZONE.xml.old`) of the zones it rewrites, as they were before the
    # first apply (None: absent): firewalld writes them at every change; undo puts them back
    backups: tuple[tuple[str, str | None], ...] = ()
    # the zone's settings, for the engine's model of it (planning only; not recorded)
    settings: ZoneFacts | None = field(default=None, compare=False, repr=False)

    def preview(self) -> list[str]:
        now = self.previous_runtime or f"no zone: the default zone, {self.default_zone}"
        kept = self.previous_permanent or "none"
        return [
            f"firewalld (D-Bus): zone.changeZoneOfInterface({self.zone}, {self.iface}) "
            f"(now in {now})",
            f"firewalld (D-Bus): config.zone {self.zone} addInterface({self.iface}) "
            f"(permanent; now {kept})",
        ]

    def to_json(self) -> dict[str, Any]:
        return {
            "kind": "zone",
            "iface": self.iface,
            "zone": self.zone,
            "previous_runtime": self.previous_runtime,
            "previous_permanent": self.previous_permanent,
            "default_zone": self.default_zone,
            "zone_was_default": self.zone_was_default,
            "backups": [list(pair) for pair in self.backups],
        }


@dataclass(frozen=True)
class DropIn:
    """A systemd drop-in of ours for `unit`, written whole (`text`); apply refuses a file of
    that name that is not this text, undo removes it only while it is.  With `reload` (systemd
    runs the system) apply has systemd read it again and restarts the unit if it runs
    (`systemctl try-restart`); undo only has it read again (the unit keeps running as it is
    until its next start).  `made_dir`: apply created the drop-in directory (undo removes it
    if it is left empty)."""

    path: str
    text: str
    unit: str
    reload: bool
    made_dir: bool = False

    def preview(self) -> list[str]:
        lines = [f"write {self.path}:"] + [f"    {line}" for line in self.text.splitlines()]
        if self.reload:
            lines += ["systemctl daemon-reload", f"systemctl try-restart {self.unit}"]
        else:
            lines.append(f"(takes effect when {self.unit} next starts: systemd is not running)")
        return lines

    def to_json(self) -> dict[str, Any]:
        return {
            "kind": "dropin",
            "path": self.path,
            "text": self.text,
            "unit": self.unit,
            "reload": self.reload,
            "made_dir": self.made_dir,
        }


@dataclass(frozen=True)
class NftTable:
    """A table of ours, created whole in one nft transaction (`text`: the table as ``nft -f``
    reads it, every rule tagged); undo deletes it.  A table of that name that is not ours as
    planned is refused."""

    family: str
    name: str
    text: str

    def preview(self) -> list[str]:
        return ["nft -f - <<'EOF'", *self.text.splitlines(), "EOF"]

    def to_json(self) -> dict[str, Any]:
        return {"kind": "table", "family": self.family, "name": self.name, "text": self.text}


@dataclass(frozen=True)
class NftTableRemoved:
    """Another program's nft table deleted whole (one nft transaction); `text` is the table as
    nft listed it just before (filled in by apply), which undo loads back."""

    family: str
    name: str
    text: str = ""

    def preview(self) -> list[str]:
        return [f"nft delete table {self.family} {self.name}"]

    def to_json(self) -> dict[str, Any]:
        return {"kind": "table-removed", "family": self.family, "name": self.name,
                "text": self.text}  # fmt: skip


Change = (
    RuleChange
    | SysctlChange
    | ChainInsert
    | ChainReset
    | FileChange
    | UfwChange
    | DropIn
    | NftTable
    | NftTableRemoved
    | ZoneChange
)


@dataclass(frozen=True)
class Plan:
    """What a strategy would do for one hotspot."""

    fix_id: str
    strategy: str
    iface: str
    summary: str  # one sentence: what it does
    tradeoff: str  # one sentence: what it costs or leaves open
    changes: tuple[Change, ...] = field(default_factory=tuple)
    steps: tuple[str, ...] = ()  # a combined plan's strategies, in the order they apply

    @property
    def tag(self) -> str:
        return tag(self.fix_id)

    def preview(self) -> list[str]:
        return [line for change in self.changes for line in change.preview()]

    def to_json(self) -> dict[str, Any]:
        return {
            "id": self.fix_id,
            "strategy": self.strategy,
            "iface": self.iface,
            "summary": self.summary,
            "tradeoff": self.tradeoff,
            "changes": [change.to_json() for change in self.changes],
            "preview": self.preview(),
            "steps": list(self.steps or (self.strategy,)),
        }


def change_from_json(doc: dict[str, Any]) -> Change:
    """The inverse of `to_json` (for the helper's state file, which only it writes)."""
    if doc.get("kind") == "insert":
        tool: Tool = "nft"
        if doc["tool"] in ("iptables-nft", "iptables-legacy"):
            tool = "iptables-legacy" if doc["tool"] == "iptables-legacy" else "iptables-nft"
        before = doc.get("before")
        return ChainInsert(
            tool,
            str(doc["family"]),
            str(doc["table"]),
            str(doc["chain"]),
            before if isinstance(before, int) else None,
            str(doc.get("anchor", "")),
            tuple(str(rule) for rule in doc["rules"]),
            tuple(str(expr) for expr in doc.get("exprs") or ()),
            tuple(int(handle) for handle in doc.get("handles") or ()),
            tuple(
                (str(spec), handle if isinstance(handle, int) else None, int(position))
                for spec, handle, position in doc.get("placed") or ()
            ),
        )
    if doc.get("kind") == "dropin":
        return DropIn(
            str(doc["path"]),
            str(doc["text"]),
            str(doc["unit"]),
            bool(doc.get("reload")),
            bool(doc.get("made_dir")),
        )
    if doc.get("kind") == "table-removed":
        return NftTableRemoved(str(doc["family"]), str(doc["name"]), str(doc.get("text", "")))
    if doc.get("kind") == "table":
        return NftTable(str(doc["family"]), str(doc["name"]), str(doc["text"]))
    if doc.get("kind") == "ufw":
        return UfwChange(
            tuple(str(rule) for rule in doc["rules"]),
            tuple(str(rule) for rule in doc.get("added") or ()),
        )
    if doc.get("kind") == "zone":
        return ZoneChange(
            str(doc["iface"]),
            str(doc["zone"]),
            str(doc.get("previous_runtime") or ""),
            str(doc.get("previous_permanent") or ""),
            str(doc.get("default_zone") or ""),
            bool(doc.get("zone_was_default", True)),
            tuple(
                (str(name), None if text is None else str(text))
                for name, text in doc.get("backups") or ()
            ),
        )
    if doc.get("kind") == "file":
        before = doc.get("before")
        return FileChange(
            str(doc["path"]),
            None if before is None else str(before),
            str(doc["after"]),
            str(doc.get("what", "")),
        )
    if doc.get("kind") == "reset":
        policy, previous = doc.get("policy"), doc.get("previous")
        return ChainReset(
            "legacy" if doc["variant"] == "legacy" else "nft",
            4 if doc["family"] == 4 else 6,
            str(doc["table"]),
            str(doc["chain"]),
            None if policy is None else str(policy),
            None if previous is None else str(previous),
            tuple((int(position), str(spec)) for position, spec in doc.get("removed") or ()),
        )
    if doc.get("kind") == "rules":
        family: Literal[4, 6] = 4 if doc["family"] == 4 else 6
        variant: Variant = "legacy" if doc["variant"] == "legacy" else "nft"
        rules = tuple(str(rule) for rule in doc["rules"])
        return RuleChange(variant, family, str(doc["table"]), str(doc["chain"]), rules)
    previous = doc.get("previous")
    restore = tuple((str(name), str(value)) for name, value in doc.get("restore") or ())
    return SysctlChange(
        str(doc["name"]), str(doc["value"]), None if previous is None else str(previous), restore
    )


def rule_tag(spec: str) -> str | None:
    """The hotspotguard tag of a rule spec or save line, if it has one."""
    if TAG_PREFIX not in spec:
        return None
    try:
        tokens = shlex.split(spec)
    except ValueError:
        return None
    for index, token in enumerate(tokens[:-1]):
        if token == "--comment" and tokens[index + 1].startswith(TAG_PREFIX):
            return tokens[index + 1]
    return None
