"""Property tests: any sequence of events keeps the VRRP machine consistent and never raises."""

from __future__ import annotations

from ipaddress import IPv4Address, IPv6Address
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from vrrp.machine import (
    AddVips,
    AdvertReceived,
    Announce,
    Event,
    FaultCleared,
    FaultRaised,
    InstanceParams,
    Machine,
    PriorityChanged,
    RemoveVips,
    SendAdvert,
    Shutdown,
    Startup,
    State,
    StateChanged,
    TimerExpired,
)

ME = IPv4Address("10.0.0.5")

sources = st.one_of(
    st.sampled_from([IPv4Address("10.0.0.4"), IPv4Address("10.0.0.6"), ME]),
    st.just(IPv6Address("fe80::1")),
    st.just("10.0.0.7"),  # not an address object: must be dropped, not crash
)
intervals = st.one_of(
    st.sampled_from([0.01, 0.1, 0.5, 1.0, 2.0, 0.0, 41.0]),
    st.floats(allow_nan=True, allow_infinity=True),
)
adverts = st.builds(
    AdvertReceived, sources, st.integers(min_value=-5, max_value=300), intervals
)
events: st.SearchStrategy[Event] = st.one_of(
    adverts,
    adverts,
    st.just(Startup()),
    st.just(Shutdown()),
    st.just(TimerExpired()),
    st.builds(PriorityChanged, st.integers(min_value=-300, max_value=300)),
    st.builds(FaultRaised, st.sampled_from(["a", "b"])),
    st.builds(FaultCleared, st.sampled_from(["a", "b", "c"])),
)
params = st.builds(
    InstanceParams,
    name=st.just("VI_1"),
    vrid=st.just(1),
    primary_ip=st.just(ME),
    priority=st.sampled_from([1, 100, 200, 254, 255]),
    version=st.just(3),
    advert_int=st.sampled_from([0.1, 1.0]),
    initial_state=st.sampled_from([State.BACKUP, State.MASTER]),
    preempt_delay=st.sampled_from([0.0, 2.0]),
    vips=st.just(("v",)),
)


@settings(max_examples=200, deadline=None)
@given(params, st.lists(st.tuples(events, st.floats(min_value=0, max_value=3)), max_size=60))
def test_random_event_sequences_keep_the_machine_consistent(
    p: InstanceParams, script: list[tuple[Event, float]]
) -> None:
    m = Machine(p)
    now = 0.0
    holding = False
    for event, wait in script:
        # Timers are honoured as a driver would: fire every deadline passed on the way.
        target = now + wait
        while (d := m.next_deadline()) is not None and d <= target:
            now = d
            holding = _check(m, m.handle_timer(now), holding, now, fired=True)
        now = target
        before = m.state
        actions = m.handle(event, now)
        holding = _check(m, actions, holding, now, fired=False)
        if not any(isinstance(a, StateChanged) for a in actions):
            assert m.state is before


def _check(m: Machine, actions: list[Any], holding: bool, now: float, fired: bool) -> bool:
    for a in actions:
        match a:
            case AddVips():
                assert not holding
                holding = True
            case RemoveVips():
                assert holding
                holding = False
            case Announce():
                assert holding
            case SendAdvert(priority, _):
                assert priority == 0 or priority == m.priority
                assert 0 <= priority <= 255
            case StateChanged(old, new, reason):
                assert old is not new and reason
    changes = [a for a in actions if isinstance(a, StateChanged)]
    if changes:
        assert changes[-1].new is m.state
    # Invariants after every step.
    assert holding == (m.state is State.MASTER)
    assert 1 <= m.priority <= 255
    deadline = m.next_deadline()
    if m.state in (State.INITIALIZE, State.FAULT):
        assert deadline is None
    elif m.state is State.MASTER:
        assert deadline is not None
    if fired and deadline is not None:
        assert deadline > now  # nothing left due after the timer fired
    if m.state is State.FAULT:
        assert m.faults
    return holding
