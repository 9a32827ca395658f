"""The VRRP sections' rules: scripts, tracked processes, instances, sync groups."""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from typing import Any

from yaml.nodes import Node

from hacluster.config import advert_fit
from hacluster.config import model as m
from hacluster.config.errors import Problem
from hacluster.config.loader_nodes import _INVALID, _join, _num, _suggest
from hacluster.config.loader_values import _IFNAMSIZ
from hacluster.config.loader_walk import _Walker


class _VrrpRules(_Walker):
    """The VRRP sections: scripts, tracked processes, instances, sync groups, and the
    rules that span them."""

    # ---------------------------------------------------------------- scripts, processes

    def vrrp_script(self, node: Node, path: str, name: str) -> Any:
        read = self.read(m.VrrpScript, node, path)
        if read is None:
            return _INVALID
        values, _given, ok = read
        ok = self.check_run_as(path, values) and ok
        if not ok:
            return _INVALID
        return m.VrrpScript(name=name, **values)

    def check_strict(self, path: str, values: dict[str, Any], given: Mapping[str, Any]) -> bool:
        """vrrp_strict / strict_mode (keepalived's vrrp_complete_instance): what keepalived
        refuses or resets is refused here, naming the key; what it enforces is set (no
        advert answers a lower-priority master, no lower-priority GARP repeats, accept
        only for the address owner)."""
        owner = values.get("priority", 100) == 255
        refused = {
            "unicast_peers": bool(values.get("unicast_peers")),
            "authentication": values.get("authentication") is not None,
            "preempt_delay": bool(values.get("preempt_delay")),
            "higher_prio_send_advert": bool(values.get("higher_prio_send_advert")),
            "lower_prio_no_advert": "lower_prio_no_advert" in given
                                    and not values["lower_prio_no_advert"],
            "accept": "accept" in given and values.get("accept") and not owner
                      and values["version"] == 2,
            "garp_lower_prio_repeat": bool(values.get("garp_lower_prio_repeat"))
                                      and "garp_lower_prio_repeat" in given,
            "garp_lower_prio_delay": bool(values.get("garp_lower_prio_delay"))
                                     and "garp_lower_prio_delay" in given,
            "vmac_xmit_base": bool(values.get("vmac_xmit_base")),
        }
        ok = True
        for key, bad in refused.items():
            if bad:
                self.at(_join(path, key), "not allowed in strict mode (vrrp_strict / "
                        "strict_mode: RFC 3768/5798 compliance, as keepalived)")
                ok = False
        if "state" in given and (values.get("state") == "MASTER") != owner:
            self.at(_join(path, "state"), "strict mode: MASTER exactly when priority is 255 "
                    "(the address owner)")
            ok = False
        if not values.get("virtual_ipaddress"):
            self.at(_join(path, "virtual_ipaddress"), "strict mode needs at least one VIP")
            ok = False
        values["lower_prio_no_advert"] = True
        values.setdefault("garp_lower_prio_repeat", 0)
        values.setdefault("garp_lower_prio_delay", 0)
        if "accept" not in given:
            values["accept"] = owner
        return ok

    def fit_advert(self, values: dict[str, Any], vips: list[m.VirtualIpAddress], family: int,
                   version: int, vpath: str) -> None:
        """VIPs beyond what one advert carries at the interface's MTU go to the excluded
        list, with a warning (keepalived's rule; see advert_fit)."""
        interface = values.get("interface", "")
        mtu = advert_fit.interface_mtu(interface) if interface else None
        most = advert_fit.capacity(family, version, mtu or advert_fit.DEFAULT_MTU)
        if len(vips) <= most:
            return
        values["virtual_ipaddress"] = tuple(vips[:most])
        values["virtual_ipaddress_excluded"] = (
            *values.get("virtual_ipaddress_excluded", ()), *vips[most:])
        self.warnings.append(Problem(self.file, self.lines.get(vpath, 0), vpath,
                                     advert_fit.message(len(vips), most, interface, mtu)))

    def track_process(self, node: Node, path: str, name: str) -> Any:
        read = self.read(m.VrrpTrackProcess, node, path)
        if read is None:
            return _INVALID
        values, given, ok = read
        quorum, quorum_max = values.get("quorum", 1), values.get("quorum_max")
        if quorum_max is not None and quorum_max < quorum:
            if quorum_max == 0 and "quorum" not in given:
                values["quorum"] = 0  # keepalived: quorum_max 0 alone means "none may run"
            else:
                self.at(_join(path, "quorum_max"), f"{quorum_max} is below quorum {quorum}")
                ok = False
        if not ok:
            return _INVALID
        return m.VrrpTrackProcess(name=name, **values)

    # ---------------------------------------------------------------- VRRP instances

    def instance(self, node: Node, path: str, name: str, g: m.GlobalDefs) -> Any:
        read = self.read(m.VrrpInstance, node, path)
        if read is None:
            return _INVALID
        values, _given, ok = read
        if "notify_priority_changes" in _given:
            self.priority_changes_given.add(name)
        ok = self.check_tracking(path, values) and ok
        vpath = _join(path, "virtual_ipaddress")
        vips: list[m.VirtualIpAddress] = list(
            values.get("virtual_ipaddress", self.partial.get(vpath, ()))
        )
        family = vips[0].family if vips else None
        if not vips and vpath not in self.partial:
            # keepalived's rule: VRRPv2 over IPv4 may run without VIPs, v3 and IPv6 not
            own = [values.get("unicast_src_ip"), values.get("mcast_src_ip"),
                   *(p.ip for p in values.get("unicast_peers", ()))]
            family = next((ip.version for ip in own if ip is not None), None)
            wanted = values.get("version", 3 if family == 6 else g.vrrp_version)
            if wanted == 3 or family == 6:
                self.at(vpath, "must list at least one address under VRRPv3 or IPv6 "
                        "(keepalived's rule; VRRPv2 over IPv4 may run without)")
                ok = False
        for i, vip in enumerate(vips[1:], start=1):
            if vip.family != family:
                self.at(
                    f"{path}.virtual_ipaddress[{i}]",
                    f"{vip.ip} is IPv{vip.family} but the instance's first address is "
                    f"IPv{family}; one instance carries one family "
                    "(use virtual_ipaddress_excluded for others)",
                )
                ok = False

        version = values.get("version")
        if version is None:
            version = 3 if family == 6 else g.vrrp_version
        elif version == 2 and family == 6:
            self.at(_join(path, "version"), "VRRPv2 is IPv4 only; IPv6 instances need version 3")
            ok = False
        values["version"] = version

        if "advert_int" in values:
            adv = values["advert_int"]
            apath = _join(path, "advert_int")
            if version == 2 and (not float(adv).is_integer() or not 1 <= adv <= 255):
                self.at(apath, f"VRRPv2 allows whole seconds 1..255, got {_num(adv)}")
                ok = False
            elif version == 3 and (
                not 0.01 <= adv <= 40.95 or abs(adv * 100 - round(adv * 100)) > 1e-6
            ):
                self.at(apath, f"VRRPv3 allows 0.01..40.95 in steps of 0.01, got {_num(adv)}")
                ok = False
            else:
                values["advert_int"] = round(adv, 2)

        if values.get("authentication") is not None and version == 3:
            self.at(_join(path, "authentication"), "VRRPv3 has no authentication (v2 only)")
            ok = False
        if len(vips) >= advert_fit.ALWAYS_FIT and family is not None and ok:
            self.fit_advert(values, vips, family, version, vpath)
        if values.get("nopreempt") and values.get("state") == "MASTER":
            self.at(_join(path, "nopreempt"), "needs state BACKUP (keepalived's rule)")
            ok = False

        if family is not None:
            for key in ("unicast_src_ip", "mcast_src_ip"):
                ip = values.get(key)
                if ip is not None and ip.version != family:
                    self.at(
                        _join(path, key),
                        f"{ip} is IPv{ip.version} but the virtual addresses are IPv{family}",
                    )
                    ok = False
            dst = values.get("mcast_dst_ip")
            if dst is not None and (dst.version != family or not dst.is_multicast):
                self.at(
                    _join(path, "mcast_dst_ip"),
                    f"must be an IPv{family} multicast address, got {dst}",
                )
                ok = False
        src = values.get("unicast_src_ip")
        peer_family = src.version if src is not None else family
        seen_peers: set[m.IPAddress] = set()
        ppath = _join(path, "unicast_peers")
        for i, peer in enumerate(values.get("unicast_peers", self.partial.get(ppath, ()))):
            ppath = f"{path}.unicast_peers[{i}]"
            if peer_family is not None and peer.ip.version != peer_family:
                source = "unicast_src_ip is" if src is not None else "the virtual addresses are"
                self.at(
                    ppath, f"{peer.ip} is IPv{peer.ip.version} but {source} IPv{peer_family}"
                )
                ok = False
            if peer.ip in seen_peers:
                self.at(ppath, f"{peer.ip} is listed twice")
                ok = False
            if src is not None and peer.ip == src:
                self.at(ppath, f"{peer.ip} is this director's own unicast_src_ip")
                ok = False
            if (
                peer.min_ttl is not None
                and peer.max_ttl is not None
                and peer.min_ttl > peer.max_ttl
            ):
                self.at(ppath, f"min_ttl {peer.min_ttl} is above max_ttl {peer.max_ttl}")
                ok = False
            seen_peers.add(peer.ip)

        for key, gkey in (
            ("garp_master_delay", "vrrp_garp_master_delay"),
            ("garp_master_repeat", "vrrp_garp_master_repeat"),
            ("garp_master_refresh", "vrrp_garp_master_refresh"),
            ("garp_master_refresh_repeat", "vrrp_garp_master_refresh_repeat"),
            ("down_timer_adverts", "vrrp_down_timer_adverts"),
            ("checksum_pseudo_header", "vrrp_checksum_pseudo_header"),
            ("lower_prio_no_advert", "vrrp_lower_prio_no_advert"),
            ("higher_prio_send_advert", "vrrp_higher_prio_send_advert"),
            ("strict_mode", "vrrp_strict"),
            ("skip_check_adv_addr", "vrrp_skip_check_adv_addr"),
            ("notify_priority_changes", "vrrp_notify_priority_changes"),
        ):
            values.setdefault(key, getattr(g, gkey))
        # keepalived: "Specifying min_ttl or max_ttl turns on check_unicast_src"
        values.setdefault("check_unicast_src", g.vrrp_check_unicast_src or any(
            p.min_ttl is not None or p.max_ttl is not None
            for p in values.get("unicast_peers", ())))
        if values["strict_mode"]:
            ok = self.check_strict(path, values, _given) and ok
        for key in ("vmac_interface", "vmac_xmit_base"):
            if values.get(key) and not values.get("use_vmac"):
                # keepalived: "vmac_xmit_base is only valid with a vmac"
                self.at(_join(path, key), "only used with use_vmac")
                ok = False
        vmac_name = values.get("vmac_interface")
        if vmac_name is not None and not 0 < len(vmac_name) < _IFNAMSIZ:
            self.at(_join(path, "vmac_interface"), f"1 to {_IFNAMSIZ - 1} characters")
            ok = False
        # keepalived: an instance's garp_lower_prio_* default to the global ones, and those
        # to the global vrrp_garp_master_* (not to the instance's garp_master_*).
        values.setdefault(
            "garp_lower_prio_delay",
            g.vrrp_garp_lower_prio_delay
            if g.vrrp_garp_lower_prio_delay is not None
            else g.vrrp_garp_master_delay,
        )
        values.setdefault(
            "garp_lower_prio_repeat",
            g.vrrp_garp_lower_prio_repeat
            if g.vrrp_garp_lower_prio_repeat is not None
            else g.vrrp_garp_master_repeat,
        )
        if not ok:
            return _INVALID
        return m.VrrpInstance(name=name, **values)

    # ---------------------------------------------------------------- across the sections

    def check_tracking(self, path: str, values: Mapping[str, Any]) -> bool:
        """track_script / track_file entries must name a defined script or file."""
        ok = True
        for key, defined, what in (
            ("track_script", self.names.scripts, "vrrp_script"),
            ("track_file", self.names.track_files, "vrrp_track_file"),
            ("track_process", self.names.track_processes, "vrrp_track_process"),
        ):
            kpath = _join(path, key)
            for i, ref in enumerate(values.get(key, self.partial.get(kpath, ()))):
                if ref.name not in defined:
                    hint = _suggest(ref.name, defined)
                    self.at(f"{kpath}[{i}]", f"no {what} named '{ref.name}'{hint}")
                    ok = False
        return ok

    def sync_group(self, node: Node, path: str, name: str) -> Any:
        read = self.read(m.VrrpSyncGroup, node, path)
        if read is None:
            return _INVALID
        values, _given, ok = read
        ok = self.check_tracking(path, values) and ok
        gpath = _join(path, "group")
        members = list(values.get("group", self.partial.get(gpath, ())))
        self.group_members[name] = members
        for i, member in enumerate(members):
            if member not in self.names.instances:
                self.at(
                    f"{gpath}[{i}]",
                    f"no vrrp_instance named '{member}'{_suggest(member, self.names.instances)}",
                )
                ok = False
        if not ok:
            return _INVALID
        if len(members) == 1:  # keepalived warns and runs it
            self.warnings.append(Problem(
                self.file, self.lines.get(gpath, 0), gpath,
                f"only one instance ({members[0]}): it moves alone, as keepalived runs it "
                "(\"this probably isn't what you want\")"))
        return m.VrrpSyncGroup(name=name, **values)

    def check_sync_groups(self) -> None:
        member_of: dict[str, str] = {}
        for gname, members in self.group_members.items():
            gpath = f"vrrp_sync_groups.{gname}.group"
            if not members:
                self.at(gpath, "must list at least one instance")
            for i, member in enumerate(members):
                if member in member_of:
                    where = member_of[member]
                    if where == gname:
                        self.at(f"{gpath}[{i}]", f"'{member}' is listed twice")
                    else:
                        self.at(
                            f"{gpath}[{i}]",
                            f"'{member}' is already in sync group '{where}' "
                            "(an instance belongs to one group)",
                        )
                    continue
                member_of[member] = gname

    def check_instances_together(self, instances: Mapping[str, m.VrrpInstance]) -> None:
        by_router: dict[tuple[str, int, int], list[m.VrrpInstance]] = {}
        vip_owner: dict[m.IPAddress, str] = {}
        for name, inst in instances.items():
            key = (inst.interface, inst.family, inst.virtual_router_id)
            for other in by_router.get(key, []):
                if _same_channel(inst, other):
                    self.at(
                        f"vrrp_instances.{name}.virtual_router_id",
                        f"{inst.virtual_router_id} is already used by '{other.name}' on "
                        f"{inst.interface} (IPv{inst.family})",
                    )
                    break
            by_router.setdefault(key, []).append(inst)
            all_vips = (
                [("virtual_ipaddress", i, v) for i, v in enumerate(inst.virtual_ipaddress)]
                + [
                    ("virtual_ipaddress_excluded", i, v)
                    for i, v in enumerate(inst.virtual_ipaddress_excluded)
                ]
            )
            for key_name, i, vip in all_vips:
                first = vip_owner.get(vip.ip)
                if first is not None:
                    self.at(
                        f"vrrp_instances.{name}.{key_name}[{i}]",
                        f"{vip.ip} is already a virtual address of '{first}'",
                    )
                else:
                    vip_owner[vip.ip] = name


    def group_priority_changes(self, instances: dict[str, Any], groups: Mapping[str, Any]) -> None:
        """A sync group's notify_priority_changes is the default of its members that do
        not set their own (keepalived's rule; without either, the global one)."""
        for group in groups.values():
            if group is _INVALID or group.notify_priority_changes is None:
                continue
            for name in group.group:
                inst = instances.get(name)
                if (inst is not None and inst is not _INVALID
                        and name not in self.priority_changes_given):
                    instances[name] = dataclasses.replace(
                        inst, notify_priority_changes=group.notify_priority_changes)



def _same_channel(a: m.VrrpInstance, b: m.VrrpInstance) -> bool:
    """Whether two instances with one VRID would hear each other's adverts (keepalived's rule)."""
    if a.is_unicast != b.is_unicast:
        return False
    if a.is_unicast:
        return bool({p.ip for p in a.unicast_peers} & {p.ip for p in b.unicast_peers})
    return a.mcast_dst_ip == b.mcast_dst_ip
