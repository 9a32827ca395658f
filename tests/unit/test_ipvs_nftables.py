"""nftables dataplane, pure parts: what it accepts, the scripts it writes, reading back."""

from __future__ import annotations

import ipaddress
import json
from pathlib import Path

import pytest

from hacluster.ipvs.model import (
    Destination,
    Forward,
    Protocol,
    Service,
    ServiceFlag,
    Stats,
    Table,
)
from hacluster.ipvs.nftables import (
    SWITCH,
    NftState,
    check_entry,
    existing_objects,
    full_script,
    parse_ruleset,
    service_id,
    unsupported,
    update_script,
)

V4 = ipaddress.IPv4Address
WRR = Service(Protocol.TCP, V4("10.0.0.1"), 80, scheduler="wrr")


def d(last: int, weight: int = 1, port: int = 80, **kw: object) -> Destination:
    return Destination(V4(f"10.0.1.{last}"), port, weight, **kw)  # type: ignore[arg-type]


# Read back from a real `nft -j list table inet hacluster` after applying
# wrr TCP 10.0.0.1:80 -> 10.0.1.1:80 w3, 10.0.1.2:8080 w0 and sh FWM 5 IPv6 -> [2001:db8::1] w2.
SAMPLE = (Path(__file__).parent / "test_ipvs_nftables_sample.json").read_text()


def test_reads_back_what_was_applied() -> None:
    state, stats = parse_ruleset(json.loads(SAMPLE))
    table = state.table
    fwm = Service(fwmark=5, family=6, scheduler="sh")
    assert table == Table.of(
        [
            (WRR, [d(1, 3), d(2, 0, 8080)]),
            (fwm, [Destination(ipaddress.IPv6Address("2001:db8::1"), 0, 2)]),
        ]
    )
    assert stats.services[WRR.key] == Stats(conns=0)
    assert state.dispatch_gen == 1 and state.gens == {WRR.key: 1, fwm.key: 1}


def test_damaged_base_is_noticed() -> None:
    data = json.loads(SAMPLE)
    data["nftables"] = [
        o for o in data["nftables"] if not ("rule" in o and o["rule"]["chain"] == "prerouting")
    ]
    assert parse_ruleset(data)[0].dispatch_gen == 0


def test_service_ids_are_stable_names() -> None:
    assert service_id(WRR.key) == "t4_0a000001_80"
    v6 = Service(Protocol.UDP, ipaddress.IPv6Address("2001:db8::1"), 53)
    assert service_id(v6.key) == "u6_20010db8000000000000000000000001_53"
    assert service_id(Service(fwmark=255, family=4).key) == "f4_ff"


def script_of(table: Table) -> str:
    return full_script(table)[0]


def test_weighted_slots_and_expressions() -> None:
    script = script_of(Table.of([(WRR, [d(1, 3), d(2, 0), d(3, 2)])]))
    assert "add map inet hacluster d_t4_0a000001_80_g1 {" in script
    assert "elements = { 0-2 : 10.0.1.1 . 80, 3-4 : 10.0.1.3 . 80 };" in script
    assert "dnat ip to numgen random mod 5 map @d_t4_0a000001_80_g1" in script
    # Weight 0 stays recorded (drained, not forgotten).
    assert "10.0.1.2 . 80 : 0" in script
    assert script.startswith("add table inet hacluster\ndelete table inet hacluster\n")


def test_round_robin_gives_every_live_server_one_slot() -> None:
    rr = Service(Protocol.TCP, V4("10.0.0.1"), 80, scheduler="rr")
    script = script_of(Table.of([(rr, [d(1, 5), d(2, 1)])]))
    assert "{ 0 : 10.0.1.1 . 80, 1 : 10.0.1.2 . 80 }" in script
    assert "numgen inc mod 2" in script


def test_source_hash_and_sh_port() -> None:
    sh = Service(Protocol.TCP, V4("10.0.0.1"), 80, scheduler="sh", flags=ServiceFlag.SCHED2)
    script = script_of(Table.of([(sh, [d(1, 1), d(2, 2)])]))
    assert "jhash ip saddr . th sport mod 3 seed 0x0 map" in script
    plain = Service(Protocol.TCP, V4("10.0.0.1"), 80, scheduler="sh")
    assert "jhash ip saddr mod 3 seed 0x0 map" in script_of(Table.of([(plain, [d(1), d(2, 2)])]))


def test_service_without_live_server_rejects() -> None:
    script = script_of(Table.of([(WRR, [d(1, 0)])]))
    assert "svc_t4_0a000001_80 meta l4proto tcp counter name c_t4_0a000001_80 reject" in script


def test_update_touches_only_what_changed() -> None:
    other = Service(Protocol.UDP, V4("10.0.0.2"), 53, scheduler="rr")
    old = Table.of([(WRR, [d(1), d(2)]), (other, [d(3, port=53)])])
    state = full_script(old)[1]
    new = Table.of([(WRR, [d(1), d(2, 5)]), (other, [d(3, port=53)])])
    script, after = update_script(state, new)
    assert "add map inet hacluster d_t4_0a000001_80_g2 {" in script
    assert "map @d_t4_0a000001_80_g2" in script
    assert "delete map inet hacluster d_t4_0a000001_80_g1" in script
    assert "u4_0a000002_53" not in script
    assert "dispatch" not in script  # same services: the dispatch maps stay
    assert after.gens[WRR.key] == 2 and after.table == new
    assert update_script(after, new) == ("", after)


def test_adding_and_removing_services_rebuilds_dispatch_maps() -> None:
    gone = Service(Protocol.TCP, V4("10.0.0.3"), 80, scheduler="rr")
    fwm = Service(fwmark=9, family=4, scheduler="rr")
    state = full_script(Table.of([(WRR, [d(1)]), (gone, [d(4)])]))[1]
    script, after = update_script(state, Table.of([(WRR, [d(1)]), (fwm, [d(5, port=0)])]))
    assert "add chain inet hacluster svc_f4_9" in script
    assert "9 : jump svc_f4_9" in script and "@fwmark4_g2" in script
    assert "delete map inet hacluster dispatch4_g1" in script
    assert "delete chain inet hacluster svc_t4_0a000003_80" in script
    assert script.index("dispatch4_g2") < script.index("delete chain inet hacluster svc_t4_")
    assert after.dispatch_gen == 2 and gone.key not in after.gens


def test_an_update_commits_its_new_maps_before_switching_to_them() -> None:
    state = full_script(Table.of([(WRR, [d(1), d(2)])]))[1]
    script, _ = update_script(state, Table.of([(WRR, [d(1), d(2, 5)])]))
    maps, switch = script.split(f"\n{SWITCH}\n")
    assert all(line.startswith("add map ") for line in maps.splitlines())
    assert "d_t4_0a000001_80_g2" in maps and "w_t4_0a000001_80_g2" in maps
    assert "add map" not in switch
    assert switch.index("map @d_t4_0a000001_80_g2") < switch.index("delete map")
    # A service removed: the new dispatch maps first, then the rest goes.
    maps, switch = update_script(state, Table())[0].split(f"\n{SWITCH}\n")
    assert "dispatch4_g2" in maps and "delete chain inet hacluster svc_t4_0a000001_80" in switch
    assert update_script(state, state.table)[0] == ""


def test_a_whole_rewrite_in_place_keeps_hooks_chains_and_counters() -> None:
    other = Service(Protocol.UDP, V4("10.0.0.2"), 53, scheduler="rr")
    existing = {
        "chain": ["prerouting", "output", "svc_t4_0a000001_80", "svc_u4_0a000002_53", "mine"],
        "map": ["d_t4_0a000001_80_g7", "w_t4_0a000001_80_g7", "dispatch4_g3"],
        "set": ["junk"],
        "counter": ["c_t4_0a000001_80", "c_u4_0a000002_53"],
    }
    script, state = full_script(Table.of([(WRR, [d(1)])]), existing=existing)
    maps, switch = script.split(f"\n{SWITCH}\n")
    assert "d_t4_0a000001_80_g8" in maps and "dispatch4_g8" in maps  # above any there
    assert state.gens[WRR.key] == 8 and state.dispatch_gen == 8
    lines = switch.splitlines()
    assert lines[:2] == ["add table inet hacluster", "flush table inet hacluster"]
    assert "delete table" not in script
    deleted = {line.split()[-1] for line in lines if line.startswith("delete ")}
    assert deleted == {"d_t4_0a000001_80_g7", "w_t4_0a000001_80_g7", "dispatch4_g3", "junk",
                       "svc_u4_0a000002_53", "mine", "c_u4_0a000002_53"}
    assert existing_objects({"nftables": [{"chain": {"name": "x"}}, {"map": {"name": "m"}}]}) == {
        "chain": ["x"], "map": ["m"], "set": [], "counter": []
    }
    # Something a rewrite in place would leave behind: replace the table whole.
    assert existing_objects({"nftables": [{"flowtable": {"name": "f"}}]}) is None
    assert full_script(Table.of([(other, [d(3, port=53)])]))[0].startswith(
        "add table inet hacluster\ndelete table inet hacluster\n"
    )


def test_state_is_hashable_value() -> None:
    assert hash(NftState()) == hash(NftState())


@pytest.mark.parametrize(
    ("service", "dests", "message"),
    [
        (Service(Protocol.TCP, V4("10.0.0.1"), 80, scheduler="lc"), [], "scheduler 'lc'"),
        (Service(Protocol.TCP, V4("10.0.0.1"), 80, scheduler="wrr", timeout=60), [],
         "persistence"),
        (WRR, [d(1, forward=Forward.DR)], "lb_kind DR"),
        (WRR, [d(1, u_threshold=5)], "thresholds"),
        (WRR, [Destination(ipaddress.IPv6Address("2001:db8::1"), 80)], "not IPv4"),
        (Service(fwmark=1, family=4, scheduler="rr"), [d(1)], "port 0"),
        (WRR, [d(1, port=0)], "needs a port"),
        (Service(Protocol.UDP, V4("10.0.0.1"), 53, scheduler="rr", flags=ServiceFlag.ONEPACKET),
         [], "flags"),
    ],
)
def test_refuses_what_nftables_cannot_do(
    service: Service, dests: list[Destination], message: str
) -> None:
    (entry,) = Table.of([(service, dests)])
    problems = check_entry(entry)
    assert len(problems) == 1 and message in problems[0], problems
    assert str(service.key) in problems[0]


def test_supported_table_has_no_problems() -> None:
    assert unsupported(Table.of([(WRR, [d(1), d(2, 0)])])) == []


async def test_a_listing_like_the_last_is_not_parsed_again(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Read back every reconcile_interval, an unchanged table (its counters aside) is
    the state parsed last time; any other change is parsed."""
    from hacluster.ipvs import nftables

    backend = nftables.NftablesBackend()
    listings = [json.loads(SAMPLE) for _ in range(3)]
    for i, data in enumerate(listings):  # the traffic moves the named counters only
        for obj in data["nftables"]:
            if "counter" in obj:
                obj["counter"]["packets"] = i
    listings[2]["nftables"] = [o for o in listings[2]["nftables"]
                               if not ("map" in o and o["map"]["name"].startswith("w_")
                                       and "elem" in o["map"] and len(o["map"]["elem"]) == 2)]
    parses: list[object] = []
    real = nftables.parse_sliced

    async def counted(data: dict[str, object]) -> tuple[NftState, object]:
        parses.append(data)
        return await real(data)  # type: ignore[arg-type]

    async def listed() -> dict[str, object]:
        return listings.pop(0)

    monkeypatch.setattr(nftables, "parse_sliced", counted)
    monkeypatch.setattr(backend, "_list", listed)
    first = await backend.dump()
    assert await backend.dump() is first and len(parses) == 1
    assert len(first.entries) == 2
    changed = await backend.dump()  # a map gone: parsed again
    assert len(parses) == 2 and changed != first
