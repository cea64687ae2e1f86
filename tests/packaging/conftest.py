"""What `make install` needs of the machine: root, and the system's python3 with pip, setuptools
and wheel (Debian: python3-pip python3-setuptools python3-wheel; `make test-packages` installs
them)."""

from __future__ import annotations

import functools
import os
import subprocess

import pytest

SYSTEM_PYTHON = "/usr/bin/python3"
PROBE = (
    "import importlib.util as u, sys; "
    "sys.exit(not all(map(u.find_spec, ['pip', 'setuptools', 'wheel'])))"
)


@functools.cache
def install_unavailable_reason() -> str | None:
    if os.geteuid() != 0:
        return "needs root (root-owned files)"
    probe = subprocess.run(
        [SYSTEM_PYTHON, "-c", PROBE], capture_output=True, check=False
    ) if os.path.exists(SYSTEM_PYTHON) else None  # fmt: skip
    if probe is None or probe.returncode != 0:
        return "the system's python3 lacks pip, setuptools or wheel (make test-packages)"
    return None


@pytest.fixture
def can_install() -> None:
    reason = install_unavailable_reason()
    if reason:
        pytest.skip(reason)
