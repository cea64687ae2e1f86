"""``hotspotguard doctor``: what is wrong with this installation and desktop, and the command that
fixes each thing.

Each check reads the real thing (files, the system and session buses, the tools' own answers)
and says ``ok`` or ``problem`` with one line of detail and, for a problem, the command to run.
Nothing is changed.  Exit status: 0 all ok, 1 a problem was found, 2 usage.
"""

from __future__ import annotations

import asyncio
import configparser
import ctypes.util
import json
import os
import re
import shutil
import subprocess
from collections.abc import Awaitable, Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from dbus_next.constants import BusType, MessageType

from hotspotguard.system import trust
from hotspotguard.system.dbusio import MessageBus, call_method

BUS_NAME = "io.github.hotspotguard.Helper1"
SERVICE_FILE = f"{BUS_NAME}.service"
POLICY_FILE = f"{BUS_NAME}.conf"
ACTIONS_FILE = "io.github.hotspotguard.policy"
APP_ID = "io.github.hotspotguard"
REINSTALL = "reinstall hotspotguard (your distribution's package, or `sudo make install`)"
TIMEOUT = 5.0


@dataclass(frozen=True)
class Finding:
    """One check's answer."""

    check: str
    ok: bool
    detail: str
    fix: str = ""

    @property
    def status(self) -> str:
        return "ok" if self.ok else "problem"


@dataclass
class Places:
    """Where the bus and polkit read our files (tests add a lab's directories)."""

    service_dirs: list[Path] = field(
        default_factory=lambda: [
            Path("/usr/local/share/dbus-1/system-services"),
            Path("/usr/share/dbus-1/system-services"),
            Path("/lib/dbus-1/system-services"),
            Path("/etc/dbus-1/system-services"),
        ]
    )
    policy_dirs: list[Path] = field(
        default_factory=lambda: [Path("/usr/share/dbus-1/system.d"), Path("/etc/dbus-1/system.d")]
    )
    actions_dirs: list[Path] = field(default_factory=lambda: [Path("/usr/share/polkit-1/actions")])


def _untrusted(helper: Path) -> str | None:
    """Why root should not run `helper`, or None (system/trust.py).  As root: it, its
    interpreter and everything that imports; a user cannot read all of root's trees, so for a
    user: the helper and every directory above it."""
    purpose = "D-Bus starts it for the helper"
    try:
        if os.geteuid() == 0:
            trust.check_runs_as_root(helper, purpose)
        else:
            trust.check_path(helper, purpose)
    except trust.Untrusted as error:
        return str(error)
    return None


def _first(directories: list[Path], name: str) -> Path | None:
    return next((d / name for d in directories if (d / name).is_file()), None)


def _service_exec(path: Path) -> tuple[str, str, str]:
    """(Name, Exec, User) of a D-Bus service file."""
    parser = configparser.ConfigParser(interpolation=None)
    parser.read(path, encoding="utf-8")
    section = parser["D-BUS Service"] if parser.has_section("D-BUS Service") else {}
    return section.get("Name", ""), section.get("Exec", ""), section.get("User", "")


def check_files(places: Places) -> list[Finding]:
    """The service file, bus policy and polkit actions: present and consistent."""
    service = _first(places.service_dirs, SERVICE_FILE)
    policy = _first(places.policy_dirs, POLICY_FILE)
    actions = _first(places.actions_dirs, ACTIONS_FILE)
    findings = []
    if service is None:
        findings.append(Finding("helper service", False, "no D-Bus service file", REINSTALL))
    else:
        name, command, user = _service_exec(service)
        helper = Path(command.split()[0]) if command.split() else Path()
        reason = _untrusted(helper) if helper.is_file() else f"{helper} does not exist"
        if name != BUS_NAME or user != "root":
            findings.append(
                Finding("helper service", False, f"{service}: Name/User are wrong", REINSTALL)
            )
        elif reason is not None:
            findings.append(Finding("helper service", False, reason, REINSTALL))
        else:
            note = "" if os.geteuid() == 0 else " (as root, doctor checks what it imports too)"
            findings.append(Finding("helper service", True, f"{service} → {helper}{note}"))
    for what, path, needle in (
        ("bus policy", policy, f'own="{BUS_NAME}"'),
        ("polkit actions", actions, "io.github.hotspotguard."),
    ):
        if path is None:
            findings.append(Finding(what, False, f"no {what} file installed", REINSTALL))
        elif needle not in path.read_text(encoding="utf-8", errors="replace"):
            findings.append(Finding(what, False, f"{path} does not name {BUS_NAME}", REINSTALL))
        else:
            findings.append(Finding(what, True, str(path)))
    return findings


async def _connect(kind: BusType) -> MessageBus:
    variable = "DBUS_SYSTEM_BUS_ADDRESS" if kind == BusType.SYSTEM else "DBUS_SESSION_BUS_ADDRESS"
    address = os.environ.get(variable)
    if kind == BusType.SESSION and not address:
        user_bus = Path(f"/run/user/{os.getuid()}/bus")  # systemd's, when the variable is unset
        if not user_bus.exists():
            raise OSError("no session bus (run doctor inside your desktop session)")
        address = f"unix:path={user_bus}"
    bus = MessageBus(bus_address=address) if address else MessageBus(bus_type=kind)
    await asyncio.wait_for(bus.connect(), TIMEOUT)
    return bus


async def _call(
    bus: MessageBus,
    destination: str,
    path: str,
    interface: str,
    member: str,
    signature: str = "",
    body: list[Any] | None = None,
) -> Any:
    reply = await asyncio.wait_for(
        call_method(bus, destination, path, interface, member, signature, body), TIMEOUT
    )
    if reply is None:
        raise RuntimeError("no reply")
    if reply.message_type == MessageType.ERROR:
        text = reply.body[0] if reply.body else ""
        raise RuntimeError(f"{reply.error_name}: {text}".rstrip(": "))
    return reply.body[0] if reply.body else None


def _dbus_call(bus: MessageBus, member: str, *args: str) -> Awaitable[Any]:
    return _call(
        bus,
        "org.freedesktop.DBus",
        "/org/freedesktop/DBus",
        "org.freedesktop.DBus",
        member,
        "s" * len(args),
        list(args),
    )


async def check_system_bus() -> list[Finding]:
    """The helper answers a read call; NetworkManager is reachable."""
    try:
        bus = await _connect(BusType.SYSTEM)
    except (TimeoutError, OSError, ValueError) as error:
        fix = "sudo systemctl start dbus"
        return [
            Finding("helper", False, f"no system bus: {error}", fix),
            Finding("NetworkManager", False, "no system bus", fix),
        ]
    try:
        return [await _helper_answers(bus), await _networkmanager(bus)]
    finally:
        bus.disconnect()


async def _helper_answers(bus: MessageBus) -> Finding:
    try:
        await _call(bus, BUS_NAME, "/io/github/hotspotguard/Helper1", BUS_NAME, "ListFixes")
    except (TimeoutError, RuntimeError) as error:
        text = str(error) or "no answer"
        if "AccessDenied" in text or "NotAuthorized" in text:
            return Finding(
                "helper",
                False,
                f"it runs but refused a read call: {text}",
                "ask your administrator for the hotspotguard polkit actions",
            )
        return Finding("helper", False, f"cannot be started on the system bus: {text}", REINSTALL)
    return Finding("helper", True, "activatable: answered a read call (ListFixes)")


async def _networkmanager(bus: MessageBus) -> Finding:
    name = "org.freedesktop.NetworkManager"
    try:
        version = await _call(
            bus,
            name,
            "/org/freedesktop/NetworkManager",
            "org.freedesktop.DBus.Properties",
            "Get",
            "ss",
            [name, "Version"],
        )
    except (TimeoutError, RuntimeError) as error:
        return Finding(
            "NetworkManager",
            False,
            f"not reachable: {error}",
            "sudo systemctl start NetworkManager",
        )
    value = getattr(version, "value", version)
    return Finding("NetworkManager", True, f"{value}, firewall backend {nm_firewall_backend()}")


def nm_firewall_backend() -> str:
    """NetworkManager's configured firewall backend (its own --print-config), else its default."""
    binary = shutil.which("NetworkManager") or "/usr/sbin/NetworkManager"
    try:
        text = subprocess.run(
            [binary, "--print-config"], capture_output=True, text=True, timeout=TIMEOUT, check=False
        ).stdout
    except (OSError, subprocess.TimeoutExpired):
        text = ""
    match = re.search(r"^\s*firewall-backend\s*=\s*(\S+)", text, re.M)
    return match.group(1) if match else "default (nftables)"


def check_nftables() -> list[Finding]:
    """The nft tool, libnftables and its Python binding."""
    nft = shutil.which("nft") or next(
        (p for p in ("/usr/sbin/nft", "/sbin/nft") if os.access(p, os.X_OK)), None
    )
    library = ctypes.util.find_library("nftables")
    try:
        import nftables  # noqa: F401

        binding = True
    except ImportError:
        binding = False
    missing = [
        n
        for n, ok in (("nft", nft), ("libnftables", library), ("nftables (Python)", binding))
        if not ok
    ]
    if missing:
        return [
            Finding(
                "nftables",
                False,
                "missing: " + ", ".join(missing),
                "sudo apt install nftables python3-nftables (Arch: pacman -S nftables)",
            )
        ]
    return [Finding("nftables", True, f"{nft}, {library}, Python binding")]


def _iptables_variant(binary: str) -> str | None:
    try:
        text = subprocess.run(
            [binary, "-V"], capture_output=True, text=True, timeout=TIMEOUT, check=False
        ).stdout
    except (OSError, subprocess.TimeoutExpired):
        return None
    match = re.search(r"\((nf_tables|legacy)\)", text)
    return match.group(1) if match else "legacy" if text.startswith("iptables v") else None


def _legacy_tables() -> bool | None:
    """Whether iptables-legacy tables exist here (None: cannot tell, not root)."""
    found = False
    for name in ("ip_tables_names", "ip6_tables_names"):
        try:
            found = found or bool(Path(f"/proc/net/{name}").read_text().strip())
        except PermissionError:
            return None
        except OSError:
            continue
    return found


def check_iptables() -> list[Finding]:
    """iptables-nft or iptables-legacy in use; legacy tables beside nft ones are a problem."""
    binary = shutil.which("iptables") or "/usr/sbin/iptables"
    variant = _iptables_variant(binary)
    legacy = _legacy_tables()
    if variant is None:
        return [Finding("iptables", True, "not installed (nftables only)")]
    switch = "sudo update-alternatives --set iptables /usr/sbin/iptables-nft"
    if variant == "nf_tables" and legacy:
        return [
            Finding(
                "iptables",
                False,
                "iptables-nft is the default but iptables-legacy tables exist too: two "
                "firewalls on the same hooks",
                "`sudo iptables-legacy-save` shows them: make their program use iptables-nft "
                "(" + switch + "), then reboot",
            )
        ]
    if variant == "legacy":
        return [Finding("iptables", False, "iptables-legacy is the default", switch)]
    note = "" if legacy is not None else " (run as root to look for legacy tables)"
    return [Finding("iptables", True, f"iptables-nft{note}")]


def check_docker() -> list[Finding]:
    """Docker's version and firewall backend, when it is installed."""
    dockerd = shutil.which("dockerd") or next(
        (p for p in ("/usr/bin/dockerd", "/usr/sbin/dockerd") if os.access(p, os.X_OK)), None
    )
    if dockerd is None:
        return [Finding("Docker", True, "not installed")]
    try:
        version = subprocess.run(
            [dockerd, "--version"], capture_output=True, text=True, timeout=TIMEOUT, check=False
        ).stdout.strip()
    except (OSError, subprocess.TimeoutExpired):
        version = "dockerd"
    try:
        config = json.loads(Path("/etc/docker/daemon.json").read_text(encoding="utf-8"))
    except FileNotFoundError:
        config = {}
    except (OSError, ValueError) as error:
        return [
            Finding(
                "Docker",
                False,
                f"/etc/docker/daemon.json: {error}",
                "fix /etc/docker/daemon.json (it must be a JSON object)",
            )
        ]
    backend = str(config.get("firewall-backend", "iptables")) if isinstance(config, dict) else "?"
    if isinstance(config, dict) and config.get("iptables") is False:
        backend = 'none ("iptables": false)'
    variant = _iptables_variant(shutil.which("iptables") or "/usr/sbin/iptables")
    through = (
        f" through iptables-{'nft' if variant == 'nf_tables' else variant}"
        if (backend == "iptables" and variant)
        else ""
    )
    return [Finding("Docker", True, f"{version}; firewall backend {backend}{through}")]


async def check_session_bus() -> list[Finding]:
    """A tray host (StatusNotifierWatcher) and a notification server on the session bus."""
    wanted = (
        (
            "tray host",
            "org.kde.StatusNotifierWatcher",
            "use a panel with a system tray (Plasma, xfce4-panel, a GNOME AppIndicator extension)",
        ),
        (
            "notifications",
            "org.freedesktop.Notifications",
            "install a notification server (Plasma and GNOME have one; else dunst)",
        ),
    )
    try:
        bus = await _connect(BusType.SESSION)
    except (TimeoutError, OSError, ValueError) as error:
        return [
            Finding(what, False, str(error), "run it from your desktop session")
            for what, _, _ in wanted
        ]
    findings = []
    try:
        activatable = await _dbus_call(bus, "ListActivatableNames")
        for what, name, fix in wanted:
            owned = await _dbus_call(bus, "NameHasOwner", name)
            if owned:
                findings.append(Finding(what, True, f"{name} is running"))
            elif name in (activatable or []):
                findings.append(Finding(what, True, f"{name} starts on demand"))
            else:
                findings.append(Finding(what, False, f"nothing owns {name}", fix))
    except (TimeoutError, RuntimeError) as error:
        findings.append(Finding("session bus", False, str(error), "log in again"))
    finally:
        bus.disconnect()
    return findings


def check_autostart() -> list[Finding]:
    from hotspotguard.ui.autostart import Autostart

    if Autostart().enabled():
        return [Finding("autostart", True, "the applet starts with your session")]
    return [
        Finding(
            "autostart",
            False,
            "the applet does not start with your session",
            "tick “Start at login” (Plasma: “Start with Plasma”) in the applet's menu",
        )
    ]


def _data_dirs() -> list[Path]:
    value = os.environ.get("XDG_DATA_DIRS") or "/usr/local/share:/usr/share"
    home = os.environ.get("XDG_DATA_HOME") or str(Path.home() / ".local/share")
    return [Path(p) for p in (home, *value.split(":")) if os.path.isabs(p)]


def check_icons() -> list[Finding]:
    """The applet's icons in the hicolor theme (the fallback of every icon theme)."""
    names = [f"apps/{APP_ID}.svg", *(f"status/hotspotguard-{s}.svg" for s in ("ok", "blocked"))]
    for directory in _data_dirs():
        base = directory / "icons/hicolor/scalable"
        if all((base / name).is_file() for name in names):
            return [Finding("icons", True, f"{base.parent.parent}")]
    return [Finding("icons", False, "the applet's icons are not in the hicolor theme", REINSTALL)]


FC_LIST = "/usr/bin/fc-list"
#: the fonts the packages name (Debian's Suggests, the PKGBUILD's optdepends)
CJK_FONT_FIX = "sudo apt install fonts-noto-cjk (Arch: sudo pacman -S noto-fonts-cjk)"


def _locale() -> str:
    for name in ("LC_ALL", "LC_MESSAGES", "LANG"):
        if os.environ.get(name):
            return os.environ[name]
    return ""


def check_fonts() -> list[Finding]:
    """In a Chinese locale, a font with Chinese glyphs (else the applet's text is boxes);
    nothing to say in other locales."""
    if not _locale().startswith("zh"):
        return []
    if not os.access(FC_LIST, os.X_OK):
        return [Finding("fonts", False, "cannot tell: fontconfig's fc-list is not installed")]
    try:
        listed = subprocess.run(
            [FC_LIST, ":lang=zh", "family"], capture_output=True, text=True, timeout=10
        ).stdout
    except (OSError, subprocess.TimeoutExpired) as error:
        return [Finding("fonts", False, f"cannot tell: fc-list failed: {error}")]
    families = sorted({line.split(",")[0].strip() for line in listed.splitlines() if line.strip()})
    if families:
        return [Finding("fonts", True, f"Chinese text: {', '.join(families[:3])}")]
    return [
        Finding(
            "fonts", False, "no font has Chinese glyphs: the applet's text shows as boxes",
            CJK_FONT_FIX,
        )
    ]  # fmt: skip


def run_checks(places: Places | None = None) -> list[Finding]:
    """Every check, in the order a person reads them."""
    places = places or Places()

    async def buses() -> tuple[list[Finding], list[Finding]]:
        return await check_system_bus(), await check_session_bus()

    system, session = asyncio.run(buses())
    return [
        *check_files(places),
        *system,
        *check_nftables(),
        *check_iptables(),
        *check_docker(),
        *session,
        *check_autostart(),
        *check_icons(),
        *check_fonts(),
    ]


def render_text(findings: list[Finding]) -> str:
    width = max(len(f.check) for f in findings)
    lines = []
    for finding in findings:
        lines.append(f"{finding.status:<8} {finding.check:<{width}}  {finding.detail}")
        if finding.fix:
            lines.append(f"{'':<8} {'':<{width}}  fix: {finding.fix}")
    return "\n".join(lines) + "\n"


def render_json(findings: list[Finding]) -> str:
    checks = [dict(asdict(f), status=f.status) for f in findings]
    for check in checks:
        del check["ok"]
    doc = {"ok": all(f.ok for f in findings), "checks": checks}
    return json.dumps(doc, indent=2, ensure_ascii=False) + "\n"


Printer = Callable[[list[Finding]], str]


def main(as_json: bool, places: Places | None = None) -> int:
    """Print the findings; 0 when all are ok, else 1."""
    findings = run_checks(places)
    print((render_json if as_json else render_text)(findings), end="")
    return 0 if all(f.ok for f in findings) else 1
