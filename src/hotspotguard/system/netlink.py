"""What the kernel tells a watcher when something that matters to a hotspot changes.

Three sources, each a file descriptor an asyncio loop waits on (``loop.add_reader``), so the
watcher sleeps in ``epoll_wait`` with no timer at all while nothing changes (no polling):

``ruleset``
    A NETLINK_NETFILTER socket in the multicast group NFNLGRP_NFTABLES: every committed
    nftables transaction — ``nft``, iptables-nft, ebtables-nft, firewalld, a daemon adding set
    elements — sends its objects there, then an NFT_MSG_NEWGEN. :class:`RulesetChanges`
    collects what they name (from each message's header attributes: family, table, chain,
    set, rule handle; rule expressions are never decoded) and the last generation id, so a
    watcher can re-read only what changed.
``rtnetlink`` (kinds ``link``, ``address``, ``route``, ``sysctl``)
    A NETLINK_ROUTE socket in the groups of links (the hotspot or docker0 appearing or going),
    IPv4/IPv6 addresses, IPv4/IPv6 routes (only default routes are reported: they name the
    uplinks) and IPv4/IPv6 *netconf*: writing ``net.ipv4.ip_forward``,
    ``net.ipv6.conf.all.forwarding`` or ``net.ipv4.conf.IFACE.forwarding`` sends an
    RTM_NEWNETCONF (checked on Linux 6.1), so the forwarding switches need no polling either.
    Other sysctls send nothing (and /proc/sys cannot be watched with inotify: its files change
    no inode); the snapshot re-reads the forwarding sysctls on every evaluation anyway.
``legacy``
    iptables-legacy changes go through the old setsockopt interface and send no netlink event
    at all. Every iptables/ip6tables(-legacy) command and ``-restore`` opens and flocks
    ``/run/xtables.lock`` (``XTABLES_LOCKFILE`` overrides the path) for its whole run and closes
    it when it exits, after its commit: an inotify watch for IN_CLOSE_* on that file fires just
    after each legacy change. Verified in a network namespace (the lock file is global, so the
    legacy changes of *every* namespace fire it; so do legacy listings such as ``iptables -L``:
    harmless: :func:`legacy_tables` lets a watcher ignore them while its own namespace has no
    legacy table, else it re-evaluates and finds nothing new). ``iptables-legacy-save`` and
    iptables-nft take no lock, so the watcher's own capture never triggers itself.
    Gaps: a program that drives libiptc/setsockopt itself without taking the lock (old
    firewall daemons, custom tools), arptables/ebtables-legacy (their own locks), or one run with
    a different ``XTABLES_LOCKFILE`` is not seen until the next other event.

Overflows: a burst (Docker starting 100 containers) can fill a socket's receive buffer; the
kernel then drops messages and recv() fails with ENOBUFS. That is reported as a change too
(kind ``overflow``): whatever was lost, a fresh snapshot covers it.

Plain ``socket`` + ``struct`` + ctypes' inotify: importing pyroute2 alone costs 0.2 s.
"""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import errno
import os
import socket
import struct
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Final

from hotspotguard.system.nftables import (
    FAMILIES,
    NETLINK_NETFILTER,
    NFNLGRP_NFTABLES,
    netlink_attributes,
)

NETLINK_ROUTE: Final = 0
# rtnetlink message types
RTM_NEWLINK, RTM_DELLINK = 16, 17
RTM_NEWADDR, RTM_DELADDR = 20, 21
RTM_NEWROUTE, RTM_DELROUTE = 24, 25
RTM_NEWRULE, RTM_DELRULE = 32, 33
RTM_NEWNETCONF, RTM_DELNETCONF = 80, 81
NLMSG_MIN_TYPE: Final = 0x10
# rtnetlink multicast groups (RTNLGRP_*), bound as 1 << (group - 1)
RTNLGRP_LINK: Final = 1
RTNLGRP_IPV4_IFADDR: Final = 5
RTNLGRP_IPV4_ROUTE: Final = 7
RTNLGRP_IPV4_RULE: Final = 8
RTNLGRP_IPV6_IFADDR: Final = 9
RTNLGRP_IPV6_ROUTE: Final = 11
RTNLGRP_IPV6_RULE: Final = 19
RTNLGRP_IPV4_NETCONF: Final = 24
RTNLGRP_IPV6_NETCONF: Final = 25
RT_TABLE_DEFAULT, RT_TABLE_MAIN = 253, 254

#: the lock every iptables(-legacy) command takes (iptables' XT_LOCK_NAME)
XTABLES_LOCK: Final = "/run/xtables.lock"
IN_CLOSE_WRITE: Final = 0x08
IN_CLOSE_NOWRITE: Final = 0x10
IN_ATTRIB: Final = 0x04
IN_DELETE_SELF: Final = 0x400
IN_MOVE_SELF: Final = 0x800
IN_IGNORED: Final = 0x8000
_LOCK_MASK: Final = IN_CLOSE_WRITE | IN_CLOSE_NOWRITE | IN_DELETE_SELF | IN_MOVE_SELF

_NLMSGHDR = struct.Struct("=IHHII")
_RTMSG = struct.Struct("=BBBBBBBBI")  # family, dst_len, src_len, tos, table, protocol, ...
_INOTIFY_EVENT = struct.Struct("=iIII")
_RECV_SIZE = 1 << 16
_RCVBUF = 1 << 20  # a bigger buffer overflows later; an overflow is still only a change

#: what changed: "ruleset", "link", "address", "route", "sysctl", "legacy", "overflow"
Kinds = frozenset[str]

# nf_tables message types (enum nf_tables_msg_types) and the attributes read from them
NFNL_SUBSYS_NFTABLES: Final = 10
NFT_MSG_NEWTABLE, NFT_MSG_DELTABLE = 0, 2
NFT_MSG_NEWCHAIN, NFT_MSG_DELCHAIN = 3, 5
NFT_MSG_NEWRULE, NFT_MSG_DELRULE = 6, 8
NFT_MSG_NEWSET, NFT_MSG_DELSET = 9, 11
NFT_MSG_NEWSETELEM, NFT_MSG_DELSETELEM = 12, 14
NFT_MSG_NEWGEN: Final = 15
NFT_MSG_DESTROYTABLE, NFT_MSG_DESTROYCHAIN, NFT_MSG_DESTROYRULE = 26, 27, 28
NFT_MSG_DESTROYSET, NFT_MSG_DESTROYSETELEM = 29, 30
_TABLE_MSGS = frozenset({NFT_MSG_NEWTABLE, NFT_MSG_DELTABLE, NFT_MSG_DESTROYTABLE})
_CHAIN_MSGS = frozenset({NFT_MSG_NEWCHAIN, NFT_MSG_DELCHAIN, NFT_MSG_DESTROYCHAIN})
_RULE_MSGS = frozenset({NFT_MSG_NEWRULE, NFT_MSG_DELRULE, NFT_MSG_DESTROYRULE})
_RULE_DELS = frozenset({NFT_MSG_DELRULE, NFT_MSG_DESTROYRULE})
_SET_MSGS = frozenset({NFT_MSG_NEWSET, NFT_MSG_DELSET, NFT_MSG_DESTROYSET})
_ELEM_MSGS = frozenset({NFT_MSG_NEWSETELEM, NFT_MSG_DELSETELEM, NFT_MSG_DESTROYSETELEM})
_NFGENMSG = struct.Struct("=BBH")
_NLA = struct.Struct("=HH")
_BE32 = struct.Struct(">I")
_BE32S = struct.Struct(">i")
_BE64 = struct.Struct(">Q")

#: a table: (family, name); a chain or a set: (family, table, name)
TableKey = tuple[str, str]
ObjectKey = tuple[str, str, str]

#: hook numbers of the ip, ip6, inet and bridge families (NF_INET_*, NF_BR_* alike); the
#: others (netdev, arp, inet's ingress: devices) are not taken from notifications
_HOOKS: Final = {0: "prerouting", 1: "input", 2: "forward", 3: "output", 4: "postrouting"}
_HOOK_FAMILIES: Final = frozenset({"ip", "ip6", "inet", "bridge"})
_POLICIES: Final = {0: "drop", 1: "accept"}  # NF_DROP, NF_ACCEPT


@dataclass(frozen=True)
class BaseChain:
    """A base chain's attributes as its NFT_MSG_NEWCHAIN carries them (what a change of
    its policy needs: the rest must equal what the model has)."""

    hook: str
    type: str
    priority: int
    policy: str


def base_chain(family: str, attrs: dict[int, bytes]) -> BaseChain | None:
    """The base chain's attributes of a NEWCHAIN's attributes; None: not a base chain, or
    one whose attributes are not all there or are beyond :data:`_HOOKS` (devices)."""
    hook, policy, kind = attrs.get(4), attrs.get(5), attrs.get(7)  # NFTA_CHAIN_{HOOK,POLICY,TYPE}
    if family not in _HOOK_FAMILIES or hook is None or policy is None or kind is None:
        return None
    nested = netlink_attributes(hook, 0)
    number, priority = nested.get(1), nested.get(2)  # NFTA_HOOK_HOOKNUM, NFTA_HOOK_PRIORITY
    if number is None or priority is None or len(number) < 4 or len(priority) < 4 or 3 in nested:
        return None  # NFTA_HOOK_DEV: a device's hook
    name = _HOOKS.get(_BE32.unpack_from(number)[0])
    verdict = _POLICIES.get(_BE32.unpack_from(policy)[0]) if len(policy) >= 4 else None
    if name is None or verdict is None:
        return None
    prio = _BE32S.unpack_from(priority)[0]
    return BaseChain(name, _text(kind), prio, verdict)


@dataclass
class RulesetChanges:
    """What the ruleset notifications named since the last :meth:`take`.

    ``tables``: tables added, deleted or changed (their flags); ``chains``: chains added or
    changed themselves (policy, rename) — read alone (system.incremental); ``deleted_chains``:
    chains deleted (dropped from the model: the kernel deletes only a chain nothing jumps to);
    ``added_rules``: rule handles added to a chain (their order comes from the kernel, their
    expressions from nft's decoding of the same notifications, see system.nftmonitor);
    ``deleted_rules``: rule handles deleted (dropped from the model without reading
    anything); ``base_chains``: the attributes the last NEWCHAIN of a chain in ``chains``
    carried, where it is a base chain (its policy is taken from there: no listing);
    ``sets``: named sets created, deleted or with elements added or removed
    (anonymous sets belong to their rule: its chain covers them); ``generation``: the id of
    the last NFT_MSG_NEWGEN; ``lost``: a message was lost (ENOBUFS) or could not be read —
    only a full capture is right."""

    tables: set[TableKey] = field(default_factory=set)
    chains: set[ObjectKey] = field(default_factory=set)
    deleted_chains: set[ObjectKey] = field(default_factory=set)
    added_rules: dict[ObjectKey, set[int]] = field(default_factory=dict)
    deleted_rules: dict[ObjectKey, set[int]] = field(default_factory=dict)
    sets: set[ObjectKey] = field(default_factory=set)
    generation: int | None = None
    lost: bool = False
    messages: int = 0
    base_chains: dict[ObjectKey, BaseChain | None] = field(default_factory=dict)

    def __bool__(self) -> bool:
        return bool(self.messages or self.lost)

    def take(self) -> RulesetChanges:
        """These changes, leaving this collector empty (the generation stays known)."""
        taken = RulesetChanges(
            self.tables,
            self.chains,
            self.deleted_chains,
            self.added_rules,
            self.deleted_rules,
            self.sets,
            self.generation,
            self.lost,
            self.messages,
            self.base_chains,
        )
        self.tables, self.chains, self.deleted_chains, self.sets = set(), set(), set(), set()
        self.added_rules, self.deleted_rules, self.base_chains = {}, {}, {}
        self.lost, self.messages = False, 0
        return taken

    def merge(self, other: RulesetChanges) -> None:
        """Add `other`'s changes (a newer batch) to these."""
        self.tables |= other.tables
        self.chains |= other.chains
        self.deleted_chains |= other.deleted_chains
        for key, handles in other.added_rules.items():
            self.added_rules.setdefault(key, set()).update(handles)
        for key, handles in other.deleted_rules.items():
            self.deleted_rules.setdefault(key, set()).update(handles)
        self.sets |= other.sets
        self.base_chains.update(other.base_chains)
        if other.generation is not None:
            self.generation = other.generation
        self.lost |= other.lost
        self.messages += other.messages

    def add_message(self, mtype: int, payload: bytes) -> None:
        """Note one nf_tables notification (the nfgenmsg header and its attributes)."""
        self.messages += 1
        if len(payload) < _NFGENMSG.size:
            self.lost = True
            return
        family = FAMILIES.get(payload[0], str(payload[0]))
        attrs = netlink_attributes(payload, _NFGENMSG.size)
        if mtype == NFT_MSG_NEWGEN:
            value = attrs.get(1)  # NFTA_GEN_ID
            if value is not None and len(value) >= 4:
                self.generation = int(_BE32.unpack_from(value)[0])
            return
        if mtype in _TABLE_MSGS:  # NFTA_TABLE_NAME
            self.tables.add((family, _text(attrs.get(1))))
            return
        table = _text(attrs.get(1))  # NFTA_{CHAIN,RULE,SET,SET_ELEM_LIST}_TABLE
        if mtype in _CHAIN_MSGS:
            # a new chain or an updated one (policy, rename) is read alone; the reader reads
            # the table instead when a chain it knows was renamed (system.incremental)
            chain = attrs.get(3)  # NFTA_CHAIN_NAME
            if chain is None:
                self.tables.add((family, table))
            elif mtype == NFT_MSG_NEWCHAIN:
                key = (family, table, _text(chain))
                self.chains.add(key)
                self.base_chains[key] = base_chain(family, attrs)
            else:
                self.deleted_chains.add((family, table, _text(chain)))
        elif mtype in _RULE_MSGS:
            key = (family, table, _text(attrs.get(2)))  # NFTA_RULE_CHAIN
            handle = attrs.get(3)  # NFTA_RULE_HANDLE
            if handle is None or len(handle) < 8:
                self.chains.add(key)
            elif mtype in _RULE_DELS:
                self.deleted_rules.setdefault(key, set()).add(_BE64.unpack_from(handle)[0])
            else:
                self.added_rules.setdefault(key, set()).add(_BE64.unpack_from(handle)[0])
        elif mtype in _SET_MSGS or mtype in _ELEM_MSGS:
            name = _text(attrs.get(2))  # NFTA_SET_NAME, NFTA_SET_ELEM_LIST_SET
            if not name.startswith("__"):  # __set%d, __map%d: anonymous, part of a rule
                self.sets.add((family, table, name))
        # objects, flowtables: not part of the model (a table's deletion says so itself)


def _text(value: bytes | None) -> str:
    return (value or b"").split(b"\0", 1)[0].decode(errors="surrogateescape")


def ruleset_messages(data: bytes, changes: RulesetChanges) -> bool:
    """Add the nf_tables notifications of one recv() to `changes`; whether there were any."""
    got = False
    offset = 0
    while offset + _NLMSGHDR.size <= len(data):
        length, mtype, _, _, _ = _NLMSGHDR.unpack_from(data, offset)
        if length < _NLMSGHDR.size:
            changes.lost = True
            break
        if mtype >> 8 == NFNL_SUBSYS_NFTABLES:
            changes.add_message(mtype & 0xFF, data[offset + _NLMSGHDR.size : offset + length])
            got = True
        offset += (length + 3) & ~3
    return got


def legacy_tables() -> bool:
    """Whether this network namespace has any iptables-legacy (x_tables) table: a legacy event
    that comes while there is none (before and after) was another namespace's."""
    for name in ("ip_tables_names", "ip6_tables_names"):
        try:
            with open(f"/proc/net/{name}") as handle:
                if handle.read().strip():
                    return True
        except OSError:
            continue  # the module is not loaded: no table
    return False


def _groups(*groups: int) -> int:
    mask = 0
    for group in groups:
        mask |= 1 << (group - 1)
    return mask


def _netlink_socket(protocol: int, groups: int) -> socket.socket:
    sock = socket.socket(
        socket.AF_NETLINK, socket.SOCK_RAW | socket.SOCK_NONBLOCK | socket.SOCK_CLOEXEC, protocol
    )
    try:
        try:  # SO_RCVBUFFORCE (root) goes beyond net.core.rmem_max
            sock.setsockopt(socket.SOL_SOCKET, 33, _RCVBUF)
        except OSError:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, _RCVBUF)
        sock.bind((0, groups))
    except BaseException:
        sock.close()
        raise
    return sock


def _rtnetlink_kinds(data: bytes | None) -> set[str]:
    kinds: set[str] = set()
    if data is None:
        return kinds
    offset = 0
    while offset + _NLMSGHDR.size <= len(data):
        length, mtype, _, _, _ = _NLMSGHDR.unpack_from(data, offset)
        if length < _NLMSGHDR.size:
            break
        body = offset + _NLMSGHDR.size
        if mtype in (RTM_NEWLINK, RTM_DELLINK):
            kinds.add("link")
        elif mtype in (RTM_NEWADDR, RTM_DELADDR):
            kinds.add("address")
        elif mtype in (RTM_NEWNETCONF, RTM_DELNETCONF):
            kinds.add("sysctl")
        elif mtype in (RTM_NEWROUTE, RTM_DELROUTE) and body + _RTMSG.size <= len(data):
            table = _RTMSG.unpack_from(data, body)[4]
            if table in (RT_TABLE_MAIN, RT_TABLE_DEFAULT):  # the uplinks, fib's lookups
                kinds.add("route")
        elif mtype in (RTM_NEWRULE, RTM_DELRULE):  # policy routing: fib's lookups
            kinds.add("route")
        offset += (length + 3) & ~3
    return kinds


class _Inotify:
    """An inotify watch on the xtables lock file (created if missing, as iptables itself does:
    root-only, empty), re-armed when the file is deleted or replaced."""

    def __init__(self, path: str) -> None:
        self.path = path
        self._libc = ctypes.CDLL(None, use_errno=True)
        fd = int(self._libc.inotify_init1(os.O_NONBLOCK | os.O_CLOEXEC))
        if fd < 0:
            code = ctypes.get_errno()
            raise OSError(code, f"inotify_init1: {os.strerror(code)}")
        self.fd = fd
        try:
            self._arm()
        except BaseException:
            os.close(fd)
            raise

    def _arm(self) -> None:
        os.close(os.open(self.path, os.O_RDONLY | os.O_CREAT | os.O_CLOEXEC, 0o600))
        wd = int(self._libc.inotify_add_watch(self.fd, os.fsencode(self.path), _LOCK_MASK))
        if wd < 0:
            code = ctypes.get_errno()
            raise OSError(code, f"watching {self.path}: {os.strerror(code)}")

    def read(self) -> bool:
        """Drain the events; True if the lock was used (or replaced)."""
        fired = False
        while True:
            try:
                data = os.read(self.fd, _RECV_SIZE)
            except BlockingIOError:
                return fired
            offset = 0
            while offset + _INOTIFY_EVENT.size <= len(data):
                _, mask, _, name_len = _INOTIFY_EVENT.unpack_from(data, offset)
                offset += _INOTIFY_EVENT.size + name_len
                fired = True
                if mask & IN_IGNORED:  # deleted or moved away: watch the new file
                    with contextlib.suppress(OSError):  # /run gone? nothing left to watch
                        self._arm()

    def close(self) -> None:
        os.close(self.fd)


class KernelEvents:
    """The kernel's change notifications, delivered to ``on_change(kinds)`` from an asyncio
    loop (or by calling :meth:`read` after waiting on :meth:`fileno_list` yourself).

    ``ruleset``/``rtnetlink``/``legacy`` choose the sources; :attr:`gaps` lists, one line each
    for a person, the sources that could not be opened (the others still work)."""

    def __init__(
        self,
        on_change: Callable[[Kinds], None],
        *,
        ruleset: bool = True,
        rtnetlink: bool = True,
        legacy: bool = True,
        lock_path: str | None = None,
    ) -> None:
        self.on_change = on_change
        self.gaps: list[str] = []
        #: what the ruleset notifications named (the watcher takes them at each evaluation)
        self.changes = RulesetChanges()
        self._nft: socket.socket | None = None
        self._rt: socket.socket | None = None
        self._inotify: _Inotify | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        if ruleset:
            try:
                self._nft = _netlink_socket(NETLINK_NETFILTER, _groups(NFNLGRP_NFTABLES))
            except OSError as exc:
                self.gaps.append(f"no ruleset change notifications: {exc.strerror or exc}")
        if rtnetlink:
            groups = _groups(
                RTNLGRP_LINK,
                RTNLGRP_IPV4_IFADDR,
                RTNLGRP_IPV6_IFADDR,
                RTNLGRP_IPV4_ROUTE,
                RTNLGRP_IPV6_ROUTE,
                RTNLGRP_IPV4_RULE,
                RTNLGRP_IPV6_RULE,
                RTNLGRP_IPV4_NETCONF,
                RTNLGRP_IPV6_NETCONF,
            )
            try:
                self._rt = _netlink_socket(NETLINK_ROUTE, groups)
            except OSError as exc:
                self.gaps.append(f"no interface change notifications: {exc.strerror or exc}")
        if legacy:
            path = lock_path or os.environ.get("XTABLES_LOCKFILE") or XTABLES_LOCK
            try:
                self._inotify = _Inotify(path)
            except OSError as exc:
                self.gaps.append(f"iptables-legacy changes go unseen ({path}: {exc.strerror})")

    def fileno_list(self) -> list[int]:
        files: Iterable[socket.socket | _Inotify | None] = (self._nft, self._rt, self._inotify)
        return [f.fileno() if isinstance(f, socket.socket) else f.fd for f in files if f]

    def read(self) -> Kinds:
        """Drain every source without blocking; what changed (empty: nothing)."""
        kinds: set[str] = set()
        if self._nft is not None and self._drain(self._nft, self._ruleset_kinds, kinds):
            kinds.add("ruleset")
        if self._rt is not None:
            self._drain(self._rt, _rtnetlink_kinds, kinds)
        if self._inotify is not None and self._inotify.read():
            kinds.add("legacy")
        return frozenset(kinds)

    def _ruleset_kinds(self, data: bytes | None) -> set[str]:
        if data is None:  # lost messages: only a full capture is right now
            self.changes.lost = True
        else:
            ruleset_messages(data, self.changes)
        return set()

    @staticmethod
    def _drain(
        sock: socket.socket, parse: Callable[[bytes | None], set[str]], kinds: set[str]
    ) -> bool:
        got = False
        while True:
            try:
                data = sock.recv(_RECV_SIZE)
            except BlockingIOError:
                return got
            except OSError as exc:
                if exc.errno == errno.ENOBUFS:  # messages were lost: something changed
                    kinds.add("overflow")
                    parse(None)
                    got = True
                    continue
                raise
            got = True
            kinds |= parse(data)

    def _ready(self) -> None:
        kinds = self.read()
        if kinds:
            self.on_change(kinds)

    def attach(self, loop: asyncio.AbstractEventLoop) -> None:
        """Have ``loop`` call ``on_change`` whenever a source has something (no timers)."""
        self._loop = loop
        for fd in self.fileno_list():
            loop.add_reader(fd, self._ready)

    def close(self) -> None:
        if self._loop is not None and not self._loop.is_closed():
            for fd in self.fileno_list():
                self._loop.remove_reader(fd)
        self._loop = None
        for sock in (self._nft, self._rt):
            if sock is not None:
                sock.close()
        if self._inotify is not None:
            self._inotify.close()
        self._nft = self._rt = None
        self._inotify = None

    def __enter__(self) -> KernelEvents:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
