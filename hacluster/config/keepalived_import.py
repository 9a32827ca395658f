"""keepalived.conf → hacluster YAML: reads it and its includes, converts, lists what is left out.

Three stages. `read_keepalived` turns a keepalived.conf (with `include`, conditional `@id`
lines, `$PARAM` substitution, quotes and comments) into a tree of `Statement`s; it is
the only part that reads files. `convert` maps that tree onto the YAML shape of CONFIG.md
with keepalived's old keyword names folded in, and records a `Skipped` note for every
keyword it cannot carry over. Finally the result is run through the real loader: anything
the loader still rejects (a duplicate address, a clash between sections) is removed and
noted too, so the YAML printed always passes `hacluster check-config`.

keepalived 2.2.7 is the reference for reading: what it forgives (a flag with a value, an
address with a mask, a missing `}`...) is forgiven, what it corrects as it loads (`lb_kind
dr` rejected, `state SLAVE` taken as BACKUP...) is corrected the same way, each with a
note. `Skipped.changes_behaviour` says whether a note leaves a difference from what
keepalived would run, or none (keepalived ignores or rewrites the same, or the keyword
only tunes keepalived's own processes).
"""

from __future__ import annotations

import contextlib
import glob
import gzip
import ipaddress
import itertools
import math
import os
import re
import shlex
import stat
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from hacluster.config import advert_fit
from hacluster.config.errors import ConfigError
from hacluster.config.loader import parse_config

__all__ = [
    "ImportResult",
    "KeepalivedSyntaxError",
    "Skipped",
    "Statement",
    "convert",
    "import_keepalived",
    "import_keepalived_text",
    "read_keepalived",
    "read_keepalived_text",
]

# libyaml's emitter when present: an order of magnitude faster on large configurations
_YAML_DUMPER: Any = getattr(yaml, "CSafeDumper", yaml.SafeDumper)
_MAX_INCLUDE_DEPTH = 16
_MAX_LINE = 65536  # a line grown past this by parameter substitution is a definition loop
_MAX_GROUP_EXPANSION = 256
_INCLUDE_WORDS = ("include", "includer", "includem", "includew", "includeb", "includea")
_PARAM_DEF_RE = re.compile(r"^\$([A-Za-z_][A-Za-z0-9_]*)=(.*)$", re.DOTALL)
_PARAM_USE_RE = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)\}|\$([A-Za-z_][A-Za-z0-9_]*)(?=\s|$)")
_CONDITIONAL_RE = re.compile(r"^\s*@(\^?)(\S+)\s?(.*)$", re.DOTALL)
_SLOW_LINE_RE = re.compile(r"[\"'\\]")
_COMMENT_RE = re.compile(r"[#!]")
_WORD_RE = re.compile(r"[{}]|[^\s{}]+")
_SHELL_SYNTAX_RE = re.compile(r"[<>|;&`]|\$\(")
_SHELLS = frozenset({"sh", "bash", "dash", "ash", "zsh", "ksh", "busybox"})
# keepalived's check_true_false(): these six words, in lower case only
_BOOL_WORDS = {"on": True, "true": True, "yes": True, "off": False, "false": False, "no": False}


# --------------------------------------------------------------------------- values


@dataclass(frozen=True, slots=True)
class Statement:
    """One keepalived statement: its words, where it was written, and its `{ }` block if any."""

    words: tuple[str, ...]
    file: str
    line: int
    block: tuple[Statement, ...] | None = None

    @property
    def keyword(self) -> str:
        return self.words[0]

    @property
    def args(self) -> tuple[str, ...]:
        return self.words[1:]


@dataclass(frozen=True, slots=True)
class Skipped:
    """A keyword (or value) of the keepalived file that the YAML does not carry."""

    file: str
    line: int
    keyword: str  # keepalived keyword path, e.g. "virtual_server.persistence_granularity"
    message: str
    # False when the imported configuration behaves as keepalived does with the file
    # anyway: keepalived ignores or rewrites the same thing (and warns), or the keyword
    # only tunes keepalived's own processes. See `_Converter.skip` and `_NO_EFFECT`.
    changes_behaviour: bool = True

    def __str__(self) -> str:
        return f"{self.file}:{self.line}: {self.keyword}: {self.message}"


@dataclass(frozen=True, slots=True)
class ImportResult:
    """The converted configuration: the YAML text, its data, and everything left out."""

    yaml_text: str
    data: dict[str, Any] = field(hash=False, compare=False)
    skipped: tuple[Skipped, ...]


class KeepalivedSyntaxError(Exception):
    """The keepalived file cannot be read or its structure cannot be parsed."""

    def __init__(self, file: str, line: int, message: str) -> None:
        self.file = file
        self.line = line
        self.message = message
        where = f"{file}:{line}" if line > 0 else file
        super().__init__(f"{where}: {message}")


class _Unreadable(KeepalivedSyntaxError):
    """A file that cannot be read (for an included file: noted and skipped, as keepalived)."""


# --------------------------------------------------------------------------- reading


@dataclass(frozen=True, slots=True)
class _Token:
    text: str
    kind: str  # "word", "{", "}", "eol"
    file: str
    line: int


def _read_text(path: Path, shown: str, line_of_include: tuple[str, int] | None) -> str:
    # problems of an included file are told at its include line
    where_file, where_line = line_of_include if line_of_include else (shown, 0)
    name = f"{shown}: " if line_of_include else ""

    def fail(message: str) -> _Unreadable:
        return _Unreadable(where_file, where_line, f"{name}{message}")

    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        raise fail("no such file") from None
    except IsADirectoryError:
        raise fail("is a directory, not a file") from None
    except OSError as exc:
        raise fail(f"cannot read: {exc.strerror}") from None
    if raw[:2] == b"\x1f\x8b":  # the samples shipped in distributions are often gzipped
        try:
            raw = gzip.decompress(raw)
        except (OSError, EOFError) as exc:
            raise fail(f"damaged gzip file: {exc}") from None
    if b"\x00" in raw:
        raise fail("not a text file (it contains NUL bytes)")
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError:
        return raw.decode("latin-1")


def _split_line(text: str, file: str, line: int) -> list[_Token]:
    """keepalived's lexer for one line: quotes join, # and ! start comments, braces split."""
    if not _SLOW_LINE_RE.search(text):  # the common line: no quotes, no escapes
        code = _COMMENT_RE.split(text, 1)[0]
        return [
            _Token(word, word if word in "{}" else "word", file, line)
            for word in _WORD_RE.findall(code)
        ]
    return _split_quoted_line(text, file, line)


_ESCAPES = {"a": "\a", "b": "\b", "E": "\x1b", "f": "\f", "n": "\n", "r": "\r", "t": "\t",
            "v": "\v"}
_OCTAL = "01234567"
_HEX = "0123456789abcdefABCDEF"


def _escape(text: str, i: int) -> tuple[str, int]:
    """keepalived's escape after a backslash at text[i - 1]: the character and where to go on."""
    ch = text[i]
    if ch == "x" and i + 1 < len(text) and text[i + 1] in _HEX:
        end = i + 1
        while end < len(text) and text[end] in _HEX:
            end += 1
        return chr(int(text[i + 1:end], 16) & 0xFF), end
    if ch == "c" and i + 1 < len(text):
        return chr(ord(text[i + 1]) & 0x1F), i + 2
    if ch in _OCTAL:
        end = i + 1
        while end < len(text) and end < i + 3 and text[end] in _OCTAL:
            end += 1
        return chr(int(text[i:end], 8) & 0xFF), end
    return _ESCAPES.get(ch, ch), i + 1


def _split_quoted_line(text: str, file: str, line: int) -> list[_Token]:
    """`_split_line` for lines with quotes or backslashes, a character at a time."""
    tokens: list[_Token] = []
    current: list[str] = []
    in_word = False
    quote: str | None = None
    i = 0

    def flush() -> None:
        nonlocal in_word
        if in_word:
            tokens.append(_Token("".join(current), "word", file, line))
            current.clear()
            in_word = False

    while i < len(text):
        ch = text[i]
        if ch == "\\" and i + 1 < len(text):
            char, i = _escape(text, i + 1)
            current.append(char)
            in_word = True
            continue
        if quote is not None:
            if ch == quote:
                quote = None
            else:
                current.append(ch)
            i += 1
            continue
        if ch in "\"'":
            quote = ch
            in_word = True
        elif ch in "#!":
            break
        elif ch.isspace():
            flush()
        elif ch in "{}":
            flush()
            tokens.append(_Token(ch, ch, file, line))
        else:
            current.append(ch)
            in_word = True
        i += 1
    if quote is not None:
        raise KeepalivedSyntaxError(file, line, f"unterminated {quote}quoted string{quote}")
    flush()
    return tokens


class _Reader:
    """Turns files into one token stream, following includes."""

    def __init__(self, config_id: str | None) -> None:
        self.config_id = config_id
        self.params: dict[str, str] = {}
        self.tokens: list[_Token] = []
        self.skipped: list[Skipped] = []
        self.open_files: list[Path] = []

    def substitute(self, text: str, file: str, line: int) -> str:
        for _ in range(32):  # substitution is recursive; a loop of definitions stops here
            changed = False

            def repl(match: re.Match[str]) -> str:
                nonlocal changed
                name = match.group(1) or match.group(2)
                if name in self.params:
                    changed = True
                    return self.params[name]
                return match.group(0)

            text = _PARAM_USE_RE.sub(repl, text)
            if not changed:
                return text
            if len(text) > _MAX_LINE:
                break
        raise KeepalivedSyntaxError(file, line, "parameter substitution does not end")

    def conditional(self, text: str, file: str, line: int) -> str | None:
        """The line without its `@id` / `@^id` prefix, or None when it does not apply."""
        match = _CONDITIONAL_RE.match(text)
        if match is None:
            return text
        negate, wanted, rest = match.group(1) == "^", match.group(2), match.group(3)
        if self.config_id is None:
            self.skipped.append(
                Skipped(
                    file, line, f"@{'^' if negate else ''}{wanted}",
                    "conditional line needs a config id (give --config-id); not carried over",
                )
            )
            return None
        if (wanted == self.config_id) != negate:
            return rest
        label = f"@{'^' if negate else ''}{wanted}"
        self.skipped.append(
            Skipped(file, line, label, f"not for config id {self.config_id!r}; left out",
                    changes_behaviour=False)  # as keepalived -i ID
        )
        return None

    def read(self, path: Path, shown: str, depth: int, origin: tuple[str, int] | None) -> None:
        resolved = path.resolve()
        if resolved in self.open_files:
            assert origin is not None
            raise KeepalivedSyntaxError(*origin, f"{shown} includes itself")
        if depth > _MAX_INCLUDE_DEPTH:
            assert origin is not None
            raise KeepalivedSyntaxError(*origin, f"includes nest deeper than {_MAX_INCLUDE_DEPTH}")
        text = _read_text(path, shown, origin)
        self.open_files.append(resolved)
        self.feed(text, path.parent, shown, depth)
        self.open_files.pop()

    def feed(self, text: str, base: Path, shown: str, depth: int) -> None:
        """Lex `text` (named `shown`); includes in it are relative to the directory `base`."""
        lines = text.splitlines()
        number = 0
        while number < len(lines):
            raw = lines[number]
            number += 1
            first = number
            # a parameter definition may run over several lines ending in '\'
            if raw.lstrip().startswith("$"):
                while raw.endswith("\\") and number < len(lines):
                    raw = raw[:-1] + "\n" + lines[number]
                    number += 1
            self.line(raw, base, shown, first, depth)

    def line(self, raw: str, base: Path, shown: str, number: int, depth: int) -> None:
        first_word = raw.split(None, 1)[0] if raw.strip() else ""
        if first_word in _INCLUDE_WORDS:  # found before conditionals and parameters, as keepalived
            self.include(raw, base, shown, number, depth)
            return
        text = self.conditional(raw, shown, number)
        if text is None:
            return
        definition = _PARAM_DEF_RE.match(text.strip())
        if definition is not None:
            self.params[definition.group(1)] = definition.group(2).strip()
            return
        text = self.substitute(text, shown, number)
        for sub in text.split("\n"):  # a multi-line parameter value expands to several lines
            self.tokens.extend(_split_line(sub, shown, number))
            self.tokens.append(_Token("", "eol", shown, number))

    def include(self, raw: str, base: Path, shown: str, number: int, depth: int) -> None:
        words = [t.text for t in _split_line(raw, shown, number) if t.kind == "word"]
        if len(words) < 2:
            self.skipped.append(Skipped(shown, number, words[0], "needs a file name; ignored",
                                        changes_behaviour=False))
            return
        matches = sorted(glob.glob(os.path.join(str(base), words[1])))
        files = [m for m in matches if not os.path.isdir(m)]
        if not files:
            self.skipped.append(
                Skipped(shown, number, words[0], f"no file matches {words[1]!r}; nothing included",
                        changes_behaviour=False)  # keepalived warns and goes on too
            )
            return
        for match in files:
            # name included files as the user would: relative to how the main file was named
            if os.path.isabs(words[1]):
                display = match
            else:
                rel = os.path.relpath(match, str(base))
                display = os.path.normpath(os.path.join(os.path.dirname(shown), rel))
            try:
                mode = os.stat(match).st_mode
                if not stat.S_ISREG(mode) or mode & 0o111:
                    self.skipped.append(Skipped(
                        shown, number, words[0],
                        f"{display} is not a regular non-executable file; skipped, as keepalived",
                        changes_behaviour=False,
                    ))
                    continue
                self.read(Path(match), display, depth + 1, (shown, number))
            except _Unreadable as exc:  # keepalived goes on without a file it cannot open
                self.skipped.append(Skipped(shown, number, words[0], f"{exc.message}; skipped",
                                            changes_behaviour=False))
            except OSError as exc:
                self.skipped.append(
                    Skipped(shown, number, words[0], f"{display}: {exc.strerror}; skipped",
                            changes_behaviour=False)
                )


def _build_tree(tokens: list[_Token], notes: list[Skipped]) -> tuple[Statement, ...]:
    """Group the token stream into statements and `{ }` blocks.

    Unbalanced braces are taken as keepalived takes them, with a note: an extra `}` is
    ignored, and blocks still open at the end of the input are closed there.
    """
    # each level: (statements so far, the words of the statement being read, opener)
    stack: list[tuple[list[dict[str, Any]], _Token | None]] = [([], None)]
    node: dict[str, Any]
    words: list[_Token] = []

    def flush() -> None:
        if words:
            stack[-1][0].append({"tokens": list(words), "block": None})
            words.clear()

    for tok in tokens:
        if tok.kind == "word":
            words.append(tok)
        elif tok.kind == "eol":
            flush()
        elif tok.kind == "{":
            if words:
                node = {"tokens": list(words), "block": []}
                stack[-1][0].append(node)
                words.clear()
            else:
                siblings = stack[-1][0]
                if not siblings or siblings[-1]["block"] is not None:
                    raise KeepalivedSyntaxError(
                        tok.file, tok.line, "'{' without a keyword before it"
                    )
                node = siblings[-1]
                node["block"] = []
            stack.append((node["block"], tok))
        else:  # "}"
            flush()
            if len(stack) == 1:
                notes.append(Skipped(
                    tok.file, tok.line, "}",
                    "'}' without a matching '{': ignored, as keepalived does "
                    "(it warns \"Extra '}' found\")",
                    changes_behaviour=False,
                ))
                continue
            stack.pop()
    flush()
    while len(stack) > 1:
        opener = stack.pop()[1]
        assert opener is not None
        owner = stack[-1][0][-1]["tokens"][0].text
        notes.append(Skipped(
            opener.file, opener.line, owner,
            "the '{' opened here is never closed: closed at the end of the input, as "
            "keepalived does (it warns \"There are N missing '}'s or extra '{'s\")",
            changes_behaviour=False,
        ))

    def freeze(nodes: list[dict[str, Any]]) -> tuple[Statement, ...]:
        out = []
        for node in nodes:
            toks: list[_Token] = node["tokens"]
            block = None if node["block"] is None else freeze(node["block"])
            out.append(
                Statement(tuple(t.text for t in toks), toks[0].file, toks[0].line, block)
            )
        return tuple(out)

    return freeze(stack[0][0])


def read_keepalived(
    path: str | Path, config_id: str | None = None
) -> tuple[tuple[Statement, ...], tuple[Skipped, ...]]:
    """Parse a keepalived.conf and everything it includes into statements.

    `config_id` selects conditional lines (`@id ...`); without one they are all left out
    and noted. Raises `KeepalivedSyntaxError` when a file cannot be read or its braces
    do not balance.
    """
    reader = _Reader(config_id)
    shown = str(path)
    reader.read(Path(path), shown, 0, None)
    tree = _build_tree(reader.tokens, reader.skipped)
    return tree, tuple(reader.skipped)


def read_keepalived_text(
    text: str, filename: str = "<stdin>", base: str | Path = ".", config_id: str | None = None
) -> tuple[tuple[Statement, ...], tuple[Skipped, ...]]:
    """Like `read_keepalived` for text already in hand; includes are relative to `base`."""
    reader = _Reader(config_id)
    reader.feed(text, Path(base), filename, 0)
    tree = _build_tree(reader.tokens, reader.skipped)
    return tree, tuple(reader.skipped)


# --------------------------------------------------------------------------- value parsing


class _Bad(Exception):
    """A value that cannot be carried over; the message says why."""


def _int(text: str) -> int:
    try:
        return int(text, 10)
    except ValueError:
        raise _Bad(f"not a whole number: {text!r}") from None


def _timer(text: str) -> int | float:
    try:
        value = float(text)
    except ValueError:
        raise _Bad(f"not a number: {text!r}") from None
    if value != value or value in (float("inf"), float("-inf")):
        raise _Bad(f"not a finite number: {text!r}")
    return int(value) if value.is_integer() else value


def _bool(text: str) -> bool:
    try:
        return _BOOL_WORDS[text]
    except KeyError:
        raise _Bad(f"not a boolean (on|off|true|false|yes|no): {text!r}") from None


def _ip(text: str) -> str:
    try:
        return str(ipaddress.ip_address(text))
    except ValueError:
        raise _Bad(f"not an IP address: {text!r}") from None


def _hostport(ip: str, port: str | None) -> str:
    address = ipaddress.ip_address(_ip(ip))
    if port is None:
        return str(address)
    number = _int(port)
    return f"[{address}]:{number}" if address.version == 6 else f"{address}:{number}"


def _text(text: str) -> str:
    return text


def _choice(*options: str, upper: bool = False, exact: bool = False) -> Callable[[str], str]:
    def parse(text: str) -> str:
        value = text if exact else text.upper() if upper else text.lower()
        if value not in options:
            raise _Bad(f"{text!r} is not one of {' | '.join(options)}")
        return value

    return parse


_LB_KIND = _choice("NAT", "DR", "TUN", exact=True)  # keepalived: case-sensitive
_PROTOCOL = _choice("TCP", "UDP", "SCTP", upper=True)
_LB_ALGO = _choice(  # keepalived: case-sensitive
    "rr", "wrr", "lc", "wlc", "lblc", "lblcr", "dh", "sh", "sed", "nq", "mh", "fo", "ovf", "twos",
    exact=True,
)


# --------------------------------------------------------------------------- conversion


@dataclass(frozen=True, slots=True)
class _Origin:
    file: str
    line: int
    keyword: str


_DROPPED: Any = object()  # a list item taken out after the loader refused it

Handler = Callable[["_Converter", Statement, dict[str, Any], str], None]


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


# --------------------------------------------------------------------------- handlers


def _set(key: str, parse: Callable[[str], Any]) -> Handler:
    """`keyword VALUE` → `key: value`."""

    def handle(c: _Converter, stmt: Statement, target: dict[str, Any], kp: str) -> None:
        value = c.value(stmt, kp, parse)
        if value is not _DROPPED:
            c.put(target, key, value, stmt, kp)

    return handle


def _address(key: str) -> Handler:
    """`keyword ADDRESS[/MASK]` → `key: ADDRESS`, as keepalived reads it."""

    def handle(c: _Converter, stmt: Statement, target: dict[str, Any], kp: str) -> None:
        value = c.value(stmt, kp, lambda text: c.address(stmt, kp, text))
        if value is not _DROPPED:
            c.put(target, key, value, stmt, kp)

    return handle


def _flag(key: str, invert: bool = False, *, valued: bool = True) -> Handler:
    """`keyword [<BOOL>]` → `key: true/false`, the value read as keepalived's
    check_true_false() reads it; `valued=False`: keepalived 2.2.7 sets this flag whatever
    follows it (its older flags: nopreempt, omega, a virtual server's alpha...)."""

    def handle(c: _Converter, stmt: Statement, target: dict[str, Any], kp: str) -> None:
        value = c.flag(stmt, kp, valued=valued)
        if value is not None:
            c.put(target, key, value != invert, stmt, kp)

    return handle


def _cmd(key: str, *, user_words: bool = True) -> Handler:
    def handle(c: _Converter, stmt: Statement, target: dict[str, Any], kp: str) -> None:
        text = c.command(stmt, kp, user_words=user_words)
        if text is not None:
            c.put(target, key, text, stmt, kp)

    return handle


def _ignore_with(message: str, *, same: bool = False) -> Handler:
    def handle(c: _Converter, stmt: Statement, target: dict[str, Any], kp: str) -> None:
        c.skip(stmt, kp, message, same=same)

    return handle


def _user(key: str, group_key: str | None) -> Handler:
    """`user USER [GROUP]` → `key` and `group_key` (without one the group is not carried)."""

    def handle(c: _Converter, stmt: Statement, target: dict[str, Any], kp: str) -> None:
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
    c: _Converter, stmt: Statement, words: tuple[str, ...], kp: str, out: dict[str, Any]
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

    def handle(c: _Converter, stmt: Statement, target: dict[str, Any], kp: str) -> None:
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


def _use_vmac(c: _Converter, stmt: Statement, target: dict[str, Any], kp: str) -> None:
    """`use_vmac [NAME]`."""
    c.put(target, "use_vmac", True, stmt, kp)
    if stmt.args:
        c.put(target, "vmac_interface", stmt.args[0], stmt, kp)
    if len(stmt.args) > 1:
        c.skip(stmt, kp, f"extra words ignored: {' '.join(stmt.args[1:])!r}", same=True)


def _rule_addresses_valid(words: tuple[str, ...]) -> bool:
    """Whether a rule's from/to addresses parse (keepalived gives a preference only then)."""
    for keyword, value in itertools.pairwise(words):
        if keyword in ("from", "to") and value != "all":
            try:
                ipaddress.ip_interface(value)
            except ValueError:
                return False
    return True


def _route_list(key: str) -> Handler:
    """virtual_routes / virtual_rules / static_*: each line's words, as `ip route` / `ip rule`
    read them; what the loader cannot take is dropped (noted) by the validation."""

    def handle(c: _Converter, stmt: Statement, target: dict[str, Any], kp: str) -> None:
        items: list[Any] = target.setdefault(key, [])
        c.origin_once(target, key, stmt, kp)
        entries = c.one_line_block(stmt, kp) if stmt.args else c.block(stmt, kp)
        for entry in entries:
            if entry.block is not None:
                c.skip(entry, kp, "unexpected { } block; not carried over")
                continue
            text = " ".join(entry.words)
            if key.endswith("routes") and "or" in entry.words:
                c.skip(entry, kp, "keepalived: \"or\" for routes is deprecated; carried as "
                       "two nexthops (a multipath route), as keepalived does", same=True)
            if key.endswith("rules") and _rule_addresses_valid(entry.words) and not {
                    "priority", "preference", "pref", "prio"} & set(entry.words):
                # keepalived counts down from 16384 for each rule without one
                c.skip(entry, kp, f"no priority: keepalived sets {c.rule_pref} (\"Rule has "
                       "no preference specified\"), and so does the import", same=True)
                text += f" priority {c.rule_pref}"
                c.rule_pref -= 1
            c.append(items, text, entry, kp)
        if not items:
            del target[key]

    return handle


def _vip_list(key: str) -> Handler:
    def handle(c: _Converter, stmt: Statement, target: dict[str, Any], kp: str) -> None:
        items: list[Any] = target.setdefault(key, [])
        c.origin_once(target, key, stmt, kp)
        # `virtual_ipaddress ADDR` on one line: keepalived misreads it, see one_line_block
        entries = c.one_line_block(stmt, kp) if stmt.args else c.block(stmt, kp)
        for entry in entries:
            vip = _vip(c, entry, kp)
            if vip is not None:
                c.append(items, vip, entry, kp)
        if not items:
            del target[key]

    return handle


_VIP_VALUE_OPTIONS = {"dev", "scope", "label"}
_VIP_UNSUPPORTED_VALUE = {"brd", "broadcast", "peer", "preferred_lft", "track_group"}
_VIP_UNSUPPORTED_FLAG = {"home", "-nodad", "nodad", "mngtmpaddr", "noprefixroute", "autojoin",
                         "use_vmac"}
_SCOPES = {"global", "site", "link", "host", "nowhere"}


def _vip(c: _Converter, entry: Statement, kp: str) -> str | None:
    words = list(entry.words)
    if entry.block is not None:
        c.skip(entry, kp, "unexpected { } block; not carried over")
        return None
    try:
        address = ipaddress.ip_interface(words[0])
    except ValueError:
        # keepalived: "VRRP parsed invalid IP X. skipping IP..."
        c.skip(entry, kp, f"not an address IP[/prefix]: {words[0]!r}; not carried over, as "
               "keepalived skips it", same=True)
        return None
    parts = [str(address) if "/" in words[0] else str(address.ip)]
    rest = words[1:]
    while rest:
        word = rest.pop(0)
        if word in _VIP_VALUE_OPTIONS and rest:
            value = rest.pop(0)
            if word == "scope" and value not in _SCOPES:
                c.skip(entry, f"{kp}.scope", f"scope {value!r} is not supported; left out")
                continue
            if word == "scope" and address.version == 6:
                c.skip(entry, f"{kp}.scope", "keepalived ignores a scope on IPv6 addresses "
                       "(\"Cannot specify scope for IPv6 addresses\"); so does the import",
                       same=True)
                continue
            parts += [word, value]
        elif word == "no_track":
            parts.append(word)
        elif word in _VIP_UNSUPPORTED_VALUE and rest:
            c.skip(entry, f"{kp}.{word}", f"'{word} {rest.pop(0)}' is not supported; left out")
        elif word in _VIP_UNSUPPORTED_FLAG:
            c.skip(entry, f"{kp}.{word}", "not supported; left out")
        else:
            c.skip(entry, kp, f"unknown word {word!r} in {' '.join(words)!r}; left out")
    return " ".join(parts)


def _unicast_peers(c: _Converter, stmt: Statement, target: dict[str, Any], kp: str) -> None:
    items: list[Any] = target.setdefault("unicast_peers", [])
    c.origin_once(target, "unicast_peers", stmt, kp)
    if stmt.args and stmt.block is None:  # old `vrrp_unicast_peer IP`
        entries: tuple[Statement, ...] = (Statement(stmt.args, stmt.file, stmt.line),)
    else:
        entries = c.block(stmt, kp)
    for entry in entries:
        try:
            ip = c.address(entry, kp, entry.keyword)
        except _Bad as exc:
            c.skip(entry, kp, f"{exc}; not carried over")
            continue
        peer: dict[str, Any] = {"ip": ip}
        rest = list(entry.args)
        while rest:
            word = rest.pop(0)
            if word in ("min_ttl", "max_ttl") and rest:
                try:
                    peer[word] = _int(rest.pop(0))
                except _Bad as exc:
                    c.skip(entry, f"{kp}.{word}", f"{exc}; left out")
            else:
                c.skip(entry, kp, f"unknown word {word!r} ignored")
        c.append(items, peer if len(peer) > 1 else ip, entry, kp)
    if not items:
        del target["unicast_peers"]


def _authentication(c: _Converter, stmt: Statement, target: dict[str, Any], kp: str) -> None:
    auth: dict[str, Any] = {}
    for entry in c.block(stmt, kp):
        ekp = f"{kp}.{entry.keyword}"
        if entry.keyword == "auth_type":
            value = entry.args[0] if entry.args else ""
            if value not in ("PASS", "AH"):
                c.skip(entry, ekp, "keepalived knows only PASS and AH (in capitals) and sends "
                       "no authentication then; so does the import", same=True)
                return
            if value == "AH":
                c.skip(entry, ekp, "AH (IPsec) authentication is not supported; "
                       "the instance is imported without authentication")
                return
            auth["auth_type"] = value
        elif entry.keyword == "auth_pass":
            if not entry.args:
                c.skip(entry, ekp, "needs a password; not carried over")
                continue
            password = entry.args[0]
            if len(password.encode()) > 8:  # keepalived uses the first eight characters
                c.skip(entry, ekp, "longer than 8 bytes: only the first 8 are used, as keepalived",
                       same=True)
                password = password.encode()[:8].decode("utf-8", "ignore")
            auth["auth_pass"] = password
        else:
            c.skip(entry, ekp, "unknown keyword; ignored, as keepalived does", same=True)
    if "auth_pass" not in auth:
        c.skip(stmt, kp, "no auth_pass: keepalived ignores the authentication then, and so "
               "does the import", same=True)
        return
    if "auth_type" not in auth:
        c.skip(stmt, kp, "no auth_type: keepalived sends no authentication then, and "
               "neither does the import", same=True)
        return
    c.put(target, "authentication", auth, stmt, kp)


def _lvs_sync_daemon_interface(
    c: _Converter, stmt: Statement, target: dict[str, Any], kp: str
) -> None:
    if not stmt.args:
        c.skip(stmt, kp, "needs an interface; not carried over")
        return
    # carried to global_defs.lvs_sync_daemon once the instance's name is known
    target["_lvs_sync_daemon_interface"] = (stmt.args[0], stmt)


def _lvs_sync_daemon(c: _Converter, stmt: Statement, target: dict[str, Any], kp: str) -> None:
    """`lvs_sync_daemon IFACE [inst NAME] [id N] [maxlen N] [port N] [ttl N] [group IP]`,
    and the old `lvs_sync_daemon IFACE INSTANCE [SYNCID]` (keepalived's lvs_syncd_handler:
    a bad value is noted and that option left out, the rest kept)."""
    words = list(stmt.args)
    if not words:
        c.skip(stmt, kp, "needs an interface; not carried over")
        return
    if "lvs_sync_daemon" in target:
        c.skip(stmt, kp, "lvs_sync_daemon is already given; not carried over")
        return
    sync: dict[str, Any] = {"interface": words[0]}
    options: dict[str, tuple[str, Callable[[str], Any]]] = {
        "id": ("syncid", _bounded(0, 255)),
        "maxlen": ("maxlen", _bounded(1, 65535 - 20 - 8)),
        "port": ("port", _bounded(1, 65535)),
        "ttl": ("ttl", _bounded(1, 255)),
        "group": ("group", _multicast),
    }
    i = 1
    while i < len(words):
        word = words[i]
        if word == "inst" or word in options:
            if i + 1 >= len(words):
                c.skip(stmt, kp, f"{word} needs a value; ignored")
                i += 1
                continue
            value = words[i + 1]
            if word == "inst":
                sync.setdefault("instance", value)
            else:
                key, parse = options[word]
                try:
                    sync[key] = parse(value)
                except _Bad as exc:
                    c.skip(stmt, kp, f"{word}: {exc}; ignored")
            i += 2
            continue
        if i == 1:  # the old positional form: IFACE INSTANCE [SYNCID]
            sync["instance"] = word
        elif i == 2 and "syncid" not in sync:
            try:
                sync["syncid"] = _bounded(0, 255)(word)
                c.skip(stmt, kp, "write the syncid as 'id N' (keepalived warns too); carried over")
            except _Bad as exc:
                c.skip(stmt, kp, f"syncid: {exc}; ignored")
        else:
            c.skip(stmt, kp, f"unknown option {word!r} ignored")
        i += 1
    c.put(target, "lvs_sync_daemon", sync, stmt, kp)


def _bounded(low: int, high: int) -> Callable[[str], int]:
    def parse(text: str) -> int:
        value = _int(text)
        if not low <= value <= high:
            raise _Bad(f"{value} is not in {low}..{high}")
        return value

    return parse


def _multicast(text: str) -> str:
    if not ipaddress.ip_address(_ip(text)).is_multicast:
        raise _Bad(f"{text} is not a multicast address")
    return _ip(text)


def _lvs_timeouts(c: _Converter, stmt: Statement, target: dict[str, Any], kp: str) -> None:
    """`lvs_timeouts [tcp N] [tcpfin N] [udp N]` (seconds, 0..31 days)."""
    words = list(stmt.args)
    timeouts: dict[str, int] = dict(target.get("lvs_timeouts", {}))
    if len(words) < 2:
        c.skip(stmt, kp, "needs at least one option (tcp, tcpfin or udp) and its value")
        return
    parse = _bounded(0, 86400 * 31)
    i = 0
    while i < len(words):
        word = words[i]
        if word not in ("tcp", "tcpfin", "udp"):
            c.skip(stmt, kp, f"unknown option {word!r} ignored")
            i += 1
            continue
        if i + 1 >= len(words):
            c.skip(stmt, kp, f"{word} needs a value; ignored")
            break
        try:
            timeouts[word] = parse(words[i + 1])
        except _Bad as exc:
            c.skip(stmt, kp, f"{word}: {exc}; ignored")
        i += 2
    if timeouts:
        c.put(target, "lvs_timeouts", timeouts, stmt, kp)


def _smtp_server(c: _Converter, stmt: Statement, target: dict[str, Any], kp: str) -> None:
    """`smtp_server IP|NAME [PORT]`."""
    if not 1 <= len(stmt.args) <= 2:
        c.skip(stmt, kp, "needs a server and optionally a port; not carried over")
        return
    host, port = stmt.args[0], (stmt.args[1] if len(stmt.args) == 2 else None)
    try:
        number = _bounded(1, 65535)(port) if port is not None else None
        try:
            address = ipaddress.ip_address(host)
            text = f"[{address}]" if address.version == 6 and number else str(address)
        except ValueError:
            text = host  # a host name, as keepalived resolves it
    except _Bad as exc:
        c.skip(stmt, kp, f"{exc}; not carried over")
        return
    c.put(target, "smtp_server", f"{text}:{number}" if number else text, stmt, kp)


def _smtp_connect_timeout(
    c: _Converter, stmt: Statement, target: dict[str, Any], kp: str
) -> None:
    value = c.value(stmt, kp, _int)
    if value is _DROPPED:
        return
    if value == 0:  # keepalived: "must be greater than 0, setting to 1"
        c.skip(stmt, kp, "0 is taken as 1 (as keepalived does)")
        value = 1
    c.put(target, "smtp_connect_timeout", value, stmt, kp)


def _email_list(c: _Converter, stmt: Statement, target: dict[str, Any], kp: str) -> None:
    """`notification_email { ADDRESS ... }`: one or more addresses per line."""
    items: list[Any] = target.setdefault("notification_email", [])
    c.origin_once(target, "notification_email", stmt, kp)
    for entry in c.block(stmt, kp):
        for address in (entry.keyword, *entry.args):
            c.append(items, address, entry, kp)
    if not items:
        c.skip(stmt, kp, "empty notification_email block (keepalived warns too)")
        del target["notification_email"]


def _fifo(key: str) -> Handler:
    """`notify_fifo FILE [username [groupname]]`."""

    def handle(c: _Converter, stmt: Statement, target: dict[str, Any], kp: str) -> None:
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


def _checker_file(c: _Converter, stmt: Statement, target: dict[str, Any], kp: str) -> None:
    """FILE_CHECK's `track_file NAME`."""
    value = c.value(stmt, kp, _text)
    if value is not _DROPPED:
        c.put(target, "track_file", value, stmt, kp)


_HTTP_PROTOCOL = _choice("1.0", "1.0C", "1.0K", "1.1", upper=True)


def _http_protocol(c: _Converter, stmt: Statement, target: dict[str, Any], kp: str) -> None:
    """HTTP_GET's `http_protocol`: 1.0, 1.0C, 1.1. keepalived 2.2.7's checker could build
    a 1.0K request (Connection: keep-alive) but its config parser turns the word down
    ("Invalid http_protocol version 1.0K") and keeps 1.0: so does the import (the YAML
    takes `http_protocol: 1.0K` for those who want it)."""
    value = c.value(stmt, kp, _HTTP_PROTOCOL)
    if value is _DROPPED:
        return
    if value == "1.0K":
        c.skip(stmt, kp, "keepalived rejects 1.0K (\"Invalid http_protocol version\") and "
               "sends 1.0 requests; so does the import (http_protocol: 1.0K in the YAML "
               "asks for keep-alive)", same=True)
        return
    c.put(target, "http_protocol", value, stmt, kp)


def _hex_words(key: str) -> Handler:
    """UDP_CHECK's `payload HEX...` (the words joined, as keepalived does)."""

    def handle(c: _Converter, stmt: Statement, target: dict[str, Any], kp: str) -> None:
        if not stmt.args:
            c.skip(stmt, kp, "needs a hex string; not carried over")
            return
        c.put(target, key, " ".join(stmt.args), stmt, kp)

    return handle


def _require_reply(c: _Converter, stmt: Statement, target: dict[str, Any], kp: str) -> None:
    """UDP_CHECK's `require_reply [HEX...]`."""
    c.put(target, "require_reply", " ".join(stmt.args) if stmt.args else True, stmt, kp)


def _script_user(c: _Converter, stmt: Statement, target: dict[str, Any], kp: str) -> None:
    _user("script_user", None)(c, stmt, target, kp)


def _min_garp(c: _Converter, stmt: Statement, target: dict[str, Any], kp: str) -> None:
    if c.flag(stmt, kp, valued=True):
        c.min_garp = stmt


def _lvs_flush_on_stop(c: _Converter, stmt: Statement, target: dict[str, Any], kp: str) -> None:
    if stmt.args and stmt.args[0] != "VS":
        c.skip(stmt, kp, f"unknown word {stmt.args[0]!r} ignored")
    c.put(target, "lvs_flush_on_stop", True, stmt, kp)


def _vrrp_script_weight(c: _Converter, stmt: Statement, target: dict[str, Any], kp: str) -> None:
    if not stmt.args:
        c.skip(stmt, kp, "needs a value; not carried over")
        return
    out: dict[str, Any] = {}
    _weight_and_reverse(c, stmt, ("weight", *stmt.args), kp, out)
    for key, value in out.items():
        c.put(target, key, value, stmt, kp)


def _process(c: _Converter, stmt: Statement, target: dict[str, Any], kp: str) -> None:
    """`process NAME [PARAM...]`: one word as text, several (or one with a space) as a list."""
    if not stmt.args:
        c.skip(stmt, kp, "needs a process name; not carried over")
        return
    if "process" in target:  # keepalived: "Process already set ... - ignoring"
        c.skip(stmt, kp, "process already set; ignored, as keepalived does", same=True)
        return
    words = list(stmt.args)
    simple = len(words) == 1 and not any(ch.isspace() or ch in "'\"\\" for ch in words[0])
    c.put(target, "process", words[0] if simple else words, stmt, kp)


def _param_match(c: _Converter, stmt: Statement, target: dict[str, Any], kp: str) -> None:
    word = stmt.args[0] if stmt.args else "exact"
    if word not in ("exact", "initial", "partial") or (word == "exact" and stmt.args):
        c.skip(stmt, kp, f"{word!r} is not initial|partial: keepalived ignores it, and so "
               "does the import", same=True)
        return
    c.put(target, "param_match", word, stmt, kp)


def _init_file(c: _Converter, stmt: Statement, target: dict[str, Any], kp: str) -> None:
    words = list(stmt.args)
    value = 0
    if words and words[0] != "overwrite":
        try:
            value = _int(words.pop(0))
        except _Bad as exc:
            c.skip(stmt, kp, f"{exc}; not carried over")
            return
    if "overwrite" in words:
        c.skip(stmt, kp, "overwrite is not supported (an existing file is kept)")
    c.put(target, "init_file", value, stmt, kp)


def _sync_group_members(c: _Converter, stmt: Statement, target: dict[str, Any], kp: str) -> None:
    members: list[Any] = target.setdefault("group", [])
    c.origin_once(target, "group", stmt, kp)
    for entry in c.block(stmt, kp):
        c.append(members, entry.keyword, entry, kp)
        if entry.args or entry.block is not None:
            c.skip(entry, kp, "one instance name per line; the rest is ignored")


def _positive_timer(key: str) -> Handler:
    """A timer keepalived refuses at 0 ("'0' is invalid"), keeping its default of 0."""

    def handle(c: _Converter, stmt: Statement, target: dict[str, Any], kp: str) -> None:
        if stmt.args and stmt.args[0] in ("0", "0.0"):
            c.skip(stmt, kp, "keepalived refuses 0 (\"is invalid\") and keeps its default, "
                   "which is 0 too; so does the import", same=True)
            return
        _set(key, _timer)(c, stmt, target, kp)

    return handle


def _persistence_timeout(c: _Converter, stmt: Statement, target: dict[str, Any], kp: str) -> None:
    if not stmt.args:  # keepalived: no value means 6 minutes
        c.put(target, "persistence_timeout", 360, stmt, kp)
        return
    if stmt.args[0] == "0":
        c.skip(stmt, kp, "keepalived refuses 0 (\"persistence_timeout invalid\", it takes "
               "1..2678400) and leaves persistence off; so does the import", same=True)
        return
    _set("persistence_timeout", _int)(c, stmt, target, kp)


def _state(c: _Converter, stmt: Statement, target: dict[str, Any], kp: str) -> None:
    word = stmt.args[0] if stmt.args else ""
    if word in ("MASTER", "BACKUP"):  # case-sensitive, as keepalived
        c.put(target, "state", word, stmt, kp)
        return
    c.skip(stmt, kp, f"keepalived knows no state {word!r} (only MASTER and BACKUP, in "
           "capitals) and starts as BACKUP; so does the import", same=True)
    c.put(target, "state", "BACKUP", stmt, kp)


def _lb_algo(c: _Converter, stmt: Statement, target: dict[str, Any], kp: str) -> None:
    word = stmt.args[0] if stmt.args else ""
    try:
        c.put(target, "lb_algo", _LB_ALGO(word), stmt, kp)
    except _Bad:
        c.skip(stmt, kp, f"keepalived ignores the unknown scheduler {word!r} (names are "
               "lower case) and uses wlc; so does the import", same=True)


def _lb_kind(key: str) -> Handler:
    def handle(c: _Converter, stmt: Statement, target: dict[str, Any], kp: str) -> None:
        if not stmt.args:
            c.skip(stmt, kp, "needs a value; not carried over")
            return
        try:
            kind = _LB_KIND(stmt.args[0])
        except _Bad:
            c.skip(stmt, kp, f"keepalived rejects {stmt.args[0]!r} (it knows NAT, DR and TUN, "
                   "in capitals) and keeps the method it had, NAT by default; so does the "
                   "import", same=True)
            return
        if len(stmt.args) > 1:
            c.skip(stmt, kp, f"tunnel options {' '.join(stmt.args[1:])!r} are not supported; "
                   "plain ipip is used")
        c.put(target, key, kind, stmt, kp)

    return handle


def _sorry_server(c: _Converter, stmt: Statement, target: dict[str, Any], kp: str) -> None:
    if not 1 <= len(stmt.args) <= 2:
        c.skip(stmt, kp, "needs IP [PORT]; not carried over")
        return
    try:
        ip = c.address(stmt, kp, stmt.args[0])
        value = _hostport(ip, stmt.args[1] if len(stmt.args) == 2 else None)
    except _Bad as exc:
        c.skip(stmt, kp, f"{exc}; not carried over")
        return
    c.put(target, "sorry_server", value, stmt, kp)


def _real_server(c: _Converter, stmt: Statement, target: dict[str, Any], kp: str) -> None:
    reals: list[Any] = target.setdefault("real_servers", [])
    c.mark(reals, stmt, kp)
    args = stmt.args
    if not 1 <= len(args) <= 2:
        c.skip(stmt, kp, "needs IP [PORT]; not carried over")
        return
    rs: dict[str, Any] = {}
    try:
        c.put(rs, "ip", c.address(stmt, kp, args[0]), stmt, kp)
        if len(args) == 2:
            c.put(rs, "port", _int(args[1]), stmt, kp)
    except _Bad as exc:
        c.skip(stmt, kp, f"{exc}; not carried over")
        return
    if stmt.block is not None:  # without one: weight 1 and no checks, as keepalived
        c.walk(stmt.block, _REAL_SERVER, rs, kp)
    c.mark(rs, stmt, kp)
    c.append(reals, rs, stmt, kp)


def _checker(kind: str, table: dict[str, Handler]) -> Handler:
    def handle(c: _Converter, stmt: Statement, target: dict[str, Any], kp: str) -> None:
        check: dict[str, Any] = {}
        hosts: list[tuple[Statement, dict[str, Any]]] = []
        for entry in c.block(stmt, kp):
            if kind == "SMTP_CHECK" and entry.keyword == "host":
                host: dict[str, Any] = {}
                c.walk(c.block(entry, f"{kp}.host"), _SMTP_HOST, host, f"{kp}.host")
                hosts.append((entry, host))
                continue
            c.walk((entry,), table, check, kp)
        # SMTP_CHECK's old `host` blocks: one check per host, all must pass (as keepalived)
        checks = [check] if not hosts else [{**check, **host} for _, host in hosts]
        for i, one in enumerate(checks):
            if hosts:
                for key in one:
                    origin = c.origins.get((id(hosts[i][1]), key)) or c.origins.get(
                        (id(check), key)
                    )
                    if origin is not None:
                        c.origins[(id(one), key)] = origin
            c.mark(one, stmt, kp)
            existing = target.get(kind)
            if existing is None:
                c.put(target, kind, one, stmt, kp)
            else:
                if isinstance(existing, dict):
                    existing = [existing]
                    c.origins[(id(existing), 0)] = c.origins[(id(target), kind)]
                    target[kind] = existing
                c.append(existing, one, stmt, kp)

    return handle


def _url(c: _Converter, stmt: Statement, target: dict[str, Any], kp: str) -> None:
    urls: list[Any] = target.setdefault("url", [])
    c.origin_once(target, "url", stmt, kp)
    url: dict[str, Any] = {}
    c.walk(c.block(stmt, kp), _URL, url, kp)
    if "path" not in url:
        c.skip(stmt, kp, "url without a path; not carried over")
    else:
        c.mark(url, stmt, kp)
        c.append(urls, url, stmt, kp)
    if not urls:
        del target["url"]


def _status_code(c: _Converter, stmt: Statement, target: dict[str, Any], kp: str) -> None:
    if not stmt.args:
        c.skip(stmt, kp, "needs a value; not carried over")
        return
    text = " ".join(stmt.args)
    c.put(target, "status_code", int(text) if text.isdigit() else text, stmt, kp)


def _unsupported_checker(name: str) -> Handler:
    def handle(c: _Converter, stmt: Statement, target: dict[str, Any], kp: str) -> None:
        c.skip(
            stmt, kp,
            f"{name} is not supported; the real server is imported without this check",
        )

    return handle


def _nftables(c: _Converter, stmt: Statement, target: dict[str, Any], kp: str) -> None:
    """`nftables [TABLENAME]`: the no_accept table (without a name, hacluster's own)."""
    if stmt.args:
        if re.match(r"^[A-Za-z][A-Za-z0-9_]{0,63}$", stmt.args[0]) and stmt.args[0] != "hacluster":
            c.put(target, "nftables", stmt.args[0], stmt, kp)
        else:
            c.skip(stmt, kp, f"table name {stmt.args[0]!r} not carried over (letters, digits "
                   "and _ only, not 'hacluster'): hacluster_vrrp is used", same=True)
    if len(stmt.args) > 1:
        c.skip(stmt, kp, f"extra words ignored: {' '.join(stmt.args[1:])!r}", same=True)


def _vrrp_iptables(c: _Converter, stmt: Statement, target: dict[str, Any], kp: str) -> None:
    # keepalived 2.2.7 as Debian builds it: "iptables not supported, using nftables instead"
    c.skip(stmt, kp, "no_accept is carried out with an nftables table "
           "(global_defs.nftables), as keepalived does without iptables", same=True)


# --------------------------------------------------------------------------- keyword tables

_GLOBAL: dict[str, Handler] = {
    "router_id": _set("router_id", _text),
    "lvs_id": _set("router_id", _text),  # old name
    "vrrp_version": _set("vrrp_version", _int),
    "vrrp_mcast_group4": _address("vrrp_mcast_group4"),
    "vrrp_mcast_group6": _address("vrrp_mcast_group6"),
    "vrrp_garp_master_delay": _set("vrrp_garp_master_delay", _int),
    "vrrp_garp_master_repeat": _set("vrrp_garp_master_repeat", _int),
    "vrrp_garp_master_refresh": _set("vrrp_garp_master_refresh", _int),
    "vrrp_garp_master_refresh_repeat": _set("vrrp_garp_master_refresh_repeat", _int),
    "vrrp_garp_lower_prio_delay": _set("vrrp_garp_lower_prio_delay", _int),
    "vrrp_garp_lower_prio_repeat": _set("vrrp_garp_lower_prio_repeat", _int),
    "vrrp_lower_prio_no_advert": _flag("vrrp_lower_prio_no_advert"),
    "vrrp_strict": _flag("vrrp_strict", valued=False),
    "vrrp_notify_priority_changes": _flag("vrrp_notify_priority_changes"),
    "vrrp_skip_check_adv_addr": _flag("vrrp_skip_check_adv_addr", valued=False),
    "vrrp_check_unicast_src": _flag("vrrp_check_unicast_src", valued=False),
    "vrrp_higher_prio_send_advert": _flag("vrrp_higher_prio_send_advert"),
    "vrrp_garp_interval": _positive_timer("vrrp_garp_interval"),
    "vrrp_gna_interval": _positive_timer("vrrp_gna_interval"),
    "vrrp_down_timer_adverts": _set("vrrp_down_timer_adverts", _int),
    "vrrp_min_garp": _min_garp,
    "enable_script_security": _flag("enable_script_security", valued=False),
    "script_user": _script_user,
    "lvs_sync_daemon": _lvs_sync_daemon,
    "lvs_timeouts": _lvs_timeouts,
    "lvs_flush": _flag("lvs_flush", valued=False),
    "notification_email": _email_list,
    "notification_email_from": _set("notification_email_from", _text),
    "smtp_server": _smtp_server,
    "smtp_helo_name": _set("smtp_helo_name", _text),
    "smtp_connect_timeout": _smtp_connect_timeout,
    "smtp_alert": _flag("smtp_alert"),
    "smtp_alert_vrrp": _flag("smtp_alert_vrrp"),
    "smtp_alert_checker": _flag("smtp_alert_checker"),
    "no_email_faults": _flag("no_email_faults", valued=False),
    "notify_fifo": _fifo("notify_fifo"),
    "notify_fifo_script": _cmd("notify_fifo_script"),
    "vrrp_notify_fifo": _fifo("vrrp_notify_fifo"),
    "vrrp_notify_fifo_script": _cmd("vrrp_notify_fifo_script"),
    "lvs_notify_fifo": _fifo("lvs_notify_fifo"),
    "lvs_notify_fifo_script": _cmd("lvs_notify_fifo_script"),
    "lvs_flush_on_stop": _lvs_flush_on_stop,
    "nftables": _nftables,
    "nftables_priority": _set("nftables_priority", _int),
    "nftables_counters": _flag("nftables_counters", valued=False),
    "nftables_ifindex": _flag("nftables_ifindex", valued=False),
    "vrrp_iptables": _vrrp_iptables,
    "vrrp_ipsets": _vrrp_iptables,  # iptables' sets for the same drop rules
    "fifo_write_vrrp_states_on_reload": _flag("fifo_write_vrrp_states_on_reload",
                                              valued=False),
}

_SCRIPT: dict[str, Handler] = {
    "script": _cmd("script", user_words=False),
    "interval": _set("interval", _timer),
    "timeout": _set("timeout", _timer),
    "weight": _vrrp_script_weight,
    "rise": _set("rise", _int),
    "fall": _set("fall", _int),
    "user": _user("user", "group"),
    "init_fail": _flag("init_fail", valued=False),
}

_TRACK_FILE: dict[str, Handler] = {
    "file": _set("file", _text),
    "weight": _vrrp_script_weight,
    "init_file": _init_file,
}

_TRACK_PROCESS: dict[str, Handler] = {
    "process": _process,
    "param_match": _param_match,
    "weight": _vrrp_script_weight,
    "quorum": _set("quorum", _int),
    "quorum_max": _set("quorum_max", _int),
    "delay": _set("delay", _timer),
    "terminate_delay": _set("terminate_delay", _timer),
    "fork_delay": _set("fork_delay", _timer),
    "full_command": _flag("full_command", valued=False),
}

_TRACKING: dict[str, Handler] = {
    "track_interface": _track_list("track_interface"),
    "track_script": _track_list("track_script"),
    "track_file": _track_list("track_file"),
    "track_process": _track_list("track_process"),
    "notify_master": _cmd("notify_master"),
    "notify_backup": _cmd("notify_backup"),
    "notify_fault": _cmd("notify_fault"),
    "notify_stop": _cmd("notify_stop"),
    "notify": _cmd("notify"),
    "smtp_alert": _flag("smtp_alert"),
}

_INSTANCE: dict[str, Handler] = {
    **_TRACKING,
    "state": _state,
    "interface": _set("interface", _text),
    "virtual_router_id": _set("virtual_router_id", _int),
    "priority": _set("priority", _int),
    "advert_int": _set("advert_int", _timer),
    "version": _set("version", _int),
    "nopreempt": _flag("nopreempt", valued=False),
    "no_preempt": _flag("nopreempt", valued=False),
    # `preempt`: keepalived keeps it for old files
    "preempt": _flag("nopreempt", invert=True, valued=False),
    "preempt_delay": _set("preempt_delay", _timer),
    "unicast_src_ip": _address("unicast_src_ip"),
    "vrrp_unicast_bind": _address("unicast_src_ip"),  # old name
    "unicast_peer": _unicast_peers,
    "vrrp_unicast_peer": _unicast_peers,  # old name
    "unicast_ttl": _set("unicast_ttl", _int),
    "mcast_src_ip": _address("mcast_src_ip"),
    "mcast_dst_ip": _address("mcast_dst_ip"),
    "authentication": _authentication,
    "virtual_ipaddress": _vip_list("virtual_ipaddress"),
    "virtual_ipaddress_excluded": _vip_list("virtual_ipaddress_excluded"),
    "virtual_routes": _route_list("virtual_routes"),
    "virtual_rules": _route_list("virtual_rules"),
    "dont_track_primary": _flag("dont_track_primary", valued=False),
    "accept": _flag("accept", valued=False),
    "no_accept": _flag("accept", invert=True, valued=False),
    "garp_master_delay": _set("garp_master_delay", _int),
    "garp_master_repeat": _set("garp_master_repeat", _int),
    "garp_master_refresh": _set("garp_master_refresh", _int),
    "garp_master_refresh_repeat": _set("garp_master_refresh_repeat", _int),
    "garp_lower_prio_delay": _set("garp_lower_prio_delay", _int),
    "garp_lower_prio_repeat": _set("garp_lower_prio_repeat", _int),
    "lower_prio_no_advert": _flag("lower_prio_no_advert"),
    "higher_prio_send_advert": _flag("higher_prio_send_advert"),
    "strict_mode": _flag("strict_mode"),
    "use_vmac": _use_vmac,
    "vmac_xmit_base": _flag("vmac_xmit_base", valued=False),
    "notify_priority_changes": _flag("notify_priority_changes"),
    "skip_check_adv_addr": _flag("skip_check_adv_addr"),
    "check_unicast_src": _flag("check_unicast_src", valued=False),
    "down_timer_adverts": _set("down_timer_adverts", _int),
    "lvs_sync_daemon_interface": _lvs_sync_daemon_interface,  # old form
    "native_ipv6": _ignore_with("not needed: the addresses give the family; left out",
                                same=True),
    "debug": _ignore_with("keepalived's debug level for the instance; left out", same=True),
}

_SYNC_GROUP: dict[str, Handler] = {
    **_TRACKING,
    "group": _sync_group_members,
    "notify_priority_changes": _flag("notify_priority_changes"),
}

_CHECK_TIMING: dict[str, Handler] = {
    "retry": _set("retry", _int),
    "nb_get_retry": _set("retry", _int),  # old name
    "delay_before_retry": _set("delay_before_retry", _timer),
    "delay_loop": _set("delay_loop", _timer),
    "warmup": _set("warmup", _timer),
    "alpha": _flag("alpha"),
    "log_all_failures": _flag("log_all_failures"),
}

_NETWORK_CHECK: dict[str, Handler] = {
    **_CHECK_TIMING,
    "connect_ip": _address("connect_ip"),
    "connect_port": _set("connect_port", _int),
    "bindto": _address("bindto"),
    "bind_port": _set("bind_port", _int),
    "bind_if": _set("bind_if", _text),
    "fwmark": _set("fwmark", _int),
    "connect_timeout": _set("connect_timeout", _timer),
}

_SMTP_HOST: dict[str, Handler] = {
    k: _NETWORK_CHECK[k]
    for k in ("connect_ip", "connect_port", "bindto", "bind_port", "bind_if", "fwmark",
              "connect_timeout")
}

_URL: dict[str, Handler] = {
    "path": _set("path", _text),
    "digest": _set("digest", _text),
    "status_code": _status_code,
    "virtualhost": _set("virtualhost", _text),
    "regex": _set("regex", _text),
    "regex_no_match": _flag("regex_no_match", valued=False),
}

_HTTP_CHECK: dict[str, Handler] = {
    **_NETWORK_CHECK,
    "url": _url,
    "http_protocol": _http_protocol,
    "virtualhost": _set("virtualhost", _text),
    "fast_recovery": _flag("fast_recovery"),
}

_CHECKERS: dict[str, Handler] = {
    "HTTP_GET": _checker("HTTP_GET", _HTTP_CHECK),
    "SSL_GET": _checker("SSL_GET", {**_HTTP_CHECK, "enable_sni": _flag("enable_sni")}),
    "TCP_CHECK": _checker("TCP_CHECK", _NETWORK_CHECK),
    "SMTP_CHECK": _checker(
        "SMTP_CHECK", {**_NETWORK_CHECK, "helo_name": _set("helo_name", _text)}
    ),
    "DNS_CHECK": _checker(
        "DNS_CHECK",
        {
            **_NETWORK_CHECK,
            "type": _set("type", _choice("A", "NS", "CNAME", "SOA", "MX", "TXT", "AAAA",
                                         upper=True)),
            "name": _set("name", _text),
        },
    ),
    "MISC_CHECK": _checker(
        "MISC_CHECK",
        {
            **_CHECK_TIMING,
            "misc_path": _cmd("misc_path", user_words=False),
            "misc_timeout": _set("misc_timeout", _timer),
            "misc_dynamic": _flag("misc_dynamic", valued=False),
            "user": _user("user", "group"),
        },
    ),
    "BFD_CHECK": _unsupported_checker("BFD_CHECK"),
    "PING_CHECK": _checker("PING_CHECK", _NETWORK_CHECK),
    "ICMP_CHECK": _unsupported_checker("ICMP_CHECK"),
    "UDP_CHECK": _checker(
        "UDP_CHECK",
        {
            **_NETWORK_CHECK,
            "payload": _hex_words("payload"),
            "require_reply": _require_reply,
            "min_reply_length": _set("min_reply_length", _int),
            "max_reply_length": _set("max_reply_length", _int),
        },
    ),
    "FILE_CHECK": _checker(
        "FILE_CHECK", {"track_file": _checker_file, "weight": _vrrp_script_weight}
    ),
}

_SERVER_TIMING: dict[str, Handler] = {
    "connect_timeout": _set("connect_timeout", _timer),
    "retry": _set("retry", _int),
    "nb_get_retry": _set("retry", _int),  # old name
    "delay_before_retry": _set("delay_before_retry", _timer),
    "warmup": _set("warmup", _timer),
    "delay_loop": _set("delay_loop", _timer),
    "virtualhost": _set("virtualhost", _text),
    # a virtual server's flags ignore a value; a real server's read it (keepalived 2.2.7)
    "inhibit_on_failure": _flag("inhibit_on_failure", valued=False),
    "alpha": _flag("alpha", valued=False),
}

_REAL_SERVER: dict[str, Handler] = {
    **_SERVER_TIMING,
    **_CHECKERS,
    "inhibit_on_failure": _flag("inhibit_on_failure"),
    "alpha": _flag("alpha"),
    "weight": _set("weight", _int),
    "lvs_method": _lb_kind("lb_kind"),
    "lb_kind": _lb_kind("lb_kind"),  # old name
    "notify_up": _cmd("notify_up"),
    "notify_down": _cmd("notify_down"),
    "smtp_alert": _flag("smtp_alert"),
    "uthreshold": _set("uthreshold", _int),
    "lthreshold": _set("lthreshold", _int),
}

_VIRTUAL_SERVER: dict[str, Handler] = {
    **_SERVER_TIMING,
    "lvs_sched": _lb_algo,
    "lb_algo": _lb_algo,  # old name
    "lvs_method": _lb_kind("lb_kind"),
    "lb_kind": _lb_kind("lb_kind"),  # old name
    "protocol": _set("protocol", _PROTOCOL),
    "persistence_timeout": _persistence_timeout,
    "ops": _flag("ops", valued=False),
    "ha_suspend": _flag("ha_suspend", valued=False),
    "omega": _flag("omega", valued=False),
    "quorum": _set("quorum", _int),
    "hysteresis": _set("hysteresis", _int),
    "quorum_up": _cmd("quorum_up"),
    "quorum_down": _cmd("quorum_down"),
    "ip_family": _set("ip_family", _choice("inet", "inet6")),
    "sorry_server": _sorry_server,
    "smtp_alert": _flag("smtp_alert"),
    "sorry_server_inhibit": _flag("sorry_server_inhibit", valued=False),
    "sorry_server_lvs_method": _lb_kind("sorry_server_lb_kind"),
    "sorry_server_lb_kind": _lb_kind("sorry_server_lb_kind"),  # old name
    "real_server": _real_server,
}

# Keywords keepalived knows that have no counterpart here: noted as "not supported"
# rather than "unknown keyword", so a reader can tell a typo from a missing feature.
_KNOWN_UNSUPPORTED = frozenset(
    """
    enable_snmp_vrrp
    enable_snmp_checker enable_snmp_rfc enable_snmp_rfcv2 enable_snmp_rfcv3 enable_traps
    snmp_socket enable_dbus dbus_service_name vrrp_nftables
    vrrp_priority checker_priority bfd_priority
    vrrp_no_swap checker_no_swap bfd_no_swap vrrp_rt_priority checker_rt_priority
    bfd_rt_priority vrrp_rlimit_rttime checker_rlimit_rttime bfd_rlimit_rttime
    default_interface dynamic_interfaces
    vrrp_garp_extra_if
    vrrp_netlink_cmd_rcv_bufs vrrp_netlink_monitor_rcv_bufs vrrp_rx_bufs_policy
    vrrp_rx_bufs_multiplier vrrp_startup_delay vrrp_process_name checker_process_name
    bfd_process_name vrrp_cpu_affinity checker_cpu_affinity bfd_cpu_affinity
    checker_log_all_failures vmac_prefix vmac_addr_prefix
    linkbeat_use_polling linkbeat_interfaces net_namespace net_namespace_ipvs
    namespace_with_ipsets instance startup_script startup_script_timeout shutdown_script
    shutdown_script_timeout max_auto_priority min_auto_priority_delay umask
    random_seed nftables_ipvs
    nftables_ipvs_priority nftables_ipvs_start_fwmark local_name rs_init_notifies
    no_checker_emails reload_time_file reload_repeat reload_file reload_check_config
    config_save_dir tmp_config_directory disable_local_igmp
    process_monitor_rcv_bufs process_monitor_rcv_bufs_force lvs_netlink_cmd_rcv_bufs
    lvs_netlink_cmd_rcv_bufs_force lvs_netlink_monitor_rcv_bufs
    lvs_netlink_monitor_rcv_bufs_force vrrp_netlink_cmd_rcv_bufs_force
    vrrp_netlink_monitor_rcv_bufs_force include_check data_use_instance vrf
    use_vmac_addr use_ipvlan track_src_ip
    unicast_fault_no_peer old_unicast_checksum garp_extra_if garp_extra_if_vmac
    promote_secondaries debug notify_master_rx_lower_pri
    notify_deleted kernel_rx_buf_size track_bfd
    global_tracking sync_group_tracking_weight persistence_granularity persistence_engine
    flag-1 flag-2 flag-3 sh-port sh-fallback mh-port mh-fallback snmp_name regex_options
    regex_stack regex_min_offset regex_max_offset
    garp_group bfd_instance SSL interface_up_down_delays
    track_file_check
    """.split()  # noqa: SIM905 - a word list reads better than 150 quoted strings
)


# Keywords that only tune keepalived's own processes (scheduling priority, memory
# locking, CPU affinity, process names, netlink buffer sizes): they change nothing in
# what the cluster does, so leaving them out changes no behaviour. hacluster has its
# own process model.
_NO_EFFECT = frozenset(
    """
    vrrp_priority checker_priority bfd_priority vrrp_no_swap checker_no_swap bfd_no_swap
    vrrp_rt_priority checker_rt_priority bfd_rt_priority vrrp_rlimit_rttime
    checker_rlimit_rttime bfd_rlimit_rttime vrrp_cpu_affinity checker_cpu_affinity
    bfd_cpu_affinity vrrp_process_name checker_process_name bfd_process_name
    max_auto_priority min_auto_priority_delay vrrp_netlink_cmd_rcv_bufs
    vrrp_netlink_cmd_rcv_bufs_force vrrp_netlink_monitor_rcv_bufs
    vrrp_netlink_monitor_rcv_bufs_force lvs_netlink_cmd_rcv_bufs
    lvs_netlink_cmd_rcv_bufs_force lvs_netlink_monitor_rcv_bufs
    lvs_netlink_monitor_rcv_bufs_force process_monitor_rcv_bufs
    process_monitor_rcv_bufs_force vrrp_rx_bufs_policy vrrp_rx_bufs_multiplier
    kernel_rx_buf_size
    """.split()  # noqa: SIM905 - a word list reads better than quoted strings
)


# --------------------------------------------------------------------------- validation


def _render(
    value: Any, path: str, where: dict[str, tuple[Any, Any]], container: Any = None, key: Any = None
) -> Any:
    """A clean copy without dropped items, and for every path the (container, key) it came from."""
    where[path] = (container, key)
    if isinstance(value, dict):
        out: dict[str, Any] = {}
        for k, v in value.items():
            if v is _DROPPED:
                continue
            child = f"{path}.{k}" if path else k
            out[k] = _render(v, child, where, value, k)
        return out
    if isinstance(value, list):
        items: list[Any] = []
        for i, v in enumerate(value):
            if v is _DROPPED:
                continue
            items.append(_render(v, f"{path}[{len(items)}]", where, value, i))
        return items
    return value


def _dump(data: dict[str, Any]) -> str:
    return yaml.dump(data, Dumper=_YAML_DUMPER, sort_keys=False, default_flow_style=False,
                     allow_unicode=True, width=100)


def _parent_paths(path: str) -> Iterator[str]:
    while path:
        yield path
        cut = max(path.rfind("."), path.rfind("["))
        path = path[:cut] if cut > 0 else ""


# Keys an entry cannot do without (the model has no default): when the loader refuses
# one, the entry holding it is left out rather than the key.
_REQUIRED_KEYS = frozenset(
    {"interface", "virtual_router_id", "virtual_ipaddress", "script", "file", "group", "ip",
     "port", "fwmark", "path", "misc_path"}
)


# What the loader refuses that keepalived 2.2.7 also ignores (with an error message),
# so that leaving it out behaves the same: (key path pattern, loader message part).
_KEEPALIVED_IGNORES = (
    # "(VI) track script X not found, ignoring..."
    (re.compile(r"\.track_script\[\d+\]$"), "no vrrp_script named"),
    # "VRRP parsed invalid IP X. skipping IP..." / "Invalid rule to address X"
    (re.compile(r"_(routes|rules)\[\d+\]\.(to|from|via|src)$"), "not an address"),
    # "(VI) track process X not found, ignoring..."
    (re.compile(r"\.track_process\[\d+\]$"), "no vrrp_track_process named"),
    # "Virtual router X specified in sync group G doesn't exist - ignoring"
    (re.compile(r"^vrrp_sync_groups\.[^.]+\.group\[\d+\]$"), "no vrrp_instance named"),
    # "(VI): address family must match VRRP instance [ADDR] - ignoring"
    (re.compile(r"\.virtual_ipaddress\[\d+\]$"), "one instance carries one family"),
    # "vrrp_script S weight W must be in [-253, 253]": weight 0, as here
    (re.compile(r"^vrrp_scripts\.[^.]+\.weight$"), "must be -253..253"),
    # "vrrp script interval must be greater than 0, setting to 1": 1 s, as here
    (re.compile(r"^vrrp_scripts\.[^.]+\.interval$"), ", got 0"),
    # "Real server weight W is outside range 0-65535": weight 1, as here
    (re.compile(r"\.real_servers\[\d+\]\.weight$"), "must be 0..65535"),
)


def _keepalived_ignores_too(key_path: str, message: str) -> bool:
    return any(path.search(key_path) and part in message for path, part in _KEEPALIVED_IGNORES)


def _validate(c: _Converter, data: dict[str, Any]) -> tuple[str, dict[str, Any]]:
    """Drop what the loader refuses, noting each, until the YAML loads."""
    for _ in range(200):
        where: dict[str, tuple[Any, Any]] = {}
        clean = _render(data, "", where)
        text = _dump(clean)
        try:
            parse_config(text, "<imported>")
        except ConfigError as exc:
            problems = exc.problems
        else:
            return text, clean
        targets: dict[tuple[int, Any], tuple[Any, Any, str, _Origin | None, bool]] = {}
        for problem in problems:
            for candidate in _parent_paths(problem.key_path):
                if candidate not in where:
                    continue  # a missing key: its parent goes instead
                container, key = where[candidate]
                if isinstance(key, str) and key in _REQUIRED_KEYS and (
                    key != "group" or any(container is g for g in c.groups.values())
                ):  # (`group` is required only of a sync group, not beside a user)
                    continue  # without it the entry is incomplete: the entry goes
                origin = None
                for up in _parent_paths(candidate):
                    if up in where:
                        box, k = where[up]
                        origin = c.origins.get((id(box), k)) or c.origins.get(
                            (id(box[k]) if box is not None else 0, None)
                        )
                        if origin is not None:
                            break
                message = f"{problem.message}; not carried over"
                if candidate != problem.key_path:  # a key it needs: the whole entry goes
                    inner = problem.key_path[len(candidate):].lstrip(".")
                    message = f"{inner}: {message}"
                same = _keepalived_ignores_too(problem.key_path, problem.message)
                if same:
                    message += ", as keepalived ignores it"
                targets.setdefault((id(container), key), (container, key, message, origin, same))
                break
        if not targets:
            break
        for container, key, message, origin, same in targets.values():
            if origin is not None:
                c.skipped.append(Skipped(origin.file, origin.line, origin.keyword, message,
                                         changes_behaviour=not same))
            if isinstance(container, list):
                container[key] = _DROPPED
            else:
                del container[key]
        for section in list(data):  # a section left empty goes too
            if not _render(data[section], "", {}):
                del data[section]
    # Not reached with the loader as it is; keep the output loadable regardless.
    c.skipped.append(Skipped("<imported>", 0, "", "the converted file did not validate; "
                             "nothing carried over"))
    return _dump({}), {}


def convert(statements: tuple[Statement, ...]) -> ImportResult:
    """Map parsed keepalived statements onto hacluster's YAML. Does no I/O."""
    c = _Converter()
    data = c.run(statements)
    text, clean = _validate(c, data)
    return ImportResult(yaml_text=text, data=clean, skipped=tuple(c.skipped))


def import_keepalived(path: str | Path, config_id: str | None = None) -> ImportResult:
    """Read the keepalived.conf at `path` (and its includes) and convert it.

    Raises `KeepalivedSyntaxError` when it cannot be read or parsed.
    """
    return _finish(*read_keepalived(path, config_id), str(path))


def import_keepalived_text(
    text: str, filename: str = "<stdin>", base: str | Path = ".", config_id: str | None = None
) -> ImportResult:
    """Convert keepalived.conf `text`; includes in it are relative to `base`."""
    return _finish(*read_keepalived_text(text, filename, base, config_id), filename)


def _finish(
    statements: tuple[Statement, ...], read_notes: tuple[Skipped, ...], main_file: str
) -> ImportResult:
    result = convert(statements)
    skipped = sorted(
        (*read_notes, *result.skipped), key=lambda s: (s.file != main_file, s.file, s.line)
    )
    return ImportResult(yaml_text=result.yaml_text, data=result.data, skipped=tuple(skipped))
