"""The VIP state file: recorded atomically, read back, and the clean-up at start."""

from __future__ import annotations

import errno
import hashlib
import json
import os
import subprocess
import sys
from pathlib import Path

from vrrp import vipstate
from vrrp.vipstate import Recorded, RecordedTable, VipRecord, clear_leftovers, state_file


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


def test_state_file_names_are_those_earlier_releases_wrote(tmp_path: Path) -> None:
    # hashlib's SHA-256 named them: a leftover file of a crashed older daemon is found.
    digest = hashlib.sha256(str(Path("a.yaml").resolve()).encode()).hexdigest()[:12]
    assert state_file(tmp_path, Path("a.yaml")).name.endswith(f"-{digest}.json")


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


def test_the_accept_table_is_recorded_beside_the_vips(tmp_path: Path) -> None:
    path = tmp_path / "vips.json"
    record = VipRecord(path)
    vip, table = Recorded("10.0.0.1/24", "eth0"), RecordedTable("inet", "hacluster_vrrp")
    record.table_added(table)
    record.added([vip])
    data = json.loads(path.read_text())
    assert data["tables"] == [{"family": "inet", "name": "hacluster_vrrp"}]
    assert vipstate.read_tables(path) == [table] and vipstate.read(path) == [vip]
    assert VipRecord(path).tables == [table]  # a new record starts from the file
    record.table_removed(table)
    assert "tables" not in json.loads(path.read_text())
    assert vipstate.read_tables(path) == [] and vipstate.read(path) == [vip]
    # A file from before tables were recorded reads as none.
    path.write_text(json.dumps({"pid": 1, "vips": []}))
    assert vipstate.read_tables(path) == []


def test_a_table_that_cannot_be_deleted_stays_recorded(tmp_path: Path) -> None:
    path = tmp_path / "vips.json"
    # A name nft would read as two commands is never handed to it; the VIP still goes.
    bad = RecordedTable("inet", "x; flush ruleset")
    path.write_text(json.dumps({"pid": 1, "vips": [
        {"address": "10.0.0.1/24", "dev": "no-such-dev"}],
        "tables": [{"family": "inet", "name": bad.name}]}))
    cleared = clear_leftovers(path)
    assert cleared.absent == [Recorded("10.0.0.1/24", "no-such-dev")]
    assert cleared.table_errors == ((bad, "not an nftables table name"),)
    assert ("error", f"cannot remove leftover nftables table inet {bad.name}: "
                     "not an nftables table name") in cleared.report()
    assert vipstate.read(path) == [] and vipstate.read_tables(path) == [bad]


def test_delete_table_outcomes(tmp_path: Path) -> None:
    table = RecordedTable("inet", "hacluster_vrrp")
    missing = str(tmp_path / "no-nft")
    assert vipstate.delete_table(table, nft=missing) == f"{missing} not found"
    assert vipstate.delete_table(RecordedTable("nosuch", "t")) == "not an nftables table name"
    # What nft says of a table that is not there, and of one it cannot delete.
    fake = tmp_path / "nft"
    for stderr, want in (
        ("Error: Could not process rule: No such file or directory", None),
        ("Error: Could not process rule: Operation not permitted", "Error: Could not "
         "process rule: Operation not permitted"),
    ):
        fake.write_text(f"#!/bin/sh\necho '{stderr}' >&2\nexit 1\n")
        fake.chmod(0o755)
        assert vipstate.delete_table(table, nft=str(fake)) == want
    fake.write_text('#!/bin/sh\n[ "$*" = "delete table inet hacluster_vrrp" ]\n')
    assert vipstate.delete_table(table, nft=str(fake)) == ""
