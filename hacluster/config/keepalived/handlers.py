"""Keyword handlers shared by every section: set a value, a flag, a command, a user."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from hacluster.config.keepalived.marks import _DROPPED
from hacluster.config.keepalived.statements import Statement
from hacluster.config.keepalived.values import _Bad, _int, _timer

if TYPE_CHECKING:
    from hacluster.config.keepalived.recorder import _Recorder


Handler = Callable[["_Recorder", Statement, dict[str, Any], str], None]


def _set(key: str, parse: Callable[[str], Any]) -> Handler:
    """`keyword VALUE` → `key: value`."""

    def handle(c: _Recorder, stmt: Statement, target: dict[str, Any], kp: str) -> None:
        value = c.value(stmt, kp, parse)
        if value is not _DROPPED:
            c.put(target, key, value, stmt, kp)

    return handle


def _address(key: str) -> Handler:
    """`keyword ADDRESS[/MASK]` → `key: ADDRESS`, as keepalived reads it."""

    def handle(c: _Recorder, stmt: Statement, target: dict[str, Any], kp: str) -> None:
        value = c.value(stmt, kp, lambda text: c.address(stmt, kp, text))
        if value is not _DROPPED:
            c.put(target, key, value, stmt, kp)

    return handle


def _flag(key: str, invert: bool = False, *, valued: bool = True) -> Handler:
    """`keyword [<BOOL>]` → `key: true/false`, the value read as keepalived's
    check_true_false() reads it; `valued=False`: keepalived 2.2.7 sets this flag whatever
    follows it (its older flags: nopreempt, omega, a virtual server's alpha...)."""

    def handle(c: _Recorder, stmt: Statement, target: dict[str, Any], kp: str) -> None:
        value = c.flag(stmt, kp, valued=valued)
        if value is not None:
            c.put(target, key, value != invert, stmt, kp)

    return handle


def _cmd(key: str, *, user_words: bool = True) -> Handler:
    def handle(c: _Recorder, stmt: Statement, target: dict[str, Any], kp: str) -> None:
        text = c.command(stmt, kp, user_words=user_words)
        if text is not None:
            c.put(target, key, text, stmt, kp)

    return handle


def _ignore_with(message: str, *, same: bool = False) -> Handler:
    def handle(c: _Recorder, stmt: Statement, target: dict[str, Any], kp: str) -> None:
        c.skip(stmt, kp, message, same=same)

    return handle


def _user(key: str, group_key: str | None) -> Handler:
    """`user USER [GROUP]` → `key` and `group_key` (without one the group is not carried)."""

    def handle(c: _Recorder, stmt: Statement, target: dict[str, Any], kp: str) -> None:
        if not stmt.args:
            c.skip(stmt, kp, "needs a user name; not carried over")
            return
        c.put(target, key, stmt.args[0], stmt, kp)
        if len(stmt.args) > 1:
            if group_key is not None:
                c.put(target, group_key, stmt.args[1], stmt, kp)
            else:
                c.skip(stmt, kp,
                       f"group {stmt.args[1]!r} is not supported (the user's group is used)")
        if len(stmt.args) > 2:
            c.skip(stmt, kp, f"extra words ignored: {' '.join(stmt.args[2:])!r}")

    return handle


def _weight_and_reverse(
    c: _Recorder, stmt: Statement, words: tuple[str, ...], kp: str, out: dict[str, Any]
) -> None:
    """`[weight N] [reverse|noreverse|no_reverse]` after a name."""
    rest = list(words)
    while rest:
        word = rest.pop(0)
        if word == "weight" and rest:
            try:
                out["weight"] = _int(rest.pop(0))
            except _Bad as exc:
                c.skip(stmt, kp, f"{exc}; weight not carried over")
        elif word == "reverse":
            out["reverse"] = True
        elif word in ("noreverse", "no_reverse"):
            out["reverse"] = False
        else:
            c.skip(stmt, kp, f"unknown word {word!r} ignored")


def _track_list(kind: str) -> Handler:
    """track_interface / track_script / track_file blocks: `NAME [weight N] [reverse]`."""

    def handle(c: _Recorder, stmt: Statement, target: dict[str, Any], kp: str) -> None:
        items: list[Any] = target.setdefault(kind, [])
        c.origin_once(target, kind, stmt, kp)
        entries = c.one_line_block(stmt, kp) if stmt.args else c.block(stmt, kp)
        for entry in entries:
            if entry.block is not None:
                c.skip(entry, kp, "unexpected { } block; not carried over")
                continue
            options: dict[str, Any] = {}
            _weight_and_reverse(c, entry, entry.args, kp, options)
            item: Any = {"name": entry.keyword, **options} if options else entry.keyword
            c.append(items, item, entry, kp)
        if not items:
            del target[kind]

    return handle


def _fifo(key: str) -> Handler:
    """`notify_fifo FILE [username [groupname]]`."""

    def handle(c: _Recorder, stmt: Statement, target: dict[str, Any], kp: str) -> None:
        if not stmt.args:
            c.skip(stmt, kp, "needs a FIFO path; not carried over")
            return
        if key in target:
            c.skip(stmt, kp, f"{key} is already given; not carried over")
            return
        c.put(target, key, stmt.args[0], stmt, kp)
        for word, value in zip(("user", "group"), stmt.args[1:3], strict=False):
            c.put(target, f"{key}_{word}", value, stmt, kp)
        if len(stmt.args) > 3:
            c.skip(stmt, kp, f"extra words ignored: {' '.join(stmt.args[3:])!r}", same=True)

    return handle


def _positive_timer(key: str) -> Handler:
    """A timer keepalived refuses at 0 ("'0' is invalid"), keeping its default of 0."""

    def handle(c: _Recorder, stmt: Statement, target: dict[str, Any], kp: str) -> None:
        if stmt.args and stmt.args[0] in ("0", "0.0"):
            c.skip(stmt, kp, "keepalived refuses 0 (\"is invalid\") and keeps its default, "
                   "which is 0 too; so does the import", same=True)
            return
        _set(key, _timer)(c, stmt, target, kp)

    return handle
