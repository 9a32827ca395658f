"""docs/metrics.md lists exactly the metrics the registry holds: names, types, labels, help."""

from __future__ import annotations

from ipaddress import ip_address
from pathlib import Path

from prometheus_client.parser import text_string_to_metric_families

from hacluster.ipvs.backend import AddService, ApplyResult
from hacluster.ipvs.model import Protocol, Service
from hacluster.metrics import VRRP_STATES, Metrics

DOC = Path(__file__).resolve().parents[2] / "docs" / "metrics.md"


def _documented() -> dict[str, tuple[str, str, str]]:
    rows = {}
    for line in DOC.read_text().splitlines():
        if not line.startswith("| `"):
            continue
        name, kind, labels, meaning = (c.strip() for c in line.strip("|").split(" | "))
        rows[name.strip("`")] = (kind, labels, meaning)
    return rows


def _registry() -> tuple[dict[str, tuple[str, str, str]], str]:
    """Every hacluster metric, each method called once so every labelled one shows."""
    m = Metrics(version="test")
    m.vrrp_transition("VI_1", "MASTER")
    m.vrrp_priority("VI_1", 100)
    m.adverts_sent("VI_1")
    m.adverts_received("VI_1")
    m.packet_dropped("eth0", "ttl")
    m.api_bad_request("tcp", "BadStatusLine")
    m.check_done("TCP_CHECK", "success", 0.01)
    m.real_server("10.0.0.1:80/TCP", "10.0.1.1:80", up=True, weight=1)
    service = Service(protocol=Protocol.TCP, address=ip_address("10.0.0.1"), port=80)
    m.dataplane_applied("nftables", [AddService(service)], ApplyResult(1))
    m.dataplane_error("nftables", "dump")
    m.reconciled("nftables")
    m.reload(True)
    m.api_bad_request("unix", "bad_request_line")
    m.alert_mail("sent")
    text = m.render()[0].decode()
    found = {}
    for fam in text_string_to_metric_families(text):
        if not fam.name.startswith("hacluster_"):
            continue  # process_* and python_*: the client library's own
        labels = sorted({k for s in fam.samples for k in s.labels if k != "le"})
        name = fam.name + ("_total" if fam.type == "counter" else "")
        found[name] = (fam.type, ", ".join(f"`{x}`" for x in labels) or "-",
                       fam.documentation)
    return found, text


def test_the_table_is_the_registry() -> None:
    documented = _documented()
    found, text = _registry()
    assert set(documented) == set(found)
    for name, row in found.items():
        assert documented[name] == row, name
    assert "_created" not in text
    assert "INITIALIZE" in VRRP_STATES and "INIT" not in VRRP_STATES
    assert 'hacluster_vrrp_state{instance="VI_1",state="INITIALIZE"} 0.0' in text
    assert "hacluster_real_servers_up" not in text and "hacluster_ipvs_" not in text
