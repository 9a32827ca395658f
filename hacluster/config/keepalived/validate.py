"""The converted data through the real loader: what it refuses is left out and noted."""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

from hacluster.config.errors import ConfigError
from hacluster.config.keepalived.emit import _dump, _render
from hacluster.config.keepalived.marks import _DROPPED, _Origin
from hacluster.config.keepalived.statements import Skipped
from hacluster.config.loader import parse_config

if TYPE_CHECKING:
    from hacluster.config.keepalived.converter import _Converter


def _parent_paths(path: str) -> Iterator[str]:
    while path:
        yield path
        cut = max(path.rfind("."), path.rfind("["))
        path = path[:cut] if cut > 0 else ""


# Keys an entry cannot do without (the model has no default): when the loader refuses
# one, the entry holding it is left out rather than the key.
_REQUIRED_KEYS = frozenset(
    {"interface", "virtual_router_id", "virtual_ipaddress", "script", "file", "group", "ip",
     "port", "fwmark", "path", "misc_path"}
)


# What the loader refuses that keepalived 2.2.7 also ignores (with an error message),
# so that leaving it out behaves the same: (key path pattern, loader message part).
_KEEPALIVED_IGNORES = (
    # "(VI) track script X not found, ignoring..."
    (re.compile(r"\.track_script\[\d+\]$"), "no vrrp_script named"),
    # "VRRP parsed invalid IP X. skipping IP..." / "Invalid rule to address X"
    (re.compile(r"_(routes|rules)\[\d+\]\.(to|from|via|src)$"), "not an address"),
    # "(VI) track process X not found, ignoring..."
    (re.compile(r"\.track_process\[\d+\]$"), "no vrrp_track_process named"),
    # "Virtual router X specified in sync group G doesn't exist - ignoring"
    (re.compile(r"^vrrp_sync_groups\.[^.]+\.group\[\d+\]$"), "no vrrp_instance named"),
    # "(VI): address family must match VRRP instance [ADDR] - ignoring"
    (re.compile(r"\.virtual_ipaddress\[\d+\]$"), "one instance carries one family"),
    # "vrrp_script S weight W must be in [-253, 253]": weight 0, as here
    (re.compile(r"^vrrp_scripts\.[^.]+\.weight$"), "must be -253..253"),
    # "vrrp script interval must be greater than 0, setting to 1": 1 s, as here
    (re.compile(r"^vrrp_scripts\.[^.]+\.interval$"), ", got 0"),
    # "Real server weight W is outside range 0-65535": weight 1, as here
    (re.compile(r"\.real_servers\[\d+\]\.weight$"), "must be 0..65535"),
)


def _keepalived_ignores_too(key_path: str, message: str) -> bool:
    return any(path.search(key_path) and part in message for path, part in _KEEPALIVED_IGNORES)


def _validate(c: _Converter, data: dict[str, Any]) -> tuple[str, dict[str, Any]]:
    """Drop what the loader refuses, noting each, until the YAML loads."""
    for _ in range(200):
        where: dict[str, tuple[Any, Any]] = {}
        clean = _render(data, "", where)
        text = _dump(clean)
        try:
            parse_config(text, "<imported>")
        except ConfigError as exc:
            problems = exc.problems
        else:
            return text, clean
        targets: dict[tuple[int, Any], tuple[Any, Any, str, _Origin | None, bool]] = {}
        for problem in problems:
            for candidate in _parent_paths(problem.key_path):
                if candidate not in where:
                    continue  # a missing key: its parent goes instead
                container, key = where[candidate]
                if isinstance(key, str) and key in _REQUIRED_KEYS and (
                    key != "group" or any(container is g for g in c.groups.values())
                ):  # (`group` is required only of a sync group, not beside a user)
                    continue  # without it the entry is incomplete: the entry goes
                origin = None
                for up in _parent_paths(candidate):
                    if up in where:
                        box, k = where[up]
                        origin = c.origins.get((id(box), k)) or c.origins.get(
                            (id(box[k]) if box is not None else 0, None)
                        )
                        if origin is not None:
                            break
                message = f"{problem.message}; not carried over"
                if candidate != problem.key_path:  # a key it needs: the whole entry goes
                    inner = problem.key_path[len(candidate):].lstrip(".")
                    message = f"{inner}: {message}"
                same = _keepalived_ignores_too(problem.key_path, problem.message)
                if same:
                    message += ", as keepalived ignores it"
                targets.setdefault((id(container), key), (container, key, message, origin, same))
                break
        if not targets:
            break
        for container, key, message, origin, same in targets.values():
            if origin is not None:
                c.skipped.append(Skipped(origin.file, origin.line, origin.keyword, message,
                                         changes_behaviour=not same))
            if isinstance(container, list):
                container[key] = _DROPPED
            else:
                del container[key]
        for section in list(data):  # a section left empty goes too
            if not _render(data[section], "", {}):
                del data[section]
    # Not reached with the loader as it is; keep the output loadable regardless.
    c.skipped.append(Skipped("<imported>", 0, "", "the converted file did not validate; "
                             "nothing carried over"))
    return _dump({}), {}
