"""The control API over a real unix socket and real TCP listeners, with a fake controller."""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import socket
import stat
import sys
import tempfile
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from ipaddress import ip_address
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from prometheus_client.parser import text_string_to_metric_families

from hacluster.api import (
    ApiError,
    ApiServer,
    DaemonUnreachable,
    InstanceStatus,
    Listeners,
    RealServerStatus,
    Status,
    UnknownInstance,
    UnknownRealServer,
    UnknownVirtualServer,
    VirtualServerStatus,
    bind_unix,
    call,
    encode_json,
    normalize_real_server,
    normalize_virtual_server,
)
from hacluster.commands.status import age, render
from hacluster.config.model import HostPort, RealServer, VirtualServer
from hacluster.ipvs.listing import to_json
from hacluster.ipvs.model import Destination, Forward, Protocol, Service, Table
from hacluster.metrics import Metrics

TOKEN = "s3cret-token"
VS = "10.99.0.100:80/TCP"
LOOPBACK = HostPort(ip_address("127.0.0.1"), 0)


@dataclass
class FakeController:
    """A daemon stand-in: two instances, one virtual server with three real servers."""

    drained: set[tuple[str, str]] = field(default_factory=set)
    maintenance_on: set[str] = field(default_factory=set)
    reload_ok: bool = True
    reloads: int = 0
    calls: list[tuple[Any, ...]] = field(default_factory=list)
    broken: bool = False
    ipvs_broken: bool = False
    reals: dict[str, int] = field(
        default_factory=lambda: {"10.99.0.11:80": 3, "10.99.0.12:80": 1, "10.99.0.13:80": 2}
    )

    def _instance(self, name: str, vrid: int, state: str) -> InstanceStatus:
        maint = name in self.maintenance_on
        return InstanceStatus(
            name=name, state=state, interface="eth0", virtual_router_id=vrid,
            base_priority=150, effective_priority=1 if maint else 150,
            master="10.0.0.1", virtual_ipaddress=["10.99.0.100/24"], maintenance=maint,
            last_transition={"previous": "BACKUP", "state": state,
                             "reason": "master down timer", "age_seconds": 133.0},
        )

    def _real(self, name: str, weight: int) -> RealServerStatus:
        drained = (VS, name) in self.drained
        up = name != "10.99.0.12:80"
        return RealServerStatus(
            name=name, up=up, weight=weight,
            effective_weight=(0 if drained else weight) if up else None, drained=drained,
            checks=[{"checker": "HTTP_GET", "ok": up,
                     "reason": "200 OK" if up else "connection refused",
                     "age_seconds": 1.5, "duration_seconds": 0.003}],
        )

    async def status(self) -> Status:
        if self.broken:
            raise RuntimeError("controller exploded")
        return Status(
            router_id="lvs-a", version="0.1.0", dataplane="nftables", uptime_seconds=7322.0,
            config_file="/etc/hacluster/hacluster.yaml",
            instances=[self._instance("VI_1", 51, "MASTER"), self._instance("VI_2", 52, "BACKUP")],
            virtual_servers=[VirtualServerStatus(
                name=VS, lb_algo="wrr", lb_kind="NAT", quorum=1, quorum_up=True,
                sorry_server=None, sorry_server_active=False,
                real_servers=[self._real(n, w) for n, w in self.reals.items()],
            )],
        )

    async def ipvs(self) -> dict[str, Any]:
        if self.ipvs_broken:
            raise OSError("nft: permission denied")
        svc = Service(protocol=Protocol.TCP, address=ip_address("10.99.0.100"), port=80,
                      scheduler="wrr")
        dests = [
            Destination(ip_address(n.split(":")[0]), 80,
                        weight=0 if (VS, n) in self.drained else w, forward=Forward.NAT)
            for n, w in self.reals.items() if n != "10.99.0.12:80"
        ]
        return to_json(Table.of([(svc, dests)]))

    def _check(self, vs: str, rs: str) -> None:
        if vs != VS:
            raise UnknownVirtualServer(vs)
        if rs not in self.reals:
            raise UnknownRealServer(vs, rs)

    async def drain(self, virtual_server: str, real_server: str) -> None:
        self.calls.append(("drain", virtual_server, real_server))
        self._check(virtual_server, real_server)
        self.drained.add((virtual_server, real_server))

    async def undrain(self, virtual_server: str, real_server: str) -> None:
        self.calls.append(("undrain", virtual_server, real_server))
        self._check(virtual_server, real_server)
        self.drained.discard((virtual_server, real_server))

    async def maintenance(self, instance: str, on: bool) -> None:
        self.calls.append(("maintenance", instance, on))
        if instance not in ("VI_1", "VI_2"):
            raise UnknownInstance(instance)
        (self.maintenance_on.add if on else self.maintenance_on.discard)(instance)

    async def reload(self) -> tuple[bool, str]:
        self.calls.append(("reload",))
        self.reloads += 1
        if self.reload_ok:
            return True, "reloaded: 1 instance changed"
        return False, "hacluster.yaml:12: vrrp_instances.VI_1.priority: must be 1..255"


@pytest.fixture
def controller() -> FakeController:
    return FakeController()


@pytest.fixture
def metrics() -> Metrics:
    return Metrics(version="0.1.0")


@pytest.fixture
def sock_path(tmp_path: Path) -> Path:
    return tmp_path / "run" / "hacluster.sock"


@pytest.fixture
async def server(
    controller: FakeController, metrics: Metrics, sock_path: Path
) -> AsyncIterator[ApiServer]:
    api = ApiServer(controller, metrics, Listeners(
        control_socket=sock_path, api_listen=LOOPBACK, api_token=TOKEN, metrics_listen=LOOPBACK,
    ))
    await api.start()
    try:
        yield api
    finally:
        await api.stop()


def _url(address: tuple[str, int] | None, path: str) -> str:
    assert address is not None
    return f"http://{address[0]}:{address[1]}{path}"


async def _tcp(method: str, url: str, **kwargs: Any) -> tuple[int, Any, dict[str, str]]:
    async with aiohttp.ClientSession() as session, session.request(method, url, **kwargs) as r:
        body = await r.json() if r.content_type == "application/json" else await r.text()
        return r.status, body, dict(r.headers)


# --------------------------------------------------------------------------- unix socket


async def test_socket_is_0600_and_removed_at_stop(server: ApiServer, sock_path: Path) -> None:
    st = os.stat(sock_path)
    assert stat.S_ISSOCK(st.st_mode)
    assert stat.S_IMODE(st.st_mode) == 0o600
    assert st.st_uid == os.geteuid()
    assert os.listdir(sock_path.parent) == ["hacluster.sock"]  # no temporary left behind
    await server.stop()
    assert not sock_path.exists()


async def test_status_over_unix(server: ApiServer, sock_path: Path) -> None:
    code, data = await call(sock_path, "GET", "/v1/status")
    assert code == 200
    assert [i["name"] for i in data["instances"]] == ["VI_1", "VI_2"]
    assert data["instances"][0]["state"] == "MASTER"
    assert data["instances"][0]["last_transition"]["reason"] == "master down timer"
    reals = data["virtual_servers"][0]["real_servers"]
    assert [(r["name"], r["up"], r["weight"]) for r in reals] == [
        ("10.99.0.11:80", True, 3), ("10.99.0.12:80", False, 1), ("10.99.0.13:80", True, 2)]
    assert data["ipvs"] == [
        {"service": VS, "scheduler": "wrr", "destination": "10.99.0.11:80", "forward": "NAT",
         "weight": 3, "active_conns": 0, "inactive_conns": 0},
        {"service": VS, "scheduler": "wrr", "destination": "10.99.0.13:80", "forward": "NAT",
         "weight": 2, "active_conns": 0, "inactive_conns": 0},
    ]
    code, table = await call(sock_path, "GET", "/v1/ipvs")
    assert code == 200
    assert table["services"][0]["scheduler"] == "wrr"
    assert len(table["services"][0]["destinations"]) == 2


async def test_drain_and_undrain(
    server: ApiServer, sock_path: Path, controller: FakeController
) -> None:
    drain = "/v1/servers/10.99.0.100:80%2FTCP/10.99.0.11:80/drain"  # `/` written as %2F
    code, data = await call(sock_path, "POST", drain)
    assert (code, data["drained"]) == (200, True)
    assert controller.drained == {(VS, "10.99.0.11:80")}
    code, status = await call(sock_path, "GET", "/v1/status")
    rs = status["virtual_servers"][0]["real_servers"][0]
    assert (rs["drained"], rs["effective_weight"]) == (True, 0)
    assert status["ipvs"][0]["weight"] == 0
    # `IP:PORT` alone means TCP; the names reach the controller in canonical form.
    code, data = await call(sock_path, "POST", "/v1/servers/10.99.0.100:80/10.99.0.11:80/undrain")
    assert (code, data["drained"]) == (200, False)
    assert controller.drained == set()
    assert controller.calls[-1] == ("undrain", VS, "10.99.0.11:80")


@pytest.mark.parametrize(
    ("path", "message"),
    [
        ("/v1/servers/10.99.0.200:80/10.99.0.11:80/drain",
         "no virtual server '10.99.0.200:80/TCP'"),
        ("/v1/servers/10.99.0.100:80/10.99.0.99:80/drain", "has no real server '10.99.0.99:80'"),
        ("/v1/servers/garbage/10.99.0.11:80/undrain", "no virtual server 'garbage'"),
        ("/v1/instances/VI_9/maintenance?on=1", "no VRRP instance 'VI_9'"),
    ],
)
async def test_unknown_names_are_404(
    server: ApiServer, sock_path: Path, controller: FakeController, path: str, message: str
) -> None:
    code, data = await call(sock_path, "POST", path)
    assert code == 404
    assert message in data["error"]
    assert controller.drained == set() and controller.maintenance_on == set()


async def test_maintenance_on_and_off(
    server: ApiServer, sock_path: Path, controller: FakeController
) -> None:
    code, data = await call(sock_path, "POST", "/v1/instances/VI_1/maintenance", body={"on": True})
    assert (code, data["maintenance"]) == (200, True)
    code, status = await call(sock_path, "GET", "/v1/status")
    assert status["instances"][0]["maintenance"] is True
    assert status["instances"][0]["effective_priority"] == 1
    code, data = await call(sock_path, "POST", "/v1/instances/VI_1/maintenance?on=off")
    assert (code, data["maintenance"]) == (200, False)
    assert controller.maintenance_on == set()


@pytest.mark.parametrize(
    "kwargs",
    [{"body": {"on": "yes"}}, {"body": {}}, {"body": None}, {"body": [True]}],
)
async def test_maintenance_bad_request_is_400(
    server: ApiServer, sock_path: Path, controller: FakeController, kwargs: dict[str, Any]
) -> None:
    code, data = await call(sock_path, "POST", "/v1/instances/VI_1/maintenance", **kwargs)
    assert code == 400
    assert '{"on": true}' in data["error"]
    assert not any(c[0] == "maintenance" for c in controller.calls)


async def test_maintenance_bad_query_and_bad_json(server: ApiServer, sock_path: Path) -> None:
    code, data = await call(sock_path, "POST", "/v1/instances/VI_1/maintenance?on=maybe")
    assert code == 400 and "'maybe'" in data["error"]
    async with aiohttp.ClientSession(connector=aiohttp.UnixConnector(path=str(sock_path))) as s:
        async with s.post("http://x/v1/instances/VI_1/maintenance", data=b"{nope") as r:
            assert r.status == 400
            assert "not JSON" in (await r.json())["error"]
        async with s.post("http://x/v1/instances/VI_1/maintenance", data=b"x" * 131072) as r:
            assert r.status == 413
            assert "error" in await r.json()


async def test_reload_ok_and_refused(
    server: ApiServer, sock_path: Path, controller: FakeController
) -> None:
    code, data = await call(sock_path, "POST", "/v1/reload")
    assert (code, data["ok"]) == (200, True)
    controller.reload_ok = False
    code, data = await call(sock_path, "POST", "/v1/reload")
    assert code == 422
    assert data["ok"] is False and "must be 1..255" in data["error"]
    assert controller.reloads == 2


async def test_unknown_endpoint_and_method(server: ApiServer, sock_path: Path) -> None:
    code, data = await call(sock_path, "GET", "/v1/nothing")
    assert code == 404 and "no such endpoint" in data["error"]
    code, data = await call(sock_path, "GET", "/v1/reload")
    assert code == 405 and "GET is not allowed" in data["error"]


async def test_controller_failure_is_500_and_api_survives(
    server: ApiServer, sock_path: Path, controller: FakeController
) -> None:
    controller.broken = True
    code, data = await call(sock_path, "GET", "/v1/status")
    assert code == 500 and "controller exploded" in data["error"]
    controller.broken = False
    code, _ = await call(sock_path, "GET", "/v1/status")
    assert code == 200


async def test_status_survives_an_ipvs_failure(
    server: ApiServer, sock_path: Path, controller: FakeController
) -> None:
    controller.ipvs_broken = True
    code, data = await call(sock_path, "GET", "/v1/status")
    assert code == 200
    assert data["ipvs"] == [] and "permission denied" in data["ipvs_error"]
    assert len(data["instances"]) == 2


# --------------------------------------------------------------------------- socket file


def test_stale_socket_is_replaced_live_one_refused(tmp_path: Path) -> None:
    path = tmp_path / "ctl.sock"
    stale = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    stale.bind(str(path))
    stale.close()  # the file stays, nobody listens: a crashed daemon's leftover
    old_ino = os.stat(path).st_ino
    sock = bind_unix(path)
    try:
        assert os.stat(path).st_ino != old_ino
        assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
        with pytest.raises(ApiError, match="another process answers"):
            bind_unix(path)
        assert os.stat(path).st_ino != old_ino  # the live socket was left alone
    finally:
        sock.close()


def test_refuses_to_replace_a_regular_file(tmp_path: Path) -> None:
    path = tmp_path / "important.txt"
    path.write_text("keep me")
    with pytest.raises(ApiError, match="not a socket"):
        bind_unix(path)
    assert path.read_text() == "keep me"
    with pytest.raises(ApiError, match="at most 107 bytes"):
        bind_unix(tmp_path / ("x" * 120))


async def test_stop_leaves_a_newer_daemons_socket(
    controller: FakeController, metrics: Metrics, tmp_path: Path
) -> None:
    path = tmp_path / "ctl.sock"
    api = ApiServer(controller, metrics, Listeners(control_socket=path))
    await api.start()
    os.unlink(path)
    newer = bind_unix(path)  # another daemon took the path over
    try:
        await api.stop()
        assert stat.S_ISSOCK(os.stat(path).st_mode)
    finally:
        newer.close()


async def test_no_daemon_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(DaemonUnreachable, match="no daemon answers"):
        await call(tmp_path / "missing.sock", "GET", "/v1/status")


# --------------------------------------------------------------------------- TCP and tokens


async def test_tcp_reads_need_no_token(server: ApiServer) -> None:
    code, data, _ = await _tcp("GET", _url(server.tcp_address, "/v1/status"))
    assert code == 200 and data["router_id"] == "lvs-a"


@pytest.mark.parametrize(
    ("headers", "code", "message"),
    [
        ({}, 401, "Bearer token"),
        ({"Authorization": "Basic dXNlcjpwYXNz"}, 401, "Bearer <token>"),
        ({"Authorization": "Bearer"}, 401, "Bearer <token>"),
        ({"Authorization": "Bearer wrong-token"}, 403, "wrong token"),
        ({"Authorization": f"Bearer {TOKEN}x"}, 403, "wrong token"),
    ],
)
async def test_tcp_changes_refused_without_the_token(
    server: ApiServer, controller: FakeController,
    headers: dict[str, str], code: int, message: str,
) -> None:
    for path in ("/v1/servers/10.99.0.100:80/10.99.0.11:80/drain",
                 "/v1/instances/VI_1/maintenance?on=1", "/v1/reload"):
        status, data, hdrs = await _tcp("POST", _url(server.tcp_address, path), headers=headers)
        assert status == code, path
        assert message in data["error"]
        if code == 401:
            assert hdrs["WWW-Authenticate"].startswith("Bearer")
    assert controller.calls == []  # nothing reached the controller


async def test_tcp_changes_with_the_token(server: ApiServer, controller: FakeController) -> None:
    auth = {"Authorization": f"Bearer {TOKEN}"}
    code, data, _ = await _tcp(
        "POST", _url(server.tcp_address, "/v1/servers/10.99.0.100:80/10.99.0.13:80/drain"),
        headers=auth)
    assert code == 200
    assert controller.drained == {(VS, "10.99.0.13:80")}
    code, data, _ = await _tcp("POST", _url(server.tcp_address, "/v1/reload"), headers=auth)
    assert (code, data["ok"]) == (200, True)


async def test_tcp_without_a_token_is_read_only(
    controller: FakeController, metrics: Metrics
) -> None:
    async with ApiServer(controller, metrics,
                         Listeners(control_socket=None, api_listen=LOOPBACK)) as api:
        code, _, _ = await _tcp("GET", _url(api.tcp_address, "/v1/status"))
        assert code == 200
        code, data, _ = await _tcp("POST", _url(api.tcp_address, "/v1/reload"),
                                   headers={"Authorization": "Bearer anything"})
        assert code == 403 and "read-only" in data["error"]
    assert controller.calls == []


async def test_new_token_takes_effect_without_rebinding(
    server: ApiServer, controller: FakeController
) -> None:
    before = server.tcp_address
    await server.reconfigure(Listeners(
        control_socket=server.listeners.control_socket, api_listen=LOOPBACK,
        api_token="new-token", metrics_listen=LOOPBACK,
    ))
    assert server.tcp_address == before
    code, _, _ = await _tcp("POST", _url(server.tcp_address, "/v1/reload"),
                            headers={"Authorization": f"Bearer {TOKEN}"})
    assert code == 403
    code, _, _ = await _tcp("POST", _url(server.tcp_address, "/v1/reload"),
                            headers={"Authorization": "Bearer new-token"})
    assert code == 200


async def test_port_in_use_is_a_clear_error(
    controller: FakeController, metrics: Metrics, tmp_path: Path
) -> None:
    taken = socket.socket()
    taken.bind(("127.0.0.1", 0))
    taken.listen()
    try:
        port = taken.getsockname()[1]
        path = tmp_path / "ctl.sock"
        api = ApiServer(controller, metrics, Listeners(
            control_socket=path, api_listen=HostPort(ip_address("127.0.0.1"), port)))
        with pytest.raises(ApiError, match=f"127.0.0.1:{port}: cannot listen"):
            await api.start()
        assert not path.exists()  # a failed start leaves nothing bound
    finally:
        taken.close()


# --------------------------------------------------------------------------- metrics


def _families(text: str) -> dict[str, Any]:
    return {f.name: f for f in text_string_to_metric_families(text)}


async def test_metrics_on_api_and_own_listener(
    server: ApiServer, metrics: Metrics, sock_path: Path
) -> None:
    metrics.vrrp_transition("VI_1", "MASTER")
    metrics.check_done("HTTP_GET", "success", 0.004)
    metrics.real_server(VS, "10.0.0.11:80", up=True, weight=2)
    code, text, headers = await _tcp("GET", _url(server.metrics_address, "/metrics"))
    assert code == 200
    assert headers["Content-Type"].startswith("text/plain")
    fams = _families(text)
    states = {s.labels["state"]: s.value for s in fams["hacluster_vrrp_state"].samples}
    assert states == {"INITIALIZE": 0, "BACKUP": 0, "MASTER": 1, "FAULT": 0}
    up = fams["hacluster_real_server_up"].samples[0]
    assert (up.labels["virtual_server"], up.value) == (VS, 1)
    # The same registry behind the API's own /metrics (unix socket).
    async with (
        aiohttp.ClientSession(connector=aiohttp.UnixConnector(path=str(sock_path))) as s,
        s.get("http://x/metrics") as r,
    ):
        assert r.status == 200
        again = _families(await r.text())
    assert "hacluster_checks" in again and "hacluster_check_duration_seconds" in again
    # The metrics listener serves nothing else.
    code, data, _ = await _tcp("POST", _url(server.metrics_address, "/v1/reload"))
    assert code == 404 and "no such endpoint" in data["error"]


# --------------------------------------------------------------------------- hacluster status


async def _cli(*args: str) -> tuple[int, str, str]:
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "hacluster.cli", "status", *args,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )
    out, err = await asyncio.wait_for(proc.communicate(), 60)
    assert proc.returncode is not None
    return proc.returncode, out.decode(), err.decode()


async def test_hacluster_status_command(
    server: ApiServer, sock_path: Path, controller: FakeController
) -> None:
    controller.drained.add((VS, "10.99.0.13:80"))
    code, out, err = await _cli("--control-socket", str(sock_path))
    assert code == 0, err
    lines = out.splitlines()
    assert lines[0].startswith("hacluster 0.1.0 on lvs-a, up 2h02m, dataplane nftables")
    vi1 = next(line.split() for line in lines if line.strip().startswith("VI_1"))
    assert vi1[:8] == ["VI_1", "MASTER", "150", "150", "eth0", "51", "10.0.0.1", "2m13s"]
    assert any(line.split()[:3] == [VS, "wrr", "NAT"] and "2/3 up" in line for line in lines)
    rows = {line.split()[0]: line.split() for line in lines if line.startswith("    10.99")}
    assert rows["10.99.0.11:80"][1:4] == ["up", "3", "3"]
    assert rows["10.99.0.12:80"][1:4] == ["DOWN", "1", "-"]
    assert rows["10.99.0.13:80"][1:4] == ["up,drained", "2", "0"]
    assert "connection refused" in " ".join(rows["10.99.0.12:80"])

    code, out, err = await _cli("--json", "--control-socket", str(sock_path))
    assert code == 0, err
    data = json.loads(out)
    assert data["virtual_servers"][0]["real_servers"][2]["drained"] is True
    assert len(data["ipvs"]) == 2


async def test_hacluster_status_without_daemon(tmp_path: Path) -> None:
    code, out, err = await _cli("--control-socket", str(tmp_path / "none.sock"))
    assert code == 1
    assert out == ""
    assert "no daemon answers on" in err and "none.sock" in err


# --------------------------------------------------------------------------- names


@pytest.mark.parametrize(
    ("text", "name"),
    [
        ("10.99.0.100:80/TCP", "10.99.0.100:80/TCP"),
        ("10.99.0.100:80", "10.99.0.100:80/TCP"),
        ("10.99.0.100:53/udp", "10.99.0.100:53/UDP"),
        ("[2001:db8::0001]:443", "[2001:db8::1]:443/TCP"),
        ("fwmark:7", "FWM 7/TCP"),
        ("FWM 7/UDP", "FWM 7/UDP"),
        ("web-vip", "web-vip"),  # not an address: passed on, the controller says 404
        ("10.99.0.300:80", "10.99.0.300:80"),
    ],
)
def test_virtual_server_names(text: str, name: str) -> None:
    assert normalize_virtual_server(text) == name


def test_names_agree_with_the_config_model() -> None:
    vs = VirtualServer(ip=ip_address("2001:db8::1"), port=443, protocol="TCP",
                       real_servers=(RealServer(ip=ip_address("2001:db8::11"), port=8443),))
    assert normalize_virtual_server("[2001:db8:0::1]:443") == str(vs)
    assert normalize_real_server("[2001:db8::0:11]:8443") == str(vs.real_servers[0])
    assert normalize_virtual_server("fwmark:3") == str(VirtualServer(fwmark=3))


async def test_json_is_encoded_in_slices_to_the_same_text() -> None:
    big = {"router_id": "lvs-a", "none": None, "empty": [],
           "virtual_servers": [{"name": f"vs{i}", "real_servers": [{"w": j} for j in range(50)]}
                               for i in range(400)]}
    loop = asyncio.get_running_loop()
    ran = asyncio.Event()
    loop.call_soon(ran.set)
    text = await encode_json(big)
    assert text == json.dumps(big)
    assert ran.is_set()  # the loop got a turn while encoding
    assert await encode_json({}) == "{}"
    assert await encode_json([1, 2]) == "[1, 2]"


@pytest.mark.skipif(os.geteuid() != 0, reason="needs root to try the socket as another user")
def test_other_users_cannot_connect(tmp_path: Path) -> None:
    public = Path(tempfile.mkdtemp(prefix="hck-api-"))  # a world-traversable directory
    try:
        public.chmod(0o755)
        sock = bind_unix(public / "ctl.sock")
        try:
            assert _connect_as(public / "ctl.sock", None) == "ok"
            assert _connect_as(public / "ctl.sock", 65534) == "PermissionError"
        finally:
            sock.close()
    finally:
        shutil.rmtree(public)


def _connect_as(path: Path, uid: int | None) -> str:
    """Connect from a forked child, optionally switched to `uid`; what happened."""
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: never returns into pytest
        code = 1
        try:
            os.close(read)
            if uid is not None:
                os.setgroups([])
                os.setgid(uid)
                os.setuid(uid)
            probe = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            try:
                probe.connect(str(path))
                result = "ok"
            except OSError as exc:
                result = type(exc).__name__
            os.write(write, result.encode())
            code = 0
        finally:
            os._exit(code)
    os.close(write)
    try:
        with os.fdopen(read, "rb") as pipe:
            answer = pipe.read().decode()
    finally:
        os.waitpid(pid, 0)
    return answer


async def test_reconfigure_moves_the_socket_and_listeners(
    server: ApiServer, sock_path: Path, tmp_path: Path
) -> None:
    old_tcp = server.tcp_address
    moved = tmp_path / "elsewhere" / "ctl.sock"
    await server.reconfigure(Listeners(control_socket=moved, api_listen=None,
                                       metrics_listen=LOOPBACK))
    assert not sock_path.exists()
    assert stat.S_IMODE(os.stat(moved).st_mode) == 0o600
    code, _ = await call(moved, "GET", "/v1/status")
    assert code == 200
    assert server.tcp_address is None
    assert old_tcp is not None
    with pytest.raises(aiohttp.ClientConnectionError):
        await _tcp("GET", _url(old_tcp, "/v1/status"))
    assert server.metrics_address is not None  # unchanged, still serving
    code, _, _ = await _tcp("GET", _url(server.metrics_address, "/metrics"))
    assert code == 200


@pytest.mark.skipif(not socket.has_ipv6, reason="no IPv6 in this Python")
async def test_tcp_over_ipv6_loopback(controller: FakeController, metrics: Metrics) -> None:
    where = HostPort(ip_address("::1"), 0)
    async with ApiServer(controller, metrics, Listeners(
        control_socket=None, api_listen=where, api_token=TOKEN)) as api:
        assert api.tcp_address is not None and api.tcp_address[0] == "::1"
        url = f"http://[::1]:{api.tcp_address[1]}/v1/instances/VI_2/maintenance?on=1"
        code, _, _ = await _tcp("POST", url, headers={"Authorization": f"Bearer {TOKEN}"})
        assert code == 200
    assert controller.maintenance_on == {"VI_2"}


async def test_reload_request_that_moves_the_socket_it_came_through(
    controller: FakeController, metrics: Metrics, tmp_path: Path
) -> None:
    first, second = tmp_path / "a.sock", tmp_path / "b.sock"
    api = ApiServer(controller, metrics, Listeners(control_socket=first))

    class Moving(FakeController):
        async def reload(self) -> tuple[bool, str]:
            await api.reconfigure(Listeners(control_socket=second))
            return True, "control socket moved"

    api.controller = Moving()
    await api.start()
    try:
        code, data = await call(first, "POST", "/v1/reload", timeout=30)
        assert (code, data["message"]) == (200, "control socket moved")
        for _ in range(100):  # the move happens once the answer is out
            if second.exists() and not first.exists():
                break
            await asyncio.sleep(0.05)
        assert not first.exists()
        code, _ = await call(second, "GET", "/v1/status")
        assert code == 200
    finally:
        await api.stop()
    assert not second.exists()


def test_status_rendering_tolerates_sparse_answers() -> None:
    text = render({
        "instances": [{"name": "VI_1", "state": "FAULT", "faults": ["eth1 down"],
                       "master": {"address": "10.0.0.2", "priority": 200}}],
        "virtual_servers": [{"name": "FWM 1/TCP", "real_servers": []}],
        "dataplane_error": "no IPVS in this kernel",
    })
    row = next(line.split() for line in text.splitlines() if line.strip().startswith("VI_1"))
    assert row[:2] == ["VI_1", "FAULT"] and "10.0.0.2" in row
    assert "faults: eth1 down" in text
    assert "FWM 1/TCP" in text and "0/0 up" in text
    assert "Dataplane unavailable: no IPVS in this kernel" in text
    assert [age(x) for x in (4, 133, 7322, 200000, -1, None)] == [
        "4s", "2m13s", "2h02m", "2d07h", "-", "-"]


async def test_summary_and_one_virtual_server(server: ApiServer, sock_path: Path) -> None:
    code, data = await call(sock_path, "GET", "/v1/summary")
    assert code == 200
    assert [(i["name"], i["state"]) for i in data["instances"]] == [
        ("VI_1", "MASTER"), ("VI_2", "BACKUP")]
    [vs] = data["virtual_servers"]
    assert (vs["name"], vs["real_servers_up"], vs["real_servers"]) == (VS, 2, 3)
    assert "checks" not in str(data)
    code, one = await call(sock_path, "GET", f"/v1/virtual_servers/{VS.replace('/', '%2F')}")
    assert code == 200, one
    assert one["name"] == VS and len(one["real_servers"]) == 3
    assert [r["destination"] for r in one["ipvs"]] == ["10.99.0.11:80", "10.99.0.13:80"]
    code, missing = await call(sock_path, "GET", "/v1/virtual_servers/10.1.1.1:80")
    assert code == 404, missing
