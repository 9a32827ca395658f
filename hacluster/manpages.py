"""Writes the man pages hacluster(8), from the argument parsers, and hacluster.yaml(5), from
the configuration reference: `python -m hacluster.manpages OUTDIR`.

Both follow the code they describe: every subcommand and option comes from the parser the
command line builds, every key from `hacluster.config.reference`.
"""

from __future__ import annotations

import argparse
import os
import re
import sys
import time
from collections.abc import Iterator
from pathlib import Path

from hacluster import __version__, cli
from hacluster.config import reference as ref

REPO = Path(__file__).resolve().parents[1]
DEFAULT_EXAMPLE = REPO / "examples" / "director-a.yaml"


# --------------------------------------------------------------------------- roff text


def esc(text: str) -> str:
    """Plain text as roff prints it: backslashes kept, no line read as a request."""
    text = text.replace("\\", "\\e").replace("-", "\\-")
    return "\n".join(("\\&" + line) if line[:1] in (".", "'") else line
                     for line in text.split("\n"))


def inline(markdown: str) -> str:
    """The little Markdown the reference uses (`code`, *em*, [text](link)) as roff."""
    text = re.sub(r"\[([^\]]+)\]\([^)]+\)", r"\1", markdown)
    parts = re.split(r"(`[^`]+`)", text)
    out = []
    for part in parts:
        if part.startswith("`") and part.endswith("`") and len(part) > 1:
            out.append(f"\\fB{esc(part[1:-1])}\\fR")
        else:
            out.append(re.sub(r"\*([^*]+)\*", r"\\fI\1\\fR", esc(part)))
    return "".join(out)


def _header(name: str, section: int, title: str) -> list[str]:
    # SOURCE_DATE_EPOCH (reproducible builds) names the date; else today.
    when = time.gmtime(int(os.environ.get("SOURCE_DATE_EPOCH", time.time())))
    date = time.strftime("%Y-%m-%d", when)
    return [
        f'.TH {esc(name.upper())} {section} {date} "hacluster {esc(__version__)}" "{title}"',
        ".SH NAME",
    ]


# --------------------------------------------------------------------------- hacluster(8)


def _subparsers(parser: argparse.ArgumentParser) -> argparse._SubParsersAction[
        argparse.ArgumentParser] | None:
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            return action
    return None


def commands(
    parser: argparse.ArgumentParser, prefix: str = "hacluster"
) -> Iterator[tuple[str, argparse.ArgumentParser, str]]:
    """(full command, its parser, its one-line help), depth first, leaves and inner nodes."""
    sub = _subparsers(parser)
    if sub is None:
        return
    helps = {a.dest: a.help or "" for a in sub._choices_actions}
    for name, child in sub.choices.items():
        full = f"{prefix} {name}"
        yield full, child, helps.get(name, "")
        yield from commands(child, full)


def option_label(action: argparse.Action) -> str:
    """How an option is written in the page: `-f, --config FILE`."""
    if not action.option_strings:
        return f"\\fI{esc(action.metavar or action.dest)}\\fR"  # type: ignore[arg-type]
    names = ", ".join(f"\\fB{esc(s)}\\fR" for s in action.option_strings)
    if action.nargs == 0:
        return names
    if action.metavar is not None:
        metavar = str(action.metavar)
    elif action.choices is not None:
        metavar = "{" + ",".join(str(c) for c in action.choices) + "}"
    else:
        metavar = action.dest.upper()
    return f"{names} \\fI{esc(metavar)}\\fR"


def _help(action: argparse.Action, prog: str) -> str:
    text = action.help or ""
    if "%(" in text:
        text = text % {**vars(action), "prog": prog}
    return text


def _options(parser: argparse.ArgumentParser) -> list[str]:
    out: list[str] = []
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction) or action.help == argparse.SUPPRESS:
            continue
        out += [".TP", option_label(action), esc(_help(action, parser.prog))]
    return out


def _usage(parser: argparse.ArgumentParser) -> list[str]:
    usage = parser.format_usage().removeprefix("usage: ").strip()
    return [esc(re.sub(r"\s+", " ", usage))]


_HACLUSTER_TAIL = """\
.SH SIGNALS
For \\fBhacluster run\\fR:
.TP
.B SIGHUP
Reload the configuration file. A file with problems is refused and the running
configuration kept; each problem is logged.
.TP
.BR SIGTERM ", " SIGINT
Stop: masters send priority 0 and release their virtual addresses, then notify_stop
commands run.
.SH EXIT STATUS
0 on success; 1 when the configuration has problems or the command failed; 2 for a
wrong command line.
.SH FILES
.TP
.I /etc/hacluster/hacluster.yaml
The configuration file; see \\fBhacluster.yaml\\fR(5).
.TP
.I /run/hacluster/hacluster.sock
The control API socket (global_defs.control_socket).
.TP
.I /lib/systemd/system/hacluster.service
The systemd unit: \\fBsystemctl reload hacluster\\fR sends SIGHUP.
.SH SEE ALSO
\\fBhacluster.yaml\\fR(5), \\fBkeepalived\\fR(8), \\fBkeepalived.conf\\fR(5),
\\fBipvsadm\\fR(8), \\fBnft\\fR(8), \\fBsystemd.service\\fR(5)
"""


def hacluster_8(parser: argparse.ArgumentParser | None = None) -> str:
    """The roff source of hacluster(8)."""
    parser = parser or cli.build_parser()
    out = _header("hacluster", 8, "System Administration")
    out += [
        "hacluster \\- high availability for Linux load\\-balancer directors "
        "(VRRP, health checks, IPVS)",
        ".SH SYNOPSIS",
        ".B hacluster",
        ".RB [ \\-\\-version ]",
        ".I COMMAND",
        ".RI [ OPTIONS ]",
        ".SH DESCRIPTION",
        "A VRRP speaker (v2 and v3, IPv4 and IPv6) moves virtual addresses between directors "
        "and interoperates with keepalived; health checkers with keepalived's semantics "
        "decide which real servers get traffic; the kernel's IPVS table, or an nftables "
        "table, is kept equal to what the configuration and the health results ask for. "
        "The configuration is one YAML file in keepalived's vocabulary; see "
        "\\fBhacluster.yaml\\fR(5).",
        ".SH OPTIONS",
        *_options(parser),
        ".SH COMMANDS",
    ]
    for full, child, _help_line in commands(parser):
        out += [f'.SS "{esc(full)}"', *_usage(child)]
        if child.description:
            out += [".PP", esc(child.description)]
        out += _options(child)
    return "\n".join(out) + "\n" + _HACLUSTER_TAIL


# --------------------------------------------------------------------------- hacluster.yaml(5)


def hacluster_yaml_5(example: Path | None = None) -> str:
    """The roff source of hacluster.yaml(5)."""
    out = _header("hacluster.yaml", 5, "File Formats")
    out += [
        "hacluster.yaml \\- configuration file of hacluster",
        ".SH SYNOPSIS",
        ".I /etc/hacluster/hacluster.yaml",
        ".SH DESCRIPTION",
    ]
    for para in ref._INTRO.split("\n\n"):
        out += [inline(para.strip()), ".PP"]
    out.pop()
    out += [
        ".PP",
        "Check a file with \\fBhacluster check\\-config \\-f\\fR \\fIFILE\\fR before "
        "loading it; \\fBsystemctl reload hacluster\\fR loads it into the running daemon.",
    ]
    for c in ref.CONTAINERS:
        out += [f'.SH "{esc(c.path.upper())}"', inline(c.intro), ".PP",
                f"keepalived: \\fB{esc(c.keepalived)}\\fR"]
        for e in ref.entries(c):
            keepalived = "none (hacluster only)" if e.keepalived is None else e.keepalived
            out += [
                ".TP",
                f"\\fB{esc(e.key)}\\fR",
                inline(e.text),
                ".br",
                f"Type: {inline(e.type)}. Default: {esc(e.default)}. "
                f"keepalived: {esc(keepalived)}.",
                ".br",
                f"Example: \\fB{esc(e.example)}\\fR",
            ]
    if example is not None:
        out += [".SH EXAMPLE", ".nf", ".RS 4",
                esc(example.read_text(encoding="utf-8").rstrip()), ".RE", ".fi"]
    out += [".SH SEE ALSO", "\\fBhacluster\\fR(8), \\fBkeepalived.conf\\fR(5)"]
    return "\n".join(out) + "\n"


PAGES = ("hacluster.8", "hacluster.yaml.5")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m hacluster.manpages",
        description="Write hacluster.8 and hacluster.yaml.5 into OUTDIR.",
    )
    parser.add_argument("outdir", type=Path)
    parser.add_argument("--example", type=Path, default=DEFAULT_EXAMPLE, metavar="FILE",
                        help="configuration shown in hacluster.yaml(5)'s EXAMPLE section")
    args = parser.parse_args(argv)
    if not args.example.is_file():
        parser.error(f"--example {args.example}: no such file")
    args.outdir.mkdir(parents=True, exist_ok=True)
    pages = {"hacluster.8": hacluster_8(), "hacluster.yaml.5": hacluster_yaml_5(args.example)}
    for name, text in pages.items():
        path = args.outdir / name
        path.write_text(text, encoding="utf-8")
        print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
