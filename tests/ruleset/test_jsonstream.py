"""A snapshot file read with its nft listing decoded as it is parsed: the same document and
the same model as json.loads gives, syntax errors found at reading, a size cap."""

from __future__ import annotations

import json
import random
from pathlib import Path
from typing import Any

import pytest

from hotspotguard.ruleset import SnapshotError, load_snapshot, parse_ruleset, read_snapshot_file
from hotspotguard.ruleset.jsonstream import LazyNft, loads_snapshot

DATA = Path(__file__).resolve().parents[1] / "data"


def _plain(value: Any) -> Any:
    """A lazily decoded document made plain (iterators made lists), to compare."""
    if isinstance(value, LazyNft):
        return {key: _plain(value[key]) for key in value}
    if isinstance(value, dict):
        return {key: _plain(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_plain(item) for item in value]
    if hasattr(value, "__next__"):
        return [_plain(item) for item in value]
    return value


def _document(nft: Any) -> dict[str, Any]:
    return {
        "format": "hotspotguard-snapshot/1",
        "nft": nft,
        "sysctl": {"net.ipv4.ip_forward": "1"},
        "hotspots": [{"iface": "hs0", "ipv4": ["10.42.0.1/24"]}],
        "uplinks": ["up0"],
    }


def _big_set_listing(count: int) -> dict[str, Any]:
    rng = random.Random(count)
    elements: list[Any] = []
    for index in range(count):
        base = f"10.{index // 256 % 256}.{index % 256}"
        elements.append(
            rng.choice(
                [
                    f"{base}.1",
                    {"prefix": {"addr": f"{base}.0", "len": 24}},
                    {"range": [f"{base}.10", f"{base}.20"]},
                    {"elem": {"val": f"{base}.7", "timeout": 60, "comment": 'a "quoted" one'}},
                    {"prefix": {"addr": "2001:db8::", "len": 32 + index % 90}},
                ]
            )
        )
    return {
        "nftables": [
            {"metainfo": {"version": "1.0.6", "json_schema_version": 1}},
            {"table": {"family": "inet", "name": "t"}},
            {
                "chain": {
                    "family": "inet",
                    "table": "t",
                    "name": "f",
                    "type": "filter",
                    "hook": "forward",
                    "prio": 0,
                    "policy": "accept",
                }
            },
            {
                "set": {
                    "family": "inet",
                    "name": "big",
                    "table": "t",
                    "type": "ipv4_addr",
                    "flags": ["interval"],
                    "elem": elements,
                }
            },
            {
                "map": {
                    "family": "inet",
                    "name": "m",
                    "table": "t",
                    "type": "inet_service",
                    "map": "verdict",
                    "elem": [[80, {"accept": None}], [443, {"drop": None}]],
                }
            },
            {
                "set": {
                    "family": "inet",
                    "name": "empty",
                    "table": "t",
                    "type": "ipv4_addr",
                    "elem": [],
                }
            },
            {
                "rule": {
                    "family": "inet",
                    "table": "t",
                    "chain": "f",
                    "expr": [
                        {
                            "match": {
                                "op": "==",
                                "left": {"payload": {"protocol": "ip", "field": "daddr"}},
                                "right": "@big",
                            }
                        },
                        {"drop": None},
                    ],
                }
            },
        ]
    }


LISTINGS = [
    json.loads((DATA / "nft-concat-set-timeout.json").read_text()),
    *(json.loads(p.read_text()) for p in sorted((DATA / "nm-lab").glob("*.json"))),
    _big_set_listing(3000),
    {"nftables": []},
    {"nftables": [], "extra": 1},
]


@pytest.mark.parametrize("listing", LISTINGS)
@pytest.mark.parametrize("indent", [None, 1])
def test_the_lazy_document_equals_json_loads(listing: dict[str, Any], indent: int | None) -> None:
    text = json.dumps(_document(listing), indent=indent)
    assert _plain(loads_snapshot(text)) == json.loads(text)


def test_odd_but_valid_json_is_read_as_json_loads_reads_it() -> None:
    text = (
        '{"nft" :{ "nftables" :[ {"set" : {"elem" : [ 1.5e3, "a\\u00e9\\"b", [], {}, '
        '{"concat": [{"prefix": {"addr": "10.0.0.0", "len": 8}}, 80]}, true, null, -0, 7 ],'
        '"name": "s", "type": "inet_service"}, "other": [1]}, {"map": 3} ,{"rule": {}}] ,'
        '"x": {"y": []}} , "format": "f", "nft": null, "nft": {"nftables": [{"set": '
        '{"elem": [1, 2]}}]}}  \n'
    )
    assert _plain(loads_snapshot(text)) == json.loads(text)
    text = '{"nft": {"nftables": [{"set": {"elem": [1]}}], "nftables": null}}'
    assert _plain(loads_snapshot(text)) == json.loads(text)


@pytest.mark.parametrize(
    "text",
    [
        '{"nft": {"nftables": [{"set": {"elem": [1, 2,]}}]}}',
        '{"nft": {"nftables": [{"set": {"elem": [1 2]}}]}}',
        '{"nft": {"nftables": [{"set": {"elem": [1, "a\x01b"]}}]}}',
        '{"nft": {"nftables": [{"set": {"elem": [01]}}]}}',
        '{"nft": {"nftables": [{"rule": {}} {"rule": {}}]}}',
        '{"nft": {"nftables": [{"set": {"elem": [1, 2]}}]}',
        '{"nft": {"nftables": []}} x',
        '{"nft": {"nftables": [{"set": {"elem": [1, 2',
        "",
    ],
)
def test_bad_json_is_an_error_at_reading(text: str) -> None:
    with pytest.raises(json.JSONDecodeError):
        loads_snapshot(text)
    with pytest.raises(json.JSONDecodeError):
        json.loads(text)


def test_a_file_parses_to_the_model_json_loads_gives(tmp_path: Path) -> None:
    doc = _document(_big_set_listing(3000))
    path = tmp_path / "snapshot.json"
    path.write_text(json.dumps(doc))
    streamed = read_snapshot_file(str(path))
    assert isinstance(streamed.nft, LazyNft)
    plain = parse_ruleset(load_snapshot(json.loads(path.read_text())))
    first, second = parse_ruleset(streamed), parse_ruleset(streamed)  # re-readable
    assert first.tables == plain.tables == second.tables
    big = first.tables[0].sets["big"].elements
    assert big.compact is not None and len(big) == 3000


def test_a_file_over_the_cap_is_refused_before_it_is_read(tmp_path: Path) -> None:
    path = tmp_path / "snapshot.json"
    path.write_text(json.dumps(_document(_big_set_listing(3000))))
    with pytest.raises(SnapshotError, match=r"a snapshot is at most 0 MiB"):
        read_snapshot_file(str(path), max_bytes=100_000)


def test_a_syntax_error_deep_in_a_set_is_a_snapshot_error(tmp_path: Path) -> None:
    text = json.dumps(_document(_big_set_listing(3000)))
    at = text.index("}, ", text.index('"elem": [') + 5000) + 1
    text = text[:at] + "}" + text[at:]
    with pytest.raises(json.JSONDecodeError):
        json.loads(text)
    path = tmp_path / "snapshot.json"
    path.write_text(text)
    with pytest.raises(SnapshotError, match=r"is not valid JSON \(.*line 1 column"):
        read_snapshot_file(str(path))
