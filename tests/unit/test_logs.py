"""Log lines an operator reads: journal level prefixes, UTC offsets, script failures."""

from __future__ import annotations

import asyncio
import logging
import os
import re
import sys
from pathlib import Path

import pytest

from hacluster import scripts
from hacluster.config.loader import parse_config
from hacluster.logs import (
    HumanFormatter,
    JsonFormatter,
    make_formatter,
    stderr_is_journal,
    syslog_priority,
    timestamp,
)
from hacluster.tracking import TrackingCore


def _record(level: int, msg: str, exc: bool = False) -> logging.LogRecord:
    info = None
    if exc:
        try:
            raise ValueError("boom")
        except ValueError:
            info = sys.exc_info()
    return logging.LogRecord("hacluster.daemon", level, __file__, 1, msg, (), info)


def test_journal_is_recognised_by_device_and_inode(tmp_path: Path) -> None:
    path = tmp_path / "stderr"
    with path.open("w") as stream, (tmp_path / "other").open("w") as other:
        st = os.fstat(stream.fileno())
        env = {"JOURNAL_STREAM": f"{st.st_dev}:{st.st_ino}"}
        assert stderr_is_journal(stream, env)
        assert not stderr_is_journal(other, env)  # another file: a redirect, not the journal
        assert not stderr_is_journal(stream, {})
        assert not stderr_is_journal(stream, {"JOURNAL_STREAM": "garbage"})


def test_every_line_gets_the_sd_daemon_level_prefix() -> None:
    assert [syslog_priority(n) for n in (10, 20, 30, 40, 50)] == [7, 6, 4, 3, 2]
    fmt = make_formatter("human", journal=True)
    line = fmt.format(_record(logging.WARNING, "[VI_1] interface eth0 down"))
    print(line)
    assert line.startswith("<4>") and line.endswith(" WARNING [VI_1] interface eth0 down")
    text = fmt.format(_record(logging.ERROR, "reload failed part way", exc=True))
    print(text)
    lines = text.splitlines()
    assert len(lines) > 3 and all(x.startswith("<3>") for x in lines)
    assert lines[-1] == "<3>ValueError: boom"
    js = make_formatter("json", journal=True).format(_record(logging.INFO, "started"))
    assert js.startswith('<6>{"ts": ')
    plain = make_formatter("human", journal=False).format(_record(logging.INFO, "started"))
    assert not plain.startswith("<")


def test_human_timestamps_carry_the_utc_offset(monkeypatch: pytest.MonkeyPatch) -> None:
    import time

    monkeypatch.setenv("TZ", "Europe/Paris")
    time.tzset()
    try:
        assert timestamp(1_780_000_000.25, 250) == "2026-05-28T22:26:40.250+02:00"
        line = HumanFormatter().format(_record(logging.INFO, "hello"))
        print(line)
        assert re.match(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}[+-]\d\d:\d\d INFO    hello$",
                        line)
    finally:
        monkeypatch.delenv("TZ")
        time.tzset()


def test_json_lines_carry_the_priority_of_a_transition() -> None:
    record = _record(logging.INFO, "[VI_1] BACKUP -> MASTER (master down timer) priority 90")
    record.priority = 90
    assert '"priority": 90' in JsonFormatter().format(record)


def _failing_run(argv: list[str]) -> str:
    script = scripts.prepare(argv, what="vrrp_scripts.chk")
    return asyncio.run(scripts.run(script, timeout=5)).describe()


def test_a_vrrp_script_failure_names_its_exit_status_or_signal(
    caplog: pytest.LogCaptureFixture,
) -> None:
    exited = _failing_run(["/bin/sh", "-c", "exit 3"])
    killed = _failing_run(["/bin/sh", "-c", "kill -KILL $$"])
    assert (exited, killed) == ("exit 3", "killed by signal SIGKILL")
    cfg = parse_config(
        "vrrp_scripts:\n  chk: {script: /bin/true, weight: -10, fall: 2}\n"
        "vrrp_instances:\n  VI_1: {interface: eth0, virtual_router_id: 1, priority: 100, "
        "virtual_ipaddress: [10.0.0.1/24], track_script: [chk]}\n", "t.yaml")
    core = TrackingCore(cfg)
    core.script_result("chk", True, 0.0)
    with caplog.at_level(logging.INFO, logger="hacluster.tracking"):
        core.script_result("chk", False, 1.0, exited)
        core.script_result("chk", False, 2.0, killed)
        core.script_result("chk", True, 3.0)
        core.script_result("chk", True, 4.0)
    lines = [r.getMessage() for r in caplog.records]
    print("\n".join(lines))
    assert lines == ["vrrp_script chk now failing (killed by signal SIGKILL)",
                     "vrrp_script chk now succeeding"]
    assert caplog.records[0].levelno == logging.WARNING
