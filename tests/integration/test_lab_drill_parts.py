"""The lab's parts without namespaces: generated configs, real server, client, report maths."""

from __future__ import annotations

import json
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from hacluster.lab.client import Record, RecordReader, parse_response, request
from hacluster.lab.drill import first_ok, longest_gap
from hacluster.lab.topology import INSTANCE, Topology, render_config


def test_generated_director_configs_load_and_differ_only_where_they_should(tmp_path: Path) -> None:
    from hacluster.config.loader import load_config

    topo = Topology()
    configs = {}
    for d in topo.directors:
        path = tmp_path / f"{d.role}.yaml"
        path.write_text(render_config(topo, d, tmp_path))
        assert "&id" not in path.read_text()  # plain YAML an operator can read
        configs[d.name] = load_config(path)
    a, b = configs["lvs-a"], configs["lvs-b"]
    assert a.global_defs.dataplane == b.global_defs.dataplane == "nftables"
    assert a.global_defs.control_socket != b.global_defs.control_socket
    ia, ib = a.vrrp_instances[INSTANCE], b.vrrp_instances[INSTANCE]
    assert (ia.version, ia.state, ia.priority) == (3, "MASTER", 150)
    assert (ib.version, ib.state, ib.priority) == (3, "BACKUP", 100)
    assert [str(v.address) for v in ia.virtual_ipaddress] == ["10.213.0.100/24", "10.213.1.1/24"]
    assert ia.virtual_ipaddress[1].dev == "eth1"
    (vsa,), (vsb,) = a.virtual_servers, b.virtual_servers
    assert [rs.port for rs in vsa.real_servers] == [8081] * 3
    assert [rs.port for rs in vsb.real_servers] == [8082] * 3
    assert all(len(rs.checks) == 1 and rs.checks[0].KIND == "HTTP_GET"
               for rs in vsa.real_servers)


def test_protocol_bounds_follow_rfc_5798() -> None:
    topo = Topology(advert_int=1.0)
    assert topo.skew_time(100) == pytest.approx(156 / 256)
    assert topo.master_down_interval(100) == pytest.approx(3 + 156 / 256)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture
def real_server() -> Iterator[int]:
    port = _free_port()
    proc = subprocess.Popen([sys.executable, "-m", "hacluster.lab.realserver", "--name", "rs7",
                             "--listen", f"{port}=lvs-x"], stderr=subprocess.PIPE)
    try:
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
                break
            except OSError:
                time.sleep(0.05)
        yield port
    finally:
        proc.terminate()
        assert proc.wait(5) == 0


def test_real_server_names_itself_and_the_director(real_server: int) -> None:
    rec = request("127.0.0.1", real_server, 1.0, 1.0)
    assert (rec.ok, rec.status, rec.rs, rec.director, rec.error) == (True, 200, "rs7", "lvs-x",
                                                                    None)
    assert rec.t0 <= rec.t1


def test_client_records_refusals_and_writes_json_lines(real_server: int, tmp_path: Path) -> None:
    closed = _free_port()
    rec = request("127.0.0.1", closed, 0.5, 0.5)
    assert (rec.ok, rec.error) == (False, "refused")
    out = tmp_path / "c.jsonl"
    proc = subprocess.Popen([sys.executable, "-m", "hacluster.lab.client", "--host", "127.0.0.1",
                             "--port", str(real_server), "--out", str(out), "--workers", "2",
                             "--interval", "0.02"])
    reader = RecordReader(out)
    try:
        deadline = time.monotonic() + 10
        while len(reader.records) < 20 and time.monotonic() < deadline:
            reader.poll()
            time.sleep(0.05)
    finally:
        proc.terminate()
        assert proc.wait(5) == 0
    assert len(reader.records) >= 20
    assert all(r.ok and r.rs == "rs7" and r.director == "lvs-x" for r in reader.records)


def test_parse_response_reads_status_and_headers() -> None:
    status, headers = parse_response(b"HTTP/1.0 503 Busy\r\nX-Real-Server: rs1\r\n\r\nbody")
    assert status == 503 and headers == {"x-real-server": "rs1"}
    assert parse_response(b"garbage") == (None, {})


def _rec(t0: float, ok: bool, director: str = "lvs-a") -> Record:
    return Record(t0, t0 + 0.01, ok, 200 if ok else None, "rs1" if ok else None,
                  director if ok else None, None if ok else "timeout")


def test_longest_gap_and_first_answer() -> None:
    recs = [_rec(0.0, True), _rec(0.1, True), _rec(0.2, False), _rec(0.5, False),
            _rec(1.2, True, "lvs-b"), _rec(1.3, True, "lvs-b")]
    assert longest_gap(recs, 0.0, 1.4) == pytest.approx(1.21 - 0.11)
    assert longest_gap([], 2.0, 3.0) == pytest.approx(1.0)
    assert first_ok(recs, 0.15) == pytest.approx(1.21)
    assert first_ok(recs, 0.0, lambda r: r.director == "lvs-b") == pytest.approx(1.21)
    assert first_ok(recs, 2.0) is None


def test_down_signals_only_the_processes_it_started(tmp_path: Path) -> None:
    from hacluster.lab.topology import process_start_time, state_file, teardown

    ours = subprocess.Popen(["sleep", "30"])
    stranger = subprocess.Popen(["sleep", "30"])
    try:
        start = process_start_time(ours.pid)
        assert start is not None
        workdir = tmp_path / "labx"
        workdir.mkdir()
        (workdir / "lvsa.log").write_text("log\n")
        state = {
            "prefix": "labx", "workdir": str(workdir), "namespaces": {},
            "processes": [
                {"name": "rs1", "pid": ours.pid, "start_time": start},
                # Same pid number as a process we started once, but another process now.
                {"name": "rs2", "pid": stranger.pid, "start_time": 1},
            ],
        }
        state_file(tmp_path, "labx").write_text(json.dumps(state))
        report = teardown("labx", tmp_path, wait=3.0)
        assert ours.wait(5) == -15  # SIGTERM
        assert stranger.poll() is None
        assert report.stopped == [f"rs1 (pid {ours.pid})"]
        assert not workdir.exists() and not state_file(tmp_path, "labx").exists()
    finally:
        for p in (ours, stranger):
            p.kill()
            p.wait()


def test_drills_are_picked_by_name_or_number_in_catalogue_order() -> None:
    from hacluster.lab.drill import CATALOGUE, select

    assert [d.name for d in CATALOGUE] == ["real-server", "kill", "preempt", "handover",
                                           "partition", "starvation", "crash-loop", "reload"]
    assert select("reload,partition") == [5, 8]
    assert select("2, crash-loop,2") == [2, 7]
    assert select("all") == list(range(1, 9))
    for bad in ("", "9", "0", "kill,bogus"):
        with pytest.raises(ValueError):
            select(bad)


def test_a_paced_topology_scales_every_timing_but_what_is_given() -> None:
    base = Topology()
    slow = Topology.paced(10, advert_int=2.0, dataplane="ipvs")
    assert (slow.advert_int, slow.dataplane) == (2.0, "ipvs")
    for name in ("delay_loop", "connect_timeout", "delay_before_retry", "client_interval",
                 "client_connect_timeout", "client_read_timeout", "settle", "startup",
                 "margin"):
        assert getattr(slow, name) == pytest.approx(10 * getattr(base, name)), name
    assert slow.client_workers == base.client_workers and slow.retry == base.retry
    assert Topology.paced(1.0) == Topology()
    assert Topology.paced(2.0).advert_int == 1.0


def test_generated_config_uses_the_topology_dataplane(tmp_path: Path) -> None:
    import yaml

    topo = Topology(dataplane="ipvs")
    doc = yaml.safe_load(render_config(topo, topo.directors[0], tmp_path))
    assert doc["global_defs"]["dataplane"] == "ipvs"


def test_address_and_neighbour_lines_from_ip_monitor() -> None:
    from hacluster.lab.watch import _address_event, _neighbour_event

    add = "2: eth0    inet 10.213.0.100/24 scope global secondary eth0\\       valid_lft forever"
    assert _address_event(add, "eth0", "10.213.0.100") is True
    assert _address_event("Deleted " + add, "eth0", "10.213.0.100") is False
    assert _address_event(add, "eth1", "10.213.0.100") is None
    assert _address_event(add, "eth0", "10.213.0.10") is None
    assert _address_event("3: eth1    inet6 fe80::1/64 scope link", "eth0", "10.0.0.1") is None
    line = "10.213.0.100 dev eth0 lladdr 22:f9:55:90:dc:df REACHABLE"
    assert _neighbour_event(line, "10.213.0.100") == (True, "22:f9:55:90:dc:df")
    assert _neighbour_event(line, "10.213.0.1") is None
    assert _neighbour_event("10.213.0.100 dev eth0 STALE", "10.213.0.100") == (True, None)
    assert _neighbour_event("10.213.0.100 dev eth0 FAILED", "10.213.0.100") == (False, None)
    assert _neighbour_event("Deleted " + line, "10.213.0.100") == (False, None)


def test_time_held_by_all_adds_up_the_overlaps() -> None:
    from hacluster.lab.netns import Lab
    from hacluster.lab.watch import AddressWatch, Change

    watch = AddressWatch(Lab("hcdp"), {}, "eth0", "10.0.0.1")  # never started: no I/O
    watch.started, watch.initial = 10.0, frozenset({"a"})
    watch._changes = [Change(11.0, "b", True), Change(11.5, "a", False),
                      Change(12.0, "a", True), Change(13.0, "b", False)]
    assert watch.time_held_by_all(10.0, 20.0, ["a", "b"]) == pytest.approx(0.5 + 1.0)
    assert watch.time_held_by_all(12.5, 20.0, ["a", "b"]) == pytest.approx(0.5)
    assert watch.holders(11.7) == {"b"} and watch.holders() == {"a"}
    assert watch.count("b", True, 10.0, 20.0) == 1 and watch.count("a", False, 10, 20) == 1
    assert watch.last_change(12.5) == 13.0 and watch.last_change(13.5) is None


class _StartingLab:
    """A lab whose master took the VIPs at once and whose balancer starts `after` s later
    (None: never), never installing a table: as `RunningLab` answers the drills."""

    def __init__(self, topo: Topology, client_out: Path, after: float | None) -> None:
        self.topo = topo
        self.client_out = client_out
        self._balancer_at = None if after is None else time.monotonic() + after

    def wait_state(self, director: str, state: str, timeout: float) -> float:
        return time.monotonic()

    def has_table(self, director: str) -> bool:
        return False

    def balancer_started(self, director: str) -> bool:
        return self._balancer_at is not None and time.monotonic() >= self._balancer_at


@pytest.mark.parametrize(("balancer_after", "startup"), [(None, 3.0), (0.2, 8.0)])
def test_the_lab_waits_for_a_starting_balancer_before_giving_up(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, balancer_after: float | None,
        startup: float) -> None:
    import io

    from hacluster.lab import drill

    # The VIPs come long before the table on a slow machine (the balancer starts in its own
    # process): no answer and no table is no reason to give up until the balancer runs.
    monkeypatch.setattr(drill, "NO_TABLE_GRACE", 1.0)
    out = tmp_path / "client.jsonl"
    out.write_text("")
    topo = Topology(startup=startup, settle=0.2)
    drills = drill.Drills(_StartingLab(topo, out, balancer_after), io.StringIO())  # type: ignore[arg-type]
    started = time.monotonic()
    problem = drills.prepare()
    took = time.monotonic() - started
    assert problem is not None and "did not settle" in problem
    if balancer_after is None:
        assert took >= startup  # waited the whole start-up bound for the balancer
    else:
        assert took < startup  # its balancer ran without a table: given up early
