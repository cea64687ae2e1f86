"""Big sets in compact form answer exactly as the same elements as objects do."""

from __future__ import annotations

import ipaddress
import random

import pytest

from hotspotguard.ruleset.compact import COMPACT_MIN
from hotspotguard.ruleset.model import AnonSet, Range, SetElements
from hotspotguard.ruleset.nft import _named_set, parse_element
from hotspotguard.ruleset.render import render_value
from hotspotguard.ruleset.values import _exact, build_elements
from hotspotguard.verdict.engine import _in_elements


def _objects_only(values: list[object]) -> SetElements:
    """The same elements the way small sets keep them (the reference)."""
    exact = {v for v in values if _exact(v) or (isinstance(v, tuple) and all(map(_exact, v)))}
    other = tuple(v for v in values if v not in exact)
    return SetElements(frozenset(exact), other)


def _v4(rng: random.Random) -> ipaddress.IPv4Address:
    return ipaddress.IPv4Address(rng.choice([0x0A000000, 0xC6336400]) + rng.randrange(4096))


def _v6(rng: random.Random) -> ipaddress.IPv6Address:
    return ipaddress.IPv6Address((0x20010DB8 << 96) + rng.randrange(4096))


def _element(rng: random.Random, kinds: str) -> object:
    kind = rng.choice(kinds)
    if kind == "4":
        return _v4(rng)
    if kind == "6":
        return _v6(rng)
    if kind == "n":
        address = rng.choice([_v4, _v6])(rng)
        length = address.max_prefixlen - rng.randrange(9)
        return ipaddress.ip_network(f"{address}/{length}", strict=False)
    if kind == "i":
        return rng.randrange(70000)
    if kind == "r":
        low = rng.randrange(70000)
        return Range(low, low + rng.randrange(-3, 300))  # some inverted: they match nothing
    if kind == "R":
        low4 = _v4(rng)
        return Range(low4, low4 + rng.randrange(64))
    if kind == "t":
        return (_v4(rng), rng.randrange(40))
    if kind == "s":
        return rng.choice(["eth0", "wl*", "hs0"])
    return -rng.randrange(1, 5)


def _actual(rng: random.Random) -> object:
    kind = rng.choice("4466iiitsRx")
    if kind == "R":
        low = rng.randrange(70000)
        return Range(low, low + rng.randrange(2000))
    if kind == "x":
        return rng.choice([True, -2, 2**70, ("a", 1), None])
    return _element(rng, kind)


@pytest.mark.parametrize(
    "kinds", ["4", "46n", "ir", "irx", "46nRi", "t", "ts4", "46nirRtsx", "irs", "nR"]
)
def test_compact_lookup_equals_object_lookup(kinds: str) -> None:
    rng = random.Random(kinds)
    for _ in range(3):
        values = [_element(rng, kinds) for _ in range(COMPACT_MIN + rng.randrange(600))]
        compact = build_elements(values)
        assert compact.compact is not None
        reference = _objects_only(values)
        for _ in range(400):
            actual = rng.choice([_actual(rng), rng.choice(values)])
            if isinstance(actual, Range) and not isinstance(actual.low, int):
                continue  # the engine reads ranges of numbers only (ports, lengths)
            try:
                expected = _in_elements(actual, reference)
            except TypeError:  # the object form cannot compare them at all
                continue
            assert _in_elements(actual, compact) == expected, (actual, kinds)


def test_small_sets_stay_objects() -> None:
    elements = build_elements([53, Range(67, 68)])
    assert elements.compact is None and 53 in elements.exact


def test_a_named_set_of_prefixes_from_json_is_compact_and_shown() -> None:
    raw = [{"prefix": {"addr": f"10.{i // 256}.{i % 256}.0", "len": 24}} for i in range(1000)]
    raw += [{"range": ["198.51.100.10", "198.51.100.20"]}, "203.0.113.7", "not-an-address"]
    named = _named_set({"name": "big", "type": "ipv4_addr", "elem": raw}, is_map=False)
    elements = named.elements
    assert elements.compact is not None and len(elements) == 1003
    assert elements.exact == frozenset({"not-an-address"})
    assert _in_elements(ipaddress.IPv4Address("10.3.200.9"), elements) is True
    assert _in_elements(ipaddress.IPv4Address("198.51.100.15"), elements) is True
    assert _in_elements(ipaddress.IPv4Address("203.0.113.7"), elements) is True
    assert _in_elements(ipaddress.IPv4Address("203.0.113.8"), elements) is False
    assert _in_elements(ipaddress.IPv6Address("2001:db8::1"), elements) is None  # the range
    shown = render_value(AnonSet(elements))
    assert shown.startswith("{ ") and shown.endswith("… }") and "10.0.0.0/24" in shown
    objects = list(elements.compact.objects())
    assert ipaddress.IPv4Network("10.3.200.0/24") in objects
    assert (
        Range(ipaddress.IPv4Address("198.51.100.10"), ipaddress.IPv4Address("198.51.100.20"))
        in objects
    )


def test_compact_sets_compare_equal_when_parsed_twice() -> None:
    raw = [f"10.0.{i // 256}.{i % 256}" for i in range(300)]
    body = {"name": "s", "type": "ipv4_addr", "elem": raw}
    first, second = _named_set(body, False), _named_set(dict(body), False)
    assert first == second and hash(first.elements) == hash(second.elements)
    assert first != _named_set({**body, "elem": raw[:-1]}, False)


def test_a_concatenated_set_from_json_answers_as_its_objects() -> None:
    raw: list[object] = [{"concat": [f"10.0.{i // 256}.{i % 256}", i % 7]} for i in range(400)]
    raw += [{"concat": ["2001:db8::1", 53]}, {"concat": ["bad", 1]}, {"concat": ["10.9.9.9", -1]}]
    body = {"name": "pairs", "type": ["ipv4_addr", "inet_service"], "elem": raw}
    elements = _named_set(body, is_map=False).elements
    assert elements.compact is not None and len(elements) == 403
    typed = []
    for item in raw:
        parts = item["concat"]  # type: ignore[index]
        typed.append((parse_element("addr", parts[0]), parse_element("int", parts[1])))
    reference = _objects_only(typed)
    v4, v6 = ipaddress.IPv4Address, ipaddress.IPv6Address
    for actual in [
        (v4("10.0.1.44"), 300 % 7),
        (v4("10.0.1.44"), 1),
        (v6("2001:db8::1"), 53),
        ("bad", 1),
        (v4("10.9.9.9"), -1),
        (v4("10.0.0.1"),),
        v4("10.0.0.1"),
        ("x", "y", "z"),
    ]:
        assert _in_elements(actual, elements) == _in_elements(actual, reference), actual
