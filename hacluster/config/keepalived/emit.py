"""The YAML text of the converted data, without the items dropped from it."""

from __future__ import annotations

from typing import Any

import yaml

from hacluster.config.keepalived.marks import _DROPPED

# libyaml's emitter when present: an order of magnitude faster on large configurations
_YAML_DUMPER: Any = getattr(yaml, "CSafeDumper", yaml.SafeDumper)


def _render(
    value: Any, path: str, where: dict[str, tuple[Any, Any]], container: Any = None, key: Any = None
) -> Any:
    """A clean copy without dropped items, and for every path the (container, key) it came from."""
    where[path] = (container, key)
    if isinstance(value, dict):
        out: dict[str, Any] = {}
        for k, v in value.items():
            if v is _DROPPED:
                continue
            child = f"{path}.{k}" if path else k
            out[k] = _render(v, child, where, value, k)
        return out
    if isinstance(value, list):
        items: list[Any] = []
        for i, v in enumerate(value):
            if v is _DROPPED:
                continue
            items.append(_render(v, f"{path}[{len(items)}]", where, value, i))
        return items
    return value


def _dump(data: dict[str, Any]) -> str:
    return yaml.dump(data, Dumper=_YAML_DUMPER, sort_keys=False, default_flow_style=False,
                     allow_unicode=True, width=100)
