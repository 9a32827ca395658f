"""`hacluster ipvs list`: layouts, JSON, and a clear message when the backend cannot run;
the same listings read from a daemon's control socket (a real aiohttp server on a unix
socket, answering as the daemon's GET /v1/ipvs does)."""

from __future__ import annotations

import asyncio
import ipaddress
import json
import shutil
import socket
import tempfile
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web

from hacluster.cli import main
from hacluster.commands import ipvs as command
from hacluster.ipvs.backend import Backend, BackendUnavailable
from hacluster.ipvs.dataplane import NO_IPVS
from hacluster.ipvs.listing import from_json, render, to_json
from hacluster.ipvs.memory import MemoryBackend
from hacluster.ipvs.model import Destination, Forward, Protocol, Service, Stats, Table, TableStats

WEB = Service(Protocol.TCP, ipaddress.IPv4Address("10.0.0.1"), 80, scheduler="wrr")
TABLE = Table.of([(WEB, [Destination(ipaddress.IPv4Address("10.0.1.1"), 8080, 2)])])


def _fake_namespaces(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """Namespaces ns0..ns9 "exist" (`--netns` of a missing one is refused)."""
    netns = tmp_path / "netns"
    netns.mkdir()
    for i in range(10):
        (netns / f"ns{i}").touch()
    monkeypatch.setattr(command, "NETNS_DIR", netns)


@pytest.fixture
def opened(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> list[tuple[str, str | None]]:
    calls: list[tuple[str, str | None]] = []
    _fake_namespaces(monkeypatch, tmp_path)

    def fake_open(name: str, *, netns: str | None = None) -> Backend:
        calls.append((name, netns))
        return MemoryBackend(TABLE)

    monkeypatch.setattr(command, "open_backend", fake_open)
    return calls


def test_plain_listing(
    opened: list[tuple[str, str | None]], capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["ipvs", "list"]) == 0
    assert capsys.readouterr().out.splitlines() == [
        "IP Virtual Server version 1.2.1 (size=4096)",
        "Prot LocalAddress:Port Scheduler Flags",
        "  -> RemoteAddress:Port           Forward Weight ActiveConn InActConn",
        "TCP  10.0.0.1:80 wrr",
        "  -> 10.0.1.1:8080                Masq    2      0          0         ",
    ]
    assert opened == [("netlink", None)]


def test_stats_json_and_backend_choice(
    opened: list[tuple[str, str | None]], capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["ipvs", "list", "--stats", "--backend", "nftables", "--netns", "ns1"]) == 0
    assert "Conns   InPkts  OutPkts  InBytes OutBytes" in capsys.readouterr().out
    assert main(["ipvs", "list", "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["services"][0]["destinations"][0]["weight"] == 2
    assert opened == [("nftables", "ns1"), ("netlink", None)]


def test_stats_and_rate_are_exclusive(opened: list[tuple[str, str | None]]) -> None:
    with pytest.raises(SystemExit):
        main(["ipvs", "list", "--stats", "--rate"])


def test_missing_ipvs_suggests_nftables(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    def unavailable(name: str, *, netns: str | None = None) -> Backend:
        raise BackendUnavailable(NO_IPVS)

    monkeypatch.setattr(command, "open_backend", unavailable)
    assert main(["ipvs", "list"]) == 1
    err = capsys.readouterr().err
    assert "dataplane: nftables" in err and "Traceback" not in err


def test_apply_refuses_what_nftables_cannot_do(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config = tmp_path / "c.yaml"
    config.write_text(
        "global_defs: {dataplane: nftables}\n"
        "virtual_servers:\n"
        "  - {ip: 10.0.0.1, port: 80, lb_algo: lc, real_servers: [{ip: 10.0.1.1, port: 80}]}\n"
    )
    assert main(["ipvs", "apply", "-f", str(config), "--dry-run"]) == 1
    assert "scheduler 'lc' is not available with dataplane nftables" in capsys.readouterr().err


def test_apply_reports_config_errors_and_dataplane_none(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text("virtual_servers:\n  - {ip: 10.0.0.1, port: 80, lb_algo: nope}\n")
    assert main(["ipvs", "apply", "-f", str(bad)]) == 1
    assert "lb_algo" in capsys.readouterr().err
    none = tmp_path / "none.yaml"
    none.write_text("global_defs: {dataplane: none}\n")
    assert main(["ipvs", "apply", "-f", str(none)]) == 1
    assert "dataplane is none" in capsys.readouterr().err


def test_apply_dry_run_prints_operations(
    opened: list[tuple[str, str | None]], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config = tmp_path / "c.yaml"
    config.write_text(
        "virtual_servers:\n"
        "  - {ip: 10.0.0.1, port: 80, lb_algo: wrr,\n"
        "     real_servers: [{ip: 10.0.1.1, port: 8080, weight: 5}]}\n"
    )
    assert main(["ipvs", "apply", "-f", str(config), "--dry-run"]) == 0
    assert capsys.readouterr().out.splitlines() == [
        "edit-dest TCP 10.0.0.1:80 -> 10.0.1.1:8080 weight 5 NAT",
        "1 operations (dry run: nothing changed)",
    ]
    assert opened == [("netlink", None)]  # dataplane ipvs is the default


# --------------------------------------------------------------------------- from a daemon

API = Service(Protocol.TCP, ipaddress.IPv4Address("10.0.0.9"), 443, scheduler="rr", timeout=60)
# Two fwmark services that ipvsadm's wrapping comparison orders by where they start.
FWM_LOW = Service(fwmark=1, family=4, scheduler="wrr")
FWM_HIGH = Service(fwmark=2**31 + 1, family=4, scheduler="wrr")
RS = Destination(ipaddress.IPv4Address("10.0.1.7"), 443, 5, Forward.DR)
BIG = Table.of([
    (FWM_HIGH, []),
    (API, [RS, Destination(ipaddress.IPv4Address("10.0.1.2"), 443, 1)]),
    (WEB, [Destination(ipaddress.IPv4Address("10.0.1.1"), 8080, 2)]),
    (FWM_LOW, []),
])
BIG_STATS = TableStats(
    {API.key: Stats(conns=123_456_789_012, inpkts=5, cps=3, inbps=2_000_000_000)},
    {(API.key, RS.key): Stats(conns=7, activeconns=2, inactconns=9, outbytes=10**12)},
)


class _Counted(MemoryBackend):
    async def stats(self) -> TableStats:
        return BIG_STATS


class FakeDaemon:
    """A control socket served by a real aiohttp server in a thread; `answer` is what
    GET /v1/ipvs returns (by default the table as the daemon encodes it)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.answer: tuple[int, Any] = (200, to_json(BIG, BIG_STATS))
        self.requests: list[str] = []
        self._loop = asyncio.new_event_loop()
        self._ready = threading.Event()
        self._thread = threading.Thread(target=self._serve, daemon=True)
        self._runner: web.AppRunner | None = None

    async def _ipvs(self, request: web.Request) -> web.Response:
        self.requests.append(f"{request.method} {request.path}")
        status, body = self.answer
        return web.Response(text=json.dumps(body), status=status,
                            content_type="application/json")

    def _serve(self) -> None:
        asyncio.set_event_loop(self._loop)
        app = web.Application()
        app.router.add_get("/v1/ipvs", self._ipvs)
        self._runner = web.AppRunner(app)
        self._loop.run_until_complete(self._runner.setup())
        self._loop.run_until_complete(web.UnixSite(self._runner, str(self.path)).start())
        self._ready.set()
        self._loop.run_forever()
        self._loop.run_until_complete(self._runner.cleanup())
        self._loop.close()

    def start(self) -> None:
        self._thread.start()
        assert self._ready.wait(10), "the fake daemon did not start"

    def stop(self) -> None:
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(10)


@pytest.fixture
def sockdir() -> Iterator[Path]:
    # Short paths: a unix socket path holds at most 107 bytes.
    path = Path(tempfile.mkdtemp(prefix="hcy-"))
    try:
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)


@pytest.fixture
def daemon(sockdir: Path) -> Iterator[FakeDaemon]:
    fake = FakeDaemon(sockdir / "ctl.sock")
    fake.start()
    try:
        yield fake
    finally:
        fake.stop()


@pytest.fixture
def dataplane(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> list[tuple[str, str | None]]:
    calls: list[tuple[str, str | None]] = []
    _fake_namespaces(monkeypatch, tmp_path)

    def fake_open(name: str, *, netns: str | None = None) -> Backend:
        calls.append((name, netns))
        return _Counted(BIG, name=name)

    monkeypatch.setattr(command, "open_backend", fake_open)
    return calls


@pytest.mark.parametrize(
    "layout", [[], ["--stats"], ["--rate"], ["--stats", "--exact"], ["--rate", "--exact"]]
)
def test_daemon_listing_is_the_dataplane_listing(
    layout: list[str],
    daemon: FakeDaemon,
    dataplane: list[tuple[str, str | None]],
    capsys: pytest.CaptureFixture[str],
) -> None:
    assert main(["ipvs", "list", "--backend", "nftables", *layout]) == 0
    direct = capsys.readouterr().out
    assert main(["ipvs", "list", "--control-socket", str(daemon.path), *layout]) == 0
    out, err = capsys.readouterr()
    assert err == ""
    assert out == direct
    assert "  -> 10.0.1.7:443" in out and "\nFWM  1" in out and "\nFWM  2147483649" in out
    assert dataplane == [("nftables", None)]  # the daemon's listing opened no dataplane
    assert daemon.requests == ["GET /v1/ipvs"]


def test_daemon_listing_keeps_ipvsadm_order_as_sent(
    daemon: FakeDaemon, capsys: pytest.CaptureFixture[str]
) -> None:
    # FWM 1 and FWM 2**31+1 each compare "less" than the other (ipvsadm's C int wraps),
    # so every sort swaps them: the daemon sorted once, as a listing of its dataplane
    # would; sorting again here would print them the other way round.
    dataplane_order = Table.of([(FWM_LOW, []), (FWM_HIGH, [])])
    expected = render(dataplane_order)
    sorted_twice = render(from_json(to_json(dataplane_order))[0])
    assert expected != sorted_twice  # what this test guards against
    daemon.answer = (200, to_json(dataplane_order))
    assert main(["ipvs", "list", "--control-socket", str(daemon.path)]) == 0
    assert capsys.readouterr().out == expected


def test_daemon_json(
    daemon: FakeDaemon, dataplane: list[tuple[str, str | None]],
    capsys: pytest.CaptureFixture[str],
) -> None:
    assert main(["ipvs", "list", "--json", "--backend", "nftables"]) == 0
    direct = json.loads(capsys.readouterr().out)
    assert main(["ipvs", "list", "--json", "--control-socket", str(daemon.path)]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data.pop("control_socket") == str(daemon.path)
    assert direct.pop("backend") == "nftables"
    assert data == direct == daemon.answer[1]


def test_backend_or_netns_wins_over_control_socket(
    daemon: FakeDaemon, dataplane: list[tuple[str, str | None]],
    capsys: pytest.CaptureFixture[str],
) -> None:
    assert main(["ipvs", "list", "--control-socket", str(daemon.path), "--netns", "ns7"]) == 0
    assert main(["ipvs", "list", "--control-socket", str(daemon.path),
                 "--backend", "nftables"]) == 0
    assert dataplane == [("netlink", "ns7"), ("nftables", None)]
    assert daemon.requests == []


def test_nosort_needs_a_backend(daemon: FakeDaemon, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["ipvs", "list", "--nosort", "--control-socket", str(daemon.path)]) == 1
    out, err = capsys.readouterr()
    assert out == "" and err.count("\n") == 1 and "--nosort needs --backend" in err


def _one_error_line(capsys: pytest.CaptureFixture[str]) -> str:
    out, err = capsys.readouterr()
    assert out == ""
    assert err.count("\n") == 1 and err.startswith("hacluster ipvs list: "), err
    return err


def test_no_daemon_is_one_clear_line(sockdir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    missing = sockdir / "none.sock"
    assert main(["ipvs", "list", "--control-socket", str(missing)]) == 1
    assert f"no daemon answers on {missing}" in _one_error_line(capsys)
    # A socket file left behind by a daemon that is gone: nobody listens.
    stale = sockdir / "stale.sock"
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
        sock.bind(str(stale))
    assert main(["ipvs", "list", "--stats", "--control-socket", str(stale)]) == 1
    assert f"no daemon answers on {stale}" in _one_error_line(capsys)


def test_silent_daemon_times_out(sockdir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    # Listening but never answering (a daemon that is stuck).
    path = sockdir / "stuck.sock"
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
        sock.bind(str(path))
        sock.listen(1)
        assert main(["ipvs", "list", "--control-socket", str(path), "--timeout", "0.3"]) == 1
    assert "no answer within 0.3 s" in _one_error_line(capsys)


def test_daemon_errors_and_bad_answers(
    daemon: FakeDaemon, capsys: pytest.CaptureFixture[str]
) -> None:
    where = ["ipvs", "list", "--control-socket", str(daemon.path)]
    daemon.answer = (500, {"error": "internal error: BackendError: nft: no such table"})
    assert main(where) == 1
    assert "the daemon answered HTTP 500: internal error: BackendError" in _one_error_line(capsys)
    broken = to_json(BIG)
    broken["services"][1]["destinations"][0]["weight"] = -1
    daemon.answer = (200, broken)
    assert main([*where, "--json"]) == 1
    assert ("unexpected answer from the daemon: services[1].destinations[0].weight: "
            "expected an integer") in _one_error_line(capsys)
    daemon.answer = (200, ["not", "a", "table"])
    assert main(where) == 1
    assert "table: expected an object, got list" in _one_error_line(capsys)


def test_timeout_must_be_sane() -> None:
    with pytest.raises(SystemExit):
        main(["ipvs", "list", "--control-socket", "/nonexistent", "--timeout", "0"])
