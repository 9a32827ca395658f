"""What `hacluster run` writes to the journal: a level prefix on every line, transitions
naming their cause and priority, no notify lines without scripts (prefix hco)."""

from __future__ import annotations

import os
import re
import signal
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from hacluster.lab.netns import Lab, sweep
from tests.integration.vrrp_director import HACLUSTER, config_yaml, instance_yaml

pytestmark = [pytest.mark.netns]

PREFIX = "hco"


@pytest.fixture
def lab() -> Iterator[Lab]:
    sweep(PREFIX)
    with Lab(PREFIX) as the_lab:
        yield the_lab


def _wait(path: Path, text: str, timeout: float = 10.0, count: int = 1) -> str:
    deadline = time.monotonic() + timeout
    while True:
        content = path.read_text()
        if content.count(text) >= count:
            return content
        if time.monotonic() > deadline:
            raise AssertionError(f"no {text!r} in\n{content}")
        time.sleep(0.05)


def test_journal_lines_have_levels_and_transitions_say_why(lab: Lab) -> None:
    a, b = lab.namespace("a"), lab.namespace("b")
    lab.veth(a, "eth0", b, "eth0")
    lab.add_address(a, "eth0", "10.9.0.1/24")
    config = lab.workdir / "a.yaml"
    config.write_text(config_yaml(instance_yaml(
        priority=120, extra="track_interface: [{name: eth0, weight: -20}]")))
    log = lab.workdir / "journal.txt"
    with log.open("wb") as stream:
        st = os.fstat(stream.fileno())
        env = {**os.environ, "JOURNAL_STREAM": f"{st.st_dev}:{st.st_ino}",
               "HACLUSTER_LOCK_DIR": str(lab.workdir / "locks")}
        proc = lab.start(a, [HACLUSTER, "run", "-f", str(config), "--control-socket",
                             str(lab.workdir / "a.sock")], env=env, stdout=stream)
    _wait(log, "BACKUP -> MASTER", timeout=20)  # start-up under load
    lab.set_link(a, "eth0", False)  # tracked with weight -20: priority 100
    text = _wait(log, "track_interface eth0 now down")
    lab.set_link(a, "eth0", True)
    _wait(log, "track_interface eth0 now up", count=2)  # once at start, once now
    _wait(log, "control API on")  # the supervisor's last start-up line (late under load)
    time.sleep(0.1)
    mark = len(log.read_text())
    proc.signal(signal.SIGUSR1)  # the dump: plain text lines, no Python reprs
    dump = _wait(log, "reloads: ok=0 refused=0")[mark:]
    proc.stop()
    text = log.read_text()
    print(text)
    lines = text.splitlines()
    assert lines and all(re.match(r"^<[2-7]>", line) for line in lines), text
    started = [x for x in lines if "hacluster started" in x]
    assert started and started[0].startswith("<6>")
    # Timestamps with their UTC offset, after the prefix.
    assert re.match(r"^<6>\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}[+-]\d\d:\d\d INFO ", started[0])
    transitions = [x.split(" INFO    ", 1)[1] for x in lines if " -> " in x]
    assert transitions[:2] == [
        "[VI_1] INITIALIZE -> BACKUP (startup) priority 120",
        "[VI_1] BACKUP -> MASTER (master down timer) priority 120",
    ], transitions
    (down,) = [x for x in lines if "track_interface eth0 now down" in x]
    assert down.startswith("<4>")  # a warning: `journalctl -p warning` finds it
    assert "notify" not in text
    print(dump)
    dump_lines = [x.split(" INFO    ", 1)[1] for x in dump.splitlines()]
    # The supervisor's own lines may come in between (its API starts while the role runs).
    dump_lines = dump_lines[next(i for i, x in enumerate(dump_lines) if "counters:" in x):]
    assert re.match(r"^\[VI_1\] MASTER priority 120, master 10\.9\.0\.1 \(priority 120\); "
                    r"counters: .*adverts_sent=\d+ .*transitions=2$", dump_lines[0]), dump
    assert dump_lines[1].startswith("transport eth0/4: ") and "sent=" in dump_lines[1]
    assert "tracked interface eth0: up" in dump_lines
    assert not any(c in dump for c in "{}'"), dump  # no notify script configured: no notify lines
