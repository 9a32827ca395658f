"""Which optional parts a config's VRRP side uses, answered without importing them.

The VRRP role imports before its release only what every VRRP-only config needs; notify
scripts, alerts, tracking, routes, vmac and accept mode cost it ~25 ms of imports, so
they are imported after the release, and only when the released config uses them. Each
question here reads the config alone (no import beyond the model's types); the modules'
own `wanted` functions answer with these.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from hacluster.config.model import Config, GlobalDefs

#: The notify hooks of an instance or a sync group (`hacluster.notify.notify_commands`).
NOTIFY_HOOKS = ("notify_master", "notify_backup", "notify_fault", "notify_stop", "notify")
#: The notify FIFOs of global_defs, with the events each gets (None: every event).
FIFOS = (("notify_fifo", None), ("vrrp_notify_fifo", "vrrp"), ("lvs_notify_fifo", "lvs"))
_TRACKS = ("track_script", "track_interface", "track_file", "track_process")


def mail(g: GlobalDefs) -> bool:
    """Whether alert mail is configured: keepalived sends nothing without recipients
    and a server."""
    return bool(g.notification_email) and g.smtp_server is not None


def alerts(g: GlobalDefs) -> bool:
    """Whether `g` asks for mail or any FIFO (`hacluster.alert_outputs`)."""
    return mail(g) or any(getattr(g, key) is not None for key, _ in FIFOS)


def notify(config: Config) -> bool:
    """Whether `config` needs a notifier (`hacluster.notify`): a notify command
    anywhere, alerts, or the event log."""
    if alerts(config.global_defs) or config.global_defs.event_log is not None:
        return True
    holders = (*config.vrrp_instances.values(), *config.vrrp_sync_groups.values())
    if any(getattr(h, key) is not None for h in holders for key in NOTIFY_HOOKS):
        return True
    return any(
        vs.quorum_up is not None or vs.quorum_down is not None
        or any(rs.notify_up is not None or rs.notify_down is not None for rs in vs.real_servers)
        for vs in config.virtual_servers
    )


def tracking(config: Config) -> bool:
    """Whether an instance or a sync group tracks anything (`hacluster.tracking`;
    true whenever its `plan_watches` has a watch)."""
    holders = (*config.vrrp_instances.values(), *config.vrrp_sync_groups.values())
    return any(getattr(h, key) for h in holders for key in _TRACKS)


def routes(config: Config) -> bool:
    """Whether `config` has static addresses, routes or rules, or an instance's virtual
    routes or rules (`hacluster.vroutes`)."""
    return bool(config.static_ipaddress or config.static_routes or config.static_rules
                or any(i.virtual_routes or i.virtual_rules
                       for i in config.vrrp_instances.values()))


def vmacs(config: Config) -> bool:
    """Whether an instance uses a vmac (`hacluster.vmac_plan`)."""
    return any(i.use_vmac for i in config.vrrp_instances.values())
