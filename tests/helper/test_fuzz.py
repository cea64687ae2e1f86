"""≥ 10,000 malformed and hostile calls through the real bus to the bus-activated helper.

Root (whom polkit always authorises) sends only calls that are malformed by construction, so
every one must be stopped by the dispatch table or the validators; the test users ``deny`` and
``read`` also send well-formed calls that would change something (another user's fix ids among
them), which polkit must refuse.  Afterwards: the ruleset, the record of fixes and the
permanent-fix files of the helper's netns are as before, the helper is the same process, it
logged no traceback, and every answer was a D-Bus error.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import random
import time
from collections.abc import Iterator
from typing import Any

import pytest
from dbus_next import Message, MessageType
from dbus_next.aio import MessageBus

from hotspotguard.helper.service import BUS_NAME, INTERFACE, OBJECT_PATH
from hotspotguard.system.helper_client import METHODS
from hotspotguard.usecases.operations import OperationError, validate_fix_id, validate_iface
from tests.polkitlab import PolkitLab

pytestmark = pytest.mark.kernel

SEED = 20261125
ROOT_CALLS = 9_000
USER_CALLS = 700  # per unauthorised user
CONNECTIONS, WINDOW = 4, 64  # concurrent calls per connection stay under the bus's limits

SIGNATURES = (
    "", "s", "ss", "sss", "sb", "ssb", "ssbs", "ssbsb", "b", "i", "u", "x", "d", "o", "g", "y",
    "as", "ay", "a{sv}", "a{ss}", "v", "(ss)", "aas", "(ssbs)", "bs", "sbs",
)  # fmt: skip
HOSTILE = [
    "", ".", "..", "/", "a/b", "../../etc/passwd", "a b", " lo", "lo ", "\t", "\n", "lo\n",
    "x" * 16, "x" * 64, "x" * 65, "x" * 4096, "wlän0", "ẞ", "😀", "\u202eoln", "\x01", "\x7f",
    "lo:1", "$(reboot)", "`id`", "-j ACCEPT", "docker-user@", "@lo", "docker-user@a/b",
    "nope@lo", "docker-user@" + "x" * 16, "DOCKER-USER", "docker-user ", "\u00a0", "\ud7ff",
    "%s%n", "'; DROP TABLE fixes; --", "lo\r", "\x1b[31m", "é" * 8,
]  # fmt: skip
OTHER_INTERFACES = (
    "io.github.hotspotguard.Helper2",
    "org.freedesktop.DBus.Properties",
    "io.github.hotspotguard",
    "org.freedesktop.DBus.Peer",
)
ALPHABET = "abcdefghijklmnopqrstuvwxyz0123456789-_.@:/ \t\n\x01\x7fäé中😀\u202e'\"$;`"
ALLOWED_ROOT_ERRORS = {
    "io.github.hotspotguard.Error.InvalidArgument",
    "org.freedesktop.DBus.Error.InvalidArgs",
    "org.freedesktop.DBus.Error.UnknownMethod",
    "org.freedesktop.DBus.Error.UnknownObject",
    "org.freedesktop.DBus.Error.AccessDenied",  # the bus policy: other interfaces
}


def _invalid_iface(text: str) -> bool:
    try:
        validate_iface(text, must_exist=False)
    except OperationError:
        return True
    return False


def _invalid_fix_id(text: str) -> bool:
    try:
        validate_fix_id(text)
    except OperationError:
        return True
    return False


def _value(rng: random.Random, code: str) -> Any:
    """A value for one complete D-Bus type `code` (as dbus-next marshals it)."""
    if code == "s":
        return _string(rng)
    if code == "b":
        return rng.random() < 0.5
    if code in "iuxy":
        return rng.randrange(0, 256)
    if code == "d":
        return rng.random()
    if code == "o":
        return rng.choice(["/", "/io/github/hotspotguard/Helper1", "/a/b"])
    if code == "g":
        return rng.choice(["", "s", "a{sv}"])
    if code == "v":
        from dbus_next import Variant

        return Variant("s", _string(rng))
    if code == "as":
        return [_string(rng) for _ in range(rng.randrange(4))]
    if code == "aas":
        return [["x"], []]
    if code == "ay":
        return bytes(rng.randrange(256) for _ in range(rng.randrange(8)))
    if code in ("a{sv}", "a{ss}"):
        return {}
    if code == "(ss)":
        return [_string(rng), _string(rng)]
    if code == "(ssbs)":
        return ["lo", "docker-user", True, ""]
    raise AssertionError(code)


def _split(signature: str) -> list[str]:
    out, i = [], 0
    while i < len(signature):
        for length in (6, 5, 4, 3, 2, 1):
            part = signature[i : i + length]
            if part in ("(ssbs)", "a{sv}", "a{ss}", "(ss)", "aas", "as", "ay") or length == 1:
                out.append(part)
                i += len(part)
                break
    return out


def _string(rng: random.Random) -> str:
    if rng.random() < 0.5:
        return rng.choice(HOSTILE)
    return "".join(rng.choice(ALPHABET) for _ in range(rng.randrange(0, 24)))


def _bad_iface(rng: random.Random) -> str:
    while True:
        text = _string(rng)
        if _invalid_iface(text):
            return text


def _bad_fix_id(rng: random.Random) -> str:
    while True:
        text = rng.choice([_string(rng), "docker-user@" + _string(rng), _string(rng) + "@lo"])
        if text and _invalid_fix_id(text):
            return text


def _call(
    member: str,
    signature: str,
    body: list[Any],
    path: str = OBJECT_PATH,
    interface: str | None = INTERFACE,
) -> dict[str, Any]:
    return {"member": member, "signature": signature, "body": body, "path": path,
            "interface": interface}  # fmt: skip


def hostile_calls(rng: random.Random, n: int) -> list[dict[str, Any]]:
    """`n` calls none of which may reach an operation, whoever sends them."""
    out: list[dict[str, Any]] = []
    strategies = ["docker-user", "", "sysctl-forwarding"]
    while len(out) < n:
        kind = rng.randrange(9)
        if kind == 0:
            out.append(_call("PreviewFix", "ss", [_bad_iface(rng), rng.choice(strategies)]))
        elif kind == 1:
            strategy = rng.choice([_string(rng), "Docker-User", "x" * 65])
            if strategy and strategy not in strategies:
                out.append(_call("PreviewFix", "ss", ["lo", strategy]))
        elif kind == 2:
            args = ["lo", "docker-user", rng.random() < 0.5, ""]
            slot = rng.choice([0, 1, 3])
            args[slot] = {
                0: _bad_iface(rng),
                1: "nope" + _string(rng),
                3: "bad gen " + _string(rng),
            }[slot]
            out.append(_call("ApplyFix", "ssbs", args))
        elif kind == 3:
            member = rng.choice(["UndoFix", "SetPermanent"])
            fix = _bad_fix_id(rng)
            out.append(
                _call(member, METHODS[member], [fix] + ([True] if member == "SetPermanent" else []))
            )
        elif kind == 4:  # wrong signatures
            member = rng.choice(list(METHODS))
            signature = rng.choice([s for s in SIGNATURES if s != METHODS[member]])
            out.append(_call(member, signature, [_value(rng, c) for c in _split(signature)]))
        elif kind == 5:  # unknown methods
            member = rng.choice(["Apply", "applyfix", "ApplyFix2", "Reapply", "Persist", "Get",
                                 "_", "x" * 255, "Undo_All", "Introspect"])  # fmt: skip
            out.append(_call(member, "", []))
        elif kind == 6:  # our methods at other paths
            path = rng.choice(["/", "/io", "/io/github/hotspotguard", OBJECT_PATH + "/x",
                               "/io/github/hotspotguard/Helper2"])  # fmt: skip
            member = rng.choice(list(METHODS))
            out.append(
                _call(
                    member, METHODS[member], [_value(rng, c) for c in _split(METHODS[member])], path
                )
            )
        elif kind == 7:  # other interfaces (the bus policy or the helper refuses)
            interface = rng.choice(OTHER_INTERFACES)
            member = rng.choice(["Get", "GetAll", "Set", "ApplyFix", "Ping2"])
            out.append(_call(member, "ss", ["a", "b"], interface=interface))
        else:  # no interface at all
            out.append(_call(rng.choice(list(METHODS)), "", [], interface=None))
    return out


def unauthorised_calls(rng: random.Random, n: int, owner_fix: str) -> list[dict[str, Any]]:
    """Well-formed calls that would change something, and hostile ones, for `deny`/`read`."""
    changing = [
        _call("ApplyFix", "ssbs", ["hs0", "docker-user", True, ""]),
        _call("ApplyFix", "ssbs", ["hs0", "", False, ""]),
        _call("UndoFix", "s", [""]),
        _call("UndoFix", "s", [owner_fix]),
        _call("UndoAllFixes", "", []),
        _call("SetPermanent", "sb", [owner_fix, True]),
        _call("SetPermanent", "sb", [owner_fix, False]),
    ]
    out = [dict(c, interactive=True) for c in changing] * (n // (2 * len(changing)))
    hostile = [c for c in hostile_calls(rng, 2 * n) if not {"v", "y"} & set(c["signature"])]
    return out + hostile[: n - len(out)]  # (JSON for the user's client: no variants, no bytes)


def _message(call: dict[str, Any]) -> Message:
    return Message(
        destination=BUS_NAME,
        path=call["path"],
        interface=call["interface"],
        member=call["member"],
        signature=call["signature"],
        body=call["body"],
    )


async def _blast(address: str, calls: list[Message]) -> list[tuple[MessageType, str | None]]:
    buses = [await MessageBus(bus_address=address).connect() for _ in range(CONNECTIONS)]
    windows = [asyncio.Semaphore(WINDOW) for _ in buses]

    async def one(i: int, msg: Message) -> tuple[MessageType, str | None]:
        async with windows[i % CONNECTIONS]:
            reply = await buses[i % CONNECTIONS].call(msg)
        assert reply is not None
        return reply.message_type, reply.error_name

    try:
        return list(await asyncio.gather(*(one(i, m) for i, m in enumerate(calls))))
    finally:
        for bus in buses:
            bus.disconnect()


async def _nul_and_huge(address: str) -> tuple[bool, list[str | None]]:
    """A string with a NUL: the bus (not the helper) drops the sender.  Huge strings: refused."""
    bus = await MessageBus(bus_address=address).connect()
    dropped = False
    try:
        await asyncio.wait_for(
            bus.call(_message(_call("PreviewFix", "ss", ["lo\0x", "docker-user"]))), 5
        )
    except (EOFError, OSError):
        dropped = True
        with contextlib.suppress(EOFError, OSError):
            await bus.wait_for_disconnect()  # (retrieves the reader's exception)
    bus = await MessageBus(bus_address=address).connect()
    try:
        names = []
        for size in (1 << 20, 1 << 20, 8 << 20):
            reply = await bus.call(_message(_call("PreviewFix", "ss", ["x" * size, "docker-user"])))
            assert reply is not None
            names.append(reply.error_name)
        reply = await bus.call(_message(_call("UndoFix", "as", [["docker-user@lo"] * 100_000])))
        assert reply is not None
        names.append(reply.error_name)
    finally:
        bus.disconnect()
    return dropped, names


@pytest.fixture
def fixed(plab: PolkitLab) -> Iterator[PolkitLab]:
    """The docker hotspot with `allow`'s fix applied (another user's fix for the fuzzers)."""
    plab.docker_hotspot()
    answers = plab.run_client(
        plab.users["allow"], [{"method": "ApplyFix", "args": ["hs0", "docker-user", True, ""]}]
    )
    assert "ok" in answers[0], answers
    yield plab


def _state(lab: PolkitLab) -> tuple[str, str, list[str]]:
    record = lab.root / "var/lib/hotspotguard/fixes.json"
    files = sorted(
        str(p) for d in ("etc/systemd/system", "etc/NetworkManager/dispatcher.d")
        for p in (lab.root / d).rglob("*hotspotguard*")
    )  # fmt: skip
    return lab.ruleset(), record.read_text(), files


def test_ten_thousand_hostile_calls_change_nothing(fixed: PolkitLab) -> None:
    lab = fixed
    rng = random.Random(SEED)
    before = _state(lab)
    pid = lab.helper_pid()
    assert pid is not None
    t0 = time.monotonic()

    root_calls = hostile_calls(rng, ROOT_CALLS)
    results = asyncio.run(_blast(lab.bus_address, [_message(c) for c in root_calls]))
    dropped, huge = asyncio.run(_nul_and_huge(lab.bus_address))
    user_answers: dict[str, list[dict[str, Any]]] = {}
    for role in ("deny", "read"):
        calls = unauthorised_calls(rng, USER_CALLS, "docker-user@hs0")
        user_answers[role] = lab.run_client(lab.users[role], calls, timeout=120)
    elapsed = time.monotonic() - t0

    total = len(results) + len(huge) + 1 + sum(len(a) for a in user_answers.values())
    root_names = collections.Counter(name for _, name in results)
    user_names = collections.Counter(
        a.get("error") for a in [a for answers in user_answers.values() for a in answers]
    )
    print(
        f"\n{total} calls in {elapsed:.1f} s; root: {dict(root_names)}; users: {dict(user_names)}"
    )
    assert total >= 10_000
    assert all(kind == MessageType.ERROR for kind, _ in results)
    assert set(root_names) <= ALLOWED_ROOT_ERRORS, root_names
    assert dropped, "a NUL in a string reached somebody"
    assert huge == ["org.freedesktop.DBus.Error.LimitsExceeded"] * 4  # never decoded
    assert all("error" in a for a in [a for answers in user_answers.values() for a in answers]), (
        "an answer was not an error"
    )
    # a user's calls are served one at a time, MAX_QUEUED waiting: the rest of a burst is
    # refused at once (LimitsExceeded), before polkit is asked
    limited = "org.freedesktop.DBus.Error.LimitsExceeded"
    allowed_user = ALLOWED_ROOT_ERRORS | {"org.freedesktop.DBus.Error.AccessDenied", limited}
    assert set(user_names) <= allowed_user, user_names
    assert user_names["org.freedesktop.DBus.Error.AccessDenied"] >= 2 * 7
    refused = user_names["org.freedesktop.DBus.Error.AccessDenied"] + user_names[limited]
    assert refused >= 2 * 7 * (USER_CALLS // 14)

    assert lab.helper_pid() == pid, "the helper restarted (crashed?)"
    assert _state(lab) == before
    assert "Traceback" not in (lab.dir / "dbus.log").read_text(errors="replace")
