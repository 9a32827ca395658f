"""gcsettle: start-up objects frozen once the adds stop coming, garbage collected first."""

from __future__ import annotations

import asyncio
import gc
import weakref
from collections.abc import Iterator

import pytest

from healthchecks import gcsettle


@pytest.fixture(autouse=True)
def restore_gc() -> Iterator[None]:
    threshold = gc.get_threshold()
    yield
    gc.unfreeze()
    gc.set_threshold(*threshold)


class Node:
    def __init__(self) -> None:
        self.me = self  # a cycle: only the collector frees it


def test_settle_collects_then_freezes_and_raises_the_young_threshold() -> None:
    gc.unfreeze()
    garbage = Node()
    gone = weakref.ref(garbage)
    del garbage
    kept = Node()
    gcsettle.settle(gen0=12_345)
    assert gone() is None  # collected, not frozen for good
    assert gc.get_freeze_count() > 0
    assert gc.get_threshold()[0] == 12_345
    assert not any(o is kept for o in gc.get_objects())  # frozen: off the collector's lists


async def test_settles_once_after_the_last_touch() -> None:
    gc.unfreeze()
    settler = gcsettle.SettleWhenQuiet(asyncio.get_running_loop(), quiet=0.1)
    for _ in range(5):
        settler.touch()
        await asyncio.sleep(0.03)
        assert not settler.done and gc.get_freeze_count() == 0
    await asyncio.sleep(0.2)
    assert settler.done and gc.get_freeze_count() > 0
    later = Node()
    settler.touch()  # later adds (a reload) do not freeze again
    await asyncio.sleep(0.2)
    assert any(o is later for o in gc.get_objects())
