"""The VRRP role's hand-written records behave like the frozen dataclasses they replace."""

from __future__ import annotations

import copy
import dataclasses
from ipaddress import IPv4Address
from typing import Any

import pytest

from vrrp import addrwatch, machine, packet, transport
from vrrp.machine import AdvertReceived, MasterInfo, Reconfigured, SendAdvert, Shutdown, Startup
from vrrp.record import Record

MODULES = (machine, packet, transport, addrwatch)
RECORDS = [cls for module in MODULES for cls in vars(module).values()
           if isinstance(cls, type) and issubclass(cls, Record) and cls is not Record
           and cls.__module__ == module.__name__]
SAMPLE: dict[str, Any] = {"src_ip": IPv4Address("10.0.0.1"), "priority": 100,
                          "max_advert_int": 1.0, "delta": -10, "cause": "eth1 down",
                          "vip": "10.0.0.9/24", "primary_ip": IPv4Address("10.0.0.2"),
                          "nopreempt": True, "preempt_delay": 5.0, "advert_int": 1.0,
                          "vips": ("10.0.0.9/24",), "old": machine.State.BACKUP,
                          "new": machine.State.MASTER, "reason": "preempted",
                          "address": IPv4Address("10.0.0.3"), "added": True,
                          "ifname": "eth0", "src": IPv4Address("10.0.0.4"),
                          "dst": IPv4Address("224.0.0.18"), "ttl": 255, "age": 0.5,
                          "checksum": packet.ChecksumVariant.V3_PSEUDO,
                          "advert": packet.Advert(3, 7, 100, 1.0, (IPv4Address("10.0.0.9"),))}


def twin(cls: type[Record]) -> type:
    """The frozen dataclass `cls` was before it became a record."""
    fields = [(name, object) for name in cls.__match_args__]
    return dataclasses.make_dataclass(cls.__name__, fields, frozen=True, slots=True)


def test_the_machine_defines_its_events_and_actions_as_records() -> None:
    names = {cls.__name__ for cls in RECORDS}
    assert {"Startup", "AdvertReceived", "SendAdvert", "StateChanged", "MasterInfo"} <= names
    assert len(RECORDS) == 20
    assert {"Decoded", "ReceivedAdvert", "AddressEvent"} <= names


@pytest.mark.parametrize("cls", RECORDS, ids=lambda cls: cls.__name__)
def test_a_record_behaves_like_its_dataclass(cls: type[Record]) -> None:
    values = [SAMPLE[name] for name in cls.__match_args__]
    record, before = cls(*values), twin(cls)(*values)
    assert repr(record) == repr(before)
    assert record == cls(*values) and hash(record) == hash(cls(*values))
    assert cls.__match_args__ == before.__match_args__
    assert copy.copy(record) == record and copy.deepcopy(record) == record
    with pytest.raises(dataclasses.FrozenInstanceError):
        setattr(record, "other", 1)  # noqa: B010
    for name in cls.__match_args__:
        with pytest.raises(dataclasses.FrozenInstanceError):
            setattr(record, name, None)
        with pytest.raises(dataclasses.FrozenInstanceError):
            delattr(record, name)
    assert not hasattr(record, "__dict__")


def test_records_equal_only_their_own_class_and_values() -> None:
    a = AdvertReceived(IPv4Address("10.0.0.1"), 100, 1.0)
    assert a == AdvertReceived(src_ip=IPv4Address("10.0.0.1"), priority=100, max_advert_int=1.0)
    assert a != AdvertReceived(IPv4Address("10.0.0.1"), 101, 1.0)
    assert Startup() == Startup() and Startup() != Shutdown()
    assert SendAdvert(100, 1.0) != MasterInfo(IPv4Address("10.0.0.1"), 100)
    assert SendAdvert(100, 1.0) != (100, 1.0)
    assert len({SendAdvert(100, 1.0), SendAdvert(100, 1.0), SendAdvert(90, 1.0)}) == 2


def test_records_match_by_position_and_keyword() -> None:
    match Reconfigured(90, True, 3.0):
        case Reconfigured(priority, nopreempt, preempt_delay=delay):
            assert (priority, nopreempt, delay) == (90, True, 3.0)
        case _:
            pytest.fail("no match")


def test_a_received_advert_is_zero_seconds_old_unless_told() -> None:
    advert = SAMPLE["advert"]
    received = transport.ReceivedAdvert(advert, SAMPLE["src"], SAMPLE["dst"], 255,
                                        SAMPLE["checksum"])
    assert received.age == 0.0
    assert received != transport.ReceivedAdvert(advert, SAMPLE["src"], SAMPLE["dst"], 255,
                                                SAMPLE["checksum"], age=0.5)


def test_a_record_is_not_built_with_wrong_arguments() -> None:
    with pytest.raises(TypeError):
        SendAdvert(100)  # type: ignore[call-arg]
    with pytest.raises(TypeError):
        Startup(1)  # type: ignore[call-arg]
