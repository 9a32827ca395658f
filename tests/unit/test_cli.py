"""The command line dispatches to subcommands and rejects unknown ones."""

from __future__ import annotations

import pytest

from hacluster.cli import main


def test_unknown_subcommand_exits_with_usage() -> None:
    with pytest.raises(SystemExit) as exc:
        main(["no-such-command"])
    assert exc.value.code == 2
