"""The layering, checked on the import graph: each layer imports only the layers below it.

ruleset < verdict < fixes < usecases < the edges (cli, ui, helper). `system` holds the adapters
the use cases and edges drive; the pure core (ruleset, verdict, fixes) imports none of it. The CLI
and the applet never import the privileged D-Bus mechanism (`helper`).
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parent.parent / "src" / "hotspotguard"

# What each part may import from the package, besides itself (every import counts: top-level,
# inside functions, and under TYPE_CHECKING).
ALLOWED = {
    "ruleset": {"gcpause"},
    # wording: the sentences for people, from structured results (the JSON's summary too)
    "wording": {"ruleset"},
    "verdict": {"ruleset", "wording"},
    "fixes": {"ruleset", "verdict", "wording"},
    "assessment": {"ruleset", "verdict", "fixes", "wording"},
}
NO_HELPER = ("cli", "cli_fixes", "ui", "usecases", "system", "watch", "assessment")


def _part(module: str) -> str:
    """`hotspotguard.verdict.engine` → `verdict`."""
    return module.split(".")[1] if module.count(".") else ""


def _imports(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(), str(path))
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.update(a.name for a in node.names if a.name.startswith("hotspotguard."))
        elif isinstance(node, ast.ImportFrom) and node.module:
            if node.module == "hotspotguard":
                found.update(f"hotspotguard.{a.name}" for a in node.names)
            elif node.module.startswith("hotspotguard."):
                found.add(node.module)
    return found


def _modules() -> dict[str, set[str]]:
    graph: dict[str, set[str]] = {}
    for path in sorted(PACKAGE.rglob("*.py")):
        rel = path.relative_to(PACKAGE.parent).with_suffix("")
        graph[".".join(rel.parts)] = _imports(path)
    return graph


GRAPH = _modules()


@pytest.mark.parametrize("part", sorted(ALLOWED))
def test_core_imports_only_what_is_below_it(part: str) -> None:
    allowed = ALLOWED[part] | {part, ""}
    bad = {
        f"{module} imports {target}"
        for module, targets in GRAPH.items()
        if _part(module) == part
        for target in targets
        if _part(target) not in allowed
    }
    assert not bad, sorted(bad)


def test_only_the_helper_imports_the_helper() -> None:
    bad = {
        f"{module} imports {target}"
        for module, targets in GRAPH.items()
        if _part(module) in NO_HELPER
        for target in targets
        if _part(target) == "helper"
    }
    assert not bad, sorted(bad)
