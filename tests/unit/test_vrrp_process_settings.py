"""vrrp_priority, vrrp_rt_priority (+ vrrp_rlimit_rttime), vrrp_no_swap: applied by the VRRP role.

`hacluster.roles.vrrp.apply_process_settings` runs in a process of its own here (what it
changes is the calling process's scheduling and memory), which reports what the kernel
then says of it: its nice value, its scheduling policy and priority, its RLIMIT_RTTIME
and its locked memory. Unprivileged, each setting is refused with a line, never fatally.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from typing import Any

import pytest

_PROBE = """
import json, os, resource, sys
from hacluster.config.model import GlobalDefs
from hacluster.roles.vrrp import apply_process_settings

if len(sys.argv) > 2:  # unprivileged, whatever this machine's limits are
    for limit in (resource.RLIMIT_NICE, resource.RLIMIT_RTPRIO, resource.RLIMIT_MEMLOCK):
        resource.setrlimit(limit, (0, 0))
    os.setuid(int(sys.argv[2]))
lines = apply_process_settings(GlobalDefs(**json.loads(sys.argv[1])))
locked = next(int(l.split()[1]) for l in open("/proc/self/status") if l.startswith("VmLck:"))
print(json.dumps({
    "lines": lines,
    "nice": os.getpriority(os.PRIO_PROCESS, 0),
    "policy": os.sched_getscheduler(0),
    "rt_priority": os.sched_getparam(0).sched_priority,
    "rttime": resource.getrlimit(resource.RLIMIT_RTTIME)[0],
    "locked_kb": locked,
}))
"""


def _probe(settings: dict[str, Any], uid: int | None = None) -> dict[str, Any]:
    argv = [sys.executable, "-c", _PROBE, json.dumps(settings)]
    if uid is not None:
        argv.append(str(uid))
    out = subprocess.run(argv, capture_output=True, text=True, timeout=60, check=True)
    result: dict[str, Any] = json.loads(out.stdout)
    return result


def test_nothing_set_changes_nothing() -> None:
    seen = _probe({})
    assert seen["lines"] == []
    assert seen["policy"] == os.SCHED_OTHER
    assert seen["locked_kb"] == 0


@pytest.mark.skipif(os.geteuid() != 0, reason="needs root (negative nice, SCHED_RR, mlockall)")
def test_each_setting_is_applied() -> None:
    seen = _probe({"vrrp_priority": -5, "vrrp_rt_priority": 10,
                   "vrrp_rlimit_rttime": 500_000, "vrrp_no_swap": True})
    assert seen["nice"] == -5
    assert seen["policy"] == os.SCHED_RR and seen["rt_priority"] == 10
    assert seen["rttime"] == 500_000
    assert seen["locked_kb"] > 0
    assert seen["lines"] == ["nice -5", "SCHED_RR priority 10, RLIMIT_RTTIME 500000 us",
                             "memory locked (mlockall)"]


@pytest.mark.skipif(os.geteuid() != 0, reason="needs root")
def test_rt_priority_without_a_limit_gets_the_default_one() -> None:
    from hacluster.roles.vrrp import DEFAULT_RLIMIT_RTTIME

    seen = _probe({"vrrp_rt_priority": 5})
    assert seen["policy"] == os.SCHED_RR and seen["rttime"] == DEFAULT_RLIMIT_RTTIME


@pytest.mark.skipif(os.geteuid() != 0, reason="needs root to become another user")
def test_unprivileged_each_setting_is_refused_with_a_line_not_fatally() -> None:
    seen = _probe({"vrrp_priority": -5, "vrrp_rt_priority": 10, "vrrp_no_swap": True},
                  uid=65534)
    assert seen["nice"] == 0 and seen["policy"] == os.SCHED_OTHER
    assert [line.split(" refused")[0] for line in seen["lines"]] == [
        "vrrp_priority -5", "vrrp_rt_priority 10", "vrrp_no_swap"]


def test_single_process_says_each_setting_it_leaves_out() -> None:
    from hacluster.commands.run import VRRP_PROCESS_KEYS, ignored_in_one_process
    from hacluster.config.loader import parse_config
    from hacluster.config.model import GlobalDefs

    assert set(VRRP_PROCESS_KEYS) <= {f for f in GlobalDefs.__dataclass_fields__}
    assert ignored_in_one_process(parse_config("{}", "t.yaml")) == []
    config = parse_config("global_defs: {vrrp_priority: -5, vrrp_rt_priority: 10, "
                          "vrrp_rlimit_rttime: 5000, vrrp_no_swap: true}", "t.yaml")
    lines = ignored_in_one_process(config)
    assert [line.split()[0] for line in lines] == [f"global_defs.{k}" for k in VRRP_PROCESS_KEYS]
    assert all(line.endswith("ignored with --single-process") for line in lines)
