"""The applet's translator for hotspotguard.wording: its sentences in the person's language,
read from the installed catalogue (context ``Wording``)."""

from __future__ import annotations

from typing import Any

from PySide6.QtCore import QCoreApplication

from hotspotguard import wording


def qt_tr(text: str) -> str:
    return QCoreApplication.translate(wording.CONTEXT, text)


def summary(verdict: dict[str, Any]) -> str:
    """A verdict's sentence (a hotspot's, or a plan's before/after) in the person's language;
    a verdict without its fields (an older helper's) keeps the words it came with."""
    if "iface" not in verdict:
        return str(verdict.get("summary") or "")
    return wording.verdict_summary(verdict, qt_tr)
