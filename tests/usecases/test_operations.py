"""The helper's operations: argument validation (pure) and the race check (real kernel)."""

from __future__ import annotations

import os
import shutil
from pathlib import Path
from typing import TypeVar

import pytest

from hotspotguard.usecases.operations import (
    OperationError,
    Operations,
    Paths,
    validate_fix_id,
    validate_iface,
    validate_strategy,
)
from hotspotguard.wording import Reason, reason_of
from tests.kernel.scenarios.model import ruleset
from tests.lab import Lab, in_netns

T = TypeVar("T")


@pytest.mark.parametrize(
    "name",
    ["", ".", "..", "a/b", "a:b", "a b", "tab\t", "x" * 16, "é" * 8, "nul\0", 7, None, b"eth0"],
)
def test_bad_interface_names_are_refused(name: object) -> None:
    with pytest.raises(OperationError) as info:
        validate_iface(name, must_exist=False)
    assert info.value.kind == "InvalidArgument"
    assert "\n" not in str(info.value) and len(str(info.value)) < 200


def test_good_interface_names() -> None:
    for name in ("wlan0", "x" * 15, "br-1a2b", "wlp3s0.10", "vlan@10", "_x"):
        assert validate_iface(name, must_exist=False) == name
    with pytest.raises(OperationError) as info:
        validate_iface("hgnosuch0")
    assert info.value.kind == "NotFound"


@pytest.mark.parametrize(
    ("name", "words"),
    [
        ("+", "every interface"),
        ("hs+", "every interface whose name begins with 'hs'"),
        ("hs*", "nftables reads a trailing '*'"),
        ("a'b", "letters, digits"),
        ('a"b', "letters, digits"),
        ("a\\b", "letters, digits"),
        ("-i", "letters, digits"),
        ("!hs0", "letters, digits"),
        ("a+b", "letters, digits"),
    ],
)
def test_names_the_tools_read_as_patterns_are_refused(name: str, words: str) -> None:
    """A valid kernel name that iptables or nft would read as a wildcard, an option or a quote
    gets one clear sentence, never a traceback (the preview would show it as a literal)."""
    with pytest.raises(OperationError) as info:
        validate_iface(name, must_exist=False)
    assert info.value.kind == "InvalidArgument"
    assert words in str(info.value) and "cannot be fixed" in str(info.value)
    reason = reason_of(info.value)  # a code the applet words in the person's language
    assert isinstance(reason, Reason) and reason.code.startswith("name-")
    assert reason.params["name"] == name and reason.params["role"] == "interface"
    with pytest.raises(OperationError):
        validate_fix_id(f"docker-user@{name}")


def test_strategies_and_fix_ids() -> None:
    assert validate_strategy("docker-user") == "docker-user"
    for bad in ("Docker-User", "docker-user;rm", "", "x" * 10_000, 1):
        with pytest.raises(OperationError):
            validate_strategy(bad)
    assert validate_fix_id("docker-user@wlan0") == "docker-user@wlan0"
    for bad in ("docker-user", "nope@wlan0", "docker-user@a/b", "docker-user@" + "x" * 16, "@",
                "docker-user@wlan0\n", "docker-user@+"):  # fmt: skip
        with pytest.raises(OperationError):
            validate_fix_id(bad)


def test_undo_with_nothing_applied(tmp_path: Path) -> None:
    ops = Operations(Paths(state_dir=str(tmp_path), systemd_dropin_dir="/x", dispatcher_dir="/y"))
    with pytest.raises(OperationError) as info:
        ops.undo("", uid=1000)
    assert info.value.kind == "NotFound"
    assert ops.list_fixes() == []


@pytest.mark.kernel
def test_a_plan_made_on_an_older_ruleset_is_refused(clean_lab: Lab, tmp_path: Path) -> None:
    lab = clean_lab
    lab.load_nft(ruleset("nm-shared-hs0.nft"))
    lab.load_iptables(ruleset("docker28.rules"))
    paths = Paths(str(tmp_path / "state"), str(tmp_path / "dropin"), str(tmp_path / "nm"))
    ops = Operations(paths)
    preview = in_netns(lab.host, lambda: ops.preview("hs0", ""))
    assert preview["plan"]["strategy"] == "docker-user"
    lab.load_nft("table inet someone { }")  # the ruleset moves on
    before = lab.ruleset()
    with pytest.raises(OperationError) as info:
        in_netns(
            lab.host,
            lambda: ops.apply("hs0", "", permanent=False, uid=0, generation=preview["generation"]),
        )
    assert info.value.kind == "Stale"
    assert lab.ruleset() == before
    done = in_netns(lab.host, lambda: ops.apply("hs0", "", permanent=False, uid=1000))
    assert done["changed"] and done["uid"] == 1000 and done["after"]["verdict"] == "ok"
    assert in_netns(lab.host, ops.list_fixes)[0]["in_place"] is True
    assert in_netns(lab.host, lambda: ops.fix_owner("")) == 1000
    in_netns(lab.host, lambda: ops.undo("docker-user@hs0", uid=0))
    assert lab.ruleset() == before


@pytest.mark.kernel
def test_sysctl_forwarding_fix_and_its_undo(clean_lab: Lab, tmp_path: Path) -> None:
    lab = clean_lab
    lab.load_nft(ruleset("nm-shared-hs0.nft"))
    lab.sysctl("net.ipv4.ip_forward", "0")
    lab.sysctl("net.ipv4.conf.up0.forwarding", "1")  # a mixed state: undo must bring it back
    before = forwarding_settings(lab)
    assert not lab.probe(["outbound"])["outbound"].delivered
    ops = Operations(Paths(str(tmp_path / "state"), str(tmp_path / "d"), str(tmp_path / "nm")))
    preview = in_netns(lab.host, lambda: ops.preview("hs0", ""))
    assert preview["plan"]["strategy"] == "sysctl-forwarding"
    assert preview["plan"]["preview"][0] == "sysctl net.ipv4.ip_forward=1 (now 0)"
    done = in_netns(lab.host, lambda: ops.apply("hs0", "", permanent=False, uid=0))
    assert done["changed"] and done["after"]["verdict"] == "ok"
    assert lab.probe(["outbound"])["outbound"].delivered
    in_netns(lab.host, lambda: ops.undo("", uid=0))
    assert forwarding_settings(lab) == before
    assert before["net.ipv4.ip_forward"] == "0" and before["net.ipv4.conf.up0.forwarding"] == "1"
    assert not lab.probe(["outbound"])["outbound"].delivered


def forwarding_settings(lab: Lab) -> dict[str, str]:
    """The host's IPv4 forwarding settings, global and per interface."""
    out = lab.host_run(["sysctl", "-a", "-r", r"^net\.ipv4\.(ip_forward|conf\..*\.forwarding)$"])
    return dict(line.split(" = ", 1) for line in out.stdout.splitlines())


def test_a_fix_is_not_kept_when_root_would_run_a_file_that_is_not_roots(tmp_path: Path) -> None:
    """The permanent fix makes root run the helper: a helper owned by someone else is refused
    with the offending path as a parameter of a code (so the applet words it), nothing kept."""
    if os.geteuid() != 0:
        pytest.skip("needs root to make root-owned files")
    safe = Path("/run") / f"hg-keep-test-{os.getpid()}"
    safe.mkdir(mode=0o755)
    try:
        helper = safe / "hotspotguard-helper"
        helper.write_text("#!/bin/sh\n")
        helper.chmod(0o755)
        os.chown(helper, 65534, 65534)
        ops = Operations(Paths(str(tmp_path / "state"), "/x", "/y", helper=str(helper)))
        with pytest.raises(OperationError) as info:
            ops._check_keepable()
        assert info.value.kind == "NotApplicable"
        reason = reason_of(info.value)
        assert isinstance(reason, Reason) and reason.code == "fix-not-keepable", reason
        why = reason.params["why"]
        assert why["reason_code"] == "untrusted-owner"
        assert why["reason_params"]["path"] == str(helper)
        assert str(reason).startswith(f"cannot keep the fix: {helper} is not owned by root")
        os.chown(helper, 0, 0)
        helper.chmod(0o775)
        with pytest.raises(OperationError) as info:
            ops._check_keepable()
        assert reason_of(info.value).params["why"]["reason_code"] == "untrusted-writable"  # type: ignore[attr-defined]
        helper.chmod(0o755)
        ops._check_keepable()  # root's alone: kept
    finally:
        shutil.rmtree(safe)
