"""A snapshot file's JSON, with its nft listing decoded one object at a time.

`json.loads` of a 48 MB snapshot holding a set of a million prefixes makes a million dicts at
once (hundreds of MB). Here the document's text is read once and kept; its small members are
decoded as usual, and its `nft` member becomes a `LazyNft`: each pass over
`nft["nftables"]` decodes the listing's objects one by one as the parser takes them, and a
set's or map's `elem` array one element at a time. A first pass at reading checks the whole
text (a syntax error is found before anything is parsed) and notes where each `elem` array
ends, so the second pass can hand the rest of a set on before its elements are read.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterator, Mapping
from typing import Any

_DECODER = json.JSONDecoder()
_SPACE = re.compile(r"[ \t\n\r]*")
_SET_ITEM = re.compile(r'\{[ \t\n\r]*"(?:set|map)"[ \t\n\r]*:[ \t\n\r]*\{')
_scanstring = json.decoder.scanstring  # type: ignore[attr-defined]


def _space(text: str, index: int) -> int:
    return _SPACE.match(text, index).end()  # type: ignore[union-attr]


def _expect(text: str, index: int, char: str, what: str) -> int:
    if text[index : index + 1] != char:
        raise json.JSONDecodeError(f"Expecting {what}", text, index)
    return index + 1


def _key(text: str, index: int) -> tuple[str, int]:
    """A member's name and the index of its value."""
    index = _expect(text, index, '"', "property name enclosed in double quotes")
    name, index = _scanstring(text, index)
    index = _expect(text, _space(text, index), ":", "':' delimiter")
    return str(name), _space(text, index)


def _next_member(text: str, index: int, close: str) -> tuple[bool, int]:
    """After a member or an item: (more follow, index of the next)."""
    index = _space(text, index)
    if text[index : index + 1] == ",":
        return True, _space(text, index + 1)
    return False, _expect(text, index, close, f"',' delimiter or '{close}'")


def _walk_object(
    text: str, index: int, value: Callable[[str, int], tuple[Any, int]]
) -> tuple[dict[str, Any], int]:
    """The object at `index`, each member's value decoded by `value(name, start)`, which
    returns it with the index after it."""
    result: dict[str, Any] = {}
    index = _space(text, _expect(text, index, "{", "'{'"))
    if text[index : index + 1] == "}":
        return result, index + 1
    while True:
        name, start = _key(text, index)
        result[name], end = value(name, start)
        more, index = _next_member(text, end, "}")
        if not more:
            return result, index


def _open_array(text: str, index: int) -> tuple[bool, int]:
    """(the array at `index` has items, index of the first or after the array)."""
    index = _space(text, _expect(text, index, "[", "'['"))
    if text[index : index + 1] == "]":
        return False, index + 1
    return True, index


# A run of up to 4096 "flat" array items (strings without escapes, integers, flat arrays and
# objects of those, and an object of one flat object: the shapes of set elements, such as
# {"prefix": {"addr": "10.0.0.0", "len": 8}} and {"range": [1, 5]}), matched at C speed; an item
# of another shape is decoded alone. Chunks of such runs are decoded with one json.loads each.
_W = r"[ \t\n\r]*"
_STR = r'"[^"\\\x00-\x1f]*"'
_NUM = r"-?(?:0|[1-9][0-9]*)(?![0-9.eE])"
_SCALAR = f"(?:{_STR}|{_NUM})"
_FLAT_ARRAY = rf"\[{_W}(?:{_SCALAR}{_W}(?:,{_W}{_SCALAR}{_W})*)?\]"
_MEMBER = rf"{_STR}{_W}:{_W}(?:{_SCALAR}|{_FLAT_ARRAY})"
_FLAT_OBJECT = rf"\{{{_W}(?:{_MEMBER}{_W}(?:,{_W}{_MEMBER}{_W})*)?\}}"
_ITEM = rf"(?:{_SCALAR}|{_FLAT_ARRAY}|{_FLAT_OBJECT}|\{{{_W}{_STR}{_W}:{_W}{_FLAT_OBJECT}{_W}\}})"
_RUN = re.compile(rf"{_ITEM}(?:{_W},{_W}{_ITEM}){{0,4095}}")
_SEPARATOR = re.compile(rf"{_W}([,\]]){_W}")


def _chunks(text: str, index: int) -> tuple[list[tuple[int, int]], int]:
    """Check the array at `index` without keeping its items: the spans of text that hold
    them (each a run of items, or one item), and the index after the array."""
    more, index = _open_array(text, index)
    chunks: list[tuple[int, int]] = []
    while more:
        run = _RUN.match(text, index)
        if run is not None:
            end = run.end()
        else:
            _, end = _DECODER.raw_decode(text, index)
        chunks.append((index, end))
        separator = _SEPARATOR.match(text, end)
        if separator is None:
            raise json.JSONDecodeError("Expecting ',' delimiter", text, end)
        more, index = separator.group(1) == ",", separator.end()
    return chunks, index


def _elements(text: str, chunks: list[tuple[int, int]]) -> Iterator[Any]:
    for start, end in chunks:
        yield from json.loads(f"[{text[start:end]}]")


class _Listing:
    """The `nftables` array of one snapshot's text; `elem_ends` maps where each set's or
    map's `elem` array starts to the spans of its items and where it ends (filled by the
    checking pass)."""

    def __init__(self, text: str, start: int) -> None:
        self.text = text
        self.start = start
        self.elems: dict[int, tuple[list[tuple[int, int]], int]] = {}

    def check(self) -> int:
        """Decode everything once, keep nothing; the index after the array."""
        more, index = _open_array(self.text, self.start)
        while more:
            _, index = self._item(index, lazy=False)
            more, index = _next_member(self.text, index, "]")
        return index

    def items(self) -> Iterator[Any]:
        more, index = _open_array(self.text, self.start)
        while more:
            item, index = self._item(index, lazy=True)
            more, index = _next_member(self.text, index, "]")
            yield item

    def _item(self, index: int, lazy: bool) -> tuple[Any, int]:
        if _SET_ITEM.match(self.text, index):
            return _walk_object(self.text, index, self._set_member(lazy))
        return _DECODER.raw_decode(self.text, index)

    def _set_member(self, lazy: bool) -> Any:
        def member(name: str, start: int) -> tuple[Any, int]:
            if name in {"set", "map"} and self.text[start : start + 1] == "{":
                return _walk_object(self.text, start, body)
            return _DECODER.raw_decode(self.text, start)

        def body(name: str, start: int) -> tuple[Any, int]:
            if name == "elem" and self.text[start : start + 1] == "[":
                if not lazy:
                    self.elems[start] = _chunks(self.text, start)
                chunks, end = self.elems[start]
                return (_elements(self.text, chunks) if lazy else None), end
            return _DECODER.raw_decode(self.text, start)

        return member


class LazyNft(Mapping[str, Any]):
    """A snapshot's `nft` member over the document's text: `["nftables"]` is a new iterator
    over the listing's objects each time (a set's `elem` an iterator too)."""

    def __init__(self, members: dict[str, Any], listing: _Listing | None) -> None:
        self._members = members
        self._listing = listing

    def __getitem__(self, key: str) -> Any:
        if key == "nftables" and self._listing is not None:
            return self._listing.items()
        return self._members[key]

    def __iter__(self) -> Iterator[str]:
        return iter(self._members)

    def __len__(self) -> int:
        return len(self._members)


def _nft(text: str, start: int) -> tuple[Any, int]:
    if text[start : start + 1] != "{":
        return _DECODER.raw_decode(text, start)
    listing: _Listing | None = None

    def member(name: str, at: int) -> tuple[Any, int]:
        nonlocal listing
        if name == "nftables":
            listing = None  # the last one counts, as for json.loads
            if text[at : at + 1] == "[":
                listing = _Listing(text, at)
                return None, listing.check()
        return _DECODER.raw_decode(text, at)

    members, end = _walk_object(text, start, member)
    if listing is not None:
        members["nftables"] = None  # a placeholder: the key is there, its value is lazy
    return LazyNft(members, listing), end


def loads_snapshot(text: str) -> Any:
    """The document in `text` as `json.loads` gives it, but for a top-level object's `nft`
    member, which is a `LazyNft` (raises `json.JSONDecodeError` as json.loads does)."""
    index = _space(text, 0)
    if text[index : index + 1] != "{":
        return json.loads(text)  # not an object: not a snapshot, and nothing big to save

    def member(name: str, start: int) -> tuple[Any, int]:
        if name == "nft":
            return _nft(text, start)
        return _DECODER.raw_decode(text, start)

    document, index = _walk_object(text, index, member)
    index = _space(text, index)
    if index != len(text):
        raise json.JSONDecodeError("Extra data", text, index)
    return document
