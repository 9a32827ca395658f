"""`hacluster ipvs list`: layouts, JSON, and a clear message when the backend cannot run."""

from __future__ import annotations

import ipaddress
import json
from pathlib import Path

import pytest

from hacluster.cli import main
from hacluster.commands import ipvs as command
from hacluster.ipvs.backend import Backend, BackendUnavailable
from hacluster.ipvs.dataplane import NO_IPVS
from hacluster.ipvs.memory import MemoryBackend
from hacluster.ipvs.model import Destination, Protocol, Service, Table

WEB = Service(Protocol.TCP, ipaddress.IPv4Address("10.0.0.1"), 80, scheduler="wrr")
TABLE = Table.of([(WEB, [Destination(ipaddress.IPv4Address("10.0.1.1"), 8080, 2)])])


@pytest.fixture
def opened(monkeypatch: pytest.MonkeyPatch) -> list[tuple[str, str | None]]:
    calls: list[tuple[str, str | None]] = []

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
