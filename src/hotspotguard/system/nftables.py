"""Reading the nftables ruleset fast: the document of ``nft -j list ruleset``, table by table.

Why not one ``list ruleset``: nft 1.0.6 fetches every rule of every table in one kernel dump,
and the kernel resumes that dump for each ~32 KiB chunk by walking again over all the rules
before it: the dump is quadratic in the size of the ruleset. One ``list table`` per table only
walks that table's rules, and two tables can be listed at once.

From the kernel directly (NETLINK_NETFILTER with a plain socket and ``struct``; importing
pyroute2 alone costs 0.2 s of start-up):

- :func:`generation`: the ruleset's generation id (NFT_MSG_GETGEN, ~30 µs), which every
  committed change bumps; a watcher can poll it to know whether a snapshot is still current (or
  listen to the NFNLGRP_NFTABLES multicast group for the changes themselves);
- :func:`list_tables` / :func:`tables`: the tables (NFT_MSG_GETTABLE, ~50 µs), where
  ``nft list tables`` builds nft's whole cache in 1.0.6 (7 s at 100,000 rules).

:func:`list_ruleset_json` reads the generation, lists the tables, lists each table (the
biggest first, two at a time), merges them in the kernel's order (the order ``list ruleset``
prints) and reads the generation again: if it moved, the parts may come from different rulesets
and it starts over; after :data:`ATTEMPTS` tries it takes one ``list ruleset`` (atomic: nft
retries it until the generation holds). One table alone is listed with ``list ruleset`` too.

Measured (5 tables: iptables-nft's ip filter/nat and ip6 filter, NetworkManager's table, a big
``inet custom`` with named sets and anonymous sets; benchmarks/bigruleset.py; 2 CPUs)::

    rules     nft -j list ruleset   libnftables list ruleset   list_ruleset_json()
    300       15 ms                 8.8 ms                     8.1 ms
    1,000     46 ms                 32 ms                      25 ms
    10,000    0.54 s                0.44 s                     0.29 s
    100,000   11.1 s                11.8 s                     6.6-7.3 s

Table by table is not slower even for small rulesets (equal at ~200 rules, 1-2 ms worse only
for a few dozen rules spread over many tables), so there is no size threshold. At 100,000 rules
the biggest table alone sets the pace (6 s of the custom table: 3 s of it are the kernel
looking up each of its 10,000 anonymous sets by name, a linear search per set).

Pitfall — libnftables 1.0.6 is not thread-safe, not even with one context per thread: its cache
of interface names (used to print ``iif``/``oif`` values) is one process-wide list, filled on
demand and freed at the end of every command. Two threads listing tables with ``iif``/``oif``
rules print wrong names and crash (measured: a segmentation fault within seconds). So one
libnftables call at a time runs in this process (:data:`LIBNFTABLES_LOCK`, for every other
caller too), and the second lister is an ``nft`` child process, started only when the listing
takes longer than :data:`HELPER_DELAY`.
"""

from __future__ import annotations

import ctypes
import json
import os
import shutil
import socket
import struct
import subprocess
import threading
import time
import zlib
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from functools import cache
from types import ModuleType
from typing import Any, Final, NoReturn

from hotspotguard.gcpause import gc_paused

Json = dict[str, Any]

CLEAN_ENV: Final = {"PATH": "/usr/sbin:/usr/bin:/sbin:/bin", "LC_ALL": "C"}
LIBNFTABLES_SONAME: Final = "libnftables.so.1"
#: how many times the table-by-table listing is tried before one (atomic) ``list ruleset``
ATTEMPTS = 3
#: tables listed at once: this process (libnftables) and WORKERS - 1 ``nft`` children
WORKERS = 2
#: seconds the in-process listing works alone before an ``nft`` child joins in (starting one
#: costs ~2 ms: a ruleset of a few hundred rules is listed before a child would be of help)
HELPER_DELAY = 0.010
#: Held around every libnftables call of this process (see the module's docstring).
LIBNFTABLES_LOCK: Final = threading.Lock()

# netlink / nfnetlink
NETLINK_NETFILTER: Final = 12
NFNL_SUBSYS_NFTABLES: Final = 10
NFNETLINK_V0: Final = 0
NLM_F_REQUEST: Final = 0x1
NLM_F_MULTI: Final = 0x2
NLM_F_DUMP_INTR: Final = 0x10
NLM_F_DUMP: Final = 0x300
NLMSG_ERROR: Final = 2
NLMSG_DONE: Final = 3
NLMSG_MIN_TYPE: Final = 0x10
NFT_MSG_GETTABLE: Final = 1
NFT_MSG_GETCHAIN: Final = 4
NFT_MSG_GETRULE: Final = 7
NFT_MSG_GETSET: Final = 10
NFT_MSG_GETGEN: Final = 16
NFTA_TABLE_NAME: Final = 1
NFTA_TABLE_USE: Final = 3
NFTA_CHAIN_TABLE: Final = 1
NFTA_CHAIN_HANDLE: Final = 2
NFTA_CHAIN_NAME: Final = 3
NFTA_CHAIN_HOOK: Final = 4
NFTA_RULE_TABLE: Final = 1
NFTA_RULE_CHAIN: Final = 2
NFTA_RULE_HANDLE: Final = 3
NFTA_RULE_EXPRESSIONS: Final = 4
NFTA_LIST_ELEM: Final = 1
NFTA_EXPR_NAME: Final = 1
NFTA_EXPR_DATA: Final = 2
NFTA_QUOTA_CONSUMED: Final = 4
NFTA_SET_TABLE: Final = 1
NFTA_GEN_ID: Final = 1
#: the multicast group of ruleset change notifications (for a watcher: bind to 1 << (7 - 1))
NFNLGRP_NFTABLES: Final = 7

#: nftables families by NFPROTO_* number, as nft names them
FAMILIES: Final = {1: "inet", 2: "ip", 3: "arp", 5: "netdev", 7: "bridge", 10: "ip6"}
_FAMILY_NUMBERS: Final = {name: number for number, name in FAMILIES.items()}

_NLMSGHDR = struct.Struct("=IHHII")
_NFGENMSG = struct.Struct("=BBH")
_NLA = struct.Struct("=HH")
_ERRNO = struct.Struct("=i")
_BE32 = struct.Struct(">I")
_BE64 = struct.Struct(">Q")
_RECV_SIZE = 1 << 16  # the kernel fills at most ~32 KiB per dump message batch
_TIMEOUT = 10.0  # seconds for one netlink answer
_LIST_RULESET: Final = {"list": {"ruleset": None}}


class NftablesError(RuntimeError):
    """The ruleset could not be read; the message is one line for a person."""


class DumpInterrupted(NftablesError):
    """A netlink dump was interrupted by changes every time it was tried (a storm)."""


class NotListed(NftablesError):
    """One listing failed: most often, what it names is gone (see :func:`list_items`)."""


@dataclass(frozen=True)
class Table:
    """A table as the kernel lists it: family, name, and its use count (its chains, named sets,
    objects and flowtables — not its rules: a rough hint of its size, nothing more)."""

    family: str
    name: str
    use: int


# ---------------------------------------------------------------------------------------------
# raw nfnetlink
# ---------------------------------------------------------------------------------------------


def netlink_attributes(payload: bytes, offset: int) -> dict[int, bytes]:
    """Netlink attributes from `offset` of a message payload, by type (flags masked off)."""
    return dict(_attribute_list(payload, offset))


def _attribute_list(payload: bytes, offset: int) -> Iterator[tuple[int, bytes]]:
    """(type, value) of each netlink attribute from `offset`, in order (a nested list repeats
    its type)."""
    while offset + _NLA.size <= len(payload):
        length, attr_type = _NLA.unpack_from(payload, offset)
        if length < _NLA.size:
            break
        yield attr_type & 0x3FFF, payload[offset + _NLA.size : offset + length]
        offset += (length + 3) & ~3


def _netlink_error(code: int, what: str) -> OSError:
    """An OSError for a kernel errno (``OSError`` picks the subclass: PermissionError, …)."""
    hint = " (reading the ruleset needs root)" if code in (1, 13) else ""
    return OSError(code, f"{what}: {os.strerror(code)}{hint}")


def _attribute(kind: int, text: str) -> bytes:
    """One netlink string attribute (NUL-terminated, padded to 4 bytes)."""
    value = text.encode(errors="surrogateescape") + b"\0"
    padding = b"\0" * (-(len(value)) % 4)
    return _NLA.pack(_NLA.size + len(value), kind) + value + padding


def _request(
    msg: int, flags: int, what: str, family: int = socket.AF_UNSPEC, attributes: bytes = b""
) -> tuple[list[bytes], bool]:
    """Send one nf_tables request (all families, or `family`'s, with `attributes`); the
    payloads of its answer, and whether the kernel flagged a dump as interrupted by a change
    (NLM_F_DUMP_INTR)."""
    seq = int(time.monotonic_ns()) & 0x7FFFFFFF
    body = _NFGENMSG.pack(family, NFNETLINK_V0, 0) + attributes
    header = _NLMSGHDR.pack(
        _NLMSGHDR.size + len(body), (NFNL_SUBSYS_NFTABLES << 8) | msg, flags, seq, 0
    )
    dump = flags & NLM_F_DUMP == NLM_F_DUMP
    payloads: list[bytes] = []
    interrupted = False
    try:
        sock = socket.socket(
            socket.AF_NETLINK, socket.SOCK_RAW | socket.SOCK_CLOEXEC, NETLINK_NETFILTER
        )
    except OSError as exc:
        raise NftablesError(f"{what}: no nfnetlink socket ({exc.strerror})") from exc
    with sock:
        sock.settimeout(_TIMEOUT)
        try:
            sock.bind((0, 0))
            sock.send(header + body)
        except OSError as exc:
            raise _netlink_error(exc.errno or 0, what) from exc
        portid = sock.getsockname()[0]
        buf = bytearray(_RECV_SIZE)
        while True:
            try:
                n = sock.recv_into(buf, 0, socket.MSG_TRUNC)
            except TimeoutError as exc:
                raise NftablesError(f"{what}: the kernel did not answer") from exc
            if n > len(buf):
                raise NftablesError(f"{what}: a netlink message of {n} bytes was truncated")
            offset = 0
            while offset + _NLMSGHDR.size <= n:
                length, mtype, mflags, mseq, mpid = _NLMSGHDR.unpack_from(buf, offset)
                if length < _NLMSGHDR.size or offset + length > n:
                    raise NftablesError(f"{what}: a malformed netlink message")
                start, offset = offset + _NLMSGHDR.size, offset + ((length + 3) & ~3)
                if mseq != seq or mpid not in (0, portid):
                    continue  # not the answer to this request
                interrupted |= bool(mflags & NLM_F_DUMP_INTR)
                if mtype in (NLMSG_ERROR, NLMSG_DONE):
                    has_code = length >= _NLMSGHDR.size + _ERRNO.size
                    code = -_ERRNO.unpack_from(buf, start)[0] if has_code else 0
                    if code:
                        raise _netlink_error(code, what)
                    return payloads, interrupted
                if mtype < NLMSG_MIN_TYPE:
                    continue  # NLMSG_NOOP and the like
                payloads.append(bytes(buf[start : start - _NLMSGHDR.size + length]))
                if not dump and not mflags & NLM_F_MULTI:
                    return payloads, interrupted


def generation() -> int:
    """The ruleset's generation id (NFT_MSG_GETGEN). Every committed change — a rule, a set
    element added by a daemon, a whole ``nft -f`` batch — bumps it; equal ids before and after
    a listing mean that no change happened in between."""
    payloads, _ = _request(NFT_MSG_GETGEN, NLM_F_REQUEST, "reading the ruleset generation")
    for payload in payloads:
        value = netlink_attributes(payload, _NFGENMSG.size).get(NFTA_GEN_ID)
        if value is not None and len(value) >= 4:
            return int(_BE32.unpack_from(value)[0])
    raise NftablesError("reading the ruleset generation: the kernel sent no generation id")


def tables() -> list[Table]:
    """Every table of every family, in the kernel's order (the order ``nft list ruleset``
    prints them in), from one NFT_MSG_GETTABLE dump."""
    for _ in range(ATTEMPTS * 3):
        payloads, interrupted = _request(
            NFT_MSG_GETTABLE, NLM_F_REQUEST | NLM_F_DUMP, "listing the nftables tables"
        )
        if not interrupted:
            break
    found: list[Table] = []
    for payload in payloads:
        attrs = netlink_attributes(payload, _NFGENMSG.size)
        name = attrs.get(NFTA_TABLE_NAME, b"").split(b"\0", 1)[0]
        use = attrs.get(NFTA_TABLE_USE, b"")
        family = FAMILIES.get(payload[0], str(payload[0]))
        found.append(
            Table(
                family,
                name.decode(errors="surrogateescape"),
                int(_BE32.unpack_from(use)[0]) if len(use) >= 4 else 0,
            )
        )
    return found


def _dump(msg: int, what: str, family: str, attributes: bytes) -> list[bytes]:
    """A consistent dump of one family (retried while the kernel flags it interrupted)."""
    number = _FAMILY_NUMBERS.get(family)
    if number is None:
        raise NftablesError(f"{what}: unknown family {family}")
    for _ in range(ATTEMPTS * 3):
        payloads, interrupted = _request(msg, NLM_F_REQUEST | NLM_F_DUMP, what, number, attributes)
        if not interrupted:
            return payloads
    raise DumpInterrupted(f"{what}: the ruleset kept changing")


def _name(value: bytes | None) -> str:
    return (value or b"").split(b"\0", 1)[0].decode(errors="surrogateescape")


def rule_handles(family: str, table: str, chain: str) -> list[int]:
    """The handles of a chain's rules, in the chain's order, straight from the kernel (one
    NFT_MSG_GETRULE dump of that chain, ~1 ms for hundreds of rules: their expressions are
    not decoded). Where ``nft list chain`` also fetches every set of the table with its
    elements (seconds in a table with thousands of anonymous sets)."""
    attributes = _attribute(NFTA_RULE_TABLE, table) + _attribute(NFTA_RULE_CHAIN, chain)
    payloads = _dump(NFT_MSG_GETRULE, f"listing the rules of {chain}", family, attributes)
    handles: list[int] = []
    for payload in payloads:
        attrs = netlink_attributes(payload, _NFGENMSG.size)
        if _name(attrs.get(NFTA_RULE_TABLE)) != table or _name(attrs.get(NFTA_RULE_CHAIN)) != chain:
            continue
        handle = attrs.get(NFTA_RULE_HANDLE, b"")
        if len(handle) >= 8:
            handles.append(int(_BE64.unpack_from(handle)[0]))
    return handles


def quota_usage(family: str, table: str, chain: str) -> dict[int, list[int]]:
    """The bytes each quota statement of the chain's rules has counted, by rule handle, in the
    rule's order (one NFT_MSG_GETRULE dump of the chain, only the quota expressions decoded):
    what a stateless listing leaves out. {} when the chain is gone or kept changing meanwhile
    (the caller's generation check sees that change)."""
    attributes = _attribute(NFTA_RULE_TABLE, table) + _attribute(NFTA_RULE_CHAIN, chain)
    try:
        payloads = _dump(NFT_MSG_GETRULE, f"reading the quotas of {chain}", family, attributes)
    except (FileNotFoundError, DumpInterrupted):
        return {}
    except OSError as exc:  # raised while a parser iterates: one kind of error to catch
        raise NftablesError(f"cannot read the ruleset: {exc}") from exc
    usage: dict[int, list[int]] = {}
    for payload in payloads:
        attrs = netlink_attributes(payload, _NFGENMSG.size)
        if _name(attrs.get(NFTA_RULE_TABLE)) != table or _name(attrs.get(NFTA_RULE_CHAIN)) != chain:
            continue
        handle = attrs.get(NFTA_RULE_HANDLE, b"")
        expressions = attrs.get(NFTA_RULE_EXPRESSIONS, b"")
        if len(handle) < 8 or b"quota\0" not in expressions:
            continue
        consumed = []
        for kind, element in _attribute_list(expressions, 0):
            expression = netlink_attributes(element, 0) if kind == NFTA_LIST_ELEM else {}
            if _name(expression.get(NFTA_EXPR_NAME)) == "quota":
                data = netlink_attributes(expression.get(NFTA_EXPR_DATA, b""), 0)
                value = data.get(NFTA_QUOTA_CONSUMED, b"")
                consumed.append(int(_BE64.unpack_from(value)[0]) if len(value) >= 8 else 0)
        usage[int(_BE64.unpack_from(handle)[0])] = consumed
    return usage


def _data_unit(count: int) -> tuple[int, str]:
    """A byte count as nft prints it: divided by 1024 while it divides, up to mbytes."""
    units = ("bytes", "kbytes", "mbytes")
    index = 0
    while count and index < len(units) - 1 and count % 1024 == 0:
        count //= 1024
        index += 1
    return count, units[index]


def _with_quota_usage(items: Iterator[Any]) -> Iterator[Any]:
    """A stateless listing's objects with each quota statement's used bytes put back, as the
    stateful listing prints them ("used"/"used_unit" after the rest, when not 0): read from
    the kernel for the chains whose rules have one (:func:`quota_usage`)."""
    usage: dict[tuple[str, str, str], dict[int, list[int]]] = {}
    for item in items:
        rule = item.get("rule") if isinstance(item, dict) else None
        exprs = rule.get("expr") if isinstance(rule, dict) else None
        if isinstance(rule, dict) and isinstance(exprs, list):
            quotas = [
                s["quota"]
                for s in exprs
                if isinstance(s, dict) and isinstance(s.get("quota"), dict)
            ]
            if quotas:
                key = (str(rule.get("family")), str(rule.get("table")), str(rule.get("chain")))
                if key not in usage:
                    usage[key] = quota_usage(*key)
                consumed = usage[key].get(rule.get("handle"), [])  # type: ignore[arg-type]
                for body, count in zip(quotas, consumed, strict=False):
                    if count:
                        body["used"], body["used_unit"] = _data_unit(count)
        yield item


@dataclass(frozen=True)
class ChainInfo:
    """A chain as the kernel lists it: its name and whether it is a base chain (on a hook)."""

    name: str
    base: bool


def chains(family: str, table: str) -> list[ChainInfo]:
    """The chains of one table in the kernel's order (the order nft lists them in), from one
    NFT_MSG_GETCHAIN dump of the family (~µs a chain)."""
    payloads = _dump(NFT_MSG_GETCHAIN, f"listing the chains of {table}", family, b"")
    found: list[ChainInfo] = []
    for payload in payloads:
        attrs = netlink_attributes(payload, _NFGENMSG.size)
        if _name(attrs.get(NFTA_CHAIN_TABLE)) == table:
            found.append(ChainInfo(_name(attrs.get(NFTA_CHAIN_NAME)), NFTA_CHAIN_HOOK in attrs))
    return found


def set_counts() -> dict[tuple[str, str], int]:
    """How many sets each table has, anonymous ones included (one NFT_MSG_GETSET dump, no
    elements): what a ``list chain`` of the table costs in nft 1.0.6, which fetches them all
    with their elements."""
    for _ in range(ATTEMPTS * 3):
        payloads, interrupted = _request(
            NFT_MSG_GETSET, NLM_F_REQUEST | NLM_F_DUMP, "listing the nftables sets"
        )
        if not interrupted:
            break
    counts: dict[tuple[str, str], int] = {}
    for payload in payloads:
        table = _name(netlink_attributes(payload, _NFGENMSG.size).get(NFTA_SET_TABLE))
        key = (FAMILIES.get(payload[0], str(payload[0])), table)
        counts[key] = counts.get(key, 0) + 1
    return counts


def list_tables() -> list[tuple[str, str]]:
    """(family, name) of every table, in the order ``nft list ruleset`` prints them."""
    return [(table.family, table.name) for table in tables()]


# ---------------------------------------------------------------------------------------------
# listing through libnftables (in this process) or nft (a child process)
# ---------------------------------------------------------------------------------------------


class _ListingFailed(Exception):
    """One listing command failed (e.g. its table went away meanwhile)."""


#: runs one nft command given as JSON; returns what nft printed (JSON)
Lister = Callable[[bytes], bytes]


@cache
def _libnftables() -> ModuleType | None:
    """pip-nftables, if it imports and libnftables.so.1 loads; None otherwise."""
    try:
        import nftables
    except ImportError:
        return None
    try:
        # load it first: Nftables() failing half-way prints an "Exception ignored" from __del__
        ctypes.CDLL(LIBNFTABLES_SONAME)
        with LIBNFTABLES_LOCK:
            nftables.Nftables(sofile=LIBNFTABLES_SONAME)
    except (OSError, AttributeError):  # libnftables.so.1 missing, or not the expected API
        return None
    module: ModuleType = nftables
    return module


def _nft_binary() -> str | None:
    return shutil.which("nft", path=CLEAN_ENV["PATH"])


class _Libnftables:
    """The few libnftables (and libc) calls a listing needs, through ctypes: pip-nftables only
    buffers the output (nft_ctx_buffer_output), which :func:`_lib_lister` must not do."""

    def __init__(self) -> None:
        lib = ctypes.CDLL(LIBNFTABLES_SONAME)
        libc = ctypes.CDLL(None, use_errno=True)
        ptr, uint = ctypes.c_void_p, ctypes.c_uint
        self.ctx_new = _function(lib.nft_ctx_new, ptr, [ctypes.c_uint32])
        self.ctx_free = _function(lib.nft_ctx_free, None, [ptr])
        self.set_flags = _function(lib.nft_ctx_output_set_flags, None, [ptr, uint])
        self.set_output = _function(lib.nft_ctx_set_output, ptr, [ptr, ptr])
        self.buffer_error = _function(lib.nft_ctx_buffer_error, ctypes.c_int, [ptr])
        self.error_buffer = _function(lib.nft_ctx_get_error_buffer, ctypes.c_char_p, [ptr])
        self.run = _function(lib.nft_run_cmd_from_buffer, ctypes.c_int, [ptr, ctypes.c_char_p])
        self.fdopen = _function(libc.fdopen, ptr, [ctypes.c_int, ctypes.c_char_p])
        self.fclose = _function(libc.fclose, ctypes.c_int, [ptr])


def _function(function: Any, restype: Any, argtypes: list[Any]) -> Any:
    function.restype = restype
    function.argtypes = argtypes
    return function


#: nft_ctx_new's flags (NFT_CTX_DEFAULT) and the JSON output flag (NFT_CTX_OUTPUT_JSON)
_NFT_CTX_DEFAULT: Final = 0
_NFT_CTX_OUTPUT_JSON: Final = 1 << 4
#: NFT_CTX_OUTPUT_STATELESS: no counters' values, no quotas' used bytes (see list_stream)
_NFT_CTX_OUTPUT_STATELESS: Final = 1 << 2
_PIPE_READ = 1 << 16


@cache
def _bindings() -> _Libnftables:
    return _Libnftables()


def _lib_lister(module: ModuleType, stateless: bool = False) -> Lister:
    """Commands through libnftables in this process, one at a time, each in a fresh context
    (~70 µs; freed at once, where a kept context would hold the cache of a whole table).

    nft prints its JSON while its whole JSON tree (and its cache of the table) is alive: a
    buffered output (what pip-nftables does) would add the text on top of them — 18 MB for
    the 50,000-rule table of the 100k benchmark, at the very peak. So the output goes to a
    pipe whose reader thread keeps it compressed (zlib level 1: 0.98 MB for those 18 MB), and
    the text is inflated once libnftables has freed its tree: the same bytes, 16 MB lower peak.
    (``module``: pip-nftables, proof that libnftables loads; the calls are made here;
    ``stateless``: nft's ``-s``.)"""
    del module
    lib = _bindings()
    flags = _NFT_CTX_OUTPUT_JSON | (_NFT_CTX_OUTPUT_STATELESS if stateless else 0)

    def run(command: bytes) -> bytes:
        read_fd, write_fd = os.pipe()
        chunks: list[bytes] = []
        failed: list[BaseException] = []

        def drain() -> None:
            packer = zlib.compressobj(1)
            while chunk := os.read(read_fd, _PIPE_READ):
                if not failed:  # after a failure it still reads: nft must never block
                    try:
                        chunks.append(packer.compress(chunk))
                    except BaseException as exc:  # handed to the calling thread
                        failed.append(exc)
            if not failed:
                chunks.append(packer.flush())

        reader = threading.Thread(target=drain, name="nft-output", daemon=True)
        try:
            reader.start()
        except BaseException:
            os.close(read_fd)
            os.close(write_fd)
            raise
        try:
            with LIBNFTABLES_LOCK:
                stream = lib.fdopen(write_fd, b"w")
                if not stream:
                    os.close(write_fd)
                    raise NftablesError("cannot read the ruleset: no stream for nft's output")
                context = lib.ctx_new(_NFT_CTX_DEFAULT)
                try:
                    lib.set_flags(context, flags)
                    lib.buffer_error(context)
                    lib.set_output(context, stream)
                    rc = lib.run(context, command)
                    error = bytes(lib.error_buffer(context) or b"")
                finally:
                    lib.fclose(stream)  # flushes, closes write_fd: the reader sees the end
                    lib.ctx_free(context)  # touches the shared interface cache too
        finally:
            reader.join()
            os.close(read_fd)
        if failed:
            raise failed[0]
        if rc != 0:
            _raise_listing_error(error.decode(errors="replace"))
        return zlib.decompress(b"".join(chunks))

    return run


def _nft_lister(binary: str, stateless: bool = False) -> Lister:
    """Commands through an ``nft`` child process each (clean environment)."""
    options = ["-j", "-s"] if stateless else ["-j"]

    def run(command: bytes) -> bytes:
        proc = subprocess.run(
            [binary, *options, command.decode()],
            capture_output=True,
            stdin=subprocess.DEVNULL,
            env=CLEAN_ENV,
            check=False,
        )
        if proc.returncode != 0:
            _raise_listing_error(proc.stderr.decode(errors="replace"))
        return proc.stdout

    return run


def _raise_listing_error(error: str) -> NoReturn:
    message = error.strip().splitlines()[0] if error.strip() else "nft failed without a message"
    if "Operation not permitted" in error:
        raise PermissionError(1, f"cannot read the ruleset: {message} (it needs root)")
    raise _ListingFailed(message)


def _command(what: Json) -> bytes:
    """One nft command as JSON input: any table name works, keywords included (``nft list
    table ip fwd`` is a syntax error, the JSON form is not)."""
    return json.dumps({"nftables": [what]}).encode()


def _decode(output: bytes) -> list[Any]:
    """The objects of one listing (the caller pauses the GC)."""
    if not output.strip():
        return []
    try:
        doc = json.loads(output)
    except ValueError as exc:
        raise NftablesError(f"cannot read the ruleset: nft printed invalid JSON ({exc})") from exc
    items = doc.get("nftables") if isinstance(doc, dict) else None
    if not isinstance(items, list):
        raise NftablesError("cannot read the ruleset: nft printed no nftables JSON document")
    return items


def _list_each_table(todo: Sequence[Table], listers: Sequence[Lister]) -> list[list[Any]]:
    """Each table's listing (its objects, metainfo first), in ``todo``'s order.

    The biggest tables (by use count) go first, each to whichever lister is free. ``listers[0]``
    runs in the calling thread; the others (``nft`` children) join in only once it has been busy
    for :data:`HELPER_DELAY`, so a small ruleset never pays for starting a process."""
    order = sorted(range(len(todo)), key=lambda i: -todo[i].use)
    results: list[list[Any] | None] = [None] * len(todo)
    lock = threading.Lock()
    finished = threading.Event()  # all taken, or a lister failed

    def work(lister: Lister) -> None:
        try:
            while not finished.is_set():
                with lock:
                    if not order:
                        break
                    index = order.pop(0)
                table = todo[index]
                listing = {"list": {"table": {"family": table.family, "name": table.name}}}
                results[index] = _decode(lister(_command(listing)))
        finally:
            finished.set()

    errors: list[BaseException] = []

    def helper(lister: Lister) -> None:
        try:
            if not finished.wait(HELPER_DELAY):
                work(lister)
        except BaseException as exc:  # handed to the calling thread
            errors.append(exc)

    threads = [
        threading.Thread(target=helper, args=(lister,), name="nft-list", daemon=True)
        for lister in (listers[1:] if len(todo) > 1 else ())
    ]
    for thread in threads:
        thread.start()
    try:
        work(listers[0])
    finally:
        for thread in threads:
            thread.join()
    if errors:
        raise errors[0]
    missing = [f"{todo[i].family} {todo[i].name}" for i, r in enumerate(results) if r is None]
    if missing:
        raise _ListingFailed(f"not listed: {', '.join(missing)}")
    return [part for part in results if part is not None]


def _merge(parts: Sequence[list[Any]]) -> Json:
    """One document of the per-table listings: one metainfo, then each table's objects (nft
    prints a table's objects together: table, objects, sets, flowtables, chains, rules)."""
    merged: list[Any] = []
    for part in parts:
        if part and isinstance(part[0], dict) and "metainfo" in part[0]:
            if not merged:
                merged.append(part[0])
            part = part[1:]
        merged += part
    return {"nftables": merged}


def _run_nft_ruleset() -> Json:
    """``nft -j list ruleset`` as a child process (when libnftables cannot be loaded)."""
    binary = _nft_binary()
    if binary is None:
        raise NftablesError("cannot read the ruleset: neither libnftables nor nft is installed")
    proc = subprocess.run(
        [binary, "-j", "list", "ruleset"],
        capture_output=True,
        stdin=subprocess.DEVNULL,
        env=CLEAN_ENV,
        check=False,
    )
    if proc.returncode != 0:
        error = proc.stderr.decode(errors="replace").strip()
        if "Operation not permitted" in error:
            raise PermissionError(1, "cannot read the ruleset: nft needs root")
        raise NftablesError(f"cannot read the ruleset: nft says {error[:200]}")
    return {"nftables": _decode(proc.stdout)}


def list_ruleset_json() -> Json:
    """Exactly the document ``nft -j list ruleset`` prints, decoded; read table by table.

    Raises PermissionError without the right to read the ruleset (root, or CAP_NET_ADMIN in
    the network namespace), NftablesError when it cannot be read for another reason."""
    module = _libnftables()
    with gc_paused():
        if module is None:
            return _run_nft_ruleset()
        lib = _lib_lister(module)
        binary = _nft_binary()
        listers = [lib] if binary is None else [lib] + [_nft_lister(binary)] * (WORKERS - 1)
        for _ in range(ATTEMPTS):
            before = generation()
            todo = tables()
            if len(todo) < 2 or any(t.family not in FAMILIES.values() for t in todo):
                break  # nothing to gain (or a family nft has no name for): one list ruleset
            try:
                parts = _list_each_table(todo, listers)
            except _ListingFailed:
                if generation() == before:
                    break  # not a change of the ruleset: let list ruleset tell what is wrong
                continue
            if generation() == before:
                return _merge(parts)
        try:
            return {"nftables": _decode(lib(_command(_LIST_RULESET)))}
        except _ListingFailed as exc:
            raise NftablesError(f"cannot read the ruleset: {exc}") from exc


def list_stream(what: Json, stateless: bool = False) -> Iterator[Any]:
    """As :func:`list_items`, but each object is decoded only when it is consumed: the decoded
    listing of a big table never exists whole (its text does, once), so a parser that drops
    each object as it goes holds one at a time. Errors come at once (NotListed, …), or, for
    JSON that nft printed wrong, while iterating (NftablesError).

    ``stateless``: listed as ``nft -s`` does (no counter values: 8 MiB less at the peak of the
    100,000-rule benchmark's big table, 442 against 450 MiB), with the one state the parser
    reads put back from the kernel: the used bytes of quota statements (a rule's quota shows
    them in the trace; :func:`quota_usage`, only for the chains that have one). So the objects
    equal the stateful listing's, but for counters (``{"counter": null}``) and the state of
    set elements and of statements inside other statements, which the model does not keep."""
    output = _one_listing(what, stateless)
    text = output.decode(errors="surrogateescape")
    del output
    if stateless and '"quota": {' in text:
        return _with_quota_usage(_objects(text))
    return _objects(text)


def _objects(text: str) -> Iterator[Any]:
    start = text.find("[", text.find('"nftables"'))
    if start < 0:
        if text.strip():
            raise NftablesError("cannot read the ruleset: nft printed no nftables JSON document")
        return
    decoder = json.JSONDecoder()
    index, end = start + 1, len(text)
    while True:
        while index < end and text[index] in " \t\r\n,":
            index += 1
        if index >= end:
            raise NftablesError("cannot read the ruleset: nft's JSON ends early")
        if text[index] == "]":
            return
        try:
            item, index = decoder.raw_decode(text, index)
        except ValueError as exc:
            raise NftablesError(
                f"cannot read the ruleset: nft printed invalid JSON ({exc})"
            ) from exc
        yield item


def _one_listing(what: Json, stateless: bool = False) -> bytes:
    module = _libnftables()
    binary = _nft_binary()
    if module is not None:
        lister = _lib_lister(module, stateless)
    elif binary is not None:
        lister = _nft_lister(binary, stateless)
    else:
        raise NftablesError("cannot read the ruleset: neither libnftables nor nft is installed")
    try:
        return lister(_command({"list": what}))
    except _ListingFailed as exc:
        raise NotListed(str(exc)) from exc


def trim_heap() -> None:
    """Give the C heap's free memory back to the system (glibc's malloc_trim): libnftables
    frees a table's cache after listing it, but glibc would keep it for C allocations that
    never come (Python's objects live in their own arenas)."""
    try:
        libc = ctypes.CDLL(None)
        libc.malloc_trim(0)
    except (OSError, AttributeError):  # not glibc
        pass


@dataclass(frozen=True)
class Prelisted:
    """The biggest table, listed (stateless, see :func:`list_stream`) before anything else:
    the generation read before it, the tables the kernel had then, and its objects."""

    generation: int
    tables: list[Table]
    table: Table
    objects: Iterator[Any]


def prelist() -> Prelisted | None:
    """The biggest table's listing, for a process to take before it imports its parser and
    engine: libnftables' peak for that table (its cache and its whole JSON tree, 428 MiB for
    the 50,000-rule table of the 100,000-rule benchmark) then comes on top of an interpreter
    that has loaded little (15 MiB, where the CLI with the engine holds 28 MiB). None when
    there is nothing to list or it fails: the reading that follows says what is wrong."""
    try:
        before = generation()
        listed = tables()
        if not listed:
            return None
        biggest = max(listed, key=lambda t: t.use)  # the first of the biggest, as sorted()
        objects = list_stream({"table": {"family": biggest.family, "name": biggest.name}}, True)
    except (NftablesError, OSError):
        return None
    trim_heap()
    return Prelisted(before, listed, biggest, objects)


def list_items(what: Json) -> list[Any]:
    """The objects of one ``nft -j list …`` command, e.g. ``{"chain": {"family": "ip",
    "table": "filter", "name": "FORWARD"}}`` (the chain with its rules), ``{"set": …}``,
    ``{"table": …}``: libnftables in this process, else an ``nft`` child. NotListed when nft
    refuses (the object is gone, most often), PermissionError without the right to read."""
    module = _libnftables()
    binary = _nft_binary()
    if module is not None:
        lister = _lib_lister(module)
    elif binary is not None:
        lister = _nft_lister(binary)
    else:
        raise NftablesError("cannot read the ruleset: neither libnftables nor nft is installed")
    with gc_paused():
        try:
            return _decode(lister(_command({"list": what})))
        except _ListingFailed as exc:
            raise NotListed(str(exc)) from exc
