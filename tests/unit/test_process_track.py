"""vrrp_track_process: matching, quorum and delays as timelines; the connector's wire
format; the YAML contract and the import."""

from __future__ import annotations

import struct
from pathlib import Path

import pytest

from hacluster.config.errors import ConfigError
from hacluster.config.keepalived_import import import_keepalived_text
from hacluster.config.loader import parse_config
from hacluster.config.model import Command, VrrpTrackProcess
from hacluster.proc_events import (
    CN_IDX_PROC,
    PROC_EVENT_COMM,
    PROC_EVENT_EXEC,
    PROC_EVENT_EXIT,
    PROC_EVENT_FORK,
    parse_events,
    subscribe_message,
)
from hacluster.process_track import ProcessCounter, ProcInfo, matches
from hacluster.tracking import TrackChange, TrackingCore
from vrrp.machine import FaultCleared, FaultRaised, PriorityChanged


def spec(process: str | list[str], **kw: object) -> VrrpTrackProcess:
    argv = tuple(process.split()) if isinstance(process, str) else tuple(process)
    return VrrpTrackProcess(name="p", process=Command(argv, " ".join(argv)), **kw)  # type: ignore[arg-type]


# --------------------------------------------------------------------------- matching


def test_name_matches_exactly_like_pgrep_x() -> None:
    s = spec("ssh")
    assert matches(s, "ssh", None)
    assert not matches(s, "sshd", None)  # pgrep ssh would match sshd; keepalived does not


@pytest.mark.parametrize(
    ("process", "param_match", "argv", "ok"),
    [
        ("dhcpd -4 -f", None, ("dhcpd", "-4", "-f"), True),  # parameters: exact by default
        ("dhcpd -4 -f", None, ("dhcpd", "-4", "-f", "-d"), False),
        ("dhcpd -4 -f", None, ("/usr/sbin/dhcpd", "-4", "-f"), False),  # argv[0] exactly
        ("dhcpd -4", "partial", ("dhcpd", "-4", "-f"), True),
        ("dhcpd -4", "partial", ("dhcpd", "-6"), False),
        ("dhcpd -4 --conf", "initial", ("dhcpd", "-4", "--config=/x"), True),
        ("dhcpd -4 --conf", "partial", ("dhcpd", "-4", "--config=/x"), False),
        ("dhcpd", "exact", ("dhcpd",), True),  # param_match alone: no parameters at all
        ("dhcpd", "exact", ("dhcpd", "-4"), False),
    ],
)
def test_parameters(process: str, param_match: str | None, argv: tuple[str, ...],
                    ok: bool) -> None:
    assert matches(spec(process, param_match=param_match), "whatever", argv) is ok


def test_full_command_matches_argv0_not_the_name() -> None:
    s = spec("/usr/bin/python3", full_command=True)
    assert matches(s, "python3", ("/usr/bin/python3", "x.py"))
    assert not matches(s, "/usr/bin/python3", ("python3",))


# --------------------------------------------------------------------------- timelines


def table(*procs: tuple[int, str]) -> list[ProcInfo]:
    return [ProcInfo(pid, comm) for pid, comm in procs]


def test_first_scan_decides_at_once_then_exec_and_exit() -> None:
    c = ProcessCounter({"p": spec("web", quorum=2)})
    assert c.scan(table((1, "init"), (10, "web")), 0.0) == {"p": False}
    assert c.exec(ProcInfo(11, "web"), 1.0) == {"p": True}
    assert c.exec(ProcInfo(12, "web"), 1.1) == {}
    assert c.count("p") == 3
    assert c.exit(12, 2.0) == {}
    assert c.exit(11, 2.1) == {"p": False}


def test_quorum_max_fails_when_too_many_run() -> None:
    c = ProcessCounter({"p": spec("web", quorum_max=1)})
    assert c.scan(table((10, "web")), 0.0) == {"p": True}
    assert c.exec(ProcInfo(11, "web"), 1.0) == {"p": False}
    assert c.exit(10, 2.0) == {"p": True}


def test_quorum_max_zero_is_up_while_none_runs() -> None:
    c = ProcessCounter({"p": spec("rogue", quorum=0, quorum_max=0)})
    assert c.scan(table((1, "init")), 0.0) == {"p": True}
    assert c.exec(ProcInfo(5, "rogue"), 1.0) == {"p": False}


def test_terminate_delay_hides_a_restart() -> None:
    c = ProcessCounter({"p": spec("web", terminate_delay=2.0)})
    c.scan(table((10, "web")), 0.0)
    assert c.exit(10, 1.0) == {}
    assert c.next_deadline() == 3.0
    assert c.exec(ProcInfo(20, "web"), 2.0) == {}  # restarted inside the delay
    assert c.next_deadline() is None
    assert c.tick(5.0) == {}
    assert c.exit(20, 6.0) == {}
    assert c.tick(7.9) == {}
    assert c.tick(8.0) == {"p": False}


def test_fork_delay_holds_a_gain_by_fork_but_not_by_exec() -> None:
    c = ProcessCounter({"p": spec("web", quorum=2, delay=0.5)})  # delay sets both
    c.scan(table((10, "web")), 0.0)
    assert c.fork(10, 11, 1.0) == {}
    assert c.next_deadline() == 1.5
    assert c.tick(1.5) == {"p": True}
    # a fork that execs something else inside the delay never counts
    c2 = ProcessCounter({"p": spec("web", quorum=2, fork_delay=0.5)})
    c2.scan(table((10, "web")), 0.0)
    c2.fork(10, 11, 1.0)
    assert c2.exec(ProcInfo(11, "sh"), 1.1) == {}
    assert c2.tick(2.0) == {} and c2.state("p") is False
    assert c2.exec(ProcInfo(12, "web"), 3.0) == {"p": True}  # exec: at once


def test_fork_of_an_uncounted_process_is_ignored() -> None:
    c = ProcessCounter({"p": spec("web")})
    c.scan(table((1, "bash")), 0.0)
    assert c.fork(1, 2, 1.0) == {}
    assert c.count("p") == 0


def test_rename_moves_a_process_in_and_out() -> None:
    c = ProcessCounter({"p": spec("worker"), "q": spec("python3"),
                        "full": spec("python3", full_command=True)})
    c.scan([ProcInfo(7, "python3", ("python3", "w.py"))], 0.0)
    assert (c.state("p"), c.state("q"), c.state("full")) == (False, True, True)
    assert c.comm(7, "worker", 1.0) == {"p": True, "q": False}  # full_command: unaffected
    assert c.comm(7, "python3", 2.0) == {"p": False, "q": True}


def test_rescan_after_lost_events_counts_the_difference() -> None:
    c = ProcessCounter({"p": spec("web", terminate_delay=1.0)})
    c.scan(table((10, "web")), 0.0)
    assert c.scan(table((1, "init")), 5.0) == {}  # gone: an exit, so the delay applies
    assert c.tick(6.0) == {"p": False}


def test_tracking_core_turns_quorum_into_priority_and_fault() -> None:
    cfg = parse_config(
        "vrrp_track_processes:\n"
        "  web: {process: nginx, weight: -20}\n"
        "  db: {process: postgres}\n"
        "vrrp_instances:\n  VI_1:\n    interface: eth0\n    virtual_router_id: 1\n"
        "    virtual_ipaddress: [10.0.0.1/24]\n"
        "    track_process: [web, {name: db, weight: 10}]\n"
        "  VI_2:\n    interface: eth0\n    virtual_router_id: 2\n"
        "    virtual_ipaddress: [10.0.0.2/24]\n    track_process: [db]\n"
    )
    core = TrackingCore(cfg)
    assert core.names("process") == {"web", "db"}
    got = core.process_state("web", False, 0.0) + core.process_state("db", False, 0.0)
    assert TrackChange("VI_1", PriorityChanged(-20)) in got
    assert TrackChange("VI_2", FaultRaised("track_process db quorum lost")) in got
    got = core.process_state("db", True, 1.0)
    assert set(got) == {TrackChange("VI_1", PriorityChanged(-10)),
                        TrackChange("VI_2", FaultCleared("track_process db quorum lost"))}
    assert [(o.kind, o.name, o.up) for o in core.objects() if o.kind == "process"] == [
        ("process", "db", True), ("process", "web", False)]


# --------------------------------------------------------------------------- the wire


def event(what: int, payload: bytes) -> bytes:
    ev = struct.pack("=IIQ", what, 0, 123) + payload
    cn = struct.pack("=IIIIHH", CN_IDX_PROC, 1, 7, 0, len(ev), 0) + ev
    return struct.pack("=IHHII", 16 + len(cn), 3, 0, 7, 0) + cn


def test_parse_events_reads_each_kind_and_skips_threads() -> None:
    data = b"".join([
        event(PROC_EVENT_FORK, struct.pack("=iiii", 10, 10, 11, 11)),
        event(PROC_EVENT_FORK, struct.pack("=iiii", 10, 10, 12, 10)),  # a thread
        event(PROC_EVENT_EXEC, struct.pack("=ii", 11, 11)),
        event(PROC_EVENT_COMM, struct.pack("=ii", 11, 11) + b"worker\0" + bytes(9)),
        event(PROC_EVENT_EXIT, struct.pack("=iiII", 11, 11, 0, 17)),
        event(PROC_EVENT_EXIT, struct.pack("=iiII", 13, 10, 0, 17)),  # a thread
    ])
    assert list(parse_events(data)) == [
        ("fork", 10, 11), ("exec", 11, 0), ("comm", 11, "worker"), ("exit", 11, 0)]
    assert list(parse_events(data[:-5])) == [  # a cut message is dropped, not raised
        ("fork", 10, 11), ("exec", 11, 0), ("comm", 11, "worker"), ("exit", 11, 0)]


def test_subscribe_message_layout() -> None:
    msg = subscribe_message()
    assert len(msg) == 16 + 20 + 4
    assert struct.unpack_from("=IHH", msg) == (40, 3, 0)  # NLMSG_DONE
    assert struct.unpack_from("=IIIIHHI", msg, 16) == (1, 1, 0, 0, 4, 0, 1)  # LISTEN


# --------------------------------------------------------------------------- config


def test_loader_names_file_line_and_key() -> None:
    text = ("vrrp_track_processes:\n  web:\n    process: nginx\n    quorum: 3\n"
            "    quorum_max: 2\n")
    with pytest.raises(ConfigError) as err:
        parse_config(text, "t.yaml")
    assert "t.yaml:5: vrrp_track_processes.web.quorum_max: 2 is below quorum 3" in str(err.value)


def test_import_carries_every_key_over(tmp_path: Path) -> None:
    result = import_keepalived_text(
        "vrrp_track_process tp {\n  process \"/opt/my app\" --serve fast\n"
        "  param_match initial\n  weight -30 reverse\n  quorum 2\n  quorum_max 4\n"
        "  terminate_delay 1.5\n  fork_delay 0.5\n  full_command\n}\n"
        "vrrp_instance V {\n  interface eth0\n  virtual_router_id 9\n"
        "  virtual_ipaddress {\n    10.0.0.9/24\n  }\n"
        "  track_process {\n    tp weight 5\n  }\n}\n",
        str(tmp_path / "k.conf"),
    )
    assert result.skipped == ()
    cfg = parse_config(result.yaml_text)
    tp = cfg.vrrp_track_processes["tp"]
    assert tp.process.argv == ("/opt/my app", "--serve", "fast")
    assert (tp.param_match, tp.weight, tp.reverse, tp.quorum, tp.quorum_max) == (
        "initial", -30, True, 2, 4)
    assert (tp.effective_terminate_delay, tp.effective_fork_delay, tp.full_command) == (
        1.5, 0.5, True)
    (entry,) = cfg.vrrp_instances["V"].track_process
    assert (entry.name, entry.weight) == ("tp", 5)
