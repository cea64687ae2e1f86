"""Big sets kept compact: sorted integers in arrays instead of one Python object per element.

A set of a million prefixes or ranges (a blocklist) as `ipaddress` objects costs hundreds of
bytes per element; here an element costs 8 to 49 bytes and membership is a binary search.

Three kinds of groups, by *domain* (IPv4 addresses, IPv6 addresses, unsigned 64-bit ints):

- points: single addresses or numbers (a sorted column);
- spans: prefixes and ranges as inclusive [low, high] (sorted by low, with the running
  maximum of the highs, so "some span holds x" is one search even when spans overlap), and
  their shape (the prefix length, or RANGE) to give the objects back;
- tuples: concatenations whose parts are all points (`ip saddr . tcp dport`), each packed into
  one fixed-width integer per signature (the parts' domains).

Lookups answer exactly as comparing the value with each element object would (the engine's
`_element_matches`), type mismatches included: a value of another kind is `False` against
points and prefixes of the other IP version, and unknown (`None`) against ranges and against
prefixes when it is not an address at all.
"""

from __future__ import annotations

import ipaddress
import operator
from array import array
from bisect import bisect_right
from collections.abc import Callable, Iterator
from itertools import accumulate, islice

from hotspotguard.ruleset.model import ADDRESS_TYPES, NETWORK_TYPES, IPAddress, Range

COMPACT_MIN = 256  # smaller sets stay plain objects: a frozenset lookup, simple to show

V4, V6, INT = 4, 6, 0
Domain = int
BITS = {V4: 32, V6: 128, INT: 64}
_MASK64 = (1 << 64) - 1
RANGE = 255  # the shape of a span that is a range, not a prefix


def encode(value: object) -> tuple[Domain, int] | None:
    """(domain, integer) of a point value, None when it has no compact form."""
    if isinstance(value, ipaddress.IPv4Address):
        return V4, int(value)
    if isinstance(value, ipaddress.IPv6Address):
        return V6, int(value)
    if isinstance(value, int) and 0 <= value <= _MASK64:
        return INT, int(value)
    return None


def _decode(domain: Domain, value: int) -> int | IPAddress:
    if domain == V4:
        return ipaddress.IPv4Address(value)
    if domain == V6:
        return ipaddress.IPv6Address(value)
    return value


class Column:
    """Unsigned integers of a fixed width (`words` 64-bit words each) in one array."""

    __slots__ = ("append", "data", "words")
    append: Callable[[int], None]

    def __init__(self, words: int = 1) -> None:
        self.words = words
        self.data = array("Q")
        self.append = self.data.append if words == 1 else self._append_words

    def _append_words(self, value: int) -> None:
        for shift in range((self.words - 1) * 64, -1, -64):
            self.data.append((value >> shift) & _MASK64)

    def __len__(self) -> int:
        return len(self.data) // self.words

    def __getitem__(self, index: int) -> int:
        if self.words == 1:
            return self.data[index]
        value = 0
        start = index * self.words
        for word in self.data[start : start + self.words]:
            value = (value << 64) | word
        return value

    def searchable(self) -> array[int] | Column:
        """What `bisect` searches: the array itself when one word is one value (C speed)."""
        return self.data if self.words == 1 else self

    def sorted_order(self) -> list[int] | None:
        """The order that sorts the column, None when it is sorted already (nft lists
        interval sets in order: no index list is made then)."""
        if self.words == 1:
            data = self.data
            if all(map(operator.le, data, islice(data, 1, None))):
                return None
            return sorted(range(len(data)), key=data.__getitem__)
        previous = -1
        for index in range(len(self)):
            value = self[index]
            if value < previous:
                return sorted(range(len(self)), key=self.__getitem__)
            previous = value
        return None

    def reordered(self, order: list[int]) -> Column:
        column = Column(self.words)
        for index in order:
            column.append(self[index])
        return column

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Column) and (self.words, self.data) == (other.words, other.data)

    def __hash__(self) -> int:
        return hash((self.words, len(self.data)))


def _contains(column: Column, value: int) -> bool:
    index = bisect_right(column.searchable(), value) - 1
    return index >= 0 and column[index] == value


class Spans:
    """Inclusive [low, high] spans of one domain, sorted by low, with the running maximum of
    the highs (`reach`) and each span's shape (a prefix length, or RANGE)."""

    __slots__ = ("domain", "highs", "lows", "ranges", "reach", "shapes")

    def __init__(self, domain: Domain) -> None:
        words = 2 if domain == V6 else 1
        self.domain = domain
        self.lows = Column(words)
        self.highs = Column(words)
        self.reach = Column(words)
        self.shapes = array("B")
        self.ranges = 0

    def add(self, low: int, high: int, shape: int) -> None:
        self.lows.append(low)
        self.highs.append(high)
        self.shapes.append(shape)
        if shape == RANGE:
            self.ranges += 1

    def finish(self) -> None:
        order = self.lows.sorted_order()
        if order is not None:
            self.lows = self.lows.reordered(order)
            self.highs = self.highs.reordered(order)
            self.shapes = array("B", (self.shapes[i] for i in order))
        reach = Column(self.lows.words)
        if reach.words == 1:
            reach.data = array("Q", accumulate(self.highs.data, max))
        else:
            highest = -1
            for index in range(len(self.highs)):
                highest = max(highest, self.highs[index])
                reach.append(highest)
        self.reach = reach

    def _reach_at(self, value: int) -> int:
        """The highest high of the spans whose low is at most `value` (-1: none)."""
        index = bisect_right(self.lows.searchable(), value) - 1
        return self.reach[index] if index >= 0 else -1

    def holds(self, value: int) -> bool:
        return self._reach_at(value) >= value

    def holds_range(self, low: int, high: int) -> bool | None:
        """An unknown value within [low, high]: True if one span holds them all, None if a
        span meets them, else False (the engine's `_range_matches`, span by span)."""
        if self._reach_at(low) >= high:
            return True
        return None if self._reach_at(high) >= low else False

    def mismatch(self, actual: object) -> bool | None:
        """What a value of another domain gets: ranges cannot be compared with it (unknown);
        prefixes are false for an address of the other version, unknown for a non-address."""
        if self.ranges:
            return None
        return False if isinstance(actual, ADDRESS_TYPES) else None

    def objects(self) -> Iterator[object]:
        for index in range(len(self.lows)):
            low, high, shape = self.lows[index], self.highs[index], self.shapes[index]
            if shape == RANGE:
                yield Range(_decode(self.domain, low), _decode(self.domain, high))
            elif self.domain == V4:
                yield ipaddress.IPv4Network((low, shape))
            else:
                yield ipaddress.IPv6Network((low, shape))

    def __len__(self) -> int:
        return len(self.lows)

    def __eq__(self, other: object) -> bool:
        return (
            isinstance(other, Spans)
            and self.domain == other.domain
            and self.lows == other.lows
            and self.highs == other.highs
            and self.shapes == other.shapes
        )

    def __hash__(self) -> int:
        return hash((self.domain, len(self.lows)))


def _pack(parts: tuple[object, ...]) -> tuple[tuple[Domain, ...], int] | None:
    """A concatenation of points as (signature, one integer), None when a part has no
    compact form."""
    signature: list[Domain] = []
    key = 0
    for part in parts:
        encoded = encode(part)
        if encoded is None:
            return None
        domain, number = encoded
        signature.append(domain)
        key = (key << BITS[domain]) | number
    return tuple(signature), key


def _unpack(signature: tuple[Domain, ...], key: int) -> tuple[object, ...]:
    parts: list[object] = []
    for domain in reversed(signature):
        bits = BITS[domain]
        parts.append(_decode(domain, key & ((1 << bits) - 1)))
        key >>= bits
    return tuple(reversed(parts))


def _words(signature: tuple[Domain, ...]) -> int:
    return max(1, -(-sum(BITS[d] for d in signature) // 64))


class CompactElements:
    """The compact part of a big set (see the module's docstring)."""

    __slots__ = ("points", "spans", "tuples")

    def __init__(self) -> None:
        self.points: dict[Domain, Column] = {}
        self.spans: dict[Domain, Spans] = {}
        self.tuples: dict[tuple[Domain, ...], Column] = {}

    # --- building -------------------------------------------------------------------------

    def add_point(self, domain: Domain, value: int) -> None:
        column = self.points.get(domain)
        if column is None:
            column = self.points[domain] = Column(2 if domain == V6 else 1)
        column.append(value)

    def add_span(self, domain: Domain, low: int, high: int, shape: int) -> None:
        spans = self.spans.get(domain)
        if spans is None:
            spans = self.spans[domain] = Spans(domain)
        spans.add(low, high, shape)

    def add(self, value: object) -> bool:
        """Take `value` if it has a compact form; False when it has none."""
        encoded = encode(value)
        if encoded is not None:
            self.add_point(*encoded)
            return True
        if isinstance(value, NETWORK_TYPES):
            domain = V4 if value.version == 4 else V6
            low = int(value.network_address)
            self.add_span(domain, low, int(value.broadcast_address), value.prefixlen)
            return True
        if isinstance(value, Range):
            first, last = encode(value.low), encode(value.high)
            if first is not None and last is not None and first[0] == last[0]:
                self.add_span(first[0], first[1], last[1], RANGE)
                return True
            return False
        if isinstance(value, tuple):
            packed = _pack(value)
            if packed is None:
                return False
            self.add_tuple(*packed)
            return True
        return False

    def add_tuple(self, signature: tuple[Domain, ...], key: int) -> None:
        column = self.tuples.get(signature)
        if column is None:
            column = self.tuples[signature] = Column(_words(signature))
        column.append(key)

    def finish(self) -> CompactElements:
        for groups in (self.points, self.tuples):
            for key, column in groups.items():
                order = column.sorted_order()
                if order is not None:
                    groups[key] = column.reordered(order)  # type: ignore[index]
        for spans in self.spans.values():
            spans.finish()
        return self

    # --- reading --------------------------------------------------------------------------

    @property
    def has_ranges(self) -> bool:
        return any(spans.ranges for spans in self.spans.values())

    def lookup(self, actual: object) -> bool | None:
        """Whether `actual` equals (or lies in) an element: True, False, or None (unknown)."""
        if isinstance(actual, tuple):
            packed = _pack(actual)
            if packed is not None:
                column = self.tuples.get(packed[0])
                if column is not None and _contains(column, packed[1]):
                    return True
        encoded = encode(actual)
        if encoded is None and isinstance(actual, int):
            encoded = (INT, -1)  # an int out of the columns' range: in no point, no span
        if encoded is not None:
            points = self.points.get(encoded[0])
            if points is not None and encoded[1] >= 0 and _contains(points, encoded[1]):
                return True
        result: bool | None = False
        for domain, spans in self.spans.items():
            if encoded is not None and domain == encoded[0]:
                if encoded[1] >= 0 and spans.holds(encoded[1]):
                    return True
            elif result is False:
                result = spans.mismatch(actual)
        return result

    def lookup_range(self, actual: Range) -> bool | None:
        """An unknown value within `actual` (an ephemeral port): True if an element holds the
        whole range, None if one may hold the value, else False (`_range_matches`). The
        engine reads ranges of numbers only; a range of addresses gets None."""
        low, high = actual.low, actual.high
        if not (isinstance(low, int) and isinstance(high, int) and low >= 0 and high <= _MASK64):
            return None if len(self) else False
        result: bool | None = False
        if self.tuples or any(d != INT for d in (*self.points, *self.spans)):
            result = None  # addresses and concatenations: never decided against a range
        spans = self.spans.get(INT)
        if spans is not None:
            found = spans.holds_range(low, high)
            if found:
                return True
            if found is None:
                result = None
        points = self.points.get(INT)
        if points is not None and result is False:
            index = bisect_right(points.searchable(), high) - 1
            if index >= 0 and points[index] >= low:
                result = None
        return result

    def objects(self) -> Iterator[object]:
        """The elements as the objects they stand for (to show them or index them)."""
        for domain, column in self.points.items():
            for index in range(len(column)):
                yield _decode(domain, column[index])
        for spans in self.spans.values():
            yield from spans.objects()
        for signature, column in self.tuples.items():
            for index in range(len(column)):
                yield _unpack(signature, column[index])

    def __len__(self) -> int:
        points = sum(len(column) for column in self.points.values())
        tuples = sum(len(column) for column in self.tuples.values())
        return points + tuples + sum(len(spans) for spans in self.spans.values())

    def __eq__(self, other: object) -> bool:
        return isinstance(other, CompactElements) and (
            self.points,
            self.spans,
            self.tuples,
        ) == (other.points, other.spans, other.tuples)

    def __hash__(self) -> int:
        return hash(len(self))

    def __repr__(self) -> str:
        return f"CompactElements({len(self)} elements)"
