"""`hacluster import-keepalived FILE`: keepalived.conf as hacluster YAML; lists what is left out."""

from __future__ import annotations

import argparse
import socket
import sys

from hacluster.config.keepalived_import import (
    KeepalivedSyntaxError,
    import_keepalived,
    import_keepalived_text,
)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.description = (
        "Convert a keepalived.conf (and the files it includes) into hacluster YAML on "
        "stdout. Every keyword that cannot be carried over is listed on stderr as "
        "FILE:LINE: keyword: reason. Exit 0 when converted (even with such notes), 1 "
        "when the file cannot be read or parsed."
    )
    parser.add_argument(
        "file", metavar="FILE", help="keepalived configuration file ('-' reads stdin)"
    )
    parser.add_argument(
        "-i",
        "--config-id",
        default=None,
        metavar="ID",
        help="config id for conditional lines (@ID ...), as keepalived -i "
        "(default: the first part of the host name)",
    )
    parser.add_argument(
        "-o", "--output", default=None, metavar="OUT", help="write the YAML to OUT, not stdout"
    )


def run(args: argparse.Namespace) -> int:
    config_id = args.config_id or socket.gethostname().split(".")[0] or None
    try:
        if args.file == "-":
            text = sys.stdin.buffer.read().decode("utf-8", errors="replace")
            result = import_keepalived_text(text, "<stdin>", ".", config_id)
        else:
            result = import_keepalived(args.file, config_id)
    except KeepalivedSyntaxError as exc:
        print(f"{exc}", file=sys.stderr)
        return 1
    for note in result.skipped:
        print(note, file=sys.stderr)
    source = "stdin" if args.file == "-" else args.file
    output = f"# hacluster configuration imported from {source}\n{result.yaml_text}"
    if args.output is None:
        sys.stdout.write(output)
        return 0
    try:
        with open(args.output, "w", encoding="utf-8") as out:
            out.write(output)
    except OSError as exc:
        print(f"{args.output}: cannot write: {exc.strerror}", file=sys.stderr)
        return 1
    return 0
