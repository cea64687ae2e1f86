"""``status --iface X`` for an interface that is not there: a usage error (exit 2) that says
so, not "no hotspot" with exit 0 (issue 11, finding 10, in part)."""

from __future__ import annotations

import pytest

from hotspotguard.cli import main


def test_status_for_a_missing_interface_says_so(capsys: pytest.CaptureFixture[str]) -> None:
    code = main(["status", "--iface", "hsgnosuch0"])
    out, err = capsys.readouterr()
    assert code == 2, (out, err)
    assert "there is no interface named hsgnosuch0" in err
    assert "Traceback" not in err and out == ""
