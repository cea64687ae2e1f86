"""Run a root command with /etc and /var/lib writable only in a throw-away overlay.

The helper's state (/var/lib/hotspotguard) and its permanent-fix files (/etc/systemd/...,
/etc/NetworkManager/dispatcher.d) then land in this sandbox's upper directories, never on the
machine, while the command runs with the real, fixed paths it uses in production."""

from __future__ import annotations

import shutil
import subprocess
import tempfile
from pathlib import Path

OVERLAID = ("/etc", "/var/lib")

_SCRIPT = """set -e
for dir in {dirs}; do
  name=$(echo "$dir" | tr / _)
  options="lowerdir=$dir,upperdir={root}/up$name,workdir={root}/work$name"
  mount -t overlay overlay -o "$options" "$dir"
done
exec "$@"
"""


class RootSandbox:
    def __init__(self) -> None:
        self.root = Path(tempfile.mkdtemp(prefix="hg-sandbox-"))
        for directory in OVERLAID:
            name = directory.replace("/", "_")
            (self.root / f"up{name}").mkdir()
            (self.root / f"work{name}").mkdir()

    def argv(self, command: list[str], netns: str | None = None) -> list[str]:
        """`command` in a private mount namespace with the overlays (and in `netns`)."""
        script = _SCRIPT.format(dirs=" ".join(OVERLAID), root=self.root)
        prefix = ["nsenter", f"--net=/run/netns/{netns}"] if netns else []
        return [
            *prefix,
            "unshare",
            "--mount",
            "--propagation",
            "private",
            "sh",
            "-c",
            script,
            "sh",
            *command,
        ]

    def run(
        self, command: list[str], netns: str | None = None, check: bool = True
    ) -> subprocess.CompletedProcess[str]:
        proc = subprocess.run(self.argv(command, netns), capture_output=True, text=True)
        if check and proc.returncode != 0:
            raise AssertionError(
                f"{' '.join(command)} failed ({proc.returncode}):\n{proc.stdout}\n{proc.stderr}"
            )
        return proc

    def written(self, path: str) -> Path:
        """Where `path` (under an overlaid directory) landed in the sandbox."""
        for directory in OVERLAID:
            if path.startswith(directory + "/"):
                name = directory.replace("/", "_")
                return self.root / f"up{name}" / path[len(directory) + 1 :]
        raise ValueError(f"{path} is not under {OVERLAID}")

    def close(self) -> None:
        shutil.rmtree(self.root, ignore_errors=True)
