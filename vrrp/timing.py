"""VRRP timer arithmetic: skew time and master-down interval for v2 and v3. Does no I/O.

VRRPv2 (RFC 3768 §6.1) counts whole seconds and its skew ignores the interval:
    Skew_Time = (256 - Priority) / 256
    Master_Down_Interval = 3 * Advertisement_Interval + Skew_Time
VRRPv3 (RFC 5798 §6.1, corrected by RFC 9568) counts centiseconds and scales the skew with
the master's interval:
    Skew_Time = ((256 - Priority) * Master_Adver_Interval) / 256
    Master_Down_Interval = 3 * Master_Adver_Interval + Skew_Time
All results are in float seconds, the unit the machine's clock uses. The skew is not
rounded to centiseconds, which is what keepalived does too (it keeps microseconds).
"""

from __future__ import annotations

import math
from typing import Final

V2: Final = 2
V3: Final = 3

#: RFC 3768 §5.3.7: the v2 interval is an 8-bit count of seconds (0 is meaningless).
V2_MIN_INTERVAL: Final = 1
V2_MAX_INTERVAL: Final = 255
#: RFC 5798 §5.2.7: the v3 interval is a 12-bit count of centiseconds.
V3_MIN_CENTISECONDS: Final = 1
V3_MAX_CENTISECONDS: Final = 4095

#: RFC 5798 §6.1: a backup declares the master down after this many missed adverts.
DEFAULT_DOWN_TIMER_ADVERTS: Final = 3

MIN_PRIORITY: Final = 0
MAX_PRIORITY: Final = 255


def _check_version(version: int) -> None:
    if version not in (V2, V3):
        raise ValueError(f"VRRP version must be 2 or 3, not {version!r}")


def _check_priority(priority: int) -> None:
    if not MIN_PRIORITY <= priority <= MAX_PRIORITY:
        raise ValueError(f"priority must be within 0..255, not {priority!r}")


def centiseconds(seconds: float) -> int:
    """Convert a v3 interval in seconds to whole centiseconds, refusing what v3 cannot carry."""
    # Range first: rounding a huge or infinite float would overflow.
    if not (math.isfinite(seconds) and 0 < seconds < (V3_MAX_CENTISECONDS + 1) / 100):
        raise ValueError(f"a VRRPv3 interval must be within 0.01..40.95 s, not {seconds!r}s")
    cs = round(seconds * 100)
    if abs(cs - seconds * 100) > 1e-6:
        raise ValueError(f"a VRRPv3 interval is a whole number of centiseconds, not {seconds!r}s")
    if not V3_MIN_CENTISECONDS <= cs <= V3_MAX_CENTISECONDS:
        raise ValueError(f"a VRRPv3 interval must be within 0.01..40.95 s, not {seconds!r}s")
    return cs


def check_interval(version: int, seconds: float) -> float:
    """Validate an advertisement interval for `version`; return it in seconds."""
    _check_version(version)
    if version == V2:
        whole = math.isfinite(seconds) and seconds == int(seconds)
        if not whole or not V2_MIN_INTERVAL <= seconds <= V2_MAX_INTERVAL:
            raise ValueError(
                f"a VRRPv2 interval is a whole number of seconds 1..255, not {seconds!r}"
            )
        return float(seconds)
    return centiseconds(seconds) / 100


def skew_time(priority: int, master_adver_int: float, version: int) -> float:
    """Skew_Time in seconds for a router of `priority` listening to a master at the interval."""
    _check_version(version)
    _check_priority(priority)
    if version == V2:
        return (256 - priority) / 256
    return (256 - priority) * centiseconds(master_adver_int) / 25600


def master_down_interval(
    priority: int,
    master_adver_int: float,
    version: int,
    down_timer_adverts: int = DEFAULT_DOWN_TIMER_ADVERTS,
) -> float:
    """Master_Down_Interval in seconds: `down_timer_adverts` intervals plus the skew."""
    check_interval(version, master_adver_int)
    if down_timer_adverts < 1:
        raise ValueError(f"down_timer_adverts must be at least 1, not {down_timer_adverts!r}")
    if version == V2:
        intervals = down_timer_adverts * master_adver_int
    else:
        intervals = down_timer_adverts * centiseconds(master_adver_int) / 100
    return intervals + skew_time(priority, master_adver_int, version)
