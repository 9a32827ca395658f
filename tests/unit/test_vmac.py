"""use_vmac: the virtual MACs (RFC 5798 7.3), the YAML contract, the import, and the
configuration the VRRP units run (instances moved onto their macvlans)."""

from __future__ import annotations

import ipaddress

import pytest

from hacluster.config.errors import ConfigError
from hacluster.config.keepalived_import import import_keepalived_text
from hacluster.config.loader import parse_config
from hacluster.config.model import Config
from hacluster.vmac_plan import lower, vmac_specs
from vrrp.vmac import default_name, virtual_mac


def test_virtual_macs_and_names() -> None:
    assert virtual_mac(51, 4) == "00:00:5e:00:01:33"
    assert virtual_mac(255, 6) == "00:00:5e:00:02:ff"
    assert (default_name(7, 4), default_name(7, 6)) == ("vrrp.7", "vrrp6.7")
    with pytest.raises(ValueError):
        virtual_mac(0, 4)


def load(extra: str, strict: bool = False) -> Config:
    return parse_config(
        ("global_defs: {vrrp_strict: true}\n" if strict else "")
        + "vrrp_instances:\n  V:\n    interface: eth0\n    virtual_router_id: 51\n"
        "    virtual_ipaddress: [10.0.0.1/24, 10.0.1.1/24 dev eth1]\n"
        + "".join(f"    {line}\n" for line in extra.strip().splitlines()), "v.yaml")


def test_instances_move_onto_their_macvlan() -> None:
    cfg = load("use_vmac: true")
    (spec,) = vmac_specs(cfg)
    assert (spec.base, spec.ifname, spec.mac) == ("eth0", "vrrp.51", "00:00:5e:00:01:33")
    src = ipaddress.ip_address("10.0.0.9")
    inst = lower(cfg, lambda ifname, family: src if ifname == "eth0" else None
                 ).vrrp_instances["V"]
    assert inst.interface == "vrrp.51"
    assert [v.dev for v in inst.virtual_ipaddress] == ["vrrp.51", "eth1"]  # dev kept
    assert inst.mcast_src_ip == src  # the macvlan has no address: the base's
    based = lower(load("use_vmac: true\nvmac_xmit_base: true\nvmac_interface: vip51"),
                  lambda i, f: src).vrrp_instances["V"]
    assert (based.interface, based.virtual_ipaddress[0].dev) == ("eth0", "vip51")
    assert lower(load(""), lambda i, f: src) == load("")


def test_vmac_keys_need_use_vmac_and_strict_refuses_xmit_base() -> None:
    with pytest.raises(ConfigError) as err:
        load("vmac_xmit_base: true")
    assert "v.yaml:" in str(err.value) and "vmac_xmit_base: only used with use_vmac" \
        in str(err.value)
    with pytest.raises(ConfigError) as err:
        load("use_vmac: true\nvmac_xmit_base: true", strict=True)
    assert "vrrp_instances.V.vmac_xmit_base: not allowed in strict mode" in str(err.value)


def test_import_carries_use_vmac_with_its_name() -> None:
    result = import_keepalived_text(
        "vrrp_instance V {\n  interface eth0\n  virtual_router_id 9\n  use_vmac vip9\n"
        "  vmac_xmit_base\n  virtual_ipaddress {\n    10.0.0.9/24\n  }\n}\n", "k.conf")
    assert result.skipped == ()
    inst = parse_config(result.yaml_text).vrrp_instances["V"]
    assert (inst.use_vmac, inst.vmac_interface, inst.vmac_xmit_base) == (True, "vip9", True)
