"""Scenario building blocks: what to load into the lab host, and what to expect."""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator, Mapping
from contextlib import AbstractContextManager as ContextManager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tests.lab import ALL_FLOWS, KernelFlow, Lab

RULESETS = Path(__file__).with_name("rulesets")


def ruleset(name: str) -> str:
    """The text of a file in scenarios/rulesets/."""
    return (RULESETS / name).read_text()


# --- steps ---------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Nft:
    """`nft -f -` in the host."""

    text: str
    source: str = ""

    def apply(self, lab: Lab) -> None:
        lab.load_nft(self.text)

    def describe(self) -> str:
        return f"nft -f {self.source or '<inline>'}"


@dataclass(frozen=True)
class Iptables:
    """(ip6)iptables(-legacy|-nft)-restore --noflush in the host."""

    text: str
    ipv6: bool = False
    legacy: bool = False
    source: str = ""

    def apply(self, lab: Lab) -> None:
        lab.load_iptables(self.text, ipv6=self.ipv6, legacy=self.legacy)

    def describe(self) -> str:
        tool = f"{'ip6' if self.ipv6 else 'ip'}tables-{'legacy' if self.legacy else 'nft'}-restore"
        return f"{tool} --noflush < {self.source or '<inline>'}"


@dataclass(frozen=True)
class Cmd:
    """A command run inside the host namespace (e.g. the seed's `iptables -I DOCKER-USER ...`)."""

    argv: tuple[str, ...]

    def apply(self, lab: Lab) -> None:
        lab.host_run(list(self.argv))

    def describe(self) -> str:
        return " ".join(self.argv)


@dataclass(frozen=True)
class Sysctl:
    key: str
    value: str

    def apply(self, lab: Lab) -> None:
        lab.sysctl(self.key, self.value)

    def describe(self) -> str:
        return f"sysctl {self.key}={self.value}"


@dataclass(frozen=True)
class Call:
    fn: Callable[[Lab], None]
    text: str = ""

    def apply(self, lab: Lab) -> None:
        self.fn(lab)

    def describe(self) -> str:
        return self.text or getattr(self.fn, "__name__", "call")


Step = Nft | Iptables | Cmd | Sysctl | Call


def nft_file(name: str) -> Nft:
    return Nft(ruleset(name), source=name)


def ipt_file(name: str, *, ipv6: bool = False, legacy: bool = False) -> Iptables:
    return Iptables(ruleset(name), ipv6=ipv6, legacy=legacy, source=name)


# --- expectations --------------------------------------------------------------------------------

# Compact kernel notation per flow: True / False / None (not testable),
# and for outbound flows "masq" (delivered, source rewritten) / "plain" (delivered, unchanged).
Expect = bool | None | str


def kernel_short(outcome: Mapping[str, KernelFlow]) -> dict[str, Expect]:
    out: dict[str, Expect] = {}
    for f, k in outcome.items():
        s = k.short()
        out[f] = {"True": True, "False": False, "None": None}.get(s, s)
    return out


V4_OK_MASQ: dict[str, Expect] = {"dhcp": True, "dns": True, "outbound": "masq", "reply": True}
V4_OK_PLAIN: dict[str, Expect] = {"dhcp": True, "dns": True, "outbound": "plain", "reply": True}
V4_FWD_DROP: dict[str, Expect] = {"dhcp": True, "dns": True, "outbound": False, "reply": None}
V4_ALL_DROP: dict[str, Expect] = {"dhcp": False, "dns": False, "outbound": False, "reply": None}
# router/neighbour discovery: all through, or the host's input closed (its output open)
ND_OK: dict[str, Expect] = {
    "rs6": True,
    "ra6": True,
    "ns6_in": True,
    "na6_out": True,
    "ns6_out": True,
    "na6_in": True,
}
ND_INPUT_DROP: dict[str, Expect] = {**ND_OK, "rs6": False, "ns6_in": False, "na6_in": False}
ND_OUTPUT_DROP: dict[str, Expect] = {**ND_OK, "ra6": False, "na6_out": False, "ns6_out": False}
V6_OK_PLAIN: dict[str, Expect] = {
    "dhcp6": True,
    "dns6": True,
    "outbound6": "plain",
    "reply6": True,
    **ND_OK,
}
V6_OK_MASQ: dict[str, Expect] = {**V6_OK_PLAIN, "outbound6": "masq"}
V6_FWD_DROP: dict[str, Expect] = {**V6_OK_PLAIN, "outbound6": False, "reply6": None}
V6_ALL_DROP: dict[str, Expect] = {
    "dhcp6": False,
    "dns6": False,
    "outbound6": False,
    "reply6": None,
    **ND_INPUT_DROP,
}


def expect(*parts: Mapping[str, Expect], **overrides: Expect) -> dict[str, Expect]:
    out: dict[str, Expect] = {}
    for p in parts:
        out.update(p)
    out.update(overrides)
    missing = [f for f in ALL_FLOWS if f not in out]
    if missing:
        raise ValueError(f"expectation misses flows {missing}")
    return out


# --- the scenario --------------------------------------------------------------------------------


@dataclass(frozen=True)
class Scenario:
    name: str
    description: str
    steps: tuple[Step, ...]
    kernel: Mapping[str, Expect]  # expected kernel outcome (also a regression check of the lab)
    verdict: str | None = None  # expected engine hotspot verdict: "ok" / "blocked"
    blocked_by: str | None = None  # expected owner of the blocking rule (e.g. "docker")
    expect_unknown: frozenset[str] = frozenset()  # flows where the engine may say "unknown"
    notes: str = ""  # why the kernel does what it does
    docker: bool = False  # needs a real dockerd
    context: Callable[[Lab], ContextManager[Any]] | None = None  # active around steps + probe
    tags: tuple[str, ...] = field(default=())

    @contextlib.contextmanager
    def applied(self, lab: Lab) -> Iterator[None]:
        """Apply the scenario to a clean lab (the context, if any, stays active inside)."""
        cm: ContextManager[Any] = self.context(lab) if self.context else contextlib.nullcontext()
        with cm:
            for step in self.steps:
                step.apply(lab)
            yield

    def describe(self) -> str:
        lines = [f"{self.name}: {self.description}"]
        lines += [f"  - {s.describe()}" for s in self.steps]
        return "\n".join(lines)
