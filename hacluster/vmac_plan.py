"""use_vmac lowered into the configuration the VRRP units run: the macvlans to make and
each instance moved onto its own (`lower` does no I/O but what `source` reads).

An instance with use_vmac keeps its VIPs (those without a `dev`) on its macvlan, and
unless vmac_xmit_base sends and receives its adverts there too, with the base
interface's address as source (the macvlan has none of its own, as in keepalived).
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Callable

from hacluster import vrrp_extras
from hacluster.config.model import Config, IPAddress, VrrpInstance, frozen_map
from vrrp.vmac import Vmacs, VmacSpec

log = logging.getLogger("hacluster.vmac")

SourceOf = Callable[[str, int], IPAddress | None]


def vmac_specs(config: Config) -> list[VmacSpec]:
    return [VmacSpec(i.interface, i.virtual_router_id, i.family, i.vmac_interface)
            for i in config.vrrp_instances.values() if i.use_vmac]


def lower(config: Config, source: SourceOf) -> Config:
    """`config` with every use_vmac instance moved onto its macvlan."""
    if not any(i.use_vmac for i in config.vrrp_instances.values()):
        return config
    instances: dict[str, VrrpInstance] = {}
    for name, inst in config.vrrp_instances.items():
        instances[name] = _lower_instance(inst, source) if inst.use_vmac else inst
    return dataclasses.replace(config, vrrp_instances=frozen_map(instances))


def _lower_instance(inst: VrrpInstance, source: SourceOf) -> VrrpInstance:
    spec = VmacSpec(inst.interface, inst.virtual_router_id, inst.family, inst.vmac_interface)
    vips = tuple(v if v.dev is not None else dataclasses.replace(v, dev=spec.ifname)
                 for v in inst.virtual_ipaddress)
    if inst.vmac_xmit_base:
        return dataclasses.replace(inst, virtual_ipaddress=vips)
    src = source(inst.interface, inst.family)
    changes: dict[str, object] = {"virtual_ipaddress": vips, "interface": spec.ifname}
    if inst.is_unicast and inst.unicast_src_ip is None:
        changes["unicast_src_ip"] = src
    elif not inst.is_unicast and inst.mcast_src_ip is None:
        changes["mcast_src_ip"] = src
    return dataclasses.replace(inst, **changes)  # type: ignore[arg-type]


def wanted(config: Config) -> bool:
    return vrrp_extras.vmacs(config)


async def prepare(config: Config, vmacs: Vmacs) -> Config:
    """Make the macvlans `config` needs that `vmacs` has not made yet (a failure is
    logged: the instance then waits in FAULT for its interface), and lower `config`."""
    from vrrp.transport import interface_source

    missing = [s for s in vmac_specs(config) if s.ifname not in vmacs.interfaces]
    for spec, why in await vmacs.ensure(missing):
        log.error("vmac %s on %s: %s", spec.ifname, spec.base, why)
    return lower(config, interface_source)
