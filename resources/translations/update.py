"""Refresh the translations from the code: ``python resources/translations/update.py``.

Runs ``pyside6-lupdate`` over ``src/hotspotguard/ui`` and ``wording.py`` into a fresh catalogue, keeps every
translation already in ``hotspotguard_<lang>.ts`` (same context and source; else the same
source in another context), and compiles the ``.qm`` with ``pyside6-lrelease``. Strings that
lupdate files under the empty context — module-level ``tr()`` helpers calling
``QCoreApplication.translate("Context", …)`` — are moved to that runtime context, read from the
helper in their file. New strings land as ``type="unfinished"``.
"""

from __future__ import annotations

import re
import subprocess
import sys
import tempfile
import xml.etree.ElementTree as ET
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]
UI = ROOT / "src" / "hotspotguard" / "ui"
#: the sentences for people (hotspotguard.wording): its ``tr`` is the caller's translator
WORDING = ROOT / "src" / "hotspotguard" / "wording.py"
LANGUAGES = ("zh_CN",)
HELPER = re.compile(
    r"^def tr\(.*?\n(?:[ \t].*\n)*?[ \t]+return QCoreApplication\.translate\(\s*\"([^\"]+)\"", re.M
)


def _tool(name: str) -> str:
    beside = Path(sys.executable).parent / name
    return str(beside) if beside.exists() else name


def _module_contexts() -> dict[str, str]:
    """file name -> the context its module-level ``tr()`` translates in."""
    found = {}
    for path in UI.glob("*.py"):
        match = HELPER.search(path.read_text(encoding="utf-8"))
        if match:
            found[path.name] = match[1]
    found[WORDING.name] = "Wording"
    return found


def _known(ts: Path) -> tuple[dict[tuple[str, str], str], dict[str, str]]:
    by_context: dict[tuple[str, str], str] = {}
    by_source: dict[str, str] = {}
    if not ts.exists():
        return by_context, by_source
    for context in ET.parse(ts).getroot().findall("context"):
        name = context.findtext("name") or ""
        for message in context.findall("message"):
            source = message.findtext("source") or ""
            translation = message.find("translation")
            if translation is None or not (translation.text or "").strip():
                continue
            if translation.get("type") == "unfinished":
                continue
            by_context[(name, source)] = translation.text or ""
            by_source.setdefault(source, translation.text or "")
    return by_context, by_source


def update(language: str) -> int:
    ts = HERE / f"hotspotguard_{language}.ts"
    by_context, by_source = _known(ts)
    with tempfile.TemporaryDirectory() as scratch:
        fresh = Path(scratch) / ts.name
        sources = [*sorted(str(p) for p in UI.glob("*.py")), str(WORDING)]
        subprocess.run(
            [
                _tool("pyside6-lupdate"),
                *sources,
                "-ts",
                str(fresh),
                "-target-language",
                language,
                "-locations",
                "absolute",
                "-silent",
            ],
            check=True,
        )
        root = ET.parse(fresh).getroot()
    contexts = _module_contexts()
    messages: dict[str, list[tuple[str, str | None]]] = {}
    for context in root.findall("context"):
        name = context.findtext("name") or ""
        for message in context.findall("message"):
            source = message.findtext("source") or ""
            where = name
            if not where:
                files = {Path(loc.get("filename", "")).name for loc in message.findall("location")}
                where = next((contexts[f] for f in files if f in contexts), "")
            messages.setdefault(where, [])
            if all(s != source for s, _ in messages[where]):
                messages[where].append(
                    (source, by_context.get((where, source), by_source.get(source)))
                )
    out = ET.Element("TS", version="2.1", language=language, sourcelanguage="en")
    missing = 0
    for name in sorted(messages):
        context = ET.SubElement(out, "context")
        ET.SubElement(context, "name").text = name
        for source, translation in messages[name]:
            message = ET.SubElement(context, "message")
            ET.SubElement(message, "source").text = source
            element = ET.SubElement(message, "translation")
            if translation:
                element.text = translation
            else:
                element.set("type", "unfinished")
                missing += 1
    ET.indent(out)
    ts.write_text(
        '<?xml version="1.0" encoding="utf-8"?>\n<!DOCTYPE TS>\n'
        + ET.tostring(out, encoding="unicode")
        + "\n",
        encoding="utf-8",
    )
    subprocess.run([_tool("pyside6-lrelease"), "-silent", str(ts)], check=True)
    return missing


def main() -> int:
    missing = {language: update(language) for language in LANGUAGES}
    for language, count in missing.items():
        print(f"{language}: {count} untranslated" if count else f"{language}: complete")
    return 1 if any(missing.values()) else 0


if __name__ == "__main__":
    sys.exit(main())
