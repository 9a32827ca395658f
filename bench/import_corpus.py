"""keepalived.conf corpus: how many files carry over with nothing dropped; prints the count.

Imports every file of tests/data/keepalived/corpus (or the files given) with
`import-keepalived`'s code, loads the YAML with the real loader, and sorts each note
into "changes behaviour" or "changes nothing" by `Skipped.changes_behaviour` (see
`keepalived_import.py`). A file is carried over when no note of it changes behaviour.
Nothing is asserted. Run:

    .venv/bin/python bench/import_corpus.py [-v] [FILE...]
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from hacluster.config.errors import ConfigError
from hacluster.config.keepalived_import import (
    KeepalivedSyntaxError,
    Skipped,
    import_keepalived,
)
from hacluster.config.loader import parse_config

CORPUS = Path(__file__).resolve().parent.parent / "tests/data/keepalived/corpus"
CONFIG_ID = "lb"  # the corpus's conditional lines are written for config id "lb"


def changes_behaviour(note: Skipped) -> bool:
    # an importer without the classification counts every note as a change
    return bool(getattr(note, "changes_behaviour", True))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("files", nargs="*", type=Path)
    parser.add_argument("-v", "--verbose", action="store_true", help="print every note")
    args = parser.parse_args(argv)
    files = args.files or sorted(CORPUS.glob("*.conf"))
    carried = quiet = loads = 0
    for path in files:
        try:
            result = import_keepalived(path, CONFIG_ID)
        except KeepalivedSyntaxError as exc:
            print(f"{path.name}: REFUSED: {exc}")
            continue
        try:
            parse_config(result.yaml_text, f"{path.name}.yaml")
            loads += 1
        except ConfigError as exc:
            print(f"{path.name}: check-config refuses the output: {exc}")
        changing = [n for n in result.skipped if changes_behaviour(n)]
        carried += not changing
        quiet += not result.skipped
        status = "carried over" if not changing else f"{len(changing)} dropped"
        print(f"{path.name}: {status}, {len(result.skipped) - len(changing)} notes "
              "that change nothing")
        for note in result.skipped if args.verbose else changing:
            mark = "  !" if changes_behaviour(note) else "   "
            print(f"{mark} {note}")
    total = len(files)
    print(f"\ncarried over with nothing dropped that changes behaviour: {carried}/{total} "
          f"({100 * carried / max(total, 1):.0f} %)")
    print(f"without any note at all: {quiet}/{total}; output passes check-config: "
          f"{loads}/{total}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
