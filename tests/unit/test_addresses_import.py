"""The daemon's other pyroute2 users wait for the warm-up import (no concurrent import)."""

from __future__ import annotations

import asyncio
import concurrent.futures

from vrrp.addresses import Addresses


def test_imported_waits_for_the_warm_up_import_and_keeps_its_failure_for_later() -> None:
    async def scenario() -> None:
        addresses = Addresses()
        pending: concurrent.futures.Future[None] = concurrent.futures.Future()
        addresses._import = pending  # the warm-up thread is still importing
        waiting = asyncio.create_task(addresses.imported())
        await asyncio.sleep(0.05)
        assert not waiting.done()
        pending.set_exception(ImportError("partially initialized module"))
        await asyncio.wait_for(waiting, 1.0)  # done, and the failure is not raised here

    asyncio.run(scenario())
