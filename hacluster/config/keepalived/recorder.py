"""The converter's bookkeeping: its state, the notes it records, where values came from."""

from __future__ import annotations

import os
import re
import shlex
from collections.abc import Callable
from typing import Any

from hacluster.config.keepalived.handlers import Handler
from hacluster.config.keepalived.marks import _DROPPED, _Origin
from hacluster.config.keepalived.statements import Skipped, Statement
from hacluster.config.keepalived.unsupported import _KNOWN_UNSUPPORTED, _NO_EFFECT
from hacluster.config.keepalived.values import _BOOL_WORDS, _Bad, _ip

_SHELL_SYNTAX_RE = re.compile(r"[<>|;&`]|\$\(")
_SHELLS = frozenset({"sh", "bash", "dash", "ash", "zsh", "ksh", "busybox"})


class _Recorder:
    """What the converter has built so far and noted; the reading of one statement."""

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
