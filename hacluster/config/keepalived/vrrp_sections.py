"""VRRP sections once read: completeness checks, keepalived's corrections and notes."""

from __future__ import annotations

import contextlib
import ipaddress
import math
from typing import Any

from hacluster.config import advert_fit
from hacluster.config.keepalived.marks import _DROPPED, _Origin
from hacluster.config.keepalived.recorder import _Recorder
from hacluster.config.keepalived.statements import Statement


class _VrrpSections(_Recorder):
    """Completes the vrrp_* sections the way keepalived does as it loads them."""

    def note_sync_group_weights(self) -> None:
        """keepalived ignores tracking weights of a sync group's members ("ignoring ...
        weight due to SYNC group"): they only fault the instance. hacluster does too."""
        for group in self.groups.values():
            for member in group.get("group", ()):
                inst = self.instances.get(member)
                if inst is None:
                    continue
                for kind, defined in (("track_interface", {}), ("track_script", self.scripts),
                                      ("track_file", self.track_files),
                                      ("track_process", self.track_processes)):
                    items = inst.get(kind, [])
                    for i, item in enumerate(items):
                        if item is _DROPPED:
                            continue
                        name = item["name"] if isinstance(item, dict) else item
                        weight = item.get("weight") if isinstance(item, dict) else None
                        if weight is None:  # the script's or file's own weight applies
                            weight = defined.get(name, {}).get("weight")
                        if not weight:
                            continue
                        where = self.origins[(id(items), i)]
                        self.skip(Statement((kind,), where.file, where.line), where.keyword,
                                  f"{member} is in a sync group: keepalived ignores the weight "
                                  f"{weight} (it only faults the instance), and so does "
                                  "hacluster", same=True)

    def apply_min_garp(self) -> None:
        # vrrp_min_garp: one gratuitous ARP and no second burst, unless set explicitly
        stmt = self.min_garp
        if stmt is None:
            return
        self.global_defs.setdefault("vrrp_garp_master_repeat", 1)
        self.global_defs.setdefault("vrrp_garp_master_delay", 0)
        self.origins.setdefault(
            (id(self.global_defs), "vrrp_garp_master_repeat"),
            _Origin(stmt.file, stmt.line, "global_defs.vrrp_min_garp"),
        )
        self.origins.setdefault(
            (id(self.global_defs), "vrrp_garp_master_delay"),
            _Origin(stmt.file, stmt.line, "global_defs.vrrp_min_garp"),
        )

    # ---------------------------------------------------------------- completeness checks

    def finish_script(self, stmt: Statement, target: dict[str, Any], kp: str) -> bool:
        if "script" not in target:
            # keepalived: "No script set for vrrp_script X - removing"
            self.skip(stmt, kp, f"{stmt.args[0]} has no script; not carried over",
                      same=True)
            return False
        return True

    def finish_track_file(self, stmt: Statement, target: dict[str, Any], kp: str) -> bool:
        if "file" not in target:
            self.skip(stmt, kp, f"{stmt.args[0]} has no file; not carried over")
            return False
        return True

    def finish_track_process(self, stmt: Statement, target: dict[str, Any], kp: str) -> bool:
        if "process" not in target:
            # keepalived: "track process 'X' process name not specified", and drops it
            self.skip(stmt, kp, f"{stmt.args[0]} has no process; not carried over, as "
                      "keepalived drops it", same=True)
            return False
        return True

    def finish_instance(self, stmt: Statement, target: dict[str, Any], kp: str) -> bool:
        name = stmt.args[0]
        missing = [k for k in ("interface", "virtual_router_id") if k not in target]
        if missing:
            self.skip(
                stmt, kp,
                f"{name} lacks {', '.join(missing)} (required here); not carried over",
            )
            return False
        if not self.keepalived_rules(stmt, target, kp):
            return False
        sync = target.pop("_lvs_sync_daemon_interface", None)
        if sync is not None:
            iface, where = sync
            if "lvs_sync_daemon" in self.global_defs:
                self.skip(where, f"{kp}.lvs_sync_daemon_interface",
                          "global_defs already has lvs_sync_daemon; not carried over")
            else:
                value = {"interface": iface, "instance": name}
                self.put(self.global_defs, "lvs_sync_daemon", value, where,
                         f"{kp}.lvs_sync_daemon_interface")
        return True

    def keepalived_rules(self, stmt: Statement, target: dict[str, Any], kp: str) -> bool:
        """What keepalived 2.2.7 corrects in an instance as it loads it, corrected the same
        way (with a note); False when keepalived refuses the instance."""
        name = stmt.args[0]
        version = target.get("version", self.global_defs.get("vrrp_version", 2))
        # vrrp_strict / strict_mode, once carried over, tighten keepalived's rules
        strict = bool(target.get("strict_mode", self.global_defs.get("vrrp_strict")))
        if not target.get("virtual_ipaddress"):
            target.pop("virtual_ipaddress", None)
            family = _instance_family(target)
            if version == 3 or family == 6 or strict:
                self.skip(stmt, kp, f"{name} has no virtual_ipaddress: keepalived refuses "
                          "that under VRRPv3, IPv6 or strict mode (\"No VIP specified; at "
                          "least one is required\") and does not start; not carried over")
                return False
            self.skip(stmt, kp, f"{name} has no virtual_ipaddress: keepalived warns (\"at "
                      "least one is sensible\") and runs it, adverts without addresses; "
                      "so does hacluster", same=True)
        elif version == 2 and _instance_family(target) == 6:
            version = 3  # keepalived (and the loader) run IPv6 instances as VRRPv3
        vips = target.get("virtual_ipaddress") or ()
        if len(vips) > advert_fit.VRRP_MAX_ADDR:
            self.skip(stmt, kp, f"{name} has {len(vips)} VIPs: one advert carries at most "
                      f"{advert_fit.VRRP_MAX_ADDR} (fewer if the interface's MTU is small); "
                      "the rest are not advertised, only added: keepalived and hacluster "
                      "move them to the excluded VIPs at start, with a warning", same=True)
        tracked = target.get("track_interface", [])
        for i, item in reversed(list(enumerate(tracked))):
            if (item.get("name") if isinstance(item, dict) else item) == target["interface"]:
                where = self.origins[(id(tracked), i)]
                tracked[i] = _DROPPED
                self.skip(Statement(("track_interface",), where.file, where.line),
                          where.keyword, "the instance's own interface: keepalived ignores "
                          "it (\"since own interface\"), as the instance faults with it "
                          "anyway; so does the import", same=True)
        if tracked and all(t is _DROPPED for t in tracked):
            del target["track_interface"]
        if target.get("nopreempt") and target.get("state") == "MASTER":
            where = self.origins[(id(target), "nopreempt")]
            del target["nopreempt"]
            self.skip(Statement(("nopreempt",), where.file, where.line), f"{kp}.nopreempt",
                      "keepalived clears nopreempt with state MASTER (\"nopreempt will not "
                      "work with initial state MASTER\"); so does the import", same=True)
        if target.get("nopreempt") and target.get("preempt_delay"):
            where = self.origins[(id(target), "preempt_delay")]
            del target["preempt_delay"]
            self.skip(Statement(("preempt_delay",), where.file, where.line),
                      f"{kp}.preempt_delay", "keepalived resets it with nopreempt "
                      "(\"preempt_delay is incompatible with nopreempt mode\"); so does "
                      "the import", same=True)
        advert = target.get("advert_int")
        if version == 2 and isinstance(advert, int | float) and (
            advert >= 256 or not float(advert).is_integer()
        ):
            where = self.origins[(id(target), "advert_int")]
            fixed = 255 if advert >= 256 else max(1, math.floor(advert + 0.5))
            self.put(target, "advert_int", fixed, Statement(("advert_int",), where.file,
                                                              where.line), where.keyword)
            self.skip(Statement(("advert_int",), where.file, where.line), f"{kp}.advert_int",
                      f"VRRPv2 takes whole seconds (up to 255): keepalived makes {advert:g} "
                      f"{fixed}, and so does the import", same=True)
        if target.get("garp_master_repeat") == 0:
            where = self.origins[(id(target), "garp_master_repeat")]
            target["garp_master_repeat"] = 1
            self.skip(Statement(("garp_master_repeat",), where.file, where.line),
                      f"{kp}.garp_master_repeat", "keepalived sets 0 to 1 (\"must be greater "
                      "than 0\"), and so does the import", same=True)
        if strict and not self.strict_rules(stmt, target, kp):
            return False
        if (version == 3 or strict) and "authentication" in target:
            where = self.origins[(id(target), "authentication")]
            del target["authentication"]
            why = "VRRPv3 has" if version == 3 else "strict mode allows"
            self.skip(Statement(("authentication",), where.file, where.line),
                      f"{kp}.authentication", f"{why} no authentication: keepalived "
                      "ignores it, and so does the import", same=True)
        return True

    def strict_rules(self, stmt: Statement, target: dict[str, Any], kp: str) -> bool:
        """What keepalived 2.2.7 resets in strict mode (vrrp_complete_instance), reset the
        same way with a note; False when it refuses the instance (unicast peers)."""
        name = stmt.args[0]
        if target.get("unicast_peers"):
            self.skip(stmt, kp, f"{name}: keepalived refuses unicast peers in strict mode "
                      "(\"Unicast peers are not supported in strict mode\") and does not run "
                      "the instance; not carried over", same=True)
            return False
        owner = target.get("priority", 100) == 255
        if "state" in target and (target["state"] == "MASTER") != owner:
            where = self.origins[(id(target), "state")]
            target["state"] = "MASTER" if owner else "BACKUP"
            self.skip(Statement(("state",), where.file, where.line), f"{kp}.state",
                      "strict mode: keepalived makes the state follow the priority (\"State "
                      f"MASTER must match being address owner\"): {target['state']}, and so "
                      "does the import", same=True)
        version = target.get("version", self.global_defs.get("vrrp_version", 2))
        resets = [
            ("preempt_delay", bool(target.get("preempt_delay"))),
            ("higher_prio_send_advert", bool(target.get("higher_prio_send_advert"))),
            ("lower_prio_no_advert", target.get("lower_prio_no_advert") is False),
            ("accept", bool(target.get("accept")) and not owner and version == 2),
            ("garp_lower_prio_repeat", bool(target.get("garp_lower_prio_repeat"))),
            ("garp_lower_prio_delay", bool(target.get("garp_lower_prio_delay"))),
        ]
        for key, bad in resets:
            if bad:
                where = self.origins[(id(target), key)]
                del target[key]
                self.skip(Statement((key,), where.file, where.line), f"{kp}.{key}",
                          "keepalived resets it in strict mode; so does the import", same=True)
        return True

    def finish_group(self, stmt: Statement, target: dict[str, Any], kp: str) -> bool:
        if not target.get("group"):
            # keepalived: "Sync group G has no virtual router(s). removing"
            self.skip(stmt, kp, f"{stmt.args[0]} has no group {{ }} of instances; not carried "
                      "over", same=True)
            return False
        return True


def _instance_family(instance: dict[str, Any]) -> int:
    """4 or 6, as keepalived decides it: the first address, else the unicast ones."""
    vips = instance.get("virtual_ipaddress") or ()
    candidates = [str(v).split()[0].split("/")[0] for v in vips[:1]]
    candidates += [str(instance[k]) for k in ("unicast_src_ip", "mcast_src_ip") if k in instance]
    for peer in instance.get("unicast_peers", ()):
        candidates.append(str(peer["ip"] if isinstance(peer, dict) else peer))
    for text in candidates:
        with contextlib.suppress(ValueError):
            return ipaddress.ip_address(text).version
    return 4
