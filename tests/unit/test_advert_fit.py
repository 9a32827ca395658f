"""VIPs that do not fit one advert move to virtual_ipaddress_excluded (keepalived's rule):
capacity by family, version and MTU, and the loader's move and warning. The counts are
checked against keepalived 2.2.7 in tests/integration/test_advert_fit_keepalived.py."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest

from hacluster.config import advert_fit
from hacluster.config.loader import load_config, parse_config


@pytest.mark.parametrize(("family", "version", "mtu", "most"), [
    (4, 2, 1500, 255), (4, 3, 1500, 255), (6, 3, 1500, 89), (6, 3, 1400, 83),
    (6, 3, 9000, 255), (4, 2, 576, 131), (4, 3, 576, 133), (6, 3, 1280, 76),
])
def test_capacity(family: int, version: int, mtu: int, most: int) -> None:
    assert advert_fit.capacity(family, version, mtu) == most


def yaml_text(count: int, interface: str = "hcfit-absent0") -> str:
    vips = ", ".join(f'"fd00::{i + 1:x}/64"' for i in range(count))
    return (f"vrrp_instances:\n  VI_1:\n    interface: {interface}\n"
            f"    virtual_router_id: 5\n    virtual_ipaddress: [{vips}]\n"
            '    virtual_ipaddress_excluded: ["10.0.0.1/24"]\n')


def test_the_excess_is_moved_to_the_excluded_list_in_order() -> None:
    inst = parse_config(yaml_text(120), "t.yaml").vrrp_instances["VI_1"]
    assert [str(v.ip) for v in inst.virtual_ipaddress] == [f"fd00::{i + 1:x}" for i in range(89)]
    assert [str(v.ip) for v in inst.virtual_ipaddress_excluded] == (
        ["10.0.0.1"] + [f"fd00::{i + 1:x}" for i in range(89, 120)])


def test_what_fits_is_left_alone() -> None:
    inst = parse_config(yaml_text(89), "t.yaml").vrrp_instances["VI_1"]
    assert len(inst.virtual_ipaddress) == 89 and len(inst.virtual_ipaddress_excluded) == 1


def test_the_interface_mtu_of_this_machine_decides(tmp_path: Path) -> None:
    (tmp_path / "eth9").mkdir()
    (tmp_path / "eth9" / "mtu").write_text("9000\n")
    assert advert_fit.interface_mtu("eth9", tmp_path) == 9000
    assert advert_fit.interface_mtu("nope", tmp_path) is None


def test_loading_a_file_warns_with_file_line_and_key(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    path = tmp_path / "h.yaml"
    path.write_text(yaml_text(100))
    with caplog.at_level(logging.WARNING, logger="hacluster.config"):
        load_config(path)
    assert caplog.messages == [
        f"{path}:5: vrrp_instances.VI_1.virtual_ipaddress: 100 VIPs do not fit one advert "
        "(at most 89, MTU 1500: hcfit-absent0 is not on this machine): the last 11 are "
        "moved to virtual_ipaddress_excluded (added, not advertised), as keepalived does"]


def test_import_notes_more_vips_than_an_advert_counts() -> None:
    from hacluster.config.keepalived_import import import_keepalived_text

    vips = "\n".join(f"  10.1.{i // 250}.{i % 250 + 1}/16" for i in range(300))
    text = (f"vrrp_instance VI_1 {{\n interface eth0\n virtual_router_id 5\n"
            f" virtual_ipaddress {{\n{vips}\n }}\n}}\n")
    result = import_keepalived_text(text, "k.conf")
    assert len(result.data["vrrp_instances"]["VI_1"]["virtual_ipaddress"]) == 300
    [note] = result.skipped
    assert (note.line, note.keyword, note.changes_behaviour) == (1, "vrrp_instance", False)
    assert "300 VIPs" in note.message and "at most 255" in note.message
