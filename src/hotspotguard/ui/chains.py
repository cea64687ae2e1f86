"""The firewall chains dialog: every hook a packet crosses, every base chain on it by
priority (from every table, family and tool), their rules, jumps expandable, and the path
the engine traced for one flow highlighted with the dropping rule marked.

The tree is built lazily from the engine's :class:`~hotspotguard.verdict.engine.HookIndex`
(which owns the hook/priority order): a node's children exist once the view asks for them, so
a 100,000-rule ruleset opens as fast as a small one. Search is recursive (a match deep in a
jumped-to chain keeps its ancestors visible), but decided per chain, once per search term,
from the ruleset itself: Qt's own ``recursiveFilteringEnabled`` would walk (and so build) the
whole tree, including every jump's expansion, on every keystroke.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from PySide6.QtCore import (
    QAbstractItemModel,
    QCoreApplication,
    QEvent,
    QItemSelectionModel,
    QModelIndex,
    QObject,
    QPersistentModelIndex,
    QSortFilterProxyModel,
    Qt,
    QTimer,
)
from PySide6.QtGui import QBrush, QColor, QFont, QGuiApplication, QHideEvent, QShowEvent
from PySide6.QtWidgets import (
    QAbstractItemView,
    QComboBox,
    QDialog,
    QDialogButtonBox,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QLineEdit,
    QPushButton,
    QTreeView,
    QVBoxLayout,
    QWidget,
)

from hotspotguard.ruleset.model import HOOKS, Chain, Rule, Ruleset, Table, Verdict, VerdictMap
from hotspotguard.ruleset.owners import display_owner
from hotspotguard.ui.icons import owner_icon, state_icon
from hotspotguard.ui.screen import fit
from hotspotguard.verdict.engine import FAMILIES_FOR, ChainVisit, FlowResult, HookEntry, HookIndex
from hotspotguard.verdict.evaluate import Report

ModelIndex = QModelIndex | QPersistentModelIndex

#: the hooks a packet can cross, in the order it crosses them (egress: not modelled)
SHOWN_HOOKS: tuple[str, ...] = tuple(h for h in HOOKS if h != "egress")

COLUMNS = ("name", "owner", "priority", "policy", "flow")
NAME, OWNER, PRIORITY, POLICY, FLOW = range(len(COLUMNS))

KIND_ROLE = Qt.ItemDataRole.UserRole + 1
PATH_ROLE = Qt.ItemDataRole.UserRole + 2  # "path", "drop" or None

PATH_BACKGROUND = QColor("#fff3c4")
DROP_BACKGROUND = QColor("#f8c7cc")

HOOK, BASE, RULE, TARGET = "hook", "base", "rule", "target"


def tr(text: str) -> str:
    return QCoreApplication.translate("ChainsDialog", text)


def jump_targets(table: Table, rule: Rule) -> list[Chain]:
    """The chains a rule may jump or go to (a verdict map may name several), in order."""
    names: list[str] = []
    for expr in rule.exprs:
        if isinstance(expr, Verdict) and expr.kind in ("jump", "goto") and expr.target:
            names.append(expr.target)
        elif isinstance(expr, VerdictMap):
            entries: tuple[tuple[object, object], ...] = tuple(expr.entries or ())
            if expr.name is not None and expr.name in table.sets:
                entries = table.sets[expr.name].entries
            names.extend(
                v.target
                for _, v in entries
                if isinstance(v, Verdict) and v.kind in ("jump", "goto") and v.target
            )
    chains = [table.chain(name) for name in dict.fromkeys(names)]
    return [c for c in chains if c is not None]


class Node:
    """One row of the tree; children are made on demand."""

    __slots__ = (
        "base",
        "chain",
        "children",
        "count",
        "entry",
        "hook",
        "index",
        "kind",
        "parent",
        "row",
        "rule",
        "targets",
    )

    def __init__(
        self,
        kind: str,
        parent: Node | None,
        row: int,
        *,
        hook: str = "",
        entry: HookEntry | None = None,
        chain: Chain | None = None,
        index: int = -1,
        base: Node | None = None,
    ) -> None:
        self.kind = kind
        self.parent = parent
        self.row = row
        self.hook = hook
        self.entry = entry
        self.chain = chain
        self.index = index
        self.base = base  # the base-chain node this row belongs to (itself for a BASE)
        self.rule: Rule | None = None
        self.targets: list[Chain] | None = None
        self.children: dict[int, Node] = {}
        self.count = -1

    @property
    def table(self) -> Table:
        assert self.base is not None and self.base.entry is not None
        return self.base.entry.table

    def container_chain(self) -> Chain | None:
        """The chain whose rules are this node's children."""
        if self.kind in (BASE, TARGET):
            return self.chain
        if self.kind == RULE and self.targets is not None and len(self.targets) == 1:
            return self.targets[0]
        return None


@dataclass(frozen=True)
class FlowChoice:
    """A flow the dialog can show: which hotspot, which flow, and the engine's result."""

    iface: str
    name: str
    result: FlowResult

    @property
    def label(self) -> str:
        from hotspotguard import wording
        from hotspotguard.ui.texts import qt_tr

        name = wording.flow_name(self.name, qt_tr)
        return f"{self.iface} · {name} — {wording.verdict_word(self.result.verdict, qt_tr)}"


def flow_choices(report: Report | None) -> list[FlowChoice]:
    choices: list[FlowChoice] = []
    for verdict in report.hotspots if report else ():
        for name, result in verdict.flows.items():
            choices.append(FlowChoice(verdict.hotspot.iface, name, result))
    return choices


class ChainsModel(QAbstractItemModel):
    """Hooks → base chains by priority → rules → jumped-to chains' rules (lazily)."""

    def __init__(self, ruleset: Ruleset, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.ruleset = ruleset
        self.index_ = HookIndex.of(ruleset)  # the engine's order, built once per ruleset
        self.family = "ip"
        self.flow: FlowResult | None = None
        self._visits: dict[tuple[str, str, str, str, str], ChainVisit] = {}
        self._steps: dict[int, dict[tuple[str, int], str]] = {}
        self._drop: tuple[tuple[str, str, str, str, str], str, int] | None = None
        self._roots = self._make_roots()

    # -- the flow --
    def set_flow(self, flow: FlowResult | None) -> None:
        """Show the chains for this flow's family with its path highlighted."""
        self.beginResetModel()
        self.flow = flow
        self.family = flow.flow.family if flow is not None else "ip"
        self._visits = {}
        self._steps = {}
        self._drop = None
        if flow is not None:
            for visit in flow.visits:
                key = _visit_key(visit)
                self._visits.setdefault(key, visit)
                steps = self._steps.setdefault(id(self._visits[key]), {})
                for step in visit.steps:
                    steps.setdefault((step.chain, step.index), step.action)
            last = flow.visits[-1] if flow.visits else None
            if flow.verdict == "drop" and last is not None and last.verdict == "drop":
                final = last.steps[-1] if last.steps else None
                if final is not None:
                    self._drop = (_visit_key(last), final.chain, final.index)
        self._roots = self._make_roots()
        self.endResetModel()

    def _make_roots(self) -> list[Node]:
        return [Node(HOOK, None, row, hook=hook) for row, hook in enumerate(SHOWN_HOOKS)]

    def entries(self, hook: str) -> list[HookEntry]:
        """The base chains on `hook` for the current family, in the kernel's order."""
        if hook == "ingress":
            own = FAMILIES_FOR[self.family][1]
            return [e for e in self.index_.ingress if e.table.family in ("netdev", own)]
        return self.index_.entries.get((self.family, hook), [])

    # -- nodes --
    def node(self, index: ModelIndex) -> Node | None:
        if not index.isValid():
            return None
        found: Node = index.internalPointer()
        return found

    def _count(self, node: Node | None) -> int:
        if node is None:
            return len(self._roots)
        if node.count < 0:
            node.count = self._child_count(node)
        return node.count

    def _child_count(self, node: Node) -> int:
        if node.kind == HOOK:
            return len(self.entries(node.hook))
        if node.kind == BASE:
            assert node.chain is not None
            return len(node.chain.rules) + 1  # + the policy
        if node.kind == TARGET:
            assert node.chain is not None
            return len(node.chain.rules)
        targets = self._targets(node)
        if not targets:
            return 0
        chain = targets[0] if len(targets) == 1 else None
        if chain is not None:
            if any(c is chain for c in _parents_chains(node)):
                return 0  # a loop: the kernel refuses it; show no endless tree
            return len(chain.rules)
        return len(targets)

    def _targets(self, node: Node) -> list[Chain]:
        if node.targets is None:
            node.targets = [] if node.rule is None else jump_targets(node.table, node.rule)
        return node.targets

    def _child(self, node: Node | None, row: int) -> Node:
        if node is None:
            return self._roots[row]
        child = node.children.get(row)
        if child is not None:
            return child
        if node.kind == HOOK:
            entry = self.entries(node.hook)[row]
            child = Node(BASE, node, row, hook=node.hook, entry=entry, chain=entry.chain)
            child.base = child
        elif node.kind == RULE and len(self._targets(node)) > 1:
            chain = self._targets(node)[row]
            child = Node(TARGET, node, row, hook=node.hook, chain=chain, base=node.base)
        else:
            container = node.container_chain()
            assert container is not None
            child = Node(
                RULE, node, row, hook=node.hook, chain=container, index=row, base=node.base
            )
            if row < len(container.rules):
                child.rule = container.rules[row]
            else:
                child.index = -1  # the base chain's policy
        node.children[row] = child
        return child

    # -- QAbstractItemModel --
    def index(self, row: int, column: int, parent: ModelIndex = QModelIndex()) -> QModelIndex:  # noqa: B008
        owner = self.node(parent)
        if row < 0 or column < 0 or column >= len(COLUMNS) or row >= self._count(owner):
            return QModelIndex()
        return self.createIndex(row, column, self._child(owner, row))

    def parent(self, index: ModelIndex = QModelIndex()) -> QModelIndex:  # type: ignore[override]  # noqa: B008
        node = self.node(index)
        if node is None or node.parent is None:
            return QModelIndex()
        return self.createIndex(node.parent.row, 0, node.parent)

    def rowCount(self, parent: ModelIndex = QModelIndex()) -> int:  # noqa: B008
        if parent.isValid() and parent.column() != 0:
            return 0
        return self._count(self.node(parent))

    def hasChildren(self, parent: ModelIndex = QModelIndex()) -> bool:  # noqa: B008
        node = self.node(parent)
        if node is None:
            return True
        if node.kind == RULE:
            return node.rule is not None and bool(self._targets(node)) and self._count(node) > 0
        return self._count(node) > 0

    def columnCount(self, parent: ModelIndex = QModelIndex()) -> int:  # noqa: B008
        return len(COLUMNS)

    def headerData(
        self, section: int, orientation: Qt.Orientation, role: int = Qt.ItemDataRole.DisplayRole
    ) -> Any:
        if orientation == Qt.Orientation.Horizontal and role == Qt.ItemDataRole.DisplayRole:
            return [tr("Hook / chain / rule"), tr("Owner"), tr("Priority"), tr("Policy"),
                    tr("This flow")][section]  # fmt: skip
        return None

    def data(self, index: ModelIndex, role: int = Qt.ItemDataRole.DisplayRole) -> Any:
        node = self.node(index)
        if node is None:
            return None
        column = index.column()
        if role == Qt.ItemDataRole.DisplayRole:
            return self.text(node, column)
        if role == Qt.ItemDataRole.ToolTipRole:
            return self.tooltip(node)
        if role == KIND_ROLE:
            return node.kind
        if role == PATH_ROLE:
            return self.mark(node)
        if role == Qt.ItemDataRole.BackgroundRole:
            mark = self.mark(node)
            if mark == "drop":
                return QBrush(DROP_BACKGROUND)
            if mark == "path" and node.kind != HOOK:
                return QBrush(PATH_BACKGROUND)
            return None
        if role == Qt.ItemDataRole.FontRole:
            mark = self.mark(node)
            if node.kind in (HOOK, BASE) or mark == "drop":
                font = QFont()
                font.setBold(node.kind == HOOK or mark == "drop" or mark == "path")
                return font
            return None
        if role == Qt.ItemDataRole.ForegroundRole:
            if self.flow is not None and node.kind == HOOK and not self.mark(node):
                return QBrush(QColor("#888888"))
            return None
        if role == Qt.ItemDataRole.DecorationRole:
            if column == OWNER and node.kind == BASE:
                return owner_icon(self.owner(node))
            if column == NAME and self.mark(node) == "drop":
                return state_icon("blocked")
        return None

    # -- what a row says --
    def owner(self, node: Node) -> str:
        assert node.entry is not None
        return self.index_.owner(node.entry)

    def text(self, node: Node, column: int) -> str:
        if node.kind == HOOK:
            if column == NAME:
                return node.hook
            if column == FLOW and self.flow is not None:
                return tr("crossed") if node.hook in self.flow.flow.path else ""
            if column == POLICY and self._count(node) == 0:
                return tr("no base chain")
            return ""
        if node.kind == BASE:
            assert node.entry is not None and node.chain is not None
            table, chain = node.entry.table, node.chain
            if column == NAME:
                where = "" if table.source == "nft" else f"  [{table.source}]"
                devices = f"  ({', '.join(chain.devices)})" if chain.devices else ""
                return f"{table.family} {table.name} {chain.name}{where}{devices}"
            if column == OWNER:
                return display_owner(self.owner(node))
            if column == PRIORITY:
                kind = "" if chain.type == "filter" else f" {chain.type}"
                return f"{chain.priority}{kind}"
            if column == POLICY:
                return chain.policy
            if column == FLOW:
                visit = self.visit(node)
                return visit.verdict if visit is not None else ""
            return ""
        if node.kind == TARGET:
            assert node.chain is not None
            return node.chain.name if column == NAME else ""
        # a rule (or the base chain's policy)
        if column == NAME:
            if node.rule is None:
                assert node.chain is not None
                return tr("policy {policy}").format(policy=node.chain.policy)
            return node.rule.text
        if column == FLOW:
            return self.action(node) or ""
        return ""

    def tooltip(self, node: Node) -> str | None:
        if node.kind == BASE and node.entry is not None and node.chain is not None:
            chain = node.chain
            return tr("{family} table {table} ({source}), chain {chain}: {type} hook {hook} "
                      "priority {priority}, policy {policy}; {rules} rules").format(
                family=node.entry.table.family, table=node.entry.table.name,
                source=node.entry.table.source, chain=chain.name, type=chain.type,
                hook=chain.hook, priority=chain.priority, policy=chain.policy,
                rules=len(chain.rules),
            )  # fmt: skip
        if node.kind == RULE and node.rule is not None:
            assert node.chain is not None
            return f"{node.chain.name} #{node.index + 1}: {node.rule.text}"
        return None

    def visit(self, node: Node) -> ChainVisit | None:
        base = node.base
        if base is None or base.entry is None or not self._visits:
            return None
        table, chain = base.entry.table, base.entry.chain
        key = (base.hook, table.family, table.name, table.source, chain.name)
        return self._visits.get(key)

    def action(self, node: Node) -> str | None:
        """What the selected flow's packet did at this rule (None: it did not get there)."""
        visit = self.visit(node)
        if visit is None or node.chain is None:
            return None
        return self._steps.get(id(visit), {}).get((node.chain.name, node.index))

    def mark(self, node: Node) -> str | None:
        """The row's mark: "drop" (the dropping rule), "path" (the flow went here) or None."""
        if self.flow is None:
            return None
        if node.kind == HOOK:
            return "path" if node.hook in self.flow.flow.path and self._count(node) else None
        if node.kind == BASE:
            return "path" if self.visit(node) is not None else None
        if node.kind == TARGET:
            return None
        if self.action(node) is None:
            return None
        if self._drop is not None and node.chain is not None:
            key, chain_name, rule_index = self._drop
            base = node.base
            assert base is not None and base.entry is not None
            table = base.entry.table
            here = (base.hook, table.family, table.name, table.source, base.entry.chain.name)
            if here == key and (node.chain.name, node.index) == (chain_name, rule_index):
                return "drop"
        return "path"

    # -- the path --
    def path_indexes(self) -> tuple[list[QModelIndex], QModelIndex]:
        """The rows to expand to show the selected flow's path, and the dropping rule's
        (invalid when the flow is not dropped by a rule)."""
        expand: list[QModelIndex] = []
        drop = QModelIndex()
        if self.flow is None:
            return expand, drop
        for hook_row, hook in enumerate(SHOWN_HOOKS):
            if hook not in self.flow.flow.path:
                continue
            hook_index = self.index(hook_row, 0)
            expand.append(hook_index)
            for base_row in range(self.rowCount(hook_index)):
                base_index = self.index(base_row, 0, hook_index)
                base = self.node(base_index)
                assert base is not None
                visit = self.visit(base)
                if visit is None:
                    continue
                if visit.verdict != "accept" or any(
                    s.action.startswith(("jump", "goto")) for s in visit.steps
                ):
                    expand.append(base_index)
                found = self._walk_steps(base_index, visit, expand)
                if found.isValid():
                    drop = found
        return expand, drop

    def _walk_steps(
        self, base_index: QModelIndex, visit: ChainVisit, expand: list[QModelIndex]
    ) -> QModelIndex:
        """Follow a visit's steps through the (lazy) tree; expands jumps on the way."""
        stack = [base_index]
        drop = QModelIndex()
        for step in visit.steps:
            while len(stack) > 1 and self._container_name(stack[-1]) != step.chain:
                stack.pop()  # returned from a jumped-to chain
            container = stack[-1]
            if self._container_name(container) != step.chain:
                continue
            row = step.index if step.index >= 0 else self.rowCount(container) - 1
            if not 0 <= row < self.rowCount(container):
                continue
            rule_index = self.index(row, 0, container)
            node = self.node(rule_index)
            if node is not None and self.mark(node) == "drop":
                drop = rule_index
            if step.action.startswith(("jump", "goto")) and self.hasChildren(rule_index):
                expand.append(rule_index)
                target = step.action.split(" ", 1)[1] if " " in step.action else ""
                child = rule_index
                if node is not None and len(self._targets(node)) > 1:
                    names = [c.name for c in self._targets(node)]
                    if target in names:
                        child = self.index(names.index(target), 0, rule_index)
                        expand.append(child)
                if step.action.startswith("goto"):
                    stack[-1] = child
                else:
                    stack.append(child)
        return drop

    def _container_name(self, index: QModelIndex) -> str | None:
        node = self.node(index)
        chain = node.container_chain() if node is not None else None
        if node is not None and node.kind == RULE:
            self._targets(node)
            chain = node.container_chain()
        return chain.name if chain is not None else None

    # -- searching --
    def own_text(self, node: Node) -> str:
        """The text a search looks at for this row (not its children)."""
        if node.kind == BASE:
            return f"{self.text(node, NAME)} {self.text(node, OWNER)}".lower()
        return self.text(node, NAME).lower()


def _parents_chains(node: Node) -> Iterator[Chain]:
    parent = node.parent
    while parent is not None and parent.kind != HOOK:
        chain = parent.container_chain()
        if chain is not None:
            yield chain
        parent = parent.parent


def _visit_key(visit: ChainVisit) -> tuple[str, str, str, str, str]:
    return (visit.hook, visit.family, visit.table, visit.source, visit.chain)


class ChainsFilter(QSortFilterProxyModel):
    """Recursive search: a row stays when it, or anything below it, contains the text.
    "Below" is decided per chain, once per term, from the ruleset: the rows of a chain that
    stay are one set computed in one pass, so filtering a 100,000-rule chain costs a set
    look-up per row and builds none of the tree."""

    def __init__(self, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.pattern = ""
        self._chain_has: dict[int, bool] = {}
        self._rows: dict[int, frozenset[int]] = {}
        self._lower: dict[int, list[str]] = {}  # per chain, its rules' texts in lower case
        self._jumps: dict[int, list[tuple[int, list[Chain]]]] = {}  # per chain: its jumps
        self.setRecursiveFilteringEnabled(False)  # see the module's docstring

    def set_pattern(self, text: str) -> None:
        self.pattern = text.strip().lower()
        self._chain_has = {}
        self._rows = {}
        self.beginFilterChange()
        self.endFilterChange(QSortFilterProxyModel.Direction.Rows)

    def setSourceModel(self, model: QAbstractItemModel) -> None:
        assert isinstance(model, ChainsModel)
        self._model = model
        self._chain_has, self._rows, self._lower, self._jumps = {}, {}, {}, {}
        super().setSourceModel(model)

    def chains_model(self) -> ChainsModel:
        return self._model

    def _texts(self, chain: Chain) -> list[str]:
        key = id(chain)
        if key not in self._lower:
            self._lower[key] = [rule.text.lower() for rule in chain.rules]
        return self._lower[key]

    def _jumps_of(self, table: Table, chain: Chain) -> list[tuple[int, list[Chain]]]:
        key = id(chain)
        if key not in self._jumps:
            self._jumps[key] = [
                (i, targets)
                for i, rule in enumerate(chain.rules)
                if rule.exprs
                and isinstance(rule.exprs[-1], Verdict | VerdictMap)
                and (targets := jump_targets(table, rule))
            ]
        return self._jumps[key]

    def rows(self, table: Table, chain: Chain) -> frozenset[int]:
        """The rows of `chain` that stay: their text matches, or a chain they jump to has."""
        key = id(chain)
        if key not in self._rows:
            pattern = self.pattern
            found = {i for i, text in enumerate(self._texts(chain)) if pattern in text}
            for i, targets in self._jumps_of(table, chain):
                if i not in found and any(self.chain_has(table, t) for t in targets):
                    found.add(i)
            self._rows[key] = frozenset(found)
        return self._rows[key]

    def chain_has(self, table: Table, chain: Chain, visiting: frozenset[int] = frozenset()) -> bool:
        """Whether `chain`, or a chain it jumps to, has a rule containing the pattern."""
        key = id(chain)
        if key in self._chain_has:
            return self._chain_has[key]
        if key in visiting:
            return False
        pattern = self.pattern
        found = pattern in chain.name.lower() or any(pattern in t for t in self._texts(chain))
        if not found:
            inner = visiting | {key}
            found = any(
                self.chain_has(table, target, inner)
                for _, targets in self._jumps_of(table, chain)
                for target in targets
            )
        self._chain_has[key] = found
        return found

    def node_matches(self, node: Node) -> bool:
        """The row itself contains the pattern."""
        return self.pattern in self.chains_model().own_text(node)

    def filterAcceptsRow(self, source_row: int, source_parent: ModelIndex) -> bool:
        if not self.pattern:
            return True
        model = self._model
        parent = model.node(source_parent)
        if parent is not None and parent.kind != HOOK:
            chain = parent.container_chain()
            if parent.kind == RULE and chain is None:  # a verdict map's several targets
                targets = model._targets(parent)
                target = targets[source_row]
                return self.pattern in target.name.lower() or self.chain_has(parent.table, target)
            assert chain is not None
            if source_row < len(chain.rules):
                return source_row in self.rows(parent.table, chain)
            return self.pattern in f"policy {chain.policy}"
        node = model.node(model.index(source_row, 0, source_parent))
        if node is None:
            return False
        if self.node_matches(node):
            return True
        if node.kind == HOOK:
            return any(
                self.pattern in f"{e.table.family} {e.table.name}".lower()
                or self.pattern in display_owner(model.index_.owner(e)).lower()
                or self.chain_has(e.table, e.chain)
                for e in model.entries(node.hook)
            )
        assert node.chain is not None
        return self.chain_has(node.table, node.chain)

    def data(self, index: ModelIndex, role: int = Qt.ItemDataRole.DisplayRole) -> Any:
        if role == Qt.ItemDataRole.FontRole and self.pattern and index.column() == NAME:
            node = self.chains_model().node(self.mapToSource(index))
            if node is not None and self.node_matches(node):
                font = QFont()
                font.setBold(True)
                font.setUnderline(True)
                return font
        return super().data(index, role)


def visible_text(view: QTreeView, root: QModelIndex | None = None) -> str:
    """The rows the view shows (expanded ones with their children), as indented text."""
    model = view.model()
    lines: list[str] = []

    def row_line(index: QModelIndex, depth: int) -> str:
        cells = [
            str(model.data(index.siblingAtColumn(c), Qt.ItemDataRole.DisplayRole) or "")
            for c in range(model.columnCount(index.parent()))
        ]
        mark = model.data(index, PATH_ROLE)
        prefix = {"drop": "✖ ", "path": "▸ "}.get(str(mark), "  ")
        name, rest = cells[0], [c for c in cells[1:] if c]
        extra = f"   [{' · '.join(rest)}]" if rest else ""
        return f"{'  ' * depth}{prefix}{name}{extra}"

    def walk(parent: QModelIndex, depth: int) -> None:
        for row in range(model.rowCount(parent)):
            index = model.index(row, 0, parent)
            lines.append(row_line(index, depth))
            if view.isExpanded(index):
                walk(index, depth + 1)

    if root is not None and root.isValid():
        lines.append(row_line(root, 0))
        if view.isExpanded(root):
            walk(root, 1)
    else:
        walk(QModelIndex(), 0)
    return "\n".join(lines)


class ChainsDialog(QDialog):
    """The chains dialog: flow selector, search, the tree, copy as text."""

    def __init__(
        self,
        source: Ruleset | QObject,
        report: Report | None = None,
        parent: QWidget | None = None,
        *,
        iface: str | None = None,
        flow: str | None = None,
    ) -> None:
        """`source`: a ruleset (with its report), or the controller, whose latest ruleset
        and report the dialog follows."""
        started = time.perf_counter()
        super().__init__(parent)
        self.started = started
        self.first_paint_seconds: float | None = None
        self.controller: QObject | None = None
        if isinstance(source, Ruleset):
            ruleset = source
        else:
            self.controller = source
            ruleset = getattr(source, "ruleset", None) or Ruleset()
            report = getattr(source, "report", None)
            source.stateChanged.connect(self._controller_changed)  # type: ignore[attr-defined]
        self.setWindowTitle(self.tr("Firewall chains"))
        fit(self, 1000, 640)
        self.model = ChainsModel(ruleset, self)
        self.proxy = ChainsFilter(self)
        self.proxy.setSourceModel(self.model)
        self.choices = flow_choices(report)

        self.flow_box = QComboBox()
        self.flow_box.addItem(self.tr("No flow (IPv4 chains)"))
        for choice in self.choices:
            self.flow_box.addItem(state_icon(choice.result.verdict), choice.label)
        self.search = QLineEdit()
        self.search.setPlaceholderText(self.tr("Search rules, chains, owners…"))
        self.search.setClearButtonEnabled(True)
        self._search_timer = QTimer(self)
        self._search_timer.setSingleShot(True)
        self._search_timer.setInterval(200)
        self._search_timer.timeout.connect(self._apply_search)
        self.search.textChanged.connect(self._search_timer.start)

        self.view = QTreeView()
        self.view.setModel(self.proxy)
        self.view.setUniformRowHeights(True)
        self.view.setAlternatingRowColors(False)
        self.view.setSelectionMode(QAbstractItemView.SelectionMode.ExtendedSelection)
        header = self.view.header()
        header.setStretchLastSection(False)
        header.setSectionResizeMode(NAME, QHeaderView.ResizeMode.Stretch)
        for column, width in ((OWNER, 130), (PRIORITY, 80), (POLICY, 80), (FLOW, 170)):
            header.setSectionResizeMode(column, QHeaderView.ResizeMode.Interactive)
            header.resizeSection(column, width)
        self.view.viewport().installEventFilter(self)

        self.summary = QLabel()
        self.summary.setWordWrap(True)
        self.summary.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)

        copy = QPushButton(self.tr("Copy as text"))
        copy.clicked.connect(self.copy_text)
        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Close)
        buttons.rejected.connect(self.reject)
        buttons.addButton(copy, QDialogButtonBox.ButtonRole.ActionRole)

        top = QHBoxLayout()
        top.addWidget(QLabel(self.tr("Flow:")))
        top.addWidget(self.flow_box, 1)
        top.addWidget(self.search, 1)
        layout = QVBoxLayout(self)
        layout.addLayout(top)
        layout.addWidget(self.summary)
        layout.addWidget(self.view, 1)
        layout.addWidget(buttons)

        self.flow_box.currentIndexChanged.connect(self._flow_chosen)
        self.flow_box.setCurrentIndex(self._default_choice(iface, flow))
        if self.flow_box.currentIndex() == 0:
            self._flow_chosen(0)

    def showEvent(self, event: QShowEvent) -> None:
        super().showEvent(event)
        self._want_details(True)

    def hideEvent(self, event: QHideEvent) -> None:
        self._want_details(False)
        super().hideEvent(event)

    def _want_details(self, wanted: bool) -> None:
        """The controller reads the whole snapshot only while a chains dialog is shown."""
        want = getattr(self.controller, "want_details", None)
        if want is not None:
            want(self, wanted)

    def set_ruleset(self, ruleset: Ruleset, report: Report | None) -> None:
        """Show another ruleset (the firewall changed), keeping the chosen flow and search."""
        current = self.choice
        old, self.model = self.model, ChainsModel(ruleset, self)
        self.proxy.setSourceModel(self.model)
        old.deleteLater()
        self.choices = flow_choices(report)
        self.flow_box.blockSignals(True)
        self.flow_box.clear()
        self.flow_box.addItem(self.tr("No flow (IPv4 chains)"))
        for choice in self.choices:
            self.flow_box.addItem(state_icon(choice.result.verdict), choice.label)
        position = self._default_choice(
            current.iface if current else None, current.name if current else None
        )
        self.flow_box.setCurrentIndex(position)
        self.flow_box.blockSignals(False)
        self._flow_chosen(position)
        if self.proxy.pattern:
            self._apply_search()

    def _controller_changed(self, _state: object) -> None:
        ruleset = getattr(self.controller, "ruleset", None)
        if ruleset is not None and ruleset is not self.model.ruleset:
            self.set_ruleset(ruleset, getattr(self.controller, "report", None))

    def _default_choice(self, iface: str | None, flow: str | None) -> int:
        """The flow asked for, else the first blocked one, else the first outbound."""
        for position, choice in enumerate(self.choices, 1):
            if (iface in (None, choice.iface)) and flow == choice.name:
                return position
        for position, choice in enumerate(self.choices, 1):
            if iface in (None, choice.iface) and choice.result.verdict == "drop":
                return position
        for position, choice in enumerate(self.choices, 1):
            if iface in (None, choice.iface) and choice.name == "outbound":
                return position
        return 0

    @property
    def choice(self) -> FlowChoice | None:
        position = self.flow_box.currentIndex()
        return self.choices[position - 1] if position > 0 else None

    def select_flow(self, iface: str, name: str) -> None:
        for position, choice in enumerate(self.choices, 1):
            if (choice.iface, choice.name) == (iface, name):
                self.flow_box.setCurrentIndex(position)
                return

    def _flow_chosen(self, position: int) -> None:
        choice = self.choice
        self.model.set_flow(choice.result if choice else None)
        self.summary.setText(self._summary_text(choice))
        self.show_path()

    def _summary_text(self, choice: FlowChoice | None) -> str:
        if choice is None:
            return self.tr("Every base chain on every hook, by priority. Pick a flow to see "
                           "the path its packet takes.")  # fmt: skip
        result = choice.result
        from hotspotguard import wording
        from hotspotguard.ui.texts import qt_tr

        text = wording.flow_description(result.flow.name, dict(result.flow.params), qt_tr)
        if result.verdict == "drop" and result.dropped_by is not None:
            drop = result.dropped_by
            where = " ".join(p for p in (drop.family, drop.table, drop.chain) if p)
            return self.tr("{flow}: dropped by {owner} — {where}: {rule}").format(
                flow=text, owner=display_owner(drop.owner), where=where, rule=drop.rule
            )
        if result.verdict == "unknown":
            why = wording.reason_sentence(wording.reason_fields(result.reason), qt_tr)
            return self.tr("{flow}: cannot be decided ({reason})").format(flow=text, reason=why)
        return self.tr("{flow}: gets through").format(flow=text)

    def show_path(self) -> None:
        """Expand every hook, then the selected flow's path; select the dropping rule."""
        for row in range(self.proxy.rowCount()):
            self.view.expand(self.proxy.index(row, 0))
        expand, drop = self.model.path_indexes()
        for index in expand:
            self.view.expand(self.proxy.mapFromSource(index))
        if drop.isValid():
            target = self.proxy.mapFromSource(drop)
            self.view.selectionModel().setCurrentIndex(
                target, QItemSelectionModel.SelectionFlag.NoUpdate
            )
            self.view.scrollTo(target, QAbstractItemView.ScrollHint.PositionAtCenter)

    def _apply_search(self) -> None:
        self.proxy.set_pattern(self.search.text())
        if self.proxy.pattern:
            for row in range(self.proxy.rowCount()):
                hook = self.proxy.index(row, 0)
                self.view.expand(hook)
                for base_row in range(self.proxy.rowCount(hook)):
                    self.view.expand(self.proxy.index(base_row, 0, hook))
        else:
            self.show_path()

    def text(self) -> str:
        """What "Copy as text" copies: the selected rows with their expanded children, else
        everything shown."""
        rows = self.view.selectionModel().selectedRows(0) if self.view.selectionModel() else []
        if rows:
            return "\n".join(visible_text(self.view, row) for row in rows)
        header = self._summary_text(self.choice)
        return f"{header}\n{visible_text(self.view)}"

    def copy_text(self) -> None:
        QGuiApplication.clipboard().setText(self.text())

    def eventFilter(self, watched: QObject, event: QEvent) -> bool:
        if (
            self.first_paint_seconds is None
            and event.type() == QEvent.Type.Paint
            and watched is self.view.viewport()
        ):
            self.first_paint_seconds = time.perf_counter() - self.started
        return super().eventFilter(watched, event)
