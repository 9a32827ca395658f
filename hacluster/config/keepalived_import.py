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

The parts live in `hacluster.config.keepalived`: `lexer` and `reader` read, the
converter (`recorder`, `vrrp_sections`, `server_sections`, `converter`) applies the
keyword tables of `global_defs`, `vrrp` and `virtual_servers`, and `validate` and
`emit` check and print the result. This module is the entry the rest imports.
"""

from __future__ import annotations

from pathlib import Path

from hacluster.config.keepalived.converter import _Converter
from hacluster.config.keepalived.lexer import (  # the fuzz tests compare the two splitters
    _split_line as _split_line,
)
from hacluster.config.keepalived.lexer import (
    _split_quoted_line as _split_quoted_line,
)
from hacluster.config.keepalived.reader import read_keepalived, read_keepalived_text
from hacluster.config.keepalived.statements import (
    ImportResult,
    KeepalivedSyntaxError,
    Skipped,
    Statement,
)
from hacluster.config.keepalived.validate import _validate

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
