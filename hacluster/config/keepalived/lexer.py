"""keepalived.conf text into words: reading one file, quotes, escapes and comments."""

from __future__ import annotations

import gzip
import re
from dataclasses import dataclass
from pathlib import Path

from hacluster.config.keepalived.statements import KeepalivedSyntaxError, _Unreadable

_SLOW_LINE_RE = re.compile(r"[\"'\\]")
_COMMENT_RE = re.compile(r"[#!]")
_WORD_RE = re.compile(r"[{}]|[^\s{}]+")


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
