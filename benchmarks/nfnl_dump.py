"""A raw nfnetlink dump of the whole nftables ruleset (the kernel side of the floor).

Speaks NETLINK_NETFILTER with a plain socket: dump requests for tables, chains, sets, objects,
flowtables and rules (all families at once, NFPROTO_UNSPEC), then one set-element dump per set —
anonymous sets (``__set%d``, one per ``{ … }`` in a rule) included, as ``nft`` does. Nothing is
decoded beyond what the element requests need (the names of the sets): this measures how fast
the kernel hands the ruleset over, the bound for any userspace client (``nft``, libnftables,
pyroute2, or a future direct reader in hotspotguard).
"""

from __future__ import annotations

import os
import socket
import struct
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

from hotspotguard.system.nftables import netlink_attributes

NETLINK_NETFILTER = 12
NFNL_SUBSYS_NFTABLES = 10
NLM_F_REQUEST = 0x1
NLM_F_DUMP = 0x300
NLMSG_ERROR = 2
NLMSG_DONE = 3
SOL_NETLINK = 270
NETLINK_EXT_ACK = 11

NFT_MSG_GETTABLE = 1
NFT_MSG_GETCHAIN = 4
NFT_MSG_GETRULE = 7
NFT_MSG_GETSET = 10
NFT_MSG_GETSETELEM = 13
NFT_MSG_GETGEN = 16
NFT_MSG_GETOBJ = 19
NFT_MSG_GETFLOWTABLE = 23

NFTA_SET_TABLE = 1
NFTA_SET_NAME = 2
NFTA_SET_ELEM_LIST_TABLE = 1
NFTA_SET_ELEM_LIST_SET = 2
NFTA_CHAIN_TABLE = 1
NFTA_CHAIN_NAME = 3
NFTA_RULE_TABLE = 1
NFTA_RULE_CHAIN = 2
NFTA_GEN_ID = 1
NFTA_TABLE_NAME = 1
NFTA_TABLE_USE = 3

_NLMSGHDR = struct.Struct("=IHHII")
_NFGENMSG = struct.Struct("=BBH")
_NLA = struct.Struct("=HH")


@dataclass
class DumpStats:
    """What one dump request returned."""

    messages: int = 0
    nbytes: int = 0
    seconds: float = 0.0
    #: recv() calls: the kernel fills one buffer (≤ 32 KiB, less when memory is fragmented) per
    #: dump callback, and a rule dump walks all the rules before the resume point on each one
    recvs: int = 0


@dataclass
class RulesetDump:
    """The raw messages of a whole-ruleset dump, by kind, with their timings."""

    stats: dict[str, DumpStats] = field(default_factory=dict)
    raw: dict[str, list[bytes]] = field(default_factory=dict)
    sets: list[tuple[int, str, str]] = field(default_factory=list)

    @property
    def seconds(self) -> float:
        return sum(s.seconds for s in self.stats.values())

    @property
    def nbytes(self) -> int:
        return sum(s.nbytes for s in self.stats.values())


def _nla(attr_type: int, value: bytes) -> bytes:
    data = _NLA.pack(_NLA.size + len(value), attr_type) + value
    return data + b"\0" * (-len(data) % 4)


class NfnlSocket:
    """A NETLINK_NETFILTER socket that runs dump requests, one at a time."""

    def __init__(self, rcvbuf: int = 1 << 24) -> None:
        self.sock = socket.socket(socket.AF_NETLINK, socket.SOCK_RAW, NETLINK_NETFILTER)
        try:
            self.sock.setsockopt(socket.SOL_SOCKET, 33, rcvbuf)  # SO_RCVBUFFORCE (root)
        except OSError:
            self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
        self.sock.bind((0, 0))
        self.seq = int(time.time()) & 0xFFFF
        self.buf = bytearray(1 << 20)

    def close(self) -> None:
        self.sock.close()

    def __enter__(self) -> NfnlSocket:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()

    def dump(self, msg: int, family: int = 0, attrs: bytes = b"") -> tuple[list[bytes], DumpStats]:
        """Send one dump request; return the payloads of its answer messages."""
        self.seq += 1
        body = _NFGENMSG.pack(family, 0, 0) + attrs
        header = _NLMSGHDR.pack(
            _NLMSGHDR.size + len(body),
            (NFNL_SUBSYS_NFTABLES << 8) | msg,
            NLM_F_REQUEST | NLM_F_DUMP,
            self.seq,
            0,
        )
        stats = DumpStats()
        out: list[bytes] = []
        start = time.perf_counter()
        self.sock.send(header + body)
        view = memoryview(self.buf)
        while True:
            n = self.sock.recv_into(self.buf)
            stats.nbytes += n
            stats.recvs += 1
            offset = 0
            while offset + _NLMSGHDR.size <= n:
                length, mtype, _flags, seq, _pid = _NLMSGHDR.unpack_from(self.buf, offset)
                if length < _NLMSGHDR.size:
                    break
                if seq == self.seq:
                    if mtype == NLMSG_DONE:
                        stats.seconds = time.perf_counter() - start
                        return out, stats
                    if mtype == NLMSG_ERROR:
                        (err,) = struct.unpack_from("=i", self.buf, offset + _NLMSGHDR.size)
                        if err:
                            raise OSError(-err, os.strerror(-err))
                    else:
                        out.append(bytes(view[offset + _NLMSGHDR.size : offset + length]))
                        stats.messages += 1
                offset += (length + 3) & ~3


def generation_id() -> int:
    """The ruleset's generation id (NFT_MSG_GETGEN): it changes with every committed change,
    so a reader can tell in microseconds whether a cached snapshot is still current."""
    with NfnlSocket() as nl:
        nl.seq += 1
        body = _NFGENMSG.pack(0, 0, 0)
        header = _NLMSGHDR.pack(
            _NLMSGHDR.size + len(body),
            (NFNL_SUBSYS_NFTABLES << 8) | NFT_MSG_GETGEN,
            NLM_F_REQUEST,
            nl.seq,
            0,
        )
        nl.sock.send(header + body)
        n = nl.sock.recv_into(nl.buf)
        _length, mtype, _flags, _seq, _pid = _NLMSGHDR.unpack_from(nl.buf, 0)
        payload = bytes(nl.buf[_NLMSGHDR.size : n])
    if mtype == NLMSG_ERROR:
        (err,) = struct.unpack_from("=i", payload, 0)
        raise OSError(-err, os.strerror(-err))
    attrs = netlink_attributes(payload, _NFGENMSG.size)
    (gen,) = struct.unpack(">I", attrs[NFTA_GEN_ID][:4])
    return int(gen)


FAMILY_NAMES = {1: "inet", 2: "ip", 3: "arp", 5: "netdev", 7: "bridge", 10: "ip6"}


def list_tables() -> list[tuple[str, str, int]]:
    """(family, name, chain count) of every table, from one GETTABLE dump: well under a
    millisecond, where ``nft list tables`` (1.0.6) builds a full cache, rules included."""
    with NfnlSocket() as nl:
        payloads, _ = nl.dump(NFT_MSG_GETTABLE)
    tables = []
    for payload in payloads:
        attrs = netlink_attributes(payload, _NFGENMSG.size)
        name = attrs[NFTA_TABLE_NAME].rstrip(b"\0").decode()
        use = struct.unpack(">I", attrs[NFTA_TABLE_USE][:4])[0] if NFTA_TABLE_USE in attrs else 0
        tables.append((FAMILY_NAMES.get(payload[0], str(payload[0])), name, int(use)))
    return tables


def _names(payload: bytes, table_attr: int, name_attr: int) -> tuple[int, str, str]:
    attrs = netlink_attributes(payload, _NFGENMSG.size)
    table = attrs[table_attr].rstrip(b"\0").decode()
    return payload[0], table, attrs[name_attr].rstrip(b"\0").decode()


def _two_strings(first: int, a: str, second: int, b: str) -> bytes:
    return _nla(first, a.encode() + b"\0") + _nla(second, b.encode() + b"\0")


def _fetch_elements(
    sets: list[tuple[int, str, str]], keep_raw: bool
) -> tuple[DumpStats, list[bytes]]:
    stats = DumpStats()
    raw: list[bytes] = []
    with NfnlSocket() as nl:
        for family, table, set_name in sets:
            attrs = _two_strings(NFTA_SET_ELEM_LIST_TABLE, table, NFTA_SET_ELEM_LIST_SET, set_name)
            payloads, one = nl.dump(NFT_MSG_GETSETELEM, family, attrs)
            stats.messages += one.messages
            stats.nbytes += one.nbytes
            stats.recvs += one.recvs
            stats.seconds += one.seconds
            if keep_raw:
                raw += payloads
    return stats, raw


def dump_ruleset(
    keep_raw: bool = False, per_chain: bool = False, elem_workers: int = 1
) -> RulesetDump:
    """Dump everything ``nft list ruleset`` needs, straight from the kernel.

    ``per_chain``: one rule dump per chain (filtered by table and chain) instead of one dump of
    all rules; ``elem_workers``: fetch the set elements over that many sockets in parallel.
    """
    result = RulesetDump()
    chains: list[tuple[int, str, str]] = []
    with NfnlSocket() as nl:
        kinds = (
            ("tables", NFT_MSG_GETTABLE),
            ("chains", NFT_MSG_GETCHAIN),
            ("sets", NFT_MSG_GETSET),
            ("objects", NFT_MSG_GETOBJ),
            ("flowtables", NFT_MSG_GETFLOWTABLE),
        )
        for name, msg in kinds:
            payloads, stats = nl.dump(msg)
            result.stats[name] = stats
            if keep_raw:
                result.raw[name] = payloads
            if name == "sets":
                result.sets = [_names(p, NFTA_SET_TABLE, NFTA_SET_NAME) for p in payloads]
            if name == "chains":
                chains = [_names(p, NFTA_CHAIN_TABLE, NFTA_CHAIN_NAME) for p in payloads]
        if per_chain:
            rules = DumpStats()
            rule_raw: list[bytes] = []
            for family, table, chain in chains:
                attrs = _two_strings(NFTA_RULE_TABLE, table, NFTA_RULE_CHAIN, chain)
                payloads, one = nl.dump(NFT_MSG_GETRULE, family, attrs)
                rules.messages += one.messages
                rules.nbytes += one.nbytes
                rules.recvs += one.recvs
                rules.seconds += one.seconds
                if keep_raw:
                    rule_raw += payloads
            result.stats["rules"] = rules
            if keep_raw:
                result.raw["rules"] = rule_raw
        else:
            payloads, result.stats["rules"] = nl.dump(NFT_MSG_GETRULE)
            if keep_raw:
                result.raw["rules"] = payloads
    workers = max(1, min(elem_workers, len(result.sets)))
    start = time.perf_counter()
    if workers == 1:
        elems, elem_raw = _fetch_elements(result.sets, keep_raw)
    else:
        with ThreadPoolExecutor(workers) as pool:
            parts = list(
                pool.map(
                    _fetch_elements,
                    [result.sets[i::workers] for i in range(workers)],
                    [keep_raw] * workers,
                )
            )
        elems, elem_raw = DumpStats(), []
        for stats, raw in parts:
            elems.messages += stats.messages
            elems.nbytes += stats.nbytes
            elems.recvs += stats.recvs
            elem_raw += raw
    elems.seconds = time.perf_counter() - start  # wall time (workers overlap)
    result.stats["set_elements"] = elems
    if keep_raw:
        result.raw["set_elements"] = elem_raw
    return result


if __name__ == "__main__":
    import sys

    dump = dump_ruleset(
        per_chain="--per-chain" in sys.argv, elem_workers=2 if "-j2" in sys.argv else 1
    )
    for kind, s in dump.stats.items():
        print(
            f"{kind:13} {s.messages:8d} msgs {s.nbytes / 1e6:9.2f} MB {s.recvs:7d} recvs"
            f" {s.seconds * 1e3:9.1f} ms"
        )
    anonymous = sum(1 for _, _, name in dump.sets if name.startswith("__"))
    print(f"sets: {len(dump.sets)} ({anonymous} anonymous); total {dump.seconds * 1e3:.1f} ms")
    t = time.perf_counter()
    gen = generation_id()
    print(f"generation id {gen} read in {(time.perf_counter() - t) * 1e3:.2f} ms")
