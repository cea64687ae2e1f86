"""The command line: verdicts, exit codes, and one clear line for every bad input."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from hotspotguard.cli import main
from tests.helpers import NM_LAB, document, nm_lab


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def write(tmp_path: Path, doc: Any, name: str = "snap.json") -> str:
    path = tmp_path / name
    path.write_text(doc if isinstance(doc, str) else json.dumps(doc))
    return str(path)


def docker_doc() -> dict[str, Any]:
    return document(
        nm_lab("nft-3-docker-full.json"),
        iface="nmp-hs0",
        uplinks=("nmp-up0",),
        iptables_nft_save=(NM_LAB / "iptables-save-docker-full.txt").read_text(),
    )


def test_explain_json_shape_and_exit_code(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, err = run(capsys, "explain", "--snapshot", write(tmp_path, docker_doc()), "--json")
    assert code == 1 and err == ""
    (hotspot,) = json.loads(out)["hotspots"]
    assert hotspot["iface"] == "nmp-hs0"
    assert hotspot["verdict"] == "blocked"
    assert set(hotspot["flows"]) == {"dhcp", "dns", "outbound", "reply"}
    assert hotspot["blocked_by"] == {
        "owner": "docker",
        "family": "ip",
        "table": "filter",
        "chain": "FORWARD",
        "rule": "policy drop",
        "hook": "forward",
        "source": "iptables-nft",
        "kind": "policy",  # the culprit's kind (wording.culprit_kind), added by issue 11
    }
    assert hotspot["nm_backend"] == "nftables"


def test_explain_text_names_owner_chain_and_flow(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, _ = run(capsys, "explain", "--snapshot", write(tmp_path, docker_doc()))
    assert code == 1
    first = out.splitlines()[0]
    assert first == (
        "blocked: Docker's filter FORWARD policy drop stops outbound traffic from nmp-hs0"
    )
    assert "docker-user" in out


def test_ok_exits_zero(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    doc = document(nm_lab("nft-1-nm-only.json"), iface="nmp-hs0", uplinks=("nmp-up0",))
    code, out, _ = run(capsys, "explain", "--snapshot", write(tmp_path, doc))
    assert code == 0 and out.startswith("ok:")


def test_no_hotspot_is_a_normal_answer(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    doc = document()
    doc["hotspots"] = []
    code, out, _ = run(capsys, "explain", "--snapshot", write(tmp_path, doc))
    assert code == 0 and "no hotspot" in out


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("{not json", "not valid JSON"),
        ("[]", "JSON object"),
        (json.dumps({**document(), "format": "other/2"}), "unknown snapshot format"),
        (json.dumps({"format": "hotspotguard-snapshot/1"}), "lacks the key"),
        (json.dumps({**document(), "hotspots": [{"iface": 3}]}), "iface"),
        (json.dumps({**document(), "hotspots": [{"iface": "a", "ipv4": ["nope"]}]}), "address"),
    ],
)
def test_bad_input_is_one_line_and_exit_2(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], content: str, message: str
) -> None:
    code, out, err = run(capsys, "explain", "--snapshot", write(tmp_path, content))
    assert code == 2 and out == ""
    assert message in err and len(err.strip().splitlines()) == 1


def test_missing_file_and_huge_file(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = run(capsys, "explain", "--snapshot", str(tmp_path / "nope.json"))
    assert code == 2 and "no such file" in err
    huge = tmp_path / "huge.json"
    with open(huge, "wb") as handle:  # sparse: just over the cap without using the disk
        handle.truncate(256 * 2**20 + 1)
    code, _, err = run(capsys, "explain", "--snapshot", str(huge))
    assert code == 2 and "at most 256 MiB" in err and len(err.strip().splitlines()) == 1


def test_iface_no_hotspot_has(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = run(
        capsys, "explain", "--snapshot", write(tmp_path, document()), "--iface", "wlan9"
    )
    assert code == 2 and "no hotspot named wlan9" in err


def test_unknown_expression_kinds_are_uncertain_not_a_crash(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    doc = docker_doc()
    for item in doc["nft"]["nftables"]:
        if "rule" in item and item["rule"]["chain"] == "FORWARD":
            item["rule"]["expr"].insert(0, {"frobnicate": {"x": 1}})
    code, _out, err = run(capsys, "explain", "--snapshot", write(tmp_path, doc), "--json")
    assert code == 1 and err == ""


def test_version_and_usage(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_info:
        main(["--version"])
    assert exit_info.value.code == 0 and "hotspotguard" in capsys.readouterr().out
    with pytest.raises(SystemExit) as exit_info:
        main(["explain", "--bogus"])
    assert exit_info.value.code == 2


def test_console_script_runs_as_a_module(tmp_path: Path) -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "hotspotguard", "explain", "--snapshot", str(tmp_path / "x")],
        capture_output=True,
        text=True,
        env={**os.environ, "HOTSPOTGUARD_DEBUG": ""},
        check=False,
    )
    assert proc.returncode == 2 and "Traceback" not in proc.stderr


# --- the parser fuzz test: random and mutated snapshots never crash the CLI ---------------

JSON_LEAF = st.one_of(
    st.none(), st.booleans(), st.integers(), st.text(max_size=12), st.floats(allow_nan=False)
)
JSON = st.recursive(
    JSON_LEAF,
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=8), children, max_size=4)
    ),
    max_leaves=20,
)
KEYS = [
    "match",
    "jump",
    "goto",
    "vmap",
    "set",
    "meta",
    "payload",
    "ct",
    "prefix",
    "range",
    "concat",
    "elem",
    "accept",
    "drop",
    "xt",
    "masquerade",
    "limit",
    "&",
    "counter",
]


def _mutate(value: Any, data: st.DataObject) -> Any:
    if isinstance(value, dict) and value:
        key = data.draw(st.sampled_from(sorted(value, key=str)))
        choice = data.draw(st.integers(0, 3))
        if choice == 0:
            value[key] = data.draw(JSON)
        elif choice == 1:
            del value[key]
        elif choice == 2:
            value[data.draw(st.sampled_from(KEYS))] = value.pop(key)
        else:
            value[key] = _mutate(value[key], data)
    elif isinstance(value, list) and value:
        index = data.draw(st.integers(0, len(value) - 1))
        value[index] = _mutate(value[index], data) if data.draw(st.booleans()) else data.draw(JSON)
    else:
        return data.draw(JSON)
    return value


@settings(max_examples=150, deadline=None, suppress_health_check=list(HealthCheck))
@given(data=st.data())
def test_fuzzed_snapshots_exit_0_1_or_2(
    tmp_path_factory: pytest.TempPathFactory, data: st.DataObject
) -> None:
    doc = docker_doc()
    for _ in range(data.draw(st.integers(1, 6))):
        doc = _mutate(doc, data)
    path = tmp_path_factory.mktemp("fuzz") / "s.json"
    path.write_text(json.dumps(doc))
    import contextlib
    import io

    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = main(["explain", "--snapshot", str(path), "--json"])
    assert code in (0, 1, 2)
    assert "internal error" not in err.getvalue(), err.getvalue()
