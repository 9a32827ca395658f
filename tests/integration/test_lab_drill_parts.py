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
