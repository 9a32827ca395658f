"""The VIP state file: recorded atomically, read back, and the clean-up at start."""

from __future__ import annotations

import errno
import json
import os
import subprocess
import sys
from pathlib import Path

from vrrp import vipstate
from vrrp.vipstate import Recorded, VipRecord, clear_leftovers, state_file


def test_record_keeps_added_minus_removed_and_writes_whole_files(tmp_path: Path) -> None:
    path = tmp_path / "sub" / "vips.json"
    record = VipRecord(path)
    a, b = Recorded("10.0.0.1/24", "eth0"), Recorded("fd00::1/64", "eth1")
    record.added([a, b])
    data = json.loads(path.read_text())
    assert data["pid"] == os.getpid()
    assert data["vips"] == [{"address": "10.0.0.1/24", "dev": "eth0"},
                            {"address": "fd00::1/64", "dev": "eth1"}]
    record.removed([a])
    assert vipstate.read(path) == [b]
    assert VipRecord(path).held == [b]  # a new record starts from the file
    assert [p.name for p in path.parent.iterdir()] == ["vips.json"]  # no temporary left


def test_a_corrupt_or_missing_file_records_nothing(tmp_path: Path) -> None:
    assert vipstate.read(tmp_path / "none.json") == []
    bad = tmp_path / "bad.json"
    for text in ("{", "[]", '{"vips": [{"address": 1}]}', "\0\xff"):
        bad.write_text(text)
        assert vipstate.read(bad) == []
    assert clear_leftovers(bad).removed == []


def test_state_file_is_per_config_file(tmp_path: Path) -> None:
    one, two = state_file(tmp_path, Path("a.yaml")), state_file(tmp_path, Path("b.yaml"))
    assert one != two and one.parent == two.parent == tmp_path
    assert state_file(tmp_path, Path("a.yaml")) == one


def test_clearing_a_file_of_a_running_hacluster_touches_nothing(tmp_path: Path) -> None:
    path = tmp_path / "vips.json"
    # A process whose command line says hacluster, alive while we look.
    proc = subprocess.Popen(
        [sys.executable, "-c", "import time; print('up', flush=True); time.sleep(30)",
         "hacluster"], stdout=subprocess.PIPE)
    try:
        assert proc.stdout is not None and proc.stdout.readline() == b"up\n"
        path.write_text(json.dumps({"pid": proc.pid, "vips": [
            {"address": "10.0.0.1/24", "dev": "no-such-dev"}]}))
        cleared = clear_leftovers(path)
        assert cleared.owner_running == proc.pid and path.exists()
    finally:
        proc.kill()
        proc.communicate()
    cleared = clear_leftovers(path)  # its writer is dead now
    assert cleared.owner_running is None
    assert cleared.absent == [Recorded("10.0.0.1/24", "no-such-dev")]
    assert not path.exists()


def test_delete_reports_a_missing_interface_without_sending() -> None:
    assert vipstate.delete_addresses([Recorded("10.0.0.1/24", "no-such-dev")]) == [errno.ENODEV]
