"""Files shipped beside the code (desktop/, resources/): found in the source tree this package
runs from, else where a package installed them."""

from __future__ import annotations

import os
import sys
from pathlib import Path


def source_file(*parts: str) -> Path | None:
    """A shipped file (``desktop/…``, ``resources/…``): from the source tree this package runs
    from, else from ``$HOTSPOTGUARD_DATA``, ``<prefix>/share/hotspotguard`` or
    ``/usr/share/hotspotguard``."""
    here = Path(__file__).resolve()
    roots = [p for p in here.parents if (p / "pyproject.toml").is_file()]
    if os.environ.get("HOTSPOTGUARD_DATA"):
        roots.insert(0, Path(os.environ["HOTSPOTGUARD_DATA"]))
    # <prefix>/lib/python3…/…-packages/hotspotguard → <prefix>/share/hotspotguard (make install)
    roots += [p.parent / "share" / "hotspotguard" for p in here.parents if p.name == "lib"]
    roots += [Path(sys.prefix) / "share" / "hotspotguard"]
    # a venv under /opt (make install VENV=1) with its data in /usr/local/share
    roots += [Path("/usr/local/share/hotspotguard"), Path("/usr/share/hotspotguard")]
    for root in roots:
        candidate = root.joinpath(*parts)
        if candidate.exists():
            return candidate
    return None
