"""Config lowered to library types, in one place: checks, VRRP instances, what is not carried out.

- One configured check of one real server becomes a `CheckPlan`: the checker kind, the
  `healthchecks` parameters (`HttpGetParams`, `TcpCheckParams`, ...) and its `Timing`.
  Plans are frozen values, so a reload keeps a running check exactly when its plan is
  equal to the new one. The loader has already resolved inheritance (virtual server ->
  real server -> checker) for the timing keys, `connect_timeout` and `virtualhost`; what
  is left here is filling in the real server's address and port where the checker does
  not name its own, and the global `script_user` for MISC_CHECK.
- One VRRP instance becomes a `vrrp.speaker.InstancePlan` (in
  `hacluster.config.lower_vrrp`, re-exported here; the VRRP role imports only that
  module, not the checks' parameters).
- `unsupported()`, `unsupported_instance()` and `unsupported_virtual_server()` name the
  keywords that are accepted but not carried out, so the caller can warn. Tests prove
  that every field of these config types (and of real servers) either changes what the
  daemon is given or is named there.

Does no I/O.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from hacluster.config.lower_vrrp import INSTANCE_AT_LOAD as INSTANCE_AT_LOAD
from hacluster.config.lower_vrrp import INSTANCE_ELSEWHERE as INSTANCE_ELSEWHERE
from hacluster.config.lower_vrrp import lower_instance as lower_instance
from hacluster.config.lower_vrrp import unsupported_instance as unsupported_instance
from hacluster.config.model import (
    CheckBase,
    Checker,
    Config,
    DnsCheck,
    FileCheck,
    GlobalDefs,
    HttpCheckBase,
    HttpGetCheck,
    MiscCheck,
    NetworkCheckBase,
    PingCheck,
    RealServer,
    SmtpCheck,
    SslGetCheck,
    TcpCheck,
    UdpCheck,
    VirtualServer,
    VrrpTrackFile,
)
from healthchecks.params import (
    DEFAULT_UDP_PAYLOAD,
    CheckParams,
    DnsCheckParams,
    FileCheckParams,
    HttpGetParams,
    MiscCheckParams,
    PingCheckParams,
    SmtpCheckParams,
    TcpCheckParams,
    Timing,
    UdpCheckParams,
    UrlSpec,
    parse_hex,
)


class CheckConfigError(ValueError):
    """A configured check cannot be turned into a runnable one (message names it)."""


@dataclass(frozen=True, slots=True)
class CheckPlan:
    """One check to run: kind, checker parameters and timing, all frozen values."""

    kind: str
    params: CheckParams
    timing: Timing


def where(vs: VirtualServer, rs: RealServer, check: CheckBase | None = None) -> str:
    """How log lines and errors name a check: `10.0.0.1:80/TCP 10.0.0.11:80 HTTP_GET`."""
    text = f"{vs} {rs}"
    return f"{text} {check.KIND}" if check is not None else text


def _connect(check: NetworkCheckBase, vs: VirtualServer, rs: RealServer) -> tuple[str, int]:
    ip = check.connect_ip if check.connect_ip is not None else rs.ip
    port = check.connect_port or rs.port or (vs.port or 0)
    if not port:
        raise CheckConfigError(
            f"{where(vs, rs, check)}: no port to check (set connect_port)"
        )
    return str(ip), port


def _timing(check: Checker, vs: VirtualServer, rs: RealServer) -> Timing:
    # keepalived's alpha is inherited (virtual server -> real server -> check): a check
    # starts down when any level asks for it.
    alpha = check.alpha or (vs.alpha if rs.alpha is None else rs.alpha)
    return Timing(
        delay_loop=check.delay_loop,
        retry=check.retry,
        delay_before_retry=check.delay_before_retry,
        warmup=check.warmup,
        alpha=alpha,
    )


def _urls(check: HttpCheckBase) -> tuple[UrlSpec, ...]:
    return tuple(
        UrlSpec(
            path=u.path,
            status_code=tuple((r.first, r.last) for r in u.status_code),
            digest=u.digest,
            regex=u.regex,
            regex_no_match=u.regex_no_match,
            virtualhost=u.virtualhost,
        )
        for u in check.url
    ) or (UrlSpec(),)


def _source(check: NetworkCheckBase) -> dict[str, Any]:
    """Where the check's packets come from: keepalived's bindto, bind_port, bind_if, fwmark."""
    return {
        "bindto": str(check.bindto) if check.bindto is not None else None,
        "bind_port": check.bind_port,
        "bind_if": check.bind_if,
        "fwmark": check.fwmark,
    }


def _params(
    check: Checker,
    vs: VirtualServer,
    rs: RealServer,
    defs: GlobalDefs,
    track_files: Mapping[str, VrrpTrackFile],
) -> CheckParams:
    match check:
        case PingCheck():
            target = check.connect_ip if check.connect_ip is not None else rs.ip
            source = {**_source(check), "bind_port": None}  # ICMP has no ports
            return PingCheckParams(
                str(target), **source, connect_timeout=check.connect_timeout,
            )
        case UdpCheck():
            ip, port = _connect(check, vs, rs)
            payload = (
                parse_hex(check.payload, wildcards=False)[0]
                if check.payload is not None else DEFAULT_UDP_PAYLOAD
            )
            data = mask = None
            if isinstance(check.require_reply, str):
                data, mask = parse_hex(check.require_reply, wildcards=True)
            return UdpCheckParams(
                ip, port, payload=payload, require_reply=bool(check.require_reply),
                reply_data=data, reply_mask=mask, min_reply_length=check.min_reply_length,
                max_reply_length=check.max_reply_length, **_source(check),
                connect_timeout=check.connect_timeout,
            )
        case FileCheck():
            tf = track_files.get(check.track_file)
            if tf is None:
                raise CheckConfigError(
                    f"{where(vs, rs, check)}: no vrrp_track_file named {check.track_file!r}"
                )
            weight, reverse = (
                (tf.weight, tf.reverse) if check.weight is None
                else (check.weight, check.reverse)
            )
            return FileCheckParams(str(tf.file), weight, reverse, base_weight=rs.weight)
        case HttpGetCheck() | SslGetCheck():
            ip, port = _connect(check, vs, rs)
            virtualhost = check.virtualhost or rs.virtualhost or vs.virtualhost
            return HttpGetParams(
                connect_ip=ip,
                connect_port=port,
                urls=_urls(check),
                tls=isinstance(check, SslGetCheck),
                virtualhost=virtualhost,
                connect_timeout=check.connect_timeout,
                enable_sni=isinstance(check, SslGetCheck) and check.enable_sni,
                http_protocol=check.http_protocol,
                **_source(check),
            )
        case TcpCheck():
            ip, port = _connect(check, vs, rs)
            return TcpCheckParams(
                ip, port, connect_timeout=check.connect_timeout,
                complete_handshake=check.complete_handshake, **_source(check),
            )
        case DnsCheck():
            ip, port = _connect(check, vs, rs)
            return DnsCheckParams(
                ip, port, type=check.type, name=check.name,
                connect_timeout=check.connect_timeout, **_source(check),
            )
        case SmtpCheck():
            ip, port = _connect(check, vs, rs)
            return SmtpCheckParams(
                ip, port, helo_name=check.helo_name,
                connect_timeout=check.connect_timeout, **_source(check),
            )
        case MiscCheck():
            return MiscCheckParams(
                misc_path=check.misc_path.text,
                misc_timeout=check.effective_timeout,
                misc_dynamic=check.misc_dynamic,
                script_user=check.user if check.user is not None else defs.script_user,
                script_group=check.group if check.user is not None else None,
            )
    raise CheckConfigError(f"{where(vs, rs)}: unknown checker {type(check).__name__}")


def plan(
    check: Checker,
    vs: VirtualServer,
    rs: RealServer,
    defs: GlobalDefs | None = None,
    track_files: Mapping[str, VrrpTrackFile] | None = None,
) -> CheckPlan:
    """The runnable form of one configured check; CheckConfigError names what is wrong.

    `track_files` (the config's vrrp_track_files) is what FILE_CHECK reads.
    """
    try:
        params = _params(check, vs, rs, defs or GlobalDefs(), track_files or {})
        timing = _timing(check, vs, rs)
    except CheckConfigError:
        raise
    except ValueError as exc:
        raise CheckConfigError(f"{where(vs, rs, check)}: {exc}") from None
    return CheckPlan(check.KIND, params, timing)


def plans(
    vs: VirtualServer, rs: RealServer, defs: GlobalDefs | None = None,
    track_files: Mapping[str, VrrpTrackFile] | None = None,
) -> tuple[CheckPlan, ...]:
    """Every check of a real server, in configuration order."""
    return tuple(plan(check, vs, rs, defs, track_files) for check in rs.checks)


def plans_of(config: Config, vs: VirtualServer, rs: RealServer) -> tuple[CheckPlan, ...]:
    """Every check of a real server of `config`."""
    return plans(vs, rs, config.global_defs, config.vrrp_track_files)


def unsupported(check: Checker) -> list[str]:
    """keepalived keywords set on `check` that the checkers do not carry out."""
    notes: list[str] = []
    if isinstance(check, HttpCheckBase) and check.fast_recovery:
        notes.append("fast_recovery is not supported and is ignored")
    if isinstance(check, PingCheck):
        for key in ("connect_port", "bind_port"):
            if getattr(check, key) is not None:
                notes.append(f"{key} means nothing to PING_CHECK (ICMP has no ports) "
                             "and is ignored")
    if check.log_all_failures:
        notes.append("log_all_failures is not supported and is ignored "
                     "(failures that change a check's state are logged)")
    return notes


def unsupported_virtual_server(vs: VirtualServer) -> list[str]:
    """keepalived keywords set on `vs` (not its checks) that are not carried out."""
    notes: list[str] = []
    if vs.ha_suspend:
        notes.append("ha_suspend is not supported and is ignored (the real servers are "
                     "checked whatever the VRRP state)")
    return notes
