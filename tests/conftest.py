"""Suite-wide pytest configuration: markers that need root skip cleanly elsewhere."""

from __future__ import annotations

import os

import pytest


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    # Tests marked netns/keepalived/vm/deb need root. Outside CI a non-root run skips them
    # with a reason; in CI (CI=true, root) they always run, so nothing hides there.
    if os.geteuid() == 0:
        return
    skip = pytest.mark.skip(reason="needs root (network namespaces, dpkg -i)")
    for item in items:
        if any(item.get_closest_marker(m) for m in ("netns", "keepalived", "vm", "deb")):
            item.add_marker(skip)
