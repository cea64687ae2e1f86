"""The man page and completions come from the CLI's own parser."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from hotspotguard.cli import _parser
from hotspotguard.clidocs import describe, render


def test_every_command_and_option_is_documented() -> None:
    man, bash, zsh = render("man"), render("bash"), render("zsh")
    _top, commands = describe(_parser())
    assert {"status", "explain", "fix", "undo"} <= {c.name for c in commands}
    for command in commands:
        assert f".SS {command.name}" in man
        assert f"{command.name}:" in zsh and f"{command.name})" in bash
        for option in command.options:
            assert option.flags[-1].replace("-", "\\-") in man
            assert option.flags[-1] in bash


def test_the_man_page_formats_cleanly(tmp_path: Path) -> None:
    if shutil.which("groff") is None:
        pytest.skip("groff is not installed")
    page = tmp_path / "hotspotguard.1"
    page.write_text(render("man"))
    result = subprocess.run(
        ["groff", "-k", "-man", "-Tutf8", "-ww", "-z", str(page)], capture_output=True, text=True
    )
    assert result.returncode == 0 and result.stderr == ""


def test_bash_completes_commands_and_options(tmp_path: Path) -> None:
    script = tmp_path / "c.bash"
    script.write_text(render("bash"))
    probe = (
        f"source {script}; COMP_WORDS=(hotspotguard ex); COMP_CWORD=1; _hotspotguard; "
        'echo "${COMPREPLY[*]}"; COMP_WORDS=(hotspotguard explain --s); COMP_CWORD=2; '
        '_hotspotguard; echo "${COMPREPLY[*]}"'
    )
    out = subprocess.run(["bash", "-c", probe], capture_output=True, text=True, check=True)
    assert out.stdout.splitlines() == ["explain", "--snapshot"]


def test_zsh_script_parses(tmp_path: Path) -> None:
    if shutil.which("zsh") is None:
        pytest.skip("zsh is not installed")
    script = tmp_path / "_hotspotguard"
    script.write_text(render("zsh"))
    subprocess.run(["zsh", "-n", str(script)], check=True)


def test_generated_without_the_runtime_dependencies() -> None:
    """A distribution builds the man page and completions where only Python is installed."""
    code = (
        "import sys\n"
        "for name in ('dbus_next', 'PySide6', 'nftables', 'pyroute2', 'qasync'):\n"
        "    sys.modules[name] = None  # importing it fails\n"
        "from hotspotguard.clidocs import render\n"
        "assert all(render(kind) for kind in ('man', 'bash', 'zsh'))\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True)
