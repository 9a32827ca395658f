"""keepalived.conf into a tree of statements: includes, $PARAM substitution, @conditionals."""

from __future__ import annotations

import glob
import os
import re
import stat
from pathlib import Path
from typing import Any

from hacluster.config.keepalived.lexer import _read_text, _split_line, _Token
from hacluster.config.keepalived.statements import (
    KeepalivedSyntaxError,
    Skipped,
    Statement,
    _Unreadable,
)

_MAX_INCLUDE_DEPTH = 16
_MAX_LINE = 65536  # a line grown past this by parameter substitution is a definition loop
_INCLUDE_WORDS = ("include", "includer", "includem", "includew", "includeb", "includea")
_PARAM_DEF_RE = re.compile(r"^\$([A-Za-z_][A-Za-z0-9_]*)=(.*)$", re.DOTALL)
_PARAM_USE_RE = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)\}|\$([A-Za-z_][A-Za-z0-9_]*)(?=\s|$)")
_CONDITIONAL_RE = re.compile(r"^\s*@(\^?)(\S+)\s?(.*)$", re.DOTALL)


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
