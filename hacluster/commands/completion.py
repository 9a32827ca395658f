"""`hacluster completion SHELL`: a completion script for bash, zsh or tcsh (made by shtab)."""

from __future__ import annotations

import argparse


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.description = (
        "Print a shell completion script for hacluster's commands and options. For bash: "
        "`hacluster completion bash > /etc/bash_completion.d/hacluster`; for zsh, put "
        "the output in a file named _hacluster on $fpath."
    )
    parser.add_argument("shell", choices=("bash", "zsh", "tcsh"), help="the shell")


def run(args: argparse.Namespace) -> int:
    import shtab

    from hacluster.cli import build_parser

    print(shtab.complete(build_parser(), shell=args.shell), end="")
    return 0
