"""VRRP instances lowered to library types (`vrrp.speaker.InstancePlan`), and what is not
carried out of their settings. Part of the one lowering module, `hacluster.config.lower`,
kept apart so that the VRRP role does not import the checks' parameters. Does no I/O.
"""

from __future__ import annotations

import ipaddress
from typing import TYPE_CHECKING

from hacluster.config.model import (
    VRRP_MCAST_GROUP4,
    VRRP_MCAST_GROUP6,
    Config,
    IPAddress,
    VrrpInstance,
)

if TYPE_CHECKING:
    from vrrp.speaker import InstancePlan


def lower_instance(config: Config, name: str) -> InstancePlan:
    """The runnable form of `config.vrrp_instances[name]` (pure: no socket is opened)."""
    from vrrp import packet
    from vrrp.addresses import Vip
    from vrrp.announce import AnnounceParams
    from vrrp.machine import InstanceParams, State
    from vrrp.speaker import InstancePlan
    from vrrp.transport import Binding, Peer

    inst = config.vrrp_instances[name]
    auth = inst.authentication
    binding = Binding(
        vrid=inst.virtual_router_id,
        version=inst.version,
        family=inst.family,
        # keepalived reads unicast_src_ip and mcast_src_ip as one setting: the source
        # address of the adverts, whether they go to peers or to the group.
        unicast_src=inst.unicast_src_ip if inst.unicast_src_ip is not None else inst.mcast_src_ip,
        peers=tuple(
            Peer(p.ip, 0 if p.min_ttl is None else p.min_ttl,
                 255 if p.max_ttl is None else p.max_ttl)
            for p in inst.unicast_peers
        ),
        group=_group(config, inst),
        unicast_ttl=inst.unicast_ttl,
        auth_type=1 if auth is not None else 0,
        auth_pass=auth.auth_pass if auth is not None else "",
        advert_int=inst.advert_int,
        pseudo_header=inst.checksum_pseudo_header,
        check_unicast_src=inst.check_unicast_src,
        vips=tuple(v.ip for v in inst.virtual_ipaddress),
        skip_check_adv_addr=inst.skip_check_adv_addr,
    )
    # virtual_ipaddress_excluded: held and released like the others, but not carried
    # in adverts (keepalived's way to have more VIPs, or another family, than fit).
    vips: dict[str, Vip] = {}
    for v in (*inst.virtual_ipaddress, *inst.virtual_ipaddress_excluded):
        vips[str(v)] = Vip(v.address, v.dev or inst.interface, v.rt_scope, v.label)
    params = InstanceParams(
        name=name,
        vrid=inst.virtual_router_id,
        primary_ip=ipaddress.ip_address(0 if inst.family == 4 else "::"),
        priority=inst.priority,
        version=inst.version,
        advert_int=inst.advert_int,
        initial_state=State.MASTER if inst.state == "MASTER" else State.BACKUP,
        nopreempt=inst.nopreempt,
        preempt_delay=inst.preempt_delay,
        vips=tuple(vips),
        down_timer_adverts=inst.down_timer_adverts,
        lower_prio_no_advert=inst.lower_prio_no_advert,
        higher_prio_send_advert=inst.higher_prio_send_advert,
    )
    template = packet.Advert(
        version=inst.version,
        vrid=inst.virtual_router_id,
        priority=inst.priority,
        max_advert_int=inst.advert_int,
        addresses=tuple(v.address.ip for v in inst.virtual_ipaddress),
        auth_type=binding.auth_type,
        auth_data=packet.auth_pass_data(binding.auth_pass) if auth is not None else b"",
    )
    g = config.global_defs
    announce = AnnounceParams(
        delay=inst.garp_master_delay,
        repeat=inst.garp_master_repeat,
        refresh=inst.garp_master_refresh,
        refresh_repeat=inst.garp_master_refresh_repeat,
        interval=g.vrrp_garp_interval if inst.family == 4 else g.vrrp_gna_interval,
        lower_prio_repeat=inst.garp_lower_prio_repeat,
        lower_prio_delay=inst.garp_lower_prio_delay,
    )
    return InstancePlan(name, inst.interface, binding, params, template,
                        tuple(vips.items()), announce, inst.is_owner)


def _group(config: Config, inst: VrrpInstance) -> IPAddress | None:
    """The multicast group of the adverts: the instance's mcast_dst_ip, else
    global_defs.vrrp_mcast_group4/6 (None: RFC 5798's, the transport's default)."""
    if inst.mcast_dst_ip is not None:
        return inst.mcast_dst_ip
    g = config.global_defs
    group = g.vrrp_mcast_group4 if inst.family == 4 else g.vrrp_mcast_group6
    return None if group in (VRRP_MCAST_GROUP4, VRRP_MCAST_GROUP6) else group


#: Instance keys carried out outside the instance's plan: by tracking
#: (`hacluster.tracking.plan_watches`), notify (`hacluster.notify`), alert mail
#: (`hacluster.alerts`) and routes (`hacluster.vroutes`), which take a new config in
#: place, and by the instance's name.
INSTANCE_ELSEWHERE = frozenset({
    "name", "track_interface", "track_script", "track_file", "track_process",
    "notify_master", "notify_backup", "notify_fault", "notify_stop", "notify", "smtp_alert",
    "notify_priority_changes", "virtual_routes", "virtual_rules",
    "use_vmac", "vmac_interface", "vmac_xmit_base",  # hacluster.vmac_plan, before lowering
    "accept",  # hacluster.accept_mode
})
#: Instance keys the loader carries out as it reads the file (strict mode's rules).
INSTANCE_AT_LOAD = frozenset({"strict_mode"})


def unsupported_instance(inst: VrrpInstance) -> list[str]:
    """keepalived keywords set on a VRRP instance that are not carried out."""
    notes: list[str] = []
    if inst.dont_track_primary:
        notes.append("dont_track_primary is not supported and is ignored "
                     "(the interface's own link is not tracked unless track_interface names it)")
    for v in (*inst.virtual_ipaddress, *inst.virtual_ipaddress_excluded):
        if v.no_track:
            notes.append(f"no_track on {v} is not supported and is ignored")
    return notes
