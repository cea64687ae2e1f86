"""Print the .SRCINFO of a PKGBUILD (what `makepkg --printsrcinfo` prints, for a single package),
reading its variables through bash; `make srcinfo` writes packaging/arch/.SRCINFO with it."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

#: makepkg's order of the keys (arrays and scalars alike)
KEYS = (
    "pkgdesc", "pkgver", "pkgrel", "epoch", "url", "install", "changelog", "arch", "groups",
    "license", "checkdepends", "makedepends", "depends", "optdepends", "provides", "conflicts",
    "replaces", "noextract", "options", "backup", "source", "validpgpkeys", "md5sums",
    "sha1sums", "sha256sums", "sha512sums", "b2sums",
)  # fmt: skip


def read_pkgbuild(path: Path) -> dict[str, list[str]]:
    """Each variable of KEYS (and pkgname) as a list of values, as bash sees them."""
    script = (
        'source "$1"; shift; for k; do eval "v=(\\"\\${$k[@]}\\")"; for x in "${v[@]}"; '
        'do printf "%s\\0%s\\0" "$k" "$x"; done; done'
    )
    out = subprocess.run(
        ["bash", "-c", script, "bash", str(path), "pkgname", *KEYS],
        capture_output=True, check=True, env={"PATH": "/usr/bin:/bin"},
    ).stdout.decode()  # fmt: skip
    fields = out.split("\0")[:-1]
    values: dict[str, list[str]] = {}
    for key, value in zip(fields[::2], fields[1::2], strict=True):
        values.setdefault(key, []).append(value)
    return values


def srcinfo(path: Path) -> str:
    values = read_pkgbuild(path)
    name = values["pkgname"][0]
    lines = [f"pkgbase = {name}"]
    lines += [f"\t{key} = {value}" for key in KEYS for value in values.get(key, [])]
    lines += ["", f"pkgname = {name}", ""]
    return "\n".join(lines)


def parse_srcinfo(text: str) -> dict[str, list[str]]:
    values: dict[str, list[str]] = {}
    for line in text.splitlines():
        if " = " in line:
            key, value = line.strip().split(" = ", 1)
            values.setdefault(key, []).append(value)
    return values


if __name__ == "__main__":
    sys.stdout.write(srcinfo(Path(sys.argv[1] if len(sys.argv) > 1 else "PKGBUILD")))
