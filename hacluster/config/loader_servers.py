"""The virtual servers' rules: real servers, their checkers and what checkers inherit."""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from yaml.nodes import MappingNode, Node, SequenceNode

from hacluster.config import model as m
from hacluster.config.compose import _MAP_TAG
from hacluster.config.loader_nodes import _INVALID, _describe, _is_null, _join, _line, _suggest
from hacluster.config.loader_values import _parse_hostport
from hacluster.config.loader_walk import _Walker

CHECKER_KEYS: dict[str, type[m.CheckBase]] = {cls.KIND: cls for cls in m.CHECKER_TYPES}
_CHECKER_ORDER = {kind: i for i, kind in enumerate(CHECKER_KEYS)}
_TRACK_INHERITED = ("retry", "delay_before_retry", "delay_loop", "warmup", "alpha")
_IFNAME_RE = re.compile(r"[^/\s\x00]{1,15}")  # an interface name (IFNAMSIZ - 1 bytes)
_HELO_RE = re.compile(r"[\x21-\x7e]+")
_MAX_UDP_PAYLOAD = 65507  # 65535 - IPv4 header (20) - UDP header (8)


def inherited_keys(cls: type[m.CheckBase]) -> tuple[str, ...]:
    """Checker keys that, when not given, come from the real server, else the virtual server.

    FILE_CHECK has none of keepalived's checker timing: its delay_loop is how often the
    file is read, not inherited from the servers.
    """
    found = _INHERITED.get(cls)
    if found is not None:
        return found
    if cls is m.FileCheck:
        keys = ["alpha"]
    else:
        keys = list(_TRACK_INHERITED)
        if issubclass(cls, m.NetworkCheckBase):
            keys.append("connect_timeout")
        if issubclass(cls, m.HttpCheckBase):
            keys.append("virtualhost")
    found = _INHERITED[cls] = tuple(keys)
    return found


_INHERITED: dict[type[m.CheckBase], tuple[str, ...]] = {}


class _ServerRules(_Walker):
    """The virtual servers: their real servers, their checkers, and the rules between them."""

    def virtual_server(self, node: Node, path: str) -> Any:
        read = self.read(m.VirtualServer, node, path, skip=("real_servers", "sorry_server"))
        if read is None:
            return _INVALID
        values, given, ok = read
        if (sorry_node := given.get("sorry_server")) is not None and not _is_null(sorry_node):
            parsed = _parse_hostport(self, sorry_node, _join(path, "sorry_server"))
            if parsed is _INVALID:
                ok = False
            else:
                values["sorry_server"] = parsed
        ip, port = values.get("ip"), values.get("port")
        if "ip" in given and "fwmark" in given:
            self.at(path, "give either ip (with port) or fwmark, not both")
            ok = False
        elif "ip" not in given and "fwmark" not in given:
            self.error(node, path, "needs ip and port, or fwmark")
            ok = False
        if ip is not None and "port" not in given and not values.get("persistence_timeout"):
            self.error(
                node, _join(path, "port"),
                "required with ip (only a persistent service may omit it: persistence_timeout)",
            )
            ok = False
        if "fwmark" in given and "port" in given and "ip" not in given:
            self.at(_join(path, "port"), "a fwmark service has no port")
            ok = False
        if "ip_family" in given and "fwmark" not in given:
            self.at(_join(path, "ip_family"), "only for fwmark services (ip gives the family)")
            ok = False
        vport = port or 0
        if "fwmark" in values:
            self.server_keys[path] = (values.get("protocol", "TCP"), "FWM", values["fwmark"])
        elif ip is not None:
            self.server_keys[path] = (values.get("protocol", "TCP"), ip, vport)
        family = ip.version if ip is not None else None
        if family is None and values.get("ip_family") is not None:
            family = 6 if values["ip_family"] == "inet6" else 4
        lb_kind: str = values.get("lb_kind", "NAT")
        sorry = values.get("sorry_server")
        if sorry is not None:
            if sorry.port == 0 and vport:
                sorry = m.HostPort(sorry.host, vport)
                values["sorry_server"] = sorry
            sorry_kind = values.get("sorry_server_lb_kind") or lb_kind
            if family is not None and sorry.host.version != family and sorry_kind != "TUN":
                self.at(
                    _join(path, "sorry_server"),
                    f"{sorry.host} is IPv{sorry.host.version} but the service is IPv{family} "
                    "(only TUN may mix families)",
                )
                ok = False

        reals: list[m.RealServer] = []
        rs_node = given.get("real_servers")
        if rs_node is not None and not _is_null(rs_node):
            if not isinstance(rs_node, SequenceNode):
                got = _describe(rs_node)
                self.error(rs_node, _join(path, "real_servers"), f"must be a list, got {got}")
                ok = False
            else:
                seen: dict[tuple[m.IPAddress, int], int] = {}
                for i, item in enumerate(rs_node.value):
                    rpath = f"{path}.real_servers[{i}]"
                    self.lines[rpath] = _line(item)
                    rs = self.real_server(item, rpath, values, vport)
                    key = self.server_keys.get(rpath)
                    if key is not None:
                        if key in seen:
                            where = f"real_servers[{seen[key]}]"
                            self.at(rpath, f"{m.HostPort(*key)} is already {where}")
                            ok = False
                            continue
                        seen[key] = i
                    if rs is _INVALID:
                        ok = False
                        continue
                    kind = rs.lb_kind or lb_kind
                    if family is not None and rs.family != family and kind != "TUN":
                        self.at(
                            _join(rpath, "ip"),
                            f"{rs.ip} is IPv{rs.family} but the service is IPv{family} "
                            "(only TUN may mix families)",
                        )
                        ok = False
                    if kind in ("DR", "TUN") and port and rs.port != port:
                        self.at(
                            _join(rpath, "port"),
                            f"{kind} cannot change the port: must be the virtual port {port} "
                            f"(got {rs.port})",
                        )
                        ok = False
                    reals.append(rs)
        if not ok:
            return _INVALID
        return m.VirtualServer(**values, real_servers=tuple(reals))

    def real_server(self, node: Node, path: str, vs: Mapping[str, Any], vport: int) -> Any:
        read = self.read(m.RealServer, node, path, skip=CHECKER_KEYS)
        if read is None:
            return _INVALID
        values, given, ok = read
        values.setdefault("port", vport)
        if "ip" in values:
            self.server_keys[path] = (values["ip"], values["port"])
        checks: list[m.Checker] = []
        kinds = [kind for kind in given if kind in CHECKER_KEYS]
        if len(kinds) > 1:
            kinds.sort(key=_CHECKER_ORDER.__getitem__)  # checks in CHECKER_KEYS' order
        for kind in kinds:
            cls = CHECKER_KEYS[kind]
            cnode = given[kind]
            cpath = _join(path, kind)
            if isinstance(cnode, SequenceNode):
                items = [(f"{cpath}[{i}]", n) for i, n in enumerate(cnode.value)]
                if not items:
                    self.error(cnode, cpath, "an empty list: give a check or remove the key")
                    ok = False
            elif isinstance(cnode, MappingNode) or _is_null(cnode):
                items = [(cpath, cnode)]
            else:
                self.error(
                    cnode, cpath, f"must be a mapping or a list of mappings, got {_describe(cnode)}"
                )
                ok = False
                continue
            for ipath, inode in items:
                self.lines.setdefault(ipath, _line(inode))
                if _is_null(inode):
                    inode = MappingNode(_MAP_TAG, [], inode.start_mark, inode.end_mark)
                check = self.checker(cls, inode, ipath, values, vs)
                if check is _INVALID:
                    ok = False
                else:
                    checks.append(check)
        if not ok:
            return _INVALID
        return m.RealServer(**values, checks=tuple(checks))

    def checker(
        self,
        cls: type[m.CheckBase],
        node: Node,
        path: str,
        rs: Mapping[str, Any],
        vs: Mapping[str, Any],
    ) -> Any:
        read = self.read(cls, node, path)
        if read is None:
            return _INVALID
        values, _given, ok = read
        for key in inherited_keys(cls):
            if key in values:
                continue
            for level in (rs, vs):
                if level.get(key) is not None:
                    values[key] = level[key]
                    break
        if "delay_loop" not in values and cls is not m.FileCheck:
            values["delay_loop"] = 60.0
        if cls is m.DnsCheck and "delay_before_retry" not in values:
            values["delay_before_retry"] = values["delay_loop"]  # keepalived's DNS_CHECK default
        if cls is m.MiscCheck:
            ok = self.check_run_as(path, values) and ok
        if cls is m.FileCheck:
            name = values.get("track_file")
            if name is not None and name not in self.names.track_files:
                hint = _suggest(name, self.names.track_files)
                self.at(_join(path, "track_file"), f"no vrrp_track_file named '{name}'{hint}")
                ok = False
        ok = self.check_checker_values(cls, path, values, rs) and ok
        if issubclass(cls, m.HttpCheckBase) and "url" in values and not values["url"]:
            self.at(_join(path, "url"), "must list at least one url")
            ok = False
        elif issubclass(cls, m.HttpCheckBase) and "url" not in values and ok:
            self.error(node, _join(path, "url"), "required key is missing")
            ok = False
        if (
            issubclass(cls, m.NetworkCheckBase)
            and cls is not m.PingCheck
            and values.get("connect_port") is None
            and not rs.get("port")
        ):
            self.error(
                node, _join(path, "connect_port"),
                "required: the real server has no port to check",
            )
            ok = False
        if not ok:
            return _INVALID
        return cls(**values)

    def check_checker_values(
        self, cls: type[m.CheckBase], path: str, values: Mapping[str, Any],
        rs: Mapping[str, Any],
    ) -> bool:
        """What the checker's parameters (`healthchecks.params`) would refuse, refused
        here with the key: the checks are planned only once VRRP runs, and a file this
        loader accepts must plan (a test plans whatever it accepts)."""
        ok = True
        if issubclass(cls, m.NetworkCheckBase):
            bindto = values.get("bindto")
            target = values.get("connect_ip")
            if target is None:
                target = rs.get("ip")
            if bindto is not None and target is not None and bindto.version != target.version:
                self.at(_join(path, "bindto"), f"{bindto} is IPv{bindto.version} but the "
                        f"check connects to {target} (IPv{target.version})")
                ok = False
            bind_if = values.get("bind_if")
            if bind_if is not None and not _IFNAME_RE.fullmatch(bind_if):
                self.at(_join(path, "bind_if"), f"not an interface name: {bind_if!r}")
                ok = False
        if cls is m.UdpCheck and values.get("payload") is not None:
            from healthchecks.params import parse_hex

            try:
                data, _mask = parse_hex(values["payload"], wildcards=False)
            except ValueError as exc:
                self.at(_join(path, "payload"), str(exc))
                ok = False
            else:
                if len(data) > _MAX_UDP_PAYLOAD:
                    self.at(_join(path, "payload"),
                            f"{len(data)} bytes: at most {_MAX_UDP_PAYLOAD} fit a datagram")
                    ok = False
        if cls is m.SmtpCheck:
            helo = values.get("helo_name")
            if helo is not None and not _HELO_RE.fullmatch(helo):
                self.at(_join(path, "helo_name"),
                        f"must be printable ASCII without spaces, got {helo!r}")
                ok = False
        if cls is m.DnsCheck and "name" in values:
            from healthchecks.dnswire import encode_name

            try:
                encode_name(values["name"])
            except ValueError as exc:  # UnicodeError too: a label IDNA cannot encode
                self.at(_join(path, "name"), str(exc).removeprefix("name: "))
                ok = False
        return ok

    def check_virtual_servers_together(self) -> None:
        seen: dict[Any, str] = {}
        for path, key in self.server_keys.items():
            if ".real_servers[" in path:
                continue
            if key in seen:
                proto, where, what = key
                label = f"fwmark {what}" if where == "FWM" else str(m.HostPort(where, what))
                self.at(path, f"{label}/{proto} is already {seen[key]}")
            else:
                seen[key] = path
