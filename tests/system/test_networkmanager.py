# ruff: noqa: F821, F722  (dbus-next reads D-Bus signatures from annotations: "ao", "a{sv}")
"""NetworkManager's shared connections over D-Bus.

Two kinds of tests:
- a real NetworkManager 1.42 in namespaces with its own system bus (tests/nmlab.py; root);
- a Wi-Fi access point, which cannot be activated here (no cfg80211): a small private-bus
  service shaped exactly like the NM objects recorded in /work/shared/reference/nm-lab (the
  properties of busctl-properties.txt, GetSettings of busctl-GetSettings-hotspot.json), with the
  Wi-Fi values of a hotspot ("802-11-wireless", mode "ap", DeviceType 2).
"""

import asyncio
import contextlib
import shutil
import signal
import subprocess
import tempfile
import time
from collections.abc import Awaitable, Callable, Iterator
from pathlib import Path
from typing import Any, TypeVar

import pytest
from dbus_next.aio.message_bus import MessageBus
from dbus_next.constants import BusType, PropertyAccess
from dbus_next.errors import DBusError
from dbus_next.service import ServiceInterface, dbus_property, method
from dbus_next.service import signal as dbus_signal
from dbus_next.signature import Variant

from hotspotguard.system.networkmanager import (
    NM_BUS_NAME,
    NetworkManagerWatch,
    SharedConnection,
    shared_connections,
)
from tests.helpers import accepting
from tests.nmlab import LAB_TIMES, NmLab, nm_lab_session, nm_lab_unavailable_reason

T = TypeVar("T")
NM = "/org/freedesktop/NetworkManager"


async def until(cond: Callable[[], bool], timeout: float = 10, what: str = "") -> None:
    """Wait for a condition the watch reaches from signals (the test polls; the watch doesn't)."""
    deadline = time.monotonic() + timeout
    while not cond():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what or cond}")
        await asyncio.sleep(0.005)


def run(coro: Awaitable[T]) -> T:
    async def main() -> T:
        return await coro

    return asyncio.run(main())


class Recorder:
    """The on_change callback: what the watch looked like at each call."""

    def __init__(self) -> None:
        self.watch: NetworkManagerWatch | None = None
        self.calls: list[tuple[str, tuple[SharedConnection, ...]]] = []

    def __call__(self) -> None:
        assert self.watch is not None
        self.calls.append((self.watch.status.kind, self.watch.connections))

    def assert_each_call_is_a_change(self) -> None:
        for before, after in zip(self.calls, self.calls[1:], strict=False):
            assert before != after, f"on_change fired without a change: {after}"


def make_watch(address: str, **kw: Any) -> tuple[NetworkManagerWatch, Recorder]:
    rec = Recorder()
    watch = NetworkManagerWatch(rec, bus_address=address, **kw)
    rec.watch = watch
    return watch, rec


# --- a private bus with a fake NetworkManager (Wi-Fi AP) -----------------------------------------


@contextlib.contextmanager
def private_bus() -> Iterator[str]:
    daemon = shutil.which("dbus-daemon")
    if daemon is None:
        pytest.skip("dbus-daemon is not installed (Debian package dbus-daemon)")
    d = Path(tempfile.mkdtemp(prefix="hgnm-bus-"))
    sock = d / "bus"
    conf = d / "bus.conf"
    conf.write_text(
        "<busconfig><type>session</type>"
        f"<listen>unix:path={sock}</listen><auth>EXTERNAL</auth>"
        '<policy context="default"><allow send_destination="*" eavesdrop="true"/>'
        '<allow eavesdrop="true"/><allow own="*"/></policy></busconfig>'
    )
    proc = subprocess.Popen(
        [daemon, f"--config-file={conf}", "--nofork"],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        start_new_session=True,
    )
    try:
        deadline = time.monotonic() + 10
        while not accepting(sock):
            assert proc.poll() is None and time.monotonic() < deadline, "dbus-daemon did not start"
            time.sleep(0.005)
        yield f"unix:path={sock}"
    finally:
        proc.terminate()
        proc.wait(5)
        shutil.rmtree(d, ignore_errors=True)


class FakeNM(ServiceInterface):
    def __init__(self, active: list[str]) -> None:
        super().__init__(NM_BUS_NAME)
        self.active = active

    @dbus_property(access=PropertyAccess.READ)
    def ActiveConnections(self) -> "ao":
        return self.active

    @dbus_property(access=PropertyAccess.READ)
    def State(self) -> "u":
        return 70

    @dbus_property(access=PropertyAccess.READ)
    def Version(self) -> "s":
        return "1.42.4"


class FakeActive(ServiceInterface):
    def __init__(self, props: dict[str, Any]) -> None:
        super().__init__("org.freedesktop.NetworkManager.Connection.Active")
        self.props = props

    @dbus_property(access=PropertyAccess.READ)
    def Type(self) -> "s":
        return str(self.props["Type"])

    @dbus_property(access=PropertyAccess.READ)
    def Id(self) -> "s":
        return str(self.props["Id"])

    @dbus_property(access=PropertyAccess.READ)
    def Uuid(self) -> "s":
        return str(self.props["Uuid"])

    @dbus_property(access=PropertyAccess.READ)
    def State(self) -> "u":
        return int(self.props["State"])

    @dbus_property(access=PropertyAccess.READ)
    def Devices(self) -> "ao":
        return list(self.props["Devices"])

    @dbus_property(access=PropertyAccess.READ)
    def Ip4Config(self) -> "o":
        return str(self.props["Ip4Config"])

    @dbus_property(access=PropertyAccess.READ)
    def Ip6Config(self) -> "o":
        return str(self.props["Ip6Config"])

    @dbus_property(access=PropertyAccess.READ)
    def Connection(self) -> "o":
        return str(self.props["Connection"])

    @dbus_property(access=PropertyAccess.READ)
    def Default(self) -> "b":
        return False

    @dbus_signal()
    def StateChanged(self, state: int, reason: int) -> "uu":
        return [state, reason]


class FakeDevice(ServiceInterface):
    def __init__(self, name: str, device_type: int) -> None:
        super().__init__("org.freedesktop.NetworkManager.Device")
        self.ifname, self.device_type = name, device_type

    @dbus_property(access=PropertyAccess.READ)
    def Interface(self) -> "s":
        return self.ifname

    @dbus_property(access=PropertyAccess.READ)
    def IpInterface(self) -> "s":
        return self.ifname

    @dbus_property(access=PropertyAccess.READ)
    def DeviceType(self) -> "u":
        return self.device_type

    @dbus_property(access=PropertyAccess.READ)
    def State(self) -> "u":
        return 100


class FakeIPConfig(ServiceInterface):
    def __init__(self, family: int, addresses: list[tuple[str, int]]) -> None:
        super().__init__(f"org.freedesktop.NetworkManager.IP{family}Config")
        self.addresses = addresses

    def address_data(self) -> list[dict[str, Variant]]:
        return [{"address": Variant("s", a), "prefix": Variant("u", p)} for a, p in self.addresses]

    @dbus_property(access=PropertyAccess.READ)
    def AddressData(self) -> "aa{sv}":
        return self.address_data()


class FakeSettingsConnection(ServiceInterface):
    def __init__(self, settings: dict[str, dict[str, Variant]]) -> None:
        super().__init__("org.freedesktop.NetworkManager.Settings.Connection")
        self.settings = settings
        self.fail = False

    @method()
    def GetSettings(self) -> "a{sa{sv}}":
        if self.fail:
            raise DBusError(
                "org.freedesktop.NetworkManager.Settings.PermissionDenied", "not allowed"
            )
        return self.settings

    @dbus_signal()
    def Updated(self) -> None:
        return None


AP_UUID = "5b1c54d1-0b9e-4c77-9d2a-1f4f1b5c8e01"
AP_SETTINGS = {
    "connection": {
        "id": Variant("s", "Hotspot"),
        "uuid": Variant("s", AP_UUID),
        "type": Variant("s", "802-11-wireless"),
        "interface-name": Variant("s", "wlp3s0"),
        "autoconnect": Variant("b", False),
        "permissions": Variant("as", []),
    },
    "802-11-wireless": {
        "mode": Variant("s", "ap"),
        "ssid": Variant("ay", b"hotspotguard"),
        "band": Variant("s", "bg"),
        "mac-address-blacklist": Variant("as", []),
    },
    "802-11-wireless-security": {"key-mgmt": Variant("s", "wpa-psk")},
    "ipv4": {
        "method": Variant("s", "shared"),
        "address-data": Variant("aa{sv}", []),
        "dns-search": Variant("as", []),
    },
    "ipv6": {"method": Variant("s", "shared"), "addr-gen-mode": Variant("i", 3)},
    "proxy": {},
}
UPLINK_SETTINGS = {
    "connection": {
        "id": Variant("s", "Wired"),
        "uuid": Variant("s", "0a3c7c1e-3b6d-4e8e-8f1a-3a0e2f8f0b22"),
        "type": Variant("s", "802-3-ethernet"),
    },
    "ipv4": {"method": Variant("s", "auto")},
    "ipv6": {"method": Variant("s", "auto")},
}


class FakeNetworkManager:
    """NM's objects for a Wi-Fi hotspot (AC/3 on Devices/3) beside a wired uplink (AC/1)."""

    def __init__(self, bus: MessageBus) -> None:
        self.bus = bus
        self.root = FakeNM([f"{NM}/ActiveConnection/3", f"{NM}/ActiveConnection/1"])
        self.ap = FakeActive(
            {
                "Type": "802-11-wireless",
                "Id": "Hotspot",
                "Uuid": AP_UUID,
                "State": 2,
                "Devices": [f"{NM}/Devices/3"],
                "Ip4Config": f"{NM}/IP4Config/3",
                "Ip6Config": f"{NM}/IP6Config/3",
                "Connection": f"{NM}/Settings/3",
            }
        )
        self.ip4 = FakeIPConfig(4, [("10.42.0.1", 24)])
        self.ip6 = FakeIPConfig(6, [("fd42::1", 64), ("fe80::1", 64)])
        uplink = FakeActive(
            {
                "Type": "802-3-ethernet",
                "Id": "Wired",
                "Uuid": "0a3c7c1e-3b6d-4e8e-8f1a-3a0e2f8f0b22",
                "State": 2,
                "Devices": [f"{NM}/Devices/2"],
                "Ip4Config": f"{NM}/IP4Config/2",
                "Ip6Config": "/",
                "Connection": f"{NM}/Settings/1",
            }
        )
        self.ap_settings = FakeSettingsConnection(AP_SETTINGS)
        for path, iface in (
            (NM, self.root),
            (f"{NM}/ActiveConnection/3", self.ap),
            (f"{NM}/Devices/3", FakeDevice("wlp3s0", 2)),
            (f"{NM}/IP4Config/3", self.ip4),
            (f"{NM}/IP6Config/3", self.ip6),
            (f"{NM}/Settings/3", self.ap_settings),
            (f"{NM}/ActiveConnection/1", uplink),
            (f"{NM}/Devices/2", FakeDevice("enp1s0", 1)),
            (f"{NM}/IP4Config/2", FakeIPConfig(4, [("192.168.1.20", 24)])),
            (f"{NM}/Settings/1", FakeSettingsConnection(UPLINK_SETTINGS)),
        ):
            bus.export(path, iface)

    def resend_active_connections(self) -> None:
        self.root.emit_properties_changed({"ActiveConnections": self.root.active})

    def set_ipv4(self, addresses: list[tuple[str, int]]) -> None:
        self.ip4.addresses = addresses
        self.ip4.emit_properties_changed({"AddressData": self.ip4.address_data()})


EXPECTED_AP = SharedConnection(
    id="Hotspot",
    uuid=AP_UUID,
    type="802-11-wireless",
    mode="ap",
    path=f"{NM}/ActiveConnection/3",
    iface="wlp3s0",
    ipv4=("10.42.0.1/24",),
    ipv6=("fd42::1/64", "fe80::1/64"),
    state=2,
    ipv4_method="shared",
    ipv6_method="shared",
)


async def _fake_nm(address: str) -> tuple[MessageBus, FakeNetworkManager]:
    bus = await MessageBus(bus_address=address, bus_type=BusType.SYSTEM).connect()
    fake = FakeNetworkManager(bus)
    await bus.request_name(NM_BUS_NAME)
    return bus, fake


def test_wifi_access_point_shape() -> None:
    with private_bus() as address:

        async def scenario() -> None:
            service, fake = await _fake_nm(address)
            client = await MessageBus(bus_address=address, bus_type=BusType.SYSTEM).connect()
            try:
                assert await shared_connections(client) == [EXPECTED_AP]
                watch, rec = make_watch(address)
                await watch.start()
                try:
                    assert watch.status.kind == "ok"
                    assert watch.connections == (EXPECTED_AP,)
                    assert rec.calls == []  # start() reports the first state, not on_change
                    # ActiveConnections re-sent unchanged (as on every device change): nothing
                    before = watch.refreshes
                    for _ in range(20):
                        fake.resend_active_connections()
                    fake.set_ipv4([("10.42.0.1", 24)])  # AddressData re-sent, same value
                    await asyncio.sleep(0.2)
                    assert rec.calls == []
                    assert watch.refreshes <= before + 1
                    # a real AddressData change of the hotspot's IP4Config: one call
                    fake.set_ipv4([("10.42.1.1", 24)])
                    await until(lambda: watch.connections[0].ipv4 == ("10.42.1.1/24",))
                    assert len(rec.calls) == 1
                    # NetworkManager leaves the bus and comes back
                    await service.release_name(NM_BUS_NAME)
                    await until(lambda: watch.status.kind == "networkmanager-not-running")
                    assert watch.connections == ()
                    await service.request_name(NM_BUS_NAME)
                    await until(lambda: watch.status.kind == "ok" and bool(watch.connections))
                    rec.assert_each_call_is_a_change()
                    assert [kind for kind, _ in rec.calls] == [
                        "ok",
                        "networkmanager-not-running",
                        "ok",
                    ]
                finally:
                    await watch.stop()
            finally:
                client.disconnect()
                service.disconnect()

        run(scenario())


def test_networkmanager_errors_are_a_status_not_an_exception() -> None:
    with private_bus() as address:

        async def scenario() -> None:
            service, fake = await _fake_nm(address)
            client = await MessageBus(bus_address=address, bus_type=BusType.SYSTEM).connect()
            watch, rec = make_watch(address)
            try:
                fake.ap_settings.fail = True
                with pytest.raises(DBusError, match="not allowed"):
                    await shared_connections(client)  # the one-shot read does raise
                await watch.start()
                assert watch.status.kind == "networkmanager-error"
                assert "PermissionDenied" in watch.status.message
                assert watch.connections == ()
                fake.ap_settings.fail = False
                fake.ap_settings.Updated()
                await until(lambda: watch.status.kind == "ok")
                assert watch.connections == (EXPECTED_AP,)
                assert [k for k, _ in rec.calls] == ["ok"]
            finally:
                await watch.stop()
                client.disconnect()
                service.disconnect()

        run(scenario())


def test_watch_without_a_bus_says_so_and_never_raises(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # the address comes from DBUS_SYSTEM_BUS_ADDRESS when none is given
    monkeypatch.setenv("DBUS_SYSTEM_BUS_ADDRESS", f"unix:path={tmp_path}/no-such-socket")

    async def scenario() -> None:
        rec = Recorder()
        watch = rec.watch = NetworkManagerWatch(rec, backoff_first=0.05)
        await watch.start()
        assert watch.status.kind == "bus-unavailable"
        assert "system bus" in watch.status.message
        assert watch.connections == ()
        await asyncio.sleep(0.2)  # retries quietly: the status kind does not change
        assert rec.calls == []
        await watch.stop()

    run(scenario())


# --- a real NetworkManager -----------------------------------------------------------------------


def _hotspots(watch: NetworkManagerWatch) -> list[SharedConnection]:
    return [c for c in watch.connections if c.activated and c.ipv4 == ("10.42.0.1/24",)]


@pytest.mark.kernel
def test_shared_connections_sees_the_hotspot(nm_lab: NmLab) -> None:
    async def scenario() -> list[SharedConnection]:
        bus = await MessageBus(bus_address=nm_lab.bus_address, bus_type=BusType.SYSTEM).connect()
        try:
            assert await shared_connections(bus) == []  # the uplink is not shared
            await asyncio.to_thread(nm_lab.up, "hotspot")
            return await shared_connections(bus)
        finally:
            bus.disconnect()

    (hotspot,) = run(scenario())
    assert hotspot.id == "hotspot"
    assert hotspot.type == "802-3-ethernet"
    assert hotspot.mode is None
    assert hotspot.iface == "hs0"
    assert hotspot.ipv4 == ("10.42.0.1/24",)
    assert hotspot.ipv6 == ()
    assert hotspot.state == 2
    assert (hotspot.ipv4_method, hotspot.ipv6_method) == ("shared", "disabled")
    assert hotspot.path.startswith(f"{NM}/ActiveConnection/")


@pytest.mark.kernel
def test_watch_follows_activation_and_networkmanager_restarts(nm_lab: NmLab) -> None:
    lab = nm_lab

    async def scenario() -> None:
        watch, rec = make_watch(lab.bus_address)
        await watch.start()
        try:
            assert watch.status.kind == "ok" and watch.connections == ()
            # up -> one connection
            await asyncio.to_thread(lab.up, "hotspot")
            await until(lambda: len(_hotspots(watch)) == 1, what="hotspot up")
            first = watch.connections[0]
            assert (first.iface, first.ipv4) == ("hs0", ("10.42.0.1/24",))
            # the uplink's churn re-sends ActiveConnections many times: no callback
            n, refreshes = len(rec.calls), watch.refreshes
            await asyncio.to_thread(lab.down, "uplink")
            await asyncio.to_thread(lab.up, "uplink")
            await asyncio.sleep(0.3)
            assert len(rec.calls) == n
            assert watch.connections == (first,)
            assert watch.refreshes > refreshes  # the signals did arrive
            # down -> none
            await asyncio.to_thread(lab.down, "hotspot")
            await until(lambda: watch.connections == (), what="hotspot down")
            # up again -> a new active-connection path, one connection
            await asyncio.to_thread(lab.up, "hotspot")
            await until(lambda: len(_hotspots(watch)) == 1, what="hotspot up again")
            assert watch.connections[0].path != first.path
            # NetworkManager stopped (SIGTERM) -> not running, empty
            await asyncio.to_thread(lab.stop_networkmanager, signal.SIGTERM)
            await until(lambda: watch.status.kind == "networkmanager-not-running")
            assert watch.connections == ()
            # restarted -> back (NM does not re-activate a shared profile it tore down)
            await asyncio.to_thread(lab.start_networkmanager)
            await until(lambda: watch.status.kind == "ok", what="NM back")
            await asyncio.to_thread(lab.up, "hotspot")
            await until(lambda: len(_hotspots(watch)) == 1, what="hotspot after NM restart")
            rec.assert_each_call_is_a_change()
            assert watch.status.kind == "ok"
        finally:
            await watch.stop()

    run(scenario())


@pytest.mark.kernel
def test_watch_reconnects_after_the_bus_restarts(nm_lab: NmLab) -> None:
    lab = nm_lab

    async def scenario() -> None:
        watch, rec = make_watch(lab.bus_address)
        await lab_up_and_start(watch)
        try:
            t0 = time.monotonic()
            await asyncio.to_thread(lab.stop_dbus)
            await until(lambda: watch.status.kind == "bus-unavailable", what="bus gone")
            assert watch.connections == ()
            await asyncio.to_thread(lab.start_dbus)
            # NetworkManager 1.42 does not rejoin a new bus: the watch is back on the bus, NM not
            await until(lambda: watch.status.kind == "networkmanager-not-running", what="bus back")
            assert time.monotonic() - t0 < 5
            await asyncio.to_thread(lab.restart_networkmanager)
            await until(lambda: watch.status.kind == "ok", what="NM on the new bus")
            await asyncio.to_thread(lab.up, "hotspot")
            await until(lambda: len(_hotspots(watch)) == 1, what="hotspot on the new bus")
            rec.assert_each_call_is_a_change()
            # dbus-daemon, when stopping, may drop NetworkManager before us (NameOwnerChanged)
            kinds = [k for i, (k, _) in enumerate(rec.calls) if i == 0 or rec.calls[i - 1][0] != k]
            i = kinds.index("bus-unavailable")
            assert kinds[i:] == ["bus-unavailable", "networkmanager-not-running", "ok"], kinds
            # the lab's one-step restart (bus, then NetworkManager): back again
            n = len(rec.calls)
            await asyncio.to_thread(lab.restart_dbus)
            await until(lambda: len(rec.calls) > n and watch.status.kind == "ok", what="restart")
            await asyncio.to_thread(lab.up, "hotspot")
            await until(lambda: len(_hotspots(watch)) == 1, what="hotspot after the restart")
            rec.assert_each_call_is_a_change()
        finally:
            await watch.stop()

    async def lab_up_and_start(watch: NetworkManagerWatch) -> None:
        await asyncio.to_thread(lab.up, "hotspot")
        await watch.start()
        assert len(_hotspots(watch)) == 1

    run(scenario())


@pytest.mark.kernel
def test_callback_fires_once_per_real_change(nm_lab: NmLab) -> None:
    lab = nm_lab

    async def scenario() -> None:
        watch, rec = make_watch(lab.bus_address)
        await watch.start()
        try:
            for _ in range(3):
                await asyncio.to_thread(lab.up, "hotspot")
                await until(lambda: len(_hotspots(watch)) == 1)
                await asyncio.to_thread(lab.down, "hotspot")
                await until(lambda: watch.connections == ())
            await asyncio.sleep(0.2)
        finally:
            await watch.stop()
        rec.assert_each_call_is_a_change()
        # each cycle: activating (may be coalesced), activated, [deactivating], gone
        assert 6 <= len(rec.calls) <= 15, rec.calls
        assert sum(1 for _, conns in rec.calls if conns == ()) == 3

    run(scenario())


@pytest.mark.kernel
def test_lab_teardown_kills_the_dnsmasq_a_killed_networkmanager_leaves() -> None:
    reason = nm_lab_unavailable_reason()
    if reason:
        pytest.skip(reason)
    with nm_lab_session() as lab:
        lab.up("hotspot")
        lab.stop_networkmanager(signal.SIGKILL)  # leaves dnsmasq (and the nft table) behind
        left = lab.host_pids()
        assert any(b"dnsmasq" in Path(f"/proc/{p}/cmdline").read_bytes() for p in left)
    assert not [p for p in left if Path(f"/proc/{p}").exists() and _alive(p)]
    assert (
        lab.host
        not in subprocess.run(["ip", "netns", "list"], capture_output=True, text=True).stdout
    )


def _alive(pid: int) -> bool:
    with contextlib.suppress(OSError):
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] not in "ZX"
    return False


def test_report_lab_times() -> None:
    """Not a check: keeps the NM lab's build/teardown times visible with -rA / -s."""
    if LAB_TIMES:
        ups = [u for u, _ in LAB_TIMES]
        downs = [d for _, d in LAB_TIMES]
        print(
            f"NetworkManager lab: {len(LAB_TIMES)} builds, up {min(ups):.2f}-{max(ups):.2f} s, "
            f"down {min(downs):.2f}-{max(downs):.2f} s"
        )
