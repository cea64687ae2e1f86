"""The fix dialog: choose a strategy, read the plan in full, apply it through the controller
(the desktop's polkit agent asks for the password), then see the re-checked verdict."""

from __future__ import annotations

from typing import Any

from PySide6.QtCore import Qt
from PySide6.QtGui import QFontDatabase
from PySide6.QtWidgets import (
    QCheckBox,
    QComboBox,
    QDialog,
    QDialogButtonBox,
    QFormLayout,
    QLabel,
    QPlainTextEdit,
    QProgressBar,
    QPushButton,
    QVBoxLayout,
    QWidget,
)

from hotspotguard import wording
from hotspotguard.ui import texts
from hotspotguard.ui.controller import Controller
from hotspotguard.ui.screen import fit


class FixDialog(QDialog):
    """Preview → apply → re-checked verdict, for one hotspot."""

    def __init__(
        self,
        controller: Controller,
        iface: str,
        strategy: str = "",
        parent: QWidget | None = None,
    ) -> None:
        super().__init__(parent)
        self.controller = controller
        self.iface = iface
        self.preview: dict[str, Any] | None = None
        self.applied: dict[str, Any] | None = None
        self._acting = False
        self.busy = False
        self.setWindowTitle(self.tr("Fix the hotspot {iface}").format(iface=iface))
        fit(self, 720, 520)

        hotspot = controller.hotspot(iface) or {}
        offered = [str(s) for s in hotspot.get("fixes") or ()]
        if strategy and strategy not in offered:
            offered.insert(0, strategy)
        self.strategy_box = QComboBox()
        self.strategy_box.addItem(self.tr("Recommended"), "")
        for name in offered:
            what = wording.strategy_description(name, texts.qt_tr)
            self.strategy_box.addItem(f"{name} — {what}", name)
        if strategy:
            self.strategy_box.setCurrentIndex(self.strategy_box.findData(strategy))

        self.summary = QLabel()
        self.summary.setObjectName("summary")
        self.summary.setWordWrap(True)
        self.plan = QPlainTextEdit()
        self.plan.setObjectName("plan")
        self.plan.setReadOnly(True)
        # a command is one line: wrapping broke options apart ("--" / "comment", "docker-" /
        # "user"); it scrolls sideways instead and copies as it runs
        self.plan.setLineWrapMode(QPlainTextEdit.LineWrapMode.NoWrap)
        self.plan.setFont(QFontDatabase.systemFont(QFontDatabase.SystemFont.FixedFont))
        self.tradeoff = QLabel()
        self.tradeoff.setObjectName("tradeoff")
        self.tradeoff.setWordWrap(True)
        self.before_after = QLabel()
        self.before_after.setWordWrap(True)
        self.permanent = QCheckBox(self.tr("Keep after reboot"))
        self.permanent.setToolTip(
            self.tr(
                "Re-apply the fix when Docker or NetworkManager start (installs a small "
                "drop-in and a dispatcher script)."
            )
        )
        self.progress = QProgressBar()
        self.progress.setRange(0, 0)  # a busy indicator
        self.progress.setTextVisible(False)
        self.progress.hide()
        self.outcome = QLabel()
        self.outcome.setObjectName("outcome")
        self.outcome.setWordWrap(True)
        self.outcome.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.error = QLabel()
        self.error.setObjectName("error")
        self.error.setWordWrap(True)
        self.error.setStyleSheet("color: #b00020;")
        self.error.hide()

        self.buttons = QDialogButtonBox()
        self.apply_button = QPushButton(self.tr("Apply fix"))
        self.apply_button.setObjectName("apply")
        self.apply_button.setEnabled(False)
        self.buttons.addButton(self.apply_button, QDialogButtonBox.ButtonRole.AcceptRole)
        self.close_button = self.buttons.addButton(QDialogButtonBox.StandardButton.Close)
        self.apply_button.clicked.connect(self.apply)
        self.buttons.rejected.connect(self.reject)

        form = QFormLayout()
        form.addRow(self.tr("Strategy:"), self.strategy_box)
        layout = QVBoxLayout(self)
        layout.addLayout(form)
        layout.addWidget(self.summary)
        layout.addWidget(self.plan, 1)
        layout.addWidget(self.tradeoff)
        layout.addWidget(self.before_after)
        layout.addWidget(self.permanent)
        layout.addWidget(self.progress)
        layout.addWidget(self.error)
        layout.addWidget(self.outcome)
        layout.addWidget(self.buttons)

        controller.busy.connect(self.set_busy)
        controller.failed.connect(self.show_error)
        controller.stateChanged.connect(self.show_rechecked)
        self.strategy_box.currentIndexChanged.connect(lambda _: self.load_preview())
        self.load_preview()

    @property
    def strategy(self) -> str:
        return str(self.strategy_box.currentData() or "")

    # -- the plan --
    def load_preview(self) -> None:
        self.preview = None
        self.apply_button.setEnabled(False)
        self.summary.setText(self.tr("Planning…"))
        self.plan.clear()
        self.tradeoff.clear()
        self.before_after.clear()
        self.controller.spawn(self._load_preview(self.strategy))

    async def _load_preview(self, strategy: str) -> None:
        self._acting = True
        try:
            preview = await self.controller.preview_fix(self.iface, strategy)
        finally:
            self._acting = False
        if strategy != self.strategy:
            return  # the user chose another strategy meanwhile
        if preview is None:
            self.summary.setText(self.tr("No plan."))
            return
        self.show_plan(preview)

    def show_plan(self, preview: dict[str, Any]) -> None:
        self.preview = preview
        plan = preview.get("plan") or {}
        self.summary.setText(wording.plan_summary(plan, texts.qt_tr))
        self.plan.setPlainText("\n".join(str(line) for line in plan.get("preview") or ()))
        strategy = str(plan.get("strategy") or "")
        said = wording.strategy_tradeoff(strategy, texts.qt_tr) or plan.get("tradeoff", "")
        self.tradeoff.setText(self.tr("Trade-off: {text}").format(text=said))
        before = texts.summary(preview.get("before") or {})
        after = texts.summary(preview.get("after") or {})
        self.before_after.setText(
            self.tr("Now: {before}\nAfterwards: {after}").format(before=before, after=after)
        )
        if preview.get("applied"):
            self.outcome.setText(self.tr("Already applied: applying it again changes nothing."))
        self.apply_button.setEnabled(not self.busy and self.applied is None)

    # -- applying --
    def apply(self) -> None:
        if self.preview is None:
            return
        plan = self.preview.get("plan") or {}
        strategy = str(plan.get("strategy") or self.strategy)
        generation = str(self.preview.get("generation") or "")
        self.outcome.setText(self.tr("Applying… your desktop may ask for your password."))
        self.controller.spawn(self._apply(strategy, generation))

    async def _apply(self, strategy: str, generation: str) -> None:
        self._acting = True
        try:
            result = await self.controller.apply_fix(
                self.iface, strategy, self.permanent.isChecked(), generation
            )
        finally:
            self._acting = False
        if result is None:
            self.outcome.clear()
            return
        self.applied = result
        self.show_result(result)

    def show_result(self, result: dict[str, Any]) -> None:
        if result.get("changed"):
            text = self.tr("Applied {id}.").format(id=result.get("id"))
        else:
            text = self.tr("{id} was already in place: nothing changed.").format(
                id=result.get("id")
            )
        if result.get("permanent"):
            text += " " + self.tr("It is kept after reboot.")
        self.outcome.setText(text)
        self.show_rechecked(self.controller.state or {})
        self.apply_button.setEnabled(False)
        self.close_button.setFocus()

    def show_rechecked(self, state: dict[str, Any]) -> None:
        """After a fix: the verdict checked again on the live firewall."""
        if self.applied is None:
            return
        hotspot = next(
            (h for h in state.get("hotspots") or () if h.get("iface") == self.iface), None
        )
        if hotspot is None:
            return
        self.before_after.setText(
            self.tr("Checked again: {summary}").format(summary=texts.summary(hotspot))
        )

    # -- feedback --
    def set_busy(self, busy: bool) -> None:
        self.busy = busy
        self.progress.setVisible(busy)
        self.strategy_box.setEnabled(not busy)
        self.permanent.setEnabled(not busy)
        self.close_button.setEnabled(not busy)
        self.apply_button.setEnabled(not busy and self.preview is not None and self.applied is None)
        if busy:
            self.error.hide()

    def show_error(self, message: str) -> None:
        if not self._acting:
            return  # another window's action
        self.error.setText(message)
        self.error.show()
