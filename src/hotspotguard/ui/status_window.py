"""The status window: per hotspot the verdict in a sentence, its flows as chips, who blocks,
the fixes on offer with their trade-off, and what hotspotguard has applied.

It only shows what the controller publishes (``stateChanged``, ``fixesChanged``,
``previewReady``) and asks the controller to act; it decides nothing about the firewall.
"""

from __future__ import annotations

import json
from typing import Any

from PySide6.QtCore import QCoreApplication, Qt, Signal
from PySide6.QtGui import QIcon, QKeyEvent
from PySide6.QtWidgets import (
    QFrame,
    QGroupBox,
    QHBoxLayout,
    QLabel,
    QPushButton,
    QScrollArea,
    QVBoxLayout,
    QWidget,
)

from hotspotguard import wording
from hotspotguard.ruleset.owners import display_owner
from hotspotguard.ui import texts
from hotspotguard.ui.controller import Controller
from hotspotguard.ui.icons import state_colour, state_icon
from hotspotguard.ui.screen import fit
from hotspotguard.ui.tray import capitalized
from hotspotguard.verdict.flows import FLOW_ORDER

#: a flow verdict -> the chip's state
CHIP_STATES = {"accept": "ok", "drop": "blocked", "unknown": "unknown"}


def tr(text: str) -> str:
    return QCoreApplication.translate("StatusWindow", text)


def flow_label(name: str) -> str:
    """The chip's words: "DHCP", "DNS", "Internet", "Replies" (IPv6: "IPv6 DHCP", …)."""
    return wording.flow_name(name, texts.qt_tr)


def blocker_text(blocked_by: dict[str, Any]) -> str:
    """Who blocks: owner, table, chain and rule."""
    owner = display_owner(str(blocked_by.get("owner") or ""))
    where = " ".join(str(blocked_by[k]) for k in ("family", "table", "chain") if blocked_by.get(k))
    rule = blocked_by.get("rule") or ""
    if where:
        return tr("Blocked by {owner}: {where} — {rule}").format(
            owner=owner, where=where, rule=rule
        )
    return tr("Blocked by {owner}: {rule}").format(owner=owner, rule=rule)


def plain_sentence(hotspot: dict[str, Any]) -> str:
    """What a person needs first: "Docker's FORWARD policy drops the phones' traffic."."""
    from hotspotguard.ui.tray import StateText, fill

    state = hotspot.get("state")
    if state == "blocked":
        return fill(tr("%1."), capitalized(StateText().cause(hotspot)))
    if state == "ok":
        return tr("The phones can get an address, look up names and reach the internet.")
    return tr("Cannot tell whether the phones can reach the internet.")


class Chip(QLabel):
    """One flow as a coloured pill: ok (green), blocked (red), unknown (amber)."""

    def __init__(self, flow: str, result: dict[str, Any], parent: QWidget | None = None) -> None:
        self.flow = flow
        self.state = CHIP_STATES.get(str(result.get("verdict")), "unknown")
        word = wording.verdict_word(self.state, texts.qt_tr)
        super().__init__(
            tr("{flow}: {verdict}").format(flow=flow_label(flow), verdict=word), parent
        )
        self.setObjectName(f"chip-{flow}")
        self.setProperty("state", self.state)
        colour = state_colour(self.state)
        self.setStyleSheet(
            f"QLabel {{ background: {colour.lighter(175).name()};"
            f" color: {colour.darker(160).name()}; border: 1px solid {colour.name()};"
            " border-radius: 9px; padding: 1px 8px; }"
        )
        # what the flow is (the packet itself is in the chains dialog), and the engine's reason
        # when it could not decide (its own words: a detail)
        tip = capitalized(wording.flow_phrase(flow, texts.qt_tr))
        if result.get("reason"):
            tip += "\n" + wording.reason_sentence(result, texts.qt_tr)
        self.setToolTip(tip)


class HotspotCard(QGroupBox):
    """One hotspot: sentence, chips, who blocks, fixes on offer."""

    fixRequested = Signal(str, str)  # iface, strategy
    chainsRequested = Signal(str, str)  # iface, flow

    def __init__(self, hotspot: dict[str, Any], parent: QWidget | None = None) -> None:
        self.hotspot = hotspot
        self.iface = str(hotspot.get("iface"))
        connection = hotspot.get("connection") or {}
        title = self.iface
        if connection.get("id"):
            title = self.tr("{name} ({iface})").format(name=connection["id"], iface=self.iface)
        super().__init__(title, parent)
        self.setObjectName(f"hotspot-{self.iface}")
        layout = QVBoxLayout(self)

        head = QHBoxLayout()
        icon = QLabel()
        icon.setPixmap(state_icon(str(hotspot.get("state", "unknown"))).pixmap(22, 22))
        # one plain sentence; the engine's own words (chain, policy, flow) one hover away
        self.sentence = QLabel(plain_sentence(hotspot))
        self.sentence.setToolTip(texts.summary(hotspot))
        self.sentence.setObjectName("sentence")
        self.sentence.setWordWrap(True)
        self.sentence.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        head.addWidget(icon)
        head.addWidget(self.sentence, 1)
        layout.addLayout(head)

        flows: dict[str, Any] = hotspot.get("flows") or {}
        self.chips: dict[str, Chip] = {}
        chip_row = QHBoxLayout()
        for name in FLOW_ORDER:
            if name in flows:
                chip = Chip(name, flows[name])
                self.chips[name] = chip
                chip_row.addWidget(chip)
        chip_row.addStretch(1)
        layout.addLayout(chip_row)

        self.blocker = QLabel()
        self.blocker.setObjectName("blocker")
        self.blocker.setWordWrap(True)
        self.blocker.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        blocked_by = hotspot.get("blocked_by")
        if blocked_by:
            self.blocker.setText(blocker_text(blocked_by))
        self.blocker.setVisible(bool(blocked_by))
        layout.addWidget(self.blocker)

        self.tradeoffs: dict[str, QLabel] = {}
        self.fix_buttons: dict[str, QPushButton] = {}
        self.unavailable: set[str] = set()  # strategies the helper cannot plan here
        # each remedy as the planner found it here: available, or the reason it is not
        offered = hotspot.get("remedies") or [{"strategy": f} for f in hotspot.get("fixes") or ()]
        if offered:
            layout.addWidget(QLabel(self.tr("Fixes on offer:")))
        for remedy in offered:
            strategy = str(remedy.get("strategy"))
            row = QHBoxLayout()
            words = QVBoxLayout()
            what = wording.strategy_description(strategy, texts.qt_tr)
            heading = QLabel(f"<b>{strategy}</b> — {what}")
            heading.setWordWrap(True)  # a long one must not push the Fix button out of view
            tradeoff = QLabel(self.tr("Trade-off: looking…"))
            tradeoff.setObjectName(f"tradeoff-{strategy}")
            tradeoff.setWordWrap(True)
            words.addWidget(heading)
            words.addWidget(tradeoff)
            button = QPushButton(self.tr("Fix…"))
            button.setObjectName(f"fix-{strategy}")
            button.clicked.connect(
                lambda _=False, s=strategy: self.fixRequested.emit(self.iface, s)
            )
            row.addLayout(words, 1)
            row.addWidget(button)
            layout.addLayout(row)
            self.tradeoffs[strategy] = tradeoff
            self.fix_buttons[strategy] = button
            if remedy.get("available") is False:
                said = QCoreApplication.translate("StatusWindow", "Not available: {why}")
                why = said.format(why=wording.reason_sentence(remedy, texts.qt_tr))
                self.set_tradeoff(strategy, why, available=False)

        chains = QPushButton(self.tr("Firewall chains…"))
        chains.setObjectName("chains")
        flow = str(hotspot.get("blocked_flow") or "outbound")
        chains.clicked.connect(lambda: self.chainsRequested.emit(self.iface, flow))
        footer = QHBoxLayout()
        footer.addStretch(1)
        footer.addWidget(chains)
        layout.addLayout(footer)

    def set_tradeoff(self, strategy: str, text: str, available: bool = True) -> None:
        """The trade-off line of `strategy`; an unavailable one gets no Fix button to press."""
        label = self.tradeoffs.get(strategy)
        if label is not None:
            label.setText(text)
            label.setEnabled(available)  # an unavailable one reads greyed out
        (self.unavailable.discard if available else self.unavailable.add)(strategy)
        button = self.fix_buttons.get(strategy)
        if button is not None:
            button.setEnabled(available)


class SharedCard(QGroupBox):
    """A hotspot known from NetworkManager only (its firewall could not be read)."""

    def __init__(self, hotspot: dict[str, Any], parent: QWidget | None = None) -> None:
        self.iface = str(hotspot.get("iface"))
        name = (hotspot.get("connection") or {}).get("id")
        title = self.tr("{name} ({iface})").format(name=name, iface=self.iface) if name else ""
        super().__init__(title or self.iface, parent)
        self.setObjectName(f"shared-{self.iface}")
        label = QLabel(
            self.tr(
                "Shared by NetworkManager. Whether the phones can reach the internet cannot be"
                " checked right now."
            )
        )
        label.setWordWrap(True)
        QVBoxLayout(self).addWidget(label)


class StatusWindow(QWidget):
    """The applet's window: one card per hotspot and the applied fixes."""

    def __init__(self, controller: Controller, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.controller = controller
        self.setWindowTitle(self.tr("Hotspot firewall"))
        fit(self, 640, 480)
        self.cards: dict[str, HotspotCard] = {}
        self.shared: dict[str, SharedCard] = {}
        self._previewed: dict[tuple[str, str], str] = {}  # (iface, strategy) -> state key
        #: (iface, strategy) -> (state key, trade-off line, available): a card rebuilt for
        #: the same cause shows what was already looked up
        self._tradeoff_lines: dict[tuple[str, str], tuple[str, str, bool]] = {}
        self._dialogs: list[QWidget] = []

        self.headline = QLabel(self.tr("Looking at the firewall…"))
        self.headline.setObjectName("headline")
        self.headline.setWordWrap(True)
        self.head_icon = QLabel()
        self.error = QLabel()
        self.error.setObjectName("error")
        self.error.setWordWrap(True)
        self.error.setStyleSheet("color: #b00020;")
        self.error.hide()
        self.next_step = QLabel()
        self.next_step.setObjectName("next-step")
        self.next_step.setWordWrap(True)
        self.next_step.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.next_step.hide()
        self.busy_label = QLabel(self.tr("Working…"))
        self.busy_label.hide()

        self.cards_box = QVBoxLayout()
        self.fixes_box = QVBoxLayout()
        self.fixes_group = QGroupBox(self.tr("Applied by hotspotguard"))
        self.fixes_group.setLayout(self.fixes_box)
        self.fixes_group.hide()

        body = QWidget()
        body_layout = QVBoxLayout(body)
        body_layout.addLayout(self.cards_box)
        body_layout.addWidget(self.fixes_group)
        body_layout.addStretch(1)
        scroll = QScrollArea()
        scroll.setWidgetResizable(True)
        scroll.setFrameShape(QFrame.Shape.NoFrame)
        # the text wraps: the cards follow the window's width, never wider
        scroll.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        scroll.setWidget(body)
        scroll.setFocusPolicy(Qt.FocusPolicy.NoFocus)  # Tab goes from button to button

        # a plain button (a QDialogButtonBox's would keep its place first in the Tab order)
        self.close_button = QPushButton(
            QIcon.fromTheme("window-close"), QCoreApplication.translate("QPlatformTheme", "Close")
        )
        self.close_button.setObjectName("close")
        self.close_button.clicked.connect(self.close)
        self.buttons_row = buttons = QHBoxLayout()
        buttons.addStretch(1)
        buttons.addWidget(self.close_button)

        head = QHBoxLayout()
        head.addWidget(self.head_icon)
        head.addWidget(self.headline, 1)
        head.addWidget(self.busy_label)
        layout = QVBoxLayout(self)
        layout.addLayout(head)
        layout.addWidget(self.next_step)
        layout.addWidget(self.error)
        layout.addWidget(scroll, 1)
        layout.addLayout(buttons)

        controller.stateChanged.connect(self.show_state)
        controller.fixesChanged.connect(self.show_fixes)
        controller.previewReady.connect(self.show_preview)
        controller.busy.connect(self.set_busy)
        controller.failed.connect(self.show_error)
        if controller.state is not None:
            self.show_state(controller.state)
        if controller.fixes:
            self.show_fixes(controller.fixes)

    def keyPressEvent(self, event: QKeyEvent) -> None:
        """Escape closes the window, as it does a dialog."""
        if event.key() == Qt.Key.Key_Escape:
            self.close()
        else:
            super().keyPressEvent(event)

    # -- state --
    def show_state(self, state: dict[str, Any]) -> None:
        kind = str(state.get("state"))
        self.head_icon.setPixmap(state_icon(kind).pixmap(32, 32))
        self.setWindowIcon(state_icon(kind))  # the task bar says the state too, not "ok"
        self.headline.setText(self.headline_text(state))
        for card in [*self.cards.values(), *self.shared.values()]:
            self.cards_box.removeWidget(card)
            card.deleteLater()
        self.cards = {}
        self.shared = {}
        self._show_next_step(kind)
        for hotspot in state.get("hotspots") or ():
            if "flows" not in hotspot:  # known from NetworkManager only
                shared = SharedCard(hotspot, self)
                self.shared[shared.iface] = shared
                self.cards_box.addWidget(shared)
                continue
            card = HotspotCard(hotspot, self)
            card.fixRequested.connect(self.open_fix_dialog)
            card.chainsRequested.connect(self.open_chains)
            self.cards[card.iface] = card
            self.cards_box.addWidget(card)
            self._look_up_tradeoffs(card)
        self._tab_order()

    def _tab_order(self) -> None:
        """Tab in reading order: the cards' buttons, the Undo buttons, then Close (new
        widgets join the focus chain at its end: Close joins again after them)."""
        self.buttons_row.removeWidget(self.close_button)
        self.close_button.setParent(None)
        self.buttons_row.addWidget(self.close_button)
        self.close_button.show()

    def _show_next_step(self, kind: str) -> None:
        """What to do when the helper is missing: the real command, to copy."""
        from hotspotguard.ui.controller import helper_install_command

        missing = kind == "error" and bool(getattr(self.controller, "helper_missing", False))
        if missing:
            self.next_step.setText(
                self.tr("To check it, install that part once (as an administrator):")
                + f"<br><code>{helper_install_command()}</code>"
            )
        self.next_step.setVisible(missing)

    def headline_text(self, state: dict[str, Any]) -> str:
        kind = state.get("state")
        reason = state.get("reason") or ""
        if kind == "no-hotspot":
            return self.tr("No hotspot is active.")
        if kind == "ok":
            return self.tr("Every hotspot works: clients get an address, names and the internet.")
        if kind == "error":
            return self.tr("Cannot check the hotspot: {reason}").format(reason=reason)
        if kind == "unknown":
            return self.tr("Cannot tell whether the hotspot works.")
        return self.tr("A hotspot is blocked.")

    def _look_up_tradeoffs(self, card: HotspotCard) -> None:
        """Ask the helper (quietly) for each offered fix's plan, once per blocking cause."""
        key = json.dumps(card.hotspot.get("blocked_by"), sort_keys=True)
        for strategy in card.tradeoffs:
            if strategy in card.unavailable:  # the planner said why already
                continue
            error = self.controller.preview_errors.get((card.iface, strategy))
            if self._previewed.get((card.iface, strategy)) == key:
                known = self._tradeoff_lines.get((card.iface, strategy))
                if error:
                    why = self.tr("Not available: {why}").format(why=error)
                    card.set_tradeoff(strategy, why, available=False)
                    continue
                if known is not None and known[0] == key:
                    card.set_tradeoff(strategy, known[1], known[2])
                    continue
            self._previewed[(card.iface, strategy)] = key
            self.controller.spawn(self._tradeoff(card.iface, strategy))

    async def _tradeoff(self, iface: str, strategy: str) -> None:
        result = await self.controller.preview_fix(iface, strategy, quiet=True)
        card = self.cards.get(iface)
        if result is None and card is not None:
            why = self.controller.preview_errors.get((iface, strategy), "")
            text = self.tr("Not available: {why}").format(why=why)
            card.set_tradeoff(strategy, text, available=False)

    def show_preview(self, preview: dict[str, Any]) -> None:
        plan = preview.get("plan") or {}
        card = self.cards.get(str(plan.get("iface")))
        if card is not None:
            strategy = str(plan.get("strategy"))
            said = wording.strategy_tradeoff(strategy, texts.qt_tr) or plan.get("tradeoff", "")
            text = self.tr("Trade-off: {text}").format(text=said)
            if preview.get("applied"):
                text += " " + self.tr("(applied)")
            card.set_tradeoff(strategy, text)
            key = json.dumps(card.hotspot.get("blocked_by"), sort_keys=True)
            self._tradeoff_lines[(card.iface, strategy)] = (key, text, True)

    # -- applied fixes --
    def show_fixes(self, fixes: list[dict[str, Any]]) -> None:
        while self.fixes_box.count():
            item = self.fixes_box.takeAt(0)
            widget = item.widget() if item is not None else None
            if widget is not None:
                widget.deleteLater()
        for record in fixes:
            self.fixes_box.addWidget(self._fix_row(record))
        self.fixes_group.setVisible(bool(fixes))
        self._tab_order()

    def _fix_row(self, record: dict[str, Any]) -> QWidget:
        row = QWidget()
        row.setObjectName(f"applied-{record.get('id')}")
        row.setToolTip(str(record.get("id")))  # the internal id is a detail
        layout = QHBoxLayout(row)
        layout.setContentsMargins(0, 0, 0, 0)
        keep = self.tr("kept after reboot") if record.get("permanent") else self.tr("until reboot")
        # worded from the fix's strategy and interface (the record's summary is the CLI's)
        said = wording.plan_summary(record, texts.qt_tr) if record.get("strategy") else ""
        text = self.tr("{summary} ({keep})").format(
            summary=said or record.get("summary", ""), keep=keep
        )
        if not record.get("in_place", True):
            text += "<br><span style='color:#b00020'>" + self.tr(
                "Not in place any more: apply it again."
            ) + "</span>"  # fmt: skip
        label = QLabel(text)
        label.setWordWrap(True)
        undo = QPushButton(self.tr("Undo"))
        undo.setObjectName("undo")
        fix_id = str(record.get("id"))
        undo.clicked.connect(lambda: self.controller.undo(fix_id))
        layout.addWidget(label, 1)
        layout.addWidget(undo)
        return row

    # -- feedback --
    def set_busy(self, busy: bool) -> None:
        self.busy_label.setVisible(busy)
        for button in self.findChildren(QPushButton):
            button.setEnabled(not busy)
        for card in self.cards.values():
            for strategy in card.unavailable:
                card.fix_buttons[strategy].setEnabled(False)
        if busy:
            self.error.hide()

    def show_error(self, message: str) -> None:
        self.error.setText(message)
        self.error.show()

    # -- dialogs --
    def open_fix_dialog(self, iface: str, strategy: str) -> None:
        from hotspotguard.ui.fix_dialog import FixDialog

        dialog = FixDialog(self.controller, iface, strategy, self)
        self._keep(dialog)
        dialog.open()

    def open_chains(self, iface: str, flow: str) -> None:
        from hotspotguard.ui.chains import ChainsDialog

        # it follows the controller, which reads the ruleset while the dialog is shown
        dialog = ChainsDialog(self.controller, None, self, iface=iface, flow=flow)
        self._keep(dialog)
        dialog.show()

    def _keep(self, dialog: QWidget) -> None:
        dialog.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)
        self._dialogs.append(dialog)
        dialog.destroyed.connect(lambda *_: self._dialogs.remove(dialog))
