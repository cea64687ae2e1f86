"""The applet in Simplified Chinese, walked through every state and window (issue 11, finding
7): the status window (ok, blocked, unknown, error, no helper), the fix dialog (preview of
each strategy, apply, a failure, undo), the chains dialog (every flow), the notifications,
the tray's tooltip and menu. Every text a person can read is collected, and none may hold
English prose: the firewall's own names (tables, chains, rules, interfaces, fix ids), the
commands to copy and a system tool's own words (quoted, “…”) stay as they are."""

from __future__ import annotations

import asyncio
import re
from typing import Any

import pytest
from PySide6.QtCore import QModelIndex, QObject, Qt
from PySide6.QtWidgets import QTreeView, QWidget

from hotspotguard import wording
from hotspotguard.system.helper_client import HelperRefused, HelperUnavailable
from hotspotguard.ui.controller import Controller, FixedHotspots, HotspotInfo
from hotspotguard.ui.status_window import StatusWindow
from hotspotguard.usecases.operations import OperationError
from tests.helpers import SnapshotHotspots
from tests.ui.conftest import fixed_document, started_controller
from tests.ui.fakes import CONNECTION, HOTSPOT, EngineBackend
from tests.ui.test_wording_zh import chinese, forwarding_unread, shown_texts  # noqa: F401

#: two English words in a row, the second in lower case: prose ("cannot tell", "the phones"),
#: not a name ("Docker", "FORWARD", "docker-user@nmp-hs0")
PROSE = re.compile(r"\b[A-Za-z]{2,}(?:[ ,']+[a-z]{2,})+\b")
#: what stays as the firewall, the tools and the commands say it: quoted, or a token that is
#: code (a name with "-", "_", "@", "." or digits: docker-user@nmp-hs0, drop-in, 10.42.0.1)
QUOTED = re.compile(r"“[^”]*”|<code>.*?</code>|\"[^\"]*\"")
CODE_TOKEN = re.compile(r"[\w.@/:-]*[-_@.\d/:][\w.@/:-]*")
#: the firewall's words in this lab's states (rule text, chain policies and verdicts)
CODE_WORDS = (
    "policy drop",
    "policy accept",
    "ip filter",
    "ip6 filter",
    "ip nat",
    "ip nm-shared-nmp-hs0",
    "nm-shared-nmp-hs0",
    "make install",  # a command to type
)


def prose_in(texts: dict[str, str], literals: tuple[str, ...] = ()) -> dict[str, str]:
    found = {}
    for where, text in texts.items():
        text = QUOTED.sub("", text)
        for literal in sorted((*literals, *CODE_WORDS), key=len, reverse=True):
            text = re.sub(rf"(?<![\w-]){re.escape(literal)}(?![\w-])", "", text)
        text = CODE_TOKEN.sub("", text)
        if PROSE.search(text):
            found[where] = text
    return found


class Seen:
    """Every text shown, by where it was shown (later states add to it)."""

    def __init__(self) -> None:
        self.texts: dict[str, str] = {}
        self.literals: set[str] = set()

    def add(self, state: str, texts: dict[str, str]) -> None:
        for where, text in texts.items():
            if text:
                self.texts[f"{state}: {where}"] = text

    def firewall_words(self, hotspot: dict[str, Any] | None) -> None:
        """A blocked hotspot's culprit as the firewall names it (table, chain, rule)."""
        drop = (hotspot or {}).get("blocked_by") or {}
        self.literals |= {str(drop[k]) for k in ("family", "table", "chain", "rule") if drop.get(k)}

    def english(self) -> dict[str, str]:
        return prose_in(self.texts, tuple(self.literals))


def window_texts(root: QWidget) -> dict[str, str]:
    texts: dict[str, str] = {"window title": root.windowTitle()}
    for n, widget in enumerate([root, *root.findChildren(QWidget)]):
        # shown_texts names a widget by its class and name; unnamed ones are numbered here
        for where, text in shown_texts(widget, children=False).items():
            texts[f"{where} [{n}]"] = text
    for view in root.findChildren(QTreeView):  # the chains: headers and hook rows' words
        model = view.model()
        for column in range(model.columnCount()):
            header = model.headerData(column, Qt.Orientation.Horizontal)
            texts[f"tree header {column}"] = str(header or "")
        for row in range(model.rowCount()):
            for column in range(1, model.columnCount()):
                index = model.index(row, column, QModelIndex())
                texts[f"tree hook {row}.{column}"] = str(model.data(index) or "")
    return texts


@pytest.fixture
def seen() -> Seen:
    return Seen()


class Notes:
    """The notifications the applet sends (summary and body), without a notification server."""

    def __init__(self, controller: Controller) -> None:
        from hotspotguard.ui.notify import Notifier

        self.sent: list[tuple[str, str, str]] = []
        self.notifier = Notifier(controller)

        async def notify(summary: str, body: str, *, kind: str, **_: Any) -> int:
            self.sent.append((kind, summary, body))
            return len(self.sent)

        self.notifier.notify = notify  # type: ignore[method-assign]

    def texts(self) -> dict[str, str]:
        texts = {}
        for n, (kind, summary, body) in enumerate(self.sent):
            texts[f"notification {n} ({kind}) summary"] = summary
            texts[f"notification {n} ({kind}) body"] = body
        return texts


def tray_texts(controller: Controller) -> dict[str, str]:
    from hotspotguard.ui.tray import Tray

    tray = Tray(controller)
    tray.set_state(controller.state or {})
    texts = {"tray tooltip": tray.tooltip()}
    for n, action in enumerate(tray.menu.actions()):
        if not action.isSeparator():
            texts[f"tray menu {n}"] = action.text()
    tray.close()
    tray.deleteLater()
    return texts


def status_window(controller: Controller, qtbot: Any) -> StatusWindow:
    window = StatusWindow(controller)
    qtbot.addWidget(window)
    window.show()
    for card in window.cards.values():
        for label in card.tradeoffs.values():  # every trade-off looked up (or why not)
            qtbot.waitUntil(lambda label=label: "…" not in label.text(), timeout=10_000)
    return window


def tool_failure() -> wording.Reason:
    """iptables-restore's refusal as the use cases raise it (system/firewall.run)."""
    step = wording.reason_fields(
        wording.Reason("step-change-chain", family="ip", table="filter", chain="DOCKER-USER")
    )
    return wording.Reason(
        "tool-failed",
        tool="iptables-nft-restore",
        status=4,
        step=step,
        detail="iptables-nft-restore v1.8.9 (nf_tables): line 2 failed: Resource busy",
    )


def test_the_blocked_hotspot_fix_failure_apply_and_undo(
    chinese: None,  # noqa: F811
    qloop: asyncio.AbstractEventLoop,
    qtbot: Any,
    seen: Seen,
) -> None:
    from hotspotguard.ui.chains import ChainsDialog
    from hotspotguard.ui.fix_dialog import FixDialog

    backend = EngineBackend()
    with started_controller(backend, qtbot) as controller:
        notes = Notes(controller)
        controller.stateChanged.emit(controller.state)  # the first state, to the notifier
        qtbot.waitUntil(lambda: bool(notes.sent), timeout=5_000)
        hotspot = controller.hotspot(HOTSPOT)
        seen.firewall_words(hotspot)
        window = status_window(controller, qtbot)
        seen.add("blocked", window_texts(window))
        seen.add("blocked", tray_texts(controller))

        # the fix dialog: the recommended plan, then every strategy on offer
        dialog = FixDialog(controller, HOTSPOT)
        qtbot.addWidget(dialog)
        dialog.show()
        qtbot.waitUntil(lambda: dialog.preview is not None, timeout=10_000)
        seen.add("preview", window_texts(dialog))
        for i in range(1, dialog.strategy_box.count()):
            dialog.strategy_box.setCurrentIndex(i)
            qtbot.waitUntil(
                lambda: dialog.preview is not None or dialog.error.isVisible(), timeout=10_000
            )
            seen.add(f"preview {dialog.strategy}", window_texts(dialog))
        dialog.strategy_box.setCurrentIndex(dialog.strategy_box.findData("docker-user"))
        qtbot.waitUntil(lambda: dialog.preview is not None, timeout=10_000)

        # a system tool refuses, in-process (root) and through the helper (a user)
        for failure in (
            OperationError("Failed", tool_failure()),
            HelperRefused("Failed", str(tool_failure()), wording.reason_fields(tool_failure())),
        ):
            backend.fail["ApplyFix"] = failure
            dialog.apply_button.click()
            qtbot.waitUntil(dialog.error.isVisible, timeout=10_000)
            assert "iptables-nft-restore" in dialog.error.text()
            assert "“iptables-nft-restore v1.8.9" in dialog.error.text()  # its own words
            seen.add(f"apply failed ({type(failure).__name__})", window_texts(dialog))
            seen.add(f"apply failed ({type(failure).__name__})", window_texts(window))
        qtbot.waitUntil(lambda: any(kind == "failed" for kind, *_ in notes.sent), timeout=5_000)
        del backend.fail["ApplyFix"]

        dialog.apply_button.click()
        qtbot.waitUntil(lambda: dialog.applied is not None, timeout=10_000)
        qtbot.waitUntil(lambda: not controller._tasks, timeout=10_000)
        seen.add("applied", window_texts(dialog))
        seen.add("applied", window_texts(window))
        seen.add("applied", tray_texts(controller))

        # the chains dialog, every flow
        chains = ChainsDialog(controller, iface=HOTSPOT, flow="outbound")
        qtbot.addWidget(chains)
        chains.show()
        for i in range(chains.flow_box.count()):
            chains.flow_box.setCurrentIndex(i)
            seen.add(f"chains {i}", window_texts(chains))

        # undo: from the status window's list of applied fixes
        undo = [b for b in window.findChildren(QObject) if b.objectName() == "undo"]
        assert undo, "no applied fix to undo"
        undo[0].click()  # type: ignore[attr-defined]
        qtbot.waitUntil(lambda: not controller.fixes, timeout=10_000)
        qtbot.waitUntil(lambda: not controller._tasks, timeout=10_000)
        seen.add("undone", window_texts(window))
        backend.fail["UndoFix"] = OperationError(
            "NotFound", wording.Reason("fix-not-applied", fix=f"docker-user@{HOTSPOT}")
        )
        controller.undo(f"docker-user@{HOTSPOT}")
        qtbot.waitUntil(window.error.isVisible, timeout=10_000)
        seen.add("undo failed", window_texts(window))
        qtbot.waitUntil(lambda: not controller._tasks, timeout=10_000)
        seen.add("notifications", notes.texts())
        kinds = {kind for kind, *_ in notes.sent}
        assert {"blocked", "failed", "result"} <= kinds, notes.sent
    assert seen.english() == {}, "\n".join(f"{k}: {v}" for k, v in seen.english().items())


@pytest.mark.parametrize(
    ("name", "backend"),
    [
        ("ok", EngineBackend(fixed_document())),
        ("unknown", EngineBackend(forwarding_unread())),
    ],
)
def test_the_ok_and_unknown_states(
    chinese: None,  # noqa: F811
    qloop: asyncio.AbstractEventLoop,
    qtbot: Any,
    seen: Seen,
    name: str,
    backend: EngineBackend,
) -> None:
    from hotspotguard.ui.chains import ChainsDialog

    with started_controller(backend, qtbot) as controller:
        assert controller.state is not None and controller.state["state"] == name
        window = status_window(controller, qtbot)
        seen.add(name, window_texts(window))
        seen.add(name, tray_texts(controller))
        chains = ChainsDialog(controller, iface=HOTSPOT, flow="outbound")
        qtbot.addWidget(chains)
        seen.add(f"{name} chains", window_texts(chains))
    assert seen.english() == {}, "\n".join(f"{k}: {v}" for k, v in seen.english().items())


@pytest.mark.parametrize(
    ("name", "error"),
    [
        ("no helper", HelperUnavailable.not_installed("the name is not activatable")),
        (
            "no answer",
            HelperUnavailable.no_answer(
                "Did not receive a reply. Possible causes include: the remote application did "
                "not send a reply"
            ),
        ),
        (
            "no bus",
            HelperUnavailable.no_bus("[Errno 2] No such file or directory"),
        ),
        ("bus gone", HelperUnavailable.bus_gone()),
        ("firewall busy", OperationError("Failed", wording.Reason("firewall-busy"))),
        ("timeout", TimeoutError()),
    ],
)
def test_the_error_states(
    chinese: None,  # noqa: F811
    qloop: asyncio.AbstractEventLoop,
    qtbot: Any,
    seen: Seen,
    name: str,
    error: BaseException,
) -> None:
    backend = EngineBackend()
    backend.fail["GetSnapshot"] = error
    with started_controller(backend, qtbot) as controller:
        assert controller.state is not None and controller.state["state"] == "error"
        notes = Notes(controller)
        controller.stateChanged.emit(controller.state)
        qtbot.waitUntil(lambda: bool(notes.sent), timeout=5_000)
        window = status_window(controller, qtbot)
        seen.add(name, window_texts(window))
        seen.add(name, tray_texts(controller))
        seen.add(name, notes.texts())
    assert seen.english() == {}, "\n".join(f"{k}: {v}" for k, v in seen.english().items())


def test_the_allow_list_lets_no_prose_through() -> None:
    """The detector itself: code stays, a sentence does not."""
    assert prose_in({"a": "被拦截：Docker 的 filter FORWARD policy drop 阻止了 nmp-hs0"}) == {}
    assert prose_in({"a": "失败：“line 2 failed: Resource busy”"}) == {}
    assert prose_in({"a": "docker-user@nmp-hs0"}) == {}
    assert prose_in({"a": "无法检查：the firewall keeps changing"}) != {}
    assert prose_in({"a": "unknown error"}) != {}


def refusals() -> dict[str, wording.Reason]:
    """The use cases' refusals of a fix as they raise them (usecases/operations.py and
    firewalld_zone.py): a permanent fix whose helper is not root's, firewalld's zones, an
    uplink name the tools read as a pattern."""
    reason = wording.Reason
    untrusted = {
        problem: reason(problem, path="/home/user/hotspotguard/.venv/bin/python", detail=detail)
        for problem, detail in (
            ("untrusted-owner", ""),
            ("untrusted-writable", ""),
            ("untrusted-unreadable", "Permission denied"),
            ("untrusted-not-absolute", ""),
            ("untrusted-not-executable", ""),
            ("untrusted-does-not-run", "Fatal Python error: init_fs_encoding"),
        )
    }
    read_again = reason("firewall-busy")
    return {
        **{
            f"not keepable: {problem}": reason("fix-not-keepable", why=wording.reason_fields(why))
            for problem, why in untrusted.items()
        },
        "zone missing": reason("zone-missing", iface=HOTSPOT, zones=["nm-shared"]),
        "zone missing (undo)": reason(
            "zone-missing-undo", iface=HOTSPOT, zone="trusted", zones=["hotspot", "home"]
        ),
        "zone still blocks": reason(
            "zone-still-blocked",
            zone="trusted",
            iface=HOTSPOT,
            back="public",
            flow="outbound",
            chain="filter_FORWARD",
        ),
        "zone still blocks (no zone)": reason(
            "zone-still-blocked", zone="trusted", iface=HOTSPOT, back="", flow="dhcp", chain="x"
        ),
        "zone unverified": reason(
            "zone-unverified",
            zone="trusted",
            iface=HOTSPOT,
            back="public",
            why=wording.reason_fields(read_again),
        ),
        "sharing unknown": reason(
            "nm-sharing-unknown",
            detail="org.freedesktop.DBus.Error.AccessDenied: Rejected send message",
        ),
        "sharing: no answer": reason("nm-timeout"),
        **{
            f"uplink {name}": reason(
                code, role="uplink", name=name, tool=tool, char=name[-1:], stem=name[:-1]
            )
            for code, name, tool in (
                ("name-wildcard-all", "+", "iptables"),
                ("name-wildcard", "wwan+", "iptables"),
                ("name-wildcard", "wwan*", "nftables"),
                ("name-unwritable", "a'b", ""),
            )
        },
    }


def test_the_refusals_of_a_fix(
    chinese: None,  # noqa: F811
    qloop: asyncio.AbstractEventLoop,
    qtbot: Any,
    seen: Seen,
) -> None:
    """Each refusal, in-process (root) and through the helper (a user), in the fix dialog and
    the status window: Chinese, with its paths, zones and names as they are."""
    from hotspotguard.ui.fix_dialog import FixDialog

    backend = EngineBackend()
    with started_controller(backend, qtbot) as controller:
        seen.firewall_words(controller.hotspot(HOTSPOT))
        window = status_window(controller, qtbot)
        dialog = FixDialog(controller, HOTSPOT)
        qtbot.addWidget(dialog)
        dialog.show()
        qtbot.waitUntil(lambda: dialog.preview is not None, timeout=10_000)
        for name, refusal in refusals().items():
            assert "{" not in str(refusal), refusal  # every placeholder filled
            assert prose_in({"English": str(refusal)}), refusal  # which the walk would see
            for failure in (
                OperationError("NotApplicable", refusal),
                HelperRefused("NotApplicable", str(refusal), wording.reason_fields(refusal)),
            ):
                backend.fail["ApplyFix"] = failure
                dialog.error.hide()
                dialog.apply_button.click()
                qtbot.waitUntil(dialog.error.isVisible, timeout=10_000)
                qtbot.waitUntil(lambda: not controller._tasks, timeout=10_000)
                shown = dialog.error.text()
                params = {**refusal.params, **(refusal.params.get("why") or {}).get(
                    "reason_params", {})}  # fmt: skip
                for key in ("path", "name", "iface", "zone", "back", "chain"):  # as they are
                    assert str(params.get(key, "")) in shown, (name, key, shown)
                where = f"{name} ({type(failure).__name__})"
                seen.add(where, window_texts(dialog))
                seen.add(where, window_texts(window))
        del backend.fail["ApplyFix"]
    assert seen.english() == {}, "\n".join(f"{k}: {v}" for k, v in seen.english().items())


def machine_errors() -> dict[str, BaseException]:
    """What reading the machine raises (system/capture.py, incremental.py, watch.py)."""
    from hotspotguard.system.capture import NOT_ROOT, CaptureError, firewall_unread
    from hotspotguard.system.nftables import NftablesError

    unread = NftablesError("reading table ip filter: the kernel did not answer")
    return {
        "not root": CaptureError(NOT_ROOT),
        "firewall unread": CaptureError(firewall_unread(unread)),
        "no snapshot": CaptureError(wording.Reason("no-snapshot")),
        "a parser surprise": ValueError("unexpected expression in rule 3"),
    }


#: why NetworkManager's connections cannot be read (system/networkmanager.py's statuses)
FEED_STATUSES = {
    "nm not running": wording.Reason("nm-not-running"),
    "nm left": wording.Reason("nm-left"),
    "nm starting": wording.Reason("nm-starting"),
    "nm error": wording.Reason(
        "nm-error",
        error="org.freedesktop.NetworkManager.PermissionDenied",
        detail="Not authorized to read the settings",
    ),
    "bus unreachable": wording.Reason(
        "bus-unreachable", detail="[Errno 2] No such file or directory", seconds="2"
    ),
    "bus closed": wording.Reason("bus-closed"),
    "bus lost": wording.Reason("bus-lost", detail="Connection reset by peer"),
}


class _Feed(FixedHotspots):
    def __init__(self, status: str) -> None:
        super().__init__([HotspotInfo(HOTSPOT, CONNECTION)])
        self._status = status

    @property
    def status(self) -> str | None:
        return self._status


class _Assessor:
    """The in-process (root) model's part: the watcher's own assessment of the machine."""

    def __init__(self, error: BaseException) -> None:
        self.error = error

    async def assess(self, hotspots: Any) -> Any:
        from hotspotguard.watch import Assessment, assess

        def capture(ifaces: Any) -> dict[str, Any]:
            raise self.error

        return Assessment(assess(SnapshotHotspots(), capture))


class _StateBackend(EngineBackend):
    """A user's applet: the helper's ``GetState``, its state as it crosses the bus (JSON)."""

    def __init__(self, error: BaseException) -> None:
        super().__init__()
        self.error = error

    async def get_state(self, hotspots: Any) -> Any:
        import json

        from hotspotguard.watch import Assessment, state_from_helper

        state = await _Assessor(self.error).assess(hotspots)
        crossed = json.loads(json.dumps(state.state.to_json()))
        return Assessment(state_from_helper(crossed, hotspots))


def _error_cases() -> list[tuple[str, str, BaseException]]:
    cases = []
    for name, error in machine_errors().items():
        cases += [(f"{name} (root)", "assessor", error), (f"{name} (user)", "helper", error)]
    cases += [(name, "feed", LookupError(name)) for name in FEED_STATUSES]
    return cases


@pytest.mark.parametrize(("name", "route", "error"), _error_cases())
def test_the_machine_cannot_be_read(
    chinese: None,  # noqa: F811
    qloop: asyncio.AbstractEventLoop,
    qtbot: Any,
    seen: Seen,
    name: str,
    route: str,
    error: Any,
) -> None:
    """Why the hotspot cannot be checked — the firewall unread, not root, NetworkManager or
    the system bus away — in the status window, the tray and the notification, in Chinese:
    in-process (root: the watcher's model), through the helper (its state as JSON) and from
    NetworkManager's watch."""
    feed: Any = FixedHotspots([HotspotInfo(HOTSPOT, CONNECTION)])
    backend: Any = EngineBackend()
    if route == "assessor":
        backend.assessor = _Assessor(error)
    elif route == "helper":
        backend = _StateBackend(error)
    else:
        feed = _Feed(FEED_STATUSES[name])
    hub = Controller(backend, feed, settle=0.01)
    with qtbot.waitSignal(hub.stateChanged, timeout=10_000):
        hub.start()
    qtbot.waitUntil(lambda: not hub._tasks, timeout=10_000)
    try:
        assert hub.state is not None and hub.state["state"] == "error", hub.state
        assert hub.state.get("reason_code"), hub.state  # the reason kept its code
        window = status_window(hub, qtbot)
        seen.add(name, window_texts(window))
        seen.add(name, tray_texts(hub))
        # while a connection is shared, the notification says it cannot be checked, and why
        notes = Notes(hub)
        shared = {"iface": HOTSPOT, "state": "unknown", "connection": CONNECTION.to_json()}
        hub.stateChanged.emit({**hub.state, "hotspots": [shared]})
        qtbot.waitUntil(lambda: bool(notes.sent), timeout=5_000)
        seen.add(name, notes.texts())
        assert prose_in({"English": str(hub.state["reason"])}), hub.state  # the walk sees it
    finally:
        hub.stop()
        qtbot.waitUntil(lambda: not hub._tasks, timeout=5_000)
    assert seen.english() == {}, "\n".join(f"{k}: {v}" for k, v in seen.english().items())
