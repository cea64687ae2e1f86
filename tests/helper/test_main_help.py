"""``hotspotguard-helper --help`` reads as plain text (issue 11, finding 10)."""

from __future__ import annotations

from hotspotguard.helper.main import _parser


def test_help_has_no_rest_markup() -> None:
    text = _parser().format_help()
    assert "``" not in text
    assert "hotspotguard-helper: the privileged helper's command line (root only)." in text
