"""Trackers: vrrp_scripts, track_interface, track_file, track_process → priority changes, faults.

Two layers, as everywhere in hacluster:

- `TrackingCore` (`core`) is pure (does no I/O): it is told script results, link states
  and file values with the time, counts rise/fall, and returns `TrackChange` values: for
  one VRRP instance, a `vrrp.machine` event (`PriorityChanged` with the instance's total
  tracker delta, `FaultRaised` or `FaultCleared`) ready to be handed to its machine.
- `Tracking` (`glue`) is the asyncio glue: it runs the scripts (via `hacluster.scripts`),
  follows link state through rtnetlink events in the process's own network namespace,
  watches the tracked files' directories with inotify (and polls them as a safety net),
  counts tracked processes (`hacluster.proc_events`: the kernel's process events), feeds
  the core and calls ``on_change`` for every change. It can be started, stopped and
  reconfigured (objects that did not change keep their state).

A module a job: what is reported (`events`), what the configuration asks to watch
(`watches`), keepalived's weights (`weights`), the pure core (`core`), one module per
tracker kind (`script`, `interface`, `file`; processes are `hacluster.process_track`) and
the glue (`glue`).

keepalived's semantics (keepalived.conf(5)):

- a tracked process is up while ``quorum`` to ``quorum_max`` processes match
  (`hacluster.process_track`);
- weight 0: the instance is in FAULT while the object is down (``reverse``: while up);
- weight > 0: +weight while up; weight < 0: weight (a decrease) while down; ``reverse``
  flips the sign of the adjustment;
- a `track_script` / `track_file` entry's weight overrides the object's own;
- a script counts as down after ``fall`` failures in a row and up after ``rise``
  successes; its first result decides at once (``init_fail`` starts it down);
- track_file: the file holds an integer (missing or unreadable reads as 0); with
  weight 0 a non-zero value is a fault; otherwise value x weight is added, and a result
  below -253 is a fault;
- an interface is up while it is administratively up and has carrier (IFF_UP and
  IFF_RUNNING); a missing interface is down;
- objects tracked by a sync group apply to every member; objects tracked by a member
  instance itself lose their weight (weight 0: fault only), so that members cannot
  end up with differing priorities.
"""

from hacluster.tracking.core import TrackingCore
from hacluster.tracking.events import (
    InstanceTracking,
    Kind,
    ObjectStatus,
    TrackChange,
    TrackEvent,
    TrackSink,
    deliver,
)
from hacluster.tracking.file import init_track_file, read_track_file
from hacluster.tracking.glue import ChangeCallback, Tracking
from hacluster.tracking.interface import IFF_RUNNING, IFF_UP, LinkMonitor, link_is_up
from hacluster.tracking.script import RiseFall, prepare_scripts
from hacluster.tracking.watches import Watch, plan_watches
from hacluster.tracking.weights import (
    FILE_FAULT_BELOW,
    fault_cause,
    file_contribution,
    state_contribution,
)

__all__ = [
    "FILE_FAULT_BELOW",
    "IFF_RUNNING",
    "IFF_UP",
    "ChangeCallback",
    "InstanceTracking",
    "Kind",
    "LinkMonitor",
    "ObjectStatus",
    "RiseFall",
    "TrackChange",
    "TrackEvent",
    "TrackSink",
    "Tracking",
    "TrackingCore",
    "Watch",
    "deliver",
    "fault_cause",
    "file_contribution",
    "init_track_file",
    "link_is_up",
    "plan_watches",
    "prepare_scripts",
    "read_track_file",
    "state_contribution",
]
