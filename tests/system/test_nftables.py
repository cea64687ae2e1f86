"""hotspotguard.system.nftables against the real thing: ``nft -j list ruleset`` in a namespace.

Every kernel test builds its own network namespace (``hgn<pid>-…``, deleted afterwards even when
the test fails) and runs the code under test in a child process inside it (``ip netns exec``),
so the rules of the root namespace are never read nor touched.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import textwrap
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, TypeVar, cast

import pytest

from hotspotguard.system import nftables

SRC = Path(__file__).resolve().parents[2] / "src"
PREFIX = f"hgn{os.getpid()}"
TOOLS = ("ip", "nft", "iptables-nft-restore", "ip6tables-nft-restore")

F = TypeVar("F", bound=Callable[..., Any])


def kernel_test(func: F) -> F:
    """A test that needs root, network namespaces and the nftables/iptables-nft tools."""
    missing = [tool for tool in TOOLS if shutil.which(tool) is None]
    marked = pytest.mark.kernel(
        pytest.mark.skipif(os.geteuid() != 0, reason="needs root (network namespaces)")(
            pytest.mark.skipif(bool(missing), reason=f"needs {', '.join(missing)}")(func)
        )
    )
    return cast(F, marked)


# Every family, named sets and maps (interval, concatenation, verdict map), objects, anonymous
# sets, iif/oif (printed through libnftables' interface cache), a netdev chain on a device.
NFT_RULESET = """\
table ip filter4 {
	set blocked {
		type ipv4_addr
		flags interval
		elements = { 10.0.0.0/8, 192.168.1.1 }
	}
	map portmap {
		type inet_service : ipv4_addr
		elements = { 80 : 10.0.0.1, 443 : 10.0.0.2 }
	}
	map zones {
		type ifname : verdict
		elements = { "hs0" : jump from_hotspot }
	}
	counter cnt {
	}
	quota q {
		over 10 mbytes
	}
	chain from_hotspot {
		udp dport { 53, 67 } accept
	}
	chain input {
		type filter hook input priority filter; policy accept;
		iif "lo" accept
		ip saddr @blocked drop
		tcp dport { 22, 80, 443 } ct state new accept
		ip daddr { 10.1.0.0/16, 10.2.0.1 } counter drop
		iifname vmap @zones
		meta l4proto { tcp, udp } th dport 53 accept
		counter name "cnt"
		quota name "q" drop
	}
	chain pre {
		type nat hook prerouting priority dstnat; policy accept;
		iif "hs0" dnat to tcp dport map @portmap
	}
}
table ip6 filter6 {
	chain output {
		type filter hook output priority filter; policy accept;
		oif "hs0" ip6 daddr { 2001:db8::1, 2001:db8:1::/64 } reject
	}
}
table inet fw {
	set pairs {
		type ipv4_addr . inet_service
		elements = { 10.0.0.1 . 80 }
	}
	chain forward {
		type filter hook forward priority filter; policy accept;
		ct state { established, related } accept
		ip saddr . tcp dport @pairs accept
		iif "hs0" oif "up0" limit rate 10/second accept
	}
}
table netdev nd {
	chain ing {
		type filter hook ingress device "hs0" priority filter; policy accept;
		ether type arp accept
	}
}
table bridge br {
	chain c {
		type filter hook forward priority filter; policy accept;
	}
}
table arp a {
	chain c {
		type filter hook input priority filter; policy accept;
	}
}
"""

# iptables-nft: native matches and xt ones (conntrack, multiport, recent, physdev, LOG).
IPTABLES = """\
*filter
:INPUT ACCEPT [0:0]
:FORWARD DROP [0:0]
:OUTPUT ACCEPT [0:0]
:DOCKER - [0:0]
-A INPUT -i lo -j ACCEPT
-A INPUT -m conntrack --ctstate RELATED,ESTABLISHED -j ACCEPT
-A INPUT -p tcp -m multiport --dports 22,80,443 -j ACCEPT
-A INPUT -p tcp --dport 2222 -m recent --set --name ssh --rsource
-A INPUT -m limit --limit 5/min -j LOG --log-prefix "in: "
-A FORWARD -o docker0 -j DOCKER
-A FORWARD -i hs0 -m physdev --physdev-is-bridged -j ACCEPT
COMMIT
*nat
:PREROUTING ACCEPT [0:0]
:INPUT ACCEPT [0:0]
:OUTPUT ACCEPT [0:0]
:POSTROUTING ACCEPT [0:0]
-A POSTROUTING -s 172.17.0.0/16 ! -o docker0 -j MASQUERADE
COMMIT
"""
IP6TABLES = """\
*filter
:INPUT DROP [0:0]
:FORWARD DROP [0:0]
:OUTPUT ACCEPT [0:0]
-A INPUT -i lo -j ACCEPT
-A INPUT -p ipv6-icmp -j ACCEPT
-A INPUT -m conntrack --ctstate RELATED,ESTABLISHED -j ACCEPT
COMMIT
"""
# A table and a chain whose names nft's text syntax cannot take (a keyword; a space): the JSON
# commands of the module list them all the same.
ODD_NAMES = {
    "nftables": [
        {"add": {"table": {"family": "ip", "name": "fwd"}}},
        {"add": {"chain": {"family": "ip", "table": "fwd", "name": "my chain"}}},
    ]
}

# The code run inside a namespace: its last line of output is RESULT <json of `result`>.
PRELUDE = """\
import json, subprocess, sys
from hotspotguard.system import nftables as N

def nft(*args):
    return subprocess.run(
        ["nft", *args], check=True, capture_output=True, text=True
    ).stdout

def nft_doc():
    return json.loads(nft("-j", "list", "ruleset"))

def error_of(func):
    try:
        func()
    except Exception as exc:
        return {"type": type(exc).__name__, "message": str(exc)}
    return None

result = None
"""


def run(argv: list[str], stdin: str | None = None) -> subprocess.CompletedProcess[str]:
    proc = subprocess.run(argv, input=stdin, capture_output=True, text=True, timeout=120)
    if proc.returncode != 0:
        raise AssertionError(f"{' '.join(argv)} failed ({proc.returncode}): {proc.stderr}")
    return proc


def run_in(ns: str, body: str) -> Any:
    """Run PRELUDE + body with this interpreter inside ``ns``; the value ``body`` left in
    ``result``."""
    code = PRELUDE + textwrap.dedent(body) + '\nprint("RESULT " + json.dumps(result))\n'
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(SRC), *sys.path[1:]])}
    proc = subprocess.run(
        ["ip", "netns", "exec", ns, sys.executable, "-c", code],
        capture_output=True,
        text=True,
        timeout=300,
        env=env,
    )
    lines = [line for line in proc.stdout.splitlines() if line.startswith("RESULT ")]
    if proc.returncode != 0 or not lines:
        raise AssertionError(f"child failed ({proc.returncode}):\n{proc.stdout}\n{proc.stderr}")
    assert "Exception ignored" not in proc.stderr, proc.stderr
    return json.loads(lines[-1][len("RESULT ") :])


@pytest.fixture
def make_ns() -> Iterator[Callable[[str], str]]:
    """Creates namespaces ``hgn<pid>-TAG`` (with veths hs0, up0 and a bridge docker0, all
    down: no packet moves a counter); deletes them all afterwards."""
    created: list[str] = []

    def make(tag: str) -> str:
        name = f"{PREFIX}-{tag}"
        run(["ip", "netns", "add", name])
        created.append(name)
        for link in (
            ["hs0", "type", "veth", "peer", "name", "cl0"],
            ["up0", "type", "veth", "peer", "name", "wan0"],
            ["docker0", "type", "bridge"],
        ):
            run(["ip", "-n", name, "link", "add", *link])
        run(["ip", "-n", name, "link", "set", "lo", "up"])
        return name

    try:
        yield make
    finally:
        for name in created:
            subprocess.run(["ip", "netns", "del", name], capture_output=True, check=False)


def load(ns: str) -> None:
    """The mixed ruleset: iptables-nft's tables first (as at boot), then nft's, then the odd
    names."""
    run(["ip", "netns", "exec", ns, "iptables-nft-restore"], stdin=IPTABLES)
    run(["ip", "netns", "exec", ns, "ip6tables-nft-restore"], stdin=IP6TABLES)
    run(["ip", "netns", "exec", ns, "nft", "-f", "-"], stdin=NFT_RULESET)
    run(["ip", "netns", "exec", ns, "nft", "-j", json.dumps(ODD_NAMES)])


@pytest.fixture
def loaded(make_ns: Callable[[str], str]) -> str:
    ns = make_ns("mixed")
    load(ns)
    return ns


VOLATILE_ZERO = {"packets", "bytes", "used"}
VOLATILE_DROP = {"expires"}


def normalized(doc: Any) -> Any:
    """``doc`` without what moves on its own: counter and quota values, element expiry."""
    if isinstance(doc, dict):
        return {
            key: 0 if key in VOLATILE_ZERO and isinstance(value, int) else normalized(value)
            for key, value in doc.items()
            if key not in VOLATILE_DROP
        }
    if isinstance(doc, list):
        return [normalized(item) for item in doc]
    return doc


def ports_dropped(doc: Any) -> set[int]:
    """The ports of the ``tcp dport N drop`` rules the tests add to inet fw's forward chain."""
    ports = set()
    for item in doc["nftables"]:
        rule = item.get("rule")
        if rule and rule["table"] == "fw" and rule["expr"][-1] == {"drop": None}:
            ports.add(rule["expr"][0]["match"]["right"])
    return ports


def tables_of(doc: Any) -> list[tuple[str, str]]:
    return [
        (item["table"]["family"], item["table"]["name"])
        for item in doc["nftables"]
        if "table" in item
    ]


# Records whether the table-by-table listing ran and which lister listed what.
SPY = """\
calls = {"each_table": 0, "helper": 0, "ruleset_child": 0}
_each = N._list_each_table
def each_table(todo, listers):
    calls["each_table"] += 1
    return _each(todo, listers)
N._list_each_table = each_table
_nft_lister = N._nft_lister
def nft_lister(binary):
    inner = _nft_lister(binary)
    def run(command):
        calls["helper"] += 1
        return inner(command)
    return run
N._nft_lister = nft_lister
_ruleset_child = N._run_nft_ruleset
def ruleset_child():
    calls["ruleset_child"] += 1
    return _ruleset_child()
N._run_nft_ruleset = ruleset_child
"""


# ---------------------------------------------------------------------------------------------
# the document
# ---------------------------------------------------------------------------------------------


@kernel_test
@pytest.mark.parametrize(
    ("setup", "helper"),
    [
        ("", None),  # as configured (a ruleset this small is listed before a child would help)
        ("N.HELPER_DELAY = 0", True),  # an nft child lists tables too
        ("N.WORKERS = 1", False),  # this process alone
        ("N.WORKERS = 3; N.HELPER_DELAY = 0", True),  # two nft children besides this process
        ("N._nft_binary = lambda: None", False),  # no nft binary: this process alone
    ],
)
def test_document_is_the_one_nft_prints(loaded: str, setup: str, helper: bool | None) -> None:
    result = run_in(
        loaded,
        SPY
        + setup
        + """
doc = N.list_ruleset_json()
result = {"doc": doc, "ref": nft_doc(), "calls": calls, "tables": N.list_tables()}
""",
    )
    doc, ref = result["doc"], result["ref"]
    assert normalized(doc) == normalized(ref)
    assert doc["nftables"][0] == ref["nftables"][0]  # one metainfo, first
    assert sum(1 for item in doc["nftables"] if "metainfo" in item) == 1
    assert result["calls"]["each_table"] == 1  # table by table, not one list ruleset
    assert result["calls"]["ruleset_child"] == 0
    if helper is not None:
        assert (result["calls"]["helper"] > 0) is helper
    listed = [tuple(table) for table in result["tables"]]
    assert listed == tables_of(ref)
    assert {family for family, _ in listed} == {"ip", "ip6", "inet", "netdev", "bridge", "arp"}
    assert {("ip", "filter"), ("ip", "nat"), ("ip6", "filter"), ("ip", "fwd")} <= set(listed)
    # what the ruleset was made of is there: xt matches, anonymous sets, a verdict map, the
    # chain named with a space, the netdev chain
    items = doc["nftables"]
    exprs = json.dumps([item["rule"]["expr"] for item in items if "rule" in item])
    assert '"xt"' in exprs and '"set"' in exprs and '"vmap"' in exprs
    chains = {item["chain"]["name"] for item in items if "chain" in item}
    assert {"my chain", "ing", "DOCKER", "from_hotspot"} <= chains


def interface_tables(count: int, rules: int) -> str:
    """Tables of ``iif``/``oif`` rules: printing them fills libnftables' interface cache."""
    out = []
    for t in range(count):
        out += [f"table ip if{t} {{", "\tchain c {"]
        out += [f"\t\tiif hs0 oif up0 tcp dport {port} accept" for port in range(1, rules + 1)]
        out += ["\t}", "}"]
    return "\n".join(out) + "\n"


@kernel_test
def test_libnftables_never_runs_twice_at_once(make_ns: Callable[[str], str]) -> None:
    """libnftables 1.0.6 keeps one interface cache for all its contexts and frees it at the end
    of every command: listings in parallel threads print wrong names, or crash. Tables are
    listed in parallel by nft children, never by a second thread in this process."""
    ns = make_ns("ifaces")
    run(["ip", "netns", "exec", ns, "nft", "-f", "-"], stdin=interface_tables(4, 300))
    result = run_in(
        ns,
        SPY
        + """
import threading
N.HELPER_DELAY = 0
N.WORKERS = 3
running, peak, lock = [0], [0], threading.Lock()
lib = N._bindings()
_run = lib.run
def cmd(context, command):
    with lock:
        running[0] += 1
        peak[0] = max(peak[0], running[0])
    try:
        return _run(context, command)
    finally:
        with lock:
            running[0] -= 1
lib.run = cmd
ref = nft_doc()
docs = [N.list_ruleset_json() for _ in range(10)]
result = {"ref": ref, "docs": docs, "peak": peak[0], "calls": calls}
""",
    )
    assert result["peak"] == 1
    assert result["calls"]["helper"] > 0  # the tables were listed in parallel all the same
    for doc in result["docs"]:
        assert doc == result["ref"]


@kernel_test
def test_the_piped_output_is_the_buffered_one(make_ns: Callable[[str], str]) -> None:
    """libnftables' output goes to a pipe and is kept compressed while nft's JSON tree is alive
    (the peak of a big listing): each listing is byte for byte what pip-nftables' buffered
    output gives, on a realistic ruleset (benchmarks/bigruleset.py: Docker's and ufw's
    iptables-nft tables, NetworkManager's, a big inet table with sets and maps) and on every
    family; list_stream decodes it to the same objects."""
    ns = make_ns("piped")
    load(ns)
    sys.path.insert(0, str(SRC.parent / "benchmarks"))
    try:
        import bigruleset
    finally:
        sys.path.remove(str(SRC.parent / "benchmarks"))
    generated = bigruleset.generate(3000)
    run(["ip", "netns", "exec", ns, "iptables-nft-restore", "--noflush"], generated.iptables_text)
    run(["ip", "netns", "exec", ns, "ip6tables-nft-restore", "--noflush"], generated.ip6tables_text)
    run(["ip", "netns", "exec", ns, "nft", "-f", "-"], stdin=generated.nft_text)
    result = run_in(
        ns,
        """
import hashlib, os, threading, nftables
def buffered(command):
    context = nftables.Nftables(sofile=N.LIBNFTABLES_SONAME)
    context.set_json_output(True)
    rc, output, _ = context.cmd(command)
    assert rc == 0
    return bytes(output)
piped = N._lib_lister(nftables)
fds = len(os.listdir("/proc/self/fd"))
commands = [N._command(N._LIST_RULESET)] + [
    N._command({"list": {"table": {"family": f, "name": n}}}) for f, n in N.list_tables()
]
same, sizes, streams = [], [], []
for command in commands:
    a, b = piped(command), buffered(command)
    same.append(a == b)
    sizes.append(len(a))
    what = json.loads(command)["nftables"][0]["list"]
    streams.append(list(N.list_stream(what)) == json.loads(b)["nftables"])
missing = error_of(lambda: piped(N._command({"list": {"table": {"family": "ip", "name": "nope"}}})))
result = {
    "same": same, "sizes": sizes, "streams": streams, "missing": missing,
    "fds": len(os.listdir("/proc/self/fd")) - fds,
    "threads": [t.name for t in threading.enumerate() if t.name == "nft-output"],
}
""",
    )
    assert len(result["same"]) >= 10  # list ruleset and every table, all families
    assert all(result["same"]), result["sizes"]
    assert all(result["streams"])
    assert max(result["sizes"]) > 500_000  # more than a pipe and a stdio buffer hold
    assert result["missing"]["type"] == "_ListingFailed"
    assert "nope" in result["missing"]["message"] or "No such file" in result["missing"]["message"]
    assert result["fds"] == 0
    assert result["threads"] == []


@kernel_test
def test_no_table_gives_the_metainfo_alone(make_ns: Callable[[str], str]) -> None:
    result = run_in(
        make_ns("empty"),
        "result = {'doc': N.list_ruleset_json(), 'ref': nft_doc(), 'tables': N.list_tables()}",
    )
    assert result["doc"] == result["ref"]
    assert len(result["doc"]["nftables"]) == 1 and "metainfo" in result["doc"]["nftables"][0]
    assert result["tables"] == []


@kernel_test
def test_one_table_is_one_list_ruleset(make_ns: Callable[[str], str]) -> None:
    ns = make_ns("one")
    ruleset = """\
table inet t {
	set s {
		type ipv4_addr
		elements = { 192.0.2.1 }
	}
	chain c {
		tcp dport { 1, 2 } ip saddr @s accept
	}
}
"""
    run(["ip", "netns", "exec", ns, "nft", "-f", "-"], stdin=ruleset)
    result = run_in(
        ns, SPY + "result = {'doc': N.list_ruleset_json(), 'ref': nft_doc(), 'calls': calls}"
    )
    assert result["doc"] == result["ref"]
    assert result["calls"]["each_table"] == 0


# ---------------------------------------------------------------------------------------------
# generation and consistency
# ---------------------------------------------------------------------------------------------


@kernel_test
def test_generation_moves_with_each_change(loaded: str) -> None:
    result = run_in(
        loaded,
        """
first = N.generation()
again = N.generation()
nft("add", "rule", "inet", "fw", "forward", "tcp", "dport", "9", "drop")
added = N.generation()
nft("add", "element", "ip", "filter4", "blocked", "{ 203.0.113.7 }")
element = N.generation()
result = [first, again, added, element]
""",
    )
    first, again, added, element = result
    assert first == again
    assert added != first
    assert element != added


@kernel_test
def test_a_change_while_listing_starts_over(loaded: str) -> None:
    result = run_in(
        loaded,
        SPY
        + """
_inner = N._list_each_table
changes = []
def changing(todo, listers):
    parts = _inner(todo, listers)
    if not changes:  # the first attempt's tables are outdated as soon as they are listed
        nft("add", "rule", "inet", "fw", "forward", "tcp", "dport", "10", "drop")
        changes.append(1)
    return parts
N._list_each_table = changing
doc = N.list_ruleset_json()
result = {"doc": doc, "ref": nft_doc(), "calls": calls}
""",
    )
    assert normalized(result["doc"]) == normalized(result["ref"])
    assert ports_dropped(result["doc"]) == {10}
    assert result["calls"]["each_table"] == 2


@kernel_test
def test_a_ruleset_that_keeps_changing_is_read_at_once(loaded: str) -> None:
    """After ATTEMPTS tries that all saw a change, one (atomic) list ruleset."""
    result = run_in(
        loaded,
        SPY
        + """
_inner = N._list_each_table
port = [100]
def changing(todo, listers):
    parts = _inner(todo, listers)
    port[0] += 1
    nft("add", "rule", "inet", "fw", "forward", "tcp", "dport", str(port[0]), "drop")
    return parts
N._list_each_table = changing
doc = N.list_ruleset_json()
result = {"doc": doc, "ref": nft_doc(), "calls": calls, "attempts": N.ATTEMPTS}
""",
    )
    assert normalized(result["doc"]) == normalized(result["ref"])
    assert result["calls"]["each_table"] == result["attempts"]
    assert ports_dropped(result["doc"]) == set(range(101, 101 + result["attempts"]))
    assert result["calls"]["ruleset_child"] == 0  # libnftables' list ruleset, in-process


@kernel_test
def test_a_table_deleted_while_listing(loaded: str) -> None:
    """The table list is outdated when a table goes away: its listing fails, the generation
    has moved, the next attempt is right."""
    result = run_in(
        loaded,
        SPY
        + """
_tables = N.tables
seen = []
def outdated():
    found = _tables()
    if not seen:
        nft("delete", "table", "bridge", "br")
    seen.append(len(found))
    return found
N.tables = outdated
doc = N.list_ruleset_json()
result = {"doc": doc, "ref": nft_doc(), "calls": calls, "seen": seen}
""",
    )
    assert normalized(result["doc"]) == normalized(result["ref"])
    assert ("bridge", "br") not in tables_of(result["doc"])
    assert result["seen"][1] == result["seen"][0] - 1


@kernel_test
def test_a_listing_error_without_a_change_falls_back_to_list_ruleset(loaded: str) -> None:
    result = run_in(
        loaded,
        SPY
        + """
_tables = N.tables
N.tables = lambda: [*_tables(), N.Table("ip", "no-such-table", 0)]
doc = N.list_ruleset_json()
result = {"doc": doc, "ref": nft_doc(), "calls": calls}
""",
    )
    assert normalized(result["doc"]) == normalized(result["ref"])
    assert result["calls"]["each_table"] == 1


# ---------------------------------------------------------------------------------------------
# fallbacks and errors
# ---------------------------------------------------------------------------------------------


@kernel_test
@pytest.mark.parametrize(
    "setup",
    [
        'sys.modules["nftables"] = None',  # pip-nftables not installed
        'N.LIBNFTABLES_SONAME = "libnftables-missing.so.1"',  # the library does not load
    ],
)
def test_without_libnftables_nft_lists_the_ruleset(loaded: str, setup: str) -> None:
    result = run_in(
        loaded,
        SPY
        + setup
        + """
doc = N.list_ruleset_json()
result = {"doc": doc, "ref": nft_doc(), "calls": calls, "lib": N._libnftables() is not None}
""",
    )
    assert normalized(result["doc"]) == normalized(result["ref"])
    assert result["calls"]["ruleset_child"] == 1
    assert result["calls"]["each_table"] == 0
    assert result["lib"] is False


@kernel_test
def test_without_libnftables_and_nft_a_clear_error(loaded: str) -> None:
    result = run_in(
        loaded,
        """
sys.modules["nftables"] = None
N._nft_binary = lambda: None
result = error_of(N.list_ruleset_json)
""",
    )
    assert result["type"] == "NftablesError"
    assert "neither libnftables nor nft" in result["message"]


NOBODY = """
import os
N._libnftables()  # loaded as root; the checks below run as nobody
os.setgroups([])
os.setgid(65534)
os.setuid(65534)
"""


@kernel_test
def test_without_root_permission_errors(loaded: str) -> None:
    result = run_in(
        loaded,
        NOBODY
        + """
result = {
    "generation": error_of(N.generation),
    "tables": error_of(N.list_tables),
    "ruleset": error_of(N.list_ruleset_json),
}
""",
    )
    for name, error in result.items():
        assert error is not None, name
        assert error["type"] == "PermissionError", error
        assert "Operation not permitted" in error["message"] and "root" in error["message"]


@kernel_test
def test_without_root_and_libnftables_a_permission_error(loaded: str) -> None:
    result = run_in(
        loaded,
        'sys.modules["nftables"] = None\n' + NOBODY + "result = error_of(N.list_ruleset_json)",
    )
    assert result["type"] == "PermissionError"


# ---------------------------------------------------------------------------------------------
# without the kernel
# ---------------------------------------------------------------------------------------------


def test_kernel_errors_become_the_matching_oserror() -> None:
    error = nftables._netlink_error(1, "listing the nftables tables")
    assert isinstance(error, PermissionError)
    assert "needs root" in str(error)
    assert isinstance(nftables._netlink_error(2, "x"), FileNotFoundError)


def test_parts_merge_under_one_metainfo() -> None:
    meta = {"metainfo": {"version": "1.0.6", "json_schema_version": 1}}
    first = [meta, {"table": {"family": "ip", "name": "a"}}, {"chain": {"name": "c"}}]
    second = [meta, {"table": {"family": "inet", "name": "b"}}]
    assert nftables._merge([first, second]) == {"nftables": [*first, second[1]]}
    assert nftables._merge([]) == {"nftables": []}


def test_commands_are_json_whatever_the_names() -> None:
    command = nftables._command({"list": {"table": {"family": "ip", "name": 'a "b" fwd'}}})
    assert json.loads(command) == {
        "nftables": [{"list": {"table": {"family": "ip", "name": 'a "b" fwd'}}}]
    }


def test_attributes_are_parsed_with_padding() -> None:
    name = b"filter\0"
    attrs = struct_nla(1, name) + struct_nla(3, (7).to_bytes(4, "big"))
    parsed = nftables.netlink_attributes(b"\x02\x00\x00\x00" + attrs, 4)
    assert parsed == {1: name, 3: (7).to_bytes(4, "big")}


def struct_nla(kind: int, value: bytes) -> bytes:
    data = (4 + len(value)).to_bytes(2, "little") + kind.to_bytes(2, "little") + value
    return data + b"\0" * (-len(data) % 4)


def test_objects_are_decoded_one_at_a_time() -> None:
    from hotspotguard.system.nftables import NftablesError, _objects

    text = (
        '{"nftables": [{"metainfo": {"version": "1.0.6"}}, {"table": {"name": "t"}} ,\n{"x": 1}]}'
    )
    stream = _objects(text)
    assert next(stream) == {"metainfo": {"version": "1.0.6"}}
    assert list(stream) == [{"table": {"name": "t"}}, {"x": 1}]
    assert list(_objects("")) == []
    for bad in ('{"nftables": [{"a": }]}', '{"nftables": [{"a": 1}', "[]"):
        with pytest.raises(NftablesError):
            list(_objects(bad))


# Quotas with used bytes in every unit nft prints (and 0: nothing printed), inverted ones,
# two in one rule, a named quota's reference, quotas in two chains and two tables, beside
# counters (their values are what a stateless listing leaves out) and stateful set elements.
QUOTAS = """\
table inet q {
	quota named { over 100 mbytes used 5 kbytes }
	set counted {
		type ipv4_addr
		counter
		elements = { 10.0.0.1 counter packets 3 bytes 300 }
	}
	chain c {
		tcp dport 22 quota over 25 mbytes used 1025 bytes counter accept
		quota 10 mbytes used 2 mbytes
		quota over 3000 mbytes used 3072 kbytes quota 5000 mbytes used 1048576 kbytes
		quota 7 bytes
		quota name "named"
		ip saddr @counted counter packets 5 bytes 500 quota 4000 mbytes used 2049 mbytes
		ip daddr { 10.0.0.2 counter } quota over 1 kbytes used 1000 bytes
	}
	chain d {
		type filter hook forward priority filter; policy drop;
		counter quota until 9 mbytes used 9000 bytes jump c
	}
}
table ip other {
	chain e {
		quota 2 mbytes used 1 mbytes
	}
}
"""


def _without_counters(item: Any) -> Any:
    """`item` with each counter statement's values gone, as nft -s prints it (a named
    counter keeps them)."""
    if isinstance(item, dict):
        return {
            k: None
            if k == "counter" and isinstance(v, dict) and "packets" in v and "name" not in v
            else _without_counters(v)
            for k, v in item.items()
        }
    if isinstance(item, list):
        return [_without_counters(v) for v in item]
    return item


@kernel_test
def test_a_stateless_listing_keeps_the_quotas_used_bytes(make_ns: Callable[[str], str]) -> None:
    """list_stream(stateless=True): the objects of the stateful listing, each quota statement's
    used bytes read from the kernel and printed as nft prints them; the counters' values
    left out (the model keeps none) — on every table of a ruleset full of quotas and on the
    mixed one."""
    ns = make_ns("quota")
    load(ns)
    run(["ip", "netns", "exec", ns, "nft", "-f", "-"], stdin=QUOTAS)
    result = run_in(
        ns,
        """
result = {"tables": []}
for family, name in N.list_tables():
    what = {"table": {"family": family, "name": name}}
    result["tables"].append([f"{family} {name}", list(N.list_stream(what)),
                             list(N.list_stream(what, stateless=True))])
result["usage"] = {str(k): v for k, v in N.quota_usage("inet", "q", "c").items()}
result["gone"] = N.quota_usage("inet", "q", "nope")
""",
    )
    assert len(result["tables"]) >= 8
    quotas = 0
    for name, stateful, stateless in result["tables"]:
        assert _without_counters(stateful) == stateless, name
        quotas += json.dumps(stateless).count('"used_unit"')
    assert quotas == 8  # every quota statement with used bytes (a named quota has no unit)
    assert sorted(result["usage"].values()) == sorted(
        [[1025], [2097152], [3145728, 1073741824], [0], [2148532224], [1000]]
    )
    assert result["gone"] == {}


def test_data_units_as_nft_prints_them() -> None:
    assert nftables._data_unit(0) == (0, "bytes")
    assert nftables._data_unit(1023) == (1023, "bytes")
    assert nftables._data_unit(2048) == (2, "kbytes")
    assert nftables._data_unit(3 * 2**20) == (3, "mbytes")
    assert nftables._data_unit(2**30) == (1024, "mbytes")
    assert nftables._data_unit(2**20 + 1024) == (1025, "kbytes")


@kernel_test
def test_prelist_lists_the_biggest_table_first(make_ns: Callable[[str], str]) -> None:
    """prelist: the generation before, the tables, and the biggest one's stateless objects
    (what the reading of the whole model takes as its first table); None in a namespace
    without tables."""
    ns = make_ns("prelist")
    empty = run_in(ns, "result = N.prelist()")
    load(ns)
    result = run_in(
        ns,
        """
first = N.prelist()
biggest = max(N.tables(), key=lambda t: t.use)
what = {"table": {"family": biggest.family, "name": biggest.name}}
result = {
    "generation": first.generation == N.generation(),
    "tables": first.tables == N.tables(),
    "table": first.table == biggest,
    "objects": list(first.objects) == list(N.list_stream(what, stateless=True)),
}
""",
    )
    assert empty is None
    assert result == {"generation": True, "tables": True, "table": True, "objects": True}
