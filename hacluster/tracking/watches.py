"""What the configuration asks to watch: every (instance, tracked object, weight). Does no I/O.

Objects tracked by a sync group apply to every member; objects tracked by a member
instance itself lose their weight (weight 0: fault only), so that members cannot end up
with differing priorities.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

from hacluster.config.model import (
    Config,
    VrrpInstance,
    VrrpScript,
    VrrpSyncGroup,
    VrrpTrackFile,
    VrrpTrackProcess,
)
from hacluster.tracking.events import Kind

log = logging.getLogger("hacluster.tracking")

KIND_KEY: dict[Kind, str] = {
    "script": "track_script",
    "interface": "track_interface",
    "file": "track_file",
    "process": "track_process",
}


@dataclass(frozen=True, slots=True)
class Watch:
    """One instance's interest in one tracked object, with the weight that applies."""

    instance: str
    kind: Kind
    name: str
    weight: int
    reverse: bool = False
    group: str | None = None  # tracked through this sync group

    @property
    def key(self) -> tuple[Kind, str]:
        return (self.kind, self.name)



def plan_watches(config: Config) -> tuple[Watch, ...]:
    """Every (instance, tracked object, weight) the configuration asks for."""
    watches: list[Watch] = []
    for inst in config.vrrp_instances.values():
        group = config.sync_group_of(inst.name)
        own = _watches_of(config, inst, inst.name, inst.name)
        if group is not None:
            for w in own:
                if w.weight != 0:
                    log.warning(
                        "[%s] %s %s: weight %+d ignored in sync group %s (fault only)",
                        inst.name, KIND_KEY[w.kind], w.name, w.weight, group.name,
                    )
            own = [Watch(w.instance, w.kind, w.name, 0, w.reverse) for w in own]
        watches.extend(own)
    for group in config.vrrp_sync_groups.values():
        for member in group.group:
            if member not in config.vrrp_instances:
                continue
            watches.extend(_watches_of(config, group, member, group.name, group.name))
    return tuple(watches)


def _watches_of(
    config: Config,
    tracker: VrrpInstance | VrrpSyncGroup,
    instance: str,
    user: str,
    group: str | None = None,
) -> list[Watch]:
    """What `tracker` (an instance, or a sync group for its member `instance`) tracks."""
    watches: list[Watch] = []
    for ts in tracker.track_script:
        script = _script(config, ts.name, user)
        weight = script.weight if ts.weight is None else ts.weight
        watches.append(
            Watch(instance, "script", ts.name, weight, ts.reverse or script.reverse, group)
        )
    for ti in tracker.track_interface:
        watches.append(Watch(instance, "interface", ti.name, ti.weight, ti.reverse, group))
    for tf in tracker.track_file:
        tfile = _track_file(config, tf.name, user)
        weight = tfile.weight if tf.weight is None else tf.weight
        watches.append(Watch(instance, "file", tf.name, weight, tf.reverse or tfile.reverse, group))
    for tp in tracker.track_process:
        tproc = _track_process(config, tp.name, user)
        weight = tproc.weight if tp.weight is None else tp.weight
        watches.append(
            Watch(instance, "process", tp.name, weight, tp.reverse or tproc.reverse, group)
        )
    return watches


def _script(config: Config, name: str, user: str) -> VrrpScript:
    try:
        return config.vrrp_scripts[name]
    except KeyError:
        raise ValueError(f"{user}: track_script {name!r} is not a vrrp_script") from None


def _track_file(config: Config, name: str, user: str) -> VrrpTrackFile:
    try:
        return config.vrrp_track_files[name]
    except KeyError:
        raise ValueError(f"{user}: track_file {name!r} is not a vrrp_track_file") from None


def _track_process(config: Config, name: str, user: str) -> VrrpTrackProcess:
    try:
        return config.vrrp_track_processes[name]
    except KeyError:
        raise ValueError(f"{user}: track_process {name!r} is not a vrrp_track_process") from None

