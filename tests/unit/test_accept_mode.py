"""accept / no_accept lowered to nftables set elements and table text (no kernel here;
tests/integration/test_accept_mode.py runs it), and the keys in the loader and import."""

from __future__ import annotations

from pathlib import Path

import pytest

from hacluster import accept_mode
from hacluster.config import ConfigError
from hacluster.config.keepalived_import import import_keepalived_text
from hacluster.config.loader import parse_config
from hacluster.config.model import Config

BASE = """
global_defs: {GLOBAL}
vrrp_instances:
  VI_1:
    interface: eth0
    virtual_router_id: 5
    version: 3
    priority: {PRIO}
    accept: {ACCEPT}
    virtual_ipaddress: ["fd00::5/64", "fe80::5/64 dev eth1"]
    virtual_ipaddress_excluded: [10.0.0.5/24]
"""


def load(*, accept: str = "false", prio: int = 100, glob: str = "{}") -> Config:
    return parse_config(BASE.replace("{GLOBAL}", glob).replace("{PRIO}", str(prio))
                        .replace("{ACCEPT}", accept), "t.yaml")


def test_elements_of_a_non_accepting_instance_vips_and_excluded() -> None:
    config = load()
    inst = config.vrrp_instances["VI_1"]
    assert accept_mode.wanted(config)
    assert accept_mode.elements(inst) == {
        "vips4": {"10.0.0.5"}, "vips6": {"fd00::5"}, "vips6_ll": {'fe80::5 . "eth1"'}}
    script = accept_mode.sets_script("t", accept_mode.masters_elements(
        config, ["VI_1"]))
    assert "flush set inet t vips4\nadd element inet t vips4 { 10.0.0.5 }\n" in script
    empty = accept_mode.sets_script("t", accept_mode.masters_elements(
        config, []))
    assert "add element" not in empty and empty.count("flush set") == 3


@pytest.mark.parametrize(("accept", "prio"), [("true", 100), ("false", 255)])
def test_accepting_instance_and_address_owner_drop_nothing(accept: str, prio: int) -> None:
    config = load(accept=accept, prio=prio)
    assert not accept_mode.wanted(config)
    inst = config.vrrp_instances["VI_1"]
    assert not any(accept_mode.elements(inst).values())


def test_strict_mode_implies_no_accept_below_255() -> None:
    text = BASE.replace("    accept: {ACCEPT}\n", "    strict_mode: true\n")
    text = text.replace('["fd00::5/64", "fe80::5/64 dev eth1"]', '["fe80::5/64", "fd00::5/64"]')
    config = parse_config(text.replace("{GLOBAL}", "{}").replace("{PRIO}", "100"), "t.yaml")
    assert accept_mode.wanted(config)


def test_table_script_follows_the_global_keys() -> None:
    config = load(glob="{nftables: kv, nftables_priority: -150, nftables_counters: true, "
                       "nftables_ifindex: true}")
    script = accept_mode.table_script(config)
    assert script.startswith("table inet kv {}\ndelete table inet kv\ntable inet kv {")
    assert "hook input priority -150" in script and "hook output priority -150" in script
    assert "ip daddr @vips4 counter drop" in script
    assert "ipv6_addr . iface_index" in script and "ip6 daddr . iif @vips6_ll" in script
    plain = accept_mode.table_script(load())
    assert "table inet hacluster_vrrp {" in plain and "counter" not in plain
    assert "priority -1;" in plain and "iifname @vips6_ll" in plain


@pytest.mark.parametrize("name", ["hacluster", "9x", "a b", "x" * 65])
def test_bad_table_names_are_refused(name: str) -> None:
    with pytest.raises(ConfigError, match=r"global_defs\.nftables"):
        load(glob=f"{{nftables: '{name}'}}")


def test_import_carries_the_nftables_keywords(tmp_path: Path) -> None:
    text = ("global_defs {\n nftables kv\n nftables_priority -5\n nftables_counters\n"
            " nftables_ifindex\n vrrp_iptables\n}\n"
            "vrrp_instance VI_1 {\n interface eth0\n virtual_router_id 5\n no_accept\n"
            " virtual_ipaddress {\n  10.0.0.5/24\n }\n}\n")
    result = import_keepalived_text(text, str(tmp_path / "k.conf"))
    g = result.data["global_defs"]
    assert (g["nftables"], g["nftables_priority"], g["nftables_counters"],
            g["nftables_ifindex"]) == ("kv", -5, True, True)
    assert result.data["vrrp_instances"]["VI_1"]["accept"] is False
    notes = [(s.keyword, s.changes_behaviour) for s in result.skipped]
    assert notes == [("global_defs.vrrp_iptables", False)]


def test_check_config_says_which_instances_drop_and_the_fifo_owner() -> None:
    from hacluster.commands.check_config import summary

    config = load(glob="{nftables: kv, notify_fifo: /run/n.fifo, notify_fifo_user: nobody, "
                       "fifo_write_vrrp_states_on_reload: true}")
    lines = summary(config)
    assert "  notify_fifo /run/n.fifo (created for nobody)" in lines
    assert "  every reload writes the VRRP states to the FIFOs again" in lines
    assert ("  no_accept: VI_1 drop traffic to their VIPs while MASTER (nftables table "
            "inet kv)") in lines
    assert not any("no_accept" in line for line in summary(load(accept="true")))


def test_preflight_names_the_instance_when_nft_is_missing(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import shutil

    from hacluster import preflight

    real_which = shutil.which
    monkeypatch.setattr(shutil, "which", lambda cmd, *a, **k: None if cmd == "nft"
                        else real_which(cmd, *a, **k))
    config = load()
    found = [str(f) for f in preflight.preflight(config, {"vrrp_instances.VI_1.accept": 9})]
    assert "<config>:9: vrrp_instances.VI_1.accept: [this machine] nft not found: no_accept " \
           "needs nftables (install it)" in found
    assert not [f for f in preflight.preflight(config, offline=True) if "nft" in str(f)]
    assert not [f for f in preflight.preflight(load(accept="true")) if "no_accept" in str(f)]
