"""The statement tree into hacluster's YAML data, noting each keyword left out. No I/O."""

from __future__ import annotations

import contextlib
import ipaddress
import math
import os
import re
import shlex
from collections.abc import Callable, Iterator
from typing import Any

from hacluster.config import advert_fit
from hacluster.config.keepalived.global_defs import _GLOBAL
from hacluster.config.keepalived.handlers import Handler
from hacluster.config.keepalived.marks import _DROPPED, _Origin
from hacluster.config.keepalived.statements import Skipped, Statement
from hacluster.config.keepalived.unsupported import _KNOWN_UNSUPPORTED, _NO_EFFECT
from hacluster.config.keepalived.values import _BOOL_WORDS, _Bad, _choice, _int, _ip
from hacluster.config.keepalived.virtual_servers import _CHECKERS, _VIRTUAL_SERVER
from hacluster.config.keepalived.vrrp import (
    _INSTANCE,
    _SCRIPT,
    _SYNC_GROUP,
    _TRACK_FILE,
    _TRACK_PROCESS,
    _route_list,
    _vip_list,
)

_MAX_GROUP_EXPANSION = 256


_SHELL_SYNTAX_RE = re.compile(r"[<>|;&`]|\$\(")


_SHELLS = frozenset({"sh", "bash", "dash", "ash", "zsh", "ksh", "busybox"})


class _Converter:
    """Walks the statements and builds the YAML data, noting what it leaves out."""

    def __init__(self) -> None:
        self.skipped: list[Skipped] = []
        self.origins: dict[tuple[int, Any], _Origin] = {}
        self.quiet = 0  # >0 while converting a virtual_server again for a group member
        self.data: dict[str, Any] = {}
        self.global_defs: dict[str, Any] = {}
        self.scripts: dict[str, Any] = {}
        self.track_files: dict[str, Any] = {}
        self.track_processes: dict[str, Any] = {}
        self.statics: dict[str, Any] = {}
        self.rule_pref = 16384  # the next default rule preference (keepalived's countdown)
        self.instances: dict[str, Any] = {}
        self.groups: dict[str, Any] = {}
        self.servers: list[Any] = []
        self.vs_groups: dict[str, Statement] = {}
        self.used_vs_groups: set[str] = set()
        self.min_garp: Statement | None = None
        # origins are keyed by id(); holding every container keeps those ids unique
        self.alive: dict[int, Any] = {}

    # ---------------------------------------------------------------- bookkeeping

    def skip(
        self, stmt: Statement, kpath: str, message: str = "not supported", *,
        same: bool = False,
    ) -> None:
        """Note what is not carried over; `same`: the result behaves as keepalived's anyway."""
        if not self.quiet:
            self.skipped.append(
                Skipped(stmt.file, stmt.line, kpath, message, changes_behaviour=not same)
            )

    def put(self, target: dict[str, Any], key: str, value: Any, stmt: Statement, kp: str) -> None:
        target[key] = value
        self.alive[id(target)] = target
        self.origins[(id(target), key)] = _Origin(stmt.file, stmt.line, kp)

    def append(self, target: list[Any], value: Any, stmt: Statement, kp: str) -> None:
        target.append(value)
        self.alive[id(target)] = target
        self.origins[(id(target), len(target) - 1)] = _Origin(stmt.file, stmt.line, kp)

    def origin_once(self, target: dict[str, Any], key: str, stmt: Statement, kp: str) -> None:
        """Where a list under `key` started, unless already known."""
        self.alive[id(target)] = target
        self.origins.setdefault((id(target), key), _Origin(stmt.file, stmt.line, kp))

    def mark(self, container: Any, stmt: Statement, kp: str) -> None:
        """Where a whole block (an instance, a real server...) came from."""
        self.alive[id(container)] = container
        self.origins[(id(container), None)] = _Origin(stmt.file, stmt.line, kp)

    def value(self, stmt: Statement, kp: str, parse: Callable[[str], Any]) -> Any:
        """The single value of `stmt`, or _DROPPED (noted) when missing or bad."""
        if not stmt.args:
            self.skip(stmt, kp, "needs a value; not carried over")
            return _DROPPED
        if len(stmt.args) > 1:
            extra = " ".join(stmt.args[1:])
            self.skip(stmt, kp, f"extra words ignored: {extra!r}", same=True)
        try:
            return parse(stmt.args[0])
        except _Bad as exc:
            self.skip(stmt, kp, f"{exc}; not carried over")
            return _DROPPED

    def address(self, stmt: Statement, kp: str, text: str) -> str:
        """An address as keepalived's inet_stosockaddr() reads it: a `-range` or `/mask`
        after it is ignored (noted). Raises `_Bad` for anything else."""
        cut = text.find("-") if "-" in text else text.find("/")
        if cut <= 0:
            return _ip(text)
        address = _ip(text[:cut])
        self.skip(stmt, kp, f"keepalived ignores {text[cut:]!r} after the address; "
                  f"imported as {address}", same=True)
        return address

    def flag(self, stmt: Statement, kp: str, *, valued: bool) -> bool | None:
        """A keyword alone means true; with a value, what keepalived 2.2.7 makes of it.

        Most of keepalived's flags ignore any value (`nopreempt 1`, even `omega off`,
        set the flag). Those it reads with check_true_false() (`valued`) take
        true|on|yes|false|off|no in lower case and leave the flag unset on any other
        word, with an error: None then, noted.
        """
        if not stmt.args:
            return True
        word = stmt.args[0]
        if not valued:
            if _BOOL_WORDS.get(word) is not True and word != "1":
                self.skip(stmt, kp, f"keepalived ignores the value {word!r} of this flag and "
                          "sets it; imported the same way", same=True)
            return True
        if len(stmt.args) > 1:
            self.skip(stmt, kp, f"extra words ignored: {' '.join(stmt.args[1:])!r}", same=True)
        if word not in _BOOL_WORDS:
            self.skip(stmt, kp, f"{word!r} is not true|on|yes|false|off|no: keepalived "
                      "leaves the flag unset, and so does the import", same=True)
            return None
        return _BOOL_WORDS[word]

    def command(self, stmt: Statement, kp: str, *, user_words: bool) -> str | dict[str, str] | None:
        """A script: one (usually quoted) string; for notify scripts, then [user [group]].

        A notify script with a user becomes the mapping form {script, user[, group]}.
        """
        if not stmt.args:
            self.skip(stmt, kp, "needs a script; not carried over")
            return None
        run_as: dict[str, str] = {}
        if user_words:
            text = stmt.args[0]
            run_as = dict(zip(("user", "group"), stmt.args[1:3], strict=False))
            if len(stmt.args) > 3:
                self.skip(stmt, kp, f"extra words ignored: {' '.join(stmt.args[3:])!r}")
        else:
            text = stmt.args[0] if len(stmt.args) == 1 else shlex.join(stmt.args)
        try:
            argv = shlex.split(text)
        except ValueError as exc:
            self.skip(stmt, kp, f"cannot split {text!r} into arguments ({exc}); not carried over")
            return None
        if not argv:
            self.skip(stmt, kp, "empty script; not carried over")
            return None
        shell_c = os.path.basename(argv[0]) in _SHELLS and "-c" in argv[1:2]
        if _SHELL_SYNTAX_RE.search(text) and not shell_c:
            # keepalived (since 1.4) runs scripts without a shell too: the same result
            self.skip(
                stmt, kp,
                f"{text!r} looks like shell syntax, but scripts run without a shell, in "
                "keepalived as here: wrap it (e.g. sh -c '...') if it needs one",
                same=True,
            )
        return {"script": text, **run_as} if run_as else text

    def one_line_block(self, stmt: Statement, kp: str) -> tuple[Statement, ...]:
        """`keyword VALUE...` where keepalived wants a block: carried as one entry.

        keepalived 2.2.7 reports "Block KEYWORD has extra parameters" (a configuration
        error) and reads the lines after it, up to the next '}', as the block's entries,
        swallowing whatever follows; the import takes the line as the author meant it
        and says so: the result differs from what keepalived would run.
        """
        self.skip(stmt, kp, f"keepalived wants a {{ }} block here: it reports \"Block "
                  f"{stmt.keyword} has extra parameters\" and reads the following lines up "
                  f"to the next '}}' as entries; imported as the one entry "
                  f"{' '.join(stmt.args)!r}")
        entries = (Statement(stmt.args, stmt.file, stmt.line),)
        return entries + (stmt.block or ())

    def block(self, stmt: Statement, kp: str) -> tuple[Statement, ...]:
        if stmt.block is None:
            self.skip(stmt, kp, "needs a { } block; not carried over")
            return ()
        return stmt.block

    def walk(
        self,
        statements: tuple[Statement, ...],
        table: dict[str, Handler],
        target: dict[str, Any],
        kp: str,
    ) -> None:
        for stmt in statements:
            handler = table.get(stmt.keyword)
            path = f"{kp}.{stmt.keyword}" if kp else stmt.keyword
            if handler is None:
                self.unhandled(stmt, path)
                continue
            handler(self, stmt, target, path)

    def unhandled(self, stmt: Statement, path: str) -> None:
        """A keyword without a handler: unsupported, without effect here, or unknown."""
        if stmt.keyword in _NO_EFFECT:
            self.skip(stmt, path, "tunes keepalived's own processes; nothing to carry over",
                      same=True)
        elif stmt.keyword in _KNOWN_UNSUPPORTED:
            self.skip(stmt, path)
        else:  # keepalived too reports "Unknown keyword" and goes on without it
            self.skip(stmt, path, "unknown keyword; ignored, as keepalived does", same=True)

    # ---------------------------------------------------------------- top level

    def run(self, statements: tuple[Statement, ...]) -> dict[str, Any]:
        for stmt in statements:  # groups may be used before they are defined
            if stmt.keyword == "virtual_server_group" and stmt.args:
                self.vs_groups[stmt.args[0]] = stmt
        for stmt in statements:
            kw = stmt.keyword
            if kw == "global_defs":
                self.walk(self.block(stmt, kw), _GLOBAL, self.global_defs, kw)
                self.mark(self.global_defs, stmt, kw)
            elif kw == "vrrp_script":
                self.named(stmt, self.scripts, _SCRIPT, self.finish_script)
            elif kw in ("track_file", "vrrp_track_file"):
                self.named(stmt, self.track_files, _TRACK_FILE, self.finish_track_file)
            elif kw == "vrrp_track_process":
                self.named(stmt, self.track_processes, _TRACK_PROCESS,
                           self.finish_track_process)
            elif kw == "vrrp_instance":
                self.named(stmt, self.instances, _INSTANCE, self.finish_instance)
            elif kw == "vrrp_sync_group":
                self.named(stmt, self.groups, _SYNC_GROUP, self.finish_group)
            elif kw in ("static_ipaddress", "static_routes", "static_rules"):
                handler = _vip_list(kw) if kw == "static_ipaddress" else _route_list(kw)
                handler(self, stmt, self.statics, kw)
            elif kw == "virtual_server":
                self.virtual_server(stmt)
            elif kw == "virtual_server_group":
                if not stmt.args:
                    self.skip(stmt, kw, "needs a name; not carried over")
                elif stmt.block is None:
                    self.skip(stmt, kw, "needs a { } block; not carried over")
            else:
                self.unhandled(stmt, kw)
        self.apply_min_garp()
        self.note_sync_group_weights()
        for name, stmt in self.vs_groups.items():
            if name not in self.used_vs_groups:
                self.skip(stmt, "virtual_server_group",
                          f"{name} is used by no virtual_server; left out", same=True)
        for key, section in (
            ("global_defs", self.global_defs),
            ("vrrp_scripts", self.scripts),
            ("vrrp_track_files", self.track_files),
            ("vrrp_track_processes", self.track_processes),
            ("vrrp_instances", self.instances),
            ("vrrp_sync_groups", self.groups),
            ("virtual_servers", self.servers),
            *self.statics.items(),
        ):
            if section:
                self.data[key] = section
        return self.data

    def named(
        self,
        stmt: Statement,
        section: dict[str, Any],
        table: dict[str, Handler],
        finish: Callable[[Statement, dict[str, Any], str], bool],
    ) -> None:
        kw = stmt.keyword
        if not stmt.args:
            self.skip(stmt, kw, "needs a name; not carried over")
            return
        name = stmt.args[0]
        if len(stmt.args) > 1:
            self.skip(stmt, kw, f"extra words ignored: {' '.join(stmt.args[1:])!r}",
                      same=True)
        if name in section:
            first = self.origins[(id(section[name]), None)]
            where = f"{first.file}:{first.line}"
            if first.file == stmt.file:
                where = f"line {first.line}"
            self.skip(stmt, kw, f"{name} is already defined on {where}; not carried over")
            return
        if stmt.block is None:
            self.skip(stmt, kw, f"{name} has no {{ }} block; not carried over")
            return
        target: dict[str, Any] = {}
        self.walk(stmt.block, table, target, kw)
        if finish(stmt, target, kw):
            section[name] = target
            self.mark(target, stmt, kw)
            self.origins[(id(section), name)] = _Origin(stmt.file, stmt.line, kw)

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

    # ---------------------------------------------------------------- virtual servers

    def virtual_server(self, stmt: Statement) -> None:
        kp = "virtual_server"
        args = stmt.args
        if stmt.block is None:
            self.skip(stmt, kp, "needs a { } block; not carried over")
            return
        if not args:
            self.skip(stmt, kp, "needs IP PORT, fwmark N or group NAME; not carried over")
            return
        if args[0] == "group":
            self.virtual_server_group(stmt, args[1] if len(args) > 1 else None)
            return
        head: dict[str, Any] = {}
        try:
            if args[0] == "fwmark":
                if len(args) != 2:
                    raise _Bad("fwmark needs one number")
                head["fwmark"] = _int(args[1])
            else:
                if len(args) > 2:
                    raise _Bad(f"extra words {' '.join(args[2:])!r}")
                head["ip"] = self.address(stmt, kp, args[0])
                if len(args) == 2:
                    head["port"] = _int(args[1])
        except _Bad as exc:
            self.skip(stmt, kp, f"{exc}; not carried over")
            return
        self.servers.append(self.build_vs(stmt, head))
        self.origins[(id(self.servers), len(self.servers) - 1)] = _Origin(
            stmt.file, stmt.line, kp
        )

    def build_vs(self, stmt: Statement, head: dict[str, Any]) -> dict[str, Any]:
        vs: dict[str, Any] = {}
        for key, value in head.items():
            self.put(vs, key, value, stmt, "virtual_server")
        assert stmt.block is not None
        self.walk(stmt.block, _VIRTUAL_SERVER, vs, "virtual_server")
        if "fwmark" in vs and "protocol" in vs:
            where = self.origins[(id(vs), "protocol")]
            del vs["protocol"]
            self.skip(Statement(("protocol",), where.file, where.line), where.keyword,
                      "keepalived ignores the protocol of a fwmark service (\"protocol will "
                      "be ignored\"); so does the import", same=True)
        if "protocol" not in vs and "fwmark" not in vs:
            # keepalived: "no protocol set - defaulting to UDP"; hacluster's default is
            # TCP, so say it explicitly.
            self.put(vs, "protocol", "UDP", stmt, "virtual_server")
            self.skip(stmt, "virtual_server.protocol",
                      "not given: keepalived uses UDP then; imported as protocol UDP",
                      same=True)
        reals = vs.pop("real_servers", None)
        self.correct_ports(vs, reals or [])
        if reals:
            vs["real_servers"] = reals  # keep the list last, after the service's own keys
            self.origins[(id(vs), "real_servers")] = self.origins[(id(reals), None)]
        self.mark(vs, stmt, "virtual_server")
        return vs

    def correct_ports(self, vs: dict[str, Any], reals: list[Any]) -> None:
        """keepalived's port corrections for DR and TUN servers, as it loads the config.

        The port of a fwmark service's DR/TUN real or sorry server is cleared ("has port
        specified - clearing"); that of an address service's one is set to the service's
        port ("ports don't match - resetting"). Its checkers were set up before, so they
        still probe the port written: the import gives them that as connect_port.
        """
        kind = vs.get("lb_kind", "NAT")
        vport = vs.get("port")
        fwmark = "fwmark" in vs
        for rs in reals:
            if not isinstance(rs, dict) or rs.get("lb_kind", kind) == "NAT" or "port" not in rs:
                continue
            if fwmark:
                message = ("keepalived clears the port of a DR/TUN server of a fwmark "
                           "service (\"has port specified - clearing\")")
            elif rs["port"] != vport and vport is not None:
                message = (f"keepalived resets a DR/TUN server's port to the service's "
                           f"{vport} (\"ports don't match - resetting\")")
            else:
                continue
            where = self.origins[(id(rs), "port")]
            written = rs.pop("port")
            if not fwmark:
                self.put(rs, "port", vport, Statement(("real_server",), where.file,
                                                       where.line), where.keyword)
            for check in _checks_of(rs):
                check.setdefault("connect_port", written)
            self.skip(Statement(("real_server",), where.file, where.line), where.keyword,
                      f"{message}; so does the import, and its checks still probe port "
                      f"{written}", same=True)
        sorry = vs.get("sorry_server")
        if (fwmark and isinstance(sorry, str) and not _is_bare_ip(sorry)
                and vs.get("sorry_server_lb_kind", kind) != "NAT"):
            where = self.origins[(id(vs), "sorry_server")]
            vs["sorry_server"] = sorry.rsplit(":", 1)[0].strip("[]")
            self.skip(Statement(("sorry_server",), where.file, where.line), where.keyword,
                      "keepalived clears the port of a fwmark service's DR/TUN sorry server "
                      "(\"has port specified - clearing\"); so does the import", same=True)

    def virtual_server_group(self, stmt: Statement, name: str | None) -> None:
        kp = "virtual_server.group"
        group = self.vs_groups.get(name) if name else None
        if name:
            self.used_vs_groups.add(name)
        if group is None or group.block is None:
            self.skip(stmt, kp, f"no virtual_server_group named {name!r}; not carried over")
            return
        heads: list[dict[str, Any]] = []
        for entry in group.block:
            try:
                heads.extend(_group_entry(entry))
            except _Bad as exc:
                self.skip(entry, "virtual_server_group", f"{exc}; not carried over")
        if len(heads) > _MAX_GROUP_EXPANSION:
            self.skip(
                stmt, kp,
                f"group {name} holds {len(heads)} services, more than the "
                f"{_MAX_GROUP_EXPANSION} an import expands; not carried over",
            )
            return
        if not heads:
            self.skip(stmt, kp, f"group {name} lists no services; not carried over")
            return
        self.skip(
            stmt, kp,
            f"group {name} is expanded into {len(heads)} virtual_servers with the same "
            "settings (each runs its own checks)",
        )
        for i, head in enumerate(heads):
            if i:
                self.quiet += 1
            try:
                self.servers.append(self.build_vs(stmt, head))
            finally:
                if i:
                    self.quiet -= 1
            self.origins[(id(self.servers), len(self.servers) - 1)] = _Origin(
                stmt.file, stmt.line, "virtual_server"
            )


def _checks_of(rs: dict[str, Any]) -> Iterator[dict[str, Any]]:
    """The network checks of a real server (MISC_CHECK has no port)."""
    for kind, value in rs.items():
        if kind in _CHECKERS and kind != "MISC_CHECK":
            yield from (value if isinstance(value, list) else [value])


def _is_bare_ip(text: str) -> bool:
    try:
        ipaddress.ip_address(text)
    except ValueError:
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


def _group_entry(entry: Statement) -> list[dict[str, Any]]:
    """The services one line of a virtual_server_group stands for."""
    words = entry.words
    if entry.block is not None:
        raise _Bad("unexpected { } block")
    if words[0] == "fwmark":
        if len(words) not in (2, 3):
            raise _Bad("fwmark needs a number and optionally inet|inet6")
        head: dict[str, Any] = {"fwmark": _int(words[1])}
        if len(words) == 3:
            head["ip_family"] = _choice("inet", "inet6")(words[2])
        return [head]
    if len(words) > 2:
        raise _Bad(f"extra words {' '.join(words[2:])!r}")
    port = _int(words[1]) if len(words) == 2 else None
    out = []
    for ip in _address_range(words[0]):
        head = {"ip": ip}
        if port is not None:
            head["port"] = port
        out.append(head)
        if len(out) > _MAX_GROUP_EXPANSION:
            break
    return out


def _address_range(text: str) -> Iterator[str]:
    """keepalived's forms: A.B.C.D, A.B.C.D-E, A.B.C.D-W.X.Y.Z, A.B.C.D/nn (and IPv6)."""
    if "/" in text:
        try:
            network = ipaddress.ip_network(text, strict=False)
        except ValueError:
            raise _Bad(f"not an address range: {text!r}") from None
        for i, address in enumerate(network):
            if i > _MAX_GROUP_EXPANSION:  # the caller refuses groups this big
                return
            yield str(address)
        return
    first_text, sep, last_text = text.partition("-")
    first = ipaddress.ip_address(_ip(first_text))
    if not sep:
        yield str(first)
        return
    make = ipaddress.IPv4Address if first.version == 4 else ipaddress.IPv6Address
    if ":" in last_text or "." in last_text:
        last = ipaddress.ip_address(_ip(last_text))
    else:
        # the end replaces the last octet (IPv4, decimal) or group (IPv6, hex)
        try:
            end = int(last_text, 16 if first.version == 6 else 10)
        except ValueError:
            raise _Bad(f"not an address range: {text!r}") from None
        step = 0xFFFF if first.version == 6 else 0xFF
        if end > step:
            raise _Bad(f"not an address range: {text!r}")
        last = make((int(first) & ~step) | end)
    if last.version != first.version or int(last) < int(first):
        raise _Bad(f"not an address range: {text!r}")
    count = 0
    value = int(first)
    while value <= int(last) and count <= _MAX_GROUP_EXPANSION:
        yield str(make(value))
        value += 1
        count += 1
