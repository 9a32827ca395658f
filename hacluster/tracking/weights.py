"""keepalived's weights: what a tracked object adds to a priority, or the fault it raises.

An up/down object (script, interface, process) and a track_file value each give a
priority delta or a fault. Does no I/O.
"""

from __future__ import annotations

from hacluster.tracking.watches import KIND_KEY, Watch

#: A track_file result below this puts the instance in FAULT (keepalived).
FILE_FAULT_BELOW = -253


def state_contribution(weight: int, reverse: bool, up: bool) -> tuple[int, bool]:
    """(priority delta, fault) from an up/down object (script or interface)."""
    if weight == 0:
        return 0, (up if reverse else not up)
    sign = -1 if reverse else 1
    if weight > 0:
        return (weight * sign if up else 0), False
    return (weight * sign if not up else 0), False


def file_contribution(weight: int, reverse: bool, value: int) -> tuple[int, bool]:
    """(priority delta, fault) from a track_file value."""
    if weight == 0:
        failed = value != 0
        return 0, (not failed if reverse else failed)
    result = value * weight * (-1 if reverse else 1)
    if result < FILE_FAULT_BELOW:
        return 0, True
    return result, False


def fault_cause(watch: Watch) -> str:
    """The stable name of the fault a watch can raise (it keys FaultCleared)."""
    key = KIND_KEY[watch.kind]
    if watch.kind == "file":
        if watch.weight == 0:
            return f"{key} {watch.name} {'zero (reverse)' if watch.reverse else 'non-zero'}"
        return f"{key} {watch.name} below {FILE_FAULT_BELOW}"
    if watch.kind == "interface":
        return f"{key} {watch.name} {'up (reverse)' if watch.reverse else 'down'}"
    if watch.kind == "process":
        return f"{key} {watch.name} {'quorum held (reverse)' if watch.reverse else 'quorum lost'}"
    return f"{key} {watch.name} {'succeeded (reverse)' if watch.reverse else 'failed'}"
