"""Virtual servers and their groups: building each service, keepalived's port corrections."""

from __future__ import annotations

import ipaddress
from collections.abc import Iterator
from typing import Any

from hacluster.config.keepalived.marks import _Origin
from hacluster.config.keepalived.recorder import _Recorder
from hacluster.config.keepalived.statements import Statement
from hacluster.config.keepalived.values import _Bad, _choice, _int, _ip
from hacluster.config.keepalived.virtual_servers import _CHECKERS, _VIRTUAL_SERVER

_MAX_GROUP_EXPANSION = 256


class _ServerSections(_Recorder):
    """Builds the virtual_server sections, a group's once per member."""

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
